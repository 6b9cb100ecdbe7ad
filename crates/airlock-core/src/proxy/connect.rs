//! `CONNECT host:port`: refused unless `[proxy] passthrough` lists the target, then a plain
//! byte tunnel (HTTPS cannot be checked or cached, only passed on).

use std::io;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::{Proxy, normalize_host};

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
    client: impl AsyncRead + AsyncWrite,
    upstream: TcpStream,
    idle: Duration,
) -> io::Result<()> {
    let (mut from_client, mut to_client) = tokio::io::split(client);
    let (mut from_upstream, mut to_upstream) = upstream.into_split();
    let (mut up, mut down) = (vec![0u8; 16 << 10], vec![0u8; 16 << 10]);
    let (mut client_open, mut upstream_open) = (true, true);
    let stalled = || io::Error::new(io::ErrorKind::TimedOut, "idle");
    while client_open || upstream_open {
        // A fresh timer each round: any byte either way starts the wait again.
        tokio::select! {
            read = from_client.read(&mut up), if client_open => match read? {
                0 => {
                    client_open = false;
                    to_upstream.shutdown().await?;
                }
                n => timeout(idle, to_upstream.write_all(&up[..n])).await.map_err(|_| stalled())??,
            },
            read = from_upstream.read(&mut down), if upstream_open => match read? {
                0 => {
                    upstream_open = false;
                    to_client.shutdown().await?;
                }
                n => timeout(idle, to_client.write_all(&down[..n])).await.map_err(|_| stalled())??,
            },
            () = tokio::time::sleep(idle) => return Err(stalled()),
        }
    }
    Ok(())
}

fn bad_gateway(target: &str, why: &str) -> Response {
    (
        StatusCode::BAD_GATEWAY,
        format!("cannot connect to {target}: {why}\n"),
    )
        .into_response()
}
