//! GitOps edits of Cluster API `Cluster` manifests: the version place and the freeze annotations.
//!
//! A cluster's manifest in a GitOps repository is written and reviewed by people, so upkeep
//! never re-serialises it. The file is read as marked YAML events (the same position tree the
//! loader uses for located errors, [`crate::locate`]); the `Cluster` is found by
//! `apiVersion: cluster.x-k8s.io/*`, `kind: Cluster`, `metadata.name` (and namespace), and only
//! the bytes of one scalar are replaced — the label `release.giantswarm.io/version` (or another
//! label key) or `spec.topology.version` — keeping its quote style. Everything else, comments,
//! other documents, CRLF line ends, stays byte-identical.
//!
//! Freeze annotations are the one place where upkeep adds or removes lines: an annotation
//! that exists has its scalar replaced; a missing one is inserted as one line at the
//! indentation of the mapping it joins (a missing `annotations:` mapping is inserted after
//! `metadata.name`); removing one deletes its line (and an `annotations:` key left empty).
//!
//! Every edit is checked by reading the result again: the cluster must be found and the value
//! must read back exactly as written, so a surprising layout (a multi-line plain scalar, a
//! flow mapping) gives an error naming the file and line instead of a wrong file.
//!
//! At Giant Swarm a cluster is an App, so its version is written elsewhere ([`VersionPlace`]):
//! the App's `spec.version` and the Flux Kustomization's `postBuild.substitute` variable are
//! one scalar of another object ([`object`]); a key inside the values ConfigMap's
//! `data.values: |` block is YAML inside YAML, edited in place ([`values`]); and any scalar
//! marked `# {"$upkeep": "cluster:<namespace>/<name>"}` is written through the core's verified
//! marker path ([`marker`]).

use crate::cluster::{CLUSTER_API_GROUP, RELEASE_VERSION_LABEL};
use crate::locate::{DocPositions, Entry, LineIndex, Node, positions};

pub mod marker;
pub mod object;
pub mod values;

pub use marker::{cluster_marker_values, set_marked};
pub use object::{ObjectSel, Vars, current_field, set_field, substitute};
pub use values::{set_config_map_values, set_values_key, set_values_key_at, values_key};

/// The data key of the values ConfigMap when none is given (`data.values`).
pub const DEFAULT_DATA_KEY: &str = "values";
/// The key inside the values when none is given (Giant Swarm's release-based clusters).
pub const DEFAULT_VALUES_KEY: &str = "global.release.version";
/// The Flux Kustomization variable the cluster App's version comes from, by default.
pub const DEFAULT_VARIABLE: &str = "cluster_release";

/// An object named by an override, or by convention where a part is `None` (the App: the
/// cluster's name in the cluster's namespace).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectRef {
    pub name: Option<String>,
    pub namespace: Option<String>,
}

impl ObjectRef {
    /// The name and namespace, defaults filled in.
    pub fn resolve(&self, default_name: &str, default_namespace: &str) -> (String, String) {
        (
            self.name.clone().unwrap_or_else(|| default_name.to_owned()),
            self.namespace
                .clone()
                .unwrap_or_else(|| default_namespace.to_owned()),
        )
    }
}

/// A key inside the cluster App's values ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuesPlace {
    /// The App whose `spec.userConfig.configMap` names the ConfigMap.
    pub app: ObjectRef,
    /// The ConfigMap; `None`: the App's `spec.userConfig.configMap`, else
    /// `<cluster>-userconfig` in the App's namespace.
    pub config_map: Option<ObjectRef>,
    /// The key under `data` holding the values (default [`DEFAULT_DATA_KEY`]).
    pub data_key: String,
    /// The dotted path inside the values (default [`DEFAULT_VALUES_KEY`]).
    pub key_path: String,
}

impl Default for ValuesPlace {
    fn default() -> Self {
        ValuesPlace {
            app: ObjectRef::default(),
            config_map: None,
            data_key: DEFAULT_DATA_KEY.to_owned(),
            key_path: DEFAULT_VALUES_KEY.to_owned(),
        }
    }
}

impl ValuesPlace {
    /// The ConfigMap's name and namespace for the cluster `cluster` whose App is
    /// `(app_name, app_namespace)` and names `user_config` (its `spec.userConfig.configMap`,
    /// when it has one).
    pub fn config_map_for(
        &self,
        cluster: &str,
        app_namespace: &str,
        user_config: Option<(&str, Option<&str>)>,
    ) -> (String, String) {
        match (&self.config_map, user_config) {
            (Some(r), _) if r.name.is_some() => r.resolve("", app_namespace),
            (r, Some((name, ns))) => {
                let ns = r
                    .as_ref()
                    .and_then(|r| r.namespace.clone())
                    .or_else(|| ns.map(str::to_owned))
                    .unwrap_or_else(|| app_namespace.to_owned());
                (name.to_owned(), ns)
            }
            (r, None) => (
                format!("{cluster}-userconfig"),
                r.as_ref()
                    .and_then(|r| r.namespace.clone())
                    .unwrap_or_else(|| app_namespace.to_owned()),
            ),
        }
    }
}

/// Where a cluster's version is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionPlace {
    /// A label under `metadata.labels` (default: `release.giantswarm.io/version`).
    Label(String),
    /// `spec.topology.version` (ClusterClass-based clusters).
    Topology,
    /// The cluster App's `spec.version` (`application.giantswarm.io` `App`; by convention
    /// named after the cluster, in the cluster's namespace).
    App(ObjectRef),
    /// A key inside the cluster App's values ConfigMap (`data.values: |`).
    Values(ValuesPlace),
    /// GitOps only: the Flux Kustomization's `spec.postBuild.substitute.<variable>` (default
    /// [`DEFAULT_VARIABLE`]) the App's `spec.version: ${variable}` comes from.
    Substitute(String),
    /// GitOps only: every scalar marked `# {"$upkeep": "cluster:<namespace>/<name>"}`.
    Marker,
}

impl Default for VersionPlace {
    fn default() -> Self {
        VersionPlace::Label(RELEASE_VERSION_LABEL.to_owned())
    }
}

impl VersionPlace {
    /// The field path, for messages (`metadata.labels["release.giantswarm.io/version"]`).
    pub fn path(&self) -> String {
        match self {
            VersionPlace::Label(key) => format!("metadata.labels[{key:?}]"),
            VersionPlace::Topology => "spec.topology.version".to_owned(),
            VersionPlace::App(_) => "App spec.version".to_owned(),
            VersionPlace::Values(v) => format!("ConfigMap data.{}: {}", v.data_key, v.key_path),
            VersionPlace::Substitute(var) => {
                format!("Kustomization spec.postBuild.substitute.{var}")
            }
            VersionPlace::Marker => {
                r#"the scalars marked {"$upkeep": "cluster:<namespace>/<name>"}"#.to_owned()
            }
        }
    }

    /// The short name of the place's kind, as `versionPlace.type` spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            VersionPlace::Label(_) => "Label",
            VersionPlace::Topology => "Topology",
            VersionPlace::App(_) => "App",
            VersionPlace::Values(_) => "Values",
            VersionPlace::Substitute(_) => "Substitute",
            VersionPlace::Marker => "Marker",
        }
    }

    /// Whether the place is a field of the `Cluster` object itself.
    pub fn is_on_cluster(&self) -> bool {
        matches!(self, VersionPlace::Label(_) | VersionPlace::Topology)
    }
}

/// Why an edit could not be made. Variant names are stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterEditError {
    /// No file defines the cluster.
    #[error("no Cluster {cluster} in {where_}")]
    NotFound { cluster: String, where_: String },
    /// More than one document defines the cluster.
    #[error("Cluster {cluster} is defined more than once: {}", places.join(", "))]
    Ambiguous {
        cluster: String,
        places: Vec<String>,
    },
    /// The cluster has no value at the version place.
    #[error("{file}:{line}: Cluster {cluster} has no {field}")]
    FieldMissing {
        file: String,
        line: usize,
        cluster: String,
        field: String,
        place: Box<VersionPlace>,
    },
    /// The file is not YAML upkeep can read.
    #[error("{file}: not valid YAML")]
    NotYaml { file: String },
    /// The value cannot be written in the scalar's style without changing its type.
    #[error(
        "{file}:{line}: {field}: {value:?} written as a plain scalar would not read as a string"
    )]
    Unrepresentable {
        file: String,
        line: usize,
        field: String,
        value: String,
    },
    /// The manifest is laid out in a way upkeep does not edit (flow mapping, multi-line value).
    #[error("{file}:{line}: {field}: {what}")]
    Unsupported {
        file: String,
        line: usize,
        field: String,
        what: String,
    },
    /// No file defines the object (App, ConfigMap, Kustomization) holding the version.
    #[error("no {object} in {where_}")]
    ObjectNotFound { object: String, where_: String },
    /// More than one document defines the object.
    #[error("{object} is defined more than once: {}", places.join(", "))]
    ObjectAmbiguous { object: String, places: Vec<String> },
    /// The object has no value at the version place.
    #[error("{file}:{line}: {object} has no {field}")]
    ObjectFieldMissing {
        file: String,
        line: usize,
        object: String,
        field: String,
        place: Box<VersionPlace>,
    },
    /// The value is a Flux variable (`${cluster_release}`): the substitution owns it.
    #[error("{file}:{line}: {field} is {value:?}, a Flux post-build variable")]
    Substituted {
        file: String,
        line: usize,
        field: String,
        value: String,
    },
    /// A key on the path is written more than once (YAML readers disagree on which wins).
    #[error("{file}:{line}: {field}: the key {key:?} is written more than once (lines {})", lines.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    DuplicateKey {
        file: String,
        line: usize,
        field: String,
        key: String,
        lines: Vec<usize>,
    },
    /// The YAML embedded in a values block is not valid.
    #[error("{file}:{line}: {field}: the embedded values are not valid YAML: {reason}")]
    ValuesNotYaml {
        file: String,
        line: usize,
        field: String,
        reason: String,
    },
    /// No scalar in the file is marked for the cluster.
    #[error("no scalar marked {{\"$upkeep\": \"cluster:{cluster}\"}} in {where_}")]
    MarkerNotFound { cluster: String, where_: String },
    /// A marker for the cluster cannot be used (its core error, with the line).
    #[error("{file}:{line}: {message}")]
    BadMarker {
        file: String,
        line: usize,
        message: String,
        hint: Option<String>,
    },
}

impl ClusterEditError {
    /// A suggested fix.
    pub fn hint(&self) -> Option<String> {
        match self {
            ClusterEditError::NotFound { .. } => Some(
                "check the name (and --namespace); the manifest needs apiVersion cluster.x-k8s.io/…, kind Cluster".to_owned(),
            ),
            ClusterEditError::Ambiguous { .. } => {
                Some("keep one definition, or pass --namespace to pick one".to_owned())
            }
            ClusterEditError::FieldMissing { place, .. } => Some(match &**place {
                VersionPlace::Label(key) => {
                    format!("add the label under metadata.labels: {key}: \"<current version>\"")
                }
                VersionPlace::Topology => {
                    "add spec.topology.version, or use the release label".to_owned()
                }
                VersionPlace::App(_) => {
                    "add spec.version to the cluster App, or set versionPlace".to_owned()
                }
                VersionPlace::Values(v) => format!(
                    "add {} to the values (data.{}), or set versionPlace.valuesKey",
                    v.key_path, v.data_key
                ),
                VersionPlace::Substitute(var) => format!(
                    "add {var} under spec.postBuild.substitute, or set versionPlace.variable"
                ),
                VersionPlace::Marker => {
                    r#"mark the version: cluster_release: "29.1.0" # {"$upkeep": "cluster:<namespace>/<name>"}"#.to_owned()
                }
            }),
            ClusterEditError::NotYaml { .. } => {
                Some("fix the file (`upkeep validate` shows where)".to_owned())
            }
            ClusterEditError::Unrepresentable { .. } => {
                Some("quote the value in the file (\"…\")".to_owned())
            }
            ClusterEditError::Unsupported { .. } => {
                Some("write the mapping in block style, one key per line".to_owned())
            }
            ClusterEditError::ObjectNotFound { .. } => Some(
                "check the name and namespace (versionPlace.app, versionPlace.configMap), or set versionPlace.type".to_owned(),
            ),
            ClusterEditError::ObjectAmbiguous { .. } => {
                Some("keep one definition, or name it in versionPlace".to_owned())
            }
            ClusterEditError::ObjectFieldMissing { place, .. } => {
                ClusterEditError::FieldMissing {
                    file: String::new(),
                    line: 0,
                    cluster: String::new(),
                    field: String::new(),
                    place: place.clone(),
                }
                .hint()
            }
            ClusterEditError::Substituted { value, .. } => Some(format!(
                "the version comes from {value}: write the Flux Kustomization's postBuild.substitute (versionPlace type Substitute or Auto)"
            )),
            ClusterEditError::DuplicateKey { .. } => {
                Some("remove the repeated key, so every reader sees the same value".to_owned())
            }
            ClusterEditError::ValuesNotYaml { .. } => {
                Some("fix the values YAML (indentation with spaces, no tabs)".to_owned())
            }
            ClusterEditError::MarkerNotFound { cluster, .. } => Some(format!(
                r#"mark the version: cluster_release: "29.1.0" # {{"$upkeep": "cluster:{cluster}"}}"#
            )),
            ClusterEditError::BadMarker { hint, .. } => hint.clone(),
        }
    }

    /// The variant name, for metric labels and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            ClusterEditError::NotFound { .. } => "NotFound",
            ClusterEditError::Ambiguous { .. } => "Ambiguous",
            ClusterEditError::FieldMissing { .. } => "FieldMissing",
            ClusterEditError::NotYaml { .. } => "NotYaml",
            ClusterEditError::Unrepresentable { .. } => "Unrepresentable",
            ClusterEditError::Unsupported { .. } => "Unsupported",
            ClusterEditError::ObjectNotFound { .. } => "ObjectNotFound",
            ClusterEditError::ObjectAmbiguous { .. } => "ObjectAmbiguous",
            ClusterEditError::ObjectFieldMissing { .. } => "ObjectFieldMissing",
            ClusterEditError::Substituted { .. } => "Substituted",
            ClusterEditError::DuplicateKey { .. } => "DuplicateKey",
            ClusterEditError::ValuesNotYaml { .. } => "ValuesNotYaml",
            ClusterEditError::MarkerNotFound { .. } => "MarkerNotFound",
            ClusterEditError::BadMarker { .. } => "BadMarker",
        }
    }
}

/// The result of a version edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEdit {
    /// The whole file after the edit.
    pub new_text: String,
    /// The value before the edit.
    pub old: String,
    /// 1-based line of the scalar.
    pub line: usize,
}

impl VersionEdit {
    /// Whether anything changed (the value was already the target).
    pub fn is_changed(&self, text: &str) -> bool {
        self.new_text != text
    }
}

fn display_name(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    }
}

pub(crate) fn entry<'n>(node: &'n Node, key: &str) -> Option<&'n Entry> {
    match node {
        Node::Map { entries, .. } => entries.iter().find(|e| e.key == key),
        _ => None,
    }
}

pub(crate) fn scalar<'n>(node: &'n Node, key: &str) -> Option<&'n str> {
    match entry(node, key).map(|e| &e.value) {
        Some(Node::Scalar { value, .. }) => Some(value),
        _ => None,
    }
}

/// Whether a document is the `Cluster` `name` (in `namespace`, when given; no namespace in
/// the manifest means `default`).
fn is_cluster(doc: &DocPositions, name: &str, namespace: Option<&str>) -> bool {
    let Some(root) = doc.root() else {
        return false;
    };
    let api = scalar(root, "apiVersion").unwrap_or_default();
    let group_ok = api
        .split_once('/')
        .is_some_and(|(g, _)| g == CLUSTER_API_GROUP);
    let Some(meta) = entry(root, "metadata").map(|e| &e.value) else {
        return false;
    };
    group_ok
        && scalar(root, "kind") == Some("Cluster")
        && scalar(meta, "name") == Some(name)
        && namespace.is_none_or(|ns| scalar(meta, "namespace").unwrap_or("default") == ns)
}

/// Which of `files` (`(path, text)`) holds the Cluster `name`: its index. Files that are not
/// YAML are skipped (the loader reports them). `where_` names the searched place in errors.
pub fn find_cluster(
    files: &[(String, String)],
    name: &str,
    namespace: Option<&str>,
    where_: &str,
) -> Result<usize, ClusterEditError> {
    let mut found = Vec::new();
    for (i, (path, text)) in files.iter().enumerate() {
        if !text.contains(name) {
            continue;
        }
        let lines = LineIndex::new(text);
        let Some(docs) = positions(text, &lines) else {
            continue;
        };
        for doc in docs.iter().filter(|d| is_cluster(d, name, namespace)) {
            found.push((i, format!("{path}:{}", doc.start().line)));
        }
    }
    match found.as_slice() {
        [] => Err(ClusterEditError::NotFound {
            cluster: display_name(name, namespace),
            where_: where_.to_owned(),
        }),
        [(i, _)] => Ok(*i),
        _ => Err(ClusterEditError::Ambiguous {
            cluster: display_name(name, namespace),
            places: found.into_iter().map(|(_, p)| p).collect(),
        }),
    }
}

/// The quote style of a scalar in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
}

/// The byte span and style of the scalar starting at `start`; `None` for block scalars.
fn scalar_span(text: &str, start: usize) -> Option<(usize, usize, Style)> {
    let rest = &text[start..];
    let bytes = rest.as_bytes();
    match bytes.first()? {
        b'"' => {
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'"' => return Some((start, start + i + 1, Style::Double)),
                    _ => i += 1,
                }
            }
            None
        }
        b'\'' => {
            let mut i = 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return Some((start, start + i + 1, Style::Single));
                }
                i += 1;
            }
            None
        }
        b'|' | b'>' => None,
        _ => {
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                let comment = c == '#' && i > 0 && rest[..i].ends_with([' ', '\t']);
                if matches!(c, '\n' | '\r' | ',' | ']' | '}') || comment {
                    end = i;
                    break;
                }
            }
            let len = rest[..end].trim_end().len();
            Some((start, start + len, Style::Plain))
        }
    }
}

/// `value` written in `style`, or `None` when a plain scalar would not read back as this string.
fn literal(value: &str, style: Style) -> Option<String> {
    match style {
        Style::Double => Some(format!(
            "\"{}\"",
            value.replace('\\', "\\\\").replace('"', "\\\"")
        )),
        Style::Single => Some(format!("'{}'", value.replace('\'', "''"))),
        Style::Plain => {
            let reads_back = matches!(
                crate::yaml::from_str::<crate::yaml::Value>(value),
                Ok(crate::yaml::Value::String(ref s)) if s == value
            );
            let safe = reads_back
                && !value.is_empty()
                && !value.contains([',', '[', ']', '{', '}', '#', ':', '\n'])
                && !looks_like_date(value)
                && value.trim() == value;
            safe.then(|| value.to_owned())
        }
    }
}

/// `2026-01-01…`: YAML 1.1 readers (Kubernetes' among them) take a plain one for a timestamp.
fn looks_like_date(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

/// The document of the cluster in `text`, with the positions needed to edit it.
fn cluster_doc(
    file: &str,
    text: &str,
    name: &str,
    namespace: Option<&str>,
) -> Result<DocPositions, ClusterEditError> {
    let lines = LineIndex::new(text);
    let docs = positions(text, &lines).ok_or_else(|| ClusterEditError::NotYaml {
        file: file.to_owned(),
    })?;
    let mut matching: Vec<DocPositions> = docs
        .into_iter()
        .filter(|d| is_cluster(d, name, namespace))
        .collect();
    match matching.len() {
        0 => Err(ClusterEditError::NotFound {
            cluster: display_name(name, namespace),
            where_: file.to_owned(),
        }),
        1 => Ok(matching.remove(0)),
        _ => Err(ClusterEditError::Ambiguous {
            cluster: display_name(name, namespace),
            places: matching
                .iter()
                .map(|d| format!("{file}:{}", d.start().line))
                .collect(),
        }),
    }
}

/// The scalar node at the version place, or the line of its deepest existing parent.
fn version_node<'d>(doc: &'d DocPositions, place: &VersionPlace) -> Result<&'d Node, usize> {
    let root = doc.root().ok_or(doc.start().line)?;
    let (parent_path, key): (&[&str], &str) = match place {
        VersionPlace::Label(key) => (&["metadata", "labels"], key.as_str()),
        // The other places are not on the Cluster manifest; its release label is read.
        VersionPlace::Topology => (&["spec", "topology"], "version"),
        _ => (&["metadata", "labels"], RELEASE_VERSION_LABEL),
    };
    let mut node = root;
    // The line of the deepest key found, where a missing field is reported.
    let mut line = doc.start().line;
    for seg in parent_path {
        match entry(node, seg) {
            Some(e) => {
                node = &e.value;
                line = e.key_at.line;
            }
            None => return Err(line),
        }
    }
    match entry(node, key) {
        Some(
            e @ Entry {
                value: Node::Scalar { .. },
                ..
            },
        ) => Ok(&e.value),
        Some(e) => Err(e.key_at.line),
        None => Err(line),
    }
}

/// The value at the version place of the cluster, as written.
pub fn current_version(
    file: &str,
    text: &str,
    name: &str,
    namespace: Option<&str>,
    place: &VersionPlace,
) -> Result<Option<String>, ClusterEditError> {
    let doc = cluster_doc(file, text, name, namespace)?;
    Ok(match version_node(&doc, place) {
        Ok(Node::Scalar { value, .. }) => Some(value.clone()),
        _ => None,
    })
}

/// The line of the cluster's version place (or of its deepest existing parent).
pub fn version_line(
    file: &str,
    text: &str,
    name: &str,
    namespace: Option<&str>,
    place: &VersionPlace,
) -> Result<usize, ClusterEditError> {
    let doc = cluster_doc(file, text, name, namespace)?;
    Ok(match version_node(&doc, place) {
        Ok(node) => node.at().line,
        Err(line) => line,
    })
}

/// Rewrites the cluster's version scalar to `version`, changing only its bytes.
pub fn set_version(
    file: &str,
    text: &str,
    name: &str,
    namespace: Option<&str>,
    place: &VersionPlace,
    version: &str,
) -> Result<VersionEdit, ClusterEditError> {
    if !place.is_on_cluster() {
        return Err(unsupported(
            file,
            0,
            &place.path(),
            "not a field of the Cluster manifest",
        ));
    }
    let doc = cluster_doc(file, text, name, namespace)?;
    let field = place.path();
    let found = version_node(&doc, place);
    let Ok(Node::Scalar { at, value: old, .. }) = found else {
        return Err(ClusterEditError::FieldMissing {
            file: file.to_owned(),
            line: found.err().unwrap_or(doc.start().line),
            cluster: display_name(name, namespace),
            field,
            place: Box::new(place.clone()),
        });
    };
    let (at, old) = (*at, old.clone());
    let new_text = replace_scalar(file, text, at.offset, at.line, &field, &old, version, false)?;
    // Read it back: the same cluster, the new value at the same place.
    let check = current_version(file, &new_text, name, namespace, place)?;
    if check.as_deref() != Some(version) {
        return Err(unsupported(
            file,
            at.line,
            &field,
            "the edit did not read back",
        ));
    }
    Ok(VersionEdit {
        new_text,
        old,
        line: at.line,
    })
}

fn unsupported(file: &str, line: usize, field: &str, what: &str) -> ClusterEditError {
    ClusterEditError::Unsupported {
        file: file.to_owned(),
        line,
        field: field.to_owned(),
        what: what.to_owned(),
    }
}

/// Replaces the scalar at `offset` (whose parsed value is `old`) with `value` in its style;
/// `quote_if_needed` turns an unsafe plain scalar into a double-quoted one instead of failing.
#[allow(clippy::too_many_arguments)]
fn replace_scalar(
    file: &str,
    text: &str,
    offset: usize,
    line: usize,
    field: &str,
    old: &str,
    value: &str,
    quote_if_needed: bool,
) -> Result<String, ClusterEditError> {
    let (start, end, style) = scalar_span(text, offset)
        .ok_or_else(|| unsupported(file, line, field, "a block scalar (| or >)"))?;
    let raw = &text[start..end];
    // The span must hold exactly the parsed value (a multi-line plain scalar would not).
    let reads = match style {
        Style::Plain => raw == old,
        Style::Double | Style::Single => literal(old, style).as_deref() == Some(raw),
    };
    if !reads {
        return Err(unsupported(
            file,
            line,
            field,
            "a multi-line or escaped value upkeep does not rewrite",
        ));
    }
    let new = match literal(value, style) {
        Some(l) => l,
        None if quote_if_needed => literal(value, Style::Double).unwrap_or_default(),
        None => {
            return Err(ClusterEditError::Unrepresentable {
                file: file.to_owned(),
                line,
                field: field.to_owned(),
                value: value.to_owned(),
            });
        }
    };
    Ok(format!("{}{new}{}", &text[..start], &text[end..]))
}

/// Start of the line holding `offset`.
pub(crate) fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |i| i + 1)
}

/// Start of the line after the one holding `offset` (the text's end on the last line).
pub(crate) fn next_line(text: &str, offset: usize) -> usize {
    text[offset..]
        .find('\n')
        .map_or(text.len(), |i| offset + i + 1)
}

pub(crate) fn eol(text: &str) -> &'static str {
    if text.contains("\r\n") { "\r\n" } else { "\n" }
}

/// Whether the mapping whose first key is at `first_key` is a flow mapping (`{…}`).
pub(crate) fn is_flow(text: &str, first_key: usize) -> bool {
    text[..first_key]
        .trim_end_matches([' ', '\t'])
        .ends_with(['{', ','])
}

/// Sets (`Some`) or removes (`None`) annotations of the cluster, in order. A set annotation
/// that exists has its value replaced (keeping quotes); a new one is inserted double-quoted.
pub fn set_annotations(
    file: &str,
    text: &str,
    name: &str,
    namespace: Option<&str>,
    changes: &[(&str, Option<&str>)],
) -> Result<String, ClusterEditError> {
    let mut text = text.to_owned();
    for (key, value) in changes {
        text = set_annotation(file, &text, name, namespace, key, *value)?;
    }
    Ok(text)
}

fn set_annotation(
    file: &str,
    text: &str,
    name: &str,
    namespace: Option<&str>,
    key: &str,
    value: Option<&str>,
) -> Result<String, ClusterEditError> {
    let doc = cluster_doc(file, text, name, namespace)?;
    let field = format!("metadata.annotations[{key:?}]");
    let root = doc.root().ok_or_else(|| ClusterEditError::NotYaml {
        file: file.to_owned(),
    })?;
    let meta_entry = entry(root, "metadata").ok_or_else(|| ClusterEditError::NotYaml {
        file: file.to_owned(),
    })?;
    let meta = &meta_entry.value;
    let nl = eol(text);
    let quoted = |v: &str| literal(v, Style::Double).unwrap_or_default();
    match entry(meta, "annotations").map(|e| (e, &e.value)) {
        Some((ann_entry, Node::Map { entries, .. })) if !entries.is_empty() => {
            let first = &entries[0];
            let flow = is_flow(text, first.key_at.offset);
            let existing = entries.iter().find(|e| e.key == key);
            match (existing, value) {
                (Some(e), Some(v)) => match &e.value {
                    Node::Scalar { at, value: old, .. } => {
                        replace_scalar(file, text, at.offset, at.line, &field, old, v, true)
                    }
                    _ => Err(unsupported(
                        file,
                        e.key_at.line,
                        &field,
                        "not a string value",
                    )),
                },
                (Some(_), None) | (None, Some(_)) if flow => Err(unsupported(
                    file,
                    first.key_at.line,
                    "metadata.annotations",
                    "a flow mapping ({…})",
                )),
                (Some(e), None) => {
                    let Node::Scalar { at, .. } = &e.value else {
                        return Err(unsupported(
                            file,
                            e.key_at.line,
                            &field,
                            "not a string value",
                        ));
                    };
                    if at.line != e.key_at.line {
                        return Err(unsupported(
                            file,
                            e.key_at.line,
                            &field,
                            "a value on another line than its key",
                        ));
                    }
                    // The last entry goes with its `annotations:` key.
                    let (from, to) = if entries.len() == 1 {
                        let after_key = &text[ann_entry.key_at.offset..first.key_at.offset];
                        if after_key.contains('#') {
                            (
                                line_start(text, e.key_at.offset),
                                next_line(text, at.offset),
                            )
                        } else {
                            (
                                line_start(text, ann_entry.key_at.offset),
                                next_line(text, at.offset),
                            )
                        }
                    } else {
                        (
                            line_start(text, e.key_at.offset),
                            next_line(text, at.offset),
                        )
                    };
                    Ok(format!("{}{}", &text[..from], &text[to..]))
                }
                (None, Some(v)) => {
                    let at = line_start(text, first.key_at.offset);
                    let indent = " ".repeat(first.key_at.column - 1);
                    Ok(format!(
                        "{}{indent}{key}: {}{nl}{}",
                        &text[..at],
                        quoted(v),
                        &text[at..]
                    ))
                }
                (None, None) => Ok(text.to_owned()),
            }
        }
        Some((ann_entry, _)) => match value {
            None => Ok(text.to_owned()),
            Some(_) => Err(unsupported(
                file,
                ann_entry.key_at.line,
                "metadata.annotations",
                "an empty or non-mapping value",
            )),
        },
        None => {
            let Some(v) = value else {
                return Ok(text.to_owned());
            };
            let name_entry = entry(meta, "name").ok_or_else(|| ClusterEditError::NotYaml {
                file: file.to_owned(),
            })?;
            if is_flow(
                text,
                match meta {
                    Node::Map { entries, .. } => entries.first().map_or(0, |e| e.key_at.offset),
                    _ => 0,
                },
            ) {
                return Err(unsupported(
                    file,
                    name_entry.key_at.line,
                    "metadata",
                    "a flow mapping ({…})",
                ));
            }
            let Node::Scalar { at, .. } = &name_entry.value else {
                return Err(ClusterEditError::NotYaml {
                    file: file.to_owned(),
                });
            };
            let insert = next_line(text, at.offset);
            let indent = " ".repeat(name_entry.key_at.column - 1);
            let lead = if insert == text.len() && !text.ends_with('\n') {
                nl
            } else {
                ""
            };
            Ok(format!(
                "{}{lead}{indent}annotations:{nl}{indent}  {key}: {}{nl}{}",
                &text[..insert],
                quoted(v),
                &text[insert..]
            ))
        }
    }
}

/// The annotations of the cluster in `text` that upkeep reads back (for checks and tests).
pub fn annotation(
    file: &str,
    text: &str,
    name: &str,
    namespace: Option<&str>,
    key: &str,
) -> Result<Option<String>, ClusterEditError> {
    let doc = cluster_doc(file, text, name, namespace)?;
    Ok(doc
        .root()
        .and_then(|r| entry(r, "metadata"))
        .and_then(|m| entry(&m.value, "annotations"))
        .and_then(|a| scalar(&a.value, key))
        .map(str::to_owned))
}

#[cfg(test)]
mod tests;
