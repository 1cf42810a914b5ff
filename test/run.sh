#!/bin/sh
# run.sh BUILD_DIR [SUITE] - runs every cmocka suite (or the one named) and ends with one summary
# line, "N passed, N failed", counting individual tests. Exit status 1 if anything failed.
# Script suites, test/test_NAME.sh, run after the binaries (with sh, from the top of the tree, the
# build directory in $CFGNET_BUILD) and print cmocka's PASSED/FAILED lines, so they count alike.
build=${1:?usage: run.sh BUILD_DIR [SUITE]}
suite=${2:-}
passed=0 failed=0 broken=""
# The CLI suite runs the `net` of the same build (plain, sanitizer or no-OpenMP).
CFGNET_BUILD=$(cd "$build" && pwd)
CFGNET_NET=$CFGNET_BUILD/net
export CFGNET_NET CFGNET_BUILD
# Waiting OpenMP threads sleep instead of spinning, as `net` arranges for itself (src/cli/main.c):
# libgomp's spinning costs several times over when other processes share the cores.
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
export OMP_WAIT_POLICY
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "$build"/test/test_* "$(cd "$(dirname "$0")" && pwd)"/test_*.sh; do
    [ -f "$t" ] && { [ -x "$t" ] || [ "${t%.sh}" != "$t" ]; } || continue
    name=${t##*/test_}
    name=${name%.sh}
    [ -n "$suite" ] && [ "$name" != "$suite" ] && continue
    ran=1
    printf '== %s\n' "$name"
    t0=$(date +%s)
    case $t in
    *.sh) ( cd "$(dirname "$0")/.." && sh "$t" ) >"$log" 2>&1 ;;
    *) ( cd "$(dirname "$0")/.." && "$t" ) >"$log" 2>&1 ;;
    esac
    rc=$?
    cat "$log"
    echo "== $name: $(($(date +%s) - t0)) s"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1   # crashed or exited non-zero without a cmocka verdict
    fi
    passed=$((passed + p)) failed=$((failed + f))
    [ "$rc" -ne 0 ] && broken="$broken $name"
done
if [ -n "$suite" ] && [ -z "${ran:-}" ]; then
    echo "no suite named '$suite' in $build/test" >&2
    exit 1
fi
[ -n "$broken" ] && echo "failing suites:$broken"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
