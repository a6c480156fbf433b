#!/usr/bin/env bash
# Storage layouts compared: Redis memory per pair (and as a multiple of the raw key + value bytes),
# kvload rows/s, and kvd GET req/s and p99 at 50 connections, for the hash, string and buckets
# layouts, at each dataset size, in one run.
#
#   bench/storage-bench.sh [BINARY_DIR]        (default .build/release)
#
# Environment: SIZES ("1000000 10000000"), LAYOUTS ("hash string buckets"), GET_LAYOUTS ("hash
# buckets": kvd GET measured on these, alternating, ROUNDS times, DURATION s each), ROUNDS (3),
# DURATION (5), CONNECTIONS (50). A layout written `buckets:N` loads with `--bucket-fields N`
# (e.g. LAYOUTS="hash buckets:64 buckets:128 buckets:256", the same names in GET_LAYOUTS).
# Every Redis runs with hash-max-listpack-value 128 (seed values reach 94 bytes; the buckets
# layout needs its hashes to stay listpacks) and hash-max-listpack-entries 512 (Redis 7.0's
# default and Debian's redis.conf, stated so that the run does not depend on it: buckets:N needs
# N ≤ half of it), and is stopped once its
# layout is measured, so a 100M-pair run (SIZES=100000000 LAYOUTS=buckets GET_LAYOUTS=buckets)
# fits in memory.
source "$(dirname "$0")/lib.sh"

BIN=${1:-.build/release}
SIZES=${SIZES:-"1000000 10000000"}
LAYOUTS=${LAYOUTS:-"hash string buckets"}
GET_LAYOUTS=${GET_LAYOUTS-"hash buckets"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-50}
for tool in kvd kvload kvbench; do
    [ -x "$BIN/$tool" ] || { echo "bench: no $BIN/$tool (run: make release)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "bench: wrk is missing (make deps installs it)" >&2; exit 1; }

calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
used_memory() { redis-cli -p "$1" info memory | awk -F: '/^used_memory:/ { sub(/\r$/, "", $2); print $2 }'; }

# wrk_get PORT: "requests_per_s p99_ms non2xx" for random existing keys.
wrk_get() {
    KEYS_FILE="$BENCH_DIR/keys.txt" wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
        -s "$(dirname "$0")/random-key.lua" "http://127.0.0.1:$1/" |
        awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
             /Requests\/sec:/ { rps = $2 } $1 == "99.000%" || $1 == "99%" { p99 = ms($2) }
             /Non-2xx or 3xx responses:/ { bad += $NF } /Socket errors:/ { bad += 1 }
             END { printf "%.0f %.3f %d\n", rps, p99, bad }'
}

echo "# kvd $("$BIN/kvd" --version) | $(nproc) CPUs | redis-server $(redis-server --version | awk '{print $3}' | cut -d= -f2)"
echo "# load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-12s %12s %10s %12s %10s %10s %12s\n' layout pairs "MiB" "bytes/pair" "x raw" "load s" "rows/s"
for size in $SIZES; do
    data="$BENCH_DIR/data-$size.txt"
    "$BIN/kvbench" gen --count "$size" --seed 42 -o "$data"
    raw=$(($(stat -c %s "$data") - 2 * size))   # key + value bytes: no space, no newline
    cut -d' ' -f1 "$data" | shuf -n 100000 --random-source=<(yes) > "$BENCH_DIR/keys.txt"
    declare -A KVD_PORTS=() REDIS_PORTS=()
    for name in $LAYOUTS; do
        layout=${name%%:*}
        fields=()
        [[ $name != *:* ]] || fields=(--bucket-fields "${name#*:}")
        start_redis --hash-max-listpack-value 128 --hash-max-listpack-entries 512
        before=$(used_memory "$REDIS_PORT")
        started=$(date +%s.%N)
        "$BIN/kvload" --config /dev/null --host 127.0.0.1 --port "$REDIS_PORT" --layout "$layout" "${fields[@]}" --quiet "$data" >/dev/null
        seconds=$(calc "$(date +%s.%N) - $started")
        memory=$(($(used_memory "$REDIS_PORT") - before))
        printf '%-12s %12d %10.0f %12.1f %10.2f %10.1f %12.0f\n' "$name" "$size" "$(calc "$memory / 1048576")" \
            "$(calc "$memory / $size")" "$(calc "$memory / $raw")" "$seconds" "$(calc "$size / $seconds")"
        if [[ " $GET_LAYOUTS " == *" $name "* ]]; then
            port=$(free_port)
            printf '[http]\nport = %s\nidle_timeout_s = 0\n[redis]\nport = %s\nlayout = %s\n[log]\nlevel = warning\n' \
                "$port" "$REDIS_PORT" "$layout" > "$BENCH_DIR/kvd-${name/:/-}.conf"
            "$BIN/kvd" --config "$BENCH_DIR/kvd-${name/:/-}.conf" 2> "$BENCH_DIR/kvd-${name/:/-}.log" &
            BENCH_PIDS+=($!)
            wait_for "kvd ($layout)" 10 curl -sf "http://127.0.0.1:$port/get/$(head -1 "$BENCH_DIR/keys.txt")"
            KVD_PORTS[$name]=$port
            REDIS_PORTS[$name]=$REDIS_PORT
        else
            kill "$REDIS_PID"
            wait "$REDIS_PID" 2>/dev/null || true
        fi
    done
    # GET req/s and p99 per layout, the layouts alternating in every round; the median is printed.
    declare -A RPS=() P99=() BAD=()
    for ((round = 1; round <= ROUNDS; round++)); do
        for layout in $GET_LAYOUTS; do
            [ -n "${KVD_PORTS[$layout]:-}" ] || continue
            read -r rps p99 bad < <(wrk_get "${KVD_PORTS[$layout]}")
            RPS[$layout]="${RPS[$layout]:-} $rps"
            P99[$layout]="${P99[$layout]:-} $p99"
            BAD[$layout]=$((${BAD[$layout]:-0} + bad))
        done
    done
    reference=""
    for layout in $GET_LAYOUTS; do
        [ -n "${KVD_PORTS[$layout]:-}" ] || continue
        rps=$(median ${RPS[$layout]})
        [ -n "$reference" ] || reference=$rps
        printf '# GET %-12s %12d pairs: %8.0f req/s (%.2fx %s), p99 %.2f ms, %d non-2xx, %d connections, median of %d\n' \
            "$layout" "$size" "$rps" "$(calc "$rps / $reference")" "$(echo $GET_LAYOUTS | cut -d' ' -f1)" \
            "$(median ${P99[$layout]})" "${BAD[$layout]}" "$CONNECTIONS" "$ROUNDS"
    done
    # Redis's own CPU per lookup (INFO commandstats), free of the machine's noise.
    for layout in $GET_LAYOUTS; do
        [ -n "${REDIS_PORTS[$layout]:-}" ] || continue
        redis-cli -p "${REDIS_PORTS[$layout]}" info commandstats |
            awk -F'[:,=]' -v l="$layout" '/^cmdstat_(hget|get):/ { printf "# redis %-12s %s: %s us per call\n", l, $1, $7 }'
    done
    echo "# load average $(cut -d' ' -f1-3 /proc/loadavg)"
    # Everything of this size stops before the next size loads.
    for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${BENCH_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    BENCH_PIDS=()
    unset KVD_PORTS REDIS_PORTS RPS P99 BAD
    rm -f "$data"
done
