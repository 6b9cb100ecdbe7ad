//! What `airlock.toml` deserialises into: one struct per table, unknown keys refused
//! (`deny_unknown_fields`), values already checked (`value`), defaults not yet applied.
//! Spans are kept where a check across fields must point at a line.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::filter::Filter;
use super::model::{Alternatives, ImagesMode, MirrorMode};
use super::value::{
    Architecture, FieldValue, Jobs, KeepVersions, List, MirrorUrl, Name, OneOrMore, PackagePattern,
    Period, PublicUrl, Size, SuiteSource,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) site: RawSite,
    #[serde(default)]
    pub(super) apt: RawApt,
    pub(super) images: Option<RawImages>,
    #[serde(default)]
    pub(super) snaps: RawSnaps,
    #[serde(default)]
    pub(super) sync: RawSync,
    #[serde(default)]
    pub(super) proxy: RawProxy,
    #[serde(default)]
    pub(super) dns: RawDns,
    #[serde(default)]
    pub(super) import: RawImport,
    #[serde(default)]
    pub(super) export: RawExport,
    #[serde(default)]
    pub(super) storage: RawStorage,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    pub(super) kind: Option<StorageKind>,
    pub(super) endpoint: Option<String>,
    pub(super) bucket: Option<String>,
    pub(super) region: Option<String>,
    pub(super) prefix: Option<String>,
    pub(super) access_key_file: Option<PathBuf>,
    pub(super) secret_key_file: Option<PathBuf>,
    pub(super) ca: Option<PathBuf>,
    pub(super) cache_dir: Option<PathBuf>,
    pub(super) cache_size: Option<Size>,
    pub(super) poll: Option<Period>,
    pub(super) keep_pushed: Option<Size>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum StorageKind {
    Local,
    S3,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExport {
    pub(super) airlock_deb: Option<PathBuf>,
    pub(super) carry_airlock: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImport {
    pub(super) trusted_keys: Option<OneOrMore<PathBuf>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSnaps {
    pub(super) trusted_keys: Option<OneOrMore<PathBuf>>,
    pub(super) upstream: Option<MirrorUrl>,
    pub(super) upstream_ca: Option<PathBuf>,
    #[serde(default)]
    pub(super) snap: Vec<RawSnap>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSnap {
    pub(super) name: String,
    pub(super) channels: Option<OneOrMore<String>>,
    pub(super) architectures: Option<OneOrMore<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImages {
    pub(super) url: MirrorUrl,
    pub(super) mode: Option<ImagesMode>,
    pub(super) keyring: OneOrMore<PathBuf>,
    pub(super) keep: Option<KeepVersions>,
    #[serde(default)]
    pub(super) select: Vec<RawImageSelection>,
    #[serde(default)]
    pub(super) filters: Vec<Filter>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImageSelection {
    pub(super) os: String,
    pub(super) release: Option<OneOrMore<String>>,
    pub(super) arches: Option<OneOrMore<String>>,
    pub(super) subarches: Option<OneOrMore<String>>,
    pub(super) labels: Option<OneOrMore<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSync {
    pub(super) jobs: Option<Jobs>,
    pub(super) timeout: Option<Period>,
    pub(super) retries: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSite {
    pub(super) data_dir: Option<PathBuf>,
    pub(super) listen: Option<SocketAddr>,
    pub(super) public_url: Option<PublicUrl>,
    pub(super) signing_key: Option<PathBuf>,
    pub(super) grace: Option<Period>,
    pub(super) tls_cert: Option<PathBuf>,
    pub(super) tls_key: Option<PathBuf>,
    pub(super) tls_listen: Option<SocketAddr>,
    pub(super) tls_public_url: Option<PublicUrl>,
    pub(super) listen_backlog: Option<u32>,
    pub(super) write_timeout: Option<Period>,
    pub(super) max_connections: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApt {
    #[serde(default)]
    pub(super) repo: Vec<RawRepo>,
    #[serde(default)]
    pub(super) mirror: Vec<RawMirror>,
    #[serde(default)]
    pub(super) publish: Vec<RawPublish>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPublish {
    pub(super) name: Spanned<Name>,
    pub(super) suites: BTreeMap<Name, List<SuiteSource>>,
    pub(super) origin: Option<FieldValue>,
    pub(super) label: Option<FieldValue>,
    pub(super) description: Option<FieldValue>,
    pub(super) valid_for: Option<Period>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMirror {
    pub(super) name: Spanned<Name>,
    pub(super) url: MirrorUrl,
    pub(super) suites: List<Name>,
    pub(super) components: List<Name>,
    pub(super) architectures: List<Architecture>,
    pub(super) keyring: Option<OneOrMore<PathBuf>>,
    pub(super) packages: Option<List<PackagePattern>>,
    pub(super) with_dependencies: Option<bool>,
    #[serde(default)]
    pub(super) include_recommends: bool,
    #[serde(default)]
    pub(super) alternatives: Alternatives,
    #[serde(default)]
    pub(super) sources: bool,
    pub(super) mode: Option<MirrorMode>,
    #[serde(default)]
    pub(super) allow_unsigned: bool,
    pub(super) valid_for: Option<Period>,
}

/// Spans kept where cross-field checks need to point at a line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRepo {
    pub(super) name: Spanned<Name>,
    pub(super) suites: List<Name>,
    pub(super) components: List<Name>,
    pub(super) architectures: List<Architecture>,
    pub(super) origin: Option<FieldValue>,
    pub(super) label: Option<FieldValue>,
    pub(super) description: Option<FieldValue>,
    pub(super) valid_for: Option<Period>,
    #[serde(default = "one_version")]
    pub(super) keep_versions: KeepVersions,
}

fn one_version() -> KeepVersions {
    KeepVersions(1)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxy {
    #[serde(default = "yes")]
    pub(super) defaults: bool,
    #[serde(default)]
    pub(super) upstream: bool,
    #[serde(default)]
    pub(super) passthrough: Vec<String>,
    pub(super) tunnel_idle: Option<Period>,
    #[serde(default)]
    pub(super) route: Vec<RawRoute>,
}

impl Default for RawProxy {
    fn default() -> RawProxy {
        RawProxy {
            defaults: true,
            upstream: false,
            passthrough: Vec::new(),
            tunnel_idle: None,
            route: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) host: String,
    #[serde(default)]
    pub(super) path: String,
    pub(super) to: String,
    pub(super) upstream: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDns {
    pub(super) listen: Option<SocketAddr>,
    pub(super) address: Option<OneOrMore<IpAddr>>,
    pub(super) upstream: Option<SocketAddr>,
    pub(super) allow: Option<Vec<ipnet::IpNet>>,
    #[serde(default)]
    pub(super) names: Vec<String>,
    pub(super) ttl: Option<u32>,
    pub(super) rate_limit: Option<u32>,
}
