//! What the data folder holds, read once per change: the published trees (their manifests
//! and Release files, the Packages indices counted), the image stream's documents, the snap
//! catalog, the store's size, the sync history and the last verify run.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::model::{
    AptContent, AptKind, BundleOrigin, ChannelStatus, ImageProduct, ImageStream, Level, Origin,
    PackageCount, Problem, ProductKind, SnapStatus, SnapStore, SuiteStatus,
};
use crate::apt::index::{count_paragraphs, decompressed};
use crate::apt::release::ReleaseFile;
use crate::bundle::import::{ImportedBundle, imported_bundles, imported_from};
use crate::config::MirrorMode;
use crate::hint::Chain;
use crate::simplestreams::document::{Index, Products};
use crate::site::Site;
use crate::snap::catalog::Catalog;
use crate::storage::history::{Estimate, History};
use crate::storage::verify_run::LastRun;
use crate::storage::{ContentStore, Manifest, TreeSet, read_limited};

/// The most read of one Release or stream document, and of one Packages index uncompressed.
const DOCUMENT_LIMIT: u64 = 256 << 20;
const PACKAGES_LIMIT: u64 = 4 << 30;

/// Product names of custom images (`airlock images add`).
const CUSTOM_PRODUCT: &str = "io.airlock.custom.";

/// The part of the status that changes only when something is published, synced, imported
/// or verified.
#[derive(Debug, Default)]
pub struct Published {
    pub apt: Vec<AptContent>,
    pub images: Option<ImageStream>,
    pub snaps: Option<SnapStore>,
    pub store_bytes: u64,
    pub store_blobs: u64,
    /// Blobs pushed to the bucket and dropped here (`[storage] keep_pushed`).
    pub store_dropped_blobs: u64,
    pub estimate: Option<Estimate>,
    pub verify: Option<LastRun>,
    /// What could not be read.
    pub problems: Vec<Problem>,
}

/// Reads everything; what cannot be read becomes a problem, never a failure.
pub fn published(site: &Site) -> Published {
    let data = site.data_dir();
    let mut out = Published::default();
    let mut problems = Vec::new();
    let mut unreadable = |what: &str, e: &dyn std::fmt::Display| {
        problems.push(Problem {
            level: Level::Error,
            what: format!("{what} cannot be read: {e}"),
            action: "`airlock verify --offline` names what is damaged; a publish or sync writes it again"
                .into(),
        })
    };
    let history = History::load(data).unwrap_or_else(|e| {
        unreadable("the sync history", &Chain(&e));
        History::default()
    });
    let bundles = imported_bundles(site).unwrap_or_else(|e| {
        unreadable("the imported bundles", &Chain(&e));
        Vec::new()
    });
    let origins = Origins {
        site,
        bundles: &bundles,
        history: &history,
    };
    for name in TreeSet::published_apt_names(data) {
        match apt_content(&origins, &name) {
            Ok(Some(content)) => out.apt.push(content),
            Ok(None) => {}
            Err(e) => unreadable(&format!("apt/{name}"), &e),
        }
    }
    match image_stream(&origins) {
        Ok(stream) => out.images = stream,
        Err(e) => unreadable("the image stream", &e),
    }
    match snap_store(site) {
        Ok(store) => out.snaps = store,
        Err(e) => unreadable("the snap catalog", &e),
    }
    (out.store_blobs, out.store_bytes) = store_size(data);
    out.store_dropped_blobs = ContentStore::new(data)
        .dropped()
        .map_or(0, |d| d.len() as u64);
    match site.next_sync_estimate() {
        Ok(estimate) => out.estimate = estimate,
        Err(e) => unreadable("the sync history", &Chain(&e)),
    }
    match LastRun::load(data) {
        Ok(run) => out.verify = run,
        Err(e) => unreadable("the last verify run", &Chain(&e)),
    }
    out.problems = problems;
    out
}

/// What tells where a content came from.
struct Origins<'a> {
    site: &'a Site,
    bundles: &'a [ImportedBundle],
    history: &'a History,
}

impl Origins<'_> {
    fn bundle(&self, manifest: &Manifest) -> Option<BundleOrigin> {
        let id = imported_from(manifest)?;
        let bundle = self.bundles.iter().find(|b| b.id == id);
        Some(BundleOrigin {
            id: id.to_string(),
            exporter: bundle.map(|b| b.exporter.clone()),
            created: bundle.map(|b| b.created.clone()),
            imported: bundle.map(|b| b.imported.clone()),
        })
    }

    fn last_import(bundle: &Option<BundleOrigin>) -> Option<jiff::Timestamp> {
        bundle.as_ref()?.imported.as_ref()?.parse().ok()
    }
}

/// When the tree served at `link` was switched in: the link's own time.
fn switched(link: &Path) -> Option<jiff::Timestamp> {
    let modified = std::fs::symlink_metadata(link).ok()?.modified().ok()?;
    jiff::Timestamp::try_from(modified).ok()
}

fn apt_content(origins: &Origins<'_>, name: &str) -> Result<Option<AptContent>, String> {
    let data = origins.site.data_dir();
    let Some(manifest) = TreeSet::apt(data, name)
        .current()
        .map_err(|e| Chain(&e).to_string())?
    else {
        return Ok(None);
    };
    let config = &origins.site.config;
    let mirror = config.mirror(name);
    let combined = config.apt.publish.iter().find(|p| p.name.as_str() == name);
    let kind = if mirror.is_some() || crate::apt::mirror::is_mirror_tree(&manifest) {
        AptKind::Mirror
    } else if combined.is_some() || crate::apt::combine::is_combined_tree(&manifest) {
        AptKind::Combined
    } else {
        AptKind::Repo
    };
    let bundle = origins.bundle(&manifest);
    let origin = Origin {
        upstream: mirror.map(|m| shown_url(&m.url)),
        inputs: combined
            .map(|p| {
                p.suites
                    .iter()
                    .flat_map(|(suite, sources)| {
                        sources.iter().map(move |s| format!("{suite} <- {s}"))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        bundle: bundle.clone(),
    };
    let public = data.join("public/apt").join(name);
    let mut suites = Vec::new();
    for path in manifest.entries.keys() {
        let Some(suite) = path
            .strip_prefix("dists/")
            .and_then(|p| p.strip_suffix("/Release"))
            .filter(|s| !s.contains('/'))
        else {
            continue;
        };
        suites.push(suite_status(&public.join("dists").join(suite), suite)?);
    }
    let source = format!("apt/{name}");
    Ok(Some(AptContent {
        kind,
        name: name.to_string(),
        published: switched(&public),
        last_sync: origins.history.last(|s| s == source),
        last_import: Origins::last_import(&bundle),
        origin,
        suites,
        signed_by_upstream: mirror.is_some_and(|m| m.mode == MirrorMode::Verbatim),
        files: manifest.entries.len() as u64,
        bytes: manifest.entries.values().map(|e| e.size).sum(),
    }))
}

/// One suite, from its Release and the Packages indices it lists.
fn suite_status(dir: &Path, suite: &str) -> Result<SuiteStatus, String> {
    let release_path = dir.join("Release");
    let text = read_limited(&release_path, DOCUMENT_LIMIT, "a Release file")
        .map_err(|e| Chain(&e).to_string())?;
    let release = ReleaseFile::parse(&String::from_utf8_lossy(&text))
        .map_err(|e| format!("{}: {e}", release_path.display()))?;
    // One form of each index: the plain one when listed, else a compressed one.
    let mut indices: BTreeMap<(String, String), &str> = BTreeMap::new();
    for path in release.files.keys() {
        let Some((folder, form)) = path.rsplit_once('/') else {
            continue;
        };
        if !matches!(form, "Packages" | "Packages.xz" | "Packages.gz") {
            continue;
        }
        let Some((component, arch)) = folder.rsplit_once("/binary-") else {
            continue;
        };
        let key = (component.to_string(), arch.to_string());
        let better =
            |old: &str| form == "Packages" || (form == "Packages.xz" && old.ends_with(".gz"));
        match indices.get(&key) {
            Some(old) if !better(old) => {}
            _ => {
                indices.insert(key, path.as_str());
            }
        }
    }
    let mut packages = Vec::new();
    for ((component, architecture), path) in indices {
        let local = dir.join(path);
        // A Release may list indices it does not ship (an empty form): counted when present.
        if !local.exists() {
            continue;
        }
        packages.push(PackageCount {
            packages: count_packages(&local)?,
            component,
            architecture,
        });
    }
    Ok(SuiteStatus {
        suite: suite.to_string(),
        codename: release.codename,
        components: release.components,
        architectures: release.architectures,
        date: release.date,
        valid_until: release.valid_until,
        seconds_left: None,
        packages,
    })
}

/// The stanzas of a Packages index, plain or compressed: counted as they stream past, no
/// record kept.
fn count_packages(path: &Path) -> Result<u64, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut limited = decompressed(&path.to_string_lossy(), file).take(PACKAGES_LIMIT);
    let stanzas = count_paragraphs(&mut limited).map_err(|e| format!("{}: {e}", path.display()))?;
    // A count of what fitted under the limit would be a wrong figure shown as a right one.
    if limited.limit() == 0 {
        return Err(format!(
            "{}: more than {} GiB uncompressed, not counted",
            path.display(),
            PACKAGES_LIMIT >> 30
        ));
    }
    Ok(stanzas)
}

fn image_stream(origins: &Origins<'_>) -> Result<Option<ImageStream>, String> {
    let data = origins.site.data_dir();
    let Some(manifest) = TreeSet::area(data, "images")
        .current()
        .map_err(|e| Chain(&e).to_string())?
    else {
        return Ok(None);
    };
    let public = data.join("public/images");
    let index: Index = document(&public, &manifest, "streams/v1/index")?;
    let mut products = Vec::new();
    for entry in index.index.values() {
        let Some(stem) = entry.path.strip_suffix(".json") else {
            continue;
        };
        let document: Products = document(&public, &manifest, stem)?;
        for (name, product) in &document.products {
            let field = |f: &str| product.field(f).unwrap_or_default().to_string();
            let kind = if name.starts_with(CUSTOM_PRODUCT) {
                ProductKind::Custom
            } else if product.is_bootloader() {
                ProductKind::Bootloader
            } else {
                ProductKind::Image
            };
            let newest = product.versions.iter().next_back();
            products.push(ImageProduct {
                name: name.clone(),
                kind,
                os: field("os"),
                release: field("release"),
                arch: field("arch"),
                subarch: product.field("subarch").map(str::to_string),
                newest_version: newest.map(|(v, _)| v.clone()),
                versions: product.versions.len() as u64,
                bytes: newest.map_or(0, |(_, v)| v.items.values().map(|i| i.size).sum()),
            });
        }
    }
    products.sort_by(|a, b| {
        (a.kind as u8, &a.os, &a.release, &a.arch, &a.name).cmp(&(
            b.kind as u8,
            &b.os,
            &b.release,
            &b.arch,
            &b.name,
        ))
    });
    let bundle = origins.bundle(&manifest);
    Ok(Some(ImageStream {
        origin: Origin {
            upstream: origins
                .site
                .config
                .images
                .as_ref()
                .map(|i| shown_url(&i.url)),
            bundle: bundle.clone(),
            inputs: Vec::new(),
        },
        published: switched(&public),
        last_sync: origins.history.last(|s| s == "images"),
        last_import: Origins::last_import(&bundle),
        products,
        files: manifest.entries.len() as u64,
        bytes: manifest.entries.values().map(|e| e.size).sum(),
    }))
}

/// A stream document `STEM.json`, or the text of its clearsigned form `STEM.sjson` (a
/// verbatim stream may ship only that); the signature is verify's business.
fn document<T: serde::de::DeserializeOwned>(
    public: &Path,
    manifest: &Manifest,
    stem: &str,
) -> Result<T, String> {
    let plain = format!("{stem}.json");
    let (path, signed) = if manifest.entries.contains_key(&plain) {
        (public.join(&plain), false)
    } else {
        (public.join(format!("{stem}.sjson")), true)
    };
    let bytes = read_limited(&path, DOCUMENT_LIMIT, "a stream document")
        .map_err(|e| Chain(&e).to_string())?;
    let text = String::from_utf8_lossy(&bytes);
    let json = if signed {
        // The signature was checked when the stream was mirrored or published; only its text.
        crate::openpgp::cleartext_body(&text, "a stream document")
            .map_err(|e| format!("{}: {}", path.display(), Chain(&e)))?
    } else {
        text.to_string()
    };
    serde_json::from_str(&json).map_err(|e| format!("{}: {e}", path.display()))
}

fn snap_store(site: &Site) -> Result<Option<SnapStore>, String> {
    let data = site.data_dir();
    let catalog = Catalog::load(data).map_err(|e| Chain(&e).to_string())?;
    if catalog.snaps.is_empty() {
        return Ok(None);
    }
    let snaps: Vec<SnapStatus> = catalog
        .snaps
        .iter()
        .map(|(name, entry)| {
            let version = |revision: u64| {
                entry
                    .revisions
                    .get(&revision)
                    .map_or(String::new(), |r| r.meta.version.clone())
            };
            SnapStatus {
                name: name.clone(),
                publisher: entry.publisher.username.clone(),
                revisions: entry.revisions.keys().copied().collect(),
                channels: entry
                    .releases
                    .iter()
                    .map(|r| ChannelStatus {
                        channel: r.channel(),
                        architecture: r.architecture.clone(),
                        revision: r.revision,
                        version: version(r.revision),
                    })
                    .collect(),
                bytes: entry.revisions.values().map(|r| r.size).sum(),
            }
        })
        .collect();
    Ok(Some(SnapStore {
        last_import: switched(&Catalog::path(data)),
        bytes: snaps.iter().map(|s| s.bytes).sum(),
        snaps,
    }))
}

/// The blobs of the content store and their bytes (a walk of its folders: done only when
/// something changed).
fn store_size(data: &Path) -> (u64, u64) {
    let (mut blobs, mut bytes) = (0, 0);
    for file in ContentStore::new(data).files().flatten() {
        if let Ok(meta) = file.metadata() {
            blobs += 1;
            bytes += meta.len();
        }
    }
    (blobs, bytes)
}

/// An upstream URL as the status shows it, to anyone who can reach the server: without the
/// user and password a config may carry in it.
fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_are_shown_without_credentials() {
        assert_eq!(
            shown_url("http://user:secret@mirror.lan/ubuntu/"),
            "http://mirror.lan/ubuntu/"
        );
        assert_eq!(
            shown_url("https://token@images.lan/"),
            "https://images.lan/"
        );
        assert_eq!(
            shown_url("http://mirror.lan/ubuntu"),
            "http://mirror.lan/ubuntu"
        );
    }
}
