//! `upkeep apply`, `run` and `history` as a user runs them, against real Git: a local
//! checkout, and `git http-backend` behind nginx with basic auth (upkeep-testenv). Pull
//! requests go to the testenv's GitLab-flavoured stand-in (there is no real forge here).
//!
//! The fleet is the quickstart's, copied, with the bundled OCI layouts linked next to it; at
//! 2026-11-21T10:00Z the dev automation may write two upgrades and production is held.

mod support;

use support::{
    AT, apply_args, assert_exit, assert_one_commit_on, bare_git, borrowed,
    clone_then_forget_password, fleet_files, fleet_with_automation_edit, git_import, git_in,
    run_once, runtime, scratch, shown_lines, text, upkeep, write_tree,
};
use upkeep_testenv::{ForgeFlavor, GitServer, PrStandIn};

const USER: &str = "upkeep-bot";
const PASSWORD: &str = "git-pa55word-never-printed";
const TOKEN: &str = "pr-t0ken-never-printed";

/// Writes `files` into `<tmp>/fleet`, commits them on `main`, and runs `upkeep apply` there at
/// [`AT`] with a store in `tmp`.
fn apply_to_new_checkout(
    tmp: &std::path::Path,
    files: &[(String, Vec<u8>)],
) -> (std::path::PathBuf, std::process::Output) {
    let fleet = tmp.join("fleet");
    write_tree(&fleet, files);
    git_import(&fleet);
    let store = tmp.join("s.redb");
    let out = upkeep(&apply_args(&fleet, AT, &store), &[]);
    (fleet, out)
}

#[test]
fn apply_commits_allowed_upgrades_in_the_checkout_and_history_lists_them() {
    let tmp = scratch();
    let fleet = tmp.path().join("fleet");
    write_tree(&fleet, &fleet_files(|_, t| t));
    git_import(&fleet);
    let store = tmp.path().join("state.redb");
    let store = store.to_str().expect("utf-8");
    let repo = fleet.to_str().expect("utf-8");

    let out = upkeep(
        &["apply", "--repo", repo, "--at", AT, "--store", store],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("org-acme/dev-apps: 2 change(s), commit"),
        "{stdout}"
    );
    assert!(
        stdout.contains("outside every maintenance window"),
        "held fields are shown: {stdout}"
    );

    let log = git_in(&fleet, &["log", "--format=%an <%ae>|%s", "-2"]);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "upkeep <upkeep@example.com>|Upgrade 2 versions",
            "upkeep-testenv <testenv@upkeep.invalid>|import"
        ],
        "one commit by the automation's author on top of the user's"
    );
    let changed = git_in(&fleet, &["show", "--name-only", "--format=", "HEAD"]);
    assert_eq!(
        changed.lines().collect::<Vec<_>>(),
        ["apps/dev/cert-manager.yaml", "apps/dev/podinfo.yaml"],
        "only the dev files change; production is outside its window"
    );
    let diff = git_in(&fleet, &["show", "--format=", "HEAD"]);
    assert!(diff.contains("-    targetRevision: '6.5.4' # {\"$upkeep\": \"flux-system:podinfo\"}\n+    targetRevision: '6.7.0-rc.2' # {\"$upkeep\": \"flux-system:podinfo\"}"), "{diff}");
    assert_eq!(
        git_in(&fleet, &["status", "--porcelain"]),
        "",
        "the work tree matches the commit"
    );
    let head = git_in(&fleet, &["rev-parse", "HEAD"]).trim().to_owned();

    let out = upkeep(&["history", "--store", store, "-o", "json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = history.as_array().expect("array");
    assert_eq!(rows.len(), 2, "{history}");
    for row in rows {
        assert_eq!(row["commit"], head.as_str(), "{row}");
        assert_eq!(row["repository"], repo, "{row}");
    }
    assert!(
        rows.iter().any(|r| r["file"] == "apps/dev/podinfo.yaml"
            && r["old"] == "6.5.4"
            && r["new"] == "6.7.0-rc.2"
            && r["object"]["kind"] == "Application"),
        "{history}"
    );

    let again = upkeep(
        &["apply", "--repo", repo, "--at", AT, "--store", store],
        &[],
    );
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(
        git_in(&fleet, &["rev-parse", "HEAD"]).trim(),
        head,
        "nothing new: no second commit"
    );
}

#[test]
fn apply_never_touches_files_with_uncommitted_changes() {
    let tmp = scratch();
    let fleet = tmp.path().join("fleet");
    write_tree(&fleet, &fleet_files(|_, t| t));
    git_import(&fleet);
    let podinfo = fleet.join("apps/dev/podinfo.yaml");
    let edited = format!(
        "{}# my unsaved note\n",
        std::fs::read_to_string(&podinfo).expect("read")
    );
    std::fs::write(&podinfo, &edited).expect("write");
    let store = tmp.path().join("state.redb");

    let out = upkeep(&apply_args(&fleet, AT, &store), &[]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(4),
        "partial: the edited file is held, the rest is written\n{stdout}"
    );
    let podinfo_row = stdout
        .lines()
        .find(|l| l.contains("apps/dev/podinfo.yaml:"))
        .unwrap_or_default();
    assert!(
        podinfo_row.contains("error") && podinfo_row.contains("commit or stash them"),
        "the held file's field says why: {stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(&podinfo).expect("read"),
        edited,
        "the user's edit is kept"
    );
    assert_eq!(
        git_in(&fleet, &["show", "--name-only", "--format=", "HEAD"])
            .lines()
            .collect::<Vec<_>>(),
        ["apps/dev/cert-manager.yaml"],
        "the other file of the automation is committed, the edited one is not"
    );
    assert_eq!(
        git_in(&fleet, &["status", "--porcelain"]).trim(),
        "M apps/dev/podinfo.yaml",
        "only the user's own edit is left uncommitted"
    );
}

#[test]
fn a_broken_commit_template_is_an_input_error_naming_field_and_line() {
    let tmp = scratch();
    let fleet = tmp.path().join("fleet");
    write_tree(
        &fleet,
        &fleet_with_automation_edit(
            "      email: upkeep@example.com\n",
            "      email: upkeep@example.com\n    messageTemplate: |\n      Bump\n      {{ changes[0].nwe }}\n",
        ),
    );
    let out = upkeep(&apply_args(&fleet, AT, &tmp.path().join("s.redb")), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("spec.commit.messageTemplate") && stderr.contains("line 2"),
        "{stderr}"
    );
}

/// The fleet with the dev automation pushing to an upgrade branch with a merge request.
fn fleet_with_pull_requests(api: &str) -> Vec<(String, Vec<u8>)> {
    fleet_with_automation_edit(
        "  scheduleRef:\n    name: dev-anytime\n  commit:\n    author:\n      name: upkeep\n      email: upkeep@example.com\n",
        &format!(
            "  scheduleRef:\n    name: dev-anytime\n  commit:\n    author:\n      name: upkeep\n      email: upkeep@example.com\n  push:\n    branch: upkeep/dev-apps\n    pullRequest:\n      provider: gitlab\n      apiUrl: {api}\n      labels: [upkeep, dev]\n"
        ),
    )
}

/// The Git server with `fleet` ([`fleet_with_pull_requests`]), the GitLab stand-in with
/// `git/fleet`, and the repository's URL.
fn servers_with_pull_requests(rt: &tokio::runtime::Runtime) -> (GitServer, PrStandIn, String) {
    let server = rt
        .block_on(GitServer::start(Some((USER, PASSWORD))))
        .expect("git server");
    let forge = PrStandIn::start(ForgeFlavor::Gitlab, TOKEN).expect("stand-in");
    forge.create_repository("git/fleet");
    let files = fleet_with_pull_requests(&forge.api_base());
    let url = server
        .create_repo("fleet", &borrowed(&files))
        .expect("repo");
    (server, forge, url)
}

#[test]
fn apply_push_builds_the_upgrade_branch_on_the_server_and_opens_one_merge_request() {
    let rt = runtime();
    let (server, forge, url) = servers_with_pull_requests(&rt);
    let bare = server.bare_path("fleet");
    let main_before = bare_git(&bare, &["rev-parse", "main"]);

    let tmp = scratch();
    let fleet = tmp.path().join("fleet");
    clone_then_forget_password(&url, USER, PASSWORD, &fleet);
    let store = tmp.path().join("state.redb");
    let env = [
        ("UPKEEP_GIT_USERNAME", USER),
        ("UPKEEP_GIT_PASSWORD", PASSWORD),
        ("UPKEEP_PR_TOKEN", TOKEN),
    ];
    let args = [
        apply_args(&fleet, AT, &store).as_slice(),
        &["--push", "--pull-request", "--allow-insecure-http"],
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
    for secret in [PASSWORD, TOKEN] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a secret leaked:\n{stdout}\n{stderr}"
        );
    }
    assert!(
        stdout.contains("pushed to origin upkeep/dev-apps"),
        "{stdout}"
    );
    assert!(stdout.contains("(opened)"), "{stdout}");

    assert_one_commit_on(&bare, "upkeep/dev-apps", &main_before);
    assert_eq!(
        shown_lines(&bare, "%ae", "upkeep/dev-apps"),
        [
            "upkeep@example.com",
            "apps/dev/cert-manager.yaml",
            "apps/dev/podinfo.yaml"
        ]
    );
    assert_eq!(
        git_in(&fleet, &["status", "--porcelain"]),
        "",
        "the checkout is not changed by --push"
    );

    let prs = forge.pull_requests("git/fleet");
    assert_eq!(prs.len(), 1, "{prs:?}");
    assert_eq!(
        (prs[0].head.as_str(), prs[0].base.as_str()),
        ("upkeep/dev-apps", "main")
    );
    assert_eq!(prs[0].labels, ["upkeep", "dev"]);
    assert!(
        prs[0].body.contains("| `apps/dev/podinfo.yaml:12` | Application argocd/podinfo | `6.5.4` | `6.7.0-rc.2` | minor | flux-system/podinfo |"),
        "{}",
        prs[0].body
    );

    // Again: the branch already holds everything; the merge request is updated, not doubled.
    let out = upkeep(&args, &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("origin upkeep/dev-apps is up to date") && stdout.contains("(updated)"),
        "{stdout}"
    );
    assert_eq!(forge.pull_requests("git/fleet").len(), 1);

    let out = upkeep(
        &[
            "history",
            "--store",
            store.to_str().expect("utf-8"),
            "-o",
            "json",
        ],
        &[],
    );
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = history.as_array().expect("array");
    assert_eq!(
        rows.len(),
        2,
        "only the run that pushed recorded changes: {history}"
    );
    assert!(
        rows.iter().all(|r| r["pullRequest"]
            .as_str()
            .is_some_and(|p| p.starts_with("#1 "))),
        "{history}"
    );
}

#[test]
fn run_once_over_a_url_clones_scans_pushes_and_records_the_run() {
    let rt = runtime();
    let (server, forge, url) = servers_with_pull_requests(&rt);
    let tmp = scratch();
    let workdir = tmp.path().join("fleet");
    let store = tmp.path().join("state.redb");
    let env = [
        ("UPKEEP_GIT_USERNAME", USER),
        ("UPKEEP_GIT_PASSWORD", PASSWORD),
        ("UPKEEP_PR_TOKEN", TOKEN),
    ];
    let out = run_once(&url, &workdir, &store, AT, &env);
    let stdout = text(&out.stdout);
    assert_exit(&out, 0, "");
    assert!(
        stdout.contains("pushed to origin upkeep/dev-apps"),
        "{stdout}"
    );
    assert_eq!(forge.pull_requests("git/fleet").len(), 1);
    let bare = server.bare_path("fleet");
    let branches = bare_git(&bare, &["branch", "--list"]);
    assert!(branches.contains("upkeep/dev-apps"), "{branches}");

    // A wrong password: the run fails, says why without the secret, and is recorded.
    let out = run_once(
        &url,
        &workdir,
        &store,
        AT,
        &[
            ("UPKEEP_GIT_USERNAME", USER),
            ("UPKEEP_GIT_PASSWORD", "wrong-secret-zzz"),
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("401") && !stderr.contains("wrong-secret-zzz"),
        "{stderr}"
    );
}

#[test]
fn a_suspended_automation_writes_nothing_and_says_so() {
    let tmp = scratch();
    let fleet = tmp.path().join("fleet");
    write_tree(
        &fleet,
        &fleet_with_automation_edit(
            "  scheduleRef:\n    name: dev-anytime\n",
            "  scheduleRef:\n    name: dev-anytime\n  suspend: true\n",
        ),
    );
    git_import(&fleet);
    let out = upkeep(&apply_args(&fleet, AT, &tmp.path().join("s.redb")), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("org-acme/dev-apps: nothing to write")
            && stdout.contains("the AppUpgradeAutomation is suspended"),
        "{stdout}"
    );
    assert_eq!(
        git_in(&fleet, &["rev-list", "--count", "HEAD"]).trim(),
        "1",
        "no commit"
    );
}

#[test]
fn a_file_that_is_not_yaml_is_reported_and_left_alone_while_the_rest_is_written() {
    let tmp = scratch();
    let mut files = fleet_files(|_, t| t);
    let broken =
        "spec:\n  version: 6.5.4 # {\"$upkeep\": \"flux-system:podinfo\"}\n   bad: [indent\n";
    files.push((
        "apps/dev/broken.yaml".to_owned(),
        broken.as_bytes().to_vec(),
    ));
    let (fleet, out) = apply_to_new_checkout(tmp.path(), &files);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(4),
        "reported as a problem (partial: the rest is written):\n{stdout}\n{stderr}"
    );
    let row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("apps/dev/broken.yaml:2"))
        .unwrap_or_default();
    assert!(
        row.contains("error") && row.contains("not valid YAML"),
        "the marked field names its file, line and why: {stdout}"
    );
    assert!(
        stdout.contains("org-acme/dev-apps: 2 change(s)"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(fleet.join("apps/dev/broken.yaml")).expect("read"),
        broken,
        "left alone byte for byte"
    );
    assert_eq!(
        git_in(&fleet, &["show", "--name-only", "--format=", "HEAD"])
            .lines()
            .collect::<Vec<_>>(),
        ["apps/dev/cert-manager.yaml", "apps/dev/podinfo.yaml"]
    );
}

#[test]
fn unsafe_marked_fields_are_held_with_their_policy_and_the_rest_of_their_file_is_written() {
    let tmp = scratch();
    let mut files = fleet_files(|_, t| t);
    // Issue 11: a plain value over two lines and a marker after an explicit key were rewritten
    // into broken YAML; now each is refused on its line. Issue 12: the safe field of the same
    // policy in that file is held with them (one policy's fields move together), while a field
    // of another policy beside them moves, and the policy's fields in other files move.
    let mixed = "spec:\n  values:\n    good: 6.5.4 # {\"$upkeep\": \"flux-system:podinfo\"}\n    \
                 note: 6.5\n      6.5.4 # {\"$upkeep\": \"flux-system:podinfo\"}\n    \
                 ? version # {\"$upkeep\": \"flux-system:podinfo\"}\n    : 6.5.4\n    \
                 cm: v1.15.0 # {\"$upkeep\": \"flux-system:cert-manager\"}\n";
    files.push(("apps/dev/mixed.yaml".to_owned(), mixed.as_bytes().to_vec()));
    let (fleet, out) = apply_to_new_checkout(tmp.path(), &files);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(4),
        "partial: reported, the rest written:\n{stdout}\n{stderr}"
    );
    let all = format!("{stdout}\n{stderr}");
    for (line, why) in [
        (5, "spans lines 4-5"),
        (6, "explicit (`?`)"),
        (3, "held with line 5"),
    ] {
        assert!(
            all.lines()
                .any(|l| l.contains(&format!("mixed.yaml:{line}")) && l.contains(why)),
            "line {line} is held with its reason:\n{all}"
        );
    }
    let version = |file: &str, key: &str| {
        std::fs::read_to_string(fleet.join(file))
            .expect("read")
            .lines()
            .find_map(|l| l.trim().strip_prefix(key).map(str::to_owned))
            .and_then(|v| {
                v.trim_start_matches(['\'', '"'])
                    .split([' ', '\'', '"'])
                    .next()
                    .map(str::to_owned)
            })
            .expect("a version")
    };
    assert_ne!(
        version("apps/dev/podinfo.yaml", "targetRevision: "),
        "6.5.4",
        "podinfo moved in its own file:\n{stdout}"
    );
    let cm = version("apps/dev/cert-manager.yaml", "version: ");
    assert_ne!(cm, "v1.15.0", "cert-manager moved:\n{stdout}");
    assert_eq!(
        std::fs::read_to_string(fleet.join("apps/dev/mixed.yaml")).expect("read"),
        mixed.replacen("cm: v1.15.0", &format!("cm: {cm}"), 1),
        "only the other policy's field changed"
    );
    assert!(
        git_in(&fleet, &["show", "--name-only", "--format=", "HEAD"])
            .lines()
            .any(|f| f == "apps/dev/mixed.yaml"),
        "and it is committed"
    );
}

/// A Flux-shaped addition to the fleet: a kustomize file named `Kustomization` (read like
/// `.yaml`), a `$imagepolicy` marker for a policy this repository does not have (left alone as
/// "not managed", not an error: exit 0), and a bare marker on a version (held with the hint to
/// mark the tag, never rewritten into `0.1.0:…`).
#[test]
fn flux_files_are_read_and_foreign_markers_left_alone() {
    let tmp = scratch();
    let mut files = fleet_files(|_, t| t);
    let kustomization = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - podinfo.yaml\nimages:\n  - name: podinfo\n    newTag: 6.5.4 # {\"$imagepolicy\": \"flux-system:podinfo:tag\"}\n";
    let shared = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shared\nspec:\n  template:\n    spec:\n      containers:\n      - name: other\n        image: ghcr.io/team-b/app:1.0.0 # {\"$imagepolicy\": \"team-b:app\"}\n---\napiVersion: application.giantswarm.io/v1alpha1\nkind: App\nmetadata:\n  name: podinfo\nspec:\n  version: 6.5.4 # {\"$imagepolicy\": \"flux-system:podinfo\"}\n  extra: 6.5.4 # {\"$imagepolicy\": \"apps:podinfo:tag\"}\n";
    files.push((
        "apps/dev/Kustomization".to_owned(),
        kustomization.as_bytes().to_vec(),
    ));
    files.push((
        "apps/dev/shared.yaml".to_owned(),
        shared.as_bytes().to_vec(),
    ));

    let fleet = tmp.path().join("fleet");
    write_tree(&fleet, &files);
    let plan = upkeep(
        &[
            "plan",
            "--repo",
            fleet.to_str().expect("utf-8"),
            "--at",
            AT,
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("json");
    let field = |file: &str, line: u64| {
        json["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|f| f["file"] == file && f["line"] == line)
            .unwrap_or_else(|| panic!("{file}:{line} in {json}"))
            .clone()
    };
    let foreign = field("apps/dev/shared.yaml", 10);
    assert_eq!(foreign["action"], "not-managed", "{foreign}");
    let bare = field("apps/dev/shared.yaml", 17);
    assert_eq!(bare["action"], "held", "{bare}");
    assert_eq!(
        bare["current"], "6.5.4",
        "the value exactly as in the file: {bare}"
    );
    assert!(
        bare["reason"]
            .as_str()
            .is_some_and(|r| r.contains(r#"did you mean "flux-system:podinfo:tag"?"#)),
        "{bare}"
    );
    let moved = field("apps/dev/shared.yaml", 18);
    assert_eq!(moved["action"], "not-managed", "{moved}");
    assert!(
        moved["reason"]
            .as_str()
            .is_some_and(|r| r.contains(r#"did you mean "flux-system:podinfo:tag"?"#)),
        "the one policy of that name, in another namespace, is named: {moved}"
    );
    let tag = field("apps/dev/Kustomization", 7);
    assert_eq!(tag["action"], "write", "{tag}");
    let summary = text(&plan.stderr);
    assert!(
        summary.contains("held,") && summary.contains("2 not managed, 0 in error"),
        "{summary}"
    );

    let (fleet, out) = apply_to_new_checkout(tmp.path(), &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "a foreign marker is not a problem:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("apps/dev/shared.yaml:10") && l.contains("not managed")),
        "{stdout}"
    );
    assert!(
        stderr.contains("2 not managed, 0 in error"),
        "the summary on stderr: {stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(fleet.join("apps/dev/shared.yaml")).expect("read"),
        shared,
        "foreign and held fields are left alone byte for byte"
    );
    let written = std::fs::read_to_string(fleet.join("apps/dev/Kustomization")).expect("read");
    assert!(
        !written.contains("newTag: 6.5.4 ") && written.contains("newTag: 6."),
        "{written}"
    );
    assert!(
        git_in(&fleet, &["show", "--name-only", "--format=", "HEAD"])
            .lines()
            .any(|f| f == "apps/dev/Kustomization"),
        "the Kustomization file is committed"
    );
}
