#!/usr/bin/env bash
# The near-cache's bars (issue 13), in one run at 50 connections over PAIRS pairs:
#   /healthz                      (the HTTP ceiling: no Redis)
#   GET, cache off                (uniformly random keys)
#   GET, cache on, uniform keys   (mostly misses: bar >= 0.95 x cache off)
#   GET, cache on, Zipf s = 0.99  (mostly hits: bar >= 0.90 x /healthz)
#   GET, cache on, Zipf s = 0.99 over the warmed keys only (every GET a hit: what a hit costs
#                                 against /healthz, without the cold misses of the Zipf tail)
#
#   bench/cache-bench.sh [KVD_BINARY]        (default .build/release/kvd; `make release` first)
#
# Environment: PAIRS (1000000), DURATION seconds per measurement (5), ROUNDS (3; runs interleaved,
# the median of each is reported), CONNECTIONS (50), ZIPF (0.99), KVBENCH_THREADS (1), THREADS (kvd
# worker threads; default the CPU count), MAX_BYTES ([cache] max_bytes; default kvd's, 256 MiB),
# WARM_KEYS (300000) and WARM_PASSES (6): before the measurements the hottest WARM_KEYS keys (the
# first of the file, which kvbench's Zipf draws most) are read WARM_PASSES times in order, so that
# each worker's cache is in the state a long-running kvd reaches under this load (Zipf draws alone
# would take minutes: a key is cached at its second read by a worker, each worker sees about
# half of the requests, and the tail is long).
# LAYOUT (hash; or string: one Redis key per pair, so Redis's client tracking remembers each key
# read with CACHING yes; the last line prints the size of its tracking table).
# Two kvd processes share one private redis-server (LAYOUT): one with [cache] enabled = no,
# one with yes; each measurement runs kvbench against one of them while the other idles.
# CANDIDATE=OTHER_KVD: an A/B in the same run: a third kvd, OTHER_KVD with the cache on, warmed the
# same way, takes the three cache-on runs too (before the reference's in odd rounds, after it in
# even ones); its rows, its ratios against the same /healthz and cache-off runs, and its rates
# against the reference's (candidate / reference, paired per round) are printed after the others.
# CANDIDATE_WARM_KEYS (WARM_KEYS): the hottest keys the candidate's warm-up reads, for a candidate
# whose steady state holds more or fewer of them (bench/cache-steady.sh measures it); its
# warmed-keys run draws from the reference's WARM_KEYS keys all the same.
source "$(dirname "$0")/lib.sh"

KVD=${1:-.build/release/kvd}
PAIRS=${PAIRS:-1000000}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-50}
ZIPF=${ZIPF:-0.99}
KVBENCH_THREADS=${KVBENCH_THREADS:-1}

require_tools "$KVD"

LAYOUT=${LAYOUT:-hash}
start_redis
generate_and_load "$PAIRS" "$LAYOUT"

# A kvd with the cache off and one with it on (the defaults, or MAX_BYTES), on the one redis-server.
for mode in off:no on:yes; do
    kvd_start "${mode%%:*}" "$KVD" "[redis]\nport = $REDIS_PORT\nlayout = $LAYOUT\n[cache]\nenabled = ${mode#*:}\n${MAX_BYTES:+max_bytes = $MAX_BYTES\n}"
done
PORT_on=${KVD_PORTS[on]} PID_on=${KVD_PIDS[on]} PORT_off=${KVD_PORTS[off]} PID_off=${KVD_PIDS[off]}
CANDIDATE=${CANDIDATE:-}
if [ -n "$CANDIDATE" ]; then
    kvd_start cand "$CANDIDATE" "[redis]\nport = $REDIS_PORT\nlayout = $LAYOUT\n[cache]\nenabled = yes\n${MAX_BYTES:+max_bytes = $MAX_BYTES\n}"
fi

# run_kvbench PORT [KVBENCH_ARGUMENT...]: prints "requests_per_s p50_us p99_us errors".
run_kvbench() {
    local port=$1
    shift
    "$BIN/kvbench" run --url "http://127.0.0.1:$port" --concurrency "$CONNECTIONS" --threads "$KVBENCH_THREADS" \
        --duration "$DURATION" --json --max-error-rate 1 "$@" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("%.0f %d %d %d" % (r["requests_per_second"], r["latency_us"]["p50"], r["latency_us"]["p99"], sum(r["errors"].values())))'
}

# The hot set in every worker's cache before the runs.
head -n "${WARM_KEYS:-300000}" "$BENCH_DIR/data.txt" > "$BENCH_DIR/hot.txt"
warm_cache "$PORT_on" "$CONNECTIONS"
if [ -n "$CANDIDATE" ]; then
    if [ -n "${CANDIDATE_WARM_KEYS:-}" ]; then
        mv "$BENCH_DIR/hot.txt" "$BENCH_DIR/hot-reference.txt"
        head -n "$CANDIDATE_WARM_KEYS" "$BENCH_DIR/data.txt" > "$BENCH_DIR/hot.txt"
        warm_cache "${KVD_PORTS[cand]}" "$CONNECTIONS"
        mv "$BENCH_DIR/hot-reference.txt" "$BENCH_DIR/hot.txt"
    else
        warm_cache "${KVD_PORTS[cand]}" "$CONNECTIONS"
    fi
fi

# cache_counts PORT: prints "hits misses" of the cache-on kvd on PORT (sums over workers).
cache_counts() {
    curl -sf "http://127.0.0.1:$1/metrics" | awk '
        /^kvd_cache_hits_total\{/ { hits += $2 }
        /^kvd_cache_misses_total\{/ { misses += $2 }
        END { printf "%d %d\n", hits, misses }'
}
# counted RUN PORT PID KVBENCH_ARGUMENT...: run_kvbench against the cache-on kvd on PORT, adding its
# hits and misses to RUN.hits and its CPU time per request (user + system, µs: steadier than the
# rate on a noisy machine) to RUN.cpu.
counted() {
    local run=$1 port=$2 pid=$3 before after ticks result
    shift 3
    before=$(cache_counts "$port")
    ticks=$(cpu_ticks "$pid")
    result=$(run_kvbench "$port" "$@")
    ticks=$(($(cpu_ticks "$pid") - ticks))
    after=$(cache_counts "$port")
    echo "$result"
    echo "$before $after" | awk '{ print $3 - $1, $4 - $2 }' >> "$BENCH_DIR/$run.hits"
    echo "$before $after" | awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", t / hz * 1e6 / ($3 - $1 + $4 - $2) }' >> "$BENCH_DIR/$run.cpu"
}

echo "# kvd $("$KVD" --version) | $(nproc) CPUs | ${DURATION}s per run | $ROUNDS round(s) | $CONNECTIONS connections | kvbench --threads $KVBENCH_THREADS | load average $(cut -d' ' -f1-3 /proc/loadavg)"
CACHE_RUNS="uniform zipf hot${CANDIDATE:+ uniform_b zipf_b hot_b}"
RUNS="healthz off $CACHE_RUNS"
for run in $RUNS; do : > "$BENCH_DIR/$run"; done
# cache_runs SUFFIX NAME ROUND: the three cache-on runs against the kvd started as NAME, into RUN$SUFFIX.
cache_runs() {
    local port=${KVD_PORTS[$2]} pid=${KVD_PIDS[$2]}
    counted "uniform$1" "$port" "$pid" --keys "$BENCH_DIR/data.txt" --seed "$3" >> "$BENCH_DIR/uniform$1"
    counted "zipf$1" "$port" "$pid" --keys "$BENCH_DIR/data.txt" --zipf "$ZIPF" --seed "$3" >> "$BENCH_DIR/zipf$1"
    counted "hot$1" "$port" "$pid" --keys "$BENCH_DIR/hot.txt" --zipf "$ZIPF" --seed "$3" >> "$BENCH_DIR/hot$1"
}
for ((r = 0; r < ROUNDS; r++)); do
    run_kvbench "$PORT_on" --path /healthz >> "$BENCH_DIR/healthz"
    run_kvbench "$PORT_off" --keys "$BENCH_DIR/data.txt" --seed "$r" >> "$BENCH_DIR/off"
    if [ -n "$CANDIDATE" ] && ((r % 2 == 1)); then cache_runs _b cand "$r"; fi
    cache_runs "" on "$r"
    if [ -n "$CANDIDATE" ] && ((r % 2 == 0)); then cache_runs _b cand "$r"; fi
done
if awk '$4 > 0 { bad = 1 } END { exit !bad }' $(for run in $RUNS; do echo "$BENCH_DIR/$run"; done); then
    echo "bench: kvbench saw errors" >&2
    exit 1
fi

declare -A rate
printf "%-34s | %10s %8s %8s\n" "run" "req/s" "p50 us" "p99 us"
for run in $RUNS; do
    read -r rps p50 p99 < <(for f in 1 2 3; do median $(cut -d' ' -f$f "$BENCH_DIR/$run"); done | xargs)
    rate[$run]=$rps
    case $run in
        healthz) label="/healthz" ;;
        off) label="GET, cache off, uniform" ;;
        uniform) label="GET, cache on, uniform" ;;
        zipf) label="GET, cache on, Zipf s=$ZIPF" ;;
        hot) label="GET, cache on, Zipf, warmed keys" ;;
        *_b) label="candidate: ${run%_b}" ;;
    esac
    printf "%-34s | %10.0f %8.0f %8.0f\n" "$label" "$rps" "$p50" "$p99"
done
awk -v z="${rate[zipf]}" -v h="${rate[healthz]}" -v u="${rate[uniform]}" -v o="${rate[off]}" -v w="${rate[hot]}" -v s="$ZIPF" 'BEGIN {
    printf "Zipf %s, cache on / healthz   = %.3f (bar >= 0.90)\n", s, z / h
    printf "uniform, cache on / cache off = %.3f (bar >= 0.95)\n", u / o
    printf "Zipf %s, cache on / cache off = %.3f\n", s, z / o
    printf "Zipf %s over the warmed keys (hits only) / healthz = %.3f\n", s, w / h
}'
# Paired: each round's runs are adjacent in time, so a ratio per round cancels slow drifts of the
# machine (other tenants of the host); the median of those is printed beside the ratio of medians.
paired() { paste -d' ' <(cut -d' ' -f1 "$BENCH_DIR/$1") <(cut -d' ' -f1 "$BENCH_DIR/$2") | awk '{ print $1 / $2 }' | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "paired (median of per-round ratios): Zipf / healthz = $(paired zipf healthz), uniform on / off = $(paired uniform off), warmed keys / healthz = $(paired hot healthz)"
if [ -n "$CANDIDATE" ]; then
    awk -v z="${rate[zipf_b]}" -v h="${rate[healthz]}" -v u="${rate[uniform_b]}" -v o="${rate[off]}" -v w="${rate[hot_b]}" -v s="$ZIPF" 'BEGIN {
        printf "candidate: Zipf %s / healthz = %.3f, uniform on / off = %.3f, hits only / healthz = %.3f\n", s, z / h, u / o, w / h
    }'
    echo "candidate / reference, paired per round: uniform $(paired uniform_b uniform), Zipf $(paired zipf_b zipf), warmed keys $(paired hot_b hot)"
    echo "candidate / reference, kvd CPU per request, paired per round: uniform $(paired uniform_b.cpu uniform.cpu), Zipf $(paired zipf_b.cpu zipf.cpu), warmed keys $(paired hot_b.cpu hot.cpu)"
fi
echo "# cache-on kvd CPU per request (user + system, µs; medians): $(for run in $CACHE_RUNS; do printf '%s %s  ' "$run" "$(median $(cat "$BENCH_DIR/$run.cpu"))"; done)"
echo "# each round, req/s: $(for run in $RUNS; do printf '%s %s | ' "$run" "$(cut -d' ' -f1 "$BENCH_DIR/$run" | xargs)"; done)"
for run in $CACHE_RUNS; do
    awk -v run="$run" '{ hits += $1; misses += $2 } END { printf "# %s runs: cache hit rate %.1f%% (%d hits, %d misses)\n", run, 100 * hits / (hits + misses), hits, misses }' "$BENCH_DIR/$run.hits"
done
metrics=$(curl -sf "http://127.0.0.1:$PORT_on/metrics")
sum() { metric_total "$1" <<< "$metrics"; }
echo "# cache-on kvd: hits $(sum kvd_cache_hits_total), misses $(sum kvd_cache_misses_total), evictions $(sum kvd_cache_evictions_total), $(sum kvd_cache_entries) entries, $(( $(sum kvd_cache_bytes) / 1048576 )) MiB held; peak RSS $(awk '/^VmHWM:/ { print int($2 / 1024) }' "/proc/$PID_on/status") MiB (cache off: $(awk '/^VmHWM:/ { print int($2 / 1024) }' "/proc/$PID_off/status") MiB)"
echo "# redis-server's client tracking table: $(redis-cli -p "$REDIS_PORT" info stats | tr -d '\r' | grep -E '^tracking_total_(keys|items)' | xargs)"
