//! Bundles across the air gap (issue 8). Site A, on the connected side, exports what it
//! publishes (a local repo, a filtered mirror, a curated image stream, a snap) as a signed
//! bundle; site B, which never reaches A's upstreams, imports it and serves the same to apt-get,
//! a MAAS-like stream reader and the snap store API, signed with B's own key. A change on A
//! travels as a small incremental bundle. Every kind of bad bundle is refused by name and
//! leaves B exactly as it was; an import killed with SIGKILL leaves B's previous state served
//! whole, and the next run reuses what the killed ones staged.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use airlock_core::apt::deb::{Compression, DebBuilder};
use airlock_core::openpgp::SiteKey;
use airlock_core::storage::Sha256;
use common::site::{GA, LOCAL, WholeSite, whole_site};
use common::snaps::SNAP_ID;
use common::stream::signed_document;
use common::upstream::{Archive, Upstream, pkg};
use common::{
    AIRLOCK, Apt, Site, assert_store_sound, assert_suite_whole, curl, gpgv, store_blobs,
    sync_history, write_aged,
};
use serde_json::Value;
use sha2::Digest;
use sha3::Sha3_384;

const HWE: &str = "com.ubuntu.maas.stable:v3:boot:24.04:amd64:hwe-24.04";
const UEFI: &str = "com.ubuntu.maas.stable:1:grub-efi-signed:uefi:amd64";
const PXE: &str = "com.ubuntu.maas.stable:1:pxelinux:pxe:i386";

// ---------------------------------------------------------------------------------------------
// Site A exports, site B imports and serves.
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Bad bundles.
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_bundles_leave_site_b_unchanged() {
    let work = tempfile::tempdir().unwrap();
    let debs = work.path().join("debs");
    let a = Site::new("ed25519", LOCAL);
    for name in ["alpha", "beta"] {
        a.include("stable", "main", &random_deb(&debs, name, "1.0", 10_000));
    }
    a.ok(&["publish"]);
    let first = work.path().join("first");
    let first_id = export(&a, &first, &[]);

    // The good bundle the bad ones are made from: two new packages of 600 KB, in volumes of
    // 1 MiB (the smallest --split takes), so at least two. A bundle older than an imported one
    // is refused, and `created` counts seconds.
    let gamma = random_deb(&debs, "gamma", "1.0", 600_000);
    let delta = random_deb(&debs, "delta", "1.0", 600_000);
    a.include("stable", "main", &gamma);
    a.include("stable", "main", &delta);
    a.ok(&["publish"]);
    next_second();
    let good = work.path().join("good");
    let good_id = export(&a, &good, &["--split", "1M"]);
    let good_manifest = manifest(&good);
    assert!(
        good_manifest["volumes"].as_array().unwrap().len() >= 2,
        "{good_manifest}"
    );
    // An incremental bundle on top of it.
    a.include(
        "stable",
        "main",
        &random_deb(&debs, "epsilon", "1.0", 1_000),
    );
    a.ok(&["publish"]);
    let incremental = work.path().join("incremental");
    let since = good.join("manifest.json");
    export(&a, &incremental, &["--since", since.to_str().unwrap()]);
    // A third site, which B does not trust.
    let c = Site::new("ed25519", LOCAL);
    c.include("stable", "main", &debs.join("alpha_1.0_amd64.deb"));
    c.ok(&["publish"]);
    let untrusted = work.path().join("untrusted");
    export(&c, &untrusted, &[]);

    // B has imported the first bundle: each bad one must leave that state exactly.
    let fresh_b = || {
        let b = Site::new("ed25519", &format!("{LOCAL}{}", trusting(&a)));
        import(&b, &first);
        b
    };
    let old_packages: BTreeSet<String> = ["alpha 1.0", "beta 1.0"].map(String::from).into();
    let refused = |what: &str, bundle: &Path, needles: &[&str]| {
        let b = fresh_b();
        assert_eq!(served_packages(&b, "local"), Some(old_packages.clone()));
        let before = snapshot(&b);
        let out = b.run(&["import", bundle.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{what}: imported\n{}{stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        for needle in needles {
            assert!(
                stderr.to_lowercase().contains(&needle.to_lowercase()),
                "{what}: {needle:?} missing from:\n{stderr}"
            );
        }
        let changed = changes(&before, &snapshot(&b));
        assert!(changed.is_empty(), "{what}: B changed: {changed:?}");
        eprintln!("{what}: {}", stderr.trim());
    };
    let copy = |name: &str| copy_bundle(&good, &work.path().join(name));
    let key = SiteKey::load(&a.path().join("airlock.key")).unwrap();

    // The blob every volume case aims at: gamma's .deb, which B lacks (blobs B has are skipped
    // unread), and the volume holding it.
    let target = sha256_file(&gamma);
    let volume = volume_of(&good_manifest, &target);
    let entry = format!("blobs/{target}");
    // Another blob of the bundle, for the hard link to point at.
    let other = format!("blobs/{}", sha256_file(&delta));

    // Signed by a key B does not trust: the error names the key.
    let c_fingerprint = manifest(&untrusted)["exporter"]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(c_fingerprint.to_uppercase(), fingerprint(&c).to_uppercase());
    refused("unknown key", &untrusted, &[&c_fingerprint]);

    // The manifest changed after signing: one digit of its creation time.
    let altered = copy("altered");
    let text = std::fs::read_to_string(altered.join("manifest.json")).unwrap();
    let created = good_manifest["created"].as_str().unwrap();
    let at = text.find(created).unwrap() + created.len() - 2;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(altered.join("manifest.json"), bytes).unwrap();
    let a_fingerprint = fingerprint(&a);
    refused(
        "altered manifest",
        &altered,
        &["manifest.json", &a_fingerprint],
    );

    // A newer format, properly signed by A.
    let newer = copy("newer");
    let mut value = manifest(&newer);
    value["format"] = 2.into();
    write_signed_manifest(&newer, &value, &key);
    refused("format 2", &newer, &["newer"]);

    // An incremental bundle whose base B never imported: the error names the base.
    refused("missing base", &incremental, &[&good_id]);

    // A missing volume that holds blobs B lacks: the error names it.
    let missing = copy("missing");
    std::fs::remove_file(missing.join(&volume)).unwrap();
    refused("missing volume", &missing, &[&volume]);

    // Bad entries in the volume holding the target blob, one kind per copy. Crafted entries go
    // in before the real one, so that an importer skipping them would find every blob and
    // succeed.
    let dotdot = format!("blobs/../{target}");
    let absolute = format!("/blobs/{target}");
    let stray_bytes = b"a blob no manifest lists\n".to_vec();
    let stray = format!("blobs/{}", Sha256::of(&stray_bytes).to_hex());
    type Edit<'e> = Box<dyn Fn(&mut Vec<TarEntry>) + 'e>;
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        (
            "'..' in a path",
            Box::new(|e| rename(e, &entry, &dotdot)),
            vec![&volume, &dotdot],
        ),
        (
            "absolute path",
            Box::new(|e| rename(e, &entry, &absolute)),
            vec![&volume, &absolute],
        ),
        (
            "symlink",
            Box::new(|e| insert_before(e, &entry, ustar(&entry, b'2', "/etc/passwd", 0))),
            vec![&volume, &entry],
        ),
        (
            "hard link",
            Box::new(|e| insert_before(e, &entry, ustar(&entry, b'1', &other, 0))),
            vec![&volume, &entry],
        ),
        (
            "character device",
            Box::new(|e| {
                let mut header = ustar(&entry, b'3', "", 0);
                octal(&mut header[329..337], 1);
                octal(&mut header[337..345], 3);
                seal(&mut header);
                insert_before(e, &entry, header);
            }),
            vec![&volume, &entry],
        ),
        (
            // A reader that follows GNU long names reads their data into memory first: this
            // one claims 1 GiB (and has none). Refused as an entry, before any of it is read.
            "GNU long name of 1 GiB",
            Box::new(|e| insert_before(e, &entry, ustar("././@LongLink", b'L', "", 1 << 30))),
            vec![&volume, "@LongLink"],
        ),
        (
            "duplicate entry",
            Box::new(|e| {
                let i = position(e, &entry);
                let copy = e[i].clone();
                e.insert(i + 1, copy);
            }),
            vec![&volume, &entry],
        ),
        (
            "size in the header larger than the manifest's",
            Box::new(|e| {
                let i = position(e, &entry);
                e[i].data.extend_from_slice(&[0u8; 100]);
                let size = e[i].data.len() as u64;
                octal(&mut e[i].header[124..136], size);
                seal(&mut e[i].header);
            }),
            vec![&volume, &entry],
        ),
        (
            "an entry the manifest does not list",
            Box::new(|e| {
                let header = ustar(&stray, b'0', "", stray_bytes.len() as u64);
                insert_before(e, &entry, header);
                let i = position(e, &stray);
                e[i].data = stray_bytes.clone();
            }),
            vec![&volume, &stray],
        ),
        (
            "content that is not its name's (one byte flipped)",
            Box::new(|e| {
                let i = position(e, &entry);
                let middle = e[i].data.len() / 2;
                e[i].data[middle] ^= 0x55;
            }),
            vec![&volume, &entry],
        ),
    ];
    for (n, (what, edit, needles)) in cases.iter().enumerate() {
        let bad = copy(&format!("entry-{n}"));
        rewrite_volume(&bad, &volume, &key, |entries| edit(entries));
        refused(what, &bad, needles);
    }

    // A volume cut short in the middle of the target blob.
    let truncated = copy("truncated");
    let path = truncated.join(&volume);
    let (entries, _) = read_tar(&std::fs::read(&path).unwrap());
    let cut = {
        let target = &entries[position(&entries, &entry)];
        target.offset + target.data.len() as u64 / 2
    };
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut)
        .unwrap();
    refused("truncated volume", &truncated, &[&volume, &entry]);

    // The untouched bundle imports, then the incremental one on top of it; an older bundle from
    // the same site is refused afterwards (it would roll the repo back).
    let b = fresh_b();
    import(&b, &good);
    import(&b, &incremental);
    let all: BTreeSet<String> = ["alpha", "beta", "gamma", "delta", "epsilon"]
        .map(|n| format!("{n} 1.0"))
        .into();
    assert_eq!(served_packages(&b, "local"), Some(all));
    let before = snapshot(&b);
    let out = b.run(&["import", first.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(&first_id),
        "an older bundle ({first_id}) was imported over a newer one:\n{stderr}"
    );
    let changed = changes(&before, &snapshot(&b));
    assert!(changed.is_empty(), "older bundle: B changed: {changed:?}");
}

// ---------------------------------------------------------------------------------------------
// SIGKILL during an import.
// ---------------------------------------------------------------------------------------------

#[test]
fn import_killed_with_sigkill_completes_on_rerun() {
    let work = tempfile::tempdir().unwrap();
    let debs = work.path().join("debs");
    let a = Site::new("ed25519", LOCAL);
    a.include("stable", "main", &random_deb(&debs, "seed", "1.0", 1_000));
    a.ok(&["publish"]);
    let first = work.path().join("first");
    export(&a, &first, &[]);
    let b = Site::new("ed25519", &format!("{LOCAL}{}", trusting(&a)));
    import(&b, &first);
    let old = served_packages(&b, "local").unwrap();
    assert_eq!(old, BTreeSet::from(["seed 1.0".to_string()]));

    // 40 MiB of incompressible packages, in volumes of 4 MiB, on top of the first bundle.
    let big = work.path().join("big");
    for i in 0..40 {
        random_deb(&big, &format!("big-{i}"), "1.0", 1 << 20);
    }
    a.ok(&[
        "apt",
        "include",
        "local",
        "stable",
        "main",
        big.to_str().unwrap(),
    ]);
    a.ok(&["publish"]);
    let second = work.path().join("second");
    let since = first.join("manifest.json");
    export(
        &a,
        &second,
        &["--since", since.to_str().unwrap(), "--split", "4M"],
    );
    let manifest = manifest(&second);
    assert!(
        manifest["volumes"].as_array().unwrap().len() >= 10,
        "{}",
        manifest["volumes"]
    );
    let mut new = old.clone();
    new.extend((0..40).map(|i| format!("big-{i} 1.0")));
    let total = manifest["blobs"].as_array().unwrap().len() as u64;
    let present_at_start = present(&b, &manifest);

    // Killed at increasing delays until a run gets to the end by itself.
    let mut delay = Duration::from_millis(10);
    let mut interrupted = 0;
    let (output, present_before) = loop {
        let present_before = present(&b, &manifest);
        let log = work.path().join(format!("import-{interrupted}.out"));
        let mut child = Command::new(AIRLOCK)
            .arg("--config")
            .arg(b.config())
            .args(["import", second.to_str().unwrap()])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.signal() != Some(9) {
            assert!(status.success(), "import failed: {status}");
            break (std::fs::read_to_string(&log).unwrap(), present_before);
        }
        interrupted += 1;
        // Nothing half-published: the old tree whole, or the new one whole.
        let served = served_packages(&b, "local").expect("local stays published");
        assert!(
            served == old || served == new,
            "after a kill at {delay:?}: {served:?}"
        );
        assert!(interrupted < 30, "the import never finished");
        delay = delay * 3 / 2;
    };
    eprintln!(
        "{interrupted} runs killed; the last started with {present_before} of {total} blobs here ({present_at_start} before the first)"
    );
    assert!(interrupted >= 3, "only {interrupted} runs were killed");
    // What the killed runs staged was kept, and the last run did not read it again.
    assert!(
        present_before > present_at_start,
        "no killed run left a verified blob staged"
    );
    let (new_blobs, here) = imported_counts(&output);
    assert_eq!(
        (new_blobs, here),
        (total - present_before, present_before),
        "{output}"
    );
    assert_eq!(served_packages(&b, "local"), Some(new));
    assert_store_sound(&b);

    // apt-get reads the result.
    let server = b.serve();
    let apt = Apt::new(
        &format!(
            "deb [signed-by={}] {}/apt/local stable main",
            b.keyring().display(),
            server.url
        ),
        "amd64",
    );
    apt.ok(&["update"]);
    apt.ok(&["download", "big-7", "seed"]);
    assert_eq!(
        apt.downloaded("big-7_1.0_amd64.deb"),
        std::fs::read(big.join("big-7_1.0_amd64.deb")).unwrap()
    );
}

/// What an abandoned import staged leaves after two weeks, at the next import; a blob staged
/// recently (a bundle whose other volumes are on their way) stays, and so does an old one the
/// bundle being imported lists (it is used, not read again).
#[test]
fn abandoned_staged_blobs_leave_after_two_weeks() {
    let work = tempfile::tempdir().unwrap();
    let a = Site::new("ed25519", LOCAL);
    let seed = random_deb(&work.path().join("debs"), "seed", "1.0", 1_000);
    a.include("stable", "main", &seed);
    a.ok(&["publish"]);
    let bundle = work.path().join("bundle");
    export(&a, &bundle, &[]);
    let b = Site::new("ed25519", &format!("{LOCAL}{}", trusting(&a)));
    let staged = b.path().join("data/store/import");
    std::fs::create_dir_all(&staged).unwrap();
    let stage = |bytes: &[u8], days: u64| {
        let path = staged.join(Sha256::of(bytes).to_hex());
        write_aged(&path, bytes, Duration::from_secs(days * 86_400));
        path
    };
    let abandoned = stage(b"staged by an import abandoned three weeks ago", 21);
    let recent = stage(b"staged yesterday, the rest of its bundle on its way", 1);
    let listed = stage(&std::fs::read(&seed).unwrap(), 21);
    // `import` checks that the summary counts the staged seed as already here.
    import(&b, &bundle);
    assert!(!abandoned.exists());
    assert!(recent.exists());
    assert!(!listed.exists(), "the listed blob moved into the store");
    assert!(
        b.path()
            .join("data/store/sha256")
            .join(&sha256_file(&seed)[..2])
            .join(sha256_file(&seed))
            .exists()
    );
    assert_eq!(
        served_packages(&b, "local"),
        Some(BTreeSet::from(["seed 1.0".to_string()]))
    );
}

// ---------------------------------------------------------------------------------------------
// An imported mirror between bundles.
// ---------------------------------------------------------------------------------------------

/// On the air-gapped side no sync renews an imported mirror: `airlock publish` signs its
/// Release again once half its validity is gone, so apt keeps working past the Valid-Until
/// it was imported with, until the next bundle comes.
#[test]
fn publish_keeps_an_imported_mirror_valid() {
    let work = tempfile::tempdir().unwrap();
    let archive = Archive::new(
        "ed25519",
        &["stable"],
        &["main"],
        &["amd64"],
        &[pkg("stable", "main", "app", "1.0", "amd64", "")],
    );
    let upstream = Upstream::serve(archive.path());
    // Beside it, a verbatim mirror of the same upstream: its signature is the upstream's,
    // which B cannot renew, so publish leaves it alone.
    let a = Site::new(
        "ed25519",
        &format!(
            "{}{}",
            archive.mirror_config("mirror", &upstream.url, ""),
            archive.mirror_config("verbatim", &upstream.url, "mode = \"verbatim\"")
        ),
    );
    a.ok(&["sync"]);
    let bundle = work.path().join("bundle");
    export(&a, &bundle, &[]);
    // B names the mirror (it never syncs it) with a validity of 12 s: half of it is the time
    // each step below has, on a loaded machine too.
    let period = 12;
    let b = Site::new(
        "ed25519",
        &format!(
            "{}{}",
            archive.mirror_config(
                "mirror",
                "http://192.0.2.1/unused",
                &format!("valid_for = \"{period}s\"")
            ),
            trusting(&a)
        ),
    );
    import(&b, &bundle);
    let release = |b: &Site| {
        let text =
            std::fs::read_to_string(b.public("mirror").join("dists/stable/Release")).unwrap();
        let field = |name: &str| {
            let value = text
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("no {name} in {text}"));
            let time = jiff::fmt::rfc2822::parse(value).unwrap().timestamp();
            time.as_second()
        };
        (field("Date"), field("Valid-Until"))
    };
    let (date, until) = release(&b);
    assert_eq!(until - date, period);

    // Less than half the validity gone: nothing to do.
    let out = b.ok(&["publish"]);
    assert!(
        out.contains("mirror/stable: unchanged (1 packages") && !out.contains("verbatim"),
        "{out}"
    );
    let verbatim = b.snapshot();
    assert_eq!(release(&b), (date, until));
    // A name that is neither a repo nor an imported mirror is refused, naming both kinds.
    let out = b.run(&["publish", "nosuch"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("no repo named \"nosuch\"")
            && stderr.contains("(imported: mirror, verbatim)"),
        "{stderr}"
    );

    // Past half of it: signed again, valid for another period from now.
    sleep_until(date + period / 2 + 1);
    let out = b.ok(&["publish", "mirror"]);
    assert!(
        out.contains("mirror/stable: published (1 packages, valid until"),
        "{out}"
    );
    let (new_date, new_until) = release(&b);
    assert!(
        new_date > date && new_until == new_date + period,
        "{new_date} {new_until}"
    );
    let inrelease = b.public("mirror").join("dists/stable/InRelease");
    let (ok, text) = gpgv(&b.keyring(), &[&inrelease]);
    assert!(ok, "{text}");
    let out = b.ok(&["publish"]);
    assert!(!out.contains("verbatim"), "{out}");
    let verbatim_files = |snapshot: &BTreeMap<String, Vec<u8>>| {
        snapshot
            .iter()
            .filter(|(path, _)| path.contains("/verbatim"))
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect::<Vec<_>>()
    };
    assert!(!verbatim_files(&verbatim).is_empty());
    assert_eq!(verbatim_files(&b.snapshot()), verbatim_files(&verbatim));

    // After the Valid-Until it was imported with, apt (checking it) still updates and installs.
    sleep_until(until + 1);
    let server = b.serve();
    let apt = Apt::new(
        &format!(
            "deb [signed-by={}] {}/apt/mirror stable main",
            b.keyring().display(),
            server.url
        ),
        "amd64",
    );
    apt.ok(&["update"]);
    apt.ok(&["download", "app"]);
}

/// Sleeps until the Unix time `second` has begun.
fn sleep_until(second: i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let target = std::time::Duration::from_secs(second as u64);
    if let Some(wait) = target.checked_sub(now) {
        std::thread::sleep(wait);
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers: sites, bundles, what B serves.
// ---------------------------------------------------------------------------------------------

/// `[import]` trusting `exporter`'s public key.
fn trusting(exporter: &Site) -> String {
    format!(
        "\n[import]\ntrusted_keys = [\"{}\"]\n",
        exporter.keyring().display()
    )
}

fn fingerprint(site: &Site) -> String {
    SiteKey::load(&site.path().join("airlock.key"))
        .unwrap()
        .fingerprint()
}

/// A package holding `size` random bytes (incompressible, stored as is).
fn random_deb(dir: &Path, name: &str, version: &str, size: usize) -> PathBuf {
    let mut noise = vec![0u8; size];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut noise)
        .unwrap();
    let control = format!(
        "Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: T <t@example.invalid>\nDescription: bundle test\n random bytes\n"
    );
    let deb = DebBuilder::new(control)
        .compression(Compression::None)
        .file(&format!("usr/share/{name}/noise"), noise)
        .build()
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{name}_{version}_amd64.deb"));
    std::fs::write(&path, deb).unwrap();
    path
}

fn sha256_file(path: &Path) -> String {
    Sha256::of(&std::fs::read(path).unwrap()).to_hex()
}

/// Waits for the wall clock's next second (bundle ids and creation times count seconds).
fn next_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    std::thread::sleep(Duration::from_nanos(
        1_000_000_000 - u64::from(now.subsec_nanos()) + 10_000_000,
    ));
}

/// `airlock export --to DIR ARGS...`, which must succeed; returns the bundle's id, having
/// checked the summary line against the manifest.
fn export(site: &Site, dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["export", "--to", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = site.ok(&all);
    let manifest = manifest(dir);
    let id = manifest["id"].as_str().unwrap().to_string();
    let volumes = manifest["volumes"].as_array().unwrap().len();
    let last = out.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("bundle {id}: "))
            && last.contains(&format!(" in {volumes} volume")),
        "{out}"
    );
    match manifest["base"]["id"].as_str() {
        None => assert!(last.ends_with(", full"), "{out}"),
        Some(base) => assert!(last.ends_with(&format!(", on top of {base}")), "{out}"),
    }
    id
}

fn manifest(bundle: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap()
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

fn volume_of(manifest: &Value, hex: &str) -> String {
    manifest["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["sha256"] == hex)
        .unwrap_or_else(|| panic!("{hex} is not in the bundle"))["volume"]
        .as_str()
        .unwrap()
        .to_string()
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

/// How many of a bundle's blobs `site` has: in its store, or staged by an earlier import.
fn present(site: &Site, manifest: &Value) -> u64 {
    let store = site.path().join("data/store");
    manifest["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| {
            let hex = b["sha256"].as_str().unwrap();
            store.join("sha256").join(&hex[..2]).join(hex).is_file()
                || store.join("import").join(hex).is_file()
        })
        .count() as u64
}

/// `imported N new blobs (SIZE); M were already here` → (N, M).
fn imported_counts(out: &str) -> (u64, u64) {
    let line = out
        .lines()
        .find(|l| l.starts_with("imported ") && l.contains(" were already here"))
        .unwrap_or_else(|| panic!("no summary line in:\n{out}"));
    let number = |text: &str| -> u64 {
        text.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"))
    };
    (
        number(&line["imported ".len()..]),
        number(line.rsplit("; ").next().unwrap()),
    )
}

/// `airlock import BUNDLE`, which must succeed; its summary must count as new exactly the
/// blobs the site did not have.
fn import(site: &Site, bundle: &Path) -> String {
    let manifest = manifest(bundle);
    let total = manifest["blobs"].as_array().unwrap().len() as u64;
    let here = present(site, &manifest);
    let out = site.ok(&["import", bundle.to_str().unwrap()]);
    assert_eq!(imported_counts(&out), (total - here, here), "{out}");
    out
}

/// What B serves and holds: data/public (symlink targets, and every file reached through
/// them, with its content), data/state (with content) and the blob names in data/store/sha256.
fn snapshot(site: &Site) -> BTreeMap<String, Vec<u8>> {
    let data = site.path().join("data");
    let mut out = BTreeMap::new();
    follow(&data.join("public"), "public", &mut out, 0);
    follow(&data.join("state"), "state", &mut out, 0);
    if let Ok(shards) = std::fs::read_dir(data.join("store/sha256")) {
        for shard in shards {
            for blob in std::fs::read_dir(shard.unwrap().path()).unwrap() {
                let name = blob.unwrap().file_name().to_string_lossy().into_owned();
                out.insert(format!("store/sha256/{name}"), Vec::new());
            }
        }
    }
    out
}

fn follow(path: &Path, name: &str, out: &mut BTreeMap<String, Vec<u8>>, depth: usize) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    let is_dir = if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).unwrap();
        out.insert(
            format!("{name} ->"),
            target.into_os_string().into_encoded_bytes(),
        );
        if !path.exists() || depth > 8 {
            return;
        }
        path.is_dir()
    } else {
        meta.is_dir()
    };
    if is_dir {
        for entry in std::fs::read_dir(path).unwrap() {
            let entry = entry.unwrap();
            let child = format!("{name}/{}", entry.file_name().to_string_lossy());
            follow(&entry.path(), &child, out, depth + 1);
        }
    } else {
        out.insert(name.to_string(), std::fs::read(path).unwrap());
    }
}

/// The keys that differ between two snapshots.
fn changes(before: &BTreeMap<String, Vec<u8>>, after: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| match (before.contains_key(k), after.contains_key(k)) {
            (true, false) => format!("{k} removed"),
            (false, true) => format!("{k} added"),
            _ => format!("{k} changed"),
        })
        .collect()
}

/// The packages `repo` serves ("NAME VERSION"), having checked that each of its signed suites
/// is whole (see `assert_suite_whole`). None when nothing is published under that name.
fn served_packages(site: &Site, repo: &str) -> Option<BTreeSet<String>> {
    let root = site.public(repo);
    std::fs::symlink_metadata(&root).ok()?;
    let mut packages = BTreeSet::new();
    let mut suites = 0;
    for suite in std::fs::read_dir(root.join("dists")).unwrap() {
        let suite = suite.unwrap();
        if !suite.path().join("InRelease").is_file() {
            continue;
        }
        suites += 1;
        let suite = suite.file_name().into_string().unwrap();
        packages.extend(assert_suite_whole(site, repo, &suite).packages);
    }
    assert!(suites > 0, "{repo}: no signed suite");
    Some(packages)
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

// ---------------------------------------------------------------------------------------------
// Helpers: crafted bundles.
// ---------------------------------------------------------------------------------------------

/// A copy of a bundle folder, writable.
fn copy_bundle(from: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        std::fs::copy(entry.path(), &target).unwrap();
        std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
    }
    to.to_path_buf()
}

/// Writes `value` as the bundle's manifest.json and signs it with `key` (as the exporter would).
fn write_signed_manifest(bundle: &Path, value: &Value, key: &SiteKey) {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap();
    bytes.push(b'\n');
    let signature = key.sign_detached(&bytes).unwrap();
    std::fs::write(bundle.join("manifest.json"), &bytes).unwrap();
    std::fs::write(bundle.join("manifest.json.asc"), signature).unwrap();
    let (ok, text) = manifest_gpgv(bundle, &key_keyring(key, bundle));
    assert!(ok, "re-signed manifest: {text}");
}

/// gpgv checks manifest.json against its detached signature manifest.json.asc with `keyring`.
fn manifest_gpgv(bundle: &Path, keyring: &Path) -> (bool, String) {
    gpgv(
        keyring,
        &[
            &bundle.join("manifest.json.asc"),
            &bundle.join("manifest.json"),
        ],
    )
}

/// `key`'s public keyring, written beside the bundle (outside it).
fn key_keyring(key: &SiteKey, bundle: &Path) -> PathBuf {
    let path = bundle.with_extension("gpg");
    std::fs::write(&path, key.public_binary()).unwrap();
    path
}

/// One tar entry: its 512-byte header, its data (unpadded), where the data starts in the file.
#[derive(Clone)]
struct TarEntry {
    header: [u8; 512],
    data: Vec<u8>,
    offset: u64,
}

impl TarEntry {
    fn name(&self) -> String {
        let field = |range: std::ops::Range<usize>| {
            let bytes = &self.header[range];
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            String::from_utf8_lossy(&bytes[..end]).into_owned()
        };
        let name = field(0..100);
        let prefix = field(345..500);
        if &self.header[257..263] == b"ustar\0" && !prefix.is_empty() {
            format!("{prefix}/{name}")
        } else {
            name
        }
    }
}

/// Splits a tar file into its entries and what follows them (the end-of-archive blocks).
fn read_tar(bytes: &[u8]) -> (Vec<TarEntry>, Vec<u8>) {
    let mut entries = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() {
        let header: [u8; 512] = bytes[at..at + 512].try_into().unwrap();
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let size = if header[124] & 0x80 != 0 {
            header[125..136]
                .iter()
                .fold(0u64, |n, &b| (n << 8) | u64::from(b)) as usize
        } else {
            let text = String::from_utf8_lossy(&header[124..136]);
            usize::from_str_radix(text.trim_matches(|c: char| c == '\0' || c == ' '), 8).unwrap()
        };
        let start = at + 512;
        entries.push(TarEntry {
            header,
            data: bytes[start..start + size].to_vec(),
            offset: start as u64,
        });
        at = start + size.div_ceil(512) * 512;
    }
    (entries, bytes[at..].to_vec())
}

fn write_tar(entries: &[TarEntry], trailer: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        out.extend_from_slice(&entry.header);
        out.extend_from_slice(&entry.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(trailer);
    out
}

/// Edits one volume's entries. When its size changes, the manifest is updated to say so and
/// signed again with the exporter's key, so that only the entries are wrong.
fn rewrite_volume(
    bundle: &Path,
    volume: &str,
    key: &SiteKey,
    edit: impl FnOnce(&mut Vec<TarEntry>),
) {
    let path = bundle.join(volume);
    let bytes = std::fs::read(&path).unwrap();
    let (mut entries, trailer) = read_tar(&bytes);
    edit(&mut entries);
    let rewritten = write_tar(&entries, &trailer);
    std::fs::write(&path, &rewritten).unwrap();
    if rewritten.len() != bytes.len() {
        let mut value = manifest(bundle);
        for v in value["volumes"].as_array_mut().unwrap() {
            if v["name"] == volume {
                v["size"] = rewritten.len().into();
            }
        }
        write_signed_manifest(bundle, &value, key);
    }
}

fn position(entries: &[TarEntry], name: &str) -> usize {
    entries
        .iter()
        .position(|e| e.name() == name)
        .unwrap_or_else(|| panic!("no entry {name}"))
}

fn rename(entries: &mut [TarEntry], from: &str, to: &str) {
    let i = position(entries, from);
    let header = &mut entries[i].header;
    header[..100].fill(0);
    header[..to.len()].copy_from_slice(to.as_bytes());
    if &header[257..263] == b"ustar\0" {
        header[345..500].fill(0);
    }
    seal(header);
}

fn insert_before(entries: &mut Vec<TarEntry>, name: &str, header: [u8; 512]) {
    let i = position(entries, name);
    entries.insert(
        i,
        TarEntry {
            header,
            data: Vec::new(),
            offset: 0,
        },
    );
}

/// A POSIX ustar header: `kind` is the type flag ('0' file, '1' hard link, '2' symlink,
/// '3' character device).
fn ustar(name: &str, kind: u8, link: &str, size: u64) -> [u8; 512] {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut header[100..108], 0o444);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], size);
    octal(&mut header[136..148], 1_700_000_000);
    header[156] = kind;
    header[157..157 + link.len()].copy_from_slice(link.as_bytes());
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    seal(&mut header);
    header
}

/// A numeric field: octal digits filling it, then a NUL.
fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(text.as_bytes());
}

/// The header checksum: the sum of its bytes with the checksum field taken as spaces.
fn seal(header: &mut [u8; 512]) {
    header[148..156].fill(b' ');
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}
