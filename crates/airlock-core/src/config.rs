//! `airlock.toml`: typed and validated. Unknown keys and bad values are errors that point at
//! the line, because a typo silently ignored is a mirror silently wrong.
//!
//! The text is read into its raw shapes (`raw`: one struct per table, each value checked as
//! it is read, by the types of `value`), then each section is checked and given its defaults
//! (`Config::parse`'s phases below), then what spans sections; the result is the model
//! (`model`, `network`) the rest of the crate reads.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::hint::Hint;
use crate::storage::{StorageError, read_limited_text};

mod filter;
mod model;
mod network;
mod raw;
mod value;

pub use filter::Filter;
pub use model::{
    Alternatives, AptConfig, AptMirrorConfig, AptPublishConfig, AptRepoConfig, ExportConfig,
    ImageSelection, ImagesConfig, ImagesMode, ImportConfig, MirrorMode, S3Storage, SNAP_STORE_HOST,
    SiteConfig, SnapFetchConfig, SnapsConfig, StorageConfig, SyncConfig, TlsConfig,
};
pub use network::{DnsConfig, ProxyConfig, Route};
pub use value::{
    Architecture, FieldValue, Name, PackagePattern, Period, PublicUrl, Size, SuiteSource, url_host,
};

use raw::{
    RawConfig, RawExport, RawImages, RawImport, RawMirror, RawPublish, RawRepo, RawSite, RawSnaps,
    RawStorage, RawSync, StorageKind,
};

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
    pub storage: StorageConfig,
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
        let input = Input::new(text, path);
        let raw: RawConfig = toml::from_str(text).map_err(|e| input.invalid(e.to_string()))?;

        // Every tree published under /apt/ has a name of its own.
        let mut names = HashSet::new();
        let repos = input.repos(raw.apt.repo, &mut names)?;
        let mirrors = input.mirrors(raw.apt.mirror, &mut names)?;
        let publish = input.publish(raw.apt.publish, &mut names, &repos, &mirrors)?;
        let images = raw.images.map(|i| input.images(i));
        let site = input.site(raw.site)?;
        let storage = input.storage(raw.storage)?;

        let proxy = network::proxy(
            raw.proxy,
            &network::Trees {
                apt: &names,
                mirrors: &mirrors,
                images: images.as_ref(),
            },
            url_host(&site.public_url).as_deref(),
        )
        .map_err(|m| input.invalid(m))?;
        let dns = network::dns(raw.dns, &site.public_url).map_err(|m| input.invalid(m))?;
        Ok(Config {
            path: path.to_path_buf(),
            site,
            apt: AptConfig {
                repos,
                mirrors,
                publish,
            },
            images,
            export: input.export(raw.export),
            import: input.import(raw.import),
            snaps: input.snaps(raw.snaps),
            sync: sync(raw.sync),
            proxy,
            dns,
            storage,
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
        self.dns.overridden_names(&self.proxy.routes)
    }
}

/// The config being parsed: its text (for line numbers), its path (for errors) and its
/// folder (relative paths are resolved against it).
struct Input<'a> {
    text: &'a str,
    path: &'a Path,
    base: PathBuf,
}

impl<'a> Input<'a> {
    fn new(text: &'a str, path: &'a Path) -> Input<'a> {
        // Absolute, so that paths stay right whatever the working folder is later.
        let base = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        Input { text, path, base }
    }

    fn invalid(&self, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            message,
        }
    }

    /// `line N` of the text at `span`.
    fn at(&self, span: Range<usize>) -> String {
        let offset = span.start.min(self.text.len());
        format!("line {}", self.text[..offset].matches('\n').count() + 1)
    }

    fn resolve(&self, path: PathBuf) -> PathBuf {
        self.base.join(path)
    }

    fn resolve_all(&self, paths: Vec<PathBuf>) -> Vec<PathBuf> {
        paths.into_iter().map(|p| self.resolve(p)).collect()
    }

    fn repos(
        &self,
        raw: Vec<RawRepo>,
        names: &mut HashSet<Name>,
    ) -> Result<Vec<AptRepoConfig>, ConfigError> {
        let mut repos = Vec::new();
        for raw_repo in raw {
            let name = raw_repo.name.get_ref().clone();
            if !names.insert(name.clone()) {
                return Err(self.invalid(format!(
                    "{}: a repo named {:?} is already defined",
                    self.at(raw_repo.name.span()),
                    name.as_str()
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
        Ok(repos)
    }

    fn mirrors(
        &self,
        raw: Vec<RawMirror>,
        names: &mut HashSet<Name>,
    ) -> Result<Vec<AptMirrorConfig>, ConfigError> {
        let mut mirrors = Vec::new();
        for raw_mirror in raw {
            let at = self.at(raw_mirror.name.span());
            let name = raw_mirror.name.get_ref().clone();
            if !names.insert(name.clone()) {
                return Err(self.invalid(format!(
                    "{at}: a repo or mirror named {:?} is already defined (both publish under /apt/{}/)",
                    name.as_str(),
                    name
                )));
            }
            let mode = raw_mirror.mode.unwrap_or(MirrorMode::Filtered);
            let packages: Option<Vec<String>> = raw_mirror
                .packages
                .map(|p| p.0.into_iter().map(|p| p.as_str().to_string()).collect());
            if mode == MirrorMode::Verbatim && packages.is_some() {
                return Err(self.invalid(format!(
                    "{at}: mirror {:?}: verbatim mode keeps the upstream's signed indices, which list every package; remove `packages` or use mode = \"filtered\"",
                    name.as_str()
                )));
            }
            let keyring = self.resolve_all(raw_mirror.keyring.map(|k| k.0).unwrap_or_default());
            if keyring.is_empty() && !raw_mirror.allow_unsigned {
                return Err(self.invalid(format!(
                    "{at}: mirror {:?} has no keyring: name the upstream's key file (keyring = \"/usr/share/keyrings/...\"), or set allow_unsigned = true to mirror without checking signatures",
                    name.as_str()
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
        Ok(mirrors)
    }

    /// Each `[[apt.publish]]`, whose sources must be suites of the repos and mirrors.
    fn publish(
        &self,
        raw: Vec<RawPublish>,
        names: &mut HashSet<Name>,
        repos: &[AptRepoConfig],
        mirrors: &[AptMirrorConfig],
    ) -> Result<Vec<AptPublishConfig>, ConfigError> {
        let mut publish = Vec::new();
        for raw_publish in raw {
            let at = self.at(raw_publish.name.span());
            let name = raw_publish.name.get_ref().clone();
            if !names.insert(name.clone()) {
                return Err(self.invalid(format!(
                    "{at}: a repo, mirror or publish named {:?} is already defined (each publishes under /apt/{}/)",
                    name.as_str(),
                    name
                )));
            }
            if raw_publish.suites.is_empty() {
                return Err(self.invalid(format!(
                    "{at}: publish {:?} has no suites: add suites = {{ SUITE = [\"REPO/SUITE\", \"MIRROR/SUITE\"] }}",
                    name.as_str()
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
                        return Err(self.invalid(format!(
                            "{at}: publish {:?} takes from {source}, but there is no repo or mirror named {:?}",
                            name.as_str(),
                            source.tree.as_str()
                        )));
                    }
                    Some(suites) if !suites.contains(&source.suite) => {
                        return Err(self.invalid(format!(
                            "{at}: publish {:?} takes from {source}, but {} has no suite {:?}",
                            name.as_str(),
                            source.tree,
                            source.suite.as_str()
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
        Ok(publish)
    }

    fn images(&self, raw: RawImages) -> ImagesConfig {
        let star = || vec!["*".to_string()];
        let mode = raw.mode.unwrap_or(ImagesMode::Curated);
        // A verbatim stream lists every version upstream has: all are kept unless the user
        // says otherwise (and is then told what would be missing).
        let keep_default = match mode {
            ImagesMode::Curated => 1,
            ImagesMode::Verbatim => usize::MAX,
        };
        ImagesConfig {
            url: raw.url.0,
            mode,
            keyring: self.resolve_all(raw.keyring.0),
            keep: raw.keep.map_or(keep_default, |k| k.0),
            select: raw
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
            filters: raw.filters,
        }
    }

    fn site(&self, raw: RawSite) -> Result<SiteConfig, ConfigError> {
        let listen = raw
            .listen
            .unwrap_or_else(|| "0.0.0.0:8080".parse().expect("valid address"));
        let public_url_configured = raw.public_url.is_some();
        let public_url = match raw.public_url {
            Some(url) => url.as_str().to_string(),
            None => model::default_public_url(listen),
        };
        let tls = match (raw.tls_cert, raw.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let tls_listen = raw
                    .tls_listen
                    .unwrap_or_else(|| SocketAddr::new(listen.ip(), 8443));
                let tls_public_url = match raw.tls_public_url {
                    Some(url) => url.as_str().to_string(),
                    // The HTTP address's host, on the HTTPS port.
                    None => format!(
                        "https://{}:{}",
                        url_host(&public_url).unwrap_or_else(|| "localhost".into()),
                        tls_listen.port()
                    ),
                };
                Some(TlsConfig {
                    cert: self.resolve(cert),
                    key: self.resolve(key),
                    listen: tls_listen,
                    public_url: tls_public_url,
                })
            }
            _ => {
                return Err(self.invalid(
                    "[site] tls_cert and tls_key go together: set both (airlock tls init makes them), or neither".into(),
                ));
            }
        };
        Ok(SiteConfig {
            data_dir: self.resolve(raw.data_dir.unwrap_or_else(|| PathBuf::from("data"))),
            listen,
            public_url,
            public_url_configured,
            signing_key: self.resolve(
                raw.signing_key
                    .unwrap_or_else(|| PathBuf::from("airlock.key")),
            ),
            grace: raw.grace.unwrap_or(Period(Duration::from_secs(86_400))),
            tls,
            listen_backlog: raw.listen_backlog,
            write_timeout: raw.write_timeout.map_or(Duration::from_secs(60), |p| p.0),
            max_connections: raw.max_connections,
        })
    }

    fn export(&self, raw: RawExport) -> ExportConfig {
        ExportConfig {
            airlock_deb: raw.airlock_deb.map(|p| self.resolve(p)),
            carry_airlock: raw.carry_airlock.unwrap_or(true),
        }
    }

    fn storage(&self, raw: RawStorage) -> Result<StorageConfig, ConfigError> {
        let invalid = |m: &str| self.invalid(format!("[storage] {m}"));
        if raw.kind.unwrap_or(StorageKind::Local) == StorageKind::Local {
            let s3_only = [
                ("endpoint", raw.endpoint.is_some()),
                ("bucket", raw.bucket.is_some()),
                ("region", raw.region.is_some()),
                ("prefix", raw.prefix.is_some()),
                ("access_key_file", raw.access_key_file.is_some()),
                ("secret_key_file", raw.secret_key_file.is_some()),
                ("ca", raw.ca.is_some()),
                ("cache_dir", raw.cache_dir.is_some()),
                ("cache_size", raw.cache_size.is_some()),
                ("poll", raw.poll.is_some()),
                ("keep_pushed", raw.keep_pushed.is_some()),
            ];
            if let Some((key, _)) = s3_only.iter().find(|(_, set)| *set) {
                return Err(invalid(&format!(
                    "{key} is for kind = \"s3\"; the local storage is [site] data_dir"
                )));
            }
            return Ok(StorageConfig::Local);
        }
        let endpoint = raw.endpoint.ok_or_else(|| {
            invalid("kind = \"s3\" needs endpoint (like \"http://10.0.0.9:3900\")")
        })?;
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let host = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .ok_or_else(|| {
                invalid(&format!(
                    "endpoint {endpoint:?} must be http:// or https:// with a host (and port), and no path"
                ))
            })?;
        if reqwest::Url::parse(&endpoint).is_err() || host.contains('@') {
            return Err(invalid(&format!(
                "endpoint {endpoint:?} is not a URL airlock can use (credentials go in the environment or access_key_file, not the URL)"
            )));
        }
        let bucket = raw
            .bucket
            .ok_or_else(|| invalid("kind = \"s3\" needs bucket"))?;
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !bucket_ok {
            return Err(invalid(&format!(
                "bucket {bucket:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, '-' and '.')"
            )));
        }
        let mut prefix = raw.prefix.unwrap_or_default();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        if prefix.starts_with('/') || prefix.split('/').any(|part| part == ".." || part == ".") {
            return Err(invalid(&format!(
                "prefix {prefix:?} must be relative, like \"site-a/\", without . or .."
            )));
        }
        if raw.access_key_file.is_some() != raw.secret_key_file.is_some() {
            return Err(invalid(
                "access_key_file and secret_key_file go together (or neither: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
            ));
        }
        Ok(StorageConfig::S3(Box::new(S3Storage {
            endpoint,
            bucket,
            region: raw.region.unwrap_or_else(|| "us-east-1".into()),
            prefix,
            access_key_file: raw.access_key_file.map(|p| self.resolve(p)),
            secret_key_file: raw.secret_key_file.map(|p| self.resolve(p)),
            ca: raw.ca.map(|p| self.resolve(p)),
            cache_dir: raw.cache_dir.map(|p| self.resolve(p)),
            cache_size: raw.cache_size.map_or(10_000_000_000, |s| s.0),
            poll: raw.poll.map_or(Duration::from_secs(5), |p| p.0),
            keep_pushed: raw.keep_pushed.map(|s| s.0),
        })))
    }

    fn import(&self, raw: RawImport) -> ImportConfig {
        ImportConfig {
            trusted_keys: self.resolve_all(raw.trusted_keys.map_or_else(Vec::new, |k| k.0)),
        }
    }

    fn snaps(&self, raw: RawSnaps) -> SnapsConfig {
        SnapsConfig {
            trusted_keys: self.resolve_all(raw.trusted_keys.map_or_else(Vec::new, |k| k.0)),
            upstream: raw
                .upstream
                .map_or_else(|| "https://api.snapcraft.io/".to_string(), |u| u.0),
            upstream_ca: raw.upstream_ca.map(|p| self.resolve(p)),
            snaps: raw
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
        }
    }
}

fn sync(raw: RawSync) -> SyncConfig {
    SyncConfig {
        jobs: raw.jobs.map_or(8, |j| j.0),
        timeout: raw.timeout.unwrap_or(Period(Duration::from_secs(30))),
        retries: raw.retries.unwrap_or(4),
    }
}

#[cfg(test)]
mod tests;
