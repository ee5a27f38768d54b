//! The writer against repositories nobody on the team wrote: symlinks that lead out, loops,
//! FIFOs, files that are not UTF-8, private and executable files, broken resources, a source
//! that cannot be reached, and automations that claim the same files. Each case runs the real
//! `upkeep` binary on a copy of the quickstart fleet, in a plain directory and in a Git
//! checkout, and checks what is on disk (and in Git) afterwards, not only what was printed.

mod support;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use support::{AT, assert_exit, commit_all, fleet_in, git_in, s, scratch, text, upkeep_within};

const PODINFO: &str = "apps/dev/podinfo.yaml";
const CERT: &str = "apps/dev/cert-manager.yaml";
const MARKED: &str = "spec:\n  version: 6.5.4 # {\"$upkeep\": \"flux-system:podinfo\"}\n";

/// `upkeep apply` at [`AT`] on `fleet`, with a store in `tmp`, within `secs`.
fn apply(tmp: &Path, fleet: &Path, secs: u32) -> std::process::Output {
    let store = tmp.join("state.redb");
    upkeep_within(
        secs,
        &[
            "apply",
            "--repo",
            s(fleet),
            "--at",
            AT,
            "--store",
            s(&store),
        ],
        &[],
    )
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777
}

fn is_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p)
        .expect("lstat")
        .file_type()
        .is_symlink()
}

fn mkfifo(p: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .expect("mkfifo")
        .success();
    assert!(ok, "mkfifo {}", p.display());
}

/// Plants every hostile entry under `apps/dev` of `fleet`, with `outside` a directory beside
/// the repository holding a marked file.
fn plant(fleet: &Path, outside: &Path) {
    std::fs::create_dir_all(outside).expect("mkdir");
    std::fs::write(outside.join("v2.yaml"), MARKED).expect("write");
    let dev = fleet.join("apps/dev");
    symlink(outside, dev.join("extdir")).expect("dir link out");
    symlink(outside.join("v2.yaml"), dev.join("ext.yaml")).expect("file link out");
    symlink("../../../outside/v2.yaml", dev.join("ext-relative.yaml")).expect("relative out");
    symlink(".", dev.join("l1")).expect("loop");
    symlink(".", dev.join("l2")).expect("loop");
    symlink("podinfo.yaml", dev.join("alias.yaml")).expect("link inside");
    std::fs::create_dir_all(fleet.join("shared")).expect("mkdir");
    std::fs::write(fleet.join("shared/app.yaml"), MARKED).expect("write");
    symlink("../../shared/app.yaml", dev.join("shared-app.yaml")).expect("link inside");
    symlink("/nonexistent/x.yaml", dev.join("dangling.yaml")).expect("dangling");
    std::fs::write(
        dev.join("latin1.yaml"),
        b"spec:\n  note: caf\xe9\n  version: 6.5.4 # {\"$upkeep\": \"flux-system:podinfo\"}\n",
    )
    .expect("write");
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(MARKED.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    std::fs::write(dev.join("utf16.yaml"), utf16).expect("write");
    std::fs::set_permissions(fleet.join(PODINFO), std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    std::fs::set_permissions(fleet.join(CERT), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
}

#[test]
fn a_hostile_repository_is_read_and_written_only_inside_and_nothing_hangs() {
    for git in [false, true] {
        let tmp = scratch();
        let fleet = fleet_in(tmp.path(), false, |_, t| t);
        let outside = tmp.path().join("outside");
        plant(&fleet, &outside);
        if git {
            commit_all(&fleet, "import");
        }
        // A FIFO would block a read forever; Git cannot track one, so it comes after the commit.
        mkfifo(&fleet.join("apps/dev/pipe.yaml"));
        let case = if git {
            "git checkout"
        } else {
            "plain directory"
        };
        let store = tmp.path().join("state.redb");
        let args =
            |cmd: &'static str| vec![cmd, "--repo", s(&fleet), "--at", AT, "--store", s(&store)];

        let mut plan = args("plan");
        plan.truncate(5);
        let out = upkeep_within(60, &plan, &[]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(
            out.status.code(),
            Some(4),
            "{case}: plan is partial\n{stdout}\n{stderr}"
        );
        // (what the plan must say, reason)
        let said = [
            ("apps/dev/ext.yaml", "a file link out is named"),
            ("outside the repository", "and why it is skipped"),
            ("apps/dev/latin1.yaml:2", "a non-UTF-8 file, with the line"),
            ("UTF-16", "a UTF-16 file is recognised"),
            ("apps/dev/pipe.yaml", "a FIFO is named"),
            ("not a regular file", "and why"),
            (
                "shared/app.yaml",
                "a link inside the repository is followed to its target",
            ),
        ];
        for (needle, reason) in said {
            assert!(
                stdout.contains(needle) || stderr.contains(needle),
                "{case}: {reason}: {needle:?} missing\n{stdout}\n{stderr}"
            );
        }
        assert!(
            !stdout.contains("extdir/v2.yaml") && !stdout.contains("outside/v2.yaml:"),
            "{case}: nothing outside is planned\n{stdout}"
        );
        let podinfo_rows = stdout
            .lines()
            .filter(|l| l.trim_start().starts_with(&format!("{PODINFO}:")))
            .count();
        assert_eq!(
            podinfo_rows, 1,
            "{case}: a file reached twice is planned once\n{stdout}"
        );

        let before_outside = std::fs::read(outside.join("v2.yaml")).expect("read");
        let out = upkeep_within(60, &args("apply"), &[]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(
            out.status.code(),
            Some(4),
            "{case}: apply is partial\n{stdout}\n{stderr}"
        );
        assert_eq!(
            std::fs::read(outside.join("v2.yaml")).expect("read"),
            before_outside,
            "{case}: nothing outside the repository is written"
        );
        let podinfo = std::fs::read_to_string(fleet.join(PODINFO)).expect("read");
        assert!(
            !podinfo.contains("'6.5.4'"),
            "{case}: the real file is upgraded:\n{podinfo}"
        );
        let shared = std::fs::read_to_string(fleet.join("shared/app.yaml")).expect("read");
        assert!(
            !shared.contains(" 6.5.4 "),
            "{case}: a link's target inside is upgraded"
        );
        for link in [
            "ext.yaml",
            "ext-relative.yaml",
            "alias.yaml",
            "shared-app.yaml",
            "extdir",
        ] {
            assert!(
                is_link(&fleet.join("apps/dev").join(link)),
                "{case}: {link} is still a symlink, never replaced by a file"
            );
        }
        assert_eq!(
            mode(&fleet.join(PODINFO)),
            0o600,
            "{case}: a private file stays 600"
        );
        assert_eq!(
            mode(&fleet.join(CERT)),
            0o755,
            "{case}: an executable stays 755"
        );
        if git {
            assert_eq!(
                git_in(&fleet, &["status", "--porcelain", "--untracked-files=no"]).trim(),
                "",
                "{case}: everything written is committed"
            );
            let summary = git_in(&fleet, &["show", "--summary", "--format=", "HEAD"]);
            assert!(
                !summary.contains("mode change"),
                "{case}: Git sees no mode change: {summary}"
            );
            let files = git_in(&fleet, &["show", "--name-only", "--format=", "HEAD"]);
            assert!(
                files.lines().any(|l| l == "shared/app.yaml")
                    && files.lines().any(|l| l == PODINFO)
                    && !files.contains("alias.yaml"),
                "{case}: the commit changes the real files, not the links: {files}"
            );
        }
    }
}

#[test]
fn one_bad_file_source_or_policy_holds_only_what_depends_on_it() {
    let tmp = scratch();
    let fleet = fleet_in(tmp.path(), false, |path, t| {
        if path.ends_with("policies.yaml") {
            format!(
                "{t}---\napiVersion: upkeep.dev/v1alpha1\nkind: VersionPolicy\nmetadata:\n  name: broken\n  namespace: flux-system\nspec:\n  sourceRef:\n    name: podinfo\n  policy:\n    semver:\n      range: \">=1.0 <<2\"\n---\napiVersion: upkeep.dev/v1alpha1\nkind: VersionPolicy\nmetadata:\n  name: far\n  namespace: flux-system\nspec:\n  sourceRef:\n    name: unreachable\n  policy:\n    semver:\n      range: \">=1.0\"\n"
            )
        } else if path.ends_with("sources.yaml") {
            format!(
                "{t}---\napiVersion: upkeep.dev/v1alpha1\nkind: ChartSource\nmetadata:\n  name: unreachable\n  namespace: flux-system\nspec:\n  url: oci://127.0.0.1:1/charts/nothing\n  timeout: 5s\n"
            )
        } else {
            t
        }
    });
    let dev = fleet.join("apps/dev");
    std::fs::write(
        dev.join("bad-policy.yaml"),
        "spec:\n  version: 1.0.0 # {\"$upkeep\": \"flux-system:broken\"}\n",
    )
    .expect("write");
    std::fs::write(
        dev.join("far.yaml"),
        "spec:\n  version: 1.0.0 # {\"$upkeep\": \"flux-system:far\"}\n",
    )
    .expect("write");
    std::fs::write(dev.join("binary.yaml"), b"\xff\xfe\x00garbage $upkeep\n").expect("write");
    commit_all(&fleet, "import");
    let planned = upkeep_within(60, &["plan", "--repo", s(&fleet), "--at", AT], &[]);
    assert_exit(
        &planned,
        4,
        "plan is partial too, not stopped by the invalid policy",
    );
    assert!(
        !text(&planned.stderr).contains("the clusters are not planned"),
        "the clusters are still planned: an invalid VersionPolicy is not theirs\n{}",
        text(&planned.stderr)
    );
    let out = apply(tmp.path(), &fleet, 120);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(4), "partial\n{stdout}\n{stderr}");
    let row = |file: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(file))
            .unwrap_or_default()
            .to_owned()
    };
    // (file, what its row must say, reason)
    let cases = [
        (
            "apps/dev/bad-policy.yaml:2",
            "VersionPolicy flux-system/broken is invalid",
            "an invalid policy holds its field, naming it",
        ),
        (
            "apps/dev/far.yaml:2",
            "could not be read",
            "an unreachable source holds the fields of its policies",
        ),
        (
            "apps/dev/binary.yaml",
            "not UTF-8",
            "a file that is not text is held",
        ),
    ];
    for (file, says, reason) in cases {
        let r = row(file);
        assert!(
            r.contains("error") && r.contains(says),
            "{reason}: {r:?}\n{stdout}"
        );
    }
    assert!(
        stderr.contains("127.0.0.1:1"),
        "the unreachable server is named once: {stderr}"
    );
    let committed = git_in(&fleet, &["show", "--name-only", "--format=", "HEAD"]);
    assert_eq!(
        committed.lines().collect::<Vec<_>>(),
        [CERT, PODINFO],
        "everything else is still written and committed"
    );
}

#[test]
fn automations_that_claim_the_same_files_are_an_error_naming_both() {
    // A second automation over all of ./apps with the always-open dev schedule would write the
    // production files outside production's window.
    let broad = "---\napiVersion: upkeep.dev/v1alpha1\nkind: AppUpgradeAutomation\nmetadata:\n  name: all-apps\n  namespace: org-acme\nspec:\n  git:\n    url: https://git.example.com/platform/fleet.git\n    ref:\n      branch: main\n  path: ./apps\n  scheduleRef:\n    name: dev-anytime\n  commit:\n    author:\n      name: upkeep\n      email: upkeep@example.com\n";
    let tmp = scratch();
    let fleet = fleet_in(tmp.path(), true, |path, t| {
        if path.ends_with("automation.yaml") {
            format!("{t}{broad}")
        } else {
            t
        }
    });
    let head = git_in(&fleet, &["rev-parse", "HEAD"]);
    let out = upkeep_within(60, &["validate", s(&fleet)], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "validate fails\n{stderr}");
    for name in [
        "org-acme/all-apps",
        "org-acme/prod-apps",
        "org-acme/dev-apps",
    ] {
        assert!(stderr.contains(name), "validate names {name}: {stderr}");
    }
    assert!(stderr.contains("hint:"), "{stderr}");

    let out = apply(tmp.path(), &fleet, 60);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "nothing may be written\n{stdout}"
    );
    let prod_row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("apps/prod/ingress-nginx.yaml"))
        .unwrap_or_default();
    assert!(
        prod_row.contains("error")
            && prod_row.contains("all-apps")
            && prod_row.contains("prod-apps"),
        "the production field names both automations: {prod_row:?}\n{stdout}"
    );
    assert_eq!(
        git_in(&fleet, &["rev-parse", "HEAD"]),
        head,
        "no commit: neither automation writes"
    );
}
