use std::io::Write;

use airlock_core::apt::repo::{self, RemoveFilter, RepoState};
use airlock_core::report::Reporter;
use airlock_core::site::Site;

use crate::cli::AptCommand;
use crate::printer::Printer;

pub fn run(
    site: &Site,
    command: AptCommand,
    reporter: &dyn Reporter,
    verbose: bool,
    printer: Printer,
) -> anyhow::Result<()> {
    match command {
        AptCommand::Include {
            repo,
            suite,
            component,
            files,
        } => {
            let report = repo::include(site, &repo, &suite, &component, &files, reporter)?;
            for skipped in &report.skipped {
                reporter.warn(&format!("skipped {skipped}"));
            }
            if verbose {
                for added in &report.added {
                    writeln!(printer.status(), "added {added}")?;
                }
                for replaced in &report.replaced {
                    writeln!(printer.status(), "replaced {replaced}")?;
                }
            }
            writeln!(
                printer.status(),
                "{repo}/{suite}/{component}: {} added, {} replaced, {} already there, {} skipped",
                report.added.len(),
                report.replaced.len(),
                report.unchanged.len(),
                report.skipped.len()
            )?;
            if !report.added.is_empty() || !report.replaced.is_empty() {
                writeln!(
                    printer.status(),
                    "run `airlock publish` to make the changes visible to clients"
                )?;
            }
        }
        AptCommand::Remove {
            repo,
            suite,
            packages,
            version,
            architecture,
            component,
        } => {
            let filter = RemoveFilter {
                version,
                architecture,
                component,
            };
            let removed = repo::remove(site, &repo, &suite, &packages, &filter, reporter)?;
            for p in &removed {
                writeln!(
                    printer.status(),
                    "removed {} {} ({}) from {repo}/{suite}/{}",
                    p.package.name,
                    p.package.version,
                    p.package.architecture,
                    p.component
                )?;
            }
            writeln!(
                printer.status(),
                "run `airlock publish` to make the changes visible to clients"
            )?;
        }
        AptCommand::List { repo, suite, json } => {
            repo::configured_repo(site, &repo, suite.as_deref(), None)?;
            let state = RepoState::load(site, &repo)?;
            let packages: Vec<_> = state
                .packages
                .iter()
                .filter(|p| suite.as_ref().is_none_or(|s| *s == p.suite))
                .collect();
            if json {
                let rows: Vec<Row> = packages
                    .iter()
                    .map(|p| Row {
                        suite: &p.suite,
                        component: &p.component,
                        package: &p.package.name,
                        version: &p.package.version,
                        architecture: &p.package.architecture,
                        filename: &p.package.filename,
                        size: p.package.size,
                        sha256: p.package.sha256.to_hex(),
                    })
                    .collect();
                printer.json(&rows)?;
            } else {
                print_table(&packages, printer)?;
            }
        }
    }
    Ok(())
}

/// One package of `apt list --json`.
#[derive(serde::Serialize)]
struct Row<'p> {
    suite: &'p str,
    component: &'p str,
    package: &'p str,
    version: &'p str,
    architecture: &'p str,
    filename: &'p str,
    size: u64,
    sha256: String,
}

fn print_table(
    packages: &[&airlock_core::apt::repo::RepoPackage],
    printer: Printer,
) -> std::io::Result<()> {
    let header = ["SUITE", "COMPONENT", "PACKAGE", "VERSION", "ARCH", "SIZE"];
    let rows: Vec<[String; 6]> = packages
        .iter()
        .map(|p| {
            [
                p.suite.clone(),
                p.component.clone(),
                p.package.name.clone(),
                p.package.version.clone(),
                p.package.architecture.clone(),
                p.package.size.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == 5 {
                out.push_str(&format!("{cell:>w$}"));
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        writeln!(printer.output(), "{}", out.trim_end())
    };
    line(header)?;
    for row in &rows {
        line(row.each_ref().map(String::as_str))?;
    }
    Ok(())
}
