//! The container image `scripts/image` builds, end to end: built twice from the same commit
//! and binary it has one digest; Debian's `skopeo` publishes it to the real test registry
//! (distribution 2.8, basic auth) and pulls it back; its unpacked filesystem runs
//! `upkeep --version`, `upkeep crds` and `upkeep controller` as uid 65532 in a chroot holding
//! nothing else, against the real kube-apiserver 1.20.2 with exactly the RBAC of
//! `deploy/rbac.yaml`; `deploy/` pins the image by digest, and upkeep's own `plan` moves that
//! pin to a newer release.
//!
//! Why it is shaped this way:
//! - The image is built from the binary this test run built (`CARGO_BIN_EXE_upkeep`): it links
//!   the same shared libraries as the release binary, and building a release binary here would
//!   double the test's build. `scripts/image` takes any binary (`--binary`).
//! - The controller runs as a pod would: the ServiceAccount's own token (a TokenRequest, as the
//!   kubelet gets one), `ca.crt` and `namespace` at `/var/run/secrets/kubernetes.io/serviceaccount`
//!   in the image's filesystem, `KUBERNETES_SERVICE_HOST`/`_PORT` and the downward-API variables
//!   in its environment, and the Deployment's own `args`. It is bound only by the shipped
//!   ClusterRoleBinding and RoleBinding (no copies, no extra grants), and a request the RBAC
//!   does not allow is shown to be refused for that same token.
//! - `chroot --userspec` needs root (CAP_SYS_CHROOT, CAP_SETUID), which CI has (root in a
//!   container). Without it the test fails with a message saying so, never skips: an image
//!   that cannot start is exactly what this test is for. The chroot has no /proc or /dev, so
//!   the binary is shown to need neither.
//! - Shared between the tests of this file: one build (a `OnceLock`); each test starts its own
//!   servers.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use upkeep_testenv::{KubeApiServer, Registry, RegistryKind};

const NONROOT: &str = "65532";
const TAG: &str = "0.1.0";
const NEWER_TAG: &str = "0.1.1";
const NAMESPACE: &str = "upkeep-system";
const SERVICE_ACCOUNT: &str = "upkeep-controller";
const POD_NAME: &str = "upkeep-controller-image-test";
/// Start-up deadlines on a busy machine (never asserted as durations; only to end a hang).
const DEADLINE: Duration = Duration::from_secs(90);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Runs a command to completion; a program that is not installed is named with its package.
fn run(cmd: &mut Command, package: &str) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.output().unwrap_or_else(|e| {
        panic!("`{program}` cannot run ({e}); hint: install the Debian package `{package}` (scripts/test does)")
    })
}

#[track_caller]
fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn git(args: &[&str]) -> String {
    ok(
        &run(
            Command::new("git").arg("-C").arg(repo_root()).args(args),
            "git",
        ),
        "git",
    )
    .trim()
    .to_owned()
}

/// `scripts/image --binary <this run's upkeep> --out <out> --tag <tag>`; the digest it prints.
fn build_image(out: &Path, tag: &str) -> String {
    let output = run(
        Command::new(repo_root().join("scripts/image"))
            .args(["--binary", env!("CARGO_BIN_EXE_upkeep"), "--out", s(out)])
            .args(["--tag", tag])
            .env_remove("SOURCE_DATE_EPOCH"),
        "python3",
    );
    let digest = ok(&output, "scripts/image builds the image")
        .trim()
        .to_owned();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "scripts/image prints the manifest digest on stdout, got {digest:?}"
    );
    digest
}

struct Built {
    _dir: tempfile::TempDir,
    layout: PathBuf,
    digest: String,
}

/// The image, built once for every test of this file.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = dir.path().join("first");
        let digest = build_image(&layout, TAG);
        Built {
            _dir: dir,
            layout,
            digest,
        }
    })
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    layout.join("blobs/sha256").join(hex)
}

/// The (manifest, config) of the only image of an OCI layout.
fn manifest_and_config(layout: &Path) -> (String, Value, Value) {
    let index = read_json(&layout.join("index.json"));
    let manifests = index["manifests"].as_array().expect("index.json manifests");
    assert_eq!(manifests.len(), 1, "one image in {}", layout.display());
    let digest = manifests[0]["digest"].as_str().expect("digest").to_owned();
    let manifest = read_json(&blob(layout, &digest));
    let config = read_json(&blob(
        layout,
        manifest["config"]["digest"]
            .as_str()
            .expect("config digest"),
    ));
    (digest, manifest, config)
}

/// Fails with a clear message when this process cannot chroot as another user.
fn require_root() {
    let uid = std::fs::metadata("/proc/self").expect("/proc/self").uid();
    assert_eq!(
        uid, 0,
        "the image test runs the image's filesystem with `chroot --userspec={NONROOT}:{NONROOT}`, \
         which needs root (CAP_SYS_CHROOT and CAP_SETUID); this process runs as uid {uid}\n\
         hint: run scripts/test as root (CI runs it as root in a container)"
    );
}

#[test]
fn two_builds_of_one_commit_give_one_digest() {
    let first = built();
    let dir = tempfile::tempdir().expect("tempdir");
    let second = dir.path().join("second");
    let digest = build_image(&second, TAG);
    assert_eq!(
        digest, first.digest,
        "the same commit and binary build the same image"
    );
    let tree = |root: &Path| upkeep_testenv::read_tree(root);
    assert!(
        tree(&first.layout) == tree(&second),
        "the two layouts are byte for byte the same"
    );

    let (index_digest, manifest, config) = manifest_and_config(&second);
    assert_eq!(index_digest, digest, "index.json names the printed digest");
    let index = read_json(&second.join("index.json"));
    assert_eq!(
        index["manifests"][0]["platform"],
        json!({"architecture": "amd64", "os": "linux"})
    );
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        TAG
    );
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["config"]["User"], format!("{NONROOT}:{NONROOT}"));
    assert_eq!(
        config["config"]["Entrypoint"],
        json!(["/usr/local/bin/upkeep"]),
        "the entrypoint is the upkeep binary"
    );

    // Annotations: from the commit, never from the clock.
    let seconds: i64 = git(&["log", "-1", "--format=%ct", "HEAD"])
        .parse()
        .expect("commit time");
    let created = jiff::Timestamp::from_second(seconds)
        .expect("a time")
        .to_string();
    let annotations = &manifest["annotations"];
    assert_eq!(
        annotations["org.opencontainers.image.created"],
        created.as_str()
    );
    assert_eq!(
        config["created"],
        created.as_str(),
        "config.created is the commit time"
    );
    assert_eq!(
        annotations["org.opencontainers.image.revision"],
        git(&["rev-parse", "HEAD"]).as_str()
    );
    assert_eq!(
        annotations["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        annotations["org.opencontainers.image.source"]
            .as_str()
            .is_some_and(|s| s.starts_with("https://")),
        "the source is the repository URL: {annotations}"
    );
    assert_eq!(
        config["config"]["Labels"], *annotations,
        "labels = annotations"
    );

    // SOURCE_DATE_EPOCH, when set, is the time instead (reproducible-builds.org).
    let third = dir.path().join("third");
    let out = run(
        Command::new(repo_root().join("scripts/image"))
            .args(["--binary", env!("CARGO_BIN_EXE_upkeep"), "--out", s(&third)])
            .env("SOURCE_DATE_EPOCH", "1700000000"),
        "python3",
    );
    let other = ok(&out, "scripts/image with SOURCE_DATE_EPOCH");
    assert_ne!(other.trim(), digest, "another time is another image");
    let (_, manifest, _) = manifest_and_config(&third);
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
}

/// The registry, with the built image copied to `upkeep:<tag>` by skopeo.
async fn publish(tag: &str) -> (Registry, String) {
    let built = built();
    let registry = Registry::start(RegistryKind::Htpasswd)
        .await
        .expect("docker-registry");
    let (user, password) = registry.credentials().expect("htpasswd credentials");
    let dir = tempfile::tempdir().expect("tempdir");
    let digest_file = dir.path().join("digest");
    let out = run(
        Command::new("skopeo").args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds",
            &format!("{user}:{password}"),
            "--digestfile",
            s(&digest_file),
            &format!("oci:{}:{TAG}", s(&built.layout)),
            &format!("docker://{}/upkeep:{tag}", registry.host()),
        ]),
        "skopeo",
    );
    ok(&out, "skopeo copies the layout to the registry");
    let pushed = std::fs::read_to_string(&digest_file).expect("skopeo's digest file");
    assert_eq!(
        pushed.trim(),
        built.digest,
        "the registry stores the image under the digest scripts/image printed"
    );
    (registry, pushed.trim().to_owned())
}

/// The controller, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `probe` until it answers; on a hang, fails naming `what` with `context()` (a log).
async fn wait_for<T>(
    what: &str,
    context: impl Fn() -> String,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "gave up waiting: {what}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// coreutils' chroot, which lives in /usr/sbin (not on every PATH).
fn chroot_program() -> PathBuf {
    ["/usr/sbin/chroot", "/sbin/chroot", "/usr/bin/chroot"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("chroot"))
}

/// The command that runs the image's entrypoint in `rootfs` as 65532, with only `env`.
fn in_image(rootfs: &Path, config: &Value, args: &[&str], env: &[(String, String)]) -> Command {
    let entrypoint: Vec<&str> = config["config"]["Entrypoint"]
        .as_array()
        .expect("Entrypoint")
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect();
    let mut cmd = Command::new(chroot_program());
    cmd.arg(format!("--userspec={NONROOT}:{NONROOT}"))
        .arg(rootfs)
        .args(entrypoint)
        .args(args)
        .env_clear()
        .current_dir("/");
    for var in config["config"]["Env"].as_array().expect("Env") {
        let (k, v) = var.as_str().and_then(|v| v.split_once('=')).expect("K=V");
        cmd.env(k, v);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// The objects of a manifest file, as kubectl reads them.
fn file_objects(server: &KubeApiServer, path: &Path) -> Vec<Value> {
    let json = server
        .kubectl(&["create", "--dry-run=client", "-o", "json", "-f", s(path)])
        .unwrap_or_else(|e| panic!("kubectl parses {}: {e}", path.display()));
    let value: Value = serde_json::from_str(&json).expect("JSON");
    match value.get("items") {
        Some(Value::Array(items)) => items.clone(),
        _ => vec![value],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_published_image_runs_the_controller_as_65532_with_the_shipped_rbac() {
    require_root();
    let (registry, digest) = publish(TAG).await;
    let (user, password) = registry.credentials().expect("credentials");

    // Pull it back by digest, as a node would, and unpack its filesystem.
    let dir = tempfile::tempdir().expect("tempdir");
    let pulled = dir.path().join("pulled");
    let out = run(
        Command::new("skopeo").args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--src-creds",
            &format!("{user}:{password}"),
            &format!("docker://{}/upkeep@{digest}", registry.host()),
            &format!("oci:{}:pulled", s(&pulled)),
        ]),
        "skopeo",
    );
    ok(&out, "skopeo pulls the image by digest");
    let (pulled_digest, manifest, config) = manifest_and_config(&pulled);
    assert_eq!(pulled_digest, digest, "pulled by digest, the same manifest");
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).expect("rootfs");
    for layer in manifest["layers"].as_array().expect("layers") {
        let path = blob(&pulled, layer["digest"].as_str().expect("layer digest"));
        ok(
            &run(
                Command::new("tar").args(["-xzf", s(&path), "--numeric-owner", "-C", s(&rootfs)]),
                "tar",
            ),
            "tar unpacks the layer",
        );
    }
    let tmp = std::fs::metadata(rootfs.join("tmp")).expect("/tmp in the image");
    assert_eq!(tmp.mode() & 0o7777, 0o1777, "/tmp is writable by anyone");

    // upkeep --version, as 65532, in a filesystem holding only the image.
    let version = run(
        &mut in_image(&rootfs, &config, &["--version"], &[]),
        "coreutils",
    );
    assert_eq!(
        ok(&version, "upkeep --version runs in the image").trim(),
        format!("upkeep {}", env!("CARGO_PKG_VERSION"))
    );

    // upkeep crds from the image, applied to the real API server as the admin.
    let server = KubeApiServer::start().await.expect("kube-apiserver");
    let crds = ok(
        &run(&mut in_image(&rootfs, &config, &["crds"], &[]), "coreutils"),
        "upkeep crds runs in the image",
    );
    server
        .apply_crds(&crds)
        .expect("the API server establishes the CRDs the image prints");

    // The shipped namespace and RBAC; the Deployment's args and environment.
    let deploy = repo_root().join("deploy");
    for file in ["namespace.yaml", "rbac.yaml"] {
        server
            .kubectl(&["apply", "-f", s(&deploy.join(file))])
            .unwrap_or_else(|e| panic!("apply deploy/{file}: {e}"));
    }
    server
        .kubectl(&["create", "namespace", "tenant-a"])
        .expect("tenant namespace");
    let deployment = &file_objects(&server, &deploy.join("deployment.yaml"))[0];
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], SERVICE_ACCOUNT);
    assert_eq!(
        pod["securityContext"]["runAsUser"], 65532,
        "the pod's user is the image's"
    );
    let container = &pod["containers"][0];
    let mut args: Vec<String> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("a string").to_owned())
        .collect();

    // The ServiceAccount's own token, as the kubelet would request it.
    let http = server.client().expect("admin HTTP client");
    let response = http
        .post(format!(
            "{}/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{SERVICE_ACCOUNT}/token",
            server.url()
        ))
        .bearer_auth(server.admin_token())
        .header("Content-Type", "application/json")
        .body(
            json!({
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600},
            })
            .to_string(),
        )
        .send()
        .await
        .expect("TokenRequest");
    assert!(response.status().is_success(), "TokenRequest: {response:?}");
    let body = response.text().await.expect("TokenRequest body");
    let token = serde_json::from_str::<Value>(&body).expect("TokenRequest JSON")["status"]["token"]
        .as_str()
        .expect("a token")
        .to_owned();

    // The shipped bindings take effect (they reach the authorizer through an informer)...
    let as_account = |path: String| {
        let http = http.clone();
        let token = token.clone();
        let url = format!("{}{path}", server.url());
        async move {
            let response = http.get(url).bearer_auth(token).send().await.expect("GET");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
    };
    wait_for(
        "the shipped ClusterRoleBinding grants the ServiceAccount its rules",
        String::new,
        async || {
            let (status, _) =
                as_account("/apis/upkeep.dev/v1alpha1/maintenanceschedules".into()).await;
            (status == 200).then_some(())
        },
    )
    .await;
    // ...and what they do not grant is refused, to that same token.
    let (status, body) = as_account("/api/v1/namespaces/tenant-a/secrets".into()).await;
    assert_eq!(
        status, 403,
        "the shipped RBAC does not let the controller list Secrets: {body}"
    );
    assert!(
        body.contains(&format!(
            "system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
        )),
        "the API server sees the ServiceAccount: {body}"
    );
    let (status, body) =
        as_account("/apis/apps/v1/namespaces/upkeep-system/deployments".into()).await;
    assert_eq!(status, 403, "nor read Deployments: {body}");

    // The pod's service-account volume, as the kubelet mounts it.
    let sa_dir = rootfs.join("var/run/secrets/kubernetes.io/serviceaccount");
    std::fs::create_dir_all(&sa_dir).expect("service-account dir");
    std::fs::write(sa_dir.join("token"), &token).expect("token");
    std::fs::write(sa_dir.join("ca.crt"), server.ca_pem()).expect("ca.crt");
    std::fs::write(sa_dir.join("namespace"), NAMESPACE).expect("namespace");
    for file in ["token", "ca.crt", "namespace"] {
        std::fs::set_permissions(
            sa_dir.join(file),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .expect("chmod");
    }

    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    args.extend(["--metrics-addr".to_owned(), metrics.to_string()]);
    let api = url::Url::parse(server.url()).expect("API server URL");
    let env = [
        ("KUBERNETES_SERVICE_HOST", "127.0.0.1".to_owned()),
        (
            "KUBERNETES_SERVICE_PORT",
            api.port().expect("a port").to_string(),
        ),
        ("POD_NAME", POD_NAME.to_owned()),
        ("POD_NAMESPACE", NAMESPACE.to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = dir.path().join("controller.log");
    let child = in_image(&rootfs, &config, &args, &env)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("chroot runs the controller");
    let mut controller = Running(child);
    let log_tail = || std::fs::read_to_string(&log).unwrap_or_default();

    // Ready, as the kubelet's probe sees it.
    let probe = upkeep_testenv::http_client(None, Duration::from_secs(2)).expect("client");
    wait_for(
        "the controller answers /readyz with 200",
        || format!("controller log:\n{}", log_tail()),
        async || {
            if let Some(status) = controller.0.try_wait().expect("wait") {
                panic!("the controller exited ({status}):\n{}", log_tail());
            }
            let response = probe
                .get(format!("http://{metrics}/readyz"))
                .send()
                .await
                .ok()?;
            (response.status() == 200).then_some(())
        },
    )
    .await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", controller.0.id()))
        .expect("the controller's /proc status");
    let uids = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    assert_eq!(
        uids.split_whitespace().skip(1).collect::<Vec<_>>(),
        [NONROOT; 4],
        "the controller runs as {NONROOT} (real, effective, saved, fs)"
    );

    // It leads (its Lease, in its namespace) and reconciles a schedule with only those rights.
    wait_for(
        "the controller holds the Lease",
        || format!("controller log:\n{}", log_tail()),
        async || {
            let holder = server
                .kubectl(&[
                    "get",
                    "lease",
                    "-n",
                    NAMESPACE,
                    "-o",
                    "jsonpath={.items[*].spec.holderIdentity}",
                ])
                .ok()?;
            (holder.trim() == POD_NAME).then_some(())
        },
    )
    .await;
    server
        .kubectl_stdin(
            &["apply", "-f", "-"],
            "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: nightly, namespace: tenant-a}
spec:
  timeZone: Europe/Berlin
  maintenanceWindows:
    - name: night
      startTime: 2026-01-05T01:00:00
      endTime: 2026-01-05T03:00:00
      recurrence: FREQ=DAILY
",
        )
        .expect("create a schedule as the admin");
    let next = wait_for(
        "the controller writes the schedule's nextWindows",
        || format!("controller log:\n{}", log_tail()),
        async || {
            let start = server
                .kubectl(&[
                    "get",
                    "maintenanceschedule",
                    "nightly",
                    "-n",
                    "tenant-a",
                    "-o",
                    "jsonpath={.status.nextWindows[0].start}",
                ])
                .ok()?;
            (!start.trim().is_empty()).then(|| start.trim().to_owned())
        },
    )
    .await;
    // The zone comes from the image's own /usr/share/zoneinfo (jiff reads the system database):
    // 01:00 in Berlin is 00:00 or 23:00 UTC, never the 01:00 UTC a missing zone would give.
    let berlin = next
        .parse::<jiff::Timestamp>()
        .expect("an RFC 3339 time")
        .in_tz("Europe/Berlin")
        .expect("the host's tzdata");
    assert_eq!(
        (berlin.hour(), berlin.minute()),
        (1, 0),
        "the next nightly window starts at 01:00 in Berlin: {next}\n{}",
        log_tail()
    );
    assert!(!next.ends_with("T01:00:00Z"), "{next} is not 01:00 UTC");
    drop(controller);
}

/// `kubectl apply -k deploy/` runs the image as `<name>:<tag>@<digest>` (kustomize, the peer:
/// `kubectl kustomize` as scripts/test requires it, v4 or later).
#[test]
fn the_kustomization_pins_the_image_by_digest() {
    let deploy = repo_root().join("deploy");
    let out = run(
        Command::new("kubectl").args(["kustomize", s(&deploy)]),
        "kubernetes-client",
    );
    let rendered = ok(&out, "kubectl kustomize deploy/");
    let images: Vec<&str> = rendered
        .lines()
        .filter_map(|l| l.trim().strip_prefix("image: "))
        .collect();
    assert_eq!(images.len(), 1, "one container image: {images:?}");
    let (name, digest) = images[0].split_once('@').expect("pinned by digest");
    assert!(
        name.starts_with("ghcr.io/upkeep-dev/upkeep:"),
        "the tag stays for people: {name}"
    );
    assert!(
        digest.starts_with("sha256:")
            && digest.len() == 71
            && digest[7..].bytes().all(|b| b.is_ascii_hexdigit()),
        "a sha256 digest: {digest}"
    );
}

/// Dogfooding: upkeep's own `plan`, on a copy of `deploy/kustomization.yaml` and
/// `deploy/self-update.yaml` whose ChartSource points at the test registry, sees the three
/// marked fields of the image and would move them to the newer tag's name, tag and digest.
/// The copy drops `minimumReleaseAge`: `plan` keeps no store, so it has seen every tag just now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upkeeps_own_plan_moves_the_pinned_image_to_a_newer_release() {
    let (registry, digest) = publish(NEWER_TAG).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    let deploy = repo_root().join("deploy");
    std::fs::create_dir(&repo).expect("repo");
    for file in ["kustomization.yaml", "self-update.yaml"] {
        let body = std::fs::read_to_string(deploy.join(file)).expect("read deploy/");
        let body = if file == "self-update.yaml" {
            let shipped = "url: oci://ghcr.io/upkeep-dev/upkeep";
            let age = "minimumReleaseAge: 24h\n";
            assert!(
                body.contains(shipped) && body.contains(age),
                "self-update.yaml: {shipped}, {age}"
            );
            body.replacen(age, "", 1).replacen(
                shipped,
                &format!("url: oci://{}/upkeep\n  insecure: true", registry.host()),
                1,
            )
        } else {
            body
        };
        std::fs::write(repo.join(file), body).expect("write the copy");
    }
    let docker = dir.path().join("config.json");
    std::fs::write(&docker, registry.docker_config_json().to_string()).expect("config.json");
    let at = jiff::Timestamp::now().to_string();
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(["plan", "--repo", s(&repo), "--at", &at, "-o", "json"])
            .args(["--docker-config", s(&docker)])
            .env_remove("UPKEEP_STORE"),
        "upkeep",
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "upkeep plan prints JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    let fields = json["fields"].as_array().expect("fields");
    let row = |line: u64| {
        fields
            .iter()
            .find(|f| f["file"] == "kustomization.yaml" && f["line"] == line)
            .unwrap_or_else(|| panic!("a row for kustomization.yaml:{line}: {json}"))
    };
    let kustomization = std::fs::read_to_string(repo.join("kustomization.yaml")).expect("read");
    let line_of = |key: &str| {
        kustomization
            .lines()
            .position(|l| l.trim_start().starts_with(key))
            .map_or_else(
                || panic!("{key} in kustomization.yaml"),
                |i| u64::try_from(i).expect("a line number") + 1,
            )
    };
    let image = format!("{}/upkeep", registry.host());
    for (key, target, why) in [
        (
            "newName:",
            image.as_str(),
            "the name: the source's repository",
        ),
        ("newTag:", NEWER_TAG, "the tag: the newest allowed release"),
        (
            "digest:",
            digest.as_str(),
            "the digest of that tag, as pushed",
        ),
    ] {
        let r = row(line_of(key));
        assert_eq!(r["action"], "write", "{why}: {r}\n{}", text(&out.stderr));
        assert_eq!(r["target"], target, "{why}: {r}");
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
