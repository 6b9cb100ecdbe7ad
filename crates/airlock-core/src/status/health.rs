//! Whether the site is healthy, and if not what is wrong and what to do: Valid-Until close
//! or passed, the last verify failed (or none on record, or old), the disk short of the next
//! sync's estimate, something unreadable.

use super::gather::Published;
use super::model::{AptKind, Health, Level, Problem, SiteStatus, SuiteStatus};
use crate::storage::history::disk_room;

/// How often the packaged timer publishes (`airlock-publish.timer`: daily); a Valid-Until
/// closer than this may pass before the next publish renews it.
pub const PUBLISH_INTERVAL: i64 = 24 * 3600;
/// A verify older than this means its timer (hourly in the package) stopped.
const VERIFY_AGE: i64 = 2 * 24 * 3600;

/// How close a Valid-Until may come before it is a warning: one publish interval, or half
/// the Release's validity when that is shorter (a publish renews at half, so a short
/// validity is still healthy when just renewed).
pub fn warning_window(date: Option<jiff::Timestamp>, valid_until: jiff::Timestamp) -> i64 {
    let half = date.map_or(PUBLISH_INTERVAL, |d| {
        (valid_until.as_second() - d.as_second()) / 2
    });
    PUBLISH_INTERVAL.min(half.max(1))
}

/// How a suite's Valid-Until stands: passed (error), within the warning window (warning),
/// or healthy; none without a Valid-Until.
pub fn validity(suite: &SuiteStatus) -> Option<Level> {
    let (until, left) = (suite.valid_until?, suite.seconds_left?);
    Some(if left <= 0 {
        Level::Error
    } else if left < warning_window(suite.date, until) {
        Level::Warning
    } else {
        Level::Healthy
    })
}

/// The problems of `status` (its contents, verify run and disk), worst first.
pub fn assess(status: &SiteStatus, published: &Published, now: jiff::Timestamp) -> Health {
    let mut problems = published.problems.clone();
    for content in &status.apt {
        // Who renews a Valid-Until depends on what made the tree: publish signs local repos,
        // combined suites and imported trees again; a configured mirror is signed by its sync
        // (and a verbatim mirror keeps its upstream's Release, so only a newer upstream helps).
        let fix = match (content.kind, &content.origin.bundle) {
            (_, Some(_)) if content.origin.upstream.is_none() => {
                "import a newer bundle (or `airlock publish`, which signs imported trees again)"
            }
            (AptKind::Mirror, _) => {
                "`airlock sync` signs it again (check that airlock-sync.timer runs); a verbatim \
                 mirror's Valid-Until is its upstream's: sync once the upstream has a newer Release"
            }
            _ => "`airlock publish` signs it again (check that airlock-publish.timer runs)",
        };
        for suite in &content.suites {
            let (Some(until), Some(left), Some(level)) =
                (suite.valid_until, suite.seconds_left, validity(suite))
            else {
                continue;
            };
            let what = format!(
                "apt/{} {}: Valid-Until {}",
                content.name,
                suite.suite,
                super::when(Some(until))
            );
            match level {
                Level::Error => problems.push(Problem {
                    level,
                    what: format!("{what} has passed: apt refuses this suite"),
                    action: fix.to_string(),
                }),
                Level::Warning => problems.push(Problem {
                    level,
                    what: format!("{what} is in {}", super::human_duration(left)),
                    action: fix.to_string(),
                }),
                Level::Healthy => {}
            }
        }
    }
    match &status.verify {
        None => problems.push(Problem {
            level: Level::Warning,
            what: "no `airlock verify` run is on record".into(),
            action: "run `airlock verify` (airlock-verify.timer runs it hourly)".into(),
        }),
        Some(run) if !run.passed => {
            let areas: Vec<String> = run
                .failed_by_area()
                .iter()
                .map(|(area, n)| format!("{area} {n}"))
                .collect();
            problems.push(Problem {
                level: Level::Error,
                what: format!(
                    "the last verify ({}) failed: {}",
                    super::when(Some(run.at)),
                    areas.join(", ")
                ),
                action: "`airlock verify` lists each failed check; fix those, then run it again"
                    .into(),
            });
        }
        Some(run) if now.as_second() - run.at.as_second() > VERIFY_AGE => problems.push(Problem {
            level: Level::Warning,
            what: format!("the last verify ran on {}", super::when(Some(run.at))),
            action: "check that airlock-verify.timer runs, or run `airlock verify`".into(),
        }),
        Some(_) => {}
    }
    if let (Some(free), Some(total)) = (
        status.storage.disk_free_bytes,
        status.storage.disk_total_bytes,
    ) && let Some((expected, got, fatal)) = disk_room(published.estimate.as_ref(), free, total)
    {
        problems.push(Problem {
            level: if fatal { Level::Error } else { Level::Warning },
            what: format!("the data folder's disk has {got}; expected {expected}"),
            action: "`airlock gc` frees what nothing refers to; or give the data folder more room"
                .into(),
        });
    }
    if status.apt.is_empty() && status.images.is_none() && status.snaps.is_none() {
        problems.push(Problem {
            level: Level::Warning,
            what: "nothing is published yet".into(),
            action: "`airlock apt include` then `airlock publish`, `airlock sync`, or `airlock bundle import`"
                .into(),
        });
    }
    problems.sort_by_key(|p| std::cmp::Reverse(p.level));
    Health {
        level: problems.first().map_or(Level::Healthy, |p| p.level),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_a_publish_interval_or_half_the_validity() {
        let date: jiff::Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let week = date + jiff::SignedDuration::from_hours(7 * 24);
        assert_eq!(warning_window(Some(date), week), PUBLISH_INTERVAL);
        let minute = date + jiff::SignedDuration::from_secs(60);
        assert_eq!(warning_window(Some(date), minute), 30);
        assert_eq!(warning_window(None, minute), PUBLISH_INTERVAL);
    }
}
