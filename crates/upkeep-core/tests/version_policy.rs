//! Policies: semver/alphabetical/numerical selection, filterTags with extract,
//! minimumReleaseAge, pins, and the explanation of every rejection.
// Table rows are tuples on purpose (one row per line, reason last); naming each tuple type
// would hide the table's shape.
#![allow(clippy::type_complexity, clippy::many_single_char_names)]

use jiff::{SignedDuration, Timestamp};
use upkeep_core::version::{
    Constraints, FilterError, Held, Order, Policy, PolicyKind, Rejection, TagFilter, TagInfo,
};

fn now() -> Timestamp {
    "2025-06-01T12:00:00Z".parse().unwrap()
}

fn tags<'a>(names: &[&'a str]) -> Vec<TagInfo<'a>> {
    // Everything was seen long ago unless a test says otherwise.
    let old: Timestamp = "2020-01-01T00:00:00Z".parse().unwrap();
    names
        .iter()
        .map(|t| TagInfo {
            tag: t,
            first_seen: Some(old),
        })
        .collect()
}

fn semver(range: &str) -> Policy {
    Policy::new(PolicyKind::SemverRange(Constraints::parse(range).unwrap()))
}

#[test]
fn select_by_kind() {
    // (policy, tags, selected, considered, ignored, reason)
    let cases: Vec<(Policy, Vec<&str>, Option<&str>, usize, usize, &str)> = vec![
        (
            semver(">=1.0.0"),
            vec!["1.0.0", "1.2.0", "1.10.0", "1.9.9"],
            Some("1.10.0"),
            4,
            0,
            "highest by precedence, not by text",
        ),
        (
            semver("^1.2"),
            vec!["v1.2.0", "v1.3.1", "v2.0.0", "latest", "1.3"],
            Some("v1.3.1"),
            3,
            2,
            "range excludes 2.x; non-strict tags ignored; v kept",
        ),
        (
            semver("*"),
            vec!["1.0.0", "2.0.0-rc.1"],
            Some("1.0.0"),
            2,
            0,
            "`*` skips prereleases",
        ),
        (
            semver(">=2.0.0-0"),
            vec!["1.0.0", "2.0.0-rc.1"],
            Some("2.0.0-rc.1"),
            2,
            0,
            "a prerelease bound admits prereleases",
        ),
        (
            semver(">=3"),
            vec!["1.0.0", "2.0.0"],
            None,
            2,
            0,
            "nothing in range",
        ),
        (semver("*"), vec![], None, 0, 0, "no tags"),
        (
            semver("*"),
            vec!["v1.2.3", "1.2.3"],
            Some("v1.2.3"),
            2,
            0,
            "equal precedence: first listed wins",
        ),
        (
            Policy::new(PolicyKind::Alphabetical(Order::Asc)),
            vec!["a", "c", "b"],
            Some("c"),
            3,
            0,
            "Asc picks the last in byte order",
        ),
        (
            Policy::new(PolicyKind::Alphabetical(Order::Desc)),
            vec!["b", "a", "c"],
            Some("a"),
            3,
            0,
            "Desc picks the first in byte order",
        ),
        (
            Policy::new(PolicyKind::Alphabetical(Order::Asc)),
            vec!["Z", "a"],
            Some("a"),
            2,
            0,
            "bytes: lowercase above uppercase",
        ),
        (
            Policy::new(PolicyKind::Alphabetical(Order::Asc)),
            vec![
                "RELEASE.2023-01-31T02-24-19Z",
                "RELEASE.2023-02-01T00-00-00Z",
            ],
            Some("RELEASE.2023-02-01T00-00-00Z"),
            2,
            0,
            "timestamp tags",
        ),
        (
            Policy::new(PolicyKind::Numerical(Order::Asc)),
            vec!["1", "10", "9", "x"],
            Some("10"),
            3,
            1,
            "Asc picks the largest number; words ignored",
        ),
        (
            Policy::new(PolicyKind::Numerical(Order::Desc)),
            vec!["3.5", "-1", "2"],
            Some("-1"),
            3,
            0,
            "Desc picks the smallest; negatives and decimals",
        ),
        (
            Policy::new(PolicyKind::Numerical(Order::Asc)),
            vec!["NaN", "1e3", "999"],
            Some("1e3"),
            2,
            1,
            "floats as Go ParseFloat reads them; NaN ignored",
        ),
    ];
    for (policy, names, want, considered, ignored, why) in cases {
        let t = tags(&names);
        let s = policy.select(&t, now());
        assert_eq!(s.selected, want, "{names:?}: {why}");
        assert_eq!(
            (s.considered, s.ignored),
            (considered, ignored),
            "{names:?}: counts ({why})"
        );
        assert_eq!(
            s.held, None,
            "{names:?}: no age limit, nothing held ({why})"
        );
    }
}

#[test]
fn semver_selection_materialises_the_winner() {
    let t = tags(&["v1.2.3", "v1.4.0+build.7"]);
    let s = semver("^1").select(&t, now());
    let v = s.version.expect("a semver winner is materialised");
    assert_eq!(
        v.original(),
        "v1.4.0+build.7",
        "the version keeps the tag text"
    );
    assert_eq!(v.build(), "build.7", "with its build metadata");
    let a = Policy::new(PolicyKind::Alphabetical(Order::Asc)).select(&t, now());
    assert_eq!(a.version, None, "other kinds have no version");
}

#[test]
fn filter_and_extract() {
    // (pattern, extract, policy kind, tags, selected, reason)
    let ts = "^main-[a-f0-9]+-(?P<ts>[0-9]+)$";
    let cases: Vec<(
        &str,
        Option<&str>,
        PolicyKind,
        Vec<&str>,
        Option<&str>,
        &str,
    )> = vec![
        (
            ts,
            Some("$ts"),
            PolicyKind::Numerical(Order::Asc),
            vec!["main-abc-100", "main-def-99", "feature-x-500"],
            Some("main-abc-100"),
            "Flux's classic: order by the extracted timestamp, return the tag",
        ),
        (
            ts,
            Some("${ts}"),
            PolicyKind::Numerical(Order::Asc),
            vec!["main-abc-100", "main-def-200"],
            Some("main-def-200"),
            "`${name}` form",
        ),
        (
            ts,
            None,
            PolicyKind::Alphabetical(Order::Asc),
            vec!["main-abc-100", "main-def-200", "zzz"],
            Some("main-def-200"),
            "no extract: the whole tag is ordered; non-matching ignored",
        ),
        (
            ts,
            Some(""),
            PolicyKind::Alphabetical(Order::Asc),
            vec!["main-abc-9", "main-abc-10"],
            Some("main-abc-9"),
            "empty extract means the whole tag (byte order)",
        ),
        (
            r"^app-(\d+\.\d+\.\d+)$",
            Some("$1"),
            PolicyKind::SemverRange(Constraints::parse("<2").unwrap()),
            vec!["app-1.2.0", "app-1.10.0", "app-2.0.0", "other-1.99.0"],
            Some("app-1.10.0"),
            "numbered group into a semver range",
        ),
        (
            r"^(?P<maj>\d+)-(?P<min>\d+)$",
            Some("${maj}.${min}.0"),
            PolicyKind::SemverRange(Constraints::parse("*").unwrap()),
            vec!["1-2", "1-10", "0-99"],
            Some("1-10"),
            "several groups and literals",
        ),
        (
            r"^v(?P<n>\d+)$",
            Some("$$$n"),
            PolicyKind::Alphabetical(Order::Asc),
            vec!["v1", "v2"],
            Some("v2"),
            "`$$` is a literal dollar",
        ),
    ];
    for (pattern, extract, kind, names, want, why) in cases {
        let mut p = Policy::new(kind);
        p.filter = Some(TagFilter::new(pattern, extract).unwrap_or_else(|e| panic!("{why}: {e}")));
        let t = tags(&names);
        assert_eq!(
            p.select(&t, now()).selected,
            want,
            "{pattern} / {extract:?}: {why}"
        );
    }
}

#[test]
fn filter_errors() {
    let bad = TagFilter::new("^(", None).expect_err("unbalanced");
    assert!(
        matches!(bad, FilterError::InvalidPattern { .. }),
        "unbalanced paren: {bad:?}"
    );
    assert!(
        bad.to_string().contains("^("),
        "message names the pattern: {bad}"
    );
    assert!(bad.hint().is_some(), "hint for a bad pattern");

    // (pattern, extract, missing name, reason)
    let cases: &[(&str, &str, &str, &str)] = &[
        ("^(?P<ts>[0-9]+)$", "$tss", "tss", "a misspelt named group"),
        (
            "^(?P<ts>[0-9]+)$",
            "${version}",
            "version",
            "braced name that does not exist",
        ),
        (
            "^([0-9]+)$",
            "$2",
            "2",
            "a group number beyond the pattern's groups",
        ),
        ("^[0-9]+$", "$ts", "ts", "the pattern has no groups at all"),
    ];
    for &(pattern, extract, name, why) in cases {
        let e = TagFilter::new(pattern, Some(extract)).expect_err(why);
        match &e {
            FilterError::MissingGroup { name: n, .. } => assert_eq!(n, name, "{why}"),
            other @ FilterError::InvalidPattern { .. } => {
                panic!("{why}: expected MissingGroup, got {other:?}")
            }
        }
        assert!(
            e.to_string().contains(name),
            "{why}: message names the group: {e}"
        );
        assert!(e.hint().is_some(), "{why}: has a hint");
    }
    // Go treats a `$` not followed by a name as literal text.
    assert!(
        TagFilter::new("^(?P<a>x)$", Some("$-$a")).is_ok(),
        "`$-` is literal"
    );
}

#[test]
fn minimum_release_age() {
    let n = now();
    let day = SignedDuration::from_hours(24);
    let info = |tag, seen: Option<Timestamp>| TagInfo {
        tag,
        first_seen: seen,
    };
    let t = vec![
        info("1.0.0", Some(n - day * 30)),
        info("1.1.0", Some(n - day * 10)),
        info("1.2.0", Some(n - day * 2)),
        info("1.3.0", None),
    ];
    let mut p = semver("^1");
    p.minimum_release_age = Some(day * 7);
    let s = p.select(&t, n);
    assert_eq!(
        s.selected,
        Some("1.1.0"),
        "the newest tag seen for a week wins"
    );
    assert_eq!(
        s.held,
        Some(Held {
            tag: "1.3.0",
            until: n + day * 7
        }),
        "the best too-young tag is held; unknown first_seen counts as seen now"
    );
    let why = p.explain(&t, n);
    assert_eq!(
        why,
        vec![
            ("1.0.0", Rejection::Outranked),
            ("1.2.0", Rejection::TooYoung { until: n + day * 5 }),
            ("1.3.0", Rejection::TooYoung { until: n + day * 7 }),
        ],
        "explain names every non-selected tag with its reason and date"
    );

    // Exactly at the boundary the tag is old enough.
    let edge = vec![info("2.0.0", Some(n - day * 7))];
    let mut q = semver("*");
    q.minimum_release_age = Some(day * 7);
    assert_eq!(
        q.select(&edge, n).selected,
        Some("2.0.0"),
        "first_seen + age == now is allowed"
    );

    // A too-young tag that ranks below the selection is not "held".
    let low = vec![info("1.0.0", Some(n)), info("2.0.0", Some(n - day * 30))];
    let s = q.select(&low, n);
    assert_eq!(
        (s.selected, s.held),
        (Some("2.0.0"), None),
        "held only when it would win"
    );

    // Everything too young: nothing selected, the best is held.
    let all = vec![info("1.0.0", Some(n)), info("1.1.0", Some(n))];
    let s = q.select(&all, n);
    assert_eq!(s.selected, None, "nothing is old enough");
    assert_eq!(
        s.held.map(|h| h.tag),
        Some("1.1.0"),
        "the best young tag is held"
    );
}

#[test]
fn pins() {
    let t = tags(&["v1.2.3", "v1.3.0", "latest"]);
    // (policy kind, range filter, pin, selected, reason)
    let cases: Vec<(Policy, &str, Option<&str>, &str)> = vec![
        (
            semver("^1"),
            "1.2.3",
            Some("v1.2.3"),
            "a semver pin compares as a version, ignoring the v",
        ),
        (semver("^1"), "v1.2.3", Some("v1.2.3"), "exact tag"),
        (
            semver(">=2"),
            "v1.2.3",
            Some("v1.2.3"),
            "a pin bypasses the range",
        ),
        (semver("^1"), "9.9.9", None, "pinned but absent: nothing"),
        (
            Policy::new(PolicyKind::Alphabetical(Order::Asc)),
            "latest",
            Some("latest"),
            "other kinds: exact string",
        ),
        (
            Policy::new(PolicyKind::Alphabetical(Order::Asc)),
            "1.2.3",
            None,
            "other kinds do not strip the v",
        ),
    ];
    for (mut p, pin, want, why) in cases {
        p.pin = Some(pin.to_owned());
        p.minimum_release_age = Some(SignedDuration::from_hours(24 * 365 * 100));
        let s = p.select(&t, now());
        assert_eq!(s.selected, want, "pin {pin:?}: {why} (age is bypassed too)");
        assert_eq!(s.held, None, "pin {pin:?}: nothing is held under a pin");
        for (tag, r) in p.explain(&t, now()) {
            assert!(
                matches!(r, Rejection::NotPinned | Rejection::Ignored),
                "pin {pin:?}: {tag} must be NotPinned or Ignored, got {r:?} ({why})"
            );
        }
    }
}

#[test]
fn explain_reasons() {
    let t = tags(&["1.0.0", "2.0.0", "1.5.0", "junk", "1.6.0-rc.1"]);
    let p = semver("^1");
    let s = p.select(&t, now());
    assert_eq!(s.selected, Some("1.5.0"), "highest in range");
    assert_eq!(
        p.explain(&t, now()),
        vec![
            ("1.0.0", Rejection::Outranked),
            ("2.0.0", Rejection::OutsideRange),
            ("junk", Rejection::Ignored),
            ("1.6.0-rc.1", Rejection::OutsideRange),
        ],
        "each reason: lower, outside, not a version, prerelease outside a release range"
    );
}
