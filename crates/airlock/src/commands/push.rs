//! `airlock push`, and the same push made by the writing commands after their local publish
//! when `[storage]` is a bucket ([`AutoPush`]).

use std::io::Write;

use airlock_core::config::{S3Storage, StorageConfig};
use airlock_core::remote::{self, PushReport};
use airlock_core::report::Reporter;
use airlock_core::site::{CommandLock, Site};
use airlock_core::storage::bucket::{Bucket, Holder};

use crate::cli::PushArgs;
use crate::printer::Printer;

pub fn run(
    site: &Site,
    args: PushArgs,
    reporter: &dyn Reporter,
    printer: Printer,
) -> anyhow::Result<()> {
    let storage = bucket_storage(site, "push to")?;
    let bucket = remote::open_bucket(storage)?;
    // Taken so that no local publish changes the trees while they are read.
    let _lock = site.lock(reporter)?;
    let report = super::runtime()?.block_on(remote::push(
        site,
        &bucket,
        Holder::this_process("push"),
        reporter,
    ))?;
    if args.json {
        return printer.json(&report);
    }
    print(&bucket, &report, printer)
}

/// `airlock pull`: a lost writer's data folder rebuilt from its bucket.
pub fn pull(
    site: &Site,
    args: PushArgs,
    reporter: &dyn Reporter,
    printer: Printer,
) -> anyhow::Result<()> {
    let storage = bucket_storage(site, "pull from")?;
    let bucket = remote::open_bucket(storage)?;
    let pulled = super::runtime()?.block_on(remote::pull::fetch(site, &bucket))?;
    let report = remote::pull::install(site, pulled, reporter)?;
    if args.json {
        return printer.json(&report);
    }
    writeln!(
        printer.status(),
        "{}: generation {} pulled into {}: {} trees, {} state files, {} of {} blobs read back (the rest in the bucket only)",
        bucket.label(),
        report.generation,
        site.data_dir().display(),
        report.trees,
        report.state_files,
        report.blobs_read_back,
        report.blobs
    )?;
    Ok(())
}

/// The `[storage]` bucket, or the error saying there is none to `what`.
fn bucket_storage<'s>(site: &'s Site, what: &str) -> anyhow::Result<&'s S3Storage> {
    match &site.config.storage {
        StorageConfig::S3(storage) => Ok(storage),
        StorageConfig::Local => anyhow::bail!(
            "{}: [storage] is local, there is no bucket to {what} (kind = \"s3\" and its endpoint, bucket and region: docs/object-storage.md)",
            site.config.path.display()
        ),
    }
}

/// The push a writing command makes after its local publish when `[storage]` is a bucket:
/// the bucket opened (its credentials read) before the command changes anything, and the
/// site lock held from the publish to the end of the push.
pub struct AutoPush {
    bucket: Bucket,
    command: &'static str,
    _lock: CommandLock,
}

impl AutoPush {
    /// None when `[storage]` is local. Call before the command's first library call.
    pub fn start(
        site: &Site,
        command: &'static str,
        reporter: &dyn Reporter,
    ) -> anyhow::Result<Option<AutoPush>> {
        let StorageConfig::S3(storage) = &site.config.storage else {
            return Ok(None);
        };
        let bucket = remote::open_bucket(storage)?;
        let lock = site.lock_command(reporter)?;
        Ok(Some(AutoPush {
            bucket,
            command,
            _lock: lock,
        }))
    }
}

/// Ends the command's [`AutoPush`] when there is one: pushes what the site serves now, prints
/// its line (on `lines`), then lets the site lock go. The `push` of the command's report.
pub fn finish(
    auto: Option<AutoPush>,
    site: &Site,
    reporter: &dyn Reporter,
    lines: Printer,
) -> anyhow::Result<Option<PushReport>> {
    let Some(auto) = auto else {
        return Ok(None);
    };
    let report = super::runtime()?.block_on(remote::push_after_publish(
        site,
        &auto.bucket,
        Holder::this_process(auto.command),
        reporter,
    ))?;
    print(&auto.bucket, &report, lines)?;
    Ok(Some(report))
}

fn print(bucket: &Bucket, report: &PushReport, printer: Printer) -> anyhow::Result<()> {
    let mut out = printer.status();
    if report.switched {
        writeln!(
            out,
            "{}: generation {} published: {} trees, {} of {} blobs uploaded ({}), {} manifests",
            bucket.label(),
            report.generation,
            report.trees,
            report.blobs_uploaded,
            report.blobs,
            super::human_bytes(report.bytes_uploaded),
            report.manifests_uploaded
        )?;
    } else {
        writeln!(
            out,
            "{}: unchanged (generation {}, {} trees)",
            bucket.label(),
            report.generation,
            report.trees
        )?;
    }
    let Some(trim) = &report.trim else {
        return Ok(());
    };
    let files = |n: usize| format!("{n} file{}", if n == 1 { "" } else { "s" });
    if let Some(limit) = trim.limit.filter(|_| trim.dropped_now > 0) {
        writeln!(
            out,
            "{}: {} dropped from this disk after the push ({}); {} kept here ({} of at most {}), {} in the bucket only",
            bucket.label(),
            files(trim.dropped_now),
            super::human_bytes(trim.dropped_now_bytes),
            trim.kept,
            super::human_bytes(trim.kept_bytes),
            super::human_bytes(limit),
            trim.dropped
        )?;
    }
    if trim.read_back > 0 {
        writeln!(
            out,
            "{}: {} dropped earlier read back (keep_pushed is no longer set)",
            bucket.label(),
            files(trim.read_back)
        )?;
    }
    Ok(())
}
