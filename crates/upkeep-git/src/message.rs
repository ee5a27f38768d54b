//! Commit messages from a template, and pull-request bodies, over the list of changes made.
//!
//! Why it is shaped this way:
//! - Templates are minijinja (Jinja2 syntax, as in Helm-adjacent tooling and Renovate's
//!   Handlebars-like templates) with **strict undefined**: a typo such as `{{ c.nwe }}` is an
//!   error that names the line, not a silently empty commit message.
//! - A template is checked when it is loaded, by rendering it once over a sample change, so
//!   `upkeep validate` and the controller's `Stalled` condition catch a broken template before
//!   any run needs it.
//! - Each change is visible to the template as `file`, `line`, `object`, `old`, `new`,
//!   `policy` and `kind`; the template also sees `automation` (`namespace/name`, or empty) and
//!   `files` (the changed files, sorted, once each).

use std::fmt::Write as _;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// One field upkeep changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeRecord {
    /// Path from the repository root.
    pub file: String,
    /// 1-based line of the field.
    pub line: usize,
    /// The object holding the field, `Kind namespace/name` (or the YAML key when the file is
    /// not a Kubernetes object, e.g. a values file).
    pub object: String,
    pub old: String,
    pub new: String,
    /// The VersionPolicy, `namespace/name`.
    pub policy: String,
    /// `patch`, `minor`, `major` or `change`.
    pub kind: String,
}

/// The commit message template used when an automation gives none.
pub const DEFAULT_MESSAGE_TEMPLATE: &str = "\
{% if changes|length == 1 %}{% set c = changes[0] %}Upgrade {{ c.object }} to {{ c.new }}\
{% else %}Upgrade {{ changes|length }} versions{% endif %}

{% for c in changes %}- {{ c.file }}:{{ c.line }} {{ c.object }}: {{ c.old }} -> {{ c.new }} ({{ c.policy }}, {{ c.kind }})
{% endfor %}{% if automation %}
Automation: {{ automation }}
{% endif %}";

/// A template that could not be compiled or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("commit message template{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
pub struct TemplateError {
    /// 1-based line in the template, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl TemplateError {
    fn from_minijinja(e: &minijinja::Error) -> Self {
        Self {
            line: e.line(),
            message: match e.detail() {
                Some(detail) => format!("{} ({detail})", e.kind()),
                None => e.kind().to_string(),
            },
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        "the template sees `changes` (each with file, line, object, old, new, policy, kind), `files` and `automation`"
    }
}

/// A compiled, checked commit message template.
#[derive(Debug)]
pub struct MessageTemplate {
    env: Environment<'static>,
}

#[derive(Serialize)]
struct Context<'a> {
    automation: &'a str,
    changes: &'a [ChangeRecord],
    files: Vec<&'a str>,
}

impl MessageTemplate {
    /// Compiles `source` and renders it once over a sample change.
    pub fn new(source: &str) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.add_template_owned("message", source.to_owned())
            .map_err(|e| TemplateError::from_minijinja(&e))?;
        let template = Self { env };
        let sample = ChangeRecord {
            file: "apps/app.yaml".to_owned(),
            line: 1,
            object: "App default/app".to_owned(),
            old: "1.0.0".to_owned(),
            new: "1.1.0".to_owned(),
            policy: "default/app".to_owned(),
            kind: "minor".to_owned(),
        };
        template.render("default/automation", &[sample])?;
        Ok(template)
    }

    /// The default template.
    pub fn default_template() -> Self {
        // The default template is tested below; it cannot fail to compile.
        Self::new(DEFAULT_MESSAGE_TEMPLATE).unwrap_or_else(|e| panic!("default template: {e}"))
    }

    /// The message for `changes` made by `automation` (`namespace/name`, or empty).
    pub fn render(
        &self,
        automation: &str,
        changes: &[ChangeRecord],
    ) -> Result<String, TemplateError> {
        let mut files: Vec<&str> = changes.iter().map(|c| c.file.as_str()).collect();
        files.sort_unstable();
        files.dedup();
        let context = Context {
            automation,
            changes,
            files,
        };
        let template = self
            .env
            .get_template("message")
            .map_err(|e| TemplateError::from_minijinja(&e))?;
        let text = template
            .render(&context)
            .map_err(|e| TemplateError::from_minijinja(&e))?;
        let text = text.trim();
        if text.is_empty() {
            return Err(TemplateError {
                line: None,
                message: "the message is empty".to_owned(),
            });
        }
        Ok(format!("{text}\n"))
    }
}

/// A pull-request body: a Markdown table of the changes on the branch.
pub fn pull_request_body(automation: &str, changes: &[ChangeRecord]) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut body = String::from(
        "upkeep upgrades these versions:\n\n| file | object | from | to | kind | policy |\n|---|---|---|---|---|---|\n",
    );
    for c in changes {
        let _ = writeln!(
            body,
            "| `{}:{}` | {} | `{}` | `{}` | {} | {} |",
            cell(&c.file),
            c.line,
            cell(&c.object),
            cell(&c.old),
            cell(&c.new),
            c.kind,
            cell(&c.policy)
        );
    }
    if !automation.is_empty() {
        let _ = write!(
            body,
            "\nWritten by the AppUpgradeAutomation `{automation}`. upkeep updates this pull request on each run.\n"
        );
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(file: &str, old: &str, new: &str) -> ChangeRecord {
        ChangeRecord {
            file: file.to_owned(),
            line: 7,
            object: "HelmRelease flux-system/podinfo".to_owned(),
            old: old.to_owned(),
            new: new.to_owned(),
            policy: "flux-system/podinfo".to_owned(),
            kind: "minor".to_owned(),
        }
    }

    #[test]
    fn templates_render_or_fail_with_a_line() {
        type Case<'a> = (
            &'a str,
            &'a [ChangeRecord],
            Result<&'a str, Option<usize>>,
            &'a str,
        );
        let one = [change("apps/podinfo.yaml", "6.5.0", "6.6.0")];
        let two = [
            change("apps/b.yaml", "1.0.0", "1.1.0"),
            change("apps/a.yaml", "2.0.0", "2.0.1"),
        ];
        let cases: &[Case<'_>] = &[
            (
                DEFAULT_MESSAGE_TEMPLATE,
                &one,
                Ok(
                    "Upgrade HelmRelease flux-system/podinfo to 6.6.0\n\n- apps/podinfo.yaml:7 HelmRelease flux-system/podinfo: 6.5.0 -> 6.6.0 (flux-system/podinfo, minor)\n\nAutomation: ns/auto\n",
                ),
                "one change: its object and version in the subject",
            ),
            (
                "{{ changes|length }} in {{ files|join(', ') }}",
                &two,
                Ok("2 in apps/a.yaml, apps/b.yaml\n"),
                "files are sorted and listed once",
            ),
            (
                "Bump\n\n{% for c in changes %}{{ c.nwe }}{% endfor %}",
                &one,
                Err(Some(3)),
                "a misspelt field is an error on its line (strict undefined), not an empty string",
            ),
            (
                "{% for c in changes %}",
                &one,
                Err(Some(1)),
                "a syntax error is reported when the template is loaded",
            ),
            (
                "{% if false %}x{% endif %}",
                &one,
                Err(None),
                "an empty message is refused",
            ),
        ];
        for (source, changes, want, reason) in cases {
            let got = MessageTemplate::new(source).and_then(|t| t.render("ns/auto", changes));
            match (got, want) {
                (Ok(text), Ok(want)) => assert_eq!(text, *want, "{reason}"),
                (Err(e), Err(line)) => assert_eq!(e.line, *line, "{reason}: {e}"),
                (got, want) => panic!("{reason}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn pull_request_body_is_a_table_with_escaped_cells() {
        let body = pull_request_body("ns/auto", &[change("a|b.yaml", "1.0.0", "1.1.0")]);
        assert!(body.contains("| `a\\|b.yaml:7` | HelmRelease flux-system/podinfo | `1.0.0` | `1.1.0` | minor | flux-system/podinfo |"), "{body}");
        assert!(body.contains("`ns/auto`"), "{body}");
    }
}
