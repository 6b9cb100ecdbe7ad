//! One fuzz target per format that airlock reads from outside: under `cargo test` each runs its
//! corpus (`tests/__fuzz__/<target>/corpus/`) and then generated inputs for [`BUDGET`];
//! `BOLERO_RANDOM_TEST_TIME_MS` runs them longer (see fuzz/README.md).
//!
//! Every input is tried as it is and as an edit of a seed ([`Seeds::mutated`]). Beyond "no
//! panic", each target checks what must hold of what the parser accepted.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use airlock_core::apt::{deb, deb822, index, release::ReleaseFile};
use airlock_core::bundle::{manifest, volume};
use airlock_core::dns::{self, Decision, Zone};
use airlock_core::openpgp::{self, Keyring};
use airlock_core::remote::Published;
use airlock_core::simplestreams::document::{Index, Products, render};
use airlock_core::snap::assertion::{self, Assertion};
use airlock_core::storage::Manifest;
use airlock_core::storage::tree::check_relative_path;
use airlock_fuzz::{Scratch, Seeds};
use bolero::check;

/// How long `cargo test` fuzzes each target: 14 targets on 2 cores stay within a minute.
const BUDGET: Duration = Duration::from_secs(6);

/// Runs `each` on an input as it is and as an edit of one of the target's seeds.
fn both(seeds: &Seeds, input: &[u8], mut each: impl FnMut(&[u8])) {
    each(input);
    each(&seeds.mutated(input));
}

fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

#[test]
fn deb822() {
    static SEEDS: Seeds = Seeds::new("deb822");
    check!(name = "deb822")
        .with_test_time(BUDGET)
        .for_each(|input| {
            both(&SEEDS, input, |bytes| {
                let Some(text) = text(bytes) else { return };
                let paragraphs: Vec<_> = deb822::paragraphs(text).collect();
                assert!(paragraphs.len() <= text.lines().count() + 1);
                for paragraph in paragraphs.into_iter().map_while(Result::ok) {
                    // The text is a slice of the input, and the fields re-rendered read back.
                    assert!(text.contains(paragraph.text()));
                    let rendered: String = paragraph
                        .fields()
                        .iter()
                        .map(|f| format!("{}: {}\n", f.name, f.value))
                        .collect();
                    let again: Vec<_> = deb822::paragraphs(&rendered).collect();
                    let [Ok(again)] = &again[..] else {
                        panic!("{rendered:?} re-read as {again:?}");
                    };
                    assert_eq!(again.fields(), paragraph.fields(), "{rendered:?}");
                    for field in paragraph.fields() {
                        assert_eq!(paragraph.get(field.name), Some(field.value));
                    }
                }
            })
        });
}

/// Where [`index::for_each_paragraph`] cuts its input (its `CHUNK`): a paragraph straddling
/// this offset is read across two buffers.
const INDEX_CHUNK: usize = 1 << 20;

/// Valid paragraphs, `before` bytes short of the chunk boundary, so that the fuzzed text
/// after them straddles it.
fn filler(before: usize) -> String {
    let stanza = "Package: filler\nVersion: 1\nArchitecture: all\nFilename: pool/f.deb\nSize: 1\nSHA256: 0000000000000000000000000000000000000000000000000000000000000000\n";
    let size = INDEX_CHUNK - before;
    let mut out = format!("{stanza}\n").repeat((size - 256) / (stanza.len() + 1));
    // The last stanza padded to end exactly there.
    let pad = size - out.len() - stanza.len() - "X-Pad: \n\n".len();
    out.push_str(stanza);
    out.push_str(&format!("X-Pad: {}\n\n", "p".repeat(pad)));
    assert_eq!(out.len(), size);
    out
}

#[test]
fn packages_index() {
    static SEEDS: Seeds = Seeds::new("packages_index");
    static ACROSS: AtomicUsize = AtomicUsize::new(0);
    check!(name = "packages_index")
        .with_test_time(BUDGET)
        .for_each(|input| {
            both(&SEEDS, input, |bytes| {
                let Ok(records) = index::read_packages(&mut &bytes[..]) else {
                    return;
                };
                // The stanzas copied out by offset read back as the same packages (in one
                // read: each costs a zeroed MiB of buffer, a few ms unoptimised).
                let wanted: Vec<_> = records.iter().map(|r| (r.offset, r.length)).collect();
                let stanzas = index::extract_stanzas(&mut &bytes[..], &wanted)
                    .expect("the records' stanzas are in the index");
                let again = index::read_packages(&mut stanzas.as_bytes()).unwrap();
                assert_eq!(again.len(), records.len(), "{stanzas:?}");
                for (again, record) in again.iter().zip(&records) {
                    assert_eq!(
                        (again.name(), again.version(), again.filename()),
                        (record.name(), record.version(), record.filename())
                    );
                    assert_eq!((again.size, again.sha256), (record.size, record.sha256));
                }
                // Read across a chunk boundary, the same records at shifted offsets. A MiB of
                // filler takes a second unoptimised: for the first input (a seed) and one in 256.
                if ACROSS.fetch_add(1, Ordering::Relaxed).is_multiple_of(256) {
                    let before = bytes.len().min(200) / 2;
                    let filler = filler(before);
                    let mut joined = filler.clone().into_bytes();
                    joined.extend_from_slice(bytes);
                    let across = index::read_packages(&mut &joined[..]).unwrap();
                    let shifted: Vec<_> = across
                        .iter()
                        .filter(|r| r.offset >= filler.len() as u64)
                        .map(|r| {
                            (
                                r.offset - filler.len() as u64,
                                r.length,
                                r.name().to_string(),
                            )
                        })
                        .collect();
                    let alone: Vec<_> = records
                        .iter()
                        .map(|r| (r.offset, r.length, r.name().to_string()))
                        .collect();
                    assert_eq!(shifted, alone);
                }
            })
        });
}

#[test]
fn sources_index() {
    static SEEDS: Seeds = Seeds::new("sources_index");
    check!(name = "sources_index")
        .with_test_time(BUDGET)
        .for_each(|input| {
            both(&SEEDS, input, |bytes| {
                let Ok(records) = index::read_sources(&mut &bytes[..]) else {
                    return;
                };
                for record in records {
                    assert!(!record.name.is_empty() && !record.version.is_empty());
                    for (path, _, _) in &record.files {
                        assert!(!path.starts_with('/') && !path.split('/').any(|c| c == ".."));
                    }
                    let end = record.offset + u64::from(record.length);
                    assert!(end <= bytes.len() as u64);
                }
            })
        });
}

#[test]
fn release() {
    static SEEDS: Seeds = Seeds::new("release");
    check!(name = "release")
        .with_test_time(BUDGET)
        .for_each(|input| {
            both(&SEEDS, input, |bytes| {
                let Some(text) = text(bytes) else { return };
                let Ok(release) = ReleaseFile::parse(text) else {
                    return;
                };
                assert!(!release.files.is_empty());
                for (path, file) in &release.files {
                    assert!(!path.starts_with('/') && !path.split('/').any(|c| c == ".."));
                    assert!(file.sha256.is_some() || file.sha512.is_some());
                }
            })
        });
}

/// Debian's keyring: the InRelease seeds verify against it.
const DEBIAN_KEYRING: &[u8] =
    include_bytes!("../../crates/airlock-core/tests/fixtures/debian-archive-keyring.gpg");

#[test]
fn inrelease() {
    static SEEDS: Seeds = Seeds::new("inrelease");
    let keyring = Keyring::parse(DEBIAN_KEYRING, "debian-archive-keyring.gpg").unwrap();
    check!(name = "inrelease")
        .with_test_time(BUDGET)
        .for_each(|input| {
            both(&SEEDS, input, |bytes| {
                let Some(document) = text(bytes) else { return };
                let body = openpgp::cleartext_body(document, "InRelease");
                if let Ok(verified) = keyring.verify_cleartext(document, "InRelease") {
                    // What verified is what an unchecked read of the same document gives.
                    assert_eq!(Some(&verified.text), body.as_ref().ok());
                    assert!(!verified.signer.is_empty());
                }
                if let Ok(body) = body {
                    let _ = ReleaseFile::parse(&body);
                }
            })
        });
}

#[test]
fn deb_package() {
    static SEEDS: Seeds = Seeds::new("deb_package");
    let scratch = Scratch::new("input.deb");
    check!(name = "deb_package")
        .with_test_time(BUDGET)
        .for_each(|input| {
            both(&SEEDS, input, |bytes| {
                let path = scratch.holding(bytes);
                // As `apt include` reads a package: the input check, then the control member.
                // read_control alone is laxer (the ar reader skips a damaged header terminator
                // that the check refuses), so only what the check lets in goes on.
                if deb::open_checked(path).is_ok()
                    && let Ok(control) = deb::read_control(path)
                {
                    assert!(control.len() <= 1 << 20);
                }
            })
        });
}

#[test]
fn simplestreams() {
    static SEEDS: Seeds = Seeds::new("simplestreams");
    check!(name = "simplestreams")
        .with_test_time(BUDGET)
        .for_each(|input| {
            both(&SEEDS, input, |bytes| {
                if let Ok(index) = serde_json::from_slice::<Index>(bytes) {
                    let rendered = render(&index);
                    let again: Index = serde_json::from_str(&rendered).unwrap();
                    assert_eq!(render(&again), rendered);
                }
                let Ok(products) = serde_json::from_slice::<Products>(bytes) else {
                    return;
                };
                let rendered = render(&products);
                let again: Products = serde_json::from_str(&rendered).unwrap();
                assert_eq!(render(&again), rendered);
                if let Ok(items) = products.checked_items() {
                    for (item, _) in items {
                        let path = &item.path;
                        assert!(!path.starts_with('/') && !path.split('/').any(|c| c == ".."));
                        assert!(!path.starts_with("streams/"));
                    }
                }
            })
        });
}

#[test]
fn snap_assertions() {
    static SEEDS: Seeds = Seeds::new("snap_assertions");
    check!(name = "snap_assertions")
        .with_test_time(BUDGET)
        .for_each(|input| {
            both(&SEEDS, input, |bytes| {
                if let Ok(one) = Assertion::parse(bytes) {
                    assert!(one.encoded().starts_with(one.signed_content()));
                    let _ = (one.primary_key(), one.reference(), one.describe());
                }
                let Ok(stream) = assertion::split_stream(bytes, "stream") else {
                    return;
                };
                // Each assertion re-reads from its own bytes, and the stream re-joined
                // splits the same.
                for one in &stream {
                    assert_eq!(Assertion::parse(one.encoded()).as_ref().ok(), Some(one));
                }
                let joined = stream
                    .iter()
                    .map(|a| a.encoded())
                    .collect::<Vec<_>>()
                    .join(&b"\n\n"[..]);
                let again = assertion::split_stream(&joined, "joined").unwrap();
                assert_eq!(again, stream);
            })
        });
}

fn zone() -> Zone {
    let addresses: [IpAddr; 2] = ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
    Zone::new(
        &["archive.ubuntu.com".into(), "images.maas.io".into()],
        &addresses,
        300,
    )
}

/// A query built from the input's bytes: names around the zone's, every type and class,
/// with and without EDNS, so that most inputs are well-formed queries.
fn dns_query(bytes: &[u8]) -> Option<Vec<u8>> {
    use hickory_proto::op::{Edns, Message, Query};
    use hickory_proto::rr::{DNSClass, Name, RecordType};
    let [id0, id1, name, kind, class, edns, labels @ ..] = bytes else {
        return None;
    };
    const NAMES: [&str; 5] = [
        "archive.ubuntu.com.",
        "gb.archive.ubuntu.com.",
        "images.maas.io.",
        "example.com.",
        ".",
    ];
    let mut name = Name::from_ascii(NAMES[usize::from(*name) % NAMES.len()]).ok()?;
    for label in labels.chunks(9).take(8) {
        name = Name::from_labels([label]).ok()?.append_name(&name).ok()?;
    }
    let mut query = Query::query(name, RecordType::from(u16::from(*kind)));
    query.set_query_class(DNSClass::from(u16::from(*class % 8)));
    let mut message = Message::query();
    message.metadata.id = u16::from_be_bytes([*id0, *id1]);
    message.metadata.recursion_desired = true;
    message.add_query(query);
    if edns % 2 == 1 {
        let mut e = Edns::new();
        e.set_max_payload(u16::from(*edns) * 32);
        message.set_edns(e);
    }
    message.to_vec().ok()
}

#[test]
fn dns_packets() {
    static SEEDS: Seeds = Seeds::new("dns_packets");
    let zone = zone();
    check!(name = "dns_packets")
        .with_test_time(BUDGET)
        .for_each(|input| {
            let built = dns_query(input);
            let mut each = |query: &[u8]| {
                for (may_forward, udp) in [(false, true), (true, true), (false, false)] {
                    match dns::decide(&zone, query, may_forward, udp) {
                        Decision::Answer(reply) => {
                            assert!(reply.len() >= 12 && reply[..2] == query[..2], "id kept");
                            assert!(reply[2] & 0x80 != 0, "a response");
                            if udp {
                                assert!(reply.len() <= dns::udp_limit(query, 1232), "fits");
                            }
                        }
                        Decision::Forward => assert!(may_forward),
                        Decision::Drop => {}
                    }
                }
                if let Some(failure) = dns::server_failure(query) {
                    assert_eq!(failure[..2], query[..2]);
                }
            };
            both(&SEEDS, input, &mut each);
            let Some(built) = built else { return };
            each(&built);
            // The input as an upstream's reply to a forwarded query, cut for its client.
            if dns::decide(&zone, &built, true, true) == Decision::Forward {
                let limit = dns::udp_limit(&built, 4096);
                both(&SEEDS, input, |reply| {
                    if let Some(cut) = dns::fit_udp(reply.to_vec(), &built, limit) {
                        assert!(cut.len() <= limit, "{} bytes for {limit}", cut.len());
                    }
                });
            }
        });
}

#[test]
fn bundle_manifest() {
    static SEEDS: Seeds = Seeds::new("bundle_manifest");
    let scratch = Scratch::new(manifest::MANIFEST);
    check!(name = "bundle_manifest")
        .with_test_time(BUDGET)
        .for_each(|input| {
            both(&SEEDS, input, |bytes| {
                let Ok(read) = manifest::read(scratch.holding(bytes), None) else {
                    return;
                };
                let m = &read.manifest;
                // What the import relies on: blobs once each, in volumes the manifest lists.
                let mut seen = std::collections::HashSet::new();
                for blob in &m.blobs {
                    assert!(seen.insert(blob.sha256));
                    if let Some(v) = &blob.volume {
                        assert!(m.volumes.iter().any(|x| &x.name == v));
                    }
                }
                for v in &m.volumes {
                    assert!(!v.name.contains('/') && !v.name.starts_with('.'));
                }
                let again = serde_json::to_vec(m).unwrap();
                let reread = manifest::read(scratch.holding(&again), None).unwrap();
                assert_eq!(&reread.manifest, m);
            })
        });
}

/// The most of one entry a target reads: volumes are fuzzed for their headers.
const MAX_ENTRY: u64 = 64 << 10;

#[test]
fn bundle_volume() {
    static SEEDS: Seeds = Seeds::new("bundle_volume");
    let scratch = Scratch::new("volume-001.tar");
    check!(name = "bundle_volume")
        .with_test_time(BUDGET)
        .for_each(|input| {
            both(&SEEDS, input, |bytes| {
                use std::io::Read;
                let count = Arc::new(AtomicU64::new(0));
                let Ok(reader) = volume::open(scratch.holding(bytes), count) else {
                    return;
                };
                // As the import reads a volume: raw entries, each checked before its bytes.
                let mut archive = tar::Archive::new(reader);
                let Ok(entries) = archive.entries() else {
                    return;
                };
                for entry in entries.raw(true).take(1000) {
                    let Ok(entry) = entry else { return };
                    let name = entry.path_bytes().into_owned();
                    if volume::entry_problem(entry.header().entry_type(), &name).is_none() {
                        let hex = name.strip_prefix(b"blobs/").expect("named blobs/");
                        assert!(
                            hex.len() == 64
                                && hex
                                    .iter()
                                    .all(|b| b.is_ascii_digit() || b"abcdef".contains(b))
                        );
                    }
                    let mut sink = Vec::new();
                    if entry.take(MAX_ENTRY).read_to_end(&mut sink).is_err() {
                        return;
                    }
                }
            })
        });
}

/// What a frontend and `airlock pull` read from a bucket besides blobs: a tree's manifest and
/// the pointer. A bucket is shared: what is in it is outside input.
#[test]
fn bucket_documents() {
    static SEEDS: Seeds = Seeds::new("bucket_documents");
    check!(name = "bucket_documents")
        .with_test_time(BUDGET)
        .for_each(|input| {
            both(&SEEDS, input, |bytes| {
                if let Some(text) = text(bytes)
                    && let Ok(manifest) =
                        Manifest::parse(text, Path::new("trees/apt/x/id.manifest"))
                {
                    // Every path stays inside its tree, and the manifest reads back as written.
                    for path in manifest.entries.keys() {
                        assert!(check_relative_path(path).is_ok(), "{path:?}");
                    }
                    let again = Manifest::parse(&manifest.render(), Path::new("again")).unwrap();
                    assert_eq!(again, manifest);
                }
                if let Ok(pointer) = serde_json::from_slice::<Published>(bytes) {
                    let written = serde_json::to_vec(&pointer).unwrap();
                    let again: Published = serde_json::from_slice(&written).unwrap();
                    assert_eq!(again, pointer);
                }
            })
        });
}

#[test]
fn config() {
    static SEEDS: Seeds = Seeds::new("config");
    check!(name = "config")
        .with_test_time(BUDGET)
        .for_each(|input| {
            both(&SEEDS, input, |bytes| {
                let Some(text) = text(bytes) else { return };
                let _ = airlock_core::config::Config::parse(text, Path::new("/etc/airlock.toml"));
            })
        });
}

/// A file beside the published trees: no request may read it.
const SECRET: &[u8] = b"never served";

/// A small published site served in-process: an apt repo and the image stream.
struct Site {
    _dir: tempfile::TempDir,
    front: airlock_core::server::Front,
    runtime: tokio::runtime::Runtime,
}

fn site() -> Site {
    use airlock_core::config::{ProxyConfig, Route};
    use airlock_core::openpgp::{KeyAlgorithm, SiteKey};
    use airlock_core::proxy::Proxy;
    use airlock_core::server::{ServerState, router};
    use airlock_core::storage::{ContentStore, Manifest, TreeSet};
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::new(dir.path());
    for (area, name, files) in [
        (
            "apt",
            "local",
            &[
                ("dists/stable/InRelease", &b"Origin: local\n"[..]),
                (
                    "dists/stable/main/binary-amd64/Packages",
                    b"Package: hello\n",
                ),
                ("pool/main/h/hello/hello_1_all.deb", &[7u8; 3000][..]),
            ][..],
        ),
        (
            "images",
            "images",
            &[("streams/v1/index.json", &b"{}\n"[..])][..],
        ),
    ] {
        let staging = store.staging();
        let mut manifest = Manifest::default();
        for (path, bytes) in files {
            let sha256 = staging.add_bytes(bytes).unwrap();
            manifest.add(path, sha256, bytes.len() as u64);
        }
        let set = if area == "apt" {
            TreeSet::apt(dir.path(), name).with_shared(&["pool"])
        } else {
            TreeSet::area(dir.path(), area)
        };
        set.publish(&store, staging, &manifest, &Manifest::default())
            .unwrap();
    }
    // What a traversal would reach.
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    let key = SiteKey::generate(KeyAlgorithm::Ed25519, "Fuzz").unwrap();
    let routes = ProxyConfig {
        routes: vec![Route {
            host: "archive.ubuntu.com".into(),
            path: "/ubuntu".into(),
            to: "/apt/local".into(),
            upstream: "http://archive.ubuntu.com/ubuntu/".into(),
            derived_from: None,
        }],
        ..ProxyConfig::default()
    };
    // Counted in memory only: nothing is written to the data folder.
    let counters = Arc::new(airlock_core::status::Counters::default());
    let proxy = Proxy::new(&routes, &["airlock.example".into()], counters.clone());
    let config = airlock_core::config::Config::parse(
        &format!(
            "[site]\ndata_dir = \"{}\"\nsigning_key = \"airlock.key\"\n",
            dir.path().display()
        ),
        &dir.path().join("airlock.toml"),
    )
    .unwrap();
    let site = airlock_core::site::Site::new(config);
    let state =
        ServerState::new(&site, "http://airlock.example:8080", &key, counters).with_proxy(proxy);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    Site {
        _dir: dir,
        front: router(state),
        runtime,
    }
}

/// Reads an input byte by byte; past its end, zeros.
struct Picker<'a> {
    bytes: &'a [u8],
}

impl<'a> Picker<'a> {
    fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((b, rest)) => {
                self.bytes = rest;
                *b
            }
            None => 0,
        }
    }

    fn pick<T: Copy>(&mut self, list: &[T]) -> T {
        list[usize::from(self.byte()) % list.len()]
    }

    fn rest(self) -> &'a [u8] {
        self.bytes
    }
}

const METHODS: &[&str] = &[
    "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "CONNECT", "PATCH", "TRACE", "BREW",
];
const HOSTS: &[&str] = &[
    "",
    "airlock.example:8080",
    "archive.ubuntu.com",
    "ARCHIVE.Ubuntu.COM.",
    "archive.ubuntu.com:443",
    "images.maas.io",
    "[::1]:8080",
    "127.0.0.1",
    "a..b",
];
const PREFIXES: &[&str] = &[
    "",
    "",
    "http://archive.ubuntu.com",
    "http://airlock.example:8080",
];
/// Path segments the routes know, and the ones a traversal or a bad encoding tries.
const SEGMENTS: &[&str] = &[
    "apt",
    "local",
    "dists",
    "stable",
    "InRelease",
    "main",
    "binary-amd64",
    "Packages",
    "pool",
    "h",
    "hello",
    "hello_1_all.deb",
    "by-hash",
    "SHA256",
    "images",
    "streams",
    "v1",
    "index.json",
    "ubuntu",
    "v2",
    "snaps",
    "info",
    "refresh",
    "find",
    "categories",
    "assertions",
    "account-key",
    "api",
    "download",
    "x_1.snap",
    "icon",
    "sections",
    "names",
    "auth",
    "nonces",
    "sessions",
    "airlock.gpg",
    "airlock.asc",
    "status.json",
    "secret",
    "",
    ".",
    "..",
    "%2e%2e",
    "%2F",
    "%00",
    "%ff",
    "%",
    "a%20b",
    "?",
    "?q=x&fields=a,b",
    "#f",
    "*",
];
const HEADERS: &[(&str, &[&str])] = &[
    (
        "range",
        &[
            "bytes=0-10",
            "bytes=-5",
            "bytes=5-1",
            "bytes=0-0,2-3",
            "bytes=99999999999999999999-",
            "items=1-2",
        ],
    ),
    (
        "if-modified-since",
        &[
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "yesterday",
        ],
    ),
    ("if-none-match", &["*", "\"x\"", "W/\"x\", \"y\""]),
    ("if-range", &["\"x\"", "Sun, 06 Nov 1994 08:49:37 GMT"]),
    ("accept-encoding", &["gzip", "zstd;q=0", "*"]),
    ("content-type", &["application/json", "text/plain"]),
    ("content-length", &["0", "5", "18446744073709551616"]),
    ("snap-device-series", &["16", "99", ""]),
    ("snap-device-architecture", &["amd64", "s390x"]),
    ("authorization", &["Macaroon root=x", "Bearer"]),
    ("connection", &["close", "upgrade"]),
    ("x-forwarded-for", &["127.0.0.1", "::1, 127.0.0.2"]),
];

/// A request made from the input: a method, a path of known and hostile segments, headers
/// with edge values, and the rest of the input as its body.
fn request(input: &[u8]) -> Option<axum::http::Request<axum::body::Body>> {
    let mut p = Picker { bytes: input };
    let method = p.pick(METHODS);
    let host = p.pick(HOSTS);
    let mut uri = p.pick(PREFIXES).to_string();
    for _ in 0..p.byte() % 8 {
        uri.push('/');
        uri.push_str(p.pick(SEGMENTS));
    }
    if uri.is_empty() || !uri.starts_with(['/', 'h']) {
        uri.insert(0, '/');
    }
    let mut builder = axum::http::Request::builder().method(method).uri(uri);
    if !host.is_empty() {
        builder = builder.header("host", host);
    }
    for _ in 0..p.byte() % 4 {
        let (name, values) = p.pick(HEADERS);
        builder = builder.header(name, p.pick(values));
    }
    builder.body(axum::body::Body::from(p.rest().to_vec())).ok()
}

/// The most of a response body a target reads.
const MAX_BODY: usize = 1 << 20;

#[test]
fn http_requests() {
    use tower::ServiceExt;
    static SEEDS: Seeds = Seeds::new("http_requests");
    // What the router shares between requests is counters and caches: one left half-updated
    // by a panicking input (bolero goes on to shrink it) cannot hide a later failure.
    let site = std::panic::AssertUnwindSafe(site());
    check!(name = "http_requests")
        .with_test_time(BUDGET)
        .for_each(|input| {
            both(&SEEDS, input, |bytes| {
                let Some(request) = request(bytes) else {
                    return;
                };
                let described = format!(
                    "{} {} {:?}",
                    request.method(),
                    request.uri(),
                    request.headers()
                );
                let response = site
                    .runtime
                    .block_on(site.front.clone().oneshot(request))
                    .unwrap();
                let status = response.status();
                // Nonsense is the client's fault: never a server error, never a panic.
                assert!(!status.is_server_error(), "{described}: {status}");
                let body = site
                    .runtime
                    .block_on(axum::body::to_bytes(response.into_body(), MAX_BODY));
                // hyper drops the body of an answer to HEAD; what a GET would get is checked.
                if let Ok(body) = body {
                    let leaked = body.windows(SECRET.len()).any(|w| w == SECRET);
                    assert!(!leaked, "{described}: a file outside the served trees");
                }
            })
        });
}
