//! Gather: everything a ClusterUpgrade's decision reads, and nothing else. The Clusters come
//! from the watch-fed store (only those the upgrade selects or has recorded are converted: a
//! namespace may hold thousands that other upgrades are about); the rest is read from the API
//! server on each reconcile, the `releaseRef` included: a Giant Swarm Release is a GET of a
//! cluster-scoped dynamic object (upkeep does not own the kind, and it may not be installed), so
//! a Release that appears or changes state is seen on the next reconcile, which for such an
//! upgrade comes at least every poll interval (see `reconcile_upgrade`). The upgrade's
//! ClusterUpgradeRecords come from their own watch-fed store, like the Clusters.

use std::collections::HashMap;

use jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use upkeep_api::cluster_upgrade::NamedSchedule;
use upkeep_api::release::{self, Resolution};
use upkeep_api::{ClusterUpgrade, MaintenanceSchedule, VersionPolicy};
use upkeep_core::rollout;

use super::{Snapshot, UpgradeContext, UpgradeSettings};
use crate::framework::Error;

/// The upgrade's records by cluster (what `act` writes against).
pub(super) type Records = HashMap<String, std::sync::Arc<upkeep_api::ClusterUpgradeRecord>>;

/// Reads the snapshot [`super::decide`] decides on, and the upgrade's records.
pub(super) async fn gather(
    s: &UpgradeContext,
    object: &ClusterUpgrade,
) -> Result<(Snapshot, Records), Error> {
    let u = &s.upgrades;
    let namespace = object.namespace().unwrap_or_default();
    // Deciding without the records would start clusters that already finished.
    s.records_ready
        .get_or_try_init(|| async {
            s.records
                .wait_until_ready()
                .await
                .map_err(|_| Error::ClustersNotWatched)
        })
        .await?;
    let records = super::records::of_campaign(&s.records, &u.fresh_records, object);
    let schedules = schedules(u, &namespace).await?;
    let release = release(u, object, &namespace).await?;
    let mut finished = HashMap::new();
    for dep in &object.spec.after {
        finished.insert(
            dep.name.clone(),
            finished_of(u, &namespace, &dep.name).await?,
        );
    }
    let concerns = object.concerns();
    let clusters = s
        .clusters_of(&namespace, |name, labels| {
            concerns(name, labels) || records.contains_key(name)
        })
        .await?;
    // The other campaigns of the namespace, for overlaps (the watch-fed store: what another
    // campaign recorded a moment ago may be missing, and is seen on the next reconcile).
    let others = s
        .campaigns
        .state()
        .into_iter()
        .filter(|o| o.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .collect();
    let recorded = records.values().map(|r| r.spec.to_state()).collect();
    Ok((
        Snapshot {
            clusters,
            schedules,
            release,
            finished,
            others,
            records: recorded,
        },
        records,
    ))
}

async fn schedules(u: &UpgradeSettings, namespace: &str) -> Result<Vec<NamedSchedule>, Error> {
    let api: Api<MaintenanceSchedule> = Api::namespaced(u.client(), namespace);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Read {
            kind: "MaintenanceSchedule",
            object: format!("{namespace}/{}", "*".to_owned()),
            source,
        })?;
    // An invalid schedule governs nothing (its own controller reports it); an upgrade that
    // names it waits (`ScheduleNotFound`).
    Ok(list
        .items
        .iter()
        .filter_map(|m| NamedSchedule::from_object(m).ok())
        .collect())
}

/// What the `releaseRef` resolves to: a VersionPolicy's `latestVersion` (missing while the
/// policy is missing or has none), or a Giant Swarm Release read as a dynamic object
/// (cluster-scoped; a missing object, or a missing Release kind, is
/// [`Resolution::Missing`] with the reason). `None` without a `releaseRef`.
async fn release(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    namespace: &str,
) -> Result<Option<Resolution>, Error> {
    let Some(r) = &object.spec.release_ref else {
        return Ok(None);
    };
    if let Some(name) = r.release_name() {
        return giant_swarm_release(u, name).await.map(Some);
    }
    let api: Api<VersionPolicy> = Api::namespaced(u.client(), namespace);
    let policy = api.get_opt(&r.name).await.map_err(|source| Error::Read {
        kind: "VersionPolicy",
        object: format!("{namespace}/{}", r.name.clone()),
        source,
    })?;
    let found = policy.is_some();
    let latest = policy.and_then(|p| p.status).and_then(|s| s.latest_version);
    Ok(Some(Resolution::of_policy(latest.as_deref(), || {
        if found {
            format!(
                "VersionPolicy {namespace}/{} has no latestVersion yet",
                r.name
            )
        } else {
            format!("VersionPolicy {namespace}/{} not found", r.name)
        }
    })))
}

/// The cluster-scoped `releases.release.giantswarm.io/v1alpha1` object `name`, resolved.
async fn giant_swarm_release(u: &UpgradeSettings, name: &str) -> Result<Resolution, Error> {
    let api: Api<DynamicObject> = Api::all_with(u.client(), &release_resource());
    match api.get(name).await {
        Ok(o) => {
            let value = serde_json::to_value(&o).unwrap_or_default();
            Ok(release::resolve(
                name,
                release::Release::from_value(&value).as_ref(),
            ))
        }
        // The object missing is a Status naming it (`releases.release.giantswarm.io "x" not
        // found`); an API group or resource that is not served is a bare 404.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Resolution::Missing(
            if e.message.contains(&format!("\"{name}\" not found")) {
                release::resolve(name, None)
                    .reason()
                    .unwrap_or_default()
                    .to_owned()
            } else {
                format!(
                    "Release {name}: the Release kind ({}.{}) is not installed on this cluster",
                    release::PLURAL,
                    release::GROUP
                )
            },
        )),
        Err(source) => Err(Error::Read {
            kind: "Release",
            object: name.to_owned(),
            source,
        }),
    }
}

/// Giant Swarm's `Release` kind (cluster-scoped).
pub(super) fn release_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(release::GROUP, release::VERSION, release::KIND),
        release::PLURAL,
    )
}

/// How the `after` upgrade `name` ended, if it did.
async fn finished_of(
    u: &UpgradeSettings,
    namespace: &str,
    name: &str,
) -> Result<Option<(rollout::Outcome, Timestamp)>, Error> {
    let api: Api<ClusterUpgrade> = Api::namespaced(u.client(), namespace);
    let other = api.get_opt(name).await.map_err(|source| Error::Read {
        kind: "ClusterUpgrade",
        object: format!("{namespace}/{}", name.to_owned()),
        source,
    })?;
    Ok(other.and_then(|o| o.status).and_then(|s| s.finished()))
}
