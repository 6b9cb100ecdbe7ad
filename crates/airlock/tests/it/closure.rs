//! The closure of a filtered mirror against apt itself, on Debian's real index: this machine's
//! bookworm main/amd64 Packages (what `apt-get update` leaves in /var/lib/apt/lists), every
//! stanza kept but for Size, MD5sum and SHA256, which describe one small synthetic pool file.
//! For each target set, `apt-get install --simulate --no-install-recommends` with nothing
//! installed plans from the full archive; every package of that plan must be in the mirror,
//! and apt must plan the same from the mirror alone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use md5::Digest;

use crate::common::upstream::{Archive, Pkg, Upstream, pkg};
use crate::common::{Apt, Site};

/// (mirror name, targets).
const SETS: &[(&str, &[&str])] = &[
    ("squid", &["squid"]),
    ("django", &["python3-django"]),
    ("base-files", &["base-files"]),
    ("default-mta", &["default-mta"]),
    ("openssh", &["openssh-server"]),
    ("nginx", &["nginx"]),
    (
        "server",
        &[
            "openssh-server",
            "nginx",
            "postgresql",
            "squid",
            "python3-django",
            "chrony",
            "rsyslog",
            "sudo",
            "curl",
            "vim-tiny",
            "less",
            "bind9",
            "default-mta",
        ],
    ),
];

const BLOB: &[u8] = b"a synthetic pool file\n";

/// The Packages index of Debian's main/amd64 that apt-get update left on this machine.
fn debian_index() -> String {
    let lists = Path::new("/var/lib/apt/lists");
    let mut found: Vec<PathBuf> = std::fs::read_dir(lists)
        .unwrap_or_else(|e| panic!("{}: {e}", lists.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            // bookworm's own suite, not -updates, -security or -backports.
            name.contains("_debian_dists_bookworm_main_binary-amd64_Packages")
        })
        .collect();
    found.sort();
    let Some(path) = found.first() else {
        panic!(
            "no Debian bookworm main/amd64 Packages index in {}: this test needs the real \
             index; run `apt-get update` with bookworm's main in the sources (.ci/run does)",
            lists.display()
        )
    };
    // apt-helper reads every compression apt writes its lists in (lz4, xz, gz, none).
    let out = Command::new("/usr/lib/apt/apt-helper")
        .arg("cat-file")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "apt-helper cat-file {}",
        path.display()
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let count = text.matches("\nPackage: ").count() + 1;
    assert!(count > 50_000, "{}: only {count} packages", path.display());
    text
}

/// The stanzas with Size, MD5sum and SHA256 of [`BLOB`].
fn synthetic(text: &str) -> String {
    let size = BLOB.len().to_string();
    let md5 = hex::encode(md5::Md5::digest(BLOB));
    let sha256 = hex::encode(sha2::Sha256::digest(BLOB));
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        match line.split_once(": ").map_or(line, |(key, _)| key) {
            "Size" => out.push_str(&format!("Size: {size}")),
            "MD5sum" => out.push_str(&format!("MD5sum: {md5}")),
            "SHA256" => out.push_str(&format!("SHA256: {sha256}")),
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// An upstream archive of Debian's index; its server answers every pool path with [`BLOB`].
fn debian_archive() -> (Archive, Upstream) {
    let archive = Archive::new("ed25519", &["bookworm"], &["main"], &["amd64"], &[]);
    let dir = archive.path().join("dists/bookworm/main/binary-amd64");
    for stale in ["Packages.xz", "Packages.gz", "by-hash"] {
        let path = dir.join(stale);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir_all(&path);
    }
    std::fs::write(dir.join("Packages"), synthetic(&debian_index())).unwrap();
    // A quarter of the bytes to serve to each mirror's sync; fast to make at level 1.
    let gzip = Command::new("gzip")
        .args(["-1", "-k"])
        .arg(dir.join("Packages"))
        .status()
        .unwrap();
    assert!(gzip.success());
    archive.relist("bookworm");
    let upstream = Upstream::serve(archive.path());
    upstream.any_pool_file(BLOB);
    (archive, upstream)
}

/// The names apt would install (`Inst NAME (...)` lines of a simulation).
fn plan(apt: &Apt, targets: &[&str]) -> BTreeSet<String> {
    let mut args = vec!["install", "--simulate", "--no-install-recommends", "-q"];
    args.extend(targets);
    let out = apt.ok(&args);
    let planned: BTreeSet<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("Inst ")?.split(' ').next())
        .map(str::to_string)
        .collect();
    assert!(!planned.is_empty(), "{out}");
    planned
}

/// The package names a mirror's published index holds.
fn mirrored(site: &Site, mirror: &str) -> BTreeSet<String> {
    mirrored_in(site, mirror, "bookworm")
}

fn mirrored_in(site: &Site, mirror: &str, suite: &str) -> BTreeSet<String> {
    let index = site
        .public(mirror)
        .join(format!("dists/{suite}/main/binary-amd64/Packages"));
    std::fs::read_to_string(&index)
        .unwrap_or_else(|e| panic!("{}: {e}", index.display()))
        .lines()
        .filter_map(|l| l.strip_prefix("Package: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn mirror_holds_what_apt_installs_from_debians_index() {
    let (archive, upstream) = debian_archive();
    let full = Apt::new(
        &format!(
            "deb [signed-by={}] {} bookworm main",
            archive.keyring.display(),
            upstream.url
        ),
        "amd64",
    );
    full.ok(&["update"]);

    // One sync, one mirror per target set.
    let config: String = SETS
        .iter()
        .map(|(name, targets)| {
            archive.mirror_config(name, &upstream.url, &format!("packages = {targets:?}"))
        })
        .collect();
    let site = Site::new("ed25519", &config);
    upstream.take_requests();
    let out = site.ok(&["sync"]);
    assert!(
        out.contains("default-mta: default-mta -> exim4-daemon-light"),
        "{out}"
    );
    // The index is fetched and read once for all the mirrors.
    let fetched = upstream
        .take_requests()
        .iter()
        .filter(|r| r.contains("binary-amd64/Packages"))
        .count();
    assert_eq!(fetched, 1);

    let server = site.serve();
    let mut report = Vec::new();
    for (name, targets) in SETS {
        let wanted = plan(&full, targets);
        let held = mirrored(&site, name);
        let missing: Vec<&String> = wanted.difference(&held).collect();
        assert!(
            missing.is_empty(),
            "{name}: apt installs {missing:?}, which the mirror lacks"
        );
        // apt resolves the targets from the mirror alone, to the same packages.
        let apt = Apt::new(
            &format!(
                "deb [signed-by={}] {}/apt/{name} bookworm main",
                site.keyring().display(),
                server.url
            ),
            "amd64",
        );
        apt.ok(&["update"]);
        assert_eq!(plan(&apt, targets), wanted, "{name}");
        let extra: Vec<&String> = held.difference(&wanted).collect();
        report.push(format!(
            "{name}: apt installs {}, the mirror holds {} more: {extra:?}",
            wanted.len(),
            extra.len()
        ));
    }
    // The figures docs/mirrors.md gives (cargo test -- --nocapture shows them).
    eprintln!("{}", report.join("\n"));

    // The issue's cases, by name.
    let squid = mirrored(&site, "squid");
    assert!(squid.contains("cron") && !squid.contains("systemd-sysv"));
    // python3-django brings python3-asgiref, whose first alternative apt takes.
    let django = mirrored(&site, "django");
    assert!(django.contains("python3-asgiref") && django.contains("python3-typing-extensions"));
    let base = mirrored(&site, "base-files");
    assert!(base.contains("mawk") && !base.contains("gawk"));
    assert!(mirrored(&site, "default-mta").contains("exim4-daemon-light"));

    // The decisions, as an operator asks for them.
    let out = site.ok(&["sync", "squid", "--explain", "cron"]);
    assert!(
        out.contains("squid: cron is in the mirror (amd64):")
            && out.contains("cron: logrotate ")
            && out.contains(" Depends: cron | anacron | cron-daemon | systemd-sysv")
            && out.contains("squid: named in packages"),
        "{out}"
    );
    drop(server);
}

const SMALL: &[Pkg] = &[
    pkg(
        "stable",
        "main",
        "app",
        "1",
        "amd64",
        "Depends: helper | helper-alt, mail-transport-agent\n",
    ),
    pkg("stable", "main", "helper", "1", "all", ""),
    pkg("stable", "main", "helper-alt", "1", "all", ""),
    pkg(
        "stable",
        "main",
        "postfix",
        "1",
        "amd64",
        "Provides: mail-transport-agent\nPriority: optional\n",
    ),
    pkg(
        "stable",
        "main",
        "exim4-daemon-light",
        "1",
        "amd64",
        "Provides: mail-transport-agent, default-mta\nPriority: standard\n",
    ),
];

#[test]
fn a_name_that_matches_nothing_stops_the_sync_and_all_takes_every_alternative() {
    let archive = Archive::new("ed25519", &["stable"], &["main"], &["amd64"], SMALL);
    let upstream = Upstream::serve(archive.path());
    let mirror = |packages: &str, extra: &str| {
        archive.mirror_config(
            "m",
            &upstream.url,
            &format!("packages = {packages}\n{extra}"),
        )
    };
    let site = Site::new("ed25519", &mirror(r#"["app", "nothing-*"]"#, ""));
    let out = site.run(&["sync"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"m: no package matches "nothing-*""#),
        "{stderr}"
    );
    let index = site
        .public("m")
        .join("dists/stable/main/binary-amd64/Packages");
    let names = || names_of(&site);
    // apt's choice: the first alternative, the provider of the highest Priority.
    assert_eq!(
        names(),
        BTreeSet::from(["app".into(), "helper".into(), "exim4-daemon-light".into()])
    );
    let good = std::fs::read(&index).unwrap();
    let out = site.ok(&["sync", "--explain", "helper-alt"]);
    assert!(
        out.contains("m: helper-alt is not in the mirror (amd64)\n  app 1 Depends: helper | helper-alt: helper was taken\n"),
        "{out}"
    );
    // With --json, stdout is the document alone; the explanation is in the mirror's report.
    let out = site.ok(&["sync", "--json", "--explain", "helper-alt"]);
    let synced: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        synced["mirrors"][0]["explanation"][1]["package"], "helper-alt",
        "{out}"
    );

    // A typo stops the sync before anything is published; the good tree stays.
    std::fs::write(
        site.config(),
        std::fs::read_to_string(site.config())
            .unwrap()
            .replace(r#"["app", "nothing-*"]"#, r#"["app", "ap"]"#),
    )
    .unwrap();
    let out = site.run(&["sync"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            r#"mirror "m": no package or virtual package is named ap; nothing was published"#
        ) && stderr.contains("correct or remove the name"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&index).unwrap(), good);

    // Every alternative and every provider, and a virtual name resolved.
    let site = Site::new(
        "ed25519",
        &mirror(r#"["app", "default-mta"]"#, "alternatives = \"all\""),
    );
    let out = site.ok(&["sync"]);
    assert!(
        out.contains("m: default-mta -> exim4-daemon-light"),
        "{out}"
    );
    assert_eq!(
        names_of(&site),
        BTreeSet::from(
            [
                "app",
                "helper",
                "helper-alt",
                "postfix",
                "exim4-daemon-light"
            ]
            .map(String::from)
        )
    );
    let out = site.ok(&["sync", "--explain", "helper-alt"]);
    assert!(
        out.contains("m: helper-alt is in the mirror (amd64):\n  helper-alt: app 1 Depends: helper | helper-alt\n  app: named in packages"),
        "{out}"
    );
}

fn names_of(site: &Site) -> BTreeSet<String> {
    mirrored_in(site, "m", "stable")
}
