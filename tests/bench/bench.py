#!/usr/bin/env python3
"""Helpers of tests/bench/run.sh (standard library only): processes' CPU and memory from
/proc, a rate-limited HTTP client, start-to-first-answer, wrk's output, the fleet
simulator's counters, and the final table. Every subcommand prints plain values for the
shell, one per line or space-separated.

  bench.py ports N                       N free TCP ports on 127.0.0.1
  bench.py cpu PID...                    utime+stime of the processes, in seconds
  bench.py mem PID                       VmRSS and VmHWM, in KiB
  bench.py rate SECONDS RATE URL [H:V]... GETs at RATE/s for SECONDS, keep-alive;
                                         prints "ok failed"
  bench.py first-answer URL TIMEOUT -- CMD...
                                         starts CMD, polls URL until a 200, prints
                                         "milliseconds pid" (the process is left running)
  bench.py wrk FILE                      "requests_per_s requests bytes_per_s errors"
  bench.py spread BEFORE AFTER INTERVAL ONPREM CLOUD
                                         per-second and per-target figures from two
                                         /fleet/stats?per_target=1 answers
  bench.py series FILE                   "lines series duplicates targets_with_up"
  bench.py median X...                   the median
  bench.py table ROWS                    prints the table of ROWS (tab-separated)

Of tests/bench/soak.sh:

  bench.py soak-setup FLEET_CONFIG DIR FILES ONPREM CLOUD MAX_POLLS
                                         splits a /fleet/config answer of the whole fleet
                                         into DIR/exporter.yaml (its global section,
                                         max_concurrent_polls, target_files) and FILES
                                         target files DIR/targets/part-NN.yaml holding
                                         ONPREM onprem targets and CLOUD numbers (a third
                                         each of dialog360, kapso, cloud_api); the rest is
                                         kept aside in DIR/soak-state.json for the churn
  bench.py soak-churn DIR COUNT          rewrites the next target file: COUNT of its targets
                                         swapped for as many kept aside, of the same types;
                                         prints "file removed added"
  bench.py scrape FILE                   figures of a /metrics body: "series duplicates
                                         targets_with_up poller_tasks alive_tasks targets
                                         poll_errors reloads_ok reloads_failed
                                         reason=count,..." (- for a missing figure)
  bench.py fleet-rate STATS              from a /fleet/stats answer: "requests/s over the
                                         last 10 whole seconds, requests, faults answered"
"""

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

CLK_TCK = os.sysconf("SC_CLK_TCK")


def ports(n):
    socks, out = [], []
    for _ in range(int(n)):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        out.append(str(s.getsockname()[1]))
    for s in socks:
        s.close()
    print(" ".join(out))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After "pid (comm)": state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu(*pids):
    print(f"{sum(cpu_seconds(p) for p in pids):.2f}")


def mem(pid):
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    print(values.get("VmRSS", 0), values.get("VmHWM", 0))


def rate(seconds, per_second, url, *headers):
    """Requests at a fixed pace on one keep-alive connection, as a scraper would."""
    seconds, per_second = float(seconds), float(per_second)
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    hdrs = dict(h.split(":", 1) for h in headers)
    hdrs = {k.strip(): v.strip() for k, v in hdrs.items()}
    ok = failed = 0
    conn = None
    start = time.monotonic()
    n = int(seconds * per_second)
    for i in range(n):
        due = start + i / per_second
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            conn.request("GET", path, headers=hdrs)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                ok += 1
            else:
                failed += 1
        except (OSError, http.client.HTTPException):
            failed += 1
            if conn is not None:
                conn.close()
            conn = None
    print(ok, failed)


def first_answer(url, timeout, *cmd):
    """Spawns cmd and polls url in a tight loop until it answers 200."""
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    u = urllib.parse.urlsplit(url)
    deadline_s = float(timeout)
    log = open(os.environ.get("FIRST_ANSWER_LOG", os.devnull), "ab")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
    while time.monotonic() - start < deadline_s:
        try:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
            conn.request("GET", u.path)
            resp = conn.getresponse()
            resp.read()
            conn.close()
            if resp.status == 200:
                print(f"{(time.monotonic() - start) * 1000:.1f} {proc.pid}")
                return
        except OSError:
            time.sleep(0.0005)
    print(f"nan {proc.pid}")


UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def wrk(path):
    text = open(path).read()
    rps = re.search(r"Requests/sec:\s*([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    transfer = re.search(r"Transfer/sec:\s*([\d.]+)([KMGT]?B)", text)
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(g) for g in m.groups())
    print(
        rps.group(1) if rps else "nan",
        total.group(1) if total else "0",
        f"{float(transfer.group(1)) * UNITS[transfer.group(2)]:.0f}" if transfer else "nan",
        errors,
    )


def spread(before_path, after_path, interval, onprem, cloud):
    """Per-second requests and per-target polls between two /fleet/stats answers.

    The window is the simulator's own uptime between the two answers: k whole intervals
    and a little more, so a target whose phase falls in that little more is polled k + 1
    times; about targets x extra / interval of them are expected.
    """
    before = json.load(open(before_path))
    after = json.load(open(after_path))
    interval, onprem, cloud = float(interval), int(onprem), int(cloud)
    counts = after["per_second"]["counts"]
    # Whole seconds of the window only: the first and last are partial.
    inner = counts[1:-1] if len(counts) > 2 else counts
    mean = sum(inner) / len(inner) if inner else float("nan")
    peak = max(inner) if inner else float("nan")
    window = after["uptime_seconds"] - before["uptime_seconds"]
    k = int(window // interval)
    third, rest = divmod(cloud, 3)
    d = third + (rest > 0)
    kk = third + (rest > 1)
    ranges = [
        ("onprem_health", 0, onprem),
        ("dialog360", 0, d),
        ("kapso", d, d + kk),
        ("graph", d + kk, cloud),
    ]
    exact = plus_one = other = 0
    polls = []
    for kind, lo, hi in ranges:
        b = before["per_target"][kind]
        a = after["per_target"][kind]
        for i in range(lo, hi):
            n = a[i] - b[i]
            polls.append(n)
            if n == k:
                exact += 1
            elif n == k + 1:
                plus_one += 1
            else:
                other += 1
    expected = len(polls) * (window - k * interval) / interval
    total = sum(after["requests"].values()) - sum(before["requests"].values())
    print(
        f"{window:.2f} {k} {mean:.1f} {peak} {peak / mean if mean else float('nan'):.3f} "
        f"{exact} {plus_one} {expected:.0f} {other} {min(polls) if polls else 0} "
        f"{max(polls) if polls else 0} {total}"
    )


SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})?) ")


def series(path):
    lines = 0
    seen = set()
    duplicates = 0
    up_targets = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            lines += 1
            m = SERIES.match(line)
            key = m.group(1) if m else line
            if key in seen:
                duplicates += 1
            seen.add(key)
            if line.startswith("whatsapp_up{"):
                t = re.search(r'target="([^"]*)"', line)
                if t:
                    up_targets.add(t.group(1))
    print(lines, len(seen), duplicates, len(up_targets))


TARGET_LINE = re.compile(r"^  - (\{name: ([^,]+), type: ([a-z0-9_]+),.*)$")


def soak_setup(config_path, out_dir, files, onprem, cloud, max_polls):
    """The soak's exporter config and target files, from the simulator's own fleet config.

    Every target line is kept as the simulator wrote it; the first ONPREM onprem targets
    and the first CLOUD / 3 of each Cloud API type are active, the others wait aside.
    """
    files, onprem, cloud = int(files), int(onprem), int(cloud)
    header, by_type = [], {}
    for line in open(config_path, encoding="utf-8"):
        line = line.rstrip("\n")
        m = TARGET_LINE.match(line)
        if m:
            by_type.setdefault(m.group(3), []).append(m.group(1))
        elif line.strip() != "targets:" and not line.startswith("#"):
            header.append(line)
    third, rest = divmod(cloud, 3)
    wanted = {
        "onprem": onprem,
        "dialog360": third + (rest > 0),
        "kapso": third + (rest > 1),
        "cloud_api": third,
    }
    active, aside = [], {}
    for kind, n in wanted.items():
        lines = by_type.get(kind, [])
        if len(lines) < n:
            sys.exit(f"the fleet config has {len(lines)} {kind} targets, {n} needed")
        active.extend(lines[:n])
        aside[kind] = lines[n:]
    parts = [[] for _ in range(files)]
    for i, line in enumerate(active):
        parts[i % files].append(line)
    os.makedirs(os.path.join(out_dir, "targets"), exist_ok=True)
    with open(os.path.join(out_dir, "exporter.yaml"), "w", encoding="utf-8") as f:
        f.write("# The soak's exporter: the fleet's global section, its targets in target files.\n")
        f.write("\n".join(header) + "\n")
        f.write(f"  max_concurrent_polls: {int(max_polls)}\n")
        f.write('target_files: ["targets/*.yaml"]\n')
    state = {"parts": parts, "aside": aside, "churns": 0}
    for n in range(files):
        write_part(out_dir, n, parts[n])
    save_state(out_dir, state)
    print(len(active), sum(len(v) for v in aside.values()))


def write_part(out_dir, n, lines):
    """Writes a target file whole, then renames it: the exporter never reads half of one."""
    path = os.path.join(out_dir, "targets", f"part-{n:02d}.yaml")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write("".join(f"- {line}\n" for line in lines))
    os.replace(path + ".tmp", path)


def save_state(out_dir, state):
    path = os.path.join(out_dir, "soak-state.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(state, f)
    os.replace(path + ".tmp", path)


def soak_churn(out_dir, count):
    import random

    state = json.load(open(os.path.join(out_dir, "soak-state.json"), encoding="utf-8"))
    churn = state["churns"]
    n = churn % len(state["parts"])
    part = state["parts"][n]
    rng = random.Random(churn)
    removed = rng.sample(range(len(part)), min(int(count), len(part)))
    added = 0
    for i in sorted(removed, reverse=True):
        line = part[i]
        kind = TARGET_LINE.match("  - " + line).group(3)
        spare = state["aside"][kind]
        if not spare:
            continue
        part[i] = spare.pop(rng.randrange(len(spare)))
        spare.append(line)
        added += 1
    state["churns"] = churn + 1
    write_part(out_dir, n, part)
    save_state(out_dir, state)
    print(f"part-{n:02d}.yaml", added, added)


def scrape(path):
    """The soak's figures of one /metrics body (text format)."""
    sample = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)")
    seen, duplicates, up = set(), 0, set()
    single = {}
    errors, reloads = {}, {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            m = sample.match(line)
            if not m:
                continue
            name, labels, value = m.group(1), m.group(2) or "", m.group(3)
            key = name + labels
            if key in seen:
                duplicates += 1
            seen.add(key)
            if name == "whatsapp_up":
                t = re.search(r'target="([^"]*)"', labels)
                if t:
                    up.add(t.group(1))
            elif name == "whatsapp_poll_errors_total":
                r = re.search(r'reason="([^"]*)"', labels)
                reason = r.group(1) if r else "?"
                errors[reason] = errors.get(reason, 0) + float(value)
            elif name == "whatsapp_exporter_config_reloads_total":
                r = re.search(r'result="([^"]*)"', labels)
                reloads[r.group(1) if r else "?"] = float(value)
            elif name in (
                "whatsapp_exporter_poller_tasks",
                "whatsapp_exporter_runtime_alive_tasks",
                "whatsapp_exporter_targets",
            ):
                single[name] = value

    def figure(name):
        return single.get(name, "-")

    by_reason = ",".join(f"{r}={v:.0f}" for r, v in sorted(errors.items()) if v) or "none"
    print(
        len(seen),
        duplicates,
        len(up),
        figure("whatsapp_exporter_poller_tasks"),
        figure("whatsapp_exporter_runtime_alive_tasks"),
        figure("whatsapp_exporter_targets"),
        f"{sum(errors.values()):.0f}",
        f"{reloads.get('success', 0):.0f}",
        f"{reloads.get('failure', 0):.0f}",
        by_reason,
    )


def fleet_rate(stats_path):
    stats = json.load(open(stats_path))
    counts = stats["per_second"]["counts"][-10:]
    rate = sum(counts) / len(counts) if counts else float("nan")
    faults = sum(stats.get("faults", {}).get("answered", {}).values())
    print(f"{rate:.0f}", sum(stats["requests"].values()), faults)


def median(*xs):
    values = sorted(float(x) for x in xs if x not in ("nan", ""))
    if not values:
        print("nan")
        return
    n = len(values)
    mid = values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2
    print(f"{mid:.6g}")


def table(path):
    rows = [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]
    head = ["figure", "ours", "reference", "ratio", "goal", "met"]
    widths = [len(h) for h in head]
    for r in rows:
        if len(r) == 1:
            continue
        for i, cell in enumerate(r[:6]):
            widths[i] = max(widths[i], len(cell))
    rule = "-+-".join("-" * w for w in widths)
    print(" | ".join(h.ljust(w) for h, w in zip(head, widths)))
    print(rule)
    for r in rows:
        if len(r) == 1:
            print(f"-- {r[0]}")
            continue
        r = (r + [""] * 6)[:6]
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    command, args = sys.argv[1], sys.argv[2:]
    commands = {
        "ports": ports,
        "cpu": cpu,
        "mem": mem,
        "rate": rate,
        "first-answer": first_answer,
        "wrk": wrk,
        "spread": spread,
        "series": series,
        "median": median,
        "table": table,
        "soak-setup": soak_setup,
        "soak-churn": soak_churn,
        "scrape": scrape,
        "fleet-rate": fleet_rate,
    }
    if command not in commands:
        sys.exit(__doc__)
    commands[command](*args)


if __name__ == "__main__":
    main()
