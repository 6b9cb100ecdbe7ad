//! Upstream names answered from the mirrors: real apt-get with `Acquire::http::Proxy` and a
//! sources.list naming archive.ubuntu.com, curl in the transparent form (`--resolve`), and the
//! requests that must not make airlock an open proxy.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::upstream::{Archive, Upstream, pkg};
use common::{Apt, Site, curl};

fn archive() -> Archive {
    Archive::new(
        "ed25519",
        &["noble", "noble-security"],
        &["main"],
        &["amd64"],
        &[
            pkg("noble", "main", "hello", "1.0", "amd64", ""),
            pkg("noble-security", "main", "hello", "1.1", "amd64", ""),
        ],
    )
}

/// One raw HTTP/1.1 exchange, for what curl will not send.
fn raw(address: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn apt_and_curl_reach_the_mirror_under_ubuntu_names() {
    let archive = archive();
    let upstream = Upstream::serve(archive.path());
    let site = Site::new(
        "ed25519",
        &format!(
            "{}\n[proxy]\n\n[[proxy.route]]\nhost = \"archive.ubuntu.com\"\npath = \"/ubuntu\"\nto = \"apt/ubuntu\"\n\n\
             [[proxy.route]]\nhost = \"security.ubuntu.com\"\npath = \"/ubuntu/\"\nto = \"apt/ubuntu\"\n",
            archive.mirror_config("ubuntu", &upstream.url, "")
        ),
    );
    site.ok(&["sync"]);
    let server = site.serve();
    let address = server.url.trim_start_matches("http://").to_string();
    let proxy = format!("Acquire::http::Proxy={}", server.url);
    assert!(
        server.startup.iter().any(
            |l| l.contains("answering for http://archive.ubuntu.com/ubuntu/ from /apt/ubuntu/")
        ),
        "{:?}",
        server.startup
    );

    // apt as an Ubuntu machine has it, with airlock as its proxy.
    let key = site.keyring();
    let apt = Apt::new(
        &format!(
            "deb [signed-by={0}] http://archive.ubuntu.com/ubuntu noble main\n\
             deb [signed-by={0}] http://security.ubuntu.com/ubuntu noble-security main",
            key.display()
        ),
        "amd64",
    );
    let update = apt.ok(&["-o", &proxy, "update"]);
    assert!(
        update.contains("http://archive.ubuntu.com/ubuntu noble InRelease"),
        "{update}"
    );
    assert!(
        update.contains("http://security.ubuntu.com/ubuntu noble-security InRelease"),
        "{update}"
    );
    apt.ok(&["-o", &proxy, "download", "hello=1.0", "hello=1.1"]);
    for version in ["1.0", "1.1"] {
        let name = format!("hello_{version}_amd64.deb");
        let suite = if version == "1.0" {
            "noble"
        } else {
            "noble-security"
        };
        let original =
            std::fs::read(archive.path().join(format!("pool/{suite}/main/{name}"))).unwrap();
        assert_eq!(apt.downloaded(&name), original, "{name}");
    }

    // Transparent: DNS points the name here, the request carries only Host.
    let port = address.rsplit(':').next().unwrap();
    let resolve = format!("archive.ubuntu.com:{port}:127.0.0.1");
    let in_release = format!("http://archive.ubuntu.com:{port}/ubuntu/dists/noble/InRelease");
    let out = curl(&["-f", "--resolve", &resolve, &in_release]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        out.stdout,
        std::fs::read(site.public("ubuntu").join("dists/noble/InRelease")).unwrap()
    );
    // A folder without its slash redirects under the name the client used.
    let out = curl(&[
        "-sI",
        "--resolve",
        &resolve,
        &format!("http://archive.ubuntu.com:{port}/ubuntu/dists"),
    ]);
    assert!(
        stdout(&out)
            .to_ascii_lowercase()
            .contains("location: /ubuntu/dists/"),
        "{}",
        stdout(&out)
    );

    // A path of a routed host outside its routes, and hostile paths: never a file outside.
    let out = curl(&[
        "-x",
        &server.url,
        "-w",
        "%{http_code}",
        "http://archive.ubuntu.com/debian/dists/",
    ]);
    let text = stdout(&out);
    assert!(
        text.ends_with("404") && text.contains("/ubuntu/ -> /apt/ubuntu/"),
        "{text}"
    );
    for hostile in [
        "http://archive.ubuntu.com/ubuntu/../../../airlock.key",
        "http://archive.ubuntu.com/ubuntu/%2e%2e/%2e%2e/airlock.key",
        "http://archive.ubuntu.com/ubuntu/dists/..%2f..%2f..%2fairlock.key",
    ] {
        let out = curl(&[
            "--path-as-is",
            "-x",
            &server.url,
            "-w",
            "%{http_code}",
            hostile,
        ]);
        let text = stdout(&out);
        assert!(
            text.ends_with("400") || text.ends_with("404"),
            "{hostile}: {text}"
        );
        assert!(!text.contains("PRIVATE KEY"), "{hostile}");
    }

    // Not an open proxy: other hosts are refused by name, CONNECT too.
    let out = curl(&[
        "-x",
        &server.url,
        "-w",
        "%{http_code}",
        "http://example.com/",
    ]);
    let text = stdout(&out);
    assert!(
        text.ends_with("403") && text.contains("example.com is not routed here"),
        "{text}"
    );
    let out = curl(&["-x", &server.url, "https://example.com/"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{out:?}"
    );
    // Absolute URLs naming this server itself are ordinary requests.
    let out = curl(&[
        "-f",
        "-x",
        &server.url,
        &format!("{}/airlock.gpg", server.url),
    ]);
    assert_eq!(out.stdout, std::fs::read(&key).unwrap());

    // Smuggling and oversized headers are refused; the server keeps serving.
    let both = raw(
        &address,
        b"POST /ubuntu/dists/noble/InRelease HTTP/1.1\r\nHost: archive.ubuntu.com\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /airlock.key HTTP/1.1\r\nHost: archive.ubuntu.com\r\n\r\n",
    );
    assert!(both.starts_with("HTTP/1.1 4"), "{both}");
    assert!(!both.contains("PRIVATE KEY"), "{both}");
    let huge = format!(
        "GET /ubuntu/dists/noble/InRelease HTTP/1.1\r\nHost: archive.ubuntu.com\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let reply = raw(&address, huge.as_bytes());
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 431"),
        "{}",
        &reply[..reply.len().min(200)]
    );
    let out = curl(&["-f", "--resolve", &resolve, &in_release]);
    assert!(out.status.success(), "still serving after the bad requests");

    // The counters saw it all.
    let status = site.ok(&["status", "--url", &server.url]);
    let line = status
        .lines()
        .find(|l| l.starts_with("http://archive.ubuntu.com/ubuntu/"))
        .unwrap_or_else(|| panic!("{status}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(numbers[0] >= 4, "hits: {status}");
    assert!(
        status.contains("http://security.ubuntu.com/ubuntu/"),
        "{status}"
    );
    let home = curl(&[&format!("{}/", server.url)]);
    assert!(
        stdout(&home).contains("http://archive.ubuntu.com/ubuntu/"),
        "the home page lists the routes"
    );
}

#[test]
fn connect_passes_through_only_listed_targets() {
    let archive = archive();
    let upstream = Upstream::serve(archive.path());
    let target = upstream
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let site = Site::new(
        "ed25519",
        &format!(
            "{}\n[proxy]\npassthrough = [\"{target}\"]\n",
            archive.mirror_config("ubuntu", &upstream.url, "")
        ),
    );
    let server = site.serve();
    // curl -p: a CONNECT tunnel through airlock to the listed target.
    let out = curl(&[
        "-f",
        "-p",
        "-x",
        &server.url,
        &format!("{}dists/noble/Release", upstream.url),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        out.stdout,
        std::fs::read(archive.path().join("dists/noble/Release")).unwrap()
    );
    let out = curl(&["-p", "-x", &server.url, "http://127.0.0.1:9/"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{out:?}"
    );
}
