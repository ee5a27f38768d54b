//! What the ChartSource and VersionPolicy kinds share: the [`Discovery`] context (the
//! controller [`Context`], the tag cache, one registry client) and the way a ChartSource
//! becomes a registry [`Source`] with the credentials and CA its Secrets hold.
//!
//! Why it is shaped this way:
//! - The two kinds are coupled only through the in-memory [`TagCache`]: the source
//!   reconciler fills it *before* writing the source's status, and the policy controller watches
//!   ChartSources, so by the time a policy reconciles because its source's status changed, the
//!   new tags are in the cache. `controllers::run_discovery` runs both over one context.
//! - Scan requests ([`ScanRequests`], from registry push notifications) belong to the process,
//!   not to a leadership term: the context holds the process's one set.
//! - One registry [`upkeep_registry::Client`] for all sources keeps connections per registry
//!   host bounded, however many ChartSources point at it.
//! - Credentials are read from the Secret on every use (a rotated Secret is picked up without a
//!   restart) and go only to the registry client; errors name the Secret, never its content.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use upkeep_api::ChartSource;
use upkeep_api::chart_source::SourceSettings;
use upkeep_registry::{CaBundle, Credentials, DockerConfig, RegistryError, Source, SourceOptions};

use crate::framework::{Context, Error, SecretProblem, Shared};
use crate::scan_requests::ScanRequests;
use crate::tags::{SourceKey, TagCache};

/// The key of a `kubernetes.io/dockerconfigjson` Secret.
pub const DOCKER_CONFIG_KEY: &str = ".dockerconfigjson";
/// The key of the CA certificate in a `certSecretRef` Secret.
pub const CA_KEY: &str = "ca.crt";

/// The context of the discovery reconcilers.
pub struct Discovery {
    /// The Kubernetes client, the clock, the metrics, the retry interval.
    pub ctx: Arc<Context>,
    /// Tags of every scanned source (see [`TagCache`]).
    pub tags: Arc<TagCache>,
    /// Shared registry client: connection pools, per-host limits, token cache.
    pub registry: upkeep_registry::Client,
    /// Relative `oci-layout:` directories resolve against this; `None`: the working directory.
    pub base_dir: Option<PathBuf>,
    /// The last `NewVersion` note published per VersionPolicy (by uid): a reconcile that
    /// starts before the cache shows the status just written decides "changed" again from the
    /// stale object, and must not publish the same Event twice.
    pub announced: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Requests for an immediate scan (registry push notifications); shared with the
    /// process's receiver, so it outlives this context.
    pub requests: Arc<ScanRequests>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("sources", &self.tags.len())
            .field("base_dir", &self.base_dir)
            .finish_non_exhaustive()
    }
}

impl Shared for Discovery {
    fn context(&self) -> &Context {
        &self.ctx
    }
}

impl Discovery {
    /// A context with an empty cache, a default registry client and the working directory as
    /// the base of relative layouts.
    pub fn new(ctx: Arc<Context>) -> Self {
        upkeep_registry::install_crypto_provider();
        Discovery {
            ctx,
            tags: Arc::new(TagCache::new()),
            registry: upkeep_registry::Client::new(upkeep_registry::ClientConfig::default()),
            base_dir: None,
            announced: std::sync::Mutex::default(),
            requests: Arc::new(ScanRequests::new()),
        }
    }

    /// Whether `note` is new for the policy `uid` (and remembers it): the same note twice in a
    /// row is the stale-cache repeat described at [`Discovery::announced`].
    pub fn first_announcement(&self, uid: &str, note: &str) -> bool {
        let mut seen = self
            .announced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        first_in(&mut seen, uid, note)
    }

    /// The same, with `wait` after a transient failure.
    #[must_use]
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.ctx = Arc::new(self.ctx.as_ref().clone().with_retry_after(wait));
        self
    }

    /// The same, answering the scan requests of `requests` (the process's receiver fills it).
    #[must_use]
    pub fn with_scan_requests(mut self, requests: Arc<ScanRequests>) -> Self {
        self.requests = requests;
        self
    }

    #[must_use]
    pub fn with_base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// The controller's clock.
    pub fn now(&self) -> Timestamp {
        self.ctx.now()
    }

    pub fn client(&self) -> kube::Client {
        self.ctx.client()
    }
}

/// Why a ChartSource could not be made into a registry source, or scanned.
#[derive(Debug)]
pub enum Failure {
    /// Only a change of the spec can help (the URL or an option is unusable).
    Invalid(Error),
    /// May heal by itself: back off and retry.
    Transient(Error),
}

impl Failure {
    /// The error, whichever kind of failure it is.
    pub fn into_error(self) -> Error {
        match self {
            Failure::Invalid(e) | Failure::Transient(e) => e,
        }
    }
}

/// The registry source of a ChartSource, with the credentials and CA its Secrets hold: for a
/// scan, and for the VersionPolicy reconciler's digest lookups.
pub async fn build_source(
    d: &Discovery,
    object: &ChartSource,
    settings: &SourceSettings,
) -> Result<Source, Failure> {
    let source_ref = SourceKey::of(object).to_string();
    let spec = &object.spec;
    let credentials = credentials(d, object).await.map_err(Failure::Transient)?;
    let secrets = secrets_of(d, object);
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
    Source::new(
        &d.registry,
        &spec.url,
        spec.chart.as_deref(),
        options,
        &credentials,
    )
    .map_err(|error| registry_failure(&source_ref, error))
}

fn secrets_of(d: &Discovery, object: &ChartSource) -> Api<Secret> {
    Api::namespaced(d.client(), &object.namespace().unwrap_or_default())
}

/// A registry error while building a source: an unusable location or option only a spec
/// change can fix, anything else transient.
fn registry_failure(source_ref: &str, error: RegistryError) -> Failure {
    let invalid = matches!(
        error,
        RegistryError::InvalidLocation { .. } | RegistryError::InvalidOption { .. }
    );
    let error = Error::Registry {
        source_ref: source_ref.to_owned(),
        error,
    };
    if invalid {
        Failure::Invalid(error)
    } else {
        Failure::Transient(error)
    }
}

/// The credentials of `spec.secretRef` (anonymous without one).
async fn credentials(d: &Discovery, object: &ChartSource) -> Result<Credentials, Error> {
    let Some(r) = &object.spec.secret_ref else {
        return Ok(Credentials::Anonymous);
    };
    let source_ref = SourceKey::of(object).to_string();
    let bytes = secret_value(
        &secrets_of(d, object),
        &source_ref,
        &r.name,
        DOCKER_CONFIG_KEY,
        "secretRef",
    )
    .await?;
    let namespace = object.namespace().unwrap_or_default();
    let config = docker_config(&bytes, &namespace, &r.name).map_err(|problem| Error::Secret {
        source_ref: Some(source_ref),
        field: "secretRef",
        name: r.name.clone(),
        problem: Box::new(problem),
    })?;
    Ok(Credentials::DockerConfig(Arc::new(config)))
}

/// Parses a `.dockerconfigjson` value. The error never quotes the content: a JSON type error
/// quotes the offending value (`invalid type: string "…"`), which may be a credential, so
/// parse errors are reported by kind only.
pub fn docker_config(
    bytes: &[u8],
    namespace: &str,
    name: &str,
) -> Result<DockerConfig, SecretProblem> {
    let origin = format!("Secret {namespace}/{name}");
    DockerConfig::from_json(bytes, &origin).map_err(|e| match e {
        RegistryError::Credentials { detail, .. }
            if detail.starts_with("not valid Docker config JSON") =>
        {
            SecretProblem::NotDockerConfig {
                key: DOCKER_CONFIG_KEY,
            }
        }
        other => SecretProblem::DockerConfig(other),
    })
}

/// The bytes under `key` of Secret `name`; errors name the Secret and the key, never a value.
async fn secret_value(
    secrets: &Api<Secret>,
    source_ref: &str,
    name: &str,
    key: &str,
    field: &'static str,
) -> Result<Vec<u8>, Error> {
    let fail = |problem: SecretProblem| Error::Secret {
        source_ref: Some(source_ref.to_owned()),
        field,
        name: name.to_owned(),
        problem: Box::new(problem),
    };
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|e| fail(SecretProblem::Unreadable(e)))?
        .ok_or_else(|| fail(SecretProblem::NotFound))?;
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| v.0.clone())
        .ok_or_else(|| {
            fail(SecretProblem::MissingKey {
                key: key.to_owned(),
                type_: secret.type_.clone().unwrap_or_else(|| "Opaque".to_owned()),
            })
        })
}

/// [`Discovery::first_announcement`] over the map of last notes.
fn first_in(seen: &mut std::collections::HashMap<String, String>, uid: &str, note: &str) -> bool {
    if seen.get(uid).is_some_and(|n| n == note) {
        return false;
    }
    seen.insert(uid.to_owned(), note.to_owned());
    true
}

#[cfg(test)]
mod tests {

    /// A NewVersion note is published once per change: the same note again right after (a
    /// reconcile on the stale cached object) is not; a new note, or another policy, is.
    #[test]
    fn an_announcement_is_published_once_per_change() {
        let mut seen = std::collections::HashMap::new();
        let cases = [
            (
                "u1",
                "p: 1.0.0 (first selection)",
                true,
                "first note of a policy",
            ),
            (
                "u1",
                "p: 1.0.0 (first selection)",
                false,
                "the stale-cache repeat",
            ),
            (
                "u2",
                "p: 1.0.0 (first selection)",
                true,
                "another policy (uid)",
            ),
            ("u1", "p: 1.0.0 → 1.1.0", true, "a real change"),
            ("u1", "p: 1.0.0 → 1.1.0", false, "its repeat"),
            ("u1", "p: 1.1.0 → 1.0.0", true, "back again is a change"),
        ];
        for (uid, note, want, reason) in cases {
            assert_eq!(super::first_in(&mut seen, uid, note), want, "{reason}");
        }
    }

    use super::*;

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
            // The message as a status shows it: the problem within the source's error.
            let got = docker_config(json.as_bytes(), "ns", "regcred").map_err(|problem| {
                Error::Secret {
                    source_ref: Some("ns/charts".into()),
                    field: "secretRef",
                    name: "regcred".into(),
                    problem: Box::new(problem),
                }
                .to_string()
            });
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
}
