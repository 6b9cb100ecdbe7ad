//! Bundles across the air gap (issue 8). Site A, on the connected side, exports what it
//! publishes (a local repo, a filtered mirror, a curated image stream, a snap) as a signed
//! bundle; site B, which never reaches A's upstreams, imports it and serves the same to apt-get,
//! a MAAS-like stream reader and the snap store API, signed with B's own key. A change on A
//! travels as a small incremental bundle. Every kind of bad bundle is refused by name and
//! leaves B exactly as it was; an import killed with SIGKILL leaves B's previous state served
//! whole, and the next run reuses what the killed ones staged.

mod bad_bundles;
mod carry;
mod renewal;
mod round_trip;
mod staged;
mod tar;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use airlock_core::apt::deb::{Compression, DebBuilder};
use airlock_core::openpgp::SiteKey;
use airlock_core::storage::Sha256;
use serde_json::Value;

use crate::common::{Site, assert_suite_whole, gpgv};

/// `[import]` trusting `exporter`'s public key.
fn trusting(exporter: &Site) -> String {
    format!(
        "\n[import]\ntrusted_keys = [\"{}\"]\n",
        exporter.keyring().display()
    )
}

fn fingerprint(site: &Site) -> String {
    SiteKey::load(&site.path().join("airlock.key"))
        .unwrap()
        .fingerprint()
}

/// A package holding `size` random bytes (incompressible, stored as is).
fn random_deb(dir: &Path, name: &str, version: &str, size: usize) -> PathBuf {
    let mut noise = vec![0u8; size];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut noise)
        .unwrap();
    let control = format!(
        "Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: T <t@example.invalid>\nDescription: bundle test\n random bytes\n"
    );
    let deb = DebBuilder::new(control)
        .compression(Compression::None)
        .file(&format!("usr/share/{name}/noise"), noise)
        .build()
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{name}_{version}_amd64.deb"));
    std::fs::write(&path, deb).unwrap();
    path
}

fn sha256_file(path: &Path) -> String {
    Sha256::of(&std::fs::read(path).unwrap()).to_hex()
}

/// `airlock export --to DIR ARGS...`, which must succeed; returns the bundle's id, having
/// checked the summary line against the manifest.
/// An export without the carried airlock: the bundle tests look at content, and carrying the
/// (debug, 360 MB) test binary in each of their bundles would only cost time and disk.
fn export(site: &Site, dir: &Path, args: &[&str]) -> String {
    export_carrying(site, dir, &[&["--no-airlock"], args].concat())
}

/// `airlock export --to DIR ARGS`, checked for its summary line.
fn export_carrying(site: &Site, dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["export", "--to", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = site.ok(&all);
    let manifest = manifest(dir);
    let id = manifest["id"].as_str().unwrap().to_string();
    let volumes = manifest["volumes"].as_array().unwrap().len();
    let last = out.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("bundle {id}: "))
            && last.contains(&format!(" in {volumes} volume")),
        "{out}"
    );
    match manifest["base"]["id"].as_str() {
        None => assert!(last.ends_with(", full"), "{out}"),
        Some(base) => assert!(last.ends_with(&format!(", on top of {base}")), "{out}"),
    }
    id
}

fn manifest(bundle: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap()
}

/// How many of a bundle's blobs `site` has: in its store, or staged by an earlier import.
fn present(site: &Site, manifest: &Value) -> u64 {
    let store = site.path().join("data/store");
    manifest["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| {
            let hex = b["sha256"].as_str().unwrap();
            store.join("sha256").join(&hex[..2]).join(hex).is_file()
                || store.join("import").join(hex).is_file()
        })
        .count() as u64
}

/// `imported N new blobs (SIZE); M were already here` → (N, M).
fn imported_counts(out: &str) -> (u64, u64) {
    let line = out
        .lines()
        .find(|l| l.starts_with("imported ") && l.contains(" were already here"))
        .unwrap_or_else(|| panic!("no summary line in:\n{out}"));
    let number = |text: &str| -> u64 {
        text.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"))
    };
    (
        number(&line["imported ".len()..]),
        number(line.rsplit("; ").next().unwrap()),
    )
}

/// `airlock import BUNDLE`, which must succeed; its summary must count as new exactly the
/// blobs the site did not have.
fn import(site: &Site, bundle: &Path) -> String {
    let manifest = manifest(bundle);
    let total = manifest["blobs"].as_array().unwrap().len() as u64;
    let here = present(site, &manifest);
    let out = site.ok(&["import", bundle.to_str().unwrap()]);
    assert_eq!(imported_counts(&out), (total - here, here), "{out}");
    out
}

/// The packages `repo` serves ("NAME VERSION"), having checked that each of its signed suites
/// is whole (see `assert_suite_whole`). None when nothing is published under that name.
fn served_packages(site: &Site, repo: &str) -> Option<BTreeSet<String>> {
    let root = site.public(repo);
    std::fs::symlink_metadata(&root).ok()?;
    let mut packages = BTreeSet::new();
    let mut suites = 0;
    for suite in std::fs::read_dir(root.join("dists")).unwrap() {
        let suite = suite.unwrap();
        if !suite.path().join("InRelease").is_file() {
            continue;
        }
        suites += 1;
        let suite = suite.file_name().into_string().unwrap();
        packages.extend(assert_suite_whole(site, repo, &suite).packages);
    }
    assert!(suites > 0, "{repo}: no signed suite");
    Some(packages)
}

/// gpgv checks manifest.json against its detached signature manifest.json.asc with `keyring`.
fn manifest_gpgv(bundle: &Path, keyring: &Path) -> (bool, String) {
    gpgv(
        keyring,
        &[
            &bundle.join("manifest.json.asc"),
            &bundle.join("manifest.json"),
        ],
    )
}
