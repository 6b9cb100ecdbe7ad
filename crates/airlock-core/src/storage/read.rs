//! Reading a whole file that came from outside (a key, a keyring, a config, a bundle
//! manifest, a certificate): regular files only, and never more than a limit named for what
//! the file is, so `signing_key = "/dev/zero"` or a 1 GB manifest fails at once, by name,
//! instead of filling the memory.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

use super::StorageError;

/// What a file that is not a regular one is, for an error message; `None` for a regular one.
fn file_kind(meta: &Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_file() {
        None
    } else if kind.is_char_device() || kind.is_block_device() {
        Some("a device")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_dir() {
        Some("a folder")
    } else {
        Some("not a regular file")
    }
}

/// Opens `path` without blocking (a FIFO would wait for a writer) and insists on a regular
/// file; returns it with its metadata.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), StorageError> {
    use std::os::unix::fs::OpenOptionsExt;
    let read_err = |source| StorageError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    match file_kind(&meta) {
        None => Ok((file, meta)),
        Some(kind) => Err(StorageError::NotRegular {
            path: path.to_path_buf(),
            kind,
        }),
    }
}

/// The bytes of the regular file at `path`, which must be at most `limit` bytes long; `what`
/// says in the error what kind of file has that limit ("a signing key").
pub fn read_limited(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, StorageError> {
    let (file, meta) = open_regular(path)?;
    let too_large = || StorageError::TooLarge {
        path: path.to_path_buf(),
        limit,
        what,
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte more than allowed tells a file that grew since it was measured.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| StorageError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// [`read_limited`], as UTF-8 text.
pub fn read_limited_text(
    path: &Path,
    limit: u64,
    what: &'static str,
) -> Result<String, StorageError> {
    String::from_utf8(read_limited(path, limit, what)?).map_err(|_| StorageError::Corrupt {
        path: path.to_path_buf(),
        reason: "not UTF-8 text".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_kinds_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, vec![b'k'; 100]).unwrap();
        assert_eq!(read_limited(&path, 100, "a key").unwrap().len(), 100);
        let error = read_limited(&path, 99, "a key").unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{} is larger than 99 bytes, the most airlock reads for a key",
                path.display()
            )
        );
        let error = read_limited(Path::new("/dev/zero"), 1 << 20, "a key").unwrap_err();
        assert_eq!(
            error.to_string(),
            "/dev/zero is a device, not a regular file"
        );
        let error = read_limited(dir.path(), 1 << 20, "a key").unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("is a folder, not a regular file")
        );
    }
}
