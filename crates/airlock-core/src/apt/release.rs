//! Release files: the signed list of every index of a suite with its size and digests.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::deb822;
use crate::hint::Chain;
use crate::storage::Sha256;

/// The fields of a suite's Release file other than the index list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseInfo {
    /// The folder under `dists/` (what sources.list names); Suite and Codename may differ,
    /// as upstream's `bookworm-updates` says `Suite: oldstable-updates`.
    pub suite_dir: String,
    pub origin: String,
    pub label: String,
    pub suite: String,
    pub codename: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub date: jiff::Timestamp,
    pub valid_until: Option<jiff::Timestamp>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// Fingerprint of the signing key: apt ≥ 2.3 then refuses signatures by any other key.
    pub signed_by: String,
}

/// An index listed in a Release file, with its path relative to `dists/SUITE/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    pub path: String,
    pub size: u64,
    pub md5: [u8; 16],
    pub sha256: Sha256,
}

impl IndexFile {
    pub fn new(path: String, bytes: &[u8], sha256: Sha256) -> IndexFile {
        use md5::Digest;
        IndexFile {
            path,
            size: bytes.len() as u64,
            md5: md5::Md5::digest(bytes).into(),
            sha256,
        }
    }
}

/// Whether a Release signed at `signed` and valid for `period` (seconds both) is to be signed
/// again at `now`: once half its validity is gone, well before clients refuse it.
pub fn renewal_due(signed: i64, period: i64, now: jiff::Timestamp) -> bool {
    now.as_second() >= signed.saturating_add(period / 2)
}

/// Release dates as Debian's archive writes them (RFC 2822 in UTC).
pub fn format_date(t: jiff::Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S UTC").to_string()
}

/// The same Release under another signer: Date, Valid-Until and Signed-By replaced (or
/// Valid-Until dropped), every other line kept, so the index list stays exactly as it was.
pub fn restamp(
    text: &str,
    date: jiff::Timestamp,
    valid_until: Option<jiff::Timestamp>,
    signed_by: &str,
) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let field = line.split_once(':').map(|(name, _)| name);
        match field {
            Some("Date") => {
                let _ = writeln!(out, "Date: {}", format_date(date));
                if let Some(until) = valid_until
                    && !text.contains("\nValid-Until:")
                {
                    let _ = writeln!(out, "Valid-Until: {}", format_date(until));
                }
            }
            Some("Valid-Until") => {
                if let Some(until) = valid_until {
                    let _ = writeln!(out, "Valid-Until: {}", format_date(until));
                }
            }
            Some("Signed-By") => {
                let _ = writeln!(out, "Signed-By: {signed_by}");
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// Renders the Release file. Only MD5Sum and SHA256 are listed: apt fetches by-hash with the
/// strongest digest listed, so SHA256 is the one `by-hash/` needs to hold.
pub fn render_release(info: &ReleaseInfo, files: &[IndexFile]) -> String {
    let mut out = String::with_capacity(512 + files.len() * 160);
    let _ = writeln!(out, "Origin: {}", info.origin);
    let _ = writeln!(out, "Label: {}", info.label);
    let _ = writeln!(out, "Suite: {}", info.suite);
    if let Some(version) = &info.version {
        let _ = writeln!(out, "Version: {version}");
    }
    let _ = writeln!(out, "Codename: {}", info.codename);
    let _ = writeln!(out, "Date: {}", format_date(info.date));
    if let Some(until) = info.valid_until {
        let _ = writeln!(out, "Valid-Until: {}", format_date(until));
    }
    let _ = writeln!(out, "Acquire-By-Hash: yes");
    let _ = writeln!(out, "Architectures: {}", info.architectures.join(" "));
    let _ = writeln!(out, "Components: {}", info.components.join(" "));
    if let Some(description) = &info.description {
        let _ = writeln!(out, "Description: {description}");
    }
    let _ = writeln!(out, "Signed-By: {}", info.signed_by);
    let width = files
        .iter()
        .map(|f| f.size.to_string().len())
        .max()
        .unwrap_or(1);
    out.push_str("MD5Sum:\n");
    for f in files {
        let _ = writeln!(out, " {} {:>width$} {}", hex::encode(f.md5), f.size, f.path);
    }
    out.push_str("SHA256:\n");
    for f in files {
        let _ = writeln!(out, " {} {:>width$} {}", f.sha256, f.size, f.path);
    }
    out
}

/// The small per-architecture Release file of `dists/SUITE/COMPONENT/binary-ARCH/`.
pub fn render_component_release(info: &ReleaseInfo, component: &str, arch: &str) -> String {
    format!(
        "Archive: {}\nOrigin: {}\nLabel: {}\nAcquire-By-Hash: yes\nComponent: {component}\nArchitecture: {arch}\n",
        info.suite, info.origin, info.label
    )
}

/// A file a Release lists: its size and the digests given for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    pub size: u64,
    pub sha256: Option<Sha256>,
    pub sha512: Option<[u8; 64]>,
}

/// An upstream Release file, parsed and checked for shape (not for signature: see
/// [`crate::openpgp::Keyring`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseFile {
    pub origin: Option<String>,
    pub label: Option<String>,
    pub suite: Option<String>,
    pub codename: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub date: Option<jiff::Timestamp>,
    pub valid_until: Option<jiff::Timestamp>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    pub acquire_by_hash: bool,
    /// Paths relative to `dists/SUITE/`.
    pub files: BTreeMap<String, ListedFile>,
}

impl ReleaseFile {
    /// Parses the text of a Release (or the signed text of an InRelease).
    pub fn parse(text: &str) -> Result<ReleaseFile, String> {
        let paragraph = match deb822::paragraphs(text).next() {
            Some(Ok(p)) => p,
            Some(Err(e)) => return Err(Chain(&e).to_string()),
            None => return Err("empty Release file".into()),
        };
        let owned = |name: &str| paragraph.get(name).map(str::to_string);
        let date = |name: &str| -> Result<Option<jiff::Timestamp>, String> {
            paragraph
                .get(name)
                .map(|v| {
                    jiff::fmt::rfc2822::parse(v)
                        .map(|z| z.timestamp())
                        .map_err(|e| format!("bad {name} {v:?}: {e}"))
                })
                .transpose()
        };
        let words = |name: &str| -> Vec<String> {
            paragraph
                .get(name)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let mut files: BTreeMap<String, ListedFile> = BTreeMap::new();
        for (field, digest_len) in [("SHA256", 64), ("SHA512", 128)] {
            let Some(list) = paragraph.get(field) else {
                continue;
            };
            for line in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let mut parts = line.split_whitespace();
                let (Some(digest), Some(size), Some(path), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(format!("{field}: malformed line {line:?}"));
                };
                crate::storage::tree::check_relative_path(path)
                    .map_err(|e| format!("{field}: {e}"))?;
                let size: u64 = size
                    .parse()
                    .map_err(|_| format!("{field}: bad size in {line:?}"))?;
                if digest.len() != digest_len || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("{field}: bad digest in {line:?}"));
                }
                let entry = files.entry(path.to_string()).or_insert(ListedFile {
                    size,
                    sha256: None,
                    sha512: None,
                });
                if entry.size != size {
                    return Err(format!("{path} is listed with two sizes"));
                }
                if digest_len == 64 {
                    entry.sha256 = Sha256::from_hex(digest);
                } else {
                    let mut out = [0u8; 64];
                    hex::decode_to_slice(digest, &mut out).map_err(|e| Chain(&e).to_string())?;
                    entry.sha512 = Some(out);
                }
            }
        }
        if files.is_empty() {
            return Err("the Release lists no file with a SHA256 or SHA512 digest".into());
        }
        Ok(ReleaseFile {
            origin: owned("Origin"),
            label: owned("Label"),
            suite: owned("Suite"),
            codename: owned("Codename"),
            version: owned("Version"),
            description: owned("Description"),
            date: date("Date")?,
            valid_until: date("Valid-Until")?,
            architectures: words("Architectures"),
            components: words("Components"),
            acquire_by_hash: paragraph
                .get("Acquire-By-Hash")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restamp_changes_the_signer_fields_only() {
        let listed = format!("SHA256:\n {} 1 main/Packages\n", "0".repeat(64));
        let text = &format!(
            "Origin: x\nDate: Tue, 01 Dec 2026 10:00:00 UTC\nValid-Until: Tue, 08 Dec 2026 10:00:00 UTC\nSigned-By: AAAA\n{listed}"
        );
        let date = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let until = date + jiff::SignedDuration::from_hours(24);
        let out = restamp(text, date, Some(until), "BBBB");
        assert_eq!(
            out,
            format!(
                "Origin: x\nDate: {}\nValid-Until: {}\nSigned-By: BBBB\n{listed}",
                format_date(date),
                format_date(until)
            )
        );
        let parsed = ReleaseFile::parse(&out).unwrap();
        assert_eq!(parsed.valid_until, Some(until));
        let without = restamp(text, date, None, "BBBB");
        assert!(!without.contains("Valid-Until"), "{without}");
        let added = restamp("Date: x\nSigned-By: A\n", date, Some(until), "B");
        assert!(added.contains("\nValid-Until: "), "{added}");
    }

    #[test]
    fn renders_like_the_debian_archive() {
        let date: jiff::Timestamp = "2026-11-26T11:40:00Z".parse().unwrap();
        let info = ReleaseInfo {
            suite_dir: "stable".into(),
            origin: "Example".into(),
            label: "Example packages".into(),
            suite: "stable".into(),
            codename: "stable".into(),
            version: None,
            description: None,
            date,
            valid_until: Some(date + jiff::SignedDuration::from_hours(7 * 24)),
            architectures: vec!["amd64".into(), "arm64".into()],
            components: vec!["main".into()],
            signed_by: "0123456789ABCDEF0123456789ABCDEF01234567".into(),
        };
        let files = vec![
            IndexFile {
                path: "main/binary-amd64/Packages".into(),
                size: 0,
                md5: hex::decode("d41d8cd98f00b204e9800998ecf8427e")
                    .unwrap()
                    .try_into()
                    .unwrap(),
                sha256: Sha256::of(b""),
            },
            IndexFile {
                path: "main/binary-amd64/Packages.gz".into(),
                size: 1234,
                md5: hex::decode("9b4c8a5e36d3be7e2c4b1d75ded8c8a1")
                    .unwrap()
                    .try_into()
                    .unwrap(),
                sha256: Sha256::of(&[0u8; 1234]),
            },
        ];
        insta::assert_snapshot!(render_release(&info, &files));
    }

    #[test]
    fn parses_what_render_writes_and_upstream_shapes() {
        let date: jiff::Timestamp = "2026-11-26T11:40:00Z".parse().unwrap();
        let info = ReleaseInfo {
            suite_dir: "noble-updates".into(),
            origin: "Ubuntu".into(),
            label: "Ubuntu".into(),
            suite: "noble-updates".into(),
            codename: "noble".into(),
            version: Some("24.04".into()),
            description: Some("Ubuntu Noble Updates".into()),
            date,
            valid_until: None,
            architectures: vec!["amd64".into()],
            components: vec!["main".into(), "universe".into()],
            signed_by: "X".into(),
        };
        let files = vec![IndexFile {
            path: "main/binary-amd64/Packages.xz".into(),
            size: 3,
            md5: [0; 16],
            sha256: Sha256::of(b"abc"),
        }];
        let parsed = ReleaseFile::parse(&render_release(&info, &files)).unwrap();
        assert_eq!(parsed.suite.as_deref(), Some("noble-updates"));
        assert_eq!(parsed.codename.as_deref(), Some("noble"));
        assert_eq!(parsed.date, Some(date));
        assert!(parsed.acquire_by_hash);
        assert_eq!(parsed.components, ["main", "universe"]);
        assert_eq!(
            parsed.files["main/binary-amd64/Packages.xz"].sha256,
            Some(Sha256::of(b"abc"))
        );

        for (bad, reason) in [
            ("Origin: x\n", "lists no file"),
            ("SHA256:\n 00 1 a\n", "bad digest"),
            (
                &format!("SHA256:\n {} 1 ../../etc/passwd\n", "0".repeat(64))[..],
                "forbidden component",
            ),
            (
                &format!("Date: yesterday\nSHA256:\n {} 1 a\n", "0".repeat(64))[..],
                "bad Date",
            ),
        ] {
            let err = ReleaseFile::parse(bad).unwrap_err();
            assert!(err.contains(reason), "{bad:?}: {err}");
        }
    }
}
