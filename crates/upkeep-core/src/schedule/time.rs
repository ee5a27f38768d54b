//! Parsing `startTime`/`endTime`/`until`: RFC 3339, with or without an offset.
//!
//! Hand-written rather than jiff's parser because jiff accepts far more (ISO 8601 week
//! dates, bracketed time zone annotations, …) and a schedule should mean one thing. The one
//! leniency: seconds may be left out (`22:00`), since people write that and it is
//! unambiguous. An instant after the last one jiff represents (9999-12-30T22:00Z) reads as
//! that last one, so `endTime: 9999-12-31T00:00:00Z` means "never ends", as the same time
//! without an offset does.

use jiff::{Timestamp, civil, tz::Offset};

use super::{ScheduleError, TimeSpec};

const EXPECTED: &str = "expected YYYY-MM-DDTHH:MM[:SS[.fraction]] with an optional Z or ±HH:MM";

fn err(s: &str, problem: &'static str) -> ScheduleError {
    ScheduleError::InvalidTime {
        field: None,
        text: s.to_owned(),
        problem,
    }
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i32> {
    let part = b.get(at..at + n)?;
    if !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        part.iter()
            .fold(0i32, |acc, c| acc * 10 + i32::from(c - b'0')),
    )
}

pub(super) fn parse(input: &str) -> Result<TimeSpec, ScheduleError> {
    let s = input;
    let bytes = s.trim().as_bytes();
    let bad = || err(s, EXPECTED);
    let year = digits(bytes, 0, 4).ok_or_else(bad)?;
    if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return Err(bad());
    }
    let month = digits(bytes, 5, 2).ok_or_else(bad)?;
    let day = digits(bytes, 8, 2).ok_or_else(bad)?;
    match bytes.get(10) {
        Some(b'T' | b't' | b' ') => {}
        None => {
            return Err(err(
                s,
                "a date alone is not a time; add the time of day, e.g. T22:00:00",
            ));
        }
        _ => return Err(bad()),
    }
    let hour = digits(bytes, 11, 2).ok_or_else(bad)?;
    if bytes.get(13) != Some(&b':') {
        return Err(bad());
    }
    let minute = digits(bytes, 14, 2).ok_or_else(bad)?;
    let mut i = 16;
    let mut second = 0;
    let mut nanos = 0i32;
    if bytes.get(i) == Some(&b':') {
        second = digits(bytes, i + 1, 2).ok_or_else(bad)?;
        i += 3;
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                if i - start < 9 {
                    nanos = nanos * 10 + i32::from(bytes[i] - b'0');
                }
                i += 1;
            }
            let n = i - start;
            if n == 0 {
                return Err(bad());
            }
            for _ in n..9 {
                nanos *= 10;
            }
        }
    }
    let small = |v: i32| i8::try_from(v).map_err(|_| err(s, "field out of range"));
    let date = civil::Date::new(
        i16::try_from(year).map_err(|_| bad())?,
        small(month)?,
        small(day)?,
    )
    .map_err(|_| err(s, "no such date"))?;
    if second == 60 {
        return Err(err(s, "leap seconds are not supported"));
    }
    let time = civil::Time::new(small(hour)?, small(minute)?, small(second)?, nanos)
        .map_err(|_| err(s, "no such time of day"))?;
    let dt = date.to_datetime(time);
    let rest = &bytes[i..];
    let offset_secs = match rest {
        [] => return Ok(TimeSpec::Civil(dt)),
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let h = digits(rest, 1, 2).ok_or_else(bad)?;
            let m = digits(rest, 4, 2).ok_or_else(bad)?;
            if h > 23 || m > 59 {
                return Err(err(s, "offset out of range"));
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return Err(bad()),
    };
    let offset = Offset::from_seconds(offset_secs).map_err(|_| err(s, "offset out of range"))?;
    // Years are 0000..=9999 here, so the only instants jiff cannot hold are at the very end
    // of 9999: they read as the last one (an end there means "never ends").
    let ts: Timestamp = offset.to_timestamp(dt).unwrap_or(Timestamp::MAX);
    Ok(TimeSpec::Absolute(ts))
}
