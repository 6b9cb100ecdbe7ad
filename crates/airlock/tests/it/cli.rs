//! The command line as users read it: `--help` output is a snapshot, so that a change to it
//! is a decision, not an accident.

use std::process::Command;

use crate::common::AIRLOCK;

fn help(args: &[&str]) -> String {
    let out = Command::new(AIRLOCK)
        .args(args)
        .env("COLUMNS", "100")
        .env_remove("AIRLOCK_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn help_texts() {
    insta::assert_snapshot!("help", help(&["--help"]));
    insta::assert_snapshot!("apt_help", help(&["apt", "--help"]));
    insta::assert_snapshot!("apt_include_help", help(&["apt", "include", "--help"]));
    insta::assert_snapshot!("publish_help", help(&["publish", "--help"]));
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(AIRLOCK)
        .args(["apt", "include", "local"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("required arguments were not provided"));
}

/// The completions, man pages and packaged config the Debian package ships are what the
/// command line generates today.
#[test]
fn packaged_assets_are_current() {
    let fresh = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::common::AIRLOCK)
        .arg("generate")
        .arg(fresh.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let files = |root: &std::path::Path| {
        let mut found = std::collections::BTreeMap::new();
        for folder in ["", "completions", "man"] {
            for entry in std::fs::read_dir(root.join(folder)).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() {
                    let name = path.strip_prefix(root).unwrap().display().to_string();
                    found.insert(name, std::fs::read(&path).unwrap());
                }
            }
        }
        found
    };
    let (now, shipped) = (files(fresh.path()), files(&committed));
    let stale: Vec<&String> = now
        .keys()
        .chain(shipped.keys())
        .filter(|name| now.get(*name) != shipped.get(*name))
        .collect();
    assert!(
        stale.is_empty(),
        "crates/airlock/assets is stale ({stale:?}): run `cargo run -p airlock -- generate crates/airlock/assets` after removing it"
    );
}
