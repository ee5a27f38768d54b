//! Criterion benchmark: the next 10 allowed intervals for 10k schedules.
//!
//! Schedules are generated here with a fixed-seed xorshift from templates like those of
//! `bench/gen_schedules.py` (weekend, nightly, first-Saturday, last-Sunday and last-weekday
//! windows in five time zones, some with a recurring or one-off exclusion; start times that hit
//! DST gaps and folds). Each template's dtstart is an occurrence of its rule. Building the
//! schedules is outside the measured loop. The comparison against python-dateutil lives in
//! `bench/run`; this bench tracks upkeep alone over time.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use jiff::civil::{DateTime, date};
use jiff::tz::TimeZone;
use upkeep_core::schedule::{
    Exclusion, ExclusionScope, RRule, Schedule, ScheduleSpec, TimeSpec, Window,
};
use upkeep_core::version::UpgradeKind;

#[path = "../tests/support/rng.rs"]
mod rng;
use rng::Rng;

const ZONES: [&str; 5] = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "UTC",
    "Asia/Tokyo",
];

/// (rule, a first occurrence date in 2024, start hours, (min, max) length in half hours)
type Template = (&'static str, (i16, i8, i8), &'static [i8], (i64, i64));

const WINDOWS: [Template; 6] = [
    (
        "FREQ=WEEKLY;BYDAY=SA,SU",
        (2024, 1, 6),
        &[0, 1, 2, 22],
        (4, 16),
    ),
    ("FREQ=DAILY", (2024, 3, 1), &[1, 2, 23], (2, 12)),
    ("FREQ=MONTHLY;BYDAY=1SA", (2024, 1, 6), &[0, 2, 8], (8, 24)),
    ("FREQ=MONTHLY;BYDAY=1SU", (2024, 1, 7), &[1, 2], (2, 10)),
    ("FREQ=MONTHLY;BYDAY=-1SU", (2024, 1, 28), &[1, 2], (4, 12)),
    (
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        (2024, 1, 31),
        &[18, 21],
        (6, 20),
    ),
];

const EXCLUSIONS: [Template; 3] = [
    (
        "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=20",
        (2023, 12, 20),
        &[0],
        (672, 672),
    ),
    ("FREQ=WEEKLY;BYDAY=SU", (2024, 1, 7), &[3, 4], (2, 6)),
    ("FREQ=MONTHLY;BYMONTHDAY=1", (2024, 1, 1), &[0], (12, 24)),
];

fn span(rng: &mut Rng, t: &Template) -> (DateTime, DateTime, RRule) {
    let (rule, (y, m, d), hours, (lo, hi)) = *t;
    let hour = rng.pick(hours);
    let start = date(y, m, d).at(hour, 0, 0, 0);
    let halves = rng.int(lo, hi);
    let end = start
        .checked_add(jiff::SignedDuration::from_mins(30 * halves))
        .expect("in range");
    (start, end, RRule::parse(rule).expect("valid rule"))
}

fn gen_schedules(count: usize, seed: u64) -> Vec<Schedule> {
    let mut rng = Rng(seed);
    (0..count)
        .map(|_| {
            let zone = rng.pick(&ZONES);
            let time_zone = TimeZone::get(zone).expect("known zone");
            let windows = (0..=rng.below(2))
                .map(|i| {
                    let t = rng.pick(&WINDOWS);
                    let (start, end, rule) = span(&mut rng, &t);
                    Window {
                        name: format!("w{i}"),
                        start: TimeSpec::Civil(start),
                        end: TimeSpec::Civil(end),
                        recurrence: Some(rule),
                    }
                })
                .collect();
            let exclusions = if rng.below(2) == 0 {
                let t = rng.pick(&EXCLUSIONS);
                let (start, end, rule) = span(&mut rng, &t);
                vec![Exclusion {
                    name: "x0".to_owned(),
                    start: TimeSpec::Civil(start),
                    end: TimeSpec::Civil(end),
                    recurrence: Some(rule),
                    scope: ExclusionScope::NoUpgrades,
                }]
            } else {
                Vec::new()
            };
            Schedule::new(ScheduleSpec {
                time_zone,
                always_allowed: false,
                windows,
                exclusions,
                freeze: None,
            })
            .expect("valid schedule")
        })
        .collect()
}

fn next_windows(c: &mut Criterion) {
    let schedules = gen_schedules(10_000, 0x5EED_2024_0101);
    let from: Timestamp = "2025-03-20T00:00:00Z".parse().expect("valid instant");
    c.bench_function("next_10_intervals_10k_schedules", |b| {
        b.iter(|| {
            black_box(&schedules)
                .iter()
                .map(|s| s.next_intervals(from, 10, UpgradeKind::Major).len())
                .sum::<usize>()
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = next_windows
}
criterion_main!(benches);
