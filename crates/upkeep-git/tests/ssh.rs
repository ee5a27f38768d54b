//! upkeep-git over SSH against a real OpenSSH server (Debian's sshd, started by
//! upkeep-testenv on 127.0.0.1 with its own host key and one authorized client key), through
//! the system `ssh` client. Git operations are blocking, so the tests are plain `#[test]`s.

use upkeep_git::{Auth, GitError, PushOutcome, Repo};
use upkeep_testenv::{SshServer, generate_ssh_key};

mod support;
use support::{FILE, bare_git, change};

const ORIGINAL: &[u8] = b"version: 6.5.0 # {\"$upkeep\": \"flux-system:podinfo\"}\n";

fn server() -> SshServer {
    SshServer::start().unwrap_or_else(|e| panic!("sshd starts: {e}\nhint: {:?}", e.hint()))
}

fn ssh_auth(server: &SshServer) -> Auth {
    Auth::ssh_key(server.client_key()).with_known_hosts(server.known_hosts())
}

#[test]
fn clone_commit_and_push_over_ssh() {
    let server = server();
    let url = server
        .create_repo("fleet", &[(FILE, ORIGINAL)])
        .expect("repo");
    assert!(url.starts_with("ssh://"), "{url}");
    let tmp = tempfile::tempdir().expect("tempdir");
    let auth = ssh_auth(&server);
    let repo =
        Repo::clone_or_open(&url, &tmp.path().join("c"), "main", &auth).unwrap_or_else(|e| {
            panic!(
                "clone over ssh: {e} (hint: {:?})\n{}",
                e.hint(),
                server.log_tail()
            )
        });
    assert_eq!(
        std::fs::read(repo.workdir().join(FILE)).expect("file"),
        ORIGINAL
    );
    let oid = change(&repo, "# bumped\n", "podinfo 6.5.0 -> 6.5.1");
    let outcome = repo.push("main", "main", &auth).expect("push over ssh");
    assert_eq!(outcome, PushOutcome::Pushed);
    let log = bare_git(
        &server.bare_path("fleet"),
        &["log", "--format=%H %s", "main"],
    );
    assert!(
        log.starts_with(&format!("{oid} podinfo 6.5.0 -> 6.5.1\n")),
        "the server's main is our commit: {log}"
    );
    repo.fetch(&auth)
        .expect("a fetch with nothing new works too");
    assert!(
        server.log_tail().contains("Accepted publickey"),
        "sshd authenticated the key: {}",
        server.log_tail()
    );
}

#[test]
fn two_writers_race_over_ssh_the_second_is_rejected_then_retries() {
    let server = server();
    let url = server
        .create_repo("fleet", &[(FILE, ORIGINAL)])
        .expect("repo");
    let tmp = tempfile::tempdir().expect("tempdir");
    let auth = ssh_auth(&server);
    let bare = server.bare_path("fleet");
    let (second, a) = support::race(&url, &auth, tmp.path(), &bare);

    second.fetch(&auth).expect("fetch");
    support::retry_on_top(&second, &auth, &bare, a);
}

#[test]
fn a_server_side_rejection_over_ssh_comes_through_the_callback() {
    let server = server();
    let url = server
        .create_repo("fleet", &[(FILE, ORIGINAL)])
        .expect("repo");
    let tmp = tempfile::tempdir().expect("tempdir");
    let auth = ssh_auth(&server);
    support::assert_hook_refusal_is_a_rejection(
        &url,
        &auth,
        tmp.path(),
        &server.bare_path("fleet"),
    );
}

#[test]
fn the_scp_like_syntax_works() {
    let server = server();
    server
        .create_repo("fleet", &[(FILE, ORIGINAL)])
        .expect("repo");
    let url = server.scp_url("fleet");
    assert!(!url.contains("://"), "{url}");
    // The scp-like syntax has no port; an operator would put it in ~/.ssh/config. Here the
    // ssh program is a wrapper that adds `-p PORT` and runs the real client.
    let tmp = tempfile::tempdir().expect("tempdir");
    let wrapper = tmp.path().join("ssh-with-port");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec ssh -p {} \"$@\"\n", server.port()),
    )
    .expect("wrapper");
    let mut permissions = std::fs::metadata(&wrapper).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&wrapper, permissions).expect("chmod");
    let auth = ssh_auth(&server).with_ssh_program(&wrapper);

    let repo = Repo::clone_or_open(&url, &tmp.path().join("c"), "main", &auth)
        .unwrap_or_else(|e| panic!("scp-like clone: {e}\n{}", server.log_tail()));
    let oid = change(&repo, "# scp\n", "over the scp-like URL");
    assert_eq!(
        repo.push("main", "main", &auth).expect("push"),
        PushOutcome::Pushed
    );
    assert_eq!(
        bare_git(&server.bare_path("fleet"), &["rev-parse", "main"]).trim(),
        oid.to_string()
    );
}

#[test]
fn a_new_host_key_is_accepted_only_when_asked() {
    let server = server();
    let url = server
        .create_repo("fleet", &[(FILE, ORIGINAL)])
        .expect("repo");
    let tmp = tempfile::tempdir().expect("tempdir");
    let known_hosts = tmp.path().join("known_hosts");
    std::fs::write(&known_hosts, "").expect("empty known_hosts");
    let strict = Auth::ssh_key(server.client_key()).with_known_hosts(&known_hosts);
    let err = Repo::clone_or_open(&url, &tmp.path().join("strict"), "main", &strict)
        .expect_err("an unknown host key is refused by default");
    assert!(matches!(err, GitError::HostKey { .. }), "{err:?}");

    let accepting = strict.clone().accept_new_host_keys();
    Repo::clone_or_open(&url, &tmp.path().join("c"), "main", &accepting)
        .unwrap_or_else(|e| panic!("accept-new clones: {e}"));
    let recorded = std::fs::read_to_string(&known_hosts).expect("known_hosts");
    let served = std::fs::read_to_string(server.known_hosts()).expect("server's known_hosts");
    let host_key = served
        .split_once(' ')
        .map(|(_, key)| key.trim())
        .expect("`host key` line");
    // The host name may be hashed (Debian's ssh_config sets HashKnownHosts), the key is not.
    assert!(
        recorded.trim_end().ends_with(host_key),
        "ssh recorded the server's key {host_key}: {recorded}"
    );
    Repo::clone_or_open(&url, &tmp.path().join("again"), "main", &strict)
        .expect("once recorded, strict checking passes");
}

/// URL, access, expected error, reason.
type RefusalCase = (String, Auth, fn(&GitError) -> bool, &'static str);

#[test]
fn refused_ssh_access_is_typed_and_never_shows_key_contents() {
    let server = server();
    let url = server
        .create_repo("fleet", &[(FILE, ORIGINAL)])
        .expect("repo");
    let tmp = tempfile::tempdir().expect("tempdir");
    let stranger = tmp.path().join("stranger_ed25519");
    generate_ssh_key(&stranger).expect("a key sshd does not know");
    let empty_known_hosts = tmp.path().join("known_hosts");
    std::fs::write(&empty_known_hosts, "").expect("empty known_hosts");
    let missing_repo = url.replace("fleet.git", "nope.git");

    let cases: Vec<RefusalCase> = vec![
        (
            url.clone(),
            Auth::ssh_key(&stranger).with_known_hosts(server.known_hosts()),
            |e| {
                matches!(e, GitError::Unauthorized { detail, .. }
                    if detail.contains("Permission denied (publickey)"))
            },
            "a key the server does not authorize: Unauthorized, with ssh's own words",
        ),
        (
            url.clone(),
            Auth::ssh_key(server.client_key()).with_known_hosts(&empty_known_hosts),
            |e| {
                matches!(e, GitError::HostKey { message, .. }
                    if message.contains("Host key verification failed"))
            },
            "the host key is not in the known_hosts file: HostKey, never silently accepted",
        ),
        (
            url.clone(),
            Auth::ssh_key(tmp.path().join("no-such-key")).with_known_hosts(server.known_hosts()),
            |e| matches!(e, GitError::SshKey { path, .. } if path.ends_with("no-such-key")),
            "a missing key file is named before ssh even starts",
        ),
        (
            url.clone(),
            ssh_auth(&server).with_ssh_program(tmp.path().join("no-ssh-here")),
            |e| matches!(e, GitError::SshNotFound { .. }),
            "no ssh client: say to install openssh-client",
        ),
        (
            missing_repo,
            ssh_auth(&server),
            |e| {
                matches!(e, GitError::Ssh { message, .. }
                    if message.contains("does not appear to be a git repository"))
            },
            "a wrong path: the remote git's message comes through",
        ),
        (
            format!(
                "ssh://{}:hunter2-secret@127.0.0.1:{}{}",
                server.user(),
                server.port(),
                server.bare_path("fleet").display()
            ),
            ssh_auth(&server),
            |e| matches!(e, GitError::InvalidUrl { .. }),
            "a password in an ssh URL is refused",
        ),
    ];
    let key_body = std::fs::read_to_string(server.client_key()).expect("key");
    let stranger_body = std::fs::read_to_string(&stranger).expect("key");
    let secret_line = |body: &str| body.lines().nth(1).expect("a key body line").to_owned();
    let secrets = [
        secret_line(&key_body),
        secret_line(&stranger_body),
        "hunter2-secret".to_owned(),
    ];
    for (i, (url, auth, expected, reason)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("clone-{i}"));
        let err = Repo::clone_or_open(&url, &dir, "main", &auth).expect_err(reason);
        assert!(expected(&err), "{reason}: got {err:?}");
        let hint = err
            .hint()
            .unwrap_or_else(|| panic!("{reason}: a hint is offered"));
        for shown in [
            err.to_string(),
            format!("{err:?}"),
            format!("{auth:?}"),
            hint,
        ] {
            for secret in &secrets {
                assert!(
                    !shown.contains(secret.as_str()),
                    "{reason}: secret leaked in {shown}"
                );
            }
        }
    }
}

#[test]
fn hints_name_the_concrete_fix() {
    let server = server();
    let url = server
        .create_repo("fleet", &[(FILE, ORIGINAL)])
        .expect("repo");
    let tmp = tempfile::tempdir().expect("tempdir");
    let known_hosts = tmp.path().join("known_hosts");
    std::fs::write(&known_hosts, "").expect("empty known_hosts");
    let auth = Auth::ssh_key(server.client_key()).with_known_hosts(&known_hosts);
    let err = Repo::clone_or_open(&url, &tmp.path().join("c"), "main", &auth)
        .expect_err("unknown host key");
    let hint = err.hint().expect("hint");
    let command = format!(
        "ssh-keyscan -p {} 127.0.0.1 >> {}",
        server.port(),
        known_hosts.display()
    );
    assert!(hint.contains(&command), "{hint}");

    let missing = Auth::ssh_key(server.client_key()).with_ssh_program("/nonexistent/ssh");
    let err =
        Repo::clone_or_open(&url, &tmp.path().join("d"), "main", &missing).expect_err("no ssh");
    assert!(
        err.hint().is_some_and(|h| h.contains("openssh-client")),
        "{:?}",
        err.hint()
    );
}

#[test]
fn debug_of_ssh_auth_shows_the_key_path_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = tmp.path().join("id_ed25519");
    generate_ssh_key(&key).expect("key");
    let body = std::fs::read_to_string(&key).expect("key");
    let auth = Auth::ssh_key(&key)
        .with_known_hosts(tmp.path().join("known_hosts"))
        .accept_new_host_keys();
    let shown = format!("{auth:?}");
    assert!(
        shown.contains(&key.display().to_string()),
        "the path is shown: {shown}"
    );
    assert!(shown.contains("accept_new_host_keys: true"), "{shown}");
    for line in body.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!shown.contains(line), "key contents leaked: {shown}");
    }
    assert_eq!(auth.ssh_key_path(), Some(key.as_path()));
}
