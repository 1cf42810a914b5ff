#!/bin/sh
# run.sh BUILD_DIR [SUITE] - runs every cmocka suite (or the one named) and ends with one summary
# line, "N passed, N failed", counting individual tests. Exit status 1 if anything failed.
build=${1:?usage: run.sh BUILD_DIR [SUITE]}
suite=${2:-}
passed=0 failed=0 broken=""
# The CLI suite runs the `net` of the same build (plain, sanitizer or no-OpenMP).
CFGNET_NET=$(cd "$build" && pwd)/net
export CFGNET_NET
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "$build"/test/test_*; do
    [ -x "$t" ] || continue
    name=${t##*/test_}
    [ -n "$suite" ] && [ "$name" != "$suite" ] && continue
    printf '== %s\n' "$name"
    ( cd "$(dirname "$0")/.." && "$t" ) >"$log" 2>&1
    rc=$?
    cat "$log"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1   # crashed or exited non-zero without a cmocka verdict
    fi
    passed=$((passed + p)) failed=$((failed + f))
    [ "$rc" -ne 0 ] && broken="$broken $name"
done
if [ -n "$suite" ] && [ $((passed + failed)) -eq 0 ]; then
    echo "no suite named '$suite' in $build/test" >&2
    exit 1
fi
[ -n "$broken" ] && echo "failing suites:$broken"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
