//! Flux `ImageUpdateAutomation` objects in a real kube-apiserver 1.20.2 (with minimal test
//! CRDs for Flux's kinds: `x-kubernetes-preserve-unknown-fields` schemas, status subresource)
//! run against a real `git http-backend` with basic auth: the commit lands on the push branch
//! built from the checkout branch, only under `update.path`, with the Go template message,
//! and the automation gets Flux's status fields. The ImagePolicy's status is set by the test
//! as Flux's image-reflector-controller would.

mod support;
use support::{Running, api_server_with_crds, client, condition, eventually, git_workspace};

use std::fmt::Write as _;

use jiff::Timestamp;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use upkeep_controller::flux_automation::{FluxStatus, run_flux_automations};
use upkeep_testenv::{GitServer, KubeUser};

const USER: &str = "bot";
const PASSWORD: &str = "git-pa55-never-shown";

/// Minimal CRDs for Flux's kinds (the real ones carry full schemas; these accept anything).
fn flux_crd(group: &str, kind: &str, plural: &str, versions: &[&str]) -> String {
    let versions = versions.iter().enumerate().fold(String::new(), |mut out, (i, v)| {
        let _ = write!(
            out,
            "  - name: {v}\n    served: true\n    storage: {}\n    subresources:\n      status: {{}}\n    schema:\n      openAPIV3Schema:\n        type: object\n        x-kubernetes-preserve-unknown-fields: true\n",
            i == 0
        );
        out
    });
    format!(
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{group}
spec:
  group: {group}
  scope: Namespaced
  names:
    kind: {kind}
    plural: {plural}
    singular: {}
    listKind: {kind}List
  versions:
{versions}---
",
        kind.to_lowercase()
    )
}

const APP: &str = "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: apps
spec:
  values:
    image:
      repository: ghcr.io/stefanprodan/podinfo
      tag: 6.5.0 # {\"$imagepolicy\": \"flux-system:podinfo:tag\"}
";

fn dynamic(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn object(json: serde_json::Value) -> DynamicObject {
    serde_json::from_value(json).expect("object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_update_automation_in_the_cluster_pushes_and_reports_flux_status() {
    let server = api_server_with_crds().await;
    let crds = [
        flux_crd(
            "image.toolkit.fluxcd.io",
            "ImageUpdateAutomation",
            "imageupdateautomations",
            &["v1", "v1beta2"],
        ),
        flux_crd(
            "image.toolkit.fluxcd.io",
            "ImagePolicy",
            "imagepolicies",
            &["v1", "v1beta2"],
        ),
        flux_crd(
            "source.toolkit.fluxcd.io",
            "GitRepository",
            "gitrepositories",
            &["v1"],
        ),
    ]
    .concat();
    server.apply_crds(&crds).expect("flux CRDs established");
    server
        .kubectl(&["create", "namespace", "flux-system"])
        .expect("namespace");

    let git_server = GitServer::start(Some((USER, PASSWORD)))
        .await
        .expect("git server");
    let url = git_server
        .create_repo(
            "fleet",
            &[
                ("apps/podinfo.yaml", APP.as_bytes()),
                ("infra/podinfo.yaml", APP.as_bytes()),
            ],
        )
        .expect("repo");
    let bare = git_server.bare_path("fleet");
    let bare_git = |args: &[&str]| support::bare_git(&bare, args);
    let main_before = bare_git(&["rev-parse", "main"]);

    let client = client(&server, KubeUser::Admin).await;
    server
        .kubectl(&[
            "-n",
            "flux-system",
            "create",
            "secret",
            "generic",
            "flux-system",
            "--from-literal=username=bot",
            &format!("--from-literal=password={PASSWORD}"),
        ])
        .expect("git secret");
    let repos: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "flux-system",
        &dynamic(
            "source.toolkit.fluxcd.io",
            "v1",
            "GitRepository",
            "gitrepositories",
        ),
    );
    repos
        .create(
            &PostParams::default(),
            &object(serde_json::json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                "metadata": {"name": "flux-system", "namespace": "flux-system"},
                "spec": {"url": url, "interval": "1m", "ref": {"branch": "main"},
                         "secretRef": {"name": "flux-system"}}
            })),
        )
        .await
        .expect("git repository");
    let policies: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "flux-system",
        &dynamic(
            "image.toolkit.fluxcd.io",
            "v1",
            "ImagePolicy",
            "imagepolicies",
        ),
    );
    policies
        .create(
            &PostParams::default(),
            &object(serde_json::json!({
                "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
                "metadata": {"name": "podinfo", "namespace": "flux-system"},
                "spec": {"imageRepositoryRef": {"name": "podinfo"}, "policy": {"semver": {"range": "6.x"}}}
            })),
        )
        .await
        .expect("policy");
    policies
        .patch_status(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"latestRef": {
                "name": "ghcr.io/stefanprodan/podinfo", "tag": "6.6.0"}}})),
        )
        .await
        .expect("policy status");

    let iua_resource = dynamic(
        "image.toolkit.fluxcd.io",
        "v1",
        "ImageUpdateAutomation",
        "imageupdateautomations",
    );
    let automations: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "flux-system", &iua_resource);
    automations
        .create(
            &PostParams::default(),
            &object(serde_json::json!({
                "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
                "metadata": {"name": "flux-system", "namespace": "flux-system"},
                "spec": {
                    "interval": "1h",
                    "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                    "git": {
                        "checkout": {"ref": {"branch": "main"}},
                        "commit": {
                            "author": {"name": "fluxcdbot", "email": "fluxcdbot@example.com"},
                            "messageTemplate": "Update {{ .Values.cluster }}\n\n{{ range .Changed.Changes }}{{ .OldValue }} -> {{ .NewValue }}\n{{ end }}",
                            "messageTemplateValues": {"cluster": "prod"}
                        },
                        "push": {"branch": "flux-image-updates", "refspec": "HEAD:refs/heads/mirror"}
                    },
                    "update": {"path": "./apps", "strategy": "Setters"}
                }
            })),
        )
        .await
        .expect("automation");
    // An invalid one next to it: stalled on its own, with Flux's field name.
    automations
        .create(
            &PostParams::default(),
            &object(serde_json::json!({
                "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
                "metadata": {"name": "tagged", "namespace": "flux-system"},
                "spec": {
                    "interval": "1h",
                    "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                    "git": {
                        "checkout": {"ref": {"tag": "v1.0.0"}},
                        "commit": {"author": {"email": "fluxcdbot@example.com"}}
                    }
                }
            })),
        )
        .await
        .expect("automation");

    let workdir = tempfile::tempdir().expect("workdir");
    let now: Timestamp = "2026-11-21T10:00:00Z".parse().expect("time");
    let writer = git_workspace(&client, now, workdir.path());
    let controller = Running::spawn(|shutdown| run_flux_automations(writer, shutdown));

    let status = |o: DynamicObject| -> Option<FluxStatus> {
        o.data
            .get("status")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
    };
    let got = eventually(
        async || status(automations.get("flux-system").await.expect("get")),
        |s| s.as_ref().is_some_and(|s| s.last_push_commit.is_some()),
        "the automation pushes",
    )
    .await
    .expect("status");
    let commit = got.last_push_commit.clone().expect("commit");
    assert_eq!(
        bare_git(&["rev-parse", "flux-image-updates"]).trim(),
        commit
    );
    assert_eq!(
        bare_git(&["rev-parse", "flux-image-updates~1"]),
        main_before,
        "built on the checkout branch"
    );
    assert_eq!(
        bare_git(&["rev-parse", "main"]),
        main_before,
        "main untouched"
    );
    assert_eq!(
        bare_git(&["rev-parse", "mirror"]).trim(),
        commit,
        "push.refspec pushes the commit there too"
    );
    assert_eq!(
        bare_git(&["show", "--name-only", "--format=%an", "flux-image-updates"])
            .lines()
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>(),
        ["fluxcdbot", "apps/podinfo.yaml"],
        "only update.path"
    );
    assert!(
        bare_git(&["show", "flux-image-updates:apps/podinfo.yaml"]).contains("tag: 6.6.0 # {"),
        "the tag from the ImagePolicy's latestRef"
    );
    let message = bare_git(&["log", "-1", "--format=%B", "flux-image-updates"]);
    assert!(
        message.starts_with("Update prod\n\n6.5.0 -> 6.6.0\n"),
        "{message}"
    );
    assert_eq!(
        got.last_automation_run_time.as_ref().map(|t| t.0),
        Some(now)
    );
    assert_eq!(got.last_push_time.as_ref().map(|t| t.0), Some(now));
    assert_eq!(
        got.observed_policies
            .get("podinfo")
            .map(|r| (r.name.as_str(), r.tag.as_str())),
        Some(("ghcr.io/stefanprodan/podinfo", "6.6.0"))
    );
    let ready = condition(&got.conditions, "Ready");
    assert!(
        ready.status == "True" && (ready.reason == "Succeeded" || ready.reason == "UpToDate"),
        "{ready:?}"
    );
    let shown = serde_json::to_string(&got).expect("json");
    assert!(!shown.contains(PASSWORD), "no secret in status: {shown}");

    let tagged = eventually(
        async || status(automations.get("tagged").await.expect("get")),
        |s| {
            s.as_ref()
                .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Stalled"))
        },
        "the invalid automation is stalled",
    )
    .await
    .expect("status");
    let ready = condition(&tagged.conditions, "Ready");
    assert_eq!(ready.status, "False");
    assert!(
        ready.message.contains("spec.git.checkout.ref.tag"),
        "{ready:?}"
    );

    // A newer tag: the ImagePolicy's change re-runs the automation.
    policies
        .patch_status(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"latestRef": {
                "name": "ghcr.io/stefanprodan/podinfo", "tag": "6.6.1"}}})),
        )
        .await
        .expect("policy status");
    eventually(
        async || bare_git(&["show", "flux-image-updates:apps/podinfo.yaml"]),
        |t| t.contains("tag: 6.6.1 #"),
        "the newer tag is pushed",
    )
    .await;

    controller.stop().await;
}
