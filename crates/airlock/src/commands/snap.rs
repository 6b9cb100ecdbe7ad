use airlock_core::report::Reporter;
use airlock_core::site::Site;
use airlock_core::snap::{self, ImportRequest, catalog::Catalog};

use crate::cli::SnapCommand;

pub fn run(
    site: &Site,
    command: SnapCommand,
    reporter: std::sync::Arc<dyn Reporter>,
) -> anyhow::Result<()> {
    let reporter_ref: &dyn Reporter = &*reporter;
    match command {
        SnapCommand::Fetch => fetch(site, reporter),
        SnapCommand::ClientConfig => {
            client_config(site);
            Ok(())
        }
        SnapCommand::Import {
            snap: file,
            assertions,
            channels,
            architectures,
        } => {
            let trust = snap::site_trust(site)?;
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
                    Ok(imported) => report_import(&imported),
                    Err(e) if files.len() > 1 => {
                        failed += 1;
                        eprintln!("refused {}: {e}", snap_file.display());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
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
            for released in snap::release(
                site,
                &name,
                revision,
                &channels,
                &architectures,
                reporter_ref,
            )? {
                println!("released {name} {revision} to {released}");
            }
            Ok(())
        }
        SnapCommand::List => {
            let catalog = Catalog::load(site.data_dir())?;
            if catalog.snaps.is_empty() {
                println!(
                    "no snaps yet: airlock snap import FILE.snap FILE.assert --channel stable"
                );
            }
            for (name, entry) in &catalog.snaps {
                println!(
                    "{name}  {}  publisher {}",
                    entry.snap_id, entry.publisher.username
                );
                for revision in entry.revisions.values() {
                    let channels: Vec<String> = entry
                        .releases
                        .iter()
                        .filter(|r| r.revision == revision.revision)
                        .map(|r| format!("{} {}", r.architecture, r.channel()))
                        .collect();
                    println!(
                        "  revision {}  {}  {}  {}",
                        revision.revision,
                        revision.meta.version,
                        airlock_core::util::human_bytes(revision.size),
                        if channels.is_empty() {
                            "(no channel)".to_string()
                        } else {
                            channels.join(", ")
                        }
                    );
                }
            }
            Ok(())
        }
        SnapCommand::Remove { name, revision } => {
            for r in snap::remove(site, &name, revision, reporter_ref)? {
                println!("removed {name} revision {r}");
            }
            Ok(())
        }
    }
}

fn fetch(site: &Site, reporter: std::sync::Arc<dyn Reporter>) -> anyhow::Result<()> {
    if site.config.snaps.snaps.is_empty() {
        anyhow::bail!(
            "{} lists no snaps to fetch: add [[snaps.snap]] entries (name, channels, architectures)",
            site.config.path.display()
        );
    }
    let trust = snap::site_trust(site)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let fetched = runtime.block_on(snap::fetch::fetch(site, &trust, reporter))?;
    for f in &fetched {
        println!(
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
        );
    }
    Ok(())
}

/// The runbook for clients: snapd's drop-in, the CA, and the same as cloud-init user data.
fn client_config(site: &Site) {
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
        println!(
            "# HTTPS on port 443 and [dns] names has {store_host}: with DNS pointing it here (airlock dns config), snapd needs only the site CA below (store-certs), not the drop-in."
        );
    }
    println!(
        "# snapd on each machine that installs snaps from this store (MAAS hosts, deployed machines):"
    );
    println!("sudo mkdir -p /etc/systemd/system/snapd.service.d");
    println!(
        "sudo tee /etc/systemd/system/snapd.service.d/airlock-store.conf >/dev/null <<'EOF'\n{drop_in}EOF"
    );
    println!("sudo systemctl daemon-reload && sudo systemctl restart snapd.service");
    match &ca {
        Some(pem) => {
            println!("# trust the site CA for store connections:");
            println!(
                "sudo snap set system store-certs.airlock=\"$(cat <<'EOF'\n{}EOF\n)\"",
                pem
            );
        }
        None if url.starts_with("https://") => {
            println!(
                "# the server certificate must be trusted: add its CA with snap set system store-certs.NAME=\"$(cat ca.pem)\""
            );
        }
        None => {
            println!(
                "# plain HTTP: set [site] tls_cert/tls_key (airlock tls init) for the HTTPS snapd expects of a store"
            );
        }
    }
    println!();
    println!(
        "# cloud-init user data for machines MAAS deploys (MAAS: deploy with this user_data):"
    );
    println!("#cloud-config");
    println!("write_files:");
    println!("  - path: /etc/systemd/system/snapd.service.d/airlock-store.conf");
    println!("    content: |");
    for line in drop_in.lines() {
        println!("      {line}");
    }
    if let Some(pem) = &ca {
        println!("  - path: /etc/airlock/ca.pem");
        println!("    content: |");
        for line in pem.lines() {
            println!("      {line}");
        }
    }
    println!("bootcmd:");
    println!("  - [systemctl, daemon-reload]");
    println!("  - [systemctl, restart, snapd.service]");
    if ca.is_some() {
        println!(
            "  - [sh, -c, 'snap set system store-certs.airlock=\"$(cat /etc/airlock/ca.pem)\"']"
        );
    }
}

fn report_import(imported: &snap::Imported) {
    println!(
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
    );
    if imported.channels.is_empty() {
        println!(
            "  not on any channel yet: airlock snap release {} {} stable",
            imported.name, imported.revision
        );
    }
    for (name, present) in &imported.prerequisites {
        if !present {
            println!(
                "  snapd will also ask for {name}: import it too, or installs of {} fail",
                imported.name
            );
        }
    }
}
