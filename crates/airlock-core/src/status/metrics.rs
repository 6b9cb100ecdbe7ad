//! `/metrics`: the status in the Prometheus text exposition format (0.0.4, as `promtool
//! check metrics` reads it), encoded by the `prometheus` crate; every name prefixed
//! `airlock_`, units in the names. Timestamps are Unix seconds; counters are kept across
//! restarts ([`super::Counters`]). Built from one [`SiteStatus`] per scrape: no walk of the
//! data folder.

use prometheus::{Encoder as _, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use super::model::{Level, SiteStatus};

/// The content type of what [`render`] writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Label values, in the order the family names its labels.
type Labels<'a> = &'a [&'a str];

/// Registers families as they are first used, with their help and label names in one place.
struct Metrics {
    registry: Registry,
}

impl Metrics {
    fn opts(name: &str, help: &str) -> Opts {
        Opts::new(name, help).namespace("airlock")
    }

    fn gauge(&mut self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        let family = IntGaugeVec::new(Metrics::opts(name, help), labels).expect("a valid metric");
        self.registry
            .register(Box::new(family.clone()))
            .expect("each name registered once");
        family
    }

    fn counter(&mut self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        let family = IntCounterVec::new(Metrics::opts(name, help), labels).expect("a valid metric");
        self.registry
            .register(Box::new(family.clone()))
            .expect("each name registered once");
        family
    }
}

fn set(family: &IntGaugeVec, labels: Labels<'_>, value: i64) {
    family.with_label_values(labels).set(value);
}

fn count(family: &IntCounterVec, labels: Labels<'_>, value: u64) {
    family.with_label_values(labels).inc_by(value);
}

fn seconds(t: jiff::Timestamp) -> i64 {
    t.as_second()
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The metrics of `status`.
pub fn render(status: &SiteStatus) -> String {
    let mut m = Metrics {
        registry: Registry::new(),
    };
    build(&mut m, status);
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&m.registry.gather(), &mut out)
        .expect("writing to memory does not fail");
    String::from_utf8(out).expect("the encoder writes UTF-8")
}

fn build(m: &mut Metrics, status: &SiteStatus) {
    let build = m.gauge("build_info", "airlock's version (always 1)", &["version"]);
    set(&build, &[&status.version], 1);
    let health = m.gauge(
        "health_status",
        "0 healthy, 1 warning, 2 error (as the status page's first line)",
        &[],
    );
    let level = match status.health.level {
        Level::Healthy => 0,
        Level::Warning => 1,
        Level::Error => 2,
    };
    set(&health, &[], level);
    let problems = m.gauge(
        "health_problems",
        "Problems the status page lists, by level",
        &["level"],
    );
    for level in [Level::Warning, Level::Error] {
        let n = status
            .health
            .problems
            .iter()
            .filter(|p| p.level == level)
            .count();
        set(&problems, &[level.as_str()], n as i64);
    }
    if let Some(server) = &status.server {
        let started = m.gauge("server_start_time_seconds", "When the server started", &[]);
        set(&started, &[], seconds(server.started));
    }
    content(m, status);
    images(m, status);
    snaps(m, status);
    storage(m, status);
    verify(m, status);
    http(m, status);
}

/// Each published content's times and size, and each apt suite's Release.
fn content(m: &mut Metrics, status: &SiteStatus) {
    let suite_labels = ["name", "kind", "suite"];
    let valid_until = m.gauge(
        "apt_valid_until_timestamp_seconds",
        "Valid-Until of each published suite's Release",
        &suite_labels,
    );
    let release_date = m.gauge(
        "apt_release_timestamp_seconds",
        "Date of each published suite's Release",
        &suite_labels,
    );
    let packages = m.gauge(
        "apt_packages",
        "Packages in each published suite, by component and architecture",
        &["name", "kind", "suite", "component", "architecture"],
    );
    let content_labels = ["area", "name", "kind"];
    let published = m.gauge(
        "content_published_timestamp_seconds",
        "When the tree served now was switched in",
        &content_labels,
    );
    let synced = m.gauge(
        "content_last_sync_timestamp_seconds",
        "The last sync that added to the store",
        &content_labels,
    );
    let imported = m.gauge(
        "content_last_import_timestamp_seconds",
        "The last import of a bundle carrying the content",
        &content_labels,
    );
    let bytes = m.gauge(
        "content_bytes",
        "Bytes of the tree served now",
        &content_labels,
    );
    let files = m.gauge(
        "content_files",
        "Files of the tree served now",
        &content_labels,
    );
    let times = |labels: Labels<'_>, at: [Option<jiff::Timestamp>; 3]| {
        for (family, at) in [&published, &synced, &imported].into_iter().zip(at) {
            if let Some(at) = at {
                set(family, labels, seconds(at));
            }
        }
    };
    for c in &status.apt {
        let labels = ["apt", c.name.as_str(), c.kind.as_str()];
        times(&labels, [c.published, c.last_sync, c.last_import]);
        set(&bytes, &labels, int(c.bytes));
        set(&files, &labels, int(c.files));
        for s in &c.suites {
            let suite = [c.name.as_str(), c.kind.as_str(), s.suite.as_str()];
            if let Some(until) = s.valid_until {
                set(&valid_until, &suite, seconds(until));
            }
            if let Some(date) = s.date {
                set(&release_date, &suite, seconds(date));
            }
            for p in &s.packages {
                let labels = [suite[0], suite[1], suite[2], &p.component, &p.architecture];
                set(&packages, &labels, int(p.packages));
            }
        }
    }
    if let Some(stream) = &status.images {
        let labels = ["images", "images", "stream"];
        times(
            &labels,
            [stream.published, stream.last_sync, stream.last_import],
        );
        set(&bytes, &labels, int(stream.bytes));
        set(&files, &labels, int(stream.files));
    }
    if let Some(store) = &status.snaps {
        let labels = ["snaps", "snaps", "store"];
        times(&labels, [None, None, store.last_import]);
        set(&bytes, &labels, int(store.bytes));
    }
}

fn images(m: &mut Metrics, status: &SiteStatus) {
    let Some(stream) = &status.images else {
        return;
    };
    let products = m.gauge(
        "image_products",
        "Image products published, by kind, os, release and architecture",
        &["kind", "os", "release", "arch"],
    );
    for p in &stream.products {
        products
            .with_label_values(&[p.kind.as_str(), &p.os, &p.release, &p.arch])
            .inc();
    }
}

fn snaps(m: &mut Metrics, status: &SiteStatus) {
    let Some(store) = &status.snaps else {
        return;
    };
    let snaps = m.gauge("snaps", "Snaps the store serves", &[]);
    set(&snaps, &[], store.snaps.len() as i64);
    let revisions = m.gauge("snap_revisions", "Revisions kept of each snap", &["snap"]);
    let channels = m.gauge(
        "snap_channels",
        "Channels each snap is released to",
        &["snap"],
    );
    for s in &store.snaps {
        set(&revisions, &[&s.name], s.revisions.len() as i64);
        set(&channels, &[&s.name], s.channels.len() as i64);
    }
}

fn storage(m: &mut Metrics, status: &SiteStatus) {
    let s = &status.storage;
    let store = m.gauge("store_bytes", "Bytes of the content store's blobs", &[]);
    set(&store, &[], int(s.store_bytes));
    let blobs = m.gauge("store_blobs", "Blobs in the content store", &[]);
    set(&blobs, &[], int(s.store_blobs));
    let optional = [
        (
            "disk_free_bytes",
            "Free space of the data folder's disk",
            s.disk_free_bytes,
        ),
        (
            "disk_size_bytes",
            "Size of the data folder's disk",
            s.disk_total_bytes,
        ),
        (
            "next_sync_estimate_bytes",
            "Room the next sync or import needs, from the largest recent updates",
            s.next_sync_bytes,
        ),
    ];
    for (name, help, value) in optional {
        if let Some(value) = value {
            let g = m.gauge(name, help, &[]);
            set(&g, &[], int(value));
        }
    }
}

fn verify(m: &mut Metrics, status: &SiteStatus) {
    let Some(run) = &status.verify else {
        return;
    };
    let at = m.gauge(
        "verify_last_run_timestamp_seconds",
        "When airlock verify last ran",
        &[],
    );
    set(&at, &[], seconds(run.at));
    let passed = m.gauge(
        "verify_last_run_passed",
        "1 when the last verify passed, else 0",
        &[],
    );
    set(&passed, &[], i64::from(run.passed));
    let checks = m.gauge(
        "verify_checks",
        "Checks the last verify ran, by area",
        &["area"],
    );
    let failures = m.gauge(
        "verify_failures",
        "Checks the last verify failed, by area",
        &["area"],
    );
    for area in &run.areas {
        set(&checks, &[&area.area], area.checked as i64);
        set(&failures, &[&area.area], area.failed as i64);
    }
}

fn http(m: &mut Metrics, status: &SiteStatus) {
    let http = &status.http;
    let requests = m.counter(
        "http_requests_total",
        "HTTP requests answered, by area and status class (kept across restarts)",
        &["area", "class"],
    );
    for (area, classes) in &http.requests {
        for (class, n) in classes {
            count(&requests, &[area, class], *n);
        }
    }
    let bytes = m.counter(
        "http_response_bytes_total",
        "Body bytes answered (Content-Length), by area",
        &["area"],
    );
    for (area, n) in &http.bytes_served {
        count(&bytes, &[area], *n);
    }
    let refused = m.counter(
        "proxy_refusals_total",
        "Proxy requests refused: names not routed here, CONNECT not allowed",
        &[],
    );
    count(&refused, &[], http.proxy_refused);
    let route = ["host", "path", "to"];
    let hits = m.counter(
        "proxy_hits_total",
        "Requests for an upstream name answered",
        &route,
    );
    let misses = m.counter(
        "proxy_misses_total",
        "Requests for an upstream name not found",
        &route,
    );
    let pulled = m.counter(
        "proxy_pull_fetches_total",
        "Answers fetched from the upstream by the pull-through",
        &route,
    );
    let pull_refused = m.counter(
        "proxy_pull_refusals_total",
        "Pull-through requests refused (not listed by a signed index, or the upstream failed)",
        &route,
    );
    for r in &status.routes {
        let labels = [r.host.as_str(), &r.path, &r.to];
        count(&hits, &labels, r.hits);
        count(&misses, &labels, r.misses);
        count(&pulled, &labels, r.pulled);
        count(&pull_refused, &labels, r.pull_refused);
    }
}
