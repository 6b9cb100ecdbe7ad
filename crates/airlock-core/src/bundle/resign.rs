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
    for suite in suites(manifest) {
        let release = SignedRelease::read(content, manifest, store, &suite, valid_for)?;
        release.resign(manifest, staging, key, now)?;
    }
    Ok(())
}

/// The suites an apt tree publishes (each has its InRelease).
pub(super) fn suites(tree: &Manifest) -> Vec<String> {
    tree.entries
        .iter()
        .filter(|(_, e)| e.retired.is_none())
        .filter_map(|(path, _)| {
            path.strip_prefix("dists/")?
                .strip_suffix("/InRelease")
                .map(str::to_string)
        })
        .collect()
}

/// The Release of one suite of a tree, with the validity period it is to be given.
pub(super) struct SignedRelease {
    pub suite: String,
    pub text: String,
    pub parsed: ReleaseFile,
    /// `valid_for` of this site's config, else the period the Release was given.
    pub period: Option<jiff::SignedDuration>,
}

impl SignedRelease {
    pub fn read(
        content: &str,
        manifest: &Manifest,
        store: &ContentStore,
        suite: &str,
        valid_for: Option<std::time::Duration>,
    ) -> Result<SignedRelease, BundleError> {
        let path = format!("dists/{suite}/Release");
        let text = read_text(content, manifest, store, &path)?;
        let parsed =
            ReleaseFile::parse(&text).map_err(|reason| tree_err(content, &path, reason))?;
        let period = match valid_for {
            Some(period) => jiff::SignedDuration::try_from(period).ok(),
            None => match (parsed.date, parsed.valid_until) {
                (Some(date), Some(until)) => Some(until.duration_since(date)),
                _ => None,
            },
        };
        Ok(SignedRelease {
            suite: suite.to_string(),
            text,
            parsed,
            period,
        })
    }

    /// Restamped (Date now, Valid-Until a period from now, Signed-By `key`) and signed again
    /// into `manifest`; returns the new Valid-Until.
    pub fn resign(
        &self,
        manifest: &mut Manifest,
        staging: &Staging,
        key: &SiteKey,
        now: jiff::Timestamp,
    ) -> Result<Option<jiff::Timestamp>, BundleError> {
        let valid_until = self.period.and_then(|p| now.checked_add(p).ok());
        let release = restamp(&self.text, now, valid_until, &key.fingerprint());
        add_signed_release(&self.suite, &release, key, staging, manifest)?;
        Ok(valid_until)
    }
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

pub(super) fn read_text(
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
