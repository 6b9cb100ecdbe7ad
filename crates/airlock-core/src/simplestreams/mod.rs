//! MAAS boot images: the simplestreams feed (images.maas.io) mirrored, re-signed with the
//! site key and served at `/images/` as a MAAS boot source.

pub mod custom;
pub mod document;
pub mod mirror;
pub mod publish;
pub mod select;

use std::path::PathBuf;

use crate::hint::Hint;
use crate::net::NetError;
use crate::openpgp::OpenPgpError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum SimplestreamsError {
    #[error("no [images] section in {config}")]
    NotConfigured { config: PathBuf },
    #[error("{url}: {reason}")]
    Upstream { url: String, reason: String },
    #[error("{url}: not a valid document")]
    Document {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what}: {reason}")]
    Custom { what: String, reason: String },
    #[error("{path}: not a tgz")]
    NotTgz {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: {path} does not make a URL")]
    BadPath {
        url: String,
        path: String,
        #[source]
        source: crate::net::UrlError,
    },
    #[error("filetype {filetype} cannot be served in a stream MAAS 3.8 reads (only tgz can)")]
    NotStreamable { filetype: String },
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    OpenPgp(#[from] OpenPgpError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl SimplestreamsError {
    pub(crate) fn upstream(url: impl std::fmt::Display, reason: impl std::fmt::Display) -> Self {
        SimplestreamsError::Upstream {
            url: url.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl Hint for SimplestreamsError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            SimplestreamsError::NotConfigured { .. } => Some(
                "add an [images] section with the upstream url and keyring (see docs/images.md)",
            ),
            SimplestreamsError::NotStreamable { .. } => Some(
                "upload it to MAAS with `maas PROFILE boot-resources create` (airlock images add prints the command)",
            ),
            SimplestreamsError::Net(e) => e.hint(),
            SimplestreamsError::OpenPgp(e) => e.hint(),
            SimplestreamsError::Storage(e) => e.hint(),
            SimplestreamsError::Upstream { .. }
            | SimplestreamsError::Document { .. }
            | SimplestreamsError::NotTgz { .. }
            | SimplestreamsError::BadPath { .. }
            | SimplestreamsError::Custom { .. } => None,
        }
    }
}
