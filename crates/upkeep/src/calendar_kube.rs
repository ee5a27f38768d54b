//! The upgrade calendar of a management cluster: `upkeep calendar --kubeconfig` and the
//! controller's `/calendar.ics`, and the dashboard's Calendar page and `/calendar.ics` over a
//! management cluster (one function, so all of them serve the same feed).
//!
//! What it reads, per namespace, in one pass of LISTs (no watch: a feed is asked for now and
//! then): MaintenanceSchedules, Clusters (Cluster API, by discovery), ClusterUpgrades with their
//! status, their ClusterUpgradeRecords and, for a `releaseRef` naming a VersionPolicy, its
//! `status.latestVersion`. Each campaign is then decided by the controller's own
//! [`decide`] at the feed's first instant, and projected by [`crate::calendar`] as for a
//! repository. The label selector picks what is *shown* (schedules and clusters whose labels
//! match, as the API server evaluates it); decisions always read every schedule and cluster,
//! because a schedule governs clusters whatever their labels.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use jiff::SignedDuration;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use upkeep_api::cluster_upgrade::{NamedSchedule, VersionSource};
use upkeep_api::release::Resolution;
use upkeep_api::{
    ClusterObject, ClusterUpgrade, ClusterUpgradeRecord, MaintenanceSchedule, VersionPolicy,
    namespaced_name,
};
use upkeep_controller::cluster_upgrade::decide::{Snapshot, decide};
use upkeep_core::calendar::{Entry, Kind, uid};

use crate::calendar::{Feed, Range};

/// Why the cluster could not be read, with a hint.
#[derive(Debug)]
pub(crate) struct KubeError {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

fn read_error(what: &str, e: &kube::Error) -> KubeError {
    KubeError {
        message: format!("listing {what}: {e}"),
        hint: Some(format!(
            "install upkeep's CRDs (`upkeep crds | kubectl apply -f -`) and grant list on {what}"
        )),
    }
}

/// `upkeep calendar --kubeconfig`.
pub(crate) fn from_kubeconfig(
    kubeconfig: &Path,
    namespace: Option<&str>,
    selector: Option<&str>,
    range: Range,
) -> Result<Feed, KubeError> {
    let rt = crate::management::runtime().map_err(|e| KubeError {
        message: e.to_string(),
        hint: None,
    })?;
    rt.block_on(async {
        let client = crate::management::client(kubeconfig)
            .await
            .map_err(|e| KubeError {
                message: e.to_string(),
                hint: Some("pass a readable kubeconfig with --kubeconfig".into()),
            })?;
        cluster_feed(&client, namespace, selector, range).await
    })
}

fn params(selector: Option<&str>) -> ListParams {
    match selector {
        Some(s) => ListParams::default().labels(s),
        None => ListParams::default(),
    }
}

fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The feed of the cluster `client` talks to.
pub(crate) async fn cluster_feed(
    client: &kube::Client,
    namespace: Option<&str>,
    selector: Option<&str>,
    range: Range,
) -> Result<Feed, KubeError> {
    let mut feed = Feed::default();
    // Schedules: all for decisions, the selected ones shown.
    let schedule_api: Api<MaintenanceSchedule> = api(client, namespace);
    let all = schedule_api
        .list(&ListParams::default())
        .await
        .map_err(|e| read_error("maintenanceschedules.upkeep.dev", &e))?;
    let shown: BTreeSet<(String, String)> = match selector {
        None => all
            .items
            .iter()
            .map(|s| namespaced_name(&s.metadata))
            .collect(),
        Some(_) => schedule_api
            .list(&params(selector))
            .await
            .map_err(|e| KubeError {
                message: format!(
                    "listing maintenanceschedules.upkeep.dev with selector {selector:?}: {e}"
                ),
                hint: Some(
                    "a label selector as kubectl takes it: `stage=prod,team in (a,b)`".into(),
                ),
            })?
            .items
            .iter()
            .map(|s| namespaced_name(&s.metadata))
            .collect(),
    };
    // An invalid schedule governs nothing (its controller reports it) and shows nothing.
    let mut schedules: BTreeMap<String, Vec<NamedSchedule>> = BTreeMap::new();
    for s in &all.items {
        if let Ok(named) = NamedSchedule::from_object(s) {
            if shown.contains(&(named.namespace.clone(), named.name.clone())) {
                feed.subjects
                    .push(crate::calendar::Subject::schedule(&named));
                crate::calendar::schedule_entries(&mut feed, &named, range);
            }
            schedules
                .entry(named.namespace.clone())
                .or_default()
                .push(named);
        }
    }
    // Clusters, by discovery (Cluster API may be missing: then no cluster is planned).
    let mut clusters: BTreeMap<String, Vec<ClusterObject>> = BTreeMap::new();
    let mut shown_clusters: Option<BTreeSet<(String, String)>> = None;
    if let Ok(ar) = crate::management::cluster_resource(client).await {
        let dynamic = |ar: &ApiResource| -> Api<DynamicObject> {
            match namespace {
                Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
                None => Api::all_with(client.clone(), ar),
            }
        };
        let list = dynamic(&ar)
            .list(&ListParams::default())
            .await
            .map_err(|e| read_error("clusters.cluster.x-k8s.io", &e))?;
        for o in &list.items {
            if let Ok(c) = crate::management::cluster_object(o) {
                let ns = o.metadata.namespace.clone().unwrap_or_default();
                clusters.entry(ns).or_default().push(c);
            }
        }
        let mut subjects: Vec<crate::calendar::Subject> = clusters
            .values()
            .flatten()
            .map(crate::calendar::Subject::cluster)
            .collect();
        if selector.is_some() {
            let picked = dynamic(&ar)
                .list(&params(selector))
                .await
                .map_err(|e| read_error("clusters.cluster.x-k8s.io", &e))?;
            shown_clusters = Some(
                picked
                    .items
                    .iter()
                    .map(|o| {
                        (
                            o.metadata.namespace.clone().unwrap_or_default(),
                            o.metadata.name.clone().unwrap_or_default(),
                        )
                    })
                    .collect(),
            );
        }
        if let Some(shown) = &shown_clusters {
            subjects.retain(|c| shown.contains(&(c.namespace.clone(), c.name.clone())));
        }
        feed.subjects.extend(subjects);
    }
    let upgrades: Vec<Arc<ClusterUpgrade>> = api::<ClusterUpgrade>(client, namespace)
        .list(&ListParams::default())
        .await
        .map_err(|e| read_error("clusterupgrades.upkeep.dev", &e))?
        .items
        .into_iter()
        .map(Arc::new)
        .collect();
    let records = api::<ClusterUpgradeRecord>(client, namespace)
        .list(&ListParams::default())
        .await
        .map_err(|e| read_error("clusterupgraderecords.upkeep.dev", &e))?
        .items;
    for u in &upgrades {
        let (ns, name) = namespaced_name(&u.metadata);
        let own: Vec<&ClusterUpgradeRecord> = records
            .iter()
            .filter(|r| {
                r.metadata.namespace.as_deref() == Some(ns.as_str())
                    && r.spec.campaign == name
                    && r.metadata
                        .owner_references
                        .as_deref()
                        .unwrap_or_default()
                        .iter()
                        .any(|o| Some(&o.uid) == u.metadata.uid.as_ref())
            })
            .collect();
        let snapshot = Snapshot {
            clusters: clusters.get(&ns).cloned().unwrap_or_default(),
            schedules: schedules.get(&ns).cloned().unwrap_or_default(),
            release: release(client, u, &ns).await?,
            finished: finished(&upgrades, u, &ns),
            others: upgrades
                .iter()
                .filter(|o| o.metadata.namespace.as_deref() == Some(ns.as_str()))
                .cloned()
                .collect(),
            records: own.iter().map(|r| r.spec.to_state()).collect(),
        };
        let decision = decide(u, &snapshot, VersionSource::Label, range.from);
        let more = format!("upkeep status {name} -n {ns} --kubeconfig <file>");
        let before = feed.entries.len();
        crate::calendar::campaign_entries(&mut feed, u, &decision, range, &more);
        if let Some(shown) = &shown_clusters {
            let mut i = before;
            while i < feed.entries.len() {
                let keep = feed.entries[i]
                    .subject
                    .split_once('/')
                    .is_some_and(|(n, c)| shown.contains(&(n.to_owned(), c.to_owned())));
                if keep {
                    i += 1;
                } else {
                    feed.entries.remove(i);
                }
            }
        }
        for r in own {
            past_record(&mut feed, &ns, r, range, shown_clusters.as_ref());
        }
    }
    Ok(feed)
}

/// A VersionPolicy's `latestVersion` for a `releaseRef` (as the controller resolves it); a Giant
/// Swarm Release is not read here (`None`: the campaign is shown once it has a target).
async fn release(
    client: &kube::Client,
    u: &ClusterUpgrade,
    ns: &str,
) -> Result<Option<Resolution>, KubeError> {
    let Some(r) = &u.spec.release_ref else {
        return Ok(None);
    };
    if r.release_name().is_some() {
        return Ok(None);
    }
    let api: Api<VersionPolicy> = Api::namespaced(client.clone(), ns);
    let policy = api
        .get_opt(&r.name)
        .await
        .map_err(|e| read_error("versionpolicies.upkeep.dev", &e))?;
    let latest = policy.and_then(|p| p.status).and_then(|s| s.latest_version);
    Ok(Some(Resolution::of_policy(latest.as_deref(), || {
        format!("VersionPolicy {ns}/{} has no latestVersion yet", r.name)
    })))
}

/// How each `after` upgrade ended, from its recorded status.
fn finished(
    all: &[Arc<ClusterUpgrade>],
    u: &ClusterUpgrade,
    ns: &str,
) -> HashMap<String, Option<(upkeep_core::rollout::Outcome, jiff::Timestamp)>> {
    u.spec
        .after
        .iter()
        .map(|dep| {
            let done = all
                .iter()
                .find(|o| {
                    o.metadata.namespace.as_deref() == Some(ns)
                        && o.metadata.name.as_deref() == Some(dep.name.as_str())
                })
                .and_then(|o| o.status.as_ref())
                .and_then(upkeep_api::cluster_upgrade::ClusterUpgradeStatus::finished);
            (dep.name.clone(), done)
        })
        .collect()
}

/// A ClusterUpgradeRecord triggered in `range`, as a past upgrade.
fn past_record(
    feed: &mut Feed,
    ns: &str,
    r: &ClusterUpgradeRecord,
    range: Range,
    shown: Option<&BTreeSet<(String, String)>>,
) {
    let s = &r.spec;
    let Some(start) = s.triggered_at.as_ref().map(|t| t.0) else {
        return;
    };
    if start < range.from || start >= range.to {
        return;
    }
    if shown.is_some_and(|c| !c.contains(&(ns.to_owned(), s.cluster.clone()))) {
        return;
    }
    let end = s
        .finished_at
        .as_ref()
        .map(|t| t.0)
        .filter(|f| *f > start)
        .unwrap_or_else(|| {
            start
                .checked_add(SignedDuration::from_mins(1))
                .unwrap_or(start)
        });
    let cluster = format!("{ns}/{}", s.cluster);
    let record = r.metadata.name.clone().unwrap_or_default();
    feed.entries.push(Entry {
        uid: uid(Kind::PastUpgrade, &cluster, &format!("{ns}/{record}")),
        sequence: 0,
        kind: Kind::PastUpgrade,
        subject: cluster,
        start,
        end,
        tz: None,
        summary: format!(
            "{}: {} → {} ({})",
            s.cluster,
            s.from.as_deref().unwrap_or("?"),
            s.to.as_deref().unwrap_or("?"),
            s.state
        ),
        description: format!(
            "ClusterUpgradeRecord {ns}/{record} of ClusterUpgrade {ns}/{}\nstate: {}{}\nSee more: upkeep history --cluster {} -n {ns} --kubeconfig <file>",
            s.campaign,
            s.state,
            s.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default(),
            s.cluster
        ),
    });
}

/// The controller's `/calendar.ics?namespace=NS&selector=LABELS&from=TIME&days=N`: the same
/// feed as `upkeep calendar --kubeconfig`, read with the controller's own client.
///
/// SEQUENCE: the controller keeps what it gave each UID in memory and takes the clock's floor
/// ([`upkeep_core::calendar::clock_floor`]) for an event it has not seen. That needs no state
/// that survives a restart: after one, every event's number is the minutes since 2025 at the
/// first request, which is larger than any number given before (one per minute at most grows
/// past it only when an event moved more than once a minute), so a client sees each event
/// updated once and never sees a number go back. Replicas each keep their own memory; a
/// client that alternates between them sees the same guarantee, since every number is at
/// least the floor of when it was first given.
pub(crate) fn route(client: kube::Client) -> upkeep_controller::serve::ExtraRoute {
    use upkeep_controller::serve::{StatusCode, text};
    let memory: Arc<crate::calendar::Memory> = Arc::default();
    upkeep_controller::serve::ExtraRoute {
        path: "/calendar.ics",
        handler: Arc::new(move |query: Option<String>| {
            let client = client.clone();
            let memory = memory.clone();
            Box::pin(async move {
                let q = match Query::parse(query.as_deref().unwrap_or("")) {
                    Ok(q) => q,
                    Err(e) => return text(StatusCode::BAD_REQUEST, &format!("{e}\n")),
                };
                let mut feed = match cluster_feed(
                    &client,
                    q.namespace.as_deref(),
                    q.selector.as_deref(),
                    q.range,
                )
                .await
                {
                    Ok(f) => f,
                    Err(e) => {
                        let hint = e.hint.map(|h| format!("\nhint: {h}")).unwrap_or_default();
                        let body = format!("{}{hint}\n", e.message);
                        return text(StatusCode::BAD_GATEWAY, &upkeep_core::redact::redact(&body));
                    }
                };
                feed.sort();
                let now = jiff::Timestamp::now();
                crate::calendar::remember_sequences(&mut feed.entries, &memory, now);
                let body =
                    upkeep_core::calendar::write_ics(&feed.entries, "upkeep", now, &feed.zones);
                upkeep_controller::serve::body(
                    StatusCode::OK,
                    "text/calendar; charset=utf-8",
                    upkeep_core::redact::redact(&body).into_owned(),
                )
            })
        }),
    }
}

/// The query of `/calendar.ics`.
#[derive(Debug)]
struct Query {
    namespace: Option<String>,
    selector: Option<String>,
    range: Range,
}

impl Query {
    fn parse(query: &str) -> Result<Query, String> {
        let (mut namespace, mut selector, mut from, mut days) = (None, None, None, 28_i64);
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "namespace" => namespace = Some(v.into_owned()).filter(|n| !n.is_empty()),
                "selector" => selector = Some(v.into_owned()).filter(|s| !s.is_empty()),
                "from" => {
                    from = Some(
                        crate::timearg::parse(&v, &jiff::tz::TimeZone::UTC)
                            .map_err(|e| format!("from: {e}"))?,
                    );
                }
                "days" => {
                    days = v
                        .parse::<i64>()
                        .ok()
                        .filter(|d| (1..=crate::calendar::MAX_DAYS).contains(d))
                        .ok_or_else(|| {
                            format!(
                                "days: {v:?} is not a number of days from 1 to {}",
                                crate::calendar::MAX_DAYS
                            )
                        })?;
                }
                other => {
                    return Err(format!(
                        "unknown parameter {other:?}: use namespace, selector, from, days"
                    ));
                }
            }
        }
        let from = from.unwrap_or_else(jiff::Timestamp::now);
        let to = crate::calendar::range_end(from, days).ok_or_else(|| {
            format!(
                "from {from} and days {days}: the feed would reach outside the years 0001 to 9999"
            )
        })?;
        Ok(Query {
            namespace,
            selector,
            range: Range { from, to },
        })
    }
}
