//! The offline snap store: snaps imported with the assertions that prove them, channel
//! maps, and the store API snapd talks to ([`api`]).
//!
//! airlock never signs for Canonical: it relays Canonical's assertions byte for byte, and
//! accepts a snap only when they verify up to a trusted root and bind the file's SHA3-384
//! and size, as snapd itself checks them.

pub mod api;
pub mod assertion;
pub mod catalog;
pub mod fetch;
mod import;
pub mod snapfile;
pub mod trust;

use std::path::PathBuf;

use crate::hint::Hint;
use crate::report::Reporter;
use crate::site::Site;
use crate::storage::{Sha256, StorageError, read_limited};
use assertion::{Assertion, AssertionError};
use catalog::{Catalog, Channel, StoredAssertion};
use trust::Trust;

pub use import::{ImportRequest, Imported, import};

#[derive(Debug, thiserror::Error)]
pub enum SnapError {
    #[error(transparent)]
    Assertion(#[from] AssertionError),
    #[error(transparent)]
    SnapFile(#[from] snapfile::SnapFileError),
    #[error("{path}: {reason}")]
    Refused { path: PathBuf, reason: String },
    #[error("{0}")]
    Usage(String),
    #[error("{url}: {reason}")]
    Upstream { url: String, reason: String },
    #[error("{url}: not a usable URL")]
    BadUrl {
        url: String,
        #[source]
        source: crate::net::UrlError,
    },
    #[error("{url}: not the JSON of a store")]
    NotStore {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Net(Box<crate::net::NetError>),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Hint for SnapError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            SnapError::Assertion(e) => e.hint(),
            SnapError::SnapFile(e) => e.hint(),
            SnapError::Refused { .. } => Some(
                "import the .snap with the .assert file `snap download` wrote beside it, both as they were downloaded",
            ),
            SnapError::Upstream { .. } | SnapError::NotStore { .. } | SnapError::BadUrl { .. } => {
                Some("is the store reachable from here? [snaps] upstream (and upstream_ca) name it")
            }
            SnapError::Net(e) => e.hint(),
            SnapError::Storage(e) => e.hint(),
            SnapError::Usage(_) => None,
        }
    }
}

/// `.assert` files hold a few assertions of a few KiB each.
const MAX_ASSERTIONS: u64 = 16 << 20;

/// Canonical's root, plus the roots `[snaps] trusted_keys` names.
pub fn site_trust(site: &Site) -> Result<Trust, SnapError> {
    let mut trust = Trust::canonical();
    for path in &site.config.snaps.trusted_keys {
        let bytes = read_limited(path, MAX_ASSERTIONS, "an assertion file")?;
        trust.add_roots(&bytes, &path.display().to_string())?;
    }
    Ok(trust)
}

pub fn load_assertion(
    store: &crate::storage::ContentStore,
    reference: &str,
    stored: &StoredAssertion,
) -> Result<Assertion, SnapError> {
    let digest = Sha256::from_hex(&stored.sha256).ok_or_else(|| {
        SnapError::Usage(format!(
            "the catalog's digest for {reference} is not a SHA-256"
        ))
    })?;
    let path = store.blob_path(&digest);
    let bytes = fs_err::read(&path).map_err(|source| StorageError::Read {
        path: path.clone(),
        source,
    })?;
    Ok(Assertion::parse(&bytes)?)
}

/// `airlock snap release NAME REVISION CHANNEL...`: points channels at a stored revision.
pub fn release(
    site: &Site,
    name: &str,
    revision: u64,
    channels: &[String],
    architectures: &[String],
    reporter: &dyn Reporter,
) -> Result<Vec<String>, SnapError> {
    let _lock = site.lock(reporter)?;
    let mut catalog = Catalog::load(site.data_dir())?;
    let entry = catalog.snap_mut(name)?;
    let stored = entry.revisions.get(&revision).ok_or_else(|| {
        SnapError::Usage(format!(
            "{name} has no revision {revision}; it has {}",
            entry
                .revisions
                .keys()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let arches = if architectures.is_empty() {
        stored.meta.architectures.clone()
    } else {
        architectures.to_vec()
    };
    let parsed: Vec<Channel> = channels
        .iter()
        .map(|c| Channel::parse(c).map_err(SnapError::Usage))
        .collect::<Result<_, _>>()?;
    let now = jiff::Timestamp::now().to_string();
    let mut done = Vec::new();
    for arch in &arches {
        for channel in &parsed {
            entry.release(arch, channel, revision, &now);
            done.push(format!(
                "{arch} {}",
                entry.releases.last().expect("just released").channel()
            ));
        }
    }
    catalog.save(site.data_dir())?;
    Ok(done)
}

/// `airlock snap remove NAME [--revision N]`: takes a revision (or the snap) out of the
/// catalog; its channels close. Blobs stay in the content store.
pub fn remove(
    site: &Site,
    name: &str,
    revision: Option<u64>,
    reporter: &dyn Reporter,
) -> Result<Vec<u64>, SnapError> {
    let _lock = site.lock(reporter)?;
    let mut catalog = Catalog::load(site.data_dir())?;
    let entry = catalog.snap_mut(name)?;
    let removed: Vec<u64> = match revision {
        Some(r) => {
            if entry.revisions.remove(&r).is_none() {
                return Err(SnapError::Usage(format!("{name} has no revision {r}")));
            }
            entry.releases.retain(|rel| rel.revision != r);
            vec![r]
        }
        None => entry.revisions.keys().copied().collect(),
    };
    if revision.is_none() || entry.revisions.is_empty() {
        catalog.snaps.remove(name);
    }
    catalog.save(site.data_dir())?;
    Ok(removed)
}
