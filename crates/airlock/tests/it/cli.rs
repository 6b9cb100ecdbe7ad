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
