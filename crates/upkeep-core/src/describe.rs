//! Words for times and schedule verdicts, shared by every shell (CLI tables, pull-request
//! bodies, controller status messages), so the same decision reads the same everywhere.
//! Pure: the time zone and `now` are parameters.

use jiff::{Timestamp, Zoned, tz::TimeZone};

use crate::schedule::{ClosedReason, ExclusionScope};

/// `Tue 2026-11-24 22:00 CET` in `tz`.
pub fn local(ts: Timestamp, tz: &TimeZone) -> String {
    let z: Zoned = ts.to_zoned(tz.clone());
    z.strftime("%a %Y-%m-%d %H:%M %Z").to_string()
}

/// `2026-11-24 21:00Z`.
pub fn utc(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%d %H:%MZ").to_string()
}

/// A short human duration, `4h`, `2d 3h`, `45m`; under a minute in seconds (`30s`), so a short
/// timeout never reads as `0m`.
pub fn span(from: Timestamp, to: Timestamp) -> String {
    let secs = to.as_second() - from.as_second();
    if secs < 0 {
        return format!("-{}", span(to, from));
    }
    let (d, h, m) = (secs / 86_400, (secs % 86_400) / 3_600, (secs % 3_600) / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// "in 3d 4h" / "2h ago" relative to `now`.
pub fn relative(ts: Timestamp, now: Timestamp) -> String {
    if ts >= now {
        format!("in {}", span(now, ts))
    } else {
        format!("{} ago", span(ts, now))
    }
}

/// The name of an exclusion scope as the manifests spell it.
pub fn scope_word(scope: ExclusionScope) -> &'static str {
    match scope {
        ExclusionScope::NoUpgrades => "NoUpgrades",
        ExclusionScope::NoMinorUpgrades => "NoMinorUpgrades",
        ExclusionScope::NoMajorUpgrades => "NoMajorUpgrades",
    }
}

/// One line saying why an upgrade may not start, e.g.
/// `excluded by holidays (NoMinorUpgrades) until …`.
pub fn closed_reason(reason: &ClosedReason, tz: &TimeZone) -> String {
    match reason {
        ClosedReason::OutsideWindows => "outside every maintenance window".to_owned(),
        // An exclusion whose end lies past the last representable instant never ends.
        ClosedReason::Excluded { name, scope, until } if *until == Timestamp::MAX => {
            format!("excluded by {name} ({}) with no end", scope_word(*scope))
        }
        ClosedReason::Excluded { name, scope, until } => format!(
            "excluded by {name} ({}) until {}",
            scope_word(*scope),
            local(*until, tz)
        ),
        ClosedReason::Frozen { until, reason } if *until == Timestamp::MAX => match reason {
            Some(r) => format!("frozen with no end ({r})"),
            None => "frozen with no end".to_owned(),
        },
        ClosedReason::Frozen { until, reason } => match reason {
            Some(r) => format!("frozen until {} ({r})", local(*until, tz)),
            None => format!("frozen until {}", local(*until, tz)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_reasons_table() {
        let tz = TimeZone::UTC;
        let excluded = |until| ClosedReason::Excluded {
            name: "x".to_owned(),
            scope: ExclusionScope::NoUpgrades,
            until,
        };
        // (reason, text, why)
        let cases = [
            (
                excluded("2026-01-01T00:00:00Z".parse().unwrap()),
                "excluded by x (NoUpgrades) until Thu 2026-01-01 00:00 UTC",
                "an exclusion that ends",
            ),
            (
                excluded(Timestamp::MAX),
                "excluded by x (NoUpgrades) with no end",
                "an exclusion lasting past the last instant (9999) never ends",
            ),
            (
                ClosedReason::Frozen {
                    until: Timestamp::MAX,
                    reason: Some("for good".to_owned()),
                },
                "frozen with no end (for good)",
                "a freeze until past the last instant never ends",
            ),
        ];
        for (reason, text, why) in cases {
            assert_eq!(closed_reason(&reason, &tz), text, "{why}");
        }
    }

    #[test]
    fn spans_table() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let cases: &[(i64, &str, &str)] = &[
            (45 * 60, "45m", "minutes only"),
            (2, "2s", "under a minute: seconds, not 0m (a short timeout)"),
            (0, "0s", "nothing"),
            (4 * 3600, "4h", "whole hours"),
            (4 * 3600 + 30 * 60, "4h 30m", "hours and minutes"),
            (2 * 86_400, "2d", "whole days"),
            (2 * 86_400 + 3 * 3600 + 59, "2d 3h", "days drop minutes"),
        ];
        for (secs, want, reason) in cases {
            let t1 = Timestamp::from_second(t0.as_second() + secs).unwrap();
            assert_eq!(span(t0, t1), *want, "{reason}");
        }
    }
}
