//! Mirroring a MAAS boot-image stream end to end: a stream shaped like images.maas.io,
//! clearsigned by gpg and served on 127.0.0.1; `airlock sync` with a MAAS selection; then a
//! client reading the served stream as MAAS does (index.sjson, every product file, every item)
//! with the signatures checked by the real gpgv against the site keyring.

use std::collections::BTreeSet;

use crate::common::stream::{BOOTLOADERS, Stream, UBUNTU, signed_document};
use crate::common::upstream::{Fault, Upstream};
use crate::common::{Site, curl};
use serde_json::Value;
use sha2::Digest;

pub(crate) fn config(stream: &Stream, url: &str) -> String {
    format!(
        "[images]\nurl = \"{url}/\"\nkeyring = \"{}\"\n\n[[images.select]]\nos = \"ubuntu\"\nrelease = \"noble\"\narches = [\"amd64\"]\n\n[sync]\ntimeout = \"2s\"\nretries = 1\n",
        stream.keyring.display()
    )
}

/// Reads the served stream as MAAS does; returns product names, checking every item.
pub(crate) fn read_as_maas(base: &str, keyring: &std::path::Path) -> BTreeSet<String> {
    read_versions_as_maas(base, keyring, 1)
}

fn read_versions_as_maas(
    base: &str,
    keyring: &std::path::Path,
    expected_versions: usize,
) -> BTreeSet<String> {
    let index = signed_document(&format!("{base}/streams/v1/index.sjson"), keyring);
    assert_eq!(index["format"], "index:1.0");
    let mut names = BTreeSet::new();
    for (content_id, entry) in index["index"].as_object().unwrap() {
        let path = entry["path"].as_str().unwrap();
        assert!(path.ends_with(".sjson"), "{path}");
        let products = signed_document(&format!("{base}/{path}"), keyring);
        assert_eq!(&products["content_id"], content_id);
        for (name, product) in products["products"].as_object().unwrap() {
            names.insert(name.clone());
            let versions = product["versions"].as_object().unwrap();
            assert_eq!(versions.len(), expected_versions, "{name}");
            for version in versions.values() {
                for item in version["items"].as_object().unwrap().values() {
                    let url = format!("{base}/{}", item["path"].as_str().unwrap());
                    let out = curl(&["-fs", &url]);
                    assert!(out.status.success(), "GET {url}");
                    assert_eq!(out.stdout.len() as u64, item["size"].as_u64().unwrap());
                    assert_eq!(
                        hex::encode(sha2::Sha256::digest(&out.stdout)),
                        item["sha256"].as_str().unwrap(),
                        "{url}"
                    );
                }
            }
        }
    }
    names
}

#[test]
fn selected_images_and_every_bootloader_served_resigned() {
    let stream = Stream::new();
    let upstream = Upstream::serve(stream.path());
    let site = Site::new("ed25519", &config(&stream, &upstream.url));
    let out = site.ok(&["sync"]);
    // noble/amd64's two kernels share one squashfs and manifest: 9 files, each fetched once.
    assert!(
        out.contains("images: published 4 products (2 bootloaders), 9 files; 9 downloaded"),
        "{out}"
    );

    let server = site.serve();
    let names = read_as_maas(&format!("{}/images", server.url), &site.keyring());
    let expected: BTreeSet<String> = [
        "com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04",
        "com.ubuntu.maas.stable:v3:boot:24.04:amd64:hwe-24.04",
        "com.ubuntu.maas.stable:1:grub-efi-signed:uefi:amd64",
        "com.ubuntu.maas.stable:1:pxelinux:pxe:i386",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(names, expected);
    // Byte ranges, as resumed downloads of large images ask.
    let squashfs = std::fs::read(stream.path().join("noble/amd64/20250201/squashfs")).unwrap();
    let range = curl(&[
        "-fs",
        "-r",
        "100-199",
        &format!("{}/images/noble/amd64/20250201/squashfs", server.url),
    ]);
    assert_eq!(range.stdout, &squashfs[100..200]);
    // Only the newest version's files are there.
    let old = curl(&[
        "-fs",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{}/images/noble/amd64/20250101/squashfs", server.url),
    ]);
    assert_eq!(String::from_utf8_lossy(&old.stdout), "404");

    // `airlock verify` reads the stream as MAAS does: signatures, shapes, every item (--full).
    let out = site.run(&["verify", "--url", &server.url, "--full"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("images") && l.ends_with("ok")),
        "{text}"
    );
    // A damaged image file is found and named, with the product it belongs to.
    let served = site
        .path()
        .join("data/public/images/noble/amd64/20250201/squashfs");
    // A hard link of the store's blob: writing it in place damages what is served.
    let blob = std::fs::canonicalize(&served).unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[0] ^= 0xff;
    std::fs::set_permissions(&blob, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::write(&blob, &bytes).unwrap();
    let out = site.run(&["verify", "--url", &server.url, "--full"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAILED images: com.ubuntu.maas.stable:v3:boot:24.04:amd64:")
            && text.contains("squashfs"),
        "{text}"
    );
    bytes[0] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();

    // Nothing changed upstream: the signed documents alone are fetched.
    upstream.take_requests();
    assert!(
        site.ok(&["sync", "images"])
            .contains("images: upstream unchanged")
    );
    assert_eq!(upstream.take_requests().len(), 3);
}

/// Each bad input is refused with an error naming the document or item, and the served
/// stream stays exactly as it was.
#[test]
fn bad_streams_are_refused_and_the_served_stream_kept() {
    let stream = Stream::new();
    let upstream = Upstream::serve(stream.path());
    let site = Site::new("ed25519", &config(&stream, &upstream.url));
    site.ok(&["sync"]);
    let served = || {
        site.snapshot()
            .into_iter()
            .filter(|(p, _)| p.starts_with("data/public") || p.starts_with("data/trees"))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let before = served();
    let refused = |needles: &[&str]| {
        let out = site.run(&["sync", "images"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "sync succeeded");
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{needle:?} missing from:\n{stderr}"
            );
        }
        assert!(served() == before, "what is served changed");
    };
    // A new version upstream, so that the next sync has work to do.
    let add_version = |edit: &dyn Fn(&mut Value)| {
        stream.edit_ubuntu(|doc| {
            let product =
                &mut doc["products"]["com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04"];
            let mut version = product["versions"]["20250201"].clone();
            edit(&mut version);
            product["versions"]["20250301"] = version;
        });
    };

    // An item served with content that differs from its sha256 (same size).
    let kernel = b"a new kernel\n".repeat(1000);
    let kernel_path = stream.path().join("noble/amd64/20250301/boot-kernel");
    std::fs::create_dir_all(kernel_path.parent().unwrap()).unwrap();
    std::fs::write(&kernel_path, &kernel).unwrap();
    add_version(&|v| {
        let item = &mut v["items"]["boot-kernel"];
        item["path"] = "noble/amd64/20250301/boot-kernel".into();
        item["size"] = kernel.len().into();
        item["sha256"] = hex::encode(sha2::Sha256::digest(&kernel)).into();
    });
    upstream.fault("noble/amd64/20250301/boot-kernel", Fault::Corrupt);
    refused(&["noble/amd64/20250301/boot-kernel", "SHA-256"]);
    upstream.clear_faults();

    // The same item cut short by the server.
    upstream.fault(
        "noble/amd64/20250301/boot-kernel",
        Fault::Truncate(kernel.len() / 2),
    );
    refused(&["noble/amd64/20250301/boot-kernel"]);
    upstream.clear_faults();

    // A path leaving the mirror, or absolute.
    add_version(&|v| v["items"]["boot-kernel"]["path"] = "../../etc/passwd".into());
    refused(&["ga-24.04 20250301 item boot-kernel", "forbidden component"]);
    add_version(&|v| v["items"]["boot-kernel"]["path"] = "/etc/passwd".into());
    refused(&["ga-24.04 20250301 item boot-kernel", "is not relative"]);

    // A size that is not a number: JSON of the wrong shape.
    add_version(&|v| v["items"]["boot-kernel"]["size"] = "big".into());
    refused(&[UBUNTU, "not a valid document"]);

    // A required field missing.
    add_version(&|v| {
        v["items"]["boot-kernel"]
            .as_object_mut()
            .unwrap()
            .remove("sha256");
    });
    refused(&[UBUNTU, "missing field `sha256`"]);

    // A document signed by another key.
    let other = Stream::new();
    std::fs::copy(
        other.path().join(format!("streams/v1/{BOOTLOADERS}.sjson")),
        stream
            .path()
            .join(format!("streams/v1/{BOOTLOADERS}.sjson")),
    )
    .unwrap();
    refused(&[BOOTLOADERS]);

    // An unsigned document.
    std::fs::copy(
        stream.path().join(format!("streams/v1/{BOOTLOADERS}.json")),
        stream
            .path()
            .join(format!("streams/v1/{BOOTLOADERS}.sjson")),
    )
    .unwrap();
    refused(&[BOOTLOADERS, "not clearsigned"]);
}

/// A custom RHEL image: checked to be a tgz, published in MAAS's `<os>-bases` shape (root-tgz
/// plus manifest) next to the mirrored products, listed, kept across syncs, removable.
#[test]
fn custom_images_join_the_stream() {
    let stream = Stream::new();
    let upstream = Upstream::serve(stream.path());
    let site = Site::new("ed25519", &config(&stream, &upstream.url));
    site.ok(&["sync"]);

    let tgz = crate::common::rhel_tgz(site.path());
    let tgz_arg = tgz.to_str().unwrap();
    let out = site.ok(&[
        "images",
        "add",
        "--os",
        "rhel",
        "--release",
        "9",
        "--title",
        "RHEL 9",
        tgz_arg,
    ]);
    let today = jiff::Timestamp::now().strftime("%Y%m%d").to_string();
    assert!(
        out.contains(&format!(
            "added io.airlock.custom.stable:rhel-bases:9:amd64 version {today}_01"
        )),
        "{out}"
    );
    let list = site.ok(&["images", "list"]);
    assert!(
        list.contains(&format!(
            "io.airlock.custom.stable:rhel-bases:9:amd64  {today}_01"
        )),
        "{list}"
    );
    assert!(
        list.contains("com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04"),
        "{list}"
    );

    // Neither an upstream change nor its absence loses it.
    assert!(site.ok(&["sync"]).contains("upstream unchanged"));
    let server = site.serve();
    let base = format!("{}/images", server.url);
    let names = read_as_maas(&base, &site.keyring());
    assert!(
        names.contains("io.airlock.custom.stable:rhel-bases:9:amd64"),
        "{names:?}"
    );
    assert_eq!(names.len(), 5);
    let document = signed_document(
        &format!("{base}/streams/v1/io.airlock.custom:stable:rhel-bases-download.sjson"),
        &site.keyring(),
    );
    let product = &document["products"]["io.airlock.custom.stable:rhel-bases:9:amd64"];
    for field in [
        "arch",
        "os",
        "release",
        "release_title",
        "subarch",
        "subarches",
        "version",
        "label",
    ] {
        assert!(product[field].is_string(), "{field} missing: {product}");
    }
    let items = product["versions"][format!("{today}_01")]["items"]
        .as_object()
        .unwrap();
    let keys: Vec<&String> = items.keys().collect();
    assert_eq!(keys, ["manifest", "root-tgz"]);
    let served = curl(&[
        "-fs",
        &format!("{base}/{}", items["root-tgz"]["path"].as_str().unwrap()),
    ]);
    assert_eq!(served.stdout, std::fs::read(&tgz).unwrap());
    let manifest = curl(&[
        "-fs",
        &format!("{base}/{}", items["manifest"]["path"].as_str().unwrap()),
    ]);
    assert!(String::from_utf8_lossy(&manifest.stdout).contains("etc/redhat-release"));

    // Bad input: refused, the stream unchanged.
    let index = || curl(&["-fs", &format!("{base}/streams/v1/index.sjson")]).stdout;
    let before = index();
    let text = site.path().join("not-an-image.tar.gz");
    std::fs::write(&text, "hello\n").unwrap();
    let out = site.run(&[
        "images",
        "add",
        "--os",
        "rhel",
        "--release",
        "8",
        text.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("not-an-image.tar.gz: not a tgz"),
        "{stderr}"
    );
    let out = site.run(&[
        "images",
        "add",
        "--os",
        "ubuntu",
        "--release",
        "noble",
        tgz_arg,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("same os and release"),
        "{stderr}"
    );
    assert_eq!(index(), before);
    assert!(!site.ok(&["images", "list"]).contains("ubuntu-bases"));

    // A dd image cannot go into a stream MAAS 3.8 reads: the upload command instead.
    let out = site.ok(&[
        "images",
        "add",
        "--os",
        "rhel",
        "--release",
        "9-dd",
        "--filetype",
        "ddxz",
        tgz_arg,
    ]);
    assert!(
        out.contains("maas $PROFILE boot-resources create name=rhel/9-dd title='rhel 9-dd' architecture=amd64/generic filetype=ddxz content@=/"),
        "{out}"
    );

    // The commands for the MAAS region.
    let out = site.ok(&["maas", "boot-source"]);
    assert!(
        out.contains("boot-sources create url=") && out.contains("/images/ keyring_filename="),
        "{out}"
    );
    assert!(
        out.contains("boot-source-selections create SOURCE_ID os=ubuntu release=noble arches=amd64 subarches='*' labels='*'"),
        "{out}"
    );

    let root_tgz = format!("{base}/{}", items["root-tgz"]["path"].as_str().unwrap());
    let out = site.ok(&["images", "remove", "--os", "rhel", "--release", "9"]);
    assert!(
        out.contains("removed io.airlock.custom.stable:rhel-bases:9:amd64"),
        "{out}"
    );
    assert_eq!(read_as_maas(&base, &site.keyring()).len(), 4);
    // No longer listed, but still there for the grace period: a MAAS import that read the
    // previous documents finishes.
    assert_eq!(
        curl(&["-fs", &root_tgz]).stdout,
        std::fs::read(&tgz).unwrap()
    );

    // gc past a grace period of 1 s keeps everything the stream and the custom images name.
    site.set_grace("1s");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    site.ok(&["gc"]);
    let out = site.ok(&["verify", "--offline"]);
    assert!(out.contains("all checks passed"), "{out}");
    assert_eq!(read_as_maas(&base, &site.keyring()).len(), 4);
}

/// `mode = "verbatim"`: the upstream's signed documents byte for byte (clients keep the
/// upstream's key) and every file they list; a selection that would leave some out is refused
/// with the list.
#[test]
fn verbatim_stream_keeps_the_upstream_signature_and_every_file() {
    let stream = Stream::new();
    let upstream = Upstream::serve(stream.path());
    let config = format!(
        "[images]\nmode = \"verbatim\"\nurl = \"{}/\"\nkeyring = \"{}\"\n",
        upstream.url,
        stream.keyring.display()
    );
    let site = Site::new(
        "ed25519",
        &format!("{config}\n[[images.select]]\nos = \"ubuntu\"\nrelease = \"noble\"\n"),
    );
    let out = site.run(&["sync"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("a verbatim stream serves the upstream's documents, which list")
            && stderr.contains("jammy/amd64/20250101/squashfs"),
        "{stderr}"
    );

    std::fs::write(
        site.config(),
        std::fs::read_to_string(site.config()).unwrap().replace(
            "[[images.select]]\nos = \"ubuntu\"\nrelease = \"noble\"\n",
            "",
        ),
    )
    .unwrap();
    let out = site.ok(&["sync"]);
    assert!(
        out.contains("images: published 10 products (2 bootloaders)"),
        "{out}"
    );
    let server = site.serve();
    let base = format!("{}/images", server.url);
    for path in [
        "streams/v1/index.sjson",
        &format!("streams/v1/{UBUNTU}.sjson"),
    ] {
        assert_eq!(
            curl(&["-fs", &format!("{base}/{path}")]).stdout,
            std::fs::read(stream.path().join(path)).unwrap(),
            "{path} byte for byte"
        );
    }
    // Checked with the upstream's key, every version of every product there.
    assert_eq!(read_versions_as_maas(&base, &stream.keyring, 2).len(), 10);
    let out = site.run(&["images", "add", "--os", "rhel", "--release", "9", "x.tgz"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("custom images need mode = \"curated\""));

    // verify passes; then the keyring MAAS is given turns armored: that one check fails.
    site.ok(&["verify", "--url", &server.url]);
    let armored = site.path().join("upstream.asc");
    let out = std::process::Command::new("gpg")
        .args(["--batch", "--enarmor", "-o"])
        .arg(&armored)
        .arg(&stream.keyring)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let config = std::fs::read_to_string(site.config()).unwrap();
    std::fs::write(
        site.config(),
        config.replace(
            &stream.keyring.display().to_string(),
            &armored.display().to_string(),
        ),
    )
    .unwrap();
    let out = site.run(&["verify", "--url", &server.url]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("FAILED ")).collect();
    assert_eq!(
        failed,
        [format!("FAILED images: {}", armored.display())],
        "{text}"
    );
    assert!(text.contains("gpg --dearmor"), "{text}");
}
