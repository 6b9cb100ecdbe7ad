//! `airlock export`: what the site publishes, as a signed bundle. Read-only on the site; blobs
//! stream from the store into the volumes, checked against their names on the way (those a
//! writer dropped after pushing them, from its bucket through a scratch file each, under the
//! site lock so that no writer empties the store's scratch folder meanwhile).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::BundleError;
use super::carry::{self, Carry};
use super::manifest::{
    self, Area, BaseBundle, BlobEntry, BlobRef, BundleManifest, Content, Exporter, Kind,
    SignedManifest, Signing, Volume,
};
use super::reader::{BlobReader, Job};
use super::volume::{VolumeWriter, entry_size, tar_budget};
use crate::apt::repo::RepoState;
use crate::config::{ImagesMode, MirrorMode};
use crate::openpgp::{Keyring, SiteKey};
use crate::report::{Reporter, Unit};
use crate::simplestreams::custom::CustomImages;
use crate::site::Site;
use crate::snap::catalog::Catalog;
use crate::storage::{ContentStore, Sha256, StorageError, TreeSet, write_atomic};

pub struct ExportOptions {
    pub to: PathBuf,
    /// A previous bundle of this site (its folder or manifest.json): only what it lacked.
    pub since: Option<PathBuf>,
    /// Most bytes per volume.
    pub split: Option<u64>,
    pub zstd: bool,
    /// `apt/NAME` (or `NAME`), `images`, `snaps`; empty means everything published.
    pub what: Vec<String>,
    pub now: jiff::Timestamp,
    /// The copy of airlock the bundle carries.
    pub carry: Carry,
}

/// What an export wrote; `export --json` prints it, the manifest without its blob list.
#[derive(Debug, serde::Serialize)]
pub struct ExportReport {
    #[serde(rename = "bundle", serialize_with = "manifest::serialize_summary")]
    pub manifest: BundleManifest,
    pub dir: PathBuf,
    /// Contents asked for that have nothing published yet.
    pub unpublished: Vec<String>,
    /// Which airlock was carried and why (the manifest lists the file).
    pub airlock_source: Option<String>,
}

/// A content and where its blobs come from.
struct Gathered {
    content: Content,
    /// Blobs of the content, from the store.
    stored: Vec<(Sha256, u64)>,
    /// The tree manifest and state file: bytes that are not store blobs on this side.
    extra: Vec<Vec<u8>>,
}

/// Where one blob of the bundle comes from.
enum Source {
    Store,
    Memory(Vec<u8>),
}

/// Exports what the site publishes: base → gather → plan → volumes → signed manifest. Reads
/// the site only; the manifest is written last, so a folder without one is an unfinished
/// export (which the next export into it replaces).
pub fn export(
    site: &Site,
    options: &ExportOptions,
    reporter: &dyn Reporter,
) -> Result<ExportReport, BundleError> {
    let key = site.signing_key()?;
    let base = read_base(&key, options.since.as_deref())?;
    let _lock = match site.store().drops_any() {
        true => Some(site.lock(reporter)?),
        false => None,
    };
    let (gathered, unpublished) = gather(site, &options.what)?;
    if gathered.is_empty() {
        return Err(BundleError::Export(
            "nothing to export: no repo, mirror, image stream or snap is published yet".into(),
        ));
    }
    let mut plan = Plan::new(gathered, base.as_ref());
    plan.check_fits(options)?;
    let chosen = carry::choose(&options.carry)?;

    prepare_dir(&options.to)?;
    let created = jiff::Timestamp::from_second(options.now.as_second()).expect("a valid time");
    let id = format!(
        "{}-{:08x}",
        created.strftime("%Y%m%dT%H%M%SZ"),
        rand::random::<u32>()
    );
    let (volumes, blobs) = plan.write_volumes(&site.store(), options, created, &id, reporter)?;
    let airlock = match &chosen {
        Some(chosen) => Some(carry_airlock(chosen, base.as_ref(), &options.to)?),
        None => None,
    };
    let airlock_source =
        chosen.map(
            |c| match airlock.as_ref().and_then(|a| a.carried_in.as_ref()) {
                Some(earlier) => format!(
                    "{}; the same bytes as bundle {earlier} carried: not repeated",
                    c.why
                ),
                None => c.why,
            },
        );
    let manifest = BundleManifest {
        format: manifest::FORMAT,
        id,
        created: created.to_string(),
        exporter: Exporter {
            fingerprint: key.fingerprint(),
            url: site.config.site.public_url.clone(),
        },
        base: base.as_ref().map(|b| BaseBundle {
            id: b.manifest.id.clone(),
            sha256: b.sha256,
        }),
        contents: plan.contents,
        volumes,
        blobs,
        airlock,
    };
    write_signed(&options.to, &manifest, &key)?;
    Ok(ExportReport {
        manifest,
        dir: options.to.clone(),
        unpublished,
        airlock_source,
    })
}

/// The chosen airlock's entry: the base's when the base listed the same bytes (the file is
/// not repeated), else a copy written beside the volumes.
fn carry_airlock(
    chosen: &carry::Chosen,
    base: Option<&SignedManifest>,
    dir: &Path,
) -> Result<manifest::CarriedAirlock, BundleError> {
    let earlier = base.and_then(|b| Some((b.manifest.id.as_str(), b.manifest.airlock.as_ref()?)));
    match carry::already_carried(chosen, earlier)? {
        Some(listed) => Ok(listed),
        None => carry::write(chosen, dir),
    }
}

/// The bundle `--since` names, which must be one this site exported (signed by its key).
fn read_base(key: &SiteKey, since: Option<&Path>) -> Result<Option<SignedManifest>, BundleError> {
    let Some(path) = since else {
        return Ok(None);
    };
    let own = Keyring::new(vec![key.public_key().clone()]);
    let mut base = manifest::read(path, Some(&own))?;
    match base.signer {
        Some(Err(bad)) => Err(BundleError::NotOwnBundle {
            path: manifest::manifest_path(path),
            source: bad.error,
        }),
        signer => {
            base.signer = signer;
            Ok(Some(base))
        }
    }
}

/// What the bundle will hold: every blob once, with where it comes from, and the contents,
/// each counting the blobs it brings first that the base lacks.
struct Plan {
    blobs: BTreeMap<Sha256, (u64, Source)>,
    /// Blobs of the base bundle: listed, not carried.
    in_base: HashSet<Sha256>,
    contents: Vec<Content>,
}

impl Plan {
    fn new(gathered: Vec<Gathered>, base: Option<&SignedManifest>) -> Plan {
        let in_base: HashSet<Sha256> = base
            .iter()
            .flat_map(|b| b.manifest.blobs.iter().map(|e| e.sha256))
            .collect();
        let mut blobs: BTreeMap<Sha256, (u64, Source)> = BTreeMap::new();
        let mut contents = Vec::new();
        for g in gathered {
            let mut content = g.content;
            let extra = g.extra.into_iter().map(|b| {
                let digest = Sha256::of(&b);
                (digest, b.len() as u64, Source::Memory(b))
            });
            let stored = g.stored.into_iter().map(|(d, s)| (d, s, Source::Store));
            for (digest, size, source) in extra.chain(stored) {
                if blobs.contains_key(&digest) {
                    continue;
                }
                if !in_base.contains(&digest) {
                    content.new_files += 1;
                    content.new_bytes += size;
                }
                blobs.insert(digest, (size, source));
            }
            contents.push(content);
        }
        Plan {
            blobs,
            in_base,
            contents,
        }
    }

    /// The blobs the volumes carry: those the base lacks.
    fn carried(&self) -> impl Iterator<Item = (&Sha256, &(u64, Source))> {
        self.blobs
            .iter()
            .filter(|(d, _)| !self.in_base.contains(*d))
    }

    /// Refuses, before anything is written, a blob larger than a volume may be.
    fn check_fits(&self, options: &ExportOptions) -> Result<(), BundleError> {
        let budget = tar_budget(options.split.unwrap_or(u64::MAX), options.zstd);
        if let Some((digest, (size, _))) = self.carried().max_by_key(|(_, (size, _))| *size)
            && entry_size(*size) > budget
        {
            return Err(BundleError::Export(format!(
                "blob {digest} ({size} bytes) does not fit in a volume of {} bytes: give --split a larger size",
                options.split.unwrap_or(u64::MAX)
            )));
        }
        Ok(())
    }

    /// Writes the carried blobs into volumes in digest order, each checked against its
    /// name as it is read; returns the volumes and every blob's entry (those of the base
    /// without a volume). The bytes made in memory move to the reading thread.
    fn write_volumes(
        &mut self,
        store: &ContentStore,
        options: &ExportOptions,
        created: jiff::Timestamp,
        id: &str,
        reporter: &dyn Reporter,
    ) -> Result<(Vec<Volume>, Vec<BlobEntry>), BundleError> {
        let total: u64 = self.carried().map(|(_, (size, _))| size).sum();
        let task = reporter.start(&format!("export {id}"), Some(total), Unit::Bytes);
        // Read ahead on a thread of their own, in the order they are written.
        let in_base = &self.in_base;
        let jobs = self
            .blobs
            .iter_mut()
            .filter(|(digest, _)| !in_base.contains(*digest))
            .map(|(digest, (size, source))| {
                let job = match source {
                    Source::Store => Job::Store(*digest),
                    Source::Memory(bytes) => Job::Memory(std::mem::take(bytes)),
                };
                (job, *size)
            })
            .collect();
        let mut reader = BlobReader::start(store.clone(), jobs);
        let mut volumes = Volumes {
            dir: &options.to,
            zstd: options.zstd,
            mtime: created.as_second() as u64,
            budget: tar_budget(options.split.unwrap_or(u64::MAX), options.zstd),
            done: Vec::new(),
            open: None,
        };
        let mut entries = Vec::with_capacity(self.blobs.len());
        for (digest, (size, source)) in &self.blobs {
            if in_base.contains(digest) {
                entries.push(BlobEntry {
                    sha256: *digest,
                    size: *size,
                    volume: None,
                });
                continue;
            }
            let (name, out) = volumes.for_blob(*size)?;
            let origin = match source {
                Source::Memory(_) => PathBuf::from(digest.to_hex()),
                Source::Store => store.blob_path(digest),
            };
            out.append(digest, *size, &mut reader, &origin, |n| {
                reporter.advance(task, n)
            })?;
            entries.push(BlobEntry {
                sha256: *digest,
                size: *size,
                volume: Some(name.to_string()),
            });
        }
        let volumes = volumes.finish()?;
        reporter.finish(task);
        Ok((volumes, entries))
    }
}

/// The volumes of an export: blobs go into the open one until the next would not fit.
struct Volumes<'a> {
    dir: &'a Path,
    zstd: bool,
    /// The time every tar entry carries.
    mtime: u64,
    /// Tar bytes per volume.
    budget: u64,
    done: Vec<Volume>,
    open: Option<(String, VolumeWriter)>,
}

impl Volumes<'_> {
    /// The volume a blob of `size` bytes goes in: the open one while it fits, else a new one
    /// (the full one finished first).
    fn for_blob(&mut self, size: u64) -> Result<(&str, &mut VolumeWriter), BundleError> {
        if self
            .open
            .as_ref()
            .is_some_and(|(_, w)| w.tar_bytes + entry_size(size) > self.budget)
        {
            let (name, full) = self.open.take().expect("checked");
            self.done.push(finish(name, full)?);
        }
        if self.open.is_none() {
            let name = format!(
                "volume-{:03}.tar{}",
                self.done.len() + 1,
                if self.zstd { ".zst" } else { "" }
            );
            let opened = VolumeWriter::create(&self.dir.join(&name), self.zstd, self.mtime)?;
            self.open = Some((name, opened));
        }
        let (name, writer) = self.open.as_mut().expect("opened above");
        Ok((name.as_str(), writer))
    }

    fn finish(mut self) -> Result<Vec<Volume>, BundleError> {
        if let Some((name, last)) = self.open.take() {
            self.done.push(finish(name, last)?);
        }
        Ok(self.done)
    }
}

/// Signs the manifest and writes both, the manifest last: a folder without one is an
/// unfinished export.
fn write_signed(dir: &Path, manifest: &BundleManifest, key: &SiteKey) -> Result<(), BundleError> {
    let mut bytes = serde_json::to_vec_pretty(manifest).expect("the manifest serialises");
    bytes.push(b'\n');
    let signature = key.sign_detached(&bytes)?;
    write_atomic(&dir.join(manifest::SIGNATURE), signature.as_bytes(), 0o644)?;
    write_atomic(&dir.join(manifest::MANIFEST), &bytes, 0o644)?;
    Ok(())
}

fn finish(name: String, writer: VolumeWriter) -> Result<Volume, BundleError> {
    let blobs = writer.blobs;
    let size = writer.finish()?;
    Ok(Volume { name, size, blobs })
}

/// The target folder: new, empty, or left by an unfinished export (no manifest), whose
/// volumes are replaced.
fn prepare_dir(dir: &Path) -> Result<(), BundleError> {
    let refuse = |reason: &str| BundleError::Export(format!("{}: {reason}", dir.display()));
    if dir.join(manifest::MANIFEST).exists() {
        return Err(refuse(
            "already holds a bundle; export to a new folder (bundles are never overwritten)",
        ));
    }
    let write_err = |source| {
        BundleError::Storage(StorageError::Write {
            path: dir.to_path_buf(),
            source,
        })
    };
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            // Everything checked before anything is removed.
            let mut ours = Vec::new();
            for entry in entries {
                let entry = entry.map_err(write_err)?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let volume = name.starts_with("volume-")
                    && (name.ends_with(".tar") || name.ends_with(".tar.zst"));
                let carried = name.starts_with("airlock_");
                if !(volume || carried || name == manifest::SIGNATURE) || !entry.path().is_file() {
                    return Err(refuse(&format!(
                        "is not empty ({name}); export to a new or empty folder"
                    )));
                }
                ours.push(entry.path());
            }
            for path in ours {
                std::fs::remove_file(&path).map_err(write_err)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(write_err)
        }
        Err(e) => Err(write_err(e)),
    }
}

/// The contents to export, and those asked for that have nothing published.
fn gather(site: &Site, what: &[String]) -> Result<(Vec<Gathered>, Vec<String>), BundleError> {
    let config = &site.config;
    let data = site.data_dir();
    let candidate = |area, name: &str, kind, signing| Content {
        area,
        name: name.to_string(),
        kind,
        signing,
        tree: None,
        state: None,
        files: 0,
        bytes: 0,
        new_files: 0,
        new_bytes: 0,
    };
    let mut candidates: Vec<Content> = Vec::new();
    for repo in &config.apt.repos {
        candidates.push(candidate(
            Area::Apt,
            repo.name.as_str(),
            Kind::Repo,
            Signing::Site,
        ));
    }
    for mirror in &config.apt.mirrors {
        let signing = match mirror.mode {
            MirrorMode::Filtered => Signing::Site,
            MirrorMode::Verbatim => Signing::Upstream,
        };
        candidates.push(candidate(
            Area::Apt,
            mirror.name.as_str(),
            Kind::Mirror,
            signing,
        ));
    }
    for publish in &config.apt.publish {
        candidates.push(candidate(
            Area::Apt,
            publish.name.as_str(),
            Kind::Publish,
            Signing::Site,
        ));
    }
    let images_signing = match config.images.as_ref().map(|i| i.mode) {
        Some(ImagesMode::Verbatim) => Signing::Upstream,
        _ => Signing::Site,
    };
    candidates.push(candidate(
        Area::Images,
        "images",
        Kind::Images,
        images_signing,
    ));
    candidates.push(candidate(
        Area::Snaps,
        "snaps",
        Kind::Snaps,
        Signing::Upstream,
    ));

    let mut wanted: Vec<String> = Vec::new();
    for w in what {
        let full = if w.contains('/') || w == "images" || w == "snaps" {
            w.clone()
        } else {
            format!("apt/{w}")
        };
        if !candidates.iter().any(|c| c.label() == full) {
            let known: Vec<String> = candidates.iter().map(Content::label).collect();
            return Err(BundleError::Export(format!(
                "{w} is not something this site publishes (it has: {})",
                known.join(", ")
            )));
        }
        wanted.push(full);
    }

    let mut gathered = Vec::new();
    let mut unpublished = Vec::new();
    for mut content in candidates {
        let label = content.label();
        if !wanted.is_empty() && !wanted.contains(&label) {
            continue;
        }
        let (area, name, kind) = (content.area, content.name.clone(), content.kind);
        let (tree, state_path) = match area {
            Area::Apt => (
                TreeSet::apt(data, &name).current()?,
                (kind == Kind::Repo).then(|| RepoState::path(site, &name)),
            ),
            Area::Images => (
                TreeSet::area(data, "images").current()?,
                Some(CustomImages::path(site)),
            ),
            Area::Snaps => (None, Some(Catalog::path(data))),
        };
        let state = match state_path {
            Some(path) => read_if_exists(&path)?,
            None => None,
        };
        let mut stored = Vec::new();
        let mut extra = Vec::new();
        if let Some(tree) = &tree {
            for entry in tree.entries.values() {
                stored.push((entry.sha256, entry.size));
            }
            content.files = tree.entries.len() as u64;
            content.bytes = tree.entries.values().map(|e| e.size).sum();
            let text = tree.render().into_bytes();
            content.tree = Some(blob_ref(&text));
            extra.push(text);
        }
        if area == Area::Snaps {
            let Some(bytes) = &state else {
                if wanted.contains(&label) {
                    unpublished.push(label);
                }
                continue;
            };
            let catalog: Catalog =
                serde_json::from_slice(bytes).map_err(|source| StorageError::Json {
                    path: Catalog::path(data),
                    source,
                })?;
            let store = site.store();
            // A snap dropped after a push has no file here: its size is the catalog's.
            let snap_sizes: BTreeMap<&str, u64> = catalog
                .snaps
                .values()
                .flat_map(|s| s.revisions.values())
                .map(|r| (r.sha256.as_str(), r.size))
                .collect();
            for hex in catalog.blobs() {
                let digest =
                    Sha256::parse_lowercase(hex).map_err(|reason| StorageError::Corrupt {
                        path: Catalog::path(data),
                        reason,
                    })?;
                let path = store.blob_path(&digest);
                let size = match std::fs::metadata(&path) {
                    Ok(meta) => meta.len(),
                    Err(_) if store.is_dropped(&digest) && snap_sizes.contains_key(hex) => {
                        snap_sizes[hex]
                    }
                    Err(source) => return Err(StorageError::Read { path, source }.into()),
                };
                stored.push((digest, size));
                content.files += 1;
                content.bytes += size;
            }
        } else if tree.is_none() {
            if wanted.contains(&label) || area == Area::Apt {
                unpublished.push(label);
            }
            continue;
        }
        if let Some(bytes) = state {
            content.state = Some(blob_ref(&bytes));
            extra.push(bytes);
        }
        gathered.push(Gathered {
            content,
            stored,
            extra,
        });
    }
    Ok((gathered, unpublished))
}

fn blob_ref(bytes: &[u8]) -> BlobRef {
    BlobRef {
        sha256: Sha256::of(bytes),
        size: bytes.len() as u64,
    }
}

fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StorageError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_checked_whole_before_anything_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let unfinished = dir.path().join("volume-001.tar");
        std::fs::write(&unfinished, b"left by an interrupted export").unwrap();
        std::fs::write(dir.path().join("volume-notes.txt"), b"the operator's").unwrap();
        let err = prepare_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("volume-notes.txt"), "{err}");
        assert!(
            unfinished.exists(),
            "nothing is removed from a folder that is refused"
        );

        std::fs::remove_file(dir.path().join("volume-notes.txt")).unwrap();
        prepare_dir(dir.path()).unwrap();
        assert!(
            !unfinished.exists(),
            "an unfinished export's volumes are replaced"
        );
        std::fs::write(dir.path().join(manifest::MANIFEST), b"{}").unwrap();
        let err = prepare_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("already holds a bundle"), "{err}");
    }
}
