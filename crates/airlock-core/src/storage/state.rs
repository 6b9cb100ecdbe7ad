//! JSON state files (the snap catalog, custom images, imported bundles): read whole, replaced
//! in one rename, so a reader sees the old file or the new one.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StorageError;
use super::atomic::write_atomic;

/// The state at `path`; a missing file is the empty state.
pub fn load_json<T: DeserializeOwned + Default>(path: &Path) -> Result<T, StorageError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StorageError::Json {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(source) => Err(StorageError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Replaces the state at `path` (creating its folder).
pub fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StorageError> {
    let dir = path.parent().expect("a state file is in a folder");
    std::fs::create_dir_all(dir).map_err(|source| StorageError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut bytes = serde_json::to_vec_pretty(value).expect("state serialises");
    bytes.push(b'\n');
    write_atomic(path, &bytes, 0o644)
}
