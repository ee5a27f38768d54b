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
use std::time::Duration;

use futures_util::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::utils::Backoff;
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

/// The backoff of every watch and of each controller's merged triggers, instead of
/// kube-runtime's default (client-go's reflector: 0.8 s doubling to 30 s, plus a random jitter
/// of up to the whole delay, reset after 120 s without an error).
///
/// Why not the default: upkeep runs a handful of light watches, and an upgrade waits on them.
/// When the API server restarts, each watch fails a few times while it is away and once more
/// with `410 Expired` when it resumes from a resourceVersion the fresh watch cache no longer
/// has; a `Controller` also backs off its merged trigger stream on any one watch's error. With
/// the default, those steps stacked to over 90 s before a new version reached the automation
/// (the e2e restart test failed on CI that way). Here a delay starts at 0.25 s, doubles up to
/// 5 s, carries a jitter of up to a quarter of itself (replicas do not retry in step) and
/// resets after 30 s without an error: a watch of a gone API server asks once per 5 s, still
/// gentle, and recovery takes seconds.
///
/// The reset is by time only: kube-runtime resets a stream's backoff on every `Ok` item, and a
/// watcher yields `Ok(Event::Init)` before each attempt to list, so a list that keeps failing
/// (a CRD that is not installed, an API server that answers 404 or 403) was retried at the
/// first delay forever (seen: a Cluster watch without the Cluster API CRD retried every 0.28 s
/// for a whole test, next to the test's API server restart).
#[must_use]
pub fn watch_backoff() -> WatchBackoff {
    WatchBackoff::default()
}

/// The delays of [`watch_backoff`]: 0.25 s doubling to 5 s, each plus a jitter of up to a
/// quarter of itself, starting over once [`WATCH_BACKOFF_RESET`] passed without one.
#[derive(Debug)]
pub struct WatchBackoff {
    next: Duration,
    /// When the last delay was handed out.
    last: Option<std::time::Instant>,
    /// xorshift state for the jitter (no random crate for a quarter-delay spread).
    seed: u64,
}

const WATCH_BACKOFF_FIRST: Duration = Duration::from_millis(250);
const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A watch that went this long without an error starts its delays over.
pub const WATCH_BACKOFF_RESET: Duration = Duration::from_secs(30);

impl Default for WatchBackoff {
    fn default() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Self {
            next: WATCH_BACKOFF_FIRST,
            last: None,
            seed: (u64::from(nanos) << 16 | u64::from(std::process::id())) | 1,
        }
    }
}

impl WatchBackoff {
    /// The delay for an error at `now`.
    fn next_at(&mut self, now: std::time::Instant) -> Duration {
        if self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) >= WATCH_BACKOFF_RESET)
        {
            self.next = WATCH_BACKOFF_FIRST;
        }
        self.last = Some(now);
        let delay = self.next;
        self.next = (delay * 2).min(WATCH_BACKOFF_MAX);
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let quarter = u64::try_from(delay.as_micros() / 4)
            .unwrap_or(u64::MAX)
            .max(1);
        delay + Duration::from_micros(self.seed % quarter)
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.next_at(std::time::Instant::now()))
    }
}

impl Backoff for WatchBackoff {
    /// Nothing: see [`watch_backoff`] (the reset is by time, in `next`).
    fn reset(&mut self) {}
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
        .backoff(watch_backoff())
        .modify(lean::<K>)
        .reflect(writer)
        .applied_objects();
    Controller::for_stream(stream, reader)
        .with_config(controller_config())
        .trigger_backoff(watch_backoff())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each delay is its base (0.25 s doubling, capped at 5 s) plus a jitter below a quarter
    /// of the base; the `reset` kube-runtime calls on every `Ok` item (the `Init` before each
    /// list attempt among them) changes nothing; 30 s without a delay start over.
    #[test]
    fn watch_backoff_doubles_to_five_seconds_with_a_bounded_jitter_and_resets_by_time() {
        let mut backoff = WatchBackoff::default();
        let mut now = std::time::Instant::now();
        let bases_ms = [250, 500, 1000, 2000, 4000, 5000, 5000, 5000];
        for base in bases_ms {
            let base = Duration::from_millis(base);
            // What StreamBackoff does with the watcher's Ok(Init) before the failing list.
            backoff.reset();
            let delay = backoff.next_at(now);
            assert!(
                delay >= base && delay < base + base / 4,
                "{delay:?} for base {base:?}"
            );
            now += delay;
        }
        let first = backoff.next_at(now + WATCH_BACKOFF_RESET);
        assert!(
            first < Duration::from_millis(313),
            "{first:?} after 30 s quiet"
        );
    }

    /// Recovery is bounded: an API server away for a minute is retried at least every 6.25 s,
    /// so a watch is back within seconds of it.
    #[test]
    fn watch_backoff_never_waits_longer_than_a_jittered_five_seconds() {
        let longest = WatchBackoff::default().take(1000).max().expect("delays");
        assert!(longest < Duration::from_millis(6250), "{longest:?}");
    }
}
