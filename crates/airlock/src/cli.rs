//! Command-line arguments: every clap type lives here.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// airlock: everything an air-gapped MAAS site downloads, served from one place.
///
/// Start with `airlock demo` for a look, or `airlock init` for a real site.
#[derive(Debug, Parser)]
#[command(
    name = "airlock",
    version,
    max_term_width = 100,
    after_help = "Exit status: 0 on success; 1 when the command failed (verify: when a check failed); \
                  2 for a usage error (verify: when it could not run)."
)]
pub struct Cli {
    /// The site's configuration file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "AIRLOCK_CONFIG",
        default_value = "airlock.toml"
    )]
    pub config: PathBuf,

    /// Nothing on success but what the command was asked for (a listing, a key, --json,
    /// failed checks): no progress, no summaries. Warnings and errors still go to stderr.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,

    /// More detail (repeat for debug logs).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a site: a commented airlock.toml, the signing key and the data folder.
    Init(InitArgs),
    /// Show or export the site's signing key.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage local apt repositories of your own .deb files.
    #[command(subcommand)]
    Apt(AptCommand),
    /// Sign and publish repositories; clients see the new state all at once
    ///
    /// Also renews what would expire: suites half way to their Valid-Until, and imported
    /// mirrors on the air-gapped side, where no sync runs. Run it daily (cron or a timer).
    /// With a [storage] bucket, pushes what the site serves then (as `airlock push`).
    Publish(PublishArgs),
    /// Fetch the configured upstream mirrors, verify everything, publish what changed.
    Sync(SyncArgs),
    /// Custom and non-Ubuntu boot images in the published image stream.
    #[command(subcommand)]
    Images(ImagesCommand),
    /// The offline snap store: import snaps with their assertions, release them to channels.
    #[command(subcommand)]
    Snap(SnapCommand),
    /// HTTPS for `airlock serve`: a site CA and a server certificate.
    #[command(subcommand)]
    Tls(TlsCommand),
    /// What to run on the MAAS region to use this site.
    #[command(subcommand)]
    Maas(MaasCommand),
    /// Prove that what is served is whole: over HTTP as apt, MAAS and snapd fetch it, or
    /// with --offline the data folder itself.
    Verify(VerifyArgs),
    /// Point the mirrored upstream names (archive.ubuntu.com ...) at this server.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// How the site is doing: healthy or what to do, every content, the last verify, the
    /// routes and counters; from the running server, else from the data folder.
    Status(StatusArgs),
    /// Write what this site publishes as a signed bundle, to carry across the gap.
    Export(ExportArgs),
    /// Check a bundle from a trusted site and serve what it holds, re-signed with this site's key.
    Import(ImportArgs),
    /// Look into bundles without importing them.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Free the disk: remove stored files nothing published or kept refers to any more
    ///
    /// A file stays until the grace period ([site] grace) has passed since it was stored, and
    /// trees keep what they dropped for that long too, so clients mid-update never miss one.
    /// With [storage] kind = "s3", the bucket too (under the writers' lease): blobs and
    /// manifests neither the pushed generation nor those it replaced within the grace period
    /// name, written longer than the grace period ago.
    Gc(GcArgs),
    /// Copy the data folder to a new folder, hard links kept, while `serve` keeps serving
    ///
    /// Taken under the site lock (other commands wait); written as DEST.partial, then renamed.
    /// The config, the signing key and tls/ are not in the data folder: keep copies of them
    /// too. Restore: docs/operations.md.
    Backup(BackupArgs),
    /// Copy what the data folder serves into the [storage] bucket, for frontends to serve
    ///
    /// Uploads the blobs the bucket lacks, then the trees' manifests, then switches the
    /// bucket's pointer (published.json) in one write: frontends see the previous push or this
    /// one, never a mix. One writer at a time (a lease in the bucket); stopped at any point,
    /// the bucket still serves the previous push and the next push uploads only what is
    /// missing. Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or [storage]
    /// access_key_file / secret_key_file. The commands that publish (publish, sync, import,
    /// images add/remove, snap import/release/remove/fetch) push by themselves when [storage]
    /// is a bucket: run this one after their push failed, or for a site just given a bucket.
    Push(PushArgs),
    /// Rebuild a lost writer's data folder from its [storage] bucket
    ///
    /// On a new machine with the writer's airlock.toml and its signing key (restored from a
    /// backup: the key never goes to the bucket) and no data folder yet: reads what the
    /// bucket's pointer names, writes the writer's state (local repos, custom images, the snap
    /// catalog, imported bundles), reads the blobs back (with keep_pushed only what publishes
    /// read) and publishes each tree as the bucket serves it. Syncs, includes and publishes
    /// then go on from there.
    Pull(PushArgs),
    /// Serve everything published over HTTP.
    Serve(ServeArgs),
    /// Build a demo site offline and serve it: a repo, a mirror, images and a snap
    ///
    /// Everything comes from the demo folder: packages built here, an upstream archive and
    /// image stream (a second site with its own key) mirrored and re-signed, a custom image,
    /// a snap signed by a demo root the site trusts. Then an offline verify, and a recipe
    /// for apt, the image stream and the snap store API. A second run reuses it all.
    Demo(DemoArgs),
    /// Write the shell completions and man pages of this command line into a folder (for
    /// packaging; the package ships what this writes).
    #[command(hide = true)]
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder for the new site (created if needed).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Algorithm of the signing key.
    #[arg(long, value_enum, default_value_t = KeyType::Ed25519)]
    pub key_type: KeyType,
    /// User ID of the signing key.
    #[arg(long, default_value = "airlock site key")]
    pub name: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyType {
    /// EdDSA over Curve25519 (the format Debian 12's gpgv reads).
    Ed25519,
    /// RSA with a 4096-bit modulus, for clients that want RSA.
    Rsa4096,
}

impl KeyType {
    pub fn algorithm(self) -> airlock_core::openpgp::KeyAlgorithm {
        match self {
            KeyType::Ed25519 => airlock_core::openpgp::KeyAlgorithm::Ed25519,
            KeyType::Rsa4096 => airlock_core::openpgp::KeyAlgorithm::Rsa4096,
        }
    }
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only these areas (default all; the server itself is always checked).
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(airlock_core::verify::AREAS), conflicts_with = "offline")]
    pub what: Vec<String>,
    /// The server to check (default: the site's public_url).
    #[arg(long)]
    pub url: Option<String>,
    /// Every pool file, not a sample.
    #[arg(long)]
    pub full: bool,
    /// Pool files checked per suite when not --full.
    #[arg(long, default_value_t = 20)]
    pub sample: usize,
    /// Warn about a Release that expires within this many days.
    #[arg(long, default_value_t = 7)]
    pub horizon_days: u32,
    /// Check the data folder without a server: every stored blob re-hashed, every published
    /// file and every snap's blob present. Exit status 0 all passed, 1 failures, 2 could not run.
    #[arg(long)]
    pub offline: bool,
    /// One JSON document instead of the table, for monitoring.
    #[arg(long)]
    pub json: bool,
    /// The DNS server the site's machines use (IP or IP:PORT): the overridden names must
    /// resolve there to [dns] address (default: this machine's resolver).
    #[arg(long, value_parser = resolver_address)]
    pub resolver: Option<std::net::SocketAddr>,
    /// After the checks, print a runbook of what clients are told: addresses, keys, apt
    /// sources, the names to point here, the MAAS and snapd settings.
    #[arg(long, conflicts_with_all = ["offline", "json"])]
    pub client_config: bool,
}

fn resolver_address(text: &str) -> Result<std::net::SocketAddr, String> {
    text.parse()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()))
        .map_err(|_| format!("{text:?} is not an address (10.0.0.1 or 10.0.0.1:53)"))
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to export: apt/NAME (or NAME) for a repo, mirror or combined suite, images, snaps.
    /// Default: everything published.
    pub what: Vec<String>,
    /// The bundle folder to write (new or empty).
    #[arg(long)]
    pub to: PathBuf,
    /// Only what this earlier bundle of the site (its folder or manifest.json) lacked: the
    /// importing side must have imported that one.
    #[arg(long)]
    pub since: Option<PathBuf>,
    /// Volumes of at most this size, for DVDs, USB disks or a diode's limit: bytes, or with a
    /// unit: 700MiB, 4G (binary, as split(1)), 4.7GB (decimal).
    #[arg(long, value_parser = byte_size)]
    pub split: Option<u64>,
    /// zstd-compressed volumes (volume-NNN.tar.zst): worth it for indices and images, not .debs.
    #[arg(long)]
    pub zstd: bool,
    /// The airlock .deb to carry in the bundle (default: [export] airlock_deb, else this
    /// airlock's own .deb from apt's cache when a package installed it, else its binary;
    /// docs/bundles.md).
    #[arg(long, conflicts_with = "no_airlock")]
    pub airlock_deb: Option<PathBuf>,
    /// Carry no copy of airlock in the bundle (as [export] carry_airlock = false).
    #[arg(long)]
    pub no_airlock: bool,
    /// One JSON document on stdout of what was done, instead of the lines (fields:
    /// docs/operations.md).
    #[arg(long)]
    pub json: bool,
}

/// `4G`, `700MiB`, `4.7GB`, `1048576`.
pub fn byte_size(text: &str) -> Result<u64, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (700MiB, 4G, 4.7GB)"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "{other:?} is not a size unit (K, M, G, T, KiB ..., KB ...)"
            ));
        }
    };
    let bytes = (number * factor as f64) as u64;
    if bytes < (1 << 20) {
        return Err(format!(
            "{text:?} is smaller than a volume can usefully be (1 MiB)"
        ));
    }
    Ok(bytes)
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The bundle folder (manifest.json, its signature and the volumes, in any order).
    pub bundle: PathBuf,
    /// An exporting site's public key (airlock.gpg), besides [import] trusted_keys.
    #[arg(long)]
    pub keyring: Vec<PathBuf>,
    /// One JSON document on stdout of what was done, instead of the lines (fields:
    /// docs/operations.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// What a bundle holds, per content and volume, and who signed it.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    pub bundle: PathBuf,
    /// An exporting site's public key, besides [import] trusted_keys.
    #[arg(long)]
    pub keyring: Vec<PathBuf>,
    /// One JSON document instead of the lines (fields: docs/operations.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// Print the config that makes an existing resolver answer the routed names with this
    /// server's address.
    Config {
        #[arg(long, value_enum, default_value_t = DnsFormat::Dnsmasq)]
        format: DnsFormat,
        /// The address to answer with (repeat for IPv4 and IPv6; default [dns] address).
        #[arg(long = "address")]
        addresses: Vec<std::net::IpAddr>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DnsFormat {
    /// Lines for /etc/dnsmasq.d/.
    Dnsmasq,
    /// A server: clause for /etc/unbound/unbound.conf.d/.
    Unbound,
    /// A response policy zone for BIND 9.
    BindRpz,
    /// `maas` CLI commands adding the names to MAAS's DNS.
    Maas,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The server to ask (default: the site's public_url); when none answers there, the data
    /// folder is read.
    #[arg(long)]
    pub url: Option<String>,
    /// The status document (/status.json) as it is.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Make the site CA (once; later runs reuse it) and a server certificate for the site's
    /// names, in tls/ next to airlock.toml.
    Init {
        /// More DNS names or addresses the certificate must cover (repeat).
        #[arg(long = "name")]
        names: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SnapCommand {
    /// Import a snap with its .assert file (as `snap download` writes them), or every snap of a
    /// folder; accepted only when the assertions verify up to a trusted root and match the
    /// file's SHA3-384 and size.
    Import {
        /// A .snap file, or a folder of them (each with its .assert).
        snap: PathBuf,
        /// The assertions (default: the snap's path with .assert).
        assertions: Option<PathBuf>,
        /// Channels to release it to (track/risk[/branch]); repeat for several.
        #[arg(long = "channel")]
        channels: Vec<String>,
        /// Architectures to release it for (default: those meta/snap.yaml declares).
        #[arg(long = "arch")]
        architectures: Vec<String>,
    },
    /// Point channels at a stored revision.
    Release {
        name: String,
        revision: u64,
        #[arg(required = true)]
        channels: Vec<String>,
        #[arg(long = "arch")]
        architectures: Vec<String>,
    },
    /// List the snaps of the store, their revisions and channels.
    List {
        /// One JSON document instead of the lines (fields: docs/operations.md).
        #[arg(long)]
        json: bool,
    },
    /// Download the [[snaps.snap]] entries of the config from the upstream store, with the
    /// bases, snapd and content providers they need; checked as an import is.
    Fetch,
    /// What a MAAS host or a deployed machine needs to use this store: the snapd drop-in, the
    /// CA to trust, and the cloud-init snippet for machines MAAS deploys.
    ClientConfig,
    /// Remove a snap (or one revision of it) from the store.
    Remove {
        name: String,
        #[arg(long)]
        revision: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Add an image (a tgz of a root filesystem, as packer-maas builds) to the stream.
    Add(ImagesAddArgs),
    /// List the products of the published stream, mirrored and custom.
    List {
        /// One JSON document instead of the lines (fields: docs/operations.md).
        #[arg(long)]
        json: bool,
    },
    /// Remove a custom image (every version, or the one given).
    Remove {
        #[arg(long)]
        os: String,
        #[arg(long)]
        release: String,
        #[arg(long)]
        arch: Option<String>,
        #[arg(long)]
        version: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ImagesAddArgs {
    /// Operating system, as MAAS names it (rhel, centos, ol, suse, esxi, windows, custom...).
    #[arg(long)]
    pub os: String,
    #[arg(long)]
    pub release: String,
    #[arg(long, default_value = "amd64")]
    pub arch: String,
    #[arg(long, default_value = "generic")]
    pub subarch: String,
    /// Shown in MAAS (default: "OS RELEASE").
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long, default_value = "stable")]
    pub label: String,
    /// End of support (YYYY-MM-DD), which MAAS shows.
    #[arg(long)]
    pub support_eol: Option<String>,
    /// As `maas boot-resources create filetype=` takes it; only tgz goes into a stream.
    #[arg(long, default_value = "tgz", value_parser = clap::builder::PossibleValuesParser::new(airlock_core::simplestreams::custom::FILETYPES))]
    pub filetype: String,
    /// The image's package manifest (default: a listing of the tgz).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    pub file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum MaasCommand {
    /// Print the commands that make MAAS import boot images from this site.
    BootSource,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make the signing key the config names (`[site] signing_key`), with its public halves
    /// beside it (.gpg, .asc); refuses to replace one. A packaged site's first start uses it.
    Generate {
        /// Algorithm of the signing key.
        #[arg(long, value_enum, default_value_t = KeyType::Ed25519)]
        key_type: KeyType,
        /// User ID of the signing key.
        #[arg(long, default_value = "airlock site key")]
        name: String,
        /// Do nothing when the key exists (the package's first install, and every later one).
        #[arg(long)]
        if_missing: bool,
    },
    /// Print the fingerprint and details of the signing key.
    Show,
    /// Write the public key to stdout (binary, or armored with --armor).
    Export {
        #[arg(long)]
        armor: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AptCommand {
    /// Add .deb files (or every .deb below folders) to a suite and component.
    Include {
        /// A repo of the config ([[apt.repo]] name).
        repo: String,
        /// One of the repo's suites.
        suite: String,
        /// One of the repo's components.
        component: String,
        /// .deb files or folders.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Remove packages from a suite (every version and architecture unless narrowed).
    Remove {
        repo: String,
        suite: String,
        /// Package names.
        #[arg(required = true)]
        packages: Vec<String>,
        /// Only this version.
        #[arg(long)]
        version: Option<String>,
        /// Only this architecture.
        #[arg(long = "arch")]
        architecture: Option<String>,
        /// Only in this component.
        #[arg(long)]
        component: Option<String>,
    },
    /// List the packages of a repo, or of one suite.
    List {
        repo: String,
        suite: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Count what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON document on stdout of what was done, instead of the lines (fields:
    /// docs/operations.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// One JSON document on stdout of what was done, instead of the lines (fields:
    /// docs/operations.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Repos, and imported mirrors, to publish (default: all).
    pub repos: Vec<String>,
    /// One JSON document on stdout of what was done, instead of the lines (fields:
    /// docs/operations.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Apt mirrors to sync, and `images` for the boot-image stream (default: everything).
    pub mirrors: Vec<String>,
    /// Downloads at once (default: [sync] jobs, 8).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// One JSON document on stdout of what was done, instead of the lines (fields:
    /// docs/operations.md).
    #[arg(long)]
    pub json: bool,
    /// Print why PACKAGE is in each apt mirror synced (the dependency chain from a name of
    /// `packages`, the alternatives passed over), or why it is not.
    #[arg(long, value_name = "PACKAGE")]
    pub explain: Option<String>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup folder to create (must not exist; outside the data folder).
    pub dest: PathBuf,
    /// One JSON document on stdout of what was copied, instead of the line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen here instead of the configured address (port 0 picks a free port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// completions/ (bash, zsh, fish) and man/ are written below it.
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder of the demo site (reused if it exists).
    #[arg(default_value = "airlock-demo")]
    pub dir: PathBuf,
    /// Address to serve the demo on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Prepare and publish the demo site, then exit instead of serving it.
    #[arg(long)]
    pub no_serve: bool,
}

#[cfg(test)]
mod tests {
    #[test]
    fn arguments_are_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
