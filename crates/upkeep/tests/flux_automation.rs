//! A repository set up for Flux image automation only (GitRepository, ImageRepository,
//! ImagePolicy, ImageUpdateAutomation; no upkeep kinds), planned, applied with `--push` and
//! run with `run --once` over the real Git-over-HTTP server, with tags from the real registry:
//! upkeep writes where Flux would (the automation's `update.path`, its push branch started
//! from its checkout branch), with Flux's commit author and Go template message.

mod support;

use support::{
    apply_args, assert_exit, assert_one_commit_on, bare_git, borrowed, clone_then_forget_password,
    git_import, git_in, plan_json_args, run_once, runtime, scratch, shown_lines, text, upkeep,
};
use upkeep_testenv::{GitServer, Registry, RegistryKind};

const USER: &str = "flux-bot";
const PASSWORD: &str = "flux-pa55word-never-printed";
const AT: &str = "2026-11-21T10:00:00Z";

/// The repository: `apps/` is the automation's `update.path`; `infra/` has a marker for the
/// same policy that Flux would not touch; `apps/other-ns.yaml` names a policy of another
/// namespace, which Flux's automation does not apply.
fn flux_repo(git_url: &str, registry: &str) -> Vec<(String, Vec<u8>)> {
    let files = [
        (
            "clusters/prod/flux-system/gotk-sync.yaml",
            format!(
                "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m0s
  ref:
    branch: main
  url: {git_url}
"
            ),
        ),
        (
            "clusters/prod/flux-system/image-automation.yaml",
            format!(
                "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  image: {registry}/stefanprodan/podinfo
  interval: 5m
  insecure: true
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: podinfo
  policy:
    semver:
      range: 6.x
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: team-b
spec:
  imageRepositoryRef:
    name: podinfo
    namespace: flux-system
  policy:
    semver:
      range: 6.x
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: flux-system
  namespace: flux-system
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
      messageTemplate: |
        Automated image update for {{{{ .Values.cluster }}}}

        Automation name: {{{{ .AutomationObject }}}}

        Files:
        {{{{ range $filename, $_ := .Changed.FileChanges -}}}}
        - {{{{ $filename }}}}
        {{{{ end -}}}}
      messageTemplateValues:
        cluster: prod
    push:
      branch: flux-image-updates
      refspec: refs/heads/flux-image-updates:refs/heads/flux-mirror
  update:
    path: ./apps
    strategy: Setters
"
            ),
        ),
        (
            "apps/podinfo.yaml",
            "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: apps
spec:
  values:
    image:
      tag: 6.5.0 # {\"$imagepolicy\": \"flux-system:podinfo:tag\"}
"
            .to_owned(),
        ),
        (
            "apps/other-ns.yaml",
            "tag: 6.5.0 # {\"$imagepolicy\": \"team-b:podinfo:tag\"}\n".to_owned(),
        ),
        (
            "infra/podinfo.yaml",
            "tag: 6.5.0 # {\"$imagepolicy\": \"flux-system:podinfo:tag\"}\n".to_owned(),
        ),
    ];
    files
        .into_iter()
        .map(|(p, t)| (p.to_owned(), t.into_bytes()))
        .collect()
}

const EXPECTED_MESSAGE: &str = "Automated image update for prod

Automation name: flux-system/flux-system

Files:
- apps/podinfo.yaml
";

/// A plain registry holding `stefanprodan/podinfo` with `tags`.
fn registry_with_podinfo(rt: &tokio::runtime::Runtime, tags: &[&str]) -> Registry {
    let registry = rt
        .block_on(Registry::start(RegistryKind::Plain))
        .expect("registry");
    let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
    rt.block_on(registry.push_tags("stefanprodan/podinfo", &tags))
        .expect("push tags");
    registry
}

#[test]
fn an_image_update_automation_plans_applies_and_runs_like_flux() {
    let rt = runtime();
    let registry = registry_with_podinfo(&rt, &["6.5.0", "6.5.1", "6.6.0", "7.0.0"]);
    let server = rt
        .block_on(GitServer::start(Some((USER, PASSWORD))))
        .expect("git server");
    let url = server.url("fleet");
    let files = flux_repo(&url, registry.host());
    assert_eq!(
        server
            .create_repo("fleet", &borrowed(&files))
            .expect("repo"),
        url
    );
    let bare = server.bare_path("fleet");
    let main_before = bare_git(&bare, &["rev-parse", "main"]);

    let tmp = scratch();
    let fleet = tmp.path().join("fleet");
    clone_then_forget_password(&url, USER, PASSWORD, &fleet);
    let env = [
        ("UPKEEP_GIT_USERNAME", USER),
        ("UPKEEP_GIT_PASSWORD", PASSWORD),
    ];

    // plan: the automation's scope is apps/; infra/ is outside every automation.
    let out = upkeep(&plan_json_args(&fleet, AT), &env);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() || out.status.code() == Some(4),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_str(&stdout).expect("plan json");
    let fields: Vec<(String, String, String)> = plan["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (s("file"), s("action"), s("target") + &s("reason"))
        })
        .collect();
    assert_eq!(fields.len(), 2, "infra/ is outside update.path: {plan:#}");
    assert_eq!(
        (fields[0].0.as_str(), fields[0].1.as_str()),
        ("apps/other-ns.yaml", "held"),
        "{plan:#}"
    );
    assert!(
        fields[0]
            .2
            .contains("applies only policies of its namespace flux-system"),
        "{plan:#}"
    );
    assert_eq!(
        (fields[1].0.as_str(), fields[1].1.as_str()),
        ("apps/podinfo.yaml", "write"),
        "{plan:#}"
    );
    assert!(
        fields[1].2.starts_with("6.6.0"),
        "6.x selects 6.6.0: {plan:#}"
    );

    // apply --push: one commit on flux-image-updates, started from main; main untouched.
    let store = tmp.path().join("state.redb");
    let args = [
        apply_args(&fleet, AT, &store).as_slice(),
        &["--push", "--allow-insecure-http"],
    ]
    .concat();
    let out = upkeep(&args, &env);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{stderr}\n{}",
        server.log_tail()
    );
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "the password leaked"
    );
    assert!(
        stdout.contains("pushed to origin flux-image-updates"),
        "{stdout}"
    );
    assert_eq!(
        bare_git(&bare, &["rev-parse", "flux-mirror"]),
        bare_git(&bare, &["rev-parse", "flux-image-updates"]),
        "push.refspec pushes the same commit to its destination too"
    );
    assert!(
        !stderr.contains("messageTemplate"),
        "the template renders without a fallback: {stderr}"
    );
    assert_one_commit_on(&bare, "flux-image-updates", &main_before);
    assert_eq!(
        shown_lines(&bare, "%an <%ae>", "flux-image-updates"),
        [
            "fluxcdbot <fluxcdbot@users.noreply.github.com>",
            "apps/podinfo.yaml"
        ],
        "the author from the automation; only the file under update.path whose policy is in the automation's namespace"
    );
    let message = bare_git(&bare, &["log", "-1", "--format=%B", "flux-image-updates"]);
    assert!(
        message.starts_with(EXPECTED_MESSAGE),
        "the Go template's message, then upkeep's trailers:\n{message}"
    );
    assert!(
        message.contains("Upkeep-Change: file=apps/podinfo.yaml"),
        "{message}"
    );
    assert_eq!(
        bare_git(&bare, &["show", "flux-image-updates:apps/podinfo.yaml"]),
        text(&files[2].1).replace("tag: 6.5.0 #", "tag: 6.6.0 #"),
        "only the scalar changes"
    );

    // run --once over the URL: the branch already holds the change.
    let out = run_once(&url, &tmp.path().join("work"), &store, AT, &env);
    let stdout = text(&out.stdout);
    assert_exit(&out, 0, "");
    assert!(
        stdout.contains("origin flux-image-updates is up to date"),
        "{stdout}"
    );
}

#[test]
fn a_broken_flux_template_falls_back_to_the_default_message_and_says_which_line() {
    let rt = runtime();
    let registry = registry_with_podinfo(&rt, &["6.5.0", "6.5.1"]);
    let tmp = scratch();
    let fleet = tmp.path().join("fleet");
    let files: Vec<(String, Vec<u8>)> = flux_repo("file:///nowhere", registry.host())
        .into_iter()
        .map(|(p, b)| {
            let t = text(&b).replace(
                "        Files:\n",
                "        Files:\n        {{ template \"files\" }}\n",
            );
            (p, t.into_bytes())
        })
        .collect();
    support::write_tree(&fleet, &files);
    git_import(&fleet);
    let out = upkeep(&apply_args(&fleet, AT, &tmp.path().join("s.redb")), &[]);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{stderr}",
        text(&out.stdout)
    );
    assert!(
        stderr.contains(
            "warning: ImageUpdateAutomation flux-system/flux-system: spec.git.commit.messageTemplate line 6:"
        ) && stderr.contains("hint:"),
        "{stderr}"
    );
    let message = git_in(&fleet, &["log", "-1", "--format=%B"]);
    assert!(
        message.starts_with("Update from image update automation\n"),
        "{message}"
    );
    assert!(
        std::fs::read_to_string(fleet.join("apps/podinfo.yaml"))
            .expect("read")
            .contains("tag: 6.5.1 #"),
        "the change is still written"
    );
}

#[test]
fn a_missing_git_repository_holds_only_that_automations_files() {
    let rt = runtime();
    let registry = registry_with_podinfo(&rt, &["6.5.0", "6.5.1"]);
    let tmp = scratch();
    let fleet = tmp.path().join("fleet");
    let files: Vec<(String, Vec<u8>)> = flux_repo("file:///nowhere", registry.host())
        .into_iter()
        .filter(|(p, _)| !p.ends_with("gotk-sync.yaml"))
        .collect();
    support::write_tree(&fleet, &files);
    let out = upkeep(&plan_json_args(&fleet, AT), &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stderr.contains("image-automation.yaml:")
            && stderr.contains("spec.sourceRef")
            && stderr.contains("GitRepository flux-system/flux-system not found")
            && stderr.contains("hint:"),
        "the error names file, line, Flux field and a hint: {stderr}"
    );
    let plan: serde_json::Value = serde_json::from_str(&stdout).expect("plan json");
    let action = |file: &str| {
        plan["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|f| f["file"] == file)
            .map(|f| {
                (
                    f["action"].as_str().unwrap_or_default().to_owned(),
                    f["reason"].as_str().unwrap_or_default().to_owned(),
                )
            })
    };
    let (held, why) = action("apps/podinfo.yaml").expect("apps field");
    assert_ne!(held, "write", "{plan:#}");
    assert!(why.contains("is invalid"), "{why}");
    assert_eq!(
        action("infra/podinfo.yaml").map(|(a, _)| a).as_deref(),
        Some("write"),
        "outside the broken automation's update.path the run goes on: {plan:#}"
    );
}
