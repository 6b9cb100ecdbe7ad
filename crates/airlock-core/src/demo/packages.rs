//! The small `.deb` files of the demo: the local repo's and the upstream archive's, built
//! here by [`DebBuilder`].

use std::path::{Path, PathBuf};

use crate::apt::deb::DebBuilder;
use crate::storage::{StorageError, write_atomic};

const MAINTAINER: &str = "airlock demo <airlock@demo.invalid>";

fn control(name: &str, arch: &str, depends: Option<&str>, description: &str) -> String {
    let depends = depends.map_or(String::new(), |d| format!("Depends: {d}\n"));
    format!(
        "Package: {name}\nVersion: 1.0\nArchitecture: {arch}\nMaintainer: {MAINTAINER}\n{depends}\
         Section: misc\nPriority: optional\nDescription: {description}\n \
         Built by `airlock demo`; served by airlock, installed by apt.\n"
    )
}

/// The local repo: a program per architecture and the data it depends on.
pub(super) fn local(dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let mut packages = vec![(
        "airlock-greeting_1.0_all.deb".to_string(),
        DebBuilder::new(control(
            "airlock-greeting",
            "all",
            None,
            "greeting text for airlock-hello",
        ))
        .file(
            "usr/share/airlock-hello/greeting",
            "Hello from an air-gapped apt repository!\n",
        ),
    )];
    for arch in ["amd64", "arm64"] {
        packages.push((
            format!("airlock-hello_1.0_{arch}.deb"),
            DebBuilder::new(control(
                "airlock-hello",
                arch,
                Some("airlock-greeting (>= 1.0)"),
                "says hello from the airlock demo repository",
            ))
            .executable(
                "usr/bin/airlock-hello",
                "#!/bin/sh\ncat /usr/share/airlock-hello/greeting\n",
            ),
        ));
    }
    write(dir, packages)
}

/// The upstream archive: `upstream-tool` depends on a library that depends on its data;
/// `upstream-extra` is what the mirror's filter leaves out.
pub(super) fn upstream(dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let mut packages = vec![
        (
            "upstream-data_1.0_all.deb".to_string(),
            DebBuilder::new(control(
                "upstream-data",
                "all",
                None,
                "data of the upstream tool",
            ))
            .file(
                "usr/share/upstream-tool/data",
                "mirrored through the air gap\n",
            ),
        ),
        (
            "upstream-extra_1.0_all.deb".to_string(),
            DebBuilder::new(control(
                "upstream-extra",
                "all",
                None,
                "a package the demo mirror does not select",
            ))
            .file("usr/share/doc/upstream-extra/README", "not mirrored\n"),
        ),
    ];
    for arch in ["amd64", "arm64"] {
        packages.push((
            format!("libupstream1_1.0_{arch}.deb"),
            DebBuilder::new(control(
                "libupstream1",
                arch,
                Some("upstream-data"),
                "library of the upstream tool",
            ))
            .file("usr/lib/libupstream.so.1", "not really a library\n"),
        ));
        packages.push((
            format!("upstream-tool_1.0_{arch}.deb"),
            DebBuilder::new(control(
                "upstream-tool",
                arch,
                Some("libupstream1 (>= 1.0)"),
                "a tool from the demo's upstream archive",
            ))
            .executable(
                "usr/bin/upstream-tool",
                "#!/bin/sh\ncat /usr/share/upstream-tool/data\n",
            ),
        ));
    }
    write(dir, packages)
}

fn write(dir: &Path, packages: Vec<(String, DebBuilder)>) -> Result<Vec<PathBuf>, StorageError> {
    let mut paths = Vec::new();
    for (name, builder) in packages {
        let path = dir.join(name);
        let bytes = builder.build().map_err(|source| StorageError::Write {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes, 0o644)?;
        paths.push(path);
    }
    Ok(paths)
}
