//! Upstream names answered from the mirrors: real apt-get with `Acquire::http::Proxy` and a
//! sources.list naming archive.ubuntu.com, curl in the transparent form (`--resolve`), and the
//! requests that must not make airlock an open proxy.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::stream::{BOOTLOADERS, Stream, clearsigned_json};
use crate::common::upstream::{Archive, Fault, Upstream, pkg};
use crate::common::{Apt, Server, Site, TLS, curl, gpgv};

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
    // A server refusing early may close before the client has written everything.
    let _ = stream.write_all(request);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

/// `airlock status` and the numbers (hits, pulled, misses) of the archive.ubuntu.com route.
fn archive_route_counts(site: &Site, url: &str) -> (String, Vec<u64>) {
    let status = site.ok(&["status", "--url", url]);
    let numbers = status
        .lines()
        .find(|l| l.starts_with("http://archive.ubuntu.com/ubuntu/"))
        .unwrap_or_else(|| panic!("{status}"))
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (status, numbers)
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
             [[proxy.route]]\nhost = \"security.ubuntu.com\"\npath = \"/ubuntu/\"\nto = \"apt/ubuntu\"\n\n\
             [[apt.repo]]\nname = \"other\"\nsuites = [\"stable\"]\ncomponents = [\"main\"]\narchitectures = [\"amd64\"]\n",
            archive.mirror_config("ubuntu", &upstream.url, "")
        ),
    );
    site.ok(&["sync"]);
    site.ok(&["publish"]);
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
    // Framed by the chunked encoding, answered, and the connection closed: the request
    // hidden behind is never read.
    assert!(both.starts_with("HTTP/1.1 405"), "{both}");
    assert_eq!(both.matches("HTTP/1.1 ").count(), 1, "{both}");
    assert!(both.contains("connection: close"), "{both}");
    let two_lengths = raw(
        &address,
        b"GET /ubuntu/dists/noble/InRelease HTTP/1.1\r\nHost: archive.ubuntu.com\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    );
    assert!(two_lengths.starts_with("HTTP/1.1 400"), "{two_lengths}");
    // apt pipelines: 20 requests sent at once, then one asking to close, all answered in order.
    let mut pipelined =
        "GET /ubuntu/dists/noble/InRelease HTTP/1.1\r\nHost: archive.ubuntu.com\r\n\r\n".repeat(20);
    pipelined.push_str(
        "GET /ubuntu/dists/noble/Release HTTP/1.1\r\nHost: archive.ubuntu.com\r\nConnection: close\r\n\r\n",
    );
    let answers = raw(&address, pipelined.as_bytes());
    assert_eq!(answers.matches("HTTP/1.1 200 OK").count(), 21, "{answers}");
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

    // verify: each route answers with its tree's bytes (two suites on two routes).
    let verify = site.run(&["verify", "--url", &server.url]);
    let text = stdout(&verify);
    assert!(verify.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("proxy") && l.contains(" 4 checked") && l.ends_with(" ok")),
        "{text}"
    );
    // The runbook of what was just checked.
    let runbook = site.ok(&["verify", "--url", &server.url, "--client-config"]);
    for line in [
        "every check passed".to_string(),
        format!(
            "deb [signed-by=/etc/apt/keyrings/airlock.gpg] {}/apt/ubuntu noble main",
            server.url
        ),
        format!(
            "deb [signed-by=/etc/apt/keyrings/airlock.gpg] {}/apt/other stable main",
            server.url
        ),
        format!(
            "http://archive.ubuntu.com/ubuntu/ -> {}/apt/ubuntu/",
            server.url
        ),
        "DNS: archive.ubuntu.com, security.ubuntu.com -> [dns] address is not set".to_string(),
    ] {
        assert!(runbook.contains(&line), "{line}\n{runbook}");
    }
    // The config now routes archive.ubuntu.com to another tree, the server still runs the old
    // one: verify names that route, and nothing else.
    let config = std::fs::read_to_string(site.config()).unwrap();
    let edited = config.replacen(
        "path = \"/ubuntu\"\nto = \"apt/ubuntu\"",
        "path = \"/ubuntu\"\nto = \"apt/other\"",
        1,
    );
    assert_ne!(config, edited);
    std::fs::write(site.config(), &edited).unwrap();
    let verify = site.run(&["verify", "--url", &server.url]);
    let text = stdout(&verify);
    assert_eq!(verify.status.code(), Some(1), "{text}");
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("FAILED ")).collect();
    assert_eq!(
        failed,
        ["FAILED proxy: http://archive.ubuntu.com/ubuntu/dists/stable/InRelease"],
        "{text}"
    );
    std::fs::write(site.config(), &config).unwrap();

    // The counters saw it all.
    let (status, numbers) = archive_route_counts(&site, &server.url);
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
    // A second listed target that accepts and then only waits: the tunnel's idle limit.
    let waiting = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let idle_target = waiting.local_addr().unwrap().to_string();
    // And one that sends back what it reads, as it reads it: traffic both ways at once.
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let echo_target = echo.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let (mut stream, _) = echo.accept().unwrap();
        let mut back = stream.try_clone().unwrap();
        let _ = std::io::copy(&mut stream, &mut back);
    });
    let site = Site::new(
        "ed25519",
        &format!(
            "{}\n[proxy]\npassthrough = [\"{target}\", \"{idle_target}\", \"{echo_target}\"]\ntunnel_idle = \"1s\"\n",
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

    let address = server.url.trim_start_matches("http://");
    let open_tunnel = |target: &str| {
        let mut client = TcpStream::connect(address).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            client,
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"
        )
        .unwrap();
        let mut head = [0u8; 256];
        let n = client.read(&mut head).unwrap();
        let head = String::from_utf8_lossy(&head[..n]);
        assert!(
            head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        client
    };

    // 32 MiB sent through the tunnel while its echo comes back: both ways at once, far
    // more than the sockets buffer, and all of it arrives.
    // Made before the tunnel opens: making them takes longer than the 1 s idle limit on a
    // busy machine, and an idle tunnel is closed.
    let sent: Vec<u8> = (0..32u32 << 20).map(|i| (i % 251) as u8).collect();
    let expected = sent.clone();
    let mut client = open_tunnel(&echo_target);
    let mut sender = client.try_clone().unwrap();
    let sending = std::thread::spawn(move || sender.write_all(&sent).unwrap());
    let mut echoed = vec![0u8; expected.len()];
    client.read_exact(&mut echoed).unwrap();
    sending.join().unwrap();
    assert!(echoed == expected, "the echo differs");

    // A tunnel with bytes moving every 0.3 s outlives its 1 s idle limit; once nothing moves,
    // airlock closes both ends.
    let mut client = open_tunnel(&idle_target);
    let (mut far, _) = waiting.accept().unwrap();
    far.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for _ in 0..8 {
        client.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        far.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut rest = Vec::new();
    assert_eq!(
        client.read_to_end(&mut rest).unwrap(),
        0,
        "closed, client side"
    );
    assert_eq!(
        far.read_to_end(&mut rest).unwrap(),
        0,
        "closed, upstream side"
    );
}

/// A gateway with upstream access: nothing synced, every miss fetched from the upstream that
/// plays archive.ubuntu.com, checked against its signed indices, stored, served again.
#[test]
fn pull_through_fetches_each_file_once_and_never_stores_a_bad_one() {
    let archive = Archive::new(
        "ed25519",
        &["noble"],
        &["main"],
        &["amd64"],
        &[
            pkg("noble", "main", "hello", "1.0", "amd64", ""),
            pkg("noble", "main", "tampered", "1.0", "amd64", ""),
        ],
    );
    let upstream = Upstream::serve(archive.path());
    let site = Site::new(
        "ed25519",
        &format!(
            "{}\n[proxy]\nupstream = true\n\n[[proxy.route]]\nhost = \"archive.ubuntu.com\"\npath = \"/ubuntu\"\nto = \"apt/ubuntu\"\nupstream = \"{}\"\n",
            archive.mirror_config("ubuntu", &upstream.url, ""),
            upstream.url
        ),
    );
    let server = site.serve();
    let proxy = format!("Acquire::http::Proxy={}", server.url);

    // apt trusts the upstream's own key: the InRelease is passed on as signed.
    let apt = Apt::new(
        &format!(
            "deb [signed-by={}] http://archive.ubuntu.com/ubuntu noble main",
            archive.keyring.display()
        ),
        "amd64",
    );
    apt.ok(&["-o", &proxy, "update"]);
    let fetched = upstream.take_requests();
    assert!(
        fetched.iter().any(|r| r == "dists/noble/InRelease"),
        "{fetched:?}"
    );

    // 20 clients want the same file at once, while the upstream sends it slowly.
    let deb = "pool/noble/main/hello_1.0_amd64.deb";
    let original = std::fs::read(archive.path().join(deb)).unwrap();
    upstream.throttle(64, Duration::from_millis(20));
    let url = format!("http://archive.ubuntu.com/ubuntu/{deb}");
    let start = std::sync::Arc::new(std::sync::Barrier::new(20));
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let (start, proxy_url, url) = (start.clone(), server.url.clone(), url.clone());
            std::thread::spawn(move || {
                start.wait();
                // Some ask for a range of the file in flight.
                let range = if i % 5 == 0 {
                    vec!["-r", "10-109"]
                } else {
                    vec![]
                };
                let mut args = vec!["-f", "-x", proxy_url.as_str()];
                args.extend(range);
                args.push(url.as_str());
                let out = curl(&args);
                assert!(out.status.success(), "client {i}: {out:?}");
                (i, out.stdout)
            })
        })
        .collect();
    for client in clients {
        let (i, body) = client.join().unwrap();
        let want = if i % 5 == 0 {
            &original[10..110]
        } else {
            &original[..]
        };
        assert_eq!(body, want, "client {i}");
    }
    let asked: Vec<String> = upstream.take_requests();
    assert_eq!(
        asked.iter().filter(|r| r.starts_with(deb)).count(),
        1,
        "{asked:?}"
    );
    upstream.clear_faults();

    // The next client is served from the store: the upstream hears nothing.
    let out = curl(&["-f", "-x", &server.url, &url]);
    assert_eq!(out.stdout, original);
    assert_eq!(upstream.take_requests(), Vec::<String>::new());

    // A sync on the same site writes small downloads in place, journaled until its flush:
    // while a journal lists a stored file, it is hashed before it is served. One whose bytes
    // are not whole: refused for now while a writer runs (the test holds the site lock)...
    let hex = airlock_core::storage::Sha256::of(&original).to_hex();
    let blob = site
        .path()
        .join("data/store/sha256")
        .join(&hex[..2])
        .join(&hex);
    let journals = site.path().join("data/store/unflushed");
    std::fs::create_dir_all(&journals).unwrap();
    std::fs::write(journals.join("journal-test"), format!("{hex}\n")).unwrap();
    std::fs::write(&blob, vec![0; original.len()]).unwrap();
    let writer = std::fs::File::create(site.path().join("data/lock")).unwrap();
    writer.lock().unwrap();
    let out = curl(&["-x", &server.url, "-w", "%{http_code}", &url]);
    let text = stdout(&out);
    assert!(
        text.ends_with("503") && text.contains("being written to the store"),
        "{text}"
    );
    assert_eq!(upstream.take_requests(), Vec::<String>::new());
    // ... and once no writer runs, the journal is stale: checked as the next writer would
    // (the damaged file removed, the journal closed), the file fetched and checked again.
    drop(writer);
    let out = curl(&["-f", "-x", &server.url, &url]);
    assert_eq!(out.stdout, original);
    assert_eq!(std::fs::read(&blob).unwrap(), original);
    assert_eq!(std::fs::read_dir(&journals).unwrap().count(), 0);
    let asked = upstream.take_requests();
    assert_eq!(
        asked.iter().filter(|r| r.starts_with(deb)).count(),
        1,
        "{asked:?}"
    );

    // A file whose bytes differ from the signed index is refused, and not kept.
    let bad = "pool/noble/main/tampered_1.0_amd64.deb";
    upstream.fault(bad, Fault::Corrupt);
    for _ in 0..2 {
        let out = curl(&[
            "-x",
            &server.url,
            "-w",
            "%{http_code}",
            &format!("http://archive.ubuntu.com/ubuntu/{bad}"),
        ]);
        let text = stdout(&out);
        assert!(
            text.ends_with("502") && text.contains("the signed index says"),
            "{text}"
        );
    }
    let asked = upstream.take_requests();
    assert_eq!(
        asked.iter().filter(|r| r.starts_with(bad)).count(),
        2,
        "asked again each time: {asked:?}"
    );
    upstream.clear_faults();
    apt.ok(&["-o", &proxy, "download", "tampered"]);
    assert_eq!(
        apt.downloaded("tampered_1.0_amd64.deb"),
        std::fs::read(archive.path().join(bad)).unwrap()
    );

    // Paths no signed index lists are never fetched.
    for path in [
        "pool/noble/main/other_1_amd64.deb",
        "dists/noble/main/binary-amd64/Packages.bz2",
        "dists/unknown/InRelease",
    ] {
        let out = curl(&[
            "-x",
            &server.url,
            "-w",
            "%{http_code}",
            &format!("http://archive.ubuntu.com/ubuntu/{path}"),
        ]);
        assert!(stdout(&out).ends_with("404"), "{path}: {}", stdout(&out));
    }
    let asked = upstream.take_requests();
    assert!(
        asked
            .iter()
            .all(|r| !r.contains("other_1") && !r.contains("bz2") && !r.contains("unknown")),
        "{asked:?}"
    );
    // Hits include the pulled files; misses are the refused paths.
    let (status, numbers) = archive_route_counts(&site, &server.url);
    assert!(numbers[1] >= 21, "pulled: {status}");
    assert!(numbers[2] >= 3, "misses: {status}");

    // After a restart the gateway knows nothing in memory: a client asking straight for a
    // pool file gets it from the store once the signed indices are read again.
    drop(server);
    let server = site.serve();
    let out = curl(&["-f", "-x", &server.url, &url]);
    assert_eq!(out.stdout, original);
    let asked = upstream.take_requests();
    assert_eq!(
        asked,
        ["dists/noble/InRelease"],
        "only the InRelease is checked again"
    );

    // `airlock gc` past a grace period of 1 s empties the cache (no tree names those files)
    // while the gateway runs: its clients still get everything, fetched and checked again.
    site.set_grace("1s");
    std::thread::sleep(Duration::from_millis(1100));
    let said = site.ok(&["gc"]);
    assert!(!said.starts_with("removed 0 "), "{said}");
    let apt = Apt::new(
        &format!(
            "deb [signed-by={}] http://archive.ubuntu.com/ubuntu noble main",
            archive.keyring.display()
        ),
        "amd64",
    );
    let proxy = format!("Acquire::http::Proxy={}", server.url);
    apt.ok(&["-o", &proxy, "update"]);
    apt.ok(&["-o", &proxy, "download", "hello"]);
    let asked = upstream.take_requests();
    assert!(
        asked.iter().any(|r| r == "dists/noble/InRelease")
            && asked.iter().any(|r| r.starts_with("pool/")),
        "{asked:?}"
    );
}

/// The gateway pulls the image stream through too: MAAS, pointed at images.maas.io, gets
/// the upstream's documents as the upstream signed them (checked here by gpgv with the
/// upstream's key) and every file they list, each fetched once and checked first.
#[test]
fn pull_through_serves_the_image_stream_as_the_upstream_signed_it() {
    use sha2::Digest;
    let stream = Stream::new();
    let upstream = Upstream::serve(stream.path());
    let site = Site::new(
        "ed25519",
        &format!(
            "[images]\nurl = \"http://images.maas.io/ephemeral-v3/stable/\"\nkeyring = \"{}\"\n\n[proxy]\nupstream = true\n\n[[proxy.route]]\nhost = \"images.maas.io\"\npath = \"/ephemeral-v3/stable\"\nto = \"images\"\nupstream = \"{}\"\n",
            stream.keyring.display(),
            upstream.url
        ),
    );
    // HTTPS beside HTTP, with the site CA: the certificate also names the routed hosts.
    site.site_settings(TLS);
    site.ok(&["tls", "init"]);
    let server = site.serve();
    let get = |path: &str| {
        curl(&[
            "-s",
            "--path-as-is",
            "-w",
            "\n%{http_code}",
            "-x",
            &server.url,
            &format!("http://images.maas.io/ephemeral-v3/stable/{path}"),
        ])
        .stdout
    };
    let ok = |path: &str| {
        let mut body = get(path);
        let end = body.iter().rposition(|b| *b == b'\n').unwrap();
        assert_eq!(
            &body[end + 1..],
            b"200",
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
        body.truncate(end);
        body
    };
    let verified = |path: &str| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("document.sjson");
        std::fs::write(&file, ok(path)).unwrap();
        let (good, said) = gpgv(&stream.keyring, &[&file]);
        assert!(good, "gpgv {path}: {said}");
        clearsigned_json(&std::fs::read_to_string(&file).unwrap())
    };

    // A file whose bytes differ from its signed products document: refused, not kept.
    let tampered = "noble/amd64/20250201/squashfs";
    upstream.fault(tampered, Fault::Corrupt);
    let said = String::from_utf8(get(tampered)).unwrap();
    assert!(
        said.ends_with("502") && said.contains("the signed index says"),
        "{said}"
    );
    upstream.clear_faults();

    // Read as MAAS reads it: every document, every item.
    let mut items = Vec::new();
    let index = verified("streams/v1/index.sjson");
    for (content_id, entry) in index["index"].as_object().unwrap() {
        let products = verified(entry["path"].as_str().unwrap());
        assert_eq!(&products["content_id"], content_id);
        for product in products["products"].as_object().unwrap().values() {
            for version in product["versions"].as_object().unwrap().values() {
                for item in version["items"].as_object().unwrap().values() {
                    let path = item["path"].as_str().unwrap();
                    let body = ok(path);
                    assert_eq!(body.len() as u64, item["size"].as_u64().unwrap(), "{path}");
                    assert_eq!(
                        hex::encode(sha2::Sha256::digest(&body)),
                        item["sha256"].as_str().unwrap(),
                        "{path}"
                    );
                    items.push(path.to_string());
                }
            }
        }
    }
    assert!(items.len() > 20 && items.contains(&tampered.to_string()));
    // The unsigned form is the verified text.
    let json: serde_json::Value = serde_json::from_slice(&ok("streams/v1/index.json")).unwrap();
    assert_eq!(json, index);
    let asked = upstream.take_requests();
    for path in items.iter().collect::<std::collections::BTreeSet<_>>() {
        let times = asked
            .iter()
            .filter(|r| r.split(' ').next() == Some(path))
            .count();
        let want = if path == tampered { 2 } else { 1 };
        assert_eq!(times, want, "{path}: {asked:?}");
    }

    // Again: everything from the store, documents included (checked at most every 30 s).
    for path in &items {
        ok(path);
    }
    let signed = ok("streams/v1/index.sjson");
    assert_eq!(upstream.take_requests(), Vec::<String>::new());

    // The same under https://images.maas.io for a client that trusts the site CA.
    let https = server.https.clone().expect("HTTPS is configured");
    let port = https.rsplit(':').next().unwrap();
    let out = curl(&[
        "-fsS",
        "--cacert",
        site.path().join("tls/ca.pem").to_str().unwrap(),
        "--resolve",
        &format!("images.maas.io:{port}:127.0.0.1"),
        &format!("https://images.maas.io:{port}/ephemeral-v3/stable/streams/v1/index.sjson"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, signed);

    // Paths no signed document lists are never fetched; nor are other document names.
    for path in [
        "noble/amd64/20250301/squashfs",
        "streams/v1/other.sjson",
        "streams/v1/index.json.gpg",
        "../../etc/passwd",
    ] {
        let said = String::from_utf8(get(path)).unwrap();
        assert!(
            said.ends_with("404") || said.ends_with("400"),
            "{path}: {said}"
        );
    }
    assert_eq!(upstream.take_requests(), Vec::<String>::new());

    let status = |server: &Server, path: &str| {
        let out = curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-x",
            &server.url,
            &format!("http://images.maas.io/ephemeral-v3/stable/{path}"),
        ]);
        String::from_utf8(out.stdout).unwrap()
    };
    // After a restart (nothing learned in memory) with an index that no longer verifies:
    // nothing is served on its word, stored files included.
    drop(server);
    let server = site.serve();
    upstream.fault("streams/v1/index.sjson", Fault::Corrupt);
    assert_eq!(status(&server, "streams/v1/index.sjson"), "502");
    assert_eq!(status(&server, tampered), "502");
    // A products document that fails keeps nobody from the others' files.
    drop(server);
    let server = site.serve();
    upstream.clear_faults();
    upstream.fault(&format!("streams/v1/{}.sjson", BOOTLOADERS), Fault::Corrupt);
    assert_eq!(status(&server, tampered), "200");
    let bootloader = items
        .iter()
        .find(|p| p.starts_with("bootloaders/"))
        .unwrap();
    assert_eq!(status(&server, bootloader), "502");
    // Asked for again, the failed document is not fetched again within 30 s.
    upstream.take_requests();
    assert_eq!(status(&server, bootloader), "502");
    assert_eq!(upstream.take_requests(), Vec::<String>::new());
}
