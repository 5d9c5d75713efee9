#!/usr/bin/env bash
# Soak: the live view for a long time at 10k sockets with churn, RSS sampled at an interval.
#
#   sudo bench/soak.sh                       # 3600 s, 500 new connections/s, RSS every 30 s
#   SOAK_SECS=600 CHURN=200 bench/soak.sh    # shorter
#
# Environment knobs (defaults in brackets):
#   SOAK_SECS [3600]   how long the live view runs
#   EVERY [30]         seconds between RSS samples
#   CHURN [500]        new connections per second (each lives one second)
#   PRESET [10k]       load generator preset
#   PORTSIDE, LOADGEN  binaries (default: target/release/portside{,-loadgen}; built if missing)
#   OUT [bench/out/soak]  where the series goes (rss.tsv: secs, VmRSS kB, VmHWM kB, sockets)
# Needs root (the load generator's network namespace) and tmux. Loopback traffic only,
# inside the namespace; the run is bounded by --hold.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
SOAK_SECS=${SOAK_SECS:-3600} EVERY=${EVERY:-30} CHURN=${CHURN:-500} PRESET=${PRESET:-10k}
OUT=${OUT:-$repo/bench/out/soak}
PORTSIDE=${PORTSIDE:-$repo/target/release/portside}
LOADGEN=${LOADGEN:-$repo/target/release/portside-loadgen}

die() { echo "bench/soak.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root: the load generator creates a network namespace"
command -v tmux >/dev/null || die "needs tmux"
if [ ! -x "$PORTSIDE" ] || [ ! -x "$LOADGEN" ]; then
    (cd "$repo" && cargo build --release --locked -p portside -p portside-loadgen) || die "build failed"
fi
mkdir -p "$OUT"

if [ "${1:-}" != --inside ]; then
    export SOAK_SECS EVERY OUT PORTSIDE
    exec "$LOADGEN" --preset "$PRESET" --churn "$CHURN/s" --hold $((SOAK_SECS + 300)) \
        -- "$here/soak.sh" --inside
fi

# Inside the namespace, once READY: the live view in a private tmux server, sampled.
sock="portside-soak-$$"
cleanup() { tmux -L "$sock" kill-server 2>/dev/null || true; }
trap cleanup EXIT
echo "$PORTSIDE_LOADGEN_READY" >"$OUT/ready.txt"
tmux -L "$sock" -f /dev/null new-session -d -x 200 -y 50 "exec $PORTSIDE --interval 1s"
sleep 2
pid=$(tmux -L "$sock" list-panes -F '#{pane_pid}')
[ "$(cat "/proc/$pid/comm")" = portside ] || die "live view did not start"
printf 'secs\trss_kb\thwm_kb\tsockets\n' >"$OUT/rss.tsv"
start=$(date +%s)
while :; do
    now=$(date +%s)
    [ -r "/proc/$pid/status" ] || { echo "portside exited after $((now - start)) s" >>"$OUT/rss.tsv"; exit 1; }
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
    n=$(ss -tanH | wc -l)
    printf '%d\t%s\t%s\t%s\n' $((now - start)) "$rss" "$hwm" "$n" | tee -a "$OUT/rss.tsv"
    [ $((now - start)) -ge "$SOAK_SECS" ] && break
    sleep "$EVERY"
done
tmux -L "$sock" capture-pane -p >"$OUT/screen.txt" || true
