//! `airlock verify`: proof that what is served is whole.
//!
//! - [`offline`]: the data folder without a server, for after a disk or copy mishap: every
//!   blob of the content store re-hashed (in parallel, streaming) against its name, every file
//!   a published tree names there and of the right content, every snap blob present.
//! - [`online`]: what clients would do, over HTTP against the running server ([`apt`],
//!   [`images`], [`snaps`], the upstream names and what DNS answers for them), plus the site's
//!   own key, certificate and disk.
//!
//! Both keep going after a failure and report all of them; damage is a failed check, never a
//! reason to stop.

pub mod apt;
pub mod images;
mod proxy;
mod record;
mod seen;
pub mod snaps;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use reqwest::Url;
use serde::Serialize;

pub use crate::storage::verify_run::{AreaResult, Failure, LastRun, Mode};

use crate::hint::Chain;
use crate::net::{Checksum, Http};
use crate::report::{Reporter, Unit};
use crate::site::Site;
use crate::snap::catalog::Catalog;
use crate::storage::history::disk_room;
use crate::storage::{ContentStore, Sha256, TreeSet, UnreadFolder};
use crate::util::parallel_map;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub areas: Vec<AreaResult>,
    pub failures: Vec<Failure>,
    /// Passed, but needs attention soon (a Release about to expire, a disk filling up).
    pub warnings: Vec<Failure>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// An area whose checks could not start: one failure says why.
    fn broken(
        &mut self,
        area: &str,
        what: impl Into<String>,
        expected: &str,
        got: impl Into<String>,
    ) {
        self.area(
            area,
            1,
            vec![Failure::new(area, what, expected, got)],
            Vec::new(),
        );
    }

    fn area(&mut self, area: &str, checked: usize, failures: Vec<Failure>, warnings: Vec<Failure>) {
        self.areas.push(AreaResult {
            area: area.to_string(),
            checked,
            failed: failures.len(),
        });
        self.failures.extend(failures);
        self.warnings.extend(warnings);
    }
}

/// How deep the online checks go.
#[derive(Debug, Clone, Copy)]
pub struct Depth {
    /// Every pool file, image item and snap, not a sample.
    pub full: bool,
    /// Files fetched per area when not `full`.
    pub sample: usize,
    /// A Valid-Until closer than this is a warning.
    pub horizon: jiff::SignedDuration,
}

impl Depth {
    /// Keeps a random sample of `items` unless `full`.
    fn sample<T>(&self, items: &mut Vec<T>) {
        if !self.full {
            items.shuffle(&mut rand::thread_rng());
            items.truncate(self.sample);
        }
    }
}

/// Fetches, in parallel, each item's URL, checking size and digest while streaming and
/// keeping nothing; returns each item with what went wrong, if anything.
/// Progress (bytes) goes to `reporter` under `label`.
async fn fetch_all<T: Send + 'static>(
    http: &Http,
    items: Vec<(T, Url, u64, Checksum)>,
    label: &str,
    reporter: &dyn Reporter,
) -> Vec<(T, Url, Result<(), String>)> {
    let total = items.iter().map(|(_, _, size, _)| size).sum();
    let task = reporter.start(label, Some(total), Unit::Bytes);
    let mut downloads = tokio::task::JoinSet::new();
    for (item, url, size, checksum) in items {
        let http = http.clone();
        downloads.spawn(async move {
            let result = http
                .check_served(&url, size, checksum)
                .await
                .map_err(|e| Chain(&e).to_string());
            (item, url, size, result)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = downloads.join_next().await {
        match joined {
            Ok((item, url, size, result)) => {
                reporter.advance(task, size);
                results.push((item, url, result));
            }
            // A task that panicked is a bug, but the other checks still count.
            Err(e) => tracing::error!("a verify download failed to run: {e}"),
        }
    }
    reporter.finish(task);
    results
}

/// One area's checks as they run: how many ran, which failed, which warn.
struct Findings<'a> {
    area: &'a str,
    checked: usize,
    failures: Vec<Failure>,
    /// Checks that passed but need attention soon.
    warnings: Vec<Failure>,
}

impl<'a> Findings<'a> {
    fn new(area: &'a str) -> Findings<'a> {
        Findings {
            area,
            checked: 0,
            failures: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Counts one check (a failure of it is told with [`Findings::fail`]).
    fn count(&mut self) {
        self.checked += 1;
    }

    fn fail(
        &mut self,
        what: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) {
        self.failures
            .push(Failure::new(self.area, what, expected, got));
    }

    /// Fetches each file (`what` names it in a failure) as clients would, one check each: a
    /// file not served whole, with its size and digest, is a failure.
    async fn served_whole(
        &mut self,
        run: &Run<'_>,
        files: Vec<(String, Url, u64, Checksum)>,
        label: &str,
    ) {
        let items = files
            .into_iter()
            .map(|(what, url, size, checksum)| ((what, size, checksum), url, size, checksum))
            .collect();
        for ((what, size, checksum), _, result) in
            fetch_all(run.http, items, label, run.reporter).await
        {
            self.count();
            if let Err(e) = result {
                let digest = match checksum {
                    Checksum::Sha256(sha256) => format!("sha256 {sha256}"),
                    Checksum::Sha3_384(sha3) => format!("sha3-384 {}", hex::encode(sha3)),
                };
                self.fail(what, format!("{size} bytes, {digest}"), e);
            }
        }
    }

    /// Adds the area to `report`.
    fn report(self, report: &mut Report) {
        report.area(self.area, self.checked, self.failures, self.warnings);
    }
}

/// Where online checks put what they fetch: under the store's temp folder (the site's disk,
/// which has room for what it serves), not /tmp.
fn scratch(site: &Site) -> Result<tempfile::TempDir, String> {
    let dir = site.store().temp_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    tempfile::tempdir_in(&dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Checks the data folder; keeps going after a failure and reports all of them. The run is
/// recorded ([`LastRun`]).
pub fn offline(site: &Site, reporter: &dyn Reporter) -> Report {
    let report = offline_checks(site, reporter);
    keep(site, Mode::Offline, &[], &report, reporter);
    report
}

/// Records a run; a failure to is a warning, the checks themselves ran.
fn keep(site: &Site, mode: Mode, only: &[String], report: &Report, reporter: &dyn Reporter) {
    if let Err(e) = LastRun::record(site.data_dir(), mode, only, report) {
        reporter.warn(&format!(
            "{}: the status page will not show this verify run",
            crate::hint::Chain(&e)
        ));
    }
}

fn offline_checks(site: &Site, reporter: &dyn Reporter) -> Report {
    let data = site.data_dir();
    let store = site.store();
    let mut report = Report::default();

    let (blobs, mut failures) = store_blobs(&store);
    let total = blobs.iter().map(|(_, size)| size).sum();
    let task = reporter.start("re-hashing the content store", Some(total), Unit::Bytes);
    // Blobs a writer wrote in place and has not flushed yet (or was stopped before): being
    // written, or for the next writer to check (storage/unflushed.rs); not the disk's fault.
    // (A journal that cannot be read lists nothing here: the next writer fails on it.)
    let unflushed = store.unflushed().unwrap_or_default();
    let mut warnings = Vec::new();
    for (failure, journaled) in parallel_map(&blobs, |(path, size)| {
        let result = rehash(path, &store);
        reporter.advance(task, *size);
        let journaled = || {
            path.file_name()
                .and_then(|n| Sha256::from_hex(&n.to_string_lossy()))
                .is_some_and(|digest| unflushed.lists(&digest))
        };
        result.map(|failure| (failure, journaled()))
    })
    .into_iter()
    .flatten()
    {
        if journaled {
            warnings.push(Failure {
                got: format!(
                    "{} (written in place by a writer that has not flushed it yet: the next writer checks it)",
                    failure.got
                ),
                ..failure
            });
        } else {
            failures.push(failure);
        }
    }
    reporter.finish(task);
    report.area("store", blobs.len(), failures, warnings);

    let mut trees: Vec<(String, TreeSet)> = TreeSet::published_apt_names(data)
        .into_iter()
        .map(|name| (format!("apt/{name}"), TreeSet::apt(data, &name)))
        .collect();
    if data.join("public/images").exists() {
        trees.push(("images".into(), TreeSet::area(data, "images")));
    }
    // Listed once: a site that never dropped a blob has none.
    let dropped: std::collections::HashSet<Sha256> =
        store.dropped().unwrap_or_default().into_iter().collect();
    for (area, tree) in trees {
        let manifest = match tree.current() {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => {
                report.broken(
                    &area,
                    "the tree's manifest",
                    "readable",
                    Chain(&e).to_string(),
                );
                continue;
            }
        };
        let public = data.join("public").join(&area);
        // Files a writer pushed and dropped ([storage] keep_pushed) are checked where they
        // are served: `airlock verify --url` at a frontend.
        let entries: Vec<(&String, &crate::storage::Entry)> = manifest
            .entries
            .iter()
            .filter(|(path, entry)| !dropped.contains(&entry.sha256) || public.join(path).exists())
            .collect();
        let failures: Vec<Failure> = parallel_map(&entries, |(path, entry)| {
            served_file(&area, &public.join(path), entry, &store)
        })
        .into_iter()
        .flatten()
        .collect();
        report.area(&area, entries.len(), failures, Vec::new());
    }

    let catalog = match Catalog::load(data) {
        Ok(c) => c,
        Err(e) => {
            report.broken(
                "snaps",
                Catalog::path(data).display().to_string(),
                "a readable catalog",
                Chain(&e).to_string(),
            );
            return report;
        }
    };
    let mut wanted: Vec<(String, String)> = Vec::new();
    for (name, entry) in &catalog.snaps {
        for revision in entry.revisions.values() {
            wanted.push((
                format!("snap {name} revision {}", revision.revision),
                revision.sha256.clone(),
            ));
            if let Some(icon) = &revision.icon {
                wanted.push((
                    format!("icon of {name} revision {}", revision.revision),
                    icon.sha256.clone(),
                ));
            }
        }
    }
    for (reference, stored) in &catalog.assertions {
        wanted.push((format!("assertion {reference}"), stored.sha256.clone()));
    }
    if !wanted.is_empty() {
        let failures = wanted
            .iter()
            .filter(|(_, sha256)| !Sha256::from_hex(sha256).is_some_and(|d| store.contains(&d)))
            .map(|(what, sha256)| {
                Failure::new(
                    "snaps",
                    what.clone(),
                    format!("blob {sha256}"),
                    "missing from the store",
                )
            })
            .collect();
        report.area("snaps", wanted.len(), failures, Vec::new());
    }
    report
}

/// A published file: there, and the store's blob itself (a hard link); a copy (store and
/// trees on different filesystems, or links broken by a copy of the data folder) is re-hashed.
fn served_file(
    area: &str,
    served: &Path,
    entry: &crate::storage::Entry,
    store: &ContentStore,
) -> Option<Failure> {
    let blob_path = store.blob_path(&entry.sha256);
    let fail = |got: String| {
        Some(Failure::new(
            area,
            served.display().to_string(),
            format!("{} bytes, blob {}", entry.size, entry.sha256),
            got,
        ))
    };
    let Ok(file) = std::fs::metadata(served) else {
        return fail("missing from the tree".into());
    };
    let Ok(blob) = std::fs::metadata(&blob_path) else {
        return fail("its blob is missing from the store".into());
    };
    if file.len() != entry.size {
        return fail(format!("{} bytes", file.len()));
    }
    if (file.dev(), file.ino()) == (blob.dev(), blob.ino()) {
        return None; // the blob is re-hashed with the store
    }
    match Sha256::of_file(served) {
        Ok(d) if d == entry.sha256 => None,
        Ok(d) => fail(format!("a copy whose sha256 is {d}")),
        Err(e) => fail(format!("unreadable: {e}")),
    }
}

/// The areas an online verify can be limited to.
pub const AREAS: [&str; 6] = ["site", "apt", "images", "snaps", "proxy", "dns"];

/// Checks, over HTTP at `base`, what the server serves, as clients fetch it.
/// `resolver`: the DNS server the site's machines use, to check the overridden names with
/// (default: this machine's). `only`: some of [`AREAS`] (none: all); the server itself is
/// always checked. The run is recorded ([`LastRun`]).
pub async fn online(
    site: &Site,
    base: &str,
    depth: Depth,
    resolver: Option<std::net::SocketAddr>,
    only: &[String],
    reporter: &dyn Reporter,
) -> Result<Report, crate::net::NetError> {
    let report = online_checks(site, base, depth, resolver, only, reporter).await?;
    keep(site, Mode::Online, only, &report, reporter);
    Ok(report)
}

async fn online_checks(
    site: &Site,
    base: &str,
    depth: Depth,
    resolver: Option<std::net::SocketAddr>,
    only: &[String],
    reporter: &dyn Reporter,
) -> Result<Report, crate::net::NetError> {
    let wants = |area: &str| only.is_empty() || only.iter().any(|a| a == area);
    let sync = &site.config.sync;
    let http = Http::new(crate::net::HttpOptions {
        jobs: sync.jobs,
        timeout: sync.timeout.0,
        retries: 0,
        extra_roots: Vec::new(),
    })?;
    let base = format!("{}/", base.trim_end_matches('/'));
    let base =
        Url::parse(&base).map_err(|e| crate::net::NetError::Setup(format!("{base}: {e}")))?;
    let mut report = Report::default();
    let scratch = match scratch(site) {
        Ok(dir) => dir,
        Err(e) => {
            report.broken("site", "a scratch folder in the store", "writable", e);
            return Ok(report);
        }
    };
    if wants("site") {
        site_checks(site, &mut report);
    }
    // DNS does not need the server.
    if wants("dns") {
        proxy::check_dns(site, resolver, &mut report).await;
    }
    if !server_check(site, &http, &base, &mut report).await {
        return Ok(report);
    }
    let run = Run {
        http: &http,
        base: &base,
        depth,
        scratch: scratch.path(),
        reporter,
        seen: seen::Seen::load(site.data_dir()),
    };
    if wants("apt") {
        apt::check(site, &run, &mut report).await;
        // Only a run that listed the pool files may replace the record of them.
        run.seen.save();
    }
    if wants("images") {
        images::check(site, &run, &mut report).await;
    }
    if wants("snaps") {
        snaps::check(site, &run, &mut report).await;
    }
    if wants("proxy") {
        proxy::check(site, &run, &mut report).await;
    }
    Ok(report)
}

/// What every online check works with.
struct Run<'a> {
    http: &'a Http,
    base: &'a Url,
    depth: Depth,
    scratch: &'a Path,
    reporter: &'a dyn Reporter,
    /// The pool files listed at the last verify, and those listed now.
    seen: seen::Seen,
}

/// A certificate or signing key closer than this to its end is a warning.
const CERTIFICATE_NOTICE: jiff::SignedDuration = jiff::SignedDuration::from_hours(30 * 24);
/// Clocks further apart than this make signatures look expired or from the future.
const CLOCK_SKEW: i64 = 300;

/// The server answers, and its clock agrees with this machine's (from its Date header); the
/// other ports the site configures listen. False when the server does not answer at all: one
/// failure says so, rather than one per check.
async fn server_check(site: &Site, http: &Http, base: &Url, report: &mut Report) -> bool {
    let what = format!("the clock of {base}");
    let mut failures = match http.server_date(base).await {
        Ok(Some(date)) => {
            let skew = date.as_second() - jiff::Timestamp::now().as_second();
            if skew.abs() > CLOCK_SKEW {
                vec![Failure::new(
                    "server",
                    what,
                    "within 5 minutes of this machine's",
                    format!(
                        "{skew:+} s off ({date}): Valid-Until and signature dates are judged by it"
                    ),
                )]
            } else {
                Vec::new()
            }
        }
        Ok(None) => vec![Failure::new("server", what, "a Date header", "none")],
        Err(e) => {
            report.broken(
                "server",
                base.to_string(),
                "a server answering (is airlock serve running? --url names another)",
                Chain(&e).to_string(),
            );
            return false;
        }
    };
    let (checked, closed) = listeners(site).await;
    failures.extend(closed);
    report.area("server", 1 + checked, failures, Vec::new());
    true
}

/// The ports the site configures besides HTTP listen: the HTTPS side accepts connections, the
/// DNS responder answers for a routed name. Returns how many were checked and the failures.
async fn listeners(site: &Site) -> (usize, Vec<Failure>) {
    let config = &site.config;
    let (mut checked, mut failures) = (0, Vec::new());
    let wait = proxy::DNS_TIMEOUT;
    if let Some(target) = config.site.tls.as_ref().and_then(|t| dial_target(t.listen)) {
        checked += 1;
        let got = match tokio::time::timeout(wait, tokio::net::TcpStream::connect(target)).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(Chain(&e).to_string()),
            Err(_) => Some(format!("no answer within {} s", wait.as_secs())),
        };
        if let Some(got) = got {
            failures.push(Failure::new(
                "server",
                format!("the HTTPS port {target} (tls_listen)"),
                "listening (tls_cert is set: airlock serve opens it)",
                got,
            ));
        }
    }
    let names = config.overridden_names();
    if let (Some(target), Some(name)) = (config.dns.listen.and_then(dial_target), names.first()) {
        checked += 1;
        if let Err(got) = proxy::query(target, name).await {
            failures.push(Failure::new(
                "server",
                format!("the DNS responder {target} ([dns] listen), asked for {name}"),
                "an answer",
                got,
            ));
        }
    }
    (checked, failures)
}

/// Where this machine reaches a listen address: a wildcard on loopback; port 0 (tests) is
/// whatever the server got, so nothing to dial.
fn dial_target(listen: std::net::SocketAddr) -> Option<std::net::SocketAddr> {
    let mut target = listen;
    if target.port() == 0 {
        return None;
    }
    if target.ip().is_unspecified() {
        target.set_ip(match target {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Some(target)
}

/// The site itself: its signing key and certificate load, and its disk has room.
fn site_checks(site: &Site, report: &mut Report) {
    let (mut failures, mut warnings) = (Vec::new(), Vec::new());
    let mut checked = 1;
    match site.signing_key().map(|k| k.expires()) {
        Err(e) => failures.push(Failure::new(
            "site",
            "the signing key",
            "loadable",
            Chain(&e).to_string(),
        )),
        // Every Release and stream signed with it becomes unverifiable on that day.
        Ok(Some(until)) if until < jiff::Timestamp::now() => failures.push(Failure::new(
            "site",
            "the signing key",
            "not expired",
            format!("expired on {until}"),
        )),
        Ok(Some(until)) if until < jiff::Timestamp::now() + CERTIFICATE_NOTICE => {
            warnings.push(Failure::new(
                "site",
                "the signing key",
                "valid for 30 more days",
                format!("expires on {until}"),
            ))
        }
        Ok(_) => {}
    }
    if let Some(tls) = &site.config.site.tls {
        checked += 1;
        if let Err(e) = crate::tls::server_config(&tls.cert, &tls.key) {
            failures.push(Failure::new(
                "site",
                "the HTTPS certificate",
                "loadable with its key",
                Chain(&e).to_string(),
            ));
        }
        // An expired certificate stops snapd at once, and nothing outside can renew it.
        checked += 1;
        let what = format!("the HTTPS certificate {}", tls.cert.display());
        let info = crate::tls::certificate_info(&tls.cert);
        match &info {
            Ok(info) if info.expires < jiff::Timestamp::now() => failures.push(Failure::new(
                "site",
                what.clone(),
                "valid",
                format!(
                    "expired on {}: airlock tls init makes a new one",
                    info.expires
                ),
            )),
            Ok(info) if info.expires < jiff::Timestamp::now() + CERTIFICATE_NOTICE => warnings
                .push(Failure::new(
                    "site",
                    what.clone(),
                    "valid for 30 more days",
                    format!(
                        "expires on {}: airlock tls init makes a new one",
                        info.expires
                    ),
                )),
            Ok(_) => {}
            Err(e) => failures.push(Failure::new(
                "site",
                what.clone(),
                "readable",
                Chain(e).to_string(),
            )),
        }
        // DNS may point names here that a certificate made before they were configured
        // lacks: clients reaching them over HTTPS would refuse it.
        if let Ok(info) = info {
            checked += 1;
            let missing: Vec<String> = site
                .config
                .overridden_names()
                .into_iter()
                .filter(|n| !info.names.contains(n))
                .collect();
            if !missing.is_empty() {
                warnings.push(Failure::new(
                    "site",
                    what,
                    "naming every host DNS points here",
                    format!(
                        "lacks {}: airlock tls init makes one with them (clients keep the site CA)",
                        missing.join(", ")
                    ),
                ));
            }
        }
    }
    checked += 1;
    let data = site.data_dir().display().to_string();
    match rustix::fs::statvfs(site.data_dir()) {
        Ok(fs) => {
            let free = fs.f_bavail.saturating_mul(fs.f_frsize);
            let total = fs.f_blocks.saturating_mul(fs.f_frsize).max(1);
            match room_for_next_sync(site, free, total) {
                Ok(None) => {}
                Ok(Some((expected, got, true))) => {
                    failures.push(Failure::new("site", data, expected, got))
                }
                Ok(Some((expected, got, false))) => {
                    warnings.push(Failure::new("site", data, expected, got))
                }
                Err(e) => failures.push(Failure::new(
                    "site",
                    data,
                    "a readable sync history",
                    Chain(&e).to_string(),
                )),
            }
        }
        Err(e) => failures.push(Failure::new(
            "site",
            data,
            "a readable data folder",
            Chain(&e).to_string(),
        )),
    }
    report.area("site", checked, failures, warnings);
}

/// Whether the disk holds the next sync (or import): `(expected, got, fatal)` when it may not.
fn room_for_next_sync(
    site: &Site,
    free: u64,
    total: u64,
) -> Result<Option<(String, String, bool)>, crate::storage::StorageError> {
    Ok(disk_room(site.next_sync_estimate()?.as_ref(), free, total))
}

/// Every file under `store/sha256`, with its size; unreadable folders are failures.
fn store_blobs(store: &ContentStore) -> (Vec<(PathBuf, u64)>, Vec<Failure>) {
    let (mut blobs, mut failures) = (Vec::new(), Vec::new());
    for file in store.files() {
        match file {
            Ok(file) => {
                let size = file.metadata().map_or(0, |m| m.len());
                blobs.push((file.path(), size));
            }
            Err(UnreadFolder { path, source }) => failures.push(Failure::new(
                "store",
                path.display().to_string(),
                "a folder of blobs",
                Chain(&source).to_string(),
            )),
        }
    }
    blobs.sort();
    (blobs, failures)
}

/// Re-reads one blob; a failure when its content does not hash to its name.
fn rehash(path: &Path, store: &ContentStore) -> Option<Failure> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let fail = |expected: String, got: String| {
        Some(Failure::new(
            "store",
            path.display().to_string(),
            expected,
            got,
        ))
    };
    let Some(digest) = Sha256::from_hex(&name).filter(|d| store.blob_path(d) == path) else {
        return fail("a blob named by its SHA-256".into(), "a stray file".into());
    };
    match Sha256::of_file(path) {
        Ok(got) if got == digest => None,
        Ok(got) => fail(format!("sha256 {digest}"), format!("sha256 {got}")),
        Err(e) => fail(format!("sha256 {digest}"), format!("unreadable: {e}")),
    }
}
