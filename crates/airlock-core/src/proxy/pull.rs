//! Pull-through (`[proxy] upstream = true`), for a gateway that can reach the upstreams: a
//! request the published tree cannot answer is fetched from the route's upstream, checked
//! against the signed index set it belongs to, stored by content, then served; the next
//! client gets it from the store.
//!
//! Freshness follows the InRelease, never a timer per file: a suite's InRelease is checked
//! upstream at most every [`FRESH`] (bursts of `apt update` share one check, as
//! apt-cacher-ng's FreshIndexMaxAge does), its signature verified with the mirror's keyring,
//! and every index is served only as that InRelease lists it (by name or by hash). Pool files
//! are served only when a verified Packages index lists them, with its size and SHA256: a
//! path no index lists is never fetched, so this is no open proxy either. Identical misses
//! wait for one download; nobody sees a byte before the whole file is verified. Image
//! streams follow the same rules with their signed documents (see [`stream`]).

mod stream;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

use crate::apt::mirror::upstream::{self, UpstreamSuite};
use crate::config::{AptMirrorConfig, Config};
use crate::hint::{Chain, Hint};
use crate::http::files::{self, SmallFiles, safe_segments};
use crate::net::{Expected, Http, HttpOptions, Url};
use crate::openpgp::Keyring;
use crate::storage::{ContentStore, Sha256, SiteLock, StorageError};

/// How long a verified InRelease is served before the upstream is asked again.
pub const FRESH: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Keyring(#[from] crate::openpgp::OpenPgpError),
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
}

impl Hint for PullError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            PullError::Keyring(e) => e.hint(),
            PullError::Net(e) => e.hint(),
        }
    }
}

/// The upstream side of every route that maps to an apt mirror.
pub struct PullThrough {
    http: Http,
    store: ContentStore,
    /// Decompressed indices while they are read.
    scratch: PathBuf,
    /// By route index; `None` for routes to trees that are neither mirrors nor the stream.
    sources: Vec<Option<Source>>,
    downloads: Mutex<HashMap<Sha256, Outcome>>,
    /// Small blobs served, kept in memory as the server keeps its small files.
    small_blobs: SmallFiles,
    /// The open journals as last read, and the blobs hashed since
    /// ([`PullThrough::check_unflushed`]).
    checked: Mutex<Checked>,
    data_dir: PathBuf,
}

/// What the pull-through knows of the open journals (storage/unflushed.rs).
#[derive(Default)]
struct Checked {
    /// What they list, read once per set of journals.
    unflushed: crate::storage::Unflushed,
    /// Blobs they list that were found whole.
    whole: HashSet<Sha256>,
}

/// What [`PullThrough::check_unflushed`] found of a blob an open journal lists.
enum Found {
    Whole,
    /// Not whole, and a writer runs: it is writing the blob.
    BeingWritten,
    /// Not whole, and no writer runs: the journals were checked (see [`Unwhole::Recovered`]).
    Recovered,
}

fn internal(message: String) -> Unwhole {
    Unwhole::Refused(Refusal(StatusCode::INTERNAL_SERVER_ERROR, message))
}

fn being_written() -> Refusal {
    Refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        "this file is being written to the store; try again in a moment".into(),
    )
}

/// A blob of an open journal that does not match its digest.
enum Unwhole {
    /// No writer was running: the pull-through checked the journals as the next writer would
    /// (damaged blobs removed); look the file up again.
    Recovered,
    Refused(Refusal),
}

impl std::fmt::Debug for PullThrough {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullThrough").finish_non_exhaustive()
    }
}

/// How a download in flight ended, once it has: what its waiters watch.
type Outcome = watch::Receiver<Option<Result<(), String>>>;

/// Removes a download from the table when its task ends.
struct Forget(Arc<PullThrough>, Sha256);

impl Drop for Forget {
    fn drop(&mut self) {
        self.0
            .downloads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.1);
    }
}

/// What a route pulls from.
enum Source {
    Archive(Box<Archive>),
    Stream(Box<stream::Stream>),
}

/// One upstream archive as seen through one route.
struct Archive {
    base: Url,
    mirror: AptMirrorConfig,
    keyring: Option<Keyring>,
    suites: Mutex<HashMap<String, Arc<Snapshot>>>,
    /// One InRelease check at a time; the others wait and take its result.
    refreshing: tokio::sync::Mutex<()>,
    /// Pool paths the learned Packages indices list.
    pool: Mutex<HashMap<String, Expected>>,
    /// Indices read into `pool`; one reader at a time, so nobody looks up a half-read index.
    learned: tokio::sync::Mutex<HashSet<Sha256>>,
}

/// A suite's verified state: the signed documents as stored, and what they list.
struct Snapshot {
    upstream: UpstreamSuite,
    documents: HashMap<&'static str, Expected>,
    checked: Instant,
}

/// Why a request cannot be answered, as the client should hear it.
#[derive(Debug)]
struct Refusal(StatusCode, String);

impl PullThrough {
    pub fn new(config: &Config) -> Result<PullThrough, PullError> {
        let http = Http::new(HttpOptions {
            jobs: config.sync.jobs,
            timeout: config.sync.timeout.0,
            retries: config.sync.retries,
            extra_roots: Vec::new(),
        })?;
        let mut sources = Vec::new();
        for route in &config.proxy.routes {
            let mirror = route
                .to
                .strip_prefix("/apt/")
                .and_then(|name| config.mirror(name));
            let images = config.images.as_ref().filter(|_| route.to == "/images");
            let source = match (mirror, images, Url::parse(&route.upstream)) {
                (_, Some(images), Ok(base)) => Some(Source::Stream(Box::new(stream::Stream::new(
                    base,
                    Keyring::load(&images.keyring)?,
                )))),
                (Some(mirror), _, Ok(base)) => {
                    let keyring = if mirror.keyring.is_empty() {
                        None
                    } else {
                        Some(Keyring::load(&mirror.keyring)?)
                    };
                    Some(Source::Archive(Box::new(Archive {
                        base,
                        mirror: mirror.clone(),
                        keyring,
                        suites: Mutex::default(),
                        refreshing: tokio::sync::Mutex::new(()),
                        pool: Mutex::default(),
                        learned: tokio::sync::Mutex::default(),
                    })))
                }
                _ => None,
            };
            sources.push(source);
        }
        let data = &config.site.data_dir;
        Ok(PullThrough {
            http,
            store: ContentStore::new(data),
            scratch: data.join("cache/pull-through"),
            sources,
            downloads: Mutex::default(),
            small_blobs: SmallFiles::default(),
            checked: Mutex::default(),
            data_dir: data.clone(),
        })
    }

    pub fn serves(&self, route: usize) -> bool {
        self.sources.get(route).is_some_and(Option::is_some)
    }

    /// Answers `path` (relative to the route's upstream) from the upstream, or says why not.
    pub async fn respond(
        self: &Arc<Self>,
        route: usize,
        path: &str,
        method: &Method,
        headers: &HeaderMap,
    ) -> Response {
        let Some(mut located) = self.locate_route(route, path).await else {
            return StatusCode::NOT_FOUND.into_response();
        };
        // Looked up again once after stale journals were checked (a damaged blob is gone
        // then, and fetched); checked again too, should a writer have started meanwhile.
        let mut looks = 0;
        while let Ok(expected) = located {
            looks += 1;
            match self.check_unflushed(expected).await {
                Ok(()) => break,
                Err(Unwhole::Recovered) if looks == 1 => {
                    located = self
                        .locate_route(route, path)
                        .await
                        .expect("the same route");
                }
                Err(Unwhole::Recovered) => located = Err(being_written()),
                Err(Unwhole::Refused(refusal)) => located = Err(refusal),
            }
        }
        match located {
            Ok(expected) => {
                let blob = self.store.blob_path(&expected.sha256);
                match files::open(blob.clone(), &self.small_blobs).await {
                    Ok(files::Found::File(reply)) => reply.respond(method, headers).await,
                    _ => {
                        tracing::error!("pull-through: {} vanished from the store", blob.display());
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "cannot read the stored file\n",
                        )
                            .into_response()
                    }
                }
            }
            Err(Refusal(status, message)) => (status, format!("{message}\n")).into_response(),
        }
    }

    /// The stored blob for `path` on `route`; `None` for a route this does not pull.
    async fn locate_route(
        self: &Arc<Self>,
        route: usize,
        path: &str,
    ) -> Option<Result<Expected, Refusal>> {
        Some(match self.sources.get(route) {
            Some(Some(Source::Archive(archive))) => self.locate(archive, path).await,
            Some(Some(Source::Stream(stream))) => self.locate_in_stream(stream, path).await,
            _ => return None,
        })
    }

    /// While a writer's journal is open (storage/unflushed.rs), a small blob it lists may be
    /// named before its bytes are whole, or damaged by a crash before its flush: hashed before
    /// it is served then (once per set of open journals). One that does not match: if no
    /// writer runs, its journals are stale (a writer was killed), so the pull-through checks
    /// them as the next writer would, under the site lock; if one runs, refused for now.
    async fn check_unflushed(&self, expected: Expected) -> Result<(), Unwhole> {
        if expected.size > crate::net::SMALL_DOWNLOAD {
            return Ok(());
        }
        let journals = self.store.unflushed_journals();
        let suspect = |checked: &Checked| {
            checked.unflushed.lists(&expected.sha256) && !checked.whole.contains(&expected.sha256)
        };
        let known = {
            let checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
            (checked.unflushed.journals == journals).then(|| suspect(&checked))
        };
        match known {
            Some(false) => return Ok(()),
            Some(true) => {}
            // Other writes: what they list is read once per set of journals, off the event
            // loop (a first sync's journal lists every file it downloads).
            None => {
                let store = self.store.clone();
                let unflushed = tokio::task::spawn_blocking(move || store.unflushed())
                    .await
                    .map_err(|e| internal(Chain(&e).to_string()))?
                    .map_err(|e| internal(format!("cannot check the store: {}", Chain(&e))))?;
                let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
                *checked = Checked {
                    unflushed,
                    whole: HashSet::new(),
                };
                if !suspect(&checked) {
                    return Ok(());
                }
            }
        }
        let (store, data_dir) = (self.store.clone(), self.data_dir.clone());
        let found = tokio::task::spawn_blocking(move || -> Result<Found, StorageError> {
            let blob = store.blob_path(&expected.sha256);
            let whole = std::fs::metadata(&blob).is_ok_and(|m| m.len() == expected.size)
                && Sha256::of_file(&blob).is_ok_and(|d| d == expected.sha256);
            if whole {
                return Ok(Found::Whole);
            }
            let Some(_lock) = SiteLock::try_acquire(&data_dir)? else {
                return Ok(Found::BeingWritten);
            };
            let removed = store.recover_unflushed(&store.unflushed()?, &|_| ())?;
            tracing::warn!(
                "pull-through: checked the blobs a stopped writer left unflushed: {removed} damaged, removed"
            );
            Ok(Found::Recovered)
        })
        .await;
        match found {
            Ok(Ok(Found::Whole)) => {
                let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
                if checked.unflushed.journals == journals {
                    checked.whole.insert(expected.sha256);
                }
                Ok(())
            }
            Ok(Ok(Found::Recovered)) => Err(Unwhole::Recovered),
            Ok(Ok(Found::BeingWritten)) => Err(Unwhole::Refused(being_written())),
            Ok(Err(e)) => Err(internal(format!("cannot check the store: {}", Chain(&e)))),
            Err(e) => Err(internal(Chain(&e).to_string())),
        }
    }

    /// The stored blob for `path`, fetched and verified first when needed.
    async fn locate(self: &Arc<Self>, archive: &Archive, path: &str) -> Result<Expected, Refusal> {
        let segments = safe_segments(path)
            .ok_or_else(|| Refusal(StatusCode::BAD_REQUEST, "invalid path".into()))?;
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        match segments.as_slice() {
            [
                "dists",
                suite,
                document @ ("InRelease" | "Release" | "Release.gpg"),
            ] => {
                let mut snapshot = self.snapshot(archive, suite, true).await?;
                let gone = |s: &Snapshot| {
                    s.documents
                        .get(document)
                        .is_some_and(|e| !self.store.contains(&e.sha256))
                };
                // Removed by `airlock gc` (stored longer ago than the grace period, and no
                // tree names it): fetched and verified again.
                if gone(&snapshot) {
                    archive.forget(suite);
                    snapshot = self.snapshot(archive, suite, true).await?;
                }
                snapshot.documents.get(document).copied().ok_or_else(|| {
                    Refusal(
                        StatusCode::NOT_FOUND,
                        format!("the upstream has no {document} for {suite}"),
                    )
                })
            }
            ["dists", suite, rest @ ..] => {
                let snapshot = self.snapshot(archive, suite, false).await?;
                let wanted = rest.join("/");
                let Some((listed_path, expected)) = listed(&snapshot.upstream, &wanted) else {
                    // A by-hash name of an index an earlier InRelease listed (a client that
                    // updated just before the refresh): its content is what its name says.
                    return self.stored_by_hash(&wanted).ok_or_else(|| {
                        Refusal(
                            StatusCode::NOT_FOUND,
                            format!("dists/{suite}/{wanted} is not listed in the upstream's InRelease of {suite}"),
                        )
                    });
                };
                let url = upstream::url(&archive.base, &format!("dists/{suite}/{wanted}"));
                self.obtain(expected, &url).await?;
                if is_packages(&listed_path)
                    && let Err(Refusal(_, e)) =
                        self.learn(archive, &snapshot, &listed_path, expected).await
                {
                    // The client gets its verified index all the same; pool files it lists
                    // will be refused until an index that reads is learned.
                    tracing::warn!("pull-through: cannot read {listed_path} of {suite}: {e}");
                }
                Ok(expected)
            }
            _ => {
                let wanted = segments.join("/");
                let expected = match archive.pool_entry(&wanted) {
                    Some(expected) => expected,
                    None => {
                        // Not learned yet (a restart, or a client whose indices were current):
                        // read the indices of the mirrored suites, then look again.
                        self.learn_all(archive).await?;
                        archive.pool_entry(&wanted).ok_or_else(|| {
                            Refusal(
                                StatusCode::NOT_FOUND,
                                format!(
                                    "{wanted} is not listed in any Packages index of {} ({}): only listed files are fetched",
                                    archive.base,
                                    archive.suites()
                                ),
                            )
                        })?
                    }
                };
                let url = upstream::url(&archive.base, &wanted);
                self.obtain(expected, &url).await?;
                Ok(expected)
            }
        }
    }

    /// A `.../by-hash/SHA256/HEX` file already in the store.
    fn stored_by_hash(&self, path: &str) -> Option<Expected> {
        let (_, hex) = path.split_once("/by-hash/SHA256/")?;
        let sha256 = Sha256::from_hex(hex)?;
        let size = std::fs::metadata(self.store.blob_path(&sha256)).ok()?.len();
        Some(Expected { size, sha256 })
    }

    /// The verified state of `suite`; with `fresh`, re-checked upstream if older than FRESH.
    async fn snapshot(
        &self,
        archive: &Archive,
        suite: &str,
        fresh: bool,
    ) -> Result<Arc<Snapshot>, Refusal> {
        if !archive.mirror.suites.iter().any(|s| s.as_str() == suite) {
            return Err(Refusal(
                StatusCode::NOT_FOUND,
                format!(
                    "suite {suite} is not mirrored from {} (suites: {})",
                    archive.base,
                    archive.suites()
                ),
            ));
        }
        let current = || {
            archive
                .suites
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(suite)
                .cloned()
        };
        let usable = |s: &Arc<Snapshot>| !fresh || s.checked.elapsed() < FRESH;
        if let Some(snapshot) = current().filter(usable) {
            return Ok(snapshot);
        }
        let _one_at_a_time = archive.refreshing.lock().await;
        let previous = current();
        if let Some(snapshot) = previous.clone().filter(usable) {
            return Ok(snapshot);
        }
        let synced_before = previous
            .as_ref()
            .and_then(|p| p.upstream.release.date)
            .map(|d| d.as_second());
        let fetched = upstream::fetch_release(
            &self.http,
            &archive.base,
            &archive.mirror,
            archive.keyring.as_ref(),
            suite,
            jiff::Timestamp::now(),
            synced_before,
        )
        .await;
        let upstream = match (fetched, previous) {
            (Ok(upstream), _) => upstream,
            (Err(e), Some(previous)) => {
                // Keep serving the last verified state (the upstream is down, or replays an
                // older one); ask again after FRESH.
                tracing::warn!(
                    "pull-through: {}; serving the state verified before",
                    Chain(&e)
                );
                let kept = Arc::new(Snapshot {
                    upstream: previous.upstream.clone(),
                    documents: previous.documents.clone(),
                    checked: Instant::now(),
                });
                archive.insert(suite, kept.clone());
                return Ok(kept);
            }
            (Err(e), None) => {
                let e = Chain(&e).to_string();
                tracing::warn!("pull-through: {e}");
                return Err(Refusal(StatusCode::BAD_GATEWAY, e));
            }
        };
        let mut documents = HashMap::new();
        for (name, bytes) in [
            ("InRelease", &upstream.inrelease),
            ("Release", &upstream.release_file),
            ("Release.gpg", &upstream.release_gpg),
        ] {
            if let Some(bytes) = bytes {
                documents.insert(name, self.store_bytes(bytes.clone()).await?);
            }
        }
        let snapshot = Arc::new(Snapshot {
            upstream,
            documents,
            checked: Instant::now(),
        });
        archive.insert(suite, snapshot.clone());
        Ok(snapshot)
    }

    /// Stores a verified document, off the event loop (it flushes to disk).
    async fn store_bytes(&self, bytes: bytes::Bytes) -> Result<Expected, Refusal> {
        let expected = Expected {
            size: bytes.len() as u64,
            sha256: Sha256::of(&bytes),
        };
        if self.store.contains(&expected.sha256) {
            return Ok(expected);
        }
        let store = self.store.clone();
        let stored = tokio::task::spawn_blocking(move || -> Result<(), String> {
            // A file of its own: another route (security.ubuntu.com and archive.ubuntu.com
            // share suites) may store the same document at the same moment.
            let dir = store.partial_named("");
            fs_err::create_dir_all(&dir).map_err(|e| Chain(&e).to_string())?;
            let mut temp = tempfile::Builder::new()
                .prefix(".pull-")
                .tempfile_in(&dir)
                .map_err(|e| Chain(&e).to_string())?;
            std::io::Write::write_all(&mut temp, &bytes).map_err(|e| Chain(&e).to_string())?;
            let (_, path) = temp.keep().map_err(|e| Chain(&e).to_string())?;
            store
                .adopt_now(&path, &expected.sha256)
                .map(drop)
                .map_err(|e| Chain(&e).to_string())
        })
        .await
        .map_err(|e| Chain(&e).to_string())
        .and_then(|r| r);
        stored.map_err(|e| {
            Refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot store: {e}"),
            )
        })?;
        Ok(expected)
    }

    /// Makes sure the store holds `expected`: one download per digest however many clients
    /// ask at once; the others wait for its outcome.
    async fn obtain(self: &Arc<Self>, expected: Expected, url: &Url) -> Result<(), Refusal> {
        if self.store.contains(&expected.sha256) {
            return Ok(());
        }
        let mut outcome = {
            let mut downloads = self.downloads.lock().unwrap_or_else(|e| e.into_inner());
            // Again under the lock: a download may have finished since the first look.
            if self.store.contains(&expected.sha256) {
                return Ok(());
            }
            match downloads.get(&expected.sha256) {
                Some(waiting) => waiting.clone(),
                None => {
                    let (done, outcome) = watch::channel(None);
                    downloads.insert(expected.sha256, outcome.clone());
                    // Its own task: a client that goes away does not cancel the others' download.
                    let (this, url) = (self.clone(), url.clone());
                    tokio::spawn(async move {
                        // Forgotten however the task ends, a panic included: the next
                        // request then tries again.
                        let forget = Forget(this.clone(), expected.sha256);
                        let result = this.download(expected, &url).await;
                        if let Err(e) = &result {
                            tracing::warn!("pull-through: {e}");
                        }
                        drop(forget);
                        let _ = done.send(Some(result));
                    });
                    outcome
                }
            }
        };
        let result = outcome
            .wait_for(Option::is_some)
            .await
            .map(|r| r.clone().expect("waited for it"))
            .unwrap_or_else(|_| Err("the download task stopped".into()));
        result.map_err(|e| Refusal(StatusCode::BAD_GATEWAY, e))
    }

    async fn download(&self, expected: Expected, url: &Url) -> Result<(), String> {
        // Not the sync's partial file: a sync running meanwhile must not write into this one.
        let partial = self
            .store
            .partial_named(&format!("pull-{}", expected.sha256.to_hex()));
        upstream::create_parent(&partial).map_err(|e| Chain(&e).to_string())?;
        self.http
            .download(url, expected, &partial, None)
            .await
            .map_err(|e| format!("refused {e}"))?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.adopt_now(&partial, &expected.sha256))
            .await
            .map_err(|e| Chain(&e).to_string())?
            .map_err(|e| Chain(&e).to_string())?;
        tracing::info!(
            "pull-through: stored {url} ({} bytes, verified)",
            expected.size
        );
        Ok(())
    }

    /// Reads a stored Packages index into the archive's pool table.
    async fn learn(
        &self,
        archive: &Archive,
        snapshot: &Snapshot,
        listed_path: &str,
        expected: Expected,
    ) -> Result<(), Refusal> {
        let mut learned = archive.learned.lock().await;
        if learned.contains(&expected.sha256) {
            return Ok(());
        }
        let plain_name = listed_path.trim_end_matches(".xz").trim_end_matches(".gz");
        let plain = snapshot.upstream.release.files.get(plain_name).cloned();
        let blob = self.store.blob_path(&expected.sha256);
        let (scratch, name) = (self.scratch.clone(), listed_path.to_string());
        let url = upstream::url(
            &archive.base,
            &format!("dists/{}/{listed_path}", snapshot.upstream.suite),
        );
        let read = tokio::task::spawn_blocking(move || {
            upstream::read_index(&blob, &name, plain.as_ref(), false, &scratch, &url)
                .map(|(_, records)| records)
        })
        .await
        .map_err(|e| Chain(&e).to_string())
        .and_then(|r| r.map_err(|e| Chain(&e).to_string()));
        let records = read.map_err(|e| Refusal(StatusCode::BAD_GATEWAY, e))?;
        learned.insert(expected.sha256);
        let mut pool = archive.pool.lock().unwrap_or_else(|e| e.into_inner());
        for record in records {
            pool.insert(
                record.filename().to_string(),
                Expected {
                    size: record.size,
                    sha256: record.sha256,
                },
            );
        }
        Ok(())
    }

    /// Fetches and reads the Packages indices of every mirrored suite, component and
    /// architecture not read yet (the smallest compression the upstream lists).
    async fn learn_all(self: &Arc<Self>, archive: &Archive) -> Result<(), Refusal> {
        for suite in &archive.mirror.suites {
            let snapshot = self.snapshot(archive, suite.as_str(), false).await?;
            for component in &archive.mirror.components {
                for arch in &archive.mirror.architectures {
                    let dir = format!("{component}/binary-{arch}/Packages");
                    let best = [".xz", ".gz", ""].iter().find_map(|ext| {
                        let path = format!("{dir}{ext}");
                        let listed = snapshot.upstream.release.files.get(&path)?;
                        Some((path, expected_of(listed)?))
                    });
                    let Some((path, expected)) = best else {
                        continue;
                    };
                    if archive.learned.lock().await.contains(&expected.sha256) {
                        continue;
                    }
                    let (url, _) = upstream::listed_url(
                        &archive.base,
                        &snapshot.upstream,
                        &path,
                        &snapshot.upstream.release.files[&path],
                    );
                    self.obtain(expected, &url).await?;
                    self.learn(archive, &snapshot, &path, expected).await?;
                }
            }
        }
        Ok(())
    }
}

impl Archive {
    /// The mirrored suites, for messages.
    fn suites(&self) -> String {
        let names: Vec<&str> = self.mirror.suites.iter().map(|s| s.as_str()).collect();
        names.join(", ")
    }

    fn forget(&self, suite: &str) {
        self.suites
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(suite);
    }

    fn insert(&self, suite: &str, snapshot: Arc<Snapshot>) {
        self.suites
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(suite.to_string(), snapshot);
    }

    fn pool_entry(&self, path: &str) -> Option<Expected> {
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .copied()
    }
}

/// What the InRelease says of `path` under `dists/SUITE/`: by its name, or by its digest for
/// a `DIR/by-hash/SHA256/HEX` or `.../SHA512/HEX` path (apt asks for the strongest listed),
/// with the name it is listed under. Downloads are always checked by size and SHA256.
fn listed(suite: &UpstreamSuite, path: &str) -> Option<(String, Expected)> {
    let files = &suite.release.files;
    if let Some(listed) = files.get(path) {
        return Some((path.to_string(), expected_of(listed)?));
    }
    let (dir, by_hash) = path.split_once("/by-hash/")?;
    let (algorithm, hex) = by_hash.split_once('/')?;
    let matches = |listed: &crate::apt::release::ListedFile| match algorithm {
        "SHA256" => listed.sha256.is_some_and(|d| d.to_hex() == hex),
        "SHA512" => listed.sha512.is_some_and(|d| hex::encode(d) == hex),
        _ => false,
    };
    files.iter().find_map(|(name, listed)| {
        let in_dir = name.rsplit_once('/').is_some_and(|(d, _)| d == dir);
        if in_dir && matches(listed) {
            Some((name.clone(), expected_of(listed)?))
        } else {
            None
        }
    })
}

/// What a download of a listed file must be: its size and SHA256 (None if only SHA512 is given).
fn expected_of(listed: &crate::apt::release::ListedFile) -> Option<Expected> {
    Some(Expected {
        size: listed.size,
        sha256: listed.sha256?,
    })
}

fn is_packages(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(name, "Packages" | "Packages.gz" | "Packages.xz")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apt::release::ReleaseFile;

    #[test]
    fn indices_are_found_by_name_or_by_either_hash() {
        let xz = Sha256::of(b"xz");
        let sha512 = "ab".repeat(64);
        let text = format!(
            "Suite: noble\nAcquire-By-Hash: yes\nSHA256:\n {} 2 main/binary-amd64/Packages.xz\n {} 5 main/binary-arm64/Packages.xz\nSHA512:\n {sha512} 2 main/binary-amd64/Packages.xz\n",
            xz.to_hex(),
            Sha256::of(b"other").to_hex()
        );
        let release = ReleaseFile::parse(&text).unwrap();
        let suite = UpstreamSuite {
            suite: "noble".into(),
            release,
            inrelease: None,
            release_file: None,
            release_gpg: None,
            digest: Sha256::of(text.as_bytes()),
            signer: None,
        };
        let want = Some((
            "main/binary-amd64/Packages.xz".to_string(),
            Expected {
                size: 2,
                sha256: xz,
            },
        ));
        assert_eq!(listed(&suite, "main/binary-amd64/Packages.xz"), want);
        assert_eq!(
            listed(
                &suite,
                &format!("main/binary-amd64/by-hash/SHA256/{}", xz.to_hex())
            ),
            want
        );
        assert_eq!(
            listed(
                &suite,
                &format!("main/binary-amd64/by-hash/SHA512/{sha512}")
            ),
            want
        );
        // The right digest under another folder, unknown names, unknown algorithms: no.
        assert_eq!(
            listed(
                &suite,
                &format!("main/binary-arm64/by-hash/SHA256/{}", xz.to_hex())
            ),
            None
        );
        assert_eq!(listed(&suite, "main/binary-amd64/Packages"), None);
        assert_eq!(
            listed(
                &suite,
                &format!("main/binary-amd64/by-hash/MD5Sum/{}", xz.to_hex())
            ),
            None
        );
        assert!(is_packages("main/binary-amd64/Packages.gz"));
        assert!(!is_packages("main/i18n/Translation-en.xz"));
    }
}
