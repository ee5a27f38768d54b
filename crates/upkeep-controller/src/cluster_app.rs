//! Clusters that are Apps: where a Direct upgrade writes a Giant Swarm cluster's version on the
//! management cluster. Shared by the controller's ClusterUpgrade (`trigger: Direct`) and the
//! CLI's `upkeep upgrade cluster --via api` / `upkeep run`.
//!
//! Why it is shaped this way:
//! - At Giant Swarm the `Cluster` is rendered by the cluster chart of an App
//!   (`application.giantswarm.io/v1alpha1`, named after the cluster in the cluster's
//!   namespace). A patch of the Cluster's label would be reverted by the chart's owner, so —
//!   as `kubectl gs update cluster` does — the version is changed where the chart reads it:
//!   the values key `global.release.version` of the App's values ConfigMap
//!   (`spec.userConfig.configMap`, key `values`) when it has it (the newer, release-based
//!   form, where `spec.version` is the chart's own version), else the App's `spec.version`.
//!   A cluster without an App (Giant Swarm's convention finds none: the App kind is not served
//!   — asked by discovery, which needs no permission, so a controller without App rights on a
//!   management cluster without Giant Swarm's CRDs works as before — or no App has the
//!   cluster's name) keeps today's place, the Cluster's label or topology.
//!   Observation does not change: the Cluster's label and conditions say whether it moved.
//! - [`find`] reads the App (and ConfigMap) fresh; [`write`] patches with the
//!   `resourceVersion` it read, so a concurrent change answers 409 and is never overwritten.
//!   [`set_version`] retries such a conflict on a fresh read, at most [`MAX_ATTEMPTS`] times,
//!   and then reports [`AppError::Conflict`]: the decision was made on the Cluster, the App is
//!   only where it is written, so retrying on the App's new state is safe.
//! - The values text is a YAML document people wrote; only the bytes of the one scalar change
//!   (`upkeep_api::cluster_edit::set_values_key_at`, the same edit the GitOps path makes inside
//!   `data.values: |`), and the result is read back and compared with the original before it
//!   is sent.
//! - Where to look is a [`Lookup`]: Giant Swarm's convention by default, or what a
//!   ClusterUpgrade's `spec.versionPlace` names ([`Lookup::from_spec`]).
//! - Errors name the server, the request (method and path) and carry a hint; a forbidden or
//!   missing App is an error of the one cluster, never a crash.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};
use upkeep_api::cluster_edit::{DEFAULT_DATA_KEY, ObjectRef, ValuesPlace, VersionPlace};
use upkeep_api::version_place::VersionPlaceSpec;

/// The API group of Giant Swarm's App.
pub const APP_GROUP: &str = "application.giantswarm.io";
/// The values key that carries the release in the release-based cluster charts.
pub use upkeep_api::cluster_edit::DEFAULT_VALUES_KEY;
/// Attempts of [`set_version`] before a conflict is reported.
pub const MAX_ATTEMPTS: u32 = 3;

/// The App resource (`application.giantswarm.io/v1alpha1`, plural `apps`).
pub fn app_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(APP_GROUP, "v1alpha1", "App"))
}

/// Which App holds a cluster's version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AppPlace {
    /// Giant Swarm's convention: the App named after the cluster in the cluster's namespace;
    /// none there means the cluster is not an App (its Cluster object is written).
    #[default]
    Convention,
    /// This App; a missing one is an error.
    App { namespace: String, name: String },
    /// No App: write the Cluster object itself.
    Cluster,
}

/// Which of the App's places a [`Lookup`] may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The values key when the values hold it, else the App's `spec.version`.
    #[default]
    Auto,
    /// Only the App's `spec.version` (`versionPlace.type: App`).
    AppVersion,
    /// Only the values key; a missing key is an error (`versionPlace.type: Values`).
    Values,
}

/// Where to look: the App, its values ConfigMap and the key in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub app: AppPlace,
    pub mode: Mode,
    /// The values ConfigMap; `None`: the App's `spec.userConfig.configMap` (with
    /// [`Mode::Values`], else `<cluster>-userconfig` in the App's namespace).
    pub config_map: Option<ObjectRef>,
    /// The key under `data` holding the values (default `values`).
    pub data_key: String,
    /// Dotted path in the values text (default [`DEFAULT_VALUES_KEY`]).
    pub values_key: String,
}

impl Default for Lookup {
    fn default() -> Self {
        Lookup {
            app: AppPlace::Convention,
            mode: Mode::Auto,
            config_map: None,
            data_key: DEFAULT_DATA_KEY.to_owned(),
            values_key: DEFAULT_VALUES_KEY.to_owned(),
        }
    }
}

impl Lookup {
    /// The lookup for a fixed App-side place (`App` or `Values`); `None` for the others.
    pub fn for_place(place: &VersionPlace, cluster_namespace: &str, cluster: &str) -> Option<Self> {
        let named = |r: &ObjectRef| {
            let (name, namespace) = r.resolve(cluster, cluster_namespace);
            AppPlace::App { namespace, name }
        };
        match place {
            VersionPlace::App(r) => Some(Lookup {
                app: named(r),
                mode: Mode::AppVersion,
                ..Lookup::default()
            }),
            VersionPlace::Values(v) => Some(Lookup {
                app: named(&v.app),
                mode: Mode::Values,
                config_map: v.config_map.clone(),
                data_key: v.data_key.clone(),
                values_key: v.key_path.clone(),
            }),
            _ => None,
        }
    }

    /// The lookup a ClusterUpgrade's `spec.versionPlace` asks for, for cluster
    /// `cluster_namespace/cluster` (`None` or `type: Auto` without overrides: Giant Swarm's
    /// convention). `Label` and `Topology` write the Cluster itself; `Substitute` and `Marker`
    /// are places in Git, refused with `trigger: Direct` by validation, and fall back to the
    /// convention here.
    pub fn from_spec(
        spec: Option<&VersionPlaceSpec>,
        cluster_namespace: &str,
        cluster: &str,
    ) -> Self {
        let Some(spec) = spec else {
            return Lookup::default();
        };
        let named = |r: &ObjectRef| {
            let (name, namespace) = r.resolve(cluster, cluster_namespace);
            AppPlace::App { namespace, name }
        };
        let with_values = |l: Lookup, v: &ValuesPlace| Lookup {
            config_map: v.config_map.clone(),
            data_key: v.data_key.clone(),
            values_key: v.key_path.clone(),
            ..l
        };
        match spec.place() {
            Some(VersionPlace::Label(_) | VersionPlace::Topology) => Lookup {
                app: AppPlace::Cluster,
                ..Lookup::default()
            },
            Some(p @ (VersionPlace::App(_) | VersionPlace::Values(_))) => {
                Lookup::for_place(&p, cluster_namespace, cluster).unwrap_or_default()
            }
            Some(VersionPlace::Substitute(_) | VersionPlace::Marker) | None => {
                let mut l = Lookup::default();
                for candidate in spec.candidates() {
                    if let VersionPlace::Values(v) = &candidate {
                        l = with_values(l, v);
                        if v.app.name.is_some() || v.app.namespace.is_some() {
                            l.app = named(&v.app);
                        }
                    }
                }
                l
            }
        }
    }
}

/// Where the API calls go, for messages, and who writes. Remembers whether the API server
/// serves the App kind (asked once, by discovery).
#[derive(Clone)]
pub struct Server {
    pub client: kube::Client,
    /// The API server as users know it (its URL, or "the API server").
    pub name: String,
    /// `fieldManager` of the patches.
    pub field_manager: String,
    served: std::sync::Arc<tokio::sync::OnceCell<bool>>,
}

impl Server {
    pub fn new(
        client: kube::Client,
        name: impl Into<String>,
        field_manager: impl Into<String>,
    ) -> Self {
        Server {
            client,
            name: name.into(),
            field_manager: field_manager.into(),
            served: std::sync::Arc::default(),
        }
    }

    /// Whether the API server serves `apps.application.giantswarm.io/v1alpha1`. Discovery is
    /// open to every authenticated user, so a management cluster without Giant Swarm's CRDs
    /// is told apart from a forbidden App without needing any App permission.
    async fn serves_apps(&self) -> Result<bool, AppError> {
        let request = format!("GET /apis/{APP_GROUP}/v1alpha1");
        self.served
            .get_or_try_init(|| async {
                match self
                    .client
                    .list_api_group_resources(&format!("{APP_GROUP}/v1alpha1"))
                    .await
                {
                    Ok(list) => Ok(list.resources.iter().any(|r| r.name == "apps")),
                    Err(e) if not_found(&e) => Ok(false),
                    Err(source) => Err(AppError::Read {
                        kind: "App",
                        object: "(discovery)".to_owned(),
                        request,
                        server: self.name.clone(),
                        source,
                    }),
                }
            })
            .await
            .copied()
    }
}

/// A cluster's version place on the App side, as read (with the `resourceVersion` the patch
/// will carry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The values key in the App's values ConfigMap.
    ValuesKey {
        /// The App, `namespace/name`.
        app: String,
        namespace: String,
        name: String,
        resource_version: Option<String>,
        /// The key under `data` (`values`).
        data_key: String,
        key: String,
        /// The whole values text.
        text: String,
        current: String,
    },
    /// The App's `spec.version`.
    AppVersion {
        namespace: String,
        name: String,
        resource_version: Option<String>,
        current: String,
    },
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.name)
            .field("field_manager", &self.field_manager)
            .finish_non_exhaustive()
    }
}

impl Found {
    /// The value there now.
    pub fn current(&self) -> &str {
        match self {
            Found::ValuesKey { current, .. } | Found::AppVersion { current, .. } => current,
        }
    }

    /// The place, for messages: `App org-a/c1 spec.version` or
    /// `ConfigMap org-a/c1-userconfig data.values global.release.version (App org-a/c1)`.
    pub fn describe(&self) -> String {
        match self {
            Found::ValuesKey {
                app,
                namespace,
                name,
                data_key,
                key,
                ..
            } => format!("ConfigMap {namespace}/{name} data.{data_key} {key} (App {app})"),
            Found::AppVersion {
                namespace, name, ..
            } => format!("App {namespace}/{name} spec.version"),
        }
    }
}

/// What [`set_version`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The place, as [`Found::describe`] says it.
    pub place: String,
    /// The value before.
    pub from: String,
    /// Whether a patch was sent (`false`: it already held the version).
    pub changed: bool,
    /// Patches sent, conflicts included.
    pub attempts: u32,
}

/// Why the version could not be written on the App side. Variant names are stable (metric
/// labels, JSON).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("reading {kind} {object} ({request}) on {server}: {source}")]
    Read {
        kind: &'static str,
        /// `namespace/name`.
        object: String,
        request: String,
        server: String,
        #[source]
        source: kube::Error,
    },
    #[error("{kind} {object} not found ({request}) on {server}{referrer}")]
    Missing {
        kind: &'static str,
        object: String,
        request: String,
        server: String,
        /// ` (named by …)` or empty.
        referrer: String,
    },
    #[error("patching {kind} {object} ({request}) on {server}: {source}")]
    Patch {
        kind: &'static str,
        object: String,
        request: String,
        server: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "{place} changed while upkeep wrote it, {attempts} times in a row; nothing was overwritten"
    )]
    Conflict { place: String, attempts: u32 },
    #[error("ConfigMap {object} data.{data_key}: {problem}")]
    Values {
        object: String,
        data_key: String,
        problem: String,
        /// The edit's own hint, when it has one.
        hint: Option<String>,
    },
    #[error("App {object} has no spec.version")]
    NoVersion { object: String },
}

impl AppError {
    /// The variant name.
    pub fn kind(&self) -> &'static str {
        match self {
            AppError::Read { .. } => "Read",
            AppError::Missing { .. } => "Missing",
            AppError::Patch { .. } => "Patch",
            AppError::Conflict { .. } => "Conflict",
            AppError::Values { .. } => "Values",
            AppError::NoVersion { .. } => "NoVersion",
        }
    }

    /// A suggested fix.
    pub fn hint(&self) -> Option<String> {
        let forbidden = |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 403);
        match self {
            AppError::Read {
                kind,
                object,
                source,
                ..
            }
            | AppError::Patch {
                kind,
                object,
                source,
                ..
            } if forbidden(source) => {
                let ns = object.split('/').next().unwrap_or_default();
                let resource = if *kind == "App" {
                    "apps.application.giantswarm.io"
                } else {
                    "configmaps"
                };
                Some(format!(
                    "grant get and patch on {resource} in namespace {ns} (the controller: deploy/rbac.yaml)"
                ))
            }
            AppError::Read { .. } | AppError::Patch { .. } => {
                Some("check that the API server is reachable, then try again".to_owned())
            }
            AppError::Missing { kind: "App", .. } => Some(
                "name the cluster's App correctly, or create it (Giant Swarm: the App is named after the cluster, in its namespace)".to_owned(),
            ),
            AppError::Missing { .. } => {
                Some("create the ConfigMap the App's spec.userConfig.configMap names, or fix the reference".to_owned())
            }
            AppError::Conflict { .. } => {
                Some("someone else keeps changing it; try again when they are done".to_owned())
            }
            AppError::Values { hint, .. } => hint.clone().or_else(|| {
                Some("write the key in block style, one key per line (global:\\n  release:\\n    version: X)".to_owned())
            }),
            AppError::NoVersion { .. } => Some("set the App's spec.version".to_owned()),
        }
    }

    /// Whether this is a conflict (the caller looks again later).
    pub fn is_conflict(&self) -> bool {
        matches!(self, AppError::Conflict { .. })
    }
}

fn app_path(namespace: &str, name: &str) -> String {
    format!("/apis/{APP_GROUP}/v1alpha1/namespaces/{namespace}/apps/{name}")
}

fn configmap_path(namespace: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/configmaps/{name}")
}

/// Whether an error means "no such object" (or, for the App, "no such kind": a management
/// cluster without Giant Swarm's CRDs answers 404 too).
fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Reads where the version of cluster `cluster_namespace/cluster` lives on the App side;
/// `None` when the cluster is not an App (see [`AppPlace`]).
pub async fn find(
    server: &Server,
    cluster_namespace: &str,
    cluster: &str,
    lookup: &Lookup,
) -> Result<Option<Found>, AppError> {
    let (namespace, name, required) = match &lookup.app {
        AppPlace::Cluster => return Ok(None),
        AppPlace::Convention => (cluster_namespace, cluster, false),
        AppPlace::App { namespace, name } => (namespace.as_str(), name.as_str(), true),
    };
    if !required && !server.serves_apps().await? {
        return Ok(None);
    }
    let object = format!("{namespace}/{name}");
    let request = format!("GET {}", app_path(namespace, name));
    let api: Api<DynamicObject> =
        Api::namespaced_with(server.client.clone(), namespace, &app_resource());
    let app = match api.get(name).await {
        Ok(app) => app,
        Err(e) if not_found(&e) && !required => return Ok(None),
        Err(e) if not_found(&e) => {
            return Err(AppError::Missing {
                kind: "App",
                object,
                request,
                server: server.name.clone(),
                referrer: format!(" (named for cluster {cluster_namespace}/{cluster})"),
            });
        }
        Err(source) => {
            return Err(AppError::Read {
                kind: "App",
                object,
                request,
                server: server.name.clone(),
                source,
            });
        }
    };
    if lookup.mode != Mode::AppVersion {
        let user_config = &app.data["spec"]["userConfig"]["configMap"];
        let referenced = user_config["name"].as_str().map(|n| {
            (
                n.to_owned(),
                user_config["namespace"]
                    .as_str()
                    .unwrap_or(namespace)
                    .to_owned(),
            )
        });
        let chosen = match (&lookup.config_map, referenced) {
            (Some(r), referenced) => {
                let (default_name, default_ns) = referenced
                    .unwrap_or_else(|| (format!("{cluster}-userconfig"), namespace.to_owned()));
                Some(r.resolve(&default_name, &default_ns))
            }
            (None, Some(referenced)) => Some(referenced),
            (None, None) if lookup.mode == Mode::Values => {
                Some((format!("{cluster}-userconfig"), namespace.to_owned()))
            }
            (None, None) => None,
        };
        if let Some((cm_name, cm_ns)) = chosen {
            let found = values_key(server, &object, &cm_ns, &cm_name, lookup).await?;
            match found {
                Some(found) => return Ok(Some(found)),
                None if lookup.mode == Mode::Values => {
                    return Err(AppError::Values {
                        object: format!("{cm_ns}/{cm_name}"),
                        data_key: lookup.data_key.clone(),
                        problem: format!("has no {} (versionPlace type Values)", lookup.values_key),
                        hint: Some(format!(
                            "add {} to the values, or use versionPlace type Auto or App",
                            lookup.values_key
                        )),
                    });
                }
                None => {}
            }
        }
    }
    let current = app.data["spec"]["version"]
        .as_str()
        .ok_or_else(|| AppError::NoVersion {
            object: object.clone(),
        })?
        .to_owned();
    Ok(Some(Found::AppVersion {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        resource_version: app.metadata.resource_version,
        current,
    }))
}

/// The values key in ConfigMap `namespace/name`, if its values (`data.<data_key>`) have it as
/// a scalar.
async fn values_key(
    server: &Server,
    app: &str,
    namespace: &str,
    name: &str,
    lookup: &Lookup,
) -> Result<Option<Found>, AppError> {
    let object = format!("{namespace}/{name}");
    let request = format!("GET {}", configmap_path(namespace, name));
    let api: Api<ConfigMap> = Api::namespaced(server.client.clone(), namespace);
    let cm = match api.get(name).await {
        Ok(cm) => cm,
        Err(e) if not_found(&e) => {
            return Err(AppError::Missing {
                kind: "ConfigMap",
                object,
                request,
                server: server.name.clone(),
                referrer: format!(
                    " (named by App {app} spec.userConfig.configMap, or versionPlace.configMap)"
                ),
            });
        }
        Err(source) => {
            return Err(AppError::Read {
                kind: "ConfigMap",
                object,
                request,
                server: server.name.clone(),
                source,
            });
        }
    };
    let data_key = &lookup.data_key;
    let Some(text) = cm.data.as_ref().and_then(|d| d.get(data_key)) else {
        return Ok(None);
    };
    let values: Value = upkeep_api::yaml::from_str(text).map_err(|e| AppError::Values {
        object: object.clone(),
        data_key: data_key.clone(),
        problem: format!("not valid YAML: {e}"),
        hint: None,
    })?;
    let Some(current) = scalar_at(&values, &lookup.values_key) else {
        return Ok(None);
    };
    Ok(Some(Found::ValuesKey {
        app: app.to_owned(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        resource_version: cm.metadata.resource_version,
        data_key: data_key.clone(),
        key: lookup.values_key.clone(),
        text: text.clone(),
        current,
    }))
}

/// The scalar at a dotted key path, as text.
fn scalar_at(values: &Value, path: &str) -> Option<String> {
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

/// One patch of `found` to `version`, carrying the `resourceVersion` it was read with. A 409
/// is [`AppError::Conflict`] with one attempt.
pub async fn write(
    server: &Server,
    found: &Found,
    version: &str,
    dry_run: bool,
) -> Result<(), AppError> {
    let params = PatchParams {
        dry_run,
        field_manager: Some(server.field_manager.clone()),
        ..PatchParams::default()
    };
    let (kind, namespace, name, result) = match found {
        Found::ValuesKey {
            namespace,
            name,
            resource_version,
            data_key,
            key,
            text,
            ..
        } => {
            let where_ = format!("ConfigMap {namespace}/{name} data.{data_key}");
            let new_text = upkeep_api::cluster_edit::set_values_key_at(&where_, text, key, version)
                .map_err(|e| AppError::Values {
                    object: format!("{namespace}/{name}"),
                    data_key: data_key.clone(),
                    problem: e.to_string(),
                    hint: e.hint(),
                })?
                .new_text;
            let patch = json!({
                "metadata": {"resourceVersion": resource_version},
                "data": {data_key.as_str(): new_text},
            });
            let api: Api<ConfigMap> = Api::namespaced(server.client.clone(), namespace);
            let result = api
                .patch(name, &params, &Patch::Merge(&patch))
                .await
                .map(|_| ());
            ("ConfigMap", namespace, name, result)
        }
        Found::AppVersion {
            namespace,
            name,
            resource_version,
            ..
        } => {
            let patch = json!({
                "metadata": {"resourceVersion": resource_version},
                "spec": {"version": version},
            });
            let api: Api<DynamicObject> =
                Api::namespaced_with(server.client.clone(), namespace, &app_resource());
            let result = api
                .patch(name, &params, &Patch::Merge(&patch))
                .await
                .map(|_| ());
            ("App", namespace, name, result)
        }
    };
    match result {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Err(AppError::Conflict {
            place: found.describe(),
            attempts: 1,
        }),
        Err(source) => Err(AppError::Patch {
            kind,
            object: format!("{namespace}/{name}"),
            request: format!(
                "PATCH {}",
                if kind == "App" {
                    app_path(namespace, name)
                } else {
                    configmap_path(namespace, name)
                }
            ),
            server: server.name.clone(),
            source,
        }),
    }
}

/// Writes `version` at `first` (what [`find`] read for cluster
/// `cluster_namespace/cluster`); on a conflict reads again and retries, at most
/// [`MAX_ATTEMPTS`] patches in all. A place that already holds the version is not patched.
pub async fn set_version(
    server: &Server,
    first: Found,
    cluster_namespace: &str,
    cluster: &str,
    lookup: &Lookup,
    version: &str,
    dry_run: bool,
) -> Result<Written, AppError> {
    let mut found = first;
    let mut attempts = 0;
    loop {
        let place = found.describe();
        let from = found.current().to_owned();
        if from.trim() == version {
            return Ok(Written {
                place,
                from,
                changed: false,
                attempts,
            });
        }
        attempts += 1;
        match write(server, &found, version, dry_run).await {
            Ok(()) => {
                return Ok(Written {
                    place,
                    from,
                    changed: true,
                    attempts,
                });
            }
            Err(AppError::Conflict { .. }) if attempts < MAX_ATTEMPTS => {
                tracing::info!(%place, attempts, "changed since read; reading again");
                match find(server, cluster_namespace, cluster, lookup).await? {
                    Some(again) => found = again,
                    None => {
                        return Err(AppError::Missing {
                            kind: "App",
                            object: place,
                            request: "GET (again, after a conflict)".to_owned(),
                            server: server.name.clone(),
                            referrer: " (it was deleted while upkeep wrote it)".to_owned(),
                        });
                    }
                }
            }
            Err(AppError::Conflict { place, .. }) => {
                return Err(AppError::Conflict { place, attempts });
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_place_maps_to_a_lookup() {
        let spec =
            |yaml: &str| -> VersionPlaceSpec { upkeep_api::yaml::from_str(yaml).expect("spec") };
        let app = |ns: &str, name: &str| AppPlace::App {
            namespace: ns.into(),
            name: name.into(),
        };
        let cases: Vec<(Option<VersionPlaceSpec>, AppPlace, Mode, &str, &str)> = vec![
            (
                None,
                AppPlace::Convention,
                Mode::Auto,
                DEFAULT_VALUES_KEY,
                "no versionPlace: the convention",
            ),
            (
                Some(spec("type: Auto")),
                AppPlace::Convention,
                Mode::Auto,
                DEFAULT_VALUES_KEY,
                "Auto without overrides is the convention",
            ),
            (
                Some(spec("{type: Auto, valuesKey: cluster.release}")),
                AppPlace::Convention,
                Mode::Auto,
                "cluster.release",
                "Auto keeps a valuesKey override",
            ),
            (
                Some(spec("{type: Auto, app: {name: wc1-cluster}}")),
                app("org-a", "wc1-cluster"),
                Mode::Auto,
                DEFAULT_VALUES_KEY,
                "Auto with an App name: that App, in the cluster's namespace",
            ),
            (
                Some(spec("type: App")),
                app("org-a", "wc1"),
                Mode::AppVersion,
                DEFAULT_VALUES_KEY,
                "App: the App named after the cluster, spec.version only",
            ),
            (
                Some(spec("{type: Values, app: {namespace: org-b}}")),
                app("org-b", "wc1"),
                Mode::Values,
                DEFAULT_VALUES_KEY,
                "Values: only the values key, App namespace overridden",
            ),
            (
                Some(spec("type: Label")),
                AppPlace::Cluster,
                Mode::Auto,
                DEFAULT_VALUES_KEY,
                "Label: the Cluster itself",
            ),
            (
                Some(spec("type: Topology")),
                AppPlace::Cluster,
                Mode::Auto,
                DEFAULT_VALUES_KEY,
                "Topology: the Cluster itself",
            ),
        ];
        for (spec, want_app, want_mode, want_key, why) in cases {
            let l = Lookup::from_spec(spec.as_ref(), "org-a", "wc1");
            assert_eq!(
                (&l.app, l.mode, l.values_key.as_str()),
                (&want_app, want_mode, want_key),
                "{why}"
            );
        }
    }

    #[test]
    fn hints_name_the_missing_permission() {
        let forbidden = kube::Error::Api(
            kube::core::Status::failure("forbidden", "Forbidden")
                .with_code(403)
                .boxed(),
        );
        let e = AppError::Read {
            kind: "App",
            object: "org-a/c1".into(),
            request: format!("GET {}", app_path("org-a", "c1")),
            server: "https://127.0.0.1:6443".into(),
            source: forbidden,
        };
        let text = e.to_string();
        assert!(
            text.contains("GET /apis/application.giantswarm.io/v1alpha1/namespaces/org-a/apps/c1")
                && text.contains("https://127.0.0.1:6443"),
            "{text}"
        );
        assert!(
            e.hint()
                .unwrap()
                .contains("apps.application.giantswarm.io in namespace org-a"),
            "{:?}",
            e.hint()
        );
        assert_eq!(e.kind(), "Read");
    }
}
