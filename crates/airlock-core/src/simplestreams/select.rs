//! What to mirror: MAAS-style selections on products, sstream-mirror style filters on items.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::document::{Item, Product, Version};
use crate::config::ImageSelection;

/// `key=value`, `key!=value`, `key~regex`, `key!~regex`, as sstream-mirror takes them: the
/// regex is searched (unanchored), and a missing key compares as the empty string.
#[derive(Debug, Clone)]
pub struct Filter {
    text: String,
    key: String,
    negated: bool,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Equals(String),
    Matches(regex::Regex),
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Filter {
    type Err = String;

    fn from_str(s: &str) -> Result<Filter, String> {
        let at = s.find(['=', '~', '!']).filter(|&i| i > 0).ok_or_else(|| {
            format!("{s:?} is not a filter: key=value, key!=value, key~regex or key!~regex")
        })?;
        let (key, rest) = s.split_at(at);
        let (negated, rest) = match rest.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let test = if let Some(value) = rest.strip_prefix('=') {
            Test::Equals(value.to_string())
        } else if let Some(pattern) = rest.strip_prefix('~') {
            Test::Matches(
                regex::Regex::new(pattern)
                    .map_err(|e| format!("{s:?}: bad regular expression: {e}"))?,
            )
        } else {
            return Err(format!(
                "{s:?} is not a filter: key=value, key!=value, key~regex or key!~regex"
            ));
        };
        Ok(Filter {
            text: s.to_string(),
            key: key.to_string(),
            negated,
            test,
        })
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Filter {
    pub fn matches(&self, attributes: &Attributes) -> bool {
        let value = attributes.get(&self.key).map_or("", String::as_str);
        let hit = match &self.test {
            Test::Equals(wanted) => value == wanted,
            Test::Matches(re) => re.is_match(value),
        };
        hit != self.negated
    }
}

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
    fn filters_as_sstream_mirror_reads_them() {
        let attrs: Attributes = [("release", "noble"), ("arch", "amd64")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (filter, expected) in [
            ("arch=amd64", true),
            ("arch!=amd64", false),
            ("release~(jammy|noble)", true),
            ("release!~^j", true),
            ("os=", true),
            ("os~grub", false),
        ] {
            let f: Filter = filter.parse().unwrap();
            assert_eq!(f.matches(&attrs), expected, "{filter}");
        }
        for bad in ["arch", "=amd64", "release~(", "arch!amd64"] {
            assert!(bad.parse::<Filter>().is_err(), "{bad}");
        }
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
