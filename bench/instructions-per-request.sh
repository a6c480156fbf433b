#!/usr/bin/env bash
# kvd's user-space instructions per request (valgrind's callgrind), for two kvd binaries in one run:
# a figure that does not depend on what else the machine is doing (the throughput benchmarks do).
# Each binary serves 1 worker thread; wrk -c10 sends random-key GETs, then /healthz, for 8 s each;
# the instruction count over that window is divided by the requests kvd counted in /metrics.
# Kernel time is not counted (most of a request's CPU): use it for changes to kvd's own code.
# CACHE=yes: the near-cache on, and the GETs over CACHE_KEYS keys (500) that a first 10-second wrk
# run has read until they are cached with a prepared answer, so that every measured GET is a hit
# (the hit rate of the measured window is printed).
#
#   bench/instructions-per-request.sh REFERENCE_KVD CANDIDATE_KVD   (release builds; both are stripped copies)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
[ $# -eq 2 ] || { echo "usage: $0 REFERENCE_KVD CANDIDATE_KVD" >&2; exit 64; }
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 69; }
BIN=$(dirname "$1")

start_redis
"$BIN/kvbench" gen --count 20000 --seed 42 -o "$BENCH_DIR/data.txt"
load_data "$BIN/kvload" "$BENCH_DIR/data.txt"
CACHE=${CACHE:-no}
if [ "$CACHE" = yes ]; then KEYS=${CACHE_KEYS:-500}; CACHE_SECTION='[cache]\nenabled = yes\n'; else KEYS=10000; CACHE_SECTION=; fi
cut -d' ' -f1 "$BENCH_DIR/data.txt" | shuf -n "$KEYS" --random-source=<(yes) > "$BENCH_DIR/keys.txt"
# cache_counts: "hits misses" from kvd's /metrics on $port.
cache_counts() {
    curl -s "http://127.0.0.1:$port/metrics" | awk '/^kvd_cache_hits_total/ { h += $2 } /^kvd_cache_misses_total/ { m += $2 } END { print h + 0, m + 0 }'
}
# Stripped copies: valgrind cannot read the Swift debug information of these builds.
strip -o "$BENCH_DIR/kvd-reference" "$1"
strip -o "$BENCH_DIR/kvd-candidate" "$2"
for name in reference candidate reference candidate; do
    port=$(free_port)
    printf "[http]\nport = %s\nthreads = 1\nidle_timeout_s = 0\n[redis]\nport = %s\n[log]\nlevel = warning\n$CACHE_SECTION" "$port" "$REDIS_PORT" > "$BENCH_DIR/kvd.conf"
    valgrind --tool=callgrind --callgrind-out-file="$BENCH_DIR/cg.%p" "$BENCH_DIR/kvd-$name" --config "$BENCH_DIR/kvd.conf" 2>"$BENCH_DIR/vg.log" &
    pid=$!
    wait_for "kvd $name" 60 curl -sf "http://127.0.0.1:$port/healthz"
    if [ "$CACHE" = yes ]; then
        KEYS_FILE="$BENCH_DIR/keys.txt" wrk -t1 -c10 -d10s -s bench/random-key.lua "http://127.0.0.1:$port/" > /dev/null
    fi
    for target in random /healthz; do
        if [ "$target" = random ]; then args=(-s bench/random-key.lua "http://127.0.0.1:$port/"); else args=("http://127.0.0.1:$port$target"); fi
        callgrind_control -z "$pid" >/dev/null
        counts_before=$(cache_counts)
        before=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^kvd_http_requests_total/ {s+=$2} END {print s}')
        KEYS_FILE="$BENCH_DIR/keys.txt" wrk -t1 -c10 -d8s "${args[@]}" > "$BENCH_DIR/wrk.out"
        rm -f "$BENCH_DIR/cg.$pid".*
        callgrind_control -d "$pid" >/dev/null
        sleep 1
        after=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^kvd_http_requests_total/ {s+=$2} END {print s}')
        instructions=$(grep -h "^summary:" "$BENCH_DIR/cg.$pid".* | awk '{s+=$2} END {print s}')
        requests=$((after - before - 1))
        hits=
        if [ "$CACHE" = yes ] && [ "$target" = random ]; then
            hits=$(echo "$counts_before $(cache_counts)" | awk '{ h = $3 - $1; m = $4 - $2; printf "  cache hits %.1f%%", h + m ? 100 * h / (h + m) : 0 }')
        fi
        printf '%-10s %-8s requests %8d  instructions/request %s%s\n' "$name" "$target" "$requests" \
            "$(awk -v i="$instructions" -v n="$requests" 'BEGIN {printf "%.0f", i/n}')" "$hits"
    done
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done
