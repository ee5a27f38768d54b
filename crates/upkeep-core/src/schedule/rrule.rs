//! RFC 5545 RRULE, FREQ=DAILY..YEARLY: the grammar and its validation.
//!
//! Maintenance windows recur at most once a day (the time of day lives in `startTime`), so
//! only the day-level parts of RFC 5545 are accepted: FREQ, INTERVAL, COUNT, UNTIL, WKST,
//! BYMONTH, BYMONTHDAY, BYYEARDAY, BYDAY and BYSETPOS. Everything else is rejected with a
//! hint instead of being silently ignored, because an ignored part means a window at a time
//! nobody asked for. The expansion itself lives in `expand.rs`; this file only turns text
//! into a checked [`RRule`] value and back ([`std::fmt::Display`] writes the canonical form).

use std::fmt;

use jiff::{Timestamp, civil};

/// How often a rule repeats. Sub-daily frequencies are rejected at parse time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frequency {
    Yearly,
    Monthly,
    Weekly,
    Daily,
}

impl Frequency {
    fn as_str(self) -> &'static str {
        match self {
            Frequency::Yearly => "YEARLY",
            Frequency::Monthly => "MONTHLY",
            Frequency::Weekly => "WEEKLY",
            Frequency::Daily => "DAILY",
        }
    }
}

/// The `UNTIL` bound of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// `UNTIL=20250301T000000Z`: compared with each occurrence's instant in the schedule's zone.
    Utc(Timestamp),
    /// `UNTIL=20250301T000000` or `UNTIL=20250301` (midnight, as python-dateutil reads it):
    /// compared with each occurrence's wall-clock time.
    Floating(civil::DateTime),
}

/// One `BYDAY` entry: `MO`, `1SA`, `-1FR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekdayNum {
    /// `None` for every such weekday of the period; `Some(n)` for the n-th (negative: from the end).
    pub ordinal: Option<i8>,
    pub weekday: civil::Weekday,
}

/// A parsed and validated recurrence rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RRule {
    pub(super) freq: Frequency,
    pub(super) interval: u32,
    pub(super) count: Option<u32>,
    pub(super) until: Option<Until>,
    pub(super) wkst: civil::Weekday,
    pub(super) by_month: Vec<i8>,
    pub(super) by_monthday: Vec<i8>,
    pub(super) by_yearday: Vec<i16>,
    pub(super) by_day: Vec<WeekdayNum>,
    pub(super) by_setpos: Vec<i16>,
}

/// Why a recurrence rule was rejected. Variant names are stable (used as condition reasons).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RRuleError {
    #[error("recurrence is empty")]
    Empty,
    #[error("recurrence {text:?} has no FREQ part")]
    MissingFreq { text: String },
    #[error("FREQ={freq} is not supported: windows recur at most daily")]
    SubDailyFrequency { freq: String },
    #[error("FREQ={value:?} is not a known frequency")]
    UnknownFrequency { value: String },
    #[error("unknown recurrence part {name:?}")]
    UnknownPart { name: String },
    #[error("recurrence part {name} is given more than once")]
    DuplicatePart { name: String },
    #[error("recurrence part {part:?} is not of the form NAME=VALUE")]
    MalformedPart { part: String },
    #[error("{part}={value:?} is invalid: expected {expected}")]
    InvalidValue {
        part: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("COUNT and UNTIL cannot both be given")]
    CountWithUntil,
    #[error("BYSETPOS needs another BY* part to select from")]
    SetposWithoutBy,
    #[error("BYDAY={value} has an ordinal, which FREQ={freq} does not allow")]
    OrdinalNotAllowed { value: String, freq: &'static str },
    #[error("{part} cannot be used with FREQ={freq}")]
    PartNotAllowed {
        part: &'static str,
        freq: &'static str,
    },
    #[error("{part} is not supported in maintenance schedules")]
    Unsupported { part: &'static str },
}

impl RRuleError {
    /// A suggestion for fixing the rule, when there is one.
    pub fn hint(&self) -> Option<String> {
        let h = match self {
            RRuleError::Empty | RRuleError::MissingFreq { .. } => {
                "start with FREQ=DAILY, FREQ=WEEKLY, FREQ=MONTHLY or FREQ=YEARLY, e.g. FREQ=WEEKLY;BYDAY=SA"
            }
            RRuleError::SubDailyFrequency { .. } => {
                "put the time of day in startTime; use FREQ=DAILY"
            }
            RRuleError::UnknownFrequency { .. } => "use one of DAILY, WEEKLY, MONTHLY, YEARLY",
            RRuleError::UnknownPart { .. } => {
                "supported parts: FREQ, INTERVAL, COUNT, UNTIL, WKST, BYMONTH, BYMONTHDAY, BYYEARDAY, BYDAY, BYSETPOS"
            }
            RRuleError::DuplicatePart { .. } => {
                "give each part once; list several values with commas, e.g. BYDAY=SA,SU"
            }
            RRuleError::MalformedPart { .. } => {
                "separate parts with ';', e.g. FREQ=WEEKLY;BYDAY=SA"
            }
            RRuleError::InvalidValue { .. } => return None,
            RRuleError::CountWithUntil => "keep either COUNT or UNTIL",
            RRuleError::SetposWithoutBy => {
                "add the set to pick from, e.g. FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"
            }
            RRuleError::OrdinalNotAllowed { .. } => {
                "use FREQ=MONTHLY or FREQ=YEARLY for ordinals like 1SA or -1FR, or drop the number"
            }
            RRuleError::PartNotAllowed { part, .. } => {
                if *part == "BYYEARDAY" {
                    "BYYEARDAY needs FREQ=YEARLY"
                } else {
                    "use FREQ=MONTHLY for days of the month"
                }
            }
            RRuleError::Unsupported { part } => match *part {
                "BYHOUR" | "BYMINUTE" | "BYSECOND" => {
                    "put the time of day in startTime; use one window per time of day"
                }
                _ => {
                    "express the weeks with BYMONTH/BYMONTHDAY/BYDAY, or use one window per period"
                }
            },
        };
        Some(h.to_owned())
    }
}

const KNOWN_PARTS: [&str; 10] = [
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "WKST",
    "BYMONTH",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYDAY",
    "BYSETPOS",
];

impl RRule {
    /// Parses `FREQ=…;…`, with or without a leading `RRULE:`. Part names and values are
    /// case-insensitive.
    pub fn parse(s: &str) -> Result<RRule, RRuleError> {
        let text = s.trim();
        let body = match text.get(..6) {
            Some(p) if p.eq_ignore_ascii_case("RRULE:") => &text[6..],
            _ => text,
        };
        if body.trim().is_empty() {
            return Err(RRuleError::Empty);
        }
        let mut seen: Vec<&'static str> = Vec::new();
        let mut freq = None;
        let mut rule = RRule {
            freq: Frequency::Daily,
            interval: 1,
            count: None,
            until: None,
            wkst: civil::Weekday::Monday,
            by_month: Vec::new(),
            by_monthday: Vec::new(),
            by_yearday: Vec::new(),
            by_day: Vec::new(),
            by_setpos: Vec::new(),
        };
        for part in body.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, value)) = part.split_once('=') else {
                return Err(RRuleError::MalformedPart {
                    part: part.to_owned(),
                });
            };
            let upper = name.trim().to_ascii_uppercase();
            let value = value.trim();
            let name: &'static str = match upper.as_str() {
                "BYHOUR" => return Err(RRuleError::Unsupported { part: "BYHOUR" }),
                "BYMINUTE" => return Err(RRuleError::Unsupported { part: "BYMINUTE" }),
                "BYSECOND" => return Err(RRuleError::Unsupported { part: "BYSECOND" }),
                "BYWEEKNO" => return Err(RRuleError::Unsupported { part: "BYWEEKNO" }),
                other => match KNOWN_PARTS.iter().find(|k| **k == other) {
                    Some(k) => k,
                    None => return Err(RRuleError::UnknownPart { name: upper }),
                },
            };
            if seen.contains(&name) {
                return Err(RRuleError::DuplicatePart {
                    name: name.to_owned(),
                });
            }
            seen.push(name);
            match name {
                "FREQ" => freq = Some(parse_freq(value)?),
                "INTERVAL" => rule.interval = parse_int(name, value, 1, 10_000, "a number from 1")?,
                "COUNT" => {
                    rule.count = Some(parse_int(name, value, 1, 1_000_000, "a number from 1")?);
                }
                "UNTIL" => rule.until = Some(parse_until(value)?),
                "WKST" => {
                    rule.wkst = parse_weekday(value).ok_or_else(|| {
                        invalid(name, value, "a weekday: MO, TU, WE, TH, FR, SA or SU")
                    })?;
                }
                "BYMONTH" => rule.by_month = parse_list(name, value, 1, 12, false, "months 1..12")?,
                "BYMONTHDAY" => {
                    rule.by_monthday =
                        parse_list(name, value, 1, 31, true, "days 1..31 or -31..-1")?;
                }
                "BYYEARDAY" => {
                    rule.by_yearday =
                        parse_list(name, value, 1, 366, true, "days 1..366 or -366..-1")?;
                }
                "BYSETPOS" => {
                    rule.by_setpos =
                        parse_list(name, value, 1, 366, true, "positions 1..366 or -366..-1")?;
                }
                "BYDAY" => rule.by_day = parse_by_day(value)?,
                _ => unreachable!("all known parts are handled"),
            }
        }
        let Some(freq) = freq else {
            return Err(RRuleError::MissingFreq {
                text: text.to_owned(),
            });
        };
        rule.freq = freq;
        if rule.count.is_some() && rule.until.is_some() {
            return Err(RRuleError::CountWithUntil);
        }
        if !rule.by_setpos.is_empty()
            && rule.by_month.is_empty()
            && rule.by_monthday.is_empty()
            && rule.by_yearday.is_empty()
            && rule.by_day.is_empty()
        {
            return Err(RRuleError::SetposWithoutBy);
        }
        if matches!(freq, Frequency::Weekly | Frequency::Daily)
            && let Some(d) = rule.by_day.iter().find(|d| d.ordinal.is_some())
        {
            return Err(RRuleError::OrdinalNotAllowed {
                value: format_weekday_num(*d),
                freq: freq.as_str(),
            });
        }
        if freq == Frequency::Weekly && !rule.by_monthday.is_empty() {
            return Err(RRuleError::PartNotAllowed {
                part: "BYMONTHDAY",
                freq: freq.as_str(),
            });
        }
        if freq != Frequency::Yearly && !rule.by_yearday.is_empty() {
            return Err(RRuleError::PartNotAllowed {
                part: "BYYEARDAY",
                freq: freq.as_str(),
            });
        }
        // Within a month (MONTHLY, or YEARLY with BYMONTH) only ordinals up to 5 can match.
        let in_month =
            freq == Frequency::Monthly || (freq == Frequency::Yearly && !rule.by_month.is_empty());
        if in_month
            && let Some(d) = rule
                .by_day
                .iter()
                .find(|d| d.ordinal.is_some_and(|n| n.unsigned_abs() > 5))
        {
            return Err(invalid(
                "BYDAY",
                &format_weekday_num(*d),
                "an ordinal from 1 to 5 (or -5 to -1) within a month (FREQ=MONTHLY, or BYMONTH)",
            ));
        }
        Ok(rule)
    }

    pub fn frequency(&self) -> Frequency {
        self.freq
    }
    pub fn interval(&self) -> u32 {
        self.interval
    }
    pub fn count(&self) -> Option<u32> {
        self.count
    }
    pub fn until(&self) -> Option<Until> {
        self.until
    }
    pub fn week_start(&self) -> civil::Weekday {
        self.wkst
    }
    pub fn by_day(&self) -> &[WeekdayNum] {
        &self.by_day
    }
}

fn invalid(part: &'static str, value: &str, expected: &'static str) -> RRuleError {
    RRuleError::InvalidValue {
        part,
        value: value.to_owned(),
        expected,
    }
}

fn parse_freq(value: &str) -> Result<Frequency, RRuleError> {
    match value.to_ascii_uppercase().as_str() {
        "YEARLY" => Ok(Frequency::Yearly),
        "MONTHLY" => Ok(Frequency::Monthly),
        "WEEKLY" => Ok(Frequency::Weekly),
        "DAILY" => Ok(Frequency::Daily),
        f @ ("HOURLY" | "MINUTELY" | "SECONDLY") => {
            Err(RRuleError::SubDailyFrequency { freq: f.to_owned() })
        }
        _ => Err(RRuleError::UnknownFrequency {
            value: value.to_owned(),
        }),
    }
}

fn parse_int<T: TryFrom<i64>>(
    part: &'static str,
    value: &str,
    min: i64,
    max: i64,
    expected: &'static str,
) -> Result<T, RRuleError> {
    let digits = value.strip_prefix('+').unwrap_or(value);
    let n: i64 = digits.parse().map_err(|_| invalid(part, value, expected))?;
    if n < min || n > max {
        return Err(invalid(part, value, expected));
    }
    T::try_from(n).map_err(|_| invalid(part, value, expected))
}

fn parse_list<T: TryFrom<i64> + PartialEq>(
    part: &'static str,
    value: &str,
    min: i64,
    max: i64,
    negative: bool,
    expected: &'static str,
) -> Result<Vec<T>, RRuleError> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim) {
        let digits = item.strip_prefix('+').unwrap_or(item);
        let n: i64 = digits.parse().map_err(|_| invalid(part, value, expected))?;
        let ok = (min..=max).contains(&n) || (negative && (-max..=-min).contains(&n));
        if !ok {
            return Err(invalid(part, value, expected));
        }
        let v = T::try_from(n).map_err(|_| invalid(part, value, expected))?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

fn parse_weekday(s: &str) -> Option<civil::Weekday> {
    use civil::Weekday::{Friday, Monday, Saturday, Sunday, Thursday, Tuesday, Wednesday};
    Some(match s.to_ascii_uppercase().as_str() {
        "MO" => Monday,
        "TU" => Tuesday,
        "WE" => Wednesday,
        "TH" => Thursday,
        "FR" => Friday,
        "SA" => Saturday,
        "SU" => Sunday,
        _ => return None,
    })
}

fn weekday_code(w: civil::Weekday) -> &'static str {
    ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
        [usize::from(w.to_monday_zero_offset().unsigned_abs())]
}

fn format_weekday_num(d: WeekdayNum) -> String {
    match d.ordinal {
        Some(n) => format!("{n}{}", weekday_code(d.weekday)),
        None => weekday_code(d.weekday).to_owned(),
    }
}

fn parse_by_day(value: &str) -> Result<Vec<WeekdayNum>, RRuleError> {
    const EXPECTED: &str = "weekdays like SA, 1SA or -1FR (ordinals 1..53 or -53..-1)";
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim) {
        if item.len() < 2 || !item.is_ascii() {
            return Err(invalid("BYDAY", value, EXPECTED));
        }
        let (num, day) = item.split_at(item.len() - 2);
        let weekday = parse_weekday(day).ok_or_else(|| invalid("BYDAY", value, EXPECTED))?;
        let ordinal = if num.is_empty() {
            None
        } else {
            let digits = num.strip_prefix('+').unwrap_or(num);
            let n: i8 = digits
                .parse()
                .map_err(|_| invalid("BYDAY", value, EXPECTED))?;
            if n == 0 || n.unsigned_abs() > 53 {
                return Err(invalid("BYDAY", value, EXPECTED));
            }
            Some(n)
        };
        let d = WeekdayNum { ordinal, weekday };
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

fn parse_until(value: &str) -> Result<Until, RRuleError> {
    const EXPECTED: &str = "YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ";
    let bad = || invalid("UNTIL", value, EXPECTED);
    let b = value.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i16, RRuleError> {
        let s = value.get(r).ok_or_else(bad)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    if b.len() < 8 {
        return Err(bad());
    }
    let date = civil::Date::new(
        num(0..4)?,
        i8::try_from(num(4..6)?).map_err(|_| bad())?,
        i8::try_from(num(6..8)?).map_err(|_| bad())?,
    )
    .map_err(|_| bad())?;
    if b.len() == 8 {
        return Ok(Until::Floating(date.to_datetime(civil::Time::midnight())));
    }
    if !(b.len() == 15 || b.len() == 16) || !b[8].eq_ignore_ascii_case(&b'T') {
        return Err(bad());
    }
    let small = |r| -> Result<i8, RRuleError> { i8::try_from(num(r)?).map_err(|_| bad()) };
    let time =
        civil::Time::new(small(9..11)?, small(11..13)?, small(13..15)?, 0).map_err(|_| bad())?;
    let dt = date.to_datetime(time);
    if b.len() == 16 {
        if !b[15].eq_ignore_ascii_case(&b'Z') {
            return Err(bad());
        }
        // Past the last instant jiff represents (late 9999-12-30): no occurrence can be
        // after it, so it bounds nothing; keep it as that last instant.
        let ts = jiff::tz::TimeZone::UTC
            .to_timestamp(dt)
            .unwrap_or(Timestamp::MAX);
        return Ok(Until::Utc(ts));
    }
    Ok(Until::Floating(dt))
}

impl fmt::Display for RRule {
    /// The canonical form: upper case, parts in a fixed order, defaults omitted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, name: &str, v: &[T]) -> fmt::Result {
            if v.is_empty() {
                return Ok(());
            }
            write!(f, ";{name}=")?;
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{x}")?;
            }
            Ok(())
        }
        write!(f, "FREQ={}", self.freq.as_str())?;
        if self.interval != 1 {
            write!(f, ";INTERVAL={}", self.interval)?;
        }
        if let Some(c) = self.count {
            write!(f, ";COUNT={c}")?;
        }
        match self.until {
            Some(Until::Utc(ts)) => write!(f, ";UNTIL={}", ts.strftime("%Y%m%dT%H%M%SZ"))?,
            Some(Until::Floating(dt)) => write!(f, ";UNTIL={}", dt.strftime("%Y%m%dT%H%M%S"))?,
            None => {}
        }
        if self.wkst != civil::Weekday::Monday {
            write!(f, ";WKST={}", weekday_code(self.wkst))?;
        }
        list(f, "BYMONTH", &self.by_month)?;
        list(f, "BYMONTHDAY", &self.by_monthday)?;
        list(f, "BYYEARDAY", &self.by_yearday)?;
        let days: Vec<String> = self.by_day.iter().map(|d| format_weekday_num(*d)).collect();
        list(f, "BYDAY", &days)?;
        list(f, "BYSETPOS", &self.by_setpos)
    }
}
