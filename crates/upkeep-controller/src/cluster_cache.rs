//! The one Cluster cache of the process: a single watch of Cluster API `Cluster` objects whose
//! store both the ClusterUpgrade controller (which plans over the clusters of a namespace) and
//! the scheduled-upgrade controller (which reconciles each cluster's kubectl-gs annotations)
//! read, and whose changes are fanned out to each of them.
//!
//! Why it is shaped this way:
//! - Thousands of clusters are cached (20,000 in one campaign is a target), so each is kept as
//!   a [`CachedCluster`]: what upkeep reads of it and nothing else, converted once when it is
//!   listed or changes, by upkeep-api's own reading (`ClusterObject::from_parts`). The watch
//!   deserializes straight into it (a lean raw form, then the conversion), so no
//!   `DynamicObject` JSON map of a whole Cluster lives past one list page. Labels are packed
//!   into one string (one allocation instead of a map node and two strings per label), only the
//!   scheduled-upgrade and `upkeep.dev/` annotations are kept, and an empty status is no
//!   allocation at all.
//! - One watch for the process: two controllers each listing and caching every Cluster cost a
//!   second copy and a second initial list (the 5,000-cluster benchmark went from 56 to 68 MiB
//!   with two). [`ClusterWatch`] takes its subscribers before it starts, so none misses the
//!   initial list; each subscriber gets every applied cluster, and deleted ones if it asks (a
//!   campaign notices a cluster that went away; a controller whose own object is the Cluster
//!   does not ask: there is nothing left to reconcile), through an unbounded channel of `Arc`s
//!   so a busy controller never stalls the other.
//! - Readiness is this module's own signal ([`ClusterCache::ready`]), not
//!   `Store::wait_until_ready`: that future wakes only the last of several concurrent waiters,
//!   and the scheduled-upgrade controller's runner already waits on the store.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::{Deserialize, Deserializer};
use tokio::sync::{mpsc, watch};
use upkeep_api::ClusterObject;
use upkeep_api::cluster::ClusterStatus;
use upkeep_api::scheduled::{TARGET_RELEASE, TARGET_TIME};

/// Separates a label's key from its value, and one label from the next, in
/// [`CachedCluster`]'s packed labels. Kubernetes allows neither in a label key or value.
const SEP: char = '\0';

/// One cached Cluster: name, namespace, uid, resourceVersion, deletion time, the labels, the
/// scheduled-upgrade and `upkeep.dev/` annotations, `spec.topology.version`, the provider and
/// the parts of `status` upkeep reads.
#[derive(Clone, Debug, Default)]
pub struct CachedCluster {
    /// name, namespace, uid, resourceVersion, deletionTimestamp and the kept annotations.
    pub metadata: ObjectMeta,
    /// `key\0value\0key\0value…` (see [`CachedCluster::labels`]).
    labels: Box<str>,
    topology_version: Option<Box<str>>,
    provider: Option<Box<str>>,
    /// `None`: nothing upkeep reads was reported.
    status: Option<Box<ClusterStatus>>,
}

impl CachedCluster {
    /// The labels, as pairs.
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = self.labels.split(SEP);
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
            .filter(|(k, _)| !k.is_empty())
    }

    /// The labels as a map (what upkeep-api's readers take).
    pub fn label_map(&self) -> BTreeMap<String, String> {
        self.labels()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// Whether it carries either kubectl-gs scheduled-upgrade annotation.
    pub fn scheduled(&self) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(TARGET_RELEASE) || a.contains_key(TARGET_TIME))
    }

    /// The cluster as upkeep-api reads it (what the decisions take).
    pub fn to_object(&self) -> ClusterObject {
        let labels = self.label_map();
        ClusterObject {
            name: self.metadata.name.clone().unwrap_or_default(),
            namespace: self.metadata.namespace.clone(),
            release_version: labels
                .get(upkeep_api::cluster::RELEASE_VERSION_LABEL)
                .cloned(),
            labels,
            annotations: self.metadata.annotations.clone().unwrap_or_default(),
            topology_version: self.topology_version.as_deref().map(ToOwned::to_owned),
            provider: self.provider.as_deref().map(ToOwned::to_owned),
            resource_version: self.metadata.resource_version.clone(),
            status: self.status.clone().unwrap_or_default(),
        }
    }

    /// The cached form of a Cluster as the API server sends it.
    fn from_raw(raw: RawCluster) -> CachedCluster {
        let RawMeta {
            name,
            namespace,
            uid,
            resource_version,
            deletion_timestamp,
            labels,
            annotations,
        } = raw.metadata;
        let mut meta = ObjectMeta {
            name,
            namespace,
            labels,
            annotations,
            resource_version,
            ..ObjectMeta::default()
        };
        let mut body = serde_json::Map::new();
        if let Some(spec) = raw.spec {
            body.insert("spec".to_owned(), spec.into_value());
        }
        if let Some(status) = raw.status {
            body.insert("status".to_owned(), status);
        }
        let body = serde_json::Value::Object(body);
        // A Cluster without a name is not served by the API server; it is cached nameless and
        // matched by no one.
        let object = ClusterObject::from_parts(&meta, &body).unwrap_or_default();
        let mut labels = String::new();
        for (k, v) in meta.labels.take().unwrap_or_default() {
            if k.contains(SEP) || v.contains(SEP) {
                continue;
            }
            labels.push_str(&k);
            labels.push(SEP);
            labels.push_str(&v);
            labels.push(SEP);
        }
        if let Some(a) = &mut meta.annotations {
            a.retain(|k, _| {
                k == TARGET_RELEASE || k == TARGET_TIME || k.starts_with("upkeep.dev/")
            });
        }
        if meta.annotations.as_ref().is_some_and(BTreeMap::is_empty) {
            meta.annotations = None;
        }
        meta.uid = uid;
        meta.deletion_timestamp = deletion_timestamp;
        let status = (*object.status != ClusterStatus::default()).then_some(object.status);
        CachedCluster {
            metadata: meta,
            labels: labels.into_boxed_str(),
            topology_version: object.topology_version.map(String::into_boxed_str),
            provider: object.provider.map(String::into_boxed_str),
            status,
        }
    }
}

/// What is read of a Cluster from the API server; everything else is skipped unparsed.
#[derive(Deserialize, Default)]
struct RawCluster {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: Option<RawSpec>,
    #[serde(default)]
    status: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    deletion_timestamp: Option<Time>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// The parts of `spec` upkeep reads: `topology.version` and `infrastructureRef.kind`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawSpec {
    #[serde(default)]
    topology: Option<RawTopology>,
    #[serde(default)]
    infrastructure_ref: Option<RawKind>,
}

#[derive(Deserialize, Default)]
struct RawTopology {
    #[serde(default)]
    version: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct RawKind {
    #[serde(default)]
    kind: Option<serde_json::Value>,
}

impl RawSpec {
    fn into_value(self) -> serde_json::Value {
        let mut spec = serde_json::Map::new();
        if let Some(v) = self.topology.and_then(|t| t.version) {
            spec.insert("topology".to_owned(), serde_json::json!({"version": v}));
        }
        if let Some(k) = self.infrastructure_ref.and_then(|r| r.kind) {
            spec.insert(
                "infrastructureRef".to_owned(),
                serde_json::json!({"kind": k}),
            );
        }
        serde_json::Value::Object(spec)
    }
}

impl<'de> Deserialize<'de> for CachedCluster {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RawCluster::deserialize(d).map(CachedCluster::from_raw)
    }
}

impl kube::Resource for CachedCluster {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind((): &()) -> Cow<'_, str> {
        "Cluster".into()
    }
    fn group((): &()) -> Cow<'_, str> {
        upkeep_api::cluster::CLUSTER_API_GROUP.into()
    }
    fn version((): &()) -> Cow<'_, str> {
        "v1beta1".into()
    }
    fn plural((): &()) -> Cow<'_, str> {
        "clusters".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A subscriber's stream of changed (applied or deleted) clusters.
pub type ClusterChanges = std::pin::Pin<Box<dyn Stream<Item = Arc<CachedCluster>> + Send>>;

/// The cache's readers: the store and whether it has been listed.
#[derive(Clone)]
pub struct ClusterCache {
    store: Store<CachedCluster>,
    ready: watch::Receiver<bool>,
}

impl std::fmt::Debug for ClusterCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCache").finish_non_exhaustive()
    }
}

impl ClusterCache {
    /// The store (complete once [`ClusterCache::ready`] has resolved).
    pub fn store(&self) -> &Store<CachedCluster> {
        &self.store
    }

    /// Resolves once every Cluster has been listed; an error when the watch ended before.
    pub async fn ready(&self) -> Result<(), watch::error::RecvError> {
        let mut ready = self.ready.clone();
        ready.wait_for(|r| *r).await.map(|_| ())
    }
}

/// The watch before it starts: take every subscription first (see the module docs).
pub struct ClusterWatch {
    api: Api<CachedCluster>,
    subscribers: Vec<Subscriber>,
}

struct Subscriber {
    tx: mpsc::UnboundedSender<Arc<CachedCluster>>,
    /// Whether it is told of deleted clusters too.
    deleted: bool,
}

impl Subscriber {
    fn new(deleted: bool) -> (Subscriber, ClusterChanges) {
        let (tx, rx) = mpsc::unbounded_channel();
        let changes = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|c| (c, rx))
        }));
        (Subscriber { tx, deleted }, changes)
    }
}

impl std::fmt::Debug for ClusterWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterWatch")
            .field("subscribers", &self.subscribers.len())
            .finish_non_exhaustive()
    }
}

impl ClusterWatch {
    /// A watch of every Cluster the client may list.
    pub fn new(client: &kube::Client) -> Self {
        ClusterWatch {
            api: Api::all(client.clone()),
            subscribers: Vec::new(),
        }
    }

    /// Every cluster listed, then each applied (and, with `deleted`, each deleted), from the
    /// start of the watch.
    pub fn subscribe(&mut self, deleted: bool) -> ClusterChanges {
        let (subscriber, changes) = Subscriber::new(deleted);
        self.subscribers.push(subscriber);
        changes
    }

    /// The cache, and the future that keeps it filled (run it as long as the readers).
    pub fn start(self) -> (ClusterCache, impl Future<Output = ()> + Send + use<>) {
        let events = watcher(self.api, watcher::Config::default())
            .backoff(crate::framework::watch_backoff());
        fill(events, self.subscribers)
    }
}

/// The cache `events` fill, and the future that applies them to the store and tells each
/// subscriber (see the module docs).
fn fill<E>(
    events: E,
    mut subscribers: Vec<Subscriber>,
) -> (ClusterCache, impl Future<Output = ()> + Send + use<E>)
where
    E: Stream<Item = Result<watcher::Event<CachedCluster>, watcher::Error>> + Send + 'static,
{
    let mut writer = reflector::store::Writer::<CachedCluster>::default();
    let store = writer.as_reader();
    let (ready_tx, ready) = watch::channel(false);
    let driver = async move {
        futures_util::pin_mut!(events);
        // The same failure again (a management cluster without Cluster API answers every list
        // with 404, every few seconds) is logged once at warn, then at debug until it changes.
        let mut last_error = None;
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(e) => e,
                Err(error) => {
                    let text = error.to_string();
                    if last_error.as_ref() == Some(&text) {
                        tracing::debug!(error = %text, "watching Clusters; retrying with backoff");
                    } else {
                        tracing::warn!(error = %text, hint = "a 404 means the Cluster API CRD (clusters.cluster.x-k8s.io) is not installed: ClusterUpgrades wait until it is", "watching Clusters; retrying with backoff");
                        last_error = Some(text);
                    }
                    continue;
                }
            };
            // The watcher says Init before every attempt to list, a failing one included:
            // only what the list or watch delivered means the failure is over.
            if !matches!(event, watcher::Event::Init) {
                last_error = None;
            }
            writer.apply_watcher_event(&event);
            let (changed, deleted) = match event {
                watcher::Event::Apply(c) | watcher::Event::InitApply(c) => (c, false),
                watcher::Event::Delete(c) => (c, true),
                watcher::Event::InitDone => {
                    ready_tx.send_replace(true);
                    continue;
                }
                watcher::Event::Init => continue,
            };
            let changed = Arc::new(changed);
            subscribers.retain(|s| (deleted && !s.deleted) || s.tx.send(changed.clone()).is_ok());
        }
    };
    (ClusterCache { store, ready }, driver)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What is kept of a Cluster as the API server sends it, and what is read back from it.
    #[test]
    fn a_cluster_is_kept_compact_and_reads_back_whole() {
        let sent = json!({
            "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
            "metadata": {
                "name": "c", "namespace": "org", "uid": "u1", "resourceVersion": "7",
                "labels": {"release.giantswarm.io/version": "29.0.0", "stage": "dev"},
                "annotations": {
                    TARGET_RELEASE: "30.0.0", TARGET_TIME: "15 Sep 21 08:00 UTC",
                    "upkeep.dev/freeze-until": "2030-01-01T00:00:00Z",
                    "kubectl.kubernetes.io/last-applied-configuration": "{…}",
                },
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
                "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "u"}],
            },
            "spec": {
                "topology": {"version": "v1.30.0", "class": "big"},
                "infrastructureRef": {"kind": "AWSCluster", "name": "c"},
                "controlPlaneEndpoint": {"host": "api.c.example", "port": 443},
            },
            "status": {"controlPlaneReady": true, "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}
            ]},
        });
        let cached: CachedCluster = serde_json::from_value(sent.clone()).expect("reads");
        let whole: kube::api::DynamicObject = serde_json::from_value(sent).expect("reads");
        let want = ClusterObject::from_parts(&whole.metadata, &whole.data).expect("reads");
        let mut got = cached.to_object();
        assert_eq!(
            got.annotations.keys().collect::<Vec<_>>(),
            vec![TARGET_RELEASE, TARGET_TIME, "upkeep.dev/freeze-until"],
            "only the scheduled-upgrade and upkeep.dev/ annotations are kept"
        );
        got.annotations.clone_from(&want.annotations);
        assert_eq!(
            format!("{got:?}"),
            format!("{want:?}"),
            "the rest reads as upkeep-api reads the whole object"
        );
        assert!(cached.scheduled());
        assert_eq!(cached.metadata.uid.as_deref(), Some("u1"));
        assert!(cached.metadata.managed_fields.is_none());
        assert!(cached.metadata.owner_references.is_none());
        assert!(cached.status.is_some());
    }

    /// A cluster with nothing upkeep reads in its status keeps no status at all, and one
    /// without labels or annotations keeps none.
    #[test]
    fn a_bare_cluster_keeps_nothing_extra() {
        let cached: CachedCluster = serde_json::from_value(json!({
            "metadata": {"name": "c", "namespace": "org"},
            "spec": {"controlPlaneEndpoint": {"host": "h", "port": 443}},
            "status": {"phase": "Provisioned"},
        }))
        .expect("reads");
        assert!(cached.status.is_none());
        assert!(cached.metadata.annotations.is_none());
        assert_eq!(cached.labels().count(), 0);
        assert!(!cached.scheduled());
        assert_eq!(cached.to_object().name, "c");
    }

    fn named(name: &str, rv: &str) -> CachedCluster {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "org", "resourceVersion": rv}
        }))
        .expect("reads")
    }

    /// One watch fills the store and tells every subscriber: each applied cluster (the initial
    /// list included), deleted ones only to a subscriber that asked; ready once listed.
    #[tokio::test]
    async fn one_watch_fills_the_store_and_tells_each_subscriber() {
        use watcher::Event;
        let (a, b, a2) = (named("a", "1"), named("b", "2"), named("a", "3"));
        let events = futures_util::stream::iter(
            [
                Event::Init,
                Event::InitApply(a),
                Event::InitApply(b.clone()),
                Event::InitDone,
                Event::Apply(a2),
                Event::Delete(b),
            ]
            .map(Ok),
        );
        let (to_all, all) = Subscriber::new(true);
        let (to_applied, applied) = Subscriber::new(false);
        let (cache, driver) = fill(events, vec![to_all, to_applied]);
        assert!(!*cache.ready.borrow(), "not ready before the list");
        driver.await;
        cache.ready().await.expect("ready after the list");
        let seen = |s: ClusterChanges| async move {
            s.map(|c| {
                format!(
                    "{}@{}",
                    c.metadata.name.as_deref().unwrap_or_default(),
                    c.metadata.resource_version.as_deref().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .await
        };
        assert_eq!(
            seen(all).await,
            ["a@1", "b@2", "a@3", "b@2"],
            "deletions asked for"
        );
        assert_eq!(seen(applied).await, ["a@1", "b@2", "a@3"], "no deletions");
        let kept: Vec<_> = cache
            .store()
            .state()
            .iter()
            .map(|c| c.metadata.resource_version.clone().unwrap_or_default())
            .collect();
        assert_eq!(kept, ["3"], "the store holds what is there now");
    }
}
