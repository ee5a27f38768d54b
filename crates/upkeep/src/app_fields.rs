//! The app plan: every marked field of a repository, with the version its policy allows now
//! and whether it is written or held (and why), plus the unified diff of the edits. Used by
//! `plan`, `apply`, `run`, quickstart and the cluster commands (for diffs).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::Outcome;
use crate::fleet::Fleet;
use crate::render::Table;
use upkeep_git::marked_fields::{self as gitops, Action, Field, Scope};

/// Plans every marked field in the files under each automation's path (every file when there
/// is no automation): the fields with their action and reason, and the diff of what would be
/// written. A policySelector that does not compile gives `Err(Outcome::Invalid)`.
pub(crate) fn plan_repo(
    repo: &Path,
    fleet: &Fleet,
    now: Timestamp,
) -> Result<(Vec<Field>, String), Outcome> {
    let scopes = match gitops::scopes(&fleet.automations, fleet) {
        Ok(s) => s,
        Err((message, hint)) => {
            crate::render::error_with_hint(&message, hint);
            return Err(Outcome::Invalid);
        }
    };
    let git = upkeep_git::Repo::open(repo).ok();
    let collected = collect(
        repo,
        &scopes,
        &fleet.invalid_automations(),
        git.as_ref(),
        Some(fleet),
        false,
    );
    let mut fields: Vec<Field> = collected.problems.into_iter().map(|(_, f)| f).collect();
    let mut diff = String::new();
    let files: Vec<&WorkFile> = collected.files.iter().collect();
    for (file, plan) in files.iter().zip(plan_files(&files, &scopes, fleet, now)) {
        if let Some(new) = &plan.new_text {
            diff.push_str(&unified_diff(&file.rel, &file.text, new));
        }
        fields.extend(plan.fields);
    }
    Ok((fields, diff))
}

/// A manifest file with markers in the work tree, with the scope that owns it.
#[derive(Debug)]
pub(crate) struct WorkFile {
    /// The real path from the root (`/`-separated): where it is read and written.
    pub(crate) rel: String,
    pub(crate) text: String,
    /// Index of the owning scope.
    pub(crate) scope: usize,
    /// Why none of its fields may be written (uncommitted changes, an invalid automation).
    pub(crate) held: Option<String>,
}

/// The work tree's files with markers, and the files that could not be read.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub(crate) files: Vec<WorkFile>,
    /// `(scope index, error field)` for each manifest that was skipped.
    pub(crate) problems: Vec<(usize, Field)>,
}

/// Plans one collected file under its scope, holding it when it must not be written.
pub(crate) fn plan_file(
    file: &WorkFile,
    scopes: &[Scope<'_>],
    fleet: &Fleet,
    now: Timestamp,
) -> gitops::FilePlan {
    let mut plan = gitops::plan_text(&file.rel, &file.text, &scopes[file.scope], fleet, now);
    if let Some(why) = &file.held {
        gitops::hold_file(&mut plan, why);
    }
    plan
}

/// [`plan_file`] for each of `files`, in order, on two threads when there are many (the
/// machine kinds upkeep runs on have two cores; parsing and verifying each file's edits is
/// most of a large plan's work).
pub(crate) fn plan_files(
    files: &[&WorkFile],
    scopes: &[Scope<'_>],
    fleet: &Fleet,
    now: Timestamp,
) -> Vec<gitops::FilePlan> {
    let plan = |chunk: &[&WorkFile]| -> Vec<gitops::FilePlan> {
        chunk
            .iter()
            .map(|f| plan_file(f, scopes, fleet, now))
            .collect()
    };
    if files.len() < 64 {
        return plan(files);
    }
    let (first, second) = files.split_at(files.len() / 2);
    std::thread::scope(|s| {
        let other = s.spawn(|| plan(second));
        let mut plans = plan(first);
        match other.join() {
            Ok(rest) => plans.extend(rest),
            // A panic in the other half is a bug; plan that half again here so it surfaces.
            Err(_) => plans.extend(plan(second)),
        }
        plans
    })
}

/// Every manifest file with markers under each scope's path, inside the repository (see
/// `upkeep_api::walk`: symlinks never lead out, loops end, unreadable and non-UTF-8 files are
/// problems of their own), owned by the first scope that lists it. In a Git checkout, a file
/// whose bytes differ from `HEAD` (or that `HEAD` does not have) is held: upkeep never writes
/// over uncommitted work. `held` are `(path, why)` of invalid automations. A writer holding the
/// repository's lock passes `clean`: temporary files a killed upkeep left are removed. With
/// `read`, the texts the fleet's loading read are used instead of reading the files again (a
/// file the loading could not read is read again here, to say why).
pub(crate) fn collect(
    repo_dir: &Path,
    scopes: &[Scope<'_>],
    held: &[(String, String)],
    git: Option<&upkeep_git::Repo>,
    read: Option<&Fleet>,
    clean: bool,
) -> Collected {
    use upkeep_api::walk::{SkipReason, read_text, walk};
    let mut out = Collected::default();
    if clean && let Some(fleet) = read {
        for leftover in &fleet.leftovers {
            let _ = std::fs::remove_file(leftover);
        }
    }
    let mut owner: BTreeMap<String, (usize, PathBuf)> = BTreeMap::new();
    let mut reported: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for (i, scope) in scopes.iter().enumerate() {
        let walked = match read.and_then(|f| f.walked.as_ref()) {
            // No symlink anywhere: the scope's files are the loaded files under its path.
            Some(files) if repo_dir.join(scope.path()).is_dir() => {
                let path = scope.path();
                upkeep_api::walk::Walk {
                    files: files
                        .iter()
                        .filter(|f| {
                            path.is_empty()
                                || f.rel
                                    .strip_prefix(path.as_str())
                                    .is_some_and(|r| r.starts_with('/'))
                        })
                        .cloned()
                        .collect(),
                    ..Default::default()
                }
            }
            _ => walk(repo_dir, &scope.path()),
        };
        if clean {
            for leftover in &walked.leftovers {
                let _ = std::fs::remove_file(leftover);
            }
        }
        for s in walked.skipped {
            if s.rel == scope.path() || (s.rel.is_empty() && scope.path().is_empty()) {
                eprintln!(
                    "warning: AppUpgradeAutomation {}: path {}: {}",
                    scope.name(),
                    if scope.path().is_empty() { "." } else { &s.rel },
                    s.reason
                );
                continue;
            }
            if !reported.insert(s.rel.clone()) {
                continue;
            }
            match s.reason {
                // Nothing is behind these: a warning is all they are worth.
                SkipReason::LinkLoop | SkipReason::Dangling { .. } => {
                    eprintln!("warning: {s} (skipped)");
                }
                _ => out.problems.push((i, skipped_field(&s.rel, &s.reason))),
            }
        }
        for f in walked.files {
            owner.entry(f.rel).or_insert((i, f.path));
        }
    }
    let mut texts = Vec::new();
    for (rel, (scope, path)) in owner {
        if let Some(fleet) = read {
            if let Some((text, stamp)) = fleet.marked.get(&rel)
                && upkeep_api::walk::Stamp::now(&path) == Some(*stamp)
            {
                texts.push((rel, text.clone(), scope));
                continue;
            }
            // A marked file written since it was loaded, or one the loading could not read,
            // is read (again) below; any other file had no marker when it was read.
            if !fleet.marked.contains_key(&rel) && !fleet.unparsable.contains(&rel) {
                continue;
            }
        }
        match read_text(&path) {
            Ok(text) if upkeep_core::manifest::may_have_markers(&text) => {
                texts.push((rel, text, scope));
            }
            Ok(_) => {}
            Err(reason) => {
                if reported.insert(rel.clone()) {
                    out.problems.push((scope, skipped_field(&rel, &reason)));
                }
            }
        }
    }
    let dirty: std::collections::BTreeSet<String> = match git {
        Some(repo) => {
            let current: Vec<(String, &[u8])> = texts
                .iter()
                .map(|(rel, text, _)| (rel.clone(), text.as_bytes()))
                .collect();
            match repo.uncommitted(&current) {
                Ok(d) => d.into_iter().collect(),
                Err(e) => {
                    eprintln!("warning: reading the Git index: {e}; every file is held");
                    texts.iter().map(|(r, _, _)| r.clone()).collect()
                }
            }
        }
        None => std::collections::BTreeSet::new(),
    };
    for (rel, text, scope) in texts {
        let held = held
            .iter()
            .find(|(dir, _)| {
                dir.is_empty()
                    || rel
                        .strip_prefix(dir.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            })
            .map(|(_, why)| why.clone())
            .or_else(|| {
                dirty.contains(&rel).then(|| {
                    "the file has changes Git has not committed (or is not tracked): commit or stash them; upkeep never writes over them".to_owned()
                })
            });
        out.files.push(WorkFile {
            rel,
            text,
            scope,
            held,
        });
    }
    out
}

/// The error row for a manifest the walk or the read left out.
fn skipped_field(rel: &str, reason: &upkeep_api::walk::SkipReason) -> Field {
    let line = match reason {
        upkeep_api::walk::SkipReason::NotUtf8 { line, .. } => *line,
        _ => 0,
    };
    Field::error(
        rel,
        line,
        match reason.hint() {
            Some(h) => format!("skipped: {reason} (hint: {h})"),
            None => format!("skipped: {reason}"),
        },
    )
}

/// The one summary line `plan` and `apply` print on stderr: how many fields are written (or to
/// write), held, up to date, not managed here, and in error.
pub(crate) fn summary(fields: &[Field], written: &str) -> String {
    let count = |a: Action| fields.iter().filter(|f| f.action == a).count();
    format!(
        "{} {written}, {} held, {} up to date, {} not managed, {} in error",
        count(Action::Write),
        count(Action::Held),
        count(Action::UpToDate),
        count(Action::NotManaged),
        count(Action::Error),
    )
}

/// The fields as a table, one row each: where, which policy, the step, its kind, the action
/// and why.
pub(crate) fn fields_table(fields: &[Field]) -> String {
    let mut t = Table::new(&[
        "FIELD",
        "POLICY",
        "CURRENT → TARGET",
        "KIND",
        "ACTION",
        "WHY",
    ]);
    for f in fields {
        let step = match &f.target {
            Some(target) if f.action != Action::UpToDate => format!("{} → {target}", f.current),
            _ => f.current.clone(),
        };
        let action = match f.action {
            Action::Write => "write",
            Action::Held => "held",
            Action::UpToDate => "up to date",
            Action::NotManaged => "not managed",
            Action::Error => "error",
        };
        t.row(vec![
            format!("{}:{}", f.file, f.line),
            f.policy.clone(),
            step,
            f.kind.unwrap_or("-").to_owned(),
            action.to_owned(),
            f.reason.clone(),
        ]);
    }
    t.render("  ")
}

/// A unified diff of a rewrite that changed whole lines in place (the line count never
/// changes: upkeep edits scalars, never adds or removes lines), with 3 lines of context.
pub(crate) fn unified_diff(path: &str, old: &str, new: &str) -> String {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let changed: Vec<usize> = (0..a.len().max(b.len()))
        .filter(|&i| a.get(i) != b.get(i))
        .collect();
    let mut out = format!("--- a/{path}\n+++ b/{path}\n");
    let mut i = 0;
    while i < changed.len() {
        // A hunk: changes closer than 2 × context lines share one.
        let mut j = i;
        while j + 1 < changed.len() && changed[j + 1] - changed[j] <= 6 {
            j += 1;
        }
        let start = changed[i].saturating_sub(3);
        let end = (changed[j] + 4).min(a.len());
        let _ = writeln!(
            out,
            "@@ -{},{} +{},{} @@",
            start + 1,
            end - start,
            start + 1,
            end - start
        );
        for k in start..end {
            if changed[i..=j].contains(&k) {
                out.push('-');
                push_line(&mut out, a.get(k).copied().unwrap_or_default());
                out.push('+');
                push_line(&mut out, b.get(k).copied().unwrap_or_default());
            } else {
                out.push(' ');
                push_line(&mut out, a[k]);
            }
        }
        i = j + 1;
    }
    out
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line.trim_end_matches(['\n', '\r']));
    out.push('\n');
}

/// Red and green for a terminal.
pub(crate) fn colour(diff: &str) -> String {
    diff.lines()
        .map(|l| {
            if l.starts_with("---") || l.starts_with("+++") {
                format!("\x1b[1m{l}\x1b[0m\n")
            } else if l.starts_with('-') {
                format!("\x1b[31m{l}\x1b[0m\n")
            } else if l.starts_with('+') {
                format!("\x1b[32m{l}\x1b[0m\n")
            } else if l.starts_with("@@") {
                format!("\x1b[36m{l}\x1b[0m\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_diff_table() {
        let ten = (1..=10).fold(String::new(), |mut s, i| {
            let _ = writeln!(s, "l{i}");
            s
        });
        let cases: &[(&str, String, &str, &str)] = &[
            (
                "a\nb\nc\n",
                "a\nB\nc\n".to_owned(),
                "--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n",
                "one change with the context the file has",
            ),
            (
                &ten,
                ten.replace("l1\n", "L1\n").replace("l10\n", "L10\n"),
                "--- a/f\n+++ b/f\n@@ -1,4 +1,4 @@\n-l1\n+L1\n l2\n l3\n l4\n@@ -7,4 +7,4 @@\n l7\n l8\n l9\n-l10\n+L10\n",
                "changes far apart get their own hunks",
            ),
            (
                "a\r\nb\r\n",
                "a\r\nB\r\n".to_owned(),
                "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n+B\n",
                "CRLF files diff by line, without the CR",
            ),
        ];
        for (old, new, want, reason) in cases {
            assert_eq!(unified_diff("f", old, new), *want, "{reason}");
        }
    }
}
