use std::io::Write;

use std::path::Path;

use airlock_core::bundle::carry::{self, Carry};
use airlock_core::bundle::manifest::{self, SignedManifest};
use airlock_core::bundle::{self, ExportOptions, ImportOptions};
use airlock_core::openpgp::Keyring;
use airlock_core::report::Reporter;
use airlock_core::site::Site;

use crate::cli::{BundleCommand, ExportArgs, ImportArgs, InspectArgs};
use crate::printer::Printer;
use airlock_core::util::human_bytes;

use super::push::{self, AutoPush};

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
        // The command line first, then [export].
        carry: match (
            args.no_airlock || !site.config.export.carry_airlock,
            args.airlock_deb
                .or_else(|| site.config.export.airlock_deb.clone()),
        ) {
            (true, _) => Carry::Nothing,
            (false, Some(deb)) => Carry::Deb(deb),
            (false, None) => Carry::Auto,
        },
    };
    let report = bundle::export(site, &options, reporter)?;
    for label in &report.unpublished {
        reporter.warn(&format!("{label} is not published yet: not in the bundle"));
    }
    if args.json {
        return printer.json(&report);
    }
    let m = &report.manifest;
    writeln!(
        printer.status(),
        "bundle {} written to {}",
        m.id,
        report.dir.display()
    )?;
    print_contents(m, &mut printer.status())?;
    if let (Some(airlock), Some(why)) = (&m.airlock, &report.airlock_source) {
        writeln!(
            printer.status(),
            "  carries airlock {} ({}): {why}",
            airlock.version,
            airlock.file
        )?;
    }
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

/// `import --json`: the library's report and the push that followed.
#[derive(serde::Serialize)]
struct Imported<'a> {
    #[serde(flatten)]
    report: &'a bundle::ImportReport,
    /// Null when [storage] is local.
    push: Option<airlock_core::remote::PushReport>,
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
    let auto = AutoPush::start(site, "import", reporter)?;
    let report = bundle::import(site, &options, reporter)?;
    if let Some(airlock) = report.airlock.as_ref().filter(|a| a.newer_than_running) {
        reporter.warn(&newer_airlock(&airlock.version, airlock.path.display()));
    }
    if !args.json {
        print_import(&report, reporter, printer)?;
    }
    let push = push::finish(auto, site, reporter, printer.lines(args.json))?;
    if args.json {
        printer.json(&Imported {
            report: &report,
            push,
        })?;
    }
    Ok(())
}

fn print_import(
    report: &bundle::ImportReport,
    reporter: &dyn Reporter,
    printer: Printer,
) -> anyhow::Result<()> {
    writeln!(
        printer.status(),
        "bundle {} signed by {}",
        report.id,
        report.signer
    )?;
    for switched in &report.contents {
        writeln!(
            printer.status(),
            "  {}: switched ({} files)",
            switched.content,
            switched.files
        )?;
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
    if let Some(airlock) = &report.airlock {
        writeln!(
            printer.status(),
            "airlock {} kept in {}",
            airlock.version,
            airlock.path.display()
        )?;
    }
    Ok(())
}

/// The warning of inspect and import when the bundle brings a newer airlock.
fn newer_airlock(version: &str, file: impl std::fmt::Display) -> String {
    format!(
        "the bundle carries airlock {version}, newer than this one ({}): install {file} (check it first: docs/bundles.md)",
        carry::VERSION,
    )
}

pub fn run(config: &Path, command: BundleCommand, printer: Printer) -> anyhow::Result<()> {
    match command {
        BundleCommand::Inspect(args) => inspect(config, args, printer),
    }
}

/// `bundle inspect --json`.
#[derive(serde::Serialize)]
struct Inspected<'m> {
    #[serde(flatten)]
    bundle: manifest::Summary<'m>,
    signature: Signature,
    /// Present, damaged (another size) or missing, per volume, in the bundle folder.
    volumes_here: Vec<VolumeHere>,
    /// The carried airlock is newer than the one running.
    airlock_newer: bool,
}

#[derive(serde::Serialize)]
struct Signature {
    /// `trusted`, `untrusted`, `wrong_signer` (trusted key, not the exporter named) or
    /// `unchecked` (no keyring).
    status: &'static str,
    signer: Option<String>,
    reason: Option<String>,
}

impl Signature {
    /// What `bundle inspect` says of it.
    fn line(&self) -> String {
        let reason = self.reason.as_deref().unwrap_or_default();
        match self.status {
            "trusted" => format!(
                "signature good, by trusted key {}",
                self.signer.as_deref().unwrap_or_default()
            ),
            "untrusted" => format!("NOT trusted here: {reason}"),
            "unchecked" => format!("signature not checked: {reason}"),
            _ => reason.to_string(),
        }
    }
}

#[derive(serde::Serialize)]
struct VolumeHere {
    name: String,
    /// `present`, `damaged` or `missing`.
    state: &'static str,
    size_on_disk: Option<u64>,
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
    let signature = match signer {
        Some(Ok(signer)) if signer != m.exporter.fingerprint => Signature {
            status: "wrong_signer",
            reason: Some(format!(
                "signed by {signer}, not by the exporter it names: import refuses it"
            )),
            signer: Some(signer),
        },
        Some(Ok(signer)) => Signature {
            status: "trusted",
            signer: Some(signer),
            reason: None,
        },
        Some(Err(bad)) => Signature {
            status: "untrusted",
            signer: None,
            reason: Some(airlock_core::hint::Chain(&bad.error).to_string()),
        },
        None => Signature {
            status: "unchecked",
            signer: None,
            reason: Some("no [import] trusted_keys and no --keyring".into()),
        },
    };
    let dir = manifest::manifest_path(&args.bundle)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let volumes_here: Vec<VolumeHere> = m
        .volumes
        .iter()
        .map(|volume| {
            let on_disk = std::fs::metadata(dir.join(&volume.name))
                .map(|md| md.len())
                .ok();
            VolumeHere {
                name: volume.name.clone(),
                state: match on_disk {
                    Some(size) if size == volume.size => "present",
                    Some(_) => "damaged",
                    None => "missing",
                },
                size_on_disk: on_disk,
            }
        })
        .collect();
    let airlock_newer = m.airlock.as_ref().is_some_and(carry::newer_than_running);
    if args.json {
        return printer.json(&Inspected {
            bundle: m.summary(),
            signature,
            volumes_here,
            airlock_newer,
        });
    }
    writeln!(
        printer.output(),
        "bundle {} (format {}), created {}",
        m.id,
        m.format,
        m.created
    )?;
    let trust = signature.line();
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
    for (volume, here) in m.volumes.iter().zip(&volumes_here) {
        let state = match (here.state, here.size_on_disk) {
            ("damaged", Some(size)) => format!("present but {size} bytes: damaged or incomplete"),
            (state, _) => state.to_string(),
        };
        writeln!(
            printer.output(),
            "  {}: {} blobs, {}, {state}",
            volume.name,
            volume.blobs,
            human_bytes(volume.size)
        )?;
    }
    match &m.airlock {
        Some(airlock) => {
            writeln!(
                printer.output(),
                "carries airlock {} ({}, {}, SHA-256 {}){}",
                airlock.version,
                airlock.file,
                human_bytes(airlock.size),
                airlock.sha256,
                match &airlock.carried_in {
                    Some(earlier) => format!(": not repeated, the file is in bundle {earlier}"),
                    None => String::new(),
                }
            )?;
            if airlock_newer {
                let file = match &airlock.carried_in {
                    Some(earlier) => format!("{} from bundle {earlier}", airlock.file),
                    None => dir.join(&airlock.file).display().to_string(),
                };
                writeln!(
                    printer.output(),
                    "  {}",
                    newer_airlock(&airlock.version, file)
                )?;
            }
        }
        None => writeln!(printer.output(), "carries no airlock")?,
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
