use airlock_core::apt::combine;
use airlock_core::apt::publish::{self, PublishReport, SuiteStatus};
use airlock_core::bundle::refresh;
use airlock_core::report::Reporter;
use airlock_core::site::Site;

use crate::cli::PublishArgs;

pub fn run(site: &Site, args: PublishArgs, reporter: &dyn Reporter) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    // Imported mirrors are named too: on the air-gapped side, publish keeps them valid.
    let imported = refresh::imported_mirrors(site)?;
    let all = args.repos.is_empty();
    let (mirrors, repos): (Vec<String>, Vec<String>) =
        args.repos.into_iter().partition(|n| imported.contains(n));
    // An empty list of repos means every repo.
    if all || !repos.is_empty() {
        let reports = publish::publish(site, &repos, reporter, now)?;
        print_reports(&reports);
        // Combined suites follow the repos they take from; all of them are due for renewal
        // checks when everything is published (some take from mirrors only).
        let published: Vec<String> = reports.iter().map(|r| r.repo.clone()).collect();
        let changed = (!all).then_some(published.as_slice());
        let combined = combine::publish_combined(site, changed, reporter, now)?;
        print_reports(&combined);
    }
    let mirrors = if all { imported } else { mirrors };
    print_reports(&refresh::refresh_imported(site, &mirrors, reporter, now)?);
    Ok(())
}

pub fn print_reports(reports: &[PublishReport]) {
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
            println!(
                "{}/{}: {status} ({} packages{until})",
                report.repo, suite.suite, suite.packages
            );
        }
        if !report.written {
            println!("{}: nothing changed, nothing written", report.repo);
        }
    }
}
