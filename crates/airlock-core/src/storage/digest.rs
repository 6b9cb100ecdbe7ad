//! Digests: the SHA-256 that names every blob, and the full set apt indices list.

use std::fmt;
use std::io::{self, Read, Write};

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha512};

/// A SHA-256 digest: the identity of a blob in the content store.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    pub fn of(bytes: &[u8]) -> Self {
        Sha256(sha2::Sha256::digest(bytes).into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Sha256(bytes)
    }

    /// Parses 64 lowercase or uppercase hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Sha256(out))
    }

    /// Lowercase hex only: one spelling per digest, as store paths and bundle entries name them.
    pub fn parse_lowercase(text: &str) -> Result<Self, String> {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(format!("{text:?} is not a lowercase SHA-256 digest"));
        }
        Sha256::from_hex(text).ok_or_else(|| format!("{text:?} is not a SHA-256 digest"))
    }

    /// The digest of a file's content, read in 256 KiB chunks.
    pub fn of_file(path: &std::path::Path) -> io::Result<Sha256> {
        let mut hasher = sha2::Sha256::new();
        let mut file = std::fs::File::open(path)?;
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            match file.read(&mut buffer)? {
                0 => break,
                n => hasher.update(&buffer[..n]),
            }
        }
        Ok(Sha256::from_bytes(hasher.finalize().into()))
    }

    pub fn to_hex(&self) -> String {
        // Into a buffer: `hex::encode` goes char by char, and every store path spells a digest.
        let mut out = [0u8; 64];
        hex::encode_to_slice(self.0, &mut out).expect("64 digits for 32 bytes");
        String::from_utf8(out.to_vec()).expect("hex digits are ASCII")
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl serde::Serialize for Sha256 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Sha256 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Sha256::parse_lowercase(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", self.to_hex())
    }
}

/// Size and every digest an apt index may list for a file.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Hashes {
    pub size: u64,
    pub md5: [u8; 16],
    pub sha1: [u8; 20],
    pub sha256: Sha256,
    pub sha512: [u8; 64],
}

impl Hashes {
    pub fn of(bytes: &[u8]) -> Self {
        let mut hasher = MultiHasher::default();
        hasher.update(bytes);
        hasher.finish()
    }
}

/// Computes all digests in one pass, so a file is read once however many digests it needs.
#[derive(Default, Clone)]
pub struct MultiHasher {
    size: u64,
    md5: Md5,
    sha1: Sha1,
    sha256: sha2::Sha256,
    sha512: Sha512,
}

impl MultiHasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        self.md5.update(bytes);
        self.sha1.update(bytes);
        self.sha256.update(bytes);
        self.sha512.update(bytes);
    }

    pub fn finish(self) -> Hashes {
        Hashes {
            size: self.size,
            md5: self.md5.finalize().into(),
            sha1: self.sha1.finalize().into(),
            sha256: Sha256(self.sha256.finalize().into()),
            sha512: self.sha512.finalize().into(),
        }
    }
}

thread_local! {
    /// One copy buffer per thread, reused: a fresh 256 KiB buffer per file fragments the heap
    /// (90 MB resident after 2,000 small files with glibc's per-thread arenas).
    static COPY_BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 256 * 1024]);
}

/// Which side of a copy failed.
#[derive(Debug)]
pub enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copies `reader` into `writer`, hashing every byte on the way; returns the digests.
pub fn copy_hashing(reader: &mut impl Read, writer: &mut impl Write) -> Result<Hashes, CopyError> {
    COPY_BUFFER.with_borrow_mut(|buffer| {
        let mut hasher = MultiHasher::default();
        copy_through(reader, writer, buffer, u64::MAX, |chunk| {
            hasher.update(chunk)
        })?;
        Ok(hasher.finish())
    })
}

/// Copies up to `limit` bytes from `reader` to `writer` through `buffer`, hashing them;
/// returns the digest and how many bytes there were.
pub fn copy_sha256(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    buffer: &mut [u8],
    limit: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<(Sha256, u64), CopyError> {
    let mut hasher = sha2::Sha256::new();
    let copied = copy_through(reader, writer, buffer, limit, |chunk| {
        hasher.update(chunk);
        progress(chunk.len() as u64);
    })?;
    Ok((Sha256::from_bytes(hasher.finalize().into()), copied))
}

/// The copy loop: every chunk is shown to `each` before it is written.
fn copy_through(
    reader: &mut (impl Read + ?Sized),
    writer: &mut (impl Write + ?Sized),
    buffer: &mut [u8],
    limit: u64,
    mut each: impl FnMut(&[u8]),
) -> Result<u64, CopyError> {
    let mut copied = 0u64;
    while copied < limit {
        let want = buffer
            .len()
            .min(usize::try_from(limit - copied).unwrap_or(usize::MAX));
        let n = match reader.read(&mut buffer[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        each(&buffer[..n]);
        writer.write_all(&buffer[..n]).map_err(CopyError::Write)?;
        copied += n as u64;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_of_empty_input() {
        let h = Hashes::of(b"");
        assert_eq!(h.size, 0);
        assert_eq!(hex::encode(h.md5), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            hex::encode(h.sha1),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            h.sha256.to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(hex::encode(h.sha512).starts_with("cf83e1357eefb8bdf1542850d66d8007"));
    }

    #[test]
    fn hex_round_trip_and_rejects_bad_input() {
        let d = Sha256::of(b"abc");
        assert_eq!(Sha256::from_hex(&d.to_hex()), Some(d));
        assert_eq!(Sha256::from_hex("zz"), None);
        assert_eq!(Sha256::from_hex(&"0".repeat(63)), None);
    }

    #[test]
    fn streaming_copy_matches_one_shot() {
        let data = vec![7u8; 700_000];
        let mut out = Vec::new();
        let h = copy_hashing(&mut &data[..], &mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(h, Hashes::of(&data));
    }
}
