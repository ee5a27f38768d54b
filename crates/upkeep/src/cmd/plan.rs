//! `upkeep plan`: every marked field in a GitOps repository, what it would become, and why a
//! change is held; then the diff of what `apply` would write; then every ClusterUpgrade,
//! cluster by cluster, as the rollout core plans it at `--at`. Reads only; writes nothing.

use crate::Outcome;
use crate::app_fields::{colour, fields_table, plan_repo, summary};
use crate::fleet::Fleet;
use crate::out::Output;
use crate::out::{out, outln};
use crate::render::local;
use crate::repo_input::RepoInput;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use miette::IntoDiagnostic;
use serde::Serialize;
use std::io::IsTerminal;
use upkeep_git::marked_fields::{Action, Field};

#[derive(Debug, clap::Args)]
#[command(
    mut_arg("repo", |a| a.help("The GitOps repository (a directory)")),
    mut_arg("at", |a| a.help(
        "Plan as if it were this time (RFC 3339, or a UTC wall-clock time); default: now"
    )),
    after_help = "Fields are the scalars marked `# {\"$upkeep\": \"<namespace>:<policy>\"}` (the version) or, as in Flux \
repositories, `# {\"$imagepolicy\": \"<namespace>:<policy>\"}` (the whole image reference <image>:<tag>[@<digest>]) \
or with `:tag`, `:name`, `:digest`, in the YAML and Kustomization files under each \
AppUpgradeAutomation's `path` or Flux ImageUpdateAutomation's `update.path` (without any automation: every \
file, with no schedule). \
A change is written only in its automation's schedule, for its kind (patch/minor/major). A \
`$imagepolicy` marker for a policy not in the repository is `not managed` and left alone. One \
summary line on stderr counts the fields to write, held, up to date, not managed and in error.\n\n\
Exit status: 0 when every field was planned; 4 (partial) when some fields or files could not be used (each is listed with why) and the rest was planned; 1 when none could; 2 on invalid input."
)]
pub(crate) struct Args {
    #[command(flatten)]
    input: RepoInput,
    /// Leave out the diff.
    #[arg(long)]
    no_diff: bool,
    /// `text` for people, `json` for programs.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, Serialize)]
struct Json<'a> {
    at: String,
    fields: &'a [Field],
    diff: String,
    /// Every ClusterUpgrade, planned by the rollout core (as `upkeep status` prints them).
    clusters: Vec<&'a crate::campaign_view::CampaignRow>,
}

pub(crate) fn run(args: &Args) -> miette::Result<Outcome> {
    let now = match args.input.now() {
        Ok(t) => t,
        Err(outcome) => return Ok(outcome),
    };
    let credentials = match args.input.credentials() {
        Ok(c) => c,
        Err(outcome) => return Ok(outcome),
    };
    let fleet = match Fleet::load(&args.input.repo, now, &credentials)? {
        Ok(f) => f,
        Err(outcome) => return Ok(outcome),
    };
    if fleet.automations.is_empty() {
        eprintln!(
            "note: no AppUpgradeAutomation in {}: planning every marker in it, with no schedule",
            args.input.repo.display()
        );
    }

    let (fields, diff) = match plan_repo(&args.input.repo, &fleet, now) {
        Ok(planned) => planned,
        Err(outcome) => return Ok(outcome),
    };

    eprintln!("{}", summary(&fields, "to write"));
    let mut problems = fields.iter().filter(|f| f.action == Action::Error).count();
    let campaigns = if let Some(f) = crate::fleet::ClusterFleet::load_for_plan(&args.input.repo)?
        .map(crate::fleet::ClusterFleet::with_scheduled)
    {
        // A releaseRef names a VersionPolicy of the repository, decided above, or a Giant
        // Swarm Release whose manifest is in the repository.
        let releases = upkeep_api::release::releases_in(&args.input.repo);
        let release = |u: &upkeep_api::ClusterUpgrade| {
            if let Some(r) = crate::campaign_view::repo_release(u, &releases) {
                return Some(r);
            }
            let (ns, _) = upkeep_api::namespaced_name(&u.metadata);
            let r = u.spec.release_ref.as_ref()?;
            let version = fleet
                .policies
                .get(&(ns, r.name.clone()))?
                .allow
                .selected
                .clone()?;
            Some(upkeep_api::release::Resolution::Ready {
                version,
                provider: None,
            })
        };
        let list = crate::campaign_view::campaigns(&f, None, &release, now);
        problems += list
            .iter()
            .filter(|(c, _)| crate::campaign_view::not_planned(c))
            .count();
        list
    } else {
        problems += 1;
        Vec::new()
    };
    match args.output {
        Output::Json => {
            let json = Json {
                at: now.to_string(),
                fields: &fields,
                diff: if args.no_diff { String::new() } else { diff },
                clusters: campaigns.iter().map(|(c, _)| c).collect(),
            };
            outln!("{}", serde_json::to_string_pretty(&json).into_diagnostic()?);
        }
        Output::Text => {
            print_text(&fields, &diff, args, now);
            if !campaigns.is_empty() {
                outln!();
                outln!("Clusters (as `upkeep status` plans them):");
                crate::campaign_view::print_campaigns(&campaigns, now);
            }
        }
    }
    Ok(if problems == 0 {
        Outcome::Success
    } else if problems < fields.len() + campaigns.len() {
        Outcome::Partial
    } else {
        Outcome::No
    })
}

fn print_text(fields: &[Field], diff: &str, args: &Args, now: Timestamp) {
    outln!(
        "Plan at {} for {}",
        local(now, &TimeZone::UTC),
        args.input.repo.display()
    );
    outln!();
    out!("{}", fields_table(fields));
    if !args.no_diff && !diff.is_empty() {
        outln!();
        if std::io::stdout().is_terminal() {
            out!("{}", colour(diff));
        } else {
            out!("{diff}");
        }
    }
}
