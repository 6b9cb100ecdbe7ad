//! Inputs that must be refused before they cost anything: devices and FIFOs given as .debs, a
//! control member beyond the limit, and other bytes for a pool file clients may still fetch.

use std::process::Command;

use crate::common::site::local_repo;
use crate::common::{AIRLOCK, Site, dpkg_deb};

fn site() -> Site {
    Site::new("ed25519", &local_repo(None))
}

/// `airlock apt include local stable main PATH`, bounded in time: a command that would copy a
/// device forever fails the test instead of hanging it.
fn include_within(site: &Site, path: &str, seconds: u32) -> (bool, String) {
    let out = Command::new("timeout")
        .arg(seconds.to_string())
        .arg(AIRLOCK)
        .arg("--config")
        .arg(site.config())
        .args(["apt", "include", "local", "stable", "main", path])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn include_refuses_devices_and_fifos_before_reading_them() {
    let site = site();
    let (ok, said) = include_within(&site, "/dev/zero", 20);
    assert!(
        !ok && said.contains("/dev/zero") && said.contains("a device"),
        "{said}"
    );
    let fifo = site.path().join("pipe.deb");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let (ok, said) = include_within(&site, fifo.to_str().unwrap(), 20);
    assert!(
        !ok && said.contains("pipe.deb") && said.contains("a FIFO"),
        "{said}"
    );
    // Nothing was staged.
    let tmp = site.path().join("data/store/tmp");
    let staged = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
    assert_eq!(staged, 0, "files left in {}", tmp.display());
}

#[test]
fn a_control_member_beyond_the_limit_is_named() {
    let site = site();
    // An ar archive whose control.tar declares 200 MB: a sparse file, so the bytes are there
    // without taking the disk.
    let path = site.path().join("huge_1.0_amd64.deb");
    let size: u64 = 200 << 20;
    let mut bytes = b"!<arch>\n".to_vec();
    bytes.extend(
        format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            "debian-binary", 0, 0, 0, 100644, 4
        )
        .bytes(),
    );
    bytes.extend(b"2.0\n");
    bytes.extend(
        format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            "control.tar.xz", 0, 0, 0, 100644, size
        )
        .bytes(),
    );
    let file = std::fs::File::create(&path).unwrap();
    use std::io::Write;
    (&file).write_all(&bytes).unwrap();
    file.set_len(bytes.len() as u64 + size).unwrap();
    let (ok, said) = include_within(&site, path.to_str().unwrap(), 60);
    assert!(
        !ok && said.contains("huge_1.0_amd64.deb") && said.contains("64 MiB"),
        "{said}"
    );
}

#[test]
fn other_bytes_for_a_pool_file_still_served_are_refused() {
    let site = site();
    site.set_grace("1h");
    let work = tempfile::tempdir().unwrap();
    let first = dpkg_deb(&work.path().join("a"), "hello", "1.0", "amd64", "", "xz");
    site.include("stable", "main", &first);
    site.ok(&["publish"]);
    site.ok(&["apt", "remove", "local", "stable", "hello"]);
    site.ok(&["publish"]);
    // The same version rebuilt: other bytes under the pool path a client with the index from
    // before the remove still fetches.
    let rebuilt = dpkg_deb(
        &work.path().join("b"),
        "hello",
        "1.0",
        "amd64",
        "Section: misc\n",
        "xz",
    );
    assert_ne!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&rebuilt).unwrap()
    );
    let out = site.run(&[
        "apt",
        "include",
        "local",
        "stable",
        "main",
        rebuilt.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("pool/main/h/hello/hello_1.0_amd64.deb")
            && said.contains("until ")
            && said.contains("grace"),
        "{said}"
    );
    let served = site
        .public("local")
        .join("pool/main/h/hello/hello_1.0_amd64.deb");
    assert_eq!(
        std::fs::read(served).unwrap(),
        std::fs::read(&first).unwrap()
    );
    // The same bytes again are welcome.
    site.include("stable", "main", &first);
}

#[test]
fn files_given_by_the_operator_are_read_within_named_limits() {
    // A signing key that is a device: named at once, not read until memory runs out.
    let site = site();
    let config = std::fs::read_to_string(site.config()).unwrap();
    std::fs::write(
        site.config(),
        config.replace(
            "signing_key = \"airlock.key\"",
            "signing_key = \"/dev/zero\"",
        ),
    )
    .unwrap();
    let out = Command::new("timeout")
        .args(["20", AIRLOCK, "--config"])
        .arg(site.config())
        .arg("publish")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("/dev/zero is a device, not a regular file"),
        "{said}"
    );

    // A 1 GB manifest.json (sparse): refused by its size before a byte is read, in little
    // memory.
    let bundle = site.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let manifest = std::fs::File::create(bundle.join("manifest.json")).unwrap();
    manifest.set_len(1 << 30).unwrap();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", AIRLOCK, "bundle", "inspect"])
        .arg(&bundle)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(
            "manifest.json is larger than 256 MiB, the most airlock reads for a bundle manifest"
        ),
        "{said}"
    );
    let peak_kib: u64 = said.lines().last().unwrap().trim().parse().unwrap();
    assert!(peak_kib < 64 * 1024, "bundle inspect took {peak_kib} KiB");
}
