//! The clusters of a GitOps repository, whatever defines them, and finding one by name.
//!
//! Why this shape: the cluster commands (`upgrade cluster --via git`, `freeze`, `unfreeze`,
//! `status`, `plan`, and `run`'s campaigns) decide over [`ClusterObject`]s, the rollout core's
//! input in both shapes; but where a cluster's labels, freeze and version are *written* depends
//! on the repository's layout. A Cluster API `Cluster` manifest carries all three itself; in
//! Giant Swarm's GitOps layout there is no Cluster manifest (the cluster chart creates the
//! Cluster in the management cluster) and the same facts live in a Flux Kustomization, a
//! cluster App and its values ConfigMap. A [`RepoCluster`] is the one view every command reads:
//! what decisions read ([`RepoCluster::object`]) and what defines the cluster, so where a change
//! goes ([`Definition`]). Commands never search files for a cluster themselves.
//!
//! Giant Swarm's layout is read by [`upkeep_api::gs_layout`] (the discovery, the `Auto` rule
//! for where the version is written, and its byte-exact edits); this module only turns what it
//! finds into the same view, reads the freeze from the values' `global.metadata.annotations`
//! (which the cluster chart copies onto the Cluster) and writes it there
//! ([`upkeep_api::values_annotations`]).
//!
//! Finding a cluster ([`find`]) is the same for every layout, and matches what a Giant Swarm
//! user types (`kubectl gs` takes a cluster name; the organisation namespace comes from it): a
//! given namespace is exact; without one the name alone is enough when it is unique across the
//! repository's namespaces, and several candidates are an error listing each `namespace/name`
//! with where it is defined. Nothing defaults to `default`.

use std::collections::BTreeMap;
use std::path::Path;

use upkeep_api::ClusterObject;
use upkeep_api::cluster::RELEASE_VERSION_LABEL;
use upkeep_api::cluster_edit::{self, ClusterEditError, VersionEdit, VersionPlace};
use upkeep_api::gs_layout::{GsCluster, ValuesAt};
use upkeep_api::values_annotations::{self, ValuesEditError, ValuesRef};
use upkeep_git::clusters::ClusterTarget;

/// What defines a cluster in the repository, so where its changes are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Definition {
    /// A Cluster API `Cluster` manifest (`apiVersion: cluster.x-k8s.io/*`, `kind: Cluster`):
    /// the version place, labels and freeze annotations are in the manifest itself
    /// ([`upkeep_api::cluster_edit`]).
    Manifest,
    /// Giant Swarm's GitOps layout: a Flux Kustomization whose `postBuild.substitute` names the
    /// cluster, rendering its App and values ConfigMap. The version is written where the
    /// discovery found it (`cluster.place`); annotations in the values (`values`).
    GiantSwarm(Box<GiantSwarm>),
}

/// What Giant Swarm's layout says of one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GiantSwarm {
    pub(crate) cluster: GsCluster,
    /// Where its values are, when found.
    pub(crate) values: Option<ValuesAt>,
}

/// Why a change could not be made: the message (naming the file and line) and a fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EditFailed {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl From<ClusterEditError> for EditFailed {
    fn from(e: ClusterEditError) -> Self {
        EditFailed {
            message: e.to_string(),
            hint: e.hint(),
        }
    }
}

impl From<ValuesEditError> for EditFailed {
    fn from(e: ValuesEditError) -> Self {
        EditFailed {
            message: e.to_string(),
            hint: e.hint(),
        }
    }
}

impl EditFailed {
    pub(crate) fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
}

impl std::fmt::Display for EditFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One cluster of the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RepoCluster {
    /// What decisions read: name, namespace, labels, annotations (the freeze), version.
    pub(crate) object: ClusterObject,
    /// The file that defines the cluster, `/`-separated from the repository root.
    pub(crate) file: String,
    /// The 1-based line where its definition starts.
    pub(crate) line: usize,
    pub(crate) definition: Definition,
}

impl RepoCluster {
    /// A cluster defined by a `Cluster` manifest at `file` (a path under `root`).
    pub(crate) fn manifest(object: ClusterObject, root: &Path, file: &Path, line: usize) -> Self {
        RepoCluster {
            object,
            file: rel_path(root, file),
            line,
            definition: Definition::Manifest,
        }
    }

    /// A cluster of Giant Swarm's layout: what decisions read is what the management
    /// cluster's Cluster will carry — the values' labels (and the organisation), the release
    /// label at the version found, the values' annotations (`annotations`: the freeze).
    pub(crate) fn giant_swarm(
        cluster: GsCluster,
        values: Option<ValuesAt>,
        annotations: BTreeMap<String, String>,
    ) -> Self {
        let mut labels = cluster.labels.clone();
        if let Some(v) = &cluster.version {
            labels.insert(RELEASE_VERSION_LABEL.to_owned(), v.clone());
        }
        RepoCluster {
            object: ClusterObject {
                name: cluster.name.clone(),
                namespace: Some(cluster.namespace.clone()),
                labels,
                annotations,
                release_version: cluster.version.clone(),
                ..ClusterObject::default()
            },
            file: cluster.kustomization.file.clone(),
            line: cluster.kustomization.line,
            definition: Definition::GiantSwarm(Box::new(GiantSwarm { cluster, values })),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.object.name
    }

    /// The namespace (`default` when the manifest names none, as Kubernetes reads it).
    pub(crate) fn namespace(&self) -> &str {
        self.object.namespace.as_deref().unwrap_or("default")
    }

    /// `namespace/name`.
    pub(crate) fn display(&self) -> String {
        format!("{}/{}", self.namespace(), self.name())
    }

    /// `file:line`.
    pub(crate) fn place(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// The file the version is written in (what [`RepoCluster::set_version`] edits).
    pub(crate) fn version_file(&self) -> &str {
        match &self.definition {
            Definition::Manifest => &self.file,
            Definition::GiantSwarm(gs) => gs
                .cluster
                .place
                .as_ref()
                .and_then(|p| p.fields.first())
                .map_or(&self.file, |f| f.file.as_str()),
        }
    }

    /// Where the version is written: `asked` (`--field`) for a `Cluster` manifest; the place
    /// the discovery found for a cluster of Giant Swarm's layout.
    pub(crate) fn version_place(&self, asked: &VersionPlace) -> VersionPlace {
        match &self.definition {
            Definition::Manifest => asked.clone(),
            Definition::GiantSwarm(gs) => gs
                .cluster
                .place
                .as_ref()
                .map_or_else(|| asked.clone(), |p| p.place.clone()),
        }
    }

    /// The file the annotations (the freeze) are written in (what
    /// [`RepoCluster::set_annotations`] edits).
    pub(crate) fn annotations_file(&self) -> &str {
        match &self.definition {
            Definition::Manifest => &self.file,
            Definition::GiantSwarm(gs) => match &gs.values {
                Some(ValuesAt::ConfigMap { file, .. } | ValuesAt::File { file }) => file,
                None => &self.file,
            },
        }
    }

    /// The [`RepoCluster::version_file`]'s `text` with the cluster's version at `place` set to
    /// `version` (only that scalar's bytes change; checked by reading it back).
    pub(crate) fn set_version(
        &self,
        text: &str,
        place: &VersionPlace,
        version: &str,
    ) -> Result<VersionEdit, EditFailed> {
        match &self.definition {
            Definition::Manifest => Ok(cluster_edit::set_version(
                &self.file,
                text,
                self.name(),
                Some(self.namespace()),
                place,
                version,
            )?),
            Definition::GiantSwarm(gs) => {
                let Some(found) = &gs.cluster.place else {
                    return Err(EditFailed {
                        message: format!(
                            "{}: cluster {}: where its version is written was not found",
                            self.place(),
                            self.display()
                        ),
                        hint: Some(
                            "the warning above says why (Giant Swarm's layout: the cluster App's spec.version, its values' global.release.version or the Kustomization's cluster_release)"
                                .to_owned(),
                        ),
                    });
                };
                let files = [(self.version_file().to_owned(), text.to_owned())];
                let mut edits = upkeep_api::gs_layout::set_version(&files, found, version)?;
                match (edits.len(), edits.pop()) {
                    (1, Some((_, edit))) => Ok(edit),
                    _ => Err(EditFailed {
                        message: format!(
                            "cluster {}: its version is written in {} places ({}); upkeep upgrade cluster writes one",
                            self.display(),
                            found.fields.len(),
                            found.at()
                        ),
                        hint: Some(
                            "use a ClusterUpgrade (upkeep run) for marked clusters".to_owned(),
                        ),
                    }),
                }
            }
        }
    }

    /// The [`RepoCluster::annotations_file`]'s `text` with annotations set (`Some`) or removed
    /// (`None`), in order: the freeze annotations of `upkeep freeze`/`unfreeze`. In Giant
    /// Swarm's layout they are the values' `global.metadata.annotations`.
    pub(crate) fn set_annotations(
        &self,
        text: &str,
        changes: &[(&str, Option<&str>)],
    ) -> Result<String, EditFailed> {
        match &self.definition {
            Definition::Manifest => Ok(cluster_edit::set_annotations(
                &self.file,
                text,
                self.name(),
                Some(self.namespace()),
                changes,
            )?),
            Definition::GiantSwarm(gs) => match &gs.values {
                Some(ValuesAt::ConfigMap {
                    file,
                    name,
                    vars,
                    data_key,
                    ..
                }) => Ok(values_annotations::set_annotations(
                    file,
                    text,
                    ValuesRef {
                        configmap: Some(name),
                        vars: Some(vars),
                        key: data_key,
                    },
                    changes,
                )?),
                Some(ValuesAt::File { file }) => Err(EditFailed {
                    message: format!(
                        "{file}: the values of cluster {} are generated by a configMapGenerator from this file; upkeep writes annotations into a values ConfigMap's data.values",
                        self.display()
                    ),
                    hint: Some(
                        "add global.metadata.annotations to the values file by hand, or use --kubeconfig"
                            .to_owned(),
                    ),
                }),
                None => Err(EditFailed {
                    message: format!(
                        "{}: cluster {}: no values ConfigMap found (its App's spec.userConfig.configMap)",
                        self.place(),
                        self.display()
                    ),
                    hint: Some(
                        "the cluster App needs spec.userConfig.configMap naming a ConfigMap with data.values: |"
                            .to_owned(),
                    ),
                }),
            },
        }
    }

    /// What the shared GitOps write loop is given to move this cluster to `version`.
    pub(crate) fn target(&self, version: &str) -> ClusterTarget {
        ClusterTarget {
            namespace: self.object.namespace.clone(),
            name: self.object.name.clone(),
            version: version.to_owned(),
        }
    }
}

/// The repository's clusters: the `Cluster` manifests, and the clusters of Giant Swarm's layout
/// in `files` (`(path, text)` of every manifest file). A Flux Kustomization naming a
/// `cluster_name` is a cluster when it renders a cluster App or the place of its version was
/// found; one whose version is written in a `Cluster` manifest already listed is that
/// manifest's cluster. What the discovery could not read is printed as a warning (those
/// clusters are listed without a version, and an upgrade of one says why).
pub(crate) fn with_giant_swarm(
    root: &Path,
    mut clusters: Vec<RepoCluster>,
    files: &[(String, String)],
) -> Vec<RepoCluster> {
    let layout = upkeep_api::gs_layout::Layout::read(files);
    let (found, mut problems) = layout.clusters();
    let mut any = false;
    for gs in found {
        if gs.app.is_none() && gs.place.is_none() {
            continue;
        }
        let in_manifest = gs.place.as_ref().is_some_and(|p| {
            matches!(p.place, VersionPlace::Label(_) | VersionPlace::Topology)
                && clusters.iter().any(|c| {
                    c.name() == gs.name
                        && c.namespace() == gs.namespace
                        && p.files().contains(&c.file.as_str())
                })
        });
        if in_manifest {
            continue;
        }
        any = true;
        let values = layout.values_at(&gs.namespace, &gs.name);
        let annotations = match &values {
            Some(ValuesAt::ConfigMap {
                file,
                name,
                vars,
                data_key,
                ..
            }) => read_annotations(files, file, name, vars, data_key).unwrap_or_else(|e| {
                eprintln!(
                    "warning: cluster {}/{}: its annotations (the freeze) cannot be read: {e}",
                    gs.namespace, gs.name
                );
                BTreeMap::new()
            }),
            _ => BTreeMap::new(),
        };
        clusters.push(RepoCluster::giant_swarm(gs, values, annotations));
    }
    if any && !problems.is_empty() {
        eprintln!("warning: Giant Swarm's layout: these could not be read:");
        for d in &mut problems {
            d.file = root.join(&d.file);
        }
        crate::render::print_diagnostics(&problems);
    }
    clusters
}

/// The values' `global.metadata.annotations` of the ConfigMap `name` in `file`, with the
/// cluster's variables substituted as Flux renders them.
fn read_annotations(
    files: &[(String, String)],
    file: &str,
    name: &str,
    vars: &cluster_edit::Vars,
    data_key: &str,
) -> Result<BTreeMap<String, String>, ValuesEditError> {
    let text = files
        .iter()
        .find(|(p, _)| p == file)
        .map_or("", |(_, t)| t.as_str());
    let at = ValuesRef {
        configmap: Some(name),
        vars: Some(vars),
        key: data_key,
    };
    Ok(values_annotations::annotations(file, text, at)?
        .into_iter()
        .map(|(k, v)| (k, cluster_edit::substitute(&v, vars).0))
        .collect())
}

/// `file` as a `/`-separated path from `root`.
pub(crate) fn rel_path(root: &Path, file: &Path) -> String {
    file.strip_prefix(root)
        .unwrap_or(file)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Why a cluster name does not lead to one cluster. The variant names are stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LookupError {
    /// No cluster of that name (in that namespace, when given).
    NotFound {
        name: String,
        namespace: Option<String>,
        /// What was searched, e.g. `the repository ./fleet`.
        searched: String,
        /// The namespaces where a cluster of that name does exist (a wrong `--namespace`).
        elsewhere: Vec<String>,
    },
    /// Several clusters of that name in different namespaces, and no namespace given:
    /// `(namespace/name, file:line)` each.
    Ambiguous {
        name: String,
        candidates: Vec<(String, String)>,
    },
    /// The same `namespace/name` defined more than once: `file:line` each.
    Duplicate {
        cluster: String,
        places: Vec<String>,
    },
}

impl LookupError {
    /// The variant name, for JSON and metric labels.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            LookupError::NotFound { .. } => "NotFound",
            LookupError::Ambiguous { .. } => "Ambiguous",
            LookupError::Duplicate { .. } => "Duplicate",
        }
    }

    /// The error line.
    pub(crate) fn message(&self) -> String {
        match self {
            LookupError::NotFound {
                name,
                namespace,
                searched,
                ..
            } => match namespace {
                Some(ns) => format!("no Cluster {ns}/{name} in {searched}"),
                None => format!("no Cluster {name} in {searched}"),
            },
            LookupError::Ambiguous { name, candidates } => format!(
                "cluster name {name} is ambiguous: {} clusters of that name in different namespaces: {}",
                candidates.len(),
                candidates
                    .iter()
                    .map(|(c, at)| format!("{c} ({at})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            LookupError::Duplicate { cluster, places } => format!(
                "Cluster {cluster} is defined more than once: {}",
                places.join(", ")
            ),
        }
    }

    /// How to fix it.
    pub(crate) fn hint(&self) -> String {
        match self {
            LookupError::NotFound { elsewhere, .. } if !elsewhere.is_empty() => format!(
                "a cluster of that name is in {}; pass --namespace {}",
                elsewhere.join(", "),
                elsewhere[0]
            ),
            LookupError::NotFound { .. } => "check the name (and --namespace); upkeep reads \
                Cluster API Cluster manifests (apiVersion cluster.x-k8s.io/…, kind Cluster) and \
                Giant Swarm's layout (Flux Kustomizations with postBuild.substitute.cluster_name \
                rendering a cluster App)"
                .to_owned(),
            LookupError::Ambiguous { candidates, .. } => format!(
                "pass --namespace to pick one, e.g. --namespace {}",
                candidates
                    .first()
                    .and_then(|(c, _)| c.split_once('/'))
                    .map_or("NS", |(ns, _)| ns)
            ),
            LookupError::Duplicate { .. } => "keep one definition of the cluster".to_owned(),
        }
    }
}

/// The one cluster `name` (in `namespace`, when given) of `clusters`. `searched` names what
/// was searched in the not-found error.
pub(crate) fn find<'c>(
    clusters: &'c [RepoCluster],
    name: &str,
    namespace: Option<&str>,
    searched: &str,
) -> Result<&'c RepoCluster, LookupError> {
    let named: Vec<&RepoCluster> = clusters.iter().filter(|c| c.name() == name).collect();
    let matching: Vec<&RepoCluster> = named
        .iter()
        .copied()
        .filter(|c| namespace.is_none_or(|ns| c.namespace() == ns))
        .collect();
    let Some(first) = matching.first() else {
        let mut elsewhere: Vec<String> = named.iter().map(|c| c.namespace().to_owned()).collect();
        elsewhere.sort();
        elsewhere.dedup();
        return Err(LookupError::NotFound {
            name: name.to_owned(),
            namespace: namespace.map(str::to_owned),
            searched: searched.to_owned(),
            elsewhere,
        });
    };
    if matching.iter().all(|c| c.namespace() == first.namespace()) {
        if matching.len() == 1 {
            return Ok(first);
        }
        return Err(LookupError::Duplicate {
            cluster: first.display(),
            places: matching.iter().map(|c| c.place()).collect(),
        });
    }
    let mut candidates: Vec<(String, String)> =
        matching.iter().map(|c| (c.display(), c.place())).collect();
    candidates.sort();
    Err(LookupError::Ambiguous {
        name: name.to_owned(),
        candidates,
    })
}

/// [`find`] over a repository's clusters, printing the error (with its hint) when the name
/// does not lead to one cluster.
pub(crate) fn find_or_report<'c>(
    clusters: &'c [RepoCluster],
    name: &str,
    namespace: Option<&str>,
    repo_dir: &Path,
) -> Option<&'c RepoCluster> {
    let searched = format!("the repository {}", repo_dir.display());
    match find(clusters, name, namespace, &searched) {
        Ok(c) => Some(c),
        Err(e) => {
            crate::render::error_with_hint(&e.message(), Some(e.hint()));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(ns: Option<&str>, name: &str, file: &str, line: usize) -> RepoCluster {
        RepoCluster {
            object: ClusterObject {
                name: name.to_owned(),
                namespace: ns.map(str::to_owned),
                ..ClusterObject::default()
            },
            file: file.to_owned(),
            line,
            definition: Definition::Manifest,
        }
    }

    fn fleet() -> Vec<RepoCluster> {
        vec![
            cluster(Some("org-a"), "dev", "a/clusters.yaml", 1),
            cluster(Some("org-b"), "dev", "b/clusters.yaml", 7),
            cluster(Some("org-a"), "prod", "a/clusters.yaml", 12),
            cluster(None, "lab", "lab.yaml", 1),
            cluster(Some("org-c"), "twice", "c/one.yaml", 1),
            cluster(Some("org-c"), "twice", "c/two.yaml", 3),
        ]
    }

    #[test]
    fn lookups() {
        let clusters = fleet();
        // (name, namespace, found `ns/name` or error kind, reason)
        let cases: &[(&str, Option<&str>, &str, &str)] = &[
            (
                "prod",
                None,
                "org-a/prod",
                "a name unique across namespaces needs no namespace",
            ),
            (
                "dev",
                Some("org-b"),
                "org-b/dev",
                "a given namespace picks exactly",
            ),
            (
                "dev",
                None,
                "Ambiguous",
                "one name in two organisations is ambiguous without a namespace",
            ),
            (
                "prod",
                Some("org-b"),
                "NotFound",
                "a given namespace is exact: no fallback to another",
            ),
            ("nope", None, "NotFound", "an unknown name"),
            (
                "lab",
                None,
                "default/lab",
                "a manifest without a namespace is in default",
            ),
            (
                "lab",
                Some("default"),
                "default/lab",
                "and found with --namespace default",
            ),
            (
                "twice",
                None,
                "Duplicate",
                "one namespace/name defined twice is not ambiguous but duplicated",
            ),
        ];
        for (name, ns, want, reason) in cases {
            let got = match find(&clusters, name, *ns, "the repository r") {
                Ok(c) => c.display(),
                Err(e) => e.kind().to_owned(),
            };
            assert_eq!(&got, want, "{reason}");
        }
    }

    #[test]
    fn ambiguity_lists_every_candidate_with_where_and_a_hint() {
        let clusters = fleet();
        let e = find(&clusters, "dev", None, "the repository r").unwrap_err();
        assert_eq!(
            e.message(),
            "cluster name dev is ambiguous: 2 clusters of that name in different namespaces: \
             org-a/dev (a/clusters.yaml:1), org-b/dev (b/clusters.yaml:7)"
        );
        assert_eq!(
            e.hint(),
            "pass --namespace to pick one, e.g. --namespace org-a"
        );
    }

    #[test]
    fn not_found_names_what_was_searched_and_where_the_name_is() {
        let clusters = fleet();
        let e = find(&clusters, "prod", Some("org-b"), "the repository r").unwrap_err();
        assert_eq!(e.message(), "no Cluster org-b/prod in the repository r");
        assert_eq!(
            e.hint(),
            "a cluster of that name is in org-a; pass --namespace org-a"
        );
        let e = find(&clusters, "nope", None, "the repository r").unwrap_err();
        assert_eq!(e.message(), "no Cluster nope in the repository r");
        assert!(e.hint().starts_with("check the name"), "{}", e.hint());
        let e = find(&clusters, "twice", None, "the repository r").unwrap_err();
        assert_eq!(
            e.message(),
            "Cluster org-c/twice is defined more than once: c/one.yaml:1, c/two.yaml:3"
        );
    }
}
