//! The blobs an export carries, read in order on a thread of their own, ahead of the thread
//! that hashes them, into buffers the volume's writer thread then writes as they are: a cold
//! disk keeps reading while the caller hashes, and the caller's core does nothing else (with
//! reading and hashing on one thread, the disk waits while the thread hashes).

use std::fs::File;
use std::io;
use std::sync::mpsc::{Receiver, Sender, SyncSender};

use crate::io::{ReadAhead, read_full};
use crate::storage::{ContentStore, Sha256};

const CHUNK: usize = 1 << 20;
/// Chunks read ahead of the caller: enough to ride over a slow read, few enough to keep
/// memory small.
const AHEAD: usize = 16;

/// Where a blob's bytes come from.
pub enum Job {
    /// The store's blob of that digest.
    Store(Sha256),
    /// Made in memory by the export (the trees' manifests, state files).
    Memory(Vec<u8>),
}

enum Piece {
    /// A buffer and how many of its bytes are the blob's.
    Data(Vec<u8>, usize),
    End,
    Failed(io::Error),
}

pub struct BlobReader {
    pieces: Option<Receiver<Piece>>,
    free: Sender<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BlobReader {
    /// Starts reading `jobs` in order, each blob `size` bytes as listed: one byte more is read
    /// when there is one, so that a file longer than listed shows, but no more.
    pub fn start(store: ContentStore, jobs: Vec<(Job, u64)>) -> BlobReader {
        let (send, pieces) = std::sync::mpsc::sync_channel(AHEAD);
        let (free, recycled) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            for (job, size) in jobs {
                if !read_job(&store, job, size, &send, &recycled) {
                    return;
                }
            }
        });
        BlobReader {
            pieces: Some(pieces),
            free,
            thread: Some(thread),
        }
    }

    /// The next chunk of the current blob (a buffer and the length of its data), or `None`
    /// at the end of the blob.
    pub fn next_chunk(&mut self) -> io::Result<Option<(Vec<u8>, usize)>> {
        let piece = self.pieces.as_ref().and_then(|p| p.recv().ok());
        match piece {
            Some(Piece::Data(chunk, n)) => Ok(Some((chunk, n))),
            Some(Piece::End) => Ok(None),
            Some(Piece::Failed(e)) => Err(e),
            None => Err(io::Error::other("the reading thread stopped")),
        }
    }

    /// Where buffers from [`BlobReader::next_chunk`] go back once used, to be filled again.
    pub fn home(&self) -> Sender<Vec<u8>> {
        self.free.clone()
    }
}

/// The thread stops at its next send once nobody receives, and is waited for.
impl Drop for BlobReader {
    fn drop(&mut self) {
        self.pieces = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sends one blob's chunks and its end; false when the caller is gone or the blob failed.
fn read_job(
    store: &ContentStore,
    job: Job,
    size: u64,
    send: &SyncSender<Piece>,
    recycled: &Receiver<Vec<u8>>,
) -> bool {
    // A blob a writer dropped after pushing it comes from the bucket, through a scratch file
    // that goes when this blob is read: the store keeps no copy.
    let mut _scratch = None;
    let path = match job {
        Job::Memory(bytes) => {
            let n = bytes.len();
            return (n == 0 || send.send(Piece::Data(bytes, n)).is_ok())
                && send.send(Piece::End).is_ok();
        }
        Job::Store(digest) => {
            let path = store.blob_path(&digest);
            if path.is_file() || !store.is_dropped(&digest) {
                path
            } else {
                match store.read_back_copy(&digest) {
                    Ok(copy) => _scratch.insert(copy).to_path_buf(),
                    Err(e) => {
                        let _ = send.send(Piece::Failed(io::Error::other(e)));
                        return false;
                    }
                }
            }
        }
    };
    let mut file = match File::open(&path) {
        Ok(file) => ReadAhead::new(file),
        Err(e) => {
            let _ = send.send(Piece::Failed(e));
            return false;
        }
    };
    let mut left = size + 1;
    while left > 0 {
        // Only read buffers come back into use: an in-memory blob's own buffer is dropped.
        let reused = std::iter::from_fn(|| recycled.try_recv().ok()).find(|c| c.len() == CHUNK);
        let mut chunk = reused.unwrap_or_else(|| vec![0; CHUNK]);
        let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match read_full(&mut file, &mut chunk[..want]) {
            Ok(n) => n,
            Err(e) => {
                let _ = send.send(Piece::Failed(e));
                return false;
            }
        };
        if n > 0 && send.send(Piece::Data(chunk, n)).is_err() {
            return false;
        }
        if n < want {
            break;
        }
        left -= n as u64;
    }
    send.send(Piece::End).is_ok()
}
