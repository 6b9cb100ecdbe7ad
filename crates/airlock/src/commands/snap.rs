use std::io::Write;

use airlock_core::hint::Chain;
use airlock_core::report::Reporter;
use airlock_core::site::Site;
use airlock_core::snap::{self, ImportRequest, catalog::Catalog};

use crate::cli::SnapCommand;
use crate::printer::Printer;

use super::push::{self, AutoPush};

pub fn run(
    site: &Site,
    command: SnapCommand,
    reporter: std::sync::Arc<dyn Reporter>,
    printer: Printer,
) -> anyhow::Result<()> {
    let reporter_ref: &dyn Reporter = &*reporter;
    match command {
        SnapCommand::Fetch => fetch(site, reporter, printer),
        SnapCommand::ClientConfig => {
            client_config(site, printer)?;
            Ok(())
        }
        SnapCommand::Import {
            snap: file,
            assertions,
            channels,
            architectures,
        } => {
            let trust = snap::site_trust(site)?;
            let auto = AutoPush::start(site, "snap import", reporter_ref)?;
            // A folder (what `snap download` left, or a bundle of them): every snap with its
            // .assert; one refusal does not stop the others, and each import is whole or absent.
            let files: Vec<std::path::PathBuf> = if file.is_dir() {
                if assertions.is_some() {
                    anyhow::bail!(
                        "with a folder, each snap's .assert is read next to it: give no ASSERTIONS"
                    );
                }
                let mut files: Vec<_> = std::fs::read_dir(&file)?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "snap"))
                    .collect();
                files.sort();
                files
            } else {
                vec![file]
            };
            let mut failed = 0;
            for snap_file in &files {
                let request = ImportRequest {
                    snap: snap_file.clone(),
                    assertions: assertions.clone(),
                    channels: channels.clone(),
                    architectures: architectures.clone(),
                };
                match snap::import(site, &trust, &request, reporter_ref) {
                    Ok(imported) => report_import(&imported, printer)?,
                    Err(e) if files.len() > 1 => {
                        failed += 1;
                        eprintln!("refused {}: {}", snap_file.display(), Chain(&e));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            // What was imported is pushed, whatever was refused.
            push::finish(auto, site, reporter_ref, printer)?;
            if failed > 0 {
                anyhow::bail!(
                    "{failed} of {} snaps refused (the others are imported)",
                    files.len()
                );
            }
            Ok(())
        }
        SnapCommand::Release {
            name,
            revision,
            channels,
            architectures,
        } => {
            let auto = AutoPush::start(site, "snap release", reporter_ref)?;
            for released in snap::release(
                site,
                &name,
                revision,
                &channels,
                &architectures,
                reporter_ref,
            )? {
                writeln!(printer.status(), "released {name} {revision} to {released}")?;
            }
            push::finish(auto, site, reporter_ref, printer)?;
            Ok(())
        }
        SnapCommand::List { json } => {
            let snaps = Catalog::load(site.data_dir())?.listing();
            if json {
                return printer.json(&Snaps { snaps });
            }
            if snaps.is_empty() {
                writeln!(
                    printer.status(),
                    "no snaps yet: airlock snap import FILE.snap FILE.assert --channel stable"
                )?;
            }
            for snap in &snaps {
                writeln!(
                    printer.output(),
                    "{}  {}  publisher {}",
                    snap.name,
                    snap.snap_id,
                    snap.publisher
                )?;
                for revision in &snap.revisions {
                    writeln!(
                        printer.output(),
                        "  revision {}  {}  {}  {}",
                        revision.revision,
                        revision.version,
                        airlock_core::util::human_bytes(revision.size),
                        if revision.channels.is_empty() {
                            "(no channel)".to_string()
                        } else {
                            revision.channels.join(", ")
                        }
                    )?;
                }
            }
            Ok(())
        }
        SnapCommand::Remove { name, revision } => {
            let auto = AutoPush::start(site, "snap remove", reporter_ref)?;
            for r in snap::remove(site, &name, revision, reporter_ref)? {
                writeln!(printer.status(), "removed {name} revision {r}")?;
            }
            push::finish(auto, site, reporter_ref, printer)?;
            Ok(())
        }
    }
}

/// `snap list --json`.
#[derive(serde::Serialize)]
struct Snaps {
    snaps: Vec<snap::catalog::ListedSnap>,
}

fn fetch(
    site: &Site,
    reporter: std::sync::Arc<dyn Reporter>,
    printer: Printer,
) -> anyhow::Result<()> {
    if site.config.snaps.snaps.is_empty() {
        anyhow::bail!(
            "{} lists no snaps to fetch: add [[snaps.snap]] entries (name, channels, architectures)",
            site.config.path.display()
        );
    }
    let trust = snap::site_trust(site)?;
    let auto = AutoPush::start(site, "snap fetch", &*reporter)?;
    let runtime = super::runtime()?;
    let fetched = runtime.block_on(snap::fetch::fetch(site, &trust, reporter.clone()))?;
    for f in &fetched {
        writeln!(
            printer.status(),
            "{} {} revision {} ({}) for {} on {}{}",
            if f.downloaded { "fetched" } else { "had" },
            f.imported.name,
            f.imported.revision,
            f.imported.version,
            f.wanted.architecture,
            f.imported
                .channels
                .iter()
                .map(|c| c.split_once(' ').map_or(c.as_str(), |(_, ch)| ch))
                .collect::<Vec<_>>()
                .join(", "),
            if f.wanted.prerequisite {
                "  (added: another snap needs it)"
            } else {
                ""
            }
        )?;
    }
    push::finish(auto, site, &*reporter, printer)?;
    Ok(())
}

/// The runbook for clients: snapd's drop-in, the CA, and the same as cloud-init user data.
fn client_config(site: &Site, printer: Printer) -> std::io::Result<()> {
    let tls = site.config.site.tls.as_ref();
    let url = tls.map_or(site.config.site.public_url.as_str(), |t| {
        t.public_url.as_str()
    });
    let ca = tls.and_then(|_| {
        let path = site.config.path.parent()?.join("tls/ca.pem");
        std::fs::read_to_string(path).ok()
    });
    let drop_in = format!("[Service]\nEnvironment=SNAPPY_FORCE_API_URL={url}/\n");
    let store_host = airlock_core::config::SNAP_STORE_HOST;
    if tls.is_some_and(|t| t.listen.port() == 443)
        && site.config.dns.names.iter().any(|n| n == store_host)
    {
        writeln!(
            printer.output(),
            "# HTTPS on port 443 and [dns] names has {store_host}: with DNS pointing it here (airlock dns config), snapd needs only the site CA below (store-certs), not the drop-in."
        )?;
    }
    writeln!(
        printer.output(),
        "# snapd on each machine that installs snaps from this store (MAAS hosts, deployed machines):"
    )?;
    writeln!(
        printer.output(),
        "sudo mkdir -p /etc/systemd/system/snapd.service.d"
    )?;
    writeln!(
        printer.output(),
        "sudo tee /etc/systemd/system/snapd.service.d/airlock-store.conf >/dev/null <<'EOF'\n{drop_in}EOF"
    )?;
    writeln!(
        printer.output(),
        "sudo systemctl daemon-reload && sudo systemctl restart snapd.service"
    )?;
    match &ca {
        Some(pem) => {
            writeln!(
                printer.output(),
                "# trust the site CA for store connections:"
            )?;
            writeln!(
                printer.output(),
                "sudo snap set system store-certs.airlock=\"$(cat <<'EOF'\n{}EOF\n)\"",
                pem
            )?;
        }
        None if url.starts_with("https://") => {
            writeln!(
                printer.output(),
                "# the server certificate must be trusted: add its CA with snap set system store-certs.NAME=\"$(cat ca.pem)\""
            )?;
        }
        None => {
            writeln!(
                printer.output(),
                "# plain HTTP: set [site] tls_cert/tls_key (airlock tls init) for the HTTPS snapd expects of a store"
            )?;
        }
    }
    writeln!(printer.output())?;
    writeln!(
        printer.output(),
        "# cloud-init user data for machines MAAS deploys (MAAS: deploy with this user_data):"
    )?;
    writeln!(printer.output(), "#cloud-config")?;
    writeln!(printer.output(), "write_files:")?;
    writeln!(
        printer.output(),
        "  - path: /etc/systemd/system/snapd.service.d/airlock-store.conf"
    )?;
    writeln!(printer.output(), "    content: |")?;
    for line in drop_in.lines() {
        writeln!(printer.output(), "      {line}")?;
    }
    if let Some(pem) = &ca {
        writeln!(printer.output(), "  - path: /etc/airlock/ca.pem")?;
        writeln!(printer.output(), "    content: |")?;
        for line in pem.lines() {
            writeln!(printer.output(), "      {line}")?;
        }
    }
    writeln!(printer.output(), "bootcmd:")?;
    writeln!(printer.output(), "  - [systemctl, daemon-reload]")?;
    writeln!(printer.output(), "  - [systemctl, restart, snapd.service]")?;
    if ca.is_some() {
        writeln!(
            printer.output(),
            "  - [sh, -c, 'snap set system store-certs.airlock=\"$(cat /etc/airlock/ca.pem)\"']"
        )?;
    }
    Ok(())
}

pub(super) fn report_import(imported: &snap::Imported, printer: Printer) -> std::io::Result<()> {
    writeln!(
        printer.status(),
        "{} {} revision {} ({}){}",
        if imported.new {
            "imported"
        } else {
            "already had"
        },
        imported.name,
        imported.revision,
        imported.version,
        if imported.channels.is_empty() {
            String::new()
        } else {
            format!(", released to {}", imported.channels.join(", "))
        }
    )?;
    if imported.channels.is_empty() {
        writeln!(
            printer.status(),
            "  not on any channel yet: airlock snap release {} {} stable",
            imported.name,
            imported.revision
        )?;
    }
    for (name, present) in &imported.prerequisites {
        if !present {
            writeln!(
                printer.status(),
                "  snapd will also ask for {name}: import it too, or installs of {} fail",
                imported.name
            )?;
        }
    }
    Ok(())
}
