//! dnsmasq as the resolver a site's machines use: in the foreground on a loopback port, with
//! a given config and nothing else read.

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A port free on 127.0.0.1 for both UDP and TCP, for the programs that need one named.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// dnsmasq in the foreground on a loopback port with `config`, and nothing else read.
pub struct Dnsmasq {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    pub fn start(config: &str) -> Dnsmasq {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dnsmasq.conf");
        std::fs::write(&file, config).unwrap();
        let port = free_port();
        let child = Command::new("dnsmasq")
            .arg("--keep-in-foreground")
            .arg(format!("--conf-file={}", file.display()))
            .arg(format!("--port={port}"))
            .args([
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-hosts",
                "--no-resolv",
            ])
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg("--user=root")
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (package dnsmasq-base)");
        let d = Dnsmasq {
            child,
            port,
            _dir: dir,
        };
        // Ready once it holds the port.
        for _ in 0..100 {
            if UdpSocket::bind(("127.0.0.1", port)).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
