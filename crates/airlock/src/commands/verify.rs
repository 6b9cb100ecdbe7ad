use airlock_core::report::Reporter;

use airlock_core::verify::Depth;
use airlock_core::verify::Report;

use crate::cli::VerifyArgs;

/// Exit status 0 when every check passed, 1 when some failed, 2 when verify could not run.
pub fn run(
    config: &std::path::Path,
    args: VerifyArgs,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
    let site = match super::open(config) {
        Ok(site) => site,
        Err(e) => {
            eprintln!("error: verify could not run: {e:#}");
            std::process::exit(2);
        }
    };
    let result: anyhow::Result<Report> = if args.offline {
        Ok(airlock_core::verify::offline(&site, reporter))
    } else {
        let base = args
            .url
            .clone()
            .unwrap_or_else(|| site.config.site.public_url.clone());
        let depth = Depth {
            full: args.full,
            sample: args.sample,
            horizon: jiff::SignedDuration::from_hours(24 * i64::from(args.horizon_days)),
        };
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(Into::into)
            .and_then(|rt| {
                rt.block_on(airlock_core::verify::online(
                    &site,
                    &base,
                    depth,
                    args.resolver,
                    reporter,
                ))
                .map_err(Into::into)
            })
    };
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: verify could not run: {e:#}");
            std::process::exit(2);
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({"passed": report.passed(), "areas": report.areas, "failures": report.failures, "warnings": report.warnings})
        );
    } else {
        for area in &report.areas {
            println!(
                "{:<24} {:>8} checked  {}",
                area.area,
                area.checked,
                if area.failed == 0 {
                    "ok".to_string()
                } else {
                    format!("{} FAILED", area.failed)
                }
            );
        }
        for w in &report.warnings {
            println!(
                "WARNING {}: {}\n  expected {}\n  got      {}",
                w.area, w.what, w.expected, w.got
            );
        }
        for f in &report.failures {
            println!(
                "FAILED {}: {}\n  expected {}\n  got      {}",
                f.area, f.what, f.expected, f.got
            );
        }
        println!(
            "{}",
            if report.passed() {
                "all checks passed".to_string()
            } else {
                format!("{} checks failed", report.failures.len())
            }
        );
    }
    if !report.passed() {
        std::process::exit(1);
    }
    Ok(())
}
