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
        rule: RRule,
        dtstart: civil::DateTime,
        span: SignedDuration,
    },
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

impl Source {
    /// The occurrences of this source that end at or after `lo`, in start order.
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
            Rec::Recurring {
                rule,
                dtstart,
                span,
            } => {
                // An occurrence starting before this wall-clock time ends before `lo`: its
                // wall-clock end is before lo's wall clock minus a day, more than any UTC
                // offset change.
                let after = tz
                    .to_datetime(lo)
                    .checked_sub(*span)
                    .and_then(|d| d.checked_sub(SignedDuration::from_hours(48)))
                    .unwrap_or(*dtstart);
                SourceStream::Rec {
                    occ: Box::new(rule.occurrences_from(*dtstart, tz, after)),
                    tz,
                    span: *span,
                    lo,
                    idx,
                }
            }
        }
    }
}

#[derive(Debug)]
pub(super) enum SourceStream<'a> {
    Fixed(Option<Member>),
    Rec {
        occ: Box<Occurrences>,
        tz: &'a TimeZone,
        span: SignedDuration,
        lo: Timestamp,
        idx: usize,
    },
}

impl Iterator for SourceStream<'_> {
    type Item = Member;

    fn next(&mut self) -> Option<Member> {
        match self {
            SourceStream::Fixed(m) => m.take(),
            SourceStream::Rec {
                occ,
                tz,
                span,
                lo,
                idx,
            } => loop {
                let dt = occ.next()?;
                let start = resolve(tz, dt)?;
                let end = resolve(tz, dt.checked_add(*span).ok()?)?;
                // Empty after resolution (e.g. 02:00–03:00 inside a spring-forward gap).
                if end <= start || end < *lo {
                    continue;
                }
                return Some(Member {
                    start,
                    end,
                    idx: *idx,
                });
            },
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
                self.cursor = p.start;
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
