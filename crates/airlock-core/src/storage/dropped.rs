//! Blobs a writer pushed to its bucket and dropped from its own disk (`[storage] keep_pushed`).
//!
//! A dropped blob leaves a mark, `store/dropped/XX/<sha256>`, written (and flushed) before
//! its bytes go: the mark says the bucket has the blob, so that a sync or import does not
//! fetch it again and a publish names it without a local copy. The data folder then acts as a
//! cache of the bucket: [`ContentStore::readable`] brings a dropped blob back when something
//! must read it (an export, a snap fetch checking a revision again), and the next push drops it
//! again.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use fs_err as fs;

use super::StorageError;
use super::atomic::sync_filesystem;
use super::digest::Sha256;
use super::store::ContentStore;
use crate::report::{NullReporter, Reporter, Unit};

/// Blobs read back per flush: what a long read-back has done survives its interruption.
const RESTORE_BATCH: usize = 512;

impl ContentStore {
    fn mark(&self, digest: &Sha256) -> PathBuf {
        let hex = digest.to_hex();
        self.root.join("dropped").join(&hex[..2]).join(hex)
    }

    /// Whether any blob is marked dropped (cheap when none is: the marks' folders are few).
    pub fn drops_any(&self) -> bool {
        let Ok(shards) = std::fs::read_dir(self.root.join("dropped")) else {
            return false;
        };
        shards
            .flatten()
            .any(|shard| std::fs::read_dir(shard.path()).is_ok_and(|mut m| m.next().is_some()))
    }

    /// Whether the blob was pushed and its bytes dropped from here.
    pub fn is_dropped(&self, digest: &Sha256) -> bool {
        self.mark(digest).is_file()
    }

    /// Marks blobs as dropped, durably: their bytes may go once this returns. Only for blobs
    /// the bucket's current pointer names (a push has just confirmed them).
    pub fn mark_dropped(&self, digests: &[Sha256]) -> Result<(), StorageError> {
        if digests.is_empty() {
            return Ok(());
        }
        for digest in digests {
            let mark = self.mark(digest);
            let parent = mark.parent().expect("marks live in a folder");
            fs::create_dir_all(parent).map_err(write_err(parent))?;
            fs::write(&mark, b"").map_err(write_err(&mark))?;
        }
        sync_filesystem(&self.root)
    }

    /// Forgets that a blob was dropped (it is no longer named, or its bytes are back).
    pub fn forget_dropped(&self, digest: &Sha256) -> Result<(), StorageError> {
        let mark = self.mark(digest);
        match std::fs::remove_file(&mark) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(write_err(&mark)(e)),
            _ => Ok(()),
        }
    }

    /// Every dropped blob.
    pub fn dropped(&self) -> Result<Vec<Sha256>, StorageError> {
        let root = self.root.join("dropped");
        let mut found = Vec::new();
        let Ok(shards) = std::fs::read_dir(&root) else {
            return Ok(found);
        };
        for shard in shards {
            let shard = shard.map_err(read_err(&root))?.path();
            for entry in std::fs::read_dir(&shard).map_err(read_err(&shard))? {
                let entry = entry.map_err(read_err(&shard))?;
                if let Some(digest) = entry.file_name().to_str().and_then(Sha256::from_hex) {
                    found.push(digest);
                }
            }
        }
        Ok(found)
    }

    /// The path of the blob's bytes, read back from the bucket first if they were dropped.
    pub fn readable(&self, digest: &Sha256) -> Result<PathBuf, StorageError> {
        self.read_back(std::slice::from_ref(digest), &NullReporter::default())?;
        Ok(self.blob_path(digest))
    }

    /// Reads the dropped ones among `digests` back from the bucket ([`ContentStore::restore`]).
    pub fn read_back(
        &self,
        digests: &[Sha256],
        reporter: &dyn Reporter,
    ) -> Result<(), StorageError> {
        if !self.drops_any() {
            return Ok(());
        }
        let wanted: Vec<Sha256> = digests
            .iter()
            .filter(|d| !self.has_bytes(d) && self.is_dropped(d))
            .copied()
            .collect();
        self.restore(&wanted, reporter)
    }

    /// A dropped blob read back from the bucket into a scratch file of the store, checked,
    /// for one reader (an export): removed when the returned path is dropped, never a blob of
    /// the store.
    pub fn read_back_copy(&self, digest: &Sha256) -> Result<tempfile::TempPath, StorageError> {
        let Some(source) = &self.source else {
            return Err(StorageError::Dropped {
                sha256: digest.to_hex(),
            });
        };
        let dir = self.temp_dir();
        fs::create_dir_all(&dir).map_err(write_err(&dir))?;
        let copy = tempfile::NamedTempFile::new_in(&dir)
            .map_err(write_err(&dir))?
            .into_temp_path();
        source.fetch(&[(*digest, copy.to_path_buf())], &|_| {})?;
        Ok(copy)
    }

    /// Fetches `digests` from the store's source (the bucket) into the store, in batches of
    /// one flush each. Their marks stay: a mark with bytes is harmless (bytes are looked for
    /// first), and only a writer's trim, under the site lock, may forget one.
    pub fn restore(&self, digests: &[Sha256], reporter: &dyn Reporter) -> Result<(), StorageError> {
        let task = reporter.start("reading blobs back from the bucket", None, Unit::Bytes);
        let restored = digests.chunks(RESTORE_BATCH).try_for_each(|batch| {
            self.restore_batch(batch, &|bytes| reporter.advance(task, bytes))
        });
        reporter.finish(task);
        restored
    }

    fn restore_batch(
        &self,
        digests: &[Sha256],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StorageError> {
        let Some(first) = digests.first() else {
            return Ok(());
        };
        let Some(source) = &self.source else {
            return Err(StorageError::Dropped {
                sha256: first.to_hex(),
            });
        };
        let staging = self.staging();
        let dir = staging.temp_dir()?;
        // In the store's scratch folder: whatever a failure leaves there goes with the next lock.
        let temps: Vec<(Sha256, PathBuf)> = digests
            .iter()
            .map(|d| (*d, dir.join(format!("read-back-{d}"))))
            .collect();
        source.fetch(&temps, progress)?;
        for (digest, temp) in temps {
            std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o444))
                .map_err(write_err(&temp))?;
            staging.adopt(temp, digest);
        }
        staging.commit()?;
        Ok(())
    }
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + use<> {
    let path = path.to_path_buf();
    move |source| StorageError::Write { path, source }
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + use<> {
    let path = path.to_path_buf();
    move |source| StorageError::Read { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::BlobSource;

    #[derive(Debug)]
    struct Bytes(&'static [u8]);

    impl BlobSource for Bytes {
        fn fetch(
            &self,
            blobs: &[(Sha256, PathBuf)],
            _: &(dyn Fn(u64) + Sync),
        ) -> Result<(), StorageError> {
            for (_, dest) in blobs {
                std::fs::write(dest, self.0).unwrap();
            }
            Ok(())
        }
    }

    #[test]
    fn a_dropped_blob_counts_as_held_and_comes_back_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::new(dir.path());
        let staging = store.staging();
        let digest = staging.add_bytes(b"payload").unwrap();
        staging.commit().unwrap();

        store.mark_dropped(&[digest]).unwrap();
        std::fs::remove_file(store.blob_path(&digest)).unwrap();
        assert!(store.contains(&digest) && !store.has_bytes(&digest));
        assert_eq!(store.dropped().unwrap(), [digest]);
        let refused = store.readable(&digest).unwrap_err().to_string();
        assert!(refused.contains(&digest.to_hex()), "{refused}");

        let store = store.with_source(Some(std::sync::Arc::new(Bytes(b"payload"))));
        let path = store.readable(&digest).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"payload");
        assert!(store.has_bytes(&digest), "its bytes are back");
        // The mark stays until a writer's trim forgets it (under the site lock).
        assert!(store.is_dropped(&digest));
    }
}
