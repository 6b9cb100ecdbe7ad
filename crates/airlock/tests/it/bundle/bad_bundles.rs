//! Every kind of bad bundle is refused by name and leaves B exactly as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_core::openpgp::SiteKey;
use airlock_core::storage::Sha256;
use serde_json::Value;

use super::tar::{
    TarEntry, insert_before, octal, position, read_tar, rename, seal, ustar, write_tar,
};
use super::{
    export, fingerprint, import, manifest, manifest_gpgv, random_deb, served_packages, sha256_file,
    trusting,
};
use crate::common::Site;
use crate::common::site::LOCAL;

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

/// Waits for the wall clock's next second (bundle ids and creation times count seconds).
fn next_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    std::thread::sleep(Duration::from_nanos(
        1_000_000_000 - u64::from(now.subsec_nanos()) + 10_000_000,
    ));
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

/// `key`'s public keyring, written beside the bundle (outside it).
fn key_keyring(key: &SiteKey, bundle: &Path) -> PathBuf {
    let path = bundle.with_extension("gpg");
    std::fs::write(&path, key.public_binary()).unwrap();
    path
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
