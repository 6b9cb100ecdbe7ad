//! The S3 client and the writers' lease against a real object store (Garage on loopback).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use airlock_core::storage::bucket::{Bucket, Fetched, Holder, Lease, LeaseError, LeaseSettings};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::common::garage::{Garage, keys, runtime};

#[test]
fn objects_round_trip_bounded() {
    let garage = Garage::start();
    let bucket = Bucket::open(&garage.settings("site-a/")).unwrap();
    runtime().block_on(async {
        assert!(bucket.head("state/none.json").await.unwrap().is_none());
        assert!(bucket.get("state/none.json", 1024).await.unwrap().is_none());

        let written = bucket
            .put("state/a.json", Bytes::from_static(b"{\"a\":1}"))
            .await
            .unwrap();
        let (bytes, info) = bucket.get("state/a.json", 1024).await.unwrap().unwrap();
        assert_eq!(&bytes[..], b"{\"a\":1}");
        assert_eq!((info.key.as_str(), info.size), ("state/a.json", 7));
        assert_eq!(info.etag, written.etag);

        // A poll that names the version it has costs no body.
        let etag = info.etag.clone().unwrap();
        assert!(matches!(
            bucket
                .get_if_changed("state/a.json", Some(&etag), 1024)
                .await
                .unwrap(),
            Fetched::Unchanged
        ));
        bucket
            .put("state/a.json", Bytes::from_static(b"{\"a\":2}"))
            .await
            .unwrap();
        match bucket
            .get_if_changed("state/a.json", Some(&etag), 1024)
            .await
            .unwrap()
        {
            Fetched::Changed { bytes, .. } => assert_eq!(&bytes[..], b"{\"a\":2}"),
            other => panic!("expected the new version, got {other:?}"),
        }

        // Reads are bounded, and the error names the object.
        let err = bucket.get("state/a.json", 3).await.unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("state/a.json") && message.contains("s3://airlock/site-a/"),
            "{message}"
        );

        // Listing is relative to the prefix and sorted; nothing outside the prefix shows.
        let other = Bucket::open(&garage.settings("site-b/")).unwrap();
        other
            .put("state/b.json", Bytes::from_static(b"b"))
            .await
            .unwrap();
        bucket
            .put("state/0.json", Bytes::from_static(b"0"))
            .await
            .unwrap();
        let keys: Vec<String> = bucket
            .list("state/")
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.key)
            .collect();
        assert_eq!(keys, ["state/0.json", "state/a.json"]);

        bucket.delete("state/a.json").await.unwrap();
        bucket.delete("state/a.json").await.unwrap();
        assert!(bucket.head("state/a.json").await.unwrap().is_none());
    });
}

#[test]
fn large_files_go_up_in_parts_and_read_back_by_range() {
    let garage = Garage::start();
    let bucket = Bucket::open(&garage.settings("")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Over the multipart threshold, not a whole number of parts.
    let size = (70 << 20) + 12345;
    let content: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let file = dir.path().join("big.squashfs");
    std::fs::write(&file, &content).unwrap();
    runtime().block_on(async {
        bucket.put_file("blobs/big", &file).await.unwrap();
        let info = bucket.head("blobs/big").await.unwrap().unwrap();
        assert_eq!(info.size, size as u64);
        let range = (size as u64 - 100_000)..(size as u64 - 10);
        let mut stream = bucket.get_range("blobs/big", range.clone()).await.unwrap();
        let mut got = Vec::new();
        while let Some(chunk) = stream.next().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got, content[range.start as usize..range.end as usize]);

        // A missing local file is named in the error.
        let err = bucket
            .put_file("blobs/none", &dir.path().join("missing"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    });
}

#[test]
fn a_wrong_secret_is_refused_with_a_hint_and_never_shown() {
    let garage = Garage::start();
    let mut settings = garage.settings("");
    settings.secret_access_key = airlock_core::storage::bucket::Secret::new("not-the-secret-0123");
    let bucket = Bucket::open(&settings).unwrap();
    let err = runtime()
        .block_on(bucket.put("x", Bytes::from_static(b"x")))
        .unwrap_err();
    let shown = format!(
        "{err} / {:?} / {:?} / {}",
        err,
        settings,
        airlock_core::hint::Hint::hint(&err).unwrap_or_default()
    );
    assert!(!shown.contains("not-the-secret-0123"), "{shown}");
    assert!(!shown.contains(&garage.secret), "{shown}");
    assert!(
        airlock_core::hint::Hint::hint(&err).is_some_and(|h| h.contains("AWS_SECRET_ACCESS_KEY")),
        "{shown}"
    );
}

fn holder(command: &str) -> Holder {
    Holder {
        host: "test".into(),
        pid: 1,
        command: command.into(),
    }
}

#[test]
fn one_writer_at_a_time() {
    let garage = Garage::start();
    let bucket = Bucket::open(&garage.settings("site/")).unwrap();
    runtime().block_on(async {
        let first = Lease::take(&bucket, holder("publish"), LeaseSettings::default())
            .await
            .unwrap();
        let at_once = LeaseSettings {
            wait: Duration::ZERO,
            ..LeaseSettings::default()
        };
        let refused = Lease::take(&bucket, holder("sync"), at_once)
            .await
            .unwrap_err();
        match &refused {
            LeaseError::Held { holder, .. } => assert_eq!(holder.command, "publish"),
            other => panic!("expected Held, got {other:?}"),
        }
        assert!(
            refused.to_string().contains("`airlock publish`"),
            "{refused}"
        );
        // The refused writer left no claim behind.
        assert_eq!(bucket.list("lease/").await.unwrap().len(), 1);
        first.confirm().await.unwrap();
        first.release().await.unwrap();

        let second = Lease::take(&bucket, holder("sync"), LeaseSettings::default())
            .await
            .unwrap();
        second.release().await.unwrap();
        assert!(bucket.list("lease/").await.unwrap().is_empty());
    });
}

#[test]
fn an_expired_claim_is_removed_and_its_writer_cannot_switch() {
    let garage = Garage::start();
    let bucket = Bucket::open(&garage.settings("")).unwrap();
    runtime().block_on(async {
        // A writer that died: its claim is never renewed (a time to live of one second).
        let dead = serde_json::json!({
            "holder": {"host": "gone", "pid": 7, "command": "publish"},
            "ttl_seconds": 1,
            "taken": "2026-01-01T00:00:00Z",
        });
        bucket
            .put(
                "lease/0000000000001-dead.json",
                Bytes::from(dead.to_string()),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let lease = Lease::take(&bucket, holder("publish"), LeaseSettings::default())
            .await
            .unwrap();
        let claims = bucket.list("lease/").await.unwrap();
        assert_eq!(claims.len(), 1, "{claims:?}");
        assert_ne!(claims[0].key, "lease/0000000000001-dead.json");

        // Another writer judged this one expired and removed its claim: no switch.
        bucket.delete(&claims[0].key).await.unwrap();
        let err = lease.confirm().await.unwrap_err();
        assert!(matches!(err, LeaseError::Lost { .. }), "{err:?}");
    });
}

#[test]
fn writers_racing_for_the_lease_never_hold_it_together() {
    let garage = Garage::start();
    let bucket = Bucket::open(&garage.settings("race/")).unwrap();
    let holding = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let taken = Arc::new(AtomicUsize::new(0));
    runtime().block_on(async {
        for _round in 0..10 {
            let mut writers = Vec::new();
            for w in 0..6 {
                let (bucket, holding, most, taken) =
                    (bucket.clone(), holding.clone(), most.clone(), taken.clone());
                writers.push(tokio::spawn(async move {
                    let patient = LeaseSettings {
                        wait: Duration::from_secs(30),
                        ..LeaseSettings::default()
                    };
                    match Lease::take(&bucket, holder(&format!("w{w}")), patient).await {
                        Ok(lease) => {
                            let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            taken.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            holding.fetch_sub(1, Ordering::SeqCst);
                            lease.release().await.unwrap();
                        }
                        Err(LeaseError::Held { .. }) => {}
                        Err(e) => panic!("{e:?}"),
                    }
                }));
            }
            for w in writers {
                w.await.unwrap();
            }
            assert!(bucket.list("lease/").await.unwrap().is_empty());
        }
    });
    assert!(
        most.load(Ordering::SeqCst) <= 1,
        "two writers held the lease at once"
    );
    // Writers that claim at the same instant all withdraw at first; random pauses between
    // tries let them take turns (each holds it 50 ms, and waits up to 30 s).
    assert_eq!(
        taken.load(Ordering::SeqCst),
        60,
        "a writer never got its turn"
    );
}

#[test]
fn a_push_uploads_each_blob_once_and_switches_the_pointer_last() {
    use crate::common::site::local_repo;
    use crate::common::{Site, dpkg_deb};
    use airlock_core::remote::{self, Published};

    let garage = Garage::start();
    let bucket = Bucket::open(&garage.settings("site-a/")).unwrap();
    let site = Site::new("ed25519", &local_repo(Some("7d")));
    let work = tempfile::tempdir().unwrap();
    let hello = dpkg_deb(&work.path().join("debs"), "hello", "1.0", "amd64", "", "xz");
    site.include("stable", "main", &hello);
    site.ok(&["publish"]);
    let opened = airlock_core::site::Site::open(&site.config()).unwrap();
    let reporter = airlock_core::report::NullReporter::default();
    let push = |command: &str| {
        runtime().block_on(remote::push(&opened, &bucket, holder(command), &reporter))
    };

    let first = push("publish").unwrap();
    assert!(first.switched && first.generation == 1, "{first:?}");
    assert_eq!(first.trees, 1);
    assert_eq!(first.manifests_uploaded, 1);
    // The tree's files, the snap catalog's (none), the two key documents and the writer's
    // state (the local repo's packages).
    assert_eq!(first.blobs_uploaded, first.blobs + 3, "{first:?}");
    let (published, _) = runtime()
        .block_on(remote::read_pointer(&bucket))
        .unwrap()
        .unwrap();
    let state = std::fs::read(site.path().join("data/state/apt/local.packages")).unwrap();
    assert_eq!(
        published.documents["state/apt/local.packages"],
        airlock_core::storage::Sha256::of(&state).to_hex()
    );
    let id = &published.trees["apt/local"];
    // The manifest uploaded is the one the data folder serves, byte for byte.
    let local_manifest = std::fs::read(
        site.path()
            .join(format!("data/trees/apt/local/{id}.manifest")),
    )
    .unwrap();
    let (remote_manifest, _) = runtime()
        .block_on(bucket.get(&remote::manifest_key("apt/local", id), 1 << 20))
        .unwrap()
        .unwrap();
    assert_eq!(remote_manifest[..], local_manifest[..]);
    // Every blob the manifest names is in the bucket with its bytes.
    let deb_sha = airlock_core::storage::Sha256::of_file(&hello)
        .unwrap()
        .to_hex();
    let (deb, _) = runtime()
        .block_on(bucket.get(&remote::blob_key(&deb_sha), 16 << 20))
        .unwrap()
        .unwrap();
    assert_eq!(deb[..], std::fs::read(&hello).unwrap()[..]);
    // The public key is there, the secret one nowhere.
    let key_sha = &published.documents["keys/airlock.gpg"];
    let (key, _) = runtime()
        .block_on(bucket.get(&remote::blob_key(key_sha), 1 << 20))
        .unwrap()
        .unwrap();
    assert_eq!(key[..], std::fs::read(site.keyring()).unwrap()[..]);
    let secret = std::fs::read_to_string(site.path().join("airlock.key")).unwrap();
    for k in keys(&bucket, "") {
        let (bytes, _) = runtime()
            .block_on(bucket.get(&k, 64 << 20))
            .unwrap()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret.trim()),
            "{k}"
        );
    }

    // A frontend's snapshot resolves every served path to the blob the data folder serves.
    let snapshot = runtime()
        .block_on(remote::Snapshot::load(&bucket))
        .unwrap()
        .unwrap();
    for path in [
        "apt/local/dists/stable/InRelease",
        "apt/local/pool/main/h/hello/hello_1.0_amd64.deb",
    ] {
        let resolved = snapshot.resolve(path).unwrap_or_else(|| panic!("{path}"));
        let local = site.path().join("data/public").join(path);
        assert_eq!(
            resolved.entry.sha256,
            airlock_core::storage::Sha256::of_file(&local).unwrap(),
            "{path}"
        );
        assert_eq!(resolved.tree, "apt/local");
    }
    assert!(snapshot.resolve("apt/local/dists/stable/Nothing").is_none());
    assert!(
        snapshot
            .resolve("apt/other/dists/stable/InRelease")
            .is_none()
    );
    assert!(snapshot.resolve("images/streams/v1/index.sjson").is_none());
    assert!(snapshot.document("keys/airlock.asc").is_some());

    // Nothing changed: nothing uploaded, no switch.
    let again = push("publish").unwrap();
    assert!(!again.switched && again.generation == 1, "{again:?}");
    assert_eq!((again.blobs_uploaded, again.manifests_uploaded), (0, 0));

    // A new package: only its blobs and the new indices go up; the pointer moves on.
    let world = dpkg_deb(&work.path().join("debs"), "world", "1.0", "amd64", "", "xz");
    site.include("stable", "main", &world);
    site.ok(&["publish"]);
    let third = push("publish").unwrap();
    assert!(third.switched && third.generation == 2, "{third:?}");
    assert!(third.blobs_uploaded < third.blobs, "{third:?}");
    assert_eq!(third.manifests_uploaded, 1);
    let (now, _): (Published, _) = runtime()
        .block_on(remote::read_pointer(&bucket))
        .unwrap()
        .unwrap();
    assert_ne!(now.trees["apt/local"], *id);
    // The frontend sees the new push at its next look, and only then.
    let newer = runtime()
        .block_on(snapshot.refreshed(&bucket))
        .unwrap()
        .expect("a newer snapshot");
    assert_eq!(newer.published.generation, 2);
    assert!(
        newer
            .resolve("apt/local/pool/main/w/world/world_1.0_amd64.deb")
            .is_some()
    );
    assert!(
        runtime()
            .block_on(newer.refreshed(&bucket))
            .unwrap()
            .is_none()
    );

    // A second writer is refused while one holds the lease; the pointer stays.
    let held = runtime()
        .block_on(Lease::take(
            &bucket,
            holder("sync"),
            LeaseSettings::default(),
        ))
        .unwrap();
    let refused = push("publish").unwrap_err();
    assert!(refused.to_string().contains("`airlock sync`"), "{refused}");
    runtime().block_on(held.release()).unwrap();
    assert!(keys(&bucket, "lease/").is_empty());
}

#[test]
fn airlock_push_from_the_command_line() {
    use crate::common::site::local_repo;
    use crate::common::{AIRLOCK, Site, dpkg_deb};

    let garage = Garage::start();
    let storage = format!(
        "[storage]\nkind = \"s3\"\nendpoint = \"{}\"\nbucket = \"{}\"\nregion = \"{}\"\nprefix = \"cli\"\n",
        garage.endpoint,
        crate::common::garage::BUCKET,
        crate::common::garage::REGION
    );
    // A site published locally, then given a bucket: `airlock push` copies what it serves.
    let site = Site::new("ed25519", &local_repo(Some("7d")));
    let work = tempfile::tempdir().unwrap();
    let hello = dpkg_deb(&work.path().join("debs"), "hello", "1.0", "amd64", "", "xz");
    site.include("stable", "main", &hello);
    site.ok(&["publish"]);
    site.add_config(&storage);
    let push = |args: &[&str], with_credentials: bool| {
        let mut command = std::process::Command::new(AIRLOCK);
        command.arg("--config").arg(site.config()).args(args);
        command
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
        if with_credentials {
            command
                .env("AWS_ACCESS_KEY_ID", &garage.key_id)
                .env("AWS_SECRET_ACCESS_KEY", &garage.secret);
        }
        command.output().unwrap()
    };

    // Without credentials: refused, told where they come from, nothing secret shown.
    let out = push(&["push"], false);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AWS_ACCESS_KEY_ID is not set"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");

    let out = push(&["push"], true);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("s3://airlock/cli/") && stdout.contains("generation 1 published"),
        "{stdout}"
    );
    // The secret never reaches output, even at the most verbose level.
    let out = push(&["-vvv", "push"], true);
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains(&garage.secret), "{text}");
    }
    assert!(out.status.success());

    // Quiet on success; --json is one document.
    let out = push(&["-q", "push"], true);
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    let out = push(&["push", "--json"], true);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["switched"], false);
    assert_eq!(report["generation"], 1);
    assert_eq!(report["trees"], 1);

    // A writer pushes by itself, and is refused before it changes anything when it cannot.
    let in_release = site.public("local").join("dists/stable/InRelease");
    let served = std::fs::read(&in_release).unwrap();
    let world = dpkg_deb(&work.path().join("debs"), "world", "1.0", "amd64", "", "xz");
    site.include("stable", "main", &world);
    let out = push(&["publish"], false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("AWS_ACCESS_KEY_ID is not set"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&in_release).unwrap(), served);
    let out = push(&["publish", "--json"], true);
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["repos"][0]["written"], true);
    assert_eq!(report["push"]["generation"], 2);
    assert_eq!(report["push"]["switched"], true);
    assert!(report["push"]["bytes_uploaded"].as_u64().unwrap() > 0);
    let out = push(&["-q", "publish"], true);
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");

    // A site whose storage is local has nothing to push to.
    let local = Site::new("ed25519", &local_repo(Some("7d")));
    let out = local.run(&["push"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("[storage] is local"),
        "{out:?}"
    );
}
