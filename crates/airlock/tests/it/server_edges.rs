//! The edges of HTTP that clients and proxies rely on: exactly one Host on HTTP/1.1, paths
//! starting with `//` that must not turn into another host in a redirect, and HEAD answered
//! with the headers of GET.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::site::LOCAL;
use crate::common::{Server, Site};

fn published_site() -> (Site, Server) {
    let site = Site::new("ed25519", LOCAL);
    site.ok(&["publish"]);
    let server = site.serve();
    (site, server)
}

/// One raw exchange on a new connection, read until the server closes it: the head as text
/// and the body's length.
fn raw(server: &Server, request: &str) -> String {
    raw_bytes(server, request).0
}

fn raw_bytes(server: &Server, request: &str) -> (String, usize) {
    let address = server.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(request.as_bytes());
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let head_end = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(reply.len(), |p| p + 4);
    let text = String::from_utf8_lossy(&reply[..head_end]).into_owned();
    (text, reply.len() - head_end)
}

fn status(reply: &str) -> &str {
    reply.split(' ').nth(1).unwrap_or("none")
}

fn header<'a>(reply: &'a str, name: &str) -> Option<&'a str> {
    reply
        .split("\r\n\r\n")
        .next()?
        .lines()
        .skip(1)
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
}

#[test]
fn http11_needs_exactly_one_host() {
    let (_site, server) = published_site();
    let missing = raw(
        &server,
        "GET /airlock.asc HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&missing), "400", "no Host:\n{missing}");
    let repeated = raw(
        &server,
        "GET /airlock.asc HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&repeated), "400", "two Hosts:\n{repeated}");
    let one = raw(
        &server,
        "GET /airlock.asc HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&one), "200", "{one}");
    // HTTP/1.0 had no Host requirement.
    let old = raw(&server, "GET /airlock.asc HTTP/1.0\r\n\r\n");
    assert_eq!(status(&old), "200", "{old}");
}

#[test]
fn double_slash_paths_never_redirect_to_another_host() {
    let (_site, server) = published_site();
    for path in ["//apt", "//apt/local", "/apt//local", "//apt/local/dists"] {
        let reply = raw(
            &server,
            &format!("GET {path} HTTP/1.1\r\nHost: mirror.example\r\nConnection: close\r\n\r\n"),
        );
        if let Some(location) = header(&reply, "location") {
            // A browser reads `//apt/` as the host `apt`.
            assert!(
                location.starts_with('/')
                    && !location.starts_with("//")
                    && !location.contains("//"),
                "GET {path} redirects to {location}"
            );
        }
        assert!(
            ["301", "308", "400", "404"].contains(&status(&reply)),
            "GET {path}:\n{reply}"
        );
    }
}

#[test]
fn head_has_the_content_length_of_get() {
    let (_site, server) = published_site();
    for path in [
        "/",
        "/apt/local/",
        "/apt/local/dists/",
        "/apt/local/dists/stable/",
        "/apt/local/dists/stable/InRelease",
        "/airlock.gpg",
        "/airlock.asc",
        "/status.json",
        "/metrics",
        "/apt/local/missing",
        "/apt/local",
    ] {
        // The status counts every request: its length may change between the GET and the
        // HEAD, but HEAD still announces one.
        let live = ["/", "/status.json", "/metrics"].contains(&path);
        let request = |method| {
            format!("{method} {path} HTTP/1.1\r\nHost: mirror.example\r\nConnection: close\r\n\r\n")
        };
        let (get, body) = raw_bytes(&server, &request("GET"));
        let (head, head_body) = raw_bytes(&server, &request("HEAD"));
        assert_eq!(status(&get), status(&head), "{path}");
        let get_length = header(&get, "content-length");
        assert_eq!(
            get_length,
            Some(body.to_string().as_str()),
            "GET {path}:\n{get}"
        );
        if live {
            assert!(
                header(&head, "content-length").is_some(),
                "HEAD {path}:\n{head}"
            );
        } else {
            assert_eq!(
                header(&head, "content-length"),
                get_length,
                "HEAD {path}:\n{head}\nGET:\n{get}"
            );
        }
        assert_eq!(head_body, 0, "HEAD {path} has a body:\n{head}");
    }
}
