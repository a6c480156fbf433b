#!/usr/bin/env bash
# Builds kvd, kvload, kvbench and the tests with AddressSanitizer (+ LeakSanitizer) and with
# ThreadSanitizer, each in its own scratch path, and runs the test suite under each. Every process
# the tests start (kvd, kvload, kvbench) is the sanitized build, and writes any report to a file
# (log_path), so a report from a child process is counted even when its test passed.
#
#   scripts/sanitize.sh [address] [thread]      (make sanitize; default: both)
#
# UndefinedBehaviorSanitizer is not supported for Swift on this target (swiftc -sanitize=undefined is
# refused); the C targets could take it with -Xcc -fsanitize=undefined, and this script adds it to
# them (SANITIZE_UBSAN_C=0 leaves it out).
# Environment: SANITIZE_FILTER (a `swift test --filter` pattern; default: the whole suite),
# SANITIZE_DIR (.build-sanitize: reports and logs). Exit status 1 on a sanitizer report or a failed test.
set -uo pipefail
cd "$(dirname "$0")/.."

SWIFT=${SWIFT:-swift}
SANITIZE_DIR=${SANITIZE_DIR:-.build-sanitize}
FILTER=${SANITIZE_FILTER:-}
modes=("$@")
((${#modes[@]} > 0)) || modes=(address thread)

export SWIFT_BACKTRACE=enable=no
mkdir -p "$SANITIZE_DIR"
summary=()
failed=0
for mode in "${modes[@]}"; do
    scratch=".build-$mode"
    reports="$SANITIZE_DIR/$mode-reports"
    log="$SANITIZE_DIR/$mode-test.log"
    rm -rf "$reports" && mkdir -p "$reports"
    reports=$(cd "$reports" && pwd)
    extra=()
    [ "${SANITIZE_UBSAN_C:-1}" = 1 ] && extra=(-Xcc -fsanitize=undefined)
    echo "# $mode: building into $scratch"
    start=$SECONDS
    if ! "$SWIFT" build --build-tests --sanitize="$mode" --scratch-path "$scratch" "${extra[@]}" 2>&1 \
        | grep -E 'error|warning: unre' ; then :; fi
    if [ ! -d "$scratch/debug" ]; then echo "sanitize: $mode build failed" >&2; failed=1; continue; fi
    build_seconds=$((SECONDS - start))
    case $mode in
        address) export ASAN_OPTIONS="detect_leaks=1:log_path=$reports/report:abort_on_error=0" \
                        LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0" \
                        UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/report" ;;
        thread) export TSAN_OPTIONS="log_path=$reports/report:halt_on_error=0:suppressions=$PWD/scripts/tsan.supp" \
                       UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/report" ;;
    esac
    echo "# $mode: running the tests${FILTER:+ matching $FILTER} (log: $log)"
    start=$SECONDS
    args=(--skip-build --sanitize="$mode" --scratch-path "$scratch")
    [ -n "$FILTER" ] && args+=(--filter "$FILTER")
    "$SWIFT" test "${args[@]}" "${extra[@]}" > "$log" 2>&1
    status=$?
    test_seconds=$((SECONDS - start))
    unset ASAN_OPTIONS LSAN_OPTIONS TSAN_OPTIONS UBSAN_OPTIONS
    # XCTest's and Swift Testing's own summary lines.
    xctest=$(grep -E '^\s*Executed [0-9]+ tests?, with [0-9]+ failures?' "$log" | grep -v 'Executed 0 tests' | tail -1 | sed 's/^\s*//')
    swifttesting=$(grep -E 'Test run with [0-9]+ tests?' "$log" | tail -1 | sed 's/^.*Test run/Test run/')
    report_files=$(find "$reports" -type f | wc -l)
    echo "# $mode: build ${build_seconds} s, tests ${test_seconds} s, exit $status; ${xctest:+$xctest; }${swifttesting:-no Swift Testing summary}; sanitizer reports: $report_files"
    if ((report_files > 0)); then
        for file in $(find "$reports" -type f | head -5); do
            echo "--- $file"
            grep -E 'ERROR|WARNING|SUMMARY|runtime error' "$file" | head -5
        done
    fi
    if ((status != 0)); then
        echo "--- failed tests:"
        grep -E "✘|error: -\[" "$log" | head -20
    fi
    ((status != 0 || report_files > 0)) && failed=1
    summary+=("$mode: build ${build_seconds} s, tests ${test_seconds} s, exit $status, reports $report_files, ${xctest:+$xctest; }${swifttesting:-?}")
done
printf '%s\n' "# summary" "${summary[@]}"
exit $failed
