//! The reconcilers: each reads its object, asks the pure functions what the status should be
//! at `now`, writes the status only when it differs, and says when to look again.
//!
//! `now` comes from the [`Context`]'s clock so tests can run the real controller against a
//! real API server at any moment of a schedule.
//!
//! Every status the controllers write goes through [`redacted_status`] before it is compared
//! with the current one and patched, and every Event note through [`event_note`]: conditions
//! quote registry, Git and forge errors, which may quote URLs and servers' answers, and a
//! status is readable by anyone who may `get` the object.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use upkeep_api::MaintenanceSchedule;

use crate::schedule::desired_status;

/// The field manager upkeep writes status as.
pub const FIELD_MANAGER: &str = "upkeep-controller";

/// What every reconciler gets.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    /// The clock: `Timestamp::now` in production, a fixed or scripted time in tests.
    pub now: Arc<dyn Fn() -> Timestamp + Send + Sync>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

/// A transient failure: the controller backs off and tries again.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the status of {kind} {namespace}/{name}: {source}")]
    WriteStatus {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("serialising a status: {0}")]
    Serialise(#[from] serde_json::Error),
}

/// Reconciles one MaintenanceSchedule: status now, requeue at the next boundary.
pub async fn reconcile_schedule(
    object: Arc<MaintenanceSchedule>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let now = (ctx.now)();
    let (status, next) = desired_status(&object, now);
    let current = serde_json::to_value(&object.status)?;
    let wanted = redacted_status(serde_json::to_value(Some(&status))?);
    if current != wanted {
        let namespace = object.namespace().unwrap_or_default();
        let name = object.name_any();
        let api: Api<MaintenanceSchedule> = Api::namespaced(ctx.client.clone(), &namespace);
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": status_patch(&current, &wanted) })),
        )
        .await
        .map_err(|source| Error::WriteStatus {
            kind: "MaintenanceSchedule",
            namespace,
            name,
            source,
        })?;
    }
    Ok(match next {
        Some(at) => Action::requeue(until(now, at)),
        None => Action::await_change(),
    })
}

/// `status` with every string in it redacted ([`upkeep_core::redact`]). Applied before the
/// comparison with the current status, so an unchanged status is still not rewritten.
pub fn redacted_status(status: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match status {
        Value::String(s) => match upkeep_core::redact::redact(&s) {
            std::borrow::Cow::Borrowed(_) => Value::String(s),
            std::borrow::Cow::Owned(r) => Value::String(r),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(redacted_status).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, redacted_status(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The note of an Event, redacted.
pub fn event_note(text: &str) -> Option<String> {
    Some(upkeep_core::redact::redact(text).into_owned())
}

/// The merge patch that turns the `current` status into `wanted`: `wanted` itself, plus an
/// explicit `null` for every top-level field that `current` has and `wanted` leaves out
/// (statuses skip empty fields when serialised, and a JSON merge patch keeps absent fields,
/// so without the nulls a closed window would stay `activeWindow` forever).
pub fn status_patch(current: &serde_json::Value, wanted: &serde_json::Value) -> serde_json::Value {
    // Callers redact `wanted` before comparing; once more here so no writer can forget.
    let mut patch = redacted_status(wanted.clone());
    if let (Some(current), Some(fields)) = (current.as_object(), patch.as_object_mut()) {
        for key in current.keys() {
            fields.entry(key.clone()).or_insert(serde_json::Value::Null);
        }
    }
    patch
}

/// The wait from `now` to `at` (at least a second, so a boundary reached early by timer skew
/// does not spin).
pub fn until(now: Timestamp, at: Timestamp) -> Duration {
    let wait = at.duration_since(now);
    Duration::try_from(wait)
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1))
}

/// At most this many reconciles of one kind run at once.
///
/// Each reconcile holds at most one API request at a time (a status patch), and the client
/// speaks HTTP/1.1: every request in flight has a TLS connection of its own, and the pool keeps
/// them open afterwards. Unbounded (kube-runtime's default), a cold start opened a connection
/// per object at once, about 55 KiB of TLS and buffer state each: 5,012 sockets and 312 MiB
/// RSS for 5,000 MaintenanceSchedules in bench/run's controller group, against 44 sockets and
/// 60 MiB with this bound, which also made the cold start faster (17 s → 9.5 s): the API
/// server, not the number of connections, sets the pace.
pub const RECONCILE_CONCURRENCY: u16 = 16;

/// The `Controller` configuration every upkeep controller runs with (see
/// [`RECONCILE_CONCURRENCY`]).
pub fn controller_config() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(RECONCILE_CONCURRENCY)
}

/// Drops what no reconciler reads before an object is cached: `managedFields` lists every
/// field each writer owns — status included — and at thousands of objects it was a tenth of
/// the controller's memory.
pub fn lean<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// A controller over every `K` (all namespaces) whose cache holds [`lean`] objects, with
/// [`controller_config`].
pub fn lean_controller<K>(api: Api<K>) -> Controller<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = kube::runtime::reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(lean::<K>)
        .reflect(writer)
        .applied_objects();
    Controller::for_stream(stream, reader).with_config(controller_config())
}

/// Transient errors back off for a while before the object is tried again.
pub fn error_policy<K>(_object: Arc<K>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(15))
}

/// Runs the MaintenanceSchedule controller until `shutdown` resolves.
pub async fn run_schedules(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<MaintenanceSchedule> = Api::all(ctx.client.clone());
    lean_controller(api)
        .graceful_shutdown_on(shutdown)
        .run(
            crate::metrics::instrumented("MaintenanceSchedule", reconcile_schedule),
            error_policy,
            ctx,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::status_patch;

    #[test]
    fn status_patches_clear_fields_that_went_away() {
        let cases = [
            (
                json!({"activeWindow": "w", "nextWindows": [1]}),
                json!({"nextWindows": [2]}),
                json!({"activeWindow": null, "nextWindows": [2]}),
                "a closed window is removed, not kept",
            ),
            (
                json!(null),
                json!({"nextWindows": [2]}),
                json!({"nextWindows": [2]}),
                "no status yet: the wanted status as is",
            ),
            (
                json!({"nextWindows": [1]}),
                json!({"activeWindow": "w", "nextWindows": [1]}),
                json!({"activeWindow": "w", "nextWindows": [1]}),
                "a new field is simply set",
            ),
        ];
        for (current, wanted, patch, why) in cases {
            assert_eq!(status_patch(&current, &wanted), patch, "{why}");
        }
    }
}
