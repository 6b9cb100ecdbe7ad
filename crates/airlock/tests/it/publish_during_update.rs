//! Clients updating while the repo is republished never see an error: apt-get update and
//! apt-get download run in loops while new versions are included and published.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::site::local_repo;
use crate::common::{Apt, Site, dpkg_deb};
use airlock_core::apt::deb::DebBuilder;

const PUBLISHES: u32 = 12;

#[test]
fn apt_update_loop_sees_no_error_during_publishes() {
    let site = Site::new("ed25519", &local_repo(Some("1d")));
    // Bulk, so that each update transfers indices large enough to straddle a publish.
    let bulk = site.path().join("bulk");
    std::fs::create_dir_all(&bulk).unwrap();
    for i in 0..300 {
        let control = format!(
            "Package: bulk{i}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: T <t@example.invalid>\nDescription: filler {i}\n {}\n",
            "padding ".repeat(40)
        );
        let deb = DebBuilder::new(control)
            .file("usr/share/doc/x", format!("{i}"))
            .build()
            .unwrap();
        std::fs::write(bulk.join(format!("bulk{i}.deb")), deb).unwrap();
    }
    site.include("stable", "main", &bulk);
    let debs = site.path().join("debs");
    let first = dpkg_deb(&debs, "tool", "1", "amd64", "", "gzip");
    site.include("stable", "main", &first);
    site.ok(&["publish"]);

    let server = site.serve();
    let line = format!(
        "deb [signed-by={}] {}/apt/local stable main",
        site.keyring().display(),
        server.url
    );
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (line, stop) = (line.clone(), stop.clone());
            std::thread::spawn(move || {
                let apt = Apt::new(&line, "amd64");
                let mut rounds = 0;
                let mut failures = Vec::new();
                let mut seen_versions = std::collections::BTreeSet::new();
                while !stop.load(Ordering::Relaxed) {
                    let (ok, text) = apt.run(&["update"]);
                    if !ok {
                        failures.push(text);
                        continue;
                    }
                    // Download what this update listed, even if a publish replaced it since.
                    let (ok, text) = apt.run(&["download", "tool"]);
                    if !ok {
                        failures.push(text);
                    }
                    for entry in std::fs::read_dir(apt.dir.path().join("download")).unwrap() {
                        seen_versions
                            .insert(entry.unwrap().file_name().to_string_lossy().into_owned());
                    }
                    rounds += 1;
                }
                (rounds, failures, seen_versions)
            })
        })
        .collect();

    for version in 2..=PUBLISHES {
        let deb = dpkg_deb(&debs, "tool", &version.to_string(), "amd64", "", "xz");
        site.include("stable", "main", &deb);
        site.ok(&["publish"]);
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    stop.store(true, Ordering::Relaxed);

    let mut total_rounds = 0;
    let mut versions = std::collections::BTreeSet::new();
    for client in clients {
        let (rounds, failures, seen) = client.join().unwrap();
        assert!(
            failures.is_empty(),
            "{} failed rounds, first:\n{}",
            failures.len(),
            failures[0]
        );
        total_rounds += rounds;
        versions.extend(seen);
    }
    // The loops really overlapped the publishes: they saw several of the versions go by.
    assert!(total_rounds >= 6, "only {total_rounds} rounds ran");
    assert!(versions.len() >= 3, "clients saw only {versions:?}");
    let (status, _) = server.stop();
    assert!(status.success());
}
