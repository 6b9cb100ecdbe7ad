//! `airlock gc` on a site kept in a bucket (Garage on loopback): what no generation a frontend
//! may still serve names leaves, past the grace period; what is in use, or just uploaded, stays.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use airlock_core::remote::{self, Published};
use airlock_core::storage::Manifest;
use airlock_core::storage::bucket::{Bucket, Holder, Lease, LeaseSettings};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

use crate::common::garage::{Garage, keys, pointer, runtime};
use crate::common::site::local_repo;
use crate::common::{Apt, Server, Site, dpkg_deb, wait_for};

const GRACE: Duration = Duration::from_secs(2);

/// The blob keys and the manifest key generation `published` names (its own content only).
fn named(bucket: &Bucket, published: &Published) -> (BTreeSet<String>, String) {
    let id = &published.trees["apt/local"];
    let key = remote::manifest_key("apt/local", id);
    let (bytes, _) = runtime()
        .block_on(bucket.get(&key, 64 << 20))
        .unwrap()
        .unwrap();
    let manifest = Manifest::parse(&String::from_utf8_lossy(&bytes), Path::new(&key)).unwrap();
    let blobs = manifest
        .entries
        .values()
        .map(|e| remote::blob_key(&e.sha256.to_hex()))
        .chain(published.documents.values().map(|s| remote::blob_key(s)))
        .collect();
    (blobs, key)
}

/// Waits until the frontend serves the writer's InRelease.
fn wait_for_in_release(server: &Server, writer: &Site) {
    wait_for(
        &format!("{}/apt/local/dists/stable/InRelease", server.url),
        &std::fs::read(writer.public("local").join("dists/stable/InRelease")).unwrap(),
    );
}

/// Pushes A, B, C (each replacing the last one's package): gc removes what only A named once
/// past the grace period, keeps B's (the previous generation) and C's, and an object a push
/// under way just uploaded; --dry-run removes nothing; a frontend serves C throughout, and
/// one that has not polled since B still serves B.
#[test]
fn gc_removes_what_only_replaced_generations_named_once_past_the_grace() {
    let garage = Garage::start();
    let bucket = Bucket::open(&garage.settings("gc/")).unwrap();
    let writer = Site::new(
        "ed25519",
        &format!(
            "grace = \"{}s\"\n{}\n{}",
            GRACE.as_secs(),
            local_repo(Some("7d")),
            garage.storage_config("gc/", "1s")
        ),
    );
    let debs = writer.path().join("debs");
    let base = dpkg_deb(&debs, "base", "1.0", "amd64", "", "xz");
    let [alpha, beta, gamma] =
        ["alpha", "beta", "gamma"].map(|n| dpkg_deb(&debs, n, "1.0", "amd64", "", "xz"));
    let (_front, server) = garage.start_frontend("gc/", "1s");

    // A: base and alpha (each publish pushes by itself).
    writer.include("stable", "main", &base);
    writer.include("stable", "main", &alpha);
    writer.ok(&["publish"]);
    let gen_a = pointer(&bucket);
    // B: alpha replaced by beta.
    writer.ok(&["apt", "remove", "local", "stable", "alpha"]);
    writer.include("stable", "main", &beta);
    writer.ok(&["publish"]);
    let gen_b = pointer(&bucket);
    // A frontend that reads B and then does not look again for an hour: it serves B while
    // the other has moved on to C, as a frontend between two polls does.
    let (_stale_front, stale) = garage.start_frontend("gc/", "1h");
    wait_for_in_release(&stale, &writer);
    let stale_line = format!(
        "deb [signed-by={}] {}/apt/local stable main",
        writer.keyring().display(),
        stale.url
    );
    // C, past the grace period: beta replaced by gamma.
    std::thread::sleep(GRACE + Duration::from_millis(500));
    writer.ok(&["apt", "remove", "local", "stable", "beta"]);
    writer.include("stable", "main", &gamma);
    writer.ok(&["publish"]);
    let gen_c = pointer(&bucket);
    assert_eq!(gen_c.generation, 3);
    // C lists B as retired (always the previous one); A was replaced longer than the grace
    // period ago.
    let retired: Vec<u64> = gen_c.retired.iter().map(|r| r.generation).collect();
    assert_eq!(retired, [2]);
    assert_eq!(gen_c.retired[0].trees, gen_b.trees);
    wait_for_in_release(&server, &writer);

    let (blobs_a, manifest_a) = named(&bucket, &gen_a);
    let (blobs_b, manifest_b) = named(&bucket, &gen_b);
    let (blobs_c, manifest_c) = named(&bucket, &gen_c);
    let only_a: BTreeSet<String> = blobs_a
        .iter()
        .filter(|k| !blobs_b.contains(*k) && !blobs_c.contains(*k))
        .cloned()
        .collect();
    // A's indices (B lists alpha as retired, for clients holding A's indices).
    assert!(!only_a.is_empty());
    let in_use: BTreeSet<String> = blobs_b.union(&blobs_c).cloned().collect();

    // A push under way: a blob uploaded, not yet named.
    let fresh = b"uploaded by a push that has not switched yet".to_vec();
    let fresh_key = remote::blob_key(&airlock_core::storage::Sha256::of(&fresh).to_hex());
    runtime()
        .block_on(bucket.put(&fresh_key, Bytes::from(fresh)))
        .unwrap();

    // A dry run counts and removes nothing.
    let before = keys(&bucket, "");
    let out = writer.ok(&["gc", "--dry-run", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let bucket_report = &report["bucket"];
    assert_eq!(bucket_report["dry_run"], true, "{report}");
    assert_eq!(bucket_report["generation"], 3, "{report}");
    assert_eq!(bucket_report["generations_kept"], 2, "{report}");
    assert_eq!(bucket_report["removed_blobs"], only_a.len(), "{report}");
    assert_eq!(bucket_report["removed_manifests"], 1, "{report}");
    assert_eq!(bucket_report["young"], 1, "{report}");
    assert!(
        report["removed"].is_number(),
        "the local fields stay: {report}"
    );
    assert_eq!(keys(&bucket, ""), before);

    // The real run, while apt keeps updating against the frontend.
    let stop = Arc::new(AtomicBool::new(false));
    let line = format!(
        "deb [signed-by={}] {}/apt/local stable main",
        writer.keyring().display(),
        server.url
    );
    let updating = {
        let (stop, line) = (stop.clone(), line.clone());
        std::thread::spawn(move || {
            let apt = Apt::new(&line, "amd64");
            let mut runs = 0;
            while !stop.load(Ordering::SeqCst) || runs == 0 {
                let (clean, out) = apt.run(&["update"]);
                assert!(clean, "apt-get update during gc failed:\n{out}");
                runs += 1;
            }
        })
    };
    let out = writer.ok(&["gc", "--json"]);
    stop.store(true, Ordering::SeqCst);
    // Every update during the gc was clean (asserted in the loop).
    updating.join().unwrap();
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["bucket"]["dry_run"], false, "{report}");
    assert_eq!(report["bucket"]["removed_blobs"], only_a.len(), "{report}");
    let removed_bytes = report["bucket"]["removed_bytes"].as_u64().unwrap();
    assert!(removed_bytes > 0, "{report}");

    let now = keys(&bucket, "");
    for key in &only_a {
        assert!(!now.contains(key), "{key} only A named, still there");
    }
    assert!(!now.contains(&manifest_a));
    for key in in_use.iter().chain([&manifest_b, &manifest_c, &fresh_key]) {
        assert!(now.contains(key), "{key} was removed");
    }
    assert!(keys(&bucket, "lease/").is_empty());

    // The frontend still serves C: apt updates and downloads through it.
    let apt = Apt::new(&line, "amd64");
    apt.ok(&["update"]);
    apt.ok(&["download", "base", "gamma"]);
    assert_eq!(
        apt.downloaded("gamma_1.0_amd64.deb"),
        std::fs::read(&gamma).unwrap()
    );

    // The frontend still on B serves it whole: its indices and the package C replaced.
    let apt = Apt::new(&stale_line, "amd64");
    apt.ok(&["update"]);
    apt.ok(&["download", "base", "beta"]);
    assert_eq!(
        apt.downloaded("beta_1.0_amd64.deb"),
        std::fs::read(&beta).unwrap()
    );

    // Past the grace period the unnamed upload goes too; B, the previous generation, stays.
    std::thread::sleep(GRACE + Duration::from_millis(500));
    let out = writer.ok(&["gc"]);
    assert!(
        out.contains("s3://airlock/gc/") && out.contains(": removed 1 blobs and 0 manifests"),
        "{out}"
    );
    let now = keys(&bucket, "");
    assert!(!now.contains(&fresh_key));
    for key in in_use.iter().chain([&manifest_b, &manifest_c]) {
        assert!(now.contains(key), "{key} was removed");
    }
    for server in [server, stale] {
        let (status, log) = server.stop();
        assert!(status.success(), "{log:?}");
    }
}

/// gc waits for the writers' lease as a push does, then stops naming who holds it, having
/// removed nothing; once the lease is free it removes what nothing names, across several
/// pages of listing and several delete requests.
#[test]
fn gc_is_refused_while_another_writer_holds_the_lease() {
    let garage = Garage::start();
    let bucket = Bucket::open(&garage.settings("held/")).unwrap();
    let writer = Site::new(
        "ed25519",
        &format!(
            "grace = \"1s\"\n{}\n{}",
            local_repo(Some("7d")),
            garage.storage_config("held/", "1s")
        ),
    );
    let debs = writer.path().join("debs");
    writer.include(
        "stable",
        "main",
        &dpkg_deb(&debs, "alpha", "1.0", "amd64", "", "xz"),
    );
    let out = writer.ok(&["gc"]);
    assert!(
        out.contains(": nothing pushed yet, nothing removed"),
        "{out}"
    );
    // The publish pushes by itself.
    writer.ok(&["publish"]);
    // Blobs nothing names, more than one listing page and one delete request hold (1,000).
    let strays: Vec<String> = (0..STRAYS)
        .map(|i| remote::blob_key(&airlock_core::storage::Sha256::of(&i.to_le_bytes()).to_hex()))
        .collect();
    runtime().block_on(async {
        futures_util::stream::iter(&strays)
            .map(|key| bucket.put(key, Bytes::from_static(b"stray")))
            .buffer_unordered(16)
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
    });
    let stray = &strays[0];

    let runtime = runtime();
    let held = runtime
        .block_on(Lease::take(
            &bucket,
            Holder {
                host: "elsewhere".into(),
                pid: 7,
                command: "sync".into(),
            },
            LeaseSettings::default(),
        ))
        .unwrap();
    let out = writer.run(&["gc"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("`airlock sync` (pid 7 on elsewhere)") && stderr.contains("hint:"),
        "{stderr}"
    );
    assert!(keys(&bucket, "").contains(stray));
    runtime.block_on(held.release()).unwrap();

    let out = writer.ok(&["gc"]);
    assert!(
        out.contains(&format!(": removed {STRAYS} blobs and 0 manifests")),
        "{out}"
    );
    let left = keys(&bucket, "blobs/");
    assert!(strays.iter().all(|k| !left.contains(k)));
    // What the pushed generation names is all that is left, and serves.
    let (named, manifest) = named(&bucket, &pointer(&bucket));
    assert_eq!(left, named);
    assert_eq!(keys(&bucket, "trees/"), BTreeSet::from([manifest]));
}

/// Enough strays for three pages of a listing and three delete requests.
const STRAYS: usize = 2_100;
