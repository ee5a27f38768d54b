//! ClusterUpgrade campaigns in the standalone shape: what `upkeep run` does with every
//! ClusterUpgrade in the repository on each pass, with the embedded store as the campaign's
//! status.
//!
//! Each campaign goes through the controller's three steps:
//!
//! 1. **Gather**: the ClusterUpgrade and schedules from the repository; the clusters from the
//!    management cluster with `--kubeconfig` (their version and Cluster API conditions, as the
//!    controller sees them), else from the repository's Cluster manifests; what was recorded
//!    for each cluster ([`upkeep_store::CampaignCluster`]).
//! 2. **Decide**: [`upkeep_core::rollout::plan`] — the controller's decide — over the
//!    campaign as `upkeep-api` converts it ([`upkeep_api::ClusterUpgrade::to_campaign`], the
//!    controller's conversion). Stages, concurrency, soak, timeout, schedules and freezes are
//!    therefore the controller's, exactly.
//! 3. **Act**, record first: every cluster's new entry is written to the store in one
//!    transaction BEFORE any commit or patch (the failpoint `trigger` sits between the two;
//!    `acted` between the change and the record of what it was),
//!    so a run killed in between finds `Triggered` next time and the core says "re-apply the
//!    same change" — which changes nothing when the change was already made (the manifest
//!    already holds the target: the write loop answers `UpToDate`; the label already shows it:
//!    no patch). Exactly one change, however often a run dies there. GitOps campaigns write
//!    through the same path as `upkeep upgrade cluster --via git` (the shared write loop with
//!    a push and pull request when the checkout has an `origin`, a local commit otherwise);
//!    Direct campaigns patch the Cluster as `upkeep upgrade cluster --via api` does.
//!
//! Without `--kubeconfig` nothing can be observed: a triggered cluster is read as still at the
//! version it started from (never "succeeded" on faith), and its reason says why. Its timeout
//! still runs, as in the controller, and the failure says the cluster was not observed.

use std::collections::HashMap;
use std::path::Path;

use jiff::Timestamp;
use kube::api::{Api, DynamicObject, ListParams};
use miette::miette;
use upkeep_api::cluster_edit::{self, VersionPlace};
use upkeep_api::cluster_upgrade::{Trigger, VersionSource};
use upkeep_api::{ClusterObject, ClusterUpgrade, namespaced_name};
use upkeep_core::rollout::{
    self, ClusterInput, ClusterPhase, FailReason, Observed, Outcome as CampaignOutcome, Plan, Step,
};
use upkeep_core::selector::ClusterLabels;
use upkeep_git::clusters::ClusterTarget;
use upkeep_store::{
    CampaignCluster, CampaignHistory, CampaignUpdate, NewClusterUpgrade, Store, UpgradeOutcome,
};

use crate::cluster_upgrade::{GitPush, PullRequestTo, commit_file, locate, push_clusters};
use crate::fleet::{ClusterFleet, governing_schedule};

/// The reason of a running cluster when nothing observes it.
pub(crate) const NOT_OBSERVED: &str = "not observed: pass --kubeconfig to see cluster status";

/// How `upkeep run` reaches the repository and the management cluster.
pub(crate) struct Settings<'a> {
    /// Observe clusters (and patch them, for Direct campaigns) on this management cluster.
    pub(crate) kubeconfig: Option<&'a Path>,
    /// The checkout has an `origin`: GitOps changes are pushed (and pull requests opened).
    pub(crate) push: bool,
    pub(crate) auth: &'a upkeep_git::Auth,
    pub(crate) max_attempts: u32,
    /// The repository as it may be shown and recorded (no credentials).
    pub(crate) repo_shown: &'a str,
}

/// What the campaigns of one pass came to.
#[derive(Debug, Default)]
pub(crate) struct Carried {
    /// One line per campaign that could not be carried out (already printed).
    pub(crate) errors: Vec<String>,
    /// The earliest instant at which time alone changes a decision.
    pub(crate) next_check: Option<Timestamp>,
    /// Some cluster is Triggered or Upgrading: look again soon.
    pub(crate) running: bool,
}

/// The management cluster, when `--kubeconfig` was given.
struct Kube {
    rt: tokio::runtime::Runtime,
    client: kube::Client,
    clusters: kube::discovery::ApiResource,
    url: String,
}

/// Carries out every ClusterUpgrade under `dir` at `now` (see the module docs). Errors of one
/// campaign are printed and hold only that campaign.
pub(crate) fn carry_out(
    dir: &Path,
    store: &Store,
    now: Timestamp,
    settings: &Settings<'_>,
) -> miette::Result<Carried> {
    let mut carried = Carried::default();
    let Ok(fleet) = ClusterFleet::load(dir)? else {
        let message =
            "ClusterUpgrades: the cluster manifests are invalid (see above); no campaign ran"
                .to_owned();
        eprintln!("error: {message}");
        carried.errors.push(message);
        return Ok(carried);
    };
    if fleet.upgrades.is_empty() {
        return Ok(carried);
    }
    let kube = match settings.kubeconfig {
        None => None,
        Some(kubeconfig) => {
            let rt = crate::management::runtime()?;
            let connected = rt.block_on(async {
                let client = crate::management::client(kubeconfig).await?;
                let clusters = crate::management::cluster_resource(&client).await?;
                Ok::<_, miette::Report>((client, clusters))
            });
            match connected {
                Ok((client, clusters)) => Some(Kube {
                    rt,
                    client,
                    clusters,
                    url: crate::management::client_url(kubeconfig),
                }),
                Err(e) => {
                    let message = format!("ClusterUpgrades: the management cluster: {e}");
                    crate::render::error_with_hint(
                        &message,
                        Some("check --kubeconfig; no campaign ran".into()),
                    );
                    carried.errors.push(message);
                    return Ok(carried);
                }
            }
        }
    };
    for u in &fleet.upgrades {
        let (ns, name) = namespaced_name(&u.metadata);
        match campaign(dir, store, now, settings, kube.as_ref(), &fleet, u) {
            Ok(plan) => {
                carried.next_check = match (carried.next_check, plan.next_check) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                carried.running |= plan.clusters.iter().any(|cp| cp.step.phase().is_running());
            }
            Err(e) => {
                let message = format!("ClusterUpgrade {ns}/{name}: {e}");
                crate::render::error_with_hint(&message, None);
                carried.errors.push(message);
            }
        }
    }
    Ok(carried)
}

/// How each `after` campaign ended, from what the store recorded for it: finished when every
/// recorded cluster is terminal (Failed when one failed), at the latest finish.
fn finished_of(
    store: &Store,
    namespace: &str,
    name: &str,
) -> miette::Result<Option<(CampaignOutcome, Timestamp)>> {
    let entries = store
        .campaign_progress(namespace, name)
        .map_err(|e| miette!("{e}"))?;
    let phases: Vec<(ClusterPhase, Option<Timestamp>)> = entries
        .values()
        .filter_map(|e| e.progress().map(|p| (p.state, p.finished_at)))
        .collect();
    if phases.is_empty() || !phases.iter().all(|(p, _)| p.is_terminal()) {
        return Ok(None);
    }
    let outcome = if phases.iter().any(|(p, _)| *p == ClusterPhase::Failed) {
        CampaignOutcome::Failed
    } else {
        CampaignOutcome::Succeeded
    };
    Ok(phases
        .iter()
        .filter_map(|(_, t)| *t)
        .max()
        .map(|at| (outcome, at)))
}

/// One campaign: gather, decide, record, act, record what was done.
#[allow(clippy::too_many_lines)] // the three steps read in order; each is short
fn campaign(
    dir: &Path,
    store: &Store,
    now: Timestamp,
    settings: &Settings<'_>,
    kube: Option<&Kube>,
    fleet: &ClusterFleet,
    u: &ClusterUpgrade,
) -> miette::Result<Plan> {
    let (ns, name) = namespaced_name(&u.metadata);
    let who = format!("ClusterUpgrade {ns}/{name}");

    // Gather.
    if u.spec.trigger == Trigger::Direct && kube.is_none() {
        return Err(miette!(
            help = "pass --kubeconfig FILE (or set KUBECONFIG), or use trigger: GitOps",
            "trigger Direct patches Clusters on the management cluster, and no kubeconfig was given; nothing was changed"
        ));
    }
    let recorded = store
        .campaign_progress(&ns, &name)
        .map_err(|e| miette!("{e}"))?;
    let mut after = HashMap::new();
    for dep in &u.spec.after {
        after.insert(dep.name.clone(), finished_of(store, &ns, &dep.name)?);
    }
    // h-conv: `to_campaign` is upkeep-api's conversion, the controller's; the governing
    // schedule below still comes from fleet.rs until the one conversion lands.
    let campaign = u
        .to_campaign(None, |n| after.get(n).copied().flatten())
        .map_err(|errors| {
            miette!(
                "invalid: {}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
    let preferred = u
        .spec
        .maintenance_schedule_ref
        .as_ref()
        .map(|r| r.name.as_str());
    if let Some(r) = preferred
        && !fleet
            .schedules
            .iter()
            .any(|s| s.name == r && s.namespace == ns)
    {
        return Err(miette!(
            help =
                "add the MaintenanceSchedule to the repository, or fix spec.maintenanceScheduleRef",
            "MaintenanceSchedule {ns}/{r} is missing or invalid; nothing starts until it is usable"
        ));
    }
    let source = u.spec.version_source;
    let place = match source {
        Some(VersionSource::Topology) => VersionPlace::Topology,
        _ => VersionPlace::default(),
    };
    let clusters: Vec<ClusterObject> = match kube {
        Some(k) => k.rt.block_on(async {
            let api: Api<DynamicObject> = Api::namespaced_with(k.client.clone(), &ns, &k.clusters);
            let list = api
                .list(&ListParams::default())
                .await
                .map_err(|e| miette!("listing Clusters in {ns}: {e}"))?;
            list.items
                .iter()
                .map(crate::management::cluster_object)
                .collect::<miette::Result<Vec<_>>>()
        })?,
        None => fleet
            .clusters
            .iter()
            .map(|(c, _)| c)
            .filter(|c| c.namespace.as_deref().unwrap_or("default") == ns)
            .cloned()
            .collect(),
    };
    let mut clusters: Vec<ClusterObject> = clusters
        .into_iter()
        .filter(|c| {
            let labels = ClusterLabels {
                name: &c.name,
                labels: &c.labels,
            };
            campaign.matchers.matches(labels) || recorded.contains_key(&c.name)
        })
        .collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    let observing = kube.is_some();
    let inputs: Vec<ClusterInput<'_>> = clusters
        .iter()
        .map(|c| {
            let progress = recorded.get(&c.name).and_then(CampaignCluster::progress);
            let running = progress.as_ref().is_some_and(|p| p.state.is_running());
            ClusterInput {
                name: c.name.clone(),
                labels: c.labels.clone(),
                // Unobserved, a triggered cluster is taken to be where it started.
                current: if running && !observing {
                    progress.as_ref().and_then(|p| p.from.clone())
                } else {
                    c.version_at(source).map(ToOwned::to_owned)
                },
                freeze: c.rollout_freeze(),
                schedule: governing_schedule(&fleet.schedules, c, preferred)
                    .map(|s| (s.name.as_str(), &s.schedule)),
                observed: if observing {
                    c.status.observed()
                } else {
                    Observed::default()
                },
                progress,
            }
        })
        .collect();

    // Decide.
    let plan = rollout::plan(&campaign, &inputs, now);
    let target = u
        .spec
        .target_version
        .as_deref()
        .map(|t| t.trim().to_owned());

    // Record before act.
    let mut updates = Vec::new();
    for cp in &plan.clusters {
        let old = recorded.get(&cp.name);
        let was_running = old
            .and_then(CampaignCluster::progress)
            .is_some_and(|p| p.state.is_running());
        let mut reason = cp.step.reason();
        if !observing && cp.step.phase().is_running() {
            reason = Some(NOT_OBSERVED.to_owned());
        }
        if !observing
            && matches!(
                &cp.step,
                Step::Failed {
                    reason: FailReason::Timeout { .. },
                    ..
                }
            )
        {
            reason = reason.map(|r| format!("{r} ({NOT_OBSERVED})"));
        }
        let entry = CampaignCluster {
            state: cp.step.phase().as_str().to_owned(),
            triggered_at: if cp.step == Step::Trigger {
                Some(now)
            } else {
                old.and_then(|o| o.triggered_at)
            },
            finished_at: cp
                .step
                .finished_at()
                .or_else(|| old.and_then(|o| o.finished_at)),
            from: cp.from.clone(),
            to: target.clone(),
            reason: reason.clone(),
            announced_at: old.and_then(|o| o.announced_at),
            stage: cp.stage.clone(),
            commit: old.and_then(|o| o.commit.clone()),
            history: old.and_then(|o| o.history),
        };
        let history = match &cp.step {
            Step::Succeeded { at } if was_running => Some(CampaignHistory::Finished {
                outcome: UpgradeOutcome::Succeeded,
                at: *at,
                reason: None,
            }),
            Step::Failed { at, .. } if was_running => Some(CampaignHistory::Finished {
                outcome: UpgradeOutcome::Failed,
                at: *at,
                reason: reason.clone(),
            }),
            _ => None,
        };
        if old != Some(&entry) {
            say(&who, &cp.name, &cp.step, old, &entry, target.as_deref());
            updates.push(CampaignUpdate {
                cluster: cp.name.clone(),
                entry,
                history,
            });
        }
    }
    if !updates.is_empty() {
        store
            .record_campaign(&ns, &name, &updates)
            .map_err(|e| miette!("recording the campaign's progress: {e}"))?;
    }

    summarize(&who, &plan, &updates_shown(&plan, observing));

    // Act: every cluster the core starts now or keeps Triggered, unless it already shows the
    // target where the change is made.
    let Some(target) = target else {
        return Ok(plan);
    };
    let acting: Vec<&ClusterObject> = plan
        .clusters
        .iter()
        .filter(|cp| matches!(cp.step, Step::Trigger | Step::Triggered))
        .filter_map(|cp| clusters.iter().find(|c| c.name == cp.name))
        .collect();
    if acting.is_empty() {
        return Ok(plan);
    }
    upkeep_git::failpoint("trigger");
    let (done, failed) = match u.spec.trigger {
        Trigger::GitOps => (
            act_git(dir, settings, u, &who, &place, &acting, &target)?,
            None,
        ),
        Trigger::Direct => match kube {
            Some(k) => act_api(k, &who, &ns, &place, &acting, &target),
            None => (Vec::new(), None),
        },
    };

    upkeep_git::failpoint("acted");
    // Record what was done: the history's trigger record (once), the commit.
    let after_act = store
        .campaign_progress(&ns, &name)
        .map_err(|e| miette!("{e}"))?;
    let mut updates = Vec::new();
    for (cluster, commit, file) in done {
        let Some(entry) = after_act.get(&cluster.name) else {
            continue;
        };
        let via = if u.spec.trigger == Trigger::GitOps {
            "git"
        } else {
            "api"
        };
        let record = NewClusterUpgrade {
            cluster: cluster.name.clone(),
            namespace: Some(ns.clone()),
            from: entry.from.clone().unwrap_or_default(),
            to: target.clone(),
            at: entry.triggered_at.unwrap_or(now),
            via: via.to_owned(),
            target: match kube {
                Some(k) if via == "api" => k.url.clone(),
                _ => settings.repo_shown.to_owned(),
            },
            file,
            commit: commit.clone(),
            pull_request: None,
            outcome: UpgradeOutcome::Triggered,
            reason: None,
            finished_at: None,
            follows: None,
        };
        updates.push(CampaignUpdate {
            cluster: cluster.name.clone(),
            entry: CampaignCluster {
                commit: commit.or_else(|| entry.commit.clone()),
                ..entry.clone()
            },
            history: Some(CampaignHistory::Triggered(Box::new(record))),
        });
    }
    if !updates.is_empty() {
        store
            .record_campaign(&ns, &name, &updates)
            .map_err(|e| miette!("recording the change made: {e}"))?;
    }
    match failed {
        Some(f) => Err(miette!("{f}")),
        None => Ok(plan),
    }
}

/// The running clusters nobody observes (their reason is worth repeating every pass).
fn updates_shown(plan: &Plan, observing: bool) -> Vec<String> {
    if observing {
        return Vec::new();
    }
    plan.clusters
        .iter()
        .filter(|cp| cp.step.phase().is_running())
        .map(|cp| cp.name.clone())
        .collect()
}

/// The campaign's state and counts on stderr, then the unobserved running clusters.
fn summarize(who: &str, plan: &Plan, unobserved: &[String]) {
    let mut counts: std::collections::BTreeMap<&'static str, usize> =
        std::collections::BTreeMap::new();
    for cp in &plan.clusters {
        *counts.entry(cp.step.phase().as_str()).or_default() += 1;
    }
    let counts = if counts.is_empty() {
        "no cluster selected".to_owned()
    } else {
        counts
            .iter()
            .map(|(phase, n)| format!("{n} {phase}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    eprintln!("{who}: {} ({counts})", plan.state);
    for name in unobserved {
        eprintln!("{who}: cluster {name}: {NOT_OBSERVED}");
    }
}

/// One line on stderr for a cluster whose entry changes.
fn say(
    who: &str,
    cluster: &str,
    step: &Step,
    old: Option<&CampaignCluster>,
    entry: &CampaignCluster,
    target: Option<&str>,
) {
    let from = entry.from.as_deref().unwrap_or("?");
    let to = target.unwrap_or("?");
    let line = match step {
        Step::Trigger => format!("trigger {from} → {to} (recorded before the change)"),
        Step::Succeeded { .. } => format!("succeeded: at {to} and ready"),
        Step::Failed { .. } => format!("failed: {}", entry.reason.as_deref().unwrap_or("failed")),
        _ if old.map(|o| o.state.as_str()) == Some(entry.state.as_str()) => {
            // Same state, new reason (e.g. a window's next opening): not worth a line.
            return;
        }
        _ => match &entry.reason {
            Some(r) => format!("{}: {r}", entry.state),
            None => entry.state.clone(),
        },
    };
    eprintln!("{who}: cluster {cluster}: {line}");
}

/// What one act did for one cluster: (cluster, commit, file).
type Done<'c> = Vec<(&'c ClusterObject, Option<String>, Option<String>)>;

/// GitOps: the clusters' version scalars in the repository. With an `origin`: one commit on
/// its branch through the shared write loop (`spec.gitOps.path`, `commit`, `push.branch`,
/// `push.pullRequest` as in the controller); without one: a local commit per cluster, as
/// `upkeep upgrade cluster --via git` makes it.
fn act_git<'c>(
    dir: &Path,
    settings: &Settings<'_>,
    u: &ClusterUpgrade,
    who: &str,
    place: &VersionPlace,
    acting: &[&'c ClusterObject],
    target: &str,
) -> miette::Result<Done<'c>> {
    let g = u.spec.git_ops.as_ref();
    let requester = format!("{who} (upkeep run)");
    if settings.push {
        let template = match g.and_then(|g| g.commit.message_template.as_deref()) {
            Some(t) => Some(upkeep_git::MessageTemplate::new(t).map_err(|e| {
                miette!(
                    "spec.gitOps.commit.messageTemplate: {e} (hint: {})",
                    e.hint()
                )
            })?),
            None => None,
        };
        let pull_request = g
            .and_then(|g| g.push.as_ref())
            .and_then(|p| p.pull_request.as_ref())
            .map(|p| PullRequestTo {
                kind: match p.provider {
                    upkeep_api::app_upgrade_automation::Provider::Github => {
                        upkeep_git::ProviderKind::Github
                    }
                    upkeep_api::app_upgrade_automation::Provider::Gitlab => {
                        upkeep_git::ProviderKind::Gitlab
                    }
                    upkeep_api::app_upgrade_automation::Provider::Gitea => {
                        upkeep_git::ProviderKind::Gitea
                    }
                },
                api_url: p.api_url.clone(),
                title: p.title.clone(),
                labels: p.labels.clone(),
            });
        let push = GitPush {
            auth: settings.auth.clone(),
            branch: g
                .and_then(|g| g.push.as_ref())
                .and_then(|p| p.branch.clone()),
            max_attempts: settings.max_attempts,
            author: g.map(|g| upkeep_git::Author {
                name: g.commit.author.name.clone(),
                email: g.commit.author.email.clone(),
            }),
            path: g.and_then(|g| g.path.as_deref()).unwrap_or(""),
            template: template.as_ref(),
            pull_request,
        };
        let targets: Vec<ClusterTarget> = acting
            .iter()
            .map(|c| ClusterTarget {
                namespace: c.namespace.clone(),
                name: c.name.clone(),
                version: target.to_owned(),
            })
            .collect();
        let Ok((commit, pr)) = push_clusters(dir, &push, place, &targets, &requester)? else {
            return Err(miette!(
                "the GitOps write failed (see above); the clusters stay Triggered and the next run writes again"
            ));
        };
        if let Some(pr) = &pr {
            eprintln!("{who}: pull request {pr}");
        }
        return Ok(acting.iter().map(|c| (*c, commit.clone(), None)).collect());
    }
    let mut done = Vec::new();
    for c in acting {
        let Some((object, rel, text)) = locate(dir, &c.name, c.namespace.as_deref())? else {
            return Err(miette!("Cluster {} is not in the repository", c.name));
        };
        let ns = c.namespace.as_deref().or(object.namespace.as_deref());
        let edit = cluster_edit::set_version(&rel, &text, &c.name, ns, place, target)
            .map_err(|e| miette!("{rel}: {e}{}", hint_of(e.hint())))?;
        if !edit.is_changed(&text) {
            // Already written (by a run that died before recording it): nothing to change.
            done.push((*c, None, Some(rel)));
            continue;
        }
        let message = format!(
            "Upgrade Cluster {}/{} from {} to {target}\n\n- {rel}:{} {}: {} -> {target}\n\nRequested by {requester}.\n",
            ns.unwrap_or("default"),
            c.name,
            edit.old,
            edit.line,
            place.path(),
            edit.old,
        );
        let Ok(commit) = commit_file(dir, &rel, &text, &edit.new_text, &message, None)? else {
            return Err(miette!(
                "committing {rel} failed (see above); the cluster stays Triggered and the next run writes again"
            ));
        };
        if let Some(id) = &commit {
            eprintln!(
                "{who}: cluster {}: committed {}",
                c.name,
                &id[..12.min(id.len())]
            );
        }
        done.push((*c, commit, Some(rel)));
    }
    Ok(done)
}

/// Direct: a merge patch of each cluster's version place carrying the resourceVersion the
/// decision was made on. A conflict leaves the cluster Triggered: the next run decides on the
/// new state and patches again.
fn act_api<'c>(
    k: &Kube,
    who: &str,
    ns: &str,
    place: &VersionPlace,
    acting: &[&'c ClusterObject],
    target: &str,
) -> (Done<'c>, Option<String>) {
    let api: Api<DynamicObject> = Api::namespaced_with(k.client.clone(), ns, &k.clusters);
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for c in acting {
        let shows = c.version_at(match place {
            VersionPlace::Topology => Some(VersionSource::Topology),
            VersionPlace::Label(_) => None,
        });
        if shows.is_some_and(|v| v.trim() == target) {
            done.push((*c, None, None));
            continue;
        }
        let patched = k.rt.block_on(crate::management::patch_version(
            &api,
            &c.name,
            c.resource_version.as_deref(),
            place,
            target,
            false,
        ));
        match patched {
            Ok(_) => {
                eprintln!(
                    "{who}: cluster {}: patched {} → {target}",
                    c.name,
                    place.path()
                );
                done.push((*c, None, None));
            }
            Err(e) => failed.push(format!("Cluster {ns}/{}: {e}", c.name)),
        }
    }
    let failed = (!failed.is_empty()).then(|| {
        format!(
            "patching failed (the clusters stay Triggered; the next run patches again): {}",
            failed.join("; ")
        )
    });
    (done, failed)
}

/// ` (hint: …)` for an error's hint, if it has one.
fn hint_of(hint: Option<String>) -> String {
    hint.map(|h| format!(" (hint: {h})")).unwrap_or_default()
}
