#!/usr/bin/env bash
# kvload against `redis-cli --pipe`, in one invocation, on one private redis-server.
#
#   bench/kvload-bench.sh [BINARY_DIR]     (default .build/release; `make release` builds it)
#
# 1. 1,000,000 seed-format rows into the hash layout: redis-cli --pipe on pre-generated RESP
#    (`HSET data KEY VALUE` per row; generating it is not timed) vs kvload on the seed file. Ratio.
# 2. The seed's way (one HSET round trip per row): kvload --batch 1 --pipeline 1, 100,000 rows.
# 3. 10,000,000 rows (about 1.3 GB: the 1M rows ten times over with distinct keys, values doubled),
#    with kvload's peak RSS (GNU time).
# Wall times are seconds; peak RSS is in MB. Set KVLOAD_BENCH_SKIP_10M=1 to skip step 3.
source "$(dirname "$0")/lib.sh"

BIN=${1:-.build/release}
KVLOAD=$BIN/kvload
[ -x "$KVLOAD" ] || { echo "bench: $KVLOAD is missing (run: make release)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: GNU time is missing (make deps installs the 'time' package)" >&2; exit 1; }

start_redis
flush() { redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null; }
# timed OUTFILE COMMAND...: runs COMMAND, writes "WALL_SECONDS PEAK_RSS_KB" to OUTFILE.
timed() {
    local out=$1
    shift
    /usr/bin/time -f "%e %M" -o "$out" "$@"
}
field() { cut -d' ' -f"$2" "$1"; }

echo "bench: generating 1,000,000 rows (not timed)" >&2
gen_data 1000000 "$BENCH_DIR/1m.txt"
python3 - "$BENCH_DIR/1m.txt" "$BENCH_DIR/1m.resp" <<'PY'
import sys
with open(sys.argv[1], "rb") as rows, open(sys.argv[2], "wb") as out:
    for row in rows:
        key, _, value = row.rstrip(b"\n").partition(b" ")
        out.write(b"*4\r\n$4\r\nHSET\r\n$4\r\ndata\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value))
PY

flush
timed "$BENCH_DIR/pipe.time" redis-cli -p "$REDIS_PORT" --pipe <"$BENCH_DIR/1m.resp" >"$BENCH_DIR/pipe.log"
grep -q "errors: 0, replies: 1000000" "$BENCH_DIR/pipe.log" || { cat "$BENCH_DIR/pipe.log" >&2; exit 1; }
[ "$(redis-cli -p "$REDIS_PORT" HLEN data)" = 1000000 ] || { echo "bench: redis-cli --pipe did not store 1M fields" >&2; exit 1; }

flush
timed "$BENCH_DIR/kvload.time" "$KVLOAD" --config /dev/null --port "$REDIS_PORT" --quiet "$BENCH_DIR/1m.txt" >"$BENCH_DIR/kvload.log"
[ "$(redis-cli -p "$REDIS_PORT" HLEN data)" = 1000000 ] || { echo "bench: kvload did not store 1M fields" >&2; exit 1; }

head -100000 "$BENCH_DIR/1m.txt" >"$BENCH_DIR/100k.txt"
flush
timed "$BENCH_DIR/seedway.time" "$KVLOAD" --config /dev/null --port "$REDIS_PORT" --quiet --batch 1 --pipeline 1 "$BENCH_DIR/100k.txt" >/dev/null

pipe_s=$(field "$BENCH_DIR/pipe.time" 1)
kvload_s=$(field "$BENCH_DIR/kvload.time" 1)
seed_s=$(field "$BENCH_DIR/seedway.time" 1)
printf '\n%-58s %10s %12s %10s\n' "run" "wall s" "rows/s" "peak MB"
row() { printf '%-58s %10s %12s %10s\n' "$1" "$2" "$(python3 -c "print(int($3/$2))")" "$(python3 -c "print(round($4/1024,1))")"; }
row "redis-cli --pipe, 1M HSET (pre-generated RESP)" "$pipe_s" 1000000 "$(field "$BENCH_DIR/pipe.time" 2)"
row "kvload, 1M rows, hash layout" "$kvload_s" 1000000 "$(field "$BENCH_DIR/kvload.time" 2)"
row "seed's way: one HSET round trip per row, 100k rows" "$seed_s" 100000 "$(field "$BENCH_DIR/seedway.time" 2)"
ratio=$(python3 -c "print(f'{$kvload_s/$pipe_s:.2f}')")
echo "kvload / redis-cli --pipe wall time (1M rows): $ratio (bar: <= 1.25)"

if [ "${KVLOAD_BENCH_SKIP_10M:-0}" != 1 ]; then
    echo "bench: building the 10,000,000-row file (not timed)" >&2
    for digit in 0 1 2 3 4 5 6 7 8 9; do
        # A distinct first hex digit per copy keeps the keys distinct (and valid UUIDv4); values doubled.
        awk -v d="$digit" '{ print d substr($0, 2) " " substr($0, 38) }' "$BENCH_DIR/1m.txt"
    done >"$BENCH_DIR/10m.txt"
    rm -f "$BENCH_DIR/1m.resp"
    size_mb=$(( $(stat -c %s "$BENCH_DIR/10m.txt") / 1000000 ))
    flush
    timed "$BENCH_DIR/10m.time" "$KVLOAD" --config /dev/null --port "$REDIS_PORT" --quiet "$BENCH_DIR/10m.txt" >"$BENCH_DIR/10m.log"
    stored=$(redis-cli -p "$REDIS_PORT" HLEN data)
    row "kvload, 10M rows ($size_mb MB), hash layout" "$(field "$BENCH_DIR/10m.time" 1)" 10000000 "$(field "$BENCH_DIR/10m.time" 2)"
    echo "fields stored after the 10M run: $stored"
fi
echo
echo "command: bench/kvload-bench.sh $BIN"
