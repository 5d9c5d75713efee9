#!/usr/bin/env bash
# Kernel-side selection and cold/steady figures of one preset, run inside the load
# generator's namespace once READY (see bench/selection.sh):
#   portside-loadgen --preset P -- bench/selection-inside.sh P DIR
# Every command runs RUNS times, interleaved round by round with the others (so a burst of
# load from other processes hits all of them alike); wall time from `date`, CPU time
# (user + system) from /usr/bin/time. Medians and ratios to `ss` go to DIR/results.txt.
set -euo pipefail

preset=$1
dir=$2
: "${PORTSIDE:?set by bench/selection.sh}" "${RUNS:=5}" "${TICKS:=20}"
mkdir -p "$dir"
log() { echo "[$preset] $*" >&2; }

echo "$PORTSIDE_LOADGEN_READY" >"$dir/ready.txt"
cat /proc/loadavg >"$dir/loadavg.txt"

# name|command (run with no shell: word-split, no quoting needed in these)
cmds=(
    "ss -tan|ss -tan"
    "portside --once --format json|$PORTSIDE --once --format json"
    "ss -tanl|ss -tanl"
    "ss -tanlp|ss -tanlp"
    "portside --once -l|$PORTSIDE --once -l"
    "ss -tanl sport = :443|ss -tanl sport = :443"
    "ss -tanlp sport = :443|ss -tanlp sport = :443"
    "portside --once state:listen lport:443|$PORTSIDE --once state:listen lport:443"
)
if [ -n "${BEFORE:-}" ]; then
    cmds+=(
        "before: portside --once --format json|$BEFORE --once --format json"
        "before: portside --once -l|$BEFORE --once -l"
        "before: portside --once state:listen lport:443|$BEFORE --once state:listen lport:443"
    )
fi

: >"$dir/runs.txt"
for round in $(seq 1 "$RUNS"); do
    log "round $round/$RUNS"
    for entry in "${cmds[@]}"; do
        name=${entry%%|*}
        cmd=${entry#*|}
        t0=$(date +%s%N)
        # shellcheck disable=SC2086
        /usr/bin/time -f '%U %S' -o "$dir/time.tmp" $cmd >/dev/null 2>"$dir/stderr.tmp" || {
            log "failed: $cmd: $(head -c 300 "$dir/stderr.tmp")"
            continue
        }
        t1=$(date +%s%N)
        read -r u s <"$dir/time.tmp"
        printf '%s\t%s\t%s\n' "$name" "$(( (t1 - t0) / 1000 ))" "$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%d", (u + s) * 1e6 }')" >>"$dir/runs.txt"
    done
done

# Steady tick: one sampler, TICKS+1 ticks back to back; median in-process duration of
# ticks 2.. (the first is the cold one). Beside it, `ss -tan` measured in the rounds above.
steady() {
    local label=$1 bin=$2 n=$((TICKS + 1))
    log "steady ($label): $n ticks"
    "$bin" --group --format json --count "$n" --interval 0 2>/dev/null |
        jq -s '[.[1:][] | .duration_ms] | sort | .[length / 2 | floor]' >"$dir/steady-$label.median" ||
        echo null >"$dir/steady-$label.median"
}
steady after "$PORTSIDE"
[ -n "${BEFORE:-}" ] && steady before "$BEFORE"
cat /proc/loadavg >>"$dir/loadavg.txt"

# Medians (wall, cpu) per command, then ratios to the `ss` each is held against.
awk -F'\t' '
    { w[$1] = w[$1] " " $2; c[$1] = c[$1] " " $3; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } }
    function median(list,   a, k, i, j, t) {
        k = split(list, a, " ")
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
    }
    END {
        for (i = 0; i < n; i++) printf "%s\t%.1f\t%.1f\n", order[i], median(w[order[i]]) / 1000, median(c[order[i]]) / 1000
    }' "$dir/runs.txt" >"$dir/medians.txt"

{
    echo "preset $preset, $RUNS interleaved runs; load average before/after: $(tr '\n' '|' <"$dir/loadavg.txt")"
    echo "READY: $(cat "$dir/ready.txt")"
    printf '%-50s %12s %12s\n' command "wall ms" "cpu ms"
    awk -F'\t' '{ printf "%-50s %12.1f %12.1f\n", $1, $2, $3 }' "$dir/medians.txt"
    ratio() { # name, reference
        awk -F'\t' -v a="$1" -v b="$2" '$1 == a { wa = $2; ca = $3 } $1 == b { wb = $2; cb = $3 }
            END { if (wa && wb) printf "%-50s / %-22s %6.2fx wall %6.2fx cpu\n", a, b, wa / wb, ca / cb }' "$dir/medians.txt"
    }
    ratio "portside --once --format json" "ss -tan"
    ratio "before: portside --once --format json" "ss -tan"
    ratio "portside --once -l" "ss -tanl"
    ratio "portside --once -l" "ss -tanlp"
    ratio "before: portside --once -l" "ss -tanl"
    ratio "before: portside --once -l" "ss -tanlp"
    ratio "portside --once state:listen lport:443" "ss -tanl sport = :443"
    ratio "portside --once state:listen lport:443" "ss -tanlp sport = :443"
    ratio "before: portside --once state:listen lport:443" "ss -tanl sport = :443"
    ratio "before: portside --once state:listen lport:443" "ss -tanlp sport = :443"
    sstan=$(awk -F'\t' '$1 == "ss -tan" { print $2 }' "$dir/medians.txt")
    for label in after before; do
        [ -f "$dir/steady-$label.median" ] || continue
        m=$(cat "$dir/steady-$label.median")
        awk -v m="$m" -v s="$sstan" -v l="$label" 'BEGIN { if (m != "null" && s) printf "steady tick (%s): %.1f ms in-process / ss -tan %.1f ms = %.2fx\n", l, m, s, m / s }'
    done
} | tee "$dir/results.txt"
