//! Bad input gets one clear error naming the file and the reason, a non-zero exit, and leaves
//! the site exactly as it was (every file of the data folder, config and keys compared).

use std::path::{Path, PathBuf};

use crate::common::site::local_repo;
use crate::common::{AIRLOCK, Site, dpkg_deb};
use airlock_core::apt::deb::{Compression, DebBuilder};

/// A site with one package included and published: the state that must survive.
fn populated_site() -> Site {
    let site = Site::new("ed25519", &local_repo(None));
    let deb = dpkg_deb(&site.path().join("good"), "good", "1.0", "amd64", "", "xz");
    site.include("stable", "main", &deb);
    site.ok(&["publish"]);
    site
}

/// Runs airlock, expects failure with every `needles` in one `error:` message, and an
/// untouched site.
fn refused(site: &Site, args: &[&str], needles: &[&str]) {
    let before = site.snapshot();
    let out = site.run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "airlock {args:?} succeeded:\n{stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "one error for {args:?}:\n{stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "airlock {args:?}: {needle:?} missing from:\n{stderr}"
        );
    }
    let after = site.snapshot();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "files changed after {args:?}"
    );
    assert!(before == after, "content changed after {args:?}");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn include(site: &Site, file: &Path, needles: &[&str]) {
    refused(
        site,
        &[
            "apt",
            "include",
            "local",
            "stable",
            "main",
            file.to_str().unwrap(),
        ],
        needles,
    );
}

#[test]
fn broken_packages_are_refused() {
    let site = populated_site();
    let dir = site.path().join("bad");

    let text = write(&dir, "text.deb", b"this is not a package\n");
    include(
        &site,
        &text,
        &["text.deb", "not a Debian package", "not an ar archive"],
    );

    let real = std::fs::read(dpkg_deb(
        &dir.join("src"),
        "real",
        "1.0",
        "amd64",
        "",
        "gzip",
    ))
    .unwrap();
    let cut = write(&dir, "cut.deb", &real[..real.len() / 2]);
    include(&site, &cut, &["cut.deb", "truncated"]);
    let cut = write(&dir, "cut-tail.deb", &real[..real.len() - 7]);
    include(&site, &cut, &["cut-tail.deb", "truncated"]);

    for (missing, control) in [
        (
            "Package",
            "Version: 1\nArchitecture: amd64\nDescription: x\n",
        ),
        (
            "Version",
            "Package: nover\nArchitecture: amd64\nDescription: x\n",
        ),
        (
            "Architecture",
            "Package: noarch\nVersion: 1\nDescription: x\n",
        ),
    ] {
        let deb = DebBuilder::new(control).build().unwrap();
        let file = write(&dir, &format!("no-{missing}.deb"), &deb);
        include(
            &site,
            &file,
            &[
                &format!("no-{missing}.deb"),
                &format!("control file has no {missing} field"),
            ],
        );
    }

    let deb =
        DebBuilder::new("Package: riscy\nVersion: 1\nArchitecture: riscv64\nDescription: x\n")
            .compression(Compression::Zstd)
            .build()
            .unwrap();
    let file = write(&dir, "riscy.deb", &deb);
    include(
        &site,
        &file,
        &[
            "riscy.deb",
            "architecture riscv64 is not one repo local carries (amd64)",
        ],
    );
}

#[test]
fn one_bad_file_aborts_the_whole_include() {
    let site = populated_site();
    let dir = site.path().join("batch");
    dpkg_deb(&dir, "fine", "1.0", "amd64", "", "gzip");
    dpkg_deb(&dir, "also-fine", "1.0", "all", "", "gzip");
    write(&dir, "zz-broken.deb", b"!<arch>\ngarbage");
    include(&site, &dir, &["zz-broken.deb"]);

    // The same version with different content would give clients a hash mismatch.
    let other = dpkg_deb(
        &site.path().join("rebuilt"),
        "good",
        "1.0",
        "amd64",
        "X-Rebuilt: yes\n",
        "gzip",
    );
    include(
        &site,
        &other,
        &[
            "good_1.0_amd64.deb",
            "good 1.0 (amd64) is already in suite stable",
            "new version",
        ],
    );
}

#[test]
fn unknown_names_are_refused() {
    let site = populated_site();
    let deb = site.path().join("good/good_1.0_amd64.deb");
    let deb = deb.to_str().unwrap();
    refused(
        &site,
        &["apt", "include", "nope", "stable", "main", deb],
        &["no repo named \"nope\"", "configured: local", "hint:"],
    );
    refused(
        &site,
        &["apt", "include", "local", "unstable", "main", deb],
        &["repo \"local\" has no suite \"unstable\" (configured: stable)"],
    );
    refused(
        &site,
        &["apt", "include", "local", "stable", "contrib", deb],
        &["repo \"local\" has no component \"contrib\" (configured: main)"],
    );
    refused(
        &site,
        &[
            "apt",
            "include",
            "local",
            "stable",
            "main",
            "/does/not/exist.deb",
        ],
        &["/does/not/exist.deb"],
    );
    refused(&site, &["publish", "nope"], &["no repo named \"nope\""]);
    refused(
        &site,
        &["apt", "list", "local", "unstable"],
        &["has no suite \"unstable\""],
    );
}

#[test]
fn unreadable_or_missing_key_is_refused() {
    let site = populated_site();
    let deb = dpkg_deb(
        &site.path().join("new"),
        "newer",
        "1.0",
        "amd64",
        "",
        "gzip",
    );
    site.include("stable", "main", &deb);

    let key = site.path().join("airlock.key");
    let saved = std::fs::read(&key).unwrap();
    std::fs::write(&key, "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\ngarbage\n").unwrap();
    refused(
        &site,
        &["publish"],
        &[
            "airlock.key",
            "is not an OpenPGP secret key",
            "hint: [site] signing_key",
        ],
    );
    refused(
        &site,
        &["serve"],
        &["airlock.key", "is not an OpenPGP secret key"],
    );
    std::fs::remove_file(&key).unwrap();
    refused(
        &site,
        &["publish"],
        &["cannot read signing key", "airlock.key", "No such file"],
    );
    std::fs::write(&key, saved).unwrap();
    assert!(site.ok(&["publish"]).contains("published (2 packages"));
}

#[test]
fn bad_config_points_at_the_line() {
    let site = populated_site();
    let config = std::fs::read_to_string(site.config()).unwrap();
    let deb = site.path().join("good/good_1.0_amd64.deb");
    let deb = deb.to_str().unwrap();
    for (bad, needles) in [
        (
            config.replace("suites =", "suits ="),
            vec!["airlock.toml", "line 9", "unknown field `suits`"],
        ),
        (
            config.replace(
                "architectures = [\"amd64\"]",
                "architectures = [\"amd64\"]\nvalid_for = \"seven days\"",
            ),
            vec!["line 12", "not a duration"],
        ),
        (
            config.replace("listen = \"127.0.0.1:0\"", "listen = \"everywhere\""),
            vec!["line 3", "invalid socket address"],
        ),
        (
            config.replace("[\"stable\"]", "[\"stable\", \"stable\"]"),
            vec!["line 9", "\"stable\" is listed twice"],
        ),
        (
            format!("{config}\n[mirror]\nurl = \"x\"\n"),
            vec!["unknown field `mirror`"],
        ),
    ] {
        std::fs::write(site.config(), &bad).unwrap();
        for args in [
            &["apt", "include", "local", "stable", "main", deb][..],
            &["publish"],
            &["serve"],
        ] {
            refused(&site, args, &needles);
        }
    }
    std::fs::write(site.config(), config).unwrap();

    let out = std::process::Command::new(AIRLOCK)
        .args(["--config", "/nonexistent/airlock.toml", "publish"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot read config /nonexistent/airlock.toml"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: create a site with `airlock init"),
        "{stderr}"
    );
}
