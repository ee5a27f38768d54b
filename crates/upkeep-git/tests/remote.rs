//! upkeep-git against real Git servers only: bare repositories over `file://`, and
//! `git http-backend` behind Debian nginx + fcgiwrap with basic auth (upkeep-testenv).
//! Git operations are blocking, so the tests are plain `#[test]`s; a small runtime only
//! starts the server.

use upkeep_git::{Auth, GitError, PushOutcome, Repo};
use upkeep_testenv::{GitServer, create_bare_repo};

mod support;
use support::{FILE, bare_git, change, runtime};

const USER: &str = "upkeep";
const PASSWORD: &str = "s3cret-pa55word-xyz";
const ORIGINAL: &[u8] = b"version: 6.5.0 # {\"$upkeep\": \"flux-system:podinfo\"}\n";

fn server(rt: &tokio::runtime::Runtime, auth: bool) -> GitServer {
    rt.block_on(GitServer::start(auth.then_some((USER, PASSWORD))))
        .expect("git server starts")
}

fn http_auth() -> Auth {
    Auth::basic(USER, PASSWORD).allow_insecure_http()
}

#[test]
fn clone_over_file_url_and_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bare = tmp.path().join("origin.git");
    create_bare_repo(&bare, &[(FILE, ORIGINAL)]).expect("bare repo");
    let url = format!("file://{}", bare.display());
    let dir = tmp.path().join("clone");
    let repo = Repo::clone_or_open(&url, &dir, "main", &Auth::none()).expect("clone");
    assert_eq!(std::fs::read(dir.join(FILE)).expect("file"), ORIGINAL);
    drop(repo);

    let reopened = Repo::clone_or_open(&url, &dir, "main", &Auth::none());
    assert!(
        reopened.is_ok(),
        "an existing clone of the same URL reopens: {reopened:?}"
    );
    let other = format!("file://{}", tmp.path().join("other.git").display());
    let err = Repo::clone_or_open(&other, &dir, "main", &Auth::none()).expect_err("mismatch");
    assert!(matches!(err, GitError::RemoteMismatch { .. }), "{err:?}");
    assert!(err.hint().is_some());
}

#[test]
fn clone_over_http_with_basic_auth() {
    let rt = runtime();
    let server = server(&rt, true);
    let url = server
        .create_repo("fleet", &[(FILE, ORIGINAL)])
        .expect("repo");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("clone");
    Repo::clone_or_open(&url, &dir, "main", &http_auth())
        .unwrap_or_else(|e| panic!("clone over http: {e}\n{}", server.log_tail()));
    assert_eq!(std::fs::read(dir.join(FILE)).expect("file"), ORIGINAL);
    let requests = server.requests();
    assert!(
        requests.iter().any(
            |r| r.path == "/git/fleet.git/info/refs?service=git-upload-pack" && r.status == 200
        ),
        "the advertisement went through nginx: {requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.method == "POST"
            && r.path == "/git/fleet.git/git-upload-pack"
            && r.status == 200),
        "the pack went through nginx: {requests:?}"
    );
}

#[test]
fn refused_access_is_typed_and_never_shows_the_secret() {
    let rt = runtime();
    let server = server(&rt, true);
    let url = server
        .create_repo("fleet", &[(FILE, ORIGINAL)])
        .expect("repo");
    let tmp = tempfile::tempdir().expect("tempdir");
    let wrong = "wrong-password-QQQ";
    let cases: Vec<RefusalCase> = vec![
        (
            url.clone(),
            Auth::basic(USER, wrong).allow_insecure_http(),
            |e| matches!(e, GitError::Unauthorized { .. }),
            wrong,
            "a wrong password is a 401 from nginx, reported as Unauthorized",
        ),
        (
            url.clone(),
            Auth::none().allow_insecure_http(),
            |e| matches!(e, GitError::Unauthorized { .. }),
            PASSWORD,
            "no credentials at all is Unauthorized too",
        ),
        (
            url.clone(),
            Auth::basic(USER, PASSWORD),
            |e| matches!(e, GitError::InsecureHttp { .. }),
            PASSWORD,
            "plain http is refused unless allowed: the password would travel in clear",
        ),
        (
            url.clone(),
            Auth::basic(USER, PASSWORD)
                .allow_insecure_http()
                .with_ca_pem(b"not a certificate".to_vec()),
            |e| matches!(e, GitError::InvalidCa { .. }),
            PASSWORD,
            "a CA option that holds no certificate is an error, not silently the system roots",
        ),
        (
            url.replace("http://", &format!("http://{USER}:{PASSWORD}@")),
            http_auth(),
            |e| matches!(e, GitError::InvalidUrl { .. }),
            PASSWORD,
            "credentials in the URL are refused without echoing them",
        ),
    ];
    for (i, (url, auth, expected, secret, reason)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("clone-{i}"));
        let err = Repo::clone_or_open(&url, &dir, "main", &auth).expect_err(reason);
        assert!(expected(&err), "{reason}: got {err:?}");
        assert!(err.hint().is_some(), "{reason}: a hint is offered");
        for shown in [err.to_string(), format!("{err:?}"), format!("{auth:?}")] {
            assert!(
                !shown.contains(secret),
                "{reason}: secret leaked in {shown}"
            );
        }
    }
}

/// URL, access, expected error, secret that must not show, reason.
type RefusalCase = (
    String,
    Auth,
    fn(&GitError) -> bool,
    &'static str,
    &'static str,
);

#[test]
fn commit_and_push_over_http() {
    let rt = runtime();
    let server = server(&rt, true);
    let url = server
        .create_repo("fleet", &[(FILE, ORIGINAL)])
        .expect("repo");
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo =
        Repo::clone_or_open(&url, &tmp.path().join("c"), "main", &http_auth()).expect("clone");

    let unchanged = repo
        .commit("upkeep", "upkeep@example.invalid", "nothing")
        .expect("commit");
    assert_eq!(unchanged, None, "no change, no commit");
    repo.write_file("apps/new/extra.yaml", b"a: 1\n")
        .expect("write new file");
    let oid = change(&repo, "# bumped\n", "podinfo 6.5.0 -> 6.5.1");
    let outcome = repo.push("main", "main", &http_auth()).expect("push");
    assert_eq!(outcome, PushOutcome::Pushed);

    let bare = server.bare_path("fleet");
    let log = bare_git(&bare, &["log", "--format=%H %an %s", "main"]);
    assert!(
        log.starts_with(&format!("{oid} upkeep podinfo 6.5.0 -> 6.5.1\n")),
        "the server's main is our commit: {log}"
    );
    let changed = bare_git(&bare, &["show", "--name-only", "--format=", "main"]);
    assert_eq!(
        changed, "apps/new/extra.yaml\napps/podinfo.yaml\n",
        "only the changed files"
    );

    let pushed_to_branch = repo
        .push("main", "upkeep/podinfo", &http_auth())
        .expect("push");
    assert_eq!(
        pushed_to_branch,
        PushOutcome::Pushed,
        "a separate upgrade branch is created"
    );
    let tip = bare_git(&bare, &["rev-parse", "upkeep/podinfo"]);
    assert_eq!(tip.trim(), oid.to_string());
}

#[test]
fn two_writers_race_the_second_is_rejected_then_retries() {
    let rt = runtime();
    let server = server(&rt, true);
    let url = server
        .create_repo("fleet", &[(FILE, ORIGINAL)])
        .expect("repo");
    let tmp = tempfile::tempdir().expect("tempdir");
    let bare = server.bare_path("fleet");
    let (second, a) = support::race(&url, &http_auth(), tmp.path(), &bare);

    // The retry loop upkeep runs: fetch, reset to the remote, re-apply, push.
    second.fetch(&http_auth()).expect("fetch");
    let still = second
        .push("main", "main", &http_auth())
        .expect("push b after fetch");
    assert!(
        matches!(still, PushOutcome::Rejected { .. }),
        "knowing a's commit does not make b a fast-forward; never forced: {still:?}"
    );
    support::retry_on_top(&second, &http_auth(), &bare, a);
}

#[test]
fn a_server_side_rejection_comes_through_the_callback() {
    let rt = runtime();
    let server = server(&rt, false);
    let url = server
        .create_repo("fleet", &[(FILE, ORIGINAL)])
        .expect("repo");
    let tmp = tempfile::tempdir().expect("tempdir");
    let auth = Auth::none().allow_insecure_http();
    support::assert_hook_refusal_is_a_rejection(
        &url,
        &auth,
        tmp.path(),
        &server.bare_path("fleet"),
    );
}

#[test]
fn writes_that_escape_the_repository_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bare = tmp.path().join("origin.git");
    create_bare_repo(&bare, &[(FILE, ORIGINAL)]).expect("bare repo");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    let url = format!("file://{}", bare.display());
    let repo =
        Repo::clone_or_open(&url, &tmp.path().join("c"), "main", &Auth::none()).expect("clone");
    std::os::unix::fs::symlink(&outside, repo.workdir().join("link")).expect("symlink");
    let cases = [
        ("../outside/x.yaml", "`..` climbs out of the work tree"),
        ("link/x.yaml", "a symlink in the work tree points outside"),
        (
            ".git/hooks/pre-commit",
            "the repository's metadata is not a work-tree file",
        ),
    ];
    for (path, reason) in cases {
        let err = repo.write_file(path, b"pwned\n").expect_err(reason);
        assert!(
            matches!(err, GitError::PathEscapes { .. }),
            "{reason}: {err:?}"
        );
        assert!(
            err.to_string().contains(path),
            "{reason}: names the path: {err}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&outside).expect("ls").count(),
        0,
        "nothing written outside"
    );
}
