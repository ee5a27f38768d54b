//! Flux `ImageRepository`/`ImagePolicy` read as `ChartSource`/`VersionPolicy`: each version and
//! kind loads into the right values, a Flux repository loads unchanged, unknown Flux fields are
//! accepted, and bad values are reported at their line under their Flux field name.

use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use upkeep_api::chart_source::ChartLocation;
use upkeep_api::flux::{NOTES_ANNOTATION, ORIGIN_ANNOTATION};
use upkeep_api::{Loaded, LocalRef, Origin, Resource, load_path, load_str};
use upkeep_core::version::{Policy, TagInfo};

const FILE: &str = "clusters/prod/image-automation.yaml";

fn load(text: &str) -> Loaded {
    load_str(Path::new(FILE), text)
}

fn diagnostics(loaded: &Loaded) -> String {
    loaded
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The one resource of a text that must load cleanly.
fn only(text: &str, reason: &str) -> Resource {
    let loaded = load(text);
    assert!(loaded.is_ok(), "{reason}:\n{}", diagnostics(&loaded));
    assert_eq!(loaded.documents.len(), 1, "{reason}");
    loaded
        .documents
        .into_iter()
        .next()
        .map(|d| d.resource)
        .unwrap()
}

/// What a policy picks from a fixed tag list: shows range, order and filter were carried over.
fn pick(policy: &Policy) -> Option<String> {
    let tags = [
        "0.9.0",
        "1.0.0",
        "1.4.2",
        "1.10.0",
        "2.0.0",
        "1.5.0-rc.1",
        "v1.9.9",
        "b",
        "a",
        "10",
        "9",
        "main-abc-100",
        "main-def-20",
    ];
    let infos: Vec<TagInfo<'_>> = tags
        .iter()
        .map(|t| TagInfo {
            tag: t,
            first_seen: None,
        })
        .collect();
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    policy.select(&infos, now).selected.map(ToOwned::to_owned)
}

#[test]
fn image_repositories_load_as_chart_sources() {
    struct Case {
        yaml: &'static str,
        host: &'static str,
        repository: &'static str,
        interval: SignedDuration,
        timeout: SignedDuration,
        exclusions: &'static [&'static str],
        secret: Option<&'static str>,
        insecure: bool,
        suspend: bool,
        origin: &'static str,
        notes: &'static [&'static str],
        reason: &'static str,
    }
    let cases = [
        Case {
            yaml: "apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageRepository
metadata: {name: app, namespace: flux-system}
spec:
  image: ghcr.io/org/app
  interval: 5m0s
  secretRef: {name: ghcr}
",
            host: "ghcr.io",
            repository: "org/app",
            interval: SignedDuration::from_mins(5),
            timeout: SignedDuration::from_mins(5),
            exclusions: &[r"^.*\.sig$"],
            secret: Some("ghcr"),
            insecure: false,
            suspend: false,
            origin: "image.toolkit.fluxcd.io/v1beta2",
            notes: &[],
            reason: "v1beta2 as flux writes it: Go-style 5m0s, timeout defaults to interval, \
                     Flux's default exclusion list",
        },
        Case {
            yaml: "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: nginx}
spec:
  image: nginx
  interval: 1h
  timeout: 90s
  insecure: true
  suspend: true
  exclusionList: ['-alpine$']
  provider: aws
  serviceAccountName: puller
  proxySecretRef: {name: proxy}
  accessFrom: {namespaceSelectors: [{matchLabels: {team: a}}]}
",
            host: "docker.io",
            repository: "library/nginx",
            interval: SignedDuration::from_hours(1),
            timeout: SignedDuration::from_secs(90),
            exclusions: &["-alpine$"],
            secret: None,
            insecure: true,
            suspend: true,
            origin: "image.toolkit.fluxcd.io/v1",
            notes: &[
                "provider: aws",
                "serviceAccountName",
                "accessFrom",
                "proxySecretRef",
            ],
            reason: "v1 with every field: a bare Docker Hub name, explicit timeout and list, \
                     settings upkeep does not act on are noted, not errors",
        },
        Case {
            yaml: "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: local}
spec:
  image: localhost:5000/team/app
  interval: 30s
  timeout: 100ms
  exclusionList: []
",
            host: "localhost:5000",
            repository: "team/app",
            interval: SignedDuration::from_secs(30),
            timeout: SignedDuration::from_secs(1),
            exclusions: &[r"^.*\.sig$"],
            secret: None,
            insecure: false,
            suspend: false,
            origin: "image.toolkit.fluxcd.io/v1",
            notes: &[],
            reason: "an empty exclusionList means Flux's default, and Flux never waits less \
                     than 1s",
        },
    ];
    for case in cases {
        let reason = case.reason;
        let resource = only(case.yaml, reason);
        assert_eq!(resource.kind(), "ChartSource", "{reason}");
        let origin = resource.origin().expect(reason);
        assert_eq!(
            (origin.api_version.as_str(), origin.kind.as_str()),
            (case.origin, "ImageRepository"),
            "{reason}"
        );
        assert_eq!(origin.notes.len(), case.notes.len(), "{reason}: {origin:?}");
        for (got, want) in origin.notes.iter().zip(case.notes) {
            assert!(got.starts_with(want), "{reason}: note {got:?} vs {want:?}");
        }
        let Resource::ChartSource { object, settings } = resource else {
            panic!("{reason}: not a ChartSource");
        };
        assert_eq!(
            settings.location,
            ChartLocation::Oci {
                host: case.host.to_owned(),
                repository: case.repository.to_owned()
            },
            "{reason}"
        );
        assert_eq!(
            object.spec.url,
            format!("oci://{}/{}", case.host, case.repository),
            "{reason}: commands read the URL from the object"
        );
        assert_eq!(settings.interval, case.interval, "{reason}");
        assert_eq!(settings.timeout, Some(case.timeout), "{reason}");
        let exclusions: Vec<&str> = settings
            .exclusions
            .iter()
            .map(regex::Regex::as_str)
            .collect();
        assert_eq!(exclusions, case.exclusions, "{reason}");
        assert_eq!(object.spec.exclusion_list, case.exclusions, "{reason}");
        assert_eq!(
            object.spec.secret_ref,
            case.secret.map(|n| LocalRef { name: n.to_owned() }),
            "{reason}"
        );
        assert_eq!(settings.insecure, case.insecure, "{reason}");
        assert_eq!(object.spec.suspend, case.suspend, "{reason}");
    }
}

#[test]
fn image_policies_load_as_version_policies() {
    // (yaml, source namespace, picked tag, suspended, reason)
    type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, bool, &'a str);
    let cases: &[Case<'_>] = &[
        (
            "apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata: {name: app, namespace: flux-system}
spec:
  imageRepositoryRef: {name: app}
  policy:
    semver: {range: '>=1.0.0 <2.0.0'}
",
            None,
            Some("1.10.0"),
            false,
            "v1beta2 semver: the highest version in range (1.10.0 > v1.9.9 > 1.4.2), not the \
             last string",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: app}
spec:
  imageRepositoryRef: {name: app, namespace: flux-system}
  digestReflectionPolicy: Always
  interval: 10m
  policy:
    numerical: {order: desc}
",
            Some("flux-system"),
            Some("9"),
            false,
            "v1 numerical desc, cross-namespace ref; digestReflectionPolicy/interval accepted",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: app}
spec:
  imageRepositoryRef: {name: app}
  policy:
    alphabetical: {}
",
            None,
            Some("v1.9.9"),
            false,
            "alphabetical without order is asc (Flux's default): the last tag alphabetically",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: app}
spec:
  imageRepositoryRef: {name: app}
  suspend: true
  filterTags:
    pattern: '^main-[a-f0-9]+-(?P<ts>[0-9]+)'
    extract: '$ts'
  policy:
    numerical: {order: asc}
",
            None,
            Some("main-abc-100"),
            true,
            "filterTags with extract; suspend is kept in the origin so callers can hold",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: app}
spec:
  imageRepositoryRef: {name: app}
  filterTags: {}
  policy:
    semver: {range: 1.4.x}
",
            None,
            Some("1.4.2"),
            false,
            "an empty filterTags (both fields optional in Flux) filters nothing",
        ),
    ];
    for &(yaml, namespace, picked, suspended, reason) in cases {
        let resource = only(yaml, reason);
        assert_eq!(resource.kind(), "VersionPolicy", "{reason}");
        let origin: Origin = resource.origin().expect(reason);
        assert_eq!(origin.kind, "ImagePolicy", "{reason}");
        assert_eq!(origin.suspended(), suspended, "{reason}");
        let Resource::VersionPolicy { object, policy } = resource else {
            panic!("{reason}: not a VersionPolicy");
        };
        assert_eq!(object.spec.source_ref.name, "app", "{reason}");
        assert_eq!(
            object.spec.source_ref.namespace.as_deref(),
            namespace,
            "{reason}"
        );
        assert_eq!(pick(&policy).as_deref(), picked, "{reason}");
    }
}

#[test]
fn upkeep_kinds_have_no_origin() {
    let resource = only(
        "apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {name: app}
spec:
  sourceRef: {name: app}
  policy: {semver: {range: 1.x}}
",
        "an upkeep VersionPolicy",
    );
    assert_eq!(
        resource.origin(),
        None,
        "only converted objects carry an origin"
    );
}

#[test]
fn a_flux_repository_loads_unchanged() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/flux-repo");
    let loaded = load_path(&dir);
    assert!(
        loaded.is_ok(),
        "a repository set up for Flux image automation loads with no diagnostics:\n{}",
        diagnostics(&loaded)
    );
    let got: Vec<(String, &str, Option<&str>)> = loaded
        .documents
        .iter()
        .map(|d| {
            let origin = d.resource.origin().map_or_else(
                || "-".to_owned(),
                |o| format!("{}/{}", o.api_version, o.kind),
            );
            (origin, d.resource.kind(), d.resource.name())
        })
        .collect();
    let flux = |v: &str, k: &str| format!("image.toolkit.fluxcd.io/{v}/{k}");
    let want = vec![
        ("-".to_owned(), "Deployment", Some("app")),
        ("-".to_owned(), "Kustomization", None),
        ("-".to_owned(), "GitRepository", Some("flux-system")),
        (
            flux("v1beta2", "ImageRepository"),
            "ChartSource",
            Some("app"),
        ),
        (flux("v1beta2", "ImagePolicy"), "VersionPolicy", Some("app")),
        (flux("v1", "ImageRepository"), "ChartSource", Some("nginx")),
        (flux("v1", "ImagePolicy"), "VersionPolicy", Some("nginx")),
        // Read with its GitRepository once every file is read (see tests/flux_automation.rs).
        (
            flux("v1", "ImageUpdateAutomation"),
            "AppUpgradeAutomation",
            Some("flux-system"),
        ),
    ];
    assert_eq!(
        got, want,
        "Flux image kinds become upkeep kinds; the Deployment with $imagepolicy markers, the \
         Kustomization and the GitRepository stay Other, the ImageUpdateAutomation is an \
         AppUpgradeAutomation"
    );
    // The markers in the Deployment refer to flux-system:app and flux-system:nginx; both
    // policies and the sources they name are there under those names.
    for name in ["app", "nginx"] {
        let policy = loaded.documents.iter().find_map(|d| match &d.resource {
            Resource::VersionPolicy { object, .. }
                if object.metadata.name.as_deref() == Some(name) =>
            {
                Some(object)
            }
            _ => None,
        });
        let policy = policy.expect("policy named in a marker is loaded");
        assert_eq!(policy.metadata.namespace.as_deref(), Some("flux-system"));
        assert_eq!(policy.spec.source_ref.name, name);
        assert!(
            policy
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(ORIGIN_ANNOTATION)),
            "the origin marker is an annotation"
        );
    }
    let nginx_notes = loaded.documents.iter().find_map(|d| match &d.resource {
        Resource::ChartSource { object, .. }
            if object.metadata.name.as_deref() == Some("nginx") =>
        {
            object
                .metadata
                .annotations
                .as_ref()?
                .get(NOTES_ANNOTATION)
                .cloned()
        }
        _ => None,
    });
    assert!(
        nginx_notes.is_some_and(|n| n.starts_with("accessFrom ignored")),
        "accessFrom is noted on the converted object"
    );
}

#[test]
fn unknown_flux_fields_are_accepted() {
    // (yaml, reason)
    let cases = [
        (
            "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: app, labels: {a: b}}
spec:
  image: ghcr.io/org/app
  interval: 5m
  futureField: {nested: true}
status:
  canonicalImageName: ghcr.io/org/app
  lastScanResult: {tagCount: 3}
",
            "a field a later Flux adds, and a status, are not errors",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata: {name: app}
spec:
  imageRepositoryRef: {name: app, kind: ImageRepository}
  policy:
    semver: {range: 1.x, futureOption: 1}
  filterTags: {pattern: '.*', somethingNew: x}
extraTopLevel: 1
",
            "unknown fields at any depth of an ImagePolicy are ignored",
        ),
    ];
    for (yaml, reason) in cases {
        only(yaml, reason);
    }
}

#[test]
fn bad_values_are_reported_at_their_flux_field() {
    // (yaml, line, column, field, message piece, hint piece, reason)
    type Case<'a> = (&'a str, usize, usize, &'a str, &'a str, &'a str, &'a str);
    let cases: &[Case<'_>] = &[
        (
            "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: app}
spec:
  imageRepositoryRef: {name: app}
  policy:
    semver:
      range: '>=1.0 <<2'
",
            8,
            14,
            "spec.policy.semver.range",
            "",
            "",
            "a bad range is located as for a VersionPolicy",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata: {name: app}
spec:
  imageRepositoryRef:
    name: ''
  policy:
    semver: {range: 1.x}
",
            6,
            11,
            "spec.imageRepositoryRef.name",
            "empty ImageRepository name",
            "",
            "sourceRef errors are renamed to the Flux field and kind",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: app}
spec:
  imageRepositoryRef: {name: app}
  policy:
    semver: {range: 1.x}
    numerical: {order: asc}
",
            6,
            3,
            "spec.policy",
            "more than one policy kind",
            "exactly one",
            "two policy kinds: same check as upkeep's",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: app}
spec:
  imageRepositoryRef: {name: app}
  filterTags:
    pattern: '^main-(?P<ts>[0-9]+'
  policy:
    numerical: {}
",
            7,
            14,
            "spec.filterTags.pattern",
            "",
            "named groups",
            "a bad filter regex is located",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: app}
spec:
  imageRepositoryRef: {name: app}
  policy:
    alphabetical: {order: ascending}
",
            7,
            27,
            "spec.policy.alphabetical.order",
            "unknown value `ascending`",
            "asc",
            "an order outside Flux's enum is reported with the choices",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: app}
spec:
  image: ghcr.io/org/app:1.0
  interval: 5m
",
            5,
            10,
            "spec.image",
            "must not contain a tag",
            "ImagePolicy chooses the tag",
            "an image with a tag is not a repository",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: app}
spec:
  image: ghcr.io/org/app
  interval: 5 minutes
",
            6,
            13,
            "spec.interval",
            "duration",
            "e.g. 30s",
            "the duration check is upkeep's",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageRepository
metadata: {name: app}
spec:
  image: ghcr.io/org/app
  interval: 5m
  exclusionList:
    - '^.*\\.sig$'
    - '(unclosed'
",
            9,
            7,
            "spec.exclusionList[1]",
            "invalid regex",
            "",
            "each exclusion regex is checked and located",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: app}
spec:
  interval: 5m
",
            5,
            3,
            "spec.image",
            "missing field `image`",
            "add `image`",
            "image is required in Flux too",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1alpha1
kind: ImagePolicy
metadata: {name: app}
spec:
  imageRepositoryRef: {name: app}
  policy: {semver: {range: 1.x}}
",
            1,
            13,
            "apiVersion",
            "unsupported image.toolkit.fluxcd.io version \"v1alpha1\"",
            "image.toolkit.fluxcd.io/v1",
            "a version Flux no longer serves is reported, not silently ignored: markers would \
             otherwise point at a policy upkeep claims is missing",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1beta1
kind: ImageRepository
metadata: {name: app}
spec: {image: nginx, interval: 1m}
",
            1,
            13,
            "apiVersion",
            "unsupported",
            "flux migrate",
            "v1beta1 was removed in image-reflector-controller v1.0",
        ),
    ];
    for &(yaml, line, column, field, message, hint, reason) in cases {
        let loaded = load(yaml);
        assert!(
            loaded.documents.is_empty(),
            "{reason}: an invalid object is left out"
        );
        assert_eq!(
            loaded.diagnostics.len(),
            1,
            "{reason}:\n{}",
            diagnostics(&loaded)
        );
        let d = &loaded.diagnostics[0];
        let ctx = format!("{reason}; got:\n{d}");
        assert_eq!(d.file, Path::new(FILE), "{ctx}");
        assert_eq!((d.line, d.column), (line, column), "line:column, {ctx}");
        assert_eq!(d.field.as_deref(), Some(field), "{ctx}");
        assert!(d.message.contains(message), "message, {ctx}");
        assert!(
            d.hint.as_deref().unwrap_or("").contains(hint),
            "hint, {ctx}"
        );
    }
}

#[test]
fn other_image_kinds_at_any_version_are_other() {
    // (apiVersion, kind, reason)
    let cases = [
        (
            "image.toolkit.fluxcd.io/v1",
            "ImageUpdateSomething",
            "other kinds of the group stay Other",
        ),
        (
            "example.com/v1",
            "ImagePolicy",
            "same kind name in another group is not Flux's",
        ),
    ];
    for (api_version, kind, reason) in cases {
        let yaml =
            format!("apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: x}}\nspec: {{}}\n");
        match only(&yaml, reason) {
            Resource::Other {
                api_version: a,
                kind: k,
                ..
            } => assert_eq!((a.as_str(), k.as_str()), (api_version, kind), "{reason}"),
            other => panic!("{reason}: loaded as {}", other.kind()),
        }
    }
}

#[test]
fn digest_reflection_is_read_from_image_policies_and_version_policies() {
    use upkeep_api::version_policy::DigestReflectionPolicy as D;
    // (yaml, expected, reason)
    let cases: &[(&str, Option<D>, &str)] = &[
        (
            "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: app}
spec:
  imageRepositoryRef: {name: app}
  digestReflectionPolicy: IfNotPresent
  policy: {semver: {range: 1.x}}
",
            Some(D::IfNotPresent),
            "a v1 ImagePolicy's field is carried over",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata: {name: app}
spec:
  imageRepositoryRef: {name: app}
  policy: {semver: {range: 1.x}}
",
            None,
            "v1beta2 has no such field: Never (the default)",
        ),
        (
            "apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {name: app}
spec:
  sourceRef: {name: app}
  digestReflectionPolicy: Always
  policy: {semver: {range: 1.x}}
",
            Some(D::Always),
            "upkeep's own kind has the same field",
        ),
    ];
    for &(yaml, want, reason) in cases {
        let Resource::VersionPolicy { object, .. } = only(yaml, reason) else {
            panic!("{reason}: not a VersionPolicy");
        };
        assert_eq!(object.spec.digest_reflection_policy, want, "{reason}");
        assert!(
            object
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(NOTES_ANNOTATION))
                .is_none_or(|n| !n.contains("digestReflectionPolicy")),
            "{reason}: the field is acted on, not noted as ignored"
        );
    }
    let bad = load(
        "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: app}
spec:
  imageRepositoryRef: {name: app}
  digestReflectionPolicy: Sometimes
  policy: {semver: {range: 1.x}}
",
    );
    let d = bad
        .diagnostics
        .first()
        .expect("an unknown value is reported");
    assert_eq!(d.line, 6, "{d}");
    assert!(
        d.hint
            .as_deref()
            .is_some_and(|h| h.contains("IfNotPresent")),
        "the hint lists the values: {d}"
    );
}

#[test]
fn image_names_are_what_flux_setters_write() {
    // (yaml, image name, reason)
    let cases: &[(&str, Option<&str>, &str)] = &[
        (
            "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: app}
spec: {image: nginx, interval: 5m}
",
            Some("nginx"),
            "spec.image verbatim, not the resolved docker.io/library/nginx",
        ),
        (
            "apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageRepository
metadata: {name: app}
spec: {image: '  index.repo.fake/updated ', interval: 5m}
",
            Some("index.repo.fake/updated"),
            "surrounding blanks are not part of the name",
        ),
        (
            "apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {name: app}
spec: {url: 'oci://ghcr.io/org/charts/app', interval: 5m}
",
            Some("ghcr.io/org/charts/app"),
            "an oci:// ChartSource: host/path of its URL",
        ),
        (
            "apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {name: app}
spec: {url: 'https://charts.example.com', chart: app, interval: 5m}
",
            None,
            "a Helm HTTP repository has no image name",
        ),
        (
            "apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {name: app}
spec: {url: 'oci-layout:./charts/app', interval: 5m}
",
            None,
            "an OCI layout directory has no image name",
        ),
    ];
    for &(yaml, want, reason) in cases {
        let Resource::ChartSource { object, .. } = only(yaml, reason) else {
            panic!("{reason}: not a ChartSource");
        };
        assert_eq!(object.image_name().as_deref(), want, "{reason}");
    }
}
