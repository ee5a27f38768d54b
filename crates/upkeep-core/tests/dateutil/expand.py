#!/usr/bin/env python3
"""Reference expansion of RRULEs with python-dateutil, for tests/schedule_dateutil.rs.

Reads a JSON list of cases on stdin:
    {"rrule": "FREQ=...", "dtstart": "2025-03-30T02:30:00", "tz": "Europe/Berlin",
     "count": 20, "limit": "2065-03-30T02:30:00"}
and prints a JSON list with, for each case, the first `count` occurrences as UTC instants
("YYYY-MM-DDTHH:MM:SSZ"), or {"error": "..."} when dateutil rejects the rule.

Expansion is dateutil's own: `dateutil.rrule.rrulestr(rule, dtstart=<naive wall clock>)`.
Each wall-clock occurrence is then placed in `dateutil.tz.gettz(tz)` with upkeep's pinned
rules: ambiguous -> fold=0 (the earlier offset), nonexistent -> `dateutil.tz.resolve_imaginary`
(moved forward by the gap).

Two adaptations, both outside dateutil's expansion:
- `limit` (naive wall clock) caps the scan on both sides, so a rule that can never match
  (dateutil would search until year 9999) returns quickly. It is applied as dateutil's own
  `until`, combined with the rule's floating UNTIL by taking the earlier.
- A UTC `UNTIL=...Z` cannot be given to dateutil together with a naive DTSTART (it raises
  "RRULE UNTIL values must be specified in UTC when DTSTART is timezone-aware"), so it is
  removed from the rule and applied here: expansion stops at the first occurrence whose
  instant in `tz` is after UNTIL -- the semantics upkeep pins ("compared as an instant in
  the schedule's zone").
"""

import json
import re
import sys
import warnings
from datetime import datetime, timezone

try:
    import dateutil
    from dateutil import rrule as du_rrule
    from dateutil import tz as du_tz
except ImportError:  # pragma: no cover - reported by the Rust test
    sys.stderr.write("python-dateutil is not installed\n")
    sys.exit(3)

# dateutil warns (DeprecationWarning) when both count and until are set; that happens when
# the scan limit is combined with COUNT and is intended.
warnings.simplefilter("ignore")

UNTIL_UTC = re.compile(r"(?i)(^|;)UNTIL=(\d{8}T\d{6})Z(;|$)")


def to_utc(naive, zone):
    aware = naive.replace(tzinfo=zone, fold=0)
    if not du_tz.datetime_exists(aware):
        aware = du_tz.resolve_imaginary(aware)
    return aware.astimezone(timezone.utc)


def expand(case):
    zone = du_tz.gettz(case["tz"])
    if zone is None:
        return {"error": "unknown time zone " + case["tz"]}
    text = case["rrule"]
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    until_utc = None
    m = UNTIL_UTC.search(text)
    if m:
        until_utc = datetime.strptime(m.group(2), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
        text = (text[: m.start()] + m.group(1) + text[m.end():]).replace(";;", ";").strip(";")
    dtstart = datetime.fromisoformat(case["dtstart"])
    limit = datetime.fromisoformat(case["limit"])
    try:
        rule = du_rrule.rrulestr(text, dtstart=dtstart)
    except (ValueError, KeyError) as e:
        return {"error": str(e)}
    until = rule._until
    rule = rule.replace(until=limit if until is None else min(until, limit))
    out = []
    try:
        for occ in rule:
            if len(out) >= case["count"]:
                break
            inst = to_utc(occ, zone)
            if until_utc is not None and inst > until_utc:
                break
            out.append(inst.strftime("%Y-%m-%dT%H:%M:%SZ"))
    except Exception as e:  # dateutil itself failed on this rule
        return {"error": "dateutil raised %s: %s" % (type(e).__name__, e)}
    return out


def main():
    cases = json.load(sys.stdin)
    json.dump({"dateutil": dateutil.__version__, "results": [expand(c) for c in cases]}, sys.stdout)


if __name__ == "__main__":
    main()
