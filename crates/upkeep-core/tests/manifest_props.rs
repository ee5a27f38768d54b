//! Property tests for [`apply`]: for random files and random edits, the output differs from
//! the input only inside the reported scalar ranges, and reads back as the intended change.

use proptest::prelude::*;
use upkeep_core::manifest::{ApplyError, Edited, MarkerError, Update, apply, find_markers};

const POLICIES: [&str; 3] = ["p0", "p1", "p2"];
const VERSIONS: [&str; 7] = [
    "1.2.3",
    "v2.0.0",
    "10.0.1-rc.1",
    "1.10",
    "it's",
    "a\"b",
    "0.0.1",
];

/// One generated line of a manifest, marked or not.
fn line() -> impl Strategy<Value = String> {
    let indent = "[ ]{0,6}";
    let seq = prop_oneof![Just(""), Just("- "), Just("-   "), Just("- - ")];
    let key = prop_oneof![
        Just(String::new()),
        "[a-zA-Z][a-zA-Z0-9_.-]{0,8}: ".prop_map(|k| k),
        "[a-z]{1,5}".prop_map(|k| format!("\"{k}\": ")),
        "[a-z]{1,5}".prop_map(|k| format!("'{k}':\t")),
    ];
    let version = "[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}";
    let value = (version, 0..7usize).prop_map(|(v, style)| match style {
        0 => v,
        1 => format!("'{v}'"),
        2 => format!("\"{v}\""),
        3 => format!("{{version: {v}}}"),
        4 => format!("[ '{v}' ]"),
        5 => format!("&a {v}"),
        _ => format!("ghcr.io/acme/app:{v}@sha256:00ff"),
    });
    let marker = (0..POLICIES.len(), 0..3usize, "[ ]{1,3}").prop_map(|(p, kind, gap)| {
        let p = POLICIES[p];
        match kind {
            0 => format!("{gap}# {{\"$upkeep\": \"ns:{p}\"}}"),
            1 => format!("{gap}# {{\"$imagepolicy\": \"ns:{p}:tag\"}}"),
            _ => format!("{gap}#{{ \"$imagepolicy\" : \"ns:{p}\" }}"),
        }
    });
    let marked =
        (indent, seq, key, value, marker).prop_map(|(i, s, k, v, m)| format!("{i}{s}{k}{v}{m}"));
    let other = prop_oneof![
        Just(String::new()),
        Just("---".to_owned()),
        Just("...".to_owned()),
        Just("patch: |-".to_owned()),
        Just("# version: 1.0.0 # {\"$upkeep\": \"ns:p0\"}".to_owned()),
        Just("note: 'mentions $upkeep'".to_owned()),
        "[ ]{0,4}[a-z]{1,6}: [a-z0-9 .:/#'\"-]{0,20}",
    ];
    prop_oneof![3 => marked, 2 => other]
}

fn file() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(line(), 0..24),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(lines, crlf, bom, final_break)| {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut s = String::new();
            if bom {
                s.push('\u{feff}');
            }
            s.push_str(&lines.join(eol));
            if final_break {
                s.push_str(eol);
            }
            s
        })
}

fn updates() -> impl Strategy<Value = Vec<(usize, usize)>> {
    prop::collection::vec((0..POLICIES.len(), 0..VERSIONS.len()), 0..4)
}

/// The heart of it: outside the reported ranges, input and output are the same bytes.
fn check_outside_ranges(text: &str, edited: &Edited<'_>) {
    let out: &str = &edited.text;
    let (mut a, mut b) = (0, 0);
    for c in &edited.changes {
        assert!(
            c.original_range.start >= a && c.range.start >= b,
            "ranges in order"
        );
        assert_eq!(
            &text[a..c.original_range.start],
            &out[b..c.range.start],
            "bytes between changes"
        );
        a = c.original_range.end;
        b = c.range.end;
    }
    assert_eq!(&text[a..], &out[b..], "bytes after the last change");
    if edited.changes.is_empty() {
        assert_eq!(text, out);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn edits_stay_inside_reported_ranges(text in file(), ups in updates()) {
        let owned: Vec<Update<'_>> = ups
            .iter()
            .map(|&(p, v)| Update { namespace: "ns", policy: POLICIES[p], version: VERSIONS[v] })
            .collect();
        let (markers, errors) = find_markers(&text);
        match apply(&text, &owned) {
            Ok(edited) => {
                check_outside_ranges(&text, &edited);
                let (after, after_errors) = find_markers(&edited.text);
                prop_assert!(after_errors.is_empty(), "{after_errors:?}");
                prop_assert_eq!(after.len(), markers.len());
                for c in &edited.changes {
                    // The last update for a policy wins.
                    let want = owned.iter().rev().find(|u| u.policy == c.policy).unwrap();
                    prop_assert_eq!(c.new.as_str(), want.version);
                    let m = after.iter().find(|m| m.line == c.line).unwrap();
                    prop_assert_eq!(m.current_version(), want.version);
                }
                // Markers of policies not updated still hold their old values.
                for (m0, m1) in markers.iter().zip(&after) {
                    if !owned.iter().any(|u| u.policy == m0.policy) {
                        prop_assert_eq!(&m0.value, &m1.value);
                    }
                }
            }
            Err(ApplyError::Markers { errors: got }) => {
                // Either the file had unusable markers, or a version did not fit a field.
                let reasons: Vec<&MarkerError> = got.iter().collect();
                prop_assert!(
                    !errors.is_empty() || reasons.iter().all(|e| e.kind() == "Unrepresentable"),
                    "{reasons:?}"
                );
            }
            Err(e @ ApplyError::Verification { .. }) => prop_assert!(false, "{e}"),
        }
    }

    /// Arbitrary text made of YAML's special characters and marker fragments never panics,
    /// and whatever is changed is changed only inside the reported ranges.
    #[test]
    fn arbitrary_text_never_panics(
        pieces in prop::collection::vec(prop_oneof![
            Just("# {\"$upkeep\": \"ns:p0\"}"),
            Just("# {\"$imagepolicy\": \"ns:p1\"}"),
            Just("\n"), Just("\r\n"), Just(" "), Just("\t"), Just(": "), Just("- "),
            Just("'"), Just("\""), Just("\\"), Just("{"), Just("}"), Just("["), Just("]"),
            Just(","), Just("#"), Just("&a "), Just("*a"), Just("!!str "), Just("|"),
            Just("---"), Just("\u{feff}"), Just("é"), Just("${X}"), Just("1.2.3"), Just("v"),
            Just("image:1.0@sha256:ab"), Just("key"),
        ], 0..40),
        v in 0..VERSIONS.len(),
    ) {
        let text: String = pieces.concat();
        let ups = [
            Update { namespace: "ns", policy: "p0", version: VERSIONS[v] },
            Update { namespace: "ns", policy: "p1", version: "9.9.9" },
        ];
        let _ = find_markers(&text);
        match apply(&text, &ups) {
            Ok(edited) => check_outside_ranges(&text, &edited),
            Err(ApplyError::Markers { errors }) => prop_assert!(!errors.is_empty()),
            Err(e @ ApplyError::Verification { .. }) => prop_assert!(false, "{e}"),
        }
    }
}
