//! The journal of blobs named before their data is flushed.
//!
//! A sync writes each small download, verified in memory, straight to its store name: no temp
//! file and no rename for the bulk of a mirror's files. Its name then exists before the flush
//! that makes its bytes durable, so the digests are first listed in a journal under
//! `store/unflushed/`, flushed on its own; the journal goes once a flush has covered them. A
//! writer that finds a journal (a crash, or a run that stopped before its flush) hashes each
//! blob it lists, removes those whose bytes do not match their name, flushes, and removes the
//! journal, before it trusts the store ([`recover`], when it takes the site lock). Readers
//! that take no lock never see such a blob through a tree (no tree names it before the
//! flush); the pull-through, which serves store names, hashes it first while a journal is
//! open (`ContentStore::unflushed`).

use std::path::{Path, PathBuf};

use fs_err as fs;

use super::StorageError;
use super::atomic::{sync_dir, sync_filesystem};
use super::digest::Sha256;
use crate::util::parallel_map;

/// A journal of 2^22 digests is a sync of four million files: anything larger is not ours.
const MAX_JOURNAL: u64 = 300 << 20;

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// A written journal; [`Journal::close`] it once a flush made its blobs durable.
#[derive(Debug)]
pub(super) struct Journal {
    path: PathBuf,
}

impl Journal {
    /// Lists `digests` in a new journal in `dir`, durably (file and folder flushed), before
    /// any of them is written.
    pub(super) fn write(dir: &Path, digests: &[Sha256]) -> Result<Journal, StorageError> {
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(write_err(dir))?;
            sync_dir(dir.parent().expect("the journal folder has a parent"))?;
        }
        let mut text = String::with_capacity(digests.len() * 65);
        for digest in digests {
            text.push_str(&digest.to_hex());
            text.push('\n');
        }
        let mut file = tempfile::Builder::new()
            .prefix("journal-")
            .tempfile_in(dir)
            .map_err(write_err(dir))?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(write_err(dir))?;
        file.as_file().sync_all().map_err(write_err(dir))?;
        let (_, path) = file.keep().map_err(|e| write_err(dir)(e.error))?;
        sync_dir(dir)?;
        Ok(Journal { path })
    }

    /// Removes the journal: a flush since it was written covered its blobs. (Should the
    /// removal itself be lost, the next writer checks the blobs again, for nothing.)
    pub(super) fn close(self) -> Result<(), StorageError> {
        fs::remove_file(&self.path).map_err(write_err(&self.path))
    }
}

/// The open journals in `dir` and the digests they list, sorted, each once. No folder is no
/// journal.
pub(super) fn open_journals(dir: &Path) -> Result<(Vec<PathBuf>, Vec<Sha256>), StorageError> {
    let journals = journal_files(dir);
    let mut digests = Vec::new();
    for journal in &journals {
        let bytes = super::read_limited(journal, MAX_JOURNAL, "a journal of unflushed blobs")?;
        // A line cut short by a crash names no blob: none was written before the journal
        // was whole and flushed.
        digests.extend(
            String::from_utf8_lossy(&bytes)
                .lines()
                .filter_map(Sha256::from_hex),
        );
    }
    digests.sort();
    digests.dedup();
    Ok((journals, digests))
}

/// The journals in `dir`, sorted (regular files only: nothing else is ours).
pub(super) fn journal_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut journals: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    journals.sort();
    journals
}

/// Checks every blob the journals list (`blob_path` names where each is): removes those
/// whose bytes do not match their digest (a crash lost them) or cannot be read (they can be
/// fetched again), flushes the filesystem (`dir`'s), then removes the journals. Returns the
/// blobs removed. `progress` hears of each blob looked at.
pub(super) fn recover(
    dir: &Path,
    (journals, digests): (&[PathBuf], &[Sha256]),
    blob_path: impl Fn(&Sha256) -> PathBuf + Sync,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<usize, StorageError> {
    if journals.is_empty() {
        return Ok(0);
    }
    let checked = parallel_map(digests, |digest| {
        let path = blob_path(digest);
        progress(1);
        match Sha256::of_file(&path) {
            Ok(actual) if actual == *digest => Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            _ => fs::remove_file(&path)
                .map_err(write_err(&path))
                .map(|()| true),
        }
    });
    let mut removed = 0;
    for result in checked {
        removed += usize::from(result?);
    }
    // The blobs kept are durable, and the removals too, before the journals go.
    sync_filesystem(dir)?;
    for journal in journals {
        fs::remove_file(journal).map_err(write_err(journal))?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recover_all(dir: &Path, blob_path: impl Fn(&Sha256) -> PathBuf + Sync) -> usize {
        let (journals, digests) = open_journals(dir).unwrap();
        recover(dir, (&journals, &digests), blob_path, &|_| ()).unwrap()
    }

    #[test]
    fn recovery_removes_what_does_not_match_and_the_journals() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("unflushed");
        let blob_path = |d: &Sha256| root.path().join(d.to_hex());
        let (good, bad, short, absent) = (
            Sha256::of(b"good"),
            Sha256::of(b"bad"),
            Sha256::of(b"short"),
            Sha256::of(b"absent"),
        );
        let journal = Journal::write(&dir, &[good, bad]).unwrap();
        Journal::write(&dir, &[short, absent]).unwrap();
        std::fs::write(blob_path(&good), b"good").unwrap();
        // What a crash can leave: other bytes, or fewer.
        std::fs::write(blob_path(&bad), b"\0\0\0").unwrap();
        std::fs::write(blob_path(&short), b"sho").unwrap();
        // A journal cut short names nothing more.
        let mut cut = std::fs::read(&journal.path).unwrap();
        cut.extend_from_slice(b"abc");
        std::fs::write(&journal.path, cut).unwrap();
        assert_eq!(recover_all(&dir, blob_path), 2);
        assert_eq!(std::fs::read(blob_path(&good)).unwrap(), b"good");
        assert!(!blob_path(&bad).exists() && !blob_path(&short).exists());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        // Nothing to do: nothing read, nothing removed; a folder there is not a journal.
        std::fs::create_dir(dir.join("stray")).unwrap();
        assert_eq!(recover_all(&dir, blob_path), 0);
        assert_eq!(recover_all(&root.path().join("none"), blob_path), 0);
    }

    #[test]
    fn a_closed_journal_is_gone() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("unflushed");
        Journal::write(&dir, &[Sha256::of(b"x")])
            .unwrap()
            .close()
            .unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }
}
