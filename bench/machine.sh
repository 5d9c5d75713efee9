#!/usr/bin/env bash
# The machine a benchmark ran on, as a Markdown list (for BENCHMARKS.md).
set -euo pipefail
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
ver() { "$@" 2>&1 | head -1 || true; }
cat <<MD
- CPU: ${cpu:-unknown}, $(nproc) cores
- Memory: $mem
- Kernel: $(uname -sr)
- $(ver ss -V)
- netstat: $(ver netstat -V | sed 's/^netstat //')
- lsof: $(lsof -v 2>&1 | awk '/revision/ {print $2; exit}')
- $(ver hyperfine --version)
- rustc: $(ver rustc --version)
- Date: $(date -u +%Y-%m-%dT%H:%MZ)
MD
