#!/usr/bin/env bash
# make demo: a private redis-server (its own port and data directory under .demo/, never the
# system's), 10,000 generated pairs in the seed format loaded with kvload, then kvd in the
# foreground on port 8000 (the seed's port). Ctrl-C stops kvd and the private Redis.
#
#   scripts/demo.sh [BINARY_DIR]      (default .build/release; make demo builds it first)
#   DEMO_LAYOUT=buckets make demo     (the storage layout: hash, the default, string or buckets)
set -euo pipefail

BIN=${1:-.build/release}
DEMO=.demo
REDIS_PORT=${DEMO_REDIS_PORT:-6399}
KVD_PORT=${DEMO_KVD_PORT:-8000}
LAYOUT=${DEMO_LAYOUT:-hash}   # hash (the seed's), string or buckets

for tool in kvd kvload kvbench; do
    [ -x "$BIN/$tool" ] || { echo "demo: $BIN/$tool is missing (run: make release)" >&2; exit 1; }
done
port_busy() { ss -Htln "sport = :$1" | grep -q .; }
if port_busy "$REDIS_PORT"; then echo "demo: port $REDIS_PORT is taken; set DEMO_REDIS_PORT" >&2; exit 1; fi
if port_busy "$KVD_PORT"; then echo "demo: port $KVD_PORT is taken; set DEMO_KVD_PORT" >&2; exit 1; fi

mkdir -p "$DEMO/redis"
# hash-max-listpack-value 128: seed-format values reach 94 bytes, over Redis's default of 64, and a
# hash with one longer field or value leaves the compact listpack encoding for good; with 128 the
# buckets layout (DEMO_LAYOUT=buckets) keeps every bucket compact (see docs/kvload.md).
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$PWD/$DEMO/redis" --save '' --appendonly no \
    --hash-max-listpack-value 128 --logfile "$PWD/$DEMO/redis/redis.log" --daemonize no &
REDIS_PID=$!
trap 'kill $REDIS_PID 2>/dev/null; wait $REDIS_PID 2>/dev/null || true' EXIT
deadline=$((SECONDS + 10))
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "demo: redis-server did not start (see $DEMO/redis/redis.log)" >&2; exit 1; }
    sleep 0.05
done

cat > "$DEMO/kvd.conf" <<CONF
# The demo's configuration: kvd and kvload read the same file.
[http]
host = 127.0.0.1
port = $KVD_PORT

[redis]
host = 127.0.0.1
port = $REDIS_PORT
layout = $LAYOUT
CONF

echo "demo: generating 10,000 pairs in the seed format -> $DEMO/sample.txt"
"$BIN/kvbench" gen --count 10000 --seed 1 -o "$DEMO/sample.txt"
echo "3479d894-3271-4935-88cf-a06f3cbb80a5 this is a value" >> "$DEMO/sample.txt"
"$BIN/kvload" --config "$DEMO/kvd.conf" "$DEMO/sample.txt"

key=$(head -1 "$DEMO/sample.txt" | cut -d' ' -f1)
cat <<TEXT

kvd is starting on http://127.0.0.1:$KVD_PORT (Redis: private redis-server on port $REDIS_PORT).
Try, from another terminal:
  curl -i http://127.0.0.1:$KVD_PORT/get/3479d894-3271-4935-88cf-a06f3cbb80a5
  curl -i http://127.0.0.1:$KVD_PORT/get/$key
  curl -i http://127.0.0.1:$KVD_PORT/get/no-such-key
  curl -i -H 'Accept: application/octet-stream' http://127.0.0.1:$KVD_PORT/get/$key
  curl -i http://127.0.0.1:$KVD_PORT/healthz
  $BIN/kvbench run --url http://127.0.0.1:$KVD_PORT --keys $DEMO/sample.txt --concurrency 50 --duration 5s --verify
Ctrl-C stops kvd and the demo's Redis.

TEXT
"$BIN/kvd" --config "$DEMO/kvd.conf"
