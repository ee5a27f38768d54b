//! `upkeep validate`: parse and validate manifests, reporting each problem where it is: the
//! upkeep resources (through the loader) and every marked field upkeep could not edit safely
//! (through the same check `apply` makes before it writes).

use std::path::{Path, PathBuf};

use upkeep_api::{Diagnostic, Loaded, Resource, load_path};
use upkeep_core::manifest::{MarkerError, find_markers, may_have_markers};

use crate::Outcome;
use crate::render::print_diagnostics;

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
/// `upkeep_git::marked_fields::Overlap`), each reported at the second automation.
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
    let found = upkeep_git::marked_fields::overlaps(&objects, &label_refs, &|a, b| {
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
