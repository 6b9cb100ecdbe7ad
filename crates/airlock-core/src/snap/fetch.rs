//! `airlock snap fetch`, on the connected side: the snaps of `[[snaps.snap]]` downloaded from
//! an upstream store through the API snapd uses (a refresh `download` action, the blob, then
//! its assertions), checked exactly as an import is, with the prerequisites snapd will ask
//! for (base, snapd, content providers). Another airlock is a valid upstream.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};

use super::assertion::{Assertion, split_stream};
use super::catalog::{Catalog, Channel, Revision, SnapEntry};
use super::import::{Offer, import_locked, prerequisites};
use super::trust::Trust;
use super::{Imported, SnapError};
use crate::net::{Checksum, Http, HttpOptions, NetError};
use crate::report::Reporter;
use crate::site::Site;
use crate::storage::StorageError;
use crate::storage::history::{History, Run, RunKind};

/// Store JSON and assertions are small; anything beyond this is not what we asked for.
const SMALL: u64 = 4 << 20;

/// One snap, architecture and channel to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub name: String,
    pub channel: String,
    pub architecture: String,
    /// Added because another fetched snap needs it.
    pub prerequisite: bool,
}

#[derive(Debug)]
pub struct Fetched {
    pub wanted: Wanted,
    pub imported: Imported,
    /// Whether the blob was downloaded (false: the store already had this revision).
    pub downloaded: bool,
}

fn bad_url(url: &str, source: crate::net::UrlError) -> SnapError {
    SnapError::BadUrl {
        url: url.to_string(),
        source,
    }
}

fn upstream_error(url: &str, reason: impl Into<String>) -> SnapError {
    SnapError::Upstream {
        url: url.to_string(),
        reason: reason.into(),
    }
}

impl From<NetError> for SnapError {
    fn from(e: NetError) -> SnapError {
        SnapError::Net(Box::new(e))
    }
}

/// Fetches every configured snap; prerequisites are added on `stable` of the same
/// architecture. Returns what each fetch imported.
pub async fn fetch(
    site: &Site,
    trust: &Trust,
    reporter: Arc<dyn Reporter>,
) -> Result<Vec<Fetched>, SnapError> {
    let config = &site.config.snaps;
    let _lock = site.lock(&*reporter)?;
    let extra_roots = match &config.upstream_ca {
        Some(path) => vec![crate::storage::read_limited(
            path,
            1 << 20,
            "a PEM certificate chain",
        )?],
        None => Vec::new(),
    };
    let sync = &site.config.sync;
    let http = Http::new(HttpOptions {
        jobs: sync.jobs,
        timeout: sync.timeout.0,
        retries: sync.retries,
        extra_roots,
    })?;
    let base = reqwest::Url::parse(&config.upstream).map_err(|e| bad_url(&config.upstream, e))?;
    let mut queue: VecDeque<Wanted> = config
        .snaps
        .iter()
        .flat_map(|s| {
            s.architectures.iter().flat_map(move |arch| {
                s.channels.iter().map(move |channel| Wanted {
                    name: s.name.clone(),
                    channel: channel.clone(),
                    architecture: arch.clone(),
                    prerequisite: false,
                })
            })
        })
        .collect();
    let known = Catalog::load(site.data_dir())?.snaps;
    let mut seen: Vec<Wanted> = Vec::new();
    let mut fetched: Vec<Fetched> = Vec::new();
    while let Some(wanted) = queue.pop_front() {
        if seen.iter().any(|s| {
            s.name == wanted.name
                && s.channel == wanted.channel
                && s.architecture == wanted.architecture
        }) {
            continue;
        }
        seen.push(wanted.clone());
        let one = fetch_one(site, trust, &http, &base, &wanted, &*reporter).await?;
        let mut needs: Vec<String> = one
            .imported
            .prerequisites
            .iter()
            .map(|(name, _)| name.clone())
            .collect();
        if !needs.is_empty() && one.imported.name != "snapd" {
            needs.push("snapd".into());
        }
        for name in needs {
            let prerequisite = Wanted {
                name,
                channel: "stable".into(),
                architecture: wanted.architecture.clone(),
                prerequisite: true,
            };
            if !seen
                .iter()
                .chain(queue.iter())
                .any(|s| s.name == prerequisite.name && s.architecture == prerequisite.architecture)
            {
                queue.push_back(prerequisite);
            }
        }
        fetched.push(one);
    }
    // Each snap a source of the room estimate; one new here is a first fetch.
    let mut added: BTreeMap<&str, u64> = BTreeMap::new();
    for one in &fetched {
        *added.entry(&one.imported.name).or_default() += one.imported.added;
    }
    for (name, bytes) in added {
        let kind = RunKind::first_when(!known.contains_key(name));
        // Nothing new is no run, as an unchanged mirror is none.
        if bytes == 0 && kind == RunKind::Update {
            continue;
        }
        let run = Run {
            source: format!("snaps/{name}"),
            kind,
            at: jiff::Timestamp::now(),
            bytes,
        };
        History::record_or_warn(site.data_dir(), run, &*reporter);
    }
    Ok(fetched)
}

async fn fetch_one(
    site: &Site,
    trust: &Trust,
    http: &Http,
    base: &reqwest::Url,
    wanted: &Wanted,
    reporter: &dyn Reporter,
) -> Result<Fetched, SnapError> {
    let refresh_url = base
        .join("v2/snaps/refresh")
        .map_err(|e| bad_url(base.as_str(), e))?;
    let body = json!({
        "context": [],
        "actions": [{
            "action": "download",
            "instance-key": "download-1",
            "name": wanted.name,
            "channel": wanted.channel,
            "epoch": null,
        }],
        "fields": ["architectures", "base", "confinement", "download", "epoch", "name",
                   "publisher", "revision", "snap-id", "snap-yaml", "summary", "type", "version"],
    })
    .to_string();
    let headers = [
        ("Snap-Device-Series", "16"),
        ("Snap-Device-Architecture", wanted.architecture.as_str()),
        ("Snap-Classic", "true"),
        ("Accept", "application/json"),
    ];
    let url_text = refresh_url.to_string();
    let answer = http
        .request_small(&refresh_url, &headers, Some(body.as_bytes()), SMALL)
        .await?
        .ok_or_else(|| upstream_error(&url_text, "not found: is this a snap store?"))?;
    let answer: Value = serde_json::from_slice(&answer).map_err(|source| SnapError::NotStore {
        url: url_text.clone(),
        source,
    })?;
    let result = answer["results"]
        .as_array()
        .and_then(|r| r.first())
        .ok_or_else(|| upstream_error(&url_text, format!("no result for {}", wanted.name)))?;
    if result["result"] == "error" {
        return Err(upstream_error(
            &url_text,
            format!(
                "{} on {} for {}: {} ({})",
                wanted.name,
                wanted.channel,
                wanted.architecture,
                result["error"]["message"].as_str().unwrap_or(""),
                result["error"]["code"].as_str().unwrap_or("error"),
            ),
        ));
    }
    let snap = &result["snap"];
    let field = |name: &str| {
        snap["download"][name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| upstream_error(&url_text, format!("the answer lacks download.{name}")))
    };
    let download_url = field("url")?;
    let sha3_hex = field("sha3-384")?;
    let size = snap["download"]["size"]
        .as_u64()
        .ok_or_else(|| upstream_error(&url_text, "the answer lacks download.size"))?;
    let mut sha3 = [0u8; 48];
    hex::decode_to_slice(&sha3_hex, &mut sha3)
        .map_err(|_| upstream_error(&url_text, format!("{sha3_hex:?} is not a SHA3-384")))?;
    let revision = snap["revision"].as_u64().unwrap_or(0);
    let effective = result["effective-channel"]
        .as_str()
        .unwrap_or(&wanted.channel)
        .to_string();
    let default_track = result["redirect-channel"]
        .as_str()
        .and_then(|r| r.split('/').next())
        .map(str::to_string);

    // First the assertions `snap download` would fetch, up to a key the site trusts: the
    // signed snap-revision, not the store's JSON, says how large the blob may be.
    let assertions = fetch_assertions(http, base, trust, &sha3).await?;
    let signed_size = assertions
        .iter()
        .find(|a| a.kind() == "snap-revision")
        .and_then(|a| a.integer("snap-size").ok().flatten());
    if signed_size != Some(size) {
        return Err(upstream_error(
            &url_text,
            format!(
                "{} revision {revision}: the store says {size} bytes, its snap-revision {}",
                wanted.name,
                signed_size.map_or("says nothing".into(), |s| format!("says {s}"))
            ),
        ));
    }

    let channel = Channel::parse(&effective).map_err(|e| upstream_error(&url_text, e))?;
    let store = site.store();
    let catalog = Catalog::load(site.data_dir())?;
    let known = catalog
        .snaps
        .get(&wanted.name)
        .and_then(|e| e.revisions.get(&revision).map(|r| (e, r)))
        .filter(|(_, r)| r.sha3_384 == sha3_hex)
        .map(|(e, r)| {
            let digest = crate::storage::Sha256::from_hex(&r.sha256).ok_or_else(|| {
                SnapError::Usage(format!("damaged catalog entry for {}", wanted.name))
            })?;
            Ok::<_, SnapError>((e, r, digest))
        })
        .transpose()?
        .filter(|(_, _, digest)| store.contains(digest));
    if let Some((entry, known, _)) = known {
        let recorded = Recorded {
            entry,
            revision: known,
            channel: &channel,
            default_track: default_track.as_deref(),
        };
        if let Some(imported) = recorded.unchanged(&catalog, wanted, &assertions) {
            return Ok(Fetched {
                wanted: wanted.clone(),
                imported,
                downloaded: false,
            });
        }
    }

    // The blob, resumable: named by its digest, so an interrupted run continues it.
    let partial = store.partial_named(&format!("snap-{sha3_hex}"));
    let (file, downloaded) = match known {
        Some((_, _, digest)) => {
            // A writer may have dropped it after a push: read back (blocking) first.
            let reading = store.clone();
            let path = tokio::task::spawn_blocking(move || reading.readable(&digest))
                .await
                .expect("reading a blob back does not panic")?;
            (path, false)
        }
        None => {
            let dir = partial.parent().expect("partial files have a folder");
            fs_err::create_dir_all(dir).map_err(|source| StorageError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
            let url = reqwest::Url::parse(&download_url).map_err(|e| bad_url(&download_url, e))?;
            let task = reporter.start(
                &format!("{} {}", wanted.name, revision),
                Some(size),
                crate::report::Unit::Bytes,
            );
            let result = http
                .download_checked(
                    &url,
                    size,
                    Checksum::Sha3_384(sha3),
                    &partial,
                    Some((reporter, task)),
                )
                .await;
            reporter.finish(task);
            result?;
            (partial.clone(), true)
        }
    };
    let assert_path = PathBuf::from(format!("{}assertions of {}", base, wanted.name));
    let offer = Offer {
        snap: &file,
        assert_path: &assert_path,
        given: &assertions,
        channels: &[channel],
        architectures: std::slice::from_ref(&wanted.architecture),
        default_track: default_track.as_deref(),
    };
    let imported = import_locked(site, trust, &offer)?;
    if downloaded {
        let _ = std::fs::remove_file(&partial);
    }
    Ok(Fetched {
        wanted: wanted.clone(),
        imported,
        downloaded,
    })
}

/// A revision the catalog has, as the upstream offers it again.
struct Recorded<'a> {
    entry: &'a SnapEntry,
    revision: &'a Revision,
    channel: &'a Channel,
    default_track: Option<&'a str>,
}

impl Recorded<'_> {
    /// What importing the revision again would give, when it would change nothing: the
    /// revision already released on this channel for this architecture, the same default
    /// track, and no assertion newer than the catalog's (a new declaration or account key is
    /// imported). Skipping the import spares a copy and a hash of the snap, a read from the
    /// bucket on a writer that keeps no snaps, and a catalog rewritten for nothing.
    fn unchanged(
        &self,
        catalog: &Catalog,
        wanted: &Wanted,
        assertions: &[Assertion],
    ) -> Option<Imported> {
        let arch = &wanted.architecture;
        let release = self
            .entry
            .released(arch, self.channel)
            .filter(|r| r.revision == self.revision.revision)?;
        let same_track = self
            .default_track
            .is_none_or(|t| self.entry.default_track.as_deref() == Some(t));
        let assertions_known = assertions.iter().all(|a| {
            catalog
                .assertions
                .get(&a.reference())
                .is_some_and(|s| s.revision >= a.revision())
        });
        (same_track && assertions_known).then(|| Imported {
            name: wanted.name.clone(),
            snap_id: self.entry.snap_id.clone(),
            revision: self.revision.revision,
            version: self.revision.meta.version.clone(),
            architectures: vec![arch.clone()],
            channels: vec![format!("{arch} {}", release.channel())],
            new: false,
            added: 0,
            prerequisites: prerequisites(catalog, &self.revision.meta),
        })
    }
}

/// At most this many assertions per snap: a chain is four or five; more is a loop.
const MAX_ASSERTIONS: usize = 16;

/// The snap-revision of `sha3`, its declaration, the publisher's account and the
/// account-keys up to one the site trusts, from the store's assertion endpoint.
pub(crate) async fn fetch_assertions(
    http: &Http,
    base: &reqwest::Url,
    trust: &Trust,
    sha3: &[u8; 48],
) -> Result<Vec<Assertion>, SnapError> {
    let digest_b64 = super::assertion::snap_digest_b64(sha3);
    let mut assertions: Vec<Assertion> = Vec::new();
    let mut queue = VecDeque::from([format!("snap-revision/{digest_b64}")]);
    let mut asked: Vec<String> = Vec::new();
    while let Some(reference) = queue.pop_front() {
        if asked.contains(&reference) {
            continue;
        }
        if asked.len() >= MAX_ASSERTIONS {
            return Err(upstream_error(
                base.as_str(),
                format!("more than {MAX_ASSERTIONS} assertions for one snap: the chain loops"),
            ));
        }
        asked.push(reference.clone());
        let url = base
            .join(&format!("v2/assertions/{reference}"))
            .map_err(|e| bad_url(base.as_str(), e))?;
        let bytes = http
            .request_small(
                &url,
                &[("Accept", "application/x.ubuntu.assertion")],
                None,
                SMALL,
            )
            .await?
            .ok_or_else(|| {
                let reason = if reference.starts_with("account-key/") {
                    "the store does not serve this account-key, and it is not a root this site trusts"
                } else {
                    "the store does not have this assertion"
                };
                upstream_error(url.as_str(), reason)
            })?;
        for a in split_stream(&bytes, url.as_str())? {
            match (a.kind(), a.header("snap-id"), a.header("publisher-id")) {
                ("snap-revision", Some(id), _) => {
                    queue.push_back(format!("snap-declaration/16/{id}"));
                }
                ("snap-declaration", _, Some(publisher))
                    if !trust.roots().iter().any(|r| {
                        r.kind() == "account" && r.header("account-id") == Some(publisher)
                    }) =>
                {
                    queue.push_back(format!("account/{publisher}"));
                }
                _ => {}
            }
            let key = a.sign_key();
            if !trust
                .roots()
                .iter()
                .any(|r| r.header("public-key-sha3-384") == Some(key))
            {
                queue.push_back(format!("account-key/{key}"));
            }
            assertions.push(a);
        }
    }
    Ok(assertions)
}
