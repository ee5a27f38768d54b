//! A Flux-shaped repository planned and applied by the real binary against the real registry:
//! one ImageRepository on a registry that was stopped, one ImagePolicy whose repository is
//! missing, one defined twice, one placed by a kustomization's `namespace:`, next to a healthy
//! one. Each problem holds only its own field, named as the user wrote it; the rest is written.

use std::path::Path;
use std::process::{Command, Output};

use upkeep_testenv::{Registry, RegistryKind};

mod support;
use support::{apply_args, assert_exit, plan_json_args, text};

const AT: &str = "2026-12-01T00:00:00Z";

/// (line, action, target, pieces of the reason, reason)
type Case<'a> = (u64, &'a str, Option<&'a str>, &'a [&'a str], &'a str);

fn upkeep(args: &[&str], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .env("HOME", home)
        .env_remove("DOCKER_CONFIG")
        .env_remove("UPKEEP_STORE")
        .output()
        .expect("the upkeep binary runs")
}

fn write(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, body).expect("write");
}

fn image_policy(name: &str, ns: Option<&str>, repo: &str) -> String {
    let ns = ns.map(|n| format!(", namespace: {n}")).unwrap_or_default();
    format!(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {{name: {name}{ns}}}\nspec:\n  imageRepositoryRef: {{name: {repo}, namespace: flux-system}}\n  policy: {{semver: {{range: '>=1.0.0'}}}}\n"
    )
}

const APP: &str = "healthy: 1.0.0 # {\"$imagepolicy\": \"flux-system:healthy:tag\"}
gone: 1.0.0 # {\"$imagepolicy\": \"flux-system:unreachable:tag\"}
missing: 1.0.0 # {\"$imagepolicy\": \"flux-system:missing:tag\"}
placed: 1.0.0 # {\"$imagepolicy\": \"apps:placed:tag\"}
dup: 1.0.0 # {\"$imagepolicy\": \"flux-system:dup:tag\"}
";

#[test]
#[allow(clippy::too_many_lines)]
fn one_bad_source_or_policy_holds_only_its_fields_and_names_what_the_user_wrote() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let reg = rt
        .block_on(Registry::start(RegistryKind::Plain))
        .expect("registry");
    for tag in ["1.0.0", "1.1.0"] {
        rt.block_on(reg.push_chart("charts/app", "app", tag, tag, None))
            .expect("push");
    }
    let stopped = rt
        .block_on(Registry::start(RegistryKind::Plain))
        .expect("second registry");
    let dead = stopped.host().to_owned();
    drop(stopped);

    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    write(
        &repo,
        "flux/sources.yaml",
        &format!(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {{name: healthy, namespace: flux-system}}\nspec: {{image: '{}/charts/app', interval: 5m, insecure: true}}\n---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {{name: gone, namespace: flux-system}}\nspec: {{image: '{dead}/charts/app', interval: 5m, timeout: 5s, insecure: true}}\n",
            reg.host()
        ),
    );
    write(
        &repo,
        "flux/policies.yaml",
        &format!(
            "{}---\n{}---\n{}",
            image_policy("healthy", Some("flux-system"), "healthy"),
            image_policy("unreachable", Some("flux-system"), "gone"),
            image_policy("missing", Some("flux-system"), "nothere"),
        ),
    );
    write(
        &repo,
        "apps/kustomization.yaml",
        "namespace: apps\nresources: [policy.yaml]\n",
    );
    write(
        &repo,
        "apps/policy.yaml",
        &image_policy("placed", None, "healthy"),
    );
    write(
        &repo,
        "dups/a.yaml",
        &image_policy("dup", Some("flux-system"), "healthy"),
    );
    write(
        &repo,
        "dups/b.yaml",
        &image_policy("dup", Some("flux-system"), "healthy"),
    );
    write(&repo, "deploy/app.yaml", APP);

    let plan = upkeep(&plan_json_args(&repo, AT), tmp.path());
    let stderr = text(&plan.stderr);
    assert_eq!(
        plan.status.code(),
        Some(4),
        "partial: planned, some fields in error\n{}\n{stderr}",
        text(&plan.stdout)
    );
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("json");
    let fields = json["fields"].as_array().expect("fields");
    let row = |line: u64| {
        fields
            .iter()
            .find(|f| f["file"] == "deploy/app.yaml" && f["line"] == line)
            .unwrap_or_else(|| panic!("a row for line {line}: {fields:?}"))
    };
    let cases: [Case<'_>; 5] = [
        (
            1,
            "write",
            Some("1.1.0"),
            &[],
            "the healthy source's field is written",
        ),
        (
            2,
            "error",
            None,
            &[
                "ImagePolicy flux-system/unreachable",
                "ImageRepository flux-system/gone could not be read",
                &dead,
                "hint: check that",
                "reachable",
            ],
            "the stopped registry holds its field, with upkeep versions' hint",
        ),
        (
            3,
            "error",
            None,
            &[
                "ImagePolicy flux-system/missing (flux/policies.yaml:",
                "spec.imageRepositoryRef names ImageRepository flux-system/nothere",
            ],
            "a missing source: the policy's file:line and the field the user wrote",
        ),
        (
            4,
            "write",
            Some("1.1.0"),
            &[],
            "an ImagePolicy placed by a kustomization's namespace: answers apps:placed",
        ),
        (
            5,
            "error",
            None,
            &["defined more than once", "dups/a.yaml", "dups/b.yaml"],
            "a duplicate holds its field, naming both files",
        ),
    ];
    for (line, action, target, pieces, reason) in cases {
        let r = row(line);
        assert_eq!(r["action"], action, "{reason}: {r}");
        if let Some(t) = target {
            assert_eq!(r["target"], t, "{reason}: {r}");
        }
        let why = r["reason"].as_str().unwrap_or_default();
        for p in pieces {
            assert!(why.contains(p), "{reason}: {p:?} in {why:?}");
        }
        assert!(
            !why.contains("ChartSource") && !why.contains("sourceRef"),
            "{reason}: Flux objects are named as Flux names them: {why}"
        );
    }
    assert!(
        stderr.contains("spec.imageRepositoryRef") && stderr.contains("dups/b.yaml"),
        "the problems are reported once on stderr too: {stderr}"
    );

    let store = tmp.path().join("state.redb");
    let apply = upkeep(&apply_args(&repo, AT, &store), tmp.path());
    assert_exit(&apply, 4, "apply is partial, not stopped");
    let written = std::fs::read_to_string(repo.join("deploy/app.yaml")).expect("read");
    assert_eq!(
        written,
        APP.replacen("healthy: 1.0.0", "healthy: 1.1.0", 1)
            .replacen("placed: 1.0.0", "placed: 1.1.0", 1),
        "exactly the two healthy fields changed"
    );
}
