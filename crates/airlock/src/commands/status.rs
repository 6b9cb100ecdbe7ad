//! `airlock status`: the site's status as the running server has it (its /status.json), or,
//! when no server answers, as the data folder has it (the same library function).

use airlock_core::status::when;
use std::io::Write;
use std::time::Duration;

use airlock_core::net::{Http, HttpOptions, Url};
use airlock_core::site::Site;
use airlock_core::status::{SiteStatus, Source, human_duration};
use airlock_core::util::human_bytes;
use anyhow::Context;

use crate::cli::StatusArgs;
use crate::printer::Printer;

pub fn run(site: &Site, args: StatusArgs, printer: Printer) -> anyhow::Result<()> {
    let base = args
        .url
        .clone()
        .unwrap_or_else(|| site.config.site.public_url.clone());
    let (status, body) = match from_server(&base)? {
        Some((status, body)) => (status, Some(body)),
        None => (airlock_core::status::read(site), None),
    };
    if args.json {
        let text = match body {
            Some(body) => String::from_utf8_lossy(&body).into_owned(),
            None => serde_json::to_string(&status)?,
        };
        writeln!(printer.output(), "{text}")?;
        return Ok(());
    }
    let mut out = printer.output();
    writeln!(out, "{}", status.headline())?;
    match status.source {
        Source::Server => writeln!(out, "(as the server at {base} has it)")?,
        Source::DataFolder => writeln!(
            out,
            "(no server answers at {base}: as the data folder {} has it)",
            site.data_dir().display()
        )?,
    }
    write!(out, "{}", summary(&status))?;
    Ok(())
}

/// The server's status, or none when nothing listens there; an answer that is not airlock's
/// status is an error.
fn from_server(base: &str) -> anyhow::Result<Option<(SiteStatus, Vec<u8>)>> {
    let url = Url::parse(&format!("{}/status.json", base.trim_end_matches('/')))
        .with_context(|| format!("{base} is not a URL"))?;
    let http = Http::new(HttpOptions {
        timeout: Duration::from_secs(10),
        retries: 0,
        ..HttpOptions::default()
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let body = match runtime.block_on(http.get_small(&url, 64 << 20)) {
        Ok(Some(body)) => body,
        Ok(None) => {
            anyhow::bail!("{url} is not found: is that an airlock server? (--url names another)")
        }
        Err(e) => {
            // Nothing listening is the normal case on a machine that only syncs; anything
            // else (a timeout, a reset, TLS) is a server in trouble, which the operator must
            // hear about before reading the data folder's figures instead.
            let chain = airlock_core::hint::Chain(&e);
            if refused(&e) {
                tracing::debug!("no server at {base}: {chain}");
            } else {
                tracing::warn!("the server at {base} did not answer: {chain}");
            }
            return Ok(None);
        }
    };
    let status =
        serde_json::from_slice(&body).with_context(|| format!("{url} is not airlock's status"))?;
    Ok(Some((status, body.to_vec())))
}

/// Whether the connection was refused (no server listens there).
fn refused(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    })
}

/// Everything after the health line, section by section.
fn summary(status: &SiteStatus) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if status.health.problems.len() > 1 {
        let _ = writeln!(out, "\nproblems:");
        for p in &status.health.problems {
            let _ = writeln!(
                out,
                "  {:<8}{}\n          {}",
                p.level.as_str(),
                p.what,
                p.action
            );
        }
    }
    let _ = writeln!(out, "\napt:");
    if status.apt.is_empty() {
        let _ = writeln!(out, "  nothing published");
    }
    for c in &status.apt {
        let from = c
            .origin
            .upstream
            .clone()
            .or_else(|| c.origin.bundle.as_ref().map(|b| format!("bundle {}", b.id)))
            .unwrap_or_else(|| "local".into());
        let _ = writeln!(
            out,
            "  {} ({}, {from}): published {}, last sync {}, last import {}, {}",
            c.name,
            c.kind.as_str(),
            when(c.published),
            when(c.last_sync),
            when(c.last_import),
            human_bytes(c.bytes)
        );
        for s in &c.suites {
            let packages: Vec<String> = s
                .packages
                .iter()
                .map(|p| format!("{} {}/{}", p.packages, p.component, p.architecture))
                .collect();
            let valid = match (s.valid_until, s.seconds_left) {
                (Some(until), Some(left)) if left > 0 => {
                    format!(
                        "valid until {} (in {})",
                        when(Some(until)),
                        human_duration(left)
                    )
                }
                (Some(until), Some(_)) => format!("EXPIRED {}", when(Some(until))),
                _ => "no Valid-Until".into(),
            };
            let _ = writeln!(
                out,
                "    {:<16} {:<36} {valid}",
                s.suite,
                packages.join(", ")
            );
        }
    }
    if let Some(stream) = &status.images {
        let _ = writeln!(
            out,
            "\nimages: published {}, last sync {}, last import {}, {}",
            when(stream.published),
            when(stream.last_sync),
            when(stream.last_import),
            human_bytes(stream.bytes)
        );
        for p in &stream.products {
            let _ = writeln!(
                out,
                "  {:<10} {} {} {} {:<12} {} ({} versions)",
                p.kind.as_str(),
                p.os,
                p.release,
                p.arch,
                p.subarch.as_deref().unwrap_or(""),
                p.newest_version.as_deref().unwrap_or("-"),
                p.versions
            );
        }
    }
    if let Some(store) = &status.snaps {
        let _ = writeln!(out, "\nsnaps: {}", human_bytes(store.bytes));
        for s in &store.snaps {
            for c in &s.channels {
                let _ = writeln!(
                    out,
                    "  {:<24} {:<20} {:<8} revision {} ({})",
                    s.name, c.channel, c.architecture, c.revision, c.version
                );
            }
        }
    }
    let st = &status.storage;
    let _ = writeln!(
        out,
        "\nstorage: store {} in {} blobs{}; disk {} free of {}; next sync needs {}",
        human_bytes(st.store_bytes),
        st.store_blobs,
        match st.store_dropped_blobs {
            0 => String::new(),
            n => format!(" ({n} more in the bucket only)"),
        },
        st.disk_free_bytes.map_or("?".into(), human_bytes),
        st.disk_total_bytes.map_or("?".into(), human_bytes),
        st.next_sync_bytes
            .map_or("(no update on record)".into(), human_bytes)
    );
    match &status.verify {
        None => {
            let _ = writeln!(out, "last verify: none on record");
        }
        Some(run) => {
            let failed: Vec<String> = run
                .failed_by_area()
                .iter()
                .map(|(a, n)| format!("{a} {n}"))
                .collect();
            let _ = writeln!(
                out,
                "last verify: {} {} ({}, {} areas{}{})",
                if run.passed { "passed" } else { "FAILED" },
                when(Some(run.at)),
                run.mode.as_str(),
                run.areas.len(),
                if run.only.is_empty() {
                    String::new()
                } else {
                    format!(", only {}", run.only.join(" "))
                },
                if failed.is_empty() {
                    String::new()
                } else {
                    format!("; failed: {}", failed.join(", "))
                }
            );
        }
    }
    if !status.routes.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<40} {:<20} {:>8} {:>8} {:>8}",
            "upstream", "served from", "hits", "pulled", "misses"
        );
        for route in &status.routes {
            let _ = writeln!(
                out,
                "{:<40} {:<20} {:>8} {:>8} {:>8}",
                format!("http://{}{}/", route.host, route.path),
                format!("{}/", route.to),
                route.hits,
                route.pulled,
                route.misses
            );
            for miss in &route.recent_misses {
                let _ = writeln!(out, "    missing: http://{}{miss}", route.host);
            }
        }
    }
    let requests: Vec<String> = status
        .http
        .requests
        .iter()
        .map(|(area, classes)| format!("{area} {}", classes.values().sum::<u64>()))
        .collect();
    let _ = writeln!(
        out,
        "\nrequests since {}: {}",
        when(status.http.since),
        requests.join(", ")
    );
    out
}
