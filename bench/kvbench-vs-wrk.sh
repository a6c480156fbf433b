#!/usr/bin/env bash
# kvbench against wrk, same server, same keys, same invocation: is kvbench fast enough not to be the
# bottleneck (the bar: kvbench's rate >= 0.85 x wrk's at 50 connections)?
# Two workloads, each measured with both tools:
#   random: a key drawn uniformly from PAIRS keys per request (wrk through a Lua request() function);
#   fixed:  one existing key for every request (wrk with no script: wrk's fastest mode).
#
#   bench/kvbench-vs-wrk.sh [BUILD_DIR]        (default .build/release; `swift build -c release` first)
#
# Environment: PAIRS (100000), DURATION seconds per measurement (5), CONNECTIONS (50),
# ROUNDS (3; runs alternate wrk/kvbench, the median of each is reported), WRK_THREADS (2), KVBENCH_THREADS (1).
# Starts a private redis-server and a release kvd on free ports (bench/lib.sh) and stops both on exit.
source "$(dirname "$0")/lib.sh"

BIN=${1:-.build/release}
PAIRS=${PAIRS:-100000}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-50}
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
KVBENCH_THREADS=${KVBENCH_THREADS:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$BENCH_DIR

require_tools "$BIN/kvd"
for tool in wrk redis-server redis-cli python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (make deps installs it)" >&2; exit 1; }
done

start_redis
generate_and_load "$PAIRS"
cut -d' ' -f1 "$WORK/data.txt" > "$WORK/keys.txt"
echo "# $(redis-cli -p "$REDIS_PORT" hlen data) pairs in a private redis-server; $(nproc) CPUs"

KVD_PORT=$(free_port)
printf '[http]\nport = %s\nidle_timeout_s = 0\n[redis]\nport = %s\n[log]\nlevel = warning\n' \
    "$KVD_PORT" "$REDIS_PORT" > "$WORK/kvd.conf"
"$BIN/kvd" --config "$WORK/kvd.conf" 2> "$WORK/kvd.log" &
BENCH_PIDS+=($!)
wait_for "kvd" 10 curl -sf "http://127.0.0.1:$KVD_PORT/healthz"
URL="http://127.0.0.1:$KVD_PORT"

# Runs a command and prints "<its stdout>\n<CPU seconds its children used>".
with_child_cpu() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys
out = subprocess.run(sys.argv[1:], check=True, capture_output=True, text=True).stdout
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(out)
print("CPU", usage.ru_utime + usage.ru_stime)
PY
}

head -1 "$WORK/keys.txt" > "$WORK/fixed.txt"
FIXED_KEY=$(cat "$WORK/fixed.txt")

# run_wrk WORKLOAD: prints "requests_per_s cpu_us_per_request errors"
run_wrk() {
    local target=("$URL/get/$FIXED_KEY")
    [ "$1" = random ] && target=(-s "$HERE/random-key.lua" "$URL/")
    KEYS_FILE="$WORK/keys.txt" with_child_cpu wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" \
        "${target[@]}" | awk '
        /^Requests\/sec:/ { rate = $2 }
        /requests in/ { requests = $1 }
        /Non-2xx|Socket errors/ { errors = errors " " $0 }
        /^CPU/ { cpu = $2 }
        END { printf "%.0f %.2f %s\n", rate, cpu * 1e6 / requests, (errors == "" ? "none" : "yes") }'
}

# run_kvbench WORKLOAD: prints "requests_per_s cpu_us_per_request errors p50_us p99_us"
run_kvbench() {
    local keys="$WORK/fixed.txt"
    [ "$1" = random ] && keys="$WORK/keys.txt"
    "$BIN/kvbench" run --url "$URL" --keys "$keys" --concurrency "$CONNECTIONS" \
        --threads "$KVBENCH_THREADS" --duration "$DURATION" --json --max-error-rate 1 | python3 -c '
import json, sys
r = json.load(sys.stdin)
errors = sum(r["errors"].values())
print("%.0f %.2f %d %d %d" % (r["requests_per_second"], r["cpu_us_per_request"], errors,
                              r["latency_us"]["p50"], r["latency_us"]["p99"]))'
}

for workload in random fixed; do
    wrk_rates=(); kvbench_rates=(); wrk_cpus=(); kvbench_cpus=()
    for round in $(seq "$ROUNDS"); do
        read -r rate cpu errors < <(run_wrk "$workload")
        echo "$workload round $round  wrk     -t$WRK_THREADS -c$CONNECTIONS: $rate req/s  CPU $cpu µs/request  errors: $errors"
        wrk_rates+=("$rate"); wrk_cpus+=("$cpu")
        read -r rate cpu errors p50 p99 < <(run_kvbench "$workload")
        echo "$workload round $round  kvbench --threads $KVBENCH_THREADS -c$CONNECTIONS: $rate req/s  CPU $cpu µs/request  errors: $errors  p50 $p50 µs  p99 $p99 µs"
        kvbench_rates+=("$rate"); kvbench_cpus+=("$cpu")
    done
    wrk_rate=$(median "${wrk_rates[@]}"); kvbench_rate=$(median "${kvbench_rates[@]}")
    echo "== $workload keys: median of $ROUNDS rounds, $CONNECTIONS connections, ${DURATION}s each"
    echo "   wrk      $wrk_rate req/s   CPU $(median "${wrk_cpus[@]}") µs/request"
    echo "   kvbench  $kvbench_rate req/s   CPU $(median "${kvbench_cpus[@]}") µs/request"
    awk -v k="$kvbench_rate" -v w="$wrk_rate" 'BEGIN { printf "   kvbench / wrk = %.3f (target >= 0.85)\n", k / w }'
done
