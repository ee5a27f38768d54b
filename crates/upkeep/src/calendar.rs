//! The upgrade calendar's entries, projected from a repository (or, with [`crate::calendar_kube`],
//! from a management cluster) over `[from, to)`.
//!
//! Nothing here decides anything: every entry is read off the answer of a function another
//! command prints, so the calendar cannot disagree with it —
//! - windows and exclusions: [`Schedule::occurrences_between`] (the occurrences `upkeep windows`
//!   draws in its timeline), the freeze: [`Schedule::freeze_until`];
//! - planned cluster upgrades: the rollout core's plan as `upkeep status --at <from>` decides it
//!   (the same `decide` over the same snapshot, with what `upkeep run` recorded in the store),
//!   starting at the cluster's `expectedStart` (or `from` when it may start now) and ending
//!   where the schedule's allowed interval for that upgrade's kind ends (`upkeep windows --at`);
//! - planned app upgrades: `upkeep plan`'s fields (a held field starts at its `nextWindow`);
//! - past upgrades: `upkeep history --cluster`'s records.
//!
//! Identity: an occurrence is keyed by its local date (a window moved within its day keeps its
//! UID and gets a larger SEQUENCE); an upgrade by its campaign and target; a past upgrade by its
//! record id. The model is [`upkeep_core::calendar::Entry`]; the dashboard draws from it too.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use upkeep_api::cluster_upgrade::{NamedSchedule, VersionSource};
use upkeep_api::{ClusterUpgrade, namespaced_name};
use upkeep_controller::cluster_upgrade::decide::{Decision, Snapshot, decide};
use upkeep_core::calendar::{Entry, Kind, uid};
use upkeep_core::schedule::{OccurrenceKind, Schedule, Verdict};
use upkeep_core::version::{UpgradeKind, Version};
use upkeep_git::marked_fields::{Action, Field};

use crate::Outcome;
use crate::fleet::ClusterFleet;

/// The longest feed: the schedules' search horizon (10 years).
pub(crate) const MAX_DAYS: i64 = upkeep_core::schedule::HORIZON_DAYS;

/// The end of a feed of `days` days from `from`; `None` when it would leave the years
/// 0001–9999 (iCalendar writes four-digit years).
pub(crate) fn range_end(from: Timestamp, days: i64) -> Option<Timestamp> {
    let first = jiff::civil::date(1, 1, 1)
        .to_zoned(TimeZone::UTC)
        .ok()?
        .timestamp();
    let last = jiff::civil::date(9999, 1, 1)
        .to_zoned(TimeZone::UTC)
        .ok()?
        .timestamp();
    let to = from
        .checked_add(SignedDuration::from_hours(days.checked_mul(24)?))
        .ok()?;
    (from >= first && to <= last).then_some(to)
}

/// How long a planned upgrade is shown when no window bounds it.
const DEFAULT_SPAN: SignedDuration = SignedDuration::from_hours(1);

/// The entries of a calendar and the zones their times are shown in.
#[derive(Debug, Default)]
pub(crate) struct Feed {
    pub(crate) entries: Vec<Entry>,
    pub(crate) zones: BTreeMap<String, TimeZone>,
    /// The schedules and clusters the feed is about, whether or not an entry falls in its
    /// range (the dashboard's Calendar page draws one row for each).
    pub(crate) subjects: Vec<Subject>,
}

/// A schedule or a cluster of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subject {
    pub(crate) kind: SubjectKind,
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// The cluster's labels (a schedule's are not read: none).
    pub(crate) labels: BTreeMap<String, String>,
    /// The IANA zone of a schedule (`None`: UTC).
    pub(crate) tz: Option<String>,
    /// A schedule with `alwaysAllowed` (it has no window to draw).
    pub(crate) always: bool,
}

impl Subject {
    /// `namespace/name`, as the entries' `subject`.
    pub(crate) fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub(crate) fn schedule(s: &NamedSchedule) -> Subject {
        Subject {
            kind: SubjectKind::Schedule,
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            labels: BTreeMap::new(),
            tz: s
                .schedule
                .time_zone()
                .iana_name()
                .filter(|n| *n != "UTC")
                .map(str::to_owned),
            always: s.schedule.spec().always_allowed,
        }
    }

    pub(crate) fn cluster(c: &upkeep_api::ClusterObject) -> Subject {
        Subject {
            kind: SubjectKind::Cluster,
            namespace: c.namespace.clone().unwrap_or_else(|| "default".into()),
            name: c.name.clone(),
            labels: c.labels.clone(),
            tz: None,
            always: false,
        }
    }
}

/// What a [`Subject`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SubjectKind {
    Schedule,
    Cluster,
}

/// What a server remembers of each event it served (by UID), for SEQUENCE: see
/// [`crate::calendar_kube::route`] for why memory alone keeps the numbers from going back.
pub(crate) type Memory =
    std::sync::Mutex<std::collections::HashMap<String, upkeep_core::calendar::Memo>>;

/// Gives every entry its SEQUENCE from `memory` and the clock's floor at `now`, and remembers it.
pub(crate) fn remember_sequences(entries: &mut [Entry], memory: &Memory, now: Timestamp) {
    let floor = upkeep_core::calendar::clock_floor(now);
    let mut memory = memory
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for e in entries {
        let fingerprint = e.fingerprint();
        let seq = upkeep_core::calendar::sequence(memory.get(&e.uid).copied(), fingerprint, floor);
        e.sequence = seq;
        memory.insert(
            e.uid.clone(),
            upkeep_core::calendar::Memo {
                fingerprint,
                sequence: seq,
            },
        );
    }
}

impl Feed {
    /// The IANA name of `tz` (remembered for the VTIMEZONE), `None` for UTC or a zone
    /// without a name.
    fn zone(&mut self, tz: &TimeZone) -> Option<String> {
        let name = tz.iana_name()?.to_owned();
        if name == "UTC" {
            return None;
        }
        self.zones.entry(name.clone()).or_insert_with(|| tz.clone());
        Some(name)
    }

    /// Sorted by start, then kind and UID: the same input gives the same bytes.
    pub(crate) fn sort(&mut self) {
        self.entries
            .sort_by(|a, b| (a.start, a.kind, &a.uid).cmp(&(b.start, b.kind, &b.uid)));
    }
}

/// `[from, to)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub(crate) from: Timestamp,
    pub(crate) to: Timestamp,
}

impl Range {
    fn holds(self, t: Timestamp) -> bool {
        self.from <= t && t < self.to
    }
}

/// The calendar of a repository over `range` (what `upkeep calendar --repo` writes and the
/// dashboard draws), SEQUENCEs not yet assigned. The repository's entries: schedules, campaigns (as `status` decides them), app fields (as
/// `plan` plans them), past upgrades (from the store).
///
/// With `policy_campaigns` (`quickstart`, whose example fleet has ClusterUpgradePolicies and no
/// ClusterUpgrade), also the planned upgrades of the campaign each ClusterUpgradePolicy would
/// create for the release its VersionPolicy allows at `from`, as `quickstart` prints them.
pub(crate) fn repo_feed(
    repo: &Path,
    store: Option<&upkeep_store::Store>,
    docker_config: Option<&Path>,
    range: Range,
    policy_campaigns: bool,
) -> miette::Result<Result<Feed, Outcome>> {
    let fleet = match ClusterFleet::load(repo)? {
        Ok(f) => crate::schedule_annotations::with_scheduled(f),
        Err(o) => return Ok(Err(o)),
    };
    let mut feed = Feed::default();
    for s in &fleet.schedules {
        feed.subjects.push(Subject::schedule(s));
        schedule_entries(&mut feed, s, range);
    }
    for c in &fleet.clusters {
        feed.subjects.push(Subject::cluster(&c.object));
    }
    repo_campaigns(&mut feed, &fleet, repo, store, range)?;
    // App fields: planned at `from` as `upkeep plan --at <from>` plans them.
    let credentials = match crate::discover::credentials(docker_config) {
        Ok(c) => c,
        Err(e) => {
            crate::render::error_with_hint(&e.to_string(), e.hint());
            return Ok(Err(Outcome::Invalid));
        }
    };
    match crate::fleet::Fleet::load(repo, range.from, &credentials)? {
        Ok(apps) => {
            if let Ok((fields, _)) = crate::app_fields::plan_repo(repo, &apps, range.from) {
                app_entries(&mut feed, &fields, &apps.schedules, range, repo);
            }
            if policy_campaigns {
                policy_campaign_entries(&mut feed, &apps, range);
            }
        }
        Err(o) => return Ok(Err(o)),
    }
    if let Some(store) = store {
        let names: Vec<String> = fleet
            .clusters
            .iter()
            .map(|c| c.object.name.clone())
            .collect();
        past_entries(&mut feed, store, &names, range)?;
    }
    Ok(Ok(feed))
}

/// The windows, exclusions and freeze of one schedule overlapping `range`.
pub(crate) fn schedule_entries(feed: &mut Feed, s: &NamedSchedule, range: Range) {
    let schedule = &s.schedule;
    let tz = schedule.time_zone();
    let zone = feed.zone(tz);
    let subject = format!("{}/{}", s.namespace, s.name);
    let zone_name = tz.iana_name().unwrap_or("UTC");
    // Every exclusion applies to a major upgrade: asking for majors lists them all.
    for o in schedule.occurrences_between(range.from, range.to, UpgradeKind::Major) {
        let date = o.start.to_zoned(tz.clone()).date();
        let (kind, summary, what) = match o.kind {
            OccurrenceKind::Window => (
                Kind::Window,
                format!("{}: maintenance window {}", s.name, o.name),
                "Upgrades may start in this window".to_owned(),
            ),
            OccurrenceKind::Exclusion(scope) => (
                Kind::Exclusion,
                format!("{}: exclusion {} ({scope:?})", s.name, o.name),
                format!("No upgrade it covers starts: {scope:?}"),
            ),
        };
        let description = format!(
            "MaintenanceSchedule {subject} ({zone_name}).\n{what}.\nSee more: upkeep windows <file> --name {} --from {}",
            s.name, o.start
        );
        feed.entries.push(Entry {
            uid: uid(kind, &subject, &format!("{}\u{0}{date}", o.name)),
            sequence: 0,
            kind,
            subject: subject.clone(),
            start: o.start,
            end: o.end,
            tz: zone.clone(),
            summary,
            description,
        });
    }
    if let Some(until) = schedule.freeze_until()
        && until > range.from
    {
        let reason = schedule
            .spec()
            .freeze
            .as_ref()
            .and_then(|f| f.reason.clone());
        feed.entries.push(Entry {
            uid: uid(Kind::Freeze, &subject, "freeze"),
            sequence: 0,
            kind: Kind::Freeze,
            subject: subject.clone(),
            // A freeze has no start: it is shown from the feed's first day.
            start: day_start(range.from, tz),
            end: until,
            tz: zone,
            summary: format!(
                "{}: frozen{}",
                s.name,
                reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
            description: format!(
                "MaintenanceSchedule {subject} is frozen until {until}: no upgrade starts before."
            ),
        });
    }
}

/// Midnight of `t`'s day in `tz` (or `t`).
fn day_start(t: Timestamp, tz: &TimeZone) -> Timestamp {
    t.to_zoned(tz.clone())
        .start_of_day()
        .map_or(t, |z| z.timestamp())
}

/// Where a planned upgrade of `kind` starting at `start` must end under `schedule`: the end
/// of the allowed interval it starts in (what `upkeep windows --at <start> --for <kind>`
/// prints as `until`), else one hour later.
fn end_in_window(schedule: Option<&Schedule>, start: Timestamp, kind: UpgradeKind) -> Timestamp {
    let fallback = start.checked_add(DEFAULT_SPAN).unwrap_or(Timestamp::MAX);
    match schedule.map(|s| s.check(start, kind)) {
        Some(Verdict::Open {
            until: Some(until), ..
        }) => until,
        _ => fallback,
    }
}

/// The kind of `from → to` as the rollout core schedules it (not SemVer, or unknown: major).
fn kind_of(from: Option<&str>, to: Option<&str>) -> UpgradeKind {
    match (from.and_then(Version::parse), to.and_then(Version::parse)) {
        (Some(f), Some(t)) => UpgradeKind::between(&f, &t).unwrap_or(UpgradeKind::Patch),
        _ => UpgradeKind::Major,
    }
}

/// The planned upgrade of each cluster of a decided campaign whose start falls in `range`.
/// `more` is the command that shows the campaign (`upkeep status NAME …`).
pub(crate) fn campaign_entries(
    feed: &mut Feed,
    upgrade: &ClusterUpgrade,
    decision: &Decision<'_>,
    range: Range,
    more: &str,
) {
    let (ns, name) = namespaced_name(&upgrade.metadata);
    let Decision::Plan(decided) = decision else {
        return;
    };
    let target = decided
        .inputs
        .campaign
        .target
        .as_ref()
        .map(ToString::to_string);
    let rows = crate::campaign_view::cluster_rows(
        &decided.plan,
        &decided.inputs.clusters,
        target.as_deref(),
        &TimeZone::UTC,
    );
    for row in rows {
        let start = match row.state.as_str() {
            "Trigger" => range.from,
            _ => match row.expected_start {
                Some(t) => t,
                None => continue,
            },
        };
        if !range.holds(start) {
            continue;
        }
        let input = decided.inputs.clusters.iter().find(|i| i.name == row.name);
        let schedule = input.and_then(|i| i.schedule);
        let kind = kind_of(row.from.as_deref(), row.to.as_deref());
        let end = end_in_window(schedule.map(|(_, s)| s), start, kind);
        let tz = schedule.map_or(TimeZone::UTC, |(_, s)| s.time_zone().clone());
        let zone = feed.zone(&tz);
        let cluster = format!("{ns}/{}", row.name);
        let to = row.to.clone().unwrap_or_else(|| "?".into());
        let mut description = format!(
            "ClusterUpgrade {ns}/{name}{}\nstate: {}{}\n",
            row.stage
                .as_ref()
                .map(|s| format!(", stage {s}"))
                .unwrap_or_default(),
            row.state,
            row.reason
                .as_ref()
                .map_or_else(|| " — may start now".to_owned(), |r| format!(" — {r}")),
        );
        if let Some((sname, _)) = schedule {
            let _ = writeln!(description, "window: MaintenanceSchedule {ns}/{sname}");
        }
        let _ = write!(description, "See more: {more} --at {start}");
        feed.entries.push(Entry {
            uid: uid(
                Kind::ClusterUpgrade,
                &cluster,
                &format!("{ns}/{name}\u{0}{to}"),
            ),
            sequence: 0,
            kind: Kind::ClusterUpgrade,
            subject: cluster,
            start,
            end,
            tz: zone,
            summary: format!(
                "{}: {} → {to}",
                row.name,
                row.from.as_deref().unwrap_or("?")
            ),
            description,
        });
    }
}

/// The campaigns of a repository, decided at `range.from` exactly as `upkeep status --at`
/// decides them (with the store's records when there is a store).
pub(crate) fn repo_campaigns(
    feed: &mut Feed,
    fleet: &ClusterFleet,
    repo: &Path,
    store: Option<&upkeep_store::Store>,
    range: Range,
) -> miette::Result<()> {
    let releases = upkeep_api::release::releases_in(repo);
    let mut snapshot: Snapshot = crate::campaign_view::snapshot(fleet);
    for u in &fleet.upgrades {
        let (_, name) = namespaced_name(&u.metadata);
        let more = format!("upkeep status {name} --repo {}", repo.display());
        if let Some(store) = store {
            let view = crate::campaigns::recorded_view(store, u)?;
            snapshot.release = crate::campaign_view::repo_release(u, &releases).or(view.release);
            snapshot.finished = view.finished;
            let decision =
                crate::campaigns::decide_unobserved(&view.upgrade, &snapshot, range.from);
            campaign_entries(feed, &view.upgrade, &decision, range, &more);
        } else {
            snapshot.release = crate::campaign_view::repo_release(u, &releases);
            let decision = decide(u, &snapshot, VersionSource::Label, range.from);
            campaign_entries(feed, u, &decision, range, &more);
        }
    }
    Ok(())
}

/// The planned upgrades of the campaign each ClusterUpgradePolicy of a scanned fleet would
/// create at `range.from` (decided as [`crate::campaign_view::policy_campaigns`] decides it).
pub(crate) fn policy_campaign_entries(feed: &mut Feed, fleet: &crate::fleet::Fleet, range: Range) {
    let snapshot = Snapshot {
        clusters: fleet.clusters.clone(),
        schedules: fleet.schedules.clone(),
        ..Default::default()
    };
    for p in &fleet.cluster_policies {
        let (ns, _) = namespaced_name(&p.metadata);
        let target = fleet
            .policies
            .get(&(ns.clone(), p.spec.policy_ref.name.clone()))
            .and_then(|d| d.allow.selected.clone());
        let upgrade = p.upgrade(target.as_deref());
        let decision = decide(&upgrade, &snapshot, VersionSource::Label, range.from);
        // The campaign is the policy's (same name); `campaign_entries` adds `--at <start>`.
        campaign_entries(feed, &upgrade, &decision, range, "upkeep quickstart");
    }
}

/// The fields `upkeep plan` would write now or holds for a window, as planned app upgrades:
/// a field to write starts at `from`, a held one at its `nextWindow`; each ends where its
/// schedule's allowed interval ends.
pub(crate) fn app_entries(
    feed: &mut Feed,
    fields: &[Field],
    schedules: &[NamedSchedule],
    range: Range,
    repo: &Path,
) {
    for f in fields {
        let start = match (&f.action, &f.next_window) {
            (Action::Write, _) => range.from,
            (Action::Held, Some(n)) => match n.parse::<Timestamp>() {
                Ok(t) => t,
                Err(_) => continue,
            },
            _ => continue,
        };
        if !range.holds(start) {
            continue;
        }
        let Some(target) = &f.target else { continue };
        let kind = match f.kind {
            Some("patch") => UpgradeKind::Patch,
            Some("minor") => UpgradeKind::Minor,
            _ => UpgradeKind::Major,
        };
        // The schedule the reason names (`<schedule>: …`, as `upkeep plan` words it).
        let schedule = schedules
            .iter()
            .find(|s| f.reason.starts_with(&format!("{}: ", s.name)));
        let end = end_in_window(schedule.map(|s| &s.schedule), start, kind);
        let zone = schedule.and_then(|s| feed.zone(s.schedule.time_zone()));
        let at = format!("{}:{}", f.file, f.line);
        let what = f.key.clone().unwrap_or_else(|| at.clone());
        feed.entries.push(Entry {
            uid: uid(Kind::AppUpgrade, &at, &format!("{}\u{0}{target}", f.policy)),
            sequence: 0,
            kind: Kind::AppUpgrade,
            subject: at.clone(),
            start,
            end,
            tz: zone,
            summary: format!("{what}: {} → {target}", f.current),
            description: format!(
                "field {at}\npolicy: {}\n{} → {target} ({})\n{}: {}\nSee more: upkeep plan --repo {} --at {start}",
                f.policy,
                f.current,
                f.kind.unwrap_or("change"),
                match f.action {
                    Action::Held => "waits",
                    _ => "writes",
                },
                f.reason,
                repo.display()
            ),
        });
    }
}

/// The upgrades `upkeep upgrade cluster`/`upkeep run` recorded for `clusters`, triggered in
/// `range`, with the outcome observed later (the record that concludes it) in the summary.
pub(crate) fn past_entries(
    feed: &mut Feed,
    store: &upkeep_store::Store,
    clusters: &[String],
    range: Range,
) -> miette::Result<()> {
    for name in clusters {
        let records = store
            .cluster_upgrades(name, 10_000)
            .map_err(|e| miette::miette!("{e}"))?;
        for r in records.iter().filter(|r| r.upgrade.follows.is_none()) {
            let u = &r.upgrade;
            if !range.holds(u.at) {
                continue;
            }
            let concluded = records
                .iter()
                .find(|c| c.upgrade.follows == Some(r.id))
                .map_or(u, |c| &c.upgrade);
            let end = concluded
                .finished_at
                .filter(|f| *f > u.at)
                .unwrap_or_else(|| {
                    u.at.checked_add(SignedDuration::from_mins(1))
                        .unwrap_or(u.at)
                });
            let cluster = match &u.namespace {
                Some(ns) => format!("{ns}/{}", u.cluster),
                None => u.cluster.clone(),
            };
            feed.entries.push(Entry {
                uid: uid(Kind::PastUpgrade, &cluster, &r.id.to_string()),
                sequence: 0,
                kind: Kind::PastUpgrade,
                subject: cluster.clone(),
                start: u.at,
                end,
                tz: None,
                summary: format!(
                    "{}: {} → {} ({})",
                    u.cluster,
                    u.from,
                    u.to,
                    concluded.outcome.as_str()
                ),
                description: format!(
                    "via {} ({}{})\noutcome: {}{}\nSee more: upkeep history --cluster {}",
                    u.via,
                    u.target,
                    u.commit
                        .as_deref()
                        .map(|c| format!(", commit {c}"))
                        .unwrap_or_default(),
                    concluded.outcome.as_str(),
                    concluded
                        .reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default(),
                    u.cluster
                ),
            });
        }
    }
    Ok(())
}

/// One entry in `--output json` (and in the dashboard's `/calendar.json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JsonEntry<'a> {
    uid: &'a str,
    sequence: u32,
    kind: &'static str,
    subject: &'a str,
    start: String,
    end: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tz: Option<&'a str>,
    summary: &'a str,
    description: &'a str,
}

pub(crate) fn json_entry(e: &Entry) -> JsonEntry<'_> {
    JsonEntry {
        uid: &e.uid,
        sequence: e.sequence,
        kind: e.kind.as_str(),
        subject: &e.subject,
        start: e.start.to_string(),
        end: e.end.to_string(),
        tz: e.tz.as_deref(),
        summary: &e.summary,
        description: &e.description,
    }
}

/// Writes `bytes` to a temporary file next to `path`, syncs it and renames it into place: a
/// reader (a web server serving the feed) sees the old feed or the new one, never half. A file
/// already at `path` keeps its permission bits (a `0600` feed stays `0600`); a symlink there is
/// refused rather than replaced by a regular file; the temporary name is created, never opened
/// through something already there.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?
        .to_string_lossy()
        .into_owned();
    let mode = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(std::io::Error::other(
                "is a symlink (upkeep replaces only regular files); pass the file it points to",
            ));
        }
        Ok(m) if !m.is_file() => return Err(std::io::Error::other("not a regular file")),
        Ok(m) => Some(m.permissions().mode() & 0o7777),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let tmp = dir.join(format!(".{name}.upkeep-{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&tmp)?;
        if let Some(mode) = mode {
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod file_tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::write_atomically;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_replaced_feed_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let feed = dir.path().join("feed.ics");
        std::fs::write(&feed, b"old").unwrap();
        std::fs::set_permissions(&feed, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomically(&feed, b"new").unwrap();
        assert_eq!(std::fs::read(&feed).unwrap(), b"new");
        assert_eq!(
            mode(&feed),
            0o600,
            "a private feed must not become world-readable"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_symlink_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.ics");
        std::fs::write(&real, b"old").unwrap();
        let link = dir.path().join("feed.ics");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = write_atomically(&link, b"new").unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&real).unwrap(), b"old");
    }
}
