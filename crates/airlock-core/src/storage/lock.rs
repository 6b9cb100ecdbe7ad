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
        let (file, err) = open(data_dir)?;
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

    /// Takes the lock if no other process holds it (`None` if one does): for a reader with
    /// something to mend that only a writer may, and no wish to wait for one.
    pub fn try_acquire(data_dir: &Path) -> Result<Option<SiteLock>, StorageError> {
        let (file, err) = open(data_dir)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(SiteLock {
                _file: Arc::new(file),
            })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(err(e)),
        }
    }
}

/// The lock file, and the error that names it.
fn open(data_dir: &Path) -> Result<(File, impl Fn(std::io::Error) -> StorageError), StorageError> {
    let path = data_dir.join("lock");
    let named = path.clone();
    let err = move |source| StorageError::Lock {
        path: named.clone(),
        source,
    };
    fs::create_dir_all(data_dir).map_err(&err)?;
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(&err)?
        .into_parts()
        .0;
    Ok((file, err))
}
