//! One function per command: arguments in, one library call, output out.

mod apt;
mod bundle;
mod demo;
mod dns;
mod generate;
mod images;
mod init;
mod key;
mod maas;
mod publish;
mod push;
mod serve;
mod snap;
mod status;
mod sync;
mod tls;
mod verify;

use std::io::Write;

use airlock_core::site::Site;
use airlock_core::util::human_bytes;

use crate::cli::{Cli, Command};
use crate::printer::Printer;
use crate::reporters::TerminalReporter;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let reporter = std::sync::Arc::new(TerminalReporter::new(cli.quiet));
    let printer = Printer::new(cli.quiet);
    match cli.command {
        Command::Init(args) => init::run(args, printer),
        Command::Demo(args) => demo::run(args, reporter, printer),
        Command::Key(command) => key::run(&open(&cli.config)?, command, printer),
        Command::Apt(command) => apt::run(
            &open(&cli.config)?,
            command,
            &*reporter,
            cli.verbose > 0,
            printer,
        ),
        Command::Publish(args) => publish::run(&open(&cli.config)?, args, &*reporter, printer),
        Command::Sync(args) => sync::run(
            &open(&cli.config)?,
            args,
            reporter,
            cli.verbose > 0,
            printer,
        ),
        Command::Serve(args) => serve::run(&open(&cli.config)?, args),
        Command::Images(command) => images::run(&open(&cli.config)?, command, &*reporter, printer),
        Command::Snap(command) => snap::run(&open(&cli.config)?, command, reporter, printer),
        Command::Verify(args) => verify::run(&cli.config, args, &*reporter, printer),
        Command::Tls(command) => tls::run(&open(&cli.config)?, command, printer),
        Command::Maas(command) => maas::run(&open(&cli.config)?, command, printer),
        Command::Dns(command) => dns::run(&open(&cli.config)?, command, printer),
        Command::Status(args) => status::run(&open(&cli.config)?, args, printer),
        Command::Export(args) => bundle::export(&open(&cli.config)?, args, &*reporter, printer),
        Command::Import(args) => bundle::import(&open(&cli.config)?, args, &*reporter, printer),
        Command::Bundle(command) => bundle::run(&cli.config, command, printer),
        Command::Generate(args) => generate::run(&args.dir),
        Command::Gc(args) => gc(&open(&cli.config)?, args, &*reporter, printer),
        Command::Backup(args) => backup(&open(&cli.config)?, args, &*reporter, printer),
        Command::Push(args) => push::run(&open(&cli.config)?, args, &*reporter, printer),
    }
}

fn open(config: &std::path::Path) -> anyhow::Result<Site> {
    Ok(Site::open(config)?)
}

fn gc(
    site: &Site,
    args: crate::cli::GcArgs,
    reporter: &dyn airlock_core::report::Reporter,
    printer: Printer,
) -> anyhow::Result<()> {
    let report = airlock_core::gc::collect(site, args.dry_run, reporter)?;
    if args.json {
        return printer.json(&report);
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    writeln!(
        printer.status(),
        "{verb} {} files no longer referenced ({}); kept {} referenced, and {} unreferenced stored within the grace period ({})",
        report.removed,
        human_bytes(report.removed_bytes),
        report.referenced,
        report.young,
        human_bytes(report.young_bytes)
    )?;
    Ok(())
}

fn backup(
    site: &Site,
    args: crate::cli::BackupArgs,
    reporter: &dyn airlock_core::report::Reporter,
    printer: Printer,
) -> anyhow::Result<()> {
    let report = airlock_core::backup::backup(site, &args.dest, reporter)?;
    if args.json {
        return printer.json(&report);
    }
    writeln!(
        printer.status(),
        "backed up {} to {}: {} folders, {} files ({}), {} hard links, {} symlinks",
        site.data_dir().display(),
        report.dest.display(),
        report.folders,
        report.files,
        human_bytes(report.bytes),
        report.hard_links,
        report.symlinks
    )?;
    Ok(())
}
