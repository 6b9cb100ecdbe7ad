//! SIGHUP reloads airlock.toml in the running server: a download in flight goes on byte for
//! byte while the routes, the certificate and the listen address change; a configuration that
//! does not parse is refused and the old one kept.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::site::LOCAL;
use crate::common::{Site, TLS, curl};

const BIG_MB: usize = 200;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// 200 MB that differ from one megabyte to the next, so that a byte lost or repeated shows.
fn write_big_file(path: &std::path::Path) {
    let mut block: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..BIG_MB {
        block[..8].copy_from_slice(&(i as u64).to_le_bytes());
        file.write_all(&block).unwrap();
    }
    file.flush().unwrap();
}

/// Repeats `check` until it holds, for up to 10 s.
fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn get(url: &str, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["--max-time", "5", "-f"];
    args.extend_from_slice(extra);
    args.push(url);
    let out = curl(&args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn sighup_reloads_without_dropping_downloads() {
    let site = Site::new("ed25519", LOCAL);
    site.site_settings(TLS);
    site.ok(&["tls", "init"]);
    site.ok(&["publish"]);
    let dir = site.path().join("data/public/apt/big");
    std::fs::create_dir_all(&dir).unwrap();
    write_big_file(&dir.join("big.bin"));
    let server = site.serve();
    let https = server.https.clone().unwrap();
    let https_port = https.rsplit(':').next().unwrap().to_string();
    let ca = site.path().join("tls/ca.pem");
    let ca = ca.to_str().unwrap();
    let renamed = |host: &str| format!("{host}:{https_port}:127.0.0.1");
    let new_name = format!("https://reloaded.example:{https_port}/airlock.asc");
    let resolve = renamed("reloaded.example");
    let new_cert = || get(&new_name, &["--cacert", ca, "--resolve", &resolve]);
    let routed = |base: &str| {
        get(
            &format!("{base}/ubuntu/dists/stable/InRelease"),
            &["-H", "Host: archive.example"],
        )
    };
    assert!(!routed(&server.url).0, "the route exists before the reload");
    assert!(
        !new_cert().0,
        "the new certificate is in use before the reload"
    );

    // A download spanning the reloads: 200 MB at 40 MB/s.
    let download = tempfile::tempdir().unwrap();
    let downloaded = download.path().join("big.bin");
    let mut curl_child = Command::new("curl")
        .args(["-sS", "-f", "--limit-rate", "40M", "-o"])
        .arg(&downloaded)
        .arg(format!("{}/apt/big/big.bin", server.url))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));

    // A configuration that does not parse: refused, the server goes on as it was.
    let good = std::fs::read_to_string(site.config()).unwrap();
    std::fs::write(site.config(), "[site\nlisten = ").unwrap();
    server.signal("HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert!(get(&format!("{}/airlock.asc", server.url), &[]).0);

    // A new route, a new certificate and a new port.
    std::fs::write(site.config(), &good).unwrap();
    site.ok(&["tls", "init", "--name", "reloaded.example"]);
    let port = free_port();
    let changed = good.replace(
        "\nlisten = \"127.0.0.1:0\"",
        &format!("\nlisten = \"127.0.0.1:{port}\""),
    ) + "\n[[proxy.route]]\nhost = \"archive.example\"\npath = \"/ubuntu\"\nto = \"apt/local\"\n";
    std::fs::write(site.config(), changed).unwrap();
    server.signal("HUP");
    let new_url = format!("http://127.0.0.1:{port}");
    eventually("the new route answers on the new port", || {
        routed(&new_url).0
    });
    eventually("the new certificate is served", || new_cert().0);
    assert!(
        !get(&format!("{}/airlock.asc", server.url), &[]).0,
        "the old port still accepts"
    );

    let status = curl_child.wait().unwrap();
    assert!(status.success(), "the download failed across the reloads");
    let (_, log) = server.stop();
    let sent = std::fs::read(dir.join("big.bin")).unwrap();
    let got = std::fs::read(&downloaded).unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "the download differs from the file");
    let log = log.join("\n");
    assert!(log.contains("reload refused"), "{log}");
    assert!(
        log.contains(&format!("listening on http://127.0.0.1:{port}/")),
        "{log}"
    );
}
