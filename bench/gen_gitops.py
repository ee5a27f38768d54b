#!/usr/bin/env python3
"""Deterministic GitOps repository for the "rewrite 1k marked fields in 10k files" benchmark.

Writes OUT/repo, a Git repository with one commit (fixed author, dates and message, packed)
holding 10,000 YAML files in a fleet-shaped tree:

    clusters/<cluster>/cluster.yaml            plain values file of the cluster-aws release
    clusters/<cluster>/apps/<app>.yaml         Giant Swarm App CRs, Flux HelmReleases,
                                               Argo CD Applications
    clusters/<cluster>/values/<app>.yaml       plain Helm values files
    upkeep/sources.yaml, upkeep/policies.yaml  the ChartSources and VersionPolicies upkeep reads

250 clusters of 40 files each. Exactly 1,000 files carry one version field marked
`# {"$upkeep": "flux-system:<policy>"}` (4 per cluster, 5 policies); the other 9,000 hold
versions of other charts, unmarked, and are of similar size. Every marked field holds a version
older than the one its policy selects, so upkeep writes all 1,000.

The ChartSources read OCI image layouts: copies of examples/quickstart/charts/<name> in
OUT/charts/ (outside the repository, so neither tool's commit sees them), referenced as
`oci-layout:../../charts/<name>` relative to upkeep/sources.yaml.

Also writes, outside the repository:
  OUT/peer.sed     the sed -E script that sets the same versions (one expression per policy)
  OUT/meta.json    counts, the policies with their ranges and targets, the initial commit

Usage: gen_gitops.py OUT CHARTS_DIR [SEED]
"""

import json
import os
import random
import shutil
import subprocess
import sys

CLUSTERS = 250
FILES_PER_CLUSTER = 40
NAMESPACE = "flux-system"

# policy -> (source chart, semver range, version upkeep must select, versions the files hold).
# The targets are what the ranges select from the bundled layouts' tags
# (examples/quickstart/tags/flux-system.*.tags, org-acme.cluster-aws.tags); the benchmark's
# agreement check (both tools' trees equal) catches any mismatch.
POLICIES = {
    "ingress-nginx": ("ingress-nginx", ">=4.10.0 <5.0.0", "4.12.0",
                      ["4.10.0", "4.10.1", "4.10.2", "4.11.0", "4.11.1", "4.11.2", "4.11.3"]),
    "cert-manager": ("cert-manager", "~1.15", "v1.15.4",
                     ["v1.15.0", "v1.15.1", "v1.15.2", "v1.15.3"]),
    "cert-manager-edge": ("cert-manager", ">=1.14.0 <2.0.0", "v1.16.1",
                          ["v1.14.4", "v1.14.5", "v1.15.3", "v1.16.0"]),
    "podinfo": ("podinfo", ">=6.5.0 <7.0.0", "6.6.1", ["6.5.3", "6.5.4", "6.6.0"]),
    "cluster-aws": ("cluster-aws", "^29.0.0", "29.4.0",
                    ["29.0.0", "29.1.0", "29.2.0", "29.2.1", "29.3.0"]),
}

# Charts the unmarked files install: name -> (Helm repository, chart namespace).
OTHER_APPS = [
    ("external-dns", "kube-system"), ("kyverno", "kyverno"), ("kube-prometheus-stack", "monitoring"),
    ("loki", "monitoring"), ("promtail", "monitoring"), ("grafana", "monitoring"),
    ("velero", "velero"), ("metrics-server", "kube-system"), ("cluster-autoscaler", "kube-system"),
    ("aws-load-balancer-controller", "kube-system"), ("aws-ebs-csi-driver", "kube-system"),
    ("karpenter", "karpenter"), ("external-secrets", "external-secrets"),
    ("sealed-secrets", "kube-system"), ("reloader", "kube-system"), ("trivy-operator", "trivy"),
    ("falco", "falco"), ("cilium", "kube-system"), ("coredns", "kube-system"),
    ("vertical-pod-autoscaler", "kube-system"), ("keda", "keda"), ("opentelemetry-collector", "otel"),
    ("tempo", "monitoring"), ("mimir", "monitoring"), ("jaeger", "tracing"),
    ("linkerd-control-plane", "linkerd"), ("istiod", "istio-system"), ("argo-rollouts", "argo"),
    ("redis", "cache"), ("postgresql", "db"), ("rabbitmq", "queue"), ("kafka", "queue"),
    ("nats", "queue"), ("minio", "storage"), ("harbor", "registry"), ("vault", "vault"),
    ("dex", "auth"), ("oauth2-proxy", "auth"), ("node-exporter", "monitoring"),
    ("kube-state-metrics", "monitoring"), ("descheduler", "kube-system"),
]
ENVS = ["dev", "stage", "prod"]
REGIONS = ["eu-central-1", "eu-west-1", "us-east-1", "us-west-2", "ap-southeast-2"]


def rand_version(rng):
    return f"{rng.randrange(0, 12)}.{rng.randrange(0, 40)}.{rng.randrange(0, 20)}"


def marker(policy):
    return f'# {{"$upkeep": "{NAMESPACE}:{policy}"}}'


def labels(rng, cluster, app):
    team = rng.choice(["platform", "observability", "security", "payments", "search", "data"])
    return (f"  labels:\n"
            f"    app.kubernetes.io/name: {app}\n"
            f"    app.kubernetes.io/part-of: {cluster}\n"
            f"    giantswarm.io/cluster: {cluster}\n"
            f"    team: {team}\n")


def values_block(rng, indent, app):
    """A few lines of chart values, so files are of realistic (and similar) size."""
    p = " " * indent
    lines = [f"{p}replicaCount: {rng.randrange(1, 5)}",
             f"{p}resources:",
             f"{p}  requests:",
             f"{p}    cpu: {rng.choice(['50m', '100m', '250m', '500m'])}",
             f"{p}    memory: {rng.choice(['64Mi', '128Mi', '256Mi', '512Mi'])}",
             f"{p}  limits:",
             f"{p}    memory: {rng.choice(['256Mi', '512Mi', '1Gi'])}",
             f"{p}podAnnotations:",
             f"{p}  prometheus.io/scrape: \"{rng.choice(['true', 'false'])}\"",
             f"{p}nodeSelector:",
             f"{p}  kubernetes.io/os: linux",
             f"{p}serviceAccount:",
             f"{p}  create: true",
             f"{p}  name: {app}"]
    return "\n".join(lines) + "\n"


def app_cr(rng, cluster, app, ns, version, mark):
    """Giant Swarm App CR: spec.version, a plain scalar."""
    return (f"apiVersion: application.giantswarm.io/v1alpha1\n"
            f"kind: App\n"
            f"metadata:\n"
            f"  name: {cluster}-{app}\n"
            f"  namespace: org-{cluster}\n"
            + labels(rng, cluster, app) +
            f"spec:\n"
            f"  catalog: giantswarm\n"
            f"  name: {app}\n"
            f"  namespace: {ns}\n"
            f"  version: {version}{mark}\n"
            f"  kubeConfig:\n"
            f"    inCluster: false\n"
            f"    context:\n"
            f"      name: {cluster}-admin@{cluster}\n"
            f"    secret:\n"
            f"      name: {cluster}-kubeconfig\n"
            f"      namespace: org-{cluster}\n"
            f"  userConfig:\n"
            f"    configMap:\n"
            f"      name: {cluster}-{app}-user-values\n"
            f"      namespace: org-{cluster}\n")


def helm_release(rng, cluster, app, ns, version, mark):
    """Flux HelmRelease: spec.chart.spec.version, double-quoted."""
    return (f"apiVersion: helm.toolkit.fluxcd.io/v2\n"
            f"kind: HelmRelease\n"
            f"metadata:\n"
            f"  name: {app}\n"
            f"  namespace: {ns}\n"
            + labels(rng, cluster, app) +
            f"spec:\n"
            f"  interval: {rng.choice(['5m', '10m', '30m', '1h'])}\n"
            f"  chart:\n"
            f"    spec:\n"
            f"      chart: {app}\n"
            f"      version: \"{version}\"{mark}\n"
            f"      sourceRef:\n"
            f"        kind: HelmRepository\n"
            f"        name: {app}-charts\n"
            f"        namespace: flux-system\n"
            f"  install:\n"
            f"    crds: CreateReplace\n"
            f"  upgrade:\n"
            f"    crds: CreateReplace\n"
            f"  values:\n"
            + values_block(rng, 4, app))


def argo_app(rng, cluster, app, ns, version, mark):
    """Argo CD Application: spec.source.targetRevision, single-quoted."""
    return (f"apiVersion: argoproj.io/v1alpha1\n"
            f"kind: Application\n"
            f"metadata:\n"
            f"  name: {cluster}-{app}\n"
            f"  namespace: argocd\n"
            + labels(rng, cluster, app) +
            f"spec:\n"
            f"  project: {cluster}\n"
            f"  source:\n"
            f"    repoURL: ghcr.io/example/charts\n"
            f"    chart: {app}\n"
            f"    targetRevision: '{version}'{mark}\n"
            f"    helm:\n"
            f"      releaseName: {app}\n"
            f"  destination:\n"
            f"    name: {cluster}\n"
            f"    namespace: {ns}\n"
            f"  syncPolicy:\n"
            f"    automated:\n"
            f"      prune: true\n"
            f"      selfHeal: true\n"
            f"    syncOptions:\n"
            f"      - CreateNamespace=true\n")


def values_file(rng, cluster, app, version, mark):
    """Plain Helm values: an image tag (or a release version) among other settings."""
    return (f"# Values for {app} on {cluster}.\n"
            f"image:\n"
            f"  repository: ghcr.io/example/{app}\n"
            f"  tag: {version}{mark}\n"
            f"  pullPolicy: IfNotPresent\n"
            + values_block(rng, 0, app) +
            f"ingress:\n"
            f"  enabled: {rng.choice(['true', 'false'])}\n"
            f"  hosts:\n"
            f"    - {app}.{cluster}.example.com\n")


def cluster_values(rng, cluster, env, region, version, mark):
    """The cluster's own values (cluster-aws chart): the release version is marked."""
    return (f"# cluster-aws values for {cluster}.\n"
            f"global:\n"
            f"  metadata:\n"
            f"    name: {cluster}\n"
            f"    organization: acme\n"
            f"    labels:\n"
            f"      upkeep.dev/stage: {env}\n"
            f"  release:\n"
            f"    version: {version}{mark}\n"
            f"  providerSpecific:\n"
            f"    region: {region}\n"
            f"  controlPlane:\n"
            f"    instanceType: {rng.choice(['m6i.large', 'm6i.xlarge', 'm5.xlarge'])}\n"
            f"    replicas: 3\n"
            f"  nodePools:\n"
            f"    workers:\n"
            f"      instanceType: {rng.choice(['m6i.2xlarge', 'r6i.xlarge', 'c6i.2xlarge'])}\n"
            f"      minSize: {rng.randrange(2, 5)}\n"
            f"      maxSize: {rng.randrange(6, 30)}\n"
            f"  connectivity:\n"
            f"    baseDomain: {cluster}.example.com\n"
            f"    network:\n"
            f"      podCidr: 100.64.0.0/12\n"
            f"      serviceCidr: 172.31.0.0/16\n")


def cluster_files(rng, cluster, env, region):
    """The cluster's 40 files, path -> text; 4 of them marked."""
    files = {}
    m = " " + marker("cluster-aws")
    files["cluster.yaml"] = cluster_values(
        rng, cluster, env, region, rng.choice(POLICIES["cluster-aws"][3]), m)
    # The three marked apps.
    files["apps/ingress-nginx.yaml"] = app_cr(
        rng, cluster, "ingress-nginx", "kube-system",
        rng.choice(POLICIES["ingress-nginx"][3]), " " + marker("ingress-nginx"))
    cm = "cert-manager-edge" if env == "dev" else "cert-manager"
    files["apps/cert-manager.yaml"] = helm_release(
        rng, cluster, "cert-manager", "cert-manager", rng.choice(POLICIES[cm][3]),
        " " + marker(cm))
    files["apps/podinfo.yaml"] = argo_app(
        rng, cluster, "podinfo", "podinfo", rng.choice(POLICIES["podinfo"][3]),
        " " + marker("podinfo"))
    # 36 unmarked: apps of other charts in every shape, and values files.
    others = rng.sample(OTHER_APPS, 36)
    for i, (app, ns) in enumerate(others):
        v = rand_version(rng)
        if i < 24:
            make = rng.choice([app_cr, helm_release, argo_app])
            files[f"apps/{app}.yaml"] = make(rng, cluster, app, ns, v, "")
        else:
            files[f"values/{app}.yaml"] = values_file(rng, cluster, app, v, "")
    assert len(files) == FILES_PER_CLUSTER
    return files


def upkeep_resources(charts):
    sources = ["# Where versions come from: copies of the quickstart's OCI layouts, next to this\n"
               "# repository (OUT/charts), relative to this file.\n"]
    for chart in charts:
        sources.append(f"apiVersion: upkeep.dev/v1alpha1\n"
                       f"kind: ChartSource\n"
                       f"metadata:\n"
                       f"  name: {chart}\n"
                       f"  namespace: {NAMESPACE}\n"
                       f"spec:\n"
                       f"  url: oci-layout:../../charts/{chart}\n"
                       f"  interval: 10m\n")
    policies = []
    for name, (chart, rng_, _, _) in POLICIES.items():
        policies.append(f"apiVersion: upkeep.dev/v1alpha1\n"
                        f"kind: VersionPolicy\n"
                        f"metadata:\n"
                        f"  name: {name}\n"
                        f"  namespace: {NAMESPACE}\n"
                        f"spec:\n"
                        f"  sourceRef:\n"
                        f"    name: {chart}\n"
                        f"  policy:\n"
                        f"    semver:\n"
                        f"      range: \"{rng_}\"\n")
    return "---\n".join(sources), "---\n".join(policies)


def sed_script():
    """One sed -E expression per policy: on the policy's marked line, replace the scalar between
    `key: ` (and its quote, kept) and the marker with the policy's target."""
    lines = []
    for name, (_, _, target, _) in POLICIES.items():
        mark = marker(name).replace("$", r"\$").replace("{", r"\{").replace("}", r"\}")
        lines.append(
            rf"""s/^([^#]*: +["']?)[^"' #]+(["']? +{mark})$/\1{target}\2/""")
    return "\n".join(lines) + "\n"


def git(repo, *args, env=None):
    subprocess.run(["git", "-C", repo, *args], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def main() -> None:
    out = sys.argv[1]
    charts_dir = sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 20261121
    rng = random.Random(seed)

    repo = os.path.join(out, "repo")
    for d in (repo, os.path.join(out, "charts")):
        if os.path.isdir(d):
            shutil.rmtree(d)
    charts = sorted({chart for chart, _, _, _ in POLICIES.values()})
    for chart in charts:
        shutil.copytree(os.path.join(charts_dir, chart), os.path.join(out, "charts", chart))

    marked = 0
    count = 0
    for k in range(CLUSTERS):
        env = ENVS[k % len(ENVS)]
        region = REGIONS[(k // len(ENVS)) % len(REGIONS)]
        cluster = f"{env}-{region.replace('-', '')}-{k:03d}"
        for rel, text in cluster_files(rng, cluster, env, region).items():
            path = os.path.join(repo, "clusters", cluster, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            count += 1
            marked += "$upkeep" in text
    sources, policies = upkeep_resources(charts)
    os.makedirs(os.path.join(repo, "upkeep"))
    for name, text in (("sources.yaml", sources), ("policies.yaml", policies)):
        with open(os.path.join(repo, "upkeep", name), "w", encoding="utf-8") as f:
            f.write(text)
    assert count == CLUSTERS * FILES_PER_CLUSTER == 10_000, count
    assert marked == 1_000, marked

    env = dict(os.environ, GIT_AUTHOR_DATE="2026-11-01T00:00:00Z",
               GIT_COMMITTER_DATE="2026-11-01T00:00:00Z")
    git(repo, "init", "-q", "-b", "main")
    for k, v in (("user.name", "bench"), ("user.email", "bench@example.com"),
                 ("gc.auto", "0"), ("maintenance.auto", "false"),
                 ("commit.gpgsign", "false"), ("core.hooksPath", "/dev/null")):
        git(repo, "config", k, v)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "fleet: 250 clusters", env=env)
    git(repo, "repack", "-adq")
    git(repo, "prune-packed")
    head = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()

    with open(os.path.join(out, "peer.sed"), "w", encoding="utf-8") as f:
        f.write(sed_script())
    meta = {
        "files": count,
        "marked": marked,
        "clusters": CLUSTERS,
        "seed": seed,
        "initial": head,
        "bytes": sum(os.path.getsize(os.path.join(d, f))
                     for d, _, fs in os.walk(repo) if "/.git" not in d + "/" for f in fs),
        "policies": {name: {"source": chart, "range": r, "target": target}
                     for name, (chart, r, target, _) in POLICIES.items()},
    }
    with open(os.path.join(out, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
