//! Upgrades and backups (issue 16 item 6). The data folder carries its format version: an
//! older folder is upgraded in place, a newer one refused by name with both versions. `airlock
//! backup` copies the data folder with its hard links under the site lock while `serve` keeps
//! serving; the copy, restored at another path, passes `verify --offline`.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::site::local_repo;
use crate::common::{Site, curl, dpkg_deb};

/// Every entry below `root` (the lock file left out): its kind, its link count, its content
/// or link target, and which entries share an inode (by the first path naming it).
fn layout(root: &Path) -> BTreeMap<String, String> {
    fn walk(
        root: &Path,
        dir: &Path,
        inodes: &mut BTreeMap<u64, String>,
        out: &mut BTreeMap<String, String>,
    ) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.strip_prefix(root).unwrap().display().to_string();
            // The lock is not copied; the server's request counters are rewritten while it
            // serves (every few seconds), so they differ between any two moments.
            if name == "lock" || name.starts_with("state/status") {
                continue;
            }
            let meta = path.symlink_metadata().unwrap();
            let what = if meta.is_symlink() {
                format!("-> {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                walk(root, &path, inodes, out);
                format!("dir {:o}", meta.mode())
            } else {
                let first = inodes.entry(meta.ino()).or_insert_with(|| name.clone());
                format!(
                    "file {:o} links {} same as {first} sha256 {} mtime {}",
                    meta.mode(),
                    meta.nlink(),
                    airlock_core::storage::Sha256::of_file(&path).unwrap(),
                    meta.mtime()
                )
            };
            out.insert(name, what);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut BTreeMap::new(), &mut out);
    out
}

#[test]
fn a_backup_taken_while_serving_restores_at_another_path() {
    let a = Site::new("ed25519", &local_repo(Some("7d")));
    let work = tempfile::tempdir().unwrap();
    for name in ["hello", "world"] {
        let deb = dpkg_deb(&work.path().join("debs"), name, "1.0", "amd64", "", "xz");
        a.include("stable", "main", &deb);
    }
    a.ok(&["publish"]);
    let data = a.path().join("data");

    // Clients fetch from the server all through the backup.
    let server = a.serve();
    let url = format!("{}/apt/local/dists/stable/InRelease", server.url);
    let done = Arc::new(AtomicBool::new(false));
    let client = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, 0);
            while !done.load(Ordering::Relaxed) || ok == 0 {
                match curl(&["-f", "-o", "/dev/null", &url]).status.success() {
                    true => ok += 1,
                    false => failed += 1,
                }
            }
            (ok, failed)
        })
    };
    let dest = work.path().join("backup");
    let out = a.ok(&["backup", dest.to_str().unwrap()]);
    done.store(true, Ordering::Relaxed);
    let (ok, failed) = client.join().unwrap();
    assert_eq!(
        failed,
        0,
        "{failed} of {} fetches failed during the backup",
        ok + failed
    );
    assert!(out.contains(&format!("to {}", dest.display())), "{out}");
    assert!(!work.path().join("backup.partial").exists());

    // The same tree: files, modes, times, symlinks, and the same files linked together.
    let original = layout(&data);
    assert_eq!(layout(&dest), original);
    let linked = original
        .values()
        .filter(|v| !v.contains(" links 1 "))
        .count();
    assert!(
        linked > 0,
        "no hard link in the data folder to keep: {original:#?}"
    );
    let blob = original
        .iter()
        .find(|(k, v)| {
            k.starts_with("trees/apt/local/")
                && k.ends_with("hello_1.0_amd64.deb")
                && v.contains(" links ")
        })
        .unwrap_or_else(|| panic!("{original:#?}"));
    assert!(blob.1.contains("same as store/sha256/"), "{blob:?}");

    // Restored at another path, with a config pointing there.
    let restored = tempfile::tempdir().unwrap();
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(&dest)
        .arg(restored.path().join("data"))
        .status()
        .unwrap();
    assert!(cp.success());
    for file in ["airlock.toml", "airlock.key", "airlock.gpg"] {
        std::fs::copy(a.path().join(file), restored.path().join(file)).unwrap();
    }
    assert_eq!(layout(&restored.path().join("data")), original);
    let config = restored.path().join("airlock.toml");
    let verify = std::process::Command::new(crate::common::AIRLOCK)
        .arg("--config")
        .arg(&config)
        .args(["verify", "--offline"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && said.contains("all checks passed"),
        "{said}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    server.stop();

    // A relative DEST is below the working folder.
    let relative = std::process::Command::new(crate::common::AIRLOCK)
        .arg("--config")
        .arg(a.config())
        .args(["backup", "relative"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        relative.status.success(),
        "{}",
        String::from_utf8_lossy(&relative.stderr)
    );
    assert_eq!(layout(&work.path().join("relative")), original);

    // Bad input: an existing DEST, one inside the data folder, an interrupted backup's leftover.
    let out = a.run(&["backup", dest.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("already exists"),
        "{err}"
    );
    let inside = data.join("state/backup");
    let out = a.run(&["backup", inside.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is inside the data folder") && !inside.exists(),
        "{err}"
    );
    let out = a.run(&["backup", data.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "a backup onto the data folder itself ran"
    );
    std::fs::create_dir(work.path().join("next.partial")).unwrap();
    let out = a.run(&["backup", work.path().join("next").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("interrupted backup") && err.contains("hint:"),
        "{err}"
    );
    assert_eq!(
        layout(&data),
        original,
        "a refused backup changed the data folder"
    );
}

#[test]
fn the_data_folder_format_is_upgraded_or_refused() {
    let site = Site::new("ed25519", &local_repo(Some("7d")));
    let version = site.path().join("data/format-version");
    assert_eq!(std::fs::read_to_string(&version).unwrap(), "1\n");

    // A folder from before the version file is version 1: read as it is, the file written by
    // the first command that takes the site lock.
    // `backup` copies it as it is: the copy is the folder before the upgrade.
    std::fs::remove_file(&version).unwrap();
    site.ok(&["apt", "list", "local"]);
    let dest = site.path().join("before-upgrade");
    site.ok(&["backup", dest.to_str().unwrap()]);
    assert!(!version.exists());
    assert!(dest.is_dir() && !dest.join("format-version").exists());
    site.ok(&["publish"]);
    assert_eq!(std::fs::read_to_string(&version).unwrap(), "1\n");

    // A folder a newer airlock wrote: refused by readers and writers, both versions named.
    std::fs::write(&version, "2\n").unwrap();
    for args in [
        &["publish"][..],
        &["verify", "--offline"],
        &["apt", "list", "local"],
        &["serve"],
    ] {
        let out = site.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran on a newer data folder");
        assert!(
            err.contains("data folder has format 2")
                && err.contains(&format!("newer than airlock {}", env!("CARGO_PKG_VERSION")))
                && err.contains("up to format 1"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&version).unwrap(), "2\n");
}
