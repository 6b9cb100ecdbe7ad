//! The simplestreams documents MAAS reads: `index:1.0` and `products:1.0`.
//!
//! Fields airlock does not interpret are kept (`extra`, `fields`) so that a curated document
//! carries everything upstream said of the products it keeps. Keys are written sorted and
//! indented, so no line of a document starts with `-` (MAAS 3.8 does not undo the
//! dash-escaping of clearsigned text).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::storage::Sha256;

pub const INDEX_PATH: &str = "streams/v1/index";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    pub index: BTreeMap<String, IndexEntry>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexEntry {
    pub datatype: String,
    pub format: String,
    pub path: String,
    #[serde(default)]
    pub products: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Products {
    pub content_id: String,
    pub datatype: String,
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    pub products: BTreeMap<String, Product>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Product {
    #[serde(default)]
    pub versions: BTreeMap<String, Version>,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Version {
    #[serde(default)]
    pub items: BTreeMap<String, Item>,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub ftype: String,
    pub path: String,
    pub sha256: String,
    pub size: u64,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl Products {
    /// Every item with its checked digest (see [`Item::checked`]); an error names the
    /// product, version and item.
    pub fn checked_items(&self) -> Result<Vec<(&Item, Sha256)>, String> {
        let mut items = Vec::new();
        for (name, product) in &self.products {
            for (version_name, version) in &product.versions {
                for (item_name, item) in &version.items {
                    let sha256 = item.checked().map_err(|reason| {
                        format!("{name} {version_name} item {item_name}: {reason}")
                    })?;
                    items.push((item, sha256));
                }
            }
        }
        Ok(items)
    }
}

impl Product {
    /// A string field of the product (`os`, `release`, `arch`...).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    /// Bootloader products: MAAS imports every one a stream offers, whatever the selections.
    pub fn is_bootloader(&self) -> bool {
        self.fields.contains_key("bootloader-type")
    }
}

impl Item {
    /// The digest, checked to be one, and the path, checked to stay inside the mirror and
    /// out of its metadata folder.
    pub fn checked(&self) -> Result<Sha256, String> {
        crate::storage::tree::check_relative_path(&self.path)?;
        if self.path.starts_with("streams/") {
            return Err(format!(
                "path {:?} is in the metadata folder streams/",
                self.path
            ));
        }
        Sha256::from_hex(&self.sha256).ok_or_else(|| format!("sha256 {:?} is not one", self.sha256))
    }
}

/// JSON as airlock writes it: sorted keys, one-space indent, final newline.
pub fn render<T: Serialize>(document: &T) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    document
        .serialize(&mut serializer)
        .expect("documents serialise");
    out.push(b'\n');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// `updated` as simplestreams writes it (RFC 2822).
pub fn updated(now: jiff::Timestamp) -> String {
    now.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// Where the signed form of a document is: `x.json` → `x.sjson`.
pub fn signed_path(path: &str) -> String {
    match path.strip_suffix(".json") {
        Some(stem) => format!("{stem}.sjson"),
        None => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRODUCTS: &str = r#"{"content_id": "com.ubuntu.maas:stable:v3:download", "datatype": "image-ids",
 "format": "products:1.0", "updated": "Thu, 24 Jul 2025 09:01:42 +0000",
 "products": {"com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04": {
   "arch": "amd64", "os": "ubuntu", "release": "noble", "label": "stable", "subarch": "ga-24.04",
   "versions": {"20250709": {"items": {
     "squashfs": {"ftype": "squashfs", "size": 271732736, "path": "noble/amd64/20250709/squashfs",
       "sha256": "4e30804d8f2cbad61b17bf94be758518209759ac26e8e065b094f9b51eaf5fdc"}}}}}}}"#;

    #[test]
    fn round_trips_what_it_does_not_interpret() {
        let doc: Products = serde_json::from_str(PRODUCTS).unwrap();
        let product = &doc.products["com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04"];
        assert_eq!(product.field("release"), Some("noble"));
        assert!(!product.is_bootloader());
        let text = render(&doc);
        assert!(!text.lines().any(|l| l.starts_with('-')));
        assert!(text.contains("\n \"content_id\""), "{text}");
        let again: serde_json::Value = serde_json::from_str(&text).unwrap();
        let original: serde_json::Value = serde_json::from_str(PRODUCTS).unwrap();
        assert_eq!(again, original);
    }

    #[test]
    fn items_stay_inside_the_mirror() {
        let doc: Products = serde_json::from_str(PRODUCTS).unwrap();
        let mut item =
            doc.products.values().next().unwrap().versions["20250709"].items["squashfs"].clone();
        assert!(item.checked().is_ok());
        for bad in ["../etc/passwd", "/etc/passwd", "streams/v1/index.sjson"] {
            item.path = bad.into();
            assert!(item.checked().is_err(), "{bad}");
        }
        let missing = PRODUCTS.replace("\"sha256\"", "\"sha257\"");
        let err = serde_json::from_str::<Products>(&missing).unwrap_err();
        assert!(err.to_string().contains("missing field `sha256`"), "{err}");
    }

    #[test]
    fn dates_and_signed_paths() {
        let t: jiff::Timestamp = "2025-07-24T08:01:49Z".parse().unwrap();
        assert_eq!(updated(t), "Thu, 24 Jul 2025 08:01:49 +0000");
        assert_eq!(
            signed_path("streams/v1/com.ubuntu.maas:stable:v3:download.json"),
            "streams/v1/com.ubuntu.maas:stable:v3:download.sjson"
        );
    }
}
