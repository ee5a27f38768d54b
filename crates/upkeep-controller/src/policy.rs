//! VersionPolicy: the latest allowed version among its ChartSource's cached tags, chosen by the
//! core's `Policy::select` at the controller's `now`.
//!
//! Why it is shaped this way:
//! - The decision is the pure [`desired_status`] (object, what is known of the source, `now`)
//!   → (status, when to look again, Event note); the reconciler only looks the source up,
//!   writes status and publishes the Event.
//! - A policy is re-run when its source changes: the controller watches ChartSources and maps
//!   each to the policies that refer to it (from the controller's own store of policies), so
//!   there is no polling. The source reconciler fills the tag cache before it writes the
//!   source's status, so the watch event finds the new tags.
//! - `minimumReleaseAge`: when a better version is held back, the policy is requeued at exactly
//!   the moment it becomes old enough.
//! - `latestVersion` is kept when nothing is allowed any more (the consumer keeps running what
//!   it has); `previousVersion` is the old `latestVersion` whenever it changes, and a
//!   `NewVersion` Event says so.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use upkeep_api::version_policy::{DigestReflectionPolicy, VersionPolicyStatus};
use upkeep_api::{ChartSource, VersionPolicy};
use upkeep_registry::tag_infos;

use crate::discovery::{Discovery, Failure, build_source};
use crate::framework::conditions::{
    Outcome, READY, invalid_spec, not_ready, spec_message, with_outcome,
};
use crate::framework::{Error, lean_controller, until, write_status};
use crate::tags::{Scan, SourceKey};

/// The reason of the Event published when `latestVersion` changes.
pub const NEW_VERSION: &str = "NewVersion";

/// What the policy reconciler knows of the policy's source.
#[derive(Debug, Clone, Copy)]
pub enum SourceState<'a> {
    /// No ChartSource of that name.
    Missing,
    /// The ChartSource exists but this process has no scan of it yet; `message` is its Ready
    /// condition's message when that is False (why the scan fails).
    NotScanned {
        message: Option<&'a str>,
    },
    Scanned(&'a Scan),
}

/// What a reconcile of a VersionPolicy concluded.
#[derive(Debug, Clone)]
pub struct Decision {
    pub status: VersionPolicyStatus,
    /// When to look again without a change (a held version becoming old enough).
    pub next: Option<Timestamp>,
    /// The note of a `NewVersion` Event, when `latestVersion` changed.
    pub event: Option<String>,
}

/// The ChartSource a policy refers to (its own namespace unless `sourceRef.namespace` is set).
pub fn source_of(policy: &VersionPolicy) -> SourceKey {
    SourceKey::new(
        policy
            .spec
            .source_ref
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| policy.namespace())
            .unwrap_or_default(),
        policy.spec.source_ref.name.clone(),
    )
}

/// The status a VersionPolicy should have at `now`, given what is known of its source and the
/// source's image name (`ChartSource::image_name`). `latestDigest` is carried over while the
/// selected tag and the image stay and the policy reflects digests; whether a digest must be
/// read now is [`must_read_digest`]'s business (the reconciler's I/O).
pub fn desired_status(
    object: &VersionPolicy,
    source: SourceState<'_>,
    image: Option<&str>,
    now: Timestamp,
) -> Decision {
    let current = object.status.clone().unwrap_or_default();
    let existing = current.conditions.as_slice();
    let generation = object.metadata.generation;
    let waiting = |conditions| Decision {
        status: kept(&current, generation, conditions),
        next: None,
        event: None,
    };
    let policy = match object.to_core() {
        Ok(p) => p,
        Err(errors) => return waiting(invalid_spec(existing, &errors, generation, now)),
    };
    let source_key = source_of(object);
    let scan = match source {
        SourceState::Missing => {
            let message = format!("waiting for ChartSource {source_key}: not found");
            return waiting(not_ready(
                existing,
                "SourceNotFound",
                &message,
                generation,
                now,
            ));
        }
        SourceState::NotScanned { message } => {
            let message = match message {
                Some(m) => format!("waiting for ChartSource {source_key} to be scanned: {m}"),
                None => format!("waiting for ChartSource {source_key} to be scanned"),
            };
            return waiting(not_ready(
                existing,
                "SourceNotReady",
                &message,
                generation,
                now,
            ));
        }
        SourceState::Scanned(scan) => scan,
    };
    let infos = tag_infos(&scan.tags);
    let selection = policy.select(&infos, now);
    let held = selection
        .held
        .map(|h| format!("; {} is held by minimumReleaseAge until {}", h.tag, h.until))
        .unwrap_or_default();
    let next = selection.held.map(|h| h.until);
    let Some(selected) = selection.selected else {
        let message = format!(
            "no tag of ChartSource {source_key} is allowed ({} tags, {} not versions for this policy){held}",
            scan.tags.len(),
            selection.ignored,
        );
        let conditions = not_ready(existing, "NoMatch", &message, generation, now);
        return Decision {
            status: kept(&current, generation, conditions),
            next,
            event: None,
        };
    };
    let message = format!(
        "latest version {selected} of {} tags from ChartSource {source_key}{held}",
        scan.tags.len()
    );
    let mut decision = selected_status(object, &current, selected, image, &message, now);
    decision.next = next;
    decision
}

/// The status as it is, with new conditions.
fn kept(
    current: &VersionPolicyStatus,
    generation: Option<i64>,
    conditions: Vec<Condition>,
) -> VersionPolicyStatus {
    VersionPolicyStatus {
        observed_generation: generation,
        conditions,
        ..current.clone()
    }
}

/// The status once `selected` is the allowed version: the previous version and a `NewVersion`
/// note when it changed; the digest kept only while the version and the image stay.
fn selected_status(
    object: &VersionPolicy,
    current: &VersionPolicyStatus,
    selected: &str,
    image: Option<&str>,
    message: &str,
    now: Timestamp,
) -> Decision {
    let generation = object.metadata.generation;
    let reflect = object.spec.digest_reflection_policy.unwrap_or_default();
    let changed = current.latest_version.as_deref() != Some(selected);
    let (previous, event) = if changed {
        let name = object.name_any();
        let note = match &current.latest_version {
            Some(old) => format!("{name}: {old} → {selected}"),
            None => format!("{name}: {selected} (first selection)"),
        };
        (
            current
                .latest_version
                .clone()
                .or(current.previous_version.clone()),
            Some(note),
        )
    } else {
        (current.previous_version.clone(), None)
    };
    let same_ref = !changed && current.latest_image.as_deref() == image;
    let latest_digest = current
        .latest_digest
        .clone()
        .filter(|_| same_ref && reflect != DigestReflectionPolicy::Never);
    let ready = Outcome::Ready {
        reason: "Succeeded".into(),
        message: message.to_owned(),
    };
    Decision {
        status: VersionPolicyStatus {
            latest_version: Some(selected.to_owned()),
            previous_version: previous,
            latest_image: image.map(str::to_owned),
            latest_digest,
            observed_generation: generation,
            conditions: with_outcome(&current.conditions, &ready, generation, now),
        },
        next: None,
        event,
    }
}

/// Whether the reconciler must read the digest of the status's `latestVersion` now: the policy
/// reflects digests and `Always` asks every time, `IfNotPresent` when none is kept.
pub fn must_read_digest(object: &VersionPolicy, status: &VersionPolicyStatus) -> bool {
    status.latest_version.is_some()
        && object
            .spec
            .digest_reflection_policy
            .unwrap_or_default()
            .must_fetch(status.latest_digest.as_deref())
}

/// What a reconcile of a VersionPolicy reads: its source (if any) and this process's scan.
struct Gathered {
    source: Option<ChartSource>,
    scan: Option<Arc<Scan>>,
}

impl Gathered {
    fn state(&self) -> SourceState<'_> {
        match &self.source {
            None => SourceState::Missing,
            Some(s) => match self.scan.as_deref() {
                Some(scan) if scan.uid == s.metadata.uid => SourceState::Scanned(scan),
                _ => SourceState::NotScanned {
                    message: s
                        .status
                        .as_ref()
                        .and_then(|st| st.conditions.iter().find(|c| c.type_ == READY))
                        .filter(|c| c.status == "False")
                        .map(|c| c.message.as_str()),
                },
            },
        }
    }
}

/// Gather: the ChartSource the policy refers to and the cached scan of it.
async fn gather(d: &Discovery, object: &VersionPolicy) -> Result<Gathered, Error> {
    let key = source_of(object);
    let sources: Api<ChartSource> = Api::namespaced(d.client(), &key.namespace);
    let source = if key.name.trim().is_empty() {
        None
    } else {
        sources
            .get_opt(&key.name)
            .await
            .map_err(|source| Error::Read {
                kind: "ChartSource",
                object: key.to_string(),
                source,
            })?
    };
    if source.is_none() {
        // A deleted source's tags are of no use to anyone.
        d.tags.remove(&key);
    }
    let scan = d.tags.get(&key);
    Ok(Gathered { source, scan })
}

/// Reconciles one VersionPolicy: gather its source, decide ([`desired_status`]) over the
/// source's cached tags, act (read the digest when asked, write status, publish an Event when
/// the version changed), and requeue when a held version becomes old enough.
pub async fn reconcile_policy(
    object: Arc<VersionPolicy>,
    d: Arc<Discovery>,
) -> Result<Action, Error> {
    let now = d.now();
    let gathered = gather(&d, &object).await?;
    let source = gathered.source.as_ref();
    let image = source.and_then(ChartSource::image_name);
    let mut decision = desired_status(&object, gathered.state(), image.as_deref(), now);
    let mut failed = None;
    if let (Some(source), true) = (source, must_read_digest(&object, &decision.status)) {
        match read_digest(&d, source, &decision.status).await {
            Ok(digest) => decision.status.latest_digest = digest,
            Err(error) => {
                decision = without_digest(&object, &decision, &error, now);
                failed = Some(error);
            }
        }
    }
    let current = object.status.as_ref();
    write_status(d.client(), object.as_ref(), current, &decision.status).await?;
    let recorded = current.map(|s| s.conditions.as_slice()).unwrap_or_default();
    d.ctx
        .announce_stalled(object.as_ref(), recorded, &decision.status.conditions)
        .await;
    let uid = object.uid().unwrap_or_default();
    if let Some(note) = decision
        .event
        .as_ref()
        .filter(|n| d.first_announcement(&uid, n))
    {
        let reference = object.object_ref(&());
        d.ctx
            .publish(&reference, false, NEW_VERSION, "SelectVersion", note)
            .await;
    }
    if let Some(error) = failed {
        return Err(error);
    }
    Ok(next_look(decision.next, source, now))
}

/// Decide, when the digest could not be read: as Flux, the policy is not ready, and what was
/// published before stays (a consumer keeps writing the old reference, not a half one).
fn without_digest(
    object: &VersionPolicy,
    decision: &Decision,
    error: &Error,
    now: Timestamp,
) -> Decision {
    let current = object.status.clone().unwrap_or_default();
    let version = decision
        .status
        .latest_version
        .as_deref()
        .unwrap_or_default();
    let message = format!(
        "reading the digest of {version}: {}",
        error.condition_message()
    );
    let generation = object.metadata.generation;
    Decision {
        status: VersionPolicyStatus {
            observed_generation: generation,
            conditions: not_ready(
                &current.conditions,
                error.reason(),
                &message,
                generation,
                now,
            ),
            ..current
        },
        next: decision.next,
        event: None,
    }
}

/// When to look again: at `next` (a held version old enough), and also every source interval:
/// the ChartSource watch normally re-runs the policy after each scan, but a watch can lag for a
/// while (API server restarted, backoff), and a new version must not wait for it.
fn next_look(next: Option<Timestamp>, source: Option<&ChartSource>, now: Timestamp) -> Action {
    let resync = source
        .and_then(|s| upkeep_api::duration::parse_duration(&s.spec.interval).ok())
        .and_then(|d| std::time::Duration::try_from(d).ok())
        .map(|d| d.max(std::time::Duration::from_secs(1)));
    match (next.map(|at| until(now, at)), resync) {
        (Some(a), Some(b)) => Action::requeue(a.min(b)),
        (Some(a), None) | (None, Some(a)) => Action::requeue(a),
        (None, None) => Action::await_change(),
    }
}

/// The manifest digest of the status's `latestVersion` in `source` (`None` for a Helm
/// repository, or a layout without the tag).
async fn read_digest(
    d: &Discovery,
    source: &ChartSource,
    status: &VersionPolicyStatus,
) -> Result<Option<String>, Error> {
    let Some(tag) = status.latest_version.as_deref() else {
        return Ok(None);
    };
    let source_ref = SourceKey::of(source).to_string();
    let settings = source.to_core().map_err(|errors| Error::Registry {
        source_ref: source_ref.clone(),
        error: upkeep_registry::RegistryError::InvalidOption {
            option: "spec".to_owned(),
            detail: spec_message(&errors),
        },
    })?;
    let built = build_source(d, source, &settings)
        .await
        .map_err(Failure::into_error)?;
    built
        .digest_for(tag)
        .await
        .map_err(|error| Error::Registry { source_ref, error })
}

/// Runs the VersionPolicy controller until `shutdown` resolves. A change of a ChartSource
/// (its status after a scan, or its deletion) re-runs the policies that refer to it.
pub async fn run_policies(
    d: Arc<Discovery>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = lean_controller(Api::<VersionPolicy>::all(d.client()));
    let store = controller.store();
    let controller = controller.watches(
        Api::<ChartSource>::all(d.client()),
        watcher::Config::default(),
        move |source: ChartSource| {
            let key = SourceKey::of(&source);
            store
                .state()
                .into_iter()
                .filter(|p| source_of(p) == key)
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect::<Vec<_>>()
        },
    );
    crate::framework::run(controller, "VersionPolicy", reconcile_policy, d, shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use upkeep_registry::SeenTag;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn policy(spec: serde_json::Value, status: Option<serde_json::Value>) -> VersionPolicy {
        let mut object = serde_json::json!({
            "apiVersion": "upkeep.dev/v1alpha1",
            "kind": "VersionPolicy",
            "metadata": {"name": "podinfo", "namespace": "apps", "generation": 4},
        });
        object["spec"] = spec;
        if let Some(status) = status {
            object["status"] = status;
        }
        serde_json::from_value(object).expect("a VersionPolicy")
    }

    fn scan(tags: &[(&str, &str)]) -> Scan {
        Scan {
            uid: Some("u".into()),
            generation: Some(1),
            location: "oci-layout:/charts/podinfo".into(),
            time: ts("2026-11-21T10:00:00Z"),
            tags: tags
                .iter()
                .map(|(t, at)| SeenTag {
                    tag: (*t).to_owned(),
                    first_seen: ts(at),
                })
                .collect(),
        }
    }

    fn ready(status: &VersionPolicyStatus) -> (&str, &str, &str) {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == READY)
            .map_or(("-", "-", "-"), |c| {
                (c.status.as_str(), c.reason.as_str(), c.message.as_str())
            })
    }

    // (spec, status, source, latest, previous, Ready (status, reason), message contains,
    //  next, event, reason)
    type Case<'a> = (
        serde_json::Value,
        Option<serde_json::Value>,
        SourceState<'a>,
        Option<&'a str>,
        Option<&'a str>,
        (&'a str, &'a str),
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
    );

    #[test]
    fn decisions() {
        let now = ts("2026-11-21T10:00:00Z");
        let tags = scan(&[
            ("6.5.4", "2026-09-02T10:00:00Z"),
            ("6.6.0", "2026-10-12T10:00:00Z"),
            ("6.6.1", "2026-11-01T10:00:00Z"),
            ("6.7.0-rc.1", "2026-11-15T10:00:00Z"),
        ]);
        let range = |r: &str| serde_json::json!({"sourceRef": {"name": "podinfo"}, "policy": {"semver": {"range": r}}});
        let aged = serde_json::json!({
            "sourceRef": {"name": "podinfo"},
            "policy": {"semver": {"range": ">=6.0.0"}},
            "minimumReleaseAge": "720h",
        });
        let was = |latest: &str| {
            Some(serde_json::json!({"latestVersion": latest, "previousVersion": "6.0.0"}))
        };
        let cases: Vec<Case<'_>> = vec![
            (
                range(">=6.5.0 <7.0.0"),
                None,
                SourceState::Scanned(&tags),
                Some("6.6.1"),
                None,
                ("True", "Succeeded"),
                "latest version 6.6.1 of 4 tags",
                None,
                Some("podinfo: 6.6.1 (first selection)"),
                "first selection: the highest stable version in range, and an Event",
            ),
            (
                range(">=6.5.0 <7.0.0"),
                was("6.6.1"),
                SourceState::Scanned(&tags),
                Some("6.6.1"),
                Some("6.0.0"),
                ("True", "Succeeded"),
                "6.6.1",
                None,
                None,
                "unchanged: no Event, previousVersion stays",
            ),
            (
                range("~6.5"),
                was("6.6.1"),
                SourceState::Scanned(&tags),
                Some("6.5.4"),
                Some("6.6.1"),
                ("True", "Succeeded"),
                "6.5.4",
                None,
                Some("podinfo: 6.6.1 → 6.5.4"),
                "a change (even down): the old latest becomes previousVersion",
            ),
            (
                aged,
                None,
                SourceState::Scanned(&tags),
                Some("6.6.0"),
                None,
                ("True", "Succeeded"),
                "6.6.1 is held by minimumReleaseAge until 2026-12-01T10:00:00Z",
                Some("2026-12-01T10:00:00Z"),
                Some("podinfo: 6.6.0 (first selection)"),
                "a too-young version is held; requeue exactly when it is old enough",
            ),
            (
                range(">=7.0.0"),
                was("6.6.1"),
                SourceState::Scanned(&tags),
                Some("6.6.1"),
                Some("6.0.0"),
                ("False", "NoMatch"),
                "no tag of ChartSource apps/podinfo is allowed",
                None,
                None,
                "nothing allowed: Ready False, latestVersion kept",
            ),
            (
                range(">= banana"),
                was("6.6.1"),
                SourceState::Scanned(&tags),
                Some("6.6.1"),
                Some("6.0.0"),
                ("False", "InvalidSpec"),
                "spec.policy.semver.range",
                None,
                None,
                "invalid range: Stalled, naming the field",
            ),
            (
                range(">=6.0.0"),
                None,
                SourceState::NotScanned {
                    message: Some("Secret \"regcred\" not found"),
                },
                None,
                None,
                ("False", "SourceNotReady"),
                "waiting for ChartSource apps/podinfo to be scanned: Secret \"regcred\" not found",
                None,
                None,
                "source not scanned yet: waiting, and why",
            ),
            (
                range(">=6.0.0"),
                None,
                SourceState::Missing,
                None,
                None,
                ("False", "SourceNotFound"),
                "waiting for ChartSource apps/podinfo: not found",
                None,
                None,
                "no such source: waiting for it",
            ),
        ];
        for (spec, status, source, latest, previous, (rs, rr), message, next, event, reason) in
            cases
        {
            let d = desired_status(&policy(spec, status), source, None, now);
            assert_eq!(d.status.latest_version.as_deref(), latest, "{reason}");
            assert_eq!(d.status.previous_version.as_deref(), previous, "{reason}");
            assert_eq!(d.status.observed_generation, Some(4), "{reason}");
            let (s, r, m) = ready(&d.status);
            assert_eq!((s, r), (rs, rr), "{reason}: {m}");
            assert!(m.contains(message), "{reason}: {m}");
            assert_eq!(d.next, next.map(ts), "{reason}");
            assert_eq!(d.event.as_deref(), event, "{reason}");
            let stalled = d.status.conditions.iter().any(|c| c.type_ == "Stalled");
            assert_eq!(
                stalled,
                rr == "InvalidSpec",
                "{reason}: only an invalid spec stalls"
            );
        }
    }

    #[test]
    fn digests_are_kept_only_for_the_same_tag_and_image_and_read_as_the_policy_says() {
        let now = ts("2026-11-21T12:00:00Z");
        let tags = scan(&[("6.0.0", "2026-01-01T00:00:00Z")]);
        let status = |version: &str, image: &str| {
            Some(serde_json::json!({
                "latestVersion": version,
                "latestImage": image,
                "latestDigest": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            }))
        };
        let spec = |reflect: Option<&str>| {
            let mut s = serde_json::json!({
                "sourceRef": {"name": "podinfo"},
                "policy": {"semver": {"range": ">=6.0.0"}},
            });
            if let Some(r) = reflect {
                s["digestReflectionPolicy"] = r.into();
            }
            s
        };
        // (reflect, status before, image now, digest kept, must read, reason)
        let cases = [
            (
                Some("IfNotPresent"),
                status("6.0.0", "ghcr.io/org/podinfo"),
                Some("ghcr.io/org/podinfo"),
                true,
                false,
                "same tag and image: the known digest is kept, nothing is read",
            ),
            (
                Some("IfNotPresent"),
                status("5.0.0", "ghcr.io/org/podinfo"),
                Some("ghcr.io/org/podinfo"),
                false,
                true,
                "the tag changed: the old digest is dropped and a new one read",
            ),
            (
                Some("IfNotPresent"),
                status("6.0.0", "ghcr.io/old/podinfo"),
                Some("ghcr.io/org/podinfo"),
                false,
                true,
                "the image changed: the digest is read again",
            ),
            (
                Some("IfNotPresent"),
                None,
                Some("ghcr.io/org/podinfo"),
                false,
                true,
                "no digest known yet: it is read",
            ),
            (
                Some("Always"),
                status("6.0.0", "ghcr.io/org/podinfo"),
                Some("ghcr.io/org/podinfo"),
                true,
                true,
                "Always reads on every decision (a moved tag is noticed)",
            ),
            (
                None,
                status("6.0.0", "ghcr.io/org/podinfo"),
                Some("ghcr.io/org/podinfo"),
                false,
                false,
                "Never (the default): no digest, none read",
            ),
            (
                Some("Never"),
                status("6.0.0", "ghcr.io/org/podinfo"),
                Some("ghcr.io/org/podinfo"),
                false,
                false,
                "Never given explicitly: the same",
            ),
        ];
        for (reflect, before, image, kept, read, reason) in cases {
            let object = policy(spec(reflect), before);
            let d = desired_status(&object, SourceState::Scanned(&tags), image, now);
            assert_eq!(
                d.status.latest_version.as_deref(),
                Some("6.0.0"),
                "{reason}"
            );
            assert_eq!(d.status.latest_image.as_deref(), image, "{reason}");
            assert_eq!(d.status.latest_digest.is_some(), kept, "{reason}");
            assert_eq!(must_read_digest(&object, &d.status), read, "{reason}");
        }
    }

    #[test]
    fn the_source_is_in_the_policy_namespace_unless_named() {
        let cases = [
            (
                serde_json::json!({"name": "podinfo"}),
                "apps/podinfo",
                "default: the policy's namespace",
            ),
            (
                serde_json::json!({"name": "podinfo", "namespace": "flux-system"}),
                "flux-system/podinfo",
                "explicit namespace",
            ),
            (
                serde_json::json!({"name": "podinfo", "namespace": ""}),
                "apps/podinfo",
                "an empty namespace means the default",
            ),
        ];
        for (source_ref, want, reason) in cases {
            let p = policy(
                serde_json::json!({"sourceRef": source_ref, "policy": {"numerical": {}}}),
                None,
            );
            assert_eq!(source_of(&p).to_string(), want, "{reason}");
        }
    }

    #[test]
    fn the_next_look_is_the_sooner_of_a_held_version_and_the_source_interval() {
        let now = ts("2026-11-21T10:00:00Z");
        let source: ChartSource = serde_json::from_value(serde_json::json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "ChartSource",
            "metadata": {"name": "podinfo", "namespace": "apps"},
            "spec": {"url": "oci://r/podinfo", "interval": "10m"}
        }))
        .expect("a ChartSource");
        let secs = std::time::Duration::from_secs;
        let cases = [
            (
                None,
                None,
                Action::await_change(),
                "nothing held, no source: wait for a change",
            ),
            (
                None,
                Some(&source),
                Action::requeue(secs(600)),
                "the source interval, in case a watch lags",
            ),
            (
                Some(ts("2026-11-21T10:02:00Z")),
                Some(&source),
                Action::requeue(secs(120)),
                "a held version due sooner",
            ),
            (
                Some(ts("2026-11-21T11:00:00Z")),
                Some(&source),
                Action::requeue(secs(600)),
                "the interval is sooner",
            ),
            (
                Some(ts("2026-11-21T11:00:00Z")),
                None,
                Action::requeue(secs(3600)),
                "held, no source",
            ),
        ];
        for (next, source, want, why) in cases {
            assert_eq!(next_look(next, source, now), want, "{why}");
        }
    }

    #[test]
    fn without_a_digest_the_policy_keeps_what_it_published() {
        let now = ts("2026-11-21T10:00:00Z");
        let object = policy(
            serde_json::json!({"sourceRef": {"name": "podinfo"}, "policy": {"semver": {"range": ">=1.0.0"}}}),
            Some(serde_json::json!({"latestVersion": "1.0.0", "latestDigest": "sha256:old"})),
        );
        let decided = Decision {
            status: VersionPolicyStatus {
                latest_version: Some("1.1.0".into()),
                ..VersionPolicyStatus::default()
            },
            next: None,
            event: Some("podinfo: 1.0.0 → 1.1.0".into()),
        };
        let error = Error::Registry {
            source_ref: "apps/podinfo".into(),
            error: upkeep_registry::RegistryError::InvalidOption {
                option: "spec".into(),
                detail: "bad".into(),
            },
        };
        let got = without_digest(&object, &decided, &error, now);
        assert_eq!(
            got.status.latest_version.as_deref(),
            Some("1.0.0"),
            "the old version stays"
        );
        assert_eq!(
            got.status.latest_digest.as_deref(),
            Some("sha256:old"),
            "with its digest"
        );
        assert_eq!(
            got.event, None,
            "no NewVersion Event for a version not published"
        );
        let (status, reason, message) = ready(&got.status);
        assert_eq!(status, "False");
        assert_eq!(reason, error.reason());
        assert!(message.contains("reading the digest of 1.1.0"), "{message}");
    }
}
