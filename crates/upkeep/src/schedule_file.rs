//! One MaintenanceSchedule read from a file (`upkeep windows --file`), reporting problems as
//! `upkeep validate` does.

use crate::render::print_diagnostics;
use std::path::Path;
use upkeep_api::{Resource, load_path};
use upkeep_core::schedule::Schedule;

/// Loads the MaintenanceSchedule named `name` (or the only one) from `path`. Prints the
/// problems and returns `None` when the file is invalid or the choice is ambiguous.
pub(crate) fn load_schedule(path: &Path, name: Option<&str>) -> Option<(String, String, Schedule)> {
    if !path.exists() {
        crate::render::error_with_hint(
            &format!("{}: no such file or directory", path.display()),
            None,
        );
        return None;
    }
    let loaded = load_path(path);
    if !loaded.diagnostics.is_empty() {
        print_diagnostics(&loaded.diagnostics);
        return None;
    }
    let schedules: Vec<_> = loaded
        .documents
        .into_iter()
        .filter_map(|d| match d.resource {
            Resource::MaintenanceSchedule { object, schedule } => Some((object, schedule)),
            _ => None,
        })
        .collect();
    let names: Vec<String> = schedules
        .iter()
        .map(|(o, _)| o.metadata.name.clone().unwrap_or_default())
        .collect();
    let pick = match name {
        Some(n) => names.iter().position(|x| x == n),
        None if schedules.len() == 1 => Some(0),
        None => None,
    };
    let Some(i) = pick else {
        let (msg, hint) = match (name, schedules.len()) {
            (_, 0) => (
                format!("{}: no MaintenanceSchedule found", path.display()),
                "the file needs a document with `apiVersion: upkeep.dev/v1alpha1` and `kind: MaintenanceSchedule`".to_owned(),
            ),
            (Some(n), _) => (
                format!("{}: no MaintenanceSchedule named {n:?}", path.display()),
                format!("the file has: {}", names.join(", ")),
            ),
            (None, _) => (
                format!("{}: holds {} schedules", path.display(), schedules.len()),
                format!("choose one with --name ({})", names.join(", ")),
            ),
        };
        crate::render::error_with_hint(&msg, Some(hint));
        return None;
    };
    let (object, schedule) = schedules.into_iter().nth(i).expect("index from position");
    Some((names[i].clone(), object.spec.time_zone.clone(), *schedule))
}
