#!/usr/bin/env bash
# Kernel-side selection at scale: cold `--once` (plain, -l, state:listen lport:443) and the
# steady tick against `ss` in the same run, per preset (default: 1m; it takes ~3 GB of
# kernel memory and ~40 s to build, and is torn down at once).
#   sudo bench/selection.sh              # 1m
#   sudo bench/selection.sh 100k 1m      # several presets
#   BEFORE=/path/to/old/portside RUNS=5 TICKS=20 OUT=bench/out sudo -E bench/selection.sh
# BEFORE: another portside binary measured beside this one (e.g. a build of main).
set -euo pipefail
cd "$(dirname "$0")/.."
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(1m)
export RUNS=${RUNS:-5} TICKS=${TICKS:-20} BEFORE=${BEFORE:-}
out=${OUT:-bench/out}/selection-$(date -u +%Y%m%dT%H%M%SZ)
for tool in jq /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench/selection.sh: needs $tool" >&2; exit 1; }
done
cargo build --release --locked -p portside -p portside-loadgen >&2
export PORTSIDE=$PWD/target/release/portside
loadgen=$PWD/target/release/portside-loadgen
for p in "${presets[@]}"; do
    "$loadgen" --preset "$p" --hold 30m -- bench/selection-inside.sh "$p" "$out/$p"
done
echo "results under $out" >&2
