//! The load generator of bench/metrics.sh: CLIENTS keep-alive connections, each sending GET
//! PATH again as soon as the previous answer is read whole, for SECONDS; prints the answers
//! per second and the failures. One blocking thread per connection.
//!
//!   rustc -O bench/scrape.rs -o scrape && ./scrape 127.0.0.1:8080 /metrics 4 10

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, address, path, clients, seconds] = &args[..] else {
        eprintln!("usage: scrape ADDRESS PATH CLIENTS SECONDS");
        std::process::exit(2);
    };
    let clients: usize = clients.parse().expect("CLIENTS is a number");
    let run = Duration::from_secs(seconds.parse().expect("SECONDS is a number"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: scrape\r\n\r\n");
    let began = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (address, request) = (address.clone(), request.clone());
            std::thread::spawn(move || client(&address, &request, began + run))
        })
        .collect();
    let (mut answers, mut failures) = (0u64, 0u64);
    for thread in threads {
        let (a, f) = thread.join().expect("a client thread");
        answers += a;
        failures += f;
    }
    let elapsed = began.elapsed().as_secs_f64();
    println!("{:.1} {failures}", answers as f64 / elapsed);
}

/// Answers read whole and failures (a failed connection is opened again).
fn client(address: &str, request: &str, until: Instant) -> (u64, u64) {
    let (mut answers, mut failures) = (0, 0);
    while Instant::now() < until {
        let Ok(stream) = TcpStream::connect(address) else {
            failures += 1;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut writer = stream.try_clone().expect("a socket clone");
        let mut reader = BufReader::new(stream);
        while Instant::now() < until {
            if writer.write_all(request.as_bytes()).is_err() || !answer(&mut reader) {
                failures += 1;
                break;
            }
            answers += 1;
        }
    }
    (answers, failures)
}

/// Reads one 200 answer with its Content-Length body; false on anything else.
fn answer(reader: &mut BufReader<TcpStream>) -> bool {
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || !line.starts_with("HTTP/1.1 200") {
        return false;
    }
    let mut length = None;
    loop {
        line.clear();
        if reader.read_line(&mut line).is_err() || line.is_empty() {
            return false;
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<u64>().ok();
        }
    }
    let Some(length) = length else {
        return false;
    };
    std::io::copy(&mut reader.by_ref().take(length), &mut std::io::sink())
        .is_ok_and(|n| n == length)
}
