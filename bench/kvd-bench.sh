#!/usr/bin/env bash
# kvd throughput and latency: GET /get/{random existing key} against GET /healthz (no Redis),
# both measured with wrk in the same run, at 1, 10, 50 and 200 connections.
#
#   bench/kvd-bench.sh [KVD_BINARY]        (make bench builds the release binary first)
#
# Environment: PAIRS (1000000), DURATION seconds per measurement (5), ROUNDS (1; with more,
# each figure is the median over rounds, runs interleaved), CONNECTIONS ("1 10 50 200"),
# THREADS (kvd worker threads; default: kvd's own, the CPU count), POLLING ([http] polling:
# auto, epoll or select; default: kvd's own, auto).
# Starts and stops its own redis-server and kvd; the machine's Redis is not touched.
source "$(dirname "$0")/lib.sh"

KVD=${1:-.build/release/kvd}
PAIRS=${PAIRS:-1000000}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-1}
CONNECTIONS=${CONNECTIONS:-"1 10 50 200"}

require_tools "$KVD"
command -v wrk >/dev/null || { echo "bench: wrk is missing (make deps installs it)" >&2; exit 1; }

start_redis
generate_and_load "$PAIRS"
fields=$(redis-cli -p "$REDIS_PORT" hlen data)
memory=$(redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory:/ { sub(/\r$/, "", $2); print $2 }')
data_bytes=$(stat -c %s "$BENCH_DIR/data.txt")
echo "# Redis hash 'data' holds $fields fields: Redis uses $((memory / 1048576)) MiB ($((memory / fields)) bytes per pair) for a $((data_bytes / 1048576)) MiB file"
cut -d' ' -f1 "$BENCH_DIR/data.txt" | shuf -n 100000 --random-source=<(yes) > "$BENCH_DIR/keys.txt"

start_kvd "$KVD" ${POLLING:+"polling = $POLLING"}
first_key=$(head -1 "$BENCH_DIR/keys.txt")
curl -sf "http://127.0.0.1:$KVD_PORT/get/$first_key" >/dev/null || { echo "bench: kvd cannot read $first_key" >&2; exit 1; }

# wrk_run CONNECTIONS PATH_OR_SCRIPT: prints "requests_per_s p50_ms p99_ms errors".
wrk_run() {
    local connections=$1 target=$2 threads=2 args=()
    ((connections < 2)) && threads=1
    if [ "$target" = random ]; then
        args=(-s "$(dirname "$0")/random-key.lua" "http://127.0.0.1:$KVD_PORT/")
    else
        args=("http://127.0.0.1:$KVD_PORT$target")
    fi
    KEYS_FILE="$BENCH_DIR/keys.txt" wrk -t"$threads" -c"$connections" -d"${DURATION}s" --latency "${args[@]}" |
        awk '
            function ms(v) {
                if (v ~ /us$/) return v / 1000
                if (v ~ /ms$/) return v + 0
                if (v ~ /s$/) return v * 1000
                return v
            }
            /Requests\/sec:/ { rps = $2 }
            $1 == "50.000%" || $1 == "50%" { p50 = ms($2) }
            $1 == "99.000%" || $1 == "99%" { p99 = ms($2) }
            /Non-2xx or 3xx responses:/ { errors += $NF }
            /Socket errors:/ { errors += 1 }
            END { printf "%.0f %.3f %.3f %d\n", rps, p50, p99, errors }'
}

echo "# kvd $("$KVD" --version) | $(nproc) CPUs | ${DURATION}s per run | $ROUNDS round(s) | wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
printf "%-6s | %-28s | %-28s | %s\n" "conns" "(a) GET /get/{random key}" "(b) GET /healthz" "(a)/(b)"
printf "%-6s | %10s %8s %8s | %10s %8s %8s | %s\n" "" "req/s" "p50 ms" "p99 ms" "req/s" "p50 ms" "p99 ms" ""
for c in $CONNECTIONS; do
    : > "$BENCH_DIR/a"; : > "$BENCH_DIR/b"
    for ((r = 0; r < ROUNDS; r++)); do
        wrk_run "$c" /healthz >> "$BENCH_DIR/b"
        wrk_run "$c" random >> "$BENCH_DIR/a"
    done
    if awk '$4 > 0 { bad = 1 } END { exit !bad }' "$BENCH_DIR/a" "$BENCH_DIR/b"; then
        echo "bench: wrk saw errors or non-2xx answers at $c connections" >&2
        exit 1
    fi
    read -r a_rps a_p50 a_p99 < <(for f in 1 2 3; do median $(cut -d' ' -f$f "$BENCH_DIR/a"); done | xargs)
    read -r b_rps b_p50 b_p99 < <(for f in 1 2 3; do median $(cut -d' ' -f$f "$BENCH_DIR/b"); done | xargs)
    printf "%-6s | %10.0f %8.3f %8.3f | %10.0f %8.3f %8.3f | %.2f\n" "$c" \
        "$a_rps" "$a_p50" "$a_p99" "$b_rps" "$b_p50" "$b_p99" "$(awk -v a="$a_rps" -v b="$b_rps" 'BEGIN { print a / b }')"
done
echo "# kvd peak RSS over the whole run: $(awk '/^VmHWM:/ { print int($2 / 1024) }' "/proc/$KVD_PID/status") MiB (it holds no data: Redis does)"
