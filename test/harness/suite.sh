# suite.sh - sourced by the script suites (test/test_*.sh): runs named test functions and prints
# cmocka's lines ([ RUN ], [ OK ], [ PASSED ] N test(s), [ FAILED ] N test(s)), which test/run.sh
# counts as it counts the cmocka binaries. A test function returns non-zero to fail, after saying
# why; skip "reason" prints the reason and counts the test as neither passed nor failed.
suite_passed=0 suite_failed=0 suite_failures="" suite_skipped=0

# run_test NAME: runs the function NAME in a subshell (so a test cannot change the next one's state).
run_test() {
    printf '[ RUN      ] %s\n' "$1"
    ( "$1" )
    case $? in
    0) printf '[       OK ] %s\n' "$1"; suite_passed=$((suite_passed + 1)) ;;
    77) printf '[  SKIPPED ] %s\n' "$1"; suite_skipped=$((suite_skipped + 1)) ;;
    *) printf '[  FAILED  ] %s\n' "$1"; suite_failed=$((suite_failed + 1))
       suite_failures="$suite_failures $1" ;;
    esac
}

# Inside a test: skip REASON (exits the test's subshell).
skip() {
    printf 'skipped: %s\n' "$*"
    exit 77
}

# Inside a test: fail MESSAGE (exits the test's subshell).
fail() {
    printf 'failed: %s\n' "$*"
    exit 1
}

# Ends the suite: the summary lines, and the exit status (1 if anything failed).
suite_end() {
    printf '[==========] %d test(s) run.\n' $((suite_passed + suite_failed))
    printf '[  PASSED  ] %d test(s).\n' "$suite_passed"
    [ "$suite_skipped" -eq 0 ] || printf '[  SKIPPED ] %d test(s).\n' "$suite_skipped"
    if [ "$suite_failed" -ne 0 ]; then
        printf '[  FAILED  ] %d test(s), listed below:\n' "$suite_failed"
        for t in $suite_failures; do
            printf '[  FAILED  ] %s\n' "$t"
        done
        exit 1
    fi
    exit 0
}
