//! The context every reconciler gets: the Kubernetes client, the clock, the metrics, the wait
//! after a transient failure and the Event reporter.
//!
//! Why it is shaped this way:
//! - `now` is a parameter of every decision; the clock lives here so tests run the real
//!   controllers at any moment of a schedule.
//! - Kinds that need more (the tag cache and registry client of discovery, the clone directory
//!   of the Git writers, the Cluster store of ClusterUpgrade) wrap a [`Context`] and say so
//!   through [`Shared`], so the run loop and the error policy need to know only this type.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::metrics::Metrics;

/// The field manager upkeep writes as.
pub const FIELD_MANAGER: &str = "upkeep-controller";

/// The wait after a transient failure unless the context says otherwise.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(15);

/// What every reconciler gets.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    /// The clock: `Timestamp::now` in production, a fixed or scripted time in tests.
    pub now: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    /// Where reconcile counts, durations, errors and the kinds' own metrics go.
    pub metrics: Metrics,
    /// The wait after a transient failure (an API, registry or Git error).
    pub retry_after: Duration,
    /// `reportingInstance` of Events (the pod name); `None`: the controller name.
    pub instance: Option<String>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("retry_after", &self.retry_after)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// The real clock, the process-wide metrics, a retry after [`DEFAULT_RETRY_AFTER`].
    pub fn new(client: Client) -> Self {
        Context {
            client,
            now: Arc::new(Timestamp::now),
            metrics: Metrics::global().clone(),
            retry_after: DEFAULT_RETRY_AFTER,
            instance: None,
        }
    }

    #[must_use]
    pub fn with_clock(mut self, now: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.now = Arc::new(now);
        self
    }

    #[must_use]
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = wait;
        self
    }

    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    #[must_use]
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// The clock's time.
    pub fn now(&self) -> Timestamp {
        (self.now)()
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Publishes one Event about `object` (its note redacted). A failure is logged, not
    /// returned: the status already says what happened, and retrying would publish twice.
    ///
    /// A recorder per Event: the recorder's de-duplication folds Events of one object and
    /// reason into a series that keeps the first note, and each of upkeep's notes is news.
    pub async fn publish(
        &self,
        object: &k8s_openapi::api::core::v1::ObjectReference,
        warning: bool,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        let recorder = Recorder::new(
            self.client(),
            Reporter {
                controller: FIELD_MANAGER.to_owned(),
                instance: self.instance.clone(),
            },
        );
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_owned(),
            note: crate::framework::status::event_note(note),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(error) = recorder.publish(&event, object).await {
            tracing::warn!(%error, reason, "publishing an Event");
        }
    }
}

/// A reconciler's context: the shared [`Context`], perhaps with more (see the module docs).
pub trait Shared: Send + Sync + 'static {
    fn context(&self) -> &Context;
}

impl Shared for Context {
    fn context(&self) -> &Context {
        self
    }
}
