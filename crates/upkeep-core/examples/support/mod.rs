//! What the benchmark drivers share: how they read a repeat count and how they end (the
//! error on stderr, exit status 1), so `bench/run` can treat every driver alike.
#![allow(clippy::print_stderr, reason = "a driver's errors go to stderr")]

use std::process::ExitCode;

/// `run`'s outcome as the process's: success, or `error: <msg>` on stderr and status 1.
pub(crate) fn exit(outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// The optional repeat count `arg` (named `what` in the error): a number ≥ 1, or `default`.
pub(crate) fn count(arg: Option<&String>, what: &str, default: usize) -> Result<usize, String> {
    match arg {
        Some(r) => r
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("invalid {what} {r:?}")),
        None => Ok(default),
    }
}
