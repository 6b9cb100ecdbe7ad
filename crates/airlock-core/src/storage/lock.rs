//! The site lock: one writer at a time across processes; readers never wait.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use fs_err as fs;

use super::StorageError;

/// Held while a command changes the site; released when the last clone is dropped (also when
/// the process dies). A clone is the same lock, not a second one.
#[derive(Clone, Debug)]
pub struct SiteLock {
    _file: Arc<File>,
}

impl SiteLock {
    /// Takes the lock, calling `on_wait` once if another process holds it.
    pub fn acquire(data_dir: &Path, on_wait: impl FnOnce()) -> Result<SiteLock, StorageError> {
        let path = data_dir.join("lock");
        let err = |source| StorageError::Lock {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(data_dir).map_err(err)?;
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(err)?
            .into_parts()
            .0;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                on_wait();
                file.lock().map_err(err)?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(err(e)),
        }
        Ok(SiteLock {
            _file: Arc::new(file),
        })
    }
}
