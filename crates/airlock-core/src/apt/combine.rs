//! Published suites that combine suites of repos and mirrors (`[[apt.publish]]`), so that
//! clients need one sources.list line for, say, a filtered Ubuntu mirror plus the site's own
//! packages.
//!
//! A combined suite is a function of what its sources have published: their Packages
//! indices, read back from the store, and their pool files, which the combined tree links
//! from the same blobs. It is rebuilt after every publish and sync, and re-signed only when
//! one of its sources changed (or its Valid-Until is half gone).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use super::AptError;
use super::index::{decompressed, read_packages};
use super::publish::{
    IndexText, PublishReport, SiteRelease, SuiteReport, SuiteStatus, write_signed_suite,
};
use crate::config::{AptPublishConfig, Name, SuiteSource};
use crate::openpgp::SiteKey;
use crate::report::Reporter;
use crate::site::Site;
use crate::storage::{ContentStore, Manifest, Sha256, TreeSet};

const FORMAT: &str = "apt-combine-1";
const INPUT_NOTE: &str = "combined-input";
const WRITTEN_NOTE: &str = "written";
const PACKAGES_NOTE: &str = "packages";

/// Whether a published tree is a combined suite's (its manifest notes its inputs).
pub fn is_combined_tree(manifest: &Manifest) -> bool {
    manifest.note(INPUT_NOTE).next().is_some()
}

/// Rebuilds every `[[apt.publish]]` tree; with `changed`, only those that take from one of
/// the named repos or mirrors.
pub fn publish_combined(
    site: &Site,
    changed: Option<&[String]>,
    reporter: &dyn Reporter,
    now: jiff::Timestamp,
) -> Result<Vec<PublishReport>, AptError> {
    let configs: Vec<&AptPublishConfig> = site
        .config
        .apt
        .publish
        .iter()
        .filter(|p| {
            changed.is_none_or(|names| {
                p.suites
                    .iter()
                    .flat_map(|(_, sources)| sources)
                    .any(|s| names.iter().any(|n| n == s.tree.as_str()))
            })
        })
        .collect();
    if configs.is_empty() {
        return Ok(Vec::new());
    }
    let _lock = site.lock(reporter)?;
    let key = site.signing_key()?;
    let mut reports = Vec::new();
    for config in configs {
        if let Some(report) = publish_one(site, config, &key, reporter, now)? {
            reports.push(report);
        }
    }
    Ok(reports)
}

/// One Packages index of a source suite, as published: the text is read only when the
/// combined suite must be rebuilt, so that a sync or publish that changed nothing stays cheap.
struct SourceIndex {
    component: String,
    arch: String,
    path: String,
    sha256: Sha256,
}

/// A published source tree and the indices of one of its suites.
struct Source<'a> {
    name: &'a SuiteSource,
    manifest: &'a Manifest,
    indices: Vec<SourceIndex>,
}

fn publish_one(
    site: &Site,
    config: &AptPublishConfig,
    key: &SiteKey,
    reporter: &dyn Reporter,
    now: jiff::Timestamp,
) -> Result<Option<PublishReport>, AptError> {
    let store = site.store();
    // The manifests of every source tree, each read once.
    let mut manifests: HashMap<&Name, Manifest> = HashMap::new();
    for source in config.suites.iter().flat_map(|(_, s)| s) {
        if manifests.contains_key(&source.tree) {
            continue;
        }
        let tree = TreeSet::apt(site.data_dir(), source.tree.as_str());
        match tree.current()? {
            Some(manifest) => {
                manifests.insert(&source.tree, manifest);
            }
            None => {
                reporter.warn(&format!(
                    "publish {}: {} is not published yet (airlock publish or airlock sync first); {} is left as it was",
                    config.name, source.tree, config.name
                ));
                return Ok(None);
            }
        }
    }

    let mut input = format!("{FORMAT}\n{}", SiteRelease::from(config).input(key));
    let mut suites = Vec::new();
    for (suite, names) in &config.suites {
        let mut sources = Vec::new();
        for name in names {
            let manifest = &manifests[&name.tree];
            let mut indices = find_indices(name, manifest)?;
            // In the order the source's config lists its components (main before contrib).
            let order = source_components(site, &name.tree);
            indices.sort_by_key(|i| order.iter().position(|c| *c == i.component));
            input.push_str(&format!("{suite} {name}"));
            for index in &indices {
                input.push_str(&format!(" {}", index.sha256));
            }
            input.push('\n');
            sources.push(Source {
                name,
                manifest,
                indices,
            });
        }
        suites.push((suite, sources));
    }
    let input = Sha256::of(input.as_bytes()).to_hex();

    let trees = TreeSet::apt(site.data_dir(), config.name.as_str());
    let previous = trees.current()?.unwrap_or_default();
    let written_at: Option<i64> = previous
        .note(WRITTEN_NOTE)
        .next()
        .and_then(|t| t.parse().ok());
    let refresh_due = config.valid_for.is_some_and(|period| {
        written_at.is_none_or(|t| super::release::renewal_due(t, period.0.as_secs() as i64, now))
    });
    if previous.note(INPUT_NOTE).next() == Some(input.as_str()) && !refresh_due {
        trees.tidy(&previous)?;
        let counts: BTreeMap<&str, usize> = previous
            .note(PACKAGES_NOTE)
            .filter_map(|v| v.split_once(' '))
            .map(|(s, n)| (s, n.parse().unwrap_or(0)))
            .collect();
        return Ok(Some(PublishReport {
            repo: config.name.to_string(),
            suites: config
                .suites
                .iter()
                .map(|(suite, _)| SuiteReport {
                    suite: suite.to_string(),
                    packages: counts.get(suite.as_str()).copied().unwrap_or(0),
                    status: SuiteStatus::Unchanged,
                    valid_until: None,
                })
                .collect(),
            written: false,
        }));
    }

    let staging = store.staging();
    let mut manifest = Manifest::default();
    manifest.notes.push((INPUT_NOTE.into(), input));
    manifest
        .notes
        .push((WRITTEN_NOTE.into(), now.as_second().to_string()));
    let mut reports = Vec::new();
    for (suite, sources) in &suites {
        let combined = combine(config, suite, sources, &store, &mut manifest)?;
        let packages: usize = combined.texts.iter().map(|(_, n)| n).sum();
        let info = SiteRelease::from(config).info(
            suite.as_str(),
            combined.architectures,
            combined.components,
            key,
            now,
        );
        let valid_until = info.valid_until;
        let texts: Vec<IndexText> = combined.texts.into_iter().map(|(t, _)| t).collect();
        write_signed_suite(&info, &texts, key, &staging, &mut manifest)?;
        manifest
            .notes
            .push((PACKAGES_NOTE.into(), format!("{suite} {packages}")));
        reports.push(SuiteReport {
            suite: suite.to_string(),
            packages,
            status: SuiteStatus::Published,
            valid_until,
        });
    }
    super::publish::retain_superseded(
        &previous,
        &mut manifest,
        now,
        site.config.site.grace.0.as_secs() as i64,
    );
    trees.publish(&store, staging, &manifest, &previous)?;
    Ok(Some(PublishReport {
        repo: config.name.to_string(),
        suites: reports,
        written: true,
    }))
}

fn source_components<'a>(site: &'a Site, tree: &Name) -> Vec<&'a str> {
    let config = &site.config;
    let components = match (config.repo(tree.as_str()), config.mirror(tree.as_str())) {
        (Some(repo), _) => &repo.components,
        (None, Some(mirror)) => &mirror.components,
        (None, None) => return Vec::new(),
    };
    components.iter().map(|c| c.as_str()).collect()
}

/// The Packages indices a source suite published, one per component and architecture.
fn find_indices(source: &SuiteSource, manifest: &Manifest) -> Result<Vec<SourceIndex>, AptError> {
    let prefix = format!("dists/{}/", source.suite);
    let mut found: BTreeMap<(String, String), (u8, &str)> = BTreeMap::new();
    for (path, entry) in &manifest.entries {
        let Some(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        if rest.contains("/by-hash/") || entry.retired.is_some() {
            continue;
        }
        let Some((dir, file)) = rest.rsplit_once('/') else {
            continue;
        };
        let Some((component, arch)) = dir.rsplit_once("/binary-") else {
            continue;
        };
        // Plain text when the tree has it (no decompression), else what the upstream sent.
        let rank = match file {
            "Packages" => 0,
            "Packages.gz" => 1,
            "Packages.xz" => 2,
            _ => continue,
        };
        let slot = found
            .entry((component.to_string(), arch.to_string()))
            .or_insert((rank, path));
        if rank < slot.0 {
            *slot = (rank, path);
        }
    }
    if found.is_empty() {
        return Err(AptError::Combine {
            what: source.to_string(),
            reason: "its published tree has no Packages index for this suite".into(),
        });
    }
    Ok(found
        .into_iter()
        .map(|((component, arch), (_, path))| SourceIndex {
            component,
            arch,
            path: path.to_string(),
            sha256: manifest.entries[path].sha256,
        })
        .collect())
}

fn read_index(
    store: &ContentStore,
    source: &SuiteSource,
    index: &SourceIndex,
) -> Result<String, AptError> {
    let blob = store.blob_path(&index.sha256);
    let unreadable = |error: std::io::Error| AptError::CombineRead {
        what: format!("{source}: {}", index.path),
        blob: blob.clone(),
        source: error,
    };
    let file = std::fs::File::open(&blob).map_err(unreadable)?;
    let mut reader = decompressed(&index.path, file);
    let mut text = String::new();
    reader.read_to_string(&mut text).map_err(unreadable)?;
    Ok(text)
}

struct Combined {
    components: Vec<String>,
    architectures: Vec<String>,
    /// One index per component and architecture, with its package count.
    texts: Vec<(IndexText, usize)>,
}

/// Joins the sources' stanzas per component and architecture, adding their pool files to
/// `manifest`. A package, version and architecture already taken from an earlier source is
/// skipped; one pool path with two contents is an error (clients would get hash mismatches).
fn combine(
    config: &AptPublishConfig,
    suite: &Name,
    sources: &[Source<'_>],
    store: &ContentStore,
    manifest: &mut Manifest,
) -> Result<Combined, AptError> {
    let mut components: Vec<String> = Vec::new();
    let mut architectures: Vec<String> = Vec::new();
    // (component, arch) → text, count, and the packages it has.
    type Taken = std::collections::HashSet<(String, String, String)>;
    let mut texts: BTreeMap<(String, String), (String, usize, Taken)> = BTreeMap::new();
    let mut pool: HashMap<String, (Sha256, String)> = HashMap::new();
    for source in sources {
        for index in &source.indices {
            if !components.contains(&index.component) {
                components.push(index.component.clone());
            }
            if !architectures.contains(&index.arch) {
                architectures.push(index.arch.clone());
            }
            let what = || {
                format!(
                    "{}: {}/binary-{}/Packages",
                    source.name, index.component, index.arch
                )
            };
            let bad = |reason: String| AptError::Combine {
                what: what(),
                reason,
            };
            let index_text = read_index(store, source.name, index)?;
            let records = read_packages(&mut index_text.as_bytes()).map_err(|source| {
                AptError::CombineIndex {
                    what: what(),
                    source,
                }
            })?;
            let (text, count, taken) = texts
                .entry((index.component.clone(), index.arch.clone()))
                .or_default();
            for record in records {
                let id = (
                    record.name().to_string(),
                    record.version().to_string(),
                    record.architecture().to_string(),
                );
                if taken.contains(&id) {
                    continue;
                }
                let filename = record.filename();
                match pool.get(filename) {
                    Some((sha256, from)) if *sha256 != record.sha256 => {
                        return Err(AptError::Combine {
                            what: format!("publish {} suite {suite}", config.name),
                            reason: format!(
                                "{filename} is {sha256} in {from} but {} in {}",
                                record.sha256, source.name
                            ),
                        });
                    }
                    Some(_) => {}
                    None => {
                        let entry = source
                            .manifest
                            .entries
                            .get(filename)
                            .filter(|e| e.sha256 == record.sha256)
                            .ok_or_else(|| {
                                bad(format!("lists {filename}, which its tree does not hold"))
                            })?;
                        manifest.add(filename, entry.sha256, entry.size);
                        pool.insert(
                            filename.to_string(),
                            (record.sha256, source.name.to_string()),
                        );
                    }
                }
                let start = record.offset as usize;
                text.push_str(&index_text[start..start + record.length as usize]);
                text.push_str("\n\n");
                *count += 1;
                taken.insert(id);
            }
        }
    }
    Ok(Combined {
        components,
        architectures,
        texts: texts
            .into_iter()
            .map(|((component, arch), (text, count, _))| {
                (
                    IndexText {
                        component,
                        arch,
                        text,
                        upstream: None,
                    },
                    count,
                )
            })
            .collect(),
    })
}
