//! Imported mirrors, re-signed by this site, kept valid between bundles. On the air-gapped side
//! no sync renews them, and a Release past its Valid-Until stops every install there; local
//! repos and combined suites are renewed by their own publish, these by `airlock publish` too.

use super::BundleError;
use super::import::IMPORTED_NOTE;
use super::resign::{SignedRelease, suites};
use crate::apt::publish::{PublishReport, SuiteReport, SuiteStatus};
use crate::report::Reporter;
use crate::site::Site;
use crate::storage::{Manifest, TreeSet};

/// The apt trees an import made that no publish of this site maintains: mirrors, whether this
/// config names them or not.
pub fn imported_mirrors(site: &Site) -> Result<Vec<String>, BundleError> {
    let apt = &site.config.apt;
    let mut names = Vec::new();
    let root = site.data_dir().join("trees/apt");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Ok(names);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let published_here = apt.repos.iter().any(|r| r.name.as_str() == name)
            || apt.publish.iter().any(|p| p.name.as_str() == name);
        if !published_here && trees(site, &name).current()?.is_some_and(|t| imported(&t)) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn trees(site: &Site, name: &str) -> TreeSet {
    TreeSet::new(site.data_dir(), "apt", name).with_shared(&["pool"])
}

fn imported(tree: &Manifest) -> bool {
    tree.note(IMPORTED_NOTE).next().is_some()
}

/// Signs again every suite of the named imported mirrors (from [`imported_mirrors`]) whose
/// Release this site signed and that is half way to its Valid-Until, like a sync does on
/// the connected side: valid for the mirror's `valid_for`, else for as long as before. The
/// indices and pool stay as they are.
pub fn refresh_imported(
    site: &Site,
    names: &[String],
    reporter: &dyn Reporter,
    now: jiff::Timestamp,
) -> Result<Vec<PublishReport>, BundleError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let _lock = site.lock(reporter)?;
    let key = site.signing_key()?;
    let fingerprint = key.fingerprint();
    let store = site.store();
    let mut reports = Vec::new();
    for name in names {
        let trees = trees(site, name);
        let Some(previous) = trees.current()?.filter(imported) else {
            continue;
        };
        let valid_for = site
            .config
            .mirror(name)
            .and_then(|m| m.valid_for)
            .map(|p| p.0);
        // Files retired by earlier trees leave once their grace period is over, as in any
        // publish.
        let mut manifest = previous.clone();
        manifest.entries.retain(|_, e| e.retired.is_none());
        let grace = site.config.site.grace.0.as_secs() as i64;
        crate::apt::publish::retain_superseded(&previous, &mut manifest, now, grace);
        let staging = store.staging();
        let mut report = PublishReport {
            repo: name.clone(),
            suites: Vec::new(),
            written: false,
        };
        for suite in suites(&previous) {
            let release = SignedRelease::read(name, &previous, &store, &suite, valid_for)?;
            let ours = release
                .text
                .lines()
                .any(|l| l.strip_prefix("Signed-By: ") == Some(fingerprint.as_str()));
            // Half of the validity it was given gone, whatever the config says now.
            let until = release.parsed.valid_until;
            let due = match (release.parsed.date, until) {
                (Some(date), Some(until)) => now >= date + until.duration_since(date) / 2,
                _ => false,
            };
            let (status, valid_until) = if ours && due {
                report.written = true;
                let until = release.resign(&mut manifest, &staging, &key, now)?;
                (SuiteStatus::Published, until)
            } else {
                (SuiteStatus::Unchanged, until)
            };
            report.suites.push(SuiteReport {
                packages: crate::apt::mirror::published_packages(&previous, &suite),
                suite,
                status,
                valid_until,
            });
        }
        if report.written {
            trees.publish(&store, staging, &manifest, &previous)?;
        }
        reports.push(report);
    }
    Ok(reports)
}
