//! Lazy expansion of an [`RRule`] on wall-clock dates, following python-dateutil's `rrule`.
//!
//! The expansion walks *periods* (a year, a month, a week starting on WKST, or a day,
//! stepping by INTERVAL), lists the days of each period that pass every BY* filter, applies
//! BYSETPOS to that list, and yields the survivors at DTSTART's time of day. This is
//! dateutil's algorithm, including its defaults (a MONTHLY rule without BYDAY/BYMONTHDAY
//! repeats on DTSTART's day, so day 31 skips short months instead of clamping; DTSTART is
//! yielded only when the rule produces it).
//!
//! Two places where we follow RFC 5545 instead of dateutil 2.9 (both tested):
//! - BYDAY mixing plain and ordinal days (`BYDAY=MO,1FR`) is a union, as the RFC says;
//!   dateutil intersects the two lists and yields nothing.
//! - With FREQ=WEEKLY and BYSETPOS, the first week is the whole week containing DTSTART;
//!   dateutil cuts it at DTSTART, which shifts the positions of that first week.
//!
//! Day arithmetic is done on plain day numbers (days since 1970-01-01) because it is in the
//! hot loop of `next_intervals`; jiff is only used at the edges (building a `DateTime`,
//! resolving a `UNTIL=…Z`).
//!
//! Termination: the calendar repeats after one 400-year Gregorian cycle (146 097 days, a
//! whole number of weeks), so whether period k has a matching day depends only on where the
//! period falls in the cycle, `(base + k·INTERVAL) mod P` with P periods per cycle (400
//! years, 4 800 months, 20 871 weeks or 146 097 days). Stepping by INTERVAL visits every
//! reachable place after `P / gcd(P, INTERVAL)` periods, so a rule that produced nothing for
//! that many consecutive periods never will; the iterator then ends. (Counting *days*
//! instead, as this file once did, is wrong for a large INTERVAL: `FREQ=MONTHLY;INTERVAL=7;
//! BYMONTH=2;BYMONTHDAY=29;BYDAY=MO` from 2025 first matches in 2512.) It also ends at the end
//! of year 9999, at COUNT, and once a period starts after UNTIL. Whatever the INTERVAL, a rule
//! that can never match (BYMONTHDAY=31;BYMONTH=2) therefore costs at most one cycle of
//! scanning (about 146 000 days looked at, a millisecond), once per iterator.
//!
//! Going backwards: [`Occurrences::last_at_or_before`] finds the latest occurrence at or
//! before a wall-clock time by walking periods down from the one containing it, with the
//! same termination bound. The interval engine uses it to answer "is t inside an
//! occurrence?" without walking every occurrence between DTSTART and t, which matters when
//! an occurrence lasts longer than the rule's period (a daily window lasting years).

use jiff::{civil, tz::TimeZone};

use super::rrule::{Frequency, RRule, Until};

/// One 400-year Gregorian cycle, in days (a whole number of weeks).
const CYCLE_DAYS: i64 = 146_097;
const MAX_YEAR: i32 = 9999;

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// How many consecutive periods of `freq` stepped by `interval` visit every place in the
/// 400-year cycle that the stepping can reach (see the module doc).
fn cycle_periods(freq: Frequency, interval: i64) -> i64 {
    let per_cycle = match freq {
        Frequency::Yearly => 400,
        Frequency::Monthly => 4_800,
        Frequency::Weekly => CYCLE_DAYS / 7,
        Frequency::Daily => CYCLE_DAYS,
    };
    per_cycle / gcd(per_cycle, interval.max(1))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(super) fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
pub(super) fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // The ranges are bounded by the arithmetic above; conversions cannot fail for jiff's years.
    (
        i32::try_from(y).unwrap_or(i32::MAX),
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// Monday = 0 … Sunday = 6.
fn weekday_of(day: i64) -> u32 {
    // 1970-01-01 was a Thursday (3).
    u32::try_from((day + 3).rem_euclid(7)).unwrap_or(0)
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn month_len(y: i32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn wd_index(w: civil::Weekday) -> u32 {
    u32::from(w.to_monday_zero_offset().unsigned_abs())
}

pub(super) fn date_days(d: civil::Date) -> i64 {
    days_from_civil(
        i32::from(d.year()),
        u32::from(d.month().unsigned_abs()),
        u32::from(d.day().unsigned_abs()),
    )
}

/// Adds the days in `lo..=hi` picked by ordinal BYDAY entries (`1SA`, `-1FR`).
fn push_nth(nth: &[(u32, i32)], lo: i64, hi: i64, out: &mut Vec<i64>) {
    for &(w, n) in nth {
        let day = if n > 0 {
            let d = lo + i64::from(n - 1) * 7;
            d + (i64::from(w) - i64::from(weekday_of(d))).rem_euclid(7)
        } else {
            let d = hi + i64::from(n + 1) * 7;
            d - (i64::from(weekday_of(d)) - i64::from(w)).rem_euclid(7)
        };
        if (lo..=hi).contains(&day) {
            out.push(day);
        }
    }
}

/// The BY* filters with dateutil's DTSTART-derived defaults filled in.
#[derive(Debug, Clone)]
struct Plan {
    freq: Frequency,
    interval: i64,
    /// Bit m set for each allowed month; 0 = any month.
    months: u16,
    /// Bit d set for BYMONTHDAY=d; `mday_neg` bit d for BYMONTHDAY=-d.
    mday_pos: u32,
    mday_neg: u32,
    yday: Vec<i16>,
    /// Bit w set for plain BYDAY weekdays (Monday = 0).
    wdays: u8,
    /// Ordinal BYDAY entries: (weekday, n).
    nth: Vec<(u32, i32)>,
    has_day: bool,
    setpos: Vec<i16>,
    /// Consecutive empty periods after which the rule can never match again.
    cycle_periods: i64,
}

impl Plan {
    fn new(rule: &RRule, dtstart: civil::DateTime) -> Plan {
        let mut plan = Plan {
            freq: rule.freq,
            interval: i64::from(rule.interval),
            months: rule.by_month.iter().fold(0u16, |m, &x| m | (1 << x)),
            mday_pos: 0,
            mday_neg: 0,
            yday: rule.by_yearday.clone(),
            wdays: 0,
            nth: Vec::new(),
            has_day: !rule.by_day.is_empty(),
            setpos: rule.by_setpos.clone(),
            cycle_periods: cycle_periods(rule.freq, i64::from(rule.interval)),
        };
        for &d in &rule.by_monthday {
            if d > 0 {
                plan.mday_pos |= 1 << d;
            } else {
                plan.mday_neg |= 1 << (-d);
            }
        }
        for d in &rule.by_day {
            let w = wd_index(d.weekday);
            match d.ordinal {
                None => plan.wdays |= 1 << w,
                Some(n) => plan.nth.push((w, i32::from(n))),
            }
        }
        if rule.by_day.is_empty() && rule.by_monthday.is_empty() && rule.by_yearday.is_empty() {
            let day = u32::from(dtstart.day().unsigned_abs());
            match rule.freq {
                Frequency::Yearly => {
                    if plan.months == 0 {
                        plan.months = 1 << dtstart.month();
                    }
                    plan.mday_pos = 1 << day;
                }
                Frequency::Monthly => plan.mday_pos = 1 << day,
                Frequency::Weekly => {
                    plan.wdays = 1 << wd_index(dtstart.weekday());
                    plan.has_day = true;
                }
                Frequency::Daily => {}
            }
        }
        plan
    }
}

/// Wall-clock occurrences of a rule, lazily, in increasing order. Created by
/// [`RRule::occurrences`] and [`RRule::occurrences_from`].
#[derive(Debug, Clone)]
pub struct Occurrences {
    plan: Plan,
    dtstart: civil::DateTime,
    until: Option<Until>,
    /// The last day a period may start on and still produce something before UNTIL.
    until_day: Option<i64>,
    tz: TimeZone,
    count: Option<u32>,
    remaining: Option<u32>,
    after: Option<civil::DateTime>,
    /// Year, month index (y*12+m-1), first day of week, or day of DTSTART's period.
    base: i64,
    period: i64,
    buf: Vec<i64>,
    buf_pos: usize,
    /// Consecutive periods filled without a matching day.
    empty_run: i64,
    stop_day: Option<i64>,
    done: bool,
}

impl RRule {
    /// Every occurrence of the rule starting at `dtstart` (wall clock), in order. `tz` is
    /// only used to compare occurrences with a `UNTIL=…Z` instant.
    pub fn occurrences(&self, dtstart: civil::DateTime, tz: &TimeZone) -> Occurrences {
        let plan = Plan::new(self, dtstart);
        let start_day = date_days(dtstart.date());
        let base = match self.freq {
            Frequency::Yearly => i64::from(dtstart.year()),
            Frequency::Monthly => i64::from(dtstart.year()) * 12 + i64::from(dtstart.month()) - 1,
            Frequency::Weekly => {
                let back = (i64::from(wd_index(dtstart.weekday()))
                    - i64::from(wd_index(self.wkst)))
                .rem_euclid(7);
                start_day - back
            }
            Frequency::Daily => start_day,
        };
        let until_day = match self.until {
            None => None,
            Some(Until::Floating(dt)) => Some(date_days(dt.date())),
            Some(Until::Utc(ts)) => Some(date_days(tz.to_datetime(ts).date()) + 1),
        };
        Occurrences {
            plan,
            dtstart,
            until: self.until,
            until_day,
            tz: tz.clone(),
            count: self.count,
            remaining: self.count,
            after: None,
            base,
            period: 0,
            buf: Vec::new(),
            buf_pos: 0,
            empty_run: 0,
            stop_day: None,
            done: false,
        }
    }

    /// The occurrences at or after `after`. Without COUNT this jumps straight to the period
    /// containing `after`, so it costs the same 10 years after DTSTART as on the first day.
    pub fn occurrences_from(
        &self,
        dtstart: civil::DateTime,
        tz: &TimeZone,
        after: civil::DateTime,
    ) -> Occurrences {
        let mut it = self.occurrences(dtstart, tz);
        it.after = Some(after);
        if self.count.is_none() && after > dtstart {
            it.period = it.period_of(after.date()).max(0);
        }
        it
    }

    /// The same rule with COUNT replaced by a wall-clock UNTIL at its last occurrence, which
    /// yields exactly the same occurrences but lets [`RRule::occurrences_from`] and
    /// [`Occurrences::last_at_or_before`] jump instead of counting from DTSTART. `None` when
    /// the rule has no occurrence at all. Done once, when a schedule is built.
    ///
    /// Counting uses the cycle of the module doc: after DTSTART's period, the number of
    /// occurrences per period repeats every `P / gcd(P, INTERVAL)` periods, so after one such
    /// cycle whole cycles are skipped. The cost is at most two cycles of periods (about
    /// 300 000 days looked at, ~10 ms), whatever COUNT is; it was 1 000 000 occurrences
    /// expanded one by one (~80 ms) for the largest COUNT.
    pub(super) fn without_count(&self, dtstart: civil::DateTime, tz: &TimeZone) -> Option<RRule> {
        let Some(count) = self.count else {
            return Some(self.clone());
        };
        let mut free = self.clone();
        free.count = None;
        let it = free.occurrences(dtstart, tz);
        let start_day = date_days(dtstart.date());
        let max_day = days_from_civil(MAX_YEAR, 12, 31);
        let cycle = it.plan.cycle_periods;
        let mut need = i64::from(count);
        let mut buf = Vec::new();
        let mut last_day = None;
        let mut per_cycle = 0;
        let mut skipped = false;
        let mut k = 0;
        loop {
            if k == 1 + cycle && !skipped {
                // Periods 1..=cycle held `per_cycle` occurrences; so does every later cycle.
                if per_cycle == 0 {
                    break;
                }
                let whole = (need - 1) / per_cycle;
                k += whole * cycle;
                need -= whole * per_cycle;
                skipped = whole > 0;
            }
            if it.period_days(k, &mut buf).is_none() {
                if skipped {
                    // COUNT is reached only after year 9999: the rule ends there.
                    return it.last_at_or_before(civil::DateTime::MAX).map(|last| {
                        free.until = Some(Until::Floating(last));
                        free
                    });
                }
                break;
            }
            let days = buf.iter().filter(|d| (start_day..=max_day).contains(*d));
            let n = i64::try_from(days.clone().count()).unwrap_or(i64::MAX);
            if n >= need {
                last_day = days
                    .clone()
                    .nth(usize::try_from(need - 1).unwrap_or(0))
                    .copied();
                break;
            }
            need -= n;
            if n > 0 {
                last_day = days.clone().next_back().copied();
            }
            if (1..=cycle).contains(&k) {
                per_cycle += n;
            }
            k += 1;
        }
        let last = it.make(last_day?)?;
        free.until = Some(Until::Floating(last));
        Some(free)
    }
}

impl Occurrences {
    /// Stops the scan once a period starts after `limit` (wall clock), even if the rule
    /// could still produce occurrences. Occurrences up to `limit` are unaffected.
    #[must_use]
    pub fn stop_after(mut self, limit: civil::DateTime) -> Occurrences {
        self.stop_day = Some(date_days(limit.date()));
        self
    }

    /// The index of the period holding `d`, counted in steps of INTERVAL from DTSTART's
    /// period (rounded down; negative before it).
    fn period_of(&self, d: civil::Date) -> i64 {
        let k = match self.plan.freq {
            Frequency::Yearly => i64::from(d.year()) - self.base,
            Frequency::Monthly => i64::from(d.year()) * 12 + i64::from(d.month()) - 1 - self.base,
            Frequency::Weekly => (date_days(d) - self.base).div_euclid(7),
            Frequency::Daily => date_days(d) - self.base,
        };
        k.div_euclid(self.plan.interval)
    }

    /// The latest occurrence at or before `x` (wall clock), found by walking periods down
    /// from the one holding `x`: the cost depends on the gaps between occurrences, not on the
    /// distance from DTSTART. Ignores `after`/`stop_after`; honours DTSTART, UNTIL and (by
    /// counting from DTSTART, slowly) COUNT — see [`RRule::without_count`].
    pub fn last_at_or_before(&self, x: civil::DateTime) -> Option<civil::DateTime> {
        if self.count.is_some() {
            let it = Occurrences {
                period: 0,
                buf: Vec::new(),
                buf_pos: 0,
                empty_run: 0,
                remaining: self.count,
                after: None,
                stop_day: None,
                done: false,
                ..self.clone()
            };
            return it.take_while(|d| *d <= x).last();
        }
        if x < self.dtstart {
            return None;
        }
        let x = match self.until {
            None => x,
            Some(Until::Floating(u)) => x.min(u),
            // An occurrence two days after UNTIL's wall clock is after it in any zone.
            Some(Until::Utc(u)) => x.min(
                self.tz
                    .to_datetime(u)
                    .checked_add(jiff::SignedDuration::from_hours(48))
                    .unwrap_or(civil::DateTime::MAX),
            ),
        };
        let start_day = date_days(self.dtstart.date());
        let mut k = self.period_of(x.date());
        let mut buf = Vec::new();
        let mut empty = 0;
        while k >= 0 && empty < self.plan.cycle_periods {
            let Some(first) = self.period_days(k, &mut buf) else {
                k -= 1;
                continue;
            };
            if buf.is_empty() {
                empty += 1;
            } else {
                empty = 0;
            }
            for &day in buf.iter().rev() {
                if day < start_day {
                    return None;
                }
                let dt = self.make(day)?;
                if dt > x || dt < self.dtstart {
                    continue;
                }
                if let Some(Until::Utc(u)) = self.until
                    && self
                        .tz
                        .to_ambiguous_timestamp(dt)
                        .compatible()
                        .map_or(true, |ts| ts > u)
                {
                    continue;
                }
                return Some(dt);
            }
            if first <= start_day {
                return None;
            }
            k -= 1;
        }
        None
    }

    #[inline]
    fn period_first_day(&self, k: i64) -> i64 {
        let step = k * self.plan.interval;
        match self.plan.freq {
            Frequency::Yearly => {
                days_from_civil(i32::try_from(self.base + step).unwrap_or(i32::MAX), 1, 1)
            }
            Frequency::Monthly => {
                let idx = self.base + step;
                days_from_civil(
                    i32::try_from(idx.div_euclid(12)).unwrap_or(i32::MAX),
                    u32::try_from(idx.rem_euclid(12) + 1).unwrap_or(1),
                    1,
                )
            }
            Frequency::Weekly => self.base + step * 7,
            Frequency::Daily => self.base + step,
        }
    }

    /// Fills `buf` with the matching days of the next period. Returns false when done.
    fn fill(&mut self) -> bool {
        self.buf_pos = 0;
        let first = self.period_first_day(self.period);
        let (year, first_month, _) = civil_from_days(first);
        if year > MAX_YEAR
            || self.empty_run >= self.plan.cycle_periods
            || self.until_day.is_some_and(|u| first > u)
            || self.stop_day.is_some_and(|s| first > s)
        {
            self.buf.clear();
            return false;
        }
        let mut buf = std::mem::take(&mut self.buf);
        self.days_of_period(first, year, first_month, &mut buf);
        if buf.is_empty() {
            self.empty_run += 1;
        } else {
            self.empty_run = 0;
        }
        self.buf = buf;
        self.period += 1;
        true
    }

    /// Replaces `buf` with the matching days of period `k` (BYSETPOS applied), ascending.
    /// Returns the period's first day, or `None` (and an empty `buf`) past year 9999.
    fn period_days(&self, period: i64, buf: &mut Vec<i64>) -> Option<i64> {
        let first = self.period_first_day(period);
        let (year, first_month, _) = civil_from_days(first);
        if year > MAX_YEAR {
            buf.clear();
            return None;
        }
        self.days_of_period(first, year, first_month, buf);
        Some(first)
    }

    /// [`Occurrences::period_days`] for a period starting on day `first` of `year`.
    fn days_of_period(&self, first: i64, year: i32, first_month: u32, buf: &mut Vec<i64>) {
        buf.clear();
        let plan = &self.plan;
        let months: Vec<u32> = match plan.freq {
            Frequency::Yearly => (1..=12)
                .filter(|m| plan.months == 0 || plan.months & (1 << m) != 0)
                .collect(),
            Frequency::Monthly => vec![first_month],
            Frequency::Weekly | Frequency::Daily => Vec::new(),
        };
        let mut nth_days: Vec<i64> = Vec::new();
        if !plan.nth.is_empty() {
            if plan.freq == Frequency::Yearly && plan.months == 0 {
                let lo = days_from_civil(year, 1, 1);
                let hi = days_from_civil(year + 1, 1, 1) - 1;
                push_nth(&plan.nth, lo, hi, &mut nth_days);
            } else {
                for &m in &months {
                    let lo = days_from_civil(year, m, 1);
                    push_nth(
                        &plan.nth,
                        lo,
                        lo + i64::from(month_len(year, m)) - 1,
                        &mut nth_days,
                    );
                }
            }
        }
        let mut consider = |y: i32, m: u32, d: u32, day: i64, ylen: i64, year_first: i64| {
            if plan.months != 0 && plan.months & (1 << m) == 0 {
                return;
            }
            if plan.has_day && plan.wdays & (1 << weekday_of(day)) == 0 && !nth_days.contains(&day)
            {
                return;
            }
            if plan.mday_pos | plan.mday_neg != 0 {
                let neg = month_len(y, m) - d + 1;
                if plan.mday_pos & (1 << d) == 0 && plan.mday_neg & (1 << neg) == 0 {
                    return;
                }
            }
            if !plan.yday.is_empty() {
                let yd = day - year_first + 1;
                let neg = yd - ylen - 1;
                if !plan
                    .yday
                    .iter()
                    .any(|&x| i64::from(x) == yd || i64::from(x) == neg)
                {
                    return;
                }
            }
            buf.push(day);
        };
        match plan.freq {
            Frequency::Yearly | Frequency::Monthly => {
                let y = year;
                let year_first = days_from_civil(y, 1, 1);
                let ylen = if is_leap(y) { 366 } else { 365 };
                for m in months {
                    let lo = days_from_civil(y, m, 1);
                    for d in 1..=month_len(y, m) {
                        consider(y, m, d, lo + i64::from(d) - 1, ylen, year_first);
                    }
                }
            }
            Frequency::Weekly | Frequency::Daily => {
                let n = if plan.freq == Frequency::Weekly { 7 } else { 1 };
                for day in first..first + n {
                    let (y, m, d) = civil_from_days(day);
                    let year_first = days_from_civil(y, 1, 1);
                    let ylen = if is_leap(y) { 366 } else { 365 };
                    consider(y, m, d, day, ylen, year_first);
                }
            }
        }
        if !plan.setpos.is_empty() {
            let len = i64::try_from(buf.len()).unwrap_or(i64::MAX);
            let mut picked: Vec<i64> = plan
                .setpos
                .iter()
                .filter_map(|&p| {
                    let p = i64::from(p);
                    let idx = if p > 0 { p - 1 } else { len + p };
                    usize::try_from(idx).ok().and_then(|i| buf.get(i).copied())
                })
                .collect();
            picked.sort_unstable();
            picked.dedup();
            *buf = picked;
        }
    }

    #[inline]
    fn make(&self, day: i64) -> Option<civil::DateTime> {
        let (y, m, d) = civil_from_days(day);
        let date = civil::Date::new(
            i16::try_from(y).ok()?,
            i8::try_from(m).ok()?,
            i8::try_from(d).ok()?,
        )
        .ok()?;
        Some(date.to_datetime(self.dtstart.time()))
    }
}

impl Iterator for Occurrences {
    type Item = civil::DateTime;

    fn next(&mut self) -> Option<civil::DateTime> {
        loop {
            if self.done {
                return None;
            }
            if self.buf_pos >= self.buf.len() {
                if !self.fill() {
                    self.done = true;
                }
                continue;
            }
            let day = self.buf[self.buf_pos];
            self.buf_pos += 1;
            let Some(dt) = self.make(day) else {
                self.done = true;
                continue;
            };
            let past_until = match self.until {
                None => false,
                Some(Until::Floating(u)) => dt > u,
                Some(Until::Utc(u)) => self
                    .tz
                    .to_ambiguous_timestamp(dt)
                    .compatible()
                    .map_or(true, |ts| ts > u),
            };
            if past_until {
                self.done = true;
                continue;
            }
            if dt < self.dtstart {
                continue;
            }
            if let Some(r) = self.remaining.as_mut() {
                *r -= 1;
                if *r == 0 {
                    // Yield this one, then stop without scanning further.
                    self.buf.clear();
                    self.buf_pos = 0;
                    self.done = true;
                }
            }
            if self.after.is_some_and(|a| dt < a) {
                continue;
            }
            return Some(dt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `without_count` skips whole cycles; the forward expansion counts one by one. They must
    /// agree on the last occurrence, in particular when COUNT spans many cycles, ends in
    /// year 9999, or is never reached.
    #[test]
    fn without_count_agrees_with_counting_one_by_one() {
        // (rule, dtstart, reason)
        let cases = [
            (
                "FREQ=DAILY;COUNT=400000",
                "2026-01-01T22:00:00",
                "daily over 2.7 cycles",
            ),
            (
                "FREQ=DAILY;COUNT=146097",
                "2026-03-01T02:30:00",
                "exactly one cycle",
            ),
            (
                "FREQ=DAILY;COUNT=146099",
                "2026-03-01T02:30:00",
                "one cycle and two",
            ),
            (
                "FREQ=DAILY;COUNT=438292",
                "2026-03-01T02:30:00",
                "DTSTART, then exactly three cycles",
            ),
            (
                "FREQ=DAILY;COUNT=1000000",
                "2026-01-01T00:00:00",
                "COUNT past year 9999: ends there",
            ),
            (
                "FREQ=WEEKLY;BYDAY=SA,SU;COUNT=300001",
                "2025-01-04T08:00:00",
                "weekends, many cycles",
            ),
            (
                "FREQ=WEEKLY;INTERVAL=3;BYDAY=TU;COUNT=90000",
                "2025-01-07T08:00:00",
                "every third week",
            ),
            (
                "FREQ=MONTHLY;BYDAY=-1FR;COUNT=60000",
                "2025-01-31T18:00:00",
                "last Friday, 5000 years",
            ),
            (
                "FREQ=MONTHLY;BYMONTHDAY=31;COUNT=50001",
                "2025-01-31T18:00:00",
                "day 31: 7 of 12 months",
            ),
            (
                "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=77777",
                "2025-01-01T20:00:00",
                "BYSETPOS",
            ),
            (
                "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;COUNT=1500",
                "2024-02-29T12:00:00",
                "leap days, 6000 years",
            ),
            (
                "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;COUNT=400",
                "2025-01-01T12:00:00",
                "Monday 29 Feb",
            ),
            (
                "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;COUNT=5",
                "2025-01-01T12:00:00",
                "never: no last occurrence",
            ),
            (
                "FREQ=DAILY;INTERVAL=1000;BYMONTH=2;BYMONTHDAY=29;COUNT=3",
                "2025-01-01T22:00:00",
                "rare, fewer than COUNT",
            ),
            (
                "FREQ=WEEKLY;BYDAY=MO,FR;BYSETPOS=1;COUNT=30000",
                "2025-01-01T22:00:00",
                "first week cut at DTSTART",
            ),
            (
                "FREQ=DAILY;COUNT=3",
                "2025-01-01T22:00:00",
                "small COUNT, no skipping",
            ),
        ];
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        for (rule, dtstart, reason) in cases {
            let rule = RRule::parse(rule).unwrap();
            let dtstart: civil::DateTime = dtstart.parse().unwrap();
            let counted = rule.occurrences(dtstart, &tz).last();
            let skipped = rule.without_count(dtstart, &tz);
            match (counted, skipped) {
                (None, None) => {}
                (Some(last), Some(r)) => {
                    assert_eq!(r.count, None, "{reason}");
                    assert_eq!(r.until, Some(Until::Floating(last)), "{reason}");
                }
                (c, s) => panic!("{reason}: counted {c:?}, without_count {s:?}"),
            }
        }
    }
}
