//! `airlock verify`: a published repository checked from the data folder alone (--offline)
//! and over HTTP as apt-get fetches it; then a blob damaged on disk, one deleted, and the
//! server down, each reported by name with exit status 1.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Site, dpkg_deb};
use serde_json::Value;

const REPO: &str = r#"
[[apt.repo]]
name = "local"
suites = ["stable"]
components = ["main"]
architectures = ["amd64"]
valid_for = "3d"
"#;

fn verify(site: &Site) -> (i32, String, Value) {
    let out = site.run(&["verify", "--offline"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let json = site.run(&["verify", "--offline", "--json"]);
    assert_eq!(json.status.code(), out.status.code());
    (
        out.status.code().unwrap(),
        text,
        serde_json::from_slice(&json.stdout).unwrap(),
    )
}

#[test]
fn verify_finds_damaged_and_missing_files_offline_and_online() {
    let site = Site::new("ed25519", REPO);
    let debs = tempfile::tempdir().unwrap();
    for name in ["hello", "world"] {
        let deb = dpkg_deb(debs.path(), name, "1.0", "amd64", "", "gzip");
        site.include("stable", "main", &deb);
    }
    site.ok(&["publish"]);

    let (status, text, json) = verify(&site);
    assert_eq!(status, 0, "{text}");
    assert!(text.contains("all checks passed"), "{text}");
    assert_eq!(json["passed"], true);
    let areas: Vec<&str> = json["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["area"].as_str().unwrap())
        .collect();
    assert_eq!(areas, ["store", "apt/local"]);
    assert!(json["areas"][1]["checked"].as_u64().unwrap() > 5, "{json}");

    // Online, as apt-get fetches: InRelease signed by the site key, every listed index, every
    // pool file (--full). The Release expires within the 7-day horizon: a warning, not a failure.
    let server = site.serve();
    let url = server.url.clone();
    let online = |extra: &[&str]| {
        let mut args = vec!["verify", "--url", url.as_str(), "--full"];
        args.extend(extra);
        let out = site.run(&args);
        (
            out.status.code().unwrap(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (status, text) = online(&[]);
    assert_eq!(status, 0, "{text}");
    assert!(
        text.contains("WARNING apt/local") && text.contains("expires on"),
        "{text}"
    );
    let checked: u64 = text
        .lines()
        .find(|l| l.starts_with("apt/local"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        checked >= 1 + 4 + 2,
        "InRelease, the listed indices and both pool files: {text}"
    );
    let (status, text) = online(&["--horizon-days", "1"]);
    assert_eq!(status, 0, "{text}");
    assert!(!text.contains("WARNING apt/local"), "{text}");

    // The pool file of `hello`: damage its blob in place (same size), as a bad disk would.
    let pool = site
        .public("local")
        .join("pool/main/h/hello/hello_1.0_amd64.deb");
    let blob = std::fs::canonicalize(&pool).unwrap();
    let blob = if blob.starts_with(site.path().join("data/store")) {
        blob
    } else {
        // Trees hold hard links: find the store's name for the same file.
        let bytes = std::fs::read(&pool).unwrap();
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        site.path()
            .join(format!("data/store/sha256/{}/{digest}", &digest[..2]))
    };
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[100] ^= 0xff;
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&blob, &bytes).unwrap();
    let (status, text, json) = verify(&site);
    assert_eq!(status, 1, "{text}");
    assert!(
        text.contains(&format!("FAILED store: {}", blob.display())),
        "{text}"
    );
    assert_eq!(json["failures"].as_array().unwrap().len(), 1, "{json}");
    // The server serves that same damaged file: apt would report a Hash Sum mismatch.
    let (status, text) = online(&[]);
    assert_eq!(status, 1, "{text}");
    assert!(
        text.contains("pool/main/h/hello/hello_1.0_amd64.deb") && text.contains("SHA-256 is"),
        "{text}"
    );

    // A blob gone: the store has nothing to re-hash, the tree names a file whose blob is lost.
    let world = site
        .public("local")
        .join("pool/main/w/world/world_1.0_amd64.deb");
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        std::fs::read(&world).unwrap(),
    ));
    std::fs::remove_file(
        site.path()
            .join(format!("data/store/sha256/{}/{digest}", &digest[..2])),
    )
    .unwrap();
    let (status, text, _) = verify(&site);
    assert_eq!(status, 1, "{text}");
    assert!(
        text.contains("pool/main/w/world/world_1.0_amd64.deb")
            && text.contains("its blob is missing from the store"),
        "{text}"
    );

    // A server that is down: one failed check that says so, not a crash or a hang.
    drop(server);
    let (status, text) = online(&[]);
    assert_eq!(status, 1, "{text}");
    assert!(
        text.contains("a server answering") && text.contains("1 checks failed"),
        "{text}"
    );

    // No such site: could not run.
    let out = std::process::Command::new(common::AIRLOCK)
        .args([
            "--config",
            "/nonexistent/airlock.toml",
            "verify",
            "--offline",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A sampled verify checks every pool file new since the last one: a file a sync just brought
/// in, damaged, is found even with a sample of none.
#[test]
fn sampled_verify_checks_what_is_new_since_the_last() {
    let site = Site::new("ed25519", REPO);
    let debs = tempfile::tempdir().unwrap();
    let hello = dpkg_deb(debs.path(), "hello", "1.0", "amd64", "", "gzip");
    site.include("stable", "main", &hello);
    site.ok(&["publish"]);
    let server = site.serve();
    let sampled = |site: &Site| {
        let out = site.run(&["verify", "--url", &server.url, "--sample", "0"]);
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // The first run samples (none here) and records what is listed.
    let (status, text) = sampled(&site);
    assert_eq!(status, 0, "{text}");

    let world = dpkg_deb(debs.path(), "world", "1.0", "amd64", "", "gzip");
    site.include("stable", "main", &world);
    site.ok(&["publish"]);
    // Damage the new file's blob (the published file is a hard link to it).
    let published = site
        .public("local")
        .join("pool/main/w/world/world_1.0_amd64.deb");
    let mut bytes = std::fs::read(&published).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    let mode = std::fs::metadata(&published).unwrap().permissions();
    let mut writable = mode.clone();
    writable.set_mode(0o644);
    std::fs::set_permissions(&published, writable).unwrap();
    std::fs::write(&published, &bytes).unwrap();
    std::fs::set_permissions(&published, mode).unwrap();

    let (status, text) = sampled(&site);
    assert_eq!(status, 1, "{text}");
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("FAILED ")).collect();
    assert_eq!(failed.len(), 1, "{text}");
    assert!(
        failed[0].contains("pool/main/w/world/world_1.0_amd64.deb"),
        "{text}"
    );
    // It failed, so it is still "new" next time: found again.
    let (status, text) = sampled(&site);
    assert_eq!(status, 1, "{text}");
}
