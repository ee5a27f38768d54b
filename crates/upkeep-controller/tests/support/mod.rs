//! What every controller test against the real API server needs: a kube-rs client for a
//! testenv user, and polling with a deadline (never a fixed sleep as a wait).

#![allow(dead_code, unreachable_pub)] // each test binary uses its own subset

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use upkeep_testenv::{KubeApiServer, KubeUser, upkeep_crds};

/// How long [`eventually`] waits by default.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A client for `user` (the testenv's admin, or the unprivileged controller user).
pub async fn client(server: &KubeApiServer, user: KubeUser) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&server.kubeconfig(user)).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    kube::Client::try_from(config).expect("client")
}

/// Polls `get` until `done` holds for its result, or fails after [`DEADLINE`] with the last
/// value.
pub async fn eventually<T: std::fmt::Debug>(
    get: impl AsyncFnMut() -> T,
    done: impl Fn(&T) -> bool,
    what: &str,
) -> T {
    eventually_within(DEADLINE, get, done, what).await
}

/// [`eventually`] with its own deadline.
pub async fn eventually_within<T: std::fmt::Debug>(
    within: Duration,
    mut get: impl AsyncFnMut() -> T,
    done: impl Fn(&T) -> bool,
    what: &str,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let value = get().await;
        if done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: still {value:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A controller running in this test process; [`Running::stop`] shuts it down and checks that
/// it stopped cleanly.
pub struct Running {
    pub stop: tokio::sync::oneshot::Sender<()>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Spawns `run` (a controller's `run_*` with its settings) with a shutdown that
    /// [`Running::stop`] resolves.
    pub fn spawn<F>(run: impl FnOnce(Shutdown) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        Self {
            stop,
            task: tokio::spawn(run(Shutdown(stopped))),
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the controller stops on shutdown")
            .expect("no panic");
    }
}

/// The shutdown signal a controller started by [`Running::spawn`] runs until.
pub struct Shutdown(tokio::sync::oneshot::Receiver<()>);

impl Future for Shutdown {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// Waits until the wall clock has left the current second. Cluster API condition times have
/// whole seconds and the rollout core counts a provider transition at or after the trigger's
/// second, so a trigger must not share the second in which the provider last marked a cluster
/// Ready.
pub async fn next_second() {
    let now = jiff::Timestamp::now().as_second();
    eventually(
        async || jiff::Timestamp::now().as_second(),
        |s| *s > now,
        "the next second",
    )
    .await;
}

/// A fresh API server with upkeep's CRDs applied and Established.
pub async fn api_server_with_crds() -> KubeApiServer {
    KubeApiServer::start_with_crds(&[&upkeep_crds()])
        .await
        .expect("kube-apiserver with the CRDs established")
}

/// A MaintenanceSchedule `name` in `default`: Tuesday nights 22:00–02:00, Berlin time (YAML).
pub fn tuesday_night_schedule(name: &str) -> String {
    format!(
        "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {{name: {name}, namespace: default}}
spec:
  timeZone: Europe/Berlin
  maintenanceWindows:
    - name: tuesday-night
      startTime: 2026-01-06T22:00:00
      endTime: 2026-01-07T02:00:00
      recurrence: FREQ=WEEKLY;BYDAY=TU
"
    )
}

/// The MaintenanceSchedule in `yaml`, read as `upkeep` reads a file.
pub fn parse_schedule(yaml: &str) -> upkeep_api::MaintenanceSchedule {
    match upkeep_api::load_str(std::path::Path::new("s.yaml"), yaml)
        .documents
        .into_iter()
        .next()
        .map(|d| d.resource)
    {
        Some(upkeep_api::Resource::MaintenanceSchedule { object, .. }) => *object,
        other => panic!("{other:?}"),
    }
}

/// The Git-writing controllers' settings as the tests run them: the clock fixed at `now`, a
/// retry after 1 s, clones in `workdir`.
pub fn git_workspace(
    client: &kube::Client,
    now: jiff::Timestamp,
    workdir: &std::path::Path,
) -> std::sync::Arc<upkeep_controller::gitops::GitWorkspace> {
    std::sync::Arc::new(upkeep_controller::gitops::GitWorkspace {
        ctx: std::sync::Arc::new(
            upkeep_controller::framework::Context::new(client.clone())
                .with_clock(move || now)
                .with_retry_after(Duration::from_secs(1)),
        ),
        workdir: workdir.to_path_buf(),
    })
}

/// `git --git-dir <bare> args…`: its output, empty when git fails.
pub fn bare_git(bare: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["--git-dir", bare.to_str().expect("utf-8")];
    all.extend_from_slice(args);
    upkeep_testenv::git(&all, None).unwrap_or_default()
}

/// `git/fleet` on `forge` has exactly one pull request, from `head` to `main`.
pub fn assert_one_pull_request(forge: &upkeep_testenv::PrStandIn, head: &str) {
    let prs = forge.pull_requests("git/fleet");
    assert_eq!(prs.len(), 1, "{prs:?}");
    assert_eq!((prs[0].head.as_str(), prs[0].base.as_str()), (head, "main"));
}

/// No secret of `secrets` shows in `status` (as JSON).
pub fn assert_no_secret(status: &impl serde::Serialize, secrets: &[&str]) {
    let shown = serde_json::to_string(status).expect("json");
    assert!(
        secrets.iter().all(|s| !shown.contains(s)),
        "no secret in status: {shown}"
    );
}

/// The condition of `type_` among `conditions`; fails the test when there is none.
pub fn condition<'a>(
    conditions: &'a [k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("{type_}"))
}

/// `kubectl apply` of `yaml`, as the admin.
/// The `spec.state` of `cluster`'s ClusterUpgradeRecord in `namespace` (`-` without one): a
/// finished cluster is in its record, not in the campaign's bounded status.
pub async fn record_state(client: &kube::Client, namespace: &str, cluster: &str) -> String {
    kube::Api::<upkeep_api::ClusterUpgradeRecord>::namespaced(client.clone(), namespace)
        .list(&kube::api::ListParams::default())
        .await
        .expect("records")
        .items
        .into_iter()
        .find(|r| r.spec.cluster == cluster)
        .map_or_else(|| "-".to_owned(), |r| r.spec.state)
}

pub fn apply(server: &KubeApiServer, yaml: &str) {
    server
        .kubectl_stdin(&["apply", "-f", "-"], yaml)
        .unwrap_or_else(|e| panic!("apply: {e}\n{yaml}"));
}

/// The status of the ClusterUpgrade `name` (empty while it has none).
pub async fn status(
    api: &kube::Api<upkeep_api::ClusterUpgrade>,
    name: &str,
) -> upkeep_api::cluster_upgrade::ClusterUpgradeStatus {
    api.get(name).await.expect("get").status.unwrap_or_default()
}
