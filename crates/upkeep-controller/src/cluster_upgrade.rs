//! ClusterUpgrade: one upgrade campaign over Cluster API `Cluster` objects, driven by the pure
//! rollout core (`upkeep_core::rollout::plan`).
//!
//! Why it is shaped this way:
//! - The reconciler only gathers a snapshot (the Clusters of the upgrade's namespace from a
//!   watch-fed store, the MaintenanceSchedules, the `after` upgrades' status, the `releaseRef`
//!   VersionPolicy's `latestVersion`, **now** from the context clock), asks the core for a
//!   [`Plan`], and carries it out. Every decision — order, stages, soak, concurrency, windows,
//!   freezes, timeouts, success and failure — is the core's.
//! - **Record before act.** Every cluster the core says to start is first written to status as
//!   `Triggered` (with `triggeredAt`), and only then is the cluster patched. A controller that
//!   dies in between finds `Triggered` on restart; the core then says `Triggered` again and the
//!   same idempotent patch is applied (a cluster already showing the target is not patched at
//!   all), so a restart never makes a second, different change.
//! - The patch is a JSON merge patch carrying the `metadata.resourceVersion` the decision was
//!   made on: a cluster changed meanwhile answers 409 and the upgrade is looked at again soon,
//!   with the fresh object.
//! - Clusters are read as `DynamicObject`s (`cluster.x-k8s.io/v1beta1`) and converted once by
//!   `upkeep_api::ClusterObject`, leniently: upkeep does not own that kind.
//! - Side effects that are not the upgrade itself (Alertmanager silences, announcement
//!   webhooks) never block an upgrade: a failure is logged and retried on the next reconcile.
//!   Silences are found again by their matchers before one is created, so a restart never
//!   stacks a second silence.
//! - `trigger: GitOps` acts through the repository instead of the API server: the clusters to
//!   start (and those still `Triggered`) are written as one commit per reconcile by the shared
//!   GitOps write loop (see `cluster_gitops.rs`); re-applying is `UpToDate`, so record-before-act
//!   holds the same way. The commit and the pull request are recorded in status.
//! - An invalid spec (including `trigger: GitOps` without `gitOps`) is `Stalled` and waits for
//!   a change.
//! - Only spec changes of a ClusterUpgrade start a reconcile by themselves (the status this
//!   controller writes must not); Cluster, MaintenanceSchedule, VersionPolicy and `after`
//!   ClusterUpgrade changes are mapped to the upgrades they concern; while anything is
//!   Triggered or Upgrading the upgrade is also looked at every [`Upgrades::poll`], and
//!   otherwise exactly at the plan's `next_check`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, predicates, watcher};
use kube::{Resource, ResourceExt};
use upkeep_api::cluster_upgrade::{ClusterState, ClusterUpgradeStatus, Trigger, VersionSource};
use upkeep_api::{ClusterObject, ClusterUpgrade, MaintenanceSchedule, VersionPolicy};
use upkeep_core::rollout::{self, CampaignState, ClusterInput, ClusterPhase, Plan, Step};
use upkeep_core::schedule::Schedule;
use upkeep_core::selector::{ClusterLabels, LabelSelector};
use upkeep_core::version::Version;
use upkeep_git::clusters::ClusterTarget;

use crate::alerts::{Alertmanager, Webhook};
use crate::conditions::{Outcome, RECONCILING, STALLED, with_outcome};
use crate::metrics::Metrics;
use crate::reconcile::{Context, FIELD_MANAGER, until};

/// Event reason: a cluster's upgrade was started.
pub const UPGRADE_TRIGGERED: &str = "UpgradeTriggered";
/// Event reason: a cluster's upgrade succeeded.
pub const UPGRADE_SUCCEEDED: &str = "UpgradeSucceeded";
/// Event reason: a cluster's upgrade failed.
pub const UPGRADE_FAILED: &str = "UpgradeFailed";
/// Event reason: a cluster's upgrade was announced.
pub const UPGRADE_ANNOUNCED: &str = "UpgradeAnnounced";
/// Event reason: a GitOps write (commit, push or pull request) failed; retried with backoff.
pub const GITOPS_FAILED: &str = "GitOpsFailed";
/// Cluster patches in flight per reconcile.
const PATCHES_IN_FLIGHT: usize = 8;
/// ClusterUpgrades reconciled at once: each plans over all of its clusters and holds their
/// converted form while it acts, so a few at a time keep memory flat while the patches inside
/// each go out in parallel.
const UPGRADE_CONCURRENCY: u16 = 4;

/// Silences outlive the upgrade's timeout by this much.
pub const SILENCE_GRACE: SignedDuration = SignedDuration::from_mins(15);
/// `createdBy` of the silences this controller makes.
pub const SILENCE_CREATED_BY: &str = "upkeep-controller";

/// The longest requeue.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The Cluster API kind the controller watches and patches.
pub fn cluster_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        upkeep_api::cluster::CLUSTER_API_GROUP,
        "v1beta1",
        "Cluster",
    ))
}

/// `(namespace, name)` of a ClusterUpgrade.
type UpgradeKey = (String, String);
/// Waiting clusters by `WaitReason` name.
type WaitingCounts = BTreeMap<&'static str, i64>;

/// Where silences are made: the Alertmanager and the label that names a cluster in alerts.
#[derive(Debug, Clone)]
pub struct Silences {
    pub alertmanager: Alertmanager,
    /// The alert label matched against the cluster name (e.g. `cluster_id`).
    pub label: String,
}

/// The ClusterUpgrade controller's settings and shared state.
pub struct Upgrades {
    pub ctx: Arc<Context>,
    /// Silence alerts of clusters while they upgrade (`--alertmanager-url`).
    pub silences: Option<Silences>,
    /// Posts announcements to `spec.announce.webhookUrl`; `None`: Events only.
    pub webhook: Option<Webhook>,
    /// Where the version is read and written when the spec does not say.
    pub default_version_source: VersionSource,
    /// Look again this often while a cluster is Triggered or Upgrading.
    pub poll: Duration,
    /// Look again this soon after a 409 on a cluster patch.
    pub conflict_retry: Duration,
    /// The wait after a transient failure.
    pub retry_after: Duration,
    /// `reportingInstance` of Events (the pod name); `None`: the controller name.
    pub instance: Option<String>,
    pub metrics: Metrics,
    /// Where `trigger: GitOps` clones live (`<dir>/<namespace>/<name>`).
    pub workdir: std::path::PathBuf,
    /// Waiting clusters per upgrade, by reason (summed into `upkeep_clusters_waiting`).
    waiting: Mutex<HashMap<UpgradeKey, WaitingCounts>>,
}

impl std::fmt::Debug for Upgrades {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgrades")
            .field("silences", &self.silences)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

impl Upgrades {
    /// Defaults: no silences, no webhook client, the label as version place, a 5 s poll while
    /// upgrading, 2 s after a conflict, 15 s after a failure, the global metrics.
    pub fn new(ctx: Arc<Context>) -> Self {
        Upgrades {
            ctx,
            silences: None,
            webhook: None,
            default_version_source: VersionSource::Label,
            poll: Duration::from_secs(5),
            conflict_retry: Duration::from_secs(2),
            retry_after: Duration::from_secs(15),
            instance: None,
            metrics: Metrics::global().clone(),
            workdir: std::env::temp_dir().join("upkeep-cluster-upgrades"),
            waiting: Mutex::default(),
        }
    }

    #[must_use]
    pub fn with_silences(mut self, silences: Silences) -> Self {
        self.silences = Some(silences);
        self
    }

    #[must_use]
    pub fn with_webhook(mut self, webhook: Webhook) -> Self {
        self.webhook = Some(webhook);
        self
    }

    #[must_use]
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
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

    /// Where `trigger: GitOps` keeps its clones (default: `$TMPDIR/upkeep-cluster-upgrades`).
    #[must_use]
    pub fn with_workdir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.workdir = dir.into();
        self
    }

    #[must_use]
    pub fn with_default_version_source(mut self, source: VersionSource) -> Self {
        self.default_version_source = source;
        self
    }

    fn now(&self) -> Timestamp {
        (self.ctx.now)()
    }

    fn client(&self) -> kube::Client {
        self.ctx.client.clone()
    }

    /// Replaces one upgrade's waiting counts and republishes the sums.
    fn set_waiting(&self, key: (String, String), counts: BTreeMap<&'static str, i64>) {
        let Ok(mut all) = self.waiting.lock() else {
            return;
        };
        let mut reasons: BTreeMap<&'static str, i64> = all
            .values()
            .flat_map(|m| m.keys().map(|k| (*k, 0)))
            .collect();
        all.insert(key, counts);
        for m in all.values() {
            for (reason, n) in m {
                *reasons.entry(reason).or_default() += n;
            }
        }
        for (reason, n) in reasons {
            self.metrics.set_clusters_waiting(reason, n);
        }
    }
}

/// What a reconcile gets: the settings and the store of Clusters the controller watches.
pub struct Shell {
    pub upgrades: Arc<Upgrades>,
    pub clusters: Store<DynamicObject>,
    /// Set once the Cluster store has been listed. Reconciles wait on this, not on
    /// `Store::wait_until_ready` directly: that future wakes only the last of several
    /// concurrent waiters (a oneshot receiver keeps one waker), so with several ClusterUpgrades
    /// at start-up all but one would wait forever.
    clusters_ready: tokio::sync::OnceCell<()>,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell").finish_non_exhaustive()
    }
}

/// A failure the controller backs off from. Variant names are stable (metric labels).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {kind} {namespace}/{name}: {source}")]
    Read {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the status of ClusterUpgrade {namespace}/{name}: {source}")]
    WriteStatus {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("patching the version of Cluster {namespace}/{cluster} to {target}: {source}")]
    PatchCluster {
        namespace: String,
        cluster: String,
        target: String,
        #[source]
        source: kube::Error,
    },
    /// `trigger: GitOps`: the repository write or the pull request failed (`reason`: the
    /// kind, e.g. `NotFound` for a cluster missing from the repository, `GitError`).
    #[error("GitOps: {message}")]
    GitOps {
        reason: &'static str,
        message: String,
    },
    #[error("the Cluster watch stopped")]
    ClustersNotWatched,
    #[error("serialising a status: {0}")]
    Serialise(#[from] serde_json::Error),
}

impl crate::metrics::ErrorLabel for Error {}

/// Transient errors back off for [`Upgrades::retry_after`].
#[allow(clippy::needless_pass_by_value)] // the signature `Controller::run` expects
pub fn error_policy(_object: Arc<ClusterUpgrade>, error: &Error, s: Arc<Shell>) -> Action {
    tracing::warn!(%error, "ClusterUpgrade reconcile failed; retrying");
    Action::requeue(s.upgrades.retry_after)
}

/// A MaintenanceSchedule as the reconcile uses it.
struct NamedSchedule {
    name: String,
    schedule: Schedule,
    selector: Option<LabelSelector>,
}

/// One cluster transition worth an Event.
struct Note {
    reason: &'static str,
    warning: bool,
    text: String,
}

/// Reconciles one ClusterUpgrade (see the module docs for the order of things).
pub async fn reconcile_upgrade(
    object: Arc<ClusterUpgrade>,
    s: Arc<Shell>,
) -> Result<Action, Error> {
    let u = &s.upgrades;
    let now = u.now();
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let before = object.status.clone().unwrap_or_default();
    tracing::debug!(upgrade = %format!("{namespace}/{name}"), "reconciling");

    if let Err(errors) = object.validate() {
        let message = crate::discovery::spec_message(&errors);
        stall(u, &object, &before, "InvalidSpec", &message, now).await?;
        return Ok(Action::await_change());
    }

    // The snapshot.
    s.clusters_ready
        .get_or_try_init(|| async {
            s.clusters
                .wait_until_ready()
                .await
                .map_err(|_| Error::ClustersNotWatched)
        })
        .await?;
    let schedules = schedules(u, &namespace).await?;
    if let Some(r) = &object.spec.maintenance_schedule_ref
        && !schedules.iter().any(|x| x.name == r.name)
    {
        let message = format!(
            "MaintenanceSchedule {namespace}/{} is missing or invalid; nothing starts until it is usable",
            r.name
        );
        not_ready(u, &object, &before, "ScheduleNotFound", &message, now).await?;
        return Ok(Action::requeue(u.retry_after));
    }
    let (release, release_raw) = release(u, &object, &namespace).await?;
    let mut after = HashMap::new();
    for dep in &object.spec.after {
        after.insert(
            dep.name.clone(),
            finished_of(u, &namespace, &dep.name).await?,
        );
    }
    let campaign = match object.to_campaign(release, |n| after.get(n).copied().flatten()) {
        Ok(c) => c,
        Err(errors) => {
            let message = crate::discovery::spec_message(&errors);
            stall(u, &object, &before, "InvalidSpec", &message, now).await?;
            return Ok(Action::await_change());
        }
    };
    // Only the clusters this upgrade selects, or has already touched, are converted: a
    // namespace may hold thousands that other upgrades are about.
    let no_labels = BTreeMap::new();
    let mut clusters: Vec<ClusterObject> = s
        .clusters
        .state()
        .iter()
        .filter(|c| c.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter(|c| {
            let name = c.metadata.name.as_deref().unwrap_or_default();
            let labels = ClusterLabels {
                name,
                labels: c.metadata.labels.as_ref().unwrap_or(&no_labels),
            };
            campaign.matchers.matches(labels) || before.cluster(name).is_some()
        })
        .filter_map(|c| ClusterObject::from_parts(&c.metadata, &c.data).ok())
        .collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    let target_raw = object
        .spec
        .target_version
        .as_deref()
        .map(|t| t.trim().to_owned())
        .or(release_raw);
    let source = object
        .spec
        .version_source
        .unwrap_or(u.default_version_source);
    let inputs: Vec<ClusterInput<'_>> = clusters
        .iter()
        .map(|c| ClusterInput {
            name: c.name.clone(),
            labels: c.labels.clone(),
            current: c.version_at(Some(source)).map(ToOwned::to_owned),
            freeze: c.rollout_freeze(),
            schedule: governing(&object, &schedules, c).map(|x| (x.name.as_str(), &x.schedule)),
            observed: c.status.observed(),
            progress: before.cluster(&c.name).and_then(ClusterState::progress),
        })
        .collect();
    let plan = rollout::plan(&campaign, &inputs, now);
    tracing::debug!(upgrade = %format!("{namespace}/{name}"), state = plan.state.as_str(), "planned");

    // Announcements first: they are only recorded when they went out.
    let mut announced = Vec::new();
    for cp in plan.clusters.iter().filter(|cp| cp.announce) {
        if announce(u, &object, cp, target_raw.as_deref()).await {
            announced.push(cp.name.clone());
        }
    }

    let mut wanted = desired_status(
        &object,
        &before,
        &plan,
        target_raw.as_deref(),
        &announced,
        now,
    );

    // Record before act.
    let starting = plan.clusters.iter().any(|cp| cp.step == Step::Trigger);
    if starting {
        write_status(u, &object, &before, &wanted).await?;
    }
    let recorded = if starting {
        wanted.clone()
    } else {
        before.clone()
    };

    // Act: silences first (alerts are muted before the cluster moves), then the patches.
    let mut conflict = false;
    let mut failed_patch = None;
    let gitops = object.spec.trigger == Trigger::GitOps;
    let mut to_commit = Vec::new();
    let mut to_patch = Vec::new();
    for cp in &plan.clusters {
        if !matches!(cp.step, Step::Trigger | Step::Triggered | Step::Upgrading) {
            continue;
        }
        if let Some(entry) = wanted.clusters.iter_mut().find(|e| e.name == cp.name) {
            ensure_silence(u, &namespace, &name, entry, campaign.timeout, now).await;
        }
        if !matches!(cp.step, Step::Trigger | Step::Triggered) {
            continue;
        }
        let (Some(cluster), Some(target)) = (
            clusters.iter().find(|c| c.name == cp.name),
            target_raw.as_deref(),
        ) else {
            continue;
        };
        if shows(cluster.version_at(Some(source)), target) {
            continue;
        }
        if gitops {
            to_commit.push(ClusterTarget {
                namespace: cluster
                    .namespace
                    .clone()
                    .or_else(|| Some(namespace.clone())),
                name: cluster.name.clone(),
                version: target.to_owned(),
            });
            continue;
        }
        to_patch.push((cluster, target));
    }
    // Direct patches go out PATCHES_IN_FLIGHT at a time: a window opening over hundreds of
    // clusters should not wait for each round trip in turn.
    let mut pending = to_patch.into_iter();
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    let mut results = Vec::new();
    loop {
        while in_flight.len() < PATCHES_IN_FLIGHT {
            let Some((cluster, target)) = pending.next() else {
                break;
            };
            in_flight.push(patch_named(u, &namespace, cluster, source, target));
        }
        match in_flight.next().await {
            Some(r) => results.push(r),
            None => break,
        }
    }
    for (cluster, result) in results {
        match result {
            Ok(()) => {}
            Err(Error::PatchCluster {
                source: kube::Error::Api(s),
                ..
            }) if s.is_conflict() => {
                tracing::info!(%cluster, "cluster changed since the decision; looking again");
                conflict = true;
            }
            Err(e) => {
                failed_patch.get_or_insert(e);
            }
        }
    }
    if !to_commit.is_empty() {
        match crate::cluster_gitops::write(u, &object, to_commit, source).await {
            Ok(run) => {
                u.metrics.record_push(if run.commit.is_some() {
                    "pushed"
                } else {
                    "up_to_date"
                });
                if run.commit.is_some() {
                    wanted.last_push_commit = run.commit;
                }
                if run.pull_request.is_some() {
                    wanted.pull_request = run.pull_request;
                }
            }
            Err(e) => {
                u.metrics.record_push("error");
                let note = Note {
                    reason: GITOPS_FAILED,
                    warning: true,
                    text: e.to_string(),
                };
                publish(u, &object, &note).await;
                failed_patch.get_or_insert(e);
            }
        }
    }
    for entry in &mut wanted.clusters {
        let was_terminal = before
            .cluster(&entry.name)
            .and_then(ClusterState::progress)
            .is_some_and(|p| p.state.is_terminal());
        let terminal = entry
            .state
            .as_deref()
            .and_then(ClusterPhase::parse)
            .is_some_and(ClusterPhase::is_terminal);
        if terminal && !was_terminal {
            expire_silence(u, entry).await;
        }
    }
    write_status(u, &object, &recorded, &wanted).await?;

    // Events and metrics for what changed.
    for note in transitions(&before, &wanted, &plan) {
        publish(u, &object, &note).await;
    }
    record_metrics(u, &namespace, &name, &before, &wanted, &plan);
    if let Some(e) = failed_patch {
        return Err(e);
    }
    Ok(next_action(u, &plan, conflict, now))
}

/// The requeue: soon after a conflict, every `poll` while something runs, else at the plan's
/// next check.
fn next_action(u: &Upgrades, plan: &Plan, conflict: bool, now: Timestamp) -> Action {
    if conflict {
        return Action::requeue(u.conflict_retry);
    }
    let running = plan.clusters.iter().any(|cp| cp.step.phase().is_running());
    // The runtime's delay queue cannot hold a wait of years (a freeze until 2099): look again
    // at least daily.
    let at = plan.next_check.map(|at| until(now, at).min(MAX_WAIT));
    match (running, at) {
        (true, Some(d)) => Action::requeue(d.min(u.poll)),
        (true, None) => Action::requeue(u.poll),
        (false, Some(d)) => Action::requeue(d),
        (false, None) => Action::await_change(),
    }
}

/// Whether `current` is (a spelling of) `target`.
fn shows(current: Option<&str>, target: &str) -> bool {
    current.is_some_and(|c| {
        c.trim() == target
            || matches!((Version::parse(c.trim()), Version::parse(target)), (Some(a), Some(b)) if a == b)
    })
}

/// The status the plan says, keeping what only the shell knows (silence ids, announcements).
fn desired_status(
    object: &ClusterUpgrade,
    before: &ClusterUpgradeStatus,
    plan: &Plan,
    target: Option<&str>,
    announced: &[String],
    now: Timestamp,
) -> ClusterUpgradeStatus {
    let clusters: Vec<ClusterState> = plan
        .clusters
        .iter()
        .map(|cp| {
            let old = before.cluster(&cp.name);
            let triggered_at = if cp.step == Step::Trigger {
                Some(Time(now))
            } else {
                old.and_then(|o| o.triggered_at.clone())
            };
            let announced_at = if announced.contains(&cp.name) {
                Some(Time(now))
            } else {
                old.and_then(|o| o.announced_at.clone())
            };
            ClusterState {
                name: cp.name.clone(),
                state: Some(cp.step.phase().as_str().to_owned()),
                reason: cp.step.reason(),
                triggered_at,
                finished_at: cp
                    .step
                    .finished_at()
                    .map(Time)
                    .or_else(|| old.and_then(|o| o.finished_at.clone())),
                from_release: cp.from.clone(),
                to_release: target.map(ToOwned::to_owned),
                stage: cp.stage.clone(),
                announced_at,
                silence_id: old.and_then(|o| o.silence_id.clone()),
            }
        })
        .collect();
    let triggered_at = clusters
        .iter()
        .filter_map(|c| c.triggered_at.as_ref().map(|t| t.0))
        .min()
        .map(Time);
    let from_release = clusters
        .iter()
        .filter(|c| c.triggered_at.is_some())
        .filter_map(|c| c.from_release.as_deref())
        .filter_map(|f| Version::parse(f).map(|v| (v, f)))
        .min_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, f)| f.to_owned());
    let (ready, reconciling) = summary(plan);
    let generation = object.metadata.generation;
    let mut conditions = with_outcome(&before.conditions, &ready, generation, now);
    if matches!(ready, Outcome::Stalled { .. }) {
        // Not ready is not stalled: the campaign is under way or waiting, or it failed.
        conditions.retain(|c| c.type_ != STALLED);
    }
    if let Some(message) = reconciling {
        let since = before
            .conditions
            .iter()
            .find(|c| c.type_ == RECONCILING && c.status == "True")
            .map_or_else(|| Time(now), |c| c.last_transition_time.clone());
        conditions.push(Condition {
            type_: RECONCILING.to_owned(),
            status: "True".to_owned(),
            reason: plan.state.as_str().to_owned(),
            message,
            observed_generation: generation,
            last_transition_time: since,
        });
        conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    }
    ClusterUpgradeStatus {
        triggered_at,
        state: Some(plan.state.as_str().to_owned()),
        outcome: plan.outcome.map(|o| o.as_str().to_owned()),
        finished_at: plan.finished_at.map(Time),
        from_release,
        to_release: target.map(ToOwned::to_owned),
        clusters,
        last_push_commit: before.last_push_commit.clone(),
        pull_request: before.pull_request.clone(),
        conditions,
    }
}

/// `Ready` (and `Reconciling` while the campaign runs) from the plan. `Outcome::Stalled` here
/// only carries Ready=False; the caller drops the Stalled condition.
fn summary(plan: &Plan) -> (Outcome, Option<String>) {
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for cp in &plan.clusters {
        *counts.entry(cp.step.phase().as_str()).or_default() += 1;
    }
    let mut message = if counts.is_empty() {
        "no cluster selected".to_owned()
    } else {
        counts
            .iter()
            .map(|(phase, n)| format!("{n} {phase}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(reason) = &plan.reason {
        message = format!("{message}: {reason}");
    }
    match (plan.state, plan.outcome) {
        (CampaignState::Finished, Some(rollout::Outcome::Failed)) => {
            let failed: Vec<String> = plan
                .clusters
                .iter()
                .filter_map(|cp| match &cp.step {
                    Step::Failed { reason, .. } => Some(format!("{}: {reason}", cp.name)),
                    _ => None,
                })
                .collect();
            (
                Outcome::Stalled {
                    reason: "Failed".into(),
                    message: format!("{message}; failed: {}", failed.join("; ")),
                },
                None,
            )
        }
        (CampaignState::Finished, _) => (
            Outcome::Ready {
                reason: "Succeeded".into(),
                message,
            },
            None,
        ),
        (state, _) => (
            Outcome::Stalled {
                reason: state.as_str().into(),
                message: message.clone(),
            },
            (state == CampaignState::Running).then_some(message),
        ),
    }
}

/// Events for the transitions between the recorded status and the new one.
fn transitions(
    before: &ClusterUpgradeStatus,
    after: &ClusterUpgradeStatus,
    plan: &Plan,
) -> Vec<Note> {
    let mut notes = Vec::new();
    for entry in &after.clusters {
        let old = before.cluster(&entry.name);
        let was = old
            .and_then(|o| o.state.as_deref())
            .and_then(ClusterPhase::parse);
        let now = entry.state.as_deref().and_then(ClusterPhase::parse);
        let to = entry.to_release.as_deref().unwrap_or("?");
        let from = entry.from_release.as_deref().unwrap_or("?");
        if entry.announced_at.is_some() && old.and_then(|o| o.announced_at.as_ref()).is_none() {
            let expected = plan
                .clusters
                .iter()
                .find(|cp| cp.name == entry.name)
                .and_then(|cp| cp.expected_start)
                .map_or_else(|| "now".to_owned(), |t| t.to_string());
            notes.push(Note {
                reason: UPGRADE_ANNOUNCED,
                warning: false,
                text: format!(
                    "cluster {}: {from} → {to} expected to start at {expected}",
                    entry.name
                ),
            });
        }
        if now == was {
            continue;
        }
        let (reason, warning, text) = match now {
            Some(ClusterPhase::Triggered) if was.is_none_or(|w| !w.is_running()) => (
                UPGRADE_TRIGGERED,
                false,
                format!("cluster {}: {from} → {to}", entry.name),
            ),
            Some(ClusterPhase::Succeeded) => (
                UPGRADE_SUCCEEDED,
                false,
                format!("cluster {}: now at {to}", entry.name),
            ),
            Some(ClusterPhase::Failed) => (
                UPGRADE_FAILED,
                true,
                format!(
                    "cluster {}: {from} → {to} failed: {}",
                    entry.name,
                    entry.reason.as_deref().unwrap_or("unknown reason")
                ),
            ),
            _ => continue,
        };
        notes.push(Note {
            reason,
            warning,
            text,
        });
    }
    notes
}

/// Counts the campaign's outcome and the clusters' durations once, and the waiting clusters.
fn record_metrics(
    u: &Upgrades,
    namespace: &str,
    name: &str,
    before: &ClusterUpgradeStatus,
    after: &ClusterUpgradeStatus,
    plan: &Plan,
) {
    if before.outcome.is_none()
        && let Some(outcome) = plan.outcome
    {
        u.metrics.record_cluster_upgrade(outcome.as_str());
    }
    for entry in &after.clusters {
        let was_terminal = before
            .cluster(&entry.name)
            .and_then(ClusterState::progress)
            .is_some_and(|p| p.state.is_terminal());
        if let (false, Some(t), Some(f)) = (was_terminal, &entry.triggered_at, &entry.finished_at) {
            u.metrics
                .observe_cluster_upgrade_duration(f.0.duration_since(t.0).as_secs_f64());
        }
    }
    let mut waiting: BTreeMap<&'static str, i64> = BTreeMap::new();
    for cp in &plan.clusters {
        if let Step::Waiting { reason, .. } = &cp.step {
            *waiting.entry(reason.name()).or_default() += 1;
        }
    }
    u.set_waiting((namespace.to_owned(), name.to_owned()), waiting);
}

/// The schedule that governs `cluster`: `spec.maintenanceScheduleRef`, else the first schedule
/// (by name) whose `clusterSelector` selects it; none when no schedule applies.
fn governing<'a>(
    object: &ClusterUpgrade,
    schedules: &'a [NamedSchedule],
    cluster: &ClusterObject,
) -> Option<&'a NamedSchedule> {
    match &object.spec.maintenance_schedule_ref {
        Some(r) => schedules.iter().find(|x| x.name == r.name),
        None => schedules.iter().find(|x| {
            x.selector
                .as_ref()
                .is_some_and(|sel| sel.matches(&cluster.labels))
        }),
    }
}

async fn schedules(u: &Upgrades, namespace: &str) -> Result<Vec<NamedSchedule>, Error> {
    let api: Api<MaintenanceSchedule> = Api::namespaced(u.client(), namespace);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Read {
            kind: "MaintenanceSchedule",
            namespace: namespace.to_owned(),
            name: "*".to_owned(),
            source,
        })?;
    let mut out: Vec<NamedSchedule> = list
        .items
        .iter()
        .filter_map(|m| {
            let schedule = m.to_core().ok()?;
            let selector = match &m.spec.cluster_selector {
                Some(sel) => Some(upkeep_git::plan::label_selector(sel).ok()?),
                None => None,
            };
            Some(NamedSchedule {
                name: m.name_any(),
                schedule,
                selector,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The `releaseRef` VersionPolicy's `latestVersion` (parsed and as written), if resolved.
async fn release(
    u: &Upgrades,
    object: &ClusterUpgrade,
    namespace: &str,
) -> Result<(Option<Version>, Option<String>), Error> {
    let Some(r) = &object.spec.release_ref else {
        return Ok((None, None));
    };
    let api: Api<VersionPolicy> = Api::namespaced(u.client(), namespace);
    let policy = api.get_opt(&r.name).await.map_err(|source| Error::Read {
        kind: "VersionPolicy",
        namespace: namespace.to_owned(),
        name: r.name.clone(),
        source,
    })?;
    let latest = policy
        .and_then(|p| p.status)
        .and_then(|s| s.latest_version)
        .map(|v| v.trim().to_owned());
    Ok((latest.as_deref().and_then(Version::parse), latest))
}

/// How the `after` upgrade `name` ended, if it did.
async fn finished_of(
    u: &Upgrades,
    namespace: &str,
    name: &str,
) -> Result<Option<(rollout::Outcome, Timestamp)>, Error> {
    let api: Api<ClusterUpgrade> = Api::namespaced(u.client(), namespace);
    let other = api.get_opt(name).await.map_err(|source| Error::Read {
        kind: "ClusterUpgrade",
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    })?;
    Ok(other.and_then(|o| o.status).and_then(|s| s.finished()))
}

/// Sets the version place of `cluster` to `target`, on the resourceVersion it was read at.
/// [`patch_version`], with the cluster's name for the result.
async fn patch_named(
    u: &Upgrades,
    namespace: &str,
    cluster: &ClusterObject,
    source: VersionSource,
    target: &str,
) -> (String, Result<(), Error>) {
    (
        cluster.name.clone(),
        patch_version(u, namespace, cluster, source, target).await,
    )
}

async fn patch_version(
    u: &Upgrades,
    namespace: &str,
    cluster: &ClusterObject,
    source: VersionSource,
    target: &str,
) -> Result<(), Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(u.client(), namespace, &cluster_resource());
    let mut patch = match source {
        VersionSource::Label => serde_json::json!({
            "metadata": {"labels": {upkeep_api::cluster::RELEASE_VERSION_LABEL: target}}
        }),
        VersionSource::Topology => serde_json::json!({
            "metadata": {}, "spec": {"topology": {"version": target}}
        }),
    };
    if let Some(rv) = &cluster.resource_version {
        patch["metadata"]["resourceVersion"] = serde_json::json!(rv);
    }
    api.patch(
        &cluster.name,
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        },
        &Patch::Merge(patch),
    )
    .await
    .map_err(|source| Error::PatchCluster {
        namespace: namespace.to_owned(),
        cluster: cluster.name.clone(),
        target: target.to_owned(),
        source,
    })?;
    tracing::info!(cluster = %format!("{namespace}/{}", cluster.name), target, "version patched");
    Ok(())
}

/// Makes sure a running cluster's alerts are silenced (when silences are configured): reuses
/// the recorded silence, or one found by its matchers, or creates one until the upgrade's
/// timeout plus [`SILENCE_GRACE`].
async fn ensure_silence(
    u: &Upgrades,
    namespace: &str,
    upgrade: &str,
    entry: &mut ClusterState,
    timeout: SignedDuration,
    now: Timestamp,
) {
    let Some(s) = &u.silences else { return };
    if entry.silence_id.is_some() {
        return;
    }
    let from = entry.triggered_at.as_ref().map_or(now, |t| t.0);
    let Ok(ends_at) = from
        .checked_add(timeout)
        .and_then(|t| t.checked_add(SILENCE_GRACE))
    else {
        return;
    };
    let matchers = [(s.label.as_str(), entry.name.as_str())];
    let comment = format!(
        "upgrade of cluster {namespace}/{} to {} (ClusterUpgrade {namespace}/{upgrade})",
        entry.name,
        entry.to_release.as_deref().unwrap_or("?")
    );
    match s
        .alertmanager
        .ensure_silence(&matchers, SILENCE_CREATED_BY, &comment, ends_at)
        .await
    {
        Ok(id) => entry.silence_id = Some(id),
        Err(error) => {
            tracing::warn!(%error, cluster = %entry.name, "creating the silence; retrying on the next reconcile");
        }
    }
}

/// Expires a finished cluster's silence; a failure is logged (the silence ends by itself).
async fn expire_silence(u: &Upgrades, entry: &ClusterState) {
    let (Some(s), Some(id)) = (&u.silences, &entry.silence_id) else {
        return;
    };
    if let Err(error) = s.alertmanager.expire(id).await {
        tracing::warn!(%error, cluster = %entry.name, "expiring the silence; it ends on its own");
    }
}

/// Posts an announcement to the webhook (when the spec names one). Returns whether it is done:
/// a failed webhook is tried again on the next reconcile.
async fn announce(
    u: &Upgrades,
    object: &ClusterUpgrade,
    cp: &rollout::ClusterPlan,
    target: Option<&str>,
) -> bool {
    let Some(url) = object
        .spec
        .announce
        .as_ref()
        .and_then(|a| a.webhook_url.as_deref())
    else {
        return true;
    };
    let Some(webhook) = &u.webhook else {
        tracing::warn!(cluster = %cp.name, "announce.webhookUrl given but the controller has no webhook client");
        return true;
    };
    let body = serde_json::json!({
        "cluster": cp.name,
        "upgrade": format!("{}/{}", object.namespace().unwrap_or_default(), object.name_any()),
        "from": cp.from,
        "to": target,
        "expectedStart": cp.expected_start.map(|t| t.to_string()),
    });
    match webhook.notify(url, &body).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, cluster = %cp.name, "announcement webhook failed; retrying on the next reconcile");
            false
        }
    }
}

/// Publishes one Event on the ClusterUpgrade; a failure is logged, not retried (the status
/// already says what happened).
async fn publish(u: &Upgrades, object: &ClusterUpgrade, note: &Note) {
    // A recorder per Event: the recorder folds Events of one object and reason into a series
    // that keeps the first note, and each cluster needs its own.
    let recorder = Recorder::new(
        u.client(),
        Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: u.instance.clone(),
        },
    );
    let event = Event {
        type_: if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: note.reason.to_owned(),
        note: crate::reconcile::event_note(&note.text),
        action: "UpgradeCluster".to_owned(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(%error, reason = note.reason, "publishing a ClusterUpgrade Event");
    }
}

/// Writes `wanted` when it differs from `current`.
async fn write_status(
    u: &Upgrades,
    object: &ClusterUpgrade,
    current: &ClusterUpgradeStatus,
    wanted: &ClusterUpgradeStatus,
) -> Result<(), Error> {
    let current = serde_json::to_value(current)?;
    let wanted = crate::reconcile::redacted_status(serde_json::to_value(wanted)?);
    if current == wanted {
        return Ok(());
    }
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let api: Api<ClusterUpgrade> = Api::namespaced(u.client(), &namespace);
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({
            "status": crate::reconcile::status_patch(&current, &wanted)
        })),
    )
    .await
    .map_err(|source| Error::WriteStatus {
        namespace,
        name,
        source,
    })?;
    Ok(())
}

/// Ready=False + Stalled: the spec must change before anything happens. Everything else in
/// the status is kept.
async fn stall(
    u: &Upgrades,
    object: &ClusterUpgrade,
    before: &ClusterUpgradeStatus,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Result<(), Error> {
    let mut wanted = before.clone();
    wanted.conditions = with_outcome(
        &before.conditions,
        &Outcome::Stalled {
            reason: reason.to_owned(),
            message: message.to_owned(),
        },
        object.metadata.generation,
        now,
    );
    write_status(u, object, before, &wanted).await
}

/// Ready=False without Stalled: something outside the spec is missing and may appear.
async fn not_ready(
    u: &Upgrades,
    object: &ClusterUpgrade,
    before: &ClusterUpgradeStatus,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Result<(), Error> {
    let mut wanted = before.clone();
    wanted.conditions = crate::discovery::not_ready(
        &before.conditions,
        reason,
        message,
        object.metadata.generation,
        now,
    );
    write_status(u, object, before, &wanted).await
}

/// Runs the ClusterUpgrade controller until `shutdown` resolves.
/// Keeps only what upkeep reads of a cached Cluster: name, namespace, labels, `upkeep.dev/`
/// annotations, resourceVersion, `spec.topology.version` and `status`. Thousands of clusters
/// are cached; managedFields, `kubectl.kubernetes.io/last-applied-configuration` and the
/// provider's spec would otherwise be most of each one.
fn prune_cluster(c: &mut DynamicObject) {
    let meta = &mut c.metadata;
    meta.managed_fields = None;
    meta.owner_references = None;
    meta.finalizers = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.retain(|k, _| k.starts_with("upkeep.dev/"));
    }
    let topology = c
        .data
        .pointer("/spec/topology/version")
        .cloned()
        .map(|v| serde_json::json!({"topology": {"version": v}}));
    if let Some(map) = c.data.as_object_mut() {
        map.retain(|k, _| k == "status");
        if let Some(spec) = topology {
            map.insert("spec".to_owned(), spec);
        }
    }
}

pub async fn run_cluster_upgrades(
    upgrades: Arc<Upgrades>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = upgrades.client();
    let resource = cluster_resource();
    let cluster_writer = reflector::store::Writer::<DynamicObject>::new(resource.clone());
    let cluster_store = cluster_writer.as_reader();
    let cluster_stream = watcher(
        Api::<DynamicObject>::all_with(client.clone(), &resource),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(prune_cluster)
    .reflect(cluster_writer)
    .touched_objects();

    // Only spec changes start a reconcile by themselves, not the status written here.
    let (reader, writer) = reflector::store();
    let stream = watcher(
        Api::<ClusterUpgrade>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(crate::reconcile::lean::<ClusterUpgrade>)
    .reflect(writer)
    .applied_objects()
    .predicate_filter(predicates::generation, PredicateConfig::default());
    let controller = Controller::for_stream(stream, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(UPGRADE_CONCURRENCY));
    let store = controller.store();
    let in_namespace = {
        let store = store.clone();
        move |ns: Option<String>, keep: &dyn Fn(&ClusterUpgrade) -> bool| {
            store
                .state()
                .into_iter()
                .filter(|x| x.namespace() == ns && keep(x))
                .map(|x| ObjectRef::from_obj(x.as_ref()))
                .collect::<Vec<_>>()
        }
    };
    let (by_cluster, by_schedule, by_policy, by_upgrade) = (
        in_namespace.clone(),
        in_namespace.clone(),
        in_namespace.clone(),
        in_namespace,
    );
    let shell = Arc::new(Shell {
        upgrades,
        clusters: cluster_store,
        clusters_ready: tokio::sync::OnceCell::new(),
    });
    controller
        .watches_stream_with(
            cluster_stream,
            move |c: DynamicObject| by_cluster(c.metadata.namespace.clone(), &|_| true),
            resource,
        )
        .watches(
            Api::<MaintenanceSchedule>::all(client.clone()),
            watcher::Config::default(),
            move |m: MaintenanceSchedule| by_schedule(m.namespace(), &|_| true),
        )
        .watches(
            Api::<VersionPolicy>::all(client.clone()),
            watcher::Config::default(),
            move |p: VersionPolicy| {
                let name = p.name_any();
                by_policy(p.namespace(), &|x| {
                    x.spec.release_ref.as_ref().is_some_and(|r| r.name == name)
                })
            },
        )
        .watches(
            Api::<ClusterUpgrade>::all(client),
            watcher::Config::default(),
            move |o: ClusterUpgrade| {
                let name = o.name_any();
                by_upgrade(o.namespace(), &|x| {
                    x.spec.after.iter().any(|a| a.name == name)
                })
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(
            crate::metrics::instrumented("ClusterUpgrade", reconcile_upgrade),
            error_policy,
            shell,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "ClusterUpgrade reconcile");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_shows_the_target() {
        let cases = [
            (Some("30.0.0"), "30.0.0", true, "same text"),
            (
                Some("v30.0.0"),
                "30.0.0",
                true,
                "another spelling of the same version",
            ),
            (
                Some(" 30.0.0 "),
                "30.0.0",
                true,
                "blanks around a label value",
            ),
            (Some("29.9.0"), "30.0.0", false, "older"),
            (Some("31.0.0"), "30.0.0", false, "newer is not the target"),
            (None, "30.0.0", false, "no version place"),
            (
                Some("latest"),
                "latest",
                true,
                "a non-version equal as text",
            ),
        ];
        for (current, target, want, why) in cases {
            assert_eq!(shows(current, target), want, "{why}");
        }
    }

    fn entry(name: &str, state: Option<&str>, announced: bool) -> ClusterState {
        ClusterState {
            name: name.into(),
            state: state.map(Into::into),
            reason: Some("disk full".into()),
            from_release: Some("29.0.0".into()),
            to_release: Some("30.0.0".into()),
            announced_at: announced.then(|| Time("2026-11-21T10:00:00Z".parse().expect("ts"))),
            ..ClusterState::default()
        }
    }

    fn statuses(entries: Vec<ClusterState>) -> ClusterUpgradeStatus {
        ClusterUpgradeStatus {
            clusters: entries,
            ..ClusterUpgradeStatus::default()
        }
    }

    /// (state before, state after, announced now, Event reasons, why)
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        bool,
        Vec<&'a str>,
        &'a str,
    );

    #[test]
    fn events_follow_transitions() {
        let plan = Plan {
            clusters: Vec::new(),
            state: CampaignState::Running,
            outcome: None,
            finished_at: None,
            next_check: None,
            reason: None,
        };
        let cases: Vec<Case<'_>> = vec![
            (
                None,
                Some("Triggered"),
                false,
                vec![UPGRADE_TRIGGERED],
                "first trigger",
            ),
            (
                Some("Waiting"),
                Some("Triggered"),
                false,
                vec![UPGRADE_TRIGGERED],
                "from waiting",
            ),
            (
                Some("Triggered"),
                Some("Triggered"),
                false,
                vec![],
                "re-applied after a restart: no second Event",
            ),
            (
                Some("Triggered"),
                Some("Upgrading"),
                false,
                vec![],
                "upgrading is no Event",
            ),
            (
                Some("Upgrading"),
                Some("Succeeded"),
                false,
                vec![UPGRADE_SUCCEEDED],
                "success",
            ),
            (
                Some("Upgrading"),
                Some("Failed"),
                false,
                vec![UPGRADE_FAILED],
                "failure",
            ),
            (
                Some("Waiting"),
                Some("Waiting"),
                true,
                vec![UPGRADE_ANNOUNCED],
                "announced now",
            ),
            (
                None,
                Some("Triggered"),
                true,
                vec![UPGRADE_ANNOUNCED, UPGRADE_TRIGGERED],
                "announced and started at once",
            ),
            (
                Some("Succeeded"),
                Some("Succeeded"),
                false,
                vec![],
                "terminal stays quiet",
            ),
        ];
        for (was, now, announced, want, why) in cases {
            let before = statuses(vec![entry("a", was, false)]);
            let after = statuses(vec![entry("a", now, announced)]);
            let got: Vec<&str> = transitions(&before, &after, &plan)
                .iter()
                .map(|n| n.reason)
                .collect();
            assert_eq!(got, want, "{why}");
        }
        let failed = transitions(
            &statuses(vec![entry("a", Some("Upgrading"), false)]),
            &statuses(vec![entry("a", Some("Failed"), false)]),
            &plan,
        );
        assert!(
            failed[0].warning && failed[0].text.contains("disk full"),
            "a failure is a Warning naming the reason"
        );
    }
}
