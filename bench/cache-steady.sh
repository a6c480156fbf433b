#!/usr/bin/env bash
# The near-cache's real steady state under a Zipf load, from a cold cache: a long run in chunks,
# the hit rate of each chunk (against the bench/cache-bench.sh warm-up, which stands in for it).
#
#   bench/cache-steady.sh [KVD_BINARY]        (default .build/release/kvd; `make release` first)
#
# Environment: PAIRS (1000000), CHUNKS (14), CHUNK_S seconds each (60), CONNECTIONS (50),
# ZIPF (0.99), MAX_BYTES ([cache] max_bytes; default kvd's), THREADS (kvd worker threads),
# LAYOUT (hash; or string, buckets).
# Prints per chunk: requests, hit rate, bytes held and entries (over all workers); then the cache's
# counters. Hit rates do not depend on the machine's speed, only on the number of requests.
source "$(dirname "$0")/lib.sh"

KVD=${1:-.build/release/kvd}
PAIRS=${PAIRS:-1000000}
CONNECTIONS=${CONNECTIONS:-50}
ZIPF=${ZIPF:-0.99}
require_tools "$KVD"
start_redis
LAYOUT=${LAYOUT:-hash}
generate_and_load "$PAIRS" "$LAYOUT"
kvd_start on "$KVD" "[redis]\nport = $REDIS_PORT\nlayout = $LAYOUT\n[cache]\nenabled = yes\n${MAX_BYTES:+max_bytes = $MAX_BYTES\n}"
port=${KVD_PORTS[on]}

# counts: "hits misses bytes entries" over all workers.
counts() {
    curl -sf "http://127.0.0.1:$port/metrics" | awk '
        /^kvd_cache_hits_total\{/ { h += $2 } /^kvd_cache_misses_total\{/ { m += $2 }
        /^kvd_cache_bytes\{/ { b += $2 } /^kvd_cache_entries\{/ { e += $2 }
        END { printf "%d %d %d %d\n", h, m, b, e }'
}

echo "# kvd $("$KVD" --version) | $(nproc) CPUs | $PAIRS pairs | Zipf $ZIPF | $CONNECTIONS connections | cold cache"
for ((chunk = 1; chunk <= ${CHUNKS:-14}; chunk++)); do
    before=$(counts)
    "$BIN/kvbench" run --url "http://127.0.0.1:$port" --concurrency "$CONNECTIONS" --duration "${CHUNK_S:-60}" \
        --keys "$BENCH_DIR/data.txt" --zipf "$ZIPF" --seed "$chunk" --json --max-error-rate 1 > /dev/null
    echo "$before $(counts)" | awk -v c="$chunk" '{ n = $5 - $1 + $6 - $2
        printf "chunk %d: %d requests, hit rate %.2f%%, %d bytes held, %d entries\n", c, n, 100 * ($5 - $1) / n, $7, $8 }'
done
curl -sf "http://127.0.0.1:$port/metrics" | grep -E '^kvd_cache_(stores|not_admitted|evictions)_total'
