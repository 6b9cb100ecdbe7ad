//! The offline snap store end to end: snaps built with mksquashfs, assertions signed by a test
//! root the site trusts, `airlock snap import`, `airlock serve`, then Debian's real snapd
//! (started by hand in its own root) running `snap info` and `snap find` against it, and the
//! store API checked request by request as snapd sends them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::common::snaps::{Authority, SNAP_ID, build_snap, encode, snap_yaml};
use crate::common::{Site, TLS, curl, sync_history};
use airlock_core::snap::assertion::Assertion;
use serde_json::{Value, json};
use sha3::{Digest, Sha3_384};

fn site_with(authority: &Authority) -> Site {
    let scratch = tempfile::tempdir().unwrap();
    let root = authority.root_file(scratch.path());
    let site = Site::new("ed25519", "");
    let target = site.path().join("root.assert");
    std::fs::copy(root, &target).unwrap();
    site.add_config("\n[snaps]\ntrusted_keys = \"root.assert\"\n");
    site
}

fn get_json(url: &str) -> (u16, String, Value) {
    let out = curl(&["-s", "-w", "\n%{http_code} %{content_type}", url]);
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    let (code, content_type) = status.split_once(' ').unwrap();
    (
        code.parse().unwrap(),
        content_type.to_string(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn post_json(url: &str, body: &str) -> (u16, Value) {
    let out = curl(&[
        "-s",
        "-w",
        "\n%{http_code}",
        "-H",
        "Content-Type: application/json",
        "-H",
        "Snap-Device-Architecture: amd64",
        "--data-binary",
        body,
        url,
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (
        code.parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// Debian's snapd started by hand in a root of its own (SNAPPY_GLOBAL_ROOT), pointed at the
/// store with SNAPPY_FORCE_API_URL; SNAPD_STANDBY_WAIT keeps it from exiting when idle.
struct Snapd {
    child: Child,
    root: tempfile::TempDir,
}

impl Snapd {
    fn start(store: &str) -> Snapd {
        assert!(
            Path::new("/usr/lib/snapd/snapd").exists(),
            "snapd is installed (.ci/run installs it)"
        );
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("run")).unwrap();
        // snapd runs its helpers (snap-seccomp) from under its root.
        std::os::unix::fs::symlink("/usr", root.path().join("usr")).unwrap();
        let child = Command::new("/usr/lib/snapd/snapd")
            .env("SNAPPY_GLOBAL_ROOT", root.path())
            .env("SNAPPY_FORCE_API_URL", format!("{store}/"))
            .env("SNAPD_STANDBY_WAIT", "10h")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let socket = root.path().join("run/snapd.socket");
        let started = Instant::now();
        while !socket.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "snapd did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Snapd { child, root }
    }

    fn snap(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("snap")
            .args(args)
            .env("SNAPPY_GLOBAL_ROOT", self.root.path())
            .current_dir(self.root.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

impl Drop for Snapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn snapd_reads_the_offline_store() {
    let authority = Authority::new();
    let site = site_with(&authority);
    site.site_settings(TLS);
    site.ok(&["tls", "init"]);
    let work = tempfile::tempdir().unwrap();
    let one = build_snap(work.path(), "hello-airlock_1.snap", &snap_yaml("1.0"), "xz");
    let two = build_snap(
        work.path(),
        "hello-airlock_2.snap",
        &snap_yaml("2.0"),
        "lzo",
    );
    authority.assert_file(&one, 1);
    authority.assert_file(&two, 2);

    let out = site.ok(&[
        "snap",
        "import",
        one.to_str().unwrap(),
        "--channel",
        "stable",
    ]);
    assert!(
        out.contains("imported hello-airlock revision 1 (1.0), released to amd64 latest/stable"),
        "{out}"
    );
    assert!(out.contains("snapd will also ask for core22"), "{out}");
    let out = site.ok(&[
        "snap",
        "import",
        two.to_str().unwrap(),
        "--channel",
        "beta",
        "--channel",
        "2.x/stable",
    ]);
    assert!(out.contains("amd64 latest/beta, amd64 2.x/stable"), "{out}");
    // The same file again changes nothing.
    let out = site.ok(&["snap", "import", two.to_str().unwrap()]);
    assert!(
        out.contains("already had hello-airlock revision 2"),
        "{out}"
    );
    let list = site.ok(&["snap", "list"]);
    assert!(
        list.contains("hello-airlock  hElL0A1rl0ck5nap1dF0rTest5xxxxxx  publisher tester"),
        "{list}"
    );
    assert!(list.contains("revision 2  2.0"), "{list}");

    let server = site.serve();
    let base = &server.url;

    // Info, as snapd asks it.
    let (status, content_type, info) = get_json(&format!(
        "{base}/v2/snaps/info/hello-airlock?architecture=amd64&fields=download"
    ));
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let channels: Vec<&str> = info["channel-map"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["latest/stable", "latest/beta", "2.x/stable"]);
    assert_eq!(info["snap"]["publisher"]["display-name"], "Airlock Tester");
    assert_eq!(
        info["channel-map"][0]["epoch"],
        json!({"read": [0], "write": [0]})
    );
    let (status, _, _) = get_json(&format!(
        "{base}/v2/snaps/info/hello-airlock?architecture=arm64"
    ));
    assert_eq!(status, 404, "no arm64 release");

    // The advertised download is the file, with the advertised digest and size; Range and HEAD.
    let download = &info["channel-map"][1]["download"];
    let url = download["url"].as_str().unwrap();
    assert_eq!(
        url,
        format!("{base}/api/v1/snaps/download/{SNAP_ID}_2.snap")
    );
    let blob = curl(&["-fs", url]).stdout;
    assert_eq!(blob, std::fs::read(&two).unwrap());
    assert_eq!(
        hex::encode(Sha3_384::digest(&blob)),
        download["sha3-384"].as_str().unwrap()
    );
    assert_eq!(blob.len() as u64, download["size"].as_u64().unwrap());
    let ranged = curl(&["-fs", "-w", "%{http_code}", "-r", "100-199", url]).stdout;
    assert_eq!(&ranged[..100], &blob[100..200]);
    assert!(ranged.ends_with(b"206"));
    let head = String::from_utf8(curl(&["-fsI", url]).stdout)
        .unwrap()
        .to_lowercase();
    assert!(
        head.contains(&format!("content-length: {}", blob.len())),
        "{head}"
    );

    // Assertions, byte for byte as imported, under both paths snapd has used.
    let chain = authority.snap_assertions(&two, 2, None);
    let revision_url = format!(
        "{base}/v2/assertions/snap-revision/{}?max-format=0",
        chain[3].header("snap-sha3-384").unwrap()
    );
    let served = curl(&["-fs", "-D", "-", &revision_url]).stdout;
    let served = String::from_utf8(served).unwrap();
    assert!(
        served
            .to_lowercase()
            .contains("content-type: application/x.ubuntu.assertion"),
        "{served}"
    );
    let body = &served[served.find("\r\n\r\n").unwrap() + 4..];
    let parsed = Assertion::parse(body.as_bytes()).unwrap();
    assert_eq!(parsed.header("snap-revision"), Some("2"));
    for path in [
        format!("v2/assertions/snap-declaration/16/{SNAP_ID}"),
        "api/v1/snaps/assertions/account/publisher1".into(),
        format!(
            "v2/assertions/account-key/{}",
            chain[0].header("public-key-sha3-384").unwrap()
        ),
    ] {
        assert!(
            curl(&["-fs", &format!("{base}/{path}")]).status.success(),
            "{path}"
        );
    }
    let (status, content_type, missing) =
        get_json(&format!("{base}/v2/assertions/snap-revision/nonexistent"));
    assert_eq!(
        (status, content_type.as_str()),
        (404, "application/problem+json")
    );
    assert_eq!(missing["error-list"][0]["code"], "not-found");

    // Refresh actions, as the daemon and `snap download` send them.
    let action = |a: Value| {
        post_json(
            &format!("{base}/v2/snaps/refresh"),
            &json!({"context": [], "actions": [a], "fields": ["download"]}).to_string(),
        )
    };
    let (status, r) = action(
        json!({"action": "install", "instance-key": "install-1", "name": "hello-airlock", "channel": "stable", "epoch": null}),
    );
    assert_eq!(status, 200);
    assert_eq!(r["results"][0]["snap"]["revision"], 1);
    assert_eq!(r["results"][0]["effective-channel"], "latest/stable");
    assert_eq!(r["results"][0]["instance-key"], "install-1");
    let (_, r) = action(
        json!({"action": "install", "instance-key": "install-1", "name": "hello-airlock", "channel": "edge", "epoch": null}),
    );
    assert_eq!(
        r["results"][0]["snap"]["revision"], 2,
        "closed edge follows beta"
    );
    assert_eq!(r["results"][0]["effective-channel"], "latest/beta");
    let (_, r) = action(
        json!({"action": "download", "instance-key": "download-1", "name": "hello-airlock", "revision": 1, "epoch": null}),
    );
    assert_eq!(
        r["results"][0]["snap"]["download"]["size"],
        std::fs::metadata(&one).unwrap().len()
    );
    assert!(
        r["results"][0]["snap"]["snap-yaml"]
            .as_str()
            .unwrap()
            .contains("version: '1.0'")
    );
    let (_, r) = action(
        json!({"action": "install", "instance-key": "install-1", "name": "nothing-here", "epoch": null}),
    );
    assert_eq!(r["results"][0]["error"]["code"], "name-not-found");
    assert_eq!(r["results"][0]["name"], "nothing-here");
    let (_, r) = action(
        json!({"action": "install", "instance-key": "install-1", "name": "hello-airlock", "channel": "3.x/stable", "epoch": null}),
    );
    assert_eq!(r["results"][0]["error"]["code"], "revision-not-found");
    assert!(
        r["results"][0]["error"]["extra"]["releases"]
            .as_array()
            .unwrap()
            .contains(&json!({"architecture": "amd64", "channel": "2.x/stable"}))
    );
    let refresh = |revision: u64, tracking: &str| {
        post_json(&format!("{base}/v2/snaps/refresh"), &json!({
            "context": [{"snap-id": SNAP_ID, "instance-key": SNAP_ID, "revision": revision, "tracking-channel": tracking, "epoch": {"read": [0], "write": [0]}, "refreshed-date": "2024-01-01T00:00:00Z"}],
            "actions": [{"action": "refresh", "instance-key": SNAP_ID, "snap-id": SNAP_ID}],
        }).to_string()).1
    };
    assert_eq!(
        refresh(1, "latest/stable")["results"],
        json!([]),
        "up to date: no result"
    );
    assert_eq!(
        refresh(1, "latest/beta")["results"][0]["snap"]["revision"],
        2
    );
    let (_, r) = action(
        json!({"action": "fetch-assertions", "key": "g1", "assertions": [{"type": "snap-declaration", "primary-key": ["16", SNAP_ID]}, {"type": "validation-set", "primary-key": ["16", "x", "y", "1"]}]}),
    );
    assert_eq!(
        r["results"][0]["assertion-stream-urls"],
        json!([format!(
            "{base}/v2/assertions/snap-declaration/16/{SNAP_ID}"
        )])
    );
    assert_eq!(r["results"][0]["error-list"][0]["code"], "not-found");

    // The real client.
    // The real client, over HTTPS: snapd trusts the site CA through store-certs, as
    // `airlock snap client-config` tells operators to set it.
    let https = server
        .https
        .clone()
        .unwrap()
        .replace("127.0.0.1", "localhost");
    let snapd = Snapd::start(&https);
    let (ok, untrusted) = snapd.snap(&["info", "hello-airlock"]);
    // snapd 2.57 reports the failed handshake as "no snap found"; what matters is that it
    // fails until the CA is trusted, and works after.
    assert!(
        !ok,
        "snapd accepted a certificate it has no CA for: {untrusted}"
    );
    // Under the store's own name (a site with DNS pointing api.snapcraft.io here and HTTPS
    // on port 443; here curl's --resolve and the port bound): the certificate covers the
    // name, downloads are advertised under it, and the file comes back whole.
    let port = https.rsplit(':').next().unwrap();
    let resolve = format!("api.snapcraft.io:{port}:127.0.0.1");
    let ca_file = site.path().join("tls/ca.pem");
    let store = |url: &str| {
        let out = curl(&[
            "-fsS",
            "--cacert",
            ca_file.to_str().unwrap(),
            "--resolve",
            &resolve,
            url,
        ]);
        assert!(
            out.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let named = format!("https://api.snapcraft.io:{port}");
    let info: Value = serde_json::from_slice(&store(&format!(
        "{named}/v2/snaps/info/hello-airlock?architecture=amd64&fields=download"
    )))
    .unwrap();
    let download = &info["channel-map"][0]["download"];
    let url = download["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{named}/api/v1/snaps/download/")),
        "{url}"
    );
    assert_eq!(
        hex::encode(Sha3_384::digest(store(url))),
        download["sha3-384"].as_str().unwrap()
    );

    let ca = std::fs::read_to_string(&ca_file).unwrap();
    let (ok, said) = snapd.snap(&["set", "system", &format!("store-certs.airlock={ca}")]);
    assert!(ok, "{said}");
    let (ok, info) = snapd.snap(&["info", "hello-airlock"]);
    assert!(ok, "{info}");
    for expected in [
        "name:      hello-airlock",
        "summary:   Says hello from the air gap",
        "publisher: Airlock Tester",
        "license:   MIT",
        "snap-id: hElL0A1rl0ck5nap1dF0rTest5xxxxxx",
    ] {
        assert!(
            info.contains(expected),
            "snap info lacks {expected:?}:\n{info}"
        );
    }
    let line = |channel: &str| {
        info.lines()
            .find(|l| l.trim_start().starts_with(channel))
            .unwrap_or_else(|| panic!("no {channel} in\n{info}"))
            .to_string()
    };
    assert!(
        line("latest/stable:").contains("1.0") && line("latest/stable:").contains("(1)"),
        "{info}"
    );
    assert!(
        line("latest/candidate:").contains('↑') || line("latest/candidate:").contains('^'),
        "{info}"
    );
    assert!(
        line("latest/beta:").contains("2.0") && line("latest/beta:").contains("(2)"),
        "{info}"
    );
    assert!(line("2.x/stable:").contains("2.0"), "{info}");
    let (ok, found) = snapd.snap(&["find", "hello"]);
    assert!(ok, "{found}");
    assert!(
        found
            .lines()
            .any(|l| l.starts_with("hello-airlock") && l.contains("1.0") && l.contains("tester")),
        "{found}"
    );
    let (ok, none) = snapd.snap(&["info", "not-in-this-store"]);
    assert!(!ok && none.contains("no snap found"), "{none}");
    drop(snapd);

    // `snap download` runs the refresh action, downloads the blob and checks its sha3-384 and
    // size before it asks for the assertions; those it then checks against Canonical's root,
    // which a test root cannot satisfy. So: the file arrives intact, the chain is refused.
    let downloads = tempfile::tempdir().unwrap();
    let out = Command::new("snap")
        .args(["download", "hello-airlock", "--channel=beta"])
        .env("SNAPPY_FORCE_API_URL", format!("{base}/"))
        .current_dir(downloads.path())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("Fetching assertions for \"hello-airlock\""),
        "{said}"
    );
    assert!(
        said.contains("cannot fetch snap signatures/assertions"),
        "{said}"
    );
    assert_eq!(
        std::fs::read(downloads.path().join("hello-airlock_2.snap")).unwrap(),
        std::fs::read(&two).unwrap()
    );
    // A name DNS is told to point here after the certificate was made: verify warns, and a
    // new certificate from `tls init` (same CA) settles it.
    site.add_config("\n[dns]\nnames = [\"late.example\"]\n");
    let warned = |site: &Site| {
        let out = site.run(&["verify", "site", "--json", "--url", base]);
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        json["warnings"].as_array().unwrap().iter().any(|w| {
            w["got"]
                .as_str()
                .unwrap_or("")
                .contains("lacks late.example")
        })
    };
    assert!(warned(&site));
    site.ok(&["tls", "init"]);
    assert!(!warned(&site));
    drop(server);
}

/// Every file of the data folder except the lock: what a refused import must leave as it was.
fn data_state(site: &Site) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut state = site.snapshot();
    state.retain(|name, _| name.starts_with("data/") && !name.ends_with(".lock"));
    state
}

#[test]
fn bad_snaps_are_refused_and_nothing_changes() {
    let authority = Authority::new();
    let site = site_with(&authority);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let good = build_snap(dir, "hello-airlock_1.snap", &snap_yaml("1.0"), "gzip");
    authority.assert_file(&good, 1);
    site.ok(&[
        "snap",
        "import",
        good.to_str().unwrap(),
        "--channel",
        "stable",
    ]);
    let before = data_state(&site);

    let write = |name: &str, assertions: &[Assertion]| {
        let path = dir.join(name);
        std::fs::write(&path, encode(&assertions.iter().collect::<Vec<_>>())).unwrap();
        path
    };
    let other = build_snap(dir, "other.snap", &snap_yaml("1.1"), "zstd");
    let truncated = dir.join("truncated.snap");
    let whole = std::fs::read(&other).unwrap();
    // mksquashfs pads images to 4 KiB: cut well inside the image itself.
    std::fs::write(&truncated, &whole[..200]).unwrap();
    let not_squashfs = dir.join("text.snap");
    std::fs::write(&not_squashfs, "this is not a squashfs image\n".repeat(100)).unwrap();
    let bad_yaml = build_snap(
        dir,
        "bad-yaml.snap",
        "name: hello-airlock\nversion: [unclosed\n",
        "xz",
    );
    let renamed = build_snap(
        dir,
        "renamed.snap",
        &snap_yaml("1.0").replace("name: hello-airlock", "name: someone-else"),
        "xz",
    );

    let mut altered = authority.snap_assertions(&other, 5, None);
    let text = String::from_utf8(altered[3].encoded().to_vec())
        .unwrap()
        .replace("snap-revision: 5", "snap-revision: 6");
    altered[3] = Assertion::parse(text.as_bytes()).unwrap();

    let cases: Vec<(&str, PathBuf, PathBuf, Vec<&str>)> = vec![
        (
            "assertions of another file",
            other.clone(),
            write("a.assert", &authority.snap_assertions(&good, 5, None)),
            vec![],
        ),
        (
            "wrong size",
            other.clone(),
            write(
                "b.assert",
                &authority.snap_assertions(&other, 5, Some(12345)),
            ),
            vec![],
        ),
        (
            "altered after signing",
            other.clone(),
            write("c.assert", &altered),
            vec![],
        ),
        (
            "chain to an unknown root",
            other.clone(),
            write(
                "d.assert",
                &Authority::new().snap_assertions(&other, 5, None),
            ),
            vec![],
        ),
        (
            "truncated snap",
            truncated.clone(),
            write("e.assert", &authority.snap_assertions(&truncated, 5, None)),
            vec![],
        ),
        (
            "not a squashfs",
            not_squashfs.clone(),
            write(
                "f.assert",
                &authority.snap_assertions(&not_squashfs, 5, None),
            ),
            vec![],
        ),
        (
            "snap.yaml does not parse",
            bad_yaml.clone(),
            write("g.assert", &authority.snap_assertions(&bad_yaml, 5, None)),
            vec![],
        ),
        (
            "name differs from the declaration",
            renamed.clone(),
            write("h.assert", &authority.snap_assertions(&renamed, 5, None)),
            vec![],
        ),
        (
            "unknown channel",
            other.clone(),
            write("i.assert", &authority.snap_assertions(&other, 5, None)),
            vec!["--channel", "1.0/rough"],
        ),
    ];
    let expected = [
        "holds no snap-revision for this file",
        "but its snap-revision says 12345",
        "the signature does not verify",
        "is not known",
        "truncated: the squashfs image is",
        "not a snap: a snap is a squashfs image",
        "meta/snap.yaml",
        "meta/snap.yaml names \"someone-else\" but its snap-declaration is for \"hello-airlock\"",
        "\"1.0/rough\" is not a channel",
    ];
    for ((what, snap, assert, extra), expected) in cases.into_iter().zip(expected) {
        let mut args = vec![
            "snap",
            "import",
            snap.to_str().unwrap(),
            assert.to_str().unwrap(),
        ];
        args.extend(extra);
        let out = site.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: accepted");
        assert!(stderr.contains(expected), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        assert_eq!(data_state(&site), before, "{what}: the data folder changed");
    }
    // Without the declaration, a store that never saw it refuses; one that has it from an
    // earlier import accepts (`snap download` leaves out what the store already holds).
    let chain = authority.snap_assertions(&other, 5, None);
    let partial = write("j.assert", &chain[3..]);
    let no_declaration = write(
        "k.assert",
        &[chain[0].clone(), chain[1].clone(), chain[3].clone()],
    );
    let fresh = site_with(&authority);
    let out = fresh.run(&[
        "snap",
        "import",
        other.to_str().unwrap(),
        no_declaration.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the snap-declaration of snap-id {SNAP_ID} is missing"
        )),
        "{stderr}"
    );
    assert!(!fresh.path().join("data/state/snaps/catalog.json").exists());
    let out = site.ok(&[
        "snap",
        "import",
        other.to_str().unwrap(),
        partial.to_str().unwrap(),
    ]);
    assert!(out.contains("imported hello-airlock revision 5"), "{out}");

    // The API: snapd-shaped 4xx, never 5xx (snapd retries those for half a minute).
    let server = site.serve();
    let base = &server.url;
    let (status, r) = post_json(&format!("{base}/v2/snaps/refresh"), "{\"actions\": [");
    assert_eq!(status, 400);
    assert_eq!(r["error-list"][0]["code"], "invalid-request");
    let (status, _) = post_json(&format!("{base}/v2/snaps/refresh"), "{\"actions\": 3}");
    assert_eq!(status, 400);
    let huge = format!(
        "{{\"context\": [], \"actions\": [], \"pad\": \"{}\"}}",
        "x".repeat(2 << 20)
    );
    let huge_file = dir.join("huge.json");
    std::fs::write(&huge_file, huge).unwrap();
    let (status, _) = post_json(
        &format!("{base}/v2/snaps/refresh"),
        &format!("@{}", huge_file.display()),
    );
    assert_eq!(status, 413, "oversized body");
    // Within the size limit, but each action could answer with a whole snap.yaml.
    let action =
        json!({"action": "install", "instance-key": "i", "name": "hello-airlock", "epoch": null});
    let many = json!({"context": [], "actions": vec![action; 501]}).to_string();
    let (status, r) = post_json(&format!("{base}/v2/snaps/refresh"), &many);
    assert_eq!(
        (status, r["error-list"][0]["code"].as_str()),
        (400, Some("too-many-actions"))
    );
    for path in [
        "v2/snaps/nothing",
        "api/v1/snaps/what",
        "v2/snaps/info/unknown-snap",
        "api/v1/snaps/download/garbage",
        "api/v1/snaps/download/x_1.snap",
        "v2/assertions/account/..%2F..%2Fetc",
        "api/v1/snaps/icon/abc.png",
    ] {
        let (status, content_type, body) = get_json(&format!("{base}/{path}"));
        assert_eq!(status, 404, "{path}");
        assert!(
            content_type.starts_with("application/") && content_type.ends_with("json"),
            "{path}: {content_type}"
        );
        assert!(body["error-list"][0]["code"].is_string(), "{path}: {body}");
    }
    let (status, _, _) = get_json(&format!("{base}/v2/snaps/find?q=a%2Bb"));
    assert_eq!(status, 400, "find with characters snapd refuses");
}

#[test]
fn fetch_from_another_airlock_over_https() {
    let authority = Authority::new();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();

    // Site A, the upstream: the app, its base and snapd, served over HTTPS with its own CA.
    let a = site_with(&authority);
    a.site_settings(TLS);
    let out = a.ok(&["tls", "init"]);
    assert!(out.contains("new site CA"), "{out}");
    let one = build_snap(dir, "hello-airlock_1.snap", &snap_yaml("1.0"), "xz");
    let two = build_snap(dir, "hello-airlock_2.snap", &snap_yaml("2.0"), "xz");
    let prereqs = dir.join("prereqs");
    std::fs::create_dir(&prereqs).unwrap();
    std::fs::write(prereqs.join("broken.snap"), "no assertions for this one").unwrap();
    let core22 = build_snap(
        &prereqs,
        "core22_10.snap",
        "name: core22\nversion: '20240101'\ntype: base\nsummary: base\n",
        "xz",
    );
    let snapd = build_snap(
        &prereqs,
        "snapd_20.snap",
        "name: snapd\nversion: '2.66'\ntype: snapd\nsummary: daemon\n",
        "xz",
    );
    authority.assert_file(&one, 1);
    authority.assert_file(&two, 2);
    authority.assert_file_for(&core22, "core22", "c0re22c0re22c0re22c0re22c0re22xx", 10);
    authority.assert_file_for(&snapd, "snapd", "snapdsnapdsnapdsnapdsnapdsnapdxx", 20);
    a.ok(&[
        "snap",
        "import",
        one.to_str().unwrap(),
        "--channel",
        "stable",
    ]);
    a.ok(&[
        "snap",
        "import",
        two.to_str().unwrap(),
        "--channel",
        "2.x/stable",
    ]);
    // A folder at once: one refusal is reported, the other snaps are imported.
    let out = a.run(&[
        "snap",
        "import",
        prereqs.to_str().unwrap(),
        "--channel",
        "stable",
        "--arch",
        "amd64",
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("broken.snap") && stderr.contains("1 of 3 snaps refused"),
        "{stderr}"
    );
    assert!(
        stdout.contains("imported core22 revision 10")
            && stdout.contains("imported snapd revision 20"),
        "{stdout}"
    );
    let client = a.ok(&["snap", "client-config"]);
    assert!(
        client.contains("Environment=SNAPPY_FORCE_API_URL=https://127.0.0.1:"),
        "{client}"
    );
    assert!(
        client.contains("snap set system store-certs.airlock=")
            && client.contains("BEGIN CERTIFICATE"),
        "{client}"
    );
    assert!(
        client.contains("#cloud-config")
            && client.contains("/etc/systemd/system/snapd.service.d/airlock-store.conf"),
        "{client}"
    );
    let server_a = a.serve();
    let https = server_a.https.clone().expect("site A serves HTTPS");
    // The name the certificate covers, on the port A bound.
    let upstream = https.replace("127.0.0.1", "localhost");
    let ca = a.path().join("tls/ca.pem");
    let ok = curl(&[
        "-fs",
        "--cacert",
        ca.to_str().unwrap(),
        &format!("{upstream}/v2/snaps/info/hello-airlock"),
    ]);
    assert!(
        ok.status.success(),
        "curl trusts A's certificate through the site CA"
    );

    // Site B, the air-gapped side: its own key, never saw the upstream files.
    let b = site_with(&authority);
    b.add_config(&format!(
            "upstream = \"{upstream}/\"\nupstream_ca = \"{}\"\n\n[[snaps.snap]]\nname = \"hello-airlock\"\nchannels = [\"stable\", \"2.x/stable\"]\narchitectures = [\"amd64\"]\n\n[sync]\ntimeout = \"5s\"\nretries = 1\n",
            ca.display()
        ));
    let out = b.ok(&["snap", "fetch"]);
    for expected in [
        "fetched hello-airlock revision 1 (1.0) for amd64 on latest/stable",
        "fetched hello-airlock revision 2 (2.0) for amd64 on 2.x/stable",
        "fetched core22 revision 10 (20240101) for amd64 on latest/stable  (added: another snap needs it)",
        "fetched snapd revision 20 (2.66) for amd64 on latest/stable  (added: another snap needs it)",
    ] {
        assert!(out.contains(expected), "lacks {expected:?}:\n{out}");
    }
    // A second fetch downloads nothing and imports nothing again: the catalog (release
    // times included) is unchanged.
    let catalog = b.path().join("data/state/snaps/catalog.json");
    let before = std::fs::read(&catalog).unwrap();
    let again = b.ok(&["snap", "fetch"]);
    assert!(
        !again.contains("fetched") && again.contains("had hello-airlock revision 2"),
        "{again}"
    );
    assert!(
        std::fs::read(&catalog).unwrap() == before,
        "a fetch with nothing new rewrote the catalog"
    );
    // Each snap's first fetch is on record with what it added to the store (its blobs and
    // assertions), the second fetch not at all: verify estimates the next from updates.
    let runs = sync_history(&b);
    let sources: Vec<(&str, &str)> = runs
        .iter()
        .map(|(source, kind, _)| (source.as_str(), kind.as_str()))
        .collect();
    assert_eq!(
        sources,
        [
            ("snaps/core22", "first"),
            ("snaps/hello-airlock", "first"),
            ("snaps/snapd", "first")
        ]
    );
    let hello_bytes = runs[1].2;
    let blobs = std::fs::metadata(&one).unwrap().len() + std::fs::metadata(&two).unwrap().len();
    assert!(hello_bytes > blobs, "{hello_bytes} <= {blobs}");

    // B serves what it fetched: the same bytes and channels.
    let server_b = b.serve();
    let (status, _, info) = get_json(&format!(
        "{}/v2/snaps/info/hello-airlock?architecture=amd64",
        server_b.url
    ));
    assert_eq!(status, 200);
    let channels: Vec<&str> = info["channel-map"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["latest/stable", "2.x/stable"]);
    let blob = curl(&[
        "-fs",
        info["channel-map"][1]["download"]["url"].as_str().unwrap(),
    ])
    .stdout;
    assert_eq!(blob, std::fs::read(&two).unwrap());
    // `airlock verify` asks B as snapd would: info, refresh, assertions up to B's trusted
    // root, every blob (--full).
    let out = b.run(&["verify", "--url", &server_b.url, "--full"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("snaps") && l.ends_with("ok")),
        "{text}"
    );
    // Without the root B trusts, the same chains are refused, by snap and channel.
    let config = std::fs::read_to_string(b.config()).unwrap();
    std::fs::write(
        b.config(),
        config.replace("trusted_keys = \"root.assert\"\n", ""),
    )
    .unwrap();
    let out = b.run(&["verify", "--url", &server_b.url, "--sample", "0"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAILED snaps: hello-airlock latest/stable amd64: assertions")
            && text.contains("not a root this site trusts"),
        "{text}"
    );
    std::fs::write(b.config(), config).unwrap();

    // B as the writer of a bucket, keeping none of its snaps on its own disk: a fetch with
    // nothing new reads nothing back; a revision released on another channel upstream is
    // read back from the bucket for its import, and the push drops it again; a frontend
    // serves them.
    let garage = crate::common::garage::Garage::start();
    b.add_config(&garage.storage(&garage.endpoint, "snaps/", "keep_pushed = \"0\"\n"));
    let out = b.ok(&["push"]);
    assert!(
        out.contains("dropped from this disk after the push"),
        "{out}"
    );
    let two_sha256 = airlock_core::storage::Sha256::of(&std::fs::read(&two).unwrap()).to_hex();
    let stored = |site: &Site| crate::common::store_blobs(site).contains_key(&two_sha256);
    assert!(!stored(&b), "revision 2 is still on B's disk");
    let before = std::fs::read(&catalog).unwrap();
    let again = b.ok(&["snap", "fetch"]);
    assert!(
        again.contains("had hello-airlock revision 2") && !again.contains("dropped"),
        "{again}"
    );
    assert!(!stored(&b), "revision 2 is back on B's disk");
    assert!(std::fs::read(&catalog).unwrap() == before);
    a.ok(&[
        "snap",
        "import",
        one.to_str().unwrap(),
        "--channel",
        "2.x/stable",
    ]);
    let again = b.ok(&["snap", "fetch"]);
    assert!(
        again.contains("had hello-airlock revision 1 (1.0) for amd64 on 2.x/stable")
            && again.contains("dropped from this disk after the push"),
        "{again}"
    );
    let one_sha256 = airlock_core::storage::Sha256::of(&std::fs::read(&one).unwrap()).to_hex();
    assert!(
        !crate::common::store_blobs(&b).contains_key(&one_sha256),
        "revision 1 is still on B's disk"
    );
    let (_front, frontend) = garage.start_frontend("snaps/", "1s");
    let (status, _, info) = get_json(&format!(
        "{}/v2/snaps/info/hello-airlock?architecture=amd64",
        frontend.url
    ));
    assert_eq!(status, 200);
    let blob = curl(&[
        "-fs",
        info["channel-map"][1]["download"]["url"].as_str().unwrap(),
    ])
    .stdout;
    assert_eq!(
        blob,
        std::fs::read(&one).unwrap(),
        "2.x/stable is revision 1 now"
    );

    // Without A's CA, B refuses the connection and says why.
    let c = site_with(&authority);
    c.add_config(&format!("upstream = \"{upstream}/\"\n\n[[snaps.snap]]\nname = \"hello-airlock\"\n\n[sync]\nretries = 0\n"));
    let out = c.run(&["snap", "fetch"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.to_lowercase().contains("certificate"),
        "{stderr}"
    );
    drop(server_a);
}
