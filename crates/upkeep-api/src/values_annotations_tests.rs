//! Table tests: each case is a values ConfigMap as Giant Swarm's GitOps layout writes it, the
//! changes, and the exact file expected (or the error kind), with the reason.

use super::*;

/// Annotations to set (`Some`) or remove (`None`).
type Changes<'a> = &'a [(&'a str, Option<&'a str>)];

const FREEZE: &[(&str, Option<&str>)] = &[
    ("upkeep.dev/freeze-until", Some("2026-04-01T00:00:00Z")),
    ("upkeep.dev/freeze-reason", Some("quarter close")),
];
const UNFREEZE: &[(&str, Option<&str>)] = &[
    ("upkeep.dev/freeze-until", None),
    ("upkeep.dev/freeze-reason", None),
];

/// The newer release-based form (gitops-template, cluster-aws ≥ 1.0).
const NEWER: &str = "\
# values of the cluster
apiVersion: v1
kind: ConfigMap
metadata:
  name: ${cluster_name}-userconfig
  namespace: org-${organization}
data:
  values: |
    global:
      metadata:
        name: ${cluster_name}
        organization: ${organization}   # substituted by Flux
      release:
        version: 29.1.0
    # workers
    nodePools:
      pool0:
        maxSize: 3
";

fn at() -> ValuesRef<'static> {
    ValuesRef {
        configmap: Some("${cluster_name}-userconfig"),
        vars: None,
        key: "values",
    }
}

#[test]
fn edits() {
    let frozen_newer = NEWER.replace(
        "      metadata:\n        name:",
        "      metadata:\n        annotations:\n          upkeep.dev/freeze-reason: \"quarter close\"\n          upkeep.dev/freeze-until: \"2026-04-01T00:00:00Z\"\n        name:",
    );
    let with_annotations = NEWER.replace(
        "        name: ${cluster_name}\n",
        "        name: ${cluster_name}\n        annotations:\n          team: 'blue' # owners\n          upkeep.dev/freeze-until: 2026-01-01T00:00:00Z\n",
    );
    let with_annotations_frozen = NEWER.replace(
        "        name: ${cluster_name}\n",
        "        name: ${cluster_name}\n        annotations:\n          upkeep.dev/freeze-reason: \"quarter close\"\n          team: 'blue' # owners\n          upkeep.dev/freeze-until: \"2026-04-01T00:00:00Z\"\n",
    );
    let empty_flow = NEWER.replace(
        "        name: ${cluster_name}\n",
        "        name: ${cluster_name}\n        annotations: {}\n",
    );
    let empty_flow_frozen = NEWER.replace(
        "        name: ${cluster_name}\n",
        "        name: ${cluster_name}\n        annotations:\n          upkeep.dev/freeze-reason: \"quarter close\"\n          upkeep.dev/freeze-until: \"2026-04-01T00:00:00Z\"\n",
    );
    let older = "kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: ${cluster_name}-userconfig\ndata:\n  values: |-\n    controlPlane:\n      replicas: 3\n";
    let older_frozen = "kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: ${cluster_name}-userconfig\ndata:\n  values: |-\n    global:\n      metadata:\n        annotations:\n          upkeep.dev/freeze-reason: \"quarter close\"\n          upkeep.dev/freeze-until: \"2026-04-01T00:00:00Z\"\n    controlPlane:\n      replicas: 3\n";
    let crlf = NEWER.replace('\n', "\r\n");
    let crlf_frozen = frozen_newer.replace('\n', "\r\n");
    let two_docs = format!(
        "{NEWER}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  values: |\n    global: {{}}\n"
    );
    let two_docs_frozen = format!(
        "{frozen_newer}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  values: |\n    global: {{}}\n"
    );
    let tricky = &[("upkeep.dev/freeze-reason", Some("say \"no\" \\ wait: #1"))][..];
    let tricky_frozen = NEWER.replace(
        "      metadata:\n        name:",
        "      metadata:\n        annotations:\n          upkeep.dev/freeze-reason: \"say \\\"no\\\" \\\\ wait: #1\"\n        name:",
    );
    // (original, changes, expected, reason)
    let cases: Vec<(&str, Changes<'_>, &str, &str)> = vec![
        (
            NEWER,
            FREEZE,
            &frozen_newer,
            "no annotations yet: the mapping is created under global.metadata, double-quoted",
        ),
        (
            &frozen_newer,
            UNFREEZE,
            NEWER,
            "unfreeze removes the lines and the emptied annotations key: the original bytes",
        ),
        (
            &frozen_newer,
            FREEZE,
            &frozen_newer,
            "freezing again as asked changes nothing",
        ),
        (
            NEWER,
            UNFREEZE,
            NEWER,
            "unfreezing an unfrozen cluster changes nothing",
        ),
        (
            &with_annotations,
            FREEZE,
            &with_annotations_frozen,
            "an existing annotation is rewritten in place (quoted: Helm reads YAML 1.1), a new one joins; others and comments stay",
        ),
        (
            &empty_flow,
            FREEZE,
            &empty_flow_frozen,
            "`annotations: {}` becomes a block mapping",
        ),
        (
            older,
            FREEZE,
            older_frozen,
            "values without global: the path is created at the top, |- kept",
        ),
        (&crlf, FREEZE, &crlf_frozen, "CRLF line ends are kept"),
        (
            &two_docs,
            FREEZE,
            &two_docs_frozen,
            "only the named ConfigMap changes",
        ),
        (
            NEWER,
            tricky,
            &tricky_frozen,
            "quotes, backslashes, colons and # are escaped in a double-quoted scalar",
        ),
    ];
    for (original, changes, expected, reason) in cases {
        let got = set_annotations("values.yaml", original, at(), changes);
        assert_eq!(got.as_deref(), Ok(expected), "{reason}");
        let read = annotations("values.yaml", expected, at()).expect("reads back");
        for (k, v) in changes {
            assert_eq!(
                read.get(*k).map(String::as_str),
                *v,
                "{reason}: {k} reads back"
            );
        }
    }
}

#[test]
fn refusals() {
    let folded = NEWER.replace("  values: |\n", "  values: >\n");
    let flow = "kind: ConfigMap\nmetadata:\n  name: ${cluster_name}-userconfig\ndata:\n  values: |\n    global: {metadata: {name: a}}\n";
    let explicit = NEWER.replace("  values: |\n", "  values: |2\n");
    let quoted = "kind: ConfigMap\nmetadata:\n  name: ${cluster_name}-userconfig\ndata:\n  values: \"global: {}\"\n";
    let twice = format!("{NEWER}---\n{NEWER}");
    let broken = NEWER.replace("        version: 29.1.0\n", "        version: [29.1.0\n");
    let list = NEWER.replace(
        "        name: ${cluster_name}\n",
        "        name: ${cluster_name}\n        annotations:\n        - a\n",
    );
    // (text, error kind, reason)
    let cases: &[(&str, &str, &str)] = &[
        (
            &folded,
            "Unsupported",
            "a folded block (>) would refold; not edited",
        ),
        (flow, "Unsupported", "flow mappings are not edited"),
        (
            &explicit,
            "Unsupported",
            "an explicit indentation indicator",
        ),
        (quoted, "Unsupported", "values in a quoted scalar"),
        (
            "kind: Secret\ndata:\n  values: |\n    a: 1\n",
            "NotFound",
            "not a ConfigMap",
        ),
        (&twice, "Ambiguous", "the same ConfigMap twice"),
        (&broken, "ValuesNotYaml", "values that do not parse"),
        (&list, "Unsupported", "annotations that are a list"),
    ];
    for (text, kind, reason) in cases {
        let got = set_annotations("values.yaml", text, at(), FREEZE);
        let e = got.expect_err(reason);
        assert_eq!(e.kind(), *kind, "{reason}: {e}");
        assert!(e.hint().is_some(), "{reason}: a hint");
        assert!(
            e.to_string().contains("values.yaml"),
            "{reason}: names the file: {e}"
        );
    }
}

#[test]
fn errors_name_the_line() {
    let flow = "kind: ConfigMap\nmetadata:\n  name: ${cluster_name}-userconfig\ndata:\n  values: |\n    global: {metadata: {name: a}}\n";
    let e = set_annotations("v.yaml", flow, at(), FREEZE).unwrap_err();
    assert_eq!(
        e.to_string(),
        "v.yaml:6: data.values: global.metadata.annotations[\"upkeep.dev/freeze-until\"]: a flow mapping ({…})"
    );
}

#[test]
fn reading_without_a_name_takes_the_only_configmap_with_values() {
    let read = annotations(
        "v.yaml",
        &NEWER.replace(
            "        name: ${cluster_name}\n",
            "        name: ${cluster_name}\n        annotations:\n          upkeep.dev/freeze-until: \"2026-04-01T00:00:00Z\"\n",
        ),
        ValuesRef {
            configmap: None,
            vars: None,
            key: "values",
        },
    )
    .expect("read");
    assert_eq!(
        read.get("upkeep.dev/freeze-until").map(String::as_str),
        Some("2026-04-01T00:00:00Z")
    );
}

#[test]
fn the_read_back_check_refuses_any_other_difference() {
    let frozen = set_annotations("v.yaml", NEWER, at(), FREEZE).expect("frozen");
    assert!(
        verify("v.yaml", NEWER, &frozen, at(), FREEZE).is_ok(),
        "the edit itself passes"
    );
    // (edited text, reason)
    let cases: &[(String, &str)] = &[
        (
            frozen.replace("version: 29.1.0", "version: 30.0.0"),
            "another value inside the values changed",
        ),
        (
            frozen.replace("quarter close", "quarter"),
            "an annotation reads back differently",
        ),
        (
            frozen.replace("maxSize: 3", "maxSize: [3"),
            "the values do not parse",
        ),
        (
            frozen.replace("namespace: org-", "namespace: team-"),
            "the ConfigMap changed outside its values",
        ),
        (NEWER.to_owned(), "the annotations are missing"),
    ];
    for (edited, reason) in cases {
        let e = verify("v.yaml", NEWER, edited, at(), FREEZE).expect_err(reason);
        assert_eq!(e.kind(), "Unsupported", "{reason}: {e}");
        assert!(
            e.to_string().contains("nothing was written"),
            "{reason}: {e}"
        );
    }
}

#[test]
fn block_edges() {
    let body = "kind: ConfigMap\nmetadata:\n  name: ${cluster_name}-userconfig\ndata:\n  values: |\n    global:\n      metadata:\n        name: a\n\n    other: 1\n";
    // (original, expected after FREEZE, reason)
    let cases: Vec<(String, String, &str)> = vec![
        (
            format!("{body}  extra: x\n"),
            format!("{}  extra: x\n", body.replace("        name: a\n", "        annotations:\n          upkeep.dev/freeze-reason: \"quarter close\"\n          upkeep.dev/freeze-until: \"2026-04-01T00:00:00Z\"\n        name: a\n")),
            "another data key after the block ends it; a blank line inside stays",
        ),
        (
            body.trim_end().to_owned(),
            body.trim_end().replace("        name: a\n", "        annotations:\n          upkeep.dev/freeze-reason: \"quarter close\"\n          upkeep.dev/freeze-until: \"2026-04-01T00:00:00Z\"\n        name: a\n"),
            "no newline at the end of the file",
        ),
        (
            format!("{body}---\nkind: Namespace\n"),
            format!("{}---\nkind: Namespace\n", body.replace("        name: a\n", "        annotations:\n          upkeep.dev/freeze-reason: \"quarter close\"\n          upkeep.dev/freeze-until: \"2026-04-01T00:00:00Z\"\n        name: a\n")),
            "a document after the block",
        ),
        (
            body.replace("        name: a\n", "        annotations:\n          # who owns it\n          team: blue\n        name: a\n"),
            body.replace("        name: a\n", "        annotations:\n          # who owns it\n          upkeep.dev/freeze-reason: \"quarter close\"\n          upkeep.dev/freeze-until: \"2026-04-01T00:00:00Z\"\n          team: blue\n        name: a\n"),
            "a comment before the first annotation stays above the new lines",
        ),
    ];
    for (original, expected, reason) in cases {
        let got = set_annotations("v.yaml", &original, at(), FREEZE);
        assert_eq!(got.as_deref(), Ok(expected.as_str()), "{reason}");
        let back = set_annotations("v.yaml", &expected, at(), UNFREEZE);
        assert_eq!(
            back.as_deref(),
            Ok(original.as_str()),
            "{reason}: unfreeze restores the bytes"
        );
    }
}

#[test]
fn a_configmap_is_also_found_by_its_substituted_name() {
    let vars: crate::cluster_edit::Vars = [("cluster_name".to_owned(), "dev01".to_owned())].into();
    let by = |name, vars| ValuesRef {
        configmap: Some(name),
        vars,
        key: "values",
    };
    assert!(set_annotations("v.yaml", NEWER, by("dev01-userconfig", Some(&vars)), FREEZE).is_ok());
    let e = set_annotations("v.yaml", NEWER, by("dev01-userconfig", None), FREEZE).unwrap_err();
    assert_eq!(
        e.kind(),
        "NotFound",
        "without the variables the written name must match"
    );
    let e = set_annotations(
        "v.yaml",
        NEWER,
        by("prod01-userconfig", Some(&vars)),
        FREEZE,
    )
    .unwrap_err();
    assert_eq!(e.kind(), "NotFound", "another cluster's ConfigMap: {e}");
}
