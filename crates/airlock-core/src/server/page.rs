//! The HTML pages: `/` (what is served and how to use it) and folder listings.

use crate::status::when;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use super::ServerState;
use crate::status::{FrontendStatus, Level, SiteStatus, human_duration};
use crate::util::human_bytes;

pub async fn home(State(state): State<ServerState>) -> Response {
    let status = state.status().await;
    let page = render_home(&status, &state.inner.fingerprint);
    let mut response = Html(page).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Inline, so the page needs nothing from another host; readable from phone width up, and
/// printable.
const STYLE: &str = "\
:root{--ok:#1b7f3b;--warn:#9a6700;--err:#b42318;--line:#d0d7de;--soft:#f6f8fa}\
*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;line-height:1.45;color:#1f2328;max-width:72em;margin:0 auto;padding:1em}\
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid var(--line);padding-bottom:.2em}\
h3{font-size:1em;margin:1em 0 .3em}\
.meta{color:#59636e;font-size:.9em}\
.health{border:2px solid;border-radius:6px;padding:.8em 1em;margin:1em 0}\
.health h2{border:0;margin:0 0 .3em;padding:0}\
.healthy{border-color:var(--ok);background:#eefbf1}.warning{border-color:var(--warn);background:#fff8e5}.error{border-color:var(--err);background:#fdecea}\
.health ul{margin:.3em 0 0;padding-left:1.2em}.health li{margin:.3em 0}\
.tag{display:inline-block;font-size:.8em;font-weight:600;padding:0 .45em;border-radius:3px;color:#fff;white-space:nowrap}\
.tag.healthy{background:var(--ok)}.tag.warning{background:var(--warn)}.tag.error{background:var(--err)}\
.glance{display:grid;grid-template-columns:repeat(auto-fit,minmax(8.5em,1fr));gap:.5em;margin:1em 0}\
.glance div{background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:.5em .7em}\
.glance b{display:block;font-size:1.3em}.glance small{display:block;color:#59636e}\
.scroll{overflow-x:auto;margin:.3em 0}\
table{border-collapse:collapse;min-width:100%}\
th,td{padding:.3em .6em;text-align:left;vertical-align:top;border-bottom:1px solid var(--line)}\
th{background:var(--soft);font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
pre{background:var(--soft);padding:.6em;overflow-x:auto;white-space:pre}\
code{font-size:.92em;word-break:break-all}\
section{break-inside:avoid-page}li{overflow-wrap:anywhere}\
@media (max-width:40em){body{padding:.6em}h1{font-size:1.3em}\
table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;min-width:0}\
table.stack tr:first-child{display:none}table.stack tr{border-bottom:1px solid var(--line);padding:.3em 0}\
table.stack td{border:0;padding:.1em .2em;text-align:left}table.stack td:empty{display:none}\
table.stack td::before{content:attr(data-label) \": \";font-weight:600;color:#59636e}}\
@media print{body{max-width:none;color:#000}a{color:#000;text-decoration:none}.scroll{overflow:visible}pre{white-space:pre-wrap}\
.health,.glance div,th{background:none!important}h2{break-after:avoid}}";

/// The page at `/`: health first, then every content, the routes, the last verify, and how
/// clients use the site.
pub fn render_home(status: &SiteStatus, fingerprint: &str) -> String {
    let mut page = String::with_capacity(16 << 10);
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>airlock: {}</title><style>{STYLE}</style></head><body>\
         <header><h1>airlock</h1><p class=\"meta\">version {} · {} · as of {} · \
         <a href=\"/status.json\">status.json</a> · <a href=\"/metrics\">metrics</a></p></header>",
        status.health.level.as_str(),
        escape(&status.version),
        status
            .server
            .as_ref()
            .map_or("data folder".to_string(), |s| format!(
                "server started {}",
                when(Some(s.started))
            )),
        when(Some(status.generated)),
    );
    health(&mut page, status);
    glance(&mut page, status);
    apt(&mut page, status);
    images(&mut page, status);
    snaps(&mut page, status);
    routes(&mut page, status);
    verify(&mut page, status);
    storage(&mut page, status);
    clients(&mut page, status, fingerprint);
    page.push_str("</body></html>\n");
    page
}

/// A frontend's page at `/`: the push it serves, its disk cache, what it answered, how
/// clients use it.
pub fn render_frontend(status: &FrontendStatus) -> String {
    let mut page = String::with_capacity(8 << 10);
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>airlock frontend</title><style>{STYLE}</style></head><body>\
         <header><h1>airlock frontend</h1><p class=\"meta\">version {} · serving what was \
         pushed to <code>{}</code> · server started {} · <a href=\"/status.json\">status.json</a> \
         · <a href=\"/metrics\">metrics</a></p></header>",
        escape(&status.version),
        escape(&status.bucket),
        when(Some(status.server.started)),
    );
    page.push_str("<section id=\"served\"><h2>Served</h2>");
    match &status.served {
        None => page.push_str(
            "<p>Nothing was pushed yet: run <code>airlock push</code> on the writer. Until then every request is answered 503.</p>",
        ),
        Some(served) => {
            let _ = write!(
                page,
                "<p>Push generation {}, switched {}; the bucket last answered {}.</p>",
                served.generation,
                escape(&when(Some(served.pushed))),
                escape(&when(status.refreshed))
            );
            let rows: Vec<Vec<String>> = served
                .trees
                .iter()
                .map(|(tree, id)| {
                    vec![
                        format!("<a href=\"/{0}/\">/{0}/</a>", escape(tree)),
                        format!("<code>{}</code>", escape(id)),
                    ]
                })
                .collect();
            table(&mut page, &["Tree", "ID"], &[], &rows);
        }
    }
    page.push_str("</section><section id=\"cache\"><h2>Large files</h2>");
    let large = &status.large_blobs;
    let _ = write!(
        page,
        "<p>{} answered from the disk cache, {} from the bucket ({} read from it).</p>",
        large.from_cache,
        large.from_bucket,
        human_bytes(large.bucket_bytes)
    );
    match &status.cache {
        Some(cache) => {
            let _ = write!(
                page,
                "<p>Disk cache <code>{}</code>: {} files, {} of {}.</p>",
                escape(&cache.dir),
                cache.blobs,
                human_bytes(cache.bytes),
                human_bytes(cache.limit)
            );
        }
        None => page.push_str(
            "<p>No disk cache: set <code>cache_dir</code> in <code>[storage]</code> to keep large files.</p>",
        ),
    }
    page.push_str("</section><section id=\"requests\"><h2>Requests since start</h2>");
    let rows: Vec<Vec<String>> = status
        .http
        .requests
        .iter()
        .flat_map(|(area, classes)| {
            classes
                .iter()
                .map(move |(class, n)| vec![escape(area), escape(class), n.to_string()])
        })
        .collect();
    table(
        &mut page,
        &["Area", "Status", "Requests"],
        &["Requests"],
        &rows,
    );
    let _ = writeln!(
        page,
        "</section><section id=\"clients\"><h2>Clients</h2><p>The site's key, as the writer \
         pushed it: <a href=\"/airlock.gpg\">{0}/airlock.gpg</a> (armored: \
         <a href=\"/airlock.asc\">{0}/airlock.asc</a>).</p></section></body></html>",
        escape(&status.server.public_url)
    );
    page
}

fn tag(level: Level, text: &str) -> String {
    format!(
        "<span class=\"tag {}\">{}</span>",
        level.as_str(),
        escape(text)
    )
}

fn health(page: &mut String, status: &SiteStatus) {
    let level = status.health.level;
    let title = match level {
        Level::Healthy => "Healthy",
        Level::Warning => "Needs attention soon",
        Level::Error => "Needs attention now",
    };
    let _ = write!(
        page,
        "<section id=\"health\" class=\"health {}\"><h2>{title}</h2>",
        level.as_str()
    );
    if status.health.problems.is_empty() {
        page.push_str(
            "<p>Everything published is valid for longer than a publish interval, the last verify passed, and the disk has room for the next sync.</p>",
        );
    } else {
        page.push_str("<ul>");
        for p in &status.health.problems {
            let _ = write!(
                page,
                "<li>{} {}<br><b>What to do:</b> {}</li>",
                tag(p.level, p.level.as_str()),
                escape(&p.what),
                escape(&p.action)
            );
        }
        page.push_str("</ul>");
    }
    page.push_str("</section>");
}

fn glance(page: &mut String, status: &SiteStatus) {
    let suites: usize = status.apt.iter().map(|c| c.suites.len()).sum();
    let packages: u64 = status
        .apt
        .iter()
        .flat_map(|c| &c.suites)
        .flat_map(|s| &s.packages)
        .map(|p| p.packages)
        .sum();
    let products = status.images.as_ref().map_or(0, |i| i.products.len());
    let snaps = status.snaps.as_ref().map_or(0, |s| s.snaps.len());
    let verify = match &status.verify {
        None => ("never".to_string(), "run airlock verify".to_string()),
        Some(run) => (
            if run.passed { "passed" } else { "FAILED" }.to_string(),
            when(Some(run.at)),
        ),
    };
    let storage = &status.storage;
    let free = storage
        .disk_free_bytes
        .map_or("unknown".to_string(), human_bytes);
    let next = storage
        .next_sync_bytes
        .map_or(String::new(), |b| format!("next sync {}", human_bytes(b)));
    let tiles = [
        (
            "apt trees",
            status.apt.len().to_string(),
            format!("{suites} suites"),
        ),
        ("packages", packages.to_string(), String::new()),
        ("image products", products.to_string(), String::new()),
        ("snaps", snaps.to_string(), String::new()),
        (
            "store",
            human_bytes(storage.store_bytes),
            match storage.store_dropped_blobs {
                0 => format!("{} blobs", storage.store_blobs),
                n => format!("{} blobs, {n} in the bucket only", storage.store_blobs),
            },
        ),
        ("disk free", free, next),
        ("last verify", verify.0, verify.1),
    ];
    page.push_str("<div class=\"glance\">");
    for (label, value, note) in tiles {
        let _ = write!(
            page,
            "<div>{}<b>{}</b><small>{}</small></div>",
            escape(label),
            escape(&value),
            escape(&note)
        );
    }
    page.push_str("</div>");
}

fn origin_text(origin: &crate::status::Origin) -> String {
    let mut parts = Vec::new();
    if let Some(url) = &origin.upstream {
        parts.push(format!("upstream {url}"));
    }
    if let Some(bundle) = &origin.bundle {
        parts.push(format!(
            "bundle {} from {}",
            bundle.id,
            bundle.exporter.as_deref().unwrap_or("an unknown site")
        ));
    }
    if !origin.inputs.is_empty() {
        parts.push(format!("combines {}", origin.inputs.join(", ")));
    }
    if parts.is_empty() {
        "packages included here".to_string()
    } else {
        parts.join("; ")
    }
}

fn valid_until(suite: &crate::status::SuiteStatus) -> String {
    let (Some(until), Some(left), Some(level)) = (
        suite.valid_until,
        suite.seconds_left,
        crate::status::validity(suite),
    ) else {
        return "no Valid-Until".to_string();
    };
    let countdown = if left <= 0 {
        format!("passed {} ago", human_duration(left))
    } else {
        format!("in {}", human_duration(left))
    };
    format!(
        "{}<br>{}",
        tag(level, &countdown),
        escape(&when(Some(until)))
    )
}

/// A table; one with more than two columns of text turns into labelled blocks at phone width
/// (each cell says its column). `rows` hold HTML, escaped by the caller; columns named in
/// `numeric` align right.
fn table(page: &mut String, head: &[&str], numeric: &[&str], rows: &[Vec<String>]) {
    let stack = head.len() - numeric.len() > 2;
    let _ = write!(
        page,
        "<div class=\"scroll\"><table{}><tr>",
        if stack { " class=\"stack\"" } else { "" }
    );
    for name in head {
        let _ = write!(page, "<th>{}</th>", escape(name));
    }
    page.push_str("</tr>");
    for row in rows {
        page.push_str("<tr>");
        for (name, cell) in head.iter().zip(row) {
            let class = if numeric.contains(name) {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(
                page,
                "<td data-label=\"{}\"{class}>{cell}</td>",
                escape(name)
            );
        }
        page.push_str("</tr>");
    }
    page.push_str("</table></div>");
}

fn apt(page: &mut String, status: &SiteStatus) {
    page.push_str("<section id=\"apt\"><h2>apt repositories and mirrors</h2>");
    if status.apt.is_empty() {
        page.push_str("<p>Nothing is published yet: <code>airlock apt include</code>, then <code>airlock publish</code>; or <code>airlock sync</code> for mirrors.</p></section>");
        return;
    }
    for c in &status.apt {
        let _ = write!(
            page,
            "<h3><a href=\"/apt/{0}/\">{0}</a> <span class=\"meta\">{1}</span></h3>\
             <p class=\"meta\">{2} · published {3} · last sync {4} · last import {5} · {6} files, {7}</p>",
            escape(&c.name),
            c.kind.as_str(),
            escape(&origin_text(&c.origin)),
            when(c.published),
            when(c.last_sync),
            when(c.last_import),
            c.files,
            human_bytes(c.bytes)
        );
        let rows: Vec<Vec<String>> = c
            .suites
            .iter()
            .map(|s| {
                let packages: Vec<String> = s
                    .packages
                    .iter()
                    .map(|p| format!("{} {}/{}", p.packages, p.component, p.architecture))
                    .collect();
                vec![
                    format!(
                        "<a href=\"/apt/{0}/dists/{1}/\">{1}</a>",
                        escape(&c.name),
                        escape(&s.suite)
                    ),
                    valid_until(s),
                    escape(&packages.join(", ")),
                    escape(&s.components.join(" ")),
                    when(s.date),
                ]
            })
            .collect();
        table(
            page,
            &["suite", "Valid-Until", "packages", "components", "released"],
            &[],
            &rows,
        );
    }
    page.push_str("</section>");
}

fn images(page: &mut String, status: &SiteStatus) {
    page.push_str("<section id=\"images\"><h2>Boot images</h2>");
    let Some(stream) = &status.images else {
        page.push_str("<p>No image stream is published: configure <code>[images]</code> and run <code>airlock sync</code>, or import a bundle that carries one.</p></section>");
        return;
    };
    let _ = write!(
        page,
        "<p class=\"meta\">{} · published {} · last sync {} · last import {} · {} files, {} · MAAS boot source <a href=\"/images/streams/v1/index.sjson\">/images/streams/v1/index.sjson</a></p>",
        escape(&origin_text(&stream.origin)),
        when(stream.published),
        when(stream.last_sync),
        when(stream.last_import),
        stream.files,
        human_bytes(stream.bytes)
    );
    let rows: Vec<Vec<String>> = stream
        .products
        .iter()
        .map(|p| {
            vec![
                p.kind.as_str().to_string(),
                escape(&p.os),
                escape(&p.release),
                escape(&p.arch),
                escape(p.subarch.as_deref().unwrap_or("")),
                escape(p.newest_version.as_deref().unwrap_or("")),
                p.versions.to_string(),
                human_bytes(p.bytes),
            ]
        })
        .collect();
    table(
        page,
        &[
            "kind",
            "os",
            "release",
            "arch",
            "subarch",
            "newest version",
            "versions",
            "size",
        ],
        &["versions", "size"],
        &rows,
    );
    page.push_str("</section>");
}

fn snaps(page: &mut String, status: &SiteStatus) {
    page.push_str("<section id=\"snaps\"><h2>Snaps</h2>");
    let Some(store) = &status.snaps else {
        page.push_str("<p>No snap is in the store: <code>airlock snap import</code> or <code>airlock snap fetch</code>.</p></section>");
        return;
    };
    let _ = write!(
        page,
        "<p class=\"meta\">{} snaps, {} · catalog changed {}</p>",
        store.snaps.len(),
        human_bytes(store.bytes),
        when(store.last_import)
    );
    let mut rows = Vec::new();
    for s in &store.snaps {
        let kept: Vec<String> = s.revisions.iter().map(u64::to_string).collect();
        let row = |channel: &str, arch: &str, revision: String, version: &str| {
            vec![
                escape(&s.name),
                escape(channel),
                escape(arch),
                revision,
                escape(version),
                kept.join(", "),
                escape(&s.publisher),
            ]
        };
        if s.channels.is_empty() {
            rows.push(row("not released", "", String::new(), ""));
        }
        for c in &s.channels {
            rows.push(row(
                &c.channel,
                &c.architecture,
                c.revision.to_string(),
                &c.version,
            ));
        }
    }
    table(
        page,
        &[
            "snap",
            "channel",
            "arch",
            "revision",
            "version",
            "revisions kept",
            "publisher",
        ],
        &["revision"],
        &rows,
    );
    page.push_str("</section>");
}

fn routes(page: &mut String, status: &SiteStatus) {
    page.push_str("<section id=\"routes\"><h2>Upstream names</h2>");
    if status.routes.is_empty() {
        page.push_str("<p>No upstream name is answered here (mirror an upstream by name, or add <code>[[proxy.route]]</code>s).</p>");
    } else {
        page.push_str(
            "<p>Requests for these names (DNS pointed here, or clients with <code>Acquire::http::Proxy</code> set to this server) are answered from the local trees.</p>",
        );
        let rows: Vec<Vec<String>> = status
            .routes
            .iter()
            .map(|r| {
                let recent: Vec<String> = r.recent_misses.iter().rev().take(3).cloned().collect();
                vec![
                    format!("http://{}{}/", escape(&r.host), escape(&r.path)),
                    format!("<a href=\"{0}/\">{0}/</a>", escape(&r.to)),
                    r.hits.to_string(),
                    r.misses.to_string(),
                    r.pulled.to_string(),
                    r.pull_refused.to_string(),
                    format!("<code>{}</code>", escape(&recent.join(" "))),
                ]
            })
            .collect();
        table(
            page,
            &[
                "upstream",
                "served from",
                "hits",
                "misses",
                "pulled",
                "pull refused",
                "recent misses",
            ],
            &["hits", "misses", "pulled", "pull refused"],
            &rows,
        );
    }
    let http = &status.http;
    let _ = write!(page, "<h3>Requests since {}</h3>", when(http.since));
    let classes = ["2xx", "3xx", "4xx", "5xx"];
    let rows: Vec<Vec<String>> = http
        .requests
        .iter()
        .map(|(area, counts)| {
            let mut row = vec![escape(area)];
            row.extend(
                classes
                    .iter()
                    .map(|c| counts.get(*c).copied().unwrap_or(0).to_string()),
            );
            row.push(human_bytes(
                http.bytes_served.get(area).copied().unwrap_or(0),
            ));
            row
        })
        .collect();
    table(
        page,
        &["area", "2xx", "3xx", "4xx", "5xx", "bytes"],
        &["2xx", "3xx", "4xx", "5xx", "bytes"],
        &rows,
    );
    let _ = write!(
        page,
        "<p class=\"meta\">Proxy requests refused (not routed, CONNECT not allowed): {}</p></section>",
        http.proxy_refused
    );
}

fn verify(page: &mut String, status: &SiteStatus) {
    page.push_str("<section id=\"verify\"><h2>Last verify</h2>");
    let Some(run) = &status.verify else {
        page.push_str("<p>No <code>airlock verify</code> run is on record: run it (the package's airlock-verify.timer runs it hourly).</p></section>");
        return;
    };
    let verdict = if run.passed {
        tag(Level::Healthy, "passed")
    } else {
        tag(Level::Error, "failed")
    };
    let mode = if run.only.is_empty() {
        run.mode.as_str().to_string()
    } else {
        format!(
            "{}, only {}",
            run.mode.as_str(),
            escape(&run.only.join(" "))
        )
    };
    let _ = write!(
        page,
        "<p>{verdict} {} ({mode}), {} warnings</p>",
        when(Some(run.at)),
        run.warnings.len()
    );
    let rows: Vec<Vec<String>> = run
        .areas
        .iter()
        .map(|a| vec![escape(&a.area), a.checked.to_string(), a.failed.to_string()])
        .collect();
    table(
        page,
        &["area", "checked", "failed"],
        &["checked", "failed"],
        &rows,
    );
    for (label, list) in [("failed", &run.failures), ("warning", &run.warnings)] {
        if list.is_empty() {
            continue;
        }
        page.push_str("<ul>");
        for f in list {
            let _ = write!(
                page,
                "<li>{} {}: {}<br>expected {}<br>got {}</li>",
                escape(label),
                escape(&f.area),
                escape(&f.what),
                escape(&f.expected),
                escape(&f.got)
            );
        }
        page.push_str("</ul>");
    }
    page.push_str("</section>");
}

fn storage(page: &mut String, status: &SiteStatus) {
    let s = &status.storage;
    let bytes = |b: Option<u64>| b.map_or("unknown".to_string(), human_bytes);
    let _ = write!(
        page,
        "<section id=\"storage\"><h2>Storage</h2><div class=\"scroll\"><table>\
         <tr><th>content store</th><td>{} in {} blobs{}</td></tr>\
         <tr><th>disk free</th><td>{} of {}</td></tr>\
         <tr><th>next sync needs</th><td>{}</td></tr></table></div></section>",
        human_bytes(s.store_bytes),
        s.store_blobs,
        match s.store_dropped_blobs {
            0 => String::new(),
            n => format!("; {n} more pushed to the bucket and dropped here"),
        },
        bytes(s.disk_free_bytes),
        bytes(s.disk_total_bytes),
        s.next_sync_bytes
            .map_or("no update on record yet".to_string(), |b| format!(
                "about {} (largest recent updates)",
                human_bytes(b)
            ))
    );
}

fn clients(page: &mut String, status: &SiteStatus, fingerprint: &str) {
    let url = escape(
        status
            .server
            .as_ref()
            .map_or("", |s| s.public_url.trim_end_matches('/')),
    );
    let _ = write!(
        page,
        "<section id=\"clients\"><h2>Using this site</h2>\
         <p>Site key <code>{}</code>: <a href=\"/airlock.gpg\">airlock.gpg</a> (binary, for apt <code>signed-by=</code> and MAAS) \
         or <a href=\"/airlock.asc\">airlock.asc</a> (armored).</p>",
        escape(fingerprint)
    );
    if !status.apt.is_empty() {
        page.push_str("<p>On an apt client:</p><pre>");
        let _ = writeln!(page, "sudo install -d /etc/apt/keyrings");
        let _ = writeln!(
            page,
            "sudo curl -fsSL {url}/airlock.gpg -o /etc/apt/keyrings/airlock.gpg"
        );
        for c in &status.apt {
            let name = escape(&c.name);
            let keyring = if c.signed_by_upstream {
                // The upstream's Release files, as they were signed: the site's key does not
                // verify them.
                let _ = writeln!(
                    page,
                    "# apt/{name} is a verbatim mirror, signed by its upstream's key: install that key as /etc/apt/keyrings/{name}-upstream.gpg"
                );
                format!("/etc/apt/keyrings/{name}-upstream.gpg")
            } else {
                "/etc/apt/keyrings/airlock.gpg".to_string()
            };
            for s in &c.suites {
                let _ = writeln!(
                    page,
                    "echo 'deb [signed-by={keyring}] {url}/apt/{name} {} {}' | sudo tee -a /etc/apt/sources.list.d/airlock.list",
                    escape(&s.suite),
                    escape(&s.components.join(" "))
                );
            }
        }
        page.push_str("sudo apt-get update</pre>");
    }
    if status.images.is_some() {
        let _ = write!(
            page,
            "<p>MAAS: boot source <code>{url}/images/streams/v1/index.sjson</code> with the site key as keyring (<code>airlock maas boot-source</code> prints the commands).</p>"
        );
    }
    if status.snaps.is_some() {
        page.push_str("<p>snapd: <code>airlock snap client-config</code> prints the settings that point it at this store.</p>");
    }
    page.push_str("</section>");
}

/// A plain listing of a published folder.
pub async fn listing(dir: &Path, url_path: &str) -> Response {
    let dir: PathBuf = dir.to_path_buf();
    let entries = tokio::task::spawn_blocking(move || {
        let mut entries: Vec<(String, Option<u64>)> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    return None;
                }
                let meta = std::fs::metadata(e.path()).ok()?;
                Some((name, (!meta.is_dir()).then_some(meta.len())))
            })
            .collect();
        entries.sort();
        entries
    })
    .await
    .unwrap_or_default();
    let title = escape(url_path);
    let mut page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1><pre><a href=\"../\">../</a>\n"
    );
    for (name, size) in entries {
        let href = percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        match size {
            None => {
                let _ = writeln!(page, "<a href=\"{href}/\">{}/</a>", escape(&name));
            }
            Some(size) => {
                let _ = writeln!(page, "<a href=\"{href}\">{}</a> {size}", escape(&name));
            }
        }
    }
    page.push_str("</pre></body></html>\n");
    let mut response = Html(page).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
