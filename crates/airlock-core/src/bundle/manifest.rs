//! The bundle manifest: what a bundle holds, signed by the exporting site.
//!
//! `manifest.json` lists every content (a published tree and its state file) and every blob
//! with its digest, size and volume; `manifest.json.asc` is a detached signature by the
//! exporting site's key, so `gpgv` can check a bundle as well as airlock.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::BundleError;
use crate::hint::Hint;
use crate::openpgp::{Keyring, OpenPgpError};
use crate::storage::{Sha256, StorageError, read_limited};

/// A manifest lists each blob in about 200 bytes: this allows over a million.
const MAX_MANIFEST: u64 = 256 << 20;
const MAX_SIGNATURE: u64 = 1 << 20;

/// The manifest format this airlock writes and the newest it reads.
pub const FORMAT: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.json.asc";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BundleManifest {
    pub format: u32,
    /// Unique and sortable: the creation time, then random hex.
    pub id: String,
    /// RFC 3339.
    pub created: String,
    pub exporter: Exporter,
    /// The bundle this one adds to (`--since`): its blobs are not in the volumes.
    pub base: Option<BaseBundle>,
    pub contents: Vec<Content>,
    pub volumes: Vec<Volume>,
    pub blobs: Vec<BlobEntry>,
    /// A copy of the exporting airlock, beside the volumes (absent in bundles of airlock
    /// before 0.1 carried one, which read as they did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub airlock: Option<CarriedAirlock>,
}

/// The airlock a bundle carries: a plain file in the bundle folder.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CarriedAirlock {
    /// Its name in the bundle folder: `airlock_VERSION_ARCH.deb`, or `airlock_VERSION_ARCH`
    /// for a binary.
    pub file: String,
    pub kind: CarriedKind,
    /// airlock's version (`airlock --version`); a .deb's without epoch and Debian revision.
    pub version: String,
    /// The .deb's Version field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_version: Option<String>,
    /// dpkg's name of the architecture (amd64, arm64).
    pub architecture: String,
    pub sha256: Sha256,
    pub size: u64,
    /// `SHA256  FILE`, the line `sha256sum -c` reads (docs/bundles.md).
    pub sha256sum: String,
    /// The id of the earlier bundle whose folder holds the file, when this incremental bundle
    /// does not repeat it (its base listed the same bytes); absent when the file is beside
    /// this manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_in: Option<String>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CarriedKind {
    Deb,
    Binary,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Exporter {
    pub fingerprint: String,
    pub url: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BaseBundle {
    pub id: String,
    /// SHA-256 of the base's manifest.json.
    pub sha256: Sha256,
}

/// One published thing: an apt repo, mirror or combined suite, the image stream, the snaps.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Content {
    pub area: Area,
    pub name: String,
    pub kind: Kind,
    pub signing: Signing,
    /// The published tree's manifest (`storage::Manifest`), itself a blob.
    pub tree: Option<BlobRef>,
    /// The state file the area's commands edit (repo packages, custom images, snap catalog).
    pub state: Option<BlobRef>,
    /// Files and bytes of the whole content, and of the blobs first carried by this bundle.
    pub files: u64,
    pub bytes: u64,
    pub new_files: u64,
    pub new_bytes: u64,
}

impl Content {
    /// How operators name it: `apt/NAME`, `images`, `snaps`.
    pub fn label(&self) -> String {
        match self.area {
            Area::Apt => format!("apt/{}", self.name),
            Area::Images => "images".into(),
            Area::Snaps => "snaps".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    Apt,
    Images,
    Snaps,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Repo,
    Mirror,
    Publish,
    Images,
    Snaps,
}

/// Who signs what clients check: the importing site (re-signed on import) or the upstream
/// (verbatim trees, kept byte for byte).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Signing {
    Site,
    Upstream,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BlobRef {
    pub sha256: Sha256,
    pub size: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Volume {
    pub name: String,
    pub size: u64,
    pub blobs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BlobEntry {
    pub sha256: Sha256,
    pub size: u64,
    /// The volume holding it; none when the base bundle carried it.
    pub volume: Option<String>,
}

/// A manifest without its blob list: what `export --json` and `bundle inspect --json` print.
#[derive(Debug, Serialize)]
pub struct Summary<'m> {
    pub format: u32,
    pub id: &'m str,
    pub created: &'m str,
    pub exporter: &'m Exporter,
    pub base: Option<&'m BaseBundle>,
    pub contents: &'m [Content],
    pub volumes: &'m [Volume],
    /// Blobs the manifest lists, and those (and their bytes) the volumes carry.
    pub blobs: usize,
    pub carried_blobs: usize,
    pub carried_bytes: u64,
    pub airlock: Option<&'m CarriedAirlock>,
}

impl BundleManifest {
    pub fn summary(&self) -> Summary<'_> {
        let carried = self.blobs.iter().filter(|b| b.volume.is_some());
        Summary {
            format: self.format,
            id: &self.id,
            created: &self.created,
            exporter: &self.exporter,
            base: self.base.as_ref(),
            contents: &self.contents,
            volumes: &self.volumes,
            blobs: self.blobs.len(),
            carried_blobs: carried.clone().count(),
            carried_bytes: carried.map(|b| b.size).sum(),
            airlock: self.airlock.as_ref(),
        }
    }
}

pub(super) fn serialize_summary<S: serde::Serializer>(
    manifest: &BundleManifest,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    manifest.summary().serialize(serializer)
}

/// A manifest read from a bundle folder, with its exact bytes and who signed them.
#[derive(Debug)]
pub struct SignedManifest {
    pub manifest: BundleManifest,
    pub sha256: Sha256,
    /// The verifying key's fingerprint; none when no keyring was given (inspect).
    pub signer: Option<Result<String, BadSignature>>,
}

/// Why the signature did not verify.
#[derive(Debug)]
pub struct BadSignature {
    pub error: Box<SignatureError>,
    /// The keyring has the signing key: the manifest changed after it was signed.
    pub by_known_key: bool,
}

/// A signature that could not be read, or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error(transparent)]
    Unreadable(#[from] StorageError),
    #[error(transparent)]
    Invalid(#[from] OpenPgpError),
}

impl Hint for SignatureError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            SignatureError::Unreadable(e) => e.hint(),
            SignatureError::Invalid(e) => e.hint(),
        }
    }
}

/// The manifest path, given the bundle folder or the manifest itself.
pub fn manifest_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(MANIFEST)
    } else {
        path.to_path_buf()
    }
}

fn not_manifest(path: &Path, source: serde_json::Error) -> BundleError {
    BundleError::NotManifest {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a bundle's manifest; with a keyring, the signature must verify against it.
pub fn read(path: &Path, keyring: Option<&Keyring>) -> Result<SignedManifest, BundleError> {
    let path = manifest_path(path);
    let bad = |reason: String| BundleError::Manifest {
        path: path.clone(),
        reason,
    };
    let bytes = read_limited(&path, MAX_MANIFEST, "a bundle manifest")?;
    let signer = keyring.map(|keyring| {
        let signature_path = path.with_file_name(SIGNATURE);
        let signature =
            read_limited(&signature_path, MAX_SIGNATURE, "a signature").map_err(|e| {
                BadSignature {
                    error: Box::new(e.into()),
                    by_known_key: false,
                }
            })?;
        keyring
            .verify_detached(&bytes, &signature, &signature_path.display().to_string())
            .map(|v| v.signer)
            .map_err(|e| BadSignature {
                error: Box::new(e.into()),
                by_known_key: keyring.knows_signer_of(&signature),
            })
    });
    // The format first: a newer manifest may not parse as this one.
    #[derive(Deserialize)]
    struct Probe {
        format: u32,
    }
    let probe: Probe = serde_json::from_slice(&bytes).map_err(|e| not_manifest(&path, e))?;
    if probe.format > FORMAT {
        return Err(BundleError::NewerFormat {
            path,
            found: probe.format,
        });
    }
    let manifest: BundleManifest =
        serde_json::from_slice(&bytes).map_err(|e| not_manifest(&path, e))?;
    check(&manifest).map_err(bad)?;
    Ok(SignedManifest {
        manifest,
        sha256: Sha256::of(&bytes),
        signer,
    })
}

/// What no honest exporter writes: names that are not ours to create, blobs listed twice or
/// in volumes the manifest does not list (digests are checked as they are parsed).
fn check(manifest: &BundleManifest) -> Result<(), String> {
    for content in &manifest.contents {
        let fits = match (content.area, content.kind) {
            (Area::Apt, Kind::Repo | Kind::Mirror | Kind::Publish) => {
                content.name.parse::<crate::config::Name>().is_ok()
            }
            (Area::Images, Kind::Images) => content.name == "images",
            (Area::Snaps, Kind::Snaps) => content.name == "snaps",
            _ => false,
        };
        if !fits {
            return Err(format!(
                "content {:?} ({:?} {:?}) is not one this site can hold",
                content.name, content.area, content.kind
            ));
        }
    }
    for volume in &manifest.volumes {
        if !valid_volume_name(&volume.name) {
            return Err(format!(
                "volume name {:?} is not a plain file name",
                volume.name
            ));
        }
    }
    if let Some(airlock) = &manifest.airlock {
        let plain = airlock.file.starts_with("airlock_")
            && airlock.file.len() <= 100
            && airlock
                .file
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+~".contains(&b));
        if !plain || airlock.sha256sum != format!("{}  {}", airlock.sha256, airlock.file) {
            return Err(format!(
                "the carried airlock {:?} is not a plain airlock_ file name, or its sha256sum line does not match",
                airlock.file
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for blob in &manifest.blobs {
        if !seen.insert(blob.sha256) {
            return Err(format!("blob {} is listed twice", blob.sha256));
        }
        if let Some(v) = &blob.volume
            && !manifest.volumes.iter().any(|x| &x.name == v)
        {
            return Err(format!(
                "blob {} names volume {v:?}, which it does not list",
                blob.sha256
            ));
        }
    }
    Ok(())
}

fn valid_volume_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openpgp::{KeyAlgorithm, SiteKey};

    fn sample() -> BundleManifest {
        let blob = Sha256::of(b"x");
        BundleManifest {
            format: FORMAT,
            id: "20261201T000000Z-00000000".into(),
            created: "2026-12-01T00:00:00Z".into(),
            exporter: Exporter {
                fingerprint: "AB".into(),
                url: "http://a".into(),
            },
            base: None,
            contents: vec![Content {
                area: Area::Apt,
                name: "local".into(),
                kind: Kind::Repo,
                signing: Signing::Site,
                tree: Some(BlobRef {
                    sha256: blob,
                    size: 1,
                }),
                state: None,
                files: 1,
                bytes: 1,
                new_files: 1,
                new_bytes: 1,
            }],
            volumes: vec![Volume {
                name: "volume-001.tar".into(),
                size: 2048,
                blobs: 1,
            }],
            blobs: vec![BlobEntry {
                sha256: blob,
                size: 1,
                volume: Some("volume-001.tar".into()),
            }],
            airlock: None,
        }
    }

    fn write(dir: &Path, key: &SiteKey, text: &str) {
        std::fs::write(dir.join(MANIFEST), text).unwrap();
        let signature = key.sign_detached(text.as_bytes()).unwrap();
        std::fs::write(dir.join(SIGNATURE), signature).unwrap();
    }

    #[test]
    fn reads_checks_and_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let key = SiteKey::generate(KeyAlgorithm::Ed25519, "a").unwrap();
        let other = SiteKey::generate(KeyAlgorithm::Ed25519, "b").unwrap();
        let trusted = Keyring::new(vec![key.public_key().clone()]);
        let stranger = Keyring::new(vec![other.public_key().clone()]);
        let text = serde_json::to_string_pretty(&sample()).unwrap();
        write(dir.path(), &key, &text);

        let read_back = read(dir.path(), Some(&trusted)).unwrap();
        assert_eq!(read_back.manifest, sample());
        assert!(matches!(read_back.signer, Some(Ok(signer)) if signer == key.fingerprint()));
        assert!(matches!(
            read(dir.path(), Some(&stranger)).unwrap().signer,
            Some(Err(BadSignature {
                by_known_key: false,
                ..
            }))
        ));

        // Altered after signing.
        std::fs::write(
            dir.path().join(MANIFEST),
            text.replace("http://a", "http://b"),
        )
        .unwrap();
        assert!(matches!(
            read(dir.path(), Some(&trusted)).unwrap().signer,
            Some(Err(BadSignature {
                by_known_key: true,
                ..
            }))
        ));

        // A newer format is named, whatever else it holds.
        write(dir.path(), &key, r#"{"format": 2, "whatever": []}"#);
        let err = read(dir.path(), Some(&trusted)).unwrap_err();
        assert!(
            matches!(err, BundleError::NewerFormat { found: 2, .. }),
            "{err}"
        );

        // Names that would leave the data folder, and blobs in unlisted volumes.
        let mut hostile = sample();
        hostile.contents[0].name = "../../etc".into();
        write(dir.path(), &key, &serde_json::to_string(&hostile).unwrap());
        let err = read(dir.path(), None).unwrap_err();
        assert!(
            err.to_string().contains("not one this site can hold"),
            "{err}"
        );
        let mut hostile = sample();
        hostile.volumes[0].name = "../x.tar".into();
        hostile.blobs[0].volume = Some("../x.tar".into());
        write(dir.path(), &key, &serde_json::to_string(&hostile).unwrap());
        let err = read(dir.path(), None).unwrap_err();
        assert!(err.to_string().contains("not a plain file name"), "{err}");
        let mut hostile = sample();
        hostile.blobs[0].volume = Some("volume-009.tar".into());
        write(dir.path(), &key, &serde_json::to_string(&hostile).unwrap());
        let err = read(dir.path(), None).unwrap_err();
        assert!(err.to_string().contains("does not list"), "{err}");
    }
}
