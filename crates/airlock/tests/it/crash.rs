//! SIGKILL at any moment: `apt include` and `publish` killed at increasing delays leave a
//! served tree that is whole and signed (gpgv, every index and pool file with its listed
//! digest), a state file that parses, a store whose blobs match their names; the next run
//! finishes the job.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{AIRLOCK, Site, assert_store_sound, assert_suite_whole};
use airlock_core::apt::deb::DebBuilder;

const REPO: &str = r#"
[[apt.repo]]
name = "local"
suites = ["stable", "testing"]
components = ["main"]
architectures = ["amd64", "arm64"]
valid_for = "2d"
"#;

/// Writes `count` packages named `prefix-N`, version `version`.
fn packages(dir: &Path, prefix: &str, version: u32, count: u32) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        let control = format!(
            "Package: {prefix}-{i}\nVersion: {version}\nArchitecture: {}\nMaintainer: T <t@example.invalid>\nDescription: crash test\n {}\n",
            if i % 3 == 0 { "all" } else { "amd64" },
            "x".repeat(200)
        );
        let deb = DebBuilder::new(control)
            .file("usr/share/doc/x", vec![i as u8; 2000])
            .build()
            .unwrap();
        std::fs::write(dir.join(format!("{prefix}-{i}_{version}.deb")), deb).unwrap();
    }
}

/// Runs airlock and kills it with SIGKILL after `delay` (if it is still running).
fn killed(site: &Site, args: &[&str], delay: Duration) -> bool {
    let mut child = Command::new(AIRLOCK)
        .arg("--config")
        .arg(site.config())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let was_running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    was_running
}

/// The served tree of `repo` is whole: signed Release files, every listed index with its
/// digest and its by-hash copy, every pool file with its digest.
fn assert_served_tree_whole(site: &Site, repo: &str) {
    for suite in ["stable", "testing"] {
        let dists = site.public(repo).join("dists").join(suite);
        for (path, digest) in assert_suite_whole(site, repo, suite).indices {
            let by_hash = dists
                .join(Path::new(&path).parent().unwrap())
                .join("by-hash/SHA256")
                .join(digest);
            assert!(by_hash.is_file(), "{suite}/{path} by-hash");
        }
    }
}

fn listed(site: &Site) -> usize {
    serde_json::from_str::<Vec<serde_json::Value>>(&site.ok(&["apt", "list", "local", "--json"]))
        .unwrap()
        .len()
}

#[test]
fn sigkill_during_include_and_publish_leaves_a_whole_site() {
    let site = Site::new("ed25519", REPO);
    packages(&site.path().join("v1"), "pkg", 1, 150);
    site.include("stable", "main", &site.path().join("v1"));
    site.ok(&["publish"]);
    assert_served_tree_whole(&site, "local");

    let mut interrupted = 0;
    for round in 1..=12u32 {
        // An include killed part way is all or nothing.
        let dir = site.path().join(format!("v{}", round + 1));
        packages(&dir, &format!("round{round}"), 1, 40);
        let before = listed(&site);
        let delay = Duration::from_millis(5 * u64::from(round));
        if killed(
            &site,
            &[
                "apt",
                "include",
                "local",
                "testing",
                "main",
                dir.to_str().unwrap(),
            ],
            delay,
        ) {
            interrupted += 1;
        }
        let after = listed(&site);
        assert!(
            after == before || after == before + 40,
            "round {round}: {before} then {after} packages"
        );
        assert_store_sound(&site);
        site.include("testing", "main", &dir);

        // A publish killed part way leaves the previous tree served, whole.
        if killed(
            &site,
            &["publish"],
            Duration::from_millis(10 * u64::from(round)),
        ) {
            interrupted += 1;
        }
        assert_served_tree_whole(&site, "local");
        assert_store_sound(&site);
    }
    // The kills did land while work was under way, not only after it finished.
    eprintln!("{interrupted} of 24 runs were interrupted");
    assert!(interrupted >= 6, "only {interrupted} runs were interrupted");

    // The next run finishes the job.
    let out = site.ok(&["publish"]);
    assert!(
        out.contains("local/testing: published (480 packages")
            || out.contains("local/testing: unchanged (480 packages"),
        "{out}"
    );
    assert_served_tree_whole(&site, "local");
    let trees = std::fs::read_dir(site.path().join("data/trees/apt/local")).unwrap();
    let names: Vec<String> = trees
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        3,
        "one tree, its manifest and the shared pool remain: {names:?}"
    );
}
