//! Tag parsing (Flux `ParseVersion` = optional `v` + Masterminds `StrictNewVersion`),
//! precedence (Masterminds `Compare`) and `UpgradeKind`.
// Table rows are tuples on purpose (one row per line, reason last).
#![allow(clippy::type_complexity)]

use std::cmp::Ordering;

use upkeep_core::version::{UpgradeKind, Version};

#[test]
fn tag_parsing() {
    // (tag, is a version, reason) — Flux TestParseVersion, Masterminds TestStrictNewVersion
    // (with the `v` allowed), and edge cases.
    let cases: &[(&str, bool, &str)] = &[
        ("1.2.3", true, "plain"),
        ("v1.2.3", true, "Flux allows one leading lowercase v"),
        ("V1.2.3", false, "Flux trims only a lowercase v"),
        ("vv1.2.3", false, "only one v is trimmed"),
        ("v1.0", false, "two parts are not strict"),
        ("v1", false, "one part is not strict"),
        ("1.2", false, "two parts"),
        ("v1.2.beta", false, "non-numeric patch"),
        ("v1.2-5", false, "prerelease after two parts"),
        ("v1.2-beta.5", false, "prerelease after two parts"),
        ("\nv1.2", false, "leading newline"),
        (" 1.2.3", false, "leading space"),
        ("1.2.3 ", false, "trailing space"),
        ("v1.2.0-x.Y.0+metadata", true, "prerelease and metadata"),
        (
            "v1.2.0-x.Y.0+metadata-width-hypen",
            true,
            "hyphen in metadata",
        ),
        ("v1.2.3-rc1-with-hypen", true, "hyphens in prerelease"),
        ("v1.2.3.4", false, "four parts"),
        (
            "1.2.3-alpha.01",
            false,
            "leading zero in a numeric prerelease identifier",
        ),
        (
            "1.2.3+test.01",
            true,
            "leading zeros are fine in build metadata",
        ),
        ("1.2.3-alpha.-1", true, "`-1` is an alphanumeric identifier"),
        ("1.2.2147483648", true, "beyond i32 is fine"),
        ("2147483648.3.0", true, "beyond i32 is fine in the major"),
        ("18446744073709551615.0.0", true, "u64::MAX"),
        (
            "18446744073709551616.0.0",
            false,
            "overflowing u64 is not a version",
        ),
        ("1.18446744073709551616.0", false, "overflowing minor"),
        ("1.0.18446744073709551616", false, "overflowing patch"),
        (
            "1.0.0-99999999999999999999999",
            true,
            "a huge numeric prerelease id is allowed (compared as text)",
        ),
        ("20221209-update-renovatejson-v4", false, "no dots"),
        ("1.1.2+.123", false, "empty build identifier"),
        ("1.0.0-alpha_beta", false, "underscore in prerelease"),
        ("1.0.0-alpha..", false, "empty prerelease identifiers"),
        ("1.0.0-alpha..1", false, "empty prerelease identifier"),
        ("1.0.0-", false, "empty prerelease"),
        ("1.0.0+", false, "empty build"),
        ("01.1.1", false, "leading zero in major"),
        ("1.01.1", false, "leading zero in minor"),
        ("1.1.01", false, "leading zero in patch"),
        ("0.0.0", true, "zeros are fine"),
        ("9.8.7+meta+meta", false, "two build parts"),
        (
            "1.2.31----RC-SNAPSHOT.12.09.1--.12+788",
            false,
            "`09` is a numeric id with a leading zero",
        ),
        ("1.2.3-0123", false, "leading zero numeric prerelease"),
        ("1.2.3-0123.0123", false, "leading zero numeric prerelease"),
        (
            "1.2.3-0a",
            true,
            "`0a` is alphanumeric, leading zero allowed",
        ),
        ("+invalid", false, "no version"),
        ("-invalid", false, "no version"),
        ("alpha+beta", false, "no version"),
        ("1.2.3-alpha_beta+foo", false, "underscore"),
        ("", false, "empty"),
        ("v", false, "only v"),
        ("1..3", false, "empty minor"),
        ("1.2.3-ünï", false, "non-ASCII prerelease"),
        ("latest", false, "a word"),
    ];
    for &(tag, ok, why) in cases {
        let v = Version::parse(tag);
        assert_eq!(v.is_some(), ok, "{tag:?}: {why}");
        if let Some(v) = v {
            assert_eq!(v.original(), tag, "{tag:?}: original() is the tag as given");
        }
    }
}

#[test]
fn parts_and_display() {
    // (tag, major, minor, patch, prerelease, build, display, reason)
    let cases: &[(&str, u64, u64, u64, &str, &str, &str, &str)] = &[
        (
            "1.2.3-beta.1+build.123",
            1,
            2,
            3,
            "beta.1",
            "build.123",
            "1.2.3-beta.1+build.123",
            "all parts",
        ),
        ("v0.0.0", 0, 0, 0, "", "", "0.0.0", "display drops the v"),
        (
            "v10.20.30+x",
            10,
            20,
            30,
            "",
            "x",
            "10.20.30+x",
            "build only",
        ),
    ];
    for &(tag, ma, mi, pa, pre, build, display, why) in cases {
        let v = Version::parse(tag).expect(why);
        assert_eq!(
            (v.major(), v.minor(), v.patch()),
            (ma, mi, pa),
            "{tag}: {why}"
        );
        assert_eq!(v.prerelease(), pre, "{tag}: {why}");
        assert_eq!(v.is_prerelease(), !pre.is_empty(), "{tag}: {why}");
        assert_eq!(v.build(), build, "{tag}: {why}");
        assert_eq!(v.to_string(), display, "{tag}: {why}");
    }
}

#[test]
fn lenient_parsing() {
    // (input, canonical or None, reason) — Masterminds TestNewVersion / TestCoerceString.
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("1", Some("1.0.0"), "major only"),
        ("v1.0", Some("1.0.0"), "v and two parts"),
        ("1.2-5", Some("1.2.0-5"), "prerelease after two parts"),
        ("01.1.1", Some("1.1.1"), "leading zeros are coerced"),
        ("1.2.beta", None, "non-numeric part"),
        ("1.2.3.4", None, "four parts"),
        (
            "1.2.3-alpha.01",
            None,
            "prerelease leading zero still invalid",
        ),
        (
            "20221209-update-renovatejson-v4",
            Some("20221209.0.0-update-renovatejson-v4"),
            "calver-ish",
        ),
        ("9.8.7+meta+meta", None, "two build parts"),
    ];
    for &(input, want, why) in cases {
        let got = Version::parse_lenient(input).map(|v| v.to_string());
        assert_eq!(got.as_deref(), want, "{input:?}: {why}");
    }
}

#[test]
fn precedence() {
    // (a, b, a.cmp(b), reason) — Masterminds TestCompare/TestGreaterThan (full versions) and
    // the SemVer 2.0 §11 example chain.
    let cases: &[(&str, &str, Ordering, &str)] = &[
        ("1.2.3", "1.5.1", Ordering::Less, "minor decides"),
        ("2.2.3", "1.5.1", Ordering::Greater, "major decides"),
        ("2.2.3", "2.2.2", Ordering::Greater, "patch decides"),
        ("3.2.0-beta", "3.2.0-beta", Ordering::Equal, "identical"),
        (
            "4.2.0",
            "4.2.0-beta",
            Ordering::Greater,
            "release above its prerelease",
        ),
        (
            "4.2.0-alpha",
            "4.2.0-beta",
            Ordering::Less,
            "alphanumeric ids by bytes",
        ),
        (
            "4.2.0-beta.2",
            "4.2.0-beta.1",
            Ordering::Greater,
            "numeric ids by value",
        ),
        (
            "4.2.0-beta2",
            "4.2.0-beta1",
            Ordering::Greater,
            "alphanumeric ids by bytes",
        ),
        (
            "4.2.0-beta",
            "4.2.0-beta.2",
            Ordering::Less,
            "shorter prefix is lower",
        ),
        (
            "4.2.0-beta",
            "4.2.0-beta.foo",
            Ordering::Less,
            "shorter prefix is lower",
        ),
        (
            "1.2.0+bar",
            "1.2.0+baz",
            Ordering::Equal,
            "build metadata is ignored",
        ),
        ("v1.2.0", "1.2.0", Ordering::Equal, "the v is ignored"),
        (
            "1.0.0-beta.4",
            "1.0.0-beta.-2",
            Ordering::Less,
            "numeric below alphanumeric",
        ),
        (
            "1.0.0-beta.-2",
            "1.0.0-beta.-3",
            Ordering::Less,
            "`-2` < `-3` as text",
        ),
        (
            "1.0.0-beta.-3",
            "1.0.0-beta.5",
            Ordering::Greater,
            "alphanumeric above numeric",
        ),
        (
            "3.2.0-beta.1",
            "3.2.0-beta.5",
            Ordering::Less,
            "numeric ids",
        ),
        (
            "7.43.0-SNAPSHOT.99",
            "7.43.0-SNAPSHOT.103",
            Ordering::Less,
            "99 < 103 numerically",
        ),
        (
            "7.43.0-SNAPSHOT.FOO",
            "7.43.0-SNAPSHOT.103",
            Ordering::Greater,
            "alphanumeric above numeric",
        ),
        (
            "1.0.0-Z",
            "1.0.0-a",
            Ordering::Less,
            "ASCII order: uppercase before lowercase",
        ),
        (
            "1.0.0-99999999999999999999",
            "1.0.0-1",
            Ordering::Greater,
            "an id beyond u64 compares as text, above numbers",
        ),
        ("10.0.0", "9.0.0", Ordering::Greater, "numbers, not text"),
    ];
    for &(a, b, want, why) in cases {
        let (va, vb) = (Version::parse(a).expect(a), Version::parse(b).expect(b));
        assert_eq!(va.cmp(&vb), want, "{a} vs {b}: {why}");
        assert_eq!(
            vb.cmp(&va),
            want.reverse(),
            "{b} vs {a}: antisymmetry ({why})"
        );
        assert_eq!(
            va == vb,
            want == Ordering::Equal,
            "{a} == {b}: Eq agrees with Ord ({why})"
        );
    }
    let chain = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ];
    for w in chain.windows(2) {
        let (a, b) = (Version::parse(w[0]).unwrap(), Version::parse(w[1]).unwrap());
        assert!(a < b, "SemVer 2.0 §11: {} < {}", w[0], w[1]);
    }
}

#[test]
fn upgrade_kind() {
    // (from, to, kind, reason)
    let cases: &[(&str, &str, Option<UpgradeKind>, &str)] = &[
        ("1.2.3", "1.2.4", Some(UpgradeKind::Patch), "patch bump"),
        ("1.2.3", "1.3.0", Some(UpgradeKind::Minor), "minor bump"),
        ("1.2.3", "2.0.0", Some(UpgradeKind::Major), "major bump"),
        (
            "0.2.3",
            "0.3.0",
            Some(UpgradeKind::Minor),
            "plain SemVer below 1.0: a minor is Minor",
        ),
        (
            "0.2.3",
            "1.0.0",
            Some(UpgradeKind::Major),
            "to 1.0.0 is Major",
        ),
        (
            "1.2.3-rc.1",
            "1.2.3",
            Some(UpgradeKind::Patch),
            "prerelease to release is Patch",
        ),
        (
            "1.2.3-rc.1",
            "1.2.3-rc.2",
            Some(UpgradeKind::Patch),
            "prerelease-only change is Patch",
        ),
        ("1.2.3", "1.2.3", None, "equal is no upgrade"),
        (
            "v1.2.3",
            "1.2.3+build",
            None,
            "equal precedence is no upgrade",
        ),
        ("1.2.4", "1.2.3", None, "a downgrade is no upgrade"),
        ("2.0.0", "1.9.0", None, "a major downgrade is no upgrade"),
        (
            "1.9.9",
            "2.0.0-rc.1",
            Some(UpgradeKind::Major),
            "a major prerelease is Major",
        ),
    ];
    for &(from, to, want, why) in cases {
        let (f, t) = (Version::parse(from).unwrap(), Version::parse(to).unwrap());
        assert_eq!(UpgradeKind::between(&f, &t), want, "{from} -> {to}: {why}");
    }
    assert!(UpgradeKind::Patch < UpgradeKind::Minor && UpgradeKind::Minor < UpgradeKind::Major);
}
