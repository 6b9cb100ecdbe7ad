use airlock_core::openpgp::KeyAlgorithm;

use crate::cli::{InitArgs, KeyType};

pub fn run(args: InitArgs) -> anyhow::Result<()> {
    let algorithm = match args.key_type {
        KeyType::Ed25519 => KeyAlgorithm::Ed25519,
        KeyType::Rsa4096 => KeyAlgorithm::Rsa4096,
    };
    fs_create(&args.dir)?;
    let out = airlock_core::site::init(&args.dir, algorithm, &args.name)?;
    println!("created site in {}", args.dir.display());
    println!("  config       {}", out.config.display());
    println!(
        "  signing key  {} (secret, mode 0600)",
        out.secret_key.display()
    );
    println!(
        "  public key   {} and {}",
        out.public_binary.display(),
        out.public_armored.display()
    );
    println!("  data         {}", out.data_dir.display());
    println!("  fingerprint  {}", out.fingerprint);
    println!();
    println!(
        "next: edit the config, then `airlock apt include local stable main DEBS...`, `airlock publish`, `airlock serve`"
    );
    Ok(())
}

fn fs_create(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))
}
