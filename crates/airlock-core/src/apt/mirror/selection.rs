//! What a sync mirrors: the packages the patterns and their dependency closure choose, over
//! every suite and component, the sources they were built from, and the pool files of both.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Url;

use super::indices::{Index, Indices, SourceIndex};
use super::{Conflict, MirrorError, MirrorReport, VirtualName};
use crate::apt::closure::{Candidate, ClosureOptions, close};
use crate::config::AptMirrorConfig;
use crate::storage::Sha256;

/// The records chosen in each index.
pub(super) struct Selection {
    pub(super) packages: Selected,
    pub(super) sources: Selected,
}

impl Selection {
    /// Chooses the packages and sources to mirror; what matched nothing or could not be
    /// satisfied goes to `report`.
    ///
    /// A name of `packages` that matches no package, real or virtual, is an error: a typo
    /// must not replace a good mirror with an empty one.
    pub(super) fn new(
        config: &AptMirrorConfig,
        indices: &Indices,
        explain: Option<&str>,
        report: &mut MirrorReport,
    ) -> Result<Selection, MirrorError> {
        let packages = select(config, &indices.packages, explain, report);
        let typos: Vec<String> = report
            .unmatched
            .iter()
            .filter(|p| !p.contains(['*', '?']))
            .cloned()
            .collect();
        if !typos.is_empty() {
            return Err(MirrorError::Unmatched {
                mirror: config.name.to_string(),
                names: typos,
            });
        }
        let sources = select_sources(
            config,
            &indices.packages,
            &packages,
            &indices.sources,
            report,
        );
        Ok(Selection { packages, sources })
    }

    /// The packages chosen in suite `suite` (its index among the mirror's suites).
    pub(super) fn packages_in(&self, indices: &Indices, suite: usize) -> usize {
        indices
            .packages
            .iter()
            .zip(&self.packages)
            .filter(|(x, _)| x.suite == suite)
            .map(|(_, c)| c.len())
            .sum()
    }

    /// Every pool file of the chosen packages and sources; one path, one content.
    pub(super) fn pool(&self, indices: &Indices) -> Result<Pool, MirrorError> {
        let mut pool = Pool::new();
        for (index, chosen) in indices.packages.iter().zip(&self.packages) {
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
        for (index, chosen) in indices.sources.iter().zip(&self.sources) {
            for &r in chosen {
                for (path, size, sha256) in &index.records[r].files {
                    add_to_pool(&mut pool, path, *sha256, *size, &index.url)?;
                }
            }
        }
        Ok(pool)
    }
}

/// Selected records, per index, in index order.
pub(super) type Selected = Vec<BTreeSet<usize>>;

/// Runs the closure for each architecture over the indices of every suite and component.
fn select(
    config: &AptMirrorConfig,
    indices: &[Index],
    explain: Option<&str>,
    report: &mut MirrorReport,
) -> Selected {
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
                alternatives: config.alternatives,
                explain,
            },
        );
        for c in selection.chosen {
            let (i, r) = places[c];
            selected[i].insert(r);
        }
        unsatisfied.extend(selection.unsatisfied);
        for (name, providers) in selection.virtuals {
            let resolved = VirtualName { name, providers };
            if !report.virtuals.contains(&resolved) {
                report.virtuals.push(resolved);
            }
        }
        // The first architecture that selected the package explains it, else the first.
        if let Some(e) = selection.explanation
            && report
                .explanation
                .as_ref()
                .is_none_or(|(_, had)| had.chain.is_empty() && !e.chain.is_empty())
        {
            report.explanation = Some((arch.to_string(), e));
        }
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
pub(super) type Pool = BTreeMap<String, (Sha256, u64, String)>;

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
