//! Dependency closure over every suite and component of a mirror, for one architecture: what
//! apt would install for each package a mirror names, on a system that has nothing installed.
//!
//! Selection is by package name: a selected name brings every version the mirror's suites hold
//! (bookworm's, bookworm-updates', bookworm-security's), so each suite stays whole for clients
//! that use it alone and apt's candidate (the highest version) is always there.
//!
//! With [`Alternatives::Apt`] the closure follows apt's own resolver (`pkgDepCache::MarkInstall`)
//! where it makes choices. Each target is walked on its own, as `apt-get install TARGET` would
//! on a bare system: the candidate's Pre-Depends, Depends (and Recommends when asked) in their
//! order, depth first. A clause that a package already chosen on this walk satisfies is left
//! alone; otherwise its alternatives are tried in order, the providers of each sorted the way
//! apt sorts them ([`Universe::solutions`]), and the first installable one is taken:
//! installable means that it does not conflict with (nor break, nor is broken by) a package of
//! the walk, and that each of its own Pre-Depends and Depends is satisfiable by some candidate
//! (apt's `IsInstallOk`). A clause nothing satisfies is reported, never dropped silently.
//! With [`Alternatives::All`] every installable alternative and every provider is taken.
//!
//! Older versions of a selected name (an index of several suites) have their dependencies
//! satisfied too, by any version of the selected names, or else by the same choice.
//!
//! Architecture qualifiers (`:any`, `:native`) are accepted; the closure runs within one
//! architecture's indices, which hold that architecture's packages and `Architecture: all`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use super::index::IndexRecord;
use super::relation::{Alternative, Op, parse_relations};
use crate::config::Alternatives;

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
    /// Name patterns that matched no package, real or virtual.
    pub unmatched: Vec<String>,
    /// Virtual names of the patterns and the providers taken for them.
    pub virtuals: Vec<(String, Vec<String>)>,
    /// The decisions about [`ClosureOptions::explain`].
    pub explanation: Option<Explanation>,
}

pub struct ClosureOptions<'p> {
    /// Names or glob patterns (`*`, `?`); `None` selects everything.
    pub patterns: Option<&'p [String]>,
    pub with_dependencies: bool,
    pub include_recommends: bool,
    pub alternatives: Alternatives,
    /// A package name whose decisions to keep (`airlock sync --explain`).
    pub explain: Option<&'p str>,
}

/// Why a name is in the mirror.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// `packages` names it (or a pattern of it matches it).
    Named { pattern: String },
    /// `packages` names a virtual package it provides.
    Provides { name: String },
    /// A dependency of a selected package chose it.
    Dependency(Decision),
}

/// One alternative group decided: whose, which field, the group, and the alternatives tried
/// before the one taken, with why they were not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub package: String,
    pub version: String,
    pub field: &'static str,
    pub clause: String,
    pub passed: Vec<(String, Rejection)>,
}

/// Why an alternative was not taken.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// No package of the mirror's scope satisfies it.
    Missing,
    /// It conflicts with (or breaks) this package, chosen before on the walk.
    Conflicts(String),
    /// This package, chosen before on the walk, conflicts with (or breaks) it.
    BrokenBy(String),
    /// This dependency of its own no candidate satisfies.
    Unsatisfiable(String),
}

/// How a group that lists a package was decided without it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A package chosen before on the walk already satisfied the group.
    MetBy(String),
    /// An alternative before it was taken (the rejected ones are in the decision).
    Chose(String),
    /// It was tried and could not be installed.
    Rejected(Rejection),
}

/// The decisions about one package.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Explanation {
    pub package: String,
    /// Selected: from the package up to a target, each name with why it is there.
    pub chain: Vec<(String, Reason)>,
    /// Groups that list it and took something else (the first few).
    pub passed_over: Vec<(Decision, Outcome)>,
}

/// How many groups that passed a package over an explanation keeps.
const PASSED_OVER_KEPT: usize = 20;

/// The end of a chain of candidates.
const NONE: u32 = u32::MAX;

/// A candidate's relations, parsed once.
#[derive(Default)]
struct Relationships<'a> {
    /// Pre-Depends, Depends, then Recommends when asked, in order.
    clauses: Vec<(&'static str, Vec<Alternative<'a>>)>,
    /// Conflicts and Breaks (no alternatives).
    negative: Vec<Alternative<'a>>,
    /// Provides: name and provided version.
    provides: Vec<(&'a str, Option<&'a str>)>,
    /// Fields that would not parse: field and text.
    malformed: Vec<(&'static str, &'a str)>,
}

/// The universe of one architecture, indexed by name and by what packages provide.
struct Universe<'a> {
    candidates: &'a [Candidate<'a>],
    /// The first candidate of each name; the others follow through `next_same`. A map of
    /// lists would hold 63,000 small allocations for Debian's main.
    by_name: HashMap<&'a str, u32>,
    next_same: Vec<u32>,
    /// Virtual name -> (provider, provided version if any).
    provided: HashMap<&'a str, Vec<(usize, Option<&'a str>)>>,
    include_recommends: bool,
    /// Candidate -> its relationships, parsed when first needed.
    parsed: Vec<Option<Rc<Relationships<'a>>>>,
    /// Name -> apt's candidate (the highest version), found when first needed.
    best: HashMap<&'a str, usize>,
    /// Candidate -> a dependency of its own that no candidate satisfies, found when first
    /// needed.
    unsatisfiable: HashMap<usize, Option<String>>,
}

impl<'a> Universe<'a> {
    fn new(candidates: &'a [Candidate<'a>], include_recommends: bool) -> Universe<'a> {
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
            include_recommends,
            parsed: Vec::new(),
            best: HashMap::new(),
            unsatisfiable: HashMap::new(),
        }
    }

    fn record(&self, i: usize) -> &'a IndexRecord {
        self.candidates[i].record
    }

    fn name(&self, i: usize) -> &'a str {
        self.candidates[i].record.name()
    }

    /// The candidates named `name`, in candidate order.
    fn named(&self, name: &str) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(self.by_name.get(name).copied(), |&i| {
            Some(self.next_same[i as usize]).filter(|&n| n != NONE)
        })
        .map(|i| i as usize)
    }

    /// apt's candidate of a name: its highest version (every suite pinned alike).
    fn candidate(&mut self, name: &str) -> Option<usize> {
        if let Some(&i) = self.best.get(name) {
            return Some(i);
        }
        let mut best: Option<usize> = None;
        for i in self.named(name) {
            best = match best {
                Some(b)
                    if super::package::compare_versions(
                        self.record(i).version(),
                        self.record(b).version(),
                    )
                    .is_le() =>
                {
                    Some(b)
                }
                _ => Some(i),
            };
        }
        let best = best?;
        self.best.insert(self.name(best), best);
        Some(best)
    }

    fn is_candidate(&mut self, i: usize) -> bool {
        self.candidate(self.name(i)) == Some(i)
    }

    fn relationships(&mut self, i: usize) -> Rc<Relationships<'a>> {
        if self.parsed.is_empty() {
            self.parsed = vec![None; self.candidates.len()];
        }
        if let Some(r) = &self.parsed[i] {
            return r.clone();
        }
        let record = self.record(i);
        let mut r = Relationships::default();
        let mut fields = vec![
            ("Pre-Depends", record.pre_depends()),
            ("Depends", record.depends()),
        ];
        if self.include_recommends {
            fields.push(("Recommends", record.recommends()));
        }
        for (field, text) in fields {
            let Some(text) = text else { continue };
            match parse_relations(text) {
                Ok(clauses) => r.clauses.extend(clauses.into_iter().map(|c| (field, c))),
                Err(_) => r.malformed.push((field, text)),
            }
        }
        for text in [record.conflicts(), record.breaks()].into_iter().flatten() {
            // A malformed negative relation forbids nothing.
            r.negative.extend(
                parse_relations(text)
                    .unwrap_or_default()
                    .into_iter()
                    .flatten(),
            );
        }
        if let Some(text) = record.provides() {
            r.provides.extend(
                parse_relations(text)
                    .unwrap_or_default()
                    .into_iter()
                    .flatten()
                    .map(|a| (a.name, a.constraint.map(|(_, v)| v))),
            );
        }
        let r = Rc::new(r);
        self.parsed[i] = Some(r.clone());
        r
    }

    /// Whether candidate `i` (its own version, or a version it provides) satisfies `alt`.
    fn satisfies(&mut self, i: usize, alt: &Alternative<'_>) -> bool {
        let record = self.record(i);
        if record.name() == alt.name && holds(alt.constraint, Some(record.version())) {
            return true;
        }
        self.relationships(i)
            .provides
            .iter()
            .any(|&(name, version)| name == alt.name && holds(alt.constraint, version))
    }

    /// The candidates (apt's: highest versions only) that satisfy the alternatives of a
    /// clause, in the order apt tries them: alternative by alternative, the real package
    /// before providers, providers sorted as apt's `CompareProviders` sorts them on a system
    /// with nothing installed (Essential, then Protected, then `Priority:` required →
    /// extra; a version without Priority sorts first, as in apt). Where apt can still not
    /// decide it takes the package its cache numbered last; here, the one listed last.
    fn solutions(&mut self, clause: &[Alternative<'_>]) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for (a, alt) in clause.iter().enumerate() {
            let mut these: Vec<usize> = Vec::new();
            if let Some(c) = self.candidate(alt.name)
                && holds(alt.constraint, Some(self.record(c).version()))
            {
                these.push(c);
            }
            let providers: Vec<(usize, Option<&str>)> =
                self.provided.get(alt.name).cloned().unwrap_or_default();
            let mut virtual_: Vec<usize> = Vec::new();
            for (p, version) in providers {
                if holds(alt.constraint, version) && self.is_candidate(p) {
                    virtual_.push(p);
                }
            }
            virtual_.sort_by_key(|&p| (self.rank(p), std::cmp::Reverse(p)));
            these.extend(virtual_);
            for c in these {
                if !out.iter().any(|&(_, o)| o == c) {
                    out.push((a, c));
                }
            }
        }
        out
    }

    /// apt's IsInstallOk: a Pre-Depends or Depends of candidate `i` that no candidate
    /// satisfies (what a walk has chosen are candidates too, so the walk does not matter).
    fn unsatisfiable(&mut self, i: usize) -> Option<String> {
        if let Some(known) = self.unsatisfiable.get(&i) {
            return known.clone();
        }
        let r = self.relationships(i);
        let found = r
            .clauses
            .iter()
            .filter(|(field, _)| *field != "Recommends")
            .find(|(_, clause)| self.solutions(clause).is_empty())
            .map(|(_, clause)| describe_clause(clause));
        self.unsatisfiable.insert(i, found.clone());
        found
    }

    /// The same, for any version (older versions of a multi-suite mirror).
    fn any_solutions(&mut self, clause: &[Alternative<'_>]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (a, alt) in clause.iter().enumerate() {
            let real: Vec<usize> = self
                .named(alt.name)
                .filter(|&i| holds(alt.constraint, Some(self.record(i).version())))
                .collect();
            let mut virtual_: Vec<usize> = self
                .provided
                .get(alt.name)
                .map(|list| {
                    list.iter()
                        .filter(|(_, v)| holds(alt.constraint, *v))
                        .map(|(p, _)| *p)
                        .collect()
                })
                .unwrap_or_default();
            virtual_.sort_by_key(|&p| (self.rank(p), std::cmp::Reverse(p)));
            out.extend(real.into_iter().chain(virtual_).map(|c| (a, c)));
        }
        out
    }

    /// apt's preference among providers, smaller first.
    fn rank(&self, i: usize) -> (bool, bool, u8) {
        let record = self.record(i);
        let priority = match record.priority().map(str::to_ascii_lowercase).as_deref() {
            None => 0,
            Some("required") => 1,
            Some("important") => 2,
            Some("standard") => 3,
            Some("optional") => 4,
            // apt reads an unknown word as extra.
            Some(_) => 5,
        };
        (!record.essential(), !record.protected(), priority)
    }

    /// Name and version of candidate `i`, for reports.
    fn describe(&self, i: usize) -> (String, String) {
        let r = self.record(i);
        (r.name().to_string(), r.version().to_string())
    }
}

/// A relation's version constraint, if it has one.
type Constraint<'a> = Option<(Op, &'a str)>;

/// Whether `version` meets an optional constraint. `None` is an unversioned Provides, which
/// meets only an unversioned relation.
fn holds(constraint: Constraint<'_>, version: Option<&str>) -> bool {
    match (constraint, version) {
        (None, _) => true,
        (Some((op, wanted)), Some(v)) => op.holds(v, wanted),
        (Some(_), None) => false,
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
        universe: Universe::new(candidates, options.include_recommends),
        alternatives: options.alternatives,
        explain: options.explain,
        reasons: HashMap::new(),
        order: Vec::new(),
        selected: HashSet::new(),
        selection: Selection::default(),
        passed_over: Vec::new(),
    };
    for (target, reason) in closer.targets(patterns) {
        closer.select(target, reason);
    }
    if options.with_dependencies {
        let roots: Vec<usize> = closer.order.clone();
        for root in roots {
            closer.walk_target(root);
        }
        closer.older_versions();
    }
    closer.finish()
}

/// The packages one walk has chosen, and what they provide and forbid, for apt's checks.
#[derive(Default)]
struct Walk<'a> {
    /// Name -> candidate chosen.
    marked: HashMap<&'a str, usize>,
    /// Virtual name -> (provider, provided version).
    provides: HashMap<&'a str, Vec<(usize, Option<&'a str>)>>,
    /// Name a chosen package conflicts with or breaks -> (that package, version constraint).
    forbids: HashMap<&'a str, Vec<(usize, Constraint<'a>)>>,
}

impl<'a> Walk<'a> {
    fn mark(&mut self, universe: &mut Universe<'a>, i: usize) {
        self.marked.insert(universe.name(i), i);
        let r = universe.relationships(i);
        for &(name, version) in &r.provides {
            self.provides.entry(name).or_default().push((i, version));
        }
        for alt in &r.negative {
            self.forbids
                .entry(alt.name)
                .or_default()
                .push((i, alt.constraint));
        }
    }

    /// The chosen package that satisfies `alt`, if any.
    fn satisfier(&self, universe: &Universe<'a>, alt: &Alternative<'_>) -> Option<usize> {
        if let Some(&i) = self.marked.get(alt.name)
            && holds(alt.constraint, Some(universe.record(i).version()))
        {
            return Some(i);
        }
        self.provides.get(alt.name).and_then(|list| {
            list.iter()
                .find(|(_, v)| holds(alt.constraint, *v))
                .map(|(i, _)| *i)
        })
    }

    /// Why candidate `i` cannot join this walk, if it cannot.
    fn refuses(&self, universe: &mut Universe<'a>, i: usize) -> Option<Rejection> {
        let name = universe.name(i);
        let r = universe.relationships(i);
        // It forbids a chosen package (or what one provides); a package's relations to its
        // own name are ignored, as apt does.
        for alt in &r.negative {
            if let Some(j) = self.satisfier(universe, alt)
                && universe.name(j) != name
            {
                return Some(Rejection::Conflicts(universe.name(j).to_string()));
            }
        }
        // A chosen package forbids it (its name, or a name it provides).
        let mut own = vec![(name, Some(universe.record(i).version()))];
        own.extend(r.provides.iter().copied());
        for (provided, provided_version) in own {
            for &(j, constraint) in self.forbids.get(provided).into_iter().flatten() {
                if holds(constraint, provided_version) && universe.name(j) != name {
                    return Some(Rejection::BrokenBy(universe.name(j).to_string()));
                }
            }
        }
        universe.unsatisfiable(i).map(Rejection::Unsatisfiable)
    }
}

struct Closer<'a, 'p> {
    universe: Universe<'a>,
    alternatives: Alternatives,
    explain: Option<&'p str>,
    /// Why each selected name is there (the first reason found).
    reasons: HashMap<&'a str, Reason>,
    /// Selected names (their candidate), in the order selected.
    order: Vec<usize>,
    /// Every name selected.
    selected: HashSet<&'a str>,
    selection: Selection,
    passed_over: Vec<(Decision, Outcome)>,
}

impl<'a> Closer<'a, '_> {
    /// The candidates the patterns name, each with why. A name no package has is looked up
    /// among virtual packages: its providers, apt's choice or all of them.
    fn targets(&mut self, patterns: &[String]) -> Vec<(usize, Reason)> {
        let mut out = Vec::new();
        for pattern in patterns {
            let named = |n: &str| Reason::Named {
                pattern: n.to_string(),
            };
            if pattern.contains(['*', '?']) {
                let mut matching: Vec<&str> = self
                    .universe
                    .by_name
                    .keys()
                    .copied()
                    .filter(|name| glob_matches(pattern, name))
                    .collect();
                matching.sort_unstable();
                if matching.is_empty() {
                    self.selection.unmatched.push(pattern.clone());
                }
                for name in matching {
                    if let Some(c) = self.universe.candidate(name) {
                        out.push((c, named(pattern)));
                    }
                }
            } else if let Some(c) = self.universe.candidate(pattern) {
                out.push((c, named(pattern)));
            } else {
                let alt = Alternative {
                    name: pattern,
                    qualifier: None,
                    constraint: None,
                };
                let mut providers: Vec<usize> = self
                    .universe
                    .solutions(std::slice::from_ref(&alt))
                    .into_iter()
                    .map(|(_, c)| c)
                    .collect();
                if self.alternatives == Alternatives::Apt {
                    providers.truncate(1);
                }
                if providers.is_empty() {
                    self.selection.unmatched.push(pattern.clone());
                    continue;
                }
                self.selection.virtuals.push((
                    pattern.clone(),
                    providers
                        .iter()
                        .map(|&p| self.universe.name(p).to_string())
                        .collect(),
                ));
                out.extend(providers.into_iter().map(|p| {
                    (
                        p,
                        Reason::Provides {
                            name: pattern.clone(),
                        },
                    )
                }));
            }
        }
        out
    }

    /// Selects every version of the name of candidate `i`; returns whether it is new.
    fn select(&mut self, i: usize, reason: Reason) -> bool {
        let name = self.universe.name(i);
        if !self.selected.insert(name) {
            return false;
        }
        self.order.push(i);
        let versions: Vec<usize> = self.universe.named(name).collect();
        self.selection.chosen.extend(versions);
        self.reasons.insert(name, reason);
        true
    }

    /// Walks one target depth first, as apt's MarkInstall does: each package's clauses in
    /// order, a chosen package's own clauses before the next clause of its parent.
    fn walk_target(&mut self, root: usize) {
        let mut walk = Walk::default();
        walk.mark(&mut self.universe, root);
        // (candidate, next clause)
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(top) = stack.last_mut() {
            let (package, next) = *top;
            let relationships = self.universe.relationships(package);
            if next == 0 {
                for &(field, text) in &relationships.malformed {
                    self.unsatisfied(package, field, text.to_string());
                }
            }
            let Some((field, clause)) = relationships.clauses.get(next) else {
                stack.pop();
                continue;
            };
            top.1 += 1;
            for chosen in self.decide(&walk, package, field, clause) {
                if self.alternatives == Alternatives::Apt {
                    walk.mark(&mut self.universe, chosen);
                }
                stack.push((chosen, 0));
            }
        }
    }

    /// Decides one clause of `package` on `walk`; returns the packages to walk next: apt's
    /// choice (none when the walk already satisfies the clause), or under
    /// `alternatives = "all"` every installable one not selected before.
    fn decide(
        &mut self,
        walk: &Walk<'a>,
        package: usize,
        field: &'static str,
        clause: &[Alternative<'a>],
    ) -> Vec<usize> {
        let all = self.alternatives == Alternatives::All;
        if !all
            && let Some(by) = clause
                .iter()
                .find_map(|alt| walk.satisfier(&self.universe, alt))
        {
            if self.explain.is_some() {
                let by = Outcome::MetBy(self.universe.name(by).to_string());
                self.note_passed_over(package, field, clause, &[], by);
            }
            return Vec::new();
        }
        let solutions = self.universe.solutions(clause);
        let mut passed: Vec<(String, Rejection)> = Vec::new();
        let mut chosen: Vec<usize> = Vec::new();
        let mut tried = vec![false; clause.len()];
        for &(a, c) in &solutions {
            tried[a] = true;
            // Under "all" any client state is served: only the package's own dependencies
            // can rule it out.
            let refusal = if all {
                self.universe.unsatisfiable(c).map(Rejection::Unsatisfiable)
            } else {
                walk.refuses(&mut self.universe, c)
            };
            match refusal {
                None => {
                    chosen.push(c);
                    if !all {
                        break;
                    }
                }
                Some(why) => passed.push((self.universe.name(c).to_string(), why)),
            }
        }
        // Alternatives nothing satisfies, before the one taken, are part of the story.
        let taken = chosen
            .first()
            .and_then(|c| solutions.iter().find(|(_, s)| s == c).map(|(a, _)| *a));
        for (a, alt) in clause.iter().enumerate() {
            if !tried[a] && taken.is_none_or(|t| a < t) {
                passed.push((describe(alt), Rejection::Missing));
            }
        }
        if chosen.is_empty() {
            let text = describe_clause(clause);
            if self.explain.is_some() {
                let outcome = Outcome::Rejected(Rejection::Unsatisfiable(text.clone()));
                self.note_passed_over(package, field, clause, &passed, outcome);
            }
            self.unsatisfied(package, field, text);
            return Vec::new();
        }
        if let Some(name) = self.explain
            && !chosen.iter().any(|&c| self.universe.name(c) == name)
        {
            let outcome = match passed.iter().find(|(n, _)| n == name) {
                Some((_, r)) => Outcome::Rejected(r.clone()),
                None => Outcome::Chose(self.universe.name(chosen[0]).to_string()),
            };
            self.note_passed_over(package, field, clause, &passed, outcome);
        }
        let decision = self.decision(package, field, clause, passed);
        if all {
            chosen.retain(|&c| self.select(c, Reason::Dependency(decision.clone())));
        } else {
            self.select(chosen[0], Reason::Dependency(decision));
        }
        chosen
    }

    fn decision(
        &self,
        package: usize,
        field: &'static str,
        clause: &[Alternative<'_>],
        passed: Vec<(String, Rejection)>,
    ) -> Decision {
        let (name, version) = self.universe.describe(package);
        Decision {
            package: name,
            version,
            field,
            clause: describe_clause(clause),
            passed,
        }
    }

    /// Keeps a group that lists the explained package but took something else.
    fn note_passed_over(
        &mut self,
        package: usize,
        field: &'static str,
        clause: &[Alternative<'_>],
        passed: &[(String, Rejection)],
        outcome: Outcome,
    ) {
        let Some(name) = self.explain else { return };
        if self.passed_over.len() >= PASSED_OVER_KEPT {
            return;
        }
        let versions: Vec<usize> = self.universe.named(name).collect();
        let mut lists = clause.iter().any(|alt| alt.name == name);
        for i in versions {
            if !lists && self.universe.is_candidate(i) {
                lists = clause.iter().any(|alt| self.universe.satisfies(i, alt));
            }
        }
        if lists {
            let decision = self.decision(package, field, clause, passed.to_vec());
            if !self.passed_over.iter().any(|(d, _)| *d == decision) {
                self.passed_over.push((decision, outcome));
            }
        }
    }

    /// Older versions of selected names: each of their clauses must be met by some version
    /// of a selected name, or else by what apt's order offers first, walked as a target.
    fn older_versions(&mut self) {
        let mut seen = 0;
        while seen < self.order.len() {
            let candidate = self.order[seen];
            seen += 1;
            let name = self.universe.name(candidate);
            let others: Vec<usize> = self
                .universe
                .named(name)
                .filter(|&i| i != candidate)
                .collect();
            for older in others {
                let relationships = self.universe.relationships(older);
                for &(field, text) in &relationships.malformed {
                    self.unsatisfied(older, field, text.to_string());
                }
                for (field, clause) in &relationships.clauses {
                    let solutions = self.universe.any_solutions(clause);
                    if solutions
                        .iter()
                        .any(|&(_, s)| self.selected.contains(self.universe.name(s)))
                    {
                        continue;
                    }
                    match solutions.first() {
                        Some(&(_, s)) => {
                            let decision = self.decision(older, field, clause, Vec::new());
                            if self.select(s, Reason::Dependency(decision)) {
                                let c = self.universe.candidate(self.universe.name(s)).unwrap_or(s);
                                self.walk_target(c);
                            }
                        }
                        None => self.unsatisfied(older, field, describe_clause(clause)),
                    }
                }
            }
        }
    }

    fn unsatisfied(&mut self, package: usize, field: &'static str, relation: String) {
        let (name, version) = self.universe.describe(package);
        self.selection.unsatisfied.insert(Unsatisfied {
            package: name,
            version,
            field,
            relation,
        });
    }

    /// The selection, with the explanation asked for.
    fn finish(mut self) -> Selection {
        if let Some(name) = self.explain {
            let mut chain: Vec<(String, Reason)> = Vec::new();
            let mut current = name.to_string();
            while let Some(reason) = self.reasons.get(current.as_str()) {
                chain.push((current.clone(), reason.clone()));
                match reason {
                    Reason::Dependency(d) if !chain.iter().any(|(n, _)| *n == d.package) => {
                        current = d.package.clone();
                    }
                    _ => break,
                }
            }
            self.selection.explanation = Some(Explanation {
                package: name.to_string(),
                passed_over: if chain.is_empty() {
                    std::mem::take(&mut self.passed_over)
                } else {
                    Vec::new()
                },
                chain,
            });
        }
        self.selection
    }
}

fn describe_clause(clause: &[Alternative<'_>]) -> String {
    clause.iter().map(describe).collect::<Vec<_>>().join(" | ")
}

fn describe(alt: &Alternative<'_>) -> String {
    let name = match alt.qualifier {
        Some(q) => format!("{}:{q}", alt.name),
        None => alt.name.to_string(),
    };
    match alt.constraint {
        Some((op, version)) => format!("{name} ({} {version})", op_text(op)),
        None => name,
    }
}

fn op_text(op: Op) -> &'static str {
    match op {
        Op::Earlier => "<<",
        Op::EarlierOrEqual => "<=",
        Op::Equal => "=",
        Op::LaterOrEqual => ">=",
        Op::Later => ">>",
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

    /// A package of a hand-written index: `fields` are control lines (`Depends: a | b`).
    fn record(name: &str, version: &str, fields: &str) -> IndexRecord {
        let field = |key: &str| {
            fields
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
                .unwrap_or_default()
        };
        let filename = format!("pool/{name}_{version}.deb");
        IndexRecord::new(
            [
                name,
                version,
                "amd64",
                &filename,
                field("Depends"),
                field("Pre-Depends"),
                field("Recommends"),
                field("Provides"),
                "",
                field("Conflicts"),
                field("Breaks"),
                field("Priority"),
                field("Essential"),
                field("Protected"),
            ],
            1,
            Sha256::of(name.as_bytes()),
            0,
            0,
        )
    }

    fn options<'p>(patterns: &'p [String], alternatives: Alternatives) -> ClosureOptions<'p> {
        ClosureOptions {
            patterns: Some(patterns),
            with_dependencies: true,
            include_recommends: false,
            alternatives,
            explain: None,
        }
    }

    fn run_with(
        records: &[IndexRecord],
        patterns: &[&str],
        set: impl Fn(&mut ClosureOptions<'_>),
    ) -> (Vec<String>, Selection) {
        let candidates: Vec<Candidate> = records
            .iter()
            .enumerate()
            .map(|(i, record)| Candidate {
                index: i % 2,
                record,
            })
            .collect();
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        let mut options = options(&patterns, Alternatives::Apt);
        set(&mut options);
        let selection = close(&candidates, &options);
        let names = selection
            .chosen
            .iter()
            .map(|&i| format!("{}={}", records[i].name(), records[i].version()))
            .collect();
        (names, selection)
    }

    fn run(records: &[IndexRecord], patterns: &[&str]) -> (Vec<String>, Selection) {
        run_with(records, patterns, |_| {})
    }

    #[test]
    fn follows_versions_alternatives_and_provides_across_suites() {
        let records = vec![
            // "stable" has libfoo 1; "stable-updates" has libfoo 2 and app 2 needing it.
            record("libfoo", "1", ""),
            record("libfoo", "2", ""),
            record(
                "app",
                "2",
                "Depends: libfoo (>= 2), mail-transport-agent, missing | libbar",
            ),
            record("postfix", "3", "Provides: mail-transport-agent"),
            record("exim", "4", "Provides: mail-transport-agent"),
            record("libbar", "1", "Depends: libc6 (>= 9) | libc6-compat"),
            record("libc6", "2.36", ""),
            record("unrelated", "1", ""),
        ];
        let (chosen, selection) = run(&records, &["app"]);
        // Two providers apt cannot tell apart: the one listed last, as apt's cache numbers it.
        // libbar cannot be installed (libc6 too old), and nothing else satisfies its clause.
        assert_eq!(chosen, ["libfoo=1", "libfoo=2", "app=2", "exim=4"]);
        let unsatisfied: Vec<_> = selection
            .unsatisfied
            .iter()
            .map(|u| (&*u.package, &*u.relation))
            .collect();
        assert_eq!(unsatisfied, [("app", "missing | libbar")]);
    }

    #[test]
    fn each_target_is_walked_on_its_own_depth_first() {
        // squid's case: another target brings systemd-sysv first; logrotate still gets cron,
        // as `apt-get install squid` on a bare system would.
        let records = vec![
            record("other", "1", "Depends: systemd-sysv"),
            record("squid", "1", "Depends: logrotate"),
            record(
                "logrotate",
                "1",
                "Depends: cron | anacron | cron-daemon | systemd-sysv",
            ),
            record("cron", "1", "Provides: cron-daemon\nPriority: important"),
            record("systemd-sysv", "1", ""),
        ];
        let (chosen, _) = run(&records, &["other", "squid"]);
        assert_eq!(
            chosen,
            [
                "other=1",
                "squid=1",
                "logrotate=1",
                "cron=1",
                "systemd-sysv=1"
            ]
        );
        // On one walk, a group met by a package chosen before is left alone.
        let records = vec![
            record("a", "1", "Depends: systemd-sysv, logrotate"),
            record("logrotate", "1", "Depends: cron | systemd-sysv"),
            record("cron", "1", ""),
            record("systemd-sysv", "1", ""),
        ];
        assert_eq!(
            run(&records, &["a"]).0,
            ["a=1", "logrotate=1", "systemd-sysv=1"]
        );
        // Clauses in order: python3-asgiref's first group comes before python3 is chosen.
        let records = vec![
            record(
                "python3-asgiref",
                "1",
                "Depends: python3-typing-extensions | python3 (>> 3.8), python3:any",
            ),
            record("python3", "3.11", ""),
            record("python3-typing-extensions", "4", "Depends: python3:any"),
        ];
        assert_eq!(
            run(&records, &["python3-asgiref"]).0,
            [
                "python3-asgiref=1",
                "python3=3.11",
                "python3-typing-extensions=4"
            ]
        );
    }

    #[test]
    fn providers_in_apts_order() {
        let records = vec![
            record("base-files", "1", "Pre-Depends: awk"),
            record("gawk", "1", "Provides: awk\nPriority: optional"),
            record("mawk", "1", "Provides: awk\nPriority: required"),
            record("original-awk", "1", "Provides: awk\nPriority: optional"),
            record(
                "busybox",
                "1",
                "Provides: awk\nPriority: optional\nEssential: yes",
            ),
        ];
        // Essential first, then Priority.
        assert_eq!(
            run(&records, &["base-files"]).0,
            ["base-files=1", "busybox=1"]
        );
        assert_eq!(
            run(&records[..4], &["base-files"]).0,
            ["base-files=1", "mawk=1"]
        );
        // A real package of the name before any provider; a versioned relation only through
        // a versioned Provides.
        let records = vec![
            record("a", "1", "Depends: virt (>= 2), real"),
            record("c", "1", "Provides: virt (= 1), real\nPriority: required"),
            record("d", "1", "Provides: virt (= 2)"),
            record("real", "1", ""),
        ];
        assert_eq!(run(&records, &["a"]).0, ["a=1", "d=1", "real=1"]);
    }

    #[test]
    fn alternatives_that_cannot_be_installed_fall_back() {
        let records = vec![
            record("t", "1", "Depends: a, b | c, x | y, p | q"),
            record("a", "1", "Conflicts: b"),
            record("b", "1", ""),
            record("c", "1", ""),
            // x needs something no package satisfies.
            record("x", "1", "Depends: gone (>= 2) | also-gone"),
            record("y", "1", ""),
            // p conflicts with a (through what a provides? no: directly).
            record("p", "1", "Breaks: a (<< 2)"),
            record("q", "1", ""),
        ];
        let explained = |name: &'static str| {
            run_with(&records, &["t"], move |o| o.explain = Some(name))
                .1
                .explanation
                .unwrap()
        };
        let (chosen, selection) = run(&records, &["t"]);
        assert_eq!(chosen, ["t=1", "a=1", "c=1", "y=1", "q=1"]);
        assert!(selection.unsatisfied.is_empty());
        // The decisions, as `sync --explain` prints them.
        let c = explained("c");
        assert_eq!(c.chain.len(), 2);
        let Reason::Dependency(d) = &c.chain[0].1 else {
            panic!("{c:?}")
        };
        assert_eq!(
            (&*d.package, d.field, &*d.clause),
            ("t", "Depends", "b | c")
        );
        assert_eq!(d.passed, [("b".into(), Rejection::BrokenBy("a".into()))]);
        assert_eq!(
            c.chain[1],
            (
                "t".into(),
                Reason::Named {
                    pattern: "t".into()
                }
            )
        );
        let Reason::Dependency(d) = &explained("y").chain[0].1 else {
            panic!()
        };
        assert_eq!(
            d.passed,
            [(
                "x".into(),
                Rejection::Unsatisfiable("gone (>= 2) | also-gone".into())
            )]
        );
        let Reason::Dependency(d) = &explained("q").chain[0].1 else {
            panic!()
        };
        assert_eq!(d.passed, [("p".into(), Rejection::Conflicts("a".into()))]);
        // What is not in the mirror, and why.
        let b = explained("b");
        assert!(b.chain.is_empty());
        assert_eq!(b.passed_over.len(), 1);
        assert_eq!(
            b.passed_over[0].1,
            Outcome::Rejected(Rejection::BrokenBy("a".into()))
        );
    }

    #[test]
    fn all_takes_every_installable_alternative_and_provider() {
        let records = vec![
            record("t", "1", "Depends: a | b | x, mta"),
            record("a", "1", ""),
            record("b", "1", "Depends: bdep"),
            record("bdep", "1", ""),
            record("x", "1", "Depends: gone"),
            record("exim", "1", "Provides: mta"),
            record("postfix", "1", "Provides: mta"),
        ];
        let (chosen, _) = run_with(&records, &["t"], |o| o.alternatives = Alternatives::All);
        assert_eq!(
            chosen,
            ["t=1", "a=1", "b=1", "bdep=1", "exim=1", "postfix=1"]
        );
        let (chosen, _) = run(&records, &["t"]);
        assert_eq!(chosen, ["t=1", "a=1", "postfix=1"]);
    }

    #[test]
    fn virtual_names_in_packages() {
        let records = vec![
            record("exim4-daemon-light", "1", "Provides: default-mta, mta"),
            record("postfix", "1", "Provides: mta\nPriority: optional"),
            record("ssh", "1", ""),
        ];
        let (chosen, selection) = run(&records, &["default-mta", "mta", "nothing-*", "typo"]);
        // Neither has a Priority: the one listed last (apt would ask for one by name).
        assert_eq!(chosen, ["exim4-daemon-light=1"]);
        assert_eq!(
            selection.virtuals,
            [
                ("default-mta".into(), vec!["exim4-daemon-light".into()]),
                ("mta".into(), vec!["exim4-daemon-light".into()])
            ]
        );
        assert_eq!(selection.unmatched, ["nothing-*", "typo"]);
        let (chosen, selection) =
            run_with(&records, &["mta"], |o| o.alternatives = Alternatives::All);
        assert_eq!(chosen, ["exim4-daemon-light=1", "postfix=1"]);
        assert_eq!(selection.virtuals[0].1.len(), 2);
    }

    #[test]
    fn older_versions_keep_their_dependencies() {
        let records = vec![
            record("app", "1", "Depends: libold"),
            record("app", "2", "Depends: libnew"),
            record("libold", "1", ""),
            record("libnew", "1", ""),
        ];
        assert_eq!(
            run(&records, &["app"]).0,
            ["app=1", "app=2", "libold=1", "libnew=1"]
        );
    }

    #[test]
    fn patterns() {
        assert!(glob_matches(
            "linux-image-*",
            "linux-image-6.8.0-31-generic"
        ));
        assert!(glob_matches("?sh", "ssh"));
        assert!(!glob_matches("ssh", "openssh"));
    }
}
