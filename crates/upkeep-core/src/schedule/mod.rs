//! Schedules: when a change may happen.
//!
//! CONTRACT (skeleton): the public names below are what `upkeep-api`, the CLI and later
//! crates call. Implementations may add items but must keep these signatures.

mod rrule;

pub use rrule::{RRule, RRuleError};

use jiff::{Timestamp, civil, tz::TimeZone};

use crate::version::UpgradeKind;

/// A `startTime`/`endTime`/`until` as written: RFC 3339 with an offset is an instant; without
/// one it is a wall-clock time in the schedule's `timeZone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    Absolute(Timestamp),
    Civil(civil::DateTime),
}

impl TimeSpec {
    pub fn parse(s: &str) -> Result<TimeSpec, ScheduleError> {
        let _ = s;
        panic!("CONTRACT placeholder")
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
    _p: (),
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid schedule: {0}")]
    Invalid(String),
}

impl Schedule {
    /// Validates (`endTime` > `startTime`, not empty unless `always_allowed`, …).
    /// Errors name the window/exclusion by index and field so callers can locate them.
    pub fn new(spec: ScheduleSpec) -> Result<Schedule, ScheduleError> {
        let _ = spec;
        panic!("CONTRACT placeholder")
    }
    pub fn time_zone(&self) -> &TimeZone {
        panic!("CONTRACT placeholder")
    }
    /// Is an upgrade of `kind` allowed to *start* at `at`?
    pub fn check(&self, at: Timestamp, kind: UpgradeKind) -> Verdict {
        let _ = (at, kind);
        panic!("CONTRACT placeholder")
    }
    /// The next `n` allowed intervals for `kind` that end after `from`; one running at `from`
    /// is returned whole. Sorted, disjoint, overlapping or touching intervals merged.
    pub fn next_intervals(&self, from: Timestamp, n: usize, kind: UpgradeKind) -> Vec<Interval> {
        let _ = (from, n, kind);
        panic!("CONTRACT placeholder")
    }
}
