//! OpenPGP in-process with rPGP: the site key that signs everything airlock publishes, and
//! verification of cleartext signatures. No gpg binary, no GNUPGHOME.
//!
//! Two rPGP 0.21 behaviours shape this module (see `shared/specs/rpgp.md`): cleartext signing
//! hashes trailing spaces that verifiers strip, so text is trimmed before signing; and RFC 9580
//! Ed25519 keys are unreadable by the gpgv in Debian 12, so ed25519 means `Ed25519Legacy`.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use crate::hint::Hint;
use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, KeyType,
    SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password, Timestamp, VerifyingKey};
use smallvec::smallvec;

use crate::storage::read_limited;

/// Key files are a few KiB (an RSA-4096 secret key with its certifications under 10).
const MAX_KEY: u64 = 1 << 20;
/// Keyrings hold a handful of keys; Debian's whole archive keyring is under 100 KiB.
const MAX_KEYRING: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum OpenPgpError {
    #[error("cannot read signing key {path}")]
    ReadKey {
        path: PathBuf,
        #[source]
        source: crate::storage::StorageError,
    },
    #[error("{path} is not an OpenPGP secret key")]
    ParseKey {
        path: PathBuf,
        #[source]
        source: RpgpError,
    },
    #[error(
        "{path} is not an OpenPGP secret key: it holds a public key; signing needs the secret key"
    )]
    PublicKey { path: PathBuf },
    #[error("signing key {path} is protected by a passphrase, which airlock does not support")]
    LockedKey { path: PathBuf },
    #[error("signing key {path} cannot make signatures")]
    UnusableKey {
        path: PathBuf,
        #[source]
        source: Box<OpenPgpError>,
    },
    #[error("cannot generate a {algorithm} key")]
    Generate {
        algorithm: KeyAlgorithm,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot sign {what}")]
    Sign {
        what: String,
        #[source]
        source: RpgpError,
    },
    #[error("signature of {what} is not valid: {reason}")]
    BadSignature { what: String, reason: String },
    #[error("signature of {what} is not valid")]
    ParseSignature {
        what: String,
        #[source]
        source: RpgpError,
    },
    #[error("cannot read keyring {path}")]
    ReadKeyring {
        path: PathBuf,
        #[source]
        source: crate::storage::StorageError,
    },
    #[error("{what} is not an OpenPGP keyring")]
    ParseKeyring {
        what: String,
        #[source]
        source: RpgpError,
    },
    #[error("{path} is not an OpenPGP keyring: it holds no public key")]
    EmptyKeyring { path: PathBuf },
}

/// An rPGP error in its first words: rPGP's own text already carries its causes (and, for
/// some, debug detail), so it ends the chain.
#[derive(Debug)]
pub struct RpgpError(pgp::errors::Error);

impl std::fmt::Display for RpgpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&concise(&self.0))
    }
}

impl std::error::Error for RpgpError {}

impl Hint for OpenPgpError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            OpenPgpError::ReadKey { .. }
            | OpenPgpError::ParseKey { .. }
            | OpenPgpError::PublicKey { .. }
            | OpenPgpError::LockedKey { .. } => Some(
                "[site] signing_key in the config names the key file; `airlock init` creates one",
            ),
            OpenPgpError::UnusableKey { source, .. } => source.hint(),
            OpenPgpError::Generate { .. }
            | OpenPgpError::Sign { .. }
            | OpenPgpError::BadSignature { .. }
            | OpenPgpError::ParseSignature { .. }
            | OpenPgpError::ReadKeyring { .. }
            | OpenPgpError::ParseKeyring { .. }
            | OpenPgpError::EmptyKeyring { .. } => None,
        }
    }
}

/// The algorithms `airlock init` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Ed25519,
    Rsa4096,
}

impl std::fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::Rsa4096 => "rsa4096",
        })
    }
}

/// The site's signing key: a certify+sign primary key without subkeys. Its `Debug` names
/// the key by fingerprint: the secret half never reaches a log or an error.
#[derive(Clone)]
pub struct SiteKey {
    secret: SignedSecretKey,
    public: SignedPublicKey,
}

impl std::fmt::Debug for SiteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteKey")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl SiteKey {
    pub fn generate(algorithm: KeyAlgorithm, user_id: &str) -> Result<SiteKey, OpenPgpError> {
        let fail = |source| OpenPgpError::Generate { algorithm, source };
        let key_type = match algorithm {
            KeyAlgorithm::Ed25519 => KeyType::Ed25519Legacy,
            KeyAlgorithm::Rsa4096 => KeyType::Rsa(4096),
        };
        let params = SecretKeyParamsBuilder::default()
            .key_type(key_type)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id(user_id.into())
            .preferred_hash_algorithms(smallvec![HashAlgorithm::Sha512, HashAlgorithm::Sha256])
            .build()
            .map_err(|e| fail(Box::new(e)))?;
        let secret = params
            .generate(rand::thread_rng())
            .map_err(|e| fail(Box::new(RpgpError(e))))?;
        Ok(Self::from_secret(secret))
    }

    fn from_secret(secret: SignedSecretKey) -> SiteKey {
        let public = secret.to_public_key();
        SiteKey { secret, public }
    }

    /// Loads an armored or binary secret key file.
    pub fn load(path: &Path) -> Result<SiteKey, OpenPgpError> {
        let bytes = read_limited(path, MAX_KEY, "a signing key").map_err(|source| {
            OpenPgpError::ReadKey {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let parse_err = |e: pgp::errors::Error| {
            let path = path.to_path_buf();
            if bytes.starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK") {
                OpenPgpError::PublicKey { path }
            } else {
                OpenPgpError::ParseKey {
                    path,
                    source: RpgpError(e),
                }
            }
        };
        let secret = if bytes.starts_with(b"-----BEGIN") {
            SignedSecretKey::from_armor_single(Cursor::new(&bytes))
                .map(|(k, _)| k)
                .map_err(parse_err)?
        } else {
            SignedSecretKey::from_bytes(Cursor::new(&bytes)).map_err(parse_err)?
        };
        if secret.primary_key.secret_params().is_encrypted() {
            return Err(OpenPgpError::LockedKey {
                path: path.to_path_buf(),
            });
        }
        let key = Self::from_secret(secret);
        // Fail at load, naming the file, rather than at the first publish.
        key.clearsign("probe")
            .map_err(|e| OpenPgpError::UnusableKey {
                path: path.to_path_buf(),
                source: Box::new(e),
            })?;
        Ok(key)
    }

    /// Uppercase hex, 40 digits for v4 keys: what `gpg --fingerprint` and apt's `Signed-By` use.
    pub fn fingerprint(&self) -> String {
        format!("{:X}", self.secret.fingerprint())
    }

    pub fn algorithm(&self) -> String {
        match self.public.primary_key.algorithm() {
            pgp::crypto::public_key::PublicKeyAlgorithm::EdDSALegacy => "ed25519".to_string(),
            pgp::crypto::public_key::PublicKeyAlgorithm::RSA => {
                // The first MPI of RSA public parameters is n, prefixed by its bit count.
                let params = self.public.primary_key.public_params().to_bytes();
                let bits = params.map_or(0, |p| {
                    p.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
                });
                format!("rsa{bits}")
            }
            other => format!("{other:?}").to_lowercase(),
        }
    }

    pub fn user_ids(&self) -> Vec<String> {
        self.public
            .details
            .users
            .iter()
            .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
            .collect()
    }

    pub fn created(&self) -> jiff::Timestamp {
        let secs = self.public.primary_key.created_at().as_secs();
        jiff::Timestamp::from_second(i64::from(secs)).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    pub fn secret_armored(&self) -> Result<String, OpenPgpError> {
        self.secret
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| self.sign_err("the secret key export", e))
    }

    /// The public key as a binary keyring: what apt's `signed-by=` and MAAS `keyring_data` take.
    pub fn public_binary(&self) -> Vec<u8> {
        self.public.to_bytes().expect("serialising a parsed key")
    }

    pub fn public_armored(&self) -> String {
        self.public
            .to_armored_string(ArmorOptions::default())
            .expect("serialising a parsed key")
    }

    /// The secret key, for signing formats this module does not cover (snap assertions).
    pub fn secret_key(&self) -> &SignedSecretKey {
        &self.secret
    }

    pub fn public_key(&self) -> &SignedPublicKey {
        &self.public
    }

    /// When the key stops being valid, if its self-signatures say so (airlock's own keys
    /// never expire; an imported one may).
    pub fn expires(&self) -> Option<jiff::Timestamp> {
        let lifetime = self
            .public
            .details
            .users
            .iter()
            .flat_map(|u| &u.signatures)
            .chain(&self.public.details.direct_signatures)
            .filter_map(|s| s.key_expiration_time())
            .map(|d| d.as_secs())
            .find(|secs| *secs > 0)?;
        let created = self.public.primary_key.created_at().as_secs();
        jiff::Timestamp::from_second(i64::from(created) + i64::from(lifetime)).ok()
    }

    fn signature_config(&self, typ: SignatureType) -> Result<SignatureConfig, pgp::errors::Error> {
        let key = &self.secret.primary_key;
        let mut config = SignatureConfig::v4(typ, key.algorithm(), HashAlgorithm::Sha512);
        config.hashed_subpackets = vec![
            Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::now()))?,
            Subpacket::regular(SubpacketData::IssuerFingerprint(key.fingerprint()))?,
        ];
        config.unhashed_subpackets = vec![Subpacket::regular(SubpacketData::IssuerKeyId(
            key.legacy_key_id(),
        ))?];
        Ok(config)
    }

    fn sign_err(&self, what: &str, e: pgp::errors::Error) -> OpenPgpError {
        OpenPgpError::Sign {
            what: what.to_string(),
            source: RpgpError(e),
        }
    }

    /// A cleartext-signed document (InRelease, `.sjson`), laid out as gpg does: the text, then
    /// the armored signature with no blank line between.
    pub fn clearsign(&self, text: &str) -> Result<String, OpenPgpError> {
        let text = canonical_text(text);
        let err = |e| self.sign_err("a cleartext document", e);
        let config = self.signature_config(SignatureType::Text).map_err(err)?;
        let message = CleartextSignedMessage::new(
            text.trim_end_matches('\n'),
            config,
            &self.secret.primary_key,
            &Password::empty(),
        )
        .map_err(err)?;
        message
            .to_armored_string(ArmorOptions::default())
            .map_err(err)
    }

    /// An armored detached signature (Release.gpg).
    pub fn sign_detached(&self, data: &[u8]) -> Result<String, OpenPgpError> {
        let err = |e| self.sign_err("a detached signature", e);
        let config = self.signature_config(SignatureType::Binary).map_err(err)?;
        let signature = config
            .sign(&self.secret.primary_key, &Password::empty(), data)
            .map_err(err)?;
        DetachedSignature::new(signature)
            .to_armored_string(ArmorOptions::default())
            .map_err(err)
    }
}

/// rPGP's messages, without the parser internals some of them append.
fn concise(error: &pgp::errors::Error) -> String {
    let text = error.to_string();
    let text = text.split(" Error(").next().unwrap_or(&text);
    // A digest mismatch comes as a failed assertion with both byte lists: its last words say it.
    let text = if text.contains("assertion failed") {
        text.rsplit(": ").next().unwrap_or(text)
    } else {
        text
    };
    text.trim_end_matches([':', ' ']).to_string()
}

/// Removes trailing spaces and tabs from each line: verifiers ignore them, so a signature over
/// them would fail (rPGP 0.21 hashes them when signing).
pub fn canonical_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        out.push_str(body.trim_end_matches([' ', '\t', '\r']));
        out.push_str(newline);
    }
    out
}

/// The text of a cleartext-signed document, without checking the signature (for upstreams
/// the operator chose to trust without one).
pub fn cleartext_body(document: &str, what: &str) -> Result<String, OpenPgpError> {
    let (message, _) =
        CleartextSignedMessage::from_string(document).map_err(|e| parse_signature(what, e))?;
    Ok(message.signed_text().replace("\r\n", "\n"))
}

/// Public keys to check signatures against: the keys given to clients, upstream keyrings.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

/// A signature that verified, and who made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The signed text (LF line ends) or, for a detached signature, nothing.
    pub text: String,
    /// Full fingerprint (uppercase hex) of the key or subkey that signed.
    pub signer: String,
}

impl Keyring {
    pub fn new(keys: Vec<SignedPublicKey>) -> Keyring {
        Keyring { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Reads keyring files, binary (`.gpg`) or armored (`.asc`); errors name the file.
    pub fn load(paths: &[PathBuf]) -> Result<Keyring, OpenPgpError> {
        let mut keys = Vec::new();
        for path in paths {
            let bytes = read_limited(path, MAX_KEYRING, "a keyring").map_err(|source| {
                OpenPgpError::ReadKeyring {
                    path: path.clone(),
                    source,
                }
            })?;
            let parsed = Self::parse(&bytes, &path.display().to_string())?;
            if parsed.keys.is_empty() {
                return Err(OpenPgpError::EmptyKeyring { path: path.clone() });
            }
            keys.extend(parsed.keys);
        }
        Ok(Keyring { keys })
    }

    /// Reads one or more keys, binary (`.gpg`) or armored (`.asc`).
    pub fn parse(bytes: &[u8], what: &str) -> Result<Keyring, OpenPgpError> {
        let bad = |e: pgp::errors::Error| OpenPgpError::ParseKeyring {
            what: what.to_string(),
            source: RpgpError(e),
        };
        let keys: Vec<SignedPublicKey> = if bytes.starts_with(b"-----BEGIN") {
            SignedPublicKey::from_armor_many(Cursor::new(bytes))
                .map_err(bad)?
                .0
                .collect::<Result<_, _>>()
                .map_err(bad)?
        } else {
            SignedPublicKey::from_bytes_many(Cursor::new(bytes))
                .map_err(bad)?
                .collect::<Result<_, _>>()
                .map_err(bad)?
        };
        Ok(Keyring { keys })
    }

    /// Checks a cleartext-signed document (InRelease); returns the signed text when a
    /// signature by a usable key of this keyring verifies.
    pub fn verify_cleartext(&self, document: &str, what: &str) -> Result<Verified, OpenPgpError> {
        let bad = |reason: String| OpenPgpError::BadSignature {
            what: what.to_string(),
            reason,
        };
        let (message, _) =
            CleartextSignedMessage::from_string(document).map_err(|e| parse_signature(what, e))?;
        let signed = message.signed_text();
        let signer = self
            .check(message.signatures(), signed.as_bytes())
            .map_err(bad)?;
        // What was hashed, with the CRLF line ends of the hash undone.
        Ok(Verified {
            text: signed.replace("\r\n", "\n"),
            signer,
        })
    }

    /// Checks a detached signature (Release.gpg), armored or binary, over `data`.
    pub fn verify_detached(
        &self,
        data: &[u8],
        signature: &[u8],
        what: &str,
    ) -> Result<Verified, OpenPgpError> {
        let bad = |reason: String| OpenPgpError::BadSignature {
            what: what.to_string(),
            reason,
        };
        let signatures = detached_signatures(signature).map_err(|e| parse_signature(what, e))?;
        let signer = self.check(&signatures, data).map_err(bad)?;
        Ok(Verified {
            text: String::new(),
            signer,
        })
    }

    /// Whether a key of this keyring (or a subkey) made one of these detached signatures,
    /// valid or not: a known signer whose signature fails means the data changed.
    pub fn knows_signer_of(&self, signature: &[u8]) -> bool {
        let Ok(signatures) = detached_signatures(signature) else {
            return false;
        };
        signatures.iter().any(|sig| {
            self.keys.iter().any(|key| {
                names_issuer(sig, &key.primary_key)
                    || key
                        .public_subkeys
                        .iter()
                        .any(|sub| names_issuer(sig, &sub.key))
            })
        })
    }

    /// The fingerprint of the first usable key whose signature over `data` verifies, or why
    /// none does.
    fn check(&self, signatures: &[pgp::packet::Signature], data: &[u8]) -> Result<String, String> {
        let now = Timestamp::now().as_secs();
        let mut reason = "no signature by a key of the keyring".to_string();
        for signature in signatures {
            for key in &self.keys {
                let primary = attempt(
                    signature,
                    &key.primary_key,
                    || usable_primary(key, now),
                    data,
                    &mut reason,
                );
                let found = primary.or_else(|| {
                    key.public_subkeys.iter().find_map(|sub| {
                        attempt(
                            signature,
                            &sub.key,
                            || usable_subkey(sub, now),
                            data,
                            &mut reason,
                        )
                    })
                });
                if let Some(fingerprint) = found {
                    return Ok(fingerprint);
                }
            }
        }
        Err(reason)
    }
}

fn parse_signature(what: &str, e: pgp::errors::Error) -> OpenPgpError {
    OpenPgpError::ParseSignature {
        what: what.to_string(),
        source: RpgpError(e),
    }
}

/// The signatures of a detached signature file, armored or binary.
fn detached_signatures(
    signature: &[u8],
) -> Result<Vec<pgp::packet::Signature>, pgp::errors::Error> {
    let parsed: Vec<DetachedSignature> = if signature.starts_with(b"-----BEGIN") {
        DetachedSignature::from_armor_many(Cursor::new(signature))?
            .0
            .collect::<Result<_, _>>()?
    } else {
        DetachedSignature::from_bytes_many(Cursor::new(signature))?.collect::<Result<_, _>>()?
    };
    Ok(parsed.into_iter().map(|d| d.signature).collect())
}

/// Verifies `signature` with `key` if the signature names that key as its issuer and the key
/// may sign; returns the key's fingerprint, or records why not.
fn attempt(
    signature: &pgp::packet::Signature,
    key: &impl VerifyingKey,
    usable: impl FnOnce() -> Result<(), String>,
    data: &[u8],
    reason: &mut String,
) -> Option<String> {
    if !names_issuer(signature, key) {
        return None;
    }
    let fingerprint = format!("{:X}", key.fingerprint());
    if let Err(why) = usable() {
        *reason = format!("signed by key {fingerprint}, which {why}");
        return None;
    }
    match signature.verify(key, data) {
        Ok(()) => Some(fingerprint),
        Err(e) => {
            *reason = format!("bad signature by key {fingerprint}: {}", concise(&e));
            None
        }
    }
}

fn names_issuer(signature: &pgp::packet::Signature, key: &impl KeyDetails) -> bool {
    let fingerprint = key.fingerprint();
    let key_id = key.legacy_key_id();
    signature
        .issuer_fingerprint()
        .into_iter()
        .any(|f| *f == fingerprint)
        || signature.issuer_key_id().into_iter().any(|k| *k == key_id)
}

/// The newest of `signatures` of the given types.
fn newest<'s>(
    signatures: impl Iterator<Item = &'s pgp::packet::Signature>,
) -> Option<&'s pgp::packet::Signature> {
    signatures.max_by_key(|s| s.created().map_or(0, |t| t.as_secs()))
}

fn expired(created: u32, signature: Option<&pgp::packet::Signature>, now: u32) -> Option<String> {
    let lifetime = signature?.key_expiration_time()?.as_secs();
    let end = u64::from(created) + u64::from(lifetime);
    (lifetime > 0 && end < u64::from(now)).then(|| {
        let when =
            jiff::Timestamp::from_second(end as i64).map_or(end.to_string(), |t| t.to_string());
        format!("expired on {when}")
    })
}

/// A primary key signs if it is not revoked, not expired and (when its self-signature says)
/// has the signing capability.
fn usable_primary(key: &SignedPublicKey, now: u32) -> Result<(), String> {
    if !key.details.revocation_signatures.is_empty() {
        return Err("is revoked".into());
    }
    let self_signature = newest(
        key.details
            .users
            .iter()
            .flat_map(|u| u.signatures.iter())
            .chain(key.details.direct_signatures.iter())
            .filter(|s| names_issuer(s, &key.primary_key)),
    );
    if let Some(why) = expired(key.primary_key.created_at().as_secs(), self_signature, now) {
        return Err(why);
    }
    match self_signature {
        Some(s) if has_key_flags(s) && !s.key_flags().sign() => {
            Err("may not sign (no signing capability)".into())
        }
        _ => Ok(()),
    }
}

fn usable_subkey(subkey: &pgp::composed::SignedPublicSubKey, now: u32) -> Result<(), String> {
    use pgp::packet::SignatureType;
    if subkey
        .signatures
        .iter()
        .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation))
    {
        return Err("is revoked".into());
    }
    let binding = newest(
        subkey
            .signatures
            .iter()
            .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding)),
    );
    if let Some(why) = expired(subkey.key.created_at().as_secs(), binding, now) {
        return Err(why);
    }
    match binding {
        None => Err("is not bound to its primary key".into()),
        Some(s) if has_key_flags(s) && !s.key_flags().sign() => {
            Err("may not sign (no signing capability)".into())
        }
        Some(_) => Ok(()),
    }
}

fn has_key_flags(signature: &pgp::packet::Signature) -> bool {
    signature.config().is_some_and(|c| {
        c.hashed_subpackets()
            .any(|p| matches!(p.data, SubpacketData::KeyFlags(_)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_trailing_whitespace_per_line() {
        assert_eq!(canonical_text("a  \nb\t\n c \n"), "a\nb\n c\n");
        assert_eq!(canonical_text("x "), "x");
    }

    #[test]
    fn debug_names_the_key_by_fingerprint_only() {
        let key = SiteKey::generate(KeyAlgorithm::Ed25519, "Test <t@example.invalid>").unwrap();
        assert_eq!(
            format!("{key:?}"),
            format!("SiteKey {{ fingerprint: {:?}, .. }}", key.fingerprint())
        );
    }

    #[test]
    fn ed25519_cleartext_round_trip() {
        let key = SiteKey::generate(KeyAlgorithm::Ed25519, "Test <t@example.invalid>").unwrap();
        assert_eq!(key.fingerprint().len(), 40);
        assert_eq!(key.algorithm(), "ed25519");
        assert_eq!(key.expires(), None, "airlock's keys do not expire");
        let signed = key.clearsign("Origin: x \n- dash line\n").unwrap();
        assert!(signed.starts_with("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n"));
        assert!(signed.contains("Origin: x\n- - dash line\n-----BEGIN PGP SIGNATURE-----"));
        let keyring = Keyring::new(vec![key.public_key().clone()]);
        let verified = keyring.verify_cleartext(&signed, "test").unwrap();
        assert_eq!(verified.text, "Origin: x\n- dash line");
        assert_eq!(verified.signer, key.fingerprint());
        let detached = key.sign_detached(b"data").unwrap();
        assert_eq!(
            keyring
                .verify_detached(b"data", detached.as_bytes(), "d")
                .unwrap()
                .signer,
            key.fingerprint()
        );
        assert!(
            keyring
                .verify_detached(b"date", detached.as_bytes(), "d")
                .is_err()
        );

        let tampered = signed.replace("Origin: x", "Origin: y");
        assert!(keyring.verify_cleartext(&tampered, "test").is_err());
        let other = SiteKey::generate(KeyAlgorithm::Ed25519, "Other").unwrap();
        let wrong = Keyring::new(vec![other.public_key().clone()]);
        assert!(wrong.verify_cleartext(&signed, "test").is_err());
    }

    #[test]
    fn secret_key_survives_export_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let key = SiteKey::generate(KeyAlgorithm::Ed25519, "Test").unwrap();
        let path = dir.path().join("k.asc");
        std::fs::write(&path, key.secret_armored().unwrap()).unwrap();
        let loaded = SiteKey::load(&path).unwrap();
        assert_eq!(loaded.fingerprint(), key.fingerprint());
        assert_eq!(loaded.user_ids(), vec!["Test".to_string()]);
        let parsed = Keyring::parse(&key.public_binary(), "k").unwrap();
        assert_eq!(parsed.keys.len(), 1);
        let parsed = Keyring::parse(key.public_armored().as_bytes(), "k").unwrap();
        assert_eq!(parsed.keys.len(), 1);
    }

    #[test]
    fn garbage_key_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        std::fs::write(&path, "not a key").unwrap();
        let err = SiteKey::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("bad.key") && err.contains("not an OpenPGP secret key"),
            "{err}"
        );
    }

    #[test]
    fn verifies_debians_own_inrelease_with_debians_keyring() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let keyring = Keyring::load(&[fixtures.join("debian-archive-keyring.gpg")]).unwrap();
        let document =
            std::fs::read_to_string(fixtures.join("debian-bookworm-updates.InRelease")).unwrap();
        let verified = keyring
            .verify_cleartext(&document, "bookworm-updates")
            .unwrap();
        assert!(
            verified
                .text
                .starts_with("Origin: Debian\nLabel: Debian\nSuite: oldstable-updates")
        );
        assert_eq!(verified.signer.len(), 40);
        let release = crate::apt::release::ReleaseFile::parse(&verified.text).unwrap();
        assert_eq!(release.codename.as_deref(), Some("bookworm-updates"));
        assert!(release.files.contains_key("main/binary-amd64/Packages.xz"));

        // One changed byte in the signed text, and it no longer verifies.
        let altered = document.replace("Version: 12-updates", "Version: 13-updates");
        let err = keyring
            .verify_cleartext(&altered, "bookworm-updates")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad signature by key"), "{err}");
        // Our own key is not Debian's.
        let stranger = SiteKey::generate(KeyAlgorithm::Ed25519, "Stranger").unwrap();
        let err = Keyring::new(vec![stranger.public_key().clone()])
            .verify_cleartext(&document, "x")
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("no signature by a key of the keyring"),
            "{err}"
        );
    }

    #[test]
    fn expiry_of_a_key_made_by_gpg() {
        let home = tempfile::tempdir().unwrap();
        let gpg = |args: &[&str]| {
            let out = std::process::Command::new("gpg")
                .env("GNUPGHOME", home.path())
                .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
                .args(args)
                .output()
                .expect("gpg");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        gpg(&[
            "--quick-gen-key",
            "Expiring <e@example.invalid>",
            "ed25519",
            "sign",
            "10d",
        ]);
        let file = home.path().join("key.gpg");
        std::fs::write(&file, gpg(&["--export-secret-keys"])).unwrap();
        let until = SiteKey::load(&file).unwrap().expires().expect("an expiry");
        let days = until.duration_since(jiff::Timestamp::now()).as_hours() / 24;
        assert!((9..=10).contains(&days), "{until}");
    }
}
