//! HTTP plumbing shared by everything that answers requests (the server, the proxy, the snap
//! store): the static file responder, JSON bodies, and the markers a connection leaves on
//! its requests. A leaf: it knows nothing of what is served.

pub mod files;
mod json;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use json::{Json, json_response};

/// Marks requests that came over HTTPS, so URLs built for the client keep its scheme.
#[derive(Clone, Copy, Debug)]
pub struct Https;

/// Whether a connection ACKs partial request heads at once; shared with its requests so that
/// one which turns the connection into a tunnel (CONNECT) can switch it off: a tunnel's bytes
/// are no request heads, and an immediate ACK for each of its reads costs a syscall and a packet.
#[derive(Debug, Clone, Default)]
pub struct QuickAck(Arc<AtomicBool>);

impl QuickAck {
    pub fn on(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn off(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
