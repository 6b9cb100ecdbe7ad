//! airlock carries itself across the gap (issue 16 item 3): each bundle holds a copy of the
//! exporting airlock, listed in the signed manifest. The operator checks it with gpgv and
//! sha256sum alone (the commands of docs/bundles.md, run here as written); import checks it
//! like every other file, refuses an altered copy by name and keeps a good one in
//! `data/carried/`; inspect and import say when it is newer than the airlock running.

use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_core::apt::deb::DebBuilder;

use super::{export, export_carrying, manifest, sha256_file, trusting};
use crate::common::site::local_repo;
use crate::common::{AIRLOCK, Site, dpkg_deb};

/// docs/bundles.md's check of the carried airlock, where no airlock is installed yet.
const CHECK: &str = r#"gpgv --keyring "$KEYRING" manifest.json.asc manifest.json &&
sed -n 's/^ *"sha256sum": "\(.*\)",\{0,1\}$/\1/p' manifest.json | sha256sum -c -"#;

/// The documented check run in `bundle` with the exporter's public key: success and output.
fn operator_check(bundle: &Path, keyring: &Path) -> (bool, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(CHECK)
        .current_dir(bundle)
        .env("KEYRING", keyring)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn published_site(work: &Path) -> Site {
    let a = Site::new("ed25519", &local_repo(Some("7d")));
    let hello = dpkg_deb(&work.join("debs"), "hello", "1.0", "amd64", "", "xz");
    a.include("stable", "main", &hello);
    a.ok(&["publish"]);
    a
}

/// A .deb of package airlock at `version` (`EPOCH:UPSTREAM-REVISION`), in `dir`.
fn airlock_deb(dir: &Path, version: &str) -> PathBuf {
    let deb = DebBuilder::new(format!(
        "Package: airlock\nVersion: {version}\nArchitecture: amd64\nMaintainer: T <t@example.invalid>\nDescription: a newer airlock\n",
    ))
    .file("usr/bin/airlock", b"#!/bin/sh\n".to_vec())
    .build()
    .unwrap();
    let file = version.split_once(':').map_or(version, |(_, v)| v);
    let path = dir.join(format!("airlock_{file}_amd64.deb"));
    std::fs::write(&path, deb).unwrap();
    path
}

fn flip_byte(path: &Path, at: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(at)).unwrap();
    file.read_exact(&mut byte).unwrap();
    file.seek(SeekFrom::Start(at)).unwrap();
    file.write_all(&[byte[0] ^ 0x01]).unwrap();
}

#[test]
fn the_carried_airlock_is_checked_by_gpgv_sha256sum_and_import() {
    let work = tempfile::tempdir().unwrap();
    let a = published_site(work.path());
    let bundle = work.path().join("bundle");
    export_carrying(&a, &bundle, &[]);
    let out = a.ok(&[
        "export",
        "--to",
        work.path().join("again").to_str().unwrap(),
    ]);
    assert!(
        out.contains("carries airlock ") && out.contains("this binary ("),
        "the export does not say which airlock it carried: {out}"
    );
    let m = manifest(&bundle);
    let carried = &m["airlock"];
    let file = carried["file"].as_str().unwrap();
    assert_eq!(carried["kind"], "binary");
    assert_eq!(carried["version"], env!("CARGO_PKG_VERSION"));
    let copy = bundle.join(file);
    assert_eq!(sha256_file(&copy), sha256_file(Path::new(AIRLOCK)));
    assert_eq!(carried["sha256"], sha256_file(&copy));
    assert_eq!(carried["size"], std::fs::metadata(&copy).unwrap().len());

    // Where no airlock runs yet: gpgv and sha256sum, as docs/bundles.md gives them.
    let (ok, said) = operator_check(&bundle, &a.keyring());
    assert!(ok && said.contains(&format!("{file}: OK")), "{said}");
    // Another site's key does not vouch for it.
    let other = Site::new("ed25519", "");
    let (ok, said) = operator_check(&bundle, &other.keyring());
    assert!(!ok, "gpgv accepted another key: {said}");

    // One byte changed in the copy: sha256sum and import both refuse it, by name.
    let size = std::fs::metadata(&copy).unwrap().len();
    flip_byte(&copy, size / 2);
    let (ok, said) = operator_check(&bundle, &a.keyring());
    assert!(!ok && said.contains(&format!("{file}: FAILED")), "{said}");
    let b = Site::new(
        "ed25519",
        &format!("{}{}", local_repo(Some("7d")), trusting(&a)),
    );
    b.ok(&["publish"]);
    let before = b.snapshot();
    let out = b.run(&["import", bundle.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "an altered airlock copy was imported"
    );
    assert!(
        stderr.contains(&copy.display().to_string())
            && stderr.contains("does not match the signed manifest")
            && stderr.contains("hint:"),
        "{stderr}"
    );
    assert_eq!(b.snapshot(), before, "a refused import changed the site");

    // Mended, it is imported and kept where the operator finds it.
    flip_byte(&copy, size / 2);
    let out = b.ok(&["import", bundle.to_str().unwrap()]);
    let kept = b.path().join("data/carried").join(file);
    assert!(
        out.contains(&format!("kept in {}", kept.display())),
        "{out}"
    );
    assert_eq!(sha256_file(&kept), sha256_file(Path::new(AIRLOCK)));
    // The same version as the one running: nothing to announce.
    assert!(!out.contains("newer"), "{out}");
}

#[test]
fn a_newer_airlock_deb_is_announced_and_old_bundles_still_import() {
    let work = tempfile::tempdir().unwrap();
    let a = published_site(work.path());
    let deb_path = airlock_deb(work.path(), "1:99.0-1");

    // Named in the config; --airlock-deb says the same for one run (below).
    a.add_config(&format!(
        "\n[export]\nairlock_deb = \"{}\"\n",
        deb_path.display()
    ));
    let bundle = work.path().join("bundle");
    export_carrying(&a, &bundle, &[]);
    let carried = &manifest(&bundle)["airlock"];
    assert_eq!(carried["kind"], "deb");
    assert_eq!(carried["file"], "airlock_99.0-1_amd64.deb");
    assert_eq!(carried["version"], "99.0");
    assert_eq!(carried["package_version"], "1:99.0-1");
    assert_eq!(
        sha256_file(&bundle.join("airlock_99.0-1_amd64.deb")),
        sha256_file(&deb_path)
    );
    let out = a.ok(&["bundle", "inspect", bundle.to_str().unwrap()]);
    assert!(
        out.contains("carries airlock 99.0")
            && out.contains(&format!(
                "newer than this one ({})",
                env!("CARGO_PKG_VERSION")
            )),
        "{out}"
    );
    let b = Site::new(
        "ed25519",
        &format!("{}{}", local_repo(Some("7d")), trusting(&a)),
    );
    let out = b.run(&["import", bundle.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: the bundle carries airlock 99.0, newer than this one")
            && stderr.contains(
                &b.path()
                    .join("data/carried/airlock_99.0-1_amd64.deb")
                    .display()
                    .to_string()
            ),
        "{stderr}"
    );

    // A volume set copied without the copy imports all the same, saying so.
    std::fs::remove_file(bundle.join("airlock_99.0-1_amd64.deb")).unwrap();
    let d = Site::new(
        "ed25519",
        &format!("{}{}", local_repo(Some("7d")), trusting(&a)),
    );
    let out = d.run(&["import", bundle.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("airlock_99.0-1_amd64.deb, which is not in"),
        "{stderr}"
    );
    assert!(!d.path().join("data/carried").exists());

    // Another package given as airlock's .deb is refused by name, before anything is written.
    let hello = dpkg_deb(&work.path().join("debs"), "hello", "1.0", "amd64", "", "xz");
    let refused = work.path().join("refused");
    let out = a.run(&[
        "export",
        "--to",
        refused.to_str().unwrap(),
        "--airlock-deb",
        hello.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains(&hello.display().to_string())
            && stderr.contains("not airlock"),
        "{stderr}"
    );
    assert!(!refused.join("manifest.json").exists());

    // Without a copy the manifest is as bundles were before (no "airlock" key), and imports.
    let plain = work.path().join("plain");
    a.ok(&["publish"]);
    export(&a, &plain, &[]);
    assert!(manifest(&plain).get("airlock").is_none());
    let out = a.ok(&["bundle", "inspect", plain.to_str().unwrap()]);
    assert!(out.contains("carries no airlock"), "{out}");
    let c = Site::new(
        "ed25519",
        &format!("{}{}", local_repo(Some("7d")), trusting(&a)),
    );
    c.ok(&["import", plain.to_str().unwrap()]);
    assert!(!c.path().join("data/carried").exists());
}

#[test]
fn an_incremental_bundle_does_not_repeat_an_unchanged_airlock() {
    let work = tempfile::tempdir().unwrap();
    let a = published_site(work.path());
    let deb = airlock_deb(work.path(), "1:99.0-1");
    let deb = deb.to_str().unwrap();
    let trusting_a = format!("{}{}", local_repo(Some("7d")), trusting(&a));
    let folder = |name: &str| work.path().join(name);
    let listing = |bundle: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(bundle)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };

    // Full: the copy is beside the volumes.
    let full = folder("full");
    let full_id = export_carrying(&a, &full, &["--airlock-deb", deb]);
    let first = manifest(&full)["airlock"].clone();
    assert!(first.get("carried_in").is_none(), "{first}");
    assert!(full.join("airlock_99.0-1_amd64.deb").is_file());

    // Incremental, the same .deb: listed with the bundle that holds it, not repeated.
    let hello2 = dpkg_deb(&folder("debs"), "hello", "2.0", "amd64", "", "xz");
    a.include("stable", "main", &hello2);
    a.ok(&["publish"]);
    let next = folder("next");
    let out = a.ok(&[
        "export",
        "--to",
        next.to_str().unwrap(),
        "--since",
        full.to_str().unwrap(),
        "--airlock-deb",
        deb,
    ]);
    assert!(
        out.contains(&format!(
            "the same bytes as bundle {full_id} carried: not repeated"
        )),
        "{out}"
    );
    let m = manifest(&next);
    let listed = &m["airlock"];
    assert_eq!(listed["carried_in"], full_id.as_str());
    for field in [
        "file",
        "kind",
        "version",
        "package_version",
        "sha256",
        "size",
        "sha256sum",
    ] {
        assert_eq!(listed[field], first[field], "{field}");
    }
    assert!(
        listing(&next)
            .iter()
            .all(|n| n.starts_with("volume-") || n.starts_with("manifest.json")),
        "{:?}",
        listing(&next)
    );
    let copy_sha = listed["sha256"].as_str().unwrap();
    for volume in m["volumes"].as_array().unwrap() {
        let path = next.join(volume["name"].as_str().unwrap());
        let tar = Command::new("tar").arg("-tf").arg(&path).output().unwrap();
        let names = String::from_utf8_lossy(&tar.stdout);
        assert!(tar.status.success() && names.contains("blobs/"), "{names}");
        assert!(
            !names.contains(copy_sha),
            "the volume carries the copy: {names}"
        );
    }
    assert!(
        m["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["sha256"] != copy_sha)
    );

    // inspect still names the airlock, and where its file is.
    let out = a.ok(&["bundle", "inspect", next.to_str().unwrap()]);
    assert!(
        out.contains("carries airlock 99.0 (airlock_99.0-1_amd64.deb, ")
            && out.contains(&format!("not repeated, the file is in bundle {full_id}"))
            && out.contains("airlock_99.0-1_amd64.deb from bundle"),
        "{out}"
    );
    let inspected: serde_json::Value =
        serde_json::from_str(&a.ok(&["bundle", "inspect", "--json", next.to_str().unwrap()]))
            .unwrap();
    assert_eq!(inspected["airlock"]["carried_in"], full_id.as_str());
    assert_eq!(inspected["airlock"]["sha256"], first["sha256"]);
    assert_eq!(inspected["airlock_newer"], true);

    // A site that imported the full bundle has the copy: import reports it from there.
    let b = Site::new("ed25519", &trusting_a);
    b.ok(&["import", full.to_str().unwrap()]);
    let kept = b.path().join("data/carried/airlock_99.0-1_amd64.deb");
    let imported: serde_json::Value =
        serde_json::from_str(&b.ok(&["import", "--json", next.to_str().unwrap()])).unwrap();
    assert_eq!(imported["airlock"]["path"], kept.to_str().unwrap());
    assert_eq!(imported["airlock"]["version"], "99.0");
    assert_eq!(imported["airlock"]["newer_than_running"], true);
    assert_eq!(sha256_file(&kept), copy_sha);

    // One that did not keep it (the full bundle's folder came without the file) imports all
    // the same, saying where the file is.
    std::fs::remove_file(full.join("airlock_99.0-1_amd64.deb")).unwrap();
    let c = Site::new("ed25519", &trusting_a);
    c.ok(&["import", full.to_str().unwrap()]);
    let out = c.run(&["import", next.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success()
            && stderr.contains(&format!("carried in the earlier bundle {full_id}"))
            && stderr.contains("imported without it"),
        "{stderr}"
    );
    assert!(!c.path().join("data/carried").exists());

    // Another .deb: carried again, in the new bundle's folder.
    let newer = airlock_deb(work.path(), "1:99.1-1");
    let changed = folder("changed");
    export_carrying(
        &a,
        &changed,
        &[
            "--since",
            next.to_str().unwrap(),
            "--airlock-deb",
            newer.to_str().unwrap(),
        ],
    );
    let carried = &manifest(&changed)["airlock"];
    assert!(carried.get("carried_in").is_none(), "{carried}");
    assert_eq!(carried["version"], "99.1");
    assert_eq!(
        sha256_file(&changed.join("airlock_99.1-1_amd64.deb")),
        sha256_file(&newer)
    );
    let out = b.ok(&["import", changed.to_str().unwrap()]);
    assert!(out.contains("airlock 99.1 kept in"), "{out}");
}
