//! The writer's own state in the bucket: what it needs to go on publishing (local repos'
//! packages, custom images, the snap catalog, imported bundles, the sync history), pushed as
//! documents named `state/…` so that `airlock pull` can rebuild a writer from the bucket
//! alone. What a machine records about itself (the server's counters, verify and gc runs)
//! stays on it.

use std::path::Path;

use bytes::Bytes;

use super::RemoteError;
use crate::storage::{StorageError, read_limited};

/// The documents' names start with this; the rest is the path under `data/state/`.
pub const PREFIX: &str = "state/";
/// What is pushed of `data/state/`: folders, and files directly in it.
const FOLDERS: [&str; 4] = ["apt", "images", "snaps", "bundles"];
const FILES: [&str; 1] = ["history.json"];
/// The most a state file may hold (each is in memory while pushed or pulled).
pub const LIMIT: u64 = 256 << 20;

/// The state files of the data folder `data`, as (document name, bytes), in name order.
pub fn read(data: &Path) -> Result<Vec<(String, Bytes)>, RemoteError> {
    let state = data.join("state");
    let mut found = Vec::new();
    for folder in FOLDERS {
        let dir = state.join(folder);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(StorageError::Read { path: dir, source }.into()),
        };
        for entry in entries {
            let entry = entry.map_err(|source| StorageError::Read {
                path: dir.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Files being replaced (`.name.tmp…`) are not state yet.
            if !name.starts_with('.') && entry.path().is_file() {
                found.push(format!("{folder}/{name}"));
            }
        }
    }
    found.extend(
        FILES
            .iter()
            .filter(|f| state.join(f).is_file())
            .map(|f| f.to_string()),
    );
    found.sort();
    found
        .into_iter()
        .map(|relative| {
            let bytes = read_limited(&state.join(&relative), LIMIT, "a state file")?;
            Ok((format!("{PREFIX}{relative}"), Bytes::from(bytes)))
        })
        .collect()
}

/// Where the document `name` (one of [`read`]'s) goes under the data folder `data`; none for a
/// name this airlock does not push (a newer writer's, or a damaged pointer's).
pub fn path(data: &Path, name: &str) -> Option<std::path::PathBuf> {
    let relative = name.strip_prefix(PREFIX)?;
    let allowed = match relative.split_once('/') {
        Some((folder, file)) => {
            FOLDERS.contains(&folder)
                && !file.is_empty()
                && !file.contains('/')
                && !file.starts_with('.')
        }
        None => FILES.contains(&relative),
    };
    allowed.then(|| data.join("state").join(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_writers_state_is_pushed_and_only_there_is_it_pulled_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        for (file, text) in [
            ("apt/local.packages", "Package: a\n"),
            ("images/custom.json", "{}"),
            ("history.json", "[]"),
            ("status/counters.json", "{}"),
            ("verify/last-run.json", "{}"),
            ("apt/.local.packages.tmp123", "half"),
        ] {
            let path = state.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let names: Vec<String> = read(dir.path())
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "state/apt/local.packages",
                "state/history.json",
                "state/images/custom.json"
            ]
        );
        for name in &names {
            assert_eq!(
                path(dir.path(), name).unwrap(),
                state.join(name.strip_prefix(PREFIX).unwrap())
            );
        }
        for bad in [
            "state/status/counters.json",
            "state/apt/../../etc/passwd",
            "state/apt/a/b",
            "state/../x",
            "state/apt/.hidden",
            "snaps/catalog.json",
        ] {
            assert_eq!(path(dir.path(), bad), None, "{bad}");
        }
    }
}
