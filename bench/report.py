#!/usr/bin/env python3
"""Prints the benchmark table from the JSON each program wrote, and checks agreement.

Usage: report.py OUT_DIR

Reads OUT_DIR/{select-upkeep,select-go,select-node,windows-upkeep,windows-python}.json and,
when the window checksums differ, OUT_DIR/windows-{upkeep,python}.txt (per-interval dumps) to
show where. Data (the table) goes to stdout; a one-line disagreement notice also to stderr.
Exit status: 0 when every peer agrees with upkeep, 1 when any result disagrees. Timing
targets are reported, never enforced: this is a benchmark, not a test.
"""

import json
import os
import sys


def load(out, name):
    with open(os.path.join(out, name + ".json"), encoding="utf-8") as f:
        return json.load(f)


def norm(tag):
    """A tag's version, as SemVer precedence sees it: no leading v, no build metadata."""
    if tag is None:
        return None
    if tag.startswith("v"):
        tag = tag[1:]
    return tag.split("+", 1)[0]


def select_agreement(ours, theirs):
    if ours == theirs:
        return "yes", True
    if norm(ours) == norm(theirs):
        return f"same version ({theirs!r} vs {ours!r})", True
    return f"NO: peer {theirs!r}, upkeep {ours!r}", False


def read_dump(path):
    by_index = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                i, s, e = line.split()
                by_index.setdefault(int(i), []).append((s, e))
    except FileNotFoundError:
        return None
    return by_index


def windows_diff(out, limit=5):
    ours = read_dump(os.path.join(out, "windows-upkeep.txt"))
    theirs = read_dump(os.path.join(out, "windows-python.txt"))
    if ours is None or theirs is None:
        return ["(no per-interval dumps to compare)"]
    with open(os.path.join(out, "schedules.json"), encoding="utf-8") as f:
        schedules = json.load(f)["schedules"]
    lines = []
    differing = [i for i in sorted(set(ours) | set(theirs)) if ours.get(i) != theirs.get(i)]
    lines.append(f"{len(differing)} of {len(schedules)} schedules differ; first {limit}:")
    for i in differing[:limit]:
        lines.append(f"  schedule {i}: {json.dumps(schedules[i])}")
        a, b = ours.get(i, []), theirs.get(i, [])
        for k in range(max(len(a), len(b))):
            x = a[k] if k < len(a) else None
            y = b[k] if k < len(b) else None
            mark = "  " if x == y else "!!"
            lines.append(f"    {mark} upkeep {fmt(x):<45} python {fmt(y)}")
    return lines


def fmt(iv):
    if iv is None:
        return "-"
    from datetime import datetime, timezone

    def one(x):
        if x == "-":
            return "open"
        return datetime.fromtimestamp(int(x), timezone.utc).strftime("%Y-%m-%dT%H:%MZ")

    return f"{one(iv[0])} .. {one(iv[1])}"


def main():
    out = sys.argv[1]
    rows = []
    ok = True
    problems = []

    su = load(out, "select-upkeep")
    for peer_file, target in (("select-go", 3), ("select-node", 3)):
        p = load(out, peer_file)
        agree, good = select_agreement(su["selected"], p["selected"])
        ok &= good
        if not good:
            problems.append(f"{p['peer']}: selected {p['selected']!r}, upkeep {su['selected']!r}")
        rows.append(("select latest of 100k tags", p["peer"], su["median_ms"], p["median_ms"],
                     target, agree))

    wu = load(out, "windows-upkeep")
    wp = load(out, "windows-python")
    good = wu["checksum"] == wp["checksum"]
    ok &= good
    agree = "yes (checksum)" if good else "NO: checksums differ"
    if not good:
        problems.append(f"windows checksum: upkeep {wu['checksum']}, python {wp['checksum']}")
        problems.extend(windows_diff(out))
    rows.append(("next 10 intervals, 10k schedules", wp["peer"], wu["median_ms"], wp["median_ms"],
                 20, agree))

    header = ("benchmark", "peer", "upkeep ms", "peer ms", "ratio", "target", "met", "agree")
    table = [header]
    for name, peer, ours, theirs, target, agree in rows:
        ratio = theirs / ours if ours > 0 else float("inf")
        table.append((name, peer, f"{ours:.2f}", f"{theirs:.2f}", f"{ratio:.1f}x",
                      f">={target}x", "yes" if ratio >= target else "no", agree))
    widths = [max(len(r[c]) for r in table) for c in range(len(header))]
    for k, r in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print()
    print("ratio = peer ms / upkeep ms (medians, same input, same run); "
          "windows: schedules built before timing on both sides "
          f"(upkeep build {wu.get('build_ms', 0):.1f} ms, not included)")

    if not ok:
        banner = "!" * 78
        msg = [banner, "!! RESULTS DISAGREE: upkeep or a peer computes a different answer", banner]
        msg.extend(problems)
        msg.append(banner)
        text = "\n".join(msg)
        print()
        print(text)
        sys.stdout.flush()
        sys.stderr.write("!! RESULTS DISAGREE (details above)\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
