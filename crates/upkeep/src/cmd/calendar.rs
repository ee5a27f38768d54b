//! `upkeep calendar`: the upgrade calendar as an RFC 5545 feed (or JSON), from a repository or
//! a management cluster, over `[--from, --from + --days)`. The entries come from
//! [`crate::calendar`] (repository) and [`crate::calendar_kube`] (cluster); SEQUENCEs from the
//! store, so a moved event updates in a subscribed calendar instead of being duplicated.

use std::path::PathBuf;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use miette::IntoDiagnostic;
use upkeep_core::calendar::{clock_floor, write_ics};

use crate::Outcome;
use crate::calendar::{JsonEntry, MAX_DAYS, Range, json_entry, write_atomically};
use crate::out::out;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Format {
    /// RFC 5545 iCalendar (a calendar client subscribes to it).
    #[default]
    Ics,
    /// The same entries as JSON (what the dashboard draws).
    Json,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
One event per maintenance window occurrence and per exclusion and freeze of every \
MaintenanceSchedule (windows busy, exclusions and freezes free), per planned cluster upgrade \
(the earliest start the rollout core knows, as `upkeep status --at <from>` shows it, ending \
where the cluster's allowed interval ends), per planned app upgrade (as `upkeep plan` shows \
it; --repo only) and per past cluster upgrade recorded in the store (with its outcome). Times \
carry the TZID of the schedule's zone, with VTIMEZONE blocks from the tz database, or UTC.\n\n\
UIDs are stable across runs; SEQUENCE grows when an event moves and never decreases (the store \
remembers each event; see --store). The controller serves the same feed at /calendar.ics on its \
metrics port (?namespace=NS&selector=LABELS).\n\n\
Exit status: 0 written, 1 the cluster could not be read, 2 invalid input.\n\n\
Examples:\n  upkeep calendar --repo fleet --days 14 --out upkeep.ics\n  \
upkeep calendar --kubeconfig ~/.kube/config -n org-acme --selector stage=prod\n  \
upkeep calendar --repo fleet --from 2027-03-01 --output json")]
pub(crate) struct Args {
    /// The GitOps repository (default .).
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// Read the management cluster instead.
    #[arg(long, value_name = "FILE", conflicts_with = "repo")]
    kubeconfig: Option<PathBuf>,
    /// The namespace (with --kubeconfig; default: all).
    #[arg(long, short = 'n', value_name = "NS", requires = "kubeconfig")]
    namespace: Option<String>,
    /// A label selector for the Clusters and MaintenanceSchedules shown (with --kubeconfig).
    #[arg(long, short = 'l', value_name = "LABELS", requires = "kubeconfig")]
    selector: Option<String>,
    /// The feed's first instant (RFC 3339, or a UTC wall-clock time); default: now.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// How many days the feed covers (1 to 3653).
    #[arg(long, default_value_t = 28, value_name = "N",
          value_parser = clap::value_parser!(i64).range(1..=MAX_DAYS))]
    days: i64,
    /// `ics` (RFC 5545) or `json`.
    #[arg(long, short, value_enum, default_value_t)]
    output: Format,
    /// Write to this file (atomically: a temporary file renamed into place) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The state file: what `upkeep run` recorded (decisions and past upgrades) and the
    /// SEQUENCE of each event written (created when missing).
    #[arg(long, env = "UPKEEP_STORE", value_name = "FILE")]
    store: Option<PathBuf>,
    /// A Docker config.json with registry credentials (for the app fields' versions).
    #[arg(long, value_name = "FILE", conflicts_with = "kubeconfig")]
    docker_config: Option<PathBuf>,
}

pub(crate) fn run(args: &Args) -> miette::Result<Outcome> {
    let from = match crate::timearg::parse(args.from.as_deref().unwrap_or("now"), &TimeZone::UTC) {
        Ok(t) => t,
        Err(e) => {
            crate::render::error_with_hint(
                &format!("--from: {e}"),
                Some("e.g. --from 2027-03-01 or --from 2027-03-01T08:00:00+01:00".into()),
            );
            return Ok(Outcome::Invalid);
        }
    };
    let Some(to) = crate::calendar::range_end(from, args.days) else {
        crate::render::error_with_hint(
            &format!(
                "--from {from} --days {}: the feed would reach outside the years 0001 to 9998",
                args.days
            ),
            Some(
                "iCalendar times have four-digit years: choose an earlier --from or fewer --days"
                    .into(),
            ),
        );
        return Ok(Outcome::Invalid);
    };
    let range = Range { from, to };
    // Decisions read only what `upkeep run` recorded before: a store made now for the
    // SEQUENCEs must not change them.
    let recorded = match crate::store::open_existing_store(args.store.as_deref()) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let (mut feed, name) = if let Some(kubeconfig) = &args.kubeconfig {
        let got = crate::calendar_kube::from_kubeconfig(
            kubeconfig,
            args.namespace.as_deref(),
            args.selector.as_deref(),
            range,
        );
        match got {
            Ok(feed) => (
                feed,
                format!("upkeep: {}", crate::management::client_url(kubeconfig)),
            ),
            Err(e) => {
                crate::render::error_with_hint(&e.message, e.hint);
                return Ok(Outcome::No);
            }
        }
    } else {
        let repo = args.repo.clone().unwrap_or_else(|| PathBuf::from("."));
        match crate::calendar::repo_feed(
            &repo,
            recorded.as_ref(),
            args.docker_config.as_deref(),
            range,
            false,
        )? {
            Ok(feed) => (feed, format!("upkeep: {}", repo.display())),
            Err(o) => return Ok(o),
        }
    };
    feed.sort();
    let store = match recorded {
        Some(s) => s,
        None => match crate::store::open_store(args.store.as_deref()) {
            Ok(s) => s,
            Err(o) => return Ok(o),
        },
    };
    let now = Timestamp::now();
    let keys: Vec<(&str, u64)> = feed
        .entries
        .iter()
        .map(|e| (e.uid.as_str(), e.fingerprint()))
        .collect();
    let sequences = store
        .calendar_sequences(&keys, clock_floor(now))
        .map_err(|e| miette::miette!(help = e.hint().unwrap_or_default(), "{e}"))?;
    for (e, s) in feed.entries.iter_mut().zip(sequences) {
        e.sequence = s;
    }
    let text = match args.output {
        Format::Ics => write_ics(&feed.entries, &name, now, &feed.zones),
        Format::Json => {
            let json: Vec<JsonEntry<'_>> = feed.entries.iter().map(json_entry).collect();
            let mut t = serde_json::to_string_pretty(&json).into_diagnostic()?;
            t.push('\n');
            t
        }
    };
    match &args.out {
        Some(path) => {
            if let Err(e) = write_atomically(path, text.as_bytes()) {
                crate::render::error_with_hint(
                    &format!("writing {}: {e}", path.display()),
                    Some("choose a writable --out, or leave it out to write to stdout".into()),
                );
                return Ok(Outcome::Invalid);
            }
            eprintln!(
                "wrote {} event(s) to {}",
                feed.entries.len(),
                path.display()
            );
        }
        None => out!("{text}"),
    }
    Ok(Outcome::Success)
}
