//! `StaticServer` against the real Debian nginx it starts: files are served as they are on
//! disk, missing files and directory listings are refused, basic auth is enforced by nginx's
//! own htpasswd check, the access log reflects what was served (without readiness probes),
//! bad file paths are errors, and dropping the server really stops nginx.

// Table rows are tuples of (input, expected, reason); naming each tuple type adds nothing.
#![allow(clippy::type_complexity)]

use std::time::Duration;

use upkeep_testenv::{StaticServer, TestEnvError};

fn client() -> reqwest::Client {
    upkeep_testenv::http_client(None, Duration::from_secs(10)).unwrap()
}

async fn start(files: &[(&str, &[u8])], auth: Option<(&str, &str)>) -> StaticServer {
    StaticServer::with_files(files, auth)
        .await
        .unwrap_or_else(|e| panic!("starting nginx: {e}"))
}

#[tokio::test]
async fn serves_files_refuses_the_rest_and_logs_requests() {
    let server = start(
        &[
            ("charts/index.yaml", b"apiVersion: v1\n"),
            ("top.txt", b"top"),
        ],
        None,
    )
    .await;
    let cases: &[(&str, u16, Option<&str>, &str)] = &[
        (
            "/charts/index.yaml",
            200,
            Some("apiVersion: v1\n"),
            "a file in a subdirectory",
        ),
        ("/top.txt", 200, Some("top"), "a file at the root"),
        ("/charts/missing.yaml", 404, None, "a missing file"),
        ("/elsewhere/index.yaml", 404, None, "a missing directory"),
        ("/charts/", 403, None, "no directory listings"),
    ];
    for (path, status, body, why) in cases {
        let response = client()
            .get(format!("{}{path}", server.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), *status, "{path}: {why}");
        if let Some(body) = body {
            assert_eq!(response.text().await.unwrap(), *body, "{path}: {why}");
        }
    }
    let seen: Vec<(u16, String)> = server
        .wait_for_requests(cases.len())
        .await
        .into_iter()
        .map(|r| (r.status, r.path))
        .collect();
    let want: Vec<(u16, String)> = cases
        .iter()
        .map(|(path, status, _, _)| (*status, (*path).to_owned()))
        .collect();
    assert_eq!(seen, want, "the access log has every request and no probe");

    // Served as on disk: a change shows up on the next request.
    std::fs::write(server.root().join("top.txt"), "changed").unwrap();
    let body = client()
        .get(format!("{}/top.txt", server.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "changed");
    assert_eq!(
        server.host(),
        server.base_url().trim_start_matches("http://")
    );
}

#[tokio::test]
async fn basic_auth_is_enforced_by_nginx() {
    let server = start(&[("index.yaml", b"x")], Some(("chartuser", "s3cret"))).await;
    assert_eq!(
        server.credentials(),
        Some(("chartuser".to_owned(), "s3cret".to_owned()))
    );
    let url = format!("{}/index.yaml", server.base_url());
    let cases: &[(Option<(&str, &str)>, u16, &str)] = &[
        (None, 401, "anonymous gets the challenge"),
        (
            Some(("chartuser", "wrong")),
            401,
            "a wrong password is refused",
        ),
        (
            Some(("someone", "s3cret")),
            401,
            "an unknown user is refused",
        ),
        (
            Some(("chartuser", "s3cret")),
            200,
            "the right credentials pass",
        ),
    ];
    for (credentials, status, why) in cases {
        let mut request = client().get(&url);
        if let Some((user, password)) = credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), *status, "{why}");
        if *status == 401 {
            let challenge = response
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            assert_eq!(challenge, "Basic realm=\"upkeep-testenv\"", "{why}");
        }
    }
    assert!(
        server.log_tail().contains("password mismatch"),
        "nginx logs why it refused: {}",
        server.log_tail()
    );
}

#[tokio::test]
async fn bad_paths_and_roots_are_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "../escape.txt",
            "`..` would write outside the served directory",
        ),
        ("/etc/absolute.txt", "absolute paths are refused"),
        ("", "an empty path names no file"),
    ];
    for (path, why) in cases {
        let err = StaticServer::with_files(&[(path, b"x")], None)
            .await
            .expect_err(why);
        assert!(
            matches!(err, TestEnvError::Invalid { .. }),
            "{why}: {err:?}"
        );
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    let err = StaticServer::start(file.path(), None)
        .await
        .expect_err("a file is not a directory");
    assert!(matches!(err, TestEnvError::Invalid { .. }), "{err:?}");
    let err = StaticServer::with_files(&[("a", b"x")], Some(("user:x", "p")))
        .await
        .expect_err("a colon cannot be in an htpasswd user name");
    assert!(matches!(err, TestEnvError::Invalid { .. }), "{err:?}");
}

#[tokio::test]
async fn serving_a_caller_directory_and_stopping_on_drop() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.txt"), "a").unwrap();
    let server = StaticServer::start(root.path(), None)
        .await
        .unwrap_or_else(|e| panic!("starting nginx: {e}"));
    let url = format!("{}/a.txt", server.base_url());
    assert_eq!(
        client()
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "a"
    );
    drop(server);
    assert!(
        client().get(&url).send().await.is_err(),
        "nothing answers once the server is dropped"
    );
    assert!(
        root.path().join("a.txt").exists(),
        "the caller's directory is left alone"
    );
}
