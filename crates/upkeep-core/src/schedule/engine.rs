//! The interval engine: lazy streams of occurrences, merged, coalesced and subtracted.
//!
//! Each window or exclusion is a [`SourceStream`] of `[start, end)` instants in start order
//! (one-off sources yield one item; recurring ones wrap an [`Occurrences`] iterator that
//! jumps straight to the period near `lo`). A [`Union`] merges several streams by start and
//! coalesces overlapping or touching items into [`Piece`]s. [`Allowed`] sweeps the union of
//! applicable exclusions (and the freeze) out of the union of windows. Nothing is
//! materialised beyond what the caller pulls, so "the next 10 intervals" costs about 10
//! occurrences per window, whatever the distance from DTSTART.
//!
//! Long occurrences: an occurrence may last longer than its rule's period (a daily window
//! lasting years), so a stream opened at `lo` may have any number of occurrences that all
//! contain `lo`. Only the first and the last of them matter (the rest lie inside their
//! union), and the last is found by a backward search ([`Occurrences::last_at_or_before`])
//! instead of walking from DTSTART; so the cost of a stream does not depend on the span.
//! An occurrence whose end lies past the last instant jiff represents (9999-12-30T22:00Z)
//! ends at `Timestamp::MAX`, i.e. never.
//!
//! Infinity is represented by `Timestamp::MIN`/`Timestamp::MAX` inside the engine; the public
//! API turns `MAX` into `end: None`.

use jiff::{SignedDuration, Timestamp, civil, tz::TimeZone};

use super::{ExclusionScope, Schedule, UpgradeKind, expand::Occurrences, rrule::RRule};

#[derive(Debug, Clone)]
pub(super) enum Rec {
    OneOff {
        start: Timestamp,
        end: Timestamp,
    },
    Recurring {
        /// Without COUNT ([`RRule::without_count`]), so that every search can jump.
        rule: RRule,
        dtstart: civil::DateTime,
        span: SignedDuration,
    },
    /// A rule with no occurrence at all (a COUNT rule whose expansion is empty).
    Never,
}

/// A compiled window or exclusion.
#[derive(Debug, Clone)]
pub(super) struct Source {
    pub(super) name: String,
    pub(super) rec: Rec,
}

/// One occurrence of a source; `idx` is the source's index (`usize::MAX`: alwaysAllowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Member {
    pub(super) start: Timestamp,
    pub(super) end: Timestamp,
    pub(super) idx: usize,
}

pub(super) fn finite(t: Timestamp) -> Option<Timestamp> {
    (t != Timestamp::MAX).then_some(t)
}

fn resolve(tz: &TimeZone, dt: civil::DateTime) -> Option<Timestamp> {
    tz.to_ambiguous_timestamp(dt).compatible().ok()
}

/// Wall-clock margin for turning an instant bound into a wall-clock one: more than any
/// zone's offset ever changed at once (the largest, Pacific/Apia skipping 30 December 2011 and
/// Alaska's 1867 change of date, are about a day). Kept small because every stream starts
/// this far before `lo` (one more occurrence of a daily rule per day of margin).
const SLACK: SignedDuration = SignedDuration::from_hours(48);

/// An occurrence resolved to instants.
#[derive(Debug, Clone, Copy)]
enum Resolved {
    Member(Member),
    /// Empty after resolution (e.g. 02:00–03:00 inside a spring-forward gap).
    Empty,
    /// Starts after the last instant jiff represents (9999-12-30T22:00Z); so do all later ones.
    Beyond,
}

/// Resolves the occurrence starting at wall clock `dt`. An end past the representable range
/// is the end of time (`Timestamp::MAX`): every instant that can be asked about is inside.
#[inline]
fn occurrence(tz: &TimeZone, dt: civil::DateTime, span: SignedDuration, idx: usize) -> Resolved {
    let Some(start) = resolve(tz, dt) else {
        return Resolved::Beyond;
    };
    let end = dt
        .checked_add(span)
        .ok()
        .and_then(|e| resolve(tz, e))
        .unwrap_or(Timestamp::MAX);
    if end <= start {
        return Resolved::Empty;
    }
    Resolved::Member(Member { start, end, idx })
}

fn next_nanosecond(dt: civil::DateTime) -> Option<civil::DateTime> {
    dt.checked_add(SignedDuration::from_nanos(1)).ok()
}

fn prev_nanosecond(dt: civil::DateTime) -> Option<civil::DateTime> {
    dt.checked_sub(SignedDuration::from_nanos(1)).ok()
}

/// The latest occurrence whose start is at or before `t`, with its wall-clock start.
///
/// All occurrences of a rule last the same wall-clock span and start at least a day apart
/// on the wall clock, which is more than any offset change moves an instant; so resolved
/// starts and ends never decrease along the rule, and the latest occurrence starting by `t`
/// is also the one that ends last among them. Found by a backward search from `t`'s wall
/// clock plus [`SLACK`], stepping back over the few occurrences that resolve after `t`.
fn last_starting_by(
    rule: &RRule,
    dtstart: civil::DateTime,
    tz: &TimeZone,
    span: SignedDuration,
    idx: usize,
    t: Timestamp,
) -> Option<(civil::DateTime, Resolved)> {
    let base = rule.occurrences(dtstart, tz);
    let mut x = tz
        .to_datetime(t)
        .checked_add(SLACK)
        .unwrap_or(civil::DateTime::MAX);
    loop {
        let c = base.last_at_or_before(x)?;
        if resolve(tz, c).is_some_and(|s| s <= t) {
            return Some((c, occurrence(tz, c, span, idx)));
        }
        x = prev_nanosecond(c)?;
    }
}

/// The end of the latest non-empty occurrence that ends before `t` (ends never decrease
/// along a rule, see [`last_starting_by`]).
fn last_end_before(
    rule: &RRule,
    dtstart: civil::DateTime,
    tz: &TimeZone,
    span: SignedDuration,
    t: Timestamp,
) -> Option<Timestamp> {
    let base = rule.occurrences(dtstart, tz);
    // Starting after this wall-clock time means ending after `t`.
    let mut x = tz
        .to_datetime(t)
        .checked_sub(span)
        .ok()?
        .checked_add(SLACK)
        .unwrap_or(civil::DateTime::MAX);
    loop {
        let c = base.last_at_or_before(x)?;
        if let Resolved::Member(m) = occurrence(tz, c, span, 0)
            && m.end < t
        {
            return Some(m.end);
        }
        x = prev_nanosecond(c)?;
    }
}

impl Source {
    /// The occurrences of this source that end at or after `lo`, in start order — except
    /// that, of the occurrences that all contain `lo`, only the first and the last are
    /// yielded: the ones between lie inside the union of those two, and with a long span
    /// (a daily window lasting years) there can be millions of them.
    pub(super) fn stream<'a>(
        &'a self,
        tz: &'a TimeZone,
        lo: Timestamp,
        idx: usize,
    ) -> SourceStream<'a> {
        match &self.rec {
            Rec::OneOff { start, end } => SourceStream::Fixed((*end >= lo).then_some(Member {
                start: *start,
                end: *end,
                idx,
            })),
            Rec::Never => SourceStream::Fixed(None),
            Rec::Recurring {
                rule,
                dtstart,
                span,
            } => {
                // An occurrence starting before this wall-clock time ends before `lo`.
                let after = tz
                    .to_datetime(lo)
                    .checked_sub(*span)
                    .and_then(|d| d.checked_sub(SLACK))
                    .unwrap_or(*dtstart);
                SourceStream::Rec(Box::new(RecStream {
                    occ: Some(rule.occurrences_from(*dtstart, tz, after)),
                    tz,
                    rule,
                    dtstart: *dtstart,
                    span: *span,
                    lo,
                    idx,
                    skip: Skip::BeforeFirst,
                }))
            }
        }
    }

    /// The end of this source's latest occurrence that ends before `t`.
    pub(super) fn last_end_before(&self, tz: &TimeZone, t: Timestamp) -> Option<Timestamp> {
        match &self.rec {
            Rec::OneOff { end, .. } => (*end < t).then_some(*end),
            Rec::Never => None,
            Rec::Recurring {
                rule,
                dtstart,
                span,
            } => last_end_before(rule, *dtstart, tz, *span, t),
        }
    }

    /// Whether an occurrence that ends in `[s, floor)` starts before `s`: the union of this
    /// source with a piece starting at `s` then begins earlier than `s`.
    pub(super) fn reaches_back_over(&self, tz: &TimeZone, s: Timestamp, floor: Timestamp) -> bool {
        // The first occurrence ending at or after `s` starts first among those that do.
        self.stream(tz, s, 0)
            .next()
            .is_some_and(|m| m.end < floor && m.start < s)
    }
}

#[derive(Debug)]
pub(super) enum SourceStream<'a> {
    Fixed(Option<Member>),
    Rec(Box<RecStream<'a>>),
}

/// Where a [`RecStream`] is in skipping the occurrences that all contain `lo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    /// Nothing ending after `lo` yielded yet.
    BeforeFirst,
    /// The first occurrence ending after `lo` was yielded; if the next one starts by `lo`
    /// too, jump to the last one that does.
    Armed,
    Spent,
}

#[derive(Debug)]
pub(super) struct RecStream<'a> {
    /// `None` once the stream is exhausted.
    occ: Option<Occurrences>,
    tz: &'a TimeZone,
    rule: &'a RRule,
    dtstart: civil::DateTime,
    span: SignedDuration,
    lo: Timestamp,
    idx: usize,
    skip: Skip,
}

impl Iterator for RecStream<'_> {
    type Item = Member;

    fn next(&mut self) -> Option<Member> {
        loop {
            let dt = self.occ.as_mut()?.next()?;
            let m = match occurrence(self.tz, dt, self.span, self.idx) {
                Resolved::Member(m) => m,
                Resolved::Empty => continue,
                Resolved::Beyond => {
                    self.occ = None;
                    return None;
                }
            };
            if m.end < self.lo {
                continue;
            }
            match self.skip {
                Skip::BeforeFirst => {
                    if m.end > self.lo {
                        self.skip = Skip::Armed;
                    }
                }
                Skip::Armed => {
                    self.skip = Skip::Spent;
                    if m.start <= self.lo
                        && let Some((bw, b)) = last_starting_by(
                            self.rule,
                            self.dtstart,
                            self.tz,
                            self.span,
                            self.idx,
                            self.lo,
                        )
                        && bw > dt
                    {
                        // `m` and everything up to `b` lie inside [first.start, b.end].
                        self.occ = next_nanosecond(bw)
                            .map(|a| self.rule.occurrences_from(self.dtstart, self.tz, a));
                        match b {
                            Resolved::Member(b) => return Some(b),
                            Resolved::Empty => continue,
                            Resolved::Beyond => {
                                self.occ = None;
                                return None;
                            }
                        }
                    }
                }
                Skip::Spent => {}
            }
            return Some(m);
        }
    }
}

impl Iterator for SourceStream<'_> {
    type Item = Member;

    fn next(&mut self) -> Option<Member> {
        match self {
            SourceStream::Fixed(m) => m.take(),
            SourceStream::Rec(r) => r.next(),
        }
    }
}

/// A coalesced run of overlapping or touching members.
#[derive(Debug, Clone)]
pub(super) struct Piece {
    pub(super) start: Timestamp,
    pub(super) end: Timestamp,
    pub(super) members: Vec<Member>,
}

impl Piece {
    /// Window names of the members, in order of first appearance.
    pub(super) fn names(&self, schedule: &Schedule) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for m in &self.members {
            let n = schedule.window_name(m.idx);
            if !names.contains(&n) {
                names.push(n);
            }
        }
        names
    }
}

/// Merges streams by start and coalesces overlapping/touching members.
#[derive(Debug)]
pub(super) struct Union<'a> {
    streams: Vec<SourceStream<'a>>,
    heads: Vec<Option<Member>>,
    keep_members: bool,
    /// Coalescing stops once a piece reaches past this (the search horizon): windows that
    /// chain forever (a daily 25-hour window) must not be followed forever.
    limit: Timestamp,
}

impl<'a> Union<'a> {
    fn new(mut streams: Vec<SourceStream<'a>>, keep_members: bool, limit: Timestamp) -> Union<'a> {
        let heads = streams.iter_mut().map(Iterator::next).collect();
        Union {
            streams,
            heads,
            keep_members,
            limit,
        }
    }

    fn pop_min(&mut self) -> Option<Member> {
        let (i, _) = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.map(|m| (i, m)))
            .min_by_key(|(_, m)| (m.start, m.end))?;
        let m = self.heads[i].take();
        self.heads[i] = self.streams[i].next();
        m
    }

    fn peek_start(&self) -> Option<Timestamp> {
        self.heads.iter().flatten().map(|m| m.start).min()
    }
}

impl Iterator for Union<'_> {
    type Item = Piece;

    fn next(&mut self) -> Option<Piece> {
        let first = self.pop_min()?;
        let mut piece = Piece {
            start: first.start,
            end: first.end,
            members: Vec::new(),
        };
        if self.keep_members {
            piece.members.push(first);
        }
        while piece.end <= self.limit && self.peek_start().is_some_and(|s| s <= piece.end) {
            let Some(m) = self.pop_min() else { break };
            piece.end = piece.end.max(m.end);
            if self.keep_members {
                piece.members.push(m);
            }
        }
        Some(piece)
    }
}

/// Allowed time: union(windows) − union(applicable exclusions, freeze).
#[derive(Debug)]
pub(super) struct Allowed<'a> {
    windows: Union<'a>,
    excl: Union<'a>,
    excl_head: Option<Piece>,
    current: Option<Piece>,
    cursor: Timestamp,
}

impl<'a> Allowed<'a> {
    /// Allowed pieces computed from sources that end at or after `lo`. Pieces are exact on
    /// `[lo, limit]`; a piece starting before `lo` may have begun earlier still, and one
    /// reaching past `limit` ends at the first member end past it.
    pub(super) fn new(
        schedule: &'a Schedule,
        lo: Timestamp,
        limit: Timestamp,
        kind: UpgradeKind,
    ) -> Allowed<'a> {
        let tz = schedule.time_zone();
        let windows = if schedule.spec.always_allowed {
            vec![SourceStream::Fixed(Some(Member {
                start: Timestamp::MIN,
                end: Timestamp::MAX,
                idx: usize::MAX,
            }))]
        } else {
            schedule
                .windows
                .iter()
                .enumerate()
                .map(|(i, w)| w.stream(tz, lo, i))
                .collect()
        };
        let mut excl: Vec<SourceStream<'a>> = schedule
            .exclusions
            .iter()
            .enumerate()
            .filter(|(_, (_, scope))| ExclusionScope::applies_to(*scope, kind))
            .map(|(i, (x, _))| x.stream(tz, lo, i))
            .collect();
        if let Some((until, _)) = &schedule.freeze {
            // Always included, even when it ended before `lo`: a look-back that stops at its
            // floor must still never report allowed time before the freeze's end.
            excl.push(SourceStream::Fixed(Some(Member {
                start: Timestamp::MIN,
                end: *until,
                idx: usize::MAX,
            })));
        }
        let mut excl = Union::new(excl, false, limit);
        let excl_head = excl.next();
        Allowed {
            windows: Union::new(windows, true, limit),
            excl,
            excl_head,
            current: None,
            cursor: Timestamp::MIN,
        }
    }
}

impl Iterator for Allowed<'_> {
    type Item = Piece;

    fn next(&mut self) -> Option<Piece> {
        loop {
            let Some(cur) = &self.current else {
                let p = self.windows.next()?;
                // Past the horizon: stop, even if exclusions hid every window so far.
                if p.start >= self.windows.limit {
                    return None;
                }
                // Past the horizon the union stops merging, so a piece may begin before the
                // previous one ended: never move the cursor back over swept time.
                self.cursor = self.cursor.max(p.start);
                self.current = Some(p);
                continue;
            };
            if self.cursor >= cur.end {
                self.current = None;
                continue;
            }
            while self
                .excl_head
                .as_ref()
                .is_some_and(|e| e.end <= self.cursor)
            {
                self.excl_head = self.excl.next();
            }
            if let Some(e) = &self.excl_head
                && e.start <= self.cursor
            {
                self.cursor = e.end;
                continue;
            }
            let cut = match &self.excl_head {
                Some(e) if e.start < cur.end => e.start,
                _ => cur.end,
            };
            let start = self.cursor;
            let members = cur
                .members
                .iter()
                .filter(|m| m.start < cut && m.end > start)
                .copied()
                .collect();
            self.cursor = cut;
            return Some(Piece {
                start,
                end: cut,
                members,
            });
        }
    }
}
