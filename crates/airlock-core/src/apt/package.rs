//! A binary package as an archive lists it: the control stanza verbatim, then where the file
//! is in the pool and its digests.

use std::cmp::Ordering;

use super::deb822::{self, Paragraph};
use crate::storage::{Hashes, Sha256};

/// Fields the archive adds to a control stanza; a .deb that carries them is refused, since
/// two different sizes or digests for one file would break every client.
pub const ARCHIVE_FIELDS: [&str; 6] = ["Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PackageError(pub String);

/// One `.deb` in a suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Path of the file below the repository root (`pool/main/h/hello/hello_1.0_amd64.deb`).
    pub filename: String,
    pub size: u64,
    pub sha256: Sha256,
    /// The Packages stanza, without a trailing newline.
    pub stanza: String,
}

impl BinaryPackage {
    /// Builds the archive stanza of a .deb from its control file and digests.
    pub fn from_control(
        control: &str,
        hashes: &Hashes,
        component: &str,
    ) -> Result<Self, PackageError> {
        let mut paragraphs = deb822::paragraphs(control);
        let paragraph = match paragraphs.next() {
            Some(Ok(p)) => p,
            Some(Err(e)) => return Err(PackageError(format!("control file: {e}"))),
            None => return Err(PackageError("control file is empty".into())),
        };
        if let Some(next) = paragraphs.next() {
            let line = next.map(|p| p.first_line()).unwrap_or_else(|e| e.line);
            return Err(PackageError(format!(
                "control file: line {line}: a second paragraph; a package has one"
            )));
        }
        if let Some(field) = ARCHIVE_FIELDS.iter().find(|f| paragraph.get(f).is_some()) {
            return Err(PackageError(format!(
                "control file has a {field} field, which only the archive may set"
            )));
        }
        let identity = Identity::of(&paragraph)?;
        let filename = pool_path(component, &identity);
        let stanza = format!(
            "{}\nFilename: {}\nSize: {}\nMD5sum: {}\nSHA1: {}\nSHA256: {}\nSHA512: {}",
            paragraph.text(),
            filename,
            hashes.size,
            hex::encode(hashes.md5),
            hex::encode(hashes.sha1),
            hashes.sha256,
            hex::encode(hashes.sha512),
        );
        Ok(BinaryPackage {
            name: identity.name.to_string(),
            version: identity.version.to_string(),
            architecture: identity.architecture.to_string(),
            filename,
            size: hashes.size,
            sha256: hashes.sha256,
            stanza,
        })
    }

    /// Reads back a stanza this module produced (or an upstream Packages stanza).
    pub fn from_stanza(paragraph: &Paragraph<'_>) -> Result<Self, PackageError> {
        let identity = Identity::of(paragraph)?;
        let require = |field: &str| {
            paragraph.get(field).ok_or_else(|| {
                PackageError(format!("package {} has no {field} field", identity.name))
            })
        };
        let filename = require("Filename")?;
        crate::storage::tree::check_relative_path(filename).map_err(PackageError)?;
        let size = require("Size")?
            .parse()
            .map_err(|_| PackageError(format!("package {} has a bad Size", identity.name)))?;
        let sha256 = Sha256::from_hex(require("SHA256")?)
            .ok_or_else(|| PackageError(format!("package {} has a bad SHA256", identity.name)))?;
        Ok(BinaryPackage {
            name: identity.name.to_string(),
            version: identity.version.to_string(),
            architecture: identity.architecture.to_string(),
            filename: filename.to_string(),
            size,
            sha256,
            stanza: paragraph.text().to_string(),
        })
    }

    /// dpkg ordering of the versions of two packages.
    pub fn cmp_version(&self, other: &BinaryPackage) -> Ordering {
        compare_versions(&self.version, &other.version)
    }
}

/// Compares two Debian versions (validated on the way in; a malformed one sorts first).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (
        a.parse::<debversion::Version>(),
        b.parse::<debversion::Version>(),
    ) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        (a, b) => a.is_ok().cmp(&b.is_ok()),
    }
}

/// The three fields every package must have, checked.
struct Identity<'a> {
    name: &'a str,
    version: &'a str,
    architecture: &'a str,
    source: &'a str,
}

impl<'a> Identity<'a> {
    fn of(paragraph: &Paragraph<'a>) -> Result<Self, PackageError> {
        let field = |name: &str| {
            paragraph
                .get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| PackageError(format!("control file has no {name} field")))
        };
        let name = field("Package")?;
        let version = field("Version")?;
        let architecture = field("Architecture")?;
        if !valid_package_name(name) {
            return Err(PackageError(format!(
                "{name:?} is not a valid package name"
            )));
        }
        if !valid_version(version) {
            return Err(PackageError(format!(
                "{version:?} is not a valid version of {name}"
            )));
        }
        if !valid_architecture(architecture) {
            return Err(PackageError(format!(
                "{architecture:?} is not a valid architecture of {name}"
            )));
        }
        // `Source: name (version)` when the binary version differs from the source's.
        let source = match paragraph.get("Source") {
            Some(s) => s.split_whitespace().next().unwrap_or(name),
            None => name,
        };
        if !valid_package_name(source) {
            return Err(PackageError(format!(
                "{source:?} is not a valid source package name"
            )));
        }
        Ok(Identity {
            name,
            version,
            architecture,
            source,
        })
    }
}

/// Debian policy 5.6.1: lowercase letters, digits, `+ - .`, two characters or more.
pub fn valid_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

/// Debian policy 5.6.12, as dpkg parses it.
pub fn valid_version(version: &str) -> bool {
    version.len() <= 256
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~:-".contains(c))
        && version.parse::<debversion::Version>().is_ok()
        && upstream_part(version).starts_with(|c: char| c.is_ascii_digit())
}

fn upstream_part(version: &str) -> &str {
    let no_epoch = version.split_once(':').map_or(version, |(_, v)| v);
    no_epoch.rsplit_once('-').map_or(no_epoch, |(u, _)| u)
}

pub fn valid_architecture(arch: &str) -> bool {
    !arch.is_empty()
        && arch.len() <= 32
        && arch
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Debian's pool layout: `pool/COMPONENT/PREFIX/SOURCE/NAME_VERSION_ARCH.deb`, the prefix
/// being `libX` for library sources and the first letter otherwise; the epoch is not part of
/// file names.
fn pool_path(component: &str, id: &Identity<'_>) -> String {
    let prefix = if id.source.starts_with("lib") && id.source.len() > 3 {
        &id.source[..4]
    } else {
        &id.source[..1]
    };
    let version = id.version.split_once(':').map_or(id.version, |(_, v)| v);
    format!(
        "pool/{component}/{prefix}/{}/{}_{version}_{}.deb",
        id.source, id.name, id.architecture
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes() -> Hashes {
        Hashes::of(b"deb")
    }

    #[test]
    fn stanza_keeps_control_verbatim_and_appends_archive_fields() {
        let control = "Package: libfoo1\nSource: libfoo (1:2.0-1)\nVersion: 1:2.0-1+b1\nArchitecture: amd64\nPhased-Update-Percentage: 10\nDescription: foo\n library\n";
        let p = BinaryPackage::from_control(control, &hashes(), "main").unwrap();
        assert_eq!(
            p.filename,
            "pool/main/libf/libfoo/libfoo1_2.0-1+b1_amd64.deb"
        );
        assert!(p.stanza.starts_with(control.trim_end()));
        assert!(p.stanza.contains(
            "\nFilename: pool/main/libf/libfoo/libfoo1_2.0-1+b1_amd64.deb\nSize: 3\nMD5sum: "
        ));
        let back =
            BinaryPackage::from_stanza(&deb822::paragraphs(&p.stanza).next().unwrap().unwrap())
                .unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn refuses_bad_control_files() {
        let cases = [
            ("Version: 1\nArchitecture: all\n", "no Package field"),
            ("Package: a1\nArchitecture: all\n", "no Version field"),
            ("Package: a1\nVersion: 1\n", "no Architecture field"),
            (
                "Package: A1\nVersion: 1\nArchitecture: all\n",
                "not a valid package name",
            ),
            (
                "Package: a1\nVersion: 1 2\nArchitecture: all\n",
                "not a valid version",
            ),
            (
                "Package: a1\nVersion: abc\nArchitecture: all\n",
                "not a valid version",
            ),
            (
                "Package: a1\nVersion: 1\nArchitecture: all\nSize: 5\n",
                "Size field",
            ),
            (
                "Package: a1\nVersion: 1\nArchitecture: all\n\nPackage: b\n",
                "second paragraph",
            ),
            ("", "empty"),
            ("Package: a1\nbroken\n", "line 2"),
        ];
        for (control, reason) in cases {
            let err = BinaryPackage::from_control(control, &hashes(), "main")
                .unwrap_err()
                .0;
            assert!(err.contains(reason), "{control:?}: {err}");
        }
    }

    #[test]
    fn versions_order_like_dpkg() {
        use Ordering::*;
        for (a, b, o) in [
            ("1.0", "1.0~rc1", Greater),
            ("1:0.1", "2.0", Greater),
            ("1.0-1", "1.0-1+b1", Less),
            ("1.10", "1.9", Greater),
        ] {
            assert_eq!(compare_versions(a, b), o, "{a} vs {b}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(150))]

        /// The order of versions is dpkg's own: checked against `dpkg --compare-versions`.
        #[test]
        fn versions_order_like_dpkg_itself(
            a in "([0-9]:)?[0-9][0-9a-z.+~]{0,5}(-[0-9a-z.+~]{1,4})?",
            b in "([0-9]:)?[0-9][0-9a-z.+~]{0,5}(-[0-9a-z.+~]{1,4})?",
        ) {
            let dpkg = |op: &str| {
                std::process::Command::new("dpkg")
                    .args(["--compare-versions", &a, op, &b])
                    .status()
                    .expect("dpkg runs")
                    .success()
            };
            let expected = if dpkg("lt") { Ordering::Less } else if dpkg("eq") { Ordering::Equal } else { Ordering::Greater };
            proptest::prop_assert_eq!(compare_versions(&a, &b), expected, "{} vs {}", a, b);
        }
    }
}
