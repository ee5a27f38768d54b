//! Criterion benchmark: a semver-range policy selecting the latest allowed version from 100k
//! tags.
//!
//! The tags are generated here with a fixed-seed xorshift (no `rand` dependency, same tags on
//! every machine) in roughly the mix of `bench/gen_tags.py`: mostly SemVer with and without
//! `v`, prereleases, build metadata, and junk. The comparison against Masterminds/semver and
//! npm `semver` lives in `bench/run`; this bench tracks upkeep alone over time.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use upkeep_core::version::{Constraints, Policy, PolicyKind, TagInfo};

#[path = "../tests/support/rng.rs"]
mod rng;
use rng::Rng;

fn gen_tags(count: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    (0..count)
        .map(|_| {
            let major = rng.below(8) + rng.below(8) + rng.below(8);
            let (minor, patch) = (rng.below(40), rng.below(30));
            let core = format!("{major}.{minor}.{patch}");
            let v = if rng.below(2) == 0 { "v" } else { "" };
            match rng.below(100) {
                0..45 => core,
                45..65 => format!("v{core}"),
                65..77 => format!("{v}{core}-rc.{}", rng.below(12)),
                77..83 => format!("{v}{core}+build.{}", rng.below(5000)),
                83..88 => format!("sha256-{:016x}{:016x}.sig", rng.next(), rng.next()),
                88..92 => format!("sha-{:07x}", rng.below(1 << 28)),
                92..95 => format!("2024{:02}{:02}", rng.below(12) + 1, rng.below(28) + 1),
                95..97 => format!("{major}.{minor}"),
                _ => "latest".to_owned(),
            }
        })
        .collect()
}

fn select(c: &mut Criterion) {
    let tags = gen_tags(100_000, 0x5EED_2024_0101);
    let infos: Vec<TagInfo<'_>> = tags
        .iter()
        .map(|tag| TagInfo {
            tag,
            first_seen: None,
        })
        .collect();
    let policy = Policy {
        kind: PolicyKind::SemverRange(
            Constraints::parse(">=2.3.0 <12.0.0 || ^14.1.0").expect("valid range"),
        ),
        filter: None,
        minimum_release_age: None,
        pin: None,
    };
    let now = Timestamp::UNIX_EPOCH;
    c.bench_function("select_latest_100k_tags", |b| {
        b.iter(|| policy.select(black_box(&infos), now));
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = select
}
criterion_main!(benches);
