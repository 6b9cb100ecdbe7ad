//! Published trees: what clients see, switched atomically.
//!
//! A publish writes a [`Manifest`] (path → blob), materialises it as a fresh folder of hard links
//! into the content store under `trees/AREA/NAME/ID/`, flushes it, and then replaces the symlink
//! `public/AREA/NAME` in one rename. A client resolves every request against whichever tree the
//! link names at that instant, so it never sees half of a publish; a crash before the rename
//! leaves the old tree served and a stray folder that the next publish removes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use fs_err as fs;

use super::StorageError;
use super::atomic::{sync_dir, sync_filesystem};
use super::digest::Sha256;
use super::store::{ContentStore, Staging};
use crate::util::parallel_map;

const MANIFEST_MAGIC: &str = "# airlock published tree v1";

/// One file of a published tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub sha256: Sha256,
    pub size: u64,
    /// When the entry stopped being current (Unix seconds). Retired entries stay published for
    /// a grace period so that clients holding older indices can still fetch what they name.
    pub retired: Option<i64>,
}

/// The content of a published tree, plus free-form `@key value` notes for its publisher.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub notes: Vec<(String, String)>,
    pub entries: BTreeMap<String, Entry>,
}

impl Manifest {
    /// Adds (or replaces) a current entry.
    pub fn add(&mut self, path: &str, sha256: Sha256, size: u64) {
        self.entries.insert(
            path.to_string(),
            Entry {
                sha256,
                size,
                retired: None,
            },
        );
    }

    /// Keeps the entries of `previous` that this manifest dropped and whose paths never
    /// change content (`immutable`), for `grace` seconds after they were first dropped:
    /// a client that read the previous index can still fetch what it lists.
    pub fn retain_superseded(
        &mut self,
        previous: &Manifest,
        now: i64,
        grace: i64,
        immutable: impl Fn(&str) -> bool,
    ) {
        for (path, entry) in &previous.entries {
            if !immutable(path) || self.entries.contains_key(path) {
                continue;
            }
            let retired = entry.retired.unwrap_or(now);
            if now - retired < grace {
                self.entries.insert(
                    path.clone(),
                    Entry {
                        retired: Some(retired),
                        ..entry.clone()
                    },
                );
            }
        }
    }

    pub fn note(&self, key: &str) -> impl Iterator<Item = &str> {
        self.notes
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(64 + self.entries.len() * 120);
        out.push_str(MANIFEST_MAGIC);
        out.push('\n');
        for (key, value) in &self.notes {
            out.push_str(&format!("@{key} {value}\n"));
        }
        for (path, e) in &self.entries {
            let retired = e.retired.map_or("-".to_string(), |t| t.to_string());
            out.push_str(&format!("{} {} {} {}\n", e.sha256, e.size, retired, path));
        }
        out
    }

    pub fn parse(text: &str, origin: &Path) -> Result<Manifest, StorageError> {
        let bad = |line: usize, reason: &str| StorageError::Corrupt {
            path: origin.to_path_buf(),
            reason: format!("line {line}: {reason}"),
        };
        let mut lines = text.lines().enumerate();
        if lines.next().map(|(_, l)| l) != Some(MANIFEST_MAGIC) {
            return Err(bad(1, "not an airlock manifest"));
        }
        let mut manifest = Manifest::default();
        for (i, line) in lines {
            if let Some(note) = line.strip_prefix('@') {
                if note.contains(char::is_control) {
                    return Err(bad(i + 1, "a note with a control character"));
                }
                let (k, v) = note.split_once(' ').unwrap_or((note, ""));
                manifest.notes.push((k.to_string(), v.to_string()));
                continue;
            }
            let mut parts = line.splitn(4, ' ');
            let (Some(hash), Some(size), Some(retired), Some(path)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad(i + 1, "expected: sha256 size retired path"));
            };
            let sha256 = Sha256::from_hex(hash).ok_or_else(|| bad(i + 1, "bad sha256"))?;
            let size = size.parse().map_err(|_| bad(i + 1, "bad size"))?;
            let retired = match retired {
                "-" => None,
                t => Some(t.parse().map_err(|_| bad(i + 1, "bad retirement time"))?),
            };
            check_relative_path(path).map_err(|reason| bad(i + 1, &reason))?;
            manifest.entries.insert(
                path.to_string(),
                Entry {
                    sha256,
                    size,
                    retired,
                },
            );
        }
        Ok(manifest)
    }
}

/// Rejects anything that could leave the tree: absolute paths, `..`, empty or hidden parts.
pub fn check_relative_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.starts_with('/') {
        return Err(format!("path {path:?} is not relative"));
    }
    for part in path.split('/') {
        // Control characters: no archive names a file with one, and a line break (`\r` as
        // much as `\n`) would not read back from a manifest.
        if part.is_empty()
            || part.starts_with('.')
            || part.contains(|c: char| c.is_control() || c == '\\')
        {
            return Err(format!("path {path:?} has a forbidden component {part:?}"));
        }
    }
    Ok(())
}

/// The published trees of one area/name (for example `apt/local`).
///
/// Top-level folders named in `shared` (apt's `pool`) hold only immutable paths (a path never
/// changes content), so one copy of them, `trees/AREA/NAME/shared/`, serves every tree through
/// a symlink, and a publish touches only what changed there. While a publish changes the
/// shared folder a marker file exists; if a crash leaves it behind, the next publish compares
/// the folder with its manifest file by file.
#[derive(Debug, Clone)]
pub struct TreeSet {
    trees: PathBuf,
    link: PathBuf,
    shared: &'static [&'static str],
}

/// The marker of a publish's changes to the shared folders, written ([`TreeSet::prepare`]).
#[derive(Debug)]
pub struct Marked {
    /// A crashed publish had left it: the shared folders may differ from the manifest.
    crashed: bool,
    /// Flushed already.
    durable: bool,
    /// Removed if this is dropped before its publish: nothing changed the shared folders.
    marker: Option<PathBuf>,
}

impl Drop for Marked {
    fn drop(&mut self) {
        if let Some(marker) = self.marker.take() {
            let _ = std::fs::remove_file(marker);
        }
    }
}

impl TreeSet {
    pub fn new(data_dir: &Path, area: &str, name: &str) -> Self {
        TreeSet {
            trees: data_dir.join("trees").join(area).join(name),
            link: data_dir.join("public").join(area).join(name),
            shared: &[],
        }
    }

    /// An apt repo, mirror or combined suite: its pool is shared by its trees.
    pub fn apt(data_dir: &Path, name: &str) -> Self {
        TreeSet::new(data_dir, "apt", name).with_shared(&["pool"])
    }

    /// A tree served as a whole area (`public/AREA`, such as `/images/`).
    pub fn area(data_dir: &Path, area: &str) -> Self {
        TreeSet {
            trees: data_dir.join("trees").join(area),
            link: data_dir.join("public").join(area),
            shared: &[],
        }
    }

    /// Names top-level folders whose paths never change content (see the type doc).
    pub fn with_shared(mut self, folders: &'static [&'static str]) -> Self {
        self.shared = folders;
        self
    }

    /// The manifest of the tree served now.
    pub fn current(&self) -> Result<Option<Manifest>, StorageError> {
        Ok(self.served()?.map(|(_, _, manifest)| manifest))
    }

    /// The served tree: its ID, its manifest file and the manifest.
    pub fn served(&self) -> Result<Option<(String, PathBuf, Manifest)>, StorageError> {
        let Some(id) = self.current_id() else {
            return Ok(None);
        };
        let path = self.trees.join(format!("{id}.manifest"));
        let text = fs::read_to_string(&path).map_err(|source| StorageError::Read {
            path: path.clone(),
            source,
        })?;
        let manifest = Manifest::parse(&text, &path)?;
        Ok(Some((id, path, manifest)))
    }

    /// The notes of the served tree's manifest, without its entries (a mirror's run to
    /// megabytes; its notes come first).
    pub fn current_notes(&self) -> Result<Option<Vec<(String, String)>>, StorageError> {
        let Some(id) = self.current_id() else {
            return Ok(None);
        };
        let path = self.trees.join(format!("{id}.manifest"));
        let read_err = |source| StorageError::Read {
            path: path.clone(),
            source,
        };
        let file = fs::File::open(&path).map_err(read_err)?;
        let mut notes = Vec::new();
        for (i, line) in io::BufRead::lines(io::BufReader::new(file)).enumerate() {
            let line = line.map_err(read_err)?;
            if i == 0 {
                if line != MANIFEST_MAGIC {
                    return Err(StorageError::Corrupt {
                        path,
                        reason: "line 1: not an airlock manifest".into(),
                    });
                }
                continue;
            }
            let Some(note) = line.strip_prefix('@') else {
                break;
            };
            let (k, v) = note.split_once(' ').unwrap_or((note, ""));
            notes.push((k.to_string(), v.to_string()));
        }
        Ok(Some(notes))
    }

    /// The names of the data folder's apt trees (`trees/apt/NAME`), served or not, sorted.
    pub fn apt_names(data_dir: &Path) -> Result<Vec<String>, StorageError> {
        let dir = data_dir.join("trees/apt");
        let read_err = |source| StorageError::Read {
            path: dir.clone(),
            source,
        };
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(read_err(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            names.push(
                entry
                    .map_err(read_err)?
                    .file_name()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        names.sort();
        Ok(names)
    }

    /// The names served under `public/apt`, one per repo, mirror or combined suite, sorted;
    /// none when the folder is missing or cannot be read.
    pub fn published_apt_names(data_dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(data_dir.join("public/apt"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // `.ID.link`: a switch a crash interrupted; the next publish removes it.
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    /// Every manifest the set keeps: the served tree's, and those of trees a publish has not
    /// removed yet (superseded, or left by a crash).
    pub fn manifests(&self) -> Result<Vec<Manifest>, StorageError> {
        let entries = match fs::read_dir(&self.trees) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StorageError::Read {
                    path: self.trees.clone(),
                    source,
                });
            }
        };
        let mut manifests = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| StorageError::Read {
                    path: self.trees.clone(),
                    source,
                })?
                .path();
            if path.extension().is_none_or(|e| e != "manifest") || !path.is_file() {
                continue;
            }
            let text = fs::read_to_string(&path).map_err(|source| StorageError::Read {
                path: path.clone(),
                source,
            })?;
            manifests.push(Manifest::parse(&text, &path)?);
        }
        Ok(manifests)
    }

    /// Whether a tree is served at all.
    pub fn is_published(&self) -> bool {
        self.current_id().is_some()
    }

    fn current_id(&self) -> Option<String> {
        let target = fs::read_link(&self.link).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }

    fn is_shared(&self, path: &str) -> bool {
        let top = path.split('/').next().unwrap_or_default();
        self.shared.contains(&top)
    }

    /// Commits `staging` (the blobs the manifest adds), materialises `manifest` and makes it the
    /// served tree; `previous` is the manifest served until now (empty if none). Removes what
    /// no tree serves any more. Returns the bytes the store gained.
    pub fn publish(
        &self,
        store: &ContentStore,
        staging: Staging,
        manifest: &Manifest,
        previous: &Manifest,
    ) -> Result<u64, StorageError> {
        self.publish_as(&new_tree_id(), store, staging, manifest, previous)
    }

    /// [`TreeSet::publish`] under a given tree ID (a pulled tree keeps the bucket's). The
    /// caller checks that `id` is one ([`is_tree_id`]).
    pub fn publish_as(
        &self,
        id: &str,
        store: &ContentStore,
        staging: Staging,
        manifest: &Manifest,
        previous: &Manifest,
    ) -> Result<u64, StorageError> {
        let marked = Marked {
            crashed: self.mark_shared_dirty()?,
            durable: false,
            marker: None,
        };
        self.publish_marked(marked, id, store, staging, manifest, previous)
    }

    /// Writes the marker a publish leaves while it changes the shared folders, and makes it
    /// durable on its own. [`TreeSet::publish_prepared`] then links the shared folders while
    /// the staged blobs' data is being flushed, instead of after: for a caller with time to
    /// spare before its publish (a mirror sync, while it reads its indices). Dropped unused,
    /// it removes the marker again (unless a crashed publish had left it).
    pub fn prepare(&self) -> Result<Marked, StorageError> {
        let crashed = self.mark_shared_dirty()?;
        if !self.shared.is_empty() {
            sync_dir(&self.trees)?;
        }
        Ok(Marked {
            crashed,
            durable: true,
            marker: (!crashed && !self.shared.is_empty()).then(|| self.dirty_marker()),
        })
    }

    /// [`TreeSet::publish`] after [`TreeSet::prepare`].
    pub fn publish_prepared(
        &self,
        mut prepared: Marked,
        store: &ContentStore,
        staging: Staging,
        manifest: &Manifest,
        previous: &Manifest,
    ) -> Result<u64, StorageError> {
        prepared.marker = None;
        self.publish_marked(prepared, &new_tree_id(), store, staging, manifest, previous)
    }

    fn publish_marked(
        &self,
        marked: Marked,
        id: &str,
        store: &ContentStore,
        staging: Staging,
        manifest: &Manifest,
        previous: &Manifest,
    ) -> Result<u64, StorageError> {
        let started = std::time::Instant::now();
        let lap = |what: &str| {
            tracing::debug!(
                "publish: {what} after {:.0} ms",
                started.elapsed().as_secs_f64() * 1000.0
            )
        };
        let staged = staging.take();
        // One flush makes the staged blobs' data durable before any name points at them, and
        // the marker before the shared folders change (unless it is durable already).
        let flush = || {
            if !staged.is_empty() {
                sync_filesystem(&store.root)
            } else if !self.shared.is_empty() && !marked.durable {
                sync_dir(&self.trees)
            } else {
                Ok(())
            }
        };
        // The store's folders for the staged blobs are made while their data is flushed.
        let flush_and_make_folders = || {
            std::thread::scope(|scope| {
                let made = scope.spawn(|| staging.make_folders(staged.iter().map(|(_, d)| d)));
                let flushed = flush();
                flushed.and(made.join().expect("making folders does not panic"))
            })
        };
        if !marked.durable {
            flush_and_make_folders()?;
            lap("staging flushed");
        }
        // The blobs move to their store names (after the flush) while the shared folders link
        // them from where they are, in two threads that do not wait for each other (the
        // kernel renames across folders one at a time).
        let temps: HashMap<Sha256, &Path> = staged.iter().map(|(p, d)| (*d, p.as_path())).collect();
        let (added, stale_shared) = std::thread::scope(|scope| {
            let moved = scope.spawn(|| {
                if marked.durable {
                    flush_and_make_folders()?;
                }
                let sizes: HashMap<&Sha256, u64> = manifest
                    .entries
                    .values()
                    .map(|e| (&e.sha256, e.size))
                    .collect();
                staging.move_in(&staged, |digest| sizes.get(digest).copied())
            });
            let stale = self.update_shared(store, manifest, previous, marked.crashed, &temps);
            (
                moved.join().expect("the store's renames do not panic"),
                stale,
            )
        });
        let (added, stale_shared) = (added?, stale_shared?);
        lap("staging committed and shared linked");
        let building = self.trees.join(format!("{id}.building"));
        let final_dir = self.trees.join(id);
        let mut folders = Folders::default();

        for (path, entry) in manifest.entries.iter().filter(|(p, _)| !self.is_shared(p)) {
            let dest = building.join(path);
            folders.ensure(dest.parent().expect("entry has a parent"))?;
            link_blob(store, &entry.sha256, None, &dest, false)?;
        }
        folders.ensure(&building)?;
        for folder in self.shared {
            let target = Path::new("../shared").join(folder);
            folders.ensure(&self.shared_root().join(folder))?;
            let link = building.join(folder);
            std::os::unix::fs::symlink(&target, &link).map_err(write_err(&link))?;
        }
        lap("tree linked");
        // No fsync of its own: the flush below covers it, and nothing reads it before the switch.
        let manifest_path = self.trees.join(format!("{id}.manifest"));
        fs::write(&manifest_path, manifest.render()).map_err(write_err(&manifest_path))?;
        // One flush for the blobs' names, the tree and its manifest, before anyone can see them.
        sync_filesystem(&self.trees)?;
        staging.flushed();
        lap("flushed");
        fs::rename(&building, &final_dir).map_err(write_err(&final_dir))?;

        // Switch: a new symlink renamed over the old one is atomic for every reader.
        let link_dir = self.link.parent().expect("link has a parent");
        fs::create_dir_all(link_dir).map_err(write_err(link_dir))?;
        let relative = relative_target(link_dir, &final_dir);
        let temp_link = link_dir.join(format!(".{id}.link"));
        std::os::unix::fs::symlink(&relative, &temp_link).map_err(write_err(&temp_link))?;
        fs::rename(&temp_link, &self.link).map_err(write_err(&self.link))?;
        sync_dir(link_dir)?;
        lap("switched");

        self.remove_stale(id)?;
        for path in stale_shared {
            remove_with_empty_parents(&self.shared_root(), &path)?;
        }
        remove_if_exists(&self.dirty_marker())?;
        lap("tidied");
        Ok(added)
    }

    /// Finishes what an interrupted publish left undone around the served tree (`current`):
    /// removes unfinished and superseded trees, and files of the shared folders that no
    /// manifest names. Cheap when there is nothing to do.
    pub fn tidy(&self, current: &Manifest) -> Result<(), StorageError> {
        let Some(id) = self.current_id() else {
            return Ok(());
        };
        self.remove_stale(&id)?;
        if self.dirty_marker().exists() {
            let root = self.shared_root();
            for path in files_below(&root)? {
                if !current.entries.contains_key(&path) {
                    remove_with_empty_parents(&root, &path)?;
                }
            }
            remove_if_exists(&self.dirty_marker())?;
        }
        Ok(())
    }

    fn shared_root(&self) -> PathBuf {
        self.trees.join("shared")
    }

    fn dirty_marker(&self) -> PathBuf {
        self.trees.join("shared.dirty")
    }

    /// Before a publish changes the shared folders: writes the marker that tells a later run
    /// to look at every file there, should this one crash. The staging's commit flushes it
    /// (durable before shared/ changes, so that a crash is always noticed). Returns whether a
    /// crashed publish had left it.
    fn mark_shared_dirty(&self) -> Result<bool, StorageError> {
        if self.shared.is_empty() {
            return Ok(false);
        }
        let marker = self.dirty_marker();
        let crashed = marker.exists();
        fs::create_dir_all(&self.trees).map_err(write_err(&self.trees))?;
        fs::write(&marker, b"").map_err(write_err(&marker))?;
        Ok(crashed)
    }

    /// Links the shared entries of `manifest` that are new or changed; returns the shared
    /// paths to delete once the new tree is served. `crashed`: a publish was interrupted
    /// while changing them. `temps`: where staged blobs are until they reach their names.
    fn update_shared(
        &self,
        store: &ContentStore,
        manifest: &Manifest,
        previous: &Manifest,
        crashed: bool,
        temps: &HashMap<Sha256, &Path>,
    ) -> Result<Vec<String>, StorageError> {
        if self.shared.is_empty() {
            return Ok(Vec::new());
        }
        let root = self.shared_root();
        // After a crash, what is on disk may differ from `previous`: look at every file.
        let on_disk = if crashed {
            Some(files_below(&root)?)
        } else {
            None
        };

        let todo: Vec<(&String, &Entry)> = manifest
            .entries
            .iter()
            .filter(|(path, entry)| {
                self.is_shared(path)
                    && match &on_disk {
                        None => previous
                            .entries
                            .get(*path)
                            .is_none_or(|p| p.sha256 != entry.sha256),
                        Some(files) => {
                            !(files.contains(*path)
                                && same_file(&store.blob_path(&entry.sha256), &root.join(path)))
                        }
                    }
            })
            .collect();
        // Thousands of links in as many folders: both cores help, a folder each at a time (the
        // kernel changes one folder for one thread at a time: two in one folder only spin).
        let mut folders: BTreeMap<&str, Vec<(&String, &Entry)>> = BTreeMap::new();
        for (path, entry) in todo {
            let folder = path.rsplit_once('/').map_or("", |(folder, _)| folder);
            folders.entry(folder).or_default().push((path, entry));
        }
        let folders: Vec<_> = folders.into_iter().collect();
        let results = parallel_map(&folders, |(folder, entries)| {
            let dir = root.join(folder);
            fs::create_dir_all(&dir).map_err(write_err(&dir))?;
            for (path, entry) in entries {
                let temp = temps.get(&entry.sha256).copied();
                link_blob(store, &entry.sha256, temp, &root.join(path), true)?;
            }
            Ok(())
        });
        results
            .into_iter()
            .collect::<Result<Vec<()>, StorageError>>()?;

        let keep = |p: &str| manifest.entries.contains_key(p);
        let mut stale: Vec<String> = previous
            .entries
            .keys()
            .filter(|p| self.is_shared(p) && !keep(p))
            .cloned()
            .collect();
        if let Some(files) = on_disk {
            stale.extend(files.into_iter().filter(|p| !keep(p)));
            stale.sort();
            stale.dedup();
        }
        Ok(stale)
    }

    /// Deletes every tree and manifest but `keep`: unfinished builds of crashed runs included.
    fn remove_stale(&self, keep: &str) -> Result<(), StorageError> {
        for item in fs::read_dir(&self.trees).map_err(write_err(&self.trees))? {
            let item = item.map_err(write_err(&self.trees))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if name == "shared" || name == "shared.dirty" {
                continue;
            }
            let id = [".manifest", ".building"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            if id == keep {
                continue;
            }
            let path = item.path();
            let result = if path.is_dir() && !path.is_symlink() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            result.map_err(write_err(&path))?;
        }
        Ok(())
    }
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> StorageError + use<> {
    let path = path.to_path_buf();
    move |source| StorageError::Write { path, source }
}

/// Creates folders once per publish, not once per file.
#[derive(Default)]
struct Folders {
    made: HashSet<PathBuf>,
}

impl Folders {
    fn ensure(&mut self, dir: &Path) -> Result<(), StorageError> {
        if !self.made.contains(dir) {
            fs::create_dir_all(dir).map_err(write_err(dir))?;
            self.made.insert(dir.to_path_buf());
        }
        Ok(())
    }
}

/// Links `blob` at `dest`; if a different file is there (same path, new content: rare, a
/// package removed and re-added differently), replaces it in one rename.
fn link_replacing(blob: &Path, dest: &Path, digest: &Sha256) -> Result<(), StorageError> {
    match link_or_copy(blob, dest) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let temp = dest.with_file_name(format!(".{digest}.new"));
            let _ = std::fs::remove_file(&temp);
            link_or_copy(blob, &temp).map_err(write_err(&temp))?;
            fs::rename(&temp, dest).map_err(write_err(dest))
        }
        Err(e) => Err(write_err(dest)(e)),
    }
}

/// Links an entry's blob at `dest` (`replace`: over what is there), from `temp` while it is
/// staged there, else from its store name (where a concurrent commit may have just moved it).
/// A blob dropped after a push ([`ContentStore::is_dropped`]) has no bytes here: nothing is
/// linked, and the tree serves that path from the bucket only (frontends).
fn link_blob(
    store: &ContentStore,
    digest: &Sha256,
    temp: Option<&Path>,
    dest: &Path,
    replace: bool,
) -> Result<(), StorageError> {
    let link = |blob: &Path| {
        if replace {
            link_replacing(blob, dest, digest)
        } else {
            link_or_copy(blob, dest).map_err(write_err(dest))
        }
    };
    let missing = |linked: &Result<(), StorageError>| match linked {
        Err(StorageError::Write { source, .. }) => source.kind() == io::ErrorKind::NotFound,
        _ => false,
    };
    let mut linked = temp.map(link);
    if linked.as_ref().is_none_or(missing) {
        linked = Some(link(&store.blob_path(digest)));
    }
    match linked.expect("linked from one name or the other") {
        linked if missing(&linked) && store.is_dropped(digest) => remove_if_exists(dest),
        linked => linked,
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Relative paths of every file below `root`.
fn files_below(root: &Path) -> Result<HashSet<String>, StorageError> {
    fn walk(root: &Path, dir: &Path, out: &mut HashSet<String>) -> Result<(), StorageError> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(write_err(dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(write_err(dir))?;
            let path = entry.path();
            if entry.file_type().map_err(write_err(&path))?.is_dir() {
                walk(root, &path, out)?;
            } else if let Ok(relative) = path.strip_prefix(root) {
                out.insert(relative.to_string_lossy().into_owned());
            }
        }
        Ok(())
    }
    let mut out = HashSet::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(write_err(path)(e)),
        _ => Ok(()),
    }
}

/// Removes `root/relative` and then its parent folders up to `root` while they are empty.
fn remove_with_empty_parents(root: &Path, relative: &str) -> Result<(), StorageError> {
    let path = root.join(relative);
    remove_if_exists(&path)?;
    let mut dir = path.parent();
    while let Some(d) = dir.filter(|d| *d != root && d.starts_with(root)) {
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

fn link_or_copy(blob: &Path, dest: &Path) -> io::Result<()> {
    match std::fs::hard_link(blob, dest) {
        Ok(()) => Ok(()),
        // Store and trees on different filesystems (a user's mount): copying is correct, slower.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => {
            std::fs::copy(blob, dest).map(|_| ())
        }
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot link {} to {}: {e}", blob.display(), dest.display()),
        )),
    }
}

fn relative_target(link_dir: &Path, target: &Path) -> PathBuf {
    // public/AREA/ -> trees/AREA/NAME/ID: both live directly under the data folder.
    let data_dir = link_dir
        .parent()
        .and_then(Path::parent)
        .expect("public/AREA");
    let below = target.strip_prefix(data_dir).expect("tree under data dir");
    Path::new("../..").join(below)
}

/// Whether `id` is a tree ID as [`new_tree_id`] makes them (`20261207T101530123456789Z`):
/// nothing else lives beside the trees under such a name.
pub fn is_tree_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 25
        && b[8] == b'T'
        && b[24] == b'Z'
        && b[..8].iter().chain(&b[9..24]).all(u8::is_ascii_digit)
}

/// A sortable, readable id: the UTC time of the publish to the nanosecond.
fn new_tree_id() -> String {
    let now = jiff::Timestamp::now();
    format!(
        "{}{:09}Z",
        now.strftime("%Y%m%dT%H%M%S"),
        now.subsec_nanosecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_ids_are_only_what_a_publish_makes() {
        assert!(is_tree_id(&new_tree_id()));
        assert!(is_tree_id("20261207T101530123456789Z"));
        for bad in [
            "shared",
            "shared.dirty",
            "20261207T101530123456789Z.building",
            "20261207T101530123456789Z.manifest",
            "2026120XT101530123456789Z",
            "../20261207T10153012345678Z",
            "",
        ] {
            assert!(!is_tree_id(bad), "{bad}");
        }
    }

    fn entry(store: &ContentStore, bytes: &[u8]) -> Entry {
        let staging = store.staging();
        let sha256 = staging.add_bytes(bytes).unwrap();
        staging.commit().unwrap();
        Entry {
            sha256,
            size: bytes.len() as u64,
            retired: None,
        }
    }

    #[test]
    fn publish_switches_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::new(dir.path());
        let set = TreeSet::new(dir.path(), "apt", "local");
        assert_eq!(set.current().unwrap(), None);
        assert!(!set.is_published());
        assert_eq!(set.current_notes().unwrap(), None);

        let mut m1 = Manifest::default();
        m1.notes.push(("suite".into(), "stable x".into()));
        m1.notes.push(("empty".into(), String::new()));
        m1.entries
            .insert("dists/stable/Release".into(), entry(&store, b"one"));
        set.publish(&store, store.staging(), &m1, &Manifest::default())
            .unwrap();
        let served = dir.path().join("public/apt/local/dists/stable/Release");
        assert_eq!(std::fs::read(&served).unwrap(), b"one");
        assert_eq!(set.current().unwrap().as_ref(), Some(&m1));
        assert!(set.is_published());
        assert_eq!(set.current_notes().unwrap(), Some(m1.notes.clone()));

        let mut m2 = Manifest::default();
        m2.entries
            .insert("dists/stable/Release".into(), entry(&store, b"two"));
        let mut retired = entry(&store, b"old");
        retired.retired = Some(1234);
        m2.entries.insert("pool/a/old.deb".into(), retired);
        assert_eq!(set.manifests().unwrap(), vec![m1.clone()]);
        set.publish(&store, store.staging(), &m2, &m1).unwrap();
        assert_eq!(std::fs::read(&served).unwrap(), b"two");
        assert_eq!(set.manifests().unwrap(), vec![m2.clone()]);
        assert_eq!(TreeSet::apt_names(dir.path()).unwrap(), ["local"]);
        assert_eq!(TreeSet::published_apt_names(dir.path()), ["local"]);
        assert_eq!(set.current().unwrap(), Some(m2));
        // Only the served tree and its manifest remain.
        assert_eq!(
            std::fs::read_dir(dir.path().join("trees/apt/local"))
                .unwrap()
                .count(),
            2
        );
    }

    #[test]
    fn shared_folder_follows_the_manifest_and_recovers_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::new(dir.path());
        let set = TreeSet::new(dir.path(), "apt", "local").with_shared(&["pool"]);
        let served = |p: &str| std::fs::read(dir.path().join("public/apt/local").join(p)).ok();

        let mut m1 = Manifest::default();
        m1.entries
            .insert("pool/a/one.deb".into(), entry(&store, b"one"));
        m1.entries
            .insert("dists/x/Release".into(), entry(&store, b"r1"));
        set.publish(&store, store.staging(), &m1, &Manifest::default())
            .unwrap();
        assert_eq!(served("pool/a/one.deb").as_deref(), Some(&b"one"[..]));

        let mut m2 = Manifest::default();
        m2.entries
            .insert("pool/b/two.deb".into(), entry(&store, b"two"));
        m2.entries
            .insert("dists/x/Release".into(), entry(&store, b"r2"));
        set.publish(&store, store.staging(), &m2, &m1).unwrap();
        assert_eq!(served("pool/a/one.deb"), None, "dropped pool file removed");
        assert_eq!(served("pool/b/two.deb").as_deref(), Some(&b"two"[..]));
        assert!(
            !dir.path().join("trees/apt/local/shared/pool/a").exists(),
            "empty folders pruned"
        );

        // A crash left a stray file and the marker: the next publish cleans up.
        let shared = dir.path().join("trees/apt/local/shared/pool");
        std::fs::create_dir_all(shared.join("c")).unwrap();
        std::fs::write(shared.join("c/stray.deb"), "stray").unwrap();
        std::fs::write(shared.join("b/two.deb.tmp"), "partial").unwrap();
        std::fs::write(dir.path().join("trees/apt/local/shared.dirty"), "").unwrap();
        let mut m3 = m2.clone();
        m3.entries
            .insert("dists/x/Release".into(), entry(&store, b"r3"));
        set.publish(&store, store.staging(), &m3, &m2).unwrap();
        assert!(!shared.join("c/stray.deb").exists() && !shared.join("b/two.deb.tmp").exists());
        assert_eq!(served("pool/b/two.deb").as_deref(), Some(&b"two"[..]));
        assert!(!dir.path().join("trees/apt/local/shared.dirty").exists());
    }

    #[test]
    fn a_prepared_publish_links_staged_blobs_and_an_unused_marker_goes() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::new(dir.path());
        let set = TreeSet::new(dir.path(), "apt", "m").with_shared(&["pool"]);
        let marker = dir.path().join("trees/apt/m/shared.dirty");

        drop(set.prepare().unwrap());
        assert!(!marker.exists(), "a sync that stopped before its publish");

        let prepared = set.prepare().unwrap();
        assert!(marker.exists());
        let staging = store.staging();
        let mut m1 = Manifest::default();
        for (path, bytes) in [("pool/a/one.deb", &b"one"[..]), ("dists/x/Release", b"r")] {
            let sha256 = staging.add_bytes(bytes).unwrap();
            m1.add(path, sha256, bytes.len() as u64);
        }
        set.publish_prepared(prepared, &store, staging, &m1, &Manifest::default())
            .unwrap();
        assert!(!marker.exists());
        let served = dir.path().join("public/apt/m/pool/a/one.deb");
        assert_eq!(std::fs::read(&served).unwrap(), b"one");
        let blob = store.blob_path(&m1.entries["pool/a/one.deb"].sha256);
        let (a, b) = (
            std::fs::metadata(blob).unwrap(),
            std::fs::metadata(served).unwrap(),
        );
        assert_eq!(
            (a.dev(), a.ino()),
            (b.dev(), b.ino()),
            "the pool links the stored blob"
        );
        assert_eq!(std::fs::read_dir(store.temp_dir()).unwrap().count(), 0);

        // A crashed publish's marker stays until a publish has checked the shared folders.
        std::fs::write(&marker, "").unwrap();
        drop(set.prepare().unwrap());
        assert!(marker.exists());
    }

    #[test]
    fn manifest_rejects_escaping_paths() {
        for path in [
            "/etc/passwd",
            "a/../b",
            "a//b",
            ".hidden",
            "a/.b",
            "a\rb",
            "a/b\u{1f}",
        ] {
            assert!(check_relative_path(path).is_err(), "{path}");
        }
        let text = format!("{MANIFEST_MAGIC}\n{} 1 - ../x\n", Sha256::of(b""));
        assert!(Manifest::parse(&text, Path::new("m")).is_err());
    }

    proptest::proptest! {
        /// Any manifest text: no panic, and whatever parses stays inside the tree.
        #[test]
        fn parsed_manifests_stay_inside(lines in proptest::collection::vec("[0-9a-f]{64} [0-9]{1,3} (-|[0-9]{1,5}) [a-z./]{0,12}|@[a-z]{1,4} [a-z ]{0,6}|[ -~]{0,30}", 0..6)) {
            let text = format!("{MANIFEST_MAGIC}\n{}", lines.join("\n"));
            if let Ok(manifest) = Manifest::parse(&text, Path::new("m")) {
                for path in manifest.entries.keys() {
                    proptest::prop_assert!(check_relative_path(path).is_ok());
                    proptest::prop_assert!(!path.split('/').any(|p| p == ".."));
                }
            }
        }
    }
}
