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
//!   ([`set_values_key`]), and the result is read back and compared with the original before
//!   it is sent.
//! - Errors name the server, the request (method and path) and carry a hint; a forbidden or
//!   missing App is an error of the one cluster, never a crash.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

/// The API group of Giant Swarm's App.
pub const APP_GROUP: &str = "application.giantswarm.io";
/// The values key that carries the release in the release-based cluster charts.
pub const DEFAULT_VALUES_KEY: &str = "global.release.version";
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

/// Where to look: the App and the values key in its ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub app: AppPlace,
    /// Dotted path in the values text (default [`DEFAULT_VALUES_KEY`]).
    pub values_key: String,
}

impl Default for Lookup {
    fn default() -> Self {
        Lookup {
            app: AppPlace::Convention,
            values_key: DEFAULT_VALUES_KEY.to_owned(),
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
        key: String,
        /// The whole `data.values` text.
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
                key,
                ..
            } => format!("ConfigMap {namespace}/{name} data.values {key} (App {app})"),
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
    #[error("ConfigMap {object} data.values: {problem}")]
    Values { object: String, problem: String },
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
            AppError::Values { .. } => Some(
                "write the key in block style, one key per line (global:\\n  release:\\n    version: X)".to_owned(),
            ),
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
    let configmap = &app.data["spec"]["userConfig"]["configMap"];
    if let Some(cm_name) = configmap["name"].as_str() {
        let cm_ns = configmap["namespace"].as_str().unwrap_or(namespace);
        if let Some(found) = values_key(server, &object, cm_ns, cm_name, &lookup.values_key).await?
        {
            return Ok(Some(found));
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

/// The values key in ConfigMap `namespace/name`, if its `data.values` has it as a scalar.
async fn values_key(
    server: &Server,
    app: &str,
    namespace: &str,
    name: &str,
    key: &str,
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
                referrer: format!(" (named by App {app} spec.userConfig.configMap)"),
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
    let Some(text) = cm.data.as_ref().and_then(|d| d.get("values")) else {
        return Ok(None);
    };
    let values: Value = upkeep_api::yaml::from_str(text).map_err(|e| AppError::Values {
        object: object.clone(),
        problem: format!("not valid YAML: {e}"),
    })?;
    let Some(current) = scalar_at(&values, key) else {
        return Ok(None);
    };
    Ok(Some(Found::ValuesKey {
        app: app.to_owned(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        resource_version: cm.metadata.resource_version,
        key: key.to_owned(),
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
            key,
            text,
            ..
        } => {
            let new_text =
                set_values_key(text, key, version).map_err(|problem| AppError::Values {
                    object: format!("{namespace}/{name}"),
                    problem,
                })?;
            let patch = json!({
                "metadata": {"resourceVersion": resource_version},
                "data": {"values": new_text},
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

/// `text` (a values YAML document) with the scalar at the dotted `key_path` set to `version`;
/// every other byte unchanged, the scalar's quote style kept (a plain scalar that would not
/// read back as this string is double-quoted). The result is read back: the same document but
/// for that one value, or an error.
///
/// This is the one call site of the values-key edit; it is to become
/// `upkeep_api::cluster_edit::set_values_key(text, key_path, version)` once that lands.
pub fn set_values_key(text: &str, key_path: &str, version: &str) -> Result<String, String> {
    let want: Vec<&str> = key_path.split('.').collect();
    // (indent, key) of the block mappings the current line is inside.
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut spans = Vec::new();
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let line_start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let content = line.trim_start_matches(' ');
        let indent = line.len() - content.len();
        if content.is_empty() || content.starts_with('#') || content.starts_with("---") {
            continue;
        }
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let Some((key, rest)) = content.split_once(':') else {
            continue;
        };
        if !(rest.is_empty() || rest.starts_with([' ', '\t']))
            || key.starts_with(['-', '?', '{', '[', '"', '\''])
        {
            // Not a plain `key:` of a block mapping (a sequence item, flow or quoted key):
            // nothing below it is on the path upkeep edits.
            stack.push((indent, "\u{0}".to_owned()));
            continue;
        }
        let key = key.trim_end();
        let value = rest.trim_start();
        let value_at = line_start + line.len() - value.len();
        let mut path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
        path.push(key);
        if path == want {
            spans.push((value_at, value));
        }
        stack.push((indent, key.to_owned()));
    }
    let [(at, value)] = spans.as_slice() else {
        return Err(if spans.is_empty() {
            format!("{key_path} is not written as one block-style key per line")
        } else {
            format!("{key_path} appears more than once")
        });
    };
    // The scalar's span: up to a comment (` #`) or the line's end.
    let bare = value.find(" #").map_or(*value, |i| &value[..i]).trim_end();
    let new = match bare.as_bytes().first() {
        Some(b'"') => {
            format!("\"{}\"", version.replace('\\', "\\\\").replace('"', "\\\""))
        }
        Some(b'\'') => format!("'{}'", version.replace('\'', "''")),
        Some(b'|' | b'>' | b'&' | b'*' | b'!' | b'{' | b'[') | None => {
            return Err(format!(
                "{key_path} is not a plain or quoted scalar on its key's line"
            ));
        }
        Some(_) => {
            let reads_back = matches!(
                upkeep_api::yaml::from_str::<Value>(version),
                Ok(Value::String(ref s)) if s == version
            ) && !version.contains([':', '#', '\n']);
            if reads_back {
                version.to_owned()
            } else {
                format!("\"{}\"", version.replace('\\', "\\\\").replace('"', "\\\""))
            }
        }
    };
    let edited = format!("{}{new}{}", &text[..*at], &text[*at + bare.len()..]);
    // Read back: the original document with only that value changed.
    let parse = |t: &str| upkeep_api::yaml::from_str::<Value>(t).map_err(|e| e.to_string());
    let mut before = parse(text)?;
    let after = parse(&edited).map_err(|e| format!("the edit did not parse: {e}"))?;
    let mut node = &mut before;
    for seg in &want {
        node = node
            .get_mut(*seg)
            .ok_or_else(|| format!("{key_path} is not where its lines say"))?;
    }
    *node = Value::String(version.to_owned());
    if before != after {
        return Err(format!(
            "{key_path}: the edit did not read back as that one change"
        ));
    }
    Ok(edited)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_key_edits_change_only_the_scalar() {
        let k = DEFAULT_VALUES_KEY;
        let cases: &[(&str, &str, Result<&str, &str>, &str)] = &[
            (
                "global:\n  metadata:\n    name: c1\n  release:\n    version: 29.1.0\n",
                "29.2.0",
                Ok("global:\n  metadata:\n    name: c1\n  release:\n    version: 29.2.0\n"),
                "the plain form Giant Swarm writes",
            ),
            (
                "# cluster c1\nglobal:\n  release:\n    version: \"29.1.0\"  # pinned by hand\n  other: 1\n",
                "29.2.0",
                Ok(
                    "# cluster c1\nglobal:\n  release:\n    version: \"29.2.0\"  # pinned by hand\n  other: 1\n",
                ),
                "quotes and a trailing comment are kept",
            ),
            (
                "global:\r\n  release:\r\n    version: '29.1.0'\r\n",
                "29.2.0",
                Ok("global:\r\n  release:\r\n    version: '29.2.0'\r\n"),
                "CRLF and single quotes are kept",
            ),
            (
                "global:\n  release:\n    version: 29\n",
                "30",
                Ok("global:\n  release:\n    version: \"30\"\n"),
                "a plain value that would read as a number is quoted",
            ),
            (
                "other:\n  global:\n    release:\n      version: 1.0.0\nglobal:\n  release:\n    version: 29.1.0\n",
                "29.2.0",
                Ok(
                    "other:\n  global:\n    release:\n      version: 1.0.0\nglobal:\n  release:\n    version: 29.2.0\n",
                ),
                "the same key under another parent is left alone",
            ),
            (
                "global: {release: {version: 29.1.0}}\n",
                "29.2.0",
                Err("not written as one block-style key per line"),
                "flow style is refused, not guessed",
            ),
            (
                "global:\n  release:\n    version: |\n      29.1.0\n",
                "29.2.0",
                Err("not a plain or quoted scalar"),
                "a block scalar is refused",
            ),
            (
                "list:\n  - global:\n      release:\n        version: 1\nglobal:\n  release:\n    version: 29.1.0\n",
                "29.2.0",
                Ok(
                    "list:\n  - global:\n      release:\n        version: 1\nglobal:\n  release:\n    version: 29.2.0\n",
                ),
                "keys inside a sequence item are not on the path",
            ),
        ];
        for (text, version, want, why) in cases {
            let got = set_values_key(text, k, version);
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want, "{why}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{why}: {got}"),
                (got, want) => panic!("{why}: got {got:?}, want {want:?}"),
            }
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
