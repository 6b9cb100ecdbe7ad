//! Reading from start to end, as the export and the index readers do: files with the kernel
//! asked to read ahead, any reader in whole buffers.

use std::fs::File;
use std::io::{self, Read};

/// A file read from start to end, with the kernel asked to fetch the next `AHEAD` bytes while
/// this side hashes and writes the current ones: the default readahead (128 KiB) leaves a
/// cold read waiting on the disk at every chunk.
pub struct ReadAhead {
    file: File,
    position: u64,
    requested: u64,
}

const AHEAD: u64 = 32 << 20;

impl ReadAhead {
    pub fn new(file: File) -> ReadAhead {
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Sequential);
        ReadAhead {
            file,
            position: 0,
            requested: 0,
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.position + AHEAD / 2 >= self.requested {
            let from = self.requested.max(self.position);
            // Advice only: a failure costs speed, not correctness.
            let _ = rustix::fs::fadvise(
                &self.file,
                from,
                std::num::NonZeroU64::new(AHEAD),
                rustix::fs::Advice::WillNeed,
            );
            self.requested = from + AHEAD;
        }
        let n = self.file.read(buf)?;
        self.position += n as u64;
        Ok(n)
    }
}

/// Reads until `buf` is full or the end; returns how much it holds.
pub fn read_full<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
