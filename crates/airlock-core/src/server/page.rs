//! The HTML pages: `/` (what is served and how to use it) and folder listings.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use super::ServerState;
use crate::apt::deb822;

/// One published suite as its Release file describes it.
#[derive(Debug, Clone)]
pub struct PublishedSuite {
    pub repo: String,
    pub suite: String,
    pub components: String,
    pub architectures: String,
    pub date: String,
}

pub async fn home(State(state): State<ServerState>) -> Response {
    let apt_dir = state.inner.public_dir.join("apt");
    let suites = tokio::task::spawn_blocking(move || published_suites(&apt_dir))
        .await
        .unwrap_or_default();
    let inner = &state.inner;
    let url = escape(&inner.public_url);
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>airlock</title>\
         <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}\
         pre{{background:#f4f4f4;padding:.6em;overflow-x:auto}}td,th{{padding:.2em .8em;text-align:left}}</style>\
         </head><body><h1>airlock</h1>\
         <p>Site key <code>{}</code>: <a href=\"/airlock.gpg\">airlock.gpg</a> (binary, for apt <code>signed-by=</code> and MAAS) \
         or <a href=\"/airlock.asc\">airlock.asc</a> (armored).</p>",
        escape(&inner.fingerprint)
    );
    page.push_str("<h2>apt repositories</h2>");
    if suites.is_empty() {
        page.push_str("<p>Nothing is published yet: <code>airlock apt include</code>, then <code>airlock publish</code>.</p>");
    } else {
        page.push_str("<table><tr><th>repo</th><th>suite</th><th>components</th><th>architectures</th><th>published</th></tr>");
        for s in &suites {
            let _ = write!(
                page,
                "<tr><td><a href=\"/apt/{0}/\">{0}</a></td><td><a href=\"/apt/{0}/dists/{1}/\">{1}</a></td><td>{2}</td><td>{3}</td><td>{4}</td></tr>",
                escape(&s.repo),
                escape(&s.suite),
                escape(&s.components),
                escape(&s.architectures),
                escape(&s.date)
            );
        }
        page.push_str("</table><p>On a client:</p><pre>");
        let _ = writeln!(page, "sudo install -d /etc/apt/keyrings");
        let _ = writeln!(
            page,
            "sudo curl -fsSL {url}/airlock.gpg -o /etc/apt/keyrings/airlock.gpg"
        );
        for s in &suites {
            let _ = writeln!(
                page,
                "echo 'deb [signed-by=/etc/apt/keyrings/airlock.gpg] {url}/apt/{} {} {}' | sudo tee -a /etc/apt/sources.list.d/airlock.list",
                escape(&s.repo),
                escape(&s.suite),
                escape(&s.components)
            );
        }
        page.push_str("sudo apt-get update</pre>");
    }
    let routes = state.proxy().status().routes;
    if !routes.is_empty() {
        page.push_str(
            "<h2>Upstream names</h2><p>Requests for these names (DNS pointed here, or clients with \
             <code>Acquire::http::Proxy</code> set to this server) are answered from the local trees; \
             <a href=\"/status.json\">status.json</a>.</p>\
             <table><tr><th>upstream</th><th>served from</th><th>hits</th><th>misses</th><th>recent misses</th></tr>",
        );
        for r in &routes {
            let _ = write!(
                page,
                "<tr><td>http://{}{}/</td><td><a href=\"{2}/\">{2}/</a></td><td>{3}</td><td>{4}</td><td>{5}</td></tr>",
                escape(&r.host),
                escape(&r.path),
                escape(&r.to),
                r.hits,
                r.misses,
                escape(
                    &r.recent_misses
                        .iter()
                        .rev()
                        .take(3)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            );
        }
        page.push_str("</table>");
    }
    page.push_str("</body></html>\n");
    Html(page).into_response()
}

/// Every suite published under `apt_dir` (`data/public/apt`), by repo then suite.
pub fn published_suites(apt_dir: &Path) -> Vec<PublishedSuite> {
    let mut suites = Vec::new();
    for repo in sorted_names(apt_dir) {
        let dists = apt_dir.join(&repo).join("dists");
        for suite in sorted_names(&dists) {
            let Ok(text) = std::fs::read_to_string(dists.join(&suite).join("Release")) else {
                continue;
            };
            let Some(Ok(release)) = deb822::paragraphs(&text).next() else {
                continue;
            };
            suites.push(PublishedSuite {
                repo: repo.clone(),
                suite,
                components: release.get("Components").unwrap_or_default().to_string(),
                architectures: release.get("Architectures").unwrap_or_default().to_string(),
                date: release.get("Date").unwrap_or_default().to_string(),
            });
        }
    }
    suites
}

fn sorted_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
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
