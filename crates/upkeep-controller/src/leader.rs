//! Leader election on a `coordination.k8s.io/v1` Lease: only the holder runs the reconcilers.
//!
//! Why it is shaped this way (and why it is correct):
//! - **Optimistic concurrency.** Every write is a create (fails with 409 if the Lease exists)
//!   or a full replace carrying the `resourceVersion` we read (fails with 409 if anyone wrote
//!   in between). Two candidates can never both succeed in taking the same version, so a
//!   takeover decided on a stale read simply fails.
//! - **No clock comparisons across machines.** A candidate never compares the record's
//!   `renewTime` with its own clock. It notes *when it first saw* each `resourceVersion`
//!   (monotonic [`Instant`]) and treats the Lease as expired only when that same version has
//!   been unchanged for `leaseDurationSeconds` of its own time (as client-go does). Clock skew
//!   between nodes therefore cannot shorten a lease.
//! - **The holder steps down first.** The holder counts its deadline from the moment it *sent*
//!   its last successful renewal, which is before the server stored it, which is before any
//!   candidate could have seen it. It stops its controllers when `renew_deadline` (10 s) has
//!   passed without a successful renewal, while a candidate waits `lease_duration` (15 s) from
//!   its sighting: the 5 s between them is the margin for stopping the controllers. Failed
//!   renewals (API server down, partition) therefore end leadership before anyone else can
//!   begin it.
//! - **Release on shutdown.** A stopping leader stops its controllers, then clears
//!   `holderIdentity`; a free Lease is taken at a candidate's next poll, not after expiry.
//! - The decisions ([`decide`], [`Sightings`], [`deadline_passed`]) are pure and table-tested;
//!   [`LeaderElector`] only does the I/O around them.
//!
//! The reconcilers run while leading via [`crate::controllers::Controllers`]; losing the Lease
//! stops them gracefully and the process campaigns again.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::time::Instant;

use crate::controllers::{Controllers, Shutdown};
use crate::framework::Context;
use crate::metrics::Metrics;
use crate::serve::Health;

/// Timing and identity of one elector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// The Lease's name.
    pub name: String,
    /// The Lease's namespace.
    pub namespace: String,
    /// Who we are (pod name, or hostname and pid).
    pub identity: String,
    /// How long a Lease stays ours after a renewal; written to `leaseDurationSeconds`.
    pub lease_duration: Duration,
    /// How often the holder renews.
    pub renew_interval: Duration,
    /// How long the holder keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// How often a candidate looks at the Lease (and how soon a failed renewal is retried).
    pub retry_period: Duration,
    /// How long stopping controllers may take before they are aborted.
    pub stop_grace: Duration,
}

/// Errors of leader election.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("invalid leader election timing: {0}")]
    Timing(String),
    #[error("reading Lease {namespace}/{name}: {source}")]
    Read {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing Lease {namespace}/{name}: {source}")]
    Write {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl LeaseError {
    /// A suggested fix, where there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Timing(_) => {
                Some("keep renew interval < renew deadline < lease duration, all above zero".into())
            }
            Self::Read {
                namespace, source, ..
            }
            | Self::Write {
                namespace, source, ..
            } => match source {
                kube::Error::Api(status) if status.code == 403 => Some(format!(
                    "grant the controller get, create and update on leases.coordination.k8s.io in namespace {namespace}"
                )),
                kube::Error::Api(status) if status.code == 404 => Some(format!(
                    "create namespace {namespace} or pass --lease-namespace"
                )),
                _ => None,
            },
        }
    }
}

impl LeaseConfig {
    /// The defaults: 15 s lease, renewed every 5 s, leadership ends 10 s after the last renewal,
    /// candidates look every 2 s.
    pub fn new(
        name: impl Into<String>,
        namespace: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(5),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            stop_grace: Duration::from_secs(3),
        }
    }

    /// Checks the ordering that makes the election safe: `renew_interval < renew_deadline <
    /// lease_duration`, a whole number of seconds for the Lease, a non-empty identity.
    pub fn validate(&self) -> Result<(), LeaseError> {
        let bad = |why: String| Err(LeaseError::Timing(why));
        if self.identity.is_empty() {
            return bad("the identity is empty".into());
        }
        if self.retry_period.is_zero() || self.renew_interval.is_zero() {
            return bad(format!(
                "retry period {:?} and renew interval {:?} must be above zero",
                self.retry_period, self.renew_interval
            ));
        }
        if self.renew_interval >= self.renew_deadline {
            return bad(format!(
                "renew interval {:?} must be shorter than the renew deadline {:?}",
                self.renew_interval, self.renew_deadline
            ));
        }
        if self.renew_deadline >= self.lease_duration {
            return bad(format!(
                "renew deadline {:?} must be shorter than the lease duration {:?}",
                self.renew_deadline, self.lease_duration
            ));
        }
        if self.lease_duration.subsec_nanos() != 0 || self.lease_duration_seconds().is_none() {
            return bad(format!(
                "lease duration {:?} must be a whole number of seconds",
                self.lease_duration
            ));
        }
        Ok(())
    }

    fn lease_duration_seconds(&self) -> Option<i32> {
        i32::try_from(self.lease_duration.as_secs())
            .ok()
            .filter(|s| *s > 0)
    }
}

/// What the elector should do with the Lease as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// There is no Lease: create it, held by us.
    Create,
    /// We hold it: renew.
    Renew,
    /// It is free or expired: take it, counting one more transition.
    Acquire { transitions: i32 },
    /// Someone else holds a live Lease; it expires after `remaining` more unchanged time.
    Follow { holder: String, remaining: Duration },
}

/// The part of a Lease the decision reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub holder: Option<String>,
    pub lease_duration_seconds: Option<i32>,
    pub transitions: Option<i32>,
    pub resource_version: Option<String>,
}

impl Record {
    /// Reads a Lease.
    pub fn of(lease: &Lease) -> Self {
        let spec = lease.spec.as_ref();
        Self {
            holder: spec.and_then(|s| s.holder_identity.clone()),
            lease_duration_seconds: spec.and_then(|s| s.lease_duration_seconds),
            transitions: spec.and_then(|s| s.lease_transitions),
            resource_version: lease.metadata.resource_version.clone(),
        }
    }
}

/// Decides what to do with `record` (`None`: no Lease), when this version of it has been
/// unchanged for `unchanged_for` of our own time. `fallback` is used when the record carries no
/// usable duration.
pub fn decide(
    record: Option<&Record>,
    me: &str,
    unchanged_for: Duration,
    fallback: Duration,
) -> Step {
    let Some(record) = record else {
        return Step::Create;
    };
    let next_transitions = record.transitions.unwrap_or(0).saturating_add(1);
    match record.holder.as_deref() {
        Some(holder) if holder == me => Step::Renew,
        None | Some("") => Step::Acquire {
            transitions: next_transitions,
        },
        Some(holder) => {
            let duration = record
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .filter(|s| *s > 0)
                .map_or(fallback, Duration::from_secs);
            if unchanged_for >= duration {
                Step::Acquire {
                    transitions: next_transitions,
                }
            } else {
                Step::Follow {
                    holder: holder.to_owned(),
                    remaining: duration.saturating_sub(unchanged_for),
                }
            }
        }
    }
}

/// When we first saw the current version of the Lease (our monotonic clock only).
#[derive(Debug, Clone, Default)]
pub struct Sightings {
    last: Option<(Option<String>, Instant)>,
}

impl Sightings {
    /// Notes that `version` was read at `now`; returns how long this version has been seen
    /// unchanged. A new version (a renewal, a takeover, a release, a deletion) restarts the
    /// count at zero.
    pub fn observe(&mut self, version: Option<&str>, now: Instant) -> Duration {
        match &self.last {
            Some((seen, since)) if seen.as_deref() == version => {
                now.saturating_duration_since(*since)
            }
            _ => {
                self.last = Some((version.map(str::to_owned), now));
                Duration::ZERO
            }
        }
    }
}

/// Whether a holder whose last successful renewal was *sent* at `last_renew_sent` must stop
/// leading at `now`.
pub fn deadline_passed(last_renew_sent: Instant, now: Instant, renew_deadline: Duration) -> bool {
    now.saturating_duration_since(last_renew_sent) >= renew_deadline
}

/// The result of one look at the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the Lease (created, acquired or renewed just now).
    Leading,
    /// Someone else holds it.
    Following { holder: String, remaining: Duration },
    /// Someone wrote between our read and our write; look again.
    Conflict,
}

/// Why a term of leadership ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TermEnd {
    Shutdown,
    Lost(String),
    DeadlinePassed,
    ControllerExited(&'static str),
}

/// Campaigns for the Lease and runs the controllers while holding it.
#[derive(Debug)]
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    sightings: Sightings,
}

impl LeaderElector {
    /// An elector for `config.namespace/config.name`.
    pub fn new(client: kube::Client, config: LeaseConfig) -> Result<Self, LeaseError> {
        config.validate()?;
        Ok(Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            sightings: Sightings::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// One look at the Lease: read it, decide, and write if the decision says so.
    pub async fn try_acquire_or_renew(&mut self) -> Result<Attempt, LeaseError> {
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|source| LeaseError::Read {
                namespace: self.config.namespace.clone(),
                name: self.config.name.clone(),
                source,
            })?;
        let record = current.as_ref().map(Record::of);
        let version = record.as_ref().and_then(|r| r.resource_version.as_deref());
        let unchanged_for = self.sightings.observe(version, Instant::now());
        let step = decide(
            record.as_ref(),
            &self.config.identity,
            unchanged_for,
            self.config.lease_duration,
        );
        let now = MicroTime(Timestamp::now());
        let duration = self.config.lease_duration_seconds();
        let result = match (step, current) {
            (Step::Follow { holder, remaining }, _) => {
                return Ok(Attempt::Following { holder, remaining });
            }
            (Step::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.config.identity.clone()),
                        lease_duration_seconds: duration,
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                self.api.create(&write_params(), &lease).await
            }
            (Step::Renew, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                spec.renew_time = Some(now);
                spec.lease_duration_seconds = duration;
                self.replace(&lease).await
            }
            (Step::Acquire { transitions }, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                spec.holder_identity = Some(self.config.identity.clone());
                spec.acquire_time = Some(now.clone());
                spec.renew_time = Some(now);
                spec.lease_duration_seconds = duration;
                spec.lease_transitions = Some(transitions);
                self.replace(&lease).await
            }
            // `decide` returns Renew/Acquire only for an existing Lease.
            (Step::Renew | Step::Acquire { .. }, None) => return Ok(Attempt::Conflict),
        };
        match result {
            Ok(_) => Ok(Attempt::Leading),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Conflict),
            Err(source) => Err(self.write_error(source)),
        }
    }

    /// Gives the Lease up if we hold it: clears the holder so a candidate takes it at once.
    pub async fn release(&mut self) -> Result<bool, LeaseError> {
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|source| LeaseError::Read {
                namespace: self.config.namespace.clone(),
                name: self.config.name.clone(),
                source,
            })?;
        let Some(mut lease) = current else {
            return Ok(false);
        };
        if Record::of(&lease).holder.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(false);
        }
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = None;
        spec.acquire_time = None;
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        spec.lease_duration_seconds = Some(1);
        match self.replace(&lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(source) => Err(self.write_error(source)),
        }
    }

    async fn replace(&self, lease: &Lease) -> Result<Lease, kube::Error> {
        // `lease` carries the resourceVersion we read: the server rejects the write with 409
        // if the Lease changed since.
        self.api
            .replace(&self.config.name, &write_params(), lease)
            .await
    }

    fn write_error(&self, source: kube::Error) -> LeaseError {
        LeaseError::Write {
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            source,
        }
    }

    /// Campaigns, runs `controllers` while leading, and campaigns again after losing the Lease,
    /// until `shutdown` fires; then stops the controllers and releases the Lease.
    pub async fn run(
        mut self,
        ctx: Arc<Context>,
        controllers: &Controllers,
        metrics: &Metrics,
        health: &Health,
        shutdown: Shutdown,
    ) {
        let identity = self.config.identity.clone();
        loop {
            let Some(acquired_at) = self.campaign(&shutdown).await else {
                return;
            };
            tracing::info!(%identity, lease = %self.config.name, "leading: starting controllers");
            metrics.set_leader(true);
            health.set_leader(true);
            let mut running = controllers.start(&ctx);
            health.set_controllers_running(true);
            let end = self.lead(acquired_at, &mut running, &shutdown).await;
            health.set_controllers_running(false);
            running.stop(self.config.stop_grace).await;
            metrics.set_leader(false);
            health.set_leader(false);
            match &end {
                TermEnd::Shutdown => {
                    tracing::info!(%identity, "shutting down: controllers stopped");
                }
                TermEnd::Lost(holder) => {
                    tracing::warn!(%identity, %holder, "lost the Lease: controllers stopped");
                }
                TermEnd::DeadlinePassed => tracing::warn!(
                    %identity,
                    deadline = ?self.config.renew_deadline,
                    "could not renew the Lease in time: controllers stopped"
                ),
                TermEnd::ControllerExited(kind) => {
                    tracing::error!(%identity, kind, "a controller ended on its own: stepping down");
                }
            }
            if matches!(end, TermEnd::Shutdown | TermEnd::ControllerExited(_)) {
                self.release_bounded().await;
            }
            if end == TermEnd::Shutdown {
                return;
            }
        }
    }

    /// Looks at the Lease every retry period until we lead (returns when the winning write was
    /// sent) or `shutdown` fires (returns `None`).
    async fn campaign(&mut self, shutdown: &Shutdown) -> Option<Instant> {
        let mut last_holder: Option<String> = None;
        loop {
            if shutdown.is_triggered() {
                return None;
            }
            let sent = Instant::now();
            let wait = match self.try_acquire_or_renew().await {
                Ok(Attempt::Leading) => return Some(sent),
                Ok(Attempt::Following { holder, remaining }) => {
                    if last_holder.as_ref() != Some(&holder) {
                        tracing::info!(%holder, "following the current leader");
                        last_holder = Some(holder);
                    }
                    // A live Lease cannot be ours before it expires, unless it is released.
                    remaining.min(self.config.retry_period)
                }
                Ok(Attempt::Conflict) => Duration::ZERO,
                Err(error) => {
                    tracing::warn!(%error, hint = error.hint().unwrap_or_default(), "leader election");
                    self.config.retry_period
                }
            };
            let wait = wait.max(Duration::from_millis(50));
            tokio::select! {
                () = shutdown.wait() => return None,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Renews until the Lease is lost, a renewal deadline passes, a controller ends, or
    /// `shutdown` fires.
    async fn lead(
        &mut self,
        mut last_renew_sent: Instant,
        running: &mut crate::controllers::Running,
        shutdown: &Shutdown,
    ) -> TermEnd {
        let mut next = last_renew_sent + self.config.renew_interval;
        loop {
            tokio::select! {
                () = shutdown.wait() => return TermEnd::Shutdown,
                kind = running.any_exited() => return TermEnd::ControllerExited(kind),
                () = tokio::time::sleep_until(next) => {}
            }
            let deadline = last_renew_sent + self.config.renew_deadline;
            let sent = Instant::now();
            let attempt = tokio::select! {
                () = shutdown.wait() => return TermEnd::Shutdown,
                attempt = tokio::time::timeout_at(deadline, self.try_acquire_or_renew()) => attempt,
            };
            match attempt {
                Ok(Ok(Attempt::Leading)) => {
                    last_renew_sent = sent;
                    next = sent + self.config.renew_interval;
                }
                Ok(Ok(Attempt::Following { holder, .. })) => return TermEnd::Lost(holder),
                Ok(Ok(Attempt::Conflict)) => next = Instant::now(),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "renewing the Lease failed; retrying");
                    next = (Instant::now() + self.config.retry_period).min(deadline);
                }
                Err(_elapsed) => {}
            }
            if deadline_passed(last_renew_sent, Instant::now(), self.config.renew_deadline) {
                return TermEnd::DeadlinePassed;
            }
        }
    }

    async fn release_bounded(&mut self) {
        let timeout = self.config.retry_period.max(Duration::from_secs(2));
        match tokio::time::timeout(timeout, self.release()).await {
            Ok(Ok(true)) => tracing::info!(identity = %self.config.identity, "released the Lease"),
            Ok(Ok(false)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "releasing the Lease failed; it will expire"),
            Err(_) => tracing::warn!("releasing the Lease timed out; it will expire"),
        }
    }
}

/// This process's identity: `$POD_NAME`, else `<hostname>-<pid>`.
pub fn default_identity() -> String {
    identity_from(
        std::env::var("POD_NAME").ok(),
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok()),
        std::process::id(),
    )
}

/// [`default_identity`] from its inputs.
pub fn identity_from(pod_name: Option<String>, hostname: Option<String>, pid: u32) -> String {
    if let Some(pod) = pod_name
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
    {
        return pod;
    }
    let host = hostname
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "upkeep".to_owned());
    format!("{host}-{pid}")
}

/// Lease writes as the controller's field manager.
fn write_params() -> PostParams {
    PostParams {
        field_manager: Some(crate::framework::FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
}

#[cfg(test)]
mod tests {
    // Table rows are tuples of (input, expected, reason).
    #![allow(clippy::type_complexity)]

    use super::*;

    fn record(holder: Option<&str>, duration: Option<i32>, transitions: Option<i32>) -> Record {
        Record {
            holder: holder.map(str::to_owned),
            lease_duration_seconds: duration,
            transitions,
            resource_version: Some("7".into()),
        }
    }

    #[test]
    fn decisions() {
        let s = Duration::from_secs;
        let fallback = s(15);
        let cases: &[(Option<Record>, Duration, Step, &str)] = &[
            (
                None,
                s(0),
                Step::Create,
                "no Lease yet: create it held by us",
            ),
            (
                Some(record(Some("me"), Some(15), Some(3))),
                s(100),
                Step::Renew,
                "ours, however long unchanged: renew (the RV precondition keeps it safe)",
            ),
            (
                Some(record(None, Some(1), Some(3))),
                s(0),
                Step::Acquire { transitions: 4 },
                "released (no holder): take it at once, one more transition",
            ),
            (
                Some(record(Some(""), Some(15), None)),
                s(0),
                Step::Acquire { transitions: 1 },
                "empty holder counts as released; missing transitions count as 0",
            ),
            (
                Some(record(Some("other"), Some(15), Some(1))),
                s(0),
                Step::Follow {
                    holder: "other".into(),
                    remaining: s(15),
                },
                "just seen: the full duration remains",
            ),
            (
                Some(record(Some("other"), Some(15), Some(1))),
                s(14),
                Step::Follow {
                    holder: "other".into(),
                    remaining: s(1),
                },
                "one second before expiry: still follow",
            ),
            (
                Some(record(Some("other"), Some(15), Some(1))),
                s(15),
                Step::Acquire { transitions: 2 },
                "unchanged for exactly the duration: expired",
            ),
            (
                Some(record(Some("other"), None, Some(1))),
                s(10),
                Step::Follow {
                    holder: "other".into(),
                    remaining: s(5),
                },
                "no duration in the record: our own duration applies",
            ),
            (
                Some(record(Some("other"), Some(-4), Some(1))),
                s(15),
                Step::Acquire { transitions: 2 },
                "a nonsensical negative duration falls back to ours",
            ),
            (
                Some(record(Some("other"), Some(60), Some(1))),
                s(30),
                Step::Follow {
                    holder: "other".into(),
                    remaining: s(30),
                },
                "the holder's longer declared duration is respected",
            ),
            (
                Some(record(Some("other"), Some(15), Some(i32::MAX))),
                s(20),
                Step::Acquire {
                    transitions: i32::MAX,
                },
                "transitions saturate instead of overflowing",
            ),
        ];
        for (record, unchanged_for, want, why) in cases {
            assert_eq!(
                decide(record.as_ref(), "me", *unchanged_for, fallback),
                *want,
                "{why}"
            );
        }
    }

    #[test]
    fn sightings_count_from_the_first_look_at_a_version() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // (version read, at seconds after t0, unchanged for, why)
        let script: &[(Option<&str>, u64, Duration, &str)] = &[
            (Some("1"), 0, s(0), "first look: nothing known yet"),
            (Some("1"), 5, s(5), "same version 5 s later"),
            (
                Some("1"),
                9,
                s(9),
                "the count is from the first sighting, not the last",
            ),
            (
                Some("2"),
                10,
                s(0),
                "a renewal (new version) restarts the count",
            ),
            (Some("2"), 26, s(16), "unchanged since 10 s"),
            (None, 27, s(0), "the Lease was deleted: a change"),
            (None, 28, s(1), "still absent"),
            (
                Some("2"),
                29,
                s(0),
                "a version seen before, but not just before: a change",
            ),
        ];
        let mut sightings = Sightings::default();
        for (version, at, want, why) in script {
            assert_eq!(sightings.observe(*version, t0 + s(*at)), *want, "{why}");
        }
    }

    #[test]
    fn the_holder_stops_before_a_candidate_may_start() {
        let config = LeaseConfig::new("l", "ns", "me");
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // A renewal sent at t0 reaches the server at t0 + latency; a candidate sees it no
        // earlier than that and waits the lease duration from its sighting.
        let cases: &[(Duration, Duration, &str)] = &[
            (
                ms(0),
                ms(0),
                "instant network: the candidate sees the renewal at once",
            ),
            (ms(2_000), ms(0), "slow write, immediate sighting"),
            (
                ms(0),
                ms(1_999),
                "the candidate polls just before its next retry",
            ),
            (
                ms(9_999),
                ms(0),
                "a renewal that took almost the whole deadline",
            ),
        ];
        for (latency, sighting_delay, why) in cases {
            let seen = t0 + *latency + *sighting_delay;
            let candidate_may_take = seen + config.lease_duration;
            let holder_stops = t0 + config.renew_deadline;
            assert!(
                deadline_passed(t0, holder_stops, config.renew_deadline),
                "{why}"
            );
            assert!(
                !deadline_passed(t0, holder_stops - ms(1), config.renew_deadline),
                "{why}: leads until the deadline"
            );
            assert!(
                candidate_may_take >= holder_stops + config.stop_grace,
                "{why}: the holder has stopped its controllers ({:?} grace) before a candidate may take over",
                config.stop_grace
            );
        }
    }

    #[test]
    fn timing_is_validated() {
        let base = LeaseConfig::new("l", "ns", "me");
        let cases: &[(fn(&mut LeaseConfig), bool, &str)] = &[
            (|_| {}, true, "the defaults are valid"),
            (
                |c| c.identity.clear(),
                false,
                "an empty identity could match a released Lease",
            ),
            (
                |c| c.renew_interval = Duration::from_secs(10),
                false,
                "renewing only at the deadline is too late",
            ),
            (
                |c| c.renew_deadline = Duration::from_secs(15),
                false,
                "the deadline must leave a margin before expiry",
            ),
            (
                |c| c.retry_period = Duration::ZERO,
                false,
                "a zero retry period spins",
            ),
            (
                |c| c.lease_duration = Duration::from_millis(15_500),
                false,
                "leaseDurationSeconds is whole seconds",
            ),
            (
                |c| {
                    c.lease_duration = Duration::from_secs(3);
                    c.renew_deadline = Duration::from_secs(2);
                    c.renew_interval = Duration::from_millis(500);
                    c.retry_period = Duration::from_millis(200);
                },
                true,
                "short timings for tests are fine when ordered",
            ),
        ];
        for (change, valid, why) in cases {
            let mut config = base.clone();
            change(&mut config);
            assert_eq!(config.validate().is_ok(), *valid, "{why}");
        }
    }

    #[test]
    fn identities() {
        let some = |s: &str| Some(s.to_owned());
        let cases = [
            (
                some("upkeep-7d9f-abc"),
                some("node1"),
                "upkeep-7d9f-abc",
                "the pod name wins",
            ),
            (
                some("  "),
                some("node1\n"),
                "node1-42",
                "blank pod name: hostname (trimmed) and pid",
            ),
            (
                None,
                None,
                "upkeep-42",
                "nothing known: a fixed prefix and the pid",
            ),
        ];
        for (pod, host, want, why) in cases {
            assert_eq!(identity_from(pod, host, 42), want, "{why}");
        }
    }
}
