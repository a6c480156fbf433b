#!/usr/bin/env bash
# Stress and abuse of a release kvd (make stress; not in CI): slowloris, a connection flood past the
# connection limit, a verifying soak with Redis killed twice, big values. It starts a private
# redis-server and kvd on free loopback ports (bench/lib.sh), sends traffic only to 127.0.0.1, prints
# kvd's RSS and open descriptors before and after each phase, what was served and refused, and the
# wrong answers (which must be 0). Every check that fails is listed at the end, and the exit status
# is then 1: the script reports what it finds, it does not tune itself to pass.
#
#   scripts/stress.sh [BIN_DIR]        (BIN_DIR holds kvd, kvload, kvbench; default .build/release)
#
# Environment (defaults in brackets):
#   STRESS_PHASES         phases to run, in order ["slowloris flood bodies soak big amplify churn"]
#   STRESS_CACHE          [no]: yes turns kvd's near-cache on ([cache] enabled) for every phase; the
#                         churn phase turns it on by itself when it is off
#   SLOWLORIS_CONNECTIONS [1100]  SLOWLORIS_SECONDS [40]  SLOWLORIS_INTERVAL [3]  (one byte per interval)
#   FLOOD_EXTRA           connections past connection_limit [200]; CONNECTION_LIMIT [1000, kvd's default]
#   SOAK_SECONDS          [180]; Redis is killed (SIGKILL) at a third and two thirds, down for 2 s each
#   BIG_BYTES             [10485760]; BIG_CLIENTS [8]; BIG_SMALL_GET_MAX_S: slowest small GET allowed
#                         during the big GETs [0.5]; BIG_RSS_AFTER_MIB: RSS growth allowed once they are
#                         done [32]; BIG_PEAK_RSS_MIB: peak RSS allowed while clients do not read
#                         (unset: printed, not checked)
#   BODIES_ENDLESS [200] BODIES_TRICKLING [200] BODIES_SECONDS [45] BODIES_INTERVAL [1]: connections
#                         sending an endless chunked body as fast as kvd reads, and ones trickling a
#                         byte of body per interval (kvd's request_body_timeout_s is its default, 30 s)
#   AMPLIFY_CLIENTS [4] AMPLIFY_KEYS [1000]: POST /mget naming the big value AMPLIFY_KEYS times, at once;
#                         kvd's peak RSS may grow by at most 128 MiB per client
#   CHURN_SECONDS [60] CHURN_WRITE_INTERVAL [10] CHURN_RELOAD_INTERVAL [25]: the near-cache under a
#                         verifying load (uniform keys, 20 connections) while a writer changes a field
#                         of the hash every WRITE_INTERVAL s (each write empties every worker's cache,
#                         which refills: its index grows again past 65,536 buckets, those tables
#                         ordered from the kvd-tables thread) and [cache] max_bytes is changed and
#                         reloaded (SIGHUP: the cache is replaced) every RELOAD_INTERVAL s; no wrong
#                         answer, no error, the thread count back to where it was
#   PAIRS                 pairs loaded [100000]
#   STRESS_THREADS        kvd's [http] threads [kvd's default: the CPU count]; 64 is how issue 9 found
#                         connections refused below the limit (and 504s from select mode)
source "$(dirname "$0")/../bench/lib.sh"
set +e  # checks decide the exit status, not the first failing command

BIN=${1:-.build/release}
PHASES=${STRESS_PHASES:-"slowloris flood bodies soak big amplify churn"}
STRESS_CACHE=${STRESS_CACHE:-no}
CHURN_SECONDS=${CHURN_SECONDS:-60}
CHURN_WRITE_INTERVAL=${CHURN_WRITE_INTERVAL:-10}
CHURN_RELOAD_INTERVAL=${CHURN_RELOAD_INTERVAL:-25}
SLOWLORIS_CONNECTIONS=${SLOWLORIS_CONNECTIONS:-1100}
SLOWLORIS_SECONDS=${SLOWLORIS_SECONDS:-40}
SLOWLORIS_INTERVAL=${SLOWLORIS_INTERVAL:-3}
CONNECTION_LIMIT=${CONNECTION_LIMIT:-1000}
FLOOD_EXTRA=${FLOOD_EXTRA:-200}
SOAK_SECONDS=${SOAK_SECONDS:-180}
BIG_BYTES=${BIG_BYTES:-10485760}
BIG_CLIENTS=${BIG_CLIENTS:-8}
BIG_SMALL_GET_MAX_S=${BIG_SMALL_GET_MAX_S:-0.5}
BIG_RSS_AFTER_MIB=${BIG_RSS_AFTER_MIB:-32}
BODIES_ENDLESS=${BODIES_ENDLESS:-200}
BODIES_TRICKLING=${BODIES_TRICKLING:-200}
BODIES_SECONDS=${BODIES_SECONDS:-45}
BODIES_INTERVAL=${BODIES_INTERVAL:-1}
AMPLIFY_CLIENTS=${AMPLIFY_CLIENTS:-4}
AMPLIFY_KEYS=${AMPLIFY_KEYS:-1000}
PAIRS=${PAIRS:-100000}
CLIENT="$(dirname "$0")/stress_client.py"

for tool in kvd kvload kvbench; do
    [ -x "$BIN/$tool" ] || { echo "stress: no $BIN/$tool (run: make release)" >&2; exit 1; }
done
# The flood and slowloris hold over a thousand sockets, in this shell's children and in kvd.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

FAILED=()
# check NAME OK DETAIL: prints one result line; OK is 1 or 0.
check() {
    if [ "$2" = 1 ]; then
        printf '  PASS  %-44s %s\n' "$1" "$3"
    else
        printf '  FAIL  %-44s %s\n' "$1" "$3"
        FAILED+=("$1: $3")
    fi
}
# field JSON KEY: one value of a JSON object (nested keys with dots).
field() {
    python3 -c 'import json, sys
try:
    value = json.loads(sys.argv[1])
except ValueError:
    value = None  # the client failed: its traceback is above
for part in sys.argv[2].split("."):
    value = value.get(part) if isinstance(value, dict) else None
print(json.dumps(value) if isinstance(value, (dict, list)) else value)' "$1" "$2"
}

kvd_rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$KVD_PID/status" 2>/dev/null; }
kvd_fds() { ls "/proc/$KVD_PID/fd" 2>/dev/null | wc -l; }
snapshot() { echo "  kvd $1: RSS $(kvd_rss_mib) MiB, $(kvd_fds) open descriptors"; }
kvd_alive() { kill -0 "$KVD_PID" 2>/dev/null; }
kvd_threads() { ls "/proc/$KVD_PID/task" 2>/dev/null | wc -l; }
# metric NAME: the sum of a series over its labels in kvd's /metrics.
metric() { curl -sf "http://127.0.0.1:$KVD_PORT/metrics" | metric_total "$1"; }
# wait_tracking: waits (at most 10 s) until every worker's near-cache tracks (its subscriber
# connection open and confirmed). A worker opens its Redis connections at its first lookup: GETs
# on new connections reach every worker (SO_REUSEPORT spreads them).
tracking_everywhere() {
    curl -sf "http://127.0.0.1:$KVD_PORT/get/$SMALL_KEY" > /dev/null
    curl -sf "http://127.0.0.1:$KVD_PORT/metrics" | awk '/^kvd_cache_tracking\{/ { n++; on += $2 } END { exit !(n > 0 && on == n) }'
}
wait_tracking() { wait_for "the near-cache's tracking in every worker" 10 tracking_everywhere; }
# settle_fds: waits (at most 20 s) for kvd's descriptors to come back to the baseline; prints the count.
settle_fds() {
    local deadline=$((SECONDS + 20)) count
    while count=$(kvd_fds); ((count > BASE_FDS + 2 && SECONDS < deadline)); do sleep 0.2; done
    echo "$count"
}
check_recovered() {
    local fds
    fds=$(settle_fds)
    check "$1: kvd alive" "$(kvd_alive && echo 1 || echo 0)" "pid $KVD_PID"
    check "$1: descriptors back to baseline" "$(((fds <= BASE_FDS + 2)) && echo 1 || echo 0)" "$fds open (baseline $BASE_FDS)"
    local status
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$KVD_PORT/get/$SMALL_KEY")
    check "$1: a normal GET is served afterwards" "$([ "$status" = 200 ] && echo 1 || echo 0)" "status $status"
}

restart_redis() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$BENCH_DIR/redis-$REDIS_PORT" \
        --save '' --appendonly no --logfile "$BENCH_DIR/redis-$REDIS_PORT/redis.log" &
    REDIS_PID=$!
    BENCH_PIDS+=("$REDIS_PID")
    wait_for "redis-server on port $REDIS_PORT" 10 redis-cli -p "$REDIS_PORT" ping
}

echo "# stress: kvd $BIN/kvd, phases: $PHASES"
start_redis
REDIS_PID=${BENCH_PIDS[-1]}
"$BIN/kvbench" gen --count "$PAIRS" --seed 9 -o "$BENCH_DIR/data.txt"
load_data "$BIN/kvload" "$BENCH_DIR/data.txt"
SMALL_KEY=$(head -1 "$BENCH_DIR/data.txt" | cut -d' ' -f1)
# The big value: printable ASCII, so its JSON answer is the value in quotes.
python3 -c 'import random, sys; random.seed(1); sys.stdout.write("".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(int(sys.argv[1]))))' \
    "$BIG_BYTES" > "$BENCH_DIR/big.txt"
redis-cli -p "$REDIS_PORT" -x hset data stress-big < "$BENCH_DIR/big.txt" >/dev/null
# Written to the RDB so that a restarted Redis has the data again (the soak kills it).
redis-cli -p "$REDIS_PORT" save >/dev/null

KVD_PORT=$(free_port)
# write_config CACHE: kvd's configuration, the near-cache on (yes) or off (no).
write_config() {
    cat > "$BENCH_DIR/kvd.conf" <<EOF
[http]
port = $KVD_PORT
connection_limit = $CONNECTION_LIMIT
${STRESS_THREADS:+threads = $STRESS_THREADS}
[redis]
port = $REDIS_PORT
[cache]
enabled = $1
[log]
level = warning
EOF
}
write_config "$STRESS_CACHE"
"$BIN/kvd" --config "$BENCH_DIR/kvd.conf" 2> "$BENCH_DIR/kvd.log" &
KVD_PID=$!
BENCH_PIDS+=("$KVD_PID")
wait_for "kvd on port $KVD_PORT" 10 curl -sf "http://127.0.0.1:$KVD_PORT/healthz"
curl -sf "http://127.0.0.1:$KVD_PORT/get/$SMALL_KEY" >/dev/null || { echo "stress: kvd cannot read $SMALL_KEY" >&2; exit 1; }
[ "$STRESS_CACHE" = yes ] && wait_tracking
BASE_FDS=$(kvd_fds)
snapshot "at start"

for phase in $PHASES; do
    case $phase in
    slowloris)
        echo "# slowloris: $SLOWLORIS_CONNECTIONS connections from 127.0.0.1 send an endless request head, one byte every ${SLOWLORIS_INTERVAL} s, for ${SLOWLORIS_SECONDS} s; a normal client on 127.0.0.2 asks once a second"
        snapshot before
        result=$(timeout $((SLOWLORIS_SECONDS + 120)) python3 "$CLIENT" slowloris "$KVD_PORT" "$SLOWLORIS_CONNECTIONS" "$SLOWLORIS_SECONDS" "$SLOWLORIS_INTERVAL" "$SMALL_KEY")
        echo "  $result"
        snapshot "right after"
        still=$(field "$result" slow_still_open_at_end)
        served=$(field "$result" normal_served)
        failed=$(field "$result" normal_failed)
        check "slowloris: no slow head open after ${SLOWLORIS_SECONDS} s" "$([ "$still" = 0 ] && echo 1 || echo 0)" \
            "$still of $(field "$result" slow_opened) still open (kvd closed $(field "$result" slow_closed_by_kvd), refused $(field "$result" slow_refused_at_connect))"
        check "slowloris: the normal client was served" "$([ "$failed" = 0 ] && [ "${served:-0}" -gt 0 ] && echo 1 || echo 0)" \
            "$served served, $failed failed $(field "$result" normal_failures)"
        check_recovered slowloris
        snapshot after
        ;;
    flood)
        total=$((CONNECTION_LIMIT + FLOOD_EXTRA))
        echo "# flood: $total connections at once (connection_limit $CONNECTION_LIMIT) from 64 addresses, then a GET on each"
        snapshot before
        result=$(timeout 120 python3 "$CLIENT" flood "$KVD_PORT" "$total" 64 "$SMALL_KEY")
        echo "  $result"
        snapshot "right after"
        served=$(field "$result" flood_served)
        check "flood: the connection limit is served in full" "$(((${served:-0} >= CONNECTION_LIMIT)) && echo 1 || echo 0)" \
            "$served served, $(field "$result" flood_refused) refused (limit $CONNECTION_LIMIT)"
        check "flood: no more than the limit served" "$(((${served:-0} <= CONNECTION_LIMIT)) && echo 1 || echo 0)" "$served served"
        check_recovered flood
        snapshot after
        ;;
    soak)
        echo "# soak: kvbench run --verify for ${SOAK_SECONDS} s, 16 connections; Redis killed (SIGKILL) at $((SOAK_SECONDS / 3)) s and $((2 * SOAK_SECONDS / 3)) s, restarted 2 s later"
        snapshot before
        "$BIN/kvbench" run --url "http://127.0.0.1:$KVD_PORT" --keys "$BENCH_DIR/data.txt" --verify \
            --duration "${SOAK_SECONDS}s" --concurrency 16 --json --max-error-rate 1 \
            > "$BENCH_DIR/soak.json" 2> "$BENCH_DIR/soak.err" &
        soak_pid=$!
        soak_start=$SECONDS
        BENCH_PIDS+=("$soak_pid")
        for kill_at in $((SOAK_SECONDS / 3)) $((2 * SOAK_SECONDS / 3)); do
            while ((SECONDS - soak_start < kill_at)); do sleep 0.5; done
            echo "  $(date +%T) kill -9 redis-server (pid $REDIS_PID), kvd RSS $(kvd_rss_mib) MiB, $(kvd_fds) descriptors"
            kill -9 "$REDIS_PID"
            wait "$REDIS_PID" 2>/dev/null
            sleep 2
            restart_redis
            echo "  $(date +%T) redis-server back (pid $REDIS_PID), loading its RDB"
            wait_for "redis-server to load its RDB" 30 sh -c "redis-cli -p $REDIS_PORT info persistence | grep -q '^loading:0'"
            echo "  $(date +%T) redis-server loaded: $(redis-cli -p "$REDIS_PORT" hlen data) fields"
        done
        wait "$soak_pid"
        result=$(cat "$BENCH_DIR/soak.json")
        echo "  requests $(field "$result" requests), status $(field "$result" status), errors $(field "$result" errors), mismatches $(field "$result" mismatches)"
        head -5 "$BENCH_DIR/soak.err" | sed 's/^/  kvbench: /'
        mismatches=$(field "$result" mismatches)
        check "soak: wrong answers" "$([ "$mismatches" = 0 ] && echo 1 || echo 0)" "$mismatches mismatches in $(field "$result" requests) requests"
        bad_gateway=$(field "$result" status.502)
        check "soak: outages answered 503, never 502" "$([ "${bad_gateway:-None}" = None ] && echo 1 || echo 0)" \
            "${bad_gateway:-0} answers 502 (Redis LOADING after a restart is temporary: 503 + Retry-After)"
        responses=$(field "$result" responses)
        check "soak: requests were served" "$([[ "$responses" =~ ^[0-9]+$ ]] && ((responses > 0)) && echo 1 || echo 0)" "$responses responses"
        after=$("$BIN/kvbench" run --url "http://127.0.0.1:$KVD_PORT" --keys "$BENCH_DIR/data.txt" --verify \
            --requests 5000 --concurrency 8 --json --max-error-rate 1 2>/dev/null)
        check "soak: all served and right after the restarts" \
            "$(python3 -c 'import sys; print(int(sys.argv[1] == "0" and float(sys.argv[2]) == 0))' "$(field "$after" mismatches)" "$(field "$after" error_rate)")" \
            "5000 verified GETs: status $(field "$after" status), errors $(field "$after" errors), mismatches $(field "$after" mismatches)"
        check_recovered soak
        snapshot after
        ;;
    big)
        echo "# big values: $BIG_CLIENTS concurrent GETs of a $BIG_BYTES-byte value (checked byte for byte) while a client times small GETs; then $BIG_CLIENTS clients that never read it"
        snapshot before
        rss_before=$(kvd_rss_mib)
        result=$(timeout 200 python3 "$CLIENT" big "$KVD_PORT" "$BIG_CLIENTS" stress-big "$BENCH_DIR/big.txt" "$SMALL_KEY")
        echo "  $result"
        snapshot "right after"
        correct=$(field "$result" big_correct)
        check "big: every big GET answered 200, byte for byte" "$([ "$correct" = "$BIG_CLIENTS" ] && echo 1 || echo 0)" \
            "$correct of $BIG_CLIENTS correct, statuses $(field "$result" big_statuses), wrong $(field "$result" big_wrong)"
        slowest=$(field "$result" normal_max_latency_s)
        check "big: small GETs not starved" \
            "$(python3 -c 'import sys; print(int(float(sys.argv[1]) <= float(sys.argv[2]) and sys.argv[3] == "0"))' "$slowest" "$BIG_SMALL_GET_MAX_S" "$(field "$result" normal_failed)")" \
            "slowest small GET ${slowest} s (limit $BIG_SMALL_GET_MAX_S s), $(field "$result" normal_served) served, $(field "$result" normal_failed) failed $(field "$result" normal_failures)"
        unread=$(timeout 120 python3 "$CLIENT" big-unread "$KVD_PORT" "$BIG_CLIENTS" stress-big 10 "$KVD_PID")
        echo "  $unread"
        peak_mib=$(( $(field "$unread" kvd_peak_rss_kib) / 1024 ))
        echo "  kvd peak RSS while $BIG_CLIENTS clients did not read: $peak_mib MiB"
        if [ -n "${BIG_PEAK_RSS_MIB:-}" ]; then
            check "big: memory held for unread answers bounded" "$(((peak_mib <= BIG_PEAK_RSS_MIB)) && echo 1 || echo 0)" \
                "peak RSS $peak_mib MiB (limit $BIG_PEAK_RSS_MIB MiB)"
        fi
        fds=$(settle_fds)
        sleep 2
        rss_after=$(kvd_rss_mib)
        check "big: memory given back afterwards" \
            "$(python3 -c 'import sys; print(int(float(sys.argv[2]) - float(sys.argv[1]) <= float(sys.argv[3])))' "$rss_before" "$rss_after" "$BIG_RSS_AFTER_MIB")" \
            "RSS $rss_before MiB before, $rss_after MiB after (growth allowed $BIG_RSS_AFTER_MIB MiB)"
        check_recovered big
        snapshot after
        ;;
    bodies)
        echo "# bodies: $BODIES_ENDLESS connections send an endless chunked body, $BODIES_TRICKLING trickle a byte of body every ${BODIES_INTERVAL} s (POST /mget, GET, POST elsewhere), for ${BODIES_SECONDS} s; a normal client on 127.0.0.2 asks once a second"
        snapshot before
        result=$(timeout $((${BODIES_SECONDS%.*} + 120)) python3 "$CLIENT" bodies "$KVD_PORT" "$BODIES_ENDLESS" "$BODIES_TRICKLING" "$BODIES_SECONDS" "$BODIES_INTERVAL" "$SMALL_KEY")
        echo "  $result"
        snapshot "right after"
        for kind in endless trickling; do
            still=$(field "$result" "${kind}_still_open_at_end")
            check "bodies: no $kind body open at the end" "$([ "$still" = 0 ] && echo 1 || echo 0)" \
                "$still still open, $(field "$result" "${kind}_closed_by_kvd") closed by kvd (slowest after $(field "$result" "${kind}_max_seconds_to_close") s)"
        done
        served=$(field "$result" normal_served)
        failed=$(field "$result" normal_failed)
        check "bodies: the normal client was served" "$([ "$failed" = 0 ] && [ "${served:-0}" -gt 0 ] && echo 1 || echo 0)" \
            "$served served, $failed failed $(field "$result" normal_failures)"
        check_recovered bodies
        snapshot after
        ;;
    amplify)
        echo "# amplify: $AMPLIFY_CLIENTS clients at once POST /mget naming the ${BIG_BYTES}-byte value $AMPLIFY_KEYS times"
        snapshot before
        rss_before=$(kvd_rss_mib)
        result=$(timeout 300 python3 "$CLIENT" mget-amplify "$KVD_PORT" "$AMPLIFY_CLIENTS" stress-big "$AMPLIFY_KEYS" "$KVD_PID")
        echo "  $result"
        snapshot "right after"
        peak=$(field "$result" kvd_peak_rss_mib)
        allowed=$(python3 -c 'import sys; print(float(sys.argv[1]) + 128 * int(sys.argv[2]))' "$rss_before" "$AMPLIFY_CLIENTS")
        check "amplify: every batch was refused 413" "$(python3 -c 'import json, sys; s = json.loads(sys.argv[1]); print(int(s.get("413") == int(sys.argv[2])))' "$(field "$result" amplify_statuses)" "$AMPLIFY_CLIENTS")" \
            "statuses $(field "$result" amplify_statuses)"
        check "amplify: kvd's peak RSS stayed bounded" "$(python3 -c 'import sys; print(int(float(sys.argv[1]) <= float(sys.argv[2])))' "$peak" "$allowed")" \
            "peak $peak MiB (RSS $rss_before MiB before; allowed $allowed)"
        check_recovered amplify
        snapshot after
        ;;
    churn)
        echo "# churn: kvbench run --verify (uniform keys, 20 connections) for ${CHURN_SECONDS} s with the near-cache on; a write to the hash every ${CHURN_WRITE_INTERVAL} s, [cache] max_bytes changed and reloaded every ${CHURN_RELOAD_INTERVAL} s"
        snapshot before
        if [ "$STRESS_CACHE" != yes ]; then
            write_config yes
            kill -HUP "$KVD_PID"
            wait_tracking
            # Each worker's subscriber connection is kvd's from now on.
            BASE_FDS=$(kvd_fds)
            echo "  near-cache on: $BASE_FDS open descriptors now (the new baseline)"
        fi
        threads_before=$(kvd_threads)
        flushes_before=$(metric kvd_cache_flushes_total)
        "$BIN/kvbench" run --url "http://127.0.0.1:$KVD_PORT" --keys "$BENCH_DIR/data.txt" --verify \
            --duration "${CHURN_SECONDS}s" --concurrency 20 --json --max-error-rate 1 \
            > "$BENCH_DIR/churn.json" 2> "$BENCH_DIR/churn.err" &
        churn_pid=$!
        BENCH_PIDS+=("$churn_pid")
        # The writer and the reloads, on their own clocks, until the load ends. The writer changes a
        # field no client reads: in the hash layout a write to the hash invalidates every cached value.
        python3 - "$REDIS_PORT" "$KVD_PID" "$BENCH_DIR/kvd.conf" "$churn_pid" "$CHURN_WRITE_INTERVAL" "$CHURN_RELOAD_INTERVAL" "$KVD_PORT" \
            > "$BENCH_DIR/churn-driver.out" <<'DRIVER' &
import os, re, signal, socket, sys, time, urllib.request
port, kvd, conf, load = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
write_every, reload_every, metrics = float(sys.argv[5]), float(sys.argv[6]), f"http://127.0.0.1:{sys.argv[7]}/metrics"
redis = socket.create_connection(("127.0.0.1", port))
def hset(field, value):
    parts = [b"HSET", b"data", field, value]
    redis.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
    assert redis.recv(64).startswith(b":"), "HSET failed"
def running(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
writes = reloads = peak = 0
start = time.monotonic()
next_write, next_reload, next_look = start + write_every, start + reload_every, start
sizes = ["268435456", "67108864"]  # the first reload changes the default (256 MiB)
while running(load):
    now = time.monotonic()
    if now >= next_write:
        writes += 1
        hset(b"stress-churn", b"%d" % writes)
        next_write += write_every
    if now >= next_reload:
        reloads += 1
        text = re.sub(r"(?m)^max_bytes = .*\n", "", open(conf).read())
        open(conf, "w").write(text.replace("[cache]\n", f"[cache]\nmax_bytes = {sizes[reloads % 2]}\n"))
        os.kill(kvd, signal.SIGHUP)
        next_reload += reload_every
    if now >= next_look:
        # The most entries one worker held (a worker past 49,152 ordered a table of 131,072 buckets).
        text = urllib.request.urlopen(metrics, timeout=5).read().decode()
        peak = max([peak] + [int(line.split()[-1]) for line in text.splitlines() if line.startswith("kvd_cache_entries{")])
        next_look += 0.5
    time.sleep(0.05)
print(writes, reloads, peak)
DRIVER
        driver_pid=$!
        wait "$churn_pid"
        wait "$driver_pid"
        read -r writes reloads peak < "$BENCH_DIR/churn-driver.out"
        result=$(cat "$BENCH_DIR/churn.json")
        flushes=$(($(metric kvd_cache_flushes_total) - flushes_before))
        hits=$(metric kvd_cache_hits_total)
        echo "  requests $(field "$result" requests), status $(field "$result" status), errors $(field "$result" errors), mismatches $(field "$result" mismatches); ${writes:-?} writes, ${reloads:-?} reloads"
        head -5 "$BENCH_DIR/churn.err" | sed 's/^/  kvbench: /'
        echo "  near-cache: $hits hits, $(metric kvd_cache_misses_total) misses, $(metric kvd_cache_entries) entries now, $flushes flushes during the phase, at most ${peak:-?} entries in one worker"
        mismatches=$(field "$result" mismatches)
        check "churn: wrong answers" "$([ "$mismatches" = 0 ] && echo 1 || echo 0)" "$mismatches mismatches in $(field "$result" requests) requests"
        check "churn: every request answered 200" \
            "$(python3 -c 'import sys; print(int(sys.argv[1] == "0" and float(sys.argv[2]) == 0))' "$mismatches" "$(field "$result" error_rate)")" \
            "status $(field "$result" status), errors $(field "$result" errors)"
        check "churn: the writes and reloads happened" "$(((${writes:-0} > 0 && ${reloads:-0} > 0 && flushes > 0)) && echo 1 || echo 0)" \
            "${writes:-0} writes, ${reloads:-0} reloads, $flushes cache flushes"
        check "churn: hits were served" "$(((${hits:-0} > 0)) && echo 1 || echo 0)" "${hits:-0} hits"
        deadline=$((SECONDS + 20))
        while (($(kvd_threads) > threads_before && SECONDS < deadline)); do sleep 0.2; done
        check "churn: threads back to where they were" "$((($(kvd_threads) <= threads_before)) && echo 1 || echo 0)" \
            "$(kvd_threads) threads ($threads_before before)"
        check_recovered churn
        snapshot after
        ;;
    *) echo "stress: unknown phase $phase" >&2; exit 2 ;;
    esac
done

snapshot "at the end"
warnings=$(grep -c . "$BENCH_DIR/kvd.log")
echo "# kvd wrote $warnings log lines (level warning); the last ones:"
tail -5 "$BENCH_DIR/kvd.log" | cut -c1-200 | sed 's/^/  /'
if ((${#FAILED[@]} > 0)); then
    echo "# stress: ${#FAILED[@]} check(s) FAILED:"
    printf '  - %s\n' "${FAILED[@]}"
    exit 1
fi
echo "# stress: every check passed"
