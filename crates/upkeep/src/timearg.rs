//! Times given on the command line (`--at`, `--from`).
//!
//! `now`, an RFC 3339 instant (`2026-12-24T18:00:00Z`, `…+01:00`), or a wall-clock time without
//! an offset (`2026-12-24T18:00`, `2026-12-24`) read in the time zone of the schedule at hand,
//! as the schedule's own `startTime`s are.

use jiff::{Timestamp, civil, tz::TimeZone};
use std::time::Duration;

pub(crate) fn parse(s: &str, tz: &TimeZone) -> Result<Timestamp, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("now") {
        return Ok(Timestamp::now());
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Ok(ts);
    }
    let out_of_range = || {
        format!(
            "{s:?} is outside the supported range: times go from {} to {}",
            Timestamp::MIN,
            Timestamp::MAX
                .checked_sub(jiff::SignedDuration::from_nanos(999_999_999))
                .unwrap_or(Timestamp::MAX),
        )
    };
    let civil = |s: &str| {
        s.parse::<civil::DateTime>().or_else(|_| {
            s.parse::<civil::Date>()
                .map(|d| d.to_datetime(civil::Time::midnight()))
        })
    };
    match civil(s) {
        // `compatible` resolves every wall-clock time (gaps move forward), so a failure here
        // can only be the range.
        Ok(dt) => tz
            .to_ambiguous_timestamp(dt)
            .compatible()
            .map_err(|_| out_of_range()),
        // A well-formed instant that did not parse as a Timestamp is out of range.
        Err(_) if civil(strip_offset(s)).is_ok() => Err(out_of_range()),
        Err(_) => Err(format!(
            "{s:?} is not a time: use `now`, RFC 3339 (`2026-12-24T18:00:00Z`) or a local time (`2026-12-24T18:00`)"
        )),
    }
}

/// `s` without a trailing `Z` or `±HH:MM` offset (unchanged when it has none).
fn strip_offset(s: &str) -> &str {
    if let Some(rest) = s.strip_suffix(['Z', 'z']) {
        return rest;
    }
    let b = s.as_bytes();
    if b.len() > 6 && matches!(b[b.len() - 6], b'+' | b'-') && b[b.len() - 3] == b':' {
        return &s[..s.len() - 6];
    }
    s
}

/// A `--lock-timeout` value (`30s`, `2m`, …).
pub(crate) fn parse_wait(s: &str) -> Result<Duration, String> {
    let d = upkeep_api::duration::parse_duration(s).map_err(|e| e.to_string())?;
    Duration::try_from(d).map_err(|_| "must not be negative".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_table() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let cases: &[(&str, Option<&str>, &str)] = &[
            (
                "2026-12-24T18:00:00Z",
                Some("2026-12-24T18:00:00Z"),
                "an instant in UTC",
            ),
            (
                "2026-12-24T18:00:00+01:00",
                Some("2026-12-24T17:00:00Z"),
                "an instant with an offset",
            ),
            (
                "2026-12-24T18:00",
                Some("2026-12-24T17:00:00Z"),
                "wall clock in the schedule's zone (CET)",
            ),
            (
                "2026-07-01",
                Some("2026-06-30T22:00:00Z"),
                "a date is local midnight (CEST)",
            ),
            (
                "2026-03-29T02:30",
                Some("2026-03-29T01:30:00Z"),
                "a time in the spring gap moves forward",
            ),
            ("next tuesday", None, "prose is refused"),
            (
                "9999-12-30T22:00:00Z",
                Some("9999-12-30T22:00:00Z"),
                "the last whole second jiff represents",
            ),
        ];
        for (input, want, reason) in cases {
            let got = parse(input, &berlin);
            match want {
                Some(w) => assert_eq!(got.unwrap().to_string(), *w, "{reason}"),
                None => assert!(got.is_err(), "{reason}"),
            }
        }
    }

    #[test]
    fn out_of_range_times_say_so() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        // (input, reason)
        let cases = [
            ("9999-12-31", "a date past the last instant, as wall clock"),
            (
                "9999-12-30T23:30",
                "wall clock past the last instant in CET",
            ),
            ("9999-12-30T23:00Z", "an instant past the last one"),
            (
                "9999-12-31T00:00:00+01:00",
                "an instant with an offset past the last one",
            ),
        ];
        for (input, reason) in cases {
            let err = parse(input, &berlin).expect_err(reason);
            assert!(
                err.contains("outside the supported range") && err.contains("9999-12-30T22:00:00Z"),
                "{reason}: {err}"
            );
        }
        assert!(
            parse("2026-13-01T00:00Z", &berlin)
                .unwrap_err()
                .contains("is not a time"),
            "a malformed time is not called out of range"
        );
    }
}
