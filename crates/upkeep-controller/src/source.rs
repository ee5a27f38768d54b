//! ChartSource (a kind): scan the registry on `spec.interval` (and at once when a registry
//! push notification asked for it, see [`crate::scan_requests`]), keep the tags in the shared
//! cache and summarise the scan in status (`lastScan {time, tagCount, latestTags}` and
//! conditions).
//!
//! Why it is shaped this way:
//! - The spec is converted by `upkeep-api` and the source built by `upkeep-registry` exactly as
//!   the standalone commands do ([`crate::discovery::build_source`]); this module adds only
//!   timing and status.
//! - Three steps: *gather* (the Secrets and the registry's tags, only when a scan is due),
//!   *decide* (pure: [`next_scan`] says whether a scan is due, [`decide`] turns what was
//!   gathered into the status and the next look), *act* (write the status; the cache is filled
//!   before, so a policy that reconciles on the status change finds the new tags).
//! - Errors: an invalid spec or unusable URL is `Stalled` until the spec changes; a missing
//!   Secret or a registry failure is `Ready=False` with the reason from
//!   [`upkeep_registry::RegistryError::kind`] and is returned so the controller backs off.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::Api;
use kube::runtime::controller::Action;
use upkeep_api::ChartSource;
use upkeep_api::chart_source::{ChartSourceStatus, LastScan, SourceSettings};
use upkeep_registry::merge_first_seen;

use crate::discovery::{Discovery, Failure, build_source};
use crate::framework::conditions::{Outcome, READY, invalid_spec, not_ready, with_outcome};
use crate::framework::{Error, lean_controller, until, write_status};
use crate::tags::{Scan, SourceKey, newest};

/// How many tags `status.lastScan.latestTags` lists.
pub const LATEST_TAGS: usize = 5;

/// When to scan a source: `None` now, `Some(at)` not before `at`.
///
/// Scan now when this process has no scan of the object (or of an older object of the same
/// name), when the spec changed since, when the last attempt did not succeed (`ready` is
/// false), when a scan was requested (a registry push notification) after the last scan
/// started, or once `interval` has passed since the last scan.
pub fn next_scan(
    last: Option<&Scan>,
    uid: Option<&str>,
    generation: Option<i64>,
    ready: bool,
    requested: Option<Timestamp>,
    interval: SignedDuration,
    now: Timestamp,
) -> Option<Timestamp> {
    let last = last?;
    if last.uid.as_deref() != uid || last.generation != generation || !ready {
        return None;
    }
    if requested.is_some_and(|r| r > last.time) {
        return None;
    }
    let at = last.time.checked_add(interval).ok()?;
    (at > now).then_some(at)
}

/// What was gathered for one reconcile of a ChartSource.
#[derive(Debug)]
pub enum Gathered {
    /// The spec does not convert.
    Invalid(Vec<upkeep_api::FieldError>),
    /// `spec.suspend` is set.
    Suspended,
    /// No scan is due before this time.
    NotDue(Timestamp),
    /// A scan ran (and is in the cache).
    Scanned(Arc<Scan>),
    /// A scan was due and failed.
    Failed(Failure),
}

/// What to write and how to go on.
#[derive(Debug)]
pub struct Decision {
    /// The status to write (`None`: leave it as is).
    pub status: Option<ChartSourceStatus>,
    pub action: Action,
    /// The error to return after writing, so the controller backs off.
    pub error: Option<Error>,
}

/// Decide: the status and the next look for what was gathered, at `now`.
pub fn decide(
    current: Option<&ChartSourceStatus>,
    generation: Option<i64>,
    interval: SignedDuration,
    gathered: Gathered,
    now: Timestamp,
) -> Decision {
    let existing = current.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let status = |conditions: Vec<Condition>| ChartSourceStatus {
        last_scan: current.and_then(|s| s.last_scan.clone()),
        conditions,
    };
    let (status, action, error) = match gathered {
        Gathered::Invalid(errors) => (
            Some(status(invalid_spec(existing, &errors, generation, now))),
            Action::await_change(),
            None,
        ),
        Gathered::Suspended => {
            let ready = Outcome::Ready {
                reason: "Suspended".into(),
                message: "scanning is suspended (spec.suspend)".into(),
            };
            let conditions = with_outcome(existing, &ready, generation, now);
            (Some(status(conditions)), Action::await_change(), None)
        }
        Gathered::NotDue(at) => (None, Action::requeue(until(now, at)), None),
        Gathered::Scanned(scan) => {
            let wait = scan.time.checked_add(interval).unwrap_or(now);
            let wanted = scanned_status(existing, &scan, generation, now);
            (Some(wanted), Action::requeue(until(now, wait)), None)
        }
        Gathered::Failed(Failure::Invalid(error)) => {
            let stalled = Outcome::Stalled {
                reason: error.reason().into(),
                message: error.condition_message(),
            };
            let conditions = with_outcome(existing, &stalled, generation, now);
            (Some(status(conditions)), Action::await_change(), None)
        }
        Gathered::Failed(Failure::Transient(error)) => {
            let message = error.condition_message();
            let conditions = not_ready(existing, error.reason(), &message, generation, now);
            // The action is the error policy's business.
            (
                Some(status(conditions)),
                Action::await_change(),
                Some(error),
            )
        }
    };
    Decision {
        status,
        action,
        error,
    }
}

/// The status after a successful scan.
fn scanned_status(
    existing: &[Condition],
    scan: &Scan,
    generation: Option<i64>,
    now: Timestamp,
) -> ChartSourceStatus {
    let count = scan.tags.len();
    let ready = Outcome::Ready {
        reason: "Succeeded".into(),
        message: format!(
            "{count} tag{} from {}",
            if count == 1 { "" } else { "s" },
            scan.location
        ),
    };
    ChartSourceStatus {
        last_scan: Some(LastScan {
            time: Time(scan.time),
            tag_count: count as u64,
            latest_tags: newest(&scan.tags, LATEST_TAGS),
        }),
        conditions: with_outcome(existing, &ready, generation, now),
    }
}

/// Gather: the spec, whether a scan is due, and the scan itself when it is.
async fn gather(d: &Discovery, object: &ChartSource, now: Timestamp) -> (Gathered, SignedDuration) {
    let settings = match object.to_core() {
        Ok(s) => s,
        Err(errors) => return (Gathered::Invalid(errors), SignedDuration::ZERO),
    };
    let interval = settings.interval;
    if object.spec.suspend {
        return (Gathered::Suspended, interval);
    }
    let ready = object.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == READY && c.status == "True" && c.reason != "Suspended")
    });
    let key = SourceKey::of(object);
    let last = d.tags.get(&key);
    let due = next_scan(
        last.as_deref(),
        object.metadata.uid.as_deref(),
        object.metadata.generation,
        ready,
        d.requests.requested(&key),
        interval,
        now,
    );
    if let Some(at) = due {
        return (Gathered::NotDue(at), interval);
    }
    let gathered = match scan(d, object, &settings, now).await {
        Ok(scan) => {
            d.requests.answered(&key, now);
            Gathered::Scanned(d.tags.insert(key, scan))
        }
        Err(failure) => Gathered::Failed(failure),
    };
    (gathered, interval)
}

/// Reconciles one ChartSource: gather (scan when due), decide, act (write status).
pub async fn reconcile_source(
    object: Arc<ChartSource>,
    d: Arc<Discovery>,
) -> Result<Action, Error> {
    let now = d.now();
    let (gathered, interval) = gather(&d, &object, now).await;
    let current = object.status.as_ref();
    let decision = decide(current, object.metadata.generation, interval, gathered, now);
    if let Some(wanted) = &decision.status {
        write_status(d.client(), object.as_ref(), current, wanted).await?;
        let recorded = current.map(|s| s.conditions.as_slice()).unwrap_or_default();
        d.ctx
            .announce_stalled(object.as_ref(), recorded, &wanted.conditions)
            .await;
    }
    match decision.error {
        Some(error) => Err(error),
        None => Ok(decision.action),
    }
}

/// Builds the source and lists its tags.
async fn scan(
    d: &Discovery,
    object: &ChartSource,
    settings: &SourceSettings,
    now: Timestamp,
) -> Result<Scan, Failure> {
    let source = build_source(d, object, settings).await?;
    let listed = source.list_tags().await;
    d.ctx.metrics.record_scan(match &listed {
        Ok(_) => crate::metrics::RESULT_SUCCESS,
        Err(e) => e.kind(),
    });
    let list = listed.map_err(|error| {
        Failure::Transient(Error::Registry {
            source_ref: SourceKey::of(object).to_string(),
            error,
        })
    })?;
    let seen = match merge_first_seen(d.tags.first_seen(), source.key(), &list, now) {
        Ok(seen) => seen,
        Err(never) => match never {},
    };
    Ok(Scan {
        uid: object.metadata.uid.clone(),
        generation: object.metadata.generation,
        location: source.key().to_owned(),
        time: now,
        tags: seen.into(),
    })
}

/// Runs the ChartSource controller until `shutdown` resolves. A scan request
/// ([`crate::scan_requests`]) reconciles its object at once; while it runs, the controller's
/// cache is what push notifications are matched against.
pub async fn run_sources(
    d: Arc<Discovery>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let controller =
        lean_controller(Api::<ChartSource>::all(d.client())).reconcile_on(d.requests.triggers());
    let requests = Arc::clone(&d.requests);
    requests.set_sources(Some(controller.store()));
    crate::framework::run(controller, "ChartSource", reconcile_source, d, shutdown).await;
    requests.set_sources(None);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    // (last scan, uid, generation, ready, requested at, now, expected, reason)
    type Case<'a> = (
        Option<&'a Scan>,
        &'a str,
        i64,
        bool,
        Option<&'a str>,
        &'a str,
        Option<Timestamp>,
        &'a str,
    );

    #[test]
    fn scans_when_due_and_not_before() {
        let last = Scan {
            uid: Some("u1".into()),
            generation: Some(2),
            location: "oci://r/app".into(),
            time: ts("2026-01-01T10:00:00Z"),
            tags: Arc::from(Vec::new()),
        };
        let interval = SignedDuration::from_mins(10);
        let later = Some(ts("2026-01-01T10:10:00Z"));
        let l = Some(&last);
        let minute = "2026-01-01T10:01:00Z";
        #[rustfmt::skip]
        let cases: &[Case<'_>] = &[
            (None, "u1", 2, true, None, minute, None,
             "never scanned in this process: scan now"),
            (l, "u1", 2, true, None, minute, later,
             "scanned a minute ago: wait for the interval, not polling"),
            (l, "u1", 2, true, None, "2026-01-01T10:10:00Z", None,
             "the interval has passed: scan"),
            (l, "u1", 3, true, None, minute, None, "the spec changed: scan now"),
            (l, "u2", 2, true, None, minute, None,
             "a new object of the same name: scan now"),
            (l, "u1", 2, false, None, minute, None,
             "the last attempt failed: retry (the error backoff paces it)"),
            (l, "u1", 2, true, Some("2026-01-01T10:00:30Z"), minute, None,
             "a push was notified after the last scan started: scan now, within the interval"),
            (l, "u1", 2, true, Some("2026-01-01T09:59:59Z"), minute, later,
             "a request the last scan answered (made before it started): wait"),
            (l, "u1", 2, true, Some("2026-01-01T10:00:00Z"), minute, later,
             "a request at the last scan's very start: answered by it"),
            (None, "u1", 2, true, Some("2026-01-01T10:00:30Z"), minute, None,
             "a request for a source never scanned: scan now (as without one)"),
        ];
        for (scan, uid, generation, ready, requested, now, expected, reason) in cases {
            let requested = requested.map(ts);
            let got = next_scan(
                *scan,
                Some(uid),
                Some(*generation),
                *ready,
                requested,
                interval,
                ts(now),
            );
            assert_eq!(got, *expected, "{reason}");
        }
    }

    fn condition(status: &ChartSourceStatus, type_: &str) -> Option<(String, String)> {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| (c.status.clone(), c.reason.clone()))
    }

    /// (gathered, Ready, Stalled, requeue after seconds, returns an error, lastScan kept, why)
    type DecideCase<'a> = (
        Gathered,
        Option<&'a str>,
        Option<&'a str>,
        Option<u64>,
        bool,
        bool,
        &'a str,
    );

    #[test]
    fn decide_turns_what_was_gathered_into_status_and_next_look() {
        let now = ts("2026-01-01T10:00:00Z");
        let interval = SignedDuration::from_mins(10);
        let previous = ChartSourceStatus {
            last_scan: Some(LastScan {
                time: Time(ts("2026-01-01T09:00:00Z")),
                tag_count: 1,
                latest_tags: vec!["0.9.0".into()],
            }),
            conditions: Vec::new(),
        };
        let scanned = Arc::new(Scan {
            uid: Some("u1".into()),
            generation: Some(1),
            location: "oci://r/app".into(),
            time: now,
            tags: Arc::from(Vec::new()),
        });
        let registry = |kind: &str| Error::Registry {
            source_ref: "ns/app".into(),
            error: upkeep_registry::RegistryError::InvalidOption {
                option: kind.into(),
                detail: "bad".into(),
            },
        };
        // (gathered, Ready, Stalled, requeue after, returns an error, lastScan kept, reason)
        let cases: Vec<DecideCase<'_>> = vec![
            (
                Gathered::Invalid(vec![upkeep_api::FieldError::new("spec.url", "empty")]),
                Some("False"),
                Some("True"),
                None,
                false,
                true,
                "an invalid spec is Stalled and waits for a change",
            ),
            (
                Gathered::Suspended,
                Some("True"),
                None,
                None,
                false,
                true,
                "suspended is Ready (Suspended) and waits",
            ),
            (
                Gathered::NotDue(ts("2026-01-01T10:05:00Z")),
                None,
                None,
                Some(300),
                false,
                true,
                "not due: no write, requeue at the due time",
            ),
            (
                Gathered::Scanned(scanned),
                Some("True"),
                None,
                Some(600),
                false,
                false,
                "a scan: a new lastScan, requeue one interval after it",
            ),
            (
                Gathered::Failed(Failure::Invalid(registry("url"))),
                Some("False"),
                Some("True"),
                None,
                false,
                true,
                "an unusable location is Stalled, not retried",
            ),
            (
                Gathered::Failed(Failure::Transient(registry("timeout"))),
                Some("False"),
                None,
                None,
                true,
                true,
                "a registry failure is not ready and returned, so the controller backs off",
            ),
        ];
        for (gathered, ready, stalled, after, error, kept, why) in cases {
            let decision = decide(Some(&previous), Some(1), interval, gathered, now);
            let status = decision.status.clone();
            assert_eq!(
                status
                    .as_ref()
                    .and_then(|s| condition(s, READY))
                    .map(|c| c.0),
                ready.map(str::to_owned),
                "{why}"
            );
            assert_eq!(
                status
                    .as_ref()
                    .and_then(|s| condition(s, "Stalled"))
                    .map(|c| c.0),
                stalled.map(str::to_owned),
                "{why}"
            );
            let want = after.map_or_else(Action::await_change, |s| {
                Action::requeue(std::time::Duration::from_secs(s))
            });
            if !error {
                assert_eq!(decision.action, want, "{why}");
            }
            assert_eq!(decision.error.is_some(), error, "{why}");
            if let Some(s) = &status {
                let time = |l: &Option<LastScan>| l.as_ref().map(|l| l.time.clone());
                assert_eq!(
                    time(&s.last_scan) == time(&previous.last_scan),
                    kept,
                    "{why}"
                );
            }
        }
    }
}
