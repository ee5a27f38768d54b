//! Writing status: redacted, compared with the current one, and patched only when it differs.
//!
//! Every status the controllers write goes through [`redacted_status`] before it is compared
//! with the current one and patched, and every Event note through [`event_note`]: conditions
//! quote registry, Git and forge errors, which may quote URLs and servers' answers, and a
//! status is readable by anyone who may `get` the object.

use std::time::Duration;

use jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::context::FIELD_MANAGER;
use super::error::Error;

/// Writes `wanted` as the status of `object` (a namespaced `K`) with a merge patch as
/// [`FIELD_MANAGER`], only when it differs from `current`. Returns whether it wrote.
pub async fn write_status<K, S>(
    client: kube::Client,
    object: &K,
    current: Option<&S>,
    wanted: &S,
) -> Result<bool, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: Serialize,
{
    Ok(write_status_version(client, object, current, wanted)
        .await?
        .is_some())
}

/// [`write_status`], returning the object's resourceVersion after the write (`Some("")` when
/// the server did not say), `None` when nothing was written: a controller that must tell its
/// own write from a stale cache entry compares it with what its cache shows.
pub async fn write_status_version<K, S>(
    client: kube::Client,
    object: &K,
    current: Option<&S>,
    wanted: &S,
) -> Result<Option<String>, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: Serialize,
{
    let current = serde_json::to_value(current)?;
    let wanted = redacted_status(serde_json::to_value(Some(wanted))?);
    if current == wanted {
        return Ok(None);
    }
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let api: Api<K> = Api::namespaced(client, &namespace);
    api.patch_status(
        &name,
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        },
        &Patch::Merge(serde_json::json!({ "status": status_patch(&current, &wanted) })),
    )
    .await
    .map_err(|source| Error::WriteStatus {
        kind: kind_of::<K>(),
        object: format!("{namespace}/{name}"),
        source,
    })
    .map(|written| Some(written.resource_version().unwrap_or_default()))
}

/// The kind of a typed resource as a `'static` name for errors.
fn kind_of<K: Resource<DynamicType = ()>>() -> &'static str {
    const KINDS: [&str; 7] = [
        "MaintenanceSchedule",
        "ChartSource",
        "VersionPolicy",
        "AppUpgradeAutomation",
        "ClusterUpgrade",
        "ClusterUpgradePolicy",
        "ClusterUpgradeRecord",
    ];
    let kind = K::kind(&());
    KINDS
        .into_iter()
        .find(|k| *k == kind.as_ref())
        .unwrap_or("object")
}

/// `status` with every string in it redacted ([`upkeep_core::redact`]). Applied before the
/// comparison with the current status, so an unchanged status is still not rewritten.
pub fn redacted_status(status: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match status {
        Value::String(s) => match upkeep_core::redact::redact(&s) {
            std::borrow::Cow::Borrowed(_) => Value::String(s),
            std::borrow::Cow::Owned(r) => Value::String(r),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(redacted_status).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, redacted_status(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The note of an Event, redacted.
pub fn event_note(text: &str) -> Option<String> {
    Some(upkeep_core::redact::redact(text).into_owned())
}

/// The merge patch that turns the `current` status into `wanted`: `wanted` itself, plus an
/// explicit `null` for every top-level field that `current` has and `wanted` leaves out
/// (statuses skip empty fields when serialised, and a JSON merge patch keeps absent fields,
/// so without the nulls a closed window would stay `activeWindow` forever).
pub fn status_patch(current: &serde_json::Value, wanted: &serde_json::Value) -> serde_json::Value {
    // Callers redact `wanted` before comparing; once more here so no writer can forget.
    let mut patch = redacted_status(wanted.clone());
    if let (Some(current), Some(fields)) = (current.as_object(), patch.as_object_mut()) {
        for key in current.keys() {
            fields.entry(key.clone()).or_insert(serde_json::Value::Null);
        }
    }
    patch
}

/// The wait from `now` to `at` (at least a second, so a boundary reached early by timer skew
/// does not spin).
pub fn until(now: Timestamp, at: Timestamp) -> Duration {
    let wait = at.duration_since(now);
    Duration::try_from(wait)
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::status_patch;

    #[test]
    fn status_patches_clear_fields_that_went_away() {
        let cases = [
            (
                json!({"activeWindow": "w", "nextWindows": [1]}),
                json!({"nextWindows": [2]}),
                json!({"activeWindow": null, "nextWindows": [2]}),
                "a closed window is removed, not kept",
            ),
            (
                json!(null),
                json!({"nextWindows": [2]}),
                json!({"nextWindows": [2]}),
                "no status yet: the wanted status as is",
            ),
            (
                json!({"nextWindows": [1]}),
                json!({"activeWindow": "w", "nextWindows": [1]}),
                json!({"activeWindow": "w", "nextWindows": [1]}),
                "a new field is simply set",
            ),
        ];
        for (current, wanted, patch, why) in cases {
            assert_eq!(status_patch(&current, &wanted), patch, "{why}");
        }
    }
}
