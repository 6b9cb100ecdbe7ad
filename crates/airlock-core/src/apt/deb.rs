//! Binary packages (`.deb`, deb(5)): read the control stanza out of one, and build one (for
//! the demo and the tests).
//!
//! A .deb is an ar archive: `debian-binary` ("2.0"), `control.tar[.gz|.xz|.zst]`, then
//! `data.tar[...]`. Only the control member is unpacked, with limits, because the file comes
//! from an operator's folder or an upstream and may be hostile.

use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::hint::Hint;
use fs_err as fs;

const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
/// dpkg refuses control members beyond a few MiB; anything bigger is an attack or a mistake.
const MAX_CONTROL_TAR: u64 = 64 << 20;
const MAX_CONTROL_FILE: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a Debian package: {reason}")]
    NotDeb { path: PathBuf, reason: String },
    #[error("{path} is not a Debian package: its {member} is unreadable")]
    Member {
        path: PathBuf,
        member: String,
        #[source]
        source: io::Error,
    },
    #[error("{path} is truncated: {reason}")]
    Truncated { path: PathBuf, reason: String },
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

impl DebError {
    /// The same error told of `file`: what the operator named, not the copy that was read.
    pub fn at(mut self, file: &Path) -> DebError {
        match &mut self {
            DebError::Read { path, .. }
            | DebError::NotDeb { path, .. }
            | DebError::Member { path, .. }
            | DebError::Truncated { path, .. } => *path = file.to_path_buf(),
            DebError::Storage(_) => {}
        }
        self
    }
}

impl Hint for DebError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            DebError::NotDeb { .. } | DebError::Member { .. } | DebError::Truncated { .. } => Some(
                "give the .deb files dpkg-deb built, whole (`dpkg-deb --info FILE` reads them)",
            ),
            DebError::Storage(e) => e.hint(),
            DebError::Read { .. } => None,
        }
    }
}

/// Opens a package given as input and checks, from its first bytes and its member headers
/// alone, that it is a whole ar archive: a device, a FIFO or a file of another kind is refused
/// before anything is copied. Returns the file, read from its start.
pub fn open_checked(path: &Path) -> Result<std::fs::File, DebError> {
    let read_err = |source| DebError::Read {
        path: path.to_path_buf(),
        source,
    };
    let not_deb = |reason: String| DebError::NotDeb {
        path: path.to_path_buf(),
        reason,
    };
    let (mut file, meta) = crate::storage::open_regular(path).map_err(|e| match e {
        crate::storage::StorageError::NotRegular { kind, .. } => {
            not_deb(format!("it is {kind}; give the .deb file itself"))
        }
        crate::storage::StorageError::Read { source, .. } => read_err(source),
        other => DebError::Storage(other),
    })?;
    let length = meta.len();
    let mut magic = [0u8; 8];
    if file.read_exact(&mut magic).is_err() || &magic != AR_MAGIC {
        return Err(not_deb("not an ar archive".into()));
    }
    // Every member header in turn: its size must be a number and the member must fit.
    let mut at = AR_MAGIC.len() as u64;
    while at < length {
        let mut header = [0u8; 60];
        file.seek(io::SeekFrom::Start(at)).map_err(read_err)?;
        file.read_exact(&mut header)
            .map_err(|e| truncated_or(path, e, "bad ar member header"))?;
        let size = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|s| s.trim_end().parse::<u64>().ok())
            .filter(|_| &header[58..60] == b"`\n")
            .ok_or_else(|| not_deb(format!("bad ar member header at byte {at}")))?;
        at += 60 + size + size % 2;
    }
    if at > length + 1 {
        return Err(DebError::Truncated {
            path: path.to_path_buf(),
            reason: format!("the archive declares {at} bytes but the file has {length}"),
        });
    }
    file.seek(io::SeekFrom::Start(0)).map_err(read_err)?;
    Ok(file)
}

/// Returns the text of the `control` file inside the package at `path`.
pub fn read_control(path: &Path) -> Result<String, DebError> {
    let not_deb = |reason: String| DebError::NotDeb {
        path: path.to_path_buf(),
        reason,
    };
    let read_err = |source| DebError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::File::open(path).map_err(read_err)?;
    let length = file.metadata().map_err(read_err)?.len();
    let mut magic = [0u8; 8];
    if file.read_exact(&mut magic).is_err() || &magic != AR_MAGIC {
        return Err(not_deb("not an ar archive".into()));
    }
    file.seek(io::SeekFrom::Start(0)).map_err(read_err)?;
    // Buffered: the ar reader asks for 60-byte headers one at a time.
    let mut archive = ar::Archive::new(io::BufReader::with_capacity(16 * 1024, file));
    let mut end = AR_MAGIC.len() as u64;
    let mut members = Vec::new();
    let mut control = None;
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.map_err(|e| truncated_or(path, e, "bad ar member header"))?;
        let name = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .to_string();
        let size = entry.header().size();
        end += 60 + size + size % 2;
        match (members.len(), name.as_str()) {
            (0, "debian-binary") => {
                let mut version = String::new();
                entry
                    .by_ref()
                    .take(16)
                    .read_to_string(&mut version)
                    .map_err(|e| truncated_or(path, e, "unreadable debian-binary"))?;
                if !version.starts_with("2.") {
                    return Err(not_deb(format!(
                        "unsupported format version {:?}",
                        version.trim()
                    )));
                }
            }
            (0, other) => {
                return Err(not_deb(format!(
                    "first member is {other:?}, not debian-binary"
                )));
            }
            (1, _) if size > MAX_CONTROL_TAR => {
                return Err(not_deb(format!(
                    "its {name} member is {size} bytes, more than the {} MiB a control member may have",
                    MAX_CONTROL_TAR >> 20
                )));
            }
            (1, n) if n.starts_with("control.tar") => {
                control = Some(control_from_tar(path, &name, &mut entry)?);
            }
            (1, other) => {
                return Err(not_deb(format!(
                    "second member is {other:?}, not control.tar"
                )));
            }
            _ => {}
        }
        members.push(name);
    }
    if !members.iter().any(|m| m.starts_with("data.tar")) {
        if end > length {
            return Err(DebError::Truncated {
                path: path.to_path_buf(),
                reason: format!("the archive declares {end} bytes but the file has {length}"),
            });
        }
        return Err(not_deb("no data.tar member".into()));
    }
    // The last member may have been skipped rather than read: check its bytes are all there.
    if end > length + 1 {
        return Err(DebError::Truncated {
            path: path.to_path_buf(),
            reason: format!("the archive declares {end} bytes but the file has {length}"),
        });
    }
    control.ok_or_else(|| not_deb("no control.tar member".into()))
}

fn truncated_or(path: &Path, e: io::Error, what: &str) -> DebError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        DebError::Truncated {
            path: path.to_path_buf(),
            reason: format!("{what}: unexpected end of file"),
        }
    } else {
        DebError::Member {
            path: path.to_path_buf(),
            member: what.to_string(),
            source: e,
        }
    }
}

fn control_from_tar(path: &Path, member: &str, reader: &mut impl Read) -> Result<String, DebError> {
    let limited = reader.take(MAX_CONTROL_TAR);
    let decoder: Box<dyn Read + '_> = match member {
        "control.tar" => Box::new(limited),
        "control.tar.gz" => Box::new(flate2::read::GzDecoder::new(limited)),
        "control.tar.xz" => Box::new(liblzma::read::XzDecoder::new(limited)),
        "control.tar.zst" => Box::new(
            zstd::stream::read::Decoder::new(limited)
                .map_err(|e| truncated_or(path, e, "control.tar.zst"))?,
        ),
        other => {
            return Err(DebError::NotDeb {
                path: path.to_path_buf(),
                reason: format!("unsupported control member compression {other:?}"),
            });
        }
    };
    let mut tar = tar::Archive::new(decoder.take(MAX_CONTROL_TAR));
    let entries = tar.entries().map_err(|e| truncated_or(path, e, member))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| truncated_or(path, e, member))?;
        let name = entry.path_bytes();
        if name.as_ref() != b"./control" && name.as_ref() != b"control" {
            continue;
        }
        if entry.size() > MAX_CONTROL_FILE {
            return Err(DebError::NotDeb {
                path: path.to_path_buf(),
                reason: format!(
                    "control file of {} bytes is larger than allowed",
                    entry.size()
                ),
            });
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| truncated_or(path, e, member))?;
        return String::from_utf8(bytes).map_err(|_| DebError::NotDeb {
            path: path.to_path_buf(),
            reason: "control file is not UTF-8".into(),
        });
    }
    Err(DebError::NotDeb {
        path: path.to_path_buf(),
        reason: format!("{member} has no control file"),
    })
}

/// Compression of the tar members of a built package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Xz => ".xz",
            Compression::Zstd => ".zst",
        }
    }

    pub(crate) fn compress(self, data: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Compression::None => Ok(data.to_vec()),
            Compression::Gzip => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data)?;
                e.finish()
            }
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
                e.write_all(data)?;
                e.finish()
            }
            Compression::Zstd => zstd::stream::encode_all(data, 3),
        }
    }
}

/// Builds a minimal valid .deb in memory.
#[derive(Clone, Debug)]
pub struct DebBuilder {
    control: String,
    /// Path, content, mode.
    files: Vec<(String, Vec<u8>, u32)>,
    compression: Compression,
}

impl DebBuilder {
    /// `control` is the DEBIAN/control text, ending in a newline.
    pub fn new(control: impl Into<String>) -> Self {
        DebBuilder {
            control: control.into(),
            files: Vec::new(),
            compression: Compression::Gzip,
        }
    }

    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Adds a regular file to the data member; `path` is relative, like `usr/bin/hello`.
    pub fn file(mut self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.to_string(), content.into(), 0o644));
        self
    }

    /// Adds an executable file to the data member.
    pub fn executable(mut self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.to_string(), content.into(), 0o755));
        self
    }

    pub fn build(&self) -> io::Result<Vec<u8>> {
        let control_tar = tar_of(&[(
            "control".to_string(),
            self.control.as_bytes().to_vec(),
            0o644,
        )])?;
        let data_tar = tar_of(&self.files)?;
        let mut out = ar::Builder::new(Vec::new());
        let suffix = self.compression.suffix();
        let members = [
            ("debian-binary".to_string(), b"2.0\n".to_vec()),
            (
                format!("control.tar{suffix}"),
                self.compression.compress(&control_tar)?,
            ),
            (
                format!("data.tar{suffix}"),
                self.compression.compress(&data_tar)?,
            ),
        ];
        for (name, bytes) in members {
            let mut header = ar::Header::new(name.into_bytes(), bytes.len() as u64);
            header.set_mode(0o100644);
            out.append(&header, &bytes[..])?;
        }
        out.into_inner()
    }
}

/// A tar with `./`-prefixed names, as dpkg-deb writes, and an entry for every parent folder
/// (dpkg does not create folders a package does not list).
pub(crate) fn tar_of(files: &[(String, Vec<u8>, u32)]) -> io::Result<Vec<u8>> {
    let mut folders = std::collections::BTreeSet::new();
    for (path, _, _) in files {
        let mut parent = Path::new(path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            folders.insert(p.to_path_buf());
            parent = p.parent();
        }
    }
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    header.set_mtime(0);
    tar.append_data(&mut header, "./", io::empty())?;
    for folder in folders {
        tar.append_data(&mut header, format!("./{}/", folder.display()), io::empty())?;
    }
    for (path, content, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(0);
        tar.append_data(&mut header, format!("./{path}"), &content[..])?;
    }
    tar.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTROL: &str = "Package: hello\nVersion: 1.0\nArchitecture: amd64\nDescription: hi\n";

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn reads_control_of_every_compression() {
        let dir = tempfile::tempdir().unwrap();
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Xz,
            Compression::Zstd,
        ] {
            let deb = DebBuilder::new(CONTROL)
                .compression(c)
                .file("usr/share/doc/x", "x")
                .build()
                .unwrap();
            let path = write(dir.path(), "p.deb", &deb);
            assert_eq!(read_control(&path).unwrap(), CONTROL, "{c:?}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_deb() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "text.deb", b"hello world, not an archive");
        let err = read_control(&path).unwrap_err().to_string();
        assert!(
            err.contains("text.deb") && err.contains("not an ar archive"),
            "{err}"
        );
    }

    #[test]
    fn reports_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let deb = DebBuilder::new(CONTROL)
            .file("big", vec![1u8; 100_000])
            .compression(Compression::None)
            .build()
            .unwrap();
        for cut in [deb.len() - 10, deb.len() / 2, 100] {
            let path = write(dir.path(), "cut.deb", &deb[..cut]);
            let err = read_control(&path).unwrap_err();
            assert!(
                matches!(err, DebError::Truncated { .. }),
                "cut at {cut}: {err}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// A damaged package is refused with an error, never a panic or a hang.
        #[test]
        fn damaged_packages_never_panic(
            flips in proptest::collection::vec((0usize..4000, proptest::prelude::any::<u8>()), 0..8),
            cut in 0usize..4000,
            compression in proptest::sample::select(vec![Compression::None, Compression::Gzip, Compression::Xz, Compression::Zstd]),
        ) {
            let mut deb = DebBuilder::new(CONTROL).compression(compression).file("usr/share/doc/x", "x").build().unwrap();
            for (at, byte) in flips {
                if let Some(b) = deb.get_mut(at) {
                    *b ^= byte;
                }
            }
            deb.truncate(cut.max(8).min(deb.len()));
            let dir = tempfile::tempdir().unwrap();
            let _ = read_control(&write(dir.path(), "fuzz.deb", &deb));
        }
    }
}
