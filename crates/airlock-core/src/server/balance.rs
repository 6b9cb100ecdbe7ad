//! Spreading connections over the per-core event loops. Every loop accepts from the same
//! socket; without care a burst of connections lands on whichever loop wakes first, and
//! keep-alive keeps them there, so one core does most of the work while the other idles. A
//! loop holding more connections than the least busy one leaves new ones in the backlog for
//! the others (the idea of nginx's accept_disabled), for one timer tick: then it takes every
//! connection waiting, so that a burst never waits in a full backlog while a loop sleeps.
//!
//! Taking them one per turn of the loop, though: each new connection runs (reads its request,
//! usually answers it) before the next is accepted, as an nginx worker accepts one connection
//! per pass over its events. Accepting a whole burst first would leave every connection
//! waiting for all the accepts, and every other connection's first run, before its own.
//!
//! Each connection also counts in the server's [`Connections`] and has a write deadline.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

use super::limits::{Admitted, Connections};
use crate::http::QuickAck;

/// How many more connections than the least busy loop a loop may hold and still accept.
const SLACK: usize = 1;

/// The connection counts of all loops of one listening socket.
#[derive(Debug, Clone)]
pub struct Loads(Arc<[AtomicUsize]>);

impl Loads {
    pub fn new(loops: usize) -> Loads {
        Loads((0..loops).map(|_| AtomicUsize::new(0)).collect())
    }
}

/// One loop's side of the shared socket.
#[derive(Debug)]
pub struct BalancedListener {
    inner: TcpListener,
    index: usize,
    loads: Loads,
    connections: Connections,
    write_timeout: Duration,
    /// Taking the connections that are waiting, without looking at the loads.
    draining: bool,
}

impl BalancedListener {
    pub fn new(
        inner: TcpListener,
        index: usize,
        loads: Loads,
        connections: Connections,
        write_timeout: Duration,
    ) -> BalancedListener {
        BalancedListener {
            inner,
            index,
            loads,
            connections,
            write_timeout,
            draining: false,
        }
    }

    fn busier_than_others(&self) -> bool {
        let loads = &self.loads.0;
        let mine = loads[self.index].load(Ordering::Relaxed);
        let least = loads
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0);
        mine > least + SLACK
    }
}

impl BalancedListener {
    /// At the connection limit, closes the connection idle longest; waits (briefly) for
    /// closing ones to be gone when too many still hold their descriptors.
    async fn make_room(&mut self) {
        self.connections.make_room();
        for tick in 0..100 {
            if !self.connections.overfull() {
                return;
            }
            // Their tasks may be on this loop: let them run first.
            if tick == 0 {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }

    pub async fn accept(&mut self) -> (Counted, SocketAddr) {
        if self.draining {
            // The connection accepted last runs before the next is taken.
            tokio::task::yield_now().await;
        }
        loop {
            self.make_room().await;
            let accepted = if self.draining {
                match self.inner.accept().now_or_never() {
                    Some(accepted) => accepted,
                    None => {
                        self.draining = false;
                        continue;
                    }
                }
            } else {
                if self.busier_than_others() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let accepted = self.inner.accept().await;
                self.draining = true;
                accepted
            };
            match accepted {
                Ok((stream, peer)) => {
                    self.loads.0[self.index].fetch_add(1, Ordering::Relaxed);
                    let counted = Counted {
                        stream,
                        loads: self.loads.clone(),
                        index: self.index,
                        ack_partial: QuickAck::default(),
                        admitted: self.connections.admit(),
                        write_timeout: self.write_timeout,
                        write_deadline: None,
                    };
                    return (counted, peer);
                }
                // Out of file descriptors and the like: wait rather than spin.
                Err(e) => {
                    self.draining = false;
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// A connection that counts for its loop until it is dropped.
#[derive(Debug)]
pub struct Counted {
    stream: TcpStream,
    loads: Loads,
    index: usize,
    /// ACK a read that ends inside a request at once (plain HTTP; see `poll_read`).
    ack_partial: QuickAck,
    admitted: Admitted,
    write_timeout: Duration,
    /// Set while a write waits for the client to read.
    write_deadline: Option<Pin<Box<Sleep>>>,
}

impl Counted {
    /// For plain HTTP only (TLS records never end like a request head); returns the switch.
    pub fn ack_partial_requests(&mut self) -> QuickAck {
        self.ack_partial.on();
        self.ack_partial.clone()
    }

    /// Cancelled when the connection is closed to make room for a new one.
    pub fn evicted(&self) -> tokio_util::sync::CancellationToken {
        self.admitted.closed()
    }

    /// Ends a write that made no progress for the write timeout: a client that stops reading
    /// would otherwise hold its connection, and the response's buffers, for ever. Only bytes
    /// written count as progress (a flush of a TCP stream is always ready).
    fn writing<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
        wrote: impl Fn(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => {
                let timeout = self.write_timeout;
                let deadline = self
                    .write_deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the client read nothing for {}s", timeout.as_secs()),
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            Poll::Ready(Ok(done)) => {
                if wrote(&done) {
                    self.write_deadline = None;
                    self.admitted.progressed();
                }
                Poll::Ready(Ok(done))
            }
            failed => failed,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.loads.0[self.index].fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        let got = &buf.filled()[before..];
        if !got.is_empty() {
            self.admitted.progressed();
        }
        if !got.is_empty() && !got.ends_with(b"\r\n\r\n") && self.ack_partial.is_on() {
            // Part of a request: ACK it at once. apt (no TCP_NODELAY) holds the rest of a
            // request it wrote in two pieces until the first is ACKed, and with no response
            // to carry the ACK Linux delays it (the delayed-ACK timer), stalling apt's
            // pipelined downloads. Only then: an immediate ACK before every response costs a
            // packet per request and lowers the request rate.
            let _ = rustix::net::sockopt::set_tcp_quickack(&self.stream, true);
        }
        read
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.writing(cx, poll, |n| *n > 0)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.writing(cx, poll, |n| *n > 0)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_flush(cx);
        self.writing(cx, poll, |()| false)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
