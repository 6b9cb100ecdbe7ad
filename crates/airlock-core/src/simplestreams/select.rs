//! What to mirror: MAAS-style selections on products, and the attributes of an item that
//! sstream-mirror style filters ([`crate::config::Filter`]) test.

use std::collections::HashMap;

use serde_json::Value;

use super::document::{Item, Product, Version};
use crate::config::ImageSelection;

/// The flattened attributes of one item: product, version and item fields, plus the names
/// simplestreams adds (`content_id`, `product_name`, `version_name`, `item_name`).
pub type Attributes = HashMap<String, String>;

pub fn attributes(
    content_id: &str,
    (product_name, product): (&str, &Product),
    (version_name, version): (&str, &Version),
    (item_name, item): (&str, &Item),
) -> Attributes {
    let mut out = Attributes::new();
    for fields in [&product.fields, &version.fields, &item.fields] {
        for (key, value) in fields {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            out.insert(key.clone(), text);
        }
    }
    for (key, value) in [
        ("content_id", content_id),
        ("product_name", product_name),
        ("version_name", version_name),
        ("item_name", item_name),
        ("ftype", &item.ftype),
        ("path", &item.path),
    ] {
        out.insert(key.to_string(), value.to_string());
    }
    out
}

impl ImageSelection {
    /// Whether a product is what this selection asks for, as MAAS matches its selections.
    pub fn matches(&self, product: &Product) -> bool {
        let any = |wanted: &[String], value: Option<&str>| {
            wanted.iter().any(|w| w == "*" || Some(w.as_str()) == value)
        };
        product.field("os") == Some(self.os.as_str())
            && (any(&self.release, product.field("release"))
                || any(&self.release, product.field("version")))
            && any(&self.arches, product.field("arch"))
            && any(&self.subarches, product.field("subarch"))
            && any(&self.labels, product.field("label"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(json: &str) -> Product {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn selections_as_maas_matches_them() {
        let noble = product(
            r#"{"os": "ubuntu", "release": "noble", "version": "24.04", "arch": "amd64", "subarch": "ga-24.04", "label": "stable", "versions": {}}"#,
        );
        let star = || vec!["*".to_string()];
        let selection = |release: &str, arch: &str| ImageSelection {
            os: "ubuntu".into(),
            release: vec![release.into()],
            arches: vec![arch.into()],
            subarches: star(),
            labels: star(),
        };
        assert!(selection("noble", "amd64").matches(&noble));
        assert!(selection("24.04", "*").matches(&noble));
        assert!(!selection("jammy", "amd64").matches(&noble));
        assert!(!selection("noble", "arm64").matches(&noble));
    }
}
