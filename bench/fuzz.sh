#!/usr/bin/env bash
# Fuzz every target of fuzz/ for a while, seeded from crates/portside-core/tests/fixtures.
#
#   bench/fuzz.sh                 # each target 600 s (the long run BENCHMARKS.md records)
#   FUZZ_SECS=20 bench/fuzz.sh    # the bounded run of .ci/run
#   bench/fuzz.sh filter alerts   # some targets
#
# Needs a nightly toolchain (rustup) and cargo-fuzz (installed when missing). Corpora grow
# in fuzz/corpus/<target> (not tracked); a crash leaves fuzz/artifacts/<target>/crash-*
# and fails the script. Prints one line per target: runs, corpus size, result.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
secs=${FUZZ_SECS:-600}
fixtures=$repo/crates/portside-core/tests/fixtures
all=(sockdiag_decode procnet_line proc_pid filter alerts services durations_ports)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

nightly=$(rustup toolchain list | awk '/^nightly/ {print $1; exit}')
[ -n "$nightly" ] || { echo "bench/fuzz.sh: no nightly toolchain (rustup toolchain install nightly)" >&2; exit 1; }
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# Seeds: recorded kernel data and literal examples of each language.
seed() {
    local target=$1
    local dir=$repo/fuzz/corpus/$target
    mkdir -p "$dir"
    case $target in
    sockdiag_decode) for f in "$fixtures"/sockdiag/*.bin; do { printf '\000'; cat "$f"; } >"$dir/seed-$(basename "$f")"; done ;;
    procnet_line) cp "$fixtures"/procnet/net/* "$dir/" ;;
    proc_pid) cp "$fixtures"/proc/stat/* "$dir/"; printf 'socket:[12345]' >"$dir/link"; printf 'Name:\tx\nUid:\t1000\t0\t0\t0\n' >"$dir/status" ;;
    services) cp "$fixtures"/services/services "$dir/" ;;
    filter) i=0; for e in 'port:443 state:est' '!listen lport:8000-8100' 'addr:10.0.0.0/8 proc:nginx' 'user:0-999 pid:1,2 tcp v6' 'raddr:::1 tw,cw' 'dport:https'; do printf '%s' "$e" >"$dir/seed-$i"; i=$((i + 1)); done ;;
    alerts) i=0; for e in 'time_wait>5000' ':443 close_wait>100' 'accept_queue>80%' 'ephemeral>=70%'; do printf '%s' "$e" >"$dir/seed-$i"; i=$((i + 1)); done ;;
    durations_ports) i=0; for e in 500ms 2s 1m30s 0 1.5 80 8000-8100 http-alt 1-2-3; do printf '%s' "$e" >"$dir/seed-$i"; i=$((i + 1)); done ;;
    esac
}

cd "$repo/fuzz"
cargo +"$nightly" fuzz build -O
failed=0
for t in "${targets[@]}"; do
    seed "$t"
    log=$(mktemp)
    if cargo +"$nightly" fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=65536 \
        -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        failed=1
        tail -40 "$log" >&2
    fi
    runs=$(awk -F: '/stat::number_of_executed_units/ {gsub(/ /, "", $2); print $2}' "$log")
    echo "fuzz: $t ${secs}s runs=${runs:-?} corpus=$(find "corpus/$t" -type f | wc -l) $result"
    rm -f "$log"
done
exit $failed
