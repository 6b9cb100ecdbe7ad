//! `-q` is silent on success, for every command a cron line or a script runs: nothing on
//! stdout, nothing on stderr, whether the command changed something or found nothing to do.

use crate::common::site::whole_site;
use crate::common::upstream::pkg;
use crate::common::{AIRLOCK, Site};

/// `airlock -q ARGS` with `site`'s config (or none), which must succeed and say nothing.
fn silent(site: Option<&Site>, args: &[&str]) {
    let mut command = std::process::Command::new(AIRLOCK);
    command.arg("-q");
    if let Some(site) = site {
        command.arg("--config").arg(site.config());
    }
    let out = command.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "airlock -q {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        ("".into(), "".into()),
        "airlock -q {args:?} said something"
    );
}

#[test]
fn quiet_commands_say_nothing_on_success() {
    let whole = whole_site("");
    let a = &whole.site;
    let fresh = tempfile::tempdir().unwrap();
    silent(None, &["init", fresh.path().join("site").to_str().unwrap()]);

    // Nothing to do: the daily cron lines.
    silent(Some(a), &["sync"]);
    silent(Some(a), &["publish"]);
    silent(Some(a), &["gc"]);
    silent(Some(a), &["verify", "--offline"]);

    // Something to do.
    let deb = crate::common::dpkg_deb(
        &whole.work.path().join("more"),
        "extra",
        "1.0",
        "amd64",
        "",
        "xz",
    );
    silent(
        Some(a),
        &[
            "apt",
            "include",
            "local",
            "stable",
            "main",
            deb.to_str().unwrap(),
        ],
    );
    silent(Some(a), &["publish"]);
    whole.archive.add(&pkg(
        "stable",
        "main",
        "app",
        "1.1",
        "amd64",
        "Depends: libfoo\n",
    ));
    whole.archive.publish();
    silent(Some(a), &["sync"]);
    silent(
        Some(a),
        &["snap", "release", "hello-airlock", "1", "candidate"],
    );
    silent(Some(a), &["apt", "remove", "local", "stable", "extra"]);
    silent(Some(a), &["publish"]);
    silent(Some(a), &["tls", "init"]);
    let bundle = whole.work.path().join("bundle");
    silent(Some(a), &["export", "--to", bundle.to_str().unwrap()]);
    let b = Site::new(
        "ed25519",
        &format!(
            "{}\n[import]\ntrusted_keys = [\"{}\"]\n",
            whole.config,
            a.keyring().display()
        ),
    );
    std::fs::copy(a.path().join("root.assert"), b.path().join("root.assert")).unwrap();
    silent(Some(&b), &["import", bundle.to_str().unwrap()]);
    silent(Some(&b), &["verify", "--offline"]);
    let backup = whole.work.path().join("backup");
    silent(Some(&b), &["backup", backup.to_str().unwrap()]);
}
