//! upkeep's resources, `upkeep.dev/v1alpha1`: types, loading, validation, conversion.
//!
//! The same manifests are read from files by the CLI and from the API server by the
//! controller, so this crate has two halves that never mix:
//!
//! - **Types and conversion** ([`chart_source`], [`version_policy`], …): kube
//!   `CustomResource` types (CRDs come from them) and per-kind `to_core`/`validate` fns that
//!   turn an object into `upkeep-core` values or a list of [`FieldError`]s, each naming a field
//!   path. Nothing here knows about files.
//! - **Loading** ([`load_str`], [`load_path`]): YAML files with many documents, dispatched on
//!   `apiVersion`/`kind`, every problem a [`Diagnostic`] with file, line, column and field.
//!   Linear in the size of a file: nesting deeper than [`MAX_DEPTH`], more than [`MAX_NODES`]
//!   nodes and files larger than [`MAX_FILE_BYTES`] are diagnosed before any costly read.
//!
//! Conversion happens once, at the boundary: a loaded [`Resource`] carries the object and the
//! core value made from it, so callers never convert twice and never see an invalid object.

pub mod app_upgrade_automation;
pub mod chart_source;
pub mod cluster;
pub mod cluster_edit;
pub mod cluster_upgrade;
pub mod cluster_upgrade_policy;
pub mod cluster_upgrade_record;
mod common;
mod diagnostic;
pub mod duration;
pub mod flux;
pub mod flux_automation;
pub mod gs_layout;
mod load;
mod locate;
pub mod maintenance_schedule;
pub mod placement;
pub mod release;
pub mod scheduled;
pub mod values_annotations;
pub mod version_place;
pub mod version_policy;
pub mod walk;
pub mod yaml;

pub use app_upgrade_automation::AppUpgradeAutomation;
pub use chart_source::{ChartSource, SourceSettings};
pub use cluster::ClusterObject;
pub use cluster_upgrade::ClusterUpgrade;
pub use cluster_upgrade_policy::ClusterUpgradePolicy;
pub use cluster_upgrade_record::ClusterUpgradeRecord;
pub use common::{LocalRef, NamespacedRef};
pub use diagnostic::{Diagnostic, FieldError, spec_message};
pub use flux::Origin;
pub use load::{
    API_VERSION, Document, InvalidObject, KINDS, Loaded, MAX_FILE_BYTES, RESOURCE_API_VERSIONS,
    Resources, load_path, load_resources, load_resources_keeping, load_str, read_manifest,
};
pub use locate::{MAX_DEPTH, MAX_NODES};
pub use maintenance_schedule::MaintenanceSchedule;
pub use version_policy::VersionPolicy;

use upkeep_core::schedule::Schedule;
use upkeep_core::version::Policy;

/// One loaded, validated resource. Variants with a core value carry it beside the object.
///
/// Flux `ImageRepository`/`ImagePolicy` objects load as `ChartSource`/`VersionPolicy` (their
/// `kind()` is the upkeep kind); [`Resource::origin`] tells them apart (see [`flux`]).
#[derive(Debug, Clone)]
pub enum Resource {
    ChartSource {
        object: Box<ChartSource>,
        settings: Box<SourceSettings>,
    },
    VersionPolicy {
        object: Box<VersionPolicy>,
        policy: Box<Policy>,
    },
    AppUpgradeAutomation(Box<AppUpgradeAutomation>),
    MaintenanceSchedule {
        object: Box<MaintenanceSchedule>,
        schedule: Box<Schedule>,
    },
    ClusterUpgrade(Box<ClusterUpgrade>),
    ClusterUpgradePolicy(Box<ClusterUpgradePolicy>),
    /// A Cluster API `Cluster` (v1beta1 or v1beta2).
    Cluster(ClusterObject),
    /// Any other Kubernetes object (App, HelmRelease, Kustomization, …): not upkeep's.
    Other {
        api_version: String,
        kind: String,
        name: Option<String>,
        namespace: Option<String>,
    },
}

impl Resource {
    /// The `kind:` of the resource.
    pub fn kind(&self) -> &str {
        match self {
            Resource::ChartSource { .. } => "ChartSource",
            Resource::VersionPolicy { .. } => "VersionPolicy",
            Resource::AppUpgradeAutomation(_) => "AppUpgradeAutomation",
            Resource::MaintenanceSchedule { .. } => "MaintenanceSchedule",
            Resource::ClusterUpgrade(_) => "ClusterUpgrade",
            Resource::ClusterUpgradePolicy(_) => "ClusterUpgradePolicy",
            Resource::Cluster(_) => "Cluster",
            Resource::Other { kind, .. } => kind,
        }
    }

    /// `metadata.name` (always present for all but `Other`).
    pub fn name(&self) -> Option<&str> {
        match self {
            Resource::ChartSource { object, .. } => object.metadata.name.as_deref(),
            Resource::VersionPolicy { object, .. } => object.metadata.name.as_deref(),
            Resource::AppUpgradeAutomation(o) => o.metadata.name.as_deref(),
            Resource::MaintenanceSchedule { object, .. } => object.metadata.name.as_deref(),
            Resource::ClusterUpgrade(o) => o.metadata.name.as_deref(),
            Resource::ClusterUpgradePolicy(o) => o.metadata.name.as_deref(),
            Resource::Cluster(c) => Some(&c.name),
            Resource::Other { name, .. } => name.as_deref(),
        }
    }
}

/// The CustomResourceDefinitions of every upkeep kind, in [`KINDS`] order, then
/// `ClusterUpgradeRecord` (written by the controller only, so not a kind files hold), with
/// strict schemas (see [`strict_schema`]).
pub fn crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    use kube::CustomResourceExt;
    let mut crds = vec![
        ChartSource::crd(),
        VersionPolicy::crd(),
        AppUpgradeAutomation::crd(),
        MaintenanceSchedule::crd(),
        ClusterUpgrade::crd(),
        ClusterUpgradePolicy::crd(),
        ClusterUpgradeRecord::crd(),
    ];
    for version in crds.iter_mut().flat_map(|c| c.spec.versions.iter_mut()) {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            strict_schema(schema);
        }
    }
    crds
}

/// Removes `nullable: true` from `schema` and everything below it.
///
/// kube's derive marks every `Option<T>` field `nullable`. The API servers upkeep supports
/// (1.20 and up) publish a CRD's OpenAPI v2 with the `type`, `properties` and `items` of
/// nullable fields dropped (apiextensions `ToStructuralOpenAPIV2`: old kubectls could not
/// validate `null`), so kubectl could neither validate below them (a typo in
/// `spec.strategy` was silently pruned) nor `explain` them. upkeep never stores `null`:
/// absent optional fields are left out (`skip_serializing_if`), and a merge patch's `null`
/// deletes the key, which needs no `nullable`.
fn strict_schema(
    schema: &mut k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps,
) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
    };
    schema.nullable = None;
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        strict_schema(child);
    }
    match schema.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(item)) => strict_schema(item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => items.iter_mut().for_each(strict_schema),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(value)) = schema.additional_properties.as_mut() {
        strict_schema(value);
    }
    for list in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of] {
        list.iter_mut().flatten().for_each(strict_schema);
    }
}

/// Each CRD as YAML, with the file name `deploy/crds/` keeps it under (`<plural>.<group>.yaml`).
pub fn crds_yaml() -> Vec<(String, String)> {
    crds()
        .into_iter()
        .map(|crd| {
            let name = format!("{}.yaml", crd.metadata.name.clone().unwrap_or_default());
            // Serialising a CRD (plain data: strings, maps, lists) cannot fail. Long descriptions
            // stay on one line and multi-line ones are literal blocks, as `kubectl` users read
            // them (serde-saphyr would fold lines past 80 characters otherwise).
            let mut yaml = String::new();
            let options = serde_saphyr::ser_options! {
                min_fold_chars: usize::MAX,
                folded_wrap_chars: usize::MAX,
            };
            let _ = serde_saphyr::to_fmt_writer_with_options(&mut yaml, &crd, options);
            (
                name,
                format!("# Generated by `upkeep crds`; do not edit.\n---\n{yaml}"),
            )
        })
        .collect()
}

/// `(namespace, name)` of an object; a manifest without a namespace is in `default`, as
/// `kubectl apply` would place it.
pub fn namespaced_name(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> (String, String) {
    (
        meta.namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned()),
        meta.name.clone().unwrap_or_default(),
    )
}
