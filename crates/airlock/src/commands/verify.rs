use std::io::Write;

use airlock_core::hint::Chain;
use airlock_core::report::Reporter;

use airlock_core::verify::Depth;
use airlock_core::verify::Report;

use crate::cli::VerifyArgs;
use crate::printer::Printer;

/// `verify --json`: the report, with whether everything passed.
#[derive(serde::Serialize)]
struct Verified<'r> {
    passed: bool,
    #[serde(flatten)]
    report: &'r Report,
}

/// Exit status 0 when every check passed, 1 when some failed, 2 when verify could not run.
pub fn run(
    config: &std::path::Path,
    args: VerifyArgs,
    reporter: &dyn Reporter,
    printer: Printer,
) -> anyhow::Result<()> {
    let site = match super::open(config) {
        Ok(site) => site,
        Err(e) => {
            eprintln!("error: verify could not run: {e:#}");
            std::process::exit(2);
        }
    };
    let result: anyhow::Result<Report> = if args.offline {
        Ok(airlock_core::verify::offline(&site, reporter))
    } else {
        let base = args
            .url
            .clone()
            .unwrap_or_else(|| site.config.site.public_url.clone());
        let depth = Depth {
            full: args.full,
            sample: args.sample,
            horizon: jiff::SignedDuration::from_hours(24 * i64::from(args.horizon_days)),
        };
        super::runtime().map_err(Into::into).and_then(|rt| {
            rt.block_on(airlock_core::verify::online(
                &site,
                &base,
                depth,
                args.resolver,
                &args.what,
                reporter,
            ))
            .map_err(Into::into)
        })
    };
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: verify could not run: {e:#}");
            std::process::exit(2);
        }
    };
    if args.json {
        printer.json(&Verified {
            passed: report.passed(),
            report: &report,
        })?;
    } else {
        for area in &report.areas {
            writeln!(
                printer.status(),
                "{:<24} {:>8} checked  {}",
                area.area,
                area.checked,
                if area.failed == 0 {
                    "ok".to_string()
                } else {
                    format!("{} FAILED", area.failed)
                }
            )?;
        }
        print_findings("WARNING", &report.warnings, printer)?;
        print_findings("FAILED", &report.failures, printer)?;
        let mut last = if report.passed() {
            printer.status()
        } else {
            printer.output()
        };
        writeln!(
            last,
            "{}",
            if report.passed() {
                "all checks passed".to_string()
            } else {
                format!("{} checks failed", report.failures.len())
            }
        )?;
    }
    if args.client_config {
        let base = args.url.as_deref().unwrap_or(&site.config.site.public_url);
        write!(printer.output(), "{}", runbook(&site, base, &report))?;
    }
    if !report.passed() {
        std::process::exit(1);
    }
    Ok(())
}

/// What an operator's runbook needs: where clients go, with which key, and what to set on
/// them, MAAS and DNS; all of it from what was just checked.
fn runbook(site: &airlock_core::site::Site, base: &str, report: &Report) -> String {
    use std::fmt::Write;
    let config = &site.config;
    let base = base.trim_end_matches('/');
    let mut out = String::new();
    let verdict = if report.passed() {
        "every check passed".to_string()
    } else {
        format!("{} checks FAILED: fix those first", report.failures.len())
    };
    let _ = writeln!(
        out,
        "\n# Runbook for this airlock site, as `airlock verify` found it on {} ({verdict}).",
        jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(out, "\n## Server\nHTTP: {base}/");
    if let Some(tls) = &config.site.tls {
        let _ = writeln!(
            out,
            "HTTPS: {}/ (clients trust the site CA: `airlock snap client-config` prints how)",
            tls.public_url
        );
    }
    match site.signing_key() {
        Ok(key) => {
            let _ = writeln!(
                out,
                "Site key: {} ({base}/airlock.gpg binary, for apt signed-by= and MAAS; {base}/airlock.asc armored)",
                key.fingerprint()
            );
        }
        Err(e) => {
            let _ = writeln!(out, "Site key: cannot be read: {}", Chain(&e));
        }
    }

    let apt = airlock_core::status::read(site).apt;
    if apt.iter().any(|content| !content.suites.is_empty()) {
        let _ = writeln!(
            out,
            "\n## apt (on each machine)\nsudo curl -fsSL {base}/airlock.gpg -o /etc/apt/keyrings/airlock.gpg"
        );
    }
    for content in &apt {
        let keyring = if content.signed_by_upstream {
            // A verbatim mirror keeps the upstream's signature: clients keep its key.
            config
                .mirror(&content.name)
                .and_then(|m| m.keyring.first())
                .map_or("the upstream's keyring".into(), |k| k.display().to_string())
        } else {
            "/etc/apt/keyrings/airlock.gpg".to_string()
        };
        let mut suites: Vec<_> = content.suites.iter().collect();
        suites.sort_by(|a, b| a.suite.cmp(&b.suite));
        for s in suites {
            let _ = writeln!(
                out,
                "deb [signed-by={keyring}] {base}/apt/{} {} {}",
                content.name,
                s.suite,
                s.components.join(" ")
            );
        }
    }

    if !config.proxy.routes.is_empty() {
        let _ = writeln!(
            out,
            "\n## Upstream names answered here (sources.list entries naming them keep working; a\n\
             ## filtered mirror is signed by the site key: signed-by= it)"
        );
        for r in &config.proxy.routes {
            let _ = writeln!(out, "http://{}{}/ -> {base}{}/", r.host, r.path, r.to);
        }
        let addresses: Vec<String> = config.dns.addresses.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(
            out,
            "DNS: {} -> {}\n  (the resolver's config: airlock dns config --format dnsmasq|unbound|bind-rpz|maas)\n\
             Or, without DNS: Acquire::http::Proxy \"{base}/\"; in /etc/apt/apt.conf.d/",
            config.overridden_names().join(", "),
            if addresses.is_empty() {
                "[dns] address is not set".to_string()
            } else {
                addresses.join(", ")
            }
        );
    }

    let _ = writeln!(out, "\n## MAAS");
    if config.images.is_some() {
        let _ = writeln!(
            out,
            "Boot images: {base}/images/ (the commands: airlock maas boot-source)"
        );
    }
    // The archive MAAS installs machines from: a mirror, or a combined suite built on one.
    let archive = config
        .apt
        .publish
        .first()
        .map(|p| p.name.as_str())
        .or_else(|| config.apt.mirrors.first().map(|m| m.name.as_str()));
    if let Some(name) = archive {
        let _ = writeln!(
            out,
            "Package archive (Settings > Package repos, \"Ubuntu archive\"): {base}/apt/{name}/"
        );
    }
    if site.data_dir().join("state/snaps/catalog.json").exists() {
        let _ = writeln!(
            out,
            "\n## Snaps\nStore: {}/ (snapd's settings: airlock snap client-config)",
            config
                .site
                .tls
                .as_ref()
                .map_or(base, |t| t.public_url.as_str())
        );
    }
    out
}

/// Each finding with what was expected and what was found (verify and demo print them alike).
pub(super) fn print_findings(
    label: &str,
    findings: &[airlock_core::verify::Failure],
    printer: Printer,
) -> std::io::Result<()> {
    for f in findings {
        writeln!(
            printer.output(),
            "{label} {}: {}\n  expected {}\n  got      {}",
            f.area,
            f.what,
            f.expected,
            f.got
        )?;
    }
    Ok(())
}
