//! The one error of every reconciler: a failure the controller backs off from and retries.
//!
//! Why it is shaped this way:
//! - Variant names are the `error` label of `upkeep_reconcile_errors_total` ([`ErrorLabel`]),
//!   so they are few, stable and say what failed, never which object.
//! - Sources are typed (`kube::Error`, `RegistryError`, `GitError`, `PrError`, …), so callers
//!   can match on them and `hint()` can read them; nothing is flattened into a `String` here
//!   except what an upstream API hands over as text (a policy selector's message).
//! - No variant carries Secret contents: a Secret is named, and its parse errors are reported
//!   by kind only ([`SecretProblem::NotDockerConfig`]).

use std::path::PathBuf;

use upkeep_git::{GitError, PrError, TemplateError};
use upkeep_registry::RegistryError;

use crate::metrics::ErrorLabel;

/// A transient failure: the controller writes what it can into status, backs off and retries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the status of {kind} {object}: {source}")]
    WriteStatus {
        kind: &'static str,
        /// `namespace/name`.
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading {kind} {object}: {source}")]
    Read {
        kind: &'static str,
        /// `namespace/name`.
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading {what}: {source}")]
    List {
        /// What was listed, e.g. `VersionPolicies`.
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("creating {kind} {object}: {source}")]
    Create {
        kind: &'static str,
        /// `namespace/name`.
        object: String,
        #[source]
        source: kube::Error,
    },
    /// A Secret an object refers to is missing or unusable. `source_ref`: the ChartSource it
    /// belongs to (the message then names the source and the field).
    #[error("{}", secret_message(source_ref.as_deref(), field, name, problem))]
    Secret {
        source_ref: Option<String>,
        /// The spec field that names the Secret (`secretRef`, `certSecretRef`, …).
        field: &'static str,
        /// The name of the Secret, never its content.
        name: String,
        #[source]
        problem: Box<SecretProblem>,
    },
    /// Listing the tags or reading a digest failed.
    #[error("ChartSource {source_ref}: {error}")]
    Registry {
        source_ref: String,
        #[source]
        error: RegistryError,
    },
    /// A Git operation failed (the message carries the Git error's hint).
    #[error("{}", with_hint(source))]
    Git {
        #[source]
        source: GitError,
    },
    #[error("creating {}: {source}", path.display())]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{source}")]
    Template {
        #[source]
        source: TemplateError,
    },
    /// The automation's scope could not be built (e.g. a `policySelector` that does not
    /// compile); upkeep-git reports it as text.
    #[error("{message}")]
    Scope { message: String },
    #[error("push.refspec: {}: {}", field.path, field.message)]
    Refspec { field: upkeep_api::FieldError },
    #[error("push.refspec: the remote refused {destination}: {reason}")]
    RefspecRejected { destination: String, reason: String },
    #[error("push.refspec: {}", with_hint(source))]
    RefspecPush {
        #[source]
        source: GitError,
    },
    #[error("pull request: {source}")]
    PullRequest {
        #[source]
        source: Box<PrError>,
    },
    /// `spec`: where the Git settings are (`spec`, or `spec.gitOps` for a ClusterUpgrade).
    #[error(
        "pull request: no token: set {spec}.push.pullRequest.secretRef (key `token`) or {spec}.git.secretRef (key `password`)"
    )]
    NoToken { spec: &'static str },
    #[error("pull request: {spec}.push.pullRequest.apiUrl {url:?}: {source}")]
    ApiUrl {
        spec: &'static str,
        url: String,
        #[source]
        source: url::ParseError,
    },
    /// A Git task (a blocking thread) ended without an answer.
    #[error("the Git work ended unexpectedly: {source}")]
    Join {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("patching the version of Cluster {cluster} to {target}: {source}")]
    PatchCluster {
        /// `namespace/name`.
        cluster: String,
        target: String,
        #[source]
        source: kube::Error,
    },
    /// A cluster that is an App: its App or values ConfigMap could not be written. `source` is
    /// a `cluster_app::AppError` (boxed as a trait object: the framework does not depend on
    /// the shared modules); `conflict` and `hint` are read from it when it is made.
    #[error("upgrading Cluster {cluster} to {target}: {source}")]
    ClusterApp {
        /// `namespace/name`.
        cluster: String,
        target: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
        /// A concurrent change, retried until the attempts ran out.
        conflict: bool,
        hint: Option<String>,
    },
    #[error("updating {kind} {object}: {source}")]
    Update {
        kind: &'static str,
        /// `namespace/name`.
        object: String,
        #[source]
        source: kube::Error,
    },
    /// A ClusterUpgradeRecord's name stayed taken by another object after every attempt.
    #[error("creating ClusterUpgradeRecord {object}: the name stays taken by another record")]
    RecordTaken {
        /// `namespace/name`.
        object: String,
    },
    #[error("deleting {kind} {object}: {source}")]
    Delete {
        kind: &'static str,
        /// `namespace/name`.
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("removing the scheduled-upgrade annotations of Cluster {cluster}: {source}")]
    PatchAnnotations {
        /// `namespace/name`.
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error("the Cluster watch stopped")]
    ClustersNotWatched,
    /// `trigger: GitOps`: the repository write or the pull request failed.
    #[error("GitOps: {source}")]
    GitOps {
        #[source]
        source: Box<Error>,
    },
    #[error("trigger GitOps without spec.gitOps")]
    NoGitOpsSpec,
    /// Writing the cluster versions into the repository failed.
    #[error("{}", match source.hint() { Some(h) => format!("{source} (hint: {h})"), None => source.to_string() })]
    ClusterWrite {
        #[source]
        source: Box<upkeep_git::clusters::ClusterWriteError>,
    },
    #[error("serialising a status: {0}")]
    Serialise(#[from] serde_json::Error),
}

impl ErrorLabel for Error {}

/// What is wrong with a Secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretProblem {
    #[error("cannot be read: {0}")]
    Unreadable(#[source] kube::Error),
    #[error("not found")]
    NotFound,
    #[error("has no key {key:?}")]
    MissingKey {
        key: String,
        /// The Secret's `type`.
        type_: String,
    },
    /// Not a Docker config.json; the parser's message is withheld (it may quote the Secret).
    #[error("is not a Docker config.json")]
    NotDockerConfig {
        /// The Secret key that holds it (`.dockerconfigjson`).
        key: &'static str,
    },
    #[error("{0}")]
    DockerConfig(#[source] RegistryError),
    #[error("writing the SSH key for ssh: {0}")]
    WriteKey(#[source] std::io::Error),
}

fn with_hint(e: &GitError) -> String {
    match e.hint() {
        Some(h) => format!("{e} (hint: {h})"),
        None => e.to_string(),
    }
}

/// A ChartSource's Secret errors name the source and the field (`ChartSource ns/x:
/// spec.secretRef: Secret "s" not found`); others name the Secret (`Secret s: not found`).
fn secret_message(
    source_ref: Option<&str>,
    field: &str,
    name: &str,
    problem: &SecretProblem,
) -> String {
    let Some(source_ref) = source_ref else {
        return format!("Secret {name}: {problem}");
    };
    let detail = match problem {
        SecretProblem::Unreadable(e) => format!("spec.{field}: reading Secret {name:?}: {e}"),
        SecretProblem::NotFound => format!("spec.{field}: Secret {name:?} not found"),
        SecretProblem::MissingKey { key, type_ } => {
            format!("spec.{field}: Secret {name:?} (type {type_}) has no key {key:?}")
        }
        SecretProblem::NotDockerConfig { key } => format!(
            "spec.{field}: key {key} of Secret {name:?} is not a Docker config.json ({{\"auths\": {{\"host\": {{\"auth\": \"base64(user:password)\"}}}}}}); the parser's message is withheld because it may quote the Secret"
        ),
        other => format!("spec.{field}: {other}"),
    };
    format!("ChartSource {source_ref}: {detail}")
}

impl Error {
    /// The stable reason of a `Ready=False` condition for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::WriteStatus { .. } => "WriteStatusFailed",
            Error::Read { .. } => "ReadFailed",
            Error::List { .. }
            | Error::Create { .. }
            | Error::Update { .. }
            | Error::RecordTaken { .. }
            | Error::Delete { .. } => "ApiError",
            Error::Secret { .. } => "SecretUnavailable",
            Error::Registry { error, .. } => error.kind(),
            Error::Git { .. }
            | Error::WorkDir { .. }
            | Error::Template { .. }
            | Error::Scope { .. }
            | Error::Refspec { .. }
            | Error::RefspecRejected { .. }
            | Error::RefspecPush { .. }
            | Error::Join { .. } => "GitError",
            Error::PullRequest { .. } | Error::NoToken { .. } | Error::ApiUrl { .. } => {
                "PullRequestError"
            }
            Error::PatchCluster { .. }
            | Error::ClusterApp { .. }
            | Error::PatchAnnotations { .. } => "PatchFailed",
            Error::ClustersNotWatched => "ClustersNotWatched",
            Error::GitOps { source } => source.reason(),
            Error::NoGitOpsSpec => "InvalidSpec",
            Error::ClusterWrite { source } => source.kind(),
            Error::Serialise(_) => "SerialiseFailed",
        }
    }

    /// A suggestion for fixing the problem, where one exists.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Secret {
                source_ref: Some(_),
                name,
                ..
            } => Some(format!(
                "create Secret {name} of type kubernetes.io/dockerconfigjson (for secretRef, key .dockerconfigjson) or with key ca.crt (for certSecretRef) in the ChartSource's namespace"
            )),
            Error::Registry { error, .. } => error.hint(),
            Error::ClusterApp { hint, .. } => hint.clone(),
            Error::Read { .. }
            | Error::WriteStatus { .. }
            | Error::List { .. }
            | Error::Create { .. }
            | Error::Update { .. } => {
                Some("check the controller's RBAC and that the API server is reachable".to_owned())
            }
            _ => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_variant_names_and_messages_name_the_secret_only() {
        let cases = [
            (
                Error::Secret {
                    source_ref: Some("default/charts".into()),
                    field: "secretRef",
                    name: "regcred".into(),
                    problem: Box::new(SecretProblem::NotFound),
                },
                "Secret",
                "ChartSource default/charts: spec.secretRef: Secret \"regcred\" not found",
                "a ChartSource's Secret names the source and the field",
            ),
            (
                Error::Secret {
                    source_ref: None,
                    field: "git.secretRef",
                    name: "git-creds".into(),
                    problem: Box::new(SecretProblem::MissingKey {
                        key: "token".into(),
                        type_: "Opaque".into(),
                    }),
                },
                "Secret",
                "Secret git-creds: has no key \"token\"",
                "a Git Secret is named by itself",
            ),
            (
                Error::NoToken { spec: "spec" },
                "NoToken",
                "pull request: no token: set spec.push.pullRequest.secretRef (key `token`) or spec.git.secretRef (key `password`)",
                "a unit variant",
            ),
            (
                Error::RefspecRejected {
                    destination: "refs/heads/x".into(),
                    reason: "non-fast-forward".into(),
                },
                "RefspecRejected",
                "push.refspec: the remote refused refs/heads/x: non-fast-forward",
                "the remote's reason is kept",
            ),
        ];
        for (error, label, message, why) in cases {
            assert_eq!(error.label(), label, "{why}");
            assert_eq!(error.to_string(), message, "{why}");
        }
    }
}
