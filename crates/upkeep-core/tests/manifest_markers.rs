//! Table tests for reading marker lines and for [`apply`]'s contract, one reason per case.

use upkeep_core::manifest::{
    ApplyError, MarkerField, Quote, Update, apply, find_markers, may_have_markers, set_version,
};

/// What a single line should yield.
#[derive(Debug)]
enum Want {
    /// key, value, quote, field, "ns:policy"
    Marker(
        Option<&'static str>,
        &'static str,
        Quote,
        MarkerField,
        &'static str,
    ),
    /// The error's kind.
    Error(&'static str),
    Nothing,
}

use Want::{Error, Marker, Nothing};

#[test]
fn marker_lines() {
    use MarkerField::{ImageName, ImageWithTag, Version};
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
            Marker(Some("base"), "1.2.3", Plain, Version, "a:b"),
            "anchor before the value",
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
            Marker(
                Some("value"),
                "0.1.8",
                Single,
                Version,
                "flux-system:podinfo",
            ),
            "kustomize patch line inside a block scalar",
        ),
        (
            r#"image: ghcr.io/a/b:1.0@sha256:abcd # {"$imagepolicy": "a:b"}"#,
            Marker(
                Some("image"),
                "ghcr.io/a/b:1.0@sha256:abcd",
                Plain,
                ImageWithTag,
                "a:b",
            ),
            "image reference with a digest",
        ),
        (
            r#"repository: ghcr.io/a/b # {"$imagepolicy": "a:b:name"}"#,
            Marker(Some("repository"), "ghcr.io/a/b", Plain, ImageName, "a:b"),
            "Flux :name marker is read",
        ),
        (
            r#"version: "a\"b" # {"$upkeep": "a:b"}"#,
            Marker(Some("version"), "a\"b", Double, Version, "a:b"),
            "escaped quote inside a double-quoted value",
        ),
        (
            r#"v: "\é1.2.3" # {"$upkeep": "a:b"}"#,
            Marker(Some("v"), "\\é1.2.3", Double, Version, "a:b"),
            "an unknown escape before a multi-byte character is kept as written",
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
            r#"version: 1.2.3 # {"$imagepolicy": "a:b:digest"}"#,
            Error("BadReference"),
            "unknown Flux suffix",
        ),
        (
            r#"version: 1.2.3 # {"$upkeep": ":b"}"#,
            Error("BadReference"),
            "empty namespace",
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
                    assert_eq!(m.field, *field, "{ctx}");
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
fn current_version_table() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"i: ghcr.io/a/b:1.2.0 # {"$imagepolicy": "a:b"}"#,
            "1.2.0",
            "tag of image:tag",
        ),
        (
            r#"i: reg:5000/a/b # {"$imagepolicy": "a:b"}"#,
            "",
            "registry port is not a tag",
        ),
        (
            r#"i: a/b:1.2.0@sha256:00ff # {"$imagepolicy": "a:b"}"#,
            "1.2.0",
            "digest is not part of the version",
        ),
        (
            r#"t: v4@sha256:00ff # {"$imagepolicy": "a:b:tag"}"#,
            "v4",
            "digest after a tag field",
        ),
        (r#"v: 1.2.3 # {"$upkeep": "a:b"}"#, "1.2.3", "whole scalar"),
    ];
    for (text, want, reason) in cases {
        let (found, errors) = find_markers(text);
        assert!(errors.is_empty(), "{reason}: {errors:?}");
        assert_eq!(found[0].current_version(), *want, "{reason}");
    }
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
        let got = set_version(text, &found[0], version);
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
            set_version(text, &found[0], version).as_deref(),
            Ok(*want),
            "{reason}"
        );
        let (again, _) = find_markers(want);
        assert_eq!(again[0].value, *version, "{reason}: reads back");
    }
    let text = "v: '1' # {\"$upkeep\": \"a:b\"}\n";
    let (found, _) = find_markers(text);
    assert!(
        set_version(text, &found[0], "a\nb").is_err(),
        "a line break cannot be written into a one-line scalar"
    );
}

#[test]
fn apply_contract() {
    let text = "a: 1.0.0 # {\"$upkeep\": \"n:a\"}\nb: 1.0.0 # {\"$upkeep\": \"n:b\"}\nc: x # {\"$imagepolicy\": \"n:a:name\"}\n";
    let up = |s: &'static str| Update::parse(s).unwrap();

    let e = apply(text, &[up("n:a=1.1.0")]).unwrap();
    assert_eq!(
        e.changes.len(),
        1,
        "only the named policy changes; :name is never a version"
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

    let e = apply(text, &[up("n:a=1.0.0")]).unwrap();
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

    let err = apply(text, &[up("n:a=1.10"), up("n:b=2.0.0")]).unwrap_err();
    let ApplyError::Markers { errors } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(errors.len(), 1, "all or nothing: b is not changed either");
    assert_eq!((errors[0].kind(), errors[0].line()), ("Unrepresentable", 1));
    assert_eq!(err.kind(), "Markers");

    let bad = format!("{text}d: 1 # {{\"$upkeep\": \"${{X}}:a\"}}\n");
    let err = apply(&bad, &[up("n:b=2.0.0")]).unwrap_err();
    assert!(err.to_string().contains("line 4"), "{err}");
}

#[test]
fn update_parse_table() {
    type Parts<'a> = Option<(&'a str, &'a str, &'a str)>;
    let cases: &[(&str, Parts<'_>, &str)] = &[
        (
            "flux-system:podinfo=6.7.0",
            Some(("flux-system", "podinfo", "6.7.0")),
            "the case.txt form",
        ),
        (
            "a:b=v1=x",
            Some(("a", "b", "v1=x")),
            "only the first '=' splits",
        ),
        ("ab=1", None, "no namespace"),
        ("a:b=", None, "no version"),
        ("a:b", None, "no '='"),
    ];
    for (s, want, reason) in cases {
        let got = Update::parse(s).map(|u| (u.namespace, u.policy, u.version));
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
