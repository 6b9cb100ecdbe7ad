//! Mirroring an upstream archive end to end: an archive made by dpkg-deb, apt-ftparchive and
//! gpg, served on 127.0.0.1; `airlock sync` with a package filter; real apt-get against the
//! published mirror.

use crate::common::upstream::{Archive, Fault, Pkg, Upstream, pkg};
use crate::common::{AIRLOCK, Apt, Site, curl, dpkg_deb, store_blobs, sync_history};

/// Dependencies cross suites (libfoo >= 1.1 is only in stable-updates) and components
/// (helper is in contrib), go through a virtual package (mail-transport-agent), an
/// alternative (helper | helper-alt) and an arch-qualified name (python3:any).
const PACKAGES: &[Pkg] = &[
    pkg(
        "stable",
        "main",
        "app",
        "1.0",
        "amd64",
        "Depends: libfoo (>= 1.1), mail-transport-agent, helper | helper-alt, python3:any\nPhased-Update-Percentage: 30\n",
    ),
    pkg(
        "stable",
        "main",
        "app",
        "1.0",
        "arm64",
        "Depends: libfoo (>= 1.1), mail-transport-agent, helper | helper-alt, python3:any\n",
    ),
    pkg("stable", "main", "libfoo", "1.0", "amd64", ""),
    pkg("stable", "main", "libfoo", "1.0", "arm64", ""),
    pkg("stable-updates", "main", "libfoo", "1.1", "amd64", ""),
    pkg("stable-updates", "main", "libfoo", "1.1", "arm64", ""),
    pkg(
        "stable",
        "main",
        "postfix",
        "3",
        "amd64",
        "Provides: mail-transport-agent\n",
    ),
    pkg(
        "stable",
        "main",
        "postfix",
        "3",
        "arm64",
        "Provides: mail-transport-agent\n",
    ),
    pkg(
        "stable",
        "main",
        "python3",
        "3.11",
        "amd64",
        "Multi-Arch: allowed\n",
    ),
    pkg(
        "stable",
        "main",
        "python3",
        "3.11",
        "arm64",
        "Multi-Arch: allowed\n",
    ),
    pkg("stable", "main", "data-common", "1", "all", ""),
    pkg("stable", "main", "helper-alt", "1", "all", ""),
    pkg("stable", "main", "unrelated", "1", "amd64", ""),
    pkg(
        "stable",
        "contrib",
        "helper",
        "2",
        "all",
        "Depends: data-common\n",
    ),
];

fn archive(key: &str) -> Archive {
    Archive::new(
        key,
        &["stable", "stable-updates"],
        &["main", "contrib"],
        &["amd64", "arm64"],
        PACKAGES,
    )
}

fn sources(site: &Site, url: &str) -> String {
    format!(
        "deb [signed-by={0}] {url}/apt/mirror stable main contrib\ndeb [signed-by={0}] {url}/apt/mirror stable-updates main contrib",
        site.keyring().display()
    )
}

#[test]
fn filtered_mirror_with_closure_serves_apt() {
    let archive = archive("rsa3072");
    let upstream = Upstream::serve(archive.path());
    let site = Site::new(
        "ed25519",
        &archive.mirror_config("mirror", &upstream.url, "packages = [\"app\"]"),
    );
    let out = site.ok(&["sync"]);
    assert!(
        out.contains(
            "mirror: published 14 packages (stable 12, stable-updates 2); 12 files downloaded"
        ),
        "{out}"
    );

    let server = site.serve();
    for arch in ["amd64", "arm64"] {
        let apt = Apt::new(&sources(&site, &server.url), arch);
        apt.ok(&["update"]);
        apt.ok(&["install", "--download-only", "-y", "app"]);
        let mut fetched: Vec<String> = std::fs::read_dir(apt.dir.path().join("cache/archives"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".deb"))
            .collect();
        fetched.sort();
        let expected = [
            format!("app_1.0_{arch}.deb"),
            "data-common_1_all.deb".into(),
            "helper_2_all.deb".into(),
            format!("libfoo_1.1_{arch}.deb"),
            format!("postfix_3_{arch}.deb"),
            format!("python3_3.11_{arch}.deb"),
        ];
        assert_eq!(fetched, expected, "{arch}");
        // Not in the closure, so not mirrored.
        let (ok, text) = apt.run(&["download", "unrelated"]);
        assert!(!ok, "{text}");
    }

    // Stanzas are upstream's, byte for byte (Phased-Update-Percentage included).
    let ours = std::fs::read_to_string(
        site.public("mirror")
            .join("dists/stable/main/binary-amd64/Packages"),
    )
    .unwrap();
    let theirs = std::fs::read_to_string(
        archive
            .path()
            .join("dists/stable/main/binary-amd64/Packages"),
    )
    .unwrap();
    let app = theirs
        .split("\n\n")
        .find(|s| s.starts_with("Package: app\n"))
        .unwrap();
    assert!(
        ours.contains(app),
        "verbatim stanza:\n{app}\nnot in:\n{ours}"
    );
    assert!(ours.contains("Phased-Update-Percentage: 30"));
    assert!(!ours.contains("Package: unrelated"));
    drop(server);
}

#[test]
fn resync_is_cheap_and_incremental() {
    let archive = archive("ed25519");
    let upstream = Upstream::serve(archive.path());
    let site = Site::new(
        "ed25519",
        &archive.mirror_config("mirror", &upstream.url, "packages = [\"app\"]"),
    );
    site.ok(&["sync"]);
    upstream.take_requests();
    let before = site.snapshot();
    let first_blobs = store_blobs(&site);
    let first_bytes: u64 = first_blobs.values().sum();

    // Nothing changed upstream: one request per suite, nothing written.
    let out = site.ok(&["sync"]);
    assert!(
        out.contains("mirror: upstream unchanged (stable 12, stable-updates 2 packages)"),
        "{out}"
    );
    assert_eq!(
        upstream.take_requests(),
        ["dists/stable/InRelease", "dists/stable-updates/InRelease"]
    );
    assert_eq!(site.snapshot(), before);

    // An update upstream: only the new package is downloaded, by-hash indices are used.
    archive.add(&pkg(
        "stable-updates",
        "main",
        "app",
        "1.1",
        "amd64",
        "Depends: libfoo (>= 1.1)\n",
    ));
    let out = site.ok(&["sync"]);
    assert!(out.contains("1 files downloaded"), "{out}");
    let requests = upstream.take_requests();
    let pool: Vec<&String> = requests.iter().filter(|r| r.starts_with("pool/")).collect();
    assert_eq!(
        pool,
        ["pool/stable-updates/main/app_1.1_amd64.deb"],
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.contains("/by-hash/SHA256/")),
        "{requests:?}"
    );
    // The history verify estimates the next sync from: what each run added to the store (the
    // unchanged one added nothing and is not a run).
    let update_bytes: u64 = store_blobs(&site)
        .iter()
        .filter(|(name, _)| !first_blobs.contains_key(*name))
        .map(|(_, size)| size)
        .sum();
    assert_eq!(
        sync_history(&site),
        [
            ("apt/mirror".to_string(), "first".to_string(), first_bytes),
            ("apt/mirror".to_string(), "update".to_string(), update_bytes)
        ]
    );

    let server = site.serve();
    let apt = Apt::new(&sources(&site, &server.url), "amd64");
    apt.ok(&["update"]);
    apt.ok(&["download", "app=1.1"]);
}

#[test]
fn verbatim_mirror_keeps_the_upstream_signature() {
    let archive = archive("ed25519");
    archive.add_source("stable", "contrib", "helper", "2");
    archive.publish();
    let upstream = Upstream::serve(archive.path());
    let site = Site::new(
        "ed25519",
        &archive.mirror_config(
            "mirror",
            &upstream.url,
            "mode = \"verbatim\"\nsources = true",
        ),
    );
    let out = site.ok(&["sync"]);
    assert!(out.contains("mirror: published"), "{out}");
    assert!(out.contains("and 1 source packages"), "{out}");
    for file in [
        "InRelease",
        "Release",
        "Release.gpg",
        "main/binary-amd64/Packages.xz",
        "contrib/binary-arm64/Packages.gz",
    ] {
        assert_eq!(
            std::fs::read(site.public("mirror").join("dists/stable").join(file)).unwrap(),
            std::fs::read(archive.path().join("dists/stable").join(file)).unwrap(),
            "{file} byte for byte"
        );
    }
    let server = site.serve();
    // Clients keep the upstream's key.
    let line = format!(
        "deb [signed-by={0}] {1}/apt/mirror stable main contrib\ndeb [signed-by={0}] {1}/apt/mirror stable-updates main contrib",
        archive.keyring.display(),
        server.url
    );
    let line = format!(
        "{line}\ndeb-src [signed-by={}] {}/apt/mirror stable contrib",
        archive.keyring.display(),
        server.url
    );
    let apt = Apt::new(&line, "amd64");
    apt.ok(&["update"]);
    apt.ok(&["download", "unrelated", "helper-alt", "app"]);
    apt.ok(&["source", "--download-only", "helper"]);
    assert!(!apt.downloaded("helper_2.tar.xz").is_empty());
    // `airlock verify` checks it with the upstream's key, as these clients do.
    let out = site.run(&["verify", "--url", &server.url, "--full"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let checked: usize = text
        .lines()
        .find(|l| l.starts_with("apt/mirror") && l.ends_with("ok"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    // Both suites' InRelease, their indices (and by-hash names), every pool file.
    assert!(checked > 20, "{text}");
    // The status page tells clients the same: the upstream's key, not the site's.
    let page = String::from_utf8(curl(&["-fsS", &format!("{}/", server.url)]).stdout).unwrap();
    assert!(
        page.contains("apt/mirror is a verbatim mirror, signed by its upstream's key"),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "deb [signed-by=/etc/apt/keyrings/mirror-upstream.gpg] {}/apt/mirror stable main contrib",
            server.url
        )),
        "{page}"
    );
    assert!(
        !page.contains("signed-by=/etc/apt/keyrings/airlock.gpg]"),
        "{page}"
    );
}

/// A mirror of one package (`base`, stable/main), synced and served: where the tests that
/// interrupt a later sync start.
fn served_one_package_mirror() -> (Archive, Upstream, Site, crate::common::Server) {
    let archive = Archive::new(
        "ed25519",
        &["stable"],
        &["main"],
        &["amd64"],
        &[pkg("stable", "main", "base", "1", "amd64", "")],
    );
    let upstream = Upstream::serve(archive.path());
    let site = Site::new(
        "ed25519",
        &archive.mirror_config("mirror", &upstream.url, ""),
    );
    site.ok(&["sync"]);
    let server = site.serve();
    (archive, upstream, site, server)
}

/// The mirror's InRelease as the server at `url` serves it.
fn inrelease(url: &str) -> Vec<u8> {
    curl(&["-fs", &format!("{url}/apt/mirror/dists/stable/InRelease")]).stdout
}

/// apt for the mirror's stable/main, served at `url`.
fn mirror_apt(site: &Site, url: &str) -> Apt {
    Apt::new(
        &format!(
            "deb [signed-by={}] {url}/apt/mirror stable main",
            site.keyring().display(),
        ),
        "amd64",
    )
}

#[test]
fn sigkill_during_sync_then_the_next_run_finishes_and_reuses() {
    use airlock_core::apt::deb::{Compression, DebBuilder};
    let (archive, upstream, site, server) = served_one_package_mirror();
    let old = inrelease(&server.url);

    // Upstream gains six packages of 1.2 MB of noise each (above the size fetched in one piece
    // into memory, so they stream to resumable partial files), served slowly.
    for i in 0..6 {
        let noise: Vec<u8> = (0..1_200_000u32)
            .map(|n| (n.wrapping_mul(2654435761).wrapping_add(i) >> 13) as u8)
            .collect();
        let control = format!(
            "Package: big{i}\nVersion: 1\nArchitecture: amd64\nMaintainer: T <t@example.invalid>\nDescription: big\n"
        );
        let deb = DebBuilder::new(control)
            .compression(Compression::None)
            .file("usr/share/big", noise)
            .build()
            .unwrap();
        archive.add_deb("stable", "main", &format!("big{i}_1_amd64.deb"), &deb);
    }
    upstream.throttle(32 * 1024, std::time::Duration::from_millis(20));
    upstream.take_requests();
    let mut sync = std::process::Command::new(AIRLOCK)
        .args([
            "--config",
            site.config().to_str().unwrap(),
            "sync",
            "--jobs",
            "2",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill it once some pool files are complete and others under way.
    let partial = site.path().join("data/store/partial");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let sizes: Vec<u64> = std::fs::read_dir(&partial)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok().map(|m| m.len()))
            .collect();
        if sizes.iter().filter(|s| **s > 1_200_000).count() >= 2
            // (Small complete files there are the compressed indices.)
            && sizes.iter().any(|s| *s > 100_000 && *s < 1_200_000)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "downloads never got under way: {sizes:?}"
        );
        if let Some(status) = sync.try_wait().unwrap() {
            let mut stderr = String::new();
            use std::io::Read;
            sync.stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("sync finished ({status}) before it could be killed: {stderr}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sync.kill().unwrap();
    sync.wait().unwrap();
    // Clients were, and still are, served the old state.
    assert_eq!(inrelease(&server.url), old);

    upstream.clear_faults();
    upstream.take_requests();
    let out = site.ok(&["sync"]);
    assert!(out.contains("mirror: published 7 packages"), "{out}");
    let requests = upstream.take_requests();
    let pool: Vec<&String> = requests.iter().filter(|r| r.starts_with("pool/")).collect();
    // Complete downloads were not fetched again, and the interrupted one resumed.
    assert!(pool.len() <= 4, "{pool:?}");
    assert!(pool.iter().any(|r| r.contains(" range=bytes=")), "{pool:?}");
    assert_ne!(inrelease(&server.url), old);
    let apt = mirror_apt(&site, &server.url);
    apt.ok(&["update"]);
    apt.ok(&[
        "download", "big0", "big1", "big2", "big3", "big4", "big5", "base",
    ]);
    // A mirror of whole indices publishes upstream's own compressed files (which apt just
    // read under the site's signature) instead of compressing the text again.
    let dists = "dists/stable/main/binary-amd64";
    let published = site.path().join("data/public/apt/mirror").join(dists);
    for name in ["Packages", "Packages.gz", "Packages.xz"] {
        assert!(
            std::fs::read(published.join(name)).unwrap()
                == std::fs::read(archive.path().join(dists).join(name)).unwrap(),
            "{name} differs from upstream's"
        );
    }
    let partial = std::fs::read_dir(&partial).unwrap().count();
    assert_eq!(partial, 0, "downloads left behind");
}

/// A sync writes its small downloads straight to their store names before its flush, listed
/// first in a journal. Killed (SIGKILL, by strace as it enters its first `syncfs`, the flush)
/// with the downloads named and unflushed, it leaves the journal; the bytes a power loss
/// would have lost are made so here (one blob emptied, one zeroed). The next writer checks
/// what the journal lists, removes the two damaged blobs and says so, the sync fetches only
/// those two again, and apt gets upstream's bytes.
#[test]
fn a_sync_killed_before_its_flush_has_its_unflushed_downloads_checked() {
    let (archive, upstream, site, server) = served_one_package_mirror();
    let old = inrelease(&server.url);
    const NEW: [&str; 5] = ["one", "two", "three", "four", "five"];
    for name in NEW {
        let pool = archive.path().join("pool/stable/main");
        dpkg_deb(&pool, name, "1", "amd64", "", "xz");
    }
    archive.publish();
    let pool_file = |name: &str| {
        archive
            .path()
            .join(format!("pool/stable/main/{name}_1_amd64.deb"))
    };
    let digest = |name: &str| {
        airlock_core::storage::Sha256::of(&std::fs::read(pool_file(name)).unwrap()).to_hex()
    };

    let killed = std::process::Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=syncfs"])
        .args(["-e", "inject=syncfs:signal=KILL:when=1"])
        .arg(AIRLOCK)
        .args(["--config", site.config().to_str().unwrap(), "sync"])
        .output()
        .unwrap();
    assert!(!killed.status.success(), "the sync was not killed");
    // Clients are served the old state; the downloads have their names, listed in a journal.
    assert_eq!(inrelease(&server.url), old);
    let journals = site.path().join("data/store/unflushed");
    let journal: Vec<String> = std::fs::read_dir(&journals)
        .unwrap()
        .flat_map(|j| {
            std::fs::read_to_string(j.unwrap().path())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let blobs = store_blobs(&site);
    for name in NEW {
        assert!(journal.contains(&digest(name)), "{name} is not journaled");
        assert!(blobs.contains_key(&digest(name)), "{name} is not stored");
    }
    let blob = |name: &str| {
        let hex = digest(name);
        site.path()
            .join("data/store/sha256")
            .join(&hex[..2])
            .join(hex)
    };
    let damage = |name: &str, bytes: Vec<u8>| {
        let path = blob(name);
        let mut permissions = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        permissions.set_readonly(false);
        std::fs::set_permissions(&path, permissions).unwrap();
        std::fs::write(&path, bytes).unwrap();
    };
    damage("two", Vec::new());
    damage(
        "four",
        vec![0; std::fs::metadata(pool_file("four")).unwrap().len() as usize],
    );
    // verify takes no lock: it tells the two apart from damage to the disk.
    let out = site.run(&["verify", "--offline"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert_eq!(said.matches("not flushed it yet").count(), 2, "{said}");

    upstream.take_requests();
    let out = site.run(&["sync"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("2 blobs written just before a crash were damaged"),
        "{stderr}"
    );
    assert!(stdout.contains("mirror: published 6 packages"), "{stdout}");
    let mut pool: Vec<String> = upstream
        .take_requests()
        .into_iter()
        .filter(|r| r.starts_with("pool/"))
        .collect();
    pool.sort();
    assert_eq!(
        pool,
        [
            "pool/stable/main/four_1_amd64.deb",
            "pool/stable/main/two_1_amd64.deb"
        ]
    );
    assert_eq!(std::fs::read_dir(&journals).unwrap().count(), 0);
    assert_ne!(inrelease(&server.url), old);
    let apt = mirror_apt(&site, &server.url);
    apt.ok(&["update"]);
    apt.ok(&["download", "one", "two", "three", "four", "five"]);
    for name in NEW {
        assert!(
            apt.downloaded(&format!("{name}_1_amd64.deb"))
                == std::fs::read(pool_file(name)).unwrap(),
            "{name}: apt got other bytes than upstream's"
        );
    }
    let out = site.run(&["verify", "--offline"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A whole mirror publishes upstream's compressed indices only where it can: a component
/// with nothing in it (its empty Packages.xz the same bytes as its empty Sources.xz, one
/// download for both), a Packages.xz the Release lists but the upstream does not serve, an
/// index whose plain text the Release does not list. The sync succeeds, apt reads the
/// result, and no download is left behind.
#[test]
fn whole_mirror_takes_upstream_indices_only_where_it_can() {
    let archive = Archive::new(
        "ed25519",
        &["stable"],
        &["main", "contrib", "non-free"],
        &["amd64"],
        &[
            pkg("stable", "main", "base", "1", "amd64", ""),
            pkg("stable", "non-free", "blob", "1", "amd64", ""),
        ],
    );
    let dists = archive.path().join("dists/stable");
    std::fs::remove_file(dists.join("non-free/binary-amd64/Packages")).unwrap();
    archive.relist("stable");
    let upstream = Upstream::serve(archive.path());
    upstream.fault("dists/stable/main/binary-amd64/Packages.xz", Fault::Hide);
    let site = Site::new(
        "ed25519",
        &archive.mirror_config("mirror", &upstream.url, "sources = true"),
    );
    let out = site.run(&["sync"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("main/binary-amd64/Packages.xz: HTTP 404")
            && said.contains("that index is compressed here instead"),
        "{said}"
    );
    let left = std::fs::read_dir(site.path().join("data/store/partial"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "downloads left behind");
    let published = site.path().join("data/public/apt/mirror/dists/stable");
    let same = |file: &str| {
        std::fs::read(published.join(file)).unwrap() == std::fs::read(dists.join(file)).unwrap()
    };
    assert!(same("main/binary-amd64/Packages.gz"));
    assert!(!same("main/binary-amd64/Packages.xz"), "compressed here");
    assert!(same("contrib/binary-amd64/Packages.xz") && same("contrib/source/Sources.xz"));
    assert!(
        !same("non-free/binary-amd64/Packages.xz"),
        "compressed here"
    );
    let server = site.serve();
    let apt = Apt::new(
        &format!(
            "deb [signed-by={}] {}/apt/mirror stable main contrib non-free",
            site.keyring().display(),
            server.url
        ),
        "amd64",
    );
    apt.ok(&["update"]);
    apt.ok(&["download", "base", "blob"]);
}

/// `[[apt.publish]]`: one signed suite made of a filtered mirror's two suites and a local
/// repo, which apt installs from with one sources.list line.
#[test]
fn combined_suite_serves_mirror_and_local_packages() {
    let archive = archive("ed25519");
    let upstream = Upstream::serve(archive.path());
    let config = format!(
        "{}\n[[apt.repo]]\nname = \"local\"\nsuites = [\"site\"]\ncomponents = [\"local\"]\narchitectures = [\"amd64\", \"arm64\"]\n\n[[apt.publish]]\nname = \"maas\"\nsuites = {{ stable = [\"local/site\", \"mirror/stable\", \"mirror/stable-updates\"] }}\n",
        archive.mirror_config("mirror", &upstream.url, "packages = [\"app\"]")
    );
    let site = Site::new("ed25519", &config);
    // The local repo is not published yet: the combined suite waits for it.
    let out = site.run(&["sync"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("local is not published yet"), "{stderr}");
    assert!(!site.public("maas").exists());

    let debs = site.path().join("debs");
    dpkg_deb(&debs, "site-tool", "1.0", "all", "Depends: app\n", "xz");
    site.include("site", "local", &debs);
    let out = site.ok(&["publish"]);
    assert!(
        out.contains("maas/stable: published (16 packages)"),
        "{out}"
    );

    let server = site.serve();
    let line = format!(
        "deb [signed-by={}] {}/apt/maas stable local main contrib",
        site.keyring().display(),
        server.url
    );
    let apt = Apt::new(&line, "arm64");
    apt.ok(&["update"]);
    apt.ok(&["install", "--download-only", "-y", "site-tool"]);
    let mut fetched: Vec<String> = std::fs::read_dir(apt.dir.path().join("cache/archives"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".deb"))
        .collect();
    fetched.sort();
    assert_eq!(
        fetched,
        [
            "app_1.0_arm64.deb",
            "data-common_1_all.deb",
            "helper_2_all.deb",
            // The newer libfoo, from the mirror's stable-updates.
            "libfoo_1.1_arm64.deb",
            "postfix_3_arm64.deb",
            "python3_3.11_arm64.deb",
            "site-tool_1.0_all.deb",
        ]
    );
    let release =
        std::fs::read_to_string(site.public("maas").join("dists/stable/Release")).unwrap();
    assert!(
        release.contains("Components: local main contrib\n"),
        "{release}"
    );
    assert!(
        release.contains("Architectures: amd64 arm64\n"),
        "{release}"
    );

    // Nothing changed: nothing is re-signed, by publish or by sync.
    let inrelease = std::fs::read(site.public("maas").join("dists/stable/InRelease")).unwrap();
    assert!(site.ok(&["publish"]).contains("maas: nothing changed"));
    assert!(site.ok(&["sync"]).contains("maas: nothing changed"));
    assert_eq!(
        std::fs::read(site.public("maas").join("dists/stable/InRelease")).unwrap(),
        inrelease
    );
}

/// `sources = true`: the sources of the mirrored binaries (by name and version, across
/// suites), fetched through a real `apt-get source`; sources nobody needs stay upstream.
#[test]
fn sources_follow_the_mirrored_binaries() {
    let archive = archive("ed25519");
    archive.add_source("stable", "main", "app", "1.0");
    archive.add_source("stable-updates", "main", "libfoo", "1.1");
    archive.add_source("stable", "main", "unrelated", "1");
    archive.publish();
    let upstream = Upstream::serve(archive.path());
    let site = Site::new(
        "ed25519",
        &archive.mirror_config(
            "mirror",
            &upstream.url,
            "packages = [\"app\"]\nsources = true",
        ),
    );
    let out = site.run(&["sync"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("and 2 source packages"), "{stdout}");
    // Binaries whose source the upstream does not carry are named.
    assert!(
        stderr.contains("source package postfix 3 of mirrored binaries is in no Sources index"),
        "{stderr}"
    );

    let server = site.serve();
    let line = format!(
        "deb-src [signed-by={0}] {1}/apt/mirror stable main\ndeb-src [signed-by={0}] {1}/apt/mirror stable-updates main",
        site.keyring().display(),
        server.url
    );
    let apt = Apt::new(&line, "amd64");
    apt.ok(&["update"]);
    for (package, files) in [
        ("app", ["app_1.0.dsc", "app_1.0.tar.xz"]),
        ("libfoo", ["libfoo_1.1.dsc", "libfoo_1.1.tar.xz"]),
    ] {
        apt.ok(&["source", "--download-only", package]);
        for file in files {
            let ours = apt.downloaded(file);
            let theirs = std::fs::read(archive.path().join(format!(
                "pool/{}/main/{file}",
                if package == "app" {
                    "stable"
                } else {
                    "stable-updates"
                }
            )))
            .unwrap();
            assert_eq!(ours, theirs, "{file}");
        }
    }
    let (ok, text) = apt.run(&["source", "--download-only", "unrelated"]);
    assert!(!ok, "{text}");
}
