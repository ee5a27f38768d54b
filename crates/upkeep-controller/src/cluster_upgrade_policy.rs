//! ClusterUpgradePolicy (a kind): turns a newly allowed release (its VersionPolicy's
//! `status.latestVersion`) into one `ClusterUpgrade`.
//!
//! Why it is shaped this way:
//! - The decision is the pure [`decide`] (policy, what the VersionPolicy says) → create this
//!   upgrade, or nothing and why; the reconciler only reads, creates and writes status.
//! - Idempotent by name: the upgrade is called `<policy>-<version, dots as dashes>`, so a
//!   controller that dies after creating it and before recording `lastCreated` finds
//!   `AlreadyExists` on the next run and records it then. Only a *newer* release than
//!   `status.lastVersion` creates anything: a release that goes back down creates nothing.
//! - The created upgrade is owned by the policy (ownerReference, `controller: true`), so
//!   deleting the policy deletes what it created; approval `Manual` creates it `suspend: true`.
//! - A VersionPolicy change re-runs the ClusterUpgradePolicies that refer to it (a watch).

use std::sync::Arc;

use jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use upkeep_api::cluster_upgrade_policy::ClusterUpgradePolicyStatus;
use upkeep_api::{ClusterUpgrade, ClusterUpgradePolicy, VersionPolicy};
use upkeep_core::version::Version;

use crate::framework::conditions::{Outcome, invalid_spec, not_ready, with_outcome};
use crate::framework::{Context, Error, lean_controller, write_status};

/// Event reason: a ClusterUpgrade was created for a new release.
pub const UPGRADE_CREATED: &str = "UpgradeCreated";

/// The name of the upgrade `policy` creates for `version`: dots (and anything else a
/// Kubernetes name cannot hold) as dashes, lower case.
pub fn upgrade_name(policy: &str, version: &str) -> String {
    let mut out = String::with_capacity(policy.len() + version.len() + 1);
    for c in format!("{policy}-{version}").chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out.truncate(253);
    out.trim_matches('-').to_owned()
}

/// What to do for one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Create the upgrade for this release (as written in the VersionPolicy status).
    Create { version: String },
    /// Nothing to create: `Ready` with this reason and message.
    UpToDate { message: String },
    /// Cannot tell yet: `Ready=False` with this reason and message.
    Waiting {
        reason: &'static str,
        message: String,
    },
}

/// Whether the VersionPolicy's `latest` release calls for a new upgrade.
pub fn decide(policy: &ClusterUpgradePolicy, latest: Option<Option<&str>>) -> Decision {
    let reference = &policy.spec.policy_ref.name;
    let Some(latest) = latest else {
        return Decision::Waiting {
            reason: "PolicyNotFound",
            message: format!("VersionPolicy {reference} not found"),
        };
    };
    let Some(latest) = latest.map(str::trim).filter(|l| !l.is_empty()) else {
        return Decision::Waiting {
            reason: "NoVersion",
            message: format!("VersionPolicy {reference} has no latestVersion yet"),
        };
    };
    let Some(version) = Version::parse(latest) else {
        return Decision::Waiting {
            reason: "NotAVersion",
            message: format!(
                "VersionPolicy {reference} latestVersion {latest:?} is not a release version"
            ),
        };
    };
    let last = policy
        .status
        .as_ref()
        .and_then(|s| s.last_version.as_deref());
    match last.and_then(Version::parse) {
        Some(last_version) if last_version >= version => Decision::UpToDate {
            message: format!(
                "latest release {latest}; last created upgrade {} for {}",
                policy
                    .status
                    .as_ref()
                    .and_then(|s| s.last_created.as_deref())
                    .unwrap_or("-"),
                last.unwrap_or("-")
            ),
        },
        _ => Decision::Create {
            version: latest.to_owned(),
        },
    }
}

/// The upgrade a policy creates for `version`.
pub fn upgrade_for(policy: &ClusterUpgradePolicy, version: &str) -> ClusterUpgrade {
    let mut owner = policy.controller_owner_ref(&());
    if let Some(o) = owner.as_mut() {
        // Setting blockOwnerDeletion needs extra permissions on some clusters; not needed here.
        o.block_owner_deletion = None;
    }
    ClusterUpgrade {
        metadata: ObjectMeta {
            name: Some(upgrade_name(&policy.name_any(), version)),
            namespace: policy.namespace(),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: policy.upgrade_spec(Some(version)),
        status: None,
    }
}

/// Reconciles one ClusterUpgradePolicy. Gather: the VersionPolicy it follows. Decide:
/// [`decide`]. Act: create the upgrade (idempotent by name), write status, publish an Event.
pub async fn reconcile_upgrade_policy(
    object: Arc<ClusterUpgradePolicy>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let now = ctx.now();
    let before = object.status.clone().unwrap_or_default();
    let generation = object.metadata.generation;
    let mut wanted = before.clone();
    wanted.observed_generation = generation;
    if let Err(errors) = object.validate() {
        wanted.conditions = invalid_spec(&before.conditions, &errors, generation, now);
        write_status(
            ctx.client(),
            object.as_ref(),
            object.status.as_ref(),
            &wanted,
        )
        .await?;
        ctx.announce_stalled(object.as_ref(), &before.conditions, &wanted.conditions)
            .await;
        return Ok(Action::await_change());
    }
    let policy = gather(&ctx, &object).await?;
    let latest = policy
        .as_ref()
        .map(|p| p.status.as_ref().and_then(|s| s.latest_version.as_deref()));
    match decide(&object, latest) {
        Decision::Waiting { reason, message } => {
            wanted.conditions = not_ready(&before.conditions, reason, &message, generation, now);
        }
        Decision::UpToDate { message } => {
            wanted.conditions = ready(&before, "UpToDate", &message, generation, now);
        }
        Decision::Create { version } => {
            let (name, message) = create(&ctx, &object, &version).await?;
            wanted.last_created = Some(name);
            wanted.last_version = Some(version);
            wanted.conditions = ready(&before, "Created", &message, generation, now);
        }
    }
    write_status(
        ctx.client(),
        object.as_ref(),
        object.status.as_ref(),
        &wanted,
    )
    .await?;
    Ok(Action::await_change())
}

/// Gather: the VersionPolicy the policy follows (`None`: there is none).
async fn gather(
    ctx: &Context,
    object: &ClusterUpgradePolicy,
) -> Result<Option<VersionPolicy>, Error> {
    let namespace = object.namespace().unwrap_or_default();
    let reference = &object.spec.policy_ref.name;
    let policies: Api<VersionPolicy> = Api::namespaced(ctx.client(), &namespace);
    policies
        .get_opt(reference)
        .await
        .map_err(|source| Error::Read {
            kind: "VersionPolicy",
            object: format!("{namespace}/{reference}"),
            source,
        })
}

/// Act: creates the upgrade for `version` (an existing one of that name counts as created
/// before) and publishes `UpgradeCreated` when this call created it. Returns its name and the
/// condition message.
async fn create(
    ctx: &Context,
    object: &ClusterUpgradePolicy,
    version: &str,
) -> Result<(String, String), Error> {
    let namespace = object.namespace().unwrap_or_default();
    let upgrade = upgrade_for(object, version);
    let name = upgrade.name_any();
    let api: Api<ClusterUpgrade> = Api::namespaced(ctx.client(), &namespace);
    let params = PostParams {
        field_manager: Some(crate::framework::FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    let created = match api.create(&params, &upgrade).await {
        Ok(_) => true,
        Err(kube::Error::Api(s)) if s.is_already_exists() => false,
        Err(source) => {
            return Err(Error::Create {
                kind: "ClusterUpgrade",
                object: format!("{namespace}/{name}"),
                source,
            });
        }
    };
    let approval = if upgrade.spec.suspend {
        " (suspended until approved: set spec.suspend to false)"
    } else {
        ""
    };
    let message = format!("created ClusterUpgrade {name} for release {version}{approval}");
    if created {
        let reference = object.object_ref(&());
        ctx.publish(
            &reference,
            false,
            UPGRADE_CREATED,
            "CreateUpgrade",
            &message,
        )
        .await;
    }
    Ok((name, message))
}

fn ready(
    before: &ClusterUpgradePolicyStatus,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    with_outcome(
        &before.conditions,
        &Outcome::Ready {
            reason: reason.to_owned(),
            message: message.to_owned(),
        },
        generation,
        now,
    )
}

/// Runs the ClusterUpgradePolicy controller until `shutdown` resolves. A VersionPolicy change
/// re-runs the policies that refer to it.
pub async fn run_cluster_upgrade_policies(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = lean_controller(Api::<ClusterUpgradePolicy>::all(ctx.client()));
    let store = controller.store();
    let controller = controller.watches(
        Api::<VersionPolicy>::all(ctx.client()),
        watcher::Config::default(),
        move |p: VersionPolicy| {
            let name = p.name_any();
            let ns = p.namespace();
            store
                .state()
                .into_iter()
                .filter(|x| x.namespace() == ns && x.spec.policy_ref.name == name)
                .map(|x| ObjectRef::from_obj(x.as_ref()))
                .collect::<Vec<_>>()
        },
    );
    let kind = "ClusterUpgradePolicy";
    crate::framework::run(controller, kind, reconcile_upgrade_policy, ctx, shutdown).await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn policy(status: Option<serde_json::Value>, approval: &str) -> ClusterUpgradePolicy {
        let mut object = json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "ClusterUpgradePolicy",
            "metadata": {"name": "releases", "namespace": "org", "uid": "u-1"},
            "spec": {"policyRef": {"name": "release-chart"},
                     "matchers": [{"name": "all", "value": ".*", "isRegex": true}],
                     "stages": [{"name": "dev", "soak": "1h"}, {"name": "prod", "maxConcurrency": 1}],
                     "approval": approval, "maintenanceScheduleRef": {"name": "weekly"}},
        });
        if let Some(s) = status {
            object["status"] = s;
        }
        serde_json::from_value(object).expect("a ClusterUpgradePolicy")
    }

    #[test]
    fn names() {
        let cases = [
            ("releases", "30.1.2", "releases-30-1-2", "dots as dashes"),
            (
                "releases",
                "v31.0.0-RC.1",
                "releases-v31-0-0-rc-1",
                "lower case",
            ),
            (
                "r",
                "1.0.0+build..7",
                "r-1-0-0-build-7",
                "runs of odd characters fold into one dash",
            ),
        ];
        for (policy, version, want, why) in cases {
            assert_eq!(upgrade_name(policy, version), want, "{why}");
        }
    }

    #[test]
    fn decisions() {
        let created = Some(json!({"lastCreated": "releases-30-0-0", "lastVersion": "30.0.0"}));
        let cases = [
            (
                None,
                None,
                "PolicyNotFound",
                "no VersionPolicy: wait for it",
            ),
            (None, Some(None), "NoVersion", "no latestVersion yet"),
            (
                None,
                Some(Some("latest")),
                "NotAVersion",
                "a tag that is no release",
            ),
            (
                None,
                Some(Some("30.0.0")),
                "Create",
                "first release: create",
            ),
            (
                created.clone(),
                Some(Some("30.0.0")),
                "UpToDate",
                "already created: idempotent",
            ),
            (
                created.clone(),
                Some(Some("29.9.0")),
                "UpToDate",
                "an older release creates nothing",
            ),
            (
                created,
                Some(Some("30.1.0")),
                "Create",
                "a newer release: create",
            ),
        ];
        for (status, latest, want, why) in cases {
            let got = match decide(&policy(status, "Automatic"), latest) {
                Decision::Create { .. } => "Create",
                Decision::UpToDate { .. } => "UpToDate",
                Decision::Waiting { reason, .. } => reason,
            };
            assert_eq!(got, want, "{why}");
        }
    }

    #[test]
    fn the_created_upgrade() {
        let cases = [
            ("Automatic", false, "automatic: starts on its own"),
            ("Manual", true, "manual: suspended until approved"),
        ];
        for (approval, suspended, why) in cases {
            let u = upgrade_for(&policy(None, approval), "30.1.0");
            assert_eq!(u.metadata.name.as_deref(), Some("releases-30-1-0"), "{why}");
            assert_eq!(u.spec.suspend, suspended, "{why}");
            assert_eq!(u.spec.target_version.as_deref(), Some("30.1.0"), "{why}");
            let owner = &u.metadata.owner_references.as_ref().expect("owned")[0];
            assert_eq!(
                (owner.kind.as_str(), owner.name.as_str(), owner.controller),
                ("ClusterUpgradePolicy", "releases", Some(true)),
                "{why}"
            );
            let stages = &u.spec.strategy.as_ref().expect("stages").stages;
            assert_eq!(
                stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
                ["dev", "prod"],
                "{why}"
            );
            assert_eq!(stages[1].max_concurrency, Some(1), "{why}");
            assert_eq!(
                u.spec
                    .maintenance_schedule_ref
                    .as_ref()
                    .map(|r| r.name.as_str()),
                Some("weekly"),
                "{why}"
            );
            assert!(u.validate().is_ok(), "{why}: the created upgrade is valid");
        }
    }
}
