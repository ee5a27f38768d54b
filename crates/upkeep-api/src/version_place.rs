//! `spec.versionPlace` of a ClusterUpgrade or ClusterUpgradePolicy: where a cluster's version
//! is *written* (it is always *observed* on the Cluster object).
//!
//! Why it is shaped this way: at Giant Swarm a workload cluster is an App, and its version
//! lives in one of several places depending on the release generation and the repository
//! layout (the App's `spec.version`, `global.release.version` in its values ConfigMap, the
//! Flux Kustomization's `cluster_release` variable). `type: Auto`, the default, finds the place
//! per cluster by Giant Swarm's conventions; the other types name one place, and the
//! overrides (`app`, `configMap`, `valuesKey`, `variable`, `labelKey`) cover layouts that
//! follow the conventions with other names. An override the chosen type does not use is an
//! error, not silently ignored. The spec converts into [`VersionPlace`] (the edit's place):
//! [`VersionPlaceSpec::place`] for a fixed type, and [`VersionPlaceSpec::candidates`], in
//! order, for `Auto`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::cluster::RELEASE_VERSION_LABEL;
use crate::cluster_edit::{
    DEFAULT_DATA_KEY, DEFAULT_VALUES_KEY, DEFAULT_VARIABLE, ObjectRef, ValuesPlace, VersionPlace,
};

/// Which place `versionPlace.type` names.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PlaceType {
    /// Found per cluster: a marker naming the cluster (Git), the values key when the values
    /// hold it, the Flux variable when the App's version is `${variable}` (Git), the App's
    /// `spec.version`, else the Cluster's release label.
    #[default]
    Auto,
    /// A label of the Cluster (`labelKey`, default `release.giantswarm.io/version`).
    Label,
    /// The Cluster's `spec.topology.version`.
    Topology,
    /// The cluster App's `spec.version`.
    App,
    /// `valuesKey` inside the App's values ConfigMap.
    Values,
    /// GitOps only: the Flux Kustomization's `spec.postBuild.substitute.<variable>`.
    Substitute,
    /// GitOps only: scalars marked `# {"$upkeep": "cluster:<namespace>/<name>"}`.
    Marker,
}

/// An object named by name and namespace; a missing part follows the convention.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlaceObject {
    /// The object's name (default: the cluster's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The object's namespace (default: the cluster's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The values ConfigMap: name and namespace (default: the App's `spec.userConfig.configMap`,
/// else `<cluster>-userconfig` in the App's namespace) and the data key (default `values`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlaceConfigMap {
    /// The ConfigMap's name (default: the App's `spec.userConfig.configMap.name`, else
    /// `<cluster>-userconfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The ConfigMap's namespace (default: the App's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The data key holding the values YAML (default `values`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_key: Option<String>,
}

/// Where a cluster's version is written (see the module docs).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VersionPlaceSpec {
    /// `Auto` (default: found per cluster), `Label`, `Topology`, `App`, `Values`,
    /// `Substitute` (GitOps only) or `Marker` (GitOps only).
    #[serde(default, rename = "type")]
    pub type_: PlaceType,
    /// The cluster App (default: named as the cluster, in the cluster's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<PlaceObject>,
    /// The values ConfigMap (for `Values`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<PlaceConfigMap>,
    /// Dotted path inside the values (default `global.release.version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_key: Option<String>,
    /// The Flux Kustomization variable (default `cluster_release`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// The Cluster label (default `release.giantswarm.io/version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_key: Option<String>,
}

impl VersionPlaceSpec {
    pub(crate) fn app_ref(&self) -> ObjectRef {
        self.app
            .as_ref()
            .map(|a| ObjectRef {
                name: a.name.clone(),
                namespace: a.namespace.clone(),
            })
            .unwrap_or_default()
    }

    fn values(&self) -> ValuesPlace {
        ValuesPlace {
            app: self.app_ref(),
            config_map: self.config_map.as_ref().map(|c| ObjectRef {
                name: c.name.clone(),
                namespace: c.namespace.clone(),
            }),
            data_key: self
                .config_map
                .as_ref()
                .and_then(|c| c.data_key.clone())
                .unwrap_or_else(|| DEFAULT_DATA_KEY.to_owned()),
            key_path: self
                .values_key
                .clone()
                .unwrap_or_else(|| DEFAULT_VALUES_KEY.to_owned()),
        }
    }

    fn label(&self) -> VersionPlace {
        VersionPlace::Label(
            self.label_key
                .clone()
                .unwrap_or_else(|| RELEASE_VERSION_LABEL.to_owned()),
        )
    }

    fn substitute(&self) -> VersionPlace {
        VersionPlace::Substitute(
            self.variable
                .clone()
                .unwrap_or_else(|| DEFAULT_VARIABLE.to_owned()),
        )
    }

    /// The place a fixed type names; `None` for `Auto` (see [`VersionPlaceSpec::candidates`]).
    pub fn place(&self) -> Option<VersionPlace> {
        Some(match self.type_ {
            PlaceType::Auto => return None,
            PlaceType::Label => self.label(),
            PlaceType::Topology => VersionPlace::Topology,
            PlaceType::App => VersionPlace::App(self.app_ref()),
            PlaceType::Values => VersionPlace::Values(self.values()),
            PlaceType::Substitute => self.substitute(),
            PlaceType::Marker => VersionPlace::Marker,
        })
    }

    /// The places `Auto` tries, in order, with the overrides applied: the marker, the values
    /// key, the Flux variable, the App's `spec.version`, the Cluster label. (For a fixed type:
    /// that one place.) Which applies to a cluster is decided where its objects are read.
    pub fn candidates(&self) -> Vec<VersionPlace> {
        match self.place() {
            Some(p) => vec![p],
            None => vec![
                VersionPlace::Marker,
                VersionPlace::Values(self.values()),
                self.substitute(),
                VersionPlace::App(self.app_ref()),
                self.label(),
            ],
        }
    }

    /// Checks the spec at `base` (`spec.versionPlace`) for an upgrade with `trigger` (a Flux
    /// variable and a marker exist only in Git).
    pub fn validate_for(
        &self,
        base: &str,
        trigger: crate::cluster_upgrade::Trigger,
        errors: &mut Vec<FieldError>,
    ) {
        self.validate(base, errors);
        if trigger == crate::cluster_upgrade::Trigger::Direct
            && matches!(self.type_, PlaceType::Substitute | PlaceType::Marker)
        {
            errors.push(
                FieldError::new(
                    format!("{base}.type"),
                    format!("type {:?} is a place in Git; trigger Direct patches the management cluster", self.type_),
                )
                .with_hint(Some("use trigger: GitOps, or type App, Values, Label or Topology (or Auto)")),
            );
        }
    }

    /// Checks the spec at `base` (`spec.versionPlace`).
    pub fn validate(&self, base: &str, errors: &mut Vec<FieldError>) {
        let t = self.type_;
        let uses = |field: &str| match field {
            "app" => matches!(t, PlaceType::Auto | PlaceType::App | PlaceType::Values),
            "configMap" | "valuesKey" => matches!(t, PlaceType::Auto | PlaceType::Values),
            "variable" => matches!(t, PlaceType::Auto | PlaceType::Substitute),
            "labelKey" => matches!(t, PlaceType::Auto | PlaceType::Label),
            _ => true,
        };
        let given = [
            ("app", self.app.is_some()),
            ("configMap", self.config_map.is_some()),
            ("valuesKey", self.values_key.is_some()),
            ("variable", self.variable.is_some()),
            ("labelKey", self.label_key.is_some()),
        ];
        for (field, present) in given {
            if present && !uses(field) {
                errors.push(
                    FieldError::new(
                        format!("{base}.{field}"),
                        format!("type {t:?} does not use {field}"),
                    )
                    .with_hint(Some("remove it, or choose the type that uses it (or Auto)")),
                );
            }
        }
        let name_check = |path: String, value: &str, errors: &mut Vec<FieldError>| {
            if !is_dns_name(value) {
                errors.push(
                    FieldError::new(path, format!("{value:?} is not a Kubernetes object name"))
                        .with_hint(Some(
                            "lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
                        )),
                );
            }
        };
        if let Some(a) = &self.app {
            if let Some(n) = &a.name {
                name_check(format!("{base}.app.name"), n, errors);
            }
            if let Some(n) = &a.namespace {
                name_check(format!("{base}.app.namespace"), n, errors);
            }
        }
        if let Some(c) = &self.config_map {
            if let Some(n) = &c.name {
                name_check(format!("{base}.configMap.name"), n, errors);
            }
            if let Some(n) = &c.namespace {
                name_check(format!("{base}.configMap.namespace"), n, errors);
            }
            if let Some(k) = &c.data_key
                && (k.is_empty()
                    || !k
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
            {
                errors.push(
                    FieldError::new(
                        format!("{base}.configMap.dataKey"),
                        format!("{k:?} is not a ConfigMap data key"),
                    )
                    .with_hint(Some("letters, digits, '-', '_' and '.', e.g. values")),
                );
            }
        }
        if let Some(k) = &self.values_key
            && (k.is_empty() || k.split('.').any(|s| s.trim().is_empty() || s.trim() != s))
        {
            errors.push(
                FieldError::new(
                    format!("{base}.valuesKey"),
                    format!("{k:?} is not a dotted key path"),
                )
                .with_hint(Some("keys separated by dots, e.g. global.release.version")),
            );
        }
        if let Some(v) = &self.variable
            && !is_variable(v)
        {
            errors.push(
                FieldError::new(
                    format!("{base}.variable"),
                    format!("{v:?} is not a Flux variable name"),
                )
                .with_hint(Some(
                    "letters, digits and '_', not starting with a digit, e.g. cluster_release",
                )),
            );
        }
        if let Some(k) = &self.label_key
            && !is_label_key(k)
        {
            errors.push(
                FieldError::new(
                    format!("{base}.labelKey"),
                    format!("{k:?} is not a label key"),
                )
                .with_hint(Some("[prefix/]name, e.g. release.giantswarm.io/version")),
            );
        }
    }
}

/// A DNS-1123 subdomain (object names and namespaces).
fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A Flux post-build variable name (`^[_[:alpha:]][_[:alpha:][:digit:]]*$`).
fn is_variable(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A Kubernetes label key: `[prefix/]name`, the prefix a DNS subdomain, the name 1–63 of
/// `[A-Za-z0-9._-]`, starting and ending alphanumeric.
fn is_label_key(s: &str) -> bool {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    prefix.is_none_or(is_dns_name)
        && !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn validation_is_located() {
        let cases = [
            (json!({}), None, "empty: Auto with the conventions"),
            (
                json!({"type": "Values", "valuesKey": "global.release.version",
                    "configMap": {"name": "dev01-userconfig", "dataKey": "values"}}),
                None,
                "Values with overrides",
            ),
            (
                json!({"type": "App", "valuesKey": "a.b"}),
                Some("spec.versionPlace.valuesKey"),
                "App does not use valuesKey",
            ),
            (
                json!({"type": "Label", "variable": "x"}),
                Some("spec.versionPlace.variable"),
                "Label does not use variable",
            ),
            (
                json!({"type": "Substitute", "variable": "1release"}),
                Some("spec.versionPlace.variable"),
                "a variable cannot start with a digit",
            ),
            (
                json!({"valuesKey": "global..version"}),
                Some("spec.versionPlace.valuesKey"),
                "an empty path segment",
            ),
            (
                json!({"app": {"name": "Dev01"}}),
                Some("spec.versionPlace.app.name"),
                "object names are lowercase",
            ),
            (
                json!({"configMap": {"dataKey": "values yaml"}}),
                Some("spec.versionPlace.configMap.dataKey"),
                "a data key has no blanks",
            ),
            (
                json!({"labelKey": "release.giantswarm.io/"}),
                Some("spec.versionPlace.labelKey"),
                "a label key needs a name",
            ),
            (
                json!({"type": "Label", "labelKey": "example.com/release"}),
                None,
                "another label",
            ),
        ];
        for (spec, want, why) in cases {
            let spec: VersionPlaceSpec = serde_json::from_value(spec).expect("reads");
            let mut errors = Vec::new();
            spec.validate("spec.versionPlace", &mut errors);
            assert_eq!(
                errors.first().map(|e| e.path.as_str()),
                want,
                "{why}: {errors:?}"
            );
            assert!(errors.iter().all(|e| e.hint.is_some()), "{why}: hints");
        }
    }

    #[test]
    fn git_places_need_the_git_trigger() {
        use crate::cluster_upgrade::Trigger;
        let cases = [
            (
                "Substitute",
                Trigger::Direct,
                true,
                "a Flux variable is in Git only",
            ),
            ("Marker", Trigger::Direct, true, "a marker is in Git only"),
            ("Substitute", Trigger::GitOps, false, "GitOps writes it"),
            (
                "Values",
                Trigger::Direct,
                false,
                "Direct patches the ConfigMap",
            ),
            ("Auto", Trigger::Direct, false, "Auto decides per cluster"),
        ];
        for (t, trigger, refused, why) in cases {
            let spec: VersionPlaceSpec =
                serde_json::from_value(json!({ "type": t })).expect("reads");
            let mut errors = Vec::new();
            spec.validate_for("spec.versionPlace", trigger, &mut errors);
            assert_eq!(
                errors.first().map(|e| e.path.as_str()),
                refused.then_some("spec.versionPlace.type"),
                "{why}"
            );
        }
    }

    #[test]
    fn types_become_places() {
        let read = |v: serde_json::Value| -> VersionPlaceSpec {
            serde_json::from_value(v).expect("reads")
        };
        assert_eq!(read(json!({})).place(), None, "Auto is decided per cluster");
        assert_eq!(
            read(json!({}))
                .candidates()
                .iter()
                .map(VersionPlace::kind)
                .collect::<Vec<_>>(),
            ["Marker", "Values", "Substitute", "App", "Label"],
            "Auto's order"
        );
        assert_eq!(
            read(json!({"type": "Substitute"})).place(),
            Some(VersionPlace::Substitute("cluster_release".into()))
        );
        assert_eq!(
            read(json!({"type": "Values", "valuesKey": "cluster.release"})).place(),
            Some(VersionPlace::Values(ValuesPlace {
                key_path: "cluster.release".into(),
                ..ValuesPlace::default()
            }))
        );
        assert_eq!(
            read(json!({"type": "App", "app": {"namespace": "org-x"}})).place(),
            Some(VersionPlace::App(ObjectRef {
                name: None,
                namespace: Some("org-x".into())
            }))
        );
        assert_eq!(
            read(json!({"type": "Label"})).place(),
            Some(VersionPlace::default())
        );
        assert!(
            serde_json::from_value::<VersionPlaceSpec>(json!({"type": "Helm"})).is_err(),
            "an unknown type"
        );
        assert!(
            serde_json::from_value::<VersionPlaceSpec>(json!({"values": "x"})).is_err(),
            "an unknown field"
        );
    }
}
