use std::io::Write;

use anyhow::Context;

use crate::cli::InitArgs;
use crate::printer::Printer;

pub fn run(args: InitArgs, printer: Printer) -> anyhow::Result<()> {
    fs_create(&args.dir)?;
    let out = airlock_core::site::init(&args.dir, args.key_type.algorithm(), &args.name)?;
    writeln!(printer.status(), "created site in {}", args.dir.display())?;
    writeln!(printer.status(), "  config       {}", out.config.display())?;
    writeln!(
        printer.status(),
        "  signing key  {} (secret, mode 0600)",
        out.key.secret_key.display()
    )?;
    writeln!(
        printer.status(),
        "  public key   {} and {}",
        out.key.public_binary.display(),
        out.key.public_armored.display()
    )?;
    writeln!(
        printer.status(),
        "  data         {}",
        out.data_dir.display()
    )?;
    writeln!(printer.status(), "  fingerprint  {}", out.key.fingerprint)?;
    writeln!(printer.status())?;
    writeln!(
        printer.status(),
        "next: edit the config, then `airlock apt include local stable main DEBS...`, `airlock publish`, `airlock serve`"
    )?;
    Ok(())
}

fn fs_create(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}
