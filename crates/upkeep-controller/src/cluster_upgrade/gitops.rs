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

use std::path::Path;

use kube::ResourceExt;
use upkeep_api::ClusterUpgrade;
use upkeep_api::app_upgrade_automation::{Provider, PullRequestStatus};
use upkeep_api::cluster_edit::VersionPlace;
use upkeep_api::cluster_upgrade::VersionSource;
use upkeep_git::clusters::{ClusterBatch, ClusterTarget, ClusterWrite, write_cluster_versions};
use upkeep_git::{
    Auth, Author, Branches, MessageTemplate, PrRequest, PrTarget, ProviderKind, Repo, Token,
    Written, api_base_for, ensure_pull_request, pull_request_body,
};

use crate::automation::{MAX_ATTEMPTS, auth_from, secret_data};
use crate::cluster_upgrade::{Error, Upgrades};

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

fn secret_error(e: &crate::automation::Error) -> Error {
    Error::GitOps {
        reason: "SecretUnavailable",
        message: e.to_string(),
    }
}

/// Writes `targets` into the upgrade's repository and opens or updates its pull request.
pub(crate) async fn write(
    u: &Upgrades,
    object: &ClusterUpgrade,
    targets: Vec<ClusterTarget>,
    source: VersionSource,
) -> Result<GitOpsRun, Error> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let Some(g) = object.spec.git_ops.clone() else {
        return Err(Error::GitOps {
            reason: "InvalidSpec",
            message: "trigger GitOps without spec.gitOps".to_owned(),
        });
    };
    let client = u.ctx.client.clone();
    let keys = u.workdir.join(".keys").join(&namespace).join(&name);
    let git_secret = match &g.git.secret_ref {
        None => None,
        Some(r) => Some((
            r.name.clone(),
            secret_data(&client, &namespace, &r.name)
                .await
                .map_err(|e| secret_error(&e))?,
        )),
    };
    let auth = match &git_secret {
        None => Auth::none(),
        Some((secret, data)) => auth_from(data, secret, &keys).map_err(|e| secret_error(&e))?,
    };
    let auth = if g.git.url.starts_with("http://") {
        auth.allow_insecure_http()
    } else {
        auth
    };
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
    let dir = u.workdir.join(&namespace).join(&name);
    let requester = format!("ClusterUpgrade {namespace}/{name}");
    let written = {
        let (g, checkout, push, requester) =
            (g.clone(), checkout.clone(), push.clone(), requester.clone());
        tokio::task::spawn_blocking(move || {
            git_blocking(
                &g, &dir, &auth, &checkout, &push, &requester, &targets, source,
            )
        })
        .await
        .map_err(|e| Error::GitOps {
            reason: "GitError",
            message: format!("the Git work ended unexpectedly: {e}"),
        })?
        .map_err(|f| Error::GitOps {
            reason: f.reason,
            message: f.message,
        })?
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
        let token_ref = spec
            .secret_ref
            .as_ref()
            .map(|r| (r.name.clone(), "token"))
            .or_else(|| g.git.secret_ref.as_ref().map(|r| (r.name.clone(), "password")))
            .ok_or_else(|| Error::GitOps {
                reason: "PullRequestError",
                message: "no token: set spec.gitOps.push.pullRequest.secretRef (key `token`) or spec.gitOps.git.secretRef (key `password`)".to_owned(),
            })?;
        let data = secret_data(&client, &namespace, &token_ref.0)
            .await
            .map_err(|e| secret_error(&e))?;
        let token = data
            .get(token_ref.1)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .ok_or_else(|| Error::GitOps {
                reason: "SecretUnavailable",
                message: format!("Secret {}: has no key {:?}", token_ref.0, token_ref.1),
            })?;
        let kind = match spec.provider {
            Provider::Github => ProviderKind::Github,
            Provider::Gitlab => ProviderKind::Gitlab,
            Provider::Gitea => ProviderKind::Gitea,
        };
        let pr_failed = |message: String| Error::GitOps {
            reason: "PullRequestError",
            message: format!("pull request: {message}"),
        };
        let (api_base, repository) =
            api_base_for(kind, &g.git.url).map_err(|e| pr_failed(e.to_string()))?;
        let api_base = match &spec.api_url {
            Some(url) => url::Url::parse(url).map_err(|e| {
                pr_failed(format!("spec.gitOps.push.pullRequest.apiUrl {url:?}: {e}"))
            })?,
            None => api_base,
        };
        let targets: Vec<&str> = {
            let mut t: Vec<&str> = written.changes.iter().map(|c| c.new.as_str()).collect();
            t.dedup();
            t
        };
        let target = PrTarget {
            kind,
            api_base,
            repository,
            token: Token::new(token),
            ca_pem: git_secret.and_then(|(_, d)| d.get("ca.crt").cloned()),
        };
        let request = PrRequest {
            base: checkout,
            head: push,
            title: spec.title.clone().unwrap_or_else(|| {
                format!(
                    "Upgrade clusters to {} ({namespace}/{name})",
                    targets.join(", ")
                )
            }),
            body: pull_request_body(&requester, &written.changes),
            labels: spec.labels.clone(),
        };
        // A plain thread, not spawn_blocking: the forge client drives its own small runtime.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = tx.send(ensure_pull_request(&target, &request));
        });
        let pr = rx
            .await
            .map_err(|e| pr_failed(e.to_string()))?
            .map_err(|e| pr_failed(e.to_string()))?;
        run.pull_request = Some(PullRequestStatus {
            url: pr.url.clone(),
            number: pr.number,
        });
    }
    Ok(run)
}

/// A failure of the blocking part (kept small: it crosses the thread boundary).
struct Failed {
    reason: &'static str,
    message: String,
}

#[allow(clippy::too_many_arguments)] // one blocking call's inputs, moved onto its thread
fn git_blocking(
    g: &upkeep_api::cluster_upgrade::ClusterGitOps,
    dir: &Path,
    auth: &Auth,
    checkout: &str,
    push: &str,
    requester: &str,
    targets: &[ClusterTarget],
    source: VersionSource,
) -> Result<ClusterWrite, Failed> {
    let failed = |reason: &'static str, message: String, hint: Option<String>| Failed {
        reason,
        message: match hint {
            Some(h) => format!("{message} (hint: {h})"),
            None => message,
        },
    };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            failed(
                "GitError",
                format!("creating {}: {e}", parent.display()),
                None,
            )
        })?;
    }
    let repo = Repo::clone_or_open(&g.git.url, dir, checkout, auth)
        .map_err(|e| failed("GitError", e.to_string(), e.hint()))?;
    let template = match &g.commit.message_template {
        Some(t) => Some(
            MessageTemplate::new(t)
                .map_err(|e| failed("TemplateError", e.to_string(), Some(e.hint().to_owned())))?,
        ),
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
            clusters: targets,
            requester,
            template: template.as_ref(),
            campaign: None,
        },
    )
    .map_err(|e| failed(e.kind(), e.to_string(), e.hint()))
}
