//! Flux drop-in, end to end: a GitOps repository laid out as Giant Swarm's gitops-template
//! lays it out (`tests/data/giantswarm`: Flux Kustomizations with `postBuild` substitutions,
//! shared bases, kustomize `namespace:` and JSON6902 patches placing ImagePolicies, App CRs
//! whose versions live in kustomize patch block scalars, ImagePolicies with `filterTags`, a
//! file named `Kustomization` with `images:`, ImageUpdateAutomations and their GitRepository),
//! planned and applied with no upkeep kind in it:
//!
//! - over the real registry (distribution, plain HTTP) and the real Git-over-HTTP server, with
//!   `upkeep run --once`: each ImageUpdateAutomation pushes to its own `git.push.branch` with
//!   its own author and message template, and writes only under its `update.path`;
//! - over OCI layout directories holding the same charts (so the same digests), with
//!   `upkeep plan` and `upkeep apply` on a local checkout.
//!
//! What is expected is what Flux's image-automation-controller writes for the same policies:
//! `:tag` the tag, `:name` the ImageRepository's `spec.image`, `:digest` the manifest digest
//! (`digestReflectionPolicy: Always`), the bare form `<image>:<tag>@<digest>`; markers whose
//! reference holds `${var}` name no policy (Flux reads Git before substitution) and are left
//! alone as "not managed here". Every file not named here stays byte-identical.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::{
    apply_args, assert_exit, bare_git, borrowed, git_import, run_once, runtime, text, upkeep,
    write_tree,
};
use upkeep_testenv::{GitServer, Registry, RegistryKind, git, write_layout};

const USER: &str = "flux-bot";
const PASSWORD: &str = "fl0x-pa55word-never-printed";
const AT: &str = "2026-12-01T10:00:00Z";

const WC: &str = "management-clusters/grizzly/organizations/acme/workload-clusters";

/// hello-world's tags: dev01 (`>=0.1.0`, only `x.y.z` tags) takes 0.2.1; prod01 (`~0.1`) 0.1.9.
const HELLO_TAGS: [&str; 7] = [
    "0.1.0",
    "0.1.8",
    "0.1.9",
    "0.2.0",
    "0.2.1",
    "0.2.2-dev.1",
    "0.3.0-rc.1",
];
/// podinfo's tags: `6.5.x` takes 6.5.3.
const PODINFO_TAGS: [&str; 3] = ["6.5.0", "6.5.3", "6.6.0"];

fn fixture() -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).expect("read fixture") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("prefix");
                out.insert(
                    rel.to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).expect("utf-8 fixture"),
                );
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/giantswarm");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

fn files_of(tree: &BTreeMap<String, String>) -> Vec<(String, Vec<u8>)> {
    tree.iter()
        .map(|(p, t)| (p.clone(), t.clone().into_bytes()))
        .collect()
}

/// The file `rel` on branch `branch` of the bare repository `bare`.
fn show(bare: &Path, branch: &str, rel: &str) -> Option<String> {
    git(
        &[
            "--git-dir",
            bare.to_str().expect("utf-8"),
            "show",
            &format!("{branch}:{rel}"),
        ],
        None,
    )
    .ok()
}

/// The expected text of each file the automations change, given the registry host, the
/// digest of podinfo 6.5.3 and which workload clusters were written.
fn expected_changes(
    original: &BTreeMap<String, String>,
    host: &str,
    digest: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let edit = |rel: &str, from: &str, to: &str| {
        let t = original[rel].clone();
        assert!(t.contains(from), "{rel} holds {from:?}");
        (rel.to_owned(), t.replacen(from, to, 1))
    };
    let podinfo = format!("{WC}/dev01/mapi/workloads/podinfo/Kustomization");
    let mut dev = BTreeMap::from([
        edit(
            &format!("{WC}/dev01/mapi/apps/hello-world/appcr.yaml"),
            "version: 0.1.0 #",
            "version: 0.2.1 #",
        ),
        edit(
            &format!("{WC}/dev01/mapi/workloads/podinfo/deployment.yaml"),
            &format!("image: {host}/apps/podinfo:6.5.0 #"),
            &format!("image: {host}/apps/podinfo:6.5.3@{digest} #"),
        ),
    ]);
    let k = original[&podinfo]
        .replacen("newTag: 6.5.0 #", "newTag: 6.5.3 #", 1)
        .replacen(
            "newDigest: sha256:0000000000000000000000000000000000000000000000000000000000000000 #",
            &format!("newDigest: {digest} #"),
            1,
        );
    dev.insert(podinfo, k);
    let prod = BTreeMap::from([edit(
        &format!("{WC}/prod01/mapi/apps/kustomization.yaml"),
        "value: 0.1.0 #",
        "value: 0.1.9 #",
    )]);
    (dev, prod)
}

#[test]
fn a_giant_swarm_repository_is_updated_like_flux_over_the_real_registry_and_git() {
    let rt = runtime();
    let registry = rt
        .block_on(Registry::start(RegistryKind::Plain))
        .expect("registry");
    let mut podinfo_digest = String::new();
    rt.block_on(async {
        for tag in HELLO_TAGS {
            registry
                .push_chart(
                    "charts/giantswarm/hello-world",
                    "hello-world",
                    tag,
                    tag,
                    None,
                )
                .await
                .expect("push hello-world");
        }
        for tag in PODINFO_TAGS {
            let d = registry
                .push_chart("apps/podinfo", "podinfo", tag, tag, None)
                .await
                .expect("push podinfo");
            if tag == "6.5.3" {
                podinfo_digest = d;
            }
        }
    });
    let server = rt
        .block_on(GitServer::start(Some((USER, PASSWORD))))
        .expect("git server");
    let url = server.url("gitops");
    let host = registry.host().to_owned();
    let original: BTreeMap<String, String> = fixture()
        .into_iter()
        .map(|(p, t)| (p, t.replace("REGISTRY", &host).replace("GIT_URL", &url)))
        .collect();
    let files = files_of(&original);
    server
        .create_repo("gitops", &borrowed(&files))
        .expect("repo");

    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("state.redb");
    let env = [
        ("UPKEEP_GIT_USERNAME", USER),
        ("UPKEEP_GIT_PASSWORD", PASSWORD),
    ];
    let workdir = tmp.path().join("gitops");
    let out = run_once(&url, &workdir, &store, AT, &env);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));

    let bare = server.bare_path("gitops");
    let (dev, prod) = expected_changes(&original, &host, &podinfo_digest);
    // dev01's automation pushes to main (its checkout branch), prod01's to its own branch.
    for (rel, before) in &original {
        let on_main = show(&bare, "main", rel).expect("every file is on main");
        let want = dev.get(rel).unwrap_or(before);
        assert_eq!(&on_main, want, "{rel} on main");
        // prod01's branch is built on main as its checkout found it: with dev01's commit
        // when dev01 ran first (the automations run in file order), without it otherwise.
        let on_prod = show(&bare, "auto-upgrades-prod01", rel).expect("branch holds every file");
        match (prod.get(rel), dev.get(rel)) {
            (Some(want), _) => assert_eq!(&on_prod, want, "{rel} on auto-upgrades-prod01"),
            (None, Some(dev_text)) => assert!(
                &on_prod == before || &on_prod == dev_text,
                "{rel} on auto-upgrades-prod01: {on_prod}"
            ),
            (None, None) => assert_eq!(&on_prod, before, "{rel} on auto-upgrades-prod01"),
        }
    }
    let log = bare_git(&bare, &["log", "-1", "--format=%an <%ae>%n%B", "main"]);
    assert!(
        log.starts_with(
            "fluxcdbot <fluxcdbot@users.noreply.github.com>\nautomated app upgrades in dev01:\n"
        ),
        "the IUA's author and message template: {log}"
    );
    assert!(
        log.contains("\n- App ${cluster_name}-hello-world: 0.1.0 -> 0.2.1\n")
            && log.contains(&format!(
                "\n- Kustomization : 6.5.0 -> 6.5.3 sha256:{} -> {podinfo_digest}\n",
                "0".repeat(64)
            ))
            && log.contains(&format!(
                "\n- Deployment podinfo: {host}/apps/podinfo:6.5.0 -> {host}/apps/podinfo:6.5.3@{podinfo_digest}\n"
            )),
        "the template's range over .Changed.Objects: {log}"
    );

    // A second run finds everything up to date and pushes nothing.
    let before = bare_git(&bare, &["rev-parse", "main", "auto-upgrades-prod01"]);
    let out = run_once(&url, &workdir, &store, AT, &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after = bare_git(&bare, &["rev-parse", "main", "auto-upgrades-prod01"]);
    assert_eq!(before, after, "nothing new to push");
}

#[test]
fn the_same_repository_over_oci_layouts_plans_and_applies_in_a_checkout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layouts = tmp.path().join("layouts");
    let hello: Vec<(&str, &str)> = HELLO_TAGS.iter().map(|t| (*t, *t)).collect();
    write_layout(&layouts.join("hello-world"), "hello-world", &hello).expect("layout");
    let podinfo: Vec<(&str, &str)> = PODINFO_TAGS.iter().map(|t| (*t, *t)).collect();
    let digests = write_layout(&layouts.join("podinfo"), "podinfo", &podinfo).expect("layout");
    let podinfo_digest = digests[1].clone();

    // The hello-world ImageRepositories become ChartSources over a layout (same namespace and
    // name, so the ImagePolicies' imageRepositoryRef finds them). podinfo's ImageRepository
    // points at a port nothing listens on: only its fields are held. A second podinfo policy
    // reads the layout and reflects digests into a kustomize images entry.
    let host = "127.0.0.1:1";
    let mut original: BTreeMap<String, String> = fixture()
        .into_iter()
        .map(|(p, t)| {
            (
                p,
                t.replace("REGISTRY", host)
                    .replace("GIT_URL", "https://git.example/gitops.git"),
            )
        })
        .collect();
    for wc in ["dev01", "prod01"] {
        original.insert(
            format!("{WC}/{wc}/mapi/apps/hello-world/imagerepository.yaml"),
            format!(
                "apiVersion: upkeep.dev/v1alpha1\nkind: ChartSource\nmetadata:\n  name: {wc}-hello-world\n  namespace: org-acme\nspec:\n  url: oci-layout:{}\n  interval: 10m\n",
                layouts.join("hello-world").display()
            ),
        );
    }
    let layout_dir = format!("{WC}/dev01/mapi/workloads/podinfo-layout");
    original.insert(
        format!("{layout_dir}/source.yaml"),
        format!(
            "apiVersion: upkeep.dev/v1alpha1\nkind: ChartSource\nmetadata:\n  name: podinfo-layout\n  namespace: org-acme\nspec:\n  url: oci-layout:{}\n  interval: 10m\n---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: podinfo-layout\n  namespace: org-acme\nspec:\n  digestReflectionPolicy: Always\n  interval: 10m\n  imageRepositoryRef:\n    name: podinfo-layout\n  policy:\n    semver:\n      range: 6.5.x\n",
            layouts.join("podinfo").display()
        ),
    );
    original.insert(
        format!("{layout_dir}/Kustomization"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n  - name: podinfo\n    newTag: 6.5.0 # {\"$imagepolicy\": \"org-acme:podinfo-layout:tag\"}\n    newDigest: sha256:1234567890abcdef # {\"$imagepolicy\": \"org-acme:podinfo-layout:digest\"}\n".to_owned(),
    );
    let checkout = tmp.path().join("gitops");
    write_tree(&checkout, &files_of(&original));
    git_import(&checkout);

    let out = upkeep(
        &[
            "plan",
            "--repo",
            checkout.to_str().expect("utf-8"),
            "--at",
            AT,
            "--output",
            "json",
        ],
        &[],
    );
    let stdout = text(&out.stdout);
    let plan: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("json plan ({e}): {stdout}\n{}", text(&out.stderr)));
    assert!(
        text(&out.stderr)
            .contains("scanning ImageRepository org-acme/podinfo: GET http://127.0.0.1:1/"),
        "the source is named as the user wrote it: {}",
        text(&out.stderr)
    );
    let fields = plan["fields"].as_array().expect("fields");
    let field = |file_end: &str, current: &str| {
        fields
            .iter()
            .find(|f| {
                f["file"].as_str().is_some_and(|x| x.ends_with(file_end)) && f["current"] == current
            })
            .unwrap_or_else(|| panic!("a field in {file_end} holding {current}: {stdout}"))
    };
    let app = field("dev01/mapi/apps/hello-world/appcr.yaml", "0.1.0");
    assert_eq!(app["action"], "write", "{app}");
    assert_eq!(app["target"], "0.2.1", "filterTags keep only x.y.z tags");
    let patch = field("prod01/mapi/apps/kustomization.yaml", "0.1.0");
    assert_eq!(
        patch["target"], "0.1.9",
        "~0.1, inside the patch block scalar"
    );
    let variable = field("dev01/mapi/apps/kustomization.yaml", "1.4.0");
    assert_eq!(variable["action"], "not-managed", "{variable}");
    let tag = field(&format!("{layout_dir}/Kustomization"), "6.5.0");
    assert_eq!(tag["target"], "6.5.3", "{tag}");
    let digest = field(
        &format!("{layout_dir}/Kustomization"),
        "sha256:1234567890abcdef",
    );
    assert_eq!(
        digest["target"],
        podinfo_digest.as_str(),
        "index.json's digest"
    );
    for current in ["6.5.0", &format!("{host}/apps/podinfo")] {
        let held = field("dev01/mapi/workloads/podinfo/Kustomization", current);
        assert_ne!(held["action"], "write", "{held}");
        assert!(
            held["reason"]
                .as_str()
                .is_some_and(|r| r.contains("127.0.0.1:1")),
            "the unreachable source is named: {held}"
        );
    }

    let store = tmp.path().join("s.redb");
    let out = upkeep(&apply_args(&checkout, AT, &store), &[]);
    assert_exit(&out, 4, "partial: podinfo's source is unreachable");
    let read = |rel: &str| std::fs::read_to_string(checkout.join(rel)).expect("read");
    assert!(
        read(&format!("{WC}/dev01/mapi/apps/hello-world/appcr.yaml")).contains("version: 0.2.1 #")
    );
    let k = read(&format!("{layout_dir}/Kustomization"));
    assert!(
        k.contains("newTag: 6.5.3 #") && k.contains(&format!("newDigest: {podinfo_digest} #")),
        "{k}"
    );
    assert_eq!(
        read(&format!("{WC}/dev01/mapi/workloads/podinfo/Kustomization")),
        original[&format!("{WC}/dev01/mapi/workloads/podinfo/Kustomization")],
        "the unreachable source's file is untouched"
    );
}
