//! Flux `ImageUpdateAutomation` (`image.toolkit.fluxcd.io` `v1beta2` and `v1`) read as an
//! [`AppUpgradeAutomation`], with the repository taken from the Flux `GitRepository`
//! (`source.toolkit.fluxcd.io` `v1` and `v1beta2`) its `spec.sourceRef` names.
//!
//! Why it is shaped this way:
//!
//! - **Two steps, because the repository lives in another object.** An automation's Git URL
//!   and default ref come from a `GitRepository` that is usually in another file (or, in the
//!   cluster, another object). [`ImageUpdateAutomation::prepare`] checks and converts
//!   everything the automation says by itself (errors located in its own file, named with
//!   Flux's field names); [`Prepared::complete`] adds the `GitRepository` once every file has
//!   been read. A missing or unusable `GitRepository` is an error on `spec.sourceRef` of that
//!   one automation: it holds that automation, not the run.
//! - **Lenient types, strict values**, as in [`crate::flux`]: unknown fields are ignored (Flux
//!   adds fields between releases), values upkeep acts on are checked, and values upkeep
//!   cannot honour (a tag, semver, name or commit checkout; `update.strategy` other than
//!   `Setters`; `push.options`; a `push.refspec` whose source is not the push branch) are
//!   errors naming the Flux field, never
//!   silently dropped: an automation that would write somewhere else than Flux does must not
//!   run.
//! - **Origin as annotations.** The converted object carries [`ORIGIN_ANNOTATION`] (so
//!   writers know `commit.messageTemplate` is a Go template, see [`is_flux`]) and
//!   [`NOTES_ANNOTATION`] for settings accepted but not acted on.
//! - **Flux's defaults.** No ref anywhere → branch `master` (source-controller's default);
//!   no `update` → `Setters` at the root; an author without a name → the email as the name
//!   (Git needs a name; Flux writes an empty one).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};

use crate::app_upgrade_automation::{
    AppUpgradeAutomationSpec, Author, CommitSpec, GitRef, GitSpec, PushSpec, SigningKey,
};
use crate::flux::{FluxLocalRef, NOTES_ANNOTATION, ORIGIN_ANNOTATION};
use crate::{AppUpgradeAutomation, FieldError, LocalRef};

/// The kind of [`crate::flux::GROUP`] read here.
pub const KIND: &str = "ImageUpdateAutomation";
/// The versions of `ImageUpdateAutomation` read.
pub const VERSIONS: [&str; 2] = ["v1beta2", "v1"];
/// The API group of Flux's `GitRepository`.
pub const SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";
/// The versions of `GitRepository` read.
pub const SOURCE_VERSIONS: [&str; 2] = ["v1", "v1beta2"];
/// The branch source-controller checks out when a `GitRepository` gives no ref.
pub const DEFAULT_BRANCH: &str = "master";

/// True when `object` was read from a Flux `ImageUpdateAutomation`: its
/// `spec.commit.messageTemplate` is a Go template and its commits follow Flux's conventions.
pub fn is_flux(object: &AppUpgradeAutomation) -> bool {
    crate::flux::from_flux(&object.metadata)
}

/// A Flux `GitRepository` (`v1` or `v1beta2`), only the fields upkeep uses. Unknown fields
/// are ignored; every field is optional so that a repository upkeep does not need never
/// fails to load.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct GitRepository {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: GitRepositorySpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositorySpec {
    #[serde(default)]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<FluxLocalRef>,
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<GitRepositoryRef>,
}

/// `GitRepositoryRef`: source-controller resolves `commit` > `name` > `semver` > `tag` >
/// `branch`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl GitRepositoryRef {
    /// The branch this ref checks out, or the field that makes it something else (in
    /// source-controller's order of precedence).
    fn branch(&self) -> Result<Option<&str>, (&'static str, &str)> {
        fn set(v: Option<&String>) -> Option<&str> {
            v.map(String::as_str).filter(|s| !s.is_empty())
        }
        for (field, value) in [
            ("commit", &self.commit),
            ("name", &self.name),
            ("semver", &self.semver),
            ("tag", &self.tag),
        ] {
            if let Some(v) = set(value.as_ref()) {
                return Err((field, v));
            }
        }
        Ok(set(self.branch.as_ref()))
    }
}

/// A Flux `ImageUpdateAutomation` (`v1beta2` or `v1`). Unknown fields are ignored.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ImageUpdateAutomation {
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: ImageUpdateAutomationSpec,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ImageUpdateAutomationSpec {
    pub source_ref: SourceRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<IuaGit>,
    pub interval: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateStrategy>,
    #[serde(default)]
    pub suspend: bool,
}

/// `CrossNamespaceSourceReference`.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Only `GitRepository` (also the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct IuaGit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<Checkout>,
    pub commit: IuaCommit,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<IuaPush>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Checkout {
    #[serde(rename = "ref")]
    pub reference: GitRepositoryRef,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct IuaCommit {
    pub author: CommitUser,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<IuaSigningKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template: Option<String>,
    /// `v1` only in Flux; accepted in both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_values: Option<BTreeMap<String, String>>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CommitUser {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct IuaSigningKey {
    pub secret_ref: FluxLocalRef,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct IuaPush {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refspec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct UpdateStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// An automation converted as far as it can be without its `GitRepository`.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The automation, with an empty `spec.git.url` until [`Prepared::complete`].
    pub object: AppUpgradeAutomation,
    /// `(namespace, name)` of the `GitRepository`.
    pub source: (String, String),
    /// `spec.git.checkout.ref` gave the branch (the `GitRepository`'s ref is not used).
    checkout_given: bool,
}

/// A `GitRepository` as [`Prepared::complete`] needs it, with where it was read (for
/// messages: `file:line`, or empty in the cluster).
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    pub repository: &'a GitRepository,
    pub place: &'a str,
}

impl ImageUpdateAutomation {
    /// Converts everything that does not depend on the `GitRepository`. Errors name Flux's
    /// fields (`spec.git.commit.author.email`, `spec.update.strategy`, …).
    pub fn prepare(&self, api_version: &str) -> Result<Prepared, Vec<FieldError>> {
        let s = &self.spec;
        let mut errors = Vec::new();
        let mut notes = Vec::new();
        let namespace = self
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        if let Some(kind) = s
            .source_ref
            .kind
            .as_deref()
            .filter(|k| *k != "GitRepository")
        {
            errors.push(
                FieldError::new(
                    "spec.sourceRef.kind",
                    format!("source kind {kind:?} is not supported"),
                )
                .with_hint(Some("Flux and upkeep support only kind: GitRepository")),
            );
        }
        if s.source_ref.name.trim().is_empty() {
            errors.push(
                FieldError::new("spec.sourceRef.name", "empty GitRepository name")
                    .with_hint(Some("name the GitRepository that holds the manifests")),
            );
        }
        if let Some(strategy) = s
            .update
            .as_ref()
            .and_then(|u| u.strategy.as_deref())
            .filter(|st| !st.is_empty() && *st != "Setters")
        {
            errors.push(
                FieldError::new(
                    "spec.update.strategy",
                    format!("update strategy {strategy:?} is not supported"),
                )
                .with_hint(Some("the only strategy (in Flux too) is Setters")),
            );
        }
        let Some(git) = &s.git else {
            errors.push(
                FieldError::new("spec.git", "missing git settings").with_hint(Some(
                    "add spec.git.commit.author.email (Flux needs spec.git too)",
                )),
            );
            return Err(errors);
        };
        let mut reference = None;
        if let Some(checkout) = &git.checkout {
            match checkout.reference.branch() {
                Ok(Some(branch)) => reference = Some(branch.to_owned()),
                Ok(None) => errors.push(
                    FieldError::new("spec.git.checkout.ref", "no branch given")
                        .with_hint(Some("set spec.git.checkout.ref.branch, or remove checkout to use the GitRepository's ref")),
                ),
                Err((field, value)) => errors.push(unsupported_ref(
                    &format!("spec.git.checkout.ref.{field}"),
                    field,
                    value,
                )),
            }
        }
        let push = git.push.clone().unwrap_or_default();
        if push.options.as_ref().is_some_and(|o| !o.is_empty()) {
            errors.push(
                FieldError::new("spec.git.push.options", "push options are not supported")
                    .with_hint(Some(
                        "upkeep sends no push options; open pull requests with an AppUpgradeAutomation's spec.push.pullRequest",
                    )),
            );
        }
        let author = &git.commit.author;
        if author.email.trim().is_empty() {
            errors.push(
                FieldError::new("spec.git.commit.author.email", "empty author email")
                    .with_hint(Some("Flux requires an author email")),
            );
        }
        let name = if author.name.trim().is_empty() {
            notes.push("commit.author.name empty: the email is used as the name".to_owned());
            author.email.clone()
        } else {
            author.name.clone()
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let path = s
            .update
            .as_ref()
            .and_then(|u| u.path.clone())
            .filter(|p| !p.is_empty());
        let mut object = AppUpgradeAutomation::new(
            self.metadata.name.as_deref().unwrap_or_default(),
            AppUpgradeAutomationSpec {
                git: GitSpec {
                    url: String::new(),
                    reference: reference.map(|branch| GitRef {
                        branch: Some(branch),
                        tag: None,
                        commit: None,
                    }),
                    secret_ref: None,
                },
                path,
                policy_selector: s.policy_selector.clone(),
                commit: CommitSpec {
                    author: Author {
                        name,
                        email: author.email.clone(),
                    },
                    message_template: git
                        .commit
                        .message_template
                        .clone()
                        .filter(|t| !t.is_empty()),
                    message_template_values: git
                        .commit
                        .message_template_values
                        .clone()
                        .unwrap_or_default(),
                    signing_key: git.commit.signing_key.as_ref().map(|k| SigningKey {
                        secret_ref: LocalRef {
                            name: k.secret_ref.name.clone(),
                        },
                    }),
                },
                push: {
                    let branch = push.branch.clone().filter(|b| !b.is_empty());
                    let refspec = push.refspec.clone().filter(|r| !r.is_empty());
                    (branch.is_some() || refspec.is_some()).then_some(PushSpec {
                        branch,
                        refspec,
                        pull_request: None,
                    })
                },
                schedule_ref: None,
                interval: s.interval.clone(),
                suspend: s.suspend,
            },
        );
        let mut meta = self.metadata.clone();
        let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
        annotations.insert(
            ORIGIN_ANNOTATION.to_owned(),
            format!("{api_version}/{KIND}"),
        );
        if notes.is_empty() {
            annotations.remove(NOTES_ANNOTATION);
        } else {
            annotations.insert(NOTES_ANNOTATION.to_owned(), notes.join("; "));
        }
        object.metadata = meta;
        let checkout_given = object.spec.git.reference.is_some();
        // The URL is checked when the GitRepository is known.
        "-".clone_into(&mut object.spec.git.url);
        if let Err(found) = object.validate() {
            return Err(found
                .into_iter()
                .map(|e| {
                    rename(
                        e,
                        &[
                            ("spec.path", "spec.update.path"),
                            ("spec.commit", "spec.git.commit"),
                            ("spec.git.ref", "spec.git.checkout.ref"),
                            ("spec.push", "spec.git.push"),
                        ],
                    )
                })
                .collect());
        }
        object.spec.git.url = String::new();
        Ok(Prepared {
            object,
            source: (
                s.source_ref
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(namespace),
                s.source_ref.name.clone(),
            ),
            checkout_given,
        })
    }
}

/// Renames a path reported by the AppUpgradeAutomation's validation to the Flux field.
fn rename(mut e: FieldError, renames: &[(&str, &str)]) -> FieldError {
    for (upkeep, flux) in renames {
        if let Some(rest) = e.path.strip_prefix(upkeep)
            && (rest.is_empty() || rest.starts_with(['.', '[']))
        {
            e.path = format!("{flux}{rest}");
            break;
        }
    }
    e
}

fn unsupported_ref(path: &str, field: &str, value: &str) -> FieldError {
    FieldError::new(
        path,
        format!("checking out a {field} ({value:?}) is not supported"),
    )
    .with_hint(Some(
        "upkeep builds its commits on a branch: give ref.branch (and spec.git.push.branch for where to push)",
    ))
}

impl Prepared {
    /// The automation with its repository from `source`. `None`: the `GitRepository` was not
    /// found. Errors are on `spec.sourceRef` and name the `GitRepository` and its field.
    pub fn complete(self, source: Option<Source<'_>>) -> Result<AppUpgradeAutomation, FieldError> {
        let (ns, name) = &self.source;
        let Some(Source { repository, place }) = source else {
            return Err(FieldError::new(
                "spec.sourceRef",
                format!("GitRepository {ns}/{name} not found"),
            )
            .with_hint(Some(
                "add the GitRepository (source.toolkit.fluxcd.io/v1) the automation names, or fix spec.sourceRef.name/namespace",
            )));
        };
        let at = if place.is_empty() {
            String::new()
        } else {
            format!(" ({place})")
        };
        let mut object = self.object;
        let url = repository.spec.url.trim();
        if url.is_empty() {
            return Err(FieldError::new(
                "spec.sourceRef",
                format!("GitRepository {ns}/{name}{at} has no spec.url"),
            )
            .with_hint(Some("set spec.url of the GitRepository")));
        }
        url.clone_into(&mut object.spec.git.url);
        object.spec.git.secret_ref = repository.spec.secret_ref.as_ref().map(|r| LocalRef {
            name: r.name.clone(),
        });
        if !self.checkout_given {
            let branch = match repository
                .spec
                .reference
                .as_ref()
                .map(GitRepositoryRef::branch)
            {
                None | Some(Ok(None)) => DEFAULT_BRANCH.to_owned(),
                Some(Ok(Some(b))) => b.to_owned(),
                Some(Err((field, value))) => {
                    let mut e = unsupported_ref("spec.sourceRef", field, value);
                    e.message = format!(
                        "GitRepository {ns}/{name}{at}: spec.ref.{field}: {}",
                        e.message
                    );
                    e.hint = Some(
                        "set spec.git.checkout.ref.branch on the ImageUpdateAutomation (upkeep builds its commits on a branch)"
                            .to_owned(),
                    );
                    return Err(e);
                }
            };
            object.spec.git.reference = Some(GitRef {
                branch: Some(branch),
                tag: None,
                commit: None,
            });
        }
        // The push branch may come from the GitRepository: check the refspec's source again.
        if let Some(Err(mut e)) = object.push_refspec() {
            e.message = format!("spec.git.push.{}", e.message);
            return Err(FieldError {
                path: "spec.sourceRef".to_owned(),
                ..e
            });
        }
        Ok(object)
    }
}
