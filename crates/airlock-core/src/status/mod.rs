//! What a site looks like to the people and the monitoring that keep it alive: one
//! [`SiteStatus`] gathered from the data folder (published trees, Release files, the image
//! stream, the snap catalog, the sync history, imported bundles, the last verify run) and
//! the server's [`Counters`]; served as `/status.json`, as Prometheus `/metrics`
//! ([`metrics`]), as the page at `/`, and printed by `airlock status`.
//!
//! Cheap to ask often: the content part is read once and again only when a publish, sync,
//! import or verify changed the data folder ([`StatusSource`] keys it on the times of the
//! folders and state files they replace); the counters live in memory.

pub mod counters;
mod gather;
mod health;
pub mod metrics;
mod model;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub use counters::{Area, Counters, CountersSnapshot, RouteCounters, Saver};
pub use health::validity;
pub use model::*;

use crate::site::Site;

/// Gathers the status of one site; cheap to ask again (see the module doc).
pub struct StatusSource {
    site: Site,
    counters: Arc<Counters>,
    server: Option<ServerInfo>,
    cache: Mutex<Option<(ChangeKey, Arc<gather::Published>)>>,
}

/// The modification times of what a change to the published content replaces.
type ChangeKey = Vec<Option<SystemTime>>;

impl StatusSource {
    /// For the running server, counting with `counters`.
    pub fn server(site: Site, counters: Arc<Counters>, public_url: &str) -> StatusSource {
        StatusSource {
            site,
            counters,
            server: Some(ServerInfo {
                started: whole_second(jiff::Timestamp::now()),
                public_url: public_url.to_string(),
            }),
            cache: Mutex::new(None),
        }
    }

    /// The status now. Reads the data folder when something changed there: call it where
    /// blocking is allowed.
    pub fn status(&self) -> SiteStatus {
        let published = self.published();
        assemble(
            &self.site,
            &published,
            &self.counters.snapshot(),
            self.server.clone(),
        )
    }

    fn published(&self) -> Arc<gather::Published> {
        let key = change_key(self.site.data_dir());
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached, published)) = &*cache
            && *cached == key
        {
            return published.clone();
        }
        let published = Arc::new(gather::published(&self.site));
        *cache = Some((key, published.clone()));
        published
    }
}

/// The status as the data folder has it, without a server (`airlock status` when none
/// answers): the counters as the last server left them.
pub fn read(site: &Site) -> SiteStatus {
    let counters = Counters::load(site.data_dir());
    assemble(site, &gather::published(site), &counters.snapshot(), None)
}

/// What every publish, sync, import, snap release and verify replaces: the folders whose
/// links a publish switches, and the state files (each replaced by a rename).
fn change_key(data: &Path) -> ChangeKey {
    const WATCHED: [&str; 9] = [
        "public",
        "public/apt",
        "state/snaps/catalog.json",
        "state/images/custom.json",
        "state/history.json",
        "state/bundles/imported.json",
        "state/verify/last-run.json",
        "state/gc/last-run.json",
        "store/sha256",
    ];
    WATCHED
        .iter()
        .map(|p| {
            let path: PathBuf = data.join(p);
            std::fs::symlink_metadata(path)
                .and_then(|m| m.modified())
                .ok()
        })
        .collect()
}

fn assemble(
    site: &Site,
    published: &gather::Published,
    counters: &CountersSnapshot,
    server: Option<ServerInfo>,
) -> SiteStatus {
    let now = whole_second(jiff::Timestamp::now());
    let mut apt = published.apt.clone();
    for suite in apt.iter_mut().flat_map(|c| c.suites.iter_mut()) {
        suite.seconds_left = suite
            .valid_until
            .map(|until| until.as_second() - now.as_second());
    }
    let disk = rustix::fs::statvfs(site.data_dir()).ok();
    let routes = site
        .config
        .proxy
        .routes
        .iter()
        .map(|r| {
            let counts = counters
                .routes
                .get(&format!("{} {}", r.host, r.path))
                .cloned()
                .unwrap_or_default();
            RouteStatus {
                host: r.host.clone(),
                path: r.path.clone(),
                to: r.to.clone(),
                derived_from: r.derived_from.clone(),
                hits: counts.hits,
                misses: counts.misses,
                pulled: counts.pulled,
                pull_refused: counts.pull_refused,
                recent_misses: counts.recent_misses,
            }
        })
        .collect();
    let mut status = SiteStatus {
        version: env!("CARGO_PKG_VERSION").to_string(),
        generated: now,
        source: if server.is_some() {
            Source::Server
        } else {
            Source::DataFolder
        },
        server,
        health: Health {
            level: Level::Healthy,
            problems: Vec::new(),
        },
        apt,
        images: published.images.clone(),
        snaps: published.snaps.clone(),
        storage: Storage {
            store_bytes: published.store_bytes,
            store_blobs: published.store_blobs,
            store_dropped_blobs: published.store_dropped_blobs,
            disk_free_bytes: disk
                .as_ref()
                .map(|fs| fs.f_bavail.saturating_mul(fs.f_frsize)),
            disk_total_bytes: disk
                .as_ref()
                .map(|fs| fs.f_blocks.saturating_mul(fs.f_frsize).max(1)),
            next_sync_bytes: published.estimate.as_ref().map(|e| e.bytes),
        },
        verify: published.verify.clone(),
        routes,
        http: counters.clone(),
    };
    status.health = health::assess(&status, published, now);
    status
}

/// Times in the status are whole seconds, as Release files and Prometheus have them.
fn whole_second(t: jiff::Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// `3 d 4 h`, `5 h 10 min`, `42 s`: a duration as people read it.
/// A time as the status shows it to people (minutes, UTC); "never" for none.
pub fn when(t: Option<jiff::Timestamp>) -> String {
    t.map_or("never".to_string(), |t| {
        t.strftime("%Y-%m-%d %H:%M UTC").to_string()
    })
}

pub fn human_duration(seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

impl SiteStatus {
    /// One line: healthy, or the worst problem and what to do.
    pub fn headline(&self) -> String {
        match self.health.problems.first() {
            None => {
                "healthy: everything published is valid, the last verify passed, the disk has room"
                    .into()
            }
            Some(p) => {
                let more = match self.health.problems.len() {
                    1 => String::new(),
                    n => format!(" (and {} more)", n - 1),
                };
                format!("{}: {}; {}{more}", p.level.as_str(), p.what, p.action)
            }
        }
    }
}
