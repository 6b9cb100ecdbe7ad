//! `airlock.toml`: typed and validated. Unknown keys and bad values are errors that point at
//! the line, because a typo silently ignored is a mirror silently wrong.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::hint::Hint;
use crate::storage::{StorageError, read_limited_text};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

mod filter;
mod network;

pub use filter::Filter;
pub use network::{DnsConfig, ProxyConfig, Route};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: StorageError,
    },
    #[error("invalid config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Hint for ConfigError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            ConfigError::Read {
                source: StorageError::Read { source, .. },
                ..
            } if source.kind() == std::io::ErrorKind::NotFound => Some(
                "create a site with `airlock init DIR`, then run airlock there or pass --config DIR/airlock.toml",
            ),
            ConfigError::Read { .. } | ConfigError::Invalid { .. } => None,
        }
    }
}

/// The whole configuration, with relative paths already resolved against the config's folder.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub site: SiteConfig,
    pub apt: AptConfig,
    pub images: Option<ImagesConfig>,
    pub snaps: SnapsConfig,
    pub sync: SyncConfig,
    pub proxy: ProxyConfig,
    pub dns: DnsConfig,
    pub import: ImportConfig,
    pub export: ExportConfig,
}

/// What `airlock export` carries besides the content (`[export]`).
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// The airlock .deb each bundle carries (`airlock_deb`); none: found as docs/bundles.md says.
    pub airlock_deb: Option<PathBuf>,
    /// `carry_airlock = false`: bundles carry no airlock.
    pub carry_airlock: bool,
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
    public_url_configured: bool,
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

/// A suite of a repo or mirror, written `NAME/SUITE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SuiteSource {
    pub tree: Name,
    pub suite: Name,
}

impl fmt::Display for SuiteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tree, self.suite)
    }
}

impl<'de> Deserialize<'de> for SuiteSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let (tree, suite) = s.split_once('/').ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{s:?} must name a repo or mirror and one of its suites: \"NAME/SUITE\""
            ))
        })?;
        Ok(SuiteSource {
            tree: tree.parse().map_err(serde::de::Error::custom)?,
            suite: suite.parse().map_err(serde::de::Error::custom)?,
        })
    }
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

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        // A config is a few KiB; one listing thousands of packages stays far below this.
        const MAX_CONFIG: u64 = 4 << 20;
        let text = read_limited_text(path, MAX_CONFIG, "a config").map_err(|source| {
            ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        // Absolute, so that paths stay right whatever the working folder is later.
        let base = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));

        let mut names = HashSet::new();
        let mut repos = Vec::new();
        for raw_repo in raw.apt.repo {
            let at = |span: std::ops::Range<usize>| format!("line {}", line_of(text, span.start));
            let name = raw_repo.name.get_ref().clone();
            if !names.insert(name.clone()) {
                return Err(invalid(format!(
                    "{}: a repo named {:?} is already defined",
                    at(raw_repo.name.span()),
                    name.0
                )));
            }
            repos.push(AptRepoConfig {
                name,
                suites: raw_repo.suites.0,
                components: raw_repo.components.0,
                architectures: raw_repo.architectures.0,
                origin: raw_repo.origin,
                label: raw_repo.label,
                description: raw_repo.description,
                valid_for: raw_repo.valid_for,
                keep_versions: raw_repo.keep_versions.0,
            });
        }

        let mut mirrors = Vec::new();
        for raw_mirror in raw.apt.mirror {
            let at = |span: std::ops::Range<usize>| format!("line {}", line_of(text, span.start));
            let name = raw_mirror.name.get_ref().clone();
            if !names.insert(name.clone()) {
                return Err(invalid(format!(
                    "{}: a repo or mirror named {:?} is already defined (both publish under /apt/{}/)",
                    at(raw_mirror.name.span()),
                    name.0,
                    name.0
                )));
            }
            let mode = raw_mirror.mode.unwrap_or(MirrorMode::Filtered);
            let packages: Option<Vec<String>> = raw_mirror
                .packages
                .map(|p| p.0.into_iter().map(|p| p.0).collect());
            if mode == MirrorMode::Verbatim && packages.is_some() {
                return Err(invalid(format!(
                    "{}: mirror {:?}: verbatim mode keeps the upstream's signed indices, which list every package; remove `packages` or use mode = \"filtered\"",
                    at(raw_mirror.name.span()),
                    name.0
                )));
            }
            let keyring: Vec<PathBuf> = raw_mirror
                .keyring
                .map(|k| k.0)
                .unwrap_or_default()
                .into_iter()
                .map(|k| base.join(k))
                .collect();
            if keyring.is_empty() && !raw_mirror.allow_unsigned {
                return Err(invalid(format!(
                    "{}: mirror {:?} has no keyring: name the upstream's key file (keyring = \"/usr/share/keyrings/...\"), or set allow_unsigned = true to mirror without checking signatures",
                    at(raw_mirror.name.span()),
                    name.0
                )));
            }
            mirrors.push(AptMirrorConfig {
                name,
                url: raw_mirror.url.0,
                suites: raw_mirror.suites.0,
                components: raw_mirror.components.0,
                architectures: raw_mirror.architectures.0,
                keyring,
                with_dependencies: raw_mirror.with_dependencies.unwrap_or(packages.is_some()),
                packages,
                include_recommends: raw_mirror.include_recommends,
                alternatives: raw_mirror.alternatives,
                sources: raw_mirror.sources,
                mode,
                allow_unsigned: raw_mirror.allow_unsigned,
                valid_for: raw_mirror.valid_for,
            });
        }

        let mut publish = Vec::new();
        for raw_publish in raw.apt.publish {
            let at = format!("line {}", line_of(text, raw_publish.name.span().start));
            let name = raw_publish.name.get_ref().clone();
            if !names.insert(name.clone()) {
                return Err(invalid(format!(
                    "{at}: a repo, mirror or publish named {:?} is already defined (each publishes under /apt/{}/)",
                    name.0, name.0
                )));
            }
            if raw_publish.suites.is_empty() {
                return Err(invalid(format!(
                    "{at}: publish {:?} has no suites: add suites = {{ SUITE = [\"REPO/SUITE\", \"MIRROR/SUITE\"] }}",
                    name.0
                )));
            }
            for source in raw_publish.suites.values().flat_map(|s| &s.0) {
                let suites: Option<&[Name]> = repos
                    .iter()
                    .find(|r| r.name == source.tree)
                    .map(|r| &r.suites[..])
                    .or_else(|| {
                        mirrors
                            .iter()
                            .find(|m| m.name == source.tree)
                            .map(|m| &m.suites[..])
                    });
                match suites {
                    None => {
                        return Err(invalid(format!(
                            "{at}: publish {:?} takes from {source}, but there is no repo or mirror named {:?}",
                            name.0, source.tree.0
                        )));
                    }
                    Some(suites) if !suites.contains(&source.suite) => {
                        return Err(invalid(format!(
                            "{at}: publish {:?} takes from {source}, but {} has no suite {:?}",
                            name.0, source.tree, source.suite.0
                        )));
                    }
                    Some(_) => {}
                }
            }
            publish.push(AptPublishConfig {
                name,
                suites: raw_publish
                    .suites
                    .into_iter()
                    .map(|(suite, sources)| (suite, sources.0))
                    .collect(),
                origin: raw_publish.origin,
                label: raw_publish.label,
                description: raw_publish.description,
                valid_for: raw_publish.valid_for,
            });
        }

        let images = match raw.images {
            None => None,
            Some(raw_images) => {
                let keyring: Vec<PathBuf> = raw_images
                    .keyring
                    .0
                    .into_iter()
                    .map(|k| base.join(k))
                    .collect();
                let star = || vec!["*".to_string()];
                let mode = raw_images.mode.unwrap_or(ImagesMode::Curated);
                // A verbatim stream lists every version upstream has: all are kept unless
                // the user says otherwise (and is then told what would be missing).
                let keep_default = match mode {
                    ImagesMode::Curated => 1,
                    ImagesMode::Verbatim => usize::MAX,
                };
                Some(ImagesConfig {
                    url: raw_images.url.0,
                    mode,
                    keyring,
                    keep: raw_images.keep.map_or(keep_default, |k| k.0),
                    select: raw_images
                        .select
                        .into_iter()
                        .map(|s| ImageSelection {
                            os: s.os,
                            release: s.release.map_or_else(star, |r| r.0),
                            arches: s.arches.map_or_else(star, |a| a.0),
                            subarches: s.subarches.map_or_else(star, |a| a.0),
                            labels: s.labels.map_or_else(star, |l| l.0),
                        })
                        .collect(),
                    filters: raw_images.filters,
                })
            }
        };

        let site = raw.site;
        let listen = site
            .listen
            .unwrap_or_else(|| "0.0.0.0:8080".parse().expect("valid address"));
        let public_url_configured = site.public_url.is_some();
        let public_url = match site.public_url {
            Some(url) => url.0,
            None => default_public_url(listen),
        };
        let tls = match (site.tls_cert, site.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let tls_listen = site
                    .tls_listen
                    .unwrap_or_else(|| SocketAddr::new(listen.ip(), 8443));
                let public_url = match site.tls_public_url {
                    Some(url) => url.0,
                    // The HTTP address's host, on the HTTPS port.
                    None => format!(
                        "https://{}:{}",
                        url_host(&public_url).unwrap_or_else(|| "localhost".into()),
                        tls_listen.port()
                    ),
                };
                Some(TlsConfig {
                    cert: base.join(cert),
                    key: base.join(key),
                    listen: tls_listen,
                    public_url,
                })
            }
            _ => {
                return Err(invalid(
                    "[site] tls_cert and tls_key go together: set both (airlock tls init makes them), or neither".into(),
                ));
            }
        };
        let proxy = network::proxy(
            raw.proxy,
            &network::Trees {
                apt: &names,
                mirrors: &mirrors,
                images: images.as_ref(),
            },
            url_host(&public_url).as_deref(),
        )
        .map_err(invalid)?;
        let dns = network::dns(raw.dns, &public_url).map_err(invalid)?;
        Ok(Config {
            path: path.to_path_buf(),
            site: SiteConfig {
                data_dir: base.join(site.data_dir.unwrap_or_else(|| PathBuf::from("data"))),
                listen,
                public_url,
                public_url_configured,
                signing_key: base.join(
                    site.signing_key
                        .unwrap_or_else(|| PathBuf::from("airlock.key")),
                ),
                grace: site.grace.unwrap_or(Period(Duration::from_secs(86_400))),
                tls,
                listen_backlog: site.listen_backlog,
                write_timeout: site.write_timeout.map_or(Duration::from_secs(60), |p| p.0),
                max_connections: site.max_connections,
            },
            apt: AptConfig {
                repos,
                mirrors,
                publish,
            },
            images,
            export: ExportConfig {
                airlock_deb: raw.export.airlock_deb.map(|p| base.join(p)),
                carry_airlock: raw.export.carry_airlock.unwrap_or(true),
            },
            import: ImportConfig {
                trusted_keys: raw.import.trusted_keys.map_or_else(Vec::new, |k| {
                    k.0.into_iter().map(|k| base.join(k)).collect()
                }),
            },
            snaps: SnapsConfig {
                trusted_keys: raw.snaps.trusted_keys.map_or_else(Vec::new, |k| {
                    k.0.into_iter().map(|k| base.join(k)).collect()
                }),
                upstream: raw
                    .snaps
                    .upstream
                    .map_or_else(|| "https://api.snapcraft.io/".to_string(), |u| u.0),
                upstream_ca: raw.snaps.upstream_ca.map(|p| base.join(p)),
                snaps: raw
                    .snaps
                    .snap
                    .into_iter()
                    .map(|s| SnapFetchConfig {
                        name: s.name,
                        channels: s.channels.map_or_else(|| vec!["stable".into()], |c| c.0),
                        architectures: s
                            .architectures
                            .map_or_else(|| vec!["amd64".into()], |a| a.0),
                    })
                    .collect(),
            },
            sync: SyncConfig {
                jobs: raw.sync.jobs.map_or(8, |j| j.0),
                timeout: raw.sync.timeout.unwrap_or(Period(Duration::from_secs(30))),
                retries: raw.sync.retries.unwrap_or(4),
            },
            proxy,
            dns,
        })
    }

    pub fn repo(&self, name: &str) -> Option<&AptRepoConfig> {
        self.apt.repos.iter().find(|r| r.name.as_str() == name)
    }

    pub fn mirror(&self, name: &str) -> Option<&AptMirrorConfig> {
        self.apt.mirrors.iter().find(|m| m.name.as_str() == name)
    }

    /// The names DNS should point at this server: every routed host and `[dns] names`.
    pub fn overridden_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.proxy.routes.iter().map(|r| r.host.clone()).collect();
        names.extend(self.dns.names.iter().cloned());
        names.sort();
        names.dedup();
        names
    }
}

/// The host of a URL as it goes back into one (`[::1]` keeps its brackets).
pub fn url_host(url: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .host_str()
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}

fn default_public_url(listen: SocketAddr) -> String {
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

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    site: RawSite,
    #[serde(default)]
    apt: RawApt,
    images: Option<RawImages>,
    #[serde(default)]
    snaps: RawSnaps,
    #[serde(default)]
    sync: RawSync,
    #[serde(default)]
    proxy: network::RawProxy,
    #[serde(default)]
    dns: network::RawDns,
    #[serde(default)]
    import: RawImport,
    #[serde(default)]
    export: RawExport,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExport {
    airlock_deb: Option<PathBuf>,
    carry_airlock: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawImport {
    trusted_keys: Option<OneOrMore<PathBuf>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSnaps {
    trusted_keys: Option<OneOrMore<PathBuf>>,
    upstream: Option<MirrorUrl>,
    upstream_ca: Option<PathBuf>,
    #[serde(default)]
    snap: Vec<RawSnap>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnap {
    name: String,
    channels: Option<OneOrMore<String>>,
    architectures: Option<OneOrMore<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImages {
    url: MirrorUrl,
    mode: Option<ImagesMode>,
    keyring: OneOrMore<PathBuf>,
    keep: Option<KeepVersions>,
    #[serde(default)]
    select: Vec<RawImageSelection>,
    #[serde(default)]
    filters: Vec<Filter>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImageSelection {
    os: String,
    release: Option<OneOrMore<String>>,
    arches: Option<OneOrMore<String>>,
    subarches: Option<OneOrMore<String>>,
    labels: Option<OneOrMore<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSync {
    jobs: Option<Jobs>,
    timeout: Option<Period>,
    retries: Option<u32>,
}

/// Parallel downloads: at least 1, at most 64 (politeness towards upstreams).
#[derive(Debug, Clone, Copy)]
struct Jobs(usize);

impl<'de> Deserialize<'de> for Jobs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        if !(1..=64).contains(&n) {
            return Err(serde::de::Error::custom(format!(
                "jobs must be between 1 and 64, not {n}"
            )));
        }
        Ok(Jobs(n as usize))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    public_url: Option<PublicUrl>,
    signing_key: Option<PathBuf>,
    grace: Option<Period>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_listen: Option<SocketAddr>,
    tls_public_url: Option<PublicUrl>,
    listen_backlog: Option<u32>,
    write_timeout: Option<Period>,
    max_connections: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawApt {
    #[serde(default)]
    repo: Vec<RawRepo>,
    #[serde(default)]
    mirror: Vec<RawMirror>,
    #[serde(default)]
    publish: Vec<RawPublish>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublish {
    name: Spanned<Name>,
    suites: std::collections::BTreeMap<Name, List<SuiteSource>>,
    origin: Option<FieldValue>,
    label: Option<FieldValue>,
    description: Option<FieldValue>,
    valid_for: Option<Period>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMirror {
    name: Spanned<Name>,
    url: MirrorUrl,
    suites: List<Name>,
    components: List<Name>,
    architectures: List<Architecture>,
    keyring: Option<OneOrMore<PathBuf>>,
    packages: Option<List<PackagePattern>>,
    with_dependencies: Option<bool>,
    #[serde(default)]
    include_recommends: bool,
    #[serde(default)]
    alternatives: Alternatives,
    #[serde(default)]
    sources: bool,
    mode: Option<MirrorMode>,
    #[serde(default)]
    allow_unsigned: bool,
    valid_for: Option<Period>,
}

/// A string or a list of strings.
struct OneOrMore<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMore<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape<T> {
            One(T),
            More(Vec<T>),
        }
        Ok(OneOrMore(match Shape::deserialize(d)? {
            Shape::One(t) => vec![t],
            Shape::More(v) => v,
        }))
    }
}

/// Spans kept where cross-field checks need to point at a line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepo {
    name: Spanned<Name>,
    suites: List<Name>,
    components: List<Name>,
    architectures: List<Architecture>,
    origin: Option<FieldValue>,
    label: Option<FieldValue>,
    description: Option<FieldValue>,
    valid_for: Option<Period>,
    #[serde(default = "one_version")]
    keep_versions: KeepVersions,
}

fn one_version() -> KeepVersions {
    KeepVersions(1)
}

/// Values checked while parsing, so that the TOML error carries the line of the bad value.
macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(s).map(|()| $name(s.to_string()))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

validated_string!(
    /// A repo, suite or component name: it becomes a path component and a URL segment.
    Name,
    |s| {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
        if ok { Ok(()) } else {
            Err(format!("{s:?} is not a valid name: use letters, digits, '.', '_', '+' or '-', starting with a letter or digit"))
        }
    }
);

validated_string!(
    /// A Debian architecture name such as amd64 or arm64 (`all` is implied, never listed).
    Architecture,
    |s| {
        if s == "all" || s == "source" {
            return Err(format!("{s:?} is not listed in architectures: Architecture: all packages appear in every architecture's index"));
        }
        let ok = !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok { Ok(()) } else { Err(format!("{s:?} is not a valid Debian architecture name")) }
    }
);

validated_string!(
    /// A single-line value for a Release field (Origin, Label, Description).
    FieldValue,
    |s| {
        if s.trim().is_empty() || s.chars().any(|c| c.is_control()) {
            Err(format!("{s:?} must be a non-empty single line"))
        } else {
            Ok(())
        }
    }
);

validated_string!(
    /// A package name or a glob pattern of names (`linux-image-*`).
    PackagePattern,
    |s| {
        let ok = !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.*?".contains(c));
        if ok { Ok(()) } else { Err(format!("{s:?} is not a package name or pattern (lowercase letters, digits, + - . and the wildcards * ?)")) }
    }
);

/// An upstream archive root; always stored with a trailing `/` so that relative paths join.
#[derive(Debug, Clone)]
struct MirrorUrl(String);

impl<'de> Deserialize<'de> for MirrorUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let url = reqwest::Url::parse(&s)
            .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(serde::de::Error::custom(format!(
                "{s:?} must be an http:// or https:// URL"
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(serde::de::Error::custom(format!(
                "{s:?} must not have a query or fragment"
            )));
        }
        let mut text = url.to_string();
        if !text.ends_with('/') {
            text.push('/');
        }
        Ok(MirrorUrl(text))
    }
}

validated_string!(
    /// Where clients reach this server, without a trailing slash.
    PublicUrl,
    |s| {
        let rest = s.strip_prefix("http://").or_else(|| s.strip_prefix("https://"));
        match rest {
            Some(r) if !r.is_empty() && !s.ends_with('/') && !s.contains(char::is_whitespace) => Ok(()),
            _ => Err(format!("{s:?} must be an http:// or https:// URL without a trailing slash")),
        }
    }
);

/// A list that must not be empty nor name anything twice.
#[derive(Debug, Clone)]
struct List<T>(Vec<T>);

impl<'de, T: Deserialize<'de> + PartialEq + fmt::Display> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<T>::deserialize(d)?;
        if items.is_empty() {
            return Err(serde::de::Error::custom("the list must not be empty"));
        }
        if let Some((_, dup)) = items
            .iter()
            .enumerate()
            .find(|(i, item)| items[..*i].contains(item))
        {
            return Err(serde::de::Error::custom(format!(
                "\"{dup}\" is listed twice"
            )));
        }
        Ok(List(items))
    }
}

/// How many versions of a package (per architecture) a suite keeps; at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeepVersions(usize);

impl<'de> Deserialize<'de> for KeepVersions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        if !(1..=1000).contains(&n) {
            return Err(serde::de::Error::custom(format!(
                "must be between 1 and 1000 versions, not {n}"
            )));
        }
        Ok(KeepVersions(n as usize))
    }
}

/// A duration written like `30s`, `15m`, `12h`, `7d` or `2w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period(pub Duration);

impl FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?} is not a duration: write a number and a unit, like 30s, 15m, 12h, 7d or 2w"
            )
        };
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = s.split_at(split);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return Err(bad()),
        };
        if number == 0 {
            return Err(format!("{s:?} must be longer than zero"));
        }
        let total = number
            .checked_mul(seconds)
            .filter(|t| *t <= 100 * 365 * 86_400)
            .ok_or_else(|| format!("{s:?} is too long"))?;
        Ok(Period(Duration::from_secs(total)))
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/airlock/airlock.toml")).map_err(|e| e.to_string())
    }

    const GOOD: &str = r#"
[site]
data_dir = "/srv/airlock"
listen = "127.0.0.1:9000"

[[apt.repo]]
name = "local"
suites = ["stable", "testing"]
components = ["main"]
architectures = ["amd64", "arm64"]
valid_for = "7d"
"#;

    #[test]
    fn parses_and_resolves_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.site.data_dir, PathBuf::from("/srv/airlock"));
        assert_eq!(
            c.site.signing_key,
            PathBuf::from("/etc/airlock/airlock.key")
        );
        assert_eq!(c.site.public_url, "http://127.0.0.1:9000");
        let repo = c.repo("local").unwrap();
        assert_eq!(
            repo.valid_for,
            Some(Period(Duration::from_secs(7 * 86_400)))
        );
        assert_eq!(repo.keep_versions, 1);
        assert!(repo.has_suite("testing") && !repo.has_suite("unstable"));
    }

    #[test]
    fn errors_point_at_the_line() {
        let cases = [
            (
                GOOD.replace("valid_for", "valid_four"),
                "line 11",
                "unknown field",
            ),
            (
                GOOD.replace("\"7d\"", "\"7x\""),
                "line 11",
                "not a duration",
            ),
            (
                GOOD.replace("\"arm64\"", "\"ARM 64\""),
                "line 10",
                "not a valid Debian architecture",
            ),
            (
                GOOD.replace("\"local\"", "\"../etc\""),
                "line 7",
                "not a valid name",
            ),
            (
                GOOD.replace("127.0.0.1:9000", "nowhere"),
                "line 4",
                "invalid socket address",
            ),
            (
                GOOD.replace("[\"main\"]", "[]"),
                "line 9",
                "must not be empty",
            ),
            (
                format!(
                    "{GOOD}\n[[apt.repo]]\nname = \"local\"\nsuites = [\"a\"]\ncomponents = [\"main\"]\narchitectures = [\"amd64\"]\n"
                ),
                "line 14",
                "already defined",
            ),
            (
                GOOD.replace("\"testing\"", "\"stable\""),
                "line 8",
                "listed twice",
            ),
        ];
        for (text, line, reason) in cases {
            let err = parse(&text).unwrap_err();
            assert!(
                err.contains(line) && err.contains(reason),
                "expected {line} and {reason:?} in: {err}"
            );
            assert!(err.contains("/etc/airlock/airlock.toml"), "{err}");
        }
    }

    #[test]
    fn publish_combines_configured_suites() {
        let mirror = "\n[[apt.mirror]]\nname = \"debian\"\nurl = \"http://deb.example/debian\"\nsuites = [\"bookworm\"]\ncomponents = [\"main\"]\narchitectures = [\"amd64\"]\nallow_unsigned = true\n";
        let publish = "\n[[apt.publish]]\nname = \"site\"\nsuites = { bookworm = [\"local/stable\", \"debian/bookworm\"] }\n";
        let c = parse(&format!("{GOOD}{mirror}{publish}")).unwrap();
        let p = &c.apt.publish[0];
        assert_eq!(p.suites[0].0.as_str(), "bookworm");
        let sources: Vec<String> = p.suites[0].1.iter().map(|s| s.to_string()).collect();
        assert_eq!(sources, ["local/stable", "debian/bookworm"]);

        for (bad, reason) in [
            ("bookworm", "\"bookworm\" must name a repo or mirror"),
            (
                "local/stable\", \"nowhere/x",
                "no repo or mirror named \"nowhere\"",
            ),
            (
                "local/stable\", \"debian/sid",
                "debian has no suite \"sid\"",
            ),
        ] {
            let text = format!("{GOOD}{mirror}{publish}")
                .replace("local/stable\", \"debian/bookworm", bad);
            let err = parse(&text).unwrap_err();
            assert!(err.contains(reason), "expected {reason:?} in: {err}");
        }
        let text = format!("{GOOD}{mirror}{publish}").replace("\"site\"", "\"debian\"");
        assert!(parse(&text).unwrap_err().contains("already defined"));
    }

    #[test]
    fn mirror_alternatives() {
        let mirror = "\n[[apt.mirror]]\nname = \"debian\"\nurl = \"http://deb.example/debian\"\nsuites = [\"bookworm\"]\ncomponents = [\"main\"]\narchitectures = [\"amd64\"]\nallow_unsigned = true\npackages = [\"squid\"]\n";
        let c = parse(&format!("{GOOD}{mirror}")).unwrap();
        assert_eq!(c.apt.mirrors[0].alternatives, Alternatives::Apt);
        let c = parse(&format!("{GOOD}{mirror}alternatives = \"all\"\n")).unwrap();
        assert_eq!(c.apt.mirrors[0].alternatives, Alternatives::All);
        let err = parse(&format!("{GOOD}{mirror}alternatives = \"first\"\n")).unwrap_err();
        assert!(
            err.contains("unknown variant `first`, expected `apt` or `all`")
                && err.contains("line "),
            "{err}"
        );
    }

    #[test]
    fn tls_and_snaps_settings() {
        let text = GOOD.replace(
            "listen = \"127.0.0.1:9000\"",
            "listen = \"127.0.0.1:9000\"\npublic_url = \"http://mirror.lan:8080/airlock\"\ntls_cert = \"tls/server.pem\"\ntls_key = \"tls/server.key\"",
        );
        let c = parse(&format!(
            "{text}\n[snaps]\nupstream = \"https://store.lan\"\n\n[[snaps.snap]]\nname = \"maas\"\n"
        ))
        .unwrap();
        let tls = c.site.tls.unwrap();
        assert_eq!(tls.public_url, "https://mirror.lan:8443");
        assert_eq!(tls.listen, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(tls.cert, PathBuf::from("/etc/airlock/tls/server.pem"));
        assert_eq!(c.snaps.upstream, "https://store.lan/");
        assert_eq!(c.snaps.snaps[0].channels, ["stable"]);
        assert_eq!(c.snaps.snaps[0].architectures, ["amd64"]);
        let e = parse(&GOOD.replace("listen = \"127.0.0.1:9000\"", "tls_cert = \"x.pem\""))
            .unwrap_err();
        assert!(
            e.to_string().contains("tls_cert and tls_key go together"),
            "{e}"
        );
    }

    #[test]
    fn images_section() {
        let images = "\n[images]\nurl = \"http://images.example/stable\"\nkeyring = \"k.gpg\"\nfilters = [\"arch=amd64\"]\n\n[[images.select]]\nos = \"ubuntu\"\nrelease = \"noble\"\n";
        let c = parse(&format!("{GOOD}{images}")).unwrap();
        let i = c.images.unwrap();
        assert_eq!(i.url, "http://images.example/stable/");
        assert_eq!(i.keyring, [PathBuf::from("/etc/airlock/k.gpg")]);
        assert_eq!(i.select[0].release, ["noble"]);
        assert_eq!(i.select[0].arches, ["*"]);
        for (from, to, reason) in [
            ("\"arch=amd64\"", "\"arch\"", "is not a filter"),
            (
                "keyring = \"k.gpg\"",
                "keyring = \"k.gpg\"\nmode = \"copy\"",
                "unknown variant `copy`",
            ),
        ] {
            let text = format!("{GOOD}{images}").replace(from, to);
            let err = parse(&text).unwrap_err();
            assert!(err.contains(reason) && err.contains("line 1"), "{err}");
        }
    }

    #[test]
    fn periods() {
        assert_eq!("90s".parse::<Period>().unwrap().0, Duration::from_secs(90));
        assert_eq!(
            "2w".parse::<Period>().unwrap().0,
            Duration::from_secs(14 * 86_400)
        );
        for bad in ["", "d", "7", "7 d", "-1d", "0d", "1y"] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Garbled configs are errors, never panics.
        #[test]
        fn garbled_configs_never_panic(cut in 0usize..400, junk in "[ -~\n]{0,20}") {
            let text = format!("{}{junk}", &GOOD[..cut.min(GOOD.len())]);
            let _ = parse(&text);
        }
    }

    const MIRRORS: &str = r#"
[site]
public_url = "http://airlock.example:8080"

[[apt.mirror]]
name = "ubuntu"
url = "http://gb.archive.ubuntu.com/ubuntu/"
suites = ["noble"]
components = ["main"]
architectures = ["amd64"]
keyring = "/usr/share/keyrings/ubuntu-archive-keyring.gpg"

[[apt.mirror]]
name = "inhouse"
url = "http://10.0.0.1/debian"
suites = ["stable"]
components = ["main"]
architectures = ["amd64"]
allow_unsigned = true

[images]
url = "http://images.maas.io/ephemeral-v3/stable/"
keyring = "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg"
"#;

    #[test]
    fn proxy_routes_come_from_the_mirrors_and_the_config() {
        let c = parse(&format!(
            "{MIRRORS}\n[[proxy.route]]\nhost = \"Ports.Ubuntu.com.\"\npath = \"/ubuntu-ports/\"\nto = \"apt/ubuntu\"\n"
        ))
        .unwrap();
        let routes: Vec<(String, String)> = c
            .proxy
            .routes
            .iter()
            .map(|r| {
                (
                    format!("{}{}", r.host, r.path),
                    format!("{} {}", r.to, r.upstream),
                )
            })
            .collect();
        let expect =
            |host: &str, to: &str, upstream: &str| (host.to_string(), format!("{to} {upstream}"));
        assert_eq!(
            routes,
            [
                expect(
                    "ports.ubuntu.com/ubuntu-ports",
                    "/apt/ubuntu",
                    "http://ports.ubuntu.com/ubuntu-ports/"
                ),
                expect(
                    "gb.archive.ubuntu.com/ubuntu",
                    "/apt/ubuntu",
                    "http://gb.archive.ubuntu.com/ubuntu/"
                ),
                expect(
                    "archive.ubuntu.com/ubuntu",
                    "/apt/ubuntu",
                    "http://archive.ubuntu.com/ubuntu/"
                ),
                expect(
                    "security.ubuntu.com/ubuntu",
                    "/apt/ubuntu",
                    "http://security.ubuntu.com/ubuntu/"
                ),
                // An address cannot be pointed here by DNS: no route for the in-house mirror.
                expect(
                    "images.maas.io/ephemeral-v3/stable",
                    "/images",
                    "http://images.maas.io/ephemeral-v3/stable/"
                ),
            ]
        );
        assert_eq!(
            c.overridden_names(),
            [
                "archive.ubuntu.com",
                "gb.archive.ubuntu.com",
                "images.maas.io",
                "ports.ubuntu.com",
                "security.ubuntu.com"
            ]
        );
        let none = parse(&format!("{MIRRORS}\n[proxy]\ndefaults = false\n")).unwrap();
        assert!(none.proxy.routes.is_empty());
    }

    #[test]
    fn proxy_and_dns_mistakes_are_named() {
        for (extra, message) in [
            (
                "[[proxy.route]]\nhost = \"a.example\"\nto = \"apt/nope\"\n",
                "no repo, mirror or publish is named \"nope\"",
            ),
            (
                "[[proxy.route]]\nhost = \"a.example\"\nto = \"srv\"\n",
                "must name a published tree",
            ),
            (
                "[[proxy.route]]\nhost = \"a example\"\nto = \"images\"\n",
                "is not a host name",
            ),
            (
                "[[proxy.route]]\nhost = \"a.example\"\npath = \"/x/../y\"\nto = \"images\"\n",
                "must look like",
            ),
            (
                "[[proxy.route]]\nhost = \"a.example\"\nto = \"images\"\n[[proxy.route]]\nhost = \"A.example\"\npath = \"/\"\nto = \"apt/ubuntu\"\n",
                "a.example is routed twice",
            ),
            (
                "[proxy]\npassthrough = [\"esm.ubuntu.com\"]\n",
                "must be HOST:PORT",
            ),
            ("[dns]\nlisten = \"127.0.0.1:53\"\n", "set [dns] address"),
            ("[dns]\nnames = [\"not a name\"]\n", "is not a host name"),
        ] {
            let text = format!(
                "{}{extra}",
                MIRRORS.replace("airlock.example:8080", "127.0.0.1:8080")
            );
            let error = parse(&text).unwrap_err();
            assert!(error.contains(message), "{extra}: {error}");
        }
        // An address in public_url is what DNS answers with unless told.
        let c = parse(&MIRRORS.replace("airlock.example", "10.0.0.5")).unwrap();
        assert_eq!(
            c.dns.addresses,
            ["10.0.0.5".parse::<std::net::IpAddr>().unwrap()]
        );
    }
}
