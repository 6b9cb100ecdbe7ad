//! Keeps a verify run as the last one ([`LastRun`], read by the status).

use std::path::Path;

use super::Report;
use crate::storage::StorageError;
use crate::storage::save_json;
use crate::storage::verify_run::{LastRun, Mode};

/// Failures kept in the record: enough to say what went wrong, not a copy of the report.
const KEPT: usize = 20;

impl LastRun {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::verify_run::Failure;

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
