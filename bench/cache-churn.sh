#!/usr/bin/env bash
# What the near-cache does with a uniform load over a keyspace far larger than it holds (the case
# TinyLFU's admission is for): a kvd with the cache off and one with a small cache (MAX_BYTES,
# 16 MiB) on one private redis-server, PAIRS pairs (1M), uniform GETs at a fixed RATE (60k/s, below
# saturation, so that both do the same work) for DURATION seconds, ROUNDS rounds alternating off and
# on. Prints each run's kvd CPU µs per request and, at the end, the cache's stores, evictions,
# refusals and hits: churn (stores and evictions that buy no hits) is what admission must prevent.
#
#   bench/cache-churn.sh [KVD_BINARY]        (default .build/release/kvd; `make release` first)
source "$(dirname "$0")/lib.sh"

KVD=${1:-.build/release/kvd}
PAIRS=${PAIRS:-1000000}
DURATION=${DURATION:-6}
ROUNDS=${ROUNDS:-2}
RATE=${RATE:-60000}
MAX_BYTES=${MAX_BYTES:-16777216}
require_tools "$KVD"

start_redis
generate_and_load "$PAIRS"
kvd_start off "$KVD" "[redis]\nport = $REDIS_PORT\n[cache]\nenabled = no\n"
kvd_start on "$KVD" "[redis]\nport = $REDIS_PORT\n[cache]\nenabled = yes\nmax_bytes = $MAX_BYTES\n"
# Fill the small cache first: what follows is its steady state.
"$BIN/kvbench" run --url "http://127.0.0.1:${KVD_PORTS[on]}" --keys "$BENCH_DIR/data.txt" --concurrency 50 --duration 4 --max-error-rate 0 > /dev/null

counts() {
    curl -sf "http://127.0.0.1:${KVD_PORTS[on]}/metrics" | awk '
        /^kvd_cache_(hits|misses|stores|evictions|not_admitted)_total\{/ { split($1, name, "{"); total[name[1]] += $2 }
        END { printf "%d %d %d %d %d\n", total["kvd_cache_stores_total"], total["kvd_cache_evictions_total"], total["kvd_cache_not_admitted_total"], total["kvd_cache_hits_total"], total["kvd_cache_misses_total"] }'
}
echo "# kvd $("$KVD" --version) | $(nproc) CPUs | $RATE GET/s for ${DURATION}s | max_bytes $MAX_BYTES | load average $(cut -d' ' -f1-3 /proc/loadavg)"
read -r stores0 evictions0 refused0 hits0 misses0 < <(counts)
for ((round = 1; round <= ROUNDS; round++)); do
    for mode in off on; do
        pid=${KVD_PIDS[$mode]}
        before=$(cpu_ticks "$pid")
        rate=$("$BIN/kvbench" run --url "http://127.0.0.1:${KVD_PORTS[$mode]}" --concurrency 50 --duration "$DURATION" --rate "$RATE" \
            --json --max-error-rate 0 --keys "$BENCH_DIR/data.txt" --seed "$round" | python3 -c 'import json, sys; print("%.0f" % json.load(sys.stdin)["requests_per_second"])')
        after=$(cpu_ticks "$pid")
        printf "round %d, cache %-3s | %6d req/s | kvd %.2f µs CPU per request\n" "$round" "$mode" "$rate" \
            "$(awk -v a="$before" -v b="$after" -v r="$rate" -v d="$DURATION" -v t="$(getconf CLK_TCK)" 'BEGIN { print (b - a) / t * 1e6 / (r * d) }')"
    done
done
read -r stores evictions refused hits misses < <(counts)
echo "cache on, during the rounds: $((stores - stores0)) stores, $((evictions - evictions0)) evictions, $((refused - refused0)) refused (kvd_cache_not_admitted_total), $((hits - hits0)) hits, $((misses - misses0)) misses"
