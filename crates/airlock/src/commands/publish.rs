use std::io::Write;

use airlock_core::apt::combine;
use airlock_core::apt::publish::{self, PublishReport, SuiteStatus};
use airlock_core::bundle::renew;
use airlock_core::remote::PushReport;
use airlock_core::report::Reporter;
use airlock_core::site::Site;

use crate::cli::PublishArgs;
use crate::printer::Printer;

use super::push::{self, AutoPush};

/// `publish --json`: what each part of the publish did.
#[derive(serde::Serialize)]
struct Published {
    /// Imported mirrors signed again (air-gapped side).
    imported_mirrors: Vec<PublishReport>,
    repos: Vec<PublishReport>,
    /// Combined suites ([[apt.publish]]).
    combined: Vec<PublishReport>,
    /// Imported mirrors that could not be signed again, with why.
    failed: Vec<Failed>,
    /// The push to the bucket that followed; null when [storage] is local.
    push: Option<PushReport>,
}

#[derive(serde::Serialize)]
struct Failed {
    mirror: String,
    error: String,
}

pub fn run(
    site: &Site,
    args: PublishArgs,
    reporter: &dyn Reporter,
    printer: Printer,
) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    let auto = AutoPush::start(site, "publish", reporter)?;
    // In JSON mode the lines are kept back and the document printed at the end.
    let lines = printer.lines(args.json);
    let mut published = Published {
        imported_mirrors: Vec::new(),
        repos: Vec::new(),
        combined: Vec::new(),
        failed: Vec::new(),
        push: None,
    };
    // Names that are no repo here are imported mirrors: on the air-gapped side no sync renews
    // them. Renewed first, so that a broken repo does not let them expire.
    let all = args.repos.is_empty();
    let (repos, mirrors): (Vec<String>, Vec<String>) = args
        .repos
        .into_iter()
        .partition(|n| site.config.repo(n).is_some());
    let renewed = renew::renew_imported(site, (!all).then_some(&mirrors[..]), reporter, now)?;
    print_reports(&renewed.reports, lines)?;
    published.imported_mirrors = renewed.reports;
    // Told now, whatever happens to the repos below.
    for (name, e) in renewed.failed {
        let e = anyhow::Error::from(e).context(format!("cannot sign imported mirror {name} again"));
        reporter.warn(&format!("{e:#}"));
        published.failed.push(Failed {
            mirror: name,
            error: format!("{e:#}"),
        });
    }
    // An empty list of repos means every repo.
    if all || !repos.is_empty() {
        let reports = publish::publish(site, &repos, reporter, now)?;
        print_reports(&reports, lines)?;
        // Combined suites follow the repos they take from; all of them are checked for
        // renewal when everything is published (some take from mirrors only).
        let published_repos: Vec<String> = reports.iter().map(|r| r.repo.clone()).collect();
        let changed = (!all).then_some(published_repos.as_slice());
        let combined = combine::publish_combined(site, changed, reporter, now)?;
        print_reports(&combined, lines)?;
        published.repos = reports;
        published.combined = combined;
    }
    published.push = push::finish(auto, site, reporter, lines)?;
    if args.json {
        printer.json(&published)?;
    }
    let failed = published.failed.len();
    if failed > 0 {
        anyhow::bail!(
            "{failed} imported mirror(s) could not be signed again (see the warnings above)"
        );
    }
    Ok(())
}

pub fn print_reports(reports: &[PublishReport], printer: Printer) -> std::io::Result<()> {
    for report in reports {
        for suite in &report.suites {
            let status = match suite.status {
                SuiteStatus::Published => "published",
                SuiteStatus::Unchanged => "unchanged",
            };
            let until = suite
                .valid_until
                .map(|t| {
                    format!(
                        ", valid until {}",
                        airlock_core::apt::release::format_date(t)
                    )
                })
                .unwrap_or_default();
            writeln!(
                printer.status(),
                "{}/{}: {status} ({} packages{until})",
                report.repo,
                suite.suite,
                suite.packages
            )?;
        }
        if !report.written {
            writeln!(
                printer.status(),
                "{}: nothing changed, nothing written",
                report.repo
            )?;
        }
    }
    Ok(())
}
