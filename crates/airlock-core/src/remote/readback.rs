//! A writer's dropped blobs, read back from its bucket when something must read their bytes
//! (an export, a snap fetch checking a revision again, a pull): the [`BlobSource`] of a writer's
//! store.

use std::path::{Path, PathBuf};

use futures_util::{StreamExt, TryStreamExt};
use sha2::Digest;
use tokio::io::AsyncWriteExt;

use super::{RemoteError, blob_key, open_bucket};
use crate::config::S3Storage;
use crate::storage::bucket::Bucket;
use crate::storage::{BlobSource, Sha256, StorageError};

/// Reads dropped blobs back from the bucket `[storage]` names.
#[derive(Debug)]
pub struct ReadBack {
    storage: S3Storage,
}

impl ReadBack {
    pub fn new(storage: &S3Storage) -> ReadBack {
        ReadBack {
            storage: storage.clone(),
        }
    }
}

/// Blobs read back at once: as many as a push uploads.
const READS_IN_FLIGHT: usize = 8;

impl BlobSource for ReadBack {
    fn fetch(
        &self,
        blobs: &[(Sha256, PathBuf)],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StorageError> {
        // A runtime of its own on a thread of its own: the callers are plain threads and
        // async tasks alike, and none of them may block a runtime it runs on.
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|source| StorageError::Write {
                            path: blobs[0].1.clone(),
                            source,
                        })?;
                    runtime.block_on(read_back_all(&self.storage, blobs, progress))
                })
                .join()
                .expect("the read-back thread does not panic")
        })
    }
}

async fn read_back_all(
    storage: &S3Storage,
    blobs: &[(Sha256, PathBuf)],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), StorageError> {
    let failed = |digest: &Sha256| {
        let sha256 = digest.to_hex();
        move |e: RemoteError| StorageError::ReadBack {
            sha256,
            source: Box::new(e),
        }
    };
    let bucket = open_bucket(storage).map_err(failed(&blobs[0].0))?;
    futures_util::stream::iter(blobs)
        .map(|(digest, dest)| {
            let bucket = &bucket;
            async move {
                read_back(bucket, digest, dest, progress)
                    .await
                    .map_err(failed(digest))?;
                tracing::debug!("read blob {digest} back from {}", bucket.label());
                Ok(())
            }
        })
        .buffer_unordered(READS_IN_FLIGHT)
        .try_collect()
        .await
}

/// Streams the blob into `dest`, hashing on the way: only the right bytes are kept.
async fn read_back(
    bucket: &Bucket,
    digest: &Sha256,
    dest: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), RemoteError> {
    let key = blob_key(&digest.to_hex());
    let missing = || RemoteError::MissingBlobInBucket {
        bucket: bucket.label().to_string(),
        key: key.clone(),
    };
    let info = bucket.head(&key).await?.ok_or_else(missing)?;
    let write_err = |source| StorageError::Write {
        path: dest.to_path_buf(),
        source,
    };
    let mut file = tokio::fs::File::create(dest).await.map_err(write_err)?;
    let mut hasher = sha2::Sha256::new();
    if info.size > 0 {
        let mut pieces = bucket.get_range(&key, 0..info.size).await?;
        while let Some(piece) = pieces.next().await {
            let piece = piece?;
            hasher.update(&piece);
            file.write_all(&piece).await.map_err(write_err)?;
            progress(piece.len() as u64);
        }
    }
    // No fsync of its own: the store's commit flushes the filesystem before the rename.
    file.flush().await.map_err(write_err)?;
    if Sha256::from_bytes(hasher.finalize().into()) != *digest {
        return Err(RemoteError::CorruptBlob {
            bucket: bucket.label().to_string(),
            key,
        });
    }
    Ok(())
}
