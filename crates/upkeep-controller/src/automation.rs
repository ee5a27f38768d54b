//! AppUpgradeAutomation: the GitOps writer in the cluster. The same planning and write loop as
//! `upkeep apply --push --pull-request` (crate upkeep-git), fed from the cluster: what each
//! VersionPolicy allows comes from its status (`latestVersion`, written by the policy
//! reconciler), schedules from MaintenanceSchedule objects, credentials from Secrets.
//!
//! Why it is shaped this way:
//! - Git work is blocking (libgit2), so one reconcile runs it on a blocking thread; the clone
//!   lives in the controller's work directory, one per automation, and is reused across runs.
//! - A VersionPolicy change re-runs the automations of its namespace (a watch, no polling);
//!   otherwise an automation runs every `spec.interval`, and sooner when a held field's window
//!   opens.
//! - Secrets (`spec.git.secretRef`: `username`/`password`, or `identity`/`known_hosts` for
//!   SSH, `ca.crt`; `spec.push.pullRequest.secretRef`: `token`) are read on each run and go
//!   only to Git and the forge API; status and Events name the Secret, never its content.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams};
use kube::runtime::PredicateConfig;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Resource, ResourceExt};
use upkeep_api::app_upgrade_automation::{AppUpgradeAutomationStatus, Provider, PullRequestStatus};
use upkeep_api::{AppUpgradeAutomation, MaintenanceSchedule, VersionPolicy};
use upkeep_core::schedule::Schedule;
use upkeep_git::plan::{self, Lookup, PolicyDecision};
use upkeep_git::{
    Auth, Author, Branches, ChangeRecord, GitError, MessageTemplate, PrRequest, PrTarget, Prepared,
    ProviderKind, Repo, Token, Written, api_base_for, ensure_pull_request, pull_request_body,
    write_and_push,
};

use crate::conditions::{Outcome, with_outcome};
use crate::discovery::{not_ready, until, write_status};
use crate::reconcile::Context;

/// Attempts per push when the remote keeps moving.
pub const MAX_ATTEMPTS: u32 = 5;

/// The writer's shared state.
#[derive(Clone)]
pub struct Writer {
    pub ctx: Arc<Context>,
    /// Where clones live (`<dir>/<namespace>/<name>`).
    pub workdir: PathBuf,
    /// The wait after a transient failure.
    pub retry_after: Duration,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("workdir", &self.workdir)
            .finish_non_exhaustive()
    }
}

/// A run that failed for a reason a later run may not have.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Status(Box<crate::discovery::Error>),
    #[error("reading {what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("Secret {name}: {detail}")]
    Secret { name: String, detail: String },
    #[error("{0}")]
    Git(String),
    #[error("pull request: {0}")]
    PullRequest(String),
    #[error("the Git work ended unexpectedly: {0}")]
    Join(String),
}

impl From<crate::discovery::Error> for Error {
    fn from(e: crate::discovery::Error) -> Self {
        Self::Status(Box::new(e))
    }
}

impl Error {
    fn reason(&self) -> &'static str {
        match self {
            Self::Status(_) | Self::Kube { .. } => "ApiError",
            Self::Secret { .. } => "SecretUnavailable",
            Self::Git(_) | Self::Join(_) => "GitError",
            Self::PullRequest(_) => "PullRequestError",
        }
    }
}

fn git_error(e: &GitError) -> String {
    match e.hint() {
        Some(h) => format!("{e} (hint: {h})"),
        None => e.to_string(),
    }
}

/// What the cluster says planning needs.
#[derive(Debug, Default)]
pub(crate) struct ClusterLookup {
    pub(crate) policies: BTreeMap<(String, String), PolicyDecision>,
    pub(crate) schedules: BTreeMap<(String, String), Schedule>,
}

impl Lookup for ClusterLookup {
    fn policy(&self, namespace: &str, name: &str) -> Option<&PolicyDecision> {
        self.policies.get(&(namespace.to_owned(), name.to_owned()))
    }
    fn schedule(&self, namespace: &str, name: &str) -> Option<&Schedule> {
        self.schedules.get(&(namespace.to_owned(), name.to_owned()))
    }
    fn unparsable(&self, _rel: &str) -> bool {
        // Checked per file while planning (see `plan_tree`).
        false
    }
    fn policy_elsewhere(&self, namespace: &str, name: &str) -> Option<String> {
        // Only the automation's namespace is listed today, so this finds nothing until other
        // namespaces' policies are read too.
        let mut found = self
            .policies
            .keys()
            .filter(|(ns, n)| n == name && ns != namespace)
            .map(|(ns, _)| ns.clone());
        let one = found.next()?;
        found.next().is_none().then_some(one)
    }
}

async fn lookup(client: &kube::Client, namespace: &str) -> Result<ClusterLookup, Error> {
    let kube_err = |what: &str| {
        let what = what.to_owned();
        move |source| Error::Kube {
            what,
            source: Box::new(source),
        }
    };
    let policies: Api<VersionPolicy> = Api::namespaced(client.clone(), namespace);
    let schedules: Api<MaintenanceSchedule> = Api::namespaced(client.clone(), namespace);
    let mut out = ClusterLookup::default();
    for p in policies
        .list(&ListParams::default())
        .await
        .map_err(kube_err("VersionPolicies"))?
    {
        // A suspended Flux ImagePolicy, read as a VersionPolicy, is noted in an annotation.
        let suspended_flux = p
            .annotations()
            .get(upkeep_api::flux::NOTES_ANNOTATION)
            .is_some_and(|n| n.split("; ").any(|x| x.starts_with("suspend")));
        out.policies.insert(
            (namespace.to_owned(), p.name_any()),
            PolicyDecision {
                selected: p.status.as_ref().and_then(|s| s.latest_version.clone()),
                held: None,
                pinned: p.spec.pin.is_some(),
                labels: p.labels().clone(),
                suspended: suspended_flux
                    .then(|| "the Flux ImagePolicy is suspended (spec.suspend: true)".to_owned()),
                image: p.status.as_ref().and_then(|s| s.latest_image.clone()),
                digest: p.status.as_ref().and_then(|s| s.latest_digest.clone()),
                no_image: None,
            },
        );
    }
    for s in schedules
        .list(&ListParams::default())
        .await
        .map_err(kube_err("MaintenanceSchedules"))?
    {
        if let Ok(schedule) = s.to_core() {
            out.schedules
                .insert((namespace.to_owned(), s.name_any()), schedule);
        }
    }
    Ok(out)
}

pub(crate) async fn secret_data(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|e| Error::Secret {
            name: name.to_owned(),
            detail: format!("cannot be read: {e}"),
        })?
        .ok_or_else(|| Error::Secret {
            name: name.to_owned(),
            detail: "not found".to_owned(),
        })?;
    Ok(secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect())
}

/// Git access from `spec.git.secretRef`: basic auth (`username`/`password`), an SSH key
/// (`identity`, with `known_hosts`), a CA (`ca.crt`). SSH key material is written to files
/// readable only by this process (ssh reads keys from files), in `keys`.
pub(crate) fn auth_from(
    data: &BTreeMap<String, Vec<u8>>,
    secret: &str,
    keys: &std::path::Path,
) -> Result<Auth, Error> {
    let text = |k: &str| data.get(k).map(|v| String::from_utf8_lossy(v).into_owned());
    let mut auth = if let Some(password) = text("password") {
        Auth::basic(
            text("username").unwrap_or_else(|| "git".to_owned()),
            password,
        )
    } else if let Some(identity) = data.get("identity") {
        let fail = |e: std::io::Error| Error::Secret {
            name: secret.to_owned(),
            detail: format!("writing the SSH key for ssh: {e}"),
        };
        std::fs::create_dir_all(keys).map_err(fail)?;
        let key = keys.join("identity");
        write_private(&key, identity).map_err(fail)?;
        let mut a = Auth::ssh_key(key);
        if let Some(known) = data.get("known_hosts") {
            let path = keys.join("known_hosts");
            write_private(&path, known).map_err(fail)?;
            a = a.with_known_hosts(path);
        }
        a
    } else {
        Auth::none()
    };
    if let Some(ca) = data.get("ca.crt") {
        auth = auth.with_ca_pem(ca.clone());
    }
    Ok(auth)
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// The result of the blocking Git part of a run.
pub(crate) struct GitRun {
    pub(crate) commit: Option<String>,
    pub(crate) note: String,
    pub(crate) changes: Vec<ChangeRecord>,
    /// The earliest time a held field's schedule opens.
    pub(crate) next_window: Option<Timestamp>,
    pub(crate) branch: Option<(upkeep_git::Oid, upkeep_git::Oid)>,
    pub(crate) errors: Vec<String>,
    /// Why a Flux commit template was not used (Flux's default message was).
    pub(crate) warnings: Vec<String>,
}

/// Reconciles one AppUpgradeAutomation.
pub async fn reconcile_automation(
    object: Arc<AppUpgradeAutomation>,
    w: Arc<Writer>,
) -> Result<Action, Error> {
    let client = w.ctx.client.clone();
    let now = (w.ctx.now)();
    let existing = object.status.clone().unwrap_or_default();
    let generation = object.metadata.generation;
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let interval = upkeep_api::duration::parse_duration(&object.spec.interval)
        .ok()
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or(Duration::from_secs(600));

    let stalled = |reason: &str, message: String| AppUpgradeAutomationStatus {
        conditions: with_outcome(
            &existing.conditions,
            &Outcome::Stalled {
                reason: reason.to_owned(),
                message,
            },
            generation,
            now,
        ),
        ..existing.clone()
    };
    if let Err(errors) = object.validate() {
        let status = stalled("InvalidSpec", crate::discovery::spec_message(&errors));
        write_status(client, object.as_ref(), object.status.as_ref(), &status).await?;
        return Ok(Action::await_change());
    }
    let template = match object.spec.commit.message_template.as_deref() {
        None => MessageTemplate::default_template(),
        Some(t) => match MessageTemplate::new(t) {
            Ok(t) => t,
            Err(e) => {
                let status = stalled(
                    "InvalidSpec",
                    format!("spec.commit.messageTemplate: {e} (hint: {})", e.hint()),
                );
                write_status(client, object.as_ref(), object.status.as_ref(), &status).await?;
                return Ok(Action::await_change());
            }
        },
    };
    if let Some(overlap) = overlap_with_others(&client, &object).await? {
        let status = stalled(
            "Overlap",
            format!(
                "{overlap}: nothing of either is written (hint: {})",
                overlap.hint()
            ),
        );
        write_status(client, object.as_ref(), object.status.as_ref(), &status).await?;
        // The other automation may change or go away: look again after the interval.
        return Ok(Action::requeue(interval));
    }
    if object.spec.suspend {
        let status = AppUpgradeAutomationStatus {
            conditions: with_outcome(
                &existing.conditions,
                &Outcome::Ready {
                    reason: "Suspended".into(),
                    message: "spec.suspend is true: nothing is written".into(),
                },
                generation,
                now,
            ),
            ..existing.clone()
        };
        write_status(client, object.as_ref(), object.status.as_ref(), &status).await?;
        return Ok(Action::await_change());
    }

    drop(template);
    let result = run_git(&object, &w, now, None).await;
    crate::metrics::Metrics::global().record_push(match &result {
        Ok(r) if r.commit.is_some() => "pushed",
        Ok(_) => "up_to_date",
        Err(_) => "error",
    });
    let run = match result {
        Ok(run) => run,
        Err(error) => {
            let status = AppUpgradeAutomationStatus {
                conditions: not_ready(
                    &existing.conditions,
                    error.reason(),
                    &error.to_string(),
                    generation,
                    now,
                ),
                ..existing.clone()
            };
            write_status(client, object.as_ref(), object.status.as_ref(), &status).await?;
            return Err(error);
        }
    };
    let mut status = existing.clone();
    status.last_run = Some(Time(now));
    if let Some(c) = &run.commit {
        status.last_push_commit = Some(c.clone());
        for ch in &run.changes {
            status
                .observed_policies
                .insert(ch.policy.clone(), ch.new.clone());
        }
    }
    // Pull request.
    let mut pr_error = None;
    if let (Some((base, tip)), Some(pr)) = (
        run.branch,
        object
            .spec
            .push
            .as_ref()
            .and_then(|p| p.pull_request.as_ref()),
    ) && base != tip
    {
        match open_pull_request(&object, &w, pr, base, tip, &namespace).await {
            Ok(Some(p)) => {
                status.pull_request = Some(PullRequestStatus {
                    url: p.url,
                    number: p.number,
                });
            }
            Ok(None) => {}
            Err(e) => pr_error = Some(e),
        }
    }
    let (outcome, failed) = match (&pr_error, run.errors.first()) {
        (Some(e), _) => (
            Outcome::Stalled {
                reason: "PullRequestError".into(),
                message: e.to_string(),
            },
            true,
        ),
        (None, Some(e)) => (
            Outcome::Ready {
                reason: "FieldErrors".into(),
                message: format!("{}; {e}", run.note),
            },
            false,
        ),
        (None, None) => (
            Outcome::Ready {
                reason: if run.commit.is_some() {
                    "Pushed".into()
                } else {
                    "UpToDate".into()
                },
                message: run.note.clone(),
            },
            false,
        ),
    };
    status.conditions = if failed {
        not_ready(
            &existing.conditions,
            "PullRequestError",
            &pr_error
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            generation,
            now,
        )
    } else {
        with_outcome(&existing.conditions, &outcome, generation, now)
    };
    write_status(client, object.as_ref(), object.status.as_ref(), &status).await?;
    if let Some(e) = pr_error {
        return Err(e);
    }
    let mut wait = interval;
    if let Some(at) = run.next_window {
        wait = wait.min(until(now, at));
    }
    tracing::info!(automation = %format!("{namespace}/{name}"), note = %run.note, "ran");
    Ok(Action::requeue(wait))
}

/// The first other AppUpgradeAutomation (any namespace) that writes the same branch of the
/// same repository and claims some of the same files (see `upkeep_git::plan::Overlap`).
async fn overlap_with_others(
    client: &kube::Client,
    object: &AppUpgradeAutomation,
) -> Result<Option<plan::Overlap>, Error> {
    let all: Api<AppUpgradeAutomation> = Api::all(client.clone());
    let listed = all
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::Kube {
            what: "AppUpgradeAutomations".into(),
            source: Box::new(e),
        })?;
    let branch = |x: &AppUpgradeAutomation| {
        x.spec
            .git
            .reference
            .as_ref()
            .and_then(|r| r.branch.clone())
            .unwrap_or_else(|| "main".to_owned())
    };
    let mut same: Vec<AppUpgradeAutomation> = listed
        .items
        .into_iter()
        .filter(|o| o.spec.git.url == object.spec.git.url && branch(o) == branch(object))
        .collect();
    if same.len() < 2 {
        return Ok(None);
    }
    same.sort_by_key(|o| (o.namespace().unwrap_or_default(), o.name_any()));
    let policies: Api<VersionPolicy> = Api::all(client.clone());
    let labels: Vec<BTreeMap<String, String>> = policies
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::Kube {
            what: "VersionPolicies".into(),
            source: Box::new(e),
        })?
        .items
        .into_iter()
        .map(|p| p.metadata.labels.unwrap_or_default())
        .collect();
    let refs: Vec<&BTreeMap<String, String>> = labels.iter().collect();
    let me = format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    );
    Ok(plan::overlaps(&same, &refs, &|_, _| true)
        .into_iter()
        .find(|o| o.first == me || o.second == me))
}

/// One run of `object`'s Git work. `flux`: the automation was read from a Flux
/// `ImageUpdateAutomation` (Flux's `ImagePolicy` objects count as policies, its Go template is
/// the message, clones live under `flux/`), with the namespace of its `GitRepository` (where
/// the Git Secret is).
pub(crate) async fn run_git(
    object: &Arc<AppUpgradeAutomation>,
    w: &Arc<Writer>,
    now: Timestamp,
    flux: Option<&str>,
) -> Result<GitRun, Error> {
    let client = w.ctx.client.clone();
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let mut lookup = lookup(&client, &namespace).await?;
    let (dir, keys) = if flux.is_some() {
        crate::flux_automation::add_image_policies(&client, &namespace, &mut lookup).await?;
        (
            w.workdir.join("flux").join(&namespace).join(&name),
            w.workdir
                .join(".keys")
                .join("flux")
                .join(&namespace)
                .join(&name),
        )
    } else {
        (
            w.workdir.join(&namespace).join(&name),
            w.workdir.join(".keys").join(&namespace).join(&name),
        )
    };
    let secret_namespace = flux.unwrap_or(&namespace);
    let auth = match &object.spec.git.secret_ref {
        None => Auth::none(),
        Some(r) => {
            let data = secret_data(&client, secret_namespace, &r.name).await?;
            auth_from(&data, &r.name, &keys)?
        }
    };
    let auth = if object.spec.git.url.starts_with("http://") {
        auth.allow_insecure_http()
    } else {
        auth
    };
    let object = Arc::clone(object);
    let flux = flux.is_some();
    let template_source = object
        .spec
        .commit
        .message_template
        .clone()
        .unwrap_or_else(|| upkeep_git::DEFAULT_MESSAGE_TEMPLATE.to_owned());
    tokio::task::spawn_blocking(move || {
        let commit = &object.spec.commit;
        let template = if flux {
            MessageTemplate::flux(
                commit.message_template.as_deref(),
                commit.message_template_values.clone(),
            )
        } else {
            MessageTemplate::new(&template_source)
                .map_err(|e| Error::Git(e.to_string()))?
                .with_values(commit.message_template_values.clone())
        };
        let mut run = git_blocking(&object, &dir, &auth, &lookup, &template, now)?;
        run.warnings = template.take_warnings();
        Ok(run)
    })
    .await
    .map_err(|e| Error::Join(e.to_string()))?
}

fn git_blocking(
    object: &AppUpgradeAutomation,
    dir: &std::path::Path,
    auth: &Auth,
    lookup: &ClusterLookup,
    template: &MessageTemplate,
    now: Timestamp,
) -> Result<GitRun, Error> {
    let spec = &object.spec;
    let checkout = spec
        .git
        .reference
        .as_ref()
        .and_then(|r| r.branch.clone())
        .unwrap_or_else(|| "main".to_owned());
    let push = spec
        .push
        .as_ref()
        .and_then(|p| p.branch.clone())
        .unwrap_or_else(|| checkout.clone());
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::Git(format!("creating {}: {e}", parent.display())))?;
    }
    let repo = Repo::clone_or_open(&spec.git.url, dir, &checkout, auth)
        .map_err(|e| Error::Git(git_error(&e)))?;
    let automations = std::slice::from_ref(object);
    let scopes = plan::scopes(automations, lookup).map_err(|(m, _)| Error::Git(m))?;
    let scope = &scopes[0];
    let author = Author {
        name: spec.commit.author.name.clone(),
        email: spec.commit.author.email.clone(),
    };
    let mut last: (Vec<plan::Field>, Vec<ChangeRecord>) = (Vec::new(), Vec::new());
    let written = write_and_push(
        &repo,
        auth,
        Branches {
            checkout: &checkout,
            push: &push,
        },
        &author,
        MAX_ATTEMPTS,
        |repo: &Repo, start| -> Result<Prepared, GitError> {
            let (fields, changes, files) =
                plan::plan_tree(repo, start, scope, &scopes, &[], lookup, now)?;
            let message = if changes.is_empty() {
                String::new()
            } else {
                let rendered =
                    template
                        .render(&scope.name(), &changes)
                        .map_err(|e| GitError::Git {
                            what: "rendering the commit message".into(),
                            message: e.to_string(),
                        })?;
                upkeep_git::with_trailers(&rendered, &changes)
            };
            last = (fields, changes);
            Ok(Prepared { files, message })
        },
    )
    .map_err(|e| Error::Git(git_error(&e)))?;
    let (fields, changes) = last;
    let errors: Vec<String> = fields
        .iter()
        .filter(|f| f.action == plan::Action::Error)
        .map(|f| format!("{}:{}: {}", f.file, f.line, f.reason))
        .collect();
    let next_window = fields
        .iter()
        .filter_map(|f| f.next_window.as_deref())
        .filter_map(|t| t.parse::<Timestamp>().ok())
        .min();
    let held = fields
        .iter()
        .filter(|f| f.action == plan::Action::Held)
        .count();
    let mut refspec_note = String::new();
    if let Written::Pushed { commit, .. } = &written
        && let Some(refspec) = object.push_refspec()
    {
        let r = refspec.map_err(|e| Error::Git(format!("{}: {}", e.path, e.message)))?;
        match repo.push_commit_to_ref(*commit, &r.destination, r.force, auth) {
            Ok(upkeep_git::PushOutcome::Pushed) => {
                refspec_note = format!("; pushed to {}", r.destination);
            }
            Ok(upkeep_git::PushOutcome::Rejected { reason }) => {
                return Err(Error::Git(format!(
                    "push.refspec: the remote refused {}: {reason}",
                    r.destination
                )));
            }
            Err(e) => return Err(Error::Git(format!("push.refspec: {}", git_error(&e)))),
        }
    }
    Ok(match written {
        Written::Pushed { commit, base, .. } => GitRun {
            commit: Some(commit.to_string()),
            note: format!(
                "pushed {} change(s) to {push} as {}{refspec_note}; {held} held",
                changes.len(),
                &commit.to_string()[..12]
            ),
            changes,
            next_window,
            branch: Some((base, commit)),
            errors,
            warnings: Vec::new(),
        },
        Written::UpToDate { base, tip } => GitRun {
            commit: None,
            note: format!("{push} is up to date; {held} held"),
            changes: Vec::new(),
            next_window,
            branch: Some((base, tip)),
            errors,
            warnings: Vec::new(),
        },
    })
}

async fn open_pull_request(
    object: &Arc<AppUpgradeAutomation>,
    w: &Arc<Writer>,
    spec: &upkeep_api::app_upgrade_automation::PullRequestSpec,
    base: upkeep_git::Oid,
    tip: upkeep_git::Oid,
    namespace: &str,
) -> Result<Option<upkeep_git::PullRequest>, Error> {
    let client = w.ctx.client.clone();
    let token_ref = spec
        .secret_ref
        .as_ref()
        .map(|r| (r.name.clone(), "token"))
        .or_else(|| {
            object
                .spec
                .git
                .secret_ref
                .as_ref()
                .map(|r| (r.name.clone(), "password"))
        })
        .ok_or_else(|| {
            Error::PullRequest(
                "no token: set spec.push.pullRequest.secretRef (key `token`) or spec.git.secretRef (key `password`)"
                    .into(),
            )
        })?;
    let data = secret_data(&client, namespace, &token_ref.0).await?;
    let token = data
        .get(token_ref.1)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .ok_or_else(|| Error::Secret {
            name: token_ref.0.clone(),
            detail: format!("has no key {:?}", token_ref.1),
        })?;
    let kind = match spec.provider {
        Provider::Github => ProviderKind::Github,
        Provider::Gitlab => ProviderKind::Gitlab,
        Provider::Gitea => ProviderKind::Gitea,
    };
    let (api_base, repository) =
        api_base_for(kind, &object.spec.git.url).map_err(|e| Error::PullRequest(e.to_string()))?;
    let api_base = match &spec.api_url {
        Some(u) => url_parse(u)?,
        None => api_base,
    };
    let checkout = object
        .spec
        .git
        .reference
        .as_ref()
        .and_then(|r| r.branch.clone())
        .unwrap_or_else(|| "main".to_owned());
    let head = object
        .spec
        .push
        .as_ref()
        .and_then(|p| p.branch.clone())
        .unwrap_or_else(|| checkout.clone());
    let dir = w.workdir.join(namespace).join(object.name_any());
    let name = format!("{namespace}/{}", object.name_any());
    let title = spec
        .title
        .clone()
        .unwrap_or_else(|| format!("Upgrades by upkeep ({name})"));
    let labels = spec.labels.clone();
    // A plain thread, not spawn_blocking: the forge client drives its own small runtime,
    // which cannot start on a thread that belongs to this one.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let run = || {
            let repo = Repo::open(&dir).map_err(|e| Error::Git(git_error(&e)))?;
            let changes =
                plan::branch_changes(&repo, base, tip).map_err(|e| Error::Git(git_error(&e)))?;
            if changes.is_empty() {
                return Ok(None);
            }
            let target = PrTarget {
                kind,
                api_base,
                repository,
                token: Token::new(token),
                ca_pem: None,
            };
            let request = PrRequest {
                base: checkout,
                head,
                title,
                body: pull_request_body(&name, &changes),
                labels,
            };
            ensure_pull_request(&target, &request)
                .map(Some)
                .map_err(|e| Error::PullRequest(e.to_string()))
        };
        let _ = tx.send(run());
    });
    rx.await.map_err(|e| Error::Join(e.to_string()))?
}

fn url_parse(u: &str) -> Result<url::Url, Error> {
    url::Url::parse(u)
        .map_err(|e| Error::PullRequest(format!("spec.push.pullRequest.apiUrl {u:?}: {e}")))
}

/// Transient errors back off before the automation runs again.
#[allow(clippy::needless_pass_by_value)] // the signature kube's Controller::run expects
pub fn error_policy(_object: Arc<AppUpgradeAutomation>, error: &Error, w: Arc<Writer>) -> Action {
    tracing::warn!(%error, "AppUpgradeAutomation run failed; retrying");
    Action::requeue(w.retry_after)
}

/// Runs the AppUpgradeAutomation controller until `shutdown` resolves. A VersionPolicy or
/// MaintenanceSchedule change re-runs the automations of its namespace.
pub async fn run_automations(
    w: Arc<Writer>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = w.ctx.client.clone();
    let automations: Api<AppUpgradeAutomation> = Api::all(client.clone());
    // Only spec changes (a new generation) start a run by themselves: the status this
    // controller writes (lastRun changes every run) must not start another one.
    let (reader, writer) = reflector::store();
    let stream = watcher(automations, watcher::Config::default())
        .default_backoff()
        .modify(crate::reconcile::lean::<AppUpgradeAutomation>)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, PredicateConfig::default());
    let controller =
        Controller::for_stream(stream, reader).with_config(crate::reconcile::controller_config());
    let store = controller.store();
    let store2 = store.clone();
    let in_namespace = move |store: &kube::runtime::reflector::Store<AppUpgradeAutomation>,
                             ns: Option<String>| {
        store
            .state()
            .into_iter()
            .filter(|a| a.namespace() == ns)
            .map(|a| ObjectRef::from_obj(a.as_ref()))
            .collect::<Vec<_>>()
    };
    controller
        .watches(
            Api::<VersionPolicy>::all(client.clone()),
            watcher::Config::default(),
            move |p: VersionPolicy| in_namespace(&store, p.namespace()),
        )
        .watches(
            Api::<MaintenanceSchedule>::all(client),
            watcher::Config::default(),
            move |s: MaintenanceSchedule| in_namespace(&store2, s.meta().namespace.clone()),
        )
        .graceful_shutdown_on(shutdown)
        .run(
            crate::metrics::instrumented("AppUpgradeAutomation", reconcile_automation),
            error_policy,
            w,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "AppUpgradeAutomation reconcile");
            }
        })
        .await;
}
