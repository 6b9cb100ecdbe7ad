//! Serving the accepted connections, plain and TLS alike: hyper's HTTP/1.1 (pipelining as apt
//! does it), a deadline for the request headers, `CONNECT` upgrades on plain connections, and
//! a graceful stop, connections closed to make room for new ones, and the routes swapped by
//! a reload between two requests.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::{Service, ServiceExt};

use super::Front;
use super::balance::BalancedListener;
use crate::http::Https;

/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Nor one that takes longer to send a request's headers (slowloris).
const HEADERS: Duration = Duration::from_secs(30);

/// Runs a connection; once `stop` turns true, lets the request in flight finish and closes.
/// A macro because plain (upgradeable) and TLS connections are different types with the same
/// method.
macro_rules! until_stopped {
    ($connection:expr, $stop:expr) => {{
        let mut connection = std::pin::pin!($connection);
        tokio::select! {
            result = connection.as_mut() => result,
            _ = stopped(&mut $stop) => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        }
    }};
}

/// The routes every connection answers with, replaced by a reload.
pub type App = Arc<RwLock<Front>>;

pub fn app(front: Front) -> App {
    Arc::new(RwLock::new(front))
}

pub fn replace(app: &App, front: Front) {
    *app.write().unwrap_or_else(|e| e.into_inner()) = front;
}

/// Accepts until `stop` turns true (then waits for the connections in flight; the caller
/// bounds how long) or `retire` is cancelled (a reload closed this socket: the connections go
/// on).
pub async fn serve(
    mut listener: BalancedListener,
    tls: Option<TlsAcceptor>,
    app: App,
    mut stop: tokio::sync::watch::Receiver<bool>,
    retire: CancellationToken,
) {
    let connections = TaskTracker::new();
    loop {
        let (mut io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut stop) => break,
            () = retire.cancelled() => break,
        };
        // TCP_NODELAY comes from the listening socket (limits::bind).
        let https = tls.is_some();
        let quick_ack = (!https).then(|| io.ack_partial_requests());
        let evicted = io.evicted();
        let app = app.clone();
        let service = tower::service_fn(move |request| {
            let mut front = app.read().unwrap_or_else(|e| e.into_inner()).clone();
            front.call(request)
        })
        .map_request(move |mut request: axum::http::Request<Incoming>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            if https {
                request.extensions_mut().insert(Https);
            }
            if let Some(quick_ack) = &quick_ack {
                request.extensions_mut().insert(quick_ack.clone());
            }
            request.map(Body::new)
        });
        let (stop, tls) = (stop.clone(), tls.clone());
        // Boxed: hyper's connection state is large, and spawning moves the future it is in.
        let connection = Box::pin(connection(io, peer, tls, service, stop));
        connections.spawn(async move {
            tokio::select! {
                () = connection => {}
                () = evicted.cancelled() => {
                    tracing::debug!("closed the connection with {peer} to make room");
                }
            }
        });
    }
    connections.close();
    connections.wait().await;
}

async fn connection<S>(
    io: super::balance::Counted,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    service: S,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    S: Service<
            axum::http::Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(service);
    // Not pipeline_flush: hyper 1.12 then drops the last response when it closes a
    // connection with more requests buffered (tried: a pipelined request after one
    // with Connection: close got no answer at all), and apt gained nothing from it.
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADERS);
    let result = match tls {
        None => {
            let connection = http
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            until_stopped!(connection, stop)
        }
        Some(acceptor) => {
            let stream = match tokio::time::timeout(HANDSHAKE, acceptor.accept(io)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!("TLS handshake with {peer} failed: {e}");
                    return;
                }
                Err(_) => return,
            };
            let connection = http.serve_connection(TokioIo::new(stream), service);
            until_stopped!(connection, stop)
        }
    };
    if let Err(e) = result {
        tracing::debug!("connection with {peer}: {e}");
    }
}

pub async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard wait_for returns is not Send: drop it at once.
    let _ = stop.wait_for(|s| *s).await.is_ok();
}
