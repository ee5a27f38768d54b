//! Giant Swarm's GitOps layout, read from a repository's files: which workload clusters it
//! defines, and where each one's version is written.
//!
//! Why it is shaped this way: in Giant Swarm's layout (giantswarm/gitops-template) a workload
//! cluster is not a `Cluster` manifest but a Flux `Kustomization`
//! (`management-clusters/<MC>/organizations/<ORG>/workload-clusters/<WC>.yaml`) whose
//! `spec.postBuild.substitute` sets `cluster_name`, `organization` and `cluster_release`, and
//! whose `spec.path` renders the cluster App and its values ConfigMap — often through
//! kustomizations and shared bases elsewhere in the repository. The version may be written in
//! four places, and which one depends on the release generation and on how the repository was
//! set up; so the place is found per cluster ([`Layout::locate`], the `Auto` rule of
//! `versionPlace`), and a fixed `versionPlace.type` only narrows the search to one place.
//!
//! Everything here is pure over `(path, text)` files (paths relative to the repository root,
//! `/`-separated), so the CLI, `upkeep run` and the controller's GitOps trigger read the same
//! layout the same way, and tests need no repository. What cannot be read is a [`Diagnostic`]
//! naming the file, line and field with a hint; a file outside the repository (`spec.path`
//! or a kustomize resource with `..` leaving the root) is never read, and neither is a symlink
//! (the caller passes regular files only).
//!
//! Kustomize is read as far as the version needs: the files under `spec.path`, every
//! `kustomization.yaml` there and the `resources` (also `bases`, `components`) and patch files
//! they name, recursively; `configMapGenerator` entries are read as ConfigMaps whose data key
//! is a values file. Patches override resources, as kustomize applies them. A shared file
//! (a base that several clusters render) is never edited for one cluster: its value must come
//! from the cluster's own Kustomization variable.

use std::collections::{BTreeMap, BTreeSet};

use crate::Diagnostic;
use crate::cluster_edit::object::{NoField, ObjectSel, Vars, field_node, is_object, substitute};
use crate::cluster_edit::{
    self, ClusterEditError, ObjectRef, ValuesPlace, VersionEdit, VersionPlace, entry, scalar,
};
use crate::locate::{DocPositions, LineIndex, Node, positions};
use crate::version_place::{PlaceType, VersionPlaceSpec};
use upkeep_core::manifest::CLUSTER_MARKER_PREFIX;

/// The API group of Flux Kustomizations.
pub const FLUX_KUSTOMIZE_GROUP: &str = "kustomize.toolkit.fluxcd.io";
/// The API group of Giant Swarm Apps.
pub const APP_GROUP: &str = "application.giantswarm.io";
/// The label naming a cluster's organization.
pub const ORGANIZATION_LABEL: &str = "giantswarm.io/organization";

/// An object in a file: where its document starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectAt {
    pub file: String,
    pub line: usize,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

/// A field holding the version: file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldAt {
    pub file: String,
    pub line: usize,
}

/// What a write changes, with everything needed to find it again in the same files.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// One scalar of an object.
    Field {
        file: String,
        group: String,
        kind: String,
        name: String,
        namespace: Option<String>,
        vars: Vars,
        path: Vec<String>,
    },
    /// A key inside a ConfigMap's `data.<key>` block.
    ConfigMap {
        file: String,
        name: String,
        namespace: Option<String>,
        vars: Vars,
        data_key: String,
        key_path: String,
    },
    /// A key inside a values file a `configMapGenerator` reads.
    ValuesFile { file: String, key_path: String },
    /// Every scalar marked for the cluster, in these files.
    Markers {
        files: Vec<String>,
        namespace: String,
        name: String,
    },
    /// The Cluster manifest's label or topology version.
    Cluster {
        file: String,
        name: String,
        namespace: Option<String>,
        place: VersionPlace,
    },
}

/// Where a cluster's version lives in the repository, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPlace {
    /// The place, with the names of the objects resolved (the App's, the ConfigMap's).
    pub place: VersionPlace,
    /// The fields written (several only for markers).
    pub fields: Vec<FieldAt>,
    /// The value as written there (a literal; for a marker, the first marker's).
    pub written: String,
    target: Target,
}

impl FoundPlace {
    /// `file:line` of the first field, for messages.
    pub fn at(&self) -> String {
        self.fields
            .first()
            .map(|f| format!("{}:{}", f.file, f.line))
            .unwrap_or_default()
    }

    /// The files a write changes.
    pub fn files(&self) -> Vec<&str> {
        self.fields.iter().map(|f| f.file.as_str()).collect()
    }
}

/// One workload cluster defined by a Flux Kustomization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GsCluster {
    /// `cluster_name`.
    pub name: String,
    /// `org-<organization>` (the Kustomization's namespace when `organization` is not set).
    pub namespace: String,
    pub organization: Option<String>,
    /// The Flux Kustomization that defines the cluster.
    pub kustomization: ObjectAt,
    /// Its `spec.postBuild.substitute`.
    pub vars: Vars,
    /// Its `spec.path`, from the repository root, normalised (no `./`).
    pub path: String,
    /// The cluster App, when found.
    pub app: Option<ObjectAt>,
    /// The App's chart (`spec.name`, e.g. `cluster-aws`).
    pub chart: Option<String>,
    /// The provider: the chart name without `cluster-` (`aws`, `azure`, `vsphere`,
    /// `cloud-director`).
    pub provider: Option<String>,
    /// Labels: the values' `global.metadata.labels`, and `giantswarm.io/organization`.
    pub labels: BTreeMap<String, String>,
    /// The current version (variables substituted), when found.
    pub version: Option<String>,
    /// Where the version is written (the `Auto` rule), when found.
    pub place: Option<FoundPlace>,
}

/// A kustomization file (`kustomization.yaml`) as far as it matters here.
#[derive(Debug, Default)]
struct Kustomize {
    /// Files and directories it renders, resolved from the repository root.
    resources: Vec<String>,
    /// Patch files.
    patches: Vec<String>,
    /// `configMapGenerator`: (name, namespace, [(data key, file)]).
    generators: Vec<Generator>,
}

/// A `configMapGenerator` entry: name, namespace, and (data key, file) pairs.
type Generator = (String, Option<String>, Vec<(String, String)>);

/// A values text found for a cluster: the resolved place, the text, where it is.
#[derive(Debug)]
struct ValuesFound {
    place: ValuesPlace,
    text: String,
    /// The file holding it, and the line before its first line there.
    file: String,
    line_base: usize,
    target: Target,
}

/// A Flux Kustomization defining a cluster.
#[derive(Debug)]
struct FluxCluster {
    at: ObjectAt,
    vars: Vars,
    path: Option<String>,
    path_line: usize,
}

/// A repository read for Giant Swarm's layout.
#[derive(Debug)]
pub struct Layout<'f> {
    files: &'f [(String, String)],
    /// Where clusters are defined (Flux Kustomizations, Cluster manifests, markers): a
    /// directory from the root (`""`: the whole repository). Kustomize resources are read
    /// anywhere in the repository.
    scope: String,
    by_path: BTreeMap<&'f str, usize>,
    /// Each kustomization file, by its path.
    kustomizations: BTreeMap<String, Kustomize>,
    flux: Vec<FluxCluster>,
    /// The files each Flux cluster renders (index into `flux`).
    rendered: Vec<BTreeSet<String>>,
    /// The patch files each Flux cluster applies.
    patches: Vec<BTreeSet<String>>,
    /// The files in scope that may hold a cluster marker (index into `files`).
    marked: Vec<usize>,
    /// Flux clusters by `cluster_name`.
    by_name: BTreeMap<String, Vec<usize>>,
    errors: Vec<Diagnostic>,
}

fn diag(
    file: &str,
    text: &str,
    line: usize,
    field: Option<&str>,
    message: impl Into<String>,
    hint: Option<&str>,
) -> Diagnostic {
    let lines = LineIndex::new(text);
    let pos = lines.pos(line.max(1), 1);
    Diagnostic {
        file: file.into(),
        line: pos.line,
        column: 1,
        offset: pos.offset,
        field: field.map(str::to_owned),
        message: message.into(),
        hint: hint.map(str::to_owned),
    }
}

/// `dir/rel` normalised; `None` when it leaves the repository root.
fn join(dir: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = if rel.starts_with('/') {
        return None;
    } else {
        dir.split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect()
    };
    for seg in rel.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

fn is_kustomization_file(path: &str) -> bool {
    matches!(
        path.rsplit('/').next().unwrap_or(path),
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    )
}

/// Whether `file` is `dir` or under it.
fn under(dir: &str, file: &str) -> bool {
    dir.is_empty() || file == dir || file.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

fn docs_of(text: &str) -> Option<Vec<DocPositions>> {
    let lines = LineIndex::new(text);
    positions(text, &lines)
}

fn group_of(root: &Node) -> &str {
    scalar(root, "apiVersion")
        .unwrap_or_default()
        .rsplit_once('/')
        .map_or("", |(g, _)| g)
}

/// The string items of a sequence at `key`.
fn strings<'n>(node: &'n Node, key: &str) -> Vec<&'n str> {
    match entry(node, key).map(|e| &e.value) {
        Some(Node::Seq { items, .. }) => items
            .iter()
            .filter_map(|i| match i {
                Node::Scalar { value, .. } => Some(value.as_str()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn read_kustomize(path: &str, text: &str, errors: &mut Vec<Diagnostic>) -> Kustomize {
    let mut k = Kustomize::default();
    let dir = dir_of(path);
    let Some(docs) = docs_of(text) else {
        return k;
    };
    let Some(root) = docs.first().and_then(DocPositions::root) else {
        return k;
    };
    let mut resolve = |rel: &str, line: usize, out: &mut Vec<String>| {
        if rel.contains("://") || rel.starts_with("github.com/") || rel.starts_with("git@") {
            return;
        }
        match join(dir, rel) {
            Some(p) => out.push(p),
            None => errors.push(diag(
                path,
                text,
                line,
                Some("resources"),
                format!("{rel:?} leaves the repository"),
                Some("kustomize resources are read only inside the repository"),
            )),
        }
    };
    for key in ["resources", "bases", "components"] {
        let line = entry(root, key).map_or(1, |e| e.key_at.line);
        for r in strings(root, key) {
            resolve(r, line, &mut k.resources);
        }
    }
    for key in ["patchesStrategicMerge"] {
        let line = entry(root, key).map_or(1, |e| e.key_at.line);
        for r in strings(root, key) {
            resolve(r, line, &mut k.patches);
        }
    }
    if let Some(Node::Seq { items, .. }) = entry(root, "patches").map(|e| &e.value) {
        for item in items {
            if let Some(p) = scalar(item, "path") {
                resolve(p, item.at().line, &mut k.patches);
            }
        }
    }
    if let Some(Node::Seq { items, .. }) = entry(root, "configMapGenerator").map(|e| &e.value) {
        for item in items {
            let Some(name) = scalar(item, "name") else {
                continue;
            };
            let mut files = Vec::new();
            for f in strings(item, "files") {
                let (key, rel) = f
                    .split_once('=')
                    .unwrap_or((f.rsplit('/').next().unwrap_or(f), f));
                let mut out = Vec::new();
                resolve(rel, item.at().line, &mut out);
                if let Some(p) = out.pop() {
                    files.push((key.to_owned(), p));
                }
            }
            k.generators.push((
                name.to_owned(),
                scalar(item, "namespace").map(str::to_owned),
                files,
            ));
        }
    }
    k
}

/// The scalars of a mapping node as a map.
fn string_map(node: Option<&Node>) -> Vars {
    match node {
        Some(Node::Map { entries, .. }) => entries
            .iter()
            .filter_map(|e| match &e.value {
                Node::Scalar { value, .. } => Some((e.key.clone(), value.clone())),
                _ => None,
            })
            .collect(),
        _ => Vars::new(),
    }
}

fn node_at<'n>(node: &'n Node, path: &[&str]) -> Option<&'n Node> {
    let mut n = node;
    for seg in path {
        n = &entry(n, seg)?.value;
    }
    Some(n)
}

/// `${name}` (also with a default, `${name:=…}`) as the whole value: the variable's name.
fn whole_variable(value: &str) -> Option<&str> {
    let inner = value.trim().strip_prefix("${")?.strip_suffix('}')?;
    let name_len = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, rest) = inner.split_at(name_len);
    (!name.is_empty() && (rest.is_empty() || rest.starts_with([':', '=', '-']))).then_some(name)
}

impl<'f> Layout<'f> {
    /// Reads `files` (`(path, text)`, paths from the repository root): every Flux Kustomization
    /// whose `spec.postBuild.substitute` sets `cluster_name`, and the kustomizations it
    /// renders.
    pub fn read(files: &'f [(String, String)]) -> Layout<'f> {
        Layout::read_under(files, "")
    }

    /// [`Layout::read`] with clusters defined only under the directory `scope` (a ClusterUpgrade's
    /// `gitOps.path`; `""` or `.`: the whole repository).
    pub fn read_under(files: &'f [(String, String)], scope: &str) -> Layout<'f> {
        let scope = join("", scope).unwrap_or_default();
        let by_path = files
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (p.as_str(), i))
            .collect();
        let mut errors = Vec::new();
        let mut kustomizations = BTreeMap::new();
        let mut flux = Vec::new();
        for (path, text) in files {
            if is_kustomization_file(path) {
                kustomizations.insert(path.clone(), read_kustomize(path, text, &mut errors));
                continue;
            }
            if !(under(&scope, path)
                && text.contains(FLUX_KUSTOMIZE_GROUP)
                && text.contains("cluster_name"))
            {
                continue;
            }
            let Some(docs) = docs_of(text) else {
                continue; // the loader reports files that are not YAML
            };
            for doc in &docs {
                let Some(root) = doc.root() else { continue };
                if group_of(root) != FLUX_KUSTOMIZE_GROUP
                    || scalar(root, "kind") != Some("Kustomization")
                {
                    continue;
                }
                let subst = node_at(root, &["spec", "postBuild", "substitute"]);
                let vars = string_map(subst);
                if !vars.contains_key("cluster_name") {
                    continue;
                }
                let meta = entry(root, "metadata").map(|e| &e.value);
                let path_entry = node_at(root, &["spec"]).and_then(|s| entry(s, "path"));
                flux.push(FluxCluster {
                    at: ObjectAt {
                        file: path.clone(),
                        line: doc.start().line,
                        kind: "Kustomization".to_owned(),
                        name: meta
                            .and_then(|m| scalar(m, "name"))
                            .unwrap_or_default()
                            .to_owned(),
                        namespace: meta.and_then(|m| scalar(m, "namespace")).map(str::to_owned),
                    },
                    vars,
                    path: path_entry.and_then(|e| match &e.value {
                        Node::Scalar { value, .. } => Some(value.clone()),
                        _ => None,
                    }),
                    path_line: path_entry.map_or(doc.start().line, |e| e.key_at.line),
                });
            }
        }
        let marked = files
            .iter()
            .enumerate()
            .filter(|(_, (p, t))| {
                under(&scope, p) && t.contains("$upkeep") && t.contains(CLUSTER_MARKER_PREFIX)
            })
            .map(|(i, _)| i)
            .collect();
        let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, f) in flux.iter().enumerate() {
            if let Some(n) = f.vars.get("cluster_name") {
                by_name.entry(n.clone()).or_default().push(i);
            }
        }
        let mut layout = Layout {
            files,
            scope,
            marked,
            by_name,
            by_path,
            kustomizations,
            flux,
            rendered: Vec::new(),
            patches: Vec::new(),
            errors,
        };
        for i in 0..layout.flux.len() {
            let (rendered, patches) = layout.render(i);
            layout.rendered.push(rendered);
            layout.patches.push(patches);
        }
        layout
    }

    fn text(&self, path: &str) -> Option<&'f str> {
        self.by_path.get(path).map(|&i| self.files[i].1.as_str())
    }

    /// The files Flux cluster `i` renders, and its patch files.
    fn render(&mut self, i: usize) -> (BTreeSet<String>, BTreeSet<String>) {
        let f = &self.flux[i];
        let text = self.text(&f.at.file).unwrap_or_default();
        let Some(raw) = f.path.clone() else {
            self.errors.push(diag(
                &f.at.file,
                text,
                f.at.line,
                Some("spec.path"),
                "the Kustomization has no spec.path",
                Some("spec.path: ./management-clusters/<MC>/organizations/<ORG>/workload-clusters/<WC>/mapi"),
            ));
            return (BTreeSet::new(), BTreeSet::new());
        };
        let Some(root) = join("", &substitute(&raw, &f.vars).0) else {
            self.errors.push(diag(
                &f.at.file,
                text,
                f.path_line,
                Some("spec.path"),
                format!("{raw:?} leaves the repository"),
                Some("spec.path is relative to the repository root and stays inside it"),
            ));
            return (BTreeSet::new(), BTreeSet::new());
        };
        self.flux[i].path = Some(root.clone());
        let mut rendered = BTreeSet::new();
        let mut patches = BTreeSet::new();
        let mut queue: Vec<String> = self
            .files
            .iter()
            .filter(|(p, _)| under(&root, p))
            .map(|(p, _)| p.clone())
            .collect();
        let mut seen = BTreeSet::new();
        while let Some(p) = queue.pop() {
            if !seen.insert(p.clone()) {
                continue;
            }
            if let Some(k) = self.kustomizations.get(&p) {
                for r in &k.resources {
                    if self.by_path.contains_key(r.as_str()) {
                        queue.push(r.clone());
                    } else {
                        // A directory: its kustomization.
                        for name in ["kustomization.yaml", "kustomization.yml", "Kustomization"] {
                            let kf = format!("{r}/{name}");
                            if self.by_path.contains_key(kf.as_str()) {
                                queue.push(kf);
                            }
                        }
                    }
                }
                for pf in &k.patches {
                    patches.insert(pf.clone());
                    queue.push(pf.clone());
                }
                for (_, _, gen_files) in &k.generators {
                    for (_, gf) in gen_files {
                        queue.push(gf.clone());
                    }
                }
            }
            if self.by_path.contains_key(p.as_str()) {
                rendered.insert(p);
            }
        }
        (rendered, patches)
    }

    /// Discovery problems (a `spec.path` leaving the repository, a resource outside it).
    pub fn errors(&self) -> &[Diagnostic] {
        &self.errors
    }

    /// The Flux cluster `namespace/name` (namespace `None`: any): its index.
    fn flux_cluster(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<usize>, ClusterEditError> {
        let found: Vec<usize> = self
            .by_name
            .get(name)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| namespace.is_none_or(|ns| self.namespace_of(i) == ns))
            .collect();
        match found.as_slice() {
            [] => Ok(None),
            [i] => Ok(Some(*i)),
            _ => Err(ClusterEditError::ObjectAmbiguous {
                object: format!("workload cluster {name}"),
                places: found
                    .iter()
                    .map(|&i| format!("{}:{}", self.flux[i].at.file, self.flux[i].at.line))
                    .collect(),
            }),
        }
    }

    /// `org-<organization>`, else the Kustomization's namespace, else `default`.
    fn namespace_of(&self, i: usize) -> String {
        let f = &self.flux[i];
        match f.vars.get("organization") {
            Some(org) => format!("org-{org}"),
            None => {
                f.at.namespace
                    .clone()
                    .unwrap_or_else(|| "default".to_owned())
            }
        }
    }

    /// The documents of the rendered files of cluster `i` that are `sel`: (file, doc, patch?).
    fn objects(&self, i: usize, sel: &ObjectSel<'_>) -> Vec<(String, DocPositions, bool)> {
        let vars = &self.flux[i].vars;
        let mut out = Vec::new();
        for file in &self.rendered[i] {
            let Some(text) = self.text(file) else {
                continue;
            };
            if !text.contains(sel.kind) {
                continue;
            }
            let Some(docs) = docs_of(text) else { continue };
            for d in docs {
                if is_object(&d, sel, vars) {
                    out.push((file.clone(), d, self.patches[i].contains(file)));
                }
            }
        }
        out
    }

    /// The clusters rendering `file`, by name.
    fn renderers(&self, file: &str) -> Vec<String> {
        (0..self.flux.len())
            .filter(|&i| self.rendered[i].contains(file))
            .filter_map(|i| self.flux[i].vars.get("cluster_name").cloned())
            .collect()
    }

    /// An edit of `file` for one cluster is refused when another cluster renders it too.
    fn not_shared(&self, file: &str, field: &str) -> Result<(), ClusterEditError> {
        let by = self.renderers(file);
        if by.len() > 1 {
            return Err(ClusterEditError::Unsupported {
                file: file.to_owned(),
                line: 1,
                field: field.to_owned(),
                what: format!(
                    "shared by the clusters {}; writing it would move them all (write a per-cluster ${{cluster_release}} variable instead)",
                    by.join(", ")
                ),
            });
        }
        Ok(())
    }

    /// Every workload cluster, with its App, provider, labels, version and place (the `Auto`
    /// rule). A cluster whose version cannot be read is listed with `version: None`; why is
    /// in the diagnostics.
    pub fn clusters(&self) -> (Vec<GsCluster>, Vec<Diagnostic>) {
        let mut out = Vec::new();
        let mut errors = self.errors.clone();
        let auto = VersionPlaceSpec::default();
        for i in 0..self.flux.len() {
            let f = &self.flux[i];
            let name = f.vars.get("cluster_name").cloned().unwrap_or_default();
            let namespace = self.namespace_of(i);
            let app_sel = ObjectSel {
                group: APP_GROUP,
                kind: "App",
                name: &name,
                namespace: Some(&namespace),
            };
            let apps = self.objects(i, &app_sel);
            let app = apps.iter().find(|(_, _, patch)| !patch).or(apps.first());
            let chart = apps.iter().find_map(|(_, d, _)| {
                d.root()
                    .and_then(|r| node_at(r, &["spec", "name"]))
                    .and_then(|n| match n {
                        Node::Scalar { value, .. } => Some(substitute(value, &f.vars).0),
                        _ => None,
                    })
            });
            let provider = chart
                .as_deref()
                .and_then(|c| c.strip_prefix("cluster-"))
                .map(str::to_owned);
            let mut labels = BTreeMap::new();
            if let Some(values) = self.values_text(i, &name, &namespace, &ValuesPlace::default()) {
                let (text, _) = substitute(&values.text, &f.vars);
                if let Ok(v) = crate::yaml::from_str::<crate::yaml::Value>(&text)
                    && let Some(crate::yaml::Value::Mapping(m)) = v
                        .get("global")
                        .and_then(|g| g.get("metadata"))
                        .and_then(|m| m.get("labels"))
                {
                    for (k, v) in m {
                        if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                            labels.insert(k.to_owned(), v.to_owned());
                        }
                    }
                }
            }
            if let Some(org) = f.vars.get("organization") {
                labels.insert(ORGANIZATION_LABEL.to_owned(), org.clone());
            }
            let place = match self.locate(Some(&namespace), &name, &auto, &VersionPlace::default())
            {
                Ok(p) => Some(p),
                Err(e) => {
                    let text = self.text(&f.at.file).unwrap_or_default();
                    errors.push(diag(
                        &f.at.file,
                        text,
                        f.at.line,
                        None,
                        format!("cluster {namespace}/{name}: {e}"),
                        e.hint().as_deref(),
                    ));
                    None
                }
            };
            let version = place.as_ref().map(|p| substitute(&p.written, &f.vars).0);
            let app = app.map(|(file, d, _)| ObjectAt {
                file: file.clone(),
                line: d.start().line,
                kind: "App".to_owned(),
                name: name.clone(),
                namespace: Some(namespace.clone()),
            });
            out.push(GsCluster {
                name,
                namespace,
                organization: f.vars.get("organization").cloned(),
                kustomization: f.at.clone(),
                vars: f.vars.clone(),
                path: f.path.clone().unwrap_or_default(),
                app,
                chart,
                provider,
                labels,
                version,
                place,
            });
        }
        (out, errors)
    }

    /// The values of cluster `i`'s ConfigMap as `(place, text, target)`: the first of the
    /// override, the App's `spec.userConfig.configMap`, its `spec.config.configMap` and
    /// `<cluster>-userconfig` that the rendered files hold (a ConfigMap manifest, or a
    /// `configMapGenerator` values file).
    fn values_text(
        &self,
        i: usize,
        cluster: &str,
        namespace: &str,
        values: &ValuesPlace,
    ) -> Option<ValuesFound> {
        self.values_candidates(i, cluster, namespace, values)
            .into_iter()
            .find_map(|(cm_name, cm_ns)| {
                self.config_map_values(i, &cm_name, &cm_ns, values)
                    .ok()
                    .flatten()
            })
    }

    fn values_candidates(
        &self,
        i: usize,
        cluster: &str,
        namespace: &str,
        values: &ValuesPlace,
    ) -> Vec<(String, String)> {
        let vars = &self.flux[i].vars;
        let (app_name, app_ns) = values.app.resolve(cluster, namespace);
        if values.config_map.as_ref().is_some_and(|c| c.name.is_some()) {
            return vec![values.config_map_for(cluster, &app_ns, None)];
        }
        let sel = ObjectSel {
            group: APP_GROUP,
            kind: "App",
            name: &app_name,
            namespace: Some(&app_ns),
        };
        let mut out = Vec::new();
        for field in ["userConfig", "config"] {
            for (_, d, _) in self.objects(i, &sel) {
                let Some(cm) = d
                    .root()
                    .and_then(|r| node_at(r, &["spec", field, "configMap"]))
                else {
                    continue;
                };
                if let Some(n) = scalar(cm, "name") {
                    let n = substitute(n, vars).0;
                    let ns = scalar(cm, "namespace").map(|s| substitute(s, vars).0);
                    out.push(values.config_map_for(cluster, &app_ns, Some((&n, ns.as_deref()))));
                }
            }
        }
        out.push(values.config_map_for(cluster, &app_ns, None));
        out.dedup();
        out
    }

    fn config_map_values(
        &self,
        i: usize,
        name: &str,
        namespace: &str,
        values: &ValuesPlace,
    ) -> Result<Option<ValuesFound>, ClusterEditError> {
        let vars = &self.flux[i].vars;
        let resolved = ValuesPlace {
            config_map: Some(ObjectRef {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
            }),
            ..values.clone()
        };
        let sel = ObjectSel {
            group: "",
            kind: "ConfigMap",
            name,
            namespace: Some(namespace),
        };
        // A patch wins over the resource, as kustomize applies it.
        let mut found = self.objects(i, &sel);
        found.sort_by_key(|(_, _, patch)| !patch);
        for (file, _, _) in found {
            let Some(text) = self.text(&file) else {
                continue;
            };
            // A ConfigMap without the data key is not the values; one whose values upkeep
            // cannot read is an error of its own, not "look elsewhere".
            let block =
                match cluster_edit::values::read_block(&file, text, &sel, vars, &values.data_key) {
                    Ok(block) => block,
                    Err(ClusterEditError::ObjectFieldMissing { .. }) => continue,
                    Err(e) => return Err(e),
                };
            return Ok(Some(ValuesFound {
                place: resolved,
                text: block.text,
                file: file.clone(),
                line_base: block.first_line - 1,
                target: Target::ConfigMap {
                    file,
                    name: name.to_owned(),
                    namespace: Some(namespace.to_owned()),
                    vars: vars.clone(),
                    data_key: values.data_key.clone(),
                    key_path: values.key_path.clone(),
                },
            }));
        }
        for (kfile, k) in &self.kustomizations {
            if !self.rendered[i].contains(kfile) {
                continue;
            }
            for (gname, gns, gfiles) in &k.generators {
                if substitute(gname, vars).0 != name
                    || gns
                        .as_ref()
                        .is_some_and(|n| substitute(n, vars).0 != namespace)
                {
                    continue;
                }
                if let Some((_, vf)) = gfiles.iter().find(|(key, _)| *key == values.data_key)
                    && let Some(text) = self.text(vf)
                {
                    return Ok(Some(ValuesFound {
                        place: resolved,
                        text: text.to_owned(),
                        file: vf.clone(),
                        line_base: 0,
                        target: Target::ValuesFile {
                            file: vf.clone(),
                            key_path: values.key_path.clone(),
                        },
                    }));
                }
            }
        }
        Ok(None)
    }

    /// Where the version of the cluster `namespace/name` (namespace `None`: any) is written,
    /// following `spec` (`Auto`: a marker naming the cluster; the values key when the values
    /// hold it — its Kustomization variable when it is `${variable}`; the variable when the
    /// App's `spec.version` is `${variable}`; the App's literal `spec.version`; the Cluster
    /// manifest's `fallback` place). `fallback` is the Cluster manifest's place for `Auto`
    /// (the label or `spec.topology.version`, from `versionSource`).
    pub fn locate(
        &self,
        namespace: Option<&str>,
        name: &str,
        spec: &VersionPlaceSpec,
        fallback: &VersionPlace,
    ) -> Result<FoundPlace, ClusterEditError> {
        let t = spec.type_;
        let display = match namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_owned(),
        };
        if matches!(t, PlaceType::Auto | PlaceType::Marker) {
            let ns_for_marker = namespace.map(str::to_owned).or_else(|| {
                self.flux_cluster(None, name)
                    .ok()
                    .flatten()
                    .map(|i| self.namespace_of(i))
            });
            if let Some(ns) = ns_for_marker
                && let Some(found) = self.markers(&ns, name)?
            {
                return Ok(found);
            }
            if t == PlaceType::Marker {
                return Err(ClusterEditError::MarkerNotFound {
                    cluster: display,
                    where_: "the repository".to_owned(),
                });
            }
        }
        if matches!(t, PlaceType::Label | PlaceType::Topology) {
            return self.cluster_manifest(namespace, name, &spec.place().unwrap_or_default());
        }
        let Some(i) = self.flux_cluster(namespace, name)? else {
            if t == PlaceType::Auto {
                return self.cluster_manifest(namespace, name, fallback);
            }
            return Err(ClusterEditError::ObjectNotFound {
                object: format!(
                    "Flux Kustomization with spec.postBuild.substitute.cluster_name: {name}"
                ),
                where_: "the repository".to_owned(),
            });
        };
        let ns = self.namespace_of(i);
        let candidates = spec.candidates();
        let mut last_err = None;
        for place in candidates {
            let r = match &place {
                VersionPlace::Values(v) => self.at_values(i, name, &ns, v, t == PlaceType::Auto),
                VersionPlace::Substitute(var) => {
                    self.at_substitute(i, name, &ns, var, &spec.app_ref(), t == PlaceType::Auto)
                }
                VersionPlace::App(app) => self.at_app(i, name, &ns, app),
                VersionPlace::Label(_) | VersionPlace::Topology => {
                    if t == PlaceType::Auto {
                        self.cluster_manifest(Some(&ns), name, fallback).map(Some)
                    } else {
                        self.cluster_manifest(Some(&ns), name, &place).map(Some)
                    }
                }
                VersionPlace::Marker => continue,
            };
            // Auto reaches the variable only once the App or values use it: a missing
            // definition is then an error of its own, not "look further".
            let decided = matches!(place, VersionPlace::Substitute(_));
            // Values upkeep cannot read do not hide a version written elsewhere; they are the
            // error when it is not.
            let values = matches!(place, VersionPlace::Values(_));
            match r {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(e) if t == PlaceType::Auto && !decided && (values || is_absence(&e)) => {
                    // The first place missing says most (the App, before the Cluster).
                    last_err.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(
            last_err.unwrap_or_else(|| ClusterEditError::ObjectNotFound {
                object: format!("the version of cluster {ns}/{name} ({})", spec_kind(t)),
                where_: format!(
                    "the files of {}:{}",
                    self.flux[i].at.file, self.flux[i].at.line
                ),
            }),
        )
    }

    /// Every scalar marked for `namespace/name`, in any file.
    fn markers(&self, namespace: &str, name: &str) -> Result<Option<FoundPlace>, ClusterEditError> {
        let mut fields = Vec::new();
        let mut first = None;
        let needle = format!("cluster:{namespace}/{name}");
        for &k in &self.marked {
            let (path, text) = &self.files[k];
            if !text.contains(&needle) {
                continue;
            }
            for (line, value) in cluster_edit::cluster_marker_values(path, text, namespace, name)? {
                first.get_or_insert(value);
                fields.push(FieldAt {
                    file: path.clone(),
                    line,
                });
            }
        }
        let Some(written) = first else {
            return Ok(None);
        };
        let mut files: Vec<String> = fields.iter().map(|f| f.file.clone()).collect();
        files.dedup();
        Ok(Some(FoundPlace {
            place: VersionPlace::Marker,
            fields,
            written,
            target: Target::Markers {
                files,
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            },
        }))
    }

    /// The Cluster manifest (`kind: Cluster`) of the cluster, at `place`.
    fn cluster_manifest(
        &self,
        namespace: Option<&str>,
        name: &str,
        place: &VersionPlace,
    ) -> Result<FoundPlace, ClusterEditError> {
        let where_ = if self.scope.is_empty() {
            "the repository".to_owned()
        } else {
            self.scope.clone()
        };
        let scoped: Vec<(String, String)> = self
            .files
            .iter()
            .filter(|(p, _)| under(&self.scope, p))
            .cloned()
            .collect();
        let (i, ns) = match cluster_edit::find_cluster(&scoped, name, namespace, &where_) {
            Ok(i) => (i, namespace),
            Err(e @ ClusterEditError::NotFound { .. }) if namespace.is_some() => {
                match cluster_edit::find_cluster(&scoped, name, None, &where_) {
                    Ok(i) if manifest_without_namespace(&scoped[i].1, name) => (i, None),
                    _ => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        let (file, text) = &scoped[i];
        let written = cluster_edit::current_version(file, text, name, ns, place)?;
        let line = cluster_edit::version_line(file, text, name, ns, place)?;
        let Some(written) = written else {
            return Err(ClusterEditError::FieldMissing {
                file: file.clone(),
                line,
                cluster: match ns {
                    Some(ns) => format!("{ns}/{name}"),
                    None => name.to_owned(),
                },
                field: place.path(),
                place: Box::new(place.clone()),
            });
        };
        Ok(FoundPlace {
            place: place.clone(),
            fields: vec![FieldAt {
                file: file.clone(),
                line,
            }],
            written,
            target: Target::Cluster {
                file: file.clone(),
                name: name.to_owned(),
                namespace: ns.map(str::to_owned),
                place: place.clone(),
            },
        })
    }

    /// The values key (Auto: `None` when no values hold it; a `${variable}` there is the
    /// Kustomization's variable). The ConfigMaps are tried in order (see
    /// [`Layout::values_candidates`]); the first whose values hold the key is the place.
    fn at_values(
        &self,
        i: usize,
        cluster: &str,
        namespace: &str,
        values: &ValuesPlace,
        auto: bool,
    ) -> Result<Option<FoundPlace>, ClusterEditError> {
        let mut first_found = None;
        for (cm_name, cm_ns) in self.values_candidates(i, cluster, namespace, values) {
            let Some(found) = self.config_map_values(i, &cm_name, &cm_ns, values)? else {
                continue;
            };
            let Some((line, written)) = cluster_edit::values::key_line(
                &found.file,
                &found.text,
                &values.key_path,
                found.line_base,
            )?
            else {
                first_found.get_or_insert((found.file, found.line_base, found.place));
                continue;
            };
            let ValuesFound {
                place: resolved,
                file,
                target,
                ..
            } = found;
            if let Some(var) = whole_variable(&written) {
                if auto {
                    return self.at_substitute(i, cluster, namespace, var, &values.app, false);
                }
                return Err(ClusterEditError::Substituted {
                    file,
                    line,
                    field: values.key_path.clone(),
                    value: written,
                });
            }
            self.not_shared(&file, &values.key_path)?;
            return Ok(Some(FoundPlace {
                place: VersionPlace::Values(resolved),
                fields: vec![FieldAt { file, line }],
                written,
                target,
            }));
        }
        if auto {
            return Ok(None);
        }
        if let Some((file, line_base, resolved)) = first_found {
            return Err(ClusterEditError::ObjectFieldMissing {
                file,
                line: line_base + 1,
                object: "the values".to_owned(),
                field: values.key_path.clone(),
                place: Box::new(VersionPlace::Values(resolved)),
            });
        }
        let (name, ns) = self
            .values_candidates(i, cluster, namespace, values)
            .into_iter()
            .next()
            .unwrap_or_default();
        Err(ClusterEditError::ObjectNotFound {
            object: format!("ConfigMap {ns}/{name} with data.{}", values.data_key),
            where_: format!("the files of {}", self.flux[i].at.file),
        })
    }

    /// The Kustomization's variable (Auto: only when the App's `spec.version` is
    /// `${variable}`).
    fn at_substitute(
        &self,
        i: usize,
        cluster: &str,
        namespace: &str,
        var: &str,
        app: &ObjectRef,
        only_if_app_uses_it: bool,
    ) -> Result<Option<FoundPlace>, ClusterEditError> {
        if only_if_app_uses_it {
            match self.app_version(i, cluster, namespace, app)? {
                Some((_, _, v)) if whole_variable(&v) == Some(var) => {}
                _ => return Ok(None),
            }
        }
        let f = &self.flux[i];
        let text = self.text(&f.at.file).unwrap_or_default();
        let sel = ObjectSel {
            group: FLUX_KUSTOMIZE_GROUP,
            kind: "Kustomization",
            name: &f.at.name,
            namespace: f.at.namespace.as_deref(),
        };
        let path = ["spec", "postBuild", "substitute", var];
        let docs = docs_of(text).unwrap_or_default();
        let doc = docs
            .iter()
            .find(|d| d.start().line == f.at.line)
            .ok_or_else(|| ClusterEditError::NotYaml {
                file: f.at.file.clone(),
            })?;
        let place = VersionPlace::Substitute(var.to_owned());
        match field_node(doc, &path) {
            Ok(Node::Scalar { at, value, .. }) => Ok(Some(FoundPlace {
                place,
                fields: vec![FieldAt {
                    file: f.at.file.clone(),
                    line: at.line,
                }],
                written: value.clone(),
                target: Target::Field {
                    file: f.at.file.clone(),
                    group: sel.group.to_owned(),
                    kind: sel.kind.to_owned(),
                    name: sel.name.to_owned(),
                    namespace: sel.namespace.map(str::to_owned),
                    vars: Vars::new(),
                    path: path.iter().map(|s| (*s).to_owned()).collect(),
                },
            })),
            Err(NoField::Duplicate(key, lines)) => Err(ClusterEditError::DuplicateKey {
                file: f.at.file.clone(),
                line: lines[0],
                field: path.join("."),
                key,
                lines,
            }),
            Ok(_) | Err(NoField::Missing(_)) => Err(ClusterEditError::ObjectFieldMissing {
                file: f.at.file.clone(),
                line: f.path_line,
                object: format!("Kustomization {}", f.at.name),
                field: path.join("."),
                place: Box::new(place),
            }),
        }
    }

    /// The App's `spec.version` as written: (file, line, value); a patch wins.
    fn app_version(
        &self,
        i: usize,
        cluster: &str,
        namespace: &str,
        app: &ObjectRef,
    ) -> Result<Option<(String, usize, String)>, ClusterEditError> {
        let (name, ns) = app.resolve(cluster, namespace);
        let sel = ObjectSel {
            group: APP_GROUP,
            kind: "App",
            name: &name,
            namespace: Some(&ns),
        };
        let mut found = self.objects(i, &sel);
        if found.is_empty() {
            return Ok(None);
        }
        found.sort_by_key(|(_, _, patch)| !patch);
        for (file, doc, _) in &found {
            match field_node(doc, &["spec", "version"]) {
                Ok(Node::Scalar { at, value, .. }) => {
                    return Ok(Some((file.clone(), at.line, value.clone())));
                }
                Err(NoField::Duplicate(key, lines)) => {
                    return Err(ClusterEditError::DuplicateKey {
                        file: file.clone(),
                        line: lines[0],
                        field: "spec.version".to_owned(),
                        key,
                        lines,
                    });
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// The App's literal `spec.version`.
    fn at_app(
        &self,
        i: usize,
        cluster: &str,
        namespace: &str,
        app: &ObjectRef,
    ) -> Result<Option<FoundPlace>, ClusterEditError> {
        let (name, ns) = app.resolve(cluster, namespace);
        let Some((file, line, written)) = self.app_version(i, cluster, namespace, app)? else {
            return Err(ClusterEditError::ObjectNotFound {
                object: format!("App {ns}/{name} with spec.version"),
                where_: format!("the files of {}", self.flux[i].at.file),
            });
        };
        if whole_variable(&written).is_some() || written.contains("${") {
            return Err(ClusterEditError::Substituted {
                file,
                line,
                field: "spec.version".to_owned(),
                value: written,
            });
        }
        if written.trim().is_empty() {
            return Err(ClusterEditError::ObjectFieldMissing {
                file,
                line,
                object: format!("App {ns}/{name}"),
                field: "spec.version (it is empty: a release-based cluster keeps its version in the values)".to_owned(),
                place: Box::new(VersionPlace::App(app.clone())),
            });
        }
        self.not_shared(&file, "spec.version")?;
        Ok(Some(FoundPlace {
            place: VersionPlace::App(ObjectRef {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
            }),
            fields: vec![FieldAt {
                file: file.clone(),
                line,
            }],
            written,
            target: Target::Field {
                file,
                group: APP_GROUP.to_owned(),
                kind: "App".to_owned(),
                name,
                namespace: Some(ns),
                vars: self.flux[i].vars.clone(),
                path: vec!["spec".to_owned(), "version".to_owned()],
            },
        }))
    }
}

fn spec_kind(t: PlaceType) -> &'static str {
    match t {
        PlaceType::Auto => "Auto",
        PlaceType::Label => "Label",
        PlaceType::Topology => "Topology",
        PlaceType::App => "App",
        PlaceType::Values => "Values",
        PlaceType::Substitute => "Substitute",
        PlaceType::Marker => "Marker",
    }
}

/// Errors that mean "not here" to `Auto`, which then tries the next place.
fn is_absence(e: &ClusterEditError) -> bool {
    matches!(
        e,
        ClusterEditError::ObjectNotFound { .. }
            | ClusterEditError::ObjectFieldMissing { .. }
            | ClusterEditError::NotFound { .. }
            | ClusterEditError::FieldMissing { .. }
    )
}

fn manifest_without_namespace(text: &str, name: &str) -> bool {
    docs_of(text).unwrap_or_default().iter().any(|d| {
        d.root().is_some_and(|r| {
            scalar(r, "kind") == Some("Cluster")
                && entry(r, "metadata").is_some_and(|m| {
                    scalar(&m.value, "name") == Some(name)
                        && scalar(&m.value, "namespace").is_none()
                })
        })
    })
}

/// Writes `version` at `found` in `files` (the same files it was located in): the new text of
/// each changed file, by index into `files`. Each edit is the byte-exact, verified edit of its
/// place; nothing is returned unless every edit of the place succeeded.
pub fn set_version(
    files: &[(String, String)],
    found: &FoundPlace,
    version: &str,
) -> Result<Vec<(usize, VersionEdit)>, ClusterEditError> {
    let index = |file: &str| {
        files
            .iter()
            .position(|(p, _)| p == file)
            .ok_or_else(|| ClusterEditError::ObjectNotFound {
                object: file.to_owned(),
                where_: "the repository".to_owned(),
            })
    };
    Ok(match &found.target {
        Target::Field {
            file,
            group,
            kind,
            name,
            namespace,
            vars,
            path,
        } => {
            let i = index(file)?;
            let sel = ObjectSel {
                group,
                kind,
                name,
                namespace: namespace.as_deref(),
            };
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            let e = cluster_edit::set_field(
                file,
                &files[i].1,
                &sel,
                vars,
                &path,
                &found.place,
                version,
            )?;
            vec![(i, e)]
        }
        Target::ConfigMap {
            file,
            name,
            namespace,
            vars,
            data_key,
            key_path,
        } => {
            let i = index(file)?;
            let sel = ObjectSel {
                group: "",
                kind: "ConfigMap",
                name,
                namespace: namespace.as_deref(),
            };
            vec![(
                i,
                cluster_edit::set_config_map_values(
                    file,
                    &files[i].1,
                    &sel,
                    vars,
                    data_key,
                    key_path,
                    version,
                )?,
            )]
        }
        Target::ValuesFile { file, key_path } => {
            let i = index(file)?;
            vec![(
                i,
                cluster_edit::set_values_key_at(file, &files[i].1, key_path, version)?,
            )]
        }
        Target::Markers {
            files: marked,
            namespace,
            name,
        } => {
            let mut out = Vec::new();
            for file in marked {
                let i = index(file)?;
                out.push((
                    i,
                    cluster_edit::set_marked(file, &files[i].1, namespace, name, version)?,
                ));
            }
            out
        }
        Target::Cluster {
            file,
            name,
            namespace,
            place,
        } => {
            let i = index(file)?;
            vec![(
                i,
                cluster_edit::set_version(
                    file,
                    &files[i].1,
                    name,
                    namespace.as_deref(),
                    place,
                    version,
                )?,
            )]
        }
    })
}

/// Every workload cluster of a repository in Giant Swarm's layout (see [`Layout::clusters`]).
pub fn discover(files: &[(String, String)]) -> (Vec<GsCluster>, Vec<Diagnostic>) {
    Layout::read(files).clusters()
}

/// Where the version of the cluster `namespace/name` lives in `files` and what it is (see
/// [`Layout::locate`]).
pub fn locate(
    files: &[(String, String)],
    namespace: Option<&str>,
    name: &str,
    spec: &VersionPlaceSpec,
    fallback: &VersionPlace,
) -> Result<FoundPlace, ClusterEditError> {
    Layout::read(files).locate(namespace, name, spec, fallback)
}

/// The current version of the cluster and where it is written: [`locate`], with the value as
/// the cluster reads it (Flux variables substituted).
pub fn current_version(
    files: &[(String, String)],
    namespace: Option<&str>,
    name: &str,
    spec: &VersionPlaceSpec,
    fallback: &VersionPlace,
) -> Result<(String, FoundPlace), ClusterEditError> {
    let layout = Layout::read(files);
    let found = layout.locate(namespace, name, spec, fallback)?;
    let vars = layout
        .flux_cluster(namespace, name)
        .ok()
        .flatten()
        .map(|i| layout.flux[i].vars.clone())
        .unwrap_or_default();
    Ok((substitute(&found.written, &vars).0, found))
}

#[cfg(test)]
mod tests;
