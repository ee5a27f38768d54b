//! `upkeep plan`: every marked field in a GitOps repository, what it would become, and why a
//! change is held; then the diff of what `apply` would write. Reads only; writes nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use miette::{IntoDiagnostic, WrapErr};
use serde::Serialize;
use upkeep_api::{AppUpgradeAutomation, namespaced_name};
use upkeep_core::manifest::{Update, apply, find_markers};
use upkeep_core::schedule::Verdict;
use upkeep_core::selector::LabelSelector;
use upkeep_core::version::{UpgradeKind, Version};

use super::Output;
use crate::Outcome;
use crate::cmd::windows::closed_reason;
use crate::fleet::{Fleet, NamedSchedule};
use crate::out::{out, outln};
use crate::render::{Table, local, relative};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Fields are the scalars marked `# {\"$upkeep\": \"<namespace>:<policy>\"}` or, as in Flux \
repositories, `# {\"$imagepolicy\": \"<namespace>:<policy>:tag\"}`, in the files under each \
AppUpgradeAutomation's `path` (without any AppUpgradeAutomation: every file, with no schedule). \
A change is written only in its automation's schedule, for its kind (patch/minor/major).\n\n\
Exit status: 0 when planned, 1 when a marker or its policy could not be used, 2 on invalid input."
)]
pub(crate) struct Args {
    /// The GitOps repository (a directory).
    #[arg(long, default_value = ".", value_name = "DIR")]
    repo: PathBuf,
    /// Plan as if it were this time (RFC 3339, or a UTC wall-clock time); default: now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// A Docker config.json with registry credentials.
    #[arg(long, value_name = "FILE")]
    docker_config: Option<PathBuf>,
    /// Leave out the diff.
    #[arg(long)]
    no_diff: bool,
    /// `text` for people, `json` for programs.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

/// What happens to one marked field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Action {
    Write,
    Held,
    UpToDate,
    Error,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Field {
    file: String,
    line: usize,
    key: Option<String>,
    policy: String,
    current: String,
    target: Option<String>,
    kind: Option<&'static str>,
    action: Action,
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_window: Option<String>,
}

#[derive(Debug, Serialize)]
struct Json<'a> {
    at: String,
    fields: &'a [Field],
    diff: String,
}

pub(crate) fn run(args: &Args) -> miette::Result<Outcome> {
    let now = match &args.at {
        Some(s) => match crate::timearg::parse(s, &TimeZone::UTC) {
            Ok(t) => t,
            Err(e) => {
                crate::render::error_with_hint(&format!("--at: {e}"), None);
                return Ok(Outcome::Invalid);
            }
        },
        None => Timestamp::now(),
    };
    let credentials = match crate::discover::credentials(args.docker_config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            crate::render::error_with_hint(&e.to_string(), e.hint());
            return Ok(Outcome::Invalid);
        }
    };
    let fleet = match Fleet::load(&args.repo, now, &credentials)? {
        Ok(f) => f,
        Err(outcome) => return Ok(outcome),
    };
    if fleet.automations.is_empty() {
        eprintln!(
            "note: no AppUpgradeAutomation in {}: planning every marker in it, with no schedule",
            args.repo.display()
        );
    }

    let (fields, diff) = match plan_repo(&args.repo, &fleet, now)? {
        Ok(planned) => planned,
        Err(outcome) => return Ok(outcome),
    };

    let problems = fields.iter().filter(|f| f.action == Action::Error).count();
    match args.output {
        Output::Json => {
            let json = Json {
                at: now.to_string(),
                fields: &fields,
                diff: if args.no_diff { String::new() } else { diff },
            };
            outln!("{}", serde_json::to_string_pretty(&json).into_diagnostic()?);
        }
        Output::Text => print_text(&fields, &diff, args, now),
    }
    Ok(if problems == 0 {
        Outcome::Success
    } else {
        Outcome::No
    })
}

/// Plans every marked field in the files under each automation's path (every file when there
/// is no automation): the fields with their action and reason, and the diff of what would be
/// written. A policySelector that does not compile gives `Err(Outcome::Invalid)`.
pub(crate) fn plan_repo(
    repo: &Path,
    fleet: &Fleet,
    now: Timestamp,
) -> miette::Result<Result<(Vec<Field>, String), Outcome>> {
    let mut fields = Vec::new();
    let mut diff = String::new();
    for (file, automation) in covered_files(repo, &fleet.automations)? {
        let text = std::fs::read_to_string(&file)
            .into_diagnostic()
            .wrap_err_with(|| format!("reading {}", file.display()))?;
        let rel = file
            .strip_prefix(repo)
            .unwrap_or(&file)
            .display()
            .to_string();
        let selector = match automation.and_then(|a| a.spec.policy_selector.as_ref()) {
            None => None,
            Some(sel) => match crate::fleet::label_selector(sel) {
                Ok(s) => Some(s),
                Err(e) => {
                    crate::render::error_with_hint(
                        &format!("{rel}: its AppUpgradeAutomation's policySelector: {e}"),
                        e.hint(),
                    );
                    return Ok(Err(Outcome::Invalid));
                }
            },
        };
        let schedule = automation.and_then(|a| {
            let (ns, _) = namespaced_name(&a.metadata);
            a.spec
                .schedule_ref
                .as_ref()
                .map(|r| (r.name.clone(), fleet.schedule(&ns, &r.name)))
        });
        let (markers, errors) = find_markers(&text);
        for e in errors {
            fields.push(Field {
                file: rel.clone(),
                line: e.line(),
                key: None,
                policy: "-".into(),
                current: String::new(),
                target: None,
                kind: None,
                action: Action::Error,
                reason: match e.hint() {
                    Some(h) => format!("{e} (hint: {h})"),
                    None => e.to_string(),
                },
                next_window: None,
            });
        }
        let mut writes: BTreeMap<(String, String), String> = BTreeMap::new();
        for m in markers {
            let field = plan_field(fleet, &rel, &m, schedule.as_ref(), selector.as_ref(), now);
            if field.action == Action::Write
                && let Some(t) = &field.target
            {
                writes.insert((m.namespace.clone(), m.policy.clone()), t.clone());
            }
            fields.push(field);
        }
        if writes.is_empty() {
            continue;
        }
        let updates: Vec<Update<'_>> = writes
            .iter()
            .map(|((namespace, policy), version)| Update {
                namespace,
                policy,
                version,
            })
            .collect();
        match apply(&text, &updates) {
            Ok(edited) if edited.is_changed() => {
                diff.push_str(&unified_diff(&rel, &text, &edited.text));
            }
            Ok(_) => {}
            Err(e) => fields.push(Field {
                file: rel.clone(),
                line: 0,
                key: None,
                policy: "-".into(),
                current: String::new(),
                target: None,
                kind: None,
                action: Action::Error,
                reason: format!("the file would be left unchanged: {e}"),
                next_window: None,
            }),
        }
    }
    Ok(Ok((fields, diff)))
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

fn print_text(fields: &[Field], diff: &str, args: &Args, now: Timestamp) {
    outln!(
        "Plan at {} for {}",
        local(now, &TimeZone::UTC),
        args.repo.display()
    );
    outln!();
    out!("{}", fields_table(fields));
    let writes = fields.iter().filter(|f| f.action == Action::Write).count();
    let held = fields.iter().filter(|f| f.action == Action::Held).count();
    outln!();
    outln!(
        "{writes} to write, {held} held, {} field(s) in all",
        fields.len()
    );
    if !args.no_diff && !diff.is_empty() {
        outln!();
        if std::io::stdout().is_terminal() {
            out!("{}", colour(diff));
        } else {
            out!("{diff}");
        }
    }
}

/// The files each automation covers (the first automation listing a file owns it); without
/// automations, every file under the repository.
fn covered_files<'a>(
    repo: &Path,
    automations: &'a [AppUpgradeAutomation],
) -> miette::Result<Vec<(PathBuf, Option<&'a AppUpgradeAutomation>)>> {
    if automations.is_empty() {
        return Ok(crate::fleet::yaml_files(repo)?
            .into_iter()
            .map(|f| (f, None))
            .collect());
    }
    let mut owner: BTreeMap<PathBuf, &AppUpgradeAutomation> = BTreeMap::new();
    for a in automations {
        if a.spec.policy_selector.is_some() {
            let (ns, name) = namespaced_name(&a.metadata);
            eprintln!(
                "warning: AppUpgradeAutomation {ns}/{name}: policySelector is not applied by `plan` yet; every marker under its path is planned"
            );
        }
        let root = repo.join(a.spec.path.as_deref().unwrap_or("."));
        if !root.is_dir() {
            let (ns, name) = namespaced_name(&a.metadata);
            eprintln!(
                "warning: AppUpgradeAutomation {ns}/{name}: path {} is not a directory in {}",
                a.spec.path.as_deref().unwrap_or("."),
                repo.display()
            );
            continue;
        }
        for f in crate::fleet::yaml_files(&root)? {
            owner.entry(f).or_insert(a);
        }
    }
    Ok(owner.into_iter().map(|(f, a)| (f, Some(a))).collect())
}

/// Decides one marked field: target, kind, and whether it may be written now.
fn plan_field(
    fleet: &Fleet,
    file: &str,
    m: &upkeep_core::manifest::Marker,
    schedule: Option<&(String, Option<&NamedSchedule>)>,
    selector: Option<&LabelSelector>,
    now: Timestamp,
) -> Field {
    let current = m.current_version().to_owned();
    let mut field = Field {
        file: file.to_owned(),
        line: m.line,
        key: m.key.clone(),
        policy: format!("{}/{}", m.namespace, m.policy),
        current: current.clone(),
        target: None,
        kind: None,
        action: Action::Error,
        reason: String::new(),
        next_window: None,
    };
    let Some(d) = fleet.policies.get(&(m.namespace.clone(), m.policy.clone())) else {
        field.reason = format!(
            "no VersionPolicy {}/{} in the repository",
            m.namespace, m.policy
        );
        return field;
    };
    if selector.is_some_and(|s| !s.matches(&d.labels)) {
        field.action = Action::Held;
        field.reason = "the automation's policySelector does not select this policy".into();
        return field;
    }
    let Some(target) = d.selected.clone() else {
        field.action = Action::Held;
        field.reason = "the policy allows no version".into();
        return field;
    };
    field.target = Some(target.clone());
    let age_note = d
        .held
        .as_ref()
        .map(|(tag, until)| format!("; {tag} too young until {}", local(*until, &TimeZone::UTC)))
        .unwrap_or_default();
    if target == current {
        field.action = Action::UpToDate;
        field.reason = format!(
            "{}{age_note}",
            if d.pinned { "pinned" } else { "latest allowed" }
        );
        return field;
    }
    // A change that is not an upgrade (a downgrade, or tags that are not SemVer) is scheduled
    // as strictly as a major upgrade.
    let step = Version::parse(&current)
        .zip(Version::parse(&target))
        .and_then(|(a, b)| UpgradeKind::between(&a, &b));
    field.kind = Some(match step {
        Some(UpgradeKind::Patch) => "patch",
        Some(UpgradeKind::Minor) => "minor",
        Some(UpgradeKind::Major) => "major",
        None => "change",
    });
    let kind = step.unwrap_or(UpgradeKind::Major);
    let pin = if d.pinned { "pinned; " } else { "" };
    match schedule {
        None => {
            field.action = Action::Write;
            field.reason = format!("{pin}no schedule{age_note}");
        }
        Some((name, None)) => {
            field.action = Action::Held;
            field.reason = format!("scheduleRef {name} is not in the repository");
        }
        Some((name, Some(s))) => {
            let tz = s.schedule.time_zone().clone();
            match s.schedule.check(now, kind) {
                Verdict::Open { window, until } => {
                    field.action = Action::Write;
                    field.reason = match until {
                        Some(u) => format!(
                            "{pin}{name}: window {window} open until {}{age_note}",
                            local(u, &tz)
                        ),
                        None => format!("{pin}{name}: allowed at any time{age_note}"),
                    };
                }
                Verdict::Closed { reason, next_open } => {
                    field.action = Action::Held;
                    field.reason = match next_open {
                        Some(n) => {
                            field.next_window = Some(n.to_string());
                            format!(
                                "{name}: {} until {} ({}){age_note}",
                                closed_reason(&reason, &tz),
                                local(n, &tz),
                                relative(n, now)
                            )
                        }
                        None => format!(
                            "{name}: {}; no allowed time ahead{age_note}",
                            closed_reason(&reason, &tz)
                        ),
                    };
                }
            }
        }
    }
    field
}

/// A unified diff of a rewrite that changed whole lines in place (the line count never
/// changes: upkeep edits scalars, never adds or removes lines), with 3 lines of context.
fn unified_diff(path: &str, old: &str, new: &str) -> String {
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
fn colour(diff: &str) -> String {
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
