# shellcheck shell=bash
# Helpers shared by run.sh and soak.sh (sourced; BENCH must point at tests/bench).

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
    log "FAILED: $*"
    exit 1
}
py() { python3 "$BENCH/bench.py" "$@"; }

# Waits (at most 10 s) until a process is gone (or a zombie nobody reaps).
wait_gone() {
    local pid=$1 i
    for ((i = 0; i < 200; i++)); do
        [[ -e /proc/$pid ]] || return 0
        [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && return 0
        sleep 0.05
    done
}

# Waits until URL answers 200 (at most $2 seconds).
wait_http() {
    local url=$1 limit=${2:-20} i
    for ((i = 0; i < limit * 20; i++)); do
        [[ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" == 200 ]] && return 0
        sleep 0.05
    done
    return 1
}

# Arithmetic on decimals.
calc() { awk "BEGIN { x = $1; if (x != x) print \"nan\"; else printf \"%.6g\", x }" 2>/dev/null || echo nan; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
