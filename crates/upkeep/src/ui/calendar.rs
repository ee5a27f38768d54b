//! The Calendar page (a Gantt-style timeline: one row per schedule, one per cluster, one per
//! planned app field) and the dashboard's `/calendar.ics`, both drawn from the feed
//! `upkeep calendar` writes ([`crate::calendar::repo_feed`], [`crate::calendar_kube::cluster_feed`]):
//! every bar is one [`Entry`], placed by its own start and end, never a time computed here.
//!
//! Scale: schedules and app fields are few and always shown; clusters are filtered
//! (`namespace`, `label` as on the Fleet page) and paged (`page`, `per`, 100 by default), so a
//! page of a 5,000-cluster fleet stays a few hundred kilobytes. The JSON twin holds the entries
//! of the rows shown, each exactly as `upkeep calendar --output json` writes it.
//!
//! The day axis is drawn in UTC unless `tz=<IANA zone>` asks for another (a schedule's row
//! says its zone; each bar's tooltip gives its times in UTC and in the schedule's zone).

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use upkeep_core::calendar::Entry;

use crate::calendar::{Feed, Range, Subject, SubjectKind};

use super::pages::{Failure, PageData, Query, param};

/// Days the page shows unless `days=` says otherwise.
pub(crate) const PAGE_DAYS: i64 = 14;
/// The most days the page draws (the feed itself, `/calendar.ics`, allows more).
pub(crate) const MAX_PAGE_DAYS: i64 = 62;
/// Clusters per page unless `per=` says otherwise.
const PER_PAGE: usize = 100;

/// `[from, from + days)` from `from=` (default `now`) and `days=`.
pub(crate) fn range(
    query: &Query,
    now: Timestamp,
    default_days: i64,
    max_days: i64,
) -> Result<Range, Failure> {
    let from = match param(query, "from") {
        Some(f) => crate::timearg::parse(f, &TimeZone::UTC).map_err(|e| {
            Failure::bad(
                format!("from: {e}"),
                "e.g. from=2027-03-01 or from=2027-03-01T08:00:00%2B01:00",
            )
        })?,
        None => now,
    };
    let days = match param(query, "days") {
        Some(d) => d
            .parse::<i64>()
            .ok()
            .filter(|d| (1..=max_days).contains(d))
            .ok_or_else(|| {
                Failure::bad(
                    format!("days: {d:?} is not a number of days from 1 to {max_days}"),
                    "e.g. days=14",
                )
            })?,
        None => default_days,
    };
    let to = crate::calendar::range_end(from, days).ok_or_else(|| {
        Failure::bad(
            format!("from {from} and days {days}: the range would leave the years 0001 to 9998"),
            "choose an earlier from or fewer days",
        )
    })?;
    Ok(Range { from, to })
}

/// The zone of the day axis: `tz=` or UTC.
fn axis_zone(query: &Query) -> Result<TimeZone, Failure> {
    match param(query, "tz") {
        None => Ok(TimeZone::UTC),
        Some(name) => TimeZone::get(name).map_err(|e| {
            Failure::bad(
                format!("tz: {name:?} is not a time zone of the tz database: {e}"),
                "an IANA name such as Europe/Berlin, or leave it out for UTC",
            )
        }),
    }
}

/// A label filter: `key` (the label exists) or `key=value`.
fn label_filter(query: &Query) -> Option<(&str, Option<&str>)> {
    param(query, "label").map(|l| match l.split_once('=') {
        Some((k, v)) => (k.trim(), Some(v.trim())),
        None => (l, None),
    })
}

fn label_matches(labels: &BTreeMap<String, String>, filter: Option<(&str, Option<&str>)>) -> bool {
    filter.is_none_or(|(k, v)| {
        labels
            .get(k)
            .is_some_and(|have| v.is_none_or(|v| have == v))
    })
}

/// `2026-12-07 23:30 UTC`.
fn utc(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// Where `t` falls on `[from, to)`, from 0 to 1000 (the SVG's width).
fn x_of(range: Range, t: Timestamp) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let (span, at) = (
        (range.to.as_second() - range.from.as_second()).max(1) as f64,
        (t.clamp(range.from, range.to).as_second() - range.from.as_second()) as f64,
    );
    (at * 1000.0 / span * 100.0).round() / 100.0
}

/// One entry as a bar of its row.
fn bar(e: &Entry, index: usize, range: Range, zones: &BTreeMap<String, TimeZone>) -> Value {
    let x = x_of(range, e.start);
    // A bar is at least a little wide, so an instant (a past upgrade of a minute) shows.
    let w = (x_of(range, e.end) - x).max(1.5);
    let local = e.tz.as_ref().and_then(|name| {
        let tz = zones.get(name)?;
        Some(format!(
            "\n{} – {} {name}",
            e.start.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %Z"),
            e.end.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %Z"),
        ))
    });
    json!({
        "index": index,
        "kind": e.kind.as_str(),
        "uid": e.uid,
        "start": e.start.to_string(),
        "end": e.end.to_string(),
        "x": x,
        "w": w,
        "title": format!(
            "{}\n{} – {}{}",
            e.summary,
            utc(e.start),
            utc(e.end),
            local.unwrap_or_default()
        ),
    })
}

/// The day axis: one tick per midnight in `tz` inside the range, labelled with the day.
fn axis(range: Range, tz: &TimeZone, now: Timestamp) -> Value {
    let mut days = Vec::new();
    let mut day = range.from.to_zoned(tz.clone()).date();
    loop {
        let Ok(start) = day.to_zoned(tz.clone()).map(|z| z.timestamp()) else {
            break;
        };
        if start >= range.to {
            break;
        }
        let Ok(next) = day.tomorrow() else { break };
        let end = next
            .to_zoned(tz.clone())
            .map_or(range.to, |z| z.timestamp());
        let (x, x_end) = (x_of(range, start), x_of(range, end));
        days.push(json!({
            "x": x,
            "w": x_end - x,
            "tick": start >= range.from,
            "label": day.strftime("%a %d").to_string(),
            "date": day.to_string(),
            "weekend": matches!(day.weekday(), jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday),
        }));
        day = next;
    }
    json!({
        "tz": tz.iana_name().unwrap_or("UTC"),
        "days": days,
        "now": (range.from <= now && now < range.to).then(|| x_of(range, now)),
    })
}

/// The Calendar page of `feed` (sorted, SEQUENCEs assigned) over `range`.
pub(crate) fn page(
    feed: &Feed,
    range: Range,
    query: &Query,
    now: Timestamp,
) -> Result<PageData, Failure> {
    let tz = axis_zone(query)?;
    let ns = param(query, "namespace");
    let label = label_filter(query);
    let per = param(query, "per")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(PER_PAGE)
        .min(1000);
    let wanted_page = param(query, "page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);

    // Entries by subject; a past upgrade recorded without a namespace names the cluster only.
    let mut by_subject: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in feed.entries.iter().enumerate() {
        by_subject.entry(e.subject.as_str()).or_default().push(i);
    }
    let mut names: BTreeMap<&str, Vec<&Subject>> = BTreeMap::new();
    for s in feed
        .subjects
        .iter()
        .filter(|s| s.kind == SubjectKind::Cluster)
    {
        names.entry(s.name.as_str()).or_default().push(s);
    }
    let known: BTreeSet<String> = feed.subjects.iter().map(Subject::key).collect();
    let mut entries_of: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut others: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (subject, list) in &by_subject {
        if known.contains(*subject) {
            entries_of
                .entry((*subject).to_owned())
                .or_default()
                .extend(list);
        } else if let Some([only]) = names.get(subject).map(Vec::as_slice) {
            entries_of.entry(only.key()).or_default().extend(list);
        } else {
            others.insert(subject, list.clone());
        }
    }

    let mut schedules: Vec<&Subject> = feed
        .subjects
        .iter()
        .filter(|s| s.kind == SubjectKind::Schedule)
        .filter(|s| ns.is_none_or(|n| s.namespace == n))
        .collect();
    schedules.sort_by_key(|s| s.key());
    let all_clusters: Vec<&Subject> = feed
        .subjects
        .iter()
        .filter(|s| s.kind == SubjectKind::Cluster)
        .collect();
    let mut clusters: Vec<&Subject> = all_clusters
        .iter()
        .copied()
        .filter(|s| ns.is_none_or(|n| s.namespace == n))
        .filter(|s| label_matches(&s.labels, label))
        .collect();
    clusters.sort_by_key(|s| s.key());
    let pages = clusters.len().div_ceil(per).max(1);
    let page = wanted_page.min(pages);
    let clusters: Vec<&Subject> = clusters
        .into_iter()
        .skip((page - 1) * per)
        .take(per)
        .collect();
    let filtered = ns.is_some() || label.is_some();

    let mut shown: Vec<usize> = Vec::new();
    let mut row = |kind: &str,
                   subject: String,
                   name: String,
                   note: Option<String>,
                   list: &[usize]| {
        shown.extend_from_slice(list);
        json!({
            "kind": kind,
            "subject": subject,
            "name": name,
            "note": note,
            "bars": list.iter().map(|&i| bar(&feed.entries[i], i, range, &feed.zones)).collect::<Vec<_>>(),
        })
    };
    let empty = Vec::new();
    let schedule_rows: Vec<Value> = schedules
        .iter()
        .map(|s| {
            let key = s.key();
            let list = entries_of.get(&key).unwrap_or(&empty);
            let zone = s.tz.clone().unwrap_or_else(|| "UTC".into());
            let note = if s.always {
                format!("{zone} · always allowed")
            } else {
                zone
            };
            row("schedule", key.clone(), key, Some(note), list)
        })
        .collect();
    let cluster_rows: Vec<Value> = clusters
        .iter()
        .map(|s| {
            let key = s.key();
            let list = entries_of.get(&key).unwrap_or(&empty);
            row("cluster", key.clone(), key, None, list)
        })
        .collect();
    // App fields (and anything else not about a schedule or cluster) have no namespace or
    // labels: shown when no filter asks for one, on the first page.
    let other_rows: Vec<Value> = if filtered || page > 1 {
        Vec::new()
    } else {
        others
            .iter()
            .map(|(subject, list)| {
                row(
                    "app",
                    (*subject).to_owned(),
                    (*subject).to_owned(),
                    None,
                    list,
                )
            })
            .collect()
    };
    shown.sort_unstable();
    let entries: Vec<_> = shown
        .iter()
        .map(|&i| crate::calendar::json_entry(&feed.entries[i]))
        .collect();

    let mut link: Vec<(&str, &str)> = Vec::new();
    if let Some(n) = ns {
        link.push(("namespace", n));
    }
    let selector = param(query, "label").map(|l| l.replace(' ', ""));
    if let Some(s) = &selector {
        link.push(("selector", s));
    }
    let subscribe = if link.is_empty() {
        "/calendar.ics".to_owned()
    } else {
        format!(
            "/calendar.ics?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(link)
                .finish()
        )
    };
    let namespaces: BTreeSet<&str> = feed.subjects.iter().map(|s| s.namespace.as_str()).collect();
    let filters = json!({
        "namespace": ns,
        "label": param(query, "label"),
        "tz": param(query, "tz"),
        "days": param(query, "days"),
        "from": param(query, "from"),
    });
    let pager = |p: usize| {
        let mut q: Vec<(&str, String)> = Vec::new();
        for key in ["namespace", "label", "tz", "days", "from", "per"] {
            if let Some(v) = param(query, key) {
                q.push((key, v.to_owned()));
            }
        }
        q.push(("page", p.to_string()));
        format!(
            "/calendar?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(q)
                .finish()
        )
    };
    Ok(PageData {
        json: json!({
            "from": range.from.to_string(),
            "to": range.to.to_string(),
            "axisTimeZone": tz.iana_name().unwrap_or("UTC"),
            "filters": filters,
            "page": page,
            "pages": pages,
            "clusters": all_clusters.len(),
            "entries": entries,
        }),
        view: json!({
            "axis": axis(range, &tz, now),
            "groups": [
                {"title": "Schedules", "id": "schedules", "rows": schedule_rows},
                {"title": "Clusters", "id": "clusters", "rows": cluster_rows},
                {"title": "App fields", "id": "apps", "rows": other_rows},
            ],
            "choices": {"namespaces": namespaces},
            "subscribe": subscribe,
            "prev": (page > 1).then(|| pager(page - 1)),
            "next": (page < pages).then(|| pager(page + 1)),
            "from": range.from.to_string(),
            "to": range.to.to_string(),
        }),
    })
}

/// A repository's label selector for `/calendar.ics?selector=`: `key`, `key=value`,
/// `key==value` and `key!=value`, comma-separated (the API server evaluates a cluster's).
pub(crate) fn selector_matches(
    selector: &str,
    labels: &BTreeMap<String, String>,
) -> Result<bool, String> {
    let mut all = true;
    for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if term.contains(['(', ')', '!']) && !term.contains("!=") {
            return Err(format!(
                "selector: {term:?}: only key, key=value and key!=value work on a repository"
            ));
        }
        let ok = if let Some((k, v)) = term.split_once("!=") {
            labels.get(k.trim()).is_none_or(|have| have != v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            labels.get(k.trim()).is_some_and(|have| have == v.trim())
        } else {
            labels.contains_key(term)
        };
        all &= ok;
    }
    Ok(all)
}

/// Keeps the entries and subjects `namespace` and a repository `selector` pick: schedules by
/// namespace, clusters by both; entries of neither (app fields) only without a filter.
pub(crate) fn retain(
    feed: &mut Feed,
    namespace: Option<&str>,
    selector: Option<&str>,
) -> Result<(), String> {
    if namespace.is_none() && selector.is_none() {
        return Ok(());
    }
    let mut keep = Vec::with_capacity(feed.subjects.len());
    for s in &feed.subjects {
        let by_ns = namespace.is_none_or(|n| s.namespace == n);
        let by_labels = match (s.kind, selector) {
            (SubjectKind::Cluster, Some(sel)) => selector_matches(sel, &s.labels)?,
            _ => true,
        };
        keep.push(by_ns && by_labels);
    }
    let mut kept: BTreeSet<String> = BTreeSet::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut i = 0;
    feed.subjects.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    for s in &feed.subjects {
        kept.insert(s.key());
        if s.kind == SubjectKind::Cluster {
            *names.entry(s.name.clone()).or_default() += 1;
        }
    }
    feed.entries
        .retain(|e| kept.contains(&e.subject) || names.get(&e.subject) == Some(&1));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_on_a_repository() {
        let labels: BTreeMap<String, String> =
            [("stage".into(), "prod".into()), ("team".into(), "a".into())].into();
        for (selector, want, why) in [
            ("stage=prod", Ok(true), "equality"),
            ("stage==prod", Ok(true), "double equals"),
            ("stage=dev", Ok(false), "other value"),
            ("stage!=dev", Ok(true), "inequality"),
            ("stage=prod,team=b", Ok(false), "every term must hold"),
            ("team", Ok(true), "existence"),
            ("missing", Ok(false), "a label it lacks"),
            (
                "team in (a,b)",
                Err(()),
                "set syntax is refused, not misread",
            ),
        ] {
            assert_eq!(
                selector_matches(selector, &labels).map_err(|_| ()),
                want,
                "{why}"
            );
        }
    }

    #[test]
    fn bars_sit_where_their_times_are() {
        let range = Range {
            from: "2026-12-07T00:00:00Z".parse().expect("time"),
            to: "2026-12-08T00:00:00Z".parse().expect("time"),
        };
        for (t, want, why) in [
            ("2026-12-07T00:00:00Z", 0.0, "the first instant"),
            ("2026-12-07T12:00:00Z", 500.0, "half way"),
            ("2026-12-08T00:00:00Z", 1000.0, "the end"),
            ("2026-12-09T00:00:00Z", 1000.0, "after the range: clipped"),
            ("2026-12-01T00:00:00Z", 0.0, "before the range: clipped"),
        ] {
            assert!(
                (x_of(range, t.parse().expect("time")) - want).abs() < 1e-9,
                "{why}"
            );
        }
    }

    #[test]
    fn the_axis_has_a_day_per_midnight_in_its_zone() {
        let range = Range {
            from: "2026-03-28T12:00:00Z".parse().expect("time"),
            to: "2026-03-31T12:00:00Z".parse().expect("time"),
        };
        let tz = TimeZone::get("Europe/Berlin").expect("zone");
        let v = axis(range, &tz, range.from);
        let days = v["days"].as_array().expect("days");
        let dates: Vec<&str> = days
            .iter()
            .map(|d| d["date"].as_str().expect("date"))
            .collect();
        assert_eq!(
            dates,
            ["2026-03-28", "2026-03-29", "2026-03-30", "2026-03-31"]
        );
        // Berlin's 29 March has 23 hours: its day is shorter on the axis than the 30th.
        assert!(days[1]["w"].as_f64() < days[2]["w"].as_f64(), "{v}");
        assert_eq!(
            days[0]["tick"], false,
            "the first day began before the range"
        );
    }
}
