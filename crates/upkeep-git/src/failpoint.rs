//! Failpoints: the crash tests' way to stop a real `upkeep` process at an exact step.
//!
//! `UPKEEP_FAILPOINT=<step>[:<n>]` (several separated by `,`) makes the process abort — as
//! abruptly as `kill -9`: no destructors, no flushing — the `n`-th time (default: the first)
//! it reaches `<step>`. The steps of a write are named where they are reached: `read`, `edit`,
//! `commit`, `journal`, `rename`, `write`, `index`, `ref`, `record`, `push` (see docs/cli.md). Without
//! the variable a failpoint costs one relaxed atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

struct Point {
    step: String,
    at: u32,
    hits: AtomicU32,
}

fn points() -> &'static [Point] {
    static POINTS: OnceLock<Vec<Point>> = OnceLock::new();
    POINTS.get_or_init(|| {
        std::env::var("UPKEEP_FAILPOINT")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                let (step, at) = s.trim().split_once(':').unwrap_or((s.trim(), "1"));
                Point {
                    step: step.to_owned(),
                    at: at.parse().unwrap_or(1).max(1),
                    hits: AtomicU32::new(0),
                }
            })
            .collect()
    })
}

/// Aborts the process here when `UPKEEP_FAILPOINT` names `step` (see the module docs).
pub fn failpoint(step: &str) {
    for p in points() {
        if p.step == step && p.hits.fetch_add(1, Ordering::Relaxed) + 1 == p.at {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("upkeep: failpoint {step}: aborting");
            }
            std::process::abort();
        }
    }
}
