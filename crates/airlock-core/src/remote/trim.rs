//! After a push, a writer with `[storage] keep_pushed` drops pushed payloads (packages, image
//! files, snaps) from its own disk beyond that many bytes, so that the site can grow past the
//! writer's disk: its data folder becomes a cache of the bucket.
//!
//! Phases: [`named`] finds what the served trees and the snap catalog name; the newest
//! payloads are kept up to the limit; the rest are marked dropped (durably), then their tree
//! links and, last, their bytes go. Indices, documents and assertions always stay: publishes
//! read them back. A crash leaves blobs marked with bytes (and maybe links) still there, which
//! the next trim drops again, never bytes gone without a mark or links left without bytes.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::RemoteError;
use crate::site::Site;
use crate::snap::catalog::Catalog;
use crate::storage::{Sha256, StorageError, TreeSet};

/// What a trim did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrimReport {
    /// The limit (`[storage] keep_pushed`).
    pub limit: u64,
    /// Payloads whose bytes stay on this disk.
    pub kept: usize,
    pub kept_bytes: u64,
    /// Payloads dropped by this trim, and all those in the bucket only now.
    pub dropped_now: usize,
    pub dropped_now_bytes: u64,
    pub dropped: usize,
}

/// A payload blob and the paths the local trees serve it at.
#[derive(Default)]
struct Payload {
    served: Vec<PathBuf>,
}

/// What the site's served trees and snap catalog name.
struct Named {
    payloads: BTreeMap<Sha256, Payload>,
    /// Every blob, payload or not.
    all: HashSet<Sha256>,
}

/// Drops the oldest payloads of `pushed` (the blobs the bucket now has) beyond `limit` bytes.
/// The caller holds the site lock and the push just confirmed every blob of `pushed`.
pub fn trim(site: &Site, limit: u64, pushed: &BTreeSet<String>) -> Result<TrimReport, RemoteError> {
    let store = site.store();
    let Named {
        payloads,
        all: named,
    } = named(site)?;
    let marked: HashSet<Sha256> = store.dropped()?.into_iter().collect();
    let mut report = TrimReport {
        limit,
        ..TrimReport::default()
    };

    // The newest stay: the ones a site just added are the ones its machines want next.
    // A blob's links go before its bytes: one without bytes has none left to remove.
    let mut local: Vec<(Sha256, u64, std::time::SystemTime)> = Vec::new();
    for digest in payloads.keys() {
        if let Ok(meta) = std::fs::metadata(store.blob_path(digest)) {
            let stored = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            local.push((*digest, meta.len(), stored));
        }
    }
    local.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    let mut dropping = Vec::new();
    for (digest, size, _) in local {
        if report.kept_bytes + size <= limit || !pushed.contains(&digest.to_hex()) {
            report.kept += 1;
            report.kept_bytes += size;
            if marked.contains(&digest) {
                // Its bytes came back (stored again, or a trim stopped after marking it).
                store.forget_dropped(&digest)?;
            }
        } else {
            dropping.push(digest);
            report.dropped_now_bytes += size;
        }
    }
    report.dropped_now = dropping.len();

    store.mark_dropped(&dropping)?;
    for digest in &dropping {
        payloads[digest].served.iter().try_for_each(|p| unlink(p))?;
        unlink(&store.blob_path(digest))?;
    }
    // A mark no tree names any more could outlive the bucket's copy (gc): a later publish of
    // the same bytes must store them again.
    for digest in marked.difference(&named) {
        store.forget_dropped(digest)?;
    }
    report.dropped = store.dropped()?.len();
    Ok(report)
}

/// The payloads the site serves (by blob), and every blob it names at all.
fn named(site: &Site) -> Result<Named, RemoteError> {
    let data = site.data_dir();
    let mut payloads: BTreeMap<Sha256, Payload> = BTreeMap::new();
    let mut named = HashSet::new();
    let mut read_back = HashSet::new();
    let mut trees: Vec<(String, TreeSet)> = TreeSet::published_apt_names(data)
        .into_iter()
        .map(|name| (format!("apt/{name}"), TreeSet::apt(data, &name)))
        .collect();
    trees.push(("images".into(), TreeSet::area(data, "images")));
    for (key, set) in trees {
        let Some(manifest) = set.current()? else {
            continue;
        };
        let public = data.join("public").join(&key);
        for (path, entry) in &manifest.entries {
            named.insert(entry.sha256);
            if is_payload(&key, path) {
                let payload = payloads.entry(entry.sha256).or_default();
                payload.served.push(public.join(path));
            } else {
                read_back.insert(entry.sha256);
            }
        }
    }
    if Catalog::path(data).is_file() {
        let catalog = Catalog::load(data).map_err(|e| RemoteError::Catalog(Box::new(e)))?;
        named.extend(catalog.blobs().filter_map(Sha256::from_hex));
        for digest in snap_payloads(&catalog) {
            payloads.entry(digest).or_default();
        }
        let assertions = catalog.assertions.values();
        read_back.extend(assertions.filter_map(|a| Sha256::from_hex(&a.sha256)));
    }
    // The same bytes as an index or document (which publishes read) are never dropped.
    payloads.retain(|digest, _| !read_back.contains(digest));
    Ok(Named {
        payloads,
        all: named,
    })
}

/// Whether the file `path` of the tree pushed as `key` (`apt/NAME`, `images`) is a payload:
/// an apt pool file, or an image stream's file outside its metadata (`streams/`).
pub(super) fn is_payload(key: &str, path: &str) -> bool {
    if key.starts_with("apt/") {
        path.starts_with("pool/")
    } else {
        !path.starts_with("streams/")
    }
}

/// The snaps of a catalog: payloads (their assertions and icons are not).
pub(super) fn snap_payloads(catalog: &Catalog) -> impl Iterator<Item = Sha256> + '_ {
    let revisions = catalog.snaps.values().flat_map(|s| s.revisions.values());
    revisions.filter_map(|r| Sha256::from_hex(&r.sha256))
}

fn unlink(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StorageError::Write {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}
