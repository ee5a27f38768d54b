//! Act: the writes a decision calls for, in the order that keeps a restart safe —
//! announcements (recorded only when they went out), the record of every cluster about to
//! start (record before act: `records.rs`), silences, then the patches (or the GitOps commit),
//! the records of every other transition, the bounded status, Events and metrics. Side effects
//! that are not the upgrade itself never block it.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use upkeep_api::ClusterUpgrade;
use upkeep_api::cluster_upgrade::{ClusterState, ClusterUpgradeStatus, Trigger, VersionSource};
use upkeep_api::version_place::VersionPlaceSpec;
use upkeep_core::rollout::{self, ClusterPhase};
use upkeep_git::clusters::ClusterTarget;

use super::decide::{
    Acting, Move, Note, acknowledge, batched, bounded, desired_status, index, next_action,
    transitions,
};
use super::records::Book;
use super::{
    GITOPS_FAILED, PATCH_FAILED, PATCHES_IN_FLIGHT, SILENCE_CREATED_BY, SILENCE_GRACE,
    SPEC_CHANGED_AFTER_FINISH, UpgradeSettings, cluster_resource,
};
use crate::cluster_app;
use crate::framework::conditions::{Outcome, not_ready as not_ready_conditions, with_outcome};
use crate::framework::{Error, FIELD_MANAGER};

/// Events posted at once per reconcile.
const EVENTS_IN_FLIGHT: usize = 8;

/// Carries out a plan (see the module docs). `written`: the status as stored; `object`'s
/// status is that status with the records merged in, what everything that compares before
/// with after reads.
#[allow(clippy::too_many_arguments)]
pub(super) async fn act(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    written: &ClusterUpgradeStatus,
    decided: &Acting,
    moves: Vec<Move>,
    book: &Book<'_>,
    now: Timestamp,
) -> Result<Action, Error> {
    let target = decided.target.as_deref();
    let none = ClusterUpgradeStatus::default();
    let before = object.status.as_ref().unwrap_or(&none);
    let announced = announce_all(u, object, decided).await;
    let mut wanted = desired_status(object, before, &decided.plan, target, &announced, now);
    // Silences first (alerts are muted before the cluster moves), then the changes.
    let namespace = object.namespace().unwrap_or_default();
    silence_running(u, object, decided, &mut wanted, now).await;
    let needed: Vec<String> = moves.iter().map(|m| m.name.clone()).collect();
    let source = decided.source;
    let (conflict, mut failed, changed, patch_failed) = if object.spec.trigger == Trigger::GitOps {
        // Record before act: nothing is committed unless every cluster about to be has its
        // record.
        let triggered = |e: &ClusterState| e.state.as_deref() == Some("Triggered");
        book.sync(&wanted, false, triggered, &HashSet::new())
            .await?;
        let failed = commit(u, object, &namespace, moves, source, &mut wanted).await;
        let changed = if failed.is_none() {
            needed.clone()
        } else {
            Vec::new()
        };
        (false, failed, changed, false)
    } else {
        // Record before act, per cluster: each one's record, then its change.
        let started = start_all(u, object, book, &wanted, moves, source).await;
        if let Some(e) = &started.patch_failed {
            let note = Note {
                reason: PATCH_FAILED,
                warning: true,
                text: e.condition_message(),
            };
            publish(u, object, &note).await;
        }
        let patch_failed = started.patch_failed.is_some();
        let failed = started.patch_failed.or(started.record_failed);
        (started.conflict, failed, started.changed, patch_failed)
    };
    // Only an acknowledged change starts the cluster's clock (and its UpgradeTriggered Event).
    acknowledge(&mut wanted, &changed, &needed, now);
    if let Some(e) = &failed {
        // The cause, where everyone looks: Ready=False with the failed request, Reconciling
        // (retried with backoff); the clusters stay Triggered.
        wanted.conditions = not_ready_conditions(
            &wanted.conditions,
            e.reason(),
            &e.condition_message(),
            object.metadata.generation,
            now,
        );
    }
    // The records of every other transition (and the commit that carried a GitOps change).
    // A Direct change acknowledged now is recorded with its cluster's next record write (the
    // next reconcile's): one request per cluster fewer while a window opens over thousands.
    let defer: HashSet<&str> = if object.spec.trigger == Trigger::GitOps {
        HashSet::new()
    } else {
        changed.iter().map(String::as_str).collect()
    };
    let recorded = book.sync(&wanted, true, |_| true, &defer).await;
    expire_finished(u, before, &wanted).await;
    let mut status = bounded(&wanted);
    if object.spec.trigger == Trigger::GitOps && failed.is_some() {
        status.reason = Some(GITOPS_FAILED.to_owned());
    } else if patch_failed {
        status.reason = Some(PATCH_FAILED.to_owned());
    }
    let version = write_status(u, object, written, &status).await?;
    u.remember(object, version.as_slice(), &status);
    // Events and metrics for what changed: one Event per reason and reconcile (a window
    // opening over thousands of clusters is one UpgradeTriggered naming how many), a few at a
    // time.
    let notes = batched(
        transitions(before, &wanted, &decided.plan),
        &object.name_any(),
    );
    futures_util::stream::iter(notes)
        .for_each_concurrent(EVENTS_IN_FLIGHT, |note| async move {
            publish(u, object, &note).await;
        })
        .await;
    record_metrics(u, object, before, &wanted, decided);
    if let Some(e) = failed.take() {
        return Err(e);
    }
    recorded?;
    Ok(next_action(
        &decided.plan,
        conflict,
        now,
        u.poll,
        u.conflict_retry,
    ))
}

/// Announces every cluster the plan says to; the names of those that went out.
async fn announce_all(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    decided: &Acting,
) -> Vec<String> {
    let mut announced = Vec::new();
    for cp in decided.plan.clusters.iter().filter(|cp| cp.announce) {
        if announce(u, object, cp, decided.target.as_deref()).await {
            announced.push(cp.name.clone());
        }
    }
    announced
}

/// What starting the clusters of a Direct upgrade came to.
struct Started {
    /// A Cluster patch met a conflict (its cached resourceVersion is stale): look again soon.
    conflict: bool,
    /// The first other failed change (an App or values ConfigMap that kept conflicting after
    /// its retries included).
    patch_failed: Option<Error>,
    /// The first record that could not be written (its cluster was not changed).
    record_failed: Option<Error>,
    /// The clusters whose change was acknowledged.
    changed: Vec<String>,
}

/// Starts every Triggered cluster of `wanted`, [`PATCHES_IN_FLIGHT`] at a time, each in
/// turn: its record (record before act), then its change when `moves` has one (a cluster
/// already showing the target needs none). So the first clusters change while the records of
/// the last are still being written, and a cluster whose record fails is not changed.
async fn start_all(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    book: &Book<'_>,
    wanted: &ClusterUpgradeStatus,
    moves: Vec<Move>,
    source: VersionSource,
) -> Started {
    // One per reconcile: whether the API server serves Apps is asked once.
    let server = cluster_app::Server::new(u.client(), "the API server", FIELD_MANAGER);
    let place = object.spec.version_place.as_ref();
    let namespace = object.namespace().unwrap_or_default();
    // By index: the futures then borrow only what this function holds.
    let mut by_name: HashMap<&str, usize> = moves
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    let work: Vec<(usize, Option<usize>)> = wanted
        .clusters
        .iter()
        .enumerate()
        .filter(|(_, e)| e.state.as_deref() == Some("Triggered"))
        .map(|(i, e)| (i, by_name.remove(e.name.as_str())))
        .collect();
    let (server, namespace, moves) = (&server, namespace.as_str(), &moves);
    let mut results = futures_util::stream::iter(work)
        .map(|(i, change)| {
            let entry = &wanted.clusters[i];
            let change = change.map(|m| &moves[m]);
            async move {
                if let Err(e) = book.sync_entry(entry, wanted).await {
                    return (entry.name.clone(), Err(e), false);
                }
                let Some(cluster) = change else {
                    return (entry.name.clone(), Ok(()), false);
                };
                let r = patch_version(u, server, place, namespace, cluster, source).await;
                (entry.name.clone(), r, true)
            }
        })
        .buffer_unordered(PATCHES_IN_FLIGHT);
    let mut started = Started {
        conflict: false,
        patch_failed: None,
        record_failed: None,
        changed: Vec::new(),
    };
    while let Some((cluster, result, patched)) = results.next().await {
        match result {
            Ok(()) if patched => started.changed.push(cluster),
            Ok(()) => {}
            Err(e) if !patched => {
                tracing::warn!(%cluster, error = %e, "recording the cluster's upgrade failed; not changed, retrying with backoff");
                started.record_failed.get_or_insert(e);
            }
            Err(Error::PatchCluster {
                source: kube::Error::Api(s),
                ..
            }) if s.is_conflict() => {
                tracing::info!(%cluster, "cluster changed since the decision; looking again");
                started.conflict = true;
            }
            Err(e) => {
                tracing::warn!(%cluster, error = %e, "changing the cluster's version failed; retrying with backoff");
                started.patch_failed.get_or_insert(e);
            }
        }
    }
    started
}

/// Makes sure every cluster starting, started or upgrading has its silence (when silences
/// are configured).
async fn silence_running(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    decided: &Acting,
    wanted: &mut ClusterUpgradeStatus,
    now: Timestamp,
) {
    if u.silences.is_none() {
        return;
    }
    let namespace = object.namespace().unwrap_or_default();
    let running: HashSet<&str> = decided.running().collect();
    let timeout = decided.timeout;
    for entry in &mut wanted.clusters {
        if running.contains(entry.name.as_str()) {
            ensure_silence(u, &namespace, &object.name_any(), entry, timeout, now).await;
        }
    }
}

/// `trigger: GitOps`: one commit for every cluster to move; the commit and pull request are
/// recorded in `wanted`. The failure, if any.
async fn commit(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    namespace: &str,
    moves: Vec<Move>,
    source: VersionSource,
    wanted: &mut ClusterUpgradeStatus,
) -> Option<Error> {
    if moves.is_empty() {
        return None;
    }
    let targets = moves
        .into_iter()
        .map(|m| ClusterTarget {
            namespace: m.namespace.or_else(|| Some(namespace.to_owned())),
            name: m.name,
            version: m.target,
        })
        .collect();
    match super::gitops::write(u, object, targets, source).await {
        Ok(run) => {
            u.ctx.metrics.record_push(if run.commit.is_some() {
                "pushed"
            } else {
                "up_to_date"
            });
            if run.commit.is_some() {
                wanted.last_push_commit = run.commit;
            }
            if run.pull_request.is_some() {
                wanted.pull_request = run.pull_request;
            }
            None
        }
        Err(e) => {
            u.ctx.metrics.record_push("error");
            let note = Note {
                reason: GITOPS_FAILED,
                warning: true,
                text: e.to_string(),
            };
            publish(u, object, &note).await;
            Some(e)
        }
    }
}

/// Expires the silences of clusters that finished in this reconcile.
async fn expire_finished(
    u: &UpgradeSettings,
    before: &ClusterUpgradeStatus,
    wanted: &ClusterUpgradeStatus,
) {
    let before = index(before);
    for entry in &wanted.clusters {
        let was_terminal = before
            .get(entry.name.as_str())
            .and_then(|c| c.progress())
            .is_some_and(|p| p.state.is_terminal());
        let terminal = entry
            .state
            .as_deref()
            .and_then(ClusterPhase::parse)
            .is_some_and(ClusterPhase::is_terminal);
        if terminal && !was_terminal {
            expire_silence(u, entry).await;
        }
    }
}

/// Counts each cluster's end (by outcome) and duration once, and the waiting clusters (none,
/// once the campaign finished: its gauges are cleared).
fn record_metrics(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    before: &ClusterUpgradeStatus,
    after: &ClusterUpgradeStatus,
    decided: &Acting,
) {
    let before = index(before);
    for entry in &after.clusters {
        let was_terminal = before
            .get(entry.name.as_str())
            .and_then(|c| c.progress())
            .is_some_and(|p| p.state.is_terminal());
        let ended = entry
            .state
            .as_deref()
            .and_then(ClusterPhase::parse)
            .filter(|p| p.is_terminal());
        if let (false, Some(phase)) = (was_terminal, ended) {
            u.ctx.metrics.record_cluster_upgrade(phase.as_str());
        }
        let started = entry
            .acknowledged_at
            .as_ref()
            .or(entry.triggered_at.as_ref());
        if let (false, Some(t), Some(f)) = (was_terminal, started, &entry.finished_at) {
            u.ctx
                .metrics
                .observe_cluster_upgrade_duration(f.0.duration_since(t.0).as_secs_f64());
        }
    }
    u.set_waiting(
        (object.namespace().unwrap_or_default(), object.name_any()),
        decided.waiting(),
    );
}

/// Changes the version where it lives: for a cluster that is an App (Giant Swarm's
/// convention, or the ClusterUpgrade's `versionPlace`: [`cluster_app::Lookup::from_spec`]) its
/// values key or `spec.version`
/// ([`cluster_app::set_version`]: resourceVersion precondition, conflicts retried on a fresh
/// read), else the Cluster's label or topology version with the resourceVersion the decision
/// was made on.
async fn patch_version(
    u: &UpgradeSettings,
    server: &cluster_app::Server,
    place: Option<&VersionPlaceSpec>,
    namespace: &str,
    cluster: &Move,
    source: VersionSource,
) -> Result<(), Error> {
    let target = cluster.target.as_str();
    let who = format!("{namespace}/{}", cluster.name);
    let app_error = |source: cluster_app::AppError| Error::ClusterApp {
        cluster: who.clone(),
        target: target.to_owned(),
        conflict: source.is_conflict(),
        hint: source.hint(),
        source: Box::new(source),
    };
    let lookup = cluster_app::Lookup::from_spec(place, namespace, &cluster.name);
    if let Some(found) = cluster_app::find(server, namespace, &cluster.name, &lookup)
        .await
        .map_err(app_error)?
    {
        let written = cluster_app::set_version(
            server,
            found,
            namespace,
            &cluster.name,
            &lookup,
            target,
            false,
        )
        .await
        .map_err(app_error)?;
        tracing::info!(cluster = %who, target, place = %written.place, changed = written.changed, attempts = written.attempts, "version written");
        return Ok(());
    }
    let api: Api<DynamicObject> = Api::namespaced_with(u.client(), namespace, &cluster_resource());
    let mut patch = match source {
        VersionSource::Label => serde_json::json!({
            "metadata": {"labels": {upkeep_api::cluster::RELEASE_VERSION_LABEL: target}}
        }),
        VersionSource::Topology => serde_json::json!({
            "metadata": {}, "spec": {"topology": {"version": target}}
        }),
    };
    if let Some(rv) = &cluster.resource_version {
        patch["metadata"]["resourceVersion"] = serde_json::json!(rv);
    }
    api.patch(
        &cluster.name,
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        },
        &Patch::Merge(patch),
    )
    .await
    .map_err(|source| Error::PatchCluster {
        cluster: format!("{namespace}/{}", cluster.name),
        target: target.to_owned(),
        source,
    })?;
    tracing::info!(cluster = %format!("{namespace}/{}", cluster.name), target, "version patched");
    Ok(())
}

/// Makes sure a running cluster's alerts are silenced (when silences are configured): reuses
/// the recorded silence, or one found by its matchers, or creates one until the upgrade's
/// timeout plus [`SILENCE_GRACE`].
async fn ensure_silence(
    u: &UpgradeSettings,
    namespace: &str,
    upgrade: &str,
    entry: &mut ClusterState,
    timeout: SignedDuration,
    now: Timestamp,
) {
    let Some(s) = &u.silences else { return };
    if entry.silence_id.is_some() {
        return;
    }
    let from = entry.triggered_at.as_ref().map_or(now, |t| t.0);
    let Ok(ends_at) = from
        .checked_add(timeout)
        .and_then(|t| t.checked_add(SILENCE_GRACE))
    else {
        return;
    };
    let matchers = [(s.label.as_str(), entry.name.as_str())];
    let comment = format!(
        "upgrade of cluster {namespace}/{} to {} (ClusterUpgrade {namespace}/{upgrade})",
        entry.name,
        entry.to_release.as_deref().unwrap_or("?")
    );
    match s
        .alertmanager
        .ensure_silence(&matchers, SILENCE_CREATED_BY, &comment, ends_at)
        .await
    {
        Ok(id) => entry.silence_id = Some(id),
        Err(error) => {
            tracing::warn!(%error, cluster = %entry.name, "creating the silence; retrying on the next reconcile");
        }
    }
}

/// Expires a finished cluster's silence; a failure is logged (the silence ends by itself).
async fn expire_silence(u: &UpgradeSettings, entry: &ClusterState) {
    let (Some(s), Some(id)) = (&u.silences, &entry.silence_id) else {
        return;
    };
    if let Err(error) = s.alertmanager.expire(id).await {
        tracing::warn!(%error, cluster = %entry.name, "expiring the silence; it ends on its own");
    }
}

/// Posts an announcement to the webhook (when the spec names one). Returns whether it is done:
/// a failed webhook is tried again on the next reconcile.
async fn announce(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    cp: &rollout::ClusterPlan,
    target: Option<&str>,
) -> bool {
    let Some(url) = object
        .spec
        .announce
        .as_ref()
        .and_then(|a| a.webhook_url.as_deref())
    else {
        return true;
    };
    let Some(webhook) = &u.webhook else {
        tracing::warn!(cluster = %cp.name, "announce.webhookUrl given but the controller has no webhook client");
        return true;
    };
    let body = serde_json::json!({
        "cluster": cp.name,
        "upgrade": format!("{}/{}", object.namespace().unwrap_or_default(), object.name_any()),
        "from": cp.from,
        "to": target,
        "expectedStart": cp.expected_start.map(|t| t.to_string()),
    });
    match webhook.notify(url, &body).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, cluster = %cp.name, "announcement webhook failed; retrying on the next reconcile");
            false
        }
    }
}

/// Publishes one Event on the ClusterUpgrade; a failure is logged, not retried (the status
/// already says what happened).
async fn publish(u: &UpgradeSettings, object: &ClusterUpgrade, note: &Note) {
    let reference = object.object_ref(&());
    u.ctx
        .publish(
            &reference,
            note.warning,
            note.reason,
            "UpgradeCluster",
            &note.text,
        )
        .await;
}

/// Writes `wanted` when it differs from `current`; the resourceVersion after the write, if
/// it wrote.
async fn write_status(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    current: &ClusterUpgradeStatus,
    wanted: &ClusterUpgradeStatus,
) -> Result<Option<String>, Error> {
    let version =
        crate::framework::write_status_version(u.client(), object, Some(current), wanted).await?;
    u.ctx
        .announce_stalled(object, &current.conditions, &wanted.conditions)
        .await;
    Ok(version)
}

/// Ready=False + Stalled: the spec must change before anything happens. Everything else in
/// the status is kept.
pub(super) async fn stall(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    before: &ClusterUpgradeStatus,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Result<(), Error> {
    let conditions = with_outcome(
        &before.conditions,
        &Outcome::Stalled {
            reason: reason.to_owned(),
            message: message.to_owned(),
        },
        object.metadata.generation,
        now,
    );
    write_conditions(u, object, before, reason, conditions).await
}

/// `before` with new `conditions` and `reason`, and a state (`Pending` when none was
/// recorded yet), written; everything else in the status is kept.
async fn write_conditions(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    before: &ClusterUpgradeStatus,
    reason: &str,
    conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
) -> Result<(), Error> {
    let wanted = ClusterUpgradeStatus {
        conditions,
        reason: Some(reason.to_owned()),
        state: before
            .state
            .clone()
            .or_else(|| Some(rollout::CampaignState::Pending.as_str().to_owned())),
        ..before.clone()
    };
    write_status(u, object, before, &wanted).await?;
    Ok(())
}

/// Ready=False without Stalled: something outside the spec is missing and may appear.
pub(super) async fn not_ready(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    before: &ClusterUpgradeStatus,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Result<(), Error> {
    let conditions = not_ready_conditions(
        &before.conditions,
        reason,
        message,
        object.metadata.generation,
        now,
    );
    write_conditions(u, object, before, reason, conditions).await
}

/// A Finished campaign is final: it is not planned again and nothing is changed. A spec edit
/// after the finish (a new generation) is answered with [`SPEC_CHANGED_AFTER_FINISH`] saying
/// the edit is ignored and how to retry, every condition's `observedGeneration` moves to the
/// generation seen (kstatus then reads the object as current: Ready keeps the outcome), and a
/// Warning Event goes out once per generation. The campaign's waiting gauges are cleared.
pub(super) async fn finished(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    before: &ClusterUpgradeStatus,
    now: Timestamp,
) -> Result<(), Error> {
    let key = (object.namespace().unwrap_or_default(), object.name_any());
    u.set_waiting(key, std::collections::BTreeMap::new());
    let Some(wanted) = super::decide::finished_status(object, before, now) else {
        return Ok(());
    };
    let written = write_status(u, object, before, &wanted).await?;
    u.remember(object, written.as_slice(), &wanted);
    if written.is_some()
        && let Some(c) = wanted
            .conditions
            .iter()
            .find(|c| c.type_ == SPEC_CHANGED_AFTER_FINISH)
    {
        tracing::warn!(upgrade = %format!("{}/{}", object.namespace().unwrap_or_default(), object.name_any()), message = %c.message, "spec changed after the campaign finished; ignored");
        let note = Note {
            reason: SPEC_CHANGED_AFTER_FINISH,
            warning: true,
            text: c.message.clone(),
        };
        publish(u, object, &note).await;
    }
    Ok(())
}
