//! Flux `ImageUpdateAutomation` (with its `GitRepository`) read as an `AppUpgradeAutomation`:
//! both versions map every field upkeep acts on, the repository comes from the named
//! `GitRepository` in any file, and what upkeep cannot honour is an error on that automation
//! only, at its line, under the Flux field name.

use std::path::Path;

use upkeep_api::flux_automation::is_flux;
use upkeep_api::{AppUpgradeAutomation, Loaded, Resource, load_path, load_str};

const FILE: &str = "clusters/prod/flux-system/automation.yaml";

fn load(text: &str) -> Loaded {
    load_str(Path::new(FILE), text)
}

fn diagnostics(loaded: &Loaded) -> String {
    loaded
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn automations(loaded: &Loaded) -> Vec<&AppUpgradeAutomation> {
    loaded
        .documents
        .iter()
        .filter_map(|d| match &d.resource {
            Resource::AppUpgradeAutomation(a) => Some(a.as_ref()),
            _ => None,
        })
        .collect()
}

const GIT_REPOSITORY: &str = "\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m
  url: ssh://git@github.com/org/fleet
  secretRef:
    name: flux-system
  ref:
    branch: main
";

/// The documentation's example (docs/spec/v1/imageupdateautomations.md), complete.
const V1: &str = "\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: podinfo-update
  namespace: flux-system
  labels:
    team: apps
spec:
  interval: 30m
  sourceRef:
    kind: GitRepository
    name: flux-system
  git:
    checkout:
      ref:
        branch: main
    commit:
      author:
        email: fluxcdbot@users.noreply.github.com
        name: fluxcdbot
      messageTemplate: '{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}'
      messageTemplateValues:
        cluster: prod
      signingKey:
        secretRef:
          name: signing-key
    push:
      branch: image-updates
  update:
    path: ./clusters/my-cluster
    strategy: Setters
  policySelector:
    matchLabels:
      team: apps
  suspend: true
  someFutureField: 1
";

#[test]
fn v1_maps_every_field() {
    let loaded = load(&format!("{GIT_REPOSITORY}---\n{V1}"));
    assert!(loaded.is_ok(), "{}", diagnostics(&loaded));
    let a = automations(&loaded);
    assert_eq!(a.len(), 1);
    let a = a[0];
    assert!(is_flux(a), "the origin is recorded");
    let s = &a.spec;
    // (got, want, reason)
    let cases: Vec<(Option<String>, Option<&str>, &str)> = vec![
        (
            Some(s.git.url.clone()),
            Some("ssh://git@github.com/org/fleet"),
            "url from the GitRepository",
        ),
        (
            s.git.secret_ref.as_ref().map(|r| r.name.clone()),
            Some("flux-system"),
            "secretRef from the GitRepository",
        ),
        (
            s.git.reference.as_ref().and_then(|r| r.branch.clone()),
            Some("main"),
            "checkout branch",
        ),
        (
            s.push.as_ref().and_then(|p| p.branch.clone()),
            Some("image-updates"),
            "push branch",
        ),
        (
            s.path.clone(),
            Some("./clusters/my-cluster"),
            "update.path is the scope",
        ),
        (
            Some(s.commit.author.name.clone()),
            Some("fluxcdbot"),
            "author name",
        ),
        (
            Some(s.commit.author.email.clone()),
            Some("fluxcdbot@users.noreply.github.com"),
            "author email",
        ),
        (
            s.commit.message_template.clone(),
            Some("{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}"),
            "the Go template is kept verbatim",
        ),
        (
            s.commit.message_template_values.get("cluster").cloned(),
            Some("prod"),
            "messageTemplateValues",
        ),
        (
            s.commit
                .signing_key
                .as_ref()
                .map(|k| k.secret_ref.name.clone()),
            Some("signing-key"),
            "signingKey",
        ),
        (Some(s.interval.clone()), Some("30m"), "interval"),
        (Some(s.suspend.to_string()), Some("true"), "suspend"),
        (
            s.policy_selector
                .as_ref()
                .and_then(|p| p.match_labels.as_ref())
                .and_then(|l| l.get("team").cloned()),
            Some("apps"),
            "policySelector",
        ),
        (
            a.metadata.namespace.clone(),
            Some("flux-system"),
            "namespace kept",
        ),
        (
            a.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("team").cloned()),
            Some("apps"),
            "labels kept",
        ),
    ];
    for (got, want, reason) in cases {
        assert_eq!(got.as_deref(), want, "{reason}");
    }
}

#[test]
fn defaults_and_v1beta2() {
    // (GitRepository ref lines, IUA extra git lines, push lines, expected checkout, expected
    // push, reason)
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        &'a str,
        Option<&'a str>,
        &'a str,
    );
    let cases: &[Case<'_>] = &[
        (
            "  ref:\n    branch: develop\n",
            "",
            None,
            "develop",
            None,
            "no checkout: the GitRepository's branch",
        ),
        (
            "",
            "",
            None,
            "master",
            None,
            "no ref anywhere: source-controller's default branch master",
        ),
        (
            "  ref:\n    tag: v1.0.0\n",
            "    checkout:\n      ref:\n        branch: main\n",
            Some("auto"),
            "main",
            Some("auto"),
            "checkout.ref overrides an (unsupported) tag of the GitRepository",
        ),
    ];
    for &(repo_ref, checkout, push, want_checkout, want_push, reason) in cases {
        let push_lines = push
            .map(|b| format!("    push:\n      branch: {b}\n"))
            .unwrap_or_default();
        let text = format!(
            "apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: GitRepository
metadata:
  name: repo
spec:
  url: https://git.example.com/fleet.git
{repo_ref}---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageUpdateAutomation
metadata:
  name: auto
spec:
  interval: 1m0s
  sourceRef:
    name: repo
  git:
{checkout}    commit:
      author:
        email: bot@example.com
{push_lines}"
        );
        let loaded = load(&text);
        assert!(loaded.is_ok(), "{reason}: {}", diagnostics(&loaded));
        let a = automations(&loaded);
        assert_eq!(a.len(), 1, "{reason}");
        let s = &a[0].spec;
        assert_eq!(
            s.git.reference.as_ref().and_then(|r| r.branch.as_deref()),
            Some(want_checkout),
            "{reason}"
        );
        assert_eq!(
            s.push.as_ref().and_then(|p| p.branch.as_deref()),
            want_push,
            "{reason}"
        );
        assert_eq!(s.path, None, "{reason}: no update.path is the root");
        assert_eq!(
            s.commit.author.name, "bot@example.com",
            "{reason}: a missing author name is the email"
        );
        assert!(s.commit.message_template.is_none(), "{reason}");
    }
}

const IUA_HEAD: &str = "\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: auto
  namespace: flux-system
spec:
  interval: 5m
";

#[test]
fn unsupported_values_are_errors_at_their_flux_field() {
    // (rest of the IUA spec, GitRepository ref lines, field, message piece, reason)
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "  sourceRef:\n    name: missing\n  git:\n    commit:\n      author:\n        email: a@b\n",
            "",
            "spec.sourceRef",
            "GitRepository flux-system/missing not found",
            "a GitRepository that is not in the repository",
        ),
        (
            "  sourceRef:\n    name: repo\n    namespace: other\n  git:\n    commit:\n      author:\n        email: a@b\n",
            "",
            "spec.sourceRef",
            "GitRepository other/repo not found",
            "sourceRef.namespace is honoured",
        ),
        (
            "  sourceRef:\n    kind: Bucket\n    name: repo\n  git:\n    commit:\n      author:\n        email: a@b\n",
            "",
            "spec.sourceRef.kind",
            "source kind \"Bucket\" is not supported",
            "only GitRepository",
        ),
        (
            "  sourceRef:\n    name: repo\n  git:\n    commit:\n      author:\n        email: a@b\n",
            "  ref:\n    semver: '>=1.0.0'\n",
            "spec.sourceRef",
            "spec.ref.semver: checking out a semver",
            "a GitRepository semver ref cannot be built on",
        ),
        (
            "  sourceRef:\n    name: repo\n  git:\n    checkout:\n      ref:\n        commit: abc123\n    commit:\n      author:\n        email: a@b\n",
            "",
            "spec.git.checkout.ref.commit",
            "checking out a commit",
            "a commit checkout",
        ),
        (
            "  sourceRef:\n    name: repo\n  git:\n    commit:\n      author:\n        email: a@b\n    push:\n      branch: auto\n      refspec: refs/heads/main:refs/for/main\n",
            "",
            "spec.git.push.refspec",
            "its source must be the branch upkeep commits to (auto)",
            "a refspec pushing something other than the new commit",
        ),
        (
            "  sourceRef:\n    name: repo\n  git:\n    commit:\n      author:\n        email: a@b\n    push:\n      refspec: refs/heads/main:auto\n",
            "",
            "spec.git.push.refspec",
            "full ref name",
            "the destination must be a full ref",
        ),
        (
            "  sourceRef:\n    name: repo\n  git:\n    commit:\n      author:\n        email: a@b\n    push:\n      options:\n        merge_request.create: ''\n",
            "",
            "spec.git.push.options",
            "not supported",
            "push options are refused, not ignored",
        ),
        (
            "  sourceRef:\n    name: repo\n  update:\n    strategy: Other\n    path: ./apps\n  git:\n    commit:\n      author:\n        email: a@b\n",
            "",
            "spec.update.strategy",
            "not supported",
            "only Setters",
        ),
        (
            "  sourceRef:\n    name: repo\n  update:\n    path: ../outside\n  git:\n    commit:\n      author:\n        email: a@b\n",
            "",
            "spec.update.path",
            "must not contain ..",
            "the path stays inside the repository, named as Flux names it",
        ),
        (
            "  sourceRef:\n    name: repo\n  git:\n    commit:\n      author:\n        name: bot\n",
            "",
            "spec.git.commit.author.email",
            "empty author email",
            "Flux requires an email",
        ),
        (
            "  sourceRef:\n    name: repo\n",
            "",
            "spec.git",
            "missing git settings",
            "no git section",
        ),
    ];
    for &(spec, repo_ref, field, piece, reason) in cases {
        let text = format!(
            "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: repo
  namespace: flux-system
spec:
  url: https://git.example.com/fleet.git
{repo_ref}---
{IUA_HEAD}{spec}---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata:
  name: other
spec:
  sourceRef:
    name: charts
  policy:
    semver:
      range: '*'
"
        );
        let loaded = load(&text);
        assert!(automations(&loaded).is_empty(), "{reason}");
        assert_eq!(
            loaded.diagnostics.len(),
            1,
            "{reason}: {}",
            diagnostics(&loaded)
        );
        let d = &loaded.diagnostics[0];
        assert_eq!(d.field.as_deref(), Some(field), "{reason}: {d}");
        assert!(d.message.contains(piece), "{reason}: {d}");
        assert!(d.hint.is_some(), "{reason}: every error has a hint");
        let iua_line = text
            .lines()
            .position(|l| l == "kind: ImageUpdateAutomation")
            .unwrap();
        assert!(
            d.line > iua_line,
            "{reason}: located in the automation: {d}"
        );
        assert_eq!(loaded.invalid.len(), 1, "{reason}");
        assert_eq!(loaded.invalid[0].kind, "AppUpgradeAutomation", "{reason}");
        if spec.contains("path: ./apps") {
            assert_eq!(
                loaded.invalid[0].path.as_deref(),
                Some("./apps"),
                "{reason}: what is held is its update.path"
            );
        }
        assert!(
            loaded
                .documents
                .iter()
                .any(|d| d.resource.kind() == "VersionPolicy"),
            "{reason}: the rest of the file still loads"
        );
    }
}

#[test]
fn the_git_repository_may_be_in_another_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("flux-system")).unwrap();
    std::fs::create_dir_all(dir.path().join("apps")).unwrap();
    // The automation sorts before its source.
    std::fs::write(
        dir.path().join("apps/automation.yaml"),
        format!("{IUA_HEAD}  sourceRef:\n    name: flux-system\n  update:\n    path: ./apps\n  git:\n    commit:\n      author:\n        email: a@b\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("flux-system/gotk-sync.yaml"),
        GIT_REPOSITORY,
    )
    .unwrap();
    for (how, loaded) in [
        ("load_path", load_path(dir.path())),
        ("load_resources", upkeep_api::load_resources(dir.path())),
    ] {
        assert!(loaded.is_ok(), "{how}: {}", diagnostics(&loaded));
        let a = automations(&loaded);
        assert_eq!(a.len(), 1, "{how}");
        assert_eq!(a[0].spec.git.url, "ssh://git@github.com/org/fleet", "{how}");
        let doc = loaded
            .documents
            .iter()
            .find(|d| d.resource.kind() == "AppUpgradeAutomation")
            .unwrap();
        assert!(
            doc.file.ends_with("apps/automation.yaml"),
            "{how}: the document is the automation's file"
        );
        assert!(
            loaded
                .documents
                .iter()
                .any(|d| d.resource.kind() == "GitRepository"),
            "{how}: the GitRepository is still listed as a Kubernetes object"
        );
    }
    // Without the source the automation is invalid, with its update.path for holding.
    std::fs::remove_file(dir.path().join("flux-system/gotk-sync.yaml")).unwrap();
    let loaded = load_path(dir.path());
    assert!(automations(&loaded).is_empty());
    assert_eq!(loaded.invalid.len(), 1);
    assert_eq!(loaded.invalid[0].path.as_deref(), Some("./apps"));
    assert_eq!(loaded.invalid[0].line, 1);
    assert!(loaded.diagnostics[0].file.ends_with("apps/automation.yaml"));
}

#[test]
fn old_versions_are_refused_with_a_hint() {
    let text = IUA_HEAD.replace("/v1\n", "/v1beta1\n");
    let loaded = load(&format!("{text}  sourceRef:\n    name: x\n"));
    assert_eq!(loaded.diagnostics.len(), 1, "{}", diagnostics(&loaded));
    let d = &loaded.diagnostics[0];
    assert_eq!(d.field.as_deref(), Some("apiVersion"));
    assert!(d.hint.as_deref().unwrap().contains("flux migrate"));
}
