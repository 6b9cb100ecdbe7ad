use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use airlock_core::config::{DnsConfig, S3Storage, StorageConfig};
use airlock_core::dns::responder::Responder;
use airlock_core::hint::Chain;
use airlock_core::openpgp::SiteKey;
use airlock_core::proxy::{Proxy, PullThrough};
use airlock_core::remote::Frontend;
use airlock_core::server::{Handle, Limits, Listeners, ServerState, serve, serve_front};
use airlock_core::site::Site;
use airlock_core::status::Counters;
use anyhow::Context;

use crate::cli::ServeArgs;

pub fn run(site: &Site, args: ServeArgs) -> anyhow::Result<()> {
    // A writer that drops what it pushed ([storage] keep_pushed, or files it has not read
    // back yet) serves as its own frontend: the bucket has every file, its disk only some.
    if let StorageConfig::S3(storage) = &site.config.storage
        && (!site.data_dir().exists() || storage.keep_pushed.is_some() || site.store().drops_any())
    {
        return serve_from_bucket(site, storage, args);
    }
    let limits = limits(site)?;
    let setup = Setup::new(site, args.listen)?;
    let listeners = setup.addresses.bind(limits.backlog)?;
    let site_public_url = public_url(site, &listeners);
    let tls_public_url = setup.addresses.tls_public_url.clone();
    let listeners_bound = listeners.clone();
    // One set of counters for the server's life: a reload keeps counting in them.
    let counters = Arc::new(Counters::load(site.data_dir()));
    let state = setup.state(site, &listeners, counters.clone());
    let mut dns = Dns::default();
    dns.restart(site)?;
    let config_path = site.config.path.clone();
    let control = move |handle: Handle| {
        // Before the first log line that says the server is up: a SIGHUP sent from then on
        // reloads rather than kills.
        let signals = Signals::new();
        log_listening(&site_public_url, &tls_public_url, &listeners_bound);
        async move {
            let mut signals = signals;
            while signals.reload().await {
                if let Err(e) = reload(&handle, &config_path, args.listen, &mut dns, &counters) {
                    tracing::error!(
                        "reload refused, the configuration in use is kept: {}",
                        format!("{e:#}")
                    );
                }
            }
        }
    };
    serve(listeners, state, limits, control, Duration::from_secs(30))?;
    Ok(())
}

/// A frontend: no data folder, everything from what was pushed to the bucket, on the same
/// server (event loops, limits) as a data folder. SIGHUP looks for a new push at once (the
/// configuration is not read again).
fn serve_from_bucket(site: &Site, storage: &S3Storage, args: ServeArgs) -> anyhow::Result<()> {
    let bucket = airlock_core::remote::open_bucket(storage)?;
    let why = match storage.keep_pushed {
        Some(_) => "[storage] keep_pushed drops pushed files from",
        None => "no data folder at",
    };
    tracing::info!(
        "{why} {}: serving what was pushed to {}, looking for a new push every {}s",
        site.data_dir().display(),
        bucket.label(),
        storage.poll.as_secs_f64()
    );
    let mut frontend = Frontend::new(bucket);
    if let Some(dir) = &storage.cache_dir {
        let cache = airlock_core::remote::DiskCache::open(dir, storage.cache_size)?;
        let usage = cache.usage();
        tracing::info!(
            "keeping large blobs in {}: {} there ({} bytes), at most {} bytes",
            dir.display(),
            usage.blobs,
            usage.bytes,
            usage.limit
        );
        frontend = frontend.with_disk_cache(cache);
    }
    let frontend = Arc::new(frontend);
    let limits = limits(site)?;
    let addresses = Addresses::new(site, args.listen)?;
    let listeners = addresses.bind(limits.backlog)?;
    let tls_public_url = addresses.tls_public_url;
    let public_url = public_url(site, &listeners);
    let front = airlock_core::server::bucket::front(frontend.clone(), &public_url);
    let (poll, listeners_log) = (storage.poll, listeners.clone());
    // Started before serving, as on a data folder: a responder that cannot bind stops it.
    let dns_config = site.config.dns.clone();
    let mut dns = Dns::default();
    dns.restart_with(&dns_config, &frontend.overridden_names(&dns_config))?;
    let control = move |_: Handle| {
        // Before the first log line that says the server is up, as for a data folder.
        let signals = Signals::new();
        log_listening(&public_url, &tls_public_url, &listeners_log);
        async move {
            let refresh = tokio::sync::Notify::new();
            let signalled = async {
                let mut signals = signals;
                while signals.reload().await {
                    tracing::info!("SIGHUP: looking for a new push now");
                    refresh.notify_one();
                }
            };
            tokio::select! {
                () = frontend.keep_polling(poll, &refresh) => {}
                () = follow_routes(&frontend, &dns_config, dns) => {}
                () = signalled => {}
            }
        }
    };
    serve_front(listeners, front, limits, control, Duration::from_secs(30))?;
    Ok(())
}

/// A frontend's DNS responder (with `[dns] listen`), started again when a push changes the
/// names it answers for. A failure is logged once per change of names.
async fn follow_routes(frontend: &Frontend, dns_config: &DnsConfig, mut dns: Dns) {
    if dns_config.listen.is_none() {
        return std::future::pending().await;
    }
    let mut answering = frontend.overridden_names(dns_config);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let names = frontend.overridden_names(dns_config);
        if names != answering {
            if let Err(e) = dns.restart_with(dns_config, &names) {
                tracing::error!("the DNS responder did not start again: {e:#}");
            }
            answering = names;
        }
    }
}

/// The connection limits, from the configuration and the open-files limit (raised to the
/// hard limit first). A reload keeps them: they need a restart.
fn limits(site: &Site) -> anyhow::Result<Limits> {
    let open_files = airlock_core::server::raise_open_files_limit()
        .context("cannot raise the open-files limit (RLIMIT_NOFILE) to its hard limit")?;
    let site = &site.config.site;
    let max_connections = site
        .max_connections
        .unwrap_or_else(|| Limits::connections_for(open_files));
    let limits = Limits {
        backlog: site
            .listen_backlog
            .unwrap_or_else(airlock_core::server::somaxconn),
        write_timeout: site.write_timeout,
        max_connections,
    };
    tracing::info!(
        "open files limit {open_files}: at most {max_connections} connections (then the one idle longest is closed for a new one), backlog {}, write timeout {}s",
        limits.backlog.min(airlock_core::server::somaxconn()),
        limits.write_timeout.as_secs()
    );
    Ok(limits)
}

/// A new configuration made ready to serve: everything that can fail is done before the
/// running server changes.
fn reload(
    handle: &Handle,
    config_path: &Path,
    listen: Option<SocketAddr>,
    dns: &mut Dns,
    counters: &Arc<Counters>,
) -> anyhow::Result<()> {
    tracing::info!("SIGHUP: reloading {}", config_path.display());
    let site = Site::open(config_path)?;
    let setup = Setup::new(&site, listen)?;
    let addresses = &setup.addresses;
    let listeners = handle.bind(addresses.listen, addresses.tls.clone())?;
    let tls_public_url = addresses.tls_public_url.clone();
    let state = setup.state(&site, &listeners, counters.clone());
    handle.switch(listeners.clone(), state);
    log_listening(&public_url(&site, &listeners), &tls_public_url, &listeners);
    dns.restart(&site)
        .context("the DNS responder was not restarted with the new configuration")?;
    tracing::info!("reloaded {}", config_path.display());
    Ok(())
}

/// Where one configuration listens, HTTPS's certificate loaded, before anything is bound.
struct Addresses {
    listen: SocketAddr,
    tls: Option<(SocketAddr, Arc<airlock_core::tls::ServerConfig>)>,
    tls_public_url: Option<String>,
}

impl Addresses {
    /// `listen` (the command line's) instead of the configured one.
    fn new(site: &Site, listen: Option<SocketAddr>) -> anyhow::Result<Addresses> {
        let config = &site.config.site;
        let tls = match &config.tls {
            Some(tls) => Some((
                tls.listen,
                airlock_core::tls::server_config(&tls.cert, &tls.key)?,
            )),
            None => None,
        };
        Ok(Addresses {
            listen: listen.unwrap_or(config.listen),
            tls,
            tls_public_url: config.tls.as_ref().map(|t| t.public_url.clone()),
        })
    }

    /// The listening sockets of a server starting (a reload binds through its `Handle`).
    fn bind(&self, backlog: u32) -> anyhow::Result<Listeners> {
        let mut listeners = Listeners::bind(self.listen, backlog)?;
        if let Some((address, config)) = &self.tls {
            listeners = listeners.with_tls(*address, config.clone())?;
        }
        Ok(listeners)
    }
}

/// What one configuration serves, before its addresses are bound.
struct Setup {
    addresses: Addresses,
    key: SiteKey,
    proxy: airlock_core::config::ProxyConfig,
    pull: Option<PullThrough>,
}

impl Setup {
    fn new(site: &Site, listen: Option<SocketAddr>) -> anyhow::Result<Setup> {
        site.existing_data_dir()?;
        let key = site.signing_key()?;
        let config = &site.config;
        let addresses = Addresses::new(site, listen)?;
        let pull = match config.proxy.pull_through {
            true => Some(PullThrough::new(config)?),
            false => None,
        };
        Ok(Setup {
            addresses,
            key,
            proxy: config.proxy.clone(),
            pull,
        })
    }

    fn state(self, site: &Site, listeners: &Listeners, counters: Arc<Counters>) -> ServerState {
        let public_url = public_url(site, listeners);
        let own_hosts: Vec<String> = std::iter::once(&public_url)
            .chain(self.addresses.tls_public_url.as_ref())
            .filter_map(|url| airlock_core::config::url_host(url))
            .collect();
        for (i, route) in self.proxy.routes.iter().enumerate() {
            let pulled = self.pull.as_ref().is_some_and(|p| p.serves(i));
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
        let mut proxy = Proxy::new(&self.proxy, &own_hosts, counters.clone());
        if let Some(pull) = self.pull {
            proxy = proxy.pulling(pull);
        }
        ServerState::new(site, &public_url, &self.key, counters).with_proxy(proxy)
    }
}

fn public_url(site: &Site, listeners: &Listeners) -> String {
    site.config
        .site
        .public_url_when_listening(listeners.local_addr())
}

fn log_listening(public_url: &str, tls_public_url: &Option<String>, listeners: &Listeners) {
    tracing::info!(
        "listening on http://{}/ (clients use {public_url})",
        listeners.local_addr()
    );
    if let (Some(address), Some(url)) = (listeners.tls_addr(), tls_public_url) {
        tracing::info!("listening on https://{address}/ (clients use {url})");
    }
}

/// The DNS responder on a thread of its own, started again by each reload.
#[derive(Default)]
struct Dns {
    running: Option<RunningDns>,
}

struct RunningDns {
    listen: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Dns {
    fn restart(&mut self, site: &Site) -> anyhow::Result<()> {
        self.restart_with(&site.config.dns, &site.config.overridden_names())
    }

    /// Answers for `names` as `dns` says (not at all without `listen`).
    fn restart_with(&mut self, dns: &DnsConfig, names: &[String]) -> anyhow::Result<()> {
        let Some(listen) = dns.listen else {
            self.stop();
            return Ok(());
        };
        // The same address is bound again only once the old sockets are closed; another one
        // is bound before the old closes.
        if self.running.as_ref().is_some_and(|r| r.listen == listen) {
            self.stop();
        }
        let responder = Responder::bind(dns, listen, names)?;
        let addresses: Vec<String> = dns.addresses.iter().map(|a| a.to_string()).collect();
        tracing::info!(
            "answering DNS on {} (udp and tcp): {} -> {}; other names {}",
            responder.local_addr(),
            names.join(", "),
            addresses.join(", "),
            match dns.upstream {
                Some(upstream) =>
                    format!("forwarded to {upstream} for the site's networks, refused for others"),
                None => "refused".to_string(),
            }
        );
        self.stop();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("airlock-dns".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        result = responder.run() => if let Err(e) = result {
                            tracing::error!("the DNS responder stopped: {}", Chain(&e));
                        },
                        _ = stopped => {}
                    }
                });
            })?;
        self.running = Some(RunningDns {
            listen,
            stop,
            thread,
        });
        Ok(())
    }

    /// Stops the responder and waits until its sockets are closed (its runtime dropped).
    fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
            let _ = running.thread.join();
        }
    }
}

/// SIGHUP reloads; SIGTERM (systemd, kill) or SIGINT (Ctrl-C) stops.
struct Signals {
    hangup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Needs the runtime that polls them.
    fn new() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            hangup: signal(SignalKind::hangup()).expect("SIGHUP handler"),
            term: signal(SignalKind::terminate()).expect("SIGTERM handler"),
            int: signal(SignalKind::interrupt()).expect("SIGINT handler"),
        }
    }

    /// Whether the signal received asks for a reload (else it asks to stop).
    async fn reload(&mut self) -> bool {
        tokio::select! {
            _ = self.hangup.recv() => true,
            _ = self.term.recv() => false,
            _ = self.int.recv() => false,
        }
    }
}
