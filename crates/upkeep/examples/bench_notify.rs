//! Benchmark (not a test): a chart tag pushed to the real registry → the commit of that version
//! on the real Git server's branch, with registry push notifications and with interval polling,
//! in the same run. See bench/README.md, G.
//!
//! ```text
//! bench_notify UPKEEP_BINARY [--pushes N] [--poll-interval DURATION]
//! ```
//!
//! Each mode gets its own chart repository on one Debian `docker-registry` (whose
//! `notifications.endpoints` point at the receiver) and its own GitOps repository on one
//! `git http-backend`, and one `upkeep run` process:
//! - notify: `--interval 1h --receiver-addr … --receiver-secret-file …`;
//! - poll: `--interval <poll>` (default 10s), no receiver.
//!
//! Each of the N pushes is timed from the moment the push (blobs and manifest) returned to the
//! moment the branch on the Git server holds a commit with the pushed version (the loose ref
//! file is read every 2 ms; the commit's file is checked with `git show`). The next push waits
//! for the process to finish its pass, then a random part of the poll interval in poll mode
//! (so a push lands anywhere in the polling cycle, as in real life); in notify mode it follows
//! at once. Prints JSON on stdout (p50/p95 per mode and the ratio), progress on stderr.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use upkeep_testenv::{
    Captured, GitServer, NotificationEndpoint, Registry, RegistryKind, RegistryOptions, git,
};

const SECRET: &str = "bench-notify-receiver-secret-0123456789";
const BRANCH: &str = "upkeep/bench";
const FILE: &str = "apps/app.yaml";
const STEP_DEADLINE: Duration = Duration::from_secs(120);

struct Args {
    upkeep: PathBuf,
    pushes: usize,
    poll_interval: Duration,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let usage = "usage: bench_notify UPKEEP_BINARY [--pushes N] [--poll-interval SECONDS]";
    let upkeep = PathBuf::from(it.next().expect(usage));
    let mut out = Args {
        upkeep,
        pushes: 20,
        poll_interval: Duration::from_secs(10),
    };
    while let Some(flag) = it.next() {
        let value = it.next().expect(usage);
        match flag.as_str() {
            "--pushes" => out.pushes = value.parse().expect("--pushes N"),
            "--poll-interval" => {
                out.poll_interval =
                    Duration::from_secs(value.parse().expect("--poll-interval SECONDS"));
            }
            _ => panic!("{usage}"),
        }
    }
    out
}

fn app(version: &str) -> String {
    format!(
        "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: app, namespace: apps}}
spec:
  chart:
    spec:
      chart: app
      version: \"{version}\" # {{\"$upkeep\": \"apps:app\"}}
"
    )
}

fn fleet(host: &str, repo: &str) -> String {
    format!(
        "apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: app, namespace: apps}}
spec: {{url: \"oci://{host}/{repo}\", insecure: true, interval: 1h}}
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {{name: app, namespace: apps}}
spec:
  sourceRef: {{name: app}}
  policy: {{semver: {{range: \">=1.0.0\"}}}}
---
apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {{name: anytime, namespace: apps}}
spec: {{timeZone: UTC, alwaysAllowed: true}}
---
apiVersion: upkeep.dev/v1alpha1
kind: AppUpgradeAutomation
metadata: {{name: apps, namespace: apps}}
spec:
  git: {{url: \"https://git.example.com/fleet.git\", ref: {{branch: main}}}}
  path: ./apps
  interval: 1h
  scheduleRef: {{name: anytime}}
  commit:
    author: {{name: upkeep, email: upkeep@example.com}}
  push: {{branch: {BRANCH}}}
"
    )
}

/// The `upkeep run` process of one mode; killed on drop.
struct Run {
    child: Child,
    stderr: Captured,
}

impl Run {
    fn spawn(upkeep: &Path, args: &[String]) -> Self {
        let mut child = Command::new(upkeep)
            .arg("run")
            .args(args)
            .env_remove("UPKEEP_STORE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn upkeep run");
        let (stderr, _) = Captured::start(child.stderr.take().expect("stderr"));
        Run { child, stderr }
    }

    /// How many passes have finished (each ends with "next pass at").
    fn passes(&self) -> usize {
        self.stderr.with(|t| t.matches("next pass at").count())
    }

    fn wait_text(&mut self, text: &str) {
        let deadline = Instant::now() + STEP_DEADLINE;
        while !self.stderr.with(|t| t.contains(text)) {
            assert!(
                self.child.try_wait().expect("wait").is_none() && Instant::now() < deadline,
                "upkeep run: never printed {text}\n{}",
                self.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn wait_passes(&mut self, n: usize) {
        let deadline = Instant::now() + STEP_DEADLINE;
        while self.passes() < n {
            assert!(
                self.child.try_wait().expect("wait").is_none() && Instant::now() < deadline,
                "upkeep run: no pass {n}\n{}",
                self.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The branch's tip as the bare repository has it (a loose ref: receive-pack writes those).
fn tip(bare: &Path) -> Option<String> {
    std::fs::read_to_string(bare.join("refs/heads").join(BRANCH))
        .ok()
        .map(|s| s.trim().to_owned())
}

fn version_at(bare: &Path, commit: &str) -> String {
    let spec = format!("{commit}:{FILE}");
    git(
        &["--git-dir", bare.to_str().expect("utf-8"), "show", &spec],
        None,
    )
    .unwrap_or_default()
}

/// xorshift: a fraction in [0, 1) for the push's place in the polling cycle.
struct Jitter(u64);

impl Jitter {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        f64::from(u32::try_from(self.0 >> 32).unwrap_or(0)) / f64::from(u32::MAX)
    }
}

/// One mode: N pushes, N latencies in seconds.
async fn measure(
    mode: &str,
    a: &Args,
    registry: &Registry,
    git_server: &GitServer,
    receiver: Option<(&str, &Path)>,
    jitter: &mut Jitter,
) -> Vec<f64> {
    let repo = format!("charts/{mode}");
    registry
        .push_tags(&repo, &["1.0.0".to_owned()])
        .await
        .expect("first tag");
    let files = [
        (
            "upkeep/fleet.yaml".to_owned(),
            fleet(registry.host(), &repo),
        ),
        (FILE.to_owned(), app("1.0.0")),
    ];
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_bytes()))
        .collect();
    let url = git_server.create_repo(mode, &borrowed).expect("repo");
    let bare = git_server.bare_path(mode);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |n: &str| dir.path().join(n).to_str().expect("utf-8").to_owned();
    let mut args = vec![
        "--repo".to_owned(),
        url,
        "--workdir".to_owned(),
        p("clone"),
        "--store".to_owned(),
        p("state.redb"),
        "--allow-insecure-http".to_owned(),
        "--interval".to_owned(),
    ];
    match receiver {
        Some((addr, secret)) => args.extend([
            "1h".to_owned(),
            "--receiver-addr".to_owned(),
            addr.to_owned(),
            "--receiver-secret-file".to_owned(),
            secret.to_str().expect("utf-8").to_owned(),
        ]),
        None => args.push(format!("{}s", a.poll_interval.as_secs())),
    }
    let mut run = Run::spawn(&a.upkeep, &args);
    run.wait_passes(1);
    if receiver.is_some() {
        // The registry retries the notification of 1.0.0 (pushed before the receiver listened)
        // until it is delivered: wait for it and the pass it starts, so no push below shares it.
        run.wait_text(&format!("{repo}:1.0.0"));
        run.wait_passes(2);
    }
    let mut samples = Vec::with_capacity(a.pushes);
    for i in 1..=a.pushes {
        if receiver.is_none() {
            tokio::time::sleep(a.poll_interval.mul_f64(jitter.next())).await;
        }
        let version = format!("1.{i}.0");
        let before = tip(&bare);
        let passes = run.passes();
        registry
            .push_tags(&repo, std::slice::from_ref(&version))
            .await
            .expect("push");
        let pushed = Instant::now();
        let deadline = pushed + STEP_DEADLINE;
        let landed = loop {
            let now = tip(&bare);
            if now.is_some() && now != before {
                break Instant::now();
            }
            assert!(Instant::now() < deadline, "{mode}: {version} never landed");
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let tip = tip(&bare).expect("tip");
        assert!(
            version_at(&bare, &tip).contains(&format!("\"{version}\"")),
            "{mode}: the new tip {tip} does not hold {version}"
        );
        let s = landed.duration_since(pushed).as_secs_f64();
        eprintln!("{mode}: push {i}/{} {version}: {s:.3} s", a.pushes);
        samples.push(s);
        // Let the pass that committed (it started after the push) finish before the next push.
        run.wait_passes(passes + 1);
    }
    samples
}

/// Nearest-rank percentile (`p` in percent).
fn percentile(samples: &[f64], p: usize) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = (p * s.len()).div_ceil(100).max(1);
    s[rank.min(s.len()) - 1]
}

fn summary(samples: &[f64]) -> serde_json::Value {
    json!({
        "p50_s": percentile(samples, 50),
        "p95_s": percentile(samples, 95),
        "samples_s": samples,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // As docs/receiver.md recommends: no blob events (uploads and HEADs of layers are
    // `application/octet-stream`), only manifest pushes. Each push sends about five blob
    // events otherwise: work for nothing, and a burst of pushes can exceed the receiver's
    // per-client limit (a 429 costs a retry after the registry's `backoff`, 1 s here).
    let mut endpoint = NotificationEndpoint::upkeep_receiver(&format!("127.0.0.1:{port}"), SECRET);
    endpoint.ignored_media_types = vec!["application/octet-stream".to_owned()];
    let options = RegistryOptions {
        notifications: vec![endpoint],
    };
    let (registry, git_server) = tokio::join!(
        Registry::start_with(RegistryKind::Plain, options),
        GitServer::start(None)
    );
    let registry = registry.expect("registry");
    let git_server = git_server.expect("git server");
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).expect("secret");
    let addr = format!("127.0.0.1:{port}");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::from(d.subsec_nanos()) ^ d.as_secs())
        | 1;
    let mut jitter = Jitter(seed);
    eprintln!(
        "notify: upkeep run --interval 1h --receiver-addr {addr}, {} pushes",
        a.pushes
    );
    let notify = measure(
        "notify",
        &a,
        &registry,
        &git_server,
        Some((&addr, &secret)),
        &mut jitter,
    )
    .await;
    eprintln!(
        "poll: upkeep run --interval {}s, {} pushes",
        a.poll_interval.as_secs(),
        a.pushes
    );
    let poll = measure("poll", &a, &registry, &git_server, None, &mut jitter).await;
    let (n50, p50) = (percentile(&notify, 50), percentile(&poll, 50));
    let out = json!({
        "pushes": a.pushes,
        "poll_interval_s": a.poll_interval.as_secs(),
        "notify": summary(&notify),
        "poll": summary(&poll),
        "ratio_p50": p50 / n50,
        "target_p50_s": 2.0,
        "met": n50 <= 2.0,
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}
