use std::io::Write;

use airlock_core::site::Site;

use crate::cli::{KeyCommand, KeyType};
use crate::printer::Printer;

pub fn run(site: &Site, command: KeyCommand, printer: Printer) -> anyhow::Result<()> {
    match command {
        KeyCommand::Generate {
            key_type,
            name,
            if_missing,
        } => generate(site, key_type, &name, if_missing, printer),
        KeyCommand::Show => {
            let key = site.signing_key()?;
            writeln!(printer.output(), "fingerprint  {}", key.fingerprint())?;
            writeln!(printer.output(), "algorithm    {}", key.algorithm())?;
            for user_id in key.user_ids() {
                writeln!(printer.output(), "user id      {user_id}")?;
            }
            writeln!(printer.output(), "created      {}", key.created())?;
            writeln!(
                printer.output(),
                "secret key   {}",
                site.config.site.signing_key.display()
            )?;
            Ok(())
        }
        KeyCommand::Export { armor } => {
            let key = site.signing_key()?;
            let bytes = if armor {
                key.public_armored().into_bytes()
            } else {
                key.public_binary()
            };
            std::io::stdout().write_all(&bytes)?;
            Ok(())
        }
    }
}

/// Makes the key the config names (a packaged site's first install: `--if-missing`).
fn generate(
    site: &Site,
    key_type: KeyType,
    name: &str,
    if_missing: bool,
    printer: Printer,
) -> anyhow::Result<()> {
    if if_missing && site.config.site.signing_key.exists() {
        return Ok(());
    }
    let files = airlock_core::site::generate_key(
        &site.config.site.signing_key,
        key_type.algorithm(),
        name,
    )?;
    writeln!(
        printer.status(),
        "signing key {} (secret, mode 0600), public {} and {}; fingerprint {}",
        files.secret_key.display(),
        files.public_binary.display(),
        files.public_armored.display(),
        files.fingerprint
    )?;
    Ok(())
}
