//! `airlock serve` on a frontend: a site with no data folder of its own answers from what was
//! pushed to its bucket ([`crate::remote`]).
//!
//! - `/apt/NAME/...` and `/images/...`: the files of the pushed trees, GET and HEAD, a single
//!   byte range passed on to the bucket;
//! - `/airlock.gpg`, `/airlock.asc`: the site's public key, as pushed;
//! - `/v2/...`, `/api/v1/...`: the snap store API ([`crate::snap::api`]) over the pushed
//!   catalog, its assertions and snaps from the bucket;
//! - `/`, `/status.json`, `/metrics`: what the frontend serves, its disk cache, what it
//!   answered;
//! - upstream names (`Host: archive.ubuntu.com`, absolute URLs) by the pushed routes, as
//!   [`crate::proxy`] maps them on a data folder's server (no pull-through, no CONNECT);
//! - before the first push: 503 and what to do (the snap store is empty).
//!
//! Every request is answered from one snapshot (one push), swapped whole by the poller; the
//! routes run on the same server as a data folder's ([`super::serve_front`]: event loops,
//! connection limits, write deadline, access log).
//! The DNS responder for the pushed routes is the binary's (`serve`), HTTPS the server's.
//! Not here yet: folder listings.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::TryStreamExt;
use futures_util::future::BoxFuture;

use super::Front;
use crate::config::{ProxyConfig, Route};
use crate::http::Json;
use crate::http::files::{Validators, content_type, only_get_and_head, safe_segments};
use crate::proxy::Proxy;
use crate::remote::{Frontend, SMALL_BLOB};
use crate::snap::api::{ContentError, SnapContent, StoreApi};
use crate::snap::catalog::Catalog;
use crate::status::{Counters, FrontendCache, FrontendStatus, LargeBlobs, ServedPush, ServerInfo};
use crate::storage::Sha256;

/// How long a client is told to wait before the first push.
const RETRY_AFTER: &str = "5";

/// What [`super::serve_front`] serves on a frontend: [`router`], `/`, `/status.json` and
/// `/metrics`, the pushed routes' upstream names, requests counted (from zero: a frontend
/// keeps nothing).
pub fn front(frontend: Arc<Frontend>, public_url: &str) -> Front {
    let counters = Arc::new(Counters::default());
    let watched = Arc::new(Watched {
        frontend: frontend.clone(),
        counters: counters.clone(),
        server: ServerInfo {
            started: jiff::Timestamp::now(),
            public_url: public_url.to_string(),
        },
    });
    let status = Router::new()
        .route("/", get(home))
        .route("/status.json", get(status_json))
        .route("/metrics", get(metrics))
        .with_state(watched);
    let routes = Routes {
        frontend: frontend.clone(),
        own_hosts: crate::config::url_host(public_url).into_iter().collect(),
        counters: counters.clone(),
        current: RwLock::new(None),
    };
    Front {
        routing: super::Routing::Frontend(Arc::new(routes)),
        counters,
        app: router(frontend, public_url).merge(status),
    }
}

/// The upstream names a frontend answers for: the routes of the push it serves, as a
/// [`Proxy`] made again when a push changes them (never pulling from the upstream).
pub(super) struct Routes {
    frontend: Arc<Frontend>,
    own_hosts: Vec<String>,
    counters: Arc<Counters>,
    current: RwLock<Option<MadeProxy>>,
}

/// A proxy and the routes it was made of.
type MadeProxy = (Arc<Vec<Route>>, Arc<Proxy>);

impl Routes {
    pub(super) fn proxy(&self) -> Arc<Proxy> {
        let routes = self
            .frontend
            .snapshot()
            .map(|s| s.routes.clone())
            .unwrap_or_default();
        // Read-locked on every request; written once a push changed the routes.
        if let Some((made_from, proxy)) = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            && Arc::ptr_eq(made_from, &routes)
        {
            return proxy.clone();
        }
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let config = ProxyConfig {
            routes: routes.to_vec(),
            ..ProxyConfig::default()
        };
        let proxy = Arc::new(Proxy::new(&config, &self.own_hosts, self.counters.clone()));
        *current = Some((routes, proxy.clone()));
        proxy
    }
}

/// What a frontend's status is made of.
struct Watched {
    frontend: Arc<Frontend>,
    counters: Arc<Counters>,
    server: ServerInfo,
}

impl Watched {
    fn status(&self) -> FrontendStatus {
        let counts = self.frontend.counts();
        FrontendStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            bucket: self.frontend.bucket().label().to_string(),
            server: self.server.clone(),
            served: self.frontend.snapshot().map(|s| ServedPush {
                generation: s.published.generation,
                pushed: s.published.written,
                trees: s.published.trees.clone(),
            }),
            refreshed: counts.refreshed,
            cache: self.frontend.disk_cache().map(|cache| {
                let usage = cache.usage();
                FrontendCache {
                    dir: cache.dir().display().to_string(),
                    blobs: usage.blobs as u64,
                    bytes: usage.bytes,
                    limit: usage.limit,
                }
            }),
            large_blobs: LargeBlobs {
                from_cache: counts.from_cache,
                from_bucket: counts.from_bucket,
                bucket_bytes: counts.bucket_bytes,
            },
            http: self.counters.snapshot(),
        }
    }
}

async fn home(State(watched): State<Arc<Watched>>) -> Response {
    let page = super::page::render_frontend(&watched.status());
    let mut response = axum::response::Html(page).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn status_json(State(watched): State<Arc<Watched>>) -> Json<FrontendStatus> {
    Json(watched.status())
}

async fn metrics(State(watched): State<Arc<Watched>>) -> Response {
    super::metrics_response(crate::status::metrics::render_frontend(&watched.status()))
}

/// `public_url`: what the snap store advertises to a client that sends no `Host`.
pub fn router(frontend: Arc<Frontend>, public_url: &str) -> Router {
    let snaps = StoreApi::with_content(
        Arc::new(BucketSnaps {
            frontend: frontend.clone(),
            catalog: Mutex::new(None),
        }),
        public_url,
    );
    Router::new()
        .fallback(answer)
        .with_state(frontend)
        .merge(crate::snap::api::router(snaps))
}

/// Everything but the snap store (HEAD's body is dropped by [`Front`]).
async fn answer(State(frontend): State<Arc<Frontend>>, request: Request) -> Response {
    // The head alone: a body is not shared between threads, and none is read.
    let (request, _) = request.into_parts();
    respond(&frontend, &request).await
}

async fn respond(frontend: &Frontend, request: &axum::http::request::Parts) -> Response {
    let method = &request.method;
    if method != Method::GET && method != Method::HEAD {
        return only_get_and_head();
    }
    let Some(snapshot) = frontend.snapshot() else {
        let message = format!(
            "nothing was pushed to {} yet: run `airlock push` on the writer; this frontend looks again every few seconds\n",
            frontend.bucket().label()
        );
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, message).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER));
        return response;
    };
    let raw_path = request.uri.path();
    let Some(segments) = safe_segments(raw_path) else {
        return (StatusCode::BAD_REQUEST, "invalid path\n").into_response();
    };
    let path = segments.join("/");
    let blob = match path.as_str() {
        "airlock.gpg" | "airlock.asc" => snapshot
            .document(&format!("keys/{path}"))
            .and_then(Sha256::from_hex)
            .map(|sha256| (sha256, None)),
        _ => snapshot
            .resolve(&path)
            .map(|found| (found.entry.sha256, Some(found.entry.size))),
    };
    let Some((sha256, size)) = blob else {
        return (
            StatusCode::NOT_FOUND,
            format!("{raw_path} is not published here\n"),
        )
            .into_response();
    };
    let (head, headers) = (method == Method::HEAD, &request.headers);
    match size {
        Some(size) if size > SMALL_BLOB => {
            large(frontend, head, sha256, size, &path, headers).await
        }
        _ => small(frontend, head, sha256, &path, headers).await,
    }
}

/// The snap store's content on a frontend: the catalog of the snapshot served, its
/// assertions, snaps and icons from the bucket (snaps through the disk cache as the trees'
/// large files).
struct BucketSnaps {
    frontend: Arc<Frontend>,
    /// The catalog last read, by its blob's digest: read again only when a push changed it.
    catalog: Mutex<Option<(Sha256, Arc<Catalog>)>>,
}

impl BucketSnaps {
    async fn current_catalog(&self) -> Result<Arc<Catalog>, ContentError> {
        let document = self.frontend.snapshot().and_then(|snapshot| {
            let hex = snapshot.document(crate::remote::CATALOG)?;
            Sha256::from_hex(hex)
        });
        let Some(sha256) = document else {
            return Ok(Arc::new(Catalog::default()));
        };
        if let Some((digest, catalog)) = self.lock().as_ref()
            && *digest == sha256
        {
            return Ok(catalog.clone());
        }
        let catalog: Arc<Catalog> = Arc::new(
            crate::remote::read_document(
                self.frontend.bucket(),
                &sha256.to_hex(),
                crate::remote::CATALOG_LIMIT,
            )
            .await
            .map_err(|e| ContentError::Source {
                what: format!("the snap catalog (blob {sha256})"),
                source: Box::new(e),
            })?,
        );
        *self.lock() = Some((sha256, catalog.clone()));
        Ok(catalog)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Sha256, Arc<Catalog>)>> {
        self.catalog.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SnapContent for BucketSnaps {
    fn catalog(&self) -> BoxFuture<'_, Result<Arc<Catalog>, ContentError>> {
        Box::pin(self.current_catalog())
    }

    fn assertion<'a>(
        &'a self,
        sha256: Sha256,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<bytes::Bytes, ContentError>> {
        Box::pin(async move {
            self.frontend
                .small_blob(&sha256)
                .await
                .map_err(|e| ContentError::Source {
                    what: format!("the stored {reference}"),
                    source: Box::new(e),
                })
        })
    }

    fn blob<'a>(
        &'a self,
        sha256: Sha256,
        size: Option<u64>,
        method: &'a Method,
        headers: &'a HeaderMap,
    ) -> BoxFuture<'a, Result<Response, ContentError>> {
        Box::pin(async move {
            let (head, path) = (method == Method::HEAD, format!("snap blob {sha256}"));
            Ok(match size {
                Some(size) if size > SMALL_BLOB => {
                    large(&self.frontend, head, sha256, size, &path, headers).await
                }
                // Icons: the catalog does not say their size, and they are small.
                _ => small(&self.frontend, head, sha256, &path, headers).await,
            })
        })
    }
}

/// A blob kept in memory: read once from the bucket and checked.
async fn small(
    frontend: &Frontend,
    head: bool,
    sha256: Sha256,
    path: &str,
    headers: &HeaderMap,
) -> Response {
    let bytes = match frontend.small_blob(&sha256).await {
        Ok(bytes) => bytes,
        Err(e) => return bucket_failed(path, &e),
    };
    let size = bytes.len() as u64;
    reply(
        head,
        sha256,
        size,
        path,
        headers,
        |start, length| async move {
            Ok(Body::from(
                bytes.slice(start as usize..(start + length) as usize),
            ))
        },
    )
    .await
}

/// A large blob, from the frontend's disk cache or streamed from the bucket (the range
/// asked for only).
async fn large(
    frontend: &Frontend,
    head: bool,
    sha256: Sha256,
    size: u64,
    path: &str,
    headers: &HeaderMap,
) -> Response {
    reply(
        head,
        sha256,
        size,
        path,
        headers,
        |start, length| async move {
            let stream = frontend.large_blob(&sha256, size, start, length).await?;
            Ok(Body::from_stream(stream.inspect_err(|e| {
                tracing::error!("a download stopped: {}", crate::hint::Chain(e));
            })))
        },
    )
    .await
}

/// The response to a GET of a blob of `size` bytes (see [`Validators::respond`]); its digest
/// names its content exactly, and is its ETag.
async fn reply<F, B>(
    head: bool,
    sha256: Sha256,
    size: u64,
    path: &str,
    headers: &HeaderMap,
    body: B,
) -> Response
where
    B: FnOnce(u64, u64) -> F,
    F: Future<Output = Result<Body, crate::remote::RemoteError>>,
{
    Validators::tagged(&format!("\"{}\"", sha256.to_hex()), size)
        .respond(
            content_type(Path::new(path)),
            head,
            headers,
            |start, length| async move {
                body(start, length)
                    .await
                    .map_err(|e| bucket_failed(path, &e))
            },
        )
        .await
}

fn bucket_failed(path: &str, error: &(dyn std::error::Error + 'static)) -> Response {
    tracing::error!("cannot serve /{path}: {}", crate::hint::Chain(error));
    (
        StatusCode::BAD_GATEWAY,
        "the object store did not give this file; the server's log says why\n",
    )
        .into_response()
}
