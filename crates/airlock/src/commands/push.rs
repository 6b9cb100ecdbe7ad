use std::io::Write;

use airlock_core::config::StorageConfig;
use airlock_core::remote;
use airlock_core::report::Reporter;
use airlock_core::site::Site;
use airlock_core::storage::bucket::Holder;

use crate::cli::PushArgs;
use crate::printer::Printer;

pub fn run(
    site: &Site,
    args: PushArgs,
    reporter: &dyn Reporter,
    printer: Printer,
) -> anyhow::Result<()> {
    let StorageConfig::S3(storage) = &site.config.storage else {
        anyhow::bail!(
            "{}: [storage] is local, there is no bucket to push to (kind = \"s3\" and its endpoint, bucket and region: docs/operations.md)",
            site.config.path.display()
        );
    };
    let bucket = remote::open_bucket(storage)?;
    // Taken so that no local publish changes the trees while they are read.
    let _lock = site.lock(reporter)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(remote::push(
        site,
        &bucket,
        Holder::this_process("push"),
        reporter,
    ))?;
    if args.json {
        return printer.json(&report);
    }
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
    Ok(())
}
