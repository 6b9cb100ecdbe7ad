//! What a site looks like to its operators and their monitoring: `/status.json`, `/metrics`
//! (checked by promtool), the page at `/` (rendered by headless Chromium) and `airlock
//! status`, on a whole site after a verify run; counters that grow with requests and survive
//! a restart; a Valid-Until going from healthy to warning to error as it approaches.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airlock_core::status::{AptKind, Level, ProductKind, SiteStatus, Source};

use crate::common::site::{GA, ROUTES, local_repo, whole_site};
use crate::common::stream::SERIALS;
use crate::common::{Site, curl, dpkg_deb};

fn get(url: &str) -> String {
    let out = curl(&["-fsS", url]);
    assert!(
        out.status.success(),
        "GET {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn status_of(server_url: &str) -> SiteStatus {
    let body = get(&format!("{server_url}/status.json"));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The samples of an exposition, by name with its labels as written.
fn samples(metrics: &str) -> BTreeMap<String, f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_string(), value.parse().unwrap())
        })
        .collect()
}

pub(crate) fn promtool_check(metrics: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n{metrics}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn apt_2xx(status: &SiteStatus) -> u64 {
    status.http.requests["apt"]["2xx"]
}

#[test]
fn a_whole_site_reports_its_contents_health_and_counters() {
    let whole = whole_site(ROUTES);
    let site = &whole.site;
    let server = site.serve();
    let out = site.ok(&[
        "verify",
        "--url",
        &server.url,
        "site",
        "apt",
        "images",
        "snaps",
        "proxy",
    ]);
    assert!(out.contains("all checks passed"), "{out}");
    // Through the proxy: a hit and a miss on the mirror's route (verify's own requests
    // counted before).
    let counted = status_of(&server.url);
    let route_counts = |status: &SiteStatus| {
        let route = status
            .routes
            .iter()
            .find(|r| r.host == "archive.ubuntu.com")
            .unwrap();
        (route.hits, route.misses)
    };
    let (hits, misses) = route_counts(&counted);
    let proxied = |class: &str, status: &SiteStatus| status.http.requests["proxy"][class];
    let proxy = ["--proxy", &server.url];
    let hit = curl(
        &[
            &proxy[..],
            &[
                "-fsS",
                "http://archive.ubuntu.com/ubuntu/dists/stable/InRelease",
            ],
        ]
        .concat(),
    );
    assert!(hit.status.success());
    let miss = curl(
        &[
            &proxy[..],
            &["-sS", "http://archive.ubuntu.com/ubuntu/pool/missing.deb"],
        ]
        .concat(),
    );
    assert!(miss.status.success());

    let status = status_of(&server.url);
    assert_eq!(status.source, Source::Server);
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(status.health.level, Level::Healthy, "{:#?}", status.health);
    let server_info = status.server.as_ref().unwrap();
    assert!(server_info.started <= status.generated);

    // The local repo: one package, Valid-Until 7 days after its Date.
    let local = status.apt.iter().find(|c| c.name == "local").unwrap();
    assert_eq!(local.kind, AptKind::Repo);
    let stable = &local.suites[0];
    assert_eq!(stable.suite, "stable");
    assert_eq!(
        (
            stable.packages[0].component.as_str(),
            stable.packages[0].architecture.as_str(),
            stable.packages[0].packages
        ),
        ("main", "amd64", 1)
    );
    let (date, until) = (stable.date.unwrap(), stable.valid_until.unwrap());
    assert_eq!(until.as_second() - date.as_second(), 7 * 86_400);
    let left = stable.seconds_left.unwrap();
    assert!(left > 6 * 86_400 && left <= 7 * 86_400, "{left}");
    assert!(local.published.is_some() && local.bytes > 0);
    // The mirror: from its upstream, app and its dependency only, synced.
    let mirror = status.apt.iter().find(|c| c.name == "mirror").unwrap();
    assert_eq!(mirror.kind, AptKind::Mirror);
    assert_eq!(
        mirror
            .origin
            .upstream
            .as_deref()
            .map(|u| u.trim_end_matches('/')),
        Some(whole.archive_upstream.url.trim_end_matches('/'))
    );
    assert_eq!(mirror.suites[0].packages[0].packages, 2);
    assert!(mirror.last_sync.is_some());
    // The image stream: the GA kernel at its newest serial, and the bootloaders.
    let images = status.images.as_ref().unwrap();
    let ga = images.products.iter().find(|p| p.name == GA).unwrap();
    assert_eq!(ga.kind, ProductKind::Image);
    assert_eq!(
        (ga.os.as_str(), ga.release.as_str(), ga.arch.as_str()),
        ("ubuntu", "noble", "amd64")
    );
    assert_eq!(ga.newest_version.as_deref(), Some(SERIALS[1]));
    assert!(
        images
            .products
            .iter()
            .any(|p| p.kind == ProductKind::Bootloader)
    );
    assert!(images.last_sync.is_some() && images.bytes > 0);
    // The snap store: hello-airlock revision 1 on latest/stable.
    let snaps = status.snaps.as_ref().unwrap();
    let hello = snaps
        .snaps
        .iter()
        .find(|s| s.name == "hello-airlock")
        .unwrap();
    assert_eq!(hello.revisions, vec![1]);
    assert!(
        hello
            .channels
            .iter()
            .any(|c| c.channel == "latest/stable" && c.revision == 1 && c.version == "1.0")
    );
    // The verify run just made, every area passed.
    let verify = status.verify.as_ref().unwrap();
    assert!(verify.passed);
    // Limited to some areas (dns is not among them): the record says which.
    assert_eq!(verify.only, ["site", "apt", "images", "snaps", "proxy"]);
    assert!(verify.areas.iter().any(|a| a.area.starts_with("apt")));
    assert!(status.generated.as_second() - verify.at.as_second() < 600);
    // The store and its disk.
    assert!(status.storage.store_bytes >= local.bytes.min(mirror.bytes));
    assert!(status.storage.store_blobs > 0);
    assert!(status.storage.disk_free_bytes.unwrap() > 0);
    // The routes with their hit and miss.
    assert_eq!(route_counts(&status), (hits + 1, misses + 1));
    let route = status
        .routes
        .iter()
        .find(|r| r.host == "archive.ubuntu.com")
        .unwrap();
    assert_eq!(
        route.recent_misses.last().map(String::as_str),
        Some("/ubuntu/pool/missing.deb")
    );
    assert_eq!(proxied("2xx", &status), proxied("2xx", &counted) + 1);
    assert_eq!(proxied("4xx", &status), proxied("4xx", &counted) + 1);

    // /metrics: accepted by promtool, the same figures.
    let metrics = get(&format!("{}/metrics", server.url));
    promtool_check(&metrics);
    let values = samples(&metrics);
    let values = |name: &str| -> f64 {
        *values
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    let valid_until = values(
        r#"airlock_apt_valid_until_timestamp_seconds{kind="repo",name="local",suite="stable"}"#,
    );
    assert_eq!(valid_until as i64, until.as_second());
    assert_eq!(
        values(
            r#"airlock_apt_packages{architecture="amd64",component="main",kind="mirror",name="mirror",suite="stable"}"#
        ),
        2.0
    );
    assert_eq!(values("airlock_verify_last_run_passed"), 1.0);
    assert_eq!(values("airlock_health_status"), 0.0);
    assert_eq!(
        values(
            r#"airlock_proxy_misses_total{host="archive.ubuntu.com",path="/ubuntu",to="/apt/mirror"}"#
        ),
        (misses + 1) as f64
    );
    assert_eq!(
        values(&format!(
            "airlock_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    assert!(values("airlock_store_bytes") > 0.0 && values("airlock_disk_free_bytes") > 0.0);

    // The counter grows with each request...
    let before = apt_2xx(&status_of(&server.url));
    for _ in 0..5 {
        get(&format!("{}/apt/local/dists/stable/InRelease", server.url));
    }
    let after = status_of(&server.url);
    assert_eq!(apt_2xx(&after), before + 5);
    let metrics = samples(&get(&format!("{}/metrics", server.url)));
    assert_eq!(
        metrics[r#"airlock_http_requests_total{area="apt",class="2xx"}"#] as u64,
        before + 5
    );

    // ... and survives a restart.
    let (exit, _) = server.stop();
    assert!(exit.success());
    // Without a server, `airlock status` reads the data folder, and says so.
    let offline = site.ok(&["status"]);
    assert!(offline.starts_with("healthy"), "{offline}");
    assert!(offline.contains("no server answers"), "{offline}");
    assert!(
        offline.contains("hello-airlock") && offline.contains("ga-24.04"),
        "{offline}"
    );
    let json: SiteStatus = serde_json::from_str(&site.ok(&["status", "--json"])).unwrap();
    assert_eq!(json.source, Source::DataFolder);
    assert_eq!(apt_2xx(&json), before + 5);
    let server = site.serve();
    let again = status_of(&server.url);
    assert_eq!(apt_2xx(&again), before + 5);
    assert_eq!(route_counts(&again), (hits + 1, misses + 1));
    let online = site.ok(&["status", "--url", &server.url]);
    assert!(online.starts_with("healthy"), "{online}");
    assert!(
        online.contains(&format!("(as the server at {}", server.url)),
        "{online}"
    );

    page_in_chromium(&server.url);
}

/// The page as a browser renders it: health first, then the images, snaps, Valid-Until and
/// verify sections filled in. With `AIRLOCK_SCREENSHOTS=DIR`, also screenshots at desktop and
/// phone width in DIR, and the page itself (status.html), to look at.
fn page_in_chromium(url: &str) {
    let profile = tempfile::tempdir().unwrap();
    if let Some(dir) = std::env::var_os("AIRLOCK_SCREENSHOTS") {
        let sizes = [
            ("desktop", "1280,900"),
            ("phone", "390,844"),
            // The whole page, to read every section.
            ("desktop-long", "1280,3600"),
            ("phone-long", "390,6000"),
        ];
        for (name, size) in sizes {
            let file = std::path::Path::new(&dir).join(format!("status-{name}.png"));
            let out = Command::new("chromium")
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                ])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg(format!("--window-size={size}"))
                .arg(format!("--screenshot={}", file.display()))
                .arg(format!("{url}/"))
                .output()
                .unwrap();
            assert!(file.exists(), "{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let out = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("{url}/"))
        .output()
        .expect("chromium (Debian package chromium) is installed");
    let dom = String::from_utf8_lossy(&out.stdout);
    if let Some(dir) = std::env::var_os("AIRLOCK_SCREENSHOTS") {
        std::fs::write(
            std::path::Path::new(&dir).join("status.html"),
            dom.as_bytes(),
        )
        .unwrap();
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let section = |id: &str| -> &str {
        let start = dom
            .find(&format!("<section id=\"{id}\""))
            .unwrap_or_else(|| panic!("no {id} section:\n{dom}"));
        let end = dom[start..].find("</section>").unwrap() + start;
        &dom[start..end]
    };
    assert!(section("health").contains("Healthy"), "{dom}");
    assert!(dom.find("id=\"health\"") < dom.find("id=\"apt\""));
    let images = section("images");
    assert!(
        images.contains("ga-24.04") && images.contains(SERIALS[1]),
        "{images}"
    );
    assert!(images.contains("bootloader"), "{images}");
    let snaps = section("snaps");
    assert!(
        snaps.contains("hello-airlock") && snaps.contains("latest/stable"),
        "{snaps}"
    );
    let apt = section("apt");
    assert!(
        apt.contains("Valid-Until") && apt.contains("in 6 d"),
        "{apt}"
    );
    let verify = section("verify");
    assert!(verify.contains("passed"), "{verify}");
    assert!(
        verify.contains("only site apt images snaps proxy"),
        "{verify}"
    );
    let clients = section("clients");
    assert!(
        clients.contains("signed-by=/etc/apt/keyrings/airlock.gpg"),
        "{clients}"
    );
}

/// `airlock status --json`, read from the data folder (no server).
fn local_status(site: &Site) -> SiteStatus {
    serde_json::from_str(&site.ok(&["status", "--json"])).unwrap()
}

#[test]
fn valid_until_turns_from_healthy_to_warning_to_error() {
    let site = Site::new("ed25519", &local_repo(Some("8s")));
    let work = tempfile::tempdir().unwrap();
    let deb = dpkg_deb(work.path(), "hello", "1.0", "amd64", "", "xz");
    site.include("stable", "main", &deb);
    site.ok(&["publish"]);
    site.ok(&["verify", "--offline"]);
    let published = Instant::now();
    let status = local_status(&site);
    let suite = &status.apt[0].suites[0];
    let until = suite.valid_until.unwrap();
    // Warned about from half the validity on (a publish renews it then).
    let left = suite.seconds_left.unwrap();
    assert!(left > 4, "{left}: the test needs the first seconds");
    assert_eq!(status.health.level, Level::Healthy, "{:#?}", status.health);
    let at = |second: i64| {
        let wait = until.as_second() - second - jiff::Timestamp::now().as_second();
        if wait > 0 {
            std::thread::sleep(Duration::from_secs(wait as u64) + Duration::from_millis(200));
        }
    };
    at(3);
    let warned = local_status(&site);
    assert_eq!(warned.health.level, Level::Warning, "{:#?}", warned.health);
    assert!(
        warned.health.problems[0]
            .what
            .contains("apt/local stable: Valid-Until")
    );
    assert!(warned.health.problems[0].action.contains("airlock publish"));
    let line = site.ok(&["status"]);
    assert!(
        line.starts_with("warning: apt/local stable: Valid-Until"),
        "{line}"
    );
    at(-1);
    let expired = local_status(&site);
    assert_eq!(expired.health.level, Level::Error, "{:#?}", expired.health);
    assert!(expired.health.problems[0].what.contains("has passed"));
    assert!(published.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_gc_shows_in_the_served_status_at_once() {
    let site = Site::new("ed25519", &local_repo(None));
    let work = tempfile::tempdir().unwrap();
    let big = dpkg_deb(work.path(), "big", "1.0", "amd64", "", "none");
    site.include("stable", "main", &big);
    site.ok(&["publish"]);
    let server = site.serve();
    let before = status_of(&server.url).storage.store_bytes;
    site.ok(&["apt", "remove", "local", "stable", "big"]);
    site.ok(&["publish"]);
    let published = status_of(&server.url).storage.store_bytes;
    site.set_grace("1s");
    std::thread::sleep(Duration::from_millis(1100));
    let gc: serde_json::Value = serde_json::from_str(&site.ok(&["gc", "--json"])).unwrap();
    let freed = gc["removed_bytes"].as_u64().unwrap();
    assert!(freed > 0, "{gc}");
    // The server caches what it read from the data folder; gc's run replaces a state file
    // it watches, so the freed room shows on the next request.
    let after = status_of(&server.url).storage.store_bytes;
    assert_eq!(
        after,
        published - freed,
        "before {before}, published {published}"
    );
}
