//! The library's modules import each other without circles.
//!
//! Reads every file under `src/`, takes the paths its `use` items and its code name
//! (`crate::…`, `super::…`, `self::…`, and `child::…` for a submodule in scope), and draws
//! one edge per module named, at the granularity of a top-level module (`proxy`) and its
//! second-level submodules (`proxy::connect`; deeper files count as their second-level
//! ancestor). A module and its own submodules are one family: the parent declares the
//! children and holds what they share, so edges between a parent and its children are left
//! out; between siblings, and between top-level modules (families taken whole), they count.
//! Test code (`#[cfg(test)]` modules) is left out. Fails on any cycle, naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path below the crate root, e.g. `["proxy", "pull", "stream"]`.
type ModulePath = Vec<String>;

#[test]
fn modules_import_each_other_without_circles() {
    let graph = ModuleGraph::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let mut circles = Vec::new();
    // Between families: each top-level module taken whole.
    let top = graph.collapsed(1);
    println!("edges between top-level modules:\n{}", top.listing());
    circles.extend(top.cycles());
    // Within a family: siblings only.
    let second = graph.collapsed(2);
    circles.extend(second.cycles().into_iter().filter(|cycle| {
        let family = &cycle[0][..cycle[0].find("::").unwrap_or(cycle[0].len())];
        cycle.iter().all(|m| m.starts_with(&format!("{family}::")))
    }));
    assert!(
        circles.is_empty(),
        "modules import each other in a circle:\n{}\n\nedges between top-level modules:\n{}",
        circles
            .iter()
            .map(|c| {
                let (path, note) = match c.last() {
                    Some(last) if last.starts_with("...") => (&c[..c.len() - 1], last.as_str()),
                    _ => (&c[..], ""),
                };
                format!("  {} -> {} {note}", path.join(" -> "), path[0])
            })
            .collect::<Vec<_>>()
            .join("\n"),
        top.listing()
    );
}

/// Edges between modules, each with the files that make it (for the message).
struct ModuleGraph {
    edges: BTreeSet<(ModulePath, ModulePath)>,
}

impl ModuleGraph {
    fn read(src: &Path) -> ModuleGraph {
        let files = rust_files(src);
        let modules: BTreeSet<ModulePath> = files.iter().map(|f| module_of(src, f)).collect();
        let mut edges = BTreeSet::new();
        for file in &files {
            let from = module_of(src, file);
            if from.last().is_some_and(|m| m == "tests") {
                continue;
            }
            let text = std::fs::read_to_string(file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            let code = without_test_modules(&code_only(&text));
            for path in named_paths(&code) {
                if let Some(to) = resolve(&from, &path, &modules) {
                    edges.insert((from.clone(), to));
                }
            }
        }
        ModuleGraph { edges }
    }

    /// The graph with every module cut to its first `depth` names; edges within one module,
    /// and between a module and its own parent or child, are dropped.
    fn collapsed(&self, depth: usize) -> Collapsed {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in &self.edges {
            let from: Vec<_> = from.iter().take(depth).cloned().collect();
            let to: Vec<_> = to.iter().take(depth).cloned().collect();
            if from.is_empty() || to.is_empty() || from.starts_with(&to) || to.starts_with(&from) {
                continue;
            }
            edges
                .entry(from.join("::"))
                .or_default()
                .insert(to.join("::"));
        }
        Collapsed { edges }
    }
}

struct Collapsed {
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Collapsed {
    /// One cycle per strongly connected component of more than one module (Tarjan), each
    /// given as a path through the component.
    fn cycles(&self) -> Vec<Vec<String>> {
        let nodes: BTreeSet<&String> = self
            .edges
            .iter()
            .flat_map(|(from, to)| std::iter::once(from).chain(to))
            .collect();
        let mut tarjan = Tarjan {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            components: Vec::new(),
        };
        for node in nodes {
            if !tarjan.index.contains_key(node) {
                tarjan.visit(node);
            }
        }
        tarjan
            .components
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|component| {
                let mut cycle = self.cycle_within(&component);
                if component.len() > cycle.len() {
                    let all: Vec<_> = component.iter().cloned().collect();
                    cycle.push(format!("... (all of {} reach each other)", all.join(", ")));
                }
                cycle
            })
            .collect()
    }

    /// A shortest cycle through the component's first module, staying inside it.
    fn cycle_within(&self, component: &BTreeSet<String>) -> Vec<String> {
        let start = component.iter().next().expect("not empty").clone();
        let mut previous: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        while let Some(node) = queue.pop_front() {
            for next in self.edges.get(&node).into_iter().flatten() {
                if !component.contains(next) {
                    continue;
                }
                if *next == start {
                    let mut cycle = vec![node.clone()];
                    while let Some(p) = previous.get(cycle.last().expect("not empty")) {
                        cycle.push(p.clone());
                    }
                    cycle.reverse();
                    return cycle;
                }
                if !previous.contains_key(next) {
                    previous.insert(next.clone(), node.clone());
                    queue.push_back(next.clone());
                }
            }
        }
        unreachable!("a strongly connected component has a cycle through each member")
    }

    fn listing(&self) -> String {
        self.edges
            .iter()
            .map(|(from, to)| {
                format!(
                    "  {from} -> {}",
                    to.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

struct Tarjan<'a> {
    graph: &'a Collapsed,
    index: BTreeMap<&'a String, usize>,
    low: BTreeMap<&'a String, usize>,
    stack: Vec<&'a String>,
    on_stack: BTreeSet<&'a String>,
    components: Vec<BTreeSet<String>>,
}

impl<'a> Tarjan<'a> {
    fn visit(&mut self, node: &'a String) {
        let index = self.index.len();
        self.index.insert(node, index);
        self.low.insert(node, index);
        self.stack.push(node);
        self.on_stack.insert(node);
        for next in self.graph.edges.get(node).into_iter().flatten() {
            if !self.index.contains_key(next) {
                self.visit(next);
                let low = self.low[node].min(self.low[next]);
                self.low.insert(node, low);
            } else if self.on_stack.contains(next) {
                let low = self.low[node].min(self.index[next]);
                self.low.insert(node, low);
            }
        }
        if self.low[node] == self.index[node] {
            let mut component = BTreeSet::new();
            loop {
                let member = self.stack.pop().expect("on the stack");
                self.on_stack.remove(member);
                component.insert(member.clone());
                if member == node {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `src/lib.rs` is the root.
fn module_of(src: &Path, file: &Path) -> ModulePath {
    let relative = file.strip_prefix(src).expect("under src");
    let mut names: ModulePath = relative
        .with_extension("")
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    if names.last().is_some_and(|n| n == "mod" || n == "lib") {
        names.pop();
    }
    names
}

/// The text with comments, string and character literals blanked (newlines kept), so that
/// paths in docs and messages are not taken for imports.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('"' | '#'))
            && !chars
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            let mut hashes = 0;
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < chars.len() {
                if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                blank(&mut out, chars[j]);
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&c) = chars.get(i) {
                    blank(&mut out, c);
                }
                i += 1;
            }
            out.push_str("\"\"");
            i += 1;
        } else if c == '\'' && next == Some('\\') {
            // '\n', '\'', '\u{..}'
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            out.push_str("' '");
            i += 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            out.push_str("' '");
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The code without `#[cfg(test)] mod name { … }` blocks.
fn without_test_modules(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let item = after.trim_start();
        let Some(open) = item.find(['{', ';']) else {
            rest = after;
            continue;
        };
        if !item.starts_with("mod ") || item.as_bytes()[open] == b';' {
            rest = after;
            continue;
        }
        let mut depth = 0;
        let mut end = item.len();
        for (i, c) in item.char_indices().skip(open) {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Every path the code names that could lead to a module of this crate: the expanded
/// `use` trees, and `a::b::c` paths in code.
fn named_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let tokens = tokens(code);
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == "use" {
            let end = tokens[i..]
                .iter()
                .position(|t| t == ";")
                .map_or(tokens.len(), |p| i + p);
            let mut at = 0;
            expand_use(&tokens[i + 1..end], &mut at, Vec::new(), &mut paths);
            i = end;
            continue;
        }
        if is_identifier(&tokens[i])
            && tokens.get(i + 1).is_some_and(|t| t == "::")
            && (i == 0 || tokens[i - 1] != "::")
        {
            let mut path = vec![tokens[i].clone()];
            let mut j = i + 1;
            while tokens.get(j).is_some_and(|t| t == "::")
                && tokens.get(j + 1).is_some_and(|t| is_identifier(t))
            {
                path.push(tokens[j + 1].clone());
                j += 2;
            }
            paths.push(path);
            i = j;
            continue;
        }
        i += 1;
    }
    paths
}

/// One `use` tree (`a::{b, c::{self, d}}`) into its paths.
fn expand_use(tokens: &[String], at: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    while *at < tokens.len() {
        let token = &tokens[*at];
        match token.as_str() {
            "::" => *at += 1,
            "{" => {
                *at += 1;
                loop {
                    expand_use(tokens, at, path.clone(), out);
                    match tokens.get(*at).map(String::as_str) {
                        Some(",") => *at += 1,
                        Some("}") => {
                            *at += 1;
                            return;
                        }
                        _ => return,
                    }
                    if tokens.get(*at).is_some_and(|t| t == "}") {
                        *at += 1;
                        return;
                    }
                }
            }
            "," | "}" => break,
            "as" => *at += 2,
            "*" | "self" if !path.is_empty() => *at += 1,
            _ => {
                path.push(token.clone());
                *at += 1;
            }
        }
    }
    out.push(path);
}

fn tokens(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !(d.is_alphanumeric() || d == '_') {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            tokens.push(code[i..end].to_string());
        } else if c == ':' && chars.peek().is_some_and(|&(_, d)| d == ':') {
            chars.next();
            tokens.push("::".to_string());
        } else if !c.is_whitespace() {
            tokens.push(c.to_string());
        }
    }
    tokens
}

fn is_identifier(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// The module of this crate a path leads to (the longest known module it starts with), or
/// none for other crates' paths and the module itself.
fn resolve(
    from: &ModulePath,
    path: &[String],
    modules: &BTreeSet<ModulePath>,
) -> Option<ModulePath> {
    let mut base: ModulePath;
    let mut rest = path;
    match path.first()?.as_str() {
        "crate" => {
            base = Vec::new();
            rest = &path[1..];
        }
        "self" => {
            base = from.clone();
            rest = &path[1..];
        }
        "super" => {
            base = from.clone();
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        first => {
            // A submodule in scope, named without `self::`.
            let mut child = from.clone();
            child.push(first.to_string());
            if !modules.contains(&child) {
                return None;
            }
            base = from.clone();
        }
    }
    for name in rest {
        let mut longer = base.clone();
        longer.push(name.clone());
        if !modules.contains(&longer) {
            break;
        }
        base = longer;
    }
    (base != *from && !base.is_empty()).then_some(base)
}
