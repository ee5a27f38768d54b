//! `upkeep run --receiver-addr`: registry push notifications end the wait between passes.
//! Real components only: Debian's `docker-registry` sends its own notifications
//! (`notifications.endpoints`, `Authorization: Bearer <secret>`) to the receiver of a real
//! `upkeep run` process, whose GitOps repository is on a real `git http-backend`. The interval
//! is one hour, so a commit within the test's deadline can only come from a notification.
//!
//! Why it is shaped this way:
//! - One fleet, three sources and three automations on their own paths and branches: `fast`
//!   (always allowed), `aged` (`minimumReleaseAge: 720h`) and `closed` (a schedule whose only
//!   window is in the past). A push to each shows the whole chain once; the held two show that
//!   a push is scanned (the pass prints the new version as held) but not committed.
//! - "Nothing changes" after a push to an unrelated repository is checked once the process
//!   printed that it received that push and matched no source: the refs of the bare repository
//!   are the same as before it.
//! - Waits poll with a generous deadline; nothing asserts how fast.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use upkeep_testenv::{
    Captured, GitServer, NotificationEndpoint, Registry, RegistryKind, RegistryOptions, git,
};

const SECRET: &str = "wire-test-receiver-secret-0123456789";
const DEADLINE: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn app(version: &str, policy: &str) -> String {
    format!(
        "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: {policy}, namespace: apps}}
spec:
  chart:
    spec:
      chart: {policy}
      version: \"{version}\" # {{\"$upkeep\": \"apps:{policy}\"}}
"
    )
}

/// The fleet: a source, a policy and an automation per name, over `host`.
fn fleet(host: &str) -> String {
    let mut out = String::from(
        "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: anytime, namespace: apps}
spec: {timeZone: UTC, alwaysAllowed: true}
---
apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: closed, namespace: apps}
spec:
  timeZone: UTC
  maintenanceWindows:
    - {name: once, startTime: \"2020-01-01T00:00:00Z\", endTime: \"2020-01-01T01:00:00Z\"}
",
    );
    for (name, age, schedule) in [
        ("fast", "", "anytime"),
        ("aged", "\n  minimumReleaseAge: 720h", "anytime"),
        ("closed", "", "closed"),
    ] {
        let _ = write!(
            out,
            "---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: {name}, namespace: apps}}
spec: {{url: \"oci://{host}/charts/{name}\", insecure: true, interval: 1h}}
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {{name: {name}, namespace: apps}}
spec:
  sourceRef: {{name: {name}}}
  policy: {{semver: {{range: \">=1.0.0\"}}}}{age}
---
apiVersion: upkeep.dev/v1alpha1
kind: AppUpgradeAutomation
metadata: {{name: {name}, namespace: apps}}
spec:
  git: {{url: \"https://git.example.com/fleet.git\", ref: {{branch: main}}}}
  path: ./apps/{name}
  interval: 1h
  scheduleRef: {{name: {schedule}}}
  commit:
    author: {{name: upkeep, email: upkeep@example.com}}
  push: {{branch: upkeep/{name}}}
"
        );
    }
    out
}

/// A running `upkeep run`; killed and reaped on drop. Both streams are read all the time.
struct Run {
    child: Child,
    stdout: Captured,
    stderr: Captured,
}

impl Run {
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(args)
            .env_remove("UPKEEP_STORE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn upkeep run");
        let (stdout, _) = Captured::start(child.stdout.take().expect("stdout"));
        let (stderr, _) = Captured::start(child.stderr.take().expect("stderr"));
        Run {
            child,
            stdout,
            stderr,
        }
    }

    fn stdout(&self) -> String {
        self.stdout.text()
    }

    fn stderr(&self) -> String {
        self.stderr.text()
    }

    fn both(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout(),
            self.stderr()
        )
    }

    /// Polls `check` until it holds or the deadline passes (then fails with the output).
    fn until(&mut self, what: &str, check: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !check(self) {
            assert!(
                self.child.try_wait().expect("wait").is_none(),
                "upkeep run exited while waiting for {what}\n{}",
                self.both()
            );
            assert!(
                Instant::now() < deadline,
                "{what}: not within {DEADLINE:?}\n{}",
                self.both()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bare_git(bare: &Path, args: &[&str]) -> String {
    let mut all = vec!["--git-dir", bare.to_str().expect("utf-8")];
    all.extend_from_slice(args);
    git(&all, None).unwrap_or_default().trim().to_owned()
}

async fn push(registry: &Registry, repo: &str, tag: &str) {
    registry
        .push_tags(repo, &[tag.to_owned()])
        .await
        .unwrap_or_else(|e| panic!("push {repo}:{tag}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_push_starts_a_pass_that_commits_through_schedules_and_release_age() {
    let port = free_port();
    let endpoint = NotificationEndpoint::upkeep_receiver(&format!("127.0.0.1:{port}"), SECRET);
    let options = RegistryOptions {
        notifications: vec![endpoint],
    };
    let (registry, git_server) = tokio::join!(
        Registry::start_with(RegistryKind::Plain, options),
        GitServer::start(None)
    );
    let registry = registry.expect("registry");
    let git_server = git_server.expect("git server");
    for name in ["fast", "aged", "closed"] {
        push(&registry, &format!("charts/{name}"), "1.0.0").await;
    }
    let files = [
        ("upkeep/fleet.yaml".to_owned(), fleet(registry.host())),
        ("apps/fast/app.yaml".to_owned(), app("1.0.0", "fast")),
        ("apps/aged/app.yaml".to_owned(), app("1.0.0", "aged")),
        ("apps/closed/app.yaml".to_owned(), app("1.0.0", "closed")),
    ];
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_bytes()))
        .collect();
    let url = git_server.create_repo("fleet", &borrowed).expect("repo");
    let bare = git_server.bare_path("fleet");

    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("receiver-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("secret file");
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_owned();
    let addr = format!("127.0.0.1:{port}");
    let (store, workdir, secret) = (path("state.redb"), path("clone"), path("receiver-secret"));
    // The first pass decides (and records first-seen times) 31 days ago, so the tags pushed
    // before it are old enough for aged's minimumReleaseAge and only a later push is too young.
    let first_pass = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(31 * 24))
        .expect("a time")
        .to_string();
    let mut run = Run::spawn(&[
        "run",
        "--at",
        &first_pass,
        "--repo",
        &url,
        "--workdir",
        &workdir,
        "--store",
        &store,
        "--interval",
        "1h",
        "--allow-insecure-http",
        "--receiver-addr",
        &addr,
        "--receiver-secret-file",
        &secret,
    ]);
    run.until("the first pass", |r| r.stderr().contains("next pass at"));

    // A push to a source's repository: a commit with the new version, well before the hour.
    push(&registry, "charts/fast", "1.1.0").await;
    run.until("the commit of fast 1.1.0 on upkeep/fast", |_| {
        bare_git(&bare, &["show", "upkeep/fast:apps/fast/app.yaml"]) == app("1.1.0", "fast").trim()
    });
    assert!(
        run.stderr()
            .contains("charts/fast:1.1.0 (1 ChartSource matches"),
        "the pass was started by the notification\n{}",
        run.both()
    );

    // A push to an unrelated repository: received, matched nothing, changed nothing.
    let refs = bare_git(&bare, &["for-each-ref"]);
    push(&registry, "charts/unrelated", "9.9.9").await;
    run.until("the unrelated push is received", |r| {
        r.stderr()
            .contains("charts/unrelated:9.9.9 (no ChartSource of the fleet matches)")
    });
    assert_eq!(bare_git(&bare, &["for-each-ref"]), refs, "no ref moved");

    // Too young, and outside the schedule: scanned, not committed. A pass ends after each
    // push was received (every pass scans every source), and the closed schedule's row shows
    // the pushed version held.
    let (out_before, err_before) = (run.stdout().len(), run.stderr().len());
    push(&registry, "charts/aged", "1.1.0").await;
    push(&registry, "charts/closed", "1.1.0").await;
    run.until("a pass after both pushes were received", |r| {
        let err = r.stderr()[err_before..].to_owned();
        let received = |n: &str| err.find(&format!("charts/{n}:1.1.0 (1 ChartSource matches"));
        let last = received("aged").max(received("closed"));
        let pass_after = last.is_some_and(|at| err[at..].contains(" held, "))
            && received("aged").is_some()
            && received("closed").is_some();
        let closed_held = r.stdout()[out_before..].lines().any(|l| {
            l.contains("apps/closed/app.yaml") && l.contains("1.0.0 → 1.1.0") && l.contains("held")
        });
        pass_after && closed_held
    });
    assert_eq!(
        bare_git(&bare, &["for-each-ref"]),
        refs,
        "no branch for the held versions\n{}",
        run.both()
    );
}

/// The receiver's flags are checked before any pass: with --once it is refused with a hint, a
/// secret file that cannot be used is named (its content never shown), and one flag needs the
/// other.
#[test]
fn receiver_flags_are_checked_before_any_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good");
    std::fs::write(&good, SECRET).expect("write");
    let short = dir.path().join("short");
    std::fs::write(&short, "tiny-s3cret").expect("write");
    let repo = dir.path().join("missing-repo");
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let (good, short, repo) = (path(&good), path(&short), path(&repo));
    let addr = format!("127.0.0.1:{}", free_port());
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &[
                "--once",
                "--receiver-addr",
                &addr,
                "--receiver-secret-file",
                &good,
            ],
            "--receiver-addr needs a running `upkeep run`, not --once",
            "--once with a receiver is refused with a hint",
        ),
        (
            &["--receiver-addr", &addr, "--receiver-secret-file", &short],
            "--receiver-secret-file: the receiver secret file",
            "a short secret is refused, naming the file",
        ),
        (
            &["--receiver-addr", &addr],
            "--receiver-secret-file",
            "the address needs the secret file",
        ),
    ];
    for (args, want, why) in cases {
        let mut all = vec!["run", "--repo", &repo];
        all.extend_from_slice(args);
        let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(&all)
            .env_remove("UPKEEP_STORE")
            .output()
            .expect("upkeep runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{why}: {stderr}");
        assert!(stderr.contains(want), "{why}: {stderr}");
        assert!(
            !stderr.contains("tiny-s3cret"),
            "{why}: the secret is shown: {stderr}"
        );
        assert!(
            !stderr.contains("next pass at") && out.stdout.is_empty(),
            "{why}: no pass ran: {stderr}"
        );
    }
}
