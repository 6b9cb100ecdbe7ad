//! Trees signed by the exporting site, re-signed by the importing one: clients of the air-gapped
//! site trust its key only.

use super::BundleError;
use crate::apt::publish::add_signed_release;
use crate::apt::release::{ReleaseFile, restamp};
use crate::openpgp::{SiteKey, cleartext_body};
use crate::storage::{ContentStore, Manifest, Staging, StorageError};

/// Every suite of an apt tree: the Release restamped (Date now, Valid-Until as `valid_for` says
/// or as long after now as the exporter gave it, Signed-By this key), then InRelease and
/// Release.gpg made again. The indices it lists are unchanged.
pub fn apt(
    content: &str,
    manifest: &mut Manifest,
    store: &ContentStore,
    staging: &Staging,
    key: &SiteKey,
    valid_for: Option<std::time::Duration>,
    now: jiff::Timestamp,
) -> Result<(), BundleError> {
    let suites: Vec<String> = manifest
        .entries
        .iter()
        .filter(|(_, e)| e.retired.is_none())
        .filter_map(|(path, _)| {
            path.strip_prefix("dists/")?
                .strip_suffix("/InRelease")
                .map(str::to_string)
        })
        .collect();
    for suite in suites {
        let release_path = format!("dists/{suite}/Release");
        let text = read_text(content, manifest, store, &release_path)?;
        let parsed =
            ReleaseFile::parse(&text).map_err(|reason| tree_err(content, &release_path, reason))?;
        let period = match valid_for {
            Some(period) => jiff::SignedDuration::try_from(period).ok(),
            None => match (parsed.date, parsed.valid_until) {
                (Some(date), Some(until)) => Some(until.duration_since(date)),
                _ => None,
            },
        };
        let valid_until = period.and_then(|p| now.checked_add(p).ok());
        let release = restamp(&text, now, valid_until, &key.fingerprint());
        add_signed_release(&suite, &release, key, staging, manifest)?;
    }
    Ok(())
}

/// Every signed document of an image stream: `.sjson` clearsigned again over the same text,
/// `.json.gpg` made again over its `.json`.
pub fn streams(
    content: &str,
    manifest: &mut Manifest,
    store: &ContentStore,
    staging: &Staging,
    key: &SiteKey,
) -> Result<(), BundleError> {
    let signed: Vec<String> = manifest
        .entries
        .keys()
        .filter(|p| {
            p.starts_with("streams/") && (p.ends_with(".sjson") || p.ends_with(".json.gpg"))
        })
        .cloned()
        .collect();
    for path in signed {
        let bytes = if let Some(json) = path.strip_suffix(".gpg") {
            let text = read_text(content, manifest, store, json)?;
            key.sign_detached(text.as_bytes())?
        } else {
            let text = read_text(content, manifest, store, &path)?;
            key.clearsign(&cleartext_body(&text, &path)?)?
        };
        let sha256 = staging.add_bytes(bytes.as_bytes())?;
        manifest.add(&path, sha256, bytes.len() as u64);
    }
    Ok(())
}

fn read_text(
    content: &str,
    manifest: &Manifest,
    store: &ContentStore,
    path: &str,
) -> Result<String, BundleError> {
    let entry = manifest.entries.get(path).ok_or_else(|| {
        tree_err(
            content,
            path,
            "the tree lists a signature of it, not the file".into(),
        )
    })?;
    let blob = store.blob_path(&entry.sha256);
    std::fs::read_to_string(&blob)
        .map_err(|source| BundleError::Storage(StorageError::Read { path: blob, source }))
}

fn tree_err(content: &str, path: &str, reason: String) -> BundleError {
    BundleError::Tree {
        content: content.to_string(),
        path: path.to_string(),
        reason,
    }
}
