//! The one stop signal a process's tasks share (SIGTERM, a lost Lease, the end of a test).
//!
//! [`Shutdown`] is a cloneable level-triggered signal (a `watch` channel), so a task that
//! starts waiting after the signal fired still sees it. It is its own module because both the
//! controller list and the HTTP endpoints stop on it.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;

/// The stop signal handed to one controller run.
pub type StopSignal = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

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
