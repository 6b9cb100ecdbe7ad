//! Clients that stop reading, more of them than the server has descriptors: with a limit of
//! 1,024 open files and 1,010 clients that asked for a 60 MB file and read nothing, new clients
//! are still served and the stalled ones are closed.

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::site::LOCAL;
use crate::common::{AIRLOCK, Server, Site, curl};

const STALLED: usize = 1010;

/// A published folder holding a 60 MB file (sparse: its bytes do not matter here).
fn site_with_big_file() -> Site {
    let site = Site::new("ed25519", LOCAL);
    site.site_settings("write_timeout = \"10s\"\n");
    site.ok(&["publish"]);
    let dir = site.path().join("data/public/apt/big");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::File::create(dir.join("big.bin"))
        .unwrap()
        .set_len(60 << 20)
        .unwrap();
    site
}

/// This test process holds the stalled clients' sockets too.
fn raise_own_open_files() {
    let status = Command::new("prlimit")
        .args(["--pid", &std::process::id().to_string(), "--nofile=4096:"])
        .status()
        .unwrap();
    assert!(status.success());
}

fn served(server: &Server) -> bool {
    let out = curl(&[
        "-f",
        "-o",
        "/dev/null",
        "--max-time",
        "10",
        &format!("{}/airlock.asc", server.url),
    ]);
    out.status.success()
}

#[test]
fn stalled_readers_never_lock_out_new_clients() {
    raise_own_open_files();
    let site = site_with_big_file();
    let mut command = Command::new("prlimit");
    command
        .arg("--nofile=1024")
        .arg(AIRLOCK)
        .arg("--config")
        .arg(site.config())
        .arg("serve");
    let server = Server::start(command, false);
    assert!(
        server
            .startup
            .iter()
            .any(|l| l.contains("open files limit 1024")),
        "{:?}",
        server.startup
    );
    let address = server.url.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let stalled: Vec<TcpStream> = (0..STALLED)
        .map(|_| {
            let mut stream = TcpStream::connect(&address).unwrap();
            stream
                .write_all(b"GET /apt/big/big.bin HTTP/1.1\r\nHost: mirror.example\r\n\r\n")
                .unwrap();
            stream
        })
        .collect();
    // Now, before the write timeout: the server is full of clients that read nothing.
    for _ in 0..5 {
        assert!(
            served(&server),
            "a new client was not served with {STALLED} stalled ones ({:?} after they connected, {} descriptors open)",
            started.elapsed(),
            server.open_files()
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the stalled clients took {:?} to connect",
        started.elapsed()
    );
    // The write timeout closes them all.
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.open_files() > 100 {
        assert!(
            Instant::now() < deadline,
            "{} descriptors still open 60 s after {STALLED} clients stopped reading",
            server.open_files()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(served(&server));
    drop(stalled);
}
