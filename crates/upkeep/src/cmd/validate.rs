//! `upkeep validate`: parse and validate manifests, reporting each problem where it is: the
//! upkeep resources (through the loader) and every marked field upkeep could not edit safely
//! (through the same check `apply` makes before it writes).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use upkeep_api::{Diagnostic, Loaded, Resource, load_path};
use upkeep_core::manifest::{MarkerError, find_markers, may_have_markers};
use upkeep_core::schedule::Schedule;

use crate::Outcome;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when every manifest is valid, 1 when any is not, 2 when a path cannot be read."
)]
pub(crate) struct Args {
    /// Files or directories (searched recursively for *.yaml, *.yml and Kustomization files).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

pub(crate) fn run(args: &Args) -> Outcome {
    let mut total = Loaded::default();
    for path in &args.paths {
        if !path.exists() {
            crate::render::error_with_hint(
                &format!("{}: no such file or directory", path.display()),
                None,
            );
            return Outcome::Invalid;
        }
        let loaded = load_path(path);
        total.documents.extend(loaded.documents);
        total.diagnostics.extend(loaded.diagnostics);
        total.unparsable.extend(loaded.unparsable);
    }
    total.diagnostics.extend(overlap_diagnostics(&total));
    let markers = marker_diagnostics(&args.paths, &total);
    total.diagnostics.extend(markers);
    print_diagnostics(&total.diagnostics);
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for d in &total.documents {
        let kind = d.resource.kind();
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    if total.diagnostics.is_empty() {
        eprintln!(
            "valid: {} document(s) ({})",
            total.documents.len(),
            summary.join(", ")
        );
        Outcome::Success
    } else {
        eprintln!(
            "invalid: {} problem(s); {} valid document(s)",
            total.diagnostics.len(),
            total.documents.len()
        );
        Outcome::No
    }
}

/// AppUpgradeAutomations of one repository and branch that would both write some files (see
/// `upkeep_git::plan::Overlap`), each reported at the second automation.
fn overlap_diagnostics(loaded: &Loaded) -> Vec<Diagnostic> {
    let automations: Vec<(&upkeep_api::Document, &upkeep_api::AppUpgradeAutomation)> = loaded
        .documents
        .iter()
        .filter_map(|d| match &d.resource {
            Resource::AppUpgradeAutomation(a) => Some((d, a.as_ref())),
            _ => None,
        })
        .collect();
    let labels: Vec<std::collections::BTreeMap<String, String>> = loaded
        .documents
        .iter()
        .filter_map(|d| match &d.resource {
            Resource::VersionPolicy { object, .. } => {
                Some(object.metadata.labels.clone().unwrap_or_default())
            }
            _ => None,
        })
        .collect();
    let label_refs: Vec<&std::collections::BTreeMap<String, String>> = labels.iter().collect();
    let objects: Vec<upkeep_api::AppUpgradeAutomation> =
        automations.iter().map(|(_, a)| (*a).clone()).collect();
    let found = upkeep_git::plan::overlaps(&objects, &label_refs, &|a, b| {
        let branch = |x: &upkeep_api::AppUpgradeAutomation| {
            x.spec.git.reference.as_ref().and_then(|r| r.branch.clone())
        };
        a.spec.git.url == b.spec.git.url && branch(a) == branch(b)
    });
    found
        .into_iter()
        .filter_map(|o| {
            let (doc, _) = automations.iter().find(|(_, a)| {
                let (ns, name) = upkeep_api::namespaced_name(&a.metadata);
                format!("{ns}/{name}") == o.second
            })?;
            Some(Diagnostic {
                file: doc.file.clone(),
                line: doc.line,
                column: 1,
                offset: 0,
                field: Some("spec.path".to_owned()),
                message: o.to_string(),
                hint: Some(o.hint().to_owned()),
            })
        })
        .collect()
}

/// The marked fields `apply` would refuse (a value over several lines, an explicit key, an
/// anchored value, …), one diagnostic each, for every file the loader read as YAML.
fn marker_diagnostics(paths: &[PathBuf], loaded: &Loaded) -> Vec<Diagnostic> {
    // Every manifest under the paths, not only the Kubernetes objects: a marked field lives as
    // often in a values file or a kustomize patch.
    let mut files: Vec<PathBuf> = paths
        .iter()
        .flat_map(|p| {
            if p.is_dir() {
                upkeep_api::walk::walk(p, "")
                    .files
                    .into_iter()
                    .map(|f| p.join(f.rel))
                    .collect()
            } else {
                vec![p.clone()]
            }
        })
        .filter(|f| !loaded.unparsable.contains(f))
        .collect();
    files.sort();
    files.dedup();
    let mut out = Vec::new();
    for file in &files {
        let Ok(text) = upkeep_api::walk::read_text(file) else {
            continue; // the loader has reported it
        };
        if !may_have_markers(&text) {
            continue;
        }
        out.extend(
            find_markers(&text)
                .1
                .iter()
                .map(|e| marker_diagnostic(file, &text, e)),
        );
    }
    out
}

fn marker_diagnostic(file: &Path, text: &str, e: &MarkerError) -> Diagnostic {
    let offset: usize = text
        .split_inclusive('\n')
        .take(e.line().saturating_sub(1))
        .map(str::len)
        .sum();
    let line = text[offset..].lines().next().unwrap_or_default();
    let message = e.to_string();
    let prefix = format!("line {}: ", e.line());
    Diagnostic {
        file: file.to_path_buf(),
        line: e.line(),
        column: line.chars().take_while(|c| *c == ' ').count() + 1,
        offset,
        field: None,
        message: message.strip_prefix(&prefix).unwrap_or(&message).to_owned(),
        hint: e.hint(),
    }
}

/// Prints each diagnostic as `error: file:line:col: field: message`, the source line with a
/// caret under the column, and the hint.
pub(crate) fn print_diagnostics(diagnostics: &[Diagnostic]) {
    let mut sources: HashMap<PathBuf, Option<String>> = HashMap::new();
    for d in diagnostics {
        let text = sources
            .entry(d.file.clone())
            .or_insert_with(|| source_text(&d.file));
        // Redacted as a whole: the message and the quoted source line may hold a password.
        eprint!(
            "{}",
            upkeep_core::redact::redact(&render(d, text.as_deref()))
        );
    }
}

/// The text shown around a diagnostic: only of a regular file the loader would read (a FIFO
/// would block, a huge file is what the loader refused to hold).
/// The text of a file to quote a line from: never through a link (it may lead out of the
/// repository), never a FIFO, never more than the loader reads (see `upkeep_api::walk`).
fn source_text(path: &Path) -> Option<String> {
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.is_file())
        .then(|| upkeep_api::walk::read_text(path).ok())
        .flatten()
}

fn render(d: &Diagnostic, text: Option<&str>) -> String {
    let mut out = String::new();
    let field = d
        .field
        .as_deref()
        .map(|f| format!("{f}: "))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "error: {}:{}:{}: {field}{}",
        d.file.display(),
        d.line,
        d.column,
        d.message
    );
    if let Some(line) = text.and_then(|t| t.lines().nth(d.line.saturating_sub(1))) {
        let num = d.line.to_string();
        let gutter = " ".repeat(num.len());
        let caret_at: usize = line
            .chars()
            .take(d.column.saturating_sub(1))
            .map(|_| 1)
            .sum();
        let _ = writeln!(out, " {gutter} |");
        let _ = writeln!(out, " {num} | {}", line.trim_end_matches('\r'));
        let _ = writeln!(out, " {gutter} | {}^", " ".repeat(caret_at));
    }
    if let Some(h) = &d.hint {
        let _ = writeln!(out, "  hint: {h}");
    }
    out
}

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
