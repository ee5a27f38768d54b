//! Pull-request providers against `PrStandIn`, a stand-in HTTP server that implements only the
//! GitHub, GitLab and Gitea endpoints upkeep calls (there is no real forge on the test
//! machines). Every behaviour test loops over the three providers.

use upkeep_git::pr::{PrError, PrRequest, PrTarget, ProviderKind, Token, api_base_for};
use upkeep_git::{PullRequest, ensure_pull_request};
use upkeep_testenv::{ForgeFlavor, InjectedFailure, PrStandIn, StandInPrState};

const TOKEN: &str = "tok-3f9a1c-right";
const LABELS: [&str; 3] = ["upkeep", "automerge", "dependencies"];

fn flavor(kind: ProviderKind) -> ForgeFlavor {
    match kind {
        ProviderKind::Github => ForgeFlavor::Github,
        ProviderKind::Gitlab => ForgeFlavor::Gitlab,
        ProviderKind::Gitea => ForgeFlavor::Gitea,
    }
}

/// GitLab gets a subgroup path so every GitLab test also exercises the encoding.
fn repository(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Gitlab => "platform/apps/fleet",
        ProviderKind::Github | ProviderKind::Gitea => "org/fleet",
    }
}

/// A running stand-in with the repository (and, for Gitea, its labels) and a target for it.
fn setup(kind: ProviderKind, token: &str) -> (PrStandIn, PrTarget) {
    let standin = PrStandIn::start(flavor(kind), TOKEN).expect("start the stand-in");
    standin.create_repository(repository(kind));
    for label in LABELS {
        standin
            .add_label(repository(kind), label)
            .expect("repository exists");
    }
    let target = PrTarget {
        kind,
        api_base: url::Url::parse(&standin.api_base()).expect("stand-in base is a URL"),
        repository: repository(kind).to_owned(),
        token: Token::new(token),
        ca_pem: None,
    };
    (standin, target)
}

fn request(title: &str, body: &str, labels: &[&str]) -> PrRequest {
    PrRequest {
        base: "main".to_owned(),
        head: "upkeep/apps".to_owned(),
        title: title.to_owned(),
        body: body.to_owned(),
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
    }
}

fn ensure(target: &PrTarget, request: &PrRequest) -> PullRequest {
    ensure_pull_request(target, request)
        .unwrap_or_else(|e| panic!("{}: {e} (hint: {:?})", target.kind, e.hint()))
}

fn expect_error(target: &PrTarget, request: &PrRequest) -> PrError {
    match ensure_pull_request(target, request) {
        Ok(pr) => panic!("{}: expected an error, got {pr:?}", target.kind),
        Err(e) => e,
    }
}

#[test]
fn a_second_run_updates_the_same_pull_request() {
    for kind in ProviderKind::ALL {
        let (standin, target) = setup(kind, TOKEN);
        let first = ensure(
            &target,
            &request(
                "Upgrade app to 1.2.0",
                "first body",
                &["upkeep", "automerge"],
            ),
        );
        assert!(first.created, "{kind}: nothing was open, so it is created");
        assert!(
            first
                .url
                .starts_with(standin.api_base().split("/api").next().unwrap_or(""))
                && first.url.ends_with(&first.number.to_string()),
            "{kind}: the URL is the web page of the pull request: {}",
            first.url
        );

        let second = ensure(
            &target,
            &request(
                "Upgrade app to 1.3.0",
                "second body",
                &["automerge", "dependencies", "automerge"],
            ),
        );
        assert_eq!(
            (second.number, second.created),
            (first.number, false),
            "{kind}: the open pull request is updated, not duplicated"
        );
        let pulls = standin.pull_requests(repository(kind));
        assert_eq!(
            pulls.len(),
            1,
            "{kind}: exactly one pull request: {pulls:?}"
        );
        let pull = &pulls[0];
        assert_eq!(
            (pull.title.as_str(), pull.body.as_str(), pull.state),
            ("Upgrade app to 1.3.0", "second body", StandInPrState::Open),
            "{kind}: title and body follow the latest run"
        );
        assert_eq!(
            (pull.head.as_str(), pull.base.as_str()),
            ("upkeep/apps", "main"),
            "{kind}: from the upgrade branch into the base"
        );
        let mut labels = pull.labels.clone();
        labels.sort();
        assert_eq!(
            labels,
            ["automerge", "dependencies", "upkeep"],
            "{kind}: labels are added once each and earlier ones are kept (Gitea replaces on PATCH, so the client sends the union)"
        );
    }
}

#[test]
fn a_closed_or_merged_pull_request_is_followed_by_a_new_one() {
    for kind in ProviderKind::ALL {
        let (standin, target) = setup(kind, TOKEN);
        let repo = repository(kind);
        let first = ensure(&target, &request("Upgrade to 1", "b", &["upkeep"]));
        assert!(standin.close(repo, first.number), "{kind}: close it");
        let second = ensure(&target, &request("Upgrade to 2", "b", &["upkeep"]));
        assert!(
            second.created && second.number != first.number,
            "{kind}: a closed pull request is left alone and a new one opened: {second:?}"
        );
        assert!(standin.merge(repo, second.number), "{kind}: merge it");
        let third = ensure(&target, &request("Upgrade to 3", "b", &["upkeep"]));
        assert!(
            third.created && third.number != second.number,
            "{kind}: a merged pull request is left alone too: {third:?}"
        );
        let states: Vec<_> = standin
            .pull_requests(repo)
            .iter()
            .map(|p| (p.title.clone(), p.state))
            .collect();
        assert_eq!(
            states,
            [
                ("Upgrade to 1".to_owned(), StandInPrState::Closed),
                ("Upgrade to 2".to_owned(), StandInPrState::Merged),
                ("Upgrade to 3".to_owned(), StandInPrState::Open),
            ],
            "{kind}: the old ones keep their titles; only the open one is touched"
        );
    }
}

#[test]
fn a_wrong_token_is_unauthorized_and_never_printed() {
    let wrong = "wrong-9d2e7b-secret";
    for kind in ProviderKind::ALL {
        let (standin, target) = setup(kind, wrong);
        let error = expect_error(&target, &request("t", "b", &[]));
        assert!(
            matches!(error, PrError::Unauthorized { status: 401, .. }),
            "{kind}: 401 is Unauthorized: {error:?}"
        );
        assert_eq!(error.label(), "Unauthorized", "{kind}: the metric label");
        let shown = format!(
            "{error} | {error:?} | {:?} | {target:?}",
            error.hint().unwrap_or("")
        );
        assert!(
            !shown.contains(wrong),
            "{kind}: the token appears nowhere: {shown}"
        );
        assert!(
            error.hint().is_some_and(|h| h.contains("scope")),
            "{kind}: the hint is about token scopes"
        );
        assert!(
            standin.pull_requests(repository(kind)).is_empty(),
            "{kind}: nothing was created"
        );
    }
}

#[test]
fn a_token_echoed_by_the_server_is_redacted_from_errors() {
    for kind in ProviderKind::ALL {
        let (standin, target) = setup(kind, TOKEN);
        standin.fail_next(InjectedFailure::EchoCredentials);
        let error = expect_error(&target, &request("t", "b", &[]));
        let shown = format!("{error} | {error:?}");
        assert!(
            matches!(error, PrError::Http { status: 400, .. }),
            "{kind}: 400 is Http: {error:?}"
        );
        assert!(
            !shown.contains(TOKEN) && shown.contains("<redacted>"),
            "{kind}: the echoed token is replaced in the excerpt: {shown}"
        );
    }
}

#[test]
fn a_server_error_names_the_request() {
    for kind in ProviderKind::ALL {
        let (standin, target) = setup(kind, TOKEN);
        standin.fail_next(InjectedFailure::ServerError);
        let error = expect_error(&target, &request("t", "b", &[]));
        let PrError::Http {
            status,
            ref method,
            ref path,
            ..
        } = error
        else {
            panic!("{kind}: 500 is Http: {error:?}");
        };
        let first = &standin.requests()[0];
        assert_eq!(
            (status, method.as_str(), first.status),
            (500, first.method.as_str(), 500),
            "{kind}: the failed request is the first one"
        );
        assert!(
            first.path.starts_with(path.as_str()),
            "{kind}: the error names the path the server saw ({path} vs {})",
            first.path
        );
        let text = error.to_string();
        assert!(
            text.contains(&format!("{method} {path}"))
                && text.contains("127.0.0.1")
                && text.contains("injected by the stand-in"),
            "{kind}: server, method, path and an excerpt of the body: {text}"
        );
        let after = ensure(&target, &request("t", "b", &[]));
        assert!(after.created, "{kind}: the next run works again");
    }
}

#[test]
fn rate_limits_are_rate_limited() {
    let cases = [
        (
            ProviderKind::Github,
            InjectedFailure::TooManyRequests,
            429,
            "429 is a rate limit everywhere",
        ),
        (
            ProviderKind::Gitlab,
            InjectedFailure::TooManyRequests,
            429,
            "GitLab answers 429 when throttled",
        ),
        (
            ProviderKind::Gitea,
            InjectedFailure::TooManyRequests,
            429,
            "Gitea answers 429 when throttled",
        ),
        (
            ProviderKind::Github,
            InjectedFailure::RateLimitExhausted,
            403,
            "GitHub's primary limit is a 403 with x-ratelimit-remaining: 0, not a scope problem",
        ),
    ];
    for (kind, failure, want_status, reason) in cases {
        let (standin, target) = setup(kind, TOKEN);
        standin.fail_next(failure.clone());
        let error = expect_error(&target, &request("t", "b", &[]));
        match &error {
            PrError::RateLimited {
                status,
                retry_after_secs,
                ..
            } => {
                assert_eq!(*status, want_status, "{kind} {failure:?}: {reason}");
                if want_status == 429 {
                    assert_eq!(
                        *retry_after_secs,
                        Some(7),
                        "{kind}: Retry-After is kept for the caller"
                    );
                }
            }
            other => panic!("{kind} {failure:?}: {reason}: got {other:?}"),
        }
        assert_eq!(error.label(), "RateLimited", "{kind}: {reason}");
    }
}

#[test]
fn an_unknown_repository_is_not_found() {
    for kind in ProviderKind::ALL {
        let (standin, mut target) = setup(kind, TOKEN);
        target.repository = match kind {
            ProviderKind::Gitlab => "platform/apps/missing".to_owned(),
            ProviderKind::Github | ProviderKind::Gitea => "org/missing".to_owned(),
        };
        let error = expect_error(&target, &request("t", "b", &[]));
        assert!(
            matches!(error, PrError::NotFound { .. }) && error.to_string().contains("missing"),
            "{kind}: 404 is NotFound and names the path: {error}"
        );
        assert!(
            standin.requests().len() == 1,
            "{kind}: nothing is tried after a 404"
        );
    }
}

#[test]
fn an_unreachable_server_is_a_connect_error() {
    for kind in ProviderKind::ALL {
        let (_standin, mut target) = setup(kind, TOKEN);
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        target
            .api_base
            .set_port(Some(1))
            .expect("an http URL takes a port");
        let error = expect_error(&target, &request("t", "b", &[]));
        assert!(
            matches!(error, PrError::Connect { ref method, .. } if method == "GET")
                && error.to_string().contains("127.0.0.1:1"),
            "{kind}: a refused connection is Connect and names the server: {error}"
        );
    }
}

#[test]
fn gitea_refuses_a_label_that_does_not_exist() {
    let (standin, target) = setup(ProviderKind::Gitea, TOKEN);
    let error = expect_error(&target, &request("t", "b", &["upkeep", "no-such-label"]));
    assert!(
        matches!(&error, PrError::UnknownLabel { label, .. } if label == "no-such-label"),
        "Gitea takes label ids, so a missing name cannot be sent: {error:?}"
    );
    assert!(
        error.to_string().contains("no-such-label")
            && error.hint().is_some_and(|h| h.contains("create the label")),
        "the message names the label and the hint says to create it: {error}"
    );
    assert!(
        standin.pull_requests("org/fleet").is_empty(),
        "no pull request is opened without its labels"
    );
}

#[test]
fn gitlab_sends_a_subgroup_project_path_as_one_encoded_segment() {
    let (standin, target) = setup(ProviderKind::Gitlab, TOKEN);
    ensure(&target, &request("t", "b", &["upkeep"]));
    let paths: Vec<String> = standin.requests().into_iter().map(|r| r.path).collect();
    assert!(
        !paths.is_empty()
            && paths
                .iter()
                .all(|p| p.starts_with("/api/v4/projects/platform%2Fapps%2Ffleet/merge_requests")),
        "GitLab addresses a project by its URL-encoded full path: {paths:?}"
    );
}

#[test]
fn gitea_pages_through_open_pull_requests() {
    let (standin, target) = setup(ProviderKind::Gitea, TOKEN);
    let first = ensure(&target, &request("ours", "b", &[]));
    // Newer pull requests are listed first, so ours ends up on the second page of 50.
    for i in 0..60 {
        standin
            .seed_pull_request("org/fleet", &format!("feature/{i}"), "main", "theirs")
            .expect("repository exists");
    }
    let second = ensure(&target, &request("ours, updated", "b", &[]));
    assert_eq!(
        (second.number, second.created),
        (first.number, false),
        "the open pull request is found past the first page"
    );
    assert!(
        standin
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path.contains("page=2")),
        "a second page was asked for"
    );
    assert_eq!(standin.pull_requests("org/fleet").len(), 61, "no duplicate");
}

#[test]
fn the_token_is_redacted_in_debug_output() {
    let (_standin, target) = setup(ProviderKind::Github, TOKEN);
    let shown = format!("{target:?} {:?}", target.token);
    assert!(
        !shown.contains(TOKEN) && shown.contains("<redacted>"),
        "Debug of the target and the token hides the secret: {shown}"
    );
}

#[test]
fn api_bases_are_derived_from_git_remotes() {
    /// (provider, remote, (API base, repository) or an InvalidUrl error, reason)
    type Case = (
        ProviderKind,
        &'static str,
        Result<(&'static str, &'static str), ()>,
        &'static str,
    );
    let cases: &[Case] = &[
        (
            ProviderKind::Github,
            "https://github.com/org/fleet.git",
            Ok(("https://api.github.com/", "org/fleet")),
            "github.com has its API on another host",
        ),
        (
            ProviderKind::Github,
            "https://github.com/org/fleet",
            Ok(("https://api.github.com/", "org/fleet")),
            "a remote without .git works the same",
        ),
        (
            ProviderKind::Github,
            "git@github.com:org/fleet.git",
            Ok(("https://api.github.com/", "org/fleet")),
            "scp-like SSH remotes are the common clone form",
        ),
        (
            ProviderKind::Github,
            "https://ghe.corp.example/org/fleet.git",
            Ok(("https://ghe.corp.example/api/v3", "org/fleet")),
            "GitHub Enterprise serves its API under /api/v3 on the same host",
        ),
        (
            ProviderKind::Github,
            "ssh://git@ghe.corp.example:2222/org/fleet.git",
            Ok(("https://ghe.corp.example/api/v3", "org/fleet")),
            "the SSH port says nothing about the HTTPS port",
        ),
        (
            ProviderKind::Github,
            "https://github.com/org/sub/fleet.git",
            Err(()),
            "GitHub has no subgroups: three segments are a mistake",
        ),
        (
            ProviderKind::Gitlab,
            "https://gitlab.example/platform/apps/fleet.git",
            Ok(("https://gitlab.example/api/v4", "platform/apps/fleet")),
            "GitLab keeps the full path with subgroups",
        ),
        (
            ProviderKind::Gitlab,
            "git@gitlab.example:platform/fleet.git",
            Ok(("https://gitlab.example/api/v4", "platform/fleet")),
            "scp-like becomes https on the same host",
        ),
        (
            ProviderKind::Gitlab,
            "https://gitlab.example:8443/g/fleet.git/",
            Ok(("https://gitlab.example:8443/api/v4", "g/fleet")),
            "an HTTPS port is kept and a trailing slash ignored",
        ),
        (
            ProviderKind::Gitlab,
            "https://gitlab.example/fleet.git",
            Err(()),
            "a GitLab project always has a namespace",
        ),
        (
            ProviderKind::Gitea,
            "https://gitea.example/org/fleet.git",
            Ok(("https://gitea.example/api/v1", "org/fleet")),
            "Gitea's API is /api/v1",
        ),
        (
            ProviderKind::Gitea,
            "http://gitea.local:3000/org/fleet.git",
            Ok(("http://gitea.local:3000/api/v1", "org/fleet")),
            "a plain-http remote keeps its scheme and port (a lab instance)",
        ),
        (
            ProviderKind::Gitea,
            "https://example.com/git/org/fleet.git",
            Ok(("https://example.com/git/api/v1", "org/fleet")),
            "Gitea served under a sub-path: the API lives under it",
        ),
        (
            ProviderKind::Gitea,
            "ssh://git@gitea.example/org/fleet.git",
            Ok(("https://gitea.example/api/v1", "org/fleet")),
            "ssh:// becomes https on the same host",
        ),
        (
            ProviderKind::Gitea,
            "ftp://gitea.example/org/fleet.git",
            Err(()),
            "an unsupported scheme is refused, not guessed",
        ),
        (
            ProviderKind::Github,
            "not a url",
            Err(()),
            "neither a URL nor host:path",
        ),
        (
            ProviderKind::Github,
            "https://github.com/org//fleet.git",
            Err(()),
            "empty segments are refused",
        ),
        (
            ProviderKind::Gitea,
            "file:///srv/git/fleet.git",
            Err(()),
            "a local remote has no API",
        ),
    ];
    for (kind, remote, want, reason) in cases {
        let got = api_base_for(*kind, remote);
        match (want, &got) {
            (Ok((base, repo)), Ok((got_base, got_repo))) => {
                assert_eq!(
                    (got_base.as_str(), got_repo.as_str()),
                    (*base, *repo),
                    "{kind} {remote}: {reason}"
                );
            }
            (Err(()), Err(e)) => {
                assert!(
                    matches!(e, PrError::InvalidUrl { .. }) && e.to_string().contains(remote),
                    "{kind} {remote}: {reason}: the error names the URL: {e}"
                );
            }
            _ => panic!("{kind} {remote}: {reason}: got {got:?}"),
        }
    }
}

#[test]
fn an_api_error_never_shows_a_password_from_the_remote() {
    let error = api_base_for(
        ProviderKind::Github,
        "https://me:hunter2@github.com/only-one",
    )
    .expect_err("one segment is not a GitHub repository");
    let shown = format!("{error} {error:?}");
    assert!(
        !shown.contains("hunter2") && shown.contains("github.com/only-one"),
        "a remote with a password is named with the password redacted: {shown}"
    );
}

#[tokio::test]
async fn calling_from_inside_an_async_runtime_is_an_error_not_a_panic() {
    let (_standin, target) = setup(ProviderKind::Github, TOKEN);
    let error = expect_error(&target, &request("t", "b", &[]));
    assert!(
        matches!(error, PrError::Client { .. }) && error.to_string().contains("spawn_blocking"),
        "a blocking call inside a runtime would panic in Tokio; it is refused with a fix: {error}"
    );
}
