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
//!   `files` (the changed files, sorted, once each) and `values` (the automation's
//!   `commit.messageTemplateValues`).
//! - Automations read from Flux's `ImageUpdateAutomation` keep Flux's Go templates: those are
//!   rendered by [`crate::gotemplate`] over Flux's data, and fall back to Flux's default
//!   message with a warning rather than fail (see [`MessageTemplate::flux`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::gotemplate::{GoTemplate, flux_data};

/// Flux's commit message when an `ImageUpdateAutomation` gives no template
/// (image-automation-controller `internal/source/source.go`, `defaultMessageTemplate`), and
/// upkeep's fallback when its template cannot be used.
pub const FLUX_DEFAULT_MESSAGE: &str = "Update from image update automation";

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
        "the template sees `changes` (each with file, line, object, old, new, policy, kind), `files`, `automation` and `values`"
    }
}

/// A compiled, checked commit message template: upkeep's own (minijinja), or a Go template
/// of an automation read from Flux's `ImageUpdateAutomation` (see [`MessageTemplate::flux`]).
#[derive(Debug)]
pub struct MessageTemplate {
    kind: Kind,
    values: BTreeMap<String, String>,
    /// Why a Flux template was not used (each once), for the caller to print or record.
    warnings: Mutex<Vec<String>>,
}

#[derive(Debug)]
enum Kind {
    Jinja(Environment<'static>),
    /// `None`: the template could not be parsed; Flux's default message is used.
    Go(Option<GoTemplate>),
}

#[derive(Serialize)]
struct Context<'a> {
    automation: &'a str,
    changes: &'a [ChangeRecord],
    files: Vec<&'a str>,
    values: &'a BTreeMap<String, String>,
}

impl MessageTemplate {
    /// A Flux `ImageUpdateAutomation`'s `messageTemplate` (a Go `text/template`) with its
    /// `messageTemplateValues`; no template is Flux's default message. A template outside the
    /// supported subset (see [`crate::gotemplate`]) is not an error: Flux's default message is
    /// used instead and [`MessageTemplate::take_warnings`] says why, naming the template line.
    /// The same happens when rendering fails.
    pub fn flux(source: Option<&str>, values: BTreeMap<String, String>) -> Self {
        let mut warnings = Vec::new();
        let template = match source {
            None => None,
            Some(src) => match GoTemplate::parse(src) {
                Ok(t) => Some(t),
                Err(e) => {
                    warnings.push(fallback_warning(&e));
                    None
                }
            },
        };
        Self {
            kind: Kind::Go(template),
            values,
            warnings: Mutex::new(warnings),
        }
    }

    /// Also gives the template `values` (upkeep's templates see them as `values`).
    #[must_use]
    pub fn with_values(mut self, values: BTreeMap<String, String>) -> Self {
        self.values = values;
        self
    }

    /// Why a Flux template was not used since the last call (see [`MessageTemplate::flux`]).
    pub fn take_warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }

    fn warn(&self, warning: String) {
        if let Ok(mut w) = self.warnings.lock()
            && !w.contains(&warning)
        {
            w.push(warning);
        }
    }

    /// Compiles `source` and renders it once over a sample change.
    pub fn new(source: &str) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.add_template_owned("message", source.to_owned())
            .map_err(|e| TemplateError::from_minijinja(&e))?;
        let template = Self {
            kind: Kind::Jinja(env),
            values: BTreeMap::new(),
            warnings: Mutex::new(Vec::new()),
        };
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
        let env = match &self.kind {
            Kind::Jinja(env) => env,
            Kind::Go(template) => {
                return Ok(self.render_go(template.as_ref(), automation, changes));
            }
        };
        let mut files: Vec<&str> = changes.iter().map(|c| c.file.as_str()).collect();
        files.sort_unstable();
        files.dedup();
        let context = Context {
            automation,
            changes,
            files,
            values: &self.values,
        };
        let template = env
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

impl MessageTemplate {
    /// A Flux template's message: what the template writes (trailing blank lines removed, one
    /// newline added), or Flux's default message when there is no usable template.
    fn render_go(
        &self,
        template: Option<&GoTemplate>,
        automation: &str,
        changes: &[ChangeRecord],
    ) -> String {
        let default = format!("{FLUX_DEFAULT_MESSAGE}\n");
        let Some(template) = template else {
            return default;
        };
        let data = flux_data(automation, changes, &self.values);
        match template.execute(&data) {
            Ok(text) if !text.trim().is_empty() => format!("{}\n", text.trim_end()),
            Ok(_) => {
                self.warn(
                    "spec.git.commit.messageTemplate renders an empty message; Flux's default message is used instead (hint: make the template write a subject line)"
                        .to_owned(),
                );
                default
            }
            Err(e) => {
                self.warn(fallback_warning(&e));
                default
            }
        }
    }
}

fn fallback_warning(e: &crate::gotemplate::GoTemplateError) -> String {
    format!(
        "spec.git.commit.messageTemplate line {}: {}; Flux's default message ({FLUX_DEFAULT_MESSAGE:?}) is used instead (hint: upkeep renders the Go template constructs Flux's documentation shows: range, if, with, variables, index, len, print, printf, println, comparisons, and, or, not, lower, upper, contains, toString, sha256sum, trunc, …)",
        e.line, e.message
    )
}

/// The Git trailer that records one change in upkeep's commits, so the history can be read
/// back from Git itself (`upkeep history` rebuilds its store from these after a crash).
pub const CHANGE_TRAILER: &str = "Upkeep-Change";

/// `%`-escapes what would break a `key=value` field of a trailer line.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == '%' || c == '=' || c == ' ' || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One trailer line for `c` (without the newline).
fn trailer(c: &ChangeRecord) -> String {
    format!(
        "{CHANGE_TRAILER}: file={} line={} object={} policy={} old={} new={} kind={}",
        escape(&c.file),
        c.line,
        escape(&c.object),
        escape(&c.policy),
        escape(&c.old),
        escape(&c.new),
        escape(&c.kind)
    )
}

/// `message` with one [`CHANGE_TRAILER`] line per change appended: to the message's trailer
/// block when its last paragraph is one (`Signed-off-by: …`), else as a new paragraph.
pub fn with_trailers(message: &str, changes: &[ChangeRecord]) -> String {
    if changes.is_empty() {
        return message.to_owned();
    }
    let body = message.trim_end();
    let last = body.rsplit("\n\n").next().unwrap_or("");
    let is_trailer_block = !last.is_empty()
        && body.contains("\n\n")
        && last.lines().all(|l| {
            l.split_once(": ").is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
        });
    let mut out = String::with_capacity(body.len() + changes.len() * 120);
    out.push_str(body);
    out.push_str(if is_trailer_block { "\n" } else { "\n\n" });
    for c in changes {
        out.push_str(&trailer(c));
        out.push('\n');
    }
    out
}

/// The changes recorded in a commit message's [`CHANGE_TRAILER`] lines (in order); lines that
/// do not parse are ignored.
pub fn changes_in_message(message: &str) -> Vec<ChangeRecord> {
    let prefix = format!("{CHANGE_TRAILER}: ");
    message
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .filter_map(|fields| {
            let mut c = ChangeRecord {
                file: String::new(),
                line: 0,
                object: String::new(),
                old: String::new(),
                new: String::new(),
                policy: String::new(),
                kind: String::new(),
            };
            for field in fields.split(' ') {
                let (k, v) = field.split_once('=')?;
                let v = crate::ssh::percent_decode(v)?;
                match k {
                    "file" => c.file = v,
                    "line" => c.line = v.parse().ok()?,
                    "object" => c.object = v,
                    "policy" => c.policy = v,
                    "old" => c.old = v,
                    "new" => c.new = v,
                    "kind" => c.kind = v,
                    _ => {}
                }
            }
            (!c.file.is_empty() && !c.policy.is_empty()).then_some(c)
        })
        .collect()
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

    #[test]
    fn trailers_round_trip_and_join_an_existing_trailer_block() {
        let odd = ChangeRecord {
            file: "apps/my app/100% =x.yaml".to_owned(),
            line: 12,
            object: "HelmRelease flux-system/pod info".to_owned(),
            old: "1.0.0".to_owned(),
            new: "1.1.0+build.7".to_owned(),
            policy: "flux-system/podinfo".to_owned(),
            kind: "minor".to_owned(),
        };
        let plain = change("apps/b.yaml", "2.0.0", "3.0.0");
        // (message, expected separator before the trailers, reason)
        let cases = [
            (
                "Upgrade podinfo\n",
                "Upgrade podinfo\n\nUpkeep-Change",
                "a new paragraph",
            ),
            (
                "Upgrade\n\nSigned-off-by: A <a@example.com>\n",
                "a@example.com>\nUpkeep-Change",
                "joins the existing trailer block",
            ),
            (
                "Upgrade\n\nsee: the docs and more text here\nsecond line\n",
                "second line\n\nUpkeep-Change",
                "a paragraph that is not all trailers gets a new one",
            ),
        ];
        for (message, joint, reason) in cases {
            let out = with_trailers(message, &[odd.clone(), plain.clone()]);
            assert!(out.contains(joint), "{reason}: {out}");
            assert_eq!(
                changes_in_message(&out),
                vec![odd.clone(), plain.clone()],
                "{reason}: round trip"
            );
        }
        assert_eq!(with_trailers("x\n", &[]), "x\n", "no change, no trailer");
        assert!(
            changes_in_message("Upkeep-Change: file=a%ZZ line=1 policy=a/b").is_empty(),
            "a broken escape is ignored, not misread"
        );
    }
}
