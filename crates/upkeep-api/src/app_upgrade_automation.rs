//! `AppUpgradeAutomation`: writes app versions into Git.
//!
//! Shaped after Flux's `ImageUpdateAutomation` (`git.commit`, `git.push`, `update.path`,
//! `policySelector`), flattened one level because upkeep has no separate GitRepository source:
//! the repository is named here.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::common::{self, LocalRef};

fn default_interval() -> String {
    "10m".to_owned()
}

/// The repository, the files in it and how changes are committed and pushed.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "upkeep.dev",
    version = "v1alpha1",
    kind = "AppUpgradeAutomation",
    doc = "Writes allowed app versions into a Git repository.",
    namespaced,
    status = "AppUpgradeAutomationStatus",
    shortname = "aua",
    category = "upkeep",
    printcolumn = r#"{"name":"Last Run","type":"date","jsonPath":".status.lastRun"}"#,
    printcolumn = r#"{"name":"Last Commit","type":"string","jsonPath":".status.lastPushCommit"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppUpgradeAutomationSpec {
    /// The repository to write to.
    pub git: GitSpec,
    /// Directory in the repository to scan for markers, relative (default: the root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Which `VersionPolicy` objects (by their labels) may be written by this automation;
    /// default: every policy the markers name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_selector: Option<LabelSelector>,
    /// The commit written: author, message, signing.
    pub commit: CommitSpec,
    /// Where the commit is pushed (default: the checked-out branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushSpec>,
    /// A MaintenanceSchedule in the same namespace: write only in allowed time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_ref: Option<LocalRef>,
    /// How often to run, Go duration (default `10m`).
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Stop writing until set back to false; every field it owns is held.
    #[serde(default)]
    pub suspend: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitSpec {
    /// The repository URL (`https://…`, `ssh://…`, `file://…`).
    pub url: String,
    /// What to check out: at most one of `branch`, `tag`, `commit` (default: the remote's
    /// default branch).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<GitRef>,
    /// A Secret in the same namespace holding the repository's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalRef>,
}

/// At most one of the three; none means the remote's default branch.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitRef {
    /// A branch name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// A tag name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// A commit hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommitSpec {
    /// The commit's author (and committer).
    pub author: Author,
    /// A minijinja template of the commit message over `changes`, `files`, `automation` and
    /// `values`; an undefined name is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template: Option<String>,
    /// Extra values for the template (`values` in upkeep's templates, `.Values` in the Go
    /// templates of automations read from Flux's `ImageUpdateAutomation`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub message_template_values: BTreeMap<String, String>,
    /// An OpenPGP key to sign commits with (not supported yet: a warning says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<SigningKey>,
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Author {
    /// The author's name.
    pub name: String,
    /// The author's email address.
    pub email: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SigningKey {
    /// The Secret holding the key.
    pub secret_ref: LocalRef,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PushSpec {
    /// Push to this branch instead of the checked-out one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Also push the new commit with this Git refspec, as Flux's `spec.git.push.refspec`:
    /// `<src>:<dst>` where `<src>` is the push branch (`refs/heads/<branch>`, `<branch>` or
    /// `HEAD`) and `<dst>` a full ref (`refs/heads/…`, Gerrit's `refs/for/…`); a leading `+`
    /// forces. Pushed only when there is a new commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refspec: Option<String>,
    /// Open (then update) one pull request from `branch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PullRequestSpec {
    /// The forge: `github`, `gitlab` or `gitea`.
    pub provider: Provider,
    /// The pull request's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Labels put on the pull request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// The provider's API base, for self-hosted instances whose API is not where the Git
    /// URL's host suggests (default: derived from `spec.git.url`, e.g. `https://api.github.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// API token; default: the git secret's `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalRef>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Github,
    Gitlab,
    Gitea,
}

/// What the last runs wrote.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppUpgradeAutomationStatus {
    /// When the automation last ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<Time>,
    /// The last commit pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_commit: Option<String>,
    /// The pull request carrying the changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestStatus>,
    /// `namespace/policy` → the version last written for it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub observed_policies: BTreeMap<String, String>,
    /// `Ready`, `Reconciling`, `Stalled`, as kstatus reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestStatus {
    /// The pull request's web address.
    pub url: String,
    /// The pull request's number.
    pub number: u64,
}

/// A `push.refspec` taken apart: where the new commit also goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRefspec {
    /// The full destination ref (`refs/heads/auto`, `refs/for/main`).
    pub destination: String,
    /// A leading `+`: the destination is overwritten even when it is not an ancestor.
    pub force: bool,
}

impl PushRefspec {
    /// Parses `refspec` for an automation whose commits go to `push_branch` (`None`: not known
    /// before the run, e.g. the checkout's current branch).
    pub fn parse(refspec: &str, push_branch: Option<&str>) -> Result<Self, FieldError> {
        let e = |m: String| {
            Err(FieldError::new("spec.push.refspec", m).with_hint(Some(
                "write <push branch>:<destination ref>, e.g. refs/heads/auto:refs/heads/main or HEAD:refs/for/main",
            )))
        };
        let (force, rest) = match refspec.strip_prefix('+') {
            Some(r) => (true, r),
            None => (false, refspec),
        };
        let Some((src, dst)) = rest.split_once(':') else {
            return e(format!("refspec {refspec:?} has no `:`"));
        };
        let src_ok = src == "HEAD"
            || push_branch.is_none_or(|b| src == b || src.strip_prefix("refs/heads/") == Some(b));
        if !src_ok {
            return e(format!(
                "refspec {refspec:?}: its source must be the branch upkeep commits to ({})",
                push_branch.unwrap_or("HEAD")
            ));
        }
        let valid_ref = dst.starts_with("refs/")
            && !dst.contains("..")
            && !dst.ends_with('/')
            && !dst.chars().any(|c| {
                c.is_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
            });
        if !valid_ref {
            return e(format!(
                "refspec {refspec:?}: the destination must be a full ref name (refs/…)"
            ));
        }
        Ok(Self {
            destination: dst.to_owned(),
            force,
        })
    }
}

impl AppUpgradeAutomation {
    /// The branch this automation's commits go to, when the spec says (`push.branch`, else
    /// `git.ref.branch`).
    pub fn push_branch(&self) -> Option<&str> {
        self.spec
            .push
            .as_ref()
            .and_then(|p| p.branch.as_deref())
            .or_else(|| {
                self.spec
                    .git
                    .reference
                    .as_ref()
                    .and_then(|r| r.branch.as_deref())
            })
    }

    /// The parsed `push.refspec`, if any.
    pub fn push_refspec(&self) -> Option<Result<PushRefspec, FieldError>> {
        let refspec = self.spec.push.as_ref()?.refspec.as_deref()?;
        Some(PushRefspec::parse(refspec, self.push_branch()))
    }

    /// Validates the spec.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        common::check_name(&self.metadata, &mut errors);
        let spec = &self.spec;
        if spec.git.url.trim().is_empty() {
            errors.push(
                FieldError::new("spec.git.url", "empty repository URL").with_hint(Some(
                    "e.g. https://github.com/org/fleet.git or file:///srv/git/fleet",
                )),
            );
        }
        if let Some(r) = &spec.git.reference {
            let given = [&r.branch, &r.tag, &r.commit]
                .iter()
                .filter(|x| x.is_some())
                .count();
            if given > 1 {
                errors.push(
                    FieldError::new(
                        "spec.git.ref",
                        "more than one of branch, tag and commit given",
                    )
                    .with_hint(Some("give one of branch, tag or commit")),
                );
            }
        }
        if let Some(path) = &spec.path {
            let p = Path::new(path);
            if p.is_absolute() || path.starts_with('/') {
                errors.push(
                    FieldError::new(
                        "spec.path",
                        format!("path {path:?} must be relative to the repository root"),
                    )
                    .with_hint(Some("e.g. ./clusters/production")),
                );
            } else if p.components().any(|c| c == Component::ParentDir) {
                errors.push(
                    FieldError::new("spec.path", format!("path {path:?} must not contain .."))
                        .with_hint(Some("paths stay inside the repository")),
                );
            }
        }
        if spec.commit.author.email.trim().is_empty() {
            errors.push(FieldError::new(
                "spec.commit.author.email",
                "empty author email",
            ));
        }
        if spec.commit.author.name.trim().is_empty() {
            errors.push(FieldError::new(
                "spec.commit.author.name",
                "empty author name",
            ));
        }
        if let Some(Err(e)) = self.push_refspec() {
            errors.push(e);
        }
        common::duration("spec.interval", &spec.interval, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}
