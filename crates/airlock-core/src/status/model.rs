//! The document `/status.json` serves and `airlock status --json` prints: typed, so the page,
//! the metrics and the terminal summary read the same fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::counters::CountersSnapshot;
use crate::storage::verify_run::LastRun;

/// Everything a site serves and how it is doing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteStatus {
    /// airlock's version.
    pub version: String,
    pub generated: jiff::Timestamp,
    /// Who gathered it: the running server, or `airlock status` reading the data folder.
    pub source: Source,
    /// The running server; none when read from the data folder.
    pub server: Option<ServerInfo>,
    pub health: Health,
    /// Each apt repo, mirror and combined suite published, by name.
    pub apt: Vec<AptContent>,
    /// The boot image stream, when one is published.
    pub images: Option<ImageStream>,
    /// The snap store, when a snap was imported.
    pub snaps: Option<SnapStore>,
    pub storage: Storage,
    /// The last `airlock verify` run.
    pub verify: Option<LastRun>,
    /// The upstream names answered here, with their counters.
    pub routes: Vec<RouteStatus>,
    /// Requests served since the counters began (kept across restarts).
    pub http: HttpStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Server,
    DataFolder,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub started: jiff::Timestamp,
    pub public_url: String,
}

/// Healthy, or what is wrong and what to do, worst first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub level: Level,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Healthy,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Healthy => "healthy",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Problem {
    pub level: Level,
    /// What is wrong, naming the content.
    pub what: String,
    /// What to do about it.
    pub action: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AptKind {
    /// A local repo (`[[apt.repo]]`).
    Repo,
    /// A mirror of an upstream archive (`[[apt.mirror]]`).
    Mirror,
    /// Suites combining repos and mirrors (`[[apt.publish]]`).
    Combined,
}

impl AptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AptKind::Repo => "repo",
            AptKind::Mirror => "mirror",
            AptKind::Combined => "combined",
        }
    }
}

/// What a content was made from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Origin {
    /// The upstream URL it is synced from.
    pub upstream: Option<String>,
    /// The bundle it was last imported from.
    pub bundle: Option<BundleOrigin>,
    /// For a combined suite: the `REPO/SUITE`s it combines.
    pub inputs: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleOrigin {
    pub id: String,
    /// The fingerprint of the site that exported it.
    pub exporter: Option<String>,
    pub created: Option<String>,
    pub imported: Option<String>,
}

/// One apt repo, mirror or combined suite.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AptContent {
    pub kind: AptKind,
    pub name: String,
    pub origin: Origin,
    /// When the tree served now was switched in.
    pub published: Option<jiff::Timestamp>,
    /// The last sync that added to the store (mirrors).
    pub last_sync: Option<jiff::Timestamp>,
    /// The last import of a bundle carrying it.
    pub last_import: Option<jiff::Timestamp>,
    pub suites: Vec<SuiteStatus>,
    /// Signed by its upstream's key, not the site's: a verbatim mirror keeps the upstream's
    /// Release files, so its clients keep the upstream's key.
    #[serde(default)]
    pub signed_by_upstream: bool,
    /// Files of the tree served now, and their bytes.
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteStatus {
    pub suite: String,
    pub codename: Option<String>,
    pub components: Vec<String>,
    pub architectures: Vec<String>,
    /// The Release's Date.
    pub date: Option<jiff::Timestamp>,
    pub valid_until: Option<jiff::Timestamp>,
    /// Until Valid-Until, from `generated`; negative once passed.
    pub seconds_left: Option<i64>,
    pub packages: Vec<PackageCount>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageCount {
    pub component: String,
    pub architecture: String,
    pub packages: u64,
}

/// The boot image stream served at `/images/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageStream {
    pub origin: Origin,
    pub published: Option<jiff::Timestamp>,
    pub last_sync: Option<jiff::Timestamp>,
    pub last_import: Option<jiff::Timestamp>,
    pub products: Vec<ImageProduct>,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProductKind {
    /// A boot image (kernel, initrd, root file system).
    Image,
    /// A bootloader MAAS hands to machines (grub, pxelinux...).
    Bootloader,
    /// A custom image (`airlock images add`).
    Custom,
}

impl ProductKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductKind::Image => "image",
            ProductKind::Bootloader => "bootloader",
            ProductKind::Custom => "custom",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageProduct {
    pub name: String,
    pub kind: ProductKind,
    pub os: String,
    pub release: String,
    pub arch: String,
    pub subarch: Option<String>,
    pub newest_version: Option<String>,
    pub versions: u64,
    /// The bytes of the newest version's items.
    pub bytes: u64,
}

/// The snaps the store serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapStore {
    pub last_import: Option<jiff::Timestamp>,
    pub snaps: Vec<SnapStatus>,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapStatus {
    pub name: String,
    pub publisher: String,
    pub revisions: Vec<u64>,
    pub channels: Vec<ChannelStatus>,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelStatus {
    /// `track/risk[/branch]`.
    pub channel: String,
    pub architecture: String,
    pub revision: u64,
    pub version: String,
}

/// The content store and its disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Storage {
    pub store_bytes: u64,
    pub store_blobs: u64,
    /// Blobs pushed to the bucket and dropped from this disk (`[storage] keep_pushed`).
    #[serde(default)]
    pub store_dropped_blobs: u64,
    pub disk_free_bytes: Option<u64>,
    pub disk_total_bytes: Option<u64>,
    /// The room the next sync or import needs, from the largest recent updates (as
    /// `airlock verify` estimates it); none before any update.
    pub next_sync_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouteStatus {
    pub host: String,
    pub path: String,
    /// The published tree it is answered from.
    pub to: String,
    pub derived_from: Option<String>,
    pub hits: u64,
    pub misses: u64,
    /// Answered by a pull-through fetch from the upstream.
    pub pulled: u64,
    /// Pull-through requests refused (not listed by a signed index, or the upstream failed).
    pub pull_refused: u64,
    pub recent_misses: Vec<String>,
}

pub type HttpStatus = CountersSnapshot;

/// A frontend's `/status.json` (no data folder: what it serves from its bucket, its disk
/// cache, what it answered since it started).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrontendStatus {
    pub version: String,
    /// `s3://bucket/prefix at endpoint`.
    pub bucket: String,
    pub server: ServerInfo,
    /// The push served now; none before the first.
    pub served: Option<ServedPush>,
    /// When the bucket last answered the frontend's look for a new push.
    pub refreshed: Option<jiff::Timestamp>,
    /// The disk cache, when `[storage] cache_dir` is set.
    pub cache: Option<FrontendCache>,
    pub large_blobs: LargeBlobs,
    pub http: HttpStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServedPush {
    pub generation: u64,
    /// When the writer switched the pointer.
    pub pushed: jiff::Timestamp,
    /// `apt/NAME` or `images` → the ID of the tree served.
    pub trees: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrontendCache {
    pub dir: String,
    pub blobs: u64,
    pub bytes: u64,
    pub limit: u64,
}

/// Requests for blobs over 1 MiB (packages, images, snaps), by where their bytes came from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LargeBlobs {
    pub from_cache: u64,
    pub from_bucket: u64,
    /// Bytes the bucket sent for them.
    pub bucket_bytes: u64,
}
