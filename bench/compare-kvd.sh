#!/usr/bin/env bash
# Compares two kvd binaries on the same machine in the same invocation: GET /get/KEY through
# wrk, rounds alternating A and B, against one private redis-server. Prints each round and the
# ratio of the medians (B / A), and kvd's own CPU time per request (user + system, from
# /proc/PID/stat), which a busy shared machine disturbs less than the rate. Used to show that /metrics and the systemd hooks cost nothing
# measurable on the request path.
#
# Usage: bench/compare-kvd.sh A_KVD B_KVD [rounds] [seconds] [connections]
source "$(dirname "$0")/lib.sh"
A=$1 B=$2 ROUNDS=${3:-3} SECONDS_PER_RUN=${4:-8} CONNECTIONS=${5:-50}

start_redis
KEY=6f1c8f7e-1d2a-4b8e-9a51-0c7e2d3b4a5f
redis-cli -p "$REDIS_PORT" HSET data "$KEY" "$(head -c 100 /dev/zero | tr '\0' v)" >/dev/null

declare -A KVD_PID
start_kvd() { # binary port
	printf '[http]\nport = %s\nthreads = 2\n[redis]\nport = %s\n[log]\nlevel = warning\n' "$2" "$REDIS_PORT" > "$BENCH_DIR/kvd-$2.conf"
	"$1" --config "$BENCH_DIR/kvd-$2.conf" 2>>"$BENCH_DIR/kvd-$2.log" &
	BENCH_PIDS+=($!)
	KVD_PID[$2]=$!
	wait_for "kvd on port $2" 10 curl -sf "http://127.0.0.1:$2/healthz"
}
PORT_A=$(free_port); start_kvd "$A" "$PORT_A"
PORT_B=$(free_port); start_kvd "$B" "$PORT_B"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Prints "requests/s CPU-microseconds-per-request".
run() {
	local before after output
	before=$(cpu_ticks "${KVD_PID[$1]}")
	output=$(wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" "http://127.0.0.1:$1/get/$KEY")
	after=$(cpu_ticks "${KVD_PID[$1]}")
	echo "$output" | awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
		/requests in/ {requests = $1}
		/Requests\/sec/ {rate = $2}
		END {printf "%s %.2f\n", rate, ticks / hz * 1e6 / requests}'
}
run "$PORT_A" >/dev/null; run "$PORT_B" >/dev/null   # warm-up
a=() b=() ca=() cb=()
for round in $(seq "$ROUNDS"); do
	read -r rate cpu < <(run "$PORT_A"); a+=("$rate"); ca+=("$cpu")
	read -r rate cpu < <(run "$PORT_B"); b+=("$rate"); cb+=("$cpu")
	echo "round $round: A ${a[-1]} req/s ${ca[-1]} us CPU/req, B ${b[-1]} req/s ${cb[-1]} us CPU/req"
done
ma=$(median "${a[@]}") mb=$(median "${b[@]}") mca=$(median "${ca[@]}") mcb=$(median "${cb[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b/a}'; }
echo "median A $ma req/s $mca us CPU/req; B $mb req/s $mcb us CPU/req"
echo "B/A: rate $(ratio "$ma" "$mb"), CPU per request $(ratio "$mca" "$mcb") ($CONNECTIONS connections, ${SECONDS_PER_RUN}s runs, $ROUNDS rounds)"
