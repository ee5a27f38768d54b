//! The reconcilers: each reads its object, asks the pure functions what the status should be
//! at `now`, writes the status only when it differs, and says when to look again.
//!
//! `now` comes from the [`Context`]'s clock so tests can run the real controller against a
//! real API server at any moment of a schedule.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
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
    let wanted = serde_json::to_value(Some(&status))?;
    if current != wanted {
        let namespace = object.namespace().unwrap_or_default();
        let name = object.name_any();
        let api: Api<MaintenanceSchedule> = Api::namespaced(ctx.client.clone(), &namespace);
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": wanted })),
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

/// The wait from `now` to `at` (at least a second, so a boundary reached early by timer skew
/// does not spin).
fn until(now: Timestamp, at: Timestamp) -> Duration {
    let wait = at.duration_since(now);
    Duration::try_from(wait)
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1))
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
    Controller::new(api, watcher::Config::default())
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
