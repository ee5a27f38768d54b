//! ClusterUpgrade: one upgrade campaign over Cluster API `Cluster` objects, driven by the pure
//! rollout core (`upkeep_core::rollout::plan`).
//!
//! Three steps, one file each: [`gather`] reads (the Clusters of the upgrade's namespace
//! from a watch-fed store, the MaintenanceSchedules, the `releaseRef` VersionPolicy or Giant
//! Swarm Release, the
//! `after` upgrades' status), [`decide`] is pure (the one conversion in
//! `upkeep_api::cluster_upgrade::inputs`, `upkeep_core::rollout::plan`, the status to write,
//! the Events, the next look) and is what the CLI decides with too, and [`act`] writes
//! (announcements, the records before the change ([`records`]), silences, patches or the GitOps
//! commit, the bounded status, Events, metrics).
//!
//! Why it is shaped this way:
//! - The reconciler only gathers a snapshot (the Clusters of the upgrade's namespace from a
//!   watch-fed store, the MaintenanceSchedules, the `after` upgrades' status, the `releaseRef`
//!   VersionPolicy's `latestVersion`, **now** from the context clock), asks the core for a
//!   [`Plan`], and carries it out. Every decision — order, stages, soak, concurrency, windows,
//!   freezes, timeouts, success and failure — is the core's.
//! - **Record before act.** Every cluster the core says to start first gets its
//!   `ClusterUpgradeRecord` (`Triggered`, with `triggeredAt`), and only then is the cluster
//!   patched (per cluster, [`PATCHES_IN_FLIGHT`] clusters at a time: record, then patch, so a
//!   window opening over thousands of clusters changes the first within a second, not after
//!   every record was written). A controller that dies in between finds the record on restart (a watch-fed store,
//!   merged with `status.clusters[]` into what the core reads as recorded); the core then says
//!   `Triggered` again and the same idempotent patch is applied (a cluster already showing the
//!   target is not patched at all), so a restart never makes a second, different change.
//! - The campaign's status is bounded ([`decide::bounded`]): counts, progress, and at most 100
//!   clusters in flight, failed, halted or waiting; each cluster's upgrade is its record.
//! - The patch is a JSON merge patch carrying the `metadata.resourceVersion` the decision was
//!   made on: a cluster changed meanwhile answers 409 and the upgrade is looked at again soon,
//!   with the fresh object.
//! - Clusters (`cluster.x-k8s.io/v1beta1`) come from the process's one Cluster watch
//!   ([`cache`]), shared with the scheduled-upgrade controller and kept compact, and are read
//!   by `upkeep_api::ClusterObject`'s conversion, leniently: upkeep does not own that kind.
//! - Side effects that are not the upgrade itself (Alertmanager silences, announcement
//!   webhooks) never block an upgrade: a failure is logged and retried on the next reconcile.
//!   Silences are found again by their matchers before one is created, so a restart never
//!   stacks a second silence.
//! - `trigger: GitOps` acts through the repository instead of the API server: the clusters to
//!   start (and those still `Triggered`) are written as one commit per reconcile by the shared
//!   GitOps write loop (see `gitops.rs` here); re-applying is `UpToDate`, so record-before-act
//!   holds the same way. The commit and the pull request are recorded in status.
//! - An invalid spec (including `trigger: GitOps` without `gitOps`) is `Stalled` and waits for
//!   a change.
//! - **A failed change is not a start.** A patch (Cluster, App or values ConfigMap) answered
//!   403, 409 after its retries, or 5xx, or a failed commit/push, leaves the cluster Triggered
//!   without `acknowledgedAt`: `Ready=False` names the failed request, a Warning Event goes
//!   out, the reconcile fails and is retried with backoff, and no timeout runs. The
//!   `UpgradeTriggered` Event is sent when the change is acknowledged (2xx, push accepted).
//! - **Finished is final.** A Finished campaign is never planned again; a spec edit gets
//!   `SpecChangedAfterFinish` and a Warning Event, once per generation, and changes nothing.
//! - **One Event per transition and reconcile.** The transitions of one reconcile are one
//!   Event per reason (`UpgradeTriggered`, `UpgradeSucceeded`, …): a single cluster's note as
//!   before, several folded into one saying how many and naming the first few
//!   ([`decide::batched`]). A window opening over 12,000 clusters is one Event, not 12,000
//!   requests that the event recorder of client-go (which Flux and Cluster API controllers
//!   use) would not have sent either: it lets 25 Events per object through, then one every
//!   five minutes, and folds more than 10 that differ only in their message. Each cluster's
//!   transition is in its record. Transitions are read between the status as written and
//!   the new one: a reconcile that starts before the cache shows the last write decides from that
//!   write ([`UpgradeSettings`] remembers it), not from the stale object.
//! - Only spec changes of a ClusterUpgrade start a reconcile by themselves (the status this
//!   controller writes must not); Cluster, MaintenanceSchedule, VersionPolicy and `after`
//!   ClusterUpgrade changes are mapped to the upgrades they concern (any ClusterUpgrade change
//!   also to the other active upgrades of its namespace, whose overlaps it may end); while anything is
//!   Triggered or Upgrading the upgrade is also looked at every [`UpgradeSettings::poll`], and
//!   otherwise exactly at the plan's `next_check`. A Giant Swarm Release (`releaseRef` of
//!   `kind: Release`) is not watched: while it is missing or refused the upgrade is looked at
//!   every poll.

mod act;
pub mod decide;
mod gather;
mod gitops;
pub mod records;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, GroupVersionKind};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, predicates, watcher};
use upkeep_api::cluster_upgrade::{ClusterUpgradeStatus, VersionSource, spec_message};
use upkeep_api::{
    ClusterObject, ClusterUpgrade, ClusterUpgradeRecord, MaintenanceSchedule, VersionPolicy,
};

use crate::alerts::{Alertmanager, Webhook};
use crate::cluster_cache::{CachedCluster, ClusterCache, ClusterChanges, ClusterWatch};
use crate::framework::{Context, Error, Shared};
use crate::metrics::Metrics;
use decide::Decision;

pub use decide::{Snapshot, decide};

/// Event reason: a cluster's upgrade was started (its change acknowledged: the patch answered
/// 2xx, the commit was pushed).
pub const UPGRADE_TRIGGERED: &str = "UpgradeTriggered";
/// Condition type and Warning Event reason: the spec of a Finished campaign changed; the edit
/// is ignored (Finished is final).
pub const SPEC_CHANGED_AFTER_FINISH: &str = "SpecChangedAfterFinish";
/// Event reason: a cluster's upgrade succeeded.
pub const UPGRADE_SUCCEEDED: &str = "UpgradeSucceeded";
/// Event reason: a cluster's upgrade failed.
pub const UPGRADE_FAILED: &str = "UpgradeFailed";
/// Event reason: a cluster's upgrade was announced.
pub const UPGRADE_ANNOUNCED: &str = "UpgradeAnnounced";
/// Event reason: a GitOps write (commit, push or pull request) failed; retried with backoff.
pub const GITOPS_FAILED: &str = "GitOpsFailed";
/// Event reason: a Direct change failed (the Cluster's patch, or its App or values ConfigMap);
/// the cluster stays Triggered and the change is retried with backoff.
pub const PATCH_FAILED: &str = "PatchFailed";
/// Clusters started at once per reconcile (each: its record, then its patch; so this many
/// requests are in flight).
const PATCHES_IN_FLIGHT: usize = 32;
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

/// A status this controller wrote, and the resourceVersions that predate it: the one the
/// decision was made on and those of the writes in between (record before act). A cached
/// object at one of those is stale; at any other (this write's, or someone else's) it is not.
#[derive(Debug)]
struct Written {
    older: Vec<String>,
    status: ClusterUpgradeStatus,
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

/// The ClusterUpgrade controller's settings and shared state (beyond the shared [`Context`],
/// which holds the retry interval, the metrics and the Event reporter).
pub struct UpgradeSettings {
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
    /// Where `trigger: GitOps` clones live (`<dir>/<namespace>/<name>`).
    pub workdir: std::path::PathBuf,
    /// ClusterUpgradeRecords kept per cluster (`--records-per-cluster`): the oldest finished
    /// ones beyond are deleted when a new one is created.
    pub records_per_cluster: usize,
    /// Waiting clusters per upgrade, by reason (summed into `upkeep_clusters_waiting`).
    waiting: Mutex<HashMap<UpgradeKey, WaitingCounts>>,
    /// The status last written per upgrade (see [`Written`]): a reconcile that starts before
    /// the cache shows that write decides from what was written, not from the stale object, so
    /// no transition (Event, metric) is counted twice.
    written: Mutex<HashMap<UpgradeKey, Written>>,
    /// Acknowledgements not yet in their records, per upgrade (see [`records::Book::sync`]):
    /// merged into what the next reconcile reads as recorded, which writes them.
    acks: Mutex<HashMap<UpgradeKey, Vec<(String, Time)>>>,
    /// The records written here that the record store does not show yet.
    fresh_records: records::Fresh,
}

impl std::fmt::Debug for UpgradeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeSettings")
            .field("silences", &self.silences)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

impl UpgradeSettings {
    /// Defaults: no silences, no webhook client, the label as version place, a 5 s poll while
    /// upgrading, 2 s after a conflict; the retry interval and metrics of `ctx`.
    pub fn new(ctx: Arc<Context>) -> Self {
        UpgradeSettings {
            ctx,
            silences: None,
            webhook: None,
            default_version_source: VersionSource::Label,
            poll: Duration::from_secs(5),
            conflict_retry: Duration::from_secs(2),
            workdir: std::env::temp_dir().join("upkeep-cluster-upgrades"),
            records_per_cluster: records::DEFAULT_RECORDS_PER_CLUSTER,
            waiting: Mutex::default(),
            written: Mutex::default(),
            acks: Mutex::default(),
            fresh_records: records::Fresh::default(),
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

    /// The wait after a transient failure (the shared context's, changed for this controller).
    #[must_use]
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.ctx = Arc::new(self.ctx.as_ref().clone().with_retry_after(wait));
        self
    }

    /// Where this controller's metrics go.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.ctx = Arc::new(self.ctx.as_ref().clone().with_metrics(metrics));
        self
    }

    /// `reportingInstance` of this controller's Events (the pod name).
    #[must_use]
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.ctx = Arc::new(self.ctx.as_ref().clone().with_instance(instance));
        self
    }

    /// Where `trigger: GitOps` keeps its clones (default: `$TMPDIR/upkeep-cluster-upgrades`).
    #[must_use]
    pub fn with_workdir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.workdir = dir.into();
        self
    }

    /// ClusterUpgradeRecords kept per cluster (at least 1).
    #[must_use]
    pub fn with_records_per_cluster(mut self, n: usize) -> Self {
        self.records_per_cluster = n.max(1);
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

    /// Remembers `status`, written for `object` (decided on its resourceVersion) by the writes
    /// that answered `versions` (oldest first; empty: nothing was written, nothing changes).
    fn remember(
        &self,
        object: &ClusterUpgrade,
        versions: &[String],
        status: &ClusterUpgradeStatus,
    ) {
        let Some((_, between)) = versions.split_last() else {
            return;
        };
        let key = (object.namespace().unwrap_or_default(), object.name_any());
        let mut older: Vec<String> = object.metadata.resource_version.iter().cloned().collect();
        older.extend(between.iter().cloned());
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A decision made on a remembered status: what predated that one predates this one.
        if let Some(w) = written.remove(&key) {
            older.extend(w.older);
        }
        written.insert(
            key,
            Written {
                older,
                status: status.clone(),
            },
        );
    }

    /// `object` with the status as written: the one this controller wrote last when the cached
    /// object is still the one that write was decided on (the cache has not caught up), else
    /// the object as it is (and the remembered write is dropped).
    fn as_written(&self, object: Arc<ClusterUpgrade>) -> Arc<ClusterUpgrade> {
        let key = (object.namespace().unwrap_or_default(), object.name_any());
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match written.get(&key) {
            Some(w)
                if object
                    .metadata
                    .resource_version
                    .as_ref()
                    .is_some_and(|rv| w.older.contains(rv)) =>
            {
                let mut fresh = object.as_ref().clone();
                fresh.status = Some(w.status.clone());
                Arc::new(fresh)
            }
            Some(_) => {
                written.remove(&key);
                object
            }
            None => object,
        }
    }

    /// Drops the remembered write of `object` once the cache shows a later version of it.
    fn seen(&self, object: &ClusterUpgrade) {
        let key = (object.namespace().unwrap_or_default(), object.name_any());
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stale = |w: &Written| {
            object
                .metadata
                .resource_version
                .as_ref()
                .is_some_and(|rv| w.older.contains(rv))
        };
        if written.get(&key).is_some_and(|w| !stale(w)) {
            written.remove(&key);
        }
    }

    /// The acknowledgements of `object`'s clusters not yet written to their records.
    fn pending_acks(&self, object: &ClusterUpgrade) -> Vec<(String, Time)> {
        let key = (object.namespace().unwrap_or_default(), object.name_any());
        self.acks
            .lock()
            .ok()
            .and_then(|a| a.get(&key).cloned())
            .unwrap_or_default()
    }

    /// Replaces the acknowledgements of `object`'s clusters still to be written.
    fn set_pending_acks(&self, object: &ClusterUpgrade, acks: Vec<(String, Time)>) {
        let key = (object.namespace().unwrap_or_default(), object.name_any());
        if let Ok(mut all) = self.acks.lock() {
            if acks.is_empty() {
                all.remove(&key);
            } else {
                all.insert(key, acks);
            }
        }
    }

    /// Forgets a deleted upgrade: its waiting gauges are cleared, its remembered write and
    /// acknowledgements dropped.
    fn forget(&self, object: &ClusterUpgrade) {
        let key = (object.namespace().unwrap_or_default(), object.name_any());
        if let Ok(mut written) = self.written.lock() {
            written.remove(&key);
        }
        if let Ok(mut acks) = self.acks.lock() {
            acks.remove(&key);
        }
        self.set_waiting(key.clone(), BTreeMap::new());
        if let Ok(mut all) = self.waiting.lock() {
            all.remove(&key);
        }
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
            self.ctx.metrics.set_clusters_waiting(reason, n);
        }
    }
}

/// What a reconcile gets: the settings and the process's Cluster cache.
pub struct UpgradeContext {
    pub upgrades: Arc<UpgradeSettings>,
    pub clusters: ClusterCache,
    /// The ClusterUpgrades the controller watches: the others of a namespace decide overlaps.
    pub campaigns: Store<ClusterUpgrade>,
    /// The ClusterUpgradeRecords (every namespace), from a watch; see [`records`].
    pub records: Store<ClusterUpgradeRecord>,
    /// Set once the record store has been listed. Reconciles wait on this, not on
    /// `Store::wait_until_ready` directly: that future wakes only the last of several
    /// concurrent waiters (a oneshot receiver keeps one waker).
    records_ready: tokio::sync::OnceCell<()>,
}

impl UpgradeContext {
    /// The clusters of `namespace` that `concerns` keeps (by name and labels), converted for
    /// the decision, once the cache has listed every Cluster. Only these are converted: a
    /// namespace may hold thousands that other upgrades are about.
    pub(crate) async fn clusters_of(
        &self,
        namespace: &str,
        concerns: impl Fn(&str, &BTreeMap<String, String>) -> bool,
    ) -> Result<Vec<ClusterObject>, Error> {
        self.clusters
            .ready()
            .await
            .map_err(|_| Error::ClustersNotWatched)?;
        Ok(self
            .clusters
            .store()
            .state()
            .iter()
            .filter(|c| c.metadata.namespace.as_deref() == Some(namespace))
            .map(|c| c.to_object())
            .filter(|c| concerns(&c.name, &c.labels))
            .collect())
    }
}

impl std::fmt::Debug for UpgradeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeContext").finish_non_exhaustive()
    }
}

impl Shared for UpgradeContext {
    fn context(&self) -> &Context {
        &self.upgrades.ctx
    }
}

/// Reconciles one ClusterUpgrade: gather, decide, act (see the module docs).
pub async fn reconcile_upgrade(
    object: Arc<ClusterUpgrade>,
    s: Arc<UpgradeContext>,
) -> Result<Action, Error> {
    let u = &s.upgrades;
    let now = u.now();
    let object = u.as_written(object);
    let before = object.status.clone().unwrap_or_default();
    // Finished is final: never planned again, a spec edit is answered with a condition.
    if before.state.as_deref() == Some(upkeep_core::rollout::CampaignState::Finished.as_str()) {
        act::finished(u, &object, &before, now).await?;
        return Ok(Action::await_change());
    }
    tracing::debug!(upgrade = %format!("{}/{}", object.namespace().unwrap_or_default(), object.name_any()), "reconciling");
    // An invalid spec reads nothing.
    if let Err(errors) = object.validate() {
        let message = spec_message(&errors);
        act::stall(u, &object, &before, "InvalidSpec", &message, now).await?;
        return Ok(Action::await_change());
    }
    let (mut snapshot, records) = gather::gather(&s, &object).await?;
    let pending = u.pending_acks(&object);
    let unseen = with_acks(&mut snapshot.records, &pending);
    // The records merged into the recorded status once, for the decision and for what `act`
    // compares (a window opening over 12,000 clusters has 12,000 records).
    let object = merged_with_records(object, std::mem::take(&mut snapshot.records));
    match decide(&object, &snapshot, u.default_version_source, now) {
        Decision::Stalled { reason, message } => {
            act::stall(u, &object, &before, reason, &message, now).await?;
            Ok(Action::await_change())
        }
        Decision::NotReady { reason, message } => {
            act::not_ready(u, &object, &before, reason, &message, now).await?;
            Ok(Action::requeue(u.ctx.retry_after))
        }
        Decision::Plan(decided) => {
            // The clusters go before the long part (records and patches for thousands of
            // clusters): what acting needs of them is in `acting`.
            let mut acting = decided.into_acting(&snapshot.clusters);
            snapshot.clusters = Vec::new();
            let moves = std::mem::take(&mut acting.moves);
            let book = records::Book::new(u, &object, records, acting.source);
            let acted = act::act(u, &object, &before, &acting, moves, &book, now).await;
            // Acknowledgements left for the next write; those read as pending were written,
            // unless the records' writes failed.
            let mut acks = book.deferred();
            if acted.as_ref().is_err() {
                acks.extend(pending);
            } else {
                acks.extend(unseen);
            }
            u.set_pending_acks(&object, acks);
            let action = acted?;
            book.retain(&s.records).await;
            // A Giant Swarm Release is not watched (upkeep does not own the kind, which may not
            // even be installed): while it is missing or refused, look again every poll.
            let waiting_for_release = object
                .spec
                .release_ref
                .as_ref()
                .is_some_and(|r| r.release_name().is_some())
                && snapshot
                    .release
                    .as_ref()
                    .and_then(|r| r.version())
                    .is_none();
            Ok(if waiting_for_release {
                Action::requeue(u.poll)
            } else {
                action
            })
        }
    }
}

/// `object` with its records merged into its status ([`ClusterUpgradeStatus::into_with_records`]).
fn merged_with_records(
    object: Arc<ClusterUpgrade>,
    records: Vec<upkeep_api::cluster_upgrade::ClusterState>,
) -> Arc<ClusterUpgrade> {
    if records.is_empty() {
        return object;
    }
    let mut merged = Arc::unwrap_or_clone(object);
    merged.status = Some(
        merged
            .status
            .take()
            .unwrap_or_default()
            .into_with_records(records),
    );
    Arc::new(merged)
}

/// The recorded states with the acknowledgements not yet written to their records (`acks`);
/// those whose record the store does not show yet are returned (kept for the next time).
fn with_acks(
    records: &mut [upkeep_api::cluster_upgrade::ClusterState],
    acks: &[(String, Time)],
) -> Vec<(String, Time)> {
    if acks.is_empty() {
        return Vec::new();
    }
    let mut acks: HashMap<&str, &Time> = acks.iter().map(|(c, t)| (c.as_str(), t)).collect();
    for r in records.iter_mut() {
        if let Some(t) = acks.remove(r.name.as_str())
            && r.acknowledged_at.is_none()
        {
            r.acknowledged_at = Some(t.clone());
        }
    }
    acks.into_iter()
        .map(|(c, t)| (c.to_owned(), t.clone()))
        .collect()
}

/// Keeps the ClusterUpgrades a change concerns.
type Keep<'a> = &'a dyn Fn(&ClusterUpgrade) -> bool;

/// The ClusterUpgrades of a namespace that `keep` says a change concerns.
fn in_namespace(
    store: Store<ClusterUpgrade>,
) -> impl Fn(Option<String>, Keep<'_>) -> Vec<ObjectRef<ClusterUpgrade>> + Clone {
    move |ns, keep| {
        store
            .state()
            .into_iter()
            .filter(|x| x.namespace() == ns && keep(x))
            .map(|x| ObjectRef::from_obj(x.as_ref()))
            .collect()
    }
}

/// Whether a change of the ClusterUpgrade `name` concerns `x`: `x` waits for it (`after`), or
/// `x` is another active upgrade of the namespace, whose overlaps it may end.
fn concerned_by(x: &ClusterUpgrade, name: &str) -> bool {
    x.spec.after.iter().any(|a| a.name == name)
        || (x.name_any() != name
            && x.status.as_ref().and_then(|s| s.state.as_deref())
                != Some(upkeep_core::rollout::CampaignState::Finished.as_str()))
}

/// Passes watch events on, forgetting each deleted upgrade (its gauges, its remembered write)
/// and the remembered write of one the cache has caught up with (so an idle campaign's status
/// is not held twice).
fn forget_deleted(
    settings: Arc<UpgradeSettings>,
) -> impl FnMut(
    Result<watcher::Event<ClusterUpgrade>, watcher::Error>,
) -> Result<watcher::Event<ClusterUpgrade>, watcher::Error> {
    move |event| {
        match &event {
            Ok(watcher::Event::Delete(o)) => settings.forget(o),
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => settings.seen(o),
            _ => {}
        }
        event
    }
}

/// The ClusterUpgradeRecord store the reconciles read, and the pruned watch stream that
/// fills it. Record changes (this controller's own writes) start no reconcile.
fn watch_records(
    client: &kube::Client,
    upgrades: Arc<UpgradeSettings>,
) -> (
    Store<ClusterUpgradeRecord>,
    impl futures_util::Stream<Item = Result<ClusterUpgradeRecord, watcher::Error>> + use<>,
) {
    let writer = reflector::store::Writer::<ClusterUpgradeRecord>::default();
    let store = writer.as_reader();
    let stream = watcher(
        Api::<ClusterUpgradeRecord>::all(client.clone()),
        watcher::Config::default(),
    )
    .backoff(crate::framework::watch_backoff())
    .modify(records::prune)
    .reflect(writer)
    // What the store shows now needs no overlay of this controller's writes.
    .map(move |event| {
        if let Ok(e) = &event {
            upgrades.fresh_records.seen(e);
        }
        event
    })
    .touched_objects();
    (store, stream)
}

/// Runs the ClusterUpgrade controller, with a Cluster watch of its own, until `shutdown`
/// resolves. A process that also runs the scheduled-upgrade controller shares one watch
/// between them (`run_cluster_controllers` in the controllers module).
pub async fn run_cluster_upgrades(
    upgrades: Arc<UpgradeSettings>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let mut watch = ClusterWatch::new(&upgrades.client());
    let changes = watch.subscribe(true);
    let (cache, fill) = watch.start();
    let run = run_cluster_upgrades_on(upgrades, cache, changes, shutdown);
    // The controller ends on `shutdown`; the watch with it.
    futures_util::pin_mut!(run, fill);
    futures_util::future::select(run, fill).await;
}

/// Runs the ClusterUpgrade controller over a shared Cluster cache (`changes` is this
/// controller's subscription to it) until `shutdown` resolves.
pub async fn run_cluster_upgrades_on(
    upgrades: Arc<UpgradeSettings>,
    clusters: ClusterCache,
    changes: ClusterChanges,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = upgrades.client();
    let (record_store, record_stream) = watch_records(&client, upgrades.clone());
    // Only spec changes start a reconcile by themselves, not the status written here.
    let (reader, writer) = reflector::store();
    let deleted = upgrades.clone();
    let stream = watcher(
        Api::<ClusterUpgrade>::all(client.clone()),
        watcher::Config::default(),
    )
    .backoff(crate::framework::watch_backoff())
    .modify(crate::framework::lean::<ClusterUpgrade>)
    .reflect(writer)
    // A deleted upgrade's gauges go with it.
    .map(forget_deleted(deleted))
    .applied_objects()
    .predicate_filter(predicates::generation, PredicateConfig::default());
    let controller = Controller::for_stream(stream, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(UPGRADE_CONCURRENCY))
        .trigger_backoff(crate::framework::watch_backoff());
    let campaigns = controller.store();
    let in_namespace = in_namespace(controller.store());
    let (by_cluster, by_schedule, by_policy, by_upgrade) = (
        in_namespace.clone(),
        in_namespace.clone(),
        in_namespace.clone(),
        in_namespace,
    );
    let shell = Arc::new(UpgradeContext {
        upgrades,
        clusters,
        campaigns,
        records: record_store,
        records_ready: tokio::sync::OnceCell::new(),
    });
    let others = other_upgrades(&client);
    let controller = controller
        .watches_shared_stream(changes, move |c: Arc<CachedCluster>| {
            by_cluster(c.metadata.namespace.clone(), &|_| true)
        })
        .watches_stream(record_stream, |_: ClusterUpgradeRecord| {
            std::iter::empty::<ObjectRef<ClusterUpgrade>>()
        })
        .watches(
            Api::<MaintenanceSchedule>::all(client.clone()),
            watcher::Config::default(),
            move |m: MaintenanceSchedule| by_schedule(m.namespace(), &|_| true),
        )
        .watches(
            Api::<VersionPolicy>::all(client),
            watcher::Config::default(),
            move |p: VersionPolicy| {
                let name = p.name_any();
                by_policy(p.namespace(), &|x| {
                    x.spec
                        .release_ref
                        .as_ref()
                        .and_then(upkeep_api::cluster_upgrade::ReleaseRef::policy_name)
                        == Some(name.as_str())
                })
            },
        )
        .watches_stream(others, move |o: PartialObjectMeta<ClusterUpgrade>| {
            let name = o.name_any();
            by_upgrade(o.namespace(), &|x| concerned_by(x, &name))
        });
    let kind = "ClusterUpgrade";
    crate::framework::run(controller, kind, reconcile_upgrade, shell, shutdown).await;
}

/// Every ClusterUpgrade changed, for the campaigns that overlap it. Another upgrade is looked
/// at by name only: its metadata is enough (a campaign's status can be large, and every status
/// write of it is an event here).
fn other_upgrades(
    client: &kube::Client,
) -> impl futures_util::Stream<Item = Result<PartialObjectMeta<ClusterUpgrade>, watcher::Error>>
+ Send
+ use<> {
    watcher(
        Api::<PartialObjectMeta<ClusterUpgrade>>::all(client.clone()),
        watcher::Config::default(),
    )
    .backoff(crate::framework::watch_backoff())
    .touched_objects()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rv: &str, state: &str) -> Arc<ClusterUpgrade> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "upkeep.dev/v1alpha1", "kind": "ClusterUpgrade",
                "metadata": {"name": "u", "namespace": "org", "resourceVersion": rv},
                "spec": {"targetVersion": "30.0.0"},
                "status": {"state": state},
            }))
            .expect("a ClusterUpgrade"),
        )
    }

    /// Acknowledgements not yet written reach what the next reconcile reads as recorded; one
    /// whose record the store does not show yet is kept for the time after.
    #[test]
    fn pending_acknowledgements_join_the_records() {
        let t = |s: &str| Time(s.parse().expect("ts"));
        let state = |name: &str, ack: Option<Time>| upkeep_api::cluster_upgrade::ClusterState {
            name: name.into(),
            state: Some("Triggered".into()),
            acknowledged_at: ack,
            ..Default::default()
        };
        let mut records = vec![
            state("a", None),
            state("b", Some(t("2026-11-21T09:00:00Z"))),
            state("c", None),
        ];
        let pending = vec![
            ("a".to_owned(), t("2026-11-21T10:00:00Z")),
            ("b".to_owned(), t("2026-11-21T10:00:00Z")),
            ("z".to_owned(), t("2026-11-21T10:00:00Z")),
        ];
        let unseen = with_acks(&mut records, &pending);
        let acks: Vec<Option<String>> = records
            .iter()
            .map(|r| r.acknowledged_at.as_ref().map(|a| a.0.to_string()))
            .collect();
        assert_eq!(
            acks,
            [
                Some("2026-11-21T10:00:00Z".to_owned()),
                Some("2026-11-21T09:00:00Z".to_owned()),
                None
            ],
            "a: pending joins; b: the recorded one stays; c: none pending"
        );
        assert_eq!(
            unseen,
            [("z".to_owned(), t("2026-11-21T10:00:00Z"))],
            "z: kept"
        );
    }

    /// A reconcile on a cached object that predates this controller's last write decides from
    /// that write; once the cache shows it (or someone else's write), from the cache.
    #[tokio::test]
    async fn decisions_start_from_the_status_as_written() {
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
        let client = kube::Client::try_from(config).expect("a client (never used)");
        let u = UpgradeSettings::new(Arc::new(Context::new(client)));
        let written = ClusterUpgradeStatus {
            state: Some("Running".into()),
            ..ClusterUpgradeStatus::default()
        };
        let state = |o: &Arc<ClusterUpgrade>| {
            o.status
                .as_ref()
                .and_then(|s| s.state.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            state(&u.as_written(at("1", "Pending"))),
            "Pending",
            "nothing written yet: the cache"
        );
        // Decided on rv 1; record-before-act answered rv 2, the final write rv 3.
        u.remember(&at("1", "Pending"), &["2".into(), "3".into()], &written);
        let cases = [
            (
                "1",
                "Running",
                "the object the decision was made on: as written",
            ),
            ("2", "Running", "the record-before-act write: as written"),
            ("9", "Pending", "someone else's write: the cache"),
            ("1", "Pending", "the remembered write was dropped with it"),
        ];
        for (rv, want, why) in cases {
            assert_eq!(state(&u.as_written(at(rv, "Pending"))), want, "{why}");
        }
        u.remember(&at("1", "Pending"), &["2".into(), "3".into()], &written);
        assert_eq!(
            state(&u.as_written(at("3", "Running"))),
            "Running",
            "the cache caught up"
        );
        assert_eq!(
            state(&u.as_written(at("2", "Pending"))),
            "Pending",
            "and the memory is gone"
        );
        u.remember(&at("1", "Pending"), &["2".into(), "3".into()], &written);
        u.seen(&at("2", "Pending"));
        assert_eq!(
            state(&u.as_written(at("1", "Pending"))),
            "Running",
            "the watch showing an older version keeps the memory"
        );
        u.seen(&at("3", "Running"));
        assert_eq!(
            state(&u.as_written(at("1", "Pending"))),
            "Pending",
            "the watch showing the write drops it"
        );
        u.remember(&at("1", "Pending"), &[], &written);
        assert_eq!(
            state(&u.as_written(at("1", "Pending"))),
            "Pending",
            "nothing written: nothing remembered"
        );
    }
}
