//! A ready-made site for a first look: a key, a config, a few small packages built here,
//! included and published. `airlock demo` then serves it.

use std::path::{Path, PathBuf};

use crate::apt::AptError;
use crate::apt::deb::DebBuilder;
use crate::apt::publish::{PublishReport, publish};
use crate::apt::repo::{IncludeReport, include};
use crate::hint::Hint;
use crate::openpgp::KeyAlgorithm;
use crate::report::Reporter;
use crate::site::{Site, SiteError, init};
use crate::storage::StorageError;

pub const REPO: &str = "demo";
pub const SUITE: &str = "stable";
pub const COMPONENT: &str = "main";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error(transparent)]
    Apt(#[from] AptError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Hint for DemoError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            DemoError::Site(e) => e.hint(),
            DemoError::Apt(e) => e.hint(),
            DemoError::Storage(e) => e.hint(),
        }
    }
}

#[derive(Debug)]
pub struct Demo {
    pub site: Site,
    pub created: bool,
    pub included: IncludeReport,
    pub published: Vec<PublishReport>,
}

/// Creates (or reuses) the demo site in `dir`, listening on `listen`, and publishes it.
pub fn prepare(
    dir: &Path,
    listen: std::net::SocketAddr,
    reporter: &dyn Reporter,
) -> Result<Demo, DemoError> {
    let config_path = dir.join("airlock.toml");
    let created = !config_path.exists();
    if created {
        init(
            dir,
            KeyAlgorithm::Ed25519,
            "airlock demo site <airlock@demo.invalid>",
        )?;
    }
    // The demo owns its config: rewritten each time, so that --listen always applies.
    let config = format!(
        "# The airlock demo site: `airlock demo` wrote this file and rewrites it on each run;\n\
         # other airlock commands take it with --config {}.\n\n\
         [site]\ndata_dir = \"data\"\nlisten = \"{listen}\"\npublic_url = \"http://{listen}\"\nsigning_key = \"airlock.key\"\n\n\
         [[apt.repo]]\nname = \"{REPO}\"\nsuites = [\"{SUITE}\"]\ncomponents = [\"{COMPONENT}\"]\n\
         architectures = [\"amd64\", \"arm64\"]\norigin = \"airlock demo\"\nlabel = \"airlock demo\"\nvalid_for = \"7d\"\n",
        config_path.display()
    );
    crate::storage::write_atomic(&config_path, config.as_bytes(), 0o644)?;
    let site = Site::open(&config_path)?;
    let debs = write_packages(&dir.join("debs"))?;
    let included = include(&site, REPO, SUITE, COMPONENT, &debs, reporter)?;
    let published = publish(&site, &[REPO.to_string()], reporter, jiff::Timestamp::now())?;
    Ok(Demo {
        site,
        created,
        included,
        published,
    })
}

/// Writes the demo packages: a program per architecture and the data it depends on.
fn write_packages(dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let mut paths = Vec::new();
    let script = "#!/bin/sh\ncat /usr/share/airlock-hello/greeting\n";
    let mut packages = vec![(
        "airlock-greeting_1.0_all.deb".to_string(),
        DebBuilder::new(
            "Package: airlock-greeting\nVersion: 1.0\nArchitecture: all\nMaintainer: airlock <airlock@demo.invalid>\n\
             Section: misc\nPriority: optional\nDescription: greeting text for airlock-hello\n \
             Data for the airlock demo: served by airlock, installed by apt.\n",
        )
        .file("usr/share/airlock-hello/greeting", "Hello from an air-gapped apt repository!\n"),
    )];
    for arch in ["amd64", "arm64"] {
        packages.push((
            format!("airlock-hello_1.0_{arch}.deb"),
            DebBuilder::new(format!(
                "Package: airlock-hello\nVersion: 1.0\nArchitecture: {arch}\nMaintainer: airlock <airlock@demo.invalid>\n\
                 Depends: airlock-greeting (>= 1.0)\nSection: misc\nPriority: optional\n\
                 Description: says hello from the airlock demo repository\n \
                 Installs the airlock-hello command.\n"
            ))
            .executable("usr/bin/airlock-hello", script),
        ));
    }
    for (name, builder) in packages {
        let path = dir.join(name);
        let bytes = builder.build().map_err(|source| StorageError::Write {
            path: path.clone(),
            source,
        })?;
        crate::storage::write_atomic(&path, &bytes, 0o644)?;
        paths.push(path);
    }
    Ok(paths)
}
