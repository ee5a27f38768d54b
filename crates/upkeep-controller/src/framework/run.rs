//! The run loop every controller shares: a lean cache, bounded concurrency, the instrumented
//! reconcile, the error policy and the drain of results — written once, generic over the kind.
//!
//! Why it is shaped this way:
//! - A kind builds its `Controller` (its own watches and triggers) and hands it to [`run`]
//!   with its reconcile function; the tail (`.run(reconcile, error_policy, ctx).for_each(…)`)
//!   is not repeated per kind.
//! - Errors are transient by definition (an invalid spec is a `Stalled` status, not an error):
//!   [`error_policy`] logs, and requeues after the context's `retry_after`. Each failure is
//!   counted once, by the instrumented reconcile, under its variant name.

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use futures_util::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;

use super::context::{Context, Shared};
use super::error::Error;

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
        + DeserializeOwned
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

/// A transient failure backs off for the context's `retry_after` before the object is tried
/// again.
pub fn error_policy(kind: &'static str, error: &Error, ctx: &Context) -> Action {
    let message = failure_log(kind);
    tracing::warn!(kind, %error, reason = error.reason(), "{message}");
    Action::requeue(ctx.retry_after)
}

/// The log line of a failed reconcile, as each kind wrote it before they shared this loop
/// (operators and tests grep for them).
fn failure_log(kind: &str) -> &'static str {
    match kind {
        "ChartSource" | "VersionPolicy" => "discovery reconcile failed; retrying",
        "AppUpgradeAutomation" => "AppUpgradeAutomation run failed; retrying",
        "ImageUpdateAutomation" => "ImageUpdateAutomation run failed; retrying",
        "ClusterUpgradePolicy" => "ClusterUpgradePolicy reconcile failed; retrying",
        "ClusterUpgrade" => "ClusterUpgrade reconcile failed; retrying",
        _ => "reconcile failed; retrying",
    }
}

/// Runs `controller` with `reconcile` (counted and timed as `kind` in the context's metrics)
/// and [`error_policy`] until `shutdown` resolves.
pub async fn run<K, C, F, Fut>(
    controller: Controller<K>,
    kind: &'static str,
    reconcile: F,
    ctx: Arc<C>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Debug + Unpin,
    C: Shared,
    F: FnMut(Arc<K>, Arc<C>) -> Fut,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let metrics = ctx.context().metrics.clone();
    controller
        .graceful_shutdown_on(shutdown)
        .run(
            crate::metrics::instrumented_with(metrics, kind, reconcile),
            move |_object: Arc<K>, error: &Error, ctx: Arc<C>| {
                error_policy(kind, error, ctx.context())
            },
            ctx,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(kind, %error, "reconcile");
            }
        })
        .await;
}
