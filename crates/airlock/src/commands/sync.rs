use std::io::Write;

use std::sync::Arc;

use airlock_core::apt::closure::{Explanation, Outcome, Reason, Rejection};
use airlock_core::apt::combine;
use airlock_core::apt::mirror::{self, MirrorReport, SyncOptions};
use airlock_core::remote::PushReport;
use airlock_core::report::Reporter;
use airlock_core::simplestreams::mirror::{self as images, ImagesReport};
use airlock_core::site::Site;
use airlock_core::util::human_bytes;

use crate::cli::SyncArgs;
use crate::printer::Printer;

use super::push::{self, AutoPush};

/// `sync --json`: what each mirror's sync did, the combined suites that followed, the images.
#[derive(serde::Serialize, Default)]
struct Synced {
    mirrors: Vec<MirrorReport>,
    combined: Vec<airlock_core::apt::publish::PublishReport>,
    /// Absent when the image stream was not synced.
    images: Option<ImagesReport>,
    /// The push to the bucket that followed; null when [storage] is local.
    push: Option<PushReport>,
}

pub fn run(
    site: &Site,
    args: SyncArgs,
    reporter: Arc<dyn Reporter>,
    verbose: bool,
    printer: Printer,
) -> anyhow::Result<()> {
    let runtime = super::runtime()?;
    let options = SyncOptions {
        jobs: args.jobs,
        now: jiff::Timestamp::now(),
        explain: args.explain.clone(),
    };
    let now = options.now;
    let auto = AutoPush::start(site, "sync", &*reporter)?;
    // In JSON mode the lines are kept back and the document printed at the end.
    let lines = printer.lines(args.json);
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
            // In JSON mode the explanation is in each mirror report's `explanation`.
            if let Some(package) = args.explain.as_ref().filter(|_| !args.json) {
                print_explanation(report, package, printer)?;
            }
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
    synced.push = push::finish(auto, site, &*reporter, lines)?;
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
    for resolved in &report.virtuals {
        writeln!(
            printer.status(),
            "{name}: {} -> {}",
            resolved.name,
            resolved.providers.join(", ")
        )?;
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

/// `sync --explain PACKAGE`: the chain that brought PACKAGE into one mirror, or the groups
/// that listed it and took something else.
fn print_explanation(
    report: &MirrorReport,
    package: &str,
    printer: Printer,
) -> std::io::Result<()> {
    let mut out = printer.output();
    let name = &report.name;
    let Some((arch, explanation)) = &report.explanation else {
        writeln!(
            out,
            "{name}: {package}: no selection (mirrors every package)"
        )?;
        return Ok(());
    };
    let Explanation {
        chain, passed_over, ..
    } = explanation;
    if chain.is_empty() {
        writeln!(out, "{name}: {package} is not in the mirror ({arch})")?;
        if passed_over.is_empty() {
            writeln!(out, "  no dependency of a mirrored package lists it")?;
        }
        for (d, outcome) in passed_over {
            let why = match outcome {
                Outcome::MetBy(by) => format!("already satisfied by {by}"),
                Outcome::Chose(other) => format!("{other} was taken"),
                Outcome::Rejected(r) => format!("not installable: {}", rejection(r)),
            };
            writeln!(
                out,
                "  {} {} {}: {}: {why}",
                d.package, d.version, d.field, d.clause
            )?;
        }
        return Ok(());
    }
    writeln!(out, "{name}: {package} is in the mirror ({arch}):")?;
    for (what, reason) in chain {
        match reason {
            Reason::Named { pattern } if pattern == what => {
                writeln!(out, "  {what}: named in packages")?
            }
            Reason::Named { pattern } => {
                writeln!(out, "  {what}: matches {pattern:?} of packages")?
            }
            Reason::Provides { name } => {
                writeln!(out, "  {what}: provides {name}, named in packages")?
            }
            Reason::Dependency(d) => {
                writeln!(
                    out,
                    "  {what}: {} {} {}: {}",
                    d.package, d.version, d.field, d.clause
                )?;
                for (alternative, why) in &d.passed {
                    writeln!(out, "    not {alternative}: {}", rejection(why))?;
                }
            }
        }
    }
    Ok(())
}

fn rejection(r: &Rejection) -> String {
    match r {
        Rejection::Missing => "no package of the mirror's suites satisfies it".into(),
        Rejection::Conflicts(with) => format!("it conflicts with {with}, chosen before"),
        Rejection::BrokenBy(by) => format!("{by}, chosen before, conflicts with it"),
        Rejection::Unsatisfiable(relation) => {
            format!("its dependency {relation} cannot be satisfied")
        }
    }
}
