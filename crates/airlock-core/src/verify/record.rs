//! The last run of `airlock verify`, kept in `data/state/verify/last-run.json` so that the
//! status page, `/status.json`, `/metrics` and `airlock status` can say how it went.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{AreaResult, Failure, Report};
use crate::storage::{StorageError, load_json, save_json};

/// Failures kept in the record: enough to say what went wrong, not a copy of the report.
const KEPT: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Over HTTP, as clients fetch.
    Online,
    /// The data folder re-hashed.
    Offline,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Online => "online",
            Mode::Offline => "offline",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastRun {
    pub at: jiff::Timestamp,
    pub mode: Mode,
    pub passed: bool,
    /// The areas an online run was limited to (`airlock verify apt ...`); empty: all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    /// Every area checked, with its checks and failures.
    pub areas: Vec<AreaResult>,
    /// The first failures (all of them are counted in `areas`).
    pub failures: Vec<Failure>,
    pub warnings: Vec<Failure>,
}

impl LastRun {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("state/verify/last-run.json")
    }

    /// The last run; none before the first.
    pub fn load(data_dir: &Path) -> Result<Option<LastRun>, StorageError> {
        load_json::<Option<LastRun>>(&LastRun::path(data_dir))
    }

    /// Keeps `report` as the last run (replacing the record in one rename).
    pub fn record(
        data_dir: &Path,
        mode: Mode,
        only: &[String],
        report: &Report,
    ) -> Result<(), StorageError> {
        let run = LastRun {
            at: jiff::Timestamp::now(),
            mode,
            passed: report.passed(),
            only: only.to_vec(),
            areas: report.areas.clone(),
            failures: report.failures.iter().take(KEPT).cloned().collect(),
            warnings: report.warnings.iter().take(KEPT).cloned().collect(),
        };
        save_json(&LastRun::path(data_dir), &run)
    }

    /// Failed checks, summed by area (areas with none left out).
    pub fn failed_by_area(&self) -> Vec<(&str, usize)> {
        self.areas
            .iter()
            .filter(|a| a.failed > 0)
            .map(|a| (a.area.as_str(), a.failed))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_kept_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(LastRun::load(dir.path()).unwrap().is_none());
        let mut report = Report::default();
        report.area(
            "apt/local",
            3,
            vec![Failure::new("apt/local", "x", "y", "z")],
            Vec::new(),
        );
        report.area("images", 5, Vec::new(), Vec::new());
        LastRun::record(dir.path(), Mode::Online, &[], &report).unwrap();
        let run = LastRun::load(dir.path()).unwrap().unwrap();
        assert!(!run.passed);
        assert_eq!(run.mode, Mode::Online);
        assert_eq!(run.failed_by_area(), vec![("apt/local", 1)]);
        assert_eq!(run.failures[0].what, "x");
    }
}
