//! In-process tests of the router: no sockets, real files.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::openpgp::KeyAlgorithm;
use crate::storage::{ContentStore, Entry, Manifest, TreeSet};

struct Fixture {
    _dir: tempfile::TempDir,
    state: ServerState,
    big: Vec<u8>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::new(dir.path());
    let big: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    let staging = store.staging();
    let mut manifest = Manifest::default();
    for (path, bytes) in [
        ("dists/stable/InRelease", &b"signed text\n"[..]),
        ("pool/main/b/big/big_1_all.deb", &big[..]),
    ] {
        let sha256 = staging.add_bytes(bytes).unwrap();
        manifest.entries.insert(
            path.to_string(),
            Entry {
                sha256,
                size: bytes.len() as u64,
                retired: None,
            },
        );
    }
    staging.commit().unwrap();
    // Files of a past publish: dated (see `fresh_files_have_no_date`).
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for entry in manifest.entries.values() {
        std::fs::File::open(store.blob_path(&entry.sha256))
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
    }
    TreeSet::new(dir.path(), "apt", "local")
        .with_shared(&["pool"])
        .publish(&store, store.staging(), &manifest, &Manifest::default())
        .unwrap();
    // A file outside the served tree that traversal attempts aim at.
    std::fs::write(dir.path().join("secret"), "do not serve").unwrap();
    let key = SiteKey::generate(KeyAlgorithm::Ed25519, "Test").unwrap();
    let config = crate::config::Config::parse(
        &format!(
            "[site]\ndata_dir = \"{}\"\nsigning_key = \"airlock.key\"\n",
            dir.path().display()
        ),
        &dir.path().join("airlock.toml"),
    )
    .unwrap();
    let state = ServerState::new(
        &Site::new(config),
        "http://example.invalid:8080",
        &key,
        Arc::new(Counters::default()),
    );
    Fixture {
        _dir: dir,
        state,
        big,
    }
}

async fn request(f: &Fixture, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = router(f.state.clone()).oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

fn get(uri: &str) -> axum::http::request::Builder {
    Request::builder()
        .uri(uri)
        .header(header::HOST, "example.invalid:8080")
}

/// A file replaced twice within one second must not look unchanged to If-Modified-Since:
/// a file of the current second carries no date, and a client asking with the date of that
/// second (apt uses the response's Date) gets the file.
#[tokio::test]
async fn fresh_files_have_no_date() {
    let f = fixture();
    let data = f._dir.path();
    let store = ContentStore::new(data);
    let set = TreeSet::new(data, "apt", "local").with_shared(&["pool"]);
    let uri = "/apt/local/dists/stable/InRelease";
    let second = || httpdate::fmt_http_date(std::time::SystemTime::now());
    // Within one second of the publish, which a tick of the clock may spoil: then again.
    for attempt in 0u8.. {
        let started = second();
        let previous = set.current().unwrap().unwrap();
        let mut manifest = previous.clone();
        let staging = store.staging();
        let content = format!("signed again {attempt}\n");
        let sha256 = staging.add_bytes(content.as_bytes()).unwrap();
        manifest.add("dists/stable/InRelease", sha256, content.len() as u64);
        set.publish(&store, staging, &manifest, &previous).unwrap();
        let (status, headers, body) = request(&f, get(uri).body(Body::empty()).unwrap()).await;
        let (again, _, _) = request(
            &f,
            get(uri)
                .header(header::IF_MODIFIED_SINCE, &started)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        if second() != started && attempt < 5 {
            continue;
        }
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, content.as_bytes());
        assert!(!headers.contains_key(header::LAST_MODIFIED));
        assert!(headers.contains_key(header::ETAG));
        assert_eq!(again, StatusCode::OK);
        break;
    }
}

#[tokio::test]
async fn serves_files_with_type_length_and_validators() {
    let f = fixture();
    let (status, headers, body) = request(
        &f,
        get("/apt/local/dists/stable/InRelease")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"signed text\n");
    assert_eq!(headers[header::CONTENT_TYPE], "text/plain; charset=utf-8");
    assert_eq!(headers[header::CONTENT_LENGTH], "12");
    assert!(headers.contains_key(header::ETAG) && headers.contains_key(header::LAST_MODIFIED));

    let (status, headers, body) = request(
        &f,
        get("/apt/local/pool/main/b/big/big_1_all.deb")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/vnd.debian.binary-package"
    );
    assert_eq!(body, f.big, "a streamed large file arrives whole");
}

#[tokio::test]
async fn head_has_headers_and_no_body() {
    let f = fixture();
    let req = get("/apt/local/pool/main/b/big/big_1_all.deb")
        .method("HEAD")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = request(&f, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_LENGTH], "600000");
    assert!(body.is_empty());
}

#[tokio::test]
async fn ranges_and_conditionals() {
    let f = fixture();
    let uri = "/apt/local/pool/main/b/big/big_1_all.deb";
    let (status, headers, body) = request(
        &f,
        get(uri)
            .header(header::RANGE, "bytes=100-199")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers[header::CONTENT_RANGE], "bytes 100-199/600000");
    assert_eq!(body, &f.big[100..200]);

    let (status, _, body) = request(
        &f,
        get(uri)
            .header(header::RANGE, "bytes=599990-")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &f.big[599_990..]);

    let (status, headers, _) = request(
        &f,
        get(uri)
            .header(header::RANGE, "bytes=600000-")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(headers[header::CONTENT_RANGE], "bytes */600000");

    let (_, headers, _) = request(&f, get(uri).body(Body::empty()).unwrap()).await;
    let etag = headers[header::ETAG].to_str().unwrap().to_string();
    let modified = headers[header::LAST_MODIFIED].to_str().unwrap().to_string();
    let (status, _, body) = request(
        &f,
        get(uri)
            .header(header::IF_NONE_MATCH, &etag)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    let (status, _, _) = request(
        &f,
        get(uri)
            .header(header::IF_MODIFIED_SINCE, &modified)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    let (status, _, _) = request(
        &f,
        get(uri)
            .header(header::IF_MODIFIED_SINCE, "Thu, 01 Jan 1970 00:00:00 GMT")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A stale If-Range makes the server send the whole (changed) file.
    let req = get(uri)
        .header(header::RANGE, "bytes=0-9")
        .header(header::IF_RANGE, "\"stale\"")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = request(&f, req).await;
    assert_eq!((status, body.len()), (StatusCode::OK, 600_000));
    let req = get(uri)
        .header(header::RANGE, "bytes=0-9")
        .header(header::IF_RANGE, &etag)
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = request(&f, req).await;
    assert_eq!((status, body.len()), (StatusCode::PARTIAL_CONTENT, 10));
}

#[tokio::test]
async fn never_leaves_the_tree() {
    let f = fixture();
    for uri in [
        "/apt/../secret",
        "/apt/%2e%2e/secret",
        "/apt/local/..%2f..%2f..%2fsecret",
        "/apt/local/../../../secret",
        "//secret",
        "/secret",
        "/apt//..//secret",
    ] {
        let (status, _, body) = request(&f, get(uri).body(Body::empty()).unwrap()).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{uri}: {status}"
        );
        assert!(
            !String::from_utf8_lossy(&body).contains("do not serve"),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn other_methods_folders_and_keys() {
    let f = fixture();
    let (status, headers, _) = request(
        &f,
        get("/apt/local/dists/stable/InRelease")
            .method("POST")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::ALLOW], "GET, HEAD");

    let (status, headers, _) =
        request(&f, get("/apt/local/dists").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers[header::LOCATION], "/apt/local/dists/");
    let (status, _, body) = request(
        &f,
        get("/apt/local/dists/stable/").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("<a href=\"InRelease\">InRelease</a> 12"));

    let (status, headers, body) =
        request(&f, get("/airlock.gpg").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/pgp-keys");
    assert_eq!(body, f.state.inner.key_binary.to_vec());
    let (_, _, body) = request(&f, get("/airlock.asc").body(Body::empty()).unwrap()).await;
    assert!(body.starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"));

    let (status, _, body) = request(&f, get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains(&f.state.inner.fingerprint));
}
