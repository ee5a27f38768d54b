//! MaintenanceSchedule (a kind): `summary`, `activeWindow`, `activeExclusion`, `frozenUntil`
//! and `nextWindows` at `now`, and the exact time of the next change of any of them, so the
//! controller requeues at that boundary instead of polling.
//!
//! `summary` is what `kubectl get` shows (`always`, `open until 12:00`, `in 2d 4h`, `frozen
//! until …`, `none`): a printer column can only print a stored string (a `date` column shows a
//! future instant as `<invalid>`), so the text is written here and rewritten when its coarse
//! form changes — hourly while the next opening is an hour or more away, every minute in the
//! last hour, and at midnight (in the schedule's zone) when a date drops out of it. That is
//! a boundary like any other, so the number of writes stays small and known.
//!
//! No sentinel dates: the core reports the interval of an `alwaysAllowed` schedule as starting
//! at [`Timestamp::MIN`] (and chained windows at its look-back floor); such a start is not a
//! time anything happened, so `nextWindows[].start` is left out rather than clamped to
//! 0001-01-01.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use upkeep_api::MaintenanceSchedule;
use upkeep_api::maintenance_schedule::{MaintenanceScheduleStatus, NextWindow};
use upkeep_core::schedule::{ClosedReason, LOOKBACK_DAYS, Schedule, Verdict};
use upkeep_core::version::UpgradeKind;

use std::sync::Arc;

use kube::api::Api;
use kube::runtime::controller::Action;

use crate::framework::conditions::{Outcome, with_outcome};
use crate::framework::{Context, Error, lean_controller, until, write_status};

/// Reconciles one MaintenanceSchedule. Gather: nothing but the object. Decide:
/// [`desired_status`] at the context's `now`. Act: write the status when it differs, and
/// requeue at the next boundary.
pub async fn reconcile_schedule(
    object: Arc<MaintenanceSchedule>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let now = ctx.now();
    let (status, next) = desired_status(&object, now);
    write_status(
        ctx.client(),
        object.as_ref(),
        object.status.as_ref(),
        &status,
    )
    .await?;
    let recorded = object.status.as_ref().map(|s| s.conditions.as_slice());
    ctx.announce_stalled(
        object.as_ref(),
        recorded.unwrap_or_default(),
        &status.conditions,
    )
    .await;
    Ok(match next {
        Some(at) => Action::requeue(until(now, at)),
        None => Action::await_change(),
    })
}

/// Runs the MaintenanceSchedule controller until `shutdown` resolves.
pub async fn run_schedules(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = lean_controller(Api::<MaintenanceSchedule>::all(ctx.client()));
    crate::framework::run(
        controller,
        "MaintenanceSchedule",
        reconcile_schedule,
        ctx,
        shutdown,
    )
    .await;
}

/// How many upcoming intervals the status lists.
pub const NEXT_WINDOWS: usize = 3;

/// The status a MaintenanceSchedule should have at `now`, and when it next changes (`None`:
/// never, or the spec is invalid and only a change to it can help).
pub fn desired_status(
    object: &MaintenanceSchedule,
    now: Timestamp,
) -> (MaintenanceScheduleStatus, Option<Timestamp>) {
    let existing = object
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let generation = object.metadata.generation;
    let schedule = match object.to_core() {
        Ok(s) => s,
        Err(errors) => {
            let message = errors
                .iter()
                .map(|e| match &e.hint {
                    Some(h) => format!("{}: {} (hint: {h})", e.path, e.message),
                    None => format!("{}: {}", e.path, e.message),
                })
                .collect::<Vec<_>>()
                .join("; ");
            let status = MaintenanceScheduleStatus {
                summary: Some("invalid spec".to_owned()),
                conditions: with_outcome(
                    existing,
                    &Outcome::Stalled {
                        reason: "InvalidSpec".into(),
                        message,
                    },
                    generation,
                    now,
                ),
                ..MaintenanceScheduleStatus::default()
            };
            return (status, None);
        }
    };
    let (status, next) = open_status(&schedule, now);
    let message = match (&status.active_window, &status.active_exclusion) {
        (Some(w), None) => format!("window {w} is open"),
        (Some(w), Some(x)) => format!("window {w} is open; {x} holds some upgrades"),
        (None, Some(x)) => format!("closed: {x}"),
        (None, None) => "closed: outside every maintenance window".to_owned(),
    };
    let reason = if status.active_window.is_some() {
        "Open"
    } else {
        "Closed"
    };
    let status = MaintenanceScheduleStatus {
        conditions: with_outcome(
            existing,
            &Outcome::Ready {
                reason: reason.into(),
                message,
            },
            generation,
            now,
        ),
        ..status
    };
    (status, next)
}

/// The schedule's view at `now` (without conditions) and its next boundary.
fn open_status(
    schedule: &Schedule,
    now: Timestamp,
) -> (MaintenanceScheduleStatus, Option<Timestamp>) {
    let mut boundaries: Vec<Timestamp> = Vec::new();
    // Patches are the least restricted kind: a window is "active" when some upgrade may start.
    let patch = schedule.check(now, UpgradeKind::Patch);
    let active_window = match &patch {
        Verdict::Open { window, until } => {
            boundaries.extend(*until);
            Some(window.clone())
        }
        Verdict::Closed { next_open, .. } => {
            boundaries.extend(*next_open);
            None
        }
    };
    let frozen_until = match &patch {
        Verdict::Closed {
            reason: ClosedReason::Frozen { until, .. },
            ..
        } => Some(*until),
        _ => None,
    };
    let (summary, rewrite) = summary(&patch, schedule.time_zone(), now);
    boundaries.extend(rewrite);
    // Every exclusion applies to a major upgrade, so the major check names any active one.
    let active_exclusion = match schedule.check(now, UpgradeKind::Major) {
        Verdict::Open { until, .. } => {
            boundaries.extend(until);
            None
        }
        Verdict::Closed { reason, next_open } => {
            boundaries.extend(next_open);
            match reason {
                ClosedReason::OutsideWindows => None,
                ClosedReason::Excluded { name, until, .. } => {
                    boundaries.push(until);
                    Some(format!("exclusion {name}"))
                }
                ClosedReason::Frozen { until, reason } => {
                    boundaries.push(until);
                    Some(match reason {
                        Some(r) => format!("frozen ({r})"),
                        None => "frozen".to_owned(),
                    })
                }
            }
        }
    };
    let next_windows = next_windows(schedule, now, &mut boundaries);
    let next = boundaries.into_iter().filter(|t| *t > now).min();
    (
        MaintenanceScheduleStatus {
            summary: Some(summary),
            active_window,
            active_exclusion,
            frozen_until: frozen_until.map(Time),
            next_windows,
            conditions: Vec::new(),
        },
        next,
    )
}

/// `nextWindows` at `now`, their starts and ends pushed to `boundaries`.
///
/// The core starts an interval open for longer than it looks back at its look-back floor (or
/// at `Timestamp::MIN`): not a time anything happened, so no start is written.
fn next_windows(
    schedule: &Schedule,
    now: Timestamp,
    boundaries: &mut Vec<Timestamp>,
) -> Vec<NextWindow> {
    let floor = now
        .checked_sub(SignedDuration::from_hours(LOOKBACK_DAYS * 24))
        .unwrap_or(Timestamp::MIN);
    schedule
        .next_intervals(now, NEXT_WINDOWS, UpgradeKind::Patch)
        .into_iter()
        .map(|i| {
            boundaries.push(i.start);
            boundaries.extend(i.end);
            NextWindow {
                start: (i.start > floor).then_some(Time(i.start)),
                end: i.end.map(Time),
                window: (!i.windows.is_empty()).then(|| i.windows.join(", ")),
            }
        })
        .collect()
}

/// `status.summary` for the patch verdict at `now`, and when the text next changes by itself
/// (`None`: only at a boundary of the schedule, which the caller requeues at anyway).
///
/// Relative times are floored (`in 4h` is 4 to 5 hours away), so the text changes just after
/// `opening − 4h`: the requeue is one second after that instant.
fn summary(patch: &Verdict, tz: &TimeZone, now: Timestamp) -> (String, Option<Timestamp>) {
    match patch {
        Verdict::Open { until: None, .. } => ("always".to_owned(), None),
        Verdict::Open {
            until: Some(end), ..
        } => {
            let (at, rewrite) = clock(*end, tz, now);
            (format!("open until {at}"), rewrite)
        }
        Verdict::Closed {
            reason: ClosedReason::Frozen { until, .. },
            ..
        } => {
            let (at, rewrite) = clock(*until, tz, now);
            (format!("frozen until {at}"), rewrite)
        }
        Verdict::Closed {
            next_open: Some(start),
            ..
        } => {
            let (text, rewrite) = relative(start.duration_since(now));
            (
                format!("in {text}"),
                rewrite.and_then(|step| start.checked_sub(step).ok()),
            )
        }
        Verdict::Closed {
            next_open: None, ..
        } => ("none".to_owned(), None),
    }
}

/// `t` on the wall clock of `tz`: `12:00` when it is today there, `2026-12-01 12:00`
/// otherwise (seconds only when not zero), and, when a date is shown, the start of that day
/// in `tz` (from then on the date is dropped).
fn clock(t: Timestamp, tz: &TimeZone, now: Timestamp) -> (String, Option<Timestamp>) {
    let at = t.to_zoned(tz.clone());
    let today = now.to_zoned(tz.clone());
    let time = if at.second() == 0 {
        at.strftime("%H:%M").to_string()
    } else {
        at.strftime("%H:%M:%S").to_string()
    };
    if at.date() == today.date() {
        return (time, None);
    }
    let day_starts = at
        .date()
        .to_zoned(tz.clone())
        .ok()
        .map(|z| z.timestamp())
        .filter(|t| *t > now);
    (format!("{} {time}", at.date()), day_starts)
}

/// `left` as `2d 4h`, `5h`, `42m` or `<1m` (floored), and how long before the opening the
/// text next changes (`None`: under a minute left, the opening itself is next).
fn relative(left: SignedDuration) -> (String, Option<SignedDuration>) {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    let secs = left.as_secs().max(0);
    let (days, hours, minutes) = (secs / DAY, secs % DAY / HOUR, secs % HOUR / MINUTE);
    let text = match (days, hours, minutes) {
        (0, 0, 0) => "<1m".to_owned(),
        (0, 0, m) => format!("{m}m"),
        (0, h, _) => format!("{h}h"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    };
    // The text stays until less than `shown` is left, `shown` being `left` floored to the
    // unit it is shown in; one second later it has changed.
    let unit = if secs >= HOUR { HOUR } else { MINUTE };
    let shown = secs / unit * unit;
    let rewrite = (shown > 0).then(|| SignedDuration::from_secs(shown - 1));
    (text, rewrite)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(yaml: &str) -> MaintenanceSchedule {
        load_schedule(yaml)
    }

    // The api crate loads YAML with positions; tests only need the typed object.
    fn load_schedule(yaml: &str) -> MaintenanceSchedule {
        let loaded = upkeep_api::load_str(std::path::Path::new("t.yaml"), yaml);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        match loaded.documents.into_iter().next().map(|d| d.resource) {
            Some(upkeep_api::Resource::MaintenanceSchedule { object, .. }) => *object,
            other => panic!("not a schedule: {other:?}"),
        }
    }

    const WEEKLY: &str = "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: prod, namespace: ns, generation: 4}
spec:
  timeZone: Europe/Berlin
  maintenanceWindows:
    - name: tuesday-night
      startTime: 2026-01-06T22:00:00
      endTime: 2026-01-07T02:00:00
      recurrence: FREQ=WEEKLY;BYDAY=TU
  maintenanceExclusions:
    - name: holidays
      startTime: 2026-12-21T00:00:00
      endTime: 2027-01-04T00:00:00
      scope: NoMinorUpgrades
";

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn status_and_next_boundary_table() {
        let object = schedule(WEEKLY);
        // (now, active window, active exclusion, next boundary, reason)
        let cases = [
            (
                "2026-11-21T10:00:00Z",
                None,
                None,
                Some("2026-11-21T10:00:01Z"),
                "Saturday: closed until Tuesday 22:00 Berlin (21:00Z), exactly 3d 11h away: `in \
                 3d 11h` turns into `in 3d 10h` a second later, when to look again",
            ),
            (
                "2026-11-24T21:30:00Z",
                Some("tuesday-night"),
                None,
                Some("2026-11-24T23:00:00Z"),
                "inside the window, which closes Wednesday 02:00 Berlin: requeue at midnight \
                 there, when `open until 2026-11-25 02:00` becomes `open until 02:00`",
            ),
            (
                "2026-12-22T21:30:00Z",
                Some("tuesday-night"),
                Some("exclusion holidays"),
                Some("2026-12-22T23:00:00Z"),
                "a NoMinorUpgrades exclusion lets patches through: window active, exclusion shown",
            ),
        ];
        for (now, window, exclusion, next, reason) in cases {
            let (status, boundary) = desired_status(&object, ts(now));
            assert_eq!(status.active_window.as_deref(), window, "{reason}");
            assert_eq!(status.active_exclusion.as_deref(), exclusion, "{reason}");
            assert_eq!(boundary, next.map(ts), "{reason}");
            assert_eq!(status.next_windows.len(), NEXT_WINDOWS, "{reason}");
            let ready = status
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")
                .expect("Ready");
            assert_eq!(
                (ready.status.as_str(), ready.observed_generation),
                ("True", Some(4)),
                "{reason}"
            );
        }
    }

    const ALWAYS: &str = "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: anytime, namespace: ns}
spec: {timeZone: UTC, alwaysAllowed: true}
";

    #[test]
    fn no_start_is_a_sentinel() {
        let excluded = "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: anytime, namespace: ns}
spec:
  timeZone: UTC
  alwaysAllowed: true
  maintenanceExclusions:
    - name: holidays
      startTime: 2026-12-21T00:00:00
      endTime: 2027-01-04T00:00:00
";
        let chained = "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: chained, namespace: ns}
spec:
  timeZone: UTC
  maintenanceWindows:
    - name: daily-25h
      startTime: 2020-01-01T00:00:00
      endTime: 2020-01-02T01:00:00
      recurrence: FREQ=DAILY
";
        // (schedule, first start, first end, reason)
        let cases = [
            (
                ALWAYS,
                None,
                None,
                "alwaysAllowed without exclusions has no start: not year -9999 (which the API \
                 server rejects), not 0001-01-01 (which kubectl shows as a 2000-year age)",
            ),
            (
                excluded,
                None,
                Some("2026-12-21T00:00:00Z"),
                "alwaysAllowed with only a future exclusion has been open forever too",
            ),
            (
                chained,
                None,
                None,
                "windows chained since 2020: the core's look-back floor (400 days ago) is not a \
                 start either",
            ),
            (
                WEEKLY,
                Some("2026-11-24T21:00:00Z"),
                Some("2026-11-25T01:00:00Z"),
                "an ordinary window keeps its start",
            ),
        ];
        for (yaml, start, end, reason) in cases {
            let (status, _) = desired_status(&schedule(yaml), ts("2026-11-21T10:00:00Z"));
            let first = status.next_windows.first().expect(reason);
            assert_eq!(first.start.as_ref().map(|t| t.0), start.map(ts), "{reason}");
            assert_eq!(first.end.as_ref().map(|t| t.0), end.map(ts), "{reason}");
            let json = serde_json::to_value(&status).expect("json");
            assert!(
                !json.to_string().contains("0001-01-01") && !json.to_string().contains("-9999"),
                "{reason}: {json}"
            );
        }
    }

    #[test]
    fn summary_reads_right_and_is_rewritten_when_it_changes() {
        let frozen = "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: frozen, namespace: ns}
spec:
  timeZone: Europe/Berlin
  alwaysAllowed: true
  freeze: {until: 2026-12-01T09:00:00, reason: audit}
";
        let past = "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: once, namespace: ns}
spec:
  timeZone: UTC
  maintenanceWindows:
    - {name: once, startTime: 2020-01-01T00:00:00, endTime: 2020-01-01T01:00:00}
";
        // (schedule, now, summary, next requeue, reason)
        let cases = [
            (
                ALWAYS,
                "2026-11-21T10:00:00Z",
                "always",
                None,
                "alwaysAllowed never changes",
            ),
            (
                WEEKLY,
                "2026-11-24T21:30:00Z",
                "open until 2026-11-25 02:00",
                Some("2026-11-24T23:00:00Z"),
                "open Tuesday 22:30 Berlin until Wednesday 02:00: the date is shown until \
                 midnight Berlin (23:00Z), then only the time",
            ),
            (
                WEEKLY,
                "2026-11-24T23:30:00Z",
                "open until 02:00",
                Some("2026-11-25T01:00:00Z"),
                "after midnight the end is today: next change is the window closing",
            ),
            (
                WEEKLY,
                "2026-11-22T16:30:00Z",
                "in 2d 4h",
                Some("2026-11-22T17:00:01Z"),
                "Sunday 16:30Z, opening Tuesday 21:00Z (2d 4h 30m): floored to the hour, \
                 rewritten one second after 2d 4h are left",
            ),
            (
                WEEKLY,
                "2026-11-24T15:59:30Z",
                "in 5h",
                Some("2026-11-24T16:00:01Z"),
                "under a day: whole hours",
            ),
            (
                WEEKLY,
                "2026-11-24T20:17:30Z",
                "in 42m",
                Some("2026-11-24T20:18:01Z"),
                "the last hour: minutes, rewritten each minute",
            ),
            (
                WEEKLY,
                "2026-11-24T20:59:30Z",
                "in <1m",
                Some("2026-11-24T21:00:00Z"),
                "under a minute: the opening is the next change",
            ),
            (
                frozen,
                "2026-11-21T10:00:00Z",
                "frozen until 2026-12-01 09:00",
                Some("2026-11-30T23:00:00Z"),
                "a freeze names its end in the schedule's zone, with the date until that day \
                 begins there",
            ),
            (
                past,
                "2026-11-21T10:00:00Z",
                "none",
                None,
                "nothing ahead: none, never requeued",
            ),
        ];
        for (yaml, now, text, next, reason) in cases {
            let (status, boundary) = desired_status(&schedule(yaml), ts(now));
            assert_eq!(status.summary.as_deref(), Some(text), "{reason}");
            assert_eq!(boundary, next.map(ts), "{reason}");
            if let Some(at) = boundary {
                let (later, _) = desired_status(&schedule(yaml), at);
                let (before, _) = desired_status(
                    &schedule(yaml),
                    at.checked_sub(SignedDuration::from_secs(1)).expect("ts"),
                );
                assert_eq!(
                    before.summary, status.summary,
                    "{reason}: stable until then"
                );
                assert_ne!(
                    later.summary, status.summary,
                    "{reason}: changed at the requeue"
                );
            }
        }
        let (frozen_status, _) = desired_status(&schedule(frozen), ts("2026-11-21T10:00:00Z"));
        assert_eq!(
            frozen_status.frozen_until.map(|t| t.0),
            Some(ts("2026-12-01T08:00:00Z")),
            "the exact end of the freeze is in status too"
        );
    }

    #[test]
    fn an_invalid_spec_is_stalled_and_not_requeued() {
        let mut object = schedule(WEEKLY);
        object.spec.time_zone = "Mars/Olympus".into();
        let (status, boundary) = desired_status(&object, ts("2026-11-21T10:00:00Z"));
        assert_eq!(boundary, None, "only a change to the spec can help");
        let stalled = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Stalled")
            .expect("Stalled");
        assert_eq!(stalled.status, "True");
        assert!(
            stalled.message.contains("spec.timeZone"),
            "{}",
            stalled.message
        );
        assert!(status.next_windows.is_empty());
        assert_eq!(status.summary.as_deref(), Some("invalid spec"));
    }
}
