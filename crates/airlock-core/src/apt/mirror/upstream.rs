//! Talking to an upstream archive: its signed Release files and its Packages indices, each
//! checked before anything else reads it.

use std::io::{BufReader, Read};
use std::path::PathBuf;

use bytes::Bytes;
use reqwest::Url;

use super::MirrorError;
use crate::apt::index::{IndexRecord, decompressed, read_packages_sized};
use crate::apt::release::{ListedFile, ReleaseFile};
use crate::config::AptMirrorConfig;
use crate::hint::Chain;
use crate::net::{Expected, Http};
use crate::openpgp::{Keyring, cleartext_body};
use crate::storage::{ContentStore, Sha256, StorageError};
use sha2::Digest;

/// A Release file far in the future means a wrong clock (ours or theirs), or a forgery.
const FUTURE_TOLERANCE: i64 = 3600;
/// Release files are small; Ubuntu's largest are under 1 MB.
const RELEASE_LIMIT: u64 = 64 << 20;

/// One suite as the upstream publishes it now, signature checked.
#[derive(Debug, Clone)]
pub struct UpstreamSuite {
    pub suite: String,
    pub release: ReleaseFile,
    /// The signed documents as fetched: InRelease, or Release and Release.gpg.
    pub inrelease: Option<Bytes>,
    pub release_file: Option<Bytes>,
    pub release_gpg: Option<Bytes>,
    /// Identifies this state of the suite: the digest of what was signed.
    pub digest: Sha256,
    /// Full fingerprint of the key that signed, if a keyring was used.
    pub signer: Option<String>,
}

pub fn url(base: &Url, path: &str) -> Url {
    base.join(path)
        .expect("relative paths of checked names join")
}

/// Fetches and checks `dists/SUITE/InRelease` (or Release + Release.gpg).
pub async fn fetch_release(
    http: &Http,
    base: &Url,
    config: &AptMirrorConfig,
    keyring: Option<&Keyring>,
    suite: &str,
    now: jiff::Timestamp,
    synced_before: Option<i64>,
) -> Result<UpstreamSuite, MirrorError> {
    let inrelease_url = url(base, &format!("dists/{suite}/InRelease"));
    let (text, signer, inrelease, release_file, release_gpg, where_) = match http
        .get_small(&inrelease_url, RELEASE_LIMIT)
        .await?
    {
        Some(document) => {
            let what = inrelease_url.to_string();
            let as_text = std::str::from_utf8(&document)
                .map_err(|_| MirrorError::upstream(&inrelease_url, "not UTF-8 text"))?;
            let (text, signer) = match keyring {
                Some(k) => {
                    let verified = k.verify_cleartext(as_text, &what)?;
                    (verified.text, Some(verified.signer))
                }
                None => (cleartext_body(as_text, &what)?, None),
            };
            (text, signer, Some(document), None, None, inrelease_url)
        }
        None => {
            let release_url = url(base, &format!("dists/{suite}/Release"));
            let Some(release) = http.get_small(&release_url, RELEASE_LIMIT).await? else {
                return Err(MirrorError::upstream(
                    &release_url,
                    &format!(
                        "neither InRelease nor Release exists: is {suite} a suite of this archive?"
                    ),
                ));
            };
            let gpg_url = url(base, &format!("dists/{suite}/Release.gpg"));
            let gpg = http.get_small(&gpg_url, RELEASE_LIMIT).await?;
            let signer = match (keyring, &gpg) {
                (Some(k), Some(signature)) => Some(
                    k.verify_detached(&release, signature, release_url.as_str())?
                        .signer,
                ),
                (Some(_), None) => {
                    return Err(MirrorError::upstream(
                        &gpg_url,
                        "no InRelease and no Release.gpg: the suite is not signed",
                    ));
                }
                (None, _) => None,
            };
            let text = String::from_utf8(release.to_vec())
                .map_err(|_| MirrorError::upstream(&release_url, "not UTF-8 text"))?;
            (text, signer, None, Some(release), gpg, release_url)
        }
    };
    let release =
        ReleaseFile::parse(&text).map_err(|reason| MirrorError::upstream(&where_, &reason))?;
    check_dates(&release, &where_, now, synced_before)?;
    // A verbatim mirror also serves Release and Release.gpg, for clients that ask for them:
    // only when they hold exactly what the InRelease says, under a valid signature.
    let (release_file, release_gpg) = match (&inrelease, config.mode) {
        (Some(_), crate::config::MirrorMode::Verbatim) => {
            let release_url = url(base, &format!("dists/{suite}/Release"));
            let gpg_url = url(base, &format!("dists/{suite}/Release.gpg"));
            match (
                http.get_small(&release_url, RELEASE_LIMIT).await?,
                http.get_small(&gpg_url, RELEASE_LIMIT).await?,
            ) {
                (Some(r), Some(g)) if r.as_ref() == text.as_bytes() || normalised(&r) == text => {
                    let good = keyring
                        .is_none_or(|k| k.verify_detached(&r, &g, release_url.as_str()).is_ok());
                    if good {
                        (Some(r), Some(g))
                    } else {
                        (None, None)
                    }
                }
                _ => (None, None),
            }
        }
        _ => (release_file, release_gpg),
    };
    check_offers(&release, &where_, config)?;
    Ok(UpstreamSuite {
        suite: suite.to_string(),
        release,
        inrelease,
        release_file,
        release_gpg,
        digest: Sha256::of(text.as_bytes()),
        signer,
    })
}

/// The text as a cleartext signature covers it: without the final newline.
fn normalised(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches('\n')
        .replace("\r\n", "\n")
}

fn check_dates(
    release: &ReleaseFile,
    url: &Url,
    now: jiff::Timestamp,
    synced_before: Option<i64>,
) -> Result<(), MirrorError> {
    if let Some(until) = release.valid_until
        && until < now
    {
        return Err(MirrorError::upstream(
            url,
            &format!(
                "expired on {until} (Valid-Until): the upstream is stale, or replays an old state"
            ),
        ));
    }
    if let Some(date) = release.date {
        if date.as_second() > now.as_second() + FUTURE_TOLERANCE {
            return Err(MirrorError::upstream(
                url,
                &format!("dated {date}, in the future: check this machine's clock"),
            ));
        }
        if let Some(before) = synced_before
            && date.as_second() < before
        {
            let before =
                jiff::Timestamp::from_second(before).map_or(before.to_string(), |t| t.to_string());
            return Err(MirrorError::upstream(
                url,
                &format!(
                    "dated {date}, older than the {before} synced before: refusing to go back (a replay?)"
                ),
            ));
        }
    }
    Ok(())
}

fn check_offers(
    release: &ReleaseFile,
    url: &Url,
    config: &AptMirrorConfig,
) -> Result<(), MirrorError> {
    for component in config.components.iter() {
        if !release.components.is_empty()
            && !release.components.iter().any(|c| c == component.as_str())
        {
            return Err(MirrorError::upstream(
                url,
                &format!(
                    "has no component {component} (it has: {})",
                    release.components.join(", ")
                ),
            ));
        }
    }
    for arch in config.architectures.iter() {
        if !release.architectures.is_empty()
            && !release.architectures.iter().any(|a| a == arch.as_str())
        {
            return Err(MirrorError::upstream(
                url,
                &format!(
                    "has no architecture {arch} (it has: {})",
                    release.architectures.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Where a listed file of a suite is fetched from: its by-hash path when the upstream offers
/// one (never changes under a reader), else its name.
pub fn listed_url(
    base: &Url,
    suite: &UpstreamSuite,
    path: &str,
    listed: &ListedFile,
) -> (Url, Option<Url>) {
    let by_name = url(base, &format!("dists/{}/{path}", suite.suite));
    match (suite.release.acquire_by_hash, listed.sha256) {
        (true, Some(digest)) => {
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            let by_hash = url(
                base,
                &format!("dists/{}/{dir}/by-hash/SHA256/{digest}", suite.suite),
            );
            (by_hash, Some(by_name))
        }
        _ => (by_name, None),
    }
}

/// Downloads a file a Release lists into the store's partial folder, verified; returns where
/// it is. Tries by-hash first and the plain name if the upstream lacks the by-hash copy.
pub async fn fetch_listed(
    http: &Http,
    store: &ContentStore,
    base: &Url,
    suite: &UpstreamSuite,
    path: &str,
) -> Result<(PathBuf, Expected), MirrorError> {
    let listed = &suite.release.files[path];
    let sha256 = listed.sha256.ok_or_else(|| {
        MirrorError::upstream(
            &url(base, &format!("dists/{}/Release", suite.suite)),
            &format!("lists {path} without a SHA256"),
        )
    })?;
    let expected = Expected {
        size: listed.size,
        sha256,
    };
    let partial = store.partial_path(&sha256);
    create_parent(&partial)?;
    let (first, fallback) = listed_url(base, suite, path, listed);
    match http.download(&first, expected, &partial, None).await {
        Err(crate::net::NetError::Status { status, .. })
            if status == reqwest::StatusCode::NOT_FOUND && fallback.is_some() =>
        {
            http.download(
                fallback.as_ref().expect("checked"),
                expected,
                &partial,
                None,
            )
            .await?;
        }
        result => result?,
    }
    Ok((partial, expected))
}

pub fn create_parent(path: &std::path::Path) -> Result<(), MirrorError> {
    let dir = path.parent().expect("partial files live in a folder");
    fs_err::create_dir_all(dir).map_err(|source| crate::storage::StorageError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// The decompressed text of an index, in a temp file of the store, checked against what the
/// Release says of the uncompressed file (size, and digest when hashed) when it lists it.
pub struct PlainIndex {
    pub file: tempfile::NamedTempFile,
    /// Only when asked for: the compressed file was already checked against the signed
    /// Release, which fixes the text, so only a mirror that stores the text needs its digest
    /// (hashing Debian's 50 MB index costs 0.2 s of a core here).
    pub sha256: Option<Sha256>,
}

/// Decompresses a downloaded Packages index and reads its records in one pass.
pub fn read_index(
    compressed: &std::path::Path,
    name: &str,
    plain: Option<&ListedFile>,
    hash_plain: bool,
    store_tmp: &std::path::Path,
    url: &Url,
) -> Result<(PlainIndex, Vec<IndexRecord>), MirrorError> {
    let (index, records) = decompress(
        compressed,
        name,
        plain,
        hash_plain,
        store_tmp,
        url,
        |text| read_packages_sized(text, plain.map_or(0, |p| p.size)),
    )?;
    // Parse errors come after the checks: a bomb or a corrupt stream explains them better.
    let records = records.map_err(|e| MirrorError::bad_index(url, e))?;
    Ok((index, records))
}

/// Decompresses a downloaded file, refusing more bytes than the Release announces (a
/// decompression bomb), and checks what came out; `consume` reads the text as it flows. One
/// thread decompresses while this one hashes, keeps a copy and consumes.
pub fn decompress<R>(
    compressed: &std::path::Path,
    name: &str,
    plain: Option<&ListedFile>,
    hash_plain: bool,
    store_tmp: &std::path::Path,
    url: &Url,
    consume: impl FnOnce(&mut dyn Read) -> R,
) -> Result<(PlainIndex, R), MirrorError> {
    let read_err = |source| StorageError::Read {
        path: compressed.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(compressed).map_err(read_err)?;
    let compressed_size = file.metadata().map_err(read_err)?.len();
    // Without a listed size, allow a generous ratio: indices compress about 5 to 10 times.
    let limit = plain.map_or(compressed_size.saturating_mul(100).max(1 << 20), |p| p.size);
    let write_err = |source| StorageError::Write {
        path: store_tmp.to_path_buf(),
        source,
    };
    fs_err::create_dir_all(store_tmp).map_err(write_err)?;
    let temp = tempfile::Builder::new()
        .tempfile_in(store_tmp)
        .map_err(write_err)?;

    let (chunks, receiver) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(2);
    let compressed_name = name.to_string();
    let (tee, consumed) = std::thread::scope(|scope| {
        scope.spawn(move || {
            let reader = BufReader::with_capacity(256 * 1024, file);
            let mut bounded = decompressed(&compressed_name, reader).take(limit + 1);
            loop {
                let mut chunk = vec![0u8; 1 << 20];
                match read_fully(&mut bounded, &mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        chunk.truncate(n);
                        if chunks.send(Ok(chunk)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = chunks.send(Err(e));
                        break;
                    }
                }
            }
        });
        let mut tee = Tee {
            chunks: receiver,
            current: Vec::new(),
            position: 0,
            hasher: hash_plain.then(sha2::Sha256::new),
            size: 0,
            copy: temp.as_file(),
        };
        let consumed = consume(&mut tee);
        (tee.finish(), consumed)
    });
    let (size, sha256) = tee.map_err(|e| match e {
        TeeError::Decompress(e) => MirrorError::upstream_data(url, "does not decompress", e),
        TeeError::Write(source) => write_err(source).into(),
    })?;
    if size > limit {
        return Err(MirrorError::upstream(
            url,
            &format!(
                "decompresses to more than the {limit} bytes the Release announces (a decompression bomb?)"
            ),
        ));
    }
    if let Some(plain) = plain {
        if size != plain.size {
            return Err(MirrorError::upstream(
                url,
                &format!(
                    "decompresses to {size} bytes, the Release says {}",
                    plain.size
                ),
            ));
        }
        if let (Some(expected), Some(sha256)) = (plain.sha256, sha256)
            && expected != sha256
        {
            return Err(MirrorError::upstream(
                url,
                &format!("decompresses to SHA-256 {sha256}, the Release says {expected}"),
            ));
        }
    }
    Ok((PlainIndex { file: temp, sha256 }, consumed))
}

fn read_fully(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

enum TeeError {
    Decompress(std::io::Error),
    Write(std::io::Error),
}

/// Reads decompressed chunks from the channel, hashing them and keeping a copy on the way.
struct Tee<'f> {
    chunks: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    position: usize,
    hasher: Option<sha2::Sha256>,
    size: u64,
    copy: &'f std::fs::File,
}

impl Tee<'_> {
    /// Drains what the parser did not read (an error stops it early), then gives the totals.
    fn finish(mut self) -> Result<(u64, Option<Sha256>), TeeError> {
        let mut sink = [0u8; 64 * 1024];
        loop {
            match self.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    return Err(
                        match e
                            .get_ref()
                            .and_then(|inner| inner.downcast_ref::<WriteFailure>())
                        {
                            Some(_) => TeeError::Write(std::io::Error::new(
                                e.kind(),
                                Chain(&e).to_string(),
                            )),
                            None => TeeError::Decompress(e),
                        },
                    );
                }
            }
        }
        let sha256 = self.hasher.map(|h| Sha256::from_bytes(h.finalize().into()));
        Ok((self.size, sha256))
    }
}

#[derive(Debug)]
struct WriteFailure(std::io::Error);

impl std::fmt::Display for WriteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot keep the decompressed copy: {}", self.0)
    }
}

impl std::error::Error for WriteFailure {}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::Write;
        if self.position == self.current.len() {
            match self.chunks.recv() {
                Err(_) => return Ok(0),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(chunk)) => {
                    if let Some(hasher) = &mut self.hasher {
                        hasher.update(&chunk);
                    }
                    self.size += chunk.len() as u64;
                    self.copy
                        .write_all(&chunk)
                        .map_err(|e| std::io::Error::other(WriteFailure(e)))?;
                    self.current = chunk;
                    self.position = 0;
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.position);
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

/// Shared, read-only context of the tasks of one sync.
pub struct Context {
    pub http: Http,
    pub store: ContentStore,
    pub base: Url,
}
