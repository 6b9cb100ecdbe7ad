use std::io::Write;

use airlock_core::openpgp::KeyAlgorithm;

use crate::cli::{InitArgs, KeyType};
use crate::printer::Printer;

pub fn run(args: InitArgs, printer: Printer) -> anyhow::Result<()> {
    let algorithm = match args.key_type {
        KeyType::Ed25519 => KeyAlgorithm::Ed25519,
        KeyType::Rsa4096 => KeyAlgorithm::Rsa4096,
    };
    fs_create(&args.dir)?;
    let out = airlock_core::site::init(&args.dir, algorithm, &args.name)?;
    writeln!(printer.status(), "created site in {}", args.dir.display())?;
    writeln!(printer.status(), "  config       {}", out.config.display())?;
    writeln!(
        printer.status(),
        "  signing key  {} (secret, mode 0600)",
        out.secret_key.display()
    )?;
    writeln!(
        printer.status(),
        "  public key   {} and {}",
        out.public_binary.display(),
        out.public_armored.display()
    )?;
    writeln!(
        printer.status(),
        "  data         {}",
        out.data_dir.display()
    )?;
    writeln!(printer.status(), "  fingerprint  {}", out.fingerprint)?;
    writeln!(printer.status())?;
    writeln!(
        printer.status(),
        "next: edit the config, then `airlock apt include local stable main DEBS...`, `airlock publish`, `airlock serve`"
    )?;
    Ok(())
}

fn fs_create(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))
}
