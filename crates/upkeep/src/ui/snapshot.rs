//! One snapshot of the loaded fleet, shared by every page and request of a dashboard.
//!
//! Loading a repository (parsing every manifest, scanning the app sources) is the expensive
//! part of a page at 5,000 clusters, and it gives the same answer for every page until the
//! repository changes; deciding (which cluster may start, what a field is held for) depends on
//! the request's instant and stays per request, in [`super::pages`].
//!
//! A snapshot is rebuilt when it is older than the refresh interval (`upkeep serve --refresh`)
//! or when a cheap check says the source changed (the stamps — inode, size, change times — of
//! the repository's manifest files; a management cluster has no cheap check: its age alone).
//! Requests that arrive while a rebuild runs wait for that one rebuild (one lock, and a request
//! takes a snapshot whose rebuild started after it arrived), so there is never a stampede.
//! A part that fails to load keeps the last good one, and the pages say what failed and when.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use upkeep_api::ClusterObject;

use super::Ui;
use super::pages::{Failure, RepoSource, Source};
use crate::fleet::{ClusterFleet, Fleet};

/// One part of a snapshot: the last good load, and the failure of the latest load if it
/// failed.
#[derive(Debug)]
pub(crate) struct Part<T> {
    pub(crate) value: Option<Arc<T>>,
    /// When `value` was loaded.
    pub(crate) as_of: Option<Timestamp>,
    /// Why the latest load failed (then `value` is an older one, or none).
    pub(crate) error: Option<Problem>,
}

impl<T> Clone for Part<T> {
    fn clone(&self) -> Self {
        Part {
            value: self.value.clone(),
            as_of: self.as_of,
            error: self.error.clone(),
        }
    }
}

impl<T> Default for Part<T> {
    fn default() -> Self {
        Part {
            value: None,
            as_of: None,
            error: None,
        }
    }
}

impl<T> Part<T> {
    fn loaded(value: T, at: Timestamp) -> Self {
        Part {
            value: Some(Arc::new(value)),
            as_of: Some(at),
            error: None,
        }
    }

    /// The latest load failed: keep the previous value.
    fn failed(previous: Option<&Part<T>>, problem: Problem) -> Self {
        Part {
            value: previous.and_then(|p| p.value.clone()),
            as_of: previous.and_then(|p| p.as_of),
            error: Some(problem),
        }
    }

    /// The value, or the failure that left none.
    pub(crate) fn get(&self) -> Result<Arc<T>, Failure> {
        match (&self.value, &self.error) {
            (Some(v), _) => Ok(v.clone()),
            (None, Some(p)) => Err(Failure::from_problem(p)),
            (None, None) => Err(Failure::from_problem(&Problem {
                message: "nothing was loaded yet".into(),
                hint: None,
            })),
        }
    }
}

/// Why a load failed.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl From<Failure> for Problem {
    fn from(f: Failure) -> Self {
        Problem {
            message: f.message,
            hint: f.hint,
        }
    }
}

/// A repository, loaded.
#[derive(Debug, Default)]
pub(crate) struct RepoLoaded {
    /// Clusters, schedules and ClusterUpgrades (with the scheduled-upgrade annotations'
    /// one-cluster upgrades), as `upkeep status` loads them.
    pub(crate) clusters: Part<ClusterFleet>,
    /// The Release manifests of the repository (a campaign's `releaseRef`).
    pub(crate) releases: Part<Vec<(std::path::PathBuf, upkeep_api::release::Release)>>,
    /// The fleet as `upkeep plan` loads it: sources scanned, policies decided at load time.
    pub(crate) apps: Part<Fleet>,
}

/// A management cluster, loaded: the Clusters (ClusterUpgrades, their records and Events are
/// listed per request, with the decisions).
#[derive(Debug, Default)]
pub(crate) struct KubeLoaded {
    pub(crate) clusters: Part<Vec<ClusterObject>>,
}

#[derive(Debug)]
pub(crate) enum Loaded {
    Repo(RepoLoaded),
    Kube(KubeLoaded),
}

/// What every page of one request reads.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// When this snapshot's rebuild started.
    pub(crate) built: Timestamp,
    pub(crate) loaded: Loaded,
}

impl Snapshot {
    /// The oldest time any part's data is from (what "as of" says).
    pub(crate) fn as_of(&self) -> Timestamp {
        let times: Vec<Option<Timestamp>> = match &self.loaded {
            Loaded::Repo(r) => vec![r.clusters.as_of, r.releases.as_of, r.apps.as_of],
            Loaded::Kube(k) => vec![k.clusters.as_of],
        };
        times.into_iter().flatten().min().unwrap_or(self.built)
    }

    /// The failures of the latest rebuild (`what: message`).
    pub(crate) fn errors(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut add = |what: &str, p: &Option<Problem>| {
            if let Some(p) = p {
                let hint = p
                    .hint
                    .as_ref()
                    .map(|h| format!(" (hint: {h})"))
                    .unwrap_or_default();
                out.push(format!("{what}: {}{hint}", p.message));
            }
        };
        match &self.loaded {
            Loaded::Repo(r) => {
                add("clusters, schedules and campaigns", &r.clusters.error);
                add("releases", &r.releases.error);
                add("apps (policies and sources)", &r.apps.error);
            }
            Loaded::Kube(k) => add("clusters", &k.clusters.error),
        }
        out
    }
}

/// The latest snapshot and how it was made.
struct Current {
    snapshot: Arc<Snapshot>,
    /// When its rebuild started.
    started: Instant,
    /// The source's stamp when its rebuild started.
    stamp: Stamp,
}

/// The cheap check of a source: equal stamps, unchanged source (as far as this check sees).
type Stamp = Option<Vec<(String, upkeep_api::walk::Stamp)>>;

/// The snapshots of one dashboard.
pub(crate) struct Cache {
    /// Rebuild when older than this (zero: for every request).
    max_age: Duration,
    current: Mutex<Option<Current>>,
    rebuilding: tokio::sync::Mutex<()>,
}

impl Cache {
    pub(crate) fn new(max_age: Duration) -> Self {
        Cache {
            max_age,
            current: Mutex::new(None),
            rebuilding: tokio::sync::Mutex::new(()),
        }
    }

    fn latest(&self) -> Option<(Arc<Snapshot>, Instant, Stamp)> {
        let current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        current
            .as_ref()
            .map(|c| (c.snapshot.clone(), c.started, c.stamp.clone()))
    }

    /// The snapshot a request that arrived at `arrived` reads: the current one when it is
    /// younger than the refresh interval and the source's stamp is unchanged, else the one
    /// rebuild (started after the request arrived, by this request or another).
    pub(crate) async fn get(&self, ui: &Arc<Ui>, arrived: Instant) -> Arc<Snapshot> {
        let fresh = |started: Instant, stamp: &Stamp, now_stamp: &Stamp| {
            started >= arrived || (started.elapsed() < self.max_age && stamp == now_stamp)
        };
        let now_stamp = stamp(ui).await;
        if let Some((snapshot, started, stamp)) = self.latest()
            && fresh(started, &stamp, &now_stamp)
        {
            return snapshot;
        }
        let _one = self.rebuilding.lock().await;
        let previous = self.latest();
        if let Some((snapshot, started, stamp)) = &previous
            && fresh(*started, stamp, &stamp_now(ui, &now_stamp).await)
        {
            return snapshot.clone();
        }
        let started = Instant::now();
        let stamp = stamp(ui).await;
        let snapshot = Arc::new(build(ui, previous.as_ref().map(|(s, _, _)| s.clone())).await);
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Current {
            snapshot: snapshot.clone(),
            started,
            stamp,
        });
        snapshot
    }
}

/// The stamp again, unless the source has none (then the one given).
async fn stamp_now(ui: &Arc<Ui>, given: &Stamp) -> Stamp {
    if given.is_none() {
        return None;
    }
    stamp(ui).await
}

/// The stamps of the repository's manifest files (`None` for a management cluster).
async fn stamp(ui: &Arc<Ui>) -> Stamp {
    let Source::Repo(repo) = &ui.source else {
        return None;
    };
    let dir = repo.dir.clone();
    tokio::task::spawn_blocking(move || {
        let walked = upkeep_api::walk::walk(&dir, "");
        let mut out: Vec<(String, upkeep_api::walk::Stamp)> = walked
            .files
            .into_iter()
            .filter_map(|f| {
                let meta = std::fs::metadata(&f.path).ok()?;
                Some((f.rel, upkeep_api::walk::Stamp::of(&meta)))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Some(out)
    })
    .await
    .unwrap_or(None)
}

/// A new snapshot; a part that fails keeps `previous`'s.
async fn build(ui: &Arc<Ui>, previous: Option<Arc<Snapshot>>) -> Snapshot {
    let built = Timestamp::now();
    let loaded = match &ui.source {
        Source::Repo(_) => {
            let ui2 = ui.clone();
            let prev = previous.clone();
            tokio::task::spawn_blocking(move || {
                let Source::Repo(repo) = &ui2.source else {
                    unreachable!("matched above")
                };
                let prev = prev.as_deref().and_then(|s| match &s.loaded {
                    Loaded::Repo(r) => Some(r),
                    Loaded::Kube(_) => None,
                });
                Loaded::Repo(load_repo(repo, ui2.at.unwrap_or(built), built, prev))
            })
            .await
            .unwrap_or_else(|e| {
                let problem = Problem {
                    message: format!("loading the repository failed: {e}"),
                    hint: Some("this is a bug in upkeep; the server goes on".into()),
                };
                let prev = previous.as_deref().and_then(|s| match &s.loaded {
                    Loaded::Repo(r) => Some(r),
                    Loaded::Kube(_) => None,
                });
                Loaded::Repo(RepoLoaded {
                    clusters: Part::failed(prev.map(|p| &p.clusters), problem.clone()),
                    releases: Part::failed(prev.map(|p| &p.releases), problem.clone()),
                    apps: Part::failed(prev.map(|p| &p.apps), problem),
                })
            })
        }
        Source::Kube(kube) => {
            let prev = previous.as_deref().and_then(|s| match &s.loaded {
                Loaded::Kube(k) => Some(k),
                Loaded::Repo(_) => None,
            });
            Loaded::Kube(KubeLoaded {
                clusters: match super::pages::kube_clusters(kube).await {
                    Ok(c) => Part::loaded(c, built),
                    Err(f) => Part::failed(prev.map(|p| &p.clusters), f.into()),
                },
            })
        }
    };
    Snapshot { built, loaded }
}

fn load_repo(
    repo: &RepoSource,
    now: Timestamp,
    built: Timestamp,
    prev: Option<&RepoLoaded>,
) -> RepoLoaded {
    if !repo.dir.is_dir() {
        let problem = Problem {
            message: format!("{}: no such directory", repo.dir.display()),
            hint: Some("pass the GitOps repository with --repo DIR".into()),
        };
        return RepoLoaded {
            clusters: Part::failed(prev.map(|p| &p.clusters), problem.clone()),
            releases: Part::failed(prev.map(|p| &p.releases), problem.clone()),
            apps: Part::failed(prev.map(|p| &p.apps), problem),
        };
    }
    let clusters = match ClusterFleet::load(&repo.dir) {
        Ok(Ok(f)) => Part::loaded(crate::schedule_annotations::with_scheduled(f), built),
        Ok(Err(_)) => Part::failed(prev.map(|p| &p.clusters), invalid(repo)),
        Err(e) => Part::failed(prev.map(|p| &p.clusters), Failure::report(&e).into()),
    };
    let releases = Part::loaded(upkeep_api::release::releases_in(&repo.dir), built);
    let apps = match super::pages::load_scanned(repo, now) {
        Ok(f) => Part::loaded(f, built),
        Err(f) => Part::failed(prev.map(|p| &p.apps), f.into()),
    };
    RepoLoaded {
        clusters,
        releases,
        apps,
    }
}

/// Why the clusters of `repo` did not load: the first invalid objects cluster decisions
/// depend on, by file and line (read again: only when loading failed).
fn invalid(repo: &RepoSource) -> Problem {
    let loaded = upkeep_api::load_resources(&repo.dir);
    let mut lines: Vec<String> = loaded
        .invalid
        .iter()
        .filter(|o| {
            matches!(
                o.kind.as_str(),
                "Cluster" | "ClusterUpgrade" | "ClusterUpgradePolicy" | "MaintenanceSchedule"
            )
        })
        .map(|o| {
            let file = o.file.strip_prefix(&repo.dir).unwrap_or(&o.file);
            // The diagnostic of the object's document: its line and field.
            let at = loaded
                .diagnostics
                .iter()
                .filter(|d| d.file == o.file && d.line >= o.line)
                .min_by_key(|d| d.line);
            let (line, field, message) = match at {
                Some(d) => (d.line, d.field.as_deref(), d.message.as_str()),
                None => (o.line, None, o.message.as_str()),
            };
            format!(
                "{}:{line}: {} {}/{}: {}{message}",
                file.display(),
                o.kind,
                o.namespace.as_deref().unwrap_or("default"),
                o.name.as_deref().unwrap_or("?"),
                field.map(|f| format!("{f}: ")).unwrap_or_default(),
            )
        })
        .collect();
    let more = lines.len().saturating_sub(5);
    lines.truncate(5);
    if more > 0 {
        lines.push(format!("and {more} more"));
    }
    let failure = super::pages::unreadable(repo);
    Problem {
        message: if lines.is_empty() {
            failure.message
        } else {
            format!("invalid manifests: {}", lines.join("; "))
        },
        hint: failure.hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ui(dir: &std::path::Path) -> Arc<Ui> {
        Arc::new(Ui {
            source: Source::Repo(RepoSource {
                dir: dir.to_path_buf(),
                store: Some(dir.join("none.redb")),
                docker_config: None,
                policy_campaigns: false,
            }),
            at: None,
            refresh: 3600,
            memory: crate::calendar::Memory::default(),
        })
    }

    const CLUSTER: &str = "apiVersion: cluster.x-k8s.io/v1beta1\nkind: Cluster\nmetadata: {name: a, namespace: org}\nspec: {}\n";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_one_load() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("fleet.yaml"), CLUSTER).expect("write");
        let (ui, cache) = (
            ui(dir.path()),
            Arc::new(Cache::new(Duration::from_secs(3600))),
        );
        let arrived = Instant::now();
        let loads: Vec<_> = (0..8)
            .map(|_| {
                let (ui, cache) = (ui.clone(), cache.clone());
                tokio::spawn(async move { cache.get(&ui, arrived).await })
            })
            .collect();
        let mut got = Vec::new();
        for l in loads {
            got.push(l.await.expect("a snapshot"));
        }
        assert!(
            got.iter().all(|s| Arc::ptr_eq(s, &got[0])),
            "eight requests arriving together read the one snapshot loaded for them"
        );
        let later = cache.get(&ui, Instant::now()).await;
        assert!(
            Arc::ptr_eq(&later, &got[0]),
            "a later request within the refresh interval, nothing changed: the same snapshot"
        );
        // A changed file is a new load.
        std::fs::write(
            dir.path().join("fleet.yaml"),
            CLUSTER.replace("name: a", "name: b"),
        )
        .expect("write");
        let changed = cache.get(&ui, Instant::now()).await;
        assert!(
            !Arc::ptr_eq(&changed, &got[0]),
            "the stamp changed: loaded again"
        );
        let Loaded::Repo(r) = &changed.loaded else {
            panic!("a repository")
        };
        let fleet = r.clusters.get().expect("clusters");
        assert_eq!(fleet.clusters[0].object.name, "b", "the new manifest");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_load_keeps_the_last_good_one() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("fleet.yaml"), CLUSTER).expect("write");
        let (ui, cache) = (ui(dir.path()), Cache::new(Duration::from_secs(3600)));
        let good = cache.get(&ui, Instant::now()).await;
        assert!(good.errors().is_empty(), "{:?}", good.errors());
        std::fs::write(
            dir.path().join("broken.yaml"),
            "apiVersion: cluster.x-k8s.io/v1beta1\nkind: Cluster\nmetadata: {name: c, namespace: org, labels: [x]}\n",
        )
        .expect("write");
        let bad = cache.get(&ui, Instant::now()).await;
        let errors = bad.errors();
        assert!(
            errors.iter().any(|e| e.contains("broken.yaml")),
            "the failure names the file: {errors:?}"
        );
        let Loaded::Repo(r) = &bad.loaded else {
            panic!("a repository")
        };
        assert_eq!(
            r.clusters.get().expect("the last good clusters").clusters[0]
                .object
                .name,
            "a"
        );
        assert_eq!(bad.as_of(), good.as_of(), "as of the last good load");
    }
}
