//! Scheduled upgrades from kubectl-gs annotations: a Cluster carrying
//! `alpha.giantswarm.io/update-schedule-target-release` and `…-target-time` is upgraded at that
//! time as a one-cluster ClusterUpgrade.
//!
//! Why it is shaped this way:
//! - The upgrade itself is an ordinary ClusterUpgrade (`scheduled-<cluster>`, labelled
//!   `upkeep.dev/scheduled-upgrade: <cluster>`, owned by the Cluster) made by
//!   `upkeep_api::scheduled::upgrade_for`. The ClusterUpgrade controller then decides and acts
//!   as for any other (freeze, the governing schedule and its exclusions, record-before-act,
//!   status, Events, metrics), and `upkeep status`/`plan` show it. This module only keeps that
//!   object in step with the annotations and reports back on the Cluster.
//! - What Giant Swarm's upgrade-schedule-operator did is kept: the time is reached at or after
//!   the annotation's minute (a time in the past starts at once, if allowed); the annotations
//!   are removed once the upgrade is done (here: once it Succeeded, or the cluster already
//!   shows the target); removing (one of) them before the start cancels it, changing them
//!   reschedules it. Unlike the operator (which logged and retried forever), an invalid value
//!   is a Warning Event on the Cluster naming the annotation, the value and a fix.
//! - The ClusterUpgrade's spec is never edited: a changed schedule deletes the pending one and
//!   creates the new one (the controller may create and delete ClusterUpgrades, never patch
//!   their spec). One already running is left to finish; its annotations then stay until a
//!   person looks (an Event says so).
//! - Refusals (the start time passed but the cluster waits: frozen, outside its window, in an
//!   exclusion), failures and the removal of the annotations are Events on the Cluster, each
//!   published once per distinct message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
    PostParams, Preconditions,
};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};

use crate::cluster_cache::{CachedCluster, ClusterCache, ClusterChanges, ClusterWatch};
use kube::{Resource as _, ResourceExt};
use upkeep_api::scheduled::{
    SCHEDULED_LABEL, Scheduled, TARGET_RELEASE, TARGET_TIME, upgrade_for, upgrade_name,
};
use upkeep_api::{ClusterObject, ClusterUpgrade};
use upkeep_core::rollout::ClusterPhase;

use crate::framework::{Context, Error, FIELD_MANAGER, Shared};

/// Event reason: the ClusterUpgrade for the annotations was created.
pub const SCHEDULED: &str = "UpgradeScheduled";
/// Event reason: the annotations cannot be read.
pub const INVALID: &str = "ScheduledUpgradeInvalid";
/// Event reason: the time has come, but the cluster may not start (frozen, window, exclusion).
pub const REFUSED: &str = "ScheduledUpgradeRefused";
/// Event reason: the scheduled upgrade failed or was skipped; the annotations stay.
pub const FAILED: &str = "ScheduledUpgradeFailed";
/// Event reason: the pending upgrade was cancelled (annotations removed or changed).
pub const CANCELLED: &str = "ScheduledUpgradeCancelled";
/// Event reason: done; the annotations were removed.
pub const DONE: &str = "ScheduledUpgradeDone";

/// The Cluster API kind this controller watches and annotates.
fn cluster_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        upkeep_api::cluster::CLUSTER_API_GROUP,
        "v1beta1",
        "Cluster",
    ))
}

/// What a reconcile gets: the shared context and the ClusterUpgrades made from annotations.
pub struct ScheduledContext {
    pub ctx: Arc<Context>,
    upgrades: Store<ClusterUpgrade>,
    resource: ApiResource,
    /// The last note published per cluster, so each is published once.
    noted: Mutex<HashMap<(String, String), String>>,
}

impl std::fmt::Debug for ScheduledContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScheduledContext").finish_non_exhaustive()
    }
}

impl Shared for ScheduledContext {
    fn context(&self) -> &Context {
        &self.ctx
    }
}

/// What to do about one Cluster, decided from its annotations and its ClusterUpgrade.
#[derive(Debug)]
pub enum Step {
    Nothing,
    /// Create the ClusterUpgrade the annotations ask for.
    Create(Box<ClusterUpgrade>),
    /// Delete the (pending or finished) ClusterUpgrade, then look again; `cancelled`: say so.
    Delete {
        cancelled: bool,
    },
    /// Remove the annotations: the upgrade is done.
    RemoveAnnotations {
        note: String,
    },
    /// Tell on the Cluster (`warning`, reason, note).
    Note(bool, &'static str, String),
}

/// The recorded phase and reason of the cluster in its ClusterUpgrade. The campaign's bounded
/// status does not list a succeeded cluster (its record does): in this one-cluster campaign a
/// succeeded count is the cluster's success.
fn entry(u: &ClusterUpgrade, cluster: &str) -> (Option<ClusterPhase>, Option<String>) {
    let e = u.status.as_ref().and_then(|s| s.cluster(cluster));
    let succeeded = u
        .status
        .as_ref()
        .and_then(|s| s.counts)
        .is_some_and(|c| c.succeeded > 0);
    (
        e.and_then(|e| e.state.as_deref())
            .and_then(ClusterPhase::parse)
            .or(succeeded.then_some(ClusterPhase::Succeeded)),
        e.and_then(|e| e.reason.clone()),
    )
}

/// Whether `u` is what `want` asks for (same target and start).
fn same(u: &ClusterUpgrade, want: &ClusterUpgrade) -> bool {
    u.spec.target_version == want.spec.target_version && u.spec.start_time == want.spec.start_time
}

/// Pure: what to do about `cluster` given its ClusterUpgrade (if any) at `now`.
pub fn decide(cluster: &ClusterObject, existing: Option<&ClusterUpgrade>, now: Timestamp) -> Step {
    let started = |u: &ClusterUpgrade| matches!(entry(u, &cluster.name).0, Some(p) if p != ClusterPhase::Waiting);
    match cluster.scheduled() {
        None => match existing {
            Some(u) if !started(u) => Step::Delete { cancelled: true },
            _ => Step::Nothing,
        },
        Some(Err(e)) => match existing {
            Some(u) if !started(u) => Step::Delete { cancelled: true },
            _ => Step::Note(true, INVALID, format!("{e}\nhint: {}", e.hint())),
        },
        Some(Ok(s)) => {
            let want = upgrade_for(cluster, &s);
            match existing {
                None => Step::Create(Box::new(want)),
                Some(u) if same(u, &want) => follow(cluster, u, &s, now),
                Some(u) if !started(u) || is_final(u, &cluster.name) => Step::Delete {
                    cancelled: !started(u),
                },
                Some(_) => Step::Note(
                    false,
                    SCHEDULED,
                    format!(
                        "the annotations changed while the scheduled upgrade runs; the new schedule ({} at {}) applies once it has finished",
                        s.target, s.at
                    ),
                ),
            }
        }
    }
}

fn is_final(u: &ClusterUpgrade, cluster: &str) -> bool {
    entry(u, cluster).0.is_some_and(ClusterPhase::is_terminal)
}

/// The Step for a ClusterUpgrade that matches the annotations.
fn follow(cluster: &ClusterObject, u: &ClusterUpgrade, s: &Scheduled, now: Timestamp) -> Step {
    let shows = cluster.release_version.as_deref().is_some_and(|v| {
        upkeep_core::version::Version::parse(v.trim())
            == upkeep_core::version::Version::parse(&s.target)
    }) || cluster.topology_version.as_deref().is_some_and(|v| {
        upkeep_core::version::Version::parse(v.trim())
            == upkeep_core::version::Version::parse(&s.target)
    });
    let (phase, reason) = entry(u, &cluster.name);
    let reason = reason.unwrap_or_default();
    match phase {
        Some(ClusterPhase::Succeeded) => Step::RemoveAnnotations {
            note: format!(
                "upgraded to {}; removed the annotations {TARGET_RELEASE} and {TARGET_TIME}",
                s.target
            ),
        },
        Some(ClusterPhase::Skipped) if shows => Step::RemoveAnnotations {
            note: format!(
                "already at {}; removed the annotations {TARGET_RELEASE} and {TARGET_TIME}",
                s.target
            ),
        },
        Some(ClusterPhase::Skipped | ClusterPhase::Failed) => Step::Note(
            true,
            FAILED,
            format!(
                "scheduled upgrade to {}: {reason}; the annotations stay until they are removed or changed",
                s.target
            ),
        ),
        Some(ClusterPhase::Waiting) if now >= s.at => Step::Note(
            true,
            REFUSED,
            format!(
                "scheduled upgrade to {} (due {}) may not start: {reason}",
                s.target, s.at
            ),
        ),
        _ => stalled(u).map_or(Step::Nothing, |m| Step::Note(true, FAILED, m)),
    }
}

/// The message of a Stalled ClusterUpgrade (an invalid spec), if it is.
fn stalled(u: &ClusterUpgrade) -> Option<String> {
    u.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled" && c.status == "True" && c.reason == "InvalidSpec")
        .map(|c| format!("ClusterUpgrade {}: {}", u.name_any(), c.message))
}

/// Reconciles one Cluster (see the module docs).
pub async fn reconcile(
    object: Arc<CachedCluster>,
    s: Arc<ScheduledContext>,
) -> Result<Action, Error> {
    if object.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let cluster = object.to_object();
    if cluster.name.is_empty() {
        return Ok(Action::await_change());
    }
    let ns = object.namespace().unwrap_or_else(|| "default".to_owned());
    let key = ObjectRef::new(&upgrade_name(&cluster.name)).within(&ns);
    let existing = s.upgrades.get(&key);
    let existing = existing.filter(|u| {
        u.labels().get(SCHEDULED_LABEL).map(String::as_str) == Some(cluster.name.as_str())
    });
    let now = s.ctx.now();
    let (action, settled) = act(&s, &object, &cluster, existing, now).await?;
    // Look again when the time comes: a refusal is told once the start time has passed.
    Ok(match cluster.scheduled() {
        Some(Ok(sch)) if settled && sch.at > now => {
            let wait = crate::framework::until(now, sch.at) + std::time::Duration::from_secs(1);
            Action::requeue(wait.min(std::time::Duration::from_secs(24 * 3600)))
        }
        _ => action,
    })
}

async fn act(
    s: &ScheduledContext,
    object: &CachedCluster,
    cluster: &ClusterObject,
    existing: Option<Arc<ClusterUpgrade>>,
    now: Timestamp,
) -> Result<(Action, bool), Error> {
    match decide(cluster, existing.as_deref(), now) {
        Step::Nothing => Ok((Action::await_change(), true)),
        Step::Create(mut want) => Ok((create(s, object, &mut want).await?, false)),
        Step::Delete { cancelled } => {
            let Some(u) = existing else {
                return Ok((Action::await_change(), true));
            };
            delete(s, &u).await?;
            if cancelled {
                let note = format!(
                    "cancelled the pending scheduled upgrade {} (the annotations were removed or changed)",
                    u.name_any()
                );
                note_once(s, object, false, CANCELLED, &note).await;
            }
            Ok((Action::requeue(std::time::Duration::from_secs(1)), false))
        }
        Step::RemoveAnnotations { note } => {
            remove_annotations(s, object).await?;
            note_once(s, object, false, DONE, &note).await;
            Ok((Action::await_change(), true))
        }
        Step::Note(warning, reason, note) => {
            note_once(s, object, warning, reason, &note).await;
            Ok((Action::await_change(), true))
        }
    }
}

async fn create(
    s: &ScheduledContext,
    cluster: &CachedCluster,
    want: &mut ClusterUpgrade,
) -> Result<Action, Error> {
    let ns = want.namespace().unwrap_or_default();
    want.meta_mut().owner_references = Some(vec![OwnerReference {
        api_version: s.resource.api_version.clone(),
        kind: s.resource.kind.clone(),
        name: cluster.name_any(),
        uid: cluster.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }]);
    let api: Api<ClusterUpgrade> = Api::namespaced(s.ctx.client(), &ns);
    match api
        .create(
            &PostParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PostParams::default()
            },
            want,
        )
        .await
    {
        Ok(_) => {
            let note = format!(
                "scheduled upgrade to {} at {} as ClusterUpgrade {}",
                want.spec.target_version.as_deref().unwrap_or("?"),
                want.spec.start_time.as_deref().unwrap_or("?"),
                want.name_any()
            );
            note_once(s, cluster, false, SCHEDULED, &note).await;
            Ok(Action::await_change())
        }
        // Made meanwhile (or not yet in the store): its watch event brings us back.
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(Action::requeue(s.ctx.retry_after)),
        Err(source) => Err(Error::Create {
            kind: "ClusterUpgrade",
            object: format!("{ns}/{}", want.name_any()),
            source,
        }),
    }
}

async fn delete(s: &ScheduledContext, u: &ClusterUpgrade) -> Result<(), Error> {
    let ns = u.namespace().unwrap_or_default();
    let api: Api<ClusterUpgrade> = Api::namespaced(s.ctx.client(), &ns);
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: u.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&u.name_any(), &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(source) => Err(Error::Delete {
            kind: "ClusterUpgrade",
            object: format!("{ns}/{}", u.name_any()),
            source,
        }),
    }
}

/// Removes both annotations, on the Cluster as it was read (a changed Cluster answers 409 and
/// is looked at again with the fresh object).
async fn remove_annotations(s: &ScheduledContext, cluster: &CachedCluster) -> Result<(), Error> {
    let ns = cluster.namespace().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(s.ctx.client(), &ns, &s.resource);
    let patch = serde_json::json!({"metadata": {
        "resourceVersion": cluster.resource_version(),
        "annotations": {TARGET_RELEASE: null, TARGET_TIME: null},
    }});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    api.patch(&cluster.name_any(), &params, &Patch::Merge(patch))
        .await
        .map_err(|source| Error::PatchAnnotations {
            cluster: format!("{ns}/{}", cluster.name_any()),
            source,
        })?;
    Ok(())
}

/// Publishes an Event on the Cluster unless the same note was the last one published for it.
async fn note_once(
    s: &ScheduledContext,
    cluster: &CachedCluster,
    warning: bool,
    reason: &str,
    note: &str,
) {
    let key = (cluster.namespace().unwrap_or_default(), cluster.name_any());
    {
        let Ok(mut noted) = s.noted.lock() else {
            return;
        };
        if noted.get(&key).is_some_and(|n| n == note) {
            return;
        }
        noted.insert(key, note.to_owned());
    }
    let reference = cluster.object_ref(&());
    s.ctx
        .publish(&reference, warning, reason, "ScheduledUpgrade", note)
        .await;
}

/// Runs the scheduled-upgrade controller, with a Cluster watch of its own, until `shutdown`
/// resolves. A process that also runs the ClusterUpgrade controller shares one watch between
/// them: `run_cluster_controllers` in the controllers module.
pub async fn run_scheduled_upgrades(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let mut watch = ClusterWatch::new(&ctx.client());
    let changes = watch.subscribe(false);
    let (cache, fill) = watch.start();
    let run = run_scheduled_upgrades_on(ctx, &cache, changes, shutdown);
    futures_util::pin_mut!(run, fill);
    futures_util::future::select(run, fill).await;
}

/// Runs the scheduled-upgrade controller over a shared Cluster cache (`changes` is this
/// controller's subscription to it) until `shutdown` resolves. Only Clusters that carry a
/// scheduled-upgrade annotation, or have a `scheduled-*` ClusterUpgrade to follow or cancel,
/// are reconciled: the rest of the fleet (nearly all of it) is never looked at, and a
/// ClusterUpgrade of a cluster brings its cluster back through its own watch.
pub async fn run_scheduled_upgrades_on(
    ctx: Arc<Context>,
    clusters: &ClusterCache,
    changes: ClusterChanges,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client();
    let resource = cluster_resource();
    let (upgrades, upgrade_writer) = reflector::store();
    let upgrade_stream = watcher(
        Api::<ClusterUpgrade>::all(client),
        watcher::Config::default().labels(SCHEDULED_LABEL),
    )
    .backoff(crate::framework::watch_backoff())
    .modify(crate::framework::lean::<ClusterUpgrade>)
    .reflect(upgrade_writer)
    .touched_objects();
    let followed = upgrades.clone();
    let changes = changes.filter(move |c| {
        let ours = c.scheduled()
            || c.metadata.name.as_deref().is_some_and(|name| {
                let key = ObjectRef::new(&upgrade_name(name))
                    .within(c.metadata.namespace.as_deref().unwrap_or("default"));
                followed.get(&key).is_some()
            });
        std::future::ready(ours)
    });
    let controller = Controller::for_shared_stream(changes, clusters.store().clone())
        .with_config(crate::framework::controller_config())
        .trigger_backoff(crate::framework::watch_backoff())
        .watches_stream(upgrade_stream, move |u: ClusterUpgrade| {
            let cluster = u.labels().get(SCHEDULED_LABEL).cloned();
            let ns = u.namespace();
            cluster.map(|c| {
                let r = ObjectRef::new(&c);
                match ns {
                    Some(ns) => r.within(&ns),
                    None => r,
                }
            })
        });
    let shell = Arc::new(ScheduledContext {
        ctx,
        upgrades,
        resource,
        noted: Mutex::default(),
    });
    crate::framework::run(controller, "ScheduledUpgrade", reconcile, shell, shutdown).await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use upkeep_api::scheduled::upgrade_for;

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn cluster(annotations: &[(&str, &str)], version: &str) -> ClusterObject {
        ClusterObject {
            name: "c".into(),
            namespace: Some("org".into()),
            release_version: Some(version.into()),
            annotations: annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..ClusterObject::default()
        }
    }

    /// The upgrade the annotations `(release, time)` make, with `c`'s entry in `state`.
    fn upgrade(release: &str, time: &str, state: Option<(&str, &str)>) -> ClusterUpgrade {
        let c = cluster(&[(TARGET_RELEASE, release), (TARGET_TIME, time)], "29.0.0");
        let s = c.scheduled().expect("set").expect("valid");
        let mut u = upgrade_for(&c, &s);
        if let Some((state, reason)) = state {
            u.status = Some(
                serde_json::from_value(
                    json!({"clusters": [{"name": "c", "state": state, "reason": reason}]}),
                )
                .expect("status"),
            );
        }
        u
    }

    fn name(step: &Step) -> String {
        match step {
            Step::Nothing => "Nothing".into(),
            Step::Create(_) => "Create".into(),
            Step::Delete { cancelled } => format!("Delete(cancelled={cancelled})"),
            Step::RemoveAnnotations { .. } => "RemoveAnnotations".into(),
            Step::Note(_, reason, _) => format!("Note({reason})"),
        }
    }

    /// (annotations, current version, the existing upgrade, now, the step, why)
    type Case<'a> = (
        Vec<(&'a str, &'a str)>,
        &'a str,
        Option<ClusterUpgrade>,
        Timestamp,
        &'a str,
        &'a str,
    );

    #[test]
    fn what_the_annotations_and_the_upgrade_call_for() {
        const T: &str = "15 Sep 21 08:00 UTC";
        const LATER: &str = "16 Sep 21 08:00 UTC";
        let before = ts("2021-09-15T07:00:00Z");
        let after = ts("2021-09-15T09:00:00Z");
        let set = [(TARGET_RELEASE, "30.0.0"), (TARGET_TIME, T)];
        let cases: Vec<Case> = vec![
            (
                vec![],
                "29.0.0",
                None,
                after,
                "Nothing",
                "no annotations, no upgrade",
            ),
            (
                set.to_vec(),
                "29.0.0",
                None,
                before,
                "Create",
                "annotations: the upgrade is made",
            ),
            (
                set.to_vec(),
                "29.0.0",
                Some(upgrade("30.0.0", T, Some(("Waiting", "before start time")))),
                before,
                "Nothing",
                "waiting for its time",
            ),
            (
                set.to_vec(),
                "29.0.0",
                Some(upgrade(
                    "30.0.0",
                    T,
                    Some(("Waiting", "frozen until 2099 (audit)")),
                )),
                after,
                "Note(ScheduledUpgradeRefused)",
                "the time has come but it waits: refused",
            ),
            (
                set.to_vec(),
                "30.0.0",
                Some(upgrade("30.0.0", T, Some(("Succeeded", "")))),
                after,
                "RemoveAnnotations",
                "succeeded: the annotations go",
            ),
            (
                set.to_vec(),
                "30.0.0",
                Some(upgrade("30.0.0", T, Some(("Skipped", "already at 30.0.0")))),
                after,
                "RemoveAnnotations",
                "already at the target: done too",
            ),
            (
                set.to_vec(),
                "31.0.0",
                Some(upgrade("30.0.0", T, Some(("Skipped", "already at 31.0.0")))),
                after,
                "Note(ScheduledUpgradeFailed)",
                "above the target: refused, annotations stay",
            ),
            (
                set.to_vec(),
                "29.0.0",
                Some(upgrade("30.0.0", T, Some(("Failed", "timeout")))),
                after,
                "Note(ScheduledUpgradeFailed)",
                "failed: told, annotations stay",
            ),
            (
                set.to_vec(),
                "29.0.0",
                Some(upgrade("30.0.0", T, Some(("Upgrading", "")))),
                after,
                "Nothing",
                "running: nothing to do",
            ),
            (
                vec![(TARGET_RELEASE, "30.0.0"), (TARGET_TIME, LATER)],
                "29.0.0",
                Some(upgrade("30.0.0", T, None)),
                before,
                "Delete(cancelled=true)",
                "changed before the start: the pending one goes",
            ),
            (
                vec![(TARGET_RELEASE, "31.0.0"), (TARGET_TIME, T)],
                "29.0.0",
                Some(upgrade("30.0.0", T, Some(("Upgrading", "")))),
                after,
                "Note(UpgradeScheduled)",
                "changed while running: applies after",
            ),
            (
                vec![(TARGET_RELEASE, "31.0.0"), (TARGET_TIME, T)],
                "30.0.0",
                Some(upgrade("30.0.0", T, Some(("Succeeded", "")))),
                after,
                "Delete(cancelled=false)",
                "a new schedule after a finished one: replaced",
            ),
            (
                vec![],
                "29.0.0",
                Some(upgrade("30.0.0", T, None)),
                before,
                "Delete(cancelled=true)",
                "removed before the start: cancelled",
            ),
            (
                vec![],
                "30.0.0",
                Some(upgrade("30.0.0", T, Some(("Succeeded", "")))),
                after,
                "Nothing",
                "removed after success: the record stays",
            ),
            (
                vec![(TARGET_TIME, T)],
                "29.0.0",
                None,
                after,
                "Note(ScheduledUpgradeInvalid)",
                "one annotation alone",
            ),
            (
                vec![(TARGET_RELEASE, "30.0.0"), (TARGET_TIME, "tomorrow")],
                "29.0.0",
                Some(upgrade("30.0.0", T, None)),
                before,
                "Delete(cancelled=true)",
                "an invalid change cancels the pending one first",
            ),
            (
                vec![(TARGET_RELEASE, "30.0.0"), (TARGET_TIME, "tomorrow")],
                "29.0.0",
                None,
                before,
                "Note(ScheduledUpgradeInvalid)",
                "then it is told",
            ),
        ];
        for (annotations, version, existing, now, want, why) in cases {
            let got = decide(&cluster(&annotations, version), existing.as_ref(), now);
            assert_eq!(name(&got), want, "{why}");
        }
    }

    #[test]
    fn an_invalid_time_is_told_with_the_column_and_a_hint() {
        let c = cluster(
            &[
                (TARGET_RELEASE, "30.0.0"),
                (TARGET_TIME, "15 Sep 2021 08:00 UTC"),
            ],
            "29.0.0",
        );
        let Step::Note(warning, reason, note) = decide(&c, None, ts("2021-01-01T00:00:00Z")) else {
            panic!("a note");
        };
        assert!(warning, "a Warning Event");
        assert_eq!(reason, INVALID);
        assert!(
            note.contains(TARGET_TIME) && note.contains("column 8") && note.contains("hint:"),
            "{note}"
        );
    }

    /// A cached Cluster whose annotations are gone still reads as the cluster it is, so the
    /// pending upgrade is cancelled; one that carries them reads them.
    #[test]
    fn a_cached_cluster_reads_its_annotations() {
        let object = |annotations: serde_json::Value| -> CachedCluster {
            serde_json::from_value(json!({
                "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
                "metadata": {"name": "c", "namespace": "org", "uid": "u1", "resourceVersion": "7",
                             "labels": {"release.giantswarm.io/version": "29.0.0", "stage": "dev"},
                             "annotations": annotations},
                "spec": {"topology": {"version": "v1.30.0"}, "infrastructureRef": {"kind": "AWSCluster"}}
            }))
            .expect("object")
        };
        let plain = object(json!({"upkeep.dev/freeze-until": "2030-01-01T00:00:00Z"}));
        assert!(!plain.scheduled());
        let pending = upgrade("30.0.0", "15 Sep 21 08:00 UTC", None);
        let step = decide(
            &plain.to_object(),
            Some(&pending),
            ts("2021-09-15T07:00:00Z"),
        );
        assert!(
            matches!(step, Step::Delete { cancelled: true }),
            "a pending upgrade of a Cluster whose annotations are gone is cancelled: {step:?}"
        );

        let scheduled = object(json!({
            TARGET_RELEASE: "30.0.0", TARGET_TIME: "15 Sep 21 08:00 UTC",
            "upkeep.dev/freeze-until": "2030-01-01T00:00:00Z", "other": "x"
        }));
        assert!(scheduled.scheduled());
        let c = scheduled.to_object();
        assert_eq!(c.labels.get("stage").map(String::as_str), Some("dev"));
        assert!(
            c.annotations.contains_key(TARGET_RELEASE) && c.annotations.contains_key(TARGET_TIME)
        );
        assert!(c.annotations.contains_key("upkeep.dev/freeze-until"));
        assert!(!c.annotations.contains_key("other"));
        assert_eq!(c.topology_version.as_deref(), Some("v1.30.0"));
        assert!(
            matches!(
                decide(&c, None, ts("2021-09-15T07:00:00Z")),
                Step::Create(_)
            ),
            "the annotations ask for an upgrade"
        );
    }
}
