//! Golden directories for manifest edits: `testdata/manifest/<case>/{original,expected}/…`.
//!
//! Each case is a small repository tree plus a `case.txt` with its reason (`reason: …`), the
//! versions to apply (`set: <namespace>:<policy>=<version>`, one per line) and the problems
//! it must report (`error: <file>:<line> <Kind>`). Every file under `original/` goes through
//! [`apply`] and must equal the same path under `expected/` byte for byte; a field with a
//! reported problem is unchanged, the other fields of its file still change. Comparing whole
//! trees (not single strings) is what proves that files without markers, and bytes outside the
//! marked scalars, are untouched.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use upkeep_core::manifest::{Update, apply};

fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("under root");
                let rel = rel.to_string_lossy().replace('\\', "/");
                out.insert(rel, std::fs::read(&p).expect("read file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// A line-by-line difference, with line ends made visible.
fn diff(want: &str, got: &str) -> String {
    let w: Vec<&str> = want.split_inclusive('\n').collect();
    let g: Vec<&str> = got.split_inclusive('\n').collect();
    let mut out = String::new();
    for i in 0..w.len().max(g.len()) {
        let (a, b) = (w.get(i), g.get(i));
        if a != b {
            if let Some(a) = a {
                let _ = writeln!(out, "-{:>4} {a:?}", i + 1);
            }
            if let Some(b) = b {
                let _ = writeln!(out, "+{:>4} {b:?}", i + 1);
            }
        }
    }
    out
}

#[test]
fn golden_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/manifest");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("testdata/manifest")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "golden cases missing: {cases:?}");
    let mut failures = Vec::new();
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let spec = std::fs::read_to_string(dir.join("case.txt"))
            .unwrap_or_else(|e| panic!("{name}: case.txt: {e}"));
        let mut reason = String::new();
        let mut sets = Vec::new();
        let mut want_errors: Vec<String> = Vec::new();
        for line in spec.lines() {
            if let Some(r) = line.strip_prefix("reason: ") {
                reason = r.to_owned();
            } else if let Some(s) = line.strip_prefix("set: ") {
                sets.push(s.to_owned());
            } else if let Some(e) = line.strip_prefix("error: ") {
                want_errors.push(e.to_owned());
            } else if !line.trim().is_empty() {
                panic!("{name}: case.txt: unknown line {line:?}");
            }
        }
        assert!(!reason.is_empty(), "{name}: case.txt has no reason");
        let updates: Vec<Update<'_>> = sets
            .iter()
            .map(|s| Update::parse(s).unwrap_or_else(|| panic!("{name}: bad set {s:?}")))
            .collect();

        let original = files(&dir.join("original"));
        let expected = files(&dir.join("expected"));
        let mut report = String::new();
        if original.keys().ne(expected.keys()) {
            let _ = writeln!(
                report,
                "file lists differ: original {:?} expected {:?}",
                original.keys().collect::<Vec<_>>(),
                expected.keys().collect::<Vec<_>>()
            );
        }
        let mut got_errors = Vec::new();
        for (path, bytes) in &original {
            let text = std::str::from_utf8(bytes).expect("testdata is UTF-8");
            let want = expected
                .get(path)
                .map(|b| String::from_utf8_lossy(b).into_owned());
            let got = match apply(text, &updates) {
                Ok(edited) => {
                    // Every change points at the new bytes, and the old version was there.
                    for c in &edited.changes {
                        assert!(
                            edited.text[c.range.clone()].contains(&c.new),
                            "{name}/{path}: change range {c:?}"
                        );
                    }
                    for e in &edited.refused {
                        got_errors.push(format!("{path}:{} {}", e.line(), e.kind()));
                    }
                    edited.text.into_owned()
                }
                Err(e) => {
                    got_errors.push(format!("{path}: {e}"));
                    text.to_owned()
                }
            };
            if let Some(want) = want
                && want != got
            {
                let _ = writeln!(report, "{path}:\n{}", diff(&want, &got));
            }
        }
        if got_errors != want_errors {
            let _ = writeln!(
                report,
                "errors: want {want_errors:?}\n        got  {got_errors:?}"
            );
        }
        if !report.is_empty() {
            failures.push(format!("case {name} ({reason}):\n{report}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
