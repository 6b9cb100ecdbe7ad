//! Site A exports every kind of content, site B imports and serves it; a change on A travels
//! as a small incremental bundle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use airlock_core::storage::Sha256;
use serde_json::Value;
use sha2::Digest;
use sha3::Sha3_384;

use super::{export, fingerprint, import, manifest, manifest_gpgv, sha256_file, trusting};
use crate::common::site::{GA, WholeSite, whole_site};
use crate::common::snaps::SNAP_ID;
use crate::common::stream::signed_document;
use crate::common::upstream::pkg;
use crate::common::{Apt, Site, curl, gpgv, store_blobs, sync_history};

const HWE: &str = "com.ubuntu.maas.stable:v3:boot:24.04:amd64:hwe-24.04";
const UEFI: &str = "com.ubuntu.maas.stable:1:grub-efi-signed:uefi:amd64";
const PXE: &str = "com.ubuntu.maas.stable:1:pxelinux:pxe:i386";

fn sources(site: &Site, url: &str) -> String {
    format!(
        "deb [signed-by={0}] {url}/apt/local stable main\ndeb [signed-by={0}] {url}/apt/mirror stable main",
        site.keyring().display()
    )
}

#[test]
fn site_b_serves_what_site_a_exported() {
    // Site A: every kind of content.
    let WholeSite {
        work,
        archive,
        archive_upstream,
        stream,
        stream_upstream,
        config,
        hello,
        snap,
        site: a,
    } = whole_site("");

    let bundle = work.path().join("bundle");
    let id = export(&a, &bundle, &[]);
    let first = manifest(&bundle);
    assert_eq!(first["format"], 1);
    assert!(first["base"].is_null(), "{first}");
    assert_eq!(
        first["exporter"]["fingerprint"]
            .as_str()
            .unwrap()
            .to_uppercase(),
        fingerprint(&a).to_uppercase()
    );
    assert_eq!(
        labels(&first),
        ["apt/local", "apt/mirror", "images", "snaps"]
            .map(String::from)
            .into_iter()
            .collect::<BTreeSet<_>>()
    );
    // The signature is an ordinary detached OpenPGP one: gpgv checks it with A's public key.
    let (ok, text) = manifest_gpgv(&bundle, &a.keyring());
    assert!(ok, "gpgv: {text}");
    // Volumes hold regular files named blobs/<sha256>, mode 0444, exactly the blobs the
    // manifest places in them; every file of every content is there (a full bundle).
    assert_volumes_as_listed(&bundle);
    let listed: BTreeSet<String> = blob_names(&first);
    for hex in [&sha256_file(&hello), &sha256_file(&snap)] {
        assert!(listed.contains(hex.as_str()), "{hex} not in the bundle");
    }
    assert!(
        first["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["volume"].is_string())
    );

    // Site B: the same content sections, its own key, trusting A's; it never asks the upstreams.
    let b = Site::new("ed25519", &format!("{config}{}", trusting(&a)));
    std::fs::copy(a.path().join("root.assert"), b.path().join("root.assert")).unwrap();
    archive_upstream.take_requests();
    stream_upstream.take_requests();
    import(&b, &bundle);
    let server = b.serve();

    // apt-get, checking B's signature (and Valid-Until), fetches from the repo and the mirror.
    let apt = Apt::new(&sources(&b, &server.url), "amd64");
    apt.ok(&["update"]);
    apt.ok(&["download", "hello", "app"]);
    assert_eq!(
        apt.downloaded("hello_1.0_amd64.deb"),
        std::fs::read(&hello).unwrap()
    );
    assert_eq!(
        apt.downloaded("app_1.0_amd64.deb"),
        std::fs::read(archive.path().join("pool/stable/main/app_1.0_amd64.deb")).unwrap()
    );
    // Re-signed by B: B's fingerprint in Signed-By, A's key no longer verifies.
    for repo in ["local", "mirror"] {
        let dists = b.public(repo).join("dists/stable");
        let release = std::fs::read_to_string(dists.join("Release")).unwrap();
        assert!(
            release.contains(&format!("Signed-By: {}", fingerprint(&b))),
            "{repo}: {release}"
        );
        assert!(!release.contains(&fingerprint(&a)), "{repo}: {release}");
        let (with_a, _) = gpgv(&a.keyring(), &[&dists.join("InRelease")]);
        assert!(!with_a, "{repo}: InRelease still A's");
    }

    // The image stream, read as MAAS reads it, signed by B.
    let images = format!("{}/images", server.url);
    let served = read_stream(&images, &b.keyring());
    let expected: BTreeMap<String, BTreeSet<String>> = [
        (GA, "20250201"),
        (HWE, "20250201"),
        (UEFI, "20250201.0"),
        (PXE, "20250201.0"),
    ]
    .into_iter()
    .map(|(p, v)| (p.to_string(), BTreeSet::from([v.to_string()])))
    .collect();
    assert_eq!(served, expected);

    // The snap store, asked as snapd asks.
    assert_snap_served(&server.url, &snap, 1);

    // B never reached A's upstreams, and its data folder checks out.
    assert_eq!(archive_upstream.take_requests(), Vec::<String>::new());
    assert_eq!(stream_upstream.take_requests(), Vec::<String>::new());
    let out = b.ok(&["verify", "--offline"]);
    assert!(out.contains("all checks passed"), "{out}");

    // A change on A: a new version of a mirrored package, a new image serial.
    archive.add(&pkg(
        "stable",
        "main",
        "app",
        "1.1",
        "amd64",
        "Depends: libfoo\n",
    ));
    let kernel = b"a newer kernel, carried by an incremental bundle\n".repeat(300);
    let kernel_path = "noble/amd64/20250301/ga-24.04/generic/boot-kernel";
    std::fs::create_dir_all(stream.path().join(kernel_path).parent().unwrap()).unwrap();
    std::fs::write(stream.path().join(kernel_path), &kernel).unwrap();
    stream.edit_ubuntu(|doc| {
        let product = &mut doc["products"][GA];
        let mut version = product["versions"]["20250201"].clone();
        let item = &mut version["items"]["boot-kernel"];
        item["path"] = kernel_path.into();
        item["size"] = kernel.len().into();
        item["sha256"] = Sha256::of(&kernel).to_hex().into();
        product["versions"]["20250301"] = version;
    });
    let stored = store_blobs(&a);
    let out = a.ok(&["sync"]);
    assert!(
        out.contains("mirror: published") && out.contains("images: published"),
        "{out}"
    );
    // Each source's update is on record with what it added to the store.
    let updates: Vec<(String, String, u64)> = sync_history(&a)
        .into_iter()
        .filter(|(_, kind, _)| kind == "update")
        .collect();
    assert_eq!(
        updates.iter().map(|u| u.0.as_str()).collect::<Vec<_>>(),
        ["apt/mirror", "images"]
    );
    let added: u64 = store_blobs(&a)
        .iter()
        .filter(|(name, _)| !stored.contains_key(*name))
        .map(|(_, size)| size)
        .sum();
    assert_eq!(updates.iter().map(|u| u.2).sum::<u64>(), added);
    assert!(updates[1].2 > kernel.len() as u64, "{updates:?}");
    let bundle2 = work.path().join("bundle2");
    let since = bundle.join("manifest.json");
    let id2 = export(&a, &bundle2, &["--since", since.to_str().unwrap()]);
    let second = manifest(&bundle2);
    assert_eq!(second["base"]["id"], id.as_str());
    assert_eq!(
        second["base"]["sha256"],
        sha256_file(&since).as_str(),
        "the base is named by its manifest's digest"
    );
    assert_volumes_as_listed(&bundle2);
    // Only what the first bundle lacked travels: blobs it listed are referenced, not carried.
    for blob in second["blobs"].as_array().unwrap() {
        let hex = blob["sha256"].as_str().unwrap();
        assert_eq!(
            blob["volume"].is_null(),
            listed.contains(hex),
            "{hex}: carried again, or left out"
        );
    }
    let carried: BTreeSet<String> = second["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["volume"].is_string())
        .map(|b| b["sha256"].as_str().unwrap().to_string())
        .collect();
    let app11 = archive.path().join("pool/stable/main/app_1.1_amd64.deb");
    assert!(
        carried.contains(&sha256_file(&app11)),
        "app 1.1 not carried"
    );
    assert!(
        carried.contains(&Sha256::of(&kernel).to_hex()),
        "the new kernel is not carried"
    );
    // The full bundle is mostly images: 9 files of 60-75 KB, about 0.8 MB of volumes. The change
    // is one 15 KB kernel, one 1 KB .deb, and the indices, documents and tree manifests that
    // name them (about 54 KB in all when this was written): under an eighth of the full
    // bundle with room to spare, while one that carried the images again would be near its size.
    let (full, incremental) = (volume_bytes(&bundle), volume_bytes(&bundle2));
    eprintln!("full bundle {full} bytes, incremental {incremental} bytes");
    assert!(
        incremental * 8 < full,
        "incremental {incremental} bytes is not small next to full {full} bytes"
    );

    // Inspect reads the manifest: each content, the base, each volume.
    let out = b.ok(&["bundle", "inspect", bundle2.to_str().unwrap()]);
    let a_fingerprint = fingerprint(&a);
    for needle in [
        "apt/local",
        "apt/mirror",
        "images",
        "snaps",
        &id2,
        &id,
        &a_fingerprint,
    ] {
        assert!(out.contains(needle), "inspect lacks {needle:?}:\n{out}");
    }
    for volume in second["volumes"].as_array().unwrap() {
        let name = volume["name"].as_str().unwrap();
        assert!(
            out.lines()
                .any(|l| l.contains(name) && l.contains("present")),
            "inspect lacks {name} present:\n{out}"
        );
    }

    // B imports the change and serves it, the server running throughout, possibly within
    // the second apt last fetched the InRelease (Last-Modified rounds up, and a file of the
    // current second has none, so apt's If-Modified-Since still sees the change).
    archive_upstream.take_requests();
    stream_upstream.take_requests();
    import(&b, &bundle2);
    apt.ok(&["update"]);
    apt.ok(&["download", "app"]);
    assert_eq!(
        apt.downloaded("app_1.1_amd64.deb"),
        std::fs::read(&app11).unwrap()
    );
    std::fs::remove_file(apt.dir.path().join("download/hello_1.0_amd64.deb")).unwrap();
    apt.ok(&["download", "hello"]);
    assert_eq!(
        apt.downloaded("hello_1.0_amd64.deb"),
        std::fs::read(&hello).unwrap()
    );
    let served = read_stream(&images, &b.keyring());
    assert_eq!(served[GA], BTreeSet::from(["20250301".to_string()]));
    assert_eq!(served[HWE], BTreeSet::from(["20250201".to_string()]));
    let kernel_url = format!("{images}/{kernel_path}");
    assert_eq!(curl(&["-fs", &kernel_url]).stdout, kernel);
    assert_snap_served(&server.url, &snap, 1);
    assert_eq!(archive_upstream.take_requests(), Vec::<String>::new());
    assert_eq!(stream_upstream.take_requests(), Vec::<String>::new());
    let out = b.ok(&["verify", "--offline"]);
    assert!(out.contains("all checks passed"), "{out}");
    // What each import added to B's store, recorded for verify's room estimate: every blob
    // each bundle carried (the incremental's are all new to B).
    assert_eq!(
        sync_history(&b),
        [
            ("import".into(), "first".into(), carried_bytes(&bundle)),
            ("import".into(), "update".into(), carried_bytes(&bundle2)),
        ]
    );

    // gc with a grace period of 1 s, past it: on both sides, every kind of content (repo,
    // mirror, stream with custom images, snaps) keeps every file it needs.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for site in [&a, &b] {
        site.set_grace("1s");
        let out = site.ok(&["gc"]);
        assert!(out.starts_with("removed "), "{out}");
        let out = site.ok(&["verify", "--offline"]);
        assert!(out.contains("all checks passed"), "{out}");
    }
    apt.ok(&["update"]);
    apt.ok(&["download", "app"]);
    assert_eq!(
        read_stream(&images, &b.keyring())[GA],
        BTreeSet::from(["20250301".to_string()])
    );
    assert_snap_served(&server.url, &snap, 1);
}

/// The bytes of the blobs a bundle's volumes carry (not those its base had).
fn carried_bytes(bundle: &Path) -> u64 {
    manifest(bundle)["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| !b["volume"].is_null())
        .map(|b| b["size"].as_u64().unwrap())
        .sum()
}

/// `apt/NAME`, `images`, `snaps`: the contents a manifest lists.
fn labels(manifest: &Value) -> BTreeSet<String> {
    manifest["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| match c["area"].as_str().unwrap() {
            "apt" => format!("apt/{}", c["name"].as_str().unwrap()),
            area => area.to_string(),
        })
        .collect()
}

fn blob_names(manifest: &Value) -> BTreeSet<String> {
    manifest["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["sha256"].as_str().unwrap().to_string())
        .collect()
}

/// The volumes' bytes, as the manifest declares them (and as they are on disk).
fn volume_bytes(bundle: &Path) -> u64 {
    let mut total = 0;
    for volume in manifest(bundle)["volumes"].as_array().unwrap() {
        let name = volume["name"].as_str().unwrap();
        let size = volume["size"].as_u64().unwrap();
        assert_eq!(
            std::fs::metadata(bundle.join(name)).unwrap().len(),
            size,
            "{name}"
        );
        total += size;
    }
    total
}

/// GNU tar lists, in each volume, regular files `blobs/<sha256>` of mode 0444: the blobs the
/// manifest places there, each once.
fn assert_volumes_as_listed(bundle: &Path) {
    let manifest = manifest(bundle);
    for volume in manifest["volumes"].as_array().unwrap() {
        let name = volume["name"].as_str().unwrap();
        let path = bundle.join(name);
        let out = Command::new("tar").arg("-tvf").arg(&path).output().unwrap();
        assert!(out.status.success(), "tar -tvf {name}");
        let listing = String::from_utf8(out.stdout).unwrap();
        let mut entries = Vec::new();
        for line in listing.lines() {
            assert!(line.starts_with("-r--r--r-- "), "{name}: {line}");
            entries.push(line.split_whitespace().last().unwrap().to_string());
        }
        let out = Command::new("tar").arg("-tf").arg(&path).output().unwrap();
        let names: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(names, entries, "{name}");
        for entry in &names {
            let hex = entry
                .strip_prefix("blobs/")
                .unwrap_or_else(|| panic!("{name}: {entry}"));
            assert!(
                hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{name}: {entry}"
            );
        }
        let listed: BTreeSet<String> = manifest["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["volume"] == name)
            .map(|b| format!("blobs/{}", b["sha256"].as_str().unwrap()))
            .collect();
        let unique: BTreeSet<String> = names.iter().cloned().collect();
        assert_eq!(unique.len(), names.len(), "{name}: an entry twice");
        assert_eq!(unique, listed, "{name}");
        assert_eq!(
            volume["blobs"].as_u64().unwrap(),
            names.len() as u64,
            "{name}"
        );
    }
}

/// Reads a served stream as MAAS does: the index and every products document, signatures
/// checked with `keyring`, then every item with its size and SHA-256. Returns each product's
/// versions.
fn read_stream(base: &str, keyring: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let index = signed_document(&format!("{base}/streams/v1/index.sjson"), keyring);
    assert_eq!(index["format"], "index:1.0");
    let mut products = BTreeMap::new();
    for (content_id, entry) in index["index"].as_object().unwrap() {
        let path = entry["path"].as_str().unwrap();
        let document = signed_document(&format!("{base}/{path}"), keyring);
        assert_eq!(&document["content_id"], content_id);
        for (name, product) in document["products"].as_object().unwrap() {
            let mut versions = BTreeSet::new();
            for (version, content) in product["versions"].as_object().unwrap() {
                versions.insert(version.clone());
                for item in content["items"].as_object().unwrap().values() {
                    let url = format!("{base}/{}", item["path"].as_str().unwrap());
                    let out = curl(&["-fs", &url]);
                    assert!(out.status.success(), "GET {url}");
                    assert_eq!(
                        out.stdout.len() as u64,
                        item["size"].as_u64().unwrap(),
                        "{url}"
                    );
                    assert_eq!(
                        Sha256::of(&out.stdout).to_hex(),
                        item["sha256"].as_str().unwrap(),
                        "{url}"
                    );
                }
            }
            products.insert(name.clone(), versions);
        }
    }
    products
}

/// The store API answers for hello-airlock as snapd asks (device headers), and the download it
/// advertises is `snap`, byte for byte, with the advertised SHA3-384 and size.
fn assert_snap_served(base: &str, snap: &Path, revision: u64) {
    let out = curl(&[
        "-s",
        "-w",
        "\n%{http_code}",
        "-H",
        "Snap-Device-Series: 16",
        "-H",
        "Snap-Device-Architecture: amd64",
        "-H",
        "Snap-Classic: true",
        "-H",
        "Accept: application/json",
        "-H",
        "User-Agent: snapd/2.66",
        &format!("{base}/v2/snaps/info/hello-airlock?fields=download,revision,version"),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    assert_eq!(code, "200", "{body}");
    let info: Value = serde_json::from_str(body).unwrap();
    assert_eq!(info["snap-id"], SNAP_ID, "{info}");
    let stable = info["channel-map"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"]["name"] == "latest/stable")
        .unwrap_or_else(|| panic!("no latest/stable: {info}"));
    assert_eq!(stable["revision"], revision, "{stable}");
    let download = &stable["download"];
    let blob = curl(&["-fs", download["url"].as_str().unwrap()]).stdout;
    assert_eq!(blob, std::fs::read(snap).unwrap());
    assert_eq!(
        hex::encode(Sha3_384::digest(&blob)),
        download["sha3-384"].as_str().unwrap()
    );
    assert_eq!(blob.len() as u64, download["size"].as_u64().unwrap());
}
