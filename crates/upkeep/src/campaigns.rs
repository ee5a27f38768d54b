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
//! 2. **Decide**: [`upkeep_core::rollout::plan`] — the controller's decide — over the one
//!    conversion ([`upkeep_api::cluster_upgrade::inputs`], which the controller calls too), with
//!    the store's entries as the upgrade's `status.clusters[]`. Stages, concurrency, soak,
//!    timeout, schedules and freezes are therefore the controller's, exactly; the only
//!    standalone choice is observation (see below).
//! 3. **Act**, record first: every cluster's new entry is written to the store in one
//!    transaction BEFORE any commit or patch (the failpoint `trigger` sits between the two;
//!    `acted` between the change and the record of what it was),
//!    so a run killed in between finds `Triggered` next time and the core says "re-apply the
//!    same change" — which changes nothing when the change was already made (the manifest
//!    already holds the target: the write loop answers `UpToDate`; the label already shows it:
//!    no patch). Exactly one change, however often a run dies there. A commit made before the
//!    kill is named in the history all the same: every campaign commit carries
//!    `Upkeep-Campaign`/`Upkeep-Cluster` trailers, and the newest one on the branch for the
//!    cluster at the target is the change ([`upkeep_git::clusters::campaign_commit`]).
//!    GitOps campaigns write
//!    through the same path as `upkeep upgrade cluster --via git` (the shared write loop with
//!    a push and pull request when the checkout has an `origin`, a local commit otherwise);
//!    Direct campaigns patch the Cluster as `upkeep upgrade cluster --via api` does.
//!
//! The target is `targetVersion`, or the `releaseRef` VersionPolicy's latest allowed version
//! over this pass's scan (the controller reads the same decision from the policy's
//! `status.latestVersion`); while that cannot be resolved every cluster waits and the reason
//! says why. `after` reads the other campaign's recorded state (Finished, its outcome and
//! `finishedAt`), which each pass records with the clusters' entries.
//!
//! Without `--kubeconfig` nothing can be observed: a triggered cluster is read as still at the
//! version it started from (never "succeeded" on faith), and its reason says why. Its timeout
//! still runs, as in the controller, and the failure says the cluster was not observed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DynamicObject, ListParams};
use miette::miette;
use upkeep_api::cluster_edit::VersionPlace;
use upkeep_api::cluster_upgrade::{
    ClusterState, ClusterUpgradeStatus, NamedSchedule, Trigger, VersionSource,
};
use upkeep_api::release::Resolution;
use upkeep_api::{ClusterObject, ClusterUpgrade, namespaced_name};
use upkeep_controller::cluster_upgrade::decide::{self as controller_decide, Snapshot};
use upkeep_core::rollout::{
    self, ClusterInput, FailReason, Observed, Outcome as CampaignOutcome, Plan, Step,
};
use upkeep_git::clusters::{CAMPAIGN_TRAILER, CLUSTER_TRAILER, ClusterTarget};
use upkeep_store::{
    CampaignCluster, CampaignHistory, CampaignStatus, CampaignUpdate, NewClusterUpgrade, Store,
    UpgradeOutcome,
};

use crate::cluster_upgrade::{GitPush, PullRequestTo, commit_file, locate, push_clusters};
use crate::fleet::{ClusterFleet, Decision, Fleet};
use crate::repo_clusters::RepoCluster;

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

/// What every campaign of one pass shares.
#[derive(Clone, Copy)]
struct Pass<'a> {
    dir: &'a Path,
    store: &'a Store,
    now: Timestamp,
    settings: &'a Settings<'a>,
    kube: Option<&'a Kube>,
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
    policies: &Fleet,
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
    let releases = upkeep_api::release::releases_in(dir);
    for u in &fleet.upgrades {
        let (ns, name) = namespaced_name(&u.metadata);
        let release = release(policies, &releases, u);
        let pass = Pass {
            dir,
            store,
            now,
            settings,
            kube: kube.as_ref(),
        };
        match campaign(pass, &fleet, u, release.as_ref()) {
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

/// How an `after` campaign ended, as the controller reads the other upgrade's status: its
/// recorded campaign state is `Finished`, with its outcome and `finishedAt` (from which `soak`
/// counts). A campaign never recorded, or not finished, has not ended.
fn finished_of(
    store: &Store,
    namespace: &str,
    name: &str,
) -> miette::Result<Option<(CampaignOutcome, Timestamp)>> {
    Ok(store
        .campaign_status(namespace, name)
        .map_err(|e| miette!("{e}"))?
        .and_then(|s| s.finished()))
}

/// What the store recorded of a campaign (`upkeep run` carried it out): the ClusterUpgrade
/// with its recorded clusters as `status.clusters[]`, the target its `releaseRef` resolved to
/// when a cluster was started, and how its `after` campaigns ended — what `upkeep status`
/// decides on, as the controller decides on its status.
pub(crate) struct RecordedView {
    pub(crate) upgrade: ClusterUpgrade,
    pub(crate) release: Option<Resolution>,
    pub(crate) finished: HashMap<String, Option<(CampaignOutcome, Timestamp)>>,
}

/// What `upkeep status` shows of a repository's campaigns: with a store, every ClusterUpgrade
/// decided at `now` over what `upkeep run` recorded ([`recorded_campaigns`]); without one,
/// nothing counts as started and a VersionPolicy `releaseRef` has no release yet (`upkeep plan`
/// resolves it); a Giant Swarm Release is read from its manifest. The dashboard shows the same.
pub(crate) fn repo_status(
    fleet: &ClusterFleet,
    repo: &Path,
    store: Option<&Store>,
    only: Option<&str>,
    now: Timestamp,
) -> miette::Result<Vec<(crate::campaign_view::CampaignRow, jiff::tz::TimeZone)>> {
    if let Some(store) = store {
        return recorded_campaigns(fleet, repo, store, only, now);
    }
    let releases = upkeep_api::release::releases_in(repo);
    Ok(crate::campaign_view::campaigns(
        fleet,
        only,
        &|u| crate::campaign_view::repo_release(u, &releases),
        now,
    ))
}

/// Every ClusterUpgrade of the fleet (or the one named), decided at `now` over what the store
/// recorded of it ([`recorded_view`]).
pub(crate) fn recorded_campaigns(
    fleet: &ClusterFleet,
    repo: &Path,
    store: &Store,
    only: Option<&str>,
    now: Timestamp,
) -> miette::Result<Vec<(crate::campaign_view::CampaignRow, jiff::tz::TimeZone)>> {
    let mut snapshot = crate::campaign_view::snapshot(fleet);
    let releases = upkeep_api::release::releases_in(repo);
    let mut out = Vec::new();
    for u in &fleet.upgrades {
        if only.is_some_and(|o| Some(o) != u.metadata.name.as_deref()) {
            continue;
        }
        let view = recorded_view(store, u)?;
        // A Giant Swarm Release is read from its manifest (with its provider and state); a
        // VersionPolicy's release is what run recorded.
        snapshot.release = crate::campaign_view::repo_release(u, &releases).or(view.release);
        snapshot.finished = view.finished;
        let decision = decide_unobserved(&view.upgrade, &snapshot, now);
        out.push(crate::campaign_view::row_of(
            &view.upgrade,
            &snapshot,
            decision,
        ));
    }
    Ok(out)
}

/// [`RecordedView`] of `u` from `store`.
pub(crate) fn recorded_view(store: &Store, u: &ClusterUpgrade) -> miette::Result<RecordedView> {
    let (ns, name) = namespaced_name(&u.metadata);
    let recorded = store
        .campaign_progress(&ns, &name)
        .map_err(|e| miette!("{e}"))?;
    let mut finished = HashMap::new();
    for dep in &u.spec.after {
        finished.insert(dep.name.clone(), finished_of(store, &ns, &dep.name)?);
    }
    let release = u
        .spec
        .release_ref
        .as_ref()
        .and_then(|_| recorded.values().find_map(|e| e.to.clone()))
        .map(|version| Resolution::Ready {
            version,
            provider: None,
        });
    let mut upgrade = u.clone();
    upgrade.status = Some(as_status(&recorded));
    Ok(RecordedView {
        upgrade,
        release,
        finished,
    })
}

/// The target a `releaseRef` resolves to in this pass: for a VersionPolicy, as the controller
/// reads it from the policy's `status.latestVersion`, the policy's latest allowed version over
/// this pass's scan; for a Giant Swarm Release, its manifest in the repository (`releases`).
/// `None` without a `releaseRef`; [`Resolution::Missing`] or [`Resolution::Refused`] with the
/// reason when it cannot be resolved now.
fn release(
    fleet: &Fleet,
    releases: &[(std::path::PathBuf, upkeep_api::release::Release)],
    u: &ClusterUpgrade,
) -> Option<Resolution> {
    let r = u.spec.release_ref.as_ref()?;
    if let Some(gs) = crate::campaign_view::repo_release(u, releases) {
        return Some(gs);
    }
    let (ns, _) = namespaced_name(&u.metadata);
    let key = (ns.clone(), r.name.clone());
    Some(
        match release_from(
            &ns,
            &r.name,
            fleet.policies.get(&key),
            fleet.problems.get(&key).map(String::as_str),
            fleet.invalid_object("VersionPolicy", &ns, &r.name),
        ) {
            Ok(version) => Resolution::Ready {
                version,
                provider: None,
            },
            Err(why) => Resolution::Missing(why),
        },
    )
}

/// [`release`] from what the pass knows of VersionPolicy `ns/name`: its decision, why it has
/// none (its source is missing or unreadable), or why it did not load. Pure.
fn release_from(
    ns: &str,
    name: &str,
    decision: Option<&Decision>,
    problem: Option<&str>,
    invalid: Option<String>,
) -> Result<String, String> {
    if let Some(d) = decision {
        if let Some(v) = &d.allow.selected {
            return Ok(v.trim().to_owned());
        }
        let held = d
            .allow
            .held
            .as_ref()
            .map(|(tag, until)| {
                format!(
                    "; {tag} is held by minimumReleaseAge until {}",
                    crate::render::utc(*until)
                )
            })
            .unwrap_or_default();
        return Err(format!(
            "VersionPolicy {ns}/{name} allows no version ({} tags considered, {} not versions for this policy){held}",
            d.considered, d.ignored
        ));
    }
    if let Some(p) = problem {
        return Err(p.to_owned());
    }
    Err(match invalid {
        Some(why) => format!("VersionPolicy {ns}/{name} {why}"),
        None => format!("VersionPolicy {ns}/{name} (spec.releaseRef) is not in the repository"),
    })
}

/// What one campaign is decided on (gathered from the repository, the store and, with
/// `--kubeconfig`, the management cluster).
struct Gathered {
    /// The ClusterUpgrade with the store's entries as its `status.clusters[]`, so the one
    /// conversion reads them as the controller reads its status.
    upgrade: ClusterUpgrade,
    recorded: BTreeMap<String, CampaignCluster>,
    /// The campaign's own recorded state.
    status: Option<CampaignStatus>,
    /// How each `after` campaign ended, from the store.
    after: HashMap<String, Option<(CampaignOutcome, Timestamp)>>,
    /// The clusters of the campaign's namespace.
    clusters: Vec<ClusterObject>,
    schedules: Vec<NamedSchedule>,
}

/// The store's entries as the controller's `status.clusters[]`.
fn as_status(recorded: &BTreeMap<String, CampaignCluster>) -> ClusterUpgradeStatus {
    ClusterUpgradeStatus {
        clusters: recorded
            .iter()
            .map(|(name, e)| ClusterState {
                name: name.clone(),
                state: Some(e.state.clone()),
                reason: e.reason.clone(),
                triggered_at: e.triggered_at.map(Time),
                // The standalone shape changes in the pass that records the trigger.
                acknowledged_at: e.triggered_at.map(Time),
                finished_at: e.finished_at.map(Time),
                from_release: e.from.clone(),
                to_release: e.to.clone(),
                stage: e.stage.clone(),
                announced_at: e.announced_at.map(Time),
                silence_id: None,
            })
            .collect(),
        ..ClusterUpgradeStatus::default()
    }
}

/// The repository's other ClusterUpgrades of `u`'s namespace with what the store recorded for
/// them as their status (state and clusters), for the overlap rule: manifests have no creation
/// time, so among them the name decides which is older.
fn others_as_recorded(
    store: &Store,
    fleet: &ClusterFleet,
    u: &ClusterUpgrade,
) -> miette::Result<Vec<ClusterUpgrade>> {
    let (ns, name) = namespaced_name(&u.metadata);
    let mut others = Vec::new();
    for o in &fleet.upgrades {
        let (ons, oname) = namespaced_name(&o.metadata);
        if ons != ns || oname == name {
            continue;
        }
        let recorded = store
            .campaign_progress(&ons, &oname)
            .map_err(|e| miette!("{e}"))?;
        let state = store
            .campaign_status(&ons, &oname)
            .map_err(|e| miette!("{e}"))?
            .map(|s| s.state);
        let mut other = o.clone();
        other.status = Some(ClusterUpgradeStatus {
            state,
            ..as_status(&recorded)
        });
        others.push(other);
    }
    Ok(others)
}

/// Gather: what was recorded, how the `after` campaigns ended, the clusters of the campaign's
/// namespace, the schedules.
fn gather(
    store: &Store,
    kube: Option<&Kube>,
    fleet: &ClusterFleet,
    u: &ClusterUpgrade,
) -> miette::Result<Gathered> {
    let (ns, name) = namespaced_name(&u.metadata);
    if u.spec.trigger == Trigger::Direct && kube.is_none() {
        return Err(miette!(
            help = "pass --kubeconfig FILE (or set KUBECONFIG), or use trigger: GitOps",
            "trigger Direct patches Clusters on the management cluster, and no kubeconfig was given; nothing was changed"
        ));
    }
    let recorded = store
        .campaign_progress(&ns, &name)
        .map_err(|e| miette!("{e}"))?;
    let status = store
        .campaign_status(&ns, &name)
        .map_err(|e| miette!("{e}"))?;
    let mut after = HashMap::new();
    for dep in &u.spec.after {
        after.insert(dep.name.clone(), finished_of(store, &ns, &dep.name)?);
    }
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
        None => fleet.objects(),
    };
    let schedules = fleet.schedules.clone();
    let mut upgrade = u.clone();
    upgrade.status = Some(as_status(&recorded));
    Ok(Gathered {
        upgrade,
        recorded,
        status,
        after,
        clusters,
        schedules,
    })
}

/// Observation. With `--kubeconfig` the one conversion's input stands (the clusters' version
/// and conditions on the management cluster). Without it nothing is known of a cluster: its
/// conditions are unknown, and a triggered cluster is taken to be where it started, so it is
/// never taken to have succeeded.
fn observed(mut inputs: Vec<ClusterInput<'_>>, observing: bool) -> Vec<ClusterInput<'_>> {
    if observing {
        return inputs;
    }
    for input in &mut inputs {
        input.observed = Observed::default();
        if let Some(p) = &input.progress
            && p.state.is_running()
        {
            input.current.clone_from(&p.from);
        }
    }
    inputs
}

/// The controller's decision about `upgrade` over `snapshot`, with the clusters seen as
/// `upkeep run` sees them without `--kubeconfig` ([`observed`]): what `upkeep status` shows of
/// what run recorded, so both say the same.
pub(crate) fn decide_unobserved<'s>(
    upgrade: &ClusterUpgrade,
    snapshot: &'s Snapshot,
    now: Timestamp,
) -> controller_decide::Decision<'s> {
    use controller_decide::Decision as Controller;
    match controller_decide::decide(upgrade, snapshot, VersionSource::Label, now) {
        Controller::Plan(mut d) => {
            d.inputs.clusters = observed(std::mem::take(&mut d.inputs.clusters), false);
            d.plan = rollout::plan(&d.inputs.campaign, &d.inputs.clusters, now);
            Controller::Plan(d)
        }
        other => other,
    }
}

/// The entries to record for `plan` (only those that change), each with what goes into the
/// history log: the controller's `desired_status`, for the store. Pure.
fn entries(
    plan: &Plan,
    recorded: &BTreeMap<String, CampaignCluster>,
    target: Option<&str>,
    observing: bool,
    now: Timestamp,
) -> Vec<CampaignUpdate> {
    let mut updates = Vec::new();
    for cp in &plan.clusters {
        let old = recorded.get(&cp.name);
        let was_running = old
            .and_then(CampaignCluster::progress)
            .is_some_and(|p| p.state.is_running());
        // A NoTarget wait carries why the release is not resolved (the core's reason).
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
            to: target.map(ToOwned::to_owned),
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
                reason,
            }),
            _ => None,
        };
        if old != Some(&entry) {
            updates.push(CampaignUpdate {
                cluster: cp.name.clone(),
                entry,
                history,
            });
        }
    }
    updates
}

/// One campaign: gather, decide, record, act, record what was done.
fn campaign(
    pass: Pass<'_>,
    fleet: &ClusterFleet,
    u: &ClusterUpgrade,
    release: Option<&Resolution>,
) -> miette::Result<Plan> {
    let Pass {
        dir,
        store,
        now,
        settings,
        kube,
    } = pass;
    let (ns, name) = namespaced_name(&u.metadata);
    let who = format!("ClusterUpgrade {ns}/{name}");
    let g = gather(store, kube, fleet, u)?;
    let unresolved = release.and_then(Resolution::reason);
    let observing = kube.is_some();

    // Decide: the one conversion (upkeep-api's, the controller's), the overlaps with the
    // repository's other campaigns as recorded, then the core.
    let mut inputs = upkeep_api::cluster_upgrade::inputs(
        &g.upgrade,
        &g.clusters,
        &g.schedules,
        release,
        |n| g.after.get(n).copied().flatten(),
        VersionSource::Label,
    )
    .map_err(|e| miette!("{e}"))?;
    let others = others_as_recorded(store, fleet, u)?;
    upkeep_api::cluster_upgrade::overlaps(&mut inputs, &g.upgrade, others.iter());
    let plan = rollout::plan(&inputs.campaign, &observed(inputs.clusters, observing), now);
    let target = inputs.target;
    let place = VersionPlace::from(inputs.source);
    let updates = entries(&plan, &g.recorded, target.as_deref(), observing, now);
    let status = campaign_status(&plan, g.status.as_ref());
    let status = (g.status.as_ref() != Some(&status)).then_some(status);

    // Record before act.
    for up in &updates {
        if let Some(cp) = plan.clusters.iter().find(|cp| cp.name == up.cluster) {
            say(
                &who,
                &cp.name,
                &cp.step,
                g.recorded.get(&cp.name),
                &up.entry,
                target.as_deref(),
            );
        }
    }
    if !updates.is_empty() || status.is_some() {
        store
            .record_campaign(&ns, &name, status.as_ref(), &updates)
            .map_err(|e| miette!("recording the campaign's progress: {e}"))?;
    }
    summarize(&who, &plan, &updates_shown(&plan, observing));
    if let Some(why) = unresolved {
        eprintln!("{who}: target release not resolved yet: {why}");
    }

    // Act: every cluster the core starts now or keeps Triggered, unless it already shows the
    // target where the change is made.
    let Some(target) = target else {
        return Ok(plan);
    };
    let acting: Vec<&ClusterObject> = plan
        .clusters
        .iter()
        .filter(|cp| matches!(cp.step, Step::Trigger | Step::Triggered))
        .filter_map(|cp| g.clusters.iter().find(|c| c.name == cp.name))
        .collect();
    if acting.is_empty() {
        return Ok(plan);
    }
    upkeep_git::failpoint("trigger");
    let (done, pr, failed) = match (u.spec.trigger, kube) {
        (Trigger::GitOps, _) => {
            let (done, pr) = act_git(dir, settings, u, &who, &place, &acting, &target, fleet)?;
            (done, pr, None)
        }
        (Trigger::Direct, Some(k)) => {
            let (done, failed) = act_api(k, &who, &ns, &place, &acting, &target);
            (done, None, failed)
        }
        (Trigger::Direct, None) => (Vec::new(), None, None),
    };

    upkeep_git::failpoint("acted");
    let (via, shown) = match (u.spec.trigger, kube) {
        (Trigger::Direct, Some(k)) => ("api", k.url.as_str()),
        _ => ("git", settings.repo_shown),
    };
    let made = Made {
        via,
        shown,
        to: &target,
        pull_request: pr,
    };
    let find = |c: &ClusterObject| match u.spec.trigger {
        Trigger::GitOps => made_commit(dir, settings, u, &place, &target, c),
        Trigger::Direct => None,
    };
    record_done(store, &ns, &name, &made, done, &find, now)?;
    match failed {
        Some(f) => Err(miette!("{f}")),
        None => Ok(plan),
    }
}

/// How the changes of one act were made, for the history log.
struct Made<'a> {
    /// `git` or `api`.
    via: &'static str,
    /// The repository or API server, as shown (no credentials).
    shown: &'a str,
    to: &'a str,
    pull_request: Option<String>,
}

/// Records what an act did: each cluster's trigger record in the history log (once: the
/// entry remembers it) and the commit, in one transaction. A change found already made (a run
/// killed after making it) is recorded with the commit `find` names for it.
fn record_done(
    store: &Store,
    ns: &str,
    name: &str,
    made: &Made<'_>,
    done: Done<'_>,
    find: &dyn Fn(&ClusterObject) -> Option<String>,
    now: Timestamp,
) -> miette::Result<()> {
    let recorded = store
        .campaign_progress(ns, name)
        .map_err(|e| miette!("{e}"))?;
    let mut updates = Vec::new();
    for (cluster, commit, file) in done {
        let Some(entry) = recorded.get(&cluster.name) else {
            continue;
        };
        let commit = commit
            .or_else(|| entry.commit.clone())
            .or_else(|| find(cluster));
        let record = NewClusterUpgrade {
            cluster: cluster.name.clone(),
            namespace: Some(ns.to_owned()),
            from: entry.from.clone().unwrap_or_default(),
            to: made.to.to_owned(),
            at: entry.triggered_at.unwrap_or(now),
            via: made.via.to_owned(),
            target: made.shown.to_owned(),
            file,
            commit: commit.clone(),
            pull_request: made.pull_request.clone(),
            outcome: UpgradeOutcome::Triggered,
            reason: None,
            finished_at: None,
            follows: None,
        };
        updates.push(CampaignUpdate {
            cluster: cluster.name.clone(),
            entry: CampaignCluster {
                commit,
                ..entry.clone()
            },
            history: Some(CampaignHistory::Triggered(Box::new(record))),
        });
    }
    if updates.is_empty() {
        return Ok(());
    }
    store
        .record_campaign(ns, name, None, &updates)
        .map_err(|e| miette!("recording the change made: {e}"))
}

/// The campaign's state to record: the plan's (the controller's `status.state`, `outcome`,
/// `finishedAt`), except that a campaign already recorded Finished with the same outcome keeps
/// its finish time: the core dates a campaign whose clusters were all at the target `now` on
/// every pass, and `after`'s soak counts from the first. Pure.
fn campaign_status(plan: &Plan, recorded: Option<&CampaignStatus>) -> CampaignStatus {
    let finished_at = match (recorded.and_then(CampaignStatus::finished), plan.outcome) {
        (Some((was, at)), Some(outcome))
            if was == outcome && plan.state == rollout::CampaignState::Finished =>
        {
            Some(at)
        }
        _ => plan.finished_at,
    };
    CampaignStatus {
        state: plan.state.as_str().to_owned(),
        outcome: plan.outcome.map(|o| o.as_str().to_owned()),
        finished_at,
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
    let counts = plan.phase_counts();
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
#[allow(clippy::too_many_arguments)] // one act: the campaign, its clusters and the repository
fn act_git<'c>(
    dir: &Path,
    settings: &Settings<'_>,
    u: &ClusterUpgrade,
    who: &str,
    place: &VersionPlace,
    acting: &[&'c ClusterObject],
    target: &str,
    fleet: &ClusterFleet,
) -> miette::Result<(Done<'c>, Option<String>)> {
    let g = u.spec.git_ops.as_ref();
    let requester = format!("{who} (upkeep run)");
    let campaign = campaign_name(u);
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
            campaign: Some(&campaign),
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
        return Ok((
            acting.iter().map(|c| (*c, commit.clone(), None)).collect(),
            pr,
        ));
    }
    let mut done = Vec::new();
    for c in acting {
        let ns = c.namespace.as_deref().unwrap_or("default");
        let Some((found, text)) = locate(
            dir,
            &fleet.clusters,
            &c.name,
            Some(ns),
            RepoCluster::version_file,
        ) else {
            return Err(miette!("Cluster {ns}/{} is not in the repository", c.name));
        };
        let rel = found.version_file().to_owned();
        let edit = found
            .set_version(&text, place, target)
            .map_err(|e| miette!("{rel}: {e}{}", hint_of(e.hint())))?;
        if !edit.is_changed(&text) {
            // Already written (by a run that died before recording it): nothing to change.
            done.push((*c, None, Some(rel)));
            continue;
        }
        // The trailers name the campaign and the cluster, so the commit can be told apart
        // from any other that touched the file.
        let message = format!(
            "Upgrade Cluster {ns}/{} from {} to {target}\n\n- {rel}:{} {}: {} -> {target}\n\nRequested by {requester}.\n\n{CAMPAIGN_TRAILER}: {campaign}\n{CLUSTER_TRAILER}: {ns}/{}\n",
            c.name,
            edit.old,
            edit.line,
            found.version_place(place).path(),
            edit.old,
            c.name,
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
    Ok((done, None))
}

/// The campaign as its trailers name it: `namespace/name`.
fn campaign_name(u: &ClusterUpgrade) -> String {
    let (ns, name) = namespaced_name(&u.metadata);
    format!("{ns}/{name}")
}

/// The commit that already carries `c`'s change to `target` (made by a run killed before it
/// recorded it): the newest commit with the campaign's trailers on the branch the campaign
/// writes to (`origin`'s push branch, else `HEAD`) at which the cluster holds the target.
fn made_commit(
    dir: &Path,
    settings: &Settings<'_>,
    u: &ClusterUpgrade,
    place: &VersionPlace,
    target: &str,
    c: &ClusterObject,
) -> Option<String> {
    let repo = upkeep_git::Repo::open(dir).ok()?;
    let g = u.spec.git_ops.as_ref();
    let (tip, path) = if settings.push {
        let branch = g
            .and_then(|g| g.push.as_ref())
            .and_then(|p| p.branch.clone())
            .or_else(|| repo.head_branch())?;
        (
            repo.remote_branch(&branch).ok()??,
            g.and_then(|g| g.path.as_deref()).unwrap_or(""),
        )
    } else {
        // Local commits are made wherever the cluster's manifest is.
        (repo.head_commit()?, "")
    };
    let wanted = ClusterTarget {
        namespace: c.namespace.clone(),
        name: c.name.clone(),
        version: target.to_owned(),
    };
    let campaign = campaign_name(u);
    match upkeep_git::clusters::campaign_commit(&repo, tip, path, place, &campaign, &wanted) {
        Ok(found) => found.map(|oid| oid.to_string()),
        Err(e) => {
            eprintln!(
                "warning: ClusterUpgrade {campaign}: cluster {}: looking for the commit already made: {e}",
                c.name
            );
            None
        }
    }
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
            _ => None,
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
            Ok(written) => {
                eprintln!(
                    "{who}: cluster {}: patched {} → {target}",
                    c.name,
                    written.map_or_else(|| place.path(), |w| w.place)
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

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;
    use upkeep_core::rollout::{CampaignState, ClusterPlan};

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn plan_of(step: Step) -> Plan {
        Plan {
            clusters: vec![ClusterPlan {
                name: "a".into(),
                stage: None,
                step,
                from: Some("1.0.0".into()),
                expected_start: None,
                announce: false,
            }],
            state: CampaignState::Running,
            outcome: None,
            finished_at: None,
            next_check: None,
            reason: None,
        }
    }

    fn recorded(state: &str) -> BTreeMap<String, CampaignCluster> {
        BTreeMap::from([(
            "a".to_owned(),
            CampaignCluster {
                state: state.to_owned(),
                triggered_at: Some(t("2026-01-01T00:00:00Z")),
                from: Some("1.0.0".into()),
                to: Some("2.0.0".into()),
                reason: (state == "Triggered").then(|| NOT_OBSERVED.to_owned()),
                history: Some(7),
                ..CampaignCluster::default()
            },
        )])
    }

    /// One case's expectation: the entry written (state, reason, triggered now, what goes
    /// into the log), or `None` when nothing is written.
    type Want = Option<(
        &'static str,
        Option<&'static str>,
        bool,
        Option<&'static str>,
    )>;

    #[test]
    fn entries_record_what_the_plan_says_and_what_the_log_gets() {
        let now = t("2026-01-01T01:00:00Z");
        let timeout = Step::Failed {
            reason: FailReason::Timeout {
                after: SignedDuration::from_hours(1),
            },
            at: now,
        };
        // (plan step, recorded state, observing, want, reason)
        let cases: Vec<(Step, Option<&str>, bool, Want, &str)> = vec![
            (
                Step::Trigger,
                None,
                false,
                Some(("Triggered", Some(NOT_OBSERVED), true, None)),
                "a start is recorded with its trigger time; unobserved, the reason says so",
            ),
            (
                Step::Trigger,
                None,
                true,
                Some(("Triggered", None, true, None)),
                "observed: no not-observed reason",
            ),
            (
                Step::Triggered,
                Some("Triggered"),
                false,
                None,
                "nothing changed: nothing written (no churn every pass)",
            ),
            (
                Step::Succeeded { at: now },
                Some("Upgrading"),
                true,
                Some(("Succeeded", None, false, Some("Succeeded"))),
                "a running cluster that finished appends its outcome to the log",
            ),
            (
                timeout.clone(),
                Some("Triggered"),
                false,
                Some((
                    "Failed",
                    Some(
                        "not ready 1h after the trigger (not observed: pass --kubeconfig to see cluster status)",
                    ),
                    false,
                    Some("Failed"),
                )),
                "an unobserved timeout says the cluster was not observed",
            ),
            (
                Step::Failed {
                    reason: FailReason::Recorded("boom".into()),
                    at: now,
                },
                Some("Failed"),
                true,
                Some(("Failed", Some("boom"), false, None)),
                "a terminal state read back: no second outcome in the log",
            ),
        ];
        for (step, state, observing, want, reason) in cases {
            let before = state.map(recorded).unwrap_or_default();
            let got = entries(&plan_of(step), &before, Some("2.0.0"), observing, now);
            let got = got.first().map(|u| {
                (
                    u.entry.state.as_str(),
                    u.entry.reason.as_deref(),
                    u.entry.triggered_at == Some(now),
                    match &u.history {
                        Some(CampaignHistory::Finished { outcome, .. }) => Some(outcome.as_str()),
                        Some(CampaignHistory::Triggered(_)) => Some("Triggered"),
                        None => None,
                    },
                )
            });
            assert_eq!(got, want, "{reason}");
        }
    }

    /// (decision, problem, invalid, want, reason)
    type ReleaseCase<'a> = (
        Option<&'a Decision>,
        Option<&'a str>,
        Option<String>,
        Result<&'a str, &'a str>,
        &'a str,
    );

    #[test]
    fn a_release_ref_resolves_to_the_policy_s_decision_or_says_why_not() {
        let decision = |selected: Option<&str>, held: Option<(&str, &str)>| Decision {
            range: "^2".into(),
            considered: 4,
            ignored: 1,
            allow: upkeep_git::marked_fields::PolicyDecision {
                selected: selected.map(ToOwned::to_owned),
                held: held.map(|(tag, until)| (tag.to_owned(), t(until))),
                ..Default::default()
            },
        };
        let allowed = decision(Some(" 2.1.0 "), None);
        let none = decision(None, None);
        let held = decision(None, Some(("2.2.0", "2026-01-02T00:00:00Z")));
        // (decision, problem, invalid, want, reason)
        let cases: Vec<ReleaseCase<'_>> = vec![
            (
                Some(&allowed),
                None,
                None,
                Ok("2.1.0"),
                "the latest allowed version, as written (trimmed, as the controller trims latestVersion)",
            ),
            (
                Some(&none),
                None,
                None,
                Err(
                    "VersionPolicy org/p allows no version (4 tags considered, 1 not versions for this policy)",
                ),
                "no allowed version: says so",
            ),
            (
                Some(&held),
                None,
                None,
                Err(
                    "VersionPolicy org/p allows no version (4 tags considered, 1 not versions for this policy); 2.2.0 is held by minimumReleaseAge until 2026-01-02 00:00Z",
                ),
                "held back: says until when",
            ),
            (
                None,
                Some("VersionPolicy org/p: its ChartSource org/s could not be read: boom"),
                None,
                Err("VersionPolicy org/p: its ChartSource org/s could not be read: boom"),
                "the source is unreadable: the fleet's reason",
            ),
            (
                None,
                None,
                Some("is invalid (f.yaml:3: bad)".into()),
                Err("VersionPolicy org/p is invalid (f.yaml:3: bad)"),
                "the policy did not load",
            ),
            (
                None,
                None,
                None,
                Err("VersionPolicy org/p (spec.releaseRef) is not in the repository"),
                "no such policy",
            ),
        ];
        for (d, problem, invalid, want, reason) in cases {
            let got = release_from("org", "p", d, problem, invalid);
            assert_eq!(got.as_deref().map_err(String::as_str), want, "{reason}");
        }
    }

    #[test]
    fn a_finished_campaign_keeps_its_first_finish_time() {
        let t0 = t("2026-01-01T00:00:00Z");
        let now = t("2026-01-01T05:00:00Z");
        let finished = |outcome, at| Plan {
            state: CampaignState::Finished,
            outcome: Some(outcome),
            finished_at: Some(at),
            ..plan_of(Step::Succeeded { at })
        };
        let recorded = |outcome: &str| CampaignStatus {
            state: "Finished".into(),
            outcome: Some(outcome.into()),
            finished_at: Some(t0),
        };
        // (plan, recorded, want finishedAt, reason)
        let cases = [
            (
                finished(CampaignOutcome::Succeeded, now),
                None,
                Some(now),
                "first finish: the plan's time",
            ),
            (
                finished(CampaignOutcome::Succeeded, now),
                Some(recorded("Succeeded")),
                Some(t0),
                "still finished the same way: the recorded time stays (soak counts from it)",
            ),
            (
                finished(CampaignOutcome::Failed, now),
                Some(recorded("Succeeded")),
                Some(now),
                "finished differently: a new finish",
            ),
            (
                plan_of(Step::Triggered),
                Some(recorded("Succeeded")),
                None,
                "running again: not finished",
            ),
        ];
        for (plan, before, want, reason) in cases {
            assert_eq!(
                campaign_status(&plan, before.as_ref()).finished_at,
                want,
                "{reason}"
            );
        }
    }
}
