//! Custom and non-Ubuntu images (`airlock images add`): products in MAAS's `<os>-bases` shape,
//! published in the curated stream next to the mirrored ones.
//!
//! MAAS 3.8 takes a single-file product only as a `root-tgz` item plus a `manifest` item, so
//! only `tgz` images go into the stream; for the others the site prints the
//! `maas boot-resources create` command that uploads them instead.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::SimplestreamsError;
use super::document::{IndexEntry, Item, Product, Products, Version};
use super::publish::{self, CUSTOM_CONTENT_PREFIX, Stream};
use crate::site::Site;
use crate::storage::StorageError;
use crate::storage::write_atomic;

/// Filetypes MAAS knows (`boot-resources create filetype=`); only `tgz` fits a stream.
pub const FILETYPES: &[&str] = &[
    "tgz", "tbz", "txz", "ddtgz", "ddtbz", "ddtxz", "ddtar", "ddbz2", "ddgz", "ddxz", "ddraw",
];

/// One version of one custom image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomImage {
    pub os: String,
    pub release: String,
    pub arch: String,
    pub subarch: String,
    pub title: String,
    pub label: String,
    pub support_eol: String,
    /// `YYYYMMDD_NN`.
    pub version: String,
    pub sha256: String,
    pub size: u64,
    pub manifest_sha256: String,
    pub manifest_size: u64,
}

impl CustomImage {
    pub fn product_name(&self) -> String {
        format!(
            "io.airlock.custom.{}:{}-bases:{}:{}",
            self.label, self.os, self.release, self.arch
        )
    }

    fn content_id(&self) -> String {
        format!(
            "{CUSTOM_CONTENT_PREFIX}{}:{}-bases-download",
            self.label, self.os
        )
    }

    fn dir(&self) -> String {
        format!(
            "custom/{}/{}/{}/{}",
            self.os, self.release, self.arch, self.version
        )
    }
}

/// What the user says of an image being added.
#[derive(Debug, Clone)]
pub struct NewImage {
    pub os: String,
    pub release: String,
    pub arch: String,
    pub subarch: String,
    pub title: String,
    pub label: String,
    pub support_eol: Option<String>,
    pub filetype: String,
    pub file: PathBuf,
    pub manifest: Option<PathBuf>,
}

/// The custom images of a site (`data/state/images/custom.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CustomImages {
    pub images: Vec<CustomImage>,
}

impl CustomImages {
    pub fn path(site: &Site) -> PathBuf {
        site.data_dir().join("state/images/custom.json")
    }

    pub fn load(site: &Site) -> Result<CustomImages, SimplestreamsError> {
        Ok(crate::storage::load_json(&Self::path(site))?)
    }

    fn save(&self, site: &Site) -> Result<(), SimplestreamsError> {
        Ok(crate::storage::save_json(&Self::path(site), self)?)
    }

    /// Refuses a custom image whose os and release a stream product also has: MAAS would
    /// see two resources of one name.
    fn check_collisions(
        &self,
        upstream: &[(IndexEntry, Products)],
    ) -> Result<(), SimplestreamsError> {
        for image in &self.images {
            for (_, products) in upstream {
                for (name, product) in &products.products {
                    if product.field("os") == Some(image.os.as_str())
                        && (product.field("release") == Some(image.release.as_str())
                            || product.field("version") == Some(image.release.as_str()))
                    {
                        return Err(SimplestreamsError::Custom {
                            what: format!("{}/{}", image.os, image.release),
                            reason: format!(
                                "the upstream stream has {name} with the same os and release; MAAS would see two {}/{} images (choose another release name)",
                                image.os, image.release
                            ),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Joins these images, their newest `keep` versions, to `stream`.
    pub(super) fn join(&self, stream: &mut Stream, keep: usize) -> Result<(), SimplestreamsError> {
        self.check_collisions(&stream.documents)?;
        for (entry, products) in self.documents(keep) {
            stream.add_document(entry, products)?;
        }
        Ok(())
    }

    /// One products document per os (one content id per product shape, as MAAS 3.8 wants),
    /// with the newest `keep` versions of each image.
    pub fn documents(&self, keep: usize) -> Vec<(IndexEntry, Products)> {
        let mut by_content: BTreeMap<String, BTreeMap<String, Product>> = BTreeMap::new();
        for image in &self.images {
            let products = by_content.entry(image.content_id()).or_default();
            let product = products
                .entry(image.product_name())
                .or_insert_with(|| Product {
                    versions: BTreeMap::new(),
                    fields: product_fields(image),
                });
            product
                .versions
                .insert(image.version.clone(), version(image));
        }
        by_content
            .into_iter()
            .map(|(content_id, mut products)| {
                for product in products.values_mut() {
                    while product.versions.len() > keep {
                        product.versions.pop_first();
                    }
                }
                let entry = IndexEntry {
                    datatype: "image-ids".into(),
                    format: "products:1.0".into(),
                    path: String::new(),
                    products: Vec::new(),
                    updated: None,
                    extra: Default::default(),
                };
                let document = Products {
                    content_id,
                    datatype: "image-ids".into(),
                    format: "products:1.0".into(),
                    updated: None,
                    products,
                    extra: Default::default(),
                };
                (entry, document)
            })
            .collect()
    }
}

fn product_fields(image: &CustomImage) -> serde_json::Map<String, Value> {
    let fields = json!({
        "arch": image.arch, "os": image.os, "release": image.release, "version": image.release,
        "release_title": image.title, "release_codename": image.release,
        "subarch": image.subarch, "subarches": image.subarch, "label": image.label,
        "support_eol": image.support_eol,
    });
    match fields {
        Value::Object(map) => map,
        _ => unreachable!("an object"),
    }
}

fn version(image: &CustomImage) -> Version {
    let dir = image.dir();
    let item = |ftype: &str, path: String, sha256: &str, size: u64| Item {
        ftype: ftype.into(),
        path,
        sha256: sha256.into(),
        size,
        fields: Default::default(),
    };
    Version {
        items: BTreeMap::from([
            (
                "root-tgz".to_string(),
                item(
                    "root-tgz",
                    format!("{dir}/root-tgz"),
                    &image.sha256,
                    image.size,
                ),
            ),
            (
                "manifest".to_string(),
                item(
                    "manifest",
                    format!("{dir}/root-tgz.manifest"),
                    &image.manifest_sha256,
                    image.manifest_size,
                ),
            ),
        ]),
        fields: Default::default(),
    }
}

/// Adds an image (stored, checked to be the declared filetype) and republishes the stream.
pub fn add(
    site: &Site,
    new: NewImage,
    now: jiff::Timestamp,
    reporter: &dyn crate::report::Reporter,
) -> Result<CustomImage, SimplestreamsError> {
    let custom_err = |reason: String| SimplestreamsError::Custom {
        what: new.file.display().to_string(),
        reason,
    };
    if new.filetype != "tgz" {
        return Err(SimplestreamsError::NotStreamable {
            filetype: new.filetype.clone(),
        });
    }
    for (what, value) in [
        ("os", &new.os),
        ("release", &new.release),
        ("arch", &new.arch),
        ("subarch", &new.subarch),
        ("label", &new.label),
    ] {
        let ok = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            && !value.starts_with('.');
        if !ok {
            return Err(custom_err(format!(
                "{what} {value:?} must be letters, digits, '.', '_' or '-'"
            )));
        }
    }
    refuse_verbatim(site)?;
    let _lock = site.lock(reporter)?;
    let store = site.store();
    let staging = store.staging();
    let listing = tar_listing(&new.file)?;
    let mut file = std::fs::File::open(&new.file).map_err(|source| StorageError::Read {
        path: new.file.clone(),
        source,
    })?;
    let staged = staging.add_reader(&new.file, &mut file)?;
    let manifest = match &new.manifest {
        Some(path) => std::fs::read(path).map_err(|source| StorageError::Read {
            path: path.clone(),
            source,
        })?,
        None => listing.into_bytes(),
    };
    let manifest_sha256 = staging.add_bytes(&manifest)?;

    let mut images = CustomImages::load(site)?;
    let date = now.strftime("%Y%m%d").to_string();
    let same = |i: &CustomImage| {
        i.os == new.os && i.release == new.release && i.arch == new.arch && i.label == new.label
    };
    let serial = images
        .images
        .iter()
        .filter(|i| same(i) && i.version.starts_with(&date))
        .count()
        + 1;
    let image = CustomImage {
        os: new.os.clone(),
        release: new.release.clone(),
        arch: new.arch.clone(),
        subarch: new.subarch.clone(),
        title: new.title.clone(),
        label: new.label.clone(),
        support_eol: new
            .support_eol
            .clone()
            .unwrap_or_else(|| "2099-12-31".into()),
        version: format!("{date}_{serial:02}"),
        sha256: staged.hashes.sha256.to_hex(),
        size: staged.hashes.size,
        manifest_sha256: manifest_sha256.to_hex(),
        manifest_size: manifest.len() as u64,
    };
    images.images.push(image.clone());
    // Versions beyond `keep` are no longer published: forget them.
    let keep = site.config.images.as_ref().map_or(1, |c| c.keep);
    let mut versions: Vec<String> = images
        .images
        .iter()
        .filter(|i| same(i))
        .map(|i| i.version.clone())
        .collect();
    versions.sort();
    let dropped: Vec<String> = versions.iter().rev().skip(keep).cloned().collect();
    images
        .images
        .retain(|i| !(same(i) && dropped.contains(&i.version)));
    republish(site, &images, staging, now)?;
    Ok(image)
}

/// Removes a custom image (every version, or one) and republishes the stream.
pub fn remove(
    site: &Site,
    os: &str,
    release: &str,
    arch: Option<&str>,
    version: Option<&str>,
    now: jiff::Timestamp,
    reporter: &dyn crate::report::Reporter,
) -> Result<Vec<CustomImage>, SimplestreamsError> {
    refuse_verbatim(site)?;
    let _lock = site.lock(reporter)?;
    let mut images = CustomImages::load(site)?;
    let (removed, kept): (Vec<CustomImage>, Vec<CustomImage>) =
        images.images.into_iter().partition(|i| {
            i.os == os
                && i.release == release
                && arch.is_none_or(|a| i.arch == a)
                && version.is_none_or(|v| i.version == v)
        });
    if removed.is_empty() {
        return Err(SimplestreamsError::Custom {
            what: format!("{os}/{release}"),
            reason: "no such custom image (airlock images list shows them)".into(),
        });
    }
    images.images = kept;
    republish(site, &images, site.store().staging(), now)?;
    Ok(removed)
}

/// A verbatim stream is the upstream's signed documents: nothing can be added to them.
fn refuse_verbatim(site: &Site) -> Result<(), SimplestreamsError> {
    match &site.config.images {
        Some(c) if c.mode == crate::config::ImagesMode::Verbatim => Err(SimplestreamsError::Custom {
            what: "custom images".into(),
            reason: "the image stream is verbatim (the upstream's signed documents): custom images need mode = \"curated\"".into(),
        }),
        _ => Ok(()),
    }
}

/// Publishes the stream as it is plus `images`, then records `images` (a failed publish
/// leaves both the stream and the record as they were).
fn republish(
    site: &Site,
    images: &CustomImages,
    staging: crate::storage::Staging,
    now: jiff::Timestamp,
) -> Result<(), SimplestreamsError> {
    let key = site.signing_key()?;
    let trees = publish::trees(site);
    let previous = trees.current()?.unwrap_or_default();
    let mut stream = publish::published_upstream(site, &previous)?;
    let state = CustomImages::path(site);
    let before = std::fs::read(&state).ok();
    images.save(site)?;
    let keep = site.config.images.as_ref().map_or(1, |c| c.keep);
    let result = images
        .join(&mut stream, keep)
        .and_then(|()| publish::publish(site, &key, stream, staging, &previous, now))
        .map(drop);
    if result.is_err() {
        match before {
            Some(bytes) => write_atomic(&state, &bytes, 0o644)?,
            None => {
                let _ = std::fs::remove_file(&state);
            }
        }
    }
    result
}

/// The paths of a gzip-compressed tar, one per line: the generated manifest, and the proof
/// that the file is what `tgz` says.
fn tar_listing(path: &Path) -> Result<String, SimplestreamsError> {
    let refused = |reason: &str| SimplestreamsError::Custom {
        what: path.display().to_string(),
        reason: reason.to_string(),
    };
    let not_tgz = |source| SimplestreamsError::NotTgz {
        path: path.to_path_buf(),
        source,
    };
    let open = || {
        std::fs::File::open(path).map_err(|source| StorageError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let file = open()?;
    let mut magic = [0u8; 2];
    (&file)
        .take(2)
        .read_exact(&mut magic)
        .map_err(|_| refused("not a tgz: too short to be gzip"))?;
    if magic != [0x1f, 0x8b] {
        return Err(refused(
            "not a tgz: not gzip-compressed (filetype says tgz)",
        ));
    }
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(open()?));
    let mut listing = String::new();
    let mut count = 0;
    for entry in archive.entries().map_err(not_tgz)? {
        let entry = entry.map_err(not_tgz)?;
        let name = entry.path().map_err(not_tgz)?;
        listing.push_str(&name.to_string_lossy());
        listing.push('\n');
        count += 1;
    }
    if count == 0 {
        return Err(refused("not a tgz: the archive is empty"));
    }
    Ok(listing)
}
