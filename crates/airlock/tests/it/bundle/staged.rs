//! What an interrupted import staged: reused by the next run, removed once abandoned for two
//! weeks.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use airlock_core::storage::Sha256;

use super::{
    export, import, imported_counts, manifest, present, random_deb, served_packages, sha256_file,
    trusting,
};
use crate::common::site::LOCAL;
use crate::common::{AIRLOCK, Apt, Site, assert_store_sound, write_aged};

#[test]
fn import_killed_with_sigkill_completes_on_rerun() {
    let work = tempfile::tempdir().unwrap();
    let debs = work.path().join("debs");
    let a = Site::new("ed25519", LOCAL);
    a.include("stable", "main", &random_deb(&debs, "seed", "1.0", 1_000));
    a.ok(&["publish"]);
    let first = work.path().join("first");
    export(&a, &first, &[]);
    let b = Site::new("ed25519", &format!("{LOCAL}{}", trusting(&a)));
    import(&b, &first);
    let old = served_packages(&b, "local").unwrap();
    assert_eq!(old, BTreeSet::from(["seed 1.0".to_string()]));

    // 40 MiB of incompressible packages, in volumes of 4 MiB, on top of the first bundle.
    let big = work.path().join("big");
    for i in 0..40 {
        random_deb(&big, &format!("big-{i}"), "1.0", 1 << 20);
    }
    a.ok(&[
        "apt",
        "include",
        "local",
        "stable",
        "main",
        big.to_str().unwrap(),
    ]);
    a.ok(&["publish"]);
    let second = work.path().join("second");
    let since = first.join("manifest.json");
    export(
        &a,
        &second,
        &["--since", since.to_str().unwrap(), "--split", "4M"],
    );
    let manifest = manifest(&second);
    assert!(
        manifest["volumes"].as_array().unwrap().len() >= 10,
        "{}",
        manifest["volumes"]
    );
    let mut new = old.clone();
    new.extend((0..40).map(|i| format!("big-{i} 1.0")));
    let total = manifest["blobs"].as_array().unwrap().len() as u64;
    let present_at_start = present(&b, &manifest);

    // Killed at increasing delays until a run gets to the end by itself.
    let mut delay = Duration::from_millis(10);
    let mut interrupted = 0;
    let (output, present_before) = loop {
        let present_before = present(&b, &manifest);
        let log = work.path().join(format!("import-{interrupted}.out"));
        let mut child = Command::new(AIRLOCK)
            .arg("--config")
            .arg(b.config())
            .args(["import", second.to_str().unwrap()])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.signal() != Some(9) {
            assert!(status.success(), "import failed: {status}");
            break (std::fs::read_to_string(&log).unwrap(), present_before);
        }
        interrupted += 1;
        // Nothing half-published: the old tree whole, or the new one whole.
        let served = served_packages(&b, "local").expect("local stays published");
        assert!(
            served == old || served == new,
            "after a kill at {delay:?}: {served:?}"
        );
        assert!(interrupted < 30, "the import never finished");
        delay = delay * 3 / 2;
    };
    eprintln!(
        "{interrupted} runs killed; the last started with {present_before} of {total} blobs here ({present_at_start} before the first)"
    );
    assert!(interrupted >= 3, "only {interrupted} runs were killed");
    // What the killed runs staged was kept, and the last run did not read it again.
    assert!(
        present_before > present_at_start,
        "no killed run left a verified blob staged"
    );
    let (new_blobs, here) = imported_counts(&output);
    assert_eq!(
        (new_blobs, here),
        (total - present_before, present_before),
        "{output}"
    );
    assert_eq!(served_packages(&b, "local"), Some(new));
    assert_store_sound(&b);

    // apt-get reads the result.
    let server = b.serve();
    let apt = Apt::new(
        &format!(
            "deb [signed-by={}] {}/apt/local stable main",
            b.keyring().display(),
            server.url
        ),
        "amd64",
    );
    apt.ok(&["update"]);
    apt.ok(&["download", "big-7", "seed"]);
    assert_eq!(
        apt.downloaded("big-7_1.0_amd64.deb"),
        std::fs::read(big.join("big-7_1.0_amd64.deb")).unwrap()
    );
}

/// What an abandoned import staged leaves after two weeks, at the next import; a blob staged
/// recently (a bundle whose other volumes are on their way) stays, and so does an old one the
/// bundle being imported lists (it is used, not read again).
#[test]
fn abandoned_staged_blobs_leave_after_two_weeks() {
    let work = tempfile::tempdir().unwrap();
    let a = Site::new("ed25519", LOCAL);
    let seed = random_deb(&work.path().join("debs"), "seed", "1.0", 1_000);
    a.include("stable", "main", &seed);
    a.ok(&["publish"]);
    let bundle = work.path().join("bundle");
    export(&a, &bundle, &[]);
    let b = Site::new("ed25519", &format!("{LOCAL}{}", trusting(&a)));
    let staged = b.path().join("data/store/import");
    std::fs::create_dir_all(&staged).unwrap();
    let stage = |bytes: &[u8], days: u64| {
        let path = staged.join(Sha256::of(bytes).to_hex());
        write_aged(&path, bytes, Duration::from_secs(days * 86_400));
        path
    };
    let abandoned = stage(b"staged by an import abandoned three weeks ago", 21);
    let recent = stage(b"staged yesterday, the rest of its bundle on its way", 1);
    let listed = stage(&std::fs::read(&seed).unwrap(), 21);
    // `import` checks that the summary counts the staged seed as already here.
    import(&b, &bundle);
    assert!(!abandoned.exists());
    assert!(recent.exists());
    assert!(!listed.exists(), "the listed blob moved into the store");
    assert!(
        b.path()
            .join("data/store/sha256")
            .join(&sha256_file(&seed)[..2])
            .join(sha256_file(&seed))
            .exists()
    );
    assert_eq!(
        served_packages(&b, "local"),
        Some(BTreeSet::from(["seed 1.0".to_string()]))
    );
}
