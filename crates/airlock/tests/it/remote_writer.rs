//! Writers that push by themselves ([storage] kind = "s3"): `publish`, `images add` ... go on
//! to the bucket (Garage on loopback) after their local publish, and frontends follow without
//! an `airlock push`; a writer killed in the middle of its upload leaves the frontends serving
//! the previous push, and its next run finishes.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airlock_core::remote;
use airlock_core::storage::Sha256;
use airlock_core::storage::bucket::Bucket;

use crate::common::garage::{Garage, pointer, runtime};
use crate::common::site::local_repo;
use crate::common::throttle::Throttle;
use crate::common::{AIRLOCK, Apt, Site, dpkg_deb, get, wait_for};

const PREFIX: &str = "writer/";

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

    let (_front, server) = garage.start_frontend(PREFIX, "1s");
    let in_release_url = format!("{}/apt/local/dists/stable/InRelease", server.url);
    let in_release = site.public("local").join("dists/stable/InRelease");
    let first = std::fs::read(&in_release).unwrap();
    wait_for(&in_release_url, &first);

    // A second publish with a large package, killed (SIGKILL) once its upload is under way:
    // 2 MiB of it have gone through the link, and the writer still runs.
    let large = crate::common::noise_deb(
        &work.path().join("debs"),
        "large",
        24 << 20,
        0x9e37_79b9_7f4a_7c15,
    );
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
    assert_eq!(pointer(&bucket).generation, 1);
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
    assert_eq!(get(&in_release_url, &[]), (200, first.clone()));
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
    assert_eq!(pointer(&bucket).generation, 2);
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

#[test]
fn writers_push_by_themselves_and_frontends_follow() {
    let garage = Garage::start();
    let bucket = Bucket::open(&garage.settings(PREFIX)).unwrap();
    let site = writer(&garage, &garage.endpoint);
    let (_front, server) = garage.start_frontend(PREFIX, "1s");
    let url = |path: &str| format!("{}{path}", server.url);
    let work = tempfile::tempdir().unwrap();

    // publish: the repo, then the bucket; the frontend follows with no `airlock push`.
    let hello = dpkg_deb(&work.path().join("debs"), "hello", "1.0", "amd64", "", "xz");
    site.include("stable", "main", &hello);
    let out = site.ok(&["publish"]);
    assert!(
        out.contains("local/stable: published")
            && out.contains("s3://airlock/writer/ at ")
            && out.contains("generation 1 published"),
        "{out}"
    );
    let in_release = site.public("local").join("dists/stable/InRelease");
    wait_for(
        &url("/apt/local/dists/stable/InRelease"),
        &std::fs::read(&in_release).unwrap(),
    );

    // images add: the image stream goes up with the repo as it was.
    let tgz = crate::common::rhel_tgz(work.path());
    let out = site.add_rhel_image("9", &tgz);
    assert!(
        out.contains("published in the image stream") && out.contains("generation 2 published"),
        "{out}"
    );
    let index = site
        .path()
        .join("data/public/images/streams/v1/index.sjson");
    wait_for(
        &url("/images/streams/v1/index.sjson"),
        &std::fs::read(&index).unwrap(),
    );
    assert_eq!(
        get(&url("/apt/local/dists/stable/InRelease"), &[]),
        (200, std::fs::read(&in_release).unwrap())
    );
    // Quiet on success, as every command.
    let out = site.run(&["-q", "publish"]);
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");

    // A push that fails after a good local publish (the bucket refuses a wrong secret) says
    // that the publish stands and the bucket serves the previous push, and exits 1.
    let config = std::fs::read_to_string(site.config()).unwrap();
    let wrong = work.path().join("wrong-secret");
    std::fs::write(&wrong, "not-the-secret-0123456789").unwrap();
    let line = config
        .lines()
        .find(|l| l.starts_with("secret_key_file"))
        .unwrap();
    std::fs::write(
        site.config(),
        config.replace(line, &format!("secret_key_file = \"{}\"", wrong.display())),
    )
    .unwrap();
    let world = dpkg_deb(&work.path().join("debs"), "world", "1.0", "amd64", "", "xz");
    site.include("stable", "main", &world);
    let served = std::fs::read(&in_release).unwrap();
    let out = site.run(&["publish"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("local/stable: published"), "{stdout}");
    assert!(
        stderr.contains("published here, but not pushed: s3://airlock/writer/")
            && stderr.contains("still serves its previous push")
            && stderr.contains("`airlock push` (or the next run of this command) finishes it")
            && stderr.contains("hint:"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-secret"), "{stderr}");
    let published = std::fs::read(&in_release).unwrap();
    assert_ne!(published, served);
    assert_eq!(pointer(&bucket).generation, 2);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        get(&url("/apt/local/dists/stable/InRelease"), &[]),
        (200, served)
    );

    // With the secret right again, the next run finishes: nothing left to publish here, the
    // bucket switched.
    std::fs::write(site.config(), &config).unwrap();
    let out = site.ok(&["publish"]);
    assert!(
        out.contains("local: nothing changed") && out.contains("generation 3 published"),
        "{out}"
    );
    wait_for(&url("/apt/local/dists/stable/InRelease"), &published);
}
