//! Giant Swarm's clusters in tests: clusters that are Apps. The `App` CRD
//! ([`app_crd_yaml`], `apps.application.giantswarm.io/v1alpha1`) and the `Release` CRD
//! ([`release_crd_yaml`], `releases.release.giantswarm.io/v1alpha1`) as fixtures, builders for
//! a cluster App, its values ConfigMap and a Release, and a test chart loop ([`Chart`]) that
//! plays the cluster chart on the real test API server.
//!
//! Why it is shaped this way:
//! - At Giant Swarm a workload cluster is an App (`spec.name: cluster-<provider>`) whose chart
//!   renders the Cluster API objects; the `Cluster` carries the release as the label
//!   `release.giantswarm.io/version`. The release comes from the values ConfigMap
//!   (`spec.userConfig.configMap`, key `values`, `global.release.version`) in the newer
//!   release-based form, else from the App's `spec.version`. Running app-operator and Helm
//!   would need a workload cluster; upkeep only writes the App or its ConfigMap and then
//!   observes the `Cluster`. So the chart loop does exactly what the chart does for upkeep:
//!   when an App's `spec.version` or its values' `global.release.version` changes, it sets the
//!   Cluster's label. Cluster API's part (conditions upgrading → ready, or failure when the
//!   Cluster carries [`crate::cluster_api::FAIL_ANNOTATION`]) is the existing
//!   [`crate::cluster_api::Provider`], which the chart loop starts and owns: one rule, one
//!   place.
//! - The CRDs are the real group/version/kind with small structural schemas: the fields upkeep
//!   reads are typed, the fields Giant Swarm leaves open (`spec.install`, `spec.upgrade`,
//!   `status`, a Release's component extras) keep unknown fields, so a test object written the
//!   way Giant Swarm writes it is stored unchanged.
//! - Like app-operator, the loop renders only once both lists (Apps, ConfigMaps) are complete
//!   and never an App whose named values ConfigMap is missing, so a cluster's label moves only
//!   on a real change.
//! - The cluster a chart renders is named by the values' `global.metadata.name` when set, else
//!   by the App (Giant Swarm's convention: the App is named after the cluster).
//! - Watch and patch failures are kept ([`Chart::errors`]) instead of being printed, and the
//!   loop (and its provider) stop when the [`Chart`] is dropped.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher;
use serde_json::{Value, json};

use crate::cluster_api::{Provider, VERSION_LABEL, quoted};

/// `apiVersion` of Giant Swarm's App.
pub const APP_API_VERSION: &str = "application.giantswarm.io/v1alpha1";
/// `apiVersion` of Giant Swarm's Release.
pub const RELEASE_API_VERSION: &str = "release.giantswarm.io/v1alpha1";
/// The values key that carries the release in the newer, release-based cluster charts.
pub const RELEASE_VALUES_KEY: &str = "global.release.version";

/// The `CustomResourceDefinition` of Giant Swarm's `App` (namespaced, `v1alpha1`, status
/// subresource). Valid on kube-apiserver 1.20.
pub fn app_crd_yaml() -> String {
    "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: apps.application.giantswarm.io
spec:
  group: application.giantswarm.io
  scope: Namespaced
  names:
    kind: App
    listKind: AppList
    plural: apps
    singular: app
    categories: [common, giantswarm]
  versions:
    - name: v1alpha1
      served: true
      storage: true
      subresources:
        status: {}
      additionalPrinterColumns:
        - name: Desired Version
          type: string
          jsonPath: .spec.version
      schema:
        openAPIV3Schema:
          type: object
          properties:
            apiVersion: {type: string}
            kind: {type: string}
            metadata: {type: object}
            spec:
              type: object
              required: [catalog, kubeConfig, name, namespace, version]
              properties:
                name: {type: string}
                namespace: {type: string}
                catalog: {type: string}
                catalogNamespace: {type: string}
                version: {type: string}
                kubeConfig:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
                config:
                  type: object
                  properties:
                    configMap: &ref
                      type: object
                      required: [name, namespace]
                      properties:
                        name: {type: string}
                        namespace: {type: string}
                    secret: *ref
                userConfig:
                  type: object
                  properties:
                    configMap: *ref
                    secret: *ref
                extraConfigs:
                  type: array
                  items:
                    type: object
                    x-kubernetes-preserve-unknown-fields: true
                install:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
                upgrade:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
                rollback:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
                uninstall:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
                namespaceConfig:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
            status:
              type: object
              x-kubernetes-preserve-unknown-fields: true
"
    .to_owned()
}

/// The `CustomResourceDefinition` of Giant Swarm's `Release` (cluster-scoped, `v1alpha1`).
pub fn release_crd_yaml() -> String {
    "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: releases.release.giantswarm.io
spec:
  group: release.giantswarm.io
  scope: Cluster
  names:
    kind: Release
    listKind: ReleaseList
    plural: releases
    singular: release
    categories: [common, giantswarm]
  versions:
    - name: v1alpha1
      served: true
      storage: true
      subresources:
        status: {}
      additionalPrinterColumns:
        - name: State
          type: string
          jsonPath: .spec.state
        - name: Release Date
          type: date
          jsonPath: .spec.date
      schema:
        openAPIV3Schema:
          type: object
          properties:
            apiVersion: {type: string}
            kind: {type: string}
            metadata: {type: object}
            spec:
              type: object
              required: [components, date, state]
              properties:
                state:
                  type: string
                  enum: [active, deprecated, wip, preview]
                date: {type: string, format: date-time}
                endOfLifeDate: {type: string, format: date-time}
                notice: {type: string}
                components:
                  type: array
                  items:
                    type: object
                    required: [name, version]
                    x-kubernetes-preserve-unknown-fields: true
                    properties:
                      name: {type: string}
                      version: {type: string}
                      catalog: {type: string}
                      reference: {type: string}
                apps:
                  type: array
                  items:
                    type: object
                    x-kubernetes-preserve-unknown-fields: true
            status:
              type: object
              x-kubernetes-preserve-unknown-fields: true
"
    .to_owned()
}

/// The API resource of the test `App` (for kube-rs `Api<DynamicObject>`).
pub fn app_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "application.giantswarm.io",
        "v1alpha1",
        "App",
    ))
}

/// A cluster App as Giant Swarm's GitOps layout renders it: `name` in `namespace`,
/// `spec.name: cluster-<provider>`, catalog `cluster`, `spec.version: version`, and
/// `spec.userConfig.configMap: <name>-userconfig` in the same namespace when `userconfig`.
pub fn app_yaml(
    name: &str,
    namespace: &str,
    provider: &str,
    version: &str,
    userconfig: bool,
) -> String {
    let mut yaml = format!(
        "apiVersion: {APP_API_VERSION}
kind: App
metadata:
  name: {n}
  namespace: {ns}
  labels:
    app-operator.giantswarm.io/version: 0.0.0
    giantswarm.io/cluster: {n}
spec:
  catalog: cluster
  name: {chart}
  namespace: {ns}
  version: {v}
  kubeConfig:
    inCluster: true
",
        n = quoted(name),
        ns = quoted(namespace),
        chart = quoted(&format!("cluster-{provider}")),
        v = quoted(version),
    );
    if userconfig {
        let _ = write!(
            yaml,
            "  userConfig:\n    configMap:\n      name: {}\n      namespace: {}\n",
            quoted(&format!("{name}-userconfig")),
            quoted(namespace)
        );
    }
    yaml
}

/// The values ConfigMap `<name>-userconfig` of a cluster App, holding `values` verbatim as
/// its `data.values` (a block scalar, as Giant Swarm's layout writes it). `values` must end
/// with a newline.
pub fn values_configmap_yaml(name: &str, namespace: &str, values: &str) -> String {
    let mut yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\n  namespace: {}\ndata:\n  values: |\n",
        quoted(&format!("{name}-userconfig")),
        quoted(namespace)
    );
    for line in values.lines() {
        if line.is_empty() {
            yaml.push('\n');
        } else {
            yaml.push_str("    ");
            yaml.push_str(line);
            yaml.push('\n');
        }
    }
    yaml
}

/// A Release `name` (`aws-29.1.0`, `v20.1.0`) in `state` with `components` (`name`, `version`).
pub fn release_yaml(name: &str, state: &str, components: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        "apiVersion: {RELEASE_API_VERSION}\nkind: Release\nmetadata:\n  name: {}\nspec:\n  state: {}\n  date: \"2026-01-05T10:00:00Z\"\n  components:\n",
        quoted(name),
        quoted(state)
    );
    for (component, version) in components {
        let _ = write!(
            yaml,
            "    - name: {}\n      version: {}\n",
            quoted(component),
            quoted(version)
        );
    }
    yaml
}

/// What the chart renders for one App: the Cluster's name and its release.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rendered {
    cluster: String,
    release: String,
}

/// The values text's value at a dotted key path, when it is a scalar.
fn values_key(values: &Value, path: &str) -> Option<String> {
    let mut node = values;
    for seg in path.split('.') {
        node = node.get(seg)?;
    }
    match node {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What the chart renders for `app` with its values ConfigMaps `configmaps` (by name).
fn render(app: &DynamicObject, configmaps: &HashMap<String, String>) -> Option<Rendered> {
    let name = app.metadata.name.clone()?;
    let spec_version = app.data["spec"]["version"].as_str()?.to_owned();
    // Like app-operator, nothing is rendered while a named values ConfigMap is missing.
    let values = match app.data["spec"]["userConfig"]["configMap"]["name"].as_str() {
        Some(cm) => upkeep_api::yaml::from_str::<Value>(configmaps.get(cm)?).ok()?,
        None => Value::Null,
    };
    Some(Rendered {
        cluster: values_key(&values, "global.metadata.name").unwrap_or(name),
        release: values_key(&values, RELEASE_VALUES_KEY).unwrap_or(spec_version),
    })
}

#[derive(Debug, Default)]
struct ChartShared {
    /// What was last rendered per App name.
    rendered: Mutex<HashMap<String, Rendered>>,
    errors: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The test chart loop: plays the cluster chart for the Apps of one namespace (and, through
/// its own [`Provider`], Cluster API for the Clusters there). Stops when dropped.
#[derive(Debug)]
pub struct Chart {
    shared: Arc<ChartShared>,
    provider: Provider,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Chart {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Chart {
    /// Starts watching the Apps and ConfigMaps of `namespace` (the App CRD must exist) and a
    /// [`Provider`] for its Clusters. Must be called inside a Tokio runtime.
    pub fn start(client: kube::Client, namespace: &str) -> Self {
        let provider = Provider::start(client.clone(), namespace);
        let shared = Arc::new(ChartShared::default());
        let task = tokio::spawn(run(client, namespace.to_owned(), shared.clone()));
        Self {
            shared,
            provider,
            task,
        }
    }

    /// Sets the provider's time between "upgrading" and the outcome.
    #[must_use]
    pub fn with_step(self, step: std::time::Duration) -> Self {
        self.provider.set_step(step);
        self
    }

    /// The Cluster API provider playing the Clusters of this namespace.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// The release the chart last rendered for App `app` (what it set on the Cluster).
    pub fn release(&self, app: &str) -> Option<String> {
        lock(&self.shared.rendered)
            .get(app)
            .map(|r| r.release.clone())
    }

    /// Failures of its watches and Cluster patches (and of its provider) so far.
    pub fn errors(&self) -> Vec<String> {
        let mut all = lock(&self.shared.errors).clone();
        all.extend(self.provider.errors());
        all
    }
}

/// An App or ConfigMap event, merged into one stream.
enum Seen {
    App(watcher::Event<DynamicObject>),
    ConfigMap(watcher::Event<ConfigMap>),
    Error(String),
}

async fn run(client: kube::Client, namespace: String, shared: Arc<ChartShared>) {
    let apps_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &namespace, &app_resource());
    let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(client, &namespace, &crate::cluster_api::api_resource());
    let apps = watcher(apps_api, watcher::Config::default())
        .default_backoff()
        .map(|e| e.map_or_else(|e| Seen::Error(format!("watching Apps: {e}")), Seen::App));
    let cms = watcher(cm_api, watcher::Config::default())
        .default_backoff()
        .map(|e| {
            e.map_or_else(
                |e| Seen::Error(format!("watching ConfigMaps: {e}")),
                Seen::ConfigMap,
            )
        });
    let mut stream = std::pin::pin!(futures_util::stream::select(apps, cms));
    let mut app_objects: HashMap<String, DynamicObject> = HashMap::new();
    let mut values: HashMap<String, String> = HashMap::new();
    // Nothing is rendered before both lists are complete: an App seen before its ConfigMap
    // would otherwise render once without its values.
    let (mut apps_listed, mut cms_listed) = (false, false);
    while let Some(seen) = stream.next().await {
        match seen {
            Seen::App(watcher::Event::InitDone) => apps_listed = true,
            Seen::ConfigMap(watcher::Event::InitDone) => cms_listed = true,
            Seen::App(watcher::Event::Apply(a) | watcher::Event::InitApply(a)) => {
                if let Some(name) = a.metadata.name.clone() {
                    app_objects.insert(name, a);
                }
            }
            Seen::App(watcher::Event::Delete(a)) => {
                if let Some(name) = &a.metadata.name {
                    app_objects.remove(name);
                    lock(&shared.rendered).remove(name);
                }
            }
            Seen::ConfigMap(watcher::Event::Apply(c) | watcher::Event::InitApply(c)) => {
                if let (Some(name), Some(text)) = (
                    c.metadata.name.clone(),
                    c.data.as_ref().and_then(|d| d.get("values")).cloned(),
                ) {
                    values.insert(name, text);
                }
            }
            Seen::ConfigMap(watcher::Event::Delete(c)) => {
                if let Some(name) = &c.metadata.name {
                    values.remove(name);
                }
            }
            Seen::App(_) | Seen::ConfigMap(_) => {}
            Seen::Error(text) => lock(&shared.errors).push(text),
        }
        if !(apps_listed && cms_listed) {
            continue;
        }
        for (app, object) in &app_objects {
            let Some(now) = render(object, &values) else {
                continue;
            };
            if lock(&shared.rendered).get(app) == Some(&now) {
                continue;
            }
            let patch = json!({"metadata": {"labels": {VERSION_LABEL: now.release}}});
            match clusters
                .patch(&now.cluster, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    lock(&shared.rendered).insert(app.clone(), now);
                }
                Err(e) => lock(&shared.errors).push(format!(
                    "rendering App {app}: labelling Cluster {namespace}/{}: {e}",
                    now.cluster
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_reads_the_release_where_giant_swarm_keeps_it() {
        let app = |version: &str, cm: Option<&str>| {
            let mut data = json!({"spec": {"version": version}});
            if let Some(cm) = cm {
                data["spec"]["userConfig"] =
                    json!({"configMap": {"name": cm, "namespace": "org-a"}});
            }
            DynamicObject {
                types: None,
                metadata: kube::api::ObjectMeta {
                    name: Some("c1".into()),
                    ..Default::default()
                },
                data,
            }
        };
        let cms: HashMap<String, String> = [
            (
                "c1-userconfig".to_owned(),
                "global:\n  metadata:\n    name: c1\n  release:\n    version: 29.1.0\n".to_owned(),
            ),
            (
                "plain".to_owned(),
                "global:\n  metadata:\n    name: other\n".to_owned(),
            ),
        ]
        .into();
        let cases = [
            (
                app("1.2.0", None),
                "c1",
                "1.2.0",
                "no values: the App's spec.version",
            ),
            (
                app("1.2.0", Some("c1-userconfig")),
                "c1",
                "29.1.0",
                "the values key wins over spec.version (the chart's version)",
            ),
            (
                app("29.0.0", Some("plain")),
                "other",
                "29.0.0",
                "values without the key: spec.version; the cluster name from the values",
            ),
        ];
        assert_eq!(
            render(&app("29.0.0", Some("missing")), &cms),
            None,
            "a missing values ConfigMap renders nothing (app-operator waits for it)"
        );
        for (object, cluster, release, why) in cases {
            assert_eq!(
                render(&object, &cms),
                Some(Rendered {
                    cluster: cluster.into(),
                    release: release.into()
                }),
                "{why}"
            );
        }
    }

    #[test]
    fn builders_write_giant_swarms_shapes() {
        let app = app_yaml("c1", "org-a", "aws", "29.0.0", true);
        assert!(app.contains("name: \"cluster-aws\""), "{app}");
        assert!(app.contains("name: \"c1-userconfig\""), "{app}");
        assert!(!app_yaml("c1", "org-a", "aws", "29.0.0", false).contains("userConfig"));
        let cm = values_configmap_yaml("c1", "org-a", "global:\n\n  release: {version: 1}\n");
        assert!(
            cm.ends_with("  values: |\n    global:\n\n      release: {version: 1}\n"),
            "{cm}"
        );
        let parsed: Value = upkeep_api::yaml::from_str(&cm).expect("valid YAML");
        assert_eq!(
            parsed["data"]["values"],
            "global:\n\n  release: {version: 1}\n"
        );
        let release = release_yaml("aws-29.1.0", "active", &[("cluster-aws", "2.0.0")]);
        let parsed: Value = upkeep_api::yaml::from_str(&release).expect("valid YAML");
        assert_eq!(parsed["spec"]["components"][0]["version"], "2.0.0");
    }
}
