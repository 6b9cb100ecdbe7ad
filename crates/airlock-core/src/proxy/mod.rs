//! Answering for upstream host names: `GET /ubuntu/...` with `Host: archive.ubuntu.com`
//! (transparent: DNS points the name here) or `GET http://archive.ubuntu.com/ubuntu/...`
//! (clients with `Acquire::http::Proxy`) is served from the published tree the name is routed
//! to. Nothing else is ever fetched on a client's behalf: an absolute URL for a host that is
//! not routed is refused, as is `CONNECT` to anything not listed for passthrough.

mod connect;
mod pull;

pub use pull::{PullError, PullThrough};

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

use crate::config::{ProxyConfig, Route};
use crate::http::Https;
use crate::status::{Counters, RouteCounters};

/// The routes with their counters; one per server, shared by every worker.
#[derive(Debug, Default)]
pub struct Proxy {
    routes: Vec<RouteState>,
    counters: Arc<Counters>,
    /// Names of this server itself: absolute URLs for them are ordinary requests.
    own_hosts: Vec<String>,
    passthrough: Vec<String>,
    tunnel_idle: std::time::Duration,
    pull: Option<Arc<PullThrough>>,
}

#[derive(Debug)]
struct RouteState {
    route: Route,
    counters: Arc<RouteCounters>,
}

/// Set on a request that came in under an upstream name: the path the client asked for,
/// which redirects and listings must use rather than the tree's own path.
#[derive(Clone, Debug)]
pub struct Routed {
    pub original_path: String,
}

/// Marks a response the proxy answered (a routed name, or a refusal): counted as the
/// proxy's, not as the area of the path it was served from.
#[derive(Clone, Copy, Debug)]
pub struct Proxied;

impl Proxy {
    /// Counts with `counters` (kept across restarts: each route's by its host and path).
    pub fn new(config: &ProxyConfig, own_hosts: &[String], counters: Arc<Counters>) -> Proxy {
        Proxy {
            routes: config
                .routes
                .iter()
                .map(|route| RouteState {
                    route: route.clone(),
                    counters: counters.route(&route.host, &route.path),
                })
                .collect(),
            counters,
            own_hosts: own_hosts.iter().map(|h| normalize_host(h)).collect(),
            passthrough: config.passthrough.clone(),
            tunnel_idle: config.tunnel_idle,
            pull: None,
        }
    }

    /// Misses are fetched from the upstreams (a gateway with access to them).
    pub fn pulling(mut self, pull: PullThrough) -> Proxy {
        self.pull = Some(Arc::new(pull));
        self
    }

    /// The route for `host` whose path is the longest prefix of `path`, and the path in the
    /// published tree.
    fn lookup(&self, host: &str, path: &str) -> Option<(usize, String)> {
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.route.host == host)
            .filter_map(|(i, r)| {
                let rest = path.strip_prefix(r.route.path.as_str())?;
                (rest.is_empty() || rest.starts_with('/')).then_some((i, r.route.path.len(), rest))
            })
            .max_by_key(|(_, len, _)| *len)
            .map(|(i, _, rest)| (i, format!("{}{rest}", self.routes[i].route.to)))
    }

    fn routes_for(&self, host: &str) -> Vec<String> {
        self.routes
            .iter()
            .filter(|r| r.route.host == host)
            .map(|r| format!("{}/ -> {}/", r.route.path, r.route.to))
            .collect()
    }

    fn is_own(&self, host: &str) -> bool {
        host == "localhost"
            || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok()
            || self.own_hosts.iter().any(|h| h == host)
    }

    /// Counts an answer: a hit (pulled files included), or a miss remembered by path.
    fn record(&self, index: usize, status: StatusCode, path: &str) {
        let counters = &self.routes[index].counters;
        if status == StatusCode::NOT_FOUND {
            counters.miss(path);
        } else if status.is_success() || status.is_redirection() {
            counters.hits.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a request refused because this is not an open proxy.
    fn refused(&self) {
        self.counters.proxy_refused.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs before `app` routes: maps upstream names onto published trees, refuses what would
/// make this an open proxy, and passes everything else through unchanged.
pub async fn route_request(proxy: &Proxy, mut request: Request, app: Router) -> Response {
    if request.method() == Method::CONNECT {
        let mut response = if request.extensions().get::<Https>().is_some() {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                "CONNECT is answered on the plain HTTP port only\n",
            )
                .into_response()
        } else {
            connect::handle(proxy, request).await
        };
        if response.status().is_client_error() {
            proxy.refused();
        }
        response.extensions_mut().insert(Proxied);
        return response;
    }
    let absolute = request.uri().authority().is_some();
    // Most requests name this server itself: no route can match them.
    if proxy.routes.is_empty() && !absolute {
        return run(app, request).await;
    }
    let Some(host) = request_host(request.uri(), request.headers()) else {
        return run(app, request).await;
    };
    let Some((index, tree_path)) = proxy.lookup(&host, request.uri().path()) else {
        let path = request.uri().path();
        let host_routes = proxy.routes_for(&host);
        if !host_routes.is_empty() {
            let message = format!(
                "http://{host}{path} is not routed here; routes for {host}: {}\n",
                host_routes.join(", ")
            );
            let mut response = (StatusCode::NOT_FOUND, message).into_response();
            response.extensions_mut().insert(Proxied);
            return response;
        }
        if absolute && !proxy.is_own(&host) {
            tracing::warn!("refused a proxy request for http://{host}{path}: not routed");
            proxy.refused();
            let message = format!(
                "{host} is not routed here: airlock answers only for the hosts of its mirrors and [[proxy.route]]s, it is not an open proxy\n"
            );
            let mut response = (StatusCode::FORBIDDEN, message).into_response();
            response.extensions_mut().insert(Proxied);
            return response;
        }
        return run(app, request).await;
    };
    let path = request.uri().path().to_string();
    let uri = match request.uri().query() {
        Some(query) => format!("{tree_path}?{query}"),
        None => tree_path,
    };
    let Ok(uri) = uri.parse::<Uri>() else {
        return (StatusCode::BAD_REQUEST, "invalid path\n").into_response();
    };
    *request.uri_mut() = uri;
    request.extensions_mut().insert(Routed {
        original_path: path.clone(),
    });
    let pull = proxy.pull.as_ref().filter(|p| p.serves(index));
    let asked = pull.map(|_| (request.method().clone(), request.headers().clone()));
    let mut response = run(app, request).await;
    if let (Some(pull), Some((method, headers))) = (pull, asked)
        && response.status() == StatusCode::NOT_FOUND
        && (method == Method::GET || method == Method::HEAD)
    {
        let rest = &path[proxy.routes[index].route.path.len()..];
        response = pull.respond(index, rest, &method, &headers).await;
        let counters = &proxy.routes[index].counters;
        if response.status().is_success() {
            counters.pulled.fetch_add(1, Ordering::Relaxed);
        } else if !response.status().is_redirection() {
            counters.pull_refused.fetch_add(1, Ordering::Relaxed);
        }
    }
    proxy.record(index, response.status(), &path);
    response.extensions_mut().insert(Proxied);
    response
}

async fn run(app: Router, request: Request) -> Response {
    match app.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The host a request is for: an absolute-form target's authority wins over `Host`.
fn request_host(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    if let Some(host) = uri.host() {
        return Some(normalize_host(host));
    }
    let value = headers.get(header::HOST)?.to_str().ok()?;
    let host = match value.strip_prefix('[') {
        // [v6]:port keeps its brackets, as url_host writes it.
        Some(rest) => format!("[{}]", rest.split(']').next()?),
        None => value.split(':').next()?.to_string(),
    };
    Some(normalize_host(&host))
}

fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: &str, path: &str, to: &str) -> Route {
        Route {
            host: host.into(),
            path: path.into(),
            to: to.into(),
            upstream: format!("http://{host}{path}/"),
            derived_from: None,
        }
    }

    fn proxy() -> Proxy {
        Proxy::new(
            &ProxyConfig {
                routes: vec![
                    route("archive.ubuntu.com", "/ubuntu", "/apt/ubuntu"),
                    route("archive.ubuntu.com", "/ubuntu/extra", "/apt/extra"),
                    route("images.maas.io", "/ephemeral-v3/stable", "/images"),
                    route("whole.example", "", "/apt/whole"),
                ],
                ..ProxyConfig::default()
            },
            &["airlock.example".to_string()],
            Arc::new(Counters::default()),
        )
    }

    #[test]
    fn longest_prefix_on_segment_boundaries() {
        let p = proxy();
        let at = |host: &str, path: &str| p.lookup(host, path).map(|(_, p)| p);
        assert_eq!(
            at("archive.ubuntu.com", "/ubuntu/dists/noble/InRelease").as_deref(),
            Some("/apt/ubuntu/dists/noble/InRelease")
        );
        assert_eq!(
            at("archive.ubuntu.com", "/ubuntu/extra/pool/x.deb").as_deref(),
            Some("/apt/extra/pool/x.deb")
        );
        assert_eq!(
            at("archive.ubuntu.com", "/ubuntu").as_deref(),
            Some("/apt/ubuntu")
        );
        assert_eq!(at("archive.ubuntu.com", "/ubuntu-ports/dists"), None);
        assert_eq!(at("security.ubuntu.com", "/ubuntu/dists"), None);
        assert_eq!(
            at(
                "images.maas.io",
                "/ephemeral-v3/stable/streams/v1/index.sjson"
            )
            .as_deref(),
            Some("/images/streams/v1/index.sjson")
        );
        assert_eq!(at("whole.example", "/x").as_deref(), Some("/apt/whole/x"));
    }

    #[test]
    fn host_from_absolute_target_or_header() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "Archive.Ubuntu.COM.:8080".parse().unwrap());
        let origin: Uri = "/ubuntu/x".parse().unwrap();
        assert_eq!(
            request_host(&origin, &headers).as_deref(),
            Some("archive.ubuntu.com")
        );
        let absolute: Uri = "http://images.maas.io/x".parse().unwrap();
        assert_eq!(
            request_host(&absolute, &headers).as_deref(),
            Some("images.maas.io")
        );
        headers.insert(header::HOST, "[::1]:8080".parse().unwrap());
        assert_eq!(request_host(&origin, &headers).as_deref(), Some("[::1]"));
    }

    #[test]
    fn own_names_and_addresses() {
        let p = proxy();
        for own in [
            "airlock.example",
            "localhost",
            "127.0.0.1",
            "[::1]",
            "10.1.2.3",
        ] {
            assert!(p.is_own(own), "{own}");
        }
        assert!(!p.is_own("example.com"));
    }

    #[test]
    fn counts_hits_and_misses_per_route() {
        let p = proxy();
        p.record(0, StatusCode::OK, "/ubuntu/a");
        p.record(0, StatusCode::NOT_MODIFIED, "/ubuntu/a");
        p.record(0, StatusCode::NOT_FOUND, "/ubuntu/missing");
        let status = p.counters.snapshot();
        let route = &status.routes["archive.ubuntu.com /ubuntu"];
        assert_eq!((route.hits, route.misses), (2, 1));
        assert_eq!(route.recent_misses, vec!["/ubuntu/missing".to_string()]);
    }
}
