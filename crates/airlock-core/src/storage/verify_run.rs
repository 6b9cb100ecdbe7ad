//! The last run of `airlock verify`, kept in `data/state/verify/last-run.json` so that the
//! status page, `/status.json`, `/metrics` and `airlock status` can say how it went. verify
//! writes it (`LastRun::record`, in `verify/record.rs`); the status only reads it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StorageError;
use super::state::load_json;

/// One check that failed (or warns): what, where, what was expected, what was found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub area: String,
    pub what: String,
    pub expected: String,
    pub got: String,
}

impl Failure {
    pub fn new(
        area: &str,
        what: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Failure {
        Failure {
            area: area.to_string(),
            what: what.into(),
            expected: expected.into(),
            got: got.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AreaResult {
    pub area: String,
    pub checked: usize,
    pub failed: usize,
}

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

    /// Failed checks, summed by area (areas with none left out).
    pub fn failed_by_area(&self) -> Vec<(&str, usize)> {
        self.areas
            .iter()
            .filter(|a| a.failed > 0)
            .map(|a| (a.area.as_str(), a.failed))
            .collect()
    }
}
