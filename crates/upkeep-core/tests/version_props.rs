//! Properties of selection over random tag lists and random ranges.

use jiff::Timestamp;
use proptest::prelude::*;
use upkeep_core::version::{Constraints, Order, Policy, PolicyKind, TagInfo, Version};

fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..20).prop_map(|n| n.to_string()),
        "[a-zA-Z][a-zA-Z0-9-]{0,5}",
    ]
}

/// A strict version, maybe with a `v`, a prerelease and build metadata.
fn version_tag() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        0u64..4,
        0u64..4,
        0u64..4,
        prop::option::weighted(0.3, prop::collection::vec(ident(), 1..3)),
        prop::option::weighted(0.2, "[a-z0-9]{1,4}"),
    )
        .prop_map(|(v, a, b, c, pre, build)| {
            let mut s = format!("{}{a}.{b}.{c}", if v { "v" } else { "" });
            if let Some(p) = pre {
                s.push('-');
                s.push_str(&p.join("."));
            }
            if let Some(b) = build {
                s.push('+');
                s.push_str(&b);
            }
            s
        })
}

fn tag() -> impl Strategy<Value = String> {
    prop_oneof![8 => version_tag(), 1 => "[a-z0-9.]{0,6}"]
}

fn partial() -> impl Strategy<Value = String> {
    let part = prop_oneof![4 => (0u64..4).prop_map(|n| n.to_string()), 1 => Just("x".to_owned()), 1 => Just("*".to_owned())];
    (
        part.clone(),
        prop::option::of(part.clone()),
        prop::option::of(part),
        prop::option::weighted(0.2, Just("-0".to_owned())),
    )
        .prop_map(|(a, b, c, pre)| {
            let mut s = a;
            if let Some(b) = b {
                s = format!("{s}.{b}");
                if let Some(c) = c {
                    s = format!("{s}.{c}");
                }
            }
            s + pre.as_deref().unwrap_or("")
        })
}

fn comparator() -> impl Strategy<Value = String> {
    let op = prop::sample::select(vec![
        "", "=", "!=", ">", "<", ">=", "=>", "<=", "=<", "~", "~>", "^",
    ]);
    (op, any::<bool>(), partial())
        .prop_map(|(o, sp, v)| format!("{o}{}{v}", if sp { " " } else { "" }))
}

/// Ranges from the grammar: comparators ANDed by space or comma, hyphen ranges, `||`.
fn range() -> impl Strategy<Value = String> {
    let and = prop_oneof![
        3 => prop::collection::vec(comparator(), 1..4).prop_map(|cs| cs.join(" ")),
        1 => prop::collection::vec(comparator(), 1..3).prop_map(|cs| cs.join(", ")),
        1 => (partial(), partial()).prop_map(|(a, b)| format!("{a} - {b}")),
    ];
    prop::collection::vec(and, 1..3).prop_map(|alts| alts.join(" || "))
}

fn infos(tags: &[String]) -> Vec<TagInfo<'_>> {
    tags.iter()
        .map(|t| TagInfo {
            tag: t,
            first_seen: None,
        })
        .collect()
}

fn now() -> Timestamp {
    Timestamp::UNIX_EPOCH
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn semver_selects_the_greatest_satisfying(tags in prop::collection::vec(tag(), 0..30), r in range()) {
        let Ok(c) = Constraints::parse(&r) else { return Ok(()); };
        let s = Policy::new(PolicyKind::SemverRange(c.clone())).select(&infos(&tags), now());
        let satisfying: Vec<Version> = tags.iter().filter_map(|t| Version::parse(t)).filter(|v| c.matches(v)).collect();
        match s.selected {
            None => prop_assert!(satisfying.is_empty(), "nothing selected but {satisfying:?} satisfy {r}"),
            Some(sel) => {
                let v = Version::parse(sel).expect("the selection is a version");
                prop_assert!(c.matches(&v), "{sel} does not satisfy {r}");
                prop_assert!(satisfying.iter().all(|o| o <= &v), "a satisfying tag is greater than {sel} for {r}");
            }
        }
        prop_assert_eq!(s.considered + s.ignored, tags.len());
    }

    #[test]
    fn alphabetical_chooses_the_extreme(tags in prop::collection::vec("[ -~]{0,8}", 0..30), asc in any::<bool>()) {
        let order = if asc { Order::Asc } else { Order::Desc };
        let s = Policy::new(PolicyKind::Alphabetical(order)).select(&infos(&tags), now());
        let want = if asc { tags.iter().max() } else { tags.iter().min() };
        prop_assert_eq!(s.selected, want.map(String::as_str));
    }

    #[test]
    fn numerical_chooses_the_extreme(nums in prop::collection::vec(-1e6f64..1e6, 0..30), junk in prop::collection::vec("[p-z]{1,4}", 0..5), asc in any::<bool>()) {
        let mut tags: Vec<String> = nums.iter().map(ToString::to_string).collect();
        tags.extend(junk.iter().cloned());
        let order = if asc { Order::Asc } else { Order::Desc };
        let s = Policy::new(PolicyKind::Numerical(order)).select(&infos(&tags), now());
        let best = nums.iter().copied().reduce(|a, b| if (asc && b > a) || (!asc && b < a) { b } else { a });
        let got = s.selected.map(|t| t.parse::<f64>().unwrap());
        prop_assert_eq!(got, best);
        prop_assert_eq!(s.ignored, junk.iter().filter(|j| j.parse::<f64>().is_err()).count());
    }

    #[test]
    fn display_round_trips(t in version_tag()) {
        let v = Version::parse(&t).expect("generated tags are versions");
        let shown = v.to_string();
        let back = Version::parse(&shown).expect("display parses");
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(back.to_string(), shown);
        prop_assert_eq!(back.build(), v.build());
    }

    #[test]
    fn parsing_never_panics(s in "\\PC{0,24}") {
        let _ = Version::parse(&s);
        let _ = Version::parse_lenient(&s);
        let _ = Constraints::parse(&s);
    }
}
