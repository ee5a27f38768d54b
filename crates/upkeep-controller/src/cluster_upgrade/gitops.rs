//! `trigger: GitOps` for ClusterUpgrade: the clusters the rollout core starts (or keeps
//! `Triggered`) get their version rewritten in the repository's Cluster manifests — one commit
//! per reconcile through [`upkeep_git::clusters::write_cluster_versions`], the same write loop
//! (fetch, edit on the remote tip, push with a lease, bounded retries) as the
//! AppUpgradeAutomation writer and `upkeep upgrade cluster --via git --push` — and, with
//! `push.pullRequest`, a pull request is opened or updated.
//!
//! Why it is shaped this way:
//! - The ClusterUpgrade reconciler has already recorded `Triggered` before calling this, so a
//!   controller that dies before or after the push re-applies on restart and gets `UpToDate`:
//!   never a second commit, never a lost upgrade. The cluster shows the target only once Flux
//!   (or whoever applies the repository) applies the manifest; until then it stays
//!   `Triggered` and every poll re-applies, which costs a fetch and nothing else.
//! - Credentials come from Secrets exactly as for AppUpgradeAutomation
//!   (`git.secretRef`: `username`/`password`, `identity`/`known_hosts`, `ca.crt`;
//!   `push.pullRequest.secretRef`: `token`, else the git Secret's `password`); status and
//!   Events name the Secret, never its content.
//! - libgit2 work runs on a blocking thread; the forge client on a plain thread (it drives
//!   its own small runtime, which cannot start on a thread of this one).

use std::collections::BTreeMap;
use std::path::Path;

use kube::ResourceExt;
use upkeep_api::ClusterUpgrade;
use upkeep_api::app_upgrade_automation::{Provider, PullRequestStatus};
use upkeep_api::cluster_edit::VersionPlace;
use upkeep_api::cluster_upgrade::{ClusterGitOps, VersionSource};
use upkeep_api::version_place::VersionPlaceSpec;
use upkeep_git::clusters::{ClusterBatch, ClusterTarget, ClusterWrite, write_cluster_versions};
use upkeep_git::{
    Auth, Author, Branches, MessageTemplate, PrRequest, PrTarget, ProviderKind, Repo, Token,
    Written, api_base_for, ensure_pull_request, pull_request_body,
};

use super::UpgradeSettings;
use crate::framework::Error;
use crate::gitops::{MAX_ATTEMPTS, auth_from, forge_token, secret_data};

/// What a GitOps write did.
#[derive(Debug, Default)]
pub(crate) struct GitOpsRun {
    /// The commit pushed now (`None`: the branch already held every target).
    pub(crate) commit: Option<String>,
    pub(crate) pull_request: Option<PullRequestStatus>,
}

fn place(source: VersionSource) -> VersionPlace {
    match source {
        VersionSource::Label => VersionPlace::default(),
        VersionSource::Topology => VersionPlace::Topology,
    }
}

/// A failure of the GitOps trigger, as the controller reports it.
fn gitops(source: Error) -> Error {
    Error::GitOps {
        source: Box::new(source),
    }
}

/// Writes `targets` into the upgrade's repository and opens or updates its pull request.
pub(crate) async fn write(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    targets: Vec<ClusterTarget>,
    source: VersionSource,
) -> Result<GitOpsRun, Error> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let Some(g) = object.spec.git_ops.clone() else {
        return Err(gitops(Error::NoGitOpsSpec));
    };
    let (git_secret, auth) = git_auth(u, &g, &namespace, &name).await?;
    let (checkout, push) = branches(&g);
    let dir = u.workdir.join(&namespace).join(&name);
    let requester = format!("ClusterUpgrade {namespace}/{name}");
    let version_place = object.spec.version_place.clone();
    let written = {
        let (g, checkout, push, requester) =
            (g.clone(), checkout.clone(), push.clone(), requester.clone());
        tokio::task::spawn_blocking(move || {
            git_blocking(
                &g,
                &dir,
                &auth,
                (&checkout, &push),
                &requester,
                &targets,
                (source, version_place.as_ref()),
            )
        })
        .await
        .map_err(|e| {
            gitops(Error::Join {
                source: Box::new(e),
            })
        })?
        .map_err(gitops)?
    };
    let mut run = GitOpsRun::default();
    let (base, tip) = match written.written {
        Written::Pushed { commit, base, .. } => {
            tracing::info!(upgrade = %format!("{namespace}/{name}"), %commit, branch = %push, "cluster versions pushed");
            run.commit = Some(commit.to_string());
            (base, commit)
        }
        Written::UpToDate { base, tip } => (base, tip),
    };
    let pr_spec = g.push.as_ref().and_then(|p| p.pull_request.clone());
    if let Some(spec) = pr_spec
        && push != checkout
        && base != tip
        && !written.changes.is_empty()
    {
        let ca = git_secret.and_then(|(_, d)| d.get("ca.crt").cloned());
        let request = PrRequest {
            base: checkout,
            head: push,
            title: String::new(),
            body: pull_request_body(&requester, &written.changes),
            labels: spec.labels.clone(),
        };
        let pr = pull_request(u, object, &g, &spec, &written, ca, request).await;
        run.pull_request = Some(pr.map_err(gitops)?);
    }
    Ok(run)
}

/// The Git Secret's data (`None` without `git.secretRef`) and the access it gives.
async fn git_auth(
    u: &UpgradeSettings,
    g: &ClusterGitOps,
    namespace: &str,
    name: &str,
) -> Result<(Option<(String, BTreeMap<String, Vec<u8>>)>, Auth), Error> {
    let git_secret = match &g.git.secret_ref {
        None => None,
        Some(r) => {
            let data = secret_data(&u.ctx.client(), namespace, &r.name).await;
            Some((r.name.clone(), data.map_err(gitops)?))
        }
    };
    let keys = u.workdir.join(".keys").join(namespace).join(name);
    let auth = match &git_secret {
        None => Auth::none(),
        Some((secret, data)) => auth_from(data, secret, &keys).map_err(gitops)?,
    };
    let auth = if g.git.url.starts_with("http://") {
        auth.allow_insecure_http()
    } else {
        auth
    };
    Ok((git_secret, auth))
}

/// The branch checked out and the branch pushed to.
fn branches(g: &ClusterGitOps) -> (String, String) {
    let checkout = g
        .git
        .reference
        .as_ref()
        .and_then(|r| r.branch.clone())
        .unwrap_or_else(|| "main".to_owned());
    let push = g
        .push
        .as_ref()
        .and_then(|p| p.branch.clone())
        .unwrap_or_else(|| checkout.clone());
    (checkout, push)
}

/// Opens or updates the pull request of a pushed branch.
async fn pull_request(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    g: &ClusterGitOps,
    spec: &upkeep_api::app_upgrade_automation::PullRequestSpec,
    written: &ClusterWrite,
    ca_pem: Option<Vec<u8>>,
    mut request: PrRequest,
) -> Result<PullRequestStatus, Error> {
    let namespace = object.namespace().unwrap_or_default();
    let token = token(u, g, spec, &namespace).await?;
    let kind = match spec.provider {
        Provider::Github => ProviderKind::Github,
        Provider::Gitlab => ProviderKind::Gitlab,
        Provider::Gitea => ProviderKind::Gitea,
    };
    let pr_failed = |source| Error::PullRequest {
        source: Box::new(source),
    };
    let (api_base, repository) = api_base_for(kind, &g.git.url).map_err(pr_failed)?;
    let api_base = match &spec.api_url {
        Some(url) => url::Url::parse(url).map_err(|source| Error::ApiUrl {
            spec: "spec.gitOps",
            url: url.clone(),
            source,
        })?,
        None => api_base,
    };
    let mut targets: Vec<&str> = written.changes.iter().map(|c| c.new.as_str()).collect();
    targets.dedup();
    request.title = spec.title.clone().unwrap_or_else(|| {
        let (targets, name) = (targets.join(", "), object.name_any());
        format!("Upgrade clusters to {targets} ({namespace}/{name})")
    });
    let target = PrTarget {
        kind,
        api_base,
        repository,
        token: Token::new(token),
        ca_pem,
    };
    // A plain thread, not spawn_blocking: the forge client drives its own small runtime.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(ensure_pull_request(&target, &request));
    });
    let joined = rx.await.map_err(|e| Error::Join {
        source: Box::new(e),
    })?;
    let pr = joined.map_err(pr_failed)?;
    Ok(PullRequestStatus {
        url: pr.url.clone(),
        number: pr.number,
    })
}

/// The forge token: `push.pullRequest.secretRef` key `token`, else the Git Secret's
/// `password`.
async fn token(
    u: &UpgradeSettings,
    g: &ClusterGitOps,
    spec: &upkeep_api::app_upgrade_automation::PullRequestSpec,
    namespace: &str,
) -> Result<String, Error> {
    let git = g.git.secret_ref.as_ref().map(|r| r.name.as_str());
    forge_token(&u.ctx.client(), namespace, spec, git, "spec.gitOps").await
}

fn git_blocking(
    g: &ClusterGitOps,
    dir: &Path,
    auth: &Auth,
    (checkout, push): (&str, &str),
    requester: &str,
    targets: &[ClusterTarget],
    (source, version_place): (VersionSource, Option<&VersionPlaceSpec>),
) -> Result<ClusterWrite, Error> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::WorkDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let repo = Repo::clone_or_open(&g.git.url, dir, checkout, auth)
        .map_err(|source| Error::Git { source })?;
    let template = match &g.commit.message_template {
        Some(t) => Some(MessageTemplate::new(t).map_err(|source| Error::Template { source })?),
        None => None,
    };
    let author = Author {
        name: g.commit.author.name.clone(),
        email: g.commit.author.email.clone(),
    };
    let place = place(source);
    write_cluster_versions(
        &repo,
        auth,
        Branches { checkout, push },
        &author,
        MAX_ATTEMPTS,
        &ClusterBatch {
            path: g.path.as_deref().unwrap_or(""),
            place: &place,
            version_place,
            clusters: targets,
            requester,
            template: template.as_ref(),
            campaign: None,
        },
    )
    .map_err(|source| Error::ClusterWrite {
        source: Box::new(source),
    })
}
