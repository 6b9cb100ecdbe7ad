//! What bounds the server's connections: listening sockets with a backlog that holds a burst,
//! the open-files limit, and a bounded number of connections where the one that made no
//! progress for longest makes room for a new client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Connections closed to make room that may still hold their descriptors before new ones
/// wait for them to be gone; part of the reserve [`Limits::connections_for`] leaves.
const CLOSING: usize = 64;

/// Connection settings of `airlock serve` (`[site] listen_backlog`, `write_timeout`,
/// `max_connections`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections the kernel queues before they are accepted; the system's own bound,
    /// `net.core.somaxconn`, applies on top.
    pub backlog: u32,
    /// A response that makes no progress for this long is abandoned and its connection
    /// closed (a client that stopped reading).
    pub write_timeout: Duration,
    /// Open connections at most; beyond it the one idle or stalled longest is closed.
    pub max_connections: usize,
}

impl Limits {
    /// Room for other descriptors next to the connections, out of a process limit of
    /// `open_files`: each request for a published file opens it briefly (on the blocking pool,
    /// hundreds at once in a burst), and the store, DNS and logs hold some.
    pub fn connections_for(open_files: u64) -> usize {
        let reserve = (open_files / 8).max(256);
        usize::try_from(open_files.saturating_sub(reserve))
            .unwrap_or(usize::MAX)
            .max(1)
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            backlog: somaxconn(),
            write_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// The system's bound on listen backlogs.
pub fn somaxconn() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096)
}

/// Raises the soft limit on open files to the hard limit; returns the limit now in force.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        setrlimit(
            Resource::Nofile,
            rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        )?;
    }
    Ok(getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX))
}

/// A listening socket with `backlog` (std's `TcpListener::bind` asks for 128: a burst of a
/// thousand clients overflows it and the dropped SYNs wait a second for their retransmit).
pub fn bind(address: SocketAddr, backlog: u32) -> std::io::Result<std::net::TcpListener> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, sockopt};
    let family = match address {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let socket: OwnedFd = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    // As std does: a restarted server binds again while old connections are in TIME_WAIT.
    sockopt::set_socket_reuseaddr(&socket, true)?;
    // Small responses must not wait for Nagle and delayed ACKs; Linux gives every accepted
    // connection the listening socket's setting, which saves a system call per connection.
    sockopt::set_tcp_nodelay(&socket, true)?;
    rustix::net::bind(&socket, &address)?;
    let backlog = backlog.min(somaxconn()).clamp(1, i32::MAX as u32);
    rustix::net::listen(&socket, backlog as i32)?;
    Ok(std::net::TcpListener::from(socket))
}

/// The open connections of the whole server (every loop, every listener), each with the time
/// it last moved bytes.
#[derive(Debug, Clone)]
pub struct Connections {
    inner: Arc<Registry>,
}

/// Shards of the registry: every accept and every close takes one shard's lock, and the
/// loops, each on its own core, rarely meet on the same one. With one lock for all, a loop the
/// kernel preempted while holding it (a burst makes hundreds of client threads runnable) held
/// up the other loop's accepts until it ran again.
const SHARDS: usize = 16;

#[derive(Debug)]
struct Registry {
    max: usize,
    started: Instant,
    next: AtomicU64,
    /// Connections in the shards, and how many of them are being closed to make room: the
    /// others are compared with the limit without a lock.
    open: AtomicUsize,
    closing: AtomicUsize,
    shards: [Mutex<HashMap<u64, Arc<Activity>>>; SHARDS],
}

/// One connection's progress, and the switch that closes it.
#[derive(Debug)]
pub struct Activity {
    /// Milliseconds after the registry started.
    last: AtomicU64,
    close: CancellationToken,
    /// Set (with every shard locked) when it is chosen to make room.
    closing: AtomicBool,
}

impl Connections {
    pub fn new(max: usize) -> Connections {
        Connections {
            inner: Arc::new(Registry {
                max: max.max(1),
                started: Instant::now(),
                next: AtomicU64::new(0),
                open: AtomicUsize::new(0),
                closing: AtomicUsize::new(0),
                shards: std::array::from_fn(|_| Mutex::default()),
            }),
        }
    }

    /// Counts a new connection.
    pub fn admit(&self) -> Admitted {
        let registry = &self.inner;
        let id = registry.next.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity {
            last: AtomicU64::new(registry.now()),
            close: CancellationToken::new(),
            closing: AtomicBool::new(false),
        });
        let mut shard = registry.shard(id);
        shard.insert(id, activity.clone());
        registry.open.fetch_add(1, Ordering::Relaxed);
        drop(shard);
        Admitted {
            registry: self.inner.clone(),
            id,
            activity,
        }
    }

    /// At the limit, marks the connection idle or stalled longest (only as many as needed for
    /// one more) to be closed; below it (nearly always), two atomic loads.
    pub fn make_room(&self) {
        let registry = &self.inner;
        if registry.staying() < registry.max {
            return;
        }
        // Every shard locked: no admit or close changes the counts while they are read, and
        // two loops making room at once do it one after the other.
        let shards: Vec<_> = (0..SHARDS as u64).map(|i| registry.shard(i)).collect();
        let staying_count = registry.staying();
        if staying_count < registry.max {
            return;
        }
        let mut staying: Vec<&Arc<Activity>> = shards
            .iter()
            .flat_map(|shard| shard.values())
            .filter(|a| !a.closing.load(Ordering::Relaxed))
            .collect();
        let excess = staying_count + 1 - registry.max;
        staying.select_nth_unstable_by_key(excess - 1, |a| a.last.load(Ordering::Relaxed));
        for activity in &staying[..excess] {
            activity.closing.store(true, Ordering::Relaxed);
            activity.close.cancel();
        }
        registry.closing.fetch_add(excess, Ordering::Relaxed);
        tracing::debug!(
            "{} connections open: closing {excess} idle or stalled longest",
            registry.max
        );
    }

    /// Whether so many connections closed to make room still hold their descriptors that
    /// a new one should wait.
    pub fn overfull(&self) -> bool {
        self.inner.open.load(Ordering::Relaxed) >= self.inner.max + CLOSING
    }
}

impl Registry {
    fn shard(&self, id: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.shards[(id % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Open connections not being closed.
    fn staying(&self) -> usize {
        let open = self.open.load(Ordering::Relaxed);
        open.saturating_sub(self.closing.load(Ordering::Relaxed))
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A counted connection: gone from the registry when dropped.
#[derive(Debug)]
pub struct Admitted {
    registry: Arc<Registry>,
    id: u64,
    activity: Arc<Activity>,
}

impl Admitted {
    /// The connection moved bytes.
    pub fn progressed(&self) {
        self.activity
            .last
            .store(self.registry.now(), Ordering::Relaxed);
    }

    /// Cancelled when the connection is to be closed to make room.
    pub fn closed(&self) -> CancellationToken {
        self.activity.close.clone()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let registry = &self.registry;
        let mut shard = registry.shard(self.id);
        if let Some(activity) = shard.remove(&self.id) {
            // Under the shard's lock: a make_room marking it holds every shard's.
            if activity.closing.load(Ordering::Relaxed) {
                registry.closing.fetch_sub(1, Ordering::Relaxed);
            }
            registry.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_the_longest_idle_makes_room() {
        let connections = Connections::new(2);
        let first = connections.admit();
        std::thread::sleep(Duration::from_millis(5));
        let second = connections.admit();
        std::thread::sleep(Duration::from_millis(5));
        first.progressed();
        connections.make_room();
        connections.make_room();
        assert!(second.closed().is_cancelled());
        assert!(
            !first.closed().is_cancelled(),
            "only as many as needed are closed"
        );
        let third = connections.admit();
        assert!(!third.closed().is_cancelled());
        drop((first, second, third));
        let registry = &connections.inner;
        assert_eq!(
            (
                registry.open.load(Ordering::Relaxed),
                registry.closing.load(Ordering::Relaxed)
            ),
            (0, 0)
        );
        assert!((0..SHARDS as u64).all(|i| registry.shard(i).is_empty()));
    }

    #[test]
    fn accepted_connections_have_nodelay_from_the_listening_socket() {
        let listener = bind("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        listener.set_nonblocking(false).unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
        drop(client);
    }

    #[test]
    fn the_backlog_is_bounded_by_the_system() {
        let listener = bind("127.0.0.1:0".parse().unwrap(), u32::MAX).unwrap();
        assert!(listener.local_addr().unwrap().port() > 0);
        assert!(Limits::connections_for(1024) < 1024);
    }
}
