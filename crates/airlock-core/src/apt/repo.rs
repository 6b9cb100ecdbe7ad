//! Local repositories: the operator's own .deb files, per suite and component (what reprepro
//! `includedeb` / `remove` / `list` do).
//!
//! The state of a repo is one deb822 file, `state/apt/REPO.packages`: each paragraph is the
//! Packages stanza of one package, preceded by the suite and component it belongs to. It is
//! replaced atomically, after every blob it names is in the content store.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use fs_err as fs;

use super::AptError;
use super::deb::read_control;
use super::deb822;
use super::package::{BinaryPackage, compare_versions};
use crate::config::AptRepoConfig;
use crate::hint::Chain;
use crate::report::{Reporter, Unit};
use crate::site::Site;
use crate::storage::{Manifest, StagedBlob, Staging, StorageError, TreeSet, write_atomic};
use crate::util::parallel_map;

const SUITE_FIELD: &str = "Airlock-Suite";
const COMPONENT_FIELD: &str = "Airlock-Component";

/// A package and where it sits in the repo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPackage {
    pub suite: String,
    pub component: String,
    pub package: BinaryPackage,
}

impl RepoPackage {
    /// Repo-wide order: suite, component, name, architecture, then version.
    fn order(&self, other: &RepoPackage) -> std::cmp::Ordering {
        (
            &self.suite,
            &self.component,
            &self.package.name,
            &self.package.architecture,
        )
            .cmp(&(
                &other.suite,
                &other.component,
                &other.package.name,
                &other.package.architecture,
            ))
            .then_with(|| self.package.cmp_version(&other.package))
    }
}

/// Every package of one local repo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoState {
    pub packages: Vec<RepoPackage>,
}

impl RepoState {
    pub fn path(site: &Site, repo: &str) -> PathBuf {
        site.data_dir()
            .join("state")
            .join("apt")
            .join(format!("{repo}.packages"))
    }

    pub fn load(site: &Site, repo: &str) -> Result<RepoState, AptError> {
        let path = Self::path(site, repo);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RepoState::default()),
            Err(source) => return Err(StorageError::Read { path, source }.into()),
        };
        let corrupt = |reason: String| {
            AptError::from(StorageError::Corrupt {
                path: path.clone(),
                reason,
            })
        };
        let mut packages = Vec::new();
        for paragraph in deb822::paragraphs(&text) {
            let paragraph = paragraph.map_err(|e| corrupt(Chain(&e).to_string()))?;
            let line = paragraph.first_line();
            let fields = paragraph.fields();
            let (Some(suite), Some(component)) = (fields.first(), fields.get(1)) else {
                return Err(corrupt(format!(
                    "line {line}: paragraph without suite and component"
                )));
            };
            if suite.name != SUITE_FIELD || component.name != COMPONENT_FIELD {
                return Err(corrupt(format!(
                    "line {line}: paragraph without suite and component"
                )));
            }
            // The stanza is what follows the two bookkeeping lines.
            let stanza = paragraph
                .without_leading(2)
                .ok_or_else(|| corrupt(format!("line {line}: empty package")))?;
            let package = BinaryPackage::from_stanza(&stanza)
                .map_err(|e| corrupt(format!("line {line}: {e}")))?;
            packages.push(RepoPackage {
                suite: suite.value.to_string(),
                component: component.value.to_string(),
                package,
            });
        }
        Ok(RepoState { packages })
    }

    fn save(&self, site: &Site, repo: &str) -> Result<(), AptError> {
        let mut text = String::with_capacity(
            self.packages
                .iter()
                .map(|p| p.package.stanza.len() + 64)
                .sum(),
        );
        for p in &self.packages {
            text.push_str(&format!(
                "{SUITE_FIELD}: {}\n{COMPONENT_FIELD}: {}\n",
                p.suite, p.component
            ));
            text.push_str(&p.package.stanza);
            text.push_str("\n\n");
        }
        write_atomic(&Self::path(site, repo), text.as_bytes(), 0o644)?;
        Ok(())
    }

    /// The packages of one suite.
    pub fn suite<'a>(&'a self, suite: &'a str) -> impl Iterator<Item = &'a RepoPackage> + 'a {
        self.packages.iter().filter(move |p| p.suite == suite)
    }
}

/// Looks up a configured repo, and a suite and component of it when given.
pub fn configured_repo<'a>(
    site: &'a Site,
    repo: &str,
    suite: Option<&str>,
    component: Option<&str>,
) -> Result<&'a AptRepoConfig, AptError> {
    let list = |items: Vec<String>| items.join(", ");
    let config = site
        .config
        .repo(repo)
        .ok_or_else(|| AptError::UnknownRepo {
            repo: repo.to_string(),
            known: list(
                site.config
                    .apt
                    .repos
                    .iter()
                    .map(|r| r.name.to_string())
                    .collect(),
            ),
            config: site.config.path.clone(),
        })?;
    if let Some(suite) = suite.filter(|s| !config.has_suite(s)) {
        return Err(AptError::UnknownSuite {
            repo: repo.to_string(),
            suite: suite.to_string(),
            known: list(config.suites.iter().map(|s| s.to_string()).collect()),
        });
    }
    if let Some(component) = component.filter(|c| !config.has_component(c)) {
        return Err(AptError::UnknownComponent {
            repo: repo.to_string(),
            component: component.to_string(),
            known: list(config.components.iter().map(|c| c.to_string()).collect()),
        });
    }
    Ok(config)
}

/// What an include did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IncludeReport {
    /// Packages that entered the suite.
    pub added: Vec<String>,
    /// Older versions they pushed out (beyond `keep_versions`).
    pub replaced: Vec<String>,
    /// Files whose package was already there, identical.
    pub unchanged: Vec<String>,
    /// Files older than every version the suite keeps.
    pub skipped: Vec<String>,
}

/// Adds .deb files (or every .deb below given folders) to a suite and component.
///
/// All-or-nothing: every file is read, checked and staged first; a single bad file aborts the
/// whole include and leaves the repository and the store exactly as they were.
pub fn include(
    site: &Site,
    repo: &str,
    suite: &str,
    component: &str,
    inputs: &[PathBuf],
    reporter: &dyn Reporter,
) -> Result<IncludeReport, AptError> {
    let config = configured_repo(site, repo, Some(suite), Some(component))?;
    let files = expand_inputs(inputs)?;
    let _lock = site.lock(reporter)?;
    let store = site.store();
    let staging = store.staging();

    let task = reporter.start("reading packages", Some(files.len() as u64), Unit::Items);
    let results = parallel_map(&files, |file| {
        let outcome = stage_deb(&staging, file, component, config);
        reporter.advance(task, 1);
        outcome
    });
    reporter.finish(task);
    let mut incoming = Vec::with_capacity(files.len());
    let mut failures = results
        .into_iter()
        .zip(&files)
        .filter_map(|(r, f)| match r {
            Ok(package) => {
                incoming.push((f.clone(), package));
                None
            }
            Err(e) => Some(e),
        });
    if let Some(first) = failures.next() {
        let others = failures.count();
        return Err(if others == 0 {
            first
        } else {
            AptError::Several {
                first: Box::new(first),
                others,
            }
        });
    }

    let mut state = RepoState::load(site, repo)?;
    check_pool_conflicts(&state, component, &incoming)?;
    let served = TreeSet::apt(site.data_dir(), repo).current()?;
    if let Some(served) = served {
        let grace = site.config.site.grace.0.as_secs() as i64;
        check_served_pool(
            &served,
            &incoming,
            grace,
            jiff::Timestamp::now().as_second(),
        )?;
    }
    let report = merge(&mut state, suite, component, incoming, config.keep_versions);
    staging.commit()?;
    if !report.added.is_empty() || !report.replaced.is_empty() {
        state.save(site, repo)?;
    }
    Ok(report)
}

/// Expands folders into the .deb files below them, sorted; refuses paths that do not exist.
fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, AptError> {
    let mut files = Vec::new();
    for input in inputs {
        let meta = fs::metadata(input).map_err(|source| StorageError::Read {
            path: input.clone(),
            source,
        })?;
        if meta.is_dir() {
            let before = files.len();
            collect_debs(input, &mut files)?;
            if files.len() == before {
                return Err(AptError::NoPackages { dir: input.clone() });
            }
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

fn collect_debs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), AptError> {
    let read_err = |source| StorageError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(read_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type().map_err(read_err)?;
        if kind.is_dir() {
            collect_debs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "deb") {
            out.push(path);
        }
    }
    Ok(())
}

fn stage_deb(
    staging: &Staging,
    file: &Path,
    component: &str,
    config: &AptRepoConfig,
) -> Result<BinaryPackage, AptError> {
    let mut reader = super::deb::open_checked(file).map_err(|e| AptError::deb(file, e))?;
    let StagedBlob { hashes, temp_path } = staging.add_reader(file, &mut reader)?;
    // Parse the staged copy: it cannot change under us between hashing and reading.
    let control = read_control(&temp_path).map_err(|e| AptError::deb(file, e))?;
    let package = BinaryPackage::from_control(&control, &hashes, component).map_err(|e| {
        AptError::BadPackage {
            file: file.to_path_buf(),
            reason: e.0,
        }
    })?;
    let arch = &package.architecture;
    if arch != "all" && !config.has_architecture(arch) {
        return Err(AptError::BadPackage {
            file: file.to_path_buf(),
            reason: format!(
                "architecture {arch} is not one repo {} carries ({}); add it to architectures in the config",
                config.name,
                config
                    .architectures
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    Ok(package)
}

/// One pool path holds one file: a version already included anywhere in the repo (or twice in
/// this batch) with different bytes would give clients a hash mismatch.
fn check_pool_conflicts(
    state: &RepoState,
    component: &str,
    incoming: &[(PathBuf, BinaryPackage)],
) -> Result<(), AptError> {
    let mut seen: HashMap<&str, (&BinaryPackage, String)> = HashMap::new();
    for p in &state.packages {
        seen.insert(
            &p.package.filename,
            (&p.package, format!("suite {} of the repo", p.suite)),
        );
    }
    for (file, package) in incoming {
        if let Some((existing, where_)) = seen.get(package.filename.as_str())
            && existing.sha256 != package.sha256
        {
            return Err(AptError::BadPackage {
                file: file.clone(),
                reason: format!(
                    "{} {} ({}) is already in {where_} with different content; a version has one content, so give the rebuilt package a new version",
                    package.name, package.version, package.architecture
                ),
            });
        }
        seen.insert(
            &package.filename,
            (package, format!("{} (in {component})", file.display())),
        );
    }
    Ok(())
}

/// A pool path the served tree still holds (current, or kept for the grace period after a
/// remove) names the bytes clients with an older index expect there: other bytes under that
/// path would fail their hash check, so they are refused until the old file has left.
fn check_served_pool(
    served: &Manifest,
    incoming: &[(PathBuf, BinaryPackage)],
    grace: i64,
    now: i64,
) -> Result<(), AptError> {
    for (file, package) in incoming {
        let Some(entry) = served.entries.get(&package.filename) else {
            continue;
        };
        // Past its grace period, the next publish drops the old file anyway.
        let expired = entry.retired.is_some_and(|retired| retired + grace <= now);
        if entry.sha256 == package.sha256 || expired {
            continue;
        }
        let until = match entry.retired {
            Some(retired) => format!(
                "until {} (the grace period after its removal, [site] grace)",
                jiff::Timestamp::from_second(retired + grace)
                    .map(|t| t.to_string())
                    .unwrap_or_else(|_| "the grace period has passed".into())
            ),
            None => {
                "until a publish removes it and the grace period ([site] grace) has passed".into()
            }
        };
        return Err(AptError::BadPackage {
            file: file.clone(),
            reason: format!(
                "{} {} ({}) with other content is still served as {} to clients that read an older index, {until}; include these bytes after that, or give the rebuilt package a new version",
                package.name, package.version, package.architecture, package.filename
            ),
        });
    }
    Ok(())
}

/// Adds packages to a suite/component, keeping the `keep` newest versions of each name/arch.
fn merge(
    state: &mut RepoState,
    suite: &str,
    component: &str,
    incoming: Vec<(PathBuf, BinaryPackage)>,
    keep: usize,
) -> IncludeReport {
    let mut report = IncludeReport::default();
    let describe = |p: &BinaryPackage| format!("{} {} ({})", p.name, p.version, p.architecture);
    let mut groups: BTreeMap<(String, String), Vec<BinaryPackage>> = BTreeMap::new();
    let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut state.packages)
        .into_iter()
        .partition(|p| p.suite == suite && p.component == component);
    for p in mine {
        groups
            .entry((p.package.name.clone(), p.package.architecture.clone()))
            .or_default()
            .push(p.package);
    }
    // Pool path -> the file it came from, for the packages of this include.
    let mut new_files: HashMap<String, PathBuf> = HashMap::new();
    for (file, package) in incoming {
        let group = groups
            .entry((package.name.clone(), package.architecture.clone()))
            .or_default();
        if group.iter().any(|p| p.version == package.version) {
            report.unchanged.push(file.display().to_string());
            continue;
        }
        new_files.insert(package.filename.clone(), file);
        group.push(package);
    }
    state.packages = others;
    for (_, mut versions) in groups {
        versions.sort_by(|a, b| b.cmp_version(a));
        for (rank, package) in versions.into_iter().enumerate() {
            match (rank < keep, new_files.get(&package.filename)) {
                (true, new) => {
                    if new.is_some() {
                        report.added.push(describe(&package));
                    }
                    state.packages.push(RepoPackage {
                        suite: suite.to_string(),
                        component: component.to_string(),
                        package,
                    });
                }
                (false, Some(file)) => report.skipped.push(format!(
                    "{}: {} is older than the {keep} version(s) the suite keeps",
                    file.display(),
                    describe(&package)
                )),
                (false, None) => report.replaced.push(describe(&package)),
            }
        }
    }
    state.packages.sort_by(RepoPackage::order);
    report
}

/// Which packages `remove` takes out of a suite.
#[derive(Debug, Clone, Default)]
pub struct RemoveFilter {
    pub version: Option<String>,
    pub architecture: Option<String>,
    pub component: Option<String>,
}

/// Removes packages by name from a suite; every name must match something.
pub fn remove(
    site: &Site,
    repo: &str,
    suite: &str,
    names: &[String],
    filter: &RemoveFilter,
    reporter: &dyn Reporter,
) -> Result<Vec<RepoPackage>, AptError> {
    configured_repo(site, repo, Some(suite), filter.component.as_deref())?;
    let _lock = site.lock(reporter)?;
    let mut state = RepoState::load(site, repo)?;
    let matches = |p: &RepoPackage, name: &str| {
        p.suite == suite
            && p.package.name == name
            && filter
                .version
                .as_ref()
                .is_none_or(|v| compare_versions(v, &p.package.version).is_eq())
            && filter
                .architecture
                .as_ref()
                .is_none_or(|a| *a == p.package.architecture)
            && filter.component.as_ref().is_none_or(|c| *c == p.component)
    };
    for name in names {
        if !state.packages.iter().any(|p| matches(p, name)) {
            return Err(AptError::NotFound {
                what: name.clone(),
                repo: repo.to_string(),
                suite: suite.to_string(),
            });
        }
    }
    let (removed, kept): (Vec<_>, Vec<_>) = state
        .packages
        .into_iter()
        .partition(|p| names.iter().any(|n| matches(p, n)));
    state.packages = kept;
    state.save(site, repo)?;
    Ok(removed)
}
