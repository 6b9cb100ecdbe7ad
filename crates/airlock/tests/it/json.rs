//! `--json` (issue 16 item 4): sync, publish, export, import, gc, images list, snap list and
//! bundle inspect each print one JSON document on stdout saying what was done, and nothing else
//! there. Each document is checked against what happened on disk and in the bundle.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::site::{GA, whole_site};
use crate::common::upstream::pkg;
use crate::common::{AIRLOCK, Site, store_blobs};

/// `airlock --config SITE ARGS --json`: must succeed with one JSON document as all of stdout.
fn json(site: &Site, args: &[&str]) -> Value {
    let out = std::process::Command::new(AIRLOCK)
        .arg("--config")
        .arg(site.config())
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "airlock {args:?} --json failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("airlock {args:?} --json is not one JSON document: {e}\n{stdout}")
    })
}

fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
        if path.is_dir()
            && !path.is_symlink()
            && let Some(found) = find(&path, name)
        {
            return Some(found);
        }
    }
    None
}

fn sha256_hex(path: &Path) -> String {
    airlock_core::storage::Sha256::of_file(path)
        .unwrap()
        .to_hex()
}

#[test]
fn json_documents_say_what_was_done() {
    let whole = whole_site("");
    let a = &whole.site;

    // publish, nothing changed, then with a new package.
    let doc = json(a, &["publish"]);
    let local = &doc["repos"][0];
    assert_eq!(local["repo"], "local", "{doc:#}");
    assert_eq!(local["written"], false, "{doc:#}");
    assert_eq!(local["suites"][0]["suite"], "stable");
    assert_eq!(local["suites"][0]["status"], "unchanged");
    assert_eq!(local["suites"][0]["packages"], 1);
    let deb = crate::common::dpkg_deb(
        &whole.work.path().join("more"),
        "extra",
        "1.0",
        "amd64",
        "",
        "xz",
    );
    a.include("stable", "main", &deb);
    let before = jiff::Timestamp::now();
    let doc = json(a, &["publish", "local"]);
    let suite = &doc["repos"][0]["suites"][0];
    assert_eq!(doc["repos"][0]["written"], true, "{doc:#}");
    assert_eq!(suite["status"], "published");
    assert_eq!(suite["packages"], 2);
    // LOCAL publishes for 7 days: the document says until when, as the Release does.
    let until: jiff::Timestamp = suite["valid_until"].as_str().unwrap().parse().unwrap();
    let week = jiff::SignedDuration::from_hours(24 * 7);
    assert!(
        until >= before + week - jiff::SignedDuration::from_secs(2)
            && until <= jiff::Timestamp::now() + week,
        "{doc:#}"
    );
    let release = std::fs::read_to_string(a.public("local").join("dists/stable/Release")).unwrap();
    assert!(
        release.contains(&format!(
            "Valid-Until: {}",
            until.strftime("%a, %d %b %Y %H:%M:%S UTC")
        )),
        "{release}\n{doc:#}"
    );

    // sync, unchanged, then with a new version upstream.
    let doc = json(a, &["sync"]);
    assert_eq!(doc["mirrors"][0]["name"], "mirror", "{doc:#}");
    assert_eq!(doc["mirrors"][0]["unchanged"], true, "{doc:#}");
    assert_eq!(doc["images"]["unchanged"], true, "{doc:#}");
    whole.archive.add(&pkg(
        "stable",
        "main",
        "app",
        "1.1",
        "amd64",
        "Depends: libfoo\n",
    ));
    whole.archive.publish();
    let doc = json(a, &["sync", "mirror"]);
    let mirror = &doc["mirrors"][0];
    assert_eq!(mirror["unchanged"], false, "{doc:#}");
    assert_eq!(
        mirror["suites"][0],
        serde_json::json!({"suite": "stable", "packages": 3})
    );
    assert_eq!(mirror["downloaded_files"], 1, "{doc:#}");
    let fetched = find(&a.public("mirror").join("pool"), "app_1.1_amd64.deb").unwrap();
    assert_eq!(
        mirror["downloaded_bytes"],
        std::fs::metadata(&fetched).unwrap().len(),
        "{doc:#}"
    );
    assert_eq!(mirror["signers"][0]["suite"], "stable");
    assert_eq!(
        mirror["signers"][0]["fingerprint"].as_str().unwrap().len(),
        40
    );
    assert!(
        doc["images"].is_null(),
        "images were not asked for: {doc:#}"
    );

    // The listings.
    let doc = json(a, &["images", "list"]);
    let ga = doc["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == GA)
        .unwrap_or_else(|| panic!("{GA} not listed: {doc:#}"));
    assert_eq!(ga["custom"], false);
    assert!(ga["files"].as_u64().unwrap() > 0 && ga["bytes"].as_u64().unwrap() > 0);
    let doc = json(a, &["snap", "list"]);
    let snap = &doc["snaps"][0];
    assert_eq!(snap["name"], "hello-airlock", "{doc:#}");
    let revision = &snap["revisions"][0];
    assert_eq!(revision["revision"], 1);
    assert_eq!(revision["version"], "1.0");
    assert_eq!(
        revision["size"],
        std::fs::metadata(&whole.snap).unwrap().len()
    );
    assert!(
        revision["channels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().ends_with("latest/stable")),
        "{doc:#}"
    );

    // export, inspect, import.
    let bundle = whole.work.path().join("bundle");
    let doc = json(a, &["export", "--to", bundle.to_str().unwrap()]);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(doc["bundle"]["id"], manifest["id"]);
    assert_eq!(doc["dir"], bundle.to_str().unwrap());
    assert_eq!(doc["bundle"]["contents"], manifest["contents"]);
    assert_eq!(doc["bundle"]["volumes"], manifest["volumes"]);
    let carried: Vec<&Value> = manifest["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| !b["volume"].is_null())
        .collect();
    assert_eq!(doc["bundle"]["carried_blobs"], carried.len());
    assert_eq!(
        doc["bundle"]["carried_bytes"],
        carried
            .iter()
            .map(|b| b["size"].as_u64().unwrap())
            .sum::<u64>()
    );
    let airlock = &doc["bundle"]["airlock"];
    assert_eq!(airlock["kind"], "binary", "{doc:#}");
    assert_eq!(
        airlock["sha256"],
        sha256_hex(&bundle.join(airlock["file"].as_str().unwrap()))
    );
    assert_eq!(airlock["sha256"], sha256_hex(Path::new(AIRLOCK)));
    assert!(
        doc["airlock_source"]
            .as_str()
            .unwrap()
            .starts_with("this binary"),
        "{doc:#}"
    );
    let labels: Vec<&str> = doc["bundle"]["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["local", "mirror", "images", "snaps"], "{doc:#}");

    let b = Site::new(
        "ed25519",
        &format!(
            "{}\n[import]\ntrusted_keys = [\"{}\"]\n",
            whole.config,
            a.keyring().display()
        ),
    );
    std::fs::copy(a.path().join("root.assert"), b.path().join("root.assert")).unwrap();
    let doc = json(&b, &["bundle", "inspect", bundle.to_str().unwrap()]);
    assert_eq!(doc["id"], manifest["id"]);
    assert_eq!(doc["signature"]["status"], "trusted", "{doc:#}");
    assert_eq!(
        doc["signature"]["signer"],
        manifest["exporter"]["fingerprint"]
    );
    assert!(
        doc["volumes_here"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["state"] == "present"),
        "{doc:#}"
    );
    assert_eq!(doc["airlock_newer"], false);

    let doc = json(&b, &["import", bundle.to_str().unwrap()]);
    assert_eq!(doc["id"], manifest["id"]);
    assert_eq!(doc["signer"], manifest["exporter"]["fingerprint"]);
    assert_eq!(doc["new_blobs"], carried.len(), "{doc:#}");
    assert_eq!(doc["present_blobs"], 0);
    let switched: Vec<&str> = doc["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["content"].as_str().unwrap())
        .collect();
    assert_eq!(switched, ["apt/local", "apt/mirror", "images", "snaps"]);
    let kept = Path::new(doc["airlock"]["path"].as_str().unwrap());
    assert_eq!(
        kept,
        b.path()
            .join("data/carried")
            .join(airlock["file"].as_str().unwrap())
    );
    assert_eq!(sha256_hex(kept), airlock["sha256"].as_str().unwrap());
    assert_eq!(doc["airlock"]["newer_than_running"], false);

    // gc: a removed package, once the grace period has passed.
    a.ok(&["apt", "remove", "local", "stable", "extra"]);
    a.ok(&["publish"]);
    a.set_grace("1s");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let stored = store_blobs(a).len();
    let dry = json(a, &["gc", "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(store_blobs(a).len(), stored, "a dry run removed something");
    let doc = json(a, &["gc"]);
    assert_eq!(doc["dry_run"], false);
    let removed = doc["removed"].as_u64().unwrap();
    assert!(removed >= 1, "{doc:#}");
    assert_eq!(
        (doc["removed"].clone(), doc["removed_bytes"].clone()),
        (dry["removed"].clone(), dry["removed_bytes"].clone())
    );
    assert_eq!(store_blobs(a).len() as u64, stored as u64 - removed);
    assert_eq!(doc["referenced"], store_blobs(a).len());
    let again = json(a, &["gc"]);
    assert_eq!(
        (again["removed"].as_u64(), again["removed_bytes"].as_u64()),
        (Some(0), Some(0))
    );
}
