//! `CONNECT host:port`: refused unless `[proxy] passthrough` lists the target, then a plain
//! byte tunnel (HTTPS cannot be checked or cached, only passed on).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{Proxy, normalize_host};
use crate::http::QuickAck;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn handle(proxy: &Proxy, request: Request) -> Response {
    let Some(authority) = request.uri().authority() else {
        return (
            StatusCode::BAD_REQUEST,
            "CONNECT needs a host:port target\n",
        )
            .into_response();
    };
    let target = format!(
        "{}:{}",
        normalize_host(authority.host()),
        authority.port_u16().unwrap_or(443)
    );
    if !proxy.passthrough.contains(&target) {
        tracing::warn!("refused CONNECT {target}: not in [proxy] passthrough");
        return (
            StatusCode::FORBIDDEN,
            format!(
                "CONNECT {target} refused: airlock is not an open proxy; list it in [proxy] passthrough to let clients reach it\n"
            ),
        )
            .into_response();
    }
    let upstream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&target)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return bad_gateway(&target, &e.to_string()),
        Err(_) => {
            let why = format!("no answer within {} s", CONNECT_TIMEOUT.as_secs());
            return bad_gateway(&target, &why);
        }
    };
    let idle = proxy.tunnel_idle;
    if let Some(quick_ack) = request.extensions().get::<QuickAck>() {
        quick_ack.off();
    }
    tokio::spawn(async move {
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => {
                if let Err(e) = tunnel(TokioIo::new(upgraded), upstream, idle).await {
                    tracing::debug!("tunnel to {target} ended: {e}");
                }
            }
            Err(e) => tracing::debug!("CONNECT {target}: the client did not switch: {e}"),
        }
    });
    StatusCode::OK.into_response()
}

/// Bytes both ways until both sides have closed, or until none moved for `idle`: a client
/// that went away without closing would otherwise hold its upstream connection forever.
async fn tunnel(
    client: impl AsyncRead + AsyncWrite + Unpin,
    upstream: TcpStream,
    idle: Duration,
) -> io::Result<()> {
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let mut client = Active::new(client, &last, started);
    let mut upstream = Active::new(upstream, &last, started);
    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => copied.map(drop),
        () = stalled(&last, started, idle) => Err(io::Error::new(io::ErrorKind::TimedOut, "idle")),
    }
}

/// Returns once nothing was read or written for `idle`.
async fn stalled(last: &AtomicU64, started: Instant, idle: Duration) {
    loop {
        let quiet = started
            .elapsed()
            .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
        if quiet >= idle {
            return;
        }
        tokio::time::sleep(idle - quiet).await;
    }
}

/// A stream that notes when bytes last moved through it, either way.
struct Active<S> {
    inner: S,
    last: Arc<AtomicU64>,
    started: Instant,
}

impl<S> Active<S> {
    fn new(inner: S, last: &Arc<AtomicU64>, started: Instant) -> Active<S> {
        Active {
            inner,
            last: last.clone(),
            started,
        }
    }

    fn moved(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last.store(now, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Active<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.moved();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Active<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn bad_gateway(target: &str, why: &str) -> Response {
    (
        StatusCode::BAD_GATEWAY,
        format!("cannot connect to {target}: {why}\n"),
    )
        .into_response()
}
