//! Storage: the content store, atomic file replacement, the site lock and published trees.

mod atomic;
mod digest;
pub mod history;
mod lock;
mod state;
mod store;
pub mod tree;

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
