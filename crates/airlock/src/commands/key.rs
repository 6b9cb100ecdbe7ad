use std::io::Write;

use airlock_core::site::Site;

use crate::cli::KeyCommand;

pub fn run(site: &Site, command: KeyCommand) -> anyhow::Result<()> {
    let key = site.signing_key()?;
    match command {
        KeyCommand::Show => {
            println!("fingerprint  {}", key.fingerprint());
            println!("algorithm    {}", key.algorithm());
            for user_id in key.user_ids() {
                println!("user id      {user_id}");
            }
            println!("created      {}", key.created());
            println!("secret key   {}", site.config.site.signing_key.display());
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
