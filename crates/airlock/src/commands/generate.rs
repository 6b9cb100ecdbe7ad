//! Shell completions and man pages, generated from the clap definition so that they never
//! disagree with `--help`, and the packaged airlock.toml, made from the one `airlock init`
//! writes. The Debian package ships the copies committed under `crates/airlock/assets/`; a
//! test regenerates them and insists they are current.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

pub fn run(dir: &Path) -> anyhow::Result<()> {
    let completions = dir.join("completions");
    let man = dir.join("man");
    for folder in [&completions, &man] {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut Cli::command(), "airlock", &completions)
            .with_context(|| format!("cannot write {shell} completions"))?;
    }
    clap_mangen::generate_to(Cli::command(), &man)
        .with_context(|| format!("cannot write man pages to {}", man.display()))?;
    let config = dir.join("airlock.toml");
    std::fs::write(&config, airlock_core::site::packaged_config())
        .with_context(|| format!("cannot write {}", config.display()))?;
    Ok(())
}
