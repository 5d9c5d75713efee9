#!/usr/bin/env bash
# Exporter benchmark: `portside serve` on the sockets of a portside-loadgen preset, inside
# the network namespace the load generator creates; `ss -tan` timed in the same run.
#
#   sudo bench/exporter.sh            # the 100k preset
#   sudo bench/exporter.sh 10k
#
# Environment knobs (defaults in brackets):
#   SECS [120]       how long the exporter's CPU time is measured (8 ticks at 15 s), no scrapes
#   INTERVAL [15s]   the exporter's --interval
#   SCRAPES [200]    sequential scrapes timed with curl after the CPU window
# Needs root (network namespaces) and curl. Network: loopback inside the namespace only.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
preset=${1:-100k}
[ "$(id -u)" = 0 ] || { echo "bench/exporter.sh: needs root (sudo)" >&2; exit 1; }
command -v curl >/dev/null || { echo "bench/exporter.sh: needs curl" >&2; exit 1; }
(cd "$repo" && cargo build --release --locked -p portside -p portside-loadgen >&2)
export SECS=${SECS:-120} INTERVAL=${INTERVAL:-15s} SCRAPES=${SCRAPES:-200}
"$repo/target/release/portside-loadgen" --preset "$preset" -- \
    bash "$here/exporter-inside.sh" "$repo/target/release/portside" "$preset"
