//! The static file responder for published trees: GET and HEAD, single byte ranges,
//! If-None-Match / If-Modified-Since / If-Range, streaming with a bounded buffer.
//!
//! Published files never change in place (a publish links a new tree and switches to it), so
//! an ETag of inode, mtime and size identifies content exactly.

use std::collections::HashMap;
use std::fs::Metadata;
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

/// A file's identity and the response headers derived from it, formatted once per file
/// rather than once per request.
#[derive(Clone)]
struct Validators {
    identity: Identity,
    /// The mtime to the nanosecond, and the end of its second: what Last-Modified says.
    changed: SystemTime,
    modified: SystemTime,
    etag: HeaderValue,
    last_modified: HeaderValue,
    length: HeaderValue,
}

impl Validators {
    fn new(identity: Identity) -> Validators {
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
            identity,
            changed,
            modified,
            etag: header_value(&format!("\"{ino:x}-{mtime:x}.{mtime_nsec:x}-{len:x}\"")),
            last_modified: header_value(&httpdate::fmt_http_date(modified)),
            length: HeaderValue::from(len),
        }
    }
}

enum Source {
    Memory(Bytes),
    File(std::fs::File),
}

pub struct FileReply {
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
    entries: RwLock<HashMap<PathBuf, (Validators, &'static str, Bytes)>>,
    bytes: AtomicUsize,
}

/// Bound of the small-file cache; when full it starts again empty.
const CACHE_BYTES: usize = 64 << 20;

impl SmallFiles {
    fn lookup(&self, path: &Path) -> Option<FileReply> {
        let (validators, content_type, content) =
            self.entries.read().expect("cache").get(path).cloned()?;
        let meta = std::fs::metadata(path).ok()?;
        (Identity::of(&meta) == validators.identity).then_some(FileReply {
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
        if let Some((_, _, old)) = entries.insert(
            path,
            (
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
    Ok(Found::File(Box::new(FileReply {
        validators: Validators::new(Identity::of(&meta)),
        content_type: content_type(path),
        source,
    })))
}

impl FileReply {
    /// Builds the response for a GET or HEAD with these request headers.
    pub async fn respond(self, method: &Method, headers: &HeaderMap) -> Response {
        let validators = self.validators.clone();
        let etag = validators.etag.to_str().unwrap_or_default();
        let modified = validators.modified;
        let size = validators.identity.len;
        // A file changed during the current second gets no Last-Modified until the second
        // is over (a date must not be in the future). apt, which sends If-Modified-Since and
        // no If-None-Match, then asks with the response's Date, of the file's own second,
        // and gets the file again rather than a 304 for one replaced within that second.
        let dated = SystemTime::now() >= modified;

        if not_modified(headers, etag, validators.changed) {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            set_validators(response.headers_mut(), &validators, dated);
            return response;
        }
        let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
            Some(spec) if if_range_holds(headers, etag, modified) => parse_range(spec, size),
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

        let content_type = self.content_type;
        let body = if method == Method::HEAD || length == 0 {
            Body::empty()
        } else {
            match self.source.body(start, length).await {
                Ok(body) => body,
                Err(e) => {
                    return (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("read error: {e}\n"),
                    )
                        .into_response();
                }
            }
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        let length_value = if length == size {
            validators.length.clone()
        } else {
            HeaderValue::from(length)
        };
        h.insert(header::CONTENT_LENGTH, length_value);
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        set_validators(h, &validators, dated);
        if status == StatusCode::PARTIAL_CONTENT {
            h.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {start}-{}/{size}", start + length - 1)),
            );
        }
        response
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

fn set_validators(h: &mut HeaderMap, validators: &Validators, dated: bool) {
    h.insert(header::ETAG, validators.etag.clone());
    if dated {
        h.insert(header::LAST_MODIFIED, validators.last_modified.clone());
    }
}

/// RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since, which holds only for a file
/// changed (to the nanosecond) before the time the client gives.
fn not_modified(headers: &HeaderMap, etag: &str, changed: SystemTime) -> bool {
    if let Some(matches) = none_match(headers, etag) {
        return matches;
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .is_some_and(|since| changed < since)
}

/// Whether If-None-Match names `etag` (weakly, or `*`); `None` without the header.
pub(crate) fn none_match(headers: &HeaderMap, etag: &str) -> Option<bool> {
    let tags = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())?;
    Some(
        tags.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag),
    )
}

/// A Range applies only if If-Range (when present) still names this file.
fn if_range_holds(headers: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    let Some(value) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if value.starts_with('"') {
        return value == etag;
    }
    httpdate::parse_http_date(value).is_ok_and(|date| date == modified)
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    Whole,
    Part { start: u64, end: u64 },
    Unsatisfiable,
}

/// One `bytes=` range; several ranges or a malformed header are answered with the whole file,
/// which RFC 9110 allows.
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

pub(crate) fn parse_range(spec: &str, size: u64) -> RangeRequest {
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
