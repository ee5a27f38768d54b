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
//! - [`Shutdown`] is a cloneable level-triggered signal (a `watch` channel), so a task that
//!   starts waiting after the signal fired still sees it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::reconcile::Context;

/// The stop signal handed to one controller run.
pub type StopSignal = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

type RunFn = Box<dyn Fn(Arc<Context>, StopSignal) -> BoxFuture<'static, ()> + Send + Sync>;

/// The fires-once signal for "stop now" (SIGTERM, a lost Lease, the end of a test).
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// Fires a [`Shutdown`]; dropping it does not fire it.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

impl Shutdown {
    /// A signal and the trigger that fires it.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger { tx }, Shutdown { rx })
    }

    /// A signal that never fires.
    pub fn never() -> Shutdown {
        let (trigger, shutdown) = Self::new();
        // Keep the sender alive forever so `wait` does not see a closed channel.
        std::mem::forget(trigger);
        shutdown
    }

    /// Whether the signal has fired.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once the signal has fired (at once if it already has). A dropped trigger that
    /// never fired counts as fired: nobody is left who could stop us otherwise.
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|fired| *fired).await;
    }

    /// The signal as an owned future, the shape `run_*` functions take.
    pub fn signal(&self) -> StopSignal {
        let mut rx = self.rx.clone();
        Box::pin(async move {
            while !*rx.borrow_and_update() {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

impl ShutdownTrigger {
    /// Fires the signal (idempotent).
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }
}

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
