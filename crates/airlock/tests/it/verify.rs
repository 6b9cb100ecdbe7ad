//! `airlock verify`: a published repository checked from the data folder alone (--offline)
//! and over HTTP as apt-get fetches it; then a blob damaged on disk, one deleted, and the
//! server down, each reported by name with exit status 1. A whole site (local repo, mirror,
//! image stream, snap, routes, DNS) passes every check; then each damage an operator meets,
//! one at a time (a disk too full for the next sync among them), fails exactly the check of
//! the damaged thing.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::dnsmasq::Dnsmasq;
use crate::common::site::{GA, GA_KERNEL, ROUTES, local_repo, whole_site};
use crate::common::snaps::SNAP_ID;
use crate::common::stream::clearsigned_json;
use crate::common::{AIRLOCK, Site, dpkg_deb};
use airlock_core::apt::deb822;
use serde_json::Value;

fn verify(site: &Site) -> (i32, String, Value) {
    let out = site.run(&["verify", "--offline"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let json = site.run(&["verify", "--offline", "--json"]);
    assert_eq!(json.status.code(), out.status.code());
    (
        out.status.code().unwrap(),
        text,
        serde_json::from_slice(&json.stdout).unwrap(),
    )
}

#[test]
fn verify_finds_damaged_and_missing_files_offline_and_online() {
    let site = Site::new("ed25519", &local_repo(Some("3d")));
    let debs = tempfile::tempdir().unwrap();
    for name in ["hello", "world"] {
        let deb = dpkg_deb(debs.path(), name, "1.0", "amd64", "", "gzip");
        site.include("stable", "main", &deb);
    }
    site.ok(&["publish"]);

    let (status, text, json) = verify(&site);
    assert_eq!(status, 0, "{text}");
    assert!(text.contains("all checks passed"), "{text}");
    assert_eq!(json["passed"], true);
    let areas: Vec<&str> = json["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["area"].as_str().unwrap())
        .collect();
    assert_eq!(areas, ["store", "apt/local"]);
    assert!(json["areas"][1]["checked"].as_u64().unwrap() > 5, "{json}");

    // Online, as apt-get fetches: InRelease signed by the site key, every listed index, every
    // pool file (--full). The Release expires within the 7-day horizon: a warning, not a failure.
    let server = site.serve();
    let url = server.url.clone();
    let online = |extra: &[&str]| {
        let mut args = vec!["verify", "--url", url.as_str(), "--full"];
        args.extend(extra);
        let out = site.run(&args);
        (
            out.status.code().unwrap(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (status, text) = online(&[]);
    assert_eq!(status, 0, "{text}");
    assert!(
        text.contains("WARNING apt/local") && text.contains("expires on"),
        "{text}"
    );
    let checked: u64 = text
        .lines()
        .find(|l| l.starts_with("apt/local"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        checked >= 1 + 4 + 2,
        "InRelease, the listed indices and both pool files: {text}"
    );
    let (status, text) = online(&["--horizon-days", "1"]);
    assert_eq!(status, 0, "{text}");
    assert!(!text.contains("WARNING apt/local"), "{text}");

    // The pool file of `hello`: damage its blob in place (same size), as a bad disk would.
    let pool = site
        .public("local")
        .join("pool/main/h/hello/hello_1.0_amd64.deb");
    let blob = std::fs::canonicalize(&pool).unwrap();
    let blob = if blob.starts_with(site.path().join("data/store")) {
        blob
    } else {
        // Trees hold hard links: find the store's name for the same file.
        let bytes = std::fs::read(&pool).unwrap();
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        site.path()
            .join(format!("data/store/sha256/{}/{digest}", &digest[..2]))
    };
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[100] ^= 0xff;
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&blob, &bytes).unwrap();
    let (status, text, json) = verify(&site);
    assert_eq!(status, 1, "{text}");
    assert!(
        text.contains(&format!("FAILED store: {}", blob.display())),
        "{text}"
    );
    assert_eq!(json["failures"].as_array().unwrap().len(), 1, "{json}");
    // The server serves that same damaged file: apt would report a Hash Sum mismatch.
    let (status, text) = online(&[]);
    assert_eq!(status, 1, "{text}");
    assert!(
        text.contains("pool/main/h/hello/hello_1.0_amd64.deb") && text.contains("SHA-256 is"),
        "{text}"
    );

    // A blob gone: the store has nothing to re-hash, the tree names a file whose blob is lost.
    let world = site
        .public("local")
        .join("pool/main/w/world/world_1.0_amd64.deb");
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        std::fs::read(&world).unwrap(),
    ));
    std::fs::remove_file(
        site.path()
            .join(format!("data/store/sha256/{}/{digest}", &digest[..2])),
    )
    .unwrap();
    let (status, text, _) = verify(&site);
    assert_eq!(status, 1, "{text}");
    assert!(
        text.contains("pool/main/w/world/world_1.0_amd64.deb")
            && text.contains("its blob is missing from the store"),
        "{text}"
    );

    // A server that is down: one failed check that says so, not a crash or a hang.
    drop(server);
    let (status, text) = online(&[]);
    assert_eq!(status, 1, "{text}");
    assert!(
        text.contains("a server answering") && text.contains("1 checks failed"),
        "{text}"
    );

    // No such site: could not run.
    let out = std::process::Command::new(AIRLOCK)
        .args([
            "--config",
            "/nonexistent/airlock.toml",
            "verify",
            "--offline",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A sampled verify checks every pool file new since the last one: a file a sync just brought
/// in, damaged, is found even with a sample of none.
#[test]
fn sampled_verify_checks_what_is_new_since_the_last() {
    let site = Site::new("ed25519", &local_repo(Some("3d")));
    let debs = tempfile::tempdir().unwrap();
    let hello = dpkg_deb(debs.path(), "hello", "1.0", "amd64", "", "gzip");
    site.include("stable", "main", &hello);
    site.ok(&["publish"]);
    let server = site.serve();
    let sampled = |site: &Site| {
        let out = site.run(&["verify", "--url", &server.url, "--sample", "0"]);
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // The first run samples (none here) and records what is listed.
    let (status, text) = sampled(&site);
    assert_eq!(status, 0, "{text}");

    let world = dpkg_deb(debs.path(), "world", "1.0", "amd64", "", "gzip");
    site.include("stable", "main", &world);
    site.ok(&["publish"]);
    // Damage the new file's blob (the published file is a hard link to it).
    let published = site
        .public("local")
        .join("pool/main/w/world/world_1.0_amd64.deb");
    let mut bytes = std::fs::read(&published).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    write_in_place(&published, &bytes);

    let (status, text) = sampled(&site);
    assert_eq!(status, 1, "{text}");
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("FAILED ")).collect();
    assert_eq!(failed.len(), 1, "{text}");
    assert!(
        failed[0].contains("pool/main/w/world/world_1.0_amd64.deb"),
        "{text}"
    );
    // It failed, so it is still "new" next time: found again.
    let (status, text) = sampled(&site);
    assert_eq!(status, 1, "{text}");
}

// ---------------------------------------------------------------------------------------------
// A whole site, and each damage an operator meets.
// ---------------------------------------------------------------------------------------------

/// DNS sends the whole site's upstream names (common::site::ROUTES) to this server, on
/// 127.0.0.1.
const DNS: &str = r#"
[dns]
address = ["127.0.0.1"]
"#;

/// What an online verify of the whole site lists: the site itself, DNS, the server, both apt
/// trees, the image stream, the snap store and the routes.
const WHOLE_SITE_AREAS: [&str; 8] = [
    "apt/local",
    "apt/mirror",
    "dns",
    "images",
    "proxy",
    "server",
    "site",
    "snaps",
];

/// `airlock verify --json --full` against the server at `url`, the names resolved by the
/// resolver on 127.0.0.1:`resolver`: the exit status and the report.
fn verify_site(site: &Site, url: &str, resolver: u16) -> (i32, Value) {
    let resolver = format!("127.0.0.1:{resolver}");
    let out = site.run(&[
        "verify",
        "--json",
        "--full",
        "--url",
        url,
        "--resolver",
        &resolver,
    ]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify --json: {e}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), json)
}

/// Each area of a report: (checks, failed).
fn areas(json: &Value) -> BTreeMap<String, (u64, u64)> {
    json["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["area"].as_str().unwrap().to_string(),
                (
                    a["checked"].as_u64().unwrap(),
                    a["failed"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// Every area of the whole site listed with checks, and, per area, exactly as many failures
/// as `failing` names.
fn assert_areas(step: &str, json: &Value, failing: &[&str]) {
    let areas = areas(json);
    assert_eq!(
        areas.keys().map(String::as_str).collect::<Vec<_>>(),
        WHOLE_SITE_AREAS,
        "{step}: {json:#}"
    );
    for (area, (checked, failed)) in &areas {
        assert!(*checked > 0, "{step}: {area} checked nothing: {json:#}");
        let want = failing.iter().filter(|a| **a == area.as_str()).count() as u64;
        assert_eq!(*failed, want, "{step}: {area} failed {failed}: {json:#}");
    }
}

/// One damage, verified: exit status 1, exactly one failure, in `area`, naming `what`, its
/// `got` saying `got`; every other check of the site still passing.
fn assert_damage(step: &str, (status, json): (i32, Value), area: &str, what: &str, got: &str) {
    assert_eq!(status, 1, "{step}: {json:#}");
    assert_eq!(json["passed"], false, "{step}: {json:#}");
    let failures = json["failures"].as_array().unwrap();
    assert_eq!(
        failures.len(),
        1,
        "{step}: only the damaged thing fails: {json:#}"
    );
    let failure = &failures[0];
    eprintln!("{step}: {failure}");
    assert_eq!(failure["area"], area, "{step}: {failure:#}");
    assert_eq!(failure["what"], what, "{step}: {failure:#}");
    assert!(
        failure["got"].as_str().unwrap().contains(got),
        "{step}: got should say {got:?}: {failure:#}"
    );
    assert_areas(step, &json, &[area]);
}

/// The bytes an unprivileged writer may still put on the filesystem of `path` (`df`).
fn free_bytes(path: &Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().nth(1).unwrap().trim().parse().unwrap()
}

/// Writes `bytes` into `path` in place (the same inode: the store's blob and every tree that
/// links it), as a bad disk or a stray write does; the file's mode is kept.
fn write_in_place(path: &Path, bytes: &[u8]) {
    let mode = std::fs::metadata(path).unwrap().permissions();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, mode).unwrap();
}

/// The pool path (Filename) of `package` in a published apt tree's `suite`.
fn pool_file(tree: &Path, suite: &str, package: &str) -> String {
    let packages =
        std::fs::read_to_string(tree.join(format!("dists/{suite}/main/binary-amd64/Packages")))
            .unwrap();
    deb822::paragraphs(&packages)
        .map(Result::unwrap)
        .find(|p| p.get("Package") == Some(package))
        .and_then(|p| p.get("Filename"))
        .unwrap_or_else(|| panic!("{package} not in {}:\n{packages}", tree.display()))
        .to_string()
}

/// The dnsmasq snippet `airlock dns config` writes for the site (an operator's resolver).
fn resolver_config(site: &Site) -> String {
    let config = site.ok(&["dns", "config", "--format", "dnsmasq"]);
    for name in ["archive.ubuntu.com", "images.maas.io"] {
        assert!(
            config.contains(&format!("address=/{name}/127.0.0.1")),
            "{config}"
        );
    }
    config
}

/// Moves a published file into `aside` (the tree loses the name, the store keeps the blob);
/// returns where it went, to move it back.
fn move_aside(path: &Path, aside: &Path) -> PathBuf {
    let to = aside.join(path.file_name().unwrap());
    std::fs::rename(path, &to).unwrap();
    to
}

#[test]
fn verify_names_each_damage_on_a_whole_site() {
    let started = Instant::now();
    let whole = whole_site(&format!("{ROUTES}{DNS}"));
    let site = &whole.site;
    let aside = whole.work.path().join("aside");
    std::fs::create_dir_all(&aside).unwrap();
    let mut server = site.serve();
    let resolver_snippet = resolver_config(site);
    let mut resolver = Dnsmasq::start(&resolver_snippet);
    eprintln!("whole site built and served in {:?}", started.elapsed());

    // Whole: every area listed with its checks, none failed.
    let (status, json) = verify_site(site, &server.url, resolver.port);
    assert_eq!(status, 0, "{json:#}");
    assert_eq!(json["passed"], true, "{json:#}");
    assert_eq!(json["failures"], Value::Array(Vec::new()), "{json:#}");
    assert_areas("whole site", &json, &[]);
    let whole_counts = areas(&json);
    // Every check, --full: both routes (the mirror's one suite, the stream's index) and both
    // names; the snap's info, refresh action, assertions and blob; per apt tree its InRelease,
    // its 4 indices (Packages, .gz, .xz, Release) under their names and by-hash names, and
    // its pool files (hello; app and the libfoo it depends on); the stream's index, its 2
    // product files, the bootloaders, and the 11 items of the newest versions (GA and HWE
    // kernels 4 each, UEFI 2, PXE 1); the server's clock; the site key and the data folder.
    let expected_counts: BTreeMap<String, (u64, u64)> = [
        ("apt/local", 1 + 8 + 1),
        ("apt/mirror", 1 + 8 + 2),
        ("dns", 2),
        ("images", 1 + 2 + 1 + 11),
        ("proxy", 2),
        ("server", 1),
        ("site", 2),
        ("snaps", 4),
    ]
    .into_iter()
    .map(|(area, checked)| (area.to_string(), (checked, 0)))
    .collect();
    assert_eq!(whole_counts, expected_counts, "{json:#}");
    eprintln!("whole site verified: {whole_counts:?}");

    // 1. A pool file corrupted on disk: one byte of the mirror's app .deb flipped in its blob
    // (same size), as a bad disk does. apt would report a Hash Sum mismatch.
    let mirror = site.public("mirror");
    let app = pool_file(&mirror, "stable", "app");
    let app_path = mirror.join(&app);
    let original = std::fs::read(&app_path).unwrap();
    let mut bytes = original.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    write_in_place(&app_path, &bytes);
    assert_damage(
        "a pool file corrupted",
        verify_site(site, &server.url, resolver.port),
        "apt/mirror",
        &format!("{}/apt/mirror/{app}", server.url),
        "SHA-256 is",
    );
    write_in_place(&app_path, &original);

    // 2. An index deleted from the local repo's tree: the Packages.xz apt fetches first. Its
    // by-hash name (another link to the same blob) is still there, and passes.
    let index = "dists/stable/main/binary-amd64/Packages.xz";
    let index_path = site.public("local").join(index);
    let moved = move_aside(&index_path, &aside);
    assert_damage(
        "an index deleted",
        verify_site(site, &server.url, resolver.port),
        "apt/local",
        &format!("{}/apt/local/{index}", server.url),
        "404",
    );
    std::fs::rename(&moved, &index_path).unwrap();

    // 3. A Release past its Valid-Until: a site whose publish stopped running for longer
    // than valid_for, which is what expires a Release in an air gap. Real sites say 7d; the
    // local repo is published once with valid_for = "1s" and left past it, which is the same
    // thing without the wait (a Release forged with a past date would need the site's key
    // and would show nothing a real site does). Undone as an operator would: publish again
    // with the real valid_for.
    let config = std::fs::read_to_string(site.config()).unwrap();
    assert!(config.contains("valid_for = \"7d\""), "{config}");
    std::fs::write(
        site.config(),
        config.replacen("valid_for = \"7d\"", "valid_for = \"1s\"", 1),
    )
    .unwrap();
    site.ok(&["publish"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_damage(
        "a Release past Valid-Until",
        verify_site(site, &server.url, resolver.port),
        "apt/local",
        &format!("{}/apt/local/dists/stable/InRelease", server.url),
        "expired on",
    );
    std::fs::write(site.config(), &config).unwrap();
    site.ok(&["publish"]);

    // 4. An image item missing: the newest GA kernel gone from the published stream.
    let images = site.path().join("data/public/images");
    let kernel = images.join(GA_KERNEL);
    let moved = move_aside(&kernel, &aside);
    let version = GA_KERNEL.split('/').nth(2).unwrap();
    assert_damage(
        "an image item missing",
        verify_site(site, &server.url, resolver.port),
        "images",
        &format!(
            "{GA} {version} boot-kernel ({}/images/{GA_KERNEL})",
            server.url
        ),
        "404",
    );
    std::fs::rename(&moved, &kernel).unwrap();

    // 5. A product file whose signature no longer matches: the Ubuntu products document
    // edited by hand (one word) and not signed again. Its products go unchecked; the
    // bootloaders' document, and the index naming both, still verify.
    let index: Value =
        clearsigned_json(&std::fs::read_to_string(images.join("streams/v1/index.sjson")).unwrap());
    let products = index["index"]
        .as_object()
        .unwrap()
        .values()
        .find(|entry| {
            entry["products"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == GA)
        })
        .and_then(|entry| entry["path"].as_str())
        .unwrap_or_else(|| panic!("no products document lists {GA}: {index:#}"))
        .to_string();
    let products_path = images.join(&products);
    let signed = std::fs::read_to_string(&products_path).unwrap();
    let edited = signed.replacen("\"noble\"", "\"nobel\"", 1);
    assert_ne!(edited, signed, "{products}: nothing to edit");
    let moved = move_aside(&products_path, &aside);
    std::fs::write(&products_path, edited).unwrap();
    assert_damage(
        "a product file whose signature no longer matches",
        verify_site(site, &server.url, resolver.port),
        "images",
        &format!("{}/images/{products}", server.url),
        "is not valid",
    );
    std::fs::rename(&moved, &products_path).unwrap();

    // 6. A snap blob truncated in the store, as an interrupted copy leaves it.
    let snap = std::fs::read(&whole.snap).unwrap();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&snap));
    let blob = site
        .path()
        .join(format!("data/store/sha256/{}/{digest}", &digest[..2]));
    assert_eq!(std::fs::read(&blob).unwrap(), snap);
    write_in_place(&blob, &snap[..snap.len() / 2]);
    assert_damage(
        "a snap blob truncated",
        verify_site(site, &server.url, resolver.port),
        "snaps",
        &format!(
            "hello-airlock latest/stable amd64: {}/api/v1/snaps/download/{SNAP_ID}_1.snap",
            server.url
        ),
        "truncated",
    );
    write_in_place(&blob, &snap);

    // 7. A route pointing at the wrong tree: the server runs a config whose archive.ubuntu.com
    // route names apt/local (an old or mistyped copy), while airlock.toml, which verify reads,
    // routes it to the mirror. Undone by restarting the server with airlock.toml.
    let wrong = site.path().join("airlock-wrong-route.toml");
    let routed_to_local = config.replacen("to = \"apt/mirror\"", "to = \"apt/local\"", 1);
    assert_ne!(routed_to_local, config);
    std::fs::write(&wrong, routed_to_local).unwrap();
    drop(server);
    server = site.serve_with(&wrong);
    assert_damage(
        "a route pointing at the wrong tree",
        verify_site(site, &server.url, resolver.port),
        "proxy",
        "http://archive.ubuntu.com/ubuntu/dists/stable/InRelease",
        "other bytes",
    );
    drop(server);
    server = site.serve();

    // 8. A DNS name answering another address: the site's resolver restarted with
    // images.maas.io sent elsewhere. Undone by restarting it with the generated snippet.
    let sent_elsewhere = resolver_snippet.replace(
        "address=/images.maas.io/127.0.0.1",
        "address=/images.maas.io/192.0.2.66",
    );
    assert_ne!(sent_elsewhere, resolver_snippet);
    drop(resolver);
    resolver = Dnsmasq::start(&sent_elsewhere);
    assert_damage(
        "a DNS name answering another address",
        verify_site(site, &server.url, resolver.port),
        "dns",
        &format!("images.maas.io via 127.0.0.1:{}", resolver.port),
        "192.0.2.66",
    );
    drop(resolver);
    resolver = Dnsmasq::start(&resolver_snippet);

    // 9. A disk that cannot hold the next sync: the mirror's updates on record have been as
    // large as the room left on this disk (the first sync, which fetched the whole mirror, is
    // no measure of an update). Undone by restoring the history.
    let history = site.path().join("data/state/history.json");
    let recorded = std::fs::read(&history).unwrap();
    let mut runs: Value = serde_json::from_slice(&recorded).unwrap();
    assert_eq!(runs["runs"][0]["kind"], "first", "{runs:#}");
    let free = free_bytes(&site.path().join("data"));
    runs["runs"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "source": "apt/mirror", "kind": "update", "at": "2026-11-20T04:00:00Z", "bytes": free,
        }));
    std::fs::write(&history, serde_json::to_vec(&runs).unwrap()).unwrap();
    let (status, json) = verify_site(site, &server.url, resolver.port);
    assert_damage(
        "a disk that cannot hold the next sync",
        (status, json.clone()),
        "site",
        &site.path().join("data").display().to_string(),
        " free of ",
    );
    let expected = json["failures"][0]["expected"].as_str().unwrap();
    assert!(
        expected.contains("apt/mirror") && expected.contains("on 2026-11-20"),
        "{expected}"
    );
    std::fs::write(&history, recorded).unwrap();

    // Every damage undone: the whole site passes again, with the same checks.
    let (status, json) = verify_site(site, &server.url, resolver.port);
    assert_eq!(status, 0, "{json:#}");
    assert_areas("every damage undone", &json, &[]);
    assert_eq!(areas(&json), whole_counts, "{json:#}");
    eprintln!("whole-site verify test took {:?}", started.elapsed());
}

/// A machine without CA certificates (no ca-certificates package, as on a minimal install:
/// packaging/upgrade-under-systemd.sh found verify's unit failing there) still verifies its
/// site over HTTP. rustls-native-certs reads the system's CAs from these two variables.
#[test]
fn verify_runs_where_the_system_has_no_ca_certificates() {
    let site = Site::new("ed25519", &local_repo(Some("3d")));
    let debs = tempfile::tempdir().unwrap();
    site.include(
        "stable",
        "main",
        &dpkg_deb(debs.path(), "hello", "1.0", "amd64", "", "gzip"),
    );
    site.ok(&["publish"]);
    let server = site.serve();
    let out = std::process::Command::new(AIRLOCK)
        .arg("--config")
        .arg(site.config())
        .args(["verify", "--url", server.url.as_str()])
        .env("SSL_CERT_FILE", debs.path().join("no-such-ca.pem"))
        .env("SSL_CERT_DIR", debs.path().join("no-such-certs"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("all checks passed"), "{text}");
}
