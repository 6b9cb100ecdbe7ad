use std::io::Write;

use std::path::Path;

use airlock_core::bundle::manifest::{self, SignedManifest};
use airlock_core::bundle::{self, ExportOptions, ImportOptions};
use airlock_core::openpgp::Keyring;
use airlock_core::report::Reporter;
use airlock_core::site::Site;

use crate::cli::{BundleCommand, ExportArgs, ImportArgs, InspectArgs};
use crate::printer::Printer;
use airlock_core::util::human_bytes;

pub fn export(
    site: &Site,
    args: ExportArgs,
    reporter: &dyn Reporter,
    printer: Printer,
) -> anyhow::Result<()> {
    let options = ExportOptions {
        to: args.to,
        since: args.since,
        split: args.split,
        zstd: args.zstd,
        what: args.what,
        now: jiff::Timestamp::now(),
    };
    let report = bundle::export(site, &options, reporter)?;
    for label in &report.unpublished {
        reporter.warn(&format!("{label} is not published yet: not in the bundle"));
    }
    let m = &report.manifest;
    writeln!(
        printer.status(),
        "bundle {} written to {}",
        m.id,
        report.dir.display()
    )?;
    print_contents(m, &mut printer.status())?;
    let carried: Vec<_> = m.blobs.iter().filter(|b| b.volume.is_some()).collect();
    let bytes: u64 = carried.iter().map(|b| b.size).sum();
    let on_top = match &m.base {
        Some(base) => format!("on top of {}", base.id),
        None => "full".into(),
    };
    writeln!(
        printer.status(),
        "bundle {}: {} blobs ({}) in {} volume(s), {on_top}",
        m.id,
        carried.len(),
        human_bytes(bytes),
        m.volumes.len()
    )?;
    Ok(())
}

pub fn import(
    site: &Site,
    args: ImportArgs,
    reporter: &dyn Reporter,
    printer: Printer,
) -> anyhow::Result<()> {
    let options = ImportOptions {
        dir: args.bundle,
        keyrings: args.keyring,
        now: jiff::Timestamp::now(),
    };
    let report = bundle::import(site, &options, reporter)?;
    writeln!(
        printer.status(),
        "bundle {} signed by {}",
        report.id,
        report.signer
    )?;
    for (label, files) in &report.contents {
        writeln!(printer.status(), "  {label}: switched ({files} files)")?;
    }
    for label in &report.unconfigured {
        reporter.warn(&format!(
            "{label} is served, but this site's airlock.toml does not configure it: add the same table as on the exporting site so that publish and verify know it"
        ));
    }
    writeln!(
        printer.status(),
        "imported {} new blobs ({}); {} were already here",
        report.new_blobs,
        human_bytes(report.new_bytes),
        report.present_blobs
    )?;
    Ok(())
}

pub fn run(config: &Path, command: BundleCommand, printer: Printer) -> anyhow::Result<()> {
    match command {
        BundleCommand::Inspect(args) => inspect(config, args, printer),
    }
}

fn inspect(config: &Path, args: InspectArgs, printer: Printer) -> anyhow::Result<()> {
    // A config is optional here: inspecting a bundle needs no site.
    let mut keyrings = if config.exists() {
        Site::open(config)?.config.import.trusted_keys
    } else {
        Vec::new()
    };
    keyrings.extend(args.keyring);
    let keyring = if keyrings.is_empty() {
        None
    } else {
        Some(Keyring::load(&keyrings)?)
    };
    let SignedManifest {
        manifest: m,
        signer,
        ..
    } = manifest::read(&args.bundle, keyring.as_ref())?;
    writeln!(
        printer.output(),
        "bundle {} (format {}), created {}",
        m.id,
        m.format,
        m.created
    )?;
    let trust = match signer {
        Some(Ok(signer)) if signer != m.exporter.fingerprint => {
            format!("signed by {signer}, not by the exporter it names: import refuses it")
        }
        Some(Ok(signer)) => format!("signature good, by trusted key {signer}"),
        Some(Err(bad)) => format!("NOT trusted here: {}", bad.reason),
        None => "signature not checked: no [import] trusted_keys and no --keyring".into(),
    };
    writeln!(
        printer.output(),
        "exported by {} ({}): {trust}",
        m.exporter.url,
        m.exporter.fingerprint
    )?;
    match &m.base {
        Some(base) => writeln!(printer.output(), "adds to bundle {}", base.id)?,
        None => writeln!(printer.output(), "full bundle")?,
    }
    print_contents(&m, &mut printer.output())?;
    let dir = manifest::manifest_path(&args.bundle)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for volume in &m.volumes {
        let on_disk = std::fs::metadata(dir.join(&volume.name)).map(|md| md.len());
        let state = match on_disk {
            Ok(size) if size == volume.size => "present".to_string(),
            Ok(size) => format!("present but {size} bytes: damaged or incomplete"),
            Err(_) => "missing".into(),
        };
        writeln!(
            printer.output(),
            "  {}: {} blobs, {}, {state}",
            volume.name,
            volume.blobs,
            human_bytes(volume.size)
        )?;
    }
    Ok(())
}

fn print_contents(
    m: &airlock_core::bundle::BundleManifest,
    out: &mut impl Write,
) -> std::io::Result<()> {
    for content in &m.contents {
        writeln!(
            out,
            "  {:<20} {:>7} files {:>10}   new here: {} files, {}",
            content.label(),
            content.files,
            human_bytes(content.bytes),
            content.new_files,
            human_bytes(content.new_bytes)
        )?;
    }
    Ok(())
}
