//! Times given on the command line (`--at`, `--from`).
//!
//! `now`, an RFC 3339 instant (`2026-12-24T18:00:00Z`, `…+01:00`), or a wall-clock time without
//! an offset (`2026-12-24T18:00`, `2026-12-24`) read in the time zone of the schedule at hand,
//! as the schedule's own `startTime`s are.

use jiff::{Timestamp, civil, tz::TimeZone};

pub(crate) fn parse(s: &str, tz: &TimeZone) -> Result<Timestamp, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("now") {
        return Ok(Timestamp::now());
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Ok(ts);
    }
    let civil = s.parse::<civil::DateTime>().or_else(|_| {
        s.parse::<civil::Date>()
            .map(|d| d.to_datetime(civil::Time::midnight()))
    });
    match civil {
        Ok(dt) => tz
            .to_ambiguous_timestamp(dt)
            .compatible()
            .map_err(|e| format!("{s:?} does not exist in this time zone: {e}")),
        Err(_) => Err(format!(
            "{s:?} is not a time: use `now`, RFC 3339 (`2026-12-24T18:00:00Z`) or a local time (`2026-12-24T18:00`)"
        )),
    }
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
        ];
        for (input, want, reason) in cases {
            let got = parse(input, &berlin);
            match want {
                Some(w) => assert_eq!(got.unwrap().to_string(), *w, "{reason}"),
                None => assert!(got.is_err(), "{reason}"),
            }
        }
    }
}
