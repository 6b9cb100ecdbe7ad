//! A local repo end to end with real clients: dpkg-deb builds the packages, airlock includes,
//! publishes and serves them, apt-get and gpgv accept the result, curl checks the HTTP details.

use std::process::Command;

use crate::common::{AIRLOCK, Apt, Site, curl, dpkg_deb, gpgv, write_aged};

const REPO: &str = r#"
[[apt.repo]]
name = "local"
suites = ["stable", "testing"]
components = ["main", "contrib"]
architectures = ["amd64", "arm64"]
origin = "airlock tests"
label = "airlock tests"
valid_for = "7d"
"#;

fn repo_serves_apt_and_gpgv(key_type: &str, algorithm_in_gpgv: &str) {
    let site = Site::new(key_type, REPO);
    let debs = site.path().join("debs");
    let hello_amd64 = dpkg_deb(
        &debs,
        "hello-airlock",
        "1.0-1",
        "amd64",
        "Depends: data-airlock\n",
        "gzip",
    );
    let hello_arm64 = dpkg_deb(
        &debs,
        "hello-airlock",
        "1.0-1",
        "arm64",
        "Depends: data-airlock\n",
        "xz",
    );
    let data_all = dpkg_deb(&debs, "data-airlock", "2:0.5", "all", "", "zstd");
    let extra = dpkg_deb(
        &site.path().join("contrib"),
        "extra-airlock",
        "3",
        "amd64",
        "",
        "none",
    );

    let out = site.include("stable", "main", &debs);
    assert!(out.contains("3 added"), "{out}");
    site.include("stable", "contrib", &extra);
    let out = site.ok(&["publish"]);
    assert!(out.contains("local/stable: published (4 packages"), "{out}");
    assert!(
        out.contains("local/testing: published (0 packages"),
        "{out}"
    );

    // The published tree: signatures that gpgv accepts with the exported keyring.
    let dists = site.public("local").join("dists/stable");
    let (ok, text) = gpgv(&site.keyring(), &[&dists.join("InRelease")]);
    assert!(
        ok && text.contains(algorithm_in_gpgv),
        "gpgv InRelease: {text}"
    );
    let (ok, text) = gpgv(
        &site.keyring(),
        &[&dists.join("Release.gpg"), &dists.join("Release")],
    );
    assert!(ok, "gpgv Release.gpg: {text}");
    let release = std::fs::read_to_string(dists.join("Release")).unwrap();
    for field in [
        "Valid-Until: ",
        "Acquire-By-Hash: yes",
        "Date: ",
        "Architectures: amd64 arm64",
        "Components: main contrib",
    ] {
        assert!(release.contains(field), "Release lacks {field}:\n{release}");
    }
    // Architecture: all appears in every architecture's index.
    for arch in ["amd64", "arm64"] {
        let packages =
            std::fs::read_to_string(dists.join(format!("main/binary-{arch}/Packages"))).unwrap();
        assert!(
            packages.contains("Package: data-airlock\nVersion: 2:0.5\nArchitecture: all"),
            "{arch}: {packages}"
        );
        assert!(
            packages.contains(&format!(
                "Package: hello-airlock\nVersion: 1.0-1\nArchitecture: {arch}"
            )),
            "{arch}"
        );
        assert!(
            packages.contains("Filename: pool/main/d/data-airlock/data-airlock_0.5_all.deb"),
            "{packages}"
        );
    }

    let server = site.serve();
    let line = format!(
        "deb [signed-by={}] {}/apt/local stable main contrib",
        site.keyring().display(),
        server.url
    );
    for (arch, hello) in [("amd64", &hello_amd64), ("arm64", &hello_arm64)] {
        let apt = Apt::new(&line, arch);
        let out = apt.ok(&["update"]);
        assert!(out.contains("stable InRelease"), "{out}");
        apt.ok(&["download", "hello-airlock", "data-airlock"]);
        let name = format!("hello-airlock_1.0-1_{arch}.deb");
        assert_eq!(
            apt.downloaded(&name),
            std::fs::read(hello).unwrap(),
            "{name} arrives byte for byte"
        );
        assert_eq!(
            apt.downloaded("data-airlock_2%3a0.5_all.deb"),
            std::fs::read(&data_all).unwrap()
        );
        if arch == "amd64" {
            apt.ok(&["download", "extra-airlock"]);
        }
    }

    // A wrong key is refused: the check above can fail.
    let other = Site::new("ed25519", "");
    let apt = Apt::new(
        &format!(
            "deb [signed-by={}] {}/apt/local stable main",
            other.keyring().display(),
            server.url
        ),
        "amd64",
    );
    let (clean, text) = apt.run(&["update"]);
    assert!(!clean && text.contains("NO_PUBKEY"), "{text}");

    // HTTP details with curl: HEAD, Range, conditional GET, traversal.
    let pool = format!(
        "{}/apt/local/pool/main/h/hello-airlock/hello-airlock_1.0-1_amd64.deb",
        server.url
    );
    let out = curl(&["-I", &pool]);
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        head.contains("200 ok")
            && head.contains("content-type: application/vnd.debian.binary-package"),
        "{head}"
    );
    let out = curl(&["-r", "4-13", "-w", "%{http_code}", &pool]);
    let original = std::fs::read(&hello_amd64).unwrap();
    assert_eq!(out.stdout[..10], original[4..14]);
    assert_eq!(&out.stdout[10..], b"206");
    let out = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT",
        &pool,
    ]);
    assert_eq!(out.stdout, b"304");
    for path in [
        "/apt/local/../../airlock.key",
        "/apt/local/%2e%2e/%2e%2e/airlock.key",
        "/apt/..%2f..%2fairlock.key",
    ] {
        let out = curl(&[
            "--path-as-is",
            "-w",
            "\n%{http_code}",
            &format!("{}{path}", server.url),
        ]);
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(!body.contains("PGP PRIVATE KEY"), "{path} leaked the key");
        assert!(
            body.ends_with("400") || body.ends_with("404"),
            "{path}: {body}"
        );
    }
    let (status, log) = server.stop();
    assert!(status.success(), "serve exits cleanly on SIGTERM");
    assert!(
        log.iter()
            .any(|l| l.contains("\"GET /apt/local/dists/stable/InRelease HTTP/1.1\" 200")),
        "access log: {log:?}"
    );
}

#[test]
fn ed25519_repo_serves_apt_and_gpgv() {
    repo_serves_apt_and_gpgv("ed25519", "EDDSA");
}

#[test]
fn rsa4096_repo_serves_apt_and_gpgv() {
    repo_serves_apt_and_gpgv("rsa4096", "RSA");
}

#[test]
fn include_remove_list_and_keep_versions() {
    let site = Site::new(
        "ed25519",
        &REPO.replace("valid_for = \"7d\"", "keep_versions = 2"),
    );
    let debs = site.path().join("debs");
    let v1 = dpkg_deb(&debs, "tool", "1.0", "amd64", "", "xz");
    let v2 = dpkg_deb(&debs, "tool", "2.0", "amd64", "", "xz");
    let v3 = dpkg_deb(&debs, "tool", "3.0~rc1", "amd64", "", "xz");
    let include = |file: &std::path::Path| site.include("stable", "main", file);

    assert!(include(&v2).contains("1 added"));
    assert!(include(&v2).contains("0 added, 0 replaced, 1 already there"));
    assert!(include(&v3).contains("1 added, 0 replaced"));
    // Two versions kept (2.0 and 3.0~rc1): 1.0 is older than both and is skipped with a warning.
    let out = site.run(&[
        "apt",
        "include",
        "local",
        "stable",
        "main",
        v1.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning: skipped"),
        "{out:?}"
    );

    let list = site.ok(&["apt", "list", "local", "stable", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap();
    let versions: Vec<&str> = rows
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["2.0", "3.0~rc1"]);
    assert!(
        site.ok(&["apt", "list", "local"])
            .contains("stable  main       tool     3.0~rc1")
    );

    site.ok(&[
        "apt",
        "remove",
        "local",
        "stable",
        "tool",
        "--version",
        "2.0",
    ]);
    let list = site.ok(&["apt", "list", "local", "--json"]);
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&list)
            .unwrap()
            .len(),
        1
    );
    let out = site.run(&["apt", "remove", "local", "stable", "missing"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no package \"missing\" in local/stable")
    );
}

#[test]
fn publish_without_changes_writes_nothing() {
    let site = Site::new("ed25519", REPO);
    let deb = dpkg_deb(
        &site.path().join("debs"),
        "tool",
        "1.0",
        "amd64",
        "",
        "gzip",
    );
    site.include("stable", "main", &deb);
    site.ok(&["publish"]);
    let before = site.snapshot();
    let out = site.ok(&["publish"]);
    assert!(
        out.contains("local: nothing changed, nothing written"),
        "{out}"
    );
    assert_eq!(site.snapshot(), before);

    // A change in one suite re-signs that suite only.
    let stable_inrelease =
        std::fs::read(site.public("local").join("dists/stable/InRelease")).unwrap();
    site.include("testing", "main", &deb);
    let out = site.ok(&["publish"]);
    assert!(
        out.contains("local/stable: unchanged") && out.contains("local/testing: published"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(site.public("local").join("dists/stable/InRelease")).unwrap(),
        stable_inrelease
    );
}

#[test]
fn key_show_and_export() {
    let site = Site::new("ed25519", "");
    let out = site.ok(&["key", "show"]);
    let fingerprint = out
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    assert_eq!(fingerprint.len(), 40);
    let out = Command::new(AIRLOCK)
        .args(["--config", site.config().to_str().unwrap(), "key", "export"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, std::fs::read(site.keyring()).unwrap());
    // gpg agrees on the fingerprint of the exported key.
    let gpg = Command::new("gpg")
        .args(["--batch", "--with-colons", "--show-keys"])
        .arg(site.keyring())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&gpg.stdout).contains(&format!("fpr:::::::::{fingerprint}:")));
}

#[test]
fn a_second_server_cannot_take_the_port() {
    let site = Site::new("ed25519", REPO);
    let server = site.serve();
    let address = server.url.trim_start_matches("http://");
    let out = site.run(&["serve", "--listen", address]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {address}")) && stderr.contains("hint:"),
        "{stderr}"
    );
    // The first one still answers.
    let out = curl(&[
        "-fs",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{}/airlock.gpg", server.url),
    ]);
    assert_eq!(out.stdout, b"200");
}

/// `airlock gc` frees what nothing refers to any more, and only that: a removed package's file
/// stays while the tree keeps it for the grace period, then leaves; what is published, and
/// anything stored within the grace period, stays; apt still fetches everything listed.
#[test]
fn gc_removes_only_what_nothing_refers_to() {
    let site = Site::new("ed25519", &format!("grace = \"2s\"\n{REPO}"));
    let debs = site.path().join("debs");
    let tool = dpkg_deb(&debs, "tool", "1.0", "amd64", "", "xz");
    let other = dpkg_deb(&debs, "other", "1.0", "amd64", "", "xz");
    site.include("stable", "main", &tool);
    site.include("stable", "main", &other);
    site.ok(&["publish"]);
    let store = site.path().join("data/store/sha256");
    let blob = |bytes: &[u8]| {
        let hex = airlock_core::storage::Sha256::of(bytes).to_hex();
        store.join(&hex[..2]).join(hex)
    };
    // Two files nothing refers to: one stored three days ago, one just now.
    let plant = |bytes: &[u8], age: u64| {
        let path = blob(bytes);
        write_aged(&path, bytes, std::time::Duration::from_secs(age));
        path
    };
    let old = plant(b"left by a sync three days ago", 3 * 86_400);
    let fresh = plant(b"stored a moment ago by the pull-through proxy", 0);
    let other_blob = blob(&std::fs::read(&other).unwrap());

    let out = site.ok(&["gc", "--dry-run"]);
    assert!(out.starts_with("would remove 1 files"), "{out}");
    assert!(old.exists());
    let out = site.ok(&["gc"]);
    assert!(out.starts_with("removed 1 files"), "{out}");
    assert!(!old.exists() && fresh.exists());

    // `other` removed: its file stays in the tree for the grace period, so in the store too.
    site.ok(&["apt", "remove", "local", "stable", "other"]);
    site.ok(&["publish"]);
    let out = site.ok(&["gc"]);
    assert!(out.starts_with("removed 0 files"), "{out}");
    assert!(other_blob.exists());

    // Past the grace period, the next publish drops it from the tree and gc from the store.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let third = dpkg_deb(&debs, "third", "1.0", "amd64", "", "xz");
    site.include("stable", "main", &third);
    site.ok(&["publish"]);
    // With them go the indices the first two publishes wrote, no longer kept either.
    let out = site.ok(&["gc"]);
    assert!(
        out.starts_with("removed ") && !out.starts_with("removed 0 "),
        "{out}"
    );
    assert!(!other_blob.exists() && !fresh.exists());

    let out = site.ok(&["verify", "--offline"]);
    assert!(out.contains("all checks passed"), "{out}");
    let server = site.serve();
    let apt = Apt::new(
        &format!(
            "deb [signed-by={}] {}/apt/local stable main",
            site.keyring().display(),
            server.url
        ),
        "amd64",
    );
    apt.ok(&["update"]);
    apt.ok(&["download", "tool", "third"]);
    assert_eq!(
        apt.downloaded("tool_1.0_amd64.deb"),
        std::fs::read(&tool).unwrap()
    );
    let (ok, _) = apt.run(&["download", "other"]);
    assert!(!ok, "other is gone");
}

/// With no `[site] public_url`, the lines clients are given name the address the server
/// listens on, port chosen by `--listen` (or by the kernel for port 0) included.
#[test]
fn the_default_public_url_follows_the_listen_address() {
    let site = Site::new("ed25519", &crate::common::site::local_repo(None));
    site.ok(&["publish"]);
    let server = site.serve();
    assert!(!server.url.ends_with(":0"), "{}", server.url);
    let page = String::from_utf8(curl(&["-fsS", &format!("{}/", server.url)]).stdout).unwrap();
    assert!(
        page.contains(&format!("{}/apt/local", server.url)),
        "the page does not name {}:\n{page}",
        server.url
    );
}

/// `airlock key generate` makes the key the config names, once.
#[test]
fn key_generate_makes_the_configured_key_once() {
    let site = Site::new("ed25519", "");
    for name in ["airlock.key", "airlock.gpg", "airlock.asc"] {
        std::fs::remove_file(site.path().join(name)).unwrap();
    }
    site.ok(&["key", "generate"]);
    let key = std::fs::read(site.path().join("airlock.key")).unwrap();
    let out = site.run(&["key", "generate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    site.ok(&["key", "generate", "--if-missing"]);
    assert_eq!(std::fs::read(site.path().join("airlock.key")).unwrap(), key);
    assert!(site.ok(&["key", "show"]).contains("fingerprint"));
}
