//! HTTP downloads from upstreams: bounded, retried with backoff, resumed with `Range`, and
//! verified (size and SHA-256) while the bytes stream in, before anything can use them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::{StatusCode, Url};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::report::{Reporter, TaskId};
use crate::storage::Sha256;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: StatusCode },
    #[error("{url}: larger than the {limit} bytes expected")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: truncated, {got} of {expected} bytes ({reason})")]
    Truncated {
        url: String,
        got: u64,
        expected: u64,
        reason: String,
    },
    #[error("{url}: SHA-256 is {}, the signed index says {}", expected.1, expected.0)]
    Mismatch {
        url: String,
        expected: Box<(Sha256, Sha256)>,
        /// Part of the file came from an earlier attempt: one more try from zero is fair.
        resumed: bool,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up HTTPS: {0}")]
    Setup(String),
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
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            jobs: 8,
            timeout: Duration::from_secs(30),
            retries: 4,
        }
    }
}

/// What a signed index says a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub size: u64,
    pub sha256: Sha256,
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
        let client = reqwest::Client::builder()
            .user_agent(concat!("airlock/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.timeout)
            .read_timeout(options.timeout)
            .build()
            .map_err(|e| NetError::Setup(e.to_string()))?;
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
                    tracing::warn!("{e}; retrying ({tries}/{})", self.options.retries);
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
        self.retrying(url, || async {
            let response = self.send(url, None).await?;
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
        self.retrying(url, || self.download_once(url, expected, partial, progress))
            .await
    }

    async fn download_once(
        &self,
        url: &Url,
        expected: Expected,
        partial: &Path,
        progress: Option<(&dyn Reporter, TaskId)>,
    ) -> Result<(), NetError> {
        let write_err = |source| NetError::Write {
            path: partial.to_path_buf(),
            source,
        };
        if expected.size <= SMALL_DOWNLOAD && !partial.exists() {
            return self.download_small(url, expected, partial, progress).await;
        }
        // What an interrupted attempt left: hash it again, then ask for the rest.
        let mut hasher = sha2::Sha256::new();
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
            (hasher, have) = (sha2::Sha256::new(), 0);
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
                (hasher, have) = (sha2::Sha256::new(), 0);
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
                        let reason = match transport(url, e) {
                            NetError::Transport { reason, .. } => reason,
                            other => other.to_string(),
                        };
                        return Err(NetError::Truncated {
                            url: url.to_string(),
                            got: have,
                            expected: expected.size,
                            reason,
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
                    reason: "the body ended early".into(),
                });
            }
        }
        let actual = Sha256::from_bytes(hasher.finalize().into());
        if actual != expected.sha256 {
            let _ = tokio::fs::remove_file(partial).await;
            return Err(NetError::Mismatch {
                url: url.to_string(),
                expected: Box::new((expected.sha256, actual)),
                resumed,
            });
        }
        Ok(())
    }
}

/// Files up to this size are fetched into memory and written once verified: a tenth of the
/// system calls of streaming to disk, and most pool files are this small.
const SMALL_DOWNLOAD: u64 = 1 << 20;

impl Http {
    async fn download_small(
        &self,
        url: &Url,
        expected: Expected,
        partial: &Path,
        progress: Option<(&dyn Reporter, TaskId)>,
    ) -> Result<(), NetError> {
        let response = self.send(url, None).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(NetError::Status {
                url: url.to_string(),
                status,
            });
        }
        let mut body = Vec::with_capacity(expected.size as usize);
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| NetError::Truncated {
                url: url.to_string(),
                got: body.len() as u64,
                expected: expected.size,
                reason: match transport(url, e) {
                    NetError::Transport { reason, .. } => reason,
                    other => other.to_string(),
                },
            })?;
            if (body.len() + chunk.len()) as u64 > expected.size {
                return Err(NetError::TooLarge {
                    url: url.to_string(),
                    limit: expected.size,
                });
            }
            body.extend_from_slice(&chunk);
            if let Some((reporter, task)) = progress {
                reporter.advance(task, chunk.len() as u64);
            }
        }
        if (body.len() as u64) < expected.size {
            return Err(NetError::Truncated {
                url: url.to_string(),
                got: body.len() as u64,
                expected: expected.size,
                reason: "the body ended early".into(),
            });
        }
        let actual = Sha256::of(&body);
        if actual != expected.sha256 {
            return Err(NetError::Mismatch {
                url: url.to_string(),
                expected: Box::new((expected.sha256, actual)),
                resumed: false,
            });
        }
        // A small write to the page cache: cheaper inline than a trip to the blocking pool.
        std::fs::write(partial, &body).map_err(|source| NetError::Write {
            path: partial.to_path_buf(),
            source,
        })
    }
}

fn transport(url: &Url, e: reqwest::Error) -> NetError {
    // reqwest's Display hides the cause ("error sending request"); the chain says what failed.
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    if e.is_timeout() {
        reason = format!("no answer within the timeout ({reason})");
    }
    NetError::Transport {
        url: url.to_string(),
        reason,
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
        for (sha256, size, url) in wanted {
            if store.contains(&sha256) {
                filled.reused_files += 1;
            } else {
                missing.entry(sha256).or_insert((size, url));
            }
        }
        let total = missing.values().map(|(size, _)| size).sum();
        let task = reporter.start(label, Some(total), crate::report::Unit::Bytes);
        if let Some(sha256) = missing.keys().next() {
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
                let partial = store.partial_path(&sha256);
                http.download(
                    &url,
                    Expected { size, sha256 },
                    &partial,
                    Some((&*reporter, task)),
                )
                .await?;
                staging.adopt(partial, sha256);
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
                    first_error
                        .get_or_insert(NetError::Setup(format!("a download task failed: {e}")));
                }
            }
        }
        reporter.finish(task);
        first_error.map_or(Ok(filled), Err)
    }
}
