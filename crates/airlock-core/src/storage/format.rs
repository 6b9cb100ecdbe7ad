//! The data folder's format version: `format-version`, one number, written atomically.
//!
//! A data folder without the file predates it and is version 1. A newer airlock upgrades an
//! older folder in place, under the site lock, one step at a time, writing the new number
//! after each step; an older airlock refuses a newer folder rather than misread it.

use std::path::Path;

use super::{StorageError, write_atomic};

/// The format this airlock writes, and the newest it reads.
pub const CURRENT: u32 = 1;
pub const FILE: &str = "format-version";
/// The most read of it: one number and a newline.
const LIMIT: u64 = 64;

/// The folder's version: the file's number, 1 when there is no file (folders made before it).
pub fn read(data_dir: &Path) -> Result<u32, StorageError> {
    let path = data_dir.join(FILE);
    match super::read_limited_text(&path, LIMIT, "a format-version file") {
        Ok(text) => text.trim().parse().map_err(|_| StorageError::Corrupt {
            path,
            reason: format!("{:?} is not a format version (a number)", text.trim()),
        }),
        Err(StorageError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(1)
        }
        Err(e) => Err(e),
    }
}

/// Refuses a folder newer than this airlock (a missing folder is fine: it is made later).
pub fn check(data_dir: &Path) -> Result<(), StorageError> {
    if !data_dir.is_dir() {
        return Ok(());
    }
    match read(data_dir)? {
        found if found > CURRENT => Err(newer(data_dir, found)),
        _ => Ok(()),
    }
}

fn newer(data_dir: &Path, found: u32) -> StorageError {
    StorageError::NewerDataFormat {
        path: data_dir.join(FILE),
        found,
    }
}

/// Brings the folder to [`CURRENT`] (the caller holds the site lock): each step, then its
/// number. Version 1 needs no step: its file is only written.
pub fn upgrade(data_dir: &Path) -> Result<(), StorageError> {
    let mut version = read(data_dir)?;
    if version > CURRENT {
        return Err(newer(data_dir, version));
    }
    if version == CURRENT && data_dir.join(FILE).exists() {
        return Ok(());
    }
    // Steps from version n to n + 1 go here, in order, each safe to run again.
    while version < CURRENT {
        version += 1;
    }
    write(data_dir)?;
    Ok(())
}

/// Writes [`CURRENT`] (init, and after an upgrade).
pub fn write(data_dir: &Path) -> Result<(), StorageError> {
    write_atomic(
        &data_dir.join(FILE),
        format!("{CURRENT}\n").as_bytes(),
        0o644,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_without_a_version_are_1_and_upgraded_newer_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), 1);
        check(dir.path()).unwrap();
        upgrade(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FILE)).unwrap(),
            format!("{CURRENT}\n")
        );
        std::fs::write(dir.path().join(FILE), "7\n").unwrap();
        let e = check(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("format 7") && e.contains(&format!("up to format {CURRENT}")),
            "{e}"
        );
        assert!(upgrade(dir.path()).is_err());
        std::fs::write(dir.path().join(FILE), "seven").unwrap();
        assert!(check(dir.path()).unwrap_err().to_string().contains("seven"));
        std::fs::write(dir.path().join(FILE), vec![b'1'; 65]).unwrap();
        let e = check(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(FILE) && e.contains("larger than 64 bytes"),
            "{e}"
        );
    }
}
