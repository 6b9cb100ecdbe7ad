//! `[proxy]` and `[dns]`: which upstream host names airlock answers for, and how.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use super::model::{AptMirrorConfig, ImagesConfig};
use super::raw::{RawDns, RawProxy};
use super::value::{Name, url_host};

/// Requests for upstream names (transparent or proxy-style) answered from published trees.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Configured routes first, then those derived from the mirrors.
    pub routes: Vec<Route>,
    /// Misses are fetched from the route's upstream, checked and stored (a connected gateway).
    pub pull_through: bool,
    /// `host:port` targets that `CONNECT` may reach; everything else is refused.
    pub passthrough: Vec<String>,
    /// A `CONNECT` tunnel where no byte moved either way for this long is closed.
    pub tunnel_idle: std::time::Duration,
}

impl Default for ProxyConfig {
    fn default() -> ProxyConfig {
        ProxyConfig {
            routes: Vec::new(),
            pull_through: false,
            passthrough: Vec::new(),
            tunnel_idle: TUNNEL_IDLE,
        }
    }
}

/// `http://HOST/PATH/...` is served from the published tree `TO/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Lower case, no port, no trailing dot.
    pub host: String,
    /// `/ubuntu` or empty for the whole host; never a trailing slash.
    pub path: String,
    /// The published tree as a URL path of this server: `/apt/NAME` or `/images`.
    pub to: String,
    /// Where a pull-through miss is fetched from; ends with `/`.
    pub upstream: String,
    /// The mirror this route was derived from, when it was not configured.
    pub derived_from: Option<String>,
}

/// The built-in DNS responder and the config snippets of `airlock dns config`.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// The responder runs (inside `airlock serve`) only when this is set.
    pub listen: Option<SocketAddr>,
    /// What the overridden names resolve to: this server's addresses.
    pub addresses: Vec<IpAddr>,
    /// `addresses` were set in `[dns]`, not guessed from public_url: the site overrides names.
    pub addresses_set: bool,
    /// Other names are forwarded there, for clients in `allow` only.
    pub upstream: Option<SocketAddr>,
    pub allow: Vec<ipnet::IpNet>,
    /// Names overridden besides the routed hosts.
    pub names: Vec<String>,
    pub ttl: u32,
    /// Queries per second per client address before answers are dropped.
    pub rate_limit: u32,
}

impl DnsConfig {
    /// The names DNS should point at the server that answers for `routes`: their hosts and
    /// `names`, sorted, each once.
    pub fn overridden_names(&self, routes: &[Route]) -> Vec<String> {
        let mut names: Vec<String> = routes.iter().map(|r| r.host.clone()).collect();
        names.extend(self.names.iter().cloned());
        names.sort();
        names.dedup();
        names
    }
}

/// Long enough for an interactive session left alone a while, short enough that tunnels of
/// clients that went away do not pile up.
const TUNNEL_IDLE: std::time::Duration = std::time::Duration::from_secs(600);

/// What the published trees are called, to check a route's `to`.
pub(super) struct Trees<'a> {
    pub apt: &'a HashSet<Name>,
    pub mirrors: &'a [AptMirrorConfig],
    pub images: Option<&'a ImagesConfig>,
}

pub(super) fn proxy(
    raw: RawProxy,
    trees: &Trees,
    own_host: Option<&str>,
) -> Result<ProxyConfig, String> {
    let mut routes: Vec<Route> = Vec::new();
    for r in raw.route {
        let host = host_name(&r.host).map_err(|e| format!("[[proxy.route]] host: {e}"))?;
        let path = route_path(&r.path).map_err(|e| format!("[[proxy.route]] {host}: {e}"))?;
        let to =
            tree_path(&r.to, trees).map_err(|e| format!("[[proxy.route]] {host}{path}: {e}"))?;
        if routes.iter().any(|x| x.host == host && x.path == path) {
            return Err(format!("[[proxy.route]] {host}{path} is routed twice"));
        }
        let upstream = match r.upstream {
            Some(url) => {
                upstream_url(&url).map_err(|e| format!("[[proxy.route]] {host}{path}: {e}"))?
            }
            None => format!("http://{host}{path}/"),
        };
        routes.push(Route {
            host,
            path,
            to,
            upstream,
            derived_from: None,
        });
    }
    if raw.defaults {
        let mut derived = Vec::new();
        for mirror in trees.mirrors {
            derived.extend(routes_for(
                &mirror.url,
                &format!("/apt/{}", mirror.name),
                mirror.name.as_str(),
            ));
        }
        if let Some(images) = trees.images {
            derived.extend(routes_for(&images.url, "/images", "images"));
        }
        for route in derived {
            // An IP or this server's own name cannot be overridden by DNS, and routing it
            // would capture requests meant for airlock itself.
            let own = own_host.is_some_and(|h| h.eq_ignore_ascii_case(&route.host));
            let address = route
                .host
                .trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .is_ok();
            if own || route.host == "localhost" || address {
                continue;
            }
            if !routes
                .iter()
                .any(|x| x.host == route.host && x.path == route.path)
            {
                routes.push(route);
            }
        }
    }
    let mut passthrough = Vec::new();
    for target in raw.passthrough {
        let (host, port) = target
            .rsplit_once(':')
            .filter(|(_, p)| p.parse::<u16>().is_ok_and(|p| p > 0))
            .ok_or_else(|| format!("[proxy] passthrough {target:?} must be HOST:PORT"))?;
        passthrough.push(format!(
            "{}:{port}",
            host_name(host).map_err(|e| format!("[proxy] passthrough: {e}"))?
        ));
    }
    Ok(ProxyConfig {
        routes,
        pull_through: raw.upstream,
        passthrough,
        tunnel_idle: raw.tunnel_idle.map_or(TUNNEL_IDLE, |p| p.0),
    })
}

/// The route for a mirror's URL, plus the other names Ubuntu serves the same archive under
/// (country mirrors and security.ubuntu.com carry the same `ubuntu` tree).
fn routes_for(url: &str, to: &str, name: &str) -> Vec<Route> {
    let Some(host) = url_host(url).map(|h| h.to_ascii_lowercase()) else {
        return Vec::new();
    };
    let path = reqwest::Url::parse(url).map_or(String::new(), |u| {
        u.path().trim_end_matches('/').to_string()
    });
    let mut hosts = vec![host.clone()];
    if host == "archive.ubuntu.com"
        || host.ends_with(".archive.ubuntu.com")
        || host == "security.ubuntu.com"
    {
        hosts.extend(["archive.ubuntu.com", "security.ubuntu.com"].map(String::from));
    }
    let mut seen = HashSet::new();
    hosts
        .into_iter()
        .filter(|h| seen.insert(h.clone()))
        .map(|h| Route {
            upstream: if h == host {
                url.to_string()
            } else {
                format!("http://{h}{path}/")
            },
            host: h,
            path: path.clone(),
            to: to.to_string(),
            derived_from: Some(name.to_string()),
        })
        .collect()
}

/// A DNS name as clients write it in URLs: lower-cased, no port, no trailing dot.
pub(crate) fn host_name(raw: &str) -> Result<String, String> {
    let host = raw.trim_end_matches('.').to_ascii_lowercase();
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(host)
    } else {
        Err(format!("{raw:?} is not a host name"))
    }
}

fn route_path(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let ok = trimmed.starts_with('/')
        && trimmed[1..].split('/').all(|s| {
            !s.is_empty()
                && !s.starts_with('.')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.~+".contains(c))
        });
    if ok {
        Ok(trimmed.to_string())
    } else {
        Err(format!("path {raw:?} must look like \"/ubuntu\""))
    }
}

fn tree_path(raw: &str, trees: &Trees) -> Result<String, String> {
    let to = raw.trim_matches('/');
    if to == "images" {
        return match trees.images {
            Some(_) => Ok("/images".into()),
            None => Err("routes to \"images\", but there is no [images] section".into()),
        };
    }
    match to.strip_prefix("apt/") {
        Some(name) if trees.apt.iter().any(|n| n.as_str() == name) => Ok(format!("/{to}")),
        Some(name) => Err(format!(
            "routes to {raw:?}, but no repo, mirror or publish is named {name:?}"
        )),
        None => Err(format!(
            "to = {raw:?} must name a published tree: \"apt/NAME\" or \"images\""
        )),
    }
}

fn upstream_url(raw: &str) -> Result<String, String> {
    let url =
        reqwest::Url::parse(raw).map_err(|e| format!("upstream {raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
        return Err(format!(
            "upstream {raw:?} must be an http:// or https:// URL without a query"
        ));
    }
    let mut text = url.to_string();
    if !text.ends_with('/') {
        text.push('/');
    }
    Ok(text)
}

pub(super) fn dns(raw: RawDns, public_url: &str) -> Result<DnsConfig, String> {
    let addresses_set = raw.address.is_some();
    let addresses = match raw.address {
        Some(a) => a.0,
        // A public URL naming an address is the address clients should be sent to.
        None => url_host(public_url)
            .and_then(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().ok())
            // Other machines cannot reach this one at a loopback address.
            .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
            .into_iter()
            .collect(),
    };
    if raw.listen.is_some() && addresses.is_empty() {
        return Err(
            "[dns] listen is set but there is no address to answer with: set [dns] address = [\"10.0.0.5\"] (this server's address as clients reach it)"
                .into(),
        );
    }
    let names = raw
        .names
        .iter()
        .map(|n| host_name(n).map_err(|e| format!("[dns] names: {e}")))
        .collect::<Result<_, _>>()?;
    // Forwarding is for the site's own machines: loopback and private networks unless told.
    let allow = raw.allow.unwrap_or_else(|| {
        [
            "127.0.0.0/8",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "::1/128",
            "fc00::/7",
            "fe80::/10",
        ]
        .iter()
        .map(|n| n.parse().expect("valid network"))
        .collect()
    });
    Ok(DnsConfig {
        listen: raw.listen,
        addresses,
        addresses_set,
        upstream: raw.upstream,
        allow,
        names,
        ttl: raw.ttl.unwrap_or(300),
        rate_limit: raw.rate_limit.unwrap_or(100).max(1),
    })
}
