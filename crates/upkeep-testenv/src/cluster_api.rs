//! Cluster API in tests: a small `Cluster` CRD ([`crd_yaml`]), a builder for `Cluster` objects
//! ([`cluster_yaml`]), and a test provider loop ([`Provider`]) that plays the part of Cluster
//! API's controllers on the real test API server.
//!
//! Why it is shaped this way:
//! - Running Cluster API itself would need a workload infrastructure; upkeep only reads a
//!   version place (the `release.giantswarm.io/version` label or `spec.topology.version`) and
//!   the status conditions. So the CRD is the real group/version/kind
//!   (`clusters.cluster.x-k8s.io`, `v1beta1`, status subresource) with a schema that keeps
//!   everything (`x-kubernetes-preserve-unknown-fields`), and the provider writes status the way
//!   Cluster API v1beta1 does: `conditions[] {type, status, severity, reason, message,
//!   lastTransitionTime}` plus `failureReason`/`failureMessage`, by merge patch on the status
//!   subresource.
//! - The provider watches (not polls) the clusters of one namespace. A cluster seen for the
//!   first time is simply Ready. A change of its version place rolls it through
//!   `Ready=False reason=Upgrading` (and `ControlPlaneReady=False`) and, after a step
//!   ([`Provider::with_step`], default 300 ms), to `Ready=True`/`ControlPlaneReady=True` — or,
//!   when the cluster carries the annotation [`FAIL_ANNOTATION`], to
//!   `Ready=False severity=Error reason=UpgradeFailed`. A newer change during the step
//!   supersedes the older one. `lastTransitionTime` is written in whole RFC 3339 seconds, like
//!   the API server's `metav1.Time`.
//! - It counts the version changes it rolled per cluster ([`Provider::upgrades_seen`]), so a
//!   test can assert that an upgrade was triggered exactly once; patch and watch failures are
//!   kept ([`Provider::errors`]) instead of being printed, so a test can show them.
//! - It is a Tokio task of the test's runtime and stops when the [`Provider`] is dropped.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::StreamExt as _;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher;
use serde_json::{Value, json};

/// `apiVersion` of the test `Cluster` objects.
pub const API_VERSION: &str = "cluster.x-k8s.io/v1beta1";
/// The label that carries a cluster's release version (the default version place).
pub const VERSION_LABEL: &str = "release.giantswarm.io/version";
/// Annotation asking the provider to FAIL the next upgrade of this cluster with the
/// annotation's value as message.
pub const FAIL_ANNOTATION: &str = "test.upkeep.dev/fail";
/// The provider's default time between "upgrading" and the outcome.
pub const DEFAULT_STEP: Duration = Duration::from_millis(300);

/// The `CustomResourceDefinition` of Cluster API's `Cluster` (`v1beta1`, served and stored,
/// status subresource), with a minimal schema that keeps unknown fields of `spec` and
/// `status`. Valid on kube-apiserver 1.20.
pub fn crd_yaml() -> String {
    "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: clusters.cluster.x-k8s.io
spec:
  group: cluster.x-k8s.io
  scope: Namespaced
  names:
    kind: Cluster
    listKind: ClusterList
    plural: clusters
    singular: cluster
  versions:
    - name: v1beta1
      served: true
      storage: true
      subresources:
        status: {}
      additionalPrinterColumns:
        - name: Version
          type: string
          jsonPath: .metadata.labels.release\\.giantswarm\\.io/version
        - name: Ready
          type: string
          jsonPath: .status.conditions[?(@.type==\"Ready\")].status
      schema:
        openAPIV3Schema:
          type: object
          properties:
            apiVersion:
              type: string
            kind:
              type: string
            metadata:
              type: object
            spec:
              type: object
              x-kubernetes-preserve-unknown-fields: true
            status:
              type: object
              x-kubernetes-preserve-unknown-fields: true
"
    .to_owned()
}

/// The API resource of the test `Cluster` (for kube-rs `Api<DynamicObject>`).
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "cluster.x-k8s.io",
        "v1beta1",
        "Cluster",
    ))
}

/// A YAML string scalar (JSON's quoting is valid YAML).
pub(crate) fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

fn metadata_yaml(name: &str, namespace: &str, labels: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        "apiVersion: {API_VERSION}\nkind: Cluster\nmetadata:\n  name: {}\n  namespace: {}\n",
        quoted(name),
        quoted(namespace)
    );
    if !labels.is_empty() {
        yaml.push_str("  labels:\n");
        for (key, value) in labels {
            let _ = writeln!(yaml, "    {}: {}", quoted(key), quoted(value));
        }
    }
    yaml
}

/// A `Cluster` whose version is the [`VERSION_LABEL`] label `version`, with extra `labels`.
pub fn cluster_yaml(name: &str, namespace: &str, labels: &[(&str, &str)], version: &str) -> String {
    let mut all: Vec<(&str, &str)> = labels
        .iter()
        .copied()
        .filter(|(k, _)| *k != VERSION_LABEL)
        .collect();
    all.push((VERSION_LABEL, version));
    metadata_yaml(name, namespace, &all) + "spec: {}\n"
}

/// A `Cluster` whose version is `spec.topology.version` (a ClusterClass-managed cluster), with
/// `labels`.
pub fn cluster_yaml_topology(
    name: &str,
    namespace: &str,
    labels: &[(&str, &str)],
    version: &str,
) -> String {
    metadata_yaml(name, namespace, labels)
        + &format!(
            "spec:\n  topology:\n    class: test-class\n    version: {}\n",
            quoted(version)
        )
}

/// The version place of a cluster: `spec.topology.version` when set, else the label.
fn version_of(cluster: &DynamicObject) -> Option<String> {
    cluster.data["spec"]["topology"]["version"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| {
            cluster
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(VERSION_LABEL).cloned())
        })
}

/// Now, in whole seconds, as RFC 3339 (`2025-01-02T03:04:05Z`).
fn now_seconds() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn condition(
    kind: &str,
    status: bool,
    reason: Option<&str>,
    severity: Option<&str>,
    message: Option<&str>,
    at: &str,
) -> Value {
    let mut c = json!({
        "type": kind,
        "status": if status { "True" } else { "False" },
        "lastTransitionTime": at,
    });
    for (key, value) in [
        ("reason", reason),
        ("severity", severity),
        ("message", message),
    ] {
        if let Some(value) = value {
            c[key] = json!(value);
        }
    }
    c
}

/// The status patch for a ready cluster.
fn ready_status() -> Value {
    let at = now_seconds();
    json!({ "status": {
        "phase": "Provisioned",
        "controlPlaneReady": true,
        "infrastructureReady": true,
        "failureReason": null,
        "failureMessage": null,
        "conditions": [
            condition("Ready", true, None, None, None, &at),
            condition("ControlPlaneReady", true, None, None, None, &at),
        ],
    }})
}

fn upgrading_status(version: Option<&str>) -> Value {
    let at = now_seconds();
    let message = format!("upgrading to {}", version.unwrap_or("(no version)"));
    json!({ "status": {
        "phase": "Provisioned",
        "controlPlaneReady": false,
        "failureReason": null,
        "failureMessage": null,
        "conditions": [
            condition("Ready", false, Some("Upgrading"), Some("Info"), Some(&message), &at),
            condition("ControlPlaneReady", false, Some("Upgrading"), Some("Info"), Some(&message), &at),
        ],
    }})
}

fn failed_status(message: &str) -> Value {
    let at = now_seconds();
    json!({ "status": {
        "phase": "Failed",
        "controlPlaneReady": false,
        "failureReason": "UpgradeFailed",
        "failureMessage": message,
        "conditions": [
            condition("Ready", false, Some("UpgradeFailed"), Some("Error"), Some(message), &at),
            condition("ControlPlaneReady", false, Some("UpgradeFailed"), Some("Error"), Some(message), &at),
        ],
    }})
}

#[derive(Debug, Default)]
struct Tracked {
    version: Option<String>,
    /// Bumped on each version change; a delayed outcome only lands if it is still current.
    epoch: u64,
}

#[derive(Debug, Default)]
struct Shared {
    tracked: Mutex<HashMap<String, Tracked>>,
    upgrades: Mutex<HashMap<String, usize>>,
    errors: Mutex<Vec<String>>,
    step_ms: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn error(&self, text: String) {
        lock(&self.errors).push(text);
    }

    async fn patch(&self, api: &Api<DynamicObject>, name: &str, what: &str, body: &Value) {
        if let Err(e) = api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(body))
            .await
        {
            self.error(format!("writing {what} status of cluster {name}: {e}"));
        }
    }
}

/// The test provider loop: plays Cluster API for the `Cluster` objects of one namespace (see
/// the module docs). Stops when dropped.
#[derive(Debug)]
pub struct Provider {
    namespace: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        // Aborting the loop drops its JoinSet, which aborts any pending delayed outcome.
        self.task.abort();
    }
}

impl Provider {
    /// Starts watching the clusters of `namespace` (the CRD must exist; until it does, the
    /// watch retries with backoff and [`errors`](Self::errors) says so). Must be called inside
    /// a Tokio runtime.
    pub fn start(client: kube::Client, namespace: &str) -> Self {
        let shared = Arc::new(Shared::default());
        shared.step_ms.store(
            u64::try_from(DEFAULT_STEP.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
        let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, &api_resource());
        let task = tokio::spawn(run(api, shared.clone()));
        Self {
            namespace: namespace.to_owned(),
            shared,
            task,
        }
    }

    /// Sets the time between "upgrading" and the outcome (default 300 ms).
    #[must_use]
    pub fn with_step(self, step: Duration) -> Self {
        self.set_step(step);
        self
    }

    /// Changes the time between "upgrading" and the outcome of the next upgrades.
    pub fn set_step(&self, step: Duration) {
        self.shared.step_ms.store(
            u64::try_from(step.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// The namespace it plays Cluster API in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// How many version changes of cluster `name` it has rolled (0 for an unknown cluster).
    pub fn upgrades_seen(&self, name: &str) -> usize {
        lock(&self.shared.upgrades).get(name).copied().unwrap_or(0)
    }

    /// Whether it has seen cluster `name` (and so will treat its next version change as an
    /// upgrade).
    pub fn seen(&self, name: &str) -> bool {
        lock(&self.shared.tracked).contains_key(name)
    }

    /// The version it last saw for cluster `name`.
    pub fn version(&self, name: &str) -> Option<String> {
        lock(&self.shared.tracked)
            .get(name)
            .and_then(|t| t.version.clone())
    }

    /// Failures of its watch and status patches so far.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.shared.errors).clone()
    }
}

async fn run(api: Api<DynamicObject>, shared: Arc<Shared>) {
    let mut delayed = tokio::task::JoinSet::new();
    let stream = watcher(api.clone(), watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        while delayed.try_join_next().is_some() {}
        match event {
            Ok(watcher::Event::Apply(cluster) | watcher::Event::InitApply(cluster)) => {
                observe(&api, &shared, &mut delayed, &cluster).await;
            }
            Ok(watcher::Event::Delete(cluster)) => {
                if let Some(name) = cluster.metadata.name {
                    lock(&shared.tracked).remove(&name);
                }
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
            Err(e) => shared.error(format!("watching clusters: {e}")),
        }
    }
}

async fn observe(
    api: &Api<DynamicObject>,
    shared: &Arc<Shared>,
    delayed: &mut tokio::task::JoinSet<()>,
    cluster: &DynamicObject,
) {
    let Some(name) = cluster.metadata.name.clone() else {
        return;
    };
    let version = version_of(cluster);
    let epoch = {
        let mut tracked = lock(&shared.tracked);
        match tracked.get_mut(&name) {
            None => {
                tracked.insert(
                    name.clone(),
                    Tracked {
                        version: version.clone(),
                        epoch: 0,
                    },
                );
                None
            }
            Some(t) if t.version == version => return,
            Some(t) => {
                t.version.clone_from(&version);
                t.epoch += 1;
                *lock(&shared.upgrades).entry(name.clone()).or_default() += 1;
                Some(t.epoch)
            }
        }
    };
    let Some(epoch) = epoch else {
        shared.patch(api, &name, "ready", &ready_status()).await;
        return;
    };
    shared
        .patch(
            api,
            &name,
            "upgrading",
            &upgrading_status(version.as_deref()),
        )
        .await;
    let failure = cluster
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(FAIL_ANNOTATION).cloned());
    let step = Duration::from_millis(shared.step_ms.load(Ordering::SeqCst));
    let (api, shared) = (api.clone(), shared.clone());
    delayed.spawn(async move {
        tokio::time::sleep(step).await;
        let current = lock(&shared.tracked).get(&name).map(|t| t.epoch) == Some(epoch);
        if !current {
            return; // superseded by a newer change (or the cluster is gone)
        }
        match failure {
            Some(message) => {
                shared
                    .patch(&api, &name, "failed", &failed_status(&message))
                    .await;
            }
            None => shared.patch(&api, &name, "ready", &ready_status()).await,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_yaml_is_valid_and_carries_the_version() {
        let cases = [
            (
                cluster_yaml("c1", "org-a", &[("env", "prod")], "25.0.0"),
                "release.giantswarm.io/version\": \"25.0.0\"",
                "the label is the default version place",
            ),
            (
                cluster_yaml(
                    "c1",
                    "org-a",
                    &[(VERSION_LABEL, "1.0.0"), ("a: b", "x\"y")],
                    "2.0.0",
                ),
                "\"a: b\": \"x\\\"y\"",
                "odd keys and values are quoted, and the version argument wins over a label",
            ),
            (
                cluster_yaml_topology("c2", "org-a", &[], "v1.30.1"),
                "version: \"v1.30.1\"",
                "the topology form writes spec.topology.version",
            ),
        ];
        for (yaml, fragment, reason) in cases {
            assert!(yaml.contains(fragment), "{reason}: {yaml}");
            assert!(
                !yaml.contains("\"1.0.0\""),
                "{reason}: stale version kept: {yaml}"
            );
        }
    }

    #[test]
    fn rfc3339_seconds() {
        let text = now_seconds();
        let parsed: jiff::Timestamp = text.parse().expect("parses back");
        assert_eq!(parsed.subsec_nanosecond(), 0, "whole seconds: {text}");
        assert!(text.ends_with('Z') && text.len() == 20, "UTC form: {text}");
    }
}
