//! `airlock import`: a bundle checked entry by entry and byte by byte, staged outside the store,
//! then stored and switched in content by content, re-signed with this site's key.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::BundleError;
use super::manifest::{self, Area, BundleManifest, Content, Kind, SignedManifest, Signing, Volume};
use super::resign;
use super::volume;
use crate::apt::repo::RepoState;
use crate::openpgp::{Keyring, SiteKey};
use crate::report::{Reporter, Unit};
use crate::simplestreams::custom::CustomImages;
use crate::site::Site;
use crate::snap::catalog::Catalog;
use crate::storage::history::{History, Run, RunKind};
use crate::storage::{
    ContentStore, CopyError, Manifest, Sha256, StorageError, TreeSet, write_atomic,
};

pub struct ImportOptions {
    pub dir: PathBuf,
    /// Exporter keyrings besides `[import] trusted_keys`.
    pub keyrings: Vec<PathBuf>,
    pub now: jiff::Timestamp,
}

/// What an import did; `import --json` prints it.
#[derive(Debug, serde::Serialize)]
pub struct ImportReport {
    pub id: String,
    pub signer: String,
    pub base: Option<String>,
    /// Each content switched, with its file count.
    pub contents: Vec<Switched>,
    /// Contents this site's config does not name: served, but no command here maintains them.
    pub unconfigured: Vec<String>,
    pub new_blobs: u64,
    pub new_bytes: u64,
    /// Blobs the store or an earlier, interrupted import already had.
    pub present_blobs: u64,
    /// The airlock the bundle carries, checked and kept in the data folder.
    pub airlock: Option<KeptAirlock>,
}

/// Where import kept the bundle's airlock, and whether it is newer than the one running.
#[derive(Debug, serde::Serialize)]
pub struct KeptAirlock {
    pub path: PathBuf,
    pub version: String,
    pub kind: super::manifest::CarriedKind,
    pub newer_than_running: bool,
}

impl KeptAirlock {
    fn new(path: PathBuf, airlock: &super::manifest::CarriedAirlock) -> KeptAirlock {
        KeptAirlock {
            path,
            version: airlock.version.clone(),
            kind: airlock.kind,
            newer_than_running: super::carry::newer_than_running(airlock),
        }
    }
}

#[derive(Debug, serde::Serialize)]
pub struct Switched {
    /// `apt/NAME`, `images`, `snaps`.
    pub content: String,
    pub files: u64,
}

/// Imports a bundle: authenticate → admit → receive → check → store → switch. Until the
/// switch nothing is visible to clients; until the store, nothing is in the store (verified
/// blobs wait in `store/import/`, and a re-run takes them up).
pub fn import(
    site: &Site,
    options: &ImportOptions,
    reporter: &dyn Reporter,
) -> Result<ImportReport, BundleError> {
    let _lock = site.lock(reporter)?;
    let (signed, signer) = authenticate(site, options)?;
    let bundle = &signed.manifest;
    let mut log = ImportLog::load(site)?;
    log.admit(bundle)?;
    // Checked before anything is received: a bundle with an altered airlock is refused whole.
    let mut carried = None;
    let mut kept_before = None;
    if let Some(airlock) = &bundle.airlock {
        match super::carry::check(&options.dir, airlock)? {
            Some(path) => carried = Some((path, airlock)),
            None => match &airlock.carried_in {
                // Not repeated in this bundle: the import of the earlier one kept it.
                Some(earlier) => match super::carry::already_kept(site.data_dir(), airlock) {
                    Some(path) => kept_before = Some(KeptAirlock::new(path, airlock)),
                    None => reporter.warn(&format!(
                        "the bundle lists airlock {} as {}, carried in the earlier bundle {earlier}, and {} does not hold it as listed: imported without it (copy {} from bundle {earlier}'s folder into {} to keep it)",
                        airlock.version,
                        airlock.file,
                        site.data_dir().join(super::carry::KEPT).display(),
                        airlock.file,
                        options.dir.display()
                    )),
                },
                None => reporter.warn(&format!(
                    "the bundle lists airlock {} as {}, which is not in {}: imported without it",
                    airlock.version,
                    airlock.file,
                    options.dir.display()
                )),
            },
        }
    }

    let mut import = Import::open(site, bundle, &options.dir)?;
    let received = import.receive(reporter)?;
    let ready = import.check_contents()?;
    let added = import.store(&ready)?;
    // A content new here makes this import a first one for the room estimate: it says nothing
    // about the next bundle.
    let first = ready.iter().any(|r| match trees_of(site, r.content) {
        Some(trees) => !trees.is_published(),
        None => !Catalog::path(site.data_dir()).exists(),
    });
    let mut report = ImportReport {
        id: bundle.id.clone(),
        signer,
        base: bundle.base.as_ref().map(|b| b.id.clone()),
        contents: Vec::new(),
        unconfigured: Vec::new(),
        new_blobs: received.new_blobs,
        new_bytes: received.new_bytes,
        present_blobs: received.present_blobs,
        airlock: kept_before,
    };
    // Kept before the switch: a failure to keep it fails the import with nothing switched.
    if let Some((path, airlock)) = carried {
        let path = super::carry::keep(site.data_dir(), &path, airlock)?;
        report.airlock = Some(KeptAirlock::new(path, airlock));
    }
    import.switch_all(ready, options.now, &mut report)?;

    log.record(bundle, &signed.sha256, options.now);
    log.save(site)?;
    let run = Run {
        source: "import".into(),
        kind: RunKind::first_when(first),
        at: options.now,
        bytes: added,
    };
    History::record_or_warn(site.data_dir(), run, reporter);
    Ok(report)
}

/// The manifest, its signature checked with `[import] trusted_keys` and the keyrings given,
/// and signed by the exporter it names. Returns it with the signer's fingerprint.
fn authenticate(
    site: &Site,
    options: &ImportOptions,
) -> Result<(SignedManifest, String), BundleError> {
    let mut keyrings = site.config.import.trusted_keys.clone();
    keyrings.extend(options.keyrings.iter().cloned());
    if keyrings.is_empty() {
        return Err(BundleError::NoTrustedKeys);
    }
    let keyring = Keyring::load(&keyrings)?;
    let mut signed = manifest::read(&options.dir, Some(&keyring))?;
    let claimed = &signed.manifest.exporter.fingerprint;
    let signer = match signed.signer.take() {
        Some(Ok(signer)) => signer,
        Some(Err(bad)) => {
            let path = manifest::manifest_path(&options.dir);
            let source = bad.error;
            if bad.by_known_key {
                return Err(BundleError::Altered { path, source });
            }
            return Err(BundleError::Untrusted {
                path,
                claimed: claimed.clone(),
                source,
            });
        }
        None => unreachable!("read with a keyring checks the signature"),
    };
    signed.signer = Some(Ok(signer.clone()));
    // The history is the signer's: a manifest may not speak for another site.
    if signer != *claimed {
        return Err(BundleError::OtherSigner {
            path: manifest::manifest_path(&options.dir),
            claimed: claimed.clone(),
            signer,
        });
    }
    Ok((signed, signer))
}

/// An admitted bundle on its way in: where its volumes are, and the blobs staged so far.
struct Import<'a> {
    site: &'a Site,
    bundle: &'a BundleManifest,
    dir: &'a Path,
    store: ContentStore,
    staged: Staged,
}

/// What [`Import::receive`] found and staged.
struct Received {
    new_blobs: u64,
    new_bytes: u64,
    /// Blobs the store or an earlier, interrupted import already had.
    present_blobs: u64,
}

/// One content of the bundle, whole and checked, waiting for its switch.
struct Ready<'a> {
    content: &'a Content,
    tree: Option<Manifest>,
    state: Option<Vec<u8>>,
    /// Every blob the content names: its tree's files, the snaps' blobs, the tree and state.
    references: Vec<Sha256>,
}

impl<'a> Import<'a> {
    fn open(
        site: &'a Site,
        bundle: &'a BundleManifest,
        dir: &'a Path,
    ) -> Result<Import<'a>, BundleError> {
        let store = site.store();
        let listed: HashSet<Sha256> = bundle.blobs.iter().map(|b| b.sha256).collect();
        let staged = Staged::open(&store, &listed)?;
        Ok(Import {
            site,
            bundle,
            dir,
            store,
            staged,
        })
    }

    fn here(&self, digest: &Sha256) -> bool {
        self.store.contains(digest) || self.staged.has(digest)
    }

    /// Reads the volumes that hold blobs neither the store nor the staging has, and stages
    /// each blob once its digest matches, flushing after each volume. Afterwards every blob
    /// the manifest lists is here, or the import stops naming the volumes still wanted.
    fn receive(&mut self, reporter: &dyn Reporter) -> Result<Received, BundleError> {
        let bundle = self.bundle;
        let mut needed: HashMap<Sha256, (u64, Option<&str>)> = HashMap::new();
        let mut present_blobs = 0;
        for blob in &bundle.blobs {
            let digest = blob.sha256;
            if self.here(&digest) {
                present_blobs += 1;
            } else {
                needed.insert(digest, (blob.size, blob.volume.as_deref()));
            }
        }
        let mut wanted_from: HashMap<&str, u64> = HashMap::new();
        for volume in needed.values().filter_map(|(_, v)| *v) {
            *wanted_from.entry(volume).or_default() += 1;
        }
        let (mut new_blobs, mut new_bytes) = (0, 0);
        let mut missing = Vec::new();
        for volume in &bundle.volumes {
            let Some(&wanted) = wanted_from.get(volume.name.as_str()) else {
                continue;
            };
            let path = self.dir.join(&volume.name);
            if !path.is_file() {
                missing.push((volume.name.clone(), wanted));
                continue;
            }
            let (blobs, bytes) = self.read_volume(&path, volume, &mut needed, reporter)?;
            new_blobs += blobs;
            new_bytes += bytes;
            self.staged.flush()?;
        }
        if !missing.is_empty() {
            return Err(BundleError::MissingVolumes {
                dir: self.dir.to_path_buf(),
                volumes: missing,
            });
        }
        if let Some(digest) = needed.keys().next() {
            return Err(BundleError::Incomplete {
                id: bundle.id.clone(),
                count: needed.len(),
                first: digest.to_hex(),
                content: "its base bundle".into(),
            });
        }
        Ok(Received {
            new_blobs,
            new_bytes,
            present_blobs,
        })
    }

    /// Every content whole before anything is stored or switched: its tree and state read,
    /// every blob they name here, and no apt pool file that would change under its name.
    fn check_contents(&self) -> Result<Vec<Ready<'a>>, BundleError> {
        let mut ready = Vec::new();
        for content in &self.bundle.contents {
            let tree = match &content.tree {
                Some(r) => {
                    let origin =
                        PathBuf::from(format!("{} (tree of {})", r.sha256, content.label()));
                    let text =
                        String::from_utf8(self.read(r)?).map_err(|_| StorageError::Corrupt {
                            path: origin.clone(),
                            reason: "not UTF-8".into(),
                        })?;
                    Some(Manifest::parse(&text, &origin)?)
                }
                None if content.area == Area::Snaps => None,
                None => {
                    return Err(tree_missing(content));
                }
            };
            let state = content.state.as_ref().map(|r| self.read(r)).transpose()?;
            let mut references: Vec<Sha256> = tree
                .iter()
                .flat_map(|t| t.entries.values().map(|e| e.sha256))
                .collect();
            if content.area == Area::Snaps {
                let Some(bytes) = &state else {
                    return Err(tree_missing(content));
                };
                references.extend(catalog_blobs(content, bytes)?);
            }
            references.extend(content.tree.iter().chain(&content.state).map(|r| r.sha256));
            let absent: Vec<&Sha256> = references.iter().filter(|d| !self.here(d)).collect();
            if let Some(first) = absent.first() {
                return Err(BundleError::Incomplete {
                    id: self.bundle.id.clone(),
                    count: absent.len(),
                    first: first.to_hex(),
                    content: content.label(),
                });
            }
            if let (Area::Apt, Some(tree)) = (content.area, &tree) {
                pool_unchanged(self.site, content, tree)?;
            }
            ready.push(Ready {
                content,
                tree,
                state,
                references,
            });
        }
        Ok(ready)
    }

    /// The bytes of a tree or state blob, staged or stored.
    fn read(&self, blob: &manifest::BlobRef) -> Result<Vec<u8>, BundleError> {
        let digest = blob.sha256;
        let path = self
            .staged
            .path_of(&digest)
            .unwrap_or_else(|| self.store.blob_path(&digest));
        std::fs::read(&path)
            .map_err(|e| BundleError::Storage(StorageError::Read { path, source: e }))
    }

    /// Moves the staged blobs the contents name into the store, at once (one flush). Clients
    /// see nothing new yet: no tree names them. Returns the bytes the store gained.
    fn store(&self, ready: &[Ready<'_>]) -> Result<u64, BundleError> {
        let referenced: HashSet<&Sha256> = ready.iter().flat_map(|r| &r.references).collect();
        let staging = self.store.staging();
        let now = std::time::SystemTime::now();
        for digest in referenced {
            if let Some(path) = self.staged.path_of(digest) {
                // Dated now, not when it was staged (maybe days ago): the server's
                // Last-Modified must not go back when a tree switches to it.
                let dated = File::open(&path).and_then(|f| f.set_modified(now));
                dated.map_err(|source| StorageError::Write {
                    path: path.clone(),
                    source,
                })?;
                staging.adopt(path, *digest);
            }
        }
        Ok(staging.commit()?)
    }

    /// Switches each content in, one after the other, re-signed with the site key where
    /// clients check the site's signature: from each switch on, clients see that content.
    fn switch_all(
        &self,
        ready: Vec<Ready<'_>>,
        now: jiff::Timestamp,
        report: &mut ImportReport,
    ) -> Result<(), BundleError> {
        let site = self.site;
        let key = if ready
            .iter()
            .any(|r| r.content.signing == Signing::Site && r.content.area != Area::Snaps)
        {
            Some(site.signing_key()?)
        } else {
            None
        };
        for content in ready {
            let label = content.content.label();
            let unconfigured = configured(site, content.content).is_none();
            let files = switch(site, content, key.as_ref(), &self.bundle.id, now)?;
            if unconfigured {
                report.unconfigured.push(label.clone());
            }
            report.contents.push(Switched {
                content: label,
                files,
            });
        }
        Ok(())
    }
}

/// The blobs a snap catalog names (snaps, icons, assertions).
fn catalog_blobs(content: &Content, bytes: &[u8]) -> Result<Vec<Sha256>, BundleError> {
    let bad = |reason: String| BundleError::Tree {
        content: content.label(),
        path: "catalog.json".into(),
        reason,
    };
    let catalog: Catalog =
        serde_json::from_slice(bytes).map_err(|source| BundleError::TreeJson {
            content: content.label(),
            path: "catalog.json".into(),
            source,
        })?;
    catalog
        .blobs()
        .map(|hex| Sha256::parse_lowercase(hex).map_err(bad))
        .collect()
}

/// A pool file never changes content: clients holding this site's indices would get other
/// bytes than they list (a repo of the same name made here, with a package of the same name
/// and version). Refused before anything is switched.
fn pool_unchanged(site: &Site, content: &Content, tree: &Manifest) -> Result<(), BundleError> {
    let Some(served) = TreeSet::apt(site.data_dir(), &content.name).current()? else {
        return Ok(());
    };
    for (path, entry) in tree.entries.iter().filter(|(p, _)| p.starts_with("pool/")) {
        if served
            .entries
            .get(path)
            .is_some_and(|e| e.sha256 != entry.sha256)
        {
            return Err(BundleError::Tree {
                content: content.label(),
                path: path.clone(),
                reason: "this site serves other bytes under that name, and a pool file never changes: remove that package here and import again".into(),
            });
        }
    }
    Ok(())
}

fn tree_missing(content: &Content) -> BundleError {
    BundleError::Tree {
        content: content.label(),
        path: "-".into(),
        reason: "the manifest gives no tree for it".into(),
    }
}

impl Import<'_> {
    /// Streams one volume: every entry checked against the manifest before its bytes are
    /// read; blobs already here skipped unread; new ones staged once their digest matches.
    /// Returns the blobs and bytes staged.
    fn read_volume(
        &mut self,
        path: &Path,
        volume: &Volume,
        needed: &mut HashMap<Sha256, (u64, Option<&str>)>,
        reporter: &dyn Reporter,
    ) -> Result<(u64, u64), BundleError> {
        let (bundle, staged) = (self.bundle, &mut self.staged);
        let mut listed: HashMap<Sha256, u64> = HashMap::new();
        for blob in bundle
            .blobs
            .iter()
            .filter(|b| b.volume.as_deref() == Some(&volume.name))
        {
            listed.insert(blob.sha256, blob.size);
        }
        let volume_err = |reason: String| BundleError::Volume {
            volume: path.to_path_buf(),
            reason,
        };
        let size = std::fs::metadata(path).map(|m| m.len()).ok();
        let count = Arc::new(AtomicU64::new(0));
        let reader = volume::open(path, count.clone())?;
        let task = reporter.start(&format!("import {}", volume.name), size, Unit::Bytes);
        let mut reported = 0;
        let mut archive = tar::Archive::new(reader);
        // Raw: GNU long names and PAX headers come out as entries (and are refused) instead of
        // being read into memory by the tar reader, whatever size they claim.
        let entries = archive
            .entries()
            .map_err(|source| BundleError::VolumeIo {
                volume: path.to_path_buf(),
                what: "not a tar volume",
                source,
            })?
            .raw(true);
        let mut seen = HashSet::new();
        let (mut new_blobs, mut new_bytes) = (0, 0);
        let mut last = String::from("the start");
        for entry in entries {
            let mut entry = entry.map_err(|source| BundleError::VolumeEntry {
                volume: path.to_path_buf(),
                after: last.clone(),
                source,
            })?;
            let name_bytes = entry.path_bytes().into_owned();
            let name = String::from_utf8_lossy(&name_bytes).into_owned();
            let entry_err = |reason: String| BundleError::Entry {
                volume: path.to_path_buf(),
                entry: name.clone(),
                reason,
            };
            if let Some(problem) = volume::entry_problem(entry.header().entry_type(), &name_bytes) {
                return Err(entry_err(problem));
            }
            let digest = Sha256::parse_lowercase(&name["blobs/".len()..]).map_err(entry_err)?;
            let Some(&size) = listed.get(&digest) else {
                return Err(entry_err(format!(
                    "the manifest does not list this blob in {}",
                    volume.name
                )));
            };
            if !seen.insert(digest) {
                return Err(entry_err("appears twice in the volume".into()));
            }
            let header_size = entry
                .header()
                .size()
                .map_err(|source| BundleError::EntryRead {
                    volume: path.to_path_buf(),
                    entry: name.clone(),
                    source,
                })?;
            if header_size != size || entry.size() != size {
                return Err(entry_err(format!(
                    "its tar header says {header_size} bytes, the manifest {size}"
                )));
            }
            if needed.remove(&digest).is_some() {
                staged
                    .write(&digest, size, &mut entry)
                    .map_err(|fault| match fault {
                        StageFault::Entry(reason) => entry_err(reason),
                        StageFault::Read(source) => BundleError::EntryRead {
                            volume: path.to_path_buf(),
                            entry: name.clone(),
                            source,
                        },
                        StageFault::Write(e) => e.into(),
                    })?;
                new_blobs += 1;
                new_bytes += size;
            }
            last = name;
            let now = count.load(Ordering::Relaxed);
            reporter.advance(task, now - reported);
            reported = now;
        }
        reporter.finish(task);
        let absent: Vec<&Sha256> = listed.keys().filter(|d| !seen.contains(*d)).collect();
        if let Some(first) = absent.first() {
            return Err(volume_err(format!(
                "ends without {} blob(s) the manifest lists in it (first: {first}): a truncated volume, or one of another bundle",
                absent.len()
            )));
        }
        Ok((new_blobs, new_bytes))
    }
}

/// Verified blobs waiting in `store/import/` until the whole bundle is here.
///
/// Files are named by digest only once their bytes matched it. A flush of the filesystem after
/// each volume is recorded by listing every staged digest in `.flushed`; files not listed
/// may not have reached the disk before a power cut, so a later run hashes them again before
/// trusting them (a list, not a time: the clock of an air-gapped host may step back).
struct Staged {
    dir: PathBuf,
    have: HashSet<Sha256>,
    buffer: Vec<u8>,
}

const FLUSHED: &str = ".flushed";

/// Staged blobs of another bundle are removed once this old: that import was abandoned.
const ABANDONED: std::time::Duration = std::time::Duration::from_secs(14 * 86_400);

impl Staged {
    /// The staged blobs, those of bundles other than the one `listed` describes removed when
    /// older than [`ABANDONED`].
    fn open(store: &ContentStore, listed: &HashSet<Sha256>) -> Result<Staged, BundleError> {
        let dir = store.import_dir();
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BundleError::Storage(StorageError::Write { path, source })
        };
        std::fs::create_dir_all(&dir).map_err(|e| write_err(&dir)(e))?;
        let flushed: HashSet<String> = std::fs::read_to_string(dir.join(FLUSHED))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        let mut have = HashSet::new();
        let entries = std::fs::read_dir(&dir).map_err(write_err(&dir))?;
        for entry in entries {
            let entry = entry.map_err(write_err(&dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == FLUSHED {
                continue;
            }
            let Ok(digest) = Sha256::parse_lowercase(&name) else {
                // An unfinished write.
                std::fs::remove_file(&path).map_err(write_err(&path))?;
                continue;
            };
            let abandoned = !listed.contains(&digest)
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > ABANDONED));
            if abandoned {
                std::fs::remove_file(&path).map_err(write_err(&path))?;
            } else if flushed.contains(&name) || Sha256::of_file(&path).is_ok_and(|d| d == digest) {
                have.insert(digest);
            } else {
                std::fs::remove_file(&path).map_err(write_err(&path))?;
            }
        }
        // The list names only what is still here: a blob staged again under a listed name
        // would be trusted unflushed.
        let still: Vec<&String> = flushed
            .iter()
            .filter(|name| Sha256::parse_lowercase(name).is_ok_and(|d| have.contains(&d)))
            .collect();
        if still.len() != flushed.len() {
            let mut list: Vec<&str> = still.into_iter().map(String::as_str).collect();
            list.sort_unstable();
            write_atomic(&dir.join(FLUSHED), list.join("\n").as_bytes(), 0o644)?;
        }
        Ok(Staged {
            dir,
            have,
            buffer: volume::copy_buffer(),
        })
    }

    fn has(&self, digest: &Sha256) -> bool {
        self.have.contains(digest)
    }

    fn path_of(&self, digest: &Sha256) -> Option<PathBuf> {
        self.has(digest).then(|| self.dir.join(digest.to_hex()))
    }

    /// Copies exactly `size` bytes from `reader`, and names the file by its digest only if it
    /// is `digest`.
    fn write(
        &mut self,
        digest: &Sha256,
        size: u64,
        reader: &mut impl Read,
    ) -> Result<(), StageFault> {
        let temp = self.dir.join(format!(".{digest}.partial"));
        let _ = std::fs::remove_file(&temp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&temp)
            .map_err(not_written(&temp))?;
        // Large blobs are written on a thread of their own while this one hashes.
        let result = if size >= PIPED {
            let mut piped = volume::PipeWriter::new(volume::WriteBehind::new(file));
            copy_checked(reader, &mut piped, &mut self.buffer, size, digest, &temp)
                .and_then(|()| piped.finish().map(drop).map_err(not_written(&temp)))
        } else {
            copy_checked(reader, &mut file, &mut self.buffer, size, digest, &temp)
        };
        if let Err(fault) = result {
            let _ = std::fs::remove_file(&temp);
            return Err(fault);
        }
        let target = self.dir.join(digest.to_hex());
        std::fs::rename(&temp, &target).map_err(not_written(&target))?;
        self.have.insert(*digest);
        Ok(())
    }

    /// Makes every staged blob durable, and records that it is.
    fn flush(&self) -> Result<(), BundleError> {
        crate::storage::sync_filesystem(&self.dir)?;
        let mut list: Vec<String> = self.have.iter().map(Sha256::to_hex).collect();
        list.sort();
        write_atomic(&self.dir.join(FLUSHED), list.join("\n").as_bytes(), 0o644)?;
        Ok(())
    }
}

/// Blobs from this size on are staged through a [`volume::PipeWriter`].
const PIPED: u64 = 4 << 20;

/// Why a blob was not staged: the entry is not what the manifest says, the volume could not
/// be read, or this host could not write.
enum StageFault {
    Entry(String),
    Read(std::io::Error),
    Write(StorageError),
}

fn not_written(path: &Path) -> impl FnOnce(std::io::Error) -> StageFault + '_ {
    move |source| {
        StageFault::Write(StorageError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Copies one entry's bytes into `out` (the file at `staged`), checking its size and digest.
fn copy_checked(
    reader: &mut impl Read,
    out: &mut dyn std::io::Write,
    buffer: &mut [u8],
    size: u64,
    digest: &Sha256,
    staged: &Path,
) -> Result<(), StageFault> {
    let truncated = |got| {
        StageFault::Entry(format!(
            "the volume ends inside this entry, after {got} of {size} bytes (truncated)"
        ))
    };
    let mut read = 0;
    let copied = crate::storage::copy_sha256(reader, out, buffer, size, &mut |n| read += n);
    let (actual, got) = match copied {
        Ok(done) => done,
        Err(CopyError::Read(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(truncated(read));
        }
        Err(CopyError::Read(e)) => return Err(StageFault::Read(e)),
        Err(CopyError::Write(source)) => {
            return Err(not_written(staged)(source));
        }
    };
    if got != size {
        return Err(truncated(got));
    }
    if actual != *digest {
        return Err(StageFault::Entry(format!(
            "its content is not the blob it is named after (its SHA-256 is {actual})"
        )));
    }
    Ok(())
}

/// Makes one content of the bundle what this site serves.
fn switch(
    site: &Site,
    ready: Ready<'_>,
    key: Option<&SiteKey>,
    id: &str,
    now: jiff::Timestamp,
) -> Result<u64, BundleError> {
    let Ready {
        content,
        tree,
        state,
        ..
    } = ready;
    let data = site.data_dir();
    let store = site.store();
    let label = content.label();
    let state_path = match content.kind {
        Kind::Repo => Some(RepoState::path(site, &content.name)),
        Kind::Images => Some(CustomImages::path(site)),
        Kind::Snaps => Some(Catalog::path(data)),
        Kind::Mirror | Kind::Publish => None,
    };
    match (&state_path, &state) {
        (Some(path), Some(bytes)) => {
            let dir = path.parent().expect("state files are in a folder");
            std::fs::create_dir_all(dir).map_err(|source| StorageError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
            write_atomic(path, bytes, 0o644)?;
        }
        // The exporter had none (no custom images, say): neither has this site now.
        (Some(path), None) => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StorageError::Write {
                    path: path.clone(),
                    source: e,
                }
                .into());
            }
            _ => {}
        },
        _ => {}
    }
    // Snaps are a state file only: a tree given for them is not published anywhere.
    let (Some(mut manifest), Some(trees)) = (tree, trees_of(site, content)) else {
        return Ok(0);
    };
    let staging = store.staging();
    let grace = site.config.site.grace.0.as_secs() as i64;
    let previous = trees.current()?.unwrap_or_default();
    if content.signing == Signing::Site {
        let key = key.expect("loaded when a content is signed by the site");
        match content.area {
            Area::Apt => resign::apt(
                &label,
                &mut manifest,
                &store,
                &staging,
                key,
                configured(site, content).flatten(),
                now,
            )?,
            _ => resign::streams(&label, &mut manifest, &store, &staging, key)?,
        }
    }
    match content.area {
        Area::Apt => crate::apt::publish::retain_superseded(&previous, &mut manifest, now, grace),
        _ => crate::simplestreams::publish::retain_files(site, &mut manifest, &previous, now),
    }
    manifest
        .notes
        .retain(|(k, _)| k != IMPORTED_NOTE && k != RESIGNED_NOTE);
    manifest.notes.push((IMPORTED_NOTE.into(), id.to_string()));
    if let (Some(key), Signing::Site) = (key, content.signing) {
        manifest
            .notes
            .push((RESIGNED_NOTE.into(), key.fingerprint()));
    }
    let files = manifest.entries.len() as u64;
    trees.publish(&store, staging, &manifest, &previous)?;
    Ok(files)
}

/// The trees a content is published as; none for the snaps (a state file only).
fn trees_of(site: &Site, content: &Content) -> Option<TreeSet> {
    match content.area {
        Area::Apt => Some(TreeSet::apt(site.data_dir(), &content.name)),
        Area::Images => Some(TreeSet::area(site.data_dir(), "images")),
        Area::Snaps => None,
    }
}

/// Notes the bundle a tree came from.
pub(super) const IMPORTED_NOTE: &str = "imported";
/// Notes the key an imported tree was signed again with (none: verbatim, the upstream's).
pub(super) const RESIGNED_NOTE: &str = "resigned";

/// How this site's config knows the content: `None` when it does not name it (served, but no
/// command here maintains it), else the Release validity it gives (apt only).
fn configured(site: &Site, content: &Content) -> Option<Option<std::time::Duration>> {
    let apt = &site.config.apt;
    let name = content.name.as_str();
    let period = match content.kind {
        Kind::Repo => {
            apt.repos
                .iter()
                .find(|r| r.name.as_str() == name)?
                .valid_for
        }
        Kind::Mirror => {
            apt.mirrors
                .iter()
                .find(|m| m.name.as_str() == name)?
                .valid_for
        }
        Kind::Publish => {
            apt.publish
                .iter()
                .find(|p| p.name.as_str() == name)?
                .valid_for
        }
        Kind::Images | Kind::Snaps => None,
    };
    Some(period.map(|p| p.0))
}

/// The bundles this site imported (`data/state/bundles/imported.json`): incremental bundles
/// need their base here, and an older bundle must not roll a content back.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ImportLog {
    bundles: Vec<ImportedBundle>,
}

/// One bundle imported here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportedBundle {
    pub id: String,
    pub created: String,
    /// The fingerprint of the site that exported it.
    pub exporter: String,
    pub sha256: Sha256,
    pub imported: String,
}

/// The bundles this site imported, oldest first.
pub fn imported_bundles(site: &Site) -> Result<Vec<ImportedBundle>, BundleError> {
    Ok(ImportLog::load(site)?.bundles)
}

/// The bundle a published tree was last imported from, as its manifest notes it.
pub fn imported_from(manifest: &crate::storage::Manifest) -> Option<&str> {
    manifest.note(IMPORTED_NOTE).next()
}

impl ImportLog {
    fn path(site: &Site) -> PathBuf {
        site.data_dir().join("state/bundles/imported.json")
    }

    fn load(site: &Site) -> Result<ImportLog, BundleError> {
        Ok(crate::storage::load_json(&Self::path(site))?)
    }

    /// Refuses a bundle whose base is not here, or that is older than one already imported
    /// from the same site. The same bundle again is fine (a re-run).
    fn admit(&self, bundle: &BundleManifest) -> Result<(), BundleError> {
        if let Some(base) = &bundle.base
            && !self
                .bundles
                .iter()
                .any(|b| b.id == base.id && b.sha256 == base.sha256)
        {
            return Err(BundleError::MissingBase {
                id: bundle.id.clone(),
                base: base.id.clone(),
            });
        }
        let time = |t: &str| t.parse::<jiff::Timestamp>().ok();
        let created = time(&bundle.created);
        let newer = self
            .bundles
            .iter()
            .filter(|b| b.exporter == bundle.exporter.fingerprint && b.id != bundle.id)
            .filter(|b| time(&b.created) > created)
            .max_by_key(|b| time(&b.created));
        if let Some(newer) = newer {
            return Err(BundleError::Older {
                id: bundle.id.clone(),
                created: bundle.created.clone(),
                newer: newer.id.clone(),
                newer_created: newer.created.clone(),
            });
        }
        Ok(())
    }

    fn record(&mut self, bundle: &BundleManifest, sha256: &Sha256, now: jiff::Timestamp) {
        self.bundles.retain(|b| b.id != bundle.id);
        self.bundles.push(ImportedBundle {
            id: bundle.id.clone(),
            created: bundle.created.clone(),
            exporter: bundle.exporter.fingerprint.clone(),
            sha256: *sha256,
            imported: now.to_string(),
        });
    }

    fn save(&self, site: &Site) -> Result<(), BundleError> {
        Ok(crate::storage::save_json(&Self::path(site), self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::manifest::{BaseBundle, Exporter};

    /// What `.flushed` lists is trusted without hashing, so it must name only what is still
    /// staged: a name it kept after its file left would let a later, unflushed file of that
    /// name in unchecked.
    #[test]
    fn staged_blobs_are_trusted_only_while_flushed_and_present() {
        let data = tempfile::tempdir().unwrap();
        let store = ContentStore::new(data.path());
        let dir = store.import_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let put = |bytes: &[u8], days: u64| {
            let digest = Sha256::of(bytes);
            let path = dir.join(digest.to_hex());
            std::fs::write(&path, bytes).unwrap();
            let age = std::time::Duration::from_secs(days * 86_400);
            File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(std::time::SystemTime::now() - age)
                .unwrap();
            (digest, path)
        };
        let (old, old_path) = put(b"flushed, of a bundle abandoned three weeks ago", 21);
        let (kept, _) = put(b"flushed, of the bundle being imported", 21);
        let (unflushed, _) = put(b"written, not yet flushed, intact", 0);
        let (_, torn_path) = put(b"written, not yet flushed, torn by a power cut", 0);
        std::fs::write(&torn_path, b"torn").unwrap();
        let gone = Sha256::of(b"listed, but its file was removed since");
        std::fs::write(dir.join("tmp-unfinished"), b"half").unwrap();
        std::fs::write(
            dir.join(FLUSHED),
            [old, kept, gone].map(|d| d.to_hex()).join("\n"),
        )
        .unwrap();

        let staged = Staged::open(&store, &HashSet::from([kept])).unwrap();
        assert_eq!(staged.have, HashSet::from([kept, unflushed]));
        assert!(!old_path.exists() && !torn_path.exists());
        assert!(!dir.join("tmp-unfinished").exists());
        let listed = std::fs::read_to_string(dir.join(FLUSHED)).unwrap();
        assert_eq!(listed, kept.to_hex(), "only what is flushed and still here");

        // The abandoned blob's name comes back with other bytes, unflushed: hashed, refused.
        std::fs::write(&old_path, b"not what the name says").unwrap();
        let staged = Staged::open(&store, &HashSet::from([kept])).unwrap();
        assert_eq!(staged.have, HashSet::from([kept, unflushed]));
        assert!(!old_path.exists());
    }

    fn bundle(id: &str, created: &str, base: Option<&str>) -> BundleManifest {
        BundleManifest {
            format: manifest::FORMAT,
            id: id.into(),
            created: created.into(),
            exporter: Exporter {
                fingerprint: "A".into(),
                url: String::new(),
            },
            base: base.map(|b| BaseBundle {
                id: b.into(),
                sha256: Sha256::of(b.as_bytes()),
            }),
            contents: Vec::new(),
            volumes: Vec::new(),
            blobs: Vec::new(),
            airlock: None,
        }
    }

    #[test]
    fn admits_in_order_and_refuses_rollback_and_unknown_bases() {
        let mut log = ImportLog::default();
        let first = bundle("one", "2026-12-01T00:00:00Z", None);
        let second = bundle("two", "2026-12-08T00:00:00Z", Some("one"));
        let err = log.admit(&second).unwrap_err();
        assert!(err.to_string().contains("import one first"), "{err}");
        log.admit(&first).unwrap();
        log.record(&first, &Sha256::of(b"one"), jiff::Timestamp::now());
        log.admit(&second).unwrap();
        log.record(&second, &Sha256::of(b"two"), jiff::Timestamp::now());
        // The same bundle again is a re-run; an older one would roll back.
        log.admit(&second).unwrap();
        let err = log.admit(&first).unwrap_err();
        assert!(matches!(err, BundleError::Older { .. }), "{err}");
        // Another exporter's bundles are not compared.
        let mut other = bundle("three", "2026-11-01T00:00:00Z", None);
        other.exporter.fingerprint = "B".into();
        log.admit(&other).unwrap();
    }
}
