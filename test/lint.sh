#!/bin/sh
# lint.sh - static checks beyond the compiler's warnings (`make lint`, from the top of the tree):
# cppcheck's warning class over the library and the command (src/), where any finding fails, and
# a syntax check of every shell script, by the shell its first line names. The tests are left to cppcheck's mercy only by hand: it
# does not know that cmocka's fail_msg() returns no more, and reports the paths after it.
# clang-format (.clang-format) is `make format`'s business, not a lint failure.
set -eu
cd "$(dirname "$0")/.."
status=0
cppcheck --enable=warning --std=c11 --error-exitcode=1 --quiet -j"$(nproc 2>/dev/null || echo 1)" \
    -D__x86_64__ -Isrc -Iinclude src || status=1
for s in .ci/run test/*.sh bench/*.sh; do
    [ -f "$s" ] || continue
    shell=sh
    head -n 1 "$s" | grep -q bash && shell=bash
    $shell -n "$s" || { echo "$s: shell syntax error" >&2; status=1; }
done
[ "$status" -eq 0 ] && echo "lint: clean"
exit "$status"
