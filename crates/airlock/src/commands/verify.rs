use airlock_core::report::Reporter;

use crate::cli::VerifyArgs;

/// Exit status 0 when every check passed, 1 when some failed, 2 when verify could not run.
pub fn run(
    config: &std::path::Path,
    args: VerifyArgs,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
    if !args.offline {
        eprintln!(
            "error: only `airlock verify --offline` exists yet (checks of a running server come next)"
        );
        std::process::exit(2);
    }
    let report = match super::open(config)
        .and_then(|site| Ok(airlock_core::verify::offline(&site, reporter)?))
    {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: verify could not run: {e:#}");
            std::process::exit(2);
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({"passed": report.passed(), "areas": report.areas, "failures": report.failures})
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
