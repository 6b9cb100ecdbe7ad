//! What the last online verify saw listed: the pool files its indices named, by SHA-256, in
//! `data/state/verify/pool-seen` (32 bytes each, sorted). A sampled run checks every file not
//! in it (new since then: what a sync just brought in is where damage is likeliest) plus a
//! random sample of the rest. The first run only samples, and records.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::storage::{Sha256, write_atomic};

#[derive(Debug)]
pub(super) struct Seen {
    path: PathBuf,
    /// None when no verify ran before (or its record is unreadable).
    before: Option<HashSet<Sha256>>,
    now: Mutex<Vec<Sha256>>,
}

impl Seen {
    pub(super) fn load(data_dir: &std::path::Path) -> Seen {
        let path = data_dir.join("state/verify/pool-seen");
        let before = std::fs::read(&path)
            .ok()
            .filter(|bytes| bytes.len() % 32 == 0)
            .map(|bytes| {
                bytes
                    .chunks_exact(32)
                    .map(|c| Sha256::from_bytes(c.try_into().expect("32 bytes")))
                    .collect()
            });
        Seen {
            path,
            before,
            now: Mutex::new(Vec::new()),
        }
    }

    /// Keeps the items new since the last run and `sample` of the others (all with `full`);
    /// records every item's digest for the next run.
    pub(super) fn pick<T>(
        &self,
        items: Vec<T>,
        digest: impl Fn(&T) -> Sha256,
        depth: &super::Depth,
    ) -> Vec<T> {
        self.now
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(items.iter().map(&digest));
        if depth.full {
            return items;
        }
        let (mut new, mut known): (Vec<T>, Vec<T>) = match &self.before {
            Some(before) => items
                .into_iter()
                .partition(|item| !before.contains(&digest(item))),
            None => (Vec::new(), items),
        };
        depth.sample(&mut known);
        new.append(&mut known);
        new
    }

    /// A file that failed is not "seen": the next run checks it again.
    pub(super) fn forget(&self, digest: &Sha256) {
        self.now
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|d| d != digest);
    }

    /// Records what this run saw; a failure to write only loses the "new" selection next time.
    pub(super) fn save(&self) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner()).clone();
        now.sort();
        now.dedup();
        let bytes: Vec<u8> = now.iter().flat_map(|d| *d.as_bytes()).collect();
        if let Err(e) = write_atomic(&self.path, &bytes, 0o644) {
            tracing::warn!("cannot record what verify saw: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_items_are_all_kept_and_the_rest_sampled() {
        let dir = tempfile::tempdir().unwrap();
        let depth = super::super::Depth {
            full: false,
            sample: 2,
            horizon: jiff::SignedDuration::from_hours(1),
        };
        let digest = |n: &u8| Sha256::of(&[*n]);
        // The first run samples only, and records all ten.
        let first = Seen::load(dir.path());
        assert_eq!(first.pick((0..10).collect(), digest, &depth).len(), 2);
        first.save();
        // Three new ones: all three, plus two of the ten; 4 failed and is forgotten.
        let second = Seen::load(dir.path());
        let picked = second.pick((0..13).collect(), digest, &depth);
        assert_eq!(picked.len(), 5);
        assert!([10, 11, 12].iter().all(|n| picked.contains(n)));
        second.forget(&digest(&4));
        second.save();
        let third = Seen::load(dir.path());
        let picked = third.pick((0..13).collect(), digest, &depth);
        assert!(picked.contains(&4), "a failed file counts as new again");
        assert_eq!(picked.len(), 3);
    }
}
