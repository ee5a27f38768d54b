//! The MaintenanceSchedule controller against a real kube-apiserver 1.20.2 + etcd
//! (upkeep-testenv): the generated CRDs are accepted by the server, status is written at the
//! controller's clock, an invalid spec is Stalled, and a fixed clock makes the result exact.

mod support;
use support::{
    Running, api_server_with_crds, client, condition, eventually, parse_schedule,
    tuesday_night_schedule,
};

use std::sync::Arc;

use jiff::Timestamp;
use kube::api::{Api, PostParams};
use upkeep_api::MaintenanceSchedule;
use upkeep_controller::framework::Context;
use upkeep_controller::schedule::run_schedules;
use upkeep_testenv::KubeUser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_get_their_status_from_the_controller_clock() {
    let server = api_server_with_crds().await;
    let client = client(&server, KubeUser::Admin).await;
    let api: Api<MaintenanceSchedule> = Api::namespaced(client.clone(), "default");
    let object = parse_schedule(&tuesday_night_schedule("prod"));
    api.create(&PostParams::default(), &object)
        .await
        .expect("create");
    let mut broken = object.clone();
    broken.metadata.name = Some("broken".into());
    broken.spec.time_zone = "Mars/Olympus".into();
    api.create(&PostParams::default(), &broken)
        .await
        .expect("create broken");

    // Saturday 2026-11-21 10:00Z: closed until Tuesday 22:00 Berlin.
    let now: Timestamp = "2026-11-21T10:00:00Z".parse().unwrap();
    let ctx = Arc::new(Context::new(client.clone()).with_clock(move || now));
    let controller = Running::spawn(|shutdown| run_schedules(ctx, shutdown));

    let prod = eventually(
        async || api.get("prod").await.expect("get").status,
        |s| s.as_ref().is_some_and(|s| !s.next_windows.is_empty()),
        "prod gets nextWindows",
    )
    .await
    .expect("status");
    assert_eq!(prod.active_window, None);
    assert_eq!(
        prod.next_windows[0].start.as_ref().map(|t| t.0),
        Some("2026-11-24T21:00:00Z".parse::<Timestamp>().unwrap()),
        "the next window opens Tuesday 22:00 CET"
    );
    let ready = condition(&prod.conditions, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Closed")
    );

    let broken = eventually(
        async || api.get("broken").await.expect("get").status,
        |s| s.as_ref().is_some_and(|s| !s.conditions.is_empty()),
        "broken gets conditions",
    )
    .await
    .expect("status");
    let stalled = condition(&broken.conditions, "Stalled");
    assert!(
        stalled.message.contains("spec.timeZone"),
        "{}",
        stalled.message
    );

    // The printer columns the CRD declares are served.
    let table = server
        .kubectl(&["get", "maintenanceschedules.upkeep.dev", "prod"])
        .expect("kubectl get");
    assert!(
        table.contains("WINDOW") && table.contains("Europe/Berlin") && table.contains("True"),
        "{table}"
    );

    controller.stop().await;
}
