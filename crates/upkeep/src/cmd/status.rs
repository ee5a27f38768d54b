//! `upkeep status [UPGRADE]`: where each ClusterUpgrade stands, cluster by cluster.
//!
//! From a repository the answer is computed: the controller's decision over the clusters,
//! schedules and freezes in the manifests at `--at`, with what `upkeep run` recorded in the
//! store as each campaign's status (without a store nothing counts as started). With `--kubeconfig` the answer is read: the status
//! the controller recorded on each ClusterUpgrade. The same table prints both; `plan` and
//! `quickstart` reuse [`cluster_rows`] for their cluster sections.

use std::path::PathBuf;

use miette::IntoDiagnostic;

use crate::Outcome;
use crate::campaign_view::{CampaignRow, parse_at, print_campaigns};
use crate::fleet::ClusterFleet;
use crate::out::Output;
use crate::out::outln;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
From --repo (default .): every ClusterUpgrade in the manifests is planned by the rollout core at \
--at over the repository's clusters, schedules and freeze annotations, with what `upkeep run` \
recorded in the store (--store) as the campaign's status: clusters it started, their outcomes, \
the release a releaseRef resolved to. Without a store nothing counts as started. A releaseRef \
naming a Giant Swarm Release (kind: Release) resolves to the Release manifest in the repository. With \
--kubeconfig: the status the controller recorded — each cluster's stage, state and reason, a \
stalled campaign's reason and message (an invalid spec names the field), and as NEXT only what \
comes next (a running cluster's timeout, a start time ahead), never a time that has passed. \
Instants under an hour away are shown to the second.\n\n\
Exit status: 0 listed, 1 no such ClusterUpgrade, 2 invalid input.")]
pub(crate) struct Args {
    /// Only this ClusterUpgrade (metadata.name).
    upgrade: Option<String>,
    /// The GitOps repository.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// Decide as if it were this time (RFC 3339, or a UTC wall-clock time); default: now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Read the recorded status from the management cluster instead.
    #[arg(long, value_name = "FILE", conflicts_with = "repo")]
    kubeconfig: Option<PathBuf>,
    /// The namespace (with --kubeconfig; default: all).
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// The state file `upkeep run` records campaigns in (without --kubeconfig; a missing file
    /// means nothing was recorded).
    #[arg(
        long,
        env = "UPKEEP_STORE",
        value_name = "FILE",
        conflicts_with = "kubeconfig"
    )]
    store: Option<PathBuf>,
    /// `text` for people, `json` for programs.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

pub(crate) fn run(args: &Args) -> miette::Result<Outcome> {
    let now = match parse_at(args.at.as_deref()) {
        Ok(t) => t,
        Err(o) => return Ok(o),
    };
    let list = if let Some(kubeconfig) = &args.kubeconfig {
        match crate::management::recorded_status(
            kubeconfig,
            args.namespace.as_deref(),
            args.upgrade.as_deref(),
            now,
        )? {
            Ok(l) => l,
            Err(o) => return Ok(o),
        }
    } else {
        let repo = args.repo.clone().unwrap_or_else(|| PathBuf::from("."));
        let fleet = match ClusterFleet::load(&repo)? {
            Ok(f) => crate::schedule_annotations::with_scheduled(f),
            Err(o) => return Ok(o),
        };
        let store = match crate::store::open_existing_store(args.store.as_deref()) {
            Ok(s) => s,
            Err(o) => return Ok(o),
        };
        crate::campaigns::repo_status(&fleet, &repo, store.as_ref(), args.upgrade.as_deref(), now)?
    };
    if list.is_empty() {
        if let Some(u) = &args.upgrade {
            crate::render::error_with_hint(
                &format!("no ClusterUpgrade {u}"),
                Some("`upkeep status` without a name lists every ClusterUpgrade".into()),
            );
        } else {
            let place = if args.kubeconfig.is_some() {
                "the management cluster".to_owned()
            } else {
                args.repo
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("."))
                    .display()
                    .to_string()
            };
            eprintln!("no ClusterUpgrade in {place}");
            eprintln!(
                "  hint: ClusterUpgradePolicies are planned by `upkeep plan` (the controller turns them into ClusterUpgrades)"
            );
        }
        return Ok(if args.upgrade.is_some() {
            Outcome::No
        } else {
            Outcome::Success
        });
    }
    match args.output {
        Output::Json => {
            let rows: Vec<&CampaignRow> = list.iter().map(|(c, _)| c).collect();
            outln!("{}", serde_json::to_string_pretty(&rows).into_diagnostic()?);
        }
        Output::Text => print_campaigns(&list, now),
    }
    Ok(Outcome::Success)
}
