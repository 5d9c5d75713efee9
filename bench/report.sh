#!/usr/bin/env bash
# Turn bench/scale.sh's raw results into Markdown tables with ratios and target checks.
#   bench/report.sh OUT_DIR PRESET...
set -euo pipefail
out=$1
shift
presets=("$@")

# hyperfine's median, in seconds, or empty when the run failed.
median() { [ -f "$1" ] && jq -r '.results[0].median' "$1" || true; }
# a / b with 2 decimals, or "n/a".
ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || a == "null" || b == "null" || b + 0 == 0) print "n/a"; else printf "%.2fx", a / b }'; }
# hyperfine's mean CPU time (user + system) of one run, in seconds.
cpu() { [ -f "$1" ] && jq -r '.results[0] | .user + .system' "$1" || true; }
# Seconds as "12.3 ms" or "2.41 s".
ms() { awk -v s="${1:-}" 'BEGIN { if (s == "" || s == "null") print "n/a"; else if (s >= 1) printf "%.2f s", s; else printf "%.1f ms", s * 1000 }'; }
# One cold cell: wall median, then CPU time.
cell() { local w c; w=$(median "$1"); c=$(cpu "$1"); if [ -z "$w" ]; then echo n/a; else echo "$(ms "$w") (cpu $(ms "$c"))"; fi; }
verdict() { awk -v r="${1%x}" -v t="$2" 'BEGIN { if (r == "n/a") print "n/a"; else if (r + 0 <= t) print "met"; else print "missed" }'; }
# Whether portside saw the namespace's sockets; its figures mean nothing otherwise.
sees() { awk '$1 + 0 > 0 { ok = 1 } END { exit !ok }' "$out/$1/portside-sockets.txt" 2>/dev/null; }
# A verdict, or why there is none.
check() { if sees "$3"; then verdict "$1" "$2"; else echo "n/a: portside saw no sockets"; fi; }
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" "$2" 2>/dev/null | head -1; }

echo "## Machine"
echo
cat "$out/machine.md"
echo
echo "## Sockets built (counted by \`ss -tan\` inside the namespace at READY)"
echo
echo "| preset | LISTEN | ESTAB | TIME-WAIT | CLOSE-WAIT | other | total | build time | processes (servers+clients) | portside -t sees |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"
for p in "${presets[@]}"; do
    r=$out/$p/ready.txt
    [ -f "$r" ] || continue
    echo "| $p | $(field listen "$r") | $(field established "$r") | $(field time_wait "$r") | $(field close_wait "$r") | $(field other "$r") | $(field total "$r") | $(awk -v m="$(field build_ms "$r")" 'BEGIN{printf "%.1f s", m/1000}') | $(field servers "$r")+$(field clients "$r") | $(cat "$out/$p/portside-sockets.txt" 2>/dev/null || echo n/a) |"
done
echo
echo "## Cold: one fresh process, output to /dev/null"
echo
echo "Wall-clock median of $RUNS runs (hyperfine), and in brackets the mean CPU time (user + system) of one run, which other load on the machine disturbs less. Load average at the start of each preset: $(for p in "${presets[@]}"; do printf '%s: %s; ' "$p" "$(cut -d' ' -f1-3 "$out/$p/loadavg.txt" 2>/dev/null || echo n/a)"; done)"
echo
echo "| preset | portside --once --format json | ss -tan | ss -tanp | netstat -tanp | lsof -nP -iTCP | once / ss -tan (target <= 2.0x) | once / ss -tanp (1k target <= 1.0x) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for p in "${presets[@]}"; do
    d=$out/$p
    [ -d "$d" ] || continue
    once=$(median "$d/cold-portside-once.json")
    tan=$(median "$d/cold-ss-tan.json")
    tanp=$(median "$d/cold-ss-tanp.json")
    r1=$(ratio "$once" "$tan")
    r2=$(ratio "$once" "$tanp")
    t2=""
    [ "$p" = 1k ] && t2=" ($(check "$r2" 1.0 "$p"))"
    echo "| $p | $(cell "$d/cold-portside-once.json") | $(cell "$d/cold-ss-tan.json") | $(cell "$d/cold-ss-tanp.json") | $(cell "$d/cold-netstat-tanp.json") | $(cell "$d/cold-lsof.json") | $r1 ($(check "$r1" 2.0 "$p")) | $r2$t2 |"
done
echo
echo "Ratios to \`ss -tan\`, wall median (CPU time):"
echo
echo "| preset | portside --once | ss -tanp | netstat -tanp | lsof -nP -iTCP |"
echo "|---|---:|---:|---:|---:|"
for p in "${presets[@]}"; do
    d=$out/$p
    [ -d "$d" ] || continue
    tan=$(median "$d/cold-ss-tan.json")
    ctan=$(cpu "$d/cold-ss-tan.json")
    row="| $p"
    for t in portside-once ss-tanp netstat-tanp lsof; do
        row="$row | $(ratio "$(median "$d/cold-$t.json")" "$tan") ($(ratio "$(cpu "$d/cold-$t.json")" "$ctan"))"
    done
    echo "$row |"
done
echo
echo "## Steady state: one sampler, \`portside --group --format json --count $((TICKS + 1)) --interval 0\`"
echo
echo "In-process: median \`duration_ms\` of ticks 2..$((TICKS + 1)). Outside: (wall($((TICKS + 1)) ticks) - wall(1 tick)) / $TICKS, hyperfine medians of 5 runs. Churn: connections opening and closing between ticks."
echo
echo "| preset | quiet, in-process | quiet, outside | churn, in-process | churn, outside | worst / ss -tan (target <= 0.75x) |"
echo "|---|---:|---:|---:|---:|---:|"
for p in "${presets[@]}"; do
    d=$out/$p
    [ -d "$d" ] || continue
    row="| $p"
    worst=""
    for label in quiet churn; do
        inproc=$(cat "$d/steady-$label.median" 2>/dev/null || echo null)
        inproc_s=$(awk -v m="$inproc" 'BEGIN { if (m == "null" || m == "") print ""; else print m / 1000 }')
        outside=""
        if [ -f "$d/steady-$label-outside.json" ]; then
            outside=$(jq -r --argjson n "$TICKS" '(.results | map({(.command): .median}) | add) as $m | ($m.many - $m.one) / $n' "$d/steady-$label-outside.json")
        fi
        row="$row | $(ms "$inproc_s") | $(ms "$outside")"
        for v in $inproc_s $outside; do
            worst=$(awk -v a="$worst" -v b="$v" 'BEGIN { if (a == "" || b + 0 > a + 0) print b; else print a }')
        done
    done
    r=$(ratio "$worst" "$(median "$d/cold-ss-tan.json")")
    echo "$row | $r ($(check "$r" 0.75 "$p")) |"
done
echo
echo "## Resources at a 1 s interval"
echo
echo "| preset | stream: CPU (% of one core, target < 20%) | stream: peak RSS | live view: mode, duration | live view: CPU | live view: peak RSS (target < 100 MB) |"
echo "|---|---:|---:|---|---:|---:|"
for p in "${presets[@]}"; do
    d=$out/$p
    [ -d "$d" ] || continue
    cpu=n/a
    rss=n/a
    if read -r e u s m <"$d/cpu-stream.time" 2>/dev/null && [ "$e" != failed ]; then
        cpu=$(awk -v e="$e" -v u="$u" -v s="$s" 'BEGIN { printf "%.1f%%", (u + s) / e * 100 }')
        rss=$(awk -v m="$m" 'BEGIN { printf "%.1f MB", m / 1024 }')
    fi
    h=$d/history.txt
    mode=$(field mode "$h")
    hcpu=$(field cpu_pct "$h")
    hwm=$(field hwm_kb "$h")
    echo "| $p | $cpu | $rss | ${mode:-n/a}, $(field secs "$h") s | ${hcpu:+$hcpu%} | $(awk -v k="$hwm" 'BEGIN { if (k == "") print "n/a"; else printf "%.1f MB", k / 1024 }') |"
done
echo
echo "## TUI frame: build (apply the snapshot, group or sort) + render, TestBackend 200x50"
echo
echo "Median of 20 frames per view, each from a new copy of the snapshot. Live: one real sample of the preset's namespace."
echo
echo "| snapshot | view | build + render | build | render |"
echo "|---|---|---:|---:|---:|"
frame_rows() {
    local label=$1 file=$2
    [ -f "$file" ] || return 0
    grep '^frame ' "$file" | while read -r _ view med _min _max build render _; do
        echo "| $label | ${view#view=} | ${med#median_ms=} ms | ${build#build_ms=} ms | ${render#render_ms=} ms |"
    done
}
frame_rows "synthetic 100k" "$out/render.txt"
for p in "${presets[@]}"; do frame_rows "live $p" "$out/$p/render-live.txt"; done
echo
grep -q '^frame ' "$out/render.txt" 2>/dev/null || echo "Synthetic frame not measured: $(cat "$out/render.err" 2>/dev/null || echo 'render-bench did not run')"
