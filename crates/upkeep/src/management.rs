//! The management-cluster side of the cluster commands (`--kubeconfig`): read a Cluster, patch
//! its version place or freeze annotations, read ClusterUpgrade status.
//!
//! Cluster API's `Cluster` is not upkeep's kind, so it is read as a dynamic object at the
//! version the API server recommends (discovery), and converted into the same
//! [`ClusterObject`] the repository path reads. Patches are JSON merge patches; a version
//! patch carries the `resourceVersion` the decision was made on, so a concurrent change is a
//! conflict (exit 2, run again) and never a lost update.
//!
//! A cluster that is an App (Giant Swarm) has its version written where the chart reads it —
//! its values ConfigMap's `global.release.version`, else the App's `spec.version` — by the
//! controller's own [`upkeep_controller::cluster_app`] (same lookup, same precondition, same
//! retry on a fresh read); the Cluster is still what is observed. A cluster named without
//! `--namespace` is looked up in every namespace ([`find_cluster`]): Giant Swarm keeps
//! clusters in `org-<organization>` namespaces, and guessing `default` would miss them all.

use std::path::Path;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::ApiResource;
use miette::{IntoDiagnostic, miette};
use serde_json::json;
use upkeep_api::cluster_edit::VersionPlace;
use upkeep_api::cluster_upgrade::{NamedSchedule, cluster_input, governing, one_cluster};
use upkeep_api::{ClusterObject, ClusterUpgrade, MaintenanceSchedule};
use upkeep_controller::cluster_app;
use upkeep_controller::framework::CLI_FIELD_MANAGER;
use upkeep_core::rollout::{ClusterPhase, FailReason, Progress, Step, plan};
use upkeep_core::version::Version;
use upkeep_store::{NewClusterUpgrade, UpgradeOutcome};

use crate::Outcome;
use crate::campaign_view::CampaignRow;
use crate::cluster_upgrade::{ApiArgs, Ending, conclude, decide, explain, fail_text};
use crate::fleet::named_schedule;
use crate::out::outln;
use crate::render::local;

pub(crate) fn runtime() -> miette::Result<tokio::runtime::Runtime> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .into_diagnostic()
}

pub(crate) async fn client(kubeconfig: &Path) -> miette::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| {
        miette!(
            help = "pass a readable kubeconfig with --kubeconfig or KUBECONFIG",
            "kubeconfig {}: {e}",
            kubeconfig.display()
        )
    })?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| miette!("kubeconfig {}: {e}", kubeconfig.display()))?;
    upkeep_controller::framework::client(config)
        .map_err(|e| miette!("kubeconfig {}: {e}", kubeconfig.display()))
}

/// The `Cluster` resource as the API server serves it.
pub(crate) async fn cluster_resource(client: &kube::Client) -> miette::Result<ApiResource> {
    let group = kube::discovery::group(client, upkeep_api::cluster::CLUSTER_API_GROUP)
        .await
        .map_err(|e| {
            miette!(
                help = "install Cluster API (its CRDs) on the management cluster",
                "the API server does not serve {}: {e}",
                upkeep_api::cluster::CLUSTER_API_GROUP
            )
        })?;
    group
        .recommended_kind("Cluster")
        .map(|(ar, _)| ar)
        .ok_or_else(|| {
            miette!(
                "the API server serves {} but no Cluster kind",
                upkeep_api::cluster::CLUSTER_API_GROUP
            )
        })
}

/// The fields upkeep reads, from a dynamic Cluster (labels, annotations, version places and
/// the Cluster API status), read by the same lenient conversion the controller uses.
pub(crate) fn cluster_object(o: &DynamicObject) -> miette::Result<ClusterObject> {
    let value = serde_json::to_value(o).map_err(|e| miette!("reading a Cluster: {e}"))?;
    ClusterObject::from_json(value).map_err(|e| {
        miette!(
            "Cluster {}: {e}",
            o.metadata.name.as_deref().unwrap_or("(no name)")
        )
    })
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// The Cluster `name`: in `namespace` when given, else looked up in every namespace. Exactly
/// one must match; none, or several (listed as `namespace/name`), is printed as an error
/// (`Err(Outcome::Invalid)`).
pub(crate) async fn find_cluster(
    client: &kube::Client,
    ar: &ApiResource,
    kubeconfig: &Path,
    name: &str,
    namespace: Option<&str>,
) -> miette::Result<Result<DynamicObject, Outcome>> {
    let server = client_url(kubeconfig);
    if let Some(ns) = namespace {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
        return match api.get(name).await {
            Ok(o) => Ok(Ok(o)),
            Err(e) if not_found(&e) => {
                crate::render::error_with_hint(
                    &format!("no Cluster {ns}/{name} on the management cluster ({server})"),
                    Some("check the name and --namespace; without --namespace upkeep looks in every namespace".into()),
                );
                Ok(Err(Outcome::Invalid))
            }
            Err(e) => Err(miette!(
                help = "check the kubeconfig's permissions (get on clusters.cluster.x-k8s.io)",
                "reading Cluster {ns}/{name} (GET {}) on {server}: {e}",
                cluster_path(ar, Some(ns), name)
            )),
        };
    }
    let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
    let params = ListParams::default().fields(&format!("metadata.name={name}"));
    let list = api.list(&params).await.map_err(|e| {
        miette!(
            help = "pass --namespace NS (needs only get in that namespace), or grant list on clusters.cluster.x-k8s.io in all namespaces",
            "looking for Cluster {name} in all namespaces (GET {}?fieldSelector=metadata.name%3D{name}) on {server}: {e}",
            cluster_path(ar, None, "")
        )
    })?;
    let mut found: Vec<DynamicObject> = list
        .items
        .into_iter()
        .filter(|o| o.metadata.name.as_deref() == Some(name))
        .collect();
    match found.len() {
        1 => Ok(Ok(found.remove(0))),
        0 => {
            crate::render::error_with_hint(
                &format!(
                    "no Cluster named {name} in any namespace on the management cluster ({server})"
                ),
                Some("check the name (`kubectl get clusters.cluster.x-k8s.io -A`)".into()),
            );
            Ok(Err(Outcome::Invalid))
        }
        _ => {
            let mut candidates: Vec<String> = found
                .iter()
                .map(|o| {
                    format!(
                        "{}/{name}",
                        o.metadata.namespace.as_deref().unwrap_or_default()
                    )
                })
                .collect();
            candidates.sort();
            crate::render::error_with_hint(
                &format!(
                    "{} Clusters are named {name}: {}",
                    candidates.len(),
                    candidates.join(", ")
                ),
                Some("pass --namespace to pick one".into()),
            );
            Ok(Err(Outcome::Invalid))
        }
    }
}

/// The request path of Clusters (in `namespace`, or of all namespaces), for messages.
fn cluster_path(ar: &ApiResource, namespace: Option<&str>, name: &str) -> String {
    let base = format!("/apis/{}", ar.api_version);
    match namespace {
        Some(ns) => format!("{base}/namespaces/{ns}/{}/{name}", ar.plural),
        None => format!("{base}/{}", ar.plural),
    }
}

async fn schedules(client: &kube::Client, ns: &str) -> miette::Result<Vec<NamedSchedule>> {
    let api: Api<MaintenanceSchedule> = Api::namespaced(client.clone(), ns);
    let list = match api.list(&ListParams::default()).await {
        Ok(l) => l,
        // No upkeep CRDs installed: no schedule governs anything.
        Err(e) if not_found(&e) => return Ok(Vec::new()),
        Err(e) => return Err(miette!("listing MaintenanceSchedules in {ns}: {e}")),
    };
    let mut out = Vec::new();
    for s in list {
        let (sns, sname) = upkeep_api::namespaced_name(&s.metadata);
        let schedule = s.to_core().map_err(|errors| {
            miette!(
                "MaintenanceSchedule {sns}/{sname} is invalid: {}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
        out.push(named_schedule(&s, schedule)?);
    }
    Ok(out)
}

/// `upkeep upgrade cluster --via api`.
pub(crate) fn upgrade(
    args: &ApiArgs<'_>,
    target: &Version,
    now: Timestamp,
) -> miette::Result<Outcome> {
    let Some(kubeconfig) = args.kubeconfig else {
        crate::render::error_with_hint(
            "--via api needs the management cluster",
            Some("pass --kubeconfig FILE or set KUBECONFIG".into()),
        );
        return Ok(Outcome::Invalid);
    };
    let _ = args.repo;
    runtime()?.block_on(async {
        let client = client(kubeconfig).await?;
        let ar = cluster_resource(&client).await?;
        let object = match find_cluster(&client, &ar, kubeconfig, args.name, args.namespace).await? {
            Ok(o) => o,
            Err(outcome) => return Ok(outcome),
        };
        let ns = object.metadata.namespace.clone().unwrap_or_else(|| "default".to_owned());
        let ns = ns.as_str();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        let c = cluster_object(&object)?;
        let schedules = schedules(&client, ns).await?;
        let schedule = governing(&schedules, &c, None);
        let d = decide(&c, &args.place, schedule, target, now)?;
        if let Some(outcome) = explain(&d, &c.name, args.to, now, args.next_window) {
            return Ok(outcome);
        }
        let from = d.current.clone().unwrap_or_default();
        let rv = object.metadata.resource_version.clone();
        let server = client_url(kubeconfig);
        let written = match patch_version(&api, args.name, rv.as_deref(), &args.place, args.to, args.dry_run).await {
            Ok(w) => w,
            Err(PatchError::Cluster(kube::Error::Api(s))) if s.code == 409 => {
                crate::render::error_with_hint(
                    &format!("Cluster {ns}/{} changed after upkeep read it (resourceVersion {}); nothing was patched", args.name, rv.unwrap_or_default()),
                    Some("run the command again: it decides on the new state".into()),
                );
                return Ok(Outcome::Invalid);
            }
            Err(PatchError::Cluster(e)) => return Err(miette!(
                help = "check the kubeconfig's permissions (patch on clusters.cluster.x-k8s.io)",
                "patching Cluster {ns}/{} (PATCH {}) on {server}: {e}", args.name, cluster_path(&ar, Some(ns), args.name)
            )),
            Err(PatchError::App(e)) => {
                crate::render::error_with_hint(
                    &format!("upgrading Cluster {ns}/{}: {}", args.name, e.to_string().replace("the API server", &server)),
                    e.hint(),
                );
                return Ok(Outcome::Invalid);
            }
        };
        let what = match &written {
            Some(w) => format!("{} {} → {} for Cluster {ns}/{}", w.place, w.from, args.to, args.name),
            None => format!("{} {} → {} on Cluster {ns}/{}", args.place.path(), from, args.to, args.name),
        };
        let mut waited = crate::cluster_upgrade::Waited::default();
        let mut outcome = Outcome::Success;
        if args.dry_run {
            eprintln!("dry run (server-side, dryRun=All): would set {what}; nothing changed");
        } else {
            eprintln!("patched {what} at {}", local(now, &d.tz));
            let store = match crate::store::open_store(args.store) {
                Ok(s) => s,
                Err(o) => return Ok(o),
            };
            let id = store
                .append_cluster_upgrade(&NewClusterUpgrade {
                    cluster: c.name.clone(),
                    namespace: c.namespace.clone(),
                    from: from.clone(),
                    to: args.to.to_owned(),
                    at: now,
                    via: "api".into(),
                    target: client_url(kubeconfig),
                    file: None,
                    commit: None,
                    pull_request: None,
                    outcome: UpgradeOutcome::Triggered,
                    reason: None,
                    finished_at: None,
                    follows: None,
                })
                .map_err(|e| miette!("{e}"))?;
            waited.outcome = Some(UpgradeOutcome::Triggered.as_str());
            if let Some(timeout) = args.wait {
                let watch = Watch {
                    name: args.name,
                    namespace: ns,
                    place: &args.place,
                    target,
                    triggered_at: now,
                    timeout,
                };
                let ending = watch_upgrade(&client, &ar, &watch).await?;
                (outcome, waited) = conclude(&store, id, &c.name, &ending)?;
            }
        }
        if args.json {
            let mut report = json!({
                "cluster": c.name, "namespace": ns, "from": from, "to": args.to,
                "at": now, "decision": "upgrade", "dryRun": args.dry_run, "via": "api",
                "place": written.as_ref().map_or_else(|| args.place.path(), |w| w.place.clone()),
            });
            if let (Some(o), Ok(serde_json::Value::Object(w))) = (report.as_object_mut(), serde_json::to_value(&waited)) {
                o.extend(w);
            }
            outln!("{}", serde_json::to_string_pretty(&report).into_diagnostic()?);
        } else {
            outln!("{what}{}", if args.dry_run { " (dry run)" } else { "" });
            if let Some(line) = waited.result_line(&format!("Cluster {ns}/{}", args.name), args.to) {
                outln!("{line}");
            }
        }
        Ok(outcome)
    })
}

/// Why a version could not be written.
#[derive(Debug)]
pub(crate) enum PatchError {
    /// The Cluster patch failed (a 409: it changed since the decision).
    Cluster(kube::Error),
    /// The cluster is an App and its App or values ConfigMap could not be written.
    App(cluster_app::AppError),
}

impl std::fmt::Display for PatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatchError::Cluster(e) => write!(f, "{e}"),
            PatchError::App(e) => match e.hint() {
                Some(h) => write!(f, "{e} (hint: {h})"),
                None => write!(f, "{e}"),
            },
        }
    }
}

/// Sets the version of Cluster `name` to `to`: for a cluster that is an App (Giant Swarm's
/// convention) where its chart reads it ([`cluster_app`]: the values key, else the App's
/// `spec.version`; `Some` says where), else the Cluster's version place by a JSON merge patch
/// carrying the `resourceVersion` the decision was made on (a concurrent change is a 409
/// conflict, never a lost update): `upkeep upgrade cluster --via api` and `upkeep run`'s
/// Direct campaigns.
pub(crate) async fn patch_version(
    api: &Api<DynamicObject>,
    name: &str,
    resource_version: Option<&str>,
    place: &VersionPlace,
    to: &str,
    dry_run: bool,
) -> Result<Option<cluster_app::Written>, PatchError> {
    let namespace = api.namespace().unwrap_or("default").to_owned();
    let server = cluster_app::Server::new(
        api.clone().into_client(),
        "the API server",
        CLI_FIELD_MANAGER,
    );
    // An App-side place given (an upgrade's versionPlace): that one; else the convention.
    let lookup = cluster_app::Lookup::for_place(place, &namespace, name).unwrap_or_default();
    if let Some(found) = cluster_app::find(&server, &namespace, name, &lookup)
        .await
        .map_err(PatchError::App)?
    {
        return cluster_app::set_version(&server, found, &namespace, name, &lookup, to, dry_run)
            .await
            .map(Some)
            .map_err(PatchError::App);
    }
    let mut patch = json!({"metadata": {"resourceVersion": resource_version}});
    match place {
        VersionPlace::Label(key) => patch["metadata"]["labels"] = json!({ key: to }),
        VersionPlace::Topology => patch["spec"] = json!({"topology": {"version": to}}),
        // The App and its values are other objects (patched by their own paths); a Flux
        // variable and a marker live only in Git.
        other => {
            return Err(PatchError::Cluster(kube::Error::Service(
                format!("{} is not a field of the Cluster", other.path()).into(),
            )));
        }
    }
    let params = PatchParams {
        dry_run,
        field_manager: Some(CLI_FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    api.patch(name, &params, &Patch::Merge(&patch))
        .await
        .map(|_| None)
        .map_err(PatchError::Cluster)
}

pub(crate) fn client_url(kubeconfig: &Path) -> String {
    kube::config::Kubeconfig::read_from(kubeconfig)
        .ok()
        .and_then(|k| k.clusters.into_iter().next())
        .and_then(|c| c.cluster.and_then(|c| c.server))
        .unwrap_or_else(|| kubeconfig.display().to_string())
}

/// Sets (or with `None`, removes) the freeze annotations of a Cluster with a merge patch.
pub(crate) fn freeze(
    kubeconfig: &Path,
    name: &str,
    namespace: Option<&str>,
    freeze: Option<(&str, Option<&str>)>,
) -> miette::Result<Outcome> {
    runtime()?.block_on(async {
        let client = client(kubeconfig).await?;
        let ar = cluster_resource(&client).await?;
        let object = match find_cluster(&client, &ar, kubeconfig, name, namespace).await? {
            Ok(o) => o,
            Err(outcome) => return Ok(outcome),
        };
        let ns = object.metadata.namespace.as_deref().unwrap_or("default");
        let api: Api<DynamicObject> = Api::namespaced_with(client, ns, &ar);
        let annotations = match freeze {
            Some((until, reason)) => json!({
                upkeep_api::cluster::FREEZE_UNTIL: until,
                upkeep_api::cluster::FREEZE_REASON: reason,
            }),
            None => json!({ upkeep_api::cluster::FREEZE_UNTIL: null, upkeep_api::cluster::FREEZE_REASON: null }),
        };
        let patch = json!({"metadata": {"annotations": annotations}});
        match api
            .patch(
                name,
                &PatchParams {
                    field_manager: Some(CLI_FIELD_MANAGER.to_owned()),
                    ..PatchParams::default()
                },
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => Ok(Outcome::Success),
            Err(e) if not_found(&e) => {
                crate::render::error_with_hint(
                    &format!(
                        "no Cluster {ns}/{name} on the management cluster ({})",
                        kubeconfig.display()
                    ),
                    Some("check the name and pass --namespace".into()),
                );
                Ok(Outcome::Invalid)
            }
            Err(e) => Err(miette!("patching Cluster {ns}/{name}: {e}")),
        }
    })
}

/// The status the controller recorded on each ClusterUpgrade, as rows at `now`. Listed as
/// dynamic objects so that status fields newer than this build's types are read too
/// ([`crate::campaign_view::recorded_row`]).
pub(crate) fn recorded_status(
    kubeconfig: &Path,
    namespace: Option<&str>,
    only: Option<&str>,
    now: Timestamp,
) -> miette::Result<Result<Vec<(CampaignRow, TimeZone)>, Outcome>> {
    runtime()?.block_on(async {
        let client = client(kubeconfig).await?;
        recorded_rows(&client, &client_url(kubeconfig), namespace, only, now)
            .await
            .map(Ok)
    })
}

/// [`recorded_status`] over a client (`server` names the API server in errors): the
/// `upkeep status --kubeconfig` rows, which the dashboard shows too.
pub(crate) async fn recorded_rows(
    client: &kube::Client,
    server: &str,
    namespace: Option<&str>,
    only: Option<&str>,
    now: Timestamp,
) -> miette::Result<Vec<(CampaignRow, TimeZone)>> {
    let ar = ApiResource::erase::<ClusterUpgrade>(&());
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let list = api.list(&ListParams::default()).await.map_err(|e| {
        miette!(
            help = "install upkeep's CRDs (`upkeep crds | kubectl apply -f -`) and grant list on clusterupgrades.upkeep.dev",
            "listing ClusterUpgrades on {server}: {e}"
        )
    })?;
    let mut out = Vec::new();
    for o in list {
        if only.is_some_and(|n| Some(n) != o.metadata.name.as_deref()) {
            continue;
        }
        let status = o.data.get("status").cloned().unwrap_or_default();
        let value = serde_json::to_value(&o).into_diagnostic()?;
        let upgrade: ClusterUpgrade = serde_json::from_value(value).map_err(|e| {
            miette!(
                "ClusterUpgrade {}/{}: {e}",
                o.metadata.namespace.as_deref().unwrap_or_default(),
                o.metadata.name.as_deref().unwrap_or_default()
            )
        })?;
        out.push((
            crate::campaign_view::recorded_row(&upgrade, &status, now),
            TimeZone::UTC,
        ));
    }
    Ok(out)
}

/// ClusterUpgradeRecords (of one cluster when `cluster` is given: selected by the `cluster`
/// label and checked against `spec.cluster`), newest first by trigger, else announcement,
/// else creation; `server` names the API server in errors. `upkeep history --kubeconfig` and
/// the dashboard's history read them here.
pub(crate) async fn cluster_records(
    client: &kube::Client,
    server: &str,
    namespace: Option<&str>,
    cluster: Option<&str>,
) -> miette::Result<Vec<upkeep_api::ClusterUpgradeRecord>> {
    use upkeep_api::ClusterUpgradeRecord;
    use upkeep_api::cluster_upgrade_record::{CLUSTER_LABEL, label_value};
    let api: Api<ClusterUpgradeRecord> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut params = ListParams::default();
    if let Some(name) = cluster {
        params = params.labels(&format!("{CLUSTER_LABEL}={}", label_value(name)));
    }
    let listed = api.list(&params).await.map_err(|e| {
        miette!(
            help = "install the CRDs (kubectl apply -f deploy/crds) and grant list on clusterupgraderecords.upkeep.dev",
            "listing ClusterUpgradeRecords{} ({server}): {e}",
            cluster.map_or_else(String::new, |c| format!(" of cluster {c}"))
        )
    })?;
    let mut records: Vec<ClusterUpgradeRecord> = listed
        .items
        .into_iter()
        .filter(|r| cluster.is_none_or(|c| r.spec.cluster == c))
        .collect();
    records.sort_by(|a, b| {
        record_time(b)
            .cmp(&record_time(a))
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    Ok(records)
}

/// When a record's upgrade happened: triggered, else announced, else created.
pub(crate) fn record_time(r: &upkeep_api::ClusterUpgradeRecord) -> Option<Timestamp> {
    r.spec
        .triggered_at
        .as_ref()
        .or(r.spec.announced_at.as_ref())
        .or(r.metadata.creation_timestamp.as_ref())
        .map(|t| t.0)
}

/// A record as `upkeep history --kubeconfig --output json` prints it: namespace and name, then
/// the spec's fields.
pub(crate) fn record_json(r: &upkeep_api::ClusterUpgradeRecord) -> serde_json::Value {
    let mut row = json!({
        "namespace": r.metadata.namespace,
        "name": r.metadata.name,
    });
    if let (Some(row), Ok(serde_json::Value::Object(spec))) =
        (row.as_object_mut(), serde_json::to_value(&r.spec))
    {
        row.extend(spec);
    }
    row
}

/// What `upkeep upgrade cluster --wait` observes: one Cluster moving to `target` since
/// `triggered_at`, for at most `timeout`.
#[derive(Debug)]
pub(crate) struct Watch<'a> {
    pub(crate) name: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) place: &'a VersionPlace,
    pub(crate) target: &'a Version,
    pub(crate) triggered_at: Timestamp,
    pub(crate) timeout: SignedDuration,
}

/// Consecutive watch failures tolerated (each retried with kube's backoff) before giving up.
const MAX_RECONNECTS: u32 = 5;

/// The core's decision on a running upgrade of `c`: `Triggered` (the cluster does not show the
/// target yet), `Upgrading`, `Succeeded` or `Failed` (a reported failure, or `now` past the
/// timeout) — the same rule the controller applies to a ClusterUpgrade's clusters.
pub(crate) fn judge(c: &ClusterObject, w: &Watch<'_>, now: Timestamp) -> miette::Result<Step> {
    let campaign = one_cluster(&c.name, w.target.clone(), w.timeout);
    let progress = Progress {
        state: ClusterPhase::Triggered,
        triggered_at: Some(w.triggered_at),
        // Watched after the change was made: acknowledged when it was triggered.
        acknowledged_at: Some(w.triggered_at),
        finished_at: None,
        from: None,
        reason: None,
        announced_at: None,
    };
    let input = cluster_input(c, w.place, None, Some(progress));
    plan(&campaign, &[input], now)
        .clusters
        .into_iter()
        .find(|p| p.name == c.name)
        .map(|p| p.step)
        .ok_or_else(|| miette!("the rollout core did not plan cluster {}", c.name))
}

/// A line about what the cluster reports (its Ready/Available condition), for progress.
fn readiness(c: &ClusterObject) -> String {
    let Some(cond) = c
        .status
        .condition("Available")
        .or_else(|| c.status.condition("Ready"))
    else {
        return "no Ready condition yet".to_owned();
    };
    let mut s = format!("{}={}", cond.type_, cond.status);
    if let Some(r) = cond.reason.as_deref().filter(|r| !r.is_empty()) {
        s = format!("{s} {r}");
    }
    if let Some(m) = cond.message.as_deref().filter(|m| !m.is_empty()) {
        s = format!("{s}: {m}");
    }
    s
}

/// Watches the one Cluster (a kube watcher on `metadata.name`, reconnecting with backoff at
/// most [`MAX_RECONNECTS`] times in a row) until the core says Succeeded or Failed, the
/// timeout passes, or SIGINT arrives. Progress (state changes) goes to stderr.
pub(crate) async fn watch_upgrade(
    client: &kube::Client,
    ar: &ApiResource,
    w: &Watch<'_>,
) -> miette::Result<Ending> {
    use futures_util::StreamExt as _;
    use kube::runtime::WatchStreamExt as _;
    use kube::runtime::watcher;

    let who = format!("Cluster {}/{}", w.namespace, w.name);
    // Registered now, before anything is printed: a Ctrl-C after the "waiting" line is ours.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| miette!("listening for Ctrl-C: {e}"))?;
    let deadline = w
        .triggered_at
        .checked_add(w.timeout)
        .unwrap_or(Timestamp::MAX);
    let left = std::time::Duration::try_from(deadline.duration_since(Timestamp::now()))
        .unwrap_or_default();
    eprintln!(
        "{who}: Triggered; waiting until it shows {} and is ready (timeout {}, until {})",
        w.target,
        format_args!("{:#}", w.timeout),
        local(deadline, &TimeZone::system()),
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), w.namespace, ar);
    let config = watcher::Config::default().fields(&format!("metadata.name={}", w.name));
    let stream = watcher(api, config).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let timer = tokio::time::sleep(left);
    let mut timer = std::pin::pin!(timer);
    let mut phase = ClusterPhase::Triggered;
    let mut last: Option<ClusterObject> = None;
    let mut failures = 0u32;
    loop {
        let cluster = tokio::select! {
            _ = interrupt.recv() => return Ok(Ending::Interrupted),
            () = &mut timer => {
                let now = Timestamp::now().max(deadline);
                let step = match &last {
                    Some(c) => judge(c, w, now)?,
                    None => Step::Failed { reason: FailReason::Timeout { after: w.timeout }, at: now },
                };
                let ending = match step {
                    Step::Succeeded { at } => Ending::Succeeded { at },
                    Step::Failed { reason, at } => Ending::Failed { reason, at },
                    _ => Ending::Failed { reason: FailReason::Timeout { after: w.timeout }, at: now },
                };
                if let Ending::Failed { reason, .. } = &ending {
                    eprintln!("{who}: {} → Failed: {}", phase.as_str(), fail_text(reason));
                }
                return Ok(ending);
            }
            event = stream.next() => match event {
                None => return Err(miette!("the watch on {who} ended")),
                Some(Err(e)) => {
                    failures += 1;
                    if failures > MAX_RECONNECTS {
                        return Err(miette!(
                            help = "the upgrade stays recorded as Triggered; check it with `kubectl get` and `upkeep history --cluster`",
                            "lost the watch on {who} after {MAX_RECONNECTS} reconnects: {e}"
                        ));
                    }
                    eprintln!("watching {who}: {e}; reconnecting ({failures}/{MAX_RECONNECTS})");
                    continue;
                }
                Some(Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o))) => {
                    failures = 0;
                    cluster_object(&o)?
                }
                Some(Ok(watcher::Event::Delete(_))) => {
                    return Ok(Ending::Failed {
                        reason: FailReason::Recorded("the Cluster was deleted while upkeep waited".into()),
                        at: Timestamp::now(),
                    });
                }
                Some(Ok(watcher::Event::Init | watcher::Event::InitDone)) => {
                    failures = 0;
                    continue;
                }
            },
        };
        let step = judge(&cluster, w, Timestamp::now())?;
        match step {
            Step::Succeeded { at } => {
                eprintln!(
                    "{who}: {} → Succeeded ({})",
                    phase.as_str(),
                    readiness(&cluster)
                );
                return Ok(Ending::Succeeded { at });
            }
            Step::Failed { reason, at } => {
                eprintln!("{who}: {} → Failed: {}", phase.as_str(), fail_text(&reason));
                return Ok(Ending::Failed { reason, at });
            }
            other => {
                let now = other.phase();
                if now != phase {
                    eprintln!(
                        "{who}: {} → {} ({})",
                        phase.as_str(),
                        now.as_str(),
                        readiness(&cluster)
                    );
                    phase = now;
                }
                last = Some(cluster);
            }
        }
    }
}

/// `--wait` for a change made elsewhere (a commit Flux applies): connects, then watches.
pub(crate) fn wait_for(kubeconfig: &Path, w: &Watch<'_>) -> miette::Result<Ending> {
    runtime()?.block_on(async {
        let client = client(kubeconfig).await?;
        let ar = cluster_resource(&client).await?;
        watch_upgrade(&client, &ar, w).await
    })
}

/// Before a `--via git --wait` commit: the Cluster must be on the management cluster, or
/// there is nothing to observe. Errors are printed (`Err(outcome)`).
pub(crate) fn check_observable(
    kubeconfig: &Path,
    name: &str,
    namespace: &str,
) -> miette::Result<Result<(), Outcome>> {
    runtime()?.block_on(async {
        let client = client(kubeconfig).await?;
        let ar = cluster_resource(&client).await?;
        let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, &ar);
        match api.get(name).await {
            Ok(_) => Ok(Ok(())),
            Err(e) if not_found(&e) => {
                crate::render::error_with_hint(
                    &format!(
                        "--wait: no Cluster {namespace}/{name} on the management cluster ({}); nothing was committed",
                        kubeconfig.display()
                    ),
                    Some("pass the kubeconfig of the management cluster Flux applies the repository to".into()),
                );
                Ok(Err(Outcome::Invalid))
            }
            Err(e) => Err(miette!("reading Cluster {namespace}/{name}: {e}")),
        }
    })
}
