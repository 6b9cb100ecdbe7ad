use std::io::Write;

use airlock_core::site::Site;

use crate::cli::MaasCommand;
use crate::printer::Printer;

pub fn run(site: &Site, command: MaasCommand, printer: Printer) -> anyhow::Result<()> {
    match command {
        MaasCommand::BootSource => boot_source(site, printer),
    }
}

/// The commands that point MAAS at the site's image stream, with the site keyring.
fn boot_source(site: &Site, printer: Printer) -> anyhow::Result<()> {
    let Some(images) = &site.config.images else {
        anyhow::bail!(
            "no [images] section in {}: the site serves no boot images",
            site.config.path.display()
        );
    };
    let url = &site.config.site.public_url;
    // The snap reads files only below its own folder; the keyring must be binary and named
    // by an absolute path (gpgv otherwise looks in GNUPGHOME).
    let keyring = "/var/snap/maas/common/airlock.gpg";
    writeln!(
        printer.output(),
        "# On the MAAS region controller (PROFILE: a logged-in MAAS CLI profile)."
    )?;
    if images.mode == airlock_core::config::ImagesMode::Verbatim {
        let upstream = images
            .keyring
            .first()
            .map_or("the upstream's keyring".to_string(), |k| {
                k.display().to_string()
            });
        writeln!(
            printer.output(),
            "# The stream is verbatim: MAAS checks it with the upstream's key, as this site does"
        )?;
        writeln!(
            printer.output(),
            "# ({upstream}; a binary keyring). Copy that file to {keyring}, then:"
        )?;
    } else {
        writeln!(
            printer.output(),
            "# The site's public key, binary, where the MAAS snap can read it:"
        )?;
        writeln!(
            printer.output(),
            "sudo curl -fsSL {url}/airlock.gpg -o {keyring}"
        )?;
    }
    writeln!(
        printer.output(),
        "maas $PROFILE boot-sources create url={url}/images/ keyring_filename={keyring}"
    )?;
    writeln!(
        printer.output(),
        "#   (or keyring_data@={keyring} to store the key in MAAS itself)"
    )?;
    writeln!(
        printer.output(),
        "# Then, with the id that command printed as SOURCE_ID:"
    )?;
    for selection in &images.select {
        let arches: Vec<String> = selection
            .arches
            .iter()
            .map(|a| format!("arches={a}"))
            .collect();
        let subarches: Vec<String> = selection
            .subarches
            .iter()
            .map(|a| format!("subarches='{a}'"))
            .collect();
        let labels: Vec<String> = selection
            .labels
            .iter()
            .map(|l| format!("labels='{l}'"))
            .collect();
        for release in &selection.release {
            writeln!(
                printer.output(),
                "maas $PROFILE boot-source-selections create SOURCE_ID os={} release={release} {} {} {}",
                selection.os,
                arches.join(" "),
                subarches.join(" "),
                labels.join(" ")
            )?;
        }
    }
    writeln!(printer.output(), "maas $PROFILE boot-resources import")?;
    writeln!(
        printer.output(),
        "# Bootloaders need no selection: MAAS takes every one the stream offers, and airlock mirrors them all."
    )?;
    Ok(())
}
