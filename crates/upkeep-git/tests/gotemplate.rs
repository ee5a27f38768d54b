//! Flux commit message templates (Go `text/template`) rendered as Flux renders them: the
//! documentation's and the controller tests' own templates with their expected output, Go's
//! rules for trimming, map order and `%v` formatting, and a fallback to Flux's default message
//! (with a warning naming the line) for anything outside the supported subset.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use upkeep_git::gotemplate::{GoTemplate, flux_data};
use upkeep_git::{ChangeRecord, FLUX_DEFAULT_MESSAGE, MessageTemplate};

fn change(file: &str, object: &str, old: &str, new: &str, policy: &str) -> ChangeRecord {
    ChangeRecord {
        file: file.to_owned(),
        line: 1,
        object: object.to_owned(),
        old: old.to_owned(),
        new: new.to_owned(),
        policy: policy.to_owned(),
        kind: "patch".to_owned(),
    }
}

/// Two files, two Deployments, given in the order opposite to Go's sorted order.
fn two_changes() -> Vec<ChangeRecord> {
    vec![
        change(
            "apps/redis.yaml",
            "Deployment apps/redis",
            "redis:6.0.0",
            "redis:6.0.1",
            "flux-system/redis",
        ),
        change(
            "apps/podinfo.yaml",
            "Deployment apps/podinfo",
            "ghcr.io/stefanprodan/podinfo:5.0.0",
            "ghcr.io/stefanprodan/podinfo:5.0.3",
            "flux-system/podinfo",
        ),
    ]
}

fn values() -> BTreeMap<String, String> {
    [("cluster", "prod"), ("testing", "value"), ("a", "1")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn render(template: &str, automation: &str, changes: &[ChangeRecord]) -> Result<String, String> {
    let t = GoTemplate::parse(template).map_err(|e| e.to_string())?;
    t.execute(&flux_data(automation, changes, &values()))
        .map_err(|e| e.to_string())
}

/// image-automation-controller internal/source/source_test.go `testCommitTemplateResultV2`.
const RESULT_V2: &str = "Commit summary with ResultV2

Automation: {{ .AutomationObject }}

{{ range $filename, $objchange := .Changed.FileChanges -}}
- File: {{ $filename }}
{{- range $obj, $changes := $objchange }}
  - Object: {{ $obj.Kind }}/{{ $obj.Namespace }}/{{ $obj.Name }}
    Changes:
{{- range $_ , $change := $changes }}
    - {{ $change.OldValue }} -> {{ $change.NewValue }}
{{ end -}}
{{ end -}}
{{ end -}}
";

/// docs/spec/v1/imageupdateautomations.md, the first example (YAML block indentation removed).
const DOCS_FIRST: &str = "Automated image update

Automation name: {{ .AutomationObject }}

Files:
{{ range $filename, $_ := .Changed.FileChanges -}}
- {{ $filename }}
{{ end -}}

Objects:
{{ range $resource, $changes := .Changed.Objects -}}
- {{ $resource.Kind }} {{ $resource.Name }}
  Changes:
{{- range $_, $change := $changes }}
    - {{ $change.OldValue }} -> {{ $change.NewValue }}
{{ end -}}
{{ end -}}
";

/// docs/spec/v1/imageupdateautomations.md, the example with template functions.
const DOCS_FUNCTIONS: &str = "Objects:
{{ range $resource, $changes := .Changed.Objects -}}
- {{ $resource.Kind | lower }} {{ $resource.Name | lower }}
  Changes:
{{- range $_, $change := $changes }}
  {{ if contains \"5.0.3\" $change.NewValue -}}
    - {{ $change.OldValue }} -> {{ $change.NewValue }}
  {{ else -}}
    [skip ci] wrong image
  {{ end -}}
{{ end -}}
{{ end -}}
";

/// docs/spec/v1/imageupdateautomations.md, Gerrit.
const DOCS_GERRIT: &str = "Perform automatic image update

Automation name: {{ .AutomationObject }}

{{- $ChangeId := .AutomationObject -}}
{{- $ChangeId = printf \"%s%s\" $ChangeId ( .Changed.FileChanges | toString ) -}}
{{- $ChangeId = printf \"%s%s\" $ChangeId ( .Changed.Objects | toString ) -}}
{{- $ChangeId = printf \"%s%s\" $ChangeId ( .Changed.Changes | toString ) }}
Change-Id: {{ printf \"I%s\" ( sha256sum $ChangeId | trunc 40 ) }}
";

#[test]
fn flux_tests_and_documentation_examples() {
    let deploy = [change(
        "deploy.yaml",
        "Deployment test",
        "helloworld:1.0.0",
        "helloworld:1.0.1",
        "test-ns/policy",
    )];
    // (template, automation, changes, expected output, reason)
    let cases: &[(&str, &str, &[ChangeRecord], &str, &str)] = &[
        (
            RESULT_V2,
            "test-ns/test-update",
            &deploy,
            "Commit summary with ResultV2\n\nAutomation: test-ns/test-update\n\n- File: deploy.yaml\n  - Object: Deployment//test\n    Changes:\n    - helloworld:1.0.0 -> helloworld:1.0.1\n",
            "Flux's own expected message (source_test.go 'commit with update ResultV2 template'); a Deployment without namespace has an empty Namespace",
        ),
        (
            "Commit summary\n\nAutomation: {{ .AutomationObject }}\n\nCluster: {{ index .Values \"cluster\" }}\nTesting: {{ .Values.testing }}\n",
            "test-ns/test-update",
            &deploy,
            "Commit summary\n\nAutomation: test-ns/test-update\n\nCluster: prod\nTesting: value\n",
            "Flux's own expected message with messageTemplateValues (source_test.go)",
        ),
        (
            DOCS_FIRST,
            "flux-system/auto",
            &two_changes(),
            "Automated image update\n\nAutomation name: flux-system/auto\n\nFiles:\n- apps/podinfo.yaml\n- apps/redis.yaml\nObjects:\n- Deployment podinfo\n  Changes:\n    - ghcr.io/stefanprodan/podinfo:5.0.0 -> ghcr.io/stefanprodan/podinfo:5.0.3\n- Deployment redis\n  Changes:\n    - redis:6.0.0 -> redis:6.0.1\n",
            "the documentation's first example: files and objects in Go's sorted order, trim markers as Go applies them",
        ),
        (
            DOCS_FUNCTIONS,
            "flux-system/auto",
            &two_changes(),
            "Objects:\n- deployment podinfo\n  Changes:\n  - ghcr.io/stefanprodan/podinfo:5.0.0 -> ghcr.io/stefanprodan/podinfo:5.0.3\n  - deployment redis\n  Changes:\n  [skip ci] wrong image\n  ",
            "the documentation's functions example, including the stray indentation Go really writes",
        ),
        (
            "{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}",
            "flux-system/auto",
            &two_changes(),
            "ghcr.io/stefanprodan/podinfo:5.0.0 -> ghcr.io/stefanprodan/podinfo:5.0.3\nredis:6.0.0 -> redis:6.0.1\n",
            "the documentation's Gitea example: println ends the line",
        ),
    ];
    for &(template, automation, changes, want, reason) in cases {
        assert_eq!(
            render(template, automation, changes).as_deref(),
            Ok(want),
            "{reason}"
        );
    }
}

#[test]
fn gerrit_change_id_hashes_go_formatted_values() {
    let got = render(DOCS_GERRIT, "flux-system/auto", &two_changes()).unwrap();
    // What Go's %v prints for the same data: nested maps in sorted key order, the
    // ObjectIdentifier as its nested structs ({{{APIVersion Kind} {Name Namespace}}}),
    // changes as {OldValue NewValue Setter}.
    let podinfo_change = "{ghcr.io/stefanprodan/podinfo:5.0.0 ghcr.io/stefanprodan/podinfo:5.0.3 flux-system:podinfo}";
    let redis_change = "{redis:6.0.0 redis:6.0.1 flux-system:redis}";
    let podinfo = "{{{ Deployment} {podinfo apps}}}";
    let redis = "{{{ Deployment} {redis apps}}}";
    let change_id = format!(
        "flux-system/auto\
         map[apps/podinfo.yaml:map[{podinfo}:[{podinfo_change}]] apps/redis.yaml:map[{redis}:[{redis_change}]]]\
         map[{podinfo}:[{podinfo_change}] {redis}:[{redis_change}]]\
         [{podinfo_change} {redis_change}]"
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, change_id.as_bytes());
    let hex = digest.as_ref().iter().fold(String::new(), |mut h, b| {
        let _ = write!(h, "{b:02x}");
        h
    });
    assert_eq!(
        got,
        format!(
            "Perform automatic image update\n\nAutomation name: flux-system/auto\nChange-Id: I{}\n",
            &hex[..40]
        )
    );
}

#[test]
fn go_semantics() {
    let changes = two_changes();
    // (template, expected, reason)
    let cases: &[(&str, &str, &str)] = &[
        (
            "{{ .Values.missing }}",
            "<no value>",
            "a missing map key prints <no value>",
        ),
        (
            "{{ index .Values \"missing\" }}",
            "",
            "index gives the zero value",
        ),
        (
            "{{ len .Changed.Changes }} {{ len .Changed.FileChanges }} {{ len \"abc\" }}",
            "2 2 3",
            "len of slices, maps, strings",
        ),
        (
            "{{ .AutomationObject.Namespace }}|{{ .AutomationObject.Name }}",
            "flux-system|auto",
            "NamespacedName fields",
        ),
        (
            "{{ if eq .AutomationObject.Name \"x\" \"auto\" }}yes{{ else }}no{{ end }}",
            "yes",
            "eq with several candidates",
        ),
        (
            "{{ if ne 1 2 }}a{{ end }}{{ if lt 1 2 }}b{{ end }}{{ if ge \"b\" \"a\" }}c{{ end }}",
            "abc",
            "ne, lt, ge",
        ),
        (
            "{{ if and .Values.cluster (not .Values.missing) }}ok{{ end }}",
            "ok",
            "and, not, parentheses",
        ),
        (
            "{{ or \"\" \"x\" }}{{ and \"\" \"y\" }}",
            "x",
            "or/and give the deciding operand",
        ),
        (
            "{{ print 1 2 \"a\" \"b\" 3 }}",
            "1 2ab3",
            "print adds spaces only between non-strings",
        ),
        (
            "{{ printf \"%d files, %s, %q, %t\" (len .Changed.FileChanges) \"x\" \"y\" true }}",
            "2 files, x, \"y\", true",
            "printf verbs",
        ),
        (
            "{{ printf \"%d\" \"x\" }}",
            "%!d(string=x)",
            "a wrong verb prints as Go does",
        ),
        (
            "{{ printf \"%s %s\" \"a\" }}",
            "a %!s(MISSING)",
            "missing operand",
        ),
        (
            "{{ printf \"%s\" \"a\" \"b\" }}",
            "a%!(EXTRA string=b)",
            "extra operand",
        ),
        (
            "{{ \"a\" | printf \"%s-%s\" \"b\" }}",
            "b-a",
            "the piped value is the last argument",
        ),
        (
            "{{ with .Values.cluster }}{{ . }}{{ else }}none{{ end }}",
            "prod",
            "with sets dot",
        ),
        (
            "{{ with .Values.missing }}{{ . }}{{ else }}none{{ end }}",
            "none",
            "with else",
        ),
        (
            "{{ if false }}a{{ else if true }}b{{ else }}c{{ end }}",
            "b",
            "else if",
        ),
        (
            "{{/* a comment */}}x {{- /* trimmed */ -}} y",
            "xy",
            "comments, with trim markers",
        ),
        (
            "a  {{- 1 -}}  b",
            "a1b",
            "trim markers eat spaces and newlines",
        ),
        ("{{ -3 }}", "-3", "a negative number is not a trim marker"),
        (
            "{{ range $i, $c := .Changed.Changes }}{{ $i }}{{ end }}",
            "01",
            "range index",
        ),
        (
            "{{ range $c := .Changed.Changes }}{{ $c.Setter }};{{ end }}",
            "flux-system:podinfo;flux-system:redis;",
            "range with one variable gives the element; Setter is ns:name",
        ),
        (
            "{{ range .Changed.Changes }}{{ if eq .NewValue \"redis:6.0.1\" }}{{ break }}{{ end }}{{ .Setter }};{{ end }}",
            "flux-system:podinfo;",
            "break",
        ),
        (
            "{{ range .Changed.Changes }}{{ if eq .NewValue \"redis:6.0.1\" }}{{ continue }}{{ end }}{{ .Setter }};{{ end }}",
            "flux-system:podinfo;",
            "continue",
        ),
        (
            "{{ range .Values.nothing }}x{{ else }}empty{{ end }}",
            "empty",
            "range over nothing runs else",
        ),
        (
            "{{ range $k, $v := .Values }}{{ $k }}={{ $v }},{{ end }}",
            "a=1,cluster=prod,testing=value,",
            "maps range in sorted key order",
        ),
        (
            "{{ $x := \"a\" }}{{ if true }}{{ $x = \"b\" }}{{ end }}{{ $x }}",
            "b",
            "assignment changes the outer variable",
        ),
        ("{{ `raw \\n` }}", "raw \\n", "raw strings"),
        (
            "{{ \"tab\\there\" }}",
            "tab\there",
            "escapes in quoted strings",
        ),
        (
            "{{ .Values }}",
            "map[a:1 cluster:prod testing:value]",
            "maps print as map[k:v]",
        ),
        (
            "{{ .AutomationObject }}",
            "flux-system/auto",
            "NamespacedName prints through String()",
        ),
        (
            "{{ \"Hello\" | upper }} {{ trimPrefix \"he\" \"hello\" }} {{ replace \"l\" \"L\" \"hello\" }} {{ trunc 2 \"hello\" }} {{ trunc -2 \"hello\" }}",
            "HELLO llo heLLo he lo",
            "Sprig string functions",
        ),
        (
            "{{ .Values.missing | default \"d\" }} {{ hasPrefix \"ap\" \"apps\" }} {{ quote \"q\" }}",
            "d true \"q\"",
            "default, hasPrefix, quote",
        ),
        (
            "{{ range 3 }}{{ . }}{{ end }}",
            "012",
            "range over an integer (Go 1.22)",
        ),
        (
            "{{ if eq .Values.missing \"x\" }}a{{ else }}b{{ end }}",
            "b",
            "a missing value equals nothing, without an error",
        ),
    ];
    for &(template, want, reason) in cases {
        assert_eq!(
            render(template, "flux-system/auto", &changes).as_deref(),
            Ok(want),
            "{reason}: {template}"
        );
    }
}

#[test]
fn unsupported_or_failing_templates_are_errors_with_their_line() {
    // (template, line, message piece, reason)
    let cases: &[(&str, usize, &str, &str)] = &[
        (
            "a\nb\n{{ template \"x\" }}",
            3,
            "not supported",
            "template calls are outside the subset",
        ),
        ("{{ define \"x\" }}{{ end }}", 1, "not supported", "define"),
        (
            "x\n{{ .Updated.Files }}",
            2,
            "can't evaluate field Updated in type source.TemplateData",
            "the removed .Updated field, as Flux words it",
        ),
        (
            "{{ now }}",
            1,
            "function \"now\" not defined",
            "functions outside the subset are found when parsing",
        ),
        (
            "{{ range .Changed.Changes }}",
            1,
            "range has no end",
            "unclosed range",
        ),
        ("{{ end }}", 1, "unexpected {{end}}", "stray end"),
        (
            "\n\n{{ if }}x{{ end }}",
            3,
            "missing value",
            "if without a condition",
        ),
        (
            "{{ .Changed.Changes.Foo }}",
            1,
            "can't evaluate field Foo in type slice",
            "fields of a slice",
        ),
        (
            "{{ eq \"a\" 1 }}",
            1,
            "incompatible types",
            "comparing a string with a number",
        ),
        (
            "{{ $y }}",
            1,
            "undefined variable",
            "an undeclared variable",
        ),
        (
            "{{ range 100000000 }}x{{ end }}",
            1,
            "steps",
            "a runaway loop is stopped",
        ),
        (
            "{{ printf \"%5s\" \"x\" }}",
            1,
            "not supported",
            "printf widths are outside the subset",
        ),
        (
            "{{ .AutomationObject.Name \"x\" }}",
            1,
            "only functions take arguments",
            "method arguments",
        ),
        (
            "{{ \"unterminated }}",
            1,
            "unterminated",
            "a bad string literal",
        ),
        ("{{ 1.5 }}", 1, "integer", "floats are outside the subset"),
        ("{{ break }}", 1, "outside", "break outside range"),
        (
            "{{ /* not a comment */ }}",
            1,
            "unexpected",
            "a comment must start at the delimiter, as in Go",
        ),
    ];
    for &(template, line, piece, reason) in cases {
        let got = GoTemplate::parse(template)
            .and_then(|t| t.execute(&flux_data("ns/a", &two_changes(), &values())));
        match got {
            Ok(out) => panic!("{reason}: rendered {out:?}"),
            Err(e) => {
                assert_eq!(e.line, line, "{reason}: {e}");
                assert!(e.message.contains(piece), "{reason}: {e}");
            }
        }
    }
}

#[test]
fn message_template_falls_back_to_flux_default_with_a_warning() {
    let changes = two_changes();
    let default = format!("{FLUX_DEFAULT_MESSAGE}\n");
    // (template, expected message, expected warning piece, reason)
    let cases: &[(Option<&str>, &str, Option<&str>, &str)] = &[
        (None, &default, None, "no template: Flux's default message"),
        (
            Some("Update {{ len .Changed.Changes }} images\n\n\n"),
            "Update 2 images\n",
            None,
            "trailing blank lines are dropped, one newline kept",
        ),
        (
            Some("ok\n{{ template \"x\" }}"),
            &default,
            Some("messageTemplate line 2"),
            "outside the subset: the default, warning names the line",
        ),
        (
            Some("a\nb\n{{ .Updated.Images }}"),
            &default,
            Some("messageTemplate line 3: can't evaluate field Updated"),
            "failing at run time: the default",
        ),
        (
            Some("{{ if false }}x{{ end }}  \n"),
            &default,
            Some("empty message"),
            "an empty message is not committed",
        ),
    ];
    for &(source, want, warning, reason) in cases {
        let t = MessageTemplate::flux(source, values());
        let got = t.render("flux-system/auto", &changes).unwrap();
        assert_eq!(got, want, "{reason}");
        let warnings = t.take_warnings();
        match warning {
            None => assert!(warnings.is_empty(), "{reason}: {warnings:?}"),
            Some(piece) => {
                assert_eq!(warnings.len(), 1, "{reason}: {warnings:?}");
                assert!(warnings[0].contains(piece), "{reason}: {warnings:?}");
                assert!(warnings[0].contains("hint:"), "{reason}");
            }
        }
    }
}

#[test]
fn objects_that_are_not_kubernetes_objects_have_empty_identifiers() {
    let changes = [
        change("k/kustomization.yaml", "newTag", "1.0", "1.1", "ns/p"),
        change(
            "values.yaml",
            "HelmRelease flux-system/app",
            "1",
            "2",
            "ns/q",
        ),
    ];
    let got = render(
        "{{ range $o, $c := .Changed.Objects }}[{{ $o.Kind }}|{{ $o.Namespace }}|{{ $o.Name }}]{{ end }}",
        "ns/a",
        &changes,
    );
    assert_eq!(
        got.as_deref(),
        Ok("[||][HelmRelease|flux-system|app]"),
        "a YAML key is not a Kind; empty identifiers sort first, as in Go"
    );
}

#[test]
fn any_input_ends_in_a_message_or_an_error() {
    // Every prefix of the documented templates (cut anywhere, also inside a multi-byte
    // character's neighbourhood), and inputs made to hurt a hand-written parser: each parses
    // and runs to an output or an error, without a panic, a hang or a stack overflow.
    let changes = two_changes();
    let data = flux_data("ns/a", &changes, &values());
    let mut inputs: Vec<String> = Vec::new();
    for t in [RESULT_V2, DOCS_FIRST, DOCS_FUNCTIONS, DOCS_GERRIT] {
        for (i, _) in t.char_indices() {
            inputs.push(t[..i].to_owned());
            inputs.push(format!("{}é→{}", &t[..i], &t[i..]));
        }
    }
    inputs.extend(
        [
            "{{ → }}",
            "{{ é }}",
            "{{",
            "}}",
            "{{-",
            "{{- }}",
            "{{ -}}",
            "{{/*",
            "{{/* */",
            "{{ \"\\",
            "{{ ` }}",
            "{{ ( }}",
            "{{ ) }}",
            "{{ | }}",
            "{{ $ := 1 }}",
            "{{ $x, $y := 1 }}",
            "{{ range $a, $b, $c := .Values }}{{ end }}",
            "{{ else }}",
            "{{ if 1 }}{{ else }}{{ else }}{{ end }}",
            "{{ 99999999999999999999 }}",
            "{{ printf \"%\" }}",
            "{{ index .Changed.Changes -1 }}",
            "{{ index .Changed.Changes 99 }}",
            "{{ len 3 }}",
            "{{ trunc -99 \"x\" }}",
        ]
        .map(str::to_owned),
    );
    inputs.push(format!(
        "{}1{}",
        "{{ ".to_owned() + &"(".repeat(100_000),
        ")".repeat(100_000) + " }}"
    ));
    inputs.push(format!(
        "{}x{}",
        "{{ if 1 }}".repeat(100_000),
        "{{ end }}".repeat(100_000)
    ));
    inputs.push("{{ range 1000 }}{{ range 1000 }}x{{ end }}{{ end }}".to_owned());
    inputs.push(format!(
        "{{{{ range 1000 }}}}{}{{{{ end }}}}",
        "x".repeat(10_000)
    ));
    for input in &inputs {
        let result = GoTemplate::parse(input).and_then(|t| t.execute(&data));
        if let Ok(out) = result {
            assert!(
                out.len() <= upkeep_git::gotemplate::MAX_OUTPUT + 10_000,
                "{input:?}"
            );
        }
    }
    // The deep ones are refused with a reason.
    let deep = format!("{}x{}", "{{ if 1 }}".repeat(200), "{{ end }}".repeat(200));
    assert!(
        GoTemplate::parse(&deep)
            .unwrap_err()
            .message
            .contains("nested deeper")
    );
}
