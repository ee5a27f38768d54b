//! `upkeep run`: the standalone runner. Each pass scans every source, plans and applies, and
//! records the run, its changes and its errors in the store; then it sleeps until the shortest
//! `interval` of the fleet's sources and automations has passed (or stops after one pass with
//! `--once`, for cron and CI). With `--receiver-addr` a registry push notification that
//! matches one of the fleet's ChartSources ends that sleep at once ([`crate::pushes`]).
//!
//! Each pass also carries out every ClusterUpgrade campaign in the repository, with the store
//! as the campaign's status ([`crate::campaigns`]); a campaign's `releaseRef` resolves to its
//! VersionPolicy's decision in this same pass (the scan above).
//!
//! Given a URL, upkeep keeps its own clone (in `--workdir`) and resets it to the remote branch
//! before each pass, so the manifests it reads are the remote's; given a directory, it reads
//! that work tree and pushes when the checkout has an `origin` (commits locally otherwise).

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use upkeep_git::Repo;
use upkeep_store::{Outcome as RunOutcome, Store};

use crate::Outcome;
use crate::app_write::{Settings, apply_fleet, outcome_of, print_results, record};
use crate::fleet::Fleet;
use crate::pushes::{Pushes, Woken};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Each pass: fetch (for a URL), scan every ChartSource, plan every marked field, write what is \
allowed now, push (and open or update pull requests where spec.push.pullRequest says so), record \
the run in the store. Credentials come from the environment as for `upkeep apply`.\n\n\
Between passes upkeep sleeps for --interval; with --receiver-addr and --receiver-secret-file it \
also accepts registry push notifications (CNCF distribution, Harbor, GitHub packages, Azure \
Container Registry, Docker Hub; see docs/receiver.md), and a push to the repository of one of \
the fleet's ChartSources starts the next pass at once (pushes during a pass make one more pass \
right after it). Schedules and minimumReleaseAge still apply.\n\n\
Each pass also carries out every ClusterUpgrade in the repository, as the in-cluster controller \
does, with the store (--store) as the campaign's status: the same rollout decision (stages, \
maxConcurrency, soak, timeout, schedules, freezes, after); a releaseRef resolves to its \
VersionPolicy's latest allowed version in the same pass, or to the Giant Swarm Release manifest \
of that name in the repository (kind: Release; while it cannot, the campaign waits and says \
why); each cluster's Triggered state is recorded \
before the change is made, so a run killed in between makes the change exactly once next time. \
trigger: GitOps commits the clusters' versions (pushed, with pull requests per \
spec.gitOps.push, when the checkout has an origin); trigger: Direct patches the Clusters and \
needs --kubeconfig. With --kubeconfig the clusters are observed on the management cluster \
(Succeeded, Failed, timed out, as the controller decides); without it a triggered cluster is \
not observed and never counts as succeeded (its reason says so). One line per action on \
stderr; `upkeep history --cluster NAME` shows each cluster's upgrades.\n\n\
Exit status (with --once): 0 when the pass succeeded; 4 (partial) when an error held something \
and everything else was written; 1 when nothing could be done because of errors; 2 on invalid \
input.")]
pub(crate) struct Args {
    /// The GitOps repository: a URL (https://, ssh://, file://) or a local checkout.
    #[arg(long, default_value = ".", value_name = "URL|DIR")]
    repo: String,
    /// The branch to clone when --repo is a URL.
    #[arg(long, default_value = "main", value_name = "BRANCH")]
    branch: String,
    /// Where upkeep keeps its clone of a URL (default: $XDG_CACHE_HOME/upkeep/checkouts/…).
    #[arg(long, value_name = "DIR")]
    workdir: Option<PathBuf>,
    /// One pass, then exit.
    #[arg(long)]
    once: bool,
    /// Decide the first pass as if it were this time (RFC 3339, or a UTC wall-clock time).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Time between passes (default: the shortest interval of the fleet's sources and automations).
    #[arg(long, value_name = "DURATION")]
    interval: Option<String>,
    /// A Docker config.json with registry credentials.
    #[arg(long, value_name = "FILE")]
    docker_config: Option<PathBuf>,
    /// Attempts per push when the remote keeps moving.
    #[arg(long, default_value_t = 5, value_name = "N")]
    max_attempts: u32,
    /// Allow plain http:// remotes.
    #[arg(long)]
    allow_insecure_http: bool,
    /// The state file (first-seen times, history, runs).
    #[arg(long, env = "UPKEEP_STORE", value_name = "FILE")]
    store: Option<PathBuf>,
    /// The management cluster: observe the clusters of ClusterUpgrade campaigns there (and
    /// patch them, for trigger: Direct).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// How long to wait for another upkeep working on the same checkout.
    #[arg(long, default_value = "2m", value_name = "DURATION", value_parser = crate::timearg::parse_wait)]
    lock_timeout: std::time::Duration,
    /// Accept registry push notifications on this address (plain HTTP; see docs/receiver.md):
    /// a push to the repository of one of the fleet's ChartSources starts a pass at once
    /// instead of at the next interval. Not with --once.
    #[arg(long, value_name = "ADDR", requires = "receiver_secret_file")]
    receiver_addr: Option<std::net::SocketAddr>,
    /// The shared secret notifications are authenticated with (the HMAC key of senders that
    /// sign, the token of those that do not).
    #[arg(long, value_name = "FILE", requires = "receiver_addr")]
    receiver_secret_file: Option<PathBuf>,
}

fn is_url(repo: &str) -> bool {
    repo.contains("://") || (repo.contains('@') && repo.contains(':') && !Path::new(repo).exists())
}

/// The repository as it may be shown and recorded: a URL's password or `?token=` is never
/// printed nor written to the store.
fn shown_repo(repo: &str) -> String {
    upkeep_core::redact::redact(repo).into_owned()
}

/// The clone's directory, named after the URL without its credentials (a directory name
/// shows up in messages and `ls`).
fn default_workdir(url: &str) -> PathBuf {
    let url = &*upkeep_core::redact::redact(url);
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let name: String = url
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    base.join("upkeep/checkouts").join(name)
}

pub(crate) fn run(args: &Args) -> miette::Result<Outcome> {
    let fixed_interval = match args
        .interval
        .as_deref()
        .map(upkeep_api::duration::parse_duration)
    {
        None => None,
        Some(Ok(d)) if d.is_positive() => Some(d),
        Some(Ok(_)) => {
            crate::render::error_with_hint("--interval must be positive", None);
            return Ok(Outcome::Invalid);
        }
        Some(Err(e)) => {
            crate::render::error_with_hint(&format!("--interval: {e}"), None);
            return Ok(Outcome::Invalid);
        }
    };
    let credentials = match crate::discover::credentials(args.docker_config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            crate::render::error_with_hint(&e.to_string(), e.hint());
            return Ok(Outcome::Invalid);
        }
    };
    let auth = match crate::app_write::git_auth(args.allow_insecure_http) {
        Ok(a) => a,
        Err(message) => {
            crate::render::error_with_hint(&message, None);
            return Ok(Outcome::Invalid);
        }
    };
    let store = match crate::store::open_store(args.store.as_deref()) {
        Ok(s) => s,
        Err(outcome) => return Ok(outcome),
    };
    let mut at = match &args.at {
        None => None,
        Some(s) => match crate::timearg::parse(s, &jiff::tz::TimeZone::UTC) {
            Ok(t) => Some(t),
            Err(e) => {
                crate::render::error_with_hint(&format!("--at: {e}"), None);
                return Ok(Outcome::Invalid);
            }
        },
    };
    let pushes = match start_receiver(args) {
        Ok(p) => p,
        Err(outcome) => return Ok(outcome),
    };
    loop {
        // Pushes received so far are answered by this pass (it scans after them).
        if let Some(p) = &pushes {
            p.drain();
        }
        let started = at.take().unwrap_or_else(Timestamp::now);
        let (outcome, next) = pass(args, &store, &credentials, &auth, started, pushes.as_ref())?;
        if args.once || outcome == Outcome::Invalid {
            return Ok(outcome);
        }
        let wait = fixed_interval
            .or(next)
            .unwrap_or(SignedDuration::from_mins(10));
        let at = started.checked_add(wait).unwrap_or(started);
        eprintln!("next pass at {}", crate::render::utc(at));
        let left = at.duration_since(Timestamp::now());
        let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
        match &pushes {
            Some(p) if p.wait(left) == Woken::Pushed => {
                eprintln!("a registry push matched a ChartSource: next pass now");
            }
            Some(_) => {}
            None => std::thread::sleep(left),
        }
    }
}

/// The receiver of `--receiver-addr`, started before the first pass; an error is printed.
fn start_receiver(args: &Args) -> Result<Option<Pushes>, Outcome> {
    let (Some(addr), Some(secret)) = (args.receiver_addr, &args.receiver_secret_file) else {
        return Ok(None);
    };
    if args.once {
        crate::render::error_with_hint(
            "--receiver-addr needs a running `upkeep run`, not --once",
            Some(
                "drop --once to keep upkeep running and let pushes start passes, or drop --receiver-addr and have the registry's CI call `upkeep run --once`"
                    .to_owned(),
            ),
        );
        return Err(Outcome::Invalid);
    }
    match Pushes::start(addr, secret) {
        Ok(p) => {
            eprintln!("accepting registry push notifications on {}", p.addr);
            Ok(Some(p))
        }
        Err(message) => {
            crate::render::error_with_hint(&message, None);
            Err(Outcome::Invalid)
        }
    }
}

/// One pass; the outcome and the fleet's shortest interval.
fn pass(
    args: &Args,
    store: &Store,
    credentials: &upkeep_registry::Credentials,
    auth: &upkeep_git::Auth,
    now: Timestamp,
    pushes: Option<&Pushes>,
) -> miette::Result<(Outcome, Option<SignedDuration>)> {
    let run = store.begin_run(now).map_err(|e| miette::miette!("{e}"))?;
    let finish = |outcome: RunOutcome, error: Option<&str>| {
        if let Some(e) = error {
            let _ = store.record_run_error(run, Timestamp::now(), e);
        }
        store
            .finish_run(run, Timestamp::now(), outcome, error)
            .map_err(|e| miette::miette!("{e}"))
    };
    let (dir, push) = if is_url(&args.repo) {
        let workdir = args
            .workdir
            .clone()
            .unwrap_or_else(|| default_workdir(&args.repo));
        let checkout = Repo::clone_or_open(&args.repo, &workdir, &args.branch, auth)
            .and_then(|r| r.fetch(auth).map(|()| r))
            .and_then(|r| r.reset_to_remote(&args.branch));
        if let Err(e) = checkout {
            let message = format!("{}: {e}", shown_repo(&args.repo));
            crate::render::error_with_hint(&message, e.hint());
            finish(RunOutcome::Failed, Some(&message))?;
            return Ok((Outcome::No, None));
        }
        (workdir, true)
    } else {
        let dir = PathBuf::from(&args.repo);
        let push = Repo::open(&dir).is_ok_and(|r| r.origin_url().is_some());
        (dir, push)
    };
    let fleet = match Fleet::load_with(&dir, now, credentials, store)? {
        Ok(f) => f,
        Err(outcome) => {
            finish(RunOutcome::Failed, Some("the manifests are invalid"))?;
            return Ok((outcome, None));
        }
    };
    if let Some(p) = pushes {
        p.set_sources(fleet.source_urls.clone());
    }
    let settings = Settings {
        push,
        pull_request: push,
        max_attempts: args.max_attempts,
        auth: auth.clone(),
        lock_timeout: args.lock_timeout,
    };
    let results = match apply_fleet(&dir, &fleet, now, &settings) {
        Ok(r) => r,
        Err(outcome) => {
            finish(
                RunOutcome::Failed,
                Some("nothing was applied (see the error above)"),
            )?;
            return Ok((outcome, fleet.min_interval));
        }
    };
    record(
        store,
        &shown_repo(&args.repo),
        &dir,
        now,
        &results,
        Some(run),
    )?;
    print_results(&results, now);
    let carried = crate::campaigns::carry_out(
        &dir,
        store,
        now,
        &crate::campaigns::Settings {
            kubeconfig: args.kubeconfig.as_deref(),
            push,
            auth,
            max_attempts: args.max_attempts,
            repo_shown: &shown_repo(&args.repo),
        },
        &fleet,
    )?;
    let mut outcome = outcome_of(&results);
    if !carried.errors.is_empty() && outcome == Outcome::Success {
        outcome = Outcome::Partial;
    }
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.scope)))
        .chain(carried.errors.iter().cloned())
        .collect();
    for e in &errors {
        let _ = store.record_run_error(run, Timestamp::now(), e);
    }
    let run_outcome = match (outcome, errors.len()) {
        (Outcome::Success, _) => RunOutcome::Succeeded,
        (_, n) if n == results.len() + carried.errors.len() && n > 0 => RunOutcome::Failed,
        _ => RunOutcome::PartiallyFailed,
    };
    store
        .finish_run(
            run,
            Timestamp::now(),
            run_outcome,
            errors.first().map(String::as_str),
        )
        .map_err(|e| miette::miette!("{e}"))?;
    Ok((outcome, next_pass(fleet.min_interval, &carried, now)))
}

/// When to look again: the fleet's shortest interval, sooner when a campaign's decision
/// changes with time alone, and at least every minute while a cluster upgrade runs.
fn next_pass(
    interval: Option<SignedDuration>,
    carried: &crate::campaigns::Carried,
    now: Timestamp,
) -> Option<SignedDuration> {
    let check = carried
        .next_check
        .map(|t| t.duration_since(now).max(SignedDuration::from_secs(1)));
    let running = carried.running.then_some(SignedDuration::from_mins(1));
    [interval, check, running].into_iter().flatten().min()
}
