//! What a frontend serves: one push's pointer and the manifests it names, in memory, swapped
//! whole when a newer push appears.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::{POINTER, POINTER_LIMIT, Published, PushedRoute, ROUTES, RemoteError, manifest_key};
use crate::config::Route;
use crate::storage::bucket::{Bucket, Fetched};
use crate::storage::{Entry, Manifest};

/// The most a frontend reads of one manifest (a full Ubuntu mirror's is tens of MB).
const MANIFEST_LIMIT: u64 = 512 << 20;

/// One push, as a frontend serves it: every request is answered from one snapshot, so a
/// client never mixes the indices of two pushes.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub published: Published,
    /// The pointer's ETag, to ask the bucket only whether it changed.
    etag: Option<String>,
    /// `apt/NAME` or `images` → that tree's manifest.
    trees: BTreeMap<String, Arc<Manifest>>,
    /// The upstream names the site answers for ([`super::ROUTES`]).
    pub routes: Arc<Vec<Route>>,
}

/// A file a snapshot serves: the blob to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<'a> {
    pub tree: &'a str,
    pub entry: &'a Entry,
}

impl Snapshot {
    /// The snapshot of what the bucket serves now; `None` before the first push.
    pub async fn load(bucket: &Bucket) -> Result<Option<Snapshot>, RemoteError> {
        let Some((published, etag)) = read_pointer(bucket).await? else {
            return Ok(None);
        };
        Snapshot::build(bucket, published, etag, None)
            .await
            .map(Some)
    }

    /// The bucket's newer snapshot, if a push switched the pointer since this one (one small
    /// conditional request when nothing changed). Manifests this snapshot holds are reused.
    pub async fn refreshed(&self, bucket: &Bucket) -> Result<Option<Snapshot>, RemoteError> {
        let (bytes, info) = match bucket
            .get_if_changed(POINTER, self.etag.as_deref(), POINTER_LIMIT)
            .await?
        {
            Fetched::Unchanged | Fetched::Missing => return Ok(None),
            Fetched::Changed { bytes, info } => (bytes, info),
        };
        let published = parse_pointer(bucket, &bytes)?;
        if published.generation <= self.published.generation {
            return Ok(None);
        }
        Snapshot::build(bucket, published, info.etag, Some(self))
            .await
            .map(Some)
    }

    async fn build(
        bucket: &Bucket,
        published: Published,
        etag: Option<String>,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, RemoteError> {
        let mut trees = BTreeMap::new();
        for (tree, id) in &published.trees {
            let same = previous.and_then(|p| {
                (p.published.trees.get(tree) == Some(id)).then(|| p.trees.get(tree).cloned())?
            });
            let manifest = match same {
                Some(manifest) => manifest,
                None => Arc::new(load_manifest(bucket, tree, id).await?),
            };
            trees.insert(tree.clone(), manifest);
        }
        let routes = match published.documents.get(ROUTES) {
            None => Arc::default(),
            Some(sha256) => match previous {
                Some(p) if p.published.documents.get(ROUTES) == Some(sha256) => p.routes.clone(),
                _ => Arc::new(load_routes(bucket, sha256).await?),
            },
        };
        Ok(Snapshot {
            published,
            etag,
            trees,
            routes,
        })
    }

    /// The file served at `path` (`apt/NAME/...` or `images/...`, without the leading `/`).
    pub fn resolve<'a>(&'a self, path: &str) -> Option<Resolved<'a>> {
        let (tree, rest) = match path.strip_prefix("apt/") {
            Some(apt) => {
                let (name, rest) = apt.split_once('/')?;
                (format!("apt/{name}"), rest)
            }
            None => ("images".to_string(), path.strip_prefix("images/")?),
        };
        let (key, manifest) = self.trees.get_key_value(&tree)?;
        let entry = manifest.entries.get(rest)?;
        Some(Resolved { tree: key, entry })
    }

    /// The blob of a document the pointer names (`keys/airlock.gpg`, `snaps/catalog.json`).
    pub fn document(&self, name: &str) -> Option<&str> {
        self.published.documents.get(name).map(String::as_str)
    }
}

/// Reads the pointer and its ETag; `None` for a bucket nothing was pushed to.
pub async fn read_pointer(
    bucket: &Bucket,
) -> Result<Option<(Published, Option<String>)>, RemoteError> {
    let Some((bytes, info)) = bucket.get(POINTER, POINTER_LIMIT).await? else {
        return Ok(None);
    };
    Ok(Some((parse_pointer(bucket, &bytes)?, info.etag)))
}

fn parse_pointer(bucket: &Bucket, bytes: &Bytes) -> Result<Published, RemoteError> {
    let published: Published =
        serde_json::from_slice(bytes).map_err(|source| RemoteError::Pointer {
            bucket: bucket.label().to_string(),
            source,
        })?;
    if published.format > super::FORMAT {
        return Err(RemoteError::NewerPointer {
            bucket: bucket.label().to_string(),
            found: published.format,
        });
    }
    Ok(published)
}

/// The most a frontend reads of the routes.
const ROUTES_LIMIT: u64 = 4 << 20;

async fn load_routes(bucket: &Bucket, sha256: &str) -> Result<Vec<Route>, RemoteError> {
    let routes: Vec<PushedRoute> = super::read_document(bucket, sha256, ROUTES_LIMIT).await?;
    Ok(routes.iter().map(PushedRoute::route).collect())
}

pub(super) async fn load_manifest(
    bucket: &Bucket,
    tree: &str,
    id: &str,
) -> Result<Manifest, RemoteError> {
    let key = manifest_key(tree, id);
    let Some((bytes, _)) = bucket.get(&key, MANIFEST_LIMIT).await? else {
        return Err(RemoteError::MissingManifest {
            bucket: bucket.label().to_string(),
            key,
        });
    };
    let origin = format!("{}{key}", bucket.label());
    let text = String::from_utf8_lossy(&bytes);
    Ok(Manifest::parse(&text, Path::new(&origin))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `site/routes.json` as writers push it: frontends of any version read what any writer
    /// wrote, so its bytes do not change.
    #[test]
    fn the_routes_document_keeps_its_format() {
        let pushed = br#"[{"host":"archive.ubuntu.com","path":"/ubuntu","to":"/apt/ubuntu"},{"host":"images.maas.io","path":"","to":"/images"}]"#;
        let read: Vec<PushedRoute> = serde_json::from_slice(pushed).unwrap();
        let routes: Vec<Route> = read.iter().map(PushedRoute::route).collect();
        assert_eq!(routes[0].host, "archive.ubuntu.com");
        assert_eq!(routes[1].path, "");
        assert_eq!(routes[1].to, "/images");
        let written: Vec<PushedRoute> = routes.iter().map(PushedRoute::of).collect();
        assert_eq!(serde_json::to_vec(&written).unwrap(), pushed);
    }
}
