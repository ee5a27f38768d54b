//! What the controller benchmarks share: the API client, the controller process with its
//! memory/CPU/socket sampling, object creation, deadline polling and a fixed-seed generator.
//! Each benchmark (`bench_controller`, `bench_clusters`) includes it with `#[path]`, so the
//! measuring code is the same in both.

#![allow(dead_code, clippy::print_stderr)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt, stream};
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use upkeep_testenv::{KubeApiServer, KubeUser};

/// The IANA zones the generated schedules are written in.
pub(crate) const ZONES: &[&str] = &[
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "UTC",
    "Asia/Tokyo",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "America/Sao_Paulo",
];

const CREATE_IN_FLIGHT: usize = 32;
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

pub(crate) fn signed_secs(t: Instant, zero: Instant) -> f64 {
    if t >= zero {
        t.duration_since(zero).as_secs_f64()
    } else {
        -zero.duration_since(t).as_secs_f64()
    }
}

pub(crate) fn ar<K: kube::Resource<DynamicType = ()>>() -> ApiResource {
    ApiResource::erase::<K>(&())
}

pub(crate) async fn client(server: &KubeApiServer) -> Result<kube::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig(KubeUser::Admin))
        .map_err(|e| format!("kubeconfig: {e}"))?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(|e| format!("kubeconfig: {e}"))?;
    kube::Client::try_from(config).map_err(|e| format!("client: {e}"))
}

pub(crate) async fn wait_for(
    limit: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return Err(format!(
                "timed out after {} s waiting for {what}",
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The command line: positional arguments, and `--name N` flags (whole numbers) from `known`.
pub(crate) fn parse_flags(
    usage: &str,
    known: &[&str],
) -> Result<(Vec<String>, HashMap<String, u64>), String> {
    let mut positional = Vec::new();
    let mut flags: HashMap<String, u64> = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if let Some(name) = a.strip_prefix("--") {
            if !known.contains(&name) {
                return Err(format!("unknown flag --{name}; {usage}"));
            }
            let value = args
                .next()
                .ok_or_else(|| format!("--{name} needs a value; {usage}"))?;
            let n = value
                .parse()
                .map_err(|_| format!("--{name} {value:?} is not a whole number"))?;
            flags.insert(name.to_owned(), n);
        } else {
            positional.push(a);
        }
    }
    Ok((positional, flags))
}

/// When the benchmark's window opens: `lead` seconds from now (default: 60 s plus 1 s per 100
/// objects), on a whole second.
pub(crate) fn open_at(lead: Option<u64>, n: usize) -> Result<jiff::Timestamp, String> {
    use jiff::ToSpan;
    let lead = lead.unwrap_or(60 + u64::try_from(n).unwrap_or(0) / 100);
    jiff::Timestamp::now()
        .checked_add(i64::try_from(lead).unwrap_or(600).seconds())
        .map_err(|e| e.to_string())?
        .round(jiff::Unit::Second)
        .map_err(|e| e.to_string())
}

/// The memory of a controller with no objects, `settle` after it became ready; then stops it.
pub(crate) async fn idle_memory(
    mut idle: Spawned,
    deadline: Duration,
    settle: Duration,
) -> Result<Memory, String> {
    idle.wait_ready(deadline).await?;
    tokio::time::sleep(settle).await;
    let memory = idle.memory()?;
    idle.stop()?;
    Ok(memory)
}

/// Creates `docs` (see [`create_all`]) and says how long it took, in seconds.
pub(crate) async fn create_all_timed(
    client: &kube::Client,
    docs: Vec<(ApiResource, Value)>,
) -> Result<f64, String> {
    let created = Instant::now();
    create_all(client, docs).await?;
    Ok(created.elapsed().as_secs_f64())
}

/// Every object of `api` as it is listed, then as it changes (with the watcher's backoff).
pub(crate) fn applied_objects(
    api: Api<DynamicObject>,
) -> futures_util::stream::BoxStream<'static, Result<DynamicObject, kube::runtime::watcher::Error>>
{
    use kube::runtime::{WatchStreamExt, watcher};
    watcher(api, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed()
}

/// The report's head: the API server, the binary measured, the settle time, the targets and the
/// sizes.
pub(crate) fn report(upkeep: &Path, settle: Duration, target: &str, sizes: &[Value]) -> Value {
    let mut report = json!({
        "apiserver": upkeep_testenv::KUBE_APISERVER_VERSION,
        "upkeep": upkeep.display().to_string(),
        "settle_s": settle.as_secs(),
        "target_rss_mib": 64,
        "sizes": sizes,
    });
    report[target] = json!(30);
    report
}

pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.next() % items.len() as u64).unwrap_or(0)]
    }
}

pub(crate) async fn create_all(
    client: &kube::Client,
    docs: Vec<(ApiResource, Value)>,
) -> Result<(), String> {
    // Namespaces first (they come first in `docs`), then everything else in parallel.
    let (namespaces, rest): (Vec<_>, Vec<_>) =
        docs.into_iter().partition(|(ar, _)| ar.kind == "Namespace");
    for (ar, doc) in namespaces {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        create(&api, doc).await?;
    }
    stream::iter(rest.into_iter().map(|(ar, doc)| {
        let ns = doc["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
        async move { create(&api, doc).await }
    }))
    .buffer_unordered(CREATE_IN_FLIGHT)
    .try_collect::<Vec<()>>()
    .await?;
    Ok(())
}

pub(crate) async fn create(api: &Api<DynamicObject>, doc: Value) -> Result<(), String> {
    let name = doc["metadata"]["name"].as_str().unwrap_or("?").to_owned();
    let object: DynamicObject = serde_json::from_value(doc).map_err(|e| format!("{name}: {e}"))?;
    api.create(&PostParams::default(), &object)
        .await
        .map(|_| ())
        .map_err(|e| format!("creating {name}: {e}"))
}

// --- the controller process -------------------------------------------------------------------

pub(crate) struct Spawned {
    child: Child,
    pid: u32,
    pub(crate) started: Instant,
    metrics_port: u16,
    log: PathBuf,
}

#[derive(Clone, Copy)]
pub(crate) struct Memory {
    pub(crate) rss_kib: u64,
    pub(crate) hwm_kib: u64,
}

#[derive(Clone, Copy, Default)]
pub(crate) struct Peaks {
    pub(crate) sockets: usize,
    pub(crate) threads: usize,
    pub(crate) rss_kib: u64,
}

pub(crate) struct Sampler {
    peaks: Arc<Mutex<Peaks>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub(crate) fn peaks(&self) -> Peaks {
        self.peaks.lock().map(|p| *p).unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

pub(crate) fn proc_status_kib(pid: u32, field: &str) -> Result<u64, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status"))
}

pub(crate) fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

impl Spawned {
    pub(crate) fn start(
        upkeep: &Path,
        logs: &Path,
        server: &KubeApiServer,
        workdir: &Path,
        tag: &str,
        extra: &[String],
    ) -> Result<Self, String> {
        let metrics_port = free_port()?;
        let log = logs.join(format!("controller-{tag}.log"));
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new(upkeep)
            .args([
                "controller",
                "--leader-elect=false",
                "--log-format",
                "json",
                "--metrics-addr",
            ])
            .arg(format!("127.0.0.1:{metrics_port}"))
            .arg("--workdir")
            .arg(workdir)
            .args(extra)
            .env("KUBECONFIG", server.admin_kubeconfig())
            .env(
                "RUST_LOG",
                std::env::var("UPKEEP_BENCH_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("spawning {} controller: {e}", upkeep.display()))?;
        Ok(Self {
            pid: child.id(),
            child,
            started: Instant::now(),
            metrics_port,
            log,
        })
    }

    pub(crate) fn log_hint(&self) -> String {
        format!("controller log: {}", self.log.display())
    }

    pub(crate) async fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "the controller exited early ({status}); {}",
                    self.log_hint()
                ));
            }
            if self.get("/readyz").await.is_ok_and(|(code, _)| code == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the controller never answered /readyz 200; {}",
                    self.log_hint()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A plain HTTP/1.1 GET on the metrics address: (status code, body).
    pub(crate) async fn get(&self, path: &str) -> Result<(u16, String), String> {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", self.metrics_port))
            .await
            .map_err(|e| e.to_string())?;
        conn.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut text = String::new();
        conn.read_to_string(&mut text)
            .await
            .map_err(|e| e.to_string())?;
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or("no status line")?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((code, body))
    }

    pub(crate) async fn metrics(&self) -> Result<String, String> {
        let (code, body) = self.get("/metrics").await?;
        if code == 200 {
            Ok(body)
        } else {
            Err(format!("/metrics answered {code}"))
        }
    }

    pub(crate) fn memory(&self) -> Result<Memory, String> {
        Ok(Memory {
            rss_kib: proc_status_kib(self.pid, "VmRSS")?,
            hwm_kib: proc_status_kib(self.pid, "VmHWM")?,
        })
    }

    /// utime + stime of the process, in seconds.
    pub(crate) fn cpu_s(&self, tick: f64) -> Result<f64, String> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .map_err(|e| format!("reading /proc/{}/stat: {e}", self.pid))?;
        // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or("bad /proc stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i - 3)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Ok((ticks(14) + ticks(15)) / tick)
    }

    /// Samples open sockets, threads and RSS every [`SAMPLE_EVERY`] until dropped.
    pub(crate) fn sampler(&self) -> Sampler {
        let peaks = Arc::new(Mutex::new(Peaks::default()));
        let pid = self.pid;
        let shared = peaks.clone();
        let task = tokio::spawn(async move {
            loop {
                let sockets = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| {
                    d.filter_map(Result::ok)
                        .filter(|e| {
                            std::fs::read_link(e.path())
                                .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
                        })
                        .count()
                });
                let threads =
                    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count);
                let rss = proc_status_kib(pid, "VmRSS").unwrap_or(0);
                if let Ok(mut p) = shared.lock() {
                    p.sockets = p.sockets.max(sockets);
                    p.threads = p.threads.max(threads);
                    p.rss_kib = p.rss_kib.max(rss);
                }
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
        });
        Sampler { peaks, task }
    }

    /// SIGTERM, then wait up to 15 s; returns the exit code (or "killed").
    pub(crate) fn stop(mut self) -> Result<Value, String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok(json!(status.code()));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Ok(json!("killed after 15 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `upkeep_reconcile_total{kind,result}` and `upkeep_reconcile_errors_total{kind,error}`.
pub(crate) fn reconcile_counts(metrics: &str) -> Value {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for line in metrics.lines() {
        if let Some(rest) = line
            .strip_prefix("upkeep_reconcile_total{")
            .or_else(|| line.strip_prefix("upkeep_reconcile_errors_total{"))
        {
            let errors = line.starts_with("upkeep_reconcile_errors");
            if let Some((labels, value)) = rest.rsplit_once("} ") {
                let label = |name: &str| {
                    labels
                        .split(',')
                        .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                        .map(|v| v.trim_end_matches('"').to_owned())
                        .unwrap_or_default()
                };
                let key = if errors {
                    format!("{}/error:{}", label("kind"), label("error"))
                } else {
                    format!("{}/{}", label("kind"), label("result"))
                };
                *out.entry(key).or_default() += value.trim().parse::<f64>().unwrap_or(0.0);
            }
        }
    }
    json!(out)
}

/// The "window opens" phase both benchmarks share: waits for `open_at`, then until `done`,
/// and reports how long after the opening each object in `reached` got there (`count_key`
/// names the count in the JSON), with CPU and memory. A cold start that has not settled by
/// `open_at` is reported as missed, not faked.
#[allow(clippy::cast_precision_loss, clippy::too_many_arguments)]
pub(crate) async fn window_opens<K>(
    ctl: &Spawned,
    tick: f64,
    open_at: jiff::Timestamp,
    settle: Duration,
    deadline: Duration,
    what: &str,
    count_key: &str,
    reached: &Mutex<HashMap<K, Instant>>,
    want: usize,
) -> Result<Value, String> {
    let before_open = jiff::Timestamp::now();
    if before_open >= open_at {
        eprintln!("    window opening at {open_at}: MISSED (settled at {before_open})");
        return Ok(
            json!({"missed": true, "open_at": open_at.to_string(), "settled_at": before_open.to_string()}),
        );
    }
    let wait = Duration::try_from(open_at.duration_since(before_open)).unwrap_or_default();
    eprintln!(
        "    waiting {:.0} s for the window to open at {open_at}",
        wait.as_secs_f64()
    );
    let open_instant = Instant::now() + wait;
    let cpu_before = ctl.cpu_s(tick)?;
    wait_for(wait + deadline, what, || {
        reached.lock().is_ok_and(|r| r.len() >= want)
    })
    .await
    .map_err(|e| format!("{e}; {}", ctl.log_hint()))?;
    let mut times: Vec<f64> = {
        let r = reached.lock().map_err(|_| "poisoned")?;
        r.values().map(|t| signed_secs(*t, open_instant)).collect()
    };
    times.sort_by(f64::total_cmp);
    let last = times.last().copied().unwrap_or(0.0);
    tokio::time::sleep(settle).await;
    let mem = ctl.memory()?;
    Ok(json!({
        "missed": false,
        "open_at": open_at.to_string(),
        count_key: times.len(),
        "first_s": times.first().copied().unwrap_or(0.0),
        "p50_s": times[times.len() / 2],
        "all_s": last,
        "per_s": if last > 0.0 { times.len() as f64 / last } else { 0.0 },
        "cpu_s": ctl.cpu_s(tick)? - cpu_before,
        "rss_kib": mem.rss_kib,
        "hwm_kib": mem.hwm_kib,
    }))
}

/// Runs a benchmark on a two-thread runtime: its JSON report on stdout, an error on stderr.
pub(crate) fn run_main(
    run: impl std::future::Future<Output = Result<Value, String>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run) {
        Ok(report) => {
            #[allow(clippy::print_stdout)]
            {
                println!("{report:#}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("error: {msg}");
            std::process::ExitCode::FAILURE
        }
    }
}
