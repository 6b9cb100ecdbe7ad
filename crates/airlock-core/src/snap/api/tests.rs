//! The store API's answers, as snapd reads them: status, content type and body (JSON
//! rendered with its keys sorted, so the snapshots hold the content whatever the order).

use axum::body::Body;
use axum::http::{Request, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::snap::catalog::{Icon, Publisher, StoredAssertion};
use crate::snap::snapfile::SnapMeta;
use crate::storage::ContentStore;

fn meta(version: &str) -> SnapMeta {
    SnapMeta {
        name: "hello".into(),
        version: version.into(),
        summary: "Says hello".into(),
        description: "A snap that greets".into(),
        title: None,
        license: Some("MIT".into()),
        base: Some("core22".into()),
        confinement: "strict".into(),
        grade: "stable".into(),
        kind: "app".into(),
        architectures: vec!["amd64".into()],
        epoch: serde_json::json!({"read": [0], "write": [0]}),
        default_providers: Vec::new(),
        apps: vec!["hello".into()],
        snap_yaml: "name: hello\n".into(),
    }
}

fn revision(number: u64, blob: Sha256, icon: Option<Icon>) -> Revision {
    Revision {
        revision: number,
        sha3_384: format!("{number:0>96}"),
        size: 5,
        sha256: blob.to_hex(),
        created_at: "2024-01-02T03:04:05Z".into(),
        meta: meta(&format!("1.{number}")),
        icon,
    }
}

fn release(risk: &str, revision: u64) -> Release {
    Release {
        architecture: "amd64".into(),
        track: "latest".into(),
        risk: risk.into(),
        branch: None,
        revision,
        released_at: "2024-02-03T04:05:06Z".into(),
    }
}

/// A store with one snap (revision 2 on stable, 3 on edge, an icon) and two assertions,
/// one of them with a damaged digest.
fn store_api(dir: &std::path::Path) -> StoreApi {
    let store = ContentStore::new(dir);
    let staging = store.staging();
    let snap = staging.add_bytes(b"snap!").unwrap();
    let icon = staging.add_bytes(b"<svg/>").unwrap();
    let assertion = staging.add_bytes(b"type: account-key\n").unwrap();
    staging.commit().unwrap();
    let icon = Icon {
        sha256: icon.to_hex(),
        kind: "svg".into(),
    };
    let mut catalog = Catalog::default();
    catalog.snaps.insert(
        "hello".into(),
        SnapEntry {
            snap_id: "hello-id".into(),
            publisher: Publisher {
                id: "pub-id".into(),
                username: "someone".into(),
                display_name: "Some One".into(),
                validation: "unproven".into(),
            },
            default_track: None,
            revisions: [
                (2, revision(2, snap, Some(icon))),
                (3, revision(3, snap, None)),
            ]
            .into(),
            releases: vec![release("stable", 2), release("edge", 3)],
        },
    );
    catalog.assertions.insert(
        "account-key/key-one".into(),
        StoredAssertion {
            sha256: assertion.to_hex(),
            revision: 1,
            format: 1,
        },
    );
    catalog.assertions.insert(
        "account-key/damaged".into(),
        StoredAssertion {
            sha256: "not hex".into(),
            revision: 1,
            format: 0,
        },
    );
    catalog.save(dir).unwrap();
    StoreApi::new(dir, "http://airlock.example")
}

async fn answer(api: &StoreApi, method: &str, uri: &str, body: &str) -> String {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "store.example:8080")
        .header("Snap-Device-Architecture", "amd64")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router(api.clone()).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(value) if content_type.contains("json") => serde_json::to_string_pretty(&value).unwrap(),
        _ => String::from_utf8_lossy(&bytes).into_owned(),
    };
    format!("{method} {uri}\n{status} {content_type}\n{body}\n")
}

#[tokio::test]
async fn answers_as_snapd_expects() {
    let dir = tempfile::tempdir().unwrap();
    let api = store_api(dir.path());
    let refresh = serde_json::json!({
        "context": [{"instance-key": "k-hello", "snap-id": "hello-id", "revision": 2, "tracking-channel": "latest/stable"}],
        "actions": [
            {"action": "install", "instance-key": "i1", "name": "hello", "channel": "stable"},
            {"action": "download", "instance-key": "i2", "name": "hello", "channel": "edge"},
            {"action": "install", "instance-key": "i3", "name": "hello", "channel": "beta"},
            {"action": "install", "instance-key": "i4", "name": "hello", "revision": 9},
            {"action": "install", "instance-key": "i5", "name": "hello", "channel": "a/b/c/d"},
            {"action": "install", "instance-key": "i6", "name": "nope"},
            {"action": "refresh", "instance-key": "k-hello", "snap-id": "hello-id"},
            {"action": "refresh", "instance-key": "k-hello", "snap-id": "hello-id", "channel": "edge"},
            {"action": "refresh", "instance-key": "k-gone", "snap-id": "gone-id"},
            {"action": "frobnicate", "instance-key": "i7", "name": "hello", "snap-id": "hello-id"},
            {"action": "fetch-assertions", "key": "g1", "assertions": [
                {"type": "account-key", "primary-key": ["key-one"]},
                {"type": "account-key", "primary-key": ["key-two"]}
            ]},
            {"action": "fetch-assertions", "key": "g2", "assertions": [
                {"type": "account-key", "primary-key": ["key-one"]}
            ]}
        ]
    })
    .to_string();
    let too_many = serde_json::json!({
        "actions": (0..=MAX_ACTIONS).map(|_| serde_json::json!({"action": "install", "name": "hello"})).collect::<Vec<_>>()
    })
    .to_string();
    let icon = Sha256::of(b"<svg/>").to_hex();
    let snap = Sha256::of(b"snap!").to_hex();
    let requests = [
        ("GET", "/v2/snaps/info/hello".to_string(), String::new()),
        (
            "GET",
            "/v2/snaps/info/hello?architecture=arm64".into(),
            String::new(),
        ),
        ("GET", "/v2/snaps/info/nope".into(), String::new()),
        ("POST", "/v2/snaps/refresh".into(), refresh),
        ("POST", "/v2/snaps/refresh".into(), "{not json".into()),
        ("POST", "/v2/snaps/refresh".into(), too_many),
        ("GET", "/v2/snaps/find?q=greets".into(), String::new()),
        ("GET", "/v2/snaps/find?name=hel*".into(), String::new()),
        ("GET", "/v2/snaps/find?name=hel".into(), String::new()),
        ("GET", "/v2/snaps/find?q=a%2Bb".into(), String::new()),
        ("GET", "/v2/snaps/categories".into(), String::new()),
        ("GET", "/api/v1/snaps/sections".into(), String::new()),
        ("GET", "/api/v1/snaps/names".into(), String::new()),
        ("POST", "/api/v1/snaps/auth/nonces".into(), String::new()),
        ("POST", "/api/v1/snaps/auth/sessions".into(), String::new()),
        (
            "GET",
            "/v2/assertions/account-key/key-one".into(),
            String::new(),
        ),
        (
            "GET",
            "/api/v1/snaps/assertions/account-key/key-one?max-format=0".into(),
            String::new(),
        ),
        (
            "GET",
            "/v2/assertions/account-key/key-two".into(),
            String::new(),
        ),
        (
            "GET",
            "/v2/assertions/account-key/damaged".into(),
            String::new(),
        ),
        (
            "GET",
            "/api/v1/snaps/download/hello-id_2.snap".into(),
            String::new(),
        ),
        (
            "GET",
            "/api/v1/snaps/download/hello_3.snap".into(),
            String::new(),
        ),
        (
            "GET",
            "/api/v1/snaps/download/hello-id_7.snap".into(),
            String::new(),
        ),
        (
            "GET",
            "/api/v1/snaps/download/hello-id.snap".into(),
            String::new(),
        ),
        (
            "GET",
            format!("/api/v1/snaps/icon/{icon}.svg"),
            String::new(),
        ),
        (
            "GET",
            format!("/api/v1/snaps/icon/{snap}.png"),
            String::new(),
        ),
        ("GET", "/api/v1/snaps/icon/x.gif".into(), String::new()),
        ("DELETE", "/v2/snaps/info".into(), String::new()),
        ("GET", "/api/v1/unknown".into(), String::new()),
    ];
    let mut answers = String::new();
    for (method, uri, body) in &requests {
        answers.push_str(&answer(&api, method, uri, body).await);
        answers.push('\n');
    }
    insta::assert_snapshot!(answers);
}
