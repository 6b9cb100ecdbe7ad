//! Dependency closure over every suite and component of a mirror, for one architecture.
//!
//! Selection is by package name: a selected name brings every version the mirror's suites hold
//! (noble's, noble-updates', noble-security's), so each suite stays whole for clients that use
//! it alone and apt's candidate (the highest version) is always there. Each selected version's
//! Pre-Depends and Depends (and Recommends when asked) must then hold: a clause already met by
//! a selected package is left alone; otherwise its first alternative that some package of the
//! mirror satisfies (real, or through Provides) is selected; a clause no package satisfies is
//! reported, never dropped silently.
//!
//! Architecture qualifiers (`:any`, `:native`) are accepted; the closure runs within one
//! architecture's indices, which hold that architecture's packages and `Architecture: all`.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::index::IndexRecord;
use super::relation::{Alternative, parse_relations};

/// A package of the universe: which index (suite, component) it comes from and its record.
pub struct Candidate<'a> {
    pub index: usize,
    pub record: &'a IndexRecord,
}

/// A dependency nothing in the mirror satisfies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Unsatisfied {
    pub package: String,
    pub version: String,
    pub field: &'static str,
    pub relation: String,
}

/// What the closure selected: positions in the candidate list.
#[derive(Debug, Default)]
pub struct Selection {
    pub chosen: BTreeSet<usize>,
    pub unsatisfied: BTreeSet<Unsatisfied>,
    /// Name patterns that matched no package.
    pub unmatched: Vec<String>,
}

pub struct ClosureOptions<'p> {
    /// Names or glob patterns (`*`, `?`); `None` selects everything.
    pub patterns: Option<&'p [String]>,
    pub with_dependencies: bool,
    pub include_recommends: bool,
}

/// The end of a chain of candidates.
const NONE: u32 = u32::MAX;

/// The universe of one architecture, indexed by name and by what packages provide.
struct Universe<'a> {
    candidates: &'a [Candidate<'a>],
    /// The first candidate of each name; the others follow through `next_same`. A map of
    /// lists would hold 63,000 small allocations for Debian's main.
    by_name: HashMap<&'a str, u32>,
    next_same: Vec<u32>,
    /// Virtual name -> (provider, provided version if any).
    provided: HashMap<&'a str, Vec<(usize, Option<&'a str>)>>,
}

impl<'a> Universe<'a> {
    fn new(candidates: &'a [Candidate<'a>]) -> Universe<'a> {
        let mut by_name: HashMap<&str, u32> = HashMap::with_capacity(candidates.len());
        let mut next_same = vec![NONE; candidates.len()];
        // Backwards, so that each name's chain runs in candidate order.
        for (i, c) in candidates.iter().enumerate().rev() {
            next_same[i] = by_name.insert(c.record.name(), i as u32).unwrap_or(NONE);
        }
        let mut provided: HashMap<&str, Vec<(usize, Option<&str>)>> = HashMap::new();
        for (i, c) in candidates.iter().enumerate() {
            if let Some(provides) = c.record.provides() {
                // A malformed Provides provides nothing; the package itself stays usable.
                for clause in parse_relations(provides).unwrap_or_default() {
                    for alt in clause {
                        let version = alt.constraint.map(|(_, v)| v);
                        provided.entry(alt.name).or_default().push((i, version));
                    }
                }
            }
        }
        Universe {
            candidates,
            by_name,
            next_same,
            provided,
        }
    }

    /// The candidates named `name`, in candidate order.
    fn named(&self, name: &str) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(self.by_name.get(name).copied(), |&i| {
            Some(self.next_same[i as usize]).filter(|&n| n != NONE)
        })
        .map(|i| i as usize)
    }

    /// Candidates that satisfy one alternative: real packages first, then providers.
    fn satisfying(&self, alt: &Alternative<'_>) -> (Vec<usize>, Vec<usize>) {
        let real = self
            .named(alt.name)
            .filter(|&i| match alt.constraint {
                Some((op, wanted)) => op.holds(self.candidates[i].record.version(), wanted),
                None => true,
            })
            .collect();
        let providers = self
            .provided
            .get(alt.name)
            .map(|list| {
                list.iter()
                    .filter(|(_, version)| match (alt.constraint, version) {
                        (None, _) => true,
                        // Only a versioned Provides satisfies a versioned dependency.
                        (Some((op, wanted)), Some(v)) => op.holds(v, wanted),
                        (Some(_), None) => false,
                    })
                    .map(|(i, _)| *i)
                    .collect()
            })
            .unwrap_or_default();
        (real, providers)
    }
}

/// Selects packages of one architecture's universe.
pub fn close<'a>(candidates: &'a [Candidate<'a>], options: &ClosureOptions<'_>) -> Selection {
    let Some(patterns) = options.patterns else {
        return Selection {
            chosen: (0..candidates.len()).collect(),
            ..Selection::default()
        };
    };
    let mut closer = Closer {
        universe: Universe::new(candidates),
        names: HashSet::new(),
        work: Vec::new(),
        selection: Selection::default(),
    };
    for pattern in patterns {
        let matching: Vec<&str> = closer
            .universe
            .by_name
            .keys()
            .copied()
            .filter(|name| glob_matches(pattern, name))
            .collect();
        if matching.is_empty() {
            closer.selection.unmatched.push(pattern.clone());
        }
        for name in matching {
            closer.select(name);
        }
    }
    if options.with_dependencies {
        while let Some(i) = closer.work.pop() {
            closer.satisfy(candidates[i].record, options.include_recommends);
        }
    }
    closer.selection
}

struct Closer<'a> {
    universe: Universe<'a>,
    names: HashSet<&'a str>,
    work: Vec<usize>,
    selection: Selection,
}

impl<'a> Closer<'a> {
    /// Selects every version of a name (once).
    fn select(&mut self, name: &str) {
        let ids: Vec<usize> = self.universe.named(name).collect();
        if let Some(&first) = ids.first()
            && self
                .names
                .insert(self.universe.candidates[first].record.name())
        {
            for i in ids {
                self.selection.chosen.insert(i);
                self.work.push(i);
            }
        }
    }

    fn satisfy(&mut self, record: &IndexRecord, include_recommends: bool) {
        let candidates = self.universe.candidates;
        let fields = [
            ("Pre-Depends", record.pre_depends()),
            ("Depends", record.depends()),
            (
                "Recommends",
                if include_recommends {
                    record.recommends()
                } else {
                    None
                },
            ),
        ];
        for (field, value) in fields {
            let Some(value) = value else { continue };
            let Ok(clauses) = parse_relations(value) else {
                self.selection
                    .unsatisfied
                    .insert(unsatisfied(record, field, value));
                continue;
            };
            for clause in clauses {
                let options: Vec<(Vec<usize>, Vec<usize>)> = clause
                    .iter()
                    .map(|alt| self.universe.satisfying(alt))
                    .collect();
                let met = options.iter().any(|(real, providers)| {
                    real.iter()
                        .chain(providers)
                        .any(|i| self.names.contains(candidates[*i].record.name()))
                });
                if met {
                    continue;
                }
                // The first alternative something satisfies; a real package before providers,
                // and among providers the first by name, where apt would ask the user.
                let pick = options.iter().find_map(|(real, providers)| {
                    real.first()
                        .or_else(|| {
                            providers
                                .iter()
                                .min_by_key(|i| candidates[**i].record.name())
                        })
                        .copied()
                });
                match pick {
                    Some(p) => self.select(candidates[p].record.name()),
                    None => {
                        let text = clause.iter().map(describe).collect::<Vec<_>>().join(" | ");
                        self.selection
                            .unsatisfied
                            .insert(unsatisfied(record, field, &text));
                    }
                }
            }
        }
    }
}

fn unsatisfied(record: &IndexRecord, field: &'static str, relation: &str) -> Unsatisfied {
    Unsatisfied {
        package: record.name().to_string(),
        version: record.version().to_string(),
        field,
        relation: relation.to_string(),
    }
}

fn describe(alt: &Alternative<'_>) -> String {
    match alt.constraint {
        Some((op, version)) => format!("{} ({} {version})", alt.name, op_text(op)),
        None => alt.name.to_string(),
    }
}

fn op_text(op: super::relation::Op) -> &'static str {
    use super::relation::Op::*;
    match op {
        Earlier => "<<",
        EarlierOrEqual => "<=",
        Equal => "=",
        LaterOrEqual => ">=",
        Later => ">>",
    }
}

/// Shell-style matching with `*` and `?` (no character classes: package names need none).
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    fn matches(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => matches(&p[1..], n) || (!n.is_empty() && matches(p, &n[1..])),
            (Some(b'?'), Some(_)) => matches(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => matches(&p[1..], &n[1..]),
            _ => false,
        }
    }
    matches(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Sha256;

    fn record(
        name: &str,
        version: &str,
        depends: Option<&str>,
        provides: Option<&str>,
    ) -> IndexRecord {
        let filename = format!("pool/{name}_{version}.deb");
        IndexRecord::new(
            [
                name,
                version,
                "amd64",
                &filename,
                depends.unwrap_or_default(),
                "",
                "",
                provides.unwrap_or_default(),
                "",
            ],
            1,
            Sha256::of(name.as_bytes()),
            0,
            0,
        )
    }

    fn names(records: &[IndexRecord], selection: &Selection) -> Vec<String> {
        selection
            .chosen
            .iter()
            .map(|&i| format!("{}={}", records[i].name(), records[i].version()))
            .collect()
    }

    fn run(records: &[IndexRecord], patterns: &[&str]) -> (Vec<String>, Selection) {
        let candidates: Vec<Candidate> = records
            .iter()
            .enumerate()
            .map(|(i, record)| Candidate {
                index: i % 2,
                record,
            })
            .collect();
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        let selection = close(
            &candidates,
            &ClosureOptions {
                patterns: Some(&patterns),
                with_dependencies: true,
                include_recommends: false,
            },
        );
        (names(records, &selection), selection)
    }

    #[test]
    fn follows_versions_alternatives_and_provides_across_suites() {
        let records = vec![
            // "stable" has libfoo 1; "stable-updates" has libfoo 2 and app 2 needing it.
            record("libfoo", "1", None, None),
            record("libfoo", "2", None, None),
            record(
                "app",
                "2",
                Some("libfoo (>= 2), mail-transport-agent, missing | libbar"),
                None,
            ),
            record("postfix", "3", None, Some("mail-transport-agent")),
            record("exim", "4", None, Some("mail-transport-agent")),
            record("libbar", "1", Some("libc6 (>= 9)"), None),
            record("libc6", "2.36", None, None),
            record("unrelated", "1", None, None),
        ];
        let (chosen, selection) = run(&records, &["app"]);
        assert_eq!(
            chosen,
            ["libfoo=1", "libfoo=2", "app=2", "exim=4", "libbar=1"]
        );
        let unsatisfied: Vec<_> = selection
            .unsatisfied
            .iter()
            .map(|u| (&*u.package, &*u.relation))
            .collect();
        assert_eq!(unsatisfied, [("libbar", "libc6 (>= 9)")]);
    }

    #[test]
    fn met_clauses_and_versioned_provides() {
        let records = vec![
            record("a", "1", Some("b | c, virt (>= 2)"), None),
            record("c", "1", None, Some("virt (= 1)")),
            record("d", "1", None, Some("virt (= 2)")),
            record("b", "1", None, None),
        ];
        // c is asked for too, so "b | c" is already met by c.
        let (chosen, selection) = run(&records, &["a", "c"]);
        assert_eq!(chosen, ["a=1", "c=1", "d=1"]);
        assert!(selection.unsatisfied.is_empty());
    }

    #[test]
    fn patterns() {
        assert!(glob_matches(
            "linux-image-*",
            "linux-image-6.8.0-31-generic"
        ));
        assert!(glob_matches("?sh", "ssh"));
        assert!(!glob_matches("ssh", "openssh"));
        let records = vec![record("ssh", "1", None, None)];
        let (_, selection) = run(&records, &["nothing-*"]);
        assert_eq!(selection.unmatched, ["nothing-*"]);
    }
}
