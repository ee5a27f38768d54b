//! Presentation: times in two zones, a tiny table printer, and error reports with hints.

use jiff::{Timestamp, Zoned, tz::TimeZone};

/// Prints `error: …` and an optional `hint: …` to stderr.
pub(crate) fn error_with_hint(message: &str, hint: Option<String>) {
    eprintln!("error: {message}");
    if let Some(h) = hint {
        eprintln!("  hint: {h}");
    }
}

/// `Tue 2026-11-24 22:00 CET` in `tz`.
pub(crate) fn local(ts: Timestamp, tz: &TimeZone) -> String {
    let z: Zoned = ts.to_zoned(tz.clone());
    z.strftime("%a %Y-%m-%d %H:%M %Z").to_string()
}

/// `2026-11-24 21:00Z`.
pub(crate) fn utc(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%d %H:%MZ").to_string()
}

/// A short human duration, `4h`, `2d 3h`, `45m`.
pub(crate) fn span(from: Timestamp, to: Timestamp) -> String {
    let secs = to.as_second() - from.as_second();
    if secs < 0 {
        return format!("-{}", span(to, from));
    }
    let (d, h, m) = (secs / 86_400, (secs % 86_400) / 3_600, (secs % 3_600) / 60);
    match (d, h, m) {
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// "in 3d 4h" / "2h ago" relative to `now`.
pub(crate) fn relative(ts: Timestamp, now: Timestamp) -> String {
    if ts >= now {
        format!("in {}", span(now, ts))
    } else {
        format!("{} ago", span(ts, now))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_table() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let cases: &[(i64, &str, &str)] = &[
            (45 * 60, "45m", "minutes only"),
            (4 * 3600, "4h", "whole hours"),
            (4 * 3600 + 30 * 60, "4h 30m", "hours and minutes"),
            (2 * 86_400, "2d", "whole days"),
            (2 * 86_400 + 3 * 3600 + 59, "2d 3h", "days drop minutes"),
        ];
        for (secs, want, reason) in cases {
            let t1 = Timestamp::from_second(t0.as_second() + secs).unwrap();
            assert_eq!(span(t0, t1), *want, "{reason}");
        }
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["A", "LONG HEADER"]);
        t.row(vec!["wide cell".into(), "x".into()]);
        assert_eq!(t.render(""), "A          LONG HEADER\nwide cell  x\n");
    }
}
