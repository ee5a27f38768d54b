//! Golden directories (`testdata/cluster-edit/<case>/{case,original,expected}`) for the byte
//! exact edits, and a table of the errors.

use super::*;

/// Reads `case`: `key: value` lines (`name`, `namespace`, `place`, `version`, `set`, `remove`,
/// `reason`).
fn read_case(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn golden_directories() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cluster-edit");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 8, "the golden cases are there");
    for dir in dirs {
        let case = read_case(&std::fs::read_to_string(dir.join("case")).unwrap());
        let get = |k: &str| {
            case.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let reason = get("reason").unwrap_or_else(|| panic!("{}: no reason", dir.display()));
        let original = std::fs::read_to_string(dir.join("original")).unwrap();
        let expected = std::fs::read_to_string(dir.join("expected")).unwrap();
        let name = get("name").unwrap();
        let ns = get("namespace");
        let got = if let Some(version) = get("version") {
            let place = match get("place").as_deref() {
                Some("topology") => VersionPlace::Topology,
                Some(p) if p.starts_with("label:") => VersionPlace::Label(p[6..].to_owned()),
                _ => VersionPlace::default(),
            };
            set_version(
                "original",
                &original,
                &name,
                ns.as_deref(),
                &place,
                &version,
            )
            .map(|e| e.new_text)
        } else {
            let mut changes = Vec::new();
            for (k, v) in &case {
                match k.as_str() {
                    "set" => {
                        let (key, value) = v.split_once('=').unwrap();
                        changes.push((key, Some(value)));
                    }
                    "remove" => changes.push((v.as_str(), None)),
                    _ => {}
                }
            }
            set_annotations("original", &original, &name, ns.as_deref(), &changes)
        };
        match got {
            Ok(text) => assert_eq!(text, expected, "{}: {reason}", dir.display()),
            Err(e) => panic!("{}: {reason}: {e}", dir.display()),
        }
    }
}

/// (name, namespace, place, version, error kind, reason)
type ErrorCase<'a> = (
    &'a str,
    Option<&'a str>,
    &'a VersionPlace,
    &'a str,
    &'a str,
    &'a str,
);
/// (name, namespace, file index or error kind, reason)
type FindCase<'a> = (&'a str, Option<&'a str>, Result<usize, &'a str>, &'a str);

const TWO: &str = "apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: a
  namespace: org-x
  labels:
    release.giantswarm.io/version: 1.2.3
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: a
  namespace: org-y
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: b
";

#[test]
fn errors_table() {
    let label = VersionPlace::default();
    let cases: &[ErrorCase<'_>] = &[
        ("zzz", None, &label, "1.3.0", "NotFound", "no such cluster"),
        (
            "b",
            None,
            &label,
            "1.3.0",
            "NotFound",
            "a ConfigMap of that name is not a Cluster",
        ),
        (
            "a",
            None,
            &label,
            "1.3.0",
            "Ambiguous",
            "two namespaces define it and none was given",
        ),
        (
            "a",
            Some("org-y"),
            &label,
            "1.3.0",
            "FieldMissing",
            "the cluster has no labels at all",
        ),
        (
            "a",
            Some("org-x"),
            &VersionPlace::Topology,
            "1.3.0",
            "FieldMissing",
            "no spec.topology",
        ),
        (
            "a",
            Some("org-x"),
            &label,
            "1.10",
            "Unrepresentable",
            "a plain 1.10 would read as a float",
        ),
    ];
    for (name, ns, place, version, want, reason) in cases {
        let got = set_version("f.yaml", TWO, name, *ns, place, version);
        match got {
            Err(e) => {
                assert_eq!(e.kind(), *want, "{reason}: {e}");
                assert!(e.hint().is_some(), "{reason}: every error has a hint");
            }
            Ok(_) => panic!("{reason}: expected {want}"),
        }
    }
    let e = set_version("f.yaml", TWO, "a", Some("org-y"), &label, "1.3.0").unwrap_err();
    assert!(
        e.to_string().starts_with("f.yaml:11:"),
        "names file and line: {e}"
    );
    assert!(e.hint().unwrap().contains("release.giantswarm.io/version"));
}

#[test]
fn find_cluster_table() {
    let files = vec![
        ("a.yaml".to_owned(), TWO.to_owned()),
        ("b.yaml".to_owned(), "not: [valid".to_owned()),
        (
            "c.yaml".to_owned(),
            TWO.replace("org-x", "org-z").replace("org-y", "org-w"),
        ),
    ];
    let cases: &[FindCase<'_>] = &[
        ("a", Some("org-x"), Ok(0), "namespace picks the first file"),
        ("a", Some("org-w"), Ok(2), "invalid files are skipped"),
        ("a", None, Err("Ambiguous"), "four definitions"),
        (
            "a",
            Some("nope"),
            Err("NotFound"),
            "namespace filters all out",
        ),
    ];
    for (name, ns, want, reason) in cases {
        let got = find_cluster(&files, name, *ns, "repo").map_err(|e| e.kind());
        assert_eq!(got, *want, "{reason}");
    }
    let e = find_cluster(&files, "zz", None, "the repository /r").unwrap_err();
    assert_eq!(e.to_string(), "no Cluster zz in the repository /r");
}

#[test]
fn unchanged_when_already_at_target() {
    let edit = set_version(
        "f",
        TWO,
        "a",
        Some("org-x"),
        &VersionPlace::default(),
        "1.2.3",
    )
    .unwrap();
    assert!(!edit.is_changed(TWO), "same value: same bytes");
    assert_eq!(edit.old, "1.2.3");
    assert_eq!(edit.line, 7);
}
