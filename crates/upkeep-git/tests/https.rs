//! upkeep-git over HTTPS against Debian nginx serving TLS with a certificate from a private
//! test CA (upkeep-testenv), `git http-backend` behind it: the custom-CA path of the rustls
//! transport, and what happens without that CA or over plain http.

use upkeep_git::{Auth, GitError, PushOutcome, Repo};
use upkeep_testenv::{GitServer, git};

mod support;
use support::{FILE, runtime};

const USER: &str = "upkeep";
const PASSWORD: &str = "s3cret-tls-pa55word";
const ORIGINAL: &[u8] = b"version: 6.5.0\n";

fn tls_server(rt: &tokio::runtime::Runtime) -> GitServer {
    rt.block_on(GitServer::start_tls(Some((USER, PASSWORD))))
        .unwrap_or_else(|e| panic!("TLS git server starts: {e}"))
}

#[test]
fn clone_and_push_over_https_with_a_private_ca() {
    let rt = runtime();
    let server = tls_server(&rt);
    let url = server
        .create_repo("fleet", &[(FILE, ORIGINAL)])
        .expect("repo");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let ca = server.ca_pem().expect("a TLS server has a CA");
    let auth = Auth::basic(USER, PASSWORD).with_ca_pem(ca.as_bytes());
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = Repo::clone_or_open(&url, &tmp.path().join("c"), "main", &auth)
        .unwrap_or_else(|e| panic!("clone over https: {e}\n{}", server.log_tail()));
    let mut contents = std::fs::read(repo.workdir().join(FILE)).expect("read");
    contents.extend_from_slice(b"# bumped\n");
    repo.write_file(FILE, &contents).expect("write");
    let oid = repo
        .commit("upkeep", "upkeep@example.invalid", "over TLS")
        .expect("commit")
        .expect("changed");
    assert_eq!(
        repo.push("main", "main", &auth).expect("push"),
        PushOutcome::Pushed
    );
    let bare = server.bare_path("fleet");
    let tip = git(
        &[
            "--git-dir",
            bare.to_str().expect("utf-8"),
            "rev-parse",
            "main",
        ],
        None,
    )
    .expect("rev-parse");
    assert_eq!(tip.trim(), oid.to_string());
    assert!(
        server.requests().iter().any(|r| r.method == "POST"
            && r.path.ends_with("/git-receive-pack")
            && r.status == 200),
        "the push went through nginx over TLS: {:?}",
        server.requests()
    );
}

#[test]
fn an_untrusted_certificate_is_a_tls_error_with_a_ca_hint() {
    let rt = runtime();
    let server = tls_server(&rt);
    let other = tls_server(&rt);
    let url = server
        .create_repo("fleet", &[(FILE, ORIGINAL)])
        .expect("repo");
    let tmp = tempfile::tempdir().expect("tempdir");
    let other_ca = other.ca_pem().expect("CA").as_bytes().to_vec();
    let cases = [
        (
            Auth::basic(USER, PASSWORD),
            "no CA given: the system roots do not know the test CA",
        ),
        (
            Auth::basic(USER, PASSWORD).with_ca_pem(other_ca),
            "another server's CA does not vouch for this certificate",
        ),
    ];
    for (i, (auth, reason)) in cases.into_iter().enumerate() {
        let err = Repo::clone_or_open(&url, &tmp.path().join(format!("c{i}")), "main", &auth)
            .expect_err(reason);
        let GitError::Tls {
            server: host,
            message,
        } = &err
        else {
            panic!("{reason}: want GitError::Tls, got {err:?}");
        };
        assert!(
            host.starts_with("127.0.0.1:"),
            "{reason}: names the server: {err}"
        );
        assert!(
            message.to_ascii_lowercase().contains("certificate"),
            "{reason}: says what is wrong: {err}"
        );
        let hint = err.hint().expect("hint");
        assert!(
            hint.contains("CA"),
            "{reason}: the hint is about the CA: {hint}"
        );
        for shown in [err.to_string(), format!("{err:?}"), hint] {
            assert!(
                !shown.contains(PASSWORD),
                "{reason}: password leaked in {shown}"
            );
        }
    }
    assert!(
        server.requests().is_empty(),
        "no request got past the handshake: {:?}",
        server.requests()
    );
}

#[test]
fn plain_http_is_refused_unless_allowed() {
    let rt = runtime();
    let server = rt
        .block_on(GitServer::start(Some((USER, PASSWORD))))
        .expect("http git server");
    let url = server
        .create_repo("fleet", &[(FILE, ORIGINAL)])
        .expect("repo");
    assert!(url.starts_with("http://"), "{url}");
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = Repo::clone_or_open(
        &url,
        &tmp.path().join("c"),
        "main",
        &Auth::basic(USER, PASSWORD),
    )
    .expect_err("http without allow_insecure_http");
    assert!(matches!(err, GitError::InsecureHttp { .. }), "{err:?}");
    assert!(err.hint().is_some_and(|h| h.contains("https://")));
    assert!(
        server.requests().is_empty(),
        "refused before any request (the password never travelled): {:?}",
        server.requests()
    );
    Repo::clone_or_open(
        &url,
        &tmp.path().join("allowed"),
        "main",
        &Auth::basic(USER, PASSWORD).allow_insecure_http(),
    )
    .expect("allowed explicitly, it works");
}
