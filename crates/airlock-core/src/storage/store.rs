//! The content store: every blob under `store/sha256/XX/<sha256>`, written once, read-only.
//!
//! Writes are staged: blobs land in `store/tmp/` while their digests are computed, and only
//! [`Staging::commit`] moves them to their names, after one flush of the filesystem. A failed
//! operation drops its staging and the store is exactly as before. The exception: small
//! downloads verified in memory go straight to their names, listed first in a journal that
//! the next writer checks should the flush not come (storage/unflushed.rs); a failed sync
//! keeps them, verified, for its next run.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fs_err as fs;
use rustix::fs::{CWD, RenameFlags};

use super::StorageError;
use super::atomic::sync_filesystem;
use super::digest::{CopyError, Hashes, Sha256, copy_hashing};
use super::unflushed::Journal;

/// Where blobs a writer dropped after pushing them come back from: its bucket
/// (storage/dropped.rs).
pub trait BlobSource: std::fmt::Debug + Send + Sync {
    /// Writes each blob's bytes to its file, checked against its digest, telling `progress`
    /// the bytes as they come; blocks until all are written.
    fn fetch(
        &self,
        blobs: &[(Sha256, PathBuf)],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StorageError>;
}

#[derive(Debug, Clone)]
pub struct ContentStore {
    pub(super) root: PathBuf,
    /// Where blobs dropped after a push come back from ([`ContentStore::readable`]).
    pub(super) source: Option<Arc<dyn BlobSource>>,
}

impl ContentStore {
    /// The store of the site whose data folder is `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        ContentStore {
            root: data_dir.join("store"),
            source: None,
        }
    }

    /// The same store, reading blobs it dropped back from `source`.
    pub fn with_source(mut self, source: Option<Arc<dyn BlobSource>>) -> Self {
        self.source = source;
        self
    }

    pub fn blob_path(&self, digest: &Sha256) -> PathBuf {
        let hex = digest.to_hex();
        self.root.join("sha256").join(&hex[..2]).join(hex)
    }

    /// Whether the site has the blob: its bytes here, or pushed to the bucket and dropped
    /// from here ([`ContentStore::is_dropped`]); either way nothing needs to fetch it again.
    pub fn contains(&self, digest: &Sha256) -> bool {
        self.has_bytes(digest) || self.is_dropped(digest)
    }

    /// [`ContentStore::contains`] for many blobs in a row, while nothing else changes the
    /// store (the site lock is held, and the caller adds nothing meanwhile): the dropped
    /// markers are looked for only if the store has some, and a blob only in a folder of
    /// blobs that exists, so that a blob the store lacks costs at most one lookup.
    pub fn contains_each(&self) -> impl Fn(&Sha256) -> bool + '_ {
        let drops = self.drops_any();
        // The folders of blobs there are: none yet for most blobs of a first sync.
        let folders: HashSet<std::ffi::OsString> = std::fs::read_dir(self.root.join("sha256"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.file_name())
            .collect();
        move |digest| {
            let in_folder = || folders.contains(std::ffi::OsStr::new(&digest.to_hex()[..2]));
            (in_folder() && self.has_bytes(digest)) || (drops && self.is_dropped(digest))
        }
    }

    /// Whether the blob's bytes are in this data folder.
    pub fn has_bytes(&self, digest: &Sha256) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Scratch space on the store's filesystem; emptied when a writer takes the site lock.
    pub fn temp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where a download of the blob `digest` grows until it is complete and verified. Kept
    /// across runs, so that an interrupted sync resumes instead of starting again.
    pub fn partial_path(&self, digest: &Sha256) -> PathBuf {
        self.partial_named(&digest.to_hex())
    }

    /// A download in progress known by another digest (snaps: SHA3-384); kept across runs
    /// like the others, and aged out by [`ContentStore::clean_partial`].
    pub fn partial_named(&self, name: &str) -> PathBuf {
        self.root.join("partial").join(name)
    }

    /// Where `airlock import` keeps verified blobs until the whole bundle is here; kept across
    /// runs, so that an interrupted import does not read its volumes again.
    pub fn import_dir(&self) -> PathBuf {
        self.root.join("import")
    }

    /// Removes downloads left unfinished for longer than `age` (their upstream moved on).
    pub fn clean_partial(&self, age: std::time::Duration) -> Result<(), StorageError> {
        let dir = self.root.join("partial");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|e| e > age));
            if old {
                let path = entry.path();
                fs::remove_file(&path).map_err(|source| StorageError::Write { path, source })?;
            }
        }
        Ok(())
    }

    /// Checks the blobs `unflushed` lists (what [`ContentStore::unflushed`] read), written by
    /// a writer that stopped before its flush (storage/unflushed.rs): removes those a crash
    /// damaged; returns how many. Call only while holding the site lock, before trusting the
    /// store. `progress` hears of each blob looked at.
    pub fn recover_unflushed(
        &self,
        unflushed: &Unflushed,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<usize, StorageError> {
        super::unflushed::recover(
            &self.unflushed_dir(),
            (&unflushed.journals, &unflushed.digests),
            |d| self.blob_path(d),
            progress,
        )
    }

    /// The blobs the open journals list: written in place by a writer that is between its
    /// writes and its flush, or stopped there. They may be short or damaged until the next
    /// writer checks them.
    pub fn unflushed(&self) -> Result<Unflushed, StorageError> {
        let (journals, digests) = super::unflushed::open_journals(&self.unflushed_dir())?;
        Ok(Unflushed { journals, digests })
    }

    /// The open journals alone (one look at their folder): another list than before means
    /// other writes, and [`ContentStore::unflushed`] worth reading again.
    pub fn unflushed_journals(&self) -> Vec<PathBuf> {
        super::unflushed::journal_files(&self.unflushed_dir())
    }

    fn unflushed_dir(&self) -> PathBuf {
        self.root.join("unflushed")
    }

    /// Removes temp files a crashed writer left; call only while holding the site lock.
    pub fn clean_temp(&self) -> Result<(), StorageError> {
        let dir = self.temp_dir();
        if dir.is_dir() {
            fs::remove_dir_all(&dir).map_err(|source| StorageError::Write { path: dir, source })?;
        }
        Ok(())
    }

    /// Moves one complete, verified download into the store at once, durably (fsync, rename,
    /// fsync the folder): for a blob a client waits for, where a batch flush is too coarse.
    pub fn adopt_now(&self, partial: &Path, digest: &Sha256) -> Result<PathBuf, StorageError> {
        let target = self.blob_path(digest);
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StorageError::Write { path, source }
        };
        let file = fs::File::open(partial).map_err(err(partial))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o444))
            .map_err(err(partial))?;
        file.sync_all().map_err(err(partial))?;
        let parent = target.parent().expect("blob has a parent");
        fs::create_dir_all(parent).map_err(err(parent))?;
        match rustix::fs::renameat_with(CWD, partial, CWD, &target, RenameFlags::NOREPLACE) {
            Ok(()) => super::atomic::sync_dir(parent)?,
            Err(rustix::io::Errno::EXIST) => fs::remove_file(partial).map_err(err(partial))?,
            Err(e) => return Err(err(&target)(e.into())),
        }
        Ok(target)
    }

    /// Every file in the store's folders of blobs (`store/sha256/XX/`), in no order: blobs,
    /// and stray files, which [`StoredFile::digest`] tells apart. A folder or entry that
    /// cannot be read is an error item and the walk goes on; a store with no blobs yet
    /// yields nothing.
    pub fn files(&self) -> StoreFiles {
        let root = self.root.join("sha256");
        StoreFiles {
            shards: std::fs::read_dir(&root).ok(),
            root,
            shard: None,
        }
    }

    pub fn staging(&self) -> Staging {
        Staging {
            store: self.clone(),
            pending: Mutex::new(Vec::new()),
            adopted: Mutex::new(Vec::new()),
            journals: Mutex::new(Vec::new()),
            temp_dir_ready: std::sync::OnceLock::new(),
        }
    }
}

/// What [`ContentStore::unflushed`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Unflushed {
    /// The open journals, sorted: another list is another set of writes.
    pub journals: Vec<PathBuf>,
    /// What they list, sorted.
    pub digests: Vec<Sha256>,
}

impl Unflushed {
    pub fn is_empty(&self) -> bool {
        self.journals.is_empty()
    }

    pub fn lists(&self, digest: &Sha256) -> bool {
        self.digests.binary_search(digest).is_ok()
    }
}

/// The walk of [`ContentStore::files`].
pub struct StoreFiles {
    root: PathBuf,
    /// The folders of blobs; none when there is no store.
    shards: Option<std::fs::ReadDir>,
    /// The folder being read.
    shard: Option<(PathBuf, std::fs::ReadDir)>,
}

/// A folder of the store, or an entry of one, that could not be read.
#[derive(Debug)]
pub struct UnreadFolder {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl From<UnreadFolder> for StorageError {
    fn from(UnreadFolder { path, source }: UnreadFolder) -> Self {
        StorageError::Read { path, source }
    }
}

impl Iterator for StoreFiles {
    type Item = Result<StoredFile, UnreadFolder>;

    fn next(&mut self) -> Option<Self::Item> {
        let read = |path: &Path| {
            let path = path.to_path_buf();
            move |source| UnreadFolder { path, source }
        };
        loop {
            if let Some((dir, entries)) = &mut self.shard {
                match entries.next() {
                    Some(entry) => return Some(entry.map(StoredFile).map_err(read(dir))),
                    None => self.shard = None,
                }
            }
            let shard = match self.shards.as_mut()?.next()? {
                Ok(shard) => shard.path(),
                Err(e) => return Some(Err(read(&self.root)(e))),
            };
            match std::fs::read_dir(&shard) {
                Ok(entries) => self.shard = Some((shard, entries)),
                Err(e) => return Some(Err(read(&shard)(e))),
            }
        }
    }
}

/// A file found by [`ContentStore::files`].
pub struct StoredFile(std::fs::DirEntry);

impl StoredFile {
    pub fn path(&self) -> PathBuf {
        self.0.path()
    }

    /// The digest its name spells: `None` for a stray file.
    pub fn digest(&self) -> Option<Sha256> {
        Sha256::from_hex(self.0.file_name().to_str()?)
    }

    pub fn metadata(&self) -> std::io::Result<std::fs::Metadata> {
        self.0.metadata()
    }
}

/// A blob written to a temp file and not yet in the store.
#[derive(Debug)]
pub struct StagedBlob {
    pub hashes: Hashes,
    /// Where the bytes are until commit; readable for parsing meanwhile.
    pub temp_path: PathBuf,
}

/// Blobs waiting to enter the store; see the module doc.
pub struct Staging {
    store: ContentStore,
    pending: Mutex<Vec<(PathBuf, Sha256)>>,
    /// Verified downloads: moved in by commit, but kept (for the next run) if dropped. Those
    /// written straight to their store names are there already.
    adopted: Mutex<Vec<(PathBuf, Sha256)>>,
    /// Journals of the blobs written straight to their names, until a flush covers them.
    journals: Mutex<Vec<Journal>>,
    temp_dir_ready: std::sync::OnceLock<()>,
}

impl Staging {
    pub(super) fn temp_dir(&self) -> Result<PathBuf, StorageError> {
        let dir = self.store.temp_dir();
        if self.temp_dir_ready.get().is_none() {
            fs::create_dir_all(&dir).map_err(|source| StorageError::Write {
                path: dir.clone(),
                source,
            })?;
            let _ = self.temp_dir_ready.set(());
        }
        Ok(dir)
    }

    /// Streams `reader` into a temp file, hashing as it goes. `origin` names the source in errors.
    pub fn add_reader(
        &self,
        origin: &Path,
        reader: &mut impl Read,
    ) -> Result<StagedBlob, StorageError> {
        let dir = self.temp_dir()?;
        let write_err = |source| StorageError::Write {
            path: dir.clone(),
            source,
        };
        // Read-only from the start: blobs are never modified, and this saves a chmod later.
        let temp = tempfile::Builder::new()
            .permissions(std::fs::Permissions::from_mode(0o444))
            .tempfile_in(&dir)
            .map_err(write_err)?;
        // copy_hashing moves 256 KiB chunks: no BufWriter needed.
        let hashes = copy_hashing(reader, &mut temp.as_file()).map_err(|e| match e {
            CopyError::Read(source) => StorageError::Read {
                path: origin.to_path_buf(),
                source,
            },
            CopyError::Write(source) => write_err(source),
        })?;
        let (_, temp_path) = temp.keep().map_err(|e| write_err(e.error))?;
        self.pending
            .lock()
            .expect("staging lock")
            .push((temp_path.clone(), hashes.sha256));
        Ok(StagedBlob { hashes, temp_path })
    }

    /// Whether a blob with this digest waits in this staging.
    pub fn contains(&self, digest: &Sha256) -> bool {
        let has = |list: &Mutex<Vec<(PathBuf, Sha256)>>| {
            list.lock()
                .expect("staging lock")
                .iter()
                .any(|(_, d)| d == digest)
        };
        has(&self.pending) || has(&self.adopted)
    }

    /// Whether the file at `path` was adopted.
    pub fn has_adopted(&self, path: &Path) -> bool {
        self.adopted
            .lock()
            .expect("staging lock")
            .iter()
            .any(|(p, _)| p == path)
    }

    /// Makes ready to write `digests` straight to their store names (with
    /// [`Staging::adopt`] once each is written, verified): lists them in a journal, durably,
    /// and makes their folders.
    pub fn write_in_place(&self, digests: &[Sha256]) -> Result<(), StorageError> {
        if digests.is_empty() {
            return Ok(());
        }
        let journal = Journal::write(&self.store.unflushed_dir(), digests)?;
        self.journals.lock().expect("staging lock").push(journal);
        self.make_folders(digests.iter())
    }

    /// Closes the journals of blobs written in place: a flush since made them durable. A
    /// journal that cannot be removed is only warned about: the next writer checks its blobs
    /// again, for nothing.
    pub(super) fn flushed(&self) {
        for journal in std::mem::take(&mut *self.journals.lock().expect("staging lock")) {
            if let Err(e) = journal.close() {
                tracing::warn!("{}", crate::hint::Chain(&e));
            }
        }
    }

    /// Stages a complete, verified download: at [`ContentStore::partial_path`], or at its
    /// store name after [`Staging::write_in_place`].
    pub fn adopt(&self, path: PathBuf, digest: Sha256) {
        self.adopted
            .lock()
            .expect("staging lock")
            .push((path, digest));
    }

    /// Stages bytes already in memory (generated indices); returns their digest.
    pub fn add_bytes(&self, bytes: &[u8]) -> Result<Sha256, StorageError> {
        let digest = Sha256::of(bytes);
        self.add_digested(digest, bytes)?;
        Ok(digest)
    }

    /// Stages bytes whose digest is known; skips the write if the store has them (their
    /// bytes: what is staged this way is read back by publishes, so never left to the bucket).
    pub fn add_digested(&self, digest: Sha256, bytes: &[u8]) -> Result<(), StorageError> {
        if self.store.has_bytes(&digest) {
            return Ok(());
        }
        let dir = self.temp_dir()?;
        let write_err = |source| StorageError::Write {
            path: dir.clone(),
            source,
        };
        let mut temp = tempfile::Builder::new()
            .permissions(std::fs::Permissions::from_mode(0o444))
            .tempfile_in(&dir)
            .map_err(write_err)?;
        std::io::Write::write_all(&mut temp, bytes).map_err(write_err)?;
        let (_, temp_path) = temp.keep().map_err(|e| write_err(e.error))?;
        self.pending
            .lock()
            .expect("staging lock")
            .push((temp_path, digest));
        Ok(())
    }

    /// Moves every staged blob to its name, durably. Identical content already present is kept.
    /// Returns the bytes the store gained (blobs it did not have).
    pub fn commit(self) -> Result<u64, StorageError> {
        let staged = self.take();
        if staged.is_empty() {
            return Ok(0);
        }
        // One flush makes every temp file's data durable before any name points at it.
        sync_filesystem(&self.store.root)?;
        self.make_folders(staged.iter().map(|(_, digest)| digest))?;
        let added = self.move_in(&staged, |_| None)?;
        sync_filesystem(&self.store.root)?;
        self.flushed();
        Ok(added)
    }

    /// Every staged blob, one per digest, and the staging left empty: the same content may be
    /// staged twice (two identical indices), and one copy is enough (the others are deleted).
    pub(super) fn take(&self) -> Vec<(PathBuf, Sha256)> {
        let mut staged = std::mem::take(&mut *self.pending.lock().expect("staging lock"));
        staged.append(&mut self.adopted.lock().expect("staging lock"));
        staged.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        staged.dedup_by(|later, first| {
            let same = later.1 == first.1;
            if same && later.0 != first.0 {
                let _ = std::fs::remove_file(&later.0);
            }
            same
        });
        staged
    }

    /// Makes the store's folders for `digests` (each folder once).
    pub(super) fn make_folders<'a>(
        &self,
        digests: impl Iterator<Item = &'a Sha256>,
    ) -> Result<(), StorageError> {
        let mut made = HashSet::new();
        for digest in digests {
            let target = self.store.blob_path(digest);
            let parent = target.parent().expect("blob has a parent");
            if made.insert(parent.to_path_buf()) {
                fs::create_dir_all(parent).map_err(|source| StorageError::Write {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// Moves blobs [`Staging::take`] returned to their names, in the folders
    /// [`Staging::make_folders`] made; their data must be durable already (a flush of the
    /// filesystem since they were written), and the renames are left to the caller's next
    /// flush. Returns the bytes the store gained.
    /// `size_of`: the sizes the caller knows (else each file is looked at).
    pub(super) fn move_in(
        &self,
        staged: &[(PathBuf, Sha256)],
        size_of: impl Fn(&Sha256) -> Option<u64>,
    ) -> Result<u64, StorageError> {
        // One thread: the kernel renames across folders one at a time, and a second thread
        // would only spin waiting.
        let mut added = 0;
        for (temp, digest) in staged {
            let target = self.store.blob_path(digest);
            let write_err = |source| StorageError::Write {
                path: target.clone(),
                source,
            };
            let size =
                size_of(digest).unwrap_or_else(|| std::fs::metadata(temp).map_or(0, |m| m.len()));
            if *temp == target {
                // Written in place.
                added += size;
                continue;
            }
            // Never replace a blob: readers may have it open, and its content is the same.
            match rustix::fs::renameat_with(CWD, temp, CWD, &target, RenameFlags::NOREPLACE) {
                Ok(()) => added += size,
                Err(rustix::io::Errno::EXIST) => fs::remove_file(temp).map_err(write_err)?,
                Err(e) => return Err(write_err(e.into())),
            }
        }
        Ok(added)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let pending = self
            .pending
            .get_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        for (temp, _) in pending {
            let _ = std::fs::remove_file(temp);
        }
        // A failed operation: what was written in place is whole, and kept for the next run
        // once flushed (should the flush fail, the next writer checks it).
        if !self.journals.get_mut().map_or(true, |j| j.is_empty())
            && sync_filesystem(&self.store.root).is_ok()
        {
            self.flushed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_stores_once_and_drop_discards() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::new(dir.path());

        let staging = store.staging();
        let a = staging.add_bytes(b"hello").unwrap();
        let b = staging
            .add_reader(Path::new("x"), &mut &b"hello"[..])
            .unwrap();
        assert_eq!(a, b.hashes.sha256);
        assert!(!store.contains(&a));
        staging.commit().unwrap();
        assert!(store.contains(&a));
        assert_eq!(std::fs::read(store.blob_path(&a)).unwrap(), b"hello");
        assert_eq!(std::fs::read_dir(store.temp_dir()).unwrap().count(), 0);

        let staging = store.staging();
        let c = staging.add_bytes(b"discarded").unwrap();
        drop(staging);
        assert!(!store.contains(&c));
        assert_eq!(std::fs::read_dir(store.temp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn blobs_written_in_place_are_journaled_until_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::new(dir.path());
        let write = |staging: &Staging, bytes: &[u8]| {
            let digest = Sha256::of(bytes);
            staging.write_in_place(&[digest]).unwrap();
            assert!(store.unflushed().unwrap().lists(&digest));
            std::fs::write(store.blob_path(&digest), bytes).unwrap();
            staging.adopt(store.blob_path(&digest), digest);
            digest
        };
        // Committed: counted as gained, not renamed, the journal closed.
        let staging = store.staging();
        let a = write(&staging, b"in place");
        assert_eq!(staging.commit().unwrap(), 8);
        assert!(store.has_bytes(&a) && store.unflushed().unwrap().is_empty());
        // A failed operation keeps what it wrote in place, flushed, and closes its journal.
        let staging = store.staging();
        let b = write(&staging, b"kept");
        drop(staging);
        assert!(store.has_bytes(&b) && store.unflushed().unwrap().is_empty());
        assert_eq!(store.unflushed_journals().len(), 0);
    }

    #[test]
    fn files_lists_blobs_and_strays() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::new(dir.path());
        assert_eq!(store.files().count(), 0, "no store yet");

        let staging = store.staging();
        let a = staging.add_bytes(b"one").unwrap();
        let b = staging.add_bytes(b"two").unwrap();
        staging.commit().unwrap();
        let stray = store.blob_path(&a).with_file_name("stray");
        std::fs::write(&stray, b"?").unwrap();

        let mut found: Vec<(PathBuf, Option<Sha256>)> = store
            .files()
            .map(|f| f.map(|f| (f.path(), f.digest())).unwrap())
            .collect();
        found.sort();
        let mut expected = vec![
            (store.blob_path(&a), Some(a)),
            (store.blob_path(&b), Some(b)),
            (stray, None),
        ];
        expected.sort();
        assert_eq!(found, expected);
    }
}
