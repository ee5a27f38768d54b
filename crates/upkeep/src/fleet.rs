//! A fleet as the standalone commands see it: the manifests under a directory, with every
//! ChartSource scanned once and every VersionPolicy decided, at a given `now`.
//!
//! `quickstart` and `plan` read the same things the same way; this is where they do it.
//! The cluster commands (`upgrade`, `freeze`, `status`) read a lighter [`ClusterFleet`] (no
//! scan); ClusterUpgrades and clusters become the rollout core's values in one place,
//! `upkeep_api::cluster_upgrade::inputs`, which the controller uses too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use miette::{IntoDiagnostic, miette};
use upkeep_api::version_policy::DigestReflectionPolicy;
use upkeep_api::{
    AppUpgradeAutomation, ChartSource, ClusterObject, ClusterUpgrade, ClusterUpgradePolicy,
    Resource, SourceSettings, load_resources_keeping, namespaced_name,
};
use upkeep_core::schedule::Schedule;
use upkeep_core::version::{FirstSeenStore, MemoryFirstSeen, Policy};
use upkeep_git::marked_fields::{Lookup, PolicyDecision};
use upkeep_registry::{Credentials, Source, TagList, merge_first_seen, scan_all, tag_infos};
use upkeep_store::KnownDigest;

use crate::Outcome;
use crate::repo_clusters::RepoCluster;

/// A policy's decision over its source's tags.
#[derive(Debug)]
pub(crate) struct Decision {
    pub(crate) range: String,
    pub(crate) considered: usize,
    pub(crate) ignored: usize,
    /// What planning needs: the selected version, a held newer one, pin, labels, suspension.
    pub(crate) allow: PolicyDecision,
}

pub(crate) use upkeep_api::cluster_upgrade::NamedSchedule;

/// ChartSources by (namespace, name), with the manifest file each came from.
type ChartSources = BTreeMap<(String, String), (Box<ChartSource>, Box<SourceSettings>, PathBuf)>;

#[derive(Debug)]
pub(crate) struct Fleet {
    /// Decisions by the policy's (namespace, name).
    pub(crate) policies: BTreeMap<(String, String), Decision>,
    pub(crate) schedules: Vec<NamedSchedule>,
    pub(crate) automations: Vec<AppUpgradeAutomation>,
    pub(crate) cluster_policies: Vec<ClusterUpgradePolicy>,
    pub(crate) clusters: Vec<ClusterObject>,
    /// Files that are not valid YAML (reported when loading), as `/`-separated paths from
    /// the fleet's directory; never planned or edited.
    pub(crate) unparsable: Vec<String>,
    /// The shortest `interval` of any ChartSource or AppUpgradeAutomation (for `upkeep run`).
    pub(crate) min_interval: Option<jiff::SignedDuration>,
    /// The `spec.url` of every ChartSource (what `upkeep run --receiver-addr` matches pushes
    /// against).
    pub(crate) source_urls: Vec<String>,
    /// Upkeep objects that did not load (reported when loading); what depends on them is held.
    pub(crate) invalid: Vec<upkeep_api::InvalidObject>,
    /// Why a VersionPolicy has no decision although it loaded: its source is missing,
    /// invalid or could not be read. By the policy's (namespace, name).
    pub(crate) problems: BTreeMap<(String, String), String>,
    /// The text of every file with a marker when the fleet was loaded, with the file's stamp
    /// then, by real path from the fleet's directory: planning reads a file again only when its
    /// stamp changed (another upkeep, a person, or recovery wrote it meanwhile).
    pub(crate) marked: BTreeMap<String, (String, upkeep_api::walk::Stamp)>,
    /// Every manifest file of the directory when loading met no symlink (then a scope's files
    /// are these files under its path, and planning does not walk again).
    pub(crate) walked: Option<Vec<upkeep_api::walk::WalkedFile>>,
    /// Temporary files a killed upkeep left in the directory; a writer removes them once it
    /// holds the directory's lock.
    pub(crate) leftovers: Vec<PathBuf>,
}

impl Fleet {
    /// Loads `dir`, scans its sources and decides its policies. Invalid manifests are printed
    /// and give `Err(Outcome::Invalid)`.
    pub(crate) fn load(
        dir: &Path,
        now: Timestamp,
        credentials: &Credentials,
    ) -> miette::Result<Result<Fleet, Outcome>> {
        Self::load_with(dir, now, credentials, &MemoryFirstSeen::default())
    }

    /// [`Fleet::load`], remembering when each tag was first seen in `first_seen` (the
    /// standalone store, so `minimumReleaseAge` counts from the first scan that saw a tag).
    pub(crate) fn load_with<S: FirstSeenStore + DigestMemory>(
        dir: &Path,
        now: Timestamp,
        credentials: &Credentials,
        first_seen: &S,
    ) -> miette::Result<Result<Fleet, Outcome>>
    where
        S::Error: std::fmt::Display,
    {
        if !dir.exists() {
            crate::render::error_with_hint(
                &format!("{}: no such file or directory", dir.display()),
                None,
            );
            return Ok(Err(Outcome::Invalid));
        }
        let upkeep_api::Resources {
            loaded,
            kept: marked,
            files: walked,
            leftovers,
        } = load_resources_keeping(dir, &upkeep_core::manifest::may_have_markers);
        // A file that cannot be read as YAML is reported and left alone. An invalid upkeep
        // resource is reported and holds only what depends on it: the fields of an invalid
        // VersionPolicy (or of one whose ChartSource is invalid or unreachable), the fields
        // under an invalid AppUpgradeAutomation's path, the fields whose automation names an
        // invalid schedule. Everything else is planned and written as usual.
        let (broken, invalid): (Vec<_>, Vec<_>) = loaded
            .diagnostics
            .iter()
            .cloned()
            .partition(|d| loaded.unparsable.contains(&d.file));
        if !invalid.is_empty() {
            eprintln!(
                "error: these resources are invalid; what depends on them is held, the rest goes on:"
            );
            crate::render::print_diagnostics(&invalid);
        }
        if !broken.is_empty() {
            eprintln!(
                "warning: these files are not valid YAML or cannot be read; upkeep leaves them alone:"
            );
            crate::render::print_diagnostics(&broken);
        }
        let mut policy_objects = Vec::new();
        let mut chart_sources = ChartSources::new();
        let mut fleet = Fleet {
            policies: BTreeMap::new(),
            schedules: Vec::new(),
            automations: Vec::new(),
            cluster_policies: Vec::new(),
            clusters: Vec::new(),
            min_interval: None,
            source_urls: Vec::new(),
            invalid: loaded.invalid.clone(),
            problems: BTreeMap::new(),
            marked: marked
                .into_iter()
                .map(|(rel, text, stamp)| (rel, (text, stamp)))
                .collect(),
            walked,
            leftovers,
            unparsable: loaded
                .unparsable
                .iter()
                .map(|p| {
                    p.strip_prefix(dir)
                        .unwrap_or(p)
                        .to_string_lossy()
                        .replace('\\', "/")
                })
                .collect(),
        };
        for doc in loaded.documents {
            let origin = doc.resource.origin();
            match doc.resource {
                Resource::VersionPolicy { object, policy } => {
                    let flux = origin.is_some();
                    let suspended = origin
                        .filter(upkeep_api::Origin::suspended)
                        .map(|o| format!("the Flux {} is suspended (spec.suspend: true)", o.kind));
                    policy_objects.push(PolicyObject {
                        object,
                        policy,
                        suspended,
                        flux,
                        file: doc.file,
                        line: doc.line,
                    });
                }
                Resource::ChartSource { object, settings } => {
                    chart_sources.insert(
                        namespaced_name(&object.metadata),
                        (object, settings, doc.file),
                    );
                }
                Resource::MaintenanceSchedule { object, schedule } => {
                    fleet.schedules.push(named_schedule(&object, *schedule)?);
                }
                Resource::AppUpgradeAutomation(a) => fleet.automations.push(*a),
                Resource::ClusterUpgradePolicy(p) => fleet.cluster_policies.push(*p),
                Resource::Cluster(c) => fleet.clusters.push(c),
                _ => {}
            }
        }

        let intervals = chart_sources
            .values()
            .map(|(_, settings, _)| settings.interval)
            .chain(
                fleet
                    .automations
                    .iter()
                    .filter_map(|a| upkeep_api::duration::parse_duration(&a.spec.interval).ok()),
            );
        fleet.min_interval = intervals.min();
        fleet.source_urls = chart_sources
            .values()
            .map(|(object, _, _)| object.spec.url.clone())
            .collect();
        let rt = crate::discover::runtime().into_diagnostic()?;
        let (listed, sources) = scan_sources(&rt, &chart_sources, credentials);
        let mut wanted = Vec::new();
        for p in policy_objects {
            let (ns, name) = namespaced_name(&p.object.metadata);
            let names = Names::of(p.flux);
            let source_ns = p
                .object
                .spec
                .source_ref
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| ns.clone());
            let source_name = p.object.spec.source_ref.name.clone();
            let source_key = (source_ns.clone(), source_name.clone());
            let list = match listed.get(&source_key) {
                Some(Ok(list)) => list,
                Some(Err((e, hint))) => {
                    let hint = hint
                        .as_deref()
                        .map(|h| format!(" (hint: {h})"))
                        .unwrap_or_default();
                    fleet.problems.insert(
                        (ns.clone(), name.clone()),
                        format!(
                            "{} {ns}/{name}: its {} {source_ns}/{source_name} could not be read: {e}{hint}",
                            names.policy, names.source
                        ),
                    );
                    continue;
                }
                None => {
                    let at = format!("{}:{}", rel_path(dir, &p.file), p.line);
                    let message = match fleet.invalid_object(
                        "ChartSource",
                        &source_ns,
                        &source_name,
                    ) {
                        Some(why) => format!(
                            "{} {ns}/{name} ({at}): {} names {} {source_ns}/{source_name}, which {why}",
                            names.policy, names.field, names.source
                        ),
                        None => format!(
                            "{} {ns}/{name} ({at}): {} names {} {source_ns}/{source_name}, which is not in {}",
                            names.policy,
                            names.field,
                            names.source,
                            dir.display()
                        ),
                    };
                    eprintln!(
                        "error: {message}\n  hint: add the {} to the directory, or fix {}",
                        names.source, names.field
                    );
                    fleet.problems.insert((ns.clone(), name.clone()), message);
                    continue;
                }
            };
            let range = p
                .object
                .spec
                .policy
                .semver
                .as_ref()
                .map_or_else(|| "-".to_owned(), |s| s.range.clone());
            let mut decision = match decide(&p.policy, list, now, range, first_seen) {
                Ok(d) => d,
                Err(e) => {
                    fleet.problems.insert(
                        (ns.clone(), name.clone()),
                        format!("{} {ns}/{name}: {e}", names.policy),
                    );
                    continue;
                }
            };
            decision.allow.labels = p.object.metadata.labels.clone().unwrap_or_default();
            decision.allow.suspended = p.suspended;
            if let Some((source, ..)) = chart_sources.get(&source_key) {
                decision.allow.no_image = no_image(source, &source_key.0, &source_key.1);
            }
            decision.allow.image = chart_sources
                .get(&source_key)
                .and_then(|(object, _, _)| object.image_name());
            let reflect = p.object.spec.digest_reflection_policy.unwrap_or_default();
            if let Some(tag) = decision.allow.selected.clone()
                && reflect != DigestReflectionPolicy::Never
            {
                wanted.push(Wanted {
                    policy: (ns.clone(), name.clone()),
                    source: source_key,
                    image: decision.allow.image.clone().unwrap_or_default(),
                    tag,
                    reflect,
                    kind: names.policy,
                });
            }
            fleet.policies.insert((ns, name), decision);
        }
        reflect_digests(&rt, &sources, wanted, first_seen, &mut fleet);
        Ok(Ok(fleet))
    }

    /// "is invalid: …" when an object of `kind` named `namespace/name` failed to load.
    pub(crate) fn invalid_object(&self, kind: &str, namespace: &str, name: &str) -> Option<String> {
        self.invalid
            .iter()
            .find(|o| {
                o.kind == kind
                    && o.name.as_deref() == Some(name)
                    && o.namespace.as_deref().unwrap_or("default") == namespace
            })
            .map(|o| {
                format!(
                    "is invalid ({}:{}: {})",
                    o.file.display(),
                    o.line,
                    o.message
                )
            })
    }

    /// The paths of AppUpgradeAutomations that did not load, each with why: nothing under
    /// them is written while they are broken (a broader automation must not take over their
    /// files).
    pub(crate) fn invalid_automations(&self) -> Vec<(String, String)> {
        self.invalid
            .iter()
            .filter(|o| o.kind == "AppUpgradeAutomation")
            .map(|o| {
                let p = o.path.as_deref().unwrap_or("");
                let p = p.trim_start_matches("./").trim_matches('/');
                let p = if p == "." { "" } else { p };
                (
                    p.to_owned(),
                    format!(
                        "AppUpgradeAutomation {}/{} is invalid ({}:{}: {}); nothing under its path is written until it is fixed",
                        o.namespace.as_deref().unwrap_or("default"),
                        o.name.as_deref().unwrap_or("?"),
                        o.file.display(),
                        o.line,
                        o.message
                    ),
                )
            })
            .collect()
    }

    /// The schedule named `name` in `namespace`.
    pub(crate) fn schedule(&self, namespace: &str, name: &str) -> Option<&NamedSchedule> {
        self.schedules
            .iter()
            .find(|s| s.name == name && s.namespace == namespace)
    }
}

impl Lookup for Fleet {
    fn policy(&self, namespace: &str, name: &str) -> Option<&PolicyDecision> {
        self.policies
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|d| &d.allow)
    }

    fn schedule(&self, namespace: &str, name: &str) -> Option<&Schedule> {
        Fleet::schedule(self, namespace, name).map(|s| &s.schedule)
    }

    fn unparsable(&self, rel: &str) -> bool {
        self.unparsable.iter().any(|u| u == rel)
    }

    fn policy_labels(&self) -> Vec<&BTreeMap<String, String>> {
        self.policies.values().map(|d| &d.allow.labels).collect()
    }

    fn policy_problem(&self, namespace: &str, name: &str) -> Option<String> {
        if let Some(p) = self.problems.get(&(namespace.to_owned(), name.to_owned())) {
            return Some(p.clone());
        }
        if self
            .policies
            .contains_key(&(namespace.to_owned(), name.to_owned()))
        {
            return None;
        }
        self.invalid_object("VersionPolicy", namespace, name)
            .map(|why| format!("VersionPolicy {namespace}/{name} {why}"))
    }

    fn schedule_problem(&self, namespace: &str, name: &str) -> Option<String> {
        self.invalid_object("MaintenanceSchedule", namespace, name)
            .map(|why| format!("MaintenanceSchedule {namespace}/{name} {why}"))
    }

    fn policy_elsewhere(&self, namespace: &str, name: &str) -> Option<String> {
        let mut found = self
            .policies
            .keys()
            .chain(self.problems.keys())
            .filter(|(ns, n)| n == name && ns != namespace)
            .map(|(ns, _)| ns)
            .collect::<Vec<_>>();
        found.sort();
        found.dedup();
        match found.as_slice() {
            [one] => Some((*one).clone()),
            _ => None,
        }
    }
}

/// Why a ChartSource has no image name for Flux's bare and `:name` setters (`None` for an
/// `oci://` source, whose repository is one).
fn no_image(source: &ChartSource, namespace: &str, name: &str) -> Option<String> {
    let url = source.spec.url.as_str();
    if url.starts_with("oci://") {
        None
    } else if url.starts_with("oci-layout:") {
        Some(format!(
            "ChartSource {namespace}/{name} is an OCI layout directory"
        ))
    } else {
        Some(format!(
            "ChartSource {namespace}/{name} is a Helm repository"
        ))
    }
}

/// What scanning a ChartSource gave: its key and tags, or why it could not be read (the error
/// and the hint `upkeep versions` gives for it).
type Scanned = BTreeMap<(String, String), Result<(String, TagList), (String, Option<String>)>>;

/// Lists every ChartSource at once (bounded concurrency, per-host connection limits). A source
/// that cannot be set up or read is an error for that source alone (printed once here). The
/// sources are handed back for the digest lookups after the policies decided.
fn scan_sources(
    rt: &tokio::runtime::Runtime,
    chart_sources: &ChartSources,
    credentials: &Credentials,
) -> (Scanned, BTreeMap<(String, String), Source>) {
    let client = crate::discover::client();
    let mut keys = Vec::new();
    let mut sources = Vec::new();
    let mut out = Scanned::new();
    for (key, (object, settings, file)) in chart_sources {
        match crate::discover::source_for(&client, object, settings, file, credentials) {
            Ok(source) => {
                keys.push(key.clone());
                sources.push(source);
            }
            Err(e) => {
                crate::render::error_with_hint(
                    &format!("{} {}/{}: {e}", source_kind(object), key.0, key.1),
                    e.hint(),
                );
                out.insert(key.clone(), Err((e.to_string(), e.hint())));
            }
        }
    }
    let results = rt.block_on(scan_all(&sources, 8, |_| {}));
    for (key, r) in keys.iter().zip(results) {
        let kind = chart_sources
            .get(key)
            .map_or("ChartSource", |(object, ..)| source_kind(object));
        match r.result {
            Ok(list) => {
                out.insert(key.clone(), Ok((r.key, list)));
            }
            Err(e) => {
                crate::render::error_with_hint(
                    &format!("scanning {kind} {}/{}: {e}", key.0, key.1),
                    e.hint(),
                );
                out.insert(key.clone(), Err((e.to_string(), e.hint())));
            }
        }
    }
    (out, keys.into_iter().zip(sources).collect())
}

/// A loaded VersionPolicy (or Flux ImagePolicy) waiting for its source's scan.
struct PolicyObject {
    object: Box<upkeep_api::VersionPolicy>,
    policy: Box<Policy>,
    suspended: Option<String>,
    /// Read from a Flux `ImagePolicy`: messages use Flux's kinds and field names.
    flux: bool,
    file: PathBuf,
    line: usize,
}

/// The kind the user wrote a source as: `ImageRepository` for one read from Flux, else
/// `ChartSource`.
fn source_kind(object: &ChartSource) -> &'static str {
    if upkeep_api::flux::from_flux(&object.metadata) {
        "ImageRepository"
    } else {
        "ChartSource"
    }
}

/// The kind and field names a user wrote, for messages about a policy and its source.
#[derive(Clone, Copy)]
struct Names {
    policy: &'static str,
    source: &'static str,
    field: &'static str,
}

impl Names {
    fn of(flux: bool) -> Names {
        if flux {
            Names {
                policy: "ImagePolicy",
                source: "ImageRepository",
                field: "spec.imageRepositoryRef",
            }
        } else {
            Names {
                policy: "VersionPolicy",
                source: "ChartSource",
                field: "spec.sourceRef",
            }
        }
    }
}

/// `file` as a `/`-separated path from the fleet's directory (as the plan prints files).
fn rel_path(dir: &Path, file: &Path) -> String {
    file.strip_prefix(dir)
        .unwrap_or(file)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Where the CLI remembers the digest reflected per policy, for `digestReflectionPolicy:
/// IfNotPresent` (the controller keeps it in the policy's status). The store remembers it
/// between runs; the in-memory first-seen store of `upkeep plan` remembers nothing, so every
/// plan reads the digest again (plan writes no state).
pub(crate) trait DigestMemory {
    /// The digest last reflected for policy `namespace/name`.
    fn known_digest(&self, policy: &str) -> Result<Option<KnownDigest>, String>;
    /// Remembers digests just reflected.
    fn record_digests(&self, entries: &[(&str, KnownDigest)]) -> Result<(), String>;
}

impl DigestMemory for MemoryFirstSeen {
    fn known_digest(&self, _policy: &str) -> Result<Option<KnownDigest>, String> {
        Ok(None)
    }
    fn record_digests(&self, _entries: &[(&str, KnownDigest)]) -> Result<(), String> {
        Ok(())
    }
}

impl DigestMemory for upkeep_store::Store {
    fn known_digest(&self, policy: &str) -> Result<Option<KnownDigest>, String> {
        upkeep_store::Store::known_digest(self, policy).map_err(|e| e.to_string())
    }
    fn record_digests(&self, entries: &[(&str, KnownDigest)]) -> Result<(), String> {
        upkeep_store::Store::record_digests(self, entries).map_err(|e| e.to_string())
    }
}

/// A policy whose selected tag's digest is wanted.
struct Wanted {
    policy: (String, String),
    source: (String, String),
    image: String,
    tag: String,
    reflect: DigestReflectionPolicy,
    kind: &'static str,
}

/// Fills the digest of every policy that reflects digests, as Flux does: `IfNotPresent` keeps
/// the digest remembered for the same image and tag, and reads one otherwise; `Always` reads
/// it every time. Lookups run at once (bounded like scans). A policy whose digest cannot be
/// read holds its fields with the reason and hint (its `ns:name` and `:digest` markers would
/// be wrong without it), as Flux's ImagePolicy is not ready then.
fn reflect_digests<S: DigestMemory>(
    rt: &tokio::runtime::Runtime,
    sources: &BTreeMap<(String, String), Source>,
    wanted: Vec<Wanted>,
    memory: &S,
    fleet: &mut Fleet,
) {
    use futures_util::StreamExt as _;
    let mut fetch = Vec::new();
    for w in wanted {
        let key = format!("{}/{}", w.policy.0, w.policy.1);
        let known = match memory.known_digest(&key) {
            Ok(k) => k.filter(|k| k.image == w.image && k.tag == w.tag),
            Err(e) => {
                eprintln!(
                    "warning: reading the digest remembered for {key}: {e}; reading it again"
                );
                None
            }
        };
        if !w
            .reflect
            .must_fetch(known.as_ref().map(|k| k.digest.as_str()))
        {
            if let Some(d) = fleet.policies.get_mut(&w.policy) {
                d.allow.digest = known.map(|k| k.digest);
            }
            continue;
        }
        fetch.push(w);
    }
    let results: Vec<_> = rt.block_on(
        futures_util::stream::iter(fetch.iter().map(|w| async move {
            match sources.get(&w.source) {
                Some(s) => s.digest_for(&w.tag).await,
                None => Ok(None),
            }
        }))
        .buffered(8)
        .collect(),
    );
    let mut remembered = Vec::new();
    for (w, r) in fetch.iter().zip(results) {
        let (ns, name) = &w.policy;
        let shown = if w.image.is_empty() {
            w.tag.clone()
        } else {
            format!("{}:{}", w.image, w.tag)
        };
        match r {
            Ok(Some(digest)) => {
                if let Some(d) = fleet.policies.get_mut(&w.policy) {
                    d.allow.digest = Some(digest.clone());
                }
                remembered.push((
                    format!("{ns}/{name}"),
                    KnownDigest {
                        image: w.image.clone(),
                        tag: w.tag.clone(),
                        digest,
                    },
                ));
            }
            // Helm repositories have no digests; their markers that need one are held.
            Ok(None) => {}
            Err(e) => {
                let hint = e
                    .hint()
                    .map(|h| format!(" (hint: {h})"))
                    .unwrap_or_default();
                let message = format!(
                    "{} {ns}/{name}: the digest of {shown} could not be read (digestReflectionPolicy: {}): {e}{hint}",
                    w.kind,
                    w.reflect.as_str()
                );
                crate::render::error_with_hint(&message, None);
                fleet.policies.remove(&w.policy);
                fleet.problems.insert(w.policy.clone(), message);
            }
        }
    }
    let entries: Vec<(&str, KnownDigest)> = remembered
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    if !entries.is_empty()
        && let Err(e) = memory.record_digests(&entries)
    {
        eprintln!("warning: remembering the digests just read: {e}");
    }
}

/// Selects with the policy over a scan (first seen = the chart's `created` time when the source
/// has one), noting a newer version held back by `minimumReleaseAge`.
fn decide<S: FirstSeenStore>(
    policy: &Policy,
    (key, list): &(String, TagList),
    now: Timestamp,
    range: String,
    first_seen: &S,
) -> miette::Result<Decision>
where
    S::Error: std::fmt::Display,
{
    let seen = merge_first_seen(first_seen, key, list, now)
        .map_err(|e| miette!("recording when the tags of {key} were first seen: {e}"))?;
    let infos = tag_infos(&seen);
    let selection = policy.select(&infos, now);
    Ok(Decision {
        range,
        considered: selection.considered,
        ignored: selection.ignored,
        allow: PolicyDecision {
            selected: selection.selected.map(str::to_owned),
            held: selection.held.as_ref().map(|h| (h.tag.to_owned(), h.until)),
            pinned: policy.pin.is_some(),
            labels: BTreeMap::new(),
            suspended: None,
            image: None,
            digest: None,
            no_image: None,
        },
    })
}

/// What the cluster commands (`upgrade`, `freeze`, `status`) read from a repository: clusters
/// (with the file each came from), schedules, ClusterUpgrades and ClusterUpgradePolicies. No
/// source is scanned: deciding when a cluster may move needs no registry.
#[derive(Debug)]
pub(crate) struct ClusterFleet {
    /// Every cluster the repository defines ([`crate::repo_clusters`]: a `Cluster` manifest
    /// today), with what defines it.
    pub(crate) clusters: Vec<RepoCluster>,
    pub(crate) schedules: Vec<NamedSchedule>,
    pub(crate) upgrades: Vec<ClusterUpgrade>,
}

impl ClusterFleet {
    /// Loads `dir`; invalid manifests are printed and give `Err(Outcome::Invalid)`.
    pub(crate) fn load(dir: &Path) -> miette::Result<Result<ClusterFleet, Outcome>> {
        if !dir.exists() {
            crate::render::error_with_hint(
                &format!("{}: no such file or directory", dir.display()),
                Some("pass the GitOps repository with --repo DIR".into()),
            );
            return Ok(Err(Outcome::Invalid));
        }
        let (loaded, files) = load_with_files(dir);
        // Only what decides about clusters can stop a cluster command: an invalid
        // VersionPolicy or AppUpgradeAutomation elsewhere in the repository does not.
        let invalid = Self::invalid_for_clusters(&loaded);
        if !invalid.is_empty() {
            let files: Vec<&Path> = invalid.iter().map(|o| o.file.as_path()).collect();
            let diagnostics: Vec<_> = loaded
                .diagnostics
                .iter()
                .filter(|d| files.contains(&d.file.as_path()))
                .cloned()
                .collect();
            crate::render::print_diagnostics(&diagnostics);
            return Ok(Err(Outcome::Invalid));
        }
        Self::from_loaded(dir, loaded, &files).map(Ok)
    }

    fn from_loaded(
        dir: &Path,
        loaded: upkeep_api::Loaded,
        files: &[(String, String)],
    ) -> miette::Result<ClusterFleet> {
        let mut fleet = ClusterFleet {
            clusters: Vec::new(),
            schedules: Vec::new(),
            upgrades: Vec::new(),
        };
        for doc in loaded.documents {
            match doc.resource {
                Resource::Cluster(c) => fleet
                    .clusters
                    .push(RepoCluster::manifest(c, dir, &doc.file, doc.line)),
                Resource::ClusterUpgrade(u) => fleet.upgrades.push(*u),
                Resource::MaintenanceSchedule { object, schedule } => {
                    fleet.schedules.push(named_schedule(&object, *schedule)?);
                }
                _ => {}
            }
        }
        let manifests = std::mem::take(&mut fleet.clusters);
        fleet.clusters = crate::repo_clusters::with_giant_swarm(dir, manifests, files);
        Ok(fleet)
    }

    /// The objects that did not load and that cluster decisions depend on: Clusters,
    /// ClusterUpgrades, ClusterUpgradePolicies, MaintenanceSchedules.
    fn invalid_for_clusters(loaded: &upkeep_api::Loaded) -> Vec<&upkeep_api::InvalidObject> {
        loaded
            .invalid
            .iter()
            .filter(|o| {
                matches!(
                    o.kind.as_str(),
                    "Cluster" | "ClusterUpgrade" | "ClusterUpgradePolicy" | "MaintenanceSchedule"
                )
            })
            .collect()
    }

    /// [`ClusterFleet::load`] for `upkeep plan`, which has already reported every invalid
    /// object: `None` (with a note naming them) when one that cluster decisions depend on is
    /// invalid — the app fields are planned all the same.
    pub(crate) fn load_for_plan(dir: &Path) -> miette::Result<Option<ClusterFleet>> {
        let (loaded, files) = load_with_files(dir);
        let invalid = Self::invalid_for_clusters(&loaded);
        if let Some(first) = invalid.first() {
            eprintln!(
                "note: the clusters are not planned: {} {}/{} is invalid ({}:{}), and {} more",
                first.kind,
                first.namespace.as_deref().unwrap_or("default"),
                first.name.as_deref().unwrap_or("?"),
                first.file.display(),
                first.line,
                invalid.len() - 1
            );
            return Ok(None);
        }
        Self::from_loaded(dir, loaded, &files).map(Some)
    }

    /// The clusters of `dir` alone, for the commands that change one cluster and decide
    /// nothing over the others (`freeze`, `unfreeze`): only an invalid `Cluster` stops them,
    /// not an invalid ClusterUpgrade or schedule elsewhere. Errors are printed.
    pub(crate) fn load_clusters(dir: &Path) -> miette::Result<Result<Vec<RepoCluster>, Outcome>> {
        if !dir.is_dir() {
            crate::render::error_with_hint(
                &format!("{}: no such directory", dir.display()),
                Some("pass the GitOps repository with --repo DIR".into()),
            );
            return Ok(Err(Outcome::Invalid));
        }
        let (loaded, texts) = load_with_files(dir);
        let files: Vec<&Path> = loaded
            .invalid
            .iter()
            .filter(|o| o.kind == "Cluster")
            .map(|o| o.file.as_path())
            .collect();
        if !files.is_empty() {
            let diagnostics: Vec<_> = loaded
                .diagnostics
                .iter()
                .filter(|d| files.contains(&d.file.as_path()))
                .cloned()
                .collect();
            crate::render::print_diagnostics(&diagnostics);
            return Ok(Err(Outcome::Invalid));
        }
        Ok(Ok(Self::from_loaded(dir, loaded, &texts)?.clusters))
    }

    /// The `ClusterObject`s decisions read.
    pub(crate) fn objects(&self) -> Vec<ClusterObject> {
        self.clusters.iter().map(|c| c.object.clone()).collect()
    }
}

/// The resources of `dir` and the text of every manifest file in it (`(path from dir, text)`,
/// as [`upkeep_api::gs_layout`] reads a repository: its kustomizations and values files hold
/// no upkeep resource).
fn load_with_files(dir: &Path) -> (upkeep_api::Loaded, Vec<(String, String)>) {
    let resources = load_resources_keeping(dir, &|_| true);
    let files = resources
        .kept
        .into_iter()
        .map(|(rel, text, _)| (rel, text))
        .collect();
    (resources.loaded, files)
}

/// A loaded MaintenanceSchedule with its name and cluster selector (the loader has checked
/// the selector: an invalid one makes the schedule invalid).
pub(crate) fn named_schedule(
    object: &upkeep_api::MaintenanceSchedule,
    schedule: upkeep_core::schedule::Schedule,
) -> miette::Result<NamedSchedule> {
    NamedSchedule::with_core(object, schedule).map_err(|errors| {
        let (ns, name) = namespaced_name(&object.metadata);
        miette!(
            "MaintenanceSchedule {ns}/{name} is invalid: {}",
            upkeep_api::cluster_upgrade::spec_message(&errors)
        )
    })
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
