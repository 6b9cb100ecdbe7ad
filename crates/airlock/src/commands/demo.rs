use std::io::Write;

use std::time::Duration;

use airlock_core::demo::{self, COMPONENT, REPO, SUITE};
use airlock_core::report::Reporter;
use airlock_core::server::{Limits, Listeners, ServerState, serve};

use super::publish::print_reports;
use super::serve::shutdown_signal;
use crate::cli::DemoArgs;
use crate::printer::Printer;

pub fn run(args: DemoArgs, reporter: &dyn Reporter, printer: Printer) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.dir.display()))?;
    let dir = std::fs::canonicalize(&args.dir)?;
    let demo = demo::prepare(&dir, args.listen, reporter)?;
    let site = &demo.site;
    writeln!(
        printer.output(),
        "demo site {} in {}",
        if demo.created { "created" } else { "reused" },
        dir.display()
    )?;
    print_reports(&demo.published, printer)?;
    let key = site.signing_key()?;
    let url = &site.config.site.public_url;
    writeln!(printer.output())?;
    writeln!(printer.output(), "signing key {}", key.fingerprint())?;
    writeln!(
        printer.output(),
        "try it with apt from another terminal (private state in a temp folder; nothing on this machine changes):"
    )?;
    writeln!(
        printer.output(),
        "  d=$(mktemp -d); mkdir -p $d/lists $d/cache $d/parts"
    )?;
    writeln!(
        printer.output(),
        "  curl -fsS {url}/airlock.gpg -o $d/airlock.gpg"
    )?;
    writeln!(
        printer.output(),
        "  echo \"deb [signed-by=$d/airlock.gpg] {url}/apt/{REPO} {SUITE} {COMPONENT}\" > $d/sources.list"
    )?;
    writeln!(
        printer.output(),
        "  o=\"-o Dir::Etc::SourceList=$d/sources.list -o Dir::Etc::SourceParts=$d/parts -o Dir::State::Lists=$d/lists \
         -o Dir::Cache=$d/cache -o Debug::NoLocking=1 -o APT::Sandbox::User=root -o Acquire::Check-Valid-Until=true\""
    )?;
    writeln!(
        printer.output(),
        "  apt-get $o update && (cd $d && apt-get $o download airlock-hello) && ls $d/*.deb"
    )?;
    writeln!(printer.output(), "or browse {url}/")?;
    if args.no_serve {
        return Ok(());
    }
    let counters = std::sync::Arc::new(airlock_core::status::Counters::load(site.data_dir()));
    let state = ServerState::new(site, url, &key, counters);
    let limits = Limits::default();
    let listeners = Listeners::bind(site.config.site.listen, limits.backlog)?;
    tracing::info!(
        "listening on http://{}/ (Ctrl-C stops)",
        listeners.local_addr()
    );
    serve(
        listeners,
        state,
        limits,
        |_| shutdown_signal(),
        Duration::from_secs(5),
    )?;
    Ok(())
}
