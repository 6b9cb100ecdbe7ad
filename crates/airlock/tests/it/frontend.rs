//! A frontend: `airlock serve` with no data folder, answering from what a writer pushed to a
//! bucket (Garage on loopback), to real apt and curl.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::garage::Garage;
use crate::common::site::{local_repo, whole_site};
use crate::common::snaps::SNAP_ID;
use crate::common::{Apt, Site, curl, dpkg_deb, files_below, get, wait_for};

/// Where the writers and frontends of these tests keep the site in the bucket.
const PREFIX: &str = "front/";

/// A writer site with the local repo and `packages` in it, published (and pushed).
fn writer(garage: &Garage, packages: &[&Path]) -> Site {
    let writer = Site::new(
        "ed25519",
        &format!(
            "{}\n{}",
            local_repo(Some("7d")),
            garage.storage_config(PREFIX, "1s")
        ),
    );
    for package in packages {
        writer.include("stable", "main", package);
    }
    writer.ok(&["publish"]);
    writer
}

/// A .deb over the frontend's in-memory limit (1 MiB) and its piece of one request to the
/// bucket (8 MiB), stored uncompressed: streamed from the bucket in two ranged GETs.
fn large_deb(dir: &Path) -> PathBuf {
    large_deb_named(dir, "large", 0x2545_f491_4f6c_dd1d)
}

/// [`large_deb`] as package `name`, its content made from `seed`.
fn large_deb_named(dir: &Path, name: &str, seed: u64) -> PathBuf {
    crate::common::noise_deb(dir, name, (9 << 20) + 4321, seed)
}

/// Includes `package` in the writer's local repo and publishes (which pushes) while
/// `apt-get update` runs in a loop against each frontend (`bases`), until every frontend
/// serves the new InRelease and a little after: each run must be clean (no hash sum mismatch,
/// no mix of two pushes).
fn push_while_updating(writer: &Site, package: &Path, bases: &[&str]) {
    let stop = Arc::new(AtomicBool::new(false));
    let loops: Vec<_> = bases
        .iter()
        .map(|base| {
            let line = format!(
                "deb [signed-by={}] {base}/apt/local stable main",
                writer.keyring().display()
            );
            let stop = stop.clone();
            std::thread::spawn(move || {
                let apt = Apt::new(&line, "amd64");
                let mut runs = 0;
                while !stop.load(Ordering::SeqCst) {
                    let (clean, out) = apt.run(&["update"]);
                    assert!(clean, "apt-get update during a push failed:\n{out}");
                    runs += 1;
                }
                runs
            })
        })
        .collect();
    // Some runs against the old push first.
    std::thread::sleep(Duration::from_secs(1));
    writer.include("stable", "main", package);
    writer.ok(&["publish"]);
    let in_release = std::fs::read(writer.public("local").join("dists/stable/InRelease")).unwrap();
    for base in bases {
        wait_for(
            &format!("{base}/apt/local/dists/stable/InRelease"),
            &in_release,
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    for (base, updating) in bases.iter().zip(loops) {
        let runs = updating.join().unwrap();
        assert!(runs >= 2, "{base}: {runs} apt-get update runs");
    }
}

#[test]
fn a_frontend_serves_what_was_pushed_to_the_bucket() {
    let garage = Garage::start();
    let work = tempfile::tempdir().unwrap();
    let hello = dpkg_deb(&work.path().join("debs"), "hello", "1.0", "amd64", "", "xz");
    let large = large_deb(&work.path().join("debs"));

    let (front, server) = garage.start_frontend(PREFIX, "1s");
    assert!(
        server
            .startup
            .iter()
            .any(|l| l.contains("no data folder") && l.contains("s3://airlock/front/")),
        "{:?}",
        server.startup
    );
    let url = |path: &str| format!("{}{path}", server.url);

    // Before the first push: unavailable, and told why.
    let (status, body) = get(&url("/apt/local/dists/stable/InRelease"), &[]);
    assert_eq!(status, 503);
    assert!(
        String::from_utf8_lossy(&body).contains("airlock push"),
        "{}",
        String::from_utf8_lossy(&body)
    );

    let writer = writer(&garage, &[&hello, &large]);
    let in_release = writer.public("local").join("dists/stable/InRelease");
    wait_for(
        &url("/apt/local/dists/stable/InRelease"),
        &std::fs::read(&in_release).unwrap(),
    );
    assert!(!front.path().join("data").exists());

    // The writer's key, and apt with it: the signatures and every hash check.
    let (status, key) = get(&url("/airlock.gpg"), &[]);
    assert_eq!(status, 200);
    assert_eq!(key, std::fs::read(writer.keyring()).unwrap());
    let (_, armored) = get(&url("/airlock.asc"), &[]);
    assert!(String::from_utf8_lossy(&armored).starts_with("-----BEGIN PGP PUBLIC KEY BLOCK"));
    let line = format!(
        "deb [signed-by={}] {} stable main",
        writer.keyring().display(),
        url("/apt/local")
    );
    let apt = Apt::new(&line, "amd64");
    let out = apt.ok(&["update"]);
    assert!(out.contains("stable InRelease"), "{out}");
    apt.ok(&["download", "hello", "large"]);
    assert_eq!(
        apt.downloaded("hello_1.0_amd64.deb"),
        std::fs::read(&hello).unwrap()
    );
    let large_bytes = std::fs::read(&large).unwrap();
    assert!(large_bytes.len() > 9 << 20);
    assert_eq!(apt.downloaded("large_1.0_amd64.deb"), large_bytes);

    // Single ranges, from memory (small) and from the bucket (large), byte for byte.
    let large_url = url("/apt/local/pool/main/l/large/large_1.0_amd64.deb");
    for (range, start, end) in [
        ("1000-2000000", 1000, 2_000_001),
        ("-5000", large_bytes.len() - 5000, large_bytes.len()),
        ("100-9000000", 100, 9_000_001),
        ("3145000-", 3_145_000, large_bytes.len()),
    ] {
        let (status, part) = get(&large_url, &["-r", range]);
        assert_eq!(status, 206, "{range}");
        assert_eq!(part, large_bytes[start..end], "{range}");
    }
    let hello_bytes = std::fs::read(&hello).unwrap();
    let (status, part) = get(
        &url("/apt/local/pool/main/h/hello/hello_1.0_amd64.deb"),
        &["-r", "10-99"],
    );
    assert_eq!((status, &part[..]), (206, &hello_bytes[10..100]));
    let (status, _) = get(&large_url, &["-r", "99999999-"]);
    assert_eq!(status, 416);

    // HEAD: the headers a GET has, no body.
    let out = curl(&["-I", &large_url]);
    let headers = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        headers.contains(&format!("content-length: {}", large_bytes.len()))
            && headers.contains("content-type: application/vnd.debian.binary-package")
            && headers.contains("accept-ranges: bytes"),
        "{headers}"
    );

    // A client that has the blob gets a 304; only GET and HEAD are answered.
    let etag = format!(
        "\"{}\"",
        airlock_core::storage::Sha256::of(&large_bytes).to_hex()
    );
    assert!(headers.contains(&format!("etag: {etag}")), "{headers}");
    let (status, body) = get(&large_url, &["-H", &format!("If-None-Match: {etag}")]);
    assert_eq!((status, body.len()), (304, 0));
    assert_eq!(get(&large_url, &["-X", "POST"]).0, 405);

    // What was not pushed is not found.
    for path in [
        "/apt/local/dists/stable/Nothing",
        "/apt/other/dists/stable/InRelease",
        "/images/streams/v1/index.sjson",
        "/nothing",
    ] {
        assert_eq!(get(&url(path), &[]).0, 404, "{path}");
    }

    // A second publish and push: served within a few polls, while apt keeps updating against
    // the frontend without ever seeing a mix of the two.
    let world = dpkg_deb(&work.path().join("debs"), "world", "1.0", "amd64", "", "xz");
    push_while_updating(&writer, &world, &[&server.url]);
    apt.ok(&["update"]);
    apt.ok(&["download", "world"]);
    assert_eq!(
        apt.downloaded("world_1.0_amd64.deb"),
        std::fs::read(&world).unwrap()
    );

    let (status, log) = server.stop();
    assert!(status.success(), "{log:?}");
    assert!(
        log.iter().any(|l| l.contains("serving generation 2")),
        "{log:?}"
    );
    for line in &log {
        assert!(!line.contains(&garage.secret), "{line}");
    }
}

#[test]
fn sighup_makes_a_frontend_look_for_a_push_at_once() {
    let garage = Garage::start();
    let work = tempfile::tempdir().unwrap();
    let hello = dpkg_deb(&work.path().join("debs"), "hello", "1.0", "amd64", "", "xz");
    let writer = writer(&garage, &[&hello]);
    // It would look again only in an hour.
    let (_front, server) = garage.start_frontend(PREFIX, "1h");
    let url = format!("{}/apt/local/dists/stable/InRelease", server.url);
    let in_release = writer.public("local").join("dists/stable/InRelease");
    wait_for(&url, &std::fs::read(&in_release).unwrap());

    let world = dpkg_deb(&work.path().join("debs"), "world", "1.0", "amd64", "", "xz");
    writer.include("stable", "main", &world);
    writer.ok(&["publish"]);
    let new = std::fs::read(&in_release).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_ne!(get(&url, &[]).1, new, "served before the SIGHUP");
    server.signal("HUP");
    wait_for(&url, &new);
}

/// MAAS reads the image stream through a frontend as it does from the writer: every signed
/// document, every item with its size and SHA256.
#[test]
fn a_frontend_serves_the_image_stream() {
    use crate::common::stream::Stream;
    use crate::common::upstream::Upstream;

    let garage = Garage::start();
    let stream = Stream::new();
    let upstream = Upstream::serve(stream.path());
    let writer = Site::new(
        "ed25519",
        &format!(
            "{}\n{}",
            crate::images::config(&stream, &upstream.url),
            garage.storage_config(PREFIX, "1s")
        ),
    );
    writer.ok(&["sync"]);
    let (_front, server) = garage.start_frontend(PREFIX, "1s");
    let base = format!("{}/images", server.url);
    wait_for(
        &format!("{base}/streams/v1/index.sjson"),
        &std::fs::read(
            writer
                .path()
                .join("data/public/images/streams/v1/index.sjson"),
        )
        .unwrap(),
    );
    let local = writer.serve();
    assert_eq!(
        crate::images::read_as_maas(&base, &writer.keyring()),
        crate::images::read_as_maas(&format!("{}/images", local.url), &writer.keyring())
    );
}

/// The site as clients use it, from two frontends of one bucket: apt (the local repo and the
/// mirror), the image stream as MAAS reads it, `airlock verify` pointed at each frontend, and
/// a push while `apt-get update` runs in a loop against both.
#[test]
fn one_writer_two_frontends() {
    let garage = Garage::start();
    let whole = whole_site(&format!(
        "{}\n[[proxy.route]]\nhost = \"archive.ubuntu.com\"\npath = \"/ubuntu\"\nto = \"apt/mirror\"\n",
        garage.storage_config(PREFIX, "1s")
    ));
    let writer = &whole.site;
    let fronts = [
        garage.start_frontend(PREFIX, "1s"),
        garage.start_frontend(PREFIX, "1s"),
    ];
    let in_release = std::fs::read(writer.public("local").join("dists/stable/InRelease")).unwrap();
    for (_, server) in &fronts {
        wait_for(
            &format!("{}/apt/local/dists/stable/InRelease", server.url),
            &in_release,
        );
    }
    let local = writer.serve();
    let maas_local =
        crate::images::read_as_maas(&format!("{}/images", local.url), &writer.keyring());
    for (_, server) in &fronts {
        let lines = ["local", "mirror"].map(|repo| {
            format!(
                "deb [signed-by={}] {}/apt/{repo} stable main",
                writer.keyring().display(),
                server.url
            )
        });
        let apt = Apt::new(&lines.join("\n"), "amd64");
        apt.ok(&["update"]);
        apt.ok(&["download", "hello", "app", "libfoo"]);
        assert_eq!(
            apt.downloaded("hello_1.0_amd64.deb"),
            std::fs::read(&whole.hello).unwrap()
        );
        for file in ["app_1.0_amd64.deb", "libfoo_1.0_amd64.deb"] {
            assert_eq!(
                apt.downloaded(file),
                std::fs::read(whole.archive.path().join("pool/stable/main").join(file)).unwrap()
            );
        }
        assert_eq!(
            crate::images::read_as_maas(&format!("{}/images", server.url), &writer.keyring()),
            maas_local
        );
        // The snap store as snapd asks it: the same answers as the writer's own server.
        assert_eq!(
            snap_store_answers(&server.url),
            snap_store_answers(&local.url)
        );
        let (status, snap) = get(
            &format!("{}/api/v1/snaps/download/{SNAP_ID}_1.snap", server.url),
            &[],
        );
        assert_eq!((status, snap), (200, std::fs::read(&whole.snap).unwrap()));
        // The upstream names the writer routes, in both forms; nothing else.
        let mirror_release =
            std::fs::read(writer.public("mirror").join("dists/stable/InRelease")).unwrap();
        let upstream_name = "http://archive.ubuntu.com/ubuntu/dists/stable/InRelease";
        assert_eq!(
            get(
                &format!("{}/ubuntu/dists/stable/InRelease", server.url),
                &["-H", "Host: archive.ubuntu.com"]
            ),
            (200, mirror_release.clone())
        );
        assert_eq!(
            get(upstream_name, &["-x", &server.url]),
            (200, mirror_release)
        );
        assert_eq!(
            get(
                "http://example.com/ubuntu/dists/stable/InRelease",
                &["-x", &server.url]
            )
            .0,
            403
        );
        // The writer's verify, pointed at the frontend: what clients get is what it published.
        let out = writer.ok(&["verify", "--url", &server.url, "--full"]);
        for area in [
            "server",
            "apt/local",
            "apt/mirror",
            "images",
            "snaps",
            "proxy",
        ] {
            assert!(
                out.lines()
                    .any(|l| l.starts_with(area) && l.ends_with("ok")),
                "{area}: {out}"
            );
        }
    }

    let world = dpkg_deb(
        &whole.work.path().join("debs"),
        "world",
        "1.0",
        "amd64",
        "",
        "xz",
    );
    let bases: Vec<&str> = fronts.iter().map(|(_, s)| s.url.as_str()).collect();
    push_while_updating(writer, &world, &bases);
    let generation = crate::common::garage::pointer(
        &airlock_core::storage::bucket::Bucket::open(&garage.settings(PREFIX)).unwrap(),
    )
    .generation;
    for (_, server) in fronts {
        let (status, log) = server.stop();
        assert!(status.success(), "{log:?}");
        // The push under the loop is the last generation this frontend served.
        let served: Vec<u64> = log
            .iter()
            .filter_map(|l| l.split("serving generation ").nth(1)?.trim().parse().ok())
            .collect();
        assert!(served.len() >= 2 && served.is_sorted(), "{log:?}");
        assert_eq!(served.last(), Some(&generation), "{log:?}");
    }
}

/// What the snap store answers to the requests snapd makes (info, refresh, find, assertions),
/// the server's own URL replaced by `BASE`.
fn snap_store_answers(base: &str) -> Vec<String> {
    let refresh = r#"{"context": [], "actions": [{"action": "install", "instance-key": "install-1", "name": "hello-airlock", "channel": "stable", "epoch": null}], "fields": ["download", "revision", "version"]}"#;
    let requests: Vec<Vec<String>> = [
        "/v2/snaps/info/hello-airlock?architecture=amd64&fields=download,revision,version",
        "/v2/snaps/info/nothing-here",
        "/v2/snaps/find?q=hello",
        "/api/v1/snaps/names",
        &format!("/v2/assertions/snap-declaration/16/{SNAP_ID}"),
        "/api/v1/snaps/assertions/account/publisher1",
    ]
    .iter()
    .map(|path| vec![format!("{base}{path}")])
    .chain(std::iter::once(vec![
        "-X".into(),
        "POST".into(),
        "-H".into(),
        "Content-Type: application/json".into(),
        "-d".into(),
        refresh.into(),
        format!("{base}/v2/snaps/refresh"),
    ]))
    .collect();
    requests
        .iter()
        .map(|args| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = curl(&[&["-i"], &args[..]].concat());
            assert!(out.status.success(), "{args:?}: {out:?}");
            let text = String::from_utf8_lossy(&out.stdout).replace(base, "BASE");
            // The status line, the content type and the body; not the date.
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let status = head.lines().next().unwrap();
            let content_type = head
                .lines()
                .find(|l| l.to_lowercase().starts_with("content-type:"))
                .unwrap_or_default();
            assert!(!body.is_empty(), "{args:?}");
            format!("{args:?}\n{status}\n{content_type}\n{body}").replace(base, "BASE")
        })
        .collect()
}

/// A frontend started again with an empty cache serves the same bytes: it keeps nothing a
/// restart needs (the first run filled its disk cache, the second starts with none).
#[test]
fn a_frontend_restarted_with_an_empty_cache_serves_the_same_bytes() {
    let garage = Garage::start();
    let work = tempfile::tempdir().unwrap();
    let hello = dpkg_deb(&work.path().join("debs"), "hello", "1.0", "amd64", "", "xz");
    let large = large_deb(&work.path().join("debs"));
    let writer = writer(&garage, &[&hello, &large]);
    let in_release = std::fs::read(writer.public("local").join("dists/stable/InRelease")).unwrap();
    let paths = [
        "/apt/local/dists/stable/InRelease",
        "/apt/local/pool/main/h/hello/hello_1.0_amd64.deb",
        "/apt/local/pool/main/l/large/large_1.0_amd64.deb",
        "/airlock.gpg",
    ];
    let mut served = Vec::new();
    let front = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let server =
            garage.serve_frontend(front.path(), PREFIX, "1s", "", "cache_dir = \"cache\"\n");
        wait_for(
            &format!("{}/apt/local/dists/stable/InRelease", server.url),
            &in_release,
        );
        let bodies: Vec<Vec<u8>> = paths
            .iter()
            .map(|path| {
                let (status, body) = get(&format!("{}{path}", server.url), &[]);
                assert_eq!(status, 200, "round {round}: {path}");
                body
            })
            .collect();
        served.push(bodies);
        assert!(
            server
                .startup
                .iter()
                .any(|l| l.contains("keeping large blobs in") && l.contains(": 0 there")),
            "{:?}",
            server.startup
        );
        let (status, log) = server.stop();
        assert!(status.success(), "{log:?}");
        if round == 0 {
            // The first run kept the large blob; the restart begins with an empty cache.
            let cache = front.path().join("cache");
            assert!(
                !files_below(&cache).is_empty(),
                "nothing kept in {}",
                cache.display()
            );
            std::fs::remove_dir_all(&cache).unwrap();
        }
    }
    assert_eq!(served[0], served[1]);
    assert_eq!(served[0][1], std::fs::read(&hello).unwrap());
    assert_eq!(served[0][2], std::fs::read(&large).unwrap());
}

/// A frontend keeps the large blobs it streamed whole in its disk cache, within its size
/// (least recently used out first), serves them from there (the bucket stopped), and never
/// serves a damaged file whole: it is removed and fetched again.
#[test]
fn a_frontend_keeps_large_blobs_in_its_disk_cache() {
    let mut garage = Garage::start();
    let work = tempfile::tempdir().unwrap();
    let debs = work.path().join("debs");
    let names = ["large", "larger", "largest"];
    let packages: Vec<PathBuf> = names
        .iter()
        .zip(1..)
        .map(|(name, seed)| large_deb_named(&debs, name, seed))
        .collect();
    let bytes: Vec<Vec<u8>> = packages.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let writer = writer(
        &garage,
        &packages.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
    );
    let front = tempfile::tempdir().unwrap();
    let cache = front.path().join("cache");
    // Room for two of the three packages (9.4 MB each).
    let limit = 20_000_000;
    let server = garage.serve_frontend(
        front.path(),
        PREFIX,
        "1s",
        "",
        &format!("cache_dir = \"cache\"\ncache_size = \"{limit}\"\n"),
    );
    wait_for(
        &format!("{}/apt/local/dists/stable/InRelease", server.url),
        &std::fs::read(writer.public("local").join("dists/stable/InRelease")).unwrap(),
    );
    let url = |i: usize| {
        let name = names[i];
        format!(
            "{}/apt/local/pool/main/l/{name}/{name}_1.0_amd64.deb",
            server.url
        )
    };
    let cached = |i: usize| {
        let hex = airlock_core::storage::Sha256::of(&bytes[i]).to_hex();
        cache.join(&hex[..2]).join(hex)
    };
    let kept = || -> u64 {
        files_below(&cache)
            .iter()
            .map(|f| std::fs::metadata(f).unwrap().len())
            .sum()
    };

    // Streamed whole from the bucket: kept on the way. A range is not kept.
    assert_eq!(get(&url(0), &[]), (200, bytes[0].clone()));
    assert_eq!(std::fs::read(cached(0)).unwrap(), bytes[0]);
    let (status, part) = get(&url(1), &["-r", "0-99"]);
    assert_eq!((status, &part[..]), (206, &bytes[1][..100]));
    assert!(!cached(1).exists());
    // The third does not fit beside the first two: the one used least recently goes.
    assert_eq!(get(&url(1), &[]), (200, bytes[1].clone()));
    assert_eq!(
        get(&url(0), &["-r", "5-9"]),
        (206, bytes[0][5..10].to_vec())
    );
    assert_eq!(get(&url(2), &[]), (200, bytes[2].clone()));
    assert!(cached(0).exists() && cached(2).exists() && !cached(1).exists());
    assert!(kept() <= limit, "{} bytes kept", kept());
    assert!(files_below(&cache.join("tmp")).is_empty());

    // A damaged file is never served whole: the download fails before its end, the file
    // goes, and the next download comes from the bucket (and is kept again).
    let damaged = cached(2);
    std::fs::set_permissions(
        &damaged,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(&damaged, vec![0u8; bytes[2].len()]).unwrap();
    let out = curl(&["-o", "/dev/null", &url(2)]);
    assert!(!out.status.success(), "{out:?}");
    assert!(!damaged.exists());
    assert_eq!(get(&url(2), &[]), (200, bytes[2].clone()));
    assert_eq!(std::fs::read(&damaged).unwrap(), bytes[2]);

    // What the frontend says of it: two answers from the cache (the range, the damaged file),
    // five from the bucket, and the bytes the bucket sent for them.
    let from_bucket = (bytes[0].len() + 100 + bytes[1].len() + 2 * bytes[2].len()) as f64;
    let metrics = frontend_metrics(&server.url);
    assert_eq!(
        [
            metrics["airlock_frontend_large_blobs_total{source=\"cache\"}"],
            metrics["airlock_frontend_large_blobs_total{source=\"bucket\"}"],
            metrics["airlock_frontend_bucket_bytes_total"],
            metrics["airlock_frontend_cache_limit_bytes"],
            metrics["airlock_frontend_cache_blobs"],
            metrics["airlock_frontend_generation"],
        ],
        [2.0, 5.0, from_bucket, limit as f64, 2.0, 1.0]
    );
    assert!(metrics["airlock_frontend_cache_bytes"] <= limit as f64);
    assert!(metrics["airlock_http_requests_total{area=\"apt\",class=\"2xx\"}"] >= 7.0);
    let (status, body) = get(&format!("{}/status.json", server.url), &[]);
    assert_eq!(status, 200);
    let status: airlock_core::status::FrontendStatus = serde_json::from_slice(&body).unwrap();
    assert_eq!(status.served.map(|s| s.generation), Some(1));
    assert_eq!(status.cache.map(|c| c.blobs), Some(2));
    // The page at `/` says the same to a person.
    let out = curl(&["-sS", "-i", &format!("{}/", server.url)]);
    let page = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "content-type: text/html",
        "Push generation 1",
        "2 answered from the disk cache, 5 from the bucket",
        "s3://airlock/front/",
        "/apt/local/",
    ] {
        assert!(
            page.to_lowercase().contains(&expected.to_lowercase()),
            "{expected}: {page}"
        );
    }

    // With the bucket gone, what is kept is served, whole and in ranges; what is not is not.
    garage.stop();
    assert_eq!(get(&url(0), &[]), (200, bytes[0].clone()));
    assert_eq!(
        get(&url(2), &["-r", "1000-2000000"]),
        (206, bytes[2][1000..2_000_001].to_vec())
    );
    assert_eq!(get(&url(1), &[]).0, 502);
    let after = frontend_metrics(&server.url);
    for (name, value) in [
        ("airlock_frontend_large_blobs_total{source=\"cache\"}", 4.0),
        ("airlock_frontend_large_blobs_total{source=\"bucket\"}", 5.0),
        ("airlock_frontend_bucket_bytes_total", from_bucket),
    ] {
        assert_eq!(after[name], value, "{name}");
    }
    let (status, log) = server.stop();
    assert!(status.success(), "{log:?}");
    assert!(
        log.iter().any(|l| l.contains("removed from the cache")),
        "{log:?}"
    );
}

/// A frontend's `/metrics` (checked by promtool): each sample's value by name and labels.
fn frontend_metrics(base: &str) -> std::collections::HashMap<String, f64> {
    let (status, body) = get(&format!("{base}/metrics"), &[]);
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    crate::status::promtool_check(&text);
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_string(), value.parse().unwrap())
        })
        .collect()
}

/// A frontend runs on the server a data folder does: at its connection limit, the connection
/// idle longest is closed to make room, and new clients are served.
#[test]
fn a_frontend_keeps_to_its_connection_limit() {
    use std::io::Read;
    let garage = Garage::start();
    let work = tempfile::tempdir().unwrap();
    let hello = dpkg_deb(&work.path().join("debs"), "hello", "1.0", "amd64", "", "xz");
    let writer = writer(&garage, &[&hello]);
    let front = tempfile::tempdir().unwrap();
    let server = garage.serve_frontend(front.path(), PREFIX, "1s", "max_connections = 4\n", "");
    assert!(
        server
            .startup
            .iter()
            .any(|l| l.contains("at most 4 connections")),
        "{:?}",
        server.startup
    );
    let url = format!("{}/apt/local/dists/stable/InRelease", server.url);
    wait_for(
        &url,
        &std::fs::read(writer.public("local").join("dists/stable/InRelease")).unwrap(),
    );
    let address = server.url.trim_start_matches("http://").to_string();
    let mut idle: Vec<std::net::TcpStream> = (0..8)
        .map(|_| {
            let stream = std::net::TcpStream::connect(&address).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            stream
        })
        .collect();
    assert_eq!(get(&url, &[]).0, 200);
    // The first one was closed by the server (an end of stream, not a read timeout).
    let first = &mut idle[0];
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    match first.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the connection idle longest is still open: {other:?}"),
    }
}

/// A frontend with `[dns] listen` answers for the names the writer routes (pushed with the
/// content, followed from push to push: a name the writer stops routing is refused), with its
/// own `[dns]` addresses; other names are refused. With `tls_*`, it serves HTTPS too.
#[test]
fn a_frontend_answers_dns_for_the_pushed_routes_over_http_and_https() {
    use crate::dns::{dig, status};
    let garage = Garage::start();
    let writer = Site::new(
        "ed25519",
        &format!(
            "{}\n{}\n[[proxy.route]]\nhost = \"archive.ubuntu.com\"\npath = \"/ubuntu\"\nto = \"apt/local\"\n",
            local_repo(None),
            garage.storage_config(PREFIX, "1s")
        ),
    );
    writer.ok(&["publish"]);
    // HTTPS too, with the certificate `airlock tls init` made on the writer (it names the
    // routed hosts).
    writer.site_settings(crate::common::TLS);
    writer.ok(&["tls", "init"]);
    let tls = writer.path().join("tls");
    let port = crate::common::dnsmasq::free_port();
    let front = tempfile::tempdir().unwrap();
    let server = garage.serve_frontend(
        front.path(),
        PREFIX,
        "1s",
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\ntls_listen = \"127.0.0.1:0\"\n",
            tls.join("server.pem").display(),
            tls.join("server.key").display(),
        ),
        &format!("\n[dns]\nlisten = \"127.0.0.1:{port}\"\naddress = [\"192.0.2.10\"]\n"),
    );
    wait_for_answer(port, "archive.ubuntu.com");
    assert_eq!(status(&dig(port, &["example.com", "A"])), "REFUSED");
    // The name answered is served as the tree it is routed to, over HTTP and HTTPS.
    let in_release = std::fs::read(writer.public("local").join("dists/stable/InRelease")).unwrap();
    assert_eq!(
        get(
            &format!("{}/ubuntu/dists/stable/InRelease", server.url),
            &["-H", "Host: archive.ubuntu.com"]
        ),
        (200, in_release.clone())
    );
    let https = server.https.clone().expect("HTTPS is configured");
    let https_port = https.rsplit(':').next().unwrap();
    assert_eq!(
        get(
            &format!("https://archive.ubuntu.com:{https_port}/ubuntu/dists/stable/InRelease"),
            &[
                "--cacert",
                tls.join("ca.pem").to_str().unwrap(),
                "--resolve",
                &format!("archive.ubuntu.com:{https_port}:127.0.0.1"),
            ]
        ),
        (200, in_release.clone())
    );

    // The writer routes another name instead and pushes: the frontend takes the push, its
    // DNS responder (started again) answers for the new name and no longer for the old, and
    // the new name is served as the tree.
    let config = std::fs::read_to_string(writer.config()).unwrap();
    let moved = config.replace(
        "host = \"archive.ubuntu.com\"",
        "host = \"ports.ubuntu.com\"",
    );
    assert_ne!(moved, config);
    std::fs::write(writer.config(), moved).unwrap();
    writer.ok(&["push"]);
    wait_for_answer(port, "ports.ubuntu.com");
    assert_eq!(status(&dig(port, &["archive.ubuntu.com", "A"])), "REFUSED");
    let served_as = |host: &str| {
        get(
            &format!("{}/ubuntu/dists/stable/InRelease", server.url),
            &["-H", &format!("Host: {host}")],
        )
    };
    assert_eq!(served_as("ports.ubuntu.com"), (200, in_release));
    assert_eq!(served_as("archive.ubuntu.com").0, 404);
    let (exit, log) = server.stop();
    assert!(exit.success(), "{log:?}");
}

/// Waits (30 s at most) until the DNS responder on `port` answers `name` with the frontend's
/// address.
fn wait_for_answer(port: u16, name: &str) {
    use crate::dns::{answers, dig};
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = dig(port, &[name, "A"]);
        if answers(&answer) == [format!("{name}. A 192.0.2.10")] {
            return;
        }
        assert!(Instant::now() < deadline, "{answer}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
