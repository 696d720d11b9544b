#!/usr/bin/env bash
# Soak of whatsapp-exporter: a 10,000-target simulated fleet polled every second for half
# an hour, with churn and faults, to see whether memory, file descriptors or tasks grow. It
# prints figures; it asserts nothing about them (see the README's Benchmarks).
#
# Run it from anywhere, on Debian, as root (or with sudo for apt-get):
#
#   bash tests/bench/soak.sh                    # 30 minutes of soak, plus build and warm-up
#   bash tests/bench/soak.sh --duration 120     # a short trial
#   bash tests/bench/soak.sh --fault-ratio 0    # the same without faults
#   bash tests/bench/soak.sh --keep             # keep the work directory (logs, bodies, samples)
#
# It installs what is missing (python3, curl) with apt-get, builds `cargo build --release`,
# and starts on free ports of 127.0.0.1:
#
#  - the simulator with a fleet of 10,000 (`simulate --targets 10000 --fleet.fault-ratio
#    0.05`): each second a different 5 % of the targets fail, evenly with a 500, a 503 with
#    Retry-After, malformed JSON, an answer slower than the timeout, or a reset connection;
#  - the exporter, whose targets are the fleet's own (`/fleet/config?interval=1s`: 1,000
#    On-Premises instances and 9,000 Cloud API numbers, a third each of dialog360, kapso and
#    cloud_api) spread over 10 target files, every target polled every 1 s (timeout 1 s),
#    with max_concurrent_polls 512: the slow answers alone hold about 100 polls at a time.
#
# Then, for --duration seconds (default 1800):
#
#  - every 30 s it rewrites one target file (the next in turn), swapping 300 of its targets
#    for as many others of the same types that were kept aside: the exporter sees the change
#    within its target_files_refresh_interval (30 s) and reloads;
#  - every 90 s, the first at 45 s, it POSTs /-/reload;
#  - every 15 s it scrapes /metrics, which must answer 200 within 10 s, and counts the
#    series; each scrape's figures go to stderr.
#
# At the start (once every target has been polled: whatsapp_up for all 10,000, or after
# 60 s) and at the end it prints: the exporter's resident memory (VmRSS, and its peak
# VmHWM), open file descriptors (/proc/PID/fd), whatsapp_exporter_poller_tasks,
# whatsapp_exporter_runtime_alive_tasks and whatsapp_exporter_targets, the series of
# /metrics, whatsapp_poll_errors_total summed over targets by reason, reloads by result,
# the simulator's requests per second (mean of the last 10 whole seconds) and faults
# answered and open file descriptors, and the CPU of both processes (utime+stime from
# /proc/PID/stat).
#
# Its work directory (/tmp/wa-soak.*) holds four /metrics bodies of about 55 MB and the
# exporter's log, which grows by about 12 MB a minute with the faults' warnings.
#
# It stops what it started, by pid, when it ends. It exits non-zero when /metrics failed
# even once, a reload failed, or the exporter or the simulator died.
set -uo pipefail

DURATION=1800
FAULT_RATIO=0.05
KEEP=0
TARGETS=10000
ONPREM=1000
CLOUD=9000
FILES=10
MAX_POLLS=512
CHURN_EVERY=30
CHURN_COUNT=300
RELOAD_EVERY=90
RELOAD_FIRST=45
SCRAPE_EVERY=15
while (($#)); do
    case "$1" in
    --duration)
        DURATION="${2:?--duration needs seconds}"
        shift 2
        ;;
    --duration=*)
        DURATION="${1#--duration=}"
        shift
        ;;
    --fault-ratio)
        FAULT_RATIO="${2:?--fault-ratio needs a fraction}"
        shift 2
        ;;
    --fault-ratio=*)
        FAULT_RATIO="${1#--fault-ratio=}"
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
[[ "$DURATION" =~ ^[0-9]+$ ]] || {
    echo "--duration takes whole seconds" >&2
    exit 2
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH="$ROOT/tests/bench"
# shellcheck source=tests/bench/common.sh
. "$BENCH/common.sh"
WORK="$(mktemp -d /tmp/wa-soak.XXXXXX)"
PIDS=()
FAILURES=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        [[ -e /proc/$pid ]] && kill -TERM "$pid" 2>/dev/null
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

alive() {
    [[ -e /proc/$1 ]] && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# ---------------------------------------------------------------------------------------
log "work directory $WORK"
need=()
command -v python3 >/dev/null || need+=(python3)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
    SUDO=
    [[ $EUID -eq 0 ]] || SUDO=sudo
    log "installing ${need[*]}"
    $SUDO apt-get update -qq >"$WORK/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >>"$WORK/apt.log" 2>&1 ||
        die "apt-get install ${need[*]} (see $WORK/apt.log)"
fi

log "building the release binary"
(cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release"
BIN="$ROOT/target/release/whatsapp-exporter"

read -r SIM_PORT EXP_PORT <<<"$(py ports 2)"
SIM="http://127.0.0.1:$SIM_PORT"
EXP="http://127.0.0.1:$EXP_PORT"

log "simulator: a fleet of $TARGETS, fault ratio $FAULT_RATIO, on $SIM"
"$BIN" simulate --targets "$TARGETS" --fleet.fault-ratio "$FAULT_RATIO" \
    --web.listen-address "127.0.0.1:$SIM_PORT" >"$WORK/simulator.out" 2>"$WORK/simulator.log" &
SIM_PID=$!
PIDS+=("$SIM_PID")
wait_http "$SIM/fleet/stats" || die "the simulator did not start (see $WORK/simulator.log)"

# Every target the fleet has, as the simulator writes them; the soak takes its 10,000 and
# keeps the others aside for the churn.
curl -sf -o "$WORK/fleet-all.yaml" "$SIM/fleet/config?onprem=$TARGETS&cloud=$TARGETS&interval=1s" ||
    die "fleet config"
read -r ACTIVE ASIDE <<<"$(py soak-setup "$WORK/fleet-all.yaml" "$WORK" "$FILES" "$ONPREM" "$CLOUD" "$MAX_POLLS")" ||
    die "splitting the fleet config"
log "$ACTIVE targets in $FILES target files, $ASIDE kept aside for the churn"
"$BIN" --config.check --config.file "$WORK/exporter.yaml" >"$WORK/config-check.txt" 2>&1 ||
    die "the soak's config does not load (see $WORK/config-check.txt)"

log "exporter on $EXP"
"$BIN" --config.file "$WORK/exporter.yaml" --web.listen-address "127.0.0.1:$EXP_PORT" 2>"$WORK/exporter.log" &
EXP_PID=$!
PIDS+=("$EXP_PID")
wait_http "$EXP/-/ready" 30 || die "the exporter did not start (see $WORK/exporter.log)"

# One scrape, its body in $WORK/metrics-NAME.txt: SCRAPED holds the figures of
# `bench.py scrape`, or dashes when /metrics did not answer 200 (a failure of the soak).
scrape() {
    local name=$1 code
    SCRAPED="- - - - - - - - - -"
    code=$(curl -s --max-time 10 -o "$WORK/metrics-$name.txt" -w '%{http_code}' "$EXP/metrics")
    if [[ "$code" != 200 ]]; then
        FAILURES+=("/metrics answered ${code:-nothing} ($name, $(date +%T))")
        log "/metrics answered ${code:-nothing}"
        return 1
    fi
    SCRAPED=$(py scrape "$WORK/metrics-$name.txt")
}

log "warm-up: until every target has been polled (at most 60 s)"
UP=0
for ((i = 0; i < 60; i++)); do
    sleep 1
    alive "$EXP_PID" || die "the exporter died during the warm-up (see $WORK/exporter.log)"
    scrape warmup
    read -r _ _ UP _ <<<"$SCRAPED"
    [[ "$UP" =~ ^[0-9]+$ ]] && ((UP >= ACTIVE)) && break
done
log "warm-up: $((i + 1)) s, $UP targets with whatsapp_up"

# The figures of one moment, into SNAP, then copied into START or END by their caller.
declare -A SNAP START END
snapshot() {
    local name=$1 stats rss hwm series dup up pollers tasks targets errors ok failed reasons rate requests faults
    SNAP=([time]=$(date +%s.%N))
    read -r rss hwm <<<"$(py mem "$EXP_PID")"
    SNAP[rss]=$rss
    SNAP[hwm]=$hwm
    SNAP[fds]=$(fds "$EXP_PID")
    SNAP[sim_fds]=$(fds "$SIM_PID")
    SNAP[cpu_exp]=$(py cpu "$EXP_PID")
    SNAP[cpu_sim]=$(py cpu "$SIM_PID")
    scrape "$name"
    read -r series dup up pollers tasks targets errors ok failed reasons <<<"$SCRAPED"
    SNAP[series]=$series
    SNAP[dup]=$dup
    SNAP[up]=$up
    SNAP[pollers]=$pollers
    SNAP[tasks]=$tasks
    SNAP[targets]=$targets
    SNAP[errors]=$errors
    SNAP[reload_ok]=$ok
    SNAP[reload_failed]=$failed
    SNAP[by_reason]=$reasons
    rate=- requests=- faults=-
    stats="$WORK/stats-$name.json"
    if curl -sf -o "$stats" "$SIM/fleet/stats"; then
        read -r rate requests faults <<<"$(py fleet-rate "$stats")"
    fi
    SNAP[sim_rate]=$rate
    SNAP[sim_requests]=$requests
    SNAP[sim_faults]=$faults
}

snapshot start
for k in "${!SNAP[@]}"; do START[$k]=${SNAP[$k]}; done
log "start: RSS $(mib "${START[rss]}") MiB, $((START[fds])) fds, ${START[tasks]} tasks, ${START[series]} series"

SAMPLES="$WORK/samples.tsv"
printf 'seconds\trss_kib\tfds\tpoller_tasks\talive_tasks\ttargets\tseries\tpoll_errors\n' >"$SAMPLES"
T0=$(date +%s)
NEXT_SCRAPE=$SCRAPE_EVERY
NEXT_CHURN=$CHURN_EVERY
NEXT_RELOAD=$RELOAD_FIRST
CHURNS=0
RELOADS=0
SCRAPES=0
RSS_MAX=${START[rss]}
log "soak: $DURATION s; churn every $CHURN_EVERY s, reload every $RELOAD_EVERY s, scrape every $SCRAPE_EVERY s"
while :; do
    now=$(($(date +%s) - T0))
    ((now >= DURATION)) && break
    if ! alive "$EXP_PID"; then
        FAILURES+=("the exporter died after $now s")
        break
    fi
    if ! alive "$SIM_PID"; then
        FAILURES+=("the simulator died after $now s")
        break
    fi
    if ((now >= NEXT_CHURN)); then
        read -r file removed added <<<"$(py soak-churn "$WORK" "$CHURN_COUNT")"
        CHURNS=$((CHURNS + 1))
        log "churn $CHURNS: $file, $removed targets out, $added in"
        NEXT_CHURN=$((NEXT_CHURN + CHURN_EVERY))
    fi
    if ((now >= NEXT_RELOAD)); then
        code=$(curl -s --max-time 30 -o "$WORK/reload.txt" -w '%{http_code}' -X POST "$EXP/-/reload")
        RELOADS=$((RELOADS + 1))
        if [[ "$code" != 200 ]]; then
            FAILURES+=("POST /-/reload answered ${code:-nothing} at $now s: $(head -c 300 "$WORK/reload.txt")")
        fi
        log "POST /-/reload: ${code:-no answer}"
        NEXT_RELOAD=$((NEXT_RELOAD + RELOAD_EVERY))
    fi
    if ((now >= NEXT_SCRAPE)); then
        SCRAPES=$((SCRAPES + 1))
        if scrape last; then
            read -r series _ up pollers tasks targets errors _ _ _ <<<"$SCRAPED"
            rss=$(py mem "$EXP_PID" | awk '{print $1}')
            nfd=$(fds "$EXP_PID")
            ((rss > RSS_MAX)) && RSS_MAX=$rss
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$now" "$rss" "$nfd" "$pollers" "$tasks" "$targets" "$series" "$errors" >>"$SAMPLES"
            log "$now s: RSS $(mib "$rss") MiB, $nfd fds, $pollers pollers, $tasks tasks, $targets targets ($up up), $series series, $errors poll errors"
        fi
        NEXT_SCRAPE=$((NEXT_SCRAPE + SCRAPE_EVERY))
    fi
    sleep 1
done

if alive "$EXP_PID"; then
    snapshot end
    for k in "${!SNAP[@]}"; do END[$k]=${SNAP[$k]}; done
else
    [[ " ${FAILURES[*]} " == *"exporter died"* ]] || FAILURES+=("the exporter died at the end")
    END=([rss]=0 [hwm]=0 [fds]=- [time]=$(date +%s.%N))
fi
WARNINGS=$(grep -c 'level=warn' "$WORK/exporter.log")
ERRORS=$(grep -c 'level=error' "$WORK/exporter.log")
PANICS=$(grep -c -i 'panic' "$WORK/exporter.log")
WINDOW=$(calc "${END[time]} - ${START[time]}")
pct() { awk -v a="$1" -v b="$2" -v w="$3" 'BEGIN { if (a == "" || b == "" || w <= 0) print "-"; else printf "%.1f", (b - a) / w * 100 }'; }

echo
echo "whatsapp-exporter soak, $(date -u +%Y-%m-%dT%H:%M:%SZ), $("$BIN" --version 2>/dev/null)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$ACTIVE targets ($ONPREM onprem, $CLOUD Cloud API numbers) every 1 s in $FILES target files; fault ratio $FAULT_RATIO"
echo "soak of $(printf '%.0f' "$WINDOW") s (asked: $DURATION s): $CHURNS churns of $CHURN_COUNT targets, $RELOADS POST /-/reload, $SCRAPES scrapes"
echo
printf '%-48s | %-24s | %s\n' "figure" "start" "end"
printf '%s\n' "-------------------------------------------------+--------------------------+-------------------------"
row() { printf '%-48s | %-24s | %s\n' "$1" "$2" "$3"; }
row "exporter VmRSS (MiB)" "$(mib "${START[rss]}")" "$(mib "${END[rss]}") (highest sampled $(mib "$RSS_MAX"))"
row "exporter VmHWM (MiB)" "$(mib "${START[hwm]}")" "$(mib "${END[hwm]}")"
row "exporter open file descriptors" "${START[fds]}" "${END[fds]}"
row "simulator open file descriptors" "${START[sim_fds]}" "${END[sim_fds]:--}"
row "whatsapp_exporter_poller_tasks" "${START[pollers]}" "${END[pollers]:--}"
row "whatsapp_exporter_runtime_alive_tasks" "${START[tasks]}" "${END[tasks]:--}"
row "whatsapp_exporter_targets" "${START[targets]}" "${END[targets]:--}"
row "targets with whatsapp_up" "${START[up]}" "${END[up]:--}"
row "series on /metrics (duplicates)" "${START[series]} (${START[dup]})" "${END[series]:--} (${END[dup]:--})"
row "whatsapp_poll_errors_total, summed" "${START[errors]}" "${END[errors]:--}"
row "  by reason" "${START[by_reason]}" "${END[by_reason]:--}"
row "config reloads: success / failure" "${START[reload_ok]} / ${START[reload_failed]}" "${END[reload_ok]:--} / ${END[reload_failed]:--}"
row "simulator requests/s (last 10 s)" "${START[sim_rate]}" "${END[sim_rate]:--}"
row "simulator requests; faults answered" "${START[sim_requests]}; ${START[sim_faults]}" "${END[sim_requests]:--}; ${END[sim_faults]:--}"
row "exporter CPU s (since its start)" "${START[cpu_exp]}" "${END[cpu_exp]:--}"
row "simulator CPU s (since its start)" "${START[cpu_sim]}" "${END[cpu_sim]:--}"
row "CPU over the soak, % of one core: exporter" "-" "$(pct "${START[cpu_exp]}" "${END[cpu_exp]:-}" "$WINDOW")"
row "CPU over the soak, % of one core: simulator" "-" "$(pct "${START[cpu_sim]}" "${END[cpu_sim]:-}" "$WINDOW")"
row "exporter log: warnings / errors / panics" "-" "$WARNINGS / $ERRORS / $PANICS"
echo
echo "samples every $SCRAPE_EVERY s: $SAMPLES$( ((KEEP)) || echo ' (removed: --keep keeps it)')"

if ((${#FAILURES[@]})); then
    echo
    echo "FAILED:"
    printf '  %s\n' "${FAILURES[@]}"
    exit 1
fi
echo "every scrape answered 200; the exporter and the simulator ran to the end"
