//! Orchestrates the registry benchmarks (DESIGN.md "Performance targets"): listing 10k tags of
//! one repository against `skopeo list-tags`, and scanning 200 repositories with bounded
//! connections at two sizes.
//!
//! Why it is shaped this way:
//! - The registry is the real Debian `docker-registry` started by `upkeep-testenv`, seeded with
//!   `seed_tags` (tag links written into its storage: seconds instead of minutes). upkeep and
//!   skopeo list the same repository of the same registry in the same run.
//! - skopeo is a process per listing, so upkeep is timed as a process too (`list_tags`, the
//!   sibling example), with the same harness, interleaved run by run so drift hits both alike.
//!   upkeep's in-process listing time is reported separately (a fresh `Client` per run, so a
//!   new connection each time, like a process).
//! - Distribution 2.8 ignores `n`/`last`, so the paginated case goes through the testenv
//!   `FaultProxy` with `CapPageSize(1000)`: it sorts, pages by 1000 and sends `Link` headers
//!   whatever `n` the client asked for (skopeo asks for none). The proxy's request log shows how
//!   many pages each client fetched.
//! - Both listings are compared (sorted) with each other and with the seeded tags on every
//!   timed run; any difference is written into the JSON and `bench/report.py` fails loudly.
//! - The scan runs in its own process (`scan_repos`) so its peak RSS is its own. It reaches the
//!   registry through a relay in this process that counts, outside the library, open TCP
//!   connections and HTTP requests in flight (request bytes seen, response not yet complete —
//!   the relay follows `Content-Length` and chunked framing), each with its peak. A control run
//!   with a large per-host bound shows the counters do see more when more is allowed.
//! - Both scan sizes use the same 200 repositories: size 2 seeds more tags into them, which
//!   halves the tag links written to the registry's storage.
//!
//! Usage: `bench_registry [--runs N] [--scan-runs N] [--skopeo PATH]`. Progress on stderr, one
//! JSON object on stdout. Sibling binaries are looked up next to this one.

// A benchmark driver: its output is its purpose.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use upkeep_testenv::{Fault, FaultProxy, Registry, RegistryKind};

const LIST_REPO: &str = "bench/tags10k";
const LIST_TAGS: usize = 10_000;
const PAGE: u32 = 1000;
const SCAN_REPOS: usize = 200;
const SCAN_PREFIX: &str = "scan";
/// Seeding writes tag links to disk; two tasks keep both cores busy.
const SEED_TASKS: usize = 2;
const SCAN_CONCURRENCY: usize = 32;
const SCAN_PER_HOST: usize = 6;
const CONTROL_PER_HOST: usize = 64;

mod support;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: building the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    support::exit(runtime.block_on(run()))
}

struct Args {
    runs: usize,
    scan_runs: usize,
    skopeo: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        runs: 7,
        scan_runs: 3,
        skopeo: "skopeo".to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("invalid {flag} {value:?} (want a number ≥ 1)"))
        };
        match flag.as_str() {
            "--runs" => args.runs = number()?,
            "--scan-runs" => args.scan_runs = number()?,
            "--skopeo" => args.skopeo.clone_from(&value),
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    Ok(args)
}

fn log(msg: &str) {
    eprintln!("    {msg}");
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => f64::midpoint(v[n / 2 - 1], v[n / 2]),
    }
}

/// 10,000 distinct, realistic tags: SemVer with and without `v`, some prereleases.
fn list_tags_input() -> Vec<String> {
    (0..LIST_TAGS)
        .map(|i| {
            let base = format!("{}.{}.{}", i / 500, (i / 10) % 50, i % 10);
            let v = if i % 7 == 3 { "v" } else { "" };
            let pre = if i % 11 == 5 { "-rc.1" } else { "" };
            format!("{v}{base}{pre}")
        })
        .collect()
}

/// Tags for scan repository `i` at size factor `k`: 50–950 (times `k`) per repository.
fn scan_tags(i: usize, k: usize) -> Vec<String> {
    let n = k * (50 + (i * 449) % 901);
    (0..n)
        .map(|j| format!("{}.{}.{}", j / 100, j % 100, i % 10))
        .collect()
}

struct Timed {
    ms: f64,
    stdout: String,
}

async fn time_process(program: &Path, args: &[&str]) -> Result<Timed, String> {
    let started = Instant::now();
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("running {}: {e}", program.display()))?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if !out.status.success() {
        return Err(format!(
            "{} {} failed ({}): {}",
            program.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(Timed {
        ms,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    })
}

fn upkeep_tags(stdout: &str) -> Vec<String> {
    let mut v: Vec<String> = stdout.lines().map(str::to_owned).collect();
    v.sort();
    v
}

fn skopeo_tags(stdout: &str) -> Result<Vec<String>, String> {
    let json: Value =
        serde_json::from_str(stdout).map_err(|e| format!("skopeo output is not JSON: {e}"))?;
    let mut v: Vec<String> = json["Tags"]
        .as_array()
        .ok_or("skopeo output has no \"Tags\" array")?
        .iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    v.sort();
    Ok(v)
}

/// Differences between two sorted lists, for the report (at most a few).
fn diff(name_a: &str, a: &[String], name_b: &str, b: &[String]) -> Option<String> {
    if a == b {
        return None;
    }
    let only_a: Vec<&String> = a.iter().filter(|t| b.binary_search(t).is_err()).collect();
    let only_b: Vec<&String> = b.iter().filter(|t| a.binary_search(t).is_err()).collect();
    Some(format!(
        "{name_a} has {} tags, {name_b} {}; only in {name_a}: {} (first {:?}); only in {name_b}: {} (first {:?})",
        a.len(),
        b.len(),
        only_a.len(),
        only_a.iter().take(5).collect::<Vec<_>>(),
        only_b.len(),
        only_b.iter().take(5).collect::<Vec<_>>(),
    ))
}

struct ListCase<'a> {
    name: &'static str,
    host: String,
    proxy: Option<&'a FaultProxy>,
}

async fn in_process_ms(location: &str) -> Result<(f64, usize), String> {
    let started = Instant::now();
    let list = support::list_like_skopeo(location).await?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if list.tags.len() != LIST_TAGS {
        return Err(format!(
            "in-process listing of {location} returned {} tags, want {LIST_TAGS}",
            list.tags.len()
        ));
    }
    Ok((ms, list.pages))
}

fn tag_list_requests(proxy: &FaultProxy) -> usize {
    proxy.requests().iter().filter(|r| r.is_tags_list()).count()
}

async fn list_case(
    case: &ListCase<'_>,
    examples: &Path,
    skopeo: &Path,
    expected: &[String],
    runs: usize,
) -> Result<Value, String> {
    let location = format!("oci://{}/{LIST_REPO}", case.host);
    let docker_ref = format!("docker://{}/{LIST_REPO}", case.host);
    let upkeep_bin = examples.join("list_tags");
    let upkeep_args = [location.as_str()];
    let skopeo_args = ["list-tags", "--tls-verify=false", docker_ref.as_str()];
    let mut problems = Vec::new();

    // Warm-up (untimed), counting the pages each client fetches when a proxy pages.
    if let Some(p) = case.proxy {
        p.clear_requests();
    }
    time_process(&upkeep_bin, &upkeep_args).await?;
    let upkeep_pages = case.proxy.map(tag_list_requests);
    if let Some(p) = case.proxy {
        p.clear_requests();
    }
    time_process(skopeo, &skopeo_args).await?;
    let skopeo_pages = case.proxy.map(tag_list_requests);

    let (mut ups, mut sks) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let u = time_process(&upkeep_bin, &upkeep_args).await?;
        let s = time_process(skopeo, &skopeo_args).await?;
        ups.push(u.ms);
        sks.push(s.ms);
        let ut = upkeep_tags(&u.stdout);
        let st = skopeo_tags(&s.stdout)?;
        for d in [
            diff("upkeep", &ut, "skopeo", &st),
            diff("upkeep", &ut, "seeded", expected),
            diff("skopeo", &st, "seeded", expected),
        ]
        .into_iter()
        .flatten()
        {
            problems.push(format!("{} run {}: {d}", case.name, run + 1));
        }
    }
    let mut inproc = Vec::new();
    let mut inproc_pages = 0;
    in_process_ms(&location).await?; // warm-up
    for _ in 0..runs {
        let (ms, pages) = in_process_ms(&location).await?;
        inproc.push(ms);
        inproc_pages = pages;
    }
    let (um, sm) = (median(&ups), median(&sks));
    log(&format!(
        "{}: upkeep {um:.1} ms, skopeo {sm:.1} ms (skopeo/upkeep {:.2}x), upkeep in-process {:.1} ms; pages upkeep {upkeep_pages:?} skopeo {skopeo_pages:?}",
        case.name,
        sm / um,
        median(&inproc)
    ));
    Ok(json!({
        "name": case.name,
        "tags": expected.len(),
        "upkeep_ms": um,
        "upkeep_runs_ms": ups,
        "skopeo_ms": sm,
        "skopeo_runs_ms": sks,
        "inproc_ms": median(&inproc),
        "inproc_runs_ms": inproc,
        "inproc_pages": inproc_pages,
        "upkeep_pages": upkeep_pages,
        "skopeo_pages": skopeo_pages,
        "agree": problems.is_empty(),
        "problems": problems,
    }))
}

/// Counters shared by the relay's connections.
#[derive(Default)]
struct Gauges {
    conns: AtomicUsize,
    conns_peak: AtomicUsize,
    conns_total: AtomicUsize,
    requests: AtomicUsize,
    requests_peak: AtomicUsize,
    requests_total: AtomicUsize,
}

impl Gauges {
    fn up(now: &AtomicUsize, peak: &AtomicUsize, total: &AtomicUsize) {
        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(n, Ordering::SeqCst);
        total.fetch_add(1, Ordering::SeqCst);
    }
}

/// Where the relay is in reading one HTTP/1.1 response from the registry.
enum Response {
    /// Collecting the status line and headers.
    Head(Vec<u8>),
    /// `Content-Length` body: bytes still to come.
    Length(usize),
    /// Chunked body: the last bytes seen, to spot the closing `\r\n0\r\n\r\n`.
    Chunked(Vec<u8>),
    /// Neither: the body ends when the connection does.
    UntilClose,
}

impl Response {
    /// Feeds bytes from the server; true when they completed the response. Only what the
    /// registry sends on this benchmark is handled (no pipelining, no trailers, no HEAD); a
    /// chunked body ends at `\r\n0\r\n\r\n`, which JSON tag lists cannot contain.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        match self {
            Response::Head(buf) => {
                buf.extend_from_slice(bytes);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    return false;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let rest = buf[end + 4..].to_vec();
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                        .map(|v| v.trim().to_owned())
                };
                let no_body = head
                    .split_ascii_whitespace()
                    .nth(1)
                    .is_some_and(|code| code.starts_with('1') || code == "204" || code == "304");
                *self = if no_body {
                    Response::Length(0)
                } else if let Some(n) = header("content-length").and_then(|v| v.parse().ok()) {
                    Response::Length(n)
                } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
                    Response::Chunked(b"\r\n".to_vec())
                } else {
                    Response::UntilClose
                };
                if matches!(self, Response::Length(0)) {
                    true
                } else {
                    !rest.is_empty() && self.feed(&rest)
                }
            }
            Response::Length(left) => {
                *left -= bytes.len().min(*left);
                *left == 0
            }
            Response::Chunked(tail) => {
                tail.extend_from_slice(bytes);
                let keep = tail.len().saturating_sub(7);
                tail.drain(..keep);
                tail.ends_with(b"\r\n0\r\n\r\n")
            }
            Response::UntilClose => false,
        }
    }
}

/// A relay to `upstream` that counts open TCP connections and HTTP requests in flight
/// (request bytes seen, response not yet complete), each with its peak.
struct Relay {
    host: String,
    gauges: Arc<Gauges>,
    task: tokio::task::JoinHandle<()>,
}

async fn relay_connection(inbound: TcpStream, upstream: String, g: Arc<Gauges>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(outbound) = TcpStream::connect(&upstream).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (mut in_r, mut in_w) = inbound.into_split();
    let (mut out_r, mut out_w) = outbound.into_split();
    let busy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (g1, b1) = (g.clone(), busy.clone());
    let to_server = async move {
        let mut buf = vec![0u8; 16 << 10];
        while let Ok(n) = in_r.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if !b1.swap(true, Ordering::SeqCst) {
                Gauges::up(&g1.requests, &g1.requests_peak, &g1.requests_total);
            }
            if out_w.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = out_w.shutdown().await;
    };
    let (g2, b2) = (g.clone(), busy.clone());
    let to_client = async move {
        let mut buf = vec![0u8; 64 << 10];
        let mut response = Response::Head(Vec::new());
        while let Ok(n) = out_r.read(&mut buf).await {
            if n == 0 {
                break;
            }
            // Count the response as done before the client can see its end, so a next
            // request on this connection is never mistaken for part of this one.
            if response.feed(&buf[..n]) {
                response = Response::Head(Vec::new());
                if b2.swap(false, Ordering::SeqCst) {
                    g2.requests.fetch_sub(1, Ordering::SeqCst);
                }
            }
            if in_w.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = in_w.shutdown().await;
    };
    tokio::join!(to_server, to_client);
    if busy.swap(false, Ordering::SeqCst) {
        g.requests.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Relay {
    async fn start(upstream: String) -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("binding the relay: {e}"))?;
        let host = listener
            .local_addr()
            .map_err(|e| format!("relay address: {e}"))?
            .to_string();
        let gauges = Arc::new(Gauges::default());
        let g = gauges.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                Gauges::up(&g.conns, &g.conns_peak, &g.conns_total);
                let g = g.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    relay_connection(inbound, upstream, g.clone()).await;
                    g.conns.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok(Relay { host, gauges, task })
    }

    /// Starts a new measurement: peaks = what is open now (normally 0), totals = 0.
    fn reset(&self) {
        let g = &self.gauges;
        g.conns_peak
            .store(g.conns.load(Ordering::SeqCst), Ordering::SeqCst);
        g.requests_peak
            .store(g.requests.load(Ordering::SeqCst), Ordering::SeqCst);
        g.conns_total.store(0, Ordering::SeqCst);
        g.requests_total.store(0, Ordering::SeqCst);
    }

    /// (peak connections, connections opened, peak requests in flight, requests).
    fn counts(&self) -> (usize, usize, usize, usize) {
        let g = &self.gauges;
        (
            g.conns_peak.load(Ordering::SeqCst),
            g.conns_total.load(Ordering::SeqCst),
            g.requests_peak.load(Ordering::SeqCst),
            g.requests_total.load(Ordering::SeqCst),
        )
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct ScanRun {
    ms: f64,
    tags: u64,
    pages: u64,
    hwm_kib: u64,
    rss_before_kib: u64,
    peak_conns: usize,
    conns_opened: usize,
    peak_requests: usize,
    requests: usize,
}

async fn scan_once(
    examples: &Path,
    relay: &Relay,
    per_host: usize,
    want_tags: usize,
) -> Result<ScanRun, String> {
    relay.reset();
    let args = [
        relay.host.clone(),
        SCAN_PREFIX.to_owned(),
        SCAN_REPOS.to_string(),
        SCAN_CONCURRENCY.to_string(),
        per_host.to_string(),
    ];
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = time_process(&examples.join("scan_repos"), &arg_refs).await?;
    let (peak_conns, conns_opened, peak_requests, requests) = relay.counts();
    let v: Value = serde_json::from_str(out.stdout.trim())
        .map_err(|e| format!("scan_repos output is not JSON: {e}: {}", out.stdout))?;
    let field = |k: &str| v[k].as_u64().ok_or_else(|| format!("scan_repos: no {k}"));
    if field("errors")? != 0 {
        return Err(format!("the scan had errors: {}", v["first_error"]));
    }
    let tags = field("tags")?;
    if tags != want_tags as u64 {
        return Err(format!(
            "the scan found {tags} tags, {want_tags} were seeded"
        ));
    }
    Ok(ScanRun {
        ms: v["ms"].as_f64().ok_or("scan_repos: no ms")?,
        tags,
        pages: field("pages")?,
        hwm_kib: field("hwm_kib")?,
        rss_before_kib: field("rss_before_kib")?,
        peak_conns,
        conns_opened,
        peak_requests,
        requests,
    })
}

#[allow(clippy::cast_precision_loss)]
async fn scan_size(
    examples: &Path,
    relay: &Relay,
    want_tags: usize,
    runs: usize,
) -> Result<Value, String> {
    scan_once(examples, relay, SCAN_PER_HOST, want_tags).await?; // warm-up
    let mut all = Vec::new();
    for _ in 0..runs {
        all.push(scan_once(examples, relay, SCAN_PER_HOST, want_tags).await?);
    }
    let ms: Vec<f64> = all.iter().map(|r| r.ms).collect();
    let hwm: Vec<f64> = all.iter().map(|r| r.hwm_kib as f64).collect();
    let delta: Vec<f64> = all
        .iter()
        .map(|r| r.hwm_kib.saturating_sub(r.rss_before_kib) as f64)
        .collect();
    let max = |f: fn(&ScanRun) -> usize| all.iter().map(f).max().unwrap_or(0);
    let (peak_conns, opened) = (max(|r| r.peak_conns), max(|r| r.conns_opened));
    let (peak_requests, requests) = (max(|r| r.peak_requests), max(|r| r.requests));
    log(&format!(
        "scan: {} tags, {:.1} ms, peak {peak_requests} requests in flight ({requests} requests), peak {peak_conns} connections ({opened} opened), VmHWM {:.0} KiB (+{:.0} KiB over the start)",
        all[0].tags,
        median(&ms),
        median(&hwm),
        median(&delta)
    ));
    Ok(json!({
        "tags": all[0].tags,
        "pages": all[0].pages,
        "ms": median(&ms),
        "runs_ms": ms,
        "hwm_kib": median(&hwm),
        "hwm_runs_kib": hwm,
        "hwm_delta_kib": median(&delta),
        "rss_before_kib": all[0].rss_before_kib,
        "peak_requests": peak_requests,
        "requests": requests,
        "peak_connections": peak_conns,
        "connections_opened": opened,
    }))
}

/// Seeds the scan repositories up to size factor `k` (tags of smaller sizes are kept, so
/// size 2 adds to size 1). Returns the total number of tags.
async fn seed_scan(registry: &Arc<Registry>, from_k: usize, k: usize) -> Result<usize, String> {
    let mut tasks = Vec::new();
    for part in 0..SEED_TASKS {
        let registry = registry.clone();
        tasks.push(tokio::spawn(async move {
            for i in (part..SCAN_REPOS).step_by(SEED_TASKS) {
                let tags = scan_tags(i, k);
                let skip = if from_k == 0 {
                    0
                } else {
                    scan_tags(i, from_k).len()
                };
                registry
                    .seed_tags(&format!("{SCAN_PREFIX}/repo-{i:03}"), &tags[skip..])
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| format!("seeding task: {e}"))??;
    }
    Ok((0..SCAN_REPOS).map(|i| scan_tags(i, k).len()).sum())
}

fn sibling_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("locating this program: {e}"))?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "this program has no directory".to_owned())
}

fn which(program: &str) -> Result<PathBuf, String> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("`{program}` not found on PATH (Debian package `skopeo`)"))
}

async fn run() -> Result<(), String> {
    let args = parse_args()?;
    let examples = sibling_dir()?;
    for bin in ["list_tags", "scan_repos"] {
        if !examples.join(bin).is_file() {
            return Err(format!(
                "{} missing: build with `cargo build --release -p upkeep-registry --examples`",
                examples.join(bin).display()
            ));
        }
    }
    let skopeo = which(&args.skopeo)?;
    let skopeo_version = tokio::process::Command::new(&skopeo)
        .arg("--version")
        .output()
        .await
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .map_err(|e| format!("running {}: {e}", skopeo.display()))?;

    log("starting docker-registry (upkeep-testenv, plain HTTP)");
    let registry = Arc::new(
        Registry::start(RegistryKind::Plain)
            .await
            .map_err(|e| e.to_string())?,
    );
    let started = Instant::now();
    let mut expected = list_tags_input();
    registry
        .seed_tags(LIST_REPO, &expected)
        .await
        .map_err(|e| e.to_string())?;
    expected.sort();
    log(&format!(
        "seeded {LIST_REPO} with {LIST_TAGS} tags in {:.1} s",
        started.elapsed().as_secs_f64()
    ));

    // --- A: list 10k tags -----------------------------------------------------------------
    let proxy = FaultProxy::for_registry(&registry, Fault::CapPageSize(PAGE));
    let cases = [
        ListCase {
            name: "direct",
            host: registry.host().to_owned(),
            proxy: None,
        },
        ListCase {
            name: "paged",
            host: proxy.host().to_owned(),
            proxy: Some(&proxy),
        },
    ];
    let mut list = Vec::new();
    for case in &cases {
        log(&format!(
            "listing {LIST_TAGS} tags ({}): {} runs each, interleaved",
            case.name, args.runs
        ));
        list.push(list_case(case, &examples, &skopeo, &expected, args.runs).await?);
    }
    drop(proxy);

    // --- B: scan 200 repositories at two sizes ------------------------------------------------
    let relay = Relay::start(registry.host().to_owned()).await?;
    let mut sizes = Vec::new();
    let mut control = None;
    for (from_k, k) in [(0usize, 1usize), (1, 2)] {
        let started = Instant::now();
        let total = seed_scan(&registry, from_k, k).await?;
        log(&format!(
            "seeded {SCAN_REPOS} repositories under {SCAN_PREFIX}/ up to {total} tags in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        sizes.push(scan_size(&examples, &relay, total, args.scan_runs).await?);
        if k == 1 {
            let c = scan_once(&examples, &relay, CONTROL_PER_HOST, total).await?;
            log(&format!(
                "control scan with per-host bound {CONTROL_PER_HOST}: peak {} requests in flight, {} connections ({} opened), {:.1} ms",
                c.peak_requests, c.peak_conns, c.conns_opened, c.ms
            ));
            control = Some(json!({
                "per_host": CONTROL_PER_HOST,
                "peak_requests": c.peak_requests,
                "peak_connections": c.peak_conns,
                "connections_opened": c.conns_opened,
                "ms": c.ms,
            }));
        }
    }
    drop(relay);

    let out = json!({
        "skopeo_version": skopeo_version,
        "registry": "Debian docker-registry (distribution 2.8) via upkeep-testenv",
        "runs": args.runs,
        "list": list,
        "scan": {
            "repos": SCAN_REPOS,
            "concurrency": SCAN_CONCURRENCY,
            "per_host": SCAN_PER_HOST,
            "scan_runs": args.scan_runs,
            "sizes": sizes,
            "control": control,
        },
    });
    println!("{out}");
    Ok(())
}
