//! A frontend's side of the bucket: the snapshot it serves now (swapped whole when a push
//! switches the pointer), the small blobs it keeps in memory, the large ones streamed from
//! the bucket or its disk cache.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};

use super::cache::{DiskCache, Fill};
use super::{RemoteError, Snapshot, blob_key};
use crate::storage::Sha256;
use crate::storage::bucket::Bucket;

/// Blobs up to this size (indices, Release files, keys) are kept in memory once read.
pub const SMALL_BLOB: u64 = 1 << 20;
/// The most the small blobs kept take together; the oldest go first.
const CACHE_LIMIT: u64 = 64 << 20;
/// The most a frontend asks the bucket for in one request: the bucket client bounds each
/// request's time, body included, so one GET of a whole image would cut a slow client off.
const PIECE: u64 = 8 << 20;

/// What a frontend serves from: the bucket and one snapshot at a time.
pub struct Frontend {
    bucket: Bucket,
    current: RwLock<Option<Arc<Snapshot>>>,
    cache: Mutex<BlobCache>,
    disk: Option<Arc<DiskCache>>,
    counts: Arc<Counts>,
}

/// What a frontend counts, for its status and metrics.
#[derive(Default)]
struct Counts {
    from_cache: AtomicU64,
    from_bucket: AtomicU64,
    bucket_bytes: AtomicU64,
    refreshed: Mutex<Option<jiff::Timestamp>>,
}

/// [`Frontend::counts`]: large blobs by where their bytes came from, the bucket's last answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrontendCounts {
    /// Requests for large blobs answered from the disk cache.
    pub from_cache: u64,
    /// Requests for large blobs answered from the bucket.
    pub from_bucket: u64,
    /// Bytes the bucket sent for large blobs.
    pub bucket_bytes: u64,
    /// When the bucket last answered a look for a new push.
    pub refreshed: Option<jiff::Timestamp>,
}

impl Frontend {
    /// A frontend of `bucket` that serves nothing until [`Frontend::refresh`] finds a push.
    pub fn new(bucket: Bucket) -> Frontend {
        Frontend {
            bucket,
            current: RwLock::new(None),
            cache: Mutex::new(BlobCache::default()),
            disk: None,
            counts: Arc::default(),
        }
    }

    pub fn counts(&self) -> FrontendCounts {
        let c = &self.counts;
        FrontendCounts {
            from_cache: c.from_cache.load(Ordering::Relaxed),
            from_bucket: c.from_bucket.load(Ordering::Relaxed),
            bucket_bytes: c.bucket_bytes.load(Ordering::Relaxed),
            refreshed: *c.refreshed.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Keeps the large blobs it streams in `cache` too, and serves them from there.
    pub fn with_disk_cache(mut self, cache: Arc<DiskCache>) -> Frontend {
        self.disk = Some(cache);
        self
    }

    pub fn disk_cache(&self) -> Option<&DiskCache> {
        self.disk.as_deref()
    }

    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// The names the frontend's DNS responder answers for: the routed hosts of the push it
    /// serves and `[dns] names` (as [`crate::config::Config::overridden_names`] on a writer).
    pub fn overridden_names(&self, dns: &crate::config::DnsConfig) -> Vec<String> {
        let snapshot = self.snapshot();
        dns.overridden_names(snapshot.as_ref().map_or(&[], |s| s.routes.as_slice()))
    }

    /// The snapshot a request is answered from; `None` before the first push.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Looks for a newer push and serves it from now on; the generation now served, if it
    /// changed.
    pub async fn refresh(&self) -> Result<Option<u64>, RemoteError> {
        let newer = match self.snapshot() {
            Some(current) => current.refreshed(&self.bucket).await?,
            None => Snapshot::load(&self.bucket).await?,
        };
        *self
            .counts
            .refreshed
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(jiff::Timestamp::now());
        let Some(newer) = newer else {
            return Ok(None);
        };
        let generation = newer.published.generation;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(newer));
        Ok(Some(generation))
    }

    /// Refreshes every `period` and whenever `now` is notified, until dropped; errors are
    /// logged and the snapshot served is kept.
    pub async fn keep_polling(&self, period: Duration, now: &tokio::sync::Notify) {
        loop {
            match self.refresh().await {
                Ok(Some(generation)) => {
                    tracing::info!("{}: serving generation {generation}", self.bucket.label())
                }
                Ok(None) => {}
                Err(e) => tracing::error!(
                    "{}: cannot look for a new push, still serving what was: {}",
                    self.bucket.label(),
                    crate::hint::Chain(&e)
                ),
            }
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = now.notified() => {}
            }
        }
    }

    /// The whole of a small blob (at most [`SMALL_BLOB`]), from memory or read once from the
    /// bucket and checked against its digest.
    pub async fn small_blob(&self, sha256: &Sha256) -> Result<Bytes, RemoteError> {
        if let Some(bytes) = self.lock_cache().get(sha256) {
            return Ok(bytes);
        }
        let bytes = super::checked_blob(&self.bucket, sha256, SMALL_BLOB).await?;
        self.lock_cache().insert(*sha256, bytes.clone());
        Ok(bytes)
    }

    /// The bytes `start..start + length` of a blob of `size` bytes: from the disk cache when
    /// it has it, else from the bucket, in ranged GETs of [`PIECE`] bytes one after the
    /// other (a whole blob kept in the disk cache on the way). The first piece is asked for
    /// before this returns: a bucket that fails at once is an error here, not a cut body.
    pub async fn large_blob(
        &self,
        sha256: &Sha256,
        size: u64,
        start: u64,
        length: u64,
    ) -> Result<BoxStream<'static, Result<Bytes, RemoteError>>, RemoteError> {
        if let Some(disk) = &self.disk
            && let Some(cached) = disk.read(sha256, size, start, length).await
        {
            self.counts.from_cache.fetch_add(1, Ordering::Relaxed);
            return Ok(cached.boxed());
        }
        let key = blob_key(&sha256.to_hex());
        let end = start + length;
        let first = self
            .bucket
            .get_range(&key, start..end.min(start + PIECE))
            .await?;
        self.counts.from_bucket.fetch_add(1, Ordering::Relaxed);
        let bucket = self.bucket.clone();
        let rest = futures_util::stream::iter(
            (start + PIECE..end)
                .step_by(PIECE as usize)
                .map(move |from| from..end.min(from + PIECE)),
        )
        .then(move |range| {
            let (bucket, key) = (bucket.clone(), key.clone());
            async move { bucket.get_range(&key, range).await }
        })
        .try_flatten();
        let counts = self.counts.clone();
        let pieces = first
            .chain(rest)
            .map_err(RemoteError::from)
            .inspect_ok(move |piece| {
                let sent = piece.len() as u64;
                counts.bucket_bytes.fetch_add(sent, Ordering::Relaxed);
            });
        let fill = match &self.disk {
            Some(disk) if start == 0 && length == size => disk.fill(sha256, size).await,
            _ => None,
        };
        Ok(match fill {
            Some(fill) => kept_on_the_way(pieces, fill).boxed(),
            None => pieces.boxed(),
        })
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, BlobCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `pieces` as they come, written to the disk cache too.
fn kept_on_the_way(
    pieces: impl Stream<Item = Result<Bytes, RemoteError>> + Send + 'static,
    fill: Fill,
) -> impl Stream<Item = Result<Bytes, RemoteError>> + Send + 'static {
    futures_util::stream::unfold(
        (pieces.boxed(), Some(fill)),
        |(mut pieces, mut fill)| async move {
            let piece = pieces.next().await?;
            match (&piece, &mut fill) {
                (Ok(bytes), Some(fill)) => fill.write(bytes).await,
                // A cut download is not kept.
                (Err(_), _) => fill = None,
                _ => {}
            }
            Some((piece, (pieces, fill)))
        },
    )
}

/// Small blobs by digest, bounded in total: they never change, so an entry is only ever
/// evicted, oldest first.
#[derive(Default)]
struct BlobCache {
    blobs: HashMap<Sha256, Bytes>,
    order: VecDeque<Sha256>,
    bytes: u64,
}

impl BlobCache {
    fn get(&self, sha256: &Sha256) -> Option<Bytes> {
        self.blobs.get(sha256).cloned()
    }

    fn insert(&mut self, sha256: Sha256, bytes: Bytes) {
        if self.blobs.contains_key(&sha256) {
            return;
        }
        self.bytes += bytes.len() as u64;
        self.blobs.insert(sha256, bytes);
        self.order.push_back(sha256);
        while self.bytes > CACHE_LIMIT {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(gone) = self.blobs.remove(&oldest) {
                self.bytes -= gone.len() as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_within_its_limit_dropping_the_oldest() {
        let mut cache = BlobCache::default();
        let blob = |i: u8| (Sha256::of(&[i]), Bytes::from(vec![i; SMALL_BLOB as usize]));
        let count = (CACHE_LIMIT / SMALL_BLOB) as u8;
        for i in 0..=count {
            let (sha, bytes) = blob(i);
            cache.insert(sha, bytes);
            cache.insert(sha, blob(i).1);
        }
        assert!(cache.bytes <= CACHE_LIMIT);
        assert!(cache.get(&blob(0).0).is_none());
        assert_eq!(cache.get(&blob(count).0), Some(blob(count).1));
        assert_eq!(cache.get(&blob(1).0), Some(blob(1).1));
        assert_eq!(cache.blobs.len(), cache.order.len());
    }
}
