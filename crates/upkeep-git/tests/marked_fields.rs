//! `plan_text` per field: what each marker form writes (Flux's setters), what is held and why,
//! foreign markers, and the rule that one policy's fields in a file are written together.

use std::collections::BTreeMap;

use jiff::Timestamp;
use upkeep_core::schedule::Schedule;
use upkeep_git::marked_fields::{
    Action, Lookup, PolicyDecision, is_manifest_path, plan_text, scopes,
};

/// Policies by `namespace/name`, and schedules.
#[derive(Default)]
struct Policies(BTreeMap<String, PolicyDecision>, BTreeMap<String, Schedule>);

impl Policies {
    fn with(mut self, reference: &str, d: PolicyDecision) -> Self {
        self.0.insert(reference.to_owned(), d);
        self
    }
}

impl Lookup for Policies {
    fn policy(&self, namespace: &str, name: &str) -> Option<&PolicyDecision> {
        self.0.get(&format!("{namespace}/{name}"))
    }
    fn schedule(&self, namespace: &str, name: &str) -> Option<&Schedule> {
        self.1.get(&format!("{namespace}/{name}"))
    }
    fn unparsable(&self, _rel: &str) -> bool {
        false
    }
    fn policy_elsewhere(&self, namespace: &str, name: &str) -> Option<String> {
        let found: Vec<&str> = self
            .0
            .keys()
            .filter_map(|k| k.split_once('/'))
            .filter(|(ns, n)| *n == name && *ns != namespace)
            .map(|(ns, _)| ns)
            .collect();
        match found.as_slice() {
            [one] => Some((*one).to_owned()),
            _ => None,
        }
    }
}

fn decision(selected: &str, image: Option<&str>, digest: Option<&str>) -> PolicyDecision {
    PolicyDecision {
        selected: Some(selected.to_owned()),
        image: image.map(str::to_owned),
        digest: digest.map(str::to_owned),
        ..PolicyDecision::default()
    }
}

fn plan(lookup: &Policies, rel: &str, text: &str) -> upkeep_git::marked_fields::FilePlan {
    let scope = scopes(&[], lookup).expect("no automations").remove(0);
    plan_text(rel, text, &scope, lookup, Timestamp::UNIX_EPOCH)
}

#[test]
fn a_version_that_does_not_fit_one_field_holds_its_policy_only() {
    let lookup = Policies::default()
        .with("n/chart", decision("1.10", None, None))
        .with("n/other", decision("1.10", None, None));
    let text = "plain: 1.9 # {\"$upkeep\": \"n:chart\"}\nquoted: \"1.9\" # {\"$upkeep\": \"n:chart\"}\nother: \"1.9\" # {\"$upkeep\": \"n:other\"}\n";
    let p = plan(&lookup, "f.yaml", text);
    let fields: Vec<(usize, Action)> = p.fields.iter().map(|f| (f.line, f.action)).collect();
    assert_eq!(
        fields,
        [(1, Action::Error), (2, Action::Held), (3, Action::Write)],
        "a plain 1.10 would read as the float 1.1: that field is an error, its policy's other \
         field is held with it, another policy's field is written"
    );
    assert!(
        p.fields[0].reason.contains("hint:"),
        "{}",
        p.fields[0].reason
    );
    assert!(
        p.fields[1].reason.contains("held with line 1"),
        "{}",
        p.fields[1].reason
    );
    assert_eq!(
        p.new_text.as_deref(),
        Some(
            "plain: 1.9 # {\"$upkeep\": \"n:chart\"}\nquoted: \"1.9\" # {\"$upkeep\": \"n:chart\"}\nother: \"1.10\" # {\"$upkeep\": \"n:other\"}\n"
        )
    );
    assert_eq!(p.changes.len(), 1);
}

/// (line, action, current, target, kind, words in the reason, reason)
type Row<'a> = (
    &'a str,
    Action,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    &'a [&'a str],
    &'a str,
);

/// Every form, planned: the current value exactly as in the file, the target exactly as it
/// will be written, the action, and the reason's key words.
#[test]
fn forms_table() {
    const D: &str = "sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be";
    let helm = PolicyDecision {
        no_image: Some("ChartSource flux-system/hello is a Helm repository".to_owned()),
        ..decision("0.1.2", None, None)
    };
    let lookup = Policies::default()
        .with(
            "ns/img",
            decision("v1.0.1", Some("index.repo.fake/updated"), None),
        )
        .with("ns/dig", decision("v1.0.0", Some("image"), Some(D)))
        .with("flux-system/hello", helm)
        .with("ns/same", decision("v1.0.0", Some("image"), None))
        .with("other-ns/moved", decision("1.0.0", None, None));
    let rows: &[Row<'_>] = &[
        (
            r#"image: image:v1.0.0 # {"$imagepolicy": "ns:img"}"#,
            Action::Write,
            "image:v1.0.0",
            Some("index.repo.fake/updated:v1.0.1"),
            Some("patch"),
            &[],
            "bare: the whole reference; the kind is the tag step",
        ),
        (
            r#"tag: v1.0.0 # {"$imagepolicy": "ns:img:tag"}"#,
            Action::Write,
            "v1.0.0",
            Some("v1.0.1"),
            Some("patch"),
            &[],
            ":tag",
        ),
        (
            r#"name: replaced # {"$imagepolicy": "ns:img:name"}"#,
            Action::Write,
            "replaced",
            Some("index.repo.fake/updated"),
            Some("change"),
            &[],
            ":name alone: no tag step, scheduled strictly",
        ),
        (
            r#"digest: sha256:1234567890abcdef # {"$imagepolicy": "ns:dig:digest"}"#,
            Action::Write,
            "sha256:1234567890abcdef",
            Some(D),
            Some("change"),
            &[],
            ":digest",
        ),
        (
            r#"image: image:v1.0.0 # {"$imagepolicy": "ns:same"}"#,
            Action::UpToDate,
            "image:v1.0.0",
            Some("image:v1.0.0"),
            None,
            &["latest allowed"],
            "up to date is exact equality",
        ),
        (
            r#"image: image:v1.0.0@sha256:00 # {"$imagepolicy": "ns:same"}"#,
            Action::Write,
            "image:v1.0.0@sha256:00",
            Some("image:v1.0.0"),
            Some("change"),
            &[],
            "a digest the policy does not reflect goes, as Flux writes it",
        ),
        (
            r#"  version: 0.1.0 # {"$imagepolicy": "flux-system:hello"}"#,
            Action::Held,
            "0.1.0",
            None,
            None,
            &[r#"did you mean "flux-system:hello:tag"?"#],
            "issue 12: a bare marker on an App CR version is held, current shown as in the file",
        ),
        (
            r#"image: app:1.0 # {"$imagepolicy": "flux-system:hello"}"#,
            Action::Held,
            "app:1.0",
            None,
            None,
            &[
                "ChartSource flux-system/hello is a Helm repository: it has no image name",
                r#"use "flux-system:hello:tag""#,
            ],
            "a bare marker on a Helm repository's policy",
        ),
        (
            r#"digest: sha256:00 # {"$imagepolicy": "ns:img:digest"}"#,
            Action::Held,
            "sha256:00",
            None,
            None,
            &["digestReflectionPolicy: IfNotPresent or Always"],
            ":digest without reflected digests",
        ),
        (
            r#"image: app:1.0 # {"$imagepolicy": "elsewhere:policy"}"#,
            Action::NotManaged,
            "app:1.0",
            None,
            None,
            &["left to whatever manages it"],
            "a foreign $imagepolicy marker is left alone, not an error",
        ),
        (
            r#"image: app:1.0 # {"$imagepolicy": "flux-system:moved"}"#,
            Action::NotManaged,
            "app:1.0",
            None,
            None,
            &[r#"did you mean "other-ns:moved"?"#],
            "the one policy of that name in another namespace is named",
        ),
        (
            r#"tag: "1.0" # {"$imagepolicy": "flux-system:moved:tag"}"#,
            Action::NotManaged,
            "1.0",
            None,
            None,
            &[r#"did you mean "other-ns:moved:tag"?"#],
            "with the marker's form",
        ),
        (
            r#"image: app:1.0 # {"$imagepolicy": "${NS}:app"}"#,
            Action::NotManaged,
            "app:1.0",
            None,
            None,
            &["unresolved variable", "left alone"],
            "a $imagepolicy marker naming a variable matches no policy (Flux leaves it alone); its value is shown",
        ),
        (
            r#"version: 1.0.0 # {"$upkeep": "${NS}:app"}"#,
            Action::Error,
            "",
            None,
            None,
            &["unresolved variable"],
            "an $upkeep marker naming a variable stays an error (upkeep's own)",
        ),
        (
            r#"version: 1.0.0 # {"$upkeep": "flux-system:moved"}"#,
            Action::Error,
            "1.0.0",
            None,
            None,
            &[
                "no VersionPolicy flux-system/moved",
                r#"did you mean "other-ns:moved"?"#,
            ],
            "an $upkeep marker with no policy stays an error, with the same hint",
        ),
    ];
    for (line, action, current, target, kind, words, reason) in rows {
        let text = format!("{line}\n");
        let p = plan(&lookup, "f.yaml", &text);
        assert_eq!(p.fields.len(), 1, "{reason}: {:?}", p.fields);
        let f = &p.fields[0];
        assert_eq!(f.action, *action, "{reason}: {}", f.reason);
        assert_eq!(f.current, *current, "{reason}");
        assert_eq!(f.target.as_deref(), *target, "{reason}");
        assert_eq!(f.kind, *kind, "{reason}");
        for w in *words {
            assert!(f.reason.contains(w), "{reason}: {:?} lacks {w:?}", f.reason);
        }
        match (action, &p.new_text) {
            (Action::Write, Some(new)) => {
                assert!(new.contains(target.unwrap()), "{reason}: {new}");
                assert_eq!(p.changes[0].old, *current, "{reason}: change record");
                assert_eq!(p.changes[0].new, target.unwrap(), "{reason}: change record");
            }
            (Action::Write, None) => panic!("{reason}: nothing written"),
            (_, new) => assert!(new.is_none(), "{reason}: wrote {new:?}"),
        }
    }
}

/// A kustomize images entry: newTag and newDigest move together, or neither does.
#[test]
fn one_policy_is_written_together() {
    let text = "images:\n- name: app\n  newTag: v1.0.0 # {\"$imagepolicy\": \"ns:app:tag\"}\n  newDigest: sha256:00 # {\"$imagepolicy\": \"ns:app:digest\"}\n";
    let lookup = Policies::default().with("ns/app", decision("v2.0.0", Some("r/app"), None));
    let p = plan(&lookup, "kustomization.yaml", text);
    let fields: Vec<(usize, Action)> = p.fields.iter().map(|f| (f.line, f.action)).collect();
    assert_eq!(fields, [(3, Action::Held), (4, Action::Held)]);
    assert!(p.new_text.is_none());
    let lookup = Policies::default().with(
        "ns/app",
        decision("v2.0.0", Some("r/app"), Some("sha256:11")),
    );
    let p = plan(&lookup, "kustomization.yaml", text);
    let fields: Vec<(usize, Action, Option<&str>)> = p
        .fields
        .iter()
        .map(|f| (f.line, f.action, f.kind))
        .collect();
    assert_eq!(
        fields,
        [
            (3, Action::Write, Some("major")),
            (4, Action::Write, Some("major"))
        ],
        "the digest field takes the tag step's kind"
    );
    assert_eq!(p.changes.len(), 2);
}

#[test]
fn manifest_paths() {
    // (path, read?, reason)
    let cases = [
        ("apps/a.yaml", true, ".yaml"),
        ("apps/a.yml", true, ".yml"),
        (
            "apps/Kustomization",
            true,
            "kustomize's extensionless file, as Flux reads it",
        ),
        ("Kustomization", true, "at the root"),
        ("apps/kustomization", false, "only the exact name"),
        ("apps/Kustomization.txt", false, "another extension"),
        (".github/Kustomization", false, "a hidden directory"),
        ("apps/README.md", false, "not YAML"),
    ];
    for (path, want, reason) in cases {
        assert_eq!(is_manifest_path(path), want, "{reason}: {path}");
    }
}

/// Two fields of one policy whose steps differ in kind: the major one is excluded by the
/// schedule, so the patch one (open) is held with it rather than written alone.
#[test]
fn a_schedule_that_holds_one_field_holds_its_policy() {
    let loaded = upkeep_api::load_str(
        std::path::Path::new("fleet.yaml"),
        "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: no-majors, namespace: ns}
spec:
  alwaysAllowed: true
  maintenanceExclusions:
  - name: no-majors
    startTime: \"1969-01-01T00:00:00Z\"
    endTime: \"1971-01-01T00:00:00Z\"
    scope: NoMajorUpgrades
---
apiVersion: upkeep.dev/v1alpha1
kind: AppUpgradeAutomation
metadata: {name: apps, namespace: ns}
spec:
  git: {url: https://example.com/r.git}
  scheduleRef: {name: no-majors}
  commit: {author: {name: upkeep, email: upkeep@example.com}}
",
    );
    let mut lookup = Policies::default().with("ns/app", decision("v2.0.1", Some("r/app"), None));
    let mut automations = Vec::new();
    for d in loaded.documents {
        match d.resource {
            upkeep_api::Resource::MaintenanceSchedule { schedule, .. } => {
                lookup.1.insert("ns/no-majors".to_owned(), *schedule);
            }
            upkeep_api::Resource::AppUpgradeAutomation(a) => automations.push(*a),
            other => panic!("unexpected {}", other.kind()),
        }
    }
    assert_eq!(
        (lookup.1.len(), automations.len()),
        (1, 1),
        "{:?}",
        loaded.invalid
    );
    let scopes = scopes(&automations, &lookup).expect("scopes");
    let text = "a: r/app:v1.0.0 # {\"$imagepolicy\": \"ns:app\"}\nb: v2.0.0 # {\"$imagepolicy\": \"ns:app:tag\"}\n";
    let p = plan_text("f.yaml", text, &scopes[0], &lookup, Timestamp::UNIX_EPOCH);
    let fields: Vec<(usize, Action, Option<&str>)> = p
        .fields
        .iter()
        .map(|f| (f.line, f.action, f.kind))
        .collect();
    assert_eq!(
        fields,
        [
            (1, Action::Held, Some("major")),
            (2, Action::Held, Some("patch"))
        ],
        "{:?}",
        p.fields
    );
    assert!(
        p.fields[1].reason.contains("held with line 1"),
        "{}",
        p.fields[1].reason
    );
    assert!(p.new_text.is_none());
}
