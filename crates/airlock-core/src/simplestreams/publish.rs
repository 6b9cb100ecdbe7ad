//! Publishing the image stream: the documents signed with the site key (or the upstream's
//! signed ones, verbatim) and the files they list, switched in one rename, served at
//! `/images/`. What `airlock sync` mirrors and `airlock images add` adds both end here.

use std::collections::BTreeMap;

use super::SimplestreamsError;
use super::document::{self, Index, IndexEntry, Products};
use crate::openpgp::SiteKey;
use crate::site::Site;
use crate::storage::{Manifest, Sha256, Staging, TreeSet};

pub(super) const UPSTREAM_NOTE: &str = "upstream-documents";
pub(super) const CONFIG_NOTE: &str = "images-config";
/// Content ids of custom products start with this: they are never upstream's.
pub(super) const CUSTOM_CONTENT_PREFIX: &str = "io.airlock.custom:";

fn is_custom(content_id: &str) -> bool {
    content_id.starts_with(CUSTOM_CONTENT_PREFIX)
}

/// The published tree of the image stream, served at `/images/`.
pub fn trees(site: &Site) -> TreeSet {
    TreeSet::area(site.data_dir(), "images")
}

/// Image files a publish drops stay for the site's grace period: a MAAS import that read
/// the previous documents can still fetch what they list. Documents (streams/) are replaced.
pub(crate) fn retain_files(
    site: &Site,
    manifest: &mut Manifest,
    previous: &Manifest,
    now: jiff::Timestamp,
) {
    let grace = site.config.site.grace.0.as_secs() as i64;
    manifest.retain_superseded(previous, now.as_second(), grace, |path| {
        !path.starts_with("streams/")
    });
}

/// The upstream's signed documents byte for byte, and every file they list, in one switch;
/// returns the bytes the store gained.
pub(super) fn publish_verbatim(
    site: &Site,
    documents: Vec<(String, bytes::Bytes)>,
    files: BTreeMap<String, (Sha256, u64)>,
    notes: Vec<(String, String)>,
    staging: Staging,
    previous: &Manifest,
    now: jiff::Timestamp,
) -> Result<u64, SimplestreamsError> {
    let mut manifest = Manifest {
        notes,
        ..Manifest::default()
    };
    for (path, (sha256, size)) in &files {
        manifest.add(path, *sha256, *size);
    }
    for (path, bytes) in documents {
        add(&staging, &mut manifest, &path, &bytes)?;
    }
    retain_files(site, &mut manifest, previous, now);
    Ok(trees(site).publish(&site.store(), staging, &manifest, previous)?)
}

/// What a published stream is made of, besides the custom images.
pub(super) struct Stream {
    /// The upstream's products documents, each cut to what is kept, with its index entry.
    pub documents: Vec<(IndexEntry, Products)>,
    /// Path → digest and size of every file they list.
    pub files: BTreeMap<String, (Sha256, u64)>,
    pub notes: Vec<(String, String)>,
}

impl Stream {
    /// Adds a products document and the files it lists.
    pub fn add_document(
        &mut self,
        entry: IndexEntry,
        products: Products,
    ) -> Result<(), SimplestreamsError> {
        for product in products.products.values() {
            for version in product.versions.values() {
                for item in version.items.values() {
                    let sha256 = item
                        .checked()
                        .map_err(|e| SimplestreamsError::upstream(&products.content_id, e))?;
                    self.files.insert(item.path.clone(), (sha256, item.size));
                }
            }
        }
        self.documents.push((entry, products));
        Ok(())
    }
}

/// Signs and publishes `stream` (the custom images joined to it), in one switch; returns the
/// bytes the store gained.
pub(super) fn publish(
    site: &Site,
    key: &SiteKey,
    stream: Stream,
    staging: Staging,
    previous: &Manifest,
    now: jiff::Timestamp,
) -> Result<u64, SimplestreamsError> {
    let mut manifest = Manifest {
        notes: stream.notes,
        ..Manifest::default()
    };
    for (path, (sha256, size)) in &stream.files {
        manifest.add(path, *sha256, *size);
    }
    let updated = document::updated(now);
    let mut index = Index {
        format: "index:1.0".into(),
        updated: Some(updated.clone()),
        index: BTreeMap::new(),
        extra: Default::default(),
    };
    for (entry, mut products) in stream.documents {
        products.updated = Some(updated.clone());
        let path = format!("streams/v1/{}.json", products.content_id);
        write_signed(
            &document::render(&products),
            &path,
            key,
            &staging,
            &mut manifest,
        )?;
        index.index.insert(
            products.content_id.clone(),
            IndexEntry {
                path,
                products: products.products.keys().cloned().collect(),
                updated: Some(updated.clone()),
                ..entry
            },
        );
    }
    // The signed index points at the signed product files, as simplestreams expects.
    let mut signed_index = index.clone();
    for entry in signed_index.index.values_mut() {
        entry.path = document::signed_path(&entry.path);
    }
    let index_json = document::render(&index);
    retain_files(site, &mut manifest, previous, now);
    let index_path = document::INDEX_PATH;
    add(
        &staging,
        &mut manifest,
        &format!("{index_path}.json"),
        index_json.as_bytes(),
    )?;
    let signature = key.sign_detached(index_json.as_bytes())?;
    add(
        &staging,
        &mut manifest,
        &format!("{index_path}.json.gpg"),
        signature.as_bytes(),
    )?;
    let signed = key.clearsign(&document::render(&signed_index))?;
    add(
        &staging,
        &mut manifest,
        &format!("{index_path}.sjson"),
        signed.as_bytes(),
    )?;
    Ok(trees(site).publish(&site.store(), staging, &manifest, previous)?)
}

/// Publishes a stream made here rather than mirrored (the demo's upstream): `documents`
/// signed with `key`, with `files` (path, bytes), which must be exactly what their items
/// list (size and SHA-256). Returns the bytes the store gained.
pub fn publish_made(
    site: &Site,
    key: &SiteKey,
    documents: Vec<Products>,
    files: Vec<(String, Vec<u8>)>,
    now: jiff::Timestamp,
    reporter: &dyn crate::report::Reporter,
) -> Result<u64, SimplestreamsError> {
    let _lock = site.lock(reporter)?;
    let trees = trees(site);
    let previous = trees.current()?.unwrap_or_default();
    let staging = site.store().staging();
    let mut stream = Stream {
        documents: Vec::new(),
        files: BTreeMap::new(),
        notes: Vec::new(),
    };
    for products in documents {
        let entry = IndexEntry {
            datatype: products.datatype.clone(),
            format: products.format.clone(),
            path: format!("streams/v1/{}.json", products.content_id),
            products: Vec::new(),
            updated: None,
            extra: Default::default(),
        };
        stream.add_document(entry, products)?;
    }
    let mut given = BTreeMap::new();
    for (path, bytes) in &files {
        given.insert(
            path.clone(),
            (staging.add_bytes(bytes)?, bytes.len() as u64),
        );
    }
    if given != stream.files {
        return Err(SimplestreamsError::Custom {
            what: "a stream made here".into(),
            reason: "its files are not exactly those its documents list".into(),
        });
    }
    publish(site, key, stream, staging, &previous, now)
}

/// The published stream without its custom images: what `images add` and `images remove`
/// republish around, without asking the upstream again.
pub(super) fn published_upstream(
    site: &Site,
    previous: &Manifest,
) -> Result<Stream, SimplestreamsError> {
    let store = site.store();
    let mut documents = Vec::new();
    let mut files = BTreeMap::new();
    let index = match previous
        .entries
        .get(&format!("{}.json", document::INDEX_PATH))
    {
        Some(entry) => {
            let text =
                std::fs::read_to_string(store.blob_path(&entry.sha256)).map_err(|source| {
                    crate::storage::StorageError::Read {
                        path: store.blob_path(&entry.sha256),
                        source,
                    }
                })?;
            serde_json::from_str::<Index>(&text)
                .map_err(|e| SimplestreamsError::upstream("the published index", e))?
        }
        None => {
            return Ok(Stream {
                documents,
                files,
                notes: Vec::new(),
            });
        }
    };
    for (content_id, entry) in index.index {
        if is_custom(&content_id) {
            continue;
        }
        let Some(blob) = previous.entries.get(&entry.path) else {
            continue;
        };
        let path = store.blob_path(&blob.sha256);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| crate::storage::StorageError::Read { path, source })?;
        let products: Products = serde_json::from_str(&text)
            .map_err(|e| SimplestreamsError::upstream(&entry.path, e))?;
        for product in products.products.values() {
            for version in product.versions.values() {
                for item in version.items.values() {
                    if let Some(file) = previous.entries.get(&item.path) {
                        files.insert(item.path.clone(), (file.sha256, file.size));
                    }
                }
            }
        }
        documents.push((entry, products));
    }
    // Kept, so that the next sync still knows the upstream is unchanged.
    let notes = previous
        .notes
        .iter()
        .filter(|(k, _)| k == UPSTREAM_NOTE || k == CONFIG_NOTE)
        .cloned()
        .collect();
    Ok(Stream {
        documents,
        files,
        notes,
    })
}

/// `PATH.json`, `PATH.json.gpg` (detached) and `PATH.sjson` (clearsigned) of one document.
fn write_signed(
    json: &str,
    path: &str,
    key: &SiteKey,
    staging: &Staging,
    manifest: &mut Manifest,
) -> Result<(), SimplestreamsError> {
    add(staging, manifest, path, json.as_bytes())?;
    let signature = key.sign_detached(json.as_bytes())?;
    add(
        staging,
        manifest,
        &format!("{path}.gpg"),
        signature.as_bytes(),
    )?;
    let signed = key.clearsign(json)?;
    add(
        staging,
        manifest,
        &document::signed_path(path),
        signed.as_bytes(),
    )?;
    Ok(())
}

fn add(
    staging: &Staging,
    manifest: &mut Manifest,
    path: &str,
    bytes: &[u8],
) -> Result<(), SimplestreamsError> {
    let sha256 = staging.add_bytes(bytes)?;
    manifest.add(path, sha256, bytes.len() as u64);
    Ok(())
}
