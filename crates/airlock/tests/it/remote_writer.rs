//! Writers that push by themselves ([storage] kind = "s3"): `publish`, `images add` ... go on
//! to the bucket (Garage on loopback) after their local publish, and frontends follow without
//! an `airlock push`; a writer killed in the middle of its upload leaves the frontends serving
//! the previous push, and its next run finishes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airlock_core::remote;
use airlock_core::storage::Sha256;
use airlock_core::storage::bucket::Bucket;

use crate::common::garage::Garage;
use crate::common::site::local_repo;
use crate::common::throttle::Throttle;
use crate::common::{AIRLOCK, Apt, Server, Site, curl, dpkg_deb};

const PREFIX: &str = "writer/";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A writer site: the local repo, its bucket reached through `endpoint`.
fn writer(garage: &Garage, endpoint: &str) -> Site {
    Site::new(
        "ed25519",
        &format!(
            "{}\n{}",
            local_repo(Some("7d")),
            garage.storage(endpoint, PREFIX, "")
        ),
    )
}

/// A frontend (a config, no data folder) serving what was pushed, looking every second.
fn frontend(garage: &Garage) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\ndata_dir = \"data\"\nlisten = \"127.0.0.1:0\"\nsigning_key = \"airlock.key\"\n\n{}",
            garage.storage(&garage.endpoint, PREFIX, "poll = \"1s\"\n")
        ),
    )
    .unwrap();
    let mut command = Command::new(AIRLOCK);
    command.arg("--config").arg(&config).arg("serve");
    let server = Server::start(command, false);
    (dir, server)
}

/// The body of `url` when it answers 200.
fn get(url: &str) -> Option<Vec<u8>> {
    let out = curl(&["-f", url]);
    out.status.success().then_some(out.stdout)
}

/// Waits until `url` answers `expected` (a frontend looks for a new push every second).
fn wait_for(url: &str, expected: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(url).as_deref() != Some(expected) {
        assert!(Instant::now() < deadline, "{url} does not serve the push");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The generation the bucket's pointer names.
fn generation(bucket: &Bucket) -> u64 {
    let (published, _) = runtime()
        .block_on(remote::read_pointer(bucket))
        .unwrap()
        .expect("a pointer");
    published.generation
}

/// A .deb of `size` bytes of noise, stored uncompressed: its upload takes a while through a
/// slow link.
fn noisy_deb(dir: &Path, name: &str, size: usize) -> PathBuf {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.path().join("usr/share").join(name)).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(root.path().join("usr/share").join(name).join("noise"), noise).unwrap();
    std::fs::write(
        root.path().join("DEBIAN/control"),
        format!("Package: {name}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: Test <test@example.invalid>\nDescription: noise\n"),
    )
    .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let out = dir.join(format!("{name}_1.0_amd64.deb"));
    crate::common::build_deb(root.path(), &out, "none");
    out
}

#[test]
fn a_writer_killed_mid_upload_leaves_the_previous_push_served_and_its_next_run_finishes() {
    let garage = Garage::start();
    let bucket = Bucket::open(&garage.settings(PREFIX)).unwrap();
    // The writer reaches the bucket through a link of 4 MiB/s: its 24 MiB package takes six
    // seconds to go up.
    let link = Throttle::start(&garage.endpoint, 4 << 20);
    let site = writer(&garage, &link.url);
    let work = tempfile::tempdir().unwrap();
    let hello = dpkg_deb(&work.path().join("debs"), "hello", "1.0", "amd64", "", "xz");
    site.include("stable", "main", &hello);
    let out = site.ok(&["publish"]);
    assert!(out.contains("generation 1 published"), "{out}");

    let (_front, server) = frontend(&garage);
    let in_release_url = format!("{}/apt/local/dists/stable/InRelease", server.url);
    let in_release = site.public("local").join("dists/stable/InRelease");
    let first = std::fs::read(&in_release).unwrap();
    wait_for(&in_release_url, &first);

    // A second publish with a large package, killed (SIGKILL) once its upload is under way:
    // 2 MiB of it have gone through the link, and the writer still runs.
    let large = noisy_deb(&work.path().join("debs"), "large", 24 << 20);
    site.include("stable", "main", &large);
    let before = link.sent();
    let mut killed = Command::new(AIRLOCK)
        .arg("--config")
        .arg(site.config())
        .arg("publish")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while link.sent() < before + (2 << 20) {
        assert!(
            killed.try_wait().unwrap().is_none(),
            "the writer ended before its upload was under way"
        );
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    killed.kill().unwrap();
    let status = killed.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    // Published here, not in the bucket: the pointer is the first push's, the large package is
    // not there, and the killed writer's claim stays behind.
    let second = std::fs::read(&in_release).unwrap();
    assert_ne!(second, first);
    assert_eq!(generation(&bucket), 1);
    let large_sha = Sha256::of_file(&large).unwrap().to_hex();
    assert!(
        runtime()
            .block_on(bucket.head(&remote::blob_key(&large_sha)))
            .unwrap()
            .is_none()
    );
    let claims = runtime().block_on(bucket.list("lease/")).unwrap();
    assert_eq!(claims.len(), 1, "{claims:?}");

    // The frontend serves the first push whole: apt updates with every check (dates on) and
    // fetches the old package; the new one is not there yet.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(get(&in_release_url).unwrap(), first);
    let line = format!(
        "deb [signed-by={}] {}/apt/local stable main",
        site.keyring().display(),
        server.url
    );
    let apt = Apt::new(&line, "amd64");
    apt.ok(&["update"]);
    apt.ok(&["download", "hello"]);
    let (found, out) = apt.run(&["download", "large"]);
    assert!(!found, "{out}");

    // The next run finishes at once: the killed writer's claim is removed (its process no
    // longer runs here; its time to live, a minute, has not passed), the rest goes up and the
    // pointer moves on.
    link.open_up();
    let out = site.run(&["publish"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("no longer runs on this machine"),
        "{stderr}"
    );
    assert!(stdout.contains("generation 2 published"), "{stdout}");
    assert_eq!(generation(&bucket), 2);
    assert!(
        runtime()
            .block_on(bucket.list("lease/"))
            .unwrap()
            .is_empty()
    );
    wait_for(&in_release_url, &second);
    apt.ok(&["update"]);
    apt.ok(&["download", "large"]);
    assert_eq!(
        apt.downloaded("large_1.0_amd64.deb"),
        std::fs::read(&large).unwrap()
    );
}
