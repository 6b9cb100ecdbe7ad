//! `airlock verify`: proof that what is served is whole.
//!
//! - [`offline`]: the data folder without a server, for after a disk or copy mishap: every
//!   blob of the content store re-hashed (in parallel, streaming) against its name, every file
//!   a published tree or the snap catalog names there with its size.
//! - [`online`]: what clients would do, over HTTP against the running server ([`apt`],
//!   [`images`], [`snaps`]).

pub mod apt;
pub mod images;
pub mod snaps;

use std::io::Read;
use std::path::Path;

use serde::Serialize;

use crate::report::{Reporter, Unit};
use crate::site::Site;
use crate::snap::catalog::Catalog;
use crate::storage::{ContentStore, Sha256, StorageError, TreeSet};
use crate::util::parallel_map;

/// One check that failed: what, where, what was expected, what was found.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub area: String,
    pub what: String,
    pub expected: String,
    pub got: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AreaResult {
    pub area: String,
    pub checked: usize,
    pub failed: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub areas: Vec<AreaResult>,
    pub failures: Vec<Failure>,
    /// Passed, but needs attention soon (a Release about to expire).
    pub warnings: Vec<Failure>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    fn area(&mut self, area: &str, checked: usize, failures: Vec<Failure>, warnings: Vec<Failure>) {
        self.areas.push(AreaResult {
            area: area.to_string(),
            checked,
            failed: failures.len(),
        });
        self.failures.extend(failures);
        self.warnings.extend(warnings);
    }
}

/// Checks the data folder; keeps going after a failure and reports all of them.
pub fn offline(site: &Site, reporter: &dyn Reporter) -> Result<Report, StorageError> {
    let data = site.data_dir();
    let store = site.store();
    let mut report = Report::default();

    let blobs = store_blobs(data)?;
    let total = blobs.iter().map(|(_, size)| size).sum();
    let task = reporter.start("re-hashing the content store", Some(total), Unit::Bytes);
    let failures: Vec<Failure> = parallel_map(&blobs, |(path, size)| {
        let result = rehash(path, &store);
        reporter.advance(task, *size);
        result
    })
    .into_iter()
    .flatten()
    .collect();
    reporter.finish(task);
    report.area("store", blobs.len(), failures, Vec::new());

    for (area, trees) in published_trees(data) {
        let Some(manifest) = trees.current()? else {
            continue;
        };
        let public = data.join("public").join(&area);
        let mut failures = Vec::new();
        for (path, entry) in &manifest.entries {
            let served = public.join(path);
            let found = std::fs::metadata(&served).ok().map(|m| m.len());
            let blob = std::fs::metadata(store.blob_path(&entry.sha256))
                .ok()
                .map(|m| m.len());
            if found != Some(entry.size) || blob != Some(entry.size) {
                failures.push(Failure {
                    area: area.clone(),
                    what: served.display().to_string(),
                    expected: format!("{} bytes, blob {}", entry.size, entry.sha256),
                    got: match (found, blob) {
                        (None, _) => "missing from the tree".into(),
                        (_, None) => "its blob is missing from the store".into(),
                        (Some(f), Some(b)) => format!("{f} bytes served, {b} bytes stored"),
                    },
                });
            }
        }
        report.area(&area, manifest.entries.len(), failures, Vec::new());
    }

    let catalog = Catalog::load(data).map_err(|e| StorageError::Corrupt {
        path: Catalog::path(data),
        reason: e.to_string(),
    })?;
    let mut wanted: Vec<(String, String)> = Vec::new();
    for (name, entry) in &catalog.snaps {
        for revision in entry.revisions.values() {
            wanted.push((
                format!("snap {name} revision {}", revision.revision),
                revision.sha256.clone(),
            ));
            if let Some(icon) = &revision.icon {
                wanted.push((
                    format!("icon of {name} revision {}", revision.revision),
                    icon.sha256.clone(),
                ));
            }
        }
    }
    for (reference, stored) in &catalog.assertions {
        wanted.push((format!("assertion {reference}"), stored.sha256.clone()));
    }
    if !wanted.is_empty() {
        let failures = wanted
            .iter()
            .filter(|(_, sha256)| !Sha256::from_hex(sha256).is_some_and(|d| store.contains(&d)))
            .map(|(what, sha256)| Failure {
                area: "snaps".into(),
                what: what.clone(),
                expected: format!("blob {sha256}"),
                got: "missing from the store".into(),
            })
            .collect();
        report.area("snaps", wanted.len(), failures, Vec::new());
    }
    Ok(report)
}

/// Checks, over HTTP at `base`, what the server serves, as clients fetch it.
pub async fn online(
    site: &Site,
    base: &str,
    depth: apt::Depth,
) -> Result<Report, crate::net::NetError> {
    let sync = &site.config.sync;
    let http = crate::net::Http::new(crate::net::HttpOptions {
        jobs: sync.jobs,
        timeout: sync.timeout.0,
        retries: 0,
        extra_roots: Vec::new(),
    })?;
    let base = format!("{}/", base.trim_end_matches('/'));
    let base = reqwest::Url::parse(&base)
        .map_err(|e| crate::net::NetError::Setup(format!("{base}: {e}")))?;
    let mut report = Report::default();
    site_checks(site, &mut report);
    apt::check(site, &http, &base, depth, &mut report).await;
    images::check(site, &http, &base, depth, &mut report).await;
    snaps::check(site, &http, &base, depth, &mut report).await;
    Ok(report)
}

/// The site itself: its signing key and certificate load, and its disk has room.
fn site_checks(site: &Site, report: &mut Report) {
    let (mut failures, mut warnings) = (Vec::new(), Vec::new());
    let mut checked = 1;
    let site_failure = |what: &str, expected: &str, got: String| Failure {
        area: "site".into(),
        what: what.to_string(),
        expected: expected.to_string(),
        got,
    };
    if let Err(e) = site.signing_key() {
        failures.push(site_failure("the signing key", "loadable", e.to_string()));
    }
    if let Some(tls) = &site.config.site.tls {
        checked += 1;
        if let Err(e) = crate::tls::server_config(&tls.cert, &tls.key) {
            failures.push(site_failure(
                "the HTTPS certificate",
                "loadable with its key",
                e.to_string(),
            ));
        }
    }
    checked += 1;
    match rustix::fs::statvfs(site.data_dir()) {
        Ok(fs) => {
            let free = fs.f_bavail.saturating_mul(fs.f_frsize);
            let total = fs.f_blocks.saturating_mul(fs.f_frsize).max(1);
            if free < total / 10 || free < 1 << 30 {
                warnings.push(site_failure(
                    &site.data_dir().display().to_string(),
                    "at least 10 % and 1 GiB free for the next sync",
                    format!("{} MiB free of {} MiB", free >> 20, total >> 20),
                ));
            }
        }
        Err(e) => failures.push(site_failure(
            &site.data_dir().display().to_string(),
            "a readable data folder",
            e.to_string(),
        )),
    }
    report.area("site", checked, failures, warnings);
}

/// Every blob file of the store, with its size.
fn store_blobs(data: &Path) -> Result<Vec<(std::path::PathBuf, u64)>, StorageError> {
    let root = data.join("store/sha256");
    let mut blobs = Vec::new();
    let Ok(prefixes) = std::fs::read_dir(&root) else {
        return Ok(blobs);
    };
    for prefix in prefixes.flatten() {
        let dir = prefix.path();
        let entries = std::fs::read_dir(&dir).map_err(|source| StorageError::Read {
            path: dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let size = entry.metadata().map_or(0, |m| m.len());
            blobs.push((entry.path(), size));
        }
    }
    blobs.sort();
    Ok(blobs)
}

/// Re-reads one blob; a failure when its content does not hash to its name.
fn rehash(path: &Path, store: &ContentStore) -> Option<Failure> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let failure = |expected: String, got: String| {
        Some(Failure {
            area: "store".into(),
            what: path.display().to_string(),
            expected,
            got,
        })
    };
    let Some(digest) = Sha256::from_hex(&name).filter(|d| store.blob_path(d) == path) else {
        return failure("a blob named by its SHA-256".into(), "a stray file".into());
    };
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return failure(format!("sha256 {digest}"), format!("unreadable: {e}")),
    };
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => sha2::Digest::update(&mut hasher, &buffer[..n]),
            Err(e) => return failure(format!("sha256 {digest}"), format!("unreadable: {e}")),
        }
    }
    let got = Sha256::from_bytes(sha2::Digest::finalize(hasher).into());
    (got != digest).then(|| Failure {
        area: "store".into(),
        what: path.display().to_string(),
        expected: format!("sha256 {digest}"),
        got: format!("sha256 {got}"),
    })
}

/// The published trees: one per apt repository, mirror or combined suite, and the images.
fn published_trees(data: &Path) -> Vec<(String, TreeSet)> {
    let mut trees = Vec::new();
    if let Ok(entries) = std::fs::read_dir(data.join("public/apt")) {
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            trees.push((format!("apt/{name}"), TreeSet::new(data, "apt", &name)));
        }
    }
    if data.join("public/images").exists() {
        trees.push(("images".into(), TreeSet::area(data, "images")));
    }
    trees
}
