#!/usr/bin/env bash
# What a whole flush of a full near-cache costs the requests around it. In the `hash` layout Redis
# tracks one key (`data`) for every value, so every write to it empties each worker's cache; at the
# default size a worker holds ~300,000-450,000 entries when that happens.
#
#   bench/cache-flush.sh KVD [KVD_REFERENCE]
#
# For each binary (the reference first, when given): a kvd with the cache on over PAIRS pairs (hash
# layout), its cache warmed as bench/cache-bench.sh warms it (the WARM_KEYS hottest keys read
# WARM_PASSES times); then, while kvbench sends an open-loop Zipf load of RATE GETs/s, a probe
# client sends GETs of hot keys one after another on one connection for DURATION seconds and WRITES
# writes go to the hash, one every 1.2 s. The probe's latencies are what one client sees: the
# slowest of them is the longest time a worker did not answer. Prints, per binary: the probe's
# requests, p99, p99.9 and max latency, and how many took over 5 ms; once for the writes, and once
# for the warm-up before them (the cache filling for the first time: its index grows meanwhile).
#
# Environment: PAIRS (1000000), RATE (20000), DURATION (5), WRITES (3), WARM_KEYS (300000),
# WARM_PASSES (6).
source "$(dirname "$0")/lib.sh"

KVD=${1:?usage: bench/cache-flush.sh KVD [KVD_REFERENCE]}
REFERENCE=${2:-}
PAIRS=${PAIRS:-1000000}
RATE=${RATE:-20000}
DURATION=${DURATION:-5}
WRITES=${WRITES:-3}

require_tools "$KVD"
[ -z "$REFERENCE" ] || [ -x "$REFERENCE" ] || { echo "bench: no $REFERENCE" >&2; exit 1; }
start_redis
generate_and_load "$PAIRS" hash
head -n "${WARM_KEYS:-300000}" "$BENCH_DIR/data.txt" > "$BENCH_DIR/hot.txt"
head -n 2000 "$BENCH_DIR/hot.txt" | cut -d' ' -f1 > "$BENCH_DIR/probe-keys.txt"

# The probe: sequential GETs on one keep-alive connection; prints its latency figures.
cat > "$BENCH_DIR/probe.py" <<'EOF'
import http.client, random, sys, time
import os
port, keys, seconds = int(sys.argv[1]), open(sys.argv[2]).read().split(), float(sys.argv[3])
stop = sys.argv[4] if len(sys.argv) > 4 else None   # or until this file exists
connection = http.client.HTTPConnection("127.0.0.1", port)
latencies, start = [], time.monotonic()
while time.monotonic() - start < seconds and not (stop and os.path.exists(stop)):
    sent = time.monotonic()
    key = random.choice(keys)
    connection.request("GET", "/get/" + key)
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        sys.exit("probe: status %d for key %s" % (response.status, key))
    latencies.append(time.monotonic() - sent)
latencies.sort()
def at(q): return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
print("%7d requests | p99 %6.1f ms | p99.9 %6.1f ms | max %6.1f ms | %4d over 5 ms"
      % (len(latencies), at(0.99), at(0.999), latencies[-1] * 1000, sum(l > 0.005 for l in latencies)))
EOF

measure() {
    local name=$1 binary=$2 port load probe
    kvd_start "$name" "$binary" "[redis]\nport = $REDIS_PORT\n[cache]\nenabled = yes\n"
    port=${KVD_PORTS[$name]}
    rm -f "$BENCH_DIR/warm-done"
    python3 "$BENCH_DIR/probe.py" "$port" "$BENCH_DIR/probe-keys.txt" 600 "$BENCH_DIR/warm-done" > "$BENCH_DIR/probe-warm-$name.txt" &
    probe=$!
    warm_cache "$port"
    touch "$BENCH_DIR/warm-done"
    wait "$probe"
    local entries
    entries=$(curl -sf "http://127.0.0.1:$port/metrics" | metric_total kvd_cache_entries)
    "$BIN/kvbench" run --url "http://127.0.0.1:$port" --keys "$BENCH_DIR/data.txt" --zipf 0.99 --rate "$RATE" \
        --concurrency 50 --duration "$((DURATION + 1))" --max-error-rate 1 > /dev/null &
    load=$!
    python3 "$BENCH_DIR/probe.py" "$port" "$BENCH_DIR/probe-keys.txt" "$DURATION" > "$BENCH_DIR/probe-$name.txt" &
    probe=$!
    for ((write = 1; write <= WRITES; write++)); do
        sleep 1.2
        redis-cli -p "$REDIS_PORT" hset data cache-flush-bench "write $write" > /dev/null
    done
    wait "$probe"
    wait "$load"
    printf "%-10s first fill (to %d entries) | %s\n" "$name" "$entries" "$(cat "$BENCH_DIR/probe-warm-$name.txt")"
    printf "%-10s writes                      | %s\n" "$name" "$(cat "$BENCH_DIR/probe-$name.txt")"
    kill "${KVD_PIDS[$name]}"
    wait "${KVD_PIDS[$name]}" 2> /dev/null || true
}

echo "# $(nproc) CPUs | open-loop Zipf load $RATE GETs/s | $WRITES writes to the hash, 1.2 s apart | load average $(cut -d' ' -f1-3 /proc/loadavg)"
[ -z "$REFERENCE" ] || measure reference "$REFERENCE"
measure kvd "$KVD"
