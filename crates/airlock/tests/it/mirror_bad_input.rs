//! A misbehaving upstream: each fault is refused with an error naming the URL and the reason,
//! and what airlock serves stays exactly as before.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::Site;
use crate::common::upstream::{Archive, Fault, Upstream, pkg};
use airlock_core::storage::Sha256;

fn archive() -> Archive {
    Archive::new(
        "ed25519",
        &["stable"],
        &["main"],
        &["amd64"],
        &[
            pkg("stable", "main", "app", "1.0", "amd64", "Depends: lib\n"),
            pkg("stable", "main", "lib", "1", "amd64", ""),
        ],
    )
}

/// Fails fast: the faults below would otherwise wait out the default patience.
const PATIENCE: &str = "[sync]\ntimeout = \"1s\"\nretries = 1\n";

struct Setup {
    archive: Archive,
    upstream: Upstream,
    site: Site,
}

/// A mirror synced once, successfully.
fn synced(extra: &str) -> Setup {
    let archive = archive();
    let upstream = Upstream::serve(archive.path());
    let config = format!(
        "{}{PATIENCE}",
        archive.mirror_config("mirror", &upstream.url, extra)
    );
    let site = Site::new("ed25519", &config);
    site.ok(&["sync"]);
    Setup {
        archive,
        upstream,
        site,
    }
}

/// What clients are served: the trees and the symlinks that pick them.
fn served(site: &Site) -> BTreeMap<String, Vec<u8>> {
    site.snapshot()
        .into_iter()
        .filter(|(path, _)| path.starts_with("data/trees") || path.starts_with("data/public"))
        .collect()
}

fn refused(setup: &Setup, needles: &[&str]) {
    let before = served(&setup.site);
    let out = setup.site.run(&["sync"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "sync succeeded:\n{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{needle:?} missing from:\n{stderr}"
        );
    }
    assert!(
        error.contains(&setup.upstream.url),
        "the error names the URL: {error}"
    );
    assert!(served(&setup.site) == before, "what is served changed");
}

fn file_digest(path: &Path) -> String {
    Sha256::of(&std::fs::read(path).unwrap()).to_hex()
}

#[test]
fn wrong_key() {
    let setup = synced("");
    // The site's own key is a valid OpenPGP key, but not the upstream's.
    let config = std::fs::read_to_string(setup.site.config()).unwrap();
    let config = config.replace(
        &setup.archive.keyring.display().to_string(),
        &setup.site.keyring().display().to_string(),
    );
    std::fs::write(setup.site.config(), config).unwrap();
    refused(
        &setup,
        &[
            "dists/stable/InRelease",
            "no signature by a key of the keyring",
        ],
    );
}

#[test]
fn signature_over_altered_content() {
    let setup = synced("");
    let inrelease =
        std::fs::read_to_string(setup.archive.path().join("dists/stable/InRelease")).unwrap();
    setup.upstream.fault(
        "dists/stable/InRelease",
        Fault::Replace(
            inrelease
                .replace("Origin: Test", "Origin: Evil")
                .into_bytes(),
        ),
    );
    refused(&setup, &["dists/stable/InRelease", "bad signature by key"]);
}

#[test]
fn index_that_does_not_match_the_release() {
    let setup = synced("");
    setup
        .archive
        .add(&pkg("stable", "main", "new", "1", "amd64", ""));
    let gz = setup
        .archive
        .path()
        .join("dists/stable/main/binary-amd64/Packages.gz");
    let digest = file_digest(&gz);
    setup.upstream.fault(
        &format!("dists/stable/main/binary-amd64/by-hash/SHA256/{digest}"),
        Fault::Corrupt,
    );
    refused(
        &setup,
        &["by-hash/SHA256/", "SHA-256 is", "the signed index says"],
    );
}

#[test]
fn pool_file_with_the_right_size_and_wrong_content() {
    let setup = synced("");
    setup
        .archive
        .add(&pkg("stable", "main", "new", "1", "amd64", ""));
    setup
        .upstream
        .fault("pool/stable/main/new_1_amd64.deb", Fault::Corrupt);
    refused(
        &setup,
        &[
            "pool/stable/main/new_1_amd64.deb",
            "SHA-256 is",
            "the signed index says",
        ],
    );
}

#[test]
fn filename_leaving_the_archive() {
    let setup = synced("");
    setup
        .archive
        .rewrite_packages("stable", "main", "amd64", |text| {
            text.replace(
                "Filename: pool/stable/main/lib_1_amd64.deb",
                "Filename: ../../../etc/passwd",
            )
        });
    refused(
        &setup,
        &[
            "dists/stable/main/binary-amd64/Packages",
            "forbidden component",
        ],
    );
    setup
        .archive
        .rewrite_packages("stable", "main", "amd64", |text| {
            text.replace("Filename: ../../../etc/passwd", "Filename: /etc/passwd")
        });
    refused(
        &setup,
        &["dists/stable/main/binary-amd64/Packages", "is not relative"],
    );
}

#[test]
fn source_directory_leaving_the_archive() {
    let setup = synced("sources = true");
    let dir = setup.archive.path().join("dists/stable/main/source");
    let stanza = format!(
        "Package: app\nVersion: 1.0\nDirectory: pool/../../..\nChecksums-Sha256:\n {} 4 shadow\n",
        Sha256::of(b"evil")
    );
    std::fs::write(dir.join("Sources"), stanza).unwrap();
    let _ = std::fs::remove_file(dir.join("Sources.xz"));
    setup.archive.relist("stable");
    refused(
        &setup,
        &["dists/stable/main/source/Sources", "forbidden component"],
    );
}

#[test]
fn truncated_download() {
    let setup = synced("");
    setup
        .archive
        .add(&pkg("stable", "main", "new", "1", "amd64", ""));
    setup
        .upstream
        .fault("pool/stable/main/new_1_amd64.deb", Fault::Truncate(100));
    refused(
        &setup,
        &[
            "pool/stable/main/new_1_amd64.deb",
            "truncated, 100 of",
            "the body ended early",
        ],
    );
}

#[test]
fn upstream_that_stops_answering() {
    let setup = synced("");
    setup
        .archive
        .add(&pkg("stable", "main", "new", "1", "amd64", ""));
    setup
        .upstream
        .fault("pool/stable/main/new_1_amd64.deb", Fault::Stall(10));
    refused(
        &setup,
        &[
            "pool/stable/main/new_1_amd64.deb",
            "no answer within the timeout",
        ],
    );
}

#[test]
fn decompression_bomb() {
    let setup = synced("");
    let dir = setup.archive.path().join("dists/stable/main/binary-amd64");
    // The Release keeps listing the small uncompressed index, next to a gzip of 50 MB.
    let bomb = format!(
        "{}\nPackage: bomb\nVersion: 1\nArchitecture: amd64\nFilename: pool/x.deb\nSize: 1\nSHA256: {}\nDescription: x\n {}\n",
        std::fs::read_to_string(dir.join("Packages")).unwrap(),
        "0".repeat(64),
        "a".repeat(50 << 20)
    );
    let mut gzip = std::process::Command::new("gzip")
        .args(["-9", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    gzip.stdin
        .take()
        .unwrap()
        .write_all(bomb.as_bytes())
        .unwrap();
    let compressed = gzip.wait_with_output().unwrap().stdout;
    assert!(compressed.len() < 200_000);
    std::fs::write(dir.join("Packages.gz"), compressed).unwrap();
    setup.archive.relist("stable");
    refused(&setup, &["Packages.gz", "decompresses to more than"]);
}

#[test]
fn expired_future_and_replayed_releases() {
    let setup = synced("");
    setup.archive.rewrite_release("stable", |r| {
        r.replace(
            "Date:",
            "Valid-Until: Thu, 01 Jan 2026 00:00:00 +0000\nDate:",
        )
    });
    refused(&setup, &["dists/stable/InRelease", "expired on 2026-01-01"]);

    setup.archive.publish();
    setup.archive.rewrite_release("stable", |r| {
        let date = r
            .lines()
            .find(|l| l.starts_with("Date:"))
            .unwrap()
            .to_string();
        r.replace(&date, "Date: Mon, 01 Jan 2035 00:00:00 +0000")
    });
    refused(
        &setup,
        &["dists/stable/InRelease", "in the future", "clock"],
    );

    setup.archive.publish();
    setup.archive.rewrite_release("stable", |r| {
        let date = r
            .lines()
            .find(|l| l.starts_with("Date:"))
            .unwrap()
            .to_string();
        r.replace(&date, "Date: Mon, 01 Jan 2024 00:00:00 +0000")
    });
    refused(
        &setup,
        &["dists/stable/InRelease", "older than", "synced before"],
    );
}

#[test]
fn no_keyring_needs_an_explicit_choice() {
    let archive = archive();
    let upstream = Upstream::serve(archive.path());
    let config = archive.mirror_config("mirror", &upstream.url, "").replace(
        &format!("keyring = \"{}\"\n", archive.keyring.display()),
        "",
    );
    let site = Site::new("ed25519", &config);
    let out = site.run(&["sync"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("has no keyring")
            && stderr.contains("allow_unsigned"),
        "{stderr}"
    );
    site.add_config("allow_unsigned = true\n");
    let out = site.ok(&["sync"]);
    assert!(out.contains("mirror: published 2 packages"), "{out}");
}
