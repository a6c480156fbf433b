#!/usr/bin/env bash
# What Redis Cluster mode costs kvd per request: kvd on a 3-master cluster against kvd on one
# Redis, same machine, same run, same kvbench parameters, string layout on both (the same pairs,
# copied into the cluster with redis-cli --cluster import). Rounds alternate single and cluster;
# prints each round (requests/s, kvd CPU µs per request, Redis CPU µs per request summed over
# its servers, kvbench's p99 latency) and the ratio of the median rates, cluster / single (bar:
# >= 0.85), then the commands per Redis read (how big kvd's batches are on each side).
# On 2 cores expect no speed-up: the three masters share the cores kvd and kvbench use.
#
#   bench/cluster-bench.sh [KVD_BINARY]        (release builds: make release)
#
# Environment: PAIRS (200000), DURATION seconds per run (10), ROUNDS (3), CONCURRENCY (50),
# THREADS (kvd workers, 2), KVBENCH_THREADS (1).
source "$(dirname "$0")/lib.sh"

KVD=${1:-.build/release/kvd}
PAIRS=${PAIRS:-200000}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-50}
THREADS=${THREADS:-2}
KVBENCH_THREADS=${KVBENCH_THREADS:-1}
require_tools "$KVD"

# A port P with P + 10000 (the cluster bus) free too.
free_port_pair() {
    python3 -c '
import random, socket
while True:
    p = random.randrange(20000, 50000)
    try:
        sockets = [socket.socket() for _ in (0, 1)]
        sockets[0].bind(("127.0.0.1", p)); sockets[1].bind(("127.0.0.1", p + 10000))
        print(p); break
    except OSError:
        pass
    finally:
        for s in sockets: s.close()'
}

start_redis
CLUSTER_PORTS=()
CLUSTER_PIDS=()
for _ in 1 2 3; do
    port=$(free_port_pair)
    mkdir -p "$BENCH_DIR/cluster-$port"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$BENCH_DIR/cluster-$port" --cluster-enabled yes \
        --cluster-config-file "$BENCH_DIR/cluster-$port/nodes.conf" --cluster-node-timeout 2000 \
        --save '' --appendonly no --logfile "$BENCH_DIR/cluster-$port/redis.log" &
    BENCH_PIDS+=($!)
    CLUSTER_PIDS+=($!)
    CLUSTER_PORTS+=("$port")
    wait_for "cluster node on port $port" 10 redis-cli -p "$port" ping
done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CLUSTER_PORTS[@]}") --cluster-replicas 0 --cluster-yes >/dev/null
cluster_ok() { for port in "${CLUSTER_PORTS[@]}"; do redis-cli -p "$port" cluster info | grep -q cluster_state:ok || return 1; done; }
wait_for "cluster_state:ok" 30 cluster_ok

generate_and_load "$PAIRS" string
echo "# copying them into the cluster (redis-cli --cluster import)"
redis-cli --cluster import "127.0.0.1:${CLUSTER_PORTS[0]}" --cluster-from "127.0.0.1:$REDIS_PORT" --cluster-copy >/dev/null
keys=0
for port in "${CLUSTER_PORTS[@]}"; do keys=$((keys + $(redis-cli -p "$port" dbsize))); done
[ "$keys" -eq "$(redis-cli -p "$REDIS_PORT" dbsize)" ] || { echo "bench: the cluster holds $keys keys, the single Redis $(redis-cli -p "$REDIS_PORT" dbsize)" >&2; exit 1; }
shuf -n 100000 --random-source=<(yes) "$BENCH_DIR/data.txt" > "$BENCH_DIR/keys.txt"

kvd_start single "$KVD" "[redis]\nlayout = string\nport = $REDIS_PORT\n" /readyz
kvd_start cluster "$KVD" "[redis]\nlayout = string\ncluster = yes\nnodes = $(printf '127.0.0.1:%s, ' "${CLUSTER_PORTS[@]}" | sed 's/, $//')\n" /readyz

# run NAME REDIS_PIDS...: prints "requests/s kvd-µs-per-request redis-µs-per-request p99-latency-µs".
run() {
    local name=$1 port kvd_before redis_before output
    shift
    port=${KVD_PORTS[$name]}
    kvd_before=$(cpu_ticks "${KVD_PIDS[$name]}")
    redis_before=$(cpu_ticks "$@")
    output=$("$BIN/kvbench" run --url "http://127.0.0.1:$port" --keys "$BENCH_DIR/keys.txt" -c "$CONCURRENCY" \
        -t "$KVBENCH_THREADS" -d "${DURATION}s" --verify --json)
    python3 -c '
import json, sys
report = json.loads(sys.argv[1])
requests = report["requests_per_second"] * report["duration_s"]
hz = float(sys.argv[4])
bad = report["error_rate"]
if bad > 0: sys.exit("bench: kvbench saw errors (error rate %s): %s" % (bad, sys.argv[1]))
print("%.0f %.2f %.2f %d" % (report["requests_per_second"], int(sys.argv[2]) / hz * 1e6 / requests, int(sys.argv[3]) / hz * 1e6 / requests, report["latency_us"]["p99"]))
' "$output" "$(($(cpu_ticks "${KVD_PIDS[$name]}") - kvd_before))" "$(($(cpu_ticks "$@") - redis_before))" "$(getconf CLK_TCK)"
}

echo "# kvd $("$KVD" --version) | $(nproc) CPUs | $THREADS kvd threads | kvbench -c $CONCURRENCY -t $KVBENCH_THREADS -d ${DURATION}s --verify | $ROUNDS round(s)"
run single "$REDIS_PID" >/dev/null; run cluster "${CLUSTER_PIDS[@]}" >/dev/null   # warm-up
# stat FIELD PORT...: an INFO stats counter summed over the servers on PORTs.
stat() { local field=$1 sum=0 port; shift; for port in "$@"; do sum=$((sum + $(redis-cli -p "$port" info stats | tr -d '\r' | awk -F: -v f="$field" '$1 == f { print $2 }'))); done; echo "$sum"; }
counters() { echo "$(stat total_commands_processed "$@") $(stat total_reads_processed "$@")"; }
read -r s_commands0 s_reads0 < <(counters "$REDIS_PORT")
read -r c_commands0 c_reads0 < <(counters "${CLUSTER_PORTS[@]}")
printf "%-6s | %-44s | %-44s\n" round "single Redis: req/s, kvd µs, Redis µs, p99 µs" "3-master cluster: req/s, kvd µs, Redis µs, p99 µs"
single=() cluster=()
for ((r = 1; r <= ROUNDS; r++)); do
    read -r s_rate s_kvd s_redis s_p99 < <(run single "$REDIS_PID")
    read -r c_rate c_kvd c_redis c_p99 < <(run cluster "${CLUSTER_PIDS[@]}")
    printf "%-6s | %10s %10s %10s %10s | %10s %10s %10s %10s\n" "$r" "$s_rate" "$s_kvd" "$s_redis" "$s_p99" "$c_rate" "$c_kvd" "$c_redis" "$c_p99"
    single+=("$s_rate") cluster+=("$c_rate")
done
s=$(median "${single[@]}") c=$(median "${cluster[@]}")
echo "# median req/s: single $s, cluster $c: cluster / single = $(awk -v a="$c" -v b="$s" 'BEGIN { printf "%.3f", a / b }') (bar: >= 0.85)"
# Paired: each round's two runs are adjacent in time, so a ratio per round cancels slow drifts of
# the machine (other tenants of the host); the median of those is printed beside the ratio of medians.
paired=$(for ((r = 0; r < ROUNDS; r++)); do awk -v a="${cluster[$r]}" -v b="${single[$r]}" 'BEGIN { print a / b }'; done)
echo "# paired (median of per-round ratios): cluster / single = $(awk -v m="$(median $paired)" 'BEGIN { printf "%.3f", m }')"
read -r s_commands1 s_reads1 < <(counters "$REDIS_PORT")
read -r c_commands1 c_reads1 < <(counters "${CLUSTER_PORTS[@]}")
# Each read of a client's socket is one wake-up of Redis's event loop for a batch of commands.
echo "# commands per Redis read (INFO stats; batch size): single $(awk -v c=$((s_commands1 - s_commands0)) -v r=$((s_reads1 - s_reads0)) 'BEGIN { printf "%.1f", c / r }'), cluster masters $(awk -v c=$((c_commands1 - c_commands0)) -v r=$((c_reads1 - c_reads0)) 'BEGIN { printf "%.1f", c / r }')"
echo "# MOVED/ASK seen by kvd on the cluster: $(curl -s "http://127.0.0.1:${KVD_PORTS[cluster]}/metrics" | awk '/^kvd_redis_cluster_redirects_total/ { s += $2 } END { print s + 0 }')"
usec_per_get() { redis-cli -p "$1" info commandstats | awk -F'[=,]' '/^cmdstat_get:/ { print $6 }'; }
echo "# Redis's own usec_per_call for GET (INFO commandstats; command execution only, no I/O): single $(usec_per_get "$REDIS_PORT"), cluster masters $(for port in "${CLUSTER_PORTS[@]}"; do printf '%s ' "$(usec_per_get "$port")"; done)"
