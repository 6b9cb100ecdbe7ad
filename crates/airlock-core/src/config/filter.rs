//! sstream-mirror style filters on the items of an image stream (`[images] filters`).

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Deserializer};

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
    pub fn matches(&self, attributes: &HashMap<String, String>) -> bool {
        let value = attributes.get(&self.key).map_or("", String::as_str);
        let hit = match &self.test {
            Test::Equals(wanted) => value == wanted,
            Test::Matches(re) => re.is_match(value),
        };
        hit != self.negated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_as_sstream_mirror_reads_them() {
        let attrs: HashMap<String, String> = [("release", "noble"), ("arch", "amd64")]
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
}
