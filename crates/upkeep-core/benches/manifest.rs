//! Criterion benchmark: [`apply`] and [`find_markers`] on a typical 50-line marked manifest (a
//! Flux HelmRelease with a marked chart version and a marked image tag), and the fast rejection
//! of a file without markers. `apply` runs once per marked file in the "rewrite 1k marked fields
//! in a 10k-file repository" benchmark (`bench/run`), so its cost per file matters.
//!
//! Also hostile input: collections nested 40,000 deep (refused at 1,000 levels) and marked files
//! of 1, 2 and 4 MB, whose times must grow linearly.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use upkeep_core::manifest::{Update, apply, find_markers};

const MARKED: &str = r#"apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: apps
  labels:
    app.kubernetes.io/name: podinfo
    app.kubernetes.io/part-of: demo
  annotations:
    fluxcd.io/automated: "false"
spec:
  interval: 10m
  timeout: 5m
  chart:
    spec:
      chart: podinfo
      version: "6.5.4" # {"$upkeep": "flux-system:podinfo"}
      sourceRef:
        kind: HelmRepository
        name: podinfo
        namespace: flux-system
      interval: 1h
  install:
    remediation:
      retries: 3
  upgrade:
    remediation:
      retries: 3
      remediateLastFailure: true
  values:
    replicaCount: 2
    image:
      repository: ghcr.io/stefanprodan/podinfo
      tag: 6.5.4 # {"$imagepolicy": "flux-system:podinfo-image:tag"}
    resources:
      limits:
        memory: 256Mi
      requests:
        cpu: 100m
        memory: 64Mi
    ingress:
      enabled: true
      className: nginx
      hosts:
        - host: podinfo.example.com
          paths:
            - path: /
              pathType: ImplementationSpecific
    serviceMonitor:
      enabled: false
      interval: 15s
"#;

fn manifest(c: &mut Criterion) {
    let updates = [
        Update::version("flux-system", "podinfo", "6.7.0"),
        Update::version("flux-system", "podinfo-image", "6.7.1"),
    ];
    let edited = apply(MARKED, &updates).expect("bench input edits");
    assert_eq!(edited.changes.len(), 2, "both fields change");
    let unmarked = MARKED
        .replace("$upkeep", "upkeep")
        .replace("$imagepolicy", "imagepolicy");

    c.bench_function("apply: 50-line manifest, 2 marked fields changed", |b| {
        b.iter(|| apply(black_box(MARKED), black_box(&updates)));
    });
    c.bench_function("apply: 50-line manifest, policy not updated", |b| {
        b.iter(|| apply(black_box(MARKED), black_box(&[])));
    });
    c.bench_function("find_markers: 50-line manifest", |b| {
        b.iter(|| find_markers(black_box(MARKED)));
    });
    c.bench_function("apply: 50-line manifest without markers", |b| {
        b.iter(|| apply(black_box(&unmarked), black_box(&updates)));
    });
}

fn hostile(c: &mut Criterion) {
    const M: &str = r#" # {"$upkeep": "ns:p"}"#;
    let n = 40_000;
    let deep = [
        (
            "flow sequences",
            format!("v: 1.0.0{M}\nx: {}1{}\n", "[".repeat(n), "]".repeat(n)),
        ),
        (
            "flow mappings",
            format!("v: 1.0.0{M}\nx: {}1{}\n", "{a: ".repeat(n), "}".repeat(n)),
        ),
        (
            "block sequences",
            format!("v: 1.0.0{M}\nx:\n  {}1\n", "- ".repeat(n)),
        ),
    ];
    for (name, text) in &deep {
        assert_eq!(find_markers(text).1[0].kind(), "TooDeep");
        c.bench_function(&format!("find_markers: 40,000-deep {name}"), |b| {
            b.iter(|| find_markers(black_box(text)));
        });
    }
    // Many marked lines deep inside (each refused: the line reader sees `1.0.0,`): checking each
    // must not walk its 999 ancestors.
    let mut many = format!("x: {}\n", "[".repeat(998));
    for _ in 0..20_000 {
        many.push_str("  1.0.0,");
        many.push_str(M);
        many.push('\n');
    }
    many.push_str(&"]".repeat(998));
    many.push('\n');
    let (_, errors) = find_markers(&many);
    assert!(errors.len() == 20_000 && errors.iter().all(|e| e.kind() == "Misread"));
    c.bench_function("find_markers: 20,000 markers 1,000 levels deep", |b| {
        b.iter(|| find_markers(black_box(&many)));
    });
    let mut group = c.benchmark_group("find_markers: large marked file");
    group.sample_size(10);
    for mb in [1usize, 2, 4] {
        let mut text = String::new();
        let mut i = 0;
        while text.len() < mb << 20 {
            let _ = write!(
                text,
                "app{i}:\n  version: 1.{i}.0{M}\n  image: {{repository: ghcr.io/a/b, tag: 'v{i}'}}\n  note: plain words\n"
            );
            i += 1;
        }
        let (found, errors) = find_markers(&text);
        assert!(errors.is_empty() && found.len() == i);
        group.bench_function(format!("{mb} MB"), |b| {
            b.iter(|| find_markers(black_box(&text)));
        });
    }
    group.finish();
}

criterion_group!(benches, manifest, hostile);
criterion_main!(benches);
