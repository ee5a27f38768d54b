//! What the ChartSource and VersionPolicy reconcilers share: the [`Discovery`] context (the
//! controller [`Context`], the tag cache, one registry client), their error type, status
//! writing and the entry point that runs both controllers.
//!
//! Why it is shaped this way:
//! - The two reconcilers are coupled only through the in-memory [`TagCache`]: the source
//!   reconciler fills it *before* writing the source's status, and the policy controller watches
//!   ChartSources, so by the time a policy reconciles because its source's status changed, the
//!   new tags are in the cache. [`run_discovery`] runs both over one context; [`Discovery`] is
//!   public so a binary can also run them separately (sharing one `Arc<Discovery>`).
//! - One registry [`upkeep_registry::Client`] for all sources keeps connections per registry
//!   host bounded, however many ChartSources point at it.
//! - Errors name the object and never carry Secret contents: the registry crate's errors name
//!   server and request only, and a Secret is referred to by its name.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use upkeep_registry::RegistryError;

use crate::conditions::{Outcome, with_outcome};
use crate::reconcile::Context;
use crate::tags::TagCache;

/// How long a failed reconcile waits before the next try, by default.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The context of the discovery reconcilers.
pub struct Discovery {
    /// The Kubernetes client and the clock.
    pub ctx: Arc<Context>,
    /// Tags of every scanned source (see [`TagCache`]).
    pub tags: Arc<TagCache>,
    /// Shared registry client: connection pools, per-host limits, token cache.
    pub registry: upkeep_registry::Client,
    /// Relative `oci-layout:` directories resolve against this; `None`: the working directory.
    pub base_dir: Option<PathBuf>,
    /// The wait after a transient failure (registry down, Secret missing, API error).
    pub retry_after: Duration,
    /// `reportingInstance` of Events (the pod name); `None`: the controller name.
    pub instance: Option<String>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("sources", &self.tags.len())
            .field("base_dir", &self.base_dir)
            .field("retry_after", &self.retry_after)
            .finish_non_exhaustive()
    }
}

impl Discovery {
    /// A context with an empty cache, a default registry client, the working directory as the
    /// base of relative layouts and a retry after [`DEFAULT_RETRY_AFTER`].
    pub fn new(ctx: Arc<Context>) -> Self {
        upkeep_registry::install_crypto_provider();
        Discovery {
            ctx,
            tags: Arc::new(TagCache::new()),
            registry: upkeep_registry::Client::new(upkeep_registry::ClientConfig::default()),
            base_dir: None,
            retry_after: DEFAULT_RETRY_AFTER,
            instance: None,
        }
    }

    #[must_use]
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = wait;
        self
    }

    #[must_use]
    pub fn with_base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    #[must_use]
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// The controller's clock.
    pub fn now(&self) -> Timestamp {
        (self.ctx.now)()
    }

    pub fn client(&self) -> kube::Client {
        self.ctx.client.clone()
    }
}

/// A failure the controller backs off from and retries. Variant names are stable (metric
/// labels); no variant carries Secret contents.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the status of {kind} {namespace}/{name}: {source}")]
    WriteStatus {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading {kind} {namespace}/{name}: {source}")]
    Read {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// A Secret a ChartSource refers to is missing or unusable.
    #[error("ChartSource {source_ref}: {detail}")]
    Secret {
        source_ref: String,
        /// The name of the Secret, never its content.
        secret: String,
        detail: String,
    },
    /// Listing the tags failed.
    #[error("ChartSource {source_ref}: {error}")]
    Registry {
        source_ref: String,
        #[source]
        error: RegistryError,
    },
    #[error("serialising a status: {0}")]
    Serialise(#[from] serde_json::Error),
}

impl Error {
    /// The stable reason of a Ready=False condition for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::WriteStatus { .. } => "WriteStatusFailed",
            Error::Read { .. } => "ReadFailed",
            Error::Secret { .. } => "SecretUnavailable",
            Error::Registry { error, .. } => error.kind(),
            Error::Serialise(_) => "SerialiseFailed",
        }
    }

    /// A suggestion for fixing the problem, where one exists.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Secret { secret, .. } => Some(format!(
                "create Secret {secret} of type kubernetes.io/dockerconfigjson (for secretRef, key .dockerconfigjson) or with key ca.crt (for certSecretRef) in the ChartSource's namespace"
            )),
            Error::Registry { error, .. } => error.hint(),
            Error::Read { .. } | Error::WriteStatus { .. } => {
                Some("check the controller's RBAC and that the API server is reachable".to_owned())
            }
            Error::Serialise(_) => None,
        }
    }

    /// The message of a condition: the error and its hint.
    pub fn condition_message(&self) -> String {
        match self.hint() {
            Some(h) => format!("{self} (hint: {h})"),
            None => self.to_string(),
        }
    }
}

/// Transient errors back off for [`Discovery::retry_after`] before the object is tried again.
#[allow(clippy::needless_pass_by_value)] // the signature `Controller::run` expects
pub fn error_policy<K>(_object: Arc<K>, error: &Error, d: Arc<Discovery>) -> Action {
    tracing::warn!(%error, reason = error.reason(), "discovery reconcile failed; retrying");
    Action::requeue(d.retry_after)
}

/// `Ready=False` with `Reconciling=True`: something outside the spec is wrong (a registry, a
/// Secret, a source not scanned yet) and may heal by itself, so the object is in progress.
pub fn not_ready(
    existing: &[Condition],
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    with_outcome(
        existing,
        &Outcome::Retrying {
            reason: reason.to_owned(),
            message: message.to_owned(),
        },
        generation,
        now,
    )
}

/// The message of an invalid spec: every field error with its hint.
pub fn spec_message(errors: &[upkeep_api::FieldError]) -> String {
    errors
        .iter()
        .map(|e| match &e.hint {
            Some(h) => format!("{}: {} (hint: {h})", e.path, e.message),
            None => format!("{}: {}", e.path, e.message),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub use crate::reconcile::until;

/// Writes `wanted` as the object's status with a merge patch, only when it differs from
/// `current`. Returns whether it wrote.
pub(crate) async fn write_status<K, S>(
    client: kube::Client,
    object: &K,
    current: Option<&S>,
    wanted: &S,
) -> Result<bool, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: Serialize,
{
    let current = serde_json::to_value(current)?;
    let wanted = crate::reconcile::redacted_status(serde_json::to_value(Some(wanted))?);
    if current == wanted {
        return Ok(false);
    }
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let api: Api<K> = Api::namespaced(client, &namespace);
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({
            "status": crate::reconcile::status_patch(&current, &wanted)
        })),
    )
    .await
    .map_err(|source| Error::WriteStatus {
        kind: kind_of::<K>(),
        namespace,
        name,
        source,
    })?;
    Ok(true)
}

/// The kind of a typed resource, as a `'static` name for errors.
fn kind_of<K: Resource<DynamicType = ()>>() -> &'static str {
    match K::kind(&()).as_ref() {
        "ChartSource" => "ChartSource",
        "VersionPolicy" => "VersionPolicy",
        _ => "object",
    }
}

/// Runs the ChartSource and VersionPolicy controllers over one shared [`Discovery`] until
/// `shutdown` resolves.
pub async fn run_discovery(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    run_discovery_with(Arc::new(Discovery::new(ctx)), shutdown).await;
}

/// [`run_discovery`] with a prepared context (a base directory, a retry interval, …).
pub async fn run_discovery_with(
    discovery: Arc<Discovery>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = shutdown.shared();
    futures_util::future::join(
        crate::source::run_sources(Arc::clone(&discovery), shutdown.clone()),
        crate::policy::run_policies(discovery, shutdown),
    )
    .await;
}
