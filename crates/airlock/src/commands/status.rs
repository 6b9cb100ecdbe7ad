use std::io::Write;

use std::time::Duration;

use airlock_core::net::{Http, HttpOptions, Url};
use airlock_core::proxy::Status;
use airlock_core::site::Site;

use crate::cli::StatusArgs;
use crate::printer::Printer;

pub fn run(site: &Site, args: StatusArgs, printer: Printer) -> anyhow::Result<()> {
    let base = args
        .url
        .unwrap_or_else(|| site.config.site.public_url.clone());
    let url = Url::parse(&format!("{}/status.json", base.trim_end_matches('/')))
        .map_err(|e| anyhow::anyhow!("{base} is not a URL: {e}"))?;
    let http = Http::new(HttpOptions {
        timeout: Duration::from_secs(10),
        retries: 0,
        ..HttpOptions::default()
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let body = runtime
        .block_on(http.get_small(&url, 16 << 20))
        .map_err(|e| anyhow::anyhow!("cannot ask the server at {base}: {e} (is `airlock serve` running? --url names another)"))?
        .ok_or_else(|| anyhow::anyhow!("{url} is not found: is that an airlock server?"))?;
    if args.json {
        writeln!(printer.output(), "{}", String::from_utf8_lossy(&body))?;
        return Ok(());
    }
    let status: Status = serde_json::from_slice(&body)
        .map_err(|e| anyhow::anyhow!("{url} is not airlock's status: {e}"))?;
    if status.routes.is_empty() {
        writeln!(
            printer.output(),
            "no upstream names are routed (mirror an upstream by name, or add [[proxy.route]]s)"
        )?;
        return Ok(());
    }
    writeln!(
        printer.output(),
        "{:<40} {:<20} {:>8} {:>8} {:>8}",
        "upstream",
        "served from",
        "hits",
        "pulled",
        "misses"
    )?;
    for route in &status.routes {
        writeln!(
            printer.output(),
            "{:<40} {:<20} {:>8} {:>8} {:>8}",
            format!("http://{}{}/", route.host, route.path),
            format!("{}/", route.to),
            route.hits,
            route.pulled,
            route.misses
        )?;
        for miss in &route.recent_misses {
            writeln!(printer.output(), "    missing: http://{}{miss}", route.host)?;
        }
    }
    Ok(())
}
