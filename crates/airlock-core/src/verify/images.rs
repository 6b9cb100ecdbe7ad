//! The image part of `airlock verify`, as a MAAS import reads the stream: index.sjson and
//! every product file signed by the keyring MAAS is given, the newest version of every
//! product listing items with a checked digest and path, bootloaders present, and items
//! served whole (a random sample, or all with `--full`).

use reqwest::Url;

use super::{Failure, Findings, Report, Run};
use crate::config::ImagesMode;
use crate::hint::Chain;
use crate::net::{Checksum, Http};
use crate::openpgp::Keyring;
use crate::simplestreams::document::{Index, Products};
use crate::site::Site;

const AREA: &str = "images";

/// A clearsigned JSON document, checked with `keyring` and parsed.
async fn signed<T: serde::de::DeserializeOwned>(
    http: &Http,
    keyring: &Keyring,
    url: &Url,
) -> Result<T, String> {
    let bytes = http
        .get_small(url, 256 << 20)
        .await
        .map_err(|e| Chain(&e).to_string())?
        .ok_or("404 Not Found")?;
    let text = std::str::from_utf8(&bytes).map_err(|_| "not UTF-8 text".to_string())?;
    let verified = keyring
        .verify_cleartext(text, url.as_str())
        .map_err(|e| Chain(&e).to_string())?;
    serde_json::from_str(&verified.text)
        .map_err(|e| format!("not a simplestreams document MAAS reads: {e}"))
}

pub(super) async fn check(site: &Site, run: &Run<'_>, report: &mut Report) {
    let (http, base, depth) = (run.http, run.base, run.depth);
    let Some(config) = &site.config.images else {
        return;
    };
    if !site.data_dir().join("public/images").exists() {
        return;
    }
    // MAAS reads the keyring file it is given as binary (keyring_filename): an armored one
    // makes every import fail.
    if config.mode == ImagesMode::Verbatim {
        let armored: Vec<Failure> = config
            .keyring
            .iter()
            .filter(|k| std::fs::read(k).is_ok_and(|b| b.starts_with(b"-----BEGIN PGP")))
            .map(|k| {
                Failure::new(
                    AREA,
                    k.display().to_string(),
                    "a binary keyring, as MAAS reads it",
                    format!(
                        "armored text: give MAAS `gpg --dearmor < {0} > {0}.gpg`",
                        k.display()
                    ),
                )
            })
            .collect();
        report.area("images keyring", config.keyring.len(), armored, Vec::new());
    }
    let keyring = match config.mode {
        ImagesMode::Curated => site
            .signing_key()
            .map(|k| Keyring::new(vec![k.public_key().clone()]))
            .map_err(|e| Chain(&e).to_string()),
        ImagesMode::Verbatim => Keyring::load(&config.keyring).map_err(|e| Chain(&e).to_string()),
    };
    let keyring = match keyring {
        Ok(k) => k,
        Err(e) => {
            report.broken(AREA, "the keyring given to MAAS", "readable", e);
            return;
        }
    };
    let Ok(root) = base.join("images/") else {
        return;
    };
    let index_url = root
        .join("streams/v1/index.sjson")
        .expect("a plain path joins");
    let mut findings = Findings::new(AREA);
    findings.count();
    let index: Index = match signed(http, &keyring, &index_url).await {
        Ok(i) => i,
        Err(e) => {
            report.broken(AREA, index_url.as_str(), "a signed index", e);
            return;
        }
    };
    let mut items = Vec::new();
    let mut bootloaders = 0;
    for entry in index.index.values() {
        let Ok(url) = root.join(&entry.path) else {
            continue;
        };
        findings.count();
        let products: Products = match signed(http, &keyring, &url).await {
            Ok(p) => p,
            Err(e) => {
                findings.fail(url.as_str(), "a signed products document", e);
                continue;
            }
        };
        for (name, product) in &products.products {
            bootloaders += usize::from(product.is_bootloader());
            let Some((version, newest)) = product.versions.iter().next_back() else {
                findings.fail(
                    format!("{} {name}", url.as_str()),
                    "at least one version",
                    "none",
                );
                continue;
            };
            if newest.items.is_empty() {
                findings.fail(format!("{name} {version}"), "items", "none");
            }
            for (item_name, item) in &newest.items {
                match item.checked() {
                    Ok(sha256) => items.push((
                        format!("{name} {version} {item_name}"),
                        item.path.clone(),
                        item.size,
                        sha256,
                    )),
                    Err(e) => findings.fail(
                        format!("{name} {version} {item_name}"),
                        "an item MAAS can fetch",
                        e,
                    ),
                }
            }
        }
    }
    findings.count();
    if bootloaders == 0 {
        findings.fail(
            index_url.as_str(),
            "the bootloader products MAAS needs",
            "none in the stream",
        );
    }
    depth.sample(&mut items);
    let files = items
        .into_iter()
        .filter_map(|(what, path, size, sha256)| {
            let url = root.join(&path).ok()?;
            Some((
                format!("{what} ({url})"),
                url,
                size,
                Checksum::Sha256(sha256),
            ))
        })
        .collect();
    findings.served_whole(run, files, "image items").await;
    findings.report(report);
}
