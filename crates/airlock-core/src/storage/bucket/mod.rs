//! An S3-compatible bucket (Ceph RGW, Garage, MinIO, AWS): the objects airlock keeps there,
//! under an optional prefix, through the `object_store` crate.
//!
//! Every read is bounded by the caller, every error names the endpoint, bucket and key, and
//! the credentials never reach `Debug`, errors or logs.

mod lease;

use std::fmt;
use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, RetryConfig, UpdateVersion, WriteMultipart,
};
use tokio::io::AsyncReadExt;

use crate::hint::Hint;

pub use lease::{Holder, Lease, LeaseError, LeaseSettings};

/// Objects larger than this go up in parts, several at once.
const MULTIPART_OVER: u64 = 64 << 20;
const PART_SIZE: usize = 16 << 20;
const PARTS_IN_FLIGHT: usize = 4;

/// A secret read from the environment or a file: shown as `***` everywhere.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where the bucket is and how to sign requests to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketSettings {
    /// `http://host:port` or `https://host:port` of the S3 API.
    pub endpoint: String,
    pub bucket: String,
    /// The region the server expects in signatures (Garage: its `s3_region`).
    pub region: String,
    /// Prepended to every key: empty, or ending in `/`.
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// PEM certificates trusted besides the system's, for an endpoint with a private CA.
    pub extra_roots: Vec<Vec<u8>>,
    /// Connect and read timeout of one request.
    pub timeout: Duration,
}

impl BucketSettings {
    /// How errors and logs name the bucket.
    pub fn label(&self) -> String {
        label(&self.endpoint, &self.bucket, &self.prefix)
    }
}

/// `s3://bucket/prefix at endpoint`: how errors and logs name a bucket.
pub fn label(endpoint: &str, bucket: &str, prefix: &str) -> String {
    format!("s3://{bucket}/{prefix} at {endpoint}")
}

/// What the bucket says about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key without the bucket's prefix.
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    /// The server's clock when the object was last written.
    pub modified: jiff::Timestamp,
}

/// What the server said of a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub etag: Option<String>,
}

/// The answer to a read that names the version the caller already has.
#[derive(Debug)]
pub enum Fetched {
    Missing,
    Unchanged,
    Changed { bytes: Bytes, info: ObjectInfo },
}

/// A bucket (and prefix) airlock reads and writes.
#[derive(Clone)]
pub struct Bucket {
    store: Arc<AmazonS3>,
    prefix: String,
    label: Arc<str>,
}

impl fmt::Debug for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Bucket").field(&self.label).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("cannot use the bucket {bucket}: {what}")]
    Settings {
        bucket: String,
        what: &'static str,
        #[source]
        source: Option<Box<object_store::Error>>,
    },
    #[error("{op} {key} in {bucket} failed")]
    Request {
        op: &'static str,
        bucket: String,
        key: String,
        // Boxed: object_store's error is large, and errors travel by value.
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("{key} in {bucket} is larger than {limit} bytes, the most airlock reads for it")]
    TooLarge {
        bucket: String,
        key: String,
        limit: u64,
    },
    #[error("cannot read {path} to upload it as {key}")]
    Local {
        path: std::path::PathBuf,
        key: String,
        #[source]
        source: std::io::Error,
    },
}

impl Hint for BucketError {
    fn hint(&self) -> Option<&'static str> {
        use object_store::Error as E;
        match self {
            BucketError::Settings { .. } => Some(
                "check [storage] in airlock.toml: endpoint (http:// or https:// with the port), bucket and region",
            ),
            BucketError::Request { source, .. } => match source.as_ref() {
                E::PermissionDenied { .. } | E::Unauthenticated { .. } => Some(
                    "the key is refused: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or access_key_file / secret_key_file), the region, and that the key may read and write the bucket",
                ),
                E::NotFound { .. } => Some(
                    "the bucket or object does not exist: create the bucket, or check [storage] bucket and prefix",
                ),
                E::Generic { .. } => Some(
                    "check that the object store answers at [storage] endpoint (and its clock: signatures are refused when it is far off)",
                ),
                _ => None,
            },
            BucketError::TooLarge { .. } => {
                Some("the object is not one airlock wrote: check [storage] prefix")
            }
            BucketError::Local { .. } => None,
        }
    }
}

impl Bucket {
    /// A client for the bucket; makes no request.
    pub fn open(settings: &BucketSettings) -> Result<Bucket, BucketError> {
        // ring, as for every other TLS client of airlock; installed once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let settings_err = |what, source| BucketError::Settings {
            bucket: settings.label(),
            what,
            source,
        };
        if !settings.prefix.is_empty() && !settings.prefix.ends_with('/') {
            return Err(settings_err("the prefix must end in /", None));
        }
        let mut options = ClientOptions::new()
            .with_allow_http(settings.endpoint.starts_with("http://"))
            .with_connect_timeout(settings.timeout)
            .with_timeout(settings.timeout.max(Duration::from_secs(300)))
            .with_user_agent(reqwest::header::HeaderValue::from_static(concat!(
                "airlock/",
                env!("CARGO_PKG_VERSION")
            )));
        for pem in &settings.extra_roots {
            let certificate = object_store::Certificate::from_pem(pem)
                .map_err(|e| settings_err("unreadable CA certificate", Some(Box::new(e))))?;
            options = options.with_root_certificate(certificate);
        }
        let store = AmazonS3Builder::new()
            .with_endpoint(&settings.endpoint)
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(settings.secret_access_key.expose())
            // Path-style requests (`endpoint/bucket/key`): what Garage, RGW and MinIO answer
            // without wildcard DNS.
            .with_virtual_hosted_style_request(false)
            // Sends If-Match / If-None-Match: servers that know them (AWS, RGW, MinIO) refuse a
            // write that lost a race; the lease covers those that ignore them (Garage).
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_client_options(options)
            .with_retry(RetryConfig {
                max_retries: 4,
                retry_timeout: Duration::from_secs(60),
                ..RetryConfig::default()
            })
            .build()
            .map_err(|e| settings_err("the settings are refused", Some(Box::new(e))))?;
        Ok(Bucket {
            store: Arc::new(store),
            prefix: settings.prefix.clone(),
            label: settings.label().into(),
        })
    }

    /// How errors name this bucket.
    pub fn label(&self) -> &str {
        &self.label
    }

    fn path(&self, key: &str) -> Path {
        Path::from(format!("{}{key}", self.prefix))
    }

    fn request_err(
        &self,
        op: &'static str,
        key: &str,
    ) -> impl FnOnce(object_store::Error) -> BucketError {
        let bucket = self.label.to_string();
        let key = key.to_string();
        move |source| BucketError::Request {
            op,
            bucket,
            key,
            source: Box::new(source),
        }
    }

    fn info(&self, meta: object_store::ObjectMeta) -> ObjectInfo {
        let full = meta.location.to_string();
        let key = full
            .strip_prefix(self.prefix.as_str())
            .unwrap_or(&full)
            .to_string();
        ObjectInfo {
            key,
            size: meta.size,
            etag: meta.e_tag,
            modified: jiff::Timestamp::from_millisecond(meta.last_modified.timestamp_millis())
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        }
    }

    /// What the bucket knows of `key`, or `None` when there is no such object.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BucketError> {
        match self.store.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(self.info(meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.request_err("HEAD", key)(e)),
        }
    }

    /// The whole of a small object, refused past `limit` bytes; `None` when it does not exist.
    pub async fn get(
        &self,
        key: &str,
        limit: u64,
    ) -> Result<Option<(Bytes, ObjectInfo)>, BucketError> {
        match self.get_if_changed(key, None, limit).await? {
            Fetched::Changed { bytes, info } => Ok(Some((bytes, info))),
            Fetched::Missing | Fetched::Unchanged => Ok(None),
        }
    }

    /// Reads `key` unless its ETag is still `known` (a poll costs one small request).
    pub async fn get_if_changed(
        &self,
        key: &str,
        known: Option<&str>,
        limit: u64,
    ) -> Result<Fetched, BucketError> {
        let options = GetOptions {
            if_none_match: known.map(str::to_string),
            ..GetOptions::default()
        };
        let result = match self.store.get_opts(&self.path(key), options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(Fetched::Missing),
            Err(object_store::Error::NotModified { .. }) => return Ok(Fetched::Unchanged),
            Err(e) => return Err(self.request_err("GET", key)(e)),
        };
        if result.meta.size > limit {
            return Err(BucketError::TooLarge {
                bucket: self.label.to_string(),
                key: key.to_string(),
                limit,
            });
        }
        let info = self.info(result.meta.clone());
        // The size is the server's word; the stream is cut at the limit all the same.
        let mut body = Vec::with_capacity(info.size as usize);
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(self.request_err("GET", key))?;
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(BucketError::TooLarge {
                    bucket: self.label.to_string(),
                    key: key.to_string(),
                    limit,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched::Changed {
            bytes: Bytes::from(body),
            info,
        })
    }

    /// The bytes `range` of `key`, as a stream of chunks (a client's Range passed through).
    pub async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
    ) -> Result<impl futures_util::Stream<Item = Result<Bytes, BucketError>> + use<>, BucketError>
    {
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&self.path(key), options)
            .await
            .map_err(self.request_err("GET", key))?;
        let bucket = self.clone();
        let key = key.to_string();
        Ok(result
            .into_stream()
            .map(move |chunk| chunk.map_err(bucket.request_err("GET", &key))))
    }

    /// Writes a small object whole, replacing what is there.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<Written, BucketError> {
        self.put_mode(key, bytes, PutMode::Overwrite).await
    }

    /// Writes a small object only if none is there. Servers that ignore If-None-Match
    /// (Garage) write it anyway: callers use keys no one else writes.
    pub async fn create(&self, key: &str, bytes: Bytes) -> Result<Written, BucketError> {
        self.put_mode(key, bytes, PutMode::Create).await
    }

    /// Replaces an object only if it is still the version `etag` (If-Match), where the server
    /// checks it.
    pub async fn replace(
        &self,
        key: &str,
        bytes: Bytes,
        etag: &str,
    ) -> Result<Written, BucketError> {
        let mode = PutMode::Update(UpdateVersion {
            e_tag: Some(etag.to_string()),
            version: None,
        });
        self.put_mode(key, bytes, mode).await
    }

    async fn put_mode(
        &self,
        key: &str,
        bytes: Bytes,
        mode: PutMode,
    ) -> Result<Written, BucketError> {
        let result = self
            .store
            .put_opts(
                &self.path(key),
                PutPayload::from(bytes),
                PutOptions::from(mode),
            )
            .await
            .map_err(self.request_err("PUT", key))?;
        Ok(Written { etag: result.e_tag })
    }

    /// Uploads a local file as `key`: whole when small, in parts (several at once) when large.
    /// The object appears only when the last part is in.
    pub async fn put_file(&self, key: &str, file: &FsPath) -> Result<(), BucketError> {
        let local_err = |source| BucketError::Local {
            path: file.to_path_buf(),
            key: key.to_string(),
            source,
        };
        let mut reader = tokio::fs::File::open(file).await.map_err(local_err)?;
        let size = reader.metadata().await.map_err(local_err)?.len();
        if size <= MULTIPART_OVER {
            let mut bytes = Vec::with_capacity(size as usize);
            (&mut reader)
                .take(MULTIPART_OVER + 1)
                .read_to_end(&mut bytes)
                .await
                .map_err(local_err)?;
            self.put(key, Bytes::from(bytes)).await?;
            return Ok(());
        }
        let upload = self
            .store
            .put_multipart(&self.path(key))
            .await
            .map_err(self.request_err("multipart PUT", key))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut buffer = vec![0u8; PART_SIZE];
        loop {
            let n = read_full(&mut reader, &mut buffer)
                .await
                .map_err(local_err)?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(self.request_err("multipart PUT", key))?;
            writer.write(&buffer[..n]);
        }
        // An upload left unfinished (a crash) stays invisible; the server drops it later.
        writer
            .finish()
            .await
            .map_err(self.request_err("multipart PUT", key))?;
        Ok(())
    }

    /// Every object under `prefix` (relative to the bucket's prefix), in key order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BucketError> {
        let mut stream = std::pin::pin!(self.list_stream(prefix));
        let mut found = Vec::new();
        while let Some(info) = stream.next().await {
            found.push(info?);
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    /// Every object under `prefix`, in no particular order, read a page (1,000 keys) at a
    /// time as the stream is consumed.
    pub fn list_stream(
        &self,
        prefix: &str,
    ) -> impl futures_util::Stream<Item = Result<ObjectInfo, BucketError>> + use<> {
        let bucket = self.clone();
        let prefix = prefix.to_string();
        self.store.list(Some(&self.path(&prefix))).map(move |meta| {
            meta.map(|meta| bucket.info(meta))
                .map_err(bucket.request_err("LIST", &prefix))
        })
    }

    /// Removes `key`; removing what is not there is no error.
    pub async fn delete(&self, key: &str) -> Result<(), BucketError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.request_err("DELETE", key)(e)),
        }
    }

    /// Removes `keys`, up to 1,000 per request (DeleteObjects); what is not there is no error.
    pub async fn delete_many(&self, keys: &[String]) -> Result<(), BucketError> {
        let Some(first) = keys.first() else {
            return Ok(());
        };
        let paths: Vec<object_store::Result<Path>> =
            keys.iter().map(|key| Ok(self.path(key))).collect();
        let mut deleted = self
            .store
            .delete_stream(futures_util::stream::iter(paths).boxed());
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    let what = format!("{} keys from {first}", keys.len());
                    return Err(self.request_err("DELETE", &what)(e));
                }
            }
        }
        Ok(())
    }
}

async fn read_full(reader: &mut tokio::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let n = reader.read(&mut buffer[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}
