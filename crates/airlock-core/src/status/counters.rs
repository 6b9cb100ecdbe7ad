//! What the server counts (requests by area and status class, bytes answered, the proxy's
//! hits, misses, pull-through fetches and refusals), kept across restarts in
//! `data/state/status/counters.json`: loaded at start, written (atomically) every few seconds
//! when it changed and at shutdown.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::storage::{StorageError, load_json, save_json};

/// How many recent misses each route remembers.
const RECENT: usize = 20;

/// What a request was for, by its first path segment (or the proxy, for upstream names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Apt,
    Images,
    Snaps,
    Proxy,
    Other,
}

impl Area {
    pub const ALL: [Area; 5] = [
        Area::Apt,
        Area::Images,
        Area::Snaps,
        Area::Proxy,
        Area::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Area::Apt => "apt",
            Area::Images => "images",
            Area::Snaps => "snaps",
            Area::Proxy => "proxy",
            Area::Other => "other",
        }
    }

    /// The area of a request for this server's own path.
    pub fn of_path(path: &str) -> Area {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        match first {
            "apt" => Area::Apt,
            "images" => Area::Images,
            "v2" | "api" => Area::Snaps,
            _ => Area::Other,
        }
    }
}

/// Status classes: 1xx to 5xx.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn class_index(status: u16) -> usize {
    usize::from((status / 100).clamp(1, 5) - 1)
}

/// The counters of one upstream route.
#[derive(Debug, Default)]
pub struct RouteCounters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub pulled: AtomicU64,
    pub pull_refused: AtomicU64,
    recent_misses: Mutex<VecDeque<String>>,
}

impl RouteCounters {
    pub fn miss(&self, path: &str) {
        self.misses.fetch_add(1, Ordering::Relaxed);
        let mut recent = self.recent_misses.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(path.to_string());
    }

    fn snapshot(&self) -> RouteCounts {
        RouteCounts {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            pulled: self.pulled.load(Ordering::Relaxed),
            pull_refused: self.pull_refused.load(Ordering::Relaxed),
            recent_misses: self
                .recent_misses
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect(),
        }
    }

    fn restore(counts: &RouteCounts) -> RouteCounters {
        RouteCounters {
            hits: AtomicU64::new(counts.hits),
            misses: AtomicU64::new(counts.misses),
            pulled: AtomicU64::new(counts.pulled),
            pull_refused: AtomicU64::new(counts.pull_refused),
            recent_misses: Mutex::new(counts.recent_misses.iter().cloned().collect()),
        }
    }
}

/// The server's counters; shared by every worker and kept across reloads.
#[derive(Debug)]
pub struct Counters {
    /// Where they are kept; none for counters that are not (tests in-process).
    path: Option<PathBuf>,
    since: jiff::Timestamp,
    requests: [[AtomicU64; CLASSES.len()]; Area::ALL.len()],
    bytes: [AtomicU64; Area::ALL.len()],
    /// Proxy requests for names that are not routed, and CONNECTs not allowed.
    pub proxy_refused: AtomicU64,
    routes: Mutex<BTreeMap<String, Arc<RouteCounters>>>,
    /// The request total last written.
    saved: AtomicU64,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            path: None,
            since: jiff::Timestamp::now(),
            requests: Default::default(),
            bytes: Default::default(),
            proxy_refused: AtomicU64::new(0),
            routes: Mutex::default(),
            saved: AtomicU64::new(0),
        }
    }
}

/// The counters as kept on disk and shown in `/status.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CountersSnapshot {
    /// When counting began (the first server on this data folder, or since the file was
    /// removed).
    pub since: Option<jiff::Timestamp>,
    /// Requests by area, then status class (`2xx`...).
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// Body bytes answered (Content-Length), by area.
    pub bytes_served: BTreeMap<String, u64>,
    pub proxy_refused: u64,
    /// By `HOST PATH`.
    pub routes: BTreeMap<String, RouteCounts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteCounts {
    pub hits: u64,
    pub misses: u64,
    pub pulled: u64,
    pub pull_refused: u64,
    pub recent_misses: Vec<String>,
}

impl CountersSnapshot {
    pub fn total_requests(&self) -> u64 {
        self.requests.values().flat_map(|c| c.values()).sum()
    }
}

impl Counters {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("state/status/counters.json")
    }

    /// What was counted before (a missing file starts at zero; a damaged one too, with a
    /// warning in the log: counters are no reason not to serve).
    pub fn load(data_dir: &Path) -> Counters {
        let path = Counters::path(data_dir);
        let snapshot: CountersSnapshot = load_json(&path).unwrap_or_else(|e| {
            tracing::warn!(
                "{}: the request counters start again at zero",
                crate::hint::Chain(&e)
            );
            CountersSnapshot::default()
        });
        Counters::restore(Some(path), &snapshot)
    }

    fn restore(path: Option<PathBuf>, snapshot: &CountersSnapshot) -> Counters {
        let counters = Counters {
            path,
            since: snapshot.since.unwrap_or_else(jiff::Timestamp::now),
            ..Counters::default()
        };
        for (a, area) in Area::ALL.iter().enumerate() {
            if let Some(classes) = snapshot.requests.get(area.as_str()) {
                for (c, class) in CLASSES.iter().enumerate() {
                    let count = classes.get(*class).copied().unwrap_or(0);
                    counters.requests[a][c].store(count, Ordering::Relaxed);
                }
            }
            let bytes = snapshot.bytes_served.get(area.as_str()).copied();
            counters.bytes[a].store(bytes.unwrap_or(0), Ordering::Relaxed);
        }
        counters
            .proxy_refused
            .store(snapshot.proxy_refused, Ordering::Relaxed);
        *counters.routes.lock().unwrap_or_else(|e| e.into_inner()) = snapshot
            .routes
            .iter()
            .map(|(k, v)| (k.clone(), Arc::new(RouteCounters::restore(v))))
            .collect();
        counters
            .saved
            .store(snapshot.total_requests(), Ordering::Relaxed);
        counters
    }

    /// Counts one answer.
    pub fn request(&self, area: Area, status: u16, bytes: u64) {
        let a = area as usize;
        self.requests[a][class_index(status)].fetch_add(1, Ordering::Relaxed);
        if bytes > 0 {
            self.bytes[a].fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// The counters of the route `host path` (created at zero for a new one).
    pub fn route(&self, host: &str, path: &str) -> Arc<RouteCounters> {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(format!("{host} {path}"))
            .or_default()
            .clone()
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        let mut snapshot = CountersSnapshot {
            since: Some(self.since),
            proxy_refused: self.proxy_refused.load(Ordering::Relaxed),
            ..CountersSnapshot::default()
        };
        for (a, area) in Area::ALL.iter().enumerate() {
            let classes = CLASSES
                .iter()
                .enumerate()
                .map(|(c, class)| {
                    (
                        class.to_string(),
                        self.requests[a][c].load(Ordering::Relaxed),
                    )
                })
                .collect();
            snapshot.requests.insert(area.as_str().into(), classes);
            let bytes = self.bytes[a].load(Ordering::Relaxed);
            snapshot.bytes_served.insert(area.as_str().into(), bytes);
        }
        snapshot.routes = self
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.snapshot()))
            .collect();
        snapshot
    }

    /// Writes the counters if requests were counted since the last write.
    pub fn save_if_changed(&self) -> Result<(), StorageError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let snapshot = self.snapshot();
        let total = snapshot.total_requests();
        if total == self.saved.load(Ordering::Relaxed) && path.exists() {
            return Ok(());
        }
        save_json(path, &snapshot)?;
        self.saved.store(total, Ordering::Relaxed);
        Ok(())
    }
}

/// Writes `counters` every `every` while it lives, and once more when dropped.
pub struct Saver {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Saver {
    pub fn start(counters: Arc<Counters>, every: Duration) -> Saver {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let kept = counters.clone();
        let thread = std::thread::Builder::new()
            .name("airlock-counters".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    save_or_warn(&kept);
                }
            })
            .ok();
        Saver {
            stop: Some(stop),
            thread,
            counters,
        }
    }
}

fn save_or_warn(counters: &Counters) {
    if let Err(e) = counters.save_if_changed() {
        tracing::warn!(
            "{}: the request counters are kept in memory only",
            crate::hint::Chain(&e)
        );
    }
}

impl Drop for Saver {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        save_or_warn(&self.counters);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_survive_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let counters = Counters::load(dir.path());
        counters.request(Area::Apt, 200, 1000);
        counters.request(Area::Apt, 404, 20);
        counters.request(Area::Proxy, 304, 0);
        let route = counters.route("archive.ubuntu.com", "/ubuntu");
        route.hits.fetch_add(2, Ordering::Relaxed);
        for i in 0..25 {
            route.miss(&format!("/ubuntu/missing{i}"));
        }
        counters.save_if_changed().unwrap();
        let again = Counters::load(dir.path()).snapshot();
        assert_eq!(again, counters.snapshot());
        assert_eq!(again.requests["apt"]["2xx"], 1);
        assert_eq!(again.requests["apt"]["4xx"], 1);
        assert_eq!(again.bytes_served["apt"], 1020);
        let route = &again.routes["archive.ubuntu.com /ubuntu"];
        assert_eq!((route.hits, route.misses), (2, 25));
        assert_eq!(route.recent_misses.len(), RECENT);
        assert_eq!(route.recent_misses.last().unwrap(), "/ubuntu/missing24");
    }

    #[test]
    fn areas_by_first_segment() {
        assert_eq!(Area::of_path("/apt/local/dists"), Area::Apt);
        assert_eq!(Area::of_path("/images/streams/v1/index.json"), Area::Images);
        assert_eq!(Area::of_path("/v2/snaps/info/x"), Area::Snaps);
        assert_eq!(Area::of_path("/api/v1/snaps/download/x"), Area::Snaps);
        assert_eq!(Area::of_path("/"), Area::Other);
        assert_eq!(class_index(101), 0);
        assert_eq!(class_index(599), 4);
    }
}
