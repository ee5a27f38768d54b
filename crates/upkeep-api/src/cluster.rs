//! Cluster API `Cluster` objects, read leniently at the boundary.
//!
//! upkeep does not own this kind and must not break when Cluster API adds fields, so only the
//! few fields upkeep reads are deserialized, into a plain [`ClusterObject`]; everything else is
//! ignored. Both `v1beta1` and `v1beta2` carry these fields at the same places.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The group of Cluster API's `Cluster`.
pub const CLUSTER_API_GROUP: &str = "cluster.x-k8s.io";
/// The label that carries a cluster's release version (Giant Swarm convention, the default).
pub const RELEASE_VERSION_LABEL: &str = "release.giantswarm.io/version";

/// What upkeep knows about a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterObject {
    pub name: String,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The `release.giantswarm.io/version` label.
    pub release_version: Option<String>,
    /// `spec.topology.version`.
    pub topology_version: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct RawCluster {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: Option<RawSpec>,
}

#[derive(Deserialize, Default)]
struct RawMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
struct RawSpec {
    #[serde(default)]
    topology: Option<RawTopology>,
}

#[derive(Deserialize, Default)]
struct RawTopology {
    #[serde(default)]
    version: Option<String>,
}

impl RawCluster {
    /// The cluster, or the path of the missing name.
    pub(crate) fn into_object(self) -> Result<ClusterObject, crate::FieldError> {
        let name = self
            .metadata
            .name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                crate::FieldError::new("metadata.name", "missing object name")
                    .with_hint(Some("add metadata.name"))
            })?;
        let labels = self.metadata.labels.unwrap_or_default();
        Ok(ClusterObject {
            name,
            namespace: self.metadata.namespace,
            release_version: labels.get(RELEASE_VERSION_LABEL).cloned(),
            annotations: self.metadata.annotations.unwrap_or_default(),
            labels,
            topology_version: self.spec.and_then(|s| s.topology).and_then(|t| t.version),
        })
    }
}
