//! `upkeep windows`: the allowed intervals of a MaintenanceSchedule, or whether it is open now.

use crate::out::{out, outln};
use std::fmt::Write as _;
use std::path::PathBuf;

use jiff::{Timestamp, ToSpan, civil, tz::TimeZone};
use miette::IntoDiagnostic;
use serde::Serialize;
use upkeep_core::schedule::{HORIZON_DAYS, Interval, OccurrenceKind, Schedule, Verdict};
use upkeep_core::version::UpgradeKind;

use crate::Outcome;
use crate::out::Output;
use crate::render::{Table, local, relative, span, utc};

/// `--for`: the kind of upgrade to ask about; exclusions apply by their scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Kind {
    #[default]
    Major,
    Minor,
    Patch,
}

impl From<Kind> for UpgradeKind {
    fn from(k: Kind) -> UpgradeKind {
        match k {
            Kind::Major => UpgradeKind::Major,
            Kind::Minor => UpgradeKind::Minor,
            Kind::Patch => UpgradeKind::Patch,
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Times (--from, --at) are `now`, RFC 3339 (`2026-12-24T18:00:00Z`) or a wall-clock \
time without offset (`2026-12-24T18:00`, `2026-12-24`) read in the schedule's time zone.\n\n\
Exit status: 0 when listed or open at --at, 1 when closed at --at, 2 on invalid input.\n\n\
Examples:\n  upkeep windows examples/quickstart/fleet/upkeep/schedules.yaml --name prod-eu --next 5\n  \
upkeep windows schedule.yaml --at 2026-12-24T10:00 --for patch\n  \
upkeep windows schedule.yaml --from 2027-01-01 --output json"
)]
pub(crate) struct Args {
    /// A YAML file (or directory) holding the MaintenanceSchedule.
    file: PathBuf,
    /// Which schedule, when the file holds several.
    #[arg(long)]
    name: Option<String>,
    /// List intervals that end after this time (default: now). A running interval is listed whole.
    #[arg(long, value_name = "TIME", conflicts_with = "at")]
    from: Option<String>,
    /// How many intervals to list (at most 10000).
    #[arg(long, default_value_t = 5, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=MAX_NEXT))]
    next: usize,
    /// Say whether an upgrade may start at this time, and if not, why and when it may.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// The kind of upgrade: exclusions scoped NoMinorUpgrades/NoMajorUpgrades let smaller ones through.
    #[arg(long = "for", value_enum, default_value_t, value_name = "KIND")]
    kind: Kind,
    /// Days shown in the timeline (text output), at most 3653 (10 years, how far upkeep looks ahead).
    #[arg(long, default_value_t = 14, value_name = "DAYS",
          value_parser = clap::value_parser!(u16).range(0..=MAX_TIMELINE_DAYS))]
    timeline_days: u16,
    /// `text` for people, `json` for programs.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

/// `--next` at most: more than a daily window gives in the 10-year search horizon. The cost
/// is linear in the intervals found, and the horizon bounds them anyway; the cap keeps a typo
/// from printing pages.
const MAX_NEXT: u64 = 10_000;

/// `--timeline-days` at most: the core's search horizon ([`HORIZON_DAYS`]). Past it an
/// interval that goes on is reported open-ended, so a longer timeline could not be drawn right.
const MAX_TIMELINE_DAYS: i64 = HORIZON_DAYS;

#[derive(Debug, Serialize)]
struct JsonInterval {
    /// `null` for an interval that has always been open (an `alwaysAllowed` schedule).
    start: Option<String>,
    end: Option<String>,
    window: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonVerdict {
    open: bool,
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_open: Option<String>,
}

pub(crate) fn run(args: &Args) -> miette::Result<Outcome> {
    let Some(found) = crate::schedule_file::load_schedule(&args.file, args.name.as_deref()) else {
        return Ok(Outcome::Invalid);
    };
    let (name, tz_name, schedule) = found;
    let tz = schedule.time_zone().clone();
    let kind: UpgradeKind = args.kind.into();

    if let Some(at) = &args.at {
        let at = match crate::timearg::parse(at, &tz) {
            Ok(t) => t,
            Err(e) => {
                crate::render::error_with_hint(&format!("--at: {e}"), None);
                return Ok(Outcome::Invalid);
            }
        };
        return print_verdict(&schedule, &tz, at, kind, args.output);
    }

    let from = match crate::timearg::parse(args.from.as_deref().unwrap_or("now"), &tz) {
        Ok(t) => t,
        Err(e) => {
            crate::render::error_with_hint(&format!("--from: {e}"), None);
            return Ok(Outcome::Invalid);
        }
    };
    let intervals = schedule.next_intervals(from, args.next, kind);
    match args.output {
        Output::Json => {
            let json: Vec<JsonInterval> = intervals
                .iter()
                .map(|i| JsonInterval {
                    start: has_start(i.start).then(|| i.start.to_string()),
                    end: i.end.map(|e| e.to_string()),
                    window: i.windows.join(", "),
                })
                .collect();
            outln!("{}", serde_json::to_string_pretty(&json).into_diagnostic()?);
        }
        Output::Text => {
            outln!(
                "{name} ({tz_name}): next {} allowed interval(s) for a {} upgrade, from {}",
                args.next,
                kind_word(kind),
                local(from, &tz)
            );
            outln!();
            if intervals.is_empty() {
                outln!("  none: no allowed time within the search horizon");
            } else {
                out!("{}", interval_table(&intervals, &tz, from));
            }
            outln!();
            out!(
                "{}",
                timeline(&schedule, &tz, from, kind, usize::from(args.timeline_days))
            );
        }
    }
    Ok(Outcome::Success)
}

fn kind_word(kind: UpgradeKind) -> &'static str {
    match kind {
        UpgradeKind::Major => "major",
        UpgradeKind::Minor => "minor",
        UpgradeKind::Patch => "patch",
    }
}

pub(crate) use upkeep_core::describe::closed_reason;

fn print_verdict(
    schedule: &Schedule,
    tz: &TimeZone,
    at: Timestamp,
    kind: UpgradeKind,
    output: Output,
) -> miette::Result<Outcome> {
    let verdict = schedule.check(at, kind);
    if output == Output::Json {
        let json = match &verdict {
            Verdict::Open { window, until } => JsonVerdict {
                open: true,
                at: at.to_string(),
                window: Some(window.clone()),
                until: until.map(|u| u.to_string()),
                reason: None,
                next_open: None,
            },
            Verdict::Closed { reason, next_open } => JsonVerdict {
                open: false,
                at: at.to_string(),
                window: None,
                until: None,
                reason: Some(closed_reason(reason, &TimeZone::UTC)),
                next_open: next_open.map(|n| n.to_string()),
            },
        };
        outln!("{}", serde_json::to_string_pretty(&json).into_diagnostic()?);
    } else {
        match &verdict {
            Verdict::Open { window, until } => {
                let until = until.map_or_else(
                    || "with no end".to_owned(),
                    |u| format!("until {} ({})", local(u, tz), utc(u)),
                );
                outln!(
                    "open at {} for a {} upgrade: window {window}, {until}",
                    local(at, tz),
                    kind_word(kind)
                );
            }
            Verdict::Closed { reason, next_open } => {
                outln!(
                    "closed at {} for a {} upgrade: {}",
                    local(at, tz),
                    kind_word(kind),
                    closed_reason(reason, tz)
                );
                match next_open {
                    Some(n) => outln!(
                        "next opening: {} ({}, {})",
                        local(*n, tz),
                        utc(*n),
                        relative(*n, at)
                    ),
                    None => outln!("next opening: none within the search horizon"),
                }
            }
        }
    }
    Ok(match verdict {
        Verdict::Open { .. } => Outcome::Success,
        Verdict::Closed { .. } => Outcome::No,
    })
}

fn interval_table(intervals: &[Interval], tz: &TimeZone, from: Timestamp) -> String {
    let mut t = Table::new(&[
        "START (local)",
        "END (local)",
        "LENGTH",
        "START (UTC)",
        "END (UTC)",
        "WINDOW",
    ]);
    for i in intervals {
        let note = if i.start <= from { " (open now)" } else { "" };
        let always = !has_start(i.start);
        t.row(vec![
            if always {
                "always".to_owned()
            } else {
                local(i.start, tz)
            },
            i.end.map_or_else(|| "-".to_owned(), |e| local(e, tz)),
            match i.end {
                Some(e) if !always => span(i.start, e),
                _ => "unbounded".to_owned(),
            },
            if always {
                "always".to_owned()
            } else {
                utc(i.start)
            },
            i.end.map_or_else(|| "-".to_owned(), utc),
            format!("{}{note}", i.windows.join(", ")),
        ]);
    }
    t.render("  ")
}

/// Whether an interval has a real start: false for an interval that has always been open (the
/// core starts it at the earliest representable time), printed as "always" / `null`, not as a
/// date in year -9999.
fn has_start(start: Timestamp) -> bool {
    start > Timestamp::MIN
}

/// An hour-by-hour picture of the coming days in the schedule's zone.
///
/// Linear in the days shown: the allowed intervals and the exclusion occurrences of the whole
/// period are listed once, then swept in step with the cells (whose start instants never
/// decrease: a skipped spring-forward hour resolves to the next one).
fn timeline(
    schedule: &Schedule,
    tz: &TimeZone,
    from: Timestamp,
    kind: UpgradeKind,
    days: usize,
) -> String {
    if days == 0 {
        return String::new();
    }
    let first_day: civil::Date = from.to_zoned(tz.clone()).date();
    let day_start = |d: civil::Date| -> Option<Timestamp> {
        tz.to_ambiguous_timestamp(d.to_datetime(civil::Time::midnight()))
            .compatible()
            .ok()
    };
    let last_day = first_day
        .checked_add(i32::try_from(days).unwrap_or(i32::MAX).days())
        .unwrap_or(civil::Date::MAX);
    let start = day_start(first_day).unwrap_or(from);
    let end = day_start(last_day).unwrap_or(Timestamp::MAX);
    // The allowed intervals over the period, in order.
    let mut intervals: Vec<Interval> = Vec::new();
    let mut cursor = start;
    while cursor < end {
        let batch = schedule.next_intervals(cursor, 64, kind);
        let Some(last) = batch.last() else { break };
        let next_cursor = match last.end {
            Some(e) if e > cursor => e,
            _ => end,
        };
        intervals.extend(batch.into_iter().filter(|i| i.start < end));
        cursor = next_cursor;
    }
    // Exclusions that apply, by start, for telling "excluded" from "outside windows".
    let exclusions: Vec<(Timestamp, Timestamp)> = schedule
        .occurrences_between(start, end, kind)
        .into_iter()
        .filter(|o| matches!(o.kind, OccurrenceKind::Exclusion(_)))
        .map(|o| (o.start, o.end))
        .collect();
    let frozen_until = schedule.freeze_until();
    let (mut next_interval, mut next_exclusion) = (0, 0);
    let mut excluded_until = Timestamp::MIN;

    let mut out = format!(
        "  timeline ({}, one cell per hour; █ allowed, x excluded, f frozen, · outside windows):\n",
        tz.iana_name().unwrap_or("local")
    );
    let mut header = " ".repeat(14);
    for g in 0..8 {
        let _ = write!(header, "{:<4}", g * 3);
    }
    out.push_str(header.trim_end());
    out.push('\n');
    for d in 0..days {
        let Ok(date) = first_day.checked_add(i32::try_from(d).unwrap_or(0).days()) else {
            break;
        };
        let mut line = format!("  {}   ", date.strftime("%a %m-%d"));
        for h in 0..24 {
            let dt = date.to_datetime(civil::time(h, 0, 0, 0));
            let Ok(a) = tz.to_ambiguous_timestamp(dt).compatible() else {
                continue;
            };
            let b = a
                .checked_add(jiff::SignedDuration::from_hours(1))
                .unwrap_or(Timestamp::MAX);
            while intervals
                .get(next_interval)
                .is_some_and(|i| i.end.is_some_and(|e| e <= a))
            {
                next_interval += 1;
            }
            while let Some(&(s, e)) = exclusions.get(next_exclusion)
                && s <= a
            {
                excluded_until = excluded_until.max(e);
                next_exclusion += 1;
            }
            let cell = if intervals.get(next_interval).is_some_and(|i| i.start < b) {
                '█'
            } else if frozen_until.is_some_and(|f| a < f) {
                'f'
            } else if a < excluded_until {
                'x'
            } else {
                '·'
            };
            line.push(cell);
            if h % 3 == 2 {
                line.push(' ');
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
