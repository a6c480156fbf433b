#!/usr/bin/env bash
# An A/B of two kvd binaries with the near-cache on, for a change whose effect is a few percent:
# many short runs, the two binaries back to back in every round (which goes first alternates),
# and the candidate / reference ratio of each pair. A host whose other tenants move a run's rate
# by a quarter moves both runs of a pair alike, so the pairs' ratios spread far less than the
# rates; the script prints their median and quartiles, for the rate and for kvd's CPU per request.
#
#   bench/cache-ab.sh REFERENCE_KVD CANDIDATE_KVD     (kvbench and kvload beside REFERENCE_KVD)
#
# Environment: PAIRS (1000000; hash layout, as bench/cache-bench.sh), ROUNDS (12), DURATION
# seconds per run (3), CONNECTIONS (50), ZIPF (0.99), RUNS (the loads, among uniform, zipf and
# hot, as bench/cache-bench.sh names them; default "zipf hot"), MAX_BYTES, WARM_KEYS (300000),
# WARM_PASSES (6): both caches are warmed as bench/cache-bench.sh warms its cache-on kvd.
source "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || { echo "usage: $0 REFERENCE_KVD CANDIDATE_KVD" >&2; exit 64; }
REFERENCE=$1 CANDIDATE=$2
require_tools "$REFERENCE"
[ -x "$CANDIDATE" ] || { echo "bench: no $CANDIDATE" >&2; exit 66; }
PAIRS=${PAIRS:-1000000} ROUNDS=${ROUNDS:-12} DURATION=${DURATION:-3} CONNECTIONS=${CONNECTIONS:-50}
ZIPF=${ZIPF:-0.99} RUNS=${RUNS:-zipf hot}

start_redis
generate_and_load "$PAIRS" hash
for name in ref cand; do
    binary=$REFERENCE
    [ "$name" = cand ] && binary=$CANDIDATE
    kvd_start "$name" "$binary" "[redis]\nport = $REDIS_PORT\nlayout = hash\n[cache]\nenabled = yes\n${MAX_BYTES:+max_bytes = $MAX_BYTES\n}"
done
head -n "${WARM_KEYS:-300000}" "$BENCH_DIR/data.txt" > "$BENCH_DIR/hot.txt"
warm_cache "${KVD_PORTS[ref]}" "$CONNECTIONS"
warm_cache "${KVD_PORTS[cand]}" "$CONNECTIONS"

# one NAME RUN SEED: one run against kvd NAME; appends "requests/s µs-of-kvd-CPU-per-request" to RUN.NAME.
one() {
    local name=$1 run=$2 seed=$3 ticks rate requests args
    case $run in
        uniform) args=(--keys "$BENCH_DIR/data.txt") ;;
        zipf) args=(--keys "$BENCH_DIR/data.txt" --zipf "$ZIPF") ;;
        hot) args=(--keys "$BENCH_DIR/hot.txt" --zipf "$ZIPF") ;;
        *) echo "bench: unknown run $run" >&2; exit 64 ;;
    esac
    ticks=$(cpu_ticks "${KVD_PIDS[$name]}")
    read -r rate requests < <("$BIN/kvbench" run --url "http://127.0.0.1:${KVD_PORTS[$name]}" --concurrency "$CONNECTIONS" \
        --duration "$DURATION" --json --max-error-rate 0 --seed "$seed" "${args[@]}" |
        python3 -c 'import json, sys; r = json.load(sys.stdin); print("%.0f %d" % (r["requests_per_second"], r["requests"]))')
    ticks=$(($(cpu_ticks "${KVD_PIDS[$name]}") - ticks))
    awk -v r="$rate" -v n="$requests" -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%s %.3f\n", r, t / hz * 1e6 / n }' >> "$BENCH_DIR/$run.$name"
}

echo "# kvd A/B | $(nproc) CPUs | $ROUNDS rounds of ${DURATION}s per run | $CONNECTIONS connections | load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 0; r < ROUNDS; r++)); do
    for run in $RUNS; do
        if ((r % 2 == 0)); then one ref "$run" "$r"; one cand "$run" "$r"; else one cand "$run" "$r"; one ref "$run" "$r"; fi
    done
done

# quartiles FILE: "q1 median q3" of the numbers in FILE.
quartiles() { sort -g "$1" | awk '{ v[NR] = $1 } END { printf "%.3f %.3f %.3f", v[int((NR + 3) / 4)], (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[int((3 * NR + 3) / 4)] }'; }
printf "%-8s | %10s %10s | %-23s | %-23s\n" run "ref req/s" "cand req/s" "cand/ref rate q1 med q3" "cand/ref kvd CPU/req"
for run in $RUNS; do
    paste -d' ' "$BENCH_DIR/$run.cand" "$BENCH_DIR/$run.ref" | awk '{ print $1 / $3 > "'"$BENCH_DIR/$run.rate"'"; print $2 / $4 > "'"$BENCH_DIR/$run.cpu"'" }'
    printf "%-8s | %10.0f %10.0f | %-23s | %-23s\n" "$run" "$(median $(cut -d' ' -f1 "$BENCH_DIR/$run.ref"))" \
        "$(median $(cut -d' ' -f1 "$BENCH_DIR/$run.cand"))" "$(quartiles "$BENCH_DIR/$run.rate")" "$(quartiles "$BENCH_DIR/$run.cpu")"
done
echo "# each round, req/s: $(for run in $RUNS; do printf '%s ref %s cand %s | ' "$run" "$(cut -d' ' -f1 "$BENCH_DIR/$run.ref" | xargs)" "$(cut -d' ' -f1 "$BENCH_DIR/$run.cand" | xargs)"; done)"
