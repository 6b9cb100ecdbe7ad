//! Mirroring a MAAS boot-image feed (`[images]`, part of `airlock sync`), curated mode.
//!
//! Every upstream document is checked against the configured keyring before it is read; the
//! selected products' newest versions are downloaded (size and SHA-256 checked while
//! streaming, resumable, each distinct file stored once); then new index and product
//! documents listing exactly what is stored are signed with the site key and published with
//! the files in one switch ([`super::publish`]). A failure anywhere leaves the previous stream
//! served.

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::Url;

use super::SimplestreamsError;
use super::custom::CustomImages;
use super::document::{self, Index, IndexEntry, Products};
use super::publish::{
    CONFIG_NOTE, Stream, UPSTREAM_NOTE, publish, publish_verbatim, published_upstream, trees,
};
use super::select::attributes;
use crate::config::{ImagesConfig, ImagesMode};
use crate::net::{Http, HttpOptions};
use crate::openpgp::{Keyring, SiteKey};
use crate::report::{Reporter, Unit};
use crate::site::Site;
use crate::storage::Sha256;
use crate::storage::history::{History, Run, RunKind};

/// Index and product documents: images.maas.io's largest product file is a few MB.
const DOCUMENT_LIMIT: u64 = 256 << 20;

/// What an images sync did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImagesReport {
    /// The upstream documents had not changed: no file was fetched.
    pub unchanged: bool,
    /// Products published, and how many of them are bootloaders.
    pub products: usize,
    pub bootloaders: usize,
    pub files: usize,
    pub downloaded_files: usize,
    pub downloaded_bytes: u64,
    pub reused_files: usize,
    /// Full fingerprint of the key whose signature was checked on the upstream index.
    pub signer: String,
}

pub async fn sync(
    site: &Site,
    jobs: Option<usize>,
    now: jiff::Timestamp,
    reporter: Arc<dyn Reporter>,
) -> Result<ImagesReport, SimplestreamsError> {
    let config = site
        .config
        .images
        .as_ref()
        .ok_or_else(|| SimplestreamsError::NotConfigured {
            config: site.config.path.clone(),
        })?;
    let _lock = site.lock(&*reporter)?;
    let key = site.signing_key()?;
    let keyring = Keyring::load(&config.keyring)?;
    let sync = &site.config.sync;
    let http = Http::new(HttpOptions {
        jobs: jobs.unwrap_or(sync.jobs),
        timeout: sync.timeout.0,
        retries: sync.retries,
        extra_roots: Vec::new(),
    })?;
    let base = Url::parse(&config.url).map_err(|e| SimplestreamsError::upstream(&config.url, e))?;
    let store = site.store();
    let trees = trees(site);
    let previous = trees.current()?.unwrap_or_default();

    // 1. The signed index and every products document it lists, each checked. A product
    // document can change while the index stays the same, so all of them decide whether
    // anything changed.
    let index_url = join(&base, &format!("{}.sjson", document::INDEX_PATH))?;
    let (index_text, signer, index_raw) = fetch_signed(&http, &keyring, &index_url).await?;
    // Verbatim streams serve the upstream's signed bytes: kept with their paths.
    let mut raw = vec![(format!("{}.sjson", document::INDEX_PATH), index_raw)];
    let index: Index = parse(&index_text, &index_url)?;
    if index.format != "index:1.0" {
        return Err(SimplestreamsError::upstream(
            &index_url,
            format!("format {:?}, expected \"index:1.0\"", index.format),
        ));
    }
    let task = reporter.start(
        "images: product files",
        Some(index.index.len() as u64),
        Unit::Items,
    );
    let mut upstream = index_text;
    let mut documents = Vec::new();
    for (content_id, entry) in &index.index {
        reporter.advance(task, 1);
        if entry.format != "products:1.0" {
            continue;
        }
        let url = join(&base, &entry.path)?;
        let (text, _, body) = fetch_signed(&http, &keyring, &url).await?;
        raw.push((entry.path.clone(), body));
        let products: Products = parse(&text, &url)?;
        if &products.content_id != content_id {
            return Err(SimplestreamsError::upstream(
                &url,
                format!(
                    "content_id {:?}, but the index lists it as {content_id:?}",
                    products.content_id
                ),
            ));
        }
        upstream.push_str(&text);
        documents.push((entry, url, products));
    }
    reporter.finish(task);
    let upstream_digest = Sha256::of(upstream.as_bytes()).to_hex();
    drop(upstream);
    let config_digest = config_digest(config, &key).to_hex();
    if previous.note(UPSTREAM_NOTE).next() == Some(upstream_digest.as_str())
        && previous.note(CONFIG_NOTE).next() == Some(config_digest.as_str())
    {
        trees.tidy(&previous)?;
        return Ok(ImagesReport {
            unchanged: true,
            signer,
            ..ImagesReport::default()
        });
    }

    // Everything the upstream documents list: what a verbatim stream must hold.
    let mut listed: BTreeMap<String, (Sha256, u64, Url)> = BTreeMap::new();
    if config.mode == ImagesMode::Verbatim {
        for (_, url, products) in &documents {
            let items = products
                .checked_items()
                .map_err(|e| SimplestreamsError::upstream(url, e))?;
            for (item, sha256) in items {
                listed.insert(
                    item.path.clone(),
                    (sha256, item.size, join(&base, &item.path)?),
                );
            }
        }
    }

    // 2. What to keep of each.
    let mut kept: Vec<(IndexEntry, Products)> = Vec::new();
    let mut files: BTreeMap<String, (Sha256, u64, Url)> = BTreeMap::new();
    let mut report = ImagesReport {
        signer,
        ..ImagesReport::default()
    };
    for (entry, url, products) in documents {
        let products = select(config, products, &base, &url, &mut files)?;
        if products.products.is_empty() {
            continue;
        }
        report.products += products.products.len();
        report.bootloaders += products
            .products
            .values()
            .filter(|p| p.is_bootloader())
            .count();
        kept.push((entry.clone(), products));
    }
    if config.mode == ImagesMode::Verbatim {
        let missing: Vec<&String> = listed.keys().filter(|p| !files.contains_key(*p)).collect();
        if !missing.is_empty() {
            let shown: Vec<&str> = missing.iter().take(10).map(|p| p.as_str()).collect();
            return Err(SimplestreamsError::Custom {
                what: format!("images in {}", site.config.path.display()),
                reason: format!(
                    "a verbatim stream serves the upstream's documents, which list {} files the selections, filters or keep leave out ({}{}); MAAS would get 404s. Mirror everything, or use mode = \"curated\"",
                    missing.len(),
                    shown.join(", "),
                    if missing.len() > shown.len() {
                        ", ..."
                    } else {
                        ""
                    }
                ),
            });
        }
        files = listed;
    }
    report.files = files.len();

    // 3. The files, from the store when it has them.
    let staging = Arc::new(store.staging());
    let wanted = files
        .values()
        .map(|(sha256, size, url)| (*sha256, *size, url.clone()));
    let filled = http
        .fill_store(&store, wanted, &staging, reporter.clone(), "images")
        .await?;
    report.downloaded_files = filled.downloaded_files;
    report.downloaded_bytes = filled.downloaded_bytes;
    report.reused_files = filled.reused_files;

    // 4. Documents listing exactly that (and the custom images), signed; one switch.
    let staging = Arc::try_unwrap(staging)
        .unwrap_or_else(|_| unreachable!("every download task has finished"));
    let files = files
        .into_iter()
        .map(|(path, (sha256, size, _))| (path, (sha256, size)))
        .collect();
    let same_selection = previous.note(CONFIG_NOTE).next() == Some(config_digest.as_str());
    let notes = vec![
        (UPSTREAM_NOTE.to_string(), upstream_digest),
        (CONFIG_NOTE.to_string(), config_digest),
    ];
    let custom = CustomImages::load(site)?;
    let added = if config.mode == ImagesMode::Verbatim {
        if !custom.images.is_empty() {
            return Err(SimplestreamsError::Custom {
                what: "custom images".into(),
                reason: "they cannot join a verbatim stream (its documents carry the upstream's signature): use mode = \"curated\", or remove them".into(),
            });
        }
        publish_verbatim(site, raw, files, notes, staging, &previous, now)?
    } else {
        let mut stream = Stream {
            documents: kept,
            files,
            notes,
        };
        custom.join(&mut stream, config.keep)?;
        publish(site, &key, stream, staging, &previous, now)?
    };
    let run = Run {
        source: "images".into(),
        kind: RunKind::first_when(!same_selection),
        at: now,
        bytes: added,
    };
    History::record_or_warn(site.data_dir(), run, &*reporter);
    Ok(report)
}

/// Keeps, of one products document, the selected products (every bootloader, whatever the
/// selections: MAAS imports all it is offered) and their newest `keep` versions, and the
/// items that pass the filters; records their files.
fn select(
    config: &ImagesConfig,
    mut products: Products,
    base: &Url,
    url: &Url,
    files: &mut BTreeMap<String, (Sha256, u64, Url)>,
) -> Result<Products, SimplestreamsError> {
    let content_id = products.content_id.clone();
    let mut kept = BTreeMap::new();
    for (name, mut product) in std::mem::take(&mut products.products) {
        let bootloader = product.is_bootloader();
        let wanted = bootloader
            || config.select.is_empty()
            || config.select.iter().any(|s| s.matches(&product));
        if !wanted {
            continue;
        }
        let newest: Vec<String> = product
            .versions
            .keys()
            .rev()
            .take(config.keep)
            .cloned()
            .collect();
        product.versions.retain(|v, _| newest.contains(v));
        let versions = std::mem::take(&mut product.versions);
        for (version_name, mut version) in versions {
            let items = std::mem::take(&mut version.items);
            for (item_name, item) in items {
                let passes = bootloader
                    || config.filters.iter().all(|f| {
                        f.matches(&attributes(
                            &content_id,
                            (&name, &product),
                            (&version_name, &version),
                            (&item_name, &item),
                        ))
                    });
                if passes {
                    version.items.insert(item_name, item);
                }
            }
            if version.items.is_empty() {
                continue;
            }
            for (item_name, item) in &version.items {
                let bad = |reason: String| {
                    SimplestreamsError::upstream(
                        url,
                        format!("{name} {version_name} item {item_name}: {reason}"),
                    )
                };
                let sha256 = item.checked().map_err(bad)?;
                let item_url = join(base, &item.path)?;
                match files.get(&item.path) {
                    Some((other, _, _)) if *other != sha256 => {
                        return Err(bad(format!(
                            "{} is listed with two contents ({other} and {sha256})",
                            item.path
                        )));
                    }
                    Some(_) => {}
                    None => {
                        files.insert(item.path.clone(), (sha256, item.size, item_url));
                    }
                }
            }
            product.versions.insert(version_name, version);
        }
        if !product.versions.is_empty() {
            kept.insert(name, product);
        }
    }
    products.products = kept;
    Ok(products)
}

/// Fetches a clearsigned document and checks it; returns the signed text, the signer and
/// the document as served.
pub(crate) async fn fetch_signed(
    http: &Http,
    keyring: &Keyring,
    url: &Url,
) -> Result<(String, String, bytes::Bytes), SimplestreamsError> {
    let body = http.get_small(url, DOCUMENT_LIMIT).await?.ok_or_else(|| {
        SimplestreamsError::upstream(url, "not found (is the URL a simplestreams mirror root?)")
    })?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| SimplestreamsError::upstream(url, "not UTF-8 text"))?;
    if !text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----") {
        return Err(SimplestreamsError::upstream(
            url,
            "not clearsigned: every document of the stream must carry the upstream's signature",
        ));
    }
    let verified = keyring.verify_cleartext(text, url.as_str())?;
    Ok((verified.text, verified.signer, body))
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    text: &str,
    url: &Url,
) -> Result<T, SimplestreamsError> {
    serde_json::from_str(text).map_err(|source| SimplestreamsError::Document {
        url: url.to_string(),
        source,
    })
}

fn join(base: &Url, path: &str) -> Result<Url, SimplestreamsError> {
    crate::storage::tree::check_relative_path(path)
        .map_err(|e| SimplestreamsError::upstream(base, e))?;
    base.join(path)
        .map_err(|source| SimplestreamsError::BadPath {
            url: base.to_string(),
            path: path.to_string(),
            source,
        })
}

/// Everything in the config that decides what is published, besides the upstream.
fn config_digest(config: &ImagesConfig, key: &SiteKey) -> Sha256 {
    let filters: Vec<String> = config.filters.iter().map(|f| f.to_string()).collect();
    let text = format!(
        "{}|{:?}|{}|{:?}|{:?}|{}",
        config.url,
        config.keyring,
        config.keep,
        config.select,
        filters,
        key.fingerprint()
    );
    Sha256::of(text.as_bytes())
}

/// One product of the published stream, for `airlock images list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListedProduct {
    pub name: String,
    pub versions: Vec<String>,
    pub files: usize,
    pub bytes: u64,
    pub custom: bool,
}

/// The products of the published stream: mirrored ones, then custom ones.
pub fn list(site: &Site) -> Result<Vec<ListedProduct>, SimplestreamsError> {
    let previous = trees(site).current()?.unwrap_or_default();
    let upstream = published_upstream(site, &previous)?;
    let keep = site.config.images.as_ref().map_or(1, |c| c.keep);
    let custom = CustomImages::load(site)?.documents(keep);
    let mut out = Vec::new();
    for (documents, is_custom) in [(upstream.documents, false), (custom, true)] {
        for (_, products) in documents {
            for (name, product) in products.products {
                let items: Vec<&document::Item> = product
                    .versions
                    .values()
                    .flat_map(|v| v.items.values())
                    .collect();
                out.push(ListedProduct {
                    name,
                    versions: product.versions.keys().cloned().collect(),
                    files: items.len(),
                    bytes: items.iter().map(|i| i.size).sum(),
                    custom: is_custom,
                });
            }
        }
    }
    Ok(out)
}
