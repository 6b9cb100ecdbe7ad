//! Values checked as they are deserialised, so that a bad one is a TOML error carrying the
//! line it is on: names, architectures, URLs, durations, bounded counts, lists.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Values checked while parsing, so that the TOML error carries the line of the bad value.
macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(s).map(|()| $name(s.to_string()))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

validated_string!(
    /// A repo, suite or component name: it becomes a path component and a URL segment.
    Name,
    |s| {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
        if ok { Ok(()) } else {
            Err(format!("{s:?} is not a valid name: use letters, digits, '.', '_', '+' or '-', starting with a letter or digit"))
        }
    }
);

validated_string!(
    /// A Debian architecture name such as amd64 or arm64 (`all` is implied, never listed).
    Architecture,
    |s| {
        if s == "all" || s == "source" {
            return Err(format!("{s:?} is not listed in architectures: Architecture: all packages appear in every architecture's index"));
        }
        let ok = !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok { Ok(()) } else { Err(format!("{s:?} is not a valid Debian architecture name")) }
    }
);

validated_string!(
    /// A single-line value for a Release field (Origin, Label, Description).
    FieldValue,
    |s| {
        if s.trim().is_empty() || s.chars().any(|c| c.is_control()) {
            Err(format!("{s:?} must be a non-empty single line"))
        } else {
            Ok(())
        }
    }
);

validated_string!(
    /// A package name or a glob pattern of names (`linux-image-*`).
    PackagePattern,
    |s| {
        let ok = !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.*?".contains(c));
        if ok { Ok(()) } else { Err(format!("{s:?} is not a package name or pattern (lowercase letters, digits, + - . and the wildcards * ?)")) }
    }
);

/// A suite of a repo or mirror, written `NAME/SUITE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SuiteSource {
    pub tree: Name,
    pub suite: Name,
}

impl fmt::Display for SuiteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tree, self.suite)
    }
}

impl<'de> Deserialize<'de> for SuiteSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let (tree, suite) = s.split_once('/').ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{s:?} must name a repo or mirror and one of its suites: \"NAME/SUITE\""
            ))
        })?;
        Ok(SuiteSource {
            tree: tree.parse().map_err(serde::de::Error::custom)?,
            suite: suite.parse().map_err(serde::de::Error::custom)?,
        })
    }
}

/// An upstream archive root; always stored with a trailing `/` so that relative paths join.
#[derive(Debug, Clone)]
pub(super) struct MirrorUrl(pub(super) String);

impl<'de> Deserialize<'de> for MirrorUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let url = reqwest::Url::parse(&s)
            .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(serde::de::Error::custom(format!(
                "{s:?} must be an http:// or https:// URL"
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(serde::de::Error::custom(format!(
                "{s:?} must not have a query or fragment"
            )));
        }
        let mut text = url.to_string();
        if !text.ends_with('/') {
            text.push('/');
        }
        Ok(MirrorUrl(text))
    }
}

validated_string!(
    /// Where clients reach this server, without a trailing slash.
    PublicUrl,
    |s| {
        let rest = s.strip_prefix("http://").or_else(|| s.strip_prefix("https://"));
        match rest {
            Some(r) if !r.is_empty() && !s.ends_with('/') && !s.contains(char::is_whitespace) => Ok(()),
            _ => Err(format!("{s:?} must be an http:// or https:// URL without a trailing slash")),
        }
    }
);

/// The host of a URL as it goes back into one (`[::1]` keeps its brackets).
pub fn url_host(url: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .host_str()
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}

/// A duration written like `30s`, `15m`, `12h`, `7d` or `2w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period(pub Duration);

impl FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?} is not a duration: write a number and a unit, like 30s, 15m, 12h, 7d or 2w"
            )
        };
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = s.split_at(split);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return Err(bad()),
        };
        if number == 0 {
            return Err(format!("{s:?} must be longer than zero"));
        }
        let total = number
            .checked_mul(seconds)
            .filter(|t| *t <= 100 * 365 * 86_400)
            .ok_or_else(|| format!("{s:?} is too long"))?;
        Ok(Period(Duration::from_secs(total)))
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A size written like `50GB`, `512MiB` or `1TB` (decimal and binary units, B optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a size: write a number and a unit, like 512MiB or 50GB");
        let text = s.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let factor: u64 = match unit.trim() {
            "" | "B" => 1,
            "k" | "kB" | "KB" => 1_000,
            "M" | "MB" => 1_000_000,
            "G" | "GB" => 1_000_000_000,
            "T" | "TB" => 1_000_000_000_000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            _ => return Err(bad()),
        };
        number
            .checked_mul(factor)
            .map(Size)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parallel downloads: at least 1, at most 64 (politeness towards upstreams).
#[derive(Debug, Clone, Copy)]
pub(super) struct Jobs(pub(super) usize);

impl<'de> Deserialize<'de> for Jobs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        if !(1..=64).contains(&n) {
            return Err(serde::de::Error::custom(format!(
                "jobs must be between 1 and 64, not {n}"
            )));
        }
        Ok(Jobs(n as usize))
    }
}

/// How many versions of a package (per architecture) a suite keeps; at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KeepVersions(pub(super) usize);

impl<'de> Deserialize<'de> for KeepVersions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        if !(1..=1000).contains(&n) {
            return Err(serde::de::Error::custom(format!(
                "must be between 1 and 1000 versions, not {n}"
            )));
        }
        Ok(KeepVersions(n as usize))
    }
}

/// A list that must not be empty nor name anything twice.
#[derive(Debug, Clone)]
pub(super) struct List<T>(pub(super) Vec<T>);

impl<'de, T: Deserialize<'de> + PartialEq + fmt::Display> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<T>::deserialize(d)?;
        if items.is_empty() {
            return Err(serde::de::Error::custom("the list must not be empty"));
        }
        if let Some((_, dup)) = items
            .iter()
            .enumerate()
            .find(|(i, item)| items[..*i].contains(item))
        {
            return Err(serde::de::Error::custom(format!(
                "\"{dup}\" is listed twice"
            )));
        }
        Ok(List(items))
    }
}

/// A string or a list of strings.
pub(super) struct OneOrMore<T>(pub(super) Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMore<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape<T> {
            One(T),
            More(Vec<T>),
        }
        Ok(OneOrMore(match Shape::deserialize(d)? {
            Shape::One(t) => vec![t],
            Shape::More(v) => v,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!("90s".parse::<Period>().unwrap().0, Duration::from_secs(90));
        assert_eq!(
            "2w".parse::<Period>().unwrap().0,
            Duration::from_secs(14 * 86_400)
        );
        for bad in ["", "d", "7", "7 d", "-1d", "0d", "1y"] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
    }
}
