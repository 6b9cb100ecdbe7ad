//! Atomic replacement of small files: write a sibling temp file, fsync, rename, fsync the folder.
//! A reader sees the old content or the new, never a mix; a crash leaves one of the two.

use std::io::Write;
use std::path::Path;

use fs_err as fs;

use super::StorageError;

/// Replaces `path` with `bytes`; `mode` sets the permission bits of the new file (Unix).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StorageError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let err = |source| StorageError::Write {
        path: path.to_path_buf(),
        source,
    };
    fs::create_dir_all(parent).map_err(err)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .tempfile_in(parent)
        .map_err(err)?;
    temp.write_all(bytes).map_err(err)?;
    temp.as_file().sync_all().map_err(err)?;
    temp.persist(path).map_err(|e| err(e.error))?;
    sync_dir(parent)
}

/// Makes a rename or a new entry in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StorageError::Write {
            path: dir.to_path_buf(),
            source,
        })
}

/// Flushes every pending write of the filesystem holding `path`: one call instead of an fsync
/// per file when a batch writes thousands of small files.
pub fn sync_filesystem(path: &Path) -> Result<(), StorageError> {
    let dir = fs::File::open(path).map_err(|source| StorageError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    rustix::fs::syncfs(&dir).map_err(|e| StorageError::Write {
        path: path.to_path_buf(),
        source: e.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_content_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/file");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temp files left behind.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }
}
