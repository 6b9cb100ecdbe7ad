//! Crossing the gap: a signed bundle of what a site publishes, exported on the connected
//! side and imported on the air-gapped one.
//!
//! A bundle is a folder: `manifest.json` (every content and every blob, with digests), its
//! detached signature by the exporting site, and tar volumes (optionally zstd) of blobs named
//! `blobs/<sha256>`, nothing else. An incremental bundle (`--since`) carries only the blobs its
//! base did not. The importer checks the signature, then every entry and every byte, stages
//! blobs outside the store until all are there, and only then stores them and switches each
//! content, re-signed with its own key where clients check the site's signature.

pub mod carry;
pub mod export;
pub mod import;
pub mod manifest;
mod reader;
pub mod renew;
mod resign;
pub mod volume;

use std::path::PathBuf;

pub use export::{ExportOptions, ExportReport, export};
pub use import::{ImportOptions, ImportReport, import};
pub use manifest::{BundleManifest, Content, SignedManifest};

use crate::hint::Hint;
use crate::openpgp::OpenPgpError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("{path}: not a bundle manifest")]
    NotManifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{path}: bundle format {found} is newer than this airlock reads (up to {})",
        manifest::FORMAT
    )]
    NewerFormat { path: PathBuf, found: u32 },
    #[error(
        "{path} is not signed by a key this site trusts (the manifest names exporter {claimed})"
    )]
    Untrusted {
        path: PathBuf,
        claimed: String,
        #[source]
        source: Box<manifest::SignatureError>,
    },
    #[error(
        "{path} is not signed by a key this site trusts (the manifest names exporter {claimed}): it is signed by {signer}, not by the exporter it names"
    )]
    OtherSigner {
        path: PathBuf,
        claimed: String,
        signer: String,
    },
    #[error("{path} was changed after it was signed")]
    Altered {
        path: PathBuf,
        #[source]
        source: Box<manifest::SignatureError>,
    },
    #[error("{path}: --since takes a bundle this site exported")]
    NotOwnBundle {
        path: PathBuf,
        #[source]
        source: Box<manifest::SignatureError>,
    },
    #[error("no exporter key to check bundles with")]
    NoTrustedKeys,
    #[error(
        "no repo named {name:?} in {config} (configured: {repos}), nor a mirror imported here (imported: {imported})"
    )]
    NotImported {
        name: String,
        config: PathBuf,
        repos: String,
        imported: String,
    },
    #[error(
        "bundle {id} adds to bundle {base}, which this site has not imported: import {base} first"
    )]
    MissingBase { id: String, base: String },
    #[error(
        "bundle {id} (created {created}) is older than bundle {newer} (created {newer_created}), already imported from the same site"
    )]
    Older {
        id: String,
        created: String,
        newer: String,
        newer_created: String,
    },
    #[error("{volume}: entry {entry}: {reason}")]
    Entry {
        volume: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("{volume}: entry {entry}: cannot read it")]
    EntryRead {
        volume: PathBuf,
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{volume}: {reason}")]
    Volume { volume: PathBuf, reason: String },
    #[error("{volume}: cannot read the entry after {after} (a truncated or damaged volume)")]
    VolumeEntry {
        volume: PathBuf,
        after: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{volume}: {what}")]
    VolumeIo {
        volume: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", missing_volumes(.dir, .volumes))]
    MissingVolumes {
        dir: PathBuf,
        volumes: Vec<(String, u64)>,
    },
    #[error("bundle {id} lacks {count} blob(s) its contents need (first: {first} of {content})")]
    Incomplete {
        id: String,
        count: usize,
        first: String,
        content: String,
    },
    #[error("{0}")]
    Export(String),
    #[error("{path}: the airlock copy cannot be read")]
    CarriedUnreadable {
        path: PathBuf,
        #[source]
        source: StorageError,
    },
    #[error("{path}: not an airlock .deb to carry")]
    CarriedDeb {
        path: PathBuf,
        #[source]
        source: crate::apt::deb::DebError,
    },
    #[error(
        "{path}: the airlock copy does not match the signed manifest: expected {expected}, got {got}"
    )]
    CarriedMismatch {
        path: PathBuf,
        expected: String,
        got: String,
    },
    #[error("{content}: {path}: not the JSON airlock writes")]
    TreeJson {
        content: String,
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{content}: {path}: {reason}")]
    Tree {
        content: String,
        path: String,
        reason: String,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    OpenPgp(#[from] OpenPgpError),
    #[error(transparent)]
    Apt(#[from] crate::apt::AptError),
}

fn missing_volumes(dir: &std::path::Path, volumes: &[(String, u64)]) -> String {
    let list: Vec<String> = volumes
        .iter()
        .map(|(name, n)| format!("{name} ({n} blob(s) not here yet)"))
        .collect();
    format!(
        "{} lacks volume(s) {}; what the other volumes held is kept: re-run the import when they are there",
        dir.display(),
        list.join(", ")
    )
}

impl Hint for BundleError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            BundleError::NoTrustedKeys => Some(
                "copy the exporting site's airlock.gpg here and list it in airlock.toml: [import] trusted_keys = [\"exporter.gpg\"], or pass --keyring",
            ),
            BundleError::Untrusted { .. } | BundleError::OtherSigner { .. } => Some(
                "check that the bundle comes from the expected site and add its airlock.gpg to [import] trusted_keys",
            ),
            BundleError::Altered { .. } => {
                Some("copy the bundle again from the exporting side; nothing here changed")
            }
            BundleError::NewerFormat { .. } => {
                Some("import it with the airlock version that exported it, or a newer one")
            }
            BundleError::CarriedMismatch { .. } | BundleError::CarriedUnreadable { .. } => Some(
                "the file was damaged or altered after export: copy it again from the exporting side (nothing here changed), and never install it unchecked",
            ),
            BundleError::Entry { .. }
            | BundleError::EntryRead { .. }
            | BundleError::Volume { .. }
            | BundleError::VolumeEntry { .. }
            | BundleError::VolumeIo { .. } => Some(
                "the volume was damaged or altered after export: copy it again from the exporting side (nothing here changed)",
            ),
            BundleError::Storage(e) => e.hint(),
            BundleError::OpenPgp(e) => e.hint(),
            BundleError::Apt(e) => e.hint(),
            BundleError::CarriedDeb { source, .. } => source.hint(),
            BundleError::NotOwnBundle { source, .. } => source.hint(),
            BundleError::Manifest { .. }
            | BundleError::NotManifest { .. }
            | BundleError::NotImported { .. }
            | BundleError::MissingBase { .. }
            | BundleError::Older { .. }
            | BundleError::MissingVolumes { .. }
            | BundleError::Incomplete { .. }
            | BundleError::Export(_)
            | BundleError::TreeJson { .. }
            | BundleError::Tree { .. } => None,
        }
    }
}
