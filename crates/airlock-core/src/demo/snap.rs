//! The demo's snap: a tiny squashfs image written here (backhand) and its assertions, signed
//! by a demo root authority whose account-key the demo site trusts (`[snaps] trusted_keys`).
//! Real snaps carry Canonical's assertions; this root exists only in the demo's folder.

use std::path::{Path, PathBuf};

use sha3::{Digest, Sha3_384};

use super::DemoError;
use crate::openpgp::{KeyAlgorithm, SiteKey};
use crate::site::generate_key;
use crate::snap::assertion::{self, Assertion, account_key_body, key_id, public_key_packet};
use crate::storage::write_atomic;

pub const NAME: &str = "hello-airlock";
/// 32 characters, as store snap-ids are.
const SNAP_ID: &str = "AirlockDemoSnap0000000000000001A";
const AUTHORITY: &str = "airlock-demo";
const SINCE: &str = "2020-01-01T00:00:00Z";

/// The files the demo imports: the snap, its assertions beside it, and the root to trust.
pub(super) struct DemoSnap {
    pub snap: PathBuf,
    pub root: PathBuf,
}

/// Writes (or reuses) the demo root's key and root.assert, the snap and its `.assert` in
/// `dir`. The root is an RSA key (snapd reads no other): made once, a second or two.
pub(super) fn prepare(dir: &Path) -> Result<DemoSnap, DemoError> {
    let key_path = dir.join("demo-root.key");
    let root = dir.join("demo-root.assert");
    let snap = dir.join(format!("{NAME}_1.snap"));
    let asserts = snap.with_extension("assert");
    if key_path.exists() && root.exists() && snap.exists() && asserts.exists() {
        return Ok(DemoSnap { snap, root });
    }
    if !key_path.exists() {
        generate_key(
            &key_path,
            KeyAlgorithm::Rsa4096,
            "airlock demo snap root <airlock@demo.invalid>",
        )?;
    }
    let key = SiteKey::load(&key_path).map_err(crate::site::SiteError::from)?;
    let signer = Signer { key: &key };
    write_atomic(
        &root,
        &encode(&[signer.account_key()?, signer.account()?]),
        0o644,
    )?;
    let bytes = squashfs()?;
    write_atomic(&snap, &bytes, 0o644)?;
    write_atomic(&asserts, &encode(&signer.snap(&bytes)?), 0o644)?;
    Ok(DemoSnap { snap, root })
}

/// The snap's image: meta/snap.yaml, an icon and the command.
fn squashfs() -> Result<Vec<u8>, DemoError> {
    let yaml = format!(
        "name: {NAME}\nversion: '1.0'\nsummary: Says hello from the air gap\n\
         description: The airlock demo's snap, served by airlock's offline store.\n\
         confinement: strict\ngrade: stable\nlicense: MIT\narchitectures: [amd64, arm64]\n\
         apps:\n  {NAME}:\n    command: bin/hello\n"
    );
    let icon = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" height=\"64\">\
                <circle cx=\"32\" cy=\"32\" r=\"30\" fill=\"#e95420\"/></svg>\n";
    let hello = "#!/bin/sh\necho hello from the airlock demo snap\n";
    super::squashfs::write(&[
        ("meta/snap.yaml", yaml.as_bytes(), 0o644),
        ("meta/gui/icon.svg", icon.as_bytes(), 0o644),
        ("bin/hello", hello.as_bytes(), 0o755),
    ])
}

/// Assertions as an `.assert` file holds them: each followed by a blank line.
fn encode(assertions: &[Assertion]) -> Vec<u8> {
    assertions
        .iter()
        .flat_map(|a| [a.encoded(), b"\n\n"].concat())
        .collect()
}

/// The demo root: it signs its own account-key and account, and the snap's declaration and
/// revision (it is the snap's publisher too).
struct Signer<'a> {
    key: &'a SiteKey,
}

impl Signer<'_> {
    fn sign(&self, headers: &[(&str, &str)], body: &str) -> Result<Assertion, DemoError> {
        Ok(assertion::sign(
            headers,
            body.as_bytes(),
            self.key.secret_key(),
        )?)
    }

    fn account_key(&self) -> Result<Assertion, DemoError> {
        let key = self.key.secret_key();
        self.sign(
            &[
                ("type", "account-key"),
                ("authority-id", AUTHORITY),
                ("public-key-sha3-384", &key_id(&public_key_packet(key))),
                ("account-id", AUTHORITY),
                ("name", "root"),
                ("since", SINCE),
            ],
            &account_key_body(key),
        )
    }

    fn account(&self) -> Result<Assertion, DemoError> {
        self.sign(
            &[
                ("type", "account"),
                ("authority-id", AUTHORITY),
                ("account-id", AUTHORITY),
                ("display-name", "airlock demo"),
                ("username", AUTHORITY),
                ("validation", "verified"),
                ("timestamp", SINCE),
            ],
            "",
        )
    }

    /// The snap-declaration and snap-revision (revision 1) of `snap`'s bytes.
    fn snap(&self, snap: &[u8]) -> Result<Vec<Assertion>, DemoError> {
        let digest = assertion::snap_digest_b64(&Sha3_384::digest(snap));
        let size = snap.len().to_string();
        let now = jiff::Timestamp::now().to_string();
        Ok(vec![
            self.sign(
                &[
                    ("type", "snap-declaration"),
                    ("authority-id", AUTHORITY),
                    ("series", "16"),
                    ("snap-id", SNAP_ID),
                    ("publisher-id", AUTHORITY),
                    ("snap-name", NAME),
                    ("timestamp", &now),
                ],
                "",
            )?,
            self.sign(
                &[
                    ("type", "snap-revision"),
                    ("authority-id", AUTHORITY),
                    ("snap-sha3-384", &digest),
                    ("developer-id", AUTHORITY),
                    ("snap-id", SNAP_ID),
                    ("snap-revision", "1"),
                    ("snap-size", &size),
                    ("timestamp", &now),
                ],
                "",
            )?,
        ])
    }
}
