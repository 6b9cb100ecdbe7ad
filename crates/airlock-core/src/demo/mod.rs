//! A ready-made site that shows the whole product, built with nothing from the internet and
//! no tool besides airlock: a local repo of packages built here; an upstream archive and
//! image stream (a second site in the demo folder, with its own key, served on 127.0.0.1
//! for the time of the sync) mirrored, filtered and re-signed; a custom image; a snap
//! signed by a demo root the site trusts, imported; then an offline verify. `airlock demo`
//! then serves it. A second run in the same folder reuses everything.

mod packages;
mod snap;
mod squashfs;
mod upstream;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::apt::AptError;
use crate::apt::deb::{Compression, tar_of};
use crate::apt::mirror::{self, MirrorError, MirrorReport, SyncOptions};
use crate::apt::publish::{PublishReport, publish};
use crate::apt::repo::include;
use crate::hint::Hint;
use crate::openpgp::{KeyAlgorithm, OpenPgpError};
use crate::report::Reporter;
use crate::server::ServerError;
use crate::simplestreams::SimplestreamsError;
use crate::simplestreams::custom::{self, CustomImage, CustomImages, NewImage};
use crate::simplestreams::mirror::{self as images, ImagesReport};
use crate::site::{Site, SiteError, init};
use crate::snap::assertion::AssertionError;
use crate::snap::{ImportRequest, Imported, SnapError, site_trust};
use crate::storage::{StorageError, write_atomic};
use crate::verify;

pub use snap::NAME as SNAP;
pub use upstream::{ARCHIVE, SUITE as UPSTREAM_SUITE};

pub const REPO: &str = "demo";
pub const SUITE: &str = "stable";
pub const COMPONENT: &str = "main";
/// The filtered mirror of the upstream archive, and what it selects.
pub const MIRROR: &str = "mirror";
pub const MIRRORED: &str = "upstream-tool";
/// The upstream's name, which the site answers for as a proxy (`[[proxy.route]]`) with what
/// it mirrored from it.
pub const UPSTREAM_HOST: &str = "upstream.demo.invalid";
/// The custom image `images add` puts in the stream: os and release.
pub const CUSTOM: (&str, &str) = ("custom", "airlock-demo");

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error(transparent)]
    Apt(#[from] AptError),
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    #[error(transparent)]
    Images(#[from] SimplestreamsError),
    #[error(transparent)]
    Snap(#[from] SnapError),
    #[error(transparent)]
    Assertion(#[from] AssertionError),
    #[error(transparent)]
    OpenPgp(#[from] OpenPgpError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot build the demo's {what}")]
    Build {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl DemoError {
    fn build(
        what: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        DemoError::Build {
            what,
            source: source.into(),
        }
    }
}

impl Hint for DemoError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            DemoError::Site(e) => e.hint(),
            DemoError::Apt(e) => e.hint(),
            DemoError::Mirror(e) => e.hint(),
            DemoError::Images(e) => e.hint(),
            DemoError::Snap(e) => e.hint(),
            DemoError::Assertion(e) => e.hint(),
            DemoError::OpenPgp(e) => e.hint(),
            DemoError::Server(e) => e.hint(),
            DemoError::Storage(e) => e.hint(),
            DemoError::Build { .. } => {
                Some("remove the demo folder and run `airlock demo` again to start afresh")
            }
        }
    }
}

#[derive(Debug)]
pub struct Demo {
    pub site: Site,
    pub created: bool,
    pub published: Vec<PublishReport>,
    /// Where the upstream was served while the mirrors synced.
    pub upstream_url: String,
    pub mirrors: Vec<MirrorReport>,
    pub images: ImagesReport,
    /// The custom image, when this run added it.
    pub custom: Option<CustomImage>,
    pub snap: Imported,
    pub verify: verify::Report,
}

/// Creates (or reuses) the demo site in `dir`, listening on `listen`: publishes, mirrors,
/// imports and verifies it (the phases above).
pub fn prepare(
    dir: &Path,
    listen: std::net::SocketAddr,
    reporter: Arc<dyn Reporter>,
) -> Result<Demo, DemoError> {
    let config_path = dir.join("airlock.toml");
    let created = !config_path.exists();
    if created {
        init(
            dir,
            KeyAlgorithm::Ed25519,
            "airlock demo site <airlock@demo.invalid>",
        )?;
    }
    let upstream = upstream::prepare(&dir.join("upstream"), &*reporter)?;
    let snap = snap::prepare(&dir.join("snaps"))?;
    let serving = upstream.serve()?;
    let site = configure(
        &config_path,
        listen,
        &serving.url,
        &upstream.keyring,
        &snap.root,
    )?;
    let debs = packages::local(&dir.join("debs"))?;
    include(&site, REPO, SUITE, COMPONENT, &debs, &*reporter)?;
    let published = publish(
        &site,
        &[REPO.to_string()],
        &*reporter,
        jiff::Timestamp::now(),
    )?;
    let (mirrors, images) = sync(&site, reporter.clone())?;
    let upstream_url = serving.url.clone();
    drop(serving);
    let custom = custom_image(&site, &dir.join("images"), &*reporter)?;
    let snap = import_snap(&site, snap.snap, &*reporter)?;
    let verify = verify::offline(&site, &*reporter);
    Ok(Demo {
        site,
        created,
        published,
        upstream_url,
        mirrors,
        images,
        custom,
        snap,
        verify,
    })
}

/// Writes the demo's config (rewritten each time, so that --listen and the upstream's
/// address apply) and opens the site.
fn configure(
    config_path: &Path,
    listen: std::net::SocketAddr,
    upstream: &str,
    keyring: &Path,
    snap_root: &Path,
) -> Result<Site, DemoError> {
    let (keyring, snap_root) = (keyring.display(), snap_root.display());
    let config = format!(
        "# The airlock demo site: `airlock demo` wrote this file and rewrites it on each run;\n\
         # other airlock commands take it with --config {path}. The upstream it mirrors is\n\
         # served by `airlock demo` only while it syncs.\n\n\
         [site]\ndata_dir = \"data\"\nlisten = \"{listen}\"\npublic_url = \"http://{listen}\"\nsigning_key = \"airlock.key\"\n\n\
         [[apt.repo]]\nname = \"{REPO}\"\nsuites = [\"{SUITE}\"]\ncomponents = [\"{COMPONENT}\"]\n\
         architectures = [\"amd64\", \"arm64\"]\norigin = \"airlock demo\"\nlabel = \"airlock demo\"\nvalid_for = \"7d\"\n\n\
         [[apt.mirror]]\nname = \"{MIRROR}\"\nurl = \"{upstream}/apt/{archive}/\"\nsuites = [\"{suite}\"]\n\
         components = [\"{component}\"]\narchitectures = [\"amd64\", \"arm64\"]\nkeyring = \"{keyring}\"\n\
         packages = [\"{MIRRORED}\"]\nvalid_for = \"7d\"\n\n\
         [images]\nurl = \"{upstream}/images/\"\nkeyring = \"{keyring}\"\nkeep = 1\n\n\
         [[images.select]]\nos = \"ubuntu\"\nrelease = [\"noble\", \"jammy\"]\narches = [\"amd64\"]\n\n\
         [snaps]\ntrusted_keys = [\"{snap_root}\"]\n\n\
         [[proxy.route]]\nhost = \"{UPSTREAM_HOST}\"\npath = \"/apt/{archive}\"\nto = \"apt/{MIRROR}\"\n\
         upstream = \"{upstream}/apt/{archive}/\"\n\n\
         [[proxy.route]]\nhost = \"{UPSTREAM_HOST}\"\npath = \"/images\"\nto = \"images\"\n\
         upstream = \"{upstream}/images/\"\n",
        path = config_path.display(),
        archive = upstream::ARCHIVE,
        suite = upstream::SUITE,
        component = upstream::COMPONENT,
    );
    write_atomic(config_path, config.as_bytes(), 0o644)?;
    Ok(Site::open(config_path)?)
}

/// The mirror and the image stream synced from the upstream being served.
fn sync(
    site: &Site,
    reporter: Arc<dyn Reporter>,
) -> Result<(Vec<MirrorReport>, ImagesReport), DemoError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| DemoError::build("async runtime", e))?;
    let now = jiff::Timestamp::now();
    let options = SyncOptions {
        jobs: None,
        now,
        explain: None,
    };
    let mirrors = runtime.block_on(mirror::sync(site, &[], options, reporter.clone()))?;
    let images = runtime.block_on(images::sync(site, None, now, reporter))?;
    Ok((mirrors, images))
}

/// Imports the demo snap (again: a revision the store has is kept as it is) to
/// latest/stable, checked up to the demo root the config trusts.
fn import_snap(site: &Site, snap: PathBuf, reporter: &dyn Reporter) -> Result<Imported, DemoError> {
    let request = ImportRequest {
        snap,
        assertions: None,
        channels: vec!["latest/stable".into()],
        architectures: Vec::new(),
    };
    Ok(crate::snap::import(
        site,
        &site_trust(site)?,
        &request,
        reporter,
    )?)
}

/// Adds a custom image (a small tgz, what packer-maas makes) unless the site has it.
fn custom_image(
    site: &Site,
    dir: &Path,
    reporter: &dyn Reporter,
) -> Result<Option<CustomImage>, DemoError> {
    if !CustomImages::load(site)?.images.is_empty() {
        return Ok(None);
    }
    let (os, release) = CUSTOM;
    let tgz = tar_of(&[(
        "etc/os-release".to_string(),
        b"NAME=\"airlock demo custom image\"\n# not bootable\n".to_vec(),
        0o644,
    )])
    .and_then(|tar| Compression::Gzip.compress(&tar))
    .map_err(|e| DemoError::build("custom image", e))?;
    let file = dir.join("custom-demo.tar.gz");
    write_atomic(&file, &tgz, 0o644)?;
    let image = custom::add(
        site,
        NewImage {
            os: os.into(),
            release: release.into(),
            arch: "amd64".into(),
            subarch: "generic".into(),
            title: "airlock demo custom image".into(),
            label: "stable".into(),
            support_eol: None,
            filetype: "tgz".into(),
            file,
            manifest: None,
        },
        jiff::Timestamp::now(),
        reporter,
    )?;
    Ok(Some(image))
}
