//! Cluster upgrades through the write loop: rewrite the version of a batch of Cluster API
//! `Cluster` manifests in a GitOps repository, as one commit, pushed with a lease.
//!
//! Why it is shaped this way:
//! - The controller (`trigger: GitOps`) and the CLI (`upkeep upgrade cluster --via git --push`)
//!   make the same change, so they share this one function; the byte-exact edit itself is
//!   [`upkeep_api::cluster_edit`], the fetch → edit → commit → push loop is
//!   [`write_and_push`]. The edit is recomputed from each attempt's starting commit, so a
//!   rejected push (someone else moved the branch) is retried on what is there now.
//! - A batch is one commit: every cluster the rollout core starts in one reconcile moves
//!   together, and the message names each cluster with its from → to and the upgrade.
//! - Re-applying is idempotent: when every manifest already holds its target the result is
//!   [`Written::UpToDate`] with no commit, which is what a controller restarted between
//!   "recorded Triggered" and "pushed" relies on to never make a second change.
//! - A campaign's batch may name its ClusterUpgrade ([`ClusterBatch::campaign`]): the commit
//!   then ends with `Upkeep-Campaign:` and one `Upkeep-Cluster:` trailer per cluster it moves
//!   (as `upkeep run`'s local commits do), so a run killed after pushing finds the commit it
//!   made ([`campaign_commit`]) and records it. Without one the message is unchanged.
//! - A cluster is looked up under `path` by name and namespace, at its version place
//!   ([`upkeep_api::gs_layout`]): with `versionPlace` `Auto` (the default) a scalar marked
//!   `cluster:<namespace>/<name>`, else in Giant Swarm's layout the values key, the Flux
//!   Kustomization's variable or the App's `spec.version`, else the `Cluster` manifest's label
//!   or `spec.topology.version` (`place`). A manifest without `metadata.namespace`
//!   (namespaced later by a Flux Kustomization's `targetNamespace`) is accepted when no
//!   manifest names the namespace. Kustomize resources are read anywhere in the repository
//!   (never outside it, never through a symlink). Errors name the file and line and say what
//!   to fix ([`ClusterEditError::hint`]).

use git2::Oid;
use upkeep_api::cluster_edit::{ClusterEditError, VersionPlace};
use upkeep_api::gs_layout::Layout;
use upkeep_api::version_place::VersionPlaceSpec;
use upkeep_core::version::{UpgradeKind, Version};

use crate::marked_fields::is_manifest_path;
use crate::{
    Auth, Author, Branches, ChangeRecord, GitError, MessageTemplate, Prepared, Repo, TemplateError,
    Written, write_and_push,
};

/// One cluster to move, and where to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTarget {
    /// The cluster's namespace (`None`: any).
    pub namespace: Option<String>,
    pub name: String,
    /// The version to write, as it should read in the manifest.
    pub version: String,
}

impl ClusterTarget {
    /// `namespace/name` (or `name`).
    pub fn display_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// What to write: the clusters, where their manifests live, and who asks.
#[derive(Debug, Clone, Copy)]
pub struct ClusterBatch<'a> {
    /// Directory of the manifests, from the repository root (`""`: the whole repository).
    pub path: &'a str,
    /// The Cluster manifest's version place (label or `spec.topology.version`): where `Auto`
    /// writes when the cluster has no other place.
    pub place: &'a VersionPlace,
    /// The upgrade's `versionPlace` (`None`: `Auto`).
    pub version_place: Option<&'a VersionPlaceSpec>,
    pub clusters: &'a [ClusterTarget],
    /// Who asks, for the message: `ClusterUpgrade namespace/name`, or `upkeep upgrade cluster`.
    pub requester: &'a str,
    /// A commit message template (the automation's `commit.messageTemplate`); `None`: the
    /// built-in message.
    pub template: Option<&'a MessageTemplate>,
    /// The ClusterUpgrade the batch is for (`namespace/name`): the commit then carries
    /// [`CAMPAIGN_TRAILER`] and one [`CLUSTER_TRAILER`] (`namespace/name`) per cluster it
    /// changes. `None`: no trailers.
    pub campaign: Option<&'a str>,
}

/// The trailer naming the ClusterUpgrade (`namespace/name`) a cluster commit is for.
pub const CAMPAIGN_TRAILER: &str = "Upkeep-Campaign";
/// The trailer naming a cluster (`namespace/name`) a campaign's commit moves.
pub const CLUSTER_TRAILER: &str = "Upkeep-Cluster";

/// A cluster's `namespace/name` as its trailer names it (`default` when none is given).
fn trailer_name(target: &ClusterTarget) -> String {
    format!(
        "{}/{}",
        target.namespace.as_deref().unwrap_or("default"),
        target.name
    )
}

/// `message` ending with the campaign's trailers: one [`CAMPAIGN_TRAILER`] and one
/// [`CLUSTER_TRAILER`] per cluster of `batch` that `changes` moves, in a paragraph of their
/// own.
fn with_campaign_trailers(
    message: &str,
    campaign: &str,
    batch: &ClusterBatch<'_>,
    changes: &[ChangeRecord],
) -> String {
    use std::fmt::Write as _;
    let mut out = message.trim_end().to_owned();
    let _ = write!(out, "\n\n{CAMPAIGN_TRAILER}: {campaign}\n");
    for target in batch.clusters {
        let object = format!("Cluster {}", target.display_name());
        if changes.iter().any(|c| c.object == object) {
            let _ = writeln!(out, "{CLUSTER_TRAILER}: {}", trailer_name(target));
        }
    }
    out
}

/// Whether `message` carries the trailer line `key: value`.
fn has_trailer(message: &str, key: &str, value: &str) -> bool {
    message.lines().any(|l| {
        l.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|v| v.trim() == value)
    })
}

/// The commit that moved `target` for `campaign`: the newest commit reachable from `tip` whose
/// message carries `Upkeep-Campaign: <campaign>` and `Upkeep-Cluster: <namespace>/<name>` and
/// at which the cluster's manifest under `path` holds the target version. This is how a run
/// that was killed after pushing (or committing) names the commit it made, instead of
/// recording the change without one. `None` when no such commit is on the branch.
pub fn campaign_commit(
    repo: &Repo,
    tip: Oid,
    path: &str,
    place: &VersionPlace,
    campaign: &str,
    target: &ClusterTarget,
) -> Result<Option<Oid>, ClusterWriteError> {
    let wrap = |e: git2::Error| GitError::git("walking history", &e);
    let mut walk = repo.inner.revwalk().map_err(wrap)?;
    walk.push(tip).map_err(wrap)?;
    let cluster = trailer_name(target);
    let one = std::slice::from_ref(target);
    let batch = ClusterBatch {
        path,
        place,
        version_place: None,
        clusters: one,
        requester: campaign,
        template: None,
        campaign: Some(campaign),
    };
    for oid in walk {
        let oid = oid.map_err(wrap)?;
        let commit = repo.inner.find_commit(oid).map_err(wrap)?;
        let message = String::from_utf8_lossy(commit.message_raw_bytes());
        if !has_trailer(&message, CAMPAIGN_TRAILER, campaign)
            || !has_trailer(&message, CLUSTER_TRAILER, &cluster)
        {
            continue;
        }
        // The commit's own tree must hold the target (a commit of the same campaign for an
        // older target is not this change).
        match plan_cluster_versions(repo, oid, &batch) {
            Ok((_, changes)) if changes.is_empty() => return Ok(Some(oid)),
            Ok(_) | Err(ClusterWriteError::Edit { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// How a batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterWrite {
    pub written: Written,
    /// The clusters whose version on the checkout branch differs from the target (what a
    /// pull request from the push branch carries), from → to.
    pub changes: Vec<ChangeRecord>,
}

/// Why a batch could not be written. Variant names are stable (metric labels).
#[derive(Debug, thiserror::Error)]
pub enum ClusterWriteError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{error}")]
    Edit {
        #[source]
        error: ClusterEditError,
    },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("no cluster to write")]
    Empty,
}

impl ClusterWriteError {
    /// A suggested fix.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Git(e) => e.hint(),
            Self::Edit { error } => error.hint(),
            Self::Template(e) => Some(e.hint().to_owned()),
            Self::Empty => None,
        }
    }

    /// The variant name (with the edit error's kind), for metric labels and status reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Git(_) => "GitError",
            Self::Edit { error } => error.kind(),
            Self::Template(_) => "TemplateError",
            Self::Empty => "Empty",
        }
    }
}

impl From<ClusterEditError> for ClusterWriteError {
    fn from(error: ClusterEditError) -> Self {
        Self::Edit { error }
    }
}

/// The manifests of the repository in `commit`: `(path, text)`, skipping files that are not
/// UTF-8, symlinks and submodules.
fn manifests(repo: &Repo, commit: Oid) -> Result<Vec<(String, String)>, GitError> {
    let mut out = Vec::new();
    for f in repo.files(commit, "")? {
        if !is_manifest_path(&f.path) {
            continue;
        }
        if let Ok(text) = String::from_utf8(repo.read_blob(f.blob)?) {
            out.push((f.path, text));
        }
    }
    Ok(out)
}

fn kind_of(old: &str, new: &str) -> String {
    match (Version::parse(old.trim()), Version::parse(new.trim())) {
        (Some(a), Some(b)) => match UpgradeKind::between(&a, &b) {
            Some(UpgradeKind::Patch) => "patch",
            Some(UpgradeKind::Minor) => "minor",
            Some(UpgradeKind::Major) => "major",
            None => "change",
        },
        _ => "change",
    }
    .to_owned()
}

/// New contents of the edited files, and the changes (from → to).
pub type ClusterEdits = (Vec<(String, Vec<u8>)>, Vec<ChangeRecord>);

/// The edits of a batch on `commit`: new file contents and the changes (from → to), in the
/// batch's order. Clusters already at their target give no change.
pub fn plan_cluster_versions(
    repo: &Repo,
    commit: Oid,
    batch: &ClusterBatch<'_>,
) -> Result<ClusterEdits, ClusterWriteError> {
    let originals = manifests(repo, commit)?;
    let mut files = originals.clone();
    let scope = batch.path.trim_matches('/');
    let auto = VersionPlaceSpec::default();
    let spec = batch.version_place.unwrap_or(&auto);
    // Every cluster is located on the commit's files with one reading of the layout; each edit
    // then finds its object again in the files as the batch has edited them so far (two
    // clusters may share a file), so a batch is linear in the repository's size.
    let layout = Layout::read_under(&originals, scope);
    let mut places = Vec::with_capacity(batch.clusters.len());
    for target in batch.clusters {
        let found = layout
            .locate(target.namespace.as_deref(), &target.name, spec, batch.place)
            .map_err(|e| with_commit(e, commit))?;
        places.push(found);
    }
    let mut changes = Vec::new();
    for (target, found) in batch.clusters.iter().zip(&places) {
        let edits = upkeep_api::gs_layout::set_version(&files, found, &target.version)?;
        let mut record = None;
        for (i, edit) in edits {
            if edit.is_changed(&files[i].1) {
                record.get_or_insert_with(|| ChangeRecord {
                    file: files[i].0.clone(),
                    line: edit.line,
                    object: format!("Cluster {}", target.display_name()),
                    kind: kind_of(&edit.old, &target.version),
                    old: edit.old.clone(),
                    new: target.version.clone(),
                    policy: batch.requester.to_owned(),
                });
                files[i].1 = edit.new_text;
            }
        }
        changes.extend(record);
    }
    let out = files
        .into_iter()
        .zip(&originals)
        .filter(|((_, new), (_, old))| new != old)
        .map(|((path, new), _)| (path, new.into_bytes()))
        .collect();
    Ok((out, changes))
}

/// A "not found" error naming the commit searched.
fn with_commit(e: ClusterEditError, commit: Oid) -> ClusterEditError {
    match e {
        ClusterEditError::NotFound { cluster, where_ } => ClusterEditError::NotFound {
            cluster,
            where_: format!("{where_} at {commit}"),
        },
        ClusterEditError::ObjectNotFound { object, where_ } => ClusterEditError::ObjectNotFound {
            object,
            where_: format!("{where_} at {commit}"),
        },
        other => other,
    }
}

/// The built-in commit message: a subject naming the cluster (or the count and target), one
/// line per cluster with file, line and from → to, and who asked.
pub fn cluster_message(requester: &str, changes: &[ChangeRecord]) -> String {
    use std::fmt::Write as _;
    let mut message = if let [one] = changes {
        format!("Upgrade {} from {} to {}\n\n", one.object, one.old, one.new)
    } else {
        let mut targets: Vec<&str> = changes.iter().map(|c| c.new.as_str()).collect();
        targets.dedup();
        format!(
            "Upgrade {} clusters to {}\n\n",
            changes.len(),
            targets.join(", ")
        )
    };
    for c in changes {
        let _ = writeln!(
            message,
            "- {}:{} {}: {} -> {} ({})",
            c.file, c.line, c.object, c.old, c.new, c.kind
        );
    }
    let _ = write!(message, "\nRequested by {requester}.\n");
    message
}

/// Writes the batch's versions on top of the push branch and pushes it (see [`write_and_push`]
/// for branches, leases and retries): one commit for the batch, or [`Written::UpToDate`] when
/// every manifest already holds its target.
pub fn write_cluster_versions(
    repo: &Repo,
    auth: &Auth,
    branches: Branches<'_>,
    author: &Author,
    max_attempts: u32,
    batch: &ClusterBatch<'_>,
) -> Result<ClusterWrite, ClusterWriteError> {
    if batch.clusters.is_empty() {
        return Err(ClusterWriteError::Empty);
    }
    let written = write_and_push(
        repo,
        auth,
        branches,
        author,
        max_attempts,
        |repo: &Repo, start| -> Result<Prepared, ClusterWriteError> {
            let (files, changes) = plan_cluster_versions(repo, start, batch)?;
            let message = if changes.is_empty() {
                String::new()
            } else if let Some(t) = batch.template {
                t.render(batch.requester, &changes)?
            } else {
                cluster_message(batch.requester, &changes)
            };
            let message = match batch.campaign {
                Some(campaign) if !changes.is_empty() => {
                    with_campaign_trailers(&message, campaign, batch, &changes)
                }
                _ => message,
            };
            Ok(Prepared { files, message })
        },
    )?;
    let base = match &written {
        Written::Pushed { base, .. } | Written::UpToDate { base, .. } => *base,
    };
    // What a pull request carries; the push already happened, so a surprise here (the checkout
    // branch changed shape meanwhile) leaves the list empty rather than failing the write.
    let changes = plan_cluster_versions(repo, base, batch).map_or_else(|_| Vec::new(), |(_, c)| c);
    Ok(ClusterWrite { written, changes })
}
