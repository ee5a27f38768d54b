//! Gather: everything a ClusterUpgrade's decision reads, and nothing else. The Clusters come
//! from the watch-fed store (only those the upgrade selects or has recorded are converted: a
//! namespace may hold thousands that other upgrades are about); the rest is read from the API
//! server on each reconcile.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use upkeep_api::cluster_upgrade::NamedSchedule;
use upkeep_api::{ClusterObject, ClusterUpgrade, MaintenanceSchedule, VersionPolicy};
use upkeep_core::rollout;

use super::{Snapshot, UpgradeContext, UpgradeSettings};
use crate::framework::Error;

/// Reads the snapshot [`super::decide`] decides on.
pub(super) async fn gather(s: &UpgradeContext, object: &ClusterUpgrade) -> Result<Snapshot, Error> {
    let u = &s.upgrades;
    let namespace = object.namespace().unwrap_or_default();
    s.clusters_ready
        .get_or_try_init(|| async {
            s.clusters
                .wait_until_ready()
                .await
                .map_err(|_| Error::ClustersNotWatched)
        })
        .await?;
    let schedules = schedules(u, &namespace).await?;
    let release = release(u, object, &namespace).await?;
    let mut finished = HashMap::new();
    for dep in &object.spec.after {
        finished.insert(
            dep.name.clone(),
            finished_of(u, &namespace, &dep.name).await?,
        );
    }
    let no_labels = BTreeMap::new();
    let concerns = object.concerns();
    let clusters: Vec<ClusterObject> = s
        .clusters
        .state()
        .iter()
        .filter(|c| c.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter(|c| {
            concerns(
                c.metadata.name.as_deref().unwrap_or_default(),
                c.metadata.labels.as_ref().unwrap_or(&no_labels),
            )
        })
        .filter_map(|c| ClusterObject::from_parts(&c.metadata, &c.data).ok())
        .collect();
    Ok(Snapshot {
        clusters,
        schedules,
        release,
        finished,
    })
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

/// The `releaseRef` VersionPolicy's `latestVersion` as written (trimmed), if resolved.
async fn release(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    namespace: &str,
) -> Result<Option<String>, Error> {
    let Some(r) = &object.spec.release_ref else {
        return Ok(None);
    };
    let api: Api<VersionPolicy> = Api::namespaced(u.client(), namespace);
    let policy = api.get_opt(&r.name).await.map_err(|source| Error::Read {
        kind: "VersionPolicy",
        object: format!("{namespace}/{}", r.name.clone()),
        source,
    })?;
    Ok(policy
        .and_then(|p| p.status)
        .and_then(|s| s.latest_version)
        .map(|v| v.trim().to_owned()))
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
