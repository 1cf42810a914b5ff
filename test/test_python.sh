#!/bin/sh
# test_python.sh - the Python package (python/cfgnet) against this build's shared library: runs
# python/tests with Debian's /usr/bin/python3 and pytest (python3-pytest, python3-numpy), the
# package imported from the source tree (PYTHONPATH) and the library named by CFGNET_LIBRARY.
# pytest's counts become this suite's. Skips, saying why, under a sanitizer (a sanitized library
# cannot be loaded into an unsanitized python) and when pytest or numpy is missing. Small nets:
# one OpenMP thread (the suite shares the machine's cores; threads only add waiting here).
build=${CFGNET_BUILD:?run by test/run.sh, which sets CFGNET_BUILD}
py=/usr/bin/python3

if [ -n "${CFGNET_SANITIZE:-}" ]; then
    echo "skipped: the Python tests do not run under SANITIZE=$CFGNET_SANITIZE"
    exit 0
fi
if ! $py -c 'import numpy, pytest' 2>/dev/null; then
    echo "skipped: $py lacks numpy or pytest (apt-get install python3-numpy python3-pytest)"
    exit 0
fi
if [ ! -f "$build/libcfgnet.so.1" ]; then
    echo "failed: $build/libcfgnet.so.1 is missing (make lib)"
    exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} PYTHONPATH=python CFGNET_LIBRARY="$build/libcfgnet.so.1" \
    PYTHONDONTWRITEBYTECODE=1 $py -m pytest -q -rs -p no:cacheprovider python/tests >"$log" 2>&1
rc=$?
cat "$log"
last=$(tail -n 1 "$log")
p=$(echo "$last" | sed -n 's/.*\b\([0-9][0-9]*\) passed.*/\1/p')
f=$(echo "$last" | sed -n 's/.*\b\([0-9][0-9]*\) failed.*/\1/p')
e=$(echo "$last" | sed -n 's/.*\b\([0-9][0-9]*\) error.*/\1/p')
f=$((${f:-0} + ${e:-0}))
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
printf '[  PASSED  ] %d test(s).\n' "${p:-0}"
[ "$f" -eq 0 ] || printf '[  FAILED  ] %d test(s), listed above.\n' "$f"
[ "$f" -eq 0 ]
