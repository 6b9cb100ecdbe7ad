//! HTTP downloads from upstreams: bounded, retried with backoff, resumed with `Range`, and
//! verified (size and SHA-256) while the bytes stream in, before anything can use them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::StatusCode;
pub use reqwest::Url;

/// Why a text is not a URL, or a path does not join one (the `url` crate's `ParseError`).
pub type UrlError = <Url as std::str::FromStr>::Err;
use reqwest::header::{CONTENT_RANGE, RANGE};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::hint::{Chain, Hint};
use crate::report::{Reporter, TaskId};
use crate::storage::Sha256;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot fetch {url}{}", if *.timeout { ": no answer within the timeout" } else { "" })]
    Transport {
        url: String,
        timeout: bool,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: StatusCode },
    #[error("{url}: larger than the {limit} bytes expected")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: truncated, {got} of {expected} bytes{}", cut_short(.source))]
    Truncated {
        url: String,
        got: u64,
        expected: u64,
        /// What broke the body off; `None` when it just ended early.
        #[source]
        source: Option<reqwest::Error>,
    },
    #[error("{url}: {algorithm} is {actual}, the signed index says {expected}")]
    Mismatch {
        url: String,
        algorithm: &'static str,
        expected: String,
        actual: String,
        /// Part of the file came from an earlier attempt: one more try from zero is fair.
        resumed: bool,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::storage::StorageError),
    #[error("cannot set up HTTPS: {0}")]
    Setup(String),
    #[error("a download task failed")]
    Task(#[source] tokio::task::JoinError),
    #[error("cannot set up HTTPS: {what}")]
    Client {
        what: &'static str,
        #[source]
        source: reqwest::Error,
    },
}

/// Why a body stopped, when its cause does not say it in words an operator knows.
fn cut_short(source: &Option<reqwest::Error>) -> &'static str {
    match source {
        None => " (the body ended early)",
        Some(e) if e.is_timeout() => " (no answer within the timeout)",
        Some(_) => "",
    }
}

impl Hint for NetError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            NetError::Transport { .. } => Some(
                "is the upstream reachable from here? ([sync] timeout and retries set the patience)",
            ),
            NetError::Mismatch { .. } => Some(
                "the upstream served other bytes than its signed index lists: a proxy or mirror in between may be stale; sync again later",
            ),
            NetError::Write { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
                Some(
                    "the disk is full: `airlock gc` frees what nothing refers to any more, or give the data folder more room",
                )
            }
            NetError::Store(e) => e.hint(),
            NetError::Status { .. }
            | NetError::TooLarge { .. }
            | NetError::Truncated { .. }
            | NetError::Write { .. }
            | NetError::Setup(_)
            | NetError::Task(_)
            | NetError::Client { .. } => None,
        }
    }
}

impl NetError {
    /// Worth another try: the network or the server may do better next time.
    fn is_transient(&self) -> bool {
        match self {
            NetError::Transport { .. } | NetError::Truncated { .. } => true,
            NetError::Mismatch { resumed, .. } => *resumed,
            NetError::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Downloads at once.
    pub jobs: usize,
    /// Longest silence from a server before the attempt fails.
    pub timeout: Duration,
    /// Attempts after the first for a transient failure.
    pub retries: u32,
    /// PEM certificates trusted besides the system's (an upstream with a private CA).
    pub extra_roots: Vec<Vec<u8>>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            jobs: 8,
            timeout: Duration::from_secs(30),
            retries: 4,
            extra_roots: Vec::new(),
        }
    }
}

/// What a signed index says a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub size: u64,
    pub sha256: Sha256,
}

/// The digest a download must have: SHA-256 (apt, simplestreams) or SHA3-384 (snaps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    Sha256(Sha256),
    Sha3_384([u8; 48]),
}

impl Checksum {
    fn hasher(&self) -> Hasher {
        match self {
            Checksum::Sha256(_) => Hasher::Sha256(sha2::Sha256::new()),
            Checksum::Sha3_384(_) => Hasher::Sha3_384(sha3::Sha3_384::new()),
        }
    }

    /// Compares with what `hasher` computed; on a mismatch, the algorithm and both in hex.
    fn check(&self, hasher: Hasher) -> Result<(), (&'static str, String, String)> {
        let (algorithm, expected, actual) = match (self, hasher) {
            (Checksum::Sha256(want), Hasher::Sha256(h)) => {
                ("SHA-256", want.as_bytes().to_vec(), h.finalize().to_vec())
            }
            (Checksum::Sha3_384(want), Hasher::Sha3_384(h)) => {
                ("SHA3-384", want.to_vec(), h.finalize().to_vec())
            }
            _ => unreachable!("the hasher comes from the checksum"),
        };
        if expected == actual {
            Ok(())
        } else {
            Err((algorithm, hex::encode(expected), hex::encode(actual)))
        }
    }
}

#[allow(clippy::large_enum_variant)] // one per download, on the stack of its task
enum Hasher {
    Sha256(sha2::Sha256),
    Sha3_384(sha3::Sha3_384),
}

impl Hasher {
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha3_384(h) => h.update(bytes),
        }
    }
}

/// An HTTP client shared by the downloads of one sync.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    options: HttpOptions,
    slots: Arc<Semaphore>,
}

impl Http {
    pub fn new(options: HttpOptions) -> Result<Http, NetError> {
        // ring, not aws-lc: no C toolchain quirks and a faster build; installed once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let roots = options
            .extra_roots
            .iter()
            .map(|pem| reqwest::Certificate::from_pem(pem))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| NetError::Client {
                what: "unreadable CA certificate",
                source,
            })?;
        let builder = || {
            reqwest::Client::builder()
                .user_agent(concat!("airlock/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(options.timeout)
                .read_timeout(options.timeout)
        };
        let client = match builder().tls_certs_merge(roots.clone()).build() {
            Ok(client) => client,
            // The system's CAs cannot be loaded (no ca-certificates, as on a minimal install of
            // an air-gapped machine): plain HTTP and the configured CAs work all the same, and
            // an HTTPS server that needs a system CA fails at its connection, naming it.
            Err(source) => {
                tracing::debug!("{}: trusting only the configured CAs", Chain(&source));
                builder()
                    .tls_certs_only(roots)
                    .build()
                    .map_err(|_| NetError::Client {
                        what: "cannot build the client",
                        source,
                    })?
            }
        };
        Ok(Http {
            client,
            slots: Arc::new(Semaphore::new(options.jobs.max(1))),
            options,
        })
    }

    async fn retrying<T, F, Fut>(&self, url: &Url, mut attempt: F) -> Result<T, NetError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, NetError>>,
    {
        let mut delay = Duration::from_millis(250);
        let mut tries = 0;
        loop {
            let _slot = self
                .slots
                .acquire()
                .await
                .expect("semaphore is never closed");
            match attempt().await {
                Err(e) if e.is_transient() && tries < self.options.retries => {
                    tries += 1;
                    tracing::warn!("{}; retrying ({tries}/{})", Chain(&e), self.options.retries);
                    drop(_slot);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                result => {
                    if let Err(e) = &result {
                        tracing::debug!("{url}: giving up: {e}");
                    }
                    return result;
                }
            }
        }
    }

    /// Fetches a small document whole, refusing more than `limit` bytes; `None` for 404/410.
    pub async fn get_small(&self, url: &Url, limit: u64) -> Result<Option<Bytes>, NetError> {
        self.request_small(url, &[], None, limit).await
    }

    /// The time a server says it is (its `Date` header on a HEAD request).
    pub async fn server_date(&self, url: &Url) -> Result<Option<jiff::Timestamp>, NetError> {
        let response = self
            .client
            .head(url.clone())
            .send()
            .await
            .map_err(|e| transport(url, e))?;
        Ok(response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| jiff::Timestamp::try_from(t).ok()))
    }

    /// A GET (or, with a body, a JSON POST) with extra headers, answered by a small document;
    /// `None` for 404/410. Retried like every request.
    pub async fn request_small(
        &self,
        url: &Url,
        headers: &[(&str, &str)],
        json_body: Option<&[u8]>,
        limit: u64,
    ) -> Result<Option<Bytes>, NetError> {
        self.retrying(url, || async {
            let mut request = match json_body {
                Some(body) => self
                    .client
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_vec()),
                None => self.client.get(url.clone()),
            };
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response = request.send().await.map_err(|e| transport(url, e))?;
            match response.status() {
                StatusCode::NOT_FOUND | StatusCode::GONE => return Ok(None),
                s if !s.is_success() => {
                    return Err(NetError::Status {
                        url: url.to_string(),
                        status: s,
                    });
                }
                _ => {}
            }
            let mut body = Vec::new();
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| transport(url, e))?;
                if body.len() as u64 + chunk.len() as u64 > limit {
                    return Err(NetError::TooLarge {
                        url: url.to_string(),
                        limit,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Some(Bytes::from(body)))
        })
        .await
    }

    async fn send(&self, url: &Url, from: Option<u64>) -> Result<reqwest::Response, NetError> {
        let mut request = self.client.get(url.clone());
        if let Some(from) = from.filter(|f| *f > 0) {
            request = request.header(RANGE, format!("bytes={from}-"));
        }
        request.send().await.map_err(|e| transport(url, e))
    }

    /// Fetches `url` and checks its size and digest as the bytes stream by, keeping nothing:
    /// what `airlock verify` needs, at the speed of hashing rather than of a disk.
    pub async fn check_served(
        &self,
        url: &Url,
        size: u64,
        checksum: Checksum,
    ) -> Result<(), NetError> {
        self.retrying(url, || async {
            let mut hasher = checksum.hasher();
            self.read_body(url, size, |chunk| hasher.update(chunk))
                .await?;
            checksum.check(hasher).map_err(|m| mismatch(url, m, false))
        })
        .await
    }

    /// GETs `url` and hands its body to `sink` chunk by chunk; the body must be exactly `size`
    /// bytes (more is refused as it arrives, less is a truncation).
    async fn read_body(
        &self,
        url: &Url,
        size: u64,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<(), NetError> {
        let response = self.send(url, None).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(NetError::Status {
                url: url.to_string(),
                status,
            });
        }
        let mut got = 0u64;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| NetError::Truncated {
                url: url.to_string(),
                got,
                expected: size,
                source: Some(e.without_url()),
            })?;
            got += chunk.len() as u64;
            if got > size {
                return Err(NetError::TooLarge {
                    url: url.to_string(),
                    limit: size,
                });
            }
            sink(&chunk);
        }
        if got < size {
            return Err(NetError::Truncated {
                url: url.to_string(),
                got,
                expected: size,
                source: None,
            });
        }
        Ok(())
    }

    /// Downloads `url` into `partial` (a file named by the expected digest), continuing what
    /// an earlier attempt or run left there, and returns once the file has exactly the expected
    /// size and digest. A file that turns out wrong is deleted.
    pub async fn download(
        &self,
        url: &Url,
        expected: Expected,
        partial: &Path,
        progress: Option<(&dyn Reporter, TaskId)>,
    ) -> Result<(), NetError> {
        let Want { size, checksum } = expected.into();
        self.download_checked(url, size, checksum, partial, progress)
            .await
    }

    /// [`Http::download`] for any checksum.
    pub async fn download_checked(
        &self,
        url: &Url,
        size: u64,
        checksum: Checksum,
        partial: &Path,
        progress: Option<(&dyn Reporter, TaskId)>,
    ) -> Result<(), NetError> {
        let expected = Want { size, checksum };
        self.retrying(url, || self.download_once(url, expected, partial, progress))
            .await
    }

    async fn download_once(
        &self,
        url: &Url,
        expected: Want,
        partial: &Path,
        progress: Option<(&dyn Reporter, TaskId)>,
    ) -> Result<(), NetError> {
        let write_err = |source| NetError::Write {
            path: partial.to_path_buf(),
            source,
        };
        // Small files are fetched again whole: what an interrupted attempt left is overwritten
        // (looking for it cost each of them a lookup in a folder of thousands).
        if expected.size <= SMALL_DOWNLOAD {
            return self
                .download_small(url, expected, partial, Destination::Partial, progress)
                .await;
        }
        // What an interrupted attempt left: hash it again, then ask for the rest.
        let mut hasher = expected.checksum.hasher();
        let mut have = 0u64;
        if let Ok(mut file) = tokio::fs::File::open(partial).await {
            let mut buffer = vec![0u8; 256 * 1024];
            loop {
                let n = file.read(&mut buffer).await.map_err(write_err)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buffer[..n]);
                have += n as u64;
            }
        }
        if have > expected.size {
            let _ = tokio::fs::remove_file(partial).await;
            (hasher, have) = (expected.checksum.hasher(), 0);
        }
        let resumed = have > 0;
        if have < expected.size {
            let response = self.send(url, Some(have)).await?;
            let status = response.status();
            let ranged = status == StatusCode::PARTIAL_CONTENT
                && response
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with(&format!("bytes {have}-")));
            if !status.is_success() {
                return Err(NetError::Status {
                    url: url.to_string(),
                    status,
                });
            }
            if !ranged && have > 0 {
                // The server ignored the range: start again from the first byte.
                (hasher, have) = (expected.checksum.hasher(), 0);
            }
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(ranged)
                .truncate(!ranged)
                .open(partial)
                .await
                .map_err(write_err)?;
            if let Some((reporter, task)) = progress {
                reporter.advance(task, have);
            }
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        file.flush().await.map_err(write_err)?;
                        return Err(NetError::Truncated {
                            url: url.to_string(),
                            got: have,
                            expected: expected.size,
                            source: Some(e.without_url()),
                        });
                    }
                };
                if have + chunk.len() as u64 > expected.size {
                    drop(file);
                    let _ = tokio::fs::remove_file(partial).await;
                    return Err(NetError::TooLarge {
                        url: url.to_string(),
                        limit: expected.size,
                    });
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await.map_err(write_err)?;
                have += chunk.len() as u64;
                if let Some((reporter, task)) = progress {
                    reporter.advance(task, chunk.len() as u64);
                }
            }
            file.flush().await.map_err(write_err)?;
            if have < expected.size {
                return Err(NetError::Truncated {
                    url: url.to_string(),
                    got: have,
                    expected: expected.size,
                    source: None,
                });
            }
        }
        if let Err(m) = expected.checksum.check(hasher) {
            let _ = tokio::fs::remove_file(partial).await;
            return Err(mismatch(url, m, resumed));
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Want {
    size: u64,
    checksum: Checksum,
}

impl From<Expected> for Want {
    fn from(Expected { size, sha256 }: Expected) -> Want {
        Want {
            size,
            checksum: Checksum::Sha256(sha256),
        }
    }
}

/// Files up to this size are fetched into memory and written once verified: a tenth of the
/// system calls of streaming to disk, and most pool files are this small.
pub(crate) const SMALL_DOWNLOAD: u64 = 1 << 20;

/// Where a small download goes once verified.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Destination {
    /// A partial file: what an interrupted attempt left there is replaced.
    Partial,
    /// The blob's store name (journaled: [`crate::storage::Staging::write_in_place`]):
    /// created, never replaced (a file there already has these bytes).
    Store,
}

impl Http {
    async fn download_small(
        &self,
        url: &Url,
        expected: Want,
        path: &Path,
        destination: Destination,
        progress: Option<(&dyn Reporter, TaskId)>,
    ) -> Result<(), NetError> {
        let mut body = Vec::with_capacity(expected.size as usize);
        self.read_body(url, expected.size, |chunk| {
            body.extend_from_slice(chunk);
            if let Some((reporter, task)) = progress {
                reporter.advance(task, chunk.len() as u64);
            }
        })
        .await?;
        let mut hasher = expected.checksum.hasher();
        hasher.update(&body);
        expected
            .checksum
            .check(hasher)
            .map_err(|m| mismatch(url, m, false))?;
        // A small write to the page cache: cheaper inline than a trip to the blocking pool.
        let written = match destination {
            // A read-only leftover (a crash while it was being adopted) is replaced.
            Destination::Partial => match std::fs::write(path, &body) {
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    let _ = std::fs::remove_file(path);
                    std::fs::write(path, &body)
                }
                written => written,
            },
            Destination::Store => write_new(path, &body),
        };
        written.map_err(|source| NetError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Downloads a small file (up to [`SMALL_DOWNLOAD`]) straight to its store name, checked
    /// before it is written; the caller journaled it.
    async fn download_in_place(
        &self,
        url: &Url,
        expected: Expected,
        blob: &Path,
        progress: Option<(&dyn Reporter, TaskId)>,
    ) -> Result<(), NetError> {
        let want = Want::from(expected);
        self.retrying(url, || {
            self.download_small(url, want, blob, Destination::Store, progress)
        })
        .await
    }
}

/// Creates `path` holding `bytes`, read-only; a file already there is left as it is (it has
/// these bytes). A failed write leaves nothing. (The name exists while the bytes are written:
/// the journal that lists it makes the pull-through, which serves store names directly, hash
/// such a file before serving it.)
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        opened => opened?,
    };
    file.write_all(bytes).inspect_err(|_| {
        let _ = std::fs::remove_file(path);
    })
}

/// A digest that differs from the signed index's: the algorithm and both in hex.
fn mismatch(
    url: &Url,
    (algorithm, expected, actual): (&'static str, String, String),
    resumed: bool,
) -> NetError {
    NetError::Mismatch {
        url: url.to_string(),
        algorithm,
        expected,
        actual,
        resumed,
    }
}

fn transport(url: &Url, e: reqwest::Error) -> NetError {
    // The URL is ours to say once; reqwest's chain says what failed.
    NetError::Transport {
        url: url.to_string(),
        timeout: e.is_timeout(),
        source: e.without_url(),
    }
}

/// What [`Http::fill_store`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filled {
    pub downloaded_files: usize,
    pub downloaded_bytes: u64,
    /// Wanted files the store already held.
    pub reused_files: usize,
}

impl Http {
    /// Downloads, in parallel, every wanted blob the store lacks (each once, whatever the
    /// number of paths naming it), verified, into `staging`. After a failure the other
    /// downloads still finish, so that the next run reuses them; the first error is returned.
    pub async fn fill_store(
        &self,
        store: &crate::storage::ContentStore,
        wanted: impl IntoIterator<Item = (Sha256, u64, Url)>,
        staging: &Arc<crate::storage::Staging>,
        reporter: Arc<dyn Reporter>,
        label: &str,
    ) -> Result<Filled, NetError> {
        let mut filled = Filled::default();
        let mut missing: std::collections::BTreeMap<Sha256, (u64, Url)> = Default::default();
        let held = store.contains_each();
        for (sha256, size, url) in wanted {
            if held(&sha256) {
                filled.reused_files += 1;
            } else {
                missing.entry(sha256).or_insert((size, url));
            }
        }
        let total = missing.values().map(|(size, _)| size).sum();
        let task = reporter.start(label, Some(total), crate::report::Unit::Bytes);
        // Small files go straight to their store names (no temp file, no rename): journaled
        // first. Larger ones grow in partial files that a later run resumes.
        let in_place: Vec<Sha256> = missing
            .iter()
            .filter(|(_, (size, _))| *size <= SMALL_DOWNLOAD)
            .map(|(sha256, _)| *sha256)
            .collect();
        staging.write_in_place(&in_place)?;
        if let Some((sha256, _)) = missing.iter().find(|(_, (size, _))| *size > SMALL_DOWNLOAD) {
            // Every partial file lives in one folder: made once, not once per file.
            let partial = store.partial_path(sha256);
            let dir = partial.parent().expect("partial files live in a folder");
            fs_err::create_dir_all(dir).map_err(|source| NetError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut downloads = tokio::task::JoinSet::new();
        for (sha256, (size, url)) in missing {
            let (http, store, staging, reporter) = (
                self.clone(),
                store.clone(),
                staging.clone(),
                reporter.clone(),
            );
            downloads.spawn(async move {
                let expected = Expected { size, sha256 };
                let progress = Some((&*reporter as &dyn Reporter, task));
                let path = if size <= SMALL_DOWNLOAD {
                    let blob = store.blob_path(&sha256);
                    http.download_in_place(&url, expected, &blob, progress)
                        .await?;
                    blob
                } else {
                    let partial = store.partial_path(&sha256);
                    http.download(&url, expected, &partial, progress).await?;
                    partial
                };
                staging.adopt(path, sha256);
                Ok::<u64, NetError>(size)
            });
        }
        let mut first_error = None;
        while let Some(result) = downloads.join_next().await {
            match result {
                Ok(Ok(size)) => {
                    filled.downloaded_files += 1;
                    filled.downloaded_bytes += size;
                }
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(NetError::Task(e));
                }
            }
        }
        reporter.finish(task);
        first_error.map_or(Ok(filled), Err)
    }
}
