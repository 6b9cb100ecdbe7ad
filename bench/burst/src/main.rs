//! The load generator of bench/burst.sh: N clients released at once, each connecting, sending
//! one GET and reading the whole response; prints each client's time in milliseconds (from
//! its connect to the last byte), or "failed".
//!
//! The clients are tasks on an event loop per core (tokio; `BURST_THREADS` sets how many):
//! their connects go out back to back, and the generator costs the machine a few threads
//! whatever N is. With one blocking thread per client, the kernel's scheduling of a thousand
//! client threads against the server's threads on two cores decided the result: whole rounds
//! of either server came out ten to a hundred times slower than the round before.
//!
//!   burst ADDRESS PATH CLIENTS

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client that has no whole answer by then has failed.
const TIMEOUT: Duration = Duration::from_secs(30);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, address, path, clients] = &args[..] else {
        usage("ADDRESS PATH CLIENTS");
    };
    let Ok(address) = address.parse::<SocketAddr>() else {
        usage("ADDRESS is an IP address and port");
    };
    let Ok(clients) = clients.parse::<usize>() else {
        usage("CLIENTS is a number");
    };
    let threads = match std::env::var("BURST_THREADS") {
        Ok(threads) => threads
            .parse()
            .unwrap_or_else(|_| usage("BURST_THREADS is a number")),
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: burst\r\nConnection: close\r\n\r\n");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let times = runtime.block_on(async {
        let clients: Vec<_> = (0..clients)
            .map(|_| {
                let request = request.clone();
                tokio::spawn(async move {
                    let began = Instant::now();
                    match tokio::time::timeout(TIMEOUT, one(address, &request)).await {
                        Ok(Some(())) => Some(began.elapsed()),
                        _ => None,
                    }
                })
            })
            .collect();
        let mut times = Vec::with_capacity(clients.len());
        for client in clients {
            times.push(client.await.expect("a client task"));
        }
        times
    });
    for time in times {
        match time {
            Some(time) => println!("{:.3}", time.as_secs_f64() * 1000.0),
            None => println!("failed"),
        }
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("usage: burst ADDRESS PATH CLIENTS ({problem})");
    std::process::exit(2);
}

/// One exchange; the response must be a 200 with all its Content-Length bytes.
async fn one(address: SocketAddr, request: &str) -> Option<()> {
    let mut stream = TcpStream::connect(address).await.ok()?;
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut reply = Vec::with_capacity(8192);
    stream.read_to_end(&mut reply).await.ok()?;
    let head_end = reply.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&reply[..head_end]).ok()?;
    let length: usize = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("content-length:")
            .map(|v| v.trim().parse().ok())
    })??;
    (head.starts_with("HTTP/1.1 200") && reply.len() - head_end == length).then_some(())
}
