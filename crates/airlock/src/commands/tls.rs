use std::io::Write;

use airlock_core::site::Site;

use crate::cli::TlsCommand;
use crate::printer::Printer;

pub fn run(site: &Site, command: TlsCommand, printer: Printer) -> anyhow::Result<()> {
    let TlsCommand::Init { names: extra } = command;
    // Certificate names are bare: no port, no IPv6 brackets.
    let host = |url: &str| {
        airlock_core::config::url_host(url)
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
    };
    let mut names: Vec<String> = Vec::new();
    let tls = site.config.site.tls.as_ref();
    let candidates = tls
        .and_then(|t| host(&t.public_url))
        .into_iter()
        .chain(host(&site.config.site.public_url))
        .chain(extra)
        .chain(["localhost", "127.0.0.1", "::1"].map(String::from))
        // The upstream names DNS may point here (`airlock dns config`), so that HTTPS for
        // them works too once clients trust the site CA; the snap store's in any case (snapd
        // knows its store by that name only), for when [dns] names adds it.
        .chain(site.config.overridden_names())
        .chain([airlock_core::config::SNAP_STORE_HOST.to_string()]);
    for name in candidates {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let dir = site
        .config
        .path
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("tls");
    let files = airlock_core::tls::init(&dir, &names)?;
    writeln!(
        printer.status(),
        "server certificate for {}: {}",
        names.join(", "),
        files.cert.display()
    )?;
    if files.new_ca {
        writeln!(
            printer.status(),
            "new site CA: {} (clients trust it: see airlock snap client-config)",
            files.ca_cert.display()
        )?;
    } else {
        writeln!(
            printer.status(),
            "site CA kept: {}",
            files.ca_cert.display()
        )?;
    }
    if tls.is_none() {
        writeln!(
            printer.status(),
            "add to [site] in {}, then restart airlock serve:\n  tls_cert = \"tls/server.pem\"\n  tls_key = \"tls/server.key\"\n  tls_listen = \"0.0.0.0:8443\"",
            site.config.path.display()
        )?;
    }
    Ok(())
}
