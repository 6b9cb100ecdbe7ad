use airlock_core::apt::publish::{self, PublishReport, SuiteStatus};
use airlock_core::report::Reporter;
use airlock_core::site::Site;

use crate::cli::PublishArgs;

pub fn run(site: &Site, args: PublishArgs, reporter: &dyn Reporter) -> anyhow::Result<()> {
    let reports = publish::publish(site, &args.repos, reporter, jiff::Timestamp::now())?;
    print_reports(&reports);
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
