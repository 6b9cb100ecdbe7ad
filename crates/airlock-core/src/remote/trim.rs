//! After a push, a writer with `[storage] keep_pushed` drops pushed payloads (packages, image
//! files, snaps) from its own disk beyond that many bytes, so that the site can grow past the
//! writer's disk: its data folder becomes a cache of the bucket. A writer whose config no
//! longer sets it reads what it dropped back, and is whole again.
//!
//! Phases: [`classify`] finds what the served trees and the snap catalog name; the newest
//! payloads are kept up to the limit; the rest are marked dropped (durably), then their tree
//! links and, last, their bytes go. Indices, documents and assertions always stay: publishes
//! read them back. A crash leaves blobs marked with bytes (and maybe links) still there, which
//! the next trim drops again, never bytes gone without a mark or links left without bytes.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::RemoteError;
use crate::report::Reporter;
use crate::site::Site;
use crate::snap::catalog::Catalog;
use crate::storage::{ContentStore, Manifest, Sha256, StorageError};

/// What a trim did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrimReport {
    /// The limit (`[storage] keep_pushed`); none: keep everything (what was dropped before is
    /// read back).
    pub limit: Option<u64>,
    /// Payloads whose bytes stay on this disk.
    pub kept: usize,
    pub kept_bytes: u64,
    /// Payloads dropped by this trim, and all those in the bucket only now.
    pub dropped_now: usize,
    pub dropped_now_bytes: u64,
    pub dropped: usize,
    /// Payloads dropped before and read back now (the limit removed).
    pub read_back: usize,
}

/// A payload blob and the paths the local trees serve it at.
#[derive(Default)]
pub(super) struct Payload {
    served: Vec<PathBuf>,
}

/// What a site's trees and snap catalog name.
pub(super) struct Named {
    pub(super) payloads: BTreeMap<Sha256, Payload>,
    /// Every blob, payload or not.
    pub(super) all: HashSet<Sha256>,
}

/// Drops the oldest payloads of `pushed` (the blobs the bucket now has) beyond `limit` bytes;
/// without a limit, reads back what was dropped. The caller holds the site lock and the push
/// just confirmed every blob of `pushed`.
pub fn trim(
    site: &Site,
    named: Named,
    limit: Option<u64>,
    pushed: &HashSet<Sha256>,
    reporter: &dyn Reporter,
) -> Result<TrimReport, RemoteError> {
    let store = site.store();
    let Named { payloads, all } = named;
    let mut marked: HashSet<Sha256> = store.dropped()?.into_iter().collect();
    let mut report = TrimReport {
        limit,
        ..TrimReport::default()
    };
    if limit.is_none() {
        report.read_back = refill(&store, &payloads, &marked, reporter)?;
    }

    // The newest stay: the ones a site just added are the ones its machines want next.
    let mut local: Vec<(Sha256, u64, std::time::SystemTime)> = Vec::new();
    for digest in payloads.keys() {
        // A blob's links go before its bytes: one without bytes has none left to remove.
        if let Ok(meta) = std::fs::metadata(store.blob_path(digest)) {
            let stored = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            local.push((*digest, meta.len(), stored));
        }
    }
    local.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    let limit = limit.unwrap_or(u64::MAX);
    let mut dropping = Vec::new();
    for (digest, size, _) in local {
        if report.kept_bytes + size <= limit || !pushed.contains(&digest) {
            report.kept += 1;
            report.kept_bytes += size;
            if marked.remove(&digest) {
                // Its bytes are back (read back, stored again, or a trim stopped after
                // marking it): served again from here.
                link_served(&store.blob_path(&digest), &payloads[&digest].served)?;
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
    for digest in marked.difference(&all) {
        store.forget_dropped(digest)?;
    }
    marked.retain(|d| all.contains(d));
    marked.extend(dropping);
    report.dropped = marked.len();
    Ok(report)
}

/// Reads back the payloads dropped before.
fn refill(
    store: &ContentStore,
    payloads: &BTreeMap<Sha256, Payload>,
    marked: &HashSet<Sha256>,
    reporter: &dyn Reporter,
) -> Result<usize, RemoteError> {
    let wanted: Vec<Sha256> = payloads
        .keys()
        .filter(|d| marked.contains(d) && !store.has_bytes(d))
        .copied()
        .collect();
    // Linked (and their marks forgotten) with the kept ones below.
    store.restore(&wanted, reporter)?;
    Ok(wanted.len())
}

/// Links `blob` where the trees serve it (those links went when it was dropped).
fn link_served(blob: &Path, served: &[PathBuf]) -> Result<(), StorageError> {
    for path in served {
        let linked = match std::fs::hard_link(blob, path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let parent = path.parent().expect("served files are in a folder");
                std::fs::create_dir_all(parent).and_then(|()| std::fs::hard_link(blob, path))
            }
            other => other,
        };
        match linked {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(StorageError::Write {
                    path: path.clone(),
                    source: e,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// The payloads `trees` (key `apt/NAME` or `images`, manifest) and `catalog` name, with the
/// paths they are served at under the data folder `data`, and every blob they name. The same
/// bytes as an index or document (which publishes read) are never a payload.
pub(super) fn classify<'m>(
    data: &Path,
    trees: impl IntoIterator<Item = (&'m str, &'m Manifest)>,
    catalog: Option<&Catalog>,
) -> Named {
    let mut payloads: BTreeMap<Sha256, Payload> = BTreeMap::new();
    let mut all = HashSet::new();
    let mut read_back = HashSet::new();
    for (key, manifest) in trees {
        let public = data.join("public").join(key);
        for (path, entry) in &manifest.entries {
            all.insert(entry.sha256);
            if is_payload(key, path) {
                let payload = payloads.entry(entry.sha256).or_default();
                payload.served.push(public.join(path));
            } else {
                read_back.insert(entry.sha256);
            }
        }
    }
    if let Some(catalog) = catalog {
        all.extend(catalog.blobs().filter_map(Sha256::from_hex));
        let revisions = catalog.snaps.values().flat_map(|s| s.revisions.values());
        for digest in revisions.filter_map(|r| Sha256::from_hex(&r.sha256)) {
            payloads.entry(digest).or_default();
        }
        let assertions = catalog.assertions.values();
        read_back.extend(assertions.filter_map(|a| Sha256::from_hex(&a.sha256)));
    }
    payloads.retain(|digest, _| !read_back.contains(digest));
    Named { payloads, all }
}

/// Whether the file `path` of the tree pushed as `key` (`apt/NAME`, `images`) is a payload:
/// an apt pool file, or an image stream's file outside its metadata (`streams/`).
fn is_payload(key: &str, path: &str) -> bool {
    if key.starts_with("apt/") {
        path.starts_with("pool/")
    } else {
        !path.starts_with("streams/")
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_pool_and_image_files_never_the_bytes_of_an_index() {
        let digest = |b: &[u8]| Sha256::of(b);
        let mut apt = Manifest::default();
        apt.add("pool/main/h/hello.deb", digest(b"deb"), 3);
        apt.add("dists/stable/InRelease", digest(b"release"), 7);
        // The same bytes as a pool file and as an index: an index.
        apt.add("pool/main/e/empty.deb", digest(b""), 0);
        apt.add("dists/stable/main/binary-amd64/Packages", digest(b""), 0);
        let mut images = Manifest::default();
        images.add("streams/v1/index.json", digest(b"index"), 5);
        images.add("noble/amd64/squashfs", digest(b"squashfs"), 8);
        let trees = [
            ("apt/local".to_string(), apt),
            ("images".to_string(), images),
        ];
        let named = classify(
            Path::new("/d"),
            trees.iter().map(|(k, m)| (k.as_str(), m)),
            None,
        );
        let payloads: Vec<Sha256> = named.payloads.keys().copied().collect();
        let mut expected = vec![digest(b"deb"), digest(b"squashfs")];
        expected.sort();
        assert_eq!(payloads, expected);
        assert_eq!(
            named.payloads[&digest(b"deb")].served,
            [PathBuf::from("/d/public/apt/local/pool/main/h/hello.deb")]
        );
        assert_eq!(named.all.len(), 5);
    }
}
