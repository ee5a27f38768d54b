//! `upkeep windows` at the edges: very long occurrences, the end of time, bounded arguments,
//! and the timeline drawn in one sweep.

use std::process::{Command, Output};

fn upkeep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the upkeep binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_window_lasting_until_9999_is_open_inside_its_first_occurrence() {
    // Issue 11: this said "closed: outside every maintenance window" and validate accepted it.
    let out = upkeep(&["validate", "tests/data/forever.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = upkeep(&[
        "windows",
        "tests/data/forever.yaml",
        "--at",
        "2026-06-01T22:30Z",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "open exits 0: {}",
        text(&out.stdout)
    );
    let s = text(&out.stdout);
    assert!(s.contains("open at Mon 2026-06-01 22:30 UTC"), "{s}");
    assert!(s.contains("window forever, with no end"), "{s}");
    let out = upkeep(&[
        "windows",
        "tests/data/forever.yaml",
        "--from",
        "2030-01-01T00:00Z",
        "--output",
        "json",
    ]);
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        got,
        serde_json::json!([{"start": "2026-01-01T00:00:00Z", "end": null, "window": "forever"}]),
        "one interval, from the first start, never ending"
    );
}

#[test]
fn numeric_arguments_have_documented_maximums() {
    // (args, what the error names, reason)
    let cases: [(&[&str], &str, &str); 4] = [
        (
            &["--timeline-days", "65535"],
            "0..=3653",
            "issue 11: this took 8 minutes; the timeline stops at the 10-year search horizon",
        ),
        (
            &["--timeline-days", "3654"],
            "0..=3653",
            "one day past the horizon",
        ),
        (
            &["--next", "10001"],
            "0..=10000",
            "more intervals than a daily window has in 10 years",
        ),
        (
            &["--next", "100000000000"],
            "0..=10000",
            "this used to reserve memory for 10^11 intervals and abort",
        ),
    ];
    for (args, named, reason) in cases {
        let mut all = vec!["windows", "tests/data/timeline.yaml"];
        all.extend_from_slice(args);
        let out = upkeep(&all);
        assert_eq!(out.status.code(), Some(2), "{reason}");
        let err = text(&out.stderr);
        assert!(
            err.contains(args[0]) && err.contains(named),
            "{reason}: {err}"
        );
    }
    let out = upkeep(&[
        "windows",
        "tests/data/timeline.yaml",
        "--from",
        "2026-03-08T10:00",
        "--timeline-days",
        "3653",
    ]);
    assert_eq!(out.status.code(), Some(0), "the maximum itself is fine");
    let days = text(&out.stdout)
        .lines()
        .filter(|l| {
            ["Mon ", "Tue ", "Wed ", "Thu ", "Fri ", "Sat ", "Sun "]
                .iter()
                .any(|d| l.strip_prefix("  ").is_some_and(|r| r.starts_with(d)))
                && l.get(8..9) == Some("-")
                && l.get(11..14) == Some("   ")
        })
        .count();
    assert_eq!(days, 3653, "one line per day");
}

#[test]
fn times_past_the_last_instant_are_refused_with_the_range() {
    for at in ["9999-12-31", "9999-12-30T23:00Z"] {
        let out = upkeep(&["windows", "tests/data/timeline.yaml", "--at", at]);
        assert_eq!(out.status.code(), Some(2), "{at}");
        let err = text(&out.stderr);
        assert!(
            err.contains("outside the supported range") && err.contains("9999-12-30T22:00:00Z"),
            "{at}: {err}"
        );
    }
}

/// The timeline used to ask the core `check()` once per hour cell and scan every interval per
/// cell (quadratic); it is now one sweep. These goldens were printed by the old code, which is
/// the oracle: frozen hours (f) until the freeze ends on 10 March 13:00 CET, nights and
/// weekends (█), Sundays excluded for a major upgrade but not for a patch (x), Easter excluded
/// for both, and the spring-forward Sunday (29 March) in between.
#[test]
fn timeline_cells_match_the_per_cell_answers() {
    // (--for, golden, reason)
    let cases = [
        ("major", MAJOR, "Sundays (NoMinorUpgrades) close majors"),
        ("patch", PATCH, "Sundays let patches through"),
    ];
    for (kind, golden, reason) in cases {
        let out = upkeep(&[
            "windows",
            "tests/data/timeline.yaml",
            "--from",
            "2026-03-08T10:00",
            "--next",
            "1",
            "--timeline-days",
            "32",
            "--for",
            kind,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let s = text(&out.stdout);
        let at = s
            .find("  timeline (Europe/Berlin, one cell")
            .expect("a timeline");
        assert_eq!(&s[at..], golden, "{reason}");
    }
}

const MAJOR: &str = r"  timeline (Europe/Berlin, one cell per hour; █ allowed, x excluded, f frozen, · outside windows):
              0   3   6   9   12  15  18  21
  Sun 03-08   fff fff fff fff fff fff fff fff
  Mon 03-09   fff fff fff fff fff fff fff fff
  Tue 03-10   fff fff fff fff f·· ··· ··· ·██
  Wed 03-11   ███ ··· ··· ··· ··· ··· ··· ·██
  Thu 03-12   ███ ··· ··· ··· ··· ··· ··· ·██
  Fri 03-13   ███ ··· ··· ··· ··· ··· ··· ·██
  Sat 03-14   ███ ··· ··█ ███ ███ ███ ███ ███
  Sun 03-15   xxx xxx xxx xxx xxx xxx xxx xxx
  Mon 03-16   ███ ··· ··· ··· ··· ··· ··· ·██
  Tue 03-17   ███ ··· ··· ··· ··· ··· ··· ·██
  Wed 03-18   ███ ··· ··· ··· ··· ··· ··· ·██
  Thu 03-19   ███ ··· ··· ··· ··· ··· ··· ·██
  Fri 03-20   ███ ··· ··· ··· ··· ··· ··· ·██
  Sat 03-21   ███ ··· ··█ ███ ███ ███ ███ ███
  Sun 03-22   xxx xxx xxx xxx xxx xxx xxx xxx
  Mon 03-23   ███ ··· ··· ··· ··· ··· ··· ·██
  Tue 03-24   ███ ··· ··· ··· ··· ··· ··· ·██
  Wed 03-25   ███ ··· ··· ··· ··· ··· ··· ·██
  Thu 03-26   ███ ··· ··· ··· ··· ··· ··· ·██
  Fri 03-27   ███ ··· ··· ··· ··· ··· ··· ·██
  Sat 03-28   ███ ··· ··█ ███ ███ ███ ███ ███
  Sun 03-29   xxx xxx xxx xxx xxx xxx xxx xxx
  Mon 03-30   ███ ··· ··· ··· ··· ··· ··· ·██
  Tue 03-31   ███ ··· ··· ··· ··· ··· ··· ·██
  Wed 04-01   ███ ··· ··· ··· ··· ··· ··· ·██
  Thu 04-02   xxx xxx xxx xxx xxx xxx xxx xxx
  Fri 04-03   xxx xxx xxx xxx xxx xxx xxx xxx
  Sat 04-04   xxx xxx xxx xxx xxx xxx xxx xxx
  Sun 04-05   xxx xxx xxx xxx xxx xxx xxx xxx
  Mon 04-06   xxx xxx xxx xxx xxx xxx xxx xxx
  Tue 04-07   ███ ··· ··· ··· ··· ··· ··· ·██
  Wed 04-08   ███ ··· ··· ··· ··· ··· ··· ·██
";

const PATCH: &str = r"  timeline (Europe/Berlin, one cell per hour; █ allowed, x excluded, f frozen, · outside windows):
              0   3   6   9   12  15  18  21
  Sun 03-08   fff fff fff fff fff fff fff fff
  Mon 03-09   fff fff fff fff fff fff fff fff
  Tue 03-10   fff fff fff fff f·· ··· ··· ·██
  Wed 03-11   ███ ··· ··· ··· ··· ··· ··· ·██
  Thu 03-12   ███ ··· ··· ··· ··· ··· ··· ·██
  Fri 03-13   ███ ··· ··· ··· ··· ··· ··· ·██
  Sat 03-14   ███ ··· ··█ ███ ███ ███ ███ ███
  Sun 03-15   ███ ███ ███ ███ ███ ███ ██· ·██
  Mon 03-16   ███ ··· ··· ··· ··· ··· ··· ·██
  Tue 03-17   ███ ··· ··· ··· ··· ··· ··· ·██
  Wed 03-18   ███ ··· ··· ··· ··· ··· ··· ·██
  Thu 03-19   ███ ··· ··· ··· ··· ··· ··· ·██
  Fri 03-20   ███ ··· ··· ··· ··· ··· ··· ·██
  Sat 03-21   ███ ··· ··█ ███ ███ ███ ███ ███
  Sun 03-22   ███ ███ ███ ███ ███ ███ ██· ·██
  Mon 03-23   ███ ··· ··· ··· ··· ··· ··· ·██
  Tue 03-24   ███ ··· ··· ··· ··· ··· ··· ·██
  Wed 03-25   ███ ··· ··· ··· ··· ··· ··· ·██
  Thu 03-26   ███ ··· ··· ··· ··· ··· ··· ·██
  Fri 03-27   ███ ··· ··· ··· ··· ··· ··· ·██
  Sat 03-28   ███ ··· ··█ ███ ███ ███ ███ ███
  Sun 03-29   ███ ███ ███ ███ ███ ███ ██· ·██
  Mon 03-30   ███ ··· ··· ··· ··· ··· ··· ·██
  Tue 03-31   ███ ··· ··· ··· ··· ··· ··· ·██
  Wed 04-01   ███ ··· ··· ··· ··· ··· ··· ·██
  Thu 04-02   xxx xxx xxx xxx xxx xxx xxx xxx
  Fri 04-03   xxx xxx xxx xxx xxx xxx xxx xxx
  Sat 04-04   xxx xxx xxx xxx xxx xxx xxx xxx
  Sun 04-05   xxx xxx xxx xxx xxx xxx xxx xxx
  Mon 04-06   xxx xxx xxx xxx xxx xxx xxx xxx
  Tue 04-07   ███ ··· ··· ··· ··· ··· ··· ·██
  Wed 04-08   ███ ··· ··· ··· ··· ··· ··· ·██
";
