//! upkeep's side of the "next 10 allowed intervals for 10k schedules" benchmark.
//!
//! It reads the JSON written by `bench/gen_schedules.py`, the same file the python-dateutil
//! peer reads. Schedules are converted into `ScheduleSpec` and validated with `Schedule::new`
//! *before* timing (the peer likewise parses its RRULEs and time zones before timing); each
//! timed run asks every schedule for `next_intervals(from, count, UpgradeKind::Major)`. One
//! untimed warm-up run, then the median of RUNS runs.
//!
//! The checksum (number of intervals, sums of start and end epoch seconds) is what
//! `bench/run` compares with the peer's: a difference means one side computes different
//! intervals, and `--dump FILE` writes `index start end` lines to find out where.
//!
//! Usage: `bench_windows SCHEDULES_JSON [RUNS] [--dump FILE]`. Prints one JSON object.

// A benchmark driver: its output is its purpose.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;
use upkeep_core::schedule::{
    Exclusion, ExclusionScope, Interval, RRule, Schedule, ScheduleSpec, TimeSpec, Window,
};
use upkeep_core::version::UpgradeKind;

mod support;

fn main() -> ExitCode {
    support::exit(run())
}

fn field<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at}: missing string field {key:?}"))
}

fn time(v: &Value, key: &str, at: &str) -> Result<TimeSpec, String> {
    let text = field(v, key, at)?;
    TimeSpec::parse(text).map_err(|e| format!("{at}.{key}: {e}"))
}

fn recurrence(v: &Value, at: &str) -> Result<Option<RRule>, String> {
    match v.get("recurrence") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => RRule::parse(s)
            .map(Some)
            .map_err(|e| format!("{at}.recurrence: {e}")),
        Some(other) => Err(format!("{at}.recurrence: not a string: {other}")),
    }
}

fn items<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a [Value], String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("{at}: {key:?} is not an array")),
    }
}

fn spec(v: &Value, at: &str) -> Result<ScheduleSpec, String> {
    let zone = v.get("timeZone").and_then(Value::as_str).unwrap_or("UTC");
    let time_zone = TimeZone::get(zone).map_err(|e| format!("{at}.timeZone: {zone:?}: {e}"))?;
    let mut windows = Vec::new();
    for (i, w) in items(v, "maintenanceWindows", at)?.iter().enumerate() {
        let at = format!("{at}.maintenanceWindows[{i}]");
        windows.push(Window {
            name: field(w, "name", &at)?.to_owned(),
            start: time(w, "startTime", &at)?,
            end: time(w, "endTime", &at)?,
            recurrence: recurrence(w, &at)?,
        });
    }
    let mut exclusions = Vec::new();
    for (i, x) in items(v, "maintenanceExclusions", at)?.iter().enumerate() {
        let at = format!("{at}.maintenanceExclusions[{i}]");
        let scope = match x.get("scope").and_then(Value::as_str) {
            None | Some("NoUpgrades") => ExclusionScope::NoUpgrades,
            Some("NoMinorUpgrades") => ExclusionScope::NoMinorUpgrades,
            Some("NoMajorUpgrades") => ExclusionScope::NoMajorUpgrades,
            Some(other) => return Err(format!("{at}.scope: unknown scope {other:?}")),
        };
        exclusions.push(Exclusion {
            name: field(x, "name", &at)?.to_owned(),
            start: time(x, "startTime", &at)?,
            end: time(x, "endTime", &at)?,
            recurrence: recurrence(x, &at)?,
            scope,
        });
    }
    Ok(ScheduleSpec {
        time_zone,
        always_allowed: false,
        windows,
        exclusions,
        freeze: None,
    })
}

fn next_all(schedules: &[Schedule], from: Timestamp, count: usize) -> Vec<Vec<Interval>> {
    schedules
        .iter()
        .map(|s| s.next_intervals(from, count, UpgradeKind::Major))
        .collect()
}

fn run() -> Result<(), String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut dump = None;
    if let Some(i) = args.iter().position(|a| a == "--dump") {
        let path = args.get(i + 1).cloned().ok_or("--dump needs a file name")?;
        dump = Some(path);
        args.drain(i..=i + 1);
    }
    let Some(file) = args.first() else {
        return Err("usage: bench_windows SCHEDULES_JSON [RUNS] [--dump FILE]".to_owned());
    };
    let runs = support::count(args.get(1), "RUNS", 7)?;

    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
    let from: Timestamp = field(&doc, "from", file)?
        .parse()
        .map_err(|e| format!("{file}: from: {e}"))?;
    let count = doc
        .get("count")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("{file}: missing count"))?;

    let build_start = Instant::now();
    let mut schedules = Vec::new();
    for (i, v) in items(&doc, "schedules", file)?.iter().enumerate() {
        let at = format!("schedules[{i}]");
        let spec = spec(v, &at)?;
        schedules.push(Schedule::new(spec).map_err(|e| format!("{at}: {e}"))?);
    }
    let build_ms = build_start.elapsed().as_secs_f64() * 1e3;

    let reference = next_all(&schedules, from, count); // warm-up, not timed
    let mut runs_ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let got = next_all(std::hint::black_box(&schedules), from, count);
        runs_ms.push(start.elapsed().as_secs_f64() * 1e3);
        if got != reference {
            return Err("result changed between runs".to_owned());
        }
    }
    let mut sorted = runs_ms.clone();
    sorted.sort_by(f64::total_cmp);

    let mut intervals = 0_u64;
    let mut sum_start = 0_i64;
    let mut sum_end = 0_i64;
    let mut unbounded = 0_u64;
    let mut lines = String::new();
    for (i, list) in reference.iter().enumerate() {
        for iv in list {
            intervals += 1;
            let start = iv.start.as_second();
            sum_start += start;
            if let Some(end) = iv.end {
                sum_end += end.as_second();
                if dump.is_some() {
                    let _ = writeln!(lines, "{i} {start} {}", end.as_second());
                }
            } else {
                unbounded += 1;
                if dump.is_some() {
                    let _ = writeln!(lines, "{i} {start} -");
                }
            }
        }
    }
    if let Some(path) = dump {
        std::fs::write(&path, lines).map_err(|e| format!("{path}: {e}"))?;
    }

    let out = serde_json::json!({
        "peer": "upkeep",
        "median_ms": sorted[sorted.len() / 2],
        "runs_ms": runs_ms,
        "schedules": schedules.len(),
        "intervals": intervals,
        "note": "schedules parsed and validated before timing (not included in median_ms)",
        "build_ms": build_ms,
        "checksum": {
            "intervals": intervals,
            "sum_start": sum_start,
            "sum_end": sum_end,
        },
        "unbounded": unbounded,
    });
    println!("{out}");
    Ok(())
}
