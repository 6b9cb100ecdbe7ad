//! Real snaps built by mksquashfs, and their assertions signed by a test root authority that a
//! site trusts through `[snaps] trusted_keys`.

use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_core::openpgp::{KeyAlgorithm, SiteKey};
use airlock_core::snap::assertion::{self, Assertion, account_key_body, key_id, public_key_packet};
use sha3::{Digest, Sha3_384};

/// The snap-id of hello-airlock, the test snap.
pub const SNAP_ID: &str = "hElL0A1rl0ck5nap1dF0rTest5xxxxxx";

/// A root authority (trusted through `[snaps] trusted_keys`) and its store key.
pub struct Authority {
    root: SiteKey,
    store: SiteKey,
}

/// Assertions as one file holds them: each followed by a blank line.
pub fn encode(assertions: &[&Assertion]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in assertions {
        out.extend_from_slice(a.encoded());
        out.extend_from_slice(b"\n\n");
    }
    out
}

impl Authority {
    /// Two fresh RSA keys (snapd reads RSA account-keys only): a few seconds.
    pub fn new() -> Authority {
        let key = || SiteKey::generate(KeyAlgorithm::Rsa4096, "snap test").unwrap();
        Authority {
            root: key(),
            store: key(),
        }
    }

    fn sign(&self, signer: &SiteKey, headers: &[(&str, &str)], body: &str) -> Assertion {
        assertion::sign(headers, body.as_bytes(), signer.secret_key()).unwrap()
    }

    fn account_key(&self, signer: &SiteKey, key: &SiteKey) -> Assertion {
        let id = key_id(&public_key_packet(key.secret_key()));
        self.sign(
            signer,
            &[
                ("type", "account-key"),
                ("authority-id", "testroot"),
                ("public-key-sha3-384", &id),
                ("account-id", "testroot"),
                ("name", "store"),
                ("since", "2020-01-01T00:00:00Z"),
            ],
            &account_key_body(key.secret_key()),
        )
    }

    /// Writes root.assert in `dir`, what the site trusts: the root's self-signed account-key
    /// and its account.
    pub fn root_file(&self, dir: &Path) -> PathBuf {
        let root_key = self.account_key(&self.root, &self.root);
        let account = self.sign(
            &self.root,
            &[
                ("type", "account"),
                ("authority-id", "testroot"),
                ("account-id", "testroot"),
                ("display-name", "Test Root"),
                ("username", "testroot"),
                ("validation", "certified"),
                ("timestamp", "2020-01-01T00:00:00Z"),
            ],
            "",
        );
        let path = dir.join("root.assert");
        std::fs::write(&path, encode(&[&root_key, &account])).unwrap();
        path
    }

    /// The chain `snap download` writes for hello-airlock: store key, publisher, declaration,
    /// revision. `size` overrides the snap's own size in the revision.
    pub fn snap_assertions(&self, snap: &Path, revision: u64, size: Option<u64>) -> Vec<Assertion> {
        self.assertions_for(snap, "hello-airlock", SNAP_ID, revision, size)
    }

    /// The same chain for any snap name and snap-id.
    pub fn assertions_for(
        &self,
        snap: &Path,
        name: &str,
        snap_id: &str,
        revision: u64,
        size: Option<u64>,
    ) -> Vec<Assertion> {
        let bytes = std::fs::read(snap).unwrap();
        let digest = assertion::snap_digest_b64(&Sha3_384::digest(&bytes));
        let size = size.unwrap_or(bytes.len() as u64).to_string();
        let revision = revision.to_string();
        vec![
            self.account_key(&self.root, &self.store),
            self.sign(
                &self.store,
                &[
                    ("type", "account"),
                    ("authority-id", "testroot"),
                    ("account-id", "publisher1"),
                    ("display-name", "Airlock Tester"),
                    ("username", "tester"),
                    ("validation", "verified"),
                    ("timestamp", "2024-01-01T00:00:00Z"),
                ],
                "",
            ),
            self.sign(
                &self.store,
                &[
                    ("type", "snap-declaration"),
                    ("authority-id", "testroot"),
                    ("series", "16"),
                    ("snap-id", snap_id),
                    ("publisher-id", "publisher1"),
                    ("snap-name", name),
                    ("timestamp", "2024-01-01T00:00:00Z"),
                ],
                "",
            ),
            self.sign(
                &self.store,
                &[
                    ("type", "snap-revision"),
                    ("authority-id", "testroot"),
                    ("snap-sha3-384", &digest),
                    ("developer-id", "publisher1"),
                    ("snap-id", snap_id),
                    ("snap-revision", &revision),
                    ("snap-size", &size),
                    ("timestamp", "2024-02-01T00:00:00Z"),
                ],
                "",
            ),
        ]
    }

    /// Writes NAME.assert next to hello-airlock's snap: its chain of assertions.
    pub fn assert_file(&self, snap: &Path, revision: u64) -> PathBuf {
        self.assert_file_for(snap, "hello-airlock", SNAP_ID, revision)
    }

    /// Writes NAME.assert next to the snap, for any snap name and snap-id.
    pub fn assert_file_for(
        &self,
        snap: &Path,
        name: &str,
        snap_id: &str,
        revision: u64,
    ) -> PathBuf {
        let assertions = self.assertions_for(snap, name, snap_id, revision, None);
        let path = snap.with_extension("assert");
        std::fs::write(&path, encode(&assertions.iter().collect::<Vec<_>>())).unwrap();
        path
    }
}

/// A real snap: a squashfs image made by mksquashfs with the given compressor.
pub fn build_snap(dir: &Path, file: &str, yaml: &str, compressor: &str) -> PathBuf {
    let tree = dir.join(format!("{file}.tree"));
    std::fs::create_dir_all(tree.join("meta/gui")).unwrap();
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(tree.join("meta/snap.yaml"), yaml).unwrap();
    std::fs::write(
        tree.join("meta/gui/icon.png"),
        b"\x89PNG\r\n\x1a\nnot really",
    )
    .unwrap();
    std::fs::write(
        tree.join("bin/hello"),
        "#!/bin/sh\necho hello from airlock\n",
    )
    .unwrap();
    let snap = dir.join(file);
    let out = Command::new("mksquashfs")
        .arg(&tree)
        .arg(&snap)
        .args([
            "-noappend",
            "-all-root",
            "-no-progress",
            "-comp",
            compressor,
        ])
        .output()
        .expect("mksquashfs (squashfs-tools) is installed");
    assert!(
        out.status.success(),
        "mksquashfs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    snap
}

/// hello-airlock's snap.yaml at `version`.
pub fn snap_yaml(version: &str) -> String {
    format!(
        "name: hello-airlock\nversion: '{version}'\nsummary: Says hello from the air gap\n\
         description: A test snap served by airlock's offline store.\nbase: core22\n\
         confinement: strict\ngrade: stable\nlicense: MIT\narchitectures: [amd64]\n\
         apps:\n  hello-airlock:\n    command: bin/hello\n"
    )
}
