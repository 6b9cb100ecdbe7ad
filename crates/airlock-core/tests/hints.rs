//! A hint survives every wrapper: an error wrapped by another domain's error (transparent
//! wrappers hide it from the `source()` chain) still offers its fix.

use std::io;
use std::path::PathBuf;

use airlock_core::apt::AptError;
use airlock_core::apt::mirror::MirrorError;
use airlock_core::bundle::BundleError;
use airlock_core::gc::GcError;
use airlock_core::hint::Hint;
use airlock_core::snap::SnapError;
use airlock_core::storage::StorageError;

fn unknown_repo() -> AptError {
    AptError::UnknownRepo {
        repo: "nope".into(),
        known: "local".into(),
        config: PathBuf::from("airlock.toml"),
    }
}

fn disk_full() -> StorageError {
    StorageError::Write {
        path: PathBuf::from("data/store/tmp/x"),
        source: io::Error::from(io::ErrorKind::StorageFull),
    }
}

#[test]
fn wrappers_pass_the_inner_hint_on() {
    let repo = unknown_repo().hint();
    assert!(repo.is_some_and(|h| h.contains("[[apt.repo]]")), "{repo:?}");
    assert_eq!(MirrorError::Apt(unknown_repo()).hint(), repo);
    assert_eq!(BundleError::Apt(unknown_repo()).hint(), repo);
    assert_eq!(GcError::Apt(unknown_repo()).hint(), repo);

    let full = disk_full().hint();
    assert!(full.is_some_and(|h| h.contains("airlock gc")), "{full:?}");
    assert_eq!(AptError::Storage(disk_full()).hint(), full);
    assert_eq!(
        MirrorError::Apt(AptError::Storage(disk_full())).hint(),
        full
    );
    assert_eq!(BundleError::Storage(disk_full()).hint(), full);
    assert_eq!(GcError::Snap(SnapError::Storage(disk_full())).hint(), full);
}

#[test]
fn snap_errors_have_hints() {
    let refused = SnapError::Refused {
        path: PathBuf::from("hello_1.snap"),
        reason: "no snap-revision".into(),
    };
    assert!(refused.hint().is_some_and(|h| h.contains(".assert")));
    assert_eq!(
        GcError::Snap(refused).hint().map(|h| h.contains(".assert")),
        Some(true)
    );
}

#[test]
fn a_bad_deb_keeps_its_hint_and_the_name_given() {
    use airlock_core::apt::deb::DebError;
    let staged = DebError::NotDeb {
        path: PathBuf::from("data/store/tmp/staged"),
        reason: "not an ar archive".into(),
    };
    let error = AptError::Deb(staged.at(std::path::Path::new("given.deb")));
    assert_eq!(
        error.to_string(),
        "given.deb is not a Debian package: not an ar archive"
    );
    assert!(error.hint().is_some_and(|h| h.contains("dpkg-deb")));
}

/// Each error of a chain says only its own part: no message repeats its source's text.
#[test]
fn a_chain_says_each_part_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("airlock.key");
    std::fs::write(&key, "this is not a key\n").unwrap();
    let error = airlock_core::openpgp::SiteKey::load(&key).unwrap_err();
    let mut texts = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(&error);
    while let Some(e) = next {
        texts.push(e.to_string());
        next = e.source();
    }
    assert!(texts.len() >= 2, "{texts:?}");
    assert!(
        texts[0].contains("is not an OpenPGP secret key"),
        "{texts:?}"
    );
    for (i, outer) in texts.iter().enumerate() {
        for inner in &texts[i + 1..] {
            assert!(
                !outer.contains(inner.as_str()),
                "{outer:?} repeats {inner:?}"
            );
        }
    }
}
