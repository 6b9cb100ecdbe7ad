//! HTTPS for `airlock serve`: a site CA and a server certificate made in-process (rcgen; no
//! openssl binary), and the rustls configuration the server loads.
//!
//! The CA is made once and reused by later runs, so machines that trust it keep trusting
//! the site when the server certificate is renewed or gains a name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
/// What `serve` needs for HTTPS, named for the binary (which has no rustls of its own).
pub use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::hint::Hint;
use crate::storage::{StorageError, read_limited, read_limited_text, write_atomic};

/// PEM certificate chains and keys are a few KiB.
const MAX_PEM: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make a certificate")]
    Generate(#[source] rcgen::Error),
    #[error("{path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("{path} is not {what}")]
    Parse {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{cert} does not go with {key}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Hint for TlsError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            TlsError::Storage(e) => e.hint(),
            TlsError::Load { .. } | TlsError::Parse { .. } | TlsError::Mismatch { .. } => Some(
                "`airlock tls init` makes the site CA and a server certificate; [site] tls_cert and tls_key name them",
            ),
            TlsError::Generate(_) => None,
        }
    }
}

/// What `airlock tls init` wrote.
#[derive(Debug)]
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Whether the CA was made now (clients must be told) or reused.
    pub new_ca: bool,
}

const CA_NAME: &str = "airlock site CA";

/// The CA's parameters: the same every time, so a reloaded CA key issues certificates that
/// chain to the CA certificate made the first time.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    name.push(DnType::OrganizationName, "airlock");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2026, 1, 1);
    params.not_after = rcgen::date_time_ymd(2046, 1, 1);
    params
}

/// Makes (or reuses) the site CA in `dir` and issues a server certificate for `names` (DNS
/// names or IP addresses), valid for about two years.
pub fn init(dir: &Path, names: &[String]) -> Result<TlsFiles, TlsError> {
    let generate = TlsError::Generate;
    fs_err::create_dir_all(dir).map_err(|source| StorageError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca_cert_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca.key");
    if ca_key_path.exists() != ca_cert_path.exists() {
        let (have, missing) = if ca_key_path.exists() {
            (&ca_key_path, &ca_cert_path)
        } else {
            (&ca_cert_path, &ca_key_path)
        };
        return Err(TlsError::Load {
            path: missing.clone(),
            reason: format!(
                "is missing but {} is there: restore it, or remove both to make a new CA (every client must then trust the new one)",
                have.display()
            ),
        });
    }
    let (ca_key, new_ca) = if ca_key_path.exists() {
        let text = read_limited_text(&ca_key_path, MAX_PEM, "a PEM key")?;
        let key = KeyPair::from_pem(&text).map_err(|e| parse(&ca_key_path, "a PEM key", e))?;
        (key, false)
    } else {
        let key = KeyPair::generate().map_err(generate)?;
        let cert = ca_params().self_signed(&key).map_err(generate)?;
        write_atomic(&ca_key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_atomic(&ca_cert_path, cert.pem().as_bytes(), 0o644)?;
        (key, true)
    };
    let issuer = Issuer::new(ca_params(), ca_key);

    let mut params = CertificateParams::new(names.to_vec()).map_err(generate)?;
    let mut name = DistinguishedName::new();
    name.push(
        DnType::CommonName,
        names.first().map_or("airlock", String::as_str),
    );
    params.distinguished_name = name;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // From yesterday (clocks differ) for two years.
    let yesterday = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24)).to_string();
    let field = |range: std::ops::Range<usize>| yesterday[range].parse::<i32>().unwrap_or(1);
    let (year, month, day) = (field(0..4), field(5..7) as u8, field(8..10).min(28) as u8);
    params.not_before = rcgen::date_time_ymd(year, month, day);
    params.not_after = rcgen::date_time_ymd(year + 2, month, day);
    let key = KeyPair::generate().map_err(generate)?;
    let cert = params.signed_by(&key, &issuer).map_err(generate)?;
    let cert_path = dir.join("server.pem");
    let key_path = dir.join("server.key");
    write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(TlsFiles {
        ca_cert: ca_cert_path,
        cert: cert_path,
        key: key_path,
        new_ca,
    })
}

/// The rustls configuration for a PEM certificate chain and key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain_pem = read_limited(cert, MAX_PEM, "a PEM certificate chain")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| parse(cert, "a PEM certificate chain", e))?;
    if chain.is_empty() {
        return Err(TlsError::Load {
            path: cert.to_path_buf(),
            reason: "holds no PEM certificate".into(),
        });
    }
    let key_pem = read_limited(key, MAX_PEM, "a PEM key")?;
    let private =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| parse(key, "a PEM key", e))?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|source| TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            source,
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn parse(
    path: &Path,
    what: &'static str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> TlsError {
    TlsError::Parse {
        path: path.to_path_buf(),
        what,
        source: Box::new(e),
    }
}

/// What `airlock verify` checks of a server certificate.
#[derive(Debug)]
pub struct CertificateInfo {
    /// When it stops being valid.
    pub expires: jiff::Timestamp,
    /// The DNS names it is valid for, lower case.
    pub names: Vec<String>,
}

/// Reads the first certificate of a PEM file.
pub fn certificate_info(cert: &Path) -> Result<CertificateInfo, TlsError> {
    const X509: &str = "an X.509 certificate";
    let bytes = read_limited(cert, MAX_PEM, "a PEM certificate chain")?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes).map_err(|e| parse(cert, "PEM", e))?;
    let parsed = pem.parse_x509().map_err(|e| parse(cert, X509, e))?;
    let expires = jiff::Timestamp::from_second(parsed.validity().not_after.timestamp())
        .map_err(|e| parse(cert, X509, e))?;
    let names = parsed
        .subject_alternative_name()
        .map_err(|e| parse(cert, X509, e))?
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => {
                        Some(d.to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(CertificateInfo { expires, names })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_expiry_and_names_are_read_from_the_pem() {
        let dir = tempfile::tempdir().unwrap();
        let files = init(dir.path(), &["airlock.example".to_string()]).unwrap();
        let info = certificate_info(&files.cert).unwrap();
        let until = info.expires;
        assert_eq!(info.names, ["airlock.example"]);
        let now = jiff::Timestamp::now();
        // About two years from now.
        let days = until.duration_since(now).as_hours() / 24;
        assert!((700..=740).contains(&days), "{until}");
        assert_eq!(
            certificate_info(&files.ca_cert)
                .unwrap()
                .expires
                .to_string(),
            "2046-01-01T00:00:00Z"
        );
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        assert!(
            certificate_info(&bad)
                .unwrap_err()
                .to_string()
                .contains("bad.pem")
        );
    }
}
