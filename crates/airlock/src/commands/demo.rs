use std::time::Duration;

use airlock_core::demo::{self, COMPONENT, REPO, SUITE};
use airlock_core::report::Reporter;
use airlock_core::server::{Listeners, ServerState, serve};

use super::publish::print_reports;
use super::serve::shutdown_signal;
use crate::cli::DemoArgs;

pub fn run(args: DemoArgs, reporter: &dyn Reporter) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.dir.display()))?;
    let dir = std::fs::canonicalize(&args.dir)?;
    let demo = demo::prepare(&dir, args.listen, reporter)?;
    let site = &demo.site;
    println!(
        "demo site {} in {}",
        if demo.created { "created" } else { "reused" },
        dir.display()
    );
    print_reports(&demo.published);
    let key = site.signing_key()?;
    let url = &site.config.site.public_url;
    println!();
    println!("signing key {}", key.fingerprint());
    println!(
        "try it with apt from another terminal (private state in a temp folder; nothing on this machine changes):"
    );
    println!("  d=$(mktemp -d); mkdir -p $d/lists $d/cache $d/parts");
    println!("  curl -fsS {url}/airlock.gpg -o $d/airlock.gpg");
    println!(
        "  echo \"deb [signed-by=$d/airlock.gpg] {url}/apt/{REPO} {SUITE} {COMPONENT}\" > $d/sources.list"
    );
    println!(
        "  o=\"-o Dir::Etc::SourceList=$d/sources.list -o Dir::Etc::SourceParts=$d/parts -o Dir::State::Lists=$d/lists \
         -o Dir::Cache=$d/cache -o Debug::NoLocking=1 -o APT::Sandbox::User=root -o Acquire::Check-Valid-Until=true\""
    );
    println!("  apt-get $o update && (cd $d && apt-get $o download airlock-hello) && ls $d/*.deb");
    println!("or browse {url}/");
    if args.no_serve {
        return Ok(());
    }
    let state = ServerState::new(site.data_dir(), url, &key);
    let listeners = Listeners::bind(site.config.site.listen)?;
    tracing::info!(
        "listening on http://{}/ (Ctrl-C stops)",
        listeners.local_addr()
    );
    serve(listeners, state, shutdown_signal(), Duration::from_secs(5))?;
    Ok(())
}
