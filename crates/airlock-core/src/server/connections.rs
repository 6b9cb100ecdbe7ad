//! Serving the accepted connections, plain and TLS alike: hyper's HTTP/1.1 (pipelining as apt
//! does it), a deadline for the request headers, `CONNECT` upgrades on plain connections, and
//! a graceful stop.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

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

/// Accepts until `stop` turns true, then waits for the connections in flight (the caller
/// bounds how long).
pub async fn serve(
    mut listener: BalancedListener,
    tls: Option<TlsAcceptor>,
    app: Front,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let connections = TaskTracker::new();
    loop {
        let (mut io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut stop) => break,
        };
        // Small responses must not wait for Nagle and delayed ACKs.
        let _ = io.set_nodelay(true);
        let https = tls.is_some();
        let quick_ack = (!https).then(|| io.ack_partial_requests());
        let service = app
            .clone()
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
        let service = hyper_util::service::TowerToHyperService::new(service);
        let (mut stop, tls) = (stop.clone(), tls.clone());
        connections.spawn(async move {
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
        });
    }
    connections.close();
    connections.wait().await;
}

async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard wait_for returns is not Send: drop it at once.
    let _ = stop.wait_for(|s| *s).await.is_ok();
}
