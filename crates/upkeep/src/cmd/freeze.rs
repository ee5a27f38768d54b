//! `upkeep freeze cluster NAME --until T --reason R` and `upkeep unfreeze cluster NAME`.
//!
//! A freeze is two annotations on the cluster (`upkeep.dev/freeze-until`, RFC 3339, and
//! `upkeep.dev/freeze-reason`), read by the rollout core as the `Frozen` gate. In a repository
//! they are edited in the cluster's manifest (only those lines change) and committed; with
//! `--kubeconfig` they are merge-patched onto the Cluster in the management cluster.

use std::path::PathBuf;

use jiff::tz::TimeZone;

use crate::Outcome;
use crate::cluster_upgrade::{PushTo, commit_file, locate};
use crate::fleet::ClusterFleet;
use crate::out::outln;
use crate::repo_clusters::RepoCluster;
use upkeep_api::cluster::{FREEZE_REASON, FREEZE_UNTIL};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum FreezeCommand {
    /// Freeze one cluster: no upgrade starts before the given time.
    Cluster(FreezeArgs),
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum UnfreezeCommand {
    /// Lift a cluster's freeze.
    Cluster(Target),
}

#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    /// The cluster's metadata.name.
    name: String,
    /// The GitOps repository holding the cluster's manifest (default: . without --kubeconfig).
    #[arg(long, value_name = "DIR", conflicts_with = "kubeconfig")]
    repo: Option<PathBuf>,
    /// Patch the Cluster on the management cluster instead.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// The cluster's namespace (default: the one cluster of that name in any namespace; needed
    /// when clusters in several namespaces share the name).
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// Push the commit to `origin`.
    #[arg(long)]
    push: bool,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Sets the annotations upkeep.dev/freeze-until (RFC 3339, UTC) and upkeep.dev/freeze-reason on \
the cluster: in its manifest in the repository (committed; only those lines change; in Giant \
Swarm's GitOps layout, in the values ConfigMap's global.metadata.annotations, which the cluster \
chart copies onto the Cluster) or, with --kubeconfig, on the Cluster in the management cluster \
(also for a cluster that is an App). The cluster is found by name in any namespace (--namespace \
when several share it). No upgrade of that cluster starts before \
the time; a running one is not interrupted.\n\nExit status: 0 done, 2 an error.")]
pub(crate) struct FreezeArgs {
    #[command(flatten)]
    target: Target,
    /// Until when (RFC 3339, or a UTC wall-clock time).
    #[arg(long, value_name = "TIME")]
    until: String,
    /// Why (shown in every refusal).
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
}

pub(crate) fn freeze(command: &FreezeCommand) -> miette::Result<Outcome> {
    let FreezeCommand::Cluster(args) = command;
    let until = match crate::timearg::parse(&args.until, &TimeZone::UTC) {
        Ok(t) => t,
        Err(e) => {
            crate::render::error_with_hint(&format!("--until: {e}"), None);
            return Ok(Outcome::Invalid);
        }
    };
    let until_s = until.to_string();
    let reason = args.reason.as_deref();
    let message = format!(
        "Freeze cluster {} until {until_s}\n\n{}\n",
        args.target.name,
        reason.unwrap_or("upkeep freeze cluster")
    );
    let mut changes = vec![(FREEZE_UNTIL, Some(until_s.as_str()))];
    changes.push((FREEZE_REASON, reason));
    let done = apply(&args.target, &changes, &message, Some((&until_s, reason)))?;
    if done == Outcome::Success {
        outln!("cluster {} frozen until {until_s}", args.target.name);
    }
    Ok(done)
}

pub(crate) fn unfreeze(command: &UnfreezeCommand) -> miette::Result<Outcome> {
    let UnfreezeCommand::Cluster(target) = command;
    let message = format!("Unfreeze cluster {}\n", target.name);
    let changes = [(FREEZE_UNTIL, None), (FREEZE_REASON, None)];
    let done = apply(target, &changes, &message, None)?;
    if done == Outcome::Success {
        outln!("cluster {} unfrozen", target.name);
    }
    Ok(done)
}

fn apply(
    target: &Target,
    changes: &[(&str, Option<&str>)],
    message: &str,
    api_freeze: Option<(&str, Option<&str>)>,
) -> miette::Result<Outcome> {
    if let Some(kubeconfig) = &target.kubeconfig {
        return crate::management::freeze(
            kubeconfig,
            &target.name,
            target.namespace.as_deref(),
            api_freeze,
        );
    }
    let repo = target.repo.clone().unwrap_or_else(|| PathBuf::from("."));
    let clusters = match ClusterFleet::load_clusters(&repo)? {
        Ok(c) => c,
        Err(o) => return Ok(o),
    };
    let Some((c, text)) = locate(
        &repo,
        &clusters,
        &target.name,
        target.namespace.as_deref(),
        RepoCluster::annotations_file,
    ) else {
        return Ok(Outcome::Invalid);
    };
    let rel = c.annotations_file().to_owned();
    let new = match c.set_annotations(&text, changes) {
        Ok(n) => n,
        Err(e) => {
            crate::render::error_with_hint(&format!("{}: {e}", repo.display()), e.hint());
            return Ok(Outcome::Invalid);
        }
    };
    if new == text {
        eprintln!(
            "{rel}: cluster {} already as asked; nothing to commit",
            c.display()
        );
        return Ok(Outcome::Success);
    }
    let push = target.push.then_some(PushTo {
        branch: None,
        allow_insecure_http: false,
    });
    match commit_file(&repo, &rel, &text, &new, message, push)? {
        Ok(Some(commit)) => eprintln!("committed {} ({rel})", &commit[..12.min(commit.len())]),
        Ok(None) => eprintln!("written {rel}"),
        Err(o) => return Ok(o),
    }
    Ok(Outcome::Success)
}
