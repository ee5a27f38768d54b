//! RRULE parsing, validation errors, and the places where we follow RFC 5545 over dateutil.

use jiff::{civil, tz::TimeZone};
use proptest::prelude::*;
use upkeep_core::schedule::{RRule, RRuleError};

fn dt(s: &str) -> civil::DateTime {
    s.parse().unwrap()
}

fn expand(rule: &str, dtstart: &str, n: usize) -> Vec<String> {
    RRule::parse(rule)
        .unwrap()
        .occurrences(dt(dtstart), &TimeZone::UTC)
        .take(n)
        .map(|d| d.to_string())
        .collect()
}

fn variant(e: &RRuleError) -> String {
    let dbg = format!("{e:?}");
    dbg.split([' ', '(', '{']).next().unwrap().to_owned()
}

#[test]
fn rejects_bad_rules_with_stable_variants() {
    // (input, variant, text the message must contain, reason)
    let cases = [
        ("", "Empty", "empty", "nothing to parse"),
        ("RRULE:", "Empty", "empty", "prefix only"),
        ("INTERVAL=2", "MissingFreq", "FREQ", "FREQ is required"),
        (
            "FREQ=HOURLY",
            "SubDailyFrequency",
            "HOURLY",
            "windows recur at most daily",
        ),
        (
            "FREQ=minutely",
            "SubDailyFrequency",
            "MINUTELY",
            "case-insensitive, still sub-daily",
        ),
        (
            "FREQ=SECONDLY",
            "SubDailyFrequency",
            "SECONDLY",
            "sub-daily",
        ),
        (
            "FREQ=FORTNIGHTLY",
            "UnknownFrequency",
            "FORTNIGHTLY",
            "not an RFC frequency",
        ),
        (
            "FREQ=DAILY;FOO=1",
            "UnknownPart",
            "FOO",
            "unknown parts are not ignored",
        ),
        (
            "FREQ=DAILY;BYEASTER=0",
            "UnknownPart",
            "BYEASTER",
            "dateutil extension, not RFC",
        ),
        (
            "FREQ=DAILY;BYHOUR=3",
            "Unsupported",
            "BYHOUR",
            "time of day belongs in startTime",
        ),
        (
            "FREQ=DAILY;BYMINUTE=3",
            "Unsupported",
            "BYMINUTE",
            "time of day belongs in startTime",
        ),
        (
            "FREQ=DAILY;BYSECOND=3",
            "Unsupported",
            "BYSECOND",
            "time of day belongs in startTime",
        ),
        (
            "FREQ=YEARLY;BYWEEKNO=20",
            "Unsupported",
            "BYWEEKNO",
            "rejected explicitly, not ignored",
        ),
        (
            "FREQ=DAILY;FREQ=WEEKLY",
            "DuplicatePart",
            "FREQ",
            "a part twice is ambiguous",
        ),
        ("FREQ=DAILY;COUNT", "MalformedPart", "COUNT", "no value"),
        (
            "FREQ=DAILY;COUNT=0",
            "InvalidValue",
            "COUNT",
            "COUNT=0 would be an empty rule",
        ),
        (
            "FREQ=DAILY;COUNT=x",
            "InvalidValue",
            "COUNT",
            "not a number",
        ),
        (
            "FREQ=DAILY;INTERVAL=0",
            "InvalidValue",
            "INTERVAL",
            "interval must be positive",
        ),
        (
            "FREQ=DAILY;INTERVAL=-1",
            "InvalidValue",
            "INTERVAL",
            "negative interval",
        ),
        (
            "FREQ=MONTHLY;BYMONTHDAY=0",
            "InvalidValue",
            "BYMONTHDAY",
            "day 0 does not exist",
        ),
        (
            "FREQ=MONTHLY;BYMONTHDAY=32",
            "InvalidValue",
            "BYMONTHDAY",
            "day 32 does not exist",
        ),
        (
            "FREQ=YEARLY;BYMONTH=13",
            "InvalidValue",
            "BYMONTH",
            "month 13",
        ),
        (
            "FREQ=YEARLY;BYYEARDAY=367",
            "InvalidValue",
            "BYYEARDAY",
            "day 367",
        ),
        (
            "FREQ=MONTHLY;BYDAY=XX",
            "InvalidValue",
            "BYDAY",
            "not a weekday",
        ),
        (
            "FREQ=MONTHLY;BYDAY=0MO",
            "InvalidValue",
            "BYDAY",
            "ordinal 0",
        ),
        (
            "FREQ=MONTHLY;BYDAY=6MO",
            "InvalidValue",
            "BYDAY",
            "a month has at most 5 of a weekday",
        ),
        (
            "FREQ=YEARLY;BYMONTH=3;BYDAY=6MO",
            "InvalidValue",
            "BYDAY",
            "YEARLY+BYMONTH counts within the month",
        ),
        (
            "FREQ=YEARLY;BYDAY=54MO",
            "InvalidValue",
            "BYDAY",
            "a year has at most 53",
        ),
        (
            "FREQ=DAILY;WKST=XX",
            "InvalidValue",
            "WKST",
            "not a weekday",
        ),
        (
            "FREQ=DAILY;UNTIL=2025-01-01",
            "InvalidValue",
            "UNTIL",
            "ISO dashes are not RFC 5545 DATE",
        ),
        (
            "FREQ=DAILY;UNTIL=20250230",
            "InvalidValue",
            "UNTIL",
            "30 February",
        ),
        (
            "FREQ=DAILY;UNTIL=20250101T250000Z",
            "InvalidValue",
            "UNTIL",
            "hour 25",
        ),
        (
            "FREQ=DAILY;BYSETPOS=0;BYDAY=MO",
            "InvalidValue",
            "BYSETPOS",
            "position 0",
        ),
        (
            "FREQ=DAILY;COUNT=3;UNTIL=20250101",
            "CountWithUntil",
            "COUNT",
            "RFC: MUST NOT occur together",
        ),
        (
            "FREQ=MONTHLY;BYSETPOS=-1",
            "SetposWithoutBy",
            "BYSETPOS",
            "nothing to pick from",
        ),
        (
            "FREQ=WEEKLY;BYDAY=1MO",
            "OrdinalNotAllowed",
            "1MO",
            "RFC: ordinals only in MONTHLY/YEARLY",
        ),
        (
            "FREQ=DAILY;BYDAY=-1FR",
            "OrdinalNotAllowed",
            "-1FR",
            "RFC: ordinals only in MONTHLY/YEARLY",
        ),
        (
            "FREQ=WEEKLY;BYMONTHDAY=1",
            "PartNotAllowed",
            "BYMONTHDAY",
            "RFC: not with WEEKLY",
        ),
        (
            "FREQ=MONTHLY;BYYEARDAY=1",
            "PartNotAllowed",
            "BYYEARDAY",
            "RFC: only with YEARLY",
        ),
    ];
    for (input, want, text, reason) in cases {
        match RRule::parse(input) {
            Ok(r) => panic!("{reason}: {input:?} parsed as {r}"),
            Err(e) => {
                assert_eq!(variant(&e), want, "{reason}: {input:?} gave {e}");
                assert!(
                    e.to_string().contains(text),
                    "{reason}: message {e:?} should name {text}"
                );
            }
        }
    }
}

#[test]
fn sub_daily_hint_points_to_start_time() {
    let e = RRule::parse("FREQ=HOURLY;INTERVAL=4").unwrap_err();
    assert_eq!(
        e.hint().as_deref(),
        Some("put the time of day in startTime; use FREQ=DAILY")
    );
    let e = RRule::parse("FREQ=DAILY;BYHOUR=3").unwrap_err();
    assert!(e.hint().unwrap().contains("startTime"), "BYHOUR hint");
}

#[test]
fn accepts_and_normalises() {
    // (input, canonical, reason)
    let cases = [
        (
            "RRULE:FREQ=WEEKLY;BYDAY=SA",
            "FREQ=WEEKLY;BYDAY=SA",
            "RRULE: prefix",
        ),
        (
            "rrule:freq=weekly;byday=sa",
            "FREQ=WEEKLY;BYDAY=SA",
            "case-insensitive",
        ),
        (
            " FREQ=MONTHLY ; BYDAY=+1SA ; ",
            "FREQ=MONTHLY;BYDAY=1SA",
            "spaces, + sign, trailing ;",
        ),
        (
            "FREQ=MONTHLY;BYDAY=-1FR",
            "FREQ=MONTHLY;BYDAY=-1FR",
            "negative ordinal",
        ),
        (
            "FREQ=DAILY;INTERVAL=1;WKST=MO",
            "FREQ=DAILY",
            "defaults omitted",
        ),
        (
            "FREQ=DAILY;UNTIL=20250301T120000Z",
            "FREQ=DAILY;UNTIL=20250301T120000Z",
            "UTC UNTIL",
        ),
        (
            "FREQ=DAILY;UNTIL=20250301",
            "FREQ=DAILY;UNTIL=20250301T000000",
            "DATE UNTIL is midnight",
        ),
        (
            "FREQ=YEARLY;BYYEARDAY=-1,1",
            "FREQ=YEARLY;BYYEARDAY=-1,1",
            "yearday list",
        ),
        (
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
            "last weekday",
        ),
    ];
    for (input, want, reason) in cases {
        let r = RRule::parse(input).unwrap_or_else(|e| panic!("{reason}: {input:?}: {e}"));
        assert_eq!(r.to_string(), want, "{reason}");
        assert_eq!(
            RRule::parse(&r.to_string()).unwrap(),
            r,
            "{reason}: round trip"
        );
    }
}

#[test]
fn expansion_table() {
    // (rule, dtstart, first occurrences, reason)
    let cases: [(&str, &str, &[&str], &str); 6] = [
        (
            "FREQ=MONTHLY;BYDAY=MO,1FR;COUNT=4",
            "2025-01-01T10:00",
            &[
                "2025-01-03T10:00:00",
                "2025-01-06T10:00:00",
                "2025-01-13T10:00:00",
                "2025-01-20T10:00:00",
            ],
            "RFC over dateutil: BYDAY=MO,1FR is every Monday plus the first Friday (dateutil yields nothing)",
        ),
        (
            "FREQ=WEEKLY;BYDAY=MO,FR;BYSETPOS=1;COUNT=3",
            "2025-01-01T22:00",
            &[
                "2025-01-06T22:00:00",
                "2025-01-13T22:00:00",
                "2025-01-20T22:00:00",
            ],
            "RFC over dateutil: the first week's set is Mon..Sun, its position 1 (Mon 30 Dec) precedes DTSTART (dateutil picks Fri 3 Jan)",
        ),
        (
            "FREQ=MONTHLY;BYMONTHDAY=31",
            "2025-01-31T22:00",
            &[
                "2025-01-31T22:00:00",
                "2025-03-31T22:00:00",
                "2025-05-31T22:00:00",
            ],
            "day 31 skips short months, never clamps to the 30th",
        ),
        (
            "FREQ=MONTHLY;BYDAY=1SA",
            "2025-01-10T22:00",
            &["2025-02-01T22:00:00", "2025-03-01T22:00:00"],
            "DTSTART (a Friday) is not an occurrence because the rule does not produce it",
        ),
        (
            "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
            "1997-08-05T09:00",
            &[
                "1997-08-05T09:00:00",
                "1997-08-17T09:00:00",
                "1997-08-19T09:00:00",
                "1997-08-31T09:00:00",
            ],
            "RFC 5545 WKST example",
        ),
        (
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
            "2096-02-29T00:00",
            &["2096-02-29T00:00:00", "2104-02-29T00:00:00"],
            "2100 is not a leap year: an 8-year gap",
        ),
    ];
    for (rule, start, want, reason) in cases {
        assert_eq!(
            expand(rule, start, want.len() + 1)[..want.len()],
            *want,
            "{reason}"
        );
    }
    assert_eq!(
        expand("FREQ=WEEKLY;BYDAY=SA;COUNT=3", "2025-01-04T22:00", 10).len(),
        3,
        "COUNT stops the iterator"
    );
}

#[test]
fn impossible_rules_terminate() {
    // (rule, reason)
    let cases = [
        (
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=31",
            "31 February never exists",
        ),
        (
            "FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31",
            "31 April, scanned day by day",
        ),
        ("FREQ=MONTHLY;BYMONTHDAY=30;BYMONTH=2", "30 February"),
        (
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYSETPOS=2",
            "only one candidate per year",
        ),
    ];
    for (rule, reason) in cases {
        let n = RRule::parse(rule)
            .unwrap()
            .occurrences(dt("2025-01-01T00:00"), &TimeZone::UTC)
            .count();
        assert_eq!(n, 0, "{reason}");
    }
}

#[test]
fn utc_until_is_an_instant_in_the_zone() {
    let tz = TimeZone::get("Europe/Berlin").unwrap();
    let rule = RRule::parse("FREQ=DAILY;UNTIL=20250103T210000Z").unwrap();
    let got: Vec<String> = rule
        .occurrences(dt("2025-01-01T22:00"), &tz)
        .map(|d| d.to_string())
        .collect();
    // 22:00 CET on 3 January is 21:00Z: included. With a floating UNTIL of the same digits
    // the 3rd (22:00 > 21:00 wall clock) would be excluded.
    assert_eq!(
        got,
        [
            "2025-01-01T22:00:00",
            "2025-01-02T22:00:00",
            "2025-01-03T22:00:00"
        ],
        "UTC UNTIL compared as an instant"
    );
    let floating = RRule::parse("FREQ=DAILY;UNTIL=20250103T210000").unwrap();
    assert_eq!(
        floating.occurrences(dt("2025-01-01T22:00"), &tz).count(),
        2,
        "floating UNTIL is wall clock"
    );
}

const RULES: [&str; 10] = [
    "FREQ=DAILY",
    "FREQ=DAILY;INTERVAL=3",
    "FREQ=WEEKLY;BYDAY=SA,SU",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,FR;WKST=SU",
    "FREQ=MONTHLY;BYDAY=-1FR",
    "FREQ=MONTHLY;INTERVAL=5;BYMONTHDAY=31",
    "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
    "FREQ=YEARLY;INTERVAL=3;BYDAY=20MO",
    "FREQ=DAILY;UNTIL=20300101T000000Z",
];

proptest! {
    /// `occurrences_from` jumps to the period of `after` instead of walking from DTSTART; it
    /// must give exactly the occurrences at or after `after`.
    #[test]
    fn occurrences_from_equals_filtered_walk(
        rule in 0..RULES.len(),
        start_day in 0i64..2000,
        after_day in -100i64..5000,
        hour in 0i8..24,
    ) {
        let rule = RRule::parse(RULES[rule]).unwrap();
        let base = civil::date(2020, 1, 1).at(hour, 0, 0, 0);
        let dtstart = base.checked_add(jiff::Span::new().days(start_day)).unwrap();
        let after = dtstart.checked_add(jiff::Span::new().days(after_day).hours(7)).unwrap();
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let walked: Vec<_> = rule.occurrences(dtstart, &tz).filter(|d| *d >= after).take(8).collect();
        let jumped: Vec<_> = rule.occurrences_from(dtstart, &tz, after).take(8).collect();
        prop_assert_eq!(walked, jumped);
    }
}
