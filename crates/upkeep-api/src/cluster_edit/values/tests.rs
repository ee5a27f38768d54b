use std::fmt::Write as _;

use super::*;

const CM: &str = "\
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
        name: ${cluster_name}   # the cluster
        organization: ${organization}
      release:
        version: 29.1.0
    # other settings
    providerSpecific: {}
";

fn vars() -> Vars {
    [("cluster_name", "dev01"), ("organization", "acme")]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const SEL: ObjectSel<'static> = ObjectSel {
    group: "",
    kind: "ConfigMap",
    name: "dev01-userconfig",
    namespace: Some("org-acme"),
};

fn set(text: &str, key: &str, version: &str) -> Result<VersionEdit, ClusterEditError> {
    set_config_map_values("cm.yaml", text, &SEL, &vars(), "values", key, version)
}

#[test]
fn block_scalars_are_edited_in_place() {
    // (manifest, key path, version, the manifest expected, reason)
    let crlf = CM.replace('\n', "\r\n");
    let cases: Vec<(String, &str, &str, String, &str)> = vec![
        (
            CM.to_owned(),
            "global.release.version",
            "29.2.0",
            CM.replace("version: 29.1.0", "version: 29.2.0"),
            "the newer release form",
        ),
        (
            crlf.clone(),
            "global.release.version",
            "29.2.0",
            crlf.replace("version: 29.1.0", "version: 29.2.0"),
            "CRLF line ends are kept",
        ),
        (
            CM.replace("values: |", "values: |-"),
            "global.release.version",
            "30.0.0",
            CM.replace("values: |", "values: |-")
                .replace("version: 29.1.0", "version: 30.0.0"),
            "strip chomping",
        ),
        (
            CM.replace("values: |", "values: |+\n"),
            "global.release.version",
            "30.0.0",
            CM.replace("values: |", "values: |+\n")
                .replace("version: 29.1.0", "version: 30.0.0"),
            "keep chomping, a leading empty line",
        ),
        (
            CM.replace("values: |", "values: |2  # two spaces")
                .replace("    global:", "     global:")
                .replace("\n      ", "\n       ")
                .replace("\n    #", "\n     #")
                .replace("\n    prov", "\n     prov"),
            "global.release.version",
            "29.2.0",
            CM.replace("values: |", "values: |2  # two spaces")
                .replace("    global:", "     global:")
                .replace("\n      ", "\n       ")
                .replace("\n    #", "\n     #")
                .replace("\n    prov", "\n     prov")
                .replace("version: 29.1.0", "version: 29.2.0"),
            "an indentation indicator with more-indented content: the extra space is content",
        ),
        (
            CM.replace("version: 29.1.0", "version: \"29.1.0\""),
            "global.release.version",
            "29.2.0",
            CM.replace("version: 29.1.0", "version: \"29.2.0\""),
            "quotes kept",
        ),
        (
            CM.replace("version: 29.1.0", "version:\t29.1.0\t# tabbed"),
            "global.release.version",
            "29.2.0",
            CM.replace("version: 29.1.0", "version:\t29.2.0\t# tabbed"),
            "tabs as separators inside the values",
        ),
        (
            CM.replace("organization: ${organization}", "organization: acme"),
            "global.metadata.organization",
            "beta",
            CM.replace("organization: ${organization}", "organization: beta"),
            "any dotted key",
        ),
        (
            CM.to_owned(),
            "global.release.version",
            "29.1.0",
            CM.to_owned(),
            "already the target: unchanged",
        ),
        (
            format!(
                "{CM}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  values: |\n    global:\n      release:\n        version: 29.1.0\n"
            ),
            "global.release.version",
            "29.2.0",
            format!(
                "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  values: |\n    global:\n      release:\n        version: 29.1.0\n",
                CM.replace("version: 29.1.0", "version: 29.2.0")
            ),
            "another ConfigMap in the file is not touched",
        ),
    ];
    for (text, key, version, want, why) in cases {
        let got = set(&text, key, version).unwrap_or_else(|e| panic!("{why}: {e}"));
        assert_eq!(got.new_text, want, "{why}");
        let line = match why {
            "any dotted key" => 12,
            w if w.starts_with("keep") => 15,
            _ => 14,
        };
        assert_eq!(got.line, line, "{why}: line");
    }
}

#[test]
fn what_is_refused() {
    // (manifest, key path, the error kind, reason)
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (
            CM.replace("        version: 29.1.0\n", ""),
            "global.release.version",
            "ObjectFieldMissing",
            "the key missing",
        ),
        (
            CM.replace(
                "        version: 29.1.0\n",
                "        version: 29.1.0\n        version: 29.0.0\n",
            ),
            "global.release.version",
            "DuplicateKey",
            "the key twice: readers disagree on which wins",
        ),
        (
            CM.replace("      release:\n", "      release:\n\t"),
            "global.release.version",
            "NotYaml",
            "a tab in the block's indentation ends the block, and the manifest is no YAML",
        ),
        (
            CM.replace("values: |", "values: >"),
            "global.release.version",
            "Unsupported",
            "a folded block",
        ),
        (
            CM.replace(
                "  values: |\n",
                "  values: \"global:\\n  release:\\n    version: 29.1.0\\n\"\n  other: |\n",
            ),
            "global.release.version",
            "Unsupported",
            "a quoted string holding the values",
        ),
        (
            CM.replace("version: 29.1.0", "version: ${cluster_release}"),
            "global.release.version",
            "Substituted",
            "the values key holds a Flux variable",
        ),
        (
            CM.replace(
                "      release:\n        version: 29.1.0\n",
                "      release: {version: 29.1.0, x: [1, 2]}\n",
            ),
            "global.release",
            "Unsupported",
            "the key is a mapping",
        ),
        (
            CM.replace("version: 29.1.0", "version: &v 29.1.0\n        again: *v"),
            "global.release.version",
            "Unsupported",
            "an anchored value would change its alias too",
        ),
        (
            CM.replace("    providerSpecific: {}", "    providerSpecific: {"),
            "global.release.version",
            "ValuesNotYaml",
            "invalid embedded YAML, with its line",
        ),
        (
            CM.replace("\ndata:", "\ndata2:"),
            "global.release.version",
            "ObjectFieldMissing",
            "no data.values",
        ),
        (
            CM.replace("dev01-userconfig", "dev02-userconfig")
                .replace("${cluster_name}-userconfig", "dev02-userconfig"),
            "global.release.version",
            "ObjectNotFound",
            "another ConfigMap",
        ),
        (
            CM.to_owned(),
            "global..version",
            "Unsupported",
            "an empty path segment",
        ),
    ];
    for (text, key, kind, why) in cases {
        let err = set(&text, key, "29.2.0").expect_err(why);
        assert_eq!(err.kind(), kind, "{why}: {err}");
        assert!(err.hint().is_some(), "{why}: a hint");
        assert!(
            err.to_string().contains("cm.yaml"),
            "{why}: names the file: {err}"
        );
    }
    let err = set(
        &CM.replace("    providerSpecific: {}", "    providerSpecific: {"),
        "global.release.version",
        "1",
    )
    .expect_err("invalid");
    assert!(
        err.to_string().starts_with("cm.yaml:1"),
        "the manifest's line of the values error: {err}"
    );
    let err = set(
        &CM.replace(
            "        version: 29.1.0\n",
            "        version: 29.1.0\n        version: 29.0.0\n",
        ),
        "global.release.version",
        "1",
    )
    .expect_err("twice");
    assert_eq!(
        err.to_string(),
        "cm.yaml:14: data.values: global.release.version: the key \"version\" is written more than once (lines 14, 15)"
    );
}

#[test]
fn a_values_string() {
    let values = "global:\n  release:\n    version: '29.1.0' # {\"keep\": \"me\"}\n  other: x\n";
    let e = set_values_key(values, "global.release.version", "29.2.0").expect("edited");
    assert_eq!(e.new_text, values.replace("29.1.0", "29.2.0"));
    assert_eq!((e.old.as_str(), e.line), ("29.1.0", 3));
    assert_eq!(
        values_key(values, "global.release.version").expect("read"),
        Some("29.1.0".to_owned())
    );
    assert_eq!(values_key(values, "global.nothing").expect("read"), None);
    let plain = "global:\n  release:\n    version: 29.1.0\n";
    let err = set_values_key(plain, "global.release.version", "30.0").expect_err("a float");
    assert_eq!(err.kind(), "Unrepresentable");
    let err = set_values_key("", "global.release.version", "30.0.0").expect_err("empty");
    assert_eq!(err.kind(), "ObjectFieldMissing");
}

#[test]
fn a_large_values_block() {
    // 50,000 lines of values around the key: linear work, one line changed.
    let mut text = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dev01-userconfig\n  namespace: org-acme\ndata:\n  values: |\n    global:\n      release:\n        version: 29.1.0\n    big:\n",
    );
    for i in 0..50_000 {
        let _ = writeln!(text, "      key{i}: value {i}");
    }
    text.push_str("  other: x\n");
    let e = set(&text, "global.release.version", "29.2.0").expect("edited");
    assert_eq!(
        e.new_text,
        text.replace("version: 29.1.0", "version: 29.2.0")
    );
    assert_eq!(e.line, 10);
}
