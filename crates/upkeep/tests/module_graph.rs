//! The shells stay layered: no import cycle among the modules of the `upkeep` binary or of
//! `upkeep-controller`, and no command module (`cmd/*`) uses another one — what commands share
//! lives outside `cmd/`, in a module named for what it does.
//!
//! The graph is read from the sources: a module uses another when its files name
//! `crate::<other>` (or `super::<sibling>` from a nested file) outside comments. That is coarser
//! than rustc's view (a doc link counts), which only makes the check stricter.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module name → the modules it uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file belongs to: its first component under `src` (`fleet_tests.rs` is
/// `fleet`'s, included with `#[path]`), or `cmd::<name>` for a command, so commands are nodes
/// of their own.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    match parts.as_slice() {
        [dir, name, ..] if dir == "cmd" => format!("cmd::{name}"),
        [first, ..] => first.trim_end_matches("_tests").to_owned(),
        [] => unreachable!("a file has a name"),
    }
}

/// Names following `prefix` (`crate::` or `super::`) in code lines of `text`.
fn names_after<'t>(text: &'t str, prefix: &str) -> Vec<&'t str> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let after = &rest[at + prefix.len()..];
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if end > 0 {
                out.push(&after[..end]);
            }
            rest = &after[end..];
        }
    }
    out
}

fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    let mut graph = Graph::new();
    for file in &files {
        let from = module_of(src, file);
        let text = std::fs::read_to_string(file).expect("read a source file");
        let uses = graph.entry(from.clone()).or_default();
        let in_cmd = from.starts_with("cmd::");
        for name in names_after(&text, "crate::") {
            let to = if name == "cmd" {
                // `crate::cmd::x::…`: the command `x`.
                names_after(&text, "crate::cmd::")
                    .into_iter()
                    .map(|n| format!("cmd::{n}"))
                    .collect::<Vec<_>>()
            } else {
                vec![name.to_owned()]
            };
            uses.extend(to.into_iter().filter(|t| *t != from && modules.contains(t)));
        }
        if in_cmd {
            for name in names_after(&text, "super::") {
                let to = format!("cmd::{name}");
                if to != from && modules.contains(&to) {
                    uses.insert(to);
                }
            }
        }
    }
    graph
}

/// A cycle in `graph`, as the path of modules that closes it, if there is one.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|n| n == node).unwrap_or(0);
                let mut found = path[start..].to_vec();
                found.push(node.to_owned());
                return Some(found);
            }
            _ => {}
        }
        state.insert(node.to_owned(), 1);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut state, &mut Vec::new()))
}

fn src_of(krate: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("src")
}

#[test]
fn the_cli_modules_have_no_cycle_and_commands_use_no_other_command() {
    let g = graph(&src_of("upkeep"));
    assert!(
        g.contains_key("cmd::apply") && g.contains_key("fleet"),
        "{g:?}"
    );
    assert_eq!(cycle(&g), None, "an import cycle among the CLI's modules");
    for (from, uses) in &g {
        if from.starts_with("cmd::") {
            let commands: Vec<_> = uses.iter().filter(|u| u.starts_with("cmd::")).collect();
            assert!(
                commands.is_empty(),
                "{from} uses the command modules {commands:?}; move what they share out of cmd/"
            );
        }
    }
}

#[test]
fn the_controller_modules_have_no_cycle() {
    let g = graph(&src_of("upkeep-controller"));
    assert!(g.len() > 5, "{g:?}");
    assert_eq!(
        cycle(&g),
        None,
        "an import cycle among the controller's modules"
    );
}

#[test]
fn the_checker_finds_a_cycle_and_a_command_using_a_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("cmd")).expect("cmd");
    let files = [
        ("main.rs", "mod a; mod b; mod cmd;"),
        ("a.rs", "use crate::b::x; // crate::c is a comment\n"),
        ("b.rs", "pub fn x() { crate::a::y() }\n"),
        ("cmd/one.rs", "use super::two::Args;\n"),
        ("cmd/two.rs", "use crate::cmd::one::run;\n"),
    ];
    for (name, text) in files {
        std::fs::write(src.join(name), text).expect("write");
    }
    let g = graph(src);
    assert_eq!(
        g["a"],
        BTreeSet::from(["b".to_owned()]),
        "comments do not count"
    );
    assert!(
        cycle(&g).is_some_and(|c| c.contains(&"a".to_owned())),
        "{g:?}"
    );
    assert!(
        g["cmd::one"].contains("cmd::two"),
        "super:: names a sibling command"
    );
    assert!(
        g["cmd::two"].contains("cmd::one"),
        "crate::cmd:: names a command"
    );
}
