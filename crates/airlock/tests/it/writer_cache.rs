//! A writer whose disk holds less than its site (`[storage] keep_pushed`): after each push it
//! drops the oldest pushed payloads, and the bucket (Garage on loopback) holds the site. Its
//! frontends, its own `airlock serve`, an export and the next sync all still have everything.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_core::apt::deb::DebBuilder;
use airlock_core::storage::Sha256;

use crate::common::garage::Garage;
use crate::common::site::local_repo;
use crate::common::upstream::{Archive, Upstream, pkg};
use crate::common::{Apt, Site, dpkg_deb, files_below, noise_deb, store_blobs};

const PREFIX: &str = "cached/";

fn sha256_hex(path: &Path) -> String {
    Sha256::of(&std::fs::read(path).unwrap()).to_hex()
}

/// apt-get (amd64) for the stable suite's main of `repo` at `url`, signed by `site`'s key,
/// its lists updated.
fn apt_for(site: &Site, url: &str, repo: &str) -> Apt {
    let apt = Apt::new(
        &format!(
            "deb [signed-by={}] {url}/apt/{repo} stable main",
            site.keyring().display()
        ),
        "amd64",
    );
    apt.ok(&["update"]);
    apt
}

/// apt-get update and download of `packages` from the local repo at `url`, signed by `site`'s
/// key: the .debs' bytes.
fn apt_download(site: &Site, url: &str, packages: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let apt = apt_for(site, url, "local");
    let mut args = vec!["download"];
    args.extend(packages);
    apt.ok(&args);
    packages
        .iter()
        .map(|p| {
            let file = format!("{p}_1.0_amd64.deb");
            (file.clone(), apt.downloaded(&file))
        })
        .collect()
}

/// The config of a writer of the local repo "local" (its Release valid for 7 days) to the
/// bucket's PREFIX, with `storage` lines added to its `[storage]`.
fn local_writer(garage: &Garage, storage: &str) -> String {
    format!(
        "{}\n{}",
        local_repo(Some("7d")),
        garage.storage(&garage.endpoint, PREFIX, storage)
    )
}

#[test]
fn a_writer_keeping_less_than_its_site_still_serves_exports_and_pushes_all_of_it() {
    let garage = Garage::start();
    let site = Site::new(
        "ed25519",
        &local_writer(&garage, "poll = \"1s\"\nkeep_pushed = \"3MB\"\n"),
    );
    let work = tempfile::tempdir().unwrap();
    let names = ["one", "two", "three"];
    // 2 MiB each: the disk keeps one of them (3 MB), the site has three.
    let debs: Vec<PathBuf> = names
        .iter()
        .zip(1u64..)
        .map(|(name, seed)| noise_deb(&work.path().join("debs"), name, 2 << 20, seed))
        .collect();
    let mut out = String::new();
    for deb in &debs {
        site.include("stable", "main", deb);
        out = site.ok(&["publish"]);
    }
    assert!(
        out.contains("1 file dropped from this disk after the push")
            && out.contains("1 kept here")
            && out.contains("2 in the bucket only"),
        "{out}"
    );
    let stored = store_blobs(&site);
    let held: Vec<bool> = debs
        .iter()
        .map(|d| stored.contains_key(&sha256_hex(d)))
        .collect();
    assert_eq!(
        held,
        [false, false, true],
        "the newest stays, the oldest go"
    );
    let on_disk: u64 = stored.values().sum();
    assert!(on_disk < 3_000_000, "{on_disk} bytes in the store");
    for deb in &debs[..2] {
        let name = deb.file_name().unwrap().to_str().unwrap();
        let linked = files_below(&site.path().join("data/trees"))
            .into_iter()
            .any(|p| p.ends_with(name));
        assert!(!linked, "{name} is still linked in a tree");
    }
    // The writer's own status reads its data folder as before.
    let status = site.ok(&["status"]);
    assert!(status.contains("(2 more in the bucket only)"), "{status}");
    let offline = site.run(&["verify", "--offline"]);
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );

    // Every package, byte for byte: from a frontend, and from the writer's own server, which
    // serves from the bucket as a frontend does.
    let expected: BTreeMap<String, Vec<u8>> = debs
        .iter()
        .map(|d| {
            let name = d.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(d).unwrap())
        })
        .collect();
    let (_front, frontend) = garage.start_frontend(PREFIX, "1s");
    assert_eq!(apt_download(&site, &frontend.url, &names), expected);
    let own = site.serve();
    assert_eq!(apt_download(&site, &own.url, &names), expected);
    drop(own);

    // An export reads the dropped packages from the bucket (the disk keeps no copy); another
    // site imports the whole repo from it.
    let bundle = work.path().join("bundle");
    site.ok(&["export", "--to", bundle.to_str().unwrap()]);
    assert_eq!(store_blobs(&site), stored, "the export changed the store");
    let other = Site::new(
        "ed25519",
        &format!(
            "{}\n[import]\ntrusted_keys = [\"{}\"]\n",
            local_repo(Some("7d")),
            site.keyring().display()
        ),
    );
    other.ok(&["import", bundle.to_str().unwrap()]);
    let served = other.serve();
    assert_eq!(apt_download(&other, &served.url, &names), expected);

    // Nothing to upload, nothing more to drop.
    let push: serde_json::Value = serde_json::from_str(&site.ok(&["push", "--json"])).unwrap();
    assert_eq!(push["switched"], false, "{push}");
    assert_eq!(push["blobs_uploaded"], 0, "{push}");
    assert_eq!(push["trim"]["dropped_now"], 0, "{push}");
    assert_eq!(push["trim"]["dropped"], 2, "{push}");

    // Without keep_pushed, the next push reads back what was dropped: the data folder is
    // whole again, links and all, and serves by itself.
    let config = std::fs::read_to_string(site.config()).unwrap();
    std::fs::write(site.config(), config.replace("keep_pushed = \"3MB\"\n", "")).unwrap();
    let out = site.ok(&["push"]);
    assert!(out.contains("2 files dropped earlier read back"), "{out}");
    assert!(
        debs.iter()
            .all(|d| store_blobs(&site).contains_key(&sha256_hex(d)))
    );
    assert!(
        !site
            .path()
            .join("data/store/dropped")
            .read_dir()
            .unwrap()
            .flatten()
            .any(|s| {
                s.path()
                    .read_dir()
                    .is_ok_and(|mut marks| marks.next().is_some())
            }),
        "marks left"
    );
    let offline = site.run(&["verify", "--offline"]);
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stdout)
    );
    let own = site.serve();
    assert_eq!(apt_download(&site, &own.url, &names), expected);
}

/// A writer mirroring an upstream of two packages (base, tool) into a bucket, keeping none of
/// them on its disk.
fn mirror_keeping_nothing() -> (Archive, Upstream, Garage, Site) {
    let archive = Archive::new(
        "ed25519",
        &["stable"],
        &["main"],
        &["amd64"],
        &[
            pkg("stable", "main", "base", "1", "amd64", ""),
            pkg("stable", "main", "tool", "1", "amd64", ""),
        ],
    );
    let upstream = Upstream::serve(archive.path());
    let garage = Garage::start();
    let site = Site::new(
        "ed25519",
        &format!(
            "{}\n{}",
            archive.mirror_config("mirror", &upstream.url, ""),
            garage.storage(&garage.endpoint, PREFIX, "keep_pushed = \"0\"\n")
        ),
    );
    (archive, upstream, garage, site)
}

#[test]
fn a_writer_keeping_nothing_fetches_only_what_is_new_and_its_frontend_serves_everything() {
    let (archive, upstream, garage, site) = mirror_keeping_nothing();
    let out = site.ok(&["sync"]);
    assert!(out.contains("2 files dropped from this disk"), "{out}");
    let pool = |site: &Site| {
        files_below(&site.public("mirror").join("pool"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "deb"))
            .count()
    };
    assert_eq!(pool(&site), 0, "the pool files are in the bucket only");

    archive.add(&pkg("stable", "main", "extra", "1", "amd64", ""));
    upstream.take_requests();
    let out = site.ok(&["sync"]);
    let fetched: Vec<String> = upstream
        .take_requests()
        .into_iter()
        .filter(|r| r.starts_with("pool/"))
        .collect();
    assert_eq!(fetched.len(), 1, "{fetched:?}\n{out}");
    assert!(fetched[0].contains("extra_1_amd64.deb"), "{fetched:?}");

    // Custom images, added one after the other: the second publish of the image tree names
    // the first image, whose bytes are in the bucket only.
    let tgz = crate::common::rhel_tgz(site.path());
    // Its root-tgz and the root-tgz.manifest beside it.
    let out = site.add_rhel_image("9", &tgz);
    assert!(out.contains("2 files dropped from this disk"), "{out}");
    let out = site.add_rhel_image("8", &tgz);
    assert!(out.contains("generation 4 published"), "{out}");
    assert_eq!(
        store_blobs(&site).get(&sha256_hex(&tgz)),
        None,
        "the image is in the bucket only"
    );

    // The bucket serves all of it through a frontend: apt-get, and every file of every area
    // checked by verify against what the writer published.
    let (_front, frontend) = garage.start_frontend(PREFIX, "1s");
    let verified = site.run(&["verify", "--url", &frontend.url, "--full"]);
    assert!(
        verified.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    let apt = apt_for(&site, &frontend.url, "mirror");
    apt.ok(&["download", "base", "tool", "extra"]);
    for name in ["base", "tool", "extra"] {
        let file = format!("{name}_1_amd64.deb");
        let upstream_copy = archive.path().join("pool/stable/main").join(&file);
        assert_eq!(apt.downloaded(&file), std::fs::read(upstream_copy).unwrap());
    }
}

#[test]
fn bytes_the_bucket_collected_are_fetched_again_when_the_upstream_brings_them_back() {
    let (archive, upstream, garage, site) = mirror_keeping_nothing();
    site.set_grace("1s");
    let grace = || std::thread::sleep(std::time::Duration::from_millis(1500));
    let tool = archive.path().join("pool/stable/main/tool_1_amd64.deb");
    let tool_bytes = std::fs::read(&tool).unwrap();
    let tool_sha256 = sha256_hex(&tool);
    let mark = site
        .path()
        .join("data/store/dropped")
        .join(&tool_sha256[..2])
        .join(&tool_sha256);
    site.ok(&["sync"]);
    assert!(mark.is_file(), "tool is not marked dropped");

    // Upstream drops tool; the mirror keeps it for the grace period, then a later sync's tree
    // no longer names it, and its mark goes.
    std::fs::remove_file(&tool).unwrap();
    archive.publish();
    site.ok(&["sync"]);
    grace();
    archive.add(&pkg("stable", "main", "extra", "1", "amd64", ""));
    site.ok(&["sync"]);
    assert!(
        !mark.exists(),
        "the mark outlived the last tree naming tool"
    );

    // Once no generation in use names it, the bucket's gc removes it.
    grace();
    archive.add(&pkg("stable", "main", "more", "1", "amd64", ""));
    site.ok(&["sync"]);
    grace();
    let out = site.ok(&["gc"]);
    assert!(out.contains("s3://"), "{out}");
    let bucket = airlock_core::storage::bucket::Bucket::open(&garage.settings(PREFIX)).unwrap();
    let runtime = crate::common::garage::runtime();
    let tool_key = airlock_core::remote::blob_key(&tool_sha256);
    let head = runtime.block_on(bucket.head(&tool_key)).unwrap();
    assert!(head.is_none(), "gc kept {tool_key}:\n{out}");

    // Upstream brings the same bytes back: the sync fetches them (nothing says the bucket
    // has them) and the push uploads them; a frontend serves them.
    std::fs::write(&tool, &tool_bytes).unwrap();
    archive.publish();
    upstream.take_requests();
    site.ok(&["sync"]);
    let fetched: Vec<String> = upstream
        .take_requests()
        .into_iter()
        .filter(|r| r.starts_with("pool/"))
        .collect();
    assert_eq!(fetched, ["pool/stable/main/tool_1_amd64.deb"]);
    assert!(runtime.block_on(bucket.head(&tool_key)).unwrap().is_some());
    let (_front, frontend) = garage.start_frontend(PREFIX, "1s");
    let apt = apt_for(&site, &frontend.url, "mirror");
    apt.ok(&["download", "tool"]);
    assert_eq!(apt.downloaded("tool_1_amd64.deb"), tool_bytes);
}

/// A new machine for a writer: its config (`repos`, `[storage]` included), the key files of
/// `key_of` (the writer's, or a stranger's), no data folder.
fn new_machine(repos: &str, key_of: &Site) -> Site {
    let dir = tempfile::tempdir().unwrap();
    for file in ["airlock.key", "airlock.gpg", "airlock.asc"] {
        std::fs::copy(key_of.path().join(file), dir.path().join(file)).unwrap();
    }
    let machine = Site::with_config(dir, repos);
    assert!(!machine.path().join("data").exists());
    machine
}

#[test]
fn a_lost_writer_is_rebuilt_from_its_bucket_and_goes_on() {
    let garage = Garage::start();
    let repos = local_writer(&garage, "poll = \"1s\"\n");
    let writer = Site::new("ed25519", &repos);
    let work = tempfile::tempdir().unwrap();
    let debs = work.path().join("debs");
    for name in ["one", "two"] {
        writer.include(
            "stable",
            "main",
            &dpkg_deb(&debs, name, "1.0", "amd64", "", "xz"),
        );
    }
    writer.ok(&["publish"]);
    let tgz = crate::common::rhel_tgz(writer.path());
    writer.add_rhel_image("9", &tgz);
    let listed = writer.ok(&["apt", "list", "local"]);

    // The writer's machine is lost. A new one with its config and key pulls the site back.
    let rebuilt = new_machine(&repos, &writer);
    // At the most verbose level: the bucket's secret never shows.
    let pulled = rebuilt.run(&["pull", "-vvv"]);
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&pulled.stdout),
        String::from_utf8_lossy(&pulled.stderr)
    );
    assert!(pulled.status.success(), "{out}");
    assert!(
        out.contains("generation 2 pulled") && out.contains("2 trees"),
        "{out}"
    );
    assert!(
        !out.contains(&garage.secret),
        "the bucket's secret in the output"
    );
    assert_eq!(rebuilt.ok(&["apt", "list", "local"]), listed);
    assert!(
        rebuilt
            .ok(&["images", "list"])
            .contains("io.airlock.custom.stable:rhel-bases:9:amd64"),
        "the custom image is not back"
    );
    // It holds every blob (no keep_pushed), served from its own data folder as before.
    let verified = rebuilt.run(&["verify", "--offline"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let writer_blobs: Vec<String> = store_blobs(&writer).into_keys().collect();
    let rebuilt_blobs = store_blobs(&rebuilt);
    assert!(
        writer_blobs.iter().all(|b| rebuilt_blobs.contains_key(b)),
        "blobs missing after the pull"
    );

    // And goes on: a package more, published and pushed; a frontend serves all three.
    rebuilt.include(
        "stable",
        "main",
        &dpkg_deb(&debs, "three", "1.0", "amd64", "", "xz"),
    );
    let out = rebuilt.ok(&["publish"]);
    assert!(out.contains("generation 3 published"), "{out}");
    let (_front, frontend) = garage.start_frontend(PREFIX, "1s");
    let got = apt_download(&rebuilt, &frontend.url, &["one", "two", "three"]);
    for (file, bytes) in got {
        assert_eq!(bytes, std::fs::read(debs.join(&file)).unwrap(), "{file}");
    }

    // Refused: a data folder that holds a site, and another key than the bucket's.
    let again = rebuilt.run(&["pull"]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success()
            && stderr.contains("holds a site already")
            && stderr.contains("hint:"),
        "{stderr}"
    );
    let stranger = Site::new("ed25519", "");
    let other = new_machine(&repos, &stranger);
    let refused = other.run(&["pull"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && stderr.contains("signed by another key")
            && stderr.contains("restore the writer's signing key"),
        "{stderr}"
    );
    assert!(
        !other.path().join("data").exists(),
        "a refused pull wrote the data folder"
    );

    // A writer keeping nothing reads back only what publishes read.
    let small = new_machine(&local_writer(&garage, "keep_pushed = \"0\"\n"), &writer);
    let report: serde_json::Value = serde_json::from_str(&small.ok(&["pull", "--json"])).unwrap();
    let (blobs, read_back) = (
        report["blobs"].as_u64().unwrap(),
        report["blobs_read_back"].as_u64().unwrap(),
    );
    // Three packages and the image's two files stay in the bucket.
    assert_eq!(blobs - read_back, 5, "{report}");
    // Under the bucket's tree IDs: the next push finds nothing to change.
    let out = small.ok(&["publish"]);
    assert!(out.contains("unchanged (generation 3"), "{out}");
}

/// `airlock push` under strace, killed (SIGKILL) as it enters its `when`-th unlink: a point
/// inside the drop of pushed files, the same on every run.
fn push_killed_at_unlink(site: &Site, when: usize) -> std::process::ExitStatus {
    Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=unlink"])
        .arg("-e")
        .arg(format!("inject=unlink:signal=KILL:when={when}"))
        .arg(crate::common::AIRLOCK)
        .arg("--config")
        .arg(site.config())
        .arg("push")
        .output()
        .unwrap()
        .status
}

#[test]
fn a_writer_killed_while_dropping_loses_nothing_and_its_next_push_finishes() {
    let garage = Garage::start();
    let site = Site::new("ed25519", &local_writer(&garage, "poll = \"1s\"\n"));
    let work = tempfile::tempdir().unwrap();
    let debs = work.path().join("debs");
    std::fs::create_dir_all(&debs).unwrap();
    let mut digests = Vec::new();
    for i in 0..1000 {
        let deb = DebBuilder::new(format!(
            "Package: p{i}\nVersion: 1\nArchitecture: amd64\nMaintainer: T <t@example.invalid>\nDescription: p\n"
        ))
        .file("usr/share/p", i.to_string())
        .build()
        .unwrap();
        std::fs::write(debs.join(format!("p{i}_1_amd64.deb")), &deb).unwrap();
        digests.push(Sha256::of(&deb).to_hex());
    }
    site.include("stable", "main", &debs);
    site.ok(&["publish"]);
    // From now on the writer keeps none of its packages.
    site.add_config("keep_pushed = \"0\"\n");
    let store = site.path().join("data/store");
    let has_bytes = |hex: &String| store.join("sha256").join(&hex[..2]).join(hex).is_file();
    let marked = |hex: &String| store.join("dropped").join(&hex[..2]).join(hex).is_file();
    let count = |held: &dyn Fn(&String) -> bool| digests.iter().filter(|h| held(h)).count();
    let killed = |when: usize| {
        let status = push_killed_at_unlink(&site, when);
        assert_eq!(status.signal(), Some(9), "not killed at unlink {when}");
        // Whatever the moment: every package is here, or marked as in the bucket.
        let lost: Vec<&String> = digests
            .iter()
            .filter(|h| !has_bytes(h) && !marked(h))
            .collect();
        assert!(lost.is_empty(), "killed at unlink {when}: lost {lost:?}");
        (count(&has_bytes), count(&marked))
    };
    // At the first unlink: every mark written, no byte gone yet.
    assert_eq!(killed(1), (1000, 1000));
    // Half-way: some packages gone, the rest still here.
    let (here, marks) = killed(700);
    assert!((1..1000).contains(&here) && marks == 1000, "{here} {marks}");
    let (fewer, _) = killed(300);
    assert!((1..here).contains(&fewer), "{fewer} after {here}");

    // The next push finishes: nothing left on the disk, nothing lost.
    site.ok(&["push"]);
    assert_eq!((count(&has_bytes), count(&marked)), (0, 1000));
    let offline = site.run(&["verify", "--offline"]);
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stdout)
    );
    let (_front, frontend) = garage.start_frontend(PREFIX, "1s");
    let apt = apt_for(&site, &frontend.url, "local");
    apt.ok(&["download", "p0", "p999"]);
    for name in ["p0", "p999"] {
        let file = format!("{name}_1_amd64.deb");
        assert_eq!(
            apt.downloaded(&file),
            std::fs::read(debs.join(&file)).unwrap()
        );
    }
}

#[test]
fn a_damaged_or_lost_object_in_the_bucket_is_refused_and_named() {
    let garage = Garage::start();
    let site = Site::new("ed25519", &local_writer(&garage, "keep_pushed = \"0\"\n"));
    let work = tempfile::tempdir().unwrap();
    let deb = dpkg_deb(&work.path().join("debs"), "one", "1.0", "amd64", "", "xz");
    site.include("stable", "main", &deb);
    site.ok(&["publish"]);
    let hex = sha256_hex(&deb);
    let mark = site
        .path()
        .join("data/store/dropped")
        .join(&hex[..2])
        .join(&hex);
    assert!(mark.is_file() && !store_blobs(&site).contains_key(&hex));
    let bucket = airlock_core::storage::bucket::Bucket::open(&garage.settings(PREFIX)).unwrap();
    let runtime = crate::common::garage::runtime();
    let key = airlock_core::remote::blob_key(&hex);

    // Damaged: reading it back is refused by its digest, nothing of it is stored.
    runtime
        .block_on(bucket.put(&key, bytes::Bytes::from_static(b"not the package")))
        .unwrap();
    let export = site.run(&["export", "--to", work.path().join("b").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&export.stderr);
    assert!(
        !export.status.success()
            && stderr.contains(&format!("cannot read blob {hex} back from the bucket"))
            && stderr.contains("does not have the content its name says")
            && stderr.contains("hint:"),
        "{stderr}"
    );
    assert!(mark.is_file() && !store_blobs(&site).contains_key(&hex));

    // Lost: the push says which and forgets its mark; the package included again goes up.
    runtime.block_on(bucket.delete(&key)).unwrap();
    let push = site.run(&["push"]);
    let stderr = String::from_utf8_lossy(&push.stderr);
    assert!(
        !push.status.success()
            && stderr.contains(&format!("blob {hex} is not there"))
            && stderr.contains("run the sync or import that brought it again"),
        "{stderr}"
    );
    assert!(!mark.exists(), "the wrong mark stays");
    site.include("stable", "main", &deb);
    let out = site.ok(&["publish"]);
    assert!(out.contains("1 file dropped from this disk"), "{out}");
    assert!(runtime.block_on(bucket.head(&key)).unwrap().is_some());
}
