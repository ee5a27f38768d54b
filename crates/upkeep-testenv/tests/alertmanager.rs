//! `Alertmanager` is the real Debian `prometheus-alertmanager`: it answers its v2 API on
//! 127.0.0.1, takes alerts, shows silences made through its API muting them, and is gone when
//! dropped. (upkeep's own silence client is tested against it in the controller crate.)

use serde_json::json;
use upkeep_testenv::Alertmanager;

#[tokio::test]
async fn alertmanager_serves_its_api_and_stops_on_drop() {
    let am = Alertmanager::start().await.expect("start Alertmanager");
    assert!(am.url().starts_with("http://127.0.0.1:"), "{}", am.url());
    assert!(am.silences().await.unwrap().is_empty(), "fresh storage");

    let labels = [("alertname", "Probe"), ("cluster", "c1")];
    am.post_alert(&labels).await.expect("post alert");

    // A silence made with the plain API, so this test does not depend on upkeep's client.
    let client = upkeep_testenv::http_client(None, std::time::Duration::from_secs(5)).unwrap();
    let now = jiff::Timestamp::now();
    let answer: serde_json::Value = serde_json::from_str(
        &client
            .post(format!("{}/api/v2/silences", am.url()))
            .header("content-type", "application/json")
            .body(
                json!({
                    "matchers": [{"name": "cluster", "value": "c1", "isRegex": false}],
                    "startsAt": now.to_string(),
                    "endsAt": (now + jiff::SignedDuration::from_hours(1)).to_string(),
                    "createdBy": "testenv", "comment": "probe",
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let id = answer["silenceID"].as_str().expect("silenceID").to_owned();

    let cases = [
        (
            am.active_silence_ids().await.unwrap(),
            vec![id.clone()],
            "the silence is listed as active",
        ),
        (
            am.silenced_by(&labels)
                .await
                .unwrap()
                .expect("alert listed"),
            vec![id.clone()],
            "the posted alert is muted by it",
        ),
    ];
    for (actual, expected, reason) in cases {
        assert_eq!(actual, expected, "{reason}");
    }
    assert!(
        am.silenced_by(&[("alertname", "Probe")])
            .await
            .unwrap()
            .is_none(),
        "labels must match exactly to find an alert"
    );

    let url = am.url().to_owned();
    drop(am);
    assert!(
        client.get(format!("{url}/-/ready")).send().await.is_err(),
        "the process is gone after drop"
    );
}
