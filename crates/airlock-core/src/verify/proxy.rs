//! The upstream-name part of `airlock verify`: every route answers, under its upstream name,
//! with the same bytes as the tree it maps to (a server started with another config, or a
//! route to the wrong tree, shows here); every overridden name resolves, through the resolver
//! the site uses, to this server's addresses and nothing else.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};

use super::{Failure, Report, Run};
use crate::config::Route;
use crate::hint::Chain;
use crate::site::Site;

const LIMIT: u64 = 64 << 20;
pub(super) const DNS_TIMEOUT: Duration = Duration::from_secs(3);

pub(super) async fn check(site: &Site, run: &Run<'_>, report: &mut Report) {
    let config = &site.config;
    if config.proxy.routes.is_empty() {
        return;
    }
    let (mut checked, mut failures) = (0, Vec::new());
    for route in &config.proxy.routes {
        let samples = samples(site, route);
        if samples.is_empty() {
            // A gateway pulling through has nothing published to compare with.
            if !config.proxy.pull_through {
                checked += 1;
                failures.push(Failure::new(
                    "proxy",
                    format!("http://{}{}/", route.host, route.path),
                    format!("routed to {}/, a published tree", route.to),
                    "nothing is published there (sync or publish it first)",
                ));
            }
            continue;
        }
        for sample in samples {
            checked += 1;
            if let Some(failure) = compare(run, route, &sample).await {
                failures.push(failure);
            }
        }
    }
    report.area("proxy", checked, failures, Vec::new());
}

/// Files of the route's tree to fetch both ways: each suite's InRelease (or Release) of an apt
/// tree, the index of an image stream.
fn samples(site: &Site, route: &Route) -> Vec<String> {
    let public = site.data_dir().join("public");
    let tree = public.join(route.to.trim_start_matches('/'));
    if route.to == "/images" {
        return ["streams/v1/index.sjson", "streams/v1/index.json"]
            .into_iter()
            .find(|p| tree.join(p).is_file())
            .map(String::from)
            .into_iter()
            .collect();
    }
    let mut suites: Vec<String> = std::fs::read_dir(tree.join("dists"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    suites.sort();
    suites
        .into_iter()
        .filter_map(|suite| {
            ["InRelease", "Release"]
                .into_iter()
                .map(|f| format!("dists/{suite}/{f}"))
                .find(|p| tree.join(p).is_file())
        })
        .collect()
}

/// The file under the upstream name (transparent form: `Host:` set) against the tree's own URL.
async fn compare(run: &Run<'_>, route: &Route, sample: &str) -> Option<Failure> {
    let routed_name = format!("http://{}{}/{sample}", route.host, route.path);
    let fail =
        |expected: String, got: String| Some(Failure::new("proxy", &routed_name, expected, got));
    let join = |path: &str| run.base.join(path.trim_start_matches('/'));
    let (Ok(routed), Ok(direct)) = (
        join(&format!("{}/{sample}", route.path)),
        join(&format!("{}/{sample}", route.to)),
    ) else {
        return fail("a URL".into(), "cannot be joined to the server's".into());
    };
    let direct_bytes = match run.http.get_small(&direct, LIMIT).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return fail(format!("{direct} served"), "404 Not Found".into()),
        Err(e) => return fail(format!("{direct} served"), Chain(&e).to_string()),
    };
    let host = [("Host", route.host.as_str())];
    match run.http.request_small(&routed, &host, None, LIMIT).await {
        Ok(Some(bytes)) if bytes == direct_bytes => None,
        Ok(Some(bytes)) => fail(
            format!(
                "the bytes of {direct} ({} bytes, sha256 {})",
                direct_bytes.len(),
                crate::storage::Sha256::of(&direct_bytes)
            ),
            format!(
                "other bytes ({} bytes, sha256 {}): the server routes {} elsewhere (started with another config?)",
                bytes.len(),
                crate::storage::Sha256::of(&bytes),
                route.host
            ),
        ),
        Ok(None) => fail(format!("the bytes of {direct}"), "404 Not Found".into()),
        Err(e) => fail(format!("the bytes of {direct}"), Chain(&e).to_string()),
    }
}

/// Every overridden name, resolved through `resolver` (or this machine's), must give the
/// configured addresses only. A site that sets no address and names no resolver does not
/// override names (a connected host, say): nothing to check.
pub(super) async fn check_dns(site: &Site, resolver: Option<SocketAddr>, report: &mut Report) {
    let config = &site.config;
    let names = config.overridden_names();
    let expected: BTreeSet<IpAddr> = config.dns.addresses.iter().copied().collect();
    if names.is_empty() || (!config.dns.addresses_set && resolver.is_none()) {
        return;
    }
    if expected.is_empty() {
        report.broken(
            "dns",
            "[dns] address",
            "this server's addresses, to compare what the names resolve to",
            "not set (and public_url names no address)",
        );
        return;
    }
    let shown = |set: &BTreeSet<IpAddr>| {
        set.iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let via = resolver.map_or("this machine's resolver".to_string(), |r| r.to_string());
    let mut failures = Vec::new();
    for name in &names {
        let got = match resolver {
            Some(resolver) => query(resolver, name).await,
            None => tokio::net::lookup_host((name.as_str(), 80))
                .await
                .map(|addresses| addresses.map(|a| a.ip()).collect())
                .map_err(|e| Chain(&e).to_string()),
        };
        let failure = match got {
            Ok(got) if !got.is_empty() && got.is_subset(&expected) => None,
            Ok(got) if got.is_empty() => Some("no address".to_string()),
            Ok(got) => Some(shown(&got)),
            Err(e) => Some(e),
        };
        if let Some(got) = failure {
            failures.push(Failure::new(
                "dns",
                format!("{name} via {via}"),
                shown(&expected),
                got,
            ));
        }
    }
    report.area("dns", names.len(), failures, Vec::new());
}

/// A and AAAA for `name` from `resolver` over UDP.
pub(super) async fn query(resolver: SocketAddr, name: &str) -> Result<BTreeSet<IpAddr>, String> {
    let fqdn = Name::from_ascii(format!("{name}.")).map_err(|e| Chain(&e).to_string())?;
    let bind: SocketAddr = if resolver.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| Chain(&e).to_string())?;
    socket
        .connect(resolver)
        .await
        .map_err(|e| Chain(&e).to_string())?;
    let mut addresses = BTreeSet::new();
    for kind in [RecordType::A, RecordType::AAAA] {
        let mut message = Message::query();
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(fqdn.clone(), kind));
        let bytes = message.to_vec().map_err(|e| Chain(&e).to_string())?;
        socket
            .send(&bytes)
            .await
            .map_err(|e| Chain(&e).to_string())?;
        let mut buffer = vec![0u8; 4096];
        let answer = tokio::time::timeout(DNS_TIMEOUT, async {
            loop {
                let n = socket
                    .recv(&mut buffer)
                    .await
                    .map_err(|e| Chain(&e).to_string())?;
                if let Ok(reply) = Message::from_vec(&buffer[..n])
                    && reply.metadata.id == message.metadata.id
                {
                    return Ok::<_, String>(reply);
                }
            }
        })
        .await
        .map_err(|_| format!("no answer within {} s", DNS_TIMEOUT.as_secs()))??;
        if answer.metadata.response_code != hickory_proto::op::ResponseCode::NoError {
            return Err(format!("{} for {kind}", answer.metadata.response_code));
        }
        for record in &answer.answers {
            match &record.data {
                RData::A(a) => addresses.insert(IpAddr::V4(a.0)),
                RData::AAAA(a) => addresses.insert(IpAddr::V6(a.0)),
                _ => false,
            };
        }
    }
    Ok(addresses)
}
