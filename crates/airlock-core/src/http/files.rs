//! The static file responder for published trees: GET and HEAD, single byte ranges,
//! If-None-Match / If-Modified-Since / If-Range, streaming with a bounded buffer. The same
//! answer ([`Validators::respond`]) serves a frontend's blobs, with their digest as ETag.
//!
//! Published files never change in place (a publish links a new tree and switches to it), so
//! an ETag of inode, mtime and size identifies content exactly.

use std::collections::HashMap;
use std::fs::Metadata;
use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;

/// Files up to this size are read in one go; larger ones are streamed.
const SMALL_FILE: u64 = 128 * 1024;
const STREAM_CHUNK: usize = 1024 * 1024;

/// Splits a raw (percent-encoded) URL path into decoded segments, refusing anything that could
/// name a file outside the tree: `..`, `.`, hidden names, encoded slashes, NUL, backslashes.
pub fn safe_segments(raw_path: &str) -> Option<Vec<String>> {
    let mut segments = Vec::new();
    for raw in raw_path.split('/') {
        if raw.is_empty() {
            continue;
        }
        let decoded = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()?;
        if decoded.starts_with('.') || decoded.contains(['/', '\\', '\0']) {
            return None;
        }
        segments.push(decoded.into_owned());
    }
    Some(segments)
}

/// What `open` found at a path.
pub enum Found {
    File(Box<FileReply>),
    Directory,
    Missing,
}

/// What identifies one version of a file: published files never change in place, so a new
/// content always comes with a new inode.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    ino: u64,
    mtime: i64,
    /// A rewrite within the same second must still change the identity.
    mtime_nsec: i64,
    len: u64,
}

impl Identity {
    pub(crate) fn of(meta: &Metadata) -> Identity {
        Identity {
            ino: meta.ino(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            len: meta.len(),
        }
    }
}

/// What a response says of one version of what it serves, and what conditional requests are
/// checked against: formatted once per file rather than once per request. A file has dates
/// (Last-Modified, If-Modified-Since, If-Range by date); a frontend's blob, named by its
/// digest, has its ETag only.
#[derive(Clone)]
pub(crate) struct Validators {
    size: u64,
    etag: HeaderValue,
    /// Content-Length of the whole.
    length: HeaderValue,
    dates: Option<Dates>,
}

#[derive(Clone)]
struct Dates {
    /// The mtime to the nanosecond, and the end of its second: what Last-Modified says.
    changed: SystemTime,
    modified: SystemTime,
    last_modified: HeaderValue,
}

impl Validators {
    /// Validators of something named by `etag` (quoted) alone.
    pub(crate) fn tagged(etag: &str, size: u64) -> Validators {
        Validators {
            size,
            etag: header_value(etag),
            length: HeaderValue::from(size),
            dates: None,
        }
    }

    fn of_file(identity: Identity) -> Validators {
        let Identity {
            ino,
            mtime,
            mtime_nsec,
            len,
        } = identity;
        let changed = UNIX_EPOCH + Duration::new(mtime.max(0) as u64, mtime_nsec.max(0) as u32);
        // Dates count whole seconds: rounding the mtime up, a client that got this date
        // asks If-Modified-Since a time after it, and any later replacement, even within the
        // same second, is after that time.
        let modified = UNIX_EPOCH + Duration::from_secs(mtime.max(0) as u64 + 1);
        Validators {
            dates: Some(Dates {
                changed,
                modified,
                last_modified: header_value(&httpdate::fmt_http_date(modified)),
            }),
            ..Validators::tagged(
                &format!("\"{ino:x}-{mtime:x}.{mtime_nsec:x}-{len:x}\""),
                len,
            )
        }
    }

    /// The response to a GET (or HEAD, `head`) with these request headers: 304, 416, or the
    /// whole or one range with its headers; `body` makes the body of the bytes
    /// `start..start + length` (not called for HEAD or nothing), or the response saying why not.
    pub(crate) async fn respond<F, B>(
        &self,
        content_type: &'static str,
        head: bool,
        headers: &HeaderMap,
        body: B,
    ) -> Response
    where
        B: FnOnce(u64, u64) -> F,
        F: Future<Output = Result<Body, Response>>,
    {
        let etag = self.etag.to_str().unwrap_or_default();
        let size = self.size;
        // A file changed during the current second gets no Last-Modified until the second
        // is over (a date must not be in the future). apt, which sends If-Modified-Since and
        // no If-None-Match, then asks with the response's Date, of the file's own second,
        // and gets the file again rather than a 304 for one replaced within that second.
        let dated = self
            .dates
            .as_ref()
            .is_some_and(|d| SystemTime::now() >= d.modified);

        if self.not_modified(headers, etag) {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            self.set(response.headers_mut(), dated);
            return response;
        }
        let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
            Some(spec) if self.if_range_holds(headers, etag) => parse_range(spec, size),
            _ => RangeRequest::Whole,
        };
        let (status, start, length) = match range {
            RangeRequest::Whole => (StatusCode::OK, 0, size),
            RangeRequest::Part { start, end } => {
                (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
            }
            RangeRequest::Unsatisfiable => {
                let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                response.headers_mut().insert(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes */{size}")),
                );
                return response;
            }
        };

        let body = if head || length == 0 {
            Body::empty()
        } else {
            match body(start, length).await {
                Ok(body) => body,
                Err(response) => return response,
            }
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        let length_value = if length == size {
            self.length.clone()
        } else {
            HeaderValue::from(length)
        };
        h.insert(header::CONTENT_LENGTH, length_value);
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        self.set(h, dated);
        if status == StatusCode::PARTIAL_CONTENT {
            h.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {start}-{}/{size}", start + length - 1)),
            );
        }
        response
    }

    fn set(&self, h: &mut HeaderMap, dated: bool) {
        h.insert(header::ETAG, self.etag.clone());
        if let Some(dates) = self.dates.as_ref().filter(|_| dated) {
            h.insert(header::LAST_MODIFIED, dates.last_modified.clone());
        }
    }

    /// RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since, which holds only for a
    /// file changed (to the nanosecond) before the time the client gives.
    fn not_modified(&self, headers: &HeaderMap, etag: &str) -> bool {
        if let Some(matches) = none_match(headers, etag) {
            return matches;
        }
        let Some(dates) = &self.dates else {
            return false;
        };
        headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| dates.changed < since)
    }

    /// A Range applies only if If-Range (when present) still names this version: its ETag,
    /// or the date it was last modified.
    fn if_range_holds(&self, headers: &HeaderMap, etag: &str) -> bool {
        let Some(value) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) else {
            return true;
        };
        if value.starts_with('"') {
            return value == etag;
        }
        self.dates.as_ref().is_some_and(|dates| {
            httpdate::parse_http_date(value).is_ok_and(|date| date == dates.modified)
        })
    }
}

enum Source {
    Memory(Bytes),
    File(std::fs::File),
}

pub struct FileReply {
    identity: Identity,
    validators: Validators,
    content_type: &'static str,
    source: Source,
}

/// Small files (InRelease, Release, indices of small repos, keys) kept in memory: a hit costs
/// one `stat` on the request's thread instead of a trip to the blocking pool for open, fstat,
/// read and close. The `stat` follows the tree's symlinks, so a publish is seen at once.
/// Read-locked by every hit: the loops never wait for each other there, not even for one the
/// kernel preempted in the middle of a lookup.
#[derive(Default)]
pub struct SmallFiles {
    entries: RwLock<HashMap<PathBuf, Cached>>,
    bytes: AtomicUsize,
}

/// A small file's identity when read, its validators, content type and bytes.
type Cached = (Identity, Validators, &'static str, Bytes);

/// Bound of the small-file cache; when full it starts again empty.
const CACHE_BYTES: usize = 64 << 20;

impl SmallFiles {
    fn lookup(&self, path: &Path) -> Option<FileReply> {
        let (identity, validators, content_type, content) =
            self.entries.read().expect("cache").get(path).cloned()?;
        let meta = std::fs::metadata(path).ok()?;
        (Identity::of(&meta) == identity).then_some(FileReply {
            identity,
            validators,
            content_type,
            source: Source::Memory(content),
        })
    }

    fn insert(&self, path: PathBuf, reply: &FileReply) {
        let Source::Memory(content) = &reply.source else {
            return;
        };
        let mut entries = self.entries.write().expect("cache");
        if self.bytes.load(Ordering::Relaxed) + content.len() > CACHE_BYTES {
            entries.clear();
            self.bytes.store(0, Ordering::Relaxed);
        }
        self.bytes.fetch_add(content.len(), Ordering::Relaxed);
        if let Some((_, _, _, old)) = entries.insert(
            path,
            (
                reply.identity,
                reply.validators.clone(),
                reply.content_type,
                content.clone(),
            ),
        ) {
            self.bytes.fetch_sub(old.len(), Ordering::Relaxed);
        }
    }
}

/// Opens `path`: from the small-file cache, or off the async threads (open, fstat and, for
/// small files, read in one blocking call).
pub async fn open(path: PathBuf, cache: &SmallFiles) -> std::io::Result<Found> {
    if let Some(reply) = cache.lookup(&path) {
        return Ok(Found::File(Box::new(reply)));
    }
    let found = tokio::task::spawn_blocking({
        let path = path.clone();
        move || read(&path)
    })
    .await
    .map_err(std::io::Error::other)??;
    if let Found::File(reply) = &found {
        cache.insert(path, reply);
    }
    Ok(found)
}

fn read(path: &Path) -> std::io::Result<Found> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Found::Missing);
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Ok(Found::Directory);
    }
    if !meta.is_file() {
        return Ok(Found::Missing);
    }
    let source = if meta.len() <= SMALL_FILE {
        let mut buf = Vec::with_capacity(meta.len() as usize);
        (&file).read_to_end(&mut buf)?;
        Source::Memory(Bytes::from(buf))
    } else {
        Source::File(file)
    };
    let identity = Identity::of(&meta);
    Ok(Found::File(Box::new(FileReply {
        identity,
        validators: Validators::of_file(identity),
        content_type: content_type(path),
        source,
    })))
}

impl FileReply {
    /// Builds the response for a GET or HEAD with these request headers.
    pub async fn respond(self, method: &Method, headers: &HeaderMap) -> Response {
        let source = self.source;
        self.validators
            .respond(
                self.content_type,
                method == Method::HEAD,
                headers,
                |start, length| async move {
                    source.body(start, length).await.map_err(|e| {
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("read error: {e}\n"),
                        )
                            .into_response()
                    })
                },
            )
            .await
    }
}

impl Source {
    async fn body(self, start: u64, length: u64) -> std::io::Result<Body> {
        match self {
            Source::Memory(content) => Ok(Body::from(
                content.slice(start as usize..(start + length) as usize),
            )),
            Source::File(file) => {
                let map = map_file(&file)?;
                let part = Bytes::from_owner(map).slice(start as usize..(start + length) as usize);
                let chunks = (0..part.len())
                    .step_by(STREAM_CHUNK)
                    .map(move |offset| part.slice(offset..(offset + STREAM_CHUNK).min(part.len())));
                // Page faults on a file not in the page cache wait for the disk: take them on
                // the blocking pool, so that the event loop never stalls on a cold image.
                let stream = futures_util::stream::iter(chunks).then(|chunk| async move {
                    tokio::task::spawn_blocking(move || {
                        let touched = chunk.iter().step_by(4096).fold(0u8, |a, b| a ^ b);
                        std::hint::black_box(touched);
                        chunk
                    })
                    .await
                    .map_err(std::io::Error::other)
                });
                Ok(Body::from_stream(stream))
            }
        }
    }
}

/// Maps a published file: the socket then copies straight from the page cache, one copy
/// instead of three through read buffers.
#[allow(unsafe_code)]
fn map_file(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: published files are hard links to content-store blobs, which airlock writes
    // once (mode 0444, moved into place by rename) and never modifies or truncates; removing
    // a file leaves existing mappings valid.
    unsafe { memmap2::Mmap::map(file) }
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("ASCII header value")
}

/// Whether If-None-Match names `etag` (weakly, or `*`); `None` without the header.
fn none_match(headers: &HeaderMap, etag: &str) -> Option<bool> {
    let tags = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())?;
    Some(
        tags.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag),
    )
}

#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    Whole,
    Part { start: u64, end: u64 },
    Unsatisfiable,
}

/// 405 for a method other than GET and HEAD on served files, with the `Allow` they take.
pub(crate) fn only_get_and_head() -> Response {
    let mut response = (
        StatusCode::METHOD_NOT_ALLOWED,
        "only GET and HEAD are served here\n",
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// One `bytes=` range; several ranges or a malformed header are answered with the whole file,
/// which RFC 9110 allows.
fn parse_range(spec: &str, size: u64) -> RangeRequest {
    let Some(ranges) = spec.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    if ranges.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = ranges.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let (start, end) = match (first.parse::<u64>(), last.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => (start, end.min(size.saturating_sub(1))),
        (Ok(_), Ok(_)) => return RangeRequest::Whole,
        (Ok(start), Err(_)) if last.is_empty() => (start, size.saturating_sub(1)),
        (Err(_), Ok(suffix)) if first.is_empty() => {
            if suffix == 0 {
                return RangeRequest::Unsatisfiable;
            }
            (size.saturating_sub(suffix), size.saturating_sub(1))
        }
        _ => return RangeRequest::Whole,
    };
    if start >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part { start, end }
}

/// Content types apt, MAAS and browsers expect.
pub(crate) fn content_type(path: &Path) -> &'static str {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    match name {
        "InRelease" | "Release" | "Packages" | "Sources" => return "text/plain; charset=utf-8",
        "Release.gpg" => return "application/pgp-signature",
        _ => {}
    }
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("deb" | "udeb") => "application/vnd.debian.binary-package",
        Some("gz") => "application/gzip",
        Some("xz") => "application/x-xz",
        Some("zst") => "application/zstd",
        Some("gpg") => "application/pgp-keys",
        Some("asc") => "application/pgp-keys",
        Some("json") => "application/json",
        Some("html") => "text/html; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-9", 100), Part { start: 0, end: 9 });
        assert_eq!(parse_range("bytes=90-", 100), Part { start: 90, end: 99 });
        assert_eq!(parse_range("bytes=-10", 100), Part { start: 90, end: 99 });
        assert_eq!(parse_range("bytes=-1000", 100), Part { start: 0, end: 99 });
        assert_eq!(
            parse_range("bytes=50-5000", 100),
            Part { start: 50, end: 99 }
        );
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), Whole);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Whole);
        assert_eq!(parse_range("items=0-1", 100), Whole);
        assert_eq!(parse_range("bytes=x-y", 100), Whole);
    }

    #[test]
    fn segments_never_escape() {
        assert_eq!(
            safe_segments("/apt/local/dists/").unwrap(),
            vec!["apt", "local", "dists"]
        );
        assert_eq!(safe_segments("/a%20b").unwrap(), vec!["a b"]);
        for bad in [
            "/apt/../etc",
            "/apt/%2e%2e/etc",
            "/apt/.hidden",
            "/a%2Fb",
            "/a%00",
            "/a%5cb",
            "/%ff",
        ] {
            assert_eq!(safe_segments(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn ranges_stay_inside_the_file(spec in "(bytes|items)=[0-9 ,-]{0,12}", size in 0u64..1_000_000) {
            if let RangeRequest::Part { start, end } = parse_range(&spec, size) {
                proptest::prop_assert!(start <= end && end < size);
            }
        }

        #[test]
        fn no_segment_climbs_out(path in "(/|%2[eEfF]|%00|%5[cC]|\\.|[a-z]|\\.\\.|~){0,24}") {
            if let Some(segments) = safe_segments(&path) {
                for segment in segments {
                    proptest::prop_assert!(!segment.is_empty() && !segment.starts_with('.'));
                    proptest::prop_assert!(!segment.contains(['/', '\\', '\0']));
                }
            }
        }
    }
}
