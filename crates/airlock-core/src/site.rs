//! A site: one config file, one data folder, one signing key. `init` creates them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::{Config, ConfigError};
use crate::hint::Hint;
use crate::openpgp::{KeyAlgorithm, OpenPgpError, SiteKey};
use crate::report::Reporter;
use crate::storage::history::{Estimate, History};
use crate::storage::{BlobSource, ContentStore, SiteLock, StorageError, format, write_atomic};

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error(
        "{path} already exists; airlock init never overwrites a site (remove it or pick another folder)"
    )]
    Exists { path: PathBuf },
    #[error("the data folder {path} is missing")]
    NoDataFolder { path: PathBuf },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    OpenPgp(#[from] OpenPgpError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl Hint for SiteError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            SiteError::Storage(e) => e.hint(),
            SiteError::OpenPgp(e) => e.hint(),
            SiteError::Config(e) => e.hint(),
            SiteError::NoDataFolder { .. } => Some(
                "[site] data_dir names it: restore it, or create it (`airlock init` does, and the package makes /var/lib/airlock/data)",
            ),
            SiteError::Exists { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Site {
    pub config: Config,
    /// The lock a whole command holds ([`Site::lock_command`]), which [`Site::lock`] joins.
    command_lock: Arc<Mutex<Option<SiteLock>>>,
    /// Where the store reads back blobs a writer dropped after pushing them.
    blob_source: Option<Arc<dyn BlobSource>>,
}

/// The site lock held for a whole command: the library calls the command makes join it
/// instead of taking it again. Released when dropped (and the last joined call is done).
#[derive(Debug)]
pub struct CommandLock {
    held: Arc<Mutex<Option<SiteLock>>>,
    _lock: SiteLock,
}

impl Drop for CommandLock {
    fn drop(&mut self) {
        self.held.lock().expect("command lock").take();
    }
}

impl Site {
    /// Reads the config; refuses a data folder written by a newer airlock.
    pub fn open(config_path: &Path) -> Result<Site, SiteError> {
        let site = Site::new(Config::load(config_path)?);
        format::check(site.data_dir())?;
        Ok(site)
    }

    /// A site of a config already read (its data folder not checked).
    pub fn new(config: Config) -> Site {
        Site {
            config,
            command_lock: Arc::default(),
            blob_source: None,
        }
    }

    /// The same site, its store reading dropped blobs back from `source` (the bucket).
    pub fn with_blob_source(mut self, source: Arc<dyn BlobSource>) -> Site {
        self.blob_source = Some(source);
        self
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.site.data_dir
    }

    pub fn store(&self) -> ContentStore {
        ContentStore::new(self.data_dir()).with_source(self.blob_source.clone())
    }

    /// The room the next sync (or import) needs: the largest recent update of each source
    /// still configured; none when no update is on record.
    pub fn next_sync_estimate(&self) -> Result<Option<Estimate>, StorageError> {
        let config = &self.config;
        let configured = |source: &str| match source.split_once('/') {
            Some(("apt", name)) => config.mirror(name).is_some(),
            // Prerequisites (bases, snapd) come with the configured snaps.
            Some(("snaps", _)) => !config.snaps.snaps.is_empty(),
            _ => source == "import" || (source == "images" && config.images.is_some()),
        };
        Ok(History::load(self.data_dir())?.estimate(configured))
    }

    /// Takes the site's writer lock, brings an older data folder to this airlock's format and
    /// removes what a crashed writer left in the store.
    pub fn lock(&self, reporter: &dyn Reporter) -> Result<SiteLock, StorageError> {
        if let Some(held) = self.held_by_command() {
            return Ok(held);
        }
        let lock = self.lock_as_is(reporter)?;
        format::upgrade(self.data_dir())?;
        let store = self.store();
        store.clean_temp()?;
        // A writer stopped before its flush: what it wrote in place is checked first.
        let unflushed = store.unflushed()?;
        if unflushed.is_empty() {
            return Ok(lock);
        }
        let total = unflushed.digests.len() as u64;
        let task = reporter.start(
            "checking files a stopped writer left unflushed",
            Some(total),
            crate::report::Unit::Items,
        );
        let damaged = store.recover_unflushed(&unflushed, &|n| reporter.advance(task, n as u64));
        reporter.finish(task);
        let damaged = damaged?;
        if damaged > 0 {
            reporter.warn(&format!(
                "{damaged} blobs written just before a crash were damaged and are removed from the store; the next sync fetches them again"
            ));
        }
        Ok(lock)
    }

    /// Takes the site's writer lock and changes nothing: `backup` copies an older folder as it
    /// is, the copy to restore when an upgrade goes wrong.
    pub fn lock_as_is(&self, reporter: &dyn Reporter) -> Result<SiteLock, StorageError> {
        if let Some(held) = self.held_by_command() {
            return Ok(held);
        }
        SiteLock::acquire(self.data_dir(), || {
            reporter.warn("another airlock command is changing this site; waiting for it to finish")
        })
    }

    /// Takes the site lock (as [`Site::lock`]) for a whole command that makes several library
    /// calls, each of which takes the lock: they join this one, so that no other writer comes
    /// in between (a writer's push after its publish reads what that publish wrote). The
    /// calls must be made one after the other, as a command makes them.
    pub fn lock_command(&self, reporter: &dyn Reporter) -> Result<CommandLock, StorageError> {
        let lock = self.lock(reporter)?;
        *self.command_lock.lock().expect("command lock") = Some(lock.clone());
        Ok(CommandLock {
            held: self.command_lock.clone(),
            _lock: lock,
        })
    }

    fn held_by_command(&self) -> Option<SiteLock> {
        self.command_lock.lock().expect("command lock").clone()
    }

    /// The data folder, which must exist: a server started without it would serve nothing
    /// and say nothing.
    pub fn existing_data_dir(&self) -> Result<&Path, SiteError> {
        let dir = self.data_dir();
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(SiteError::NoDataFolder {
                path: dir.to_path_buf(),
            })
        }
    }

    pub fn signing_key(&self) -> Result<SiteKey, OpenPgpError> {
        SiteKey::load(&self.config.site.signing_key)
    }
}

/// What `airlock init` creates.
#[derive(Debug)]
pub struct InitOutcome {
    pub config: PathBuf,
    pub key: KeyFiles,
    pub data_dir: PathBuf,
}

/// A signing key as written: the secret (mode 0600) and its public halves beside it.
#[derive(Debug)]
pub struct KeyFiles {
    pub secret_key: PathBuf,
    /// `NAME.gpg`: binary, for apt's signed-by= and MAAS.
    pub public_binary: PathBuf,
    /// `NAME.asc`: armored.
    pub public_armored: PathBuf,
    pub fingerprint: String,
}

/// Creates `airlock.toml`, the signing key (secret mode 0600, public as `airlock.gpg` and
/// `airlock.asc`) and the data folder in `dir`.
pub fn init(dir: &Path, algorithm: KeyAlgorithm, user_id: &str) -> Result<InitOutcome, SiteError> {
    let config = dir.join("airlock.toml");
    if config.exists() {
        return Err(SiteError::Exists { path: config });
    }
    let key = generate_key(&dir.join("airlock.key"), algorithm, user_id)?;
    write_atomic(&config, CONFIG_TEMPLATE.as_bytes(), 0o644)?;
    let parsed = Config::load(&config)?;
    let data_dir = parsed.site.data_dir.clone();
    fs_err::create_dir_all(&data_dir).map_err(|source| StorageError::Write {
        path: data_dir.clone(),
        source,
    })?;
    fs_err::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).map_err(
        |source| StorageError::Write {
            path: data_dir.clone(),
            source,
        },
    )?;
    format::write(&data_dir)?;
    Ok(InitOutcome {
        config,
        key,
        data_dir,
    })
}

/// Makes a signing key at `secret_key` (which must not exist yet), with its public halves
/// beside it (`.gpg` and `.asc` in place of its extension): `airlock init`, and a packaged
/// site's first start, whose config names the key.
pub fn generate_key(
    secret_key: &Path,
    algorithm: KeyAlgorithm,
    user_id: &str,
) -> Result<KeyFiles, SiteError> {
    let public_binary = secret_key.with_extension("gpg");
    let public_armored = secret_key.with_extension("asc");
    for path in [secret_key, &public_binary, &public_armored] {
        if path.exists() {
            return Err(SiteError::Exists {
                path: path.to_path_buf(),
            });
        }
    }
    let key = SiteKey::generate(algorithm, user_id)?;
    write_atomic(secret_key, key.secret_armored()?.as_bytes(), 0o600)?;
    write_atomic(&public_binary, &key.public_binary(), 0o644)?;
    write_atomic(&public_armored, key.public_armored().as_bytes(), 0o644)?;
    Ok(KeyFiles {
        secret_key: secret_key.to_path_buf(),
        public_binary,
        public_armored,
        fingerprint: key.fingerprint(),
    })
}

/// The configuration the Debian package installs as `/etc/airlock/airlock.toml`: the one
/// `airlock init` writes, with the Debian layout (data and key under `/var/lib/airlock`) and
/// port 80 (the unit grants the capability to bind it).
pub fn packaged_config() -> String {
    let mut text = CONFIG_TEMPLATE.to_string();
    for (from, to) in [
        (
            "data_dir = \"data\"",
            "data_dir = \"/var/lib/airlock/data\"",
        ),
        (
            "# Address `airlock serve` listens on (use a port above 1024 to run unprivileged).\nlisten = \"0.0.0.0:8080\"",
            "# Address `airlock serve` listens on (the airlock unit may bind ports below 1024).\nlisten = \"0.0.0.0:80\"",
        ),
        (
            "\"http://airlock.example.internal:8080\"",
            "\"http://airlock.example.internal\"",
        ),
        (
            "(created by `airlock init`)",
            "(made when the package was first installed)",
        ),
        (
            "signing_key = \"airlock.key\"",
            "signing_key = \"/var/lib/airlock/airlock.key\"",
        ),
        ("http://HOST:8080/", "http://HOST/"),
    ] {
        assert!(text.contains(from), "the config template lost {from:?}");
        text = text.replace(from, to);
    }
    text.replacen(
        "# Relative paths are relative to this file.",
        "# Installed by the airlock package; your changes are kept on upgrades.\n# Relative paths are relative to this file.",
        1,
    )
}

/// The commented configuration `airlock init` writes.
pub const CONFIG_TEMPLATE: &str = r#"# airlock.toml: what this airlock site holds and serves.
# Relative paths are relative to this file. `airlock --help` lists the commands.

[site]
# Content store, repository state and published trees live here.
data_dir = "data"
# Address `airlock serve` listens on (use a port above 1024 to run unprivileged).
listen = "0.0.0.0:8080"
# How clients reach this server: used in printed sources.list lines and on the index page.
# Defaults to http://HOSTNAME:PORT.
# public_url = "http://airlock.example.internal:8080"
# OpenPGP secret key that signs everything airlock publishes (created by `airlock init`).
# Clients trust its public half: airlock.gpg (binary, for apt signed-by= and MAAS) or
# airlock.asc (armored); `airlock serve` also offers both at /airlock.gpg and /airlock.asc.
signing_key = "airlock.key"
# How long files that a publish replaces stay downloadable, so that a client holding the
# previous indices (an `apt-get update` done before the publish) can still fetch them.
grace = "1d"

# A local apt repository of your own .deb files (what reprepro does):
#   airlock apt include local stable main ./my-debs/
#   airlock publish
# and on clients:
#   deb [signed-by=/etc/apt/keyrings/airlock.gpg] http://HOST:8080/apt/local stable main
[[apt.repo]]
name = "local"
suites = ["stable"]
components = ["main"]
architectures = ["amd64"]
# Release fields; apt asks users to confirm when these change, so choose them once.
# origin = "Example Site"
# label = "Example Site packages"
# description = "Packages built at the example site"
# Signed Release files expire this long after a publish; clients then refuse the repository
# until the next publish (run `airlock publish` from a timer more often than this).
# Without it, a stolen old copy of the repository stays valid for ever.
# valid_for = "7d"
# How many versions of each package and architecture a suite keeps.
# keep_versions = 1

# A mirror of an upstream archive, fetched by `airlock sync`, served at /apt/NAME/:
# [[apt.mirror]]
# name = "ubuntu"
# url = "http://archive.ubuntu.com/ubuntu/"
# suites = ["noble", "noble-updates", "noble-security"]
# components = ["main", "universe"]
# architectures = ["amd64"]
# keyring = "/usr/share/keyrings/ubuntu-archive-keyring.gpg"
# packages = ["maas", "openssh-server"]   # and their dependencies; omit to mirror all
# mode = "filtered"                       # re-signed with the site key; or "verbatim"
# sources = false                         # also the source packages

# One suite made of suites of repos and mirrors (the first listed wins a tie):
# [[apt.publish]]
# name = "site"
# suites = { noble = ["local/stable", "ubuntu/noble", "ubuntu/noble-updates"] }

# MAAS boot images (images.maas.io), re-signed and served at /images/;
# `airlock maas boot-source` prints the MAAS commands that use them.
# [images]
# url = "http://images.maas.io/ephemeral-v3/stable/"
# keyring = "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg"
# keep = 1
# [[images.select]]
# os = "ubuntu"
# release = ["noble"]
# arches = ["amd64"]

# [sync]
# jobs = 8          # parallel downloads
# timeout = "30s"
# retries = 4

# Requests for the mirrors' upstream names (archive.ubuntu.com ..., when DNS points them here,
# or from clients using this server as their HTTP proxy) are answered from the mirrors.
# Routes come from the mirrors' URLs; add others, or turn that off:
# [proxy]
# defaults = true
# upstream = false            # true on a gateway that can reach the upstreams: misses are
#                             # fetched, checked against the signed indices and stored
# passthrough = []            # HOST:PORT targets CONNECT may reach; all others are refused
# tunnel_idle = "10m"         # a CONNECT tunnel idle this long both ways is closed
# [[proxy.route]]
# host = "ports.ubuntu.com"
# path = "/ubuntu-ports"
# to = "apt/ubuntu-ports"     # a published tree: apt/NAME or images

# DNS: `airlock dns config --format dnsmasq|unbound|bind-rpz|maas` prints the config for the
# resolver the site has; or answer the names here (opt-in):
# [dns]
# listen = "0.0.0.0:53"
# address = ["10.0.0.5"]      # this server as clients reach it (default: public_url's address)
# upstream = "10.0.0.1:53"    # other names are forwarded there, for `allow` clients only
# allow = ["10.0.0.0/8"]      # default: loopback and private networks
# names = ["ntp.ubuntu.com"]  # more names to point here

# Bundles across the gap: `airlock export --to DIR` on the connected side writes what this
# site publishes, signed with its key; `airlock import DIR` on the air-gapped side accepts
# bundles signed by these keys (the exporting site's airlock.gpg):
# [import]
# trusted_keys = ["connected-site.gpg"]
#
# Each bundle carries a copy of this airlock, for the air-gapped side's first install: its
# .deb from apt's cache when a package installed it, else its binary. Name the .deb to
# carry, or carry none (`export --airlock-deb` and `--no-airlock` say the same per run):
# [export]
# airlock_deb = "/srv/debs/airlock_0.1.0_amd64.deb"
# carry_airlock = false
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_config_parses_with_the_debian_layout() {
        let text = super::packaged_config();
        let config =
            crate::config::Config::parse(&text, std::path::Path::new("/etc/airlock/airlock.toml"))
                .unwrap();
        assert_eq!(
            config.site.data_dir,
            std::path::Path::new("/var/lib/airlock/data")
        );
        assert_eq!(
            config.site.signing_key,
            std::path::Path::new("/var/lib/airlock/airlock.key")
        );
        assert_eq!(config.site.listen.port(), 80);
        assert!(!text.contains("8080"), "{text}");
    }

    #[test]
    fn init_creates_a_site_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let out = init(dir.path(), KeyAlgorithm::Ed25519, "Test site").unwrap();
        let mode = std::fs::metadata(&out.key.secret_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let site = Site::open(&out.config).unwrap();
        assert_eq!(
            site.signing_key().unwrap().fingerprint(),
            out.key.fingerprint
        );
        assert!(out.data_dir.is_dir());
        let err = init(dir.path(), KeyAlgorithm::Ed25519, "Again").unwrap_err();
        assert!(matches!(err, SiteError::Exists { .. }));
    }

    #[test]
    fn a_command_lock_is_joined_by_the_calls_it_makes_and_held_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let out = init(dir.path(), KeyAlgorithm::Ed25519, "Test site").unwrap();
        let site = Site::open(&out.config).unwrap();
        let reporter = crate::report::NullReporter::default();
        let busy = || {
            let file = std::fs::File::open(out.data_dir.join("lock")).unwrap();
            matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
        };

        let command = site.lock_command(&reporter).unwrap();
        // A library call joins it (taking the lock again would wait on itself for ever).
        let joined = site.lock(&reporter).unwrap();
        drop(joined);
        assert!(busy(), "the command still holds the lock");
        drop(command);
        assert!(!busy(), "released with the command");
        // Without a command lock, each call takes the lock of its own.
        let own = site.lock(&reporter).unwrap();
        assert!(busy());
        drop(own);
        assert!(!busy());
    }
}
