//! A TCP relay on loopback that passes what clients send at a set rate, and counts it: a slow
//! link to an object store, and a way to see that an upload is under way.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Throttle {
    /// `http://127.0.0.1:PORT`: the relay, for an endpoint setting.
    pub url: String,
    address: std::net::SocketAddr,
    link: Arc<Link>,
}

struct Link {
    /// Bytes per second from clients, all connections together; 0: as fast as they come.
    rate: AtomicU64,
    /// When the next byte from a client may go on.
    next: Mutex<Instant>,
    sent: AtomicU64,
    stop: AtomicBool,
}

impl Throttle {
    /// Relays to `target` (`http://HOST:PORT`), what clients send at `bytes_per_second`.
    pub fn start(target: &str, bytes_per_second: u64) -> Throttle {
        let target = target
            .strip_prefix("http://")
            .expect("an http:// target")
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let link = Arc::new(Link {
            rate: AtomicU64::new(bytes_per_second),
            next: Mutex::new(Instant::now()),
            sent: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let accepting = link.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let (up_from, up_to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let link = accepting.clone();
                std::thread::spawn(move || relay(up_from, up_to, Some(&link)));
                std::thread::spawn(move || relay(server, client, None));
            }
        });
        Throttle {
            url: format!("http://{address}"),
            address,
            link,
        }
    }

    /// Bytes clients sent through the relay so far.
    pub fn sent(&self) -> u64 {
        self.link.sent.load(Ordering::SeqCst)
    }

    /// From now on, as fast as they come.
    pub fn open_up(&self) {
        self.link.rate.store(0, Ordering::SeqCst);
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.link.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees `stop`.
        let _ = TcpStream::connect(self.address);
    }
}

/// Copies `from` to `to` until `from` ends, paced by `link` when given; then ends `to`.
fn relay(mut from: TcpStream, mut to: TcpStream, link: Option<&Link>) {
    let mut buffer = [0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(link) = link {
            link.pace(n);
        }
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
        if let Some(link) = link {
            link.sent.fetch_add(n as u64, Ordering::SeqCst);
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Link {
    /// Waits for `n` bytes' turn at the link's rate.
    fn pace(&self, n: usize) {
        let rate = self.rate.load(Ordering::SeqCst);
        if rate == 0 {
            return;
        }
        let start = {
            let mut next = self.next.lock().unwrap();
            let start = (*next).max(Instant::now());
            *next = start + Duration::from_secs_f64(n as f64 / rate as f64);
            start
        };
        std::thread::sleep(start.saturating_duration_since(Instant::now()));
    }
}
