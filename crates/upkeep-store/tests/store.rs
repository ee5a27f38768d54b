//! Table tests for each store operation, with a reason per case.
//!
//! Each table drives the public API only; the in-memory backend is used where the file does not
//! matter, real files where it does (persistence, locking, corrupt files, schema version).

use jiff::Timestamp;
use upkeep_core::version::FirstSeenStore;
use upkeep_store::{
    ChangeId, NewChange, ObjectRef, Outcome, RunError, RunId, SCHEMA_VERSION, Store, StoreError,
    cluster_subject,
};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

// ---------------------------------------------------------------------------------------------
// first-seen

/// One batch of `(source, tag, seconds)`.
type Entries = &'static [(&'static str, &'static str, i64)];
/// `(source, tag, expected seconds)`.
type Queries = &'static [(&'static str, &'static str, Option<i64>)];
/// `(tag, seconds)`.
type Batch = &'static [(&'static str, i64)];

#[test]
fn first_seen_table() {
    // (recorded batches, one per transaction: (source, tag, t)), queries (source, tag, expected), reason
    let cases: &[(&[Entries], Queries, &str)] = &[
        (
            &[&[("s", "1.0.0", 10)]],
            &[("s", "1.0.0", Some(10))],
            "a recorded tag reads back its time",
        ),
        (
            &[],
            &[("s", "1.0.0", None)],
            "a tag never recorded is None, not an error",
        ),
        (
            &[&[("s", "1.0.0", 10)], &[("s", "1.0.0", 20)]],
            &[("s", "1.0.0", Some(10))],
            "a later time never replaces an earlier first-seen (tag would look younger)",
        ),
        (
            &[&[("s", "1.0.0", 20)], &[("s", "1.0.0", 10)]],
            &[("s", "1.0.0", Some(10))],
            "an earlier time (e.g. the registry's created time) moves first-seen earlier",
        ),
        (
            &[&[("s", "1.0.0", 30), ("s", "1.0.0", 5), ("s", "1.0.0", 15)]],
            &[("s", "1.0.0", Some(5))],
            "a tag listed several times in one batch keeps the earliest time",
        ),
        (
            &[&[("a", "1.0.0", 10), ("b", "1.0.0", 20)]],
            &[("a", "1.0.0", Some(10)), ("b", "1.0.0", Some(20))],
            "the same tag under two sources is two facts",
        ),
        (
            &[&[("s", "1.0.0", 10), ("s", "1.0.1", 11)]],
            &[
                ("s", "1.0.1", Some(11)),
                ("s", "2.0.0", None),
                ("s", "1.0.0", Some(10)),
                ("s", "1.0.1", Some(11)),
            ],
            "get_many answers in query order, repeats included, unknown tags in place",
        ),
        (
            &[&[("oci://r/x", "v1", 10)]],
            &[("oci://r", "x\0v1", None), ("oci://r/", "x", None)],
            "source and tag are a tuple key: concatenations that look alike do not collide",
        ),
        (
            &[&[("s", "", 10)]],
            &[("s", "", Some(10)), ("", "s", None)],
            "empty strings are valid keys and stay distinct",
        ),
        (
            &[&[("s", "1.0.0", -1_700_000_000 - 86_400)]],
            &[("s", "1.0.0", Some(-1_700_000_000 - 86_400))],
            "times before the Unix epoch round-trip (signed nanoseconds)",
        ),
    ];
    for (batches, queries, reason) in cases {
        let store = Store::open_in_memory().unwrap();
        for batch in *batches {
            // Group by source: one record_many per (batch, source), like the registry does.
            let mut sources: Vec<&str> = batch.iter().map(|(s, _, _)| *s).collect();
            sources.dedup();
            for source in sources {
                let entries: Vec<(&str, Timestamp)> = batch
                    .iter()
                    .filter(|(s, _, _)| *s == source)
                    .map(|(_, tag, secs)| (*tag, t(*secs)))
                    .collect();
                store.record_many(source, &entries).unwrap();
            }
        }
        for (source, tag, want) in *queries {
            let got = store.get_many(source, &[tag]).unwrap();
            assert_eq!(got, vec![want.map(t)], "{source:?}/{tag:?}: {reason}");
        }
        // And all queries of a source at once, through the trait.
        let mut by_source: Vec<&str> = queries.iter().map(|(s, _, _)| *s).collect();
        by_source.sort_unstable();
        by_source.dedup();
        for source in by_source {
            let tags: Vec<&str> = queries
                .iter()
                .filter(|(s, _, _)| *s == source)
                .map(|(_, tag, _)| *tag)
                .collect();
            let want: Vec<Option<Timestamp>> = queries
                .iter()
                .filter(|(s, _, _)| *s == source)
                .map(|(_, _, w)| w.map(t))
                .collect();
            assert_eq!(
                store.get_many(source, &tags).unwrap(),
                want,
                "batch get: {reason}"
            );
        }
    }
}

#[test]
fn record_first_seen_reports_writes() {
    let store = Store::open_in_memory().unwrap();
    let cases: &[(Batch, usize, &str)] = &[
        (&[("a", 10), ("b", 10)], 2, "two new tags are two writes"),
        (
            &[("a", 20), ("b", 10)],
            0,
            "later or equal times write nothing",
        ),
        (
            &[("a", 5), ("c", 1)],
            2,
            "an earlier time and a new tag are written",
        ),
        (&[], 0, "an empty batch is a no-op, not an error"),
    ];
    for (entries, want, reason) in cases {
        let entries: Vec<(&str, Timestamp)> = entries.iter().map(|(n, s)| (*n, t(*s))).collect();
        assert_eq!(
            store.record_first_seen("s", &entries).unwrap(),
            *want,
            "{reason}"
        );
    }
}

/// First-seen never moves later: after any sequence of records, each tag holds the minimum of
/// every time recorded for it. Deterministic pseudo-random sequences (no proptest dependency).
#[test]
fn first_seen_is_the_minimum_ever_recorded() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let tags = ["1.0.0", "1.0.1", "1.1.0", "2.0.0", "2.0.0-rc.1"];
    for round in 0..20 {
        let store = Store::open_in_memory().unwrap();
        let mut model = std::collections::HashMap::<&str, Timestamp>::new();
        for _ in 0..30 {
            let n = usize::try_from(next() % 4).unwrap();
            let batch: Vec<(&str, Timestamp)> = (0..n)
                .map(|_| {
                    let tag = tags[usize::try_from(next() % 5).unwrap()];
                    let secs = i64::try_from(next() % 1000).unwrap();
                    (tag, t(secs))
                })
                .collect();
            let before = store.get_many("src", &tags).unwrap();
            store.record_many("src", &batch).unwrap();
            let after = store.get_many("src", &tags).unwrap();
            for (tag, at) in &batch {
                model
                    .entry(tag)
                    .and_modify(|m| *m = (*m).min(*at))
                    .or_insert(*at);
            }
            for (i, tag) in tags.iter().enumerate() {
                assert_eq!(
                    after[i],
                    model.get(tag).copied(),
                    "round {round}: {tag} is the minimum"
                );
                if let (Some(b), Some(a)) = (before[i], after[i]) {
                    assert!(a <= b, "round {round}: {tag} moved later: {b} -> {a}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// changes

fn change(secs: i64, repo: &str, file: &str, policy: &str, subject: Option<&str>) -> NewChange {
    NewChange {
        at: t(secs),
        repository: repo.to_owned(),
        file: file.to_owned(),
        object: ObjectRef::Resource {
            kind: "HelmRelease".to_owned(),
            namespace: Some("flux-system".to_owned()),
            name: "podinfo".to_owned(),
        },
        old: "6.0.0".to_owned(),
        new: format!("6.0.{secs}"),
        policy: policy.to_owned(),
        commit: Some(format!("c{secs}")),
        pull_request: None,
        run: None,
        subject: subject.map(str::to_owned),
    }
}

type Query<'a> = &'a dyn Fn(&Store) -> Result<Vec<upkeep_store::Change>, StoreError>;

#[test]
fn change_queries_table() {
    let store = Store::open_in_memory().unwrap();
    let log = [
        change(1, "repo-a", "apps/x.yaml", "ns:p1", None),
        change(
            2,
            "repo-a",
            "apps/y.yaml",
            "ns:p2",
            Some(&cluster_subject("prod-1")),
        ),
        change(3, "repo-b", "apps/x.yaml", "ns:p1", None),
        change(
            4,
            "repo-a",
            "apps/x.yaml",
            "ns:p1",
            Some(&cluster_subject("prod-1")),
        ),
        change(
            5,
            "repo-a",
            "apps/x.yaml/",
            "other:p1",
            Some(&cluster_subject("prod-10")),
        ),
    ];
    // appended in two transactions: ids continue across them
    let mut ids = store.append_changes(&log[..2]).unwrap();
    ids.extend(store.append_changes(&log[2..]).unwrap());
    assert_eq!(
        ids,
        (1..=5).map(ChangeId).collect::<Vec<_>>(),
        "ids are 1.. and monotonic"
    );

    let cases: &[(Query, &[u64], &str)] = &[
        (
            &|s| s.changes(10),
            &[5, 4, 3, 2, 1],
            "all changes, newest first",
        ),
        (&|s| s.changes(2), &[5, 4], "the limit keeps the newest"),
        (&|s| s.changes(0), &[], "limit 0 is empty, not everything"),
        (
            &|s| s.changes_for_repository("repo-a", 10),
            &[5, 4, 2, 1],
            "one repository, newest first",
        ),
        (
            &|s| s.changes_for_repository("repo-", 10),
            &[],
            "a repository prefix is not a match",
        ),
        (
            &|s| s.changes_for_file("repo-a", "apps/x.yaml", 10),
            &[4, 1],
            "the same path in another repository and a longer path are not this file",
        ),
        (
            &|s| s.changes_for_file("repo-b", "apps/x.yaml", 10),
            &[3],
            "files are scoped by repository",
        ),
        (
            &|s| s.changes_for_file("repo-a", "apps/x.yaml", 1),
            &[4],
            "limit applies to index queries",
        ),
        (
            &|s| s.changes_for_policy("ns:p1", 10),
            &[4, 3, 1],
            "one policy across repositories",
        ),
        (
            &|s| s.changes_for_policy("p1", 10),
            &[],
            "a policy name without its namespace matches nothing",
        ),
        (
            &|s| s.history_for_cluster("prod-1", 10),
            &[4, 2],
            "cluster history; prod-10 is another cluster",
        ),
        (
            &|s| s.history_for_subject("cluster/prod-10", 10),
            &[5],
            "the generic subject key behind history_for_cluster",
        ),
        (
            &|s| s.history_for_cluster("none", 10),
            &[],
            "a cluster without history is empty",
        ),
    ];
    for (query, want, reason) in cases {
        let got: Vec<u64> = query(&store).unwrap().iter().map(|c| c.id.0).collect();
        assert_eq!(&got, want, "{reason}");
    }

    // Records round-trip in full.
    let got = store.change(ChangeId(2)).unwrap().unwrap();
    assert_eq!(got.change, log[1], "a change reads back field for field");
    assert_eq!(
        store.change(ChangeId(99)).unwrap(),
        None,
        "an unknown id is None"
    );
}

#[test]
fn change_records_round_trip_every_field() {
    let store = Store::open_in_memory().unwrap();
    let run = store.begin_run(t(0)).unwrap();
    let cases = [
        (
            NewChange {
                object: ObjectRef::Path {
                    path: "dependencies[0].version".to_owned(),
                },
                pull_request: Some("https://git.example/o/r/pulls/7".to_owned()),
                run: Some(run),
                ..change(
                    1,
                    "file:///srv/gitops",
                    "charts/app/Chart.yaml",
                    "apps:app",
                    None,
                )
            },
            "a YAML-path object, a pull request and a run link survive",
        ),
        (
            NewChange {
                object: ObjectRef::Resource {
                    kind: "Application".to_owned(),
                    namespace: None,
                    name: "web".to_owned(),
                },
                commit: None,
                old: "é ünïcode \"quoted\"\n".to_owned(),
                ..change(2, "r", "f", "p", Some("anything"))
            },
            "a cluster-scoped object, no commit, and odd text survive",
        ),
    ];
    for (c, reason) in cases {
        let id = store.append_change(&c).unwrap();
        assert_eq!(
            store.change(id).unwrap().map(|c| c.change),
            Some(c),
            "{reason}"
        );
    }
}

#[test]
fn object_ref_display() {
    let cases = [
        (
            ObjectRef::Resource {
                kind: "App".into(),
                namespace: Some("giantswarm".into()),
                name: "x".into(),
            },
            "App/giantswarm/x",
            "namespaced objects show kind/namespace/name",
        ),
        (
            ObjectRef::Resource {
                kind: "Application".into(),
                namespace: None,
                name: "x".into(),
            },
            "Application/x",
            "cluster-scoped objects show kind/name",
        ),
        (
            ObjectRef::Path {
                path: "image.tag".into(),
            },
            "image.tag",
            "YAML paths show as written",
        ),
    ];
    for (obj, want, reason) in cases {
        assert_eq!(obj.to_string(), want, "{reason}");
    }
}

#[test]
fn empty_change_batch_is_a_no_op() {
    let store = Store::open_in_memory().unwrap();
    assert_eq!(
        store.append_changes(&[]).unwrap(),
        vec![],
        "nothing appended"
    );
    let id = store
        .append_change(&change(1, "r", "f", "p", None))
        .unwrap();
    assert_eq!(id, ChangeId(1), "an empty batch consumes no id");
}

// ---------------------------------------------------------------------------------------------
// runs

#[test]
fn run_lifecycle_table() {
    enum Op {
        Begin(i64),
        Error(u64, i64, &'static str),
        Finish(u64, i64, Outcome, Option<&'static str>),
    }
    // (operations, expected error variant of the last op (None = ok), reason)
    let cases: &[(&[Op], Option<&str>, &str)] = &[
        (&[Op::Begin(0)], None, "a run can begin"),
        (
            &[Op::Begin(0), Op::Finish(1, 5, Outcome::Succeeded, None)],
            None,
            "and finish",
        ),
        (
            &[
                Op::Begin(0),
                Op::Error(1, 1, "x"),
                Op::Finish(1, 5, Outcome::PartiallyFailed, Some("1 of 2 failed")),
            ],
            None,
            "errors are recorded before finishing",
        ),
        (
            &[Op::Finish(7, 5, Outcome::Failed, None)],
            Some("UnknownRun"),
            "finishing a run never begun is refused",
        ),
        (
            &[Op::Error(7, 5, "x")],
            Some("UnknownRun"),
            "errors need a run",
        ),
        (
            &[
                Op::Begin(0),
                Op::Finish(1, 5, Outcome::Succeeded, None),
                Op::Finish(1, 6, Outcome::Failed, Some("late")),
            ],
            Some("RunAlreadyFinished"),
            "a finished run's outcome is not rewritten",
        ),
        (
            &[
                Op::Begin(0),
                Op::Finish(1, 5, Outcome::Succeeded, None),
                Op::Error(1, 6, "late"),
            ],
            Some("RunAlreadyFinished"),
            "errors cannot be added after the outcome",
        ),
    ];
    for (ops, want_err, reason) in cases {
        let store = Store::open_in_memory().unwrap();
        let mut last = Ok(());
        for op in *ops {
            last = match op {
                Op::Begin(s) => store.begin_run(t(*s)).map(drop),
                Op::Error(id, s, m) => store.record_run_error(RunId(*id), t(*s), m),
                Op::Finish(id, s, o, e) => store.finish_run(RunId(*id), t(*s), *o, *e),
            };
        }
        match (want_err, last) {
            (None, Ok(())) => {}
            (Some(v), Err(e)) => {
                assert!(format!("{e:?}").starts_with(v), "{reason}: got {e:?}");
                assert!(
                    e.to_string().contains(":memory:"),
                    "{reason}: message names the store: {e}"
                );
            }
            (want, got) => panic!("{reason}: wanted {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn runs_read_back_newest_first_with_their_errors() {
    let store = Store::open_in_memory().unwrap();
    let r1 = store.begin_run(t(0)).unwrap();
    let r2 = store.begin_run(t(10)).unwrap();
    store
        .record_run_error(r1, t(1), "registry timed out")
        .unwrap();
    store.record_run_error(r2, t(11), "push rejected").unwrap();
    store.record_run_error(r1, t(2), "clone failed").unwrap();
    store
        .finish_run(r1, t(3), Outcome::Failed, Some("2 errors"))
        .unwrap();

    let runs = store.runs(10).unwrap();
    let cases: &[(bool, &str)] = &[
        (runs.iter().map(|r| r.id).eq([r2, r1]), "runs newest first"),
        (
            runs[1].errors
                == vec![
                    RunError {
                        at: t(1),
                        message: "registry timed out".into(),
                    },
                    RunError {
                        at: t(2),
                        message: "clone failed".into(),
                    },
                ],
            "a run's errors in order, not mixed with another run's",
        ),
        (
            runs[1].outcome == Some(Outcome::Failed)
                && runs[1].finished == Some(t(3))
                && runs[1].error.as_deref() == Some("2 errors"),
            "finish_run is recorded",
        ),
        (
            runs[0].outcome.is_none() && runs[0].finished.is_none(),
            "an unfinished run shows as such (e.g. it crashed)",
        ),
        (
            runs[0].errors.len() == 1,
            "an unfinished run keeps its errors",
        ),
        (store.runs(1).unwrap().len() == 1, "runs honours its limit"),
        (
            store.run(r1).unwrap() == Some(runs[1].clone()),
            "run(id) matches runs()",
        ),
        (
            store.run(RunId(42)).unwrap().is_none(),
            "an unknown run is None",
        ),
    ];
    for (ok, reason) in cases {
        assert!(ok, "{reason}");
    }
}

// ---------------------------------------------------------------------------------------------
// files: persistence, schema, bad files, locking

#[test]
fn data_persists_and_ids_continue_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        let store = Store::open(&path).unwrap();
        store
            .record_first_seen("s", &[("1.0.0", ts("2024-01-01T00:00:00Z"))])
            .unwrap();
        store
            .append_change(&change(1, "r", "f", "p", None))
            .unwrap();
        store.begin_run(t(0)).unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        SCHEMA_VERSION,
        "the schema version is stored"
    );
    assert_eq!(
        store.first_seen_many("s", &["1.0.0"]).unwrap(),
        vec![Some(ts("2024-01-01T00:00:00Z"))],
        "first-seen survives reopening"
    );
    assert_eq!(
        store
            .append_change(&change(2, "r", "f", "p", None))
            .unwrap(),
        ChangeId(2),
        "change ids continue"
    );
    assert_eq!(store.begin_run(t(1)).unwrap(), RunId(2), "run ids continue");
}

fn variant(e: &StoreError) -> String {
    format!("{e:?}")
        .split([' ', '{', '('])
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn open_errors_table() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "this is not a database, just some text that is long enough to fill a header page "
            .repeat(100),
    )
    .unwrap();
    let short = dir.path().join("short.redb");
    std::fs::write(&short, b"abc").unwrap();
    let empty = dir.path().join("empty.redb");
    std::fs::write(&empty, b"").unwrap();
    let foreign = dir.path().join("foreign.redb");
    {
        let db = redb::Database::create(&foreign).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<u64, u64>::new("someone_elses"))
            .unwrap();
        txn.commit().unwrap();
    }
    let newer = dir.path().join("newer.redb");
    Store::open(&newer)
        .unwrap()
        .set_schema_version_for_tests(SCHEMA_VERSION + 1)
        .unwrap();
    let missing_dir = dir.path().join("no/such/dir/state.redb");

    // (path, expected variant or None for success, hint must mention, reason)
    let cases: &[(&std::path::Path, Option<&str>, &str, &str)] = &[
        (
            &text,
            Some("Corrupt"),
            "move it aside",
            "a text file is not a redb database",
        ),
        (
            &short,
            Some("Corrupt"),
            "move it aside",
            "a file shorter than a header is not a database either",
        ),
        (
            &foreign,
            Some("Corrupt"),
            "move it aside",
            "a redb database without our schema is someone else's",
        ),
        (
            &newer,
            Some("SchemaTooNew"),
            "newer upkeep",
            "a newer schema is refused, not misread",
        ),
        (
            &missing_dir,
            Some("Io"),
            "create the directory",
            "the store does not create directories",
        ),
        (
            dir.path(),
            Some("Io"),
            "is a directory",
            "a directory is not a store file",
        ),
        (
            &empty,
            None,
            "",
            "an empty file (mktemp, touch) becomes a new store",
        ),
    ];
    for (path, want, hint, reason) in cases {
        match (want, Store::open(path)) {
            (None, Ok(_)) => {}
            (Some(v), Err(e)) => {
                assert_eq!(&variant(&e), v, "{reason}: {e}");
                assert!(
                    e.to_string().contains(&path.display().to_string()),
                    "{reason}: message names the path: {e}"
                );
                assert_eq!(e.path(), *path, "{reason}");
                let h = e.hint().unwrap_or_default();
                assert!(
                    h.contains(hint),
                    "{reason}: hint {h:?} should mention {hint:?}"
                );
            }
            (want, got) => panic!("{reason}: wanted {want:?}, got {got:?}"),
        }
    }
    // The refused files were not modified by the attempt.
    assert!(
        std::fs::read_to_string(&text)
            .unwrap()
            .starts_with("this is not"),
        "a foreign file is left alone"
    );
    assert_eq!(
        std::fs::read(&short).unwrap(),
        b"abc",
        "a short file is left alone"
    );
}

#[test]
fn a_second_open_of_the_same_file_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let first = Store::open(&path).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert_eq!(
        variant(&err),
        "Locked",
        "the file lock is held while a store is open: {err}"
    );
    assert!(
        err.hint().unwrap().contains("another upkeep"),
        "the hint says who holds it"
    );
    drop(first);
    Store::open(&path).expect("the lock is released when the store is dropped");
}

// ---------------------------------------------------------------------------------------------
// secrets

#[test]
fn no_secret_reaches_the_file_and_redacted_keys_still_find_their_records() {
    use upkeep_store::{NewClusterUpgrade, UpgradeOutcome};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    // (secret, where it is planted)
    let planted = [
        ("store-pw-repo-1", "the repository URL of a change"),
        ("store-tok-query-2", "a ?token= in the repository URL"),
        ("store-pw-err-3", "a run error quoting a URL"),
        ("store-pw-fin-4", "the error a run finished with"),
        ("store-tok-src-5", "a first-seen source key"),
        ("store-pw-tgt-6", "a cluster upgrade's target repository"),
        (
            "store-auth-7",
            "a cluster upgrade's reason quoting a header",
        ),
    ];
    let repo = format!("https://bot:{}@git.example/fleet.git", planted[0].0);
    let repo_query = format!("https://git.example/other.git?token={}", planted[1].0);
    let source = format!(
        "https://charts.example/x?access_token={}#podinfo",
        planted[4].0
    );
    {
        let store = Store::open(&path).unwrap();
        store
            .append_changes(&[
                change(1, &repo, "apps/a.yaml", "ns/p", None),
                change(2, &repo_query, "apps/b.yaml", "ns/p", None),
            ])
            .unwrap();
        let run = store.begin_run(t(0)).unwrap();
        store
            .record_run_error(
                run,
                t(1),
                &format!("fetch oci://u:{}@h/x failed", planted[2].0),
            )
            .unwrap();
        store
            .finish_run(
                run,
                t(2),
                Outcome::Failed,
                Some(&format!("http://u:{}@h/x.git: refused", planted[3].0)),
            )
            .unwrap();
        store
            .record_first_seen(&source, &[("1.0.0", t(3))])
            .unwrap();
        store
            .append_cluster_upgrade(&NewClusterUpgrade {
                cluster: "c1".to_owned(),
                namespace: None,
                from: "1.0.0".to_owned(),
                to: "1.1.0".to_owned(),
                at: t(4),
                via: "git".to_owned(),
                target: format!("https://u:{}@git.example/c.git", planted[5].0),
                file: None,
                commit: None,
                pull_request: None,
                outcome: UpgradeOutcome::Failed,
                reason: Some(format!(
                    "server said: Authorization: Bearer {}",
                    planted[6].0
                )),
                finished_at: None,
                follows: None,
            })
            .unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    for (secret, place) in planted {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{place}: `{secret}` is in the store file"
        );
    }
    let store = Store::open(&path).unwrap();
    let found = store.changes_for_repository(&repo, 10).unwrap();
    assert_eq!(
        found.len(),
        1,
        "looking a repository up by the URL as given (with its password) finds its changes"
    );
    assert_eq!(
        found[0].change.repository, "https://bot:<redacted>@git.example/fleet.git",
        "the recorded repository keeps everything but the password"
    );
    assert_eq!(
        store
            .changes_for_file(&repo_query, "apps/b.yaml", 10)
            .unwrap()
            .len(),
        1,
        "by file, under a repository URL with a token"
    );
    assert_eq!(
        store.first_seen_many(&source, &["1.0.0"]).unwrap(),
        vec![Some(t(3))],
        "first-seen times under a source key with a token are found again"
    );
}
