//! Writing versions into a Git repository from the cluster: what AppUpgradeAutomation,
//! Flux's ImageUpdateAutomation and ClusterUpgrade's `trigger: GitOps` share. The clone
//! directory ([`GitWorkspace`]), what the cluster says planning needs ([`ClusterLookup`]: the
//! VersionPolicies' and Flux ImagePolicies' selections, the schedules), Git credentials from
//! Secrets, one run of the plan/commit/push loop ([`run_git`]) and the pull request after it.
//!
//! Why it is shaped this way:
//! - The same planning and write loop as `upkeep apply --push --pull-request` (crate
//!   upkeep-git); this module only feeds it from the cluster, so the kinds that write to Git
//!   stay short and do not depend on each other.
//! - Git work is blocking (libgit2), so a run goes to a blocking thread; the clone lives in the
//!   work directory, one per object, and is reused across runs.
//! - Secrets are read on each run and go only to Git and the forge API; errors name the
//!   Secret, never its content.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use upkeep_api::app_upgrade_automation::Provider;
use upkeep_api::{AppUpgradeAutomation, MaintenanceSchedule, VersionPolicy};
use upkeep_core::schedule::Schedule;
use upkeep_git::marked_fields::{self, Lookup, PolicyDecision};
use upkeep_git::{
    Auth, Author, Branches, ChangeRecord, GitError, MessageTemplate, PrRequest, PrTarget, Prepared,
    ProviderKind, Repo, Token, Written, api_base_for, ensure_pull_request, pull_request_body,
    write_and_push,
};

use crate::framework::{Context, Error, SecretProblem, Shared};

/// Attempts per push when the remote keeps moving.
pub const MAX_ATTEMPTS: u32 = 5;

/// The context of the kinds that write to Git: the shared [`Context`] and the directory where
/// their clones live (`<workdir>/<namespace>/<name>`, `<workdir>/flux/…` for Flux objects).
#[derive(Clone)]
pub struct GitWorkspace {
    pub ctx: Arc<Context>,
    pub workdir: PathBuf,
}

impl std::fmt::Debug for GitWorkspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitWorkspace")
            .field("workdir", &self.workdir)
            .finish_non_exhaustive()
    }
}

impl Shared for GitWorkspace {
    fn context(&self) -> &Context {
        &self.ctx
    }
}

/// What the cluster says planning needs.
#[derive(Debug, Default)]
pub struct ClusterLookup {
    pub policies: BTreeMap<(String, String), PolicyDecision>,
    pub schedules: BTreeMap<(String, String), Schedule>,
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

/// The note of a Flux ImagePolicy or VersionPolicy read from a suspended Flux ImagePolicy.
const FLUX_SUSPENDED: &str = "the Flux ImagePolicy is suspended (spec.suspend: true)";

/// The VersionPolicies and MaintenanceSchedules of `namespace`.
pub async fn lookup(client: &kube::Client, namespace: &str) -> Result<ClusterLookup, Error> {
    let policies: Api<VersionPolicy> = Api::namespaced(client.clone(), namespace);
    let schedules: Api<MaintenanceSchedule> = Api::namespaced(client.clone(), namespace);
    let list = |what| move |source| Error::List { what, source };
    let mut out = ClusterLookup::default();
    let listed = policies.list(&ListParams::default()).await;
    for p in listed.map_err(list("VersionPolicies"))? {
        out.policies
            .insert((namespace.to_owned(), p.name_any()), policy_decision(&p));
    }
    let listed = schedules.list(&ListParams::default()).await;
    for s in listed.map_err(list("MaintenanceSchedules"))? {
        if let Ok(schedule) = s.to_core() {
            out.schedules
                .insert((namespace.to_owned(), s.name_any()), schedule);
        }
    }
    Ok(out)
}

/// What a VersionPolicy's status allows.
fn policy_decision(p: &VersionPolicy) -> PolicyDecision {
    // A suspended Flux ImagePolicy, read as a VersionPolicy, is noted in an annotation.
    let suspended_flux = p
        .annotations()
        .get(upkeep_api::flux::NOTES_ANNOTATION)
        .is_some_and(|n| n.split("; ").any(|x| x.starts_with("suspend")));
    PolicyDecision {
        selected: p.status.as_ref().and_then(|s| s.latest_version.clone()),
        held: None,
        pinned: p.spec.pin.is_some(),
        labels: p.labels().clone(),
        suspended: suspended_flux.then(|| FLUX_SUSPENDED.to_owned()),
        image: p.status.as_ref().and_then(|s| s.latest_image.clone()),
        digest: p.status.as_ref().and_then(|s| s.latest_digest.clone()),
        no_image: None,
    }
}

/// An `ApiResource` of a kind upkeep does not compile in (Flux's).
pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// The first of `versions` of `group`/`plural` the API server serves.
pub async fn served(
    client: &kube::Client,
    group: &str,
    versions: &[&str],
    kind: &str,
    plural: &str,
) -> Option<ApiResource> {
    for v in versions {
        let ar = resource(group, v, kind, plural);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        if api.list(&ListParams::default().limit(1)).await.is_ok() {
            return Some(ar);
        }
    }
    None
}

/// Adds the Flux `ImagePolicy` objects of `namespace` (any served version) to `lookup`; an
/// upkeep VersionPolicy of the same name wins.
pub async fn add_image_policies(
    client: &kube::Client,
    namespace: &str,
    lookup: &mut ClusterLookup,
) -> Result<(), Error> {
    let group = upkeep_api::flux::GROUP;
    let versions = ["v1", "v1beta2"];
    let Some(ar) = served(client, group, &versions, "ImagePolicy", "imagepolicies").await else {
        return Ok(());
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    let listed = api.list(&ListParams::default()).await;
    for p in listed.map_err(|source| Error::List {
        what: "ImagePolicies",
        source,
    })? {
        lookup
            .policies
            .entry((namespace.to_owned(), p.name_any()))
            .or_insert_with(|| image_policy_decision(&p));
    }
    Ok(())
}

/// What a Flux ImagePolicy's status selects: `status.latestRef` (`v1`) or
/// `status.latestImage` (`v1beta2`, `name:tag`).
pub fn image_policy_decision(p: &DynamicObject) -> PolicyDecision {
    let status = p.data.get("status");
    let text = |v: Option<&serde_json::Value>| {
        v.and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(ToOwned::to_owned)
    };
    let (image, tag, digest) = if let Some(r) = status.and_then(|s| s.get("latestRef")) {
        (
            text(r.get("name")),
            text(r.get("tag")),
            text(r.get("digest")),
        )
    } else {
        match text(status.and_then(|s| s.get("latestImage"))) {
            Some(latest) => {
                let slash = latest.rfind('/').map_or(0, |i| i + 1);
                match latest[slash..].rfind(':') {
                    Some(c) => (
                        Some(latest[..slash + c].to_owned()),
                        Some(latest[slash + c + 1..].to_owned()),
                        None,
                    ),
                    None => (Some(latest), None, None),
                }
            }
            None => (None, None, None),
        }
    };
    let suspended = p
        .data
        .get("spec")
        .and_then(|s| s.get("suspend"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    PolicyDecision {
        selected: tag,
        held: None,
        pinned: false,
        labels: p.labels().clone(),
        suspended: suspended.then(|| FLUX_SUSPENDED.to_owned()),
        image,
        digest,
        no_image: None,
    }
}

/// The data of Secret `namespace/name`.
pub async fn secret_data(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let fail = |problem| Error::Secret {
        source_ref: None,
        field: "secretRef",
        name: name.to_owned(),
        problem: Box::new(problem),
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|e| fail(SecretProblem::Unreadable(e)))?
        .ok_or_else(|| fail(SecretProblem::NotFound))?;
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
pub fn auth_from(
    data: &BTreeMap<String, Vec<u8>>,
    secret: &str,
    keys: &Path,
) -> Result<Auth, Error> {
    let text = |k: &str| data.get(k).map(|v| String::from_utf8_lossy(v).into_owned());
    let mut auth = if let Some(password) = text("password") {
        Auth::basic(
            text("username").unwrap_or_else(|| "git".to_owned()),
            password,
        )
    } else if let Some(identity) = data.get("identity") {
        let fail = |e: std::io::Error| Error::Secret {
            source_ref: None,
            field: "secretRef",
            name: secret.to_owned(),
            problem: Box::new(SecretProblem::WriteKey(e)),
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

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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

/// `spec.interval`, or ten minutes when it does not parse (validation says why).
pub fn interval_of(spec_interval: &str) -> Duration {
    upkeep_api::duration::parse_duration(spec_interval)
        .ok()
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or(Duration::from_secs(600))
}

/// The `result` label of `upkeep_pushes_total` for one run.
pub fn push_label(result: &Result<GitRun, Error>) -> &'static str {
    match result {
        Ok(r) if r.commit.is_some() => "pushed",
        Ok(_) => "up_to_date",
        Err(_) => "error",
    }
}

/// The result of the blocking Git part of a run.
#[derive(Debug)]
pub struct GitRun {
    pub commit: Option<String>,
    pub note: String,
    pub changes: Vec<ChangeRecord>,
    /// The earliest time a held field's schedule opens.
    pub next_window: Option<Timestamp>,
    pub branch: Option<(upkeep_git::Oid, upkeep_git::Oid)>,
    pub errors: Vec<String>,
    /// Why a Flux commit template was not used (Flux's default message was).
    pub warnings: Vec<String>,
}

/// The branch an automation checks out (`main` unless `spec.git.ref.branch` says).
pub fn checkout_branch(object: &AppUpgradeAutomation) -> String {
    object
        .spec
        .git
        .reference
        .as_ref()
        .and_then(|r| r.branch.clone())
        .unwrap_or_else(|| "main".to_owned())
}

/// The branch an automation pushes to (`spec.push.branch`, else the checkout branch).
pub fn push_branch(object: &AppUpgradeAutomation) -> String {
    object
        .spec
        .push
        .as_ref()
        .and_then(|p| p.branch.clone())
        .unwrap_or_else(|| checkout_branch(object))
}

/// One run of `object`'s Git work. `flux`: the automation was read from a Flux
/// `ImageUpdateAutomation` (Flux's `ImagePolicy` objects count as policies, its Go template is
/// the message, clones live under `flux/`), with the namespace of its `GitRepository` (where
/// the Git Secret is).
pub async fn run_git(
    object: &Arc<AppUpgradeAutomation>,
    w: &GitWorkspace,
    now: Timestamp,
    flux: Option<&str>,
) -> Result<GitRun, Error> {
    let client = w.ctx.client();
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let mut lookup = lookup(&client, &namespace).await?;
    let (dir, keys) = if flux.is_some() {
        add_image_policies(&client, &namespace, &mut lookup).await?;
        let keys = w.workdir.join(".keys").join("flux");
        let dir = w.workdir.join("flux");
        (
            dir.join(&namespace).join(&name),
            keys.join(&namespace).join(&name),
        )
    } else {
        let keys = w.workdir.join(".keys");
        (
            w.workdir.join(&namespace).join(&name),
            keys.join(&namespace).join(&name),
        )
    };
    let auth = match &object.spec.git.secret_ref {
        None => Auth::none(),
        Some(r) => {
            let data = secret_data(&client, flux.unwrap_or(&namespace), &r.name).await?;
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
    tokio::task::spawn_blocking(move || {
        let template = commit_template(&object, flux)?;
        let mut run = git_blocking(&object, &dir, &auth, &lookup, &template, now)?;
        run.warnings = template.take_warnings();
        Ok(run)
    })
    .await
    .map_err(|e| Error::Join {
        source: Box::new(e),
    })?
}

/// The commit message template: Flux's Go template for a Flux automation, upkeep's otherwise.
fn commit_template(object: &AppUpgradeAutomation, flux: bool) -> Result<MessageTemplate, Error> {
    let commit = &object.spec.commit;
    if flux {
        return Ok(MessageTemplate::flux(
            commit.message_template.as_deref(),
            commit.message_template_values.clone(),
        ));
    }
    let source = commit
        .message_template
        .as_deref()
        .unwrap_or(upkeep_git::DEFAULT_MESSAGE_TEMPLATE);
    Ok(MessageTemplate::new(source)
        .map_err(|source| Error::Template { source })?
        .with_values(commit.message_template_values.clone()))
}

fn git_blocking(
    object: &AppUpgradeAutomation,
    dir: &Path,
    auth: &Auth,
    lookup: &ClusterLookup,
    template: &MessageTemplate,
    now: Timestamp,
) -> Result<GitRun, Error> {
    let spec = &object.spec;
    let checkout = checkout_branch(object);
    let push = push_branch(object);
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::WorkDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let git = |source| Error::Git { source };
    let repo = Repo::clone_or_open(&spec.git.url, dir, &checkout, auth).map_err(git)?;
    let automations = std::slice::from_ref(object);
    let scopes = marked_fields::scopes(automations, lookup)
        .map_err(|(message, _)| Error::Scope { message })?;
    let scope = &scopes[0];
    let author = Author {
        name: spec.commit.author.name.clone(),
        email: spec.commit.author.email.clone(),
    };
    let mut last: (Vec<marked_fields::Field>, Vec<ChangeRecord>) = (Vec::new(), Vec::new());
    let branches = Branches {
        checkout: &checkout,
        push: &push,
    };
    let written = write_and_push(
        &repo,
        auth,
        branches,
        &author,
        MAX_ATTEMPTS,
        |repo: &Repo, start| -> Result<Prepared, GitError> {
            let (fields, changes, files) =
                marked_fields::plan_tree(repo, start, scope, &scopes, &[], lookup, now)?;
            let message = commit_message(template, &scope.name(), &changes)?;
            last = (fields, changes);
            Ok(Prepared { files, message })
        },
    )
    .map_err(git)?;
    let refspec_note = push_refspec(object, &repo, &written, auth)?;
    let (fields, changes) = last;
    Ok(summarise(&written, &fields, changes, &push, &refspec_note))
}

/// The commit message of `changes` (none for no change), with upkeep's trailers.
fn commit_message(
    template: &MessageTemplate,
    scope: &str,
    changes: &[ChangeRecord],
) -> Result<String, GitError> {
    if changes.is_empty() {
        return Ok(String::new());
    }
    let rendered = template.render(scope, changes).map_err(|e| GitError::Git {
        what: "rendering the commit message".into(),
        message: e.to_string(),
    })?;
    Ok(upkeep_git::with_trailers(&rendered, changes))
}

/// Pushes a new commit to `spec.push.refspec` too, when set; the note for the status.
fn push_refspec(
    object: &AppUpgradeAutomation,
    repo: &Repo,
    written: &Written,
    auth: &Auth,
) -> Result<String, Error> {
    let (Written::Pushed { commit, .. }, Some(refspec)) = (written, object.push_refspec()) else {
        return Ok(String::new());
    };
    let r = refspec.map_err(|field| Error::Refspec { field })?;
    match repo.push_commit_to_ref(*commit, &r.destination, r.force, auth) {
        Ok(upkeep_git::PushOutcome::Pushed) => Ok(format!("; pushed to {}", r.destination)),
        Ok(upkeep_git::PushOutcome::Rejected { reason }) => Err(Error::RefspecRejected {
            destination: r.destination,
            reason,
        }),
        Err(source) => Err(Error::RefspecPush { source }),
    }
}

/// What a run did, for the status.
fn summarise(
    written: &Written,
    fields: &[marked_fields::Field],
    changes: Vec<ChangeRecord>,
    push: &str,
    refspec_note: &str,
) -> GitRun {
    let errors: Vec<String> = fields
        .iter()
        .filter(|f| f.action == marked_fields::Action::Error)
        .map(|f| format!("{}:{}: {}", f.file, f.line, f.reason))
        .collect();
    let next_window = fields
        .iter()
        .filter_map(|f| f.next_window.as_deref())
        .filter_map(|t| t.parse::<Timestamp>().ok())
        .min();
    let held = fields
        .iter()
        .filter(|f| f.action == marked_fields::Action::Held)
        .count();
    match written {
        Written::Pushed { commit, base, .. } => GitRun {
            commit: Some(commit.to_string()),
            note: format!(
                "pushed {} change(s) to {push} as {}{refspec_note}; {held} held",
                changes.len(),
                &commit.to_string()[..12]
            ),
            changes,
            next_window,
            branch: Some((*base, *commit)),
            errors,
            warnings: Vec::new(),
        },
        Written::UpToDate { base, tip } => GitRun {
            commit: None,
            note: format!("{push} is up to date; {held} held"),
            changes: Vec::new(),
            next_window,
            branch: Some((*base, *tip)),
            errors,
            warnings: Vec::new(),
        },
    }
}

/// Opens or updates the pull request from the push branch (`base..tip` holds upkeep's commits);
/// `None` when the branch has no change of upkeep's.
pub async fn open_pull_request(
    object: &AppUpgradeAutomation,
    w: &GitWorkspace,
    spec: &upkeep_api::app_upgrade_automation::PullRequestSpec,
    (base, tip): (upkeep_git::Oid, upkeep_git::Oid),
    namespace: &str,
) -> Result<Option<upkeep_git::PullRequest>, Error> {
    let token = pull_request_token(object, &w.ctx.client(), spec, namespace).await?;
    let kind = match spec.provider {
        Provider::Github => ProviderKind::Github,
        Provider::Gitlab => ProviderKind::Gitlab,
        Provider::Gitea => ProviderKind::Gitea,
    };
    let (api_base, repository) =
        api_base_for(kind, &object.spec.git.url).map_err(|source| Error::PullRequest {
            source: Box::new(source),
        })?;
    let api_base = match &spec.api_url {
        Some(u) => url::Url::parse(u).map_err(|source| Error::ApiUrl {
            spec: "spec",
            url: u.clone(),
            source,
        })?,
        None => api_base,
    };
    let dir = w.workdir.join(namespace).join(object.name_any());
    let name = format!("{namespace}/{}", object.name_any());
    let target = PrTarget {
        kind,
        api_base,
        repository,
        token: Token::new(token),
        ca_pem: None,
    };
    let request = PrRequest {
        base: checkout_branch(object),
        head: push_branch(object),
        title: spec
            .title
            .clone()
            .unwrap_or_else(|| format!("Upgrades by upkeep ({name})")),
        body: String::new(),
        labels: spec.labels.clone(),
    };
    // A plain thread, not spawn_blocking: the forge client drives its own small runtime,
    // which cannot start on a thread that belongs to this one.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(ensure_branch_pull_request(
            &dir, &name, base, tip, &target, request,
        ));
    });
    rx.await.map_err(|e| Error::Join {
        source: Box::new(e),
    })?
}

/// The forge token: `spec.push.pullRequest.secretRef` key `token`, else `spec.git.secretRef`
/// key `password`.
async fn pull_request_token(
    object: &AppUpgradeAutomation,
    client: &kube::Client,
    spec: &upkeep_api::app_upgrade_automation::PullRequestSpec,
    namespace: &str,
) -> Result<String, Error> {
    let git = object.spec.git.secret_ref.as_ref();
    forge_token(
        client,
        namespace,
        spec,
        git.map(|r| r.name.as_str()),
        "spec",
    )
    .await
}

/// The forge token of a pull request `spec`: its `secretRef` key `token`, else the Git
/// Secret's (`git_secret`) key `password`; `spec_path` names where the Git settings live, for
/// the error when there is neither (AppUpgradeAutomation `spec`, ClusterUpgrade
/// `spec.gitOps`).
pub async fn forge_token(
    client: &kube::Client,
    namespace: &str,
    spec: &upkeep_api::app_upgrade_automation::PullRequestSpec,
    git_secret: Option<&str>,
    spec_path: &'static str,
) -> Result<String, Error> {
    let from_pr = spec.secret_ref.as_ref().map(|r| (r.name.clone(), "token"));
    let from_git = || git_secret.map(|name| (name.to_owned(), "password"));
    let (secret, key) = from_pr
        .or_else(from_git)
        .ok_or(Error::NoToken { spec: spec_path })?;
    let data = secret_data(client, namespace, &secret).await?;
    data.get(key)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .ok_or_else(|| Error::Secret {
            source_ref: None,
            field: "secretRef",
            name: secret.clone(),
            problem: Box::new(SecretProblem::MissingKey {
                key: key.to_owned(),
                type_: String::new(),
            }),
        })
}

/// The blocking part of a pull request: upkeep's changes on the branch, then the forge call.
fn ensure_branch_pull_request(
    dir: &Path,
    name: &str,
    base: upkeep_git::Oid,
    tip: upkeep_git::Oid,
    target: &PrTarget,
    mut request: PrRequest,
) -> Result<Option<upkeep_git::PullRequest>, Error> {
    let git = |source| Error::Git { source };
    let repo = Repo::open(dir).map_err(git)?;
    let changes = marked_fields::branch_changes(&repo, base, tip).map_err(git)?;
    if changes.is_empty() {
        return Ok(None);
    }
    request.body = pull_request_body(name, &changes);
    ensure_pull_request(target, &request)
        .map(Some)
        .map_err(|source| Error::PullRequest {
            source: Box::new(source),
        })
}
