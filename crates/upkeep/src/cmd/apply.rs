//! `upkeep apply`: carry out the plan. Without `--push`, the allowed upgrades are written into
//! the checkout and committed on its current branch (files with uncommitted changes are never
//! touched); with `--push`, each automation's commit is built on the remote branch and pushed
//! (to its upgrade branch when it has one), with a pull request when asked. Every change is
//! recorded in the store for `upkeep history`.

use crate::Outcome;
use crate::app_write::{Settings, apply_fleet, git_auth, outcome_of, print_results, record};
use crate::fleet::Fleet;
use crate::repo_input::RepoInput;
use crate::store::open_store;
use crate::timearg::parse_wait;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Without --push: writes the allowed upgrades into the checkout's files and commits them on its \
current branch, one commit per AppUpgradeAutomation (refusing files with uncommitted changes); \
a directory that is not a Git repository just gets its files written.\n\n\
With --push: fetches `origin`, builds each automation's commit on its checkout branch \
(spec.git.ref.branch, default: the current branch) and pushes it to spec.push.branch (default: \
the checkout branch) without ever forcing the checkout branch; a rejected push is retried on the \
new remote tip. The checkout itself is not changed.\n\n\
Credentials come from the environment: UPKEEP_GIT_USERNAME and UPKEEP_GIT_PASSWORD (a password \
or token) for HTTPS remotes, UPKEEP_GIT_CA_FILE for a private CA; UPKEEP_GIT_SSH_KEY (a private \
key file) and UPKEEP_GIT_KNOWN_HOSTS for SSH remotes (through the system `ssh`); UPKEEP_PR_TOKEN \
(or GITHUB_TOKEN, GITLAB_TOKEN, GITEA_TOKEN) for pull requests.\n\n\
One upkeep at a time works on a checkout: a second one waits for the first (up to \
--lock-timeout). A commit is all or nothing: killed at any point, the next run finishes it (the \
branch had moved) or puts the files back (it had not) before it plans.\n\n\
Exit status: 0 when everything due was written (fields held by a schedule, or `not managed` \
because their $imagepolicy marker names a policy not in the repository, are not errors); 4 \
(partial) when something was held by an error \
— a file that cannot be read or edited, an invalid resource, a source that cannot be read, a \
failed commit or push — and everything else was written; 1 when nothing could be done because \
of errors; 2 on invalid input.")]
pub(crate) struct Args {
    #[command(flatten)]
    input: RepoInput,
    /// Push each automation's commit to the remote instead of committing in the checkout.
    #[arg(long)]
    push: bool,
    /// Open or update each automation's pull request (needs --push and push.pullRequest).
    #[arg(long, requires = "push")]
    pull_request: bool,
    /// Attempts per push when the remote keeps moving.
    #[arg(long, default_value_t = 5, value_name = "N")]
    max_attempts: u32,
    /// Allow plain http:// remotes.
    #[arg(long)]
    allow_insecure_http: bool,
    /// The state file (first-seen times, history).
    #[arg(long, env = "UPKEEP_STORE", value_name = "FILE")]
    store: Option<PathBuf>,
    /// How long to wait for another upkeep working on the same checkout.
    #[arg(long, default_value = "2m", value_name = "DURATION", value_parser = parse_wait)]
    lock_timeout: Duration,
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
    let store = match open_store(args.store.as_deref()) {
        Ok(s) => s,
        Err(outcome) => return Ok(outcome),
    };
    let fleet = match Fleet::load_with(&args.input.repo, now, &credentials, &store)? {
        Ok(f) => f,
        Err(outcome) => return Ok(outcome),
    };
    let auth = match git_auth(args.allow_insecure_http) {
        Ok(a) => a,
        Err(message) => {
            crate::render::error_with_hint(&message, None);
            return Ok(Outcome::Invalid);
        }
    };
    let settings = Settings {
        push: args.push,
        pull_request: args.pull_request,
        max_attempts: args.max_attempts,
        auth,
        lock_timeout: args.lock_timeout,
    };
    let results = match apply_fleet(&args.input.repo, &fleet, now, &settings) {
        Ok(r) => r,
        Err(outcome) => return Ok(outcome),
    };
    record(
        &store,
        &args.input.repo.display().to_string(),
        &args.input.repo,
        now,
        &results,
        None,
    )?;
    print_results(&results, now);
    Ok(outcome_of(&results))
}
