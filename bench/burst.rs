//! The load generator of bench/burst.sh: N clients released at once, each connecting, sending
//! one GET and reading the whole response; prints each client's time in milliseconds (from
//! its connect to the last byte), or "failed". One blocking thread per client (small stacks):
//! the kernel schedules them, so the generator costs little next to the servers it measures.
//!
//!   rustc -O bench/burst.rs -o burst && ./burst 127.0.0.1:8080 /path 1000

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, address, path, clients] = &args[..] else {
        eprintln!("usage: burst ADDRESS PATH CLIENTS");
        std::process::exit(2);
    };
    let clients: usize = clients.parse().expect("CLIENTS is a number");
    let request = format!("GET {path} HTTP/1.1\r\nHost: burst\r\nConnection: close\r\n\r\n");
    let start = Arc::new(Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (address, request, start) = (address.clone(), request.clone(), start.clone());
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    start.wait();
                    let began = Instant::now();
                    one(&address, &request).map(|()| began.elapsed())
                })
                .expect("a client thread")
        })
        .collect();
    for thread in threads {
        match thread.join().expect("a client thread") {
            Some(time) => println!("{:.3}", time.as_secs_f64() * 1000.0),
            None => println!("failed"),
        }
    }
}

/// One exchange; the response must be a 200 with all its Content-Length bytes.
fn one(address: &str, request: &str) -> Option<()> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = Vec::with_capacity(8192);
    stream.read_to_end(&mut reply).ok()?;
    let head_end = reply.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&reply[..head_end]).ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().ok()))??;
    (head.starts_with("HTTP/1.1 200") && reply.len() - head_end == length).then_some(())
}
