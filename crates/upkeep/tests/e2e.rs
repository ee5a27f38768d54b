//! End to end: the real `upkeep controller` process against a real kube-apiserver 1.20.2 +
//! etcd, a real OCI registry with htpasswd auth, a real `git http-backend` with basic auth and
//! the testenv's GitLab-flavoured merge-request stand-in. Everything the user does goes through
//! `kubectl apply`; everything the test checks is what a user could see: statuses, Events, the
//! Git server's bare repository, the forge's merge requests, `/metrics`, the process's log.
//!
//! Why it is shaped this way:
//! - The controller runs as the testenv's unprivileged user `upkeep-controller`, bound to the
//!   roles of the SHIPPED `deploy/rbac.yaml` (copies of its bindings with the subject swapped,
//!   as `crates/upkeep-controller/tests/rbac.rs` does): the end-to-end run proves those rules
//!   are enough, not just that an admin could do it.
//! - "No duplicate commit, nothing lost" is checked on the branch itself: every commit between
//!   `main` and the upgrade branch must write a version the previous one did not have, and the
//!   list of written versions must be exactly the versions the registry offered over time.
//! - Faults are real: the API server process is killed and started again on the same port and
//!   etcd; a leader process gets SIGKILL (no Lease release) and the standby waits out the
//!   Lease (15 s, the shipped default) before it takes over.
//! - Waits poll with deadlines; each failure message carries the tail of every controller's
//!   log so a red run says what the process was doing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use upkeep_testenv::{
    Captured, ForgeFlavor, GitServer, KUBE_CONTROLLER_USER, KubeApiServer, KubeUser, PrStandIn,
    Registry, RegistryKind, TEST_PASSWORD, git,
};

const NS: &str = "tenant-a";
const LEASE_NS: &str = "upkeep-system";
const REPO: &str = "charts/podinfo";
const BRANCH: &str = "upkeep/apps";
const FILE: &str = "apps/podinfo.yaml";
const GIT_USER: &str = "bot";
const GIT_PASSWORD: &str = "git-pa55-e2e-never-shown";
const TOKEN: &str = "forge-t0ken-e2e-never-shown";
const DEADLINE: Duration = Duration::from_secs(60);
/// The first tags: 7.0.0 is outside the policy's range, so 6.6.0 is the newest allowed.
const FIRST_TAGS: &[&str] = &["6.5.4", "6.6.0", "7.0.0"];

/// The file in Git: a marked scalar between other lines that must stay byte-for-byte.
const APP: &str = "# The podinfo release; upkeep keeps its chart version.
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: apps
spec:
  interval: 10m
  chart:
    spec:
      chart: podinfo
      version: \"6.5.4\" # {\"$upkeep\": \"tenant-a:podinfo\"}
      sourceRef: {kind: HelmRepository, name: podinfo}
  values:
    replicaCount: 2   # odd spacing kept
";

/// `APP` with the marked version set to `version` (and nothing else changed).
fn app_at(version: &str) -> String {
    APP.replace("\"6.5.4\" #", &format!("\"{version}\" #"))
}

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One `upkeep controller` process; killed (SIGKILL) and reaped on drop. Its stderr is read
/// all the time by a thread (a full pipe would block the process).
struct Controller {
    name: String,
    child: Child,
    metrics: SocketAddr,
    log: Captured,
    reader: Option<std::thread::JoinHandle<()>>,
    _workdir: tempfile::TempDir,
}

impl Controller {
    fn spawn(kubeconfig: &Path, pod_name: &str) -> Self {
        let workdir = tempfile::tempdir().expect("workdir");
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("address");
        let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args([
                "controller",
                "--metrics-addr",
                &metrics.to_string(),
                "--workdir",
                path_str(workdir.path()),
                "--lease-namespace",
                LEASE_NS,
                "--log-format",
                "json",
            ])
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", pod_name)
            .env("RUST_LOG", "info,upkeep_controller=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn upkeep controller");
        let (log, reader) = Captured::start(child.stderr.take().expect("stderr"));
        Self {
            name: pod_name.to_owned(),
            child,
            metrics,
            log,
            reader: Some(reader),
            _workdir: workdir,
        }
    }

    fn stderr(&self) -> String {
        self.log.text()
    }

    fn tail(&self) -> String {
        let log = self.stderr();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }

    /// SIGKILL: no signal handler runs, the Lease is not released.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// `GET path` on the process's HTTP port: `(status code, body)`.
    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = tokio::net::TcpStream::connect(self.metrics).await.ok()?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.metrics
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
            .await
            .ok()?
            .ok()?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
        Some((code, body))
    }

    async fn metrics(&self) -> String {
        match self.get("/metrics").await {
            Some((200, body)) => body,
            _ => String::new(),
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Everything one scenario runs against.
struct World {
    /// First, so the processes are killed before the servers they talk to go away.
    controllers: Vec<Controller>,
    server: KubeApiServer,
    registry: Registry,
    forge: PrStandIn,
    bare: PathBuf,
    /// The controller user's kubeconfig.
    kubeconfig: PathBuf,
    _git: GitServer,
    _dir: tempfile::TempDir,
}

/// kubectl's JSON output as a list of objects (Lists unpacked, several objects in a row).
fn objects(json: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for value in serde_json::Deserializer::from_str(json).into_iter::<Value>() {
        let value = value.unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
        match value.get("items") {
            Some(Value::Array(items)) => out.extend(items.iter().cloned()),
            _ => out.push(value),
        }
    }
    out
}

fn tags(list: &[&str]) -> Vec<String> {
    list.iter().map(|t| (*t).to_owned()).collect()
}

impl World {
    /// Starts every component, installs upkeep from `deploy/` with kubectl, binds the
    /// controller user to the shipped roles, and applies the tenant's objects.
    async fn start() -> Self {
        let (server, registry, git_server) = tokio::join!(
            KubeApiServer::start(),
            Registry::start(RegistryKind::Htpasswd),
            GitServer::start(Some((GIT_USER, GIT_PASSWORD))),
        );
        let server = server.expect("kube-apiserver");
        let registry = registry.expect("registry");
        let git_server = git_server.expect("git server");
        registry
            .push_tags(REPO, &tags(FIRST_TAGS))
            .await
            .expect("push the first tags");
        let url = git_server
            .create_repo(
                "fleet",
                &[(FILE, APP.as_bytes()), ("README.md", b"fleet\n")],
            )
            .expect("repo");
        let forge = PrStandIn::start(ForgeFlavor::Gitlab, TOKEN).expect("stand-in");
        forge.create_repository("git/fleet");

        // Install as a user would: the CRDs, the namespace and the RBAC from deploy/.
        let deploy = deploy_dir();
        let crds = deploy.join("crds");
        server
            .apply_crd_files(&crds)
            .expect("the CRDs are applied and established");
        for file in ["namespace.yaml", "rbac.yaml"] {
            server
                .kubectl(&["apply", "-f", path_str(&deploy.join(file))])
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        bind_test_user_to_shipped_roles(&server);

        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("controller.kubeconfig");
        server
            .write_kubeconfig(&kubeconfig, KubeUser::Controller)
            .expect("kubeconfig");

        let manifests = format!(
            r#"apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: regcred, namespace: {NS}}}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{docker}'
---
apiVersion: v1
kind: Secret
metadata: {{name: git-creds, namespace: {NS}}}
stringData: {{username: {GIT_USER}, password: {GIT_PASSWORD}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: forge, namespace: {NS}}}
stringData: {{token: {TOKEN}}}
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: podinfo, namespace: {NS}}}
spec:
  url: oci://{host}/{REPO}
  insecure: true
  interval: 2s
  secretRef: {{name: regcred}}
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {{name: podinfo, namespace: {NS}}}
spec:
  sourceRef: {{name: podinfo}}
  policy: {{semver: {{range: ">=6.0.0 <7.0.0"}}}}
---
apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {{name: anytime, namespace: {NS}}}
spec:
  timeZone: UTC
  alwaysAllowed: true
---
apiVersion: upkeep.dev/v1alpha1
kind: AppUpgradeAutomation
metadata: {{name: apps, namespace: {NS}}}
spec:
  git:
    url: {url}
    ref: {{branch: main}}
    secretRef: {{name: git-creds}}
  path: ./apps
  interval: 1h
  scheduleRef: {{name: anytime}}
  commit:
    author: {{name: upkeep, email: upkeep@example.com}}
  push:
    branch: {BRANCH}
    pullRequest:
      provider: gitlab
      apiUrl: {api}
      labels: [upkeep]
      secretRef: {{name: forge}}
"#,
            docker = registry.docker_config_json(),
            host = registry.host(),
            api = forge.api_base(),
        );
        server
            .kubectl_stdin(&["apply", "-f", "-"], &manifests)
            .expect("the tenant's objects are applied");

        Self {
            bare: git_server.bare_path("fleet"),
            server,
            registry,
            forge,
            kubeconfig,
            controllers: Vec::new(),
            _git: git_server,
            _dir: dir,
        }
    }

    fn spawn(&mut self, pod_name: &str) {
        self.controllers
            .push(Controller::spawn(&self.kubeconfig, pod_name));
    }

    fn controller(&self, name: &str) -> &Controller {
        self.controllers
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no controller {name}"))
    }

    fn logs(&self) -> String {
        self.controllers
            .iter()
            .map(|c| format!("--- {} (last lines) ---\n{}", c.name, c.tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Polls `get` until `done` holds, or fails after [`DEADLINE`] with the last value and the
    /// controllers' log tails.
    async fn eventually<T: std::fmt::Debug>(
        &self,
        get: impl AsyncFnMut() -> T,
        done: impl Fn(&T) -> bool,
        what: &str,
    ) -> T {
        self.eventually_within(DEADLINE, get, done, what).await
    }

    async fn eventually_within<T: std::fmt::Debug>(
        &self,
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
            assert!(
                Instant::now() < deadline,
                "{what}: still {value:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `kubectl get <kind>/<name> -n tenant-a -o json` (None while the API server is away).
    fn get(&self, kind: &str, name: &str) -> Option<Value> {
        let out = self
            .server
            .kubectl(&["get", kind, name, "-n", NS, "-o", "json"])
            .ok()?;
        serde_json::from_str(&out).ok()
    }

    fn status(&self, kind: &str, name: &str) -> Value {
        self.get(kind, name)
            .map_or(Value::Null, |o| o["status"].clone())
    }

    fn bare_git(&self, args: &[&str]) -> String {
        self.bare_git_raw(args).trim().to_owned()
    }

    /// Git's stdout as is (file contents compared byte for byte).
    fn bare_git_raw(&self, args: &[&str]) -> String {
        let mut all = vec!["--git-dir", path_str(&self.bare)];
        all.extend_from_slice(args);
        git(&all, None).unwrap_or_default()
    }

    /// The file as `rev` has it, byte for byte.
    fn file_at(&self, rev: &str) -> String {
        self.bare_git_raw(&["show", &format!("{rev}:{FILE}")])
    }

    /// The upgrade branch's history: the version each commit from `main` on wrote, oldest
    /// first. Panics if a commit writes what its parent already had (a duplicate) or changes
    /// any file other than the one marked scalar.
    fn branch_versions(&self) -> Vec<String> {
        let list = self.bare_git(&["rev-list", "--reverse", &format!("main..{BRANCH}")]);
        let mut previous = APP.to_owned();
        let mut versions = Vec::new();
        for commit in list.lines() {
            let changed = self.bare_git(&["diff", "--name-only", &format!("{commit}~1"), commit]);
            assert_eq!(
                changed, FILE,
                "commit {commit} changes only the marked file"
            );
            let text = self.file_at(commit);
            let version = marked_version(&text);
            assert_eq!(
                text,
                app_at(&version),
                "commit {commit} rewrites only the scalar, byte for byte"
            );
            assert_ne!(
                text, previous,
                "commit {commit} repeats its parent's content (a duplicate commit)"
            );
            previous = text;
            versions.push(version);
        }
        versions
    }

    async fn push_tag(&self, tag: &str) {
        self.registry
            .push_tags(REPO, &tags(&[tag]))
            .await
            .unwrap_or_else(|e| panic!("push {tag}: {e}"));
    }

    /// Waits until the automation's status says it pushed `version` and the branch's tip is
    /// that commit; returns the status.
    async fn landed(&self, version: &str) -> Value {
        self.landed_within(DEADLINE, version).await
    }

    async fn landed_within(&self, within: Duration, version: &str) -> Value {
        let status = self
            .eventually_within(
                within,
                async || {
                    let status = self.status("appupgradeautomation", "apps");
                    let tip = self.bare_git(&["rev-parse", BRANCH]);
                    (status, tip)
                },
                |(s, tip)| {
                    s["observedPolicies"][format!("{NS}/podinfo")] == version
                        && s["lastPushCommit"] == tip.as_str()
                        && !s["pullRequest"].is_null()
                },
                &format!("the automation pushes {version} and records it"),
            )
            .await
            .0;
        assert_eq!(
            self.file_at(BRANCH),
            app_at(version),
            "the branch holds {version}"
        );
        status
    }

    fn lease_holder(&self) -> Option<String> {
        self.server
            .kubectl(&[
                "get",
                "lease",
                "upkeep-controller",
                "-n",
                LEASE_NS,
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ])
            .ok()
            .filter(|h| !h.is_empty())
    }
}

/// The quoted value of the marked `version:` line.
fn marked_version(text: &str) -> String {
    text.lines()
        .find(|l| l.contains("$upkeep"))
        .and_then(|l| l.split('"').nth(1))
        .unwrap_or_default()
        .to_owned()
}

/// Copies of the shipped ClusterRoleBinding and RoleBinding for the testenv's controller user
/// (same roleRef, the user as the only subject); waits until the authorizer grants them.
fn bind_test_user_to_shipped_roles(server: &KubeApiServer) {
    let rbac = objects(
        &server
            .kubectl(&[
                "create",
                "--dry-run=client",
                "-o",
                "json",
                "-f",
                path_str(&deploy_dir().join("rbac.yaml")),
            ])
            .expect("kubectl parses rbac.yaml"),
    );
    let bindings: Vec<Value> = rbac
        .iter()
        .filter(|o| o["kind"] == "ClusterRoleBinding" || o["kind"] == "RoleBinding")
        .map(|binding| {
            let mut copy = json!({
                "apiVersion": binding["apiVersion"],
                "kind": binding["kind"],
                "metadata": {
                    "name": format!("{}-e2e-user", binding["metadata"]["name"].as_str().unwrap_or_default()),
                },
                "roleRef": binding["roleRef"],
                "subjects": [{
                    "kind": "User",
                    "apiGroup": "rbac.authorization.k8s.io",
                    "name": KUBE_CONTROLLER_USER,
                }],
            });
            if let Some(ns) = binding["metadata"]["namespace"].as_str() {
                copy["metadata"]["namespace"] = json!(ns);
            }
            copy
        })
        .collect();
    assert_eq!(
        bindings.len(),
        2,
        "rbac.yaml binds a ClusterRole (the controllers) and a Role (leader election)"
    );
    server
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &json!({"apiVersion": "v1", "kind": "List", "items": bindings}).to_string(),
        )
        .expect("test bindings");
    // RBAC reaches the authorizer through an informer.
    let deadline = Instant::now() + Duration::from_secs(30);
    for ask in [
        &["update", "leases.coordination.k8s.io", "-n", LEASE_NS][..],
        &[
            "watch",
            "appupgradeautomations.upkeep.dev",
            "--all-namespaces",
        ][..],
    ] {
        let mut args = vec!["auth", "can-i"];
        args.extend_from_slice(ask);
        while server
            .kubectl_as(KubeUser::Controller, &args)
            .map_or(true, |out| out.trim() != "yes")
        {
            assert!(
                Instant::now() < deadline,
                "the shipped roles never took effect for {ask:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// No credential appears in any status, in any Event, or in the controllers' logs.
fn assert_no_secret_shown(world: &World) {
    let auth = world.registry.docker_config_json()["auths"][world.registry.host()]["auth"]
        .as_str()
        .expect("the registry's auth string")
        .to_owned();
    let secrets = [
        TEST_PASSWORD.to_owned(),
        auth,
        GIT_PASSWORD.to_owned(),
        TOKEN.to_owned(),
        world.server.controller_token().to_owned(),
    ];
    let statuses = world
        .server
        .kubectl(&[
            "get",
            "chartsources,versionpolicies,maintenanceschedules,appupgradeautomations",
            "-n",
            NS,
            "-o",
            "json",
        ])
        .expect("get the upkeep objects");
    let statuses: Vec<String> = objects(&statuses)
        .iter()
        .map(|o| o["status"].to_string())
        .collect();
    assert_eq!(statuses.len(), 4, "one object of each kind");
    assert!(
        statuses.iter().all(|s| s != "null"),
        "every object has a status: {statuses:?}"
    );
    let events = world
        .server
        .kubectl(&["get", "events", "-A", "-o", "json"])
        .expect("events");
    assert!(events.contains("NewVersion"), "the Events are there");
    for (what, text) in [("a status", statuses.join("\n")), ("an Event", events)]
        .into_iter()
        .chain(
            world
                .controllers
                .iter()
                .map(|c| ("the controller's stderr", c.stderr())),
        )
    {
        assert!(!text.is_empty(), "{what}: nothing to look at");
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what} shows a credential ({}…): {text}",
                &secret[..4]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applied_objects_drive_scan_selection_commit_and_merge_request() {
    let mut world = World::start().await;
    world.spawn("upkeep-e2e");
    let c = world.controller("upkeep-e2e");

    // The registry is scanned with the Secret's credentials.
    let source = world
        .eventually(
            async || world.status("chartsource", "podinfo"),
            |s| s["lastScan"]["tagCount"].is_u64(),
            "the ChartSource is scanned",
        )
        .await;
    assert_eq!(source["lastScan"]["tagCount"], 3, "{source}");
    let ready = |s: &Value| {
        s["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            .map(|c| (c["status"].clone(), c["reason"].clone()))
    };
    assert_eq!(
        ready(&source),
        Some((json!("True"), json!("Succeeded"))),
        "{source}"
    );

    // The newest tag the policy allows is selected and announced.
    let policy = world
        .eventually(
            async || world.status("versionpolicy", "podinfo"),
            |s| s["latestVersion"].is_string(),
            "the VersionPolicy selects a version",
        )
        .await;
    assert_eq!(
        policy["latestVersion"], "6.6.0",
        "7.0.0 is outside the range: {policy}"
    );
    let events = world
        .eventually(
            async || {
                let out = world
                    .server
                    .kubectl(&["get", "events", "-n", NS, "-o", "json"])
                    .unwrap_or_default();
                objects(&out)
                    .into_iter()
                    .filter(|e| {
                        e["reason"] == "NewVersion"
                            && e["involvedObject"]["kind"] == "VersionPolicy"
                            && e["involvedObject"]["name"] == "podinfo"
                    })
                    .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                    .collect::<Vec<_>>()
            },
            |notes| !notes.is_empty(),
            "a NewVersion Event for the policy",
        )
        .await;
    assert!(
        events.iter().any(|n| n.contains("6.6.0")),
        "the Event names the version: {events:?}"
    );

    // The automation commits the file to the upgrade branch and opens one merge request.
    let automation = world.landed("6.6.0").await;
    let first = automation["lastPushCommit"]
        .as_str()
        .expect("lastPushCommit")
        .to_owned();
    // A run after the push (a watched object changed) says UpToDate instead: both are right.
    let (ready_status, reason) = ready(&automation).expect("a Ready condition");
    assert!(
        ready_status == "True" && (reason == "Pushed" || reason == "UpToDate"),
        "{automation}"
    );
    assert_eq!(world.branch_versions(), ["6.6.0"]);
    assert_eq!(world.file_at("main"), APP, "main itself is untouched");
    let prs = world.forge.pull_requests("git/fleet");
    assert_eq!(prs.len(), 1, "one merge request: {prs:?}");
    assert_eq!(
        (prs[0].head.as_str(), prs[0].base.as_str()),
        (BRANCH, "main")
    );
    assert_eq!(
        automation["pullRequest"]["number"], prs[0].number,
        "the status names the merge request"
    );

    // The schedule's status, and the process's metrics for every kind it reconciled.
    let schedule = world
        .eventually(
            async || world.status("maintenanceschedule", "anytime"),
            |s| s["nextWindows"].as_array().is_some_and(|w| !w.is_empty()),
            "the MaintenanceSchedule gets nextWindows",
        )
        .await;
    assert!(
        schedule["nextWindows"][0]["end"].is_null(),
        "an alwaysAllowed schedule is one unbounded window: {schedule}"
    );
    let metrics = c.metrics().await;
    for kind in [
        "MaintenanceSchedule",
        "ChartSource",
        "VersionPolicy",
        "AppUpgradeAutomation",
    ] {
        let wanted = format!("upkeep_reconcile_total{{kind=\"{kind}\",result=\"success\"}}");
        assert!(
            metrics.lines().any(|l| l.starts_with(&wanted)),
            "{wanted} in /metrics:\n{metrics}"
        );
    }
    assert!(
        metrics.lines().any(|l| l == "upkeep_leader 1"),
        "the only replica leads:\n{metrics}"
    );
    assert_no_secret_shown(&world);

    // A newer tag: the next scan (2 s) selects it, the automation commits on top of its own
    // branch and updates the same merge request.
    world.push_tag("6.6.1").await;
    world.landed("6.6.1").await;
    assert_eq!(
        world.bare_git(&["rev-parse", &format!("{BRANCH}~1")]),
        first,
        "the second commit is on top of the first"
    );
    assert_eq!(world.branch_versions(), ["6.6.0", "6.6.1"]);
    let prs = world.forge.pull_requests("git/fleet");
    assert_eq!(prs.len(), 1, "updated, not doubled: {prs:?}");
    assert!(prs[0].body.contains("`6.6.1`"), "{}", prs[0].body);
    let policy = world.status("versionpolicy", "podinfo");
    assert_eq!(
        (&policy["latestVersion"], &policy["previousVersion"]),
        (&json!("6.6.1"), &json!("6.6.0")),
        "{policy}"
    );
    assert_no_secret_shown(&world);
    assert!(
        world.controllers[0].running(),
        "the controller is still running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_restarts_mid_run_and_the_newer_version_lands_once() {
    let mut world = World::start().await;
    world.spawn("upkeep-restart");
    world.landed("6.6.0").await;
    assert_eq!(world.branch_versions(), ["6.6.0"]);

    // The API server goes away; the controller notices (its /readyz asks the API server).
    world.server.stop_apiserver();
    world
        .eventually(
            async || world.controller("upkeep-restart").get("/readyz").await,
            |r| r.as_ref().is_some_and(|(code, _)| *code == 503),
            "the controller reports the API server unreachable",
        )
        .await;
    // A newer tag is published while the controller cannot write anything.
    world.push_tag("6.6.1").await;
    world
        .server
        .restart_apiserver()
        .await
        .expect("the API server restarts");
    // Every watch of the process comes back through its backoff (grown during the outage, and
    // once more for the 410 Expired a fresh API server answers to an old resourceVersion, and
    // for the 403s of an authorizer whose RBAC cache is still filling). upkeep caps it at ~6 s
    // (`framework::watch_backoff`); with kube-runtime's default (30 s plus up to 30 s jitter per
    // step, and one backoff over a controller's merged watches) this took over 90 s on CI.
    // The longer deadline leaves room for a slow machine, not for that backoff.
    world.landed_within(Duration::from_secs(90), "6.6.1").await;
    assert_eq!(
        world.branch_versions(),
        ["6.6.0", "6.6.1"],
        "each version committed exactly once"
    );
    assert_eq!(
        world.bare_git(&["rev-list", "--count", &format!("main..{BRANCH}")]),
        "2",
        "no duplicate commit"
    );
    let prs = world.forge.pull_requests("git/fleet");
    assert_eq!(prs.len(), 1, "{prs:?}");
    assert!(prs[0].body.contains("`6.6.1`"), "{}", prs[0].body);
    let c = world.controller("upkeep-restart");
    world
        .eventually(
            async || c.get("/readyz").await,
            |r| r.as_ref().is_some_and(|(code, _)| *code == 200),
            "the controller is ready again",
        )
        .await;
    assert!(world.controllers[0].running(), "the process rode it out");
    assert_no_secret_shown(&world);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_and_nothing_is_committed_twice_or_lost() {
    let mut world = World::start().await;
    world.spawn("upkeep-a");
    world.spawn("upkeep-b");
    let leader = world
        .eventually(
            async || world.lease_holder(),
            Option::is_some,
            "one replica takes the Lease",
        )
        .await
        .expect("holder");
    let standby = if leader == "upkeep-a" {
        "upkeep-b"
    } else {
        "upkeep-a"
    };
    world.landed("6.6.0").await;
    assert_eq!(world.branch_versions(), ["6.6.0"]);

    // Only the leader reconciles; the standby waits.
    let standby_metrics = world.controller(standby).metrics().await;
    assert!(
        standby_metrics.lines().any(|l| l == "upkeep_leader 0")
            && !standby_metrics.contains("upkeep_reconcile_total{"),
        "the standby ran no reconciler:\n{standby_metrics}"
    );

    // SIGKILL: the Lease is not released; the standby takes it when it expires.
    let killed_at = Instant::now();
    let index = world
        .controllers
        .iter()
        .position(|c| c.name == leader)
        .expect("leader process");
    world.controllers[index].kill();
    world.push_tag("6.6.1").await;
    world
        .eventually(
            async || world.lease_holder(),
            |h| h.as_deref() == Some(standby),
            "the standby takes over the Lease",
        )
        .await;
    let takeover = killed_at.elapsed();
    assert!(
        takeover >= Duration::from_secs(9),
        "an unreleased Lease is not taken before it expires: {takeover:?}"
    );

    world.landed("6.6.1").await;
    assert_eq!(
        world.branch_versions(),
        ["6.6.0", "6.6.1"],
        "each version exactly once: nothing duplicated, nothing lost"
    );
    let prs = world.forge.pull_requests("git/fleet");
    assert_eq!(
        prs.len(),
        1,
        "the new leader updates the same request: {prs:?}"
    );
    assert!(prs[0].body.contains("`6.6.1`"), "{}", prs[0].body);
    let metrics = world.controller(standby).metrics().await;
    assert!(
        metrics.lines().any(|l| l == "upkeep_leader 1")
            && metrics.contains("upkeep_reconcile_total{kind=\"AppUpgradeAutomation\""),
        "the new leader reconciles:\n{metrics}"
    );
    assert_no_secret_shown(&world);
}
