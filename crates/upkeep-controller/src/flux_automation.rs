//! Flux `ImageUpdateAutomation` objects in the cluster, run as `AppUpgradeAutomation`s: the
//! same conversion as for repository files ([`upkeep_api::flux_automation`]: the object, then
//! the `GitRepository` its `spec.sourceRef` names) and the same Git run as
//! [`crate::automation`], with a Flux-shaped status so that `flux get images update` and
//! kstatus-based tooling keep working.
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

use futures_util::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{PredicateConfig, WatchStreamExt, predicates, watcher};
use kube::{Resource, ResourceExt};
use upkeep_api::flux_automation::{self, GitRepository, ImageUpdateAutomation, Source};
use upkeep_api::{AppUpgradeAutomation, VersionPolicy};
use upkeep_git::plan::PolicyDecision;

use crate::automation::{ClusterLookup, Error, Writer, run_git};
use crate::conditions::{Outcome, with_outcome};

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// The first of `versions` the API server serves for `kind`, as an [`ApiResource`].
async fn served(
    client: &kube::Client,
    group: &str,
    versions: &[&str],
    kind: &str,
    plural: &str,
) -> Option<ApiResource> {
    for v in versions {
        let ar = resource(group, v, kind, plural);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        if api.list(&ListParams::default().limit(1)).await.is_ok() {
            return Some(ar);
        }
    }
    None
}

fn kube_err(what: &str) -> impl FnOnce(kube::Error) -> Error {
    let what = what.to_owned();
    move |source| Error::Kube {
        what,
        source: Box::new(source),
    }
}

/// Adds the Flux `ImagePolicy` objects of `namespace` to `lookup` (a `VersionPolicy` of the
/// same name is kept). No `ImagePolicy` CRD: nothing is added.
pub(crate) async fn add_image_policies(
    client: &kube::Client,
    namespace: &str,
    lookup: &mut ClusterLookup,
) -> Result<(), Error> {
    let Some(ar) = served(
        client,
        upkeep_api::flux::GROUP,
        &["v1", "v1beta2"],
        "ImagePolicy",
        "imagepolicies",
    )
    .await
    else {
        return Ok(());
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    for p in api
        .list(&ListParams::default())
        .await
        .map_err(kube_err("ImagePolicies"))?
    {
        let status = p.data.get("status");
        let text = |v: Option<&serde_json::Value>| {
            v.and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty())
                .map(ToOwned::to_owned)
        };
        let latest_ref = status.and_then(|s| s.get("latestRef"));
        let (image, tag, digest) = if let Some(r) = latest_ref {
            (
                text(r.get("name")),
                text(r.get("tag")),
                text(r.get("digest")),
            )
        } else {
            // v1beta2: `latestImage: <name>:<tag>` (the tag after the last `/`).
            match text(status.and_then(|s| s.get("latestImage"))) {
                Some(latest) => {
                    let slash = latest.rfind('/').map_or(0, |i| i + 1);
                    match latest[slash..].rfind(':') {
                        Some(c) => (
                            Some(latest[..slash + c].to_owned()),
                            Some(latest[slash + c + 1..].to_owned()),
                            None,
                        ),
                        None => (Some(latest), None, None),
                    }
                }
                None => (None, None, None),
            }
        };
        let suspended = p
            .data
            .get("spec")
            .and_then(|s| s.get("suspend"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        lookup
            .policies
            .entry((namespace.to_owned(), p.name_any()))
            .or_insert(PolicyDecision {
                selected: tag,
                held: None,
                pinned: false,
                labels: p.labels().clone(),
                suspended: suspended
                    .then(|| "the Flux ImagePolicy is suspended (spec.suspend: true)".to_owned()),
                image,
                digest,
                no_image: None,
            });
    }
    Ok(())
}

/// The shared state of the Flux automation controller.
#[derive(Debug)]
pub struct FluxWriter {
    pub writer: Arc<Writer>,
    /// The served `ImageUpdateAutomation` version.
    pub resource: ApiResource,
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
    let wanted_json =
        crate::reconcile::redacted_status(serde_json::to_value(wanted).unwrap_or_default());
    let current_json = serde_json::to_value(current).unwrap_or_default();
    api.patch_status(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({
            "status": crate::reconcile::status_patch(&current_json, &wanted_json)
        })),
    )
    .await
    .map_err(kube_err("ImageUpdateAutomation status"))?;
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
    let Some(object) = api.get_opt(name).await.map_err(kube_err("GitRepository"))? else {
        return Ok(None);
    };
    Ok(serde_json::to_value(&object)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok()))
}

/// Reconciles one `ImageUpdateAutomation`.
pub async fn reconcile_flux_automation(
    object: Arc<DynamicObject>,
    f: Arc<FluxWriter>,
) -> Result<Action, Error> {
    let w = &f.writer;
    let client = w.ctx.client.clone();
    let now = (w.ctx.now)();
    let generation = object.meta().generation;
    let existing: FluxStatus = object
        .data
        .get("status")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default();
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let with = |outcome: &Outcome| FluxStatus {
        conditions: with_outcome(&existing.conditions, outcome, generation, now),
        observed_generation: generation,
        ..existing.clone()
    };
    let stalled = |message: String| {
        with(&Outcome::Stalled {
            reason: "InvalidSpec".into(),
            message,
        })
    };
    let api_version = format!("{}/{}", f.resource.group, f.resource.version);
    let parsed: Result<ImageUpdateAutomation, String> = serde_json::to_value(object.as_ref())
        .map_err(|e| e.to_string())
        .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()));
    let prepared = match parsed {
        Ok(iua) => iua
            .prepare(&api_version)
            .map_err(|errors| crate::discovery::spec_message(&errors)),
        Err(e) => Err(format!("spec: {e}")),
    };
    let prepared = match prepared {
        Ok(p) => p,
        Err(message) => {
            write_flux_status(&client, &f.resource, &object, &existing, &stalled(message)).await?;
            return Ok(Action::await_change());
        }
    };
    let interval = upkeep_api::duration::parse_duration(&prepared.object.spec.interval)
        .ok()
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or(Duration::from_secs(600));
    if prepared.object.spec.suspend {
        // Flux does not reconcile a suspended automation; neither does upkeep.
        return Ok(Action::await_change());
    }
    let (source_ns, source_name) = prepared.source.clone();
    let repository = git_repository(&client, &source_ns, &source_name).await?;
    let automation = match prepared.complete(repository.as_ref().map(|repository| Source {
        repository,
        place: "",
    })) {
        Ok(a) => a,
        Err(e) => {
            let message = match &e.hint {
                Some(h) => format!("{}: {} (hint: {h})", e.path, e.message),
                None => format!("{}: {}", e.path, e.message),
            };
            // The GitRepository may appear or change: look again after the interval.
            let status = with(&Outcome::Retrying {
                reason: "SourceNotReady".into(),
                message,
            });
            write_flux_status(&client, &f.resource, &object, &existing, &status).await?;
            return Ok(Action::requeue(interval));
        }
    };
    let automation = Arc::new(automation);
    let result = run_git(&automation, w, now, Some(&source_ns)).await;
    crate::metrics::Metrics::global().record_push(match &result {
        Ok(r) if r.commit.is_some() => "pushed",
        Ok(_) => "up_to_date",
        Err(_) => "error",
    });
    let run = match result {
        Ok(run) => run,
        Err(error) => {
            let status = with(&Outcome::Retrying {
                reason: "GitOperationFailed".into(),
                message: error.to_string(),
            });
            write_flux_status(&client, &f.resource, &object, &existing, &status).await?;
            return Err(error);
        }
    };
    let mut status = existing.clone();
    status.last_automation_run_time = Some(Time(now));
    if let Some(c) = &run.commit {
        status.last_push_commit = Some(c.clone());
        status.last_push_time = Some(Time(now));
    }
    status.observed_policies = observed_policies(&client, &automation, &namespace).await;
    let mut message = run.note.clone();
    for warning in run.warnings.iter().chain(run.errors.iter()) {
        message.push_str("; ");
        message.push_str(warning);
    }
    let outcome = Outcome::Ready {
        reason: if run.commit.is_some() {
            "Succeeded".into()
        } else {
            "UpToDate".into()
        },
        message,
    };
    status.conditions = with_outcome(&existing.conditions, &outcome, generation, now);
    status.observed_generation = generation;
    write_flux_status(&client, &f.resource, &object, &existing, &status).await?;
    let mut wait = interval;
    if let Some(at) = run.next_window {
        wait = wait.min(crate::discovery::until(now, at));
    }
    tracing::info!(automation = %format!("{namespace}/{name}"), note = %run.note, "ran (ImageUpdateAutomation)");
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
        .and_then(|s| upkeep_git::plan::label_selector(s).ok());
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

/// Transient errors back off before the automation runs again.
#[allow(clippy::needless_pass_by_value)] // the signature kube's Controller::run expects
pub fn error_policy(_object: Arc<DynamicObject>, error: &Error, f: Arc<FluxWriter>) -> Action {
    tracing::warn!(%error, "ImageUpdateAutomation run failed; retrying");
    Action::requeue(f.writer.retry_after)
}

/// Runs the `ImageUpdateAutomation` controller until `shutdown` resolves, when the API server
/// serves the kind (`v1` or `v1beta2`); otherwise waits for `shutdown`. A `VersionPolicy` or
/// Flux `ImagePolicy` change re-runs the automations of its namespace.
pub async fn run_flux_automations(
    w: Arc<Writer>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = w.ctx.client.clone();
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
        .default_backoff()
        .modify(crate::reconcile::lean::<DynamicObject>)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, PredicateConfig::default());
    let controller = Controller::for_stream_with(stream, reader, ar.clone())
        .with_config(crate::reconcile::controller_config());
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
    let f = Arc::new(FluxWriter {
        writer: w,
        resource: ar,
    });
    controller
        .graceful_shutdown_on(shutdown)
        .run(
            crate::metrics::instrumented("ImageUpdateAutomation", reconcile_flux_automation),
            error_policy,
            f,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "ImageUpdateAutomation reconcile");
            }
        })
        .await;
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
