//! `airlock serve`: one HTTP server for everything published.
//!
//! - `/apt/REPO/...`: published apt trees (`data/public/apt/REPO`, a symlink switched by each
//!   publish; every request resolves it afresh);
//! - `/airlock.gpg`, `/airlock.asc`: the site's public key;
//! - `/v2/...`, `/api/v1/...`: the snap store API ([`crate::snap::api`]);
//! - `/status.json` and `/metrics`: the site's status ([`crate::status`]) as JSON and in the
//!   Prometheus format;
//! - requests for upstream names (`Host: archive.ubuntu.com` or an absolute URL) go through
//!   [`crate::proxy`] first, which maps them onto the published trees;
//! - `/`: the status page (healthy or what to do, every content, how clients use it); folders
//!   get a plain listing.
//!
//! [`router`] is separate from [`serve`] so tests can call it in-process.

mod balance;
pub mod bucket;
mod connections;
mod limits;
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
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use limits::{Limits, raise_open_files_limit, somaxconn};

use crate::status::{Area, Counters, Saver, StatusSource};

use crate::hint::Hint;
use crate::http::Json;
use crate::http::files::{self, safe_segments};
use crate::openpgp::SiteKey;
use crate::proxy::{Proxied, Proxy, Routed};
use crate::site::Site;
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
    fingerprint: String,
    key_binary: Bytes,
    key_armored: Bytes,
    small_files: files::SmallFiles,
    snaps: StoreApi,
    proxy: Proxy,
    counters: Arc<Counters>,
    status: StatusSource,
}

/// How often the counters are written to the data folder while they change.
const COUNTERS_SAVED_EVERY: Duration = Duration::from_secs(5);

impl ServerState {
    /// Serves `site`'s data folder; counts with `counters` (the same across reloads: see
    /// [`Counters::load`]).
    pub fn new(
        site: &Site,
        public_url: &str,
        key: &SiteKey,
        counters: Arc<Counters>,
    ) -> ServerState {
        let data_dir = site.data_dir();
        ServerState {
            inner: Arc::new(Inner {
                public_dir: data_dir.join("public"),
                fingerprint: key.fingerprint(),
                key_binary: Bytes::from(key.public_binary()),
                key_armored: Bytes::from(key.public_armored()),
                small_files: files::SmallFiles::default(),
                snaps: StoreApi::new(data_dir, public_url),
                proxy: Proxy::default(),
                status: StatusSource::server(site.clone(), counters.clone(), public_url),
                counters,
            }),
        }
    }

    /// What the server counts.
    pub fn counters(&self) -> Arc<Counters> {
        self.inner.counters.clone()
    }

    /// The site's status now (reads the data folder when something changed there).
    async fn status(&self) -> crate::status::SiteStatus {
        let state = self.clone();
        match tokio::task::spawn_blocking(move || state.inner.status.status()).await {
            Ok(status) => status,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Answers for upstream names too, as `proxy` routes them.
    pub fn with_proxy(mut self, proxy: Proxy) -> ServerState {
        Arc::get_mut(&mut self.inner)
            .expect("configured before serving")
            .proxy = proxy;
        self
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
    routing: Routing,
    counters: Arc<Counters>,
    app: Router,
}

/// Where the upstream names are mapped from.
#[derive(Clone)]
enum Routing {
    /// A data folder's server: its proxy (and pull-through).
    Site(ServerState),
    /// A frontend: the routes of the push it serves.
    Frontend(Arc<bucket::Routes>),
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
        let (routing, app) = (self.routing.clone(), self.app.clone());
        let counters = self.counters.clone();
        Box::pin(async move {
            let log = AccessLog::start(&request);
            let head = request.method() == Method::HEAD;
            let area = Area::of_path(request.uri().path());
            let mut response = match (host_refusal(&request), &routing) {
                (Some(refusal), _) => refusal,
                (None, Routing::Site(state)) => {
                    crate::proxy::route_request(&state.inner.proxy, request, app).await
                }
                (None, Routing::Frontend(routes)) => {
                    let proxy = routes.proxy();
                    crate::proxy::route_request(&proxy, request, app).await
                }
            };
            let area = match response.extensions().get::<Proxied>() {
                Some(_) => Area::Proxy,
                None => area,
            };
            let bytes = if head { 0 } else { body_length(&response) };
            counters.request(area, response.status().as_u16(), bytes);
            if head {
                without_body(&mut response);
            }
            if let Some(log) = log {
                log.finish(&response);
            }
            Ok(response)
        })
    }
}

/// HTTP/1.1 requires exactly one Host (RFC 9112, 3.2): without it the upstream name a
/// request is for is unknown, and with two a proxy in front and airlock could each act on a
/// different one.
fn host_refusal(request: &Request) -> Option<Response> {
    let hosts = request.headers().get_all(header::HOST).iter().count();
    let needed = request.version() == axum::http::Version::HTTP_11;
    if hosts > 1 || (needed && hosts == 0) {
        let message = if hosts > 1 {
            "a request names one Host\n"
        } else {
            "HTTP/1.1 requests need a Host header\n"
        };
        return Some((StatusCode::BAD_REQUEST, message).into_response());
    }
    None
}

/// The body's length as announced (Content-Length, or a body of known size); 0 when it is
/// streamed without one.
fn body_length(response: &Response) -> u64 {
    use axum::body::HttpBody as _;
    response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .or_else(|| response.body().size_hint().exact())
        .unwrap_or(0)
}

/// HEAD answers with the headers GET would have, Content-Length included, whichever handler
/// made the response.
fn without_body(response: &mut Response) {
    use axum::body::HttpBody as _;
    if !response.headers().contains_key(header::CONTENT_LENGTH)
        && let Some(length) = response.body().size_hint().exact()
    {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    *response.body_mut() = Body::empty();
}

pub fn router(state: ServerState) -> Front {
    let snaps = crate::snap::api::router(state.inner.snaps.clone());
    let app = Router::new()
        .route("/", get(page::home))
        .route("/airlock.gpg", get(key_binary))
        .route("/airlock.asc", get(key_armored))
        .route("/status.json", get(status))
        .route("/metrics", get(metrics))
        .fallback(published)
        .with_state(state.clone())
        .merge(snaps);
    Front {
        counters: state.counters(),
        routing: Routing::Site(state),
        app,
    }
}

async fn status(State(state): State<ServerState>) -> Json<crate::status::SiteStatus> {
    Json(state.status().await)
}

async fn metrics(State(state): State<ServerState>) -> Response {
    metrics_response(crate::status::metrics::render(&state.status().await))
}

/// `/metrics` answered: never cached.
fn metrics_response(text: String) -> Response {
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::status::metrics::CONTENT_TYPE),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What the server listens on: HTTP, and HTTPS with its certificate. Each core runs its own
/// single-threaded event loop accepting from the same sockets, as nginx workers do: no
/// work-stealing between threads on every request. Not SO_REUSEPORT, which would let a second
/// server bind the same port and take half the connections.
#[derive(Debug, Clone)]
pub struct Listeners {
    http: Listening,
    tls: Option<(Listening, Arc<rustls::ServerConfig>)>,
    backlog: u32,
}

#[derive(Debug, Clone)]
struct Listening {
    /// As configured: a reload that asks for the same address keeps the socket.
    requested: SocketAddr,
    address: SocketAddr,
    socket: Arc<std::net::TcpListener>,
}

impl Listening {
    fn bind(requested: SocketAddr, backlog: u32) -> Result<Listening, ServerError> {
        let bind_err = |source| ServerError::Bind {
            address: requested,
            source,
        };
        let socket = limits::bind(requested, backlog).map_err(bind_err)?;
        let address = socket.local_addr().map_err(bind_err)?;
        Ok(Listening {
            requested,
            address,
            socket: Arc::new(socket),
        })
    }

    /// The same socket when `requested` did not change, else a new one.
    fn rebind(
        old: Option<&Listening>,
        requested: SocketAddr,
        backlog: u32,
    ) -> Result<Listening, ServerError> {
        match old.filter(|l| l.requested == requested) {
            Some(same) => Ok(same.clone()),
            None => Listening::bind(requested, backlog),
        }
    }
}

impl Listeners {
    /// Binds `address` (port 0 picks a free port) with room for `backlog` connections not yet
    /// accepted.
    pub fn bind(address: SocketAddr, backlog: u32) -> Result<Listeners, ServerError> {
        Ok(Listeners {
            http: Listening::bind(address, backlog)?,
            tls: None,
            backlog,
        })
    }

    /// Also serves HTTPS on `address` with this certificate.
    pub fn with_tls(
        mut self,
        address: SocketAddr,
        config: Arc<rustls::ServerConfig>,
    ) -> Result<Listeners, ServerError> {
        self.tls = Some((Listening::bind(address, self.backlog)?, config));
        Ok(self)
    }

    /// The address bound, with the port the system chose when asked for port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.http.address
    }

    /// The HTTPS address bound, if any.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|(t, _)| t.address)
    }
}

/// The sockets the loops accept from, until a reload replaces them.
struct Generation {
    accepting: Vec<Accepting>,
}

struct Accepting {
    socket: Arc<std::net::TcpListener>,
    loads: balance::Loads,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Generation {
    fn new(listeners: &Listeners, loops: usize) -> Generation {
        let accepting = std::iter::once((&listeners.http, None))
            .chain(
                listeners
                    .tls
                    .as_ref()
                    .map(|(l, config)| (l, Some(config.clone()))),
            )
            .map(|(listening, tls)| Accepting {
                socket: listening.socket.clone(),
                loads: balance::Loads::new(loops),
                tls,
            })
            .collect();
        Generation { accepting }
    }
}

/// The running server's side that a reload uses: new sockets, a new [`ServerState`].
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

struct Shared {
    listeners: std::sync::Mutex<Listeners>,
    generations: tokio::sync::watch::Sender<Arc<Generation>>,
    app: connections::App,
    loops: usize,
}

impl Handle {
    /// Binds what a new configuration asks for, keeping the sockets of addresses that did not
    /// change; nothing changes for clients until [`Handle::switch`].
    pub fn bind(
        &self,
        http: SocketAddr,
        tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
    ) -> Result<Listeners, ServerError> {
        let current = self.current();
        let backlog = current.backlog;
        let old_tls = current.tls.as_ref().map(|(l, _)| l);
        Ok(Listeners {
            http: Listening::rebind(Some(&current.http), http, backlog)?,
            tls: match tls {
                Some((address, config)) => {
                    Some((Listening::rebind(old_tls, address, backlog)?, config))
                }
                None => None,
            },
            backlog,
        })
    }

    /// Answers new requests with `state` (on connections already open too, from their next
    /// request) and accepts on `listeners` only; sockets no longer listed are closed once the
    /// loops stop accepting from them. Connections and downloads in flight go on.
    pub fn switch(&self, listeners: Listeners, state: ServerState) {
        connections::replace(&self.shared.app, router(state));
        let generation = Generation::new(&listeners, self.shared.loops);
        *self
            .shared
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = listeners;
        self.shared.generations.send_replace(Arc::new(generation));
    }

    fn current(&self) -> Listeners {
        self.shared
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Serves until the future `control` makes from the server's [`Handle`] resolves, then lets
/// requests in flight finish for up to `drain`. Blocks the calling thread; runs one event loop
/// per core.
pub fn serve<F, C>(
    listeners: Listeners,
    state: ServerState,
    limits: Limits,
    control: C,
    drain: Duration,
) -> Result<(), ServerError>
where
    C: FnOnce(Handle) -> F,
    F: Future<Output = ()>,
{
    // Written every few seconds, and once more when serving ends (the saver dropped last).
    let _saver = Saver::start(state.counters(), COUNTERS_SAVED_EVERY);
    serve_front(listeners, router(state), limits, control, drain)
}

/// [`serve`] for any [`Front`] (a frontend's: [`bucket::front`]).
pub fn serve_front<F, C>(
    listeners: Listeners,
    front: Front,
    limits: Limits,
    control: C,
    drain: Duration,
) -> Result<(), ServerError>
where
    C: FnOnce(Handle) -> F,
    F: Future<Output = ()>,
{
    let loops = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (generations, _) =
        tokio::sync::watch::channel(Arc::new(Generation::new(&listeners, loops)));
    let handle = Handle {
        shared: Arc::new(Shared {
            listeners: std::sync::Mutex::new(listeners),
            generations,
            app: connections::app(front),
            loops,
        }),
    };
    // `control` runs in this runtime's context: signal handlers it sets up belong to it.
    let control_loop = single_threaded()?;
    let control = {
        let _context = control_loop.enter();
        control(handle.clone())
    };
    let counted = limits::Connections::new(limits.max_connections);
    let workers: Vec<_> = (0..loops)
        .map(|index| {
            let mut stopped = stopped.clone();
            let generations = handle.shared.generations.subscribe();
            let (app, counted) = (handle.shared.app.clone(), counted.clone());
            std::thread::Builder::new()
                .name(format!("airlock-http-{index}"))
                .spawn(move || -> Result<(), ServerError> {
                    let runtime = single_threaded()?;
                    runtime.block_on(async move {
                        let work = Worker { index, app, counted, write_timeout: limits.write_timeout, stop: stopped.clone() };
                        // HTTPS drains with HTTP before the loop stops: an HTTPS download is a
                        // request in flight like any other.
                        tokio::select! {
                            () = work.run(generations) => Ok(()),
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
    control_loop.block_on(control);
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    let _ = stop.send(true);
    for worker in workers {
        worker
            .join()
            .map_err(|_| ServerError::Serve(std::io::Error::other("a server thread panicked")))??;
    }
    Ok(())
}

/// One core's event loop.
struct Worker {
    index: usize,
    app: connections::App,
    counted: limits::Connections,
    write_timeout: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Worker {
    /// Accepts from each generation of sockets until the next replaces it, then waits for
    /// every connection to end (the stop signal ends them gracefully).
    async fn run(self, mut generations: tokio::sync::watch::Receiver<Arc<Generation>>) {
        let tasks = TaskTracker::new();
        let mut stop = self.stop.clone();
        loop {
            let generation = generations.borrow_and_update().clone();
            let retire = CancellationToken::new();
            for accepting in &generation.accepting {
                match self.listener(accepting) {
                    Ok(listener) => {
                        let acceptor = accepting.tls.clone().map(tokio_rustls::TlsAcceptor::from);
                        tasks.spawn(connections::serve(
                            listener,
                            acceptor,
                            self.app.clone(),
                            self.stop.clone(),
                            retire.clone(),
                        ));
                    }
                    Err(e) => {
                        tracing::error!("event loop {} cannot accept on a socket: {e}", self.index)
                    }
                }
            }
            tokio::select! {
                changed = generations.changed() => {
                    retire.cancel();
                    if changed.is_err() {
                        break;
                    }
                }
                () = connections::stopped(&mut stop) => break,
            }
        }
        tasks.close();
        tasks.wait().await;
    }

    fn listener(&self, accepting: &Accepting) -> std::io::Result<balance::BalancedListener> {
        let socket = accepting.socket.try_clone()?;
        Ok(balance::BalancedListener::new(
            TcpListener::from_std(socket)?,
            self.index,
            accepting.loads.clone(),
            self.counted.clone(),
            self.write_timeout,
        ))
    }
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
        return crate::http::files::only_get_and_head();
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
            page::listing(&path, client_path).await
        }
        // From the path as the client named it, but never starting with `//`: a browser reads
        // `//apt/` as the host `apt`.
        Ok(files::Found::Directory) => {
            Redirect::permanent(&format!("{}/", collapse_slashes(client_path))).into_response()
        }
        Ok(files::Found::Missing) => not_found(client_path),
        Err(e) => {
            tracing::error!("cannot read {}: {e}", path.display());
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file\n").into_response()
        }
    }
}

fn collapse_slashes(path: &str) -> String {
    let mut collapsed = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && collapsed.ends_with('/')) {
            collapsed.push(c);
        }
    }
    collapsed
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
