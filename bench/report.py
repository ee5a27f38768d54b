#!/usr/bin/env python3
"""Prints the benchmark table from the JSON each program wrote, and checks agreement.

Usage: report.py OUT_DIR [GROUP ...]

GROUPs (default: all): `select` reads OUT_DIR/select-{upkeep,go,node}.json; `windows` reads
OUT_DIR/windows-{upkeep,python}.json and, when the checksums differ, the per-interval dumps
OUT_DIR/windows-{upkeep,python}.txt to show where; `registry` reads OUT_DIR/registry.json
(written by crates/upkeep-registry/examples/bench_registry.rs); `gitops` reads
OUT_DIR/gitops-runs.tsv (one line per timed run, written by bench/run), OUT_DIR/gitops-mode.txt,
OUT_DIR/gitops-plan.json and OUT_DIR/gitops/meta.json (gen_gitops.py); `controller` reads
OUT_DIR/controller.json (written by crates/upkeep-controller/examples/bench_controller.rs). Data
(the tables) goes to stdout; a one-line disagreement notice also to stderr.
Exit status: 0 when every peer agrees with upkeep, 1 when any result disagrees (a different
answer, different tag lists, more requests in flight than the per-host bound, different Git
trees after the same rewrite, or controller statuses other than the generated objects call for).
Timing
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


def registry_rows(out, rows, problems):
    """Adds the skopeo listing rows; returns the scan table lines. Appends to problems."""
    reg = load(out, "registry")
    labels = {"direct": "list 10k tags, 1 page", "paged": "list 10k tags, pages of 1000"}
    notes = []
    for case in reg["list"]:
        if case["agree"]:
            agree = f"yes ({case['tags']} tags, sorted)"
        else:
            agree = "NO: tag lists differ"
            problems.extend(case["problems"][:6])
        rows.append((labels.get(case["name"], case["name"]), "skopeo list-tags (process)",
                     case["upkeep_ms"], case["skopeo_ms"], 1, agree, case["agree"]))
        pages = ""
        if case["upkeep_pages"] is not None:
            pages = (f"; tag-list requests: upkeep {case['upkeep_pages']}, "
                     f"skopeo {case['skopeo_pages']}")
        notes.append(f"{labels.get(case['name'], case['name'])}: upkeep in-process "
                     f"{case['inproc_ms']:.2f} ms (median of {len(case['inproc_runs_ms'])})"
                     f"{pages}")

    scan = reg["scan"]
    sizes = scan["sizes"]
    lines = [f"scan {scan['repos']} repositories ({scan['concurrency']} sources in flight, "
             f"per-host bound {scan['per_host']}; median of {scan['scan_runs']} processes)"]
    header = ("size", "tags", "ms", "us/tag", "peak requests", "peak conns", "VmHWM MiB",
              "HWM - start MiB")
    table = [header]
    for k, sz in enumerate(sizes, 1):
        table.append((f"{k}x", str(sz["tags"]), f"{sz['ms']:.1f}",
                      f"{sz['ms'] * 1000 / sz['tags']:.2f}",
                      f"{sz['peak_requests']} ({sz['requests']} req)",
                      f"{sz['peak_connections']} ({sz['connections_opened']} opened)",
                      f"{sz['hwm_kib'] / 1024:.1f}", f"{sz['hwm_delta_kib'] / 1024:.1f}"))
        if sz["peak_requests"] > scan["per_host"]:
            problems.append(f"scan size {k}x: {sz['peak_requests']} requests in flight, "
                            f"per-host bound {scan['per_host']}")
    if len(sizes) == 2:
        a, b = sizes

        def r(key):
            return f"{b[key] / a[key]:.2f}x" if a[key] else "-"
        table.append(("2x/1x", r("tags"), r("ms"), "", "", "", r("hwm_kib"), r("hwm_delta_kib")))
    lines.extend(format_table(table))
    c = scan.get("control")
    if c:
        lines.append(f"control run, per-host bound {c['per_host']}: peak {c['peak_requests']} "
                     f"requests in flight, {c['peak_connections']} connections "
                     f"({c['connections_opened']} opened), {c['ms']:.1f} ms — the relay's "
                     "counters do see more when more is allowed")
    lines.append("requests/connections are counted by a relay between scan_repos and the "
                 "registry (outside the library); linear = the 2x/1x ratios stay at or below "
                 "the tags ratio")
    return notes, lines, reg


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2


def gitops_section(out, problems):
    """The rewrite-and-commit benchmark: its own table (the ratio is upkeep / peer, target at
    most 1x, issue 11) and notes. Appends to problems; returns the lines to print."""
    with open(os.path.join(out, "gitops", "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    with open(os.path.join(out, "gitops-mode.txt"), encoding="utf-8") as f:
        mode = f.read().strip()
    runs = []
    with open(os.path.join(out, "gitops-runs.tsv"), encoding="utf-8") as f:
        for line in f:
            tool, run, us, tree, files, rss = line.rstrip("\n").split("\t")
            runs.append({"tool": "upkeep" if tool.startswith("upkeep") else "peer",
                         "run": int(run), "ms": int(us) / 1000, "tree": tree,
                         "files": int(files), "rss": None if rss == "-" else int(rss)})
    timed = [r for r in runs if r["run"] > 0]
    ours = [r for r in timed if r["tool"] == "upkeep"]
    theirs = [r for r in timed if r["tool"] == "peer"]
    marked = meta["marked"]

    # upkeep's plan must be the generated change: every marker, all `write`, the same targets.
    plan = load(out, "gitops-plan")
    fields = plan["fields"]
    targets = {name: p["target"] for name, p in meta["policies"].items()}
    bad = [f for f in fields if f["action"] != "write"
           or f.get("target") != targets.get(f["policy"].replace(":", "/").split("/")[-1])]
    if len(fields) != marked or bad:
        problems.append(f"gitops plan: {len(fields)} fields (want {marked}), "
                        f"{len(bad)} not `write` to the generated target")
        for f in bad[:5]:
            problems.append(f"  {f['file']}:{f['line']} {f['policy']} {f['current']} -> "
                            f"{f.get('target')} ({f['action']}: {f['reason']})")

    peer_trees = sorted({r["tree"] for r in runs if r["tool"] == "peer"})
    our_trees = sorted({r["tree"] for r in runs if r["tool"] == "upkeep"})
    for r in runs:
        if r["tool"] == "peer" or mode == "apply":
            if r["files"] != marked:
                problems.append(f"gitops {r['tool']} run {r['run']}: {r['files']} files "
                                f"changed, want {marked}")
    if len(peer_trees) != 1:
        problems.append(f"gitops peer: runs ended with different trees {peer_trees}")
    if mode == "apply":
        agree_ok = our_trees == peer_trees
        agree = "yes (same tree)" if agree_ok else "NO: trees differ"
        if not agree_ok:
            problems.append(f"gitops trees: upkeep {our_trees}, peer {peer_trees}")
        name = "rewrite 1k of 10k files + commit"
        tree_line = f"trees: upkeep {' '.join(our_trees)}, peer {' '.join(peer_trees)}"
    else:
        agree = "plan only (no tree)"
        name = "PLAN ONLY: scan 10k files, 1k fields"
        tree_line = (f"trees: upkeep - (plan writes nothing), peer {' '.join(peer_trees)}; "
                     "PLUMBING RUN: this upkeep has no `apply`, so `plan --no-diff` was timed "
                     "(same scan and decisions, no write, no commit)")

    up, pe = median([r["ms"] for r in ours]), median([r["ms"] for r in theirs])
    rss = [r["rss"] for r in ours if r["rss"] is not None]
    ratio = up / pe if pe > 0 else float("inf")
    header = ("benchmark", "peer", "upkeep ms", "peer ms", "ratio", "target", "met", "agree",
              "upkeep max RSS")
    table = [header, (name, "git grep -l | sed -i | git commit", f"{up:.1f}", f"{pe:.1f}",
                      f"{ratio:.2f}x", "<=1x", "yes" if ratio <= 1 else "no", agree,
                      f"{max(rss) / 1024:.1f} MiB" if rss else "-")]
    lines = format_table(table)
    lines.append("")
    lines.append(f"ratio = upkeep ms / peer ms (medians of {len(ours)} and {len(theirs)} "
                 "processes, interleaved, after one warm-up each, same run)")
    lines.append(f"input: {meta['files']} files ({meta['bytes'] / 1e6:.1f} MB) in "
                 f"{meta['clusters']} clusters, {marked} marked fields, "
                 f"{len(meta['policies'])} policies over OCI layouts; each run from the "
                 "initial commit (reset, clean, prune, refresh: untimed)")
    each = {tool: " ".join(f"{r['ms']:.1f}" for r in rs)
            for tool, rs in (("upkeep", ours), ("peer", theirs))}
    lines.append(f"runs ms: upkeep {each['upkeep']}; peer {each['peer']}")
    lines.append(tree_line)
    return lines


def controller_section(out, problems):
    """The controller benchmark (no peer): absolute figures against DESIGN.md's targets, per
    size, and the growth between the two largest sizes. Appends to problems; returns lines."""
    c = load(out, "controller")
    sizes = c["sizes"]
    rss_target = c["target_rss_mib"]
    open_target = c["target_open_s"]

    def objects(sz):
        e = sz["expected"]
        return e["schedules"] + e["sources"] + e["policies"]

    lines = [f"upkeep controller (release binary, own process) against kube-apiserver "
             f"{c['apiserver']} + etcd, a fresh server per size; targets from DESIGN.md"]
    header = ("schedules", "objects", "cold start: all status s", "objects/s",
              "window opens: schedules", "p50 s", "all s", "target", "met")
    table = [header]
    for sz in sizes:
        cold, op = sz["cold"], sz["open"]
        opened = opened_cells(op, open_target, lambda: (
            str(op["schedules"]), f"{op['p50_s']:.2f}", f"{op['all_s']:.2f}"))
        table.append((str(sz["schedules"]), str(objects(sz)), f"{cold['all_s']:.2f}",
                      f"{cold['per_s']:.0f}") + opened)
    lines.extend(format_table(table))
    lines.append("")

    table = memory_table(sizes, "schedules", "object", objects, rss_target)
    if len(sizes) >= 2:
        a, b = sizes[-2], sizes[-1]

        def r(x, y):
            return f"{y / x:.2f}x" if x else "-"
        table.append((f"{b['schedules']}/{a['schedules']}", "", r(a["_rss"], b["_rss"]),
                      r(a["_hwm"], b["_hwm"]), "", "", r(a["_grown"], b["_grown"]), "",
                      r(a["cold"]["cpu_s"], b["cold"]["cpu_s"]),
                      r(a["open"].get("cpu_s", 0), b["open"].get("cpu_s", 0))
                      if not (a["open"]["missed"] or b["open"]["missed"]) else "-",
                      r(a["peak_sockets"], b["peak_sockets"])))
    lines.extend(format_table(table))
    lines.append("")
    if len(sizes) >= 2:
        a, b = sizes[-2], sizes[-1]
        ratio = objects(b) / objects(a)
        grown = b["_grown"] / a["_grown"] if a["_grown"] else float("inf")
        lines.append(f"growth {b['schedules']}/{a['schedules']}: objects {ratio:.2f}x, "
                     f"RSS - idle {grown:.2f}x: memory linear in objects: "
                     f"{'yes' if grown <= ratio * 1.1 else 'no'} (RSS - idle grows no faster "
                     "than the objects, 10 % slack)")
    for sz in sizes:
        check = sz["check"]
        counts = ", ".join(f"{k} {v}" for k, v in check["counts"].items())
        rec = ", ".join(f"{k} {v:.0f}" for k, v in sz["reconciles"].items())
        e = sz["expected"]
        lines.append(f"{sz['schedules']}: created {objects(sz)} objects in "
                     f"{sz['create_s']:.1f} s ({e['coordinated']} coordinated, "
                     f"{e['always_allowed']} alwaysAllowed, {e['invalid']} invalid, "
                     f"{e['sources']} ChartSources, {e['policies']} VersionPolicies); first "
                     f"status after {sz['cold']['first_status_s']:.2f} s; statuses: {counts}; "
                     f"reconciles: {rec}; exit {sz['exit']}")
        size_problems(problems, f"controller {sz['schedules']}", sz)
    lines.append("cold start = from spawning the process until every object has a status "
                 "condition (seen by a watch); window opens = from the instant the shared "
                 "window opens until every coordinated schedule shows it in activeWindow "
                 "(the triggered upgrades are measured by the clusters group); RSS "
                 f"read {c['settle_s']} s after settling; met = VmHWM (the peak) within the "
                 "target; peak sockets sampled every 50 ms from /proc/PID/fd")
    return lines


def opened_cells(op, target, measured):
    """The window-opening cells of one size: the three measured() figures, the target in
    seconds and whether all_s met it; MISSED where the opening was not seen."""
    if op["missed"]:
        return ("MISSED", "-", "-", f"<={target} s", "-")
    return measured() + (f"<={target} s", "yes" if op["all_s"] <= target else "no")


def mib(kib):
    return f"{kib / 1024:.1f}"


def memory_table(sizes, key, unit, count, rss_target):
    """The memory rows both controller benchmarks report, one per size (named by sz[key]):
    idle and settled RSS, the peak (VmHWM) against the target, the growth over idle per
    `unit` (count(sz) of them), CPU and sockets. Keeps each size's RSS, peak and growth as
    _rss, _hwm and _grown for the growth lines."""
    header = (key, "idle RSS MiB", "RSS MiB", "VmHWM MiB", "target", "met",
              "RSS - idle MiB", f"KiB/{unit}", "CPU s cold", "CPU s open", "peak sockets")
    table = [header]
    for sz in sizes:
        cold, op = sz["cold"], sz["open"]
        rss = op["rss_kib"] if not op["missed"] else cold["rss_kib"]
        hwm = max(cold["hwm_kib"], op.get("hwm_kib", 0), sz.get("peak_hwm_kib", 0))
        grown = rss - sz["idle"]["rss_kib"]
        target = sz.get("target_rss_mib", rss_target)
        table.append((str(sz[key]), mib(sz["idle"]["rss_kib"]), mib(rss), mib(hwm),
                      f"<={target} MiB", "yes" if hwm <= target * 1024 else "no",
                      mib(grown), f"{grown / count(sz):.1f}", f"{cold['cpu_s']:.2f}",
                      f"{op['cpu_s']:.2f}" if not op["missed"] else "-",
                      str(sz["peak_sockets"])))
        sz["_rss"], sz["_hwm"], sz["_grown"] = rss, hwm, grown
    return table


def size_problems(problems, label, sz):
    """A size's failed checks, and an exit status other than 0 on SIGTERM, as problems."""
    if not sz["check"]["ok"]:
        problems.append(f"{label}: " + "; ".join(sz["check"]["problems"]))
    if sz["exit"] != 0:
        problems.append(f"{label}: exit {sz['exit']} on SIGTERM")


def format_table(table):
    widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
    lines = []
    for k, r in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def clusters_section(out, problems):
    """The cluster-upgrade benchmark (no peer): when the shared window opens, the time until
    every due cluster carries the target, RSS, API requests per triggered cluster, and growth
    between the two largest sizes with the same number of upgrades. Each size carries its own
    targets (5,000 clusters: 10 s, 64 MiB; the 20,000-cluster campaign: 30 s, 128 MiB)."""
    c = load(out, "clusters")
    sizes = c["sizes"]
    rss_target = c["target_rss_mib"]
    trig_target = c["target_triggered_s"]

    lines = [f"upkeep controller with ClusterUpgrades (release binary, own process) against "
             f"kube-apiserver {c['apiserver']} + etcd, a fresh server per size"]
    header = ("clusters", "schedules", "upgrades", "due", "cold: all reported s",
              "window opens: p50 s", "all triggered s", "clusters/s", "target", "met")
    table = [header]
    for sz in sizes:
        e, op = sz["expected"], sz["open"]
        opened = opened_cells(op, sz.get("target_triggered_s", trig_target), lambda: (
            f"{op['p50_s']:.2f}", f"{op['all_s']:.2f}", f"{op['per_s']:.0f}"))
        table.append((str(sz["clusters"]), str(e["schedules"]), str(e["upgrades"]),
                      str(e["due"]), f"{sz['cold']['all_reported_s']:.2f}") + opened)
    lines.extend(format_table(table))
    lines.append("")
    table = memory_table(sizes, "clusters", "cluster", lambda sz: sz["clusters"], rss_target)
    lines.extend(format_table(table))
    lines.append("")
    table = [("clusters", "upgrades", "API requests", "per triggered cluster",
              "by kind (per triggered cluster)")]
    for sz in sizes:
        r = sz.get("requests")
        if not r:
            continue
        kinds = ", ".join(f"{k} {v['per_cluster']:.2f}" for k, v in r["by_kind"].items())
        table.append((str(sz["clusters"]), str(sz["expected"]["upgrades"]), f"{r['total']:.0f}",
                      f"{r['per_cluster']:.2f}", kinds))
    if len(table) > 1:
        lines.extend(format_table(table))
        lines.append("")
    by_upgrades = {}
    for sz in sizes:
        by_upgrades.setdefault(sz["expected"]["upgrades"], []).append(sz)
    for upgrades, same in sorted(by_upgrades.items()):
        if len(same) < 2:
            continue
        a, b = sorted(same, key=lambda sz: sz["clusters"])[-2:]
        ratio = b["clusters"] / a["clusters"]
        grown = b["_grown"] / a["_grown"] if a["_grown"] else float("inf")
        lines.append(f"growth {b['clusters']}/{a['clusters']} ({upgrades} upgrades): clusters "
                     f"{ratio:.2f}x, RSS - idle {grown:.2f}x: memory linear in clusters: "
                     f"{'yes' if grown <= ratio * 1.1 else 'no'} (10 % slack)")
    for sz in sizes:
        check = sz["check"]
        states = ", ".join(f"{k} {v}" for k, v in check["states"].items())
        rec = ", ".join(f"{k} {v:.0f}" for k, v in sz["reconciles"].items())
        spent = ", ".join(f"{k} {v.get('sum_s', 0):.1f} s in {v.get('count', 0):.0f}"
                          for k, v in sz.get("reconcile_seconds", {}).items())
        lines.append(f"{sz['clusters']}: created in {sz['create_s']:.1f} s; at target after "
                     f"the run: {check['at_target']}; status states: {states}; reconciles: "
                     f"{rec}; reconciling: {spent or '-'}; exit {sz['exit']}")
        size_problems(problems, f"clusters {sz['clusters']}", sz)
    lines.append("window opens = from the instant the shared window opens until a watch sees "
                 "every due cluster's release label at the target (only due clusters may "
                 "change: checked); cold = from spawning until every ClusterUpgrade reports all "
                 f"its clusters in status; RSS read {c['settle_s']} s after settling; API "
                 "requests = the API server's apiserver_request_total (no watches) of the "
                 "resources the controller uses, from just before the opening until its writes "
                 "were quiet for 5 s, divided by the due clusters (reads include the polls "
                 "while clusters upgrade)")
    return lines


def notify_section(out):
    """G: a pushed tag until upkeep's commit is on the Git server, with notifications and with
    polling; the target is p50 <= 2 s with notifications."""
    n = load(out, "notify")
    table = [("mode", "pushes", "p50 s", "p95 s")]
    table.append(("notifications (--interval 1h)", str(n["pushes"]),
                  f"{n['notify']['p50_s']:.3f}", f"{n['notify']['p95_s']:.3f}"))
    table.append((f"polling (--interval {n['poll_interval_s']}s)", str(n["pushes"]),
                  f"{n['poll']['p50_s']:.3f}", f"{n['poll']['p95_s']:.3f}"))
    lines = ["push -> commit on the Git server (upkeep run, real registry and git http-backend)"]
    lines.extend(format_table(table))
    lines.append(f"ratio p50 polling / notifications: {n['ratio_p50']:.1f}x; target p50 <= "
                 f"{n['target_p50_s']:.0f} s with notifications: "
                 f"{'met' if n['met'] else 'NOT met'}")
    return lines


GROUPS = ("select", "windows", "registry", "gitops", "controller", "clusters", "notify")


def main():
    out = sys.argv[1]
    groups = sys.argv[2:] or list(GROUPS)
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        sys.exit(f"report.py: unknown group(s) {unknown}; known: {', '.join(GROUPS)}")
    rows = []
    ok = True
    problems = []
    footer = []

    if "select" in groups:
        su = load(out, "select-upkeep")
        for peer_file, target in (("select-go", 3), ("select-node", 3)):
            p = load(out, peer_file)
            agree, good = select_agreement(su["selected"], p["selected"])
            ok &= good
            if not good:
                problems.append(
                    f"{p['peer']}: selected {p['selected']!r}, upkeep {su['selected']!r}")
            rows.append(("select latest of 100k tags", p["peer"], su["median_ms"],
                         p["median_ms"], target, agree, good))

    if "windows" in groups:
        wu = load(out, "windows-upkeep")
        wp = load(out, "windows-python")
        good = wu["checksum"] == wp["checksum"]
        ok &= good
        agree = "yes (checksum)" if good else "NO: checksums differ"
        if not good:
            problems.append(
                f"windows checksum: upkeep {wu['checksum']}, python {wp['checksum']}")
            problems.extend(windows_diff(out))
        rows.append(("next 10 intervals, 10k schedules", wp["peer"], wu["median_ms"],
                     wp["median_ms"], 20, agree, good))
        footer.append("windows: schedules built before timing on both sides "
                      f"(upkeep build {wu.get('build_ms', 0):.1f} ms, not included)")

    scan_lines = []
    if "registry" in groups:
        before = len(problems)
        notes, scan_lines, reg = registry_rows(out, rows, problems)
        ok &= len(problems) == before and all(c["agree"] for c in reg["list"])
        footer.extend(notes)
        footer.append(f"list: {reg['skopeo_version']}; {reg['registry']}; both timed as "
                      f"processes, interleaved, median of {reg['runs']}")

    gitops_lines = []
    if "gitops" in groups:
        before = len(problems)
        gitops_lines = gitops_section(out, problems)
        ok &= len(problems) == before

    controller_lines = []
    if "controller" in groups:
        before = len(problems)
        controller_lines = controller_section(out, problems)
        ok &= len(problems) == before

    clusters_lines = []
    if "clusters" in groups:
        before = len(problems)
        clusters_lines = clusters_section(out, problems)
        ok &= len(problems) == before

    notify_lines = notify_section(out) if "notify" in groups else []

    header = ("benchmark", "peer", "upkeep ms", "peer ms", "ratio", "target", "met", "agree")
    table = [header]
    for name, peer, ours, theirs, target, agree, _good in rows:
        ratio = theirs / ours if ours > 0 else float("inf")
        table.append((name, peer, f"{ours:.2f}", f"{theirs:.2f}", f"{ratio:.2f}x",
                      f">={target}x", "yes" if ratio >= target else "no", agree))
    if rows:
        for line in format_table(table):
            print(line)
        print()
        print("ratio = peer ms / upkeep ms (medians, same input, same run)")
        for line in footer:
            print(line)
    if scan_lines:
        print()
        for line in scan_lines:
            print(line)
    if gitops_lines:
        if rows or scan_lines:
            print()
        for line in gitops_lines:
            print(line)
    if controller_lines:
        if rows or scan_lines or gitops_lines:
            print()
        for line in controller_lines:
            print(line)
    if clusters_lines:
        if rows or scan_lines or gitops_lines or controller_lines:
            print()
        for line in clusters_lines:
            print(line)

    if notify_lines:
        if rows or scan_lines or gitops_lines or controller_lines or clusters_lines:
            print()
        for line in notify_lines:
            print(line)

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
