//! What a `.snap` says about itself: `meta/snap.yaml` and the icon, read from the squashfs
//! image without unpacking it (xz, gzip, lzo and zstd images all occur).

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::hint::{Chain, Hint};
use backhand::{FilesystemReader, InnerNode};
use serde::{Deserialize, Serialize};

/// snap.yaml and icons beyond this are refused: real ones are a few KiB.
const MAX_META: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct SnapFileError {
    pub path: String,
    pub reason: String,
    /// The I/O or squashfs error behind `reason`, when there is one.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Hint for SnapFileError {
    fn hint(&self) -> Option<&'static str> {
        Some(
            "give the .snap file as `snap download` wrote it; `unsquashfs -l FILE` reads a good one",
        )
    }
}

/// The fields the store API reports, from `meta/snap.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapMeta {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub description: String,
    pub title: Option<String>,
    pub license: Option<String>,
    pub base: Option<String>,
    pub confinement: String,
    pub grade: String,
    /// `app`, `base`, `os`, `core`, `snapd`, `gadget`, `kernel`.
    #[serde(rename = "type")]
    pub kind: String,
    pub architectures: Vec<String>,
    /// As the store JSON has it: `{"read":[...],"write":[...]}`.
    pub epoch: serde_json::Value,
    /// Snaps named as content `default-provider`s: snapd installs them with this one.
    pub default_providers: Vec<String>,
    /// Commands the snap provides (for snapd's command-not-found catalog).
    #[serde(default)]
    pub apps: Vec<String>,
    /// The file's text, returned to `snap download` as `snap-yaml`.
    pub snap_yaml: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawYaml {
    name: String,
    version: Option<serde_norway::Value>,
    summary: Option<String>,
    description: Option<String>,
    title: Option<String>,
    license: Option<String>,
    base: Option<String>,
    confinement: Option<String>,
    grade: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    architectures: Option<Vec<String>>,
    epoch: Option<serde_norway::Value>,
    #[serde(default)]
    plugs: BTreeMap<String, serde_norway::Value>,
    #[serde(default)]
    apps: BTreeMap<String, serde_norway::Value>,
}

/// An icon's kind (`png` or `svg`) and bytes.
pub type IconFile = (&'static str, Vec<u8>);

/// Reads `meta/snap.yaml` (and the icon, when there is one) from the snap at `path`.
pub fn read(path: &Path) -> Result<(SnapMeta, Option<IconFile>), SnapFileError> {
    let fail = |reason: String| SnapFileError {
        path: path.display().to_string(),
        reason,
        source: None,
    };
    let failed = |reason: String, e: Box<dyn std::error::Error + Send + Sync>| SnapFileError {
        source: Some(e),
        ..fail(reason)
    };
    let file = std::fs::File::open(path).map_err(|e| failed("cannot open".into(), e.into()))?;
    // The superblock: magic, then `bytes_used` (the image's length) at offset 40.
    let mut superblock = [0u8; 48];
    (&file)
        .read_exact(&mut superblock)
        .map_err(|_| fail("too short to be a snap".into()))?;
    if &superblock[..4] != b"hsqs" {
        return Err(fail(
            "not a snap: a snap is a squashfs image, and this is not one".into(),
        ));
    }
    let declared = u64::from_le_bytes(superblock[40..48].try_into().expect("8 bytes"));
    let actual = file
        .metadata()
        .map_err(|e| failed("cannot read".into(), e.into()))?
        .len();
    if actual < declared {
        return Err(fail(format!(
            "truncated: the squashfs image is {declared} bytes, the file only {actual}"
        )));
    }
    let reader = BufReader::new(
        std::fs::File::open(path).map_err(|e| failed("cannot open".into(), e.into()))?,
    );
    let squashfs = FilesystemReader::from_reader(reader)
        .map_err(|e| failed("unreadable squashfs image".into(), e.into()))?;
    let read_file = |wanted: &str| -> Result<Option<Vec<u8>>, SnapFileError> {
        for node in squashfs.files() {
            if node.fullpath != Path::new(wanted) {
                continue;
            }
            let InnerNode::File(file) = &node.inner else {
                return Err(fail(format!("{wanted} is not a regular file")));
            };
            let mut bytes = Vec::new();
            squashfs
                .file(file)
                .reader()
                .take(MAX_META + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| failed(format!("cannot read {wanted}"), e.into()))?;
            if bytes.len() as u64 > MAX_META {
                return Err(fail(format!("{wanted} is larger than {MAX_META} bytes")));
            }
            return Ok(Some(bytes));
        }
        Ok(None)
    };
    let yaml = read_file("/meta/snap.yaml")?
        .ok_or_else(|| fail("meta/snap.yaml is missing: not a snap".into()))?;
    let yaml = String::from_utf8(yaml).map_err(|_| fail("meta/snap.yaml is not UTF-8".into()))?;
    let meta = parse_yaml(&yaml).map_err(|e| fail(format!("meta/snap.yaml: {e}")))?;
    let mut icon = None;
    for (name, kind) in [("/meta/gui/icon.png", "png"), ("/meta/gui/icon.svg", "svg")] {
        if let Some(bytes) = read_file(name)? {
            icon = Some((kind, bytes));
            break;
        }
    }
    Ok((meta, icon))
}

pub fn parse_yaml(yaml: &str) -> Result<SnapMeta, String> {
    let raw: RawYaml = serde_norway::from_str(yaml).map_err(|e| Chain(&e).to_string())?;
    if raw.name.is_empty()
        || raw.name.len() > 40
        || !raw
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!("{:?} is not a snap name", raw.name));
    }
    let version = match raw.version {
        Some(serde_norway::Value::String(s)) => s,
        Some(serde_norway::Value::Number(n)) => n.to_string(),
        _ => return Err("version is missing".into()),
    };
    let confinement = raw.confinement.unwrap_or_else(|| "strict".into());
    if !["strict", "classic", "devmode"].contains(&confinement.as_str()) {
        return Err(format!(
            "confinement {confinement:?} is not strict, classic or devmode"
        ));
    }
    let mut default_providers = Vec::new();
    for plug in raw.plugs.values() {
        let provider = plug
            .get("default-provider")
            .and_then(|p| p.as_str())
            .map(|p| p.split(':').next().unwrap_or(p).to_string());
        if let Some(p) = provider.filter(|p| !default_providers.contains(p)) {
            default_providers.push(p);
        }
    }
    Ok(SnapMeta {
        name: raw.name,
        version,
        summary: raw.summary.unwrap_or_default(),
        description: raw.description.unwrap_or_default(),
        title: raw.title,
        license: raw.license,
        base: raw.base,
        confinement,
        grade: raw.grade.unwrap_or_else(|| "stable".into()),
        kind: raw.kind.unwrap_or_else(|| "app".into()),
        architectures: raw.architectures.unwrap_or_else(|| vec!["all".into()]),
        epoch: epoch(raw.epoch)?,
        default_providers,
        apps: raw.apps.into_keys().collect(),
        snap_yaml: yaml.to_string(),
    })
}

/// snap.yaml's `epoch` (`1`, `"1*"`, or `{read, write}`) in the store's JSON shape.
fn epoch(value: Option<serde_norway::Value>) -> Result<serde_json::Value, String> {
    let text = match value {
        None => "0".to_string(),
        Some(serde_norway::Value::Number(n)) => n.to_string(),
        Some(serde_norway::Value::String(s)) => s,
        Some(other @ serde_norway::Value::Mapping(_)) => {
            return serde_json::to_value(&other).map_err(|e| format!("epoch: {e}"));
        }
        Some(_) => return Err("epoch is neither a number, \"N*\" nor {read, write}".into()),
    };
    let (number, star) = match text.strip_suffix('*') {
        Some(n) => (n, true),
        None => (text.as_str(), false),
    };
    let n: u32 = number
        .parse()
        .map_err(|_| format!("epoch {text:?} is not a number or \"N*\""))?;
    let read: Vec<u32> = if star && n > 0 {
        vec![n - 1, n]
    } else {
        vec![n]
    };
    Ok(serde_json::json!({"read": read, "write": [n]}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_snap_yaml_fields() {
        let meta = parse_yaml(
            "name: maas\nversion: '3.5.1'\nsummary: Metal as a Service\nbase: core22\n\
             confinement: strict\nepoch: 1*\nplugs:\n  maas-cli:\n    interface: content\n    \
             default-provider: maas-cli:maas-cli\n  network: {}\n",
        )
        .unwrap();
        assert_eq!(meta.name, "maas");
        assert_eq!(meta.version, "3.5.1");
        assert_eq!(meta.kind, "app");
        assert_eq!(meta.architectures, ["all"]);
        assert_eq!(
            meta.epoch,
            serde_json::json!({"read": [0, 1], "write": [1]})
        );
        assert_eq!(meta.default_providers, ["maas-cli"]);
        let meta = parse_yaml("name: core22\nversion: 20240111\ntype: base\n").unwrap();
        assert_eq!(meta.version, "20240111");
        assert_eq!(meta.epoch, serde_json::json!({"read": [0], "write": [0]}));
    }

    #[test]
    fn bad_snap_yaml_is_named() {
        for (yaml, expected) in [
            ("name: \"unterminated\nversion: 1\n", "line 1"),
            ("version: 1\n", "missing field `name`"),
            ("name: Bad_Name\nversion: 1\n", "not a snap name"),
            ("name: ok\n", "version is missing"),
            ("name: ok\nversion: 1\nconfinement: loose\n", "confinement"),
            ("name: ok\nversion: 1\nepoch: many\n", "epoch"),
        ] {
            let e = parse_yaml(yaml).unwrap_err();
            assert!(e.contains(expected), "{yaml:?}: {e}");
        }
    }
}
