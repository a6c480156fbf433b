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

# start_kvd KVD [LINE...]: kvd on a free port against the private redis-server, idle timeout off,
# THREADS worker threads when set, log level warning; each LINE is added to [http] (e.g.
# "polling = epoll"). Sets KVD_PORT and KVD_PID once /healthz answers.
start_kvd() {
    local kvd=$1
    shift
    KVD_PORT=$(free_port)
    {
        echo "[http]"
        echo "port = $KVD_PORT"
        echo "idle_timeout_s = 0"
        [ -n "${THREADS:-}" ] && echo "threads = $THREADS"
        local line
        for line in "$@"; do echo "$line"; done
        echo "[redis]"
        echo "port = $REDIS_PORT"
        echo "[log]"
        echo "level = warning"
    } > "$BENCH_DIR/kvd.conf"
    "$kvd" --config "$BENCH_DIR/kvd.conf" 2> "$BENCH_DIR/kvd.log" &
    KVD_PID=$!
    BENCH_PIDS+=($KVD_PID)
    wait_for "kvd on port $KVD_PORT" 10 curl -sf "http://127.0.0.1:$KVD_PORT/healthz"
}

# load_data KVLOAD FILE: loads the seed-format FILE into the hash "data" of the private
# redis-server with the given kvload binary.
load_data() {
    "$1" --config /dev/null --host 127.0.0.1 --port "$REDIS_PORT" --quiet "$2" >/dev/null
}
