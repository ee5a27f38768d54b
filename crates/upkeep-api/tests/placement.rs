//! Namespace placement as `kustomize build` does it, checked against kustomize itself
//! (`kubectl kustomize`, the peer), and duplicates after placement.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use upkeep_api::yaml::Value;
use upkeep_api::{Loaded, Resource, load_resources};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

fn policy(name: &str, ns: Option<&str>) -> String {
    let ns = ns.map(|n| format!(", namespace: {n}")).unwrap_or_default();
    format!(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {{name: {name}{ns}}}\nspec:\n  imageRepositoryRef: {{name: app}}\n  policy: {{semver: {{range: 1.x}}}}\n"
    )
}

fn repository(name: &str, ns: Option<&str>) -> String {
    let ns = ns.map(|n| format!(", namespace: {n}")).unwrap_or_default();
    format!(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {{name: {name}{ns}}}\nspec: {{image: ghcr.io/org/app, interval: 5m}}\n"
    )
}

/// A Flux-shaped repository: one base applied by two clusters, patches of both kinds, a file
/// named `Kustomization`, a `.yml` kustomization, and a file nothing includes.
fn fixture(root: &Path) {
    write(
        root,
        "apps/base/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- image-policy.yaml\n- image-repository.yaml\n",
    );
    write(root, "apps/base/image-policy.yaml", &policy("app", None));
    write(
        root,
        "apps/base/image-repository.yaml",
        &repository("app", Some("flux-system")),
    );
    write(
        root,
        "clusters/dev/kustomization.yaml",
        "namespace: dev\nresources:\n- ../../apps/base\n",
    );
    write(
        root,
        "clusters/prod/Kustomization",
        "namespace: prod
resources:
- ../../apps/base
- early.yaml
- late.yaml
patches:
- target: {kind: ImagePolicy, name: early}
  patch: |
    - {op: replace, path: /metadata/namespace, value: patched-early}
patchesJson6902:
- target: {group: image.toolkit.fluxcd.io, version: v1, kind: ImagePolicy, name: late}
  patch: |
    - {op: replace, path: /metadata/namespace, value: patched-late}
",
    );
    write(
        root,
        "clusters/prod/early.yaml",
        &policy("early", Some("flux-system")),
    );
    write(root, "clusters/prod/late.yaml", &policy("late", None));
    write(
        root,
        "json/kustomization.yml",
        "resources: [policies.yaml]
patches:
- path: namespace.yaml
  target: {kind: Image.*}
",
    );
    write(
        root,
        "json/namespace.yaml",
        "- {op: add, path: /metadata/namespace, value: json-ns}\n",
    );
    write(
        root,
        "json/policies.yaml",
        &format!(
            "{}---\n{}",
            policy("json-policy", None),
            repository("json-repo", Some("other"))
        ),
    );
    write(
        root,
        "merge/kustomization.yaml",
        "resources: [merge.yaml]
patches:
- target: {kind: ImagePolicy, name: merge}
  patch: |
    apiVersion: image.toolkit.fluxcd.io/v1
    kind: ImagePolicy
    metadata: {name: merge, namespace: merged}
",
    );
    write(
        root,
        "merge/merge.yaml",
        &policy("merge", Some("merge-own")),
    );
    write(root, "loose/loose.yaml", &policy("loose", Some("own")));
}

type Placed = BTreeMap<(String, String), BTreeSet<String>>;

fn placed(loaded: &Loaded) -> Placed {
    let mut out = Placed::new();
    for d in &loaded.documents {
        let kind = d.resource.origin().map(|o| o.kind).unwrap_or_default();
        let (ns, name) = match &d.resource {
            Resource::VersionPolicy { object, .. } => upkeep_api::namespaced_name(&object.metadata),
            Resource::ChartSource { object, .. } => upkeep_api::namespaced_name(&object.metadata),
            _ => continue,
        };
        out.entry((kind, name)).or_default().insert(ns);
    }
    out
}

/// What `kubectl kustomize <root>` builds: (kind, name) → namespaces.
fn kustomize(dir: &Path) -> Placed {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl runs (kustomize is built into kubectl)");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut placed = Placed::new();
    let docs: Vec<Value> = upkeep_api::yaml::from_str_multiple(&text).expect("yaml");
    for v in docs {
        let field = |path: &[&str]| {
            path.iter()
                .try_fold(&v, |v, k| v.get(k))
                .and_then(Value::as_str)
                .map(ToOwned::to_owned)
        };
        let kind = field(&["kind"]).unwrap_or_default();
        let name = field(&["metadata", "name"]).unwrap_or_default();
        let ns = field(&["metadata", "namespace"]).unwrap_or_else(|| "default".to_owned());
        placed.entry((kind, name)).or_default().insert(ns);
    }
    placed
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn objects_land_where_kustomize_puts_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    fixture(root);
    let loaded = load_resources(root);
    assert!(loaded.is_ok(), "{:?}", loaded.diagnostics);
    let got = placed(&loaded);
    let key = |k: &str, n: &str| (k.to_owned(), n.to_owned());
    // ((kind, name), namespaces, reason)
    let cases = [
        (
            key("ImagePolicy", "app"),
            set(&["dev", "prod"]),
            "a base applied by two clusters is in both namespaces",
        ),
        (
            key("ImageRepository", "app"),
            set(&["dev", "prod"]),
            "namespace: overrides a written namespace",
        ),
        (
            key("ImagePolicy", "early"),
            set(&["prod"]),
            "patches run before namespace:, which wins",
        ),
        (
            key("ImagePolicy", "late"),
            set(&["patched-late"]),
            "patchesJson6902 runs after namespace: and wins",
        ),
        (
            key("ImagePolicy", "json-policy"),
            set(&["json-ns"]),
            "a JSON 6902 patch file with a kind regex target (kustomization.yml)",
        ),
        (
            key("ImageRepository", "json-repo"),
            set(&["json-ns"]),
            "the same patch on the other Image kind",
        ),
        (
            key("ImagePolicy", "merge"),
            set(&["merge-own"]),
            "a strategic merge patch does not move an object (kustomize sets the patch's namespace to the target's)",
        ),
        (
            key("ImagePolicy", "loose"),
            set(&["own"]),
            "a file no kustomization includes keeps its namespace",
        ),
    ];
    for (k, want, reason) in &cases {
        assert_eq!(got.get(k), Some(want), "{k:?}: {reason}");
    }
    assert_eq!(got.len(), cases.len(), "nothing else: {got:?}");

    // The peer: kustomize builds every root the same way.
    let mut peer = Placed::new();
    for r in ["clusters/dev", "clusters/prod", "json", "merge"] {
        for (k, v) in kustomize(&root.join(r)) {
            peer.entry(k).or_default().extend(v);
        }
    }
    let mut ours = got.clone();
    ours.remove(&key("ImagePolicy", "loose"));
    assert_eq!(ours, peer, "upkeep and kustomize agree");
}

#[test]
fn the_same_object_twice_is_an_error_naming_both_places_and_holds_only_itself() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    write(root, "a.yaml", &policy("dup", Some("x")));
    write(
        root,
        "b.yaml",
        &format!("# two\n{}", policy("dup", Some("x"))),
    );
    write(root, "c.yaml", &policy("mixed", Some("y")));
    write(
        root,
        "d.yaml",
        "apiVersion: upkeep.dev/v1alpha1\nkind: VersionPolicy\nmetadata: {name: mixed, namespace: y}\nspec:\n  sourceRef: {name: app}\n  policy: {semver: {range: 1.x}}\n",
    );
    write(
        root,
        "k/kustomization.yaml",
        "namespace: z\nresources: [e.yaml, f.yaml]\n",
    );
    write(root, "k/e.yaml", &policy("placed", Some("e1")));
    write(root, "k/f.yaml", &policy("placed", Some("f1")));
    write(root, "g.yaml", &policy("fine", Some("x")));
    write(root, "h.yaml", &repository("app", Some("x")));
    write(
        root,
        "i.yaml",
        "apiVersion: upkeep.dev/v1alpha1\nkind: ChartSource\nmetadata: {name: app, namespace: x}\nspec: {url: 'oci://ghcr.io/org/app', interval: 5m}\n",
    );
    let schedule = "apiVersion: upkeep.dev/v1alpha1\nkind: MaintenanceSchedule\nmetadata: {name: win, namespace: x}\nspec: {alwaysAllowed: true}\n";
    write(root, "s1.yaml", schedule);
    write(root, "s2.yaml", schedule);
    let automation = "apiVersion: upkeep.dev/v1alpha1\nkind: AppUpgradeAutomation\nmetadata: {name: auto, namespace: x}\nspec:\n  git: {url: 'https://git.example.com/fleet.git', ref: {branch: main}}\n  path: ./apps\n  commit: {author: {name: upkeep, email: upkeep@example.com}}\n";
    write(root, "u1.yaml", automation);
    write(root, "u2.yaml", automation);
    let loaded = load_resources(root);
    let names: BTreeSet<String> = loaded
        .documents
        .iter()
        .filter_map(|d| d.resource.name().map(ToOwned::to_owned))
        .collect();
    assert_eq!(names, set(&["fine"]), "only the unique object is loaded");
    // (kind, namespace/name, files, reason)
    let cases = [
        (
            "VersionPolicy",
            "x/dup",
            ["a.yaml:1", "b.yaml:2"],
            "two ImagePolicies",
        ),
        (
            "VersionPolicy",
            "y/mixed",
            ["c.yaml:1", "d.yaml:1"],
            "an ImagePolicy and a VersionPolicy are the same thing for markers",
        ),
        (
            "VersionPolicy",
            "z/placed",
            ["e.yaml:1", "f.yaml:1"],
            "two namespaces that kustomize makes one",
        ),
        (
            "ChartSource",
            "x/app",
            ["h.yaml:1", "i.yaml:1"],
            "an ImageRepository and a ChartSource",
        ),
        (
            "MaintenanceSchedule",
            "x/win",
            ["s1.yaml:1", "s2.yaml:1"],
            "schedules",
        ),
        (
            "AppUpgradeAutomation",
            "x/auto",
            ["u1.yaml:1", "u2.yaml:1"],
            "automations (their path is kept, so nothing under it is written)",
        ),
    ];
    for (kind, id, files, reason) in cases {
        let (ns, name) = id.split_once('/').expect("ns/name");
        let invalid: Vec<_> = loaded
            .invalid
            .iter()
            .filter(|o| {
                o.kind == kind
                    && o.namespace.as_deref() == Some(ns)
                    && o.name.as_deref() == Some(name)
            })
            .collect();
        assert_eq!(
            invalid.len(),
            2,
            "{reason}: both copies are held: {invalid:?}"
        );
        for o in &invalid {
            for f in files {
                assert!(
                    o.message.contains(f)
                        || format!("{}:{}", o.file.display(), o.line).ends_with(f),
                    "{reason}: {f} named by {o:?}"
                );
            }
        }
        let diagnostics: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|d| {
                d.message
                    .contains(&format!(" {id} is defined more than once"))
            })
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            diagnostics.len(),
            2,
            "{reason}: one error per place: {diagnostics:?}"
        );
        for f in files {
            assert!(
                diagnostics.iter().all(|d| d.contains(f)),
                "{reason}: every error names {f}: {diagnostics:?}"
            );
        }
    }
}

#[test]
fn nested_diamonds_of_bases_are_bounded_not_exponential() {
    // Each level includes both directories of the next, 2^24 ways to reach the leaf file.
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let levels = 24;
    for i in 0..levels {
        let next = format!(
            "resources: [../l{}, ../m{}]\nnamespace: n{i}\n",
            i + 1,
            i + 1
        );
        write(root, &format!("l{i}/kustomization.yaml"), &next);
        if i > 0 {
            write(root, &format!("m{i}/kustomization.yaml"), &next);
        }
    }
    for leaf in ["l", "m"] {
        write(
            root,
            &format!("{leaf}{levels}/kustomization.yaml"),
            "resources: [../policy.yaml]\n",
        );
    }
    write(root, "policy.yaml", &policy("deep", Some("own")));
    // Without a bound this load would not end (16 million inclusions).
    let loaded = load_resources(root);
    let d = loaded
        .diagnostics
        .iter()
        .find(|d| d.message.contains("includes more than"))
        .expect("the root that includes too much is reported");
    assert!(d.file.ends_with("l0/kustomization.yaml"), "{d}");
    assert_eq!(
        placed(&loaded).get(&("ImagePolicy".to_owned(), "deep".to_owned())),
        Some(&set(&["own"])),
        "what it builds keeps its namespace"
    );
}
