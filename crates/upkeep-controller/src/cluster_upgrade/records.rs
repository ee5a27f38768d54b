//! Records: each cluster's upgrade as a `ClusterUpgradeRecord` of its own.
//!
//! Why it is shaped so:
//! - **Record before act.** Every cluster about to be changed has its record (state
//!   `Triggered`, `triggeredAt`) before the patch or the commit: a Direct cluster is patched
//!   only once its own record was written ([`Book::sync_entry`], clusters in parallel, so the
//!   first patches go out while later records are still written); a GitOps commit is made
//!   only once [`Book::sync`] over every Triggered entry succeeded. The name is a function of
//!   campaign and cluster, so a controller restarted between record and patch finds the record
//!   (in the store, or as a 409 on create) and the core says Triggered again: the same
//!   idempotent patch, never a second change.
//! - Records are read from a watch-fed store (lean: no managedFields or annotations), seen
//!   through [`Fresh`]: the records this controller wrote that the store does not show yet.
//!   The campaign's status lists only some of its clusters, so a reconcile that starts while
//!   the store lags behind would read a cluster triggered a moment ago as never started and
//!   trigger it again (seen: 41 of 300 clusters named in one UpgradeTriggered Event and again
//!   in a second). An entry of [`Fresh`] goes when the watch shows that version or a later
//!   one, or the record's deletion. Records are
//!   written with one request each: a create carries the whole record, a change is a merge
//!   patch of the fields that changed (a field that went away is `null`). Writes go
//!   [`RECORDS_IN_FLIGHT`] at a time, so a window opening over thousands of clusters is not
//!   a round trip per cluster in turn. A Direct cluster started costs two requests (record,
//!   patch) and one more per later transition (Upgrading, Succeeded or Failed): its
//!   `acknowledgedAt` is not a write of its own but goes with the record's next write, made by
//!   the next reconcile (the controller keeps it in memory until then; one that stops in
//!   between leaves it out, and the core then counts the timeout from `triggeredAt`, the
//!   change being evident on the cluster).
//! - A record found under our name but owned by another campaign of the same name (deleted
//!   and created again, its records not yet collected) is replaced; one owned by another pair
//!   of names that happens to spell the same (`a-b` + `c`, `a` + `b-c`) makes ours take the
//!   hashed name.
//! - Retention: after records were created, each such cluster keeps at most
//!   `records_per_cluster`; the oldest finished ones beyond are deleted (never one in flight,
//!   never one of this campaign).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use upkeep_api::cluster_upgrade::{ClusterState, ClusterUpgradeStatus, Trigger, VersionSource};
use upkeep_api::cluster_upgrade_record::{
    CAMPAIGN_LABEL, CLUSTER_LABEL, ClusterUpgradeRecordSpec, hashed_record_name, label_value,
    record_name,
};
use upkeep_api::version_place::PlaceType;
use upkeep_api::{ClusterUpgrade, ClusterUpgradeRecord};

use super::UpgradeSettings;
use crate::framework::{Error, FIELD_MANAGER};

/// Record writes in flight per reconcile.
pub const RECORDS_IN_FLIGHT: usize = 32;
/// Records kept per cluster when the controller is not told otherwise.
pub const DEFAULT_RECORDS_PER_CLUSTER: usize = 10;

const KIND: &str = "ClusterUpgradeRecord";

/// The records this controller wrote (created, found on a 409, patched) whose write the
/// watch-fed store does not show yet, by namespace and name: read over the store by
/// [`of_campaign`], so a reconcile never decides on a record older than one it wrote.
#[derive(Debug, Default)]
pub struct Fresh(std::sync::Mutex<HashMap<(String, String), Arc<ClusterUpgradeRecord>>>);

impl Fresh {
    fn key(r: &ClusterUpgradeRecord) -> (String, String) {
        (r.namespace().unwrap_or_default(), r.name_any())
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<ClusterUpgradeRecord>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `record` as the API server answered a write of it.
    fn wrote(&self, mut record: ClusterUpgradeRecord) {
        prune(&mut record);
        self.lock().insert(Self::key(&record), Arc::new(record));
    }

    /// The record `namespace/name` is gone (deleted by this controller, or a 404).
    fn gone(&self, namespace: &str, name: &str) {
        self.lock().remove(&(namespace.to_owned(), name.to_owned()));
    }

    /// What the watch delivered: a record applied at our version or a later one, or deleted,
    /// needs no overlay any more.
    pub(super) fn seen(&self, event: &kube::runtime::watcher::Event<ClusterUpgradeRecord>) {
        use kube::runtime::watcher::Event;
        match event {
            Event::Apply(r) | Event::InitApply(r) => {
                let mut fresh = self.lock();
                let key = Self::key(r);
                if fresh.get(&key).is_some_and(|ours| !newer(ours, r)) {
                    fresh.remove(&key);
                }
            }
            Event::Delete(r) => {
                self.lock().remove(&Self::key(r));
            }
            Event::Init | Event::InitDone => {}
        }
    }

    /// How many records wait for the store (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Whether `ours` is a later version than `seen`. resourceVersions are opaque to clients, but
/// the API server's are etcd revisions, increasing integers; when either does not read as one,
/// only the very version we wrote counts as seen.
fn newer(ours: &ClusterUpgradeRecord, seen: &ClusterUpgradeRecord) -> bool {
    let (a, b) = (
        ours.metadata.resource_version.as_deref(),
        seen.metadata.resource_version.as_deref(),
    );
    match (
        a.and_then(|v| v.parse::<u64>().ok()),
        b.and_then(|v| v.parse::<u64>().ok()),
    ) {
        (Some(a), Some(b)) => a > b,
        _ => a != b,
    }
}

/// Keeps only what is read of a cached record: the name, namespace, uid, owner references,
/// resourceVersion and creation time, and the spec (a window opening over 12,000 clusters
/// caches 12,000 records).
pub(super) fn prune(r: &mut ClusterUpgradeRecord) {
    let meta = &mut r.metadata;
    meta.managed_fields = None;
    meta.annotations = None;
    meta.finalizers = None;
    meta.labels = None;
    meta.generate_name = None;
    meta.self_link = None;
}

/// Sorts finished records oldest first, for retention. Times are whole seconds: two upgrades
/// of a cluster that finished within one second tie (seen: the newer of the two deleted). Then
/// the etcd revision of the last write decides, which orders them as they finished (a
/// finished record is not written again).
fn oldest_first(records: &mut [Arc<ClusterUpgradeRecord>]) {
    records.sort_by_key(|r| {
        (
            r.spec
                .finished_at
                .as_ref()
                .or(r.spec.triggered_at.as_ref())
                .map(|t| t.0),
            r.metadata.creation_timestamp.as_ref().map(|t| t.0),
            r.metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse::<u64>().ok()),
        )
    });
}

/// Whether `record` belongs to `object` (owned by its uid; a campaign deleted and created
/// again under the same name does not inherit the old one's records).
fn owned_by(record: &ClusterUpgradeRecord, object: &ClusterUpgrade) -> bool {
    let uid = object.metadata.uid.as_deref();
    uid.is_some()
        && record
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| Some(o.uid.as_str()) == uid)
}

/// The records of `object` in the store, by cluster, each replaced by the one this
/// controller wrote when the store does not show that write yet ([`Fresh`]).
pub(super) fn of_campaign(
    store: &Store<ClusterUpgradeRecord>,
    fresh: &Fresh,
    object: &ClusterUpgrade,
) -> HashMap<String, Arc<ClusterUpgradeRecord>> {
    let namespace = object.namespace();
    let name = object.name_any();
    let ours = |r: &ClusterUpgradeRecord| {
        r.namespace() == namespace && r.spec.campaign == name && owned_by(r, object)
    };
    let mut by_name: HashMap<String, Arc<ClusterUpgradeRecord>> = store
        .state()
        .into_iter()
        .filter(|r| ours(r))
        .map(|r| (r.name_any(), r))
        .collect();
    for r in fresh.lock().values().filter(|r| ours(r)) {
        match by_name.get(&r.name_any()) {
            Some(stored) if !newer(r, stored) => {}
            _ => {
                by_name.insert(r.name_any(), r.clone());
            }
        }
    }
    by_name
        .into_values()
        .map(|r| (r.spec.cluster.clone(), r))
        .collect()
}

/// Whether the cluster of `entry` needs a record: its upgrade started (Triggered, Upgrading,
/// Succeeded, Failed), or it was announced. Skipped and unannounced waiting clusters have none.
pub(super) fn needs_record(entry: &ClusterState) -> bool {
    matches!(
        entry.state.as_deref(),
        Some("Triggered" | "Upgrading" | "Succeeded" | "Failed")
    ) || entry.announced_at.is_some()
}

/// Where the version is written, as far as the spec says (`Auto` is found per cluster).
fn place(object: &ClusterUpgrade, source: VersionSource) -> String {
    let spec = &object.spec;
    let configured = spec.version_place.as_ref().map(|p| {
        let key = match p.type_ {
            PlaceType::Label => p.label_key.clone(),
            PlaceType::Values => p.values_key.clone(),
            PlaceType::Substitute => p.variable.clone(),
            _ => None,
        };
        match key {
            Some(k) => format!("{:?} {k}", p.type_),
            None => format!("{:?}", p.type_),
        }
    });
    let place = match (configured, source) {
        (Some(p), _) => p,
        (None, VersionSource::Topology) => "Topology spec.topology.version".to_owned(),
        (None, VersionSource::Label) => "Auto".to_owned(),
    };
    match (&spec.git_ops, spec.trigger) {
        (Some(g), Trigger::GitOps) => {
            format!("{place} in Git {}", g.path.as_deref().unwrap_or("."))
        }
        _ => place,
    }
}

/// One campaign's records for one reconcile.
pub(super) struct Book<'a> {
    u: &'a UpgradeSettings,
    object: &'a ClusterUpgrade,
    api: Api<ClusterUpgradeRecord>,
    /// The records as the reconcile found them, by cluster; one is dropped once this
    /// reconcile patched it (then `patched` says what it holds), so the store's newer copy is
    /// not kept twice while thousands of records are written.
    existing: std::sync::Mutex<HashMap<String, Arc<ClusterUpgradeRecord>>>,
    /// The records patched in this reconcile, by cluster (name, spec as written).
    patched: std::sync::Mutex<HashMap<String, (String, ClusterUpgradeRecordSpec)>>,
    place: String,
    /// The records created (or found on a 409) in this reconcile, by cluster: later writes in
    /// the same reconcile diff against them, and retention looks at their clusters.
    created: std::sync::Mutex<HashMap<String, (String, ClusterUpgradeRecordSpec)>>,
    /// Acknowledgements not written in this reconcile (see [`Book::sync`]).
    deferred: std::sync::Mutex<Vec<(String, Time)>>,
}

impl<'a> Book<'a> {
    pub(super) fn new(
        u: &'a UpgradeSettings,
        object: &'a ClusterUpgrade,
        existing: HashMap<String, Arc<ClusterUpgradeRecord>>,
        source: VersionSource,
    ) -> Self {
        let namespace = object.namespace().unwrap_or_default();
        Book {
            u,
            object,
            api: Api::namespaced(u.client(), &namespace),
            existing: std::sync::Mutex::new(existing),
            patched: std::sync::Mutex::default(),
            place: place(object, source),
            created: std::sync::Mutex::default(),
            deferred: std::sync::Mutex::default(),
        }
    }

    /// What the record of `entry` should say, keeping what an earlier write recorded (`old`)
    /// and the entry does not know (place, an acknowledgement, commit, pull request). The commit
    /// and pull request are the campaign's latest once the change was pushed (`acted`).
    fn desired(
        &self,
        entry: &ClusterState,
        status: &ClusterUpgradeStatus,
        old: Option<&ClusterUpgradeRecordSpec>,
        acted: bool,
    ) -> ClusterUpgradeRecordSpec {
        let trigger = self.object.spec.trigger;
        let mut spec = ClusterUpgradeRecordSpec::of_state(&self.object.name_any(), trigger, entry);
        let started = entry.triggered_at.is_some() && acted;
        spec.place = old
            .and_then(|o| o.place.clone())
            .or_else(|| entry.triggered_at.is_some().then(|| self.place.clone()));
        if spec.acknowledged_at.is_none() {
            spec.acknowledged_at = old.and_then(|o| o.acknowledged_at.clone());
        }
        if trigger == Trigger::GitOps && started {
            spec.commit = old
                .and_then(|o| o.commit.clone())
                .or_else(|| status.last_push_commit.clone());
            spec.pull_request = old
                .and_then(|o| o.pull_request.clone())
                .or_else(|| status.pull_request.clone());
        }
        spec
    }

    /// The write the record of `entry` needs (`None`: none): a create (`None` name) or a merge
    /// patch of the named record, with the spec it leaves.
    fn write_of(
        &self,
        entry: &ClusterState,
        status: &ClusterUpgradeStatus,
        acted: bool,
    ) -> Option<(
        Option<(String, serde_json::Value)>,
        ClusterUpgradeRecordSpec,
    )> {
        if !needs_record(entry) {
            return None;
        }
        let known = self.known(&entry.name);
        let want = self.desired(entry, status, known.as_ref().map(|k| &k.1), acted);
        match known {
            None => Some((None, want)),
            // A finished record never goes back (a store behind the API server).
            Some((_, old)) if old.is_finished() && !want.is_finished() => None,
            Some((name, old)) => diff(&old, &want).map(|p| (Some((name, p)), want)),
        }
    }

    /// The record of `cluster` as this reconcile knows it last (name, spec): created or
    /// patched here, else as found.
    fn known(&self, cluster: &str) -> Option<(String, ClusterUpgradeRecordSpec)> {
        let written =
            |m: &std::sync::Mutex<HashMap<String, (String, ClusterUpgradeRecordSpec)>>| {
                m.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(cluster)
                    .cloned()
            };
        written(&self.created)
            .or_else(|| written(&self.patched))
            .or_else(|| {
                self.existing
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(cluster)
                    .map(|r| (r.name_any(), r.spec.clone()))
            })
    }

    /// Carries out one [`Book::write_of`].
    async fn write(
        &self,
        update: Option<(String, serde_json::Value)>,
        want: ClusterUpgradeRecordSpec,
    ) -> Result<(), Error> {
        match update {
            None => self.create(want).await,
            Some((name, patch)) => {
                self.patch(&name, patch).await?;
                let mut created = self
                    .created
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(entry) = created.get_mut(&want.cluster) {
                    entry.1 = want;
                } else {
                    drop(created);
                    self.existing
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&want.cluster);
                    self.patched
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(want.cluster.clone(), (name, want));
                }
                Ok(())
            }
        }
    }

    /// Creates or updates the record of one entry of `status` when it needs one (record before
    /// act: the cluster of `entry` is changed only once this succeeded).
    pub(super) async fn sync_entry(
        &self,
        entry: &ClusterState,
        status: &ClusterUpgradeStatus,
    ) -> Result<(), Error> {
        match self.write_of(entry, status, false) {
            Some((update, want)) => self.write(update, want).await,
            None => Ok(()),
        }
    }

    /// Creates or updates the records of the entries of `status` that `keep` selects and
    /// that need one ([`needs_record`]), [`RECORDS_IN_FLIGHT`] at a time; `acted`: the change
    /// was made (a GitOps commit is known). A write that would only add the acknowledgement
    /// of a cluster named in `defer` is not made: that acknowledgement goes with the
    /// cluster's next record write ([`Book::deferred`]; the next reconcile makes it). The
    /// first failure.
    pub(super) async fn sync(
        &self,
        status: &ClusterUpgradeStatus,
        acted: bool,
        keep: impl Fn(&ClusterState) -> bool,
        defer: &HashSet<&str>,
    ) -> Result<(), Error> {
        let mut deferred = Vec::new();
        let writes: Vec<_> = status
            .clusters
            .iter()
            .filter(|e| keep(e))
            .filter_map(|e| {
                let write = self.write_of(e, status, acted)?;
                if let (Some((_, patch)), Some(at)) = (&write.0, &e.acknowledged_at)
                    && defer.contains(e.name.as_str())
                    && only_acknowledgement(patch)
                {
                    deferred.push((e.name.clone(), at.clone()));
                    return None;
                }
                Some(write)
            })
            .collect();
        if let Ok(mut d) = self.deferred.lock() {
            d.extend(deferred);
        }
        let mut results = futures_util::stream::iter(writes)
            .map(|(update, want)| self.write(update, want))
            .buffer_unordered(RECORDS_IN_FLIGHT);
        let mut first = None;
        while let Some(r) = results.next().await {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The acknowledgements [`Book::sync`] left for the next record write, by cluster.
    pub(super) fn deferred(&self) -> Vec<(String, Time)> {
        self.deferred.lock().map(|d| d.clone()).unwrap_or_default()
    }

    fn record(&self, name: String, spec: ClusterUpgradeRecordSpec) -> ClusterUpgradeRecord {
        let o = self.object;
        let owner = OwnerReference {
            api_version: ClusterUpgrade::api_version(&()).into_owned(),
            kind: ClusterUpgrade::kind(&()).into_owned(),
            name: o.name_any(),
            uid: o.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            // Not blocking: that needs `update` on clusterupgrades/finalizers where the
            // OwnerReferencesPermissionEnforcement admission plugin runs.
            block_owner_deletion: None,
        };
        let labels = [
            (CLUSTER_LABEL.to_owned(), label_value(&spec.cluster)),
            (CAMPAIGN_LABEL.to_owned(), label_value(&spec.campaign)),
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "upkeep".to_owned(),
            ),
        ];
        ClusterUpgradeRecord {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: o.namespace(),
                labels: Some(labels.into_iter().collect()),
                owner_references: Some(vec![owner]),
                ..ObjectMeta::default()
            },
            spec,
        }
    }

    /// Creates the record: 409 with our record already there is done (a restart between record
    /// and act, or a store that has not seen it yet); see the module docs for the others.
    async fn create(&self, spec: ClusterUpgradeRecordSpec) -> Result<(), Error> {
        let (campaign, cluster) = (spec.campaign.clone(), spec.cluster.clone());
        let mut name = record_name(&campaign, &cluster);
        for attempt in 0..3 {
            let post = PostParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PostParams::default()
            };
            let error = match self
                .api
                .create(&post, &self.record(name.clone(), spec.clone()))
                .await
            {
                Ok(written) => {
                    self.u.fresh_records.wrote(written);
                    if let Ok(mut c) = self.created.lock() {
                        c.insert(cluster, (name, spec));
                    }
                    return Ok(());
                }
                Err(kube::Error::Api(e)) if e.code == 409 && attempt < 2 => e,
                Err(source) => return Err(self.create_error(&name, source)),
            };
            let found = self
                .api
                .get_opt(&name)
                .await
                .map_err(|source| self.read_error(&name, source))?;
            match found {
                // Ours: created before a restart, or not in the store yet.
                Some(r) if owned_by(&r, self.object) && r.spec.cluster == cluster => {
                    let spec = r.spec.clone();
                    self.u.fresh_records.wrote(r);
                    if let Ok(mut c) = self.created.lock() {
                        c.insert(cluster, (name, spec));
                    }
                    return Ok(());
                }
                // Left by a campaign of the same name that was deleted: replace it.
                Some(r) if r.spec.campaign == campaign && r.spec.cluster == cluster => {
                    let params = DeleteParams {
                        preconditions: Some(Preconditions {
                            uid: r.metadata.uid.clone(),
                            resource_version: None,
                        }),
                        ..DeleteParams::default()
                    };
                    match self.api.delete(&name, &params).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                        Err(source) => return Err(self.delete_error(&name, source)),
                    }
                }
                // Another pair's record under the same plain name.
                Some(_) => name = hashed_record_name(&campaign, &cluster),
                // Deleted meanwhile: try again.
                None => {}
            }
            tracing::debug!(record = %name, reason = %error.message, "record name taken; trying again");
        }
        Err(Error::RecordTaken {
            object: format!("{}/{name}", self.object.namespace().unwrap_or_default()),
        })
    }

    async fn patch(&self, name: &str, patch: serde_json::Value) -> Result<(), Error> {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        match self
            .api
            .patch(
                name,
                &params,
                &Patch::Merge(serde_json::json!({ "spec": patch })),
            )
            .await
        {
            Ok(written) => {
                self.u.fresh_records.wrote(written);
                Ok(())
            }
            // Deleted meanwhile (by hand, or retention of a later upgrade): made again next time.
            Err(kube::Error::Api(e)) if e.code == 404 => {
                self.u
                    .fresh_records
                    .gone(&self.object.namespace().unwrap_or_default(), name);
                Ok(())
            }
            Err(source) => Err(Error::Update {
                kind: KIND,
                object: self.key(name),
                source,
            }),
        }
    }

    /// Retention: each cluster whose record was created in this reconcile keeps at most
    /// `records_per_cluster` records; the oldest finished ones beyond are deleted. A failure
    /// is logged: retention is done again on the cluster's next upgrade.
    pub(super) async fn retain(&self, store: &Store<ClusterUpgradeRecord>) {
        let created: HashSet<String> = self
            .created
            .lock()
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default();
        if created.is_empty() {
            return;
        }
        let keep = self.u.records_per_cluster.max(1);
        let namespace = self.object.namespace();
        let campaign = self.object.name_any();
        let mut by_cluster: HashMap<String, Vec<Arc<ClusterUpgradeRecord>>> = HashMap::new();
        for r in store.state() {
            if r.namespace() == namespace && created.contains(&r.spec.cluster) {
                by_cluster
                    .entry(r.spec.cluster.clone())
                    .or_default()
                    .push(r);
            }
        }
        let mut doomed = Vec::new();
        for cluster in &created {
            let records = by_cluster.remove(cluster).unwrap_or_default();
            // The record just created may not be in the store yet.
            let ours_seen = records.iter().any(|r| r.spec.campaign == campaign);
            let total = records.len() + usize::from(!ours_seen);
            let mut finished: Vec<_> = records
                .into_iter()
                .filter(|r| r.spec.campaign != campaign && r.spec.is_finished())
                .collect();
            oldest_first(&mut finished);
            doomed.extend(finished.into_iter().take(total.saturating_sub(keep)));
        }
        let mut deletes = futures_util::stream::iter(doomed)
            .map(|r| async move {
                let name = r.name_any();
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: r.metadata.uid.clone(),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match self.api.delete(&name, &params).await {
                    Ok(_) => {
                        self.u
                            .fresh_records
                            .gone(&r.namespace().unwrap_or_default(), &name);
                        tracing::info!(record = %self.key(&name), cluster = %r.spec.cluster, "record beyond retention deleted");
                    }
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(error) => {
                        tracing::warn!(%error, record = %self.key(&name), "deleting a record beyond retention; trying again on the cluster's next upgrade");
                    }
                }
            })
            .buffer_unordered(RECORDS_IN_FLIGHT);
        while deletes.next().await.is_some() {}
    }

    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.object.namespace().unwrap_or_default())
    }

    fn create_error(&self, name: &str, source: kube::Error) -> Error {
        Error::Create {
            kind: KIND,
            object: self.key(name),
            source,
        }
    }

    fn read_error(&self, name: &str, source: kube::Error) -> Error {
        Error::Read {
            kind: KIND,
            object: self.key(name),
            source,
        }
    }

    fn delete_error(&self, name: &str, source: kube::Error) -> Error {
        Error::Delete {
            kind: KIND,
            object: self.key(name),
            source,
        }
    }
}

/// Whether a record patch only adds the acknowledgement.
fn only_acknowledgement(patch: &serde_json::Value) -> bool {
    patch
        .as_object()
        .is_some_and(|p| p.len() == 1 && p.contains_key("acknowledgedAt"))
}

/// The merge patch that turns `old` into `new` (changed and new fields, `null` for fields
/// that went away), or `None` when they are the same.
fn diff(
    old: &ClusterUpgradeRecordSpec,
    new: &ClusterUpgradeRecordSpec,
) -> Option<serde_json::Value> {
    let (Ok(serde_json::Value::Object(old)), Ok(serde_json::Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return None;
    };
    let mut patch = serde_json::Map::new();
    for (k, v) in &new {
        if old.get(k) != Some(v) {
            patch.insert(k.clone(), v.clone());
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            patch.insert(k.clone(), serde_json::Value::Null);
        }
    }
    (!patch.is_empty()).then_some(serde_json::Value::Object(patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, cluster: &str, state: &str, rv: &str) -> ClusterUpgradeRecord {
        ClusterUpgradeRecord {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("fleet".into()),
                resource_version: Some(rv.into()),
                owner_references: Some(vec![OwnerReference {
                    uid: "uid-to-30".into(),
                    ..OwnerReference::default()
                }]),
                ..ObjectMeta::default()
            },
            spec: ClusterUpgradeRecordSpec {
                cluster: cluster.into(),
                campaign: "to-30".into(),
                state: state.into(),
                ..ClusterUpgradeRecordSpec::default()
            },
        }
    }

    #[test]
    fn retention_deletes_the_oldest_even_within_one_second() {
        let at = |s: &str| Some(Time(s.parse().unwrap()));
        let finished = |campaign: &str, when: &str, rv: &str| {
            let mut r = record(&format!("{campaign}-k"), "k", "Succeeded", rv);
            r.spec.campaign = campaign.into();
            r.spec.finished_at = at(when);
            r.metadata.creation_timestamp = at("2026-12-01T10:00:00Z");
            Arc::new(r)
        };
        // (records as the store lists them, the oldest's campaign, why)
        let cases = [
            (
                vec![
                    finished("to-31", "2026-12-01T10:00:05Z", "900"),
                    finished("to-30", "2026-12-01T10:00:01Z", "950"),
                ],
                "to-30",
                "the earlier finish is older, whatever the revision",
            ),
            (
                vec![
                    finished("to-31", "2026-12-01T10:00:01Z", "900"),
                    finished("to-30", "2026-12-01T10:00:01Z", "850"),
                ],
                "to-30",
                "the same second: the earlier revision finished first",
            ),
            (
                vec![
                    finished("to-30", "2026-12-01T10:00:01Z", "850"),
                    finished("to-31", "2026-12-01T10:00:01Z", "900"),
                ],
                "to-30",
                "listed the other way round: the same answer",
            ),
        ];
        for (mut records, want, why) in cases {
            oldest_first(&mut records);
            assert_eq!(records[0].spec.campaign, want, "{why}");
        }
    }

    /// A reconcile reads the records it wrote before the watch shows them, and the store
    /// again once the watch caught up: never an older record than one it wrote.
    #[test]
    fn a_lagging_store_is_read_through_what_was_written() {
        use kube::runtime::watcher::Event;
        type Step =
            Box<dyn Fn(&Fresh, &mut kube::runtime::reflector::store::Writer<ClusterUpgradeRecord>)>;
        let mut campaign = ClusterUpgrade::new("to-30", serde_json::from_value(serde_json::json!({"targetVersion": "30.0.0", "matchers": [{"name": "all", "key": "k", "value": "v"}]})).unwrap());
        campaign.metadata.namespace = Some("fleet".into());
        campaign.metadata.uid = Some("uid-to-30".into());
        let mut writer = kube::runtime::reflector::store::Writer::<ClusterUpgradeRecord>::default();
        let store = writer.as_reader();
        let fresh = Fresh::default();
        let state = |fresh: &Fresh, cluster: &str| {
            of_campaign(&store, fresh, &campaign)
                .get(cluster)
                .map(|r| r.spec.state.clone())
        };
        // Cases in order, each on the state the previous left: (what happens, cluster, state
        // read, why).
        let steps: Vec<(Step, &str, Option<&str>, &str)> = vec![
            (
                Box::new(|f, _| f.wrote(record("to-30-a", "a", "Triggered", "10"))),
                "a",
                Some("Triggered"),
                "created here, not in the store yet: read from what was written",
            ),
            (
                Box::new(|_, w| {
                    w.apply_watcher_event(&Event::Apply(record("to-30-b", "b", "Succeeded", "5")));
                }),
                "b",
                Some("Succeeded"),
                "only in the store: read from the store",
            ),
            (
                Box::new(|f, _| f.wrote(record("to-30-b", "b", "Upgrading", "12"))),
                "b",
                Some("Upgrading"),
                "the store shows an older version than written: the written one",
            ),
            (
                Box::new(|f, w| {
                    let e = Event::Apply(record("to-30-b", "b", "Upgrading", "12"));
                    w.apply_watcher_event(&e);
                    f.seen(&e);
                }),
                "b",
                Some("Upgrading"),
                "the watch caught up: the store's, and the overlay entry goes",
            ),
            (
                Box::new(|f, w| {
                    let e = Event::Apply(record("to-30-a", "a", "Failed", "20"));
                    w.apply_watcher_event(&e);
                    f.seen(&e);
                }),
                "a",
                Some("Failed"),
                "a later version by someone else wins over ours",
            ),
            (
                Box::new(|f, _| f.wrote(record("to-30-c", "c", "Triggered", "30"))),
                "c",
                Some("Triggered"),
                "another write waits for the store",
            ),
            (
                Box::new(|f, w| {
                    let e = Event::Delete(record("to-30-c", "c", "Triggered", "31"));
                    w.apply_watcher_event(&e);
                    f.seen(&e);
                }),
                "c",
                None,
                "deleted (e.g. collected with its campaign): gone from both",
            ),
        ];
        for (act, cluster, want, why) in steps {
            act(&fresh, &mut writer);
            assert_eq!(state(&fresh, cluster).as_deref(), want, "{why}");
        }
        assert_eq!(
            fresh.len(),
            0,
            "every write was seen by the watch: nothing is held"
        );
    }

    #[test]
    fn patches_carry_only_what_changed() {
        let old = ClusterUpgradeRecordSpec {
            cluster: "wc1".into(),
            campaign: "to-30".into(),
            state: "Triggered".into(),
            reason: Some("waiting for the provider".into()),
            ..ClusterUpgradeRecordSpec::default()
        };
        let cases = [
            (old.clone(), None, "nothing changed: no request"),
            (
                ClusterUpgradeRecordSpec {
                    state: "Upgrading".into(),
                    ..old.clone()
                },
                Some(serde_json::json!({"state": "Upgrading"})),
                "one field",
            ),
            (
                ClusterUpgradeRecordSpec {
                    reason: None,
                    ..old.clone()
                },
                Some(serde_json::json!({"reason": null})),
                "a field that went away is removed",
            ),
        ];
        for (new, want, why) in cases {
            assert_eq!(diff(&old, &new), want, "{why}");
        }
    }

    #[test]
    fn only_an_acknowledgement_waits_for_the_next_write() {
        let cases = [
            (
                serde_json::json!({"acknowledgedAt": "2026-11-21T10:00:00Z"}),
                true,
                "the acknowledgement alone: goes with the next write",
            ),
            (
                serde_json::json!({"acknowledgedAt": "2026-11-21T10:00:00Z", "state": "Upgrading"}),
                false,
                "with a transition: written now",
            ),
            (
                serde_json::json!({"state": "Upgrading"}),
                false,
                "a transition alone",
            ),
            (serde_json::json!({}), false, "nothing"),
        ];
        for (patch, want, why) in cases {
            assert_eq!(only_acknowledgement(&patch), want, "{why}");
        }
    }

    #[test]
    fn which_clusters_have_records() {
        let entry = |state: &str, announced: bool| ClusterState {
            name: "wc1".into(),
            state: Some(state.into()),
            announced_at: announced.then_some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
            ),
            ..ClusterState::default()
        };
        let cases = [
            (entry("Triggered", false), true, "about to be changed"),
            (entry("Upgrading", false), true, "in flight"),
            (entry("Succeeded", false), true, "finished"),
            (entry("Failed", false), true, "failed"),
            (entry("Waiting", true), true, "announced"),
            (entry("Waiting", false), false, "never touched"),
            (
                entry("Skipped", false),
                false,
                "already at the target: not an upgrade",
            ),
        ];
        for (e, want, why) in cases {
            assert_eq!(needs_record(&e), want, "{why}");
        }
    }
}
