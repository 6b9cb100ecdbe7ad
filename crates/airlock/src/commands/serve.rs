use std::time::Duration;

use airlock_core::dns::responder::Responder;
use airlock_core::proxy::{Proxy, PullThrough};
use airlock_core::server::{Listeners, ServerState, serve};
use airlock_core::site::Site;

use crate::cli::ServeArgs;

pub fn run(site: &Site, args: ServeArgs) -> anyhow::Result<()> {
    let data_dir = site.existing_data_dir()?;
    let key = site.signing_key()?;
    let address = args.listen.unwrap_or(site.config.site.listen);
    let config = &site.config;
    // DNS first: with port 0 it picks a port free for UDP and TCP, which the HTTP listener
    // bound first could hold.
    if let Some(listen) = config.dns.listen {
        start_dns(site, listen)?;
    }
    let mut listeners = Listeners::bind(address)?;
    let public_url = config
        .site
        .public_url_when_listening(listeners.local_addr());
    let own_hosts: Vec<String> = std::iter::once(&public_url)
        .chain(config.site.tls.as_ref().map(|t| &t.public_url))
        .filter_map(|url| airlock_core::config::url_host(url))
        .collect();
    let pull = match config.proxy.pull_through {
        true => Some(PullThrough::new(config)?),
        false => None,
    };
    for (i, route) in config.proxy.routes.iter().enumerate() {
        let pulled = pull.as_ref().is_some_and(|p| p.serves(i));
        tracing::info!(
            "answering for http://{}{}/ from {}/{}",
            route.host,
            route.path,
            route.to,
            if pulled {
                format!(", misses fetched from {}", route.upstream)
            } else {
                String::new()
            }
        );
    }
    let mut proxy = Proxy::new(&config.proxy, &own_hosts);
    if let Some(pull) = pull {
        proxy = proxy.pulling(pull);
    }
    let state = ServerState::new(data_dir, &public_url, &key).with_proxy(proxy);
    tracing::info!(
        "listening on http://{}/ (clients use {public_url})",
        listeners.local_addr(),
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

/// The DNS responder on a thread of its own; it lives as long as the process.
fn start_dns(site: &Site, listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let names = site.config.overridden_names();
    let responder = Responder::bind(&site.config.dns, listen, &names)?;
    let addresses: Vec<String> = site
        .config
        .dns
        .addresses
        .iter()
        .map(|a| a.to_string())
        .collect();
    tracing::info!(
        "answering DNS on {} (udp and tcp): {} -> {}; other names {}",
        responder.local_addr(),
        names.join(", "),
        addresses.join(", "),
        match site.config.dns.upstream {
            Some(upstream) =>
                format!("forwarded to {upstream} for the site's networks, refused for others"),
            None => "refused".to_string(),
        }
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("airlock-dns".into())
        .spawn(move || {
            if let Err(e) = runtime.block_on(responder.run()) {
                tracing::error!("the DNS responder stopped: {e}");
            }
        })?;
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
