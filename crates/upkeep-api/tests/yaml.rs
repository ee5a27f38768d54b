//! How upkeep reads YAML (serde-saphyr on granit-parser, see `upkeep_api::yaml`): what each
//! kind of mistake looks like to a user (file, line, column, field, message, hint, and the byte
//! the offset points at), and what the YAML features Kubernetes manifests use mean. Each row
//! runs as an LF file and as a CRLF file with a BOM; positions must not move.

use std::fmt::Write as _;
use std::path::Path;

use upkeep_api::{Loaded, Resource, load_str};

const FILE: &str = "fleet/schedule.yaml";

const HEAD: &str = "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata:
  name: weekly
spec:
";

/// A schedule whose spec is `body` (lines 6 on).
fn schedule(body: &str) -> String {
    format!("{HEAD}{body}")
}

/// One expected diagnostic. `field` empty: none.
struct Want {
    line: usize,
    column: usize,
    field: &'static str,
    message: &'static str,
    hint: &'static str,
    at: &'static str,
}

fn variants(text: &str) -> [(&'static str, String); 2] {
    [
        ("LF", text.to_owned()),
        (
            "BOM+CRLF",
            format!("\u{feff}{}", text.replace('\n', "\r\n")),
        ),
    ]
}

fn report(loaded: &Loaded) -> String {
    loaded
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn located_errors_read_as_before() {
    let long_value = "x".repeat(200_000);
    // (case, text, the one diagnostic, reason)
    let cases: Vec<(&str, String, Want, &str)> = vec![
        (
            "unknown field at depth",
            schedule(
                "  maintenanceWindows:\n  - name: a\n    startTime: \"2025-01-07T02:00:00\"\n    endTime: \"2025-01-07T04:00:00\"\n    recurence: FREQ=DAILY\n",
            ),
            Want {
                line: 10,
                column: 5,
                field: "spec.maintenanceWindows[0].recurence",
                message: "unknown field `recurence`",
                hint: "did you mean `recurrence`?",
                at: "recurence:",
            },
            "serde-saphyr places it at the key; the positions tree names the path through the list",
        ),
        (
            "unknown field without a near miss",
            schedule("  alwaysAllowed: true\n  banana: 1\n"),
            Want {
                line: 7,
                column: 3,
                field: "spec.banana",
                message: "unknown field `banana`",
                hint: "expected one of: timeZone, alwaysAllowed",
                at: "banana:",
            },
            "no suggestion: the expected fields are listed",
        ),
        (
            "missing field",
            schedule(
                "  maintenanceWindows:\n  - name: a\n    startTime: \"2025-01-07T02:00:00\"\n",
            ),
            Want {
                line: 7,
                column: 5,
                field: "spec.maintenanceWindows[0].endTime",
                message: "missing field `endTime`",
                hint: "add `endTime`",
                at: "name: a",
            },
            "serde-saphyr places it at the last key read; upkeep names it in full at its mapping, as before",
        ),
        (
            "missing field of an empty mapping",
            schedule("  alwaysAllowed: true\n  freeze: {}\n"),
            Want {
                line: 7,
                column: 11,
                field: "spec.freeze.until",
                message: "missing field `until`",
                hint: "add `until`",
                at: "{}",
            },
            "no key was read inside `{}`: the field is still named in full, at its mapping",
        ),
        (
            "wrong type: YAML 1.1 boolean",
            schedule("  alwaysAllowed: yes\n"),
            Want {
                line: 6,
                column: 18,
                field: "spec.alwaysAllowed",
                message: "invalid type: string \"yes\"",
                hint: "expected a boolean",
                at: "yes",
            },
            "YAML 1.2: `yes` is a string; Kubernetes (YAML 1.1) would read true, so upkeep refuses rather than guess",
        ),
        (
            "wrong type: `on`",
            schedule("  alwaysAllowed: on\n"),
            Want {
                line: 6,
                column: 18,
                field: "spec.alwaysAllowed",
                message: "invalid type: string \"on\"",
                hint: "expected a boolean",
                at: "on",
            },
            "the other YAML 1.1 spelling of true",
        ),
        (
            "wrong type: number for a list",
            schedule("  maintenanceWindows: 3\n"),
            Want {
                line: 6,
                column: 23,
                field: "spec.maintenanceWindows",
                message: "invalid type: integer `3`",
                hint: "expected a sequence",
                at: "3",
            },
            "serde-saphyr names only what it expected; what is written comes from the positions tree",
        ),
        (
            "wrong type: mapping for a string",
            schedule("  timeZone: {name: UTC}\n  alwaysAllowed: true\n"),
            Want {
                line: 6,
                column: 13,
                field: "spec.timeZone",
                message: "invalid type: map",
                hint: "expected a string",
                at: "{name: UTC}",
            },
            "a collection where a scalar belongs",
        ),
        (
            "wrong type: null for a string",
            schedule("  timeZone: ~\n  alwaysAllowed: true\n"),
            Want {
                line: 6,
                column: 13,
                field: "spec.timeZone",
                message: "invalid type: unit value",
                hint: "expected a string",
                at: "~",
            },
            "serde_yaml read `~` as the text \"~\"; a null is no time zone, and is refused",
        ),
        (
            "unknown enum value",
            schedule(
                "  alwaysAllowed: true\n  maintenanceExclusions:\n  - name: x\n    startTime: \"2025-12-24T00:00:00\"\n    endTime: \"2025-12-26T00:00:00\"\n    scope: NoUpgrade\n",
            ),
            Want {
                line: 11,
                column: 12,
                field: "spec.maintenanceExclusions[0].scope",
                message: "unknown value `NoUpgrade`",
                hint: "did you mean `NoUpgrades`?",
                at: "NoUpgrade\n",
            },
            "enum typos get a suggestion",
        ),
        (
            "duplicate key",
            schedule("  alwaysAllowed: true\n  timeZone: UTC\n  alwaysAllowed: false\n"),
            Want {
                line: 6,
                column: 3,
                field: "spec",
                message: "duplicate entry with key \"alwaysAllowed\"",
                hint: "written again at line 8 column 3",
                at: "alwaysAllowed: true",
            },
            "Kubernetes' strict decoding refuses duplicates too; reported at the mapping as before, the hint names the second one",
        ),
        (
            "syntax: unclosed flow sequence",
            schedule("  maintenanceWindows: [\n    {name: a}\n"),
            Want {
                line: 8,
                column: 1,
                field: "",
                message: "did not find expected ',' or ']', while parsing a flow sequence",
                hint: "the `[` at line 6 column 23 is not closed",
                at: "",
            },
            "reported where reading stopped (the end), in libyaml's words, with where the bracket opened",
        ),
        (
            "syntax: a block key inside an unclosed bracket",
            schedule("  maintenanceWindows: [\n    {name: a}\n  alwaysAllowed: true\n"),
            Want {
                line: 8,
                column: 16,
                field: "",
                message: "illegal placement of ':' indicator",
                hint: "YAML syntax",
                at: ": true",
            },
            "granit stops at the first token that cannot be in the sequence",
        ),
        (
            "syntax: mapping values in a plain scalar",
            schedule("  timeZone: a: b\n"),
            Want {
                line: 6,
                column: 14,
                field: "",
                message: "mapping values are not allowed",
                hint: "quote values that contain `: `",
                at: ": b",
            },
            "granit's message, at the offending `: `",
        ),
        (
            "syntax: tab indentation",
            schedule("  alwaysAllowed: true\n\tmaintenanceWindows: []\n"),
            Want {
                line: 7,
                column: 1,
                field: "",
                message: "tab",
                hint: "YAML syntax",
                at: "\tmaintenanceWindows",
            },
            "YAML forbids tabs in indentation; the line of the tab is named",
        ),
        (
            "error in the second document",
            format!(
                "{}---\n{}",
                schedule("  alwaysAllowed: true\n"),
                schedule("  alwaysAllowed: maybe\n").replace("weekly", "other")
            ),
            Want {
                line: 13,
                column: 18,
                field: "spec.alwaysAllowed",
                message: "invalid type: string \"maybe\"",
                hint: "expected a boolean",
                at: "maybe",
            },
            "lines are the file's: each document is read from its own text and shifted back",
        ),
        (
            "error after a very long line",
            schedule(&format!(
                "  alwaysAllowed: true\n  freeze: {{reason: \"{long_value}\", until: \"2026-01-01T00:00:00Z\", x: 1}}\n"
            )),
            Want {
                line: 7,
                column: 20 + long_value.len() + 35,
                field: "spec.freeze.x",
                message: "unknown field `x`",
                hint: "",
                at: "x: 1}",
            },
            "columns count characters along a 200 kB line, and the offset still hits the key",
        ),
    ];
    for (name, text, want, reason) in cases {
        for (variant, text) in variants(&text) {
            let ctx = format!("{name} [{variant}] ({reason})");
            let loaded = load_str(Path::new(FILE), &text);
            assert!(
                loaded
                    .documents
                    .iter()
                    .all(|d| d.index == 0 && name.contains("second"))
                    || loaded.documents.is_empty(),
                "{ctx}: a document with a diagnostic is left out"
            );
            assert_eq!(loaded.diagnostics.len(), 1, "{ctx}:\n{}", report(&loaded));
            let got = &loaded.diagnostics[0];
            let ctx = format!("{ctx}: got\n{got}");
            assert_eq!(got.file, Path::new(FILE), "{ctx}");
            assert_eq!(
                (got.line, got.column),
                (want.line, want.column),
                "line:column, {ctx}"
            );
            assert_eq!(
                got.field.as_deref().unwrap_or(""),
                want.field,
                "field, {ctx}"
            );
            assert!(got.message.contains(want.message), "message, {ctx}");
            assert!(
                got.hint.as_deref().unwrap_or("").contains(want.hint),
                "hint, {ctx}"
            );
            let at = want
                .at
                .replace('\n', if variant == "LF" { "\n" } else { "\r\n" });
            assert!(
                text[got.offset..].starts_with(&at),
                "offset {} should point at {:?}, points at {:?}; {ctx}",
                got.offset,
                want.at,
                &text[got.offset..text.len().min(got.offset + 20)]
            );
            if want.field.is_empty() {
                assert_eq!(
                    loaded.unparsable,
                    [Path::new(FILE)],
                    "{ctx}: a file that is not YAML is left alone"
                );
            }
        }
    }
}

fn windows(loaded: &Loaded) -> Vec<(String, String, String)> {
    loaded
        .documents
        .iter()
        .filter_map(|d| match &d.resource {
            Resource::MaintenanceSchedule { object, .. } => Some(object),
            _ => None,
        })
        .flat_map(|o| o.spec.maintenance_windows.iter())
        .map(|w| (w.name.clone(), w.start_time.clone(), w.end_time.clone()))
        .collect()
}

/// (case, text, documents loaded (their stream index), windows, reason)
type Case = (
    &'static str,
    String,
    Vec<usize>,
    Vec<(String, String, String)>,
    &'static str,
);

#[test]
fn documents_anchors_and_scalars_read_as_kubernetes_reads_them() {
    let window = "  maintenanceWindows:\n  - &w\n    name: a\n    startTime: \"2025-01-07T02:00:00\"\n    endTime: \"2025-01-07T04:00:00\"\n";
    let w = |name: &str| {
        (
            name.to_owned(),
            "2025-01-07T02:00:00".to_owned(),
            "2025-01-07T04:00:00".to_owned(),
        )
    };
    let cases: Vec<Case> = vec![
        (
            "two documents",
            format!(
                "{}---\n{}",
                schedule(window),
                schedule(window).replace("weekly", "other")
            ),
            vec![0, 1],
            vec![w("a"), w("a")],
            "every document of a file is read",
        ),
        (
            "empty documents count",
            format!("---\n---\n# nothing\n---\n{}", schedule(window)),
            vec![2],
            vec![w("a")],
            "empty documents are skipped but keep their place in the stream",
        ),
        (
            "`---` only",
            "---\n".to_owned(),
            vec![],
            vec![],
            "an empty stream is no error",
        ),
        (
            "`...` ends a document",
            format!(
                "{}...\n---\n{}",
                schedule(window),
                schedule(window).replace("weekly", "other")
            ),
            vec![0, 1],
            vec![w("a"), w("a")],
            "the explicit end marker separates documents too",
        ),
        (
            "merge key",
            schedule(&format!("{window}  - <<: *w\n    name: b\n")),
            vec![0],
            vec![w("a"), w("b")],
            "`<<` merges the anchored mapping, as Kubernetes (go-yaml) does; serde_yaml refused it as an unknown field",
        ),
        (
            "alias of a scalar",
            schedule(
                "  timeZone: &tz Europe/Berlin\n  alwaysAllowed: true\n  freeze:\n    until: \"2026-01-01T00:00:00Z\"\n    reason: *tz\n",
            ),
            vec![0],
            vec![],
            "an alias reads as its anchor's value",
        ),
        (
            "capitalised boolean",
            schedule("  alwaysAllowed: True\n"),
            vec![0],
            vec![],
            "YAML 1.2 core schema spellings of true are booleans",
        ),
        (
            "plain number in a string field",
            schedule(
                "  alwaysAllowed: true\n  freeze:\n    until: \"2026-01-01T00:00:00Z\"\n    reason: 1.10\n",
            ),
            vec![0],
            vec![],
            "a plain scalar read into a string is its text (`1.10`, not `1.1`)",
        ),
    ];
    for (name, text, indexes, want_windows, reason) in cases {
        for (variant, text) in variants(&text) {
            let ctx = format!("{name} [{variant}] ({reason})");
            let loaded = load_str(Path::new(FILE), &text);
            assert!(loaded.diagnostics.is_empty(), "{ctx}:\n{}", report(&loaded));
            let got: Vec<usize> = loaded.documents.iter().map(|d| d.index).collect();
            assert_eq!(got, indexes, "{ctx}");
            assert_eq!(windows(&loaded), want_windows, "{ctx}");
        }
    }
    let loaded = load_str(
        Path::new(FILE),
        &schedule(
            "  alwaysAllowed: true\n  freeze:\n    until: \"2026-01-01T00:00:00Z\"\n    reason: 1.10\n",
        ),
    );
    let reason = match &loaded.documents[0].resource {
        Resource::MaintenanceSchedule { object, .. } => {
            object.spec.freeze.as_ref().and_then(|f| f.reason.clone())
        }
        _ => None,
    };
    assert_eq!(
        reason.as_deref(),
        Some("1.10"),
        "a plain scalar read into a string is its text"
    );
}

#[test]
fn an_alias_bomb_is_refused_not_expanded() {
    // Nine levels of ten aliases each: a billion nodes if expanded.
    let mut text = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\nlols:\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for i in 1..9 {
        let p = i - 1;
        let _ = writeln!(
            text,
            "  l{i}: &l{i} [*l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}]"
        );
    }
    let loaded = load_str(Path::new(FILE), &text);
    assert!(loaded.documents.is_empty(), "{}", report(&loaded));
    assert_eq!(loaded.unparsable, [Path::new(FILE)]);
    assert!(
        matches!(&loaded.diagnostics[..], [d] if d.message.starts_with("aliases expand to more than upkeep reads")
            && d.line >= 5 && d.hint.as_deref().is_some_and(|h| h.contains("leaves this file alone"))),
        "one located diagnostic naming the aliases:\n{}",
        report(&loaded)
    );
}
