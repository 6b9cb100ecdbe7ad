use std::time::Duration;

use airlock_core::server::{Listeners, ServerState, serve};
use airlock_core::site::Site;

use crate::cli::ServeArgs;

pub fn run(site: &Site, args: ServeArgs) -> anyhow::Result<()> {
    let key = site.signing_key()?;
    let address = args.listen.unwrap_or(site.config.site.listen);
    let state = ServerState::new(site.data_dir(), &site.config.site.public_url, &key);
    let mut listeners = Listeners::bind(address)?;
    tracing::info!(
        "listening on http://{}/ (clients use {})",
        listeners.local_addr(),
        site.config.site.public_url
    );
    if let Some(tls) = &site.config.site.tls {
        let config = airlock_core::tls::server_config(&tls.cert, &tls.key)?;
        listeners = listeners.with_tls(tls.listen, config)?;
        tracing::info!(
            "listening on https://{}/ (clients use {})",
            listeners.tls_addr().expect("just bound"),
            tls.public_url
        );
    }
    serve(listeners, state, shutdown_signal(), Duration::from_secs(30))?;
    Ok(())
}

/// SIGTERM (systemd, kill) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
