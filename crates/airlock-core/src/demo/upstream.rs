//! The demo's upstream: a second airlock site in the demo folder, with its own key, that
//! publishes a small apt archive and a MAAS-shaped image stream, and serves them on
//! 127.0.0.1 while the demo site mirrors them, as images.maas.io and an Ubuntu archive would.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::{DemoError, packages, squashfs};
use crate::apt::deb::{Compression, tar_of};
use crate::apt::publish::publish;
use crate::apt::repo::include;
use crate::openpgp::{KeyAlgorithm, SiteKey};
use crate::report::Reporter;
use crate::server::{Limits, Listeners, ServerError, ServerState, serve};
use crate::simplestreams::document::{Item, Product, Products, Version};
use crate::simplestreams::publish::{publish_made, trees};
use crate::site::{Site, init};
use crate::storage::{Sha256, read_limited, write_atomic};

/// The upstream's apt repo, suite and component, mirrored as [`super::MIRROR`].
pub const ARCHIVE: &str = "archive";
pub const SUITE: &str = "stable";
pub const COMPONENT: &str = "main";
/// The upstream images, one version each: (codename, version, arch).
const IMAGES: &[(&str, &str, &str)] = &[
    ("noble", "24.04", "amd64"),
    ("noble", "24.04", "arm64"),
    ("jammy", "22.04", "amd64"),
];
const SERIAL: &str = "20261201";
const UBUNTU: &str = "com.ubuntu.maas:stable:v3:download";
const BOOTLOADERS: &str = "com.ubuntu.maas:stable:1:bootloader-download";

pub(super) struct Upstream {
    site: Site,
    key: SiteKey,
    /// Where the address it served from last time is kept, so a rerun asks for it again
    /// and the mirrors' URLs stay the same.
    port_file: PathBuf,
    /// Its public key, the demo mirrors' keyring.
    pub keyring: PathBuf,
}

/// Creates (or reuses) the upstream site in `dir` and publishes its archive and stream.
pub(super) fn prepare(dir: &Path, reporter: &dyn Reporter) -> Result<Upstream, DemoError> {
    let config_path = dir.join("airlock.toml");
    if !config_path.exists() {
        init(
            dir,
            KeyAlgorithm::Ed25519,
            "airlock demo upstream <upstream@demo.invalid>",
        )?;
    }
    let config = format!(
        "# The airlock demo's upstream archive and image stream: `airlock demo` wrote this file\n\
         # and serves this site on 127.0.0.1 while the demo site mirrors it.\n\n\
         [site]\ndata_dir = \"data\"\nlisten = \"127.0.0.1:0\"\nsigning_key = \"airlock.key\"\n\n\
         [[apt.repo]]\nname = \"{ARCHIVE}\"\nsuites = [\"{SUITE}\"]\ncomponents = [\"{COMPONENT}\"]\n\
         architectures = [\"amd64\", \"arm64\"]\norigin = \"airlock demo upstream\"\n\
         label = \"airlock demo upstream\"\n"
    );
    write_atomic(&config_path, config.as_bytes(), 0o644)?;
    let site = Site::open(&config_path)?;
    let debs = packages::upstream(&dir.join("debs"))?;
    include(&site, ARCHIVE, SUITE, COMPONENT, &debs, reporter)?;
    publish(
        &site,
        &[ARCHIVE.to_string()],
        reporter,
        jiff::Timestamp::now(),
    )?;
    let key = site.signing_key()?;
    if trees(&site).current()?.is_none() {
        let (documents, files) = stream()?;
        publish_made(
            &site,
            &key,
            documents,
            files,
            jiff::Timestamp::now(),
            reporter,
        )?;
    }
    Ok(Upstream {
        keyring: dir.join("airlock.gpg"),
        port_file: dir.join("port"),
        site,
        key,
    })
}

impl Upstream {
    /// Serves the upstream on 127.0.0.1 (the port of the last run when it is free) until
    /// the returned [`Serving`] is dropped.
    pub fn serve(&self) -> Result<Serving, DemoError> {
        let last = read_limited(&self.port_file, 16, "the demo upstream's port file")
            .ok()
            .and_then(|p| String::from_utf8_lossy(&p).trim().parse::<u16>().ok());
        let limits = Limits::default();
        let bind = |port| Listeners::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), 64);
        let listeners = match last.map(bind) {
            Some(Ok(listeners)) => listeners,
            _ => bind(0)?,
        };
        let address = listeners.local_addr();
        write_atomic(
            &self.port_file,
            format!("{}\n", address.port()).as_bytes(),
            0o644,
        )?;
        let url = format!("http://{address}");
        // The upstream's requests are not the demo site's: counted in memory, never kept.
        let counters = std::sync::Arc::new(crate::status::Counters::default());
        let state = ServerState::new(&self.site, &url, &self.key, counters);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("airlock-demo-upstream".into())
            .spawn(move || {
                serve(
                    listeners,
                    state,
                    limits,
                    move |_| stopped.cancelled_owned(),
                    std::time::Duration::from_secs(1),
                )
            })
            .map_err(|e| DemoError::build("upstream's server", e))?;
        Ok(Serving {
            url,
            stop,
            thread: Some(thread),
        })
    }
}

/// The upstream being served; dropping it stops the server.
pub(super) struct Serving {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<Result<(), ServerError>>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take()
            && let Ok(Err(e)) = thread.join()
        {
            tracing::warn!("the demo upstream's server: {e}");
        }
    }
}

/// Path and bytes of each file a stream lists.
type Files = Vec<(String, Vec<u8>)>;

/// The upstream stream: an Ubuntu products document (kernel, initrd, squashfs, manifest per
/// image) and a bootloader one, with the files they list. Not bootable: MAAS-shaped only.
fn stream() -> Result<(Vec<Products>, Files), DemoError> {
    let mut files = Vec::new();
    let mut item = |ftype: &str, path: String, bytes: Vec<u8>| -> Item {
        let item = Item {
            ftype: ftype.to_string(),
            path: path.clone(),
            sha256: Sha256::of(&bytes).to_hex(),
            size: bytes.len() as u64,
            fields: Map::new(),
        };
        files.push((path, bytes));
        item
    };
    let mut ubuntu = BTreeMap::new();
    for (release, version, arch) in IMAGES {
        let base = format!("{release}/{arch}/{SERIAL}");
        let kernel = format!("ga-{version}");
        let what = format!("Ubuntu {version} {arch}: an airlock demo file, not bootable\n");
        let os_release = format!(
            "NAME=\"Ubuntu\"\nVERSION_ID=\"{version}\"\nVERSION_CODENAME={release}\n# {what}"
        );
        let items = [
            item(
                "boot-kernel",
                format!("{base}/{kernel}/generic/boot-kernel"),
                format!("kernel of {what}").into_bytes(),
            ),
            item(
                "boot-initrd",
                format!("{base}/{kernel}/generic/boot-initrd"),
                format!("initrd of {what}").into_bytes(),
            ),
            item(
                "squashfs",
                format!("{base}/squashfs"),
                squashfs::write(&[("etc/os-release", os_release.as_bytes(), 0o644)])?,
            ),
            item(
                "manifest",
                format!("{base}/squashfs.manifest"),
                b"base-files\t13ubuntu10\n".to_vec(),
            ),
        ];
        ubuntu.insert(
            format!("com.ubuntu.maas.stable:v3:boot:{version}:{arch}:{kernel}"),
            product(
                &[
                    ("arch", arch),
                    ("os", "ubuntu"),
                    ("release", release),
                    ("version", version),
                    ("release_title", &format!("{version} LTS")),
                    ("release_codename", release),
                    ("subarch", &kernel),
                    ("subarches", "generic"),
                    ("kflavor", "generic"),
                    ("krel", release),
                    ("label", "stable"),
                    ("support_eol", "2034-04-25"),
                ],
                SERIAL,
                items.into_iter(),
            ),
        );
    }
    let grub = tar_of(&[(
        "README".to_string(),
        b"an airlock demo bootloader archive: not a bootloader\n".to_vec(),
        0o644,
    )])
    .and_then(|tar| Compression::Xz.compress(&tar))
    .map_err(|e| DemoError::build("bootloader archive", e))?;
    let version = format!("{SERIAL}.0");
    let mut grub_item = item(
        "archive.tar.xz",
        format!("bootloaders/uefi/amd64/{version}/grub2-signed.tar.xz"),
        grub,
    );
    grub_item
        .fields
        .insert("src_package".into(), "grub2-signed".into());
    let mut bootloaders = BTreeMap::new();
    bootloaders.insert(
        "com.ubuntu.maas.stable:1:grub-efi-signed:uefi:amd64".to_string(),
        product(
            &[
                ("arch", "amd64"),
                ("arches", "amd64"),
                ("bootloader-type", "uefi"),
                ("label", "stable"),
                ("os", "grub-efi-signed"),
            ],
            &version,
            [grub_item].into_iter(),
        ),
    );
    let documents = [(UBUNTU, ubuntu), (BOOTLOADERS, bootloaders)]
        .into_iter()
        .map(|(content_id, products)| Products {
            content_id: content_id.to_string(),
            datatype: "image-ids".into(),
            format: "products:1.0".into(),
            updated: None,
            products,
            extra: Map::new(),
        })
        .collect();
    Ok((documents, files))
}

/// A product with these fields and one version of `items` (named by their ftype, or
/// src_package for bootloaders).
fn product(fields: &[(&str, &str)], version: &str, items: impl Iterator<Item = Item>) -> Product {
    let items = items
        .map(|item| {
            let name = match item.fields.get("src_package") {
                Some(Value::String(name)) => name.clone(),
                _ => item.ftype.clone(),
            };
            (name, item)
        })
        .collect();
    Product {
        versions: BTreeMap::from([(
            version.to_string(),
            Version {
                items,
                fields: Map::new(),
            },
        )]),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect(),
    }
}
