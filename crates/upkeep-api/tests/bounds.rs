//! Loading is bounded: nesting deeper than `MAX_DEPTH` and files over `MAX_FILE_BYTES` are
//! diagnosed (file, line, column, message, hint) before any costly read and the file is left
//! alone, everything up to the limits still loads, and a document's diagnostics are capped.
//! No case measures time (that is in the benchmarks and the report); the inputs that used to
//! take minutes are here so that a regression shows as a test that never finishes.

use std::fmt::Write as _;
use std::path::Path;

use upkeep_api::{
    Loaded, MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, Resource, load_path, load_str, read_manifest,
};

const FILE: &str = "apps/dev/deep.yaml";

fn load(text: &str) -> Loaded {
    load_str(Path::new(FILE), text)
}

/// A ConfigMap (root mapping, `data` mapping: two levels) whose `data.x` is `value`.
fn config_map(value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  x: {value}\n")
}

/// `n` nested flow sequences.
fn flow_seq(n: usize) -> String {
    format!("{}{}", "[".repeat(n), "]".repeat(n))
}

/// `n` nested flow mappings.
fn flow_map(n: usize) -> String {
    format!("{}1{}", "{a: ".repeat(n), "}".repeat(n))
}

/// `n` nested block mappings under `data.x` (each key one column deeper).
fn block_map(n: usize) -> String {
    let mut y =
        String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  x:\n");
    for i in 0..n {
        let _ = writeln!(
            y,
            "{}k{}",
            " ".repeat(4 + i),
            if i + 1 == n { ": 1" } else { ":" }
        );
    }
    y
}

/// `n` nested block sequences written compactly (`- - - x`) under `data.x`.
fn block_seq(n: usize) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  x:\n    {}x\n",
        "- ".repeat(n)
    )
}

enum Expect {
    /// One document, no diagnostic.
    Loads,
    /// One diagnostic at (line, column), the text at its offset starting with `at`, and the
    /// file left alone.
    TooDeep {
        line: usize,
        column: usize,
        at: &'static str,
    },
}

#[test]
fn nesting_is_limited_before_any_costly_read() {
    // The root mapping and `data` are two levels, so a value nested `MAX_DEPTH - 2` deep makes
    // the document exactly `MAX_DEPTH` deep.
    let inner = MAX_DEPTH - 2;
    let col = "  x: ".len() + 1;
    let cases: Vec<(&str, String, Expect, &str)> = vec![
        (
            "flow sequences, exactly the limit",
            config_map(&flow_seq(inner)),
            Expect::Loads,
            "the deepest document upkeep reads still loads (on the deep reader's stack: serde-saphyr recurses per level)",
        ),
        (
            "flow sequences, one over",
            config_map(&flow_seq(inner + 1)),
            Expect::TooDeep { line: 6, column: col + inner, at: "[]" },
            "the first collection past the limit is named, not the document",
        ),
        (
            "flow mappings, exactly the limit",
            config_map(&flow_map(inner)),
            Expect::Loads,
            "mappings count like sequences",
        ),
        (
            "flow mappings, one over",
            config_map(&flow_map(inner + 1)),
            Expect::TooDeep { line: 6, column: col + 4 * inner, at: "{a: 1}" },
            "mappings count like sequences",
        ),
        (
            "flow sequences 40,000 deep",
            config_map(&flow_seq(40_000)),
            Expect::TooDeep { line: 6, column: col + inner, at: "[[" },
            "the reported case: 27 s to validate before; stops at the limit now",
        ),
        (
            "block mappings, exactly the limit",
            block_map(inner),
            Expect::Loads,
            "block nesting is counted the same way",
        ),
        (
            "block mappings, one over",
            block_map(inner + 1),
            Expect::TooDeep { line: 7 + inner, column: 5 + inner, at: "k: 1" },
            "a block mapping is located at its first key",
        ),
        (
            "compact block sequences, exactly the limit",
            block_seq(inner),
            Expect::Loads,
            "`- - x` nests without new lines",
        ),
        (
            "compact block sequences, one over",
            block_seq(inner + 1),
            Expect::TooDeep { line: 7, column: 5 + 2 * inner, at: "- x" },
            "`- - x` nests without new lines",
        ),
        (
            "block mapping holding deep flow",
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  x:\n    y: {}\n",
                flow_seq(inner)
            ),
            Expect::TooDeep { line: 7, column: 8 + inner - 1, at: "[]" },
            "block and flow levels add up",
        ),
        (
            "too deep in the second document",
            format!("{}---\n{}", config_map("1"), config_map(&flow_seq(inner + 1))),
            Expect::TooDeep { line: 13, column: col + inner, at: "[]" },
            "the line is the file's, not the document's",
        ),
        (
            "a granit syntax error, then deep nesting",
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  note: \"wrapped\n  at the key's indentation\"\n  x: {}\n",
                flow_seq(40_000)
            ),
            Expect::TooDeep { line: 7, column: 3, at: "at the key" },
            "the event pass stops at the syntax error; nothing after it is read (serde_yaml \
             used to read on and meet the 40,000 brackets)",
        ),
        (
            "a granit syntax error, then more than MAX_NODES could hold",
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  note: \"wrapped\n  at the key's indentation\"\n  x: \"{}\"\n",
                "x".repeat(2 * MAX_NODES)
            ),
            Expect::TooDeep { line: 7, column: 3, at: "at the key" },
            "the syntax error stands, whatever follows it",
        ),
        (
            "a granit syntax error libyaml accepted, shallow after it",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  note: \"wrapped\n  at the key's indentation\"\n  x: [[1], {a: 2}]\n".to_owned(),
            Expect::TooDeep { line: 7, column: 3, at: "at the key" },
            "YAML 1.2 wants continuation lines of a quoted value deeper than its key; libyaml \
             (serde_yaml before, kubectl) accepted this, granit and serde-saphyr do not: a \
             located syntax error whose hint says what to indent, and the file is left alone",
        ),
    ];
    for (name, text, expect, reason) in cases {
        let loaded = load(&text);
        let report = loaded
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        match expect {
            Expect::Loads => {
                assert!(
                    loaded.diagnostics.is_empty(),
                    "{name} ({reason}):\n{report}"
                );
                assert_eq!(loaded.documents.len(), 1, "{name} ({reason})");
                assert!(loaded.unparsable.is_empty(), "{name} ({reason})");
            }
            Expect::TooDeep { line, column, at } => {
                assert!(loaded.documents.is_empty(), "{name} ({reason})");
                assert_eq!(loaded.unparsable, [Path::new(FILE)], "{name} ({reason})");
                assert_eq!(loaded.diagnostics.len(), 1, "{name} ({reason}):\n{report}");
                let d = &loaded.diagnostics[0];
                assert_eq!(d.file, Path::new(FILE), "{name}");
                assert_eq!((d.line, d.column), (line, column), "{name} ({reason}): {d}");
                assert!(
                    text[d.offset..].starts_with(at),
                    "{name} ({reason}): offset points at {:?}",
                    &text[d.offset..text.len().min(d.offset + 12)]
                );
                assert!(d.hint.is_some(), "{name}: every diagnostic has a hint");
                if name.starts_with("a granit syntax error") {
                    assert!(
                        d.hint
                            .as_deref()
                            .is_some_and(|h| h.contains("continuation lines of a quoted value")),
                        "{name} ({reason}): the hint says what to indent: {d}"
                    );
                } else {
                    assert_eq!(
                        d.message,
                        format!("nested deeper than {MAX_DEPTH} levels"),
                        "{name} ({reason})"
                    );
                }
            }
        }
    }
}

#[test]
fn a_huge_flat_file_loads() {
    // One line of 500,000 flow items, and 100,000 block keys: no nesting, lots of positions.
    // Locating nodes counted characters along the line before, which was quadratic.
    let one_line = config_map(&format!("[{}]", vec!["1"; 500_000].join(",")));
    let mut many_keys = config_map("1");
    many_keys.push_str("  more:\n");
    for i in 0..100_000 {
        let _ = writeln!(many_keys, "    k{i}: v{i}");
    }
    for (name, text) in [("one long line", one_line), ("many keys", many_keys)] {
        assert!(
            text.len() < MAX_FILE_BYTES,
            "{name}: stays under the size cap"
        );
        let loaded = load(&text);
        assert!(
            loaded.diagnostics.is_empty(),
            "{name}: {:?}",
            loaded.diagnostics.first()
        );
        assert!(
            matches!(&loaded.documents[..], [doc] if matches!(&doc.resource, Resource::Other { kind, .. } if kind == "ConfigMap")),
            "{name}: the ConfigMap loads"
        );
    }
}

#[test]
fn nodes_are_capped() {
    // Around the list's items the ConfigMap has 13 nodes (the root mapping, its four keys, the
    // values `v1` and `ConfigMap`, the `metadata` and `data` mappings, `name` and `deep`, `x`,
    // and the list): `MAX_NODES - 13` items make exactly the cap.
    let list = |items: usize| config_map(&format!("[{}]", vec!["1"; items].join(",")));
    let at_cap = load(&list(MAX_NODES - 13));
    assert!(
        at_cap.diagnostics.is_empty() && at_cap.documents.len() == 1,
        "exactly MAX_NODES nodes load: {:?}",
        at_cap.diagnostics.first()
    );
    let text = list(MAX_NODES - 12);
    let over = load(&text);
    assert!(over.documents.is_empty());
    assert_eq!(over.unparsable, [Path::new(FILE)]);
    let d = &over.diagnostics[..];
    assert!(
        matches!(d, [d] if d.line == 6
            && d.message == format!("more than {MAX_NODES} YAML nodes (keys, values and collections)")
            && text[d.offset..].starts_with("1]")
            && d.hint.as_deref().is_some_and(|h| h.contains("split it"))),
        "one node over is refused at that node: {d:?}"
    );
}

#[test]
fn files_over_the_size_cap_are_left_alone() {
    let dir = tempdir();
    let padded = |len: usize| {
        let mut text = config_map("1");
        text.push('#');
        text.push_str(&"x".repeat(len - text.len() - 1));
        text.push('\n');
        text
    };
    // (file, length, loads, reason)
    let cases = [
        (
            "at-cap.yaml",
            MAX_FILE_BYTES,
            true,
            "exactly the cap is read",
        ),
        (
            "over-cap.yaml",
            MAX_FILE_BYTES + 1,
            false,
            "one byte over is not",
        ),
    ];
    for (file, len, loads, reason) in cases {
        let text = padded(len);
        assert_eq!(text.len(), len);
        let path = dir.join(file);
        std::fs::write(&path, &text).expect("write");
        assert_eq!(
            read_manifest(&path).is_ok(),
            loads,
            "{file}: read_manifest (for callers that read files themselves): {reason}"
        );
        for (via, loaded) in [
            ("load_path", load_path(&path)),
            ("load_str", load_str(&path, &text)),
        ] {
            if loads {
                assert!(loaded.diagnostics.is_empty(), "{file} via {via}: {reason}");
                assert_eq!(loaded.documents.len(), 1, "{file} via {via}: {reason}");
            } else {
                assert!(loaded.documents.is_empty(), "{file} via {via}: {reason}");
                assert_eq!(
                    loaded.unparsable,
                    std::slice::from_ref(&path),
                    "{file} via {via}: {reason}"
                );
                let d = &loaded.diagnostics[..];
                assert!(
                    matches!(d, [d] if d.file == path && d.line == 1
                        && d.message.contains(&format!("larger than {} MiB", MAX_FILE_BYTES >> 20))
                        && d.hint.as_deref().is_some_and(|h| h.contains("leaves the file alone"))),
                    "{file} via {via}: {reason}: {d:?}"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn a_fifo_is_not_read() {
    // Opening a FIFO for reading blocks until a writer comes; a repository (a plain directory)
    // can hold one. It is reported, not read. The thread and channel only turn a hang into a
    // failure; nothing is timed.
    let dir = tempdir();
    let fifo = dir.join("pipe.yaml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let (walk, pipe) = (dir.clone(), fifo.clone());
    std::thread::spawn(move || {
        let _ = tx.send((load_path(&walk), read_manifest(&pipe)));
    });
    let (loaded, read) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("loading a directory with a FIFO returns");
    assert!(
        read.is_err_and(|d| d.message.starts_with("not a regular file")),
        "read_manifest refuses it too"
    );
    assert_eq!(loaded.unparsable, std::slice::from_ref(&fifo));
    assert!(
        matches!(&loaded.diagnostics[..], [d] if d.file == fifo && d.message.starts_with("not a regular file")),
        "{:?}",
        loaded.diagnostics
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn diagnostics_per_document_are_capped() {
    let mut text = String::from(
        "apiVersion: upkeep.dev/v1alpha1\nkind: MaintenanceSchedule\nmetadata: {name: m}\nspec: {alwaysAllowed: true}\n",
    );
    for i in 0..5_000 {
        let _ = writeln!(text, "extra{i}: 1");
    }
    let loaded = load(&text);
    assert!(loaded.documents.is_empty());
    assert_eq!(
        loaded.diagnostics.len(),
        21,
        "20 unknown fields, then one line for the rest"
    );
    assert_eq!(loaded.diagnostics[0].field.as_deref(), Some("extra0"));
    assert_eq!(loaded.diagnostics[0].line, 5);
    let last = &loaded.diagnostics[20];
    assert_eq!(last.message, "… and 4980 more problem(s) in this document");
    assert_eq!(last.line, 24, "placed after the last one reported");
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "upkeep-api-bounds-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
