//! `upkeep_controller::alerts` against the REAL Alertmanager (Debian `prometheus-alertmanager`,
//! started by the test environment) and against our own webhook sink.
//!
//! Alertmanager answers synchronously, but alert status is read through its API, so checks
//! poll against a deadline (`eventually`), never sleep.

mod support;

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use support::eventually_within;
use upkeep_controller::alerts::{Alertmanager, AlertsError, Webhook};
use upkeep_testenv::webhook::Sink;

const CREATED_BY: &str = "upkeep/cluster-upgrade/org-a/v25";
const WITHIN: Duration = Duration::from_secs(10);

fn in_hours(hours: i64) -> Timestamp {
    Timestamp::now() + SignedDuration::from_hours(hours)
}

async fn start() -> (upkeep_testenv::Alertmanager, Alertmanager) {
    upkeep_testenv::install_crypto_provider();
    let server = upkeep_testenv::Alertmanager::start()
        .await
        .expect("start Alertmanager");
    let client = Alertmanager::new(server.url()).expect("client");
    (server, client)
}

/// A silence made through the client mutes exactly the alerts its matchers match, and
/// expiring it (twice, or an unknown id) is fine and unmutes them.
#[tokio::test]
async fn a_silence_mutes_matching_alerts_until_expired() {
    let (server, client) = start().await;
    let muted = [("alertname", "KubeNodeNotReady"), ("cluster", "c1")];
    let other = [("alertname", "KubeNodeNotReady"), ("cluster", "c2")];
    server.post_alert(&muted).await.expect("post alert");
    server.post_alert(&other).await.expect("post alert");

    let id = client
        .silence_cluster(
            &[("cluster", "c1")],
            CREATED_BY,
            "upgrading c1 to 25.0.0",
            in_hours(2),
        )
        .await
        .expect("create silence");
    assert!(
        server.active_silence_ids().await.unwrap().contains(&id),
        "the new silence is active"
    );

    let cases = [
        (&muted, true, "the alert of the upgraded cluster is muted"),
        (&other, false, "another cluster's alert is not"),
    ];
    for (labels, expected, reason) in cases {
        let by = eventually_within(
            WITHIN,
            async || server.silenced_by(labels).await.unwrap(),
            |by| by.as_ref().is_some_and(|by| by.contains(&id) == expected),
            reason,
        )
        .await;
        assert_eq!(by.unwrap().contains(&id), expected, "{reason}");
    }

    client.expire(&id).await.expect("expire");
    assert!(
        !server.active_silence_ids().await.unwrap().contains(&id),
        "an expired silence is no longer active"
    );
    eventually_within(
        WITHIN,
        async || server.silenced_by(&muted).await.unwrap(),
        |by| by.as_ref().is_some_and(Vec::is_empty),
        "the alert is no longer muted after expiry",
    )
    .await;

    let again = [
        (
            id.clone(),
            "expiring an expired silence is done, not an error",
        ),
        (
            "00000000-0000-4000-8000-000000000000".to_owned(),
            "an unknown silence is gone already",
        ),
    ];
    for (id, reason) in again {
        client.expire(&id).await.expect(reason);
    }
}

/// A controller that restarts finds the silence it created instead of making a second one.
#[tokio::test]
async fn find_after_restart_returns_the_existing_silence() {
    let (server, first) = start().await;
    let matchers = [("cluster", "c1"), ("installation", "gauss")];
    let id = first
        .silence_cluster(&matchers, CREATED_BY, "upgrade", in_hours(1))
        .await
        .expect("create");
    // Noise that must not be mistaken for ours.
    first
        .silence_cluster(&[("cluster", "c1")], CREATED_BY, "subset", in_hours(1))
        .await
        .expect("create subset");
    first
        .silence_cluster(&matchers, "someone-else", "theirs", in_hours(1))
        .await
        .expect("create foreign");

    let restarted = Alertmanager::new(server.url()).expect("client");
    let cases = [
        (
            vec![("installation", "gauss"), ("cluster", "c1")],
            CREATED_BY,
            Some(id.clone()),
            "the same matchers in another order are our silence",
        ),
        (
            vec![("cluster", "c2")],
            CREATED_BY,
            None,
            "another cluster has no silence",
        ),
        (
            vec![("cluster", "c1"), ("installation", "gauss"), ("x", "y")],
            CREATED_BY,
            None,
            "a superset of matchers is a different silence",
        ),
        (
            vec![("cluster", "c1"), ("installation", "gauss")],
            "upkeep/other-upgrade",
            None,
            "createdBy tells whose silence it is",
        ),
    ];
    for (matchers, created_by, expected, reason) in cases {
        let found = restarted.find(&matchers, created_by).await.expect(reason);
        assert_eq!(found.map(|s| s.id), expected, "{reason}");
    }

    let ensured = restarted
        .ensure_silence(&matchers, CREATED_BY, "upgrade", in_hours(1))
        .await
        .expect("ensure");
    assert_eq!(ensured, id, "ensure reuses the live silence");
    let ours = |silences: Vec<upkeep_controller::alerts::Silence>| {
        silences
            .into_iter()
            .filter(|s| s.is_live() && s.created_by == CREATED_BY && s.has_exactly(&matchers))
            .count()
    };
    assert_eq!(
        ours(restarted.silences().await.unwrap()),
        1,
        "no second silence after a restart"
    );

    let later = in_hours(5);
    let extended = restarted
        .ensure_silence(&matchers, CREATED_BY, "upgrade", later)
        .await
        .expect("extend");
    let now_found = restarted
        .find(&matchers, CREATED_BY)
        .await
        .unwrap()
        .expect("still there");
    assert_eq!(now_found.id, extended, "find returns the extended silence");
    assert!(
        now_found
            .ends_at
            .is_some_and(|end| end.as_second() >= later.as_second()),
        "extended to the later end: {now_found:?}"
    );
    assert_eq!(
        ours(restarted.silences().await.unwrap()),
        1,
        "extending does not leave two live silences"
    );
}

/// Errors name the server and the request, carry a hint, and never a credential.
#[tokio::test]
async fn errors_name_the_server_and_hide_credentials() {
    let (server, client) = start().await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let down = Alertmanager::new(&format!("http://am:hunter2@127.0.0.1:{port}/")).unwrap();
    let wrong_prefix = Alertmanager::new(&format!("{}/prefix", server.url())).unwrap();

    let past = Timestamp::now() - SignedDuration::from_mins(1);
    let cases: Vec<(Result<String, AlertsError>, String, &str, &str)> = vec![
        (
            down.silences().await.map(|_| String::new()),
            format!("GET /api/v2/silences on http://127.0.0.1:{port} failed"),
            "nothing answered",
            "an unreachable server is named by its URL, without the password",
        ),
        (
            wrong_prefix.silences().await.map(|_| String::new()),
            format!("GET /api/v2/silences on {}/prefix: HTTP 404", server.url()),
            "/api/v2",
            "a wrong path gets the server's status and a hint about the prefix",
        ),
        (
            client
                .silence_cluster(&[], CREATED_BY, "x", in_hours(1))
                .await,
            "at least one matcher".to_owned(),
            "endsAt",
            "an empty matcher list would mute everything and is refused before sending",
        ),
        (
            client
                .silence_cluster(&[("cluster", "c1")], CREATED_BY, "x", past)
                .await,
            "is not in the future".to_owned(),
            "endsAt",
            "a silence that ended already is refused before sending",
        ),
    ];
    for (result, message, hint, reason) in cases {
        let err = result.expect_err(reason);
        let text = err.to_string();
        assert!(text.contains(&message), "{reason}: {text}");
        assert!(!text.contains("hunter2"), "{reason}: leaks {text}");
        assert!(
            !format!("{err:?}").contains("hunter2"),
            "{reason}: Debug leaks"
        );
        let hint_text = err.hint().unwrap_or_default();
        assert!(hint_text.contains(hint), "{reason}: hint {hint_text:?}");
    }
    assert!(
        server.silences().await.unwrap().is_empty(),
        "refused silences were never sent"
    );
}

/// The webhook notifier POSTs JSON, sends URL credentials as a header only, reports a refusing
/// receiver by URL and status, and gives up on a silent one within its 5 s bound.
#[tokio::test]
async fn webhook_posts_json_and_bounds_failures() {
    upkeep_testenv::install_crypto_provider();
    let sink = Sink::start().expect("sink");
    let webhook = Webhook::new().expect("webhook");
    let announcement = json!({"text": "c1 upgrades to 25.0.0 at 2025-03-01T02:00:00Z"});

    let with_credentials = format!("http://bot:s3cret@{}/hook?team=kaas", sink.addr());
    webhook
        .notify(&with_credentials, &announcement)
        .await
        .expect("notify");
    let requests = sink.requests();
    assert_eq!(requests.len(), 1, "one POST per notification");
    let received = &requests[0];
    let cases = [
        (
            received.body == announcement,
            "the body is the JSON we sent",
        ),
        (
            received.content_type.as_deref() == Some("application/json"),
            "it says it is JSON",
        ),
        (
            received.path == "/hook?team=kaas",
            "path and query are kept",
        ),
        (
            received.authorization.as_deref() == Some("Basic Ym90OnMzY3JldA=="),
            "URL credentials become basic auth",
        ),
    ];
    for (holds, reason) in cases {
        assert!(holds, "{reason}: {received:?}");
    }

    sink.respond_with(503);
    let err = webhook
        .notify(&with_credentials, &announcement)
        .await
        .expect_err("503 is a failure");
    let text = err.to_string();
    assert!(
        text.contains(&format!("http://{}/hook", sink.addr())) && text.contains("HTTP 503"),
        "names the receiver and the status: {text}"
    );
    assert!(!text.contains("s3cret"), "no password in {text}");

    // A receiver that accepts the connection and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    let started = Instant::now();
    let err = webhook
        .notify(&url, &announcement)
        .await
        .expect_err("no answer");
    let took = started.elapsed();
    assert!(
        matches!(err, AlertsError::Request { timeout: true, .. }),
        "a timeout: {err}"
    );
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(8),
        "bounded by the 5 s timeout, took {took:?}"
    );
    drop(silent);
}
