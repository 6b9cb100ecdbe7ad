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
use std::sync::Arc;

use airlock_core::config::StorageConfig;
use airlock_core::remote;
use airlock_core::site::Site;
use airlock_core::storage::bucket::Holder;
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
        Command::Pull(args) => push::pull(&open(&cli.config)?, args, &*reporter, printer),
    }
}

/// The site; a writer with a bucket reads the blobs it dropped after a push back from there.
fn open(config: &std::path::Path) -> anyhow::Result<Site> {
    let site = Site::open(config)?;
    Ok(match &site.config.storage {
        StorageConfig::S3(storage) => {
            let source = Arc::new(airlock_core::remote::ReadBack::new(storage));
            site.with_blob_source(source)
        }
        StorageConfig::Local => site,
    })
}

fn gc(
    site: &Site,
    args: crate::cli::GcArgs,
    reporter: &dyn airlock_core::report::Reporter,
    printer: Printer,
) -> anyhow::Result<()> {
    // The bucket's settings and credentials checked before anything is removed.
    let bucket = match &site.config.storage {
        StorageConfig::S3(storage) => Some(remote::open_bucket(storage)?),
        StorageConfig::Local => None,
    };
    let local = airlock_core::gc::collect(site, args.dry_run, reporter)?;
    let bucket = match bucket {
        Some(bucket) => {
            let runtime = runtime()?;
            let report = runtime.block_on(remote::gc(
                &bucket,
                site.config.site.grace.0,
                args.dry_run,
                Holder::this_process("gc"),
                reporter,
            ))?;
            Some((bucket.label().to_string(), report))
        }
        None => None,
    };
    if args.json {
        return printer.json(&GcOutput {
            local: &local,
            bucket: bucket.as_ref().map(|(_, report)| report),
        });
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut out = printer.status();
    writeln!(
        out,
        "{verb} {} files no longer referenced ({}); kept {} referenced, and {} unreferenced stored within the grace period ({})",
        local.removed,
        human_bytes(local.removed_bytes),
        local.referenced,
        local.young,
        human_bytes(local.young_bytes)
    )?;
    let Some((label, report)) = bucket else {
        return Ok(());
    };
    match report.generation {
        None => writeln!(out, "{label}: nothing pushed yet, nothing removed")?,
        Some(generation) => writeln!(
            out,
            "{label}: {verb} {} blobs and {} manifests no generation in use names ({}); kept {} blobs and {} manifests named by generation {generation} and {} retired generations, and {} objects written within the grace period ({})",
            report.removed_blobs,
            report.removed_manifests,
            human_bytes(report.removed_bytes),
            report.referenced_blobs,
            report.referenced_manifests,
            report.generations_kept - 1,
            report.young,
            human_bytes(report.young_bytes)
        )?,
    }
    Ok(())
}

/// `airlock gc --json`: the local fields as they always were, and the bucket's beside them.
#[derive(serde::Serialize)]
struct GcOutput<'a> {
    #[serde(flatten)]
    local: &'a airlock_core::gc::GcReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    bucket: Option<&'a remote::BucketGcReport>,
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

/// The runtime of a command's async library calls (downloads, the bucket, checks).
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
