//! ChartSource: scan the registry on `spec.interval`, keep the tags in the shared cache and
//! summarise the scan in status (`lastScan {time, tagCount, latestTags}` and conditions).
//!
//! Why it is shaped this way:
//! - The spec is converted by `upkeep-api` and the source built by `upkeep-registry` exactly as
//!   the standalone commands do; this module adds only what is in-cluster: Secrets, the cache,
//!   status and timing.
//! - Timing: a scan happens when there is none in this process's cache (start-up, a new
//!   source), when the spec changed (`generation`), when the last attempt failed (Ready is not
//!   True), or when `lastScan + interval` has passed; otherwise the object is requeued at
//!   exactly that time. The decision is the pure [`next_scan`].
//! - Errors: an invalid spec or unusable URL is `Stalled` until the spec changes; a missing
//!   Secret or a registry failure is `Ready=False` with the reason from
//!   [`upkeep_registry::RegistryError::kind`] and is returned so the controller backs off.
//! - Credentials are read from the Secret on every scan (a rotated Secret is picked up without a
//!   restart) and go only to the registry client; status, Events and errors name the Secret,
//!   never its content.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use upkeep_api::chart_source::{ChartSourceStatus, LastScan, SourceSettings};
use upkeep_api::{ChartSource, FieldError};
use upkeep_registry::{
    CaBundle, Credentials, DockerConfig, RegistryError, Source, SourceOptions, merge_first_seen,
};

use crate::conditions::{Outcome, READY, with_outcome};
use crate::discovery::{
    Discovery, Error, error_policy, not_ready, spec_message, until, write_status,
};
use crate::tags::{Scan, SourceKey, newest};

/// How many tags `status.lastScan.latestTags` lists.
pub const LATEST_TAGS: usize = 5;

/// The key of a `kubernetes.io/dockerconfigjson` Secret.
pub const DOCKER_CONFIG_KEY: &str = ".dockerconfigjson";
/// The key of the CA certificate in a `certSecretRef` Secret.
pub const CA_KEY: &str = "ca.crt";

/// When to scan a source: `None` now, `Some(at)` not before `at`.
///
/// Scan now when this process has no scan of the object (or of an older object of the same
/// name), when the spec changed since, when the last attempt did not succeed (`ready` is
/// false), or once `interval` has passed since the last scan.
pub fn next_scan(
    last: Option<&Scan>,
    uid: Option<&str>,
    generation: Option<i64>,
    ready: bool,
    interval: SignedDuration,
    now: Timestamp,
) -> Option<Timestamp> {
    let last = last?;
    if last.uid.as_deref() != uid || last.generation != generation || !ready {
        return None;
    }
    let at = last.time.checked_add(interval).ok()?;
    (at > now).then_some(at)
}

/// Reconciles one ChartSource: scan when due, write status, requeue at the next scan.
pub async fn reconcile_source(
    object: Arc<ChartSource>,
    d: Arc<Discovery>,
) -> Result<Action, Error> {
    let now = d.now();
    let key = SourceKey::of(object.as_ref());
    let generation = object.metadata.generation;
    let current = object.status.as_ref();
    let existing = current.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let last_scan = current.and_then(|s| s.last_scan.clone());
    let status = |conditions| ChartSourceStatus {
        last_scan: last_scan.clone(),
        conditions,
    };

    let settings = match object.to_core() {
        Ok(s) => s,
        Err(errors) => {
            let wanted = status(stalled(existing, &errors, generation, now));
            write_status(d.client(), object.as_ref(), current, &wanted).await?;
            return Ok(Action::await_change());
        }
    };
    if object.spec.suspend {
        let wanted = status(with_outcome(
            existing,
            &Outcome::Ready {
                reason: "Suspended".into(),
                message: "scanning is suspended (spec.suspend)".into(),
            },
            generation,
            now,
        ));
        write_status(d.client(), object.as_ref(), current, &wanted).await?;
        return Ok(Action::await_change());
    }

    let ready = existing
        .iter()
        .any(|c| c.type_ == READY && c.status == "True" && c.reason != "Suspended");
    let last = d.tags.get(&key);
    if let Some(at) = next_scan(
        last.as_deref(),
        object.metadata.uid.as_deref(),
        generation,
        ready,
        settings.interval,
        now,
    ) {
        return Ok(Action::requeue(until(now, at)));
    }

    match scan(&d, &object, &settings, now).await {
        Ok(scan) => {
            let scan = d.tags.insert(key, scan);
            let count = scan.tags.len();
            let wanted = ChartSourceStatus {
                last_scan: Some(LastScan {
                    time: Time(scan.time),
                    tag_count: count as u64,
                    latest_tags: newest(&scan.tags, LATEST_TAGS),
                }),
                conditions: with_outcome(
                    existing,
                    &Outcome::Ready {
                        reason: "Succeeded".into(),
                        message: format!(
                            "{count} tag{} from {}",
                            if count == 1 { "" } else { "s" },
                            scan.location
                        ),
                    },
                    generation,
                    now,
                ),
            };
            write_status(d.client(), object.as_ref(), current, &wanted).await?;
            let wait = scan.time.checked_add(settings.interval).unwrap_or(now);
            Ok(Action::requeue(until(now, wait)))
        }
        Err(Failure::Invalid(error)) => {
            let wanted = status(with_outcome(
                existing,
                &Outcome::Stalled {
                    reason: error.reason().into(),
                    message: error.condition_message(),
                },
                generation,
                now,
            ));
            write_status(d.client(), object.as_ref(), current, &wanted).await?;
            Ok(Action::await_change())
        }
        Err(Failure::Transient(error)) => {
            let wanted = status(not_ready(
                existing,
                error.reason(),
                &error.condition_message(),
                generation,
                now,
            ));
            write_status(d.client(), object.as_ref(), current, &wanted).await?;
            Err(error)
        }
    }
}

fn stalled(
    existing: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    errors: &[FieldError],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    with_outcome(
        existing,
        &Outcome::Stalled {
            reason: "InvalidSpec".into(),
            message: spec_message(errors),
        },
        generation,
        now,
    )
}

/// Why a scan did not produce tags.
pub(crate) enum Failure {
    /// Only a change of the spec can help (the URL or an option is unusable).
    Invalid(Error),
    /// May heal by itself: back off and retry.
    Transient(Error),
}

/// Reads the credentials, builds the source and lists its tags.
async fn scan(
    d: &Discovery,
    object: &ChartSource,
    settings: &SourceSettings,
    now: Timestamp,
) -> Result<Scan, Failure> {
    let source_ref = SourceKey::of(object).to_string();
    let registry = |error: RegistryError| {
        Failure::Transient(Error::Registry {
            source_ref: source_ref.clone(),
            error,
        })
    };
    let source = build_source(d, object, settings).await?;
    let listed = source.list_tags().await;
    crate::metrics::Metrics::global().record_scan(match &listed {
        Ok(_) => crate::metrics::RESULT_SUCCESS,
        Err(e) => e.kind(),
    });
    let list = listed.map_err(registry)?;
    let seen = match merge_first_seen(d.tags.first_seen(), source.key(), &list, now) {
        Ok(seen) => seen,
        Err(never) => match never {},
    };
    Ok(Scan {
        uid: object.metadata.uid.clone(),
        generation: object.metadata.generation,
        location: source.key().to_owned(),
        time: now,
        tags: seen.into(),
    })
}

/// The registry source of a ChartSource, with the credentials and CA its Secrets hold: for a
/// scan, and for the VersionPolicy reconciler's digest lookups.
pub(crate) async fn build_source(
    d: &Discovery,
    object: &ChartSource,
    settings: &SourceSettings,
) -> Result<Source, Failure> {
    let namespace = object.namespace().unwrap_or_default();
    let source_ref = SourceKey::of(object).to_string();
    let secrets: Api<Secret> = Api::namespaced(d.client(), &namespace);
    let spec = &object.spec;

    let credentials = match &spec.secret_ref {
        None => Credentials::Anonymous,
        Some(r) => {
            let bytes = secret_value(
                &secrets,
                &source_ref,
                &r.name,
                DOCKER_CONFIG_KEY,
                "secretRef",
            )
            .await
            .map_err(Failure::Transient)?;
            let config = docker_config(&bytes, &namespace, &r.name).map_err(|detail| {
                Failure::Transient(Error::Secret {
                    source_ref: source_ref.clone(),
                    secret: r.name.clone(),
                    detail,
                })
            })?;
            Credentials::DockerConfig(Arc::new(config))
        }
    };
    let ca = match &spec.cert_secret_ref {
        None => None,
        Some(r) => Some(CaBundle::Pem(
            secret_value(&secrets, &source_ref, &r.name, CA_KEY, "certSecretRef")
                .await
                .map_err(Failure::Transient)?,
        )),
    };

    let mut options = SourceOptions {
        insecure: settings.insecure,
        ca,
        exclusions: spec.exclusion_list.clone(),
        base_dir: d.base_dir.clone(),
        ..SourceOptions::default()
    };
    if let Some(t) = settings.timeout.and_then(|t| Duration::try_from(t).ok()) {
        options.timeout = t;
    }
    let registry = |error: RegistryError| {
        let invalid = matches!(
            error,
            RegistryError::InvalidLocation { .. } | RegistryError::InvalidOption { .. }
        );
        let error = Error::Registry {
            source_ref: source_ref.clone(),
            error,
        };
        if invalid {
            Failure::Invalid(error)
        } else {
            Failure::Transient(error)
        }
    };
    Source::new(
        &d.registry,
        &spec.url,
        spec.chart.as_deref(),
        options,
        &credentials,
    )
    .map_err(registry)
}

/// Parses a `.dockerconfigjson` value. The error names the Secret, never its content: a JSON
/// type error quotes the offending value (`invalid type: string "…"`), which may be a
/// credential, so parse errors are reported by kind only.
pub fn docker_config(bytes: &[u8], namespace: &str, name: &str) -> Result<DockerConfig, String> {
    let origin = format!("Secret {namespace}/{name}");
    DockerConfig::from_json(bytes, &origin).map_err(|e| {
        match &e {
            RegistryError::Credentials { detail, .. }
                if detail.starts_with("not valid Docker config JSON") =>
            {
                format!(
                    "spec.secretRef: key {DOCKER_CONFIG_KEY} of Secret {name:?} is not a Docker config.json ({{\"auths\": {{\"host\": {{\"auth\": \"base64(user:password)\"}}}}}}); the parser's message is withheld because it may quote the Secret"
                )
            }
            other => format!("spec.secretRef: {other}"),
        }
    })
}

/// The bytes under `key` of Secret `name`; errors name the Secret and the key, never a value.
async fn secret_value(
    secrets: &Api<Secret>,
    source_ref: &str,
    name: &str,
    key: &str,
    field: &str,
) -> Result<Vec<u8>, Error> {
    let fail = |detail: String| Error::Secret {
        source_ref: source_ref.to_owned(),
        secret: name.to_owned(),
        detail,
    };
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|e| fail(format!("spec.{field}: reading Secret {name:?}: {e}")))?
        .ok_or_else(|| fail(format!("spec.{field}: Secret {name:?} not found")))?;
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| v.0.clone())
        .ok_or_else(|| {
            fail(format!(
                "spec.{field}: Secret {name:?} (type {}) has no key {key:?}",
                secret.type_.as_deref().unwrap_or("Opaque")
            ))
        })
}

/// Runs the ChartSource controller until `shutdown` resolves.
pub async fn run_sources(
    d: Arc<Discovery>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<ChartSource> = Api::all(d.client());
    crate::reconcile::lean_controller(api)
        .graceful_shutdown_on(shutdown)
        .run(
            crate::metrics::instrumented("ChartSource", reconcile_source),
            error_policy,
            d,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "ChartSource reconcile");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    // (last scan, uid, generation, ready, now, expected, reason)
    type Case<'a> = (
        Option<&'a Scan>,
        &'a str,
        i64,
        bool,
        &'a str,
        Option<Timestamp>,
        &'a str,
    );

    #[test]
    fn docker_config_errors_never_quote_the_secret() {
        let cases: &[(&str, Result<(), &str>, &str)] = &[
            (
                r#"{"auths": {"r.example": {"auth": "dXNlcjpzM2NyZXQ="}}}"#,
                Ok(()),
                "a well-formed config parses",
            ),
            (
                r#"{"auths": "s3cret-as-a-string"}"#,
                Err("is not a Docker config.json"),
                "a type error would quote the value: withheld",
            ),
            (
                "s3cret-not-json",
                Err("is not a Docker config.json"),
                "not JSON at all",
            ),
            (
                r#"{"auths": {"r.example": {"auth": "%%s3cret%%"}}}"#,
                Err("auth is not base64"),
                "a bad auth entry is named by its host, not its value",
            ),
        ];
        for (json, want, reason) in cases {
            let got = docker_config(json.as_bytes(), "ns", "regcred");
            match (got, want) {
                (Ok(_), Ok(())) => {}
                (Err(message), Err(part)) => {
                    assert!(message.contains(part), "{reason}: {message}");
                    assert!(
                        message.contains("regcred") || message.contains("ns/regcred"),
                        "{reason}: names the Secret: {message}"
                    );
                    assert!(!message.contains("s3cret"), "{reason}: leaks: {message}");
                }
                (got, want) => panic!("{reason}: got {:?}, want {want:?}", got.map(|_| ())),
            }
        }
    }

    #[test]
    fn scans_when_due_and_not_before() {
        let last = Scan {
            uid: Some("u1".into()),
            generation: Some(2),
            location: "oci://r/app".into(),
            time: ts("2026-01-01T10:00:00Z"),
            tags: Arc::from(Vec::new()),
        };
        let interval = SignedDuration::from_mins(10);
        let later = ts("2026-01-01T10:10:00Z");
        let cases: &[Case<'_>] = &[
            (
                None,
                "u1",
                2,
                true,
                "2026-01-01T10:01:00Z",
                None,
                "never scanned in this process: scan now",
            ),
            (
                Some(&last),
                "u1",
                2,
                true,
                "2026-01-01T10:01:00Z",
                Some(later),
                "scanned a minute ago: wait for the interval, not polling",
            ),
            (
                Some(&last),
                "u1",
                2,
                true,
                "2026-01-01T10:10:00Z",
                None,
                "the interval has passed: scan",
            ),
            (
                Some(&last),
                "u1",
                3,
                true,
                "2026-01-01T10:01:00Z",
                None,
                "the spec changed: scan now",
            ),
            (
                Some(&last),
                "u2",
                2,
                true,
                "2026-01-01T10:01:00Z",
                None,
                "a new object of the same name: scan now",
            ),
            (
                Some(&last),
                "u1",
                2,
                false,
                "2026-01-01T10:01:00Z",
                None,
                "the last attempt failed: retry (the error backoff paces it)",
            ),
        ];
        for (scan, uid, generation, ready, now, expected, reason) in cases {
            assert_eq!(
                next_scan(
                    *scan,
                    Some(uid),
                    Some(*generation),
                    *ready,
                    interval,
                    ts(now)
                ),
                *expected,
                "{reason}"
            );
        }
    }
}
