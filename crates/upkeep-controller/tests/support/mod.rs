//! What every controller test against the real API server needs: a kube-rs client for a
//! testenv user, and polling with a deadline (never a fixed sleep as a wait).

#![allow(dead_code, unreachable_pub)] // each test binary uses its own subset

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
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the controller stops on shutdown")
            .expect("no panic");
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
