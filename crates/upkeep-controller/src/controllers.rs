//! The list of controllers the process runs, and the one shutdown signal they share.
//!
//! Why it is shaped this way:
//! - Every controller module exposes `run_<kind>s(ctx, shutdown)` (a `kube::runtime::Controller`
//!   with `graceful_shutdown_on(shutdown)`). [`Controllers`] is a list of those functions, so
//!   adding a controller to the binary is one `.with("Kind", run_kinds)` line, and the leader
//!   elector can start the whole list when it wins the Lease and stop it when it loses it.
//! - A started list ([`Running`]) owns its tasks: stopping it asks each controller to finish its
//!   in-flight reconciles, waits a bounded grace period, then aborts what is left; dropping it
//!   aborts them all. No reconciler outlives the leadership it ran under.
//! - The kinds' `run_*` functions live with their kinds; what runs several kinds over one
//!   shared context ([`run_discovery`]) or one shared watch ([`run_cluster_controllers`]) lives
//!   here, above them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::discovery::Discovery;
use crate::framework::Context;
pub use crate::shutdown::{Shutdown, ShutdownTrigger, StopSignal};

type RunFn = Box<dyn Fn(Arc<Context>, StopSignal) -> BoxFuture<'static, ()> + Send + Sync>;

/// The controllers a process runs, by kind.
#[derive(Default)]
pub struct Controllers {
    list: Vec<(&'static str, RunFn)>,
}

impl std::fmt::Debug for Controllers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(|(name, _)| name))
            .finish()
    }
}

impl Controllers {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a controller: `run(ctx, stop)` runs until `stop` resolves (e.g. `run_schedules`).
    #[must_use]
    pub fn with<F, Fut>(mut self, kind: &'static str, run: F) -> Self
    where
        F: Fn(Arc<Context>, StopSignal) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.list
            .push((kind, Box::new(move |ctx, stop| Box::pin(run(ctx, stop)))));
        self
    }

    /// The kinds, in order.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.list.iter().map(|(kind, _)| *kind).collect()
    }

    /// Runs every controller until `shutdown` fires, without leader election (one replica, or
    /// `--leader-elect=false`), keeping `metrics` and `health` in step.
    pub async fn run_until(
        &self,
        ctx: &Arc<Context>,
        metrics: &crate::metrics::Metrics,
        health: &crate::serve::Health,
        shutdown: &Shutdown,
        grace: Duration,
    ) {
        metrics.set_leader(true);
        health.set_leader(true);
        let mut running = self.start(ctx);
        health.set_controllers_running(true);
        tokio::select! {
            () = shutdown.wait() => {}
            kind = running.any_exited() => tracing::error!(kind, "a controller ended on its own"),
        }
        health.set_controllers_running(false);
        running.stop(grace).await;
        metrics.set_leader(false);
        health.set_leader(false);
    }

    /// Starts every controller on its own task.
    pub fn start(&self, ctx: &Arc<Context>) -> Running {
        let (trigger, stop) = Shutdown::new();
        let tasks = self
            .list
            .iter()
            .map(|(kind, run)| {
                tracing::info!(kind, "starting controller");
                (*kind, tokio::spawn(run(ctx.clone(), stop.signal())))
            })
            .collect();
        Running { trigger, tasks }
    }
}

/// Started controllers; dropping this aborts them.
#[derive(Debug)]
pub struct Running {
    trigger: ShutdownTrigger,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Running {
    /// Resolves when any controller has ended on its own (it should not while running), with
    /// its kind. Never resolves for an empty list.
    pub async fn any_exited(&mut self) -> &'static str {
        if self.tasks.is_empty() {
            return std::future::pending().await;
        }
        let (_, index, _) =
            futures_util::future::select_all(self.tasks.iter_mut().map(|(_, task)| task)).await;
        self.tasks[index].0
    }

    /// Asks every controller to stop after its in-flight reconciles, waits up to `grace`, then
    /// aborts whatever is still running.
    pub async fn stop(mut self, grace: Duration) {
        self.trigger.trigger();
        let deadline = tokio::time::Instant::now() + grace;
        for (kind, task) in &mut self.tasks {
            if tokio::time::timeout_at(deadline, &mut *task).await.is_ok() {
                tracing::info!(kind = *kind, "controller stopped");
            } else {
                tracing::warn!(
                    kind = *kind,
                    ?grace,
                    "controller did not stop in time; aborting"
                );
                task.abort();
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
    }
}
/// Runs the ChartSource and VersionPolicy controllers over one shared [`Discovery`] until
/// `shutdown` resolves.
pub async fn run_discovery(
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    run_discovery_with(Arc::new(Discovery::new(ctx)), shutdown).await;
}

/// [`run_discovery`] with a prepared context (a base directory, a retry interval, …).
pub async fn run_discovery_with(
    discovery: Arc<Discovery>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = shutdown.shared();
    futures_util::future::join(
        crate::source::run_sources(Arc::clone(&discovery), shutdown.clone()),
        crate::policy::run_policies(discovery, shutdown),
    )
    .await;
}

/// Runs the ClusterUpgrade and scheduled-upgrade controllers over one shared Cluster watch
/// (see [`crate::cluster_cache`]) until `shutdown` resolves: one list and one cache of
/// every Cluster for the process, not one per controller.
pub async fn run_cluster_controllers(
    upgrades: Arc<crate::cluster_upgrade::UpgradeSettings>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let ctx = Arc::clone(&upgrades.ctx);
    let mut watch = crate::cluster_cache::ClusterWatch::new(&ctx.client());
    let for_upgrades = watch.subscribe(true);
    let for_scheduled = watch.subscribe(false);
    let (cache, fill) = watch.start();
    let shutdown = shutdown.shared();
    let both = futures_util::future::join(
        crate::cluster_upgrade::run_cluster_upgrades_on(
            upgrades,
            cache.clone(),
            for_upgrades,
            shutdown.clone(),
        ),
        crate::scheduled::run_scheduled_upgrades_on(ctx, &cache, for_scheduled, shutdown),
    );
    // The controllers end on `shutdown`; the watch with them.
    futures_util::pin_mut!(both, fill);
    futures_util::future::select(both, fill).await;
}
