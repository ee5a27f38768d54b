//! Differential test of whole schedules against python-dateutil: "open at t?" and "the next
//! N allowed intervals", at the edges — occurrences far longer than their rule's period,
//! overlapping occurrences, COUNT/UNTIL, long exclusions, DST, a large INTERVAL whose first
//! match is centuries away, and ends at or past the last instant jiff represents
//! (9999-12-30T22:00Z).
//!
//! `tests/dateutil/schedule.py` expands every occurrence from DTSTART with dateutil and
//! computes allowed time by brute force (sort, merge, subtract); upkeep answers with its
//! lazy engine, which jumps into the middle of a rule and skips occurrences that lie inside
//! others. The answers must be identical: open/closed, the window or exclusion named, `until`,
//! `next_open`, and each interval's start, end and window names. Upkeep's documented search
//! limits (10-year horizon, 400-day look-back, "past the last instant means never") are
//! restated in the script's docstring.
//!
//! DST zones are only used before 2037: dateutil 2.9 reads only the TZif v1 table, which ends
//! there (see `schedule_dateutil.rs`). Far-future cases use UTC and Asia/Kolkata.
//!
//! If python3 or python-dateutil is missing this test FAILS: the comparison is the point.

use jiff::{Timestamp, tz::TimeZone};
use serde_json::{Value, json};
use upkeep_core::schedule::{
    ClosedReason, Exclusion, ExclusionScope, Freeze, RRule, Schedule, ScheduleSpec, TimeSpec,
    Verdict, Window,
};
use upkeep_core::version::UpgradeKind;

#[path = "support/rng.rs"]
mod rng;
#[path = "support/dateutil.rs"]
mod support;
use rng::Rng;

/// (name, startTime, endTime, recurrence)
type Part = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

#[derive(Debug, Clone)]
struct Case {
    reason: String,
    tz: &'static str,
    always: bool,
    windows: Vec<Part>,
    exclusions: Vec<Part>,
    freeze: Option<&'static str>,
    at: Vec<String>,
    from: String,
    n: usize,
}

fn case(reason: &str, tz: &'static str, windows: Vec<Part>) -> Case {
    Case {
        reason: reason.to_owned(),
        tz,
        always: false,
        windows,
        exclusions: Vec::new(),
        freeze: None,
        at: Vec::new(),
        from: String::new(),
        n: 5,
    }
}

impl Case {
    fn at(mut self, ts: &[&str]) -> Case {
        self.at = ts.iter().map(|s| (*s).to_owned()).collect();
        self
    }
    fn from(mut self, from: &str, n: usize) -> Case {
        from.clone_into(&mut self.from);
        self.n = n;
        self
    }
    fn excluding(mut self, x: Vec<Part>) -> Case {
        self.exclusions = x;
        self
    }
    fn frozen_until(mut self, f: &'static str) -> Case {
        self.freeze = Some(f);
        self
    }
    fn always(mut self) -> Case {
        self.always = true;
        self
    }

    fn schedule(&self) -> Schedule {
        let time = |s: &str| TimeSpec::parse(s).unwrap();
        let rule = |r: Option<&str>| r.map(|r| RRule::parse(r).unwrap());
        Schedule::new(ScheduleSpec {
            time_zone: TimeZone::get(self.tz).unwrap(),
            always_allowed: self.always,
            windows: self
                .windows
                .iter()
                .map(|(n, s, e, r)| Window {
                    name: (*n).to_owned(),
                    start: time(s),
                    end: time(e),
                    recurrence: rule(*r),
                })
                .collect(),
            exclusions: self
                .exclusions
                .iter()
                .map(|(n, s, e, r)| Exclusion {
                    name: (*n).to_owned(),
                    start: time(s),
                    end: time(e),
                    recurrence: rule(*r),
                    scope: ExclusionScope::NoUpgrades,
                })
                .collect(),
            freeze: self.freeze.map(|f| Freeze {
                until: time(f),
                reason: None,
            }),
        })
        .unwrap_or_else(|e| panic!("{}: invalid schedule: {e}", self.reason))
    }

    fn to_json(&self) -> Value {
        let parts = |ps: &[Part]| -> Vec<Value> {
            ps.iter()
                .map(|(n, s, e, r)| json!({"name": n, "start": s, "end": e, "rrule": r}))
                .collect()
        };
        json!({
            "tz": self.tz,
            "always": self.always,
            "windows": parts(&self.windows),
            "exclusions": parts(&self.exclusions),
            "freeze": self.freeze,
            "at": self.at,
            "from": self.from,
            "n": self.n,
            "horizon_days": upkeep_core::schedule::HORIZON_DAYS,
            "lookback_days": upkeep_core::schedule::LOOKBACK_DAYS,
        })
    }
}

fn instant(t: Timestamp) -> Value {
    if t == Timestamp::MAX {
        Value::Null
    } else if t == Timestamp::MIN {
        json!("min")
    } else {
        json!(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
    }
}

fn opt(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, instant)
}

fn ours(c: &Case) -> Value {
    let s = c.schedule();
    let checks: Vec<Value> =
        c.at.iter()
            .map(|a| {
                let at: Timestamp = a.parse().unwrap();
                match s.check(at, UpgradeKind::Major) {
                    Verdict::Open { window, until } => {
                        json!({"open": true, "window": window, "until": opt(until)})
                    }
                    Verdict::Closed { reason, next_open } => {
                        let mut v = json!({"open": false, "next_open": opt(next_open)});
                        let m = v.as_object_mut().unwrap();
                        match reason {
                            ClosedReason::Frozen { until, .. } => {
                                m.insert("reason".into(), json!("frozen"));
                                m.insert("until".into(), instant(until));
                            }
                            ClosedReason::Excluded { name, until, .. } => {
                                m.insert("reason".into(), json!("excluded"));
                                m.insert("excluded".into(), json!(name));
                                m.insert("until".into(), instant(until));
                            }
                            ClosedReason::OutsideWindows => {
                                m.insert("reason".into(), json!("outside"));
                            }
                        }
                        v
                    }
                }
            })
            .collect();
    let from: Timestamp = c.from.parse().unwrap();
    let intervals: Vec<Value> = s
        .next_intervals(from, c.n, UpgradeKind::Major)
        .into_iter()
        .map(|i| json!({"start": instant(i.start), "end": opt(i.end), "windows": i.windows}))
        .collect();
    json!({"checks": checks, "intervals": intervals})
}

fn dateutil(cases: &[Case]) -> (String, Vec<Value>) {
    support::run("schedule.py", cases.iter().map(Case::to_json).collect())
}

/// Window names are not compared where the script leaves them out (`null`): an interval
/// running past the horizon or begun before the look-back limit.
fn comparable(mut ours: Value, theirs: &Value) -> Value {
    if let (Some(mine), Some(their)) = (
        ours["intervals"].as_array_mut(),
        theirs["intervals"].as_array(),
    ) {
        for (m, t) in mine.iter_mut().zip(their) {
            if t["windows"].is_null() {
                m["windows"] = Value::Null;
            }
        }
    }
    ours
}

fn compare(cases: &[Case]) {
    let (version, theirs) = dateutil(cases);
    support::assert_verified_version(&version);
    let mut failures = Vec::new();
    for (c, t) in cases.iter().zip(&theirs) {
        let mine = comparable(ours(c), t);
        if &mine != t {
            failures.push(format!("{}\n  ours     {mine}\n  dateutil {t}", c.reason));
        }
    }
    support::assert_none_differ(&failures, cases.len(), "cases", &version);
}

fn edge_cases() -> Vec<Case> {
    vec![
        case(
            "issue 11: a daily window whose first occurrence lasts until 9999-12-31 (wall clock) is open inside it; its end is past the last instant, so it never ends",
            "UTC",
            vec![("forever", "2026-01-01T00:00:00", "9999-12-31T00:00:00", Some("FREQ=DAILY"))],
        )
        .at(&["2026-06-01T22:30:00Z", "2025-12-31T23:59:59Z", "2036-01-01T00:00:00Z"])
        .from("2026-06-01T00:00:00Z", 3),
        case(
            "the same with an instant startTime, in a zone with a positive offset",
            "Asia/Kolkata",
            vec![("forever", "2026-01-01T00:00:00Z", "9999-12-31T00:00:00", Some("FREQ=DAILY"))],
        )
        .at(&["2026-06-01T22:30:00Z", "2025-12-31T23:59:59Z"])
        .from("2027-06-01T00:00:00Z", 3),
        case(
            "a one-off window that ends past the last instant never ends",
            "UTC",
            vec![("once", "2026-01-01T00:00:00", "9999-12-31T12:00:00", None)],
        )
        .at(&["2026-06-01T22:30:00Z", "9999-12-30T21:00:00Z"])
        .from("2025-06-01T00:00:00Z", 3),
        case(
            "daily occurrences of 400 days until 1 March: one merged interval from the first start to the last end, a year past the last start",
            "UTC",
            vec![("long", "2026-01-01T00:00:00", "2027-02-05T00:00:00", Some("FREQ=DAILY;UNTIL=20260301"))],
        )
        .at(&["2026-06-01T22:30:00Z", "2027-04-05T23:59:59Z", "2027-04-06T00:00:00Z", "2025-12-31T00:00:00Z"])
        .from("2026-12-01T00:00:00Z", 3),
        case(
            "COUNT with occurrences longer than the period: ten weekly occurrences of 100 days",
            "UTC",
            vec![("counted", "2026-01-05T06:00:00", "2026-04-15T06:00:00", Some("FREQ=WEEKLY;COUNT=10"))],
        )
        .at(&["2026-03-01T00:00:00Z", "2026-06-22T05:59:59Z", "2026-06-22T06:00:00Z"])
        .from("2026-05-01T00:00:00Z", 3),
        case(
            "monthly 40-day occurrences in January-March and July overlap into one interval per run, with gaps between runs",
            "UTC",
            vec![("quarterly", "2026-01-01T00:00:00", "2026-02-10T00:00:00", Some("FREQ=MONTHLY;BYMONTH=1,2,3,7;BYMONTHDAY=1"))],
        )
        .at(&["2026-03-31T00:00:00Z", "2026-04-10T00:00:00Z", "2026-06-30T23:00:00Z", "2026-07-20T00:00:00Z"])
        .from("2026-02-15T00:00:00Z", 6),
        case(
            "weekly occurrences of 7 days 4 hours over both Berlin DST changes chain into one interval that ends 7d4h (wall clock) after the last start",
            "Europe/Berlin",
            vec![("chained", "2025-03-01T22:00:00", "2025-03-09T02:00:00", Some("FREQ=WEEKLY;UNTIL=20251101T000000"))],
        )
        .at(&["2025-03-30T01:30:00Z", "2025-10-26T01:30:00Z", "2025-11-03T00:59:59Z", "2025-11-03T01:00:00Z"])
        .from("2025-04-01T00:00:00Z", 2),
        case(
            "New York: 30-hour daily occurrences starting 02:30 (in the March gap) overlap; the union ends 30 wall-clock hours after the last",
            "America/New_York",
            vec![("nights", "2025-03-05T02:30:00", "2025-03-06T08:30:00", Some("FREQ=DAILY;UNTIL=20251105T000000"))],
        )
        .at(&["2025-03-09T07:00:00Z", "2025-11-02T06:00:00Z", "2025-11-05T13:29:59Z", "2025-11-05T13:30:00Z"])
        .from("2025-03-08T00:00:00Z", 2),
        case(
            "a 35-day occurrence on the last Friday of each month overlaps the next one",
            "Europe/Berlin",
            vec![("month-end", "2025-01-31T18:00:00", "2025-03-07T18:00:00", Some("FREQ=MONTHLY;BYDAY=-1FR;COUNT=4"))],
        )
        .at(&["2025-02-28T16:59:59Z", "2025-05-30T15:59:59Z", "2025-05-30T16:00:00Z"])
        .from("2025-03-01T00:00:00Z", 3),
        case(
            "a yearly exclusion lasting a month cuts nightly windows; inside it the reason is the exclusion until its end",
            "Europe/Berlin",
            vec![("nights", "2025-01-01T22:00:00", "2025-01-02T02:00:00", Some("FREQ=DAILY"))],
        )
        .excluding(vec![("year-end", "2025-12-15T00:00:00", "2026-01-14T00:00:00", Some("FREQ=YEARLY"))])
        .at(&["2025-12-20T22:30:00Z", "2026-01-05T21:30:00Z", "2026-01-14T21:30:00Z", "2026-01-13T23:30:00Z"])
        .from("2025-12-20T00:00:00Z", 3),
        case(
            "an exclusion whose occurrences last until 9999 closes everything after its first start, forever",
            "UTC",
            vec![("nights", "2026-01-01T22:00:00", "2026-01-02T02:00:00", Some("FREQ=DAILY"))],
        )
        .excluding(vec![("forever", "2026-07-01T00:00:00", "9999-12-31T00:00:00", Some("FREQ=YEARLY"))])
        .at(&["2026-06-30T23:00:00Z", "2026-07-01T01:00:00Z", "2030-01-01T23:00:00Z"])
        .from("2026-06-29T00:00:00Z", 5),
        case(
            "an overlapping exclusion chain: daily 36-hour exclusions for a week close a week of nightly windows",
            "UTC",
            vec![("nights", "2026-01-01T22:00:00", "2026-01-02T02:00:00", Some("FREQ=DAILY"))],
        )
        .excluding(vec![("week", "2026-03-02T00:00:00", "2026-03-03T12:00:00", Some("FREQ=DAILY;COUNT=7"))])
        .at(&["2026-03-05T23:00:00Z", "2026-03-09T11:59:59Z", "2026-03-09T22:00:00Z"])
        .from("2026-03-01T00:00:00Z", 3),
        case(
            "the last daily occurrence that still starts before 9999-12-30T22:00Z ends past it: open, never ends",
            "UTC",
            vec![("late", "9990-01-01T20:00:00", "9990-01-02T02:00:00", Some("FREQ=DAILY"))],
        )
        .at(&["9999-12-30T21:00:00Z", "9999-12-30T19:59:59Z", "9999-12-29T23:00:00Z"])
        .from("9999-12-29T00:00:00Z", 5),
        case(
            "a daily 23:00 occurrence on 9999-12-30 would start after the last instant: it does not exist",
            "UTC",
            vec![("too-late", "9990-01-01T23:00:00", "9990-01-02T01:00:00", Some("FREQ=DAILY"))],
        )
        .at(&["9999-12-30T00:30:00Z", "9999-12-30T21:00:00Z"])
        .from("9999-12-29T00:00:00Z", 5),
        case(
            "Kolkata (+05:30): yearly windows near the end of year 9999",
            "Asia/Kolkata",
            vec![("yearly", "2026-12-30T20:00:00", "2027-01-01T20:00:00", Some("FREQ=YEARLY"))],
        )
        .at(&["9999-12-30T21:00:00Z", "9998-12-31T00:00:00Z", "9999-01-01T14:29:59Z", "9999-01-01T14:30:00Z"])
        .from("9998-06-01T00:00:00Z", 3),
        case(
            "INTERVAL=7 months with a rare filter: the first Monday 29 February is in 2512, 487 years after DTSTART",
            "UTC",
            vec![("rare", "2025-01-01T22:00:00", "2025-01-02T02:00:00", Some("FREQ=MONTHLY;INTERVAL=7;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO"))],
        )
        .at(&["2512-02-29T23:00:00Z", "2540-02-29T23:00:00Z", "2511-12-31T00:00:00Z"])
        .from("2511-01-01T00:00:00Z", 3),
        case(
            "INTERVAL=1 over 8,000 years: a yearly window from 2026 asked about in year 9998",
            "UTC",
            vec![("yearly", "2026-06-01T00:00:00", "2026-06-02T00:00:00", Some("FREQ=YEARLY"))],
        )
        .at(&["9998-06-01T12:00:00Z", "9998-06-02T00:00:00Z"])
        .from("9998-01-01T00:00:00Z", 3),
        case(
            "weekly COUNT=100000 (until year 3943) asked about in year 3000: counted once when the schedule is built, then jumped into",
            "UTC",
            vec![("counted", "2026-01-05T01:00:00", "2026-01-05T03:00:00", Some("FREQ=WEEKLY;COUNT=100000"))],
        )
        .at(&["3000-01-06T02:00:00Z", "3000-01-06T03:00:00Z"])
        .from("3000-01-01T00:00:00Z", 2),
        case(
            "look-back: daily 25-hour windows chained since 2020 began before the 400-day limit; the limit is reported",
            "UTC",
            vec![("chain", "2020-01-01T00:00:00", "2020-01-02T01:00:00", Some("FREQ=DAILY;UNTIL=20260601"))],
        )
        .at(&["2026-01-01T00:00:00Z"])
        .from("2026-01-01T00:00:00Z", 2),
        case(
            "look-back: one long occurrence chain whose every occurrence ends after the limit starts exactly at DTSTART, years back",
            "UTC",
            vec![("long", "2020-01-01T00:00:00", "2025-01-01T00:00:00", Some("FREQ=DAILY;UNTIL=20200201"))],
        )
        .at(&["2024-06-01T00:00:00Z"])
        .from("2024-06-01T00:00:00Z", 2),
        case(
            "look-back: a yearly exclusion that ended before the limit is found by searching back; the interval starts at its end",
            "UTC",
            vec![("decade", "2020-01-01T00:00:00", "2030-01-01T00:00:00", None)],
        )
        .excluding(vec![("xmas", "2020-12-24T00:00:00", "2020-12-27T00:00:00", Some("FREQ=YEARLY;UNTIL=20221231"))])
        .at(&["2025-06-01T00:00:00Z", "2022-12-25T00:00:00Z"])
        .from("2025-06-01T00:00:00Z", 2),
        case(
            "look-back: alwaysAllowed with a daily exclusion that stopped long ago starts at that exclusion's last end",
            "Europe/Berlin",
            vec![],
        )
        .always()
        .excluding(vec![("old", "2020-01-01T00:00:00", "2020-01-01T06:00:00", Some("FREQ=DAILY;COUNT=30"))])
        .at(&["2020-01-10T03:00:00Z", "2026-01-01T00:00:00Z"])
        .from("2026-01-01T00:00:00Z", 2),
        case(
            "a freeze inside a long occurrence: frozen until it ends, then open",
            "UTC",
            vec![("long", "2026-01-01T00:00:00", "2027-01-01T00:00:00", Some("FREQ=MONTHLY;COUNT=3"))],
        )
        .frozen_until("2026-03-01T00:00:00Z")
        .at(&["2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2027-03-01T00:00:00Z"])
        .from("2026-02-01T00:00:00Z", 2),
        case(
            "two windows overlapping a long one: merged, names in order of first appearance",
            "Europe/Berlin",
            vec![
                ("nights", "2025-01-01T22:00:00", "2025-01-02T02:00:00", Some("FREQ=DAILY")),
                ("summer", "2025-06-01T00:00:00", "2025-09-01T00:00:00", Some("FREQ=YEARLY")),
            ],
        )
        .at(&["2025-07-01T12:00:00Z", "2025-05-31T21:59:59Z", "2025-05-31T22:00:00Z", "2025-09-01T00:30:00Z"])
        .from("2025-05-30T00:00:00Z", 4),
    ]
}

#[test]
fn edge_cases_match_dateutil() {
    compare(&edge_cases());
}

const RULES: [&str; 10] = [
    "FREQ=DAILY",
    "FREQ=DAILY;INTERVAL=3",
    "FREQ=WEEKLY;BYDAY=SA,SU",
    "FREQ=WEEKLY;BYDAY=TU",
    "FREQ=MONTHLY;BYDAY=1SA",
    "FREQ=MONTHLY;BYMONTHDAY=-1",
    "FREQ=DAILY;COUNT=40",
    "FREQ=WEEKLY;UNTIL=20260301T000000",
    "FREQ=YEARLY;BYMONTH=3,10;BYDAY=-1SU",
    "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
];

/// Spans in hours: shorter than, close to, and far longer than the rules' periods.
const SPANS: [i64; 9] = [1, 4, 23, 24, 25, 30, 24 * 8, 24 * 40, 24 * 400];

const ZONES: [&str; 4] = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "UTC",
];

fn stamp(days: i64, hours: i64) -> String {
    let t = jiff::civil::date(2025, 1, 1)
        .at(0, 0, 0, 0)
        .checked_add(jiff::SignedDuration::from_hours(days * 24 + hours))
        .unwrap();
    t.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn generated(seed: u64, n: usize) -> Vec<Case> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    for i in 0..n {
        let tz = rng.pick(&ZONES);
        let part = |rng: &mut Rng, name: &'static str| -> Part {
            let day = i64::try_from(rng.below(300)).unwrap();
            let hour = rng.pick(&[0i64, 1, 2, 3, 22, 23, 12]);
            let span = rng.pick(&SPANS) + rng.pick(&[0i64, 0, 1]);
            (
                name,
                leak(stamp(day, hour)),
                leak(stamp(day, hour + span)),
                Some(rng.pick(&RULES)),
            )
        };
        let windows = (0..=rng.below(2))
            .map(|k| part(&mut rng, ["w0", "w1", "w2"][usize::try_from(k).unwrap()]))
            .collect();
        let exclusions = (0..rng.below(2)).map(|_| part(&mut rng, "x0")).collect();
        let base = i64::try_from(rng.below(300)).unwrap();
        let at: Vec<String> = (0..8)
            .map(|_| {
                let h = i64::try_from(rng.below(24 * 400)).unwrap();
                format!("{}Z", stamp(base, h))
            })
            .collect();
        let from = format!(
            "{}Z",
            stamp(base + 200, i64::try_from(rng.below(24)).unwrap())
        );
        let mut c = case(&format!("generated #{i} (seed {seed:#x})"), tz, windows)
            .excluding(exclusions)
            .from(&from, 6);
        c.at = at;
        out.push(c);
    }
    out
}

#[test]
fn generated_long_and_overlapping_schedules_match_dateutil() {
    let cases = generated(0x0011_0E55_u64, 120);
    // The generator must produce occurrences longer than their period, or it proves little.
    assert!(
        cases
            .iter()
            .any(|c| c.windows.iter().any(|w| w.3 == Some("FREQ=DAILY") && {
                let s: jiff::civil::DateTime = w.1.parse().unwrap();
                let e: jiff::civil::DateTime = w.2.parse().unwrap();
                e.duration_since(s) > jiff::SignedDuration::from_hours(24 * 30)
            })),
        "no daily window longer than a month"
    );
    compare(&cases);
}
