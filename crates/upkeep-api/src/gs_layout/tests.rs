//! The fixture fleet (`testdata/giantswarm/fleet`, Giant Swarm's gitops-template layout),
//! golden repositories (`testdata/giantswarm/places/<case>/{case,original,expected}`) for each
//! place, and the refusals.

use std::fmt::Write as _;
use std::path::Path;

use super::*;

fn read_tree(root: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

fn testdata(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/giantswarm")
        .join(rel)
}

#[test]
fn the_fixture_fleet() {
    let files = read_tree(&testdata("fleet"));
    let (clusters, errors) = discover(&files);
    assert!(errors.is_empty(), "{errors:#?}");
    let mut got = String::new();
    for c in &clusters {
        let p = c.place.as_ref().expect("a place");
        let _ = writeln!(
            got,
            "{}/{} {} {:?} {} at {} labels {:?}",
            c.namespace,
            c.name,
            c.provider.as_deref().unwrap_or("-"),
            c.version.as_deref().unwrap_or("-"),
            p.place.kind(),
            p.at(),
            c.labels
        );
    }
    let w = "management-clusters/golem/organizations";
    let want = format!(
        "\
org-acme/dev01 aws \"29.1.0\" Values at {w}/acme/workload-clusters/dev01/mapi/cluster/cluster_user_config.yaml:24 labels {{\"giantswarm.io/organization\": \"acme\", \"stage\": \"dev\", \"team\": \"platform\"}}
org-acme/prod01 aws \"0.13.0\" Substitute at {w}/acme/workload-clusters/prod01.yaml:14 labels {{\"giantswarm.io/organization\": \"acme\", \"stage\": \"prod\", \"team\": \"platform\"}}
org-globex/dev02 azure \"1.2.0\" App at {w}/globex/workload-clusters/dev02/mapi/cluster/app.yaml:14 labels {{\"giantswarm.io/organization\": \"globex\", \"stage\": \"dev\"}}
org-globex/prod02 aws \"29.0.1\" Substitute at {w}/globex/workload-clusters/prod02.yaml:12 labels {{\"giantswarm.io/organization\": \"globex\", \"stage\": \"prod\"}}
"
    );
    assert_eq!(got, want);
    let dev01 = &clusters[0];
    assert_eq!(
        dev01.path,
        format!("{w}/acme/workload-clusters/dev01/mapi"),
        "spec.path, ./ and quotes gone"
    );
    assert_eq!(dev01.chart.as_deref(), Some("cluster-aws"));
    assert_eq!(
        dev01.app.as_ref().map(|a| a.file.as_str()),
        Some(format!("{w}/acme/workload-clusters/dev01/mapi/cluster/cluster.yaml").as_str())
    );
}

/// Reads `case`: `key: value` lines.
fn read_case(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn spec_of(t: &str) -> VersionPlaceSpec {
    serde_json::from_value(serde_json::json!({ "type": t })).expect("a type")
}

#[test]
fn golden_repositories() {
    let root = testdata("places");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 8, "the golden cases are there");
    for dir in dirs {
        let case = read_case(&std::fs::read_to_string(dir.join("case")).unwrap());
        let get = |k: &str| {
            case.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let what = format!(
            "{}: {}",
            dir.display(),
            get("reason").expect("every case says why")
        );
        let (ns, name) = get("cluster")
            .and_then(|c| c.split_once('/').map(|(a, b)| (a.to_owned(), b.to_owned())))
            .expect("cluster: ns/name");
        let version = get("version").expect("version");
        let spec = spec_of(get("place").as_deref().unwrap_or("Auto"));
        let files = read_tree(&dir.join("original"));
        let result =
            locate(&files, Some(&ns), &name, &spec, &VersionPlace::default()).and_then(|found| {
                if let Some(kind) = get("found") {
                    assert_eq!(found.place.kind(), kind, "{what}: the place");
                }
                set_version(&files, &found, &version)
            });
        match (result, get("error")) {
            (Ok(edits), None) => {
                let mut out = files.clone();
                for (i, e) in edits {
                    out[i].1 = e.new_text;
                }
                let expected = read_tree(&dir.join("expected"));
                assert_eq!(
                    out.iter().map(|(p, _)| p).collect::<Vec<_>>(),
                    expected.iter().map(|(p, _)| p).collect::<Vec<_>>(),
                    "{what}: the same files"
                );
                for ((path, got), (_, want)) in out.iter().zip(&expected) {
                    assert_eq!(got, want, "{what}: {path}");
                }
            }
            (Err(e), Some(kind)) => {
                assert_eq!(e.kind(), kind, "{what}: {e}");
                assert!(e.hint().is_some(), "{what}: a hint for {e}");
                if let Some(at) = get("error_at") {
                    assert!(e.to_string().contains(&at), "{what}: {e} names {at}");
                }
            }
            (Ok(_), Some(kind)) => panic!("{what}: written, but {kind} was expected"),
            (Err(e), None) => panic!("{what}: {e}"),
        }
    }
}

#[test]
fn discovery_problems_are_located() {
    let ks = |path: &str| {
        format!(
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: x\n  namespace: default\nspec:\n  path: {path}\n  postBuild:\n    substitute:\n      cluster_name: x\n      organization: o\n"
        )
    };
    let files = vec![
        ("a.yaml".to_owned(), ks("./../outside/mapi")),
        (
            "b/kustomization.yaml".to_owned(),
            "resources:\n  - ../../../etc\n".to_owned(),
        ),
    ];
    let layout = Layout::read(&files);
    let errors = layout.errors();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        shown[0].starts_with(
            "b/kustomization.yaml:1:1: resources: \"../../../etc\" leaves the repository"
        ),
        "{shown:?}"
    );
    assert!(
        shown[1].starts_with("a.yaml:7:1: spec.path: \"./../outside/mapi\" leaves the repository"),
        "{shown:?}"
    );
    assert!(errors.iter().all(|e| e.hint.is_some()));
}

#[test]
fn a_large_values_block_is_found_and_edited() {
    let mut values = String::from("global:\n  release:\n    version: 29.1.0\n  big:\n");
    for i in 0..50_000 {
        let _ = writeln!(values, "    key{i}: value {i}");
    }
    let indented: String = values.lines().fold(String::new(), |mut s, l| {
        let _ = writeln!(s, "    {l}");
        s
    });
    let files = vec![
        (
            "c.yaml".to_owned(),
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: c\nspec:\n  path: ./c\n  postBuild:\n    substitute:\n      cluster_name: c\n      organization: o\n".to_owned(),
        ),
        (
            "c/cm.yaml".to_owned(),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c-userconfig\n  namespace: org-o\ndata:\n  values: |\n{indented}"),
        ),
    ];
    let found = locate(
        &files,
        Some("org-o"),
        "c",
        &VersionPlaceSpec::default(),
        &VersionPlace::default(),
    )
    .expect("found");
    assert_eq!(found.place.kind(), "Values");
    assert_eq!(found.at(), "c/cm.yaml:10");
    let edits = set_version(&files, &found, "29.2.0").expect("written");
    assert_eq!(
        edits[0].1.new_text,
        files[1].1.replace("version: 29.1.0", "version: 29.2.0")
    );
}
