use airlock_core::report::Reporter;
use airlock_core::site::Site;
use airlock_core::snap::{self, ImportRequest, catalog::Catalog};

use crate::cli::SnapCommand;

pub fn run(site: &Site, command: SnapCommand, reporter: &dyn Reporter) -> anyhow::Result<()> {
    match command {
        SnapCommand::Import {
            snap: file,
            assertions,
            channels,
            architectures,
        } => {
            let trust = snap::site_trust(site)?;
            let request = ImportRequest {
                snap: file,
                assertions,
                channels,
                architectures,
            };
            let imported = snap::import(site, &trust, &request, reporter)?;
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
            for (name, present) in imported.prerequisites {
                if !present {
                    println!(
                        "  snapd will also ask for {name}: import it too, or installs of {} fail",
                        imported.name
                    );
                }
            }
            Ok(())
        }
        SnapCommand::Release {
            name,
            revision,
            channels,
            architectures,
        } => {
            for released in
                snap::release(site, &name, revision, &channels, &architectures, reporter)?
            {
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
                        super::sync::human_bytes(revision.size),
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
            for r in snap::remove(site, &name, revision, reporter)? {
                println!("removed {name} revision {r}");
            }
            Ok(())
        }
    }
}
