#!/usr/bin/env python3
"""Reference answers for whole schedules, for tests/schedule_dateutil_intervals.rs.

Every occurrence is expanded by python-dateutil (`rrulestr` with a naive wall-clock DTSTART,
placed in `dateutil.tz.gettz(tz)` with fold=0 / `resolve_imaginary`, exactly as expand.py
does), given the wall-clock length `endTime - startTime`, and then the allowed time is computed
by brute force: sort, merge overlapping or touching occurrences, subtract the merged
exclusions and the freeze. Nothing here shares code or shortcuts with upkeep's engine (no
look-ups from the middle of a rule, no skipping of long occurrences): it walks every
occurrence from DTSTART.

Reads a JSON list of cases on stdin:
    {"tz": "UTC", "always": false,
     "windows":    [{"name": "w", "start": "2026-01-01T00:00:00", "end": "...", "rrule": "FREQ=DAILY" | null}],
     "exclusions": [{"name": "x", "start": "...", "end": "...", "rrule": ... }],   # those that apply
     "freeze": "2026-03-01T00:00:00Z" | null,
     "at": ["2026-06-01T22:30:00Z", ...], "from": "2026-06-01T00:00:00Z", "n": 5,
     "horizon_days": 3653, "lookback_days": 400}
Times with `Z` or `+HH:MM` are instants, without are wall clock in `tz`.

Prints {"dateutil": version, "results": [{"checks": [...], "intervals": [...]}]} where a check is
    {"open": true, "window": name, "until": instant | null}
    {"open": false, "reason": "frozen" | "excluded" | "outside", "excluded": name, "until": instant,
     "next_open": instant | null}
and an interval is {"start": instant | "min", "end": instant | null, "windows": [names]}.

upkeep's documented semantics that are not dateutil's (see crates/upkeep-core/src/schedule):
- instants are jiff's: the last one is 9999-12-30T22:00:00.999999999Z (JIFF_MAX). An
  occurrence starting after it does not exist; one ending after it never ends (null).
- search limits: intervals starting `horizon_days` or more after `from` are not listed; an
  interval reaching that far has end null and is the last. `until` of an open check likewise.
- look-back: upkeep looks at most `lookback_days` before `from` for the start of an interval
  running at `from`; `expected_start` restates, from the brute-force data, what it then
  reports (exact whenever what ended before the limit pins the start down, else the limit).
"""

import json
import os
import sys
import warnings
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expand  # noqa: E402  (same directory: the UNTIL=...Z handling and to_utc)

import dateutil  # noqa: E402
from dateutil import rrule as du_rrule  # noqa: E402
from dateutil import tz as du_tz  # noqa: E402

warnings.simplefilter("ignore")

INF = float("inf")
JIFF_MAX = datetime(9999, 12, 30, 22, 0, 0, 999999, tzinfo=timezone.utc)


def parse_time(text, zone):
    """(wall clock in zone, instant or None when not representable)."""
    if text.endswith("Z") or text[-6] in "+-":
        aware = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return aware.astimezone(zone).replace(tzinfo=None), aware.astimezone(timezone.utc)
    naive = datetime.fromisoformat(text)
    return naive, instant(naive, zone)


def instant(naive, zone):
    """The instant of a wall-clock time, or None when past the last jiff instant."""
    try:
        t = expand.to_utc(naive, zone)
    except (OverflowError, ValueError):
        return None
    return None if t > JIFF_MAX else t


def occurrences(src, zone, scan_until):
    """[(start, end)] with end = INF when past JIFF_MAX; in rule order."""
    wall_start, first = parse_time(src["start"], zone)
    wall_end, last = parse_time(src["end"], zone)
    if not src.get("rrule"):
        return [(first, INF if last is None else last)]
    span = wall_end - wall_start
    text = src["rrule"]
    until_utc = None
    m = expand.UNTIL_UTC.search(text)
    if m:
        until_utc = datetime.strptime(m.group(2), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
        text = (text[: m.start()] + m.group(1) + text[m.end():]).replace(";;", ";").strip(";")
    rule = du_rrule.rrulestr(text, dtstart=wall_start)
    out = []
    it = iter(rule)
    while True:
        try:
            w = next(it)
        except (StopIteration, ValueError, OverflowError):  # ValueError: past year 9999
            break
        if w > scan_until:
            break
        start = instant(w, zone)
        if start is None:
            break
        if until_utc is not None and start > until_utc:
            break
        try:
            end = instant(w + span, zone)
        except OverflowError:
            end = None
        end = INF if end is None else end
        if key(end) > key(start):
            out.append((start, end))
    return out


def key(t):
    return t.timestamp() if isinstance(t, datetime) else t


def union(items):
    """items: [(start, end, payload)] -> [(start, end)] merged (touching merges)."""
    out = []
    for s, e, _ in sorted(items, key=lambda x: (key(x[0]), key(x[1]))):
        if out and key(s) <= key(out[-1][1]):
            if key(e) > key(out[-1][1]):
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def subtract(pieces, cuts):
    """Both sorted and disjoint (merged)."""
    out = []
    j = 0
    for s, e in pieces:
        while j < len(cuts) and key(cuts[j][1]) <= key(s):
            j += 1
        cur = s
        k = j
        while k < len(cuts) and key(cuts[k][0]) < key(e):
            cs, ce = cuts[k]
            if key(cs) > key(cur):
                out.append((cur, cs))
            if key(ce) > key(cur):
                cur = ce
            if key(cur) >= key(e):
                break
            k += 1
        if key(cur) < key(e):
            out.append((cur, e))
    return out


def allowed(case, win_occ, exc_occ, freeze):
    if case.get("always"):
        wins = [(-INF, INF)]
    else:
        wins = union([(s, e, i) for i, occ in enumerate(win_occ) for s, e in occ])
    cuts = [(s, e, i) for i, occ in enumerate(exc_occ) for s, e in occ]
    if freeze is not None:
        cuts.append((-INF, freeze, None))
    return subtract(wins, union(cuts))


def fmt(t):
    if t == INF:
        return None
    if t == -INF:
        return "min"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def window_names(case, win_occ, s, e):
    if case.get("always"):
        return ["alwaysAllowed"]
    hits = []
    for i, occ in enumerate(win_occ):
        for os_, oe in occ:
            if key(os_) < key(e) and key(oe) > key(s):
                hits.append((key(os_), key(oe), i))
    names = []
    for _, _, i in sorted(hits):
        n = case["windows"][i]["name"]
        if n not in names:
            names.append(n)
    return names


def plus(t, d):
    try:
        return t + d
    except OverflowError:
        return INF


def check(case, at, win_occ, exc_occ, freeze, pieces, horizon):
    hi = plus(at, horizon)
    first = next((p for p in pieces if key(p[1]) > key(at) and key(p[0]) < key(hi)), None)
    if first is not None and key(first[0]) <= key(at):
        if case.get("always"):
            name = "alwaysAllowed"
        else:
            covering = sorted(
                (key(s), key(e), i)
                for i, occ in enumerate(win_occ)
                for s, e in occ
                if key(s) <= key(at) < key(e)
            )
            name = case["windows"][covering[0][2]]["name"]
        until = first[1] if key(first[1]) < key(hi) else INF
        return {"open": True, "window": name, "until": fmt(until)}
    out = {"open": False, "next_open": fmt(first[0]) if first else None}
    if freeze is not None and at < freeze:
        out.update(reason="frozen", until=fmt(freeze))
        return out
    best = None
    for i, occ in enumerate(exc_occ):
        ends = [e for s, e in occ if key(s) <= key(at) < key(e)]
        if ends and (best is None or key(max(ends, key=key)) > key(best[1])):
            best = (i, max(ends, key=key))
    if best is None:
        out.update(reason="outside")
    else:
        out.update(reason="excluded", excluded=case["exclusions"][best[0]]["name"], until=fmt(best[1]))
    return out


def expected_start(case, t, frm, floor, win_occ, exc_occ, freeze):
    """What upkeep reports as the start of the interval running at `from` (see the docstring)."""
    if floor is None or key(t) >= key(floor):
        return t
    vis_w = [[(s, e) for s, e in occ if key(e) >= key(floor)] for occ in win_occ]
    vis_x = [[(s, e) for s, e in occ if key(e) >= key(floor)] for occ in exc_occ]
    vis = allowed(case, vis_w, vis_x, freeze)
    s = next(p[0] for p in vis if key(p[1]) > key(frm))
    if key(s) >= key(floor):
        return s
    cuts = [e for occ in exc_occ for _, e in occ if key(e) < key(floor)]
    if freeze is not None and key(freeze) < key(floor):
        cuts.append(freeze)
    if cuts and key(max(cuts, key=key)) >= key(s):
        return max(cuts, key=key)
    extended = not case.get("always") and any(
        key(os_) < key(s) and key(s) <= key(oe) < key(floor) for occ in win_occ for os_, oe in occ
    )
    return floor if extended else s


def solve(case):
    zone = du_tz.gettz(case["tz"])
    horizon = timedelta(days=case.get("horizon_days", 3653))
    lookback = timedelta(days=case.get("lookback_days", 400))
    frm = parse_time(case["from"], zone)[1]
    ats = [parse_time(a, zone)[1] for a in case.get("at", [])]
    latest = max([frm] + ats)
    try:
        scan_until = (latest + horizon + timedelta(days=3)).astimezone(zone).replace(tzinfo=None)
    except OverflowError:
        scan_until = datetime.max
    win_occ = [occurrences(w, zone, scan_until) for w in case["windows"]]
    exc_occ = [occurrences(x, zone, scan_until) for x in case.get("exclusions", [])]
    freeze = parse_time(case["freeze"], zone)[1] if case.get("freeze") else None
    pieces = allowed(case, win_occ, exc_occ, freeze)
    checks = [check(case, at, win_occ, exc_occ, freeze, pieces, horizon) for at in ats]
    hi = plus(frm, horizon)
    try:
        floor = frm - lookback
    except OverflowError:
        floor = None
    intervals = []
    for s, e in pieces:
        if key(e) <= key(frm):
            continue
        if key(s) >= key(hi) or len(intervals) >= case["n"]:
            break
        before_floor = False
        if not intervals:
            before_floor = floor is not None and key(s) < key(floor)
            s = expected_start(case, s, frm, floor, win_occ, exc_occ, freeze)
        open_ended = key(e) >= key(hi)
        # Not compared: names of an interval that began before the look-back limit (upkeep
        # sees only occurrences that end after it) or that runs past the horizon (upkeep
        # stops merging there).
        names = None if open_ended or before_floor else window_names(case, win_occ, s, e)
        intervals.append({"start": fmt(s), "end": None if open_ended else fmt(e), "windows": names})
        if open_ended:
            break
    return {"checks": checks, "intervals": intervals}


def main():
    cases = json.load(sys.stdin)
    json.dump({"dateutil": dateutil.__version__, "results": [solve(c) for c in cases]}, sys.stdout)


if __name__ == "__main__":
    main()
