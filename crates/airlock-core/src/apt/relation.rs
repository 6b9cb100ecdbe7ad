//! Package relationships (Depends, Pre-Depends, Recommends, Provides), deb-control(5) syntax:
//! `a (>= 1.0) | b:any, c [amd64] <!nocheck>`.

use std::cmp::Ordering;

use super::package::compare_versions;

/// A version comparison of a relationship.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Earlier,
    EarlierOrEqual,
    Equal,
    LaterOrEqual,
    Later,
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "<<" => Op::Earlier,
            // `<` and `>` are obsolete spellings of `<=` and `>=` (deb-control(5)).
            "<=" | "<" => Op::EarlierOrEqual,
            "=" => Op::Equal,
            ">=" | ">" => Op::LaterOrEqual,
            ">>" => Op::Later,
            _ => return None,
        })
    }

    /// Whether `version` satisfies `op wanted`.
    pub fn holds(self, version: &str, wanted: &str) -> bool {
        let order = compare_versions(version, wanted);
        match self {
            Op::Earlier => order == Ordering::Less,
            Op::EarlierOrEqual => order != Ordering::Greater,
            Op::Equal => order == Ordering::Equal,
            Op::LaterOrEqual => order != Ordering::Less,
            Op::Later => order == Ordering::Greater,
        }
    }
}

/// One alternative of a relationship: a package name, an optional architecture qualifier
/// (`:any`, `:native`, `:amd64`) and an optional version constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alternative<'a> {
    pub name: &'a str,
    pub qualifier: Option<&'a str>,
    pub constraint: Option<(Op, &'a str)>,
}

/// A relationship field: clauses that must all hold, each satisfied by any of its alternatives.
pub type Relations<'a> = Vec<Vec<Alternative<'a>>>;

/// Parses a relationship field. Architecture restrictions (`[amd64]`) and build profiles
/// (`<!nocheck>`) belong to source packages; they are accepted and ignored.
pub fn parse_relations(field: &str) -> Result<Relations<'_>, String> {
    let mut clauses = Vec::new();
    for clause in field.split(',') {
        if clause.trim().is_empty() {
            continue;
        }
        let alternatives = clause
            .split('|')
            .map(parse_alternative)
            .collect::<Result<Vec<_>, _>>()?;
        clauses.push(alternatives);
    }
    Ok(clauses)
}

fn parse_alternative(text: &str) -> Result<Alternative<'_>, String> {
    let text = text.trim();
    let bad = |why: &str| format!("{why} in relationship {text:?}");
    let end = text.find(['(', '[', '<']).unwrap_or(text.len());
    let (head, rest) = text.split_at(end);
    let head = head.trim();
    let (name, qualifier) = match head.split_once(':') {
        Some((n, q)) => (n, Some(q)),
        None => (head, None),
    };
    if !super::package::valid_package_name(name) && !is_lenient_name(name) {
        return Err(bad("bad package name"));
    }
    let rest = rest.trim_start();
    let constraint = match rest.strip_prefix('(') {
        Some(inner) => {
            let close = inner.find(')').ok_or_else(|| bad("unclosed version"))?;
            let inner = inner[..close].trim();
            let split = inner
                .find(|c: char| !matches!(c, '<' | '>' | '='))
                .ok_or_else(|| bad("missing version"))?;
            let (op, version) = inner.split_at(split);
            let op = Op::parse(op.trim()).ok_or_else(|| bad("bad operator"))?;
            let version = version.trim();
            if version.is_empty() || version.contains(char::is_whitespace) {
                return Err(bad("bad version"));
            }
            Some((op, version))
        }
        None => None,
    };
    Ok(Alternative {
        name,
        qualifier,
        constraint,
    })
}

/// Real archives hold a few names policy forbids (a single letter, capitals in very old
/// packages); refusing the whole index over them would be worse than accepting them.
fn is_lenient_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-._".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_shapes() {
        let r = parse_relations("libc6 (>= 2.34), python3:any (<< 3.13), debconf (>= 0.5) | debconf-2.0, foo [amd64] <!nocheck>,").unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(
            r[0][0],
            Alternative {
                name: "libc6",
                qualifier: None,
                constraint: Some((Op::LaterOrEqual, "2.34"))
            }
        );
        assert_eq!(r[1][0].qualifier, Some("any"));
        assert_eq!(r[1][0].constraint, Some((Op::Earlier, "3.13")));
        assert_eq!(r[2].len(), 2);
        assert_eq!(r[2][1].name, "debconf-2.0");
        assert_eq!(
            r[3][0],
            Alternative {
                name: "foo",
                qualifier: None,
                constraint: None
            }
        );
        assert!(parse_relations("").unwrap().is_empty());
    }

    #[test]
    fn refuses_garbage() {
        for bad in ["a (>= ", "a (~ 1)", "a (>=)", "(>= 1)", "a b"] {
            assert!(parse_relations(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn operators() {
        assert!(Op::LaterOrEqual.holds("1.0", "1.0"));
        assert!(Op::Later.holds("1.0-1", "1.0"));
        assert!(Op::Earlier.holds("1.0~rc1", "1.0"));
        assert!(!Op::Equal.holds("1:1.0", "1.0"));
        assert!(Op::EarlierOrEqual.holds("0.9", "1.0"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "[a-z0-9+.:|,()<>=!\\[\\] -]{0,40}") {
            let _ = parse_relations(&text);
        }
    }
}
