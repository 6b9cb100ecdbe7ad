//! Where the store API's catalog and blobs come from: the data folder ([`LocalContent`]), or
//! what a frontend serves from its bucket (`server::bucket`). The handlers are the same.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method};
use axum::response::Response;
use bytes::Bytes;
use futures_util::future::BoxFuture;

use crate::hint::Hint;
use crate::http::files;
use crate::snap::SnapError;
use crate::snap::catalog::Catalog;
use crate::storage::{ContentStore, Sha256};

/// What the store API reads: the catalog, assertions, blobs (snaps, icons).
pub trait SnapContent: Send + Sync + 'static {
    /// The catalog served now (an empty one when none was made).
    fn catalog(&self) -> BoxFuture<'_, Result<Arc<Catalog>, ContentError>>;

    /// The bytes of the stored assertion `reference` (`kind/key`), blob `sha256`.
    fn assertion<'a>(
        &'a self,
        sha256: Sha256,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<Bytes, ContentError>>;

    /// A blob answered as the published trees' files are (HEAD, one Range, validators); its
    /// size when the catalog says it.
    fn blob<'a>(
        &'a self,
        sha256: Sha256,
        size: Option<u64>,
        method: &'a Method,
        headers: &'a HeaderMap,
    ) -> BoxFuture<'a, Result<Response, ContentError>>;
}

/// Why the store's content could not be read: the store's own failure, logged and answered
/// 409 (snapd retries 5xx for half a minute over what only the operator can fix).
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("cannot read {}", path.display())]
    ReadCatalog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    LoadCatalog(#[from] SnapError),
    #[error("cannot read the stored {reference}")]
    ReadAssertion {
        reference: String,
        #[source]
        source: std::io::Error,
    },
    #[error("blob {sha256} is missing from the content store")]
    MissingBlob { sha256: String },
    #[error("cannot read blob {sha256}")]
    ReadBlob {
        sha256: String,
        #[source]
        source: std::io::Error,
    },
    /// Another source's failure (a frontend's bucket).
    #[error("cannot read {what}")]
    Source {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Hint for ContentError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            ContentError::LoadCatalog(e) => e.hint(),
            ContentError::ReadCatalog { .. }
            | ContentError::ReadAssertion { .. }
            | ContentError::ReadBlob { .. } => {
                Some("check the data folder's disk and permissions (`airlock verify --offline`)")
            }
            ContentError::MissingBlob { .. } => {
                Some("`airlock verify --offline` lists what the store lacks")
            }
            ContentError::Source { .. } => Some("the server's log says why"),
        }
    }
}

/// The snap store of a data folder.
pub struct LocalContent {
    data_dir: PathBuf,
    store: ContentStore,
    /// The catalog file is replaced by rename, never rewritten in place.
    catalog: Mutex<Option<(files::Identity, Arc<Catalog>)>>,
    blobs: files::SmallFiles,
}

impl LocalContent {
    pub fn new(data_dir: &std::path::Path) -> LocalContent {
        LocalContent {
            data_dir: data_dir.to_path_buf(),
            store: ContentStore::new(data_dir),
            catalog: Mutex::new(None),
            blobs: files::SmallFiles::default(),
        }
    }

    /// The current catalog: a `stat` per request, a reload when an import replaced it.
    fn current_catalog(&self) -> Result<Arc<Catalog>, ContentError> {
        let path = Catalog::path(&self.data_dir);
        let stamp = match std::fs::metadata(&path) {
            Ok(m) => files::Identity::of(&m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Arc::new(Catalog::default()));
            }
            Err(source) => return Err(ContentError::ReadCatalog { path, source }),
        };
        let mut cached = self.catalog.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, catalog)) = cached.as_ref()
            && *s == stamp
        {
            return Ok(catalog.clone());
        }
        let catalog = Arc::new(Catalog::load(&self.data_dir)?);
        *cached = Some((stamp, catalog.clone()));
        Ok(catalog)
    }
}

impl SnapContent for LocalContent {
    fn catalog(&self) -> BoxFuture<'_, Result<Arc<Catalog>, ContentError>> {
        Box::pin(async move { self.current_catalog() })
    }

    fn assertion<'a>(
        &'a self,
        sha256: Sha256,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<Bytes, ContentError>> {
        Box::pin(async move {
            tokio::fs::read(self.store.blob_path(&sha256))
                .await
                .map(Bytes::from)
                .map_err(|source| ContentError::ReadAssertion {
                    reference: reference.to_string(),
                    source,
                })
        })
    }

    fn blob<'a>(
        &'a self,
        sha256: Sha256,
        _size: Option<u64>,
        method: &'a Method,
        headers: &'a HeaderMap,
    ) -> BoxFuture<'a, Result<Response, ContentError>> {
        Box::pin(async move {
            let found = files::open(self.store.blob_path(&sha256), &self.blobs)
                .await
                .map_err(|source| ContentError::ReadBlob {
                    sha256: sha256.to_hex(),
                    source,
                })?;
            let files::Found::File(reply) = found else {
                return Err(ContentError::MissingBlob {
                    sha256: sha256.to_hex(),
                });
            };
            Ok(reply.respond(method, headers).await)
        })
    }
}
