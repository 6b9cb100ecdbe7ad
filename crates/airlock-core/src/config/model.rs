//! The configuration as the rest of the crate reads it: one type per section, every value
//! checked and every relative path resolved (`Config` itself, and `[proxy]` and `[dns]`, are
//! in the parent and in `network`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::filter::Filter;
use super::value::{Architecture, FieldValue, Name, Period, SuiteSource};

/// What `airlock export` carries besides the content (`[export]`).
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// The airlock .deb each bundle carries (`airlock_deb`); none: found as docs/bundles.md says.
    pub airlock_deb: Option<PathBuf>,
    /// `carry_airlock = false`: bundles carry no airlock.
    pub carry_airlock: bool,
}

/// Where the site's content lives (`[storage]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StorageConfig {
    /// The data folder alone (`[site] data_dir`).
    #[default]
    Local,
    /// Also an S3-compatible bucket: writers push to it, frontends serve from it.
    S3(Box<S3Storage>),
}

/// An S3-compatible bucket (`[storage] kind = "s3"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Storage {
    /// `http://host:port` or `https://host:port`, without a trailing slash.
    pub endpoint: String,
    pub bucket: String,
    /// The region the server signs for (Garage: its `s3_region`); `us-east-1` unless set.
    pub region: String,
    /// Prepended to every key: empty, or ending in `/`.
    pub prefix: String,
    /// Files holding the access key ID and the secret key; the environment's
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` when unset.
    pub access_key_file: Option<PathBuf>,
    pub secret_key_file: Option<PathBuf>,
    /// A PEM CA certificate for an endpoint with a private CA.
    pub ca: Option<PathBuf>,
    /// A frontend's local cache of blobs, and its size limit.
    pub cache_dir: Option<PathBuf>,
    pub cache_size: u64,
    /// How often a frontend looks for a new publish.
    pub poll: Duration,
    /// A writer keeps at most this many bytes of pushed packages, images and snaps on its
    /// own disk, dropping the oldest after each push; none: it keeps everything.
    pub keep_pushed: Option<u64>,
}

/// Bundles from another site (`[import]`).
#[derive(Debug, Clone, Default)]
pub struct ImportConfig {
    /// OpenPGP keyrings of the sites whose bundles `airlock import` accepts.
    pub trusted_keys: Vec<PathBuf>,
}

/// The name snapd asks for its store by, when nothing tells it otherwise.
pub const SNAP_STORE_HOST: &str = "api.snapcraft.io";

/// The offline snap store (`[snaps]`).
#[derive(Debug, Clone, Default)]
pub struct SnapsConfig {
    /// `.assert` files with root account-keys trusted besides Canonical's built-in one
    /// (private brand stores, tests).
    pub trusted_keys: Vec<PathBuf>,
    /// The store `airlock snap fetch` asks, ending in `/` (default the public store).
    pub upstream: String,
    /// A PEM CA certificate for an upstream with a private CA (another airlock).
    pub upstream_ca: Option<PathBuf>,
    /// What `airlock snap fetch` fetches (`[[snaps.snap]]`).
    pub snaps: Vec<SnapFetchConfig>,
}

#[derive(Debug, Clone)]
pub struct SnapFetchConfig {
    pub name: String,
    pub channels: Vec<String>,
    pub architectures: Vec<String>,
}

/// The MAAS boot-image stream (`[images]`), published at `/images/`.
#[derive(Debug, Clone)]
pub struct ImagesConfig {
    /// The upstream mirror root, ending in `/` (`http://images.maas.io/ephemeral-v3/stable/`).
    pub url: String,
    pub mode: ImagesMode,
    pub keyring: Vec<PathBuf>,
    /// Newest versions kept per product (curated: 1 unless set; verbatim: all unless set).
    pub keep: usize,
    /// MAAS-style selections; none selects every product.
    pub select: Vec<ImageSelection>,
    /// sstream-mirror style filters on item attributes (`arch=amd64`, `release~(jammy|noble)`).
    pub filters: Vec<Filter>,
}

/// How the image stream is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImagesMode {
    /// Documents listing exactly what is stored (and custom images), signed with the site key.
    Curated,
    /// The upstream's signed documents byte for byte, and every file they list.
    Verbatim,
}

/// One `[[images.select]]`: what `boot-source-selections create` takes. `*` matches anything.
#[derive(Debug, Clone)]
pub struct ImageSelection {
    pub os: String,
    pub release: Vec<String>,
    pub arches: Vec<String>,
    pub subarches: Vec<String>,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SiteConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// How clients reach the server: `[site] public_url`, or made from `listen`.
    pub public_url: String,
    /// Whether `public_url` was configured rather than made from `listen`.
    pub(super) public_url_configured: bool,
    pub signing_key: PathBuf,
    /// How long files a publish replaces stay reachable, for clients holding older indices.
    pub grace: Period,
    /// HTTPS beside HTTP, when a certificate is configured (snapd wants a store over HTTPS).
    pub tls: Option<TlsConfig>,
    /// Connections queued before `serve` accepts them (`[site] listen_backlog`); the system's
    /// `net.core.somaxconn` when unset, and never above it.
    pub listen_backlog: Option<u32>,
    /// A response that makes no progress for this long is abandoned (`[site] write_timeout`).
    pub write_timeout: Duration,
    /// Open connections at most (`[site] max_connections`); sized from the open-files limit
    /// when unset.
    pub max_connections: Option<usize>,
}

impl SiteConfig {
    /// The public URL of a server listening on `bound` (`serve --listen`, or port 0 given
    /// a port): the configured one, or one made from that address.
    pub fn public_url_when_listening(&self, bound: SocketAddr) -> String {
        if self.public_url_configured {
            self.public_url.clone()
        } else {
            default_public_url(bound)
        }
    }
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub listen: SocketAddr,
    /// Where clients reach the HTTPS side, without a trailing slash.
    pub public_url: String,
}

#[derive(Debug, Clone, Default)]
pub struct AptConfig {
    pub repos: Vec<AptRepoConfig>,
    pub mirrors: Vec<AptMirrorConfig>,
    pub publish: Vec<AptPublishConfig>,
}

/// A published tree whose suites combine suites of repos and mirrors (`[[apt.publish]]`).
#[derive(Debug, Clone)]
pub struct AptPublishConfig {
    pub name: Name,
    /// Each published suite and where its packages come from; when two sources hold the same
    /// package, version and architecture, the one listed first wins.
    pub suites: Vec<(Name, Vec<SuiteSource>)>,
    pub origin: Option<FieldValue>,
    pub label: Option<FieldValue>,
    pub description: Option<FieldValue>,
    pub valid_for: Option<Period>,
}

/// How a mirror is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MirrorMode {
    /// The selected packages, republished and signed with the site key.
    Filtered,
    /// The upstream's signed files and indices byte for byte, and everything they list.
    Verbatim,
}

/// Which alternatives of a dependency (`a | b`, or the providers of a virtual package) a
/// filtered mirror takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Alternatives {
    /// The one apt would install on a system that has none of them.
    #[default]
    Apt,
    /// Every installable one, so that clients in any state find theirs.
    All,
}

#[derive(Debug, Clone)]
pub struct AptMirrorConfig {
    pub name: Name,
    /// The archive root, ending in `/` (`http://archive.ubuntu.com/ubuntu/`).
    pub url: String,
    pub suites: Vec<Name>,
    pub components: Vec<Name>,
    pub architectures: Vec<Architecture>,
    pub keyring: Vec<PathBuf>,
    /// Names and glob patterns; `None` mirrors everything.
    pub packages: Option<Vec<String>>,
    pub with_dependencies: bool,
    pub include_recommends: bool,
    pub alternatives: Alternatives,
    pub sources: bool,
    pub mode: MirrorMode,
    pub allow_unsigned: bool,
    /// Valid-Until of the re-signed Release files (filtered mode).
    pub valid_for: Option<Period>,
}

/// How syncs talk to upstreams.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub jobs: usize,
    pub timeout: Period,
    pub retries: u32,
}

#[derive(Debug, Clone)]
pub struct AptRepoConfig {
    pub name: Name,
    pub suites: Vec<Name>,
    pub components: Vec<Name>,
    pub architectures: Vec<Architecture>,
    pub origin: Option<FieldValue>,
    pub label: Option<FieldValue>,
    pub description: Option<FieldValue>,
    pub valid_for: Option<Period>,
    pub keep_versions: usize,
}

impl AptRepoConfig {
    pub fn has_suite(&self, suite: &str) -> bool {
        self.suites.iter().any(|s| s.as_str() == suite)
    }
    pub fn has_component(&self, component: &str) -> bool {
        self.components.iter().any(|c| c.as_str() == component)
    }
    pub fn has_architecture(&self, arch: &str) -> bool {
        self.architectures.iter().any(|a| a.as_str() == arch)
    }
}

/// How clients reach a server listening on `listen` when `[site] public_url` is not set.
pub(super) fn default_public_url(listen: SocketAddr) -> String {
    let host = if listen.ip().is_unspecified() {
        hostname().unwrap_or_else(|| "localhost".to_string())
    } else if listen.is_ipv6() {
        format!("[{}]", listen.ip())
    } else {
        listen.ip().to_string()
    };
    format!("http://{host}:{}", listen.port())
}

fn hostname() -> Option<String> {
    let name = rustix::system::uname()
        .nodename()
        .to_str()
        .ok()?
        .to_string();
    (!name.is_empty()).then_some(name)
}
