//! `airlock snap import` (and each snap `airlock snap fetch` brings): a snap file enters the
//! store only with the assertions that prove it. The phases: the file staged while hashed,
//! its proof found and verified, its own metadata checked against the proof, the blobs
//! stored, and the revision recorded in the catalog.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha3::{Digest, Sha3_384};

use super::assertion::{self, Assertion, split_stream};
use super::catalog::{self, Catalog, Channel, Publisher, Revision, SnapEntry, StoredAssertion};
use super::snapfile::{self, IconFile, SnapMeta};
use super::trust::Trust;
use super::{SnapError, load_assertion};
use crate::report::Reporter;
use crate::site::Site;
use crate::storage::{ContentStore, StagedBlob, Staging, StorageError, read_limited};

#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub snap: PathBuf,
    /// The `.assert` file; `None` means the snap's path with `.assert` for `.snap`.
    pub assertions: Option<PathBuf>,
    pub channels: Vec<String>,
    /// Architectures to release for; none means those snap.yaml declares.
    pub architectures: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Imported {
    pub name: String,
    pub snap_id: String,
    pub revision: u64,
    pub version: String,
    pub architectures: Vec<String>,
    pub channels: Vec<String>,
    /// Whether this revision was new to the store.
    pub new: bool,
    /// The bytes the store gained.
    pub added: u64,
    /// What snapd will ask for with it: the base and content default-providers, with whether
    /// the store has them.
    pub prerequisites: Vec<(String, bool)>,
}

/// Imports a snap and its assertions: the blob enters the store only when a snap-revision
/// that verifies up to a trusted root names its SHA3-384 and size.
pub fn import(
    site: &Site,
    trust: &Trust,
    request: &ImportRequest,
    reporter: &dyn Reporter,
) -> Result<Imported, SnapError> {
    let _lock = site.lock(reporter)?;
    let channels: Vec<Channel> = request
        .channels
        .iter()
        .map(|c| Channel::parse(c).map_err(SnapError::Usage))
        .collect::<Result<_, _>>()?;
    let assert_path = request
        .assertions
        .clone()
        .unwrap_or_else(|| request.snap.with_extension("assert"));
    let assert_bytes = read_limited(&assert_path, super::MAX_ASSERTIONS, "an assertion file")?;
    let given = split_stream(&assert_bytes, &assert_path.display().to_string())?;
    let offer = Offer {
        snap: &request.snap,
        assert_path: &assert_path,
        given: &given,
        channels: &channels,
        architectures: &request.architectures,
        default_track: None,
    };
    import_locked(site, trust, &offer)
}

/// A snap offered to the store: the file, the assertions given with it, and where to
/// release it.
pub(super) struct Offer<'a> {
    pub snap: &'a Path,
    /// Where the assertions came from, named in errors.
    pub assert_path: &'a Path,
    pub given: &'a [Assertion],
    pub channels: &'a [Channel],
    /// Architectures to release for; none means those snap.yaml declares.
    pub architectures: &'a [String],
    /// The track the snap's channels default to, as the upstream store gives it.
    pub default_track: Option<&'a str>,
}

fn refused(path: &Path, reason: String) -> SnapError {
    SnapError::Refused {
        path: path.to_path_buf(),
        reason,
    }
}

/// [`import`] with the site lock held and the assertions in hand: stage → prove → check →
/// store → record. Anything refused before the record leaves the store and the catalog as
/// they were.
pub(super) fn import_locked(
    site: &Site,
    trust: &Trust,
    offer: &Offer<'_>,
) -> Result<Imported, SnapError> {
    let data_dir = site.data_dir();
    let mut catalog = Catalog::load(data_dir)?;
    let staging = site.store().staging();
    let file = StagedSnap::stage(&staging, offer.snap)?;
    let stored = stored_assertions(&catalog, data_dir)?;
    let proof = Proof::find(trust, offer, &stored, &file)?;
    let mut checked = Checked::read(offer, &proof, &file, &catalog)?;
    let kept = keep(&mut catalog, staging, trust, &proof, checked.icon.take())?;
    let imported = record(&mut catalog, offer, &proof, &file, checked, kept);
    catalog.save(data_dir)?;
    Ok(imported)
}

/// The snap file, copied into staging while hashed, so that the file checked is the file
/// stored. Nothing is in the store yet.
struct StagedSnap {
    blob: StagedBlob,
    sha3_384: [u8; 48],
    /// The SHA3-384 as assertions name it.
    digest_b64: String,
}

impl StagedSnap {
    fn stage(staging: &Staging, snap: &Path) -> Result<StagedSnap, SnapError> {
        let mut file = fs_err::File::open(snap).map_err(|source| StorageError::Read {
            path: snap.to_path_buf(),
            source,
        })?;
        let mut sha3 = Sha3Reader {
            inner: &mut file,
            hasher: Sha3_384::new(),
        };
        let blob = staging.add_reader(snap, &mut sha3)?;
        let sha3_384: [u8; 48] = sha3.hasher.finalize().into();
        Ok(StagedSnap {
            blob,
            digest_b64: assertion::snap_digest_b64(&sha3_384),
            sha3_384,
        })
    }

    fn size(&self) -> u64 {
        self.blob.hashes.size
    }
}

/// The assertions that prove a staged file, each verified up to a trusted root: its
/// snap-revision (binding SHA3-384 and size), the newest snap-declaration of its snap-id,
/// and the publisher's account.
struct Proof<'a> {
    revision: &'a Assertion,
    declaration: &'a Assertion,
    account: &'a Assertion,
    /// The account-keys the three chains went through, nearest first, per chain.
    keys: Vec<&'a Assertion>,
    snap_id: String,
    number: u64,
}

impl<'a> Proof<'a> {
    /// Looks in the assertions given and those of earlier imports (`stored`); the
    /// snap-revision must be among those given.
    fn find(
        trust: &'a Trust,
        offer: &Offer<'a>,
        stored: &'a [Assertion],
        file: &StagedSnap,
    ) -> Result<Proof<'a>, SnapError> {
        let (snap, assert_path) = (offer.snap, offer.assert_path);
        let pool: Vec<&Assertion> = offer.given.iter().chain(stored).collect();
        let digest_b64 = &file.digest_b64;
        let revision = offer
            .given
            .iter()
            .find(|a| {
                a.kind() == "snap-revision" && a.header("snap-sha3-384") == Some(digest_b64)
            })
            .ok_or_else(|| {
                refused(
                    snap,
                    format!(
                        "{} holds no snap-revision for this file (its SHA3-384 is {digest_b64}): the assertions belong to another revision, or the file was altered",
                        assert_path.display()
                    ),
                )
            })?;
        let size = file.size();
        if revision.integer("snap-size")? != Some(size) {
            return Err(refused(
                snap,
                format!(
                    "the file is {size} bytes but its snap-revision says {}",
                    revision.header("snap-size").unwrap_or("nothing")
                ),
            ));
        }
        let mut keys = trust.verify(revision, &pool)?;
        let snap_id = revision.header("snap-id").unwrap_or_default().to_string();
        let number = revision.integer("snap-revision")?.ok_or_else(|| {
            refused(
                assert_path,
                "the snap-revision has no snap-revision number".into(),
            )
        })?;
        let declaration = pool
            .iter()
            .copied()
            .filter(|a| a.kind() == "snap-declaration" && a.header("snap-id") == Some(&snap_id))
            .max_by_key(|a| a.revision())
            .ok_or_else(|| {
                refused(
                    assert_path,
                    format!("the snap-declaration of snap-id {snap_id} is missing"),
                )
            })?;
        keys.extend(trust.verify(declaration, &pool)?);
        let publisher_id = declaration.header("publisher-id").unwrap_or_default();
        let account = pool
            .iter()
            .copied()
            .chain(trust.roots())
            .filter(|a| a.kind() == "account" && a.header("account-id") == Some(publisher_id))
            .max_by_key(|a| a.revision())
            .ok_or_else(|| {
                refused(
                    assert_path,
                    format!("the account of publisher {publisher_id} is missing"),
                )
            })?;
        keys.extend(trust.verify(account, &pool)?);
        Ok(Proof {
            revision,
            declaration,
            account,
            keys,
            snap_id,
            number,
        })
    }

    fn publisher_id(&self) -> &'a str {
        self.declaration.header("publisher-id").unwrap_or_default()
    }

    /// The publisher as the store API shows it, from the account assertion.
    fn publisher(&self) -> Publisher {
        let id = self.publisher_id();
        let account = self.account;
        Publisher {
            id: id.to_string(),
            username: account.header("username").unwrap_or(id).to_string(),
            display_name: account.header("display-name").unwrap_or(id).to_string(),
            validation: match account.header("validation") {
                Some("certified" | "verified") => "verified",
                Some("starred") => "starred",
                _ => "unproven",
            }
            .to_string(),
        }
    }
}

/// What the file says of itself, agreeing with its proof: meta/snap.yaml names the declared
/// snap, the store has no other snap of that name, and it is built for the architectures
/// it is released for.
struct Checked {
    meta: SnapMeta,
    icon: Option<IconFile>,
    architectures: Vec<String>,
}

impl Checked {
    fn read(
        offer: &Offer<'_>,
        proof: &Proof<'_>,
        file: &StagedSnap,
        catalog: &Catalog,
    ) -> Result<Checked, SnapError> {
        let snap = offer.snap;
        let (meta, icon) = snapfile::read(&file.blob.temp_path).map_err(|e| {
            // Told of the file the operator named, not the staged copy that was read.
            SnapError::SnapFile(snapfile::SnapFileError {
                path: snap.display().to_string(),
                ..e
            })
        })?;
        let declared_name = proof.declaration.header("snap-name").unwrap_or_default();
        if meta.name != declared_name {
            return Err(refused(
                snap,
                format!(
                    "meta/snap.yaml names {:?} but its snap-declaration is for {declared_name:?}",
                    meta.name
                ),
            ));
        }
        if let Some(existing) = catalog
            .snaps
            .get(&meta.name)
            .filter(|e| e.snap_id != proof.snap_id)
        {
            return Err(refused(
                snap,
                format!(
                    "the store already has a snap {:?} with snap-id {}",
                    meta.name, existing.snap_id
                ),
            ));
        }
        let architectures = if offer.architectures.is_empty() {
            meta.architectures.clone()
        } else {
            for arch in offer.architectures {
                if !meta.architectures.iter().any(|a| a == arch || a == "all") {
                    return Err(SnapError::Usage(format!(
                        "{} is built for {}, not {arch}",
                        snap.display(),
                        meta.architectures.join(", ")
                    )));
                }
            }
            offer.architectures.to_vec()
        };
        Ok(Checked {
            meta,
            icon,
            architectures,
        })
    }
}

/// What [`keep`] put in the store.
struct Kept {
    icon: Option<catalog::Icon>,
    /// The bytes the store gained.
    added: u64,
}

/// Everything checked: stores the file, its icon and the assertions that prove it (with the
/// account-keys the checks went through, never a look-alike of a root) in one commit. The
/// catalog names the assertions in memory; it is saved by [`record`]'s caller.
fn keep(
    catalog: &mut Catalog,
    staging: Staging,
    trust: &Trust,
    proof: &Proof<'_>,
    icon: Option<IconFile>,
) -> Result<Kept, SnapError> {
    let mut chain: Vec<&Assertion> = vec![proof.revision, proof.declaration];
    if !trust.is_root(proof.account) {
        chain.push(proof.account);
    }
    for &key in &proof.keys {
        if !chain.contains(&key) {
            chain.push(key);
        }
    }
    for a in chain {
        remember(catalog, &staging, a)?;
    }
    let icon = icon
        .map(|(kind, bytes)| -> Result<_, StorageError> {
            Ok(catalog::Icon {
                sha256: staging.add_bytes(&bytes)?.to_hex(),
                kind: kind.to_string(),
            })
        })
        .transpose()?;
    let added = staging.commit()?;
    Ok(Kept { icon, added })
}

/// Records the revision and its publisher in the catalog and releases it to the channels
/// asked for, for each architecture; once the catalog is saved, snapd sees it.
fn record(
    catalog: &mut Catalog,
    offer: &Offer<'_>,
    proof: &Proof<'_>,
    file: &StagedSnap,
    checked: Checked,
    kept: Kept,
) -> Imported {
    let Checked {
        meta,
        architectures,
        ..
    } = checked;
    let revision = proof.number;
    let now = jiff::Timestamp::now().to_string();
    let entry = catalog
        .snaps
        .entry(meta.name.clone())
        .or_insert_with(|| SnapEntry {
            snap_id: proof.snap_id.clone(),
            publisher: Publisher {
                id: proof.publisher_id().to_string(),
                username: String::new(),
                display_name: String::new(),
                validation: String::new(),
            },
            default_track: None,
            revisions: Default::default(),
            releases: Vec::new(),
        });
    entry.publisher = proof.publisher();
    if let Some(track) = offer.default_track {
        entry.default_track = Some(track.to_string());
    }
    let new = !entry.revisions.contains_key(&revision);
    entry.revisions.insert(
        revision,
        Revision {
            revision,
            sha3_384: hex::encode(file.sha3_384),
            size: file.size(),
            sha256: file.blob.hashes.sha256.to_hex(),
            created_at: proof
                .revision
                .header("timestamp")
                .unwrap_or(&now)
                .to_string(),
            meta: meta.clone(),
            icon: kept.icon,
        },
    );
    let mut released = Vec::new();
    for arch in &architectures {
        for channel in offer.channels {
            entry.release(arch, channel, revision, &now);
            released.push(format!(
                "{arch} {}",
                entry.releases.last().expect("just released").channel()
            ));
        }
    }
    let prerequisites = prerequisites(catalog, &meta);
    Imported {
        name: meta.name,
        snap_id: proof.snap_id.clone(),
        revision,
        version: meta.version,
        architectures,
        channels: released,
        new,
        added: kept.added,
        prerequisites,
    }
}

/// The snaps snapd will ask for with one of `meta` (its base and content default-providers),
/// each with whether the catalog has it.
pub(super) fn prerequisites(catalog: &Catalog, meta: &SnapMeta) -> Vec<(String, bool)> {
    meta.base
        .iter()
        .chain(&meta.default_providers)
        .filter(|p| **p != meta.name)
        .map(|p| (p.clone(), catalog.snaps.contains_key(p)))
        .collect()
}

/// Stages an assertion's bytes and records it, unless a newer revision is already known.
fn remember(catalog: &mut Catalog, staging: &Staging, a: &Assertion) -> Result<(), StorageError> {
    let reference = a.reference();
    if catalog
        .assertions
        .get(&reference)
        .is_some_and(|s| s.revision > a.revision())
    {
        return Ok(());
    }
    let sha256 = staging.add_bytes(a.encoded())?;
    catalog.assertions.insert(
        reference,
        StoredAssertion {
            sha256: sha256.to_hex(),
            revision: a.revision(),
            format: a.format(),
        },
    );
    Ok(())
}

/// The account and account-key assertions already in the store: chains of earlier imports.
fn stored_assertions(catalog: &Catalog, data_dir: &Path) -> Result<Vec<Assertion>, SnapError> {
    let store = ContentStore::new(data_dir);
    let mut assertions = Vec::new();
    for (reference, stored) in &catalog.assertions {
        if !(reference.starts_with("account/")
            || reference.starts_with("account-key/")
            || reference.starts_with("snap-declaration/"))
        {
            continue;
        }
        assertions.push(load_assertion(&store, reference, stored)?);
    }
    Ok(assertions)
}

struct Sha3Reader<'a, R> {
    inner: &'a mut R,
    hasher: Sha3_384,
}

impl<R: Read> Read for Sha3Reader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
