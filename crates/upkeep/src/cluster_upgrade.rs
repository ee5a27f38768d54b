//! One cluster's upgrade, shared by `upkeep upgrade cluster`, `upkeep freeze` and the
//! management-cluster path: the one-cluster campaign and its decision (the rollout core's, so a
//! person at a terminal cannot do what the controller would refuse), the explanation of a
//! refusal, locating and rewriting the version in the repository, and concluding a watched
//! upgrade in the store.
use std::path::Path;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use miette::{IntoDiagnostic, miette};
use serde::Serialize;
use upkeep_api::ClusterObject;
use upkeep_api::cluster_edit::{self, VersionPlace};
use upkeep_api::cluster_upgrade::{DEFAULT_TIMEOUT, NamedSchedule, cluster_input, one_cluster};
use upkeep_core::rollout::{FailReason, SkipReason, Step, plan};
use upkeep_core::version::Version;
use upkeep_git::clusters::{ClusterBatch, ClusterTarget, write_cluster_versions};
use upkeep_git::{
    Author, Branches, PrRequest, PrTarget, ProviderKind, PushOutcome, Repo, Token, Written,
    api_base_for, ensure_pull_request, pull_request_body,
};
use upkeep_store::{Store, UpgradeOutcome};

use crate::Outcome;
use crate::render::{local, relative};

/// Where a made upgrade stands when the command ends, as printed in JSON.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Waited {
    /// `Triggered` (changed, not observed: no `--wait`, or interrupted), `Succeeded`,
    /// `Failed`; null when nothing was changed.
    pub(crate) outcome: Option<&'static str>,
    pub(crate) finished_at: Option<Timestamp>,
    /// Why it failed.
    pub(crate) failure: Option<String>,
    /// It failed because the timeout passed.
    pub(crate) timed_out: bool,
}

impl Waited {
    /// The result line for stdout (text), when the upgrade was observed to its end.
    pub(crate) fn result_line(&self, who: &str, to: &str) -> Option<String> {
        match self.outcome? {
            "Succeeded" => Some(format!("succeeded: {who} is at {to} and ready")),
            "Failed" => Some(format!(
                "failed: {who}: {}",
                self.failure.as_deref().unwrap_or("failed")
            )),
            _ => None,
        }
    }
}

/// Records how waiting on the upgrade recorded as `id` ended and gives the exit outcome:
/// Succeeded (0) and Failed (3) are appended to the store; an interrupted wait records nothing,
/// so the upgrade stays `Triggered` (130).
pub(crate) fn conclude(
    store: &Store,
    id: u64,
    cluster: &str,
    ending: &Ending,
) -> miette::Result<(Outcome, Waited)> {
    let (outcome, at, reason, timed_out) = match ending {
        Ending::Succeeded { at } => (UpgradeOutcome::Succeeded, *at, None, false),
        Ending::Failed { reason, at } => (
            UpgradeOutcome::Failed,
            *at,
            Some(fail_text(reason)),
            matches!(reason, FailReason::Timeout { .. }),
        ),
        Ending::Interrupted => {
            eprintln!(
                "interrupted: stopped waiting; the upgrade goes on and stays recorded as \
                 Triggered (`upkeep history --cluster {cluster}`)"
            );
            let waited = Waited {
                outcome: Some(UpgradeOutcome::Triggered.as_str()),
                ..Waited::default()
            };
            return Ok((Outcome::Interrupted, waited));
        }
    };
    store
        .conclude_cluster_upgrade(id, outcome, at, reason.clone())
        .map_err(|e| miette!("{e}"))?;
    let waited = Waited {
        outcome: Some(outcome.as_str()),
        finished_at: Some(at),
        failure: reason,
        timed_out,
    };
    Ok((
        if outcome == UpgradeOutcome::Succeeded {
            Outcome::Success
        } else {
            Outcome::Failed
        },
        waited,
    ))
}

/// What the API path needs from the arguments.
pub(crate) struct ApiArgs<'a> {
    pub(crate) name: &'a str,
    pub(crate) to: &'a str,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) place: VersionPlace,
    pub(crate) dry_run: bool,
    pub(crate) next_window: bool,
    pub(crate) kubeconfig: Option<&'a Path>,
    pub(crate) repo: Option<&'a Path>,
    pub(crate) store: Option<&'a Path>,
    pub(crate) json: bool,
    /// `--wait`: the timeout.
    pub(crate) wait: Option<SignedDuration>,
}

/// The core's decision for one cluster moving to `target` at `now`.
pub(crate) struct Decision {
    pub(crate) step: Step,
    pub(crate) current: Option<String>,
    pub(crate) next_start: Option<Timestamp>,
    pub(crate) schedule: Option<String>,
    pub(crate) tz: TimeZone,
}

/// Asks the rollout core whether `c` may start moving to `target` at `now`.
pub(crate) fn decide(
    c: &ClusterObject,
    place: &VersionPlace,
    schedule: Option<&NamedSchedule>,
    target: &Version,
    now: Timestamp,
) -> miette::Result<Decision> {
    let campaign = one_cluster(&c.name, target.clone(), DEFAULT_TIMEOUT);
    let input = cluster_input(c, place, schedule, None);
    let current = input.current.clone();
    let planned = plan(&campaign, &[input], now);
    let one = planned
        .clusters
        .into_iter()
        .find(|p| p.name == c.name)
        .ok_or_else(|| miette!("the rollout core did not plan cluster {}", c.name))?;
    let next_start = match &one.step {
        Step::Trigger => Some(now),
        _ => one.expected_start,
    };
    Ok(Decision {
        step: one.step,
        current,
        next_start,
        schedule: schedule.map(|s| s.name.clone()),
        tz: schedule.map_or(TimeZone::UTC, |s| s.schedule.time_zone().clone()),
    })
}

/// Prints a decision that is not "go" (stderr for messages) and gives the exit outcome;
/// `None` when the upgrade may go ahead.
pub(crate) fn explain(
    d: &Decision,
    name: &str,
    to: &str,
    now: Timestamp,
    next_window: bool,
) -> Option<Outcome> {
    match &d.step {
        Step::Trigger => None,
        Step::Skipped {
            reason: SkipReason::AlreadyAtTarget { current },
        } => {
            eprintln!("cluster {name} is already at {current} (target {to}): nothing to do");
            Some(Outcome::Success)
        }
        Step::Skipped { reason } => {
            crate::render::error_with_hint(
                &format!("cluster {name}: {reason}"),
                Some("the version place must hold a SemVer release (see --field)".into()),
            );
            Some(Outcome::Invalid)
        }
        Step::Waiting { reason, .. } => {
            eprintln!(
                "refused: cluster {name} may not start upgrading to {to} at {}: {}",
                local(now, &d.tz),
                reason.describe(&d.tz)
            );
            match d.next_start {
                Some(t) => eprintln!(
                    "next allowed start: {} ({}, {}){}",
                    local(t, &d.tz),
                    crate::render::utc(t),
                    relative(t, now),
                    if next_window {
                        "; run again then, or pass --at to see that decision"
                    } else {
                        ""
                    }
                ),
                None => eprintln!("next allowed start: unknown (no allowed time ahead)"),
            }
            Some(Outcome::No)
        }
        other => {
            eprintln!("cluster {name}: {:?}", other.phase());
            Some(Outcome::No)
        }
    }
}

/// Finds the cluster's manifest in the repository: the object, its file (from the root) and
/// the file's text. Errors are printed (`None`).
pub(crate) fn locate(
    repo_dir: &Path,
    name: &str,
    namespace: Option<&str>,
) -> miette::Result<Option<(ClusterObject, String, String)>> {
    if !repo_dir.is_dir() {
        crate::render::error_with_hint(
            &format!("{}: no such directory", repo_dir.display()),
            Some("pass the GitOps repository with --repo DIR".into()),
        );
        return Ok(None);
    }
    let mut files = Vec::new();
    for f in crate::fleet::yaml_files(repo_dir)? {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let rel = f
            .strip_prefix(repo_dir)
            .unwrap_or(&f)
            .to_string_lossy()
            .replace('\\', "/");
        files.push((rel, text));
    }
    let where_ = format!("the repository {}", repo_dir.display());
    let i = match cluster_edit::find_cluster(&files, name, namespace, &where_) {
        Ok(i) => i,
        Err(e) => {
            crate::render::error_with_hint(&e.to_string(), e.hint());
            return Ok(None);
        }
    };
    let (rel, text) = files.swap_remove(i);
    let loaded = upkeep_api::load_str(Path::new(&rel), &text);
    let object = loaded.documents.into_iter().find_map(|d| match d.resource {
        upkeep_api::Resource::Cluster(c)
            if c.name == name
                && namespace.is_none_or(|ns| c.namespace.as_deref().unwrap_or("default") == ns) =>
        {
            Some(c)
        }
        _ => None,
    });
    let Some(object) = object else {
        crate::render::error_with_hint(
            &format!("{rel}: Cluster {name} could not be read"),
            Some(format!(
                "run `upkeep validate {}`",
                repo_dir.join(&rel).display()
            )),
        );
        return Ok(None);
    };
    Ok(Some((object, rel, text)))
}

/// Where to push a commit.
pub(crate) struct PushTo {
    pub(crate) branch: Option<String>,
    pub(crate) allow_insecure_http: bool,
}

/// Commits one file's new text on the checkout's branch (refusing uncommitted changes in it),
/// and pushes when asked. `Ok(None)`: not a Git repository, the file was just written.
pub(crate) fn commit_file(
    repo_dir: &Path,
    rel: &str,
    old: &str,
    new: &str,
    message: &str,
    push: Option<PushTo>,
) -> miette::Result<Result<Option<String>, Outcome>> {
    let Ok(repo) = Repo::open(repo_dir) else {
        if push.is_some() {
            crate::render::error_with_hint(
                &format!("{}: not a Git repository; cannot push", repo_dir.display()),
                None,
            );
            return Ok(Err(Outcome::Invalid));
        }
        upkeep_git::replace_file_in(repo_dir, rel, new.as_bytes())
            .map_err(|e| miette!("writing {rel}: {e}"))?;
        return Ok(Ok(None));
    };
    let _lock = match repo.lock_work_tree(std::time::Duration::from_secs(120), &mut |holder| {
        eprintln!("waiting for the checkout's lock ({holder})");
    }) {
        Ok(l) => l,
        Err(e) => {
            crate::render::error_with_hint(&e.to_string(), e.hint());
            return Ok(Err(Outcome::No));
        }
    };
    if let Err(e) = repo.recover() {
        crate::render::error_with_hint(
            &format!(
                "{}: finishing an interrupted commit: {e}",
                repo_dir.display()
            ),
            e.hint(),
        );
        return Ok(Err(Outcome::No));
    }
    let dirty = repo
        .uncommitted(&[(rel.to_owned(), old.as_bytes())])
        .into_diagnostic()?;
    if !dirty.is_empty() {
        crate::render::error_with_hint(
            &format!(
                "{}: uncommitted changes in {rel}; nothing was written",
                repo_dir.display()
            ),
            Some("commit or stash them, then run again".into()),
        );
        return Ok(Err(Outcome::Invalid));
    }
    let Some(head) = repo.head_commit() else {
        crate::render::error_with_hint(
            &format!("{}: the repository has no commit yet", repo_dir.display()),
            None,
        );
        return Ok(Err(Outcome::Invalid));
    };
    let author = repo.configured_author().unwrap_or_else(|| Author {
        name: "upkeep".to_owned(),
        email: "upkeep@localhost".to_owned(),
    });
    let files = vec![(rel.to_owned(), new.as_bytes().to_vec())];
    let commit = repo
        .commit_in_work_tree(head, &files, &author, message)
        .map_err(|e| miette!("{e}"))?;
    let Some(commit) = commit else {
        return Ok(Ok(None));
    };
    if let Some(p) = push {
        let auth = match crate::app_write::git_auth(p.allow_insecure_http) {
            Ok(a) => a,
            Err(m) => {
                crate::render::error_with_hint(&m, None);
                return Ok(Err(Outcome::Invalid));
            }
        };
        let local_branch = repo.head_branch().unwrap_or_else(|| "main".into());
        let remote = p.branch.unwrap_or_else(|| local_branch.clone());
        match repo.push(&local_branch, &remote, &auth) {
            Ok(PushOutcome::Pushed) => {}
            Ok(PushOutcome::Rejected { reason }) => {
                crate::render::error_with_hint(
                    &format!(
                        "committed {commit} but origin refused the push to {remote}: {reason}"
                    ),
                    Some("pull (rebase) and push the commit yourself; upkeep never forces".into()),
                );
                return Ok(Err(Outcome::No));
            }
            Err(e) => {
                crate::render::error_with_hint(
                    &format!("committed {commit} but pushing to {remote} failed: {e}"),
                    e.hint(),
                );
                return Ok(Err(Outcome::No));
            }
        }
        eprintln!("pushed {local_branch} to origin/{remote}");
    }
    Ok(Ok(Some(commit.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_timeout_default_is_the_cluster_upgrade_default() {
        assert_eq!(
            upkeep_api::duration::parse_duration(DEFAULT_WAIT_TIMEOUT),
            Ok(upkeep_api::cluster_upgrade::DEFAULT_TIMEOUT),
            "--timeout defaults to what a ClusterUpgrade waits per cluster"
        );
    }

    #[test]
    fn result_lines() {
        let cases = [
            (Waited::default(), None, "nothing changed: no result line"),
            (
                Waited {
                    outcome: Some("Triggered"),
                    ..Waited::default()
                },
                None,
                "not observed to the end: no result claimed",
            ),
            (
                Waited {
                    outcome: Some("Succeeded"),
                    ..Waited::default()
                },
                Some("succeeded: Cluster d/a is at 2.0.0 and ready"),
                "success names the target",
            ),
            (
                Waited {
                    outcome: Some("Failed"),
                    failure: Some("boom".into()),
                    ..Waited::default()
                },
                Some("failed: Cluster d/a: boom"),
                "failure carries the reason",
            ),
        ];
        for (waited, want, reason) in cases {
            assert_eq!(
                waited.result_line("Cluster d/a", "2.0.0").as_deref(),
                want,
                "{reason}"
            );
        }
    }
}

/// `--timeout`'s default: a ClusterUpgrade's default timeout
/// (`upkeep_api::cluster_upgrade::DEFAULT_TIMEOUT`).
pub(crate) const DEFAULT_WAIT_TIMEOUT: &str = "2h";

/// How waiting ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The cluster shows the target and is ready since the trigger.
    Succeeded { at: Timestamp },
    /// The cluster reported a failure, was deleted, or the timeout passed.
    Failed { reason: FailReason, at: Timestamp },
    /// Ctrl-C: waiting stopped; the upgrade itself goes on.
    Interrupted,
}

/// A failure reason for people: the core's wording, marked as a timeout when it was one.
pub(crate) fn fail_text(reason: &FailReason) -> String {
    match reason {
        FailReason::Timeout { .. } => format!("{reason} (timeout)"),
        other => other.to_string(),
    }
}

/// What a GitOps cluster write did: `(commit pushed now, PR page)`.
pub(crate) type Pushed = (Option<String>, Option<String>);

/// How a GitOps cluster write pushes: `upkeep upgrade cluster --push` and the ClusterUpgrade
/// campaigns `upkeep run` carries out share it (and, through
/// [`write_cluster_versions`], the controller's write loop).
pub(crate) struct GitPush<'a> {
    pub(crate) auth: upkeep_git::Auth,
    /// The remote branch to push to (default: the checkout's branch).
    pub(crate) branch: Option<String>,
    pub(crate) max_attempts: u32,
    /// Default: the checkout's configured author, else `upkeep <upkeep@localhost>`.
    pub(crate) author: Option<Author>,
    /// Where the Cluster manifests are, from the repository root (`""`: everywhere).
    pub(crate) path: &'a str,
    pub(crate) template: Option<&'a upkeep_git::MessageTemplate>,
    /// The ClusterUpgrade (`namespace/name`) a campaign's commit is for: its trailers.
    pub(crate) campaign: Option<&'a str>,
    pub(crate) pull_request: Option<PullRequestTo>,
}

/// The pull request to open or update from the push branch.
pub(crate) struct PullRequestTo {
    pub(crate) kind: ProviderKind,
    /// The forge's API base (default: derived from origin's URL).
    pub(crate) api_url: Option<String>,
    /// Default: `Upgrade <first cluster> to <version>`.
    pub(crate) title: Option<String>,
    pub(crate) labels: Vec<String>,
}

/// Writes `targets` on `origin`'s branch in one commit through the shared write loop and,
/// with a pull request, opens or updates it. `(commit pushed now, PR page)`; errors are
/// printed (`Err(outcome)`).
pub(crate) fn push_clusters(
    repo_dir: &Path,
    settings: &GitPush<'_>,
    place: &VersionPlace,
    targets: &[ClusterTarget],
    requester: &str,
) -> miette::Result<Result<Pushed, Outcome>> {
    let repo = match Repo::open(repo_dir) {
        Ok(r) if r.origin_url().is_some() => r,
        _ => {
            crate::render::error_with_hint(
                &format!(
                    "--push: {}: no Git checkout with an `origin` remote",
                    repo_dir.display()
                ),
                Some("add one with `git remote add origin URL`, or run without --push".into()),
            );
            return Ok(Err(Outcome::Invalid));
        }
    };
    let auth = &settings.auth;
    let Some(checkout) = repo.head_branch() else {
        crate::render::error_with_hint(
            &format!("{}: no branch checked out", repo_dir.display()),
            Some("check out the branch the manifests are on".into()),
        );
        return Ok(Err(Outcome::Invalid));
    };
    let push = settings.branch.clone().unwrap_or_else(|| checkout.clone());
    let author = settings.author.clone().unwrap_or_else(|| {
        repo.configured_author().unwrap_or_else(|| Author {
            name: "upkeep".to_owned(),
            email: "upkeep@localhost".to_owned(),
        })
    });
    let written = write_cluster_versions(
        &repo,
        auth,
        Branches {
            checkout: &checkout,
            push: &push,
        },
        &author,
        settings.max_attempts,
        &ClusterBatch {
            path: settings.path,
            place,
            version_place: None,
            clusters: targets,
            requester,
            template: settings.template,
            campaign: settings.campaign,
        },
    );
    let written = match written {
        Ok(w) => w,
        Err(e) => {
            crate::render::error_with_hint(&format!("--push to origin {push}: {e}"), e.hint());
            return Ok(Err(Outcome::No));
        }
    };
    let (commit, base, tip) = match written.written {
        Written::Pushed {
            commit,
            base,
            attempts,
            ..
        } => {
            eprintln!(
                "pushed {} to origin/{push}{}",
                &commit.to_string()[..12],
                if attempts > 1 {
                    format!(" after {attempts} attempts")
                } else {
                    String::new()
                }
            );
            (Some(commit.to_string()), base, commit)
        }
        Written::UpToDate { base, tip } => {
            eprintln!("origin/{push} already holds the target: nothing pushed");
            (None, base, tip)
        }
    };
    let Some(pr) = &settings.pull_request else {
        return Ok(Ok((commit, None)));
    };
    if push == checkout || base == tip || written.changes.is_empty() {
        eprintln!("no pull request: origin/{push} carries no change over {checkout}");
        return Ok(Ok((commit, None)));
    }
    let kind = pr.kind;
    let url = repo.origin_url().unwrap_or_default();
    let fail = |m: String| {
        crate::render::error_with_hint(&format!("pushed, but the pull request failed: {m}"), None);
        Ok(Err(Outcome::No))
    };
    let api_base = match (&pr.api_url, api_base_for(kind, url)) {
        (Some(u), Ok((_, repository))) => match url::Url::parse(u) {
            Ok(base) => (base, repository),
            Err(e) => return fail(format!("--pr-api-url {u:?}: {e}")),
        },
        (None, Ok(pair)) => pair,
        (_, Err(e)) => return fail(crate::app_write::pr_error(&e)),
    };
    let Some(token) = crate::app_write::pr_token(kind) else {
        return fail(format!(
            "no token for the {kind} API: set UPKEEP_PR_TOKEN (or {}_TOKEN)",
            kind.as_str().to_uppercase()
        ));
    };
    let ca_pem = match std::env::var_os("UPKEEP_GIT_CA_FILE") {
        Some(f) => match std::fs::read(&f) {
            Ok(pem) => Some(pem),
            Err(e) => return fail(format!("UPKEEP_GIT_CA_FILE: {e}")),
        },
        None => None,
    };
    let target = PrTarget {
        kind,
        api_base: api_base.0,
        repository: api_base.1,
        token: Token::new(token),
        ca_pem,
    };
    let first = &written.changes[0];
    let request = PrRequest {
        base: checkout,
        head: push,
        title: pr
            .title
            .clone()
            .unwrap_or_else(|| format!("Upgrade {} to {}", first.object, first.new)),
        body: pull_request_body(requester, &written.changes),
        labels: pr.labels.clone(),
    };
    match ensure_pull_request(&target, &request) {
        Ok(pr) => {
            eprintln!(
                "pull request #{} {} ({})",
                pr.number,
                pr.url,
                if pr.created { "opened" } else { "updated" }
            );
            Ok(Ok((commit, Some(pr.url))))
        }
        Err(e) => fail(crate::app_write::pr_error(&e)),
    }
}
