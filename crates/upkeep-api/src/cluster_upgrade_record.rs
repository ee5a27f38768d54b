//! `ClusterUpgradeRecord`: one cluster's upgrade in one campaign, an object of its own.
//!
//! Why it is shaped so:
//! - Events expire and a campaign's status must stay small whatever the fleet, so what happened
//!   to each cluster is kept here: from, to, trigger, place, times, state, reason, commit and
//!   pull request. The campaign's status holds counts and the clusters in flight or failed.
//! - Only the controller writes records, so everything is in `spec` (no status subresource):
//!   one request creates a record complete, which keeps requests per triggered cluster low.
//! - The name is a function of campaign and cluster ([`record_name`]): the controller creates
//!   the record before it changes the cluster, and a restart between the two finds the same
//!   name taken (409) instead of making a second record.
//! - Labels `cluster` and `upkeep.dev/campaign` ([`label_value`]) let `kubectl get
//!   clusterupgraderecords -l cluster=NAME` and `upkeep history --cluster NAME` find a
//!   cluster's records; the owner reference to the ClusterUpgrade lets garbage collection remove
//!   them with their campaign, and tells records of a deleted campaign of the same name apart.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app_upgrade_automation::PullRequestStatus;
use crate::cluster_upgrade::{ClusterState, Trigger};

/// The label naming the cluster a record is about.
pub const CLUSTER_LABEL: &str = "cluster";
/// The label naming the ClusterUpgrade a record belongs to.
pub const CAMPAIGN_LABEL: &str = "upkeep.dev/campaign";

/// One cluster's upgrade: what changed, how, when, and how it ended.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[kube(
    group = "upkeep.dev",
    version = "v1alpha1",
    kind = "ClusterUpgradeRecord",
    doc = "One cluster's upgrade in one ClusterUpgrade (written by the controller; kept after Events expire, bounded per cluster by --records-per-cluster).",
    namespaced,
    shortname = "cur",
    category = "upkeep",
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.cluster"}"#,
    printcolumn = r#"{"name":"From","type":"string","jsonPath":".spec.from"}"#,
    printcolumn = r#"{"name":"To","type":"string","jsonPath":".spec.to"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".spec.state"}"#,
    printcolumn = r#"{"name":"Triggered","type":"date","jsonPath":".spec.triggeredAt"}"#,
    printcolumn = r#"{"name":"Finished","type":"date","jsonPath":".spec.finishedAt"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterUpgradeRecordSpec {
    /// The Cluster upgraded (in the record's namespace).
    pub cluster: String,
    /// The ClusterUpgrade that upgraded it (in the record's namespace).
    pub campaign: String,
    /// The version before the upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The version upgraded to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// How the change was made: `Direct` (patched in the management cluster) or `GitOps`
    /// (committed to the repository).
    #[serde(default)]
    pub trigger: Trigger,
    /// Where the version was written (e.g. `label release.giantswarm.io/version`,
    /// `versionPlace App`, `git <path>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// The campaign's stage the cluster belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Waiting (announced, not started), Triggered, Upgrading, Succeeded, Failed or Halted.
    pub state: String,
    /// Why the record is in its state (a failure's cause, the wait's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the upgrade was announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced_at: Option<Time>,
    /// When the controller decided to start it (written before the change is made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_at: Option<Time>,
    /// When the change was acknowledged (the patch answered 2xx, or the commit was pushed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Time>,
    /// When it succeeded or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// `trigger: GitOps`: the commit that carried the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// `trigger: GitOps` with a pull request: the pull request that carried the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestStatus>,
}

impl ClusterUpgradeRecordSpec {
    /// The record of `entry` (a campaign's per-cluster state); `commit`, `pullRequest` and
    /// `place` are the shell's to add.
    pub fn of_state(campaign: &str, trigger: Trigger, entry: &ClusterState) -> Self {
        ClusterUpgradeRecordSpec {
            cluster: entry.name.clone(),
            campaign: campaign.to_owned(),
            from: entry.from_release.clone(),
            to: entry.to_release.clone(),
            trigger,
            place: None,
            stage: entry.stage.clone(),
            state: entry.state.clone().unwrap_or_default(),
            reason: entry.reason.clone(),
            announced_at: entry.announced_at.clone(),
            triggered_at: entry.triggered_at.clone(),
            acknowledged_at: entry.acknowledged_at.clone(),
            finished_at: entry.finished_at.clone(),
            commit: None,
            pull_request: None,
        }
    }

    /// The per-cluster state this record stands for, as the campaign's status would hold it.
    pub fn to_state(&self) -> ClusterState {
        ClusterState {
            name: self.cluster.clone(),
            state: (!self.state.is_empty()).then(|| self.state.clone()),
            reason: self.reason.clone(),
            triggered_at: self.triggered_at.clone(),
            acknowledged_at: self.acknowledged_at.clone(),
            finished_at: self.finished_at.clone(),
            from_release: self.from.clone(),
            to_release: self.to.clone(),
            stage: self.stage.clone(),
            announced_at: self.announced_at.clone(),
            ..ClusterState::default()
        }
    }

    /// Succeeded, Failed or Skipped: the record never changes again (retention may delete it).
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "Succeeded" | "Failed" | "Skipped")
    }
}

/// The longest object name Kubernetes accepts (a DNS-1123 subdomain).
const MAX_NAME: usize = 253;
/// The longest label value.
const MAX_LABEL: usize = 63;

/// The record of `cluster` in `campaign`: `<campaign>-<cluster>` when that is a valid name,
/// else [`hashed_record_name`]. Both parts are Kubernetes names already, so the plain form is
/// valid unless too long.
pub fn record_name(campaign: &str, cluster: &str) -> String {
    let plain = format!("{campaign}-{cluster}");
    if plain.len() <= MAX_NAME && is_subdomain(&plain) {
        plain
    } else {
        hashed_record_name(campaign, cluster)
    }
}

/// `<start of campaign-cluster>-<16 hex digits of a hash of both>`: at most 253 characters,
/// a valid DNS-1123 subdomain whatever the input, and different for different pairs (used
/// when the plain name is too long, or taken by the record of another pair: `a-b` + `c` and
/// `a` + `b-c`).
pub fn hashed_record_name(campaign: &str, cluster: &str) -> String {
    let hash = fnv1a(&[campaign, cluster]);
    let prefix = sanitise(&format!("{campaign}-{cluster}"), MAX_NAME - 17);
    if prefix.is_empty() {
        format!("r{hash:016x}")
    } else {
        format!("{prefix}-{hash:016x}")
    }
}

/// A label value for `name`: itself when it is one (at most 63 characters of `[A-Za-z0-9._-]`,
/// alphanumeric at both ends), else its start and a hash. Cluster names are nearly always
/// valid label values; `upkeep history` computes the same value to select by.
pub fn label_value(name: &str) -> String {
    let valid = name.len() <= MAX_LABEL
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_none_or(|c| c.is_ascii_alphanumeric());
    if valid {
        return name.to_owned();
    }
    let hash = fnv1a(&[name]);
    let prefix = sanitise(name, MAX_LABEL - 17);
    if prefix.is_empty() {
        format!("h{hash:016x}")
    } else {
        format!("{prefix}-{hash:016x}")
    }
}

/// Lowercase alphanumerics, `-` and `.` of `s`, at most `max` long, alphanumeric at both ends.
fn sanitise(s: &str, max: usize) -> String {
    let kept: String = s
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .take(max)
        .collect();
    kept.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// A DNS-1123 subdomain: dot-separated labels of lowercase alphanumerics and `-`, each
/// alphanumeric at both ends.
fn is_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// FNV-1a, 64 bits, over the parts separated by a 0xff byte (never in UTF-8 text): stable
/// across builds and releases (the names it makes are stored), unlike `std`'s hasher.
fn fnv1a(parts: &[&str]) -> u64 {
    let separated = parts.iter().enumerate().flat_map(|(i, part)| {
        let sep: &[u8] = if i > 0 { &[0xff] } else { &[] };
        sep.iter().copied().chain(part.bytes())
    });
    separated.fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_deterministic_and_distinct() {
        let long = "c".repeat(250);
        let cases = [
            ("to-30", "prod-1", "to-30-prod-1", "short: campaign-cluster"),
            ("v30.1.0", "wc1", "v30.1.0-wc1", "dots are kept"),
        ];
        for (campaign, cluster, want, why) in cases {
            assert_eq!(record_name(campaign, cluster), want, "{why}");
        }
        let hashed = record_name("to-30", &long);
        assert!(
            hashed.len() <= MAX_NAME && is_subdomain(&hashed),
            "too long: hashed to a valid name: {hashed}"
        );
        assert_eq!(hashed, record_name("to-30", &long), "deterministic");
        assert_ne!(
            hashed_record_name("a-b", "c"),
            hashed_record_name("a", "b-c"),
            "pairs whose plain names collide get different hashed names"
        );
        assert_eq!(
            hashed_record_name("a", "b"),
            format!("a-b-{:016x}", fnv1a(&["a", "b"])),
            "the start of the plain name and 16 hex digits"
        );
        assert_eq!(
            fnv1a(&["a"]),
            0xaf63_dc4c_8601_ec8c,
            "FNV-1a of \"a\" (the published test vector): stable across builds"
        );
    }

    #[test]
    fn label_values() {
        let long = "x".repeat(80);
        let cases = [
            (
                "prod-1",
                "prod-1".to_owned(),
                "a cluster name is its own label value",
            ),
            (
                long.as_str(),
                format!("{}-{:016x}", "x".repeat(46), fnv1a(&[&long])),
                "longer than 63: start and hash",
            ),
        ];
        for (name, want, why) in cases {
            let got = label_value(name);
            assert_eq!(got, want, "{why}");
            assert!(got.len() <= MAX_LABEL, "{why}");
        }
    }

    #[test]
    fn a_record_and_a_status_entry_convert_both_ways() {
        let entry = ClusterState {
            name: "wc1".into(),
            state: Some("Failed".into()),
            reason: Some("disk full".into()),
            triggered_at: Some(Time("2026-12-01T10:00:00Z".parse().expect("ts"))),
            finished_at: Some(Time("2026-12-01T10:30:00Z".parse().expect("ts"))),
            from_release: Some("29.0.0".into()),
            to_release: Some("30.0.0".into()),
            stage: Some("prod".into()),
            ..ClusterState::default()
        };
        let spec = ClusterUpgradeRecordSpec::of_state("to-30", Trigger::Direct, &entry);
        assert!(spec.is_finished(), "Failed is finished");
        let back = spec.to_state();
        assert_eq!(
            serde_json::to_value(&back).expect("json"),
            serde_json::to_value(&entry).expect("json"),
            "what the core reads survives the round trip"
        );
    }
}
