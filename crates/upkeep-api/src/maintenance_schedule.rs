//! `MaintenanceSchedule`: when changes may happen.
//!
//! Field names follow the design notes the project started from (`maintenanceWindows`,
//! `maintenanceExclusions`, GKE-style scopes). Conversion parses every field on its own first,
//! so one manifest with three mistakes gets three located errors, and only then asks the core
//! to check the schedule as a whole (`Schedule::new`).

use jiff::tz::TimeZone;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use upkeep_core::schedule::{self as core, RRule, Schedule, ScheduleError, ScheduleSpec, TimeSpec};

use crate::FieldError;
use crate::common;

fn default_time_zone() -> String {
    "UTC".to_owned()
}

/// Allowed time: the union of the windows (or always), minus exclusions and freezes.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "upkeep.dev",
    version = "v1alpha1",
    kind = "MaintenanceSchedule",
    doc = "When changes may happen: windows, exclusions and freezes in an IANA time zone.",
    namespaced,
    status = "MaintenanceScheduleStatus",
    shortname = "ms",
    category = "upkeep",
    printcolumn = r#"{"name":"Time Zone","type":"string","jsonPath":".spec.timeZone"}"#,
    printcolumn = r#"{"name":"Window","type":"string","jsonPath":".status.summary","description":"The schedule at a glance: always, open until 12:00, in 2d 4h, frozen until …, none."}"#,
    printcolumn = r#"{"name":"Active Window","type":"string","jsonPath":".status.activeWindow","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MaintenanceScheduleSpec {
    /// IANA time zone in which times without an offset and recurrences are read.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// With no windows, allow any time. An empty schedule without this is an error.
    #[serde(default)]
    pub always_allowed: bool,
    /// When changes may happen: the union of these windows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintenance_windows: Vec<MaintenanceWindow>,
    /// When changes may not happen, even inside a window (all of them, or by `scope`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintenance_exclusions: Vec<MaintenanceExclusion>,
    /// Hold every upgrade until a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<FreezeSpec>,
    /// The Cluster API clusters this schedule governs (by their labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<LabelSelector>,
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MaintenanceWindow {
    /// A name for this window, shown in status and messages.
    pub name: String,
    /// RFC 3339; without an offset, wall-clock time in `timeZone`.
    pub start_time: String,
    /// RFC 3339 like `startTime`; each occurrence lasts `endTime − startTime` of wall-clock
    /// time.
    pub end_time: String,
    /// RFC 5545 RRULE, e.g. `FREQ=WEEKLY;BYDAY=TU,TH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MaintenanceExclusion {
    /// A name for this exclusion, shown in status and messages.
    pub name: String,
    /// RFC 3339; without an offset, wall-clock time in `timeZone`.
    pub start_time: String,
    /// RFC 3339 like `startTime`; each occurrence lasts `endTime − startTime` of wall-clock
    /// time.
    pub end_time: String,
    /// RFC 5545 RRULE, e.g. `FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<String>,
    /// Which upgrades it holds: `NoUpgrades` (default, all), `NoMinorUpgrades` (only patches
    /// pass), `NoMajorUpgrades` (minor and patch pass).
    #[serde(default)]
    pub scope: ExclusionScope,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ExclusionScope {
    #[default]
    NoUpgrades,
    NoMinorUpgrades,
    NoMajorUpgrades,
}

impl From<ExclusionScope> for core::ExclusionScope {
    fn from(s: ExclusionScope) -> Self {
        match s {
            ExclusionScope::NoUpgrades => core::ExclusionScope::NoUpgrades,
            ExclusionScope::NoMinorUpgrades => core::ExclusionScope::NoMinorUpgrades,
            ExclusionScope::NoMajorUpgrades => core::ExclusionScope::NoMajorUpgrades,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FreezeSpec {
    /// RFC 3339; without an offset, wall-clock time in `timeZone`.
    pub until: String,
    /// Why, for people (shown in status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the schedule allows now and next. Times are exact instants (RFC 3339, UTC); only
/// `summary` is text for people.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceScheduleStatus {
    /// The schedule at a glance, for `kubectl get` (its WINDOW column): `always`, `open until
    /// 12:00` (in `timeZone`; the date is added when it is not today), `in 2d 4h` (the next
    /// opening), `frozen until 2026-12-01 09:00`, `none` (no allowed time ahead) or `invalid
    /// spec` (see the `Stalled` condition). A
    /// relative text is rewritten as it ages: hourly, then every minute in the last hour;
    /// read `nextWindows` and `frozenUntil` for exact instants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The window open now (for patch upgrades, the least restricted kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_window: Option<String>,
    /// The exclusion or freeze holding some or all upgrades now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_exclusion: Option<String>,
    /// While a freeze holds every upgrade: when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen_until: Option<Time>,
    /// The allowed intervals (for patch upgrades) from now on, the one open now first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_windows: Vec<NextWindow>,
    /// `Ready` (reason `Open` or `Closed`), or `Stalled` with the spec's mistakes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One allowed interval.
#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NextWindow {
    /// When it opens; absent when it has been open for longer than upkeep looks back (an
    /// `alwaysAllowed` schedule, or windows chained for over a year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Time>,
    /// When it closes; absent when it never does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Time>,
    /// The names of the windows it is made of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
}

const TIME_HINT: &str = "RFC 3339, e.g. 2025-01-07T02:00:00 (in timeZone) or 2025-01-07T02:00:00Z";
const RRULE_HINT: &str =
    "an RFC 5545 RRULE such as FREQ=WEEKLY;BYDAY=TU,TH or FREQ=MONTHLY;BYDAY=1SA";

fn time(path: &str, value: &str, errors: &mut Vec<FieldError>) -> Option<TimeSpec> {
    match TimeSpec::parse(value) {
        Ok(t) => Some(t),
        Err(e) => {
            let hint = e.hint().unwrap_or_else(|| TIME_HINT.to_owned());
            errors.push(FieldError::new(path, schedule_message(&e)).with_hint(Some(hint)));
            None
        }
    }
}

fn recurrence(
    path: &str,
    value: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Result<Option<RRule>, ()> {
    let Some(value) = value else {
        return Ok(None);
    };
    match RRule::parse(value) {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            let hint = e.hint().unwrap_or_else(|| RRULE_HINT.to_owned());
            errors.push(FieldError::new(path, e.to_string()).with_hint(Some(hint)));
            Err(())
        }
    }
}

/// The core's message without the `field: ` prefix it carries (the diagnostic names the field).
fn schedule_message(e: &ScheduleError) -> String {
    let text = e.to_string();
    match e.field() {
        Some(field) => text
            .strip_prefix(&format!("{field}: "))
            .map_or_else(|| text.clone(), ToOwned::to_owned),
        None => text,
    }
}

impl MaintenanceScheduleSpec {
    /// Parses each field into the core's [`ScheduleSpec`], collecting every error.
    pub fn to_core_spec(&self) -> Result<ScheduleSpec, Vec<FieldError>> {
        let mut errors = Vec::new();
        let time_zone = TimeZone::get(self.time_zone.trim()).ok();
        if time_zone.is_none() {
            errors.push(
                FieldError::new(
                    "spec.timeZone",
                    format!("unknown time zone {:?}", self.time_zone),
                )
                .with_hint(Some("an IANA name such as Europe/Berlin")),
            );
        }
        let mut windows = Vec::new();
        for (i, w) in self.maintenance_windows.iter().enumerate() {
            let base = format!("spec.maintenanceWindows[{i}]");
            let start = time(&format!("{base}.startTime"), &w.start_time, &mut errors);
            let end = time(&format!("{base}.endTime"), &w.end_time, &mut errors);
            let rec = recurrence(
                &format!("{base}.recurrence"),
                w.recurrence.as_deref(),
                &mut errors,
            );
            if let (Some(start), Some(end), Ok(recurrence)) = (start, end, rec) {
                windows.push(core::Window {
                    name: w.name.clone(),
                    start,
                    end,
                    recurrence,
                });
            }
        }
        let mut exclusions = Vec::new();
        for (i, x) in self.maintenance_exclusions.iter().enumerate() {
            let base = format!("spec.maintenanceExclusions[{i}]");
            let start = time(&format!("{base}.startTime"), &x.start_time, &mut errors);
            let end = time(&format!("{base}.endTime"), &x.end_time, &mut errors);
            let rec = recurrence(
                &format!("{base}.recurrence"),
                x.recurrence.as_deref(),
                &mut errors,
            );
            if let (Some(start), Some(end), Ok(recurrence)) = (start, end, rec) {
                exclusions.push(core::Exclusion {
                    name: x.name.clone(),
                    start,
                    end,
                    recurrence,
                    scope: x.scope.into(),
                });
            }
        }
        let freeze = self.freeze.as_ref().and_then(|f| {
            time("spec.freeze.until", &f.until, &mut errors).map(|until| core::Freeze {
                until,
                reason: f.reason.clone(),
            })
        });
        match time_zone {
            Some(time_zone) if errors.is_empty() => Ok(ScheduleSpec {
                time_zone,
                always_allowed: self.always_allowed,
                windows,
                exclusions,
                freeze,
            }),
            _ => Err(errors),
        }
    }
}

impl MaintenanceSchedule {
    /// Validates the spec into a core [`Schedule`].
    pub fn to_core(&self) -> Result<Schedule, Vec<FieldError>> {
        let mut errors = Vec::new();
        common::check_name(&self.metadata, &mut errors);
        let spec = match self.spec.to_core_spec() {
            Ok(spec) => spec,
            Err(mut more) => {
                errors.append(&mut more);
                return Err(errors);
            }
        };
        if let Some(Err(e)) = self
            .spec
            .cluster_selector
            .as_ref()
            .map(crate::cluster_upgrade::label_selector)
        {
            errors.push(crate::cluster_upgrade::selector_error(&e));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Schedule::new(spec).map_err(|e| {
            let path = e
                .field()
                .map_or_else(|| "spec".to_owned(), |f| format!("spec.{f}"));
            vec![FieldError::new(path, schedule_message(&e)).with_hint(e.hint())]
        })
    }
}
