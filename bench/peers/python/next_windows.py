#!/usr/bin/env python3
"""Peer for the "next 10 allowed intervals for 10k schedules" benchmark: python-dateutil.

For each schedule: expand every window's RRULE lazily on wall-clock time
(`dateutil.rrule.rrulestr` with a naive dtstart), localise each start and each end
(`start wall clock + wall-clock span`) with `dateutil.tz.gettz` (ambiguous -> fold=0, the
earlier offset; nonexistent -> `tz.resolve_imaginary`, moved forward by the gap), merge
overlapping or touching intervals across windows, subtract the union of the exclusions
(expanded the same way), keep the intervals that end after `from` (one running at `from` is
kept whole) and stop after `count`.

What is timed: the expansion, localisation, merging and subtraction for all schedules. Parsing
the JSON, the time zones and the RRULE strings happens once, before timing, exactly as the
upkeep side builds its `Schedule` values before timing. rrule objects are built with
`cache=False` (the default), so every timed run does the full work.

Expansion starts at `from - span - 3 days` in wall-clock terms (`rrule.xafter`): no offset is
more than a day away from UTC and the generated schedules have no chain of touching intervals
longer than two days, so nothing that ends after `from` is missed and no merged interval is cut.

Usage: next_windows.py SCHEDULES_JSON [RUNS] [--dump FILE]
Prints one JSON object: {"peer", "median_ms", "runs_ms", "schedules", "intervals",
"checksum"}; with --dump also writes "index start end" (epoch seconds) per interval.
"""

import heapq
import json
import sys
import time
from datetime import datetime, timedelta, timezone

import dateutil
from dateutil import tz
from dateutil.rrule import rrulestr

MARGIN = timedelta(days=3)
HORIZON = timedelta(days=366 * 20)


def parse_time(text):
    """A naive datetime (wall clock) or an int epoch (absolute instant)."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        return dt
    return int(dt.timestamp())


def localise(wall, zone):
    dt = tz.resolve_imaginary(wall.replace(tzinfo=zone))
    return int(dt.timestamp())


class Rule:
    """One window or exclusion, prepared before timing."""

    __slots__ = ("zone", "start", "end", "span", "rrule")

    def __init__(self, item, zone):
        self.zone = zone
        self.start = parse_time(item["startTime"])
        self.end = parse_time(item["endTime"])
        rec = item.get("recurrence")
        self.rrule = None
        self.span = None
        if rec:
            if not isinstance(self.start, datetime) or not isinstance(self.end, datetime):
                raise ValueError("a recurring startTime/endTime must be a wall-clock time")
            self.span = self.end - self.start
            self.rrule = rrulestr(rec, dtstart=self.start)

    def intervals(self, from_wall):
        """(start, end) epoch pairs in start order, lazily."""
        zone = self.zone
        if self.rrule is None:
            s = self.start if isinstance(self.start, int) else localise(self.start, zone)
            e = self.end if isinstance(self.end, int) else localise(self.end, zone)
            if e > s:
                yield (s, e)
            return
        span = self.span
        limit = from_wall + HORIZON
        for wall in self.rrule.xafter(from_wall - span - MARGIN, inc=True):
            if wall > limit:
                return
            s = localise(wall, zone)
            e = localise(wall + span, zone)
            # A window that falls wholly into a DST gap (start and end both move to the gap's
            # end) is empty: no allowed time, so no interval.
            if e > s:
                yield (s, e)


def union(streams):
    """Merge sorted interval streams into disjoint intervals; touching ones are merged."""
    cur_s = cur_e = None
    for s, e in heapq.merge(*streams):
        if cur_s is None:
            cur_s, cur_e = s, e
        elif s <= cur_e:
            if e > cur_e:
                cur_e = e
        else:
            yield (cur_s, cur_e)
            cur_s, cur_e = s, e
    if cur_s is not None:
        yield (cur_s, cur_e)


def subtract(allowed, excluded):
    ex = next(excluded, None)
    for s, e in allowed:
        cur = s
        while ex is not None and ex[1] <= cur:
            ex = next(excluded, None)
        while ex is not None and ex[0] < e:
            if ex[0] > cur:
                yield (cur, ex[0])
            if ex[1] > cur:
                cur = ex[1]
            if cur >= e:
                break
            ex = next(excluded, None)
        if cur < e:
            yield (cur, e)


def next_intervals(windows, exclusions, from_epoch, from_wall, count):
    allowed = union([w.intervals(from_wall) for w in windows])
    if exclusions:
        allowed = subtract(allowed, union([x.intervals(from_wall) for x in exclusions]))
    out = []
    for s, e in allowed:
        if e > from_epoch:
            out.append((s, e))
            if len(out) == count:
                break
    return out


def main():
    args = [a for a in sys.argv[1:]]
    dump = None
    if "--dump" in args:
        i = args.index("--dump")
        dump = args[i + 1]
        del args[i : i + 2]
    if not args:
        sys.stderr.write("usage: next_windows.py SCHEDULES_JSON [RUNS] [--dump FILE]\n")
        sys.exit(2)
    runs_wanted = int(args[1]) if len(args) > 1 else 3

    with open(args[0], encoding="utf-8") as f:
        doc = json.load(f)
    from_dt = datetime.fromisoformat(doc["from"].replace("Z", "+00:00"))
    from_epoch = int(from_dt.timestamp())
    # Wall-clock lower bound for expansion: UTC wall clock; MARGIN covers any zone's offset.
    from_wall = from_dt.astimezone(timezone.utc).replace(tzinfo=None)
    count = doc["count"]

    zones = {}
    prepared = []
    for sched in doc["schedules"]:
        name = sched.get("timeZone") or "UTC"
        zone = zones.get(name)
        if zone is None:
            zone = zones[name] = tz.gettz(name)
            if zone is None:
                raise ValueError(f"unknown time zone {name!r}")
        windows = [Rule(w, zone) for w in sched["maintenanceWindows"]]
        exclusions = [Rule(x, zone) for x in sched.get("maintenanceExclusions", [])]
        prepared.append((windows, exclusions))

    def run_all():
        return [next_intervals(w, x, from_epoch, from_wall, count) for w, x in prepared]

    # No separate warm-up: CPython has no JIT, and one run takes seconds.
    result = None
    runs = []
    for _ in range(runs_wanted):
        t0 = time.perf_counter()
        again = run_all()
        runs.append((time.perf_counter() - t0) * 1000)
        if result is None:
            result = again
        elif again != result:
            sys.stderr.write("result changed between runs\n")
            sys.exit(1)

    n = sum(len(r) for r in result)
    checksum = {
        "intervals": n,
        "sum_start": sum(s for r in result for s, _ in r),
        "sum_end": sum(e for r in result for _, e in r),
    }
    if dump:
        with open(dump, "w", encoding="utf-8") as f:
            for i, r in enumerate(result):
                for s, e in r:
                    f.write(f"{i} {s} {e}\n")
    print(json.dumps({
        "peer": f"python-dateutil {dateutil.__version__} (Python {sys.version.split()[0]})",
        "median_ms": sorted(runs)[len(runs) // 2],
        "runs_ms": runs,
        "schedules": len(prepared),
        "intervals": n,
        "checksum": checksum,
    }))


if __name__ == "__main__":
    main()
