#!/usr/bin/env bash
# What a near-cache entry costs in resident memory against what the cache counts for it
# (`[cache] max_bytes` is a bound on the count): one kvd worker with a 1 GiB cache reads the
# first N keys of PAIRS generated pairs twice (an entry is stored at a key's second read), and
# kvd's RSS growth over the second pass is set against kvd_cache_bytes' growth.
#
#   bench/cache-memory.sh [KVD_BINARY]        (default .build/release/kvd)
#
# Environment: N (200000), PAIRS (1000000), LAYOUT (hash).
source "$(dirname "$0")/lib.sh"

KVD=${1:-.build/release/kvd}
N=${N:-200000}
PAIRS=${PAIRS:-1000000}
require_tools "$KVD"
start_redis
generate_and_load "$PAIRS" "${LAYOUT:-hash}"
kvd_start on "$KVD" "[http]\nthreads = 1\n[redis]\nport = $REDIS_PORT\nlayout = ${LAYOUT:-hash}\n[cache]\nenabled = yes\nmax_bytes = 1073741824\n"
head -n "$N" "$BENCH_DIR/data.txt" > "$BENCH_DIR/first.txt"
rss() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/${KVD_PIDS[on]}/status"; }
metric() { curl -sf "http://127.0.0.1:${KVD_PORTS[on]}/metrics" | metric_total "$1"; }
read_all() {
    "$BIN/kvbench" run --url "http://127.0.0.1:${KVD_PORTS[on]}" --keys "$BENCH_DIR/first.txt" --sequential \
        --requests "$N" --concurrency 20 --max-error-rate 0 > /dev/null
}
read_all
rss0=$(rss) bytes0=$(metric kvd_cache_bytes)
read_all
rss1=$(rss) bytes1=$(metric kvd_cache_bytes) entries=$(metric kvd_cache_entries)
echo "# kvd $("$KVD" --version) | $N keys read twice by one worker | layout ${LAYOUT:-hash}"
echo "entries $entries | counted $((bytes1 - bytes0)) bytes ($(( (bytes1 - bytes0) / entries )) per entry) | RSS grew $((rss1 - rss0)) bytes ($(( (rss1 - rss0) / entries )) per entry)"
