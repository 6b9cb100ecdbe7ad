//! What each sync, snap fetch and import added to the store (`data/state/history.json`): the
//! basis of `airlock verify`'s estimate of the room the next one needs.
//!
//! A first run (a new mirror, a changed selection, an import bringing a content new here)
//! fetches it whole and says nothing about the next, so the estimate takes only the updates
//! since: the largest of the last few of each source, summed over the sources still
//! configured.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StorageError;
use super::state::{load_json, save_json};
use crate::report::Reporter;
use crate::util::human_bytes;

/// Updates kept per source: enough to cover a busy week of daily syncs.
const KEEP: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// Nothing published before, or the selection changed: the whole selection was fetched.
    First,
    /// The same selection brought up to date.
    Update,
}

impl RunKind {
    pub fn first_when(first: bool) -> RunKind {
        if first {
            RunKind::First
        } else {
            RunKind::Update
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// `apt/NAME` for a mirror, `images`, `snaps/NAME`, `import`.
    pub source: String,
    pub kind: RunKind,
    pub at: jiff::Timestamp,
    /// What the store gained: new blobs only, as they take room on disk.
    pub bytes: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct History {
    runs: Vec<Run>,
}

/// The room the next sync needs, and what it is based on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    pub bytes: u64,
    /// The largest recent update of each source counted.
    pub basis: Vec<Run>,
}

impl History {
    fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("state/history.json")
    }

    pub fn load(data_dir: &Path) -> Result<History, StorageError> {
        load_json(&Self::path(data_dir))
    }

    /// When `source` last added to the store.
    pub fn last(&self, source: impl Fn(&str) -> bool) -> Option<jiff::Timestamp> {
        self.runs
            .iter()
            .filter(|r| source(&r.source))
            .map(|r| r.at)
            .max()
    }

    /// Adds one run, keeping the last [`KEEP`] updates and the last first run of its source.
    pub fn record(data_dir: &Path, run: Run) -> Result<(), StorageError> {
        History::load(data_dir)?.with(run).save(data_dir)
    }

    /// [`History::record`] after a publish: the run itself succeeded, so a failure here is
    /// only a warning.
    pub fn record_or_warn(data_dir: &Path, run: Run, reporter: &dyn Reporter) {
        let missed = |e: StorageError| {
            reporter.warn(&format!(
                "{}: the next sync's room estimate will miss this run",
                crate::hint::Chain(&e)
            ))
        };
        let history = match History::load(data_dir) {
            Ok(history) => history,
            // A damaged history would stop every later record: kept aside, a new one begun.
            Err(StorageError::Json { path, source }) => {
                let aside = path.with_extension("json.damaged");
                if let Err(source) = std::fs::rename(&path, &aside) {
                    return missed(StorageError::Write { path, source });
                }
                reporter.warn(&format!(
                    "{} was damaged ({source}): kept as {}, a new history begins",
                    path.display(),
                    aside.display()
                ));
                History::default()
            }
            Err(e) => return missed(e),
        };
        if let Err(e) = history.with(run).save(data_dir) {
            missed(e);
        }
    }

    fn with(mut self, run: Run) -> History {
        self.runs.push(run);
        self.trim();
        self
    }

    fn save(&self, data_dir: &Path) -> Result<(), StorageError> {
        save_json(&Self::path(data_dir), self)
    }

    fn trim(&mut self) {
        let mut seen: BTreeMap<(&str, RunKind), usize> = BTreeMap::new();
        let mut keep = vec![false; self.runs.len()];
        for (i, run) in self.runs.iter().enumerate().rev() {
            let count = seen.entry((&run.source, run.kind)).or_default();
            *count += 1;
            let limit = if run.kind == RunKind::First { 1 } else { KEEP };
            keep[i] = *count <= limit;
        }
        let mut keep = keep.into_iter();
        self.runs.retain(|_| keep.next().unwrap_or(false));
    }

    /// The next sync's estimate over the sources `counted` accepts (those still configured);
    /// `None` when none of them has an update on record.
    pub fn estimate(&self, counted: impl Fn(&str) -> bool) -> Option<Estimate> {
        let mut largest: BTreeMap<&str, &Run> = BTreeMap::new();
        for run in self.runs.iter().filter(|r| counted(&r.source)) {
            if run.kind == RunKind::First {
                // Updates before it were of another selection.
                largest.remove(run.source.as_str());
                continue;
            }
            let entry = largest.entry(&run.source).or_insert(run);
            if run.bytes > entry.bytes {
                *entry = run;
            }
        }
        if largest.is_empty() {
            return None;
        }
        let basis: Vec<Run> = largest.into_values().cloned().collect();
        Some(Estimate {
            bytes: basis.iter().map(|r| r.bytes).sum(),
            basis,
        })
    }
}

/// Left free besides the next sync's estimate: its temp files, trees and logs.
const SYNC_SPARE: u64 = 1 << 30;

/// Whether `free` bytes of `total` hold the next sync as `estimate` has it:
/// `(expected, got, fatal)` when they may not. Without an estimate, a rule of thumb.
pub fn disk_room(
    estimate: Option<&Estimate>,
    free: u64,
    total: u64,
) -> Option<(String, String, bool)> {
    let got = format!("{} free of {}", human_bytes(free), human_bytes(total));
    let spare = human_bytes(SYNC_SPARE);
    let Some(estimate) = estimate else {
        let short = free < total / 10 || free < SYNC_SPARE;
        let expected = format!(
            "at least 10 % and {spare} free (no update on record to estimate the next sync from)"
        );
        return short.then_some((expected, got, false));
    };
    let basis: Vec<String> = estimate
        .basis
        .iter()
        .map(|run| {
            let day = run.at.strftime("%Y-%m-%d");
            format!("{} {} on {day}", run.source, human_bytes(run.bytes))
        })
        .collect();
    let needs = |syncs: u64| {
        estimate
            .bytes
            .saturating_mul(syncs)
            .saturating_add(SYNC_SPARE)
    };
    let expected = |what: &str, syncs: u64| {
        format!(
            "room for {what}: {} (largest recent updates: {}; plus {spare} spare)",
            human_bytes(needs(syncs)),
            basis.join(", ")
        )
    };
    if free < needs(1) {
        Some((expected("the next sync", 1), got, true))
    } else if free < needs(2) {
        // Room for one more only: the one after fails, maybe while nobody watches.
        Some((expected("the next two syncs", 2), got, false))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(source: &str, kind: RunKind, bytes: u64) -> Run {
        Run {
            source: source.into(),
            kind,
            at: jiff::Timestamp::UNIX_EPOCH,
            bytes,
        }
    }

    #[test]
    fn estimate_is_the_largest_recent_update_of_each_source() {
        let history = History {
            runs: vec![
                run("apt/ubuntu", RunKind::First, 500 << 30),
                run("apt/ubuntu", RunKind::Update, 3 << 30),
                run("apt/ubuntu", RunKind::Update, 1 << 30),
                run("images", RunKind::Update, 2 << 30),
                run("apt/gone", RunKind::Update, 9 << 30),
            ],
        };
        let estimate = history.estimate(|s| s != "apt/gone").unwrap();
        assert_eq!(estimate.bytes, 5 << 30);
        assert_eq!(
            estimate.basis,
            vec![
                run("apt/ubuntu", RunKind::Update, 3 << 30),
                run("images", RunKind::Update, 2 << 30)
            ]
        );
        // A new selection: the updates before it no longer count.
        let mut changed = History {
            runs: history.runs.clone(),
        };
        changed.runs.push(run("images", RunKind::First, 40 << 30));
        changed.runs.push(run("images", RunKind::Update, 1 << 30));
        let estimate = changed.estimate(|s| s != "apt/gone").unwrap();
        assert_eq!(estimate.bytes, 4 << 30);
        // A first sync alone says nothing about the next.
        let first = History {
            runs: vec![run("apt/ubuntu", RunKind::First, 500 << 30)],
        };
        assert_eq!(first.estimate(|_| true), None);
    }

    #[test]
    fn record_keeps_the_last_updates_and_first_run_of_each_source() {
        let dir = tempfile::tempdir().unwrap();
        History::record(dir.path(), run("images", RunKind::First, 7)).unwrap();
        History::record(dir.path(), run("images", RunKind::First, 8)).unwrap();
        for bytes in 0..15 {
            History::record(dir.path(), run("apt/ubuntu", RunKind::Update, bytes)).unwrap();
        }
        History::record(dir.path(), run("images", RunKind::Update, 1)).unwrap();
        let history = History::load(dir.path()).unwrap();
        let bytes: Vec<(&str, u64)> = history
            .runs
            .iter()
            .map(|r| (r.source.as_str(), r.bytes))
            .collect();
        let mut expected = vec![("images", 8)];
        expected.extend((5..15).map(|b| ("apt/ubuntu", b)));
        expected.push(("images", 1));
        assert_eq!(bytes, expected);
    }
}
