//! The bodies of the store API's answers, in the shape snapd decodes: field names as the
//! store spells them (`shared/specs/snapstore.md`), optional fields left out when unset.

use serde::Serialize;

use crate::snap::catalog::{Release, Revision, SnapEntry};

/// snapd's error body: `{"error-list":[{"code","message"}]}`.
#[derive(Serialize)]
pub struct ErrorList {
    #[serde(rename = "error-list")]
    pub error_list: [Problem; 1],
}

#[derive(Serialize)]
pub struct Problem {
    pub code: &'static str,
    pub message: String,
}

/// Snap-level fields: the same for every channel.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SnapDetails {
    pub name: String,
    pub snap_id: String,
    pub summary: String,
    pub description: String,
    pub title: String,
    pub license: String,
    pub publisher: Publisher,
    pub media: Vec<Media>,
    pub private: bool,
    pub prices: Empty,
    pub contact: &'static str,
    pub website: &'static str,
    pub store_url: &'static str,
    pub common_ids: [(); 0],
}

/// `{}`.
#[derive(Serialize)]
pub struct Empty {}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Publisher {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub validation: String,
}

#[derive(Serialize)]
pub struct Media {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub url: String,
}

impl SnapDetails {
    pub fn new(name: &str, entry: &SnapEntry, revision: &Revision, base: &str) -> Self {
        let meta = &revision.meta;
        SnapDetails {
            name: name.to_string(),
            snap_id: entry.snap_id.clone(),
            summary: meta.summary.clone(),
            description: meta.description.clone(),
            title: meta.title.clone().unwrap_or_else(|| name.to_string()),
            license: meta.license.clone().unwrap_or_else(|| "unset".into()),
            publisher: Publisher {
                id: entry.publisher.id.clone(),
                username: entry.publisher.username.clone(),
                display_name: entry.publisher.display_name.clone(),
                validation: entry.publisher.validation.clone(),
            },
            media: revision
                .icon
                .iter()
                .map(|i| Media {
                    kind: "icon",
                    url: format!("{base}/api/v1/snaps/icon/{}.{}", i.sha256, i.kind),
                })
                .collect(),
            private: false,
            prices: Empty {},
            contact: "",
            website: "",
            store_url: "",
            common_ids: [],
        }
    }
}

/// Revision-level fields, as info's channel-map entries and refresh results carry them.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RevisionDetails {
    pub revision: u64,
    pub version: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    pub confinement: String,
    pub grade: String,
    pub architectures: Vec<String>,
    pub epoch: serde_json::Value,
    pub created_at: String,
    pub download: Download,
}

#[derive(Serialize)]
pub struct Download {
    pub url: String,
    #[serde(rename = "sha3-384")]
    pub sha3_384: String,
    pub size: u64,
    pub deltas: [(); 0],
}

impl RevisionDetails {
    pub fn new(entry: &SnapEntry, revision: &Revision, base: &str) -> Self {
        let meta = &revision.meta;
        RevisionDetails {
            revision: revision.revision,
            version: meta.version.clone(),
            kind: meta.kind.clone(),
            base: meta.base.clone(),
            confinement: meta.confinement.clone(),
            grade: meta.grade.clone(),
            architectures: meta.architectures.clone(),
            epoch: meta.epoch.clone(),
            created_at: revision.created_at.clone(),
            download: Download {
                url: format!(
                    "{base}/api/v1/snaps/download/{}_{}.snap",
                    entry.snap_id, revision.revision
                ),
                sha3_384: revision.sha3_384.clone(),
                size: revision.size,
                deltas: [],
            },
        }
    }
}

/// `GET /v2/snaps/info/NAME`.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Info {
    pub name: String,
    pub snap_id: String,
    pub snap: SnapDetails,
    pub channel_map: Vec<ChannelMapEntry>,
}

#[derive(Serialize)]
pub struct ChannelMapEntry {
    #[serde(flatten)]
    pub revision: RevisionDetails,
    pub channel: ChannelDetails,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ChannelDetails {
    pub architecture: String,
    pub name: String,
    pub track: String,
    pub risk: String,
    pub released_at: String,
}

impl ChannelDetails {
    pub fn new(release: &Release, arch: &str) -> Self {
        ChannelDetails {
            architecture: arch.to_string(),
            name: release.channel(),
            track: release.track.clone(),
            risk: release.risk.clone(),
            released_at: release.released_at.clone(),
        }
    }
}

/// `POST /v2/snaps/refresh`: one result per action that has one; errors are results too.
#[derive(Serialize)]
pub struct Refresh {
    pub results: Vec<ActionResult>,
    #[serde(rename = "error-list")]
    pub error_list: [(); 0],
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum ActionResult {
    Snap(Box<SnapResult>),
    Assertions(AssertionsResult),
    Error(ActionError),
}

/// An `install`, `download` or `refresh` answered with a revision.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SnapResult {
    pub result: String,
    pub instance_key: String,
    pub snap_id: String,
    pub name: String,
    pub snap: ResultSnap,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_channel: Option<String>,
}

/// What a refresh result says of the snap: both levels of fields, and its snap.yaml.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ResultSnap {
    #[serde(flatten)]
    pub revision: RevisionDetails,
    #[serde(flatten)]
    pub snap: SnapDetails,
    pub snap_yaml: String,
}

/// A `fetch-assertions` action: stream URLs for what this store holds.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AssertionsResult {
    pub result: &'static str,
    pub key: String,
    pub assertion_stream_urls: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_list: Vec<MissingAssertion>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct MissingAssertion {
    #[serde(rename = "type")]
    pub kind: String,
    pub primary_key: Vec<String>,
    pub code: &'static str,
    pub message: String,
}

/// An action the store cannot answer with a revision.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ActionError {
    pub result: &'static str,
    pub instance_key: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snap_id: Option<String>,
    pub error: ActionProblem,
}

#[derive(Serialize)]
pub struct ActionProblem {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<Releases>,
}

/// Where a snap is released, for "not available on this channel" answers.
#[derive(Serialize)]
pub struct Releases {
    pub releases: Vec<ReleasedChannel>,
}

#[derive(Serialize)]
pub struct ReleasedChannel {
    pub architecture: String,
    pub channel: String,
}

/// `GET /v2/snaps/find`.
#[derive(Serialize)]
pub struct Find {
    pub results: Vec<Found>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Found {
    pub name: String,
    pub snap_id: String,
    pub snap: SnapDetails,
    pub revision: FoundRevision,
}

#[derive(Serialize)]
pub struct FoundRevision {
    #[serde(flatten)]
    pub revision: RevisionDetails,
    pub channel: String,
}

#[derive(Serialize)]
pub struct Name {
    pub name: &'static str,
}

/// `GET /v2/snaps/categories`.
#[derive(Serialize)]
pub struct Categories {
    pub categories: [Name; 1],
}

/// HAL bodies (`/api/v1/snaps/sections` and `names`): the list under `_embedded`.
#[derive(Serialize)]
pub struct Embedded<T> {
    #[serde(rename = "_embedded")]
    pub embedded: T,
}

#[derive(Serialize)]
pub struct Sections {
    #[serde(rename = "clickindex:sections")]
    pub sections: [Name; 1],
}

/// The catalog snapd keeps for command-not-found.
#[derive(Serialize)]
pub struct Packages {
    #[serde(rename = "clickindex:package")]
    pub packages: Vec<Package>,
}

#[derive(Serialize)]
pub struct Package {
    pub package_name: String,
    pub version: String,
    pub summary: String,
    pub apps: Vec<String>,
    pub aliases: [(); 0],
}

#[derive(Serialize)]
pub struct Nonce {
    pub nonce: &'static str,
}

#[derive(Serialize)]
pub struct Session {
    pub macaroon: &'static str,
}
