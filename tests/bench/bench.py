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

Of the Graph figures of run.sh (issue 15):

  bench.py graph-numbers-config SIM N INTERVAL PER_TARGET
                                         an exporter config of cloud_api targets polling
                                         the fleet's numbers 0..N by phone_number_ids only,
                                         PER_TARGET numbers a target
  bench.py graph-figures START SETTLED END INTERVAL DEFAULT_INTERVAL DISCOVERY CPU METRICS
                                         the Graph figures of issue 15 from three
                                         /fleet/stats?per_target=1 answers (the exporter's
                                         start, the window's start and end, a few
                                         intervals of INTERVAL s apart), the exporter's CPU
                                         seconds over the window and its /metrics body (the
                                         numbers on it are the numbers polled):
                                         "cycles per_cycle polls_per_cycle amortised
                                         discovery_requests share_mean_% share_max_%
                                         numbers_on_metrics cpu_us_per_number breakdown"
  bench.py graph-wait STATS_URL BASELINE KINDS TIMEOUT
                                         waits until the simulator has counted a request of
                                         one of KINDS (comma-separated) since the
                                         /fleet/stats answer BASELINE; prints the seconds

Of the webhook figures of run.sh (issue 16):

  bench.py webhook-requests CORPUS SECRET N TEMPLATE SIGS
                                         the body template of webhooks.lua (Meta's status
                                         delivery CORPUS, its id and status replaced by
                                         @ID@ and @STATUS@) and the HMAC-SHA256 hex of the
                                         N bodies it makes, one a line; prints the bytes of
                                         the largest body
  bench.py webhook-verify TEMPLATE SIGS SECRET SAMPLE
                                         recomputes SAMPLE of the signatures (spread over
                                         the file) with openssl, an implementation apart;
                                         prints "checked mismatches"
  bench.py webhook-counts URL            from a /metrics answer: "accepted
                                         other_results series duplicates dropped": the
                                         requests counted accepted, those counted with
                                         any other result, the series of the webhook
                                         families, the statuses counted as redelivered and
                                         the increments series_limit dropped
"""

import hashlib
import hmac
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
import urllib.request

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
    # A Cloud API number is read by `/PHONE_NUMBER_ID` ("graph") or, when its target names
    # it in phone_number_ids, by one `?ids=` request of the target ("graph_ids"): each
    # poll reads it once by one of the two.
    kinds = {"graph": ("graph", "graph_ids")}
    for kind, lo, hi in ranges:
        names = [k for k in kinds.get(kind, (kind,)) if k in after["per_target"]]
        for i in range(lo, hi):
            n = sum(
                after["per_target"][k][i] - before["per_target"][k][i] for k in names
            )
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


GRAPH_TOKEN = "sim-graph-token-0123456789"
PHONE_NUMBER_ID_BASE = 190_000_000_000_000
# Business-level requests: a business's WABA listings and debug_token, the discovery's.
DISCOVERY_KINDS = ("graph_owned_wabas", "graph_client_wabas", "graph_debug_token")
# Requests on a WABA itself (its node and edges), by WABA.
WABA_KINDS = (
    "graph_waba",
    "graph_waba_phone_numbers",
    "graph_waba_message_templates",
    "graph_waba_subscribed_apps",
)
# A WABA's per-hour budget of Graph requests (issue 15).
WABA_BUDGET_PER_HOUR = 5000


def graph_numbers_config(sim, n, interval, per_target):
    """cloud_api targets polling numbers 0..n of the fleet by id, PER_TARGET each: the
    per-number path (a target's numbers all answer within its timeout, or none counts)."""
    n, interval, per_target = int(n), float(interval), int(per_target)
    print(f"# The fleet's numbers 0..{n} by phone_number_ids only, {per_target} a target.")
    print("global:")
    print(f"  interval: {interval:g}s")
    print(f"  timeout: {min(interval, 10.0):g}s")
    print("targets:")
    for t, first in enumerate(range(0, n, per_target)):
        ids = ", ".join(
            f'"{PHONE_NUMBER_ID_BASE + i}"' for i in range(first, min(first + per_target, n))
        )
        # Room for every number's series, as /fleet/config gives a business target.
        print(
            f'  - {{name: numbers-{t}, type: cloud_api, base_url: "{sim}/fleet/graph", '
            f'access_token: "{GRAPH_TOKEN}", series_limit: {100 * per_target + 1000}, '
            f"phone_number_ids: [{ids}]}}"
        )


def graph_kinds(stats):
    return {k: v for k, v in stats["requests"].items() if k.startswith("graph")}


def graph_figures(start_path, settled_path, end_path, interval, default_interval,
                  discovery_interval, cpu_seconds, metrics_path):
    """Graph requests per poll cycle, per WABA per hour and CPU per number (issue 15).

    The window (SETTLED to END) is a few whole intervals after the first discovery, as long
    as the simulator's uptime between the two answers says: its requests over its length in
    intervals are the requests of one poll cycle. The business-level requests
    (listings, debug_token) are the discovery's: counted from the exporter's start, they are
    amortised over the discovery interval. A WABA's budget counts the requests on its node
    and edges and on its numbers (alone or in ?ids= lookups: a lookup naming several of its
    numbers counted once), per hour at DEFAULT_INTERVAL.
    """
    start, settled, end = (json.load(open(p)) for p in (start_path, settled_path, end_path))
    interval = float(interval)
    cycles = (end["uptime_seconds"] - settled["uptime_seconds"]) / interval
    default_interval, discovery_interval = float(default_interval), float(discovery_interval)
    cpu_seconds = float(cpu_seconds)
    a, b = graph_kinds(settled), graph_kinds(end)
    window = {k: b[k] - a.get(k, 0) for k in b}
    total = sum(window.values())
    per_cycle = total / cycles
    in_window = sum(window.get(k, 0) for k in DISCOVERY_KINDS)
    polls_per_cycle = (total - in_window) / cycles
    run = end["uptime_seconds"] - start["uptime_seconds"]
    s0 = graph_kinds(start)
    discovery = sum(b.get(k, 0) - s0.get(k, 0) for k in DISCOVERY_KINDS)
    discoveries = 1 + int(run // discovery_interval)
    amortised = polls_per_cycle + discovery / discoveries * interval / discovery_interval

    def delta(kind):
        before = settled["per_target"].get(kind, [])
        after = end["per_target"].get(kind, [])
        return [x - (before[i] if i < len(before) else 0) for i, x in enumerate(after)]

    shape = end.get("businesses", {})
    wabas, per_waba = int(shape.get("wabas", 0)), int(shape.get("numbers_per_waba", 0))
    mean_share = max_share = float("nan")
    if wabas and per_waba:
        counts = [0] * wabas
        for kind in WABA_KINDS:
            for w, n in enumerate(delta(kind)[:wabas]):
                counts[w] += n
        alone, looked_up = delta("graph"), delta("graph_ids")
        for w in range(wabas):
            mine = range(w * per_waba, (w + 1) * per_waba)
            counts[w] += sum(alone[i] for i in mine if i < len(alone))
            counts[w] += max((looked_up[i] for i in mine if i < len(looked_up)), default=0)
        per_hour = [c / cycles * 3600 / default_interval for c in counts]
        # The WABAs the exporter asked about: the others are not its budget's.
        asked = [x for x in per_hour if x > 0] or per_hour
        mean_share = sum(asked) / len(asked) / WABA_BUDGET_PER_HOUR * 100
        max_share = max(asked) / WABA_BUDGET_PER_HOUR * 100
    on_metrics = set()
    label = re.compile(r'phone_number_id="([^"]*)"')
    try:
        with open(metrics_path, encoding="utf-8") as f:
            for line in f:
                if not line.startswith("#"):
                    on_metrics.update(label.findall(line))
    except OSError:
        pass
    # The numbers polled: those on /metrics, each once per cycle.
    polled = len(on_metrics) * cycles
    cpu_us = cpu_seconds / polled * 1e6 if polled else float("nan")
    breakdown = ",".join(f"{k}={v / cycles:g}" for k, v in sorted(window.items()) if v) or "none"
    print(
        f"{cycles:.3f} {per_cycle:.1f} {polls_per_cycle:.1f} {amortised:.1f} {discovery} "
        f"{mean_share:.3f} {max_share:.3f} {len(on_metrics)} {cpu_us:.3f} {breakdown}"
    )


def graph_wait(stats_url, baseline_path, kinds, timeout):
    """Waits (at most TIMEOUT s) until the simulator counts a request of one of KINDS
    (comma-separated) more than the /fleet/stats answer BASELINE; prints the seconds waited,
    or nan."""
    kinds = kinds.split(",")
    baseline = json.load(open(baseline_path))["requests"]
    start = time.monotonic()
    while time.monotonic() - start < float(timeout):
        try:
            with urllib.request.urlopen(stats_url, timeout=5) as resp:
                stats = json.load(resp)
            if any(stats["requests"].get(k, 0) > baseline.get(k, 0) for k in kinds):
                print(f"{time.monotonic() - start:.1f}")
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    print("nan")


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


STATUSES = ("sent", "delivered", "read")


def webhook_body(head, middle, tail, index):
    """The index-th body, built as webhooks.lua builds it."""
    return f"{head}{index:012d}{middle}{STATUSES[index % 3]}{tail}".encode()


def webhook_template_parts(template):
    head, rest = template.split("@ID@", 1)
    middle, tail = rest.split("@STATUS@", 1)
    return head, middle, tail


def webhook_requests(corpus, secret, n, template_path, sigs_path):
    doc = json.load(open(corpus))
    status = doc["entry"][0]["changes"][0]["value"]["statuses"][0]
    # A wamid-like id of Meta's length, the index in place of its tail.
    status["id"] = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEz@ID@AA=="
    status["status"] = "@STATUS@"
    # Indented as Meta's published examples are: about 1.1 KB, the size the issue names.
    template = json.dumps(doc, indent=2)
    with open(template_path, "w") as f:
        f.write(template)
    head, middle, tail = webhook_template_parts(template)
    key = secret.encode()
    largest = 0
    with open(sigs_path, "w") as f:
        for i in range(int(n)):
            body = webhook_body(head, middle, tail, i)
            largest = max(largest, len(body))
            f.write(hmac.new(key, body, hashlib.sha256).hexdigest())
            f.write("\n")
    print(largest)


def webhook_verify(template_path, sigs_path, secret, sample):
    head, middle, tail = webhook_template_parts(open(template_path).read())
    sigs = open(sigs_path).read().split("\n")[:-1]
    step = max(1, len(sigs) // int(sample))
    checked = mismatches = 0
    for i in range(0, len(sigs), step):
        out = subprocess.run(
            ["openssl", "dgst", "-sha256", "-hmac", secret, "-r"],
            input=webhook_body(head, middle, tail, i),
            capture_output=True,
            check=True,
        ).stdout.split()[0].decode()
        checked += 1
        mismatches += out != sigs[i]
    print(checked, mismatches)


WEBHOOK_FAMILIES = re.compile(
    r"^(whatsapp_webhook_|whatsapp_message_statuses_total|whatsapp_message_errors_total|"
    r"whatsapp_message_billable_total|whatsapp_business_events_total)"
)


def webhook_counts(url):
    text = urllib.request.urlopen(url, timeout=30).read().decode()
    accepted, others, series, duplicates, dropped = 0, 0, 0, 0, 0
    for line in text.splitlines():
        if line.startswith("#") or not WEBHOOK_FAMILIES.match(line):
            continue
        series += 1
        name, _, value = line.rpartition(" ")
        if name == "whatsapp_webhook_duplicate_statuses_total":
            duplicates = float(value)
        elif name == "whatsapp_webhook_series_dropped_total":
            dropped = float(value)
        m = re.match(r'whatsapp_webhook_requests_total\{result="([^"]*)"\} (\S+)', line)
        if m:
            if m.group(1) == "accepted":
                accepted = float(m.group(2))
            else:
                others += float(m.group(2))
    print(f"{accepted:.0f} {others:.0f} {series} {duplicates:.0f} {dropped:.0f}")


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
        "graph-numbers-config": graph_numbers_config,
        "graph-figures": graph_figures,
        "graph-wait": graph_wait,
        "webhook-requests": webhook_requests,
        "webhook-verify": webhook_verify,
        "webhook-counts": webhook_counts,
    }
    if command not in commands:
        sys.exit(__doc__)
    commands[command](*args)


if __name__ == "__main__":
    main()
