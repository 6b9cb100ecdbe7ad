//! Imported mirrors, re-signed by this site, kept valid between bundles. On the air-gapped side
//! no sync renews them, and a Release past its Valid-Until stops every install there; local
//! repos and combined suites are renewed by their own publish, these by `airlock publish` too.

use super::BundleError;
use super::import::{IMPORTED_NOTE, RESIGNED_NOTE};
use super::resign::{SignedRelease, suites};
use crate::apt::publish::{PublishReport, SuiteReport, SuiteStatus};
use crate::apt::release::renewal_due;
use crate::openpgp::SiteKey;
use crate::report::Reporter;
use crate::site::Site;
use crate::storage::TreeSet;

/// What a renewal did: a report per mirror, and the mirrors it could not renew (the others
/// were renewed all the same).
#[derive(Debug, Default)]
pub struct Renewed {
    pub reports: Vec<PublishReport>,
    pub failed: Vec<(String, BundleError)>,
}

/// Signs again every suite of the imported mirrors (the named ones, or all) whose Release is
/// half way to its Valid-Until, like a sync does on the connected side: valid for the
/// mirror's `valid_for` when this config names it, else for as long as before. The indices
/// and pool stay as they are. Only mirrors an import re-signed here are renewed: a verbatim
/// one carries its upstream's signature, which this site cannot renew.
pub fn renew_imported(
    site: &Site,
    names: Option<&[String]>,
    reporter: &dyn Reporter,
    now: jiff::Timestamp,
) -> Result<Renewed, BundleError> {
    if names.is_some_and(<[String]>::is_empty) {
        return Ok(Renewed::default());
    }
    let _lock = site.lock(reporter)?;
    let mut renewed = Renewed::default();
    let (imported, unreadable) = imported_mirrors(site);
    renewed.failed.extend(unreadable);
    let chosen: Vec<String> = match names {
        None => imported,
        Some(names) => {
            if let Some(unknown) = names.iter().find(|n| !imported.contains(n)) {
                let list = |names: Vec<String>| match names.join(", ") {
                    none if none.is_empty() => "none".to_string(),
                    names => names,
                };
                let repos = site.config.apt.repos.iter().map(|r| r.name.to_string());
                return Err(BundleError::NotImported {
                    name: unknown.clone(),
                    config: site.config.path.clone(),
                    repos: list(repos.collect()),
                    imported: list(imported),
                });
            }
            names.to_vec()
        }
    };
    if chosen.is_empty() {
        return Ok(renewed);
    }
    let key = site.signing_key()?;
    for name in chosen {
        match renew(site, &name, &key, now) {
            // A verbatim mirror has no suite this site signs.
            Ok(report) if report.suites.is_empty() => {}
            Ok(report) => renewed.reports.push(report),
            Err(e) => renewed.failed.push((name, e)),
        }
    }
    Ok(renewed)
}

/// The apt trees an import made that no publish of this site maintains: mirrors, whether this
/// config names them or not (only their manifests' notes are read); and the trees whose notes
/// could not be read, each on its own.
fn imported_mirrors(site: &Site) -> (Vec<String>, Vec<(String, BundleError)>) {
    let apt = &site.config.apt;
    let (mut names, mut unreadable) = (Vec::new(), Vec::new());
    let all = match TreeSet::apt_names(site.data_dir()) {
        Ok(all) => all,
        Err(e) => return (names, vec![("trees/apt".into(), e.into())]),
    };
    for name in all {
        if site.config.repo(&name).is_some() || apt.publish.iter().any(|p| p.name.as_str() == name)
        {
            continue;
        }
        match TreeSet::apt(site.data_dir(), &name).current_notes() {
            Ok(notes) if notes.iter().flatten().any(|(k, _)| k == IMPORTED_NOTE) => {
                names.push(name)
            }
            Ok(_) => {}
            Err(e) => unreadable.push((name, e.into())),
        }
    }
    (names, unreadable)
}

fn renew(
    site: &Site,
    name: &str,
    key: &SiteKey,
    now: jiff::Timestamp,
) -> Result<PublishReport, BundleError> {
    let trees = TreeSet::apt(site.data_dir(), name);
    let previous = trees.current()?.unwrap_or_default();
    let store = site.store();
    let staging = store.staging();
    let valid_for = site
        .config
        .mirror(name)
        .and_then(|m| m.valid_for)
        .map(|p| p.0);
    // What stays as it is; files retired by earlier trees leave once their grace is over.
    let mut manifest = previous.clone();
    manifest.entries.retain(|_, e| e.retired.is_none());
    let grace = site.config.site.grace.0.as_secs() as i64;
    crate::apt::publish::retain_superseded(&previous, &mut manifest, now, grace);
    let mut report = PublishReport {
        repo: name.to_string(),
        suites: Vec::new(),
        written: false,
    };
    // Imports before the note existed: a Release naming this key was signed here.
    let resigned = previous.note(RESIGNED_NOTE).next().is_some();
    let fingerprint = key.fingerprint();
    for suite in suites(&previous) {
        if !previous
            .entries
            .contains_key(&format!("dists/{suite}/Release"))
        {
            continue;
        }
        let release = SignedRelease::read(name, &previous, &store, &suite, valid_for)?;
        let ours = resigned
            || release
                .text
                .lines()
                .any(|l| l.strip_prefix("Signed-By: ") == Some(fingerprint.as_str()));
        if !ours {
            continue;
        }
        // Half of the validity it was given gone, whatever the config says now.
        let until = release.parsed.valid_until;
        let due = match (release.parsed.date, until) {
            (Some(date), Some(until)) => {
                renewal_due(date.as_second(), until.as_second() - date.as_second(), now)
            }
            _ => false,
        };
        let (status, valid_until) = if due {
            report.written = true;
            (
                SuiteStatus::Published,
                release.resign(&mut manifest, &staging, key, now)?,
            )
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
    } else {
        trees.tidy(&previous)?;
    }
    Ok(report)
}
