//! The upgrade calendar: what upkeep will do (and did), as events a calendar client shows.
//!
//! Shape, and why:
//! - **A model, then a writer.** [`Entry`] is the one value every consumer reads: the RFC 5545
//!   writer here ([`write_ics`]), `upkeep calendar --output json`, the controller's
//!   `/calendar.ics` and the dashboard's Gantt page. The entries themselves are projected in
//!   the `upkeep` crate from the same functions `upkeep status --at` and `upkeep windows` use,
//!   so the calendar cannot disagree with them; nothing here decides anything new.
//! - **Stable identity.** A UID is a hash of what an event *is* (kind, namespace/name, the
//!   occurrence's local date or the upgrade's target), never of when it was generated, so a
//!   subscribed client updates an event instead of duplicating it ([`uid`]).
//! - **SEQUENCE never decreases.** It is derived from what the caller remembers of the event
//!   ([`Memo`]: a fingerprint of start, end and summary, and the sequence last given) and from
//!   a floor the caller takes from the clock ([`clock_floor`]: minutes since 2025-01-01): an
//!   unchanged event keeps its number, a moved one gets `max(last + 1, floor)`, a new one the
//!   floor. A lost memory (a deleted store, a restarted controller) therefore only ever makes
//!   numbers jump forward ([`sequence`]). The core reads no clock: the floor is a parameter.
//! - **Own writer.** No iCalendar crate is in the workspace's lock file and the format needed
//!   here (one VCALENDAR of VEVENTs and VTIMEZONEs) is small; the writer folds at 75 octets on
//!   UTF-8 boundaries, escapes TEXT, ends lines with CRLF and generates VTIMEZONE blocks from
//!   jiff's copy of the tz database ([`ics`]).

mod ics;

pub use ics::{escape_text, fold_line, write_ics};

use jiff::Timestamp;

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// One occurrence of a maintenance window.
    Window,
    /// One occurrence of a maintenance exclusion.
    Exclusion,
    /// A schedule's freeze (or a cluster's), until it ends.
    Freeze,
    /// A planned cluster upgrade: the earliest start the rollout core knows.
    ClusterUpgrade,
    /// A planned app version change (a marked field) waiting for its window.
    AppUpgrade,
    /// An upgrade that happened (from history), with its outcome.
    PastUpgrade,
}

impl Kind {
    /// A short lower-case name (UIDs, CATEGORIES, JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Window => "window",
            Kind::Exclusion => "exclusion",
            Kind::Freeze => "freeze",
            Kind::ClusterUpgrade => "cluster-upgrade",
            Kind::AppUpgrade => "app-upgrade",
            Kind::PastUpgrade => "past-upgrade",
        }
    }

    /// Whether the event blocks time (`TRANSP:OPAQUE`): windows and upgrades do (something may
    /// happen to the fleet then); exclusions, freezes and past upgrades are shown as free time
    /// (`TRANSPARENT`), so a subscribed calendar's free/busy view shows when upkeep may act.
    pub fn busy(self) -> bool {
        matches!(self, Kind::Window | Kind::ClusterUpgrade | Kind::AppUpgrade)
    }
}

/// One event of the calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Stable across runs ([`uid`]).
    pub uid: String,
    /// Grows when the event moves, never decreases ([`sequence`]).
    pub sequence: u32,
    pub kind: Kind,
    /// The schedule, cluster or app field the event is about (`namespace/name`, or
    /// `file:line` for an app field).
    pub subject: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// The IANA zone the times are shown in (the schedule's); `None`: UTC.
    pub tz: Option<String>,
    pub summary: String,
    pub description: String,
}

impl Entry {
    /// A fingerprint of what makes the event *move* for a client: start, end, summary.
    pub fn fingerprint(&self) -> u64 {
        let text = format!(
            "{}\u{0}{}\u{0}{}",
            self.start.as_nanosecond(),
            self.end.as_nanosecond(),
            self.summary
        );
        fnv1a(text.as_bytes(), FNV_OFFSET)
    }
}

/// What a caller remembers of an event between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memo {
    pub fingerprint: u64,
    pub sequence: u32,
}

/// The SEQUENCE of an event whose fingerprint is now `fingerprint`, given what was remembered
/// of it and the clock's `floor`: the same event keeps its number, a changed one gets
/// `max(last + 1, floor)`, an unknown one `floor`. Never less than what was remembered.
pub fn sequence(remembered: Option<Memo>, fingerprint: u64, floor: u32) -> u32 {
    match remembered {
        Some(m) if m.fingerprint == fingerprint => m.sequence,
        Some(m) => m.sequence.saturating_add(1).max(floor),
        None => floor,
    }
}

/// Minutes from 2025-01-01T00:00:00Z to `now` (0 before it), as a SEQUENCE floor: RFC 5545's
/// INTEGER is 32-bit signed, which this fills in the year 6108.
pub fn clock_floor(now: Timestamp) -> u32 {
    const EPOCH_2025: i64 = 1_735_689_600;
    let minutes = (now.as_second() - EPOCH_2025).max(0) / 60;
    u32::try_from(minutes.min(i64::from(i32::MAX))).unwrap_or(0)
}

/// A UID for the event of `kind` about `subject` identified by `key` (the occurrence's local
/// date, the upgrade's target, …): a 128-bit FNV-1a hash of the three, so names with any
/// characters give a UID of `[a-z0-9-.]` only, the same on every run and machine. No `@`:
/// `<hash>@host` has the shape of a token in a URL's userinfo, which upkeep's output
/// redaction (rightly) removes.
pub fn uid(kind: Kind, subject: &str, key: &str) -> String {
    let text = format!("{}\u{0}{subject}\u{0}{key}", kind.as_str());
    let a = fnv1a(text.as_bytes(), FNV_OFFSET);
    let b = fnv1a(text.as_bytes(), FNV_OFFSET ^ 0x9e37_79b9_7f4a_7c15);
    format!("{}-{a:016x}{b:016x}.upkeep.dev", kind.as_str())
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bits (fixed, unlike `std`'s hasher, across Rust versions and platforms).
fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    bytes.iter().fold(seed, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
