#!/usr/bin/env bash
# Performance benchmark of whatsapp-exporter: runs the scenarios of the performance issue
# on this machine and prints one table: figure, ours, reference, ratio (ours / reference),
# goal, met. Every figure is measured in this run (blackbox_exporter and nginx too), except
# json_exporter's, which is not in Debian: its figures are the issue's, marked "not run".
#
# Run it from anywhere, on Debian, as root (or with sudo for apt-get):
#
#   bash tests/bench/run.sh                 # about 18 minutes
#   bash tests/bench/run.sh --soak 3600     # memory over an hour of polling (the goal)
#   bash tests/bench/run.sh --perf          # also record perf profiles of the three loads
#   bash tests/bench/run.sh --keep          # keep the work directory (logs, bodies, wrk output)
#   bash tests/bench/run.sh --graph-only    # only the Graph figures of issue 15 (6. below)
#   bash tests/bench/run.sh --webhooks-only # only the webhook figures of issue 16 (7. below)
#   bash tests/bench/run.sh --webhooks-only --webhooks-flood 100000
#                                           # floods of that many distinct ids (default
#                                           # 1,000,000; at most 1,000,000)
#   bash tests/bench/run.sh --graph-interval 10 --graph-cycles 3
#                                           # their poll interval (s; default 30) and window
#   bash tests/bench/run.sh --bin target/debug/whatsapp-exporter --graph-only
#                                           # this binary, no release build: checks the
#                                           # script (CPU figures are not the release's)
#   bash tests/bench/run.sh --graph-only --exporter-bin OLD/whatsapp-exporter
#                                           # the Graph figures of another build's exporter
#                                           # (an older revision, built apart) against this
#                                           # revision's simulator: "today's" CPU per number
#
# It installs what is missing (wrk, nginx-light, prometheus-blackbox-exporter, python3,
# curl; linux-perf with --perf) with apt-get, builds `cargo build --release`, and starts
# everything it measures itself, on free ports of 127.0.0.1: the simulator with a fleet
# (`simulate --targets 10000`), the exporter, blackbox_exporter and nginx. It stops them by
# pid when it ends. (On a machine with systemd, installing the packages may also start
# their services, nginx on :80 and blackbox_exporter on :9115; the script does not use them.)
# promtool, when installed, checks the /metrics body of 10,000 targets.
#
# How it measures: CPU seconds are utime+stime of /proc/<pid>/stat (every nginx process
# summed) before and after each load; memory is VmRSS and VmHWM of /proc/<pid>/status;
# request rates and transfer rates are wrk's (`wrk -t2 -c4 -d10s`, the load generator sharing
# the cores); each load figure is the median of three runs. The scenarios:
#
#  1. Release binary size; start to the first 200 on /metrics (the demo's configuration,
#     and 10,000 targets); resident memory with the demo's configuration.
#  2. /probe of one On-Premises /v1/health of the fleet, beside blackbox_exporter (an http
#     module with the Apikey header and a regex on "connected") against the same upstream,
#     and nginx serving the same JSON: requests/s and CPU seconds per 1,000 probes under wrk,
#     then at 9 probes/s for 30 s (a paced client, both exporters at once). Also, not goals:
#     the simulator's own /v1/health rate (the upstream must not be the limit) and /probe of
#     four targets in turn.
#  3. Background polling of 10,000 targets (1,000 On-Premises with health and support, and
#     3,000 each of dialog360, kapso and cloud_api numbers, a mix of states) every 30 s:
#     after a warm-up interval, CPU over three intervals (90 s), the simulator's requests
#     per second (max / mean) and how often each target was polled in that window.
#  4. /metrics of those 10,000 targets: MiB/s beside nginx serving the same bytes from a
#     file at the same path; gzip; CPU per scrape at full load and at one scrape per second
#     (the background polling's CPU, measured in 3, subtracted); series and promtool checks.
#  5. Memory: resident at 10,000 targets against 1.5 x the body + 16 MiB; then --soak SECONDS
#     (default 120) of polling with a scrape every 15 s, RSS at its start and end.
#  6. The Cloud API at fleet scale (issue 15), against a simulator of one business of 1,000
#     WABAs of 10 numbers (`simulate --fleet.businesses 1 --fleet.wabas-per-business 1000
#     --fleet.numbers-per-waba 10`): the exporter with one cloud_api target by `business_id`
#     (`/fleet/config?businesses=1`, discovery_interval 10m) at --graph-interval (30 s), left
#     to settle past its first discovery (its first WABA listing, then two intervals), then
#     measured over --graph-cycles (3) intervals: the simulator's Graph requests (every
#     `graph...` kind of /fleet/stats) per cycle, the window's length in intervals taken from
#     the simulator's clock, beside the old client's 11,000; the same with the business's
#     listings and debug_token amortised over the 10m discovery; each WABA's requests (its
#     node, edges and numbers) per hour at the 30 s default over its 5,000/hour budget; and
#     the exporter's CPU per number polled (CPU seconds over the numbers on /metrics times
#     the window in intervals). Beside them, the same run with the 10,000 numbers by
#     phone_number_ids only (the per-number path), 50 a target (all the numbers of a target
#     answer within its timeout). An exporter without `business_id` has its rows say n/a.
#  7. The webhook receiver (issue 16): an exporter with only a `webhooks:` section (no
#     targets) takes Meta's status deliveries, one status of about 1.1 KB each, every one
#     with its own message id and signed with the app secret (X-Hub-Signature-256), from
#     wrk with webhooks.lua (the signatures precomputed by bench.py: wrk's Lua has no HMAC);
#     nginx answers the same POSTs with `return 200`. Deliveries/s and CPU per 1,000 of
#     both; the exporter's whatsapp_webhook_requests_total{result="accepted"} must have
#     grown by what wrk completed (plus at most the requests in flight when wrk stopped).
#     Then a fresh exporter: resident memory before (after a warm-up answered 403) and
#     after 1,000,000 deliveries of distinct ids, and after 1,000,000 more, beside the bound
#     of its dedup (two generations, 2.25 MiB at the default dedup_window 100,000; see
#     src/webhooks/dedup.rs) plus the webhook families' series (capped by series_limit).
#
# Where the issue's words need a number, the script's reading is in the goal column: no
# burst = the busiest second at most 1.5 x the mean; a scrape's cost not growing with how
# often = CPU per scrape at full load at most half that at one scrape per second; gzip from
# the same cache = a gzip scrape costs no more CPU than a plain one; flat = at most +5 %.
set -uo pipefail

SOAK=120
PERF=0
KEEP=0
GRAPH_ONLY=0
WEBHOOKS_ONLY=0
GRAPH_INTERVAL=30
GRAPH_CYCLES=3
WH_FLOOD=1000000
GIVEN_BIN=
EXPORTER_BIN=
while (($#)); do
    case "$1" in
    --bin)
        GIVEN_BIN="${2:?--bin needs a path}"
        shift 2
        ;;
    --exporter-bin)
        EXPORTER_BIN="${2:?--exporter-bin needs a path}"
        shift 2
        ;;
    --graph-only)
        GRAPH_ONLY=1
        shift
        ;;
    --webhooks-only)
        WEBHOOKS_ONLY=1
        shift
        ;;
    --webhooks-flood)
        WH_FLOOD="${2:?--webhooks-flood needs a count}"
        shift 2
        ;;
    --graph-interval)
        GRAPH_INTERVAL="${2:?--graph-interval needs seconds}"
        shift 2
        ;;
    --graph-cycles)
        GRAPH_CYCLES="${2:?--graph-cycles needs a count}"
        shift 2
        ;;
    --soak)
        SOAK="${2:?--soak needs seconds}"
        shift 2
        ;;
    --soak=*)
        SOAK="${1#--soak=}"
        shift
        ;;
    --perf)
        PERF=1
        shift
        ;;
    --keep)
        KEEP=1
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "unknown argument $1 (try --help)" >&2
        exit 2
        ;;
    esac
done
[[ "$SOAK" =~ ^[0-9]+$ ]] || {
    echo "--soak takes whole seconds" >&2
    exit 2
}
[[ "$WH_FLOOD" =~ ^[1-9][0-9]*$ ]] && ((WH_FLOOD <= 1000000)) || {
    echo "--webhooks-flood takes a count from 1 to 1000000" >&2
    exit 2
}
[[ "$GRAPH_INTERVAL" =~ ^[1-9][0-9]*$ && "$GRAPH_CYCLES" =~ ^[1-9][0-9]*$ ]] || {
    echo "--graph-interval takes whole seconds and --graph-cycles a count, both above 0" >&2
    exit 2
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH="$ROOT/tests/bench"
# shellcheck source=tests/bench/common.sh
. "$BENCH/common.sh"
WORK="$(mktemp -d /tmp/wa-bench.XXXXXX)"
chmod 755 "$WORK"
ROWS="$WORK/rows.tsv"
: >"$ROWS"
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        if [[ -e /proc/$pid ]]; then
            kill -TERM "$pid" 2>/dev/null
        fi
    done
    for pid in "${PIDS[@]}"; do
        wait_gone "$pid"
    done
    if ((KEEP)); then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null
    wait_gone "$pid"
}

fmt() { awk -v x="$1" -v d="${2:-0}" 'BEGIN { if (x == "nan" || x == "") print "n/a"; else printf "%.*f", d, x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }
yes_if() { awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
    if (a == "nan" || a == "" || b == "nan") { print "n/a"; exit }
    ok = (op == ">=") ? a >= b : (op == "<=") ? a <= b : (op == "<") ? a < b : (op == ">") ? a > b : a == b
    print ok ? "yes" : "NO" }'; }

row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$ROWS"; }
section() { printf '%s\n' "$1" >>"$ROWS"; }

cpu() { py cpu "$@"; }
rss_kib() { py mem "$1" | awk '{print $1}'; }
hwm_kib() { py mem "$1" | awk '{print $2}'; }

# Every process of an nginx master: itself and its workers.
nginx_pids() { echo "$1 $(ps -o pid= --ppid "$1" | tr '\n' ' ')"; }

# ---------------------------------------------------------------------------------------
log "work directory $WORK"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
need=()
if ((WEBHOOKS_ONLY)); then
    command -v wrk >/dev/null || need+=(wrk)
    command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
    command -v openssl >/dev/null || need+=(openssl)
elif ((!GRAPH_ONLY)); then
    command -v openssl >/dev/null || need+=(openssl)
    command -v wrk >/dev/null || need+=(wrk)
    command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
    command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
fi
command -v python3 >/dev/null || need+=(python3)
command -v curl >/dev/null || need+=(curl)
if ((PERF)) && ! command -v perf >/dev/null; then need+=(linux-perf); fi
if ((${#need[@]})); then
    SUDO=
    [[ $EUID -eq 0 ]] || SUDO=sudo
    log "installing ${need[*]}"
    $SUDO apt-get update -qq >"$WORK/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >>"$WORK/apt.log" 2>&1 ||
        die "apt-get install ${need[*]} (see $WORK/apt.log)"
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
BLACKBOX="$(command -v prometheus-blackbox-exporter || echo prometheus-blackbox-exporter)"

if [[ -n $GIVEN_BIN ]]; then
    BIN="$(realpath "$GIVEN_BIN")"
    [[ -x $BIN ]] || die "--bin $GIVEN_BIN is not an executable"
    log "using $BIN (no release build)"
else
    log "building the release binary"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release"
    BIN="$ROOT/target/release/whatsapp-exporter"
fi
RUN_BIN="$BIN"
if [[ -n $EXPORTER_BIN ]]; then
    RUN_BIN="$(realpath "$EXPORTER_BIN")"
    [[ -x $RUN_BIN ]] || die "--exporter-bin $EXPORTER_BIN is not an executable"
    log "exporter runs use $RUN_BIN; the simulator is $BIN"
fi
if ((PERF)); then
    log "building a release binary with symbols and frame pointers for perf"
    (cd "$ROOT" && CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
        RUSTFLAGS="-C force-frame-pointers=yes" cargo build --release --quiet --target-dir "$ROOT/target/bench-perf") ||
        die "profiling build"
    RUN_BIN="$ROOT/target/bench-perf/release/whatsapp-exporter"
fi
# perf record -p PID for SECONDS into NAME's file, in the background (with --perf only).
PERF_PIDS=()
perf_record() {
    ((PERF)) || return 0
    perf record -F 499 -g -p "$1" -o "$WORK/perf-$3.data" -- sleep "$2" >"$WORK/perf-$3.log" 2>&1 &
    PERF_PIDS+=("$!")
}
perf_wait() {
    local pid
    for pid in "${PERF_PIDS[@]}"; do wait "$pid"; done
    PERF_PIDS=()
}
# Sleeps until SECONDS after the time START (date +%s.%N), if that is still to come.
sleep_until() {
    local left
    left=$(calc "$1 + $2 - $(date +%s.%N)")
    awk -v l="$left" 'BEGIN { exit !(l > 0) }' && sleep "$left"
    return 0
}

read -r SIM_PORT EXP_PORT BB_PORT NGX_PORT GSIM_PORT WH_PORT WNGX_PORT <<<"$(py ports 7)"
SIM="http://127.0.0.1:$SIM_PORT"
EXP="http://127.0.0.1:$EXP_PORT"
API_KEY=sim-api-key-0123456789

# wrk -t2 -c4 -d10s; prints "requests_per_s requests bytes_per_s errors" and keeps the output.
wrk_run() {
    local out=$1
    shift
    wrk -t2 -c4 -d"${WRK_SECONDS:-10}s" "$@" >"$out" 2>&1
    py wrk "$out"
}

# ---------------------------------------------------------------------------------------
# 6. The Cloud API at fleet scale (issue 15); see the header. A function: --graph-only runs
# it alone.
GSIM="http://127.0.0.1:$GSIM_PORT"
GRAPH_WABAS=1000
GRAPH_PER_WABA=10
GRAPH_NUMBERS=$((GRAPH_WABAS * GRAPH_PER_WABA))
GRAPH_DEFAULT_INTERVAL=30
GRAPH_DISCOVERY=600
declare -A GF
declare -A GW=([business]=- [numbers]=-)

# One exporter run of NAME's config (graph-NAME.yaml) against the Graph simulator: settles
# once a request of one of KINDS is seen (plus SETTLE seconds), then measures
# GRAPH_CYCLES intervals. Sets GF[NAME] to bench.py graph-figures' line, or to "n/a REASON".
graph_run() {
    local name=$1 kinds=$2 settle=$3 pid waited c0 c1 w0
    if ! "$RUN_BIN" --config.check --config.file "$WORK/graph-$name.yaml" >"$WORK/graph-$name-check.log" 2>&1; then
        log "graph $name: the exporter refuses the config: $(grep -m1 -o 'FAILED.*' "$WORK/graph-$name-check.log" | cut -c1-200)"
        GF[$name]="n/a config refused (see graph-$name-check.log)"
        return
    fi
    curl -sf -o "$WORK/graph-$name-start.json" "$GSIM/fleet/stats?per_target=1" || die "fleet stats"
    "$RUN_BIN" --config.file "$WORK/graph-$name.yaml" --web.listen-address "127.0.0.1:$EXP_PORT" 2>"$WORK/graph-$name-exporter.log" &
    pid=$!
    PIDS+=("$pid")
    if ! wait_http "$EXP/-/ready" 30; then
        stop "$pid"
        GF[$name]="n/a the exporter did not start (see graph-$name-exporter.log)"
        return
    fi
    waited=$(py graph-wait "$GSIM/fleet/stats" "$WORK/graph-$name-start.json" "$kinds" "$((2 * GRAPH_INTERVAL + 30))")
    if [[ $waited == nan ]]; then
        stop "$pid"
        GF[$name]="n/a no Graph request of $kinds (see graph-$name-exporter.log)"
        return
    fi
    log "graph $name: first $kinds request after $waited s; settling $settle s more"
    sleep "$settle"
    curl -sf -o "$WORK/graph-$name-settled.json" "$GSIM/fleet/stats?per_target=1" || die "fleet stats"
    c0=$(cpu "$pid")
    w0=$(date +%s.%N)
    log "graph $name: measuring $GRAPH_CYCLES intervals of $GRAPH_INTERVAL s"
    perf_record "$pid" "$((GRAPH_CYCLES * GRAPH_INTERVAL))" "graph-$name"
    sleep_until "$w0" "$((GRAPH_CYCLES * GRAPH_INTERVAL))"
    c1=$(cpu "$pid")
    curl -sf -o "$WORK/graph-$name-end.json" "$GSIM/fleet/stats?per_target=1" || die "fleet stats"
    perf_wait
    curl -s -o "$WORK/graph-$name-metrics.txt" "$EXP/metrics"
    GW[$name]=$(grep -c 'level=warn' "$WORK/graph-$name-exporter.log")
    stop "$pid"
    GF[$name]=$(py graph-figures "$WORK/graph-$name-start.json" "$WORK/graph-$name-settled.json" \
        "$WORK/graph-$name-end.json" "$GRAPH_INTERVAL" "$GRAPH_DEFAULT_INTERVAL" \
        "$GRAPH_DISCOVERY" "$(calc "$c1 - $c0")" "$WORK/graph-$name-metrics.txt")
    log "graph $name: $(calc "$c1 - $c0") CPU s; figures: ${GF[$name]}"
}

graph_section() {
    log "simulator of one business of $GRAPH_WABAS WABAs of $GRAPH_PER_WABA numbers on $GSIM"
    "$BIN" simulate --fleet.businesses 1 --fleet.wabas-per-business "$GRAPH_WABAS" \
        --fleet.numbers-per-waba "$GRAPH_PER_WABA" --step 0s \
        --web.listen-address "127.0.0.1:$GSIM_PORT" >"$WORK/graph-simulator.out" 2>"$WORK/graph-simulator.log" &
    GSIM_PID=$!
    PIDS+=("$GSIM_PID")
    wait_http "$GSIM/fleet/stats" || die "the Graph simulator did not start (see $WORK/graph-simulator.log)"
    curl -sf -o "$WORK/graph-business.yaml" \
        "$GSIM/fleet/config?businesses=1&interval=${GRAPH_INTERVAL}s&discovery_interval=$((GRAPH_DISCOVERY / 60))m" ||
        die "fleet config of the business"
    py graph-numbers-config "$GSIM" "$GRAPH_NUMBERS" "$GRAPH_INTERVAL" 50 >"$WORK/graph-numbers.yaml"
    # The business: past its first listing, the first discovery's WABA reads (spread over an
    # interval at most) and one whole interval more.
    graph_run business graph_owned_wabas,graph_client_wabas "$((2 * GRAPH_INTERVAL))"
    graph_run numbers graph,graph_ids "$GRAPH_INTERVAL"
    stop "$GSIM_PID"

    local b_cycles b_cycle b_polls b_amort b_disc b_mean b_max b_metrics b_cpu b_kinds
    local n_cycles n_cycle n_polls n_amort n_disc n_mean n_max n_metrics n_cpu n_kinds
    if [[ ${GF[business]} == n/a* ]]; then
        b_cycles=nan b_cycle=nan b_polls=nan b_amort=nan b_disc=- b_mean=nan b_max=nan b_metrics=- b_cpu=nan b_kinds="${GF[business]}"
    else
        read -r b_cycles b_cycle b_polls b_amort b_disc b_mean b_max b_metrics b_cpu b_kinds <<<"${GF[business]}"
    fi
    if [[ ${GF[numbers]} == n/a* ]]; then
        n_cycles=nan n_cycle=nan n_polls=nan n_amort=nan n_disc=- n_mean=nan n_max=nan n_metrics=- n_cpu=nan n_kinds="${GF[numbers]}"
    else
        read -r n_cycles n_cycle n_polls n_amort n_disc n_mean n_max n_metrics n_cpu n_kinds <<<"${GF[numbers]}"
    fi
    section "6. Cloud API at fleet scale (issue 15): 1 business x $GRAPH_WABAS WABAs x $GRAPH_PER_WABA numbers, interval $GRAPH_INTERVAL s, windows of $(fmt "$b_cycles" 2) and $(fmt "$n_cycles" 2) intervals"
    row "Graph requests per poll cycle (business_id target)" "$(fmt "$b_cycle" 1)" "old client: 11,000 (issue)" "$(ratio "$b_cycle" 11000)" "<= 1050" "$(yes_if "$b_cycle" "<=" 1050)"
    row "  the same with the discovery's listings and debug_token ($b_disc) amortised over 10m" "$(fmt "$b_amort" 1)" "-" "-" "<= 1050" "$(yes_if "$b_amort" "<=" 1050)"
    row "  per cycle, by kind" "$b_kinds" "-" "-" "-" "-"
    # The busiest WABA of a short window has one poll more when its phase falls at both
    # ends: the goal reads the mean, the requests per WABA per hour.
    row "share of a WABA's 5,000 requests/hour at the 30 s default: mean (busiest in the window), %" "$(fmt "$b_mean" 2) ($(fmt "$b_max" 2))" "phone_number_ids only (this run): $(fmt "$n_mean" 2) ($(fmt "$n_max" 2))" "$(ratio "$b_mean" "$n_mean")" "<= 3" "$(yes_if "$b_mean" "<=" 3)"
    row "exporter CPU per polled number (us)" "$(fmt "$b_cpu" 2)" "phone_number_ids only (this run): $(fmt "$n_cpu" 2)" "$(ratio "$b_cpu" "$n_cpu")" "-" "-"
    row "  phone_number_ids only (50 a target): Graph requests per poll cycle" "$(fmt "$n_cycle" 1)" "-" "-" "-" "-"
    row "  phone_number_ids only: per cycle, by kind" "$n_kinds" "-" "-" "-" "-"
    row "  numbers on /metrics (business; phone_number_ids only); warnings logged" "$b_metrics; $n_metrics; ${GW[business]} / ${GW[numbers]}" "-" "-" "$GRAPH_NUMBERS" "$([[ $b_metrics == "$GRAPH_NUMBERS" ]] && echo yes || echo NO)"
}

# ---------------------------------------------------------------------------------------
# 7. The webhook receiver (issue 16); see the header. A function: --webhooks-only runs it
# alone.
WH_SECRET=bench-app-secret-0123456789
WH_IDS=1000000
WH_URL="http://127.0.0.1:$WH_PORT/webhooks/whatsapp"
WNGX_URL="http://127.0.0.1:$WNGX_PORT/webhooks/whatsapp"
# The dedup's two generations at the default dedup_window 100,000 (src/webhooks/dedup.rs).
WH_DEDUP_KIB=$((2359328 / 1024))
# An allowance per series of the webhook families (its labels and counter), generous.
WH_SERIES_KIB=1

# wrk's webhooks.lua with MODE (good, bad) and TOTAL (0: for WRK_SECONDS) against URL,
# from the id START on; output to FILE. Prints what wrk_run prints. (2: wrk_run's -t2.)
wh_wrk() {
    local file=$1 url=$2 mode=$3 total=$4 start=${5:-0}
    wrk_run "$file" --timeout 10s -s "$BENCH/webhooks.lua" "$url" -- \
        "$WORK/wh-template.json" "$WORK/wh-sigs.txt" "$mode" "$total" 2 "$start"
}

# Starts the exporter of wh.yaml; sets WH_PID, or returns 1 when it refuses the config or
# does not answer.
wh_start() {
    local name=$1 i code
    if ! "$RUN_BIN" --config.check --config.file "$WORK/wh.yaml" >"$WORK/wh-check.log" 2>&1; then
        log "webhooks: the exporter refuses the config: $(grep -m1 -o 'FAILED.*' "$WORK/wh-check.log" | cut -c1-200)"
        return 1
    fi
    "$RUN_BIN" --config.file "$WORK/wh.yaml" --web.listen-address "127.0.0.1:$EXP_PORT" 2>"$WORK/wh-$name-exporter.log" &
    WH_PID=$!
    PIDS+=("$WH_PID")
    wait_http "$EXP/-/ready" || return 1
    # The receiver's port: any answer (403 to a handshake without the token) will do.
    for ((i = 0; i < 200; i++)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$WH_URL?hub.mode=subscribe")
        [[ $code != 000 ]] && return 0
        sleep 0.05
    done
    return 1
}

# The first field of the exporter's webhook counts (bench.py webhook-counts) now.
wh_counts() { py webhook-counts "$EXP/metrics"; }

webhook_section() {
    log "webhooks: $WH_IDS signed status deliveries (bench.py webhook-requests)"
    WH_BYTES=$(py webhook-requests "$ROOT/tests/corpus/webhooks/messages-status-sent-marketing.json" \
        "$WH_SECRET" "$WH_IDS" "$WORK/wh-template.json" "$WORK/wh-sigs.txt") || die "webhook requests"
    local checked mismatches
    read -r checked mismatches <<<"$(py webhook-verify "$WORK/wh-template.json" "$WORK/wh-sigs.txt" "$WH_SECRET" 20)"
    [[ $mismatches == 0 && $checked -gt 0 ]] || die "webhook signatures: $mismatches of $checked differ from openssl's"
    log "webhooks: bodies up to $WH_BYTES bytes; $checked signatures checked with openssl"
    cat >"$WORK/wh.yaml" <<EOF
webhooks:
  listen_address: "127.0.0.1:$WH_PORT"
  app_secret: "$WH_SECRET"
EOF
    # nginx answers the POST with 200 and an empty body, as the receiver does, without
    # verifying anything: `return` makes it read the body off the socket and discard it
    # (ngx_http_discard_request_body, which keep-alive needs), neither buffering, hashing
    # nor parsing it. It is the price of HTTP and of reading 1.1 KB, the limit of this
    # machine with wrk on it too.
    mkdir -p "$WORK/wh-nginx-tmp"
    cat >"$WORK/wh-nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $WORK/wh-nginx.pid;
error_log $WORK/wh-nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_max_body_size 1m;
    client_body_temp_path $WORK/wh-nginx-tmp/body;
    proxy_temp_path $WORK/wh-nginx-tmp/proxy;
    fastcgi_temp_path $WORK/wh-nginx-tmp/fastcgi;
    uwsgi_temp_path $WORK/wh-nginx-tmp/uwsgi;
    scgi_temp_path $WORK/wh-nginx-tmp/scgi;
    server {
        listen 127.0.0.1:$WNGX_PORT;
        location = /webhooks/whatsapp { return 200; }
    }
}
EOF
    "$NGINX" -p "$WORK" -e "$WORK/wh-nginx-error.log" -c "$WORK/wh-nginx.conf" >"$WORK/wh-nginx.out" 2>&1 &
    local ngx_pid=$!
    PIDS+=("$ngx_pid")
    local i code
    for ((i = 0; i < 200; i++)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$WORK/wh-template.json" "$WNGX_URL")
        [[ $code == 200 ]] && break
        sleep 0.05
    done
    [[ $code == 200 ]] || die "nginx did not answer the webhook POST (see $WORK/wh-nginx-error.log)"

    declare -A WRPS WCPK WERR
    local subject run pids rps n errors c0 c1 a0 a1 others series dups dropped
    local done_sum=0 accepted_sum=0 over_min=0 over_max=0 ours_ok=1 next_id=0
    for subject in ours nginx; do
        WRPS[$subject]=""
        WCPK[$subject]=""
        WERR[$subject]=0
    done
    if ! wh_start load; then
        ours_ok=0
        [[ -n ${WH_PID:-} ]] && stop "$WH_PID"
        log "webhooks: no receiver (see $WORK/wh-check.log, $WORK/wh-load-exporter.log); nginx only"
    else
        WRK_SECONDS=2 wh_wrk "$WORK/wrk-wh-warm.txt" "$WH_URL" bad 0 >/dev/null
    fi
    WRK_SECONDS=2 wh_wrk "$WORK/wrk-wh-nginx-warm.txt" "$WNGX_URL" good 0 >/dev/null
    local others0=0
    ((ours_ok)) && read -r _ others0 _ <<<"$(wh_counts)"
    for run in 1 2 3; do
        for subject in ours nginx; do
            if [[ $subject == ours ]]; then
                ((ours_ok)) || continue
                pids=$WH_PID
                read -r a0 _ <<<"$(wh_counts)"
            else
                pids=$(nginx_pids "$ngx_pid")
            fi
            # shellcheck disable=SC2086
            c0=$(cpu $pids)
            if [[ $subject == ours ]]; then
                # Each run goes on from the ids of the last: none is seen twice.
                read -r rps n _ errors <<<"$(wh_wrk "$WORK/wrk-wh-$subject-$run.txt" "$WH_URL" good 0 "$next_id")"
            else
                read -r rps n _ errors <<<"$(wh_wrk "$WORK/wrk-wh-$subject-$run.txt" "$WNGX_URL" good 0)"
            fi
            # shellcheck disable=SC2086
            c1=$(cpu $pids)
            WRPS[$subject]+="$rps "
            WCPK[$subject]+="$(calc "($c1 - $c0) / $n * 1000") "
            WERR[$subject]=$((WERR[$subject] + errors))
            if [[ $subject == ours ]]; then
                # Requests in flight when wrk stopped are still answered and counted.
                sleep 0.5
                read -r a1 _ <<<"$(wh_counts)"
                done_sum=$((done_sum + n))
                next_id=$(grep -m1 -o 'next_index [0-9]*' "$WORK/wrk-wh-$subject-$run.txt" | cut -d' ' -f2)
                [[ -n $next_id ]] || die "webhooks.lua printed no next_index (see $WORK/wrk-wh-$subject-$run.txt)"
                accepted_sum=$((accepted_sum + a1 - a0))
                ((a1 - a0 - n > over_max)) && over_max=$((a1 - a0 - n))
                ((a1 - a0 - n < over_min)) && over_min=$((a1 - a0 - n))
                log "webhooks ours run $run: $rps deliveries/s, $n completed, $((a1 - a0)) accepted on /metrics, $errors errors, $(calc "$c1 - $c0") CPU s"
            else
                log "webhooks nginx run $run: $rps requests/s, $n completed, $errors errors, $(calc "$c1 - $c0") CPU s"
            fi
        done
    done
    local rps_ours rps_nginx cpk_ours cpk_nginx
    # shellcheck disable=SC2086
    rps_ours=$(py median ${WRPS[ours]:-nan})
    # shellcheck disable=SC2086
    rps_nginx=$(py median ${WRPS[nginx]})
    # shellcheck disable=SC2086
    cpk_ours=$(py median ${WCPK[ours]:-nan})
    # shellcheck disable=SC2086
    cpk_nginx=$(py median ${WCPK[nginx]})
    local load_counts="-"
    if ((ours_ok)); then
        load_counts=$(wh_counts)
        stop "$WH_PID"
    fi
    stop "$ngx_pid"

    # Memory: a fresh exporter, warmed up with wrong signatures (connections, threads and
    # body buffers exist, no status counted), then floods of distinct message ids.
    local idle=nan idle_hwm before=nan after1=nan after2=nan hwm=nan flood1=nan flood2=nan
    local mem_counts="nan nan nan nan nan" warm_counts="nan nan"
    if ((ours_ok)) && wh_start memory; then
        idle=$(rss_kib "$WH_PID")
        WRK_SECONDS=3 wh_wrk "$WORK/wrk-wh-mem-warm.txt" "$WH_URL" bad 0 >/dev/null
        warm_counts=$(wh_counts)
        before=$(rss_kib "$WH_PID")
        local flood wrk_pid a t0
        for flood in 1 2; do
            read -r a0 _ <<<"$(wh_counts)"
            log "webhooks: flood $flood of $WH_FLOOD distinct message ids"
            wrk -t2 -c4 -d600s --timeout 10s -s "$BENCH/webhooks.lua" "$WH_URL" -- \
                "$WORK/wh-template.json" "$WORK/wh-sigs.txt" good "$WH_FLOOD" 2 >"$WORK/wrk-wh-flood-$flood.txt" 2>&1 &
            wrk_pid=$!
            # webhooks.lua's threads stop at the flood's last id (the last request may not
            # go out); wrk itself waits out -d unless interrupted: done when the count
            # reached the flood or stood still for 2 s.
            t0=$(date +%s)
            a=$a0
            local last=-1 still=0
            while (($(date +%s) - t0 < 300)) && ((a - a0 < WH_FLOOD && still < 4)); do
                sleep 0.5
                read -r a _ <<<"$(wh_counts)"
                if ((a == last)); then still=$((still + 1)); else still=0; fi
                last=$a
            done
            kill -INT "$wrk_pid" 2>/dev/null
            wait "$wrk_pid"
            sleep 0.5
            read -r a _ <<<"$(wh_counts)"
            if [[ $flood == 1 ]]; then
                flood1=$((a - a0))
                after1=$(rss_kib "$WH_PID")
            else
                flood2=$((a - a0))
                after2=$(rss_kib "$WH_PID")
            fi
            log "webhooks: flood $flood: $((a - a0)) accepted in $(($(date +%s) - t0)) s; resident $(rss_kib "$WH_PID") KiB"
        done
        hwm=$(hwm_kib "$WH_PID")
        mem_counts=$(wh_counts)
        stop "$WH_PID"
    fi

    local m_acc m_others m_series m_dups m_dropped
    read -r m_acc m_others m_series m_dups m_dropped <<<"$mem_counts"
    local l_acc l_others l_series l_dups l_dropped
    read -r l_acc l_others l_series l_dups l_dropped <<<"${load_counts/#-/nan nan nan nan nan}"
    # Not the warm-up's 403s.
    [[ $l_others != nan ]] && l_others=$((l_others - others0))
    local bound=$((WH_DEDUP_KIB + WH_SERIES_KIB * ${m_series/nan/0}))
    local growth=nan
    [[ $after1 != nan && $before != nan ]] && growth=$((after1 - before))
    local third
    third=$(calc "${rps_nginx:-nan} / 3")

    section "7. Webhook receiver (issue 16): signed status deliveries of $WH_BYTES bytes, each its own message id (wrk -t2 -c4 -d10s, webhooks.lua, median of 3)"
    row "deliveries/s (POST, HMAC-SHA256 verified, counted)" "$(fmt "$rps_ours")" "-" "-" ">= 30000" "$(yes_if "$rps_ours" ">=" 30000)"
    row "deliveries/s beside nginx" "$(fmt "$rps_ours")" "nginx return 200, same requests (this run): $(fmt "$rps_nginx")" "$(ratio "$rps_ours" "$rps_nginx")" ">= 0.33 x nginx ($(fmt "$third"))" "$(yes_if "$rps_ours" ">=" "$third")"
    row "  accepted on /metrics / completed by wrk (3 runs); most over" "$accepted_sum / $done_sum; $over_min..$over_max" "-" "-" "0..4 over a run (in flight)" "$( ((ours_ok)) && ((over_min >= 0 && over_max <= 4)) && echo yes || echo NO)"
    row "  errors (non-2xx, socket) over 3 runs; other results on /metrics" "${WERR[ours]}; $(fmt "$l_others")" "nginx ${WERR[nginx]}; -" "-" "0; 0" "$( ((ours_ok)) && [[ ${WERR[ours]} == 0 && $l_others == 0 ]] && echo yes || echo NO)"
    row "CPU s per 1000 deliveries at that load" "$(fmt "$cpk_ours" 3)" "nginx (this run): $(fmt "$cpk_nginx" 3)" "$(ratio "$cpk_ours" "$cpk_nginx")" "-" "-"
    row "resident idle; after a 403 warm-up (MiB)" "$(mib "${idle/nan/0}"); $(mib "${before/nan/0}")" "warm-up counted (accepted, other): $(echo "$warm_counts" | cut -d' ' -f1-2)" "-" "-" "-"
    row "resident growth over $(fmt "$flood1") distinct ids (MiB)" "$(mib "${before/nan/0}") -> $(mib "${after1/nan/0}"): +$(mib "${growth/nan/0}")" "dedup 2.25 + $m_series series x $WH_SERIES_KIB KiB: $(mib "$bound")" "$(ratio "$growth" "$bound")" "<= 1" "$(yes_if "$growth" "<=" "$bound")"
    row "resident after $(fmt "$flood2") more distinct ids; peak (MiB)" "$(mib "${after2/nan/0}"); $(mib "${hwm/nan/0}")" "after the first: $(mib "${after1/nan/0}")" "$(ratio "$after2" "$after1")" "<= 1.05 (flat)" "$(yes_if "$(ratio "$after2" "$after1")" "<=" 1.05)"
    row "  duplicates counted; series dropped (load; floods); webhook series (load; floods)" "$(fmt "$l_dups"), $(fmt "$m_dups"); $(fmt "$l_dropped"), $(fmt "$m_dropped"); $(fmt "$l_series"), $(fmt "$m_series")" "-" "-" "0; 0" "$([[ $l_dups == 0 && $m_dups == 0 && $l_dropped == 0 && $m_dropped == 0 ]] && echo yes || echo NO)"
}

# Prints the table (and, with --perf, the profiles).
report() {
    echo
    echo "whatsapp-exporter performance, $(date -u +%Y-%m-%dT%H:%M:%SZ), $("$BIN" --version 2>/dev/null)"
    if ((WEBHOOKS_ONLY)); then
        echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB; $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2); $("$NGINX" -v 2>&1) (--webhooks-only)"
    elif ((GRAPH_ONLY)); then
        echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB (--graph-only)"
    else
        echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB; $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2); $("$BLACKBOX" --version 2>&1 | head -1 | cut -d' ' -f1-3); $("$NGINX" -v 2>&1)"
    fi
    ((PERF)) && echo "(--perf: the exporter was a build with symbols and frame pointers, profiled at 499 Hz during the first run of each load)"
    echo "load average before the run: $LOAD_BEFORE; at its end: $(cut -d' ' -f1-3 /proc/loadavg) (other processes on the machine skew the figures)"
    echo "ratio = ours / reference; CPU from /proc/<pid>/stat; wrk -t2 -c4 -d10s, medians of 3 runs"
    echo
    py table "$ROWS"

    if ((PERF)); then
        for name in probe polling metrics graph-business graph-numbers; do
            [[ -s "$WORK/perf-$name.data" ]] || continue
            echo
            echo "== perf: $name (self time, top symbols)"
            perf report -i "$WORK/perf-$name.data" --no-children --sort symbol -g none --percent-limit 1 --stdio 2>/dev/null |
                grep -v '^[#]' | grep -v '^$' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//' | cut -c1-160 | head -30
            echo "== perf: $name (including callees, top symbols; the runtime's own frames left out)"
            perf report -i "$WORK/perf-$name.data" --children --sort symbol -g none --percent-limit 3 --stdio 2>/dev/null |
                grep -v '^[#]' | grep -v '^$' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//' |
                grep -v -E 'thread_start|call_once|start_thread|rust_begin_short|worker::run|raw::poll|run_task|Harness|Pin<P> as core::future|blocking::pool|block_on|entry_SYSCALL|do_syscall|lang_start|libc_start|^ *[0-9.]+% +[0-9.]+% +\[\.\] (main|0x0*1|0+)$' |
                cut -c1-160 | head -40
        done
    fi
}

if ((GRAPH_ONLY)); then
    graph_section
    report
    exit 0
fi
if ((WEBHOOKS_ONLY)); then
    webhook_section
    report
    exit 0
fi

log "simulator with a fleet of 10000 on $SIM"
"$BIN" simulate --targets 10000 --web.listen-address "127.0.0.1:$SIM_PORT" >"$WORK/simulator.out" 2>"$WORK/simulator.log" &
SIM_PID=$!
PIDS+=("$SIM_PID")
wait_http "$SIM/fleet/stats" || die "the simulator did not start (see $WORK/simulator.log)"

# The demo's configuration (as `whatsapp-exporter demo` writes it, src/cli.rs demo_config),
# against this simulator.
cat >"$WORK/demo.yaml" <<EOF
global:
  interval: 5s
  timeout: 5s
targets:
- name: onprem-single
  type: onprem
  base_url: $SIM/single
  api_key: $API_KEY
  username: admin
  password: sim-password-1
  labels: {site: demo, cluster: single}
- name: onprem-ha
  type: onprem
  base_url: $SIM/ha
  username: admin
  password: sim-password-1
  labels: {site: demo, cluster: ha}
- name: onprem-multiconnect
  type: onprem
  base_url: $SIM/multiconnect
  api_key: $API_KEY
  username: admin
  password: sim-password-1
  labels: {site: demo, cluster: multiconnect}
- name: cloud-acme
  type: cloud_api
  base_url: $SIM/graph
  access_token: sim-graph-token-0123456789
  waba_id: "102290129340398"
  phone_number_ids: ["106540352242922"]
  discover: true
  discovery_interval: 30s
  labels: {site: demo}
- name: dialog360-sales
  type: dialog360
  base_url: $SIM/360dialog
  api_key: sim-360-key-0002
  labels: {site: demo}
- name: kapso-support
  type: kapso
  base_url: $SIM/kapso
  api_key: sim-kapso-key-0123456789
  config_id: kapso-config-1
  labels: {site: demo}
EOF
curl -sf -o "$WORK/fleet.yaml" "$SIM/fleet/config?onprem=1000&cloud=9000&interval=30s" || die "fleet config"
"$BIN" --config.check --config.file "$WORK/fleet.yaml" >/dev/null || die "the fleet config does not load"
# Four targets: the goal probes one; the others show what several targets in turn give.
for i in 0 1 2 3; do
    printf -- '- {name: onprem-%s, type: onprem, base_url: "%s/fleet/onprem/%s", api_key: "%s"}\n' "$i" "$SIM" "$i" "$API_KEY"
done | sed '1i targets:' >"$WORK/probe.yaml"
cat >"$WORK/four.lua" <<'EOF'
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/probe?target=onprem-" .. (n % 4))
end
EOF
cat >"$WORK/blackbox.yml" <<EOF
modules:
  wa_health:
    prober: http
    timeout: 5s
    http:
      method: GET
      preferred_ip_protocol: ip4
      valid_status_codes: [200]
      headers:
        Authorization: "Apikey $API_KEY"
      fail_if_body_not_matches_regexp:
        - "connected"
EOF
mkdir -p "$WORK/www" "$WORK/nginx-tmp"
chmod 755 "$WORK/www"
curl -sf -H "Authorization: Apikey $API_KEY" -o "$WORK/www/health.json" "$SIM/fleet/onprem/0/v1/health" || die "health body"
head -c 10485760 /dev/urandom >"$WORK/www/static10m.bin"
: >"$WORK/www/metrics.txt"
chmod 644 "$WORK/www/"*
cat >"$WORK/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/nginx-tmp/body;
    proxy_temp_path $WORK/nginx-tmp/proxy;
    fastcgi_temp_path $WORK/nginx-tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx-tmp/uwsgi;
    scgi_temp_path $WORK/nginx-tmp/scgi;
    server {
        listen 127.0.0.1:$NGX_PORT;
        location = /fleet/onprem/0/v1/health { default_type application/json; alias $WORK/www/health.json; }
        location = /metrics { default_type "text/plain; version=0.0.4; charset=utf-8"; alias $WORK/www/metrics.txt; }
        location = /static10m { default_type application/octet-stream; alias $WORK/www/static10m.bin; }
    }
}
EOF
"$NGINX" -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" >"$WORK/nginx.out" 2>&1 &
NGX_PID=$!
PIDS+=("$NGX_PID")
NGX="http://127.0.0.1:$NGX_PORT"
wait_http "$NGX/fleet/onprem/0/v1/health" || die "nginx did not start (see $WORK/nginx-error.log)"

# ---------------------------------------------------------------------------------------
section "1. Binary, start-up and memory with the demo's configuration"
SIZE=$(stat -c %s "$BIN")
row "release binary size (MiB)" "$(fmt "$(calc "$SIZE/1048576")" 1)" "-" "-" "< 15" "$(yes_if "$SIZE" "<" 15728640)"

first_answer() {
    local config=$1 ms pid
    read -r ms pid <<<"$(FIRST_ANSWER_LOG="$WORK/first-answer.log" py first-answer "$EXP/metrics" 20 -- \
        "$RUN_BIN" --config.file "$config" --web.listen-address "127.0.0.1:$EXP_PORT")"
    stop "$pid"
    echo "$ms"
}
for name in demo fleet; do
    runs=()
    for i in 1 2 3; do runs+=("$(first_answer "$WORK/$name.yaml")"); done
    START_MS=$(py median "${runs[@]}")
    log "start to first answer ($name): ${runs[*]} ms"
    label="demo's configuration"
    goal=100
    [[ $name == fleet ]] && label="10,000 targets" && goal=50
    row "start to first 200 on /metrics, $label (ms)" "$(fmt "$START_MS" 1)" "-" "-" "<= $goal" "$(yes_if "$START_MS" "<=" "$goal")"
done

log "exporter with the demo's configuration: resident memory after 15 s of polling"
"$RUN_BIN" --config.file "$WORK/demo.yaml" --web.listen-address "127.0.0.1:$EXP_PORT" 2>"$WORK/demo-exporter.log" &
DEMO_PID=$!
PIDS+=("$DEMO_PID")
wait_http "$EXP/metrics" || die "the exporter did not start (see $WORK/demo-exporter.log)"
sleep 15
for i in 1 2 3; do curl -s -o /dev/null "$EXP/metrics"; done
grep -q '^whatsapp_up{target="onprem-ha"} 1' <(curl -s "$EXP/metrics") || log "warning: onprem-ha is not up in the demo run"
DEMO_RSS=$(rss_kib "$DEMO_PID")
DEMO_HWM=$(hwm_kib "$DEMO_PID")
stop "$DEMO_PID"

# ---------------------------------------------------------------------------------------
log "/probe: whatsapp-exporter, blackbox_exporter and nginx against the same upstream"
"$RUN_BIN" --config.file "$WORK/probe.yaml" --web.listen-address "127.0.0.1:$EXP_PORT" --poll.background=false 2>"$WORK/probe-exporter.log" &
PROBE_PID=$!
PIDS+=("$PROBE_PID")
"$BLACKBOX" --config.file="$WORK/blackbox.yml" --web.listen-address="127.0.0.1:$BB_PORT" >"$WORK/blackbox.log" 2>&1 &
BB_PID=$!
PIDS+=("$BB_PID")
wait_http "$EXP/-/ready" || die "the exporter did not start (see $WORK/probe-exporter.log)"
wait_http "http://127.0.0.1:$BB_PORT/-/healthy" || die "blackbox_exporter did not start (see $WORK/blackbox.log)"
OURS_PROBE="$EXP/probe?target=onprem-0"
BB_PROBE="http://127.0.0.1:$BB_PORT/probe?module=wa_health&target=$SIM/fleet/onprem/0/v1/health"
NGX_HEALTH="$NGX/fleet/onprem/0/v1/health"
curl -s "$OURS_PROBE" | grep -q '^whatsapp_up{target="onprem-0"} 1' || die "our /probe is not up: $(curl -s "$OURS_PROBE" | head -5)"
curl -s "$BB_PROBE" | grep -q '^probe_success 1' || die "blackbox_exporter's probe fails: $(curl -s "$BB_PROBE" | grep probe_success)"
# The upstream's own capacity: the fleet simulator must not be what limits /probe.
s0=$(cpu "$SIM_PID")
read -r SIM_RPS SIM_N _ _ <<<"$(WRK_SECONDS=5 wrk_run "$WORK/wrk-simulator.txt" -H "Authorization: Apikey $API_KEY" "$SIM/fleet/onprem/0/v1/health")"
SIM_CPK=$(calc "($(cpu "$SIM_PID") - $s0) / $SIM_N * 1000")
log "simulator /v1/health: $SIM_RPS req/s, $SIM_CPK CPU s per 1000"
wrk -t2 -c4 -d2s "$OURS_PROBE" >/dev/null 2>&1
wrk -t2 -c4 -d2s "$BB_PROBE" >/dev/null 2>&1
declare -A RPS CPK ERR
for subject in ours four bb nginx; do
    RPS[$subject]=""
    CPK[$subject]=""
    ERR[$subject]=0
done
for run in 1 2 3; do
    for subject in ours four bb nginx; do
        script=()
        case $subject in
        ours)
            url=$OURS_PROBE
            pids=$PROBE_PID
            ;;
        four)
            url=$EXP
            pids=$PROBE_PID
            script=(-s "$WORK/four.lua")
            ;;
        bb)
            url=$BB_PROBE
            pids=$BB_PID
            ;;
        nginx)
            url=$NGX_HEALTH
            pids=$(nginx_pids "$NGX_PID")
            ;;
        esac
        [[ $subject == ours && $run == 1 ]] && perf_record "$PROBE_PID" 8 probe
        # shellcheck disable=SC2086
        c0=$(cpu $pids)
        read -r rps n _ errors <<<"$(wrk_run "$WORK/wrk-probe-$subject-$run.txt" --timeout 10s "${script[@]}" "$url")"
        # shellcheck disable=SC2086
        c1=$(cpu $pids)
        per_k=$(calc "($c1 - $c0) / $n * 1000")
        log "/probe $subject run $run: $rps req/s, $n requests, $errors errors, $(calc "$c1 - $c0") CPU s, $per_k CPU s per 1000"
        RPS[$subject]+="$rps "
        CPK[$subject]+="$per_k "
        ERR[$subject]=$((ERR[$subject] + errors))
    done
done
perf_wait
declare -A RPS_M CPK_M
for subject in ours four bb nginx; do
    # shellcheck disable=SC2086
    RPS_M[$subject]=$(py median ${RPS[$subject]})
    # shellcheck disable=SC2086
    CPK_M[$subject]=$(py median ${CPK[$subject]})
done
PROBE_RSS=$(rss_kib "$PROBE_PID")
BB_RSS=$(rss_kib "$BB_PID")

log "/probe at 9 per second for 30 s, three runs (both exporters at once)"
LOW_OURS=()
LOW_BB=()
for run in 1 2 3; do
    o0=$(cpu "$PROBE_PID")
    b0=$(cpu "$BB_PID")
    py rate 30 9 "$OURS_PROBE" >"$WORK/rate-ours-$run.txt" &
    r1=$!
    py rate 30 9 "$BB_PROBE" >"$WORK/rate-bb-$run.txt" &
    r2=$!
    wait "$r1" "$r2"
    o1=$(cpu "$PROBE_PID")
    b1=$(cpu "$BB_PID")
    read -r ok_o failed_o <"$WORK/rate-ours-$run.txt"
    read -r ok_b failed_b <"$WORK/rate-bb-$run.txt"
    LOW_OURS+=("$(calc "($o1 - $o0) / $ok_o * 1000")")
    LOW_BB+=("$(calc "($b1 - $b0) / $ok_b * 1000")")
    log "9/s run $run: ours $ok_o ok ($failed_o failed) $(calc "$o1 - $o0") CPU s; blackbox $ok_b ok ($failed_b failed) $(calc "$b1 - $b0") CPU s"
done
LOW_OURS_M=$(py median "${LOW_OURS[@]}")
LOW_BB_M=$(py median "${LOW_BB[@]}")
stop "$PROBE_PID"
stop "$BB_PID"

section "2. /probe of a simulated On-Premises /v1/health (wrk -t2 -c4 -d10s, median of 3)"
row "/probe requests/s" "$(fmt "${RPS_M[ours]}")" "blackbox_exporter 0.23 (this run): $(fmt "${RPS_M[bb]}")" "$(ratio "${RPS_M[ours]}" "${RPS_M[bb]}")" ">= 15000" "$(yes_if "${RPS_M[ours]}" ">=" 15000)"
row "/probe requests/s" "$(fmt "${RPS_M[ours]}")" "json_exporter 0.5: 5047 (issue; not run)" "$(ratio "${RPS_M[ours]}" 5047)" "-" "-"
row "/probe requests/s" "$(fmt "${RPS_M[ours]}")" "nginx, same JSON, the limit (this run): $(fmt "${RPS_M[nginx]}")" "$(ratio "${RPS_M[ours]}" "${RPS_M[nginx]}")" ">= 0.3 x nginx" "$(yes_if "$(ratio "${RPS_M[ours]}" "${RPS_M[nginx]}")" ">=" 0.3)"
row "  the upstream: simulator's /v1/health alone (one 5 s run)" "$(fmt "$SIM_RPS") requests/s; $(fmt "$SIM_CPK" 3) CPU s per 1000" "nginx, same JSON: $(fmt "${RPS_M[nginx]}")" "$(ratio "$SIM_RPS" "${RPS_M[nginx]}")" "not the bottleneck" "$(yes_if "$SIM_RPS" ">" "$(calc "2 * ${RPS_M[ours]}")")"
row "  errors (non-2xx, socket) over 3 runs" "${ERR[ours]}" "blackbox ${ERR[bb]}, nginx ${ERR[nginx]}" "-" "0" "$(yes_if "${ERR[ours]}" "==" 0)"
row "  the same, 4 targets in turn (not a goal)" "$(fmt "${RPS_M[four]}"); $(fmt "${CPK_M[four]}" 3) CPU s per 1000; ${ERR[four]} errors" "one target (above): $(fmt "${RPS_M[ours]}")" "$(ratio "${RPS_M[four]}" "${RPS_M[ours]}")" "-" "-"
row "CPU s per 1000 probes at that load" "$(fmt "${CPK_M[ours]}" 3)" "blackbox_exporter (this run): $(fmt "${CPK_M[bb]}" 3)" "$(ratio "${CPK_M[ours]}" "${CPK_M[bb]}")" "<= 0.08" "$(yes_if "${CPK_M[ours]}" "<=" 0.08)"
row "CPU s per 1000 probes at that load" "$(fmt "${CPK_M[ours]}" 3)" "json_exporter 0.5: 0.245 (issue; not run)" "$(ratio "${CPK_M[ours]}" 0.245)" "-" "-"
row "CPU s per 1000 probes at that load" "$(fmt "${CPK_M[ours]}" 3)" "nginx (this run): $(fmt "${CPK_M[nginx]}" 3)" "$(ratio "${CPK_M[ours]}" "${CPK_M[nginx]}")" "-" "-"
row "CPU s per 1000 probes at 9 probes/s (30 s)" "$(fmt "$LOW_OURS_M" 3)" "blackbox_exporter (this run): $(fmt "$LOW_BB_M" 3)" "$(ratio "$LOW_OURS_M" "$LOW_BB_M")" "<= 0.3" "$(yes_if "$LOW_OURS_M" "<=" 0.3)"
row "CPU s per 1000 probes at 9 probes/s (30 s)" "$(fmt "$LOW_OURS_M" 3)" "json_exporter 0.5: 1.77 (issue; not run)" "$(ratio "$LOW_OURS_M" 1.77)" "-" "-"
row "resident memory after the /probe runs (MiB)" "$(mib "$PROBE_RSS")" "blackbox_exporter (this run): $(mib "$BB_RSS")" "$(ratio "$PROBE_RSS" "$BB_RSS")" "-" "-"
row "resident memory, demo's configuration (MiB)" "$(mib "$DEMO_RSS") (peak $(mib "$DEMO_HWM"))" "blackbox_exporter (this run): $(mib "$BB_RSS"); json_exporter 17.8 MB (issue; not run)" "$(ratio "$DEMO_RSS" "$BB_RSS")" "<= 16" "$(yes_if "$DEMO_RSS" "<=" 16384)"

# ---------------------------------------------------------------------------------------
log "10,000 targets every 30 s: warm-up of 35 s"
"$RUN_BIN" --config.file "$WORK/fleet.yaml" --web.listen-address "127.0.0.1:$EXP_PORT" 2>"$WORK/fleet-exporter.log" &
FLEET_PID=$!
PIDS+=("$FLEET_PID")
T0=$(date +%s.%N)
wait_http "$EXP/-/ready" || die "the exporter did not start (see $WORK/fleet-exporter.log)"
sleep_until "$T0" 35
WINDOW=90
curl -sf -o "$WORK/stats-0.json" "$SIM/fleet/stats?per_target=1" || die "fleet stats"
C0=$(cpu "$FLEET_PID")
W0=$(date +%s.%N)
S0=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["second"])' "$WORK/stats-0.json")
log "measuring background polling for $WINDOW s (3 intervals)"
perf_record "$FLEET_PID" 60 polling
sleep_until "$W0" "$WINDOW"
C1=$(cpu "$FLEET_PID")
W1=$(date +%s.%N)
curl -sf -o "$WORK/stats-1.json" "$SIM/fleet/stats?per_target=1&from=$S0" || die "fleet stats"
perf_wait
BG_RATE=$(calc "($C1 - $C0) / ($W1 - $W0)")
read -r SP_WINDOW SP_K SP_MEAN SP_MAX SP_PEAK SP_EXACT SP_PLUS SP_EXPECTED SP_OTHER SP_MIN SP_MAXP SP_TOTAL <<<"$(py spread "$WORK/stats-0.json" "$WORK/stats-1.json" 30 1000 9000)"
log "polling: $(calc "$C1 - $C0") CPU s in $(calc "$W1 - $W0") s; simulator: $SP_TOTAL requests in $SP_WINDOW s, mean $SP_MEAN/s, max $SP_MAX/s; polls per target $SP_MIN..$SP_MAXP ($SP_K intervals)"
log "$(grep -c 'level=warn' "$WORK/fleet-exporter.log") warnings in the exporter's log so far"
FLEET_RSS_A=$(rss_kib "$FLEET_PID")

log "/metrics with 10,000 targets"
curl -sf -o "$WORK/www/metrics.txt" "$EXP/metrics" || die "/metrics"
BODY=$(stat -c %s "$WORK/www/metrics.txt")
read -r S_LINES S_SERIES S_DUP S_UP <<<"$(py series "$WORK/www/metrics.txt")"
PROMTOOL="not installed: skipped"
if command -v promtool >/dev/null; then
    promtool check metrics <"$WORK/www/metrics.txt" >"$WORK/promtool.txt" 2>&1
    PROMTOOL_PROBLEMS=$(grep -c . "$WORK/promtool.txt")
    PROMTOOL="$PROMTOOL_PROBLEMS"
fi
wrk -t2 -c4 -d3s --timeout 30s "$EXP/metrics" >/dev/null 2>&1
declare -A M_RPS M_BPS M_CPS M_ERR
for subject in ours gzip nginx static; do
    M_RPS[$subject]=""
    M_BPS[$subject]=""
    M_CPS[$subject]=""
    M_ERR[$subject]=0
done
for run in 1 2 3; do
    for subject in ours gzip nginx static; do
        headers=()
        case $subject in
        ours)
            url=$EXP/metrics
            pids=$FLEET_PID
            ;;
        gzip)
            url=$EXP/metrics
            pids=$FLEET_PID
            headers=(-H "Accept-Encoding: gzip")
            ;;
        nginx)
            url=$NGX/metrics
            pids=$(nginx_pids "$NGX_PID")
            ;;
        static)
            url=$NGX/static10m
            pids=$(nginx_pids "$NGX_PID")
            ;;
        esac
        [[ $subject == ours && $run == 1 ]] && perf_record "$FLEET_PID" 8 metrics
        t0=$(date +%s.%N)
        # shellcheck disable=SC2086
        c0=$(cpu $pids)
        seconds=10
        [[ $subject == static ]] && seconds=5
        read -r rps n bps errors <<<"$(WRK_SECONDS=$seconds wrk_run "$WORK/wrk-metrics-$subject-$run.txt" --timeout 30s "${headers[@]}" "$url")"
        # shellcheck disable=SC2086
        c1=$(cpu $pids)
        t1=$(date +%s.%N)
        bg=0
        [[ $subject == ours || $subject == gzip ]] && bg=$(calc "$BG_RATE * ($t1 - $t0)")
        per=$(calc "($c1 - $c0 - $bg) / $n * 1000")
        log "/metrics $subject run $run: $rps req/s, $(calc "$bps / 1048576") MiB/s, $errors errors, $per CPU ms per scrape"
        M_RPS[$subject]+="$rps "
        M_BPS[$subject]+="$bps "
        M_CPS[$subject]+="$per "
        M_ERR[$subject]=$((M_ERR[$subject] + errors))
    done
done
perf_wait
declare -A M_RPS_M M_MIB_M M_CPS_M
for subject in ours gzip nginx static; do
    # shellcheck disable=SC2086
    M_RPS_M[$subject]=$(py median ${M_RPS[$subject]})
    # shellcheck disable=SC2086
    M_MIB_M[$subject]=$(calc "$(py median ${M_BPS[$subject]}) / 1048576")
    # shellcheck disable=SC2086
    M_CPS_M[$subject]=$(py median ${M_CPS[$subject]})
done
log "/metrics at one scrape per second, 3 x 10 s"
SLOW=()
for run in 1 2 3; do
    t0=$(date +%s.%N)
    c0=$(cpu "$FLEET_PID")
    py rate 10 1 "$EXP/metrics" >"$WORK/rate-metrics-$run.txt"
    c1=$(cpu "$FLEET_PID")
    t1=$(date +%s.%N)
    read -r ok failed <"$WORK/rate-metrics-$run.txt"
    SLOW+=("$(calc "($c1 - $c0 - $BG_RATE * ($t1 - $t0)) / $ok * 1000")")
done
SLOW_M=$(py median "${SLOW[@]}")
GZ_SIZE=$(curl -s -H 'Accept-Encoding: gzip' "$EXP/metrics" | wc -c)

# ---------------------------------------------------------------------------------------
FLEET_RSS_B=$(rss_kib "$FLEET_PID")
log "soak: $SOAK s of polling, a scrape every 15 s"
SOAK_START=$(date +%s)
SOAK_MIN=$FLEET_RSS_B
SOAK_MAX=$FLEET_RSS_B
while (($(date +%s) - SOAK_START < SOAK)); do
    left=$((SOAK - ($(date +%s) - SOAK_START)))
    sleep $((left < 15 ? left : 15))
    curl -s -o /dev/null "$EXP/metrics"
    r=$(rss_kib "$FLEET_PID")
    ((r < SOAK_MIN)) && SOAK_MIN=$r
    ((r > SOAK_MAX)) && SOAK_MAX=$r
done
FLEET_RSS_C=$(rss_kib "$FLEET_PID")
FLEET_HWM=$(hwm_kib "$FLEET_PID")
WARNINGS=$(grep -c 'level=warn' "$WORK/fleet-exporter.log")
ERRORS=$(grep -c 'level=error' "$WORK/fleet-exporter.log")
stop "$FLEET_PID"

section "3. Background polling: 10,000 targets (1,000 onprem, 9,000 Cloud API numbers) every 30 s, over $(fmt "$SP_WINDOW") s"
row "CPU, % of one core" "$(fmt "$(calc "$BG_RATE * 100")" 2)" "blackbox_exporter at 333 probes/s: $(fmt "$(calc "${CPK_M[bb]} * 10000 / 30 / 1000 * 100")" 1) (its CPU per probe, this run)" "$(ratio "$BG_RATE" "$(calc "${CPK_M[bb]} * 10000 / 30 / 1000")")" "<= 3" "$(yes_if "$(calc "$BG_RATE * 100")" "<=" 3)"
row "upstream requests per second, max / mean" "$SP_MAX / $(fmt "$SP_MEAN" 1) = $SP_PEAK" "-" "-" "<= 1.5 (no burst)" "$(yes_if "$SP_PEAK" "<=" 1.5)"
SP_EXTRA=$(calc "$SP_WINDOW - $SP_K * 30")
SP_TOL=$(calc "3 * sqrt($SP_EXPECTED) + 5")
SP_OK=$(awk -v o="$SP_OTHER" -v p="$SP_PLUS" -v e="$SP_EXPECTED" -v t="$SP_TOL" 'BEGIN { d = p - e; if (d < 0) d = -d; print (o == 0 && d <= t) ? "yes" : "NO" }')
row "targets polled once per interval: $SP_K times in $SP_WINDOW s" "$SP_EXACT + $SP_PLUS (+1: phase in the last $(fmt "$SP_EXTRA" 2) s) + $SP_OTHER other" "+1 expected: $SP_EXPECTED" "-" "other 0, +1 as expected" "$SP_OK"
row "  warnings / errors in the exporter's log" "$WARNINGS / $ERRORS" "-" "-" "-" "-"

section "4. /metrics with 10,000 targets"
row "body (MiB; series lines; gzip MiB)" "$(mib "$((BODY / 1024))"); $S_LINES; $(mib "$((GZ_SIZE / 1024))")" "-" "-" "-" "-"
row "series appearing twice; targets with whatsapp_up" "$S_DUP; $S_UP" "-" "-" "0; 10000" "$( [[ $S_DUP == 0 && $S_UP == 10000 ]] && echo yes || echo NO)"
row "promtool check metrics: problems" "$PROMTOOL" "-" "-" "0" "$(yes_if "${PROMTOOL_PROBLEMS:-nan}" "==" 0)"
row "/metrics MiB/s" "$(fmt "${M_MIB_M[ours]}" 1)" "nginx, same bytes at /metrics (this run): $(fmt "${M_MIB_M[nginx]}" 1)" "$(ratio "${M_MIB_M[ours]}" "${M_MIB_M[nginx]}")" ">= 0.8 x nginx" "$(yes_if "$(ratio "${M_MIB_M[ours]}" "${M_MIB_M[nginx]}")" ">=" 0.8)"
row "/metrics requests/s" "$(fmt "${M_RPS_M[ours]}" 1)" "nginx (this run): $(fmt "${M_RPS_M[nginx]}" 1)" "$(ratio "${M_RPS_M[ours]}" "${M_RPS_M[nginx]}")" "-" "-"
row "nginx, 10 MiB static file, MiB/s (wrk -d5s)" "-" "this run: $(fmt "${M_MIB_M[static]}"); issue: 2880" "$(ratio "${M_MIB_M[static]}" 2880)" "-" "-"
row "CPU ms per scrape at full load" "$(fmt "${M_CPS_M[ours]}" 1)" "at 1 scrape/s (this run): $(fmt "$SLOW_M" 1)" "$(ratio "${M_CPS_M[ours]}" "$SLOW_M")" "<= 0.5 (cost not per request)" "$(yes_if "$(ratio "${M_CPS_M[ours]}" "$SLOW_M")" "<=" 0.5)"
row "gzip: requests/s; CPU ms per scrape" "$(fmt "${M_RPS_M[gzip]}" 1); $(fmt "${M_CPS_M[gzip]}" 1)" "plain scrape CPU ms (this run): $(fmt "${M_CPS_M[ours]}" 1)" "$(ratio "${M_CPS_M[gzip]}" "${M_CPS_M[ours]}")" "<= 1 (from the same cache)" "$(yes_if "$(ratio "${M_CPS_M[gzip]}" "${M_CPS_M[ours]}")" "<=" 1)"
row "  errors over the runs (ours, gzip, nginx)" "${M_ERR[ours]}, ${M_ERR[gzip]}" "${M_ERR[nginx]}" "-" "0" "$(yes_if "$((M_ERR[ours] + M_ERR[gzip]))" "==" 0)"

section "5. Memory at 10,000 targets"
LIMIT_KIB=$(((3 * BODY / 2 + 16 * 1048576) / 1024))
row "resident after the polling window (MiB)" "$(mib "$FLEET_RSS_A")" "1.5 x body + 16 MiB: $(mib "$LIMIT_KIB")" "$(ratio "$FLEET_RSS_A" "$LIMIT_KIB")" "<= 1" "$(yes_if "$FLEET_RSS_A" "<=" "$LIMIT_KIB")"
row "resident after the /metrics load; peak (MiB)" "$(mib "$FLEET_RSS_B"); $(mib "$FLEET_HWM")" "1.5 x body + 16 MiB: $(mib "$LIMIT_KIB")" "$(ratio "$FLEET_RSS_B" "$LIMIT_KIB")" "<= 1" "$(yes_if "$FLEET_RSS_B" "<=" "$LIMIT_KIB")"
row "soak of $SOAK s: resident at start -> end (min..max) (MiB)" "$(mib "$FLEET_RSS_B") -> $(mib "$FLEET_RSS_C") ($(mib "$SOAK_MIN")..$(mib "$SOAK_MAX"))" "start" "$(ratio "$FLEET_RSS_C" "$FLEET_RSS_B")" "<= 1.05 (flat; the goal: --soak 3600)" "$(yes_if "$(ratio "$FLEET_RSS_C" "$FLEET_RSS_B")" "<=" 1.05)"

graph_section
webhook_section

# ---------------------------------------------------------------------------------------
report
