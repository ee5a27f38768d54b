//! No secret in the controller's statuses, Events or logs: `upkeep controller` runs as a process
//! against a real kube-apiserver 1.20.2 (upkeep-testenv), over ChartSources and
//! AppUpgradeAutomations that carry a unique secret each — in a URL's userinfo, in a `?token=`,
//! in the Docker config of a `kubernetes.io/dockerconfigjson` Secret that a real registry
//! (distribution, htpasswd auth) behind upkeep-testenv's proxy sees echoed back in its error
//! body, in a URL the spec validation refuses, and in `--alertmanager-url`. Once every object
//! reports its failure, the statuses of every upkeep object, every Event (core and
//! events.k8s.io) and every log line are searched for each secret, and each place must show up
//! redacted, so the test cannot pass because a reconcile never ran.

mod support;

use std::fmt::Write as _;
use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::base64;
use upkeep_testenv::{
    Fault, FaultProxy, GitServer, KubeApiServer, Registry, RegistryKind, StaticServer, TEST_USER,
    upkeep_crds,
};

const URL_PW: &str = "zc1-chartsource-userinfo-pw";
const QUERY_TOKEN: &str = "zc2-chartsource-query-token";
const DOCKER_PW: &str = "zc3-dockerconfig-secret-pw";
const SPEC_PW: &str = "zc4-invalid-spec-url-pw";
const GIT_URL_PW: &str = "zc5-automation-git-url-pw";
const GIT_URL_TOKEN: &str = "zc6-automation-git-url-token";
const AM_PW: &str = "zc7-alertmanager-url-pw";
const HELM_TOKEN: &str = "zc8-working-helm-token";

/// Stops the controller when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `status` of every object of `kind`, as JSON text.
fn statuses(server: &KubeApiServer, kind: &str) -> String {
    let list = server
        .kubectl(&["get", kind, "-A", "-o", "json"])
        .unwrap_or_default();
    let list: serde_json::Value = serde_json::from_str(&list).unwrap_or_default();
    let mut out = String::new();
    for item in list["items"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{}/{}: {}",
            item["metadata"]["namespace"].as_str().unwrap_or(""),
            item["metadata"]["name"].as_str().unwrap_or(""),
            item["status"]
        );
    }
    out
}

/// The messages of the conditions of `kind/name`.
fn messages(server: &KubeApiServer, kind: &str, name: &str) -> String {
    server
        .kubectl(&[
            "get",
            kind,
            name,
            "-n",
            "default",
            "-o",
            "jsonpath={.status.conditions[*].message}",
        ])
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)]
async fn statuses_events_and_logs_never_carry_a_planted_secret() {
    let server = KubeApiServer::start_with_crds(&[&upkeep_crds()])
        .await
        .expect("kube-apiserver with the CRDs established");
    let registry = Registry::start(RegistryKind::Htpasswd)
        .await
        .expect("registry");
    let echo = FaultProxy::for_registry(&registry, Fault::EchoAuthorization);
    let helm = StaticServer::with_files(
        &[(
            "charts/index.yaml",
            b"apiVersion: v1\nentries:\n  podinfo:\n  - name: podinfo\n    version: 6.5.4\n    created: \"2026-01-01T00:00:00Z\"\n    urls: [podinfo-6.5.4.tgz]\n",
        )],
        None,
    )
    .await
    .expect("nginx");
    let git_server = GitServer::start(Some(("upkeep-bot", "git-pw-not-planted")))
        .await
        .expect("git server");
    let git_url = git_server.url("fleet");

    let docker_config = format!(
        r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
        echo.host(),
        base64(format!("{TEST_USER}:{DOCKER_PW}").as_bytes())
    );
    let objects = format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: regcred, namespace: default}}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{docker_config}'
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: userinfo, namespace: default}}
spec:
  url: oci://{TEST_USER}:{URL_PW}@{echo_host}/charts/podinfo
  insecure: true
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: query-token, namespace: default}}
spec:
  url: http://{helm_host}/missing?token={QUERY_TOKEN}
  chart: podinfo
  insecure: true
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: echoing, namespace: default}}
spec:
  url: oci://{echo_host}/charts/podinfo
  insecure: true
  secretRef: {{name: regcred}}
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: invalid-spec, namespace: default}}
spec:
  url: ftp://{TEST_USER}:{SPEC_PW}@{helm_host}/charts
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: working, namespace: default}}
spec:
  url: http://{helm_host}/charts?token={HELM_TOKEN}
  chart: podinfo
  insecure: true
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {{name: working, namespace: default}}
spec:
  sourceRef: {{name: working}}
  policy: {{semver: {{range: \">=6.0.0\"}}}}
---
apiVersion: upkeep.dev/v1alpha1
kind: AppUpgradeAutomation
metadata: {{name: git-userinfo, namespace: default}}
spec:
  git:
    url: {git_userinfo}
    ref: {{branch: main}}
  path: ./apps
  interval: 1m
  commit:
    author: {{name: upkeep, email: upkeep@example.com}}
---
apiVersion: upkeep.dev/v1alpha1
kind: AppUpgradeAutomation
metadata: {{name: git-token, namespace: default}}
spec:
  git:
    url: {git_url}?token={GIT_URL_TOKEN}
    ref: {{branch: main}}
  path: ./apps
  interval: 1m
  commit:
    author: {{name: upkeep, email: upkeep@example.com}}
",
        echo_host = echo.host(),
        helm_host = helm.host(),
        git_userinfo = git_url.replacen("http://", &format!("http://upkeep-bot:{GIT_URL_PW}@"), 1),
    );
    server
        .kubectl_stdin(&["apply", "-f", "-"], &objects)
        .expect("objects applied");

    let workdir = tempfile::tempdir().expect("workdir");
    let child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args([
            "controller",
            "--leader-elect=false",
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--workdir",
            workdir.path().to_str().expect("utf-8"),
            "--alertmanager-url",
            &format!("http://am-user:{AM_PW}@127.0.0.1:1/"),
        ])
        .env("KUBECONFIG", server.admin_kubeconfig())
        .env("RUST_LOG", "info,upkeep_registry=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn upkeep controller");
    let mut running = Running(child);

    // Each place: the object, what its redacted trace looks like once the reconcile has run,
    // and the secret that would show there if it were not redacted.
    let basic = base64(format!("{TEST_USER}:{DOCKER_PW}").as_bytes());
    let places: [(&str, &str, &str, &str, &str); 6] = [
        (
            "chartsource",
            "userinfo",
            "oci://<redacted>@",
            URL_PW,
            "a ChartSource URL's userinfo",
        ),
        (
            "chartsource",
            "query-token",
            "?token=<redacted>",
            QUERY_TOKEN,
            "a ?token= in a ChartSource URL",
        ),
        (
            "chartsource",
            "echoing",
            "Authorization: Basic <redacted>",
            &basic,
            "a registry echoing the Docker config credentials of a Secret",
        ),
        (
            "chartsource",
            "invalid-spec",
            "ftp://upkeep-test:<redacted>@",
            SPEC_PW,
            "a URL the spec validation refuses",
        ),
        (
            "appupgradeautomation",
            "git-userinfo",
            "credentials in the URL",
            GIT_URL_PW,
            "a Git URL with a password",
        ),
        (
            "appupgradeautomation",
            // The Git server asks for credentials before it looks at the path.
            "git-token",
            "refused the credentials (HTTP 401)",
            GIT_URL_TOKEN,
            "a Git URL with a ?token=",
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        // Reconciled: the trace shows, redacted or (if redaction failed) not.
        let missing: Vec<String> = places
            .iter()
            .filter(|(kind, name, evidence, secret, _)| {
                let shown = messages(&server, kind, name);
                !shown.contains(evidence) && !shown.contains(secret)
            })
            .map(|(kind, name, evidence, _, why)| {
                format!(
                    "{why}: {kind}/{name} does not show `{evidence}` yet: {}",
                    messages(&server, kind, name)
                )
            })
            .collect();
        let new_version = server
            .kubectl(&["get", "events.events.k8s.io", "-n", "default", "-o", "json"])
            .unwrap_or_default()
            .contains("NewVersion");
        if missing.is_empty() && new_version {
            break;
        }
        assert!(
            running.0.try_wait().expect("wait").is_none(),
            "the controller exited early"
        );
        assert!(
            Instant::now() < deadline,
            "not every place was reconciled in time (NewVersion Event: {new_version}):\n{}",
            missing.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A few more reconciles (retries log their errors) before the logs are read.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = running.0.kill();
    let _ = running.0.wait();
    let mut logs = String::new();
    running
        .0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut logs)
        .expect("logs");

    let mut seen = vec![("the controller's log", logs.clone())];
    for kind in ["chartsources", "versionpolicies", "appupgradeautomations"] {
        seen.push((kind, statuses(&server, kind)));
    }
    for events in ["events", "events.events.k8s.io"] {
        seen.push((
            events,
            server
                .kubectl(&["get", events, "-A", "-o", "json"])
                .expect("events"),
        ));
    }
    assert!(
        logs.contains("discovery reconcile failed"),
        "the failures were logged, so the logs were exercised:\n{logs}"
    );
    let mut leaks: Vec<String> = places
        .iter()
        .filter(|(kind, name, evidence, _, _)| !messages(&server, kind, name).contains(evidence))
        .map(|(kind, name, evidence, _, why)| {
            format!("{why}: {kind}/{name} does not show `{evidence}`")
        })
        .collect();
    for secret in [
        URL_PW,
        QUERY_TOKEN,
        DOCKER_PW,
        &basic,
        SPEC_PW,
        GIT_URL_PW,
        GIT_URL_TOKEN,
        AM_PW,
        HELM_TOKEN,
    ] {
        for (what, text) in &seen {
            if let Some(at) = text.find(secret) {
                let from = text[..at]
                    .char_indices()
                    .rev()
                    .nth(100)
                    .map_or(0, |(i, _)| i);
                leaks.push(format!("`{secret}` in {what}: …{}…", &text[from..at]));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
}
