use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn entry(start: &str, end: &str, tz: Option<&str>) -> Entry {
    Entry {
        uid: uid(Kind::Window, "ops/prod", start),
        sequence: 7,
        kind: Kind::Window,
        subject: "ops/prod".into(),
        start: ts(start),
        end: ts(end),
        tz: tz.map(str::to_owned),
        summary: "prod: window nightly".into(),
        description: String::new(),
    }
}

fn zones(names: &[&str]) -> BTreeMap<String, TimeZone> {
    names
        .iter()
        .map(|n| ((*n).to_owned(), TimeZone::get(n).unwrap()))
        .collect()
}

/// The unfolded content lines of a feed.
fn lines(ics: &str) -> Vec<String> {
    ics.replace("\r\n ", "")
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn escaping() {
    let cases = [
        ("a,b;c\\d", "a\\,b\\;c\\\\d", "the three specials"),
        ("one\ntwo", "one\\ntwo", "LF"),
        ("one\r\ntwo", "one\\ntwo", "CRLF is one newline"),
        ("one\rtwo", "one\\ntwo", "a lone CR is a newline too"),
        ("bell\u{7}x\u{1b}", "bellx", "other controls dropped"),
        ("tab\there", "tab\there", "tab is allowed"),
        (
            "prod-Zürich: 1.0 → 2.0",
            "prod-Zürich: 1.0 → 2.0",
            "unicode unchanged",
        ),
    ];
    for (input, want, why) in cases {
        assert_eq!(escape_text(input), want, "{why}");
    }
}

#[test]
fn folding_at_75_octets_on_char_boundaries() {
    let cases = [
        (
            "SUMMARY:".to_owned() + &"a".repeat(67),
            1,
            "exactly 75 octets stays one line",
        ),
        ("SUMMARY:".to_owned() + &"a".repeat(68), 2, "76 octets fold"),
        (
            "SUMMARY:".to_owned() + &"€".repeat(60),
            3,
            "3-octet chars, 188 octets: 74 + 1+72 + 1+42",
        ),
        ("SUMMARY:".to_owned() + &"🦀".repeat(40), 3, "4-octet chars"),
    ];
    for (line, count, why) in cases {
        let folded = fold_line(&line);
        assert!(folded.ends_with("\r\n"), "{why}");
        let parts: Vec<&str> = folded.trim_end_matches("\r\n").split("\r\n").collect();
        assert_eq!(parts.len(), count, "{why}: {folded:?}");
        for (i, p) in parts.iter().enumerate() {
            assert!(p.len() <= 75, "{why}: part {i} has {} octets", p.len());
            assert_eq!(i > 0, p.starts_with(' '), "{why}: continuation marker");
        }
        assert_eq!(
            folded.replace("\r\n ", "").trim_end(),
            line,
            "{why}: unfolds back"
        );
    }
}

#[test]
fn sequence_never_decreases() {
    let m = Memo {
        fingerprint: 1,
        sequence: 10,
    };
    let cases = [
        (None, 1, 5, 5, "unknown event: the floor"),
        (
            Some(m),
            1,
            50,
            10,
            "unchanged: kept even when the floor is higher",
        ),
        (Some(m), 2, 5, 11, "moved: one more than before"),
        (Some(m), 2, 50, 50, "moved later in time: the floor"),
        (
            Some(Memo {
                fingerprint: 1,
                sequence: u32::MAX,
            }),
            2,
            0,
            u32::MAX,
            "saturates",
        ),
    ];
    for (memo, fingerprint, floor, want, why) in cases {
        assert_eq!(sequence(memo, fingerprint, floor), want, "{why}");
    }
    assert_eq!(clock_floor(ts("2024-06-01T00:00:00Z")), 0, "before 2025");
    assert_eq!(clock_floor(ts("2025-01-01T01:00:59Z")), 60, "minutes");
    assert!(
        i32::try_from(clock_floor(ts("9999-01-01T00:00:00Z"))).is_ok(),
        "fits INTEGER"
    );
}

#[test]
fn uids_are_stable_and_distinct() {
    let a = uid(Kind::Window, "ops/prod", "2026-03-29 nightly");
    assert_eq!(a, uid(Kind::Window, "ops/prod", "2026-03-29 nightly"));
    assert_eq!(
        a, "window-2d7357102ba457920d5c9a0d0cb60bd7.upkeep.dev",
        "the same on every run and build (FNV-1a, not std's hasher; checked with a python FNV-1a)"
    );
    for (other, why) in [
        (
            uid(Kind::Exclusion, "ops/prod", "2026-03-29 nightly"),
            "kind",
        ),
        (
            uid(Kind::Window, "ops/prod2", "2026-03-29 nightly"),
            "subject",
        ),
        (uid(Kind::Window, "ops/prod", "2026-03-30 nightly"), "key"),
        (
            uid(Kind::Window, "ops/pro", "d\u{0}2026-03-29 nightly"),
            "separator",
        ),
    ] {
        assert_ne!(a, other, "{why}");
    }
    assert_eq!(
        crate::redact::redact(&format!("UID:{a}")),
        format!("UID:{a}"),
        "not taken for a credential by the output redaction"
    );
    let odd = uid(Kind::ClusterUpgrade, "a,b;c\nd/é", "1.0");
    assert!(
        odd.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c)),
        "{odd}"
    );
}

#[test]
fn berlin_times_carry_tzid_and_a_vtimezone_of_the_real_transitions() {
    let e = [
        entry(
            "2026-03-28T21:00:00Z",
            "2026-03-29T03:00:00Z",
            Some("Europe/Berlin"),
        ),
        entry(
            "2026-10-24T20:00:00Z",
            "2026-10-25T03:00:00Z",
            Some("Europe/Berlin"),
        ),
    ];
    let ics = write_ics(
        &e,
        "fleet",
        ts("2026-01-01T00:00:00Z"),
        &zones(&["Europe/Berlin"]),
    );
    assert!(ics.split("\r\n").all(|l| l.len() <= 75), "folded");
    let l = lines(&ics);
    let tz: Vec<&str> = l
        .iter()
        .skip_while(|x| *x != "BEGIN:VTIMEZONE")
        .take_while(|x| *x != "END:VTIMEZONE")
        .map(String::as_str)
        .collect();
    assert_eq!(
        tz,
        [
            "BEGIN:VTIMEZONE",
            "TZID:Europe/Berlin",
            // In effect at the first event: winter time since October 2025.
            "BEGIN:STANDARD",
            "DTSTART:20251026T030000",
            "TZOFFSETFROM:+0200",
            "TZOFFSETTO:+0100",
            "TZNAME:CET",
            "END:STANDARD",
            "BEGIN:DAYLIGHT",
            "DTSTART:20260329T020000",
            "TZOFFSETFROM:+0100",
            "TZOFFSETTO:+0200",
            "TZNAME:CEST",
            "END:DAYLIGHT",
            "BEGIN:STANDARD",
            "DTSTART:20261025T030000",
            "TZOFFSETFROM:+0200",
            "TZOFFSETTO:+0100",
            "TZNAME:CET",
            "END:STANDARD",
        ]
    );
    let times: Vec<&str> = l
        .iter()
        .filter(|x| x.starts_with("DTSTART;") || x.starts_with("DTEND"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        times,
        [
            "DTSTART;TZID=Europe/Berlin:20260328T220000",
            // 03:00Z is 05:00 CEST: the night of the spring change.
            "DTEND;TZID=Europe/Berlin:20260329T050000",
            "DTSTART;TZID=Europe/Berlin:20261024T220000",
            // 03:00Z is 04:00 CET, after the fall change.
            "DTEND;TZID=Europe/Berlin:20261025T040000",
        ]
    );
}

#[test]
fn a_vtimezone_starting_in_summer_reaches_back_to_standard_time() {
    let e = [entry(
        "2026-06-01T10:00:00Z",
        "2026-06-01T11:00:00Z",
        Some("America/New_York"),
    )];
    let l = lines(&write_ics(
        &e,
        "x",
        ts("2026-01-01T00:00:00Z"),
        &zones(&["America/New_York"]),
    ));
    let parts: Vec<&str> = l
        .iter()
        .filter(|x| {
            x.starts_with("DTSTART:") || x.starts_with("BEGIN:STA") || x.starts_with("BEGIN:DAY")
        })
        .map(String::as_str)
        .collect();
    assert_eq!(
        parts,
        [
            "BEGIN:STANDARD",
            "DTSTART:20251102T020000",
            "BEGIN:DAYLIGHT",
            "DTSTART:20260308T020000",
        ]
    );
}

#[test]
fn the_second_of_a_repeated_hour_is_written_in_utc() {
    // 2026-10-25 02:30 happens twice in Berlin: 00:30Z (CEST) and 01:30Z (CET).
    let e = [entry(
        "2026-10-25T00:30:00Z",
        "2026-10-25T01:30:00Z",
        Some("Europe/Berlin"),
    )];
    let l = lines(&write_ics(
        &e,
        "x",
        ts("2026-01-01T00:00:00Z"),
        &zones(&["Europe/Berlin"]),
    ));
    assert!(
        l.contains(&"DTSTART;TZID=Europe/Berlin:20261025T023000".to_owned()),
        "{l:?}"
    );
    assert!(l.contains(&"DTEND:20261025T013000Z".to_owned()), "{l:?}");
}

#[test]
fn utc_and_unknown_zones_are_written_in_utc() {
    let e = [
        entry("2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z", None),
        entry("2026-05-02T10:00:00Z", "2026-05-02T11:00:00Z", Some("UTC")),
        entry(
            "2026-05-03T10:00:00Z",
            "2026-05-03T11:00:00Z",
            Some("Mars/Olympus"),
        ),
    ];
    let ics = write_ics(&e, "x", ts("2026-01-01T00:00:00Z"), &zones(&["UTC"]));
    assert!(!ics.contains("VTIMEZONE"), "{ics}");
    assert!(!ics.contains("TZID"), "{ics}");
    assert_eq!(ics.matches("DTSTART:2026050").count(), 3);
}

#[test]
fn zones_without_changes_have_one_block() {
    let cases = [
        (
            "Asia/Kolkata",
            "TZOFFSETTO:+0530",
            "20260501T153000",
            "last change in 1945: that one onset",
        ),
        (
            "Etc/GMT-14",
            "TZOFFSETTO:+1400",
            "20260502T000000",
            "no transitions at all: a 1970 onset",
        ),
    ];
    for (zone, to, local, why) in cases {
        let e = [entry(
            "2026-05-01T10:00:00Z",
            "2026-05-01T11:00:00Z",
            Some(zone),
        )];
        let l = lines(&write_ics(
            &e,
            "x",
            ts("2026-01-01T00:00:00Z"),
            &zones(&[zone]),
        ));
        assert_eq!(
            l.iter().filter(|x| *x == "BEGIN:STANDARD").count(),
            1,
            "{why}: {l:?}"
        );
        assert!(!l.iter().any(|x| x == "BEGIN:DAYLIGHT"), "{why}");
        assert!(l.contains(&to.to_owned()), "{why}: {l:?}");
        assert!(
            l.contains(&format!("DTSTART;TZID={zone}:{local}")),
            "{why}: {l:?}"
        );
    }
}
