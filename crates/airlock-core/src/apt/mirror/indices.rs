//! The indices a sync reads: every Packages index of every suite, component and architecture,
//! and the Sources indices (`sources = true`), each fetched as its signed Release lists it,
//! checked while streaming, decompressed with a size limit and read into records.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use reqwest::Url;

use super::MirrorError;
use super::upstream::{self, Context, UpstreamSuite, fetch_listed};
use crate::apt::index::{IndexRecord, SourceRecord};
use crate::apt::publish::{Format, UpstreamFile, UpstreamIndex};
use crate::config::{AptMirrorConfig, MirrorMode};
use crate::hint::Chain;
use crate::report::{Reporter, Unit};
use crate::storage::{Sha256, Staging};

/// What a sync reads of the upstream besides its Release files.
pub(super) struct Indices {
    pub(super) packages: Vec<Index>,
    /// Empty unless `sources = true`.
    pub(super) sources: Vec<SourceIndex>,
    pub(super) carriers: Carriers,
}

impl Indices {
    /// Fetches, checks, decompresses and reads every index the mirror publishes from.
    /// Verbatim mirrors keep the compressed files they fetch (they join `staging`); filtered
    /// ones only read them, and take upstream's compressed files too when every package of
    /// every index is kept, to publish them as they are.
    pub(super) async fn read(
        context: &Arc<Context>,
        config: &AptMirrorConfig,
        suites: &[UpstreamSuite],
        staging: &Staging,
        read: &ReadIndices,
        reporter: &dyn Reporter,
    ) -> Result<Indices, MirrorError> {
        let keep = (config.mode == MirrorMode::Verbatim).then_some(staging);
        let mut carriers = Carriers::new();
        let packages =
            fetch_indices(context, config, suites, keep, &mut carriers, read, reporter).await?;
        let sources = if config.sources {
            fetch_sources(context, config, suites, keep, &mut carriers).await?
        } else {
            Vec::new()
        };
        Ok(Indices {
            packages,
            sources,
            carriers,
        })
    }
}

/// Packages indices already read by this sync (by the digest of the file fetched), for the
/// mirrors still to come that read the same: several selections from one upstream read its
/// index once. What no later mirror of the same upstream needs is let go.
#[derive(Default)]
pub(super) struct ReadIndices {
    read: Mutex<HashMap<Sha256, ReadText>>,
}

/// An index read: the upstream it came from, its text and its records.
type ReadText = (String, Arc<upstream::PlainIndex>, Arc<Vec<IndexRecord>>);

impl ReadIndices {
    fn get(&self, sha256: &Sha256) -> Option<ReadText> {
        self.read.lock().expect("not poisoned").get(sha256).cloned()
    }

    fn insert(&self, sha256: Sha256, read: ReadText) {
        self.read.lock().expect("not poisoned").insert(sha256, read);
    }

    /// Keeps what was read from these upstreams only.
    pub(super) fn retain(&self, upstreams: &[&str]) {
        self.read
            .lock()
            .expect("not poisoned")
            .retain(|_, (url, _, _)| upstreams.contains(&url.as_str()));
    }
}

/// One index of one suite, read: where it came from and what it holds.
pub(super) struct ReadIndex<R> {
    pub(super) suite: usize,
    pub(super) component: String,
    /// The architecture of a Packages index; `source` for a Sources index.
    pub(super) arch: String,
    pub(super) url: Url,
    pub(super) plain: Arc<upstream::PlainIndex>,
    pub(super) records: Arc<Vec<R>>,
    /// Upstream's compressed files, kept when the whole index may be published as it is.
    pub(super) upstream: Option<UpstreamIndex>,
}

/// A Packages index of one suite, component and architecture.
pub(super) type Index = ReadIndex<IndexRecord>;
/// A Sources index of one suite and component (`sources = true`).
pub(super) type SourceIndex = ReadIndex<SourceRecord>;

/// Fetches, checks, decompresses and reads every Packages index of the mirror.
/// With `whole` (every package of every index is kept), upstream's compressed files are
/// fetched too, to publish as they are (see [`UpstreamIndex`]). Downloads the mirror does not
/// keep (`keep`: verbatim) go to `carriers`.
async fn fetch_indices(
    context: &Arc<Context>,
    config: &AptMirrorConfig,
    suites: &[UpstreamSuite],
    keep: Option<&Staging>,
    carriers: &mut Carriers,
    read: &ReadIndices,
    reporter: &dyn Reporter,
) -> Result<Vec<Index>, MirrorError> {
    let whole = config.mode == MirrorMode::Filtered && config.packages.is_none();
    // Only filtered mirrors with a selection share what they read: the others keep or
    // publish the files they fetch.
    let shared = (keep.is_none() && !whole).then_some(read);
    const COMPRESSED: [&str; 2] = ["Packages.gz", "Packages.xz"];
    let mut jobs = Vec::new();
    for (i, suite) in suites.iter().enumerate() {
        for component in config.components.iter() {
            for arch in config.architectures.iter() {
                let dir = format!("{component}/binary-{arch}");
                // gzip before xz: it decompresses several times faster, which outweighs its
                // larger download.
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
    // Identical indices (an architecture-independent component) are fetched once, and
    // not at all when an earlier mirror of this sync read them.
    let mut needed: BTreeMap<Sha256, (usize, String)> = BTreeMap::new();
    for (i, _, _, path, _) in &jobs {
        let sha256 = suites[*i].release.files[path]
            .sha256
            .expect("chosen for its SHA256");
        if shared.and_then(|s| s.get(&sha256)).is_none() {
            needed.entry(sha256).or_insert((*i, path.clone()));
        }
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
            Err(e) => reporter.warn(&format!(
                "{}; that index is compressed here instead",
                Chain(&e)
            )),
        }
    }
    // Verbatim mirrors store the plain text too, so they need its digest.
    let hash_plain = keep.is_some();
    let reads = jobs
        .into_iter()
        .map(|(i, component, arch, path, upstream)| {
            let suite = &suites[i];
            let sha256 = suite.release.files[&path]
                .sha256
                .expect("chosen for its SHA256");
            let known = shared.and_then(|s| s.get(&sha256));
            let compressed = fetched.get(&sha256).cloned();
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
                let (plain, records) = match (known, compressed) {
                    (Some((_, plain, records)), _) => (plain, records),
                    (None, Some(compressed)) => {
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
                        .map_err(|e| MirrorError::task(&url, e))??;
                        let read = (Arc::new(plain), Arc::new(records));
                        if let Some(shared) = shared {
                            shared.insert(
                                sha256,
                                (config.url.clone(), read.0.clone(), read.1.clone()),
                            );
                        }
                        read
                    }
                    (None, None) => unreachable!("every index not read before is fetched"),
                };
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
pub(super) type Carriers = Vec<std::path::PathBuf>;

pub(super) fn drop_carriers(carriers: Carriers, staging: &Staging) {
    for path in carriers {
        if !staging.has_adopted(&path) {
            let _ = std::fs::remove_file(&path);
        }
    }
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
                    |text| crate::apt::index::read_sources(text),
                )
            })
            .await
            .map_err(|e| MirrorError::task(&url, e))??;
            let records = records.map_err(|e| MirrorError::bad_index(&url, e))?;
            match keep {
                Some(staging) => staging.adopt(compressed, sha256),
                None => carriers.push(compressed),
            }
            out.push(SourceIndex {
                suite: i,
                component: component.to_string(),
                arch: "source".into(),
                url,
                plain: Arc::new(plain),
                records: Arc::new(records),
                upstream: None,
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
