//! Presentation: times in two zones, a tiny table printer, and error reports with hints.
//!
//! Every error report goes through [`upkeep_core::redact`] here, before it is wrapped for the
//! terminal: a wrapped line could split a URL and hide its password from redaction afterwards.

use std::fmt;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use upkeep_api::Diagnostic;
use upkeep_core::redact::redact;

/// Prints `error: …` and an optional `hint: …` to stderr, redacted.
pub(crate) fn error_with_hint(message: &str, hint: Option<String>) {
    eprintln!("error: {}", redact(message));
    if let Some(h) = hint {
        eprintln!("  hint: {}", redact(&h));
    }
}

/// `report` rebuilt from its messages (each cause, and the help) redacted, for printing.
pub(crate) fn redacted_report(report: &miette::Report) -> miette::Report {
    let mut messages: Vec<String> = report
        .chain()
        .map(|e| redact(&e.to_string()).into_owned())
        .collect();
    let help = report.help().map(|h| redact(&h.to_string()).into_owned());
    let mut cause: Option<Box<Redacted>> = None;
    while let Some(message) = messages.pop() {
        cause = Some(Box::new(Redacted {
            help: if messages.is_empty() {
                help.clone()
            } else {
                None
            },
            message,
            cause,
        }));
    }
    match cause {
        Some(top) => miette::Report::new(*top),
        None => miette::miette!("{}", redact(&report.to_string())),
    }
}

/// One redacted message of a report, with its redacted cause and help.
#[derive(Debug)]
struct Redacted {
    message: String,
    help: Option<String>,
    cause: Option<Box<Redacted>>,
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Redacted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

impl miette::Diagnostic for Redacted {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }
}

pub(crate) use upkeep_core::describe::{local, relative, span, utc};

/// An instant for a table: its local time and how far away it is, to the second when it is
/// under an hour away (`Sat 2026-12-05 23:41:07 UTC (in 4m 30s)`: a minute is a long time
/// when a step is due), else to the minute as [`local`] and [`relative`] show it.
pub(crate) fn instant(t: jiff::Timestamp, now: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> String {
    let secs = (t.as_second() - now.as_second()).abs();
    if secs >= 3_600 {
        return format!("{} ({})", local(t, tz), relative(t, now));
    }
    let (m, s) = (secs / 60, secs % 60);
    let away = match (m, s) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m {s}s"),
    };
    let when = t.to_zoned(tz.clone()).strftime("%a %Y-%m-%d %H:%M:%S %Z");
    if t >= now {
        format!("{when} (in {away})")
    } else {
        format!("{when} ({away} ago)")
    }
}

/// A left-aligned text table with a header row; columns sized to their widest cell.
#[derive(Debug, Default)]
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|s| (*s).to_owned()).collect()],
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn render(&self, indent: &str) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::from(indent);
            for (c, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if c + 1 < row.len() {
                    let pad = widths[c] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_redacted_message_by_message_and_keep_their_help() {
        use miette::WrapErr as _;
        let inner: miette::Result<()> = Err(miette::miette!(
            help = "retry https://u:help-pw@h/x",
            "GET https://h/index.yaml?token=inner-tok"
        ));
        let report = inner
            .wrap_err("scanning oci://u:outer-pw@h/c")
            .expect_err("an error");
        let shown = format!("{:?}", redacted_report(&report));
        for secret in ["inner-tok", "outer-pw"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("scanning oci://u:<redacted>@h/c")
                && shown.contains("GET https://h/index.yaml?token=<redacted>"),
            "every message of the chain is kept: {shown}"
        );
        let help = miette::miette!(help = "retry https://u:help-pw@h/x", "failed");
        let shown = format!("{:?}", redacted_report(&help));
        assert!(
            shown.contains("retry https://u:<redacted>@h/x") && !shown.contains("help-pw"),
            "the help is kept, redacted: {shown}"
        );
    }

    #[test]
    fn instants_under_an_hour_away_have_seconds() {
        let now: jiff::Timestamp = "2026-12-05T23:00:00Z".parse().expect("now");
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").expect("tz");
        let cases = [
            (
                "2026-12-05T23:04:30Z",
                "UTC",
                "Sat 2026-12-05 23:04:30 UTC (in 4m 30s)",
                "under an hour ahead: to the second",
            ),
            (
                "2026-12-05T23:00:09Z",
                "UTC",
                "Sat 2026-12-05 23:00:09 UTC (in 9s)",
                "seconds away: seconds only",
            ),
            (
                "2026-12-05T23:59:00Z",
                "UTC",
                "Sat 2026-12-05 23:59:00 UTC (in 59m)",
                "whole minutes still show their :00 seconds",
            ),
            (
                "2026-12-05T22:58:50Z",
                "UTC",
                "Sat 2026-12-05 22:58:50 UTC (1m 10s ago)",
                "under an hour ago: to the second too",
            ),
            (
                "2026-12-06T00:00:00Z",
                "UTC",
                "Sun 2026-12-06 00:00 UTC (in 1h)",
                "an hour away: minute precision, as before",
            ),
            (
                "2026-12-07T01:30:45Z",
                "UTC",
                "Mon 2026-12-07 01:30 UTC (in 1d 2h)",
                "days away: minutes",
            ),
            (
                "2026-12-05T23:10:05Z",
                "Europe/Berlin",
                "Sun 2026-12-06 00:10:05 CET (in 10m 5s)",
                "in the schedule's time zone",
            ),
        ];
        for (t, zone, want, why) in cases {
            let tz = if zone == "UTC" {
                jiff::tz::TimeZone::UTC
            } else {
                berlin.clone()
            };
            let t: jiff::Timestamp = t.parse().expect("t");
            assert_eq!(instant(t, now, &tz), want, "{why}");
        }
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["A", "LONG HEADER"]);
        t.row(vec!["wide cell".into(), "x".into()]);
        assert_eq!(t.render(""), "A          LONG HEADER\nwide cell  x\n");
    }
}
