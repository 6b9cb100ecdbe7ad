//! `airlock serve`: one HTTP server for everything published.
//!
//! - `/apt/REPO/...`: published apt trees (`data/public/apt/REPO`, a symlink switched by each
//!   publish; every request resolves it afresh);
//! - `/airlock.gpg`, `/airlock.asc`: the site's public key;
//! - `/v2/...`, `/api/v1/...`: the snap store API ([`crate::snap::api`]);
//! - `/status.json`: the proxy routes with their hits and misses;
//! - requests for upstream names (`Host: archive.ubuntu.com` or an absolute URL) go through
//!   [`crate::proxy`] first, which maps them onto the published trees;
//! - `/`: a page saying what is served and how to use it; folders get a plain listing.
//!
//! [`router`] is separate from [`serve`] so tests can call it in-process.

mod balance;
mod connections;
mod page;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use bytes::Bytes;
use tokio::net::TcpListener;

pub use page::{PublishedSuite, published_suites};

use crate::hint::Hint;
use crate::http::Json;
use crate::http::files::{self, safe_segments};
use crate::openpgp::SiteKey;
use crate::proxy::{Proxy, Routed};
use crate::snap::api::StoreApi;

/// Areas of the data folder's `public/` that are served, by first URL segment.
const AREAS: &[&str] = &["apt", "images"];

/// What the server needs; cheap to clone.
#[derive(Clone)]
pub struct ServerState {
    inner: Arc<Inner>,
}

struct Inner {
    public_dir: PathBuf,
    public_url: String,
    fingerprint: String,
    key_binary: Bytes,
    key_armored: Bytes,
    small_files: files::SmallFiles,
    snaps: StoreApi,
    proxy: Proxy,
}

impl ServerState {
    pub fn new(data_dir: &std::path::Path, public_url: &str, key: &SiteKey) -> ServerState {
        ServerState {
            inner: Arc::new(Inner {
                public_dir: data_dir.join("public"),
                public_url: public_url.trim_end_matches('/').to_string(),
                fingerprint: key.fingerprint(),
                key_binary: Bytes::from(key.public_binary()),
                key_armored: Bytes::from(key.public_armored()),
                small_files: files::SmallFiles::default(),
                snaps: StoreApi::new(data_dir, public_url),
                proxy: Proxy::default(),
            }),
        }
    }

    /// Answers for upstream names too, as `proxy` routes them.
    pub fn with_proxy(mut self, proxy: Proxy) -> ServerState {
        Arc::get_mut(&mut self.inner)
            .expect("configured before serving")
            .proxy = proxy;
        self
    }

    fn proxy(&self) -> &Proxy {
        &self.inner.proxy
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {address}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("server failed")]
    Serve(#[source] std::io::Error),
}

impl Hint for ServerError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            ServerError::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => {
                Some(
                    "another program listens there: stop it, or choose an address with --listen or [site] listen",
                )
            }
            ServerError::Bind { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                Some("ports below 1024 need root or CAP_NET_BIND_SERVICE; or use a port above 1024")
            }
            ServerError::Bind { .. } | ServerError::Serve(_) => None,
        }
    }
}

/// What every request goes through: the access log, then upstream names mapped onto the
/// trees ([`crate::proxy`]: before routing, which only sees the path), then the routes.
/// Written out rather than stacked middleware: each layer cost a boxed future per request.
#[derive(Clone)]
pub struct Front {
    state: ServerState,
    app: Router,
}

impl tower::Service<Request> for Front {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Response, Self::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let (state, app) = (self.state.clone(), self.app.clone());
        Box::pin(async move {
            let log = AccessLog::start(&request);
            let inner = &state.inner;
            let response =
                crate::proxy::route_request(&inner.proxy, &inner.small_files, request, app).await;
            if let Some(log) = log {
                log.finish(&response);
            }
            Ok(response)
        })
    }
}

pub fn router(state: ServerState) -> Front {
    let snaps = crate::snap::api::router(state.inner.snaps.clone());
    let app = Router::new()
        .route("/", get(page::home))
        .route("/airlock.gpg", get(key_binary))
        .route("/airlock.asc", get(key_armored))
        .route("/status.json", get(status))
        .fallback(published)
        .with_state(state.clone())
        .merge(snaps);
    Front { state, app }
}

async fn status(State(state): State<ServerState>) -> Json<crate::proxy::Status> {
    Json(state.proxy().status())
}

/// One listening socket, with a handle per core: each core runs its own single-threaded event
/// loop accepting from it, as nginx workers do: no work-stealing between threads on every
/// request. Not SO_REUSEPORT, which would let a second server bind the same port and take
/// half the connections.
#[derive(Debug)]
pub struct Listeners {
    sockets: Vec<std::net::TcpListener>,
    address: SocketAddr,
    tls: Option<TlsListeners>,
}

#[derive(Debug)]
struct TlsListeners {
    sockets: Vec<std::net::TcpListener>,
    address: SocketAddr,
    config: Arc<rustls::ServerConfig>,
}

impl Listeners {
    /// Binds `address` (port 0 picks a free port).
    pub fn bind(address: SocketAddr) -> Result<Listeners, ServerError> {
        let (sockets, address) = bind_per_core(address)?;
        Ok(Listeners {
            sockets,
            address,
            tls: None,
        })
    }

    /// Also serves HTTPS on `address` with this certificate.
    pub fn with_tls(
        mut self,
        address: SocketAddr,
        config: Arc<rustls::ServerConfig>,
    ) -> Result<Listeners, ServerError> {
        let (sockets, address) = bind_per_core(address)?;
        self.tls = Some(TlsListeners {
            sockets,
            address,
            config,
        });
        Ok(self)
    }

    /// The address bound, with the port the system chose when asked for port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The HTTPS address bound, if any.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|t| t.address)
    }
}

fn bind_per_core(
    address: SocketAddr,
) -> Result<(Vec<std::net::TcpListener>, SocketAddr), ServerError> {
    let bind_err = |source| ServerError::Bind { address, source };
    let socket = std::net::TcpListener::bind(address).map_err(bind_err)?;
    socket.set_nonblocking(true).map_err(bind_err)?;
    let address = socket.local_addr().map_err(bind_err)?;
    let count = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut sockets = Vec::with_capacity(count);
    for _ in 1..count {
        sockets.push(socket.try_clone().map_err(bind_err)?);
    }
    sockets.push(socket);
    Ok((sockets, address))
}

/// Serves until `shutdown` resolves, then lets requests in flight finish for up to `drain`.
/// Blocks the calling thread; runs one event loop per listener.
pub fn serve(
    listeners: Listeners,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> Result<(), ServerError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (tls_sockets, tls_config) = match listeners.tls {
        Some(tls) => (
            tls.sockets.into_iter().map(Some).collect(),
            Some(tls.config),
        ),
        None => (Vec::new(), None),
    };
    let mut tls_sockets: Vec<Option<std::net::TcpListener>> = tls_sockets;
    tls_sockets.resize_with(listeners.sockets.len(), || None);
    let loads = balance::Loads::new(listeners.sockets.len());
    let tls_loads = balance::Loads::new(listeners.sockets.len());
    let workers: Vec<_> = listeners
        .sockets
        .into_iter()
        .zip(tls_sockets)
        .enumerate()
        .map(|(i, (socket, tls_socket))| {
            let (state, mut stopped) = (state.clone(), stopped.clone());
            let (tls_config, loads, tls_loads) = (tls_config.clone(), loads.clone(), tls_loads.clone());
            std::thread::Builder::new()
                .name(format!("airlock-http-{i}"))
                .spawn(move || -> Result<(), ServerError> {
                    let runtime = single_threaded()?;
                    runtime.block_on(async move {
                        let balanced = |socket, loads| -> Result<_, ServerError> {
                            let listener = TcpListener::from_std(socket).map_err(ServerError::Serve)?;
                            Ok(balance::BalancedListener::new(listener, i, loads))
                        };
                        let https = match (tls_socket, tls_config) {
                            (Some(socket), Some(config)) => {
                                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                                Some(connections::serve(balanced(socket, tls_loads)?, Some(acceptor), router(state.clone()), stopped.clone()))
                            }
                            _ => None,
                        };
                        let http = connections::serve(balanced(socket, loads)?, None, router(state), stopped.clone());
                        // Both drain before the loop stops: an HTTPS download is a request in
                        // flight like any other.
                        let server = async move {
                            match https {
                                Some(https) => {
                                    tokio::join!(http, https);
                                }
                                None => http.await,
                            }
                        };
                        tokio::select! {
                            () = server => Ok(()),
                            _ = async { let _ = stopped.wait_for(|s| *s).await; tokio::time::sleep(drain).await } => {
                                tracing::warn!("requests still running after {}s; stopping anyway", drain.as_secs());
                                Ok(())
                            }
                        }
                    })
                })
                .map_err(ServerError::Serve)
        })
        .collect::<Result<_, _>>()?;
    single_threaded()?.block_on(shutdown);
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    let _ = stop.send(true);
    for worker in workers {
        worker
            .join()
            .map_err(|_| ServerError::Serve(std::io::Error::other("a server thread panicked")))??;
    }
    Ok(())
}

fn single_threaded() -> Result<tokio::runtime::Runtime, ServerError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServerError::Serve)
}

/// One line per request, like a web server's access log; nothing is gathered when the log
/// level leaves it out (`--quiet`).
struct AccessLog {
    started: Instant,
    method: Method,
    uri: axum::http::Uri,
    version: axum::http::Version,
    peer: Option<SocketAddr>,
}

impl AccessLog {
    fn start(request: &Request) -> Option<AccessLog> {
        if !tracing::enabled!(target: "airlock::access", tracing::Level::INFO) {
            return None;
        }
        Some(AccessLog {
            started: Instant::now(),
            method: request.method().clone(),
            uri: request.uri().clone(),
            version: request.version(),
            peer: request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        })
    }

    fn finish(self, response: &Response) {
        let AccessLog {
            started,
            method,
            uri,
            version,
            peer,
        } = self;
        let peer = peer.map_or("-".to_string(), |p| p.ip().to_string());
        let length = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info!(
            target: "airlock::access",
            "{peer} \"{method} {uri} {version:?}\" {} {length} {:.1}ms",
            response.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
}

async fn key_binary(State(state): State<ServerState>) -> Response {
    key_response(state.inner.key_binary.clone())
}

async fn key_armored(State(state): State<ServerState>) -> Response {
    key_response(state.inner.key_armored.clone())
}

fn key_response(bytes: Bytes) -> Response {
    let length = HeaderValue::from(bytes.len());
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pgp-keys"),
    );
    headers.insert(header::CONTENT_LENGTH, length);
    response
}

/// Everything below an area: files, folder listings, redirects for folders without a slash.
async fn published(State(state): State<ServerState>, request: Request) -> Response {
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        let mut response = (
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are served here\n",
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let raw_path = request.uri().path();
    // What the client asked for, for redirects it will follow under the same name.
    let client_path = request
        .extensions()
        .get::<Routed>()
        .map_or(raw_path, |r| r.original_path.as_str());
    let Some(segments) = safe_segments(raw_path) else {
        return (StatusCode::BAD_REQUEST, "invalid path\n").into_response();
    };
    if !segments
        .first()
        .is_some_and(|area| AREAS.contains(&area.as_str()))
    {
        return not_found(raw_path);
    }
    let path = segments
        .iter()
        .fold(state.inner.public_dir.clone(), |p, s| p.join(s));
    match files::open(path.clone(), &state.inner.small_files).await {
        Ok(files::Found::File(reply)) => reply.respond(&method, request.headers()).await,
        Ok(files::Found::Directory) if raw_path.ends_with('/') => {
            page::listing(&path, client_path, &method).await
        }
        Ok(files::Found::Directory) => {
            Redirect::permanent(&format!("{client_path}/")).into_response()
        }
        Ok(files::Found::Missing) => not_found(client_path),
        Err(e) => {
            tracing::error!("cannot read {}: {e}", path.display());
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file\n").into_response()
        }
    }
}

fn not_found(path: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("{path} is not published here\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
