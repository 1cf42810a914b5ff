#!/bin/sh
# run.sh BUILD_DIR [SUITE] - runs every cmocka suite (or the one named) and ends with one summary
# line, "N passed, N failed", counting individual tests. Exit status 1 if anything failed.
# Script suites, test/test_NAME.sh, run with the binaries (with sh, from the top of the tree, the
# build directory in $CFGNET_BUILD) and print cmocka's PASSED/FAILED lines, so they count alike.
# Suites run CFGNET_TEST_JOBS at a time (default: the number of cores), the slowest first: most
# of a suite is serial, and under a sanitizer all the more. Each prints "== NAME: N s" as it
# ends; the logs follow in order once all have ended. Suites use their own temporary files.
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
# run.sh --one LOGDIR SUITE_PATH: one suite, its output to LOGDIR/NAME.log, its exit status and
# seconds to NAME.rc and NAME.time (the pool's worker, started by xargs below).
if [ "${1:-}" = --one ]; then
    dir=$2 t=$3
    name=${t##*/test_}
    name=${name%.sh}
    t0=$(date +%s)
    case $t in
    *.sh) ( cd "$top" && sh "$t" ) >"$dir/$name.log" 2>&1 ;;
    *) ( cd "$top" && "$t" ) >"$dir/$name.log" 2>&1 ;;
    esac
    echo $? >"$dir/$name.rc"
    echo $(($(date +%s) - t0)) >"$dir/$name.time"
    echo "== $name: $(cat "$dir/$name.time") s"
    exit 0
fi

build=${1:?usage: run.sh BUILD_DIR [SUITE]}
suite=${2:-}
# The CLI suite runs the `net` of the same build (plain, sanitizer or no-OpenMP).
CFGNET_BUILD=$(cd "$build" && pwd)
CFGNET_NET=$CFGNET_BUILD/net
export CFGNET_NET CFGNET_BUILD
# Waiting OpenMP threads sleep instead of spinning (`net` itself spins briefly, src/cli/main.c):
# CI's machines are shared and the suites time nothing, and any spinning costs several times
# over when other processes share the cores.
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
export OMP_WAIT_POLICY

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# The suites that take most of the time (zoo alone about half under ASan) start first.
slow="zoo mpi torch_parity darknet_predict winograd memplan shipped graph conv"
for t in "$build"/test/test_* "$here"/test_*.sh; do
    [ -f "$t" ] && { [ -x "$t" ] || [ "${t%.sh}" != "$t" ]; } || continue
    name=${t##*/test_}
    name=${name%.sh}
    [ -n "$suite" ] && [ "$name" != "$suite" ] && continue
    rank=0 i=0
    for s in $slow; do
        i=$((i + 1))
        [ "$s" = "$name" ] && rank=$i
    done
    [ "$rank" -eq 0 ] && rank=$((i + 1))
    printf '%d %s %s\n' "$rank" "$name" "$t" >>"$dir/list"
done
if [ ! -s "$dir/list" ]; then
    echo "no suite${suite:+ named '$suite'} in $build/test" >&2
    exit 1
fi
sort -n -k1,1 -k2,2 "$dir/list" >"$dir/order"
jobs=${CFGNET_TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
cut -d' ' -f3 "$dir/order" | xargs -P "$jobs" -n 1 sh "$here/run.sh" --one "$dir"

passed=0 failed=0 broken=""
for name in $(cut -d' ' -f2 "$dir/list"); do
    log=$dir/$name.log
    printf '== %s\n' "$name"
    cat "$log"
    echo "== $name: $(cat "$dir/$name.time" 2>/dev/null || echo '?') s"
    rc=$(cat "$dir/$name.rc" 2>/dev/null || echo 1)
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1   # crashed or exited non-zero without a cmocka verdict
    fi
    passed=$((passed + p)) failed=$((failed + f))
    [ "$rc" -ne 0 ] && broken="$broken $name"
done
[ -n "$broken" ] && echo "failing suites:$broken"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
