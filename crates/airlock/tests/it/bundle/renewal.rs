//! An imported mirror between bundles: publish renews its Release.

use std::collections::BTreeMap;

use super::{export, import, trusting};
use crate::common::upstream::{Archive, Upstream, pkg};
use crate::common::{Apt, Site, gpgv};

/// On the air-gapped side no sync renews an imported mirror: `airlock publish` signs its
/// Release again once half its validity is gone, so apt keeps working past the Valid-Until
/// it was imported with, until the next bundle comes.
#[test]
fn publish_keeps_an_imported_mirror_valid() {
    let work = tempfile::tempdir().unwrap();
    let archive = Archive::new(
        "ed25519",
        &["stable"],
        &["main"],
        &["amd64"],
        &[pkg("stable", "main", "app", "1.0", "amd64", "")],
    );
    let upstream = Upstream::serve(archive.path());
    // Beside it, a verbatim mirror of the same upstream: its signature is the upstream's,
    // which B cannot renew, so publish leaves it alone.
    let a = Site::new(
        "ed25519",
        &format!(
            "{}{}",
            archive.mirror_config("mirror", &upstream.url, ""),
            archive.mirror_config("verbatim", &upstream.url, "mode = \"verbatim\"")
        ),
    );
    a.ok(&["sync"]);
    let bundle = work.path().join("bundle");
    export(&a, &bundle, &[]);
    // B names the mirror (it never syncs it) with a validity of 12 s: half of it is the time
    // each step below has, on a loaded machine too.
    let period = 12;
    let b = Site::new(
        "ed25519",
        &format!(
            "{}{}",
            archive.mirror_config(
                "mirror",
                "http://192.0.2.1/unused",
                &format!("valid_for = \"{period}s\"")
            ),
            trusting(&a)
        ),
    );
    import(&b, &bundle);
    let release = |b: &Site| {
        let text =
            std::fs::read_to_string(b.public("mirror").join("dists/stable/Release")).unwrap();
        let field = |name: &str| {
            let value = text
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("no {name} in {text}"));
            let time = jiff::fmt::rfc2822::parse(value).unwrap().timestamp();
            time.as_second()
        };
        (field("Date"), field("Valid-Until"))
    };
    let (date, until) = release(&b);
    assert_eq!(until - date, period);

    // Less than half the validity gone: nothing to do.
    let out = b.ok(&["publish"]);
    assert!(
        out.contains("mirror/stable: unchanged (1 packages") && !out.contains("verbatim"),
        "{out}"
    );
    let verbatim = b.snapshot();
    assert_eq!(release(&b), (date, until));
    // A name that is neither a repo nor an imported mirror is refused, naming both kinds.
    let out = b.run(&["publish", "nosuch"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("no repo named \"nosuch\"")
            && stderr.contains("(imported: mirror, verbatim)"),
        "{stderr}"
    );

    // Past half of it: signed again, valid for another period from now.
    sleep_until(date + period / 2 + 1);
    let out = b.ok(&["publish", "mirror"]);
    assert!(
        out.contains("mirror/stable: published (1 packages, valid until"),
        "{out}"
    );
    let (new_date, new_until) = release(&b);
    assert!(
        new_date > date && new_until == new_date + period,
        "{new_date} {new_until}"
    );
    let inrelease = b.public("mirror").join("dists/stable/InRelease");
    let (ok, text) = gpgv(&b.keyring(), &[&inrelease]);
    assert!(ok, "{text}");
    let out = b.ok(&["publish"]);
    assert!(!out.contains("verbatim"), "{out}");
    let verbatim_files = |snapshot: &BTreeMap<String, Vec<u8>>| {
        snapshot
            .iter()
            .filter(|(path, _)| path.contains("/verbatim"))
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect::<Vec<_>>()
    };
    assert!(!verbatim_files(&verbatim).is_empty());
    assert_eq!(verbatim_files(&b.snapshot()), verbatim_files(&verbatim));

    // After the Valid-Until it was imported with, apt (checking it) still updates and installs.
    sleep_until(until + 1);
    let server = b.serve();
    let apt = Apt::new(
        &format!(
            "deb [signed-by={}] {}/apt/mirror stable main",
            b.keyring().display(),
            server.url
        ),
        "amd64",
    );
    apt.ok(&["update"]);
    apt.ok(&["download", "app"]);
}

/// Sleeps until the Unix time `second` has begun.
fn sleep_until(second: i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let target = std::time::Duration::from_secs(second as u64);
    if let Some(wait) = target.checked_sub(now) {
        std::thread::sleep(wait);
    }
}
