use airlock_core::apt::combine;
use airlock_core::apt::publish::{self, PublishReport, SuiteStatus};
use airlock_core::report::Reporter;
use airlock_core::site::Site;

use crate::cli::PublishArgs;

pub fn run(site: &Site, args: PublishArgs, reporter: &dyn Reporter) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    let reports = publish::publish(site, &args.repos, reporter, now)?;
    print_reports(&reports);
    // Combined suites follow the repos they take from.
    let published: Vec<String> = reports.iter().map(|r| r.repo.clone()).collect();
    let combined = combine::publish_combined(site, Some(&published), reporter, now)?;
    print_reports(&combined);
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
