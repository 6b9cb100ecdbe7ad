//! The DNS responder under load and with awkward upstream answers: a client holding many TCP
//! connections does not keep others out; forwarded answers larger than the client takes come
//! back truncated (TC) and whole over TCP, never malformed; an upstream that truncates is
//! asked again over TCP; a dead upstream gets the client SERVFAIL, not silence.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::Site;
use crate::common::dnsmasq::{Dnsmasq, free_port};

fn dig(port: u16, args: &[&str]) -> String {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+tries=1", "+time=5"])
        .args(args)
        .output()
        .expect("dig (package bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn field<'a>(answer: &'a str, label: &str) -> &'a str {
    answer
        .split(label)
        .nth(1)
        .and_then(|s| s.split([',', '\n', ';']).next())
        .map(str::trim)
        .unwrap_or("none")
}

/// `flags: qr rd ra tc` from dig's header line, as a list.
fn flags(answer: &str) -> Vec<&str> {
    field(answer, "flags:").split_whitespace().collect()
}

fn received(answer: &str) -> usize {
    field(answer, "MSG SIZE  rcvd:")
        .parse()
        .unwrap_or(usize::MAX)
}

/// dnsmasq with TXT records of `count` x 240 bytes under big.example: it answers over UDP
/// with at most about 1 KB, truncating the rest.
fn truncating_resolver(count: usize) -> Dnsmasq {
    let mut config = String::new();
    for i in 0..count {
        config.push_str(&format!(
            "txt-record=big.example,\"{i:03}{}\"\n",
            "x".repeat(237)
        ));
    }
    Dnsmasq::start(&config)
}

/// A site answering DNS, forwarding for 127.0.0.0/8 to `upstream`.
fn responder(upstream: u16) -> (Site, crate::common::Server, u16) {
    let site = Site::new(
        "ed25519",
        &format!(
            "[dns]\nlisten = \"127.0.0.1:0\"\naddress = [\"192.0.2.10\"]\nnames = [\"archive.ubuntu.com\"]\nupstream = \"127.0.0.1:{upstream}\"\nallow = [\"127.0.0.0/8\"]\n"
        ),
    );
    let server = site.serve();
    let line = server
        .startup
        .iter()
        .find(|l| l.contains("answering DNS on "))
        .unwrap_or_else(|| panic!("{:?}", server.startup))
        .clone();
    let port = line
        .split("answering DNS on ")
        .nth(1)
        .and_then(|a| a.split(' ').next())
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .unwrap()
        .port();
    (site, server, port)
}

/// A resolver that answers every query with `count` TXT records of 240 bytes, over UDP (never
/// truncated, whatever the size) and TCP, on one loopback port.
struct BigUpstream {
    port: u16,
}

impl BigUpstream {
    fn start(count: usize) -> BigUpstream {
        // The port UDP gets may be taken for TCP: try until one is free for both.
        let (udp, tcp, port) = loop {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = udp.local_addr().unwrap().port();
            if let Ok(tcp) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                break (udp, tcp, port);
            }
        };
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok((n, peer)) = udp.recv_from(&mut buffer) {
                let _ = udp.send_to(&big_reply(&buffer[..n], count), peer);
            }
        });
        std::thread::spawn(move || {
            for mut stream in tcp.incoming().map_while(Result::ok) {
                let mut length = [0u8; 2];
                if stream.read_exact(&mut length).is_err() {
                    continue;
                }
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(length))];
                if stream.read_exact(&mut query).is_ok() {
                    let reply = big_reply(&query, count);
                    let _ = stream.write_all(&(reply.len() as u16).to_be_bytes());
                    let _ = stream.write_all(&reply);
                }
            }
        });
        BigUpstream { port }
    }
}

/// The answer to `query` (its id and first question) with `count` TXT records.
fn big_reply(query: &[u8], count: usize) -> Vec<u8> {
    let mut end = 12;
    while query[end] != 0 {
        end += 1 + usize::from(query[end]);
    }
    end += 5;
    let mut reply = query[..2].to_vec();
    reply.extend([0x81, 0x80, 0, 1]);
    reply.extend((count as u16).to_be_bytes());
    reply.extend([0, 0, 0, 0]);
    reply.extend(&query[12..end]);
    for i in 0..count {
        let text = format!("{i:03}{}", "x".repeat(237));
        reply.extend([0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60]);
        reply.extend(((text.len() + 1) as u16).to_be_bytes());
        reply.push(text.len() as u8);
        reply.extend(text.bytes());
    }
    reply
}

#[test]
fn forwarded_answers_fit_the_client_and_a_dead_upstream_gets_servfail() {
    // 30 x 240 bytes over UDP: over 7 KB, more than the responder once read from upstream.
    let big = BigUpstream::start(30);
    let (_site, _server, port) = responder(big.port);
    let answer = dig(port, &["+ignore", "+bufsize=65000", "big.example", "TXT"]);
    assert!(!answer.contains("malformed"), "{answer}");
    assert_eq!(field(&answer, "status:"), "NOERROR", "{answer}");
    assert!(flags(&answer).contains(&"tc"), "{answer}");
    assert!(received(&answer) <= 4096, "{answer}");
    // No EDNS: no more than 512 bytes.
    let answer = dig(port, &["+ignore", "+noedns", "big.example", "TXT"]);
    assert!(
        flags(&answer).contains(&"tc") && received(&answer) <= 512,
        "{answer}"
    );
    // dig's own way: truncated over UDP, then whole over TCP.
    for args in [&["big.example", "TXT"][..], &["+tcp", "big.example", "TXT"]] {
        let answer = dig(port, args);
        assert_eq!(field(&answer, "ANSWER:"), "30", "{args:?}: {answer}");
    }

    // An upstream that truncates, for a 2 KB answer the client takes over UDP:
    // asked again over TCP, the whole answer goes back over UDP.
    let middle = truncating_resolver(8);
    let (_site, _server, port) = responder(middle.port);
    let answer = dig(port, &["+ignore", "+bufsize=4096", "big.example", "TXT"]);
    assert!(!flags(&answer).contains(&"tc"), "{answer}");
    assert_eq!(field(&answer, "ANSWER:"), "8", "{answer}");

    // Nothing listens upstream: SERVFAIL over UDP and TCP, within the forward timeout.
    let (_site, _server, port) = responder(free_port());
    for transport in ["+notcp", "+tcp"] {
        let started = Instant::now();
        let answer = dig(port, &[transport, "example.org", "A"]);
        assert_eq!(
            field(&answer, "status:"),
            "SERVFAIL",
            "{transport}: {answer}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{transport}");
    }
}

/// One query over an open DNS-over-TCP connection: true when an answer came back.
fn ask(stream: &mut TcpStream, id: u16) -> bool {
    // archive.ubuntu.com A, with `id`.
    let mut query = id.to_be_bytes().to_vec();
    query.extend([1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in ["archive", "ubuntu", "com"] {
        query.push(label.len() as u8);
        query.extend(label.bytes());
    }
    query.extend([0, 0, 1, 0, 1]);
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend(query);
    if stream.write_all(&framed).is_err() {
        return false;
    }
    let mut length = [0u8; 2];
    if stream.read_exact(&mut length).is_err() {
        return false;
    }
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut reply).is_ok() && reply[..2] == id.to_be_bytes()
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

#[test]
fn one_client_cannot_hold_every_tcp_connection() {
    let (_site, _server, port) = responder(free_port());
    // One client opens 64 connections and keeps them busy with a query each.
    let mut greedy: Vec<TcpStream> = (0..64).map(|_| connect(port)).collect();
    let mut answered = 0;
    for (i, stream) in greedy.iter_mut().enumerate() {
        answered += usize::from(ask(stream, i as u16));
    }
    assert!(
        answered <= 8,
        "{answered} of one client's connections served"
    );
    // Another client (another loopback address) is still answered over TCP.
    let answer = Command::new("dig")
        .args(["-b", "127.0.0.2", "@127.0.0.1", "-p", &port.to_string()])
        .args(["+tcp", "+tries=1", "+time=5"])
        .args(["archive.ubuntu.com", "A"])
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer.stdout);
    assert_eq!(field(&answer, "status:"), "NOERROR", "{answer}");
}
