//! Storage: the content store, atomic file replacement, the site lock and published trees.

mod atomic;
mod digest;
pub mod history;
mod lock;
mod state;
mod store;
pub mod tree;

use crate::hint::Hint;
use std::path::PathBuf;

pub use atomic::{sync_dir, sync_filesystem, write_atomic};
pub use digest::{CopyError, Hashes, MultiHasher, Sha256, copy_hashing, copy_sha256};
pub use lock::SiteLock;
pub use state::{load_json, save_json};
pub use store::{ContentStore, StagedBlob, Staging};
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
            StorageError::Corrupt { .. } => Some(
                "`airlock verify --offline` lists what is damaged; a publish or sync writes good copies again",
            ),
            StorageError::Read { .. } | StorageError::Write { .. } | StorageError::Lock { .. } => {
                None
            }
        }
    }
}
