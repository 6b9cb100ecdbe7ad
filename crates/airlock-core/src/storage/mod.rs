//! Storage: the content store, atomic file replacement, the site lock and published trees.

mod atomic;
pub mod bucket;
mod digest;
mod dropped;
pub mod format;
pub mod history;
mod lock;
mod read;
mod state;
mod store;
pub mod tree;
mod unflushed;
pub mod verify_run;

use crate::hint::Hint;
use std::path::PathBuf;

pub use atomic::{sync_dir, sync_filesystem, write_atomic};
pub use digest::{CopyError, Hashes, MultiHasher, Sha256, copy_hashing, copy_sha256};
pub use lock::SiteLock;
pub use read::{open_regular, read_limited, read_limited_text};
pub use state::{load_json, save_json};
pub use store::{
    BlobSource, ContentStore, StagedBlob, Staging, StoreFiles, StoredFile, Unflushed, UnreadFolder,
};
pub use tree::{Entry, Manifest, TreeSet};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is damaged: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path} is damaged")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} is larger than {}, the most airlock reads for {what}", human_limit(*.limit))]
    TooLarge {
        path: PathBuf,
        limit: u64,
        what: &'static str,
    },
    #[error("{path} is {kind}, not a regular file")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "{path}: the data folder has format {found}, newer than airlock {} reads (up to format {})",
        env!("CARGO_PKG_VERSION"),
        format::CURRENT
    )]
    NewerDataFormat { path: PathBuf, found: u32 },
    #[error("blob {sha256} was pushed to the bucket and dropped from the data folder")]
    Dropped { sha256: String },
    #[error("cannot read blob {sha256} back from the bucket")]
    ReadBack {
        sha256: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A limit as people write it: "1 MiB", or bytes when it is no whole number of KiB.
fn human_limit(limit: u64) -> String {
    match limit {
        l if l >= 1 << 20 && l % (1 << 20) == 0 => format!("{} MiB", l >> 20),
        l if l >= 1 << 10 && l % (1 << 10) == 0 => format!("{} KiB", l >> 10),
        l => format!("{l} bytes"),
    }
}

impl Hint for StorageError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            StorageError::Write { source, .. }
                if source.kind() == std::io::ErrorKind::StorageFull =>
            {
                Some(
                    "the disk is full: `airlock gc` frees what nothing refers to any more, or give the data folder more room",
                )
            }
            StorageError::Read { source, .. }
            | StorageError::Write { source, .. }
            | StorageError::Lock { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                Some(
                    "run airlock as the user that owns the data folder (the package's `airlock` user, or whoever ran `airlock init`)",
                )
            }
            StorageError::Corrupt { .. } | StorageError::Json { .. } => Some(
                "`airlock verify --offline` lists what is damaged; a publish or sync writes good copies again",
            ),
            StorageError::NotRegular { .. } => {
                Some("name the file itself, not a device, FIFO or folder")
            }
            StorageError::NewerDataFormat { .. } => Some(
                "a newer airlock has upgraded this data folder: run that version (or a newer one) again; to go back to this one, restore the backup taken before the upgrade (docs/operations.md)",
            ),
            StorageError::Dropped { .. } => Some(
                "run the command with the configuration whose [storage] names the bucket ([storage] keep_pushed dropped it): airlock reads it back from there",
            ),
            StorageError::Read { .. }
            | StorageError::Write { .. }
            | StorageError::Lock { .. }
            | StorageError::TooLarge { .. } => None,
            StorageError::ReadBack { .. } => Some(
                "the bucket [storage] names must answer with its credentials (`airlock push` says what is wrong with it): run the command again once it does",
            ),
        }
    }
}
