//! Flux `ImageUpdateAutomation` objects in the cluster, run as `AppUpgradeAutomation`s: the
//! same conversion as for repository files ([`upkeep_api::flux_automation`]: the object, then
//! the `GitRepository` its `spec.sourceRef` names) and the same Git run as
//! AppUpgradeAutomation ([`crate::gitops::run_git`]), with a Flux-shaped status so that
//! `flux get images update` and kstatus-based tooling keep working.
//!
//! Why it is shaped this way:
//! - **Dynamic objects, any served version.** Flux's CRDs are not upkeep's and may serve `v1`
//!   or only `v1beta2`; the controller asks discovery which version is served and watches that
//!   one as [`DynamicObject`]s, converting each with the lenient Flux types. Without the CRD it
//!   does nothing (and says so once).
//! - **Policies as Flux keeps them.** Markers name `ImagePolicy` objects: their
//!   `status.latestRef` (`v1`) or `status.latestImage` (`v1beta2`), written by Flux's
//!   image-reflector-controller (or upkeep's), is what the run writes, beside any upkeep
//!   `VersionPolicy` of the same name (which wins).
//! - **Status written:** `lastAutomationRunTime`, `lastPushCommit`, `lastPushTime`,
//!   `observedPolicies` (the namespace's policies the automation selects, with their latest
//!   `name`/`tag`), `observedGeneration` and the `Ready` (with `Reconciling`/`Stalled`)
//!   conditions. **Not written:** `observedSourceRevision` and `lastHandledReconcileAt`
//!   (upkeep does not act on `reconcile.fluxcd.io/requestedAt`).
//! - Only spec changes (a new generation) and policy changes start a run, so the status this
//!   controller writes does not start another one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{PredicateConfig, WatchStreamExt, predicates, watcher};
use kube::{Resource, ResourceExt};
use upkeep_api::flux_automation::{self, GitRepository, ImageUpdateAutomation, Source};
use upkeep_api::{AppUpgradeAutomation, VersionPolicy};

use crate::framework::conditions::{Outcome, spec_message, with_outcome};
use crate::framework::{
    Context, Error, FIELD_MANAGER, Shared, controller_config, lean, redacted_status, status_patch,
    until,
};
use crate::gitops::{ClusterLookup, GitWorkspace, add_image_policies, resource, run_git, served};

/// The context of the Flux automation controller: the Git workspace and the served
/// `ImageUpdateAutomation` version.
#[derive(Debug)]
pub struct FluxWorkspace {
    pub workspace: Arc<GitWorkspace>,
    /// The served `ImageUpdateAutomation` version.
    pub resource: ApiResource,
}

impl Shared for FluxWorkspace {
    fn context(&self) -> &Context {
        &self.workspace.ctx
    }
}

/// The Flux-shaped status written on an `ImageUpdateAutomation`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FluxStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_automation_run_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// policy name → `{name, tag}` (as Flux's `ImageRef`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub observed_policies: BTreeMap<String, ImageRef>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageRef {
    pub name: String,
    pub tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

async fn write_flux_status(
    client: &kube::Client,
    ar: &ApiResource,
    object: &DynamicObject,
    current: &FluxStatus,
    wanted: &FluxStatus,
) -> Result<(), Error> {
    if current == wanted {
        return Ok(());
    }
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &object.namespace().unwrap_or_default(), ar);
    let wanted_json = redacted_status(serde_json::to_value(wanted)?);
    let current_json = serde_json::to_value(current)?;
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let patch = serde_json::json!({ "status": status_patch(&current_json, &wanted_json) });
    api.patch_status(&object.name_any(), &params, &Patch::Merge(patch))
        .await
        .map_err(|source| Error::WriteStatus {
            kind: "ImageUpdateAutomation",
            object: format!(
                "{}/{}",
                object.namespace().unwrap_or_default(),
                object.name_any()
            ),
            source,
        })?;
    Ok(())
}

/// The `GitRepository` named `namespace/name` (any served version); `None` when missing.
async fn git_repository(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Option<GitRepository>, Error> {
    let Some(ar) = served(
        client,
        flux_automation::SOURCE_GROUP,
        &flux_automation::SOURCE_VERSIONS,
        "GitRepository",
        "gitrepositories",
    )
    .await
    else {
        return Ok(None);
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    let got = api.get_opt(name).await;
    let Some(object) = got.map_err(|source| Error::Read {
        kind: "GitRepository",
        object: format!("{namespace}/{name}"),
        source,
    })?
    else {
        return Ok(None);
    };
    Ok(serde_json::to_value(&object)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok()))
}

/// The automation an `ImageUpdateAutomation` stands for, or the status that says why there
/// is none yet.
enum Prepared {
    Ready(Box<AppUpgradeAutomation>, String),
    /// The spec does not convert (`Stalled`).
    Invalid(String),
    /// The `GitRepository` is missing or unusable (may change: look again after the interval).
    SourceNotReady(String, Duration),
    Suspended,
}

/// Gather: the object as an automation, with its `GitRepository`.
async fn gather(f: &FluxWorkspace, object: &DynamicObject) -> Result<Prepared, Error> {
    let api_version = format!("{}/{}", f.resource.group, f.resource.version);
    let parsed: Result<ImageUpdateAutomation, String> = serde_json::to_value(object)
        .map_err(|e| e.to_string())
        .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()));
    let prepared = match parsed {
        Ok(iua) => iua
            .prepare(&api_version)
            .map_err(|errors| spec_message(&errors)),
        Err(e) => Err(format!("spec: {e}")),
    };
    let prepared = match prepared {
        Ok(p) => p,
        Err(message) => return Ok(Prepared::Invalid(message)),
    };
    let interval = crate::gitops::interval_of(&prepared.object.spec.interval);
    if prepared.object.spec.suspend {
        return Ok(Prepared::Suspended);
    }
    let (source_ns, source_name) = prepared.source.clone();
    let client = f.workspace.ctx.client();
    let repository = git_repository(&client, &source_ns, &source_name).await?;
    let source = repository.as_ref().map(|repository| Source {
        repository,
        place: "",
    });
    Ok(match prepared.complete(source) {
        Ok(a) => Prepared::Ready(Box::new(a), source_ns),
        Err(e) => {
            let message = match &e.hint {
                Some(h) => format!("{}: {} (hint: {h})", e.path, e.message),
                None => format!("{}: {}", e.path, e.message),
            };
            Prepared::SourceNotReady(message, interval)
        }
    })
}

/// Decide: the Flux-shaped status after a run.
fn after_run(
    existing: &FluxStatus,
    run: &crate::gitops::GitRun,
    observed: BTreeMap<String, ImageRef>,
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> FluxStatus {
    let mut status = existing.clone();
    status.last_automation_run_time = Some(Time(now));
    if let Some(c) = &run.commit {
        status.last_push_commit = Some(c.clone());
        status.last_push_time = Some(Time(now));
    }
    status.observed_policies = observed;
    let mut message = run.note.clone();
    for warning in run.warnings.iter().chain(run.errors.iter()) {
        message.push_str("; ");
        message.push_str(warning);
    }
    let reason = if run.commit.is_some() {
        "Succeeded"
    } else {
        "UpToDate"
    };
    let outcome = Outcome::Ready {
        reason: reason.into(),
        message,
    };
    status.conditions = with_outcome(&existing.conditions, &outcome, generation, now);
    status.observed_generation = generation;
    status
}

/// Reconciles one `ImageUpdateAutomation`: gather it as an automation, run the Git work, write
/// the Flux-shaped status.
pub async fn reconcile_flux_automation(
    object: Arc<DynamicObject>,
    f: Arc<FluxWorkspace>,
) -> Result<Action, Error> {
    let w = &f.workspace;
    let client = w.ctx.client();
    let now = w.ctx.now();
    let generation = object.meta().generation;
    let existing: FluxStatus = object
        .data
        .get("status")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default();
    let namespace = object.namespace().unwrap_or_default();
    let with = |outcome: Outcome| FluxStatus {
        conditions: with_outcome(&existing.conditions, &outcome, generation, now),
        observed_generation: generation,
        ..existing.clone()
    };
    let write = |status: FluxStatus| {
        let (client, object, existing) = (client.clone(), object.clone(), existing.clone());
        let resource = f.resource.clone();
        async move { write_flux_status(&client, &resource, &object, &existing, &status).await }
    };
    let (automation, source_ns) = match gather(&f, &object).await? {
        Prepared::Ready(a, ns) => (Arc::new(*a), ns),
        Prepared::Invalid(message) => {
            let reason = "InvalidSpec".into();
            let wanted = with(Outcome::Stalled { reason, message });
            write(wanted.clone()).await?;
            let reference = object.object_ref(&f.resource);
            let (recorded, wanted) = (&existing.conditions, &wanted.conditions);
            w.ctx
                .announce_stalled_ref(&reference, generation, recorded, wanted)
                .await;
            return Ok(Action::await_change());
        }
        // Flux does not reconcile a suspended automation; neither does upkeep.
        Prepared::Suspended => return Ok(Action::await_change()),
        Prepared::SourceNotReady(message, interval) => {
            let reason = "SourceNotReady".into();
            write(with(Outcome::Retrying { reason, message })).await?;
            return Ok(Action::requeue(interval));
        }
    };
    let interval = crate::gitops::interval_of(&automation.spec.interval);
    let result = run_git(&automation, w, now, Some(&source_ns)).await;
    w.ctx
        .metrics
        .record_push(crate::gitops::push_label(&result));
    let run = match result {
        Ok(run) => run,
        Err(error) => {
            let (reason, message) = ("GitOperationFailed".into(), error.to_string());
            write(with(Outcome::Retrying { reason, message })).await?;
            return Err(error);
        }
    };
    let observed = observed_policies(&client, &automation, &namespace).await;
    write(after_run(&existing, &run, observed, generation, now)).await?;
    let wait = run
        .next_window
        .map_or(interval, |at| interval.min(until(now, at)));
    let name = format!("{namespace}/{}", object.name_any());
    tracing::info!(automation = %name, note = %run.note, "ran (ImageUpdateAutomation)");
    Ok(Action::requeue(wait))
}

/// The policies of `namespace` the automation's `policySelector` selects, with their latest
/// image name and tag (Flux's `observedPolicies`).
async fn observed_policies(
    client: &kube::Client,
    automation: &AppUpgradeAutomation,
    namespace: &str,
) -> BTreeMap<String, ImageRef> {
    let mut lookup = ClusterLookup::default();
    if add_image_policies(client, namespace, &mut lookup)
        .await
        .is_err()
    {
        return BTreeMap::new();
    }
    let selector = automation
        .spec
        .policy_selector
        .as_ref()
        .and_then(|s| upkeep_git::marked_fields::label_selector(s).ok());
    lookup
        .policies
        .into_iter()
        .filter(|(_, d)| selector.as_ref().is_none_or(|s| s.matches(&d.labels)))
        .filter_map(|((_, name), d)| {
            Some((
                name,
                ImageRef {
                    name: d.image.unwrap_or_default(),
                    tag: d.selected?,
                    digest: d.digest,
                },
            ))
        })
        .collect()
}

/// Runs the `ImageUpdateAutomation` controller until `shutdown` resolves, when the API server
/// serves the kind (`v1` or `v1beta2`); otherwise waits for `shutdown`. A `VersionPolicy` or
/// Flux `ImagePolicy` change re-runs the automations of its namespace.
pub async fn run_flux_automations(
    w: Arc<GitWorkspace>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = w.ctx.client();
    let Some(ar) = served(
        &client,
        upkeep_api::flux::GROUP,
        &["v1", "v1beta2"],
        flux_automation::KIND,
        "imageupdateautomations",
    )
    .await
    else {
        tracing::info!("ImageUpdateAutomation is not served by the API server; not watching it");
        shutdown.await;
        return;
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let writer = reflector::store::Writer::<DynamicObject>::new(ar.clone());
    let reader = writer.as_reader();
    let stream = watcher(api, watcher::Config::default())
        .backoff(crate::framework::watch_backoff())
        .modify(lean::<DynamicObject>)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, PredicateConfig::default());
    let controller = Controller::for_stream_with(stream, reader, ar.clone())
        .with_config(controller_config())
        .trigger_backoff(crate::framework::watch_backoff());
    let store = controller.store();
    let in_namespace = move |ns: Option<String>| {
        store
            .state()
            .into_iter()
            .filter(|a| a.namespace() == ns)
            .map(|a| ObjectRef::from_obj_with(a.as_ref(), ar_for_refs(&a)))
            .collect::<Vec<_>>()
    };
    let in_namespace2 = in_namespace.clone();
    let mut controller = controller.watches(
        Api::<VersionPolicy>::all(client.clone()),
        watcher::Config::default(),
        move |p: VersionPolicy| in_namespace(p.namespace()),
    );
    if let Some(policies) = served(
        &client,
        upkeep_api::flux::GROUP,
        &["v1", "v1beta2"],
        "ImagePolicy",
        "imagepolicies",
    )
    .await
    {
        controller = controller.watches_with(
            Api::<DynamicObject>::all_with(client.clone(), &policies),
            policies.clone(),
            watcher::Config::default(),
            move |p: DynamicObject| in_namespace2(p.namespace()),
        );
    }
    let f = Arc::new(FluxWorkspace {
        workspace: w,
        resource: ar,
    });
    let kind = "ImageUpdateAutomation";
    crate::framework::run(controller, kind, reconcile_flux_automation, f, shutdown).await;
}

/// The dynamic type of an object from the store (its own `apiVersion`/`kind`).
fn ar_for_refs(object: &DynamicObject) -> ApiResource {
    let types = object.types.clone().unwrap_or_default();
    let (group, version) = types
        .api_version
        .split_once('/')
        .unwrap_or(("", types.api_version.as_str()));
    resource(group, version, &types.kind, "imageupdateautomations")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(commit: Option<&str>, warnings: &[&str], errors: &[&str]) -> crate::gitops::GitRun {
        crate::gitops::GitRun {
            commit: commit.map(str::to_owned),
            note: "the note".into(),
            changes: Vec::new(),
            next_window: None,
            branch: None,
            errors: errors.iter().map(|e| (*e).to_owned()).collect(),
            warnings: warnings.iter().map(|e| (*e).to_owned()).collect(),
        }
    }

    #[test]
    fn the_flux_status_after_a_run() {
        let now: jiff::Timestamp = "2026-11-21T10:00:00Z".parse().expect("time");
        let before = FluxStatus {
            last_push_commit: Some("abc".into()),
            ..FluxStatus::default()
        };
        let observed: BTreeMap<String, ImageRef> = [(
            "app".to_owned(),
            ImageRef {
                name: "r/app".into(),
                tag: "1.2.3".into(),
                digest: None,
            },
        )]
        .into();
        // (run, reason, message, last push commit, push time set, why)
        let cases = [
            (
                run(Some("c0ffee"), &[], &[]),
                "Succeeded",
                "the note",
                "c0ffee",
                true,
                "a push",
            ),
            (
                run(None, &[], &[]),
                "UpToDate",
                "the note",
                "abc",
                false,
                "nothing to push: the last push stays",
            ),
            (
                run(None, &["template ignored"], &["a.yaml:1: bad"]),
                "UpToDate",
                "the note; template ignored; a.yaml:1: bad",
                "abc",
                false,
                "warnings, then field errors, follow the note",
            ),
        ];
        for (run, reason, message, commit, pushed, why) in cases {
            let got = after_run(&before, &run, observed.clone(), Some(5), now);
            let ready = got
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")
                .expect("Ready");
            assert_eq!(
                (ready.status.as_str(), ready.reason.as_str()),
                ("True", reason),
                "{why}"
            );
            assert_eq!(ready.message, message, "{why}");
            assert_eq!(got.last_push_commit.as_deref(), Some(commit), "{why}");
            assert_eq!(got.last_push_time.is_some(), pushed, "{why}");
            assert_eq!(got.observed_generation, Some(5), "{why}");
            assert_eq!(got.observed_policies, observed, "{why}");
            assert_eq!(got.last_automation_run_time, Some(Time(now)), "{why}");
        }
    }
}
