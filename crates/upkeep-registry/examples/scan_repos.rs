//! upkeep's side of the "scan 200 repositories" benchmark, in a process of its own.
//!
//! Peak memory (`VmHWM`) is a property of a whole process, so the scan runs alone here rather
//! than in `bench_registry`, which also starts the registry and seeds it. The resident size is
//! read once the runtime, client and sources exist (`rss_before_kib`) and again as the peak
//! after the scan with every result still held (`hwm_kib`); their difference is what the scan
//! itself cost. Connections are not counted here: the harness counts them from outside, on a
//! TCP relay this process talks to, so the bound is observed rather than self-reported.
//!
//! Usage: `scan_repos HOST PREFIX COUNT CONCURRENCY PER_HOST`. Scans
//! `oci://HOST/PREFIX/repo-000` … `repo-(COUNT-1)` with at most CONCURRENCY sources in flight
//! and at most PER_HOST requests per host (the `Client`'s bound). Prints one JSON object:
//! `{"repos", "tags", "pages", "errors", "first_error", "ms", "rss_before_kib", "hwm_kib"}`.

// A benchmark driver: its output is its purpose.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::Instant;

use upkeep_registry::{Client, ClientConfig, Credentials, Source, SourceOptions, scan_all};

mod support;

fn main() -> ExitCode {
    support::exit(run())
}

fn number(args: &[String], i: usize, what: &str) -> Result<usize, String> {
    let text = args.get(i).ok_or_else(|| format!("missing {what}"))?;
    text.parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("invalid {what} {text:?} (want a number ≥ 1)"))
}

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> Result<u64, String> {
    let text = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("reading /proc/self/status: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/self/status"))
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(host), Some(prefix)) = (args.first(), args.get(1)) else {
        return Err("usage: scan_repos HOST PREFIX COUNT CONCURRENCY PER_HOST".to_owned());
    };
    let count = number(&args, 2, "COUNT")?;
    let concurrency = number(&args, 3, "CONCURRENCY")?;
    let per_host = number(&args, 4, "PER_HOST")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("building the Tokio runtime: {e}"))?;
    runtime.block_on(async {
        let client = Client::new(ClientConfig {
            per_host_concurrency: per_host,
            ..ClientConfig::default()
        });
        let options = SourceOptions {
            insecure: true,
            exclusions: Vec::new(),
            ..SourceOptions::default()
        };
        let sources = (0..count)
            .map(|i| {
                Source::new(
                    &client,
                    &format!("oci://{host}/{prefix}/repo-{i:03}"),
                    None,
                    options.clone(),
                    &Credentials::Anonymous,
                )
                .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rss_before = status_kib("VmRSS")?;
        let started = Instant::now();
        let results = scan_all(&sources, concurrency, |_| {}).await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let hwm = status_kib("VmHWM")?;
        let (mut tags, mut pages, mut errors) = (0usize, 0usize, 0usize);
        let mut first_error = None;
        for r in &results {
            match &r.result {
                Ok(list) => {
                    tags += list.tags.len();
                    pages += list.pages;
                }
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert_with(|| format!("{}: {e}", r.key));
                }
            }
        }
        let out = serde_json::json!({
            "repos": count,
            "tags": tags,
            "pages": pages,
            "errors": errors,
            "first_error": first_error,
            "ms": ms,
            "rss_before_kib": rss_before,
            "hwm_kib": hwm,
        });
        // Keep the results alive until the peak has been read.
        drop(results);
        println!("{out}");
        Ok(())
    })
}
