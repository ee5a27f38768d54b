//! `upkeep controller --receiver-addr`: the registry's own push notifications make the leader
//! scan a ChartSource whose `interval` is one hour, and the chain ChartSource → VersionPolicy
//! → AppUpgradeAutomation commits the new version without waiting for any interval. Real
//! components only: kube-apiserver 1.20.2 + etcd, Debian's `docker-registry` with
//! `notifications.endpoints`, `git http-backend`, and the real `upkeep controller` process
//! (with leader election, so the receiver is the one a leadership term starts).
//!
//! Why it is shaped this way:
//! - Every interval is one hour, and the receiver listens before anything is pushed, so each
//!   notification is delivered live: the first scan fails (no repository yet) and the push of
//!   the first tag scans at once instead of at the retry; a commit of a later tag within the
//!   test's deadline can only come from its notification. Scans are counted on `/metrics`.
//! - A push to an unrelated repository is received (the receiver logs it with `matched: 0`)
//!   and changes nothing: no scan, no ref moved.
//! - Only the leader listens: with two replicas (each its own address, as two Pods; the
//!   registry notifies both), the standby's address refuses connections, and after the leader
//!   is killed the new leader's term serves and its receiver carries a push to Git.
//! - Waits poll with deadlines; nothing asserts how fast. The process is killed on drop and the
//!   servers stop with their handles.

use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use upkeep_testenv::{
    Captured, GitServer, KubeApiServer, KubeUser, NotificationEndpoint, Registry, RegistryKind,
    RegistryOptions, git,
};

const NS: &str = "tenant-a";
const SECRET: &str = "wire-controller-receiver-secret-42";
const REPO: &str = "charts/podinfo";
const BRANCH: &str = "upkeep/apps";
const FILE: &str = "apps/podinfo.yaml";
const DEADLINE: Duration = Duration::from_secs(90);

fn app(version: &str) -> String {
    format!(
        "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: podinfo, namespace: apps}}
spec:
  chart:
    spec:
      chart: podinfo
      version: \"{version}\" # {{\"$upkeep\": \"{NS}:podinfo\"}}
"
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// The `upkeep controller` process; killed and reaped on drop, its stderr read all the time.
struct Controller {
    child: Child,
    log: Captured,
    metrics: String,
}

impl Controller {
    fn spawn(kubeconfig: &Path, workdir: &Path, receiver: &str, secret: &Path, pod: &str) -> Self {
        let metrics = format!("127.0.0.1:{}", free_port());
        let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args([
                "controller",
                "--metrics-addr",
                &metrics,
                "--workdir",
                path_str(workdir),
                "--log-format",
                "json",
                "--receiver-addr",
                receiver,
                "--receiver-secret-file",
                path_str(secret),
            ])
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", pod)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn upkeep controller");
        let (log, _) = Captured::start(child.stderr.take().expect("stderr"));
        Controller {
            child,
            log,
            metrics,
        }
    }

    fn log(&self) -> String {
        self.log.text()
    }

    fn serving(&self) -> bool {
        self.log().contains("serving registry push notifications")
    }

    /// SIGKILL: no Lease release, the other replica waits the Lease out.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `upkeep_scans_total{result="success"}` from the process's /metrics (0 while it is
    /// not there).
    fn successful_scans(&self) -> u64 {
        use std::io::Write as _;
        let Ok(mut stream) = std::net::TcpStream::connect(&self.metrics) else {
            return 0;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.metrics
        );
        let mut body = String::new();
        if stream.write_all(request.as_bytes()).is_err()
            || stream.read_to_string(&mut body).is_err()
        {
            return 0;
        }
        body.lines()
            .find_map(|l| l.strip_prefix("upkeep_scans_total{result=\"success\"} "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
    }
}

fn manifests(registry_host: &str, git_url: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: podinfo, namespace: {NS}}}
spec:
  url: oci://{registry_host}/{REPO}
  insecure: true
  interval: 1h
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
spec: {{timeZone: UTC, alwaysAllowed: true}}
---
apiVersion: upkeep.dev/v1alpha1
kind: AppUpgradeAutomation
metadata: {{name: apps, namespace: {NS}}}
spec:
  git:
    url: {git_url}
    ref: {{branch: main}}
  path: ./apps
  interval: 1h
  scheduleRef: {{name: anytime}}
  commit:
    author: {{name: upkeep, email: upkeep@example.com}}
  push:
    branch: {BRANCH}
"#
    )
}

/// Polls `get` until `done` holds; fails after [`DEADLINE`] with the value and the log.
fn eventually<T: std::fmt::Debug>(
    controller: &Controller,
    what: &str,
    get: impl Fn() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let value = get();
        if done(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {value:?}\n--- controller log ---\n{}",
            controller.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn status(server: &KubeApiServer, kind: &str, name: &str) -> Value {
    server
        .kubectl(&["get", kind, name, "-n", NS, "-o", "json"])
        .ok()
        .and_then(|o| serde_json::from_str::<Value>(&o).ok())
        .map_or(Value::Null, |o| o["status"].clone())
}

fn bare_git(bare: &Path, args: &[&str]) -> String {
    let mut all = vec!["--git-dir", path_str(bare)];
    all.extend_from_slice(args);
    git(&all, None).unwrap_or_default().trim().to_owned()
}

/// The receiver's log lines (JSON) for accepted distribution notifications of a manifest push
/// (the registry also reports each blob upload: those have no events), oldest first, as
/// (time, matched, line).
fn receiver_lines(log: &str) -> Vec<(String, u64, String)> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["sender"] == "distribution" && v["status"] == 202)
        .filter(|v| v["events"].as_u64().is_some_and(|n| n > 0))
        .map(|v| {
            let time = v["timestamp"].as_str().unwrap_or_default().to_owned();
            (time, v["matched"].as_u64().unwrap_or(0), v.to_string())
        })
        .collect()
}

/// The servers, the tenant's objects and the receiver's flags one scenario runs with.
struct World {
    server: KubeApiServer,
    registry: Registry,
    bare: std::path::PathBuf,
    kubeconfig: std::path::PathBuf,
    secret: std::path::PathBuf,
    /// The receiver addresses the registry notifies (one endpoint each), by replica.
    receivers: Vec<String>,
    dir: tempfile::TempDir,
    _git: GitServer,
}

impl World {
    /// Servers for `replicas` controllers, each with a receiver address of its own that the
    /// registry notifies.
    async fn start(replicas: usize) -> Self {
        let receivers: Vec<String> = (0..replicas)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let notifications = receivers
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                let mut e = NotificationEndpoint::upkeep_receiver(addr, SECRET);
                e.name = format!("upkeep-{i}");
                e
            })
            .collect();
        let (server, registry, git_server) = tokio::join!(
            KubeApiServer::start(),
            Registry::start_with(RegistryKind::Plain, RegistryOptions { notifications }),
            GitServer::start(None),
        );
        let server = server.expect("kube-apiserver");
        let registry = registry.expect("registry");
        let git_server = git_server.expect("git server");
        let url = git_server
            .create_repo("fleet", &[(FILE, app("6.5.4").as_bytes())])
            .expect("repo");
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        server
            .apply_crd_files(&deploy.join("crds"))
            .expect("the CRDs are established");
        server
            .kubectl(&["apply", "-f", path_str(&deploy.join("namespace.yaml"))])
            .expect("namespace");
        server
            .kubectl_stdin(&["apply", "-f", "-"], &manifests(registry.host(), &url))
            .expect("the tenant's objects");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("admin.kubeconfig");
        server
            .write_kubeconfig(&kubeconfig, KubeUser::Admin)
            .expect("kubeconfig");
        let secret = dir.path().join("receiver-secret");
        std::fs::write(&secret, SECRET).expect("secret file");
        World {
            bare: git_server.bare_path("fleet"),
            server,
            registry,
            kubeconfig,
            secret,
            receivers,
            dir,
            _git: git_server,
        }
    }

    /// An `upkeep controller` with the receiver flags (the `replica`th address), as Pod `pod`.
    fn spawn(&self, replica: usize, pod: &str) -> Controller {
        let workdir = self.dir.path().join(pod);
        let addr = &self.receivers[replica];
        Controller::spawn(&self.kubeconfig, &workdir, addr, &self.secret, pod)
    }

    async fn push(&self, repo: &str, tag: &str) {
        self.registry
            .push_tags(repo, &[tag.to_owned()])
            .await
            .unwrap_or_else(|e| panic!("push {repo}:{tag}: {e}"));
    }

    fn branch_file(&self) -> String {
        bare_git(&self.bare, &["show", &format!("{BRANCH}:{FILE}")])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_push_reaches_git_through_the_controller_without_waiting_for_intervals() {
    let w = World::start(1).await;
    let (server, registry, bare) = (&w.server, &w.registry, &w.bare);
    let c = w.spawn(0, "upkeep-notify");

    // Nothing is pushed yet: the first scan fails (the repository does not exist) and the
    // source waits for its retry; the receiver of the leader's term listens.
    eventually(
        &c,
        "the first scan fails and the receiver serves",
        || {
            let source = status(server, "chartsource", "podinfo");
            let ready = source["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .map(|c| c["status"].clone());
            (
                ready,
                c.log().contains("serving registry push notifications"),
            )
        },
        |(ready, serving)| *ready == Some(Value::from("False")) && *serving,
    );

    // The first push: its notification scans now (not at the retry), the policy selects it;
    // it is already in Git, so nothing is pushed.
    registry
        .push_tags(REPO, &["6.5.4".to_owned()])
        .await
        .expect("push 6.5.4");
    eventually(
        &c,
        "the scan of 6.5.4 and the policy's selection",
        || {
            let policy = status(server, "versionpolicy", "podinfo");
            (c.successful_scans(), policy["latestVersion"].clone())
        },
        |(scans, version)| *scans == 1 && *version == "6.5.4",
    );
    let refs = bare_git(bare, &["for-each-ref"]);

    // A push to an unrelated repository: received, no source matched, no scan, nothing written.
    registry
        .push_tags("charts/unrelated", &["1.0.0".to_owned()])
        .await
        .expect("push unrelated");
    eventually(
        &c,
        "the unrelated push is received",
        || receiver_lines(&c.log()).len(),
        |n| *n >= 2,
    );
    let lines = receiver_lines(&c.log());
    assert_eq!(
        lines[0].1, 1,
        "the push of 6.5.4 matched the source: {lines:?}"
    );
    assert_eq!(
        lines[1].1, 0,
        "the unrelated push matches no source: {lines:?}"
    );
    assert_eq!(c.successful_scans(), 1, "no scan for an unrelated push");
    assert_eq!(bare_git(bare, &["for-each-ref"]), refs, "no ref moved");

    // A new tag of the source's repository: a scan now, and the commit on the branch.
    registry
        .push_tags(REPO, &["6.6.0".to_owned()])
        .await
        .expect("push 6.6.0");
    eventually(
        &c,
        "the commit of 6.6.0 on the upgrade branch",
        || bare_git(bare, &["show", &format!("{BRANCH}:{FILE}")]),
        |text| *text == app("6.6.0").trim(),
    );
    assert_eq!(
        bare_git(bare, &["rev-parse", "main"]),
        refs.lines()
            .find(|l| l.ends_with("refs/heads/main"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_default(),
        "main is not touched"
    );
    assert_eq!(c.successful_scans(), 2, "one more scan, for the push");
    let lines = receiver_lines(&c.log());
    assert_eq!(
        lines.get(2).map(|(_, m, _)| *m),
        Some(1),
        "the notification of 6.6.0 matched the source: {lines:?}"
    );
}

/// Only the leader listens: two replicas (each with its own address, as two Pods have, and
/// the registry notifying both), the standby's address refuses connections while the other
/// leads; when the leader dies without releasing the Lease, the new leader's term binds its
/// address, the registry's retries reach it, and a push reaches Git through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_follows_the_lease() {
    let w = World::start(2).await;
    w.push(REPO, "6.5.4").await;
    let mut a = w.spawn(0, "replica-a");
    eventually(&a, "replica-a leads and serves", || a.serving(), |s| *s);
    let b = w.spawn(1, "replica-b");
    eventually(
        &b,
        "replica-b campaigns",
        || b.log().contains("campaigning for the Lease"),
        |c| *c,
    );
    eventually(
        &a,
        "the policy selects 6.5.4",
        || status(&w.server, "versionpolicy", "podinfo")["latestVersion"].clone(),
        |v| *v == "6.5.4",
    );
    let refused = std::net::TcpStream::connect(&w.receivers[1]).is_err();
    assert!(refused, "the standby does not listen\n{}", b.log());
    assert!(
        !b.serving(),
        "the standby says it does not serve\n{}",
        b.log()
    );

    a.kill();
    eventually(
        &b,
        "replica-b takes the Lease and serves",
        || b.serving(),
        |s| *s,
    );
    // A new leader scans every source once when it starts; only a push after that scan can
    // show that its receiver carries pushes (else the start-up scan may find the tag first).
    eventually(
        &b,
        "replica-b's start-up scan",
        || b.successful_scans(),
        |n| *n >= 1,
    );
    w.push(REPO, "6.6.0").await;
    eventually(
        &b,
        "the commit of 6.6.0 through the new leader's receiver",
        || w.branch_file(),
        |text| *text == app("6.6.0").trim(),
    );
    assert!(
        receiver_lines(&b.log()).iter().any(|(_, m, _)| *m == 1),
        "the new leader's receiver matched a push\n{}",
        b.log()
    );
}
