//! Volumes: plain tar (ustar) files, optionally zstd-compressed, of entries `blobs/<sha256>`.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, SyncSender};

use sha2::Digest;

use super::BundleError;
use super::reader::BlobReader;
use crate::io::{ReadAhead, read_full};
use crate::storage::{Sha256, StorageError};

const BLOCK: u64 = 512;
/// Two zero blocks end a tar archive.
const TRAILER: u64 = 2 * BLOCK;
const CHUNK: usize = 1 << 20;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

pub fn entry_name(digest: &Sha256) -> String {
    format!("blobs/{digest}")
}

/// Bytes a blob of `size` takes in a tar stream: its header, its data padded to a block.
pub fn entry_size(size: u64) -> u64 {
    BLOCK + size.div_ceil(BLOCK) * BLOCK
}

/// The most tar bytes a volume of at most `limit` bytes on disk may hold: the whole of it, or
/// with zstd what the worst case of incompressible data (stored blocks) still fits in.
pub fn tar_budget(limit: u64, zstd: bool) -> u64 {
    let budget = if zstd {
        limit.saturating_sub(limit / 1024 + (64 << 10))
    } else {
        limit
    };
    budget.saturating_sub(TRAILER)
}

enum Sink {
    Plain(BufWriter<WriteBehind>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<WriteBehind>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Zstd(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Zstd(w) => w.flush(),
        }
    }
}

/// One volume being written.
pub struct VolumeWriter {
    path: PathBuf,
    sink: PipeWriter<Sink>,
    mtime: u64,
    pub tar_bytes: u64,
    pub blobs: u64,
}

/// A writer whose writes happen on a thread of their own, so that hashing (on the caller's
/// thread) and writing overlap: on 2 cores, one pass of hash-then-write takes the sum of
/// both. Buffers go back and forth through a bounded channel: memory stays at a few chunks.
pub struct PipeWriter<W: Write + Send + 'static> {
    chunks: Option<SyncSender<Chunk>>,
    /// Where this writer's own buffers come back.
    home: Sender<Vec<u8>>,
    free: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    thread: Option<std::thread::JoinHandle<(W, io::Result<()>)>>,
}

/// A buffer, the length of its data, and where it goes once written.
type Chunk = (Vec<u8>, usize, Sender<Vec<u8>>);

impl<W: Write + Send + 'static> PipeWriter<W> {
    pub fn new(mut inner: W) -> PipeWriter<W> {
        let (chunks, received) = std::sync::mpsc::sync_channel::<Chunk>(4);
        let (home, free) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            for (chunk, n, home) in received {
                if let Err(e) = inner.write_all(&chunk[..n]) {
                    return (inner, Err(e));
                }
                let _ = home.send(chunk);
            }
            (inner, Ok(()))
        });
        PipeWriter {
            chunks: Some(chunks),
            home,
            free,
            pending: Vec::with_capacity(CHUNK),
            thread: Some(thread),
        }
    }

    fn send_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut next = self
            .free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        next.clear();
        let chunk = std::mem::replace(&mut self.pending, next);
        let n = chunk.len();
        let home = self.home.clone();
        self.send((chunk, n, home))
    }

    /// Writes the first `n` bytes of `chunk` without copying them, after what was written
    /// before; the buffer is then sent to `home`, to be filled again.
    pub fn write_chunk(
        &mut self,
        chunk: Vec<u8>,
        n: usize,
        home: &Sender<Vec<u8>>,
    ) -> io::Result<()> {
        self.send_pending()?;
        self.send((chunk, n, home.clone()))
    }

    fn send(&mut self, chunk: Chunk) -> io::Result<()> {
        let sent = self.chunks.as_ref().map(|c| c.send(chunk));
        match sent {
            Some(Ok(())) => Ok(()),
            // The thread stopped: its error says why.
            _ => Err(self
                .stop()
                .err()
                .unwrap_or_else(|| io::Error::other("writer stopped"))),
        }
    }

    fn stop(&mut self) -> io::Result<W> {
        self.chunks = None;
        let thread = self
            .thread
            .take()
            .ok_or_else(|| io::Error::other("writer stopped"))?;
        let (inner, result) = thread
            .join()
            .map_err(|_| io::Error::other("writer thread panicked"))?;
        result.map(|()| inner)
    }

    /// Writes what is left and hands back the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.send_pending()?;
        self.stop()
    }
}

/// On an error path: the thread stops with the channel and is waited for, never left writing.
impl<W: Write + Send + 'static> Drop for PipeWriter<W> {
    fn drop(&mut self) {
        self.chunks = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl<W: Write + Send + 'static> Write for PipeWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK.saturating_sub(self.pending.len()).max(1);
        let n = room.min(buf.len());
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() >= CHUNK {
            self.send_pending()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()
    }
}

/// One buffer per export or import: a fresh one per blob fragments the heap.
pub fn copy_buffer() -> Vec<u8> {
    vec![0u8; CHUNK]
}

impl VolumeWriter {
    pub fn create(path: &Path, zstd: bool, mtime: u64) -> Result<VolumeWriter, BundleError> {
        let file = File::create(path).map_err(|e| volume_err(path, "cannot create it", e))?;
        let out = BufWriter::with_capacity(CHUNK, WriteBehind::new(file));
        let sink = if zstd {
            let mut encoder = zstd::stream::write::Encoder::new(out, 3)
                .map_err(|e| volume_err(path, "cannot start zstd", e))?;
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
            encoder
                .multithread(workers)
                .map_err(|e| volume_err(path, "cannot start zstd workers", e))?;
            Sink::Zstd(encoder)
        } else {
            Sink::Plain(out)
        };
        Ok(VolumeWriter {
            path: path.to_path_buf(),
            sink: PipeWriter::new(sink),
            mtime,
            tar_bytes: 0,
            blobs: 0,
        })
    }

    /// Appends the next blob of `blobs`, checking that it is `size` bytes with digest
    /// `digest` (a store damaged on disk must not travel).
    pub fn append(
        &mut self,
        digest: &Sha256,
        size: u64,
        blobs: &mut BlobReader,
        origin: &Path,
        mut progress: impl FnMut(u64),
    ) -> Result<(), BundleError> {
        let name = entry_name(digest);
        let mut header = tar::Header::new_ustar();
        header
            .set_path(&name)
            .map_err(|e| volume_err(&self.path, "cannot name an entry", e))?;
        header.set_size(size);
        header.set_mode(0o444);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let write_err = |e| volume_err(&self.path, "cannot write it", e);
        self.sink.write_all(header.as_bytes()).map_err(write_err)?;
        let mut hasher = sha2::Sha256::new();
        let mut copied = 0;
        let home = blobs.home();
        let mismatch = || {
            store_err(
                origin,
                format!(
                    "is not the blob {digest} of {size} bytes the site lists: run `airlock verify --offline`"
                ),
            )
        };
        while let Some((chunk, n)) = blobs.next_chunk().map_err(|source| StorageError::Read {
            path: origin.to_path_buf(),
            source,
        })? {
            copied += n as u64;
            if copied > size {
                return Err(mismatch());
            }
            hasher.update(&chunk[..n]);
            self.sink.write_chunk(chunk, n, &home).map_err(write_err)?;
            progress(n as u64);
        }
        if copied != size || Sha256::from_bytes(hasher.finalize().into()) != *digest {
            return Err(mismatch());
        }
        let padding = (entry_size(size) - BLOCK - size) as usize;
        self.sink
            .write_all(&[0u8; BLOCK as usize][..padding])
            .map_err(write_err)?;
        self.tar_bytes += entry_size(size);
        self.blobs += 1;
        Ok(())
    }

    /// Ends the archive and flushes it to disk; returns the file's size.
    pub fn finish(mut self) -> Result<u64, BundleError> {
        let path = self.path.clone();
        let err = |what, e| volume_err(&path, what, e);
        self.sink
            .write_all(&[0u8; TRAILER as usize])
            .map_err(|e| err("cannot write it", e))?;
        let sink = self.sink.finish().map_err(|e| err("cannot write it", e))?;
        let out = match sink {
            Sink::Plain(w) => w,
            Sink::Zstd(w) => w.finish().map_err(|e| err("cannot finish zstd", e))?,
        };
        let file = out
            .into_inner()
            .map_err(|e| err("cannot write it", e.into_error()))?
            .into_file();
        file.sync_all().map_err(|e| err("cannot flush it", e))?;
        let size = file
            .metadata()
            .map_err(|e| err("cannot read its size", e))?
            .len();
        Ok(size)
    }
}

fn volume_err(path: &Path, what: &'static str, source: io::Error) -> BundleError {
    BundleError::VolumeIo {
        volume: path.to_path_buf(),
        what,
        source,
    }
}

fn store_err(origin: &Path, reason: String) -> BundleError {
    BundleError::Export(format!("{}: {reason}", origin.display()))
}

/// A file written from start to end, whose written pages the kernel is asked to write back
/// as it goes (and to drop once clean): left to itself it lets gigabytes pile up under the
/// dirty limit, and the final flush then waits for all of them at once.
pub struct WriteBehind {
    file: File,
    written: u64,
    advised: u64,
}

const BEHIND: u64 = 32 << 20;

impl WriteBehind {
    pub fn new(file: File) -> WriteBehind {
        WriteBehind {
            file,
            written: 0,
            advised: 0,
        }
    }

    pub fn into_file(self) -> File {
        self.file
    }
}

impl Write for WriteBehind {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written >= self.advised + BEHIND {
            // The window before last is written back by now and dropped; the last one starts
            // going. Advice only: a failure costs speed, not correctness.
            let from = self.advised.saturating_sub(BEHIND);
            let _ = rustix::fs::fadvise(
                &self.file,
                from,
                std::num::NonZeroU64::new(self.written - from),
                rustix::fs::Advice::DontNeed,
            );
            self.advised = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Counts the bytes read from a volume file, for progress.
pub struct Counting<R> {
    pub inner: R,
    pub count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens a volume for reading, decompressing when it starts with zstd's magic number.
pub fn open(
    path: &Path,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<Box<dyn Read>, BundleError> {
    let file = File::open(path).map_err(|e| volume_err(path, "cannot open it", e))?;
    let mut file = ReadAhead::new(file);
    let mut magic = [0u8; 4];
    let n = read_full(&mut file, &mut magic).map_err(|e| volume_err(path, "cannot read it", e))?;
    let head = io::Cursor::new(magic[..n].to_vec());
    let counted = Counting {
        inner: head.chain(file),
        count,
    };
    let reader = io::BufReader::with_capacity(CHUNK, counted);
    if magic[..n] == ZSTD_MAGIC {
        let decoder = zstd::stream::read::Decoder::with_buffer(reader)
            .map_err(|e| volume_err(path, "cannot start zstd", e))?;
        Ok(Box::new(decoder))
    } else {
        Ok(Box::new(reader))
    }
}

/// Why an entry is not a blob this bundle may carry; `None` when it is `blobs/<sha256>`.
pub fn entry_problem(kind: tar::EntryType, path: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(path);
    if path.starts_with(b"/") {
        return Some("an absolute path; a bundle holds only blobs/<sha256>".into());
    }
    if text.split('/').any(|c| c == "..") {
        return Some("a path with '..'; a bundle holds only blobs/<sha256>".into());
    }
    let what = match kind {
        tar::EntryType::Regular => None,
        tar::EntryType::Symlink => Some("a symbolic link"),
        tar::EntryType::Link => Some("a hard link"),
        tar::EntryType::Char | tar::EntryType::Block => Some("a device file"),
        tar::EntryType::Fifo => Some("a FIFO"),
        tar::EntryType::Directory => Some("a folder"),
        _ => Some("not a regular file"),
    };
    if let Some(what) = what {
        return Some(format!("{what}; a bundle holds only regular files"));
    }
    match text.strip_prefix("blobs/").map(Sha256::parse_lowercase) {
        Some(Ok(_)) => None,
        _ => Some("not named blobs/<sha256>".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::reader::Job;
    use super::*;
    use crate::storage::ContentStore;

    #[test]
    fn refuses_everything_but_blobs() {
        let blob = format!("blobs/{}", Sha256::of(b"x"));
        assert_eq!(
            entry_problem(tar::EntryType::Regular, blob.as_bytes()),
            None
        );
        let cases: [(tar::EntryType, &str, &str); 7] = [
            (tar::EntryType::Regular, "/etc/passwd", "absolute"),
            (tar::EntryType::Regular, "blobs/../../x", "'..'"),
            (tar::EntryType::Symlink, &blob, "symbolic link"),
            (tar::EntryType::Link, &blob, "hard link"),
            (tar::EntryType::Char, &blob, "device"),
            (tar::EntryType::Regular, "blobs/ABC", "not named"),
            (tar::EntryType::Regular, "other", "not named"),
        ];
        for (kind, path, expected) in cases {
            let problem = entry_problem(kind, path.as_bytes()).unwrap();
            assert!(problem.contains(expected), "{path}: {problem}");
        }
    }

    #[test]
    fn written_volumes_read_back_with_tar() {
        let dir = tempfile::tempdir().unwrap();
        for zstd in [false, true] {
            let path = dir.path().join(format!("v-{zstd}.tar"));
            let mut writer = VolumeWriter::create(&path, zstd, 0).unwrap();
            let blobs: Vec<Vec<u8>> = vec![b"one".to_vec(), vec![7u8; 3000], Vec::new()];
            let jobs = blobs
                .iter()
                .map(|b| (Job::Memory(b.clone()), b.len() as u64))
                .collect();
            let mut reader = BlobReader::start(ContentStore::new(dir.path()), jobs);
            for blob in &blobs {
                let digest = Sha256::of(blob);
                writer
                    .append(&digest, blob.len() as u64, &mut reader, &path, |_| {})
                    .unwrap();
            }
            let expected = writer.tar_bytes;
            let size = writer.finish().unwrap();
            if !zstd {
                assert_eq!(size, expected + TRAILER);
            }
            let reader = open(&path, Default::default()).unwrap();
            let mut archive = tar::Archive::new(reader);
            let mut read = Vec::new();
            for entry in archive.entries().unwrap() {
                let mut entry = entry.unwrap();
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                assert_eq!(
                    entry.path_bytes().as_ref(),
                    entry_name(&Sha256::of(&bytes)).as_bytes()
                );
                read.push(bytes);
            }
            assert_eq!(read, blobs);
        }
    }

    #[test]
    fn a_damaged_store_blob_is_not_exported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.tar");
        let mut writer = VolumeWriter::create(&path, false, 0).unwrap();
        let digest = Sha256::of(b"right");
        let store = ContentStore::new(dir.path());
        // Its bytes changed, or it grew: read from the store as it is now.
        for (bytes, size) in [(&b"wrong"[..], 5), (b"right, and more", 5)] {
            let blob = store.blob_path(&digest);
            std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
            std::fs::write(&blob, bytes).unwrap();
            let mut reader = BlobReader::start(store.clone(), vec![(Job::Store(digest), size)]);
            let err = writer
                .append(&digest, size, &mut reader, &blob, |_| {})
                .unwrap_err();
            assert!(err.to_string().contains("verify --offline"), "{err}");
        }
    }
}
