//! `kill -9` anywhere, and two writers at once, never lose or half-do a commit.
//!
//! Each case runs the real `upkeep apply` on a Git checkout of the quickstart fleet and stops
//! it: at every named step through a failpoint (`UPKEEP_FAILPOINT=<step>` aborts the process
//! there, as abruptly as SIGKILL), and at random instants with a real SIGKILL on a checkout of
//! 3,000 marked files. Then a plain rerun must converge: the branch has exactly one upkeep
//! commit with every upgrade, the work tree and index agree with it (`git status` is clean,
//! no journal, no temporary file, no stale lock), and `upkeep history` lists exactly the
//! changes that commit's trailers record — once.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{AT, commit_all, fleet_in, git_in, s, scratch, text, upkeep_within};

const DEV_FILES: [&str; 2] = ["apps/dev/cert-manager.yaml", "apps/dev/podinfo.yaml"];

fn apply_args<'a>(fleet: &'a Path, store: &'a Path) -> Vec<&'a str> {
    vec!["apply", "--repo", s(fleet), "--at", AT, "--store", s(store)]
}

/// `upkeep history` for `store` as JSON rows.
fn history(store: &Path) -> Vec<serde_json::Value> {
    let out = upkeep_within(
        60,
        &[
            "history",
            "--store",
            s(store),
            "--limit",
            "100000",
            "-o",
            "json",
        ],
        &[],
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .map(|v| v.as_array().cloned().unwrap_or_default())
        .unwrap_or_default()
}

/// Everything that must hold once a run finished: one upkeep commit on `base` holding
/// `files` upgraded, nothing uncommitted, nothing left behind, the history equal to the
/// commit's trailers.
fn assert_converged(fleet: &Path, store: &Path, base: &str, files: usize, case: &str) {
    let log = git_in(fleet, &["rev-list", &format!("{base}..HEAD")]);
    let commits: Vec<&str> = log.lines().collect();
    assert_eq!(
        commits.len(),
        1,
        "{case}: exactly one upkeep commit: {commits:?}"
    );
    let changed = git_in(fleet, &["diff", "--name-only", base, "HEAD"]);
    assert_eq!(
        changed.lines().count(),
        files,
        "{case}: every file upgraded once"
    );
    assert_eq!(
        git_in(fleet, &["status", "--porcelain", "--untracked-files=all"]).trim(),
        "",
        "{case}: the work tree and index agree with HEAD, no stray file"
    );
    for leftover in ["upkeep-journal.json", "index.lock", "refs/heads/main.lock"] {
        assert!(
            !fleet.join(".git").join(leftover).exists(),
            "{case}: .git/{leftover} is left behind"
        );
    }
    let message = git_in(fleet, &["log", "-1", "--format=%B"]);
    let trailers = message
        .lines()
        .filter(|l| l.starts_with("Upkeep-Change: "))
        .count();
    assert_eq!(trailers, files, "{case}: one trailer per change");
    let rows = history(store);
    assert_eq!(
        rows.len(),
        files,
        "{case}: history lists each change once: {rows:?}"
    );
    assert!(
        rows.iter().all(|r| r["commit"] == commits[0]),
        "{case}: every history row names the commit"
    );
}

#[test]
fn every_step_of_apply_can_be_killed_and_a_rerun_converges() {
    // (failpoint, reason)
    let steps = [
        ("read", "after reading the work tree"),
        ("edit", "after planning the edits"),
        (
            "commit",
            "after writing the commit object, before anything visible",
        ),
        ("journal", "after the journal, before any file"),
        (
            "rename",
            "the first file written beside itself, not yet renamed into place",
        ),
        ("write:1", "after the first of two files is replaced"),
        ("write:2", "after both files, before the index"),
        ("index", "after the index, before the branch moves"),
        (
            "ref",
            "after the branch moved, before the journal is removed",
        ),
        ("record", "after the commit, before the store records it"),
    ];
    for (step, reason) in steps {
        let tmp = scratch();
        let fleet = fleet_in(tmp.path(), true, |_, t| t);
        let base = git_in(&fleet, &["rev-parse", "HEAD"]).trim().to_owned();
        let store = tmp.path().join("state.redb");
        let killed = upkeep_within(
            60,
            &apply_args(&fleet, &store),
            &[("UPKEEP_FAILPOINT", step)],
        );
        assert_eq!(
            killed.status.code(),
            None,
            "{step} ({reason}): the process stopped there\n{}",
            text(&killed.stderr)
        );
        let rerun = upkeep_within(60, &apply_args(&fleet, &store), &[]);
        assert_eq!(
            rerun.status.code(),
            Some(0),
            "{step}: the rerun succeeds\n{}\n{}",
            text(&rerun.stdout),
            text(&rerun.stderr)
        );
        assert_converged(
            &fleet,
            &store,
            &base,
            DEV_FILES.len(),
            &format!("{step} ({reason})"),
        );
        let again = upkeep_within(60, &apply_args(&fleet, &store), &[]);
        assert_eq!(again.status.code(), Some(0), "{step}: a third run");
        assert_converged(
            &fleet,
            &store,
            &base,
            DEV_FILES.len(),
            &format!("{step}: third run is a no-op"),
        );
    }
}

#[test]
fn a_push_killed_before_it_is_recorded_is_recorded_by_the_next_run() {
    for step in ["edit", "push", "record"] {
        let tmp = scratch();
        let bare = tmp.path().join("origin.git");
        git_in(
            tmp.path(),
            &["init", "-q", "--bare", "-b", "main", s(&bare)],
        );
        let fleet = fleet_in(tmp.path(), true, |_, t| t);
        let url = format!("file://{}", s(&bare));
        git_in(&fleet, &["remote", "add", "origin", &url]);
        git_in(&fleet, &["push", "-q", "origin", "main"]);
        let base = git_in(&fleet, &["rev-parse", "HEAD"]).trim().to_owned();
        let store = tmp.path().join("state.redb");
        let mut args = apply_args(&fleet, &store);
        args.push("--push");
        let killed = upkeep_within(60, &args, &[("UPKEEP_FAILPOINT", step)]);
        assert_eq!(
            killed.status.code(),
            None,
            "{step}: stopped\n{}",
            text(&killed.stderr)
        );
        let rerun = upkeep_within(60, &args, &[]);
        assert_eq!(
            rerun.status.code(),
            Some(0),
            "{step}: rerun\n{}\n{}",
            text(&rerun.stdout),
            text(&rerun.stderr)
        );
        let bare_git = |a: &[&str]| {
            let mut all = vec!["--git-dir", s(&bare)];
            all.extend_from_slice(a);
            git_in(tmp.path(), &all)
        };
        let commits = bare_git(&["rev-list", &format!("{base}..main")]);
        assert_eq!(
            commits.lines().count(),
            1,
            "{step}: one commit on the remote"
        );
        let rows = history(&store);
        assert_eq!(
            rows.len(),
            DEV_FILES.len(),
            "{step}: history once: {rows:?}"
        );
        assert!(
            rows.iter().all(|r| r["commit"] == commits.trim()),
            "{step}: {rows:?}"
        );
    }
}

/// A checkout of the quickstart fleet plus `n` marked files under `apps/dev/gen/`.
fn big_fleet(tmp: &Path, n: usize) -> std::path::PathBuf {
    let fleet = fleet_in(tmp, false, |_, t| t);
    let dir = fleet.join("apps/dev/gen");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for i in 0..n {
        std::fs::write(
            dir.join(format!("app-{i:04}.yaml")),
            format!(
                "apiVersion: application.giantswarm.io/v1alpha1\nkind: App\nmetadata:\n  name: app-{i}\n  namespace: org-acme\nspec:\n  name: podinfo\n  version: 6.5.4 # {{\"$upkeep\": \"flux-system:podinfo\"}}\n"
            ),
        )
        .expect("write");
    }
    commit_all(&fleet, "import");
    fleet
}

/// A small deterministic generator (the seed is printed, so a failure can be replayed).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

#[test]
fn random_kill_9_of_apply_on_3000_files_always_converges() {
    const FILES: usize = 3000;
    let tmp = scratch();
    let fleet = big_fleet(tmp.path(), FILES);
    let base = git_in(&fleet, &["rev-parse", "HEAD"]).trim().to_owned();
    let upgraded = FILES + DEV_FILES.len();
    // How long one whole apply takes here: the kills are spread over that span.
    let store = tmp.path().join("calibrate.redb");
    let started = Instant::now();
    let out = upkeep_within(300, &apply_args(&fleet, &store), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let span = started.elapsed();
    assert_converged(&fleet, &store, &base, upgraded, "an uninterrupted run");
    let seed = std::env::var("UPKEEP_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) ^ 0x9e37_79b9);
    #[allow(clippy::print_stderr, reason = "the seed is what replays a failure")]
    {
        eprintln!("seed {seed} (UPKEEP_CRASH_SEED to replay), one apply takes {span:?}");
    }
    let mut rng = Lcg(seed);
    let span_ms = u64::try_from(span.as_millis()).unwrap_or(5000).max(50);
    for round in 0..8 {
        git_in(&fleet, &["reset", "-q", "--hard", &base]);
        git_in(&fleet, &["clean", "-qfdx"]);
        let store = tmp.path().join(format!("round-{round}.redb"));
        let delay = Duration::from_millis(rng.below(span_ms * 11 / 10));
        let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(apply_args(&fleet, &store))
            .env_remove("UPKEEP_STORE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().expect("wait");
        let case = format!("round {round}, killed after {delay:?} ({status})");
        let rerun = upkeep_within(300, &apply_args(&fleet, &store), &[]);
        assert_eq!(
            rerun.status.code(),
            Some(0),
            "{case}: the rerun succeeds\n{}",
            text(&rerun.stderr)
        );
        assert_converged(&fleet, &store, &base, upgraded, &case);
    }
}

#[test]
fn two_applies_on_one_checkout_never_lose_a_commit() {
    let tmp = scratch();
    let fleet = big_fleet(tmp.path(), 1000);
    let base = git_in(&fleet, &["rev-parse", "HEAD"]).trim().to_owned();
    let spawn = |store: &str| {
        Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(apply_args(&fleet, &tmp.path().join(store)))
            .env_remove("UPKEEP_STORE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn("a.redb"), spawn("b.redb"));
    let outs = [
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    ];
    let mut reported = Vec::new();
    for (name, out) in ["a", "b"].iter().zip(&outs) {
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name} succeeds\n{stdout}\n{}",
            text(&out.stderr)
        );
        for line in stdout.lines() {
            if let Some(rest) = line.split("commit ").nth(1) {
                reported.push(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    }
    assert!(!reported.is_empty(), "one of them committed");
    for c in &reported {
        let on_main = git_in(&fleet, &["merge-base", "--is-ancestor", c, "HEAD"]);
        assert_eq!(on_main, "", "commit {c} that was reported is on main");
    }
    let commits = git_in(&fleet, &["rev-list", &format!("{base}..HEAD")]);
    assert_eq!(
        commits.lines().count(),
        reported.len(),
        "every commit on main was reported by one of them, none twice"
    );
    assert_eq!(
        git_in(&fleet, &["status", "--porcelain", "--untracked-files=all"]).trim(),
        "",
        "clean"
    );
    // Each store is rebuilt from Git: both list every change, each once.
    for store in ["a.redb", "b.redb"] {
        let rows = history(&tmp.path().join(store));
        assert_eq!(
            rows.len(),
            1000 + DEV_FILES.len(),
            "{store}: every change once"
        );
    }
}

#[test]
fn a_store_killed_while_it_is_created_is_never_left_unusable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut rng = Lcg(u64::from(std::process::id()));
    for round in 0..20 {
        let store = tmp.path().join(format!("s{round}.redb"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(["history", "--store", s(&store)])
            .env_remove("UPKEEP_STORE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        let _ = child.kill();
        let _ = child.wait();
        let out = upkeep_within(60, &["history", "--store", s(&store)], &[]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "round {round}: the store opens (and is empty)\n{}",
            text(&out.stderr)
        );
    }
    // What a kill left before creation was atomic: an empty file.
    let empty = tmp.path().join("empty.redb");
    std::fs::write(&empty, b"").expect("write");
    let out = upkeep_within(60, &["history", "--store", s(&empty)], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}
