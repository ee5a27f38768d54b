//! The context every reconciler gets: the Kubernetes client, the clock, the metrics, the wait
//! after a transient failure and the Event reporter.
//!
//! Why it is shaped this way:
//! - `now` is a parameter of every decision; the clock lives here so tests run the real
//!   controllers at any moment of a schedule.
//! - Kinds that need more (the tag cache and registry client of discovery, the clone directory
//!   of the Git writers, the Cluster store of ClusterUpgrade) wrap a [`Context`] and say so
//!   through [`Shared`], so the run loop and the error policy need to know only this type.
//! - Every write says who wrote it: as [`FIELD_MANAGER`] (status patches, merge patches,
//!   creates, Events, the Lease), from a client built by [`client`] that sends the
//!   [`USER_AGENT`] `upkeep/<version>` (kube-rs sends none; the API server then records an
//!   empty manager for any write that names none, and audit logs show no program). The CLI's
//!   own writes use `upkeep-cli`, so `metadata.managedFields` tells a person's command from
//!   the controller, and a manager of plain `upkeep` (the User-Agent's program name, which
//!   the API server falls back to) would reveal a write that forgot its field manager.
//! - An invalid spec (any `Stalled` condition) is announced once per generation
//!   ([`Context::announce_stalled`]): a Warning Event and a log line when the status first
//!   records it, never on later reconciles of the same generation, nor after a restart
//!   (the status already records it), nor on the repeat a stale cache causes (remembered here).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};

use crate::metrics::Metrics;

/// The field manager the controller writes as (and its Events' `reportingController`).
pub const FIELD_MANAGER: &str = "upkeep-controller";

/// The field manager of the CLI's own writes (`upkeep freeze`, `upkeep upgrade cluster --via
/// api`, `upkeep run`'s Direct campaigns, scheduled-upgrade annotations).
pub const CLI_FIELD_MANAGER: &str = "upkeep-cli";

/// The User-Agent of every request upkeep sends to an API server.
pub const USER_AGENT: &str = concat!("upkeep/", env!("CARGO_PKG_VERSION"));

/// A client for `config` that sends [`USER_AGENT`] with every request: the only way upkeep
/// builds one (the controller and the CLI alike).
pub fn client(mut config: kube::Config) -> Result<Client, kube::Error> {
    config
        .headers
        .retain(|(name, _)| name != http::header::USER_AGENT);
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    Client::try_from(config)
}

/// The wait after a transient failure unless the context says otherwise.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(15);

/// The generation and the Stalled reason announced for an object.
type StallMark = (Option<i64>, String);

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
    /// The generation and reason last announced as stalled, per object uid (see
    /// [`Context::announce_stalled`]); shared by every clone of the context.
    stalled: Arc<Mutex<HashMap<String, StallMark>>>,
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
            stalled: Arc::default(),
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

    /// Publishes one Event about `object` (its note redacted) as [`FIELD_MANAGER`]. A failure
    /// is logged, not returned: the status already says what happened, and retrying would
    /// publish twice.
    ///
    /// Each Event is an `events.k8s.io/v1` object of its own (what kube-runtime's `Recorder`
    /// creates, without its series folding: each of upkeep's notes is news), created here
    /// because the `Recorder` sends no field manager.
    pub async fn publish(
        &self,
        object: &ObjectReference,
        warning: bool,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        let now = Timestamp::now();
        let event = Event {
            action: Some(action.to_owned()),
            reason: Some(reason.to_owned()),
            event_time: Some(MicroTime(now)),
            regarding: Some(object.clone()),
            note: crate::framework::status::event_note(note),
            metadata: ObjectMeta {
                namespace: object.namespace.clone(),
                name: Some(format!(
                    "{}.{:x}",
                    object.name.as_deref().unwrap_or(FIELD_MANAGER),
                    now.as_nanosecond()
                )),
                ..ObjectMeta::default()
            },
            reporting_controller: Some(FIELD_MANAGER.to_owned()),
            reporting_instance: Some(
                self.instance
                    .clone()
                    .unwrap_or_else(|| FIELD_MANAGER.to_owned()),
            ),
            type_: Some(if warning { "Warning" } else { "Normal" }.to_owned()),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(
            self.client(),
            object.namespace.as_deref().unwrap_or("default"),
        );
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        if let Err(error) = api.create(&params, &event).await {
            tracing::warn!(%error, reason, "publishing an Event");
        }
    }

    /// Announces a stalled object once per generation: when `wanted` (the conditions just
    /// written) has `Stalled=True` and `recorded` (the conditions the reconcile read) did not
    /// already record that reason for this generation, one Warning Event (the condition's
    /// reason and message: the field and the hint) and one log line at warn. A reconcile on a
    /// stale cached object, which cannot see the status just written, is recognised by the
    /// generation remembered per uid. Call it after the status write succeeded.
    pub async fn announce_stalled<K: kube::Resource<DynamicType = ()>>(
        &self,
        object: &K,
        recorded: &[Condition],
        wanted: &[Condition],
    ) {
        let generation = object.meta().generation;
        self.announce_stalled_ref(&object.object_ref(&()), generation, recorded, wanted)
            .await;
    }

    /// [`Context::announce_stalled`] for an object known by reference (a dynamic kind).
    pub async fn announce_stalled_ref(
        &self,
        object: &ObjectReference,
        generation: Option<i64>,
        recorded: &[Condition],
        wanted: &[Condition],
    ) {
        let uid = object.uid.clone().unwrap_or_default();
        let news = {
            let mut seen = self.stalled.lock().unwrap_or_else(PoisonError::into_inner);
            stall_news(&mut seen, &uid, generation, recorded, wanted)
        };
        let Some(now) = news else {
            return;
        };
        let name = format!(
            "{}/{}",
            object.namespace.as_deref().unwrap_or_default(),
            object.name.as_deref().unwrap_or_default()
        );
        tracing::warn!(
            kind = object.kind.as_deref().unwrap_or_default(),
            object = %name,
            generation,
            reason = %now.reason,
            message = %now.message,
            "stalled: the spec must change"
        );
        self.publish(object, true, &now.reason, "Reconcile", &now.message)
            .await;
    }
}

/// The Stalled condition of `wanted` when it is news for the object `uid` at `generation`:
/// `recorded` (the status the reconcile read) does not already hold that reason for this
/// generation (a restart, a later reconcile), and `seen` (what this process announced) does
/// not either (a reconcile on a stale cached object). Updates `seen`: an object that is no
/// longer stalled is forgotten.
fn stall_news(
    seen: &mut HashMap<String, StallMark>,
    uid: &str,
    generation: Option<i64>,
    recorded: &[Condition],
    wanted: &[Condition],
) -> Option<Condition> {
    let stalled = |cs: &[Condition]| {
        cs.iter()
            .find(|c| c.type_ == super::conditions::STALLED && c.status == "True")
            .cloned()
    };
    let Some(now) = stalled(wanted) else {
        seen.remove(uid);
        return None;
    };
    let mark = (generation, now.reason.clone());
    let announced = seen.insert(uid.to_owned(), mark.clone()).as_ref() == Some(&mark);
    let recorded = stalled(recorded)
        .is_some_and(|c| c.reason == now.reason && c.observed_generation == generation);
    (!announced && !recorded).then_some(now)
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

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn stalled(reason: &str, generation: i64) -> Vec<Condition> {
        vec![Condition {
            type_: "Stalled".into(),
            status: "True".into(),
            reason: reason.into(),
            message: format!("{reason} at {generation}"),
            observed_generation: Some(generation),
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
        }]
    }

    /// (uid, generation, recorded conditions, wanted conditions, announced, reason)
    type Case = (
        &'static str,
        i64,
        Vec<Condition>,
        Vec<Condition>,
        bool,
        &'static str,
    );

    /// One announcement per generation and reason, whatever order reconciles come in.
    #[test]
    fn a_stall_is_news_once_per_generation() {
        let mut seen = std::collections::HashMap::new();
        let none: Vec<Condition> = Vec::new();
        // (uid, generation, recorded, wanted, announced, reason)
        let cases: [Case; 9] = [
            (
                "a",
                1,
                none.clone(),
                stalled("InvalidSpec", 1),
                true,
                "first stall of generation 1",
            ),
            (
                "a",
                1,
                none.clone(),
                stalled("InvalidSpec", 1),
                false,
                "a stale cached object (no status yet): remembered",
            ),
            (
                "a",
                1,
                stalled("InvalidSpec", 1),
                stalled("InvalidSpec", 1),
                false,
                "a later reconcile",
            ),
            (
                "b",
                1,
                stalled("InvalidSpec", 1),
                stalled("InvalidSpec", 1),
                false,
                "after a restart: the status records it",
            ),
            (
                "a",
                2,
                stalled("InvalidSpec", 1),
                stalled("InvalidSpec", 2),
                true,
                "an edit that stays invalid: news",
            ),
            (
                "a",
                2,
                stalled("InvalidSpec", 2),
                stalled("Overlap", 2),
                true,
                "another reason in the same generation: news",
            ),
            (
                "a",
                3,
                stalled("Overlap", 2),
                none.clone(),
                false,
                "valid again: nothing, and forgotten",
            ),
            (
                "a",
                2,
                stalled("Overlap", 2),
                stalled("Overlap", 2),
                false,
                "a stale object of generation 2: its status records it",
            ),
            ("c", 1, none.clone(), none.clone(), false, "never stalled"),
        ];
        for (uid, generation, recorded, wanted, announced, why) in cases {
            let news = super::stall_news(&mut seen, uid, Some(generation), &recorded, &wanted);
            assert_eq!(news.is_some(), announced, "{why}");
        }
    }
}
