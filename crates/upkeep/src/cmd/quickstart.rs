//! `upkeep quickstart`: the example fleet, what upkeep would upgrade, to which version, and when.
//!
//! Everything comes from `examples/quickstart`: the manifests under `fleet/` (sources,
//! policies, schedules, automations, Cluster API clusters, marked app manifests), and the chart
//! versions scanned from the OCI image layouts under `charts/` that the ChartSources point at.
//! The fleet is copied into a scratch Git repository (the bundled example is never changed);
//! the allowed app upgrades are committed there exactly as `upkeep apply` commits them, and
//! recorded in a scratch store that `upkeep history` reads; the fleet's upgrade calendar
//! (`upkeep calendar`'s feed) is written next to them as `calendar.ics`, its path said on
//! stderr. No network, no cluster.
//! The decisions are the core's: `Policy::select`, `Schedule::check`/`next_intervals`, and for
//! clusters the rollout core (`upkeep_core::rollout::plan`) over the campaign each
//! ClusterUpgradePolicy would create, the same plan `upkeep status` prints.

use crate::out::{out, outln};
use std::path::{Path, PathBuf};

use jiff::{Timestamp, tz::TimeZone};
use miette::miette;
use upkeep_registry::Credentials;

use crate::Outcome;
use crate::fleet::Fleet;
use crate::render::{Table, local};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Decide as if it were this time (RFC 3339, or a UTC wall-clock time); default: now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// The example directory (default: the bundled examples/quickstart).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Where to create the scratch GitOps repository, store and calendar.ics (must not exist
    /// yet; default: a new directory under the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    scratch: Option<PathBuf>,
    /// Then serve the dashboard of the example fleet (`upkeep serve`'s pages over the scratch
    /// repository and store) until Ctrl-C; the URL is printed.
    #[arg(long)]
    serve: bool,
    /// Where the dashboard listens (with --serve; loopback only).
    #[arg(
        long,
        default_value = "127.0.0.1:8484",
        value_name = "ADDR",
        requires = "serve"
    )]
    addr: std::net::SocketAddr,
}

pub(crate) fn run(args: &Args) -> miette::Result<Outcome> {
    let dir = example_dir(args.dir.as_deref())?;
    let now = match &args.at {
        Some(s) => match crate::timearg::parse(s, &TimeZone::UTC) {
            Ok(t) => t,
            Err(e) => {
                crate::render::error_with_hint(&format!("--at: {e}"), None);
                return Ok(Outcome::Invalid);
            }
        },
        None => Timestamp::now(),
    };
    let scratch = match make_scratch(&dir, args.scratch.as_deref()) {
        Ok(s) => s,
        Err(message) => {
            crate::render::error_with_hint(
                &message,
                Some("pass --scratch with a path that does not exist yet".into()),
            );
            return Ok(Outcome::Invalid);
        }
    };
    let fleet_dir = scratch.join("fleet");
    let store_path = scratch.join("state.redb");
    let store = match crate::store::open_store(Some(&store_path)) {
        Ok(s) => s,
        Err(outcome) => return Ok(outcome),
    };
    let fleet = match Fleet::load_with(&fleet_dir, now, &Credentials::Anonymous, &store)? {
        Ok(f) => f,
        Err(outcome) => return Ok(outcome),
    };
    let policies = &fleet.policies;

    outln!(
        "upkeep quickstart: the example fleet from {}, at {}",
        dir.display(),
        local(now, &TimeZone::UTC)
    );
    outln!(
        "(offline: the charts are scanned from the OCI layouts in charts/; the fleet is a scratch Git repository in {})",
        fleet_dir.display()
    );
    outln!();

    // Versions.
    outln!("Versions: what each policy allows");
    let mut t = Table::new(&[
        "POLICY",
        "RANGE",
        "SELECTED",
        "CONSIDERED",
        "IGNORED",
        "HELD BACK",
    ]);
    for ((ns, name), d) in policies {
        t.row(vec![
            format!("{ns}/{name}"),
            d.range.clone(),
            d.allow.selected.clone().unwrap_or_else(|| "(none)".into()),
            d.considered.to_string(),
            d.ignored.to_string(),
            d.allow
                .held
                .as_ref()
                .map_or_else(String::new, |(tag, until)| {
                    format!("{tag}: too young until {}", local(*until, &TimeZone::UTC))
                }),
        ]);
    }
    out!("{}", t.render("  "));
    outln!();

    // Apps: the same planning as `upkeep plan`.
    outln!("Apps: marked versions in the GitOps repository (as `upkeep plan` sees them)");
    let (fields, _diff) = match crate::app_fields::plan_repo(&fleet_dir, &fleet, now) {
        Ok(planned) => planned,
        Err(outcome) => return Ok(outcome),
    };
    out!("{}", crate::app_fields::fields_table(&fields));
    outln!();

    // Apply: commit what may change now, as `upkeep apply` does.
    outln!(
        "Apply: the allowed upgrades, committed to the scratch repository (as `upkeep apply` does)"
    );
    let settings = crate::app_write::Settings {
        push: false,
        pull_request: false,
        max_attempts: 1,
        auth: upkeep_git::Auth::none(),
        lock_timeout: std::time::Duration::from_secs(10),
    };
    let results = match crate::app_write::apply_fleet(&fleet_dir, &fleet, now, &settings) {
        Ok(r) => r,
        Err(outcome) => return Ok(outcome),
    };
    crate::app_write::record(
        &store,
        &fleet_dir.display().to_string(),
        &fleet_dir,
        now,
        &results,
        None,
    )?;
    let repo = upkeep_git::Repo::open(&fleet_dir).map_err(|e| miette!("{e}"))?;
    let mut committed = 0;
    for r in &results {
        if let Some(c) = &r.commit {
            committed += 1;
            outln!(
                "  commit {} ({}, {})",
                &c[..12.min(c.len())],
                r.scope,
                r.note
            );
            let message = repo.commit_message(c).unwrap_or_default();
            for line in message.lines() {
                outln!("{}", format!("    {line}").trim_end());
            }
        } else if let Some(e) = &r.error {
            outln!("  {}: failed: {e}", r.scope);
        } else {
            outln!("  {}: nothing to write now", r.scope);
        }
    }
    if committed == 0 {
        outln!("  (nothing may change at this time)");
    }
    outln!();
    outln!(
        "History: what upkeep changed (upkeep history --store {})",
        store_path.display()
    );
    let history = store.changes(20).map_err(|e| miette!("{e}"))?;
    if history.is_empty() {
        outln!("  (no changes yet)");
    } else {
        out!("{}", crate::store::table(&history));
    }
    outln!();

    // Clusters.
    for c in crate::campaign_view::policy_campaigns(&fleet, now) {
        outln!(
            "Clusters: ClusterUpgradePolicy {} (release {} → {}, stages {})",
            c.policy,
            c.release_policy,
            c.target.as_deref().unwrap_or("(none)"),
            c.stages.join(" → ")
        );
        out!(
            "{}",
            crate::campaign_view::rows_table(&c.row.clusters, now, &c.tz)
        );
        outln!();
    }
    // The calendar: the feed `upkeep calendar` writes, with the campaigns above.
    let calendar = scratch.join("calendar.ics");
    match write_calendar(&fleet_dir, &store, &calendar, now) {
        Ok(n) => eprintln!(
            "wrote the example fleet's calendar ({n} events, {CALENDAR_DAYS} days from {now:.0}) to {}\nhint: import it into a calendar client (e.g. khal import), or see it on the dashboard's Calendar page with --serve",
            calendar.display()
        ),
        Err(e) => crate::render::error_with_hint(
            &format!("writing the calendar {}: {e}", calendar.display()),
            Some(
                "the rest of the quickstart stands; `upkeep calendar --repo <fleet>` writes it too"
                    .into(),
            ),
        ),
    }
    outln!(
        "Try: upkeep windows {} --name prod-eu",
        fleet_dir.join("upkeep/schedules.yaml").display()
    );
    outln!(
        "     upkeep plan --repo {}   (what would change now, with the diff)",
        fleet_dir.display()
    );
    outln!(
        "     git -C {} log -p -1   (upkeep's commit)",
        fleet_dir.display()
    );
    outln!("     upkeep history --store {}", store_path.display());
    if args.serve {
        // The store is opened again for each page.
        drop(store);
        return serve(args, fleet_dir, store_path, now);
    }
    Ok(Outcome::Success)
}

/// How many days the quickstart's calendar covers (as `upkeep calendar`'s default).
const CALENDAR_DAYS: i64 = 28;

/// Writes the feed of the scratch fleet from `now` (`upkeep calendar --repo <fleet> --store
/// <store>`, with the campaigns the ClusterUpgradePolicies would create) to `path`; the number
/// of events.
fn write_calendar(
    fleet_dir: &Path,
    store: &upkeep_store::Store,
    path: &Path,
    now: Timestamp,
) -> Result<usize, String> {
    let to = crate::calendar::range_end(now, CALENDAR_DAYS)
        .ok_or_else(|| format!("{now} + {CALENDAR_DAYS} days is past the year 9998"))?;
    let range = crate::calendar::Range { from: now, to };
    let mut feed = match crate::calendar::repo_feed(fleet_dir, Some(store), None, range, true) {
        Ok(Ok(feed)) => feed,
        Ok(Err(_)) => return Err("the fleet could not be read (see above)".into()),
        Err(e) => return Err(format!("{e}")),
    };
    feed.sort();
    let keys: Vec<(&str, u64)> = feed
        .entries
        .iter()
        .map(|e| (e.uid.as_str(), e.fingerprint()))
        .collect();
    let sequences = store
        .calendar_sequences(&keys, upkeep_core::calendar::clock_floor(Timestamp::now()))
        .map_err(|e| e.to_string())?;
    for (e, s) in feed.entries.iter_mut().zip(sequences) {
        e.sequence = s;
    }
    let text = upkeep_core::calendar::write_ics(
        &feed.entries,
        &format!("upkeep: {}", fleet_dir.display()),
        Timestamp::now(),
        &feed.zones,
    );
    crate::calendar::write_atomically(path, text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(feed.entries.len())
}

/// `--serve`: the dashboard over the scratch repository and store, deciding at `--at` when it
/// was given (else at the time of each request), with the campaigns the ClusterUpgradePolicies
/// would create (the example fleet has no ClusterUpgrade of its own).
fn serve(
    args: &Args,
    fleet_dir: PathBuf,
    store_path: PathBuf,
    now: Timestamp,
) -> miette::Result<Outcome> {
    if let Err(message) = crate::ui::check_bind(args.addr, false) {
        crate::render::error_with_hint(
            &message,
            Some("use `upkeep serve --allow-remote` for that".into()),
        );
        return Ok(Outcome::Invalid);
    }
    let ui = crate::ui::Ui {
        source: crate::ui::Source::Repo(crate::ui::RepoSource {
            dir: fleet_dir,
            store: Some(store_path),
            docker_config: None,
            policy_campaigns: true,
        }),
        at: args.at.is_some().then_some(now),
        refresh: 0,
        memory: crate::calendar::Memory::default(),
    };
    outln!();
    outln!("The dashboard of the example fleet:");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| miette!("starting the dashboard: {e}"))?;
    runtime.block_on(crate::ui::serve_until_signal(args.addr, ui))
}

/// Copies the example fleet into a new scratch directory as a Git repository with one commit,
/// and links the bundled charts next to it (the ChartSources point at `../../charts/…`).
fn make_scratch(example: &Path, given: Option<&Path>) -> Result<PathBuf, String> {
    let root = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::temp_dir().join(format!(
            "upkeep-quickstart-{}-{}",
            std::process::id(),
            Timestamp::now().as_millisecond()
        )),
    };
    if root.exists() {
        return Err(format!("{} already exists", root.display()));
    }
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{what} {}: {e}", root.display());
    std::fs::create_dir_all(&root).map_err(|e| fail("creating", &e))?;
    copy_tree(&example.join("fleet"), &root.join("fleet"))
        .map_err(|e| fail("copying the fleet into", &e))?;
    let charts = std::fs::canonicalize(example.join("charts"))
        .map_err(|e| fail("finding the charts for", &e))?;
    std::os::unix::fs::symlink(charts, root.join("charts"))
        .map_err(|e| fail("linking the charts into", &e))?;
    let repo = upkeep_git::Repo::init(&root.join("fleet"), "main")
        .map_err(|e| fail("creating a repository in", &e))?;
    repo.commit(
        "quickstart",
        "quickstart@upkeep.invalid",
        "Import the example fleet\n",
    )
    .map_err(|e| fail("committing in", &e))?;
    Ok(root)
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn example_dir(given: Option<&Path>) -> miette::Result<PathBuf> {
    let candidates: Vec<PathBuf> = match given {
        Some(d) => vec![d.to_path_buf()],
        None => vec![
            PathBuf::from("examples/quickstart"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart"),
        ],
    };
    for c in &candidates {
        if c.join("fleet").is_dir() {
            return Ok(c.clone());
        }
    }
    Err(miette!(
        help = "run it from the repository root, or pass --dir path/to/examples/quickstart",
        "the example fleet was not found (looked in {})",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
