//! The Debian package, as a site installs it: built by `cargo deb`, read by lintian, its
//! units checked by systemd-analyze, installed with dpkg on this machine (as root), the
//! unit's command run as the `airlock` user and served from, upgraded to the next version
//! with config, key and data kept, and purged; the machine is left as it was, whatever
//! happens on the way.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{Apt, Server, dpkg_deb};

/// The package's version in the first build, and the one installed over it.
const FIRST: &str = "0.1.0-1";
const NEXT: &str = "0.1.0-2";

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The workspace's root, where `cargo deb` runs.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the package at `version` into `target/package/` (a target folder of its own, so
/// that it never waits on the one the tests were built in; a second build is only the
/// packaging). `.ci/run` builds it before the tests.
fn build(version: &str) -> PathBuf {
    let out_dir = workspace().join("target/package");
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace())
        .env("CARGO_TARGET_DIR", &out_dir)
        .args(["deb", "-p", "airlock", "--locked", "--deb-version", version])
        .arg("--output")
        .arg(&out_dir)
        .output()
        .expect("cargo deb (cargo install cargo-deb --locked)");
    assert!(
        out.status.success(),
        "cargo deb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let path = PathBuf::from(path.lines().last().unwrap_or_default());
    assert!(path.is_file(), "cargo deb wrote no package: {path:?}");
    path
}

/// Purges the package and removes what it leaves on purpose (the site's data, the user), so
/// that the machine is as before the test, also when it fails half way.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "airlock"]);
        let _ = std::fs::remove_dir_all("/var/lib/airlock");
        let _ = run("userdel", &["airlock"]);
    }
}

#[test]
fn the_debian_package_installs_serves_upgrades_and_purges() {
    // One package test on the machine at a time (two test runs in two checkouts would remove
    // each other's user).
    let lock = std::fs::File::create("/tmp/airlock-package-test.lock").unwrap();
    lock.lock().unwrap();
    assert_eq!(
        ok("id", &["-u"]).trim(),
        "0",
        "this test installs a package: run the tests as root"
    );
    assert!(
        run("dpkg-query", &["-W", "airlock"]).stdout.is_empty(),
        "an airlock package is installed on this machine already; the test would replace it"
    );
    let first = build(FIRST);
    let next = build(NEXT);
    let first = first.to_str().unwrap();

    // What is inside: the stripped binary, the units, completions, man pages, the config as
    // a conffile; Depends computed to nothing beyond libc and libgcc.
    let info = ok("dpkg-deb", &["--info", first]);
    let depends = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends: {info}"));
    for dependency in depends.split(',') {
        let name = dependency.split_whitespace().next().unwrap();
        assert!(["libc6", "libgcc-s1"].contains(&name), "Depends: {depends}");
    }
    let files = ok("dpkg-deb", &["--contents", first]);
    for path in [
        "./usr/bin/airlock",
        "./etc/airlock/airlock.toml",
        "/systemd/system/airlock.service",
        "/systemd/system/airlock-sync.timer",
        "/systemd/system/airlock-publish.timer",
        "/systemd/system/airlock-verify.timer",
        "/systemd/system/airlock-gc.timer",
        "./usr/share/bash-completion/completions/airlock",
        "./usr/share/zsh/vendor-completions/_airlock",
        "./usr/share/fish/vendor_completions.d/airlock.fish",
        "./usr/share/man/man1/airlock.1.gz",
        "./usr/share/man/man1/airlock-serve.1.gz",
        "./usr/share/doc/airlock/copyright",
    ] {
        assert!(
            files.contains(path),
            "{path} is not in the package:\n{files}"
        );
    }
    let control = tempfile::tempdir().unwrap();
    ok(
        "dpkg-deb",
        &["--control", first, control.path().to_str().unwrap()],
    );
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).unwrap();
    assert!(
        conffiles.contains("/etc/airlock/airlock.toml"),
        "{conffiles}"
    );

    // lintian: no error.
    let lintian = run(
        "lintian",
        &["--fail-on", "error", "--no-tag-display-limit", first],
    );
    assert!(
        lintian.status.success(),
        "lintian:\n{}{}",
        String::from_utf8_lossy(&lintian.stdout),
        String::from_utf8_lossy(&lintian.stderr)
    );

    let _cleanup = Installed;
    ok("dpkg", &["--install", first]);
    // The binary as installed: no debug info, no symbol table.
    let sections = ok(
        "readelf",
        &["--section-headers", "--wide", "/usr/bin/airlock"],
    );
    assert!(
        !sections.contains(".debug_info") && !sections.contains(".symtab"),
        "/usr/bin/airlock is not stripped"
    );
    // The units: systemd-analyze finds nothing to say, and rates each service 2.5 or lower.
    let units = "/usr/lib/systemd/system";
    let unit_dir = if Path::new(units).join("airlock.service").exists() {
        units
    } else {
        "/lib/systemd/system"
    };
    let unit_files: Vec<String> = [
        "airlock.service",
        "airlock-sync.service",
        "airlock-sync.timer",
        "airlock-publish.service",
        "airlock-publish.timer",
        "airlock-verify.service",
        "airlock-verify.timer",
        "airlock-gc.service",
        "airlock-gc.timer",
    ]
    .iter()
    .map(|u| format!("{unit_dir}/{u}"))
    .collect();
    let mut verify = vec!["verify", "--man=no"];
    verify.extend(unit_files.iter().map(String::as_str));
    let said = run("systemd-analyze", &verify);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&said.stdout),
        String::from_utf8_lossy(&said.stderr)
    );
    assert!(said.trim().is_empty(), "systemd-analyze verify:\n{said}");
    for unit in unit_files.iter().filter(|u| u.ends_with(".service")) {
        let said = ok("systemd-analyze", &["security", "--offline=true", unit]);
        let level: f64 = said
            .split("Overall exposure level for ")
            .nth(1)
            .and_then(|rest| rest.split(": ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{unit}: {said}"));
        assert!(level <= 2.5, "{unit} rates {level}:\n{said}");
    }

    // What the first install made: the user, the data folder, the key (0600, the user's).
    ok("getent", &["passwd", "airlock"]);
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let key = std::fs::metadata("/var/lib/airlock/airlock.key").unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    let uid: u32 = ok("id", &["-u", "airlock"]).trim().parse().unwrap();
    assert_eq!(key.uid(), uid);
    assert!(Path::new("/var/lib/airlock/data").is_dir());

    // The unit's command, as its user: a package included, published, served to apt-get.
    let debs = tempfile::tempdir().unwrap();
    std::fs::set_permissions(debs.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let hello = dpkg_deb(debs.path(), "hello", "1.0", "amd64", "", "xz");
    std::fs::set_permissions(&hello, std::fs::Permissions::from_mode(0o644)).unwrap();
    let as_airlock = |args: &[&str]| {
        let mut all = vec!["-u", "airlock", "--", "/usr/bin/airlock"];
        all.extend_from_slice(args);
        ok("runuser", &all)
    };
    let config = "/etc/airlock/airlock.toml";
    as_airlock(&[
        "--config",
        config,
        "apt",
        "include",
        "local",
        "stable",
        "main",
        hello.to_str().unwrap(),
    ]);
    as_airlock(&["--config", config, "publish"]);
    let serve = || {
        let mut command = Command::new("runuser");
        command.args([
            "-u",
            "airlock",
            "--",
            "/usr/bin/airlock",
            "--config",
            config,
        ]);
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        Server::start(command, false)
    };
    let fetch = |server: &Server| {
        let apt = Apt::new(
            &format!(
                "deb [signed-by=/var/lib/airlock/airlock.gpg] {}/apt/local stable main",
                server.url
            ),
            "amd64",
        );
        apt.ok(&["update"]);
        apt.ok(&["download", "hello"]);
        apt.downloaded("hello_1.0_amd64.deb")
    };
    let server = serve();
    assert_eq!(fetch(&server), std::fs::read(&hello).unwrap());
    drop(server);

    // Version N+1 over N: the config as the operator left it, the same key, the same data.
    std::fs::write(
        config,
        std::fs::read_to_string(config)
            .unwrap()
            .replace("grace = \"1d\"", "grace = \"2d\""),
    )
    .unwrap();
    let key_before = std::fs::read("/var/lib/airlock/airlock.key").unwrap();
    ok("dpkg", &["--install", next.to_str().unwrap()]);
    assert!(ok("dpkg-query", &["-W", "airlock"]).contains(NEXT));
    assert!(
        std::fs::read_to_string(config)
            .unwrap()
            .contains("grace = \"2d\"")
    );
    assert_eq!(
        std::fs::read("/var/lib/airlock/airlock.key").unwrap(),
        key_before
    );
    let server = serve();
    assert_eq!(fetch(&server), std::fs::read(&hello).unwrap());
    drop(server);

    // Started without its data folder: a message that names it, not a panic.
    std::fs::rename("/var/lib/airlock/data", "/var/lib/airlock/data.away").unwrap();
    let out = run(
        "runuser",
        &[
            "-u",
            "airlock",
            "--",
            "/usr/bin/airlock",
            "--config",
            config,
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && said.contains("/var/lib/airlock/data")
            && !said.contains("panicked"),
        "{said}"
    );
    std::fs::rename("/var/lib/airlock/data.away", "/var/lib/airlock/data").unwrap();

    // Purge: the config goes; the key and the data stay (they are the site).
    ok("dpkg", &["--purge", "airlock"]);
    assert!(!Path::new(config).exists());
    assert!(Path::new("/var/lib/airlock/airlock.key").exists());
}
