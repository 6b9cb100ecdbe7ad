//! `/metrics`: the status in the Prometheus text exposition format (0.0.4, as `promtool
//! check metrics` reads it), encoded by the `prometheus` crate; every name prefixed
//! `airlock_`, units in the names. Timestamps are Unix seconds; counters are kept across
//! restarts ([`super::Counters`]). Built from one [`SiteStatus`] per scrape: no walk of the
//! data folder.

use std::collections::HashMap;

use prometheus::core::Collector;
use prometheus::{Encoder as _, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use super::model::{FrontendStatus, Level, SiteStatus};

/// The content type of what [`render`] writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Label values, in the order the family names its labels.
type Labels<'a> = &'a [&'a str];

#[derive(Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
}
use Kind::{Counter, Gauge};

const SUITE: &[&str] = &["name", "kind", "suite"];
const CONTENT: &[&str] = &["area", "name", "kind"];
const ROUTE: &[&str] = &["host", "path", "to"];

/// Every family `/metrics` may carry: name (after `airlock_`), help, kind and label names. A
/// family with no sample in a scrape is left out of it.
const FAMILIES: &[(&str, &str, Kind, &[&str])] = &[
    (
        "build_info",
        "airlock's version (always 1)",
        Gauge,
        &["version"],
    ),
    (
        "health_status",
        "0 healthy, 1 warning, 2 error (as the status page's first line)",
        Gauge,
        &[],
    ),
    (
        "health_problems",
        "Problems the status page lists, by level",
        Gauge,
        &["level"],
    ),
    (
        "server_start_time_seconds",
        "When the server started",
        Gauge,
        &[],
    ),
    (
        "apt_valid_until_timestamp_seconds",
        "Valid-Until of each published suite's Release",
        Gauge,
        SUITE,
    ),
    (
        "apt_release_timestamp_seconds",
        "Date of each published suite's Release",
        Gauge,
        SUITE,
    ),
    (
        "apt_packages",
        "Packages in each published suite, by component and architecture",
        Gauge,
        &["name", "kind", "suite", "component", "architecture"],
    ),
    (
        "content_published_timestamp_seconds",
        "When the tree served now was switched in",
        Gauge,
        CONTENT,
    ),
    (
        "content_last_sync_timestamp_seconds",
        "The last sync that added to the store",
        Gauge,
        CONTENT,
    ),
    (
        "content_last_import_timestamp_seconds",
        "The last import of a bundle carrying the content",
        Gauge,
        CONTENT,
    ),
    (
        "content_bytes",
        "Bytes of the tree served now",
        Gauge,
        CONTENT,
    ),
    (
        "content_files",
        "Files of the tree served now",
        Gauge,
        CONTENT,
    ),
    (
        "image_products",
        "Image products published, by kind, os, release and architecture",
        Gauge,
        &["kind", "os", "release", "arch"],
    ),
    ("snaps", "Snaps the store serves", Gauge, &[]),
    (
        "snap_revisions",
        "Revisions kept of each snap",
        Gauge,
        &["snap"],
    ),
    (
        "snap_channels",
        "Channels each snap is released to",
        Gauge,
        &["snap"],
    ),
    (
        "store_bytes",
        "Bytes of the content store's blobs",
        Gauge,
        &[],
    ),
    ("store_blobs", "Blobs in the content store", Gauge, &[]),
    (
        "store_dropped_blobs",
        "Blobs pushed to the bucket and dropped from the data folder (keep_pushed)",
        Gauge,
        &[],
    ),
    (
        "disk_free_bytes",
        "Free space of the data folder's disk",
        Gauge,
        &[],
    ),
    (
        "disk_size_bytes",
        "Size of the data folder's disk",
        Gauge,
        &[],
    ),
    (
        "next_sync_estimate_bytes",
        "Room the next sync or import needs, from the largest recent updates",
        Gauge,
        &[],
    ),
    (
        "verify_last_run_timestamp_seconds",
        "When airlock verify last ran",
        Gauge,
        &[],
    ),
    (
        "verify_last_run_passed",
        "1 when the last verify passed, else 0",
        Gauge,
        &[],
    ),
    (
        "verify_checks",
        "Checks the last verify ran, by area",
        Gauge,
        &["area"],
    ),
    (
        "verify_failures",
        "Checks the last verify failed, by area",
        Gauge,
        &["area"],
    ),
    (
        "http_requests_total",
        "HTTP requests answered, by area and status class (kept across restarts)",
        Counter,
        &["area", "class"],
    ),
    (
        "http_response_bytes_total",
        "Body bytes answered (Content-Length), by area",
        Counter,
        &["area"],
    ),
    (
        "proxy_refusals_total",
        "Proxy requests refused: names not routed here, CONNECT not allowed",
        Counter,
        &[],
    ),
    (
        "proxy_hits_total",
        "Requests for an upstream name answered",
        Counter,
        ROUTE,
    ),
    (
        "proxy_misses_total",
        "Requests for an upstream name not found",
        Counter,
        ROUTE,
    ),
    (
        "proxy_pull_fetches_total",
        "Answers fetched from the upstream by the pull-through",
        Counter,
        ROUTE,
    ),
    (
        "proxy_pull_refusals_total",
        "Pull-through requests refused (not listed by a signed index, or the upstream failed)",
        Counter,
        ROUTE,
    ),
    (
        "frontend_generation",
        "The generation of the push a frontend serves",
        Gauge,
        &[],
    ),
    (
        "frontend_pushed_timestamp_seconds",
        "When the push a frontend serves switched the pointer",
        Gauge,
        &[],
    ),
    (
        "frontend_refreshed_timestamp_seconds",
        "When the bucket last answered a frontend's look for a new push",
        Gauge,
        &[],
    ),
    (
        "frontend_large_blobs_total",
        "Requests for blobs over 1 MiB, by where their bytes came from (cache, bucket)",
        Counter,
        &["source"],
    ),
    (
        "frontend_bucket_bytes_total",
        "Bytes of blobs over 1 MiB the bucket sent",
        Counter,
        &[],
    ),
    (
        "frontend_cache_bytes",
        "Bytes in a frontend's disk cache",
        Gauge,
        &[],
    ),
    (
        "frontend_cache_limit_bytes",
        "The size a frontend's disk cache keeps under (cache_size)",
        Gauge,
        &[],
    ),
    (
        "frontend_cache_blobs",
        "Blobs in a frontend's disk cache",
        Gauge,
        &[],
    ),
];

/// The families of [`FAMILIES`], registered, by name.
struct Metrics {
    registry: Registry,
    gauges: HashMap<&'static str, IntGaugeVec>,
    counters: HashMap<&'static str, IntCounterVec>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::new(),
            gauges: HashMap::new(),
            counters: HashMap::new(),
        };
        for &(name, help, kind, labels) in FAMILIES {
            let opts = Opts::new(name, help).namespace("airlock");
            let family: Box<dyn Collector> = match kind {
                Gauge => {
                    let family = IntGaugeVec::new(opts, labels).expect("a valid metric");
                    m.gauges.insert(name, family.clone());
                    Box::new(family)
                }
                Counter => {
                    let family = IntCounterVec::new(opts, labels).expect("a valid metric");
                    m.counters.insert(name, family.clone());
                    Box::new(family)
                }
            };
            m.registry
                .register(family)
                .expect("each name registered once");
        }
        m
    }

    fn gauge(&self, name: &str, labels: Labels<'_>) -> prometheus::IntGauge {
        let family = self.gauges.get(name);
        family
            .unwrap_or_else(|| panic!("{name}: a gauge of FAMILIES"))
            .with_label_values(labels)
    }

    fn set(&self, name: &str, labels: Labels<'_>, value: i64) {
        self.gauge(name, labels).set(value);
    }

    fn count(&self, name: &str, labels: Labels<'_>, value: u64) {
        let family = self.counters.get(name);
        family
            .unwrap_or_else(|| panic!("{name}: a counter of FAMILIES"))
            .with_label_values(labels)
            .inc_by(value);
    }
}

fn seconds(t: jiff::Timestamp) -> i64 {
    t.as_second()
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The metrics of `status`.
pub fn render(status: &SiteStatus) -> String {
    let m = Metrics::new();
    build(&m, status);
    encode(&m)
}

/// The metrics of a frontend.
pub fn render_frontend(status: &FrontendStatus) -> String {
    let m = Metrics::new();
    m.set("build_info", &[&status.version], 1);
    m.set(
        "server_start_time_seconds",
        &[],
        seconds(status.server.started),
    );
    if let Some(served) = &status.served {
        m.set("frontend_generation", &[], int(served.generation));
        m.set(
            "frontend_pushed_timestamp_seconds",
            &[],
            seconds(served.pushed),
        );
    }
    if let Some(at) = status.refreshed {
        m.set("frontend_refreshed_timestamp_seconds", &[], seconds(at));
    }
    let large = &status.large_blobs;
    m.count("frontend_large_blobs_total", &["cache"], large.from_cache);
    m.count("frontend_large_blobs_total", &["bucket"], large.from_bucket);
    m.count("frontend_bucket_bytes_total", &[], large.bucket_bytes);
    if let Some(cache) = &status.cache {
        m.set("frontend_cache_bytes", &[], int(cache.bytes));
        m.set("frontend_cache_limit_bytes", &[], int(cache.limit));
        m.set("frontend_cache_blobs", &[], int(cache.blobs));
    }
    requests(&m, &status.http);
    encode(&m)
}

fn encode(m: &Metrics) -> String {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&m.registry.gather(), &mut out)
        .expect("writing to memory does not fail");
    String::from_utf8(out).expect("the encoder writes UTF-8")
}

fn build(m: &Metrics, status: &SiteStatus) {
    m.set("build_info", &[&status.version], 1);
    let level = match status.health.level {
        Level::Healthy => 0,
        Level::Warning => 1,
        Level::Error => 2,
    };
    m.set("health_status", &[], level);
    for level in [Level::Warning, Level::Error] {
        let n = status
            .health
            .problems
            .iter()
            .filter(|p| p.level == level)
            .count();
        m.set("health_problems", &[level.as_str()], n as i64);
    }
    if let Some(server) = &status.server {
        m.set("server_start_time_seconds", &[], seconds(server.started));
    }
    content(m, status);
    images(m, status);
    snaps(m, status);
    storage(m, status);
    verify(m, status);
    http(m, status);
}

/// Each published content's times and size, and each apt suite's Release.
fn content(m: &Metrics, status: &SiteStatus) {
    let times = |labels: Labels<'_>, at: [Option<jiff::Timestamp>; 3]| {
        let families = [
            "content_published_timestamp_seconds",
            "content_last_sync_timestamp_seconds",
            "content_last_import_timestamp_seconds",
        ];
        for (family, at) in families.into_iter().zip(at) {
            if let Some(at) = at {
                m.set(family, labels, seconds(at));
            }
        }
    };
    for c in &status.apt {
        let labels = ["apt", c.name.as_str(), c.kind.as_str()];
        times(&labels, [c.published, c.last_sync, c.last_import]);
        m.set("content_bytes", &labels, int(c.bytes));
        m.set("content_files", &labels, int(c.files));
        for s in &c.suites {
            let suite = [c.name.as_str(), c.kind.as_str(), s.suite.as_str()];
            if let Some(until) = s.valid_until {
                m.set("apt_valid_until_timestamp_seconds", &suite, seconds(until));
            }
            if let Some(date) = s.date {
                m.set("apt_release_timestamp_seconds", &suite, seconds(date));
            }
            for p in &s.packages {
                let labels = [suite[0], suite[1], suite[2], &p.component, &p.architecture];
                m.set("apt_packages", &labels, int(p.packages));
            }
        }
    }
    if let Some(stream) = &status.images {
        let labels = ["images", "images", "stream"];
        times(
            &labels,
            [stream.published, stream.last_sync, stream.last_import],
        );
        m.set("content_bytes", &labels, int(stream.bytes));
        m.set("content_files", &labels, int(stream.files));
    }
    if let Some(store) = &status.snaps {
        let labels = ["snaps", "snaps", "store"];
        times(&labels, [None, None, store.last_import]);
        m.set("content_bytes", &labels, int(store.bytes));
    }
}

fn images(m: &Metrics, status: &SiteStatus) {
    let Some(stream) = &status.images else {
        return;
    };
    for p in &stream.products {
        m.gauge(
            "image_products",
            &[p.kind.as_str(), &p.os, &p.release, &p.arch],
        )
        .inc();
    }
}

fn snaps(m: &Metrics, status: &SiteStatus) {
    let Some(store) = &status.snaps else {
        return;
    };
    m.set("snaps", &[], store.snaps.len() as i64);
    for s in &store.snaps {
        m.set("snap_revisions", &[&s.name], s.revisions.len() as i64);
        m.set("snap_channels", &[&s.name], s.channels.len() as i64);
    }
}

fn storage(m: &Metrics, status: &SiteStatus) {
    let s = &status.storage;
    m.set("store_bytes", &[], int(s.store_bytes));
    m.set("store_blobs", &[], int(s.store_blobs));
    m.set("store_dropped_blobs", &[], int(s.store_dropped_blobs));
    let optional = [
        ("disk_free_bytes", s.disk_free_bytes),
        ("disk_size_bytes", s.disk_total_bytes),
        ("next_sync_estimate_bytes", s.next_sync_bytes),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            m.set(name, &[], int(value));
        }
    }
}

fn verify(m: &Metrics, status: &SiteStatus) {
    let Some(run) = &status.verify else {
        return;
    };
    m.set("verify_last_run_timestamp_seconds", &[], seconds(run.at));
    m.set("verify_last_run_passed", &[], i64::from(run.passed));
    for area in &run.areas {
        m.set("verify_checks", &[&area.area], area.checked as i64);
        m.set("verify_failures", &[&area.area], area.failed as i64);
    }
}

fn http(m: &Metrics, status: &SiteStatus) {
    let http = &status.http;
    requests(m, http);
    m.count("proxy_refusals_total", &[], http.proxy_refused);
    for r in &status.routes {
        let labels = [r.host.as_str(), &r.path, &r.to];
        m.count("proxy_hits_total", &labels, r.hits);
        m.count("proxy_misses_total", &labels, r.misses);
        m.count("proxy_pull_fetches_total", &labels, r.pulled);
        m.count("proxy_pull_refusals_total", &labels, r.pull_refused);
    }
}

/// Requests and bytes answered, by area.
fn requests(m: &Metrics, http: &super::HttpStatus) {
    for (area, classes) in &http.requests {
        for (class, n) in classes {
            m.count("http_requests_total", &[area, class], *n);
        }
    }
    for (area, n) in &http.bytes_served {
        m.count("http_response_bytes_total", &[area], *n);
    }
}
