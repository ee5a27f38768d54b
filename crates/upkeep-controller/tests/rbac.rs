//! The shipped manifests in `deploy/` against a real kube-apiserver 1.20.2: they are accepted
//! (server-side dry run, then for real, with nothing silently dropped), the kustomization
//! installs the same objects, and the controller runs with *exactly* the shipped RBAC.
//!
//! Why it is shaped this way:
//! - The test reads the manifests from the repository, so a broken or pruned manifest fails it.
//!   A 1.20 server prunes what it does not know without a word (server-side field validation
//!   came in 1.25; kubectl's client-side check is only as good as its schema), hence the check
//!   that every field of each file is still there, unchanged, when read back. The Deployment is
//!   stored but never runs: there is no kubelet.
//! - The test API server has no kubelet and no token controller, so the ServiceAccount cannot
//!   log in. The test's unprivileged *user* `upkeep-controller` is bound to the same roles by
//!   copies of the shipped bindings (roleRef read from `deploy/rbac.yaml`, subjects swapped),
//!   and the real `run_schedules` runs with that user's token. The ServiceAccount's own rights
//!   are checked too, by SubjectAccessReviews on the shipped bindings themselves.
//! - What the controller may NOT do is a table with a reason per row, asked of the API server
//!   for both principals; two rows are also tried for real to show the reviews tell the truth.

mod support;
use support::{Running, client, eventually, parse_schedule};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec, SubjectAccessReview,
    SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use upkeep_api::MaintenanceSchedule;
use upkeep_controller::framework::Context;
use upkeep_controller::schedule::run_schedules;
use upkeep_testenv::{KUBE_CONTROLLER_USER, KubeApiServer, KubeUser};

const NAMESPACE: &str = "upkeep-system";
const SERVICE_ACCOUNT: &str = "upkeep-controller";
/// The manifests in the order they are applied (the Namespace before what lives in it).
const MANIFESTS: &[&str] = &[
    "namespace.yaml",
    "rbac.yaml",
    "service.yaml",
    "deployment.yaml",
];

const SCHEDULE: &str = "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: nightly, namespace: tenant-a}
spec:
  timeZone: UTC
  maintenanceWindows:
    - name: night
      startTime: 2026-01-05T01:00:00
      endTime: 2026-01-05T03:00:00
      recurrence: FREQ=DAILY
";

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// kubectl's JSON output as a list of objects: it prints a `List`, one object, or (for
/// `create --dry-run=client` of several) objects one after another; Lists are unpacked.
fn objects(json: &str, what: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for value in serde_json::Deserializer::from_str(json).into_iter::<Value>() {
        let value = value.unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {json}"));
        match value.get("items") {
            Some(Value::Array(items)) if value["kind"] == "List" => {
                out.extend(items.iter().cloned());
            }
            _ => out.push(value),
        }
    }
    out
}

/// The objects of a manifest file as the file states them (parsed by kubectl, client-side).
fn file_objects(server: &KubeApiServer, path: &Path) -> Vec<Value> {
    let json = server
        .kubectl(&[
            "create",
            "--dry-run=client",
            "-o",
            "json",
            "-f",
            path_str(path),
        ])
        .unwrap_or_else(|e| panic!("kubectl parses {}: {e}", path.display()));
    objects(&json, &path.display().to_string())
}

/// Where `stored` lacks something `wanted` has (`wanted` ⊆ `stored`), as JSON paths.
fn missing(wanted: &Value, stored: &Value, at: &str, out: &mut Vec<String>) {
    match (wanted, stored) {
        (Value::Object(w), Value::Object(s)) => {
            for (key, value) in w {
                match s.get(key) {
                    Some(found) => missing(value, found, &format!("{at}.{key}"), out),
                    None => out.push(format!("{at}.{key}")),
                }
            }
        }
        (Value::Array(w), Value::Array(s)) if w.len() == s.len() => {
            for (i, (value, found)) in w.iter().zip(s).enumerate() {
                missing(value, found, &format!("{at}[{i}]"), out);
            }
        }
        _ if wanted == stored => {}
        _ => out.push(format!("{at}: wanted {wanted}, stored {stored}")),
    }
}

/// `kubectl apply … -o name` output as a set of `kind.group/name` lines.
fn names(output: &str) -> BTreeSet<String> {
    output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Applies the CRDs and every manifest (server-side dry run first, then for real) and returns
/// the names of what was applied.
fn apply_all(server: &KubeApiServer) -> BTreeSet<String> {
    let deploy = deploy_dir();
    let mut applied = BTreeSet::new();
    let crds = deploy.join("crds");
    let files = std::iter::once(crds.clone()).chain(MANIFESTS.iter().map(|m| deploy.join(m)));
    for path in files {
        let path = path_str(&path);
        server
            .kubectl(&["apply", "--dry-run=server", "-f", path])
            .unwrap_or_else(|e| panic!("a 1.20 API server accepts {path} (dry run): {e}"));
        let out = if path == path_str(&crds) {
            server.apply_crd_files(&crds)
        } else {
            server.kubectl(&["apply", "-o", "name", "-f", path])
        }
        .unwrap_or_else(|e| panic!("a 1.20 API server accepts {path}: {e}"));
        applied.extend(names(&out));
    }
    applied
}

/// Copies of the shipped bindings for the test's user: same roleRef, the user as the subject;
/// each with a probe (the first thing its role grants) that tells when the authorizer has seen
/// it. Also checks that each shipped binding is to the ServiceAccount the Deployment runs as.
fn bindings_for_the_test_user(server: &KubeApiServer) -> Vec<(Value, ResourceAttributes)> {
    let rbac = file_objects(server, &deploy_dir().join("rbac.yaml"));
    let bindings: Vec<&Value> = rbac
        .iter()
        .filter(|o| o["kind"] == "ClusterRoleBinding" || o["kind"] == "RoleBinding")
        .collect();
    assert_eq!(
        bindings.len(),
        2,
        "one ClusterRoleBinding (the controller's rules) and one RoleBinding (leader election)"
    );
    let shipped_subject = json!([{
        "kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE
    }]);
    bindings
        .into_iter()
        .map(|binding| {
            assert_eq!(
                binding["subjects"], shipped_subject,
                "{} binds the controller's ServiceAccount and nobody else",
                binding["metadata"]["name"]
            );
            let mut copy = json!({
                "apiVersion": binding["apiVersion"],
                "kind": binding["kind"],
                "metadata": {
                    "name": format!("{}-test-user", binding["metadata"]["name"].as_str().unwrap_or_default()),
                },
                "roleRef": binding["roleRef"],
                "subjects": [{
                    "kind": "User",
                    "apiGroup": "rbac.authorization.k8s.io",
                    "name": KUBE_CONTROLLER_USER,
                }],
            });
            let namespace = binding["metadata"]["namespace"].as_str();
            if let Some(namespace) = namespace {
                copy["metadata"]["namespace"] = json!(namespace);
            }
            let role = rbac
                .iter()
                .find(|o| {
                    o["kind"] == binding["roleRef"]["kind"]
                        && o["metadata"]["name"] == binding["roleRef"]["name"]
                })
                .unwrap_or_else(|| panic!("rbac.yaml holds the role {}", binding["roleRef"]));
            let rule = &role["rules"][0];
            let first = |key: &str| rule[key][0].as_str().map(str::to_owned);
            let probe = ResourceAttributes {
                verb: first("verbs"),
                group: first("apiGroups"),
                resource: first("resources"),
                namespace: namespace.map(str::to_owned),
                ..ResourceAttributes::default()
            };
            (copy, probe)
        })
        .collect()
}

/// One question to the authorizer.
#[derive(Debug, Clone, Copy)]
struct Ask {
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    /// Empty: cluster-wide (all namespaces, or a cluster-scoped resource).
    namespace: &'static str,
}

const fn ask(
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    namespace: &'static str,
) -> Ask {
    Ask {
        verb,
        group,
        resource,
        subresource: "",
        namespace,
    }
}

const fn status(verb: &'static str, resource: &'static str, namespace: &'static str) -> Ask {
    Ask {
        verb,
        group: "upkeep.dev",
        resource,
        subresource: "status",
        namespace,
    }
}

impl Ask {
    fn attributes(self) -> ResourceAttributes {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        ResourceAttributes {
            verb: some(self.verb),
            group: Some(self.group.to_owned()),
            resource: some(self.resource),
            subresource: some(self.subresource),
            namespace: some(self.namespace),
            ..ResourceAttributes::default()
        }
    }
}

impl std::fmt::Display for Ask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        write!(f, "{} {}.{group}", self.verb, self.resource)?;
        if !self.subresource.is_empty() {
            write!(f, "/{}", self.subresource)?;
        }
        match self.namespace {
            "" => write!(f, " (cluster-wide)"),
            ns => write!(f, " in {ns}"),
        }
    }
}

/// (question, allowed?, why).
#[rustfmt::skip]
fn table() -> Vec<(Ask, bool, &'static str)> {
    vec![
        // What the controller needs.
        (ask("list", "upkeep.dev", "maintenanceschedules", ""), true, "the controller watches schedules in every namespace"),
        (ask("watch", "upkeep.dev", "clusterupgradepolicies", ""), true, "every upkeep kind is watched cluster-wide"),
        (ask("get", "upkeep.dev", "chartsources", "tenant-a"), true, "a reconciler reads the ChartSource an automation names"),
        (status("patch", "maintenanceschedules", "tenant-a"), true, "status is written with a merge patch on /status"),
        (status("update", "appupgradeautomations", "tenant-a"), true, "status may also be replaced"),
        (ask("create", "upkeep.dev", "clusterupgrades", "tenant-a"), true, "a ClusterUpgradePolicy creates ClusterUpgrades"),
        (ask("create", "upkeep.dev", "clusterupgraderecords", "tenant-a"), true, "each cluster's upgrade is recorded before the cluster is changed"),
        (ask("patch", "upkeep.dev", "clusterupgraderecords", "tenant-a"), true, "a record follows its cluster's transitions"),
        (ask("watch", "upkeep.dev", "clusterupgraderecords", ""), true, "records are read from a watch"),
        (ask("delete", "upkeep.dev", "clusterupgraderecords", "tenant-a"), true, "records beyond --records-per-cluster are deleted"),
        (ask("update", "upkeep.dev", "clusterupgraderecords", "tenant-a"), false, "records are patched, never replaced"),
        (ask("get", "", "secrets", "tenant-a"), true, "credentials are read when they are used"),
        (ask("get", "", "secrets", "kube-system"), true, "the documented trade-off: get on secrets is cluster-wide (deploy/README.md)"),
        (ask("create", "", "events", "tenant-a"), true, "core/v1 Events on reconciled objects"),
        (ask("patch", "events.k8s.io", "events", "tenant-a"), true, "events.k8s.io Events are aggregated by patch"),
        (ask("patch", "cluster.x-k8s.io", "clusters", "tenant-a"), true, "a ClusterUpgrade patches a Cluster's release label"),
        (ask("watch", "cluster.x-k8s.io", "clusters", ""), true, "ClusterUpgrades follow their Clusters"),
        (ask("get", "application.giantswarm.io", "apps", "org-a"), true, "a cluster that is an App is found by its App"),
        (ask("patch", "application.giantswarm.io", "apps", "org-a"), true, "an App-based cluster's spec.version is patched"),
        (ask("get", "", "configmaps", "org-a"), true, "the App's values ConfigMap is read by name"),
        (ask("patch", "", "configmaps", "org-a"), true, "its global.release.version is patched"),
        (ask("update", "coordination.k8s.io", "leases", NAMESPACE), true, "leader election renews its Lease"),
        (ask("create", "coordination.k8s.io", "leases", NAMESPACE), true, "the first leader creates the Lease"),
        // What it must not do.
        (ask("list", "", "secrets", "tenant-a"), false, "credentials are read by name on use; listing would expose every Secret"),
        (ask("list", "", "secrets", ""), false, "no cluster-wide listing of Secrets either"),
        (ask("watch", "", "secrets", "tenant-a"), false, "a watch would stream every Secret"),
        (ask("update", "", "secrets", "tenant-a"), false, "the controller never writes credentials"),
        (ask("delete", "upkeep.dev", "maintenanceschedules", "tenant-a"), false, "upkeep objects belong to their users; the controller never deletes them"),
        (ask("delete", "upkeep.dev", "clusterupgrades", "tenant-a"), true, "a pending scheduled-<cluster> upgrade is cancelled when its annotations are removed"),
        (ask("update", "upkeep.dev", "maintenanceschedules", "tenant-a"), false, "the spec is the user's: only /status is written"),
        (ask("patch", "upkeep.dev", "chartsources", "tenant-a"), false, "no patching the spec either"),
        (ask("create", "upkeep.dev", "maintenanceschedules", "tenant-a"), false, "only ClusterUpgrades are ever created"),
        (ask("update", "apps", "deployments", "tenant-a"), false, "apps are upgraded through GitOps, never by editing workloads"),
        (ask("update", "apps", "deployments", NAMESPACE), false, "not even its own Deployment"),
        (ask("delete", "cluster.x-k8s.io", "clusters", "tenant-a"), false, "a cluster upgrade patches a label; it never removes a Cluster"),
        (ask("update", "cluster.x-k8s.io", "clusters", "tenant-a"), false, "patch of the label only, no full replace"),
        (ask("create", "coordination.k8s.io", "leases", "tenant-a"), false, "Leases only in upkeep-system"),
        (ask("delete", "coordination.k8s.io", "leases", NAMESPACE), false, "a leader lets its Lease expire, it does not delete it"),
        (ask("list", "", "events", "tenant-a"), false, "events are written, never read"),
        (ask("list", "", "configmaps", "tenant-a"), false, "values ConfigMaps are read by name, never listed"),
        (ask("update", "", "configmaps", "tenant-a"), false, "a values key is patched, the ConfigMap never replaced"),
        (ask("list", "application.giantswarm.io", "apps", ""), false, "Apps are read by name, never listed"),
        (ask("delete", "application.giantswarm.io", "apps", "org-a"), false, "an upgrade never removes an App"),
        (ask("get", "", "serviceaccounts", "tenant-a"), false, "no other core resources"),
        (ask("create", "", "pods", "tenant-a"), false, "no workloads of its own"),
        (ask("create", "rbac.authorization.k8s.io", "clusterrolebindings", ""), false, "no way to grant itself more"),
        (ask("impersonate", "", "users", ""), false, "no acting as someone else"),
    ]
}

/// Asks the authorizer as the controller user itself (its own token, as `kubectl auth can-i`).
async fn user_may(controller: &kube::Client, ask: ResourceAttributes) -> bool {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ask.clone()),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    Api::<SelfSubjectAccessReview>::all(controller.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap_or_else(|e| panic!("SelfSubjectAccessReview {ask:?}: {e}"))
        .status
        .is_some_and(|s| s.allowed)
}

/// Asks the authorizer, as the admin, about the shipped ServiceAccount.
async fn service_account_may(admin: &kube::Client, ask: ResourceAttributes) -> bool {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!(
                "system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
            )),
            groups: Some(vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{NAMESPACE}"),
                "system:authenticated".to_owned(),
            ]),
            resource_attributes: Some(ask.clone()),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    Api::<SubjectAccessReview>::all(admin.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap_or_else(|e| panic!("SubjectAccessReview {ask:?}: {e}"))
        .status
        .is_some_and(|s| s.allowed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_runs_with_exactly_the_shipped_rbac() {
    let server = KubeApiServer::start().await.expect("kube-apiserver");
    let deploy = deploy_dir();

    // 1. Every manifest is accepted by a 1.20 server and stored as written.
    let applied = apply_all(&server);
    for manifest in MANIFESTS {
        let path = deploy.join(manifest);
        let wanted = file_objects(&server, &path);
        let stored = objects(
            &server
                .kubectl(&["get", "-o", "json", "-f", path_str(&path)])
                .expect("get what the manifest names"),
            manifest,
        );
        assert_eq!(
            wanted.len(),
            stored.len(),
            "{manifest}: every object stored"
        );
        for (w, s) in wanted.iter().zip(&stored) {
            let mut gone = Vec::new();
            missing(w, s, "", &mut gone);
            assert!(
                gone.is_empty(),
                "{manifest}: the 1.20 server dropped or changed {gone:?} of {}",
                w["metadata"]["name"]
            );
        }
    }
    let deployment = &file_objects(&server, &deploy.join("deployment.yaml"))[0];
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"], SERVICE_ACCOUNT,
        "the Deployment runs as the ServiceAccount rbac.yaml binds"
    );

    // 2. The kustomization installs exactly the same objects (and lists every CRD file).
    let kustomized = names(
        &server
            .kubectl(&[
                "apply",
                "--dry-run=server",
                "-o",
                "name",
                "-k",
                path_str(&deploy),
            ])
            .expect("kubectl apply -k deploy/"),
    );
    assert_eq!(
        kustomized, applied,
        "deploy/kustomization.yaml installs what the files hold"
    );

    // 3. The test's user gets the shipped roles, by the shipped roleRefs.
    let (bindings, probes): (Vec<Value>, Vec<ResourceAttributes>) =
        bindings_for_the_test_user(&server).into_iter().unzip();
    server
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &json!({"apiVersion": "v1", "kind": "List", "items": bindings}).to_string(),
        )
        .expect("test bindings");
    server
        .kubectl(&["create", "namespace", "tenant-a"])
        .expect("tenant namespace");
    let admin = client(&server, KubeUser::Admin).await;
    let controller = client(&server, KubeUser::Controller).await;
    // RBAC reaches the authorizer through an informer: wait until every binding, shipped and
    // copied, grants the first thing its role lists.
    for probe in probes {
        eventually(
            async || {
                user_may(&controller, probe.clone()).await
                    && service_account_may(&admin, probe.clone()).await
            },
            |allowed| *allowed,
            &format!("the bindings take effect ({probe:?} is granted)"),
        )
        .await;
    }

    // 4. May and may-not, for the test user and for the shipped ServiceAccount.
    let mut wrong = Vec::new();
    for (ask, allowed, why) in table() {
        let user = user_may(&controller, ask.attributes()).await;
        let account = service_account_may(&admin, ask.attributes()).await;
        for (who, got) in [("user", user), ("service account", account)] {
            if got != allowed {
                wrong.push(format!(
                    "{who}: {ask}: allowed={got}, expected {allowed} ({why})"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "RBAC differs:\n{}", wrong.join("\n"));

    // 5. The real controller, with those permissions only, writes a schedule's status.
    let schedules: Api<MaintenanceSchedule> = Api::namespaced(admin.clone(), "tenant-a");
    schedules
        .create(&PostParams::default(), &parse_schedule(SCHEDULE))
        .await
        .expect("create the schedule as the admin");
    let now: Timestamp = "2026-03-10T12:00:00Z".parse().unwrap();
    let ctx = Arc::new(Context::new(controller.clone()).with_clock(move || now));
    let running = Running::spawn(|shutdown| run_schedules(ctx, shutdown));
    let written = eventually(
        async || schedules.get("nightly").await.expect("get").status,
        |s| s.as_ref().is_some_and(|s| !s.next_windows.is_empty()),
        "the controller writes nextWindows with the shipped RBAC",
    )
    .await
    .expect("status");
    assert_eq!(
        written.next_windows[0].start.as_ref().map(|t| t.0),
        Some("2026-03-11T01:00:00Z".parse::<Timestamp>().unwrap()),
        "the next nightly window, at the controller's clock"
    );
    running.stop().await;

    // 6. The reviews tell the truth: two refusals, tried for real with the controller's token.
    let secrets = Api::<Secret>::namespaced(controller.clone(), "tenant-a")
        .list(&ListParams::default())
        .await;
    assert!(
        matches!(&secrets, Err(kube::Error::Api(s)) if s.is_forbidden()),
        "listing Secrets is refused: {secrets:?}"
    );
    let delete = Api::<MaintenanceSchedule>::namespaced(controller.clone(), "tenant-a")
        .delete("nightly", &DeleteParams::default())
        .await;
    assert!(
        matches!(&delete, Err(kube::Error::Api(s)) if s.is_forbidden()),
        "deleting a schedule is refused: {delete:?}"
    );
    assert!(
        schedules.get("nightly").await.is_ok(),
        "the schedule is still there"
    );
}
