//! Carrying out the app plan: write the allowed upgrades into a checkout (one commit per
//! automation) or build each automation's commit on the remote branch and push it, with a pull
//! request when asked; then record every change in the store. Used by `apply`, `run` and
//! quickstart.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use upkeep_api::AppUpgradeAutomation;
use upkeep_api::app_upgrade_automation::{Provider, PullRequestSpec};
use upkeep_api::flux_automation::is_flux;
use upkeep_git::{
    Auth, Author, Branches, ChangeRecord, GitError, MessageTemplate, PrRequest, PrTarget, Prepared,
    ProviderKind, Recovery, Repo, TemplateError, Token, Written, api_base_for, ensure_pull_request,
    failpoint, pull_request_body, with_trailers, write_and_push,
};
use upkeep_store::{NewChange, ObjectRef, Store};

use crate::Outcome;
use crate::app_fields::{WorkFile, collect, fields_table, plan_file, plan_files};
use crate::fleet::Fleet;
use crate::out::{out, outln};
use crate::render::local;
use upkeep_git::marked_fields::{self as gitops, Action, Field, Scope};

/// How one automation's write went, for the summary and the store.
#[derive(Debug)]
pub(crate) struct ScopeResult {
    pub(crate) scope: String,
    pub(crate) fields: Vec<Field>,
    pub(crate) changes: Vec<ChangeRecord>,
    pub(crate) commit: Option<String>,
    pub(crate) note: String,
    pub(crate) pull_request: Option<String>,
    pub(crate) error: Option<String>,
    /// The reference that holds this automation's commits (`HEAD` in a checkout,
    /// `refs/remotes/origin/<branch>` after a push), for rebuilding the history from Git.
    pub(crate) reference: Option<String>,
}

/// Settings that do not come from the manifests.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) push: bool,
    pub(crate) pull_request: bool,
    pub(crate) max_attempts: u32,
    pub(crate) auth: Auth,
    pub(crate) lock_timeout: Duration,
}

/// 0 when everything due was done; 4 (partial) when an error held something and anything else
/// went through; 1 when errors held everything there was.
pub(crate) fn outcome_of(results: &[ScopeResult]) -> Outcome {
    let errors = results
        .iter()
        .map(|r| {
            usize::from(r.error.is_some())
                + r.fields
                    .iter()
                    .filter(|f| f.action == Action::Error)
                    .count()
        })
        .sum::<usize>();
    let fine = results
        .iter()
        .map(|r| {
            usize::from(r.error.is_none() && r.commit.is_some())
                + r.fields
                    .iter()
                    .filter(|f| f.action != Action::Error)
                    .count()
        })
        .sum::<usize>();
    match (errors, fine) {
        (0, _) => Outcome::Success,
        (_, 0) => Outcome::No,
        _ => Outcome::Partial,
    }
}

/// Credentials for remotes, from the environment.
pub(crate) fn git_auth(allow_insecure_http: bool) -> Result<Auth, String> {
    let user = std::env::var("UPKEEP_GIT_USERNAME").ok();
    let password = std::env::var("UPKEEP_GIT_PASSWORD").ok();
    let mut auth = match (user, password) {
        (Some(u), Some(p)) => Auth::basic(u, p),
        (None, Some(p)) => Auth::basic("git", p),
        (Some(_), None) => {
            return Err("UPKEEP_GIT_USERNAME is set but UPKEEP_GIT_PASSWORD is not".into());
        }
        (None, None) => match std::env::var_os("UPKEEP_GIT_SSH_KEY") {
            Some(key) => Auth::ssh_key(PathBuf::from(key)),
            None => Auth::none(),
        },
    };
    if let Some(known_hosts) = std::env::var_os("UPKEEP_GIT_KNOWN_HOSTS") {
        auth = auth.with_known_hosts(PathBuf::from(known_hosts));
    }
    if let Some(ca) = std::env::var_os("UPKEEP_GIT_CA_FILE") {
        let pem = std::fs::read(&ca)
            .map_err(|e| format!("UPKEEP_GIT_CA_FILE {}: {e}", Path::new(&ca).display()))?;
        auth = auth.with_ca_pem(pem);
    }
    if allow_insecure_http {
        auth = auth.allow_insecure_http();
    }
    Ok(auth)
}

/// Writes what the plan allows, scope by scope. `Err(Outcome)` for input problems that were
/// already printed (a policySelector that does not compile, a template that does not render,
/// uncommitted changes in the files to write).
pub(crate) fn apply_fleet(
    repo_dir: &Path,
    fleet: &Fleet,
    now: Timestamp,
    settings: &Settings,
) -> Result<Vec<ScopeResult>, Outcome> {
    let scopes = match gitops::scopes(&fleet.automations, fleet) {
        Ok(s) => s,
        Err((message, hint)) => {
            crate::render::error_with_hint(&message, hint);
            return Err(Outcome::Invalid);
        }
    };
    let mut templates = Vec::with_capacity(scopes.len());
    for scope in &scopes {
        if scope
            .automation
            .is_some_and(|a| a.spec.commit.signing_key.is_some())
        {
            eprintln!(
                "warning: {} {}: {} is not supported yet; its commits are not signed",
                kind_of(scope),
                scope.name(),
                if scope.automation.is_some_and(is_flux) {
                    "spec.git.commit.signingKey"
                } else {
                    "spec.commit.signingKey"
                }
            );
        }
        if let Some(a) = scope.automation.filter(|a| is_flux(a)) {
            // Flux's Go template: never an input error (it falls back to Flux's default
            // message with a warning, printed after the run).
            templates.push(MessageTemplate::flux(
                a.spec.commit.message_template.as_deref(),
                a.spec.commit.message_template_values.clone(),
            ));
            continue;
        }
        let source = scope
            .automation
            .and_then(|a| a.spec.commit.message_template.as_deref());
        let values = scope
            .automation
            .map(|a| a.spec.commit.message_template_values.clone())
            .unwrap_or_default();
        match source.map_or_else(
            || Ok(MessageTemplate::default_template()),
            MessageTemplate::new,
        ) {
            Ok(t) => templates.push(t.with_values(values)),
            Err(e) => {
                crate::render::error_with_hint(
                    &format!(
                        "AppUpgradeAutomation {}: spec.commit.messageTemplate: {e}",
                        scope.name()
                    ),
                    Some(e.hint().into()),
                );
                return Err(Outcome::Invalid);
            }
        }
    }
    let results = if settings.push {
        push_scopes(repo_dir, fleet, now, settings, &scopes, &templates)
    } else {
        commit_in_checkout(
            repo_dir,
            fleet,
            now,
            &scopes,
            &templates,
            settings.lock_timeout,
        )
    };
    for (scope, template) in scopes.iter().zip(&templates) {
        for warning in template.take_warnings() {
            eprintln!("warning: {} {}: {warning}", kind_of(scope), scope.name());
        }
    }
    results
}

/// `ImageUpdateAutomation` for automations read from Flux's, else `AppUpgradeAutomation`.
fn kind_of(scope: &Scope<'_>) -> &'static str {
    if scope.automation.is_some_and(is_flux) {
        "ImageUpdateAutomation"
    } else {
        "AppUpgradeAutomation"
    }
}

fn author_for(scope: &Scope<'_>, repo: Option<&Repo>) -> Author {
    if let Some(a) = scope.automation {
        return Author {
            name: a.spec.commit.author.name.clone(),
            email: a.spec.commit.author.email.clone(),
        };
    }
    repo.and_then(Repo::configured_author)
        .unwrap_or_else(|| Author {
            name: "upkeep".to_owned(),
            email: "upkeep@localhost".to_owned(),
        })
}

fn new_result(scope: &Scope<'_>) -> ScopeResult {
    ScopeResult {
        scope: scope.name(),
        fields: Vec::new(),
        changes: Vec::new(),
        commit: None,
        note: String::new(),
        pull_request: None,
        error: None,
        reference: None,
    }
}

/// Local mode: under the checkout's lock, finish or undo an interrupted commit, then plan each
/// scope on the work tree and commit its files on `HEAD` (compare-and-swap on the branch: a
/// branch someone moved meanwhile makes upkeep read the checkout again, up to 3 times).
fn commit_in_checkout(
    repo_dir: &Path,
    fleet: &Fleet,
    now: Timestamp,
    scopes: &[Scope<'_>],
    templates: &[MessageTemplate],
    lock_timeout: Duration,
) -> Result<Vec<ScopeResult>, Outcome> {
    let held = fleet.invalid_automations();
    let Ok(repo) = Repo::open(repo_dir) else {
        return write_plain_dir(repo_dir, fleet, now, scopes, &held, lock_timeout);
    };
    let _lock = match repo.lock_work_tree(lock_timeout, &mut |holder| {
        eprintln!("waiting for the checkout's lock ({holder})");
    }) {
        Ok(l) => l,
        Err(e) => {
            crate::render::error_with_hint(&e.to_string(), e.hint());
            return Err(Outcome::No);
        }
    };
    match repo.recover() {
        Ok(None) => {}
        Ok(Some(Recovery::Finished { commit, files })) => eprintln!(
            "note: an earlier run was interrupted after committing {commit}; its {files} file(s) are now checked out"
        ),
        Ok(Some(Recovery::RolledBack { commit, files })) => eprintln!(
            "note: an earlier run was interrupted before committing {commit}; its {files} file(s) were put back"
        ),
        Err(e) => {
            crate::render::error_with_hint(
                &format!(
                    "{}: finishing an interrupted commit: {e}",
                    repo_dir.display()
                ),
                e.hint(),
            );
            return Err(Outcome::No);
        }
    }
    let mut results: Vec<ScopeResult> = scopes.iter().map(new_result).collect();
    let mut collected = collect(repo_dir, scopes, &held, Some(&repo), Some(fleet), true);
    failpoint("read");
    for (i, f) in collected.problems.drain(..) {
        results[i].fields.push(f);
    }
    for (i, scope) in scopes.iter().enumerate() {
        results[i].reference = Some("HEAD".to_owned());
        let author = author_for(scope, Some(&repo));
        for attempt in 1..=3 {
            let Some(head) = repo.head_commit() else {
                results[i].error = Some("the repository has no commit yet".into());
                break;
            };
            let mut fields = Vec::new();
            let mut changes = Vec::new();
            let mut writes = Vec::new();
            let files: Vec<&WorkFile> = collected.files.iter().filter(|f| f.scope == i).collect();
            for (file, plan) in files.iter().zip(plan_files(&files, scopes, fleet, now)) {
                fields.extend(plan.fields);
                changes.extend(plan.changes);
                if let Some(new) = plan.new_text {
                    writes.push((file.rel.clone(), new.into_bytes()));
                }
            }
            failpoint("edit");
            if writes.is_empty() {
                results[i].fields.extend(fields);
                break;
            }
            let message = match templates[i].render(&scope.name(), &changes) {
                Ok(m) => with_trailers(&m, &changes),
                Err(e) => {
                    results[i].fields.extend(fields);
                    results[i].error = Some(e.to_string());
                    break;
                }
            };
            match repo.commit_in_work_tree(head, &writes, &author, &message) {
                Ok(committed) => {
                    results[i].fields.extend(fields);
                    if let Some(c) = committed {
                        results[i].changes = changes;
                        results[i].commit = Some(c.to_string());
                        results[i].note = format!(
                            "committed on {}",
                            repo.head_branch().unwrap_or_else(|| "HEAD".into())
                        );
                    } else {
                        results[i].note = "nothing to commit".into();
                    }
                    break;
                }
                Err(GitError::RefMoved { .. } | GitError::FileChanged { .. }) if attempt < 3 => {
                    // Someone committed or edited meanwhile: read the checkout again.
                    collected = collect(repo_dir, scopes, &held, Some(&repo), None, true);
                }
                Err(e) => {
                    results[i].fields.extend(fields);
                    results[i].error = Some(git_error(&e));
                    break;
                }
            }
        }
    }
    Ok(results)
}

/// A directory that is not a Git repository: each file is replaced atomically (mode kept,
/// never through a link leading out), under a lock so two runs do not interleave.
fn write_plain_dir(
    repo_dir: &Path,
    fleet: &Fleet,
    now: Timestamp,
    scopes: &[Scope<'_>],
    held: &[(String, String)],
    lock_timeout: Duration,
) -> Result<Vec<ScopeResult>, Outcome> {
    let lock_path = upkeep_git::lock_path_for_dir(repo_dir);
    let _lock = match upkeep_git::lock_file(&lock_path, lock_timeout, &mut |holder| {
        eprintln!(
            "waiting for another upkeep working on {} ({holder})",
            repo_dir.display()
        );
    }) {
        Ok(l) => l,
        Err(e) => {
            crate::render::error_with_hint(&e.to_string(), e.hint());
            return Err(Outcome::No);
        }
    };
    let mut results: Vec<ScopeResult> = scopes.iter().map(new_result).collect();
    let collected = collect(repo_dir, scopes, held, None, Some(fleet), true);
    failpoint("read");
    for (i, f) in collected.problems {
        results[i].fields.push(f);
    }
    for file in &collected.files {
        let r = &mut results[file.scope];
        let mut plan = plan_file(file, scopes, fleet, now);
        failpoint("edit");
        let Some(new) = plan.new_text.take() else {
            r.fields.extend(plan.fields);
            continue;
        };
        // The file must still hold what was planned on.
        let current = upkeep_api::walk::read_text(&repo_dir.join(&file.rel)).ok();
        let written = if current.as_deref() == Some(file.text.as_str()) {
            upkeep_git::replace_file_in(repo_dir, &file.rel, new.as_bytes())
                .map_err(|e| e.to_string())
        } else {
            Err("it changed on disk while upkeep was planning".to_owned())
        };
        failpoint("write");
        match written {
            Ok(()) => {
                r.fields.extend(plan.fields);
                r.changes.extend(plan.changes);
                r.note = "written (not a Git repository: nothing committed)".into();
            }
            Err(e) => {
                gitops::hold_file(&mut plan, &format!("not written: {e}"));
                r.fields.extend(plan.fields);
            }
        }
    }
    Ok(results)
}

fn git_error(e: &GitError) -> String {
    match e.hint() {
        Some(h) => format!("{e} (hint: {h})"),
        None => e.to_string(),
    }
}

/// An edit that failed for a reason a retry cannot fix.
#[derive(Debug)]
enum WriteFailure {
    Git(GitError),
    Template(TemplateError),
}

impl From<GitError> for WriteFailure {
    fn from(e: GitError) -> Self {
        Self::Git(e)
    }
}

/// Push mode: each scope's commit is built on its checkout branch's remote tip and pushed.
fn push_scopes(
    repo_dir: &Path,
    fleet: &Fleet,
    now: Timestamp,
    settings: &Settings,
    scopes: &[Scope<'_>],
    templates: &[MessageTemplate],
) -> Result<Vec<ScopeResult>, Outcome> {
    let repo = match Repo::open(repo_dir) {
        Ok(r) if r.origin_url().is_some() => r,
        Ok(_) => {
            crate::render::error_with_hint(
                &format!("{}: no `origin` remote to push to", repo_dir.display()),
                Some("add one with `git remote add origin URL`, or run without --push".into()),
            );
            return Err(Outcome::Invalid);
        }
        Err(e) => {
            crate::render::error_with_hint(
                &format!("--push: {}: {e}", repo_dir.display()),
                Some("--push needs a Git checkout with an `origin` remote".into()),
            );
            return Err(Outcome::Invalid);
        }
    };
    // Two upkeeps pushing from one clone would race on its refs; the server's ref update is
    // the compare-and-swap between clones.
    let _lock = match repo.lock_work_tree(settings.lock_timeout, &mut |holder| {
        eprintln!("waiting for the checkout's lock ({holder})");
    }) {
        Ok(l) => l,
        Err(e) => {
            crate::render::error_with_hint(&e.to_string(), e.hint());
            return Err(Outcome::No);
        }
    };
    let held = fleet.invalid_automations();
    let mut results = Vec::with_capacity(scopes.len());
    for (i, scope) in scopes.iter().enumerate() {
        let mut result = new_result(scope);
        let automation = scope.automation;
        let checkout = automation
            .and_then(|a| a.spec.git.reference.as_ref())
            .and_then(|r| r.branch.clone())
            .or_else(|| repo.head_branch());
        let Some(checkout) = checkout else {
            result.error = Some(
                "no branch to start from: set spec.git.ref.branch, or check out a branch".into(),
            );
            results.push(result);
            continue;
        };
        let push = automation
            .and_then(|a| a.spec.push.as_ref())
            .and_then(|p| p.branch.clone())
            .unwrap_or_else(|| checkout.clone());
        let author = author_for(scope, Some(&repo));
        let branches = Branches {
            checkout: &checkout,
            push: &push,
        };
        let mut last = (Vec::new(), Vec::new());
        let written = write_and_push(
            &repo,
            &settings.auth,
            branches,
            &author,
            settings.max_attempts,
            |repo: &Repo, start| -> Result<Prepared, WriteFailure> {
                let (fields, changes, files) =
                    gitops::plan_tree(repo, start, scope, scopes, &held, fleet, now)?;
                failpoint("edit");
                let message = if changes.is_empty() {
                    String::new()
                } else {
                    let m = templates[i]
                        .render(&scope.name(), &changes)
                        .map_err(WriteFailure::Template)?;
                    with_trailers(&m, &changes)
                };
                last = (fields, changes);
                Ok(Prepared { files, message })
            },
        );
        let (fields, changes) = last;
        result.fields = fields;
        result.reference = Some(format!("refs/remotes/origin/{push}"));
        let mut branch = None;
        match written {
            Ok(Written::Pushed {
                commit,
                attempts,
                rebuilt,
                foreign_commits,
                base,
            }) => {
                branch = Some((base, commit));
                result.changes = changes;
                result.commit = Some(commit.to_string());
                let mut note = format!("pushed to origin {push}");
                if attempts > 1 {
                    let _ = write!(note, " after {attempts} attempts");
                }
                if rebuilt {
                    let _ = write!(note, " (rebuilt on {checkout})");
                }
                if foreign_commits {
                    note.push_str(" (the branch has commits by others: added on top, not rebuilt)");
                }
                if let Some(refspec) = automation.and_then(AppUpgradeAutomation::push_refspec) {
                    match push_refspec(&repo, commit, refspec, &settings.auth) {
                        Ok(done) => note.push_str(&done),
                        Err(e) => result.error = Some(e),
                    }
                }
                result.note = note;
            }
            Ok(Written::UpToDate { base, tip }) => {
                branch = Some((base, tip));
                result.note = format!("origin {push} is up to date");
            }
            Err(WriteFailure::Git(e)) => result.error = Some(git_error(&e)),
            Err(WriteFailure::Template(e)) => result.error = Some(e.to_string()),
        }
        let pr_spec = automation
            .and_then(|a| a.spec.push.as_ref())
            .and_then(|p| p.pull_request.as_ref());
        if settings.pull_request
            && let Some((base, tip)) = branch
            && base != tip
            && push != checkout
        {
            match pr_spec {
                Some(spec) => match pull_request(&repo, scope, spec, &checkout, &push, base, tip) {
                    Ok(Some(pr)) => {
                        result.pull_request = Some(format!(
                            "#{} {} ({})",
                            pr.number,
                            pr.url,
                            if pr.created { "opened" } else { "updated" }
                        ));
                    }
                    Ok(None) => {}
                    Err(e) => result.error = Some(e),
                },
                None => {
                    result
                        .note
                        .push_str("; no spec.push.pullRequest, so no pull request");
                }
            }
        }
        results.push(result);
    }
    Ok(results)
}

/// Pushes `commit` as `push.refspec` says (Flux's `spec.git.push.refspec`): the note to add,
/// or why it failed.
fn push_refspec(
    repo: &Repo,
    commit: upkeep_git::Oid,
    refspec: Result<upkeep_api::app_upgrade_automation::PushRefspec, upkeep_api::FieldError>,
    auth: &Auth,
) -> Result<String, String> {
    let r = refspec.map_err(|e| format!("{}: {}", e.path, e.message))?;
    match repo.push_commit_to_ref(commit, &r.destination, r.force, auth) {
        Ok(upkeep_git::PushOutcome::Pushed) => Ok(format!("; pushed to origin {}", r.destination)),
        Ok(upkeep_git::PushOutcome::Rejected { reason }) => Err(format!(
            "push.refspec: origin refused {}: {reason}",
            r.destination
        )),
        Err(e) => Err(format!("push.refspec: {}", git_error(&e))),
    }
}

/// Opens or updates the automation's pull request for everything on `push` that is not on
/// `checkout` (`base..tip`). `Ok(None)` when the branch holds no marked change.
fn pull_request(
    repo: &Repo,
    scope: &Scope<'_>,
    spec: &PullRequestSpec,
    checkout: &str,
    push: &str,
    base: upkeep_git::Oid,
    tip: upkeep_git::Oid,
) -> Result<Option<upkeep_git::PullRequest>, String> {
    let changes = gitops::branch_changes(repo, base, tip).map_err(|e| git_error(&e))?;
    if changes.is_empty() {
        return Ok(None);
    }
    let kind = match spec.provider {
        Provider::Github => ProviderKind::Github,
        Provider::Gitlab => ProviderKind::Gitlab,
        Provider::Gitea => ProviderKind::Gitea,
    };
    let url = repo.origin_url().unwrap_or_default();
    let (api_base, repository) = api_base_for(kind, url).map_err(|e| pr_error(&e))?;
    let api_base = match &spec.api_url {
        Some(u) => {
            url::Url::parse(u).map_err(|e| format!("spec.push.pullRequest.apiUrl {u:?}: {e}"))?
        }
        None => api_base,
    };
    let token = pr_token(kind).ok_or_else(|| {
        format!(
            "no token for the {kind} API: set UPKEEP_PR_TOKEN (or {}_TOKEN)",
            kind.as_str().to_uppercase()
        )
    })?;
    let ca_pem = match std::env::var_os("UPKEEP_GIT_CA_FILE") {
        Some(f) => Some(std::fs::read(&f).map_err(|e| format!("UPKEEP_GIT_CA_FILE: {e}"))?),
        None => None,
    };
    let target = PrTarget {
        kind,
        api_base,
        repository,
        token: Token::new(token),
        ca_pem,
    };
    let request = PrRequest {
        base: checkout.to_owned(),
        head: push.to_owned(),
        title: spec
            .title
            .clone()
            .unwrap_or_else(|| format!("Upgrades by upkeep ({})", scope.name())),
        body: pull_request_body(&scope.name(), &changes),
        labels: spec.labels.clone(),
    };
    ensure_pull_request(&target, &request)
        .map(Some)
        .map_err(|e| pr_error(&e))
}

pub(crate) fn pr_error(e: &upkeep_git::PrError) -> String {
    match e.hint() {
        Some(h) => format!("pull request: {e} (hint: {h})"),
        None => format!("pull request: {e}"),
    }
}

/// The API token: `UPKEEP_PR_TOKEN`, else the provider's usual variable, else the Git password.
pub(crate) fn pr_token(kind: ProviderKind) -> Option<String> {
    let usual = match kind {
        ProviderKind::Github => "GITHUB_TOKEN",
        ProviderKind::Gitlab => "GITLAB_TOKEN",
        ProviderKind::Gitea => "GITEA_TOKEN",
    };
    ["UPKEEP_PR_TOKEN", usual, "UPKEEP_GIT_PASSWORD"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|t| !t.is_empty()))
}

/// Records what was changed in the store. In a Git repository the history is read back from
/// Git itself — upkeep's commits carry one `Upkeep-Change` trailer per change — from where the
/// store last read each branch to its tip, so a commit a killed run made but did not record
/// is recorded now, and nothing is recorded twice. A plain directory's writes are appended.
pub(crate) fn record(
    store: &Store,
    repository: &str,
    dir: &Path,
    at: Timestamp,
    results: &[ScopeResult],
    run: Option<upkeep_store::RunId>,
) -> miette::Result<()> {
    let fail = |e: upkeep_store::StoreError| {
        miette::miette!("recording the changes in {}: {e}", store.path().display())
    };
    let Ok(repo) = Repo::open(dir) else {
        let records: Vec<NewChange> = results
            .iter()
            .filter(|r| r.note.starts_with("written"))
            .flat_map(|r| {
                r.changes
                    .iter()
                    .map(|c| new_change(c, at, repository, None, None, run))
            })
            .collect();
        if !records.is_empty() {
            store.append_changes(&records).map_err(fail)?;
        }
        failpoint("record");
        return Ok(());
    };
    let mut references: Vec<&str> = results
        .iter()
        .filter_map(|r| r.reference.as_deref())
        .collect();
    references.sort_unstable();
    references.dedup();
    for reference in references {
        let Some(tip) = repo.resolve_reference(reference) else {
            continue;
        };
        let known = store
            .indexed_tip(repository, reference)
            .map_err(fail)?
            .and_then(|k| upkeep_git::Oid::from_str(&k).ok());
        let commits = repo
            .upkeep_commits(tip, known)
            .map_err(|e| miette::miette!("reading upkeep's commits from {}: {e}", dir.display()))?;
        for c in commits {
            let id = c.commit.to_string();
            // This run's own commits carry its time, run and pull request; others (made by a
            // run that was killed before recording them) their commit time.
            let own = results
                .iter()
                .find(|r| r.commit.as_deref() == Some(id.as_str()));
            let records: Vec<NewChange> = c
                .changes
                .iter()
                .map(|ch| match own {
                    Some(r) => {
                        new_change(ch, at, repository, Some(&id), r.pull_request.clone(), run)
                    }
                    None => new_change(ch, c.time, repository, Some(&id), None, None),
                })
                .collect();
            store
                .record_commit(repository, &id, &records)
                .map_err(fail)?;
        }
        failpoint("record");
        store
            .set_indexed_tip(repository, reference, &tip.to_string())
            .map_err(fail)?;
    }
    Ok(())
}

fn new_change(
    c: &ChangeRecord,
    at: Timestamp,
    repository: &str,
    commit: Option<&str>,
    pull_request: Option<String>,
    run: Option<upkeep_store::RunId>,
) -> NewChange {
    NewChange {
        at,
        repository: repository.to_owned(),
        file: c.file.clone(),
        object: object_ref(&c.object),
        old: c.old.clone(),
        new: c.new.clone(),
        policy: c.policy.clone(),
        commit: commit.map(str::to_owned),
        pull_request,
        run,
        subject: None,
    }
}

/// `Kind namespace/name` (as [`ChangeRecord::object`] holds it) back into an [`ObjectRef`].
fn object_ref(object: &str) -> ObjectRef {
    match object.split_once(' ') {
        Some((kind, rest)) => {
            let (namespace, name) = match rest.split_once('/') {
                Some((ns, name)) => (Some(ns.to_owned()), name.to_owned()),
                None => (None, rest.to_owned()),
            };
            ObjectRef::Resource {
                kind: kind.to_owned(),
                namespace,
                name,
            }
        }
        None => ObjectRef::Path {
            path: object.to_owned(),
        },
    }
}

pub(crate) fn print_results(results: &[ScopeResult], now: Timestamp) {
    outln!("Applied at {}", local(now, &TimeZone::UTC));
    for r in results {
        outln!();
        let name = if r.scope.is_empty() {
            "(no AppUpgradeAutomation)"
        } else {
            r.scope.as_str()
        };
        let what = match (&r.error, &r.commit) {
            (Some(e), _) => format!("failed: {e}"),
            (None, Some(c)) => format!(
                "{} change(s), commit {} {}",
                r.changes.len(),
                &c[..c.len().min(12)],
                r.note
            ),
            (None, None) if !r.note.is_empty() => r.note.clone(),
            (None, None) => "nothing to write".to_owned(),
        };
        outln!("{name}: {what}");
        if let Some(pr) = &r.pull_request {
            outln!("  pull request: {pr}");
        }
        let shown: Vec<Field> = r
            .fields
            .iter()
            .filter(|f| f.action != Action::UpToDate)
            .map(Field::clone)
            .collect();
        if !shown.is_empty() {
            out!("{}", fields_table(&shown));
        }
    }
    let count = |a: Action| {
        results
            .iter()
            .flat_map(|r| &r.fields)
            .filter(|f| f.action == a)
            .count()
    };
    let written: usize = results
        .iter()
        .filter(|r| r.commit.is_some() || r.note.starts_with("written"))
        .map(|r| r.changes.len())
        .sum();
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    eprintln!(
        "{written} written, {} held, {} up to date, {} not managed, {} in error{}",
        count(Action::Held),
        count(Action::UpToDate),
        count(Action::NotManaged),
        count(Action::Error),
        if failed > 0 {
            format!(", {failed} automation(s) failed")
        } else {
            String::new()
        }
    );
}
