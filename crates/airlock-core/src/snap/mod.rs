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
pub mod snapfile;
pub mod trust;

use std::io::Read;
use std::path::{Path, PathBuf};

use sha3::{Digest, Sha3_384};

use crate::hint::Hint;
use crate::report::Reporter;
use crate::site::Site;
use crate::storage::{Sha256, StorageError};
use assertion::{Assertion, AssertionError, split_stream};
use catalog::{Catalog, Channel, Publisher, Revision, SnapEntry, StoredAssertion};
use trust::Trust;

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
            SnapError::Upstream { .. } => {
                Some("is the store reachable from here? [snaps] upstream (and upstream_ca) name it")
            }
            SnapError::Net(e) => e.hint(),
            SnapError::Storage(e) => e.hint(),
            SnapError::Usage(_) => None,
        }
    }
}

/// Canonical's root, plus the roots `[snaps] trusted_keys` names.
pub fn site_trust(site: &Site) -> Result<Trust, SnapError> {
    let mut trust = Trust::canonical();
    for path in &site.config.snaps.trusted_keys {
        let bytes = fs_err::read(path).map_err(|source| StorageError::Read {
            path: path.clone(),
            source,
        })?;
        trust.add_roots(&bytes, &path.display().to_string())?;
    }
    Ok(trust)
}

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
    let assert_bytes = fs_err::read(&assert_path).map_err(|source| StorageError::Read {
        path: assert_path.clone(),
        source,
    })?;
    let given = split_stream(&assert_bytes, &assert_path.display().to_string())?;
    import_locked(
        site,
        trust,
        &request.snap,
        &assert_path,
        &given,
        &channels,
        &request.architectures,
        None,
    )
}

/// [`import`] with the site lock held and the assertions in hand (`assert_path` names
/// where they came from in errors).
#[allow(clippy::too_many_arguments)]
fn import_locked(
    site: &Site,
    trust: &Trust,
    snap: &Path,
    assert_path: &Path,
    given: &[Assertion],
    channels: &[Channel],
    architectures: &[String],
    default_track: Option<&str>,
) -> Result<Imported, SnapError> {
    let data_dir = site.data_dir();
    let mut catalog = Catalog::load(data_dir)?;
    let refused = |path: &Path, reason: String| SnapError::Refused {
        path: path.to_path_buf(),
        reason,
    };

    // Copy into staging while hashing, so the file checked is the file stored.
    let store = site.store();
    let staging = store.staging();
    let mut file = fs_err::File::open(snap).map_err(|source| StorageError::Read {
        path: snap.to_path_buf(),
        source,
    })?;
    let mut sha3 = Sha3Reader {
        inner: &mut file,
        hasher: Sha3_384::new(),
    };
    let staged = staging.add_reader(snap, &mut sha3)?;
    let digest = sha3.hasher.finalize();
    let digest_b64 = assertion::snap_digest_b64(&digest);
    let size = staged.hashes.size;

    let stored = stored_assertions(&catalog, data_dir)?;
    let pool: Vec<&Assertion> = given.iter().chain(stored.iter()).collect();
    let revision_assertion = given
        .iter()
        .find(|a| a.kind() == "snap-revision" && a.header("snap-sha3-384") == Some(&digest_b64))
        .ok_or_else(|| {
            refused(
                snap,
                format!(
                    "{} holds no snap-revision for this file (its SHA3-384 is {digest_b64}): the assertions belong to another revision, or the file was altered",
                    assert_path.display()
                ),
            )
        })?;
    if revision_assertion.integer("snap-size")? != Some(size) {
        return Err(refused(
            snap,
            format!(
                "the file is {size} bytes but its snap-revision says {}",
                revision_assertion.header("snap-size").unwrap_or("nothing")
            ),
        ));
    }
    let revision_keys = trust.verify(revision_assertion, &pool)?;
    let snap_id = revision_assertion
        .header("snap-id")
        .unwrap_or_default()
        .to_string();
    let revision = revision_assertion
        .integer("snap-revision")?
        .ok_or_else(|| {
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
    let declaration_keys = trust.verify(declaration, &pool)?;
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
    let account_keys = trust.verify(account, &pool)?;

    let (meta, icon) = snapfile::read(&staged.temp_path).map_err(|e| refused(snap, e.reason))?;
    let declared_name = declaration.header("snap-name").unwrap_or_default();
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
        .filter(|e| e.snap_id != snap_id)
    {
        return Err(refused(
            snap,
            format!(
                "the store already has a snap {:?} with snap-id {}",
                meta.name, existing.snap_id
            ),
        ));
    }
    let architectures: Vec<String> = if architectures.is_empty() {
        meta.architectures.clone()
    } else {
        for arch in architectures {
            if !meta.architectures.iter().any(|a| a == arch || a == "all") {
                return Err(SnapError::Usage(format!(
                    "{} is built for {}, not {arch}",
                    snap.display(),
                    meta.architectures.join(", ")
                )));
            }
        }
        architectures.to_vec()
    };

    // Everything checked: store the assertions that prove it (and the account-keys the
    // checks went through, never a look-alike of a root), then the catalog.
    let mut chain: Vec<&Assertion> = vec![revision_assertion, declaration];
    if !trust.is_root(account) {
        chain.push(account);
    }
    for key in revision_keys
        .into_iter()
        .chain(declaration_keys)
        .chain(account_keys)
    {
        if !chain.contains(&key) {
            chain.push(key);
        }
    }
    for a in chain {
        remember(&mut catalog, &staging, a)?;
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

    let now = jiff::Timestamp::now().to_string();
    let entry = catalog
        .snaps
        .entry(meta.name.clone())
        .or_insert_with(|| SnapEntry {
            snap_id: snap_id.clone(),
            publisher: Publisher {
                id: publisher_id.to_string(),
                username: String::new(),
                display_name: String::new(),
                validation: String::new(),
            },
            default_track: None,
            revisions: Default::default(),
            releases: Vec::new(),
        });
    entry.publisher = Publisher {
        id: publisher_id.to_string(),
        username: account
            .header("username")
            .unwrap_or(publisher_id)
            .to_string(),
        display_name: account
            .header("display-name")
            .unwrap_or(publisher_id)
            .to_string(),
        validation: match account.header("validation") {
            Some("certified" | "verified") => "verified",
            Some("starred") => "starred",
            _ => "unproven",
        }
        .to_string(),
    };
    if let Some(track) = default_track {
        entry.default_track = Some(track.to_string());
    }
    let new = !entry.revisions.contains_key(&revision);
    entry.revisions.insert(
        revision,
        Revision {
            revision,
            sha3_384: hex::encode(digest),
            size,
            sha256: staged.hashes.sha256.to_hex(),
            created_at: revision_assertion
                .header("timestamp")
                .unwrap_or(&now)
                .to_string(),
            meta: meta.clone(),
            icon,
        },
    );
    let mut released = Vec::new();
    for arch in &architectures {
        for channel in channels {
            entry.release(arch, channel, revision, &now);
            released.push(format!(
                "{arch} {}",
                entry.releases.last().expect("just released").channel()
            ));
        }
    }
    let mut prerequisites: Vec<String> = meta.base.iter().cloned().collect();
    prerequisites.extend(meta.default_providers.iter().cloned());
    let prerequisites = prerequisites
        .into_iter()
        .filter(|p| p != &meta.name)
        .map(|p| {
            let present = catalog.snaps.contains_key(&p);
            (p, present)
        })
        .collect();
    catalog.save(data_dir)?;
    Ok(Imported {
        name: meta.name,
        snap_id,
        revision,
        version: meta.version,
        architectures,
        channels: released,
        new,
        added,
        prerequisites,
    })
}

/// Stages an assertion's bytes and records it, unless a newer revision is already known.
fn remember(
    catalog: &mut Catalog,
    staging: &crate::storage::Staging,
    a: &Assertion,
) -> Result<(), StorageError> {
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
    let store = crate::storage::ContentStore::new(data_dir);
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
