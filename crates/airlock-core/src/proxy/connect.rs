//! `CONNECT host:port`: refused unless `[proxy] passthrough` lists the target, then a plain
//! byte tunnel (HTTPS cannot be checked or cached, only passed on).

use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;

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
    let upstream = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect(&target),
    )
    .await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return bad_gateway(&target, &e.to_string()),
        Err(_) => {
            let why = format!("no answer within {} s", CONNECT_TIMEOUT.as_secs());
            return bad_gateway(&target, &why);
        }
    };
    tokio::spawn(async move {
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => {
                let mut client = TokioIo::new(upgraded);
                let mut upstream = upstream;
                if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    tracing::debug!("tunnel to {target} ended: {e}");
                }
            }
            Err(e) => tracing::debug!("CONNECT {target}: the client did not switch: {e}"),
        }
    });
    StatusCode::OK.into_response()
}

fn bad_gateway(target: &str, why: &str) -> Response {
    (
        StatusCode::BAD_GATEWAY,
        format!("cannot connect to {target}: {why}\n"),
    )
        .into_response()
}
