//! upkeep's process-level side of the "list 10k tags of one repository" benchmark.
//!
//! `skopeo list-tags` is a separate process each time it runs, so `bench_registry` times this
//! program the same way: spawn, list, print every tag, exit. It does what skopeo does for the
//! same job — one anonymous listing of one repository over plain HTTP, following `Link` pages —
//! and prints the result so the harness can check that both listed the same tags. A
//! current-thread Tokio runtime is enough for one listing and starts no worker threads.
//!
//! Usage: `list_tags oci://HOST[:PORT]/REPO [--count]`. Prints the tags one per line (in the
//! registry's order), or only their number with `--count`. Exclusions are off so the listing
//! is the registry's raw answer, like skopeo's. Exit status 1 on any error.

// A benchmark driver: its output is its purpose.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write as _;
use std::process::ExitCode;

mod support;

fn main() -> ExitCode {
    support::exit(run())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(location) = args.first() else {
        return Err("usage: list_tags oci://HOST[:PORT]/REPO [--count]".to_owned());
    };
    let count_only = match args.get(1).map(String::as_str) {
        None => false,
        Some("--count") => true,
        Some(other) => return Err(format!("unknown argument {other:?}")),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("building the Tokio runtime: {e}"))?;
    let list = runtime.block_on(support::list_like_skopeo(location))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = if count_only {
        writeln!(out, "{}", list.tags.len())
    } else {
        list.names().try_for_each(|t| writeln!(out, "{t}"))
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing to stdout: {e}"))
}
