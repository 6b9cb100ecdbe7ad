//! A writer's dropped blobs, read back from its bucket when something must read their bytes
//! (an export, a snap's metadata): the [`BlobSource`] of a writer's store.

use std::path::Path;

use futures_util::StreamExt;
use sha2::Digest;
use tokio::io::AsyncWriteExt;

use super::{RemoteError, blob_key, open_bucket};
use crate::config::S3Storage;
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

impl BlobSource for ReadBack {
    fn fetch(&self, digest: &Sha256, dest: &Path) -> Result<(), StorageError> {
        // A runtime of its own on a thread of its own: the callers are plain threads and
        // async tasks alike, and none of them may block a runtime it runs on.
        let result = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|source| StorageError::Write {
                            path: dest.to_path_buf(),
                            source,
                        })?;
                    runtime
                        .block_on(read_back(&self.storage, digest, dest))
                        .map_err(|e| StorageError::ReadBack {
                            sha256: digest.to_hex(),
                            source: Box::new(e),
                        })
                })
                .join()
                .expect("the read-back thread does not panic")
        });
        if result.is_ok() {
            tracing::info!("read blob {digest} back from the bucket");
        }
        result
    }
}

/// Streams the blob into `dest`, hashing on the way: only the right bytes are kept.
async fn read_back(storage: &S3Storage, digest: &Sha256, dest: &Path) -> Result<(), RemoteError> {
    let bucket = open_bucket(storage)?;
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
        }
    }
    file.sync_all().await.map_err(write_err)?;
    if Sha256::from_bytes(hasher.finalize().into()) != *digest {
        return Err(RemoteError::CorruptBlob {
            bucket: bucket.label().to_string(),
            key,
        });
    }
    Ok(())
}
