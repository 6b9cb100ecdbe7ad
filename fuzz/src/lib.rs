//! What the fuzz targets (`tests/targets.rs`) share: their seeds, a mutator that turns any
//! input into an edit of a seed, and a scratch file for the parsers that take a path.
//!
//! Under `cargo test` bolero feeds each target the files of its corpus and then random bytes
//! for a bounded time, with no coverage feedback. Random bytes rarely get past the first line
//! of a format, so every target also reads its input as an edit script applied to one of its
//! seeds (real examples): mutated real documents reach the deep paths on stable Rust too.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A corpus file larger than this is a mistake: the corpus is a handful of small examples.
const MAX_SEED: u64 = 256 << 10;

/// Where bolero looks for the corpus of a target declared in `tests/targets.rs`.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/__fuzz__")
        .join(target)
        .join("corpus")
}

/// The files of a target's corpus, read once per process.
pub struct Seeds {
    target: &'static str,
    files: OnceLock<Vec<Vec<u8>>>,
}

impl Seeds {
    pub const fn new(target: &'static str) -> Seeds {
        Seeds {
            target,
            files: OnceLock::new(),
        }
    }

    pub fn get(&self) -> &[Vec<u8>] {
        self.files.get_or_init(|| {
            let dir = corpus_dir(self.target);
            let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
                .map(|entry| entry.expect("corpus entry").path())
                .filter(|path| path.is_file())
                .collect();
            // Sorted: a failure names a seed by its index, which must mean the same file.
            paths.sort();
            paths
                .iter()
                .map(|path| {
                    let mut bytes = Vec::new();
                    std::fs::File::open(path)
                        .and_then(|f| f.take(MAX_SEED + 1).read_to_end(&mut bytes))
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    assert!(
                        bytes.len() as u64 <= MAX_SEED,
                        "{} is larger than a seed may be",
                        path.display()
                    );
                    bytes
                })
                .collect()
        })
    }

    /// `input` read as an edit script (see [`mutate`]) applied to the seed its first byte picks.
    pub fn mutated(&self, input: &[u8]) -> Vec<u8> {
        let seeds = self.get();
        match input.split_first() {
            Some((pick, script)) if !seeds.is_empty() => {
                mutate(&seeds[usize::from(*pick) % seeds.len()], script, seeds)
            }
            _ => input.to_vec(),
        }
    }
}

/// Bytes that parsers of text formats treat specially: separators, signs, escapes.
const INTERESTING: &[u8] = b"\n\r\t :-+#./\\\"'{}[]=,0 9\x00\x7f\xff\xc3";

/// Numbers that sit on the edges of sizes, counts and lengths.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "255",
    "256",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
];

/// Applies an edit script to `seed`: each edit is 4 bytes (operation, position as two bytes,
/// argument), inserts carry their bytes after it. Positions wrap around the current length,
/// so every script is valid for every seed.
pub fn mutate(seed: &[u8], script: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut out = seed.to_vec();
    let mut rest = script;
    while let [op, hi, lo, arg, tail @ ..] = rest {
        rest = tail;
        let at = usize::from(u16::from_be_bytes([*hi, *lo])) % (out.len() + 1);
        let arg = usize::from(*arg);
        match op % 9 {
            // One bit flipped.
            0 if at < out.len() => out[at] ^= 1 << (arg % 8),
            // One byte replaced with a separator or an edge.
            1 if at < out.len() => out[at] = INTERESTING[arg % INTERESTING.len()],
            2 => {
                let end = (at + arg + 1).min(out.len());
                out.drain(at..end);
            }
            // A run duplicated: repeated fields, lines, members.
            3 => {
                let end = (at + arg + 1).min(out.len());
                let copy = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
            // Bytes of the script inserted.
            4 => {
                let take = (arg % 16 + 1).min(rest.len());
                out.splice(at..at, rest[..take].iter().copied());
                rest = &rest[take..];
            }
            // A number on an edge inserted.
            5 => {
                out.splice(at..at, NUMBERS[arg % NUMBERS.len()].bytes());
            }
            6 => out.truncate(at),
            // A run of another seed spliced in: the fields of one format in another's place.
            7 if !others.is_empty() => {
                let other = &others[arg % others.len()];
                let from = at % (other.len() + 1);
                let end = (from + 64).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            // A line ending changed: CRLF, a lone LF, or none.
            _ => {
                if let Some(nl) = out[at..].iter().position(|&b| b == b'\n') {
                    let nl = at + nl;
                    match arg % 3 {
                        0 => {
                            out.insert(nl, b'\r');
                        }
                        1 => {
                            out.remove(nl);
                        }
                        _ => {
                            out.insert(nl, b'\n');
                        }
                    }
                }
            }
        }
    }
    out
}

/// One file per target and thread, rewritten for each input: for the parsers that take a path
/// (`.deb` files, bundle manifests and volumes) as they do in production.
pub struct Scratch {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join(name);
        Scratch { _dir: dir, path }
    }

    /// Writes `bytes` as the whole file and returns its path.
    pub fn holding(&self, bytes: &[u8]) -> &Path {
        std::fs::write(&self.path, bytes).expect("scratch file");
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_applies_to_every_seed() {
        let others = vec![b"Package: x\n".to_vec()];
        for script in [
            &b""[..],
            b"\x00\xff\xff\x07",
            b"\x04\x00\x01\x03abc",
            b"\x06\x00\x00\x00",
        ] {
            for seed in [&b""[..], b"a", b"Package: a\nVersion: 1\n"] {
                let out = mutate(seed, script, &others);
                assert!(out.len() <= seed.len() + script.len() * 64);
            }
        }
        assert_eq!(mutate(b"ab", b"\x00\x00\x00\x00", &others), b"`b");
        assert_eq!(mutate(b"ab", b"\x06\x00\x01\x00", &others), b"a");
    }
}
