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

THREADS=${THREADS:-2}
kvd_start A "$A" "[redis]\nport = $REDIS_PORT\n"
kvd_start B "$B" "[redis]\nport = $REDIS_PORT\n"

# run A|B: prints "requests/s CPU-microseconds-per-request".
run() {
	local before after output
	before=$(cpu_ticks "${KVD_PIDS[$1]}")
	output=$(wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" "http://127.0.0.1:${KVD_PORTS[$1]}/get/$KEY")
	after=$(cpu_ticks "${KVD_PIDS[$1]}")
	echo "$output" | awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
		/requests in/ {requests = $1}
		/Requests\/sec/ {rate = $2}
		END {printf "%s %.2f\n", rate, ticks / hz * 1e6 / requests}'
}
run A >/dev/null; run B >/dev/null   # warm-up
a=() b=() ca=() cb=()
for round in $(seq "$ROUNDS"); do
	read -r rate cpu < <(run A); a+=("$rate"); ca+=("$cpu")
	read -r rate cpu < <(run B); b+=("$rate"); cb+=("$cpu")
	echo "round $round: A ${a[-1]} req/s ${ca[-1]} us CPU/req, B ${b[-1]} req/s ${cb[-1]} us CPU/req"
done
ma=$(median "${a[@]}") mb=$(median "${b[@]}") mca=$(median "${ca[@]}") mcb=$(median "${cb[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b/a}'; }
echo "median A $ma req/s $mca us CPU/req; B $mb req/s $mcb us CPU/req"
echo "B/A: rate $(ratio "$ma" "$mb"), CPU per request $(ratio "$mca" "$mcb") ($CONNECTIONS connections, ${SECONDS_PER_RUN}s runs, $ROUNDS rounds)"
