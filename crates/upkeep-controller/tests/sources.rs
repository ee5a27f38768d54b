//! The ChartSource and VersionPolicy controllers against a real kube-apiserver 1.20.2 + etcd
//! (upkeep-testenv), over the quickstart's OCI layout directories and a real OCI registry with
//! htpasswd auth: statuses fill in at a fixed clock, Events are recorded, an invalid spec is
//! Stalled, a missing Secret is named (its content never shows), and a policy follows its
//! source.

mod support;
use support::{Running, api_server_with_crds, client, eventually};

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, Patch, PatchParams};
use upkeep_api::chart_source::ChartSourceStatus;
use upkeep_api::version_policy::VersionPolicyStatus;
use upkeep_api::{ChartSource, VersionPolicy};
use upkeep_controller::controllers::run_discovery_with;
use upkeep_controller::discovery::Discovery;
use upkeep_controller::framework::Context;
use upkeep_testenv::{KubeApiServer, KubeUser, Registry, RegistryKind, TEST_PASSWORD, TEST_USER};

/// Saturday 2026-11-21 10:00Z: podinfo 6.6.1 (2026-11-01) is 20 days old.
const NOW: &str = "2026-11-21T10:00:00Z";

/// Sources over the quickstart's podinfo layout and policies over them. `podinfo` uses a path
/// relative to the controller's working directory (cargo runs tests in the crate's directory).
const LAYOUT_OBJECTS: &str = r#"apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {name: podinfo, namespace: default}
spec:
  url: oci-layout:../../examples/quickstart/charts/podinfo
  interval: 5m
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {name: wrong-url, namespace: default}
spec:
  url: ftp://charts.example.com/podinfo
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {name: podinfo, namespace: default}
spec:
  sourceRef: {name: podinfo}
  policy: {semver: {range: ">=6.5.0 <7.0.0"}}
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {name: aged, namespace: default}
spec:
  sourceRef: {name: podinfo}
  policy: {semver: {range: ">=6.5.0 <7.0.0"}}
  minimumReleaseAge: 720h
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {name: broken, namespace: default}
spec:
  sourceRef: {name: podinfo}
  policy: {semver: {range: ">= banana"}}
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {name: later, namespace: default}
spec:
  sourceRef: {name: later}
  policy: {semver: {range: "~6.5"}}
"#;

/// A server with the upkeep CRDs established.
async fn server_with_crds() -> KubeApiServer {
    api_server_with_crds().await
}

/// Starts the discovery controllers at the fixed clock.
fn start(client: &kube::Client) -> Running {
    let now: Timestamp = NOW.parse().expect("timestamp");
    let ctx = Arc::new(Context::new(client.clone()).with_clock(move || now));
    // A short retry so a Secret created later is picked up within the test's deadline.
    let discovery = Arc::new(Discovery::new(ctx).with_retry_after(Duration::from_secs(1)));
    Running::spawn(|shutdown| run_discovery_with(discovery, shutdown))
}

fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// `(status, reason)` of the Ready condition, `("-", "-")` when there is none.
fn ready(conditions: &[Condition]) -> (String, String) {
    condition(conditions, "Ready").map_or(("-".into(), "-".into()), |c| {
        (c.status.clone(), c.reason.clone())
    })
}

async fn source_status(api: &Api<ChartSource>, name: &str) -> ChartSourceStatus {
    api.get(name)
        .await
        .expect("get ChartSource")
        .status
        .unwrap_or_default()
}

async fn policy_status(api: &Api<VersionPolicy>, name: &str) -> VersionPolicyStatus {
    api.get(name)
        .await
        .expect("get VersionPolicy")
        .status
        .unwrap_or_default()
}

/// Notes of the `NewVersion` Events about VersionPolicy `name`.
async fn new_version_notes(events: &Api<Event>, name: &str) -> Vec<String> {
    let mut notes: Vec<(Option<Timestamp>, String)> = events
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some("NewVersion")
                && e.regarding.as_ref().is_some_and(|r| {
                    r.name.as_deref() == Some(name) && r.kind.as_deref() == Some("VersionPolicy")
                })
        })
        .map(|e| (e.event_time.map(|t| t.0), e.note.unwrap_or_default()))
        .collect();
    notes.sort();
    notes.into_iter().map(|(_, n)| n).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layout_sources_feed_policies() {
    let server = server_with_crds().await;
    let client = client(&server, KubeUser::Admin).await;
    let podinfo_dir = std::fs::canonicalize(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart/charts/podinfo"
    ))
    .expect("the quickstart's podinfo layout");
    // `later` uses an absolute path.
    let objects = LAYOUT_OBJECTS;
    server
        .kubectl_stdin(&["apply", "-f", "-"], objects)
        .expect("objects applied");
    let controllers = start(&client);
    let sources: Api<ChartSource> = Api::namespaced(client.clone(), "default");
    let policies: Api<VersionPolicy> = Api::namespaced(client.clone(), "default");
    let events: Api<Event> = Api::namespaced(client.clone(), "default");

    let podinfo = eventually(
        async || source_status(&sources, "podinfo").await,
        |s| s.last_scan.is_some(),
        "podinfo is scanned",
    )
    .await;
    let scan = podinfo.last_scan.expect("lastScan");
    assert_eq!(scan.tag_count, 6, "every tag of the layout");
    assert_eq!(
        scan.time.0,
        NOW.parse::<Timestamp>().unwrap(),
        "the scan time is the controller's clock"
    );
    assert_eq!(
        scan.latest_tags,
        ["6.7.0-rc.2", "6.7.0-rc.1", "6.6.1", "6.6.0", "6.5.4"],
        "the newest tags by release time"
    );
    assert_eq!(
        ready(&podinfo.conditions),
        ("True".into(), "Succeeded".into())
    );

    let status = eventually(
        async || policy_status(&policies, "podinfo").await,
        |s| s.latest_version.is_some(),
        "podinfo gets a latest version",
    )
    .await;
    assert_eq!(
        status.latest_version.as_deref(),
        Some("6.6.1"),
        "the highest stable version in range"
    );
    assert_eq!(status.previous_version, None);
    assert_eq!(status.observed_generation, Some(1));
    let notes = eventually(
        async || new_version_notes(&events, "podinfo").await,
        |n| !n.is_empty(),
        "a NewVersion Event on first selection",
    )
    .await;
    assert_eq!(notes, ["podinfo: 6.6.1 (first selection)"]);

    let aged = eventually(
        async || policy_status(&policies, "aged").await,
        |s| s.latest_version.is_some(),
        "aged gets a latest version",
    )
    .await;
    assert_eq!(
        aged.latest_version.as_deref(),
        Some("6.6.0"),
        "6.6.1 is 20 days old, the policy wants 30"
    );
    let message = &condition(&aged.conditions, "Ready").expect("Ready").message;
    assert!(
        message.contains("6.6.1 is held by minimumReleaseAge until 2026-12-01T10:00:00Z"),
        "{message}"
    );

    let broken = eventually(
        async || policy_status(&policies, "broken").await,
        |s| condition(&s.conditions, "Stalled").is_some(),
        "an invalid range is Stalled",
    )
    .await;
    let stalled = condition(&broken.conditions, "Stalled").expect("Stalled");
    assert_eq!(stalled.reason, "InvalidSpec");
    assert!(
        stalled.message.contains("spec.policy.semver.range"),
        "{}",
        stalled.message
    );
    assert_eq!(broken.latest_version, None);

    let wrong = eventually(
        async || source_status(&sources, "wrong-url").await,
        |s| condition(&s.conditions, "Stalled").is_some(),
        "a wrong URL is Stalled",
    )
    .await;
    let stalled = condition(&wrong.conditions, "Stalled").expect("Stalled");
    assert!(
        stalled.message.contains("spec.url") && stalled.message.contains("ftp://"),
        "{}",
        stalled.message
    );
    assert!(wrong.last_scan.is_none(), "never scanned");

    // A policy whose source does not exist yet waits for it, and follows when it appears.
    let waiting = eventually(
        async || policy_status(&policies, "later").await,
        |s| condition(&s.conditions, "Ready").is_some(),
        "later waits",
    )
    .await;
    assert_eq!(
        ready(&waiting.conditions),
        ("False".into(), "SourceNotFound".into())
    );
    let message = &condition(&waiting.conditions, "Ready")
        .expect("Ready")
        .message;
    assert!(message.contains("ChartSource default/later"), "{message}");
    server
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &format!(
                "apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: later, namespace: default}}
spec:
  url: oci-layout:{}
",
                podinfo_dir.display()
            ),
        )
        .expect("later applied");
    let later = eventually(
        async || policy_status(&policies, "later").await,
        |s| s.latest_version.is_some(),
        "later follows its new source",
    )
    .await;
    assert_eq!(later.latest_version.as_deref(), Some("6.5.4"));
    assert_eq!(
        ready(&later.conditions),
        ("True".into(), "Succeeded".into())
    );

    // The source changes (6.6.1 is excluded): the policy follows, records the old version and
    // says so in an Event.
    sources
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"exclusionList": ["^6\\.6\\.1$"]}})),
        )
        .await
        .expect("patch podinfo");
    let changed = eventually(
        async || policy_status(&policies, "podinfo").await,
        |s| s.latest_version.as_deref() == Some("6.6.0"),
        "podinfo follows its source",
    )
    .await;
    assert_eq!(changed.previous_version.as_deref(), Some("6.6.1"));
    assert_eq!(
        source_status(&sources, "podinfo")
            .await
            .last_scan
            .map(|s| s.tag_count),
        Some(5),
        "the excluded tag is not counted"
    );
    let notes = eventually(
        async || new_version_notes(&events, "podinfo").await,
        |n| n.len() == 2,
        "a NewVersion Event for the change",
    )
    .await;
    assert_eq!(
        notes,
        ["podinfo: 6.6.1 (first selection)", "podinfo: 6.6.1 → 6.6.0"]
    );

    // Suspended: Ready with reason Suspended.
    sources
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"suspend": true}})),
        )
        .await
        .expect("suspend podinfo");
    let suspended = eventually(
        async || source_status(&sources, "podinfo").await,
        |s| ready(&s.conditions).1 == "Suspended",
        "a suspended source says so",
    )
    .await;
    assert_eq!(
        suspended.last_scan.map(|s| s.tag_count),
        Some(5),
        "the last scan is kept while suspended"
    );

    controllers.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_credentials_come_from_a_secret_and_stay_secret() {
    let registry = Registry::start(RegistryKind::Htpasswd)
        .await
        .expect("registry");
    let tags: Vec<String> = ["1.0.0", "1.1.0", "2.0.0"]
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    registry
        .push_tags("charts/app", &tags)
        .await
        .expect("push tags");
    let server = server_with_crds().await;
    let client = client(&server, KubeUser::Admin).await;
    let url = format!("oci://{}/charts/app", registry.host());
    let wrong_password = "not-the-password-7f3a9c";
    let objects = format!(
        r#"apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: private, namespace: default}}
spec:
  url: {url}
  insecure: true
  secretRef: {{name: regcred}}
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: wrong, namespace: default}}
spec:
  url: {url}
  insecure: true
  secretRef: {{name: badcred}}
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {{name: app, namespace: default}}
spec:
  sourceRef: {{name: private}}
  policy: {{semver: {{range: "<2.0.0"}}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: badcred, namespace: default}}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{{"auths": {{"{host}": {{"username": "{TEST_USER}", "password": "{wrong_password}"}}}}}}'
"#,
        host = registry.host(),
    );
    server
        .kubectl_stdin(&["apply", "-f", "-"], &objects)
        .expect("objects applied");
    let controllers = start(&client);
    let sources: Api<ChartSource> = Api::namespaced(client.clone(), "default");
    let policies: Api<VersionPolicy> = Api::namespaced(client.clone(), "default");
    let events: Api<Event> = Api::namespaced(client.clone(), "default");

    let missing = eventually(
        async || source_status(&sources, "private").await,
        |s| condition(&s.conditions, "Ready").is_some(),
        "private reports its missing Secret",
    )
    .await;
    assert_eq!(
        ready(&missing.conditions),
        ("False".into(), "SecretUnavailable".into())
    );
    assert!(
        condition(&missing.conditions, "Stalled").is_none(),
        "a missing Secret may appear: not Stalled"
    );
    let reconciling = condition(&missing.conditions, "Reconciling").expect("Reconciling");
    assert_eq!(
        (reconciling.status.as_str(), reconciling.reason.as_str()),
        ("True", "ProgressingWithRetry"),
        "a transient failure is in progress for kstatus, with a retry"
    );
    let message = &condition(&missing.conditions, "Ready")
        .expect("Ready")
        .message;
    assert!(
        message.contains("\"regcred\"") && message.contains("not found"),
        "{message}"
    );
    let waiting = eventually(
        async || policy_status(&policies, "app").await,
        |s| condition(&s.conditions, "Ready").is_some_and(|c| c.message.contains("regcred")),
        "the policy waits for its source and says why",
    )
    .await;
    assert_eq!(
        ready(&waiting.conditions),
        ("False".into(), "SourceNotReady".into())
    );

    let wrong = eventually(
        async || source_status(&sources, "wrong").await,
        |s| condition(&s.conditions, "Ready").is_some(),
        "wrong credentials are reported",
    )
    .await;
    assert_eq!(
        ready(&wrong.conditions),
        ("False".into(), "Unauthorized".into()),
        "the reason is the registry error's kind"
    );

    // The Secret appears: the retry picks it up without any change to the ChartSource.
    let secret = format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: regcred, namespace: default}}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{}'
",
        registry.docker_config_json()
    );
    server
        .kubectl_stdin(&["apply", "-f", "-"], &secret)
        .expect("secret applied");
    let scanned = eventually(
        async || source_status(&sources, "private").await,
        |s| s.last_scan.is_some(),
        "private is scanned with the Secret's credentials",
    )
    .await;
    assert_eq!(scanned.last_scan.as_ref().map(|s| s.tag_count), Some(3));
    assert_eq!(
        ready(&scanned.conditions),
        ("True".into(), "Succeeded".into())
    );
    let app = eventually(
        async || policy_status(&policies, "app").await,
        |s| s.latest_version.is_some(),
        "the policy follows",
    )
    .await;
    assert_eq!(app.latest_version.as_deref(), Some("1.1.0"));
    eventually(
        async || new_version_notes(&events, "app").await,
        |n| !n.is_empty(),
        "a NewVersion Event",
    )
    .await;

    // Neither password (nor the base64 auth string) is in any status or Event.
    let encoded = registry.docker_config_json()["auths"][registry.host()]["auth"]
        .as_str()
        .expect("auth")
        .to_owned();
    // The statuses from before the Secret existed count too.
    let mut visible = serde_json::to_string(&missing).expect("json")
        + &serde_json::to_string(&waiting).expect("json")
        + &serde_json::to_string(&wrong).expect("json");
    for s in sources
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
    {
        visible += &serde_json::to_string(&s.status).expect("json");
    }
    for p in policies
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
    {
        visible += &serde_json::to_string(&p.status).expect("json");
    }
    for e in events
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
    {
        visible += &serde_json::to_string(&e).expect("json");
    }
    assert!(
        visible.contains("regcred"),
        "the Secret is named: {visible}"
    );
    for secret in [TEST_PASSWORD, wrong_password, encoded.as_str()] {
        assert!(
            !visible.contains(secret),
            "a credential leaked into status or Events: {visible}"
        );
    }

    controllers.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_reflect_digests_from_the_registry_with_the_sources_credentials() {
    let registry = Registry::start(RegistryKind::Htpasswd)
        .await
        .expect("registry");
    registry
        .push_chart("charts/app", "app", "1.0.0", "1.0.0", None)
        .await
        .expect("push 1.0.0");
    let pushed = registry
        .push_chart("charts/app", "app", "1.1.0", "1.1.0", None)
        .await
        .expect("push 1.1.0");
    let server = server_with_crds().await;
    let client = client(&server, KubeUser::Admin).await;
    let host = registry.host();
    let policy = |name: &str, reflect: &str| {
        format!(
            "---\napiVersion: upkeep.dev/v1alpha1\nkind: VersionPolicy\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  sourceRef: {{name: private}}\n  policy: {{semver: {{range: \"<2.0.0\"}}}}\n{reflect}"
        )
    };
    let objects = format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: regcred, namespace: default}}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{{"auths": {{"{host}": {{"username": "{TEST_USER}", "password": "{TEST_PASSWORD}"}}}}}}'
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: private, namespace: default}}
spec:
  url: oci://{host}/charts/app
  insecure: true
  secretRef: {{name: regcred}}
{}{}{}"#,
        policy("always", "  digestReflectionPolicy: Always\n"),
        policy("if-not-present", "  digestReflectionPolicy: IfNotPresent\n"),
        policy("never", ""),
    );
    server
        .kubectl_stdin(&["apply", "-f", "-"], &objects)
        .expect("objects applied");
    let controllers = start(&client);
    let policies: Api<VersionPolicy> = Api::namespaced(client.clone(), "default");
    let image = format!("{host}/charts/app");
    // (policy, digest, reason)
    let cases = [
        ("always", Some(pushed.as_str()), "Always reads the digest"),
        (
            "if-not-present",
            Some(pushed.as_str()),
            "IfNotPresent reads it when none is known",
        ),
        ("never", None, "Never (the default) has none"),
    ];
    for (name, digest, reason) in cases {
        let status = eventually(
            async || policy_status(&policies, name).await,
            |s| s.latest_version.is_some(),
            "the policy decides",
        )
        .await;
        assert_eq!(status.latest_version.as_deref(), Some("1.1.0"), "{reason}");
        assert_eq!(
            status.latest_image.as_deref(),
            Some(image.as_str()),
            "{reason}: the image name is host/path of the oci:// URL"
        );
        assert_eq!(status.latest_digest.as_deref(), digest, "{reason}");
        assert_eq!(
            ready(&status.conditions),
            ("True".into(), "Succeeded".into()),
            "{reason}"
        );
    }
    controllers.stop().await;
}
