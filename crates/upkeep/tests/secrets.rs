//! No secret anywhere: a unique secret is planted in every place a user (or a server) can put
//! one, the real `upkeep` binary runs every command over it, and every byte it printed, every
//! file it wrote under its state and cache directories, every directory name it made and the
//! store file are searched for each secret.
//!
//! The places: the userinfo of ChartSource URLs (OCI, Helm, and one that manifest validation
//! refuses, quoted with its source line) and of the `versions` argument,
//! `?token=` / `access_token=` / `password=` / `sig=` query parameters of Helm repository
//! URLs, the `auth` of a Docker `config.json`, a Git remote URL with a password (as `run
//! --repo` and as a checkout's `origin`), a `?token=` in a Git URL, `UPKEEP_GIT_PASSWORD`,
//! `UPKEEP_PR_TOKEN`, and two servers that echo the credentials they were sent in their error
//! bodies: a real registry (Debian's distribution, htpasswd auth) behind upkeep-testenv's proxy,
//! which quotes the `Authorization` header when it refuses a tag listing, and the testenv's
//! GitLab-flavoured pull-request stand-in (there is no real forge here), which quotes the
//! `PRIVATE-TOKEN` header. Git is real (`git http-backend` behind nginx with basic auth), and so
//! is the Helm repository (nginx serving an `index.yaml`).
//!
//! Each secret also has a piece of evidence: a string that shows the place where it was
//! planted reached the output in redacted form, so the test cannot pass because a command
//! stopped before it got there.

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{bare_git, base64, borrowed, examples, fleet_files, git_import, runtime, write_tree};
use upkeep_testenv::{
    Fault, FaultProxy, ForgeFlavor, GitServer, InjectedFailure, PrStandIn, Registry, RegistryKind,
    StaticServer, TEST_USER, git,
};

const AT: &str = "2026-11-21T10:00:00Z";
const GIT_USER: &str = "upkeep-bot";

// One unique value per place; none is a substring of another or of anything upkeep prints.
const SOURCE_URL_PW: &str = "zq1-oci-userinfo-pw";
const HELM_URL_PW: &str = "zq2-helm-userinfo-pw";
const ARG_URL_PW: &str = "zq3-versions-arg-pw";
const HELM_TOKEN: &str = "zq4-helm-query-token";
const HELM_ACCESS_TOKEN: &str = "zq5-helm-access-token";
const HELM_PASSWORD: &str = "zq6-helm-query-password";
const HELM_SIG: &str = "zq7-helm-query-sig";
const DOCKER_PW: &str = "zq8-docker-config-pw";
const GIT_URL_PW: &str = "zq9-git-remote-url-pw";
const GIT_URL_TOKEN: &str = "zqa-git-url-query-token";
const GIT_PW: &str = "zqb-upkeep-git-password";
const PR_TOKEN: &str = "zqc-upkeep-pr-token";
const INVALID_URL_PW: &str = "zqd-invalid-url-pw";

/// Everything upkeep showed or left behind, labelled by where it came from.
#[derive(Default)]
struct Transcript {
    parts: Vec<(String, Vec<u8>)>,
}

impl Transcript {
    fn add(&mut self, label: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.parts.push((label.into(), bytes.into()));
    }

    /// Runs `upkeep args` with `env` (plus the scratch state and cache directories) and keeps
    /// its stdout and stderr.
    fn run(&mut self, dirs: &Dirs, args: &[&str], env: &[(&str, &str)]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(args)
            .env_remove("UPKEEP_STORE")
            .env_remove("UPKEEP_GIT_USERNAME")
            .env_remove("UPKEEP_GIT_PASSWORD")
            .env_remove("UPKEEP_PR_TOKEN")
            .env_remove("GITLAB_TOKEN")
            .env("XDG_STATE_HOME", &dirs.state)
            .env("XDG_CACHE_HOME", &dirs.cache)
            .envs(env.iter().copied())
            .output()
            .expect("the upkeep binary runs");
        let label = format!("upkeep {}", args.join(" "));
        self.add(format!("{label} (stdout)"), out.stdout.clone());
        self.add(format!("{label} (stderr)"), out.stderr.clone());
        out
    }

    /// Every file under `dir` (contents and name) and every directory name.
    fn add_tree(&mut self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            self.add(
                format!("the name of {}", path.display()),
                path.display().to_string(),
            );
            if path.is_dir() && !path.is_symlink() {
                self.add_tree(&path);
            } else if path.is_file() {
                let bytes = std::fs::read(&path).expect("read");
                self.add(format!("the file {}", path.display()), bytes);
            }
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for (label, bytes) in &self.parts {
            let _ = writeln!(out, "== {label}\n{}", String::from_utf8_lossy(bytes));
        }
        out
    }

    /// Where `secret` appears, if anywhere.
    fn find(&self, secret: &str) -> Vec<String> {
        self.parts
            .iter()
            .filter(|(_, bytes)| bytes.windows(secret.len()).any(|w| w == secret.as_bytes()))
            .map(|(label, bytes)| {
                let text = String::from_utf8_lossy(bytes);
                let at = text.find(secret).unwrap_or(0);
                let around: String = text
                    .char_indices()
                    .filter(|(i, _)| i + 120 >= at && *i <= at + secret.len() + 120)
                    .map(|(_, c)| c)
                    .collect();
                format!("{label}: …{around}…")
            })
            .collect()
    }
}

/// The scratch directories upkeep may write to by default.
struct Dirs {
    state: PathBuf,
    cache: PathBuf,
}

/// The quickstart fleet as (path, contents), with `extra` appended to `upkeep/sources.yaml` and
/// `automation` applied to `upkeep/automation.yaml`.
fn fleet(extra_sources: &str, automation: impl Fn(String) -> String) -> Vec<(String, Vec<u8>)> {
    fleet_files(|p, t| match p {
        "upkeep/sources.yaml" => format!("{t}{extra_sources}"),
        "upkeep/automation.yaml" => automation(t),
        _ => t,
    })
}

const HELM_INDEX: &str = "apiVersion: v1
entries:
  podinfo:
  - name: podinfo
    version: 6.5.4
    created: \"2026-01-01T00:00:00Z\"
    urls: [podinfo-6.5.4.tgz]
  - name: podinfo
    version: 6.6.0
    created: \"2026-02-01T00:00:00Z\"
    urls: [podinfo-6.6.0.tgz]
";

#[test]
#[allow(clippy::too_many_lines)]
fn no_planted_secret_reaches_any_output_the_store_or_a_file_name() {
    let rt = runtime();
    // A real registry with basic auth, behind the proxy that echoes the Authorization header.
    let registry = rt
        .block_on(Registry::start(RegistryKind::Htpasswd))
        .expect("registry");
    let echo = FaultProxy::for_registry(&registry, Fault::EchoAuthorization);
    // A real Helm repository (nginx), which ignores the query string.
    let helm = rt
        .block_on(StaticServer::with_files(
            &[("charts/index.yaml", HELM_INDEX.as_bytes())],
            None,
        ))
        .expect("nginx");
    let git_server = rt
        .block_on(GitServer::start(Some((GIT_USER, GIT_PW))))
        .expect("git server");
    let forge = PrStandIn::start(ForgeFlavor::Gitlab, PR_TOKEN).expect("stand-in");
    forge.create_repository("git/fleet");

    let tmp = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(
        std::fs::canonicalize(examples().join("charts")).expect("charts"),
        tmp.path().join("charts"),
    )
    .expect("link charts");
    let dirs = Dirs {
        state: tmp.path().join("state"),
        cache: tmp.path().join("cache"),
    };
    let store = tmp.path().join("secrets.redb");
    let store = store.to_str().expect("utf-8");
    let docker_config = tmp.path().join("config.json");
    let docker_auth = base64(format!("{TEST_USER}:{DOCKER_PW}").as_bytes());
    std::fs::write(
        &docker_config,
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{docker_auth}"}}}}}}"#,
            echo.host()
        ),
    )
    .expect("config.json");
    let docker_config = docker_config.to_str().expect("utf-8");
    let helm_host = helm.host();
    let git_url = git_server.url("fleet");
    let git_url_with_password =
        git_url.replacen("http://", &format!("http://{GIT_USER}:{GIT_URL_PW}@"), 1);

    // ---- A hostile fleet: every bad source, in a checkout whose origin has a password. ----
    let hostile_sources = format!(
        "---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: oci-userinfo, namespace: flux-system}}
spec:
  url: oci://{TEST_USER}:{SOURCE_URL_PW}@{echo_host}/charts/podinfo
  insecure: true
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: helm-userinfo, namespace: flux-system}}
spec:
  url: http://{TEST_USER}:{HELM_URL_PW}@{helm_host}/charts
  chart: podinfo
  insecure: true
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: echoing-registry, namespace: flux-system}}
spec:
  url: oci://{echo_host}/charts/podinfo
  insecure: true
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: helm-missing, namespace: flux-system}}
spec:
  url: http://{helm_host}/missing?password={HELM_PASSWORD}&sig={HELM_SIG}
  chart: podinfo
  insecure: true
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: helm-token, namespace: flux-system}}
spec:
  url: http://{helm_host}/charts?token={HELM_TOKEN}&access_token={HELM_ACCESS_TOKEN}
  chart: podinfo
  insecure: true
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {{name: echoing, namespace: flux-system}}
spec:
  sourceRef: {{name: echoing-registry}}
  policy: {{semver: {{range: \">=6.0.0\"}}}}
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {{name: helm-token, namespace: flux-system}}
spec:
  sourceRef: {{name: helm-token}}
  policy: {{semver: {{range: \">=6.0.0\"}}}}
",
        echo_host = echo.host(),
    );
    let hostile = tmp.path().join("hostile");
    write_tree(&hostile, &fleet(&hostile_sources, |t| t));
    let git_in = |dir: &Path, args: &[&str]| git(args, Some(dir)).expect("git");
    git_import(&hostile);
    git_in(
        &hostile,
        &["remote", "add", "origin", &git_url_with_password],
    );
    let hostile = hostile.to_str().expect("utf-8");

    // A source whose URL the manifest validation refuses: the message and the quoted line.
    let invalid = tmp.path().join("invalid");
    write_tree(
        &invalid,
        &fleet(
            &format!(
                "---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: ftp, namespace: flux-system}}
spec:
  url: ftp://{TEST_USER}:{INVALID_URL_PW}@{helm_host}/charts
"
            ),
            |t| t,
        ),
    );
    let invalid = invalid.to_str().expect("utf-8");

    let mut t = Transcript::default();
    t.run(&dirs, &["validate", invalid], &[]);
    t.run(&dirs, &["scan", "--dir", invalid, "--output", "json"], &[]);
    t.run(&dirs, &["plan", "--repo", invalid, "--at", AT], &[]);
    let git_env = [
        ("UPKEEP_GIT_USERNAME", GIT_USER),
        ("UPKEEP_GIT_PASSWORD", GIT_PW),
        ("UPKEEP_PR_TOKEN", PR_TOKEN),
    ];
    for output in [&[][..], &["--output", "json"][..]] {
        let versions = [
            vec![
                "versions".to_owned(),
                format!(
                    "oci://{TEST_USER}:{ARG_URL_PW}@{}/charts/podinfo",
                    echo.host()
                ),
            ],
            vec![
                "versions".to_owned(),
                format!("oci://{}/charts/podinfo", echo.host()),
                "--insecure".to_owned(),
                "--docker-config".to_owned(),
                docker_config.to_owned(),
            ],
            vec![
                "versions".to_owned(),
                format!("http://{helm_host}/charts?token={HELM_TOKEN}"),
                "--chart".to_owned(),
                "podinfo".to_owned(),
                "--insecure".to_owned(),
            ],
            vec![
                "versions".to_owned(),
                format!("http://{helm_host}/missing?password={HELM_PASSWORD}&sig={HELM_SIG}"),
                "--chart".to_owned(),
                "podinfo".to_owned(),
                "--insecure".to_owned(),
            ],
        ];
        for args in versions {
            let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
            args.extend_from_slice(output);
            t.run(&dirs, &args, &[]);
        }
        let mut scan = vec!["scan", "--dir", hostile, "--docker-config", docker_config];
        scan.extend_from_slice(output);
        t.run(&dirs, &scan, &[]);
        let mut plan = vec![
            "plan",
            "--repo",
            hostile,
            "--at",
            AT,
            "--docker-config",
            docker_config,
        ];
        plan.extend_from_slice(output);
        t.run(&dirs, &plan, &[]);
    }
    let common = [
        "--repo",
        hostile,
        "--at",
        AT,
        "--store",
        store,
        "--docker-config",
        docker_config,
        "--allow-insecure-http",
    ];
    for extra in [&[][..], &["--push", "--pull-request"][..]] {
        let mut apply = vec!["apply"];
        apply.extend_from_slice(&common);
        apply.extend_from_slice(extra);
        t.run(&dirs, &apply, &git_env);
    }
    let mut run = vec!["run", "--once"];
    run.extend_from_slice(&common);
    t.run(&dirs, &run, &git_env);

    // ---- A good fleet on the Git server: a pass that pushes, records, and meets an echo. ----
    let good_sources = format!(
        "---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: helm-token, namespace: flux-system}}
spec:
  url: http://{helm_host}/charts?token={HELM_TOKEN}&access_token={HELM_ACCESS_TOKEN}
  chart: podinfo
  insecure: true
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {{name: helm-token, namespace: flux-system}}
spec:
  sourceRef: {{name: helm-token}}
  policy: {{semver: {{range: \">=6.0.0\"}}}}
"
    );
    let api = forge.api_base();
    let good = fleet(&good_sources, |t| {
        t.replacen(
            "  scheduleRef:\n    name: dev-anytime\n  commit:\n    author:\n      name: upkeep\n      email: upkeep@example.com\n",
            &format!("  scheduleRef:\n    name: dev-anytime\n  commit:\n    author:\n      name: upkeep\n      email: upkeep@example.com\n  push:\n    branch: upkeep/dev-apps\n    pullRequest:\n      provider: gitlab\n      apiUrl: {api}\n"),
            1,
        )
    });
    assert_eq!(
        git_server
            .create_repo("fleet", &borrowed(&good))
            .expect("repo"),
        git_url
    );
    let workdir = tmp.path().join("fleet");
    let workdir = workdir.to_str().expect("utf-8");
    forge.fail_next(InjectedFailure::EchoCredentials);
    t.run(
        &dirs,
        &[
            "run",
            "--once",
            "--repo",
            &git_url,
            "--workdir",
            workdir,
            "--at",
            AT,
            "--store",
            store,
            "--allow-insecure-http",
        ],
        &git_env,
    );
    let bare = git_server.bare_path("fleet");
    let branches = bare_git(&bare, &["branch", "--list"]);
    assert!(
        branches.contains("upkeep/dev-apps"),
        "the pass with UPKEEP_GIT_PASSWORD pushed its branch ({branches}):\n{}",
        t.text()
    );
    // A checkout cloned with the password in the URL, as people do: its origin keeps it.
    let checkout = tmp.path().join("checkout");
    let checkout = checkout.to_str().expect("utf-8");
    git(
        &[
            "clone",
            "-q",
            &git_url_with_password.replace(GIT_URL_PW, GIT_PW),
            checkout,
        ],
        None,
    )
    .expect("clone");
    git(
        &["remote", "set-url", "origin", &git_url_with_password],
        Some(Path::new(checkout)),
    )
    .expect("set-url");
    let mut push = vec![
        "apply",
        "--repo",
        checkout,
        "--at",
        AT,
        "--store",
        store,
        "--allow-insecure-http",
        "--push",
        "--pull-request",
    ];
    t.run(&dirs, &push, &git_env);
    push.truncate(push.len() - 2);
    push.extend_from_slice(&["--output", "json"]);
    push[0] = "plan";
    push.retain(|a| *a != "--allow-insecure-http" && *a != "--store" && *a != store);
    t.run(&dirs, &push, &git_env);
    t.run(
        &dirs,
        &[
            "run",
            "--once",
            "--repo",
            checkout,
            "--at",
            AT,
            "--store",
            store,
            "--allow-insecure-http",
        ],
        &git_env,
    );
    for repo in [
        git_url_with_password.clone(),
        format!("{git_url}?token={GIT_URL_TOKEN}"),
    ] {
        // No --workdir: the clone's directory is named after the URL (under XDG_CACHE_HOME).
        t.run(
            &dirs,
            &[
                "run",
                "--once",
                "--repo",
                &repo,
                "--at",
                AT,
                "--store",
                store,
                "--allow-insecure-http",
            ],
            &git_env,
        );
    }
    for args in [
        &["history", "--store", store][..],
        &["history", "--store", store, "--output", "json"][..],
        &[
            "history",
            "--store",
            store,
            "--repo",
            &git_url_with_password,
        ][..],
    ] {
        t.run(&dirs, args, &[]);
    }
    t.add("the store file", std::fs::read(store).expect("store"));
    t.add_tree(&dirs.state);
    t.add_tree(&dirs.cache);

    // (secret, what it is, evidence that its place reached the output redacted)
    let basic = base64(format!("{TEST_USER}:{DOCKER_PW}").as_bytes());
    let checks: [(&str, &str, &str); 14] = [
        (
            INVALID_URL_PW,
            "a URL the manifest validation refuses (message and quoted line)",
            "url: ftp://upkeep-test:<redacted>@",
        ),
        (
            SOURCE_URL_PW,
            "a ChartSource URL's userinfo",
            "oci://<redacted>@",
        ),
        (HELM_URL_PW, "a Helm URL's userinfo", "http://<redacted>@"),
        (
            ARG_URL_PW,
            "the userinfo of `versions`' argument",
            "credentials in the URL are refused",
        ),
        (HELM_TOKEN, "a ?token= parameter", "?token=<redacted>"),
        (
            HELM_ACCESS_TOKEN,
            "an access_token= parameter",
            "&access_token=<redacted>",
        ),
        (
            HELM_PASSWORD,
            "a password= parameter",
            "?password=<redacted>",
        ),
        (HELM_SIG, "a sig= parameter", "&sig=<redacted>"),
        (
            DOCKER_PW,
            "a Docker config.json password, echoed by the registry",
            "Authorization: Basic <redacted>",
        ),
        (
            &basic,
            "the same, as the Authorization header carries it",
            "Authorization: Basic <redacted>",
        ),
        (
            GIT_URL_PW,
            "a Git remote URL's password",
            "upkeep-bot:<redacted>@",
        ),
        (
            GIT_URL_TOKEN,
            "a Git URL's ?token=",
            "fleet.git?token=<redacted>",
        ),
        (
            GIT_PW,
            "UPKEEP_GIT_PASSWORD (the pass pushed with it, checked above)",
            "org-acme/dev-apps",
        ),
        (
            PR_TOKEN,
            "UPKEEP_PR_TOKEN, echoed by the forge",
            "private-token: <redacted>",
        ),
    ];
    let all = t.text();
    let mut failures = Vec::new();
    for (secret, place, evidence) in checks {
        for found in t.find(secret) {
            failures.push(format!("LEAK: {place} (`{secret}`) in {found}"));
        }
        if !all.contains(evidence) {
            failures.push(format!(
                "NOT EXERCISED: {place}: no output shows `{evidence}`"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nthe whole transcript:\n{all}",
        failures.join("\n")
    );
}
