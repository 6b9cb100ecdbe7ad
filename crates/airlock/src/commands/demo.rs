use std::io::Write;
use std::sync::Arc;

use anyhow::Context;

use airlock_core::demo::{
    self, ARCHIVE, COMPONENT, CUSTOM, Demo, MIRROR, MIRRORED, REPO, SNAP, SUITE, UPSTREAM_HOST,
    UPSTREAM_SUITE,
};
use airlock_core::report::Reporter;

use super::publish::print_reports;
use super::snap::report_import;
use super::sync::{print_images, print_report};
use crate::cli::{DemoArgs, ServeArgs};
use crate::printer::Printer;

pub fn run(args: DemoArgs, reporter: Arc<dyn Reporter>, printer: Printer) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let dir = std::fs::canonicalize(&args.dir)?;
    let demo = demo::prepare(&dir, args.listen, reporter.clone())?;
    writeln!(
        printer.output(),
        "demo site {} in {}",
        if demo.created { "created" } else { "reused" },
        dir.display()
    )?;
    print_summary(&demo, &*reporter, printer)?;
    print_verify(&demo, printer)?;
    print_recipe(&demo, printer)?;
    if args.no_serve {
        return Ok(());
    }
    super::serve::run(&demo.site, ServeArgs { listen: None })
}

/// What each phase did: publish, syncs, the custom image, the snap.
fn print_summary(demo: &Demo, reporter: &dyn Reporter, printer: Printer) -> std::io::Result<()> {
    print_reports(&demo.published, printer)?;
    writeln!(
        printer.status(),
        "mirrored from the demo upstream (another airlock site, served at {} while syncing):",
        demo.upstream_url
    )?;
    for report in &demo.mirrors {
        print_report(report, reporter, false, printer)?;
    }
    print_images(&demo.images, false, printer)?;
    match &demo.custom {
        Some(image) => writeln!(
            printer.status(),
            "images: custom image {}/{} {} added",
            image.os,
            image.release,
            image.version
        )?,
        None => writeln!(
            printer.status(),
            "images: custom image {}/{} already there",
            CUSTOM.0,
            CUSTOM.1
        )?,
    }
    report_import(&demo.snap, printer)?;
    Ok(())
}

fn print_verify(demo: &Demo, printer: Printer) -> std::io::Result<()> {
    let report = &demo.verify;
    let checked: usize = report.areas.iter().map(|a| a.checked).sum();
    if report.passed() {
        return writeln!(
            printer.status(),
            "verify (offline): {checked} checks in {} areas passed",
            report.areas.len()
        );
    }
    super::verify::print_findings("FAILED", &report.failures, printer)?;
    writeln!(
        printer.output(),
        "verify (offline): {} of {checked} checks failed",
        report.failures.len()
    )
}

/// Commands to try from another terminal, with the exact URLs: apt (the local repo and the
/// mirror), the image stream as MAAS reads it, the snap store API.
fn print_recipe(demo: &Demo, printer: Printer) -> anyhow::Result<()> {
    let site = &demo.site;
    let key = site.signing_key()?;
    let url = &site.config.site.public_url;
    let mut out = printer.output();
    writeln!(out)?;
    writeln!(out, "signing key {}", key.fingerprint())?;
    writeln!(
        out,
        "try it from another terminal (state in a temp folder; nothing on this machine changes):"
    )?;
    writeln!(out, "  d=$(mktemp -d); mkdir -p $d/lists $d/cache $d/parts")?;
    writeln!(out, "  curl -fsS {url}/airlock.gpg -o $d/airlock.gpg")?;
    writeln!(
        out,
        "# apt: the local repo and the filtered mirror of the upstream"
    )?;
    writeln!(
        out,
        "  echo \"deb [signed-by=$d/airlock.gpg] {url}/apt/{REPO} {SUITE} {COMPONENT}\" > $d/sources.list"
    )?;
    writeln!(
        out,
        "  echo \"deb [signed-by=$d/airlock.gpg] {url}/apt/{MIRROR} {UPSTREAM_SUITE} {COMPONENT}\" >> $d/sources.list"
    )?;
    writeln!(
        out,
        "  o=\"-o Dir::Etc::SourceList=$d/sources.list -o Dir::Etc::SourceParts=$d/parts -o Dir::State::Lists=$d/lists \
         -o Dir::Cache=$d/cache -o Debug::NoLocking=1 -o APT::Sandbox::User=root -o Acquire::Check-Valid-Until=true -o Acquire::Check-Date=true\""
    )?;
    writeln!(
        out,
        "  apt-get $o update && (cd $d && apt-get $o download airlock-hello {MIRRORED}) && ls $d/*.deb"
    )?;
    writeln!(
        out,
        "# MAAS boot images: the signed stream (maas boot-sources create url={url}/images/)"
    )?;
    writeln!(
        out,
        "  curl -fsS {url}/images/streams/v1/index.sjson -o $d/index.sjson && gpgv --keyring $d/airlock.gpg $d/index.sjson"
    )?;
    writeln!(
        out,
        "  curl -fsS {url}/images/streams/v1/com.ubuntu.maas:stable:v3:download.sjson -o $d/ubuntu.sjson && gpgv --keyring $d/airlock.gpg $d/ubuntu.sjson && grep -o '\"com\\.ubuntu\\.maas\\.stable:v3:boot:[^\"]*\"' $d/ubuntu.sjson | sort -u"
    )?;
    writeln!(
        out,
        "# the upstream's own name, answered from the mirror: apt's Acquire::http::Proxy={url}"
    )?;
    writeln!(
        out,
        "  curl -fsS -x {url} http://{UPSTREAM_HOST}/apt/{ARCHIVE}/dists/{UPSTREAM_SUITE}/InRelease -o $d/InRelease && gpgv --keyring $d/airlock.gpg $d/InRelease"
    )?;
    writeln!(out, "# the snap store API, as snapd asks it")?;
    writeln!(
        out,
        "  curl -fsS -H 'Snap-Device-Series: 16' {url}/v2/snaps/info/{SNAP}"
    )?;
    writeln!(out, "or browse {url}/")?;
    Ok(())
}
