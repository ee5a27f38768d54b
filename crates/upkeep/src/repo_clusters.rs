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
//! Finding a cluster ([`find`]) is the same for every layout, and matches what a Giant Swarm
//! user types (`kubectl gs` takes a cluster name; the organisation namespace comes from it): a
//! given namespace is exact; without one the name alone is enough when it is unique across the
//! repository's namespaces, and several candidates are an error listing each `namespace/name`
//! with where it is defined. Nothing defaults to `default`.

use std::path::Path;

use upkeep_api::ClusterObject;
use upkeep_api::cluster_edit::{self, ClusterEditError, VersionEdit, VersionPlace};
use upkeep_git::clusters::ClusterTarget;

/// What defines a cluster in the repository, so where its changes are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Definition {
    /// A Cluster API `Cluster` manifest (`apiVersion: cluster.x-k8s.io/*`, `kind: Cluster`):
    /// the version place, labels and freeze annotations are in the manifest itself
    /// ([`upkeep_api::cluster_edit`]).
    Manifest,
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
        match self.definition {
            Definition::Manifest => &self.file,
        }
    }

    /// The file the annotations (the freeze) are written in (what
    /// [`RepoCluster::set_annotations`] edits).
    pub(crate) fn annotations_file(&self) -> &str {
        match self.definition {
            Definition::Manifest => &self.file,
        }
    }

    /// The [`RepoCluster::version_file`]'s `text` with the cluster's version at `place` set to
    /// `version` (only that scalar's bytes change; checked by reading it back).
    pub(crate) fn set_version(
        &self,
        text: &str,
        place: &VersionPlace,
        version: &str,
    ) -> Result<VersionEdit, ClusterEditError> {
        match self.definition {
            Definition::Manifest => cluster_edit::set_version(
                &self.file,
                text,
                self.name(),
                Some(self.namespace()),
                place,
                version,
            ),
        }
    }

    /// The [`RepoCluster::annotations_file`]'s `text` with annotations set (`Some`) or removed
    /// (`None`), in order: the freeze annotations of `upkeep freeze`/`unfreeze`.
    pub(crate) fn set_annotations(
        &self,
        text: &str,
        changes: &[(&str, Option<&str>)],
    ) -> Result<String, ClusterEditError> {
        match self.definition {
            Definition::Manifest => cluster_edit::set_annotations(
                &self.file,
                text,
                self.name(),
                Some(self.namespace()),
                changes,
            ),
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
                Cluster API Cluster manifests (apiVersion cluster.x-k8s.io/…, kind Cluster)"
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
