//! Act: the writes a decision calls for, in the order that keeps a restart safe —
//! announcements (recorded only when they went out), the status naming every cluster about to
//! start (record before act), silences, then the patches (or the GitOps commit), the final
//! status, Events and metrics. Side effects that are not the upgrade itself never block it.

use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use upkeep_api::cluster_upgrade::{ClusterState, ClusterUpgradeStatus, Trigger, VersionSource};
use upkeep_api::version_place::VersionPlaceSpec;
use upkeep_api::{ClusterObject, ClusterUpgrade};
use upkeep_core::rollout::{self, ClusterPhase};
use upkeep_git::clusters::ClusterTarget;

use super::decide::{Decided, Note, desired_status, next_action, transitions};
use super::{
    GITOPS_FAILED, PATCH_FAILED, PATCHES_IN_FLIGHT, SILENCE_CREATED_BY, SILENCE_GRACE, Snapshot,
    UpgradeSettings, cluster_resource,
};
use crate::cluster_app;
use crate::framework::conditions::{Outcome, not_ready as not_ready_conditions, with_outcome};
use crate::framework::{Error, FIELD_MANAGER};

/// Carries out a plan (see the module docs).
pub(super) async fn act(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    before: &ClusterUpgradeStatus,
    snapshot: &Snapshot,
    decided: &Decided<'_>,
    now: Timestamp,
) -> Result<Action, Error> {
    let target = decided.inputs.target.as_deref();
    let announced = announce_all(u, object, decided).await;
    let mut wanted = desired_status(object, before, &decided.plan, target, &announced, now);
    // Record before act.
    let recorded = if decided.starting() {
        write_status(u, object, before, &wanted).await?;
        wanted.clone()
    } else {
        before.clone()
    };
    // Silences first (alerts are muted before the cluster moves), then the changes.
    let namespace = object.namespace().unwrap_or_default();
    for name in decided.running() {
        if let Some(entry) = wanted.clusters.iter_mut().find(|e| e.name == name) {
            let timeout = decided.inputs.campaign.timeout;
            ensure_silence(u, &namespace, &object.name_any(), entry, timeout, now).await;
        }
    }
    let moves = decided.to_move(&snapshot.clusters);
    let source = decided.inputs.source;
    let (conflict, mut failed) = if object.spec.trigger == Trigger::GitOps {
        (
            false,
            commit(u, object, &namespace, moves, source, &mut wanted).await,
        )
    } else {
        let place = object.spec.version_place.as_ref();
        let (conflict, failed) = patch_all(u, place, &namespace, moves, source).await;
        if let Some(e) = &failed {
            let note = Note {
                reason: PATCH_FAILED,
                warning: true,
                text: e.condition_message(),
            };
            publish(u, object, &note).await;
        }
        (conflict, failed)
    };
    expire_finished(u, before, &wanted).await;
    write_status(u, object, &recorded, &wanted).await?;
    // Events and metrics for what changed.
    for note in transitions(before, &wanted, &decided.plan) {
        publish(u, object, &note).await;
    }
    record_metrics(u, object, before, &wanted, decided);
    if let Some(e) = failed.take() {
        return Err(e);
    }
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
    decided: &Decided<'_>,
) -> Vec<String> {
    let mut announced = Vec::new();
    for cp in decided.plan.clusters.iter().filter(|cp| cp.announce) {
        if announce(u, object, cp, decided.inputs.target.as_deref()).await {
            announced.push(cp.name.clone());
        }
    }
    announced
}

/// Direct patches, [`PATCHES_IN_FLIGHT`] at a time (a window opening over hundreds of clusters
/// should not wait for each round trip in turn): whether one met a conflict, and the first
/// other failure.
async fn patch_all(
    u: &UpgradeSettings,
    place: Option<&VersionPlaceSpec>,
    namespace: &str,
    moves: Vec<(&ClusterObject, String)>,
    source: VersionSource,
) -> (bool, Option<Error>) {
    // One per reconcile: whether the API server serves Apps is asked once.
    let server = cluster_app::Server::new(u.client(), "the API server", FIELD_MANAGER);
    let mut pending = moves.into_iter();
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    let mut results = Vec::new();
    loop {
        while in_flight.len() < PATCHES_IN_FLIGHT {
            let Some((cluster, target)) = pending.next() else {
                break;
            };
            in_flight.push(patch_named(
                u, &server, place, namespace, cluster, source, target,
            ));
        }
        match in_flight.next().await {
            Some(r) => results.push(r),
            None => break,
        }
    }
    let mut conflict = false;
    let mut failed = None;
    for (cluster, result) in results {
        match result {
            Ok(()) => {}
            Err(Error::PatchCluster {
                source: kube::Error::Api(s),
                ..
            }) if s.is_conflict() => {
                tracing::info!(%cluster, "cluster changed since the decision; looking again");
                conflict = true;
            }
            Err(Error::ClusterApp {
                source,
                conflict: true,
                ..
            }) => {
                tracing::info!(%cluster, %source, "the cluster's App keeps changing; looking again");
                conflict = true;
            }
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    (conflict, failed)
}

/// `trigger: GitOps`: one commit for every cluster to move; the commit and pull request are
/// recorded in `wanted`. The failure, if any.
async fn commit(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    namespace: &str,
    moves: Vec<(&ClusterObject, String)>,
    source: VersionSource,
    wanted: &mut ClusterUpgradeStatus,
) -> Option<Error> {
    if moves.is_empty() {
        return None;
    }
    let targets = moves
        .into_iter()
        .map(|(cluster, version)| ClusterTarget {
            namespace: cluster
                .namespace
                .clone()
                .or_else(|| Some(namespace.to_owned())),
            name: cluster.name.clone(),
            version,
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
    for entry in &wanted.clusters {
        let was_terminal = before
            .cluster(&entry.name)
            .and_then(ClusterState::progress)
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

/// Counts the campaign's outcome and the clusters' durations once, and the waiting clusters.
fn record_metrics(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    before: &ClusterUpgradeStatus,
    after: &ClusterUpgradeStatus,
    decided: &Decided<'_>,
) {
    let plan = &decided.plan;
    if before.outcome.is_none()
        && let Some(outcome) = plan.outcome
    {
        u.ctx.metrics.record_cluster_upgrade(outcome.as_str());
    }
    for entry in &after.clusters {
        let was_terminal = before
            .cluster(&entry.name)
            .and_then(ClusterState::progress)
            .is_some_and(|p| p.state.is_terminal());
        if let (false, Some(t), Some(f)) = (was_terminal, &entry.triggered_at, &entry.finished_at) {
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

async fn patch_named(
    u: &UpgradeSettings,
    server: &cluster_app::Server,
    place: Option<&VersionPlaceSpec>,
    namespace: &str,
    cluster: &ClusterObject,
    source: VersionSource,
    target: String,
) -> (String, Result<(), Error>) {
    (
        cluster.name.clone(),
        patch_version(u, server, place, namespace, cluster, source, &target).await,
    )
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
    cluster: &ClusterObject,
    source: VersionSource,
    target: &str,
) -> Result<(), Error> {
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

/// Writes `wanted` when it differs from `current`.
async fn write_status(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    current: &ClusterUpgradeStatus,
    wanted: &ClusterUpgradeStatus,
) -> Result<(), Error> {
    crate::framework::write_status(u.client(), object, Some(current), wanted).await?;
    Ok(())
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
    write_conditions(u, object, before, conditions).await
}

/// `before` with new `conditions`, written; everything else in the status is kept.
async fn write_conditions(
    u: &UpgradeSettings,
    object: &ClusterUpgrade,
    before: &ClusterUpgradeStatus,
    conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
) -> Result<(), Error> {
    let wanted = ClusterUpgradeStatus {
        conditions,
        ..before.clone()
    };
    write_status(u, object, before, &wanted).await
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
    write_conditions(u, object, before, conditions).await
}
