//! Pointing the upstream names at airlock: the built-in responder queried with real `dig`,
//! forwarding to a real resolver (dnsmasq on loopback), and the generated configs run or
//! checked by the programs they are for (dnsmasq, named-checkzone).

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use crate::common::dnsmasq::{Dnsmasq, free_port};
use crate::common::site::local_repo;
use crate::common::{Server, Site};

/// The local repo, and the upstream names routed to it.
fn routes() -> String {
    local_repo(None)
        + "\n[[proxy.route]]\nhost = \"archive.ubuntu.com\"\npath = \"/ubuntu\"\nto = \"apt/local\"\n\n\
           [[proxy.route]]\nhost = \"images.maas.io\"\npath = \"/ephemeral-v3/stable\"\nto = \"apt/local\"\n"
}

pub(crate) fn dig(port: u16, args: &[&str]) -> String {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+tries=1", "+time=3"])
        .args(args)
        .output()
        .expect("dig (package bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn status(answer: &str) -> &str {
    answer
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("no answer")
}

/// The records of the answer section, as `NAME TYPE DATA` lines.
pub(crate) fn answers(answer: &str) -> Vec<String> {
    answer
        .split(";; ANSWER SECTION:\n")
        .nth(1)
        .map(|section| {
            section
                .lines()
                .take_while(|l| !l.is_empty())
                .map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    format!("{} {} {}", f[0], f[3], f[4])
                })
                .collect()
        })
        .unwrap_or_default()
}

fn dns_port(server: &Server) -> u16 {
    let line = server
        .startup
        .iter()
        .find(|l| l.contains("answering DNS on "))
        .unwrap_or_else(|| panic!("{:?}", server.startup));
    let address = line
        .split("answering DNS on ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    address.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn responder_answers_routed_names_and_forwards_only_for_the_site() {
    // The site's resolver, which knows a name airlock does not.
    let resolver = Dnsmasq::start("address=/other.example/192.0.2.99\n");
    let site = Site::new(
        "ed25519",
        &format!(
            "{}\n[dns]\nlisten = \"127.0.0.1:0\"\naddress = [\"192.0.2.10\", \"2001:db8::10\"]\nnames = [\"ntp.ubuntu.com\"]\nupstream = \"127.0.0.1:{}\"\n",
            routes(),
            resolver.port
        ),
    );
    site.ok(&["publish"]);
    let server = site.serve();
    let port = dns_port(&server);

    for (name, kind, want) in [
        (
            "archive.ubuntu.com",
            "A",
            "archive.ubuntu.com. A 192.0.2.10",
        ),
        (
            "ARCHIVE.ubuntu.com",
            "A",
            "ARCHIVE.ubuntu.com. A 192.0.2.10",
        ),
        (
            "archive.ubuntu.com",
            "AAAA",
            "archive.ubuntu.com. AAAA 2001:db8::10",
        ),
        ("images.maas.io", "A", "images.maas.io. A 192.0.2.10"),
        ("ntp.ubuntu.com", "A", "ntp.ubuntu.com. A 192.0.2.10"),
        // Not airlock's: relayed to the site's resolver.
        ("other.example", "A", "other.example. A 192.0.2.99"),
    ] {
        for transport in ["+notcp", "+tcp"] {
            let answer = dig(port, &[transport, name, kind]);
            assert_eq!(
                status(&answer),
                "NOERROR",
                "{name} {kind} {transport}: {answer}"
            );
            assert_eq!(
                answers(&answer),
                [want],
                "{name} {kind} {transport}: {answer}"
            );
        }
    }
    let mx = dig(port, &["archive.ubuntu.com", "MX"]);
    assert_eq!((status(&mx), answers(&mx).len()), ("NOERROR", 0), "{mx}");
    // ANY is refused, for our names and others.
    for name in ["archive.ubuntu.com", "other.example"] {
        let any = dig(port, &[name, "ANY"]);
        assert_eq!(status(&any), "REFUSED", "{any}");
    }

    // Garbage: a truncated query gets a bare FORMERR no larger than itself, a runt gets
    // nothing, and the responder keeps answering.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
    query.extend_from_slice(b"\x07archive\x06ubu");
    socket.send_to(&query, ("127.0.0.1", port)).unwrap();
    let mut reply = [0u8; 512];
    let n = socket
        .recv(&mut reply)
        .expect("an answer to a truncated query");
    assert!(
        n <= query.len(),
        "{n} bytes for a {}-byte query",
        query.len()
    );
    assert_eq!(&reply[..2], &[0x12, 0x34]);
    assert_eq!(reply[3] & 0x0f, 1, "FORMERR");
    socket.send_to(&[1, 2, 3], ("127.0.0.1", port)).unwrap();
    assert!(socket.recv(&mut reply).is_err(), "no answer to 3 bytes");
    let again = dig(port, &["archive.ubuntu.com", "A"]);
    assert_eq!(answers(&again), ["archive.ubuntu.com. A 192.0.2.10"]);

    // verify: every name resolves to this server through the responder, every route answers
    // with its tree's bytes.
    let resolver_arg = format!("127.0.0.1:{port}");
    let verify = site.run(&["verify", "--url", &server.url, "--resolver", &resolver_arg]);
    let text = String::from_utf8_lossy(&verify.stdout).into_owned();
    assert!(
        verify.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    for area in ["proxy", "dns"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(area) && l.ends_with(" ok")),
            "{text}"
        );
    }

    // A resolver that sends one name elsewhere: verify names exactly that name.
    let config = site.ok(&[
        "dns",
        "config",
        "--format",
        "dnsmasq",
        "--address",
        "192.0.2.10",
    ]);
    let wrong = Dnsmasq::start(&config.replace(
        "address=/images.maas.io/192.0.2.10",
        "address=/images.maas.io/192.0.2.66",
    ));
    let resolver_arg = format!("127.0.0.1:{}", wrong.port);
    let verify = site.run(&["verify", "--url", &server.url, "--resolver", &resolver_arg]);
    let text = String::from_utf8_lossy(&verify.stdout).into_owned();
    assert_eq!(verify.status.code(), Some(1), "{text}");
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("FAILED ")).collect();
    assert_eq!(failed.len(), 1, "only the damaged name fails: {text}");
    assert!(
        failed[0].starts_with("FAILED dns: images.maas.io via"),
        "{text}"
    );
    assert!(text.contains("got      192.0.2.66"), "{text}");
    // Limited to DNS: the same failure, and only the DNS and server lines.
    let verify = site.run(&[
        "verify",
        "--url",
        &server.url,
        "--resolver",
        &resolver_arg,
        "dns",
    ]);
    let text = String::from_utf8_lossy(&verify.stdout).into_owned();
    assert_eq!(verify.status.code(), Some(1), "{text}");
    let areas: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" checked "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(areas, ["dns", "server"], "{text}");

    // Ports listening: with [dns] listen naming the responder's port, verify asks it; with a
    // port nobody listens on, that is the one failure.
    let served_config = std::fs::read_to_string(site.config()).unwrap();
    let listens_on = |port: u16| {
        std::fs::write(
            site.config(),
            served_config.replace(
                "listen = \"127.0.0.1:0\"\naddress",
                &format!("listen = \"127.0.0.1:{port}\"\naddress"),
            ),
        )
        .unwrap();
        let verify = site.run(&["verify", "--url", &server.url, "site"]);
        let text = String::from_utf8_lossy(&verify.stdout).into_owned();
        (verify.status.code(), text)
    };
    let (code, text) = listens_on(port);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("server") && l.contains("2 checked")),
        "{text}"
    );
    let (code, text) = listens_on(free_port());
    assert_eq!(code, Some(1), "{text}");
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("FAILED ")).collect();
    assert_eq!(failed.len(), 1, "{text}");
    assert!(failed[0].contains("([dns] listen)"), "{text}");
    std::fs::write(site.config(), served_config).unwrap();
    drop(server);

    // A client outside [dns] allow gets no recursion: other names are refused.
    let site = Site::new(
        "ed25519",
        &format!(
            "{}\n[dns]\nlisten = \"127.0.0.1:0\"\naddress = \"192.0.2.10\"\nupstream = \"127.0.0.1:{}\"\nallow = [\"10.0.0.0/8\"]\n",
            routes(),
            resolver.port
        ),
    );
    let server = site.serve();
    let port = dns_port(&server);
    let other = dig(port, &["other.example", "A"]);
    assert_eq!(status(&other), "REFUSED", "{other}");
    assert!(!other.contains(" ra"), "no recursion offered: {other}");
    let ours = dig(port, &["archive.ubuntu.com", "AAAA"]);
    assert_eq!(
        (status(&ours), answers(&ours).len()),
        ("NOERROR", 0),
        "no IPv6 configured: {ours}"
    );
}

#[test]
fn generated_configs_work_in_the_real_resolvers() {
    let site = Site::new("ed25519", &routes());
    let config = |format: &str| {
        site.ok(&[
            "dns",
            "config",
            "--format",
            format,
            "--address",
            "192.0.2.10",
        ])
    };

    // dnsmasq with the snippet and an upstream that never answers: our names answer at once,
    // AAAA included (empty), so nothing leaks to the real hosts over IPv6.
    let dnsmasq = Dnsmasq::start(&format!("{}server=127.0.0.1#9\n", config("dnsmasq")));
    for name in [
        "archive.ubuntu.com",
        "images.maas.io",
        "mirror.archive.ubuntu.com",
    ] {
        let a = dig(dnsmasq.port, &[name, "A"]);
        assert_eq!(answers(&a), [format!("{name}. A 192.0.2.10")], "{a}");
        let aaaa = dig(dnsmasq.port, &[name, "AAAA"]);
        assert_eq!(
            (status(&aaaa), answers(&aaaa).len()),
            ("NOERROR", 0),
            "{aaaa}"
        );
    }

    // The response policy zone loads in BIND's own checker.
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("db.airlock.rpz");
    std::fs::write(&zone, config("bind-rpz")).unwrap();
    let out = Command::new("named-checkzone")
        .arg("airlock.rpz")
        .arg(&zone)
        .output()
        .expect("named-checkzone (package bind9-utils)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let unbound = config("unbound");
    assert!(
        unbound.contains("local-zone: \"archive.ubuntu.com.\" redirect"),
        "{unbound}"
    );
    assert!(
        unbound.contains("local-data: \"archive.ubuntu.com. 300 IN A 192.0.2.10\""),
        "{unbound}"
    );
    // MAAS splits ip_addresses on spaces (maasserver/forms/dnsresource.py): one argument.
    let maas = site.ok(&[
        "dns",
        "config",
        "--format",
        "maas",
        "--address",
        "192.0.2.10",
        "--address",
        "2001:db8::10",
    ]);
    assert!(
        maas.contains(
            "maas $PROFILE dnsresources create name=@ domain=images.maas.io ip_addresses=\"192.0.2.10 2001:db8::10\""
        ),
        "{maas}"
    );

    // Without an address to give, the command says what to do.
    let out = site.run(&["dns", "config"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--address"),
        "{out:?}"
    );
}
