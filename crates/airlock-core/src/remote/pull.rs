//! `airlock pull`: a writer's data folder rebuilt from its bucket, for a new machine when the
//! writer's was lost. Phases: [`fetch`] reads what the pointer names (the manifests of the
//! served trees and the writer's state documents; the bucket's key must be this site's);
//! [`install`] writes the state, reads back what the writer keeps (everything, or with
//! `keep_pushed` only what publishes read) and marks the rest as in the bucket only, and
//! publishes each tree under the ID the bucket serves it by.

use std::path::Path;

use serde::Serialize;

use super::{Published, RemoteError, read_pointer, snapshot::load_manifest, state, trim};
use crate::config::StorageConfig;
use crate::report::Reporter;
use crate::site::Site;
use crate::snap::catalog::Catalog;
use crate::storage::bucket::Bucket;
use crate::storage::tree::is_tree_id;
use crate::storage::{Manifest, Sha256, StorageError, TreeSet, write_atomic};

/// What the bucket serves, read whole: ready to install into an empty data folder.
pub struct Pulled {
    generation: u64,
    /// Key (`apt/NAME`, `images`), the served tree's ID, its manifest.
    trees: Vec<(String, String, Manifest)>,
    state: Vec<(String, bytes::Bytes)>,
}

/// What a pull did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PullReport {
    /// The pointer's generation the data folder now serves.
    pub generation: u64,
    pub trees: usize,
    pub state_files: usize,
    /// Blobs the trees and the snap catalog name, and of those the ones read back here (the
    /// rest stay in the bucket only: `keep_pushed`).
    pub blobs: usize,
    pub blobs_read_back: usize,
}

/// Reads what the bucket's pointer names. Refuses a data folder that holds a site already, a
/// bucket nothing was pushed to, and a bucket whose content another key signed.
pub async fn fetch(site: &Site, bucket: &Bucket) -> Result<Pulled, RemoteError> {
    let data = site.data_dir();
    refuse_a_site(data)?;
    let Some((published, _)) = read_pointer(bucket).await? else {
        return Err(RemoteError::NothingPushed {
            bucket: bucket.label().to_string(),
        });
    };
    check_key(site, bucket, &published).await?;
    let mut trees = Vec::new();
    for (key, id) in &published.trees {
        if !is_tree_key(key) || !is_tree_id(id) {
            return Err(RemoteError::BadTree {
                bucket: bucket.label().to_string(),
                key: format!("{key} {id}"),
            });
        }
        let manifest = load_manifest(bucket, key, id).await?;
        trees.push((key.clone(), id.clone(), manifest));
    }
    // The writer's state this airlock knows where to put (a newer writer's is left).
    let mut state = Vec::new();
    for (name, sha256) in &published.documents {
        if state::path(data, name).is_some() {
            let digest = sha256_of(bucket, name, sha256)?;
            let bytes = super::checked_blob(bucket, &digest, state::LIMIT).await?;
            state.push((name.clone(), bytes));
        }
    }
    Ok(Pulled {
        generation: published.generation,
        trees,
        state,
    })
}

/// A data folder serves a site once it has trees: a pull never writes over one. (Blobs a
/// stopped pull read back are kept: its rerun goes on from them.)
fn refuse_a_site(data: &Path) -> Result<(), RemoteError> {
    if ["trees", "public"].iter().any(|d| data.join(d).exists()) {
        return Err(RemoteError::NotEmpty {
            path: data.to_path_buf(),
        });
    }
    Ok(())
}

/// The writer's key must be the one the bucket's content is signed with: another key would
/// re-sign every publish from here on, and clients trust the old one.
async fn check_key(site: &Site, bucket: &Bucket, published: &Published) -> Result<(), RemoteError> {
    let key = site
        .signing_key()
        .map_err(|e| RemoteError::Key(Box::new(e)))?;
    let name = "keys/airlock.gpg";
    let pushed = match published.documents.get(name) {
        Some(sha256) => {
            let digest = sha256_of(bucket, name, sha256)?;
            Some(super::checked_blob(bucket, &digest, 1 << 20).await?)
        }
        None => None,
    };
    if pushed.as_deref() != Some(key.public_binary().as_slice()) {
        return Err(RemoteError::OtherKey {
            bucket: bucket.label().to_string(),
            fingerprint: key.fingerprint(),
        });
    }
    Ok(())
}

/// `images`, or `apt/NAME` with a name a repo may have (letters, digits, `.`, `_`, `+`, `-`;
/// not starting with a dot): nothing that leads out of the data folder.
fn is_tree_key(key: &str) -> bool {
    key == "images"
        || key.strip_prefix("apt/").is_some_and(|name| {
            !name.is_empty()
                && !name.starts_with('.')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
        })
}

fn sha256_of(bucket: &Bucket, name: &str, sha256: &str) -> Result<Sha256, RemoteError> {
    Sha256::from_hex(sha256).ok_or_else(|| RemoteError::CorruptBlob {
        bucket: bucket.label().to_string(),
        key: name.to_string(),
    })
}

/// Installs what [`fetch`] read into the data folder, under the site lock: the blobs (a
/// stopped pull keeps what it read back, and its rerun goes on), then the state, then the
/// trees.
pub fn install(
    site: &Site,
    pulled: Pulled,
    reporter: &dyn Reporter,
) -> Result<PullReport, RemoteError> {
    let data = site.data_dir();
    std::fs::create_dir_all(data).map_err(|source| StorageError::Write {
        path: data.to_path_buf(),
        source,
    })?;
    let _lock = site.lock(reporter)?;
    // Again under the lock: another pull may have been quicker.
    refuse_a_site(data)?;
    let mut report = PullReport {
        generation: pulled.generation,
        trees: pulled.trees.len(),
        state_files: pulled.state.len(),
        ..PullReport::default()
    };

    // What the trees and the snap catalog (in the state) name, payload or not.
    let catalog_name = format!("{}snaps/catalog.json", state::PREFIX);
    let catalog: Option<Catalog> = match pulled.state.iter().find(|(n, _)| *n == catalog_name) {
        Some((name, bytes)) => {
            Some(
                serde_json::from_slice(bytes).map_err(|source| RemoteError::Document {
                    bucket: String::new(),
                    key: name.clone(),
                    source,
                })?,
            )
        }
        None => None,
    };
    let trees = pulled.trees.iter().map(|(key, _, m)| (key.as_str(), m));
    let named = trim::classify(data, trees, catalog.as_ref());

    // Every blob is in the bucket: read back what this writer keeps, mark the rest.
    let store = site.store();
    let keeps_all = match &site.config.storage {
        StorageConfig::S3(storage) => storage.keep_pushed.is_none(),
        StorageConfig::Local => true,
    };
    let mut all: Vec<Sha256> = named.all.into_iter().collect();
    all.sort();
    let (wanted, left): (Vec<Sha256>, Vec<Sha256>) = all
        .iter()
        .partition(|d| keeps_all || !named.payloads.contains_key(d));
    let missing: Vec<Sha256> = wanted
        .iter()
        .filter(|d| !store.has_bytes(d))
        .copied()
        .collect();
    store.restore(&missing, reporter)?;
    store.mark_dropped(&left)?;
    report.blobs = all.len();
    report.blobs_read_back = wanted.len();

    for (name, bytes) in &pulled.state {
        if let Some(path) = state::path(data, name) {
            write_atomic(&path, bytes, 0o644)?;
        }
    }
    // Under the bucket's IDs: the next push finds the trees it serves and switches nothing.
    for (key, id, manifest) in &pulled.trees {
        let set = match key.strip_prefix("apt/") {
            Some(name) => TreeSet::apt(data, name),
            None => TreeSet::area(data, key),
        };
        set.publish_as(id, &store, store.staging(), manifest, &Manifest::default())?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_tree_keys_a_push_writes_are_pulled() {
        for good in ["images", "apt/local", "apt/ubuntu-noble_2.0", "apt/g++"] {
            assert!(super::is_tree_key(good), "{good}");
        }
        for bad in [
            "apt/",
            "apt/..",
            "apt/../../etc",
            "apt/a/b",
            "snaps",
            "../images",
        ] {
            assert!(!super::is_tree_key(bad), "{bad}");
        }
    }
}
