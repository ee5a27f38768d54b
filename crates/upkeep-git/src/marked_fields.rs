//! Marked fields, file by file (the app side of `upkeep plan`; the rollout core's campaign plan
//! is `upkeep_core::rollout::plan`): for `upkeep plan` (the work tree), `apply` and `run`
//! (the work tree, or a commit's tree when pushing), and the in-cluster AppUpgradeAutomation
//! controller.
//!
//! One answer to "may this field change now, and to what": [`plan_text`] takes a file's text
//! and the automation that owns it, and returns every marked field with its action and reason,
//! the new text when anything is written, and the change records the commit message, the pull
//! request and the history are made from. Where the text came from (a file on disk, a blob of
//! the remote branch) is the caller's business, so a retry after a rejected push plans again
//! on what the remote holds now. What the policies allow and when schedules are open comes in
//! through [`Lookup`]: the CLI answers it from a scan of the repository, the controller from
//! VersionPolicy and MaintenanceSchedule objects.
//!
//! Each field shows its value exactly as in the file and the whole scalar its marker writes
//! (Flux's setters: see `upkeep_core::manifest`); up to date is exact equality. The kind of a
//! step comes from the tags (a `:name` or `:digest` field takes its policy's tagged fields'
//! step in the file, or counts as a `change`). The fields of one policy in one file are written
//! together or held together ([`Action::Held`], "held with line N"), so a kustomize `newTag`
//! never moves without its `newDigest`. A Flux `$imagepolicy` marker whose policy the
//! repository does not have is [`Action::NotManaged`]: other automations share repositories,
//! and Flux leaves such markers alone too; upkeep's own `$upkeep` markers stay errors.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use upkeep_api::{AppUpgradeAutomation, Resource, namespaced_name};
use upkeep_core::describe::{closed_reason, local, relative};
use upkeep_core::manifest::{
    Marker, MarkerError, MarkerForm, MarkerSyntax, Part, Update, find_markers, tag_of,
};
use upkeep_core::schedule::{Schedule, Verdict};
use upkeep_core::selector::LabelSelector;
use upkeep_core::version::{UpgradeKind, Version};

use crate::ChangeRecord;

/// What a VersionPolicy allows, as planning needs it.
#[derive(Debug, Clone, Default)]
pub struct PolicyDecision {
    /// The version the policy selects.
    pub selected: Option<String>,
    /// A newer version held back by `minimumReleaseAge`, and until when.
    pub held: Option<(String, Timestamp)>,
    /// The policy pins a version.
    pub pinned: bool,
    /// The VersionPolicy's labels (for an automation's `policySelector`).
    pub labels: BTreeMap<String, String>,
    /// Why no field of this policy may be written (e.g. a suspended Flux `ImagePolicy`).
    pub suspended: Option<String>,
    /// The image name Flux's `ns:name` and `:name` setters write: an `ImageRepository`'s
    /// `spec.image` verbatim, or the OCI repository of a ChartSource's `oci://` URL (`None`
    /// for sources without one: Helm HTTP repositories, OCI layout directories).
    pub image: Option<String>,
    /// The manifest digest of the selected version (`sha256:…`) when the policy reflects
    /// digests (`digestReflectionPolicy` `IfNotPresent`/`Always`) and it is known.
    pub digest: Option<String>,
    /// Why the source has no image name, when `image` is `None` (`ChartSource ns/x is a Helm
    /// repository`): the reason a bare or `:name` marker on this policy is held.
    pub no_image: Option<String>,
}

/// Where planning finds policies, schedules and files to leave alone.
pub trait Lookup {
    /// The decision of VersionPolicy `namespace/name`.
    fn policy(&self, namespace: &str, name: &str) -> Option<&PolicyDecision>;
    /// MaintenanceSchedule `namespace/name`.
    fn schedule(&self, namespace: &str, name: &str) -> Option<&Schedule>;
    /// Whether the file (`/`-separated path from the root) is not valid YAML and must be left
    /// alone.
    fn unparsable(&self, rel: &str) -> bool;
    /// The labels of every VersionPolicy known (to tell whether two automations' policy
    /// selectors can both select one).
    fn policy_labels(&self) -> Vec<&BTreeMap<String, String>> {
        Vec::new()
    }
    /// Why the VersionPolicy `namespace/name` cannot be used, when it exists but is invalid or
    /// its source could not be read.
    fn policy_problem(&self, _namespace: &str, _name: &str) -> Option<String> {
        None
    }
    /// Why the MaintenanceSchedule `namespace/name` cannot be used, when it exists but is
    /// invalid.
    fn schedule_problem(&self, _namespace: &str, _name: &str) -> Option<String> {
        None
    }
    /// The namespace of the one policy named `name` in a namespace other than `namespace`,
    /// when there is exactly one (for the hint of a marker whose policy is not found).
    fn policy_elsewhere(&self, _namespace: &str, _name: &str) -> Option<String> {
        None
    }
}

/// What happens to one marked field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Write,
    Held,
    UpToDate,
    /// A Flux `$imagepolicy` marker naming a policy that is not in the repository: another
    /// automation (or another Flux namespace) manages it, so it is left alone, as Flux does.
    NotManaged,
    Error,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Field {
    pub file: String,
    pub line: usize,
    pub key: Option<String>,
    pub policy: String,
    pub current: String,
    pub target: Option<String>,
    pub kind: Option<&'static str>,
    pub action: Action,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_window: Option<String>,
}

impl Field {
    /// A field (or a whole file, at line 0) that could not be planned.
    pub fn error(file: &str, line: usize, reason: String) -> Self {
        Self {
            file: file.to_owned(),
            line,
            key: None,
            policy: "-".into(),
            current: String::new(),
            target: None,
            kind: None,
            action: Action::Error,
            reason,
            next_window: None,
        }
    }
}

/// An automation with its policy selector compiled and its schedule looked up; `automation`
/// is `None` for a repository without automations (every marker, no schedule).
#[derive(Debug)]
pub struct Scope<'a> {
    pub automation: Option<&'a AppUpgradeAutomation>,
    /// Why none of this automation's fields may be written (it claims files another
    /// automation claims too).
    pub conflict: Option<String>,
    selector: Option<LabelSelector>,
    /// `scheduleRef` name, and the schedule when the repository has it.
    schedule: Option<(String, Option<&'a Schedule>)>,
}

impl Scope<'_> {
    /// `namespace/name` of the automation, or empty.
    pub fn name(&self) -> String {
        self.automation
            .map(|a| {
                let (ns, name) = namespaced_name(&a.metadata);
                format!("{ns}/{name}")
            })
            .unwrap_or_default()
    }

    /// The directory the automation covers, relative to the repository root (`""` = all).
    pub fn path(&self) -> String {
        self.automation.map(automation_path).unwrap_or_default()
    }
}

/// One scope per automation (in file order), or a single automation-less scope. A
/// `policySelector` that does not compile is an error naming the automation.
pub fn scopes<'a>(
    automations: &'a [AppUpgradeAutomation],
    lookup: &'a dyn Lookup,
) -> Result<Vec<Scope<'a>>, (String, Option<String>)> {
    if automations.is_empty() {
        return Ok(vec![Scope {
            automation: None,
            conflict: None,
            selector: None,
            schedule: None,
        }]);
    }
    let labels = lookup.policy_labels();
    let found = overlaps(automations, &labels, &|a, b| {
        let branch =
            |x: &AppUpgradeAutomation| x.spec.git.reference.as_ref().and_then(|r| r.branch.clone());
        branch(a) == branch(b)
    });
    let mut scopes: Vec<Scope<'a>> = automations
        .iter()
        .map(|a| {
            let (ns, name) = namespaced_name(&a.metadata);
            let selector = match a.spec.policy_selector.as_ref() {
                None => None,
                Some(sel) => Some(label_selector(sel).map_err(|e| {
                    (
                        format!("AppUpgradeAutomation {ns}/{name}: spec.policySelector: {e}"),
                        e.hint(),
                    )
                })?),
            };
            let schedule = a
                .spec
                .schedule_ref
                .as_ref()
                .map(|r| (r.name.clone(), lookup.schedule(&ns, &r.name)));
            Ok(Scope {
                automation: Some(a),
                conflict: None,
                selector,
                schedule,
            })
        })
        .collect::<Result<_, _>>()?;
    for o in found {
        for scope in &mut scopes {
            if scope.name() == o.first || scope.name() == o.second {
                scope.conflict.get_or_insert_with(|| o.to_string());
            }
        }
    }
    Ok(scopes)
}

/// Two AppUpgradeAutomations that would both write some files: their paths overlap (one
/// contains the other) and their policy selectors can both select one VersionPolicy. Which
/// one writes such a file must never depend on the order the manifests were read in — that
/// let a broad automation write production files outside production's window — so this is
/// a validation error that holds both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// `namespace/name` of the automation listed first.
    pub first: String,
    pub first_path: String,
    pub second: String,
    pub second_path: String,
    /// Why the selectors overlap.
    pub selectors: String,
}

impl std::fmt::Display for Overlap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |p: &str| {
            if p.is_empty() {
                ".".to_owned()
            } else {
                format!("./{p}")
            }
        };
        write!(
            f,
            "AppUpgradeAutomations {} (path {}) and {} (path {}) both claim the files under {} ({})",
            self.first,
            shown(&self.first_path),
            self.second,
            shown(&self.second_path),
            shown(if self.first_path.len() >= self.second_path.len() {
                &self.first_path
            } else {
                &self.second_path
            }),
            self.selectors
        )
    }
}

impl Overlap {
    pub fn hint(&self) -> &'static str {
        "give the automations disjoint paths, or policySelectors that select different VersionPolicies"
    }
}

/// An automation's `path` as a `/`-separated directory from the root (`""` = all).
pub fn automation_path(a: &AppUpgradeAutomation) -> String {
    let p = a.spec.path.as_deref().unwrap_or("");
    let p = p.trim_start_matches("./").trim_matches('/');
    if p == "." {
        String::new()
    } else {
        p.to_owned()
    }
}

fn path_contains(outer: &str, inner: &str) -> bool {
    outer.is_empty()
        || inner == outer
        || inner
            .strip_prefix(outer)
            .is_some_and(|r| r.starts_with('/'))
}

/// Every pair of `automations` that would write the same files (see [`Overlap`]), among pairs
/// `same_target` says write to the same branch of the same repository. `policy_labels` are
/// the labels of the VersionPolicies that exist.
pub fn overlaps(
    automations: &[AppUpgradeAutomation],
    policy_labels: &[&BTreeMap<String, String>],
    same_target: &dyn Fn(&AppUpgradeAutomation, &AppUpgradeAutomation) -> bool,
) -> Vec<Overlap> {
    let selector = |a: &AppUpgradeAutomation| a.spec.policy_selector.as_ref().map(label_selector);
    let mut out = Vec::new();
    for (i, a) in automations.iter().enumerate() {
        for b in &automations[i + 1..] {
            let (pa, pb) = (automation_path(a), automation_path(b));
            if !(path_contains(&pa, &pb) || path_contains(&pb, &pa)) || !same_target(a, b) {
                continue;
            }
            // Two Flux ImageUpdateAutomations in different namespaces never write the same
            // field: each applies only the policies of its own namespace (as Flux does).
            if upkeep_api::flux_automation::is_flux(a)
                && upkeep_api::flux_automation::is_flux(b)
                && namespaced_name(&a.metadata).0 != namespaced_name(&b.metadata).0
            {
                continue;
            }
            let selectors = match (selector(a), selector(b)) {
                (None, None) => Some("neither has a policySelector".to_owned()),
                // A selector that does not compile is reported on its own.
                (Some(Err(_)), _) | (_, Some(Err(_))) => None,
                (sa, sb) => {
                    let both = policy_labels.iter().filter(|l| {
                        sa.as_ref()
                            .is_none_or(|s| s.as_ref().is_ok_and(|s| s.matches(l)))
                            && sb
                                .as_ref()
                                .is_none_or(|s| s.as_ref().is_ok_and(|s| s.matches(l)))
                    });
                    let n = both.count();
                    (n > 0).then(|| {
                        format!(
                            "both select {n} VersionPolic{}",
                            if n == 1 { "y" } else { "ies" }
                        )
                    })
                }
            };
            if let Some(selectors) = selectors {
                let name = |x: &AppUpgradeAutomation| {
                    let (ns, name) = namespaced_name(&x.metadata);
                    format!("{ns}/{name}")
                };
                out.push(Overlap {
                    first: name(a),
                    first_path: pa,
                    second: name(b),
                    second_path: pb,
                    selectors,
                });
            }
        }
    }
    out
}

/// Whether `rel` (a `/`-separated path from the repository root) is a manifest file upkeep
/// reads: `*.yaml`/`*.yml` or a file named exactly `Kustomization` (the files Flux's image
/// automation reads), not under a hidden directory.
pub fn is_manifest_path(rel: &str) -> bool {
    let hidden = rel
        .split('/')
        .any(|c| c.starts_with('.') && c != "." && c != "..");
    !hidden && upkeep_api::walk::is_manifest_name(rel.rsplit('/').next().unwrap_or(rel))
}

/// What planning one file gave.
#[derive(Debug, Default)]
pub struct FilePlan {
    pub fields: Vec<Field>,
    /// The new text, when any field is written.
    pub new_text: Option<String>,
    pub changes: Vec<ChangeRecord>,
}

/// Whether `scope` is the first of `scopes` whose path covers `rel` (the owner of the file).
pub fn owns(scope: &Scope<'_>, scopes: &[Scope<'_>], rel: &str) -> bool {
    scopes
        .iter()
        .find(|s| path_contains(&s.path(), rel))
        .is_some_and(|s| std::ptr::eq(s, scope))
}

/// Turns every field of `plan` that would be written (or counts as up to date) into an error
/// with `why`, and drops the new text: for files that must not be written (uncommitted
/// changes, under an invalid automation's path).
pub fn hold_file(plan: &mut FilePlan, why: &str) {
    for f in &mut plan.fields {
        if matches!(f.action, Action::Write | Action::UpToDate | Action::Held) {
            f.action = Action::Error;
            f.target = None;
            f.kind = None;
            f.next_window = None;
            why.clone_into(&mut f.reason);
        }
    }
    plan.new_text = None;
    plan.changes.clear();
}

/// What planning the files of a commit's tree gave: every field, the changes and the new
/// contents of the files to write.
pub type TreePlan = (Vec<Field>, Vec<ChangeRecord>, Vec<(String, Vec<u8>)>);

/// Plans the manifest files of commit `start` that `scope` owns among `scopes` (the same
/// planning as the work tree's, for pushes built on a remote branch: `upkeep apply --push`,
/// `upkeep run` and the controller). `held` are `(path, why)` of directories nothing under
/// which may be written. Files that are not UTF-8 or not valid YAML are reported with their
/// markers left alone.
pub fn plan_tree(
    repo: &crate::Repo,
    start: git2::Oid,
    scope: &Scope<'_>,
    scopes: &[Scope<'_>],
    held: &[(String, String)],
    lookup: &dyn Lookup,
    now: Timestamp,
) -> Result<TreePlan, crate::GitError> {
    let mut fields = Vec::new();
    let mut changes = Vec::new();
    let mut files = Vec::new();
    let (tree_files, skipped) = repo.manifest_files(start, &scope.path())?;
    for s in skipped {
        use upkeep_api::walk::SkipReason;
        if !matches!(s.reason, SkipReason::LinkLoop | SkipReason::Dangling { .. }) {
            let why = match s.reason.hint() {
                Some(h) => format!("skipped: {} (hint: {h})", s.reason),
                None => format!("skipped: {}", s.reason),
            };
            fields.push(Field::error(&s.rel, 0, why));
        }
    }
    for f in tree_files {
        if !owns(scope, scopes, &f.path) {
            continue;
        }
        let bytes = repo.read_blob(f.blob)?;
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let raw = e.as_bytes();
                let has = |w: &[u8]| raw.windows(w.len()).any(|x| x == w);
                if has(b"$upkeep") || has(b"$imagepolicy") {
                    let reason = upkeep_api::walk::text_of(e.into_bytes())
                        .map_or_else(|r| r.to_string(), |_| String::new());
                    fields.push(Field::error(
                        &f.path,
                        0,
                        format!("{reason}: its markers are left alone"),
                    ));
                }
                continue;
            }
        };
        if !upkeep_core::manifest::may_have_markers(&text) {
            continue;
        }
        if !upkeep_api::load_str(Path::new(&f.path), &text)
            .unparsable
            .is_empty()
        {
            fields.push(Field::error(
                &f.path,
                0,
                "not valid YAML: its markers are left alone".to_owned(),
            ));
            continue;
        }
        let mut p = plan_text(&f.path, &text, scope, lookup, now);
        if let Some((_, why)) = held.iter().find(|(dir, _)| path_contains(dir, &f.path)) {
            hold_file(&mut p, why);
        }
        fields.extend(p.fields);
        changes.extend(p.changes);
        if let Some(new) = p.new_text {
            files.push((f.path, new.into_bytes()));
        }
    }
    Ok((fields, changes, files))
}

/// Plans every marked field of `text` (the file `rel`) under `scope`.
pub fn plan_text(
    rel: &str,
    text: &str,
    scope: &Scope<'_>,
    lookup: &dyn Lookup,
    now: Timestamp,
) -> FilePlan {
    let mut plan = FilePlan::default();
    if lookup.unparsable(rel) {
        if upkeep_core::manifest::may_have_markers(text) {
            plan.fields.push(Field::error(
                rel,
                0,
                "not valid YAML (see the warning above): its markers are left alone".to_owned(),
            ));
        }
        return plan;
    }
    // One parse of the file serves the checks of every marker and the edit's verification.
    let read = upkeep_core::manifest::read(text);
    let markers = read.markers();
    for e in read.line_errors() {
        let mut f = Field::error(rel, e.line(), with_hint(e));
        if let MarkerError::UnresolvedVariable {
            reference, value, ..
        } = e
            && text
                .lines()
                .nth(e.line().saturating_sub(1))
                .is_some_and(|l| l.contains("\"$imagepolicy\""))
        {
            // Flux's automation matches markers to policies by name; one naming a variable
            // matches none and is left alone there, so it is not an error here either.
            f.action = Action::NotManaged;
            f.policy.clone_from(reference);
            f.current.clone_from(value);
            f.reason = format!(
                "the marker names {reference:?}, an unresolved variable no policy matches: left alone, as Flux leaves it (hint: write the policy's namespace and name literally for upkeep or Flux to update it)"
            );
        }
        plan.fields.push(f);
    }
    for (namespace, policy, syntax, e) in read.refusals() {
        let mut f = Field::error(rel, e.line(), with_hint(e));
        f.policy = format!("{namespace}/{policy}");
        if let Some(why) = not_managed(lookup, namespace, policy, syntax, "") {
            f.action = Action::NotManaged;
            f.reason = why;
        }
        plan.fields.push(f);
    }
    // The kind of each policy's step in this file, for its fields without a tag (`:name`,
    // `:digest`): the strictest of its tagged fields' steps.
    let mut group_kind: BTreeMap<(&str, &str), (&'static str, UpgradeKind)> = BTreeMap::new();
    for m in markers {
        let selected = lookup
            .policy(&m.namespace, &m.policy)
            .and_then(|d| d.selected.as_deref());
        if let (Some(tag), Some(selected)) = (m.tag(), selected)
            && tag != selected
        {
            let step = step_kind(tag, selected);
            group_kind
                .entry((&m.namespace, &m.policy))
                .and_modify(|k| {
                    if strictness(step.0) > strictness(k.0) {
                        *k = step;
                    }
                })
                .or_insert(step);
        }
    }
    for m in markers {
        let kind = group_kind.get(&(m.namespace.as_str(), m.policy.as_str()));
        plan.fields
            .push(plan_field(lookup, rel, m, scope, now, kind.copied()));
    }
    plan.fields.sort_by_key(|f| f.line);
    hold_together(&mut plan.fields);
    // The decision of every policy with a field to write.
    let mut writes: BTreeMap<(&str, &str), (&str, &PolicyDecision)> = BTreeMap::new();
    for m in markers {
        let written = plan
            .fields
            .iter()
            .any(|f| f.line == m.line && f.action == Action::Write);
        if let (true, Some(d)) = (written, lookup.policy(&m.namespace, &m.policy))
            && let Some(selected) = &d.selected
        {
            writes.insert((&m.namespace, &m.policy), (selected, d));
        }
    }
    if writes.is_empty() {
        return plan;
    }
    let updates: Vec<Update<'_>> = writes
        .iter()
        .map(|(&(namespace, policy), &(version, d))| Update {
            namespace,
            policy,
            version,
            image: d.image.as_deref(),
            digest: d.digest.as_deref(),
        })
        .collect();
    let edited = read.apply(&updates);
    if let Ok(edited) = &edited {
        // A field the writer refused (its value does not fit the quote style, or the edit did
        // not verify) is an error on its line, and the other fields of its policy are held
        // with it; the file's other fields are still written.
        for e in &edited.refused {
            for f in plan
                .fields
                .iter_mut()
                .filter(|f| f.action == Action::Write && f.line == e.line())
            {
                f.action = if matches!(e, MarkerError::HeldTogether { .. }) {
                    Action::Held
                } else {
                    Action::Error
                };
                f.reason = with_hint(e);
            }
        }
    }
    match edited {
        Ok(edited) if edited.is_changed() => {
            let objects = object_names(rel, text);
            plan.changes = edited
                .changes
                .iter()
                .map(|c| ChangeRecord {
                    file: rel.to_owned(),
                    line: c.line,
                    object: objects
                        .get(&c.document)
                        .cloned()
                        .or_else(|| c.key.clone())
                        .unwrap_or_else(|| rel.to_owned()),
                    old: c.old.clone(),
                    new: c.new.clone(),
                    policy: format!("{}/{}", c.namespace, c.policy),
                    kind: plan
                        .fields
                        .iter()
                        .find(|f| f.line == c.line)
                        .and_then(|f| f.kind)
                        .unwrap_or_else(|| change_kind(c.form, &c.old, &c.new))
                        .to_owned(),
                })
                .collect();
            plan.new_text = Some(edited.text.into_owned());
        }
        Ok(_) => {}
        Err(e) => {
            // The edits verify one by one but not together: nothing of the file is written.
            for f in &mut plan.fields {
                if f.action == Action::Write {
                    f.action = Action::Held;
                    f.reason = "the file cannot be edited (see the error below)".into();
                }
            }
            plan.fields.push(Field::error(
                rel,
                0,
                format!("the file would be left unchanged: {e}"),
            ));
        }
    }
    plan
}

/// `error (hint: …)`, as the plan's WHY column shows a refusal.
fn with_hint(e: &MarkerError) -> String {
    match e.hint() {
        Some(h) => format!("{e} (hint: {h})"),
        None => e.to_string(),
    }
}

/// Why a marker is left alone as not managed here: a Flux `$imagepolicy` marker naming a
/// policy the repository does not have (and has no invalid object of that name). `None` for
/// `$upkeep` markers (upkeep's own: a missing policy is an error) and for known policies.
fn not_managed(
    lookup: &dyn Lookup,
    namespace: &str,
    policy: &str,
    syntax: MarkerSyntax,
    suffix: &str,
) -> Option<String> {
    if syntax != MarkerSyntax::FluxImagePolicy
        || lookup.policy(namespace, policy).is_some()
        || lookup.policy_problem(namespace, policy).is_some()
    {
        return None;
    }
    Some(format!(
        "no ImagePolicy or VersionPolicy {namespace}/{policy} in the repository: left to whatever manages it{}",
        elsewhere_hint(lookup, namespace, policy, suffix)
    ))
}

/// ` (hint: …)` naming the one policy of that name in another namespace, or nothing.
fn elsewhere_hint(lookup: &dyn Lookup, namespace: &str, policy: &str, suffix: &str) -> String {
    lookup
        .policy_elsewhere(namespace, policy)
        .map(|ns| {
            format!(
                " (hint: the repository has {ns}/{policy}: did you mean \"{ns}:{policy}{suffix}\"? A kustomize `namespace:` or a patch may place it)"
            )
        })
        .unwrap_or_default()
}

/// How strictly a step kind is scheduled (`change` is scheduled as a major).
fn strictness(kind: &str) -> u8 {
    match kind {
        "patch" => 0,
        "minor" => 1,
        "major" => 2,
        _ => 3,
    }
}

/// The kind of a change between two values of a field of `form`: the step between their tags
/// when both have one, else `change`.
fn change_kind(form: MarkerForm, old: &str, new: &str) -> &'static str {
    match (tag_of(form, old), tag_of(form, new)) {
        (Some(a), Some(b)) => step_kind(a, b).0,
        _ => "change",
    }
}

/// The fields of one policy in one file are written together or not at all: a kustomize
/// `newTag` moved without its `newDigest` would deploy a mismatched pair. A field to write
/// whose policy has a held or failed field in the file is held with it.
fn hold_together(fields: &mut [Field]) {
    let mut blocking: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for f in fields.iter() {
        if matches!(f.action, Action::Held | Action::Error) && f.policy != "-" {
            blocking
                .entry(f.policy.clone())
                .or_insert_with(|| (f.line, f.reason.clone()));
        }
    }
    for f in fields.iter_mut() {
        if f.action != Action::Write {
            continue;
        }
        if let Some((line, why)) = blocking.get(&f.policy) {
            f.action = Action::Held;
            f.next_window = None;
            f.reason = format!(
                "held with line {line} ({why}): the fields of one policy in a file are written together"
            );
        }
    }
}

/// `Kind namespace/name` of each Kubernetes object in the file, by document index.
fn object_names(rel: &str, text: &str) -> BTreeMap<usize, String> {
    // The objects upkeep reads itself are named as the loader names them; everything else
    // (Apps, HelmReleases, Applications — nearly every file with a marker) is named from its
    // top-level `kind:` and `metadata:` lines, without parsing the file again.
    if !upkeep_api::RESOURCE_API_VERSIONS
        .iter()
        .any(|g| text.contains(g))
        && let Some(names) = object_names_by_lines(text)
    {
        return names;
    }
    object_names_by_loader(rel, text)
}

/// `Kind namespace/name` of each document as the loader reads it.
fn object_names_by_loader(rel: &str, text: &str) -> BTreeMap<usize, String> {
    let loaded = upkeep_api::load_str(Path::new(rel), text);
    loaded
        .documents
        .iter()
        .filter_map(|d| {
            let namespace = match &d.resource {
                Resource::Other { namespace, .. } => namespace.clone(),
                _ => None,
            };
            let kind = d.resource.kind();
            Some((
                d.index,
                match (d.resource.name(), namespace) {
                    (Some(name), Some(ns)) => format!("{kind} {ns}/{name}"),
                    (Some(name), None) => format!("{kind} {name}"),
                    // An object without a name (a kustomize Kustomization) is its kind, as
                    // Flux identifies it.
                    (None, _) if !kind.is_empty() => kind.to_owned(),
                    (None, _) => return None,
                },
            ))
        })
        .collect()
}

/// `Kind namespace/name` per document from block-style top-level lines (`kind: App`,
/// `metadata:` then `  name: x`, `  namespace: y`); `None` when a document has a `kind` but its
/// name is not written that way (the caller then asks the loader).
fn object_names_by_lines(text: &str) -> Option<BTreeMap<usize, String>> {
    #[derive(Default)]
    struct Doc {
        kind: Option<String>,
        name: Option<String>,
        namespace: Option<String>,
        has_api_version: bool,
    }
    fn scalar(v: &str) -> Option<String> {
        let v = v.split(" #").next().unwrap_or("").trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
            .unwrap_or(v);
        let plain = !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._:/".contains(c));
        plain.then(|| v.to_owned())
    }
    let mut docs: BTreeMap<usize, Doc> = BTreeMap::new();
    let mut counter = upkeep_core::manifest::Documents::default();
    let mut in_metadata = false;
    let mut child_indent: Option<usize> = None;
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        let index = counter.see(line);
        let doc = docs.entry(index).or_default();
        let trimmed = line.trim_start_matches('\u{feff}');
        let indent = trimmed.len() - trimmed.trim_start().len();
        let content = trimmed.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if indent == 0 {
            in_metadata = content.trim_end() == "metadata:";
            child_indent = None;
            if let Some(v) = content.strip_prefix("kind:") {
                doc.kind = scalar(v);
            } else if content.starts_with("apiVersion:") {
                doc.has_api_version = true;
            }
            continue;
        }
        if in_metadata {
            let expected = *child_indent.get_or_insert(indent);
            if indent == expected {
                if let Some(v) = content.strip_prefix("name:") {
                    doc.name = scalar(v);
                } else if let Some(v) = content.strip_prefix("namespace:") {
                    doc.namespace = scalar(v);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    for (index, d) in docs {
        match (d.kind, d.name) {
            (Some(kind), Some(name)) if d.has_api_version => {
                out.insert(
                    index,
                    match d.namespace {
                        Some(ns) => format!("{kind} {ns}/{name}"),
                        None => format!("{kind} {name}"),
                    },
                );
            }
            (Some(_), _) => return None,
            _ => {}
        }
    }
    Some(out)
}

/// The kind of a step, and the kind its schedule is checked for: a change that is not an
/// upgrade (a downgrade, or tags that are not SemVer) is scheduled as strictly as a major.
fn step_kind(current: &str, target: &str) -> (&'static str, UpgradeKind) {
    let step = Version::parse(current)
        .zip(Version::parse(target))
        .and_then(|(a, b)| UpgradeKind::between(&a, &b));
    match step {
        Some(UpgradeKind::Patch) => ("patch", UpgradeKind::Patch),
        Some(UpgradeKind::Minor) => ("minor", UpgradeKind::Minor),
        Some(UpgradeKind::Major) => ("major", UpgradeKind::Major),
        None => ("change", UpgradeKind::Major),
    }
}

/// Decides one marked field: target, kind, and whether it may be written now. `group_kind` is
/// the step of the policy's tagged fields in the file, for a field without a tag.
fn plan_field(
    lookup: &dyn Lookup,
    file: &str,
    m: &Marker,
    scope: &Scope<'_>,
    now: Timestamp,
    group_kind: Option<(&'static str, UpgradeKind)>,
) -> Field {
    let current = m.value.clone();
    let mut field = Field::error(file, m.line, String::new());
    field.key.clone_from(&m.key);
    field.policy = format!("{}/{}", m.namespace, m.policy);
    field.current.clone_from(&current);
    if let Some(why) = not_managed(lookup, &m.namespace, &m.policy, m.syntax, m.form.suffix()) {
        field.action = Action::NotManaged;
        field.reason = why;
        return field;
    }
    if let Some(conflict) = &scope.conflict {
        field.reason = format!("{conflict}: nothing of either is written");
        return field;
    }
    if let Some(problem) = lookup.policy_problem(&m.namespace, &m.policy) {
        field.reason = problem;
        return field;
    }
    let Some(d) = lookup.policy(&m.namespace, &m.policy) else {
        field.reason = format!(
            "no VersionPolicy {}/{} in the repository{}",
            m.namespace,
            m.policy,
            elsewhere_hint(lookup, &m.namespace, &m.policy, m.form.suffix())
        );
        return field;
    };
    if scope.automation.is_some_and(|a| a.spec.suspend) {
        field.action = Action::Held;
        field.reason = "the AppUpgradeAutomation is suspended (spec.suspend: true)".into();
        return field;
    }
    if scope
        .selector
        .as_ref()
        .is_some_and(|s| !s.matches(&d.labels))
    {
        field.action = Action::Held;
        field.reason = "the automation's policySelector does not select this policy".into();
        return field;
    }
    // Flux's ImageUpdateAutomation applies only the ImagePolicies of its own namespace.
    if let Some(a) = scope
        .automation
        .filter(|a| upkeep_api::flux_automation::is_flux(a))
        && namespaced_name(&a.metadata).0 != m.namespace
    {
        field.action = Action::Held;
        field.reason = format!(
            "the ImageUpdateAutomation applies only policies of its namespace {} (as Flux does)",
            namespaced_name(&a.metadata).0
        );
        return field;
    }
    if let Some(why) = &d.suspended {
        field.action = Action::Held;
        field.reason.clone_from(why);
        return field;
    }
    let Some(selected) = d.selected.clone() else {
        field.action = Action::Held;
        field.reason = "the policy allows no version".into();
        return field;
    };
    if let Err(e) = m.check_shape() {
        field.action = Action::Held;
        field.reason = with_hint(&e);
        return field;
    }
    let update = Update {
        namespace: &m.namespace,
        policy: &m.policy,
        version: &selected,
        image: d.image.as_deref(),
        digest: d.digest.as_deref(),
    };
    let target = match m.target(&update) {
        Ok(t) => t,
        Err(MarkerError::MissingPart {
            part: Part::Image, ..
        }) => {
            field.action = Action::Held;
            field.reason = format!(
                "{}: it has no image name, and {{\"$imagepolicy\": \"{}\"}} writes one (hint: use \"{}:{}:tag\")",
                d.no_image
                    .as_deref()
                    .unwrap_or("the policy's source is not an image repository"),
                m.reference(),
                m.namespace,
                m.policy
            );
            return field;
        }
        Err(e) => {
            field.action = Action::Held;
            field.reason = with_hint(&e);
            return field;
        }
    };
    field.target = Some(target.clone());
    let age_note = d
        .held
        .as_ref()
        .map(|(tag, until)| format!("; {tag} too young until {}", local(*until, &TimeZone::UTC)))
        .unwrap_or_default();
    if target == current {
        field.action = Action::UpToDate;
        field.reason = format!(
            "{}{age_note}",
            if d.pinned { "pinned" } else { "latest allowed" }
        );
        return field;
    }
    let (kind_name, kind) = match m.tag() {
        Some(tag) => step_kind(tag, &selected),
        None => group_kind.unwrap_or(("change", UpgradeKind::Major)),
    };
    field.kind = Some(kind_name);
    let pin = if d.pinned { "pinned; " } else { "" };
    match &scope.schedule {
        None => {
            field.action = Action::Write;
            field.reason = format!("{pin}no schedule{age_note}");
        }
        Some((name, None)) => {
            let ns = scope
                .automation
                .map(|a| namespaced_name(&a.metadata).0)
                .unwrap_or_default();
            if let Some(problem) = lookup.schedule_problem(&ns, name) {
                field.action = Action::Error;
                field.reason = format!("scheduleRef: {problem}");
            } else {
                field.action = Action::Held;
                field.reason = format!("scheduleRef {name} is not in the repository");
            }
        }
        Some((name, Some(s))) => {
            let tz = s.time_zone().clone();
            match s.check(now, kind) {
                Verdict::Open { window, until } => {
                    field.action = Action::Write;
                    field.reason = match until {
                        Some(u) => format!(
                            "{pin}{name}: window {window} open until {}{age_note}",
                            local(u, &tz)
                        ),
                        None => format!("{pin}{name}: allowed at any time{age_note}"),
                    };
                }
                Verdict::Closed { reason, next_open } => {
                    field.action = Action::Held;
                    field.reason = match next_open {
                        Some(n) => {
                            field.next_window = Some(n.to_string());
                            format!(
                                "{name}: {} until {} ({}){age_note}",
                                closed_reason(&reason, &tz),
                                local(n, &tz),
                                relative(n, now)
                            )
                        }
                        None => format!(
                            "{name}: {}; no allowed time ahead{age_note}",
                            closed_reason(&reason, &tz)
                        ),
                    };
                }
            }
        }
    }
    field
}

/// The marked fields that differ between two versions of a file (for a pull request's table
/// of everything on its branch): pairs markers by position and policy.
pub fn changes_between(rel: &str, old: &str, new: &str) -> Vec<ChangeRecord> {
    let (before, _) = find_markers(old);
    let (after, _) = find_markers(new);
    let objects = object_names(rel, new);
    after
        .iter()
        .filter_map(|m| {
            let was = before.iter().find(|b| {
                b.line == m.line
                    && b.namespace == m.namespace
                    && b.policy == m.policy
                    && b.form == m.form
            })?;
            (was.value != m.value).then(|| ChangeRecord {
                file: rel.to_owned(),
                line: m.line,
                object: objects
                    .get(&m.document)
                    .cloned()
                    .or_else(|| m.key.clone())
                    .unwrap_or_else(|| rel.to_owned()),
                old: was.value.clone(),
                new: m.value.clone(),
                policy: format!("{}/{}", m.namespace, m.policy),
                kind: change_kind(m.form, &was.value, &m.value).to_owned(),
            })
        })
        .collect()
}

/// Every marked field that differs between `base` and `tip` (for a pull request's table of
/// everything on its branch).
pub fn branch_changes(
    repo: &crate::Repo,
    base: git2::Oid,
    tip: git2::Oid,
) -> Result<Vec<ChangeRecord>, crate::GitError> {
    let mut changes = Vec::new();
    for file in repo.changed_files(base, tip)? {
        let read = |c| {
            repo.read_file_at(c, &file)
                .map(|b| b.map(|b| String::from_utf8_lossy(&b).into_owned()))
        };
        if let (Some(old), Some(new)) = (read(base)?, read(tip)?) {
            changes.extend(changes_between(&file, &old, &new));
        }
    }
    Ok(changes)
}

/// A Kubernetes label selector as the core evaluates it (converted in `upkeep-api`, once).
pub use upkeep_api::cluster_upgrade::label_selector;

#[cfg(test)]
mod tests {
    use super::*;

    fn automation(namespace: &str, name: &str, flux: bool) -> AppUpgradeAutomation {
        let mut metadata = serde_json::json!({ "name": name, "namespace": namespace });
        if flux {
            metadata["annotations"] = serde_json::json!({
                upkeep_api::flux::ORIGIN_ANNOTATION: "image.toolkit.fluxcd.io/v1/ImageUpdateAutomation"
            });
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "upkeep.dev/v1alpha1",
            "kind": "AppUpgradeAutomation",
            "metadata": metadata,
            "spec": {
                "git": { "url": "https://git.example/fleet.git" },
                "path": "./clusters",
                "commit": { "author": { "name": "bot", "email": "bot@example.com" } },
            },
        }))
        .expect("automation")
    }

    #[test]
    fn overlapping_paths_overlap_unless_both_are_flux_automations_of_different_namespaces() {
        let cases = [
            (
                (
                    automation("org-a", "x", true),
                    automation("org-b", "y", true),
                ),
                0,
                "two ImageUpdateAutomations apply only their own namespace's policies",
            ),
            (
                (
                    automation("org-a", "x", true),
                    automation("org-a", "y", true),
                ),
                1,
                "two ImageUpdateAutomations of one namespace both write its policies' fields",
            ),
            (
                (
                    automation("org-a", "x", false),
                    automation("org-b", "y", true),
                ),
                1,
                "an AppUpgradeAutomation selects policies of any namespace",
            ),
        ];
        for ((a, b), want, reason) in cases {
            let found = overlaps(&[a, b], &[], &|_, _| true);
            assert_eq!(found.len(), want, "{reason}: {found:?}");
        }
    }

    /// What the loader names, for comparison.
    fn by_loader(text: &str) -> BTreeMap<usize, String> {
        object_names_by_loader("f.yaml", text)
    }

    #[test]
    fn objects_are_named_from_their_lines_as_the_loader_names_them() {
        // (text, whether the line reader answers, reason)
        let cases = [
            (
                "apiVersion: application.giantswarm.io/v1alpha1\nkind: App\nmetadata:\n  name: podinfo\n  namespace: org-acme\nspec:\n  version: 1.0.0\n",
                true,
                "a Giant Swarm App CR",
            ),
            (
                "# head comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    name: not-this\n  name: \"quoted\"\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: \n    namespace: 'flux-system'\n    name: web # the web app\n",
                true,
                "several documents, a nested `name` ignored, quotes and comments",
            ),
            (
                "\u{feff}apiVersion: argoproj.io/v1alpha1\r\nkind: Application\r\nmetadata:\r\n  name: app\r\n",
                true,
                "BOM and CRLF",
            ),
            (
                "image:\n  tag: 1.2.3\n",
                true,
                "a values file names no object",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flow, namespace: x}\n",
                false,
                "flow-style metadata goes to the loader",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: &a anchored\n",
                false,
                "an anchored name goes to the loader",
            ),
        ];
        for (text, answers, reason) in cases {
            match object_names_by_lines(text) {
                Some(names) => {
                    assert!(
                        answers,
                        "{reason}: expected the loader fallback, got {names:?}"
                    );
                    assert_eq!(names, by_loader(text), "{reason}");
                }
                None => assert!(!answers, "{reason}: the line reader gave up"),
            }
            assert_eq!(
                object_names("f.yaml", text),
                by_loader(text),
                "{reason}: object_names"
            );
        }
    }
}
