#!/usr/bin/env python3
"""Deterministic maintenance schedules for the "next 10 allowed intervals" benchmark.

Writes one JSON document:

    {"from": RFC 3339 instant, "count": 10, "schedules": [
        {"timeZone": IANA name,
         "maintenanceWindows":    [{"name", "startTime", "endTime", "recurrence"}],
         "maintenanceExclusions": [{"name", "startTime", "endTime", "recurrence"?}]}]}

Field names are those of the MaintenanceSchedule resource. `startTime`/`endTime` are naive
wall-clock times in `timeZone` (a few one-off exclusions carry an offset instead), and each
occurrence lasts the wall-clock span `endTime - startTime`.

Choices that keep the comparison between upkeep and python-dateutil meaningful:

- Every recurring `startTime` is itself an occurrence of its rule. RFC 5545 counts DTSTART as
  the first occurrence even when it does not match; dateutil does not. Starting on a match
  sidesteps a difference that is not what this benchmark measures.
- Start times such as 01:30, 02:00 and 02:30 and rules such as "last Sunday of the month" land
  on DST changes in Berlin, New York and Sydney within the expanded range, so gaps (moved
  forward) and folds (earlier offset) are exercised.
- Window lengths are well below their period, so chains of touching intervals stay short.
- `from` is fixed; dtstarts lie between 2023 and shortly after `from`, so expanding a rule
  means walking from an old start, as with real schedules written long ago.

Usage: gen_schedules.py OUT [COUNT] [SEED]. Needs python-dateutil (only to find each rule's
first occurrence on or after a random date).
"""

import json
import random
import sys
from datetime import datetime, timedelta

from dateutil.rrule import rrulestr

FROM = "2025-03-20T00:00:00Z"
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "UTC", "Asia/Tokyo"]

# (recurrence, start hours to choose from, (min, max) duration in minutes)
WINDOWS = [
    ("FREQ=WEEKLY;BYDAY=SA,SU", ["00:00", "01:30", "02:30", "03:00", "22:00"], (120, 480)),
    ("FREQ=DAILY", ["01:00", "02:00", "02:30", "23:00"], (60, 360)),
    ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH", ["20:00", "22:00", "01:00"], (120, 240)),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=SA", ["06:00", "02:30"], (240, 720)),
    ("FREQ=MONTHLY;BYDAY=1SA", ["00:00", "02:00", "08:00"], (240, 720)),
    ("FREQ=MONTHLY;BYDAY=1SU", ["01:30", "02:30"], (60, 300)),
    ("FREQ=MONTHLY;BYDAY=-1SU", ["02:00", "02:30", "01:00"], (120, 360)),
    ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", ["18:00", "21:00"], (180, 600)),
    ("FREQ=MONTHLY;BYMONTHDAY=15", ["03:00", "12:00"], (60, 240)),
]

# (recurrence or None, start hours, (min, max) duration in minutes)
EXCLUSIONS = [
    ("FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=20", ["00:00"], (14 * 1440, 14 * 1440)),
    ("FREQ=WEEKLY;BYDAY=SU", ["03:00", "04:00"], (60, 180)),
    ("FREQ=MONTHLY;BYMONTHDAY=1", ["00:00"], (360, 720)),
    ("FREQ=YEARLY;BYMONTH=11;BYDAY=4TH", ["00:00"], (4 * 1440, 4 * 1440)),
    (None, ["00:00", "12:00"], (1440, 10 * 1440)),
]

WALL = "%Y-%m-%dT%H:%M:%S"


def random_day(rng: random.Random, lo: datetime, hi: datetime) -> datetime:
    return lo + timedelta(days=rng.randrange(0, (hi - lo).days))


def first_occurrence(rule: str, day: datetime, hhmm: str) -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    base = day.replace(hour=hour, minute=minute)
    return next(iter(rrulestr(rule, dtstart=base)))


def window(rng: random.Random, name: str) -> dict:
    rule, starts, (lo, hi) = rng.choice(WINDOWS)
    day = random_day(rng, datetime(2023, 1, 1), datetime(2025, 4, 15))
    start = first_occurrence(rule, day, rng.choice(starts))
    end = start + timedelta(minutes=rng.randrange(lo // 30, hi // 30 + 1) * 30)
    return {"name": name, "startTime": start.strftime(WALL), "endTime": end.strftime(WALL),
            "recurrence": rule}


def exclusion(rng: random.Random, name: str) -> dict:
    rule, starts, (lo, hi) = rng.choice(EXCLUSIONS)
    minutes = rng.randrange(lo // 30, hi // 30 + 1) * 30
    if rule is None:
        day = random_day(rng, datetime(2025, 3, 1), datetime(2025, 12, 1))
        hour, minute = (int(x) for x in rng.choice(starts).split(":"))
        start = day.replace(hour=hour, minute=minute)
        end = start + timedelta(minutes=minutes)
        if rng.random() < 0.3:  # an absolute one-off, written with offsets
            return {"name": name, "startTime": start.strftime(WALL) + "Z",
                    "endTime": end.strftime(WALL) + "+02:00"}
        return {"name": name, "startTime": start.strftime(WALL), "endTime": end.strftime(WALL)}
    day = random_day(rng, datetime(2023, 1, 1), datetime(2024, 12, 1))
    start = first_occurrence(rule, day, rng.choice(starts))
    end = start + timedelta(minutes=minutes)
    return {"name": name, "startTime": start.strftime(WALL), "endTime": end.strftime(WALL),
            "recurrence": rule}


def schedule(rng: random.Random) -> dict:
    windows = [window(rng, f"w{i}") for i in range(rng.choice([1, 1, 2]))]
    exclusions = [exclusion(rng, "x0")] if rng.random() < 0.5 else []
    return {"timeZone": rng.choice(ZONES), "maintenanceWindows": windows,
            "maintenanceExclusions": exclusions}


def main() -> None:
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 20240101
    rng = random.Random(seed)
    doc = {"from": FROM, "count": 10, "schedules": [schedule(rng) for _ in range(count)]}
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
