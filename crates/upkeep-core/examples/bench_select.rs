//! upkeep's side of the "select the latest allowed version from 100k tags" benchmark.
//!
//! It reads the same tag file as the Go (Masterminds/semver) and Node (npm `semver`) peers, so
//! the three are compared on identical input in the same run (`bench/run`). Like the peers, it
//! reads the tags into memory and parses the range once before timing; each timed run is one
//! `Policy::select` over all tags: parsing every tag, matching the constraint and keeping the
//! greatest. One untimed warm-up run, then the median of REPS runs.
//!
//! Usage: `bench_select TAGS_FILE RANGE [REPS]`. Prints one JSON object on stdout:
//! `{"peer", "selected", "median_ms", "runs_ms", "tags", "considered", "ignored"}`.

// A benchmark driver: its output is its purpose.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::Instant;

use jiff::Timestamp;
use upkeep_core::version::{Constraints, Policy, PolicyKind, TagInfo};

mod support;

fn main() -> ExitCode {
    support::exit(run())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(file), Some(range)) = (args.first(), args.get(1)) else {
        return Err("usage: bench_select TAGS_FILE RANGE [REPS]".to_owned());
    };
    let reps = support::count(args.get(2), "REPS", 7)?;
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let tags: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let infos: Vec<TagInfo<'_>> = tags
        .iter()
        .map(|tag| TagInfo {
            tag,
            first_seen: None,
        })
        .collect();

    let constraints = Constraints::parse(range).map_err(|e| match e.hint() {
        Some(h) => format!("{e}\nhint: {h}"),
        None => e.to_string(),
    })?;
    let policy = Policy {
        kind: PolicyKind::SemverRange(constraints),
        filter: None,
        minimum_release_age: None,
        pin: None,
    };
    // No minimum release age, so `now` does not matter; fixed anyway (the core has no clock).
    let now: Timestamp = "2025-03-20T00:00:00Z"
        .parse()
        .map_err(|e| format!("fixed timestamp: {e}"))?;

    let reference = policy.select(&infos, now); // warm-up, not timed
    let mut runs_ms = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        let got = policy.select(std::hint::black_box(&infos), now);
        runs_ms.push(start.elapsed().as_secs_f64() * 1e3);
        if got != reference {
            return Err("selection changed between runs".to_owned());
        }
    }
    let mut sorted = runs_ms.clone();
    sorted.sort_by(f64::total_cmp);

    let out = serde_json::json!({
        "peer": "upkeep",
        "selected": reference.selected,
        "median_ms": sorted[sorted.len() / 2],
        "runs_ms": runs_ms,
        "tags": tags.len(),
        "considered": reference.considered,
        "ignored": reference.ignored,
    });
    println!("{out}");
    Ok(())
}
