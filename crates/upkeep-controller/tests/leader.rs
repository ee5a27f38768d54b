//! Leader election against a real kube-apiserver 1.20.2 (upkeep-testenv): two controller
//! instances in one process, each with its own client, identity and clock, each running
//! `run_schedules` behind its own `LeaderElector` on the same Lease.
//!
//! The clocks differ on purpose: instance "a" lives on a Saturday (no window open), instance
//! "b" on a Tuesday night inside the window, so the schedule's status says which instance wrote
//! it. Timings are shortened (3 s lease) so takeovers happen within a test's patience; the
//! ordering the safety argument needs (renew < deadline < duration) is the production one.

mod support;
use support::{api_server_with_crds, client, eventually_within, tuesday_night_schedule};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use tokio::task::JoinHandle;
use upkeep_api::MaintenanceSchedule;
use upkeep_controller::controllers::{Controllers, Shutdown, ShutdownTrigger};
use upkeep_controller::framework::Context;
use upkeep_controller::leader::{LeaderElector, LeaseConfig};
use upkeep_controller::metrics::Metrics;
use upkeep_controller::schedule::run_schedules;
use upkeep_controller::serve::Health;
use upkeep_testenv::{KubeApiServer, KubeUser};

const LEASE: &str = "upkeep-controller";
const LEASE_DURATION: Duration = Duration::from_secs(3);

fn config(identity: &str) -> LeaseConfig {
    let mut config = LeaseConfig::new(LEASE, "default", identity);
    config.lease_duration = LEASE_DURATION;
    config.renew_deadline = Duration::from_secs(2);
    config.renew_interval = Duration::from_millis(500);
    config.retry_period = Duration::from_millis(200);
    config.stop_grace = Duration::from_secs(1);
    config
}

/// One controller instance: its elector task, its health, and the trigger that stops it.
struct Instance {
    health: Arc<Health>,
    stop: ShutdownTrigger,
    task: JoinHandle<()>,
}

fn start(client: &kube::Client, identity: &str, now: Timestamp) -> Instance {
    let ctx = Arc::new(Context::new(client.clone()).with_clock(move || now));
    let health = Arc::new(Health::new());
    let (stop, shutdown) = Shutdown::new();
    let elector = LeaderElector::new(client.clone(), config(identity)).expect("valid timing");
    let task = tokio::spawn({
        let health = health.clone();
        async move {
            let controllers = Controllers::new().with("MaintenanceSchedule", run_schedules);
            elector
                .run(ctx, &controllers, &Metrics::new(), &health, shutdown)
                .await;
        }
    });
    Instance { health, stop, task }
}

fn saturday() -> Timestamp {
    "2026-11-21T10:00:00Z".parse().unwrap()
}

/// Tuesday 2026-11-24 22:30 in Berlin: inside the window.
fn tuesday_night() -> Timestamp {
    "2026-11-24T21:30:00Z".parse().unwrap()
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// Which clock wrote the status: `Some(true)` = inside the window ("b"), `Some(false)` = "a".
async fn window_open(api: &Api<MaintenanceSchedule>) -> Option<bool> {
    let status = api.get("prod").await.ok()?.status?;
    if status.next_windows.is_empty() {
        return None;
    }
    Some(status.active_window.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_writes_status_and_a_standby_takes_over() {
    let server = api_server_with_crds().await;
    server
        .kubectl_stdin(&["apply", "-f", "-"], &tuesday_night_schedule("prod"))
        .expect("schedule");
    let admin = client(&server, KubeUser::Admin).await;
    let leases: Api<Lease> = Api::namespaced(admin.clone(), "default");
    let schedules: Api<MaintenanceSchedule> = Api::namespaced(admin.clone(), "default");

    // Each instance has its own client (its own connections), as separate pods would.
    let a = start(&client(&server, KubeUser::Admin).await, "a", saturday());
    let b = start(
        &client(&server, KubeUser::Admin).await,
        "b",
        tuesday_night(),
    );

    // A monitor samples both instances throughout: never two leaders with running controllers.
    let monitoring = Arc::new(AtomicBool::new(true));
    let both_led = Arc::new(AtomicBool::new(false));
    let watched = [a.health.clone(), b.health.clone()];
    let monitor = tokio::spawn({
        let monitoring = monitoring.clone();
        let both_led = both_led.clone();
        async move {
            while monitoring.load(Ordering::SeqCst) {
                if watched.iter().all(|h| h.controllers_running()) {
                    both_led.store(true, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });

    let first = eventually_within(
        Duration::from_secs(20),
        async || holder(&leases).await,
        Option::is_some,
        "someone takes the Lease",
    )
    .await
    .unwrap();
    let (leader, follower, leader_writes_open) = if first == "a" {
        (a, b, false)
    } else {
        (b, a, true)
    };
    eventually_within(
        Duration::from_secs(20),
        async || {
            (
                leader.health.controllers_running(),
                follower.health.leader(),
            )
        },
        |(running, follower_leads)| *running && !*follower_leads,
        "the holder runs its controllers, the other follows",
    )
    .await;
    eventually_within(
        Duration::from_secs(20),
        async || window_open(&schedules).await,
        |open| *open == Some(leader_writes_open),
        "the status is written at the leader's clock",
    )
    .await;

    // A graceful stop releases the Lease: the standby takes over well within the duration.
    let stopped_at = Instant::now();
    leader.stop.trigger();
    tokio::time::timeout(Duration::from_secs(5), leader.task)
        .await
        .expect("the leader stops within a few seconds")
        .expect("no panic");
    let second_name = if first == "a" { "b" } else { "a" };
    eventually_within(
        Duration::from_secs(10),
        async || holder(&leases).await,
        |h| h.as_deref() == Some(second_name),
        "the standby takes the released Lease",
    )
    .await;
    let handover = stopped_at.elapsed();
    assert!(
        handover < LEASE_DURATION,
        "a released Lease is taken at the next poll, not after expiry: took {handover:?}"
    );
    eventually_within(
        Duration::from_secs(20),
        async || window_open(&schedules).await,
        |open| *open == Some(!leader_writes_open),
        "the new leader rewrites the status at its own clock",
    )
    .await;
    monitoring.store(false, Ordering::SeqCst);
    monitor.await.unwrap();
    assert!(
        !both_led.load(Ordering::SeqCst),
        "two instances never ran controllers at the same time"
    );

    // The first identity comes back as a standby; then the current leader's task is dropped
    // without releasing (a crash): the standby waits for expiry, then takes over.
    let first_again = start(
        &client(&server, KubeUser::Admin).await,
        &first,
        if first == "a" {
            saturday()
        } else {
            tuesday_night()
        },
    );
    eventually_within(
        Duration::from_secs(10),
        async || first_again.health.leader(),
        |l| !*l,
        "the returning instance follows",
    )
    .await;
    assert_eq!(holder(&leases).await.as_deref(), Some(second_name));
    let crashed_at = Instant::now();
    follower.task.abort();
    let _ = follower.task.await;
    drop(follower.stop);
    eventually_within(
        Duration::from_secs(15),
        async || holder(&leases).await,
        |h| h.as_deref() == Some(first.as_str()),
        "the standby takes over the expired Lease",
    )
    .await;
    let takeover = crashed_at.elapsed();
    assert!(
        takeover >= LEASE_DURATION.saturating_sub(Duration::from_millis(600)),
        "an unreleased Lease is not taken before it expires (last renewal ≤ 500 ms before the crash): took {takeover:?}"
    );
    assert!(
        takeover <= LEASE_DURATION + Duration::from_secs(2),
        "an expired Lease is taken within a couple of polls: took {takeover:?}"
    );
    eventually_within(
        Duration::from_secs(20),
        async || window_open(&schedules).await,
        |open| *open == Some(leader_writes_open),
        "the status follows the new leader's clock again",
    )
    .await;
    let lease = leases.get(LEASE).await.expect("lease");
    assert_eq!(
        lease.spec.and_then(|s| s.lease_transitions),
        Some(2),
        "two changes of holder after the creation"
    );

    first_again.stop.trigger();
    tokio::time::timeout(Duration::from_secs(5), first_again.task)
        .await
        .expect("stops")
        .expect("no panic");
    assert_eq!(holder(&leases).await, None, "the Lease is released on stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_elector_reports_missing_rights_with_a_hint() {
    let server = KubeApiServer::start().await.expect("kube-apiserver");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&server.kubeconfig(KubeUser::Controller)).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let unprivileged = kube::Client::try_from(config).unwrap();
    let mut elector = LeaderElector::new(unprivileged, config_for_rbac()).unwrap();
    let error = elector
        .try_acquire_or_renew()
        .await
        .expect_err("the controller user has no rights on leases yet");
    let hint = error.hint().unwrap_or_default();
    assert!(
        hint.contains("leases.coordination.k8s.io") && hint.contains("default"),
        "{error}: {hint}"
    );

    // Granting exactly the documented rights is enough.
    server
        .kubectl(&[
            "create",
            "role",
            "lease",
            "-n",
            "default",
            "--verb=get,create,update",
            "--resource=leases.coordination.k8s.io",
        ])
        .unwrap();
    server
        .kubectl(&[
            "create",
            "rolebinding",
            "lease",
            "-n",
            "default",
            "--role=lease",
            &format!("--user={}", KubeUser::Controller.name()),
        ])
        .unwrap();
    let attempt = eventually_within(
        Duration::from_secs(10),
        async || elector.try_acquire_or_renew().await.ok(),
        Option::is_some,
        "the granted user takes the Lease",
    )
    .await;
    assert_eq!(
        attempt,
        Some(upkeep_controller::leader::Attempt::Leading),
        "get, create and update suffice"
    );
    assert!(
        elector.release().await.unwrap(),
        "release needs no more rights"
    );
}

fn config_for_rbac() -> LeaseConfig {
    config("rbac")
}
