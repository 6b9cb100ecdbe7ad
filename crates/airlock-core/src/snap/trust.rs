//! Which assertions to believe: a chain of signatures up to a trusted root account-key, as
//! snapd checks it. The root is Canonical's, built in (the same bytes snapd embeds); more
//! roots only when the config names them (`[snaps] trusted_keys`: private brand stores, tests).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pgp::crypto::public_key::PublicKeyAlgorithm;
use pgp::packet::{Packet, PacketParser};
use pgp::types::KeyDetails;

use super::assertion::{Assertion, AssertionError, failed, key_id, snapd_key_packet, split_stream};

const CANONICAL_ROOT: &[u8] = include_bytes!("canonical-root.assert");

/// Types only a trusted account may sign (snapd: signed by a directly trusted authority).
const TRUSTED_AUTHORITY_ONLY: &[&str] = &[
    "account",
    "account-key",
    "snap-declaration",
    "snap-revision",
    "store",
    "base-declaration",
];

fn error(assertion: &Assertion, reason: impl Into<String>) -> AssertionError {
    AssertionError {
        what: assertion.describe(),
        reason: reason.into(),
        source: None,
    }
}

#[derive(Clone, Debug)]
pub struct Trust {
    roots: Vec<Assertion>,
}

impl Trust {
    /// Canonical's root account and account-key.
    pub fn canonical() -> Trust {
        let roots = split_stream(CANONICAL_ROOT, "built-in Canonical root")
            .expect("the built-in Canonical root parses");
        Trust { roots }
    }

    /// Adds root account-keys (and their accounts) from an `.assert` file's bytes. They are
    /// believed as given, so each must be an account-key whose id matches its own key.
    pub fn add_roots(&mut self, bytes: &[u8], what: &str) -> Result<(), AssertionError> {
        let assertions = split_stream(bytes, what)?;
        if !assertions.iter().any(|a| a.kind() == "account-key") {
            return Err(AssertionError {
                what: what.to_string(),
                reason: "holds no account-key assertion to trust".into(),
                source: None,
            });
        }
        for a in &assertions {
            if a.kind() == "account-key" {
                public_key(a)?;
            }
        }
        self.roots.extend(assertions);
        Ok(())
    }

    pub fn is_root(&self, assertion: &Assertion) -> bool {
        self.roots.iter().any(|r| r == assertion)
    }

    /// The root assertions (believed as given).
    pub fn roots(&self) -> &[Assertion] {
        &self.roots
    }

    fn trusted_account(&self, account: &str) -> bool {
        self.roots
            .iter()
            .any(|r| r.kind() == "account-key" && r.header("account-id") == Some(account))
    }

    /// Checks `assertion`'s signature chain; the signing account-keys are looked up in the
    /// roots, then in `pool`. Returns the account-keys of `pool` the chain went through (the
    /// ones to keep with it), nearest first.
    pub fn verify<'a>(
        &self,
        assertion: &'a Assertion,
        pool: &[&'a Assertion],
    ) -> Result<Vec<&'a Assertion>, AssertionError> {
        let mut keys = Vec::new();
        self.verify_at(assertion, pool, 0, &mut keys)?;
        Ok(keys)
    }

    fn verify_at<'a>(
        &self,
        assertion: &'a Assertion,
        pool: &[&'a Assertion],
        depth: usize,
        keys: &mut Vec<&'a Assertion>,
    ) -> Result<(), AssertionError> {
        if self.is_root(assertion) {
            return Ok(());
        }
        if depth > 4 {
            return Err(error(assertion, "the chain of account-keys is too long"));
        }
        if TRUSTED_AUTHORITY_ONLY.contains(&assertion.kind())
            && !self.trusted_account(assertion.authority())
        {
            return Err(error(
                assertion,
                format!(
                    "signed by authority {:?}, which is not a trusted root (trusted: {})",
                    assertion.authority(),
                    self.root_accounts().join(", ")
                ),
            ));
        }
        let wanted = assertion.sign_key();
        let is_key = |a: &&Assertion| {
            a.kind() == "account-key" && a.header("public-key-sha3-384") == Some(wanted)
        };
        let (key, from_pool) = match self.roots.iter().find(is_key) {
            Some(k) => (k, None),
            None => match pool.iter().copied().find(|a| is_key(a)) {
                Some(k) => (k, Some(k)),
                None => {
                    return Err(error(
                        assertion,
                        format!("the account-key {wanted} that signed it is not known"),
                    ));
                }
            },
        };
        if key.header("account-id") != Some(assertion.authority()) {
            return Err(error(
                assertion,
                format!(
                    "signed by a key of account {:?}, not of its authority {:?}",
                    key.header("account-id").unwrap_or(""),
                    assertion.authority()
                ),
            ));
        }
        check_validity(assertion, key)?;
        check_signature(assertion, key)?;
        if let Some(key) = from_pool {
            self.verify_at(key, pool, depth + 1, keys)?;
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        Ok(())
    }

    fn root_accounts(&self) -> Vec<&str> {
        let mut accounts: Vec<&str> = self
            .roots
            .iter()
            .filter(|r| r.kind() == "account-key")
            .filter_map(|r| r.header("account-id"))
            .collect();
        accounts.dedup();
        accounts
    }
}

/// An account-key is valid from `since` until `until`; an assertion with a timestamp must
/// have been signed then.
fn check_validity(assertion: &Assertion, key: &Assertion) -> Result<(), AssertionError> {
    let Some(when) = assertion.time("timestamp")? else {
        return Ok(());
    };
    if let Some(since) = key.time("since")?
        && when < since
    {
        return Err(error(
            assertion,
            format!("its timestamp {when} is before its signing key's since {since}"),
        ));
    }
    if let Some(until) = key.time("until")?
        && when >= until
    {
        return Err(error(
            assertion,
            format!("its timestamp {when} is after its signing key's until {until}"),
        ));
    }
    Ok(())
}

/// The public key an account-key carries, checked against the id it claims (computed as
/// snapd computes it, see [`snapd_key_packet`]).
fn public_key(key: &Assertion) -> Result<pgp::packet::PublicKey, AssertionError> {
    use pgp::ser::Serialize;
    let text: Vec<u8> = key
        .body()
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| failed(&key.describe(), "the key body is not base64", e))?;
    let public = match bytes.split_first() {
        Some((1, packet)) => match PacketParser::new(packet).next() {
            // snapd's OpenPGP reads RSA keys only: anything else would fail on every client.
            Some(Ok(Packet::PublicKey(k))) if k.algorithm() == PublicKeyAlgorithm::RSA => k,
            Some(Ok(Packet::PublicKey(k))) => {
                return Err(error(
                    key,
                    format!(
                        "the key is {:?}; snapd accepts only RSA account-keys",
                        k.algorithm()
                    ),
                ));
            }
            _ => return Err(error(key, "the body is not an OpenPGP public key")),
        },
        _ => return Err(error(key, "the key body is not in snapd's format 1")),
    };
    let mut packet_body = Vec::new();
    public
        .to_writer(&mut packet_body)
        .map_err(|e| failed(&key.describe(), "unusable key", e))?;
    if key.header("public-key-sha3-384") != Some(key_id(&snapd_key_packet(&packet_body)).as_str()) {
        return Err(error(
            key,
            "public-key-sha3-384 does not match the key it holds",
        ));
    }
    Ok(public)
}

fn check_signature(assertion: &Assertion, key: &Assertion) -> Result<(), AssertionError> {
    let public = public_key(key)?;
    let signature = match PacketParser::new(assertion.signature_packet()).next() {
        Some(Ok(Packet::Signature(s))) => s,
        _ => {
            return Err(error(
                assertion,
                "the signature is not an OpenPGP signature",
            ));
        }
    };
    // snapd picks the key by sign-key-sha3-384; the unhashed issuer hint is not covered by
    // the signature and, in Canonical's root signatures, names another key id: drop it, or
    // rPGP refuses to try the key.
    let (Some(config), Some(hash_value), Some(bytes)) = (
        signature.config(),
        signature.signed_hash_value(),
        signature.signature(),
    ) else {
        return Err(error(
            assertion,
            "the signature is of an unsupported OpenPGP version",
        ));
    };
    let mut config = config.clone();
    config.unhashed_subpackets.clear();
    let signature = pgp::packet::Signature::from_config(config, hash_value, bytes.clone())
        .map_err(|e| failed(&assertion.describe(), "unusable signature", e))?;
    signature
        .verify(&public, assertion.signed_content())
        .map_err(|_| {
            error(
                assertion,
                "the signature does not verify: the assertion was altered or signed by another key",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snap::assertion::{account_key_body, public_key_packet, sign};

    fn stream(bytes: &[u8]) -> Vec<Assertion> {
        split_stream(bytes, "test").unwrap()
    }

    #[test]
    fn real_canonical_chain_verifies() {
        let trust = Trust::canonical();
        let store = stream(include_bytes!("testdata/snapd-enterprise-store.assert"));
        let salad = stream(include_bytes!("testdata/word-salad.assert"));
        let go = stream(include_bytes!("testdata/go-declaration.assert"));
        let pool: Vec<&Assertion> = store.iter().chain(&salad).chain(&go).collect();
        for a in &pool {
            trust.verify(a, &pool).unwrap_or_else(|e| panic!("{e}"));
        }
        // Without the store's account-key the chain is broken, and the error says which key.
        let without: Vec<&Assertion> = salad.iter().collect();
        let e = trust.verify(&salad[2], &without).unwrap_err().to_string();
        assert!(
            e.contains("BWDEoaqyr25nF5SNCvEv2v7QnM9QsfCc0PBMYD_i2NGSQ32EF2d4D0hqUel3m8ul"),
            "{e}"
        );
        assert!(e.contains("snap-revision"), "{e}");
    }

    #[test]
    fn altered_assertion_fails() {
        let trust = Trust::canonical();
        let store = stream(include_bytes!("testdata/snapd-enterprise-store.assert"));
        let text = String::from_utf8(include_bytes!("testdata/word-salad.assert").to_vec())
            .unwrap()
            .replace("snap-size: 8192", "snap-size: 8193");
        let salad = stream(text.as_bytes());
        let pool: Vec<&Assertion> = store.iter().chain(&salad).collect();
        let e = trust.verify(&salad[2], &pool).unwrap_err().to_string();
        assert!(e.contains("does not verify"), "{e}");
    }

    fn test_key() -> pgp::composed::SignedSecretKey {
        crate::openpgp::SiteKey::generate(crate::openpgp::KeyAlgorithm::Rsa4096, "test root")
            .unwrap()
            .secret_key()
            .clone()
    }

    fn account_key(
        signer: &pgp::composed::SignedSecretKey,
        authority: &str,
        account: &str,
        key: &pgp::composed::SignedSecretKey,
    ) -> Assertion {
        let body = account_key_body(key);
        let id = key_id(&public_key_packet(key));
        sign(
            &[
                ("type", "account-key"),
                ("authority-id", authority),
                ("public-key-sha3-384", &id),
                ("account-id", account),
                ("name", "test"),
                ("since", "2020-01-01T00:00:00Z"),
            ],
            body.as_bytes(),
            signer,
        )
        .unwrap()
    }

    #[test]
    fn test_root_chain() {
        let root_key = test_key();
        let store_key = test_key();
        let root = account_key(&root_key, "testroot", "testroot", &root_key);
        let mut trust = Trust::canonical();
        trust.add_roots(root.encoded(), "root.assert").unwrap();

        let store = account_key(&root_key, "testroot", "testroot", &store_key);
        let declaration = sign(
            &[
                ("type", "snap-declaration"),
                ("authority-id", "testroot"),
                ("series", "16"),
                ("snap-id", "abcdefghijklmnopqrstuvwxyz012345"),
                ("publisher-id", "testroot"),
                ("snap-name", "hello"),
                ("timestamp", "2024-01-01T00:00:00Z"),
            ],
            b"",
            &store_key,
        )
        .unwrap();
        assert!(trust.verify(&declaration, &[&store]).is_ok());
        // Not a root on its own: another site's trust does not know the key.
        let e = Trust::canonical()
            .verify(&declaration, &[&store])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a trusted root"), "{e}");
        // A key that is valid only later does not cover an earlier signature.
        let late = sign(
            &[
                ("type", "snap-declaration"),
                ("authority-id", "testroot"),
                ("series", "16"),
                ("snap-id", "abcdefghijklmnopqrstuvwxyz012345"),
                ("publisher-id", "testroot"),
                ("snap-name", "hello"),
                ("timestamp", "2019-01-01T00:00:00Z"),
            ],
            b"",
            &store_key,
        )
        .unwrap();
        let e = trust.verify(&late, &[&store]).unwrap_err().to_string();
        assert!(e.contains("before its signing key's since"), "{e}");
        // An account-key signed by a key outside the chain.
        let rogue_key = test_key();
        let rogue = account_key(&rogue_key, "testroot", "testroot", &store_key);
        let e = trust
            .verify(&declaration, &[&rogue])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not known"), "{e}");
    }
}
