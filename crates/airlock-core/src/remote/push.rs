//! A writer's push: what its data folder serves, into the bucket, switched last.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::PushedRoute;
use super::{POINTER, Published, RemoteError, blob_key, manifest_key, read_pointer};
use crate::config::StorageConfig;
use crate::report::{Reporter, Unit};
use crate::site::Site;
use crate::snap::catalog::Catalog;
use crate::storage::bucket::{Bucket, Holder, Lease, LeaseSettings};
use crate::storage::{ContentStore, Manifest, Sha256, TreeSet};

/// Uploads at once: enough to fill a link to a nearby object store, few enough for a small one.
const UPLOADS_IN_FLIGHT: usize = 8;

/// What a push did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PushReport {
    /// The pointer's generation now.
    pub generation: u64,
    /// Whether the pointer was switched (false: the bucket already served this content).
    pub switched: bool,
    pub trees: usize,
    /// Blobs the published content names, and of those the ones uploaded now.
    pub blobs: usize,
    pub blobs_uploaded: usize,
    pub bytes_uploaded: u64,
    pub manifests_uploaded: usize,
    /// With `[storage] keep_pushed`: what the writer's disk kept and dropped afterwards.
    pub trim: Option<super::TrimReport>,
}

/// A published tree of the data folder: its key in the pointer, its ID, its manifest file.
struct LocalTree {
    key: String,
    id: String,
    manifest: PathBuf,
    served: Manifest,
}

/// What the data folder serves: trees, documents, and every blob they name.
struct Content {
    trees: Vec<LocalTree>,
    /// Document name → its bytes' SHA256 (the bytes are in `documents_bytes`).
    documents: BTreeMap<String, String>,
    documents_bytes: Vec<(String, Bytes)>,
    /// Blob SHA256 → local file to upload from; none for a blob dropped after an earlier
    /// push (the bucket has it).
    blobs: BTreeMap<String, Option<PathBuf>>,
    catalog: Option<Catalog>,
}

/// Pushes what `site` serves into `bucket` under the writers' lease: the blobs the bucket
/// lacks, then the manifests, then the pointer. Stopped at any point, the bucket still serves
/// the previous push, and the next push uploads only what is missing.
pub async fn push(
    site: &Site,
    bucket: &Bucket,
    holder: Holder,
    reporter: &dyn Reporter,
) -> Result<PushReport, RemoteError> {
    let lease = Lease::take(bucket, holder.clone(), LeaseSettings::default()).await?;
    let result = push_leased(site, bucket, &lease, holder, reporter).await;
    if result.is_ok() {
        lease.release().await?;
    }
    result
}

async fn push_leased(
    site: &Site,
    bucket: &Bucket,
    lease: &Lease,
    holder: Holder,
    reporter: &dyn Reporter,
) -> Result<PushReport, RemoteError> {
    let previous = read_pointer(bucket).await?;
    let content = collect(site, bucket)?;
    let mut report = PushReport {
        trees: content.trees.len(),
        blobs: content.blobs.len(),
        ..PushReport::default()
    };
    upload_blobs(bucket, &site.store(), &content, &mut report, reporter).await?;
    upload_manifests(bucket, &content, &mut report).await?;

    let now = jiff::Timestamp::now();
    let next = Published {
        format: super::FORMAT,
        generation: previous.as_ref().map_or(0, |(p, _)| p.generation) + 1,
        written: now,
        writer: holder,
        trees: content
            .trees
            .iter()
            .map(|t| (t.key.clone(), t.id.clone()))
            .collect(),
        documents: content.documents.clone(),
        // What frontends may still serve: `airlock gc` keeps it.
        retired: previous
            .as_ref()
            .map_or_else(Vec::new, |(p, _)| p.retire(now, site.config.site.grace.0)),
    };
    match &previous {
        Some((served, _)) if served.same_content(&next) => report.generation = served.generation,
        _ => {
            switch(bucket, lease, &next, previous.and_then(|(_, etag)| etag)).await?;
            report.generation = next.generation;
            report.switched = true;
        }
    }
    // The bucket's pointer now names every blob of `content`: a writer short of disk may
    // drop its own copies (and one that no longer is reads back what it dropped).
    if let StorageConfig::S3(storage) = &site.config.storage
        && (storage.keep_pushed.is_some() || site.store().drops_any())
    {
        let pushed = content.blobs.keys().filter_map(|h| Sha256::from_hex(h));
        let pushed = pushed.collect();
        let trees = content.trees.iter().map(|t| (t.key.as_str(), &t.served));
        let named = super::trim::classify(site.data_dir(), trees, content.catalog.as_ref());
        let trim = super::trim::trim(site, named, storage.keep_pushed, &pushed, reporter)?;
        report.trim = Some(trim);
    }
    Ok(report)
}

/// The trees the data folder serves, the documents frontends need, and their blobs.
fn collect(site: &Site, bucket: &Bucket) -> Result<Content, RemoteError> {
    let data = site.data_dir();
    let store = ContentStore::new(data);
    let mut sets: Vec<(String, TreeSet)> = TreeSet::published_apt_names(data)
        .into_iter()
        .map(|name| (format!("apt/{name}"), TreeSet::apt(data, &name)))
        .collect();
    sets.push(("images".into(), TreeSet::area(data, "images")));

    let mut content = Content {
        trees: Vec::new(),
        documents: BTreeMap::new(),
        documents_bytes: Vec::new(),
        blobs: BTreeMap::new(),
        catalog: None,
    };
    for (key, set) in sets {
        let Some((id, manifest_path, manifest)) = set.served()? else {
            continue;
        };
        for entry in manifest.entries.values() {
            let hex = entry.sha256.to_hex();
            let Some(local) = local_copy(&store, &entry.sha256) else {
                return Err(RemoteError::MissingBlob {
                    bucket: bucket.label().to_string(),
                    tree: key,
                    sha256: hex,
                });
            };
            content.blobs.insert(hex, local);
        }
        content.trees.push(LocalTree {
            key,
            id,
            manifest: manifest_path,
            served: manifest,
        });
    }

    let catalog = Catalog::path(data);
    if catalog.is_file() {
        // Read once: pushed as it is, and what it names.
        let bytes =
            crate::storage::read_limited(&catalog, super::CATALOG_LIMIT, "the snap catalog")?;
        let loaded: Catalog = serde_json::from_slice(&bytes).map_err(|source| {
            crate::storage::StorageError::Json {
                path: catalog.clone(),
                source,
            }
        })?;
        for sha256 in loaded.blobs() {
            let Some(digest) = Sha256::from_hex(sha256) else {
                continue;
            };
            // One missing altogether fails its upload, naming the file.
            let local = local_copy(&store, &digest).unwrap_or(Some(store.blob_path(&digest)));
            content.blobs.insert(sha256.to_string(), local);
        }
        add_document(&mut content, super::CATALOG, Bytes::from(bytes));
        content.catalog = Some(loaded);
    }
    // The upstream names frontends answer for (their own config names no mirrors).
    let routes: Vec<PushedRoute> = site
        .config
        .proxy
        .routes
        .iter()
        .map(PushedRoute::of)
        .collect();
    if !routes.is_empty() {
        let bytes = serde_json::to_vec(&routes).expect("routes serialise");
        add_document(&mut content, super::ROUTES, Bytes::from(bytes));
    }
    // What the writer itself needs to go on: a new writer `airlock pull`s it.
    for (name, bytes) in super::state::read(data)? {
        add_document(&mut content, &name, bytes);
    }
    let key = site
        .signing_key()
        .map_err(|e| RemoteError::Key(Box::new(e)))?;
    add_document(
        &mut content,
        "keys/airlock.gpg",
        Bytes::from(key.public_binary()),
    );
    add_document(
        &mut content,
        "keys/airlock.asc",
        Bytes::from(key.public_armored()),
    );
    Ok(content)
}

/// Where a blob is uploaded from: its file, or none when it was dropped after an earlier push
/// (the bucket has it); `None` when it is neither here nor dropped.
fn local_copy(store: &ContentStore, digest: &Sha256) -> Option<Option<PathBuf>> {
    let path = store.blob_path(digest);
    if path.is_file() {
        Some(Some(path))
    } else {
        store.is_dropped(digest).then_some(None)
    }
}

fn add_document(content: &mut Content, name: &str, bytes: Bytes) {
    let sha256 = Sha256::of(&bytes).to_hex();
    content.documents.insert(name.to_string(), sha256.clone());
    content.documents_bytes.push((sha256, bytes));
}

/// Uploads the blobs the bucket lacks (one listing tells which), several at once.
async fn upload_blobs(
    bucket: &Bucket,
    store: &ContentStore,
    content: &Content,
    report: &mut PushReport,
    reporter: &dyn Reporter,
) -> Result<(), RemoteError> {
    let present: BTreeSet<String> = bucket
        .list("blobs/")
        .await?
        .into_iter()
        .filter_map(|info| info.key.rsplit('/').next().map(str::to_string))
        .collect();
    // Each file's size read once: for the progress total and the report.
    let mut missing: Vec<(&String, &PathBuf, u64)> = Vec::new();
    for (sha256, path) in content.blobs.iter() {
        if present.contains(sha256) {
            continue;
        }
        let Some(path) = path else {
            // The mark is wrong (a backup restored after the bucket's gc, say): forgotten, so
            // that the next sync or import fetches the blob again.
            if let Some(digest) = Sha256::from_hex(sha256) {
                store.forget_dropped(&digest)?;
            }
            return Err(RemoteError::DroppedNotInBucket {
                bucket: bucket.label().to_string(),
                sha256: sha256.clone(),
            });
        };
        missing.push((sha256, path, std::fs::metadata(path).map_or(0, |m| m.len())));
    }
    let documents: Vec<&(String, Bytes)> = content
        .documents_bytes
        .iter()
        .filter(|(sha256, _)| !present.contains(sha256))
        .collect();
    let total = missing.iter().map(|(_, _, size)| size).sum();
    let task = reporter.start("uploading blobs", Some(total), Unit::Bytes);
    let uploaded: Vec<u64> = futures_util::stream::iter(missing)
        .map(|(sha256, path, size)| async move {
            bucket.put_file(&blob_key(sha256), path).await?;
            reporter.advance(task, size);
            Ok::<u64, RemoteError>(size)
        })
        .buffer_unordered(UPLOADS_IN_FLIGHT)
        .try_collect()
        .await?;
    reporter.finish(task);
    for (sha256, bytes) in documents {
        bucket.put(&blob_key(sha256), bytes.clone()).await?;
        report.blobs_uploaded += 1;
        report.bytes_uploaded += bytes.len() as u64;
    }
    report.blobs_uploaded += uploaded.len();
    report.bytes_uploaded += uploaded.iter().sum::<u64>();
    Ok(())
}

/// Uploads the manifests the bucket lacks (a manifest's name is its tree's ID: never changed).
async fn upload_manifests(
    bucket: &Bucket,
    content: &Content,
    report: &mut PushReport,
) -> Result<(), RemoteError> {
    let present: BTreeSet<String> = bucket
        .list("trees/")
        .await?
        .into_iter()
        .map(|info| info.key)
        .collect();
    for tree in &content.trees {
        let key = manifest_key(&tree.key, &tree.id);
        if !present.contains(&key) {
            bucket.put_file(&key, &tree.manifest).await?;
            report.manifests_uploaded += 1;
        }
    }
    Ok(())
}

/// Makes `next` the served content: the lease confirmed, then one PUT of the pointer (If-Match
/// the version read at the start, where the server checks it).
async fn switch(
    bucket: &Bucket,
    lease: &Lease,
    next: &Published,
    etag: Option<String>,
) -> Result<(), RemoteError> {
    let body = Bytes::from(serde_json::to_vec_pretty(next).expect("the pointer serialises"));
    lease.confirm().await?;
    match etag {
        Some(etag) => bucket.replace(POINTER, body, &etag).await?,
        None => bucket.create(POINTER, body).await?,
    };
    Ok(())
}
