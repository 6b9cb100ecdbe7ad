//! The store API snapd calls (`SNAPPY_FORCE_API_URL` points it here): info, refresh actions,
//! assertions, downloads, find and the catalog endpoints of `shared/specs/snapstore.md`.
//!
//! snapd retries 5xx for about 38 s and compares some content types literally, so anything
//! unknown is a fast 4xx with a snapd-shaped JSON error, and JSON answers carry exactly
//! `application/json` (or `application/hal+json`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::catalog::{Catalog, Channel, Release, Revision, SnapEntry};
use crate::http::{Https, files};
use crate::storage::{ContentStore, Sha256};

/// Refresh bodies list every installed snap: a few KiB; anything near this is hostile.
const MAX_BODY: usize = 1 << 20;

/// Actions (one per installed snap) and assertions per refresh request: each answer can
/// carry a snap.yaml, so the count bounds the memory one request costs.
const MAX_ACTIONS: usize = 500;

#[derive(Clone)]
pub struct StoreApi {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    store: ContentStore,
    public_url: String,
    /// The catalog file is replaced by rename, never rewritten in place.
    catalog: Mutex<Option<(files::Identity, Arc<Catalog>)>>,
    blobs: files::SmallFiles,
}

impl StoreApi {
    pub fn new(data_dir: &std::path::Path, public_url: &str) -> StoreApi {
        let public_url = public_url.trim_end_matches('/').to_string();
        StoreApi {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_path_buf(),
                store: ContentStore::new(data_dir),
                public_url,
                catalog: Mutex::new(None),
                blobs: files::SmallFiles::default(),
            }),
        }
    }

    /// The current catalog: a `stat` per request, a reload when an import replaced it.
    fn catalog(&self) -> Result<Arc<Catalog>, String> {
        let path = Catalog::path(&self.inner.data_dir);
        let stamp = match std::fs::metadata(&path) {
            Ok(m) => Some(files::Identity::of(&m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let Some(stamp) = stamp else {
            return Ok(Arc::new(Catalog::default()));
        };
        let mut cached = self.inner.catalog.lock().expect("catalog cache");
        if let Some((s, catalog)) = cached.as_ref()
            && *s == stamp
        {
            return Ok(catalog.clone());
        }
        let catalog = Arc::new(Catalog::load(&self.inner.data_dir).map_err(|e| e.to_string())?);
        *cached = Some((stamp, catalog.clone()));
        Ok(catalog)
    }

    /// `scheme://host` as the client reached us, so advertised URLs work through any name
    /// and keep HTTPS when the request came over it.
    fn base(&self, headers: &HeaderMap, https: Option<Extension<Https>>) -> String {
        let scheme = if https.is_some() { "https" } else { "http" };
        match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
            Some(host) if !host.is_empty() && !host.contains(['/', ' ', '@']) => {
                format!("{scheme}://{host}")
            }
            _ => self.inner.public_url.clone(),
        }
    }
}

pub fn router(api: StoreApi) -> Router {
    Router::new()
        .route("/v2/snaps/info/{name}", get(info))
        .route("/v2/snaps/refresh", post(refresh))
        .route("/v2/snaps/find", get(find))
        .route("/v2/snaps/categories", get(categories))
        .route("/v2/assertions/{kind}/{*key}", get(assertion))
        .route("/api/v1/snaps/assertions/{kind}/{*key}", get(assertion))
        .route("/api/v1/snaps/download/{file}", get(download))
        .route("/api/v1/snaps/icon/{file}", get(icon))
        .route("/api/v1/snaps/sections", get(sections))
        .route("/api/v1/snaps/names", get(names))
        .route("/api/v1/snaps/auth/nonces", post(nonce))
        .route("/api/v1/snaps/auth/sessions", post(session))
        .route("/v2/{*rest}", any(unknown))
        .route("/api/v1/{*rest}", any(unknown))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

fn json_response(status: StatusCode, content_type: &'static str, value: &Value) -> Response {
    let mut response = (status, value.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn ok_json(value: &Value) -> Response {
    json_response(StatusCode::OK, "application/json", value)
}

/// snapd's error body: `{"error-list":[{"code","message"}]}`.
fn error_list(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        "application/json",
        &json!({"error-list": [{"code": code, "message": message}]}),
    )
}

fn internal(message: &str) -> Response {
    tracing::error!("snap store: {message}");
    // Not 5xx: snapd would retry for half a minute over a problem only the operator can fix.
    error_list(StatusCode::CONFLICT, "store-error", message)
}

async fn unknown(method: Method, request: Request) -> Response {
    error_list(
        StatusCode::NOT_FOUND,
        "not-found",
        &format!(
            "{method} {} is not part of this store's API",
            request.uri().path()
        ),
    )
}

fn architecture(query: &HashMap<String, String>, headers: &HeaderMap) -> String {
    query
        .get("architecture")
        .cloned()
        .or_else(|| {
            ["Snap-Device-Architecture", "X-Ubuntu-Architecture"]
                .iter()
                .find_map(|h| {
                    headers
                        .get(*h)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                })
        })
        .unwrap_or_else(|| "amd64".into())
}

/// Snap-level fields: the same for every channel.
fn snap_fields(name: &str, entry: &SnapEntry, revision: &Revision, base: &str) -> Value {
    let meta = &revision.meta;
    let media: Vec<Value> = revision
        .icon
        .iter()
        .map(|i| json!({"type": "icon", "url": format!("{base}/api/v1/snaps/icon/{}.{}", i.sha256, i.kind)}))
        .collect();
    json!({
        "name": name,
        "snap-id": entry.snap_id,
        "summary": meta.summary,
        "description": meta.description,
        "title": meta.title.clone().unwrap_or_else(|| name.to_string()),
        "license": meta.license.clone().unwrap_or_else(|| "unset".into()),
        "publisher": {
            "id": entry.publisher.id,
            "username": entry.publisher.username,
            "display-name": entry.publisher.display_name,
            "validation": entry.publisher.validation,
        },
        "media": media,
        "private": false,
        "prices": {},
        "contact": "",
        "website": "",
        "store-url": "",
        "common-ids": [],
    })
}

/// Revision-level fields, as info's channel-map entries and refresh results carry them.
fn revision_fields(
    entry: &SnapEntry,
    revision: &Revision,
    base: &str,
) -> serde_json::Map<String, Value> {
    let meta = &revision.meta;
    let mut fields = serde_json::Map::new();
    fields.insert("revision".into(), json!(revision.revision));
    fields.insert("version".into(), json!(meta.version));
    fields.insert("type".into(), json!(meta.kind));
    if let Some(b) = &meta.base {
        fields.insert("base".into(), json!(b));
    }
    fields.insert("confinement".into(), json!(meta.confinement));
    fields.insert("grade".into(), json!(meta.grade));
    fields.insert("architectures".into(), json!(meta.architectures));
    fields.insert("epoch".into(), meta.epoch.clone());
    fields.insert("created-at".into(), json!(revision.created_at));
    fields.insert(
        "download".into(),
        json!({
            "url": format!("{base}/api/v1/snaps/download/{}_{}.snap", entry.snap_id, revision.revision),
            "sha3-384": revision.sha3_384,
            "size": revision.size,
            "deltas": [],
        }),
    );
    fields
}

async fn info(
    State(api): State<StoreApi>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    https: Option<Extension<Https>>,
) -> Response {
    let catalog = match api.catalog() {
        Ok(c) => c,
        Err(e) => return internal(&e),
    };
    let arch = architecture(&query, &headers);
    let not_found = || {
        error_list(
            StatusCode::NOT_FOUND,
            "resource-not-found",
            &format!("No snap named '{name}' found in series '16' for {arch}."),
        )
    };
    let Some(entry) = catalog.snaps.get(&name) else {
        return not_found();
    };
    let base = api.base(&headers, https);
    let map = entry.channel_map(&arch);
    let Some(first) = map.first().and_then(|r| entry.revisions.get(&r.revision)) else {
        return not_found();
    };
    let channel_map: Vec<Value> = map
        .iter()
        .filter_map(|release| {
            let revision = entry.revisions.get(&release.revision)?;
            let mut fields = revision_fields(entry, revision, &base);
            fields.insert("channel".into(), channel_json(release, &arch));
            Some(Value::Object(fields))
        })
        .collect();
    ok_json(&json!({
        "name": name,
        "snap-id": entry.snap_id,
        "snap": snap_fields(&name, entry, first, &base),
        "channel-map": channel_map,
    }))
}

fn channel_json(release: &Release, arch: &str) -> Value {
    json!({
        "architecture": arch,
        "name": release.channel(),
        "track": release.track,
        "risk": release.risk,
        "released-at": release.released_at,
    })
}

#[derive(Deserialize)]
struct RefreshRequest {
    #[serde(default)]
    context: Vec<ContextSnap>,
    actions: Vec<Action>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ContextSnap {
    instance_key: String,
    revision: u64,
    #[serde(default)]
    tracking_channel: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Action {
    action: String,
    #[serde(default)]
    instance_key: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    snap_id: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    revision: Option<u64>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    assertions: Vec<AssertionRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct AssertionRequest {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    primary_key: Vec<String>,
}

async fn refresh(
    State(api): State<StoreApi>,
    headers: HeaderMap,
    https: Option<Extension<Https>>,
    body: Bytes,
) -> Response {
    let request: RefreshRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error_list(
                StatusCode::BAD_REQUEST,
                "invalid-request",
                &format!("the refresh request is not valid JSON for this API: {e}"),
            );
        }
    };
    let asked = request.actions.len()
        + request
            .actions
            .iter()
            .map(|a| a.assertions.len())
            .sum::<usize>();
    if asked > MAX_ACTIONS {
        return error_list(
            StatusCode::BAD_REQUEST,
            "too-many-actions",
            &format!("{asked} actions and assertions in one request; at most {MAX_ACTIONS}"),
        );
    }
    let catalog = match api.catalog() {
        Ok(c) => c,
        Err(e) => return internal(&e),
    };
    let arch = architecture(&HashMap::new(), &headers);
    let base = api.base(&headers, https);
    let mut results = Vec::new();
    for action in &request.actions {
        if let Some(result) = act(&catalog, &request.context, action, &arch, &base) {
            results.push(result);
        }
    }
    ok_json(&json!({"results": results, "error-list": []}))
}

fn act(
    catalog: &Catalog,
    context: &[ContextSnap],
    action: &Action,
    arch: &str,
    base: &str,
) -> Option<Value> {
    let instance_key = action.instance_key.clone().unwrap_or_default();
    let error = |name: &str, code: &str, message: String, extra: Value| {
        let mut e = json!({
            "result": "error",
            "instance-key": instance_key,
            "name": name,
            "error": {"code": code, "message": message},
        });
        if !extra.is_null() {
            e["error"]["extra"] = extra;
        }
        if let Some(id) = &action.snap_id {
            e["snap-id"] = json!(id);
        }
        Some(e)
    };
    let (name, entry, tracking) = match action.action.as_str() {
        "install" | "download" => {
            let name = action.name.clone().unwrap_or_default();
            match catalog.snaps.get(&name) {
                Some(entry) => (name, entry, None),
                None => {
                    return error(
                        &name,
                        "name-not-found",
                        format!("No snap named '{name}' found"),
                        Value::Null,
                    );
                }
            }
        }
        "refresh" => {
            let id = action.snap_id.clone().unwrap_or_default();
            let installed = context.iter().find(|c| c.instance_key == instance_key);
            match catalog.by_id(&id) {
                Some((name, entry)) => (name.clone(), entry, installed),
                None => {
                    return error(
                        "",
                        "id-not-found",
                        format!("No snap with id '{id}' found"),
                        Value::Null,
                    );
                }
            }
        }
        "fetch-assertions" => return Some(fetch_assertions(catalog, action, base)),
        other => {
            return error(
                action.name.as_deref().unwrap_or(""),
                "invalid-action",
                format!("unknown action {other:?}"),
                Value::Null,
            );
        }
    };
    let requested = action
        .channel
        .clone()
        .or_else(|| tracking.and_then(|t| t.tracking_channel.clone()))
        .unwrap_or_else(|| "stable".into());
    let releases = || json!({"releases": entry.released_channels().iter().map(|(a, c)| json!({"architecture": a, "channel": c})).collect::<Vec<_>>()});
    let (revision, effective, redirect) = if let Some(number) = action.revision {
        match entry
            .revisions
            .get(&number)
            .filter(|r| r.meta.architectures.iter().any(|a| a == arch || a == "all"))
        {
            Some(r) => (r, None, None),
            None => {
                return error(
                    &name,
                    "revision-not-found",
                    format!("{name} has no revision {number} for {arch}"),
                    releases(),
                );
            }
        }
    } else {
        let channel = match Channel::parse(&requested) {
            Ok(c) => c,
            Err(e) => return error(&name, "invalid-channel", e, Value::Null),
        };
        match entry.resolve(arch, &channel) {
            Some(resolved) => match entry.revisions.get(&resolved.release.revision) {
                Some(r) => (r, Some(resolved.effective), resolved.redirect),
                None => {
                    return error(
                        &name,
                        "revision-not-found",
                        format!("{name}: the catalog is inconsistent"),
                        releases(),
                    );
                }
            },
            None => {
                return error(
                    &name,
                    "revision-not-found",
                    format!("No revision of {name} on channel {requested} for {arch}"),
                    releases(),
                );
            }
        }
    };
    if action.action == "refresh" && tracking.is_some_and(|t| t.revision == revision.revision) {
        return None;
    }
    let mut snap = revision_fields(entry, revision, base);
    let Value::Object(level) = snap_fields(&name, entry, revision, base) else {
        unreachable!("snap fields are an object");
    };
    snap.extend(level);
    snap.insert("snap-yaml".into(), json!(revision.meta.snap_yaml));
    let mut result = json!({
        "result": action.action,
        "instance-key": instance_key,
        "snap-id": entry.snap_id,
        "name": name,
        "snap": snap,
    });
    if let Some(e) = effective {
        result["effective-channel"] = json!(e);
    }
    if let Some(r) = redirect {
        result["redirect-channel"] = json!(r);
    }
    Some(result)
}

/// Answers with stream URLs for the assertions this store holds, and not-found for the rest.
fn fetch_assertions(catalog: &Catalog, action: &Action, base: &str) -> Value {
    let mut urls = Vec::new();
    let mut errors = Vec::new();
    for wanted in &action.assertions {
        let reference = format!("{}/{}", wanted.kind, wanted.primary_key.join("/"));
        if catalog.assertions.contains_key(&reference) {
            urls.push(json!(format!("{base}/v2/assertions/{reference}")));
        } else {
            errors.push(json!({
                "type": wanted.kind,
                "primary-key": wanted.primary_key,
                "code": "not-found",
                "message": format!("{reference} not found"),
            }));
        }
    }
    let mut result = json!({
        "result": "fetch-assertions",
        "key": action.key.clone().unwrap_or_default(),
        "assertion-stream-urls": urls,
    });
    if !errors.is_empty() {
        result["error-list"] = json!(errors);
    }
    result
}

async fn assertion(
    State(api): State<StoreApi>,
    Path((kind, key)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let not_found = |what: &str| {
        json_response(
            StatusCode::NOT_FOUND,
            "application/problem+json",
            &json!({"error-list": [{"code": "not-found", "message": format!("{what} not found")}]}),
        )
    };
    let catalog = match api.catalog() {
        Ok(c) => c,
        Err(e) => return internal(&e),
    };
    let reference = format!("{kind}/{}", key.trim_end_matches('/'));
    let Some(stored) = catalog.assertions.get(&reference) else {
        return not_found(&reference);
    };
    let max_format = query.get("max-format").and_then(|f| f.parse::<u64>().ok());
    if max_format.is_some_and(|m| stored.format > m) {
        return not_found(&format!(
            "{reference} in format {} or lower",
            max_format.unwrap_or(0)
        ));
    }
    let Some(digest) = Sha256::from_hex(&stored.sha256) else {
        return internal(&format!("the catalog's digest for {reference} is damaged"));
    };
    match tokio::fs::read(api.inner.store.blob_path(&digest)).await {
        Ok(bytes) => {
            let mut response = bytes.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x.ubuntu.assertion"),
            );
            response
        }
        Err(e) => internal(&format!("cannot read the stored {reference}: {e}")),
    }
}

/// Serves a stored blob with HEAD and Range, as the published trees are served.
async fn blob(
    api: &StoreApi,
    sha256: &str,
    method: &Method,
    headers: &HeaderMap,
    content_type: &'static str,
) -> Response {
    let Some(digest) = Sha256::from_hex(sha256) else {
        return internal("the catalog holds a damaged digest");
    };
    match files::open(api.inner.store.blob_path(&digest), &api.inner.blobs).await {
        Ok(files::Found::File(reply)) => {
            let mut response = reply.respond(method, headers).await;
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        Ok(_) => internal(&format!("blob {sha256} is missing from the content store")),
        Err(e) => internal(&format!("cannot read blob {sha256}: {e}")),
    }
}

async fn download(
    State(api): State<StoreApi>,
    Path(file): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let not_found = || {
        error_list(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("{file} is not in this store"),
        )
    };
    let Some((snap_id, revision)) = file
        .strip_suffix(".snap")
        .and_then(|f| f.rsplit_once('_'))
        .and_then(|(id, rev)| Some((id.to_string(), rev.parse::<u64>().ok()?)))
    else {
        return not_found();
    };
    let catalog = match api.catalog() {
        Ok(c) => c,
        Err(e) => return internal(&e),
    };
    let found = catalog
        .by_id(&snap_id)
        .or_else(|| catalog.snaps.get_key_value(&snap_id))
        .and_then(|(_, e)| e.revisions.get(&revision));
    match found {
        Some(r) => {
            blob(
                &api,
                &r.sha256,
                &method,
                &headers,
                "application/octet-stream",
            )
            .await
        }
        None => not_found(),
    }
}

async fn icon(
    State(api): State<StoreApi>,
    Path(file): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let (sha256, content_type) = match file.rsplit_once('.') {
        Some((s, "png")) => (s, "image/png"),
        Some((s, "svg")) => (s, "image/svg+xml"),
        _ => return error_list(StatusCode::NOT_FOUND, "not-found", "no such icon"),
    };
    let catalog = match api.catalog() {
        Ok(c) => c,
        Err(e) => return internal(&e),
    };
    let known = catalog
        .snaps
        .values()
        .flat_map(|e| e.revisions.values())
        .any(|r| r.icon.as_ref().is_some_and(|i| i.sha256 == sha256));
    if !known {
        return error_list(StatusCode::NOT_FOUND, "not-found", "no such icon");
    }
    blob(&api, sha256, &method, &headers, content_type).await
}

/// The snap a search shows: the default track's stable (or what it follows) for `arch`.
fn listed<'a>(entry: &'a SnapEntry, arch: &str) -> Option<(&'a Revision, &'a Release)> {
    let resolved = entry.resolve(arch, &Channel::parse("stable").ok()?)?;
    Some((
        entry.revisions.get(&resolved.release.revision)?,
        resolved.release,
    ))
}

async fn find(
    State(api): State<StoreApi>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    https: Option<Extension<Https>>,
) -> Response {
    let catalog = match api.catalog() {
        Ok(c) => c,
        Err(e) => return internal(&e),
    };
    let arch = architecture(&query, &headers);
    let base = api.base(&headers, https);
    let term = query.get("q").map(|q| q.to_lowercase());
    // `name=foo` is that snap; `name=foo*` every snap whose name starts so.
    let by_name = query.get("name").map(|n| match n.strip_suffix('*') {
        Some(prefix) => (prefix.to_string(), true),
        None => (n.clone(), false),
    });
    if term
        .as_deref()
        .is_some_and(|t| t.contains(|c: char| "+=&|><!(){}[]^\"~*?:\\/".contains(c)))
    {
        return error_list(
            StatusCode::BAD_REQUEST,
            "bad-query",
            "the search term holds characters the store does not accept",
        );
    }
    let mut results = Vec::new();
    for (name, entry) in &catalog.snaps {
        let Some((revision, release)) = listed(entry, &arch) else {
            continue;
        };
        let matches = match (&term, &by_name) {
            (_, Some((n, true))) => name.starts_with(n.as_str()),
            (_, Some((n, false))) => name == n,
            (Some(t), None) => {
                name.contains(t.as_str())
                    || revision.meta.summary.to_lowercase().contains(t.as_str())
                    || revision
                        .meta
                        .description
                        .to_lowercase()
                        .contains(t.as_str())
            }
            (None, None) => true,
        };
        if !matches {
            continue;
        }
        let mut found = revision_fields(entry, revision, &base);
        found.insert("channel".into(), json!(release.risk));
        results.push(json!({
            "name": name,
            "snap-id": entry.snap_id,
            "snap": snap_fields(name, entry, revision, &base),
            "revision": found,
        }));
    }
    ok_json(&json!({"results": results}))
}

async fn categories() -> Response {
    ok_json(&json!({"categories": [{"name": "server-and-cloud"}]}))
}

async fn sections() -> Response {
    json_response(
        StatusCode::OK,
        "application/hal+json",
        &json!({"_embedded": {"clickindex:sections": [{"name": "server-and-cloud"}]}}),
    )
}

/// The catalog snapd keeps for command-not-found.
async fn names(State(api): State<StoreApi>, headers: HeaderMap) -> Response {
    let catalog = match api.catalog() {
        Ok(c) => c,
        Err(e) => return internal(&e),
    };
    let arch = architecture(&HashMap::new(), &headers);
    let packages: Vec<Value> = catalog
        .snaps
        .iter()
        .filter_map(|(name, entry)| {
            let (revision, _) = listed(entry, &arch)?;
            Some(json!({
                "package_name": name,
                "version": revision.meta.version,
                "summary": revision.meta.summary,
                "apps": revision.meta.apps,
                "aliases": [],
            }))
        })
        .collect();
    json_response(
        StatusCode::OK,
        "application/hal+json",
        &json!({"_embedded": {"clickindex:package": packages}}),
    )
}

/// Device sessions: snapd asks for one when the device has a serial; nothing is checked.
async fn nonce() -> Response {
    ok_json(&json!({"nonce": "airlock-offline-store"}))
}

async fn session() -> Response {
    ok_json(&json!({"macaroon": "airlock-offline-store"}))
}

#[cfg(test)]
mod tests;
