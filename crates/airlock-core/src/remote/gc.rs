//! `airlock gc` on the bucket: blobs and manifests that no generation frontends may still
//! serve names leave the bucket, once older than the grace period.
//!
//! Kept: everything the pointer names, for its own generation and for the generations it
//! lists as retired (the one it replaced, and those replaced within the grace period): a
//! frontend serves the previous snapshot until its next poll, and finishes downloads begun
//! from it. Kept too: every object written less than the grace period ago, so that what a
//! push under way has uploaded but not yet named stays (a push whose lease expired can still
//! be uploading). Ages are the object store's own times, compared with its clock.
//!
//! Under the writers' lease, so no push switches the pointer while gc decides. Anything that
//! cannot be read stops gc before an object is removed. Memory grows with what is kept (one
//! digest per kept blob), not with the bucket: the listing is read a page at a time and
//! removals go out in batches as it goes.

use std::collections::HashSet;

use futures_util::StreamExt;
use serde::Serialize;

use super::snapshot::load_manifest;
use super::{Published, RemoteError, blob_key, manifest_key, read_pointer};
use crate::report::{Reporter, Unit};
use crate::snap::catalog::Catalog;
use crate::storage::Sha256;
use crate::storage::bucket::{Bucket, Holder, Lease, LeaseSettings, ObjectInfo};

/// Keys removed per request (the most one DeleteObjects takes).
const BATCH: usize = 1000;

/// What a gc of the bucket did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BucketGcReport {
    /// Nothing was removed: the counts say what would have been.
    pub dry_run: bool,
    /// The pointer's generation; `None` when nothing was pushed (then nothing is removed).
    pub generation: Option<u64>,
    /// Generations whose content was kept: the pointer's own and the retired ones it lists.
    pub generations_kept: usize,
    /// Blobs and manifests those generations name.
    pub referenced_blobs: usize,
    pub referenced_manifests: usize,
    /// Blobs and manifests removed (or, in a dry run, to be removed), and their bytes.
    pub removed_blobs: usize,
    pub removed_manifests: usize,
    pub removed_bytes: u64,
    /// Objects no generation names, kept because written within the grace period.
    pub young: usize,
    pub young_bytes: u64,
}

/// What the kept generations name.
#[derive(Default)]
struct Kept {
    manifests: HashSet<String>,
    blobs: HashSet<Sha256>,
}

/// Collects the bucket: removes the blobs and manifests no kept generation names and written
/// longer than `grace` ago; with `dry_run`, only counts them. Waits for the writers' lease
/// as a push does, then says who holds it.
pub async fn gc(
    bucket: &Bucket,
    grace: std::time::Duration,
    dry_run: bool,
    holder: Holder,
    reporter: &dyn Reporter,
) -> Result<BucketGcReport, RemoteError> {
    let lease = Lease::take(bucket, holder, LeaseSettings::default()).await?;
    let result = gc_leased(bucket, &lease, grace, dry_run, reporter).await;
    if result.is_ok() {
        lease.release().await?;
    }
    result
}

async fn gc_leased(
    bucket: &Bucket,
    lease: &Lease,
    grace: std::time::Duration,
    dry_run: bool,
    reporter: &dyn Reporter,
) -> Result<BucketGcReport, RemoteError> {
    let mut report = BucketGcReport {
        dry_run,
        ..BucketGcReport::default()
    };
    let Some((published, _)) = read_pointer(bucket).await? else {
        // No push finished yet: whatever is there belongs to the first one.
        return Ok(report);
    };
    report.generation = Some(published.generation);
    report.generations_kept = 1 + published.retired.len();
    let kept = kept(bucket, &published).await?;
    report.referenced_blobs = kept.blobs.len();
    report.referenced_manifests = kept.manifests.len();

    let sweep = Sweep {
        bucket,
        lease,
        now: lease.server_time().await?,
        grace: jiff::SignedDuration::try_from(grace).unwrap_or(jiff::SignedDuration::MAX),
        dry_run,
    };
    let task = reporter.start("collecting the bucket", None, Unit::Items);
    let removed = sweep
        .run("trees/", &mut report, reporter, task, |key| {
            key.ends_with(".manifest") && !kept.manifests.contains(key)
        })
        .await?;
    report.removed_manifests = removed;
    let removed = sweep
        .run("blobs/", &mut report, reporter, task, |key| {
            unnamed_blob(key, &kept.blobs)
        })
        .await?;
    report.removed_blobs = removed;
    reporter.finish(task);
    Ok(report)
}

/// Whether `key` is a blob airlock wrote (`blobs/sha256/XX/<sha256>`) that `named` lacks.
/// Anything else under `blobs/` is not gc's to remove.
fn unnamed_blob(key: &str, named: &HashSet<Sha256>) -> bool {
    let Some(digest) = key.rsplit('/').next().and_then(Sha256::from_hex) else {
        return false;
    };
    blob_key(&digest.to_hex()) == key && !named.contains(&digest)
}

/// Every manifest and blob the pointer's generation and its retired ones name.
async fn kept(bucket: &Bucket, published: &Published) -> Result<Kept, RemoteError> {
    let generations = std::iter::once((&published.trees, &published.documents)).chain(
        published
            .retired
            .iter()
            .map(|retired| (&retired.trees, &retired.documents)),
    );
    let mut kept = Kept::default();
    for (trees, documents) in generations {
        for (tree, id) in trees {
            if !kept.manifests.insert(manifest_key(tree, id)) {
                continue; // the same tree in another generation
            }
            let manifest = load_manifest(bucket, tree, id).await?;
            kept.blobs
                .extend(manifest.entries.values().map(|entry| entry.sha256));
        }
        for (name, sha256) in documents {
            let Some(digest) = Sha256::from_hex(sha256) else {
                continue; // not a blob's name: nothing in the bucket answers to it
            };
            if kept.blobs.insert(digest) && name == super::CATALOG {
                catalog_blobs(bucket, sha256, &mut kept.blobs).await?;
            }
        }
    }
    Ok(kept)
}

/// The snaps, icons and assertions the catalog in blob `sha256` names.
async fn catalog_blobs(
    bucket: &Bucket,
    sha256: &str,
    blobs: &mut HashSet<Sha256>,
) -> Result<(), RemoteError> {
    let catalog: Catalog = super::read_document(bucket, sha256, super::CATALOG_LIMIT).await?;
    let key = blob_key(sha256);
    for value in catalog.blobs() {
        let digest = Sha256::from_hex(value).ok_or_else(|| RemoteError::CorruptBlob {
            bucket: bucket.label().to_string(),
            key: key.clone(),
        })?;
        blobs.insert(digest);
    }
    Ok(())
}

/// One pass over a part of the bucket, removing in batches.
struct Sweep<'a> {
    bucket: &'a Bucket,
    lease: &'a Lease,
    /// The object store's clock (or a little before).
    now: jiff::Timestamp,
    grace: jiff::SignedDuration,
    dry_run: bool,
}

impl Sweep<'_> {
    /// Removes the objects under `prefix` that `unnamed` picks and that are older than the
    /// grace period; counts the younger ones. Returns how many it removed.
    async fn run(
        &self,
        prefix: &str,
        report: &mut BucketGcReport,
        reporter: &dyn Reporter,
        task: crate::report::TaskId,
        unnamed: impl Fn(&str) -> bool,
    ) -> Result<usize, RemoteError> {
        let mut removed = 0;
        let mut batch: Vec<String> = Vec::with_capacity(BATCH);
        let mut listing = std::pin::pin!(self.bucket.list_stream(prefix));
        while let Some(info) = listing.next().await {
            let ObjectInfo {
                key,
                size,
                modified,
                ..
            } = info?;
            reporter.advance(task, 1);
            if !unnamed(&key) {
                continue;
            }
            if self.now.duration_since(modified) < self.grace {
                report.young += 1;
                report.young_bytes += size;
                continue;
            }
            removed += 1;
            report.removed_bytes += size;
            batch.push(key);
            if batch.len() == BATCH {
                self.remove(&mut batch).await?;
            }
        }
        self.remove(&mut batch).await?;
        Ok(removed)
    }

    /// Removes the batch, if the lease is still held.
    async fn remove(&self, batch: &mut Vec<String>) -> Result<(), RemoteError> {
        if !self.dry_run && !batch.is_empty() {
            self.lease.confirm().await?;
            self.bucket.delete_many(batch).await?;
        }
        batch.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_blobs_airlock_wrote_and_no_generation_names_are_unnamed() {
        let named = Sha256::of(b"named");
        let other = Sha256::of(b"other").to_hex();
        let kept = HashSet::from([named]);
        assert!(!unnamed_blob(&blob_key(&named.to_hex()), &kept));
        assert!(unnamed_blob(&blob_key(&other), &kept));
        // Not laid out as airlock lays out blobs: not gc's.
        for stray in [
            format!("blobs/sha256/00/{other}"),
            format!("blobs/sha256/{}/{}", &other[..2], other.to_uppercase()),
            format!("blobs/{other}"),
            "blobs/sha256/ab/notes.txt".to_string(),
        ] {
            assert!(!unnamed_blob(&stray, &kept), "{stray}");
        }
    }
}
