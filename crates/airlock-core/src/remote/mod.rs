//! A site kept in an S3-compatible bucket, for frontends that hold no data of their own.
//!
//! The bucket mirrors what a site publishes, by content:
//! - `blobs/sha256/XX/<sha256>`: every file a published tree, the snap store or the site key
//!   serves, written once and never changed;
//! - `trees/AREA[/NAME]/<ID>.manifest`: the manifest of each published tree, never changed;
//! - `published.json`: the pointer, [`Published`]: which tree of each content is served, and
//!   the blobs of the documents frontends need besides (the snap catalog, the site's public
//!   key). Written last, in one PUT: a frontend sees one publish or the next, never a mix;
//! - `lease/`: the claims of writers (`storage::bucket::Lease`).
//!
//! A writer publishes into its data folder as always, then [`push`]es; [`gc`] removes what no
//! pointer generation still in use names.

mod cache;
mod frontend;
mod gc;
pub mod pull;
mod push;
mod readback;
mod snapshot;
mod state;
mod trim;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::S3Storage;
use crate::hint::Hint;
use crate::storage::bucket::{Bucket, BucketError, BucketSettings, Holder, LeaseError, Secret};
use crate::storage::{StorageError, read_limited, read_limited_text};

pub use cache::{CacheUsage, DiskCache};
pub use frontend::{Frontend, FrontendCounts, SMALL_BLOB};
pub use gc::{BucketGcReport, gc};
pub use pull::PullReport;
pub use push::{PushReport, push};
pub use readback::ReadBack;
pub use snapshot::{Resolved, Snapshot, read_pointer};
pub use trim::TrimReport;

/// The pointer's key.
pub const POINTER: &str = "published.json";
/// The most a frontend reads of the pointer.
pub const POINTER_LIMIT: u64 = 4 << 20;
const FORMAT: u32 = 1;
/// The most generations a pointer lists as retired: frontends need the last one or two; the
/// rest only keep blobs a little longer.
const RETIRED_LIMIT: usize = 100;

/// What the bucket serves now: written last by every push.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub format: u32,
    /// One more than the pointer it replaced.
    pub generation: u64,
    pub written: jiff::Timestamp,
    pub writer: Holder,
    /// `apt/NAME` or `images` → the ID of the served tree (`trees/KEY/ID.manifest`).
    pub trees: BTreeMap<String, String>,
    /// Documents frontends serve or read besides the trees (`snaps/catalog.json`,
    /// `keys/airlock.gpg`, `keys/airlock.asc`) → their blob's SHA256.
    pub documents: BTreeMap<String, String>,
    /// The generations this one replaced that frontends may still serve, newest first: the
    /// one just before it always, older ones while replaced less than the grace period ago.
    /// `airlock gc` keeps what they name. (Absent in pointers of earlier versions.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<Retired>,
}

/// A generation a newer pointer replaced: what it served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    pub generation: u64,
    /// When the next generation replaced it (that writer's clock).
    pub replaced: jiff::Timestamp,
    pub trees: BTreeMap<String, String>,
    pub documents: BTreeMap<String, String>,
}

impl Published {
    /// Whether `other` serves the same content (only the generation and who wrote it differ).
    pub fn same_content(&self, other: &Published) -> bool {
        self.trees == other.trees && self.documents == other.documents
    }

    /// What the pointer that replaces this one at `now` lists as retired: this generation,
    /// then those this one lists that were replaced less than `grace` before `now`.
    pub fn retire(&self, now: jiff::Timestamp, grace: std::time::Duration) -> Vec<Retired> {
        let grace = jiff::SignedDuration::try_from(grace).unwrap_or(jiff::SignedDuration::MAX);
        let this = Retired {
            generation: self.generation,
            replaced: now,
            trees: self.trees.clone(),
            documents: self.documents.clone(),
        };
        std::iter::once(this)
            .chain(
                self.retired
                    .iter()
                    .filter(|r| now.duration_since(r.replaced) < grace)
                    .cloned(),
            )
            .take(RETIRED_LIMIT)
            .collect()
    }
}

/// The pointer's document naming the snap catalog.
pub const CATALOG: &str = "snaps/catalog.json";
/// The most a writer, gc or a frontend reads of the snap catalog (a few KiB a snap).
pub const CATALOG_LIMIT: u64 = 256 << 20;

/// The pointer's document listing the upstream names the site answers for.
pub const ROUTES: &str = "site/routes.json";

/// A `[[proxy.route]]` (configured or derived from a mirror) as frontends answer it: they
/// never fetch from the upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedRoute {
    pub host: String,
    pub path: String,
    pub to: String,
}

impl PushedRoute {
    pub fn of(route: &crate::config::Route) -> PushedRoute {
        PushedRoute {
            host: route.host.clone(),
            path: route.path.clone(),
            to: route.to.clone(),
        }
    }

    pub fn route(&self) -> crate::config::Route {
        crate::config::Route {
            host: self.host.clone(),
            path: self.path.clone(),
            to: self.to.clone(),
            upstream: String::new(),
            derived_from: None,
        }
    }
}

/// The whole of blob `sha256`, at most `limit` bytes, checked against its digest.
pub async fn checked_blob(
    bucket: &Bucket,
    sha256: &crate::storage::Sha256,
    limit: u64,
) -> Result<bytes::Bytes, RemoteError> {
    let key = blob_key(&sha256.to_hex());
    let Some((bytes, _)) = bucket.get(&key, limit).await? else {
        return Err(RemoteError::MissingBlobInBucket {
            bucket: bucket.label().to_string(),
            key,
        });
    };
    if crate::storage::Sha256::of(&bytes) != *sha256 {
        return Err(RemoteError::CorruptBlob {
            bucket: bucket.label().to_string(),
            key,
        });
    }
    Ok(bytes)
}

/// A JSON document the pointer names by its blob's digest (`sha256` as the pointer has it).
pub(crate) async fn read_document<T: serde::de::DeserializeOwned>(
    bucket: &Bucket,
    sha256: &str,
    limit: u64,
) -> Result<T, RemoteError> {
    let key = blob_key(sha256);
    let Some(digest) = crate::storage::Sha256::from_hex(sha256) else {
        return Err(RemoteError::CorruptBlob {
            bucket: bucket.label().to_string(),
            key,
        });
    };
    let bytes = checked_blob(bucket, &digest, limit).await?;
    serde_json::from_slice(&bytes).map_err(|source| RemoteError::Document {
        bucket: bucket.label().to_string(),
        key,
        source,
    })
}

/// The key of a blob in the bucket.
pub fn blob_key(sha256: &str) -> String {
    format!("blobs/sha256/{}/{sha256}", &sha256[..2])
}

/// The key of a tree's manifest in the bucket.
pub fn manifest_key(tree: &str, id: &str) -> String {
    format!("trees/{tree}/{id}.manifest")
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{bucket}: {POINTER} is not a pointer airlock {} reads", env!("CARGO_PKG_VERSION"))]
    Pointer {
        bucket: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{bucket}: {POINTER} has format {found}, newer than airlock {} writes", env!("CARGO_PKG_VERSION"))]
    NewerPointer { bucket: String, found: u32 },
    #[error(
        "{bucket}: the published tree {tree} names blob {sha256}, which is not in the local store"
    )]
    MissingBlob {
        bucket: String,
        tree: String,
        sha256: String,
    },
    #[error(
        "{bucket}: blob {sha256} is not there, and this writer dropped its own copy after an earlier push ([storage] keep_pushed)"
    )]
    DroppedNotInBucket { bucket: String, sha256: String },
    #[error("{}: the data folder holds a site already; `airlock pull` only fills an empty one", path.display())]
    NotEmpty { path: std::path::PathBuf },
    #[error("{bucket}: nothing was pushed there yet")]
    NothingPushed { bucket: String },
    #[error("{bucket}: its content is signed by another key than this site's ({fingerprint})")]
    OtherKey { bucket: String, fingerprint: String },
    #[error("{bucket}: the pointer names a tree {key:?}, which no airlock push writes")]
    BadTree { bucket: String, key: String },
    #[error("{bucket}: no credentials: {variable} is not set and [storage] names no key files")]
    NoCredentials {
        bucket: String,
        variable: &'static str,
    },
    #[error("{bucket}: the pointer names {key}, which is not there")]
    MissingManifest { bucket: String, key: String },
    #[error("{bucket}: {key} is not there, though what a push wrote names it")]
    MissingBlobInBucket { bucket: String, key: String },
    #[error("{bucket}: {key} does not have the content its name says")]
    CorruptBlob { bucket: String, key: String },
    #[error("{bucket}: {key} is not a document airlock {} reads", env!("CARGO_PKG_VERSION"))]
    Document {
        bucket: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the frontend's cache: {}", path.display())]
    Cache {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the frontend's cache: {} does not have the content its name says", path.display())]
    CorruptCache { path: std::path::PathBuf },
    #[error("cannot read the site key to publish its public half")]
    Key(#[source] Box<crate::openpgp::OpenPgpError>),
    #[error("cannot read the snap catalog")]
    Catalog(#[source] Box<crate::snap::SnapError>),
    #[error(
        "published here, but not pushed: {bucket} still serves its previous push; `airlock push` (or the next run of this command) finishes it"
    )]
    NotPushed {
        bucket: String,
        #[source]
        source: Box<RemoteError>,
    },
}

impl Hint for RemoteError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            RemoteError::Bucket(e) => e.hint(),
            RemoteError::Lease(e) => e.hint(),
            RemoteError::Storage(e) => e.hint(),
            RemoteError::Pointer { .. } => Some(
                "the bucket and prefix hold something else than an airlock site: check [storage] bucket and prefix",
            ),
            RemoteError::NewerPointer { .. } => {
                Some("a newer airlock writes this bucket: upgrade this writer")
            }
            RemoteError::MissingBlob { .. } => Some(
                "`airlock verify --offline` lists what the local store lacks; a publish or sync writes it again",
            ),
            RemoteError::DroppedNotInBucket { .. } => Some(
                "the bucket lost an object this writer no longer has: run the sync or import that brought it again (it fetches it now), or put it back in the bucket from a backup or another copy of the site",
            ),
            RemoteError::NotEmpty { .. } => Some(
                "point [site] data_dir at a folder that does not exist yet (or move this one away), then pull again",
            ),
            RemoteError::NothingPushed { .. } => {
                Some("check [storage] bucket and prefix: they must name the writer's bucket")
            }
            RemoteError::OtherKey { .. } => Some(
                "restore the writer's signing key (its backup, or the lost machine's airlock.key) to [site] signing_key: clients trust that key",
            ),
            RemoteError::BadTree { .. } => Some(
                "the pointer was written by something else than airlock: check [storage] bucket and prefix",
            ),
            RemoteError::MissingManifest { .. } => Some(
                "the bucket lost an object a push wrote: push again from the writer (`airlock push`)",
            ),
            RemoteError::MissingBlobInBucket { .. } => Some(
                "the bucket lost an object a push wrote: push again from the writer (`airlock push`), which uploads what is missing",
            ),
            RemoteError::CorruptBlob { .. } => Some(
                "the bucket holds a damaged object: delete it, then push again from the writer (`airlock push`)",
            ),
            RemoteError::Document { .. } => Some(
                "a newer airlock pushed it (upgrade this one: gc removes nothing meanwhile), or the object is damaged (delete it, then push again from the writer)",
            ),
            RemoteError::NoCredentials { .. } => Some(
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (for the units: an EnvironmentFile), or name access_key_file and secret_key_file in [storage]",
            ),
            RemoteError::Cache { .. } => Some(
                "the user airlock serve runs as needs [storage] cache_dir writable, with room for cache_size",
            ),
            RemoteError::CorruptCache { .. } => Some(
                "the damaged file was removed: the next request fetches the blob from the bucket again; check the cache's disk",
            ),
            RemoteError::Key(e) => e.hint(),
            RemoteError::Catalog(e) => e.hint(),
            RemoteError::NotPushed { source, .. } => source.hint(),
        }
    }
}

/// The push a writing command (`publish`, `sync`, `import` ...) makes after its local publish,
/// holding the site lock that publish took ([`Site::lock_command`]): a failure says that the
/// local publish stands and the bucket still serves the previous push.
///
/// [`Site::lock_command`]: crate::site::Site::lock_command
pub async fn push_after_publish(
    site: &crate::site::Site,
    bucket: &Bucket,
    holder: Holder,
    reporter: &dyn crate::report::Reporter,
) -> Result<PushReport, RemoteError> {
    push(site, bucket, holder, reporter)
        .await
        .map_err(|source| RemoteError::NotPushed {
            bucket: bucket.label().to_string(),
            source: Box::new(source),
        })
}

/// The credentials' files are a line each; anything longer is not one.
const CREDENTIAL_LIMIT: u64 = 4 << 10;

/// The bucket `[storage]` names, with its credentials from their files or the environment.
pub fn open_bucket(storage: &S3Storage) -> Result<Bucket, RemoteError> {
    let label =
        || crate::storage::bucket::label(&storage.endpoint, &storage.bucket, &storage.prefix);
    let from_file = |path: &std::path::Path| -> Result<String, RemoteError> {
        let text = read_limited_text(path, CREDENTIAL_LIMIT, "an S3 credential")?;
        Ok(text.trim().to_string())
    };
    let (access_key_id, secret) = match (&storage.access_key_file, &storage.secret_key_file) {
        (Some(id), Some(secret)) => (from_file(id)?, from_file(secret)?),
        _ => {
            let var = |name: &'static str| {
                std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or(
                    RemoteError::NoCredentials {
                        bucket: label(),
                        variable: name,
                    },
                )
            };
            (var("AWS_ACCESS_KEY_ID")?, var("AWS_SECRET_ACCESS_KEY")?)
        }
    };
    let extra_roots = match &storage.ca {
        Some(path) => vec![read_limited(path, 1 << 20, "a PEM certificate")?],
        None => Vec::new(),
    };
    Ok(Bucket::open(&BucketSettings {
        endpoint: storage.endpoint.clone(),
        bucket: storage.bucket.clone(),
        region: storage.region.clone(),
        prefix: storage.prefix.clone(),
        access_key_id,
        secret_access_key: Secret::new(secret),
        extra_roots,
        timeout: std::time::Duration::from_secs(30),
    })?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn pointer(generation: u64, retired: Vec<Retired>) -> Published {
        Published {
            format: FORMAT,
            generation,
            written: jiff::Timestamp::UNIX_EPOCH,
            writer: Holder {
                host: "h".into(),
                pid: 1,
                command: "push".into(),
            },
            trees: BTreeMap::from([("apt/local".into(), format!("tree{generation}"))]),
            documents: BTreeMap::new(),
            retired,
        }
    }

    fn at(second: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(second).unwrap()
    }

    fn retired(generation: u64, replaced: i64) -> Retired {
        Retired {
            generation,
            replaced: at(replaced),
            trees: pointer(generation, Vec::new()).trees,
            documents: BTreeMap::new(),
        }
    }

    #[test]
    fn a_pointer_retires_its_predecessor_always_and_older_ones_within_the_grace() {
        let grace = Duration::from_secs(100);
        let current = pointer(5, vec![retired(4, 950), retired(3, 901), retired(2, 900)]);
        let next = current.retire(at(1000), grace);
        let generations: Vec<u64> = next.iter().map(|r| r.generation).collect();
        // 5 just now; 4 and 3 less than 100 s ago; 2 exactly 100 s ago: gone.
        assert_eq!(generations, [5, 4, 3]);
        assert_eq!(next[0].replaced, at(1000));
        assert_eq!(next[0].trees, current.trees);
        // Long after: only the one replaced now.
        let later = pointer(6, next).retire(at(5000), grace);
        assert_eq!(later.iter().map(|r| r.generation).collect::<Vec<_>>(), [6]);
    }

    #[test]
    fn the_retired_list_is_bounded() {
        let many = (0..2 * RETIRED_LIMIT as u64)
            .map(|g| retired(g, 1000))
            .collect();
        let next = pointer(1000, many).retire(at(1000), Duration::from_secs(86_400));
        assert_eq!(next.len(), RETIRED_LIMIT);
        assert_eq!(next[0].generation, 1000);
    }

    #[test]
    fn pointers_without_a_retired_list_still_read_and_write_none() {
        let old = r#"{"format":1,"generation":3,"written":"2026-01-01T00:00:00Z",
            "writer":{"host":"h","pid":1,"command":"push"},"trees":{},"documents":{}}"#;
        let parsed: Published = serde_json::from_str(old).unwrap();
        assert!(parsed.retired.is_empty());
        let written = serde_json::to_string(&parsed).unwrap();
        assert!(!written.contains("retired"), "{written}");
    }
}
