//! The built-in responder: UDP and TCP on one address, answers from a [`Zone`], other names
//! relayed byte for byte to the upstream resolver for the site's own networks, a per-client
//! rate limit, bounded TCP connections. Not an open resolver.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use super::answer::{fit_udp, is_truncated, server_failure, udp_limit};
use super::{Decision, Zone, decide};
use crate::config::DnsConfig;
use crate::hint::Hint;

const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);
/// A TCP connection with no query for this long is closed (RFC 7766 asks for seconds).
const TCP_IDLE: Duration = Duration::from_secs(5);
/// However busy, a TCP connection is closed after this long: clients open another.
const TCP_LIFETIME: Duration = Duration::from_secs(60);
const TCP_CONNECTIONS: usize = 64;
/// No client holds more than this many of the TCP connections.
const TCP_PER_CLIENT: usize = 8;
const FORWARDS_IN_FLIGHT: usize = 256;
/// The most a forwarded answer may be over UDP, whatever the client offers; larger ones go
/// back truncated, and the client asks again over TCP.
const FORWARD_UDP_MAX: usize = 4096;
/// The largest DNS message over UDP.
const UDP_MESSAGE_MAX: usize = 65_535;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot listen for DNS on {address}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl Hint for DnsError {
    fn hint(&self) -> Option<&'static str> {
        let DnsError::Bind { source, .. } = self;
        match source.kind() {
            std::io::ErrorKind::PermissionDenied => {
                Some("port 53 needs root or CAP_NET_BIND_SERVICE")
            }
            std::io::ErrorKind::AddrInUse => Some(
                "another resolver listens there (systemd-resolved listens on 127.0.0.53:53): give [dns] listen a specific address",
            ),
            _ => None,
        }
    }
}

/// Sockets bound (so that errors show before serving starts), not yet answering.
#[derive(Debug)]
pub struct Responder {
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    zone: Zone,
    upstream: Option<SocketAddr>,
    allow: Vec<ipnet::IpNet>,
    limiter: RateLimiter,
    /// Bounds the forwards in flight; a query beyond it is dropped, as under overload.
    forwards: Arc<Semaphore>,
}

impl Responder {
    /// Binds UDP and TCP on the same address; with port 0, the port UDP got is used for TCP.
    pub fn bind(
        config: &DnsConfig,
        listen: SocketAddr,
        names: &[String],
    ) -> Result<Responder, DnsError> {
        let err = |address, source| DnsError::Bind { address, source };
        // With port 0, the port UDP got may be taken for TCP: try a few others.
        let mut tries = if listen.port() == 0 { 16 } else { 1 };
        let (udp, tcp, address) = loop {
            tries -= 1;
            let udp = std::net::UdpSocket::bind(listen).map_err(|e| err(listen, e))?;
            let address = udp.local_addr().map_err(|e| err(listen, e))?;
            match std::net::TcpListener::bind(address) {
                Ok(tcp) => break (udp, tcp, address),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries > 0 => continue,
                Err(e) => return Err(err(address, e)),
            }
        };
        udp.set_nonblocking(true).map_err(|e| err(address, e))?;
        tcp.set_nonblocking(true).map_err(|e| err(address, e))?;
        Ok(Responder {
            udp,
            tcp,
            shared: Arc::new(Shared {
                zone: Zone::new(names, &config.addresses, config.ttl),
                upstream: config.upstream,
                allow: config.allow.clone(),
                limiter: RateLimiter::new(config.rate_limit),
                forwards: Arc::new(Semaphore::new(FORWARDS_IN_FLIGHT)),
            }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.udp.local_addr().expect("bound")
    }

    /// Answers until the runtime stops.
    pub async fn run(self) -> std::io::Result<()> {
        let udp = Arc::new(UdpSocket::from_std(self.udp)?);
        let tcp = TcpListener::from_std(self.tcp)?;
        let shared = self.shared;
        tokio::spawn(serve_tcp(tcp, shared.clone()));
        let mut buffer = vec![0u8; 4096];
        loop {
            let (length, peer) = match udp.recv_from(&mut buffer).await {
                Ok(received) => received,
                Err(e) => {
                    tracing::debug!("DNS: receive failed: {e}");
                    continue;
                }
            };
            if !shared.limiter.allow(peer.ip()) {
                continue;
            }
            let query = &buffer[..length];
            match decide(&shared.zone, query, shared.may_forward(peer.ip()), true) {
                Decision::Answer(bytes) => {
                    let _ = udp.send_to(&bytes, peer).await;
                }
                Decision::Drop => tracing::debug!("DNS: ignored {length} bytes from {peer}"),
                Decision::Forward => {
                    let Ok(permit) = shared.forwards.clone().try_acquire_owned() else {
                        continue;
                    };
                    let (udp, shared, query) = (udp.clone(), shared.clone(), query.to_vec());
                    tokio::spawn(async move {
                        if let Some(reply) = shared.forward_for_udp(&query).await {
                            let _ = udp.send_to(&reply, peer).await;
                        }
                        drop(permit);
                    });
                }
            }
        }
    }
}

impl Shared {
    fn may_forward(&self, client: IpAddr) -> bool {
        let client = match client {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
            v4 => v4,
        };
        self.upstream.is_some() && self.allow.iter().any(|net| net.contains(&client))
    }

    /// What goes back to a UDP client for a forwarded `query`: the upstream's answer (asked
    /// again over TCP when the upstream truncated it) cut to what the client takes, or
    /// SERVFAIL when the upstream gives none.
    async fn forward_for_udp(&self, query: &[u8]) -> Option<Vec<u8>> {
        let reply = match self.forward_udp(query).await {
            Some(cut) if is_truncated(&cut) => self.forward_tcp(query).await.or(Some(cut)),
            other => other,
        };
        match reply {
            Some(reply) => fit_udp(reply, query, udp_limit(query, FORWARD_UDP_MAX)),
            None => server_failure(query),
        }
    }

    /// The upstream's answer to `query`, with the same id, or nothing after a timeout.
    async fn forward_udp(&self, query: &[u8]) -> Option<Vec<u8>> {
        let upstream = self.upstream?;
        let bind: SocketAddr = if upstream.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let socket = UdpSocket::bind(bind).await.ok()?;
        socket.connect(upstream).await.ok()?;
        socket.send(query).await.ok()?;
        let mut buffer = vec![0u8; UDP_MESSAGE_MAX];
        let result = tokio::time::timeout(FORWARD_TIMEOUT, async {
            loop {
                let n = socket.recv(&mut buffer).await.ok()?;
                // Only the reply to this query (same id) goes back.
                if n >= 12 && buffer[..2] == query[..2] {
                    return Some(buffer[..n].to_vec());
                }
            }
        })
        .await;
        if result.is_err() {
            tracing::warn!(
                "DNS: the upstream resolver {upstream} did not answer within {} s",
                FORWARD_TIMEOUT.as_secs()
            );
        }
        result.ok().flatten()
    }

    async fn forward_tcp(&self, query: &[u8]) -> Option<Vec<u8>> {
        let _permit = self.forwards.try_acquire().ok()?;
        let upstream = self.upstream?;
        tokio::time::timeout(FORWARD_TIMEOUT, async {
            let mut stream = TcpStream::connect(upstream).await.ok()?;
            write_frame(&mut stream, query).await.ok()?;
            read_frame(&mut stream).await.ok()
        })
        .await
        .ok()
        .flatten()
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(TcpSlots::new(TCP_CONNECTIONS, TCP_PER_CLIENT));
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Some(slot) = slots.admit(peer.ip()) else {
            tracing::debug!("DNS: {peer} holds {TCP_PER_CLIENT} TCP connections; closing another");
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ =
                tokio::time::timeout(TCP_LIFETIME, tcp_connection(stream, peer, &shared, &slot))
                    .await;
        });
    }
}

async fn tcp_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    slot: &Slot,
) -> std::io::Result<()> {
    loop {
        let query = tokio::select! {
            read = tokio::time::timeout(TCP_IDLE, read_frame(&mut stream)) => match read {
                Ok(Ok(query)) => query,
                _ => return Ok(()),
            },
            () = slot.evicted() => return Ok(()),
        };
        slot.touch();
        if !shared.limiter.allow(peer.ip()) {
            return Ok(());
        }
        let reply = match decide(&shared.zone, &query, shared.may_forward(peer.ip()), false) {
            Decision::Answer(bytes) => bytes,
            Decision::Drop => return Ok(()),
            Decision::Forward => match shared.forward_tcp(&query).await {
                Some(reply) => reply,
                None => match server_failure(&query) {
                    Some(failure) => failure,
                    None => return Ok(()),
                },
            },
        };
        write_frame(&mut stream, &reply).await?;
    }
}

/// The TCP connections open, by client: at most `per_client` each; when all `total` are
/// taken, a newcomer takes the place of the connection idle longest among those of the
/// client holding the most (one client cannot keep the others out).
#[derive(Debug)]
struct TcpSlots {
    total: usize,
    per_client: usize,
    open: Mutex<SlotTable>,
}

#[derive(Debug, Default)]
struct SlotTable {
    next: u64,
    by_id: HashMap<u64, SlotState>,
}

#[derive(Debug)]
struct SlotState {
    client: IpAddr,
    last: Instant,
    evict: Arc<tokio::sync::Notify>,
}

/// One admitted connection; leaving it frees the place.
#[derive(Debug)]
struct Slot {
    id: u64,
    slots: Arc<TcpSlots>,
    evict: Arc<tokio::sync::Notify>,
}

impl TcpSlots {
    fn new(total: usize, per_client: usize) -> TcpSlots {
        TcpSlots {
            total,
            per_client,
            open: Mutex::new(SlotTable::default()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, SlotTable> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn admit(self: &Arc<Self>, client: IpAddr) -> Option<Slot> {
        let mut table = self.table();
        let held = |table: &SlotTable, who: IpAddr| {
            table.by_id.values().filter(|s| s.client == who).count()
        };
        if held(&table, client) >= self.per_client {
            return None;
        }
        if table.by_id.len() >= self.total {
            let mut counts: HashMap<IpAddr, usize> = HashMap::new();
            for state in table.by_id.values() {
                *counts.entry(state.client).or_default() += 1;
            }
            let (&greediest, _) = counts.iter().max_by_key(|(_, n)| **n)?;
            let (&victim, _) = table
                .by_id
                .iter()
                .filter(|(_, s)| s.client == greediest)
                .min_by_key(|(_, s)| s.last)?;
            if let Some(state) = table.by_id.remove(&victim) {
                state.evict.notify_one();
            }
        }
        let id = table.next;
        table.next += 1;
        let evict = Arc::new(tokio::sync::Notify::new());
        table.by_id.insert(
            id,
            SlotState {
                client,
                last: Instant::now(),
                evict: evict.clone(),
            },
        );
        Some(Slot {
            id,
            slots: self.clone(),
            evict,
        })
    }
}

impl Slot {
    fn touch(&self) {
        if let Some(state) = self.slots.table().by_id.get_mut(&self.id) {
            state.last = Instant::now();
        }
    }

    /// Resolves when a newcomer took this connection's place.
    async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.table().by_id.remove(&self.id);
    }
}

/// DNS over TCP: each message is preceded by its length in two bytes.
async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let length = stream.read_u16().await?;
    let mut message = vec![0u8; usize::from(length)];
    stream.read_exact(&mut message).await?;
    Ok(message)
}

async fn write_frame(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let length = u16::try_from(message.len()).map_err(std::io::Error::other)?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

/// A token bucket per client address: `rate` queries a second, bursts of twice that.
#[derive(Debug)]
struct RateLimiter {
    rate: f64,
    buckets: Mutex<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    by_client: HashMap<IpAddr, (f64, Instant)>,
    pruned: Instant,
}

impl RateLimiter {
    /// Addresses tracked before idle ones are forgotten (a spoofed flood cannot grow it).
    const TRACKED: usize = 10_000;

    fn new(rate: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(rate),
            buckets: Mutex::new(Buckets {
                by_client: HashMap::new(),
                pruned: Instant::now(),
            }),
        }
    }

    fn allow(&self, client: IpAddr) -> bool {
        let now = Instant::now();
        let burst = self.rate * 2.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let Buckets { by_client, pruned } = &mut *buckets;
        if by_client.len() >= Self::TRACKED && !by_client.contains_key(&client) {
            // At most once a second, or a flood from spoofed sources would make every packet
            // walk the whole table. A bucket idle for 2 s is full again: forgetting it loses
            // nothing.
            if now.duration_since(*pruned) >= Duration::from_secs(1) {
                by_client.retain(|_, (_, last)| now.duration_since(*last) < Duration::from_secs(2));
                *pruned = now;
            }
            if by_client.len() >= Self::TRACKED {
                return false;
            }
        }
        let (tokens, last) = by_client.entry(client).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_slots_cap_each_client_and_evict_from_the_greediest() {
        let slots = Arc::new(TcpSlots::new(4, 3));
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "192.0.2.1".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
            "192.0.2.3".parse().unwrap(),
        );
        let first = slots.admit(a).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        let held: Vec<Slot> = (0..2).map(|_| slots.admit(a).unwrap()).collect();
        first.touch();
        assert!(slots.admit(a).is_none(), "a client's own cap");
        let _b = slots.admit(b).unwrap();
        // Full: c takes the place of a's connection idle longest (not `first`, just used).
        let _c = slots.admit(c).unwrap();
        let table = slots.table();
        assert_eq!(table.by_id.len(), 4);
        assert!(table.by_id.contains_key(&first.id));
        assert_eq!(
            held.iter()
                .filter(|s| table.by_id.contains_key(&s.id))
                .count(),
            1
        );
        drop(table);
        drop(held);
        assert_eq!(slots.table().by_id.len(), 3, "leaving frees the place");
    }

    #[test]
    fn rate_limit_allows_a_burst_then_holds_back() {
        let limiter = RateLimiter::new(10);
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let allowed = (0..100).filter(|_| limiter.allow(client)).count();
        assert_eq!(allowed, 20);
        // Another client has its own bucket.
        assert!(limiter.allow("192.0.2.2".parse().unwrap()));
    }
}
