//! ClusterUpgrade: one upgrade campaign over Cluster API `Cluster` objects, driven by the pure
//! rollout core (`upkeep_core::rollout::plan`).
//!
//! Three steps, one file each: [`gather`] reads (the Clusters of the upgrade's namespace
//! from a watch-fed store, the MaintenanceSchedules, the `releaseRef` VersionPolicy or Giant
//! Swarm Release, the
//! `after` upgrades' status), [`decide`] is pure (the one conversion in
//! `upkeep_api::cluster_upgrade::inputs`, `upkeep_core::rollout::plan`, the status to write,
//! the Events, the next look) and is what the CLI decides with too, and [`act`] writes
//! (announcements, the record-before-act status write, silences, patches or the GitOps commit,
//! Events, metrics).
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
//!   GitOps write loop (see `gitops.rs` here); re-applying is `UpToDate`, so record-before-act
//!   holds the same way. The commit and the pull request are recorded in status.
//! - An invalid spec (including `trigger: GitOps` without `gitOps`) is `Stalled` and waits for
//!   a change.
//! - Only spec changes of a ClusterUpgrade start a reconcile by themselves (the status this
//!   controller writes must not); Cluster, MaintenanceSchedule, VersionPolicy and `after`
//!   ClusterUpgrade changes are mapped to the upgrades they concern; while anything is
//!   Triggered or Upgrading the upgrade is also looked at every [`UpgradeSettings::poll`], and
//!   otherwise exactly at the plan's `next_check`. A Giant Swarm Release (`releaseRef` of
//!   `kind: Release`) is not watched: while it is missing or refused the upgrade is looked at
//!   every poll.

mod act;
pub mod decide;
mod gather;
mod gitops;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, predicates, watcher};
use upkeep_api::cluster_upgrade::{VersionSource, spec_message};
use upkeep_api::{ClusterUpgrade, MaintenanceSchedule, VersionPolicy};

use crate::alerts::{Alertmanager, Webhook};
use crate::framework::{Context, Error, Shared};
use crate::metrics::Metrics;
use decide::Decision;

pub use decide::{Snapshot, decide};

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
/// Event reason: a Direct change failed (the Cluster's patch, or its App or values ConfigMap);
/// the cluster stays Triggered and the change is retried with backoff.
pub const PATCH_FAILED: &str = "PatchFailed";
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
    /// Waiting clusters per upgrade, by reason (summed into `upkeep_clusters_waiting`).
    waiting: Mutex<HashMap<UpgradeKey, WaitingCounts>>,
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
            self.ctx.metrics.set_clusters_waiting(reason, n);
        }
    }
}

/// What a reconcile gets: the settings and the store of Clusters the controller watches.
pub struct UpgradeContext {
    pub upgrades: Arc<UpgradeSettings>,
    pub clusters: Store<DynamicObject>,
    /// Set once the Cluster store has been listed. Reconciles wait on this, not on
    /// `Store::wait_until_ready` directly: that future wakes only the last of several
    /// concurrent waiters (a oneshot receiver keeps one waker), so with several ClusterUpgrades
    /// at start-up all but one would wait forever.
    clusters_ready: tokio::sync::OnceCell<()>,
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
    let before = object.status.clone().unwrap_or_default();
    tracing::debug!(upgrade = %format!("{}/{}", object.namespace().unwrap_or_default(), object.name_any()), "reconciling");
    // An invalid spec reads nothing.
    if let Err(errors) = object.validate() {
        let message = spec_message(&errors);
        act::stall(u, &object, &before, "InvalidSpec", &message, now).await?;
        return Ok(Action::await_change());
    }
    let snapshot = gather::gather(&s, &object).await?;
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
            let action = act::act(u, &object, &before, &snapshot, &decided, now).await?;
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

/// Keeps only what upkeep reads of a cached Cluster: name, namespace, labels, `upkeep.dev/`
/// annotations, resourceVersion, `spec.topology.version`, `spec.infrastructureRef.kind` and
/// `status`. Thousands of clusters
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
    let mut spec = serde_json::Map::new();
    if let Some(v) = c.data.pointer("/spec/topology/version").cloned() {
        spec.insert("topology".to_owned(), serde_json::json!({"version": v}));
    }
    // The provider is read from the infrastructure kind (a Release is for one provider).
    if let Some(k) = c.data.pointer("/spec/infrastructureRef/kind").cloned() {
        spec.insert(
            "infrastructureRef".to_owned(),
            serde_json::json!({"kind": k}),
        );
    }
    if let Some(map) = c.data.as_object_mut() {
        map.retain(|k, _| k == "status");
        if !spec.is_empty() {
            map.insert("spec".to_owned(), serde_json::Value::Object(spec));
        }
    }
}

/// The Cluster store the reconciles read, and the pruned watch stream that fills it.
fn watch_clusters(
    client: &kube::Client,
    resource: &ApiResource,
) -> (
    Store<DynamicObject>,
    impl futures_util::Stream<Item = Result<DynamicObject, watcher::Error>> + use<>,
) {
    let writer = reflector::store::Writer::<DynamicObject>::new(resource.clone());
    let store = writer.as_reader();
    let stream = watcher(
        Api::<DynamicObject>::all_with(client.clone(), resource),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(prune_cluster)
    .reflect(writer)
    .touched_objects();
    (store, stream)
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

/// Runs the ClusterUpgrade controller until `shutdown` resolves.
pub async fn run_cluster_upgrades(
    upgrades: Arc<UpgradeSettings>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = upgrades.client();
    let resource = cluster_resource();
    let (cluster_store, cluster_stream) = watch_clusters(&client, &resource);
    // Only spec changes start a reconcile by themselves, not the status written here.
    let (reader, writer) = reflector::store();
    let stream = watcher(
        Api::<ClusterUpgrade>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(crate::framework::lean::<ClusterUpgrade>)
    .reflect(writer)
    .applied_objects()
    .predicate_filter(predicates::generation, PredicateConfig::default());
    let controller = Controller::for_stream(stream, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(UPGRADE_CONCURRENCY));
    let in_namespace = in_namespace(controller.store());
    let (by_cluster, by_schedule, by_policy, by_upgrade) = (
        in_namespace.clone(),
        in_namespace.clone(),
        in_namespace.clone(),
        in_namespace,
    );
    let shell = Arc::new(UpgradeContext {
        upgrades,
        clusters: cluster_store,
        clusters_ready: tokio::sync::OnceCell::new(),
    });
    let controller = controller
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
                    x.spec
                        .release_ref
                        .as_ref()
                        .and_then(upkeep_api::cluster_upgrade::ReleaseRef::policy_name)
                        == Some(name.as_str())
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
        );
    let kind = "ClusterUpgrade";
    crate::framework::run(controller, kind, reconcile_upgrade, shell, shutdown).await;
}
