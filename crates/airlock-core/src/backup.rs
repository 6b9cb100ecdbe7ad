//! `airlock backup DEST`: a copy of the data folder that keeps its hard links (a published
//! tree's files are links to the store's blobs: copied apart they would take the disk twice)
//! and its symlinks, taken under the site lock so that no writer changes the folder meanwhile,
//! while `airlock serve`, which never takes the lock, keeps serving.
//!
//! The copy is written into `DEST.partial`, flushed, then renamed to `DEST`: a `DEST` that
//! exists is whole. Restoring is copying it back (`cp -a` keeps hard links) or pointing
//! `[site] data_dir` at it (docs/operations.md).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::hint::Hint;
use crate::report::{Reporter, Unit};
use crate::site::{Site, SiteError};
use crate::storage::{StorageError, sync_dir, sync_filesystem};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path} already exists; a backup never replaces anything")]
    Exists { path: PathBuf },
    #[error("{path} is left by an interrupted backup")]
    Partial { path: PathBuf },
    #[error("{dest} is inside the data folder {data}")]
    Inside { dest: PathBuf, data: PathBuf },
    #[error("{path}: the folder to write the backup in does not exist")]
    NoParent { path: PathBuf },
    #[error("{path} is {kind}: a data folder holds only folders, files and symlinks")]
    Unexpected { path: PathBuf, kind: &'static str },
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Hint for BackupError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            BackupError::Exists { .. } => Some("name a new path for each backup"),
            BackupError::Partial { .. } => {
                Some("remove it (nothing else uses it) and run the backup again")
            }
            BackupError::Inside { .. } => {
                Some("write the backup outside the data folder, best on another disk")
            }
            BackupError::NoParent { .. } => Some("create that folder first"),
            BackupError::Unexpected { .. } => Some("move it out of the data folder"),
            BackupError::Site(e) => e.hint(),
            BackupError::Storage(e) => e.hint(),
        }
    }
}

/// What a backup copied.
#[derive(Debug, Default, serde::Serialize)]
pub struct BackupReport {
    pub dest: PathBuf,
    pub folders: u64,
    /// Files copied, and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Further names of files already copied (hard links), made as links again.
    pub hard_links: u64,
    pub symlinks: u64,
}

/// Copies the data folder to `dest`: check → lock → copy into `DEST.partial` → flush → rename.
pub fn backup(
    site: &Site,
    dest: &Path,
    reporter: &dyn Reporter,
) -> Result<BackupReport, BackupError> {
    let data = site.existing_data_dir()?.to_path_buf();
    let partial = check_dest(&data, dest)?;
    // Not `site.lock`: that would upgrade the folder before the copy meant to precede it.
    let _lock = site.lock_as_is(reporter)?;
    let mut copy = Copy {
        report: BackupReport {
            dest: dest.to_path_buf(),
            ..BackupReport::default()
        },
        seen: HashMap::new(),
        reporter,
        task: reporter.start("backing up the data folder", None, Unit::Items),
    };
    copy.folder(&data, &partial, true)?;
    reporter.finish(copy.task);
    sync_filesystem(&partial)?;
    std::fs::rename(&partial, dest).map_err(|source| StorageError::Write {
        path: dest.to_path_buf(),
        source,
    })?;
    sync_dir(parent_of(dest))?;
    Ok(copy.report)
}

/// `DEST` and `DEST.partial` must not exist, and must be outside the data folder.
fn check_dest(data: &Path, dest: &Path) -> Result<PathBuf, BackupError> {
    let mut partial = dest.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    if dest.symlink_metadata().is_ok() {
        return Err(BackupError::Exists {
            path: dest.to_path_buf(),
        });
    }
    if partial.symlink_metadata().is_ok() {
        return Err(BackupError::Partial { path: partial });
    }
    let parent = parent_of(dest);
    let canonical = |path: &Path| {
        std::fs::canonicalize(path).map_err(|_| BackupError::NoParent {
            path: path.to_path_buf(),
        })
    };
    let parent = canonical(parent)?;
    let data_canonical = canonical(data)?;
    if parent.starts_with(&data_canonical) {
        return Err(BackupError::Inside {
            dest: dest.to_path_buf(),
            data: data.to_path_buf(),
        });
    }
    Ok(partial)
}

/// The folder `path` is in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

struct Copy<'r> {
    report: BackupReport,
    /// (device, inode) of each file with several names → its first copy.
    seen: HashMap<(u64, u64), PathBuf>,
    reporter: &'r dyn Reporter,
    task: crate::report::TaskId,
}

impl Copy<'_> {
    /// Copies folder `from` to `to` (new), then sets its mode and times.
    fn folder(&mut self, from: &Path, to: &Path, top: bool) -> Result<(), BackupError> {
        let meta = from.symlink_metadata().map_err(read_err(from))?;
        std::fs::create_dir(to).map_err(write_err(to))?;
        self.report.folders += 1;
        let entries = std::fs::read_dir(from).map_err(read_err(from))?;
        for entry in entries {
            let entry = entry.map_err(read_err(from))?;
            let name = entry.file_name();
            // The lock file is the running process's, not the site's.
            if top && name == "lock" {
                continue;
            }
            let (source, target) = (entry.path(), to.join(&name));
            match source.symlink_metadata() {
                Ok(meta) => self.entry(&source, &target, &meta)?,
                // Gone since the listing: a temp file of serve's pull-through, which takes
                // no lock; what it keeps is renamed into place and listed where it lands.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(read_err(&source)(e)),
            }
            self.reporter.advance(self.task, 1);
        }
        finish(to, &meta, false)
    }

    fn entry(
        &mut self,
        source: &Path,
        target: &Path,
        meta: &std::fs::Metadata,
    ) -> Result<(), BackupError> {
        let kind = meta.file_type();
        if kind.is_dir() {
            return self.folder(source, target, false);
        }
        if kind.is_symlink() {
            let link = std::fs::read_link(source).map_err(read_err(source))?;
            std::os::unix::fs::symlink(&link, target).map_err(write_err(target))?;
            self.report.symlinks += 1;
            return finish(target, meta, true);
        }
        if !kind.is_file() {
            return Err(BackupError::Unexpected {
                path: source.to_path_buf(),
                kind: "neither a folder, a file nor a symlink",
            });
        }
        let key = (meta.dev(), meta.ino());
        if meta.nlink() > 1
            && let Some(first) = self.seen.get(&key)
        {
            std::fs::hard_link(first, target).map_err(write_err(target))?;
            self.report.hard_links += 1;
            return Ok(());
        }
        match std::fs::copy(source, target) {
            Ok(bytes) => self.report.bytes += bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !target.exists() => {
                return Ok(());
            }
            Err(e) => return Err(write_err(target)(e)),
        }
        self.report.files += 1;
        if meta.nlink() > 1 {
            self.seen.insert(key, target.to_path_buf());
        }
        finish(target, meta, false)
    }
}

/// The copy gets the original's mode (std's copy keeps it for files) and modification time:
/// `gc` spares blobs by their age.
fn finish(path: &Path, meta: &std::fs::Metadata, symlink: bool) -> Result<(), BackupError> {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, utimensat};
    if !symlink && meta.is_dir() {
        std::fs::set_permissions(path, meta.permissions()).map_err(write_err(path))?;
    }
    let time = |sec: i64, nsec: i64| Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    };
    let times = Timestamps {
        last_access: time(meta.atime(), meta.atime_nsec()),
        last_modification: time(meta.mtime(), meta.mtime_nsec()),
    };
    let flags = if symlink {
        AtFlags::SYMLINK_NOFOLLOW
    } else {
        AtFlags::empty()
    };
    utimensat(CWD, path, &times, flags).map_err(|e| write_err(path)(e.into()))?;
    Ok(())
}

fn read_err(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| {
        StorageError::Read {
            path: path.to_path_buf(),
            source,
        }
        .into()
    }
}

fn write_err(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| {
        StorageError::Write {
            path: path.to_path_buf(),
            source,
        }
        .into()
    }
}
