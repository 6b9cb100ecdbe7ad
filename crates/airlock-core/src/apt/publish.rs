//! Publishing a local repo as a signed apt tree.
//!
//! Every file of the tree is a blob of the content store; the tree itself is switched in one
//! rename (see [`crate::storage::tree`]). So that no client ever sees a Hash Sum mismatch:
//! - indices are also published under `by-hash/SHA256/`, which apt uses when the Release says
//!   `Acquire-By-Hash: yes`, and those paths never change content;
//! - by-hash files and pool files a publish drops stay in the tree for the site's grace period,
//!   so a client that read the previous InRelease can still fetch what it names.
//!
//! A suite whose inputs did not change keeps its signed files (and their Date), and a repo
//! where nothing changed is not written at all.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use super::AptError;
use super::package::BinaryPackage;
use super::release::{IndexFile, ReleaseInfo, render_component_release, render_release};
use super::repo::{RepoPackage, RepoState};
use crate::config::{AptPublishConfig, AptRepoConfig, FieldValue, Name, Period};
use crate::openpgp::SiteKey;
use crate::report::{Reporter, Unit};
use crate::site::Site;
use crate::storage::{Manifest, Sha256, Staging, StorageError, TreeSet};
use crate::util::parallel_map;

/// Bumped when the layout of published files changes, so that an upgrade republishes.
const FORMAT: &str = "apt-publish-1";
const SUITE_NOTE: &str = "suite";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SuiteStatus {
    /// Newly signed.
    Published,
    /// Nothing changed: the previous signed files are kept.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SuiteReport {
    pub suite: String,
    pub packages: usize,
    pub status: SuiteStatus,
    pub valid_until: Option<jiff::Timestamp>,
}

/// What publishing one repo (or mirror, or combined suite) did; `publish --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublishReport {
    pub repo: String,
    pub suites: Vec<SuiteReport>,
    /// False when the tree served already was exactly this one and nothing was written.
    pub written: bool,
}

/// Publishes the named repos (all configured ones when `repos` is empty).
pub fn publish(
    site: &Site,
    repos: &[String],
    reporter: &dyn Reporter,
    now: jiff::Timestamp,
) -> Result<Vec<PublishReport>, AptError> {
    let configs: Vec<&AptRepoConfig> = if repos.is_empty() {
        site.config.apt.repos.iter().collect()
    } else {
        repos
            .iter()
            .map(|r| super::repo::configured_repo(site, r, None, None))
            .collect::<Result<_, _>>()?
    };
    let _lock = site.lock(reporter)?;
    let key = site.signing_key()?;
    configs
        .into_iter()
        .map(|config| publish_repo(site, config, &key, reporter, now))
        .collect()
}

/// The previous publish of a suite, as recorded in the manifest.
struct SuiteNote {
    input: String,
    valid_until: Option<i64>,
}

impl SuiteNote {
    fn render(&self, suite: &str) -> String {
        let until = self.valid_until.map_or("-".to_string(), |t| t.to_string());
        format!("{suite} {} {until}", self.input)
    }

    fn parse(manifest: &Manifest) -> BTreeMap<String, SuiteNote> {
        manifest
            .note(SUITE_NOTE)
            .filter_map(|v| {
                let mut parts = v.split(' ');
                let suite = parts.next()?.to_string();
                let input = parts.next()?.to_string();
                let valid_until = parts.next()?.parse().ok();
                Some((suite, SuiteNote { input, valid_until }))
            })
            .collect()
    }
}

/// How a suite this site composes (a local repo's or a combined one's) names itself in its
/// Release: Origin and Label from the config, else the repo's name.
pub(super) struct SiteRelease<'a> {
    name: &'a Name,
    origin: &'a Option<FieldValue>,
    label: &'a Option<FieldValue>,
    description: &'a Option<FieldValue>,
    valid_for: Option<Period>,
}

impl<'a> From<&'a AptRepoConfig> for SiteRelease<'a> {
    fn from(c: &'a AptRepoConfig) -> SiteRelease<'a> {
        SiteRelease::new(&c.name, &c.origin, &c.label, &c.description, c.valid_for)
    }
}

impl<'a> From<&'a AptPublishConfig> for SiteRelease<'a> {
    fn from(c: &'a AptPublishConfig) -> SiteRelease<'a> {
        SiteRelease::new(&c.name, &c.origin, &c.label, &c.description, c.valid_for)
    }
}

impl<'a> SiteRelease<'a> {
    fn new(
        name: &'a Name,
        origin: &'a Option<FieldValue>,
        label: &'a Option<FieldValue>,
        description: &'a Option<FieldValue>,
        valid_for: Option<Period>,
    ) -> SiteRelease<'a> {
        SiteRelease {
            name,
            origin,
            label,
            description,
            valid_for,
        }
    }

    /// What the Release takes from the config and the key, one line each, for the digests
    /// that tell whether a suite must be written again.
    pub(super) fn input(&self, key: &SiteKey) -> String {
        format!(
            "{:?}\n{:?}\n{:?}\n{:?}\n{}\n",
            self.origin.as_ref().map(|o| o.as_str()),
            self.label.as_ref().map(|l| l.as_str()),
            self.description.as_ref().map(|d| d.as_str()),
            self.valid_for.map(|p| p.0.as_secs()),
            key.fingerprint(),
        )
    }

    /// The Release of `suite` (its Suite and Codename both the folder's name), dated `now`,
    /// valid for the configured period, and signed by `key`.
    pub(super) fn info(
        &self,
        suite: &str,
        architectures: Vec<String>,
        components: Vec<String>,
        key: &SiteKey,
        now: jiff::Timestamp,
    ) -> ReleaseInfo {
        let or_name = |field: &Option<FieldValue>| {
            field
                .as_ref()
                .map_or(self.name.to_string(), |v| v.to_string())
        };
        ReleaseInfo {
            suite_dir: suite.to_string(),
            origin: or_name(self.origin),
            label: or_name(self.label),
            suite: suite.to_string(),
            codename: suite.to_string(),
            version: None,
            description: self.description.as_ref().map(|d| d.to_string()),
            date: now,
            valid_until: self.valid_for.map(|p| now + p.0),
            architectures,
            components,
            signed_by: key.fingerprint(),
        }
    }
}

fn publish_repo(
    site: &Site,
    config: &AptRepoConfig,
    key: &SiteKey,
    reporter: &dyn Reporter,
    now: jiff::Timestamp,
) -> Result<PublishReport, AptError> {
    let repo = config.name.as_str();
    let state = RepoState::load(site, repo)?;
    warn_unpublished(&state, config, reporter);
    let trees = TreeSet::apt(site.data_dir(), repo);
    let previous = trees.current()?.unwrap_or_default();
    let previous_notes = SuiteNote::parse(&previous);
    let store = site.store();
    let staging = store.staging();
    let mut manifest = Manifest::default();
    let mut reports = Vec::new();
    let task = reporter.start(
        &format!("publishing {repo}"),
        Some(config.suites.len() as u64),
        Unit::Items,
    );
    for suite in config.suites.iter().map(|s| s.as_str()) {
        let packages: Vec<&RepoPackage> = state
            .suite(suite)
            .filter(|p| is_indexed(config, p))
            .collect();
        let indices = build_indices(config, &packages);
        let input = input_digest(config, suite, key, &indices).to_hex();
        let kept = previous_notes.get(suite).filter(|note| {
            let refresh_due = match (note.valid_until, config.valid_for) {
                (Some(until), Some(period)) => {
                    let period = period.0.as_secs() as i64;
                    super::release::renewal_due(until - period, period, now)
                }
                _ => false,
            };
            note.input == input && !refresh_due
        });
        let (status, valid_until) = match kept {
            Some(note) => {
                let prefix = format!("dists/{suite}/");
                for (path, entry) in &previous.entries {
                    if path.starts_with(&prefix) && entry.retired.is_none() {
                        manifest.entries.insert(path.clone(), entry.clone());
                    }
                }
                (SuiteStatus::Unchanged, note.valid_until)
            }
            None => {
                let info = SiteRelease::from(config).info(
                    suite,
                    config.architectures.iter().map(|a| a.to_string()).collect(),
                    config.components.iter().map(|c| c.to_string()).collect(),
                    key,
                    now,
                );
                let valid_until = info.valid_until;
                let texts: Vec<IndexText> = indices
                    .iter()
                    .map(|i| IndexText {
                        component: i.component.clone(),
                        arch: i.arch.clone(),
                        text: i.render(),
                        upstream: None,
                    })
                    .collect();
                write_signed_suite(&info, &texts, key, &staging, &mut manifest)?;
                (SuiteStatus::Published, valid_until.map(|t| t.as_second()))
            }
        };
        manifest.notes.push((
            SUITE_NOTE.into(),
            SuiteNote { input, valid_until }.render(suite),
        ));
        for p in &packages {
            manifest.add(&p.package.filename, p.package.sha256, p.package.size);
        }
        reports.push(SuiteReport {
            suite: suite.to_string(),
            packages: packages.len(),
            status,
            valid_until: valid_until.and_then(|t| jiff::Timestamp::from_second(t).ok()),
        });
        reporter.advance(task, 1);
    }
    reporter.finish(task);
    retain_superseded(
        &previous,
        &mut manifest,
        now,
        site.config.site.grace.0.as_secs() as i64,
    );

    let written = manifest != previous;
    if written {
        trees.publish(&store, staging, &manifest, &previous)?;
    } else {
        trees.tidy(&previous)?;
    }
    Ok(PublishReport {
        repo: repo.to_string(),
        suites: reports,
        written,
    })
}

/// Packages whose suite, component and architecture the config still carries.
fn is_indexed(config: &AptRepoConfig, p: &RepoPackage) -> bool {
    config.has_component(&p.component)
        && (p.package.architecture == "all" || config.has_architecture(&p.package.architecture))
}

fn warn_unpublished(state: &RepoState, config: &AptRepoConfig, reporter: &dyn Reporter) {
    let orphans: BTreeSet<String> = state
        .packages
        .iter()
        .filter(|p| !config.has_suite(&p.suite) || !is_indexed(config, p))
        .map(|p| format!("{}/{} ({})", p.suite, p.component, p.package.architecture))
        .collect();
    if !orphans.is_empty() {
        reporter.warn(&format!(
            "repo {} holds packages in {} which the config no longer lists; they are not published",
            config.name,
            orphans.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
}

/// The packages of one component and architecture, in Packages order.
struct Index<'a> {
    component: String,
    arch: String,
    packages: Vec<&'a BinaryPackage>,
}

impl Index<'_> {
    /// The Packages file: the stanzas, each followed by a blank line.
    fn render(&self) -> String {
        let mut text =
            String::with_capacity(self.packages.iter().map(|p| p.stanza.len() + 2).sum());
        for p in &self.packages {
            text.push_str(&p.stanza);
            text.push_str("\n\n");
        }
        text
    }
}

fn build_indices<'a>(config: &AptRepoConfig, packages: &[&'a RepoPackage]) -> Vec<Index<'a>> {
    let mut indices = Vec::new();
    for component in config.components.iter() {
        for arch in config.architectures.iter() {
            let mut selected: Vec<&BinaryPackage> = packages
                .iter()
                .filter(|p| p.component == component.as_str())
                .map(|p| &p.package)
                .filter(|p| p.architecture == arch.as_str() || p.architecture == "all")
                .collect();
            selected.sort_by(|a, b| {
                a.name
                    .cmp(&b.name)
                    .then_with(|| a.cmp_version(b))
                    .then_with(|| a.architecture.cmp(&b.architecture))
            });
            indices.push(Index {
                component: component.to_string(),
                arch: arch.to_string(),
                packages: selected,
            });
        }
    }
    indices
}

/// Everything a suite's signed files depend on, other than the clock. A stanza is fixed by its
/// pool path and the .deb's digest, so those stand for the whole Packages text: hashing 100
/// bytes per package instead of 700 keeps a publish that changes nothing fast.
fn input_digest(
    config: &AptRepoConfig,
    suite: &str,
    key: &SiteKey,
    indices: &[Index<'_>],
) -> Sha256 {
    let release = SiteRelease::from(config).input(key);
    let mut text = format!("{FORMAT}\n{suite}\n{release}");
    for index in indices {
        text.push_str(&format!("index {} {}\n", index.component, index.arch));
        for p in &index.packages {
            text.push_str(&format!("{} {}\n", p.filename, p.sha256));
        }
    }
    Sha256::of(text.as_bytes())
}

/// One Packages file of a suite, ready to publish; `arch` "source" makes it a Sources file.
pub(crate) struct IndexText {
    pub component: String,
    pub arch: String,
    pub text: String,
    /// Upstream's own compressed files of this index, used when `text` is upstream's.
    pub upstream: Option<UpstreamIndex>,
}

/// An upstream's compressed files of one index, each checked against its signed Release.
/// A mirror that keeps a whole index publishes them instead of compressing the text again:
/// on Debian's main index that saves seconds of xz, and clients get upstream's smaller files.
#[derive(Clone)]
pub(crate) struct UpstreamIndex {
    /// The text they decompress to, as the signed Release lists it.
    pub plain: Sha256,
    pub files: Vec<UpstreamFile>,
}

#[derive(Clone)]
pub(crate) struct UpstreamFile {
    pub format: Format,
    /// A complete, verified download, adopted into the staging when used.
    pub path: std::path::PathBuf,
    pub sha256: Sha256,
}

impl IndexText {
    /// Its folder under `dists/SUITE/` and its uncompressed file name.
    fn location(&self) -> (String, &'static str) {
        if self.arch == "source" {
            (format!("{}/source", self.component), "Sources")
        } else {
            (
                format!("{}/binary-{}", self.component, self.arch),
                "Packages",
            )
        }
    }
}

/// Writes the indices of a suite (plain, gzip, xz, by-hash) and its Release, InRelease and
/// Release.gpg, signed with `key`, under `dists/SUITE/` of `manifest`.
pub(crate) fn write_signed_suite(
    info: &ReleaseInfo,
    indices: &[IndexText],
    key: &SiteKey,
    staging: &Staging,
    manifest: &mut Manifest,
) -> Result<(), AptError> {
    let suite = &info.suite_dir;
    let plains: Vec<Sha256> = indices
        .iter()
        .map(|i| Sha256::of(i.text.as_bytes()))
        .collect();
    // Upstream's own file where the text is upstream's; otherwise ours, every (index, format)
    // pair compressed on its own core: compression is the expensive part.
    let reused = |i: usize, format: Format| {
        let upstream = indices[i].upstream.as_ref()?;
        (upstream.plain == plains[i])
            .then(|| upstream.files.iter().find(|f| f.format == format))
            .flatten()
    };
    let jobs: Vec<(usize, Format)> = (0..indices.len())
        .flat_map(|i| [(i, Format::Gzip), (i, Format::Xz)])
        .filter(|&(i, format)| reused(i, format).is_none())
        .collect();
    let mut compressed: BTreeMap<(usize, Format), std::io::Result<Vec<u8>>> = jobs
        .iter()
        .copied()
        .zip(parallel_map(&jobs, |&(i, format)| {
            format.compress(indices[i].text.as_bytes())
        }))
        .collect();
    let mut files: Vec<IndexFile> = Vec::new();
    for (i, index) in indices.iter().enumerate() {
        let (dir, base) = index.location();
        let mut add = |name: String, bytes: &[u8], sha256: Sha256| {
            let size = bytes.len() as u64;
            manifest.add(
                &format!("dists/{suite}/{dir}/by-hash/SHA256/{sha256}"),
                sha256,
                size,
            );
            manifest.add(&format!("dists/{suite}/{dir}/{name}"), sha256, size);
            files.push(IndexFile::new(format!("{dir}/{name}"), bytes, sha256));
        };
        staging.add_digested(plains[i], index.text.as_bytes())?;
        add(base.to_string(), index.text.as_bytes(), plains[i]);
        for format in [Format::Gzip, Format::Xz] {
            let name = format!("{base}.{}", format.extension());
            if let Some(file) = reused(i, format) {
                let bytes = std::fs::read(&file.path).map_err(|source| StorageError::Read {
                    path: file.path.clone(),
                    source,
                })?;
                staging.adopt(file.path.clone(), file.sha256);
                add(name, &bytes, file.sha256);
                continue;
            }
            let bytes = compressed
                .remove(&(i, format))
                .expect("compressed when not reused")
                .map_err(|e| AptError::Compress {
                    what: format!("{suite}/{dir}/{name}"),
                    source: e,
                })?;
            add(name, &bytes, staging.add_bytes(&bytes)?);
        }
        let release = render_component_release(info, &index.component, &index.arch);
        add(
            "Release".into(),
            release.as_bytes(),
            staging.add_bytes(release.as_bytes())?,
        );
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let release = render_release(info, &files);
    add_signed_release(suite, &release, key, staging, manifest)
}

/// A suite's Release, with InRelease and Release.gpg signed by `key`.
pub(crate) fn add_signed_release(
    suite: &str,
    release: &str,
    key: &SiteKey,
    staging: &Staging,
    manifest: &mut Manifest,
) -> Result<(), AptError> {
    let inrelease = key.clearsign(release)?;
    let signature = key.sign_detached(release.as_bytes())?;
    for (name, bytes) in [
        ("Release", release.as_bytes()),
        ("InRelease", inrelease.as_bytes()),
        ("Release.gpg", signature.as_bytes()),
    ] {
        let sha256 = staging.add_bytes(bytes)?;
        manifest.add(&format!("dists/{suite}/{name}"), sha256, bytes.len() as u64);
    }
    Ok(())
}

/// xz preset 0, in independent blocks compressed on every core: several times faster than
/// preset 6, for a somewhat larger file (about gzip's size; the figures are in the README).
/// apt fetches .xz first, so it must exist; indices cross the site's LAN once per change,
/// while a publish runs on every change. For the same reason .gz, which only clients without
/// xz read, is written at gzip's fastest level.
const XZ_BLOCK: u64 = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Format {
    Gzip,
    Xz,
}

impl Format {
    /// The format of an index file named `name`, when it is one we publish.
    pub(crate) fn of(name: &str) -> Option<Format> {
        [Format::Gzip, Format::Xz]
            .into_iter()
            .find(|f| name.ends_with(&format!(".{}", f.extension())))
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Gzip => "gz",
            Format::Xz => "xz",
        }
    }

    fn compress(self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Format::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(data)?;
                gz.finish()
            }
            Format::Xz => {
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
                let stream = liblzma::stream::MtStreamBuilder::new()
                    .preset(0)
                    .threads(threads)
                    .block_size(XZ_BLOCK)
                    .check(liblzma::stream::Check::Crc64)
                    .encoder()
                    .map_err(std::io::Error::other)?;
                let mut xz = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
                xz.write_all(data)?;
                xz.finish()
            }
        }
    }
}

/// Keeps the by-hash and pool files of the previous tree that this one dropped, for `grace`
/// seconds after they were first dropped.
pub(crate) fn retain_superseded(
    previous: &Manifest,
    manifest: &mut Manifest,
    now: jiff::Timestamp,
    grace: i64,
) {
    manifest.retain_superseded(previous, now.as_second(), grace, |path| {
        path.starts_with("pool/") || path.contains("/by-hash/")
    });
}
