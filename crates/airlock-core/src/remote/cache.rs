//! A frontend's bounded disk cache of large blobs (`[storage] cache_dir`, `cache_size`).
//!
//! - A blob streamed whole from the bucket is written beside the client's copy into
//!   `tmp/`, hashed as it goes, and renamed to `XX/<sha256>` only once every byte is there
//!   and its digest is its name: nothing half-written or wrong is ever served.
//! - The cache stays under its size: room for a blob is made before it is written, by
//!   removing the blobs used least recently.
//! - A blob found there at start (written by an earlier run, which may have been cut off
//!   before the disk had it) is hashed once before it is first served; a whole read is
//!   hashed again on the way, its last bytes held back until the digest matches, so a file
//!   damaged since is never served whole: the client's transfer fails, the file is removed
//!   and the next request fetches it from the bucket again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::Stream;
use sha2::Digest;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::RemoteError;
use crate::storage::Sha256;

/// How much of a cached file one read takes.
const CHUNK: usize = 256 << 10;

/// Large blobs on the frontend's disk, at most `limit` bytes of them.
pub struct DiskCache {
    dir: PathBuf,
    limit: u64,
    index: Mutex<Index>,
}

#[derive(Default)]
struct Index {
    entries: HashMap<Sha256, Cached>,
    /// Last use → blob: the first is the one used least recently.
    recency: BTreeMap<u64, Sha256>,
    uses: u64,
    /// The blobs kept plus the room reserved for those being written.
    bytes: u64,
    filling: HashSet<Sha256>,
}

struct Cached {
    size: u64,
    used: u64,
    /// Hashed by this run (written by it, or read whole and checked).
    verified: bool,
}

/// What the cache holds now, for the log and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheUsage {
    pub blobs: usize,
    pub bytes: u64,
    pub limit: u64,
}

impl DiskCache {
    /// The cache in `dir` (made if missing), with what an earlier run left there: unfinished
    /// writes removed, blobs kept (oldest first out) within `limit`.
    pub fn open(dir: &Path, limit: u64) -> Result<Arc<DiskCache>, RemoteError> {
        let cache_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RemoteError::Cache { path, source }
        };
        let tmp = dir.join("tmp");
        match std::fs::remove_dir_all(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(cache_err(&tmp)(e)),
            _ => {}
        }
        std::fs::create_dir_all(&tmp).map_err(cache_err(&tmp))?;
        let mut found = Vec::new();
        for folder in std::fs::read_dir(dir).map_err(cache_err(dir))? {
            let folder = folder.map_err(cache_err(dir))?.path();
            if folder == tmp || !folder.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&folder).map_err(cache_err(&folder))? {
                let file = file.map_err(cache_err(&folder))?;
                let name = file.file_name();
                let Some(sha256) = name.to_str().and_then(Sha256::from_hex) else {
                    continue;
                };
                let meta = file.metadata().map_err(cache_err(&file.path()))?;
                if meta.is_file() && file.path() == blob_path(dir, &sha256) {
                    found.push((meta.modified().ok(), sha256, meta.len()));
                }
            }
        }
        found.sort();
        let cache = DiskCache {
            dir: dir.to_path_buf(),
            limit,
            index: Mutex::new(Index::default()),
        };
        {
            let mut index = cache.lock();
            for (_, sha256, size) in found {
                index.add(sha256, size, false);
            }
            cache.evict(&mut index, 0);
        }
        Ok(Arc::new(cache))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn usage(&self) -> CacheUsage {
        let index = self.lock();
        CacheUsage {
            blobs: index.entries.len(),
            bytes: index.entries.values().map(|c| c.size).sum(),
            limit: self.limit,
        }
    }

    /// The bytes `start..start + length` of a blob of `size` bytes, if the cache has it;
    /// a whole read is checked against the digest on the way.
    pub async fn read(
        self: &Arc<Self>,
        sha256: &Sha256,
        size: u64,
        start: u64,
        length: u64,
    ) -> Option<impl Stream<Item = Result<Bytes, RemoteError>> + Send + 'static + use<>> {
        let (kept_size, verified) = {
            let mut index = self.lock();
            let used = index.touch(sha256)?;
            (used.size, used.verified)
        };
        if kept_size != size {
            self.forget(sha256, "its size is not the blob's");
            return None;
        }
        let path = blob_path(&self.dir, sha256);
        let whole = start == 0 && length == size;
        // A whole read is checked as it streams (and marks the file verified); a range of a
        // file an earlier run left is read only once the whole file hashed right.
        if !verified && !whole {
            let hashed = {
                let path = path.clone();
                tokio::task::spawn_blocking(move || Sha256::of_file(&path)).await
            };
            match hashed {
                Ok(Ok(digest)) if digest == *sha256 => {
                    if let Some(cached) = self.lock().entries.get_mut(sha256) {
                        cached.verified = true;
                    }
                }
                Ok(Ok(_)) => {
                    self.forget(sha256, "its content does not hash to its name");
                    return None;
                }
                _ => {
                    self.forget(sha256, "it cannot be read");
                    return None;
                }
            }
        }
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(_) => {
                self.forget(sha256, "it cannot be opened");
                return None;
            }
        };
        if start > 0 && file.seek(io::SeekFrom::Start(start)).await.is_err() {
            return None;
        }
        Some(
            Reading {
                file,
                left: length,
                hasher: whole.then(sha2::Sha256::new),
                held: None,
                cache: self.clone(),
                sha256: *sha256,
                path,
            }
            .stream(),
        )
    }

    /// A writer for a blob of `size` bytes about to be streamed whole from the bucket, with
    /// room made for it; `None` when it is kept already, being written, or larger than the
    /// cache.
    pub async fn fill(self: &Arc<Self>, sha256: &Sha256, size: u64) -> Option<Fill> {
        {
            let mut index = self.lock();
            if size > self.limit
                || index.entries.contains_key(sha256)
                || index.filling.contains(sha256)
            {
                return None;
            }
            self.evict(&mut index, size);
            if index.bytes + size > self.limit {
                return None;
            }
            index.bytes += size;
            index.filling.insert(*sha256);
        }
        // The reservation is released when the fill is dropped, however it ends.
        let mut fill = Fill {
            cache: self.clone(),
            sha256: *sha256,
            size,
            written: 0,
            hasher: sha2::Sha256::new(),
            file: None,
        };
        let tmp = self.dir.join("tmp");
        let file = tempfile::Builder::new()
            .prefix(&sha256.to_hex()[..16])
            .tempfile_in(&tmp);
        match file {
            Ok(file) => {
                let (std, path) = file.into_parts();
                fill.file = Some((tokio::fs::File::from_std(std), path));
                Some(fill)
            }
            Err(e) => {
                tracing::warn!("cannot cache a blob in {}: {e}", tmp.display());
                None
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes the blobs used least recently until `room` more bytes fit.
    fn evict(&self, index: &mut Index, room: u64) {
        while index.bytes + room > self.limit {
            let Some((_, oldest)) = index.recency.pop_first() else {
                return;
            };
            if let Some(gone) = index.entries.remove(&oldest) {
                index.bytes -= gone.size;
                // A reader that has it open keeps reading it.
                let _ = std::fs::remove_file(blob_path(&self.dir, &oldest));
            }
        }
    }

    /// Drops a damaged blob: the next request fetches it from the bucket again.
    fn forget(&self, sha256: &Sha256, why: &str) {
        let path = blob_path(&self.dir, sha256);
        tracing::warn!(
            "{}: {why}: removed from the cache, fetched from the bucket again",
            path.display()
        );
        let mut index = self.lock();
        if let Some(gone) = index.entries.remove(sha256) {
            index.bytes -= gone.size;
            index.recency.remove(&gone.used);
        }
        let _ = std::fs::remove_file(path);
    }

    /// A finished fill: its file renamed into place.
    fn keep(&self, sha256: &Sha256, size: u64, temp: &Path) -> io::Result<()> {
        let path = blob_path(&self.dir, sha256);
        std::fs::set_permissions(temp, std::fs::Permissions::from_mode(0o444))?;
        std::fs::create_dir_all(path.parent().expect("a blob's folder"))?;
        std::fs::rename(temp, &path)?;
        let mut index = self.lock();
        // Counted in bytes since the fill reserved its room.
        index.bytes -= size;
        index.add(*sha256, size, true);
        Ok(())
    }
}

impl Index {
    fn add(&mut self, sha256: Sha256, size: u64, verified: bool) {
        self.uses += 1;
        self.bytes += size;
        self.recency.insert(self.uses, sha256);
        self.entries.insert(
            sha256,
            Cached {
                size,
                used: self.uses,
                verified,
            },
        );
    }

    /// Marks a blob used now.
    fn touch(&mut self, sha256: &Sha256) -> Option<&mut Cached> {
        self.uses += 1;
        let cached = self.entries.get_mut(sha256)?;
        self.recency.remove(&cached.used);
        cached.used = self.uses;
        self.recency.insert(self.uses, *sha256);
        Some(cached)
    }
}

fn blob_path(dir: &Path, sha256: &Sha256) -> PathBuf {
    let hex = sha256.to_hex();
    dir.join(&hex[..2]).join(hex)
}

/// A blob being written to the cache as it streams from the bucket to a client.
pub struct Fill {
    cache: Arc<DiskCache>,
    sha256: Sha256,
    size: u64,
    written: u64,
    hasher: sha2::Sha256,
    file: Option<(tokio::fs::File, tempfile::TempPath)>,
}

impl Fill {
    /// Writes the next bytes; with the last, checks the digest and renames the file into
    /// place. A failure ends the fill (logged): the client's download goes on.
    pub async fn write(&mut self, bytes: &[u8]) {
        let Some((file, temp)) = self.file.as_mut() else {
            return;
        };
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        let result = match file.write_all(bytes).await {
            Ok(()) if self.written < self.size => return,
            Ok(()) => file.flush().await,
            Err(e) => Err(e),
        };
        let digest = Sha256::from_bytes(self.hasher.clone().finalize().into());
        let result = result.and_then(|()| {
            if self.written != self.size || digest != self.sha256 {
                return Err(io::Error::other(format!(
                    "the bucket gave {} bytes with sha256 {digest}",
                    self.written
                )));
            }
            self.cache.keep(&self.sha256, self.size, temp)
        });
        if let Err(e) = &result {
            tracing::warn!("blob {} not cached: {e}", self.sha256);
        }
        // Kept or not, the fill is over (the temp file goes with it).
        self.file = None;
        let mut index = self.cache.lock();
        index.filling.remove(&self.sha256);
        if result.is_err() {
            index.bytes -= self.size;
        }
    }
}

impl Drop for Fill {
    fn drop(&mut self) {
        let mut index = self.cache.lock();
        if index.filling.remove(&self.sha256) {
            // Not kept: its reservation goes.
            index.bytes -= self.size;
        }
    }
}

/// A cached file read as a stream of chunks.
struct Reading {
    file: tokio::fs::File,
    left: u64,
    /// A whole read: the digest so far, checked before the last chunk goes out.
    hasher: Option<sha2::Sha256>,
    held: Option<Bytes>,
    cache: Arc<DiskCache>,
    sha256: Sha256,
    path: PathBuf,
}

impl Reading {
    fn stream(self) -> impl Stream<Item = Result<Bytes, RemoteError>> + Send + 'static {
        futures_util::stream::unfold(Some(self), |state| async move {
            let mut reading = state?;
            match reading.next().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(reading))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// The next chunk to send: each chunk of a whole read goes out once the next one is
    /// read, the last once the digest matched.
    async fn next(&mut self) -> Result<Option<Bytes>, RemoteError> {
        use tokio::io::AsyncReadExt;
        loop {
            if self.left == 0 {
                let Some(hasher) = self.hasher.take() else {
                    return Ok(self.held.take());
                };
                if Sha256::from_bytes(hasher.finalize().into()) != self.sha256 {
                    self.cache
                        .forget(&self.sha256, "its content does not hash to its name");
                    return Err(RemoteError::CorruptCache {
                        path: self.path.clone(),
                    });
                }
                if let Some(cached) = self.cache.lock().entries.get_mut(&self.sha256) {
                    cached.verified = true;
                }
                return Ok(self.held.take());
            }
            let mut buffer = vec![0; CHUNK.min(self.left as usize)];
            let n = self
                .file
                .read(&mut buffer)
                .await
                .map_err(|source| RemoteError::Cache {
                    path: self.path.clone(),
                    source,
                })?;
            if n == 0 {
                self.cache
                    .forget(&self.sha256, "it is shorter than the blob");
                return Err(RemoteError::CorruptCache {
                    path: self.path.clone(),
                });
            }
            buffer.truncate(n);
            self.left -= n as u64;
            let chunk = Bytes::from(buffer);
            match &mut self.hasher {
                None => return Ok(Some(chunk)),
                Some(hasher) => {
                    hasher.update(&chunk);
                    if let Some(previous) = self.held.replace(chunk) {
                        return Ok(Some(previous));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn blob(i: u8, size: usize) -> (Sha256, Vec<u8>) {
        let bytes = vec![i; size];
        (Sha256::of(&bytes), bytes)
    }

    async fn put(cache: &Arc<DiskCache>, sha256: &Sha256, bytes: &[u8]) -> bool {
        let Some(mut fill) = cache.fill(sha256, bytes.len() as u64).await else {
            return false;
        };
        for chunk in bytes.chunks(1000) {
            fill.write(chunk).await;
        }
        true
    }

    async fn read_all(cache: &Arc<DiskCache>, sha256: &Sha256, size: u64) -> Option<Vec<u8>> {
        let stream = cache.read(sha256, size, 0, size).await?;
        let chunks: Vec<Result<Bytes, RemoteError>> = stream.collect().await;
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend_from_slice(&chunk.ok()?);
        }
        Some(out)
    }

    #[tokio::test]
    async fn blobs_are_kept_checked_and_the_least_recently_used_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 25_000).unwrap();
        let blobs: Vec<_> = (0..3).map(|i| blob(i, 10_000)).collect();
        assert!(put(&cache, &blobs[0].0, &blobs[0].1).await);
        assert!(put(&cache, &blobs[1].0, &blobs[1].1).await);
        // Twice is once.
        assert!(!put(&cache, &blobs[1].0, &blobs[1].1).await);
        // blob 0 used: blob 1 is now the least recently used.
        assert_eq!(
            read_all(&cache, &blobs[0].0, 10_000).await.unwrap(),
            blobs[0].1
        );
        assert!(put(&cache, &blobs[2].0, &blobs[2].1).await);
        assert!(cache.read(&blobs[1].0, 10_000, 0, 10_000).await.is_none());
        assert_eq!(cache.usage().bytes, 20_000);
        // A range.
        let part: Vec<Bytes> = cache
            .read(&blobs[2].0, 10_000, 100, 50)
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(part.concat(), blobs[2].1[100..150]);
        // Larger than the cache: not kept.
        let (huge, _) = blob(9, 30_000);
        assert!(cache.fill(&huge, 30_000).await.is_none());
    }

    #[tokio::test]
    async fn what_the_bucket_gave_wrong_or_short_is_never_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 100_000).unwrap();
        let (sha256, bytes) = blob(1, 5000);
        let mut fill = cache.fill(&sha256, 5000).await.unwrap();
        fill.write(&bytes[..4000]).await;
        fill.write(&[0; 1000]).await;
        drop(fill);
        assert!(cache.read(&sha256, 5000, 0, 5000).await.is_none());
        let mut fill = cache.fill(&sha256, 5000).await.unwrap();
        fill.write(&bytes[..4000]).await;
        drop(fill); // the client went away
        assert_eq!(cache.usage().bytes, 0);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert!(put(&cache, &sha256, &bytes).await);
        assert_eq!(read_all(&cache, &sha256, 5000).await.unwrap(), bytes);
    }

    #[tokio::test]
    async fn a_damaged_file_is_detected_removed_and_a_restart_keeps_sound_ones() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 100_000).unwrap();
        let (good, good_bytes) = blob(1, 5000);
        let (bad, bad_bytes) = blob(2, 5000);
        assert!(put(&cache, &good, &good_bytes).await);
        assert!(put(&cache, &bad, &bad_bytes).await);
        let path = blob_path(dir.path(), &bad);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&path, vec![0u8; 5000]).unwrap();
        // The whole read fails before its last chunk, and the file goes.
        assert!(read_all(&cache, &bad, 5000).await.is_none());
        assert!(!path.exists());
        assert!(cache.read(&bad, 5000, 0, 5000).await.is_none());

        // Damaged while no frontend ran: found when first used.
        assert!(put(&cache, &bad, &bad_bytes).await);
        drop(cache);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&path, vec![0u8; 5000]).unwrap();
        std::fs::write(dir.path().join("tmp/leftover"), b"half").unwrap();
        let cache = DiskCache::open(dir.path(), 100_000).unwrap();
        assert!(!dir.path().join("tmp/leftover").exists());
        assert_eq!(cache.usage().blobs, 2);
        assert!(cache.read(&bad, 5000, 10, 10).await.is_none());
        assert!(!path.exists());
        assert_eq!(read_all(&cache, &good, 5000).await.unwrap(), good_bytes);
    }
}
