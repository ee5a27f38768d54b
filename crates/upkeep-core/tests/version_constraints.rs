//! The Masterminds/semver v3.4 constraint tables (constraints_test.go), ported as table tests.
//!
//! Versions in those tables are read with Masterminds' lenient `NewVersion` (`"1"`, `"1.4"`),
//! so they are parsed here with `Version::parse_lenient`; tags in policies stay strict.
//!
//! Deliberately not ported:
//! - `TestConstraintCheck`'s three `""` rows: they call the private `parseConstraint("")`
//!   (which means `*`); the public `NewConstraint("")` is an error, and so is ours
//!   (`Empty`, tested below).
//! - The exact English of `Validate` messages: we do not produce per-comparator messages.
//!   Every row of those tables is still checked for its verdict (the version must fail).
//! - JSON/text marshalling round trips beyond the normal form (no serde here).
// Table rows are tuples on purpose (one row per line, reason last).
#![allow(clippy::type_complexity)]

use upkeep_core::version::{ConstraintError, Constraints, Op, Version};

fn check(c: &str, v: &str, include_pre: bool) -> bool {
    let cs = Constraints::parse(c)
        .unwrap_or_else(|e| panic!("{c:?} should parse: {e}"))
        .with_prereleases(include_pre);
    let ver = Version::parse_lenient(v).unwrap_or_else(|| panic!("{v:?} should be a version"));
    cs.matches(&ver)
}

fn run(table: &[(&str, &str, bool, &str)], include_pre: bool) {
    let mut failures = Vec::new();
    for &(c, v, want, why) in table {
        let got = check(c, v, include_pre);
        if got != want {
            failures.push(format!("{c:?} vs {v:?}: got {got}, want {want} ({why})"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn upstream_constraint_check() {
    run(UPSTREAM_CONSTRAINT_CHECK, false);
}

#[test]
fn upstream_constraints_check() {
    run(UPSTREAM_CONSTRAINTS_CHECK, false);
}

#[test]
fn upstream_constraints_validate_verdicts() {
    run(UPSTREAM_VALIDATE, false);
    for &(c, v, why) in UPSTREAM_VALIDATE_FAILURES {
        assert!(!check(c, v, false), "{c:?} vs {v:?} must fail: {why}");
    }
    for &(c, v, why) in UPSTREAM_VALIDATE_PRE_FAILURES {
        assert!(!check(c, v, true), "{c:?} vs {v:?} must fail: {why}");
    }
}

#[test]
fn upstream_include_prerelease() {
    run(UPSTREAM_INCLUDE_PRERELEASE, true);
    // Upstream's "normal cases" group: every release-version row behaves the same with
    // prereleases included.
    let releases: Vec<_> = UPSTREAM_CONSTRAINTS_CHECK
        .iter()
        .chain(UPSTREAM_VALIDATE)
        .copied()
        .filter(|(_, v, _, _)| !v.contains('-'))
        .collect();
    run(&releases, true);
}

#[test]
fn upstream_parse_constraint() {
    // (input, operator, bound, reason) — TestParseConstraint, plus bound details.
    let cases: &[(&str, Op, &str, &str)] = &[
        (
            ">= 1.2",
            Op::GreaterOrEqual,
            "1.2.0",
            "space after the operator; missing patch is 0",
        ),
        ("1.0", Op::Equal, "1.0.0", "no operator means `=`"),
        ("<= 1.2", Op::LessOrEqual, "1.2.0", "`<=`"),
        (
            "=< 1.2",
            Op::LessOrEqual,
            "1.2.0",
            "`=<` is an alias of `<=`",
        ),
        (
            "=> 1.2",
            Op::GreaterOrEqual,
            "1.2.0",
            "`=>` is an alias of `>=`",
        ),
        (
            "v1.2",
            Op::Equal,
            "1.2.0",
            "a leading `v` is allowed in ranges",
        ),
        ("=1.5", Op::Equal, "1.5.0", "explicit `=`"),
        ("> 1.3", Op::Greater, "1.3.0", "`>`"),
        ("< 1.4.1", Op::Less, "1.4.1", "`<` with a full version"),
        ("< 40.50.10", Op::Less, "40.50.10", "multi-digit parts"),
        ("~> 1.2", Op::Tilde, "1.2.0", "`~>` is an alias of `~`"),
        ("!=1.2", Op::NotEqual, "1.2.0", "`!=`"),
        (
            "^1.x",
            Op::Caret,
            "1.0.0",
            "a wildcard part becomes 0 in the bound",
        ),
        ("x", Op::Equal, "0.0.0", "a bare wildcard"),
        (
            "1.2.x-beta",
            Op::Equal,
            "1.2.0-beta",
            "the prerelease of a partial version is kept",
        ),
        (
            "1.2.x+build",
            Op::Equal,
            "1.2.0",
            "the build metadata of a partial version is dropped",
        ),
        (
            "1.2.3+build",
            Op::Equal,
            "1.2.3+build",
            "the build metadata of a full version is kept",
        ),
        (
            "=01.02.03",
            Op::Equal,
            "1.2.3",
            "range versions are coerced: leading zeros allowed",
        ),
    ];
    for &(input, op, bound, why) in cases {
        let c = Constraints::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e} ({why})"));
        let alts: Vec<_> = c.alternatives().collect();
        assert_eq!(alts.len(), 1, "{input:?}: {why}");
        assert_eq!(alts[0].len(), 1, "{input:?}: {why}");
        assert_eq!(alts[0][0].op(), op, "{input:?}: {why}");
        assert_eq!(alts[0][0].bound(), bound, "{input:?}: {why}");
    }
    assert!(
        Constraints::parse("foo").is_err(),
        "a word is not a comparator"
    );
}

#[test]
fn upstream_new_constraint_shapes() {
    // (input, Some((alternatives, comparators in the first)) or None for an error, reason)
    let cases: &[(&str, Option<(usize, usize)>, &str)] = &[
        (">= 1.1", Some((1, 1)), "one comparator"),
        (">40.50.60, < 50.70", Some((1, 2)), "comma-separated AND"),
        ("2.0", Some((1, 1)), "bare partial version"),
        (
            "v2.3.5-20161202202307-sha.e8fc5e5",
            Some((1, 1)),
            "long prerelease with a `v`",
        ),
        (">= bar", None, "not a version after the operator"),
        ("BAR >= 1.2.3", None, "text before the comparator"),
        (">= 1.2.3 < 2.0", Some((1, 2)), "space-separated AND"),
        (
            ">= 1.2.3 < 2.0 || => 3.0 < 4",
            Some((2, 2)),
            "space AND inside `||`",
        ),
        (">= 1.2.3, < 2.0", Some((1, 2)), "comma AND"),
        (
            ">= 1.2.3, < 2.0 || => 3.0, < 4",
            Some((2, 2)),
            "comma AND inside `||`",
        ),
        (
            "3 - 4 || => 3.0, < 4",
            Some((2, 2)),
            "a hyphen range becomes two comparators",
        ),
        (
            "12.3.4.1234",
            None,
            "four parts are not a version (issue 185)",
        ),
        (
            "12.23.4.1234",
            None,
            "four parts are not a version (issue 185)",
        ),
        (
            "12.3.34.1234",
            None,
            "four parts are not a version (issue 185)",
        ),
        (
            "12.3.34 ~1.2.3",
            Some((1, 2)),
            "two comparators separated by a space",
        ),
        (
            "12.3.34~ 1.2.3",
            None,
            "an operator glued to the previous version",
        ),
        (
            "1.0.0 - 2.0.0, <=2.0.0",
            Some((1, 3)),
            "hyphen range ANDed with another comparator",
        ),
    ];
    for &(input, want, why) in cases {
        let got = Constraints::parse(input).ok().map(|c| {
            let alts: Vec<_> = c.alternatives().collect();
            (alts.len(), alts[0].len())
        });
        assert_eq!(got, want, "{input:?}: {why}");
    }
}

#[test]
fn upstream_rewrite_range_and_normal_form() {
    // TestRewriteRange: the rewritten text must mean the same as the hyphen range, so both
    // print the same normal form. TestConstraintString/TestTextMarshal: the normal form.
    let cases: &[(&str, &str, &str)] = &[
        ("2 - 3", ">=2 <=3", "a hyphen range is >= low, <= high"),
        (
            "2 - 3, 2 - 3",
            ">=2 <=3 >=2 <=3",
            "two ranges ANDed by a comma",
        ),
        (
            "2 - 3, 4.0.0 - 5.1",
            ">=2 <=3 >=4.0.0 <=5.1",
            "ranges with partial and full versions",
        ),
        (
            "2 - 3 4.0.0 - 5.1",
            ">=2 <=3 >=4.0.0 <=5.1",
            "ranges ANDed by a space",
        ),
        (
            "1.0.0 - 2.0.0 <=2.0.0",
            ">=1.0.0 <=2.0.0 <=2.0.0",
            "range then a comparator",
        ),
        ("*", "*", "wildcard prints as given"),
        (">=1.2.3", ">=1.2.3", "already normal"),
        (">= 1.2.3", ">=1.2.3", "space after the operator is dropped"),
        (
            "2.x,   >=1.2.3 || >4.5.6, < 5.7",
            "2.x >=1.2.3 || >4.5.6 <5.7",
            "commas become spaces",
        ),
        (
            "2.x,   >=1.2.3 || >4.5.6, < 5.7 || >40.50.60, < 50.70",
            "2.x >=1.2.3 || >4.5.6 <5.7 || >40.50.60 <50.70",
            "three alternatives",
        ),
        ("1.2", "1.2", "partial versions print as written"),
        ("1.2.3", "1.2.3", "TestTextMarshal: plain version"),
        ("<=1.2.3", "<=1.2.3", "TestTextMarshal: operator kept"),
        ("1 <=1.2.3", "1 <=1.2.3", "bare major then a comparator"),
        ("1, <=1.2.3", "1 <=1.2.3", "comma dropped"),
        (
            ">1, <=1.2.3",
            ">1 <=1.2.3",
            "comma after a comparator dropped",
        ),
        ("> 1 , <=1.2.3", ">1 <=1.2.3", "space before a comma"),
        (
            "> 1 <=1.2.3",
            ">1 <=1.2.3",
            "TestTextUnmarshal: space after operator",
        ),
        ("=> 1.2", "=>1.2", "the operator prints as written"),
    ];
    for &(input, want, why) in cases {
        let c = Constraints::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(c.normalized(), want, "{input:?}: {why}");
        let again = Constraints::parse(&c.normalized()).expect("normal form parses");
        assert_eq!(
            again.normalized(),
            want,
            "{input:?}: normal form is stable ({why})"
        );
        assert_eq!(
            c.as_str(),
            input,
            "{input:?}: as_str keeps the text as given"
        );
    }
}

#[test]
fn upstream_fuzz_seeds_and_is_x() {
    // FuzzNewConstraint's seed corpus (must never panic) with the verdict upstream gives, and
    // TestIsX expressed through constraints.
    let cases: &[(&str, bool, &str)] = &[
        ("v1.2.3", true, "leading v"),
        (" ", false, "blank"),
        ("......", false, "dots only"),
        ("1", true, "major only"),
        ("1.2.3-beta.1", true, "prerelease"),
        ("1.2.3+foo", true, "build metadata"),
        ("2.3.4-alpha.1+bar", true, "prerelease and build"),
        ("lorem ipsum", false, "words"),
        ("*", true, "wildcard"),
        ("!=1.2.3", true, "not equal"),
        ("^4.5", true, "caret partial"),
        ("1.0.0 - 2", true, "hyphen range"),
        ("1.2.3.4.5.6", false, "too many parts"),
        (">= 1", true, "operator with space"),
        ("~9.8.7", true, "tilde"),
        ("<= 12.13.14", true, "less or equal"),
        ("987654321.123456789.654123789", true, "large numbers"),
        ("1.x", true, "x wildcard"),
        ("2.3.x", true, "patch wildcard"),
        ("9.2-beta.0", true, "partial with prerelease"),
        ("1.X", true, "isX(\"X\")"),
        ("1.*", true, "isX(\"*\")"),
        ("1.A", false, "isX(\"A\") is false, and A is no number"),
        ("1.%", false, "isX(\"%\") is false"),
    ];
    for &(input, ok, why) in cases {
        assert_eq!(Constraints::parse(input).is_ok(), ok, "{input:?}: {why}");
    }
}

#[test]
fn quirks_and_edges() {
    // (constraint, version, expected, reason) — behaviour read from constraints.go v3.4 that
    // the upstream tables do not pin.
    let cases: &[(&str, &str, bool, &str)] = &[
        (
            "^*",
            "1.2.3",
            false,
            "upstream quirk: `^*` is ^0.0.0 with only `dirty` set, i.e. =0.0.0",
        ),
        (
            "^*",
            "0.0.0",
            true,
            "upstream quirk: `^*` still matches 0.0.0",
        ),
        (
            "<=*",
            "0.0.9",
            true,
            "upstream quirk: `<=*` compares major and minor against 0",
        ),
        (
            "<=*",
            "0.9.0",
            false,
            "upstream quirk: `<=*` rejects a minor above 0 (minor not dirty)",
        ),
        (
            "<=*",
            "1.0.0",
            false,
            "upstream quirk: `<=*` rejects any major above 0",
        ),
        ("~*", "0.0.1-rc.1", false, "`*` does not admit prereleases"),
        (
            "*-0",
            "0.0.1-rc.1",
            true,
            "`*-0` names a prerelease and admits them",
        ),
        (">*", "0.0.1", true, "`>*` is >0.0.0"),
        (">*", "0.0.0", false, "`>*` excludes 0.0.0"),
        (
            "!=*",
            "0.0.0",
            false,
            "`!=*` falls through to plain inequality with 0.0.0",
        ),
        (
            "!=*",
            "1.0.0",
            true,
            "`!=*` differs from 0.0.0 in the major",
        ),
        ("<1.x", "0.9.9", true, "`<` ignores the wildcard: <1.0.0"),
        (
            "!=1.2.x-beta",
            "1.2.5-beta",
            false,
            "`!=` on a patch wildcard compares prereleases only",
        ),
        (
            "!=1.2.x-beta",
            "1.2.5-rc",
            true,
            "different prerelease under a patch wildcard",
        ),
        (
            ">=1.0.0-0 <2 || >=3",
            "3.1.0-rc.1",
            false,
            "prerelease admission is per alternative",
        ),
        (
            ">=1.0.0-0 <2 || >=3",
            "1.5.0-rc.1",
            true,
            "the alternative naming a prerelease admits it",
        ),
        (
            "\t>=1.2\n<2 ",
            "1.5.0",
            true,
            "tabs and newlines count as spaces, as Go's \\s",
        ),
        ("^0.0", "0.0.9", true, "^0.0 is <0.1.0"),
        ("^0", "0.9.0", true, "^0 is <1.0.0"),
        (
            "1.2.3+build.5",
            "1.2.3",
            true,
            "build metadata is ignored when comparing",
        ),
        (
            "=18446744073709551615",
            "18446744073709551615.0.0",
            true,
            "u64::MAX is a number",
        ),
    ];
    for &(c, v, want, why) in cases {
        assert_eq!(check(c, v, false), want, "{c:?} vs {v:?}: {why}");
    }
}

#[test]
fn errors_name_the_offending_part() {
    let cases: &[(&str, ConstraintError, &str)] = &[
        (
            "",
            ConstraintError::Empty,
            "empty string (NewConstraint(\"\") fails upstream too)",
        ),
        ("  \t", ConstraintError::Empty, "whitespace only"),
        (
            ">=1.2 ||",
            ConstraintError::EmptyAlternative {
                index: 1,
                constraint: ">=1.2 ||".into(),
            },
            "trailing `||`",
        ),
        (
            ">=1.2 foo",
            ConstraintError::InvalidComparator {
                part: "foo".into(),
                constraint: ">=1.2 foo".into(),
            },
            "the first bad token is named",
        ),
        (
            "12.3.34~ 1.2.3",
            ConstraintError::InvalidComparator {
                part: "~ 1.2.3".into(),
                constraint: "12.3.34~ 1.2.3".into(),
            },
            "an operator glued to the previous version",
        ),
        (
            ">=1.2.3-01",
            ConstraintError::InvalidVersion {
                part: ">=1.2.3-01".into(),
                constraint: ">=1.2.3-01".into(),
                reason: "a numeric prerelease identifier has a leading zero",
            },
            "leading zero in a numeric prerelease identifier",
        ),
    ];
    for (input, want, why) in cases {
        let got = Constraints::parse(input).expect_err(why);
        assert_eq!(&got, want, "{input:?}: {why}");
        assert!(got.hint().is_some(), "{input:?}: every error has a hint");
    }
    let overflow = Constraints::parse(">=18446744073709551616").expect_err("overflow");
    assert!(
        matches!(overflow, ConstraintError::InvalidVersion { .. }),
        "a part beyond u64 is an invalid version, got {overflow:?}"
    );
    let mixed = Constraints::parse("1x.2").expect_err("mixed");
    assert!(
        matches!(mixed, ConstraintError::InvalidVersion { .. }),
        "`1x` matches upstream's lenient grammar but is no number, got {mixed:?}"
    );
    let e = Constraints::parse(">=1.2 foo").unwrap_err();
    assert!(
        e.to_string().contains("\"foo\""),
        "the message quotes the part: {e}"
    );
    assert!(
        e.hint().unwrap().contains("||"),
        "the hint shows how to write alternatives"
    );
}

const UPSTREAM_CONSTRAINT_CHECK: &[(&str, &str, bool, &str)] = &[
    ("=2.0.0", "1.2.3", false, "`=`: 1.2.3 does not match"),
    ("=2.0.0", "2.0.0", true, "`=`: 2.0.0 matches"),
    (
        "=2.0",
        "1.2.3",
        false,
        "`=` with a partial/wildcard version: 1.2.3 does not match",
    ),
    (
        "=2.0",
        "2.0.0",
        true,
        "`=` with a partial/wildcard version: 2.0.0 matches",
    ),
    (
        "=2.0",
        "2.0.1",
        true,
        "`=` with a partial/wildcard version: 2.0.1 matches",
    ),
    (
        "4.1",
        "4.1.0",
        true,
        "bare version with a partial/wildcard version: 4.1.0 matches",
    ),
    ("!=4.1.0", "4.1.0", false, "`!=`: 4.1.0 does not match"),
    ("!=4.1.0", "4.1.1", true, "`!=`: 4.1.1 matches"),
    (
        "!=4.1",
        "4.1.0",
        false,
        "`!=` with a partial/wildcard version: 4.1.0 does not match",
    ),
    (
        "!=4.1",
        "4.1.1",
        false,
        "`!=` with a partial/wildcard version: 4.1.1 does not match",
    ),
    (
        "!=4.1",
        "5.1.0-alpha.1",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        "!=4.1.0",
        "5.1.0-alpha.1",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        "!=4.1-alpha",
        "4.1.0",
        true,
        "`!=` with a partial/wildcard version: 4.1.0 matches",
    ),
    (
        "!=4.1",
        "5.1.0",
        true,
        "`!=` with a partial/wildcard version: 5.1.0 matches",
    ),
    (
        "<11",
        "0.1.0",
        true,
        "`<` with a partial/wildcard version: 0.1.0 matches",
    ),
    (
        "<11",
        "11.1.0",
        false,
        "`<` with a partial/wildcard version: 11.1.0 does not match",
    ),
    (
        "<1.1",
        "0.1.0",
        true,
        "`<` with a partial/wildcard version: 0.1.0 matches",
    ),
    (
        "<1.1",
        "1.1.0",
        false,
        "`<` with a partial/wildcard version: 1.1.0 does not match",
    ),
    (
        "<1.1",
        "1.1.1",
        false,
        "`<` with a partial/wildcard version: 1.1.1 does not match",
    ),
    (
        "<=11",
        "1.2.3",
        true,
        "`<=` with a partial/wildcard version: 1.2.3 matches",
    ),
    (
        "<=11",
        "12.2.3",
        false,
        "`<=` with a partial/wildcard version: 12.2.3 does not match",
    ),
    (
        "<=11",
        "11.2.3",
        true,
        "`<=` with a partial/wildcard version: 11.2.3 matches",
    ),
    (
        "<=1.1",
        "1.2.3",
        false,
        "`<=` with a partial/wildcard version: 1.2.3 does not match",
    ),
    (
        "<=1.1",
        "0.1.0",
        true,
        "`<=` with a partial/wildcard version: 0.1.0 matches",
    ),
    (
        "<=1.1",
        "1.1.0",
        true,
        "`<=` with a partial/wildcard version: 1.1.0 matches",
    ),
    (
        "<=1.1",
        "1.1.1",
        true,
        "`<=` with a partial/wildcard version: 1.1.1 matches",
    ),
    (
        ">1.1",
        "4.1.0",
        true,
        "`>` with a partial/wildcard version: 4.1.0 matches",
    ),
    (
        ">1.1",
        "1.1.0",
        false,
        "`>` with a partial/wildcard version: 1.1.0 does not match",
    ),
    (
        ">0",
        "0",
        false,
        "`>` with a partial/wildcard version: 0 does not match",
    ),
    (
        ">0",
        "1",
        true,
        "`>` with a partial/wildcard version: 1 matches",
    ),
    (
        ">0",
        "0.0.1-alpha",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        ">0.0",
        "0.0.1-alpha",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        ">0-0",
        "0.0.1-alpha",
        false,
        "`>` with a partial/wildcard version: 0.0.1-alpha does not match",
    ),
    (
        ">0.0-0",
        "0.0.1-alpha",
        false,
        "`>` with a partial/wildcard version: 0.0.1-alpha does not match",
    ),
    (
        ">0",
        "0.0.0-alpha",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        ">0-0",
        "0.0.0-alpha",
        false,
        "`>` with a partial/wildcard version: 0.0.0-alpha does not match",
    ),
    (
        ">0.0.0-0",
        "0.0.0-alpha",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        ">1.2.3-alpha.1",
        "1.2.3-alpha.2",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        ">1.2.3-alpha.1",
        "1.3.3-alpha.2",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        ">11",
        "11.1.0",
        false,
        "`>` with a partial/wildcard version: 11.1.0 does not match",
    ),
    (
        ">11.1",
        "11.1.0",
        false,
        "`>` with a partial/wildcard version: 11.1.0 does not match",
    ),
    (
        ">11.1",
        "11.1.1",
        false,
        "`>` with a partial/wildcard version: 11.1.1 does not match",
    ),
    (
        ">11.1",
        "11.2.1",
        true,
        "`>` with a partial/wildcard version: 11.2.1 matches",
    ),
    (
        ">=11",
        "11.1.2",
        true,
        "`>=` with a partial/wildcard version: 11.1.2 matches",
    ),
    (
        ">=11.1",
        "11.1.2",
        true,
        "`>=` with a partial/wildcard version: 11.1.2 matches",
    ),
    (
        ">=11.1",
        "11.0.2",
        false,
        "`>=` with a partial/wildcard version: 11.0.2 does not match",
    ),
    (
        ">=1.1",
        "4.1.0",
        true,
        "`>=` with a partial/wildcard version: 4.1.0 matches",
    ),
    (
        ">=1.1",
        "1.1.0",
        true,
        "`>=` with a partial/wildcard version: 1.1.0 matches",
    ),
    (
        ">=1.1",
        "0.0.9",
        false,
        "`>=` with a partial/wildcard version: 0.0.9 does not match",
    ),
    (
        ">=0",
        "0.0.1-alpha",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        ">=0.0",
        "0.0.1-alpha",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        ">=0-0",
        "0.0.1-alpha",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        ">=0.0-0",
        "0.0.1-alpha",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        ">=0",
        "0.0.0-alpha",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        ">=0-0",
        "0.0.0-alpha",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        ">=0.0.0-0",
        "0.0.0-alpha",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (">=0.0.0-0", "1.2.3", true, "`>=`: 1.2.3 matches"),
    (
        ">=0.0.0-0",
        "3.4.5-beta.1",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        "<0",
        "0.0.0-alpha",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        "<0-z",
        "0.0.0-alpha",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        ">=0",
        "0",
        true,
        "`>=` with a partial/wildcard version: 0 matches",
    ),
    (
        "=0",
        "1",
        false,
        "`=` with a partial/wildcard version: 1 does not match",
    ),
    (
        "*",
        "1",
        true,
        "bare version with a partial/wildcard version: 1 matches",
    ),
    (
        "*",
        "4.5.6",
        true,
        "bare version with a partial/wildcard version: 4.5.6 matches",
    ),
    (
        "*",
        "1.2.3-alpha.1",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        "*-0",
        "1.2.3-alpha.1",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        "2.*",
        "1",
        false,
        "bare version with a partial/wildcard version: 1 does not match",
    ),
    (
        "2.*",
        "3.4.5",
        false,
        "bare version with a partial/wildcard version: 3.4.5 does not match",
    ),
    (
        "2.*",
        "2.1.1",
        true,
        "bare version with a partial/wildcard version: 2.1.1 matches",
    ),
    (
        "2.1.*",
        "2.1.1",
        true,
        "bare version with a partial/wildcard version: 2.1.1 matches",
    ),
    (
        "2.1.*",
        "2.2.1",
        false,
        "bare version with a partial/wildcard version: 2.2.1 does not match",
    ),
    (
        "2",
        "1",
        false,
        "bare version with a partial/wildcard version: 1 does not match",
    ),
    (
        "2",
        "3.4.5",
        false,
        "bare version with a partial/wildcard version: 3.4.5 does not match",
    ),
    (
        "2",
        "2.1.1",
        true,
        "bare version with a partial/wildcard version: 2.1.1 matches",
    ),
    (
        "2.1",
        "2.1.1",
        true,
        "bare version with a partial/wildcard version: 2.1.1 matches",
    ),
    (
        "2.1",
        "2.2.1",
        false,
        "bare version with a partial/wildcard version: 2.2.1 does not match",
    ),
    (
        "~1.2.3",
        "1.2.4",
        true,
        "`~` keeps major.minor: 1.2.4 matches",
    ),
    (
        "~1.2.3",
        "1.3.4",
        false,
        "`~` keeps major.minor: 1.3.4 does not match",
    ),
    (
        "~1.2",
        "1.2.4",
        true,
        "`~` keeps major.minor with a partial/wildcard version: 1.2.4 matches",
    ),
    (
        "~1.2",
        "1.3.4",
        false,
        "`~` keeps major.minor with a partial/wildcard version: 1.3.4 does not match",
    ),
    (
        "~1",
        "1.2.4",
        true,
        "`~` keeps major.minor with a partial/wildcard version: 1.2.4 matches",
    ),
    (
        "~1",
        "2.3.4",
        false,
        "`~` keeps major.minor with a partial/wildcard version: 2.3.4 does not match",
    ),
    (
        "~0.2.3",
        "0.2.5",
        true,
        "`~` keeps major.minor: 0.2.5 matches",
    ),
    (
        "~0.2.3",
        "0.3.5",
        false,
        "`~` keeps major.minor: 0.3.5 does not match",
    ),
    (
        "~1.2.3-beta.2",
        "1.2.3-beta.4",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        "~1.2.3-beta.2",
        "1.2.4-beta.2",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        "~1.2.3-beta.2",
        "1.3.4-beta.2",
        false,
        "`~` keeps major.minor: 1.3.4-beta.2 does not match",
    ),
    (
        "^1.2.3",
        "1.8.9",
        true,
        "`^` keeps the left-most non-zero part: 1.8.9 matches",
    ),
    (
        "^1.2.3",
        "2.8.9",
        false,
        "`^` keeps the left-most non-zero part: 2.8.9 does not match",
    ),
    (
        "^1.2.3",
        "1.2.1",
        false,
        "`^` keeps the left-most non-zero part: 1.2.1 does not match",
    ),
    (
        "^1.1.0",
        "2.1.0",
        false,
        "`^` keeps the left-most non-zero part: 2.1.0 does not match",
    ),
    (
        "^1.2.0",
        "2.2.1",
        false,
        "`^` keeps the left-most non-zero part: 2.2.1 does not match",
    ),
    (
        "^1.2.0",
        "1.2.1-alpha.1",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        "^1.2.0-alpha.0",
        "1.2.1-alpha.1",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        "^1.2.0-alpha.0",
        "1.2.1-alpha.0",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        "^1.2.0-alpha.2",
        "1.2.0-alpha.1",
        false,
        "`^` keeps the left-most non-zero part: 1.2.0-alpha.1 does not match",
    ),
    (
        "^1.2",
        "1.8.9",
        true,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 1.8.9 matches",
    ),
    (
        "^1.2",
        "2.8.9",
        false,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 2.8.9 does not match",
    ),
    (
        "^1",
        "1.8.9",
        true,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 1.8.9 matches",
    ),
    (
        "^1",
        "2.8.9",
        false,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 2.8.9 does not match",
    ),
    (
        "^0.2.3",
        "0.2.5",
        true,
        "`^` keeps the left-most non-zero part: 0.2.5 matches",
    ),
    (
        "^0.2.3",
        "0.5.6",
        false,
        "`^` keeps the left-most non-zero part: 0.5.6 does not match",
    ),
    (
        "^0.2",
        "0.2.5",
        true,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 0.2.5 matches",
    ),
    (
        "^0.2",
        "0.5.6",
        false,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 0.5.6 does not match",
    ),
    (
        "^0.0.3",
        "0.0.3",
        true,
        "`^` keeps the left-most non-zero part: 0.0.3 matches",
    ),
    (
        "^0.0.3",
        "0.0.4",
        false,
        "`^` keeps the left-most non-zero part: 0.0.4 does not match",
    ),
    (
        "^0.0",
        "0.0.3",
        true,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 0.0.3 matches",
    ),
    (
        "^0.0",
        "0.1.4",
        false,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 0.1.4 does not match",
    ),
    (
        "^0.0",
        "1.0.4",
        false,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 1.0.4 does not match",
    ),
    (
        "^0",
        "0.2.3",
        true,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 0.2.3 matches",
    ),
    (
        "^0",
        "1.1.4",
        false,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 1.1.4 does not match",
    ),
    (
        "^0.2.3-beta.2",
        "0.2.3-beta.4",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        "^0.2.3-beta.2",
        "0.2.4-beta.2",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        "^0.2.3-beta.2",
        "0.3.4-beta.2",
        false,
        "`^` keeps the left-most non-zero part: 0.3.4-beta.2 does not match",
    ),
    (
        "^0.2.3-beta.2",
        "0.2.3-beta.2",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
];

const UPSTREAM_CONSTRAINTS_CHECK: &[(&str, &str, bool, &str)] = &[
    (
        "*",
        "1.2.3",
        true,
        "bare version with a partial/wildcard version: 1.2.3 matches",
    ),
    (
        "~0.0.0",
        "1.2.3",
        true,
        "`~` keeps major.minor: 1.2.3 matches",
    ),
    (
        "0.x.x",
        "1.2.3",
        false,
        "bare version with a partial/wildcard version: 1.2.3 does not match",
    ),
    (
        "0.0.x",
        "1.2.3",
        false,
        "bare version with a partial/wildcard version: 1.2.3 does not match",
    ),
    (
        "0.0.0",
        "1.2.3",
        false,
        "bare version: 1.2.3 does not match",
    ),
    (
        "^0.0.0",
        "1.2.3",
        false,
        "`^` keeps the left-most non-zero part: 1.2.3 does not match",
    ),
    (
        "= 2.0",
        "1.2.3",
        false,
        "`=` with a partial/wildcard version: 1.2.3 does not match",
    ),
    (
        "= 2.0",
        "2.0.0",
        true,
        "`=` with a partial/wildcard version: 2.0.0 matches",
    ),
    (
        "4.1",
        "4.1.0",
        true,
        "bare version with a partial/wildcard version: 4.1.0 matches",
    ),
    (
        "4.1.x",
        "4.1.3",
        true,
        "bare version with a partial/wildcard version: 4.1.3 matches",
    ),
    (
        "1.x",
        "1.4",
        true,
        "bare version with a partial/wildcard version: 1.4 matches",
    ),
    (
        "!=4.1",
        "4.1.0",
        false,
        "`!=` with a partial/wildcard version: 4.1.0 does not match",
    ),
    (
        "!=4.1-alpha",
        "4.1.0-alpha",
        false,
        "`!=` with a partial/wildcard version: 4.1.0-alpha does not match",
    ),
    (
        "!=4.1-alpha",
        "4.1.1-alpha",
        false,
        "`!=` with a partial/wildcard version: 4.1.1-alpha does not match",
    ),
    (
        "!=4.1-alpha",
        "4.1.0",
        true,
        "`!=` with a partial/wildcard version: 4.1.0 matches",
    ),
    (
        "!=4.1",
        "5.1.0",
        true,
        "`!=` with a partial/wildcard version: 5.1.0 matches",
    ),
    (
        "!=4.x",
        "5.1.0",
        true,
        "`!=` with a partial/wildcard version: 5.1.0 matches",
    ),
    (
        "!=4.x",
        "4.1.0",
        false,
        "`!=` with a partial/wildcard version: 4.1.0 does not match",
    ),
    (
        "!=4.1.x",
        "4.2.0",
        true,
        "`!=` with a partial/wildcard version: 4.2.0 matches",
    ),
    (
        "!=4.2.x",
        "4.2.3",
        false,
        "`!=` with a partial/wildcard version: 4.2.3 does not match",
    ),
    (
        ">1.1",
        "4.1.0",
        true,
        "`>` with a partial/wildcard version: 4.1.0 matches",
    ),
    (
        ">1.1",
        "1.1.0",
        false,
        "`>` with a partial/wildcard version: 1.1.0 does not match",
    ),
    (
        "<1.1",
        "0.1.0",
        true,
        "`<` with a partial/wildcard version: 0.1.0 matches",
    ),
    (
        "<1.1",
        "1.1.0",
        false,
        "`<` with a partial/wildcard version: 1.1.0 does not match",
    ),
    (
        "<1.1",
        "1.1.1",
        false,
        "`<` with a partial/wildcard version: 1.1.1 does not match",
    ),
    (
        "<1.x",
        "1.1.1",
        false,
        "`<` with a partial/wildcard version: 1.1.1 does not match",
    ),
    (
        "<1.x",
        "0.1.1",
        true,
        "`<` with a partial/wildcard version: 0.1.1 matches",
    ),
    (
        "<1.x",
        "2.0.0",
        false,
        "`<` with a partial/wildcard version: 2.0.0 does not match",
    ),
    (
        "<1.1.x",
        "1.2.1",
        false,
        "`<` with a partial/wildcard version: 1.2.1 does not match",
    ),
    (
        "<1.1.x",
        "1.1.500",
        false,
        "`<` with a partial/wildcard version: 1.1.500 does not match",
    ),
    (
        "<1.1.x",
        "1.0.500",
        true,
        "`<` with a partial/wildcard version: 1.0.500 matches",
    ),
    (
        "<1.2.x",
        "1.1.1",
        true,
        "`<` with a partial/wildcard version: 1.1.1 matches",
    ),
    (
        ">=1.1",
        "4.1.0",
        true,
        "`>=` with a partial/wildcard version: 4.1.0 matches",
    ),
    (
        ">=1.1",
        "4.1.0-beta",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        ">=1.1",
        "1.1.0",
        true,
        "`>=` with a partial/wildcard version: 1.1.0 matches",
    ),
    (
        ">=1.1",
        "0.0.9",
        false,
        "`>=` with a partial/wildcard version: 0.0.9 does not match",
    ),
    (
        "<=1.1",
        "0.1.0",
        true,
        "`<=` with a partial/wildcard version: 0.1.0 matches",
    ),
    (
        "<=1.1",
        "0.1.0-alpha",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        "<=1.1-a",
        "0.1.0-alpha",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        "<=1.1",
        "1.1.0",
        true,
        "`<=` with a partial/wildcard version: 1.1.0 matches",
    ),
    (
        "<=1.x",
        "1.1.0",
        true,
        "`<=` with a partial/wildcard version: 1.1.0 matches",
    ),
    (
        "<=2.x",
        "3.0.0",
        false,
        "`<=` with a partial/wildcard version: 3.0.0 does not match",
    ),
    (
        "<=1.1",
        "1.1.1",
        true,
        "`<=` with a partial/wildcard version: 1.1.1 matches",
    ),
    (
        "<=1.1.x",
        "1.2.500",
        false,
        "`<=` with a partial/wildcard version: 1.2.500 does not match",
    ),
    (
        "<=4.5",
        "3.4.0",
        true,
        "`<=` with a partial/wildcard version: 3.4.0 matches",
    ),
    (
        "<=4.5",
        "3.7.0",
        true,
        "`<=` with a partial/wildcard version: 3.7.0 matches",
    ),
    (
        "<=4.5",
        "4.6.3",
        false,
        "`<=` with a partial/wildcard version: 4.6.3 does not match",
    ),
    (
        ">1.1, <2",
        "1.1.1",
        false,
        "AND group: 1.1.1 fails one comparator",
    ),
    (
        ">1.1, <2",
        "1.2.1",
        true,
        "AND group: 1.2.1 meets every comparator",
    ),
    (
        ">1.1, <3",
        "4.3.2",
        false,
        "AND group: 4.3.2 fails one comparator",
    ),
    (
        ">=1.1, <2, !=1.2.3",
        "1.2.3",
        false,
        "AND group: 1.2.3 fails one comparator",
    ),
    (
        ">1.1 <2",
        "1.1.1",
        false,
        "AND group: 1.1.1 fails one comparator",
    ),
    (
        ">1.1 <2",
        "1.2.1",
        true,
        "AND group: 1.2.1 meets every comparator",
    ),
    (
        ">1.1    <3",
        "4.3.2",
        false,
        "AND group: 4.3.2 fails one comparator",
    ),
    (
        ">=1.1    <2    !=1.2.3",
        "1.2.3",
        false,
        "AND group: 1.2.3 fails one comparator",
    ),
    (
        ">=1.1, <2, !=1.2.3 || > 3",
        "4.1.2",
        true,
        "`||`: 4.1.2 satisfies alternative",
    ),
    (
        ">=1.1, <2, !=1.2.3 || > 3",
        "3.1.2",
        false,
        "`||`: 3.1.2 satisfies no alternative",
    ),
    (
        ">=1.1, <2, !=1.2.3 || >= 3",
        "3.0.0",
        true,
        "`||`: 3.0.0 satisfies alternative",
    ),
    (
        ">=1.1, <2, !=1.2.3 || > 3",
        "3.0.0",
        false,
        "`||`: 3.0.0 satisfies no alternative",
    ),
    (
        ">=1.1, <2, !=1.2.3 || > 3",
        "1.2.3",
        false,
        "`||`: 1.2.3 satisfies no alternative",
    ),
    (
        ">=1.1 <2 !=1.2.3",
        "1.2.3",
        false,
        "AND group: 1.2.3 fails one comparator",
    ),
    (
        ">=1.1 <2 !=1.2.3 || > 3",
        "4.1.2",
        true,
        "`||`: 4.1.2 satisfies alternative",
    ),
    (
        ">=1.1 <2 !=1.2.3 || > 3",
        "3.1.2",
        false,
        "`||`: 3.1.2 satisfies no alternative",
    ),
    (
        ">=1.1 <2 !=1.2.3 || >= 3",
        "3.0.0",
        true,
        "`||`: 3.0.0 satisfies alternative",
    ),
    (
        ">=1.1 <2 !=1.2.3 || > 3",
        "3.0.0",
        false,
        "`||`: 3.0.0 satisfies no alternative",
    ),
    (
        ">=1.1 <2 !=1.2.3 || > 3",
        "1.2.3",
        false,
        "`||`: 1.2.3 satisfies no alternative",
    ),
    (
        "> 1.1, <     2",
        "1.1.1",
        false,
        "AND group: 1.1.1 fails one comparator",
    ),
    (
        ">   1.1, <2",
        "1.2.1",
        true,
        "AND group: 1.2.1 meets every comparator",
    ),
    (
        ">1.1, <  3",
        "4.3.2",
        false,
        "AND group: 4.3.2 fails one comparator",
    ),
    (
        ">= 1.1, <     2, !=1.2.3",
        "1.2.3",
        false,
        "AND group: 1.2.3 fails one comparator",
    ),
    (
        "> 1.1 < 2",
        "1.1.1",
        false,
        "AND group: 1.1.1 fails one comparator",
    ),
    (
        ">1.1 < 2",
        "1.2.1",
        true,
        "AND group: 1.2.1 meets every comparator",
    ),
    (
        "> 1.1    <3",
        "4.3.2",
        false,
        "AND group: 4.3.2 fails one comparator",
    ),
    (
        ">=1.1    < 2    != 1.2.3",
        "1.2.3",
        false,
        "AND group: 1.2.3 fails one comparator",
    ),
    (
        ">= 1.1, <2, !=1.2.3 || > 3",
        "4.1.2",
        true,
        "`||`: 4.1.2 satisfies alternative",
    ),
    (
        ">= 1.1, <2, != 1.2.3 || > 3",
        "3.1.2",
        false,
        "`||`: 3.1.2 satisfies no alternative",
    ),
    (
        ">= 1.1, <2, != 1.2.3 || >= 3",
        "3.0.0",
        true,
        "`||`: 3.0.0 satisfies alternative",
    ),
    (
        ">= 1.1, <2, !=1.2.3 || > 3",
        "3.0.0",
        false,
        "`||`: 3.0.0 satisfies no alternative",
    ),
    (
        ">= 1.1, <2, !=1.2.3 || > 3",
        "1.2.3",
        false,
        "`||`: 1.2.3 satisfies no alternative",
    ),
    (
        ">= 1.1 <2 != 1.2.3",
        "1.2.3",
        false,
        "AND group: 1.2.3 fails one comparator",
    ),
    (
        ">= 1.1 <2 != 1.2.3 || > 3",
        "4.1.2",
        true,
        "`||`: 4.1.2 satisfies alternative",
    ),
    (
        ">= 1.1 <2 != 1.2.3 || > 3",
        "3.1.2",
        false,
        "`||`: 3.1.2 satisfies no alternative",
    ),
    (
        ">= 1.1 <2 != 1.2.3 || >= 3",
        "3.0.0",
        true,
        "`||`: 3.0.0 satisfies alternative",
    ),
    (
        ">= 1.1 < 2 !=1.2.3 || > 3",
        "3.0.0",
        false,
        "`||`: 3.0.0 satisfies no alternative",
    ),
    (
        ">=1.1 < 2 !=1.2.3 || > 3",
        "1.2.3",
        false,
        "`||`: 1.2.3 satisfies no alternative",
    ),
    (
        ">= 1.0.0  <= 2.0.0-beta",
        "1.0.1-beta",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        ">= 1.0.0  <= 2.0.0-beta",
        "1.0.1",
        true,
        "AND group: 1.0.1 meets every comparator",
    ),
    (
        ">= 1.0.0  <= 2.0.0-beta",
        "3.0.0",
        false,
        "AND group: 3.0.0 fails one comparator",
    ),
    (
        ">= 1.0.0  <= 2.0.0-beta || > 3",
        "1.0.1-beta",
        true,
        "`||`: 1.0.1-beta satisfies alternative",
    ),
    (
        ">= 1.0.0  <= 2.0.0-beta || > 3",
        "3.0.1-beta",
        false,
        "`||`: 3.0.1-beta satisfies no alternative",
    ),
    (
        ">= 1.0.0  <= 2.0.0-beta != 1.0.1 || > 3",
        "1.0.1-beta",
        true,
        "`||`: 1.0.1-beta satisfies alternative",
    ),
    (
        ">= 1.0.0  <= 2.0.0-beta != 1.0.1-beta || > 3",
        "1.0.1-beta",
        false,
        "`||`: 1.0.1-beta satisfies no alternative",
    ),
    (
        ">= 1.0.0-0  <= 2.0.0",
        "1.0.1-beta",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        "1.1 - 2",
        "1.1.1",
        true,
        "hyphen range is >= low, <= high: 1.1.1 inside",
    ),
    (
        "1.5.0 - 4.5",
        "3.7.0",
        true,
        "hyphen range is >= low, <= high: 3.7.0 inside",
    ),
    (
        "1.1-3",
        "4.3.2",
        false,
        "bare version with a partial/wildcard version: 4.3.2 does not match",
    ),
    (
        "^1.1",
        "1.1.1",
        true,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 1.1.1 matches",
    ),
    (
        "^1.1",
        "4.3.2",
        false,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 4.3.2 does not match",
    ),
    (
        "^1.x",
        "1.1.1",
        true,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 1.1.1 matches",
    ),
    (
        "^2.x",
        "1.1.1",
        false,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 1.1.1 does not match",
    ),
    (
        "^1.x",
        "2.1.1",
        false,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 2.1.1 does not match",
    ),
    (
        "^1.x",
        "1.1.1-beta1",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        "^1.1.2-alpha",
        "1.2.1-beta1",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        "^1.2.x-alpha",
        "1.1.1-beta1",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        "^0.0.1",
        "0.0.1",
        true,
        "`^` keeps the left-most non-zero part: 0.0.1 matches",
    ),
    (
        "^0.0.1",
        "0.3.1",
        false,
        "`^` keeps the left-most non-zero part: 0.3.1 does not match",
    ),
    (
        "~*",
        "2.1.1",
        true,
        "`~` keeps major.minor with a partial/wildcard version: 2.1.1 matches",
    ),
    (
        "~1",
        "2.1.1",
        false,
        "`~` keeps major.minor with a partial/wildcard version: 2.1.1 does not match",
    ),
    (
        "~1",
        "1.3.5",
        true,
        "`~` keeps major.minor with a partial/wildcard version: 1.3.5 matches",
    ),
    (
        "~1",
        "1.4",
        true,
        "`~` keeps major.minor with a partial/wildcard version: 1.4 matches",
    ),
    (
        "~1.x",
        "2.1.1",
        false,
        "`~` keeps major.minor with a partial/wildcard version: 2.1.1 does not match",
    ),
    (
        "~1.x",
        "1.3.5",
        true,
        "`~` keeps major.minor with a partial/wildcard version: 1.3.5 matches",
    ),
    (
        "~1.x",
        "1.4",
        true,
        "`~` keeps major.minor with a partial/wildcard version: 1.4 matches",
    ),
    (
        "~1.1",
        "1.1.1",
        true,
        "`~` keeps major.minor with a partial/wildcard version: 1.1.1 matches",
    ),
    (
        "~1.1",
        "1.1.1-alpha",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        "~1.1-alpha",
        "1.1.1-beta",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        "~1.1.1-beta",
        "1.1.1-alpha",
        false,
        "`~` keeps major.minor: 1.1.1-alpha does not match",
    ),
    (
        "~1.1.1-beta",
        "1.1.1",
        true,
        "`~` keeps major.minor: 1.1.1 matches",
    ),
    (
        "~1.2.3",
        "1.2.5",
        true,
        "`~` keeps major.minor: 1.2.5 matches",
    ),
    (
        "~1.2.3",
        "1.2.2",
        false,
        "`~` keeps major.minor: 1.2.2 does not match",
    ),
    (
        "~1.2.3",
        "1.3.2",
        false,
        "`~` keeps major.minor: 1.3.2 does not match",
    ),
    (
        "~1.1",
        "1.2.3",
        false,
        "`~` keeps major.minor with a partial/wildcard version: 1.2.3 does not match",
    ),
    (
        "~1.3",
        "2.4.5",
        false,
        "`~` keeps major.minor with a partial/wildcard version: 2.4.5 does not match",
    ),
    (
        "1.0.0 - 2.0.0 <=2.0.0",
        "1.5.0",
        true,
        "hyphen range is >= low, <= high: 1.5.0 inside",
    ),
    (
        "1.0.0 - 2.0.0, <=2.0.0",
        "1.5.0",
        true,
        "hyphen range is >= low, <= high: 1.5.0 inside",
    ),
];

const UPSTREAM_VALIDATE: &[(&str, &str, bool, &str)] = &[
    (
        "*",
        "1.2.3",
        true,
        "bare version with a partial/wildcard version: 1.2.3 matches",
    ),
    (
        "~0.0.0",
        "1.2.3",
        true,
        "`~` keeps major.minor: 1.2.3 matches",
    ),
    (
        "= 2.0",
        "1.2.3",
        false,
        "`=` with a partial/wildcard version: 1.2.3 does not match",
    ),
    (
        "= 2.0",
        "2.0.0",
        true,
        "`=` with a partial/wildcard version: 2.0.0 matches",
    ),
    (
        "4.1",
        "4.1.0",
        true,
        "bare version with a partial/wildcard version: 4.1.0 matches",
    ),
    (
        "4.1.x",
        "4.1.3",
        true,
        "bare version with a partial/wildcard version: 4.1.3 matches",
    ),
    (
        "1.x",
        "1.4",
        true,
        "bare version with a partial/wildcard version: 1.4 matches",
    ),
    (
        "!=4.1",
        "4.1.0",
        false,
        "`!=` with a partial/wildcard version: 4.1.0 does not match",
    ),
    (
        "!=4.1",
        "5.1.0",
        true,
        "`!=` with a partial/wildcard version: 5.1.0 matches",
    ),
    (
        "!=4.x",
        "5.1.0",
        true,
        "`!=` with a partial/wildcard version: 5.1.0 matches",
    ),
    (
        "!=4.x",
        "4.1.0",
        false,
        "`!=` with a partial/wildcard version: 4.1.0 does not match",
    ),
    (
        "!=4.1.x",
        "4.2.0",
        true,
        "`!=` with a partial/wildcard version: 4.2.0 matches",
    ),
    (
        "!=4.2.x",
        "4.2.3",
        false,
        "`!=` with a partial/wildcard version: 4.2.3 does not match",
    ),
    (
        ">1.1",
        "4.1.0",
        true,
        "`>` with a partial/wildcard version: 4.1.0 matches",
    ),
    (
        ">1.1",
        "1.1.0",
        false,
        "`>` with a partial/wildcard version: 1.1.0 does not match",
    ),
    (
        "<1.1",
        "0.1.0",
        true,
        "`<` with a partial/wildcard version: 0.1.0 matches",
    ),
    (
        "<1.1",
        "1.1.0",
        false,
        "`<` with a partial/wildcard version: 1.1.0 does not match",
    ),
    (
        "<1.1",
        "1.1.1",
        false,
        "`<` with a partial/wildcard version: 1.1.1 does not match",
    ),
    (
        "<1.x",
        "1.1.1",
        false,
        "`<` with a partial/wildcard version: 1.1.1 does not match",
    ),
    (
        "<2.x",
        "1.1.1",
        true,
        "`<` with a partial/wildcard version: 1.1.1 matches",
    ),
    (
        "<1.x",
        "2.1.1",
        false,
        "`<` with a partial/wildcard version: 2.1.1 does not match",
    ),
    (
        "<1.1.x",
        "1.2.1",
        false,
        "`<` with a partial/wildcard version: 1.2.1 does not match",
    ),
    (
        "<1.1.x",
        "1.1.500",
        false,
        "`<` with a partial/wildcard version: 1.1.500 does not match",
    ),
    (
        "<1.2.x",
        "1.1.1",
        true,
        "`<` with a partial/wildcard version: 1.1.1 matches",
    ),
    (
        ">=1.1",
        "4.1.0",
        true,
        "`>=` with a partial/wildcard version: 4.1.0 matches",
    ),
    (
        ">=1.1",
        "1.1.0",
        true,
        "`>=` with a partial/wildcard version: 1.1.0 matches",
    ),
    (
        ">=1.1",
        "0.0.9",
        false,
        "`>=` with a partial/wildcard version: 0.0.9 does not match",
    ),
    (
        "<=1.1",
        "0.1.0",
        true,
        "`<=` with a partial/wildcard version: 0.1.0 matches",
    ),
    (
        "<=1.1",
        "1.1.0",
        true,
        "`<=` with a partial/wildcard version: 1.1.0 matches",
    ),
    (
        "<=1.x",
        "1.1.0",
        true,
        "`<=` with a partial/wildcard version: 1.1.0 matches",
    ),
    (
        "<=2.x",
        "3.1.0",
        false,
        "`<=` with a partial/wildcard version: 3.1.0 does not match",
    ),
    (
        "<=1.1",
        "1.1.1",
        true,
        "`<=` with a partial/wildcard version: 1.1.1 matches",
    ),
    (
        "<=1.1.x",
        "1.2.500",
        false,
        "`<=` with a partial/wildcard version: 1.2.500 does not match",
    ),
    (
        ">1.1, <2",
        "1.1.1",
        false,
        "AND group: 1.1.1 fails one comparator",
    ),
    (
        ">1.1, <2",
        "1.2.1",
        true,
        "AND group: 1.2.1 meets every comparator",
    ),
    (
        ">1.1, <3",
        "4.3.2",
        false,
        "AND group: 4.3.2 fails one comparator",
    ),
    (
        ">=1.1, <2, !=1.2.3",
        "1.2.3",
        false,
        "AND group: 1.2.3 fails one comparator",
    ),
    (
        ">=1.1, <2, !=1.2.3 || > 3",
        "3.1.2",
        false,
        "`||`: 3.1.2 satisfies no alternative",
    ),
    (
        ">=1.1, <2, !=1.2.3 || > 3",
        "4.1.2",
        true,
        "`||`: 4.1.2 satisfies alternative",
    ),
    (
        ">=1.1, <2, !=1.2.3 || >= 3",
        "3.0.0",
        true,
        "`||`: 3.0.0 satisfies alternative",
    ),
    (
        ">=1.1, <2, !=1.2.3 || > 3",
        "3.0.0",
        false,
        "`||`: 3.0.0 satisfies no alternative",
    ),
    (
        ">=1.1, <2, !=1.2.3 || > 3",
        "1.2.3",
        false,
        "`||`: 1.2.3 satisfies no alternative",
    ),
    (
        "1.1 - 2",
        "1.1.1",
        true,
        "hyphen range is >= low, <= high: 1.1.1 inside",
    ),
    (
        "1.1-3",
        "4.3.2",
        false,
        "bare version with a partial/wildcard version: 4.3.2 does not match",
    ),
    (
        "^1.1",
        "1.1.1",
        true,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 1.1.1 matches",
    ),
    (
        "^1.1",
        "1.1.1-alpha",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        "^1.1.1-alpha",
        "1.1.1-beta",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        "^1.1.1-beta",
        "1.1.1-alpha",
        false,
        "`^` keeps the left-most non-zero part: 1.1.1-alpha does not match",
    ),
    (
        "^1.1",
        "4.3.2",
        false,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 4.3.2 does not match",
    ),
    (
        "^1.x",
        "1.1.1",
        true,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 1.1.1 matches",
    ),
    (
        "^2.x",
        "1.1.1",
        false,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 1.1.1 does not match",
    ),
    (
        "^1.x",
        "2.1.1",
        false,
        "`^` keeps the left-most non-zero part with a partial/wildcard version: 2.1.1 does not match",
    ),
    (
        "^0.0.1",
        "0.1.3",
        false,
        "`^` keeps the left-most non-zero part: 0.1.3 does not match",
    ),
    (
        "^0.0.1",
        "0.0.1",
        true,
        "`^` keeps the left-most non-zero part: 0.0.1 matches",
    ),
    (
        "~*",
        "2.1.1",
        true,
        "`~` keeps major.minor with a partial/wildcard version: 2.1.1 matches",
    ),
    (
        "~1",
        "2.1.1",
        false,
        "`~` keeps major.minor with a partial/wildcard version: 2.1.1 does not match",
    ),
    (
        "~1",
        "1.3.5",
        true,
        "`~` keeps major.minor with a partial/wildcard version: 1.3.5 matches",
    ),
    (
        "~1",
        "1.3.5-beta",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        "~1.x",
        "2.1.1",
        false,
        "`~` keeps major.minor with a partial/wildcard version: 2.1.1 does not match",
    ),
    (
        "~1.x",
        "1.3.5",
        true,
        "`~` keeps major.minor with a partial/wildcard version: 1.3.5 matches",
    ),
    (
        "~1.x",
        "1.3.5-beta",
        false,
        "a prerelease only matches a group whose comparators name a prerelease",
    ),
    (
        "~1.3.6-alpha",
        "1.3.5-beta",
        false,
        "`~` keeps major.minor: 1.3.5-beta does not match",
    ),
    (
        "~1.3.5-alpha",
        "1.3.5-beta",
        true,
        "the group names a prerelease, so prereleases are admitted and ordered by SemVer",
    ),
    (
        "~1.3.5-beta",
        "1.3.5-alpha",
        false,
        "`~` keeps major.minor: 1.3.5-alpha does not match",
    ),
    (
        "~1.x",
        "1.4",
        true,
        "`~` keeps major.minor with a partial/wildcard version: 1.4 matches",
    ),
    (
        "~1.1",
        "1.1.1",
        true,
        "`~` keeps major.minor with a partial/wildcard version: 1.1.1 matches",
    ),
    (
        "~1.2.3",
        "1.2.5",
        true,
        "`~` keeps major.minor: 1.2.5 matches",
    ),
    (
        "~1.2.3",
        "1.2.2",
        false,
        "`~` keeps major.minor: 1.2.2 does not match",
    ),
    (
        "~1.2.3",
        "1.3.2",
        false,
        "`~` keeps major.minor: 1.3.2 does not match",
    ),
    (
        "~1.1",
        "1.2.3",
        false,
        "`~` keeps major.minor with a partial/wildcard version: 1.2.3 does not match",
    ),
    (
        "~1.3",
        "2.4.5",
        false,
        "`~` keeps major.minor with a partial/wildcard version: 2.4.5 does not match",
    ),
];

const UPSTREAM_INCLUDE_PRERELEASE: &[(&str, &str, bool, &str)] = &[
    (
        ">=1.1",
        "4.1.0-beta",
        true,
        "with_prereleases(true) admits prereleases everywhere",
    ),
    (
        ">1.1",
        "4.1.0-beta",
        true,
        "with_prereleases(true) admits prereleases everywhere",
    ),
    (
        "<=1.1",
        "0.1.0-alpha",
        true,
        "with_prereleases(true) admits prereleases everywhere",
    ),
    (
        "<1.1",
        "0.1.0-alpha",
        true,
        "with_prereleases(true) admits prereleases everywhere",
    ),
    (
        "^1.x",
        "1.1.1-beta1",
        true,
        "with_prereleases(true) admits prereleases everywhere",
    ),
    (
        "~1.1",
        "1.1.1-alpha",
        true,
        "with_prereleases(true) admits prereleases everywhere",
    ),
    (
        "*",
        "1.2.3-alpha",
        true,
        "with_prereleases(true) admits prereleases everywhere",
    ),
    (
        "= 2.0",
        "2.0.1-beta",
        true,
        "with_prereleases(true) admits prereleases everywhere",
    ),
    (
        "^1.1",
        "1.1.1-alpha",
        true,
        "with_prereleases(true) admits prereleases everywhere",
    ),
    (
        "~1",
        "1.3.5-beta",
        true,
        "with_prereleases(true) admits prereleases everywhere",
    ),
    (
        "~1.x",
        "1.3.5-beta",
        true,
        "with_prereleases(true) admits prereleases everywhere",
    ),
];

const UPSTREAM_VALIDATE_FAILURES: &[(&str, &str, &str)] = &[
    (
        "2.x",
        "1.2.3",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "2",
        "1.2.3",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "= 2.0",
        "1.2.3",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "!=4.1",
        "4.1.0",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "!=4.x",
        "4.1.0",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "!=4.2.x",
        "4.2.3",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        ">1.1",
        "1.1.0",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "<1.1",
        "1.1.0",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "<1.1",
        "1.1.1",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "<1.x",
        "2.1.1",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "<1.1.x",
        "1.2.1",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        ">=1.1",
        "0.0.9",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "<=2.x",
        "3.1.0",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "<=1.1",
        "1.2.1",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "<=1.1.x",
        "1.2.500",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        ">1.1, <3",
        "4.3.2",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        ">=1.1, <2, !=1.2.3",
        "1.2.3",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        ">=1.1, <2, !=1.2.3 || > 3",
        "3.0.0",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        ">=1.1, <2, !=1.2.3 || > 3",
        "1.2.3",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "1.1 - 3",
        "4.3.2",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "^1.1",
        "4.3.2",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "^1.12.7",
        "1.6.6",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "^2.x",
        "1.1.1",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "^1.x",
        "2.1.1",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "^0.2",
        "0.3.0",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "^0.2",
        "0.1.1",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "^0.0.3",
        "0.1.1",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "^0.0.3",
        "0.0.4",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "^0.0.3",
        "0.0.2",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "~1",
        "2.1.2",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "~1.x",
        "2.1.1",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "~1.2.3",
        "1.2.2",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "~1.2.3",
        "1.3.2",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "~1.1",
        "1.2.3",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "~1.3",
        "2.4.5",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "> 1.2.3",
        "1.2.3-beta.1",
        "upstream reports a failure message here, so Check must be false",
    ),
    (
        "!= 1.2.5, ^2, <= 1.1.x",
        "1.2.3",
        "upstream reports a failure message here, so Check must be false",
    ),
];

const UPSTREAM_VALIDATE_PRE_FAILURES: &[(&str, &str, &str)] = &[
    (
        "> 1.2.3",
        "1.2.3-beta.1",
        "with prereleases included the version itself is out of range",
    ),
    (
        "< 1.2.3",
        "1.2.4-beta.1",
        "with prereleases included the version itself is out of range",
    ),
    (
        ">= 1.2.3",
        "1.2.3-beta.1",
        "with prereleases included the version itself is out of range",
    ),
    (
        "<= 1.2.3",
        "1.2.4-beta.1",
        "with prereleases included the version itself is out of range",
    ),
];
