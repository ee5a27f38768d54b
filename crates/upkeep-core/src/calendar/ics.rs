//! The RFC 5545 writer: one VCALENDAR with a VTIMEZONE per zone used and a VEVENT per entry.
//!
//! - Lines end with CRLF and are folded at 75 octets, never inside a UTF-8 sequence
//!   (RFC 5545 3.1); TEXT values escape `\`, `;`, `,` and newlines, and drop the other
//!   control characters, which a content line may not hold (3.3.11).
//! - VTIMEZONE blocks come from jiff's tz data: one STANDARD or DAYLIGHT sub-component per
//!   transition from the one in effect at the first event to the last event's end (no RRULE:
//!   explicit onsets are exact even where the rules changed), or a single STANDARD for a zone
//!   without transitions. Coverage is capped at [`MAX_COVERED_DAYS`]; an event outside what
//!   its VTIMEZONE covers is written in UTC.
//! - A time is written as local time with TZID only when that local time resolves back to the
//!   same instant by RFC 5545's rule (an ambiguous local time means the first occurrence); the
//!   second occurrence of a repeated hour is written in UTC, so no client can misread it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};

use super::Entry;

/// How far a VTIMEZONE reaches after its first event (11 years: longer than any feed upkeep
/// writes, `--days` is capped at 3653).
const MAX_COVERED_DAYS: i64 = 4018;

/// Writes `entries` as one calendar named `name`, stamped `stamp` (DTSTAMP: when the feed was
/// generated). `zones` resolves the entries' `tz` names (the schedules' own zones); an entry
/// whose zone is missing there, or `UTC`, is written in UTC.
pub fn write_ics(
    entries: &[Entry],
    name: &str,
    stamp: Timestamp,
    zones: &BTreeMap<String, TimeZone>,
) -> String {
    let mut out = String::new();
    for line in [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//upkeep.dev//upkeep calendar//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
    ] {
        push(&mut out, line);
    }
    push(&mut out, &format!("X-WR-CALNAME:{}", escape_text(name)));
    // The range each zone must cover.
    let mut ranges: BTreeMap<&str, (Timestamp, Timestamp)> = BTreeMap::new();
    for e in entries {
        if let Some(z) =
            e.tz.as_deref()
                .filter(|z| zones.contains_key(*z) && *z != "UTC")
        {
            let r = ranges.entry(z).or_insert((e.start, e.end));
            r.0 = r.0.min(e.start);
            r.1 = r.1.max(e.end);
        }
    }
    let mut covered: BTreeMap<&str, (Timestamp, Timestamp)> = BTreeMap::new();
    for (z, (from, to)) in ranges {
        let cap = from
            .checked_add(SignedDuration::from_hours(MAX_COVERED_DAYS * 24))
            .unwrap_or(Timestamp::MAX);
        let to = to.min(cap);
        vtimezone(&mut out, z, &zones[z], from, to);
        covered.insert(z, (from, to));
    }
    for e in entries {
        let tz = e.tz.as_deref().and_then(|z| {
            let (from, to) = covered.get(z)?;
            (e.start >= *from && e.end <= *to).then(|| (z, &zones[z]))
        });
        push(&mut out, "BEGIN:VEVENT");
        push(&mut out, &format!("UID:{}", escape_text(&e.uid)));
        push(&mut out, &format!("SEQUENCE:{}", e.sequence));
        push(&mut out, &format!("DTSTAMP:{}", utc(stamp)));
        push(&mut out, &format!("DTSTART{}", time_value(e.start, tz)));
        push(
            &mut out,
            &format!("DTEND{}", time_value(e.end.max(e.start), tz)),
        );
        push(&mut out, &format!("SUMMARY:{}", escape_text(&e.summary)));
        if !e.description.is_empty() {
            push(
                &mut out,
                &format!("DESCRIPTION:{}", escape_text(&e.description)),
            );
        }
        push(&mut out, &format!("CATEGORIES:{}", e.kind.as_str()));
        push(
            &mut out,
            if e.kind.busy() {
                "TRANSP:OPAQUE"
            } else {
                "TRANSP:TRANSPARENT"
            },
        );
        push(
            &mut out,
            match e.kind {
                super::Kind::ClusterUpgrade | super::Kind::AppUpgrade => "STATUS:TENTATIVE",
                _ => "STATUS:CONFIRMED",
            },
        );
        push(
            &mut out,
            &format!("X-UPKEEP-SUBJECT:{}", escape_text(&e.subject)),
        );
        push(&mut out, "END:VEVENT");
    }
    push(&mut out, "END:VCALENDAR");
    out
}

/// `:20260101T100000Z`, or `;TZID=Europe/Berlin:20260101T110000` when the local time names
/// the instant unambiguously under RFC 5545's rules.
fn time_value(t: Timestamp, tz: Option<(&str, &TimeZone)>) -> String {
    let t = whole_second(t);
    if let Some((name, zone)) = tz {
        let local = zone.to_datetime(t);
        if zone
            .to_ambiguous_timestamp(local)
            .compatible()
            .is_ok_and(|back| back == t)
        {
            return format!(
                ";TZID={}:{}",
                param_value(name),
                local.strftime("%Y%m%dT%H%M%S")
            );
        }
    }
    format!(":{}", utc(t))
}

fn whole_second(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

fn utc(t: Timestamp) -> String {
    whole_second(t).strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// A parameter value, quoted when it holds `:`, `;` or `,` (RFC 5545 3.2); `"` cannot be
/// quoted and is dropped.
fn param_value(v: &str) -> String {
    let v: String = v.chars().filter(|c| *c != '"' && !c.is_control()).collect();
    if v.contains([':', ';', ',']) {
        format!("\"{v}\"")
    } else {
        v
    }
}

/// One VTIMEZONE for `name` covering `[from, to]`.
fn vtimezone(out: &mut String, name: &str, tz: &TimeZone, from: Timestamp, to: Timestamp) {
    push(out, "BEGIN:VTIMEZONE");
    push(out, &format!("TZID:{}", param_value(name)));
    let mut onsets: Vec<(Timestamp, Offset, Offset, String, bool)> = Vec::new();
    let mut add = |t: &jiff::tz::TimeZoneTransition<'_>| {
        let at = t.timestamp();
        if onsets.last().is_some_and(|o| o.0 >= at) {
            return;
        }
        let before = at
            .checked_sub(SignedDuration::from_nanos(1))
            .map_or(t.offset(), |b| tz.to_offset(b));
        onsets.push((
            at,
            before,
            t.offset(),
            t.abbreviation().to_owned(),
            t.dst().is_dst(),
        ));
    };
    // The transition in effect at `from`, and back to the last one to standard time: a
    // VTIMEZONE of DAYLIGHT parts alone is valid, but clients (python's icalendar, Outlook)
    // derive the DST saving from the standard offset before it.
    let mut earlier: Vec<_> = Vec::new();
    for t in tz.preceding(from).take(8) {
        let standard = !t.dst().is_dst();
        earlier.push(t);
        if standard {
            break;
        }
    }
    for t in earlier.iter().rev() {
        add(t);
    }
    for t in tz.following(
        from.checked_sub(SignedDuration::from_nanos(1))
            .unwrap_or(from),
    ) {
        if t.timestamp() > to {
            break;
        }
        add(&t);
    }
    if onsets.is_empty() {
        // A zone without transitions (fixed offset, or none in its data).
        let info = tz.to_offset_info(from);
        push(out, "BEGIN:STANDARD");
        push(out, "DTSTART:19700101T000000");
        push(out, &format!("TZOFFSETFROM:{}", offset(info.offset())));
        push(out, &format!("TZOFFSETTO:{}", offset(info.offset())));
        push(out, &format!("TZNAME:{}", escape_text(info.abbreviation())));
        push(out, "END:STANDARD");
    }
    for (at, before, after, abbreviation, dst) in onsets {
        let part = if dst { "DAYLIGHT" } else { "STANDARD" };
        // DTSTART is the onset in the local time before it (RFC 5545 3.6.5).
        let local = before.to_datetime(at);
        push(out, &format!("BEGIN:{part}"));
        push(out, &format!("DTSTART:{}", local.strftime("%Y%m%dT%H%M%S")));
        push(out, &format!("TZOFFSETFROM:{}", offset(before)));
        push(out, &format!("TZOFFSETTO:{}", offset(after)));
        if !abbreviation.is_empty() {
            push(out, &format!("TZNAME:{}", escape_text(&abbreviation)));
        }
        push(out, &format!("END:{part}"));
    }
    push(out, "END:VTIMEZONE");
}

/// `+0100`, `-0930`, or `+005328` with seconds (a local mean time).
fn offset(offset: Offset) -> String {
    let seconds = offset.seconds();
    let sign = if seconds < 0 { '-' } else { '+' };
    let total = seconds.unsigned_abs();
    let (hours, minutes, rest) = (total / 3600, total / 60 % 60, total % 60);
    let mut text = format!("{sign}{hours:02}{minutes:02}");
    if rest != 0 {
        let _ = write!(text, "{rest:02}");
    }
    text
}

fn push(out: &mut String, line: &str) {
    out.push_str(&fold_line(line));
}

/// A content line folded at 75 octets (continuations start with one space, so they carry at
/// most 74 octets of the value), never splitting a UTF-8 sequence, ended with CRLF.
pub fn fold_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 37 + 2);
    let mut used = 0;
    let mut limit = 75;
    for c in line.chars() {
        let n = c.len_utf8();
        if used + n > limit {
            out.push_str("\r\n ");
            used = 0;
            limit = 74;
        }
        out.push(c);
        used += n;
    }
    out.push_str("\r\n");
    out
}

/// A TEXT value (RFC 5545 3.3.11): `\` `;` `,` escaped, a newline (LF, CRLF or CR) as `\n`,
/// other control characters except tab dropped.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\n");
                }
            }
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}
