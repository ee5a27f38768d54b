//! AppUpgradeAutomation (a kind): the GitOps writer in the cluster. The same planning and
//! write loop as `upkeep apply --push --pull-request` (crate upkeep-git, fed from the cluster
//! by [`crate::gitops`]): what each VersionPolicy allows comes from its status
//! (`latestVersion`, written by the policy reconciler), schedules from MaintenanceSchedule
//! objects, credentials from Secrets.
//!
//! Why it is shaped this way:
//! - Three steps: *gather* (the other automations, for overlaps), *decide* (pure:
//!   [`spec_problem`], [`suspended`], [`after_run`] turn the object and what a run did into the
//!   status), *act* (the Git run and the pull request, then the status write).
//! - A VersionPolicy change re-runs the automations of its namespace (a watch, no polling);
//!   otherwise an automation runs every `spec.interval`, and sooner when a held field's window
//!   opens.
//! - Secrets (`spec.git.secretRef`: `username`/`password`, or `identity`/`known_hosts` for
//!   SSH, `ca.crt`; `spec.push.pullRequest.secretRef`: `token`) are read on each run and go
//!   only to Git and the forge API; status and Events name the Secret, never its content.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams};
use kube::runtime::PredicateConfig;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Resource, ResourceExt};
use upkeep_api::app_upgrade_automation::{AppUpgradeAutomationStatus, PullRequestStatus};
use upkeep_api::{AppUpgradeAutomation, MaintenanceSchedule, VersionPolicy};
use upkeep_git::MessageTemplate;
use upkeep_git::marked_fields;

use crate::framework::Error;
use crate::framework::conditions::{Outcome, not_ready, spec_message, with_outcome};
use crate::framework::{controller_config, lean, until, write_status};
use crate::gitops::{GitRun, GitWorkspace, interval_of, open_pull_request, push_label, run_git};

/// The status with `Stalled` for `reason`.
fn stalled(
    object: &AppUpgradeAutomation,
    reason: &str,
    message: String,
    now: Timestamp,
) -> AppUpgradeAutomationStatus {
    let existing = object.status.clone().unwrap_or_default();
    let outcome = Outcome::Stalled {
        reason: reason.to_owned(),
        message,
    };
    AppUpgradeAutomationStatus {
        conditions: with_outcome(
            &existing.conditions,
            &outcome,
            object.metadata.generation,
            now,
        ),
        ..existing
    }
}

/// Decide: the `Stalled` status of a spec that cannot run (invalid fields, a commit message
/// template that does not compile); `None` when it can.
pub fn spec_problem(
    object: &AppUpgradeAutomation,
    now: Timestamp,
) -> Option<AppUpgradeAutomationStatus> {
    if let Err(errors) = object.validate() {
        return Some(stalled(object, "InvalidSpec", spec_message(&errors), now));
    }
    let template = object.spec.commit.message_template.as_deref()?;
    let e = MessageTemplate::new(template).err()?;
    let message = format!("spec.commit.messageTemplate: {e} (hint: {})", e.hint());
    Some(stalled(object, "InvalidSpec", message, now))
}

/// Decide: the status of a suspended automation.
pub fn suspended(object: &AppUpgradeAutomation, now: Timestamp) -> AppUpgradeAutomationStatus {
    let existing = object.status.clone().unwrap_or_default();
    let outcome = Outcome::Ready {
        reason: "Suspended".into(),
        message: "spec.suspend is true: nothing is written".into(),
    };
    AppUpgradeAutomationStatus {
        conditions: with_outcome(
            &existing.conditions,
            &outcome,
            object.metadata.generation,
            now,
        ),
        ..existing
    }
}

/// Decide: the status after a run (`run`: what the Git work did; `pull_request`: the pull
/// request opened or updated, `None` when none was asked for or needed), and the error to
/// back off with (a failed pull request).
pub fn after_run(
    object: &AppUpgradeAutomation,
    run: &GitRun,
    pull_request: Option<Result<Option<upkeep_git::PullRequest>, Error>>,
    now: Timestamp,
) -> (AppUpgradeAutomationStatus, Option<Error>) {
    let existing = object.status.clone().unwrap_or_default();
    let generation = object.metadata.generation;
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
    let pr_error = match pull_request {
        Some(Ok(Some(p))) => {
            status.pull_request = Some(PullRequestStatus {
                url: p.url,
                number: p.number,
            });
            None
        }
        Some(Err(e)) => Some(e),
        Some(Ok(None)) | None => None,
    };
    status.conditions = match (&pr_error, run.errors.first()) {
        (Some(e), _) => not_ready(
            &existing.conditions,
            "PullRequestError",
            &e.to_string(),
            generation,
            now,
        ),
        (None, Some(e)) => {
            let outcome = Outcome::Ready {
                reason: "FieldErrors".into(),
                message: format!("{}; {e}", run.note),
            };
            with_outcome(&existing.conditions, &outcome, generation, now)
        }
        (None, None) => {
            let reason = if run.commit.is_some() {
                "Pushed"
            } else {
                "UpToDate"
            };
            let outcome = Outcome::Ready {
                reason: reason.into(),
                message: run.note.clone(),
            };
            with_outcome(&existing.conditions, &outcome, generation, now)
        }
    };
    (status, pr_error)
}

/// Reconciles one AppUpgradeAutomation: checks the spec, the overlaps and `suspend`, runs the
/// Git work and the pull request, writes what happened.
pub async fn reconcile_automation(
    object: Arc<AppUpgradeAutomation>,
    w: Arc<GitWorkspace>,
) -> Result<Action, Error> {
    let client = w.ctx.client();
    let now = w.ctx.now();
    let current = object.status.as_ref();
    let interval = interval_of(&object.spec.interval);
    let recorded = current.map(|s| s.conditions.as_slice()).unwrap_or_default();
    if let Some(status) = spec_problem(&object, now) {
        write_status(client, object.as_ref(), current, &status).await?;
        w.ctx
            .announce_stalled(object.as_ref(), recorded, &status.conditions)
            .await;
        return Ok(Action::await_change());
    }
    if let Some(overlap) = overlap_with_others(&client, &object).await? {
        let hint = overlap.hint();
        let message = format!("{overlap}: nothing of either is written (hint: {hint})");
        let status = stalled(&object, "Overlap", message, now);
        write_status(client, object.as_ref(), current, &status).await?;
        w.ctx
            .announce_stalled(object.as_ref(), recorded, &status.conditions)
            .await;
        // The other automation may change or go away: look again after the interval.
        return Ok(Action::requeue(interval));
    }
    if object.spec.suspend {
        write_status(client, object.as_ref(), current, &suspended(&object, now)).await?;
        return Ok(Action::await_change());
    }
    let result = run_git(&object, &w, now, None).await;
    w.ctx.metrics.record_push(push_label(&result));
    let run = match result {
        Ok(run) => run,
        Err(error) => {
            let existing = object.status.clone().unwrap_or_default();
            let generation = object.metadata.generation;
            let conditions = not_ready(
                &existing.conditions,
                error.reason(),
                &error.to_string(),
                generation,
                now,
            );
            let status = AppUpgradeAutomationStatus {
                conditions,
                ..existing
            };
            write_status(client, object.as_ref(), current, &status).await?;
            return Err(error);
        }
    };
    let pull_request = pull_request(&object, &w, &run).await;
    let (status, pr_error) = after_run(&object, &run, pull_request, now);
    write_status(client, object.as_ref(), current, &status).await?;
    if let Some(e) = pr_error {
        return Err(e);
    }
    let wait = run
        .next_window
        .map_or(interval, |at| interval.min(until(now, at)));
    let name = format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    );
    tracing::info!(automation = %name, note = %run.note, "ran");
    Ok(Action::requeue(wait))
}

/// Act: the pull request of a run that left the push branch ahead of its base, when asked.
async fn pull_request(
    object: &AppUpgradeAutomation,
    w: &GitWorkspace,
    run: &GitRun,
) -> Option<Result<Option<upkeep_git::PullRequest>, Error>> {
    let spec = object.spec.push.as_ref()?.pull_request.as_ref()?;
    let (base, tip) = run.branch?;
    if base == tip {
        return None;
    }
    let namespace = object.namespace().unwrap_or_default();
    Some(open_pull_request(object, w, spec, (base, tip), &namespace).await)
}

/// Gather: the first other AppUpgradeAutomation (any namespace) that writes the same branch of
/// the same repository and claims some of the same files (see `upkeep_git::marked_fields::Overlap`).
async fn overlap_with_others(
    client: &kube::Client,
    object: &AppUpgradeAutomation,
) -> Result<Option<marked_fields::Overlap>, Error> {
    let list = |what| move |source| Error::List { what, source };
    let all: Api<AppUpgradeAutomation> = Api::all(client.clone());
    let listed = all
        .list(&ListParams::default())
        .await
        .map_err(list("AppUpgradeAutomations"))?;
    let branch = crate::gitops::checkout_branch;
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
        .map_err(list("VersionPolicies"))?
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
    Ok(marked_fields::overlaps(&same, &refs, &|_, _| true)
        .into_iter()
        .find(|o| o.first == me || o.second == me))
}

/// Runs the AppUpgradeAutomation controller until `shutdown` resolves. A VersionPolicy or
/// MaintenanceSchedule change re-runs the automations of its namespace.
pub async fn run_automations(
    w: Arc<GitWorkspace>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = w.ctx.client();
    let automations: Api<AppUpgradeAutomation> = Api::all(client.clone());
    // Only spec changes (a new generation) start a run by themselves: the status this
    // controller writes (lastRun changes every run) must not start another one.
    let (reader, writer) = reflector::store();
    let stream = watcher(automations, watcher::Config::default())
        .backoff(crate::framework::watch_backoff())
        .modify(lean::<AppUpgradeAutomation>)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, PredicateConfig::default());
    let controller = Controller::for_stream(stream, reader)
        .with_config(controller_config())
        .trigger_backoff(crate::framework::watch_backoff());
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
    let controller = controller
        .watches(
            Api::<VersionPolicy>::all(client.clone()),
            watcher::Config::default(),
            move |p: VersionPolicy| in_namespace(&store, p.namespace()),
        )
        .watches(
            Api::<MaintenanceSchedule>::all(client),
            watcher::Config::default(),
            move |s: MaintenanceSchedule| in_namespace(&store2, s.meta().namespace.clone()),
        );
    let kind = "AppUpgradeAutomation";
    crate::framework::run(controller, kind, reconcile_automation, w, shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn automation(template: Option<&str>) -> AppUpgradeAutomation {
        let mut object = serde_json::json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "AppUpgradeAutomation",
            "metadata": {"name": "apps", "namespace": "default", "generation": 3},
            "spec": {"git": {"url": "https://git.example/fleet.git"}, "path": "./apps",
                     "interval": "1h",
                     "commit": {"author": {"name": "upkeep", "email": "upkeep@example.com"}}},
            "status": {"lastPushCommit": "abc", "observedPolicies": {"ns:old": "1.0.0"}}
        });
        if let Some(t) = template {
            object["spec"]["commit"]["messageTemplate"] = t.into();
        }
        serde_json::from_value(object).expect("an AppUpgradeAutomation")
    }

    fn run(commit: Option<&str>, errors: &[&str]) -> GitRun {
        GitRun {
            commit: commit.map(str::to_owned),
            note: "the note".into(),
            changes: Vec::new(),
            next_window: None,
            branch: None,
            errors: errors.iter().map(|e| (*e).to_owned()).collect(),
            warnings: Vec::new(),
        }
    }

    fn ready(status: &AppUpgradeAutomationStatus) -> (String, String, String) {
        let c = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    #[test]
    fn a_spec_that_cannot_run_is_stalled_before_any_git_work() {
        let now = ts("2026-11-21T10:00:00Z");
        let cases = [
            (None, None, "a valid spec runs"),
            (
                Some("{{ broken"),
                Some("spec.commit.messageTemplate"),
                "a template that does not compile is named",
            ),
            (
                Some("Update {{ changes | length }}"),
                None,
                "a good template runs",
            ),
        ];
        for (template, stalled, why) in cases {
            let got = spec_problem(&automation(template), now);
            assert_eq!(got.is_some(), stalled.is_some(), "{why}");
            if let (Some(status), Some(part)) = (got, stalled) {
                let (s, reason, message) = ready(&status);
                assert_eq!(
                    (s.as_str(), reason.as_str()),
                    ("False", "InvalidSpec"),
                    "{why}"
                );
                assert!(message.contains(part), "{why}: {message}");
                assert_eq!(
                    status.last_push_commit.as_deref(),
                    Some("abc"),
                    "{why}: kept"
                );
            }
        }
        let (s, reason, _) = ready(&suspended(&automation(None), now));
        assert_eq!((s.as_str(), reason.as_str()), ("True", "Suspended"));
    }

    #[test]
    fn after_a_run_the_status_says_what_was_pushed_and_why_not() {
        let now = ts("2026-11-21T10:00:00Z");
        let object = automation(None);
        let pr = |n: u64| upkeep_git::PullRequest {
            url: format!("https://forge/o/r/pull/{n}"),
            number: n,
            created: true,
        };
        // (run, pull request, Ready, reason, last push commit, PR number, error returned, why)
        let cases = vec![
            (
                run(Some("c0ffee"), &[]),
                None,
                "True",
                "Pushed",
                Some("c0ffee"),
                None,
                false,
                "a push",
            ),
            (
                run(None, &[]),
                None,
                "True",
                "UpToDate",
                Some("abc"),
                None,
                false,
                "nothing to do: the last push stays",
            ),
            (
                run(None, &["a.yaml:3: bad"]),
                None,
                "True",
                "FieldErrors",
                Some("abc"),
                None,
                false,
                "a field error is told, not retried",
            ),
            (
                run(Some("c0ffee"), &[]),
                Some(Ok(Some(pr(7)))),
                "True",
                "Pushed",
                Some("c0ffee"),
                Some(7),
                false,
                "a pull request is recorded",
            ),
            (
                run(Some("c0ffee"), &["x"]),
                Some(Err(Error::NoToken { spec: "spec" })),
                "False",
                "PullRequestError",
                Some("c0ffee"),
                None,
                true,
                "a failed pull request wins and is returned",
            ),
        ];
        for (run, pull_request, status, reason, commit, number, error, why) in cases {
            let (got, failed) = after_run(&object, &run, pull_request, now);
            let (s, r, _) = ready(&got);
            assert_eq!((s.as_str(), r.as_str()), (status, reason), "{why}");
            assert_eq!(got.last_push_commit.as_deref(), commit, "{why}");
            assert_eq!(got.pull_request.map(|p| p.number), number, "{why}");
            assert_eq!(failed.is_some(), error, "{why}");
            assert_eq!(got.last_run, Some(Time(now)), "{why}");
        }
    }
}
