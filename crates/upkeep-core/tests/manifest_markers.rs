//! Table tests for reading marker lines and for [`apply`]'s contract, one reason per case.

use upkeep_core::manifest::{
    MarkerError, MarkerForm, Quote, Update, apply, find_markers, may_have_markers, set_value,
};

/// What a single line should yield.
#[derive(Debug)]
enum Want {
    /// key, value, quote, field, "ns:policy"
    Marker(
        Option<&'static str>,
        &'static str,
        Quote,
        MarkerForm,
        &'static str,
    ),
    /// The error's kind.
    Error(&'static str),
    Nothing,
}

use Want::{Error, Marker, Nothing};

#[test]
fn marker_lines() {
    use MarkerForm::{Name, Reference, Tag, Version};
    use Quote::{Double, Plain, Single};
    let cases: &[(&str, Want, &str)] = &[
        (
            r#"  version: 1.2.3 # {"$upkeep": "giantswarm:app"}"#,
            Marker(Some("version"), "1.2.3", Plain, Version, "giantswarm:app"),
            "App CR spec.version",
        ),
        (
            r#""version": 1.2.3 # {"$upkeep": "a:b"}"#,
            Marker(Some("version"), "1.2.3", Plain, Version, "a:b"),
            "double-quoted key",
        ),
        (
            r#"'it''s': "1.2.3" # {"$upkeep": "a:b"}"#,
            Marker(Some("it's"), "1.2.3", Double, Version, "a:b"),
            "single-quoted key with an escaped quote",
        ),
        (
            r#""a\"b": 1.2.3 # {"$upkeep": "a:b"}"#,
            Marker(Some("a\"b"), "1.2.3", Plain, Version, "a:b"),
            "escaped quote inside a double-quoted key",
        ),
        (
            r#"chart version: 1.2.3 # {"$upkeep": "a:b"}"#,
            Marker(Some("chart version"), "1.2.3", Plain, Version, "a:b"),
            "plain key with a space",
        ),
        (
            "version:\t1.2.3\t# {\"$upkeep\": \"a:b\"}",
            Marker(Some("version"), "1.2.3", Plain, Version, "a:b"),
            "tabs as separators",
        ),
        (
            r#"- 1.2.3 # {"$upkeep": "a:b"}"#,
            Marker(None, "1.2.3", Plain, Version, "a:b"),
            "bare sequence item",
        ),
        (
            r#"  - - '1.2.3' # {"$upkeep": "a:b"}"#,
            Marker(None, "1.2.3", Single, Version, "a:b"),
            "nested sequence item",
        ),
        (
            r#"    - targetRevision: 1.2.3 # {"$upkeep": "a:b"}"#,
            Marker(Some("targetRevision"), "1.2.3", Plain, Version, "a:b"),
            "first key of a sources[] item",
        ),
        (
            r#"--- 1.2.3 # {"$upkeep": "a:b"}"#,
            Marker(None, "1.2.3", Plain, Version, "a:b"),
            "content on the document start line",
        ),
        (
            r#"spec: {version: 1.2.3} # {"$upkeep": "a:b"}"#,
            Marker(Some("version"), "1.2.3", Plain, Version, "a:b"),
            "flow mapping with one value: its key is reported",
        ),
        (
            r#"versions: [ "1.2.3" ] # {"$upkeep": "a:b"}"#,
            Marker(Some("versions"), "1.2.3", Double, Version, "a:b"),
            "flow sequence with one item takes the block key",
        ),
        (
            r#"a: {b: {c: '1.2.3'}} # {"$upkeep": "a:b"}"#,
            Marker(Some("c"), "1.2.3", Single, Version, "a:b"),
            "nested flow mappings with one value",
        ),
        (
            r#"x: [a, 1.2.3] # {"$upkeep": "a:b"}"#,
            Error("AmbiguousFlow"),
            "two items: which one is the version?",
        ),
        (
            r#"x: {name: a, version: 1.2.3} # {"$upkeep": "a:b"}"#,
            Error("AmbiguousFlow"),
            "two values in a flow mapping",
        ),
        (
            r#"x: {} # {"$upkeep": "a:b"}"#,
            Error("NoValue"),
            "empty flow mapping",
        ),
        (
            r#"x: {version: 1.2.3 # {"$upkeep": "a:b"}"#,
            Error("Unreadable"),
            "flow mapping that does not close on the line",
        ),
        (
            r#"base: &v 1.2.3 # {"$upkeep": "a:b"}"#,
            Error("AnchoredScalar"),
            "an anchored value is an alias target: editing it would change its aliases too",
        ),
        (
            r#"typed: !!str "1.2.3" # {"$upkeep": "a:b"}"#,
            Marker(Some("typed"), "1.2.3", Double, Version, "a:b"),
            "tag before the value",
        ),
        (
            r#"copy: *v # {"$upkeep": "a:b"}"#,
            Error("NoValue"),
            "an alias has no scalar on this line",
        ),
        (
            r#"patch: |- # {"$upkeep": "a:b"}"#,
            Error("NoValue"),
            "a block scalar header is not a value",
        ),
        (
            r#"version: # {"$upkeep": "a:b"}"#,
            Error("NoValue"),
            "key without value",
        ),
        (
            r#"        value: '0.1.8' # {"$imagepolicy": "flux-system:podinfo:tag"}"#,
            Marker(Some("value"), "0.1.8", Single, Tag, "flux-system:podinfo"),
            "kustomize patch line inside a block scalar",
        ),
        (
            r#"image: ghcr.io/a/b:1.0@sha256:abcd # {"$imagepolicy": "a:b"}"#,
            Marker(
                Some("image"),
                "ghcr.io/a/b:1.0@sha256:abcd",
                Plain,
                Reference,
                "a:b",
            ),
            "image reference with a digest",
        ),
        (
            r#"repository: ghcr.io/a/b # {"$imagepolicy": "a:b:name"}"#,
            Marker(Some("repository"), "ghcr.io/a/b", Plain, Name, "a:b"),
            "Flux :name marker is read",
        ),
        (
            r#"version: "a\"b" # {"$upkeep": "a:b"}"#,
            Marker(Some("version"), "a\"b", Double, Version, "a:b"),
            "escaped quote inside a double-quoted value",
        ),
        (
            r#"v: "\é1.2.3" # {"$upkeep": "a:b"}"#,
            Error("InvalidYaml"),
            "an unknown escape (before a multi-byte character: the line reader must not panic) \
             is not YAML, so the file's markers are left alone",
        ),
        (
            r#"# version: 1.2.3 # {"$upkeep": "a:b"}"#,
            Nothing,
            "commented-out line",
        ),
        (
            r#"  note: 'a # {"$upkeep": "x:y"}'"#,
            Nothing,
            "marker text inside a quoted value",
        ),
        (
            r#"version: 1.2.3#{"upkeep"}"#,
            Nothing,
            "no marker word at all",
        ),
        (
            "version: 1.2.3 # see $upkeep docs",
            Error("MalformedMarker"),
            "comment names the marker but is not its JSON",
        ),
        (
            r#"version: 1.2.3 # {"$upkeep": ns:app}"#,
            Error("MalformedMarker"),
            "unquoted reference",
        ),
        (
            r#"version: 1.2.3 # {"$upkeep": "a:b"} keep"#,
            Error("MalformedMarker"),
            "prose after the marker",
        ),
        (
            r#"version: 1.2.3 # {"$upkeep": "${NS}:app"}"#,
            Error("UnresolvedVariable"),
            "unresolved substitution in the reference",
        ),
        (
            r#"version: ${VERSION} # {"$upkeep": "a:b"}"#,
            Error("VariableValue"),
            "the value itself is a substitution",
        ),
        (
            r#"version: 1.2.3 # {"$upkeep": "justname"}"#,
            Error("BadReference"),
            "no namespace",
        ),
        (
            r#"version: 1.2.3 # {"$upkeep": "a:b:tag"}"#,
            Error("BadReference"),
            ":tag belongs to $imagepolicy only",
        ),
        (
            r#"version: 1.2.3 # {"$imagepolicy": "a:b:digests"}"#,
            Error("BadReference"),
            "unknown Flux suffix",
        ),
        (
            r#"version: 1.2.3 # {"$upkeep": ":b"}"#,
            Error("BadReference"),
            "empty namespace",
        ),
        (
            r#"version: 29.1.0 # {"$upkeep": "cluster:org-acme/a/b"}"#,
            Error("BadReference"),
            "a cluster reference with two slashes names no cluster",
        ),
        (
            r#"version: 29.1.0 # {"$upkeep": "cluster:/dev01"}"#,
            Error("BadReference"),
            "a cluster reference without a namespace",
        ),
        (
            r#"version: 29.1.0 # {"$upkeep": "cluster:org-acme/"}"#,
            Error("BadReference"),
            "a cluster reference without a name",
        ),
        (
            r#"  cluster_release: "29.1.0" # {"$upkeep": "cluster:org-acme/dev01"}"#,
            Marker(
                Some("cluster_release"),
                "29.1.0",
                Double,
                MarkerForm::Cluster,
                "org-acme:dev01",
            ),
            "a cluster marker on a Flux substitution variable",
        ),
        (
            r#"  version: 29.1.0 # {"$upkeep": "cluster:${namespace}/dev01"}"#,
            Error("UnresolvedVariable"),
            "a cluster marker naming a variable",
        ),
        (
            r#"version: "1.2.3" x # {"$upkeep": "a:b"}"#,
            Error("Unreadable"),
            "junk after a quoted value",
        ),
        (
            r#"a: b: c # {"$upkeep": "a:b"}"#,
            Error("Unreadable"),
            "a plain value cannot hold ': '",
        ),
        (
            r##"version: "1.2.3"# {"$upkeep": "a:b"}"##,
            Error("Unreadable"),
            "a comment needs whitespace before '#'",
        ),
        (
            r#"version: "1.2.3 # {"$upkeep": "a:b"}"#,
            Error("Unreadable"),
            "unclosed quote",
        ),
    ];
    for (line, want, reason) in cases {
        for (text, ending) in [((*line).to_owned(), "LF"), (format!("{line}\r\n"), "CRLF")] {
            let (found, errors) = find_markers(&text);
            let ctx = format!("{reason} ({ending}): {line}");
            match want {
                Nothing => assert!(
                    found.is_empty() && errors.is_empty(),
                    "{ctx}: {found:?} {errors:?}"
                ),
                Error(kind) => {
                    assert!(found.is_empty(), "{ctx}: found {found:?}");
                    assert_eq!(errors.len(), 1, "{ctx}: {errors:?}");
                    assert_eq!(errors[0].kind(), *kind, "{ctx}: {}", errors[0]);
                    assert_eq!(errors[0].line(), 1, "{ctx}");
                }
                Marker(key, value, quote, field, reference) => {
                    assert!(errors.is_empty(), "{ctx}: {errors:?}");
                    assert_eq!(found.len(), 1, "{ctx}");
                    let m = &found[0];
                    assert_eq!(m.key.as_deref(), *key, "{ctx}");
                    assert_eq!(m.value, *value, "{ctx}");
                    assert_eq!(m.quote, *quote, "{ctx}");
                    assert_eq!(m.form, *field, "{ctx}");
                    assert_eq!(format!("{}:{}", m.namespace, m.policy), *reference, "{ctx}");
                    if !value.contains('"') {
                        assert_eq!(&text[m.value_range.clone()], *value, "{ctx}: range");
                    }
                }
            }
        }
    }
}

#[test]
fn lines_and_documents() {
    let text = "# head\n---\na: 1 # {\"$upkeep\": \"n:a\"}\n---\n---\nb: 2.0.0 # {\"$upkeep\": \"n:b\"}\n...\nc: 3.0.0 # {\"$upkeep\": \"n:c\"}\n";
    let (found, errors) = find_markers(text);
    assert!(errors.is_empty(), "{errors:?}");
    let got: Vec<(usize, usize)> = found.iter().map(|m| (m.line, m.document)).collect();
    // A leading `---` opens document 0; `---` twice makes an empty document; `...` ends one.
    assert_eq!(got, [(3, 0), (6, 2), (8, 3)]);
}

#[test]
fn tag_table() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        (
            r#"i: ghcr.io/a/b:1.2.0 # {"$imagepolicy": "a:b"}"#,
            Some("1.2.0"),
            "tag of image:tag",
        ),
        (
            r#"i: reg:5000/a/b # {"$imagepolicy": "a:b"}"#,
            None,
            "registry port is not a tag",
        ),
        (
            r#"i: a/b:1.2.0@sha256:00ff # {"$imagepolicy": "a:b"}"#,
            Some("1.2.0"),
            "digest is not part of the tag",
        ),
        (
            r#"t: v4 # {"$imagepolicy": "a:b:tag"}"#,
            Some("v4"),
            "a :tag field is its tag",
        ),
        (
            r#"n: a/b # {"$imagepolicy": "a:b:name"}"#,
            None,
            "a :name field has no tag",
        ),
        (
            r#"d: sha256:00ff # {"$imagepolicy": "a:b:digest"}"#,
            None,
            "a :digest field has no tag",
        ),
        (
            r#"v: 1.2.3 # {"$upkeep": "a:b"}"#,
            Some("1.2.3"),
            "whole scalar",
        ),
    ];
    for (text, want, reason) in cases {
        let (found, errors) = find_markers(text);
        assert!(errors.is_empty(), "{reason}: {errors:?}");
        assert_eq!(found[0].tag(), *want, "{reason}");
    }
}

/// Each form writes what Flux's setter of the same name writes (image-automation-controller
/// `internal/update/setters.go`: `LatestRef.String()`, `.Tag`, `.Name`, `.Digest`), replacing
/// the whole scalar; `$upkeep` writes the version.
#[test]
fn forms_write_what_flux_writes() {
    const D: &str = "sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be";
    // (line, update, new scalar or the refusal's kind, reason)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            r#"image: image:v1.0.0 # {"$imagepolicy": "ns:p"}"#,
            "ns:p=index.repo.fake/updated:v1.0.1",
            "index.repo.fake/updated:v1.0.1",
            "bare: the policy's whole reference, its image name included (Flux marked.yaml)",
        ),
        (
            r#"image: image # {"$imagepolicy": "ns:p"}"#,
            "ns:p=image:v1.0.0@sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be",
            "image:v1.0.0@sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be",
            "bare with a digest, over a plain image name (Flux kustomization.yml patch target)",
        ),
        (
            r#"image: app:1.2@sha256:00ff # {"$imagepolicy": "ns:p"}"#,
            "ns:p=app:1.3",
            "app:1.3",
            "bare: the old digest goes when the policy reflects none",
        ),
        (
            r#"newTag: v1 # {"$imagepolicy": "ns:p:tag"}"#,
            "ns:p=index.repo.fake/updated:v1.0.1",
            "v1.0.1",
            ":tag",
        ),
        (
            r#"newName: replaced # {"$imagepolicy": "ns:p:name"}"#,
            "ns:p=index.repo.fake/updated:v1.0.1",
            "index.repo.fake/updated",
            ":name",
        ),
        (
            r#"newDigest: sha256:1234567890abcdef # {"$imagepolicy": "ns:p:digest"}"#,
            "ns:p=image:v1.0.0@sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be",
            D,
            ":digest (Flux kustomization.yml)",
        ),
        (
            r#"version: 0.1.0 # {"$upkeep": "ns:p"}"#,
            "ns:p=ghcr.io/x/chart:0.1.2",
            "0.1.2",
            "$upkeep: the version, whatever the source",
        ),
        (
            r#"image: app:1.0 # {"$imagepolicy": "ns:p"}"#,
            "ns:p=1.1",
            "MissingPart",
            "bare with no image name (a Helm repository source)",
        ),
        (
            r#"n: app # {"$imagepolicy": "ns:p:name"}"#,
            "ns:p=1.1",
            "MissingPart",
            ":name with no image name",
        ),
        (
            r#"d: sha256:00 # {"$imagepolicy": "ns:p:digest"}"#,
            "ns:p=app:1.1",
            "MissingPart",
            ":digest when the policy reflects no digest",
        ),
        (
            r#"version: 0.1.0 # {"$imagepolicy": "ns:p"}"#,
            "ns:p=app:0.1.2",
            "WrongShape",
            "issue 12: bare marker on an App CR version would write app:0.1.2",
        ),
        (
            r#"tag: v4@sha256:00ff # {"$imagepolicy": "ns:p:tag"}"#,
            "ns:p=app:v5",
            "WrongShape",
            ":tag on a value with a digest would drop the pin",
        ),
        (
            r#"tag: app:v4 # {"$imagepolicy": "ns:p:tag"}"#,
            "ns:p=app:v5",
            "WrongShape",
            ":tag on a whole reference would lose the image name",
        ),
        (
            r#"v: reg/app:1.0 # {"$upkeep": "ns:p"}"#,
            "ns:p=1.1",
            "WrongShape",
            "$upkeep on a whole reference would lose the image name",
        ),
        (
            r#"n: app:v1 # {"$imagepolicy": "ns:p:name"}"#,
            "ns:p=app:v2",
            "WrongShape",
            ":name on a value with a tag",
        ),
        (
            r#"d: v1 # {"$imagepolicy": "ns:p:digest"}"#,
            "ns:p=app:v2@sha256:00",
            "WrongShape",
            ":digest on a tag",
        ),
        (
            r#"image: "" # {"$imagepolicy": "ns:p"}"#,
            "ns:p=app:v2",
            "app:v2",
            "an empty value is a placeholder",
        ),
        (
            r#"image: nginx # {"$imagepolicy": "ns:p"}"#,
            "ns:p=nginx:1.27",
            "nginx:1.27",
            "a plain image name is a reference without a tag, not a version",
        ),
    ];
    for (line, update, want, reason) in cases {
        let text = format!("{line}\n");
        let u = Update::parse(update).unwrap_or_else(|| panic!("{reason}: {update}"));
        let e = apply(&text, &[u]).unwrap();
        if want.chars().next().is_some_and(char::is_uppercase) {
            let kinds: Vec<&str> = e.refused.iter().map(MarkerError::kind).collect();
            assert_eq!(kinds, [*want], "{reason}");
            assert!(e.refused[0].hint().is_some(), "{reason}: no hint");
            assert_eq!(e.text, text, "{reason}: unchanged");
        } else {
            assert!(e.refused.is_empty(), "{reason}: {:?}", e.refused);
            let (found, _) = find_markers(&e.text);
            assert_eq!(found[0].value, *want, "{reason}");
            assert_eq!(e.changes[0].new, *want, "{reason}: change record");
            assert_eq!(
                e.changes[0].old,
                find_markers(&text).0[0].value,
                "{reason}: the old value as in the file"
            );
        }
    }
}

/// The hints name the form to use instead.
#[test]
fn shape_hints() {
    let text = "version: 0.1.0 # {\"$imagepolicy\": \"flux-system:app\"}\n";
    let e = apply(
        text,
        &[Update::parse("flux-system:app=r/app:0.1.2").unwrap()],
    )
    .unwrap();
    assert!(
        e.refused[0]
            .hint()
            .unwrap()
            .contains(r#"did you mean "flux-system:app:tag"?"#),
        "{:?}",
        e.refused[0].hint()
    );
    let text = "tag: r/app:v1 # {\"$imagepolicy\": \"flux-system:app:tag\"}\n";
    let e = apply(text, &[Update::parse("flux-system:app=r/app:v2").unwrap()]).unwrap();
    assert!(
        e.refused[0]
            .hint()
            .unwrap()
            .contains(r#"did you mean "flux-system:app"?"#),
        "{:?}",
        e.refused[0].hint()
    );
    let text = "d: sha256:00 # {\"$imagepolicy\": \"flux-system:app:digest\"}\n";
    let e = apply(text, &[Update::parse("flux-system:app=r/app:v2").unwrap()]).unwrap();
    assert!(
        e.refused[0]
            .hint()
            .unwrap()
            .contains("digestReflectionPolicy"),
        "{:?}",
        e.refused[0].hint()
    );
}

/// The fields of one policy in a file are written together or not at all: a kustomize
/// `newTag` moved without its `newDigest` would deploy a mismatched pair. Other policies'
/// fields are still written.
#[test]
fn one_policy_is_written_together() {
    let text = "images:\n- name: app\n  newTag: v1 # {\"$imagepolicy\": \"ns:p:tag\"}\n  newDigest: sha256:00 # {\"$imagepolicy\": \"ns:p:digest\"}\n- name: other\n  newTag: v1 # {\"$imagepolicy\": \"ns:q:tag\"}\n";
    // No digest reflected: the digest field cannot be written, so neither is the tag.
    let e = apply(
        text,
        &[
            Update::parse("ns:p=r/app:v2").unwrap(),
            Update::parse("ns:q=r/other:v2").unwrap(),
        ],
    )
    .unwrap();
    let refused: Vec<(&str, usize)> = e.refused.iter().map(|e| (e.kind(), e.line())).collect();
    assert_eq!(refused, [("HeldTogether", 3), ("MissingPart", 4)]);
    assert!(
        e.refused[0].to_string().contains("held with line 4"),
        "{}",
        e.refused[0]
    );
    let changed: Vec<usize> = e.changes.iter().map(|c| c.line).collect();
    assert_eq!(changed, [6], "the other policy's field still changes");
    // With a digest both change.
    let e = apply(text, &[Update::parse("ns:p=r/app:v2@sha256:11").unwrap()]).unwrap();
    assert!(e.refused.is_empty(), "{:?}", e.refused);
    assert_eq!(e.changes.len(), 2);
    // A structural refusal holds the policy's other fields too.
    let text = "a: \"1.0\n  .0\" # {\"$upkeep\": \"ns:p\"}\nb: 1.0.0 # {\"$upkeep\": \"ns:p\"}\n";
    let e = apply(text, &[Update::parse("ns:p=2.0.0").unwrap()]).unwrap();
    let refused: Vec<(&str, usize)> = e.refused.iter().map(|e| (e.kind(), e.line())).collect();
    assert_eq!(refused, [("MultiLineScalar", 2), ("HeldTogether", 3)]);
    assert!(!e.is_changed());
}

#[test]
fn plain_scalars_keep_their_type() {
    // (new version, accepted as a plain scalar?, reason)
    let cases: &[(&str, bool, &str)] = &[
        ("1.2.3", true, "semver is a string"),
        ("v1.10", true, "a prefix keeps it a string"),
        ("1.10.0", true, "three parts are not a float"),
        ("1.2.3-rc.1+build.5", true, "prerelease and build metadata"),
        ("1.10", false, "float 1.1"),
        ("10", false, "integer"),
        ("20240101", false, "CalVer date is an integer"),
        ("1e5", false, "exponent float"),
        ("0x1F", false, "hex integer"),
        ("1:20", false, "YAML 1.1 sexagesimal"),
        ("yes", false, "YAML 1.1 boolean"),
        ("null", false, "null"),
        ("-1.2.3", false, "leading '-' is a sequence indicator"),
        ("1.2.3 # x", false, "a space would start a comment"),
        ("a:", false, "trailing ':' is a mapping indicator"),
        ("", false, "empty is null"),
    ];
    let text = "version: 1.0.0 # {\"$upkeep\": \"a:b\"}\n";
    let (found, _) = find_markers(text);
    for (version, ok, reason) in cases {
        let got = set_value(text, &found[0], version);
        assert_eq!(got.is_ok(), *ok, "{reason}: {version:?} -> {got:?}");
        if let Err(e) = got {
            assert_eq!(e.kind(), "Unrepresentable", "{reason}");
            assert!(
                e.hint().is_some(),
                "{reason}: plain refusals say how to quote"
            );
        }
    }
}

#[test]
fn quoted_scalars_escape() {
    // (text, new version, expected text, reason)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "v: '1' # {\"$upkeep\": \"a:b\"}\n",
            "it's",
            "v: 'it''s' # {\"$upkeep\": \"a:b\"}\n",
            "single quote doubled",
        ),
        (
            "v: \"1\" # {\"$upkeep\": \"a:b\"}\n",
            "a\"b\\c",
            "v: \"a\\\"b\\\\c\" # {\"$upkeep\": \"a:b\"}\n",
            "double quote and backslash escaped",
        ),
    ];
    for (text, version, want, reason) in cases {
        let (found, _) = find_markers(text);
        assert_eq!(
            set_value(text, &found[0], version).as_deref(),
            Ok(*want),
            "{reason}"
        );
        let (again, _) = find_markers(want);
        assert_eq!(again[0].value, *version, "{reason}: reads back");
    }
    let text = "v: '1' # {\"$upkeep\": \"a:b\"}\n";
    let (found, _) = find_markers(text);
    assert!(
        set_value(text, &found[0], "a\nb").is_err(),
        "a line break cannot be written into a one-line scalar"
    );
}

#[test]
fn apply_contract() {
    let text = "a: 1.0.0 # {\"$upkeep\": \"n:a\"}\nb: 1.0.0 # {\"$upkeep\": \"n:b\"}\nc: reg/x # {\"$imagepolicy\": \"n:a:name\"}\n";
    let up = |s: &'static str| Update::parse(s).unwrap();

    let e = apply(text, &[up("n:a=reg/x:1.1.0")]).unwrap();
    assert_eq!(
        e.changes.len(),
        1,
        "only the named policy changes; its :name field already holds the name"
    );
    assert_eq!(
        (
            e.changes[0].line,
            e.changes[0].old.as_str(),
            e.changes[0].new.as_str()
        ),
        (1, "1.0.0", "1.1.0")
    );
    assert_eq!(&e.text[e.changes[0].range.clone()], "1.1.0");
    assert_eq!(&text[e.changes[0].original_range.clone()], "1.0.0");

    let e = apply(text, &[up("n:a=reg/x:1.0.0")]).unwrap();
    assert!(!e.is_changed(), "same version: no change");
    assert!(
        matches!(e.text, std::borrow::Cow::Borrowed(_)),
        "unchanged text is borrowed"
    );

    let e = apply("plain: file\n", &[up("n:a=2.0.0")]).unwrap();
    assert!(
        matches!(e.text, std::borrow::Cow::Borrowed(_)),
        "fast rejection borrows"
    );

    let e = apply(text, &[up("n:a=reg/x:1.10"), up("n:b=2.0.0")]).unwrap();
    let refused: Vec<(&str, usize)> = e.refused.iter().map(|r| (r.kind(), r.line())).collect();
    assert_eq!(
        refused,
        [("Unrepresentable", 1)],
        "a plain 1.10 would be a float: that field is refused"
    );
    let changed: Vec<usize> = e.changes.iter().map(|c| c.line).collect();
    assert_eq!(changed, [2], "per field: b is still changed");
    assert!(e.text.starts_with("a: 1.0.0 # "), "a is unchanged");

    let bad = format!("{text}d: 1 # {{\"$upkeep\": \"${{X}}:a\"}}\n");
    let e = apply(&bad, &[up("n:b=2.0.0")]).unwrap();
    assert_eq!(e.refused.len(), 1, "{:?}", e.refused);
    assert!(
        e.refused[0].to_string().contains("line 4"),
        "{}",
        e.refused[0]
    );
    assert_eq!(
        e.changes.len(),
        1,
        "an unreadable marker holds only its own line"
    );
}

#[test]
fn update_parse_table() {
    type Parts<'a> = Option<(&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>)>;
    let cases: &[(&str, Parts<'_>, &str)] = &[
        (
            "flux-system:podinfo=6.7.0",
            Some(("flux-system", "podinfo", "6.7.0", None, None)),
            "a version alone: a source with no image name",
        ),
        (
            "a:b=v1=x",
            Some(("a", "b", "v1=x", None, None)),
            "only the first '=' splits",
        ),
        (
            "a:b=index.repo.fake/updated:v1.0.1",
            Some(("a", "b", "v1.0.1", Some("index.repo.fake/updated"), None)),
            "a whole reference, as Flux's LatestRef prints it",
        ),
        (
            "a:b=reg:5000/app:v2@sha256:00ff",
            Some(("a", "b", "v2", Some("reg:5000/app"), Some("sha256:00ff"))),
            "a registry port and a digest",
        ),
        (
            "a:b=1.2.3@sha256:00ff",
            Some(("a", "b", "1.2.3", None, Some("sha256:00ff"))),
            "a version and a digest",
        ),
        ("a:b=reg:5000/app", None, "an image name with no tag"),
        ("a:b=app:", None, "an empty tag"),
        ("ab=1", None, "no namespace"),
        ("a:b=", None, "no version"),
        ("a:b", None, "no '='"),
    ];
    for (s, want, reason) in cases {
        let got = Update::parse(s).map(|u| (u.namespace, u.policy, u.version, u.image, u.digest));
        assert_eq!(got, *want, "{reason}");
    }
}

#[test]
fn fast_rejection() {
    assert!(
        !may_have_markers("version: 1.2.3 # {\"upkeep\": \"a:b\"}\n"),
        "no '$' word"
    );
    assert!(
        may_have_markers("x: 1 # {\"$imagepolicy\": \"a:b\"}"),
        "Flux word"
    );
    let big = "key: value\n".repeat(100_000);
    let (found, errors) = find_markers(&big);
    assert!(found.is_empty() && errors.is_empty());
}

/// The shapes a line cannot show, each refused per field with its line and a hint: issue 11's
/// corrupting cases first, then every structural error. A safe field of another policy appended
/// to the same text still changes (per policy, not per file), unless the whole file cannot be
/// parsed; a safe field of the same policy is held with it.
#[test]
fn unsafe_fields_are_refused_per_field() {
    const M: &str = r#" # {"$upkeep": "ns:p"}"#;
    let deep = format!("v: 1.0.0{M}\nx: {}{}\n", "[".repeat(1000), "]".repeat(1000));
    // (text, kind, line, does the safe sibling still change?, reason)
    let cases: Vec<(String, &str, usize, bool, &str)> = vec![
        (
            format!("version: \"6.5\n    .4\"{M}\n"),
            "MultiLineScalar",
            2,
            true,
            "issue 11: a double-quoted scalar over two lines, marker on the last; the edit left an unclosed quote",
        ),
        (
            format!("version: 6.5\n  6.5.4{M}\n"),
            "MultiLineScalar",
            2,
            true,
            "issue 11: a plain scalar over two lines; the value became \"6.5 6.7.0-rc.2\"",
        ),
        (
            format!("a: 'start\n  version: 1.0.0{M}\n  end'\n"),
            "MultiLineScalar",
            2,
            true,
            "marker text inside a multi-line single-quoted string is not a field",
        ),
        (
            format!("? version{M}\n: 6.5.4\n"),
            "ExplicitKey",
            1,
            true,
            "issue 11: a marker after an explicit key; the key was overwritten and the file broke",
        ),
        (
            format!("? version\n: 6.5.4{M}\n"),
            "ExplicitKey",
            2,
            true,
            "the value of an explicit key",
        ),
        (
            format!("x: {{? version : 6.5.4}}{M}\n"),
            "ExplicitKey",
            1,
            true,
            "an explicit key inside a flow mapping",
        ),
        (
            format!("? [a, b]\n: 6.5.4{M}\n"),
            "ExplicitKey",
            2,
            true,
            "the value of a complex (collection) key",
        ),
        (
            format!("x:\n  - ? a : 6.5.4{M}\n"),
            "ExplicitKey",
            2,
            true,
            "a compact mapping after `? `: the value of a key that is part of a key",
        ),
        (
            format!("? - a\n  - 6.5.4{M}\n: v\n"),
            "NotAValue",
            2,
            true,
            "an item of a sequence that is itself a mapping key",
        ),
        (
            format!("base: &v 1.0.0{M}\ncopy: *v\n"),
            "AnchoredScalar",
            1,
            true,
            "an anchored value: its alias would change with it",
        ),
        (
            format!("base: &v 1.0.0{M}\n"),
            "AnchoredScalar",
            1,
            true,
            "an anchored value is an alias target even before an alias is written",
        ),
        (
            format!("d: &d\n  tag: 1.0.0{M}\nu:\n  <<: *d\n"),
            "AnchoredScalar",
            2,
            true,
            "inside an anchored mapping that a merge key repeats",
        ),
        (
            format!("p: >\n  v: 1.0.0{M}\n"),
            "BlockScalar",
            2,
            true,
            "a folded block scalar joins lines: its text is not YAML line by line",
        ),
        (
            format!("p: |\n  v: &a 1.0.0{M}\n  w: *a\n"),
            "AnchoredScalar",
            2,
            true,
            "embedded YAML follows the same rules: an anchored value in a literal block",
        ),
        (
            format!("p: |\n  v: 1.0.0{M}\n  - x\n"),
            "InvalidYaml",
            2,
            true,
            "a literal block whose text is not YAML cannot be verified",
        ),
        (
            format!("a: [\nv: 1.0.0{M}\n"),
            "InvalidYaml",
            2,
            false,
            "a file that does not parse: nothing in it is edited",
        ),
        (
            deep,
            "TooDeep",
            1,
            false,
            "collections nested deeper than 1000 levels are refused before any deep work",
        ),
        (
            format!("v: \"\\x41\"{M}\n"),
            "Misread",
            1,
            true,
            "an escape the line reader keeps as written but YAML decodes (\\x41 is A)",
        ),
        (
            format!("x: {{a: 1,\n  b: 1.0.0}}{M}\n"),
            "Misread",
            2,
            true,
            "the second line of a flow mapping: the line reader reads `1.0.0}`",
        ),
    ];
    for (text, kind, line, sibling, reason) in &cases {
        let (found, errors) = find_markers(text);
        assert!(found.is_empty(), "{reason}: found {found:?}");
        let got: Vec<(&str, usize)> = errors.iter().map(|e| (e.kind(), e.line())).collect();
        assert_eq!(got, [(*kind, *line)], "{reason}");
        assert!(errors[0].hint().is_some(), "{reason}: no hint");
        assert!(
            errors[0].to_string().starts_with(&format!("line {line}: ")),
            "{reason}: {}",
            errors[0]
        );

        // A field of another policy, and one of the same policy.
        let safe_line = text.lines().count() + 1;
        let with_sibling =
            format!("{text}safe: 1.0.0 # {{\"$upkeep\": \"ns:q\"}}\nmate: 1.0.0{M}\n");
        let e = apply(
            &with_sibling,
            &[
                Update::parse("ns:p=2.0.0").unwrap(),
                Update::parse("ns:q=2.0.0").unwrap(),
            ],
        )
        .unwrap();
        let refused: Vec<(&str, usize)> = e.refused.iter().map(|e| (e.kind(), e.line())).collect();
        assert!(refused.contains(&(*kind, *line)), "{reason}: {refused:?}");
        if *sibling {
            assert!(
                refused.contains(&("HeldTogether", safe_line + 1)),
                "{reason}: the same policy's field is held with it: {refused:?}"
            );
        }
        let changed: Vec<usize> = e.changes.iter().map(|c| c.line).collect();
        if *sibling {
            assert_eq!(
                changed,
                [safe_line],
                "{reason}: the safe field still changes"
            );
            assert_eq!(
                e.text.replace("safe: 2.0.0", "safe: 1.0.0"),
                with_sibling,
                "{reason}: and nothing else"
            );
        } else {
            assert!(changed.is_empty(), "{reason}: {changed:?}");
            assert_eq!(e.text, with_sibling, "{reason}");
        }
    }
}

/// A marker on a line inside a literal block scalar (kustomize `patch: |-`) is read and
/// verified in the block's text: leading blank lines, an indentation indicator, keep chomping,
/// CRLF and a BOM do not move it.
#[test]
fn literal_block_lines_are_edited_in_place() {
    const M: &str = r#" # {"$imagepolicy": "ns:p:tag"}"#;
    let cases: &[(&str, &str)] = &[
        (
            "p: |-\n  - op: replace\n    value: '0.1.8'{M}\n",
            "kustomize JSON6902 patch",
        ),
        (
            "p: |\n\n\n  v: 0.1.8{M}\n  w: x\n",
            "leading blank lines in the block",
        ),
        (
            "p: |2\n     v: \"0.1.8\"{M}\n",
            "an indentation indicator: content indented more",
        ),
        (
            "p: |+\n  v: 0.1.8{M}\n\n\nq: 1\n",
            "keep chomping, trailing blank lines",
        ),
        (
            "\u{feff}p: |\r\n  a:\r\n    v: 0.1.8{M}\r\n",
            "BOM and CRLF",
        ),
        (
            "- |\n  p: |\n    v: 0.1.8{M}\n",
            "YAML in a literal block in a literal block",
        ),
    ];
    for (template, reason) in cases {
        let text = template.replace("{M}", M);
        let e = apply(&text, &[Update::parse("ns:p=0.2.0").unwrap()]).unwrap();
        assert!(e.refused.is_empty(), "{reason}: {:?}", e.refused);
        assert_eq!(e.changes.len(), 1, "{reason}");
        assert_eq!(e.text, text.replace("0.1.8", "0.2.0"), "{reason}");
    }
}

/// Hostile nesting is a clear per-field error, not a stack overflow: 40,000 levels of flow
/// sequences, flow mappings and block sequences (the input sizes of issue 11's 27 s case).
#[test]
fn hostile_nesting_is_refused() {
    const M: &str = r#" # {"$upkeep": "ns:p"}"#;
    let n = 40_000;
    let texts = [
        format!("v: 1.0.0{M}\nx: {}1{}\n", "[".repeat(n), "]".repeat(n)),
        format!("v: 1.0.0{M}\nx: {}1{}\n", "{a: ".repeat(n), "}".repeat(n)),
        format!("v: 1.0.0{M}\nx:\n  {}1\n", "- ".repeat(n)),
    ];
    for text in &texts {
        let (found, errors) = find_markers(text);
        assert!(found.is_empty());
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].kind(), errors[0].line()), ("TooDeep", 1));
        let e = apply(text, &[Update::parse("ns:p=2.0.0").unwrap()]).unwrap();
        assert!(!e.is_changed());
    }
    // 1,000 levels are still read: the limit is "deeper than 1,000".
    let ok = format!("v: 1.0.0{M}\nx: {}1{}\n", "[".repeat(999), "]".repeat(999));
    let e = apply(&ok, &[Update::parse("ns:p=2.0.0").unwrap()]).unwrap();
    assert_eq!(e.changes.len(), 1, "{:?}", e.refused);
}

/// A lone `\r` (a line break to YAML, not to the line reader) inside a flow collection once
/// made the line reader loop forever; now every such line is read or refused.
#[test]
fn lone_carriage_returns_terminate() {
    for text in [
        "x: [\r] # {\"$upkeep\": \"ns:p\"}\n",
        "x: {a: \r} # {\"$upkeep\": \"ns:p\"}\n",
        "x: \r # {\"$upkeep\": \"ns:p\"}\n",
    ] {
        let e = apply(text, &[Update::parse("ns:p=2.0.0").unwrap()]).unwrap();
        assert!(!e.is_changed(), "{text:?}");
    }
}

#[test]
fn cluster_markers_are_left_to_cluster_upgrades() {
    let text = "spec:\n  postBuild:\n    substitute:\n      cluster_name: dev01\n      cluster_release: \"29.1.0\" # {\"$upkeep\": \"cluster:org-acme/dev01\"}\n      app: 1.0.0 # {\"$upkeep\": \"org-acme:dev01\"}\n";
    let read = upkeep_core::manifest::read(text);
    assert_eq!(
        read.markers().len(),
        1,
        "app automation sees only the policy marker"
    );
    assert_eq!(
        read.cluster_markers().len(),
        1,
        "the cluster marker is kept apart"
    );
    assert!(read.errors().is_empty(), "a cluster marker is no error");
    // An app policy whose namespace and name equal the cluster's does not reach the cluster
    // marker: the reference words differ.
    let edited = apply(text, &[Update::version("org-acme", "dev01", "2.0.0")]).expect("applied");
    assert_eq!(edited.changes.len(), 1, "only the app field");
    assert_eq!(edited.changes[0].line, 6);
    assert!(edited.text.contains("cluster_release: \"29.1.0\""));
    // The cluster upgrade writes it through the verified path.
    let marker = &read.cluster_markers()[0];
    assert_eq!(marker.reference(), "cluster:org-acme/dev01");
    let out = set_value(text, marker, "29.2.0").expect("written");
    assert_eq!(
        out,
        text.replace("\"29.1.0\"", "\"29.2.0\""),
        "only the scalar's bytes change"
    );
    let (all, errors) = find_markers(text);
    assert!(errors.is_empty());
    assert_eq!(
        all.iter().map(|m| m.form).collect::<Vec<_>>(),
        [MarkerForm::Cluster, MarkerForm::Version],
        "find_markers lists both, in line order"
    );
    // A refused cluster marker does not hold the policies of the file.
    let anchored = "a: &v 29.1.0 # {\"$upkeep\": \"cluster:org-acme/dev01\"}\nb: *v\nc: 1.0.0 # {\"$upkeep\": \"org-acme:dev01\"}\n";
    let edited = apply(anchored, &[Update::version("org-acme", "dev01", "2.0.0")]).expect("ok");
    assert_eq!(edited.changes.len(), 1, "{edited:?}");
    assert!(edited.refused.is_empty(), "{:?}", edited.refused);
    assert_eq!(find_markers(anchored).1[0].kind(), "AnchoredScalar");
}
