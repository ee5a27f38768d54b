//! Schedules: when a change may happen.
//!
//! A [`Schedule`] is a validated `MaintenanceSchedule`: windows (one-off or recurring),
//! exclusions with a scope, an optional freeze, in one IANA time zone. The questions asked of
//! it are "may an upgrade of kind K start at t?" ([`Schedule::check`]) and "when are the next
//! N allowed intervals?" ([`Schedule::next_intervals`]).
//!
//! Shape, and why:
//! - Recurrences expand on **wall-clock time** (DESIGN "Time semantics (pinned)"): an
//!   occurrence starts at the rule's wall-clock date and `startTime`'s time of day and lasts
//!   the wall-clock span `endTime − startTime`; both ends are then resolved to instants with
//!   jiff's `compatible` disambiguation (ambiguous → earlier offset, gap → moved forward).
//!   A 22:00–02:00 window over a DST change therefore lasts 3 or 5 real hours. An occurrence
//!   that resolves to nothing (e.g. 02:00–03:00 inside a spring-forward gap) is dropped.
//! - Everything is **lazy streams**: each window/exclusion yields its occurrences in order,
//!   the streams are merged and coalesced, and the exclusions (plus the freeze) are swept out
//!   of the windows. Asking for the next 10 intervals expands only what those 10 need, which
//!   is what makes 10k schedules cheap (see `engine.rs`).
//! - **Any span**: an occurrence may last longer than its rule's period (a daily window
//!   lasting years); overlapping occurrences are merged like touching ones. All occurrences
//!   of a window last the same wall-clock span and start at least a day apart, so the
//!   latest one starting by `t` is the only one that can decide "is `t` inside?"; it is found
//!   by a backward search, never by walking from DTSTART, and the ones it covers are skipped.
//!   COUNT is turned into the equivalent UNTIL once, when the schedule is built (skipping
//!   whole 400-year cycles: at most ~10 ms, for the largest COUNT). The cost of a question
//!   therefore does not grow with the span, COUNT, or the distance from DTSTART.
//! - **The end of time**: jiff's instants end at 9999-12-30T22:00:00.999999999Z. A
//!   `startTime` after that is an error ([`ScheduleError::OutOfRange`]); an `endTime`, an
//!   occurrence's end, a `freeze.until` or an `UNTIL` after it means "never ends"
//!   (`Timestamp::MAX` inside, `None` in answers); an occurrence that would *start* after it
//!   does not exist.
//! - **Search limits** (documented, not silent): intervals starting [`HORIZON_DAYS`] days or
//!   more after `from` are not returned, and an interval that reaches past the horizon
//!   (windows that chain without a gap) is reported open-ended (`end: None`) and last.
//!   The start of an interval already running at `from` is exact when it is at most
//!   [`LOOKBACK_DAYS`] days back. An earlier start is still exact when what ended before that
//!   limit pins it down: the end of the last exclusion (or the freeze) that ended there, or
//!   the first start of a run of occurrences that all reach past the limit
//!   ([`Timestamp::MIN`] for an `alwaysAllowed` schedule with nothing before); only when a
//!   window occurrence that ended before the limit chains the interval further back is the
//!   limit itself reported ("at least since"). Windows that chain without a gap (a daily
//!   25-hour window) thus give one open-ended interval.

mod engine;
mod expand;
mod rrule;
mod time;

pub use expand::Occurrences;
pub use rrule::{Frequency, RRule, RRuleError, Until, WeekdayNum};

use jiff::{SignedDuration, Timestamp, civil, tz::TimeZone};

use crate::version::UpgradeKind;

/// How far after `from` [`Schedule::next_intervals`] and [`Schedule::check`] look for allowed
/// intervals (10 years).
pub const HORIZON_DAYS: i64 = 3653;
/// How far before `from` the start of an interval running at `from` is looked for.
pub const LOOKBACK_DAYS: i64 = 400;
/// The window name reported for time allowed by `alwaysAllowed: true`.
pub const ALWAYS_ALLOWED: &str = "alwaysAllowed";

/// A `startTime`/`endTime`/`until` as written: RFC 3339 with an offset is an instant; without
/// one it is a wall-clock time in the schedule's `timeZone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    Absolute(Timestamp),
    Civil(civil::DateTime),
}

impl TimeSpec {
    /// Parses RFC 3339 `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM]`. Without the offset the
    /// value is a wall-clock time. Also accepted: `t` or a space instead of `T`, lower-case
    /// `z`, and a missing `:SS` (`2025-01-04T22:00`), which RFC 3339 does not allow but people
    /// write.
    pub fn parse(s: &str) -> Result<TimeSpec, ScheduleError> {
        time::parse(s)
    }

    /// This time as a wall-clock time in `tz`.
    pub fn to_civil(self, tz: &TimeZone) -> civil::DateTime {
        match self {
            TimeSpec::Absolute(ts) => tz.to_datetime(ts),
            TimeSpec::Civil(dt) => dt,
        }
    }

    /// This time as an instant; a wall-clock time is resolved in `tz` (ambiguous → earlier
    /// offset, gap → moved forward). Fails only outside jiff's supported range.
    pub fn to_timestamp(self, tz: &TimeZone) -> Option<Timestamp> {
        match self {
            TimeSpec::Absolute(ts) => Some(ts),
            TimeSpec::Civil(dt) => tz.to_ambiguous_timestamp(dt).compatible().ok(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExclusionScope {
    #[default]
    NoUpgrades,
    NoMinorUpgrades,
    NoMajorUpgrades,
}

impl ExclusionScope {
    /// Whether an exclusion of this scope blocks an upgrade of `kind`.
    pub fn applies_to(self, kind: UpgradeKind) -> bool {
        match self {
            ExclusionScope::NoUpgrades => true,
            ExclusionScope::NoMinorUpgrades => kind >= UpgradeKind::Minor,
            ExclusionScope::NoMajorUpgrades => kind == UpgradeKind::Major,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Window {
    pub name: String,
    pub start: TimeSpec,
    pub end: TimeSpec,
    pub recurrence: Option<RRule>,
}

#[derive(Debug, Clone)]
pub struct Exclusion {
    pub name: String,
    pub start: TimeSpec,
    pub end: TimeSpec,
    pub recurrence: Option<RRule>,
    pub scope: ExclusionScope,
}

#[derive(Debug, Clone)]
pub struct Freeze {
    pub until: TimeSpec,
    pub reason: Option<String>,
}

/// A validated MaintenanceSchedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    spec: ScheduleSpec,
    windows: Vec<engine::Source>,
    exclusions: Vec<(engine::Source, ExclusionScope)>,
    freeze: Option<(Timestamp, Option<String>)>,
}

/// The parts of a schedule before validation.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub time_zone: TimeZone,
    pub always_allowed: bool,
    pub windows: Vec<Window>,
    pub exclusions: Vec<Exclusion>,
    pub freeze: Option<Freeze>,
}

/// An allowed interval. `end` is `None` only for an unbounded interval (`alwaysAllowed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    pub start: Timestamp,
    pub end: Option<Timestamp>,
    /// Names of the windows merged into this interval, in order of first appearance.
    pub windows: Vec<String>,
}

impl Interval {
    /// Whether `t` lies in `[start, end)`.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && self.end.is_none_or(|e| t < e)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Open {
        window: String,
        until: Option<Timestamp>,
    },
    Closed {
        reason: ClosedReason,
        next_open: Option<Timestamp>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClosedReason {
    OutsideWindows,
    Excluded {
        name: String,
        scope: ExclusionScope,
        until: Timestamp,
    },
    Frozen {
        until: Timestamp,
        reason: Option<String>,
    },
}

/// What an [`Occurrence`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OccurrenceKind {
    Window,
    Exclusion(ExclusionScope),
}

/// One raw occurrence of a window or an exclusion (for timelines), before any merging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub name: String,
    pub kind: OccurrenceKind,
    pub start: Timestamp,
    pub end: Timestamp,
}

fn at(field: Option<&String>) -> String {
    field.map(|f| format!("{f}: ")).unwrap_or_default()
}

/// Why a schedule is invalid. Variant names are stable (condition reasons, metric labels);
/// [`ScheduleError::field`] locates the problem relative to `spec`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Kept for callers' own checks (e.g. an unknown `timeZone` name); this module does not
    /// produce it.
    #[error("invalid schedule: {0}")]
    Invalid(String),
    #[error("{}invalid time {text:?}: {problem}", at(.field.as_ref()))]
    InvalidTime {
        field: Option<String>,
        text: String,
        problem: &'static str,
    },
    #[error("{field}: endTime {end} is not after startTime {start}")]
    EndNotAfterStart {
        field: String,
        start: String,
        end: String,
    },
    #[error("maintenanceWindows: the schedule has no windows and alwaysAllowed is not set")]
    Empty,
    #[error("{field}: {source}")]
    Recurrence {
        field: String,
        #[source]
        source: RRuleError,
    },
    #[error("{field}: time {text} is outside the supported range")]
    OutOfRange { field: String, text: String },
}

impl ScheduleError {
    /// Where in the spec the problem is, e.g. `maintenanceWindows[1].endTime`.
    pub fn field(&self) -> Option<String> {
        match self {
            ScheduleError::Invalid(_) => None,
            ScheduleError::InvalidTime { field, .. } => field.clone(),
            ScheduleError::EndNotAfterStart { field, .. }
            | ScheduleError::Recurrence { field, .. }
            | ScheduleError::OutOfRange { field, .. } => Some(field.clone()),
            ScheduleError::Empty => Some("maintenanceWindows".to_owned()),
        }
    }

    /// Attaches the location to an error that does not have one yet (e.g. from
    /// [`TimeSpec::parse`], which does not know which field it parsed).
    #[must_use]
    pub fn with_field(self, location: impl Into<String>) -> ScheduleError {
        match self {
            ScheduleError::InvalidTime {
                field: None,
                text,
                problem,
            } => ScheduleError::InvalidTime {
                field: Some(location.into()),
                text,
                problem,
            },
            other => other,
        }
    }

    /// A suggestion for fixing the spec, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            ScheduleError::Invalid(_) => None,
            ScheduleError::OutOfRange { .. } => Some(
                "the latest time upkeep can represent is 9999-12-30T22:00:00Z; start before it (an endTime after it means the window never ends)"
                    .to_owned(),
            ),
            ScheduleError::InvalidTime { .. } => Some(
                "write RFC 3339, e.g. 2025-01-04T22:00:00 (wall clock in timeZone) or 2025-01-04T22:00:00Z"
                    .to_owned(),
            ),
            ScheduleError::EndNotAfterStart { .. } => Some(
                "a window crossing midnight ends on the next day, e.g. startTime 2025-01-04T22:00:00, endTime 2025-01-05T02:00:00"
                    .to_owned(),
            ),
            ScheduleError::Empty => Some(
                "add a maintenance window, or set alwaysAllowed: true to allow any time outside exclusions"
                    .to_owned(),
            ),
            ScheduleError::Recurrence { source, .. } => source.hint(),
        }
    }
}

fn compile(
    tz: &TimeZone,
    prefix: &str,
    name: &str,
    start: TimeSpec,
    end: TimeSpec,
    recurrence: Option<&RRule>,
) -> Result<engine::Source, ScheduleError> {
    let show = |t: TimeSpec| match t {
        TimeSpec::Absolute(ts) => ts.to_string(),
        TimeSpec::Civil(dt) => dt.to_string(),
    };
    let not_after = || ScheduleError::EndNotAfterStart {
        field: format!("{prefix}.endTime"),
        start: show(start),
        end: show(end),
    };
    // A start must be an instant; an end past the last representable instant means "never
    // ends" (nothing that can be asked about lies after it).
    let first = start
        .to_timestamp(tz)
        .filter(|t| *t < Timestamp::MAX)
        .ok_or_else(|| ScheduleError::OutOfRange {
            field: format!("{prefix}.startTime"),
            text: show(start),
        })?;
    let rec = if let Some(rule) = recurrence {
        let (s, e) = (start.to_civil(tz), end.to_civil(tz));
        if e <= s {
            return Err(not_after());
        }
        match rule.without_count(s, tz) {
            Some(rule) => engine::Rec::Recurring {
                rule,
                dtstart: s,
                span: e.duration_since(s),
            },
            None => engine::Rec::Never,
        }
    } else {
        let e = end.to_timestamp(tz).unwrap_or(Timestamp::MAX);
        if e <= first {
            return Err(not_after());
        }
        engine::Rec::OneOff {
            start: first,
            end: e,
        }
    };
    Ok(engine::Source {
        name: name.to_owned(),
        rec,
    })
}

impl Schedule {
    /// Validates (`endTime` > `startTime`, not empty unless `always_allowed`, …).
    /// Errors name the window/exclusion by index and field so callers can locate them.
    ///
    /// For a recurring window `endTime > startTime` is checked on wall-clock time (it is the
    /// span every occurrence lasts); for a one-off window, on the resolved instants.
    pub fn new(spec: ScheduleSpec) -> Result<Schedule, ScheduleError> {
        if spec.windows.is_empty() && !spec.always_allowed {
            return Err(ScheduleError::Empty);
        }
        let tz = &spec.time_zone;
        let windows = spec
            .windows
            .iter()
            .enumerate()
            .map(|(i, w)| {
                compile(
                    tz,
                    &format!("maintenanceWindows[{i}]"),
                    &w.name,
                    w.start,
                    w.end,
                    w.recurrence.as_ref(),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let exclusions = spec
            .exclusions
            .iter()
            .enumerate()
            .map(|(i, x)| {
                compile(
                    tz,
                    &format!("maintenanceExclusions[{i}]"),
                    &x.name,
                    x.start,
                    x.end,
                    x.recurrence.as_ref(),
                )
                .map(|s| (s, x.scope))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Past the last representable instant: frozen for good.
        let freeze = spec.freeze.as_ref().map(|f| {
            (
                f.until.to_timestamp(tz).unwrap_or(Timestamp::MAX),
                f.reason.clone(),
            )
        });
        Ok(Schedule {
            spec,
            windows,
            exclusions,
            freeze,
        })
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.spec.time_zone
    }

    /// The spec this schedule was built from.
    pub fn spec(&self) -> &ScheduleSpec {
        &self.spec
    }

    /// Is an upgrade of `kind` allowed to *start* at `at`?
    ///
    /// Closed reasons in priority order: `Frozen` (at < freeze.until), `Excluded` (an
    /// applicable exclusion covers `at`; `until` is the end of the covering occurrence that
    /// ends last), `OutsideWindows`. `next_open` is the start of the next allowed interval
    /// within [`HORIZON_DAYS`].
    pub fn check(&self, at: Timestamp, kind: UpgradeKind) -> Verdict {
        let hi = horizon(at);
        let first = engine::Allowed::new(self, at, hi, kind)
            .find(|p| p.end > at)
            .filter(|p| p.start < hi);
        if let Some(p) = &first
            && p.start <= at
        {
            let window = p
                .members
                .iter()
                .find(|m| m.start <= at && at < m.end)
                .map_or_else(|| ALWAYS_ALLOWED.to_owned(), |m| self.window_name(m.idx));
            return Verdict::Open {
                window,
                until: past_horizon(p.end, hi),
            };
        }
        let next_open = first.map(|p| p.start);
        if let Some((until, reason)) = &self.freeze
            && at < *until
        {
            return Verdict::Closed {
                reason: ClosedReason::Frozen {
                    until: *until,
                    reason: reason.clone(),
                },
                next_open,
            };
        }
        let mut best: Option<(usize, Timestamp)> = None;
        for (i, (src, scope)) in self.exclusions.iter().enumerate() {
            if !scope.applies_to(kind) {
                continue;
            }
            let covering = src
                .stream(self.time_zone(), at, i)
                .take_while(|m| m.start <= at)
                .filter(|m| at < m.end)
                .map(|m| m.end)
                .max();
            if let Some(end) = covering
                && best.is_none_or(|(_, e)| end > e)
            {
                best = Some((i, end));
            }
        }
        let reason = match best {
            Some((i, until)) => ClosedReason::Excluded {
                name: self.exclusions[i].0.name.clone(),
                scope: self.exclusions[i].1,
                until,
            },
            None => ClosedReason::OutsideWindows,
        };
        Verdict::Closed { reason, next_open }
    }

    /// The next `n` allowed intervals for `kind` that end after `from`; one running at `from`
    /// is returned whole. Sorted, disjoint, overlapping or touching intervals merged.
    ///
    /// Only intervals starting within [`HORIZON_DAYS`] of `from` are returned; the start of
    /// one running at `from` is exact within [`LOOKBACK_DAYS`], and before that as the
    /// module doc says. Cost: linear in the intervals returned, whatever `n` is.
    pub fn next_intervals(&self, from: Timestamp, n: usize, kind: UpgradeKind) -> Vec<Interval> {
        if n == 0 {
            return Vec::new();
        }
        let hi = horizon(from);
        let floor = from
            .checked_sub(SignedDuration::from_hours(LOOKBACK_DAYS * 24))
            .unwrap_or(Timestamp::MIN);
        let mut lo = from;
        loop {
            // `n` is the caller's (a CLI flag, say): never reserve on its word alone.
            let mut out: Vec<engine::Piece> = Vec::with_capacity(n.min(64));
            for p in engine::Allowed::new(self, lo, hi, kind) {
                if p.end <= from {
                    continue;
                }
                if p.start >= hi {
                    break;
                }
                // A piece reaching past the horizon is open-ended as far as we look; nothing
                // after it can be listed reliably (chained windows are cut there).
                let open_ended = p.end >= hi;
                out.push(p);
                if out.len() == n || open_ended {
                    break;
                }
            }
            if let Some(first) = out.first()
                && first.start < lo
                && lo > floor
            {
                // The interval running at `from` may have begun before `lo`: look further
                // back (doubling the distance) until its start is exact or the floor.
                let back = from
                    .duration_since(first.start)
                    .max(SignedDuration::from_hours(24));
                lo = first
                    .start
                    .checked_sub(back)
                    .unwrap_or(Timestamp::MIN)
                    .max(floor);
                continue;
            }
            let first_start = out
                .first()
                .map(|p| self.start_before_floor(p.start, lo.max(floor), kind));
            return out
                .into_iter()
                .enumerate()
                .map(|(i, mut p)| {
                    if i == 0
                        && let Some(s) = first_start
                    {
                        p.start = s;
                        p.members.retain(|m| m.end > s);
                    }
                    Interval {
                        start: p.start,
                        end: past_horizon(p.end, hi),
                        windows: p.names(self),
                    }
                })
                .collect();
        }
    }

    /// The true start of an allowed interval that the engine, looking only at occurrences
    /// that end at or after `floor`, sees starting at `s`. Exact when `s >= floor`. Before
    /// the floor, what ended before it can only move the start: an exclusion (or the freeze)
    /// that ended in `[s, floor)` moves it to the latest such end (exact), and a window
    /// occurrence that ended in `[s, floor)` but started before `s` extends it backwards by
    /// an unknown amount: then the floor is reported ("at least since").
    fn start_before_floor(&self, s: Timestamp, floor: Timestamp, kind: UpgradeKind) -> Timestamp {
        if s >= floor {
            return s;
        }
        let tz = self.time_zone();
        let cut = self
            .exclusions
            .iter()
            .filter(|(_, scope)| scope.applies_to(kind))
            .filter_map(|(src, _)| src.last_end_before(tz, floor))
            .chain(self.freeze.as_ref().map(|(until, _)| *until))
            .filter(|e| *e < floor)
            .max();
        if let Some(cut) = cut
            && cut >= s
        {
            return cut;
        }
        let extended = !self.spec.always_allowed
            && self
                .windows
                .iter()
                .any(|w| w.reaches_back_over(tz, s, floor));
        if extended { floor } else { s }
    }

    /// The raw occurrences of every window and every exclusion that applies to `kind`,
    /// overlapping `[from, to)`, sorted by start (for timelines). The freeze is not included;
    /// see [`Schedule::freeze_until`]. Of the occurrences of one window that all contain
    /// `from`, only the first and the last are listed (the others lie inside those two; with
    /// a span of years there would be millions), so the union is exact, not every occurrence.
    pub fn occurrences_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        kind: UpgradeKind,
    ) -> Vec<Occurrence> {
        let tz = self.time_zone();
        let mut out = Vec::new();
        for (i, w) in self.windows.iter().enumerate() {
            out.extend(
                w.stream(tz, from, i)
                    .take_while(|m| m.start < to)
                    .filter(|m| m.end > from)
                    .map(|m| Occurrence {
                        name: w.name.clone(),
                        kind: OccurrenceKind::Window,
                        start: m.start,
                        end: m.end,
                    }),
            );
        }
        for (i, (x, scope)) in self.exclusions.iter().enumerate() {
            if !scope.applies_to(kind) {
                continue;
            }
            out.extend(
                x.stream(tz, from, i)
                    .take_while(|m| m.start < to)
                    .filter(|m| m.end > from)
                    .map(|m| Occurrence {
                        name: x.name.clone(),
                        kind: OccurrenceKind::Exclusion(*scope),
                        start: m.start,
                        end: m.end,
                    }),
            );
        }
        out.sort_by_key(|o| (o.start, o.end));
        out
    }

    /// The instant the freeze ends, if the schedule has one.
    pub fn freeze_until(&self) -> Option<Timestamp> {
        self.freeze.as_ref().map(|(t, _)| *t)
    }

    fn window_name(&self, idx: usize) -> String {
        self.windows
            .get(idx)
            .map_or_else(|| ALWAYS_ALLOWED.to_owned(), |w| w.name.clone())
    }
}

/// `None` for an end at or past the horizon (unbounded, or a chain of windows that goes on
/// past where we look); the instant otherwise.
fn past_horizon(end: Timestamp, hi: Timestamp) -> Option<Timestamp> {
    if end >= hi { None } else { engine::finite(end) }
}

fn horizon(from: Timestamp) -> Timestamp {
    from.checked_add(SignedDuration::from_hours(HORIZON_DAYS * 24))
        .unwrap_or(Timestamp::MAX)
}
