//! The fleet's decisions against a real registry: image names and digests as Flux's setters
//! need them (`digestReflectionPolicy` honoured, `IfNotPresent` remembered in the store), and
//! per-source isolation (a stopped registry, a missing source) with the names the user wrote.

use std::fmt::Write as _;
use std::path::Path;

use jiff::Timestamp;
use upkeep_registry::{Credentials, MemoryFirstSeen};
use upkeep_testenv::{Registry, RegistryKind};

use super::{DigestMemory, Fleet};

const NS: &str = "flux-system";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

fn write_fleet(dir: &Path, host: &str, dead: &str) {
    let sources = format!(
        "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: app, namespace: {NS}}}
spec: {{image: '{host}/charts/app', interval: 5m, insecure: true}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: gone, namespace: {NS}}}
spec: {{image: '{dead}/charts/app', interval: 5m, timeout: 5s, insecure: true}}
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: chart, namespace: {NS}}}
spec: {{url: 'oci://{host}/charts/app', interval: 5m, insecure: true}}
"
    );
    let image_policy = |name: &str, repo: &str, reflect: Option<&str>| {
        let reflect = reflect
            .map(|r| format!("  digestReflectionPolicy: {r}\n"))
            .unwrap_or_default();
        format!(
            "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  imageRepositoryRef: {{name: {repo}}}\n{reflect}  policy: {{semver: {{range: '>=1.0.0'}}}}\n"
        )
    };
    let mut policies = String::new();
    policies.push_str(&image_policy("if-not-present", "app", Some("IfNotPresent")));
    policies.push_str(&image_policy("always", "app", Some("Always")));
    policies.push_str(&image_policy("never", "app", None));
    policies.push_str(&image_policy("unreachable", "gone", Some("Always")));
    policies.push_str(&image_policy("missing", "nothere", None));
    let _ = write!(
        policies,
        "---\napiVersion: upkeep.dev/v1alpha1\nkind: VersionPolicy\nmetadata: {{name: upkeep-always, namespace: {NS}}}\nspec:\n  sourceRef: {{name: chart}}\n  digestReflectionPolicy: Always\n  policy: {{semver: {{range: '>=1.0.0'}}}}\n---\napiVersion: upkeep.dev/v1alpha1\nkind: VersionPolicy\nmetadata: {{name: missing-upkeep, namespace: {NS}}}\nspec:\n  sourceRef: {{name: nothere}}\n  policy: {{semver: {{range: '>=1.0.0'}}}}\n"
    );
    std::fs::write(dir.join("sources.yaml"), sources).expect("write sources");
    std::fs::write(dir.join("policies.yaml"), policies).expect("write policies");
}

fn load<S>(dir: &Path, memory: &S) -> Fleet
where
    S: upkeep_core::version::FirstSeenStore + DigestMemory,
    S::Error: std::fmt::Display,
{
    let now: Timestamp = "2026-12-01T00:00:00Z".parse().expect("time");
    Fleet::load_with(dir, now, &Credentials::Anonymous, memory)
        .expect("loads")
        .unwrap_or_else(|_| panic!("the fleet is valid"))
}

fn digest(fleet: &Fleet, name: &str) -> Option<String> {
    fleet
        .policies
        .get(&(NS.to_owned(), name.to_owned()))
        .unwrap_or_else(|| {
            panic!(
                "policy {name} decided; problems: {:?}",
                fleet.problems.get(&(NS.to_owned(), name.to_owned()))
            )
        })
        .allow
        .digest
        .clone()
}

fn problem(fleet: &Fleet, name: &str) -> String {
    fleet
        .problems
        .get(&(NS.to_owned(), name.to_owned()))
        .cloned()
        .unwrap_or_else(|| panic!("policy {name} has a problem"))
}

#[test]
#[allow(clippy::too_many_lines)]
fn digests_follow_digest_reflection_policy_and_one_bad_source_holds_only_its_policies() {
    let rt = runtime();
    let reg = rt
        .block_on(Registry::start(RegistryKind::Plain))
        .expect("registry");
    let stopped = rt
        .block_on(Registry::start(RegistryKind::Plain))
        .expect("second registry");
    let dead = stopped.host().to_owned();
    drop(stopped);
    let repo = "charts/app";
    let d1 = rt
        .block_on(reg.push_chart(repo, "app", "1.0.0", "1.0.0", None))
        .expect("push");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("fleet");
    std::fs::create_dir(&dir).expect("mkdir");
    write_fleet(&dir, reg.host(), &dead);
    let store = upkeep_store::Store::open(tmp.path().join("state.redb")).expect("store");

    let fleet = load(&dir, &store);
    let image = format!("{}/{repo}", reg.host());
    for name in ["if-not-present", "always", "never", "upkeep-always"] {
        let d = &fleet.policies[&(NS.to_owned(), name.to_owned())].allow;
        assert_eq!(d.selected.as_deref(), Some("1.0.0"), "{name}");
        assert_eq!(
            d.image.as_deref(),
            Some(image.as_str()),
            "{name}: spec.image verbatim / host/path of the oci:// URL"
        );
    }
    assert_eq!(
        digest(&fleet, "if-not-present"),
        Some(d1.clone()),
        "read: none known yet"
    );
    assert_eq!(digest(&fleet, "always"), Some(d1.clone()));
    assert_eq!(
        digest(&fleet, "upkeep-always"),
        Some(d1.clone()),
        "upkeep's own kind too"
    );
    assert_eq!(
        digest(&fleet, "never"),
        None,
        "Never is the default: no digest"
    );

    // Isolation: the stopped registry holds only the policy that uses it, with the reason and
    // `upkeep versions`' hint; a missing source names the policy's file:line and the field the
    // user wrote.
    let unreachable = problem(&fleet, "unreachable");
    for piece in [
        "ImagePolicy flux-system/unreachable",
        "ImageRepository flux-system/gone",
        "could not be read",
        dead.as_str(),
        "hint: check that",
        "reachable",
    ] {
        assert!(unreachable.contains(piece), "{piece:?} in {unreachable}");
    }
    let missing = problem(&fleet, "missing");
    for piece in [
        "ImagePolicy flux-system/missing (policies.yaml:",
        "spec.imageRepositoryRef names ImageRepository flux-system/nothere",
    ] {
        assert!(missing.contains(piece), "{piece:?} in {missing}");
    }
    assert!(
        !missing.contains("ChartSource"),
        "Flux names only: {missing}"
    );
    let line: usize = missing
        .split("policies.yaml:")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .expect("a line number");
    let text = std::fs::read_to_string(dir.join("policies.yaml")).expect("read");
    let doc: Vec<&str> = text.lines().skip(line - 1).take(3).collect();
    assert!(
        doc.join("\n").contains("name: missing,"),
        "the line is where the policy starts: {doc:?}"
    );
    let missing_upkeep = problem(&fleet, "missing-upkeep");
    assert!(
        missing_upkeep.contains("VersionPolicy flux-system/missing-upkeep (policies.yaml:")
            && missing_upkeep.contains("spec.sourceRef names ChartSource flux-system/nothere"),
        "upkeep's own kinds keep upkeep's names: {missing_upkeep}"
    );

    // The tag moves to another manifest: IfNotPresent keeps the digest it knows (as Flux),
    // Always notices.
    let d2 = rt
        .block_on(reg.push_chart(repo, "app", "1.0.1", "1.0.0", None))
        .expect("re-push");
    assert_ne!(d1, d2);
    let fleet = load(&dir, &store);
    assert_eq!(
        digest(&fleet, "if-not-present"),
        Some(d1.clone()),
        "IfNotPresent: same tag and image, the remembered digest"
    );
    assert_eq!(
        digest(&fleet, "always"),
        Some(d2.clone()),
        "Always reads again"
    );
    assert_eq!(digest(&fleet, "upkeep-always"), Some(d2.clone()));
    // Without a store (`upkeep plan`) nothing is remembered: the digest is read.
    let fleet = load(&dir, &MemoryFirstSeen::default());
    assert_eq!(digest(&fleet, "if-not-present"), Some(d2.clone()));

    // A new tag is selected: IfNotPresent reads its digest.
    let d3 = rt
        .block_on(reg.push_chart(repo, "app", "1.1.0", "1.1.0", None))
        .expect("push 1.1.0");
    let fleet = load(&dir, &store);
    assert_eq!(
        fleet.policies[&(NS.to_owned(), "if-not-present".to_owned())]
            .allow
            .selected
            .as_deref(),
        Some("1.1.0")
    );
    assert_eq!(
        digest(&fleet, "if-not-present"),
        Some(d3),
        "a new tag, a new digest"
    );
}

#[test]
fn an_oci_layout_gives_the_digest_skopeo_reads_and_no_image_name() {
    let layout = std::fs::canonicalize(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart/charts/podinfo"
    ))
    .expect("the quickstart's podinfo layout");
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("fleet.yaml"),
        format!(
            "apiVersion: upkeep.dev/v1alpha1\nkind: ChartSource\nmetadata: {{name: podinfo, namespace: {NS}}}\nspec: {{url: 'oci-layout:{}', interval: 5m}}\n---\napiVersion: upkeep.dev/v1alpha1\nkind: VersionPolicy\nmetadata: {{name: podinfo, namespace: {NS}}}\nspec:\n  sourceRef: {{name: podinfo}}\n  digestReflectionPolicy: IfNotPresent\n  policy: {{semver: {{range: '>=6.5.0 <7.0.0'}}}}\n",
            layout.display()
        ),
    )
    .expect("write");
    let fleet = load(tmp.path(), &MemoryFirstSeen::default());
    let d = &fleet.policies[&(NS.to_owned(), "podinfo".to_owned())].allow;
    assert_eq!(d.selected.as_deref(), Some("6.6.1"));
    assert_eq!(d.image, None, "a layout has no image name");
    // The peer: skopeo reads the tag's manifest from the layout; its digest is the one.
    let raw = std::process::Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:6.6.1", layout.display()))
        .output()
        .expect("skopeo runs");
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    let manifest = tmp.path().join("manifest.json");
    std::fs::write(&manifest, &raw.stdout).expect("write manifest");
    let digest = std::process::Command::new("skopeo")
        .arg("manifest-digest")
        .arg(&manifest)
        .output()
        .expect("skopeo runs");
    assert!(digest.status.success());
    assert_eq!(
        d.digest.as_deref(),
        Some(String::from_utf8_lossy(&digest.stdout).trim()),
        "the digest of the selected tag in index.json"
    );
}
