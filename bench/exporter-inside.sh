#!/usr/bin/env bash
# Run by bench/exporter.sh inside the load generator's namespace: time `ss -tan`, start
# `portside serve`, measure its CPU over SECS without scrapes, then time SCRAPES scrapes.
set -euo pipefail
portside=$1
preset=$2
addr=127.0.0.1:9632

ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

sockets=$(ss -tanH | wc -l)
ss_runs=()
for _ in 1 2 3 4 5; do
    t0=$(ms); ss -tan >/dev/null; t1=$(ms); ss_runs+=($((t1 - t0)))
done
ss_ms=$(printf '%s\n' "${ss_runs[@]}" | median)

log=$(mktemp /tmp/portside-exporter-bench.XXXXXX)
"$portside" serve --listen "$addr" --interval "$INTERVAL" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$log"' EXIT
# The first tick is taken before the first answer: this curl returns after it.
for _ in $(seq 1 600); do
    curl -sf -o /dev/null "http://$addr/metrics" && break
    sleep 0.1
done
clk=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
c0=$(cpu); t0=$(ms)
sleep "$SECS"
c1=$(cpu); t1=$(ms)
cpu_pct=$(awk -v c="$((c1 - c0))" -v k="$clk" -v t="$((t1 - t0))" 'BEGIN {printf "%.2f", c / k / (t / 1000) * 100}')
ticks=$(curl -s "http://$addr/metrics" | awk '$1 == "portside_ticks_total" {print $2}')

body=$(mktemp /tmp/portside-exporter-body.XXXXXX)
times=$(for _ in $(seq 1 "$SCRAPES"); do
    curl -s -o "$body" -w '%{time_total}\n' "http://$addr/metrics"
done)
scrape_med=$(echo "$times" | median)
scrape_p95=$(echo "$times" | sort -n | awk -v n="$SCRAPES" '{a[NR]=$1} END {print a[int(n * 0.95)]}')
scrape_max=$(echo "$times" | sort -n | tail -1)
size=$(wc -c <"$body")
series=$(grep -vc '^#' "$body")
tick_s=$(awk '$1 == "portside_tick_duration_seconds" {print $2}' "$body")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
rm -f "$body"

echo
echo "| preset | sockets (ss -tan) | ss -tan | exporter tick | tick / ss | CPU at $INTERVAL ($SECS s, $ticks ticks) | scrape median / p95 / max ($SCRAPES) | body | series | RSS / peak |"
echo "|---|---|---|---|---|---|---|---|---|---|"
awk -v p="$preset" -v s="$sockets" -v ss="$ss_ms" -v t="$tick_s" -v c="$cpu_pct" -v i="$INTERVAL" \
    -v sm="$scrape_med" -v sp="$scrape_p95" -v sx="$scrape_max" -v b="$size" -v se="$series" \
    -v r="$rss" -v h="$hwm" 'BEGIN {
    printf "| %s | %d | %d ms | %.0f ms | %.2fx | %s%% of a core | %.1f / %.1f / %.1f ms | %.0f KB | %d | %.1f / %.1f MB |\n",
        p, s, ss, t * 1000, t * 1000 / ss, c, sm * 1000, sp * 1000, sx * 1000, b / 1000, se, r / 1024, h / 1024
}'
