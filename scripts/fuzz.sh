#!/usr/bin/env bash
# Builds the libFuzzer harnesses of Fuzz/ (with AddressSanitizer) and runs each for a bounded time,
# printing its executions and any crash. Exit status 1 when a harness crashed or a property failed.
#
#   scripts/fuzz.sh [HARNESS...]          (make fuzz; default: every harness in Fuzz/Sources)
#
# Environment: FUZZ_SECONDS per harness (60), FUZZ_BUILD (.build-fuzz: scratch path, ignored by git),
# FUZZ_ARGS (more libFuzzer options, e.g. -jobs=2). New inputs found go to $FUZZ_BUILD/corpus/<harness>
# (kept between runs); the committed seeds in Fuzz/Corpus/<harness> are read, never written; extra
# libFuzzer options for one harness go in Fuzz/Options/<harness>, one a line. A crashing
# input is saved as $FUZZ_BUILD/artifacts/<harness>/crash-…; replay it with
#   $FUZZ_BUILD/debug/<harness> FILE
# and add it to Fuzz/Corpus/<harness>/ once fixed, so every later run checks it again.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_BUILD=${FUZZ_BUILD:-.build-fuzz}
read -r -a extra_args <<< "${FUZZ_ARGS:-}"
SWIFT=${SWIFT:-swift}

if (($# > 0)); then
    harnesses=("$@")
else
    harnesses=()
    for dir in Fuzz/Sources/fuzz-*; do harnesses+=("${dir##*/}"); done
fi

echo "# building ${#harnesses[@]} harnesses (-sanitize=fuzzer,address) into $FUZZ_BUILD"
build_start=$SECONDS
"$SWIFT" build --package-path Fuzz --scratch-path "$FUZZ_BUILD" \
    -Xswiftc -sanitize=fuzzer,address 2>&1 \
    | grep -v -e "Cannot export local symbol '__asan" -e 'warning: ignoring -D_FILE_OFFSET_BITS' || true
bin="$FUZZ_BUILD/debug"
for harness in "${harnesses[@]}"; do
    [ -x "$bin/$harness" ] || { echo "fuzz: $bin/$harness was not built" >&2; exit 1; }
done
echo "# built in $((SECONDS - build_start)) s; $FUZZ_SECONDS s per harness"

# ASan: report leaks too. An allocation ASan cannot make (over 1 TB) returns null as malloc would in
# production: C code reports it, and Swift code still stops on it.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
# Swift's own crash backtracer gets in the way of ASan's report (and crashes inside it): libFuzzer
# and ASan print the failure.
export SWIFT_BACKTRACE=enable=no
failed=()
printf '%-20s %12s %10s %8s %8s  %s\n' harness executions exec/s corpus seconds result
for harness in "${harnesses[@]}"; do
    corpus="$FUZZ_BUILD/corpus/$harness"
    artifacts="$FUZZ_BUILD/artifacts/$harness"
    log="$FUZZ_BUILD/logs/$harness.log"
    mkdir -p "$corpus" "$artifacts" "${log%/*}"
    seeds=()
    [ -d "Fuzz/Corpus/$harness" ] && seeds=("Fuzz/Corpus/$harness")
    options=()
    [ -f "Fuzz/Options/$harness" ] && mapfile -t options < <(grep -v -e '^#' -e '^$' "Fuzz/Options/$harness")
    start=$SECONDS
    status=0
    # -timeout: one input taking 10 s is a finding (a hang); -rss_limit_mb: so is 2 GB of memory.
    "$bin/$harness" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "${options[@]}" "${extra_args[@]}" "$corpus" "${seeds[@]}" \
        > "$log" 2>&1 || status=$?
    executions=$(awk '/stat::number_of_executed_units:/ { n += $2 } END { print n + 0 }' "$log")
    rate=$(awk '/stat::average_exec_per_sec:/ { n += $2 } END { print n + 0 }' "$log")
    units=$(find "$corpus" -type f | wc -l)
    if ((status == 0)); then
        result=ok
    else
        result="FAILED (exit $status; log $log)"
        failed+=("$harness")
    fi
    printf '%-20s %12s %10s %8s %8s  %s\n' "$harness" "$executions" "$rate" "$units" "$((SECONDS - start))" "$result"
    if ((status != 0)); then
        # What libFuzzer said about the failure: the property message or sanitizer report, and the saved input.
        grep -E -A 12 'fuzz property failed|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|deadly signal|Fatal error' "$log" \
            | head -40 | sed 's/^/    /'
        grep -E 'Test unit written to|artifact_prefix' "$log" | sed 's/^/    /' || true
    fi
done

if ((${#failed[@]} > 0)); then
    echo "fuzz: ${#failed[@]} harness(es) failed: ${failed[*]}" >&2
    exit 1
fi
echo "# every harness ran clean"
