#!/usr/bin/env bash
# One preset's measurements, run by the load generator inside its namespace once READY:
#   portside-loadgen --preset P --churn R/s --churn-paused -- bench/inside.sh P DIR
# Writes raw results into DIR; bench/report.sh turns them into tables.
# Expects PORTSIDE (binary path), RUNS, TICKS, HISTORY_SECS, CPU_SECS from bench/scale.sh,
# and PORTSIDE_LOADGEN_PID / PORTSIDE_LOADGEN_READY from the load generator.
set -euo pipefail

preset=$1
dir=$2
: "${PORTSIDE:?set by bench/scale.sh}" "${PORTSIDE_LOADGEN_PID:?run me through portside-loadgen}"
mkdir -p "$dir"
tmux_sock="portside-bench-$$"
cleanup() { tmux -L "$tmux_sock" kill-server 2>/dev/null || true; kill -USR2 "$PORTSIDE_LOADGEN_PID" 2>/dev/null || true; }
trap cleanup EXIT
log() { echo "[$preset] $*" >&2; }

echo "$PORTSIDE_LOADGEN_READY" >"$dir/ready.txt"
cat /proc/loadavg >"$dir/loadavg.txt"
ss -tanH | awk '{c[$1]++} END {for (k in c) print k, c[k]}' | sort >"$dir/census.txt"
# How many sockets portside itself sees: a zero means its sampler is not there yet.
"$PORTSIDE" --once --format json -t 2>/dev/null | jq '.sockets | length' >"$dir/portside-sockets.txt" || echo "error" >"$dir/portside-sockets.txt"

# 1. Cold runs: a fresh process each, output discarded (hyperfine -N: no shell in between).
cold() {
    local name=$1 cmd=$2
    log "cold: $cmd"
    if ! hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$dir/cold-$name.json" -n "$name" "$cmd" \
        >"$dir/cold-$name.log" 2>&1; then
        log "  failed (see $dir/cold-$name.log)"
        rm -f "$dir/cold-$name.json"
    fi
}
cold portside-once "$PORTSIDE --once --format json"
cold ss-tan "ss -tan"
cold ss-tanp "ss -tanp"
cold netstat-tanp "netstat -tanp"
cold lsof "lsof -nP -iTCP"

# The TUI frame from this namespace's own sockets (one live sample), beside the synthetic one.
"$LOADGEN" render-bench --live >"$dir/render-live.txt" 2>"$dir/render-live.err" || true

# 2. Steady state: one long-running sampler, ticks back to back; the first tick is dropped.
steady() {
    local label=$1 n=$((TICKS + 1))
    log "steady ($label): $n ticks"
    if "$PORTSIDE" --group --format json --count "$n" --interval 0 >"$dir/steady-$label.ndjson" 2>"$dir/steady-$label.err"; then
        jq -s '[.[1:][] | .duration_ms] | sort | if length > 0 then .[length / 2 | floor] else null end' \
            "$dir/steady-$label.ndjson" >"$dir/steady-$label.median" || echo null >"$dir/steady-$label.median"
    else
        echo null >"$dir/steady-$label.median"
    fi
    # The same from outside: (N ticks - 1 tick) / (N - 1), wall clock of whole processes.
    hyperfine -N --warmup 1 --runs 5 --export-json "$dir/steady-$label-outside.json" \
        -n one "$PORTSIDE --group --format json --count 1 --interval 0" \
        -n many "$PORTSIDE --group --format json --count $n --interval 0" \
        >"$dir/steady-$label-outside.log" 2>&1 || rm -f "$dir/steady-$label-outside.json"
}
steady quiet
kill -USR1 "$PORTSIDE_LOADGEN_PID"   # churn on: connections open and close between ticks
sleep 3
steady churn

# 3. CPU at a 1 s interval: a stream of CPU_SECS samples (churn still on).
log "cpu: $CPU_SECS samples at 1 s"
/usr/bin/time -f '%e %U %S %M' -o "$dir/cpu-stream.time" \
    "$PORTSIDE" --group --format json --count "$CPU_SECS" --interval 1s >/dev/null 2>"$dir/cpu-stream.err" ||
    echo "failed" >"$dir/cpu-stream.time"

# 4. Peak RSS after HISTORY_SECS of history: the live view in a private tmux server
#    (started from here, so it lives in this namespace), sampling every second, churn on.
clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
log "live view for $HISTORY_SECS s"
tmux -L "$tmux_sock" -f /dev/null new-session -d -x 200 -y 50 "exec $PORTSIDE --interval 1s"
sleep 3
pid=$(tmux -L "$tmux_sock" list-panes -F '#{pane_pid}' 2>/dev/null || true)
if [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] && [ "$(cat "/proc/$pid/comm")" = portside ]; then
    start=$(date +%s.%N)
    t0=$(cpu_ticks "$pid")
    end=$(($(date +%s) + HISTORY_SECS))
    while [ "$(date +%s)" -lt "$end" ] && [ -r "/proc/$pid/stat" ]; do sleep 5; done
    if [ -r "/proc/$pid/stat" ]; then
        t1=$(cpu_ticks "$pid")
        now=$(date +%s.%N)
        hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
        rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
        awk -v t0="$t0" -v t1="$t1" -v clk="$clk" -v s="$start" -v e="$now" -v hwm="$hwm" -v rss="$rss" \
            'BEGIN { printf "mode=tui secs=%.0f cpu_pct=%.2f hwm_kb=%d rss_kb=%d\n", e - s, (t1 - t0) / clk / (e - s) * 100, hwm, rss }' \
            >"$dir/history.txt"
        tmux -L "$tmux_sock" capture-pane -p >"$dir/history-screen.txt" || true
    else
        echo "mode=tui failed: portside exited during the run" >"$dir/history.txt"
    fi
else
    # No live view yet: the same sampling in stream mode (no history kept), for a figure.
    log "  live view not available; stream mode instead"
    /usr/bin/time -f '%e %U %S %M' -o "$dir/history-stream.time" \
        "$PORTSIDE" --group --format json --count "$HISTORY_SECS" --interval 1s >/dev/null 2>&1 || true
    read -r e u s m <"$dir/history-stream.time" || true
    awk -v e="${e:-0}" -v u="${u:-0}" -v s="${s:-0}" -v m="${m:-0}" \
        'BEGIN { printf "mode=stream secs=%.0f cpu_pct=%.2f hwm_kb=%d rss_kb=\n", e, (e > 0 ? (u + s) / e * 100 : 0), m }' \
        >"$dir/history.txt"
fi
tmux -L "$tmux_sock" kill-server 2>/dev/null || true
log "done"
