//! apt repositories: deb822, .deb files, local repos, Release files and publishing.

pub mod closure;
pub mod combine;
pub mod deb;
pub mod deb822;
pub mod index;
pub mod mirror;
pub mod package;
pub mod publish;
pub mod relation;
pub mod release;
pub mod repo;

use std::path::{Path, PathBuf};

use crate::hint::Hint;
use crate::openpgp::OpenPgpError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum AptError {
    #[error("no repo named {repo:?} in {config} (configured: {known})")]
    UnknownRepo {
        repo: String,
        known: String,
        config: PathBuf,
    },
    #[error("repo {repo:?} has no suite {suite:?} (configured: {known})")]
    UnknownSuite {
        repo: String,
        suite: String,
        known: String,
    },
    #[error("repo {repo:?} has no component {component:?} (configured: {known})")]
    UnknownComponent {
        repo: String,
        component: String,
        known: String,
    },
    #[error("{dir} holds no .deb files")]
    NoPackages { dir: PathBuf },
    #[error("{file}: {reason}")]
    BadPackage { file: PathBuf, reason: String },
    #[error("{first} (and {others} more files were refused)")]
    Several { first: Box<AptError>, others: usize },
    #[error("no package {what:?} in {repo}/{suite}")]
    NotFound {
        what: String,
        repo: String,
        suite: String,
    },
    #[error("cannot compress {what}")]
    Compress {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {reason}")]
    Combine { what: String, reason: String },
    #[error("{what}: cannot read {blob}")]
    CombineRead {
        what: String,
        blob: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: bad index")]
    CombineIndex {
        what: String,
        #[source]
        source: index::IndexError,
    },
    #[error(transparent)]
    Deb(#[from] deb::DebError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    OpenPgp(#[from] OpenPgpError),
}

impl AptError {
    /// A .deb problem reported against the file the operator named (not our staged copy).
    fn deb(file: &Path, error: deb::DebError) -> AptError {
        AptError::Deb(error.at(file))
    }
}

impl Hint for AptError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            AptError::UnknownRepo { .. } => {
                Some("repos are defined by [[apt.repo]] sections of the config")
            }
            AptError::UnknownSuite { .. } | AptError::UnknownComponent { .. } => Some(
                "suites and components of a repo are listed in its [[apt.repo]] section of the config",
            ),
            AptError::Several { first, .. } => first.hint(),
            AptError::CombineIndex { source, .. } => source.hint(),
            AptError::Deb(e) => e.hint(),
            AptError::Storage(e) => e.hint(),
            AptError::OpenPgp(e) => e.hint(),
            AptError::NoPackages { .. }
            | AptError::BadPackage { .. }
            | AptError::NotFound { .. }
            | AptError::Compress { .. }
            | AptError::Combine { .. }
            | AptError::CombineRead { .. } => None,
        }
    }
}
