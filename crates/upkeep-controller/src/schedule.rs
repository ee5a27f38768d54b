//! MaintenanceSchedule: `activeWindow`, `activeExclusion` and `nextWindows` at `now`, and the
//! exact time of the next change of any of them, so the controller requeues at that boundary
//! instead of polling.
//!
//! A start the API server cannot store is clamped: the core reports the interval of an
//! `alwaysAllowed` schedule (no exclusion, no freeze) as starting at [`Timestamp::MIN`] (year
//! -9999), but a Kubernetes `date-time` holds years 0001–9999 only, so the status says
//! [`EARLIEST`] ("since ever") instead of failing every status write.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use upkeep_api::MaintenanceSchedule;
use upkeep_api::maintenance_schedule::{MaintenanceScheduleStatus, NextWindow};
use upkeep_core::schedule::{ClosedReason, Schedule, Verdict};
use upkeep_core::version::UpgradeKind;

use crate::conditions::{Outcome, with_outcome};

/// How many upcoming intervals the status lists.
pub const NEXT_WINDOWS: usize = 3;

/// The earliest instant a Kubernetes `date-time` field accepts (`0001-01-01T00:00:00Z`, Go's
/// zero time); earlier interval starts are written as this.
pub const EARLIEST: Timestamp = Timestamp::constant(-62_135_596_800, 0);

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
    let active_window = match schedule.check(now, UpgradeKind::Patch) {
        Verdict::Open { window, until } => {
            boundaries.extend(until);
            Some(window)
        }
        Verdict::Closed { next_open, .. } => {
            boundaries.extend(next_open);
            None
        }
    };
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
    let next_windows: Vec<NextWindow> = schedule
        .next_intervals(now, NEXT_WINDOWS, UpgradeKind::Patch)
        .into_iter()
        .map(|i| {
            boundaries.push(i.start);
            boundaries.extend(i.end);
            NextWindow {
                start: Time(i.start.max(EARLIEST)),
                end: i.end.map(Time),
                window: (!i.windows.is_empty()).then(|| i.windows.join(", ")),
            }
        })
        .collect();
    let next = boundaries.into_iter().filter(|t| *t > now).min();
    (
        MaintenanceScheduleStatus {
            active_window,
            active_exclusion,
            next_windows,
            conditions: Vec::new(),
        },
        next,
    )
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
                Some("2026-11-24T21:00:00Z"),
                "Saturday: closed until Tuesday 22:00 Berlin (21:00Z); that is when to look again",
            ),
            (
                "2026-11-24T21:30:00Z",
                Some("tuesday-night"),
                None,
                Some("2026-11-25T01:00:00Z"),
                "inside the window: requeue when it closes",
            ),
            (
                "2026-12-22T21:30:00Z",
                Some("tuesday-night"),
                Some("exclusion holidays"),
                Some("2026-12-23T01:00:00Z"),
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

    #[test]
    fn every_start_is_a_time_the_api_server_accepts() {
        let always = "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: anytime, namespace: ns}
spec: {timeZone: UTC, alwaysAllowed: true}
";
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
                always,
                "0001-01-01T00:00:00Z",
                None,
                "alwaysAllowed without exclusions began before any storable time: the earliest \
                 date-time Kubernetes accepts, not year -9999 (which the API server rejects)",
            ),
            (
                excluded,
                "0001-01-01T00:00:00Z",
                Some("2026-12-21T00:00:00Z"),
                "alwaysAllowed with only a future exclusion has been open forever too (the core \
                 finds no exclusion that ended before its look-back)",
            ),
            (
                chained,
                "2025-10-17T10:00:00Z",
                None,
                "windows chained since 2020: the core's look-back floor (400 days) is the start, \
                 kept as is",
            ),
            (
                WEEKLY,
                "2026-11-24T21:00:00Z",
                Some("2026-11-25T01:00:00Z"),
                "an ordinary window is not touched",
            ),
        ];
        for (yaml, start, end, reason) in cases {
            let (status, _) = desired_status(&schedule(yaml), ts("2026-11-21T10:00:00Z"));
            let first = status.next_windows.first().expect(reason);
            assert_eq!(first.start.0, ts(start), "{reason}");
            assert_eq!(first.end.as_ref().map(|t| t.0), end.map(ts), "{reason}");
            let json = serde_json::to_value(first).expect("json");
            assert_eq!(json["start"], start, "serialized as RFC 3339: {reason}");
        }
        assert_eq!(EARLIEST, ts("0001-01-01T00:00:00Z"));
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
    }
}
