//! Garbage collection of the content store: blobs that no tree (served, superseded but kept
//! for the grace period, or left by a crash), no local repo, no custom image and no snap of
//! the catalog names any more leave the store.
//!
//! Anything that cannot be read makes the whole collection stop before a file is removed: a
//! blob is removed only when the site is known not to need it. A blob stored less than the
//! grace period ago stays too: the pull-through proxy stores without the site lock, and its
//! recent files are its cache.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::apt::AptError;
use crate::apt::repo::RepoState;
use crate::hint::Hint;
use crate::report::{Reporter, Unit};
use crate::simplestreams::SimplestreamsError;
use crate::simplestreams::custom::CustomImages;
use crate::site::Site;
use crate::snap::SnapError;
use crate::snap::catalog::Catalog;
use crate::storage::{Sha256, StorageError, TreeSet};

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Apt(#[from] AptError),
    #[error(transparent)]
    Images(#[from] SimplestreamsError),
    #[error(transparent)]
    Snap(#[from] SnapError),
    #[error("{path}: {reason}; nothing was removed")]
    Reference { path: PathBuf, reason: String },
}

impl Hint for GcError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            GcError::Storage(e) => e.hint(),
            GcError::Apt(e) => e.hint(),
            GcError::Images(e) => e.hint(),
            GcError::Snap(e) => e.hint(),
            GcError::Reference { .. } => Some(
                "gc removes nothing while a reference cannot be read: mend or restore that file, then run gc again",
            ),
        }
    }
}

#[derive(Debug, Default, serde::Serialize)]
pub struct GcReport {
    /// Nothing was removed: `removed` counts what would have been.
    pub dry_run: bool,
    /// Blobs the site refers to.
    pub referenced: usize,
    /// Blobs removed (or, in a dry run, to be removed) and their bytes.
    pub removed: usize,
    pub removed_bytes: u64,
    /// Unreferenced blobs kept because they are younger than the grace period.
    pub young: usize,
    pub young_bytes: u64,
}

/// Removes the blobs the site no longer refers to and stored longer than the grace period
/// ago; with `dry_run`, only counts them.
pub fn collect(site: &Site, dry_run: bool, reporter: &dyn Reporter) -> Result<GcReport, GcError> {
    let _lock = site.lock(reporter)?;
    let referenced = references(site)?;
    let grace = site.config.site.grace.0;
    let mut report = GcReport {
        dry_run,
        referenced: referenced.len(),
        ..GcReport::default()
    };
    let task = reporter.start("collecting unreferenced blobs", None, Unit::Items);
    for file in site.store().files() {
        let file = file.map_err(StorageError::from)?;
        // Stray files are verify's business, not ours.
        let Some(digest) = file.digest() else {
            continue;
        };
        reporter.advance(task, 1);
        if referenced.contains(&digest) {
            continue;
        }
        let path = file.path();
        let metadata = file.metadata().map_err(read_err(&path))?;
        let age = metadata.modified().ok().and_then(|t| t.elapsed().ok());
        if age.is_none_or(|age| age < grace) {
            report.young += 1;
            report.young_bytes += metadata.len();
            continue;
        }
        if !dry_run {
            std::fs::remove_file(&path).map_err(|source| StorageError::Write { path, source })?;
        }
        report.removed += 1;
        report.removed_bytes += metadata.len();
    }
    reporter.finish(task);
    if !dry_run {
        // The run replaces a state file, as every writer does, so that the status (which
        // re-reads the store's size only when a state file changes) sees the freed room.
        let run = LastGc {
            at: jiff::Timestamp::now(),
            report: &report,
        };
        crate::storage::save_json(&LastGc::path(site.data_dir()), &run)?;
    }
    Ok(report)
}

/// The last gc that removed (or could have removed) blobs: `data/state/gc/last-run.json`.
#[derive(serde::Serialize)]
struct LastGc<'r> {
    at: jiff::Timestamp,
    #[serde(flatten)]
    report: &'r GcReport,
}

impl LastGc<'_> {
    fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("state/gc/last-run.json")
    }
}

fn read_err(path: &Path) -> impl Fn(std::io::Error) -> StorageError + use<> {
    let path = path.to_path_buf();
    move |source| StorageError::Read {
        path: path.clone(),
        source,
    }
}

/// Every blob the site refers to.
fn references(site: &Site) -> Result<HashSet<Sha256>, GcError> {
    let data = site.data_dir();
    let mut referenced = HashSet::new();
    // Every tree manifest: the served ones, those kept for the grace period, leftovers.
    let mut trees = vec![TreeSet::area(data, "images")];
    trees.extend(
        TreeSet::apt_names(data)?
            .iter()
            .map(|n| TreeSet::apt(data, n)),
    );
    for tree in trees {
        for manifest in tree.manifests()? {
            referenced.extend(manifest.entries.values().map(|e| e.sha256));
        }
    }
    // Local repos, also those no longer configured: their packages stay until removed.
    let states = data.join("state/apt");
    if let Ok(entries) = std::fs::read_dir(&states) {
        for entry in entries {
            let path = entry.map_err(read_err(&states))?.path();
            let Some(repo) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".packages"))
            else {
                continue;
            };
            let state = RepoState::load(site, repo)?;
            referenced.extend(state.packages.iter().map(|p| p.package.sha256));
        }
    }
    let hex = |path: PathBuf, value: &str| {
        Sha256::parse_lowercase(value).map_err(|reason| GcError::Reference { path, reason })
    };
    for image in CustomImages::load(site)?.images {
        let path = CustomImages::path(site);
        referenced.insert(hex(path.clone(), &image.sha256)?);
        referenced.insert(hex(path, &image.manifest_sha256)?);
    }
    let catalog = Catalog::load(data)?;
    for value in catalog.blobs() {
        referenced.insert(hex(Catalog::path(data), value)?);
    }
    Ok(referenced)
}
