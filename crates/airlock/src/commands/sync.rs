use std::io::Write;

use std::sync::Arc;

use airlock_core::apt::combine;
use airlock_core::apt::mirror::{self, MirrorReport, SyncOptions};
use airlock_core::report::Reporter;
use airlock_core::simplestreams::mirror::{self as images, ImagesReport};
use airlock_core::site::Site;
use airlock_core::util::human_bytes;

use crate::cli::SyncArgs;
use crate::printer::Printer;

/// `sync --json`: what each mirror's sync did, the combined suites that followed, the images.
#[derive(serde::Serialize, Default)]
struct Synced {
    mirrors: Vec<MirrorReport>,
    combined: Vec<airlock_core::apt::publish::PublishReport>,
    /// Absent when the image stream was not synced.
    images: Option<ImagesReport>,
}

pub fn run(
    site: &Site,
    args: SyncArgs,
    reporter: Arc<dyn Reporter>,
    verbose: bool,
    printer: Printer,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let options = SyncOptions {
        jobs: args.jobs,
        now: jiff::Timestamp::now(),
    };
    let now = options.now;
    // In JSON mode the lines are kept back and the document printed at the end.
    let lines = if args.json {
        Printer::new(true)
    } else {
        printer
    };
    let mut synced = Synced::default();
    // `images` names the boot-image stream; every other name an apt mirror.
    let images = site.config.images.is_some()
        && (args.mirrors.is_empty() || args.mirrors.iter().any(|m| m == IMAGES));
    let mirrors: Vec<String> = args
        .mirrors
        .iter()
        .filter(|m| *m != IMAGES)
        .cloned()
        .collect();
    if args.mirrors.is_empty() || !mirrors.is_empty() {
        let reports = runtime.block_on(mirror::sync(site, &mirrors, options, reporter.clone()))?;
        for report in &reports {
            print_report(report, &*reporter, verbose, lines)?;
        }
        // Combined suites follow the mirrors they take from.
        let names: Vec<String> = reports.iter().map(|r| r.name.clone()).collect();
        let combined = combine::publish_combined(site, Some(&names), &*reporter, now)?;
        super::publish::print_reports(&combined, lines)?;
        synced.mirrors = reports;
        synced.combined = combined;
    } else if !images {
        anyhow::bail!(
            "no [images] section in {}: nothing to sync",
            site.config.path.display()
        );
    }
    if images {
        let report = runtime.block_on(images::sync(site, args.jobs, now, reporter.clone()))?;
        print_images(&report, verbose, lines)?;
        synced.images = Some(report);
    }
    if args.json {
        printer.json(&synced)?;
    }
    Ok(())
}

const IMAGES: &str = "images";

pub(super) fn print_images(
    report: &ImagesReport,
    verbose: bool,
    printer: Printer,
) -> std::io::Result<()> {
    if verbose {
        writeln!(
            printer.status(),
            "images: signature by {} verified",
            report.signer
        )?;
    }
    if report.unchanged {
        writeln!(printer.status(), "images: upstream unchanged")?;
        return Ok(());
    }
    writeln!(
        printer.status(),
        "images: published {} products ({} bootloaders), {} files; {} downloaded ({}), {} already stored",
        report.products,
        report.bootloaders,
        report.files,
        report.downloaded_files,
        human_bytes(report.downloaded_bytes),
        report.reused_files
    )?;
    Ok(())
}

pub(super) fn print_report(
    report: &MirrorReport,
    reporter: &dyn Reporter,
    verbose: bool,
    printer: Printer,
) -> std::io::Result<()> {
    let name = &report.name;
    if verbose {
        for signer in &report.signers {
            writeln!(
                printer.status(),
                "{name}/{}: signature by {} verified",
                signer.suite,
                signer.fingerprint
            )?;
        }
    }
    for pattern in &report.unmatched {
        reporter.warn(&format!("{name}: no package matches {pattern:?}"));
    }
    for u in &report.unsatisfied {
        reporter.warn(&format!(
            "{name}: {} {} {}: {} is not satisfiable from the mirror",
            u.package, u.version, u.field, u.relation
        ));
    }
    for source in &report.missing_sources {
        reporter.warn(&format!(
            "{name}: source package {source} of mirrored binaries is in no Sources index"
        ));
    }
    let suites: Vec<String> = report
        .suites
        .iter()
        .map(|s| format!("{} {}", s.suite, s.packages))
        .collect();
    if report.unchanged {
        writeln!(
            printer.status(),
            "{name}: upstream unchanged ({} packages)",
            suites.join(", ")
        )?;
        return Ok(());
    }
    let sources = if report.sources > 0 {
        format!(" and {} source packages", report.sources)
    } else {
        String::new()
    };
    writeln!(
        printer.status(),
        "{name}: published {} packages ({}){sources}; {} files downloaded ({}), {} already stored; {} unsatisfied dependencies",
        report.suites.iter().map(|s| s.packages).sum::<usize>(),
        suites.join(", "),
        report.downloaded_files,
        human_bytes(report.downloaded_bytes),
        report.reused_files,
        report.unsatisfied.len()
    )?;
    Ok(())
}
