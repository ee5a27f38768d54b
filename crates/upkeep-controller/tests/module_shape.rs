//! The shape of the crate, checked on its source: the module graph is a DAG, kind modules
//! never use each other, and no function of a kind is longer than a screen.
//!
//! A reconciler framework earns its keep only while kinds stay independent and short; these
//! checks say so at `cargo test` time instead of in review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The kind modules (a file `src/<kind>.rs` or a folder `src/<kind>/`).
const KINDS: &[&str] = &[
    "schedule",
    "source",
    "policy",
    "automation",
    "flux_automation",
    "cluster_upgrade_policy",
    "cluster_upgrade",
    "scheduled",
];

/// The longest function a kind may hold, in lines (signature to closing brace).
const MAX_FUNCTION_LINES: usize = 80;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with the top-level module it belongs to.
fn files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("src") {
        let path = entry.expect("entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            let module = name.to_owned();
            let mut stack = vec![path.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).expect("dir") {
                    let p = e.expect("entry").path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == "rs") {
                        out.push((module.clone(), p));
                    }
                }
            }
        } else if path.extension().is_some_and(|x| x == "rs") && name != "lib" {
            out.push((name.to_owned(), path));
        }
    }
    out
}

/// The text of a file before its `#[cfg(test)]` module (tests may use anything).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read");
    match text.find("\n#[cfg(test)]") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// The top-level modules `text` names as `crate::x` or inside `crate::{x, y::z}`.
fn uses(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name = ident(part.trim());
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// module → the modules it uses (itself left out).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path) in files(&src()) {
        let used = uses(&code(&path));
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(used.into_iter().filter(|m| *m != module));
    }
    graph
}

/// A cycle in `graph`, as the path that closes it; `None` for a DAG.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut c = path[i..].to_vec();
            c.push(node.to_owned());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, done, path) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut done, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_module_graph_is_a_dag() {
    let graph = graph();
    assert!(
        graph.contains_key("framework"),
        "found the modules: {graph:?}"
    );
    if let Some(c) = cycle(&graph) {
        panic!("import cycle: {}", c.join(" -> "));
    }
}

#[test]
fn kinds_use_the_framework_never_each_other() {
    let graph = graph();
    for kind in KINDS {
        let used = graph.get(*kind).cloned().unwrap_or_default();
        let others: Vec<&String> = used
            .iter()
            .filter(|m| KINDS.contains(&m.as_str()))
            .collect();
        assert!(others.is_empty(), "{kind} uses the kinds {others:?}");
        assert!(
            used.contains("framework"),
            "{kind} is not on the framework: uses {used:?}"
        );
    }
    let framework = graph.get("framework").cloned().unwrap_or_default();
    let below: BTreeSet<String> = ["metrics".to_owned()].into();
    let beyond: Vec<&String> = framework.difference(&below).collect();
    assert!(beyond.is_empty(), "the framework uses {beyond:?}");
}

/// (function name, first line, length) of every `fn` in `text` longer than `max` lines.
fn long_functions(text: &str, max: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let body = [
            "pub fn ",
            "fn ",
            "pub async fn ",
            "async fn ",
            "pub(crate) fn ",
            "pub(crate) async fn ",
        ]
        .iter()
        .find_map(|p| trimmed.strip_prefix(p));
        let Some(rest) = body else { continue };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // The body ends at the first line that is `}` at the signature's indentation.
        let close = format!("{}}}", " ".repeat(indent));
        let Some(end) = lines[i..].iter().position(|l| *l == close) else {
            continue;
        };
        if lines[i..=i + end]
            .iter()
            .any(|l| l.trim_end().ends_with(';') && l.trim_start().starts_with("fn "))
        {
            continue;
        }
        let length = end + 1;
        if length > max {
            out.push((name, i + 1, length));
        }
    }
    out
}

#[test]
fn no_function_of_a_kind_is_longer_than_a_screen() {
    let mut long = Vec::new();
    for (module, path) in files(&src()) {
        if KINDS.contains(&module.as_str()) {
            for (name, line, length) in long_functions(&code(&path), MAX_FUNCTION_LINES) {
                long.push(format!("{}:{line} {name}: {length} lines", path.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("use crate::framework::Error;", &["framework"], "a path"),
        (
            "use crate::{gitops, tags::Scan};",
            &["gitops", "tags"],
            "a group",
        ),
        ("// no use of the crate", &[], "nothing"),
    ];
    for (text, want, why) in cases {
        let got: Vec<String> = uses(text).into_iter().collect();
        assert_eq!(got, *want, "{why}");
    }
    let mut cyclic: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    cyclic.insert("a".into(), ["b".to_owned()].into());
    cyclic.insert("b".into(), ["a".to_owned()].into());
    assert!(cycle(&cyclic).is_some(), "a two-module cycle is found");
    cyclic.get_mut("b").expect("b").clear();
    assert!(cycle(&cyclic).is_none(), "a DAG passes");
    let long = format!("fn f() {{\n{}}}\n", "    x;\n".repeat(MAX_FUNCTION_LINES));
    assert_eq!(
        long_functions(&long, MAX_FUNCTION_LINES).len(),
        1,
        "a long function is found"
    );
}
