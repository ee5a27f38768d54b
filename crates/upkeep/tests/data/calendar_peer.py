"""Test peer: reads an iCalendar feed with python's icalendar package (Debian
python3-icalendar) and prints one JSON object per VEVENT, times in UTC.

Each VTIMEZONE block is turned into a tzinfo by icalendar itself (Timezone.to_tz) and the
event's local time is converted with *that*, not with the system's tz database: so the feed's
own VTIMEZONE has to be right for the times to match. Exits non-zero on any parse problem.
"""
import datetime
import json
import sys

import icalendar

raw = open(sys.argv[1], "rb").read()
for n, line in enumerate(raw.split(b"\r\n")[:-1]):
    if len(line) > 75:
        sys.exit("line %d has %d octets (over 75)" % (n + 1, len(line)))
    if b"\n" in line or b"\r" in line:
        sys.exit("line %d holds a bare newline" % (n + 1))
if not raw.endswith(b"\r\n"):
    sys.exit("the feed does not end with CRLF")
cal = icalendar.Calendar.from_ical(raw)
zones = {}
for tz in cal.walk("VTIMEZONE"):
    zones[str(tz["TZID"])] = tz.to_tz()


def utc(prop):
    dt = prop.dt
    tzid = prop.params.get("TZID")
    if tzid is not None:
        if tzid not in zones:
            sys.exit("TZID %s has no VTIMEZONE" % tzid)
        naive = dt.replace(tzinfo=None)
        # pytz-style zones localize; is_dst=False is not used for unambiguous times.
        dt = zones[tzid].localize(naive) if hasattr(zones[tzid], "localize") else naive.replace(tzinfo=zones[tzid])
    elif dt.tzinfo is None:
        sys.exit("floating time %s" % dt)
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


out = []
for ev in cal.walk("VEVENT"):
    out.append(
        {
            "uid": str(ev["UID"]),
            "sequence": int(ev["SEQUENCE"]),
            "start": utc(ev["DTSTART"]),
            "end": utc(ev["DTEND"]),
            "tzid": ev["DTSTART"].params.get("TZID"),
            "summary": str(ev["SUMMARY"]),
            "description": str(ev.get("DESCRIPTION", "")),
            "category": str(ev["CATEGORIES"].cats[0]) if hasattr(ev["CATEGORIES"], "cats") else str(ev["CATEGORIES"]),
            "transp": str(ev["TRANSP"]),
            "subject": str(ev["X-UPKEEP-SUBJECT"]),
            "dtstamp": str(ev["DTSTAMP"].to_ical().decode()),
        }
    )
json.dump(out, sys.stdout, indent=1)
