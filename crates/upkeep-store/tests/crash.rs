//! "Survives a crash mid-write", tested by killing a writer process.
//!
//! This test binary is its own writer: run with `UPKEEP_STORE_CRASH_WRITER=<path>` it opens the
//! store and loops, each batch being one first-seen transaction (`TAGS` tags) and one change
//! transaction (`TAGS` changes), printing `committed <n>` after both commit. The parent starts
//! it, reads a varying number of those lines, SIGKILLs it (while it is busy writing the next
//! batches), reopens the file and checks:
//! - every batch the child reported is fully present (durability of committed transactions);
//! - every batch is all-or-nothing, per transaction (atomicity: no partial batch visible);
//! - the batches present are a prefix 0..k (no hole), and change ids are dense;
//! - while the writer is alive, opening the file from this process fails with `Locked`.
//!
//! The harness is off (`harness = false` in Cargo.toml) so the child's stdout carries only its
//! own lines. Synchronisation is on those lines alone: no sleeps.
#![allow(
    clippy::print_stdout,
    reason = "the writer child reports on stdout by design"
)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use jiff::Timestamp;
use upkeep_store::{NewChange, ObjectRef, Store};

const ENV: &str = "UPKEEP_STORE_CRASH_WRITER";
const SOURCE: &str = "crash-source";
const SUBJECT: &str = "crash/batch";
const TAGS: u64 = 200;

fn main() {
    if let Some(path) = std::env::var_os(ENV) {
        writer(Path::new(&path));
        return;
    }
    crash_and_recover();
    println!("crash: ok");
}

fn tag(batch: u64, i: u64) -> String {
    format!("b{batch}-t{i}")
}

fn at(batch: u64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + i64::try_from(batch).unwrap()).unwrap()
}

/// The child: continue after the last batch already in the store, forever.
fn writer(path: &Path) {
    let store = Store::open(path).expect("writer opens the store");
    let mut batch = store
        .history_for_subject(SUBJECT, 1)
        .expect("writer reads history")
        .first()
        .map_or(0, |c| c.change.new.parse::<u64>().unwrap() + 1);
    let mut out = std::io::stdout().lock();
    loop {
        let tags: Vec<String> = (0..TAGS).map(|i| tag(batch, i)).collect();
        let entries: Vec<(&str, Timestamp)> =
            tags.iter().map(|t| (t.as_str(), at(batch))).collect();
        store
            .record_first_seen(SOURCE, &entries)
            .expect("record first-seen");
        let changes: Vec<NewChange> = (0..TAGS)
            .map(|i| NewChange {
                at: at(batch),
                repository: "crash-repo".to_owned(),
                file: format!("f{i}.yaml"),
                object: ObjectRef::Path {
                    path: "version".to_owned(),
                },
                old: batch.saturating_sub(1).to_string(),
                new: batch.to_string(),
                policy: format!("batch:{batch}"),
                commit: None,
                pull_request: None,
                run: None,
                subject: Some(SUBJECT.to_owned()),
            })
            .collect();
        store.append_changes(&changes).expect("append changes");
        if writeln!(out, "committed {batch}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return; // the parent went away
        }
        batch += 1;
    }
}

fn crash_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let exe = std::env::current_exe().unwrap();
    let mut reported_total = 0;
    // Varying how many batches to wait for moves the kill to different points of the write.
    for (round, wait_for) in [1u64, 3, 2, 7, 4, 11].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .env(ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut last_reported = None;
        for _ in 0..wait_for {
            let line = lines
                .next()
                .expect("child reports before it is killed")
                .unwrap();
            let n: u64 = line.strip_prefix("committed ").unwrap().parse().unwrap();
            last_reported = Some(n);
        }
        // While the writer lives, another process cannot open the file.
        let err = Store::open(&path).expect_err("the writer holds the lock");
        assert!(
            matches!(err, upkeep_store::StoreError::Locked { .. }),
            "round {round}: a second process gets Locked, got {err:?}"
        );
        child.kill().unwrap(); // SIGKILL on Unix: no destructors, no flush, mid-transaction
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the writer was killed, not finished: {status}"
        );
        let last_reported = last_reported.unwrap();
        reported_total += wait_for;

        let store = Store::open(&path)
            .unwrap_or_else(|e| panic!("round {round}: the store reopens after a kill: {e}"));
        check(&store, round, last_reported);
    }
    assert!(reported_total >= 28, "every round waited for its batches");
}

fn check(store: &Store, round: usize, last_reported: u64) {
    // First-seen: batches are all-or-nothing and form a prefix covering every reported batch.
    let mut present_first_seen = 0;
    loop {
        let tags: Vec<String> = (0..TAGS).map(|i| tag(present_first_seen, i)).collect();
        let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        let got = store.first_seen_many(SOURCE, &refs).unwrap();
        let n = got.iter().filter(|g| g.is_some()).count();
        if n == 0 {
            break;
        }
        assert_eq!(
            u64::try_from(n).unwrap(),
            TAGS,
            "round {round}: first-seen batch {present_first_seen} is partial ({n} of {TAGS} tags)"
        );
        assert!(
            got.iter().all(|g| *g == Some(at(present_first_seen))),
            "round {round}: batch {present_first_seen} has its own times"
        );
        present_first_seen += 1;
    }
    assert!(
        present_first_seen > last_reported,
        "round {round}: first-seen batches 0..={last_reported} were reported committed, \
         found 0..{present_first_seen}"
    );
    // No stray later batch beyond the prefix (spot-check a window past it).
    for later in present_first_seen + 1..present_first_seen + 50 {
        let got = store.first_seen_many(SOURCE, &[&tag(later, 0)]).unwrap();
        assert_eq!(
            got,
            vec![None],
            "round {round}: batch {later} exists past a hole"
        );
    }

    // Changes: ids dense from 1, each batch all TAGS changes, batches a prefix.
    let all = store.changes(usize::MAX).unwrap();
    let ids: Vec<u64> = all.iter().rev().map(|c| c.id.0).collect();
    assert!(
        ids.iter().copied().eq(1..=ids.len() as u64),
        "round {round}: change ids are dense"
    );
    let count = all.len() as u64;
    assert_eq!(
        count % TAGS,
        0,
        "round {round}: a partial change batch is visible ({count} changes)"
    );
    let change_batches = count / TAGS;
    for (i, c) in all.iter().rev().enumerate() {
        let batch = i as u64 / TAGS;
        assert_eq!(
            c.change.new,
            batch.to_string(),
            "round {round}: change {} is in batch {batch}",
            c.id
        );
    }
    assert!(
        change_batches > last_reported,
        "round {round}: change batches 0..={last_reported} were reported, found 0..{change_batches}"
    );
    // The child writes first-seen, then changes: at most one batch can be ahead.
    assert!(
        present_first_seen == change_batches || present_first_seen == change_batches + 1,
        "round {round}: {present_first_seen} first-seen batches vs {change_batches} change batches"
    );
    let per_policy = store
        .changes_for_policy(&format!("batch:{last_reported}"), usize::MAX)
        .unwrap();
    assert_eq!(
        per_policy.len() as u64,
        TAGS,
        "round {round}: the index agrees with the log"
    );
}
