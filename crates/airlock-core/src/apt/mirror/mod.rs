//! Mirrors of upstream apt archives (`[[apt.mirror]]`, `airlock sync`).
//!
//! A sync checks each suite's signed Release against the mirror's keyring, fetches the
//! Packages indices it lists (by-hash, verified while streaming, decompressed with a size
//! limit), selects packages (patterns and their dependency closure over all suites and
//! components), downloads what the store lacks (in parallel, verified, resumable), and only
//! then publishes a new tree in one switch. Anything wrong anywhere stops the sync before the
//! switch: clients keep the previous tree, and the next run reuses what was verified.
//!
//! `filtered` mode republishes the selected stanzas byte for byte, signed with the site key;
//! `verbatim` mode republishes the upstream's signed files and every file they list.

mod filtered;
mod indices;
mod selection;
pub(crate) mod upstream;
mod verbatim;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use self::indices::{Carriers, Index, Indices, ReadIndices, drop_carriers};
use self::selection::{Pool, Selection};
use self::upstream::{Context, UpstreamSuite, fetch_release};
use super::AptError;
use super::closure::{Explanation, Unsatisfied};
use super::publish::retain_superseded;
use crate::config::{AptMirrorConfig, MirrorMode};
use crate::hint::Hint;
use crate::net::{Http, HttpOptions, NetError};
use crate::openpgp::{Keyring, OpenPgpError, SiteKey};
use crate::report::{Reporter, Unit};
use crate::site::Site;
use crate::storage::history::{History, Run, RunKind};
use crate::storage::tree::Marked;
use crate::storage::{Manifest, Sha256, Staging, StorageError, TreeSet};

const CONFIG_NOTE: &str = "mirror-config";
const UPSTREAM_NOTE: &str = "upstream";
const WRITTEN_NOTE: &str = "written";
const PACKAGES_NOTE: &str = "packages";

/// Whether a published tree is a mirror's (its manifest notes the upstream it follows).
pub fn is_mirror_tree(manifest: &Manifest) -> bool {
    manifest.note(UPSTREAM_NOTE).next().is_some()
}
/// Unfinished downloads older than this belong to upstream states gone by.
const PARTIAL_AGE: Duration = Duration::from_secs(3 * 86_400);

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("no mirror named {name:?} in {config} (configured: {known})")]
    UnknownMirror {
        name: String,
        known: String,
        config: std::path::PathBuf,
    },
    #[error("{url}: {reason}")]
    Upstream { url: String, reason: String },
    #[error("{url}: {what}")]
    UpstreamData {
        url: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{url} is not a URL")]
    BadUrl {
        url: String,
        #[source]
        source: crate::net::UrlError,
    },
    #[error("{url}: reading failed")]
    Task {
        url: String,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("{url}: bad index")]
    BadIndex {
        url: String,
        #[source]
        source: crate::apt::index::IndexError,
    },
    #[error("mirror {mirror:?}: no package or virtual package is named {}; nothing was published", names.join(", "))]
    Unmatched { mirror: String, names: Vec<String> },
    #[error(transparent)]
    Conflict { conflict: Box<Conflict> },
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    OpenPgp(#[from] OpenPgpError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Apt(#[from] AptError),
}

/// One pool path listed with two contents: clients would get hash mismatches.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path} is listed twice with different content: {first} in {first_where}, {second} in {second_where}"
)]
pub struct Conflict {
    pub path: String,
    pub first: Sha256,
    pub first_where: String,
    pub second: Sha256,
    pub second_where: String,
}

impl MirrorError {
    pub(crate) fn bad_index(url: &Url, source: crate::apt::index::IndexError) -> MirrorError {
        MirrorError::BadIndex {
            url: url.to_string(),
            source,
        }
    }

    /// The upstream's bytes at `url` could not be read as what they should be.
    pub(crate) fn upstream_data(url: &Url, what: &'static str, source: std::io::Error) -> Self {
        MirrorError::UpstreamData {
            url: url.to_string(),
            what,
            source,
        }
    }

    /// The thread reading what came from `url` ended without an answer.
    pub(crate) fn task(url: &Url, source: tokio::task::JoinError) -> MirrorError {
        MirrorError::Task {
            url: url.to_string(),
            source,
        }
    }

    pub(crate) fn upstream(url: &Url, reason: &str) -> MirrorError {
        MirrorError::Upstream {
            url: url.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl Hint for MirrorError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            MirrorError::UnknownMirror { .. } => {
                Some("mirrors are defined by [[apt.mirror]] sections of the config")
            }
            MirrorError::Net(e) => e.hint(),
            MirrorError::OpenPgp(e) => e.hint(),
            MirrorError::Storage(e) => e.hint(),
            MirrorError::Apt(e) => e.hint(),
            MirrorError::BadIndex { source, .. } => source.hint(),
            MirrorError::Unmatched { .. } => Some(
                "correct or remove the name in the mirror's `packages`; the tree published before stays served",
            ),
            MirrorError::Upstream { .. }
            | MirrorError::UpstreamData { .. }
            | MirrorError::Task { .. }
            | MirrorError::BadUrl { .. }
            | MirrorError::Conflict { .. } => None,
        }
    }
}

/// What one mirror's sync did (`sync --json` prints it as it is).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MirrorReport {
    pub name: String,
    /// The upstream had not changed: nothing was fetched beyond its Release files.
    pub unchanged: bool,
    /// Packages published per suite.
    pub suites: Vec<SuitePackages>,
    pub downloaded_files: usize,
    pub downloaded_bytes: u64,
    pub reused_files: usize,
    pub unsatisfied: Vec<Unsatisfied>,
    /// Patterns of `packages` that matched nothing.
    pub unmatched: Vec<String>,
    /// Virtual names of `packages` and the providers mirrored for them.
    pub virtuals: Vec<VirtualName>,
    /// The decisions about the package of [`SyncOptions::explain`], and the architecture.
    pub explanation: Option<(String, Explanation)>,
    /// Source packages published (`sources = true`).
    pub sources: usize,
    /// Sources of mirrored binaries that no Sources index holds ("name version").
    pub missing_sources: Vec<String>,
    /// Per suite, the full fingerprint of the key whose signature was checked.
    pub signers: Vec<SuiteSigner>,
}

/// A virtual name of `packages`, resolved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VirtualName {
    pub name: String,
    pub providers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SuitePackages {
    pub suite: String,
    pub packages: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SuiteSigner {
    pub suite: String,
    pub fingerprint: String,
}

pub struct SyncOptions {
    pub jobs: Option<usize>,
    pub now: jiff::Timestamp,
    /// A package whose selection to explain; the selection is made even when the upstream
    /// has not changed.
    pub explain: Option<String>,
}

/// Syncs the named mirrors (every configured one when `names` is empty).
pub async fn sync(
    site: &Site,
    names: &[String],
    options: SyncOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<Vec<MirrorReport>, MirrorError> {
    let mirrors: Vec<&AptMirrorConfig> = if names.is_empty() {
        site.config.apt.mirrors.iter().collect()
    } else {
        names
            .iter()
            .map(|n| {
                site.config
                    .mirror(n)
                    .ok_or_else(|| MirrorError::UnknownMirror {
                        name: n.clone(),
                        known: site
                            .config
                            .apt
                            .mirrors
                            .iter()
                            .map(|m| m.name.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        config: site.config.path.clone(),
                    })
            })
            .collect::<Result<_, _>>()?
    };
    let _lock = site.lock(&*reporter)?;
    let key = if mirrors.iter().any(|m| m.mode == MirrorMode::Filtered) {
        Some(site.signing_key()?)
    } else {
        None
    };
    let mut reports = Vec::new();
    let read = ReadIndices::default();
    for (i, mirror) in mirrors.iter().enumerate() {
        reports.push(
            sync_mirror(
                site,
                mirror,
                key.as_ref(),
                &options,
                &read,
                reporter.clone(),
            )
            .await?,
        );
        let later: Vec<&str> = mirrors[i + 1..].iter().map(|m| m.url.as_str()).collect();
        read.retain(&later);
    }
    Ok(reports)
}

/// Everything that decides what a mirror publishes, besides the upstream's content.
fn config_digest(config: &AptMirrorConfig, key: Option<&SiteKey>) -> Sha256 {
    let text = format!(
        "{}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}|{:?}|{:?}|{:?}|{:?}",
        config.url,
        config.suites,
        config.components,
        config.architectures,
        config.packages,
        config.mode,
        config.with_dependencies,
        config.include_recommends,
        config.alternatives,
        config.valid_for.map(|p| p.0),
        config.sources,
        key.map(SiteKey::fingerprint),
    );
    Sha256::of(text.as_bytes())
}

/// Syncs one mirror: releases → (unchanged: done) → indices → selection → pool → compose →
/// switch. Anything wrong stops it before the switch: clients keep the previous tree, and the
/// next run reuses what was verified.
async fn sync_mirror(
    site: &Site,
    config: &AptMirrorConfig,
    key: Option<&SiteKey>,
    options: &SyncOptions,
    read: &ReadIndices,
    reporter: Arc<dyn Reporter>,
) -> Result<MirrorReport, MirrorError> {
    let sync = MirrorSync::open(site, config, key, options, reporter)?;
    let suites = sync.read_releases().await?;
    let unchanged = sync.unchanged(&suites);
    if unchanged && options.explain.is_none() {
        return sync.keep_previous();
    }
    // The publish's marker is flushed while the indices are read (before the downloads, whose
    // files it would wait for), so that the publish links the pool while they are flushed.
    let trees = sync.trees.clone();
    let prepared = tokio::task::spawn_blocking(move || trees.prepare());
    let staging = Arc::new(sync.context.store.staging());
    let indices = Indices::read(
        &sync.context,
        config,
        &suites,
        &staging,
        read,
        &*sync.reporter,
    )
    .await?;
    sync.timed("indices read");
    let mut report = MirrorReport {
        name: sync.name.clone(),
        signers: suites
            .iter()
            .filter_map(|s| {
                Some(SuiteSigner {
                    suite: s.suite.clone(),
                    fingerprint: s.signer.clone()?,
                })
            })
            .collect(),
        ..MirrorReport::default()
    };
    let selection = Selection::new(config, &indices, options.explain.as_deref(), &mut report)?;
    sync.timed("selection done");
    if unchanged {
        // Only asked for the explanation: what clients see stays (the unused marker goes
        // before the tidying looks for one).
        drop(prepared.await);
        drop_carriers(indices.carriers, &staging);
        let explanation = report.explanation.take();
        return Ok(MirrorReport {
            explanation,
            ..sync.keep_previous()?
        });
    }
    let plan = Plan {
        pool: selection.pool(&indices)?,
        suites,
        indices,
        selection,
    };
    sync.download(&plan.pool, &staging, &mut report).await?;
    sync.timed("pool complete");
    let manifest = sync.compose(&plan, &staging, &mut report).await?;
    sync.timed("composed");
    let prepared = prepared
        .await
        .map_err(|e| MirrorError::task(&sync.context.base, e))??;
    sync.switch(manifest, plan.indices.carriers, staging, prepared)?;
    sync.timed("published");
    Ok(report)
}

/// One mirror's sync under way: its config, the upstream, and the tree it replaces.
struct MirrorSync<'a> {
    site: &'a Site,
    config: &'a AptMirrorConfig,
    key: Option<&'a SiteKey>,
    now: jiff::Timestamp,
    reporter: Arc<dyn Reporter>,
    name: String,
    /// None for an unsigned upstream (`allow_unsigned` and no keyring).
    keyring: Option<Keyring>,
    context: Arc<Context>,
    trees: TreeSet,
    /// The tree clients see now (empty before the first sync).
    previous: Manifest,
    /// What the previous tree was made from: suite → (Release digest, Release date).
    synced: HashMap<String, (String, Option<i64>)>,
    /// [`config_digest`], hex.
    digest: String,
    started: std::time::Instant,
}

/// What a sync read and chose: the new tree's content, before it is written.
struct Plan {
    suites: Vec<UpstreamSuite>,
    indices: Indices,
    selection: Selection,
    pool: Pool,
}

impl<'a> MirrorSync<'a> {
    /// The HTTP client, the keyring and the previous tree; unfinished downloads too old to
    /// resume are removed.
    fn open(
        site: &'a Site,
        config: &'a AptMirrorConfig,
        key: Option<&'a SiteKey>,
        options: &SyncOptions,
        reporter: Arc<dyn Reporter>,
    ) -> Result<MirrorSync<'a>, MirrorError> {
        let name = config.name.to_string();
        let store = site.store();
        store.clean_partial(PARTIAL_AGE)?;
        let keyring = if config.allow_unsigned && config.keyring.is_empty() {
            None
        } else {
            Some(Keyring::load(&config.keyring)?)
        };
        let sync = &site.config.sync;
        let http = Http::new(HttpOptions {
            jobs: options.jobs.unwrap_or(sync.jobs),
            timeout: sync.timeout.0,
            retries: sync.retries,
            extra_roots: Vec::new(),
        })?;
        let base = Url::parse(&config.url).map_err(|source| MirrorError::BadUrl {
            url: config.url.clone(),
            source,
        })?;
        let context = Arc::new(Context { http, store, base });
        let trees = TreeSet::apt(site.data_dir(), &name);
        let previous = trees.current()?.unwrap_or_default();
        let synced = previous
            .note(UPSTREAM_NOTE)
            .filter_map(|v| {
                let mut parts = v.split(' ');
                Some((
                    parts.next()?.to_string(),
                    (parts.next()?.to_string(), parts.next()?.parse().ok()),
                ))
            })
            .collect();
        Ok(MirrorSync {
            site,
            config,
            key,
            now: options.now,
            reporter,
            name,
            keyring,
            context,
            trees,
            previous,
            synced,
            digest: config_digest(config, key).to_hex(),
            started: std::time::Instant::now(),
        })
    }

    /// The signed Release of every suite, checked with the keyring, and not older than the
    /// one the previous tree was made from.
    async fn read_releases(&self) -> Result<Vec<UpstreamSuite>, MirrorError> {
        let task = self.reporter.start(
            &format!("{}: Release files", self.name),
            Some(self.config.suites.len() as u64),
            Unit::Items,
        );
        let mut suites = Vec::new();
        for suite in self.config.suites.iter().map(|s| s.as_str()) {
            let before = self.synced.get(suite).and_then(|(_, date)| *date);
            suites.push(
                fetch_release(
                    &self.context.http,
                    &self.context.base,
                    self.config,
                    self.keyring.as_ref(),
                    suite,
                    self.now,
                    before,
                )
                .await?,
            );
            self.reporter.advance(task, 1);
        }
        self.reporter.finish(task);
        Ok(suites)
    }

    /// Nothing changed upstream nor in the config, and no re-signed Release is due.
    fn unchanged(&self, suites: &[UpstreamSuite]) -> bool {
        self.previous.note(CONFIG_NOTE).next() == Some(self.digest.as_str())
            && suites.iter().all(|s| {
                self.synced
                    .get(&s.suite)
                    .is_some_and(|(d, _)| *d == s.digest.to_hex())
            })
            && !refresh_due(&self.previous, self.config, self.now)
    }

    /// The previous tree stays what clients see; trees it superseded are tidied.
    fn keep_previous(self) -> Result<MirrorReport, MirrorError> {
        self.trees.tidy(&self.previous)?;
        Ok(MirrorReport {
            suites: previous_counts(&self.previous, self.config),
            name: self.name,
            unchanged: true,
            ..MirrorReport::default()
        })
    }

    /// Downloads every pool file the store lacks, in parallel; verified files join `staging`.
    async fn download(
        &self,
        pool: &Pool,
        staging: &Arc<Staging>,
        report: &mut MirrorReport,
    ) -> Result<(), MirrorError> {
        let context = &self.context;
        let wanted = pool
            .iter()
            .map(|(path, (sha256, size, _))| (*sha256, *size, upstream::url(&context.base, path)));
        let filled = context
            .http
            .fill_store(
                &context.store,
                wanted,
                staging,
                self.reporter.clone(),
                "packages",
            )
            .await?;
        report.downloaded_files += filled.downloaded_files;
        report.downloaded_bytes += filled.downloaded_bytes;
        report.reused_files += filled.reused_files;
        Ok(())
    }

    /// The new tree's manifest: the pool files, each suite's indices and Release (filtered:
    /// the selected stanzas, re-signed; verbatim: upstream's signed files and what they list),
    /// and the notes the next sync compares with. Written to `staging`, not yet visible.
    async fn compose(
        &self,
        plan: &Plan,
        staging: &Arc<Staging>,
        report: &mut MirrorReport,
    ) -> Result<Manifest, MirrorError> {
        let mut manifest = Manifest::default();
        manifest
            .notes
            .push((CONFIG_NOTE.into(), self.digest.clone()));
        for s in &plan.suites {
            let date = s
                .release
                .date
                .map_or("-".to_string(), |d| d.as_second().to_string());
            manifest.notes.push((
                UPSTREAM_NOTE.into(),
                format!("{} {} {date}", s.suite, s.digest),
            ));
        }
        for (path, (sha256, size, _)) in &plan.pool {
            manifest.add(path, *sha256, *size);
        }
        manifest
            .notes
            .push((WRITTEN_NOTE.into(), self.now.as_second().to_string()));
        for (i, suite) in plan.suites.iter().enumerate() {
            let count = plan.selection.packages_in(&plan.indices, i);
            report.suites.push(SuitePackages {
                suite: suite.suite.clone(),
                packages: count,
            });
            manifest
                .notes
                .push((PACKAGES_NOTE.into(), format!("{} {count}", suite.suite)));
            match (self.config.mode, self.key) {
                (MirrorMode::Filtered, Some(key)) => {
                    filtered::add_suite(self, plan, i, key, staging, &mut manifest)?
                }
                (MirrorMode::Filtered, None) => {
                    unreachable!("sync loads the site key for filtered mirrors")
                }
                (MirrorMode::Verbatim, _) => {
                    verbatim::add_suite(
                        &self.context,
                        self.config,
                        suite,
                        i,
                        &plan.indices.packages,
                        staging,
                        &mut manifest,
                    )
                    .await?
                }
            }
        }
        Ok(manifest)
    }

    /// Keeps the files the previous tree had for the grace period, and publishes the new
    /// tree in one switch: from here clients see it. Downloads only read are removed.
    fn switch(
        &self,
        mut manifest: Manifest,
        carriers: Carriers,
        staging: Arc<Staging>,
        prepared: Marked,
    ) -> Result<(), MirrorError> {
        drop_carriers(carriers, &staging);
        let grace = self.site.config.site.grace.0.as_secs() as i64;
        retain_superseded(&self.previous, &mut manifest, self.now, grace);
        let staging = Arc::try_unwrap(staging)
            .unwrap_or_else(|_| unreachable!("every download task has finished"));
        let added = self.trees.publish_prepared(
            prepared,
            &self.context.store,
            staging,
            &manifest,
            &self.previous,
        )?;
        self.timed("tree published");
        let same_selection = self.previous.note(CONFIG_NOTE).next() == Some(self.digest.as_str());
        let run = Run {
            source: format!("apt/{}", self.name),
            kind: RunKind::first_when(!same_selection),
            at: self.now,
            bytes: added,
        };
        History::record_or_warn(self.site.data_dir(), run, &*self.reporter);
        Ok(())
    }

    /// Logs how long the sync has taken to reach `what`.
    fn timed(&self, what: &str) {
        tracing::debug!(
            "{}: {what} after {:.0} ms",
            self.name,
            self.started.elapsed().as_secs_f64() * 1000.0
        )
    }
}

/// Whether the re-signed Release files (filtered mode, `valid_for`) are half way to expiry.
fn refresh_due(previous: &Manifest, config: &AptMirrorConfig, now: jiff::Timestamp) -> bool {
    let Some(period) = config.valid_for else {
        return false;
    };
    let Some(written) = previous
        .note(WRITTEN_NOTE)
        .next()
        .and_then(|t| t.parse::<i64>().ok())
    else {
        return true;
    };
    crate::apt::release::renewal_due(written, period.0.as_secs() as i64, now)
}

fn previous_counts(previous: &Manifest, config: &AptMirrorConfig) -> Vec<SuitePackages> {
    config
        .suites
        .iter()
        .map(|s| SuitePackages {
            suite: s.to_string(),
            packages: published_packages(previous, s.as_str()),
        })
        .collect()
}

/// The packages a mirror's tree publishes in `suite`, as its sync noted them.
pub(crate) fn published_packages(tree: &Manifest, suite: &str) -> usize {
    tree.note(PACKAGES_NOTE)
        .filter_map(|v| v.split_once(' '))
        .find(|(s, _)| *s == suite)
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}
