# Shared helpers for the bench/ scripts: a private redis-server, free ports, cleanup.
# Sourced, not run. Every script starts its own redis-server (its own port and directory)
# and stops everything it started on exit, even when interrupted.

set -euo pipefail

BENCH_DIR=$(mktemp -d /tmp/kvd-bench.XXXXXX)
BENCH_PIDS=()

bench_cleanup() {
    for pid in "${BENCH_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$BENCH_DIR"
}
trap bench_cleanup EXIT INT TERM

# Prints a TCP port nobody listens on (the kernel picks it).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds or the deadline passes.
wait_for() {
    local what=$1 seconds=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            echo "bench: timed out waiting for $what" >&2
            exit 1
        fi
        sleep 0.05
    done
}

# warm_cache PORT [CONNECTIONS]: reads every key of $BENCH_DIR/hot.txt in order, WARM_PASSES times
# (default 6), through the kvd on PORT (50 connections unless CONNECTIONS): a near-cache in the state
# a long run of a skewed load leaves it (a key is cached from a worker's second read of it on).
warm_cache() {
    local port=$1 connections=${2:-50} pass
    for ((pass = 0; pass < ${WARM_PASSES:-6}; pass++)); do
        "$BIN/kvbench" run --url "http://127.0.0.1:$port" --keys "$BENCH_DIR/hot.txt" --sequential \
            --requests "$(wc -l < "$BENCH_DIR/hot.txt")" --concurrency "$connections" --max-error-rate 0 > /dev/null
    done
}

# median VALUE...: the median of the numbers given (the mean of the two middle ones for an even count).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# start_redis [REDIS_ARGUMENT...]: a private redis-server without persistence; sets REDIS_PORT
# and REDIS_PID.
start_redis() {
    REDIS_PORT=$(free_port)
    mkdir -p "$BENCH_DIR/redis-$REDIS_PORT"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$BENCH_DIR/redis-$REDIS_PORT" \
        --save '' --appendonly no --logfile "$BENCH_DIR/redis-$REDIS_PORT/redis.log" "$@" &
    REDIS_PID=$!
    BENCH_PIDS+=($REDIS_PID)
    wait_for "redis-server on port $REDIS_PORT" 10 redis-cli -p "$REDIS_PORT" ping
}

# kvd_start NAME KVD TEXT [READY_PATH]: a kvd named NAME on a free port; its configuration is
# [http] port, idle timeout off and THREADS worker threads when set, then TEXT (more [http] lines
# and the other sections, backslash escapes such as \n expanded), then [log] level = warning.
# Sets KVD_PORTS[NAME] and KVD_PIDS[NAME] once READY_PATH (default /healthz) answers 200.
declare -A KVD_PORTS KVD_PIDS
kvd_start() {
    local name=$1 kvd=$2 text=$3 ready=${4:-/healthz} port
    port=$(free_port)
    {
        echo "[http]"
        echo "port = $port"
        echo "idle_timeout_s = 0"
        [ -n "${THREADS:-}" ] && echo "threads = $THREADS"
        printf '%b' "$text"
        echo "[log]"
        echo "level = warning"
    } > "$BENCH_DIR/kvd-$name.conf"
    "$kvd" --config "$BENCH_DIR/kvd-$name.conf" 2>> "$BENCH_DIR/kvd-$name.log" &
    BENCH_PIDS+=($!)
    KVD_PIDS[$name]=$!
    KVD_PORTS[$name]=$port
    wait_for "kvd ($name) on port $port" 15 curl -sf "http://127.0.0.1:$port$ready"
}

# start_kvd KVD [LINE...]: one kvd against the private redis-server (kvd_start), each LINE added
# to [http] (e.g. "polling = epoll"). Sets KVD_PORT and KVD_PID.
start_kvd() {
    local kvd=$1 lines="" line
    shift
    for line in "$@"; do lines+="$line\n"; done
    kvd_start main "$kvd" "${lines}[redis]\nport = $REDIS_PORT\n"
    KVD_PORT=${KVD_PORTS[main]} KVD_PID=${KVD_PIDS[main]}
}

# cpu_ticks PID...: user + system CPU time of the processes, summed, in clock ticks (getconf CLK_TCK).
cpu_ticks() {
    local sum=0 pid
    for pid in "$@"; do sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
    echo "$sum"
}

# metric_total NAME: the sum over its labels (workers) of /metrics series NAME, from the exposition on stdin.
metric_total() {
    awk -v name="$1" '$1 ~ "^"name"\\{" { total += $2 } END { printf "%d", total }'
}

# require_tools KVD: sets BIN to KVD's folder, where kvd, kvbench and kvload must be (else exit 1).
require_tools() {
    BIN=$(dirname "$1")
    local tool
    for tool in "$1" "$BIN/kvbench" "$BIN/kvload"; do
        [ -x "$tool" ] || { echo "bench: no $tool (run: make release)" >&2; exit 1; }
    done
}

# generate_and_load PAIRS [LAYOUT]: `kvbench gen --seed 42` writes PAIRS pairs to
# $BENCH_DIR/data.txt, and kvload loads them into the private redis-server (hash layout, or LAYOUT).
generate_and_load() {
    echo "# generating (kvbench gen --seed 42) and loading (kvload, ${2:-hash} layout) $1 pairs into redis-server :$REDIS_PORT"
    "$BIN/kvbench" gen --count "$1" --seed 42 -o "$BENCH_DIR/data.txt"
    load_data "$BIN/kvload" "$BENCH_DIR/data.txt" "${2:-hash}"
}

# load_data KVLOAD FILE [LAYOUT]: loads the seed-format FILE into the private redis-server with
# the given kvload binary (the hash "data", or LAYOUT).
load_data() {
    "$1" --config /dev/null --host 127.0.0.1 --port "$REDIS_PORT" --layout "${3:-hash}" --quiet "$2" > /dev/null
}
