#!/usr/bin/env bash
# Scale benchmark: portside against ss, netstat and lsof on the same sockets, at each
# preset of portside-loadgen, inside a network namespace the load generator creates.
#
#   sudo bench/scale.sh                 # presets 1k 10k 100k
#   sudo bench/scale.sh 1k 10k          # some presets
#
# Environment knobs (defaults in brackets):
#   RUNS [10]           hyperfine runs per cold command
#   TICKS [20]          steady-state ticks (the first tick is dropped: it fills caches)
#   HISTORY_SECS [600]  how long the live view runs before its peak RSS is read
#   CPU_SECS [60]       length of the 1 s interval stream run timed for CPU
#   OUT [bench/out]     where results go; the report is $OUT/report.md
# Needs root (network namespaces). Installs hyperfine, jq, tmux, lsof, net-tools if missing.
# Network: loopback inside the namespace only; every run is bounded by --hold.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(1k 10k 100k)
export RUNS=${RUNS:-10} TICKS=${TICKS:-20} HISTORY_SECS=${HISTORY_SECS:-600} CPU_SECS=${CPU_SECS:-60}
OUT=${OUT:-$repo/bench/out}

die() { echo "bench/scale.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root: the load generator creates a network namespace (sudo bench/scale.sh)"
for p in "${presets[@]}"; do
    case $p in 1k | 10k | 100k) ;; *) die "unknown preset '$p' (use 1k, 10k, 100k)" ;; esac
done

# Tools: one apt-get update, only when something is missing.
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v jq >/dev/null || need+=(jq)
command -v tmux >/dev/null || need+=(tmux)
command -v lsof >/dev/null || need+=(lsof)
command -v netstat >/dev/null || need+=(net-tools)
command -v ss >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Binaries: built here in release mode; their paths come from cargo itself.
cd "$repo"
build_json=$(mktemp)
trap 'rm -f "$build_json"' EXIT
if ! cargo build --release --bins --message-format=json >"$build_json" 2>"$build_json.err"; then
    tail -20 "$build_json.err" >&2
    rm -f "$build_json.err"
    die "cargo build --release failed"
fi
rm -f "$build_json.err"
exes=$(jq -r 'select(.reason=="compiler-artifact" and .executable != null) | .executable' "$build_json")
PORTSIDE=$(grep '/portside$' <<<"$exes" || true)
LOADGEN=$(grep '/portside-loadgen$' <<<"$exes" || true)
[ -x "$PORTSIDE" ] && [ -x "$LOADGEN" ] || die "cargo build --release did not produce portside and portside-loadgen"
export PORTSIDE LOADGEN

mkdir -p "$OUT"
"$LOADGEN" cleanup >/dev/null || true
"$here/machine.sh" >"$OUT/machine.md"

for p in "${presets[@]}"; do
    case $p in
        1k) churn=3 ;;    # TIME_WAIT/120 per second: churn's own TIME_WAIT stays under half the target
        10k) churn=25 ;;
        100k) churn=250 ;;
    esac
    mkdir -p "$OUT/$p"
    echo "== preset $p (churn $churn/s when on) ==" >&2
    # The hold bounds the whole inside run; the inside script normally ends well before.
    "$LOADGEN" --preset "$p" --hold "$((HISTORY_SECS + 3600))s" --churn "$churn/s" --churn-paused \
        -- "$here/inside.sh" "$p" "$OUT/$p" | tee "$OUT/$p/loadgen.log" >&2
done

echo "== TUI frame render (100k-socket snapshot, TestBackend) ==" >&2
if "$LOADGEN" render-bench --sockets 100000 >"$OUT/render.txt" 2>"$OUT/render.err"; then
    cat "$OUT/render.txt" >&2
else
    echo "render-bench unavailable: $(cat "$OUT/render.err")" >&2
fi

"$here/report.sh" "$OUT" "${presets[@]}" | tee "$OUT/report.md"
