//! `upkeep upgrade cluster NAME --to V`: upgrade one cluster now, if its owners allow it now.
//!
//! The decision is the rollout core's, made on a one-cluster campaign: the cluster's freeze
//! annotation and the schedule that governs it (its `clusterSelector`) gate the start exactly as
//! they gate a ClusterUpgrade, so a person at a terminal cannot do what the controller would
//! refuse. The shell then acts in one of two ways:
//!
//! - `--via git` (the default with `--repo`): the version scalar of the Cluster manifest is
//!   rewritten byte-exactly ([`upkeep_api::cluster_edit`]) and committed on the checkout;
//!   with `--push` the commit is instead built on `origin`'s branch tip and pushed through the
//!   same write loop as the controller's `trigger: GitOps`
//!   ([`upkeep_git::clusters::write_cluster_versions`]: lease, bounded retries, `UpToDate`
//!   when the remote already has the target), optionally with a pull request. The upgrade is
//!   recorded in the store for `upkeep history --cluster`.
//! - `--via api`: the management cluster's Cluster gets a JSON merge patch carrying the
//!   `resourceVersion` the decision was made on (a concurrent change gives a conflict, not a
//!   lost update); `--dry-run` asks the API server to validate without persisting.
//!
//! `--wait` then observes the result on the management cluster (for `--via git` too: the
//! repository is what Flux applies there). The shell only watches the one Cluster and asks the
//! core, on every change, what a running upgrade triggered at that instant is now
//! ([`crate::management::judge`]: the controller's rule — shows the target and ready with a
//! transition since the trigger; a reported failure; the timeout). The trigger is recorded in
//! the store before waiting and the outcome appended after, so an interrupted wait (Ctrl-C)
//! leaves an honest `Triggered` record.
//!
//! Exit status: 0 done (or already at the target; with `--wait`, Succeeded), 1 refused (not
//! allowed at that time; the reason and the next allowed start are printed), 2 an error (bad
//! input, missing cluster), 3 with `--wait`: Failed (a reported failure or the timeout), 130
//! interrupted while waiting.

use crate::Outcome;
use crate::cluster_upgrade::{
    ApiArgs, DEFAULT_WAIT_TIMEOUT, GitPush, PullRequestTo, Pushed, Waited, commit_file, conclude,
    decide, explain, locate, push_clusters,
};
use crate::fleet::ClusterFleet;
use crate::management::Watch;
use crate::out::Output;
use crate::out::{out, outln};
use crate::render::local;
use crate::repo_clusters::RepoCluster;
use jiff::{SignedDuration, Timestamp};
use miette::{IntoDiagnostic, miette};
use serde::Serialize;
use std::path::{Path, PathBuf};
use upkeep_api::cluster_edit::VersionPlace;
use upkeep_api::cluster_upgrade::governing;
use upkeep_core::version::Version;
use upkeep_git::ProviderKind;
use upkeep_git::clusters::ClusterTarget;
use upkeep_store::{NewClusterUpgrade, UpgradeOutcome};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Upgrade one Cluster API cluster to a release, if its window and freeze allow it.
    Cluster(Args),
}

/// How the change is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Via {
    /// Commit the new version to the cluster's manifest in the GitOps repository.
    Git,
    /// Patch the cluster's version on the management cluster (its App when it is one).
    Api,
}

/// The forge that hosts pull requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PrProvider {
    Github,
    Gitlab,
    Gitea,
}

impl PrProvider {
    fn kind(self) -> ProviderKind {
        match self {
            PrProvider::Github => ProviderKind::Github,
            PrProvider::Gitlab => ProviderKind::Gitlab,
            PrProvider::Gitea => ProviderKind::Gitea,
        }
    }
}

/// Where the version lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Field {
    /// The label `release.giantswarm.io/version`.
    #[default]
    Label,
    /// `spec.topology.version`.
    Topology,
}

impl Field {
    pub(crate) fn place(self) -> VersionPlace {
        match self {
            Field::Label => VersionPlace::default(),
            Field::Topology => VersionPlace::Topology,
        }
    }
}

#[derive(Debug, clap::Args)]
#[allow(clippy::struct_excessive_bools)] // command-line flags
#[command(after_help = "\
The cluster may start when the rollout core says so at the given time: not frozen \
(upkeep.dev/freeze-until) and inside the maintenance window of the schedule whose \
clusterSelector matches it (for this kind of upgrade: patch/minor/major). A cluster without a \
schedule is not gated by windows.\n\n\
--via git (default with --repo): rewrites only the version scalar in the cluster's manifest (in \
Giant Swarm's GitOps layout: where the cluster's version is found, the values' \
global.release.version or the Flux Kustomization's cluster_release; the cluster is found by \
name in any organisation namespace), \
commits it on the checkout's branch, and records the upgrade in the store. With --push the commit \
is built on origin's branch (the checkout is not touched) and pushed to --branch (default: the \
checkout's branch) without forcing; a rejected push is retried on the new tip (--max-attempts); \
--pull-request PROVIDER opens or updates a pull request from --branch (token: UPKEEP_PR_TOKEN, \
or GITHUB_TOKEN/GITLAB_TOKEN/GITEA_TOKEN, or UPKEEP_GIT_PASSWORD). Git credentials as for \
`upkeep apply --push` (UPKEEP_GIT_USERNAME/UPKEEP_GIT_PASSWORD, UPKEEP_GIT_SSH_KEY, ...). \
--via api: patches the Cluster on the management cluster (--kubeconfig or KUBECONFIG) with a \
resourceVersion precondition; a cluster that is an App (Giant Swarm: the App named after the \
cluster in its namespace) has instead its values ConfigMap's global.release.version changed, or \
else the App's spec.version, as kubectl gs does (the Cluster is still what is observed). Without \
--namespace the cluster is looked up by name in every namespace. --dry-run is a server-side dry \
run.\n\n\
--wait: after the change, watches the Cluster on the management cluster (--kubeconfig or \
KUBECONFIG, also with --via git: the cluster Flux applies the repository to) until it shows the \
target and is ready since the trigger (Succeeded), reports a failure, or --timeout passes \
(Failed). Progress goes to stderr, the result to stdout, the outcome to the store (upkeep \
history --cluster NAME). Ctrl-C stops waiting (exit 130); the upgrade stays recorded as \
Triggered.\n\n\
--schedule-annotations: instead of upgrading now, writes the annotations `kubectl gs update \
cluster --scheduled-time` writes (alpha.giantswarm.io/update-schedule-target-release: --to, \
alpha.giantswarm.io/update-schedule-target-time: --at as \"15 Sep 21 08:00 UTC\"): in the \
Cluster's manifest with --repo (committed), or on the Cluster with --kubeconfig. The controller \
upgrades the cluster at that time as a one-cluster ClusterUpgrade (scheduled-NAME; freezes and \
schedules apply) and removes the annotations after success; removing them before cancels it.\n\n\
Exit status: 0 upgraded (or already at the target; with --wait: Succeeded), 1 not allowed at \
that time (the reason and the next allowed start are printed; nothing changed), 2 an error, \
3 with --wait: the upgrade Failed (a failure reported, or the timeout), 130 interrupted while \
waiting.")]
pub(crate) struct Args {
    /// The cluster's metadata.name.
    name: String,
    /// The release to upgrade to.
    #[arg(long, value_name = "VERSION")]
    to: String,
    /// Decide as if it were this time (RFC 3339, or a UTC wall-clock time); default: now. With
    /// --schedule-annotations: when the upgrade starts.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Say when the next allowed start is (from --at); upgrade only if that is now (never waits).
    #[arg(long)]
    next_window: bool,
    /// Print the decision and the diff (or dry-run the patch); change nothing.
    #[arg(long)]
    dry_run: bool,
    /// How to make the change (default: git with --repo, api with --kubeconfig).
    #[arg(long, value_enum)]
    via: Option<Via>,
    /// The GitOps repository holding the cluster's manifest (and its schedules).
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// The cluster's namespace (default: the one cluster of that name in any namespace; needed
    /// when clusters in several namespaces share the name).
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// Where the version lives (in a Cluster manifest; in Giant Swarm's layout it is found).
    #[arg(long, value_enum, default_value_t)]
    field: Field,
    /// Push the commit to `origin` (git).
    #[arg(long)]
    push: bool,
    /// The remote branch to push to (default: the checkout's branch).
    #[arg(long, value_name = "BRANCH", requires = "push")]
    branch: Option<String>,
    /// Open or update a pull request from --branch to the checkout's branch (with --push).
    #[arg(long, value_enum, value_name = "PROVIDER", requires = "push")]
    pull_request: Option<PrProvider>,
    /// The forge's API base (default: derived from origin's URL).
    #[arg(long, value_name = "URL", requires = "pull_request")]
    pr_api_url: Option<String>,
    /// Attempts per push when the remote keeps moving (with --push).
    #[arg(long, default_value_t = 5, value_name = "N")]
    max_attempts: u32,
    /// Allow plain http:// remotes.
    #[arg(long)]
    allow_insecure_http: bool,
    /// A kubeconfig for the management cluster (api).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// The state file (history).
    #[arg(long, env = "UPKEEP_STORE", value_name = "FILE")]
    store: Option<PathBuf>,
    /// After the change, watch the Cluster on the management cluster until it succeeded or
    /// failed (needs --kubeconfig or KUBECONFIG, also with --via git).
    #[arg(long, conflicts_with_all = ["dry_run", "at"])]
    wait: bool,
    /// How long --wait waits for the cluster to be ready, from the trigger (e.g. 30m, 2h).
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_WAIT_TIMEOUT, requires = "wait")]
    timeout: String,
    /// `text` for people, `json` for programs.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
    /// Schedule instead of upgrading now: write kubectl-gs' annotations
    /// alpha.giantswarm.io/update-schedule-target-release (--to) and …-target-time (--at, as
    /// "02 Jan 06 15:04 UTC") on the Cluster; the controller upgrades it at that time.
    #[arg(long, requires = "at", conflicts_with_all = ["wait", "next_window", "branch", "pull_request"])]
    schedule_annotations: bool,
}

/// The decision, as printed in JSON.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    cluster: String,
    namespace: Option<String>,
    from: Option<String>,
    to: String,
    at: Timestamp,
    /// `upgrade`, `refused`, `up-to-date`.
    decision: &'static str,
    reason: Option<String>,
    next_start: Option<Timestamp>,
    schedule: Option<String>,
    dry_run: bool,
    via: &'static str,
    file: Option<String>,
    commit: Option<String>,
    /// `--pull-request`: the pull request's page.
    pull_request: Option<String>,
    diff: Option<String>,
    #[serde(flatten)]
    waited: Waited,
}

pub(crate) fn run(command: &Command) -> miette::Result<Outcome> {
    match command {
        Command::Cluster(a) => cluster(a),
    }
}

fn cluster(args: &Args) -> miette::Result<Outcome> {
    let now = match crate::campaign_view::parse_at(args.at.as_deref()) {
        Ok(t) => t,
        Err(o) => return Ok(o),
    };
    let Some(target) = Version::parse(args.to.trim()) else {
        crate::render::error_with_hint(
            &format!("--to: {:?} is not a version", args.to),
            Some("a SemVer release such as 30.1.0 or v1.31.0".into()),
        );
        return Ok(Outcome::Invalid);
    };
    if args.schedule_annotations {
        let repo = match args.via {
            Some(Via::Api) => None,
            _ => args.repo.as_deref(),
        };
        return crate::schedule_annotations::run(&crate::schedule_annotations::Request {
            name: &args.name,
            namespace: args.namespace.as_deref(),
            to: &args.to,
            at: args.at.as_deref(),
            repo,
            kubeconfig: args.kubeconfig.as_deref(),
            push: args.push,
            dry_run: args.dry_run,
        });
    }
    let wait = if args.wait {
        match upkeep_api::duration::parse_duration(&args.timeout) {
            Ok(d) if d.is_positive() => Some(d),
            Ok(_) => {
                crate::render::error_with_hint(
                    &format!("--timeout: {:?} is not a positive duration", args.timeout),
                    Some("e.g. --timeout 30m".into()),
                );
                return Ok(Outcome::Invalid);
            }
            Err(e) => {
                crate::render::error_with_hint(&format!("--timeout: {e}"), e.hint());
                return Ok(Outcome::Invalid);
            }
        }
    } else {
        None
    };
    if wait.is_some() && args.kubeconfig.is_none() {
        crate::render::error_with_hint(
            "--wait observes the cluster on the management cluster, and no kubeconfig was given",
            Some(
                "pass --kubeconfig FILE or set KUBECONFIG (with --via git: the management \
                 cluster Flux applies the repository to)"
                    .into(),
            ),
        );
        return Ok(Outcome::Invalid);
    }
    let via = match (args.via, &args.repo, &args.kubeconfig) {
        (Some(v), _, _) => v,
        (None, Some(_), _) => Via::Git,
        (None, None, Some(_)) => Via::Api,
        (None, None, None) => {
            crate::render::error_with_hint(
                "upgrade cluster needs a GitOps repository or a management cluster",
                Some(
                    "pass --repo DIR (commit the change) or --kubeconfig FILE (patch the Cluster)"
                        .into(),
                ),
            );
            return Ok(Outcome::Invalid);
        }
    };
    match via {
        Via::Git => via_git(args, &target, now, wait),
        Via::Api => crate::management::upgrade(&args_api(args, wait), &target, now),
    }
}

fn args_api(args: &Args, wait: Option<SignedDuration>) -> ApiArgs<'_> {
    ApiArgs {
        name: &args.name,
        to: args.to.trim(),
        namespace: args.namespace.as_deref(),
        place: args.field.place(),
        dry_run: args.dry_run,
        next_window: args.next_window,
        kubeconfig: args.kubeconfig.as_deref(),
        repo: args.repo.as_deref(),
        store: args.store.as_deref(),
        json: args.output == Output::Json,
        wait,
    }
}

fn via_git(
    args: &Args,
    target: &Version,
    now: Timestamp,
    wait: Option<SignedDuration>,
) -> miette::Result<Outcome> {
    let Some(repo_dir) = args.repo.as_deref() else {
        crate::render::error_with_hint(
            "--via git needs the repository",
            Some("pass --repo DIR".into()),
        );
        return Ok(Outcome::Invalid);
    };
    let place = args.field.place();
    let fleet = match ClusterFleet::load(repo_dir)? {
        Ok(f) => f,
        Err(o) => return Ok(o),
    };
    let Some((found, text)) = locate(
        repo_dir,
        &fleet.clusters,
        &args.name,
        args.namespace.as_deref(),
        RepoCluster::version_file,
    ) else {
        return Ok(Outcome::Invalid);
    };
    let rel = found.version_file().to_owned();
    // A cluster of Giant Swarm's layout is written where the discovery found its version.
    let place = found.version_place(&place);
    let c = &found.object;
    let schedule = governing(&fleet.schedules, c, None);
    let d = decide(c, &place, schedule, target, now)?;
    let mut report = Report {
        cluster: c.name.clone(),
        namespace: Some(found.namespace().to_owned()),
        from: d.current.clone(),
        to: args.to.trim().to_owned(),
        at: now,
        decision: "upgrade",
        reason: d.step.describe_reason(&d.tz),
        next_start: d.next_start,
        schedule: d.schedule.clone(),
        dry_run: args.dry_run,
        via: "git",
        file: Some(rel.clone()),
        commit: None,
        pull_request: None,
        diff: None,
        waited: Waited::default(),
    };
    if d.current.is_none() {
        // No value at the version place: the edit's error names the file, line and fix.
        if let Err(e) = found.set_version(&text, &place, &report.to) {
            crate::render::error_with_hint(&format!("{}: {e}", repo_dir.display()), e.hint());
            return Ok(Outcome::Invalid);
        }
    }
    if let Some(outcome) = explain(&d, &c.name, &report.to, now, args.next_window) {
        report.decision = if outcome == Outcome::Success {
            "up-to-date"
        } else {
            "refused"
        };
        if args.output == Output::Json && outcome != Outcome::Invalid {
            outln!(
                "{}",
                serde_json::to_string_pretty(&report).into_diagnostic()?
            );
        }
        return Ok(outcome);
    }
    let edit = match found.set_version(&text, &place, &report.to) {
        Ok(e) => e,
        Err(e) => {
            crate::render::error_with_hint(&format!("{}: {e}", repo_dir.display()), e.hint());
            return Ok(Outcome::Invalid);
        }
    };
    let diff = crate::app_fields::unified_diff(&rel, &text, &edit.new_text);
    eprintln!(
        "allowed: cluster {} may start upgrading {} → {} at {}{}",
        c.name,
        edit.old,
        report.to,
        local(now, &d.tz),
        d.schedule.as_ref().map_or_else(
            || " (no maintenance schedule applies)".into(),
            |s| format!(" (schedule {s})")
        )
    );
    report.diff = Some(diff.clone());
    if args.dry_run {
        match args.output {
            Output::Json => outln!(
                "{}",
                serde_json::to_string_pretty(&report).into_diagnostic()?
            ),
            Output::Text => out!("{diff}"),
        }
        eprintln!("dry run: nothing written");
        return Ok(Outcome::Success);
    }
    // --wait: the Cluster must be observable before anything is committed.
    let observe_ns = found.namespace().to_owned();
    if wait.is_some()
        && let Some(kubeconfig) = args.kubeconfig.as_deref()
        && let Err(o) = crate::management::check_observable(kubeconfig, &c.name, &observe_ns)?
    {
        return Ok(o);
    }
    let message = format!(
        "Upgrade cluster {} from {} to {}\n\nupkeep upgrade cluster: {} {} → {} ({}).\n",
        c.name,
        edit.old,
        report.to,
        rel,
        place.path(),
        report.to,
        report.schedule.as_ref().map_or_else(
            || "no maintenance schedule applies".to_owned(),
            |s| format!("allowed by schedule {s}")
        ),
    );
    let commit = if args.push {
        let target = found.target(&report.to);
        let requester = format!(
            "upkeep upgrade cluster ({})",
            report.schedule.as_ref().map_or_else(
                || "no maintenance schedule applies".to_owned(),
                |s| format!("allowed by schedule {s}")
            )
        );
        match push_upgrade(repo_dir, args, &place, target, &requester)? {
            Ok((commit, pr)) => {
                report.pull_request = pr;
                commit
            }
            Err(o) => return Ok(o),
        }
    } else {
        match commit_file(repo_dir, &rel, &text, &edit.new_text, &message, None)? {
            Ok(c) => c,
            Err(o) => return Ok(o),
        }
    };
    report.commit.clone_from(&commit);
    let store = match crate::store::open_store(args.store.as_deref()) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let id = store
        .append_cluster_upgrade(&NewClusterUpgrade {
            cluster: c.name.clone(),
            namespace: c.namespace.clone(),
            from: edit.old.clone(),
            to: report.to.clone(),
            at: now,
            via: "git".into(),
            target: repo_dir.display().to_string(),
            file: Some(rel.clone()),
            commit: commit.clone(),
            pull_request: report.pull_request.clone(),
            outcome: UpgradeOutcome::Triggered,
            reason: None,
            finished_at: None,
            follows: None,
        })
        .map_err(|e| miette!("{e}"))?;
    report.waited.outcome = Some(UpgradeOutcome::Triggered.as_str());
    let mut outcome = Outcome::Success;
    if let (Some(timeout), Some(kubeconfig)) = (wait, args.kubeconfig.as_deref()) {
        let watch = Watch {
            name: &c.name,
            namespace: &observe_ns,
            place: &place,
            target,
            triggered_at: now,
            timeout,
        };
        let ending = crate::management::wait_for(kubeconfig, &watch)?;
        (outcome, report.waited) = conclude(&store, id, &c.name, &ending)?;
    }
    match args.output {
        Output::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&report).into_diagnostic()?
        ),
        Output::Text => {
            out!("{diff}");
            match &commit {
                Some(id) if args.push => outln!("pushed {}", &id[..12.min(id.len())]),
                None if args.push => outln!("origin already holds {}: nothing pushed", report.to),
                Some(id) => outln!(
                    "committed {} in {}",
                    &id[..12.min(id.len())],
                    repo_dir.display()
                ),
                None => outln!(
                    "written to {} (not a Git repository: nothing committed)",
                    rel
                ),
            }
            let who = format!("Cluster {observe_ns}/{}", c.name);
            if let Some(line) = report.waited.result_line(&who, &report.to) {
                outln!("{line}");
            }
        }
    }
    Ok(outcome)
}

fn push_upgrade(
    repo_dir: &Path,
    args: &Args,
    place: &VersionPlace,
    target: ClusterTarget,
    requester: &str,
) -> miette::Result<Result<Pushed, Outcome>> {
    let auth = match crate::app_write::git_auth(args.allow_insecure_http) {
        Ok(a) => a,
        Err(m) => {
            crate::render::error_with_hint(&m, None);
            return Ok(Err(Outcome::Invalid));
        }
    };
    let push = GitPush {
        auth,
        branch: args.branch.clone(),
        max_attempts: args.max_attempts,
        author: None,
        path: "",
        template: None,
        campaign: None,
        pull_request: args.pull_request.map(|p| PullRequestTo {
            kind: p.kind(),
            api_url: args.pr_api_url.clone(),
            title: None,
            labels: Vec::new(),
        }),
    };
    push_clusters(repo_dir, &push, place, &[target], requester)
}
