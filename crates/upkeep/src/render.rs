//! Presentation: times in two zones, a tiny table printer, and error reports with hints.
//!
//! Every error report goes through [`upkeep_core::redact`] here, before it is wrapped for the
//! terminal: a wrapped line could split a URL and hide its password from redaction afterwards.

use std::fmt;

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
    fn table_aligns_columns() {
        let mut t = Table::new(&["A", "LONG HEADER"]);
        t.row(vec!["wide cell".into(), "x".into()]);
        assert_eq!(t.render(""), "A          LONG HEADER\nwide cell  x\n");
    }
}
