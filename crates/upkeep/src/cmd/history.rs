//! `upkeep history`: what upkeep changed, when, and by which commit and pull request, newest
//! first, from the standalone store — or, with `--kubeconfig`, a cluster's
//! ClusterUpgradeRecords as the controller wrote them in the management cluster.

use std::path::PathBuf;

use jiff::tz::TimeZone;
use miette::IntoDiagnostic;

use crate::Outcome;
use crate::out::Output;
use crate::out::{out, outln};
use crate::render::{Table, local};
use crate::store::table;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when changes were listed, 1 when none matched, 2 when the store cannot be read."
)]
pub(crate) struct Args {
    /// The state file `apply` and `run` write (default: $XDG_STATE_HOME/upkeep/state.redb).
    #[arg(long, env = "UPKEEP_STORE", value_name = "FILE")]
    store: Option<PathBuf>,
    /// Only changes to this repository (as given to apply/run).
    #[arg(long, value_name = "REPO")]
    repo: Option<String>,
    /// Only changes to this file (path from the repository root; needs --repo).
    #[arg(long, value_name = "PATH", requires = "repo")]
    file: Option<String>,
    /// Only changes allowed by this policy (`namespace/name`).
    #[arg(long, value_name = "POLICY", conflicts_with_all = ["repo", "file"])]
    policy: Option<String>,
    /// The upgrades of this cluster (`upkeep upgrade cluster`), newest first, with the outcome
    /// `--wait` observed (Triggered when nothing was observed).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["repo", "file", "policy"])]
    cluster: Option<String>,
    /// Read the cluster's ClusterUpgradeRecords from the management cluster (with --cluster;
    /// the store is not read then).
    #[arg(long, value_name = "FILE", requires = "cluster")]
    kubeconfig: Option<PathBuf>,
    /// The namespace of the cluster (with --kubeconfig; default: all).
    #[arg(long, short = 'n', value_name = "NS", requires = "kubeconfig")]
    namespace: Option<String>,
    /// At most this many changes.
    #[arg(long, default_value_t = 50, value_name = "N")]
    limit: usize,
    /// `text` for people, `json` for programs.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

pub(crate) fn run(args: &Args) -> miette::Result<Outcome> {
    if let (Some(kubeconfig), Some(name)) = (&args.kubeconfig, &args.cluster) {
        return records(kubeconfig, name, args);
    }
    let store = match crate::store::open_store(args.store.as_deref()) {
        Ok(s) => s,
        Err(outcome) => return Ok(outcome),
    };
    if let Some(name) = &args.cluster {
        return cluster(&store, name, args);
    }
    let listed = match (&args.repo, &args.file, &args.policy) {
        (Some(repo), Some(file), _) => store.changes_for_file(repo, file, args.limit),
        (Some(repo), None, _) => store.changes_for_repository(repo, args.limit),
        (None, _, Some(policy)) => store.changes_for_policy(policy, args.limit),
        _ => store.changes(args.limit),
    };
    let changes = match listed {
        Ok(c) => c,
        Err(e) => {
            crate::render::error_with_hint(&e.to_string(), e.hint());
            return Ok(Outcome::Invalid);
        }
    };
    match args.output {
        Output::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&changes).into_diagnostic()?
        ),
        Output::Text if changes.is_empty() => {
            eprintln!("no changes recorded in {}", store.path().display());
        }
        Output::Text => out!("{}", table(&changes)),
    }
    Ok(if changes.is_empty() {
        Outcome::No
    } else {
        Outcome::Success
    })
}

fn cluster(store: &upkeep_store::Store, name: &str, args: &Args) -> miette::Result<Outcome> {
    let upgrades = match store.cluster_upgrades(name, args.limit) {
        Ok(u) => u,
        Err(e) => {
            crate::render::error_with_hint(&e.to_string(), e.hint());
            return Ok(Outcome::Invalid);
        }
    };
    match args.output {
        Output::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&upgrades).into_diagnostic()?
        ),
        Output::Text if upgrades.is_empty() => {
            eprintln!(
                "no upgrades of cluster {name} recorded in {}",
                store.path().display()
            );
        }
        Output::Text => {
            let mut t = Table::new(&[
                "WHEN", "CLUSTER", "CHANGE", "VIA", "WHERE", "COMMIT", "OUTCOME", "FINISHED",
            ]);
            for r in &upgrades {
                let u = &r.upgrade;
                t.row(vec![
                    local(u.at, &TimeZone::UTC),
                    match &u.namespace {
                        Some(ns) => format!("{ns}/{}", u.cluster),
                        None => u.cluster.clone(),
                    },
                    format!("{} → {}", u.from, u.to),
                    u.via.clone(),
                    match &u.file {
                        Some(f) => format!("{}:{f}", u.target),
                        None => u.target.clone(),
                    },
                    u.commit
                        .as_deref()
                        .map_or_else(|| "-".to_owned(), |s| s[..s.len().min(12)].to_owned()),
                    match &u.reason {
                        Some(r) => format!("{}: {r}", u.outcome.as_str()),
                        None => u.outcome.as_str().to_owned(),
                    },
                    u.finished_at
                        .map_or_else(|| "-".to_owned(), |t| local(t, &TimeZone::UTC)),
                ]);
            }
            out!("{}", t.render(""));
        }
    }
    Ok(if upgrades.is_empty() {
        Outcome::No
    } else {
        Outcome::Success
    })
}

/// A cluster's ClusterUpgradeRecords, newest first ([`crate::management::cluster_records`]).
fn records(kubeconfig: &std::path::Path, name: &str, args: &Args) -> miette::Result<Outcome> {
    use crate::management::{record_json, record_time};
    use upkeep_api::ClusterUpgradeRecord;

    let mut records: Vec<ClusterUpgradeRecord> = crate::management::runtime()?.block_on(async {
        let client = crate::management::client(kubeconfig).await?;
        crate::management::cluster_records(
            &client,
            &crate::management::client_url(kubeconfig),
            args.namespace.as_deref(),
            Some(name),
        )
        .await
    })?;
    records.truncate(args.limit);
    let when = record_time;
    match args.output {
        Output::Json => {
            let rows: Vec<serde_json::Value> = records.iter().map(record_json).collect();
            outln!("{}", serde_json::to_string_pretty(&rows).into_diagnostic()?);
        }
        Output::Text if records.is_empty() => {
            eprintln!(
                "no ClusterUpgradeRecords of cluster {name}{}",
                args.namespace
                    .as_deref()
                    .map_or_else(String::new, |ns| format!(" in namespace {ns}"))
            );
        }
        Output::Text => {
            let mut t = Table::new(&[
                "WHEN", "CLUSTER", "CHANGE", "VIA", "WHERE", "CAMPAIGN", "COMMIT", "OUTCOME",
                "FINISHED",
            ]);
            let time = |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
                t.map_or_else(|| "-".to_owned(), |t| local(t.0, &TimeZone::UTC))
            };
            for r in &records {
                let s = &r.spec;
                t.row(vec![
                    time(
                        when(r)
                            .map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time)
                            .as_ref(),
                    ),
                    format!(
                        "{}/{}",
                        r.metadata.namespace.as_deref().unwrap_or("-"),
                        s.cluster
                    ),
                    format!(
                        "{} → {}",
                        s.from.as_deref().unwrap_or("?"),
                        s.to.as_deref().unwrap_or("?")
                    ),
                    format!("{:?}", s.trigger),
                    s.place.clone().unwrap_or_else(|| "-".to_owned()),
                    s.campaign.clone(),
                    s.commit
                        .as_deref()
                        .map_or_else(|| "-".to_owned(), |c| c[..c.len().min(12)].to_owned()),
                    match &s.reason {
                        Some(reason) => format!("{}: {reason}", s.state),
                        None => s.state.clone(),
                    },
                    time(s.finished_at.as_ref()),
                ]);
            }
            out!("{}", t.render(""));
        }
    }
    Ok(if records.is_empty() {
        Outcome::No
    } else {
        Outcome::Success
    })
}
