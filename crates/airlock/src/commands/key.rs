use std::io::Write;

use airlock_core::site::Site;

use crate::cli::KeyCommand;
use crate::printer::Printer;

pub fn run(site: &Site, command: KeyCommand, printer: Printer) -> anyhow::Result<()> {
    if let KeyCommand::Generate {
        key_type,
        name,
        if_missing,
    } = &command
    {
        if *if_missing && site.config.site.signing_key.exists() {
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
        return Ok(());
    }
    let key = site.signing_key()?;
    match command {
        KeyCommand::Generate { .. } => unreachable!("handled above"),
        KeyCommand::Show => {
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
        }
        KeyCommand::Export { armor } => {
            let bytes = if armor {
                key.public_armored().into_bytes()
            } else {
                key.public_binary()
            };
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(())
}
