#!/usr/bin/env bash
# POST /mget against single GETs, in the same run: kvbench sends GET /get/{key} (uniform random
# existing keys), then POST /mget with BATCH keys per request drawn the same way, from the same
# number of connections; reports requests/s, values/s and latency of both, and checks the bar
# (mget values/s >= 5 x single GETs/s).
#
#   bench/mget-bench.sh [KVD_BINARY]        (make release builds the release binaries first)
#
# Environment: PAIRS (1000000), DURATION seconds per measurement (5), ROUNDS (1; with more,
# each figure is the median over rounds, runs interleaved), CONNECTIONS (50), BATCH (100),
# THREADS (kvd worker threads; default: kvd's own, the CPU count), CLIENT_THREADS (kvbench's, 2).
# Starts and stops its own redis-server and kvd; the machine's Redis is not touched.
source "$(dirname "$0")/lib.sh"

KVD=${1:-.build/release/kvd}
PAIRS=${PAIRS:-1000000}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-1}
CONNECTIONS=${CONNECTIONS:-50}
BATCH=${BATCH:-100}
CLIENT_THREADS=${CLIENT_THREADS:-2}

require_tools "$KVD"

start_redis
generate_and_load "$PAIRS"

start_kvd "$KVD"

# run [KVBENCH ARGUMENT...]: prints "requests_per_s values_per_s p50_ms p99_ms errors".
run() {
    "$BIN/kvbench" run --url "http://127.0.0.1:$KVD_PORT" --keys "$BENCH_DIR/data.txt" --json \
        --concurrency "$CONNECTIONS" --threads "$CLIENT_THREADS" --duration "$DURATION" "$@" |
        python3 -c '
import json, sys
r = json.load(sys.stdin)
errors = sum(r["errors"].values()) + r["server_errors"] + r["mismatches"] + sum(n for s, n in r["status"].items() if s != "200")
values = r.get("values_per_second", r["requests_per_second"])
print("%.0f %.0f %.3f %.3f %d" % (r["requests_per_second"], values, r["latency_us"]["p50"] / 1000, r["latency_us"]["p99"] / 1000, errors))'
}

echo "# kvd $("$KVD" --version) | $(nproc) CPUs | load average $(cut -d' ' -f1-3 /proc/loadavg) | ${DURATION}s per run | $ROUNDS round(s) | $CONNECTIONS connections | kvbench $CLIENT_THREADS threads"
: > "$BENCH_DIR/get"; : > "$BENCH_DIR/mget"
for ((r = 0; r < ROUNDS; r++)); do
    run >> "$BENCH_DIR/get"
    run --batch "$BATCH" >> "$BENCH_DIR/mget"
done
if awk '$5 > 0 { bad = 1 } END { exit !bad }' "$BENCH_DIR/get" "$BENCH_DIR/mget"; then
    echo "bench: kvbench saw errors or answers other than 200" >&2
    exit 1
fi
read -r g_rps g_values g_p50 g_p99 < <(for f in 1 2 3 4; do median $(cut -d' ' -f$f "$BENCH_DIR/get"); done | xargs)
read -r m_rps m_values m_p50 m_p99 < <(for f in 1 2 3 4; do median $(cut -d' ' -f$f "$BENCH_DIR/mget"); done | xargs)
printf "%-28s | %10s | %10s | %8s | %8s\n" "" "requests/s" "values/s" "p50 ms" "p99 ms"
printf "%-28s | %10.0f | %10.0f | %8.3f | %8.3f\n" "GET /get/{key}" "$g_rps" "$g_values" "$g_p50" "$g_p99"
printf "%-28s | %10.0f | %10.0f | %8.3f | %8.3f\n" "POST /mget ($BATCH keys)" "$m_rps" "$m_values" "$m_p50" "$m_p99"
ratio=$(awk -v m="$m_values" -v g="$g_values" 'BEGIN { printf "%.2f", m / g }')
echo "# mget values/s / single GETs/s = $ratio (bar: >= 5)"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v r="$ratio" 'BEGIN { exit !(r >= 5) }' || { echo "bench: below the bar" >&2; exit 1; }
