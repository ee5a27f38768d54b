//! Where objects read from files live in the cluster, and which are defined twice.
//!
//! A manifest's own `metadata.namespace` is not always where the object lands: kustomize moves
//! objects with a kustomization's `namespace:` and with patches, and Flux applies what
//! kustomize builds. Markers name the namespace the cluster sees (`# {"$imagepolicy":
//! "apps:podinfo"}` for an ImagePolicy written without a namespace under a kustomization with
//! `namespace: apps`), so [`resolve`] places upkeep's and Flux's image objects the way
//! `kustomize build` would, for the common forms:
//!
//! - `namespace:` of a `kustomization.yaml`, `kustomization.yml` or `Kustomization`, for the
//!   files it lists in `resources:` (and the old `bases:`), through listed directories with
//!   their own kustomization, recursively. As in kustomize, a kustomization's transformers run
//!   after those of the kustomizations it includes, so the outermost `namespace:` wins.
//! - Patches that set `/metadata/namespace`: JSON 6902 operations (`add`/`replace`, `remove`)
//!   in `patches:` or `patchesJson6902:` with a `target` (kind, name, namespace, group,
//!   version: anchored regular expressions, as kustomize's selectors). The order is
//!   kustomize's: `patches`, then `namespace`, then `patchesJson6902` — so a kustomization's
//!   `namespace:` overrides its own `patches:`, and its `patchesJson6902:` override both.
//! - Strategic merge patches never move an object: kustomize (v5, as in Flux) refuses one
//!   without a target whose `metadata.namespace` differs from the object's ("no resource
//!   matches strategic merge patch"), and with a target it sets the patch's name and namespace
//!   to the target's before merging. upkeep does the same: they change nothing here.
//!
//! Only the build roots count: a kustomization that no other kustomization in the repository
//! includes. A file several roots include is in every namespace they put it in (two Flux
//! Kustomizations applying one base create one object per namespace), so one document may
//! become several objects. Files no kustomization includes keep their own namespace.
//!
//! Not supported, and left as written (documented in `docs/`): Flux `Kustomization`
//! `spec.targetNamespace`, `components:`, remote bases (URLs), label or annotation selectors
//! in patch targets, `replacements:`, generators, and kustomizations outside the directory.
//!
//! After placement, [`resolve`] rejects duplicates: the same kind (an `ImagePolicy` and a
//! `VersionPolicy` are one kind for markers, as are `ImageRepository` and `ChartSource`),
//! namespace and name defined twice is an error naming both places; both copies are left out
//! and listed in [`Loaded::invalid`], so exactly what depends on them is held.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::yaml::Value;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use regex::Regex;

use crate::{Diagnostic, Document, InvalidObject, Loaded, Resource};

/// File names kustomize reads as a kustomization, in its order of preference.
pub const KUSTOMIZATION_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The most kustomizations read (a bound for hostile trees; far above real repositories).
const MAX_KUSTOMIZATIONS: usize = 10_000;

/// The most files one build root may include, counting a file once per way it is reached:
/// bases that include shared bases form diamonds, and a hostile tree of nested diamonds would
/// otherwise make the count grow exponentially.
pub const MAX_INCLUDED: usize = 100_000;

/// Places every upkeep and Flux image object of `loaded` (read from under `root`) in the
/// namespace kustomize would give it, then rejects duplicates (see the module header).
pub fn resolve(root: &Path, loaded: &mut Loaded) {
    place(root, loaded);
    reject_duplicates(loaded);
}

/// A change of `metadata.namespace`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Set(String),
    Remove,
}

/// Which objects a patch applies to.
#[derive(Debug, Clone, Default)]
struct Target {
    group: Option<Regex>,
    version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
}

/// One namespace transformation, in the order kustomize runs them.
#[derive(Debug, Clone)]
enum Step {
    Namespace(String),
    Patch(Target, Change),
}

#[derive(Debug, Default)]
struct Kustomization {
    /// The kustomization file.
    file: PathBuf,
    resources: Vec<String>,
    /// Steps, in kustomize's order.
    steps: Vec<Step>,
}

/// What an object looks like to a patch target.
struct Identity<'a> {
    api_version: &'a str,
    kind: &'a str,
    name: &'a str,
}

fn anchored(pattern: &str) -> Option<Regex> {
    Regex::new(&format!("^(?:{pattern})$")).ok()
}

fn str_of<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// A kustomize `target:` (selector). `None` when it cannot be honoured (an invalid regular
/// expression, or label/annotation selectors, which upkeep does not evaluate).
fn target_of(v: &Value) -> Option<Target> {
    if v.get("labelSelector").is_some() || v.get("annotationSelector").is_some() {
        return None;
    }
    let field = |k: &str| -> Result<Option<Regex>, ()> {
        match str_of(v, k) {
            None | Some("") => Ok(None),
            Some(p) => anchored(p).map(Some).ok_or(()),
        }
    };
    Some(Target {
        group: field("group").ok()?,
        version: field("version").ok()?,
        kind: field("kind").ok()?,
        name: field("name").ok()?,
        namespace: field("namespace").ok()?,
    })
}

/// The namespace change of JSON 6902 operations (the last one on `/metadata/namespace`).
fn json6902_change(ops: &[Value]) -> Option<Change> {
    let mut change = None;
    for op in ops {
        if str_of(op, "path") != Some("/metadata/namespace") {
            continue;
        }
        match str_of(op, "op") {
            Some("add" | "replace") => {
                if let Some(ns) = op.get("value").and_then(Value::as_str) {
                    change = Some(Change::Set(ns.to_owned()));
                }
            }
            Some("remove") => change = Some(Change::Remove),
            _ => {}
        }
    }
    change
}

/// The documents of a patch: inline text, or a file next to the kustomization (never outside
/// `root`).
fn patch_docs(root: &Path, dir: &Path, inline: Option<&str>, path: Option<&str>) -> Vec<Value> {
    let text = match (inline, path) {
        (Some(t), _) => t.to_owned(),
        (None, Some(p)) => match inside(root, &dir.join(p)) {
            Some(file) => match crate::walk::read_text(&file) {
                Ok(t) => t,
                Err(_) => return Vec::new(),
            },
            None => return Vec::new(),
        },
        (None, None) => return Vec::new(),
    };
    crate::yaml::documents(&text)
}

/// The steps of one patch entry: JSON 6902 operations (a list) with a target. Strategic merge
/// documents never move an object (see the module header).
fn patch_steps(docs: &[Value], target: &Target, out: &mut Vec<Step>) {
    for doc in docs {
        if let Some(ops) = doc.as_sequence()
            && let Some(c) = json6902_change(ops)
        {
            out.push(Step::Patch(target.clone(), c));
        }
    }
}

/// `path` resolved through links, when it exists and stays inside `root`.
fn inside(root: &Path, path: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(path).ok()?;
    real.starts_with(root).then_some(real)
}

fn parse_kustomization(root: &Path, dir: &Path, text: &str) -> Option<Kustomization> {
    let v: Value = crate::yaml::from_str(text).ok()?;
    let kind = str_of(&v, "kind");
    let api_version = str_of(&v, "apiVersion").unwrap_or("");
    // A Flux `Kustomization` (or a kustomize `Component`) in a file of that name is not a
    // kustomization file.
    if api_version.starts_with("kustomize.toolkit.fluxcd.io")
        || kind.is_some_and(|k| k != "Kustomization")
    {
        return None;
    }
    let list = |key: &str| -> Vec<&Value> {
        v.get(key)
            .and_then(Value::as_sequence)
            .map(|s| s.iter().collect())
            .unwrap_or_default()
    };
    let mut k = Kustomization::default();
    for key in ["resources", "bases"] {
        k.resources.extend(
            list(key)
                .into_iter()
                .filter_map(Value::as_str)
                .map(str::to_owned),
        );
    }
    for entry in list("patches") {
        let Some(target) = entry.get("target").and_then(target_of) else {
            continue;
        };
        let docs = patch_docs(root, dir, str_of(entry, "patch"), str_of(entry, "path"));
        patch_steps(&docs, &target, &mut k.steps);
    }
    if let Some(ns) = str_of(&v, "namespace").filter(|n| !n.is_empty()) {
        k.steps.push(Step::Namespace(ns.to_owned()));
    }
    for entry in list("patchesJson6902") {
        let Some(target) = entry.get("target").and_then(target_of) else {
            continue;
        };
        let docs = patch_docs(root, dir, str_of(entry, "patch"), str_of(entry, "path"));
        patch_steps(&docs, &target, &mut k.steps);
    }
    Some(k)
}

/// Every kustomization under `root` (real directory → kustomization), directories linked
/// from elsewhere and hidden directories not entered.
fn find_kustomizations(root: &Path) -> BTreeMap<PathBuf, Kustomization> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if out.len() >= MAX_KUSTOMIZATIONS {
            break;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names = BTreeSet::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() && !name.starts_with('.') {
                stack.push(e.path());
            } else if t.is_file() {
                names.insert(name);
            }
        }
        if let Some(name) = KUSTOMIZATION_NAMES.iter().find(|n| names.contains(**n))
            && let Ok(text) = crate::walk::read_text(&dir.join(name))
            && let Some(mut k) = parse_kustomization(root, &dir, &text)
        {
            k.file = dir.join(name);
            out.insert(dir, k);
        }
    }
    out
}

/// Every file a build of `dir` includes, with the steps that apply to it, in order.
/// Stops at [`MAX_INCLUDED`] entries (then `out` is longer than that and the caller gives up
/// on this root).
fn build(
    root: &Path,
    dir: &Path,
    all: &BTreeMap<PathBuf, Kustomization>,
    visiting: &mut BTreeSet<PathBuf>,
    out: &mut Vec<(PathBuf, Vec<Step>)>,
) {
    let Some(k) = all.get(dir) else { return };
    if !visiting.insert(dir.to_path_buf()) {
        return;
    }
    let start = out.len();
    for r in &k.resources {
        if out.len() > MAX_INCLUDED {
            break;
        }
        if r.contains("://") || r.starts_with("git@") || r.starts_with("github.com/") {
            continue;
        }
        let Some(real) = inside(root, &dir.join(r)) else {
            continue;
        };
        if real.is_dir() {
            build(root, &real, all, visiting, out);
        } else {
            out.push((real, Vec::new()));
        }
    }
    if out.len() <= MAX_INCLUDED {
        for (_, steps) in &mut out[start..] {
            steps.extend(k.steps.iter().cloned());
        }
    }
    visiting.remove(dir);
}

/// Every included file (real path) with the step lists of the roots that include it, and the
/// roots given up on (more than [`MAX_INCLUDED`] inclusions).
fn placements(root: &Path) -> (BTreeMap<PathBuf, Vec<Vec<Step>>>, Vec<PathBuf>) {
    let all = find_kustomizations(root);
    let mut included = BTreeSet::new();
    for (dir, k) in &all {
        for r in &k.resources {
            if let Some(real) = inside(root, &dir.join(r))
                && real != *dir
                && all.contains_key(&real)
            {
                included.insert(real);
            }
        }
    }
    let mut out: BTreeMap<PathBuf, Vec<Vec<Step>>> = BTreeMap::new();
    let mut too_many = Vec::new();
    for dir in all.keys().filter(|d| !included.contains(*d)) {
        let mut files = Vec::new();
        build(root, dir, &all, &mut BTreeSet::new(), &mut files);
        if files.len() > MAX_INCLUDED {
            too_many.push(all[dir].file.clone());
            continue;
        }
        for (file, steps) in files {
            out.entry(file).or_default().push(steps);
        }
    }
    (out, too_many)
}

fn meta(r: &Resource) -> Option<&ObjectMeta> {
    match r {
        Resource::ChartSource { object, .. } => Some(&object.metadata),
        Resource::VersionPolicy { object, .. } => Some(&object.metadata),
        Resource::AppUpgradeAutomation(o) => Some(&o.metadata),
        Resource::MaintenanceSchedule { object, .. } => Some(&object.metadata),
        Resource::ClusterUpgrade(o) => Some(&o.metadata),
        Resource::ClusterUpgradePolicy(o) => Some(&o.metadata),
        _ => None,
    }
}

fn meta_mut(r: &mut Resource) -> Option<&mut ObjectMeta> {
    match r {
        Resource::ChartSource { object, .. } => Some(&mut object.metadata),
        Resource::VersionPolicy { object, .. } => Some(&mut object.metadata),
        Resource::AppUpgradeAutomation(o) => Some(&mut o.metadata),
        Resource::MaintenanceSchedule { object, .. } => Some(&mut object.metadata),
        Resource::ClusterUpgrade(o) => Some(&mut o.metadata),
        Resource::ClusterUpgradePolicy(o) => Some(&mut o.metadata),
        _ => None,
    }
}

/// The `apiVersion` and `kind` the object was written with (a Flux kind for converted ones).
fn written_as(r: &Resource) -> (String, String) {
    match r.origin() {
        Some(o) => (o.api_version, o.kind),
        None => (crate::API_VERSION.to_owned(), r.kind().to_owned()),
    }
}

impl Target {
    fn matches(&self, id: &Identity<'_>, namespace: Option<&str>) -> bool {
        let (group, version) = id
            .api_version
            .split_once('/')
            .unwrap_or(("", id.api_version));
        let test = |re: &Option<Regex>, s: &str| re.as_ref().is_none_or(|re| re.is_match(s));
        test(&self.group, group)
            && test(&self.version, version)
            && test(&self.kind, id.kind)
            && test(&self.name, id.name)
            // kustomize matches an object without a namespace as `default`.
            && test(&self.namespace, namespace.unwrap_or("default"))
    }
}

/// The namespace after `steps`, starting from `own`.
fn run(steps: &[Step], id: &Identity<'_>, own: Option<String>) -> Option<String> {
    let mut ns = own;
    for step in steps {
        match step {
            Step::Namespace(n) => ns = Some(n.clone()),
            Step::Patch(t, change) if t.matches(id, ns.as_deref()) => {
                ns = match change {
                    Change::Set(n) => Some(n.clone()),
                    Change::Remove => None,
                };
            }
            Step::Patch(..) => {}
        }
    }
    ns
}

fn place(root: &Path, loaded: &mut Loaded) {
    let Ok(root) = std::fs::canonicalize(root) else {
        return;
    };
    if !root.is_dir() {
        return;
    }
    let (placed, too_many) = placements(&root);
    for file in too_many {
        loaded.diagnostics.push(Diagnostic {
            file,
            line: 1,
            column: 1,
            offset: 0,
            field: Some("resources".to_owned()),
            message: format!(
                "this kustomization includes more than {MAX_INCLUDED} files, counting each \
                 once per way it is reached; upkeep does not place the namespaces of what it \
                 builds"
            ),
            hint: Some(
                "bases that include the same bases repeatedly multiply; include each base once"
                    .to_owned(),
            ),
        });
    }
    if placed.is_empty() {
        return;
    }
    let mut real_paths: BTreeMap<PathBuf, Option<PathBuf>> = BTreeMap::new();
    let documents = std::mem::take(&mut loaded.documents);
    for doc in documents {
        let Some(own) = meta(&doc.resource) else {
            loaded.documents.push(doc);
            continue;
        };
        let real = real_paths
            .entry(doc.file.clone())
            .or_insert_with(|| std::fs::canonicalize(&doc.file).ok())
            .clone();
        let Some(lists) = real.as_ref().and_then(|r| placed.get(r)) else {
            loaded.documents.push(doc);
            continue;
        };
        let (api_version, kind) = written_as(&doc.resource);
        let name = own.name.clone().unwrap_or_default();
        let id = Identity {
            api_version: &api_version,
            kind: &kind,
            name: &name,
        };
        let namespaces: BTreeSet<Option<String>> = lists
            .iter()
            .map(|steps| run(steps, &id, own.namespace.clone()))
            .collect();
        for ns in namespaces {
            let mut copy = doc.clone();
            if let Some(m) = meta_mut(&mut copy.resource) {
                m.namespace = ns;
            }
            loaded.documents.push(copy);
        }
    }
}

/// The class of objects one namespace/name identifies: Flux kinds are the upkeep kinds they
/// are read as.
fn class(r: &Resource) -> Option<&'static str> {
    match r {
        Resource::ChartSource { .. } => Some("ChartSource"),
        Resource::VersionPolicy { .. } => Some("VersionPolicy"),
        Resource::AppUpgradeAutomation(_) => Some("AppUpgradeAutomation"),
        Resource::MaintenanceSchedule { .. } => Some("MaintenanceSchedule"),
        Resource::ClusterUpgrade(_) => Some("ClusterUpgrade"),
        Resource::ClusterUpgradePolicy(_) => Some("ClusterUpgradePolicy"),
        _ => None,
    }
}

fn reject_duplicates(loaded: &mut Loaded) {
    type Key = (&'static str, String, String);
    let mut seen: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    for (i, doc) in loaded.documents.iter().enumerate() {
        let (Some(c), Some(m)) = (class(&doc.resource), meta(&doc.resource)) else {
            continue;
        };
        let (ns, name) = crate::namespaced_name(m);
        seen.entry((c, ns, name)).or_default().push(i);
    }
    let mut drop = BTreeSet::new();
    for ((class, ns, name), indexes) in seen {
        if indexes.len() < 2 {
            continue;
        }
        let places: Vec<String> = indexes
            .iter()
            .map(|&i| {
                let d = &loaded.documents[i];
                format!(
                    "{} at {}:{}",
                    written_as(&d.resource).1,
                    d.file.display(),
                    d.line
                )
            })
            .collect();
        for &i in &indexes {
            let d: &Document = &loaded.documents[i];
            let others: Vec<&str> = indexes
                .iter()
                .zip(&places)
                .filter(|(j, _)| **j != i)
                .map(|(_, p)| p.as_str())
                .collect();
            let message = format!(
                "{} {ns}/{name} is defined more than once: here and as {}",
                written_as(&d.resource).1,
                others.join(", ")
            );
            loaded.diagnostics.push(Diagnostic {
                file: d.file.clone(),
                line: d.line,
                column: 1,
                offset: 0,
                field: Some("metadata.name".to_owned()),
                message: message.clone(),
                hint: Some(format!(
                    "keep one definition of {ns}/{name}, or rename one (namespaces as kustomize \
                     places them: a kustomization's `namespace:` or a patch of \
                     /metadata/namespace count); what depends on it is held until then"
                )),
            });
            loaded.invalid.push(InvalidObject {
                file: d.file.clone(),
                line: d.line,
                kind: class.to_owned(),
                namespace: Some(ns.clone()),
                name: Some(name.clone()),
                path: match &d.resource {
                    Resource::AppUpgradeAutomation(a) => a.spec.path.clone(),
                    _ => None,
                },
                message,
            });
            drop.insert(i);
        }
    }
    if !drop.is_empty() {
        let mut i = 0;
        loaded.documents.retain(|_| {
            let keep = !drop.contains(&i);
            i += 1;
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id<'a>(kind: &'a str, name: &'a str) -> Identity<'a> {
        Identity {
            api_version: "image.toolkit.fluxcd.io/v1",
            kind,
            name,
        }
    }

    type Case<'a> = (
        Vec<Step>,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
    );

    #[test]
    fn steps_run_in_order_and_targets_match_like_kustomize_selectors() {
        let t = |kind: &str, name: Option<&str>, ns: Option<&str>| Target {
            kind: anchored(kind),
            name: name.and_then(anchored),
            namespace: ns.and_then(anchored),
            ..Target::default()
        };
        let set = |n: &str| Change::Set(n.to_owned());
        // (steps, kind, own namespace, expected, reason)
        let cases: Vec<Case<'_>> = vec![
            (
                vec![Step::Namespace("apps".into())],
                "ImagePolicy",
                None,
                Some("apps"),
                "namespace: sets a missing namespace",
            ),
            (
                vec![Step::Namespace("apps".into())],
                "ImagePolicy",
                Some("flux-system"),
                Some("apps"),
                "namespace: overrides a written one (kustomize's default)",
            ),
            (
                vec![
                    Step::Namespace("inner".into()),
                    Step::Namespace("outer".into()),
                ],
                "ImagePolicy",
                None,
                Some("outer"),
                "the including kustomization runs last: the outermost wins",
            ),
            (
                vec![Step::Patch(t("Image.*", None, None), set("patched"))],
                "ImageRepository",
                None,
                Some("patched"),
                "a target kind is an anchored regular expression",
            ),
            (
                vec![Step::Patch(t("Image", None, None), set("patched"))],
                "ImagePolicy",
                Some("own"),
                Some("own"),
                "anchored: Image does not match ImagePolicy",
            ),
            (
                vec![Step::Patch(
                    t("ImagePolicy", Some("other"), None),
                    set("patched"),
                )],
                "ImagePolicy",
                Some("own"),
                Some("own"),
                "another name is not patched",
            ),
            (
                vec![Step::Patch(
                    t("ImagePolicy", None, Some("default")),
                    set("patched"),
                )],
                "ImagePolicy",
                None,
                Some("patched"),
                "no namespace matches the target namespace `default`",
            ),
            (
                vec![
                    Step::Patch(t("ImagePolicy", None, Some("a")), set("b")),
                    Step::Patch(t("ImagePolicy", None, Some("b")), set("c")),
                ],
                "ImagePolicy",
                Some("a"),
                Some("c"),
                "a later patch's target sees the namespace an earlier one set",
            ),
            (
                vec![Step::Patch(t("ImagePolicy", None, None), Change::Remove)],
                "ImagePolicy",
                Some("a"),
                None,
                "remove drops the namespace",
            ),
        ];
        for (steps, kind, own, want, reason) in cases {
            let got = run(&steps, &id(kind, "app"), own.map(str::to_owned));
            assert_eq!(got.as_deref(), want, "{reason}");
        }
    }

    #[test]
    fn patch_documents_say_what_they_change() {
        let ops: Vec<Value> = crate::yaml::from_str(
            "- {op: add, path: /metadata/labels/x, value: y}\n- {op: replace, path: /metadata/namespace, value: apps}\n",
        )
        .expect("yaml");
        assert_eq!(json6902_change(&ops), Some(Change::Set("apps".into())));
        let ops: Vec<Value> =
            crate::yaml::from_str("- {op: test, path: /metadata/namespace, value: apps}\n")
                .expect("yaml");
        assert_eq!(json6902_change(&ops), None, "test changes nothing");
        let ops: Vec<Value> = crate::yaml::from_str(
            "- {op: replace, path: /metadata/namespace, value: a}\n- {op: remove, path: /metadata/namespace}\n",
        )
        .expect("yaml");
        assert_eq!(
            json6902_change(&ops),
            Some(Change::Remove),
            "the last one counts"
        );
    }
}
