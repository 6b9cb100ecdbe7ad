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

pub(crate) mod upstream;
mod verbatim;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use self::upstream::{Context, UpstreamSuite, fetch_listed, fetch_release};
use super::AptError;
use super::closure::{Candidate, ClosureOptions, Unsatisfied, close};
use super::index::{IndexRecord, SourceRecord, extract_stanzas};
use super::publish::{
    Format, IndexText, UpstreamFile, UpstreamIndex, retain_superseded, write_signed_suite,
};
use super::release::ReleaseInfo;
use crate::config::{AptMirrorConfig, MirrorMode};
use crate::hint::Hint;
use crate::net::{Http, HttpOptions, NetError};
use crate::openpgp::{Keyring, OpenPgpError, SiteKey};
use crate::report::{Reporter, Unit};
use crate::site::Site;
use crate::storage::history::{History, Run, RunKind};
use crate::storage::{Manifest, Sha256, Staging, StorageError, TreeSet};

const CONFIG_NOTE: &str = "mirror-config";
const UPSTREAM_NOTE: &str = "upstream";
const WRITTEN_NOTE: &str = "written";
const PACKAGES_NOTE: &str = "packages";
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
            MirrorError::Upstream { .. } | MirrorError::Conflict { .. } => None,
        }
    }
}

/// What one mirror's sync did.
#[derive(Debug, Clone, Default)]
pub struct MirrorReport {
    pub name: String,
    /// The upstream had not changed: nothing was fetched beyond its Release files.
    pub unchanged: bool,
    /// Packages published per suite.
    pub suites: Vec<(String, usize)>,
    pub downloaded_files: usize,
    pub downloaded_bytes: u64,
    pub reused_files: usize,
    pub unsatisfied: Vec<Unsatisfied>,
    /// Patterns of `packages` that matched nothing.
    pub unmatched: Vec<String>,
    /// Source packages published (`sources = true`).
    pub sources: usize,
    /// Sources of mirrored binaries that no Sources index holds ("name version").
    pub missing_sources: Vec<String>,
    /// Suite and full fingerprint of the key whose signature was checked.
    pub signers: Vec<(String, String)>,
}

pub struct SyncOptions {
    pub jobs: Option<usize>,
    pub now: jiff::Timestamp,
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
    for mirror in mirrors {
        reports.push(sync_mirror(site, mirror, key.as_ref(), &options, reporter.clone()).await?);
    }
    Ok(reports)
}

/// Everything that decides what a mirror publishes, besides the upstream's content.
fn config_digest(config: &AptMirrorConfig, key: Option<&SiteKey>) -> Sha256 {
    let text = format!(
        "{}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}|{:?}|{:?}|{:?}",
        config.url,
        config.suites,
        config.components,
        config.architectures,
        config.packages,
        config.mode,
        config.with_dependencies,
        config.include_recommends,
        config.valid_for.map(|p| p.0),
        config.sources,
        key.map(SiteKey::fingerprint),
    );
    Sha256::of(text.as_bytes())
}

/// One Sources index of one suite (`sources = true`).
struct SourceIndex {
    suite: usize,
    component: String,
    url: Url,
    plain: upstream::PlainIndex,
    records: Vec<SourceRecord>,
}

/// One Packages index of one suite: where it came from and what it holds.
struct Index {
    suite: usize,
    component: String,
    arch: String,
    url: Url,
    plain: upstream::PlainIndex,
    records: Vec<IndexRecord>,
    /// Upstream's compressed files, kept when the whole index may be published as it is.
    upstream: Option<UpstreamIndex>,
}

async fn sync_mirror(
    site: &Site,
    config: &AptMirrorConfig,
    key: Option<&SiteKey>,
    options: &SyncOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<MirrorReport, MirrorError> {
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
    let base = Url::parse(&config.url).map_err(|e| MirrorError::Upstream {
        url: config.url.clone(),
        reason: e.to_string(),
    })?;
    let context = Arc::new(Context {
        http,
        store: store.clone(),
        base,
    });
    let trees = TreeSet::apt(site.data_dir(), &name);
    let previous = trees.current()?.unwrap_or_default();
    let synced: HashMap<String, (String, Option<i64>)> = previous
        .note(UPSTREAM_NOTE)
        .filter_map(|v| {
            let mut parts = v.split(' ');
            Some((
                parts.next()?.to_string(),
                (parts.next()?.to_string(), parts.next()?.parse().ok()),
            ))
        })
        .collect();

    // 1. The signed Release of every suite.
    let task = reporter.start(
        &format!("{name}: Release files"),
        Some(config.suites.len() as u64),
        Unit::Items,
    );
    let mut suites = Vec::new();
    for suite in config.suites.iter().map(|s| s.as_str()) {
        let before = synced.get(suite).and_then(|(_, date)| *date);
        suites.push(
            fetch_release(
                &context.http,
                &context.base,
                config,
                keyring.as_ref(),
                suite,
                options.now,
                before,
            )
            .await?,
        );
        reporter.advance(task, 1);
    }
    reporter.finish(task);

    // 2. Nothing changed upstream, nor in the config: nothing to do.
    let digest = config_digest(config, key).to_hex();
    let unchanged = previous.note(CONFIG_NOTE).next() == Some(digest.as_str())
        && suites.iter().all(|s| {
            synced
                .get(&s.suite)
                .is_some_and(|(d, _)| *d == s.digest.to_hex())
        })
        && !refresh_due(&previous, config, options.now);
    if unchanged {
        trees.tidy(&previous)?;
        return Ok(MirrorReport {
            name,
            unchanged: true,
            suites: previous_counts(&previous, config),
            ..MirrorReport::default()
        });
    }

    let started = std::time::Instant::now();
    let phase = |what: &str| {
        tracing::debug!(
            "{name}: {what} after {:.0} ms",
            started.elapsed().as_secs_f64() * 1000.0
        )
    };
    // 3. The Packages indices (verbatim mirrors keep the compressed files they fetch).
    let staging = Arc::new(store.staging());
    let keep = (config.mode == MirrorMode::Verbatim).then_some(&*staging);
    let whole = config.mode == MirrorMode::Filtered && config.packages.is_none();
    let mut carriers = Carriers::new();
    let indices = fetch_indices(
        &context,
        config,
        &suites,
        keep,
        whole,
        &mut carriers,
        &*reporter,
    )
    .await?;
    let source_indices = if config.sources {
        fetch_sources(&context, config, &suites, keep, &mut carriers).await?
    } else {
        Vec::new()
    };

    phase("indices read");
    // 4. What to mirror.
    let mut report = MirrorReport {
        name: name.clone(),
        signers: suites
            .iter()
            .filter_map(|s| Some((s.suite.clone(), s.signer.clone()?)))
            .collect(),
        ..MirrorReport::default()
    };
    let selected = select(config, &indices, &mut report);
    let selected_sources =
        select_sources(config, &indices, &selected, &source_indices, &mut report);

    phase("selection done");
    // 5. The pool files, from the store when it has them.
    let pool = pool_files(&indices, &selected, &source_indices, &selected_sources)?;
    download_pool(&context, &pool, &staging, reporter.clone(), &mut report).await?;

    phase("pool complete");
    // 6. The new tree, switched in at once.
    let mut manifest = Manifest::default();
    let same_selection = previous.note(CONFIG_NOTE).next() == Some(digest.as_str());
    manifest.notes.push((CONFIG_NOTE.into(), digest));
    for s in &suites {
        let date = s
            .release
            .date
            .map_or("-".to_string(), |d| d.as_second().to_string());
        manifest.notes.push((
            UPSTREAM_NOTE.into(),
            format!("{} {} {date}", s.suite, s.digest),
        ));
    }
    for (path, (sha256, size, _)) in &pool {
        manifest.add(path, *sha256, *size);
    }
    manifest
        .notes
        .push((WRITTEN_NOTE.into(), options.now.as_second().to_string()));
    match (config.mode, key) {
        (MirrorMode::Filtered, Some(key)) => {
            for (i, suite) in suites.iter().enumerate() {
                let texts = filtered_indices(&indices, &selected, i)?;
                let count: usize = texts.iter().map(|(_, n)| *n).sum();
                report.suites.push((suite.suite.clone(), count));
                manifest
                    .notes
                    .push((PACKAGES_NOTE.into(), format!("{} {count}", suite.suite)));
                let mut texts: Vec<IndexText> = texts.into_iter().map(|(t, _)| t).collect();
                texts.extend(filtered_sources(&source_indices, &selected_sources, i)?);
                let info = release_info(config, suite, key, options.now);
                write_signed_suite(&info, &texts, key, &staging, &mut manifest)?;
            }
        }
        (MirrorMode::Filtered, None) => {
            unreachable!("sync loads the site key for filtered mirrors")
        }
        (MirrorMode::Verbatim, _) => {
            for (i, suite) in suites.iter().enumerate() {
                let count: usize = indices
                    .iter()
                    .zip(&selected)
                    .filter(|(x, _)| x.suite == i)
                    .map(|(_, c)| c.len())
                    .sum();
                report.suites.push((suite.suite.clone(), count));
                manifest
                    .notes
                    .push((PACKAGES_NOTE.into(), format!("{} {count}", suite.suite)));
                verbatim::add_suite(
                    &context,
                    config,
                    suite,
                    i,
                    &indices,
                    &staging,
                    &mut manifest,
                )
                .await?;
            }
        }
    }
    drop_carriers(carriers, &staging);
    retain_superseded(
        &previous,
        &mut manifest,
        options.now,
        site.config.site.grace.0.as_secs() as i64,
    );
    let staging = Arc::try_unwrap(staging)
        .unwrap_or_else(|_| unreachable!("every download task has finished"));
    let added = trees.publish(&store, staging, &manifest, &previous)?;
    phase("published");
    let run = Run {
        source: format!("apt/{name}"),
        kind: RunKind::first_when(!same_selection),
        at: options.now,
        bytes: added,
    };
    History::record_or_warn(site.data_dir(), run, &*reporter);
    Ok(report)
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

fn previous_counts(previous: &Manifest, config: &AptMirrorConfig) -> Vec<(String, usize)> {
    config
        .suites
        .iter()
        .map(|s| (s.to_string(), published_packages(previous, s.as_str())))
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

fn release_info(
    config: &AptMirrorConfig,
    suite: &UpstreamSuite,
    key: &SiteKey,
    now: jiff::Timestamp,
) -> ReleaseInfo {
    let release = &suite.release;
    ReleaseInfo {
        suite_dir: suite.suite.clone(),
        origin: release
            .origin
            .clone()
            .unwrap_or_else(|| config.name.to_string()),
        label: release
            .label
            .clone()
            .unwrap_or_else(|| config.name.to_string()),
        suite: release.suite.clone().unwrap_or_else(|| suite.suite.clone()),
        codename: release
            .codename
            .clone()
            .unwrap_or_else(|| suite.suite.clone()),
        version: release.version.clone(),
        description: release.description.clone(),
        date: now,
        valid_until: config.valid_for.map(|p| now + p.0),
        architectures: config.architectures.iter().map(|a| a.to_string()).collect(),
        components: config.components.iter().map(|c| c.to_string()).collect(),
        signed_by: key.fingerprint(),
    }
}

/// Fetches, checks, decompresses and reads every Packages index of the mirror.
/// With `whole` (every package of every index is kept), upstream's compressed files are
/// fetched too, to publish as they are (see [`UpstreamIndex`]). Downloads the mirror does not
/// keep (`keep`: verbatim) go to `carriers`.
async fn fetch_indices(
    context: &Arc<Context>,
    config: &AptMirrorConfig,
    suites: &[UpstreamSuite],
    keep: Option<&Staging>,
    whole: bool,
    carriers: &mut Carriers,
    reporter: &dyn Reporter,
) -> Result<Vec<Index>, MirrorError> {
    const COMPRESSED: [&str; 2] = ["Packages.gz", "Packages.xz"];
    let mut jobs = Vec::new();
    for (i, suite) in suites.iter().enumerate() {
        for component in config.components.iter() {
            for arch in config.architectures.iter() {
                let dir = format!("{component}/binary-{arch}");
                // gzip before xz: on Debian's 50 MB main index, 0.3 s to decompress against
                // 0.9 s, for 37 % more bytes on the wire (12 MB against 8.8 MB).
                let path = choose_listed(
                    context,
                    suite,
                    &dir,
                    &["Packages.gz", "Packages.xz", "Packages"],
                )?;
                let listed = |name: &str| {
                    let path = format!("{dir}/{name}");
                    suite.release.files.get(&path)?.sha256.map(|s| (path, s))
                };
                let upstream = whole
                    .then(|| listed("Packages"))
                    .flatten()
                    .map(|(_, plain)| {
                        let files: Vec<(String, Sha256)> =
                            COMPRESSED.iter().filter_map(|name| listed(name)).collect();
                        (plain, files)
                    });
                jobs.push((i, component.to_string(), arch.to_string(), path, upstream));
            }
        }
    }
    let task = reporter.start(
        &format!("{}: indices", config.name),
        Some(jobs.len() as u64),
        Unit::Items,
    );
    // Identical indices (an architecture-independent component) are fetched once.
    let mut needed: BTreeMap<Sha256, (usize, String)> = BTreeMap::new();
    for (i, _, _, path, _) in &jobs {
        let sha256 = suites[*i].release.files[path]
            .sha256
            .expect("chosen for its SHA256");
        needed.entry(sha256).or_insert((*i, path.clone()));
    }
    let mut extra: BTreeMap<Sha256, (usize, String)> = BTreeMap::new();
    for (i, _, _, _, upstream) in &jobs {
        for (path, sha256) in upstream.iter().flat_map(|(_, files)| files) {
            if !needed.contains_key(sha256) {
                extra.entry(*sha256).or_insert((*i, path.clone()));
            }
        }
    }
    let download = |(sha256, (i, path)): (Sha256, (usize, String))| async move {
        let (partial, _) = fetch_listed(
            &context.http,
            &context.store,
            &context.base,
            &suites[i],
            &path,
        )
        .await?;
        Ok::<_, MirrorError>((sha256, partial))
    };
    let (needed, extra) = futures_util::future::join(
        futures_util::future::try_join_all(needed.into_iter().map(download)),
        futures_util::future::join_all(extra.into_iter().map(download)),
    )
    .await;
    let mut fetched: BTreeMap<Sha256, std::path::PathBuf> = needed?.into_iter().collect();
    // Upstream's other compressions only spare work: one that cannot be had is compressed here.
    for result in extra {
        match result {
            Ok((sha256, partial)) => {
                fetched.insert(sha256, partial);
            }
            Err(e) => reporter.warn(&format!("{e}; that index is compressed here instead")),
        }
    }
    // Verbatim mirrors store the plain text too, so they need its digest.
    let hash_plain = keep.is_some();
    let reads = jobs
        .into_iter()
        .map(|(i, component, arch, path, upstream)| {
            let suite = &suites[i];
            let compressed = fetched[&suite.release.files[&path]
                .sha256
                .expect("chosen for its SHA256")]
                .clone();
            let url = upstream::url(&context.base, &format!("dists/{}/{path}", suite.suite));
            let plain_listed = suite
                .release
                .files
                .get(&format!("{component}/binary-{arch}/Packages"))
                .cloned();
            let tmp = context.store.temp_dir();
            let upstream = upstream.map(|(plain, files)| UpstreamIndex {
                plain,
                files: files
                    .into_iter()
                    .filter_map(|(path, sha256)| {
                        Some(UpstreamFile {
                            format: Format::of(&path)?,
                            path: fetched.get(&sha256)?.clone(),
                            sha256,
                        })
                    })
                    .collect(),
            });
            async move {
                let url_for_task = url.clone();
                let (plain, records) = tokio::task::spawn_blocking(move || {
                    upstream::read_index(
                        &compressed,
                        &path,
                        plain_listed.as_ref(),
                        hash_plain,
                        &tmp,
                        &url_for_task,
                    )
                })
                .await
                .map_err(|e| MirrorError::upstream(&url, &format!("reading failed: {e}")))??;
                reporter.advance(task, 1);
                Ok::<_, MirrorError>(Index {
                    suite: i,
                    component,
                    arch,
                    url,
                    plain,
                    records,
                    upstream,
                })
            }
        });
    let indices = futures_util::future::try_join_all(reads).await?;
    for (sha256, compressed) in fetched {
        match keep {
            Some(staging) => staging.adopt(compressed, sha256),
            None => carriers.push(compressed),
        }
    }
    reporter.finish(task);
    Ok(indices)
}

/// Downloaded indices a filtered mirror only reads, or may publish as they are: removed once
/// the indices are written unless the staging took them. Identical files share one partial
/// path, so none is removed before every index is written.
type Carriers = Vec<std::path::PathBuf>;

fn drop_carriers(carriers: Carriers, staging: &Staging) {
    for path in carriers {
        if !staging.has_adopted(&path) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Selected records, per index, in index order.
type Selected = Vec<BTreeSet<usize>>;

/// Runs the closure for each architecture over the indices of every suite and component.
fn select(config: &AptMirrorConfig, indices: &[Index], report: &mut MirrorReport) -> Selected {
    let mut selected: Selected = vec![BTreeSet::new(); indices.len()];
    let mut unsatisfied = BTreeSet::new();
    let mut unmatched: Option<BTreeSet<String>> = None;
    for arch in config.architectures.iter() {
        let mut candidates = Vec::new();
        let mut places = Vec::new();
        for (i, index) in indices
            .iter()
            .enumerate()
            .filter(|(_, x)| x.arch == arch.as_str())
        {
            for (r, record) in index.records.iter().enumerate() {
                candidates.push(Candidate { index: i, record });
                places.push((i, r));
            }
        }
        let selection = close(
            &candidates,
            &ClosureOptions {
                patterns: config.packages.as_deref(),
                with_dependencies: config.with_dependencies,
                include_recommends: config.include_recommends,
            },
        );
        for c in selection.chosen {
            let (i, r) = places[c];
            selected[i].insert(r);
        }
        unsatisfied.extend(selection.unsatisfied);
        // A pattern is unmatched only if no architecture has it.
        let this: BTreeSet<String> = selection.unmatched.into_iter().collect();
        unmatched = Some(match unmatched {
            None => this,
            Some(before) => before.intersection(&this).cloned().collect(),
        });
    }
    report.unsatisfied = unsatisfied.into_iter().collect();
    report.unmatched = unmatched.unwrap_or_default().into_iter().collect();
    selected
}

/// Pool path -> (digest, size, URL of the index listing it).
type Pool = BTreeMap<String, (Sha256, u64, String)>;

/// Every pool file of the selected packages and sources; one path, one content.
fn pool_files(
    indices: &[Index],
    selected: &Selected,
    sources: &[SourceIndex],
    selected_sources: &Selected,
) -> Result<Pool, MirrorError> {
    let mut pool = Pool::new();
    for (index, chosen) in indices.iter().zip(selected) {
        for &r in chosen {
            let record = &index.records[r];
            add_to_pool(
                &mut pool,
                record.filename(),
                record.sha256,
                record.size,
                &index.url,
            )?;
        }
    }
    for (index, chosen) in sources.iter().zip(selected_sources) {
        for &r in chosen {
            for (path, size, sha256) in &index.records[r].files {
                add_to_pool(&mut pool, path, *sha256, *size, &index.url)?;
            }
        }
    }
    Ok(pool)
}

fn add_to_pool(
    pool: &mut Pool,
    path: &str,
    sha256: Sha256,
    size: u64,
    listed_in: &Url,
) -> Result<(), MirrorError> {
    match pool.get(path) {
        Some((first, _, there)) if *first != sha256 => Err(MirrorError::Conflict {
            conflict: Box::new(Conflict {
                path: path.to_string(),
                first: *first,
                first_where: there.clone(),
                second: sha256,
                second_where: listed_in.to_string(),
            }),
        }),
        Some(_) => Ok(()),
        None => {
            pool.insert(path.to_string(), (sha256, size, listed_in.to_string()));
            Ok(())
        }
    }
}

/// The source packages to mirror: all of them when the mirror takes every package, else the
/// sources the selected binaries were built from (by name and version, `Source:` field).
fn select_sources(
    config: &AptMirrorConfig,
    indices: &[Index],
    selected: &Selected,
    sources: &[SourceIndex],
    report: &mut MirrorReport,
) -> Selected {
    if config.packages.is_none() {
        let all: Selected = sources
            .iter()
            .map(|s| (0..s.records.len()).collect())
            .collect();
        report.sources = all.iter().map(BTreeSet::len).sum();
        return all;
    }
    let mut wanted: BTreeSet<(&str, &str)> = BTreeSet::new();
    for (index, chosen) in indices.iter().zip(selected) {
        for &r in chosen {
            wanted.insert(index.records[r].source());
        }
    }
    let mut found = BTreeSet::new();
    let chosen: Selected = sources
        .iter()
        .map(|s| {
            s.records
                .iter()
                .enumerate()
                .filter(|(_, r)| wanted.contains(&(r.name.as_str(), r.version.as_str())))
                .map(|(i, r)| {
                    found.insert((r.name.as_str(), r.version.as_str()));
                    i
                })
                .collect()
        })
        .collect();
    if !sources.is_empty() {
        report.missing_sources = wanted
            .difference(&found)
            .map(|(name, version)| format!("{name} {version}"))
            .collect();
    }
    report.sources = found.len();
    chosen
}

/// Downloads every pool file the store lacks, in parallel; verified files join `staging`.
async fn download_pool(
    context: &Arc<Context>,
    pool: &Pool,
    staging: &Arc<Staging>,
    reporter: Arc<dyn Reporter>,
    report: &mut MirrorReport,
) -> Result<(), MirrorError> {
    let wanted = pool
        .iter()
        .map(|(path, (sha256, size, _))| (*sha256, *size, upstream::url(&context.base, path)));
    let filled = context
        .http
        .fill_store(&context.store, wanted, staging, reporter, "packages")
        .await?;
    report.downloaded_files += filled.downloaded_files;
    report.downloaded_bytes += filled.downloaded_bytes;
    report.reused_files += filled.reused_files;
    Ok(())
}

/// The filtered Packages texts of one suite, with their package counts.
fn filtered_indices(
    indices: &[Index],
    selected: &Selected,
    suite: usize,
) -> Result<Vec<(IndexText, usize)>, MirrorError> {
    let mut out = Vec::new();
    for (index, chosen) in indices
        .iter()
        .zip(selected)
        .filter(|(x, _)| x.suite == suite)
    {
        let wanted: Vec<(u64, u32)> = chosen
            .iter()
            .map(|&r| (index.records[r].offset, index.records[r].length))
            .collect();
        let file = index
            .plain
            .file
            .reopen()
            .map_err(|source| StorageError::Read {
                path: index.plain.file.path().to_path_buf(),
                source,
            })?;
        let text = extract_stanzas(&mut std::io::BufReader::new(file), &wanted)
            .map_err(|e| MirrorError::upstream(&index.url, &format!("cannot copy stanzas: {e}")))?;
        out.push((
            IndexText {
                component: index.component.clone(),
                arch: index.arch.clone(),
                text,
                upstream: index.upstream.clone(),
            },
            chosen.len(),
        ));
    }
    Ok(out)
}

/// The selected stanzas of each Sources index of one suite, as Sources texts.
fn filtered_sources(
    sources: &[SourceIndex],
    selected: &Selected,
    suite: usize,
) -> Result<Vec<IndexText>, MirrorError> {
    let mut out = Vec::new();
    for (index, chosen) in sources
        .iter()
        .zip(selected)
        .filter(|(x, _)| x.suite == suite)
    {
        let wanted: Vec<(u64, u32)> = chosen
            .iter()
            .map(|&r| (index.records[r].offset, index.records[r].length))
            .collect();
        let file = index
            .plain
            .file
            .reopen()
            .map_err(|source| StorageError::Read {
                path: index.plain.file.path().to_path_buf(),
                source,
            })?;
        let text = extract_stanzas(&mut std::io::BufReader::new(file), &wanted)
            .map_err(|e| MirrorError::upstream(&index.url, &format!("cannot copy stanzas: {e}")))?;
        out.push(IndexText {
            component: index.component.clone(),
            arch: "source".into(),
            text,
            upstream: None,
        });
    }
    Ok(out)
}

/// Fetches, checks, decompresses and reads the Sources index of every suite and component.
async fn fetch_sources(
    context: &Arc<Context>,
    config: &AptMirrorConfig,
    suites: &[UpstreamSuite],
    keep: Option<&Staging>,
    carriers: &mut Carriers,
) -> Result<Vec<SourceIndex>, MirrorError> {
    let mut out = Vec::new();
    for (i, suite) in suites.iter().enumerate() {
        for component in config.components.iter() {
            let dir = format!("{component}/source");
            let path = choose_listed(
                context,
                suite,
                &dir,
                &["Sources.gz", "Sources.xz", "Sources"],
            )?;
            let sha256 = suite.release.files[&path]
                .sha256
                .expect("chosen for its SHA256");
            let (compressed, _) =
                fetch_listed(&context.http, &context.store, &context.base, suite, &path).await?;
            let url = upstream::url(&context.base, &format!("dists/{}/{path}", suite.suite));
            let plain_listed = suite.release.files.get(&format!("{dir}/Sources")).cloned();
            let tmp = context.store.temp_dir();
            let (task_url, task_path, task_compressed) =
                (url.clone(), path.clone(), compressed.clone());
            let (plain, records) = tokio::task::spawn_blocking(move || {
                upstream::decompress(
                    &task_compressed,
                    &task_path,
                    plain_listed.as_ref(),
                    false,
                    &tmp,
                    &task_url,
                    |text| super::index::read_sources(text),
                )
            })
            .await
            .map_err(|e| MirrorError::upstream(&url, &format!("reading failed: {e}")))??;
            let records =
                records.map_err(|e| MirrorError::upstream(&url, &format!("bad index: {e}")))?;
            match keep {
                Some(staging) => staging.adopt(compressed, sha256),
                None => carriers.push(compressed),
            }
            out.push(SourceIndex {
                suite: i,
                component: component.to_string(),
                url,
                plain,
                records,
            });
        }
    }
    Ok(out)
}

/// The first of `names` (in `dir`) that the suite's Release lists with a SHA-256.
fn choose_listed(
    context: &Context,
    suite: &UpstreamSuite,
    dir: &str,
    names: &[&str],
) -> Result<String, MirrorError> {
    names
        .iter()
        .map(|name| format!("{dir}/{name}"))
        .find(|p| {
            suite
                .release
                .files
                .get(p)
                .is_some_and(|f| f.sha256.is_some())
        })
        .ok_or_else(|| {
            MirrorError::upstream(
                &upstream::url(&context.base, &format!("dists/{}/Release", suite.suite)),
                &format!(
                    "lists no {} for {dir}",
                    names.last().copied().unwrap_or_default()
                ),
            )
        })
}
