#!/usr/bin/env bash
# Where a near-cache hit's time goes, against /healthz: kvd's CPU per request, split by shared
# object and by function, for /healthz and for GETs that all hit (Zipf 0.99 over the warmed keys,
# as bench/cache-bench.sh's fifth run), from `perf record -e cpu-clock` (a timer: it works in VMs
# that count no cycles) on the cache-on kvd at saturation. Prints nanoseconds per request; the
# functions are those whose cost differs most between the two runs.
#
#   bench/hit-profile.sh [KVD_BINARY]    (default .build/release/kvd; `make release` first)
#
# Environment: PAIRS (1000000), DURATION seconds per profile (5), CONNECTIONS (50), ZIPF (0.99),
# WARM_KEYS (300000), WARM_PASSES (6), TOP (25 functions). Needs perf (Debian's linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

KVD=${1:-.build/release/kvd}
PAIRS=${PAIRS:-1000000}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-50}
ZIPF=${ZIPF:-0.99}
command -v perf >/dev/null || { echo "bench: perf is needed (apt-get install linux-perf)" >&2; exit 69; }
require_tools "$KVD"

start_redis
generate_and_load "$PAIRS" hash
kvd_start on "$KVD" "[redis]\nport = $REDIS_PORT\nlayout = hash\n[cache]\nenabled = yes\n"
PORT=${KVD_PORTS[on]} PID=${KVD_PIDS[on]}
head -n "${WARM_KEYS:-300000}" "$BENCH_DIR/data.txt" > "$BENCH_DIR/hot.txt"
warm_cache "$PORT" "$CONNECTIONS"

requests() { curl -sf "http://127.0.0.1:$PORT/metrics" | metric_total kvd_http_requests_total; }
echo "# kvd $("$KVD" --version) | $(nproc) CPUs | ${DURATION}s per profile | $CONNECTIONS connections | load average $(cut -d' ' -f1-3 /proc/loadavg)"
for run in healthz hits; do
    if [ "$run" = healthz ]; then args=(--path /healthz); else args=(--keys "$BENCH_DIR/hot.txt" --zipf "$ZIPF"); fi
    # kvbench runs a second longer than perf records, so that every sample is taken at saturation.
    "$BIN/kvbench" run --url "http://127.0.0.1:$PORT" --concurrency "$CONNECTIONS" --duration $((DURATION + 2)) \
        --json "${args[@]}" > "$BENCH_DIR/$run.json" &
    client=$!
    sleep 1
    before=$(requests)
    perf record -q -F 2000 -e cpu-clock -p "$PID" -o "$BENCH_DIR/$run.data" -- sleep "$DURATION" 2> /dev/null
    after=$(requests)
    wait "$client"
    echo $((after - before)) > "$BENCH_DIR/$run.requests"
    # One report: its header's event count (nanoseconds of CPU), then a line per shared object and function.
    perf report -i "$BENCH_DIR/$run.data" --no-children --sort dso,symbol --stdio 2> /dev/null |
        awk -v events="$BENCH_DIR/$run.events" '/^# Event count/ { print $NF > events }
            /^#/ || NF < 4 { next } { sub("%", "", $1); $2 = $2 "\t"; print }' > "$BENCH_DIR/$run.profile"
done

python3 - "$BENCH_DIR" "${TOP:-25}" <<'EOF'
import collections, pathlib, subprocess, sys
folder, top = pathlib.Path(sys.argv[1]), int(sys.argv[2])
runs = ["healthz", "hits"]
ns = {}        # run -> nanoseconds of kvd CPU per request
cost = collections.defaultdict(lambda: [0.0, 0.0])
objects = collections.defaultdict(lambda: [0.0, 0.0])
for i, run in enumerate(runs):
    requests = int((folder / f"{run}.requests").read_text())
    # cpu-clock's event count is in nanoseconds of CPU.
    ns[run] = int((folder / f"{run}.events").read_text()) / requests
    for line in (folder / f"{run}.profile").read_text().splitlines():
        dso, _, rest = line.partition("\t")
        fields = dso.split()
        try:
            percent = float(fields[0])
        except ValueError:
            continue
        obj = fields[1] if len(fields) > 1 else "?"
        symbol = " ".join(word for word in rest.split()[1:] if word != "-")
        cost[(obj, symbol)][i] += percent / 100 * ns[run]
        objects[obj][i] += percent / 100 * ns[run]
print(f"kvd CPU per request: /healthz {ns['healthz']:.0f} ns, hits {ns['hits']:.0f} ns ({ns['hits'] / ns['healthz']:.2f} x)")
print(f"{'ns per request':>14} | {'healthz':>8} {'hits':>8} {'more':>8}")
for obj, (a, b) in sorted(objects.items(), key=lambda kv: -kv[1][1])[:8]:
    print(f"{obj[:14]:>14} | {a:8.0f} {b:8.0f} {b - a:+8.0f}")
rows = sorted(cost.items(), key=lambda kv: -(kv[1][1] - kv[1][0]))[:top]
# Swift's symbols, readable (swift demangle --simplified), when the toolchain is on PATH.
try:
    names = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(s for (_, s), _ in rows),
                           capture_output=True, text=True, check=True).stdout.splitlines()
except (OSError, subprocess.CalledProcessError):
    names = [s for (_, s), _ in rows]
print(f"the {top} functions that cost a hit most more than /healthz (ns per request: more, healthz, hits):")
for ((obj, _), (a, b)), name in zip(rows, names):
    print(f"{b - a:+7.0f} {a:6.0f} {b:6.0f}  {obj[:16]:16} {name[:110]}")
EOF
for run in healthz hits; do
    python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print("# %s: %.0f requests/s while profiled" % (sys.argv[2], r["requests_per_second"]))' "$BENCH_DIR/$run.json" "$run"
done
