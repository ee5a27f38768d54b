//! The management-cluster side of the cluster commands (`--kubeconfig`): read a Cluster, patch
//! its version place or freeze annotations, read ClusterUpgrade status.
//!
//! Cluster API's `Cluster` is not upkeep's kind, so it is read as a dynamic object at the
//! version the API server recommends (discovery), and converted into the same
//! [`ClusterObject`] the repository path reads. Patches are JSON merge patches; a version
//! patch carries the `resourceVersion` the decision was made on, so a concurrent change is a
//! conflict (exit 2, run again) and never a lost update.

use std::path::Path;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::ApiResource;
use miette::{IntoDiagnostic, miette};
use serde_json::json;
use upkeep_api::cluster_edit::VersionPlace;
use upkeep_api::{ClusterObject, ClusterUpgrade, MaintenanceSchedule};
use upkeep_core::version::Version;
use upkeep_store::{NewClusterUpgrade, UpgradeOutcome};

use super::status::{CampaignRow, ClusterRow};
use super::upgrade::{ApiArgs, decide, explain};
use crate::Outcome;
use crate::fleet::{NamedSchedule, governing_schedule, named_schedule};
use crate::out::outln;
use crate::render::local;

fn runtime() -> miette::Result<tokio::runtime::Runtime> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .into_diagnostic()
}

async fn client(kubeconfig: &Path) -> miette::Result<kube::Client> {
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
    kube::Client::try_from(config).map_err(|e| miette!("kubeconfig {}: {e}", kubeconfig.display()))
}

/// The `Cluster` resource as the API server serves it.
async fn cluster_resource(client: &kube::Client) -> miette::Result<ApiResource> {
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
fn cluster_object(o: &DynamicObject) -> miette::Result<ClusterObject> {
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
        let ns = args.namespace.unwrap_or("default");
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        let object = match api.get(args.name).await {
            Ok(o) => o,
            Err(e) if not_found(&e) => {
                crate::render::error_with_hint(
                    &format!("no Cluster {ns}/{} on the management cluster ({kubeconfig})", args.name, kubeconfig = kubeconfig.display()),
                    Some("check the name and pass --namespace".into()),
                );
                return Ok(Outcome::Invalid);
            }
            Err(e) => return Err(miette!("reading Cluster {ns}/{}: {e}", args.name)),
        };
        let c = cluster_object(&object)?;
        let schedules = schedules(&client, ns).await?;
        let schedule = governing_schedule(&schedules, &c, None);
        let d = decide(&c, &args.place, schedule, target, now)?;
        if let Some(outcome) = explain(&d, &c.name, args.to, now, args.next_window) {
            return Ok(outcome);
        }
        let from = d.current.clone().unwrap_or_default();
        let rv = object.metadata.resource_version.clone();
        let mut patch = json!({"metadata": {"resourceVersion": rv}});
        match &args.place {
            VersionPlace::Label(key) => patch["metadata"]["labels"] = json!({ key: args.to }),
            VersionPlace::Topology => patch["spec"] = json!({"topology": {"version": args.to}}),
        }
        let params = PatchParams {
            dry_run: args.dry_run,
            field_manager: Some("upkeep".to_owned()),
            ..PatchParams::default()
        };
        match api.patch(args.name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {
                crate::render::error_with_hint(
                    &format!("Cluster {ns}/{} changed after upkeep read it (resourceVersion {}); nothing was patched", args.name, rv.unwrap_or_default()),
                    Some("run the command again: it decides on the new state".into()),
                );
                return Ok(Outcome::Invalid);
            }
            Err(e) => return Err(miette!("patching Cluster {ns}/{}: {e}", args.name)),
        }
        let what = format!("{} {} → {} on Cluster {ns}/{}", args.place.path(), from, args.to, args.name);
        if args.dry_run {
            eprintln!("dry run (server-side, dryRun=All): would set {what}; nothing changed");
        } else {
            eprintln!("patched {what} at {}", local(now, &d.tz));
            let store = match crate::cmd::apply::open_store(args.store) {
                Ok(s) => s,
                Err(o) => return Ok(o),
            };
            store
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
                })
                .map_err(|e| miette!("{e}"))?;
        }
        if args.json {
            outln!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "cluster": c.name, "namespace": ns, "from": from, "to": args.to,
                    "at": now, "decision": "upgrade", "dryRun": args.dry_run, "via": "api",
                }))
                .into_diagnostic()?
            );
        } else {
            outln!("{what}{}", if args.dry_run { " (dry run)" } else { "" });
        }
        Ok(Outcome::Success)
    })
}

fn client_url(kubeconfig: &Path) -> String {
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
        let ns = namespace.unwrap_or("default");
        let api: Api<DynamicObject> = Api::namespaced_with(client, ns, &ar);
        let annotations = match freeze {
            Some((until, reason)) => json!({
                crate::fleet::FREEZE_UNTIL: until,
                crate::fleet::FREEZE_REASON: reason,
            }),
            None => json!({ crate::fleet::FREEZE_UNTIL: null, crate::fleet::FREEZE_REASON: null }),
        };
        let patch = json!({"metadata": {"annotations": annotations}});
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
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

/// The status the controller recorded on each ClusterUpgrade.
pub(crate) fn recorded_status(
    kubeconfig: &Path,
    namespace: Option<&str>,
    only: Option<&str>,
) -> miette::Result<Result<Vec<(CampaignRow, TimeZone)>, Outcome>> {
    runtime()?.block_on(async {
        let client = client(kubeconfig).await?;
        let api: Api<ClusterUpgrade> = match namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        };
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| miette!("listing ClusterUpgrades: {e}"))?;
        let ts = |t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
            t.as_ref().map(|t| t.0)
        };
        let mut out = Vec::new();
        for u in list {
            let (ns, name) = upkeep_api::namespaced_name(&u.metadata);
            if only.is_some_and(|o| o != name) {
                continue;
            }
            let status = u.status.clone().unwrap_or_default();
            let clusters = status
                .clusters
                .iter()
                .map(|c| ClusterRow {
                    name: c.name.clone(),
                    stage: None,
                    state: c.state.clone().unwrap_or_else(|| "-".into()),
                    reason: c.reason.clone(),
                    from: c.from_release.clone(),
                    to: c.to_release.clone(),
                    next: ts(&c.finished_at).or(ts(&c.triggered_at)),
                    expected_start: None,
                })
                .collect();
            out.push((
                CampaignRow {
                    name,
                    namespace: ns,
                    target: u.spec.target_version.clone().or(status.to_release.clone()),
                    state: status.state.clone().unwrap_or_else(|| "-".into()),
                    outcome: status.outcome.clone(),
                    reason: None,
                    next_check: None,
                    clusters,
                },
                TimeZone::UTC,
            ));
        }
        Ok(Ok(out))
    })
}
