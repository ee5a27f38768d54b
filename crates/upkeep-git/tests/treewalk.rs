//! A commit's tree is walked by the same rules as the work tree: the same files (at their real
//! paths, once) and the same links left out, for a repository full of symlinks.

use std::os::unix::fs::symlink;
use std::path::Path;

use upkeep_git::Repo;
use upkeep_testenv::git;

fn write(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, s).expect("write");
}

#[test]
fn the_tree_and_the_work_tree_list_the_same_files_and_skip_the_same_links() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("repo");
    let outside = tmp.path().join("outside");
    write(&outside.join("v2.yaml"), "a: 1\n");
    write(&root.join("apps/dev/a.yaml"), "a: 1\n");
    write(&root.join("apps/dev/sub/b.yml"), "b: 1\n");
    write(&root.join("apps/prod/c.yaml"), "c: 1\n");
    write(&root.join("shared/s.yaml"), "s: 1\n");
    write(&root.join("shared/deep/t.yaml"), "t: 1\n");
    // Flux reads kustomize's extensionless `Kustomization` too; other names without `.yaml` no.
    write(&root.join("apps/dev/Kustomization"), "images: []\n");
    write(&root.join("apps/dev/kustomization"), "images: []\n");
    write(&root.join("apps/dev/README"), "x\n");
    let dev = root.join("apps/dev");
    // (link, target): every kind the walk must handle.
    let links = [
        ("extfile.yaml", "../../../outside/v2.yaml"),
        ("abs.yaml", "/etc/hostname"),
        ("l1", "."),
        ("up", ".."),
        ("shared", "../../shared"),
        ("alias.yaml", "a.yaml"),
        ("s-link.yaml", "../../shared/s.yaml"),
        ("chain.yaml", "s-link.yaml"),
        ("dangling.yaml", "nothing.yaml"),
        ("self.yaml", "self.yaml"),
    ];
    for (link, target) in links {
        symlink(target, dev.join(link)).expect("symlink");
    }
    git(&["init", "-q", "-b", "main"], Some(&root)).expect("init");
    git(&["add", "-A"], Some(&root)).expect("add");
    git(&["commit", "-qm", "links"], Some(&root)).expect("commit");
    let repo = Repo::open(&root).expect("open");
    let head = repo.head_commit().expect("head");
    for under in ["apps/dev", "", "apps/dev/shared"] {
        let (tree_files, tree_skipped) = repo.manifest_files(head, under).expect("tree walk");
        let work = upkeep_api::walk::walk(&root, under);
        let tree: Vec<&str> = tree_files.iter().map(|f| f.path.as_str()).collect();
        let work_files: Vec<&str> = work.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(
            tree, work_files,
            "{under:?}: the same files, at their real paths"
        );
        let kinds = |s: &[upkeep_api::walk::Skipped]| {
            let mut v: Vec<(String, &'static str)> =
                s.iter().map(|s| (s.rel.clone(), s.reason.kind())).collect();
            v.sort();
            v
        };
        assert_eq!(
            kinds(&tree_skipped),
            kinds(&work.skipped),
            "{under:?}: the same links left out, for the same reasons"
        );
    }
    let (files, _) = repo.manifest_files(head, "apps/dev").expect("walk");
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert!(
        paths.contains(&"shared/s.yaml") && paths.contains(&"shared/deep/t.yaml"),
        "links inside the repository are followed: {paths:?}"
    );
    assert!(
        paths.contains(&"apps/dev/Kustomization")
            && !paths.contains(&"apps/dev/kustomization")
            && !paths.contains(&"apps/dev/README"),
        "a file named exactly Kustomization is a manifest: {paths:?}"
    );
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("outside") || p.contains("hostname")),
        "nothing outside: {paths:?}"
    );
}
