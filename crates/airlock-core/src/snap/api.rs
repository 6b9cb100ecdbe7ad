//! The store API snapd calls (`SNAPPY_FORCE_API_URL` points it here): info, refresh actions,
//! assertions, downloads, find and the catalog endpoints of `shared/specs/snapstore.md`.
//!
//! snapd retries 5xx for about 38 s and compares some content types literally, so anything
//! unknown is a fast 4xx with a snapd-shaped JSON error, and JSON answers carry exactly
//! `application/json` (or `application/hal+json`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::{Deserialize, Serialize};

use super::catalog::{Catalog, Channel, Release, Revision, SnapEntry};
use crate::http::{Https, Json, json_response};
use crate::storage::Sha256;

mod body;
mod content;
use body::{
    ActionError, ActionProblem, ActionResult, AssertionsResult, Categories, ChannelDetails,
    ChannelMapEntry, Embedded, ErrorList, Find, Found, FoundRevision, Info, MissingAssertion, Name,
    Nonce, Package, Packages, Problem, Refresh, ReleasedChannel, Releases, ResultSnap,
    RevisionDetails, Sections, Session, SnapDetails, SnapResult,
};
pub use content::{ContentError, LocalContent, SnapContent};

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
    content: Arc<dyn SnapContent>,
    public_url: String,
}

impl StoreApi {
    /// The store of the data folder `data_dir`.
    pub fn new(data_dir: &std::path::Path, public_url: &str) -> StoreApi {
        StoreApi::with_content(Arc::new(LocalContent::new(data_dir)), public_url)
    }

    /// The store of what `content` holds.
    pub fn with_content(content: Arc<dyn SnapContent>, public_url: &str) -> StoreApi {
        StoreApi {
            inner: Arc::new(Inner {
                content,
                public_url: public_url.trim_end_matches('/').to_string(),
            }),
        }
    }

    async fn catalog(&self) -> Result<Arc<Catalog>, StoreApiError> {
        Ok(self.inner.content.catalog().await?)
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

/// Why a request gets no answer but snapd's error list. Refusals are 4xx; the store's own
/// failures are logged and answered 409: snapd retries 5xx for half a minute over a problem
/// only the operator can fix.
#[derive(Debug, thiserror::Error)]
enum StoreApiError {
    /// Something this store does not have or does not take.
    #[error("{message}")]
    Refused {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// An assertion this store does not hold (or not in a format the client reads).
    #[error("{what} not found")]
    NoAssertion { what: String },
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error("the catalog's digest for {reference} is damaged")]
    DamagedAssertionDigest { reference: String },
    #[error("the catalog holds a damaged digest")]
    DamagedBlobDigest,
}

impl StoreApiError {
    fn not_found(code: &'static str, message: impl Into<String>) -> StoreApiError {
        StoreApiError::Refused {
            status: StatusCode::NOT_FOUND,
            code,
            message: message.into(),
        }
    }

    fn bad_request(code: &'static str, message: impl Into<String>) -> StoreApiError {
        StoreApiError::Refused {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for StoreApiError {
    fn into_response(self) -> Response {
        let (status, content_type, code, message) = match self {
            StoreApiError::Refused {
                status,
                code,
                message,
            } => (status, "application/json", code, message),
            StoreApiError::NoAssertion { .. } => (
                StatusCode::NOT_FOUND,
                "application/problem+json",
                "not-found",
                self.to_string(),
            ),
            StoreApiError::Content(ref e) => {
                let message = crate::hint::Chain(e).to_string();
                tracing::error!("snap store: {message}");
                (
                    StatusCode::CONFLICT,
                    "application/json",
                    "store-error",
                    message,
                )
            }
            StoreApiError::DamagedAssertionDigest { .. } | StoreApiError::DamagedBlobDigest => {
                let message = self.to_string();
                tracing::error!("snap store: {message}");
                (
                    StatusCode::CONFLICT,
                    "application/json",
                    "store-error",
                    message,
                )
            }
        };
        let body = ErrorList {
            error_list: [Problem { code, message }],
        };
        json_response(status, content_type, &body)
    }
}

/// An `application/hal+json` body, as the `/api/v1/snaps/` catalog endpoints answer.
struct HalJson<T>(T);

impl<T: Serialize> IntoResponse for HalJson<T> {
    fn into_response(self) -> Response {
        json_response(StatusCode::OK, "application/hal+json", &self.0)
    }
}

async fn unknown(method: Method, request: Request) -> StoreApiError {
    StoreApiError::not_found(
        "not-found",
        format!(
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

async fn info(
    State(api): State<StoreApi>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    https: Option<Extension<Https>>,
) -> Result<Json<Info>, StoreApiError> {
    let catalog = api.catalog().await?;
    let arch = architecture(&query, &headers);
    let not_found = || {
        StoreApiError::not_found(
            "resource-not-found",
            format!("No snap named '{name}' found in series '16' for {arch}."),
        )
    };
    let entry = catalog.snaps.get(&name).ok_or_else(not_found)?;
    let base = api.base(&headers, https);
    let map = entry.channel_map(&arch);
    let first = map
        .first()
        .and_then(|r| entry.revisions.get(&r.revision))
        .ok_or_else(not_found)?;
    let channel_map = map
        .iter()
        .filter_map(|release| {
            let revision = entry.revisions.get(&release.revision)?;
            Some(ChannelMapEntry {
                revision: RevisionDetails::new(entry, revision, &base),
                channel: ChannelDetails::new(release, &arch),
            })
        })
        .collect();
    Ok(Json(Info {
        snap: SnapDetails::new(&name, entry, first, &base),
        snap_id: entry.snap_id.clone(),
        name,
        channel_map,
    }))
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
) -> Result<Json<Refresh>, StoreApiError> {
    let request: RefreshRequest = serde_json::from_slice(&body).map_err(|e| {
        StoreApiError::bad_request(
            "invalid-request",
            format!("the refresh request is not valid JSON for this API: {e}"),
        )
    })?;
    let asked = request.actions.len()
        + request
            .actions
            .iter()
            .map(|a| a.assertions.len())
            .sum::<usize>();
    if asked > MAX_ACTIONS {
        return Err(StoreApiError::bad_request(
            "too-many-actions",
            format!("{asked} actions and assertions in one request; at most {MAX_ACTIONS}"),
        ));
    }
    let catalog = api.catalog().await?;
    let arch = architecture(&HashMap::new(), &headers);
    let base = api.base(&headers, https);
    let results = request
        .actions
        .iter()
        .filter_map(|action| act(&catalog, &request.context, action, &arch, &base))
        .collect();
    Ok(Json(Refresh {
        results,
        error_list: [],
    }))
}

/// One action's result: a revision, assertion URLs or an error; `None` for a refresh of a
/// snap that is up to date.
fn act(
    catalog: &Catalog,
    context: &[ContextSnap],
    action: &Action,
    arch: &str,
    base: &str,
) -> Option<ActionResult> {
    if action.action == "fetch-assertions" {
        let result = fetch_assertions(catalog, action, base);
        return Some(ActionResult::Assertions(result));
    }
    match resolve_action(catalog, context, action, arch, base) {
        Ok(snap) => snap.map(|snap| ActionResult::Snap(Box::new(snap))),
        Err(failure) => Some(ActionResult::Error(ActionError {
            result: "error",
            instance_key: action.instance_key.clone().unwrap_or_default(),
            name: failure.name,
            snap_id: action.snap_id.clone(),
            error: ActionProblem {
                code: failure.code,
                message: failure.message,
                extra: failure.releases,
            },
        })),
    }
}

/// Why an install, download or refresh has no revision to offer.
struct ActionFailure {
    name: String,
    code: &'static str,
    message: String,
    /// Where the snap is released, when it is but not as asked.
    releases: Option<Releases>,
}

impl ActionFailure {
    fn new(name: &str, code: &'static str, message: String) -> ActionFailure {
        ActionFailure {
            name: name.to_string(),
            code,
            message,
            releases: None,
        }
    }

    fn with_releases(mut self, entry: &SnapEntry) -> ActionFailure {
        let releases = entry
            .released_channels()
            .into_iter()
            .map(|(architecture, channel)| ReleasedChannel {
                architecture,
                channel,
            })
            .collect();
        self.releases = Some(Releases { releases });
        self
    }
}

/// The revision an install, download or refresh gets.
fn resolve_action(
    catalog: &Catalog,
    context: &[ContextSnap],
    action: &Action,
    arch: &str,
    base: &str,
) -> Result<Option<SnapResult>, ActionFailure> {
    let instance_key = action.instance_key.as_deref().unwrap_or_default();
    let (name, entry, tracking) = match action.action.as_str() {
        "install" | "download" => {
            let name = action.name.clone().unwrap_or_default();
            match catalog.snaps.get(&name) {
                Some(entry) => (name, entry, None),
                None => {
                    let message = format!("No snap named '{name}' found");
                    return Err(ActionFailure::new(&name, "name-not-found", message));
                }
            }
        }
        "refresh" => {
            let id = action.snap_id.clone().unwrap_or_default();
            let installed = context.iter().find(|c| c.instance_key == instance_key);
            match catalog.by_id(&id) {
                Some((name, entry)) => (name.clone(), entry, installed),
                None => {
                    let message = format!("No snap with id '{id}' found");
                    return Err(ActionFailure::new("", "id-not-found", message));
                }
            }
        }
        other => {
            return Err(ActionFailure::new(
                action.name.as_deref().unwrap_or(""),
                "invalid-action",
                format!("unknown action {other:?}"),
            ));
        }
    };
    let requested = action
        .channel
        .clone()
        .or_else(|| tracking.and_then(|t| t.tracking_channel.clone()))
        .unwrap_or_else(|| "stable".into());
    let not_found = |message: String| {
        ActionFailure::new(&name, "revision-not-found", message).with_releases(entry)
    };
    let (revision, effective, redirect) = if let Some(number) = action.revision {
        let revision = entry
            .revisions
            .get(&number)
            .filter(|r| r.meta.architectures.iter().any(|a| a == arch || a == "all"))
            .ok_or_else(|| not_found(format!("{name} has no revision {number} for {arch}")))?;
        (revision, None, None)
    } else {
        let channel = Channel::parse(&requested)
            .map_err(|e| ActionFailure::new(&name, "invalid-channel", e))?;
        let resolved = entry.resolve(arch, &channel).ok_or_else(|| {
            not_found(format!(
                "No revision of {name} on channel {requested} for {arch}"
            ))
        })?;
        let revision = entry
            .revisions
            .get(&resolved.release.revision)
            .ok_or_else(|| not_found(format!("{name}: the catalog is inconsistent")))?;
        (revision, Some(resolved.effective), resolved.redirect)
    };
    if action.action == "refresh" && tracking.is_some_and(|t| t.revision == revision.revision) {
        return Ok(None);
    }
    let snap = ResultSnap {
        revision: RevisionDetails::new(entry, revision, base),
        snap: SnapDetails::new(&name, entry, revision, base),
        snap_yaml: revision.meta.snap_yaml.clone(),
    };
    Ok(Some(SnapResult {
        result: action.action.clone(),
        instance_key: instance_key.to_string(),
        snap_id: entry.snap_id.clone(),
        name,
        snap,
        effective_channel: effective,
        redirect_channel: redirect,
    }))
}

/// Answers with stream URLs for the assertions this store holds, and not-found for the rest.
fn fetch_assertions(catalog: &Catalog, action: &Action, base: &str) -> AssertionsResult {
    let mut urls = Vec::new();
    let mut errors = Vec::new();
    for wanted in &action.assertions {
        let reference = format!("{}/{}", wanted.kind, wanted.primary_key.join("/"));
        if catalog.assertions.contains_key(&reference) {
            urls.push(format!("{base}/v2/assertions/{reference}"));
        } else {
            errors.push(MissingAssertion {
                kind: wanted.kind.clone(),
                primary_key: wanted.primary_key.clone(),
                code: "not-found",
                message: format!("{reference} not found"),
            });
        }
    }
    AssertionsResult {
        result: "fetch-assertions",
        key: action.key.clone().unwrap_or_default(),
        assertion_stream_urls: urls,
        error_list: errors,
    }
}

async fn assertion(
    State(api): State<StoreApi>,
    Path((kind, key)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, StoreApiError> {
    let catalog = api.catalog().await?;
    let reference = format!("{kind}/{}", key.trim_end_matches('/'));
    let stored = catalog
        .assertions
        .get(&reference)
        .ok_or_else(|| StoreApiError::NoAssertion {
            what: reference.clone(),
        })?;
    let max_format = query.get("max-format").and_then(|f| f.parse::<u64>().ok());
    if max_format.is_some_and(|m| stored.format > m) {
        return Err(StoreApiError::NoAssertion {
            what: format!("{reference} in format {} or lower", max_format.unwrap_or(0)),
        });
    }
    let digest =
        Sha256::from_hex(&stored.sha256).ok_or_else(|| StoreApiError::DamagedAssertionDigest {
            reference: reference.clone(),
        })?;
    let bytes = api.inner.content.assertion(digest, &reference).await?;
    let mut response = bytes.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x.ubuntu.assertion"),
    );
    Ok(response)
}

/// Serves a stored blob with HEAD and Range, as the published trees are served.
async fn blob(
    api: &StoreApi,
    sha256: &str,
    size: Option<u64>,
    method: &Method,
    headers: &HeaderMap,
    content_type: &'static str,
) -> Result<Response, StoreApiError> {
    let digest = Sha256::from_hex(sha256).ok_or(StoreApiError::DamagedBlobDigest)?;
    let mut response = api
        .inner
        .content
        .blob(digest, size, method, headers)
        .await?;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

async fn download(
    State(api): State<StoreApi>,
    Path(file): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, StoreApiError> {
    let not_found =
        || StoreApiError::not_found("not-found", format!("{file} is not in this store"));
    let (snap_id, revision) = file
        .strip_suffix(".snap")
        .and_then(|f| f.rsplit_once('_'))
        .and_then(|(id, rev)| Some((id.to_string(), rev.parse::<u64>().ok()?)))
        .ok_or_else(not_found)?;
    let catalog = api.catalog().await?;
    let found = catalog
        .by_id(&snap_id)
        .or_else(|| catalog.snaps.get_key_value(&snap_id))
        .and_then(|(_, e)| e.revisions.get(&revision))
        .ok_or_else(not_found)?;
    blob(
        &api,
        &found.sha256,
        Some(found.size),
        &method,
        &headers,
        "application/octet-stream",
    )
    .await
}

async fn icon(
    State(api): State<StoreApi>,
    Path(file): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, StoreApiError> {
    let no_such_icon = || StoreApiError::not_found("not-found", "no such icon");
    let (sha256, content_type) = match file.rsplit_once('.') {
        Some((s, "png")) => (s, "image/png"),
        Some((s, "svg")) => (s, "image/svg+xml"),
        _ => return Err(no_such_icon()),
    };
    let catalog = api.catalog().await?;
    let known = catalog
        .snaps
        .values()
        .flat_map(|e| e.revisions.values())
        .any(|r| r.icon.as_ref().is_some_and(|i| i.sha256 == sha256));
    if !known {
        return Err(no_such_icon());
    }
    blob(&api, sha256, None, &method, &headers, content_type).await
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
) -> Result<Json<Find>, StoreApiError> {
    let catalog = api.catalog().await?;
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
        return Err(StoreApiError::bad_request(
            "bad-query",
            "the search term holds characters the store does not accept",
        ));
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
        results.push(Found {
            name: name.clone(),
            snap_id: entry.snap_id.clone(),
            snap: SnapDetails::new(name, entry, revision, &base),
            revision: FoundRevision {
                revision: RevisionDetails::new(entry, revision, &base),
                channel: release.risk.clone(),
            },
        });
    }
    Ok(Json(Find { results }))
}

async fn categories() -> Json<Categories> {
    Json(Categories {
        categories: [Name {
            name: "server-and-cloud",
        }],
    })
}

async fn sections() -> HalJson<Embedded<Sections>> {
    HalJson(Embedded {
        embedded: Sections {
            sections: [Name {
                name: "server-and-cloud",
            }],
        },
    })
}

/// The catalog snapd keeps for command-not-found.
async fn names(
    State(api): State<StoreApi>,
    headers: HeaderMap,
) -> Result<HalJson<Embedded<Packages>>, StoreApiError> {
    let catalog = api.catalog().await?;
    let arch = architecture(&HashMap::new(), &headers);
    let packages = catalog
        .snaps
        .iter()
        .filter_map(|(name, entry)| {
            let (revision, _) = listed(entry, &arch)?;
            Some(Package {
                package_name: name.clone(),
                version: revision.meta.version.clone(),
                summary: revision.meta.summary.clone(),
                apps: revision.meta.apps.clone(),
                aliases: [],
            })
        })
        .collect();
    Ok(HalJson(Embedded {
        embedded: Packages { packages },
    }))
}

/// Device sessions: snapd asks for one when the device has a serial; nothing is checked.
async fn nonce() -> Json<Nonce> {
    Json(Nonce {
        nonce: "airlock-offline-store",
    })
}

async fn session() -> Json<Session> {
    Json(Session {
        macaroon: "airlock-offline-store",
    })
}

#[cfg(test)]
mod tests;
