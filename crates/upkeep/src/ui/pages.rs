//! The data of each dashboard page, from a repository (the standalone shape) or from the
//! management cluster (the in-cluster shape), as `json` (the page's JSON twin: what the matching
//! CLI command's `--output json` gives) and `view` (only arrangements of that data for drawing:
//! counts per stage, bar widths, filter choices).
//!
//! | page | repository | management cluster |
//! |---|---|---|
//! | fleet | every Cluster manifest, joined with the campaigns of `upkeep status` | every Cluster API `Cluster`, joined with `upkeep status --kubeconfig` |
//! | campaigns | `upkeep status --output json` (with `quickstart --serve`: also the campaigns its ClusterUpgradePolicies would create) | `upkeep status --kubeconfig --output json`, and the ClusterUpgrades' Events |
//! | apps | the `fields` of `upkeep plan --output json`, with the commit and pull request `upkeep history` recorded for each file | each AppUpgradeAutomation's status (last commit, pull request, observed policies) |
//! | history | `upkeep history --output json` and each cluster's `upkeep history --cluster` | `upkeep history --kubeconfig --cluster` for every cluster (the ClusterUpgradeRecords) |
//! | calendar | `upkeep calendar --repo --output json`'s entries ([`crate::calendar::repo_feed`]; with `quickstart --serve` also the policies' campaigns), drawn by [`super::calendar`] | `upkeep calendar --kubeconfig --output json`'s ([`crate::calendar_kube::cluster_feed`]) |
//!
//! What is loaded comes from the dashboard's [`super::snapshot`] (the same loaders the
//! commands use); what is decided is decided here, at the request's time. Deciding over a
//! repository is blocking code, so it runs on a blocking thread; a panic there is caught and
//! becomes an error page.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::{Value, json};
use upkeep_api::ClusterObject;

use crate::campaign_view::{CampaignRow, ClusterRow};

use super::Ui;
use super::snapshot::{Loaded, RepoLoaded, Snapshot};

/// Where the dashboard reads the fleet.
#[derive(Debug)]
pub(crate) enum Source {
    Repo(RepoSource),
    Kube(KubeSource),
}

/// A GitOps repository (and the store `upkeep run` records in).
#[derive(Debug, Clone)]
pub(crate) struct RepoSource {
    pub(crate) dir: PathBuf,
    /// The store; `None`: the default place (a missing store means nothing was recorded).
    pub(crate) store: Option<PathBuf>,
    pub(crate) docker_config: Option<PathBuf>,
    /// Also show the campaigns the ClusterUpgradePolicies would create (`quickstart --serve`:
    /// the example fleet has policies, not campaigns).
    pub(crate) policy_campaigns: bool,
}

/// A management cluster.
#[derive(Clone)]
pub(crate) struct KubeSource {
    pub(crate) client: kube::Client,
    /// The API server's URL (for messages).
    pub(crate) server: String,
    /// Only this namespace (default: all).
    pub(crate) namespace: Option<String>,
}

impl std::fmt::Debug for KubeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSource")
            .field("server", &self.server)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Source {
    /// What the header says the pages show.
    pub(crate) fn describe(&self) -> String {
        match self {
            Source::Repo(r) => format!("repository {}", r.dir.display()),
            Source::Kube(k) => match &k.namespace {
                Some(ns) => format!("management cluster {} (namespace {ns})", k.server),
                None => format!("management cluster {}", k.server),
            },
        }
    }

    /// `the repository` or `the API server`, for error headings.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Source::Repo(_) => "the repository",
            Source::Kube(_) => "the API server",
        }
    }
}

/// A page's data.
#[derive(Debug, Default)]
pub(crate) struct PageData {
    /// The JSON twin.
    pub(crate) json: Value,
    /// What the template needs beyond it.
    pub(crate) view: Value,
}

/// Why a page could not be gathered.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    /// A bug (a panic), not an unreadable source.
    pub(crate) internal: bool,
    /// The request asked for something that cannot be (a bad query parameter): 400.
    pub(crate) bad_request: bool,
}

impl Failure {
    fn new(message: impl Into<String>, hint: Option<&str>) -> Self {
        Failure {
            message: message.into(),
            hint: hint.map(str::to_owned),
            internal: false,
            bad_request: false,
        }
    }

    /// A bad query parameter (400), with how to write it.
    pub(crate) fn bad(message: impl Into<String>, hint: &str) -> Self {
        Failure {
            bad_request: true,
            ..Failure::new(message, Some(hint))
        }
    }

    pub(crate) fn from_problem(p: &super::snapshot::Problem) -> Self {
        Failure::new(p.message.clone(), p.hint.as_deref())
    }

    pub(crate) fn report(e: &miette::Report) -> Self {
        Failure {
            message: format!("{e}"),
            hint: e.help().map(|h| h.to_string()),
            internal: false,
            bad_request: false,
        }
    }
}

pub(crate) type Query = Vec<(String, String)>;

/// Campaign rows with the time zone their times are shown in.
type Campaigns = Vec<(CampaignRow, TimeZone)>;

pub(crate) fn param<'q>(query: &'q Query, name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, v)| k == name && !v.trim().is_empty())
        .map(|(_, v)| v.trim())
}

/// The data of `page` at `now`, from `snapshot` (decided at `now`).
pub(crate) async fn gather(
    ui: Arc<Ui>,
    snapshot: Arc<Snapshot>,
    page: &'static str,
    query: Query,
    now: Timestamp,
    json_twin: bool,
) -> Result<PageData, Failure> {
    if page == "calendar" {
        let range = super::calendar::range(
            &query,
            now,
            super::calendar::PAGE_DAYS,
            super::calendar::MAX_PAGE_DAYS,
        )?;
        let ns = param(&query, "namespace").map(str::to_owned);
        let feed = calendar_feed(ui, snapshot, range, ns, None).await?;
        return super::calendar::page(&feed, range, &query, now);
    }
    match &ui.source {
        Source::Repo(_) => {
            let ui = ui.clone();
            tokio::task::spawn_blocking(move || {
                let Source::Repo(repo) = &ui.source else {
                    unreachable!("matched above")
                };
                repo_page(repo, &snapshot, page, &query, now, json_twin)
            })
            .await
            .unwrap_or_else(|e| {
                Err(Failure {
                    message: format!("gathering the {page} page failed: {e}"),
                    hint: Some("this is a bug in upkeep; the server goes on".into()),
                    internal: true,
                    bad_request: false,
                })
            })
        }
        Source::Kube(kube) => kube_page(kube, &snapshot, page, &query, now, json_twin).await,
    }
}

/// The calendar feed of the dashboard's source over `range` (what `upkeep calendar` writes for
/// it; `quickstart --serve`: with the campaigns its ClusterUpgradePolicies would create),
/// filtered by `namespace` and a label `selector`, sorted, SEQUENCEs from the dashboard's
/// memory ([`crate::calendar::remember_sequences`]).
pub(crate) async fn calendar_feed(
    ui: Arc<Ui>,
    snapshot: Arc<Snapshot>,
    range: crate::calendar::Range,
    namespace: Option<String>,
    selector: Option<String>,
) -> Result<crate::calendar::Feed, Failure> {
    let mut feed = match &ui.source {
        Source::Repo(_) => {
            let ui = ui.clone();
            let (ns, sel) = (namespace.clone(), selector.clone());
            tokio::task::spawn_blocking(move || {
                let Source::Repo(repo) = &ui.source else {
                    unreachable!("matched above")
                };
                if !repo.dir.is_dir() {
                    return Err(Failure::new(
                        format!("{}: no such directory", repo.dir.display()),
                        Some("pass the GitOps repository with --repo DIR"),
                    ));
                }
                let store = open_store(repo)?;
                let mut feed = repo_feed(repo, &snapshot, store.as_ref(), range)?;
                super::calendar::retain(&mut feed, ns.as_deref(), sel.as_deref()).map_err(|e| {
                    Failure::bad(e, "e.g. selector=stage%3Dprod (key, key=value, key!=value)")
                })?;
                Ok(feed)
            })
            .await
            .unwrap_or_else(|e| {
                Err(Failure {
                    message: format!("gathering the calendar failed: {e}"),
                    hint: Some("this is a bug in upkeep; the server goes on".into()),
                    internal: true,
                    bad_request: false,
                })
            })?
        }
        Source::Kube(kube) => {
            let ns = namespace.as_deref().or(kube.namespace.as_deref());
            if let (Some(want), Some(only)) = (namespace.as_deref(), kube.namespace.as_deref())
                && want != only
            {
                return Err(Failure::bad(
                    format!("namespace {want:?}: this dashboard shows only namespace {only:?}"),
                    "leave namespace out, or serve the dashboard without --namespace",
                ));
            }
            crate::calendar_kube::cluster_feed(&kube.client, ns, selector.as_deref(), range)
                .await
                .map_err(|e| Failure {
                    message: e.message,
                    hint: e.hint,
                    internal: false,
                    bad_request: false,
                })?
        }
    };
    feed.sort();
    crate::calendar::remember_sequences(&mut feed.entries, &ui.memory, Timestamp::now());
    Ok(feed)
}

// --- the repository -------------------------------------------------------------------------

/// The loaded repository of `snapshot`.
fn repo_loaded(snapshot: &Snapshot) -> Result<&RepoLoaded, Failure> {
    match &snapshot.loaded {
        Loaded::Repo(r) => Ok(r),
        Loaded::Kube(_) => Err(Failure::new("the snapshot is not of a repository", None)),
    }
}

/// [`crate::calendar::repo_feed`] over the snapshot's loaded repository: the same entries,
/// from the fleet loaded once (the app fields' policies as decided when the snapshot was
/// loaded; campaigns, fields and windows decided at `range.from`).
fn repo_feed(
    repo: &RepoSource,
    snapshot: &Snapshot,
    store: Option<&upkeep_store::Store>,
    range: crate::calendar::Range,
) -> Result<crate::calendar::Feed, Failure> {
    use crate::calendar::{Feed, Subject};
    let loaded = repo_loaded(snapshot)?;
    let fleet = loaded.clusters.get()?;
    let mut feed = Feed::default();
    for s in &fleet.schedules {
        feed.subjects.push(Subject::schedule(s));
        crate::calendar::schedule_entries(&mut feed, s, range);
    }
    for c in &fleet.clusters {
        feed.subjects.push(Subject::cluster(&c.object));
    }
    crate::calendar::repo_campaigns(&mut feed, &fleet, &repo.dir, store, range)
        .map_err(|e| Failure::report(&e))?;
    let apps = loaded.apps.get()?;
    if let Ok((fields, _)) = crate::app_fields::plan_repo(&repo.dir, &apps, range.from) {
        crate::calendar::app_entries(&mut feed, &fields, &apps.schedules, range, &repo.dir);
    }
    if repo.policy_campaigns {
        crate::calendar::policy_campaign_entries(&mut feed, &apps, range);
    }
    if let Some(store) = store {
        let names: Vec<String> = fleet
            .clusters
            .iter()
            .map(|c| c.object.name.clone())
            .collect();
        crate::calendar::past_entries(&mut feed, store, &names, range)
            .map_err(|e| Failure::report(&e))?;
    }
    Ok(feed)
}

fn repo_page(
    repo: &RepoSource,
    snapshot: &Snapshot,
    page: &str,
    query: &Query,
    now: Timestamp,
    json_twin: bool,
) -> Result<PageData, Failure> {
    if !repo.dir.is_dir() {
        return Err(Failure::new(
            format!("{}: no such directory", repo.dir.display()),
            Some("pass the GitOps repository with --repo DIR"),
        ));
    }
    let loaded = repo_loaded(snapshot)?;
    match page {
        "fleet" => {
            let (clusters, campaigns) = repo_campaigns(repo, loaded, now)?;
            Ok(fleet_page(&clusters, &campaigns, query, now, json_twin))
        }
        "campaigns" => {
            let (_, campaigns) = repo_campaigns(repo, loaded, now)?;
            Ok(campaigns_page(&campaigns, &BTreeMap::new(), now))
        }
        "apps" => repo_apps(repo, loaded, now),
        _ => repo_history(repo, loaded, query),
    }
}

pub(crate) fn unreadable(repo: &RepoSource) -> Failure {
    Failure::new(
        format!(
            "the manifests in {} could not be read (the server's stderr says which file, line and field)",
            repo.dir.display()
        ),
        Some("`upkeep validate` on the repository lists every problem"),
    )
}

fn open_store(repo: &RepoSource) -> Result<Option<upkeep_store::Store>, Failure> {
    crate::store::open_existing_store(repo.store.as_deref()).map_err(|_| {
        Failure::new(
            "the store could not be opened (the server's stderr says why)",
            Some("pass the store `upkeep run` writes with --store"),
        )
    })
}

/// The clusters and what `upkeep status` says of the campaigns at `now` (as
/// [`crate::campaigns::repo_status`], over the snapshot's loaded fleet and releases).
fn repo_campaigns(
    repo: &RepoSource,
    loaded: &RepoLoaded,
    now: Timestamp,
) -> Result<(Vec<ClusterObject>, Campaigns), Failure> {
    let fleet = loaded.clusters.get()?;
    let store = open_store(repo)?;
    let mut campaigns = if let Some(store) = &store {
        crate::campaigns::recorded_campaigns(&fleet, &repo.dir, store, None, now)
            .map_err(|e| Failure::report(&e))?
    } else {
        let releases = loaded.releases.get()?;
        crate::campaign_view::campaigns(
            &fleet,
            None,
            &|u| crate::campaign_view::repo_release(u, &releases),
            now,
        )
    };
    drop(store);
    if repo.policy_campaigns {
        let scanned = loaded.apps.get()?;
        for c in crate::campaign_view::policy_campaigns(&scanned, now) {
            campaigns.push((c.row, c.tz));
        }
    }
    Ok((fleet.objects(), campaigns))
}

pub(crate) fn load_scanned(
    repo: &RepoSource,
    now: Timestamp,
) -> Result<crate::fleet::Fleet, Failure> {
    let credentials = crate::discover::credentials(repo.docker_config.as_deref())
        .map_err(|e| Failure::new(e.to_string(), e.hint().as_deref()))?;
    match crate::fleet::Fleet::load(&repo.dir, now, &credentials) {
        Ok(Ok(f)) => Ok(f),
        Ok(Err(_)) => Err(unreadable(repo)),
        Err(e) => Err(Failure::report(&e)),
    }
}

/// The fields of `upkeep plan`, with the last recorded change of each file.
fn repo_apps(repo: &RepoSource, loaded: &RepoLoaded, now: Timestamp) -> Result<PageData, Failure> {
    let fleet = loaded.apps.get()?;
    let (fields, _diff) =
        crate::app_fields::plan_repo(&repo.dir, &fleet, now).map_err(|_| unreadable(repo))?;
    let store = open_store(repo)?;
    let mut links = BTreeMap::new();
    if let Some(store) = &store {
        let files: BTreeSet<&str> = fields.iter().map(|f| f.file.as_str()).collect();
        let repository = repo.dir.display().to_string();
        for file in files {
            if let Ok(changes) = store.changes_for_file(&repository, file, 1)
                && let Some(c) = changes.first()
            {
                links.insert(
                    file.to_owned(),
                    json!({
                        "at": c.change.at.to_string(),
                        "commit": c.change.commit,
                        "pullRequest": c.change.pull_request,
                        "change": format!("{} → {}", c.change.old, c.change.new),
                    }),
                );
            }
        }
    }
    let mut counts = BTreeMap::new();
    for f in &fields {
        *counts
            .entry(
                serde_json::to_value(f.action)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or("?")
                    .to_owned(),
            )
            .or_insert(0usize) += 1;
    }
    Ok(PageData {
        json: json!({"at": now.to_string(), "fields": fields}),
        view: json!({"links": links, "counts": counts, "mode": "repo"}),
    })
}

/// `upkeep history` (app changes) and each cluster's upgrades, newest first.
fn repo_history(
    repo: &RepoSource,
    loaded: &RepoLoaded,
    query: &Query,
) -> Result<PageData, Failure> {
    let limit = param(query, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(200usize);
    let store = open_store(repo)?;
    let Some(store) = store else {
        return Ok(PageData {
            json: json!({"changes": [], "clusters": []}),
            view: json!({"note": "no store: nothing was recorded yet (upkeep apply and upkeep run record what they change)"}),
        });
    };
    let changes = store
        .changes(limit)
        .map_err(|e| Failure::new(e.to_string(), e.hint().as_deref()))?;
    let fleet = loaded.clusters.get()?;
    let clusters = &fleet.clusters;
    let only = param(query, "cluster");
    let mut upgrades = Vec::new();
    for c in clusters {
        if only.is_some_and(|o| o != c.object.name) {
            continue;
        }
        let listed = store
            .cluster_upgrades(&c.object.name, limit)
            .map_err(|e| Failure::new(e.to_string(), e.hint().as_deref()))?;
        upgrades.extend(listed);
    }
    upgrades.sort_by(|a, b| b.upgrade.at.cmp(&a.upgrade.at).then(b.id.cmp(&a.id)));
    upgrades.truncate(limit);
    let app = param(query, "app");
    let changes: Vec<_> = changes
        .into_iter()
        .filter(|c| app.is_none_or(|a| c.change.policy == a || c.change.file == a))
        .collect();
    Ok(PageData {
        json: json!({"changes": changes, "clusters": upgrades}),
        view: json!({}),
    })
}

// --- the management cluster -----------------------------------------------------------------

async fn kube_page(
    kube: &KubeSource,
    snapshot: &Snapshot,
    page: &str,
    query: &Query,
    now: Timestamp,
    json_twin: bool,
) -> Result<PageData, Failure> {
    let ns = kube.namespace.as_deref();
    let rows = || async {
        crate::management::recorded_rows(&kube.client, &kube.server, ns, None, now)
            .await
            .map_err(|e| Failure::report(&e))
    };
    match page {
        "fleet" => {
            let campaigns = rows().await?;
            let clusters = match &snapshot.loaded {
                Loaded::Kube(k) => k.clusters.get()?,
                Loaded::Repo(_) => {
                    return Err(Failure::new("the snapshot is not of a cluster", None));
                }
            };
            Ok(fleet_page(&clusters, &campaigns, query, now, json_twin))
        }
        "campaigns" => {
            let campaigns = rows().await?;
            let events = campaign_events(kube).await;
            Ok(campaigns_page(&campaigns, &events, now))
        }
        "apps" => kube_apps(kube).await,
        _ => {
            let records = crate::management::cluster_records(
                &kube.client,
                &kube.server,
                ns,
                param(query, "cluster"),
            )
            .await
            .map_err(|e| Failure::report(&e))?;
            let rows: Vec<Value> = records.iter().map(crate::management::record_json).collect();
            Ok(PageData {
                json: Value::Array(rows),
                view: json!({"mode": "kube"}),
            })
        }
    }
}

pub(crate) async fn kube_clusters(kube: &KubeSource) -> Result<Vec<ClusterObject>, Failure> {
    use kube::api::{Api, DynamicObject, ListParams};
    let ar = crate::management::cluster_resource(&kube.client)
        .await
        .map_err(|e| Failure::report(&e))?;
    let api: Api<DynamicObject> = match &kube.namespace {
        Some(ns) => Api::namespaced_with(kube.client.clone(), ns, &ar),
        None => Api::all_with(kube.client.clone(), &ar),
    };
    let list = api.list(&ListParams::default()).await.map_err(|e| {
        Failure::new(
            format!("listing Clusters on {}: {e}", kube.server),
            Some("grant list on clusters.cluster.x-k8s.io"),
        )
    })?;
    list.items
        .iter()
        .map(|o| crate::management::cluster_object(o).map_err(|e| Failure::report(&e)))
        .collect()
}

/// The Events of ClusterUpgrades, newest first, by `namespace/name` (none when they cannot be
/// listed: the page still shows the status).
async fn campaign_events(kube: &KubeSource) -> BTreeMap<String, Vec<Value>> {
    use k8s_openapi::api::core::v1::Event;
    use kube::api::{Api, ListParams};
    let api: Api<Event> = match &kube.namespace {
        Some(ns) => Api::namespaced(kube.client.clone(), ns),
        None => Api::all(kube.client.clone()),
    };
    let params = ListParams::default().fields("involvedObject.kind=ClusterUpgrade");
    let Ok(list) = api.list(&params).await else {
        return BTreeMap::new();
    };
    let mut events: Vec<Event> = list.items;
    let time = |e: &Event| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or(e.event_time.as_ref().map(|t| t.0))
            .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
    };
    events.sort_by_key(|e| std::cmp::Reverse(time(e)));
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in events {
        let key = format!(
            "{}/{}",
            e.involved_object.namespace.as_deref().unwrap_or("default"),
            e.involved_object.name.as_deref().unwrap_or("?")
        );
        let list = out.entry(key).or_default();
        if list.len() < 20 {
            list.push(json!({
                "time": time(&e).map(|t| t.to_string()),
                "type": e.type_,
                "reason": e.reason,
                "message": e.message,
                "count": e.count,
            }));
        }
    }
    out
}

async fn kube_apps(kube: &KubeSource) -> Result<PageData, Failure> {
    use kube::api::{Api, ListParams};
    use upkeep_api::AppUpgradeAutomation;
    let api: Api<AppUpgradeAutomation> = match &kube.namespace {
        Some(ns) => Api::namespaced(kube.client.clone(), ns),
        None => Api::all(kube.client.clone()),
    };
    let list = api.list(&ListParams::default()).await.map_err(|e| {
        Failure::new(
            format!("listing AppUpgradeAutomations on {}: {e}", kube.server),
            Some("install upkeep's CRDs (`upkeep crds | kubectl apply -f -`) and grant list on appupgradeautomations.upkeep.dev"),
        )
    })?;
    let rows: Vec<Value> = list
        .items
        .iter()
        .map(|a| {
            json!({
                "namespace": a.metadata.namespace,
                "name": a.metadata.name,
                "git": a.spec.git.url,
                "path": a.spec.path,
                "status": a.status,
            })
        })
        .collect();
    Ok(PageData {
        json: Value::Array(rows),
        view: json!({"mode": "kube"}),
    })
}

// --- shared arrangements --------------------------------------------------------------------

/// One cluster of the fleet page: the cluster, and what its campaign says of it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FleetRow {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    /// The version the cluster shows (release label, else topology version).
    pub(crate) current: Option<String>,
    /// `namespace/name` of the ClusterUpgrade that holds it (none: no campaign selects it).
    pub(crate) campaign: Option<String>,
    pub(crate) stage: Option<String>,
    pub(crate) target: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) reason: Option<String>,
    /// The next allowed start: now for a cluster that may start, else the expected start or
    /// when time alone changes the decision, never a time that has passed.
    pub(crate) next: Option<Timestamp>,
}

/// Every cluster with its campaigns' rows (one row per campaign that selects it), filtered by
/// `namespace`, `label` (`key` or `key=value`) and `stage`.
pub(crate) fn fleet_rows(
    clusters: &[ClusterObject],
    campaigns: &[(CampaignRow, TimeZone)],
    now: Timestamp,
) -> Vec<FleetRow> {
    let mut by_cluster: HashMap<&str, Vec<(&CampaignRow, &ClusterRow)>> = HashMap::new();
    for (c, _) in campaigns {
        for r in &c.clusters {
            by_cluster.entry(r.name.as_str()).or_default().push((c, r));
        }
    }
    let mut rows = Vec::with_capacity(clusters.len());
    for cluster in clusters {
        let base = |campaign: Option<(&CampaignRow, &ClusterRow)>| FleetRow {
            namespace: cluster
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            name: cluster.name.clone(),
            labels: cluster.labels.clone(),
            current: cluster
                .version_at(None)
                .map(str::to_owned)
                .or_else(|| campaign.and_then(|(_, r)| r.from.clone())),
            campaign: campaign.map(|(c, _)| format!("{}/{}", c.namespace, c.name)),
            stage: campaign.and_then(|(_, r)| r.stage.clone()),
            target: campaign.and_then(|(c, r)| r.to.clone().or_else(|| c.target.clone())),
            state: campaign.map(|(_, r)| r.state.clone()),
            reason: campaign.and_then(|(_, r)| {
                r.reason
                    .clone()
                    .or_else(|| (r.state == "Trigger").then(|| "may start now".to_owned()))
            }),
            next: campaign.and_then(|(_, r)| {
                if r.state == "Trigger" {
                    Some(now)
                } else {
                    r.expected_start.or(r.next).filter(|t| *t > now)
                }
            }),
        };
        match by_cluster.get(cluster.name.as_str()) {
            Some(list) => rows.extend(list.iter().map(|&(c, r)| base(Some((c, r))))),
            None => rows.push(base(None)),
        }
    }
    rows
}

/// Rows of the Fleet page unless `per=` says otherwise.
pub(crate) const FLEET_PER_PAGE: usize = 100;

/// `12,345`.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The Fleet page: the filtered clusters, a page of them (`page`, `per`: 100 by default) on
/// the HTML page and in the JSON twin when it is asked for a `page`, the whole filtered fleet
/// in the JSON twin otherwise; the counts per state and per version are over the whole
/// filtered fleet.
pub(crate) fn fleet_page(
    clusters: &[ClusterObject],
    campaigns: &[(CampaignRow, TimeZone)],
    query: &Query,
    now: Timestamp,
    json_twin: bool,
) -> PageData {
    let all = fleet_rows(clusters, campaigns, now);
    let namespaces: BTreeSet<&str> = all.iter().map(|r| r.namespace.as_str()).collect();
    let stages: BTreeSet<&str> = all.iter().filter_map(|r| r.stage.as_deref()).collect();
    let campaign_names: BTreeSet<&str> = all.iter().filter_map(|r| r.campaign.as_deref()).collect();
    let state_names: BTreeSet<&str> = all
        .iter()
        .map(|r| r.state.as_deref().unwrap_or("no campaign"))
        .collect();
    let (ns, label, stage) = (
        param(query, "namespace"),
        param(query, "label"),
        param(query, "stage"),
    );
    let (campaign, state) = (param(query, "campaign"), param(query, "state"));
    let label = label.map(|l| match l.split_once('=') {
        Some((k, v)) => (k.trim(), Some(v.trim())),
        None => (l, None),
    });
    let choices = json!({"namespaces": namespaces, "stages": stages, "campaigns": campaign_names, "states": state_names});
    let rows: Vec<&FleetRow> = all
        .iter()
        .filter(|r| ns.is_none_or(|n| r.namespace == n))
        .filter(|r| stage.is_none_or(|s| r.stage.as_deref() == Some(s)))
        .filter(|r| campaign.is_none_or(|c| r.campaign.as_deref() == Some(c)))
        .filter(|r| state.is_none_or(|s| r.state.as_deref().unwrap_or("no campaign") == s))
        .filter(|r| {
            label.is_none_or(|(k, v)| {
                r.labels
                    .get(k)
                    .is_some_and(|have| v.is_none_or(|v| have == v))
            })
        })
        .collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut versions: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *counts
            .entry(r.state.as_deref().unwrap_or("no campaign"))
            .or_default() += 1;
        *versions
            .entry(r.current.as_deref().unwrap_or("?"))
            .or_default() += 1;
    }
    let per = param(query, "per")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(FLEET_PER_PAGE)
        .min(1000);
    let asked = param(query, "page");
    let wanted = asked
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let pages = rows.len().div_ceil(per).max(1);
    let page = wanted.min(pages);
    let first = (page - 1) * per;
    let shown: &[&FleetRow] = &rows[first.min(rows.len())..(first + per).min(rows.len())];
    let link = |p: usize| {
        let mut q: Vec<(&str, String)> = Vec::new();
        for key in ["namespace", "stage", "label", "campaign", "state", "per"] {
            if let Some(v) = param(query, key) {
                q.push((key, v.to_owned()));
            }
        }
        q.push(("page", p.to_string()));
        format!(
            "/fleet?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(q)
                .finish()
        )
    };
    let filters = json!({"namespace": ns, "label": param(query, "label"), "stage": stage, "campaign": campaign, "state": state});
    let paged = !json_twin || asked.is_some();
    let json = if paged {
        json!({
            "at": now.to_string(),
            "filters": filters,
            "page": page,
            "pages": pages,
            "per": per,
            "matching": rows.len(),
            "clusters": shown,
        })
    } else {
        json!({
            "at": now.to_string(),
            "filters": filters,
            "clusters": rows,
        })
    };
    let shown_text = if shown.is_empty() {
        format!("no cluster of {}", thousands(rows.len()))
    } else {
        format!(
            "clusters {}–{} of {}",
            thousands(first + 1),
            thousands(first + shown.len()),
            thousands(rows.len())
        )
    };
    PageData {
        json,
        view: json!({
            "counts": counts,
            "versions": versions,
            "choices": choices,
            "total": all.len(),
            "matching": rows.len(),
            "shown": shown_text,
            "page": page,
            "pages": pages,
            "first": (page > 1).then(|| link(1)),
            "prev": (page > 1).then(|| link(page - 1)),
            "next": (page < pages).then(|| link(page + 1)),
            "last": (page < pages).then(|| link(pages)),
        }),
    }
}

/// One stage of a campaign as drawn: counts per state and bar segments (x and width in
/// percent).
fn stage_view(name: &str, rows: &[&ClusterRow], now: Timestamp) -> Value {
    const KINDS: [(&str, &[&str]); 5] = [
        ("succeeded", &["Succeeded", "Skipped"]),
        ("running", &["Triggered", "Upgrading"]),
        ("ready", &["Trigger"]),
        ("failed", &["Failed", "Halted"]),
        ("waiting", &["Waiting", "Pending"]),
    ];
    let total = rows.len().max(1);
    let mut x = 0.0;
    let mut segments = Vec::new();
    let mut counts = serde_json::Map::new();
    for (kind, states) in KINDS {
        let n = rows
            .iter()
            .filter(|r| states.contains(&r.state.as_str()))
            .count();
        counts.insert(kind.into(), n.into());
        #[allow(clippy::cast_precision_loss)]
        let width = 100.0 * n as f64 / total as f64;
        if n > 0 {
            segments.push(json!({"kind": kind, "x": x, "width": width, "count": n}));
        }
        x += width;
    }
    // The soonest time something in the stage may change by time alone (a soak, a window).
    let next = rows
        .iter()
        .filter_map(|r| {
            r.expected_start
                .or(r.next)
                .filter(|t| *t > now)
                .map(|t| (t, r))
        })
        .min_by_key(|(t, _)| *t);
    json!({
        "name": name,
        "total": rows.len(),
        "counts": counts,
        "segments": segments,
        "next": next.map(|(t, _)| t.to_string()),
        "nextReason": next.and_then(|(_, r)| r.reason.clone()),
    })
}

/// The clusters (and failures) of one campaign the Campaigns page lists; the rest are a link to
/// the Fleet page filtered by the campaign.
const CAMPAIGN_ROWS: usize = 100;

fn campaigns_page(
    campaigns: &[(CampaignRow, TimeZone)],
    events: &BTreeMap<String, Vec<Value>>,
    now: Timestamp,
) -> PageData {
    let rows: Vec<&CampaignRow> = campaigns.iter().map(|(c, _)| c).collect();
    let views: Vec<Value> = rows
        .iter()
        .map(|c| {
            let mut order: Vec<String> = Vec::new();
            let mut by_stage: HashMap<String, Vec<&ClusterRow>> = HashMap::new();
            for r in &c.clusters {
                let s = r.stage.clone().unwrap_or_else(|| "(all)".into());
                if !by_stage.contains_key(&s) {
                    order.push(s.clone());
                }
                by_stage.entry(s).or_default().push(r);
            }
            let stages: Vec<Value> = order
                .iter()
                .map(|s| stage_view(s, &by_stage[s], now))
                .collect();
            let failures: Vec<&ClusterRow> = c
                .clusters
                .iter()
                .filter(|r| matches!(r.state.as_str(), "Failed" | "Halted"))
                .collect();
            let key = format!("{}/{}", c.namespace, c.name);
            // At most CAMPAIGN_ROWS clusters and failures on the page; the rest on the Fleet
            // page, filtered by the campaign (and paged).
            let fleet = |state: Option<&str>| {
                let mut q = vec![("campaign", key.as_str())];
                if let Some(s) = state {
                    q.push(("state", s));
                }
                format!(
                    "/fleet?{}",
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(q)
                        .finish()
                )
            };
            json!({
                "stages": stages,
                "failures": &failures[..failures.len().min(CAMPAIGN_ROWS)],
                "failuresMore": failures.len().saturating_sub(CAMPAIGN_ROWS),
                "failuresLink": fleet(Some("Failed")),
                "clusters": &c.clusters[..c.clusters.len().min(CAMPAIGN_ROWS)],
                "clustersMore": c.clusters.len().saturating_sub(CAMPAIGN_ROWS),
                "clustersLink": fleet(None),
                "events": events.get(&key).cloned().unwrap_or_default(),
                "overall": stage_view("all", &c.clusters.iter().collect::<Vec<_>>(), now),
            })
        })
        .collect();
    PageData {
        json: serde_json::to_value(&rows).unwrap_or_default(),
        view: json!({"campaigns": views}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str, ns: &str, version: &str) -> ClusterObject {
        ClusterObject::from_json(json!({
            "apiVersion": "cluster.x-k8s.io/v1beta1",
            "kind": "Cluster",
            "metadata": {"name": name, "namespace": ns, "labels": {
                "release.giantswarm.io/version": version, "stage": "prod"}},
        }))
        .expect("a cluster")
    }

    fn row(name: &str, state: &str, next: Option<&str>) -> ClusterRow {
        ClusterRow {
            name: name.into(),
            stage: Some("prod".into()),
            state: state.into(),
            reason: None,
            from: Some("1.0.0".into()),
            to: Some("2.0.0".into()),
            next: next.map(|t| t.parse().expect("time")),
            expected_start: None,
        }
    }

    #[test]
    fn fleet_rows_join_clusters_and_campaigns() {
        let now: Timestamp = "2026-12-06T12:00:00Z".parse().expect("time");
        let campaign = CampaignRow {
            name: "c".into(),
            namespace: "org".into(),
            target: Some("2.0.0".into()),
            state: "Running".into(),
            outcome: None,
            reason: None,
            next_check: None,
            stage: None,
            progress: None,
            clusters: vec![
                row("a", "Trigger", None),
                row("b", "Waiting", Some("2026-12-06T11:00:00Z")),
                row("c", "Waiting", Some("2026-12-07T02:00:00Z")),
            ],
        };
        let clusters = [
            cluster("a", "org", "1.0.0"),
            cluster("b", "org", "1.0.0"),
            cluster("c", "org", "1.0.0"),
            cluster("d", "other", "1.0.0"),
        ];
        let rows = fleet_rows(&clusters, &[(campaign, TimeZone::UTC)], now);
        let by = |n: &str| rows.iter().find(|r| r.name == n).expect("row");
        assert_eq!(
            by("a").next,
            Some(now),
            "a cluster that may start: next is now"
        );
        assert_eq!(by("b").next, None, "a time that has passed is not next");
        assert_eq!(
            by("c").next.map(|t| t.to_string()).as_deref(),
            Some("2026-12-07T02:00:00Z"),
            "a future time is next"
        );
        assert_eq!(
            by("d").campaign,
            None,
            "a cluster no campaign selects has a row of its own"
        );
        assert_eq!(
            by("a").target.as_deref(),
            Some("2.0.0"),
            "target from the campaign"
        );
        assert_eq!(rows.len(), 4, "one row per cluster and campaign");
    }

    #[test]
    fn thousands_separators() {
        for (n, want) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (5000, "5,000"),
            (1_234_567, "1,234,567"),
        ] {
            assert_eq!(thousands(n), want, "{n}");
        }
    }

    #[test]
    fn stage_bars_add_up() {
        let now: Timestamp = "2026-12-06T12:00:00Z".parse().expect("time");
        let rows = [
            row("a", "Succeeded", None),
            row("b", "Failed", None),
            row("c", "Waiting", Some("2026-12-06T13:00:00Z")),
            row("d", "Upgrading", None),
        ];
        let refs: Vec<&ClusterRow> = rows.iter().collect();
        let v = stage_view("prod", &refs, now);
        let widths: f64 = v["segments"]
            .as_array()
            .expect("segments")
            .iter()
            .map(|s| s["width"].as_f64().expect("width"))
            .sum();
        assert!(
            (widths - 100.0).abs() < 1e-9,
            "the segments fill the bar: {v}"
        );
        assert_eq!(v["counts"]["failed"], 1, "failed counted");
        assert_eq!(
            v["next"], "2026-12-06T13:00:00Z",
            "the soonest change by time"
        );
    }
}
