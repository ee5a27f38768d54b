//! Scheduled upgrades as `kubectl gs update cluster --scheduled-time` writes them: two
//! annotations on the Cluster, honoured as a one-cluster ClusterUpgrade.
//!
//! Why it is shaped this way:
//! - The annotations are Giant Swarm's (`k8smetadata`): `alpha.giantswarm.io/update-schedule-target-release`
//!   holds the release (`15.2.1`) and `…-target-time` the time in Go's `time.RFC822` layout
//!   (`02 Jan 06 15:04 MST`) in UTC (`15 Sep 21 08:00 UTC`). kubectl-gs reads
//!   `--scheduled-time 'YYYY-MM-DD HH:MM'` as UTC and writes `t.Format(time.RFC822)`;
//!   Giant Swarm's upgrade-schedule-operator read it back with `time.Parse(time.RFC822, …)`.
//!   [`parse_time`] accepts what that `time.Parse` accepts and a person would write by hand —
//!   a month in any case, a one-digit hour, runs of blanks between fields, `UTC` or `GMT` —
//!   and rejects, with the column and a hint, what it rejects (a one-digit day, a four-digit
//!   year, seconds, trailing text, an impossible date). One deliberate difference: Go reads any
//!   other zone abbreviation (`CET`, `+0100`) as a zero offset on a UTC machine, i.e. silently
//!   as UTC; here that is an error, because the person meant another time.
//! - The conversion is a [`ClusterUpgrade`] (named [`upgrade_name`], labelled
//!   [`SCHEDULED_LABEL`]) with `targetVersion` from the release annotation and `startTime` from
//!   the time annotation, built from JSON so it stays the shape the CRD has. The controller
//!   creates it; the CLI adds it to a repository's campaigns. Both then go through the one
//!   conversion (`cluster_upgrade::inputs`): the cluster's freeze, the governing
//!   MaintenanceSchedule of its namespace (by `clusterSelector`) and its exclusions apply as to
//!   any ClusterUpgrade. `announce.before: 15m` keeps the old operator's announcement 15
//!   minutes before the start.

use jiff::civil::{Date, DateTime, Time};
use jiff::{Timestamp, tz::TimeZone};
use serde_json::json;
use upkeep_core::version::Version;

use crate::{ClusterObject, ClusterUpgrade};

/// Annotation: the release a scheduled upgrade moves the cluster to (`15.2.1`).
pub const TARGET_RELEASE: &str = "alpha.giantswarm.io/update-schedule-target-release";
/// Annotation: when it starts, RFC 822 in UTC (`15 Sep 21 08:00 UTC`).
pub const TARGET_TIME: &str = "alpha.giantswarm.io/update-schedule-target-time";
/// Label on the ClusterUpgrade made from a cluster's annotations; its value is the cluster.
pub const SCHEDULED_LABEL: &str = "upkeep.dev/scheduled-upgrade";
/// How long before the start the upgrade is announced (the old operator's 15 minutes).
pub const ANNOUNCE_BEFORE: &str = "15m";

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Why a time annotation cannot be read: where (1-based column, in characters) and how to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {reason}")]
pub struct TimeError {
    pub column: usize,
    pub reason: String,
    pub hint: String,
}

/// Why a time cannot be written in the annotation's layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// RFC 822 times hold whole minutes.
    #[error("{0} is not a whole minute (the annotation holds no seconds)")]
    NotWholeMinute(Timestamp),
    /// The two-digit year reads back as 1969–2068 only.
    #[error("{0} is outside 1969–2068, which a two-digit year reads back as")]
    OutOfRange(Timestamp),
}

struct Cursor<'a> {
    chars: Vec<(usize, char)>,
    at: usize,
    text: &'a str,
}

impl Cursor<'_> {
    fn column(&self) -> usize {
        self.at + 1
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).map(|(_, c)| *c)
    }

    fn fail(&self, reason: impl Into<String>, hint: impl Into<String>) -> TimeError {
        TimeError {
            column: self.column(),
            reason: reason.into(),
            hint: hint.into(),
        }
    }

    /// Up to `max` ASCII digits (at least `min`), as a number.
    fn digits(&mut self, min: usize, max: usize) -> Option<(u32, usize)> {
        let start = self.at;
        let mut n = 0u32;
        while self.at - start < max
            && let Some(d) = self.peek().and_then(|c| c.to_digit(10))
        {
            n = n * 10 + d;
            self.at += 1;
        }
        let count = self.at - start;
        if count < min {
            self.at = start;
            return None;
        }
        Some((n, count))
    }

    /// One or more blanks (Go: a blank in the layout matches a run of blanks).
    fn blanks(&mut self, after: &str) -> Result<(), TimeError> {
        if self.peek() != Some(' ') {
            return Err(self.fail(format!("expected a blank after the {after}"), LAYOUT_HINT));
        }
        while self.peek() == Some(' ') {
            self.at += 1;
        }
        Ok(())
    }

    fn rest(&self) -> &str {
        self.chars
            .get(self.at)
            .map_or("", |(byte, _)| &self.text[*byte..])
    }
}

const LAYOUT_HINT: &str = "write DD Mon YY HH:MM UTC, e.g. \"15 Sep 21 08:00 UTC\" (what `kubectl gs update cluster --scheduled-time` writes)";

/// Reads a time annotation (see the module docs for what is accepted).
pub fn parse_time(value: &str) -> Result<Timestamp, TimeError> {
    let mut c = Cursor {
        chars: value.char_indices().collect(),
        at: 0,
        text: value,
    };
    let day = match c.digits(2, 2) {
        Some((d, _)) => d,
        None if c.digits(1, 1).is_some() => {
            c.at = 0;
            return Err(c.fail(
                "the day needs two digits",
                "write 05 Sep 21, not 5 Sep 21 (RFC 822 as Go reads it)",
            ));
        }
        None => return Err(c.fail("expected the day (two digits)", LAYOUT_HINT)),
    };
    c.blanks("day")?;
    let word: String = c.chars[c.at..].iter().take(3).map(|(_, ch)| *ch).collect();
    let Some(month) = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(&word)) else {
        return Err(c.fail(
            format!("expected a month, found {word:?}"),
            "months are Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
        ));
    };
    c.at += 3;
    if c.peek().is_some_and(char::is_alphabetic) {
        return Err(c.fail(
            "the month has three letters",
            format!("write {}, not a longer name", MONTHS[month]),
        ));
    }
    c.blanks("month")?;
    let Some((yy, _)) = c.digits(2, 2) else {
        return Err(c.fail("expected the year (two digits)", LAYOUT_HINT));
    };
    if c.peek().is_some_and(|ch| ch.is_ascii_digit()) {
        c.at -= 2;
        let written: String = c.rest().chars().take_while(char::is_ascii_digit).collect();
        let short = written
            .get(written.len().saturating_sub(2)..)
            .unwrap_or("06");
        return Err(c.fail(
            "the year has two digits",
            format!(
                "write {short}, not {written} (RFC 822 as Go reads it; kubectl gs --scheduled-time takes YYYY-MM-DD HH:MM)"
            ),
        ));
    }
    // Go: two-digit years 69–99 are 1969–1999, 00–68 are 2000–2068.
    let year = if yy >= 69 { 1900 + yy } else { 2000 + yy };
    c.blanks("year")?;
    let hour_at = c.at;
    let Some((hour, _)) = c.digits(1, 2) else {
        return Err(c.fail("expected the hour", LAYOUT_HINT));
    };
    if hour > 23 {
        c.at = hour_at;
        return Err(c.fail(format!("hour {hour} is out of range"), "hours are 0–23"));
    }
    if c.peek() != Some(':') {
        return Err(c.fail("expected ':' after the hour", LAYOUT_HINT));
    }
    c.at += 1;
    let minute_at = c.at;
    let Some((minute, _)) = c.digits(2, 2) else {
        return Err(c.fail("expected the minutes (two digits)", LAYOUT_HINT));
    };
    if minute > 59 {
        c.at = minute_at;
        return Err(c.fail(
            format!("minute {minute} is out of range"),
            "minutes are 00–59",
        ));
    }
    if c.peek() == Some(':') {
        return Err(c.fail("RFC 822 times have no seconds", "write HH:MM, e.g. 08:00"));
    }
    c.blanks("time")?;
    let zone_at = c.at;
    let zone: String = c
        .rest()
        .chars()
        .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '+' || *ch == '-')
        .collect();
    if zone.is_empty() {
        return Err(c.fail("expected the time zone UTC", LAYOUT_HINT));
    }
    if zone != "UTC" && zone != "GMT" {
        return Err(c.fail(
            format!("time zone {zone:?} is not UTC"),
            "the scheduled time is in UTC: convert it and write UTC, e.g. \"15 Sep 21 08:00 UTC\"",
        ));
    }
    c.at = zone_at + zone.chars().count();
    if c.at < c.chars.len() {
        return Err(c.fail(
            format!("unexpected text {:?} after the time zone", c.rest()),
            "nothing follows the time zone (no trailing blanks either)",
        ));
    }
    let date = i16::try_from(year)
        .ok()
        .and_then(|y| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
            Date::new(y, (month + 1) as i8, day as i8).ok()
        })
        .ok_or_else(|| TimeError {
            column: 1,
            reason: format!("{} {} {year} is not a date", day, MONTHS[month]),
            hint: "give a day that exists in that month".to_owned(),
        })?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    let time = Time::new(hour as i8, minute as i8, 0, 0).map_err(|e| TimeError {
        column: hour_at + 1,
        reason: e.to_string(),
        hint: LAYOUT_HINT.to_owned(),
    })?;
    DateTime::from_parts(date, time)
        .to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| TimeError {
            column: 1,
            reason: e.to_string(),
            hint: LAYOUT_HINT.to_owned(),
        })
}

/// Writes `t` as kubectl-gs does (`t.Format(time.RFC822)` of a UTC time).
pub fn format_time(t: Timestamp) -> Result<String, FormatError> {
    let dt = t.to_zoned(TimeZone::UTC).datetime();
    if dt.second() != 0 || dt.subsec_nanosecond() != 0 {
        return Err(FormatError::NotWholeMinute(t));
    }
    if !(1969..=2068).contains(&dt.year()) {
        return Err(FormatError::OutOfRange(t));
    }
    let month = MONTHS[usize::try_from(dt.month() - 1).unwrap_or(0)];
    Ok(format!(
        "{:02} {month} {:02} {:02}:{:02} UTC",
        dt.day(),
        dt.year() % 100,
        dt.hour(),
        dt.minute()
    ))
}

/// A cluster's scheduled upgrade, read from its annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// The release annotation as written (trimmed).
    pub target: String,
    pub at: Timestamp,
}

/// Why a cluster's scheduled-upgrade annotations cannot be used (variant names are stable
/// Event reasons and metric labels).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduledError {
    /// One of the two annotations without the other.
    #[error("annotation {present} is set but {missing} is not")]
    Incomplete {
        present: &'static str,
        missing: &'static str,
    },
    #[error("annotation {TARGET_TIME}: {value:?}: {error}")]
    InvalidTime { value: String, error: TimeError },
    #[error("annotation {TARGET_RELEASE}: {value:?} is not a release version")]
    InvalidRelease { value: String },
}

impl ScheduledError {
    /// The variant name.
    pub fn name(&self) -> &'static str {
        match self {
            ScheduledError::Incomplete { .. } => "Incomplete",
            ScheduledError::InvalidTime { .. } => "InvalidTime",
            ScheduledError::InvalidRelease { .. } => "InvalidRelease",
        }
    }

    /// The annotation at fault.
    pub fn annotation(&self) -> &'static str {
        match self {
            ScheduledError::Incomplete { missing, .. } => missing,
            ScheduledError::InvalidTime { .. } => TARGET_TIME,
            ScheduledError::InvalidRelease { .. } => TARGET_RELEASE,
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> String {
        match self {
            ScheduledError::Incomplete { missing, .. } => format!(
                "set {missing} too (kubectl gs update cluster --release-version V --scheduled-time T writes both), or remove both to cancel"
            ),
            ScheduledError::InvalidTime { error, .. } => error.hint.clone(),
            ScheduledError::InvalidRelease { .. } => {
                "the release version only, e.g. 15.2.1".to_owned()
            }
        }
    }
}

impl ClusterObject {
    /// The scheduled upgrade the annotations ask for: `None` when neither is set.
    pub fn scheduled(&self) -> Option<Result<Scheduled, ScheduledError>> {
        let release = self.annotations.get(TARGET_RELEASE);
        let time = self.annotations.get(TARGET_TIME);
        match (release, time) {
            (None, None) => None,
            (Some(_), None) => Some(Err(ScheduledError::Incomplete {
                present: TARGET_RELEASE,
                missing: TARGET_TIME,
            })),
            (None, Some(_)) => Some(Err(ScheduledError::Incomplete {
                present: TARGET_TIME,
                missing: TARGET_RELEASE,
            })),
            (Some(release), Some(time)) => Some(read(release, time)),
        }
    }
}

fn read(release: &str, time: &str) -> Result<Scheduled, ScheduledError> {
    let target = release.trim();
    if Version::parse(target).is_none() {
        return Err(ScheduledError::InvalidRelease {
            value: release.to_owned(),
        });
    }
    let at = parse_time(time).map_err(|error| ScheduledError::InvalidTime {
        value: time.to_owned(),
        error,
    })?;
    Ok(Scheduled {
        target: target.to_owned(),
        at,
    })
}

/// The name of the ClusterUpgrade made from `cluster`'s annotations.
pub fn upgrade_name(cluster: &str) -> String {
    format!("scheduled-{cluster}")
}

/// The one-cluster ClusterUpgrade the annotations ask for (namespace of the cluster, no owner:
/// the controller adds the owner reference).
pub fn upgrade_for(cluster: &ClusterObject, scheduled: &Scheduled) -> ClusterUpgrade {
    let namespace = cluster
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    // Built from JSON: the spec's shape is the CRD's, whatever optional fields it grows.
    let value = json!({
        "apiVersion": crate::API_VERSION,
        "kind": "ClusterUpgrade",
        "metadata": {
            "name": upgrade_name(&cluster.name),
            "namespace": namespace,
            "labels": {SCHEDULED_LABEL: cluster.name},
        },
        "spec": {
            "matchers": [{"name": "cluster", "value": cluster.name}],
            "targetVersion": scheduled.target,
            "startTime": scheduled.at.to_string(),
            "announce": {"before": ANNOUNCE_BEFORE},
        },
    });
    // The value above is a ClusterUpgrade by construction.
    serde_json::from_value(value)
        .unwrap_or_else(|_| unreachable!("a scheduled ClusterUpgrade always deserialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn times_kubectl_gs_writes_and_people_type() {
        let cases = [
            (
                "15 Sep 21 08:00 UTC",
                "2021-09-15T08:00:00Z",
                "the annotation as documented",
            ),
            (
                "01 Jan 22 01:00 UTC",
                "2022-01-01T01:00:00Z",
                "kubectl-gs' own test: --scheduled-time '2022-01-01 01:00'",
            ),
            (
                "30 Jan 21 15:04 UTC",
                "2021-01-30T15:04:00Z",
                "k8smetadata's example",
            ),
            (
                "05 Sep 21 08:00 UTC",
                "2021-09-05T08:00:00Z",
                "upgrade-schedule-operator README",
            ),
            (
                "15 sep 21 08:00 UTC",
                "2021-09-15T08:00:00Z",
                "Go matches month names in any case",
            ),
            (
                "15 SEP 21 08:00 UTC",
                "2021-09-15T08:00:00Z",
                "upper case month",
            ),
            (
                "15 Sep 21 8:00 UTC",
                "2021-09-15T08:00:00Z",
                "Go reads a one-digit hour",
            ),
            (
                "15  Sep   21 08:00  UTC",
                "2021-09-15T08:00:00Z",
                "a blank in Go's layout matches a run of blanks",
            ),
            ("15 Sep 21 08:00 GMT", "2021-09-15T08:00:00Z", "GMT is UTC"),
            ("29 Feb 24 23:59 UTC", "2024-02-29T23:59:00Z", "a leap day"),
            (
                "01 Jan 69 00:00 UTC",
                "1969-01-01T00:00:00Z",
                "69 is 1969 (Go)",
            ),
            (
                "31 Dec 68 00:00 UTC",
                "2068-12-31T00:00:00Z",
                "68 is 2068 (Go)",
            ),
        ];
        for (value, want, why) in cases {
            assert_eq!(parse_time(value), Ok(ts(want)), "{why}: {value:?}");
        }
    }

    #[test]
    fn times_that_are_refused_where_and_why() {
        let cases = [
            (
                "5 Sep 21 08:00 UTC",
                1,
                "two digits",
                "Go's 02 needs two digits",
            ),
            (
                "15 Sept 21 08:00 UTC",
                7,
                "three letters",
                "a longer month name",
            ),
            (
                "15 Set 21 08:00 UTC",
                4,
                "expected a month",
                "no such month",
            ),
            (
                "15 Sep 2021 08:00 UTC",
                8,
                "two digits",
                "a four-digit year",
            ),
            ("15 Sep 21 24:00 UTC", 11, "out of range", "hour 24"),
            ("15 Sep 21 08:60 UTC", 14, "out of range", "minute 60"),
            ("15 Sep 21 08:00:00 UTC", 16, "no seconds", "seconds"),
            ("15 Sep 21 8.00 UTC", 12, "':'", "a dot for a colon"),
            (
                "15 Sep 21 08:00 CET",
                17,
                "not UTC",
                "another zone: Go would read it as UTC silently",
            ),
            (
                "15 Sep 21 08:00 +0100",
                17,
                "not UTC",
                "a numeric offset: Go ignores it",
            ),
            (
                "15 Sep 21 08:00 utc",
                17,
                "not UTC",
                "Go wants UTC in capitals",
            ),
            (
                "15 Sep 21 08:00 Z",
                17,
                "not UTC",
                "Z is not RFC 822 as Go reads it",
            ),
            ("15 Sep 21 08:00", 16, "expected a blank", "no zone"),
            (
                "15 Sep 21 08:00 UTC ",
                20,
                "unexpected text",
                "a trailing blank (Go: extra text)",
            ),
            (" 15 Sep 21 08:00 UTC", 1, "the day", "a leading blank"),
            ("31 Feb 21 08:00 UTC", 1, "not a date", "no 31 February"),
            (
                "29 Feb 21 08:00 UTC",
                1,
                "not a date",
                "2021 is no leap year",
            ),
            ("00 Feb 21 08:00 UTC", 1, "not a date", "day 0"),
            (
                "2021-09-15T08:00:00Z",
                3,
                "expected a blank",
                "RFC 3339 is not the annotation's layout",
            ),
            ("", 1, "the day", "empty"),
            (
                "15 Sep 21 08:00 UTC\u{e9}",
                20,
                "unexpected text",
                "columns count characters",
            ),
        ];
        for (value, column, reason, why) in cases {
            let e = parse_time(value).expect_err(why);
            assert_eq!(e.column, column, "{why}: {value:?}: {e}");
            assert!(e.reason.contains(reason), "{why}: {value:?}: {e}");
            assert!(!e.hint.is_empty(), "{why}: a hint");
        }
    }

    #[test]
    fn writing_as_kubectl_gs_does() {
        let cases = [
            (
                "2022-01-01T01:00:00Z",
                Ok("01 Jan 22 01:00 UTC"),
                "kubectl-gs' own test input",
            ),
            (
                "2021-09-15T08:00:00Z",
                Ok("15 Sep 21 08:00 UTC"),
                "the documented example",
            ),
            (
                "2026-12-05T09:30:00+01:00",
                Ok("05 Dec 26 08:30 UTC"),
                "written in UTC",
            ),
            (
                "2021-09-15T08:00:30Z",
                Err("whole minute"),
                "seconds cannot be written",
            ),
            (
                "2069-01-01T00:00:00Z",
                Err("1969–2068"),
                "would read back as 1969",
            ),
        ];
        for (t, want, why) in cases {
            let got = format_time(ts(t)).map_err(|e| e.to_string());
            match want {
                Ok(s) => {
                    assert_eq!(got.as_deref(), Ok(s), "{why}");
                    assert_eq!(parse_time(s), Ok(ts(t)), "{why}: reads back");
                }
                Err(part) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(part)),
                    "{why}: {got:?}"
                ),
            }
        }
    }

    fn cluster(annotations: &[(&str, &str)]) -> ClusterObject {
        ClusterObject {
            name: "abcd1".into(),
            namespace: Some("org-acme".into()),
            annotations: annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..ClusterObject::default()
        }
    }

    #[test]
    fn annotations_to_a_scheduled_upgrade() {
        let good = "15 Sep 21 08:00 UTC";
        let cases = [
            (vec![], None, "no annotation: nothing scheduled"),
            (
                vec![(TARGET_RELEASE, " 15.2.1 "), (TARGET_TIME, good)],
                Some(Ok("15.2.1")),
                "both: the release trimmed",
            ),
            (
                vec![(TARGET_RELEASE, "15.2.1")],
                Some(Err("Incomplete")),
                "release only",
            ),
            (
                vec![(TARGET_TIME, good)],
                Some(Err("Incomplete")),
                "time only",
            ),
            (
                vec![(TARGET_RELEASE, "latest"), (TARGET_TIME, good)],
                Some(Err("InvalidRelease")),
                "not a version",
            ),
            (
                vec![(TARGET_RELEASE, "15.2.1"), (TARGET_TIME, "tomorrow")],
                Some(Err("InvalidTime")),
                "not a time",
            ),
        ];
        for (annotations, want, why) in cases {
            let got = cluster(&annotations).scheduled();
            let got = got.map(|r| r.map(|s| s.target).map_err(|e| e.name()));
            assert_eq!(got, want.map(|r| r.map(ToOwned::to_owned)), "{why}");
        }
    }

    #[test]
    fn the_one_cluster_upgrade() {
        let c = cluster(&[
            (TARGET_RELEASE, "15.2.1"),
            (TARGET_TIME, "15 Sep 21 08:00 UTC"),
        ]);
        let s = c.scheduled().expect("set").expect("valid");
        let u = upgrade_for(&c, &s);
        u.validate().expect("a valid ClusterUpgrade");
        assert_eq!(u.metadata.name.as_deref(), Some("scheduled-abcd1"));
        assert_eq!(u.metadata.namespace.as_deref(), Some("org-acme"));
        assert_eq!(
            u.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SCHEDULED_LABEL))
                .map(String::as_str),
            Some("abcd1")
        );
        let campaign = u.to_campaign(None, |_| None).expect("a campaign");
        assert_eq!(campaign.target, Version::parse("15.2.1"));
        assert_eq!(campaign.start_time, Some(ts("2021-09-15T08:00:00Z")));
        let only = |name: &str| {
            campaign
                .matchers
                .matches(upkeep_core::selector::ClusterLabels {
                    name,
                    labels: &std::collections::BTreeMap::new(),
                })
        };
        assert!(
            only("abcd1") && !only("abcd10") && !only("xabcd1"),
            "exactly the cluster"
        );
    }
}
