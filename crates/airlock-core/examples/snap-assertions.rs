//! Signs a test authority's assertions for snaps, as a benchmark or a demo needs them:
//!
//!   cargo run --release -p airlock-core --example snap-assertions -- OUT_DIR NAME=FILE.snap...
//!
//! Writes OUT_DIR/root.assert (the root to put in `[snaps] trusted_keys`) and, next to each
//! snap, FILE.assert with its account-key, publisher account, snap-declaration and
//! snap-revision (revision 1). For tests and benchmarks only: real snaps carry Canonical's.

use std::path::PathBuf;

use airlock_core::openpgp::{KeyAlgorithm, SiteKey};
use airlock_core::snap::assertion::{self, Assertion, account_key_body, key_id, public_key_packet};
use sha3::{Digest, Sha3_384};

fn sign(key: &SiteKey, headers: &[(&str, &str)], body: &str) -> Assertion {
    assertion::sign(headers, body.as_bytes(), key.secret_key()).expect("signing works")
}

fn account_key(signer: &SiteKey, key: &SiteKey) -> Assertion {
    let id = key_id(&public_key_packet(key.secret_key()));
    sign(
        signer,
        &[
            ("type", "account-key"),
            ("authority-id", "benchroot"),
            ("public-key-sha3-384", &id),
            ("account-id", "benchroot"),
            ("name", "bench"),
            ("since", "2020-01-01T00:00:00Z"),
        ],
        &account_key_body(key.secret_key()),
    )
}

fn stream(assertions: &[Assertion]) -> Vec<u8> {
    assertions
        .iter()
        .flat_map(|a| [a.encoded(), b"\n\n"].concat())
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().expect("usage: OUT_DIR NAME=FILE.snap..."));
    let root = SiteKey::generate(KeyAlgorithm::Rsa4096, "bench root").expect("keygen");
    let account = sign(
        &root,
        &[
            ("type", "account"),
            ("authority-id", "benchroot"),
            ("account-id", "benchroot"),
            ("display-name", "Bench Root"),
            ("username", "benchroot"),
            ("validation", "certified"),
            ("timestamp", "2020-01-01T00:00:00Z"),
        ],
        "",
    );
    let root_key = account_key(&root, &root);
    std::fs::write(out.join("root.assert"), stream(&[root_key, account]))
        .expect("write root.assert");
    for (index, arg) in args.enumerate() {
        let (name, file) = arg.split_once('=').expect("NAME=FILE.snap");
        let snap = PathBuf::from(file);
        let mut hasher = Sha3_384::new();
        let mut reader = std::fs::File::open(&snap).expect("open snap");
        let size = std::io::copy(&mut reader, &mut hasher).expect("read snap");
        let digest = assertion::snap_digest_b64(&hasher.finalize());
        let snap_id = format!("{:0<32}", format!("bench{index}"));
        let size = size.to_string();
        let assertions = [
            sign(
                &root,
                &[
                    ("type", "snap-declaration"),
                    ("authority-id", "benchroot"),
                    ("series", "16"),
                    ("snap-id", &snap_id),
                    ("publisher-id", "benchroot"),
                    ("snap-name", name),
                    ("timestamp", "2024-01-01T00:00:00Z"),
                ],
                "",
            ),
            sign(
                &root,
                &[
                    ("type", "snap-revision"),
                    ("authority-id", "benchroot"),
                    ("snap-sha3-384", &digest),
                    ("developer-id", "benchroot"),
                    ("snap-id", &snap_id),
                    ("snap-revision", "1"),
                    ("snap-size", &size),
                    ("timestamp", "2024-01-01T00:00:00Z"),
                ],
                "",
            ),
        ];
        std::fs::write(snap.with_extension("assert"), stream(&assertions)).expect("write .assert");
    }
}
