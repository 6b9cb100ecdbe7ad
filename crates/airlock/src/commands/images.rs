use std::io::Write;

use airlock_core::report::Reporter;
use airlock_core::simplestreams::custom::{self, NewImage};
use airlock_core::simplestreams::mirror;
use airlock_core::site::Site;

use crate::cli::{ImagesAddArgs, ImagesCommand};
use crate::printer::Printer;

use super::push::{self, AutoPush};

pub fn run(
    site: &Site,
    command: ImagesCommand,
    reporter: &dyn Reporter,
    printer: Printer,
) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    match command {
        ImagesCommand::Add(args) => add(site, args, now, reporter, printer),
        ImagesCommand::List { json } => {
            let products = mirror::list(site)?;
            if json {
                return printer.json(&Products { products });
            }
            for product in products {
                writeln!(
                    printer.output(),
                    "{}  {}  {} files, {}{}",
                    product.name,
                    product.versions.join(" "),
                    product.files,
                    airlock_core::util::human_bytes(product.bytes),
                    if product.custom { "  (custom)" } else { "" }
                )?;
            }
            Ok(())
        }
        ImagesCommand::Remove {
            os,
            release,
            arch,
            version,
        } => {
            let auto = AutoPush::start(site, "images remove", reporter)?;
            let removed = custom::remove(
                site,
                &os,
                &release,
                arch.as_deref(),
                version.as_deref(),
                now,
                reporter,
            )?;
            for image in removed {
                writeln!(
                    printer.status(),
                    "removed {} {}",
                    image.product_name(),
                    image.version
                )?;
            }
            push::finish(auto, site, reporter, printer)?;
            Ok(())
        }
    }
}

/// `images list --json`.
#[derive(serde::Serialize)]
struct Products {
    products: Vec<mirror::ListedProduct>,
}

fn add(
    site: &Site,
    args: ImagesAddArgs,
    now: jiff::Timestamp,
    reporter: &dyn Reporter,
    printer: Printer,
) -> anyhow::Result<()> {
    let title = args
        .title
        .unwrap_or_else(|| format!("{} {}", args.os, args.release));
    if args.filetype != "tgz" {
        // MAAS 3.8 parses only root-tgz single-file products: this one has to be uploaded.
        let file = std::path::absolute(&args.file)?;
        let known = ["centos", "rhel", "ol", "suse", "esxi", "windows", "ubuntu"];
        let name = if known.contains(&args.os.as_str()) {
            format!("{}/{}", args.os, args.release)
        } else {
            format!("custom/{}-{}", args.os, args.release)
        };
        writeln!(
            printer.output(),
            "A {} image cannot be served in a stream MAAS 3.8 reads; upload it on the MAAS region instead:",
            args.filetype
        )?;
        writeln!(
            printer.output(),
            "  maas $PROFILE boot-resources create name={name} title='{title}' architecture={}/{} filetype={} content@={}",
            args.arch,
            args.subarch,
            args.filetype,
            file.display()
        )?;
        return Ok(());
    }
    let auto = AutoPush::start(site, "images add", reporter)?;
    let image = custom::add(
        site,
        NewImage {
            os: args.os,
            release: args.release,
            arch: args.arch,
            subarch: args.subarch,
            title,
            label: args.label,
            support_eol: args.support_eol,
            filetype: args.filetype,
            file: args.file,
            manifest: args.manifest,
        },
        now,
        reporter,
    )?;
    writeln!(
        printer.status(),
        "added {} version {} ({} bytes); published in the image stream",
        image.product_name(),
        image.version,
        image.size
    )?;
    push::finish(auto, site, reporter, printer)?;
    Ok(())
}
