//! The `upkeep` binary: the command-line shell around `upkeep-core`.
//!
//! Commands gather a snapshot (files, tag lists, the time), call pure functions in the core and
//! print what they decided. Data goes to stdout (tables, JSON), messages to stderr, so
//! `upkeep versions … --output json | jq` always works. Exit codes are part of the interface:
//! 0 success, 1 "no" (nothing selected, window closed, invalid manifests found), 2 bad usage or
//! unreadable input; `upkeep upgrade cluster --wait` adds 3 (the upgrade failed or timed out)
//! and 130 (interrupted while waiting).
//!
//! No credential is printed: data on stdout (`out`), `error:`/`hint:` lines and error reports
//! (`render`) pass through [`upkeep_core::redact`], over and above the redaction the libraries
//! do in their own errors.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod app_fields;
mod app_write;
mod calendar;
mod calendar_kube;
mod campaign_view;
mod campaigns;
mod cluster_upgrade;
mod cmd;
mod discover;
mod fleet;
mod management;
mod memory;
mod out;
mod pushes;
mod render;
mod repo_clusters;
mod repo_input;
mod schedule_annotations;
mod schedule_file;
mod store;
mod timearg;
mod ui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Keeps Kubernetes clusters and their apps up to date, inside their maintenance windows.
#[derive(Debug, Parser)]
#[command(name = "upkeep", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what upkeep would upgrade in the bundled example fleet, to which version, and when.
    Quickstart(cmd::quickstart::Args),
    /// List the tags of a registry, Helm repository or OCI layout (or a tag list) and select the latest allowed.
    Versions(cmd::versions::Args),
    /// List the allowed intervals of a MaintenanceSchedule, or say whether it is open at a time.
    Windows(cmd::windows::Args),
    /// Check manifests: parse, validate, and report errors with file, line and field.
    Validate(cmd::validate::Args),
    /// List the tags of every ChartSource under a directory and what each policy allows.
    Scan(cmd::scan::Args),
    /// Show every marked version field in a GitOps repository, what it would become and when, and the diff.
    Plan(cmd::plan::Args),
    /// Carry out the plan: write the allowed versions and commit them, or push them (and open pull requests).
    Apply(cmd::apply::Args),
    /// Scan, plan and apply on each source's interval (or once), and carry out ClusterUpgrade campaigns.
    Run(cmd::run::Args),
    /// What upkeep changed, when, and by which commit and pull request (or a cluster's upgrades).
    History(cmd::history::Args),
    /// Upgrade a cluster now, if its maintenance window and freeze allow it (commit or patch).
    #[command(subcommand)]
    Upgrade(cmd::upgrade::Command),
    /// Freeze a cluster: no upgrade starts before a time (annotations, committed or patched).
    #[command(subcommand)]
    Freeze(cmd::freeze::FreezeCommand),
    /// Lift a cluster's freeze.
    #[command(subcommand)]
    Unfreeze(cmd::freeze::UnfreezeCommand),
    /// Where each ClusterUpgrade stands, cluster by cluster: state, reason, next step.
    Status(cmd::status::Args),
    /// The upgrade calendar (RFC 5545 or JSON): windows, exclusions, freezes, planned and past upgrades.
    Calendar(cmd::calendar::Args),
    /// Print the CustomResourceDefinitions of upkeep's kinds (for the in-cluster controller).
    Crds(cmd::crds::Args),
    /// Run inside the management cluster: reconcile upkeep's custom resources.
    Controller(cmd::controller::Args),
    /// Serve a read-only dashboard of the fleet (repository or management cluster) on 127.0.0.1.
    Serve(cmd::serve::Args),
}

/// How a command ended; mapped onto the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 0: done, something selected, window open, manifests valid.
    Success,
    /// 1: a definite "no": nothing selected, window closed, invalid manifests.
    No,
    /// 2: the input could not be used at all.
    Invalid,
    /// 3: an upgrade was made but the cluster reported a failure or did not finish in time
    /// (`upkeep upgrade cluster --wait`).
    Failed,
    /// 130: interrupted (Ctrl-C) while waiting; what was done stays done.
    Interrupted,
    /// 4: `plan`/`apply`/`run`: partly done. Something was held by an error (a file that
    /// cannot be read or edited, an invalid resource, a source that cannot be read, a failed
    /// commit or push of one automation) and everything else was planned or written.
    Partial,
}

fn main() -> ExitCode {
    memory::one_arena();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Quickstart(a) => cmd::quickstart::run(&a),
        Command::Versions(a) => cmd::versions::run(&a),
        Command::Windows(a) => cmd::windows::run(&a),
        Command::Validate(a) => Ok(cmd::validate::run(&a)),
        Command::Scan(a) => cmd::scan::run(&a),
        Command::Plan(a) => cmd::plan::run(&a),
        Command::Apply(a) => cmd::apply::run(&a),
        Command::Run(a) => cmd::run::run(&a),
        Command::History(a) => cmd::history::run(&a),
        Command::Upgrade(c) => cmd::upgrade::run(&c),
        Command::Freeze(c) => cmd::freeze::freeze(&c),
        Command::Unfreeze(c) => cmd::freeze::unfreeze(&c),
        Command::Status(a) => cmd::status::run(&a),
        Command::Calendar(a) => cmd::calendar::run(&a),
        Command::Crds(a) => cmd::crds::run(&a),
        Command::Controller(a) => cmd::controller::run(&a),
        Command::Serve(a) => cmd::serve::run(&a),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::No) => ExitCode::from(1),
        Ok(Outcome::Invalid) => ExitCode::from(2),
        Ok(Outcome::Failed) => ExitCode::from(3),
        Ok(Outcome::Partial) => ExitCode::from(4),
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(report) => {
            eprintln!("{:?}", render::redacted_report(&report));
            ExitCode::from(2)
        }
    }
}
