//! The controller's operations against a real kube-apiserver 1.20.2 (upkeep-testenv): the
//! metrics and probe endpoints over real HTTP, stepping down when the API server goes away,
//! recovering after it restarts (a schedule created afterwards gets its status), and releasing
//! the Lease on shutdown.

mod support;
use support::{api_server_with_crds, client, eventually_within, tuesday_night_schedule};

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use upkeep_api::MaintenanceSchedule;
use upkeep_controller::controllers::{Controllers, Shutdown};
use upkeep_controller::framework::Context;
use upkeep_controller::leader::{LeaderElector, LeaseConfig};
use upkeep_controller::metrics::Metrics;
use upkeep_controller::schedule::run_schedules;
use upkeep_controller::serve::{Endpoints, Health, bind, serve};
use upkeep_testenv::KubeUser;

/// A GET over a fresh HTTP/1.1 connection: (status code, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn has_status(api: &Api<MaintenanceSchedule>, name: &str) -> bool {
    api.get(name)
        .await
        .ok()
        .and_then(|s| s.status)
        .is_some_and(|s| !s.next_windows.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_probes_restart_recovery_and_release() {
    let mut server = api_server_with_crds().await;
    server
        .kubectl_stdin(&["apply", "-f", "-"], &tuesday_night_schedule("before"))
        .expect("schedule");
    let admin = client(&server, KubeUser::Admin).await;
    let schedules: Api<MaintenanceSchedule> = Api::namespaced(admin.clone(), "default");
    let leases: Api<Lease> = Api::namespaced(admin.clone(), "default");

    // The instance, wired as `upkeep controller` wires it.
    let controller_client = client(&server, KubeUser::Admin).await;
    let metrics = Metrics::global().clone();
    let health = Arc::new(Health::new());
    let (stop, shutdown) = Shutdown::new();
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let http = tokio::spawn(serve(
        listener,
        Endpoints {
            metrics: metrics.clone(),
            health: health.clone(),
            client: controller_client.clone(),
            extra: Vec::new(),
        },
        shutdown.clone(),
    ));
    let mut config = LeaseConfig::new("upkeep-controller", "default", "ops");
    config.lease_duration = Duration::from_secs(3);
    config.renew_deadline = Duration::from_secs(2);
    config.renew_interval = Duration::from_millis(500);
    config.retry_period = Duration::from_millis(200);
    let now: Timestamp = "2026-11-21T10:00:00Z".parse().unwrap();
    let ctx = Arc::new(Context::new(controller_client.clone()).with_clock(move || now));
    let elector = LeaderElector::new(controller_client.clone(), config).unwrap();
    let controller = tokio::spawn({
        let (metrics, health, shutdown) = (metrics.clone(), health.clone(), shutdown.clone());
        async move {
            let controllers = Controllers::new().with("MaintenanceSchedule", run_schedules);
            elector
                .run(ctx, &controllers, &metrics, &health, shutdown)
                .await;
        }
    });

    assert_eq!(get(addr, "/healthz").await.0, 200, "alive");
    eventually_within(
        Duration::from_secs(30),
        async || has_status(&schedules, "before").await,
        |done| *done,
        "the leader reconciles",
    )
    .await;
    let (code, body) = eventually_within(
        Duration::from_secs(10),
        async || get(addr, "/metrics").await,
        |(code, body)| {
            *code == 200
                && body.contains(
                    "upkeep_reconcile_total{kind=\"MaintenanceSchedule\",result=\"success\"}",
                )
        },
        "reconciles are counted",
    )
    .await;
    assert_eq!(code, 200);
    for (line, why) in [
        ("upkeep_leader 1", "the leader gauge is up"),
        (
            "upkeep_reconcile_duration_seconds_count{kind=\"MaintenanceSchedule\"}",
            "durations are observed",
        ),
    ] {
        assert!(body.contains(line), "{why}: {line} not in\n{body}");
    }
    assert_eq!(
        get(addr, "/readyz").await,
        (200, "ok\n".to_owned()),
        "leader with running controllers and a reachable API server"
    );
    assert_eq!(get(addr, "/nothing").await.0, 404);

    // The API server goes away: readiness fails, and the leader steps down at its deadline
    // instead of running controllers on a Lease it can no longer renew.
    server.stop_apiserver();
    let (code, _) = eventually_within(
        Duration::from_secs(10),
        async || get(addr, "/readyz").await,
        |(code, _)| *code == 503,
        "not ready without the API server",
    )
    .await;
    assert_eq!(code, 503);
    eventually_within(
        Duration::from_secs(10),
        async || (health.leader(), metrics.leader()),
        |(leader, gauge)| !*leader && !*gauge,
        "the leader steps down when it cannot renew",
    )
    .await;
    assert_eq!(get(addr, "/healthz").await.0, 200, "still alive");

    // Back again: the same instance campaigns, wins, and reconciles new objects.
    server.restart_apiserver().await.expect("restart");
    eventually_within(
        Duration::from_secs(30),
        async || health.controllers_running(),
        |running| *running,
        "leading again after the restart",
    )
    .await;
    server
        .kubectl_stdin(&["apply", "-f", "-"], &tuesday_night_schedule("after"))
        .expect("schedule after the restart");
    eventually_within(
        Duration::from_secs(30),
        async || has_status(&schedules, "after").await,
        |done| *done,
        "a schedule created after the restart gets its status",
    )
    .await;
    eventually_within(
        Duration::from_secs(10),
        async || get(addr, "/readyz").await.0,
        |code| *code == 200,
        "ready again",
    )
    .await;

    // Shutdown: controllers stop, the Lease is released, the server stops — in seconds.
    let stopping = Instant::now();
    stop.trigger();
    tokio::time::timeout(Duration::from_secs(5), controller)
        .await
        .expect("the elector ends within seconds")
        .expect("no panic");
    tokio::time::timeout(Duration::from_secs(2), http)
        .await
        .expect("the HTTP server ends")
        .expect("no panic");
    assert!(stopping.elapsed() < Duration::from_secs(5));
    let lease = leases.get("upkeep-controller").await.expect("lease");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity),
        None,
        "the Lease is released for a successor"
    );
    assert!(!metrics.leader(), "the gauge is down after shutdown");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}
