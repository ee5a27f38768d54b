//! Cluster API `Cluster` objects, read leniently at the boundary.
//!
//! upkeep does not own this kind and must not break when Cluster API adds fields, so only the
//! few fields upkeep reads are deserialized, into a plain [`ClusterObject`]; everything else is
//! ignored. Both `v1beta1` and `v1beta2` carry these fields at the same places, except the
//! status: v1beta1 keeps its conditions (with `severity`) in `status.conditions` and the new
//! ones in `status.v1beta2.conditions`; v1beta2 keeps the new ones in `status.conditions` and
//! the old ones under `status.deprecated.v1beta1`. The status is therefore read from a JSON
//! value by hand: a field of an unexpected shape is skipped, never an error, because a
//! half-understood status must not stop upkeep from reading the version label.
//!
//! [`ClusterStatus::observed`] turns what was read into the rollout core's
//! [`Observed`](upkeep_core::rollout::Observed): the conversion happens here, once.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Deserialize;

use crate::cluster_upgrade::VersionSource;

/// The group of Cluster API's `Cluster`.
pub const CLUSTER_API_GROUP: &str = "cluster.x-k8s.io";
/// The label that carries a cluster's release version (Giant Swarm convention, the default).
pub const RELEASE_VERSION_LABEL: &str = "release.giantswarm.io/version";
/// Annotation: no upgrade starts on this cluster before this RFC 3339 instant.
pub const FREEZE_UNTIL: &str = "upkeep.dev/freeze-until";
/// Annotation: why the cluster is frozen (shown with the freeze).
pub const FREEZE_REASON: &str = "upkeep.dev/freeze-reason";

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
    /// The provider (`aws`, `azure`, `vsphere`, `cloud-director`, `eks`), from
    /// `spec.infrastructureRef.kind` (see [`crate::release::provider_from_infrastructure_kind`]);
    /// `None` when the kind is missing or unknown.
    pub provider: Option<String>,
    /// `metadata.resourceVersion`: the precondition of a patch decided on this object.
    pub resource_version: Option<String>,
    /// What the provider reports (boxed: most readers of a cluster never look at it).
    pub status: Box<ClusterStatus>,
}

/// The parts of a Cluster's `status` upkeep reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterStatus {
    /// Every condition found: `status.conditions`, `status.v1beta2.conditions`,
    /// `status.deprecated.v1beta1.conditions`, in that order.
    pub conditions: Vec<ClusterCondition>,
    /// `status.failureReason` (v1beta1) or `status.deprecated.v1beta1.failureReason`.
    pub failure_reason: Option<String>,
    /// `status.failureMessage` (v1beta1) or `status.deprecated.v1beta1.failureMessage`.
    pub failure_message: Option<String>,
    /// `status.controlPlaneReady` (v1beta1).
    pub control_plane_ready: Option<bool>,
}

/// One condition, v1beta1 (with `severity`) or metav1 shaped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterCondition {
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// v1beta1 only: `Error`, `Warning`, `Info` or empty.
    pub severity: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub last_transition_time: Option<Timestamp>,
}

/// Why a cluster annotation cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    #[error("annotation {FREEZE_UNTIL} of cluster {cluster}: invalid RFC 3339 time {value:?}")]
    InvalidFreeze { cluster: String, value: String },
}

impl ClusterError {
    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ClusterError::InvalidFreeze { .. } => {
                Some("use a time with an offset, e.g. 2026-01-07T00:00:00Z".to_owned())
            }
        }
    }
}

impl ClusterObject {
    /// The version at `source` (`None`: the label, the default).
    pub fn version_at(&self, source: Option<VersionSource>) -> Option<&str> {
        match source {
            None | Some(VersionSource::Label) => self.release_version.as_deref(),
            Some(VersionSource::Topology) => self.topology_version.as_deref(),
        }
    }

    /// The freeze from the `upkeep.dev/freeze-until` / `freeze-reason` annotations; `None`
    /// when there is none or it is not a valid time (see [`ClusterObject::freeze_checked`]).
    pub fn freeze(&self) -> Option<(Timestamp, Option<String>)> {
        self.freeze_checked().ok().flatten()
    }

    /// [`ClusterObject::freeze`], telling an invalid `freeze-until` apart from none.
    pub fn freeze_checked(&self) -> Result<Option<(Timestamp, Option<String>)>, ClusterError> {
        let Some(value) = self.annotations.get(FREEZE_UNTIL) else {
            return Ok(None);
        };
        let until = value
            .trim()
            .parse::<Timestamp>()
            .map_err(|_| ClusterError::InvalidFreeze {
                cluster: self.name.clone(),
                value: value.clone(),
            })?;
        let reason = self
            .annotations
            .get(FREEZE_REASON)
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        Ok(Some((until, reason)))
    }

    /// The freeze the rollout core is given, in both shapes (controller and CLI): the
    /// annotations' freeze, and an unreadable `freeze-until` as a freeze without end whose
    /// reason says why (someone meant to freeze the cluster; going ahead would ignore them).
    pub fn rollout_freeze(&self) -> Option<(Timestamp, Option<String>)> {
        match self.freeze_checked() {
            Ok(freeze) => freeze,
            Err(e) => Some((Timestamp::MAX, Some(e.to_string()))),
        }
    }

    /// Reads a cluster from its JSON form (e.g. a `kube` `DynamicObject` serialised).
    pub fn from_json(value: serde_json::Value) -> Result<ClusterObject, crate::FieldError> {
        let raw: RawCluster = serde_json::from_value(value).map_err(|e| {
            crate::FieldError::new("", format!("not a Cluster: {e}"))
                .with_hint(Some("a cluster.x-k8s.io Cluster object"))
        })?;
        raw.into_object()
    }

    /// Reads a cluster from a `kube` `DynamicObject`'s parts without copying the object: the
    /// controller converts clusters on every reconcile, and serialising each whole object first
    /// cost more memory than everything it keeps.
    pub fn from_parts(
        metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
        body: &serde_json::Value,
    ) -> Result<ClusterObject, crate::FieldError> {
        let name = metadata
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                crate::FieldError::new("metadata.name", "missing object name")
                    .with_hint(Some("add metadata.name"))
            })?;
        let labels = metadata.labels.clone().unwrap_or_default();
        Ok(ClusterObject {
            name,
            namespace: metadata.namespace.clone(),
            release_version: labels.get(RELEASE_VERSION_LABEL).cloned(),
            annotations: metadata.annotations.clone().unwrap_or_default(),
            labels,
            topology_version: string_at(body, &["spec", "topology", "version"]),
            provider: provider_of(body.get("spec")),
            resource_version: metadata.resource_version.clone(),
            status: Box::new(
                body.get("status")
                    .map(ClusterStatus::from_value)
                    .unwrap_or_default(),
            ),
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct RawCluster {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: Option<serde_json::Value>,
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
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    resource_version: Option<String>,
}

/// The provider `spec.infrastructureRef.kind` names, if upkeep knows the kind.
fn provider_of(spec: Option<&serde_json::Value>) -> Option<String> {
    let kind = string_at(spec?, &["infrastructureRef", "kind"])?;
    crate::release::provider_from_infrastructure_kind(&kind).map(ToOwned::to_owned)
}

fn string_at(value: &serde_json::Value, path: &[&str]) -> Option<String> {
    let mut at = value;
    for key in path {
        at = at.get(key)?;
    }
    at.as_str().map(ToOwned::to_owned)
}

fn conditions_at(value: &serde_json::Value, path: &[&str], out: &mut Vec<ClusterCondition>) {
    let mut at = value;
    for key in path {
        match at.get(key) {
            Some(v) => at = v,
            None => return,
        }
    }
    let Some(list) = at.as_array() else {
        return;
    };
    for c in list {
        let (Some(type_), Some(status)) = (
            c.get("type").and_then(|v| v.as_str()),
            c.get("status").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        let text = |k: &str| {
            c.get(k)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(ToOwned::to_owned)
        };
        out.push(ClusterCondition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            severity: text("severity"),
            reason: text("reason"),
            message: text("message"),
            last_transition_time: text("lastTransitionTime").and_then(|t| t.parse().ok()),
        });
    }
}

impl ClusterStatus {
    /// Reads a `status` value leniently (see the module docs).
    pub fn from_value(status: &serde_json::Value) -> ClusterStatus {
        let mut conditions = Vec::new();
        conditions_at(status, &["conditions"], &mut conditions);
        conditions_at(status, &["v1beta2", "conditions"], &mut conditions);
        conditions_at(
            status,
            &["deprecated", "v1beta1", "conditions"],
            &mut conditions,
        );
        let old = |k: &str| {
            string_at(status, &[k])
                .or_else(|| string_at(status, &["deprecated", "v1beta1", k]))
                .filter(|s| !s.trim().is_empty())
        };
        ClusterStatus {
            conditions,
            failure_reason: old("failureReason"),
            failure_message: old("failureMessage"),
            control_plane_ready: status
                .get("controlPlaneReady")
                .and_then(serde_json::Value::as_bool),
        }
    }

    /// The first condition of `type_`.
    pub fn condition(&self, type_: &str) -> Option<&ClusterCondition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    fn truth(&self, type_: &str) -> Option<bool> {
        self.condition(type_).and_then(|c| match c.status.as_str() {
            "True" => Some(true),
            "False" => Some(false),
            _ => None,
        })
    }

    /// What the rollout core needs to know: readiness (`Available` when the provider speaks
    /// v1beta2, else `Ready`), the control plane, topology and rollout conditions when present,
    /// the latest transition among them, and a failure (`failureReason`/`failureMessage`, or
    /// any condition `False` with severity `Error`).
    pub fn observed(&self) -> upkeep_core::rollout::Observed {
        const WATCHED: [&str; 6] = [
            "Ready",
            "Available",
            "ControlPlaneReady",
            "ControlPlaneAvailable",
            "TopologyReconciled",
            "RollingOut",
        ];
        let ready = self.truth("Available").or_else(|| self.truth("Ready"));
        let control_plane_ready = self
            .truth("ControlPlaneAvailable")
            .or_else(|| self.truth("ControlPlaneReady"))
            .or(self.control_plane_ready);
        let last_transition = self
            .conditions
            .iter()
            .filter(|c| WATCHED.contains(&c.type_.as_str()))
            .filter_map(|c| c.last_transition_time)
            .max();
        let failure = match (&self.failure_reason, &self.failure_message) {
            (Some(r), Some(m)) => Some(format!("{r}: {m}")),
            (Some(one), None) | (None, Some(one)) => Some(one.clone()),
            (None, None) => self
                .conditions
                .iter()
                .find(|c| c.status == "False" && c.severity.as_deref() == Some("Error"))
                .map(|c| {
                    let detail = c.message.as_deref().or(c.reason.as_deref());
                    match detail {
                        Some(d) => format!("{}: {d}", c.type_),
                        None => format!("{} is False (severity Error)", c.type_),
                    }
                }),
        };
        upkeep_core::rollout::Observed {
            ready,
            control_plane_ready,
            topology_reconciled: self.truth("TopologyReconciled"),
            rolling_out: self.truth("RollingOut"),
            last_transition,
            failure,
        }
    }
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
            topology_version: self
                .spec
                .as_ref()
                .and_then(|s| string_at(s, &["topology", "version"])),
            provider: provider_of(self.spec.as_ref()),
            resource_version: self.metadata.resource_version,
            status: Box::new(
                self.status
                    .as_ref()
                    .map(ClusterStatus::from_value)
                    .unwrap_or_default(),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn cluster(value: serde_json::Value) -> ClusterObject {
        // The controller's borrowed reading must agree with the whole-object one, every time.
        let meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
            serde_json::from_value(value["metadata"].clone()).expect("metadata");
        let parts = ClusterObject::from_parts(&meta, &value).expect("a cluster from parts");
        let whole = ClusterObject::from_json(value).expect("a cluster");
        assert_eq!(whole, parts, "from_parts and from_json disagree");
        whole
    }

    #[test]
    fn metadata_spec_and_version_places() {
        let c = cluster(json!({
            "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
            "metadata": {"name": "a", "namespace": "org", "resourceVersion": "42",
                         "labels": {RELEASE_VERSION_LABEL: "29.1.0"}},
            "spec": {"topology": {"version": "v1.31.2", "class": 7}, "paused": "weird"},
        }));
        let cases = [
            (
                c.resource_version.as_deref(),
                Some("42"),
                "resourceVersion kept",
            ),
            (c.version_at(None), Some("29.1.0"), "default: the label"),
            (
                c.version_at(Some(VersionSource::Label)),
                Some("29.1.0"),
                "label",
            ),
            (
                c.version_at(Some(VersionSource::Topology)),
                Some("v1.31.2"),
                "topology, other spec fields of any shape ignored",
            ),
        ];
        for (got, want, why) in cases {
            assert_eq!(got, want, "{why}");
        }
        assert!(
            ClusterObject::from_json(json!({"metadata": {}})).is_err(),
            "a cluster needs a name"
        );
    }

    #[test]
    fn the_provider_from_the_infrastructure_kind() {
        let cases = [
            (
                json!({"infrastructureRef": {"kind": "AWSCluster", "name": "a"}}),
                Some("aws"),
                "CAPA",
            ),
            (
                json!({"infrastructureRef": {"kind": "VCDCluster"}}),
                Some("cloud-director"),
                "CAPVCD",
            ),
            (
                json!({"infrastructureRef": {"kind": "DockerCluster"}}),
                None,
                "an unknown kind",
            ),
            (
                json!({"infrastructureRef": {"kind": 3}}),
                None,
                "a kind of another shape",
            ),
            (
                json!({"topology": {"version": "v1.31.2"}}),
                None,
                "no infrastructureRef",
            ),
        ];
        for (spec, want, why) in cases {
            let c = cluster(json!({"metadata": {"name": "a"}, "spec": spec}));
            assert_eq!(c.provider.as_deref(), want, "{why}");
        }
    }

    #[test]
    fn freeze_annotations() {
        let with = |annotations: serde_json::Value| {
            cluster(json!({"metadata": {"name": "a", "annotations": annotations}}))
        };
        let cases = [
            (json!({}), Ok(None), "no annotation: not frozen"),
            (
                json!({FREEZE_UNTIL: "2026-01-07T00:00:00Z"}),
                Ok(Some((ts("2026-01-07T00:00:00Z"), None))),
                "until without reason",
            ),
            (
                json!({FREEZE_UNTIL: " 2026-01-07T01:00:00+01:00 ", FREEZE_REASON: "black friday"}),
                Ok(Some((
                    ts("2026-01-07T00:00:00Z"),
                    Some("black friday".into()),
                ))),
                "offset and surrounding blanks accepted, reason carried",
            ),
            (
                json!({FREEZE_UNTIL: "next tuesday"}),
                Err(ClusterError::InvalidFreeze {
                    cluster: "a".into(),
                    value: "next tuesday".into(),
                }),
                "an invalid time is an error naming the value, not silently no freeze",
            ),
        ];
        for (annotations, want, why) in cases {
            let c = with(annotations);
            assert_eq!(c.freeze_checked(), want, "{why}");
            assert_eq!(c.freeze(), want.ok().flatten(), "{why}");
        }
    }

    #[test]
    fn status_to_observed() {
        let t1 = "2026-01-01T10:00:00Z";
        let t2 = "2026-01-01T11:00:00Z";
        let cases = [
            (
                json!(null),
                (None, None, None, None, None, None),
                "no status: nothing known",
            ),
            (
                json!({"conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": t1},
                    {"type": "ControlPlaneReady", "status": "True", "lastTransitionTime": t2},
                    {"type": "InfrastructureReady", "status": "False", "lastTransitionTime": "2027-01-01T00:00:00Z"},
                ]}),
                (Some(true), Some(true), None, None, Some(t2), None),
                "v1beta1: Ready; latest transition among the watched conditions only",
            ),
            (
                json!({"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": t1}],
                       "v1beta2": {"conditions": [
                           {"type": "Available", "status": "False", "lastTransitionTime": t2},
                           {"type": "RollingOut", "status": "True"},
                           {"type": "TopologyReconciled", "status": "False"}]}}),
                (Some(false), None, Some(false), Some(true), Some(t2), None),
                "v1beta1 with v1beta2 conditions: Available wins over Ready",
            ),
            (
                json!({"conditions": [{"type": "Available", "status": "Unknown"},
                                      {"type": "ControlPlaneAvailable", "status": "False"}],
                       "deprecated": {"v1beta1": {"failureReason": "UpdateError",
                                                  "failureMessage": "etcd quorum lost"}}}),
                (
                    None,
                    Some(false),
                    None,
                    None,
                    None,
                    Some("UpdateError: etcd quorum lost"),
                ),
                "v1beta2: Unknown is not known; deprecated failure fields read",
            ),
            (
                json!({"conditions": [{"type": "Ready", "status": "False", "severity": "Error",
                                       "reason": "ScalingFailed", "message": "no capacity"},
                                      "garbage", {"type": 3}],
                       "controlPlaneReady": true}),
                (
                    Some(false),
                    Some(true),
                    None,
                    None,
                    None,
                    Some("Ready: no capacity"),
                ),
                "severity Error is a failure; malformed entries skipped; controlPlaneReady bool",
            ),
            (
                json!({"conditions": [{"type": "Ready", "status": "False", "severity": "Warning",
                                       "lastTransitionTime": "not a time"}],
                       "failureReason": ""}),
                (Some(false), None, None, None, None, None),
                "a warning is not a failure; a bad time and an empty reason are ignored",
            ),
        ];
        for (status, (ready, cp, topo, rolling, last, failure), why) in cases {
            let c = cluster(json!({"metadata": {"name": "a"}, "status": status}));
            let o = c.status.observed();
            assert_eq!(o.ready, ready, "{why}");
            assert_eq!(o.control_plane_ready, cp, "{why}");
            assert_eq!(o.topology_reconciled, topo, "{why}");
            assert_eq!(o.rolling_out, rolling, "{why}");
            assert_eq!(o.last_transition, last.map(ts), "{why}");
            assert_eq!(o.failure.as_deref(), failure, "{why}");
        }
    }
}
