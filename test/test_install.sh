#!/bin/sh
# test_install.sh - cfgnet as an installed library: the shared library's exported symbols and
# soname, `make install` / `make uninstall` into temporary roots (DESTDIR and PREFIX), cfgnet.pc
# through pkg-config, the examples built against the installed header and library only (shared
# and static) and run (training, classification matching `net classifier predict`, features),
# the man page against the usage texts, and `pip install` of the Python package into a venv.
# Run by test/run.sh (CFGNET_BUILD, CFGNET_NET; `make test` adds CFGNET_MAKE_ARGS and
# CFGNET_SANITIZE so that the make it re-enters builds nothing different).
. "$(dirname "$0")/harness/suite.sh"
build=${CFGNET_BUILD:?run by test/run.sh, which sets CFGNET_BUILD}
root=$(cd "$(dirname "$0")/.." && pwd)
margs=${CFGNET_MAKE_ARGS:-BUILD=$build}
san=${CFGNET_SANITIZE:-}
tmp=$(mktemp -d /tmp/cfgnet_install_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} # tiny nets: threads would only wait on each other
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
so=$build/libcfgnet.so.1
prefix=$tmp/prefix
pcpath=$prefix/lib/pkgconfig

# make at the top of the tree, with the build's settings and nothing inherited from a calling make.
mk() {
    # shellcheck disable=SC2086 # margs is a list of VAR=value words
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C "$root" $margs \
        LDCONFIG=true "$@"
}

installed_list() {
    (cd "$1" && find . -type f -o -type l | sort)
}

test_exported_symbols() {
    [ -f "$so" ] || fail "$so is missing"
    nm -D --defined-only "$so" | awk '{print $NF}' | sort >"$tmp/exported"
    sed -n 's/^CFGNET_API [^(]*[ *]\(cfgnet_[a-z0-9_]*\)(.*/\1/p' "$root/include/cfgnet.h" |
        sort >"$tmp/declared"
    [ -s "$tmp/declared" ] || fail "no CFGNET_API declarations found in include/cfgnet.h"
    diff "$tmp/declared" "$tmp/exported" || fail "exported symbols differ from the header's"
    echo "$(wc -l <"$tmp/exported") symbols exported, all cfgnet_* and all declared"
}

test_soname() {
    soname=$(objdump -p "$so" | awk '$1 == "SONAME" {print $2}')
    [ "$soname" = libcfgnet.so.1 ] || fail "soname is '$soname'"
    [ "$(readlink "$build/libcfgnet.so")" = libcfgnet.so.1 ] || fail "libcfgnet.so link"
}

expected_files() {
    printf '%s\n' "./$1/bin/net" "./$1/include/cfgnet.h" "./$1/lib/libcfgnet.a" \
        "./$1/lib/libcfgnet.so" "./$1/lib/libcfgnet.so.1" "./$1/lib/pkgconfig/cfgnet.pc" \
        "./$1/share/man/man1/net.1" | sort
}

test_install_uninstall_destdir() {
    stage=$tmp/stage
    mk install DESTDIR="$stage" PREFIX=/usr/local >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "install"; }
    expected_files usr/local >"$tmp/want"
    installed_list "$stage" >"$tmp/got"
    diff "$tmp/want" "$tmp/got" || fail "installed files differ"
    pc=$stage/usr/local/lib/pkgconfig/cfgnet.pc
    grep -qx 'prefix=/usr/local' "$pc" || fail "cfgnet.pc prefix"
    want_private="Libs.private: -lz -lm -lpthread" # and the OpenMP runtime the library needs
    objdump -p "$so" | grep -q 'NEEDED *libgomp' && want_private="$want_private -lgomp"
    objdump -p "$so" | grep -q 'NEEDED *libomp' && want_private="$want_private -fopenmp"
    grep -qx -- "$want_private" "$pc" || fail "cfgnet.pc: want '$want_private', have: $(grep Libs.private "$pc")"
    cmp -s "$so" "$stage/usr/local/lib/libcfgnet.so.1" || fail "installed .so differs"
    [ -x "$stage/usr/local/bin/net" ] || fail "net not executable"
    mk uninstall DESTDIR="$stage" PREFIX=/usr/local >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "uninstall"; }
    left=$(installed_list "$stage")
    [ -z "$left" ] || fail "uninstall left: $left"
}

# Installs into $prefix (no DESTDIR) for the tests after it.
test_install_prefix_pkgconfig() {
    mk install PREFIX="$prefix" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "install"; }
    flags=$(PKG_CONFIG_PATH=$pcpath pkg-config --cflags --libs cfgnet) || fail "pkg-config"
    flags=$(echo $flags) # pkg-config ends with a space
    [ "$flags" = "-I$prefix/include -L$prefix/lib -lcfgnet" ] || fail "pkg-config gives '$flags'"
    v=$(PKG_CONFIG_PATH=$pcpath pkg-config --modversion cfgnet)
    h=$(sed -n 's/^#define CFGNET_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' \
        "$root/include/cfgnet.h" | paste -sd.)
    [ "$v" = "$h" ] || fail "pkg-config version $v, header $h"
    "$prefix/bin/net" help >/dev/null || fail "installed net does not run"
}

# The examples include only <cfgnet.h> and standard headers, and build with pkg-config's flags
# alone (no -Isrc), which proves the public API is enough for them.
build_examples() {
    extra=""
    [ -n "$san" ] && extra="-fsanitize=$san"
    PKG_CONFIG_PATH=$pcpath make --no-print-directory -C "$root/examples" OUT="$1" \
        CFLAGS="-O2 -g -Werror $extra" LDFLAGS="$extra" $2 >"$tmp/log" 2>&1 ||
        { cat "$tmp/log"; fail "examples do not build"; }
}

test_examples_build() {
    [ -f "$pcpath/cfgnet.pc" ] || fail "no install in $prefix"
    bad=$(grep -h '^#include' "$root"/examples/*.c | grep -v -e '<cfgnet.h>' \
        -e '<std[a-z]*.h>' -e '<string.h>' -e '<math.h>')
    [ -z "$bad" ] || fail "examples include more than <cfgnet.h> and the C library: $bad"
    build_examples "$tmp/ex" ""
    for e in classify train features; do
        [ -x "$tmp/ex/$e" ] || fail "$e not built"
    done
    LD_LIBRARY_PATH=$prefix/lib ldd "$tmp/ex/train" | grep -q "libcfgnet.so.1 => $prefix/lib/" ||
        fail "train does not link the installed libcfgnet.so.1"
}

test_example_train() {
    LD_LIBRARY_PATH=$prefix/lib "$tmp/ex/train" "$tmp/bars" >"$tmp/train.out" 2>&1
    rc=$?
    cat "$tmp/train.out"
    [ "$rc" -eq 0 ] || fail "train exited $rc"
    [ -s "$tmp/bars.weights" ] && [ -s "$tmp/bars.cfg" ] || fail "no bars.cfg/bars.weights"
}

# A 12x12 PGM with a horizontal bar at row 5 over a faint ramp.
write_bar_image() {
    {
        printf 'P5\n12 12\n255\n'
        r=0
        while [ $r -lt 12 ]; do
            if [ $r -eq 5 ]; then
                printf '\377\377\377\377\377\377\377\377\377\377\377\377'
            else
                printf '\020\030\040\050\060\070\040\030\020\030\040\050'
            fi
            r=$((r + 1))
        done
    } >"$1"
}

# classify prints what `net classifier predict` prints for the same files, and the right class.
test_example_classify_matches_net() {
    [ -s "$tmp/bars.weights" ] || fail "needs test_example_train"
    write_bar_image "$tmp/h.pgm"
    printf 'horizontal\nvertical\ncross\n' >"$tmp/bars.labels"
    printf 'classes=3\nlabels=%s\ntop=3\n' "$tmp/bars.labels" >"$tmp/bars.data"
    LD_LIBRARY_PATH=$prefix/lib "$tmp/ex/classify" "$tmp/bars.cfg" "$tmp/bars.weights" \
        "$tmp/h.pgm" "$tmp/bars.labels" >"$tmp/classify.out" || fail "classify failed"
    "$CFGNET_NET" classifier predict "$tmp/bars.data" "$tmp/bars.cfg" "$tmp/bars.weights" \
        "$tmp/h.pgm" >"$tmp/net.out" || fail "net classifier predict failed"
    cat "$tmp/classify.out"
    grep -E '^ *[0-9.]+%: ' "$tmp/net.out" >"$tmp/net.lines"
    [ "$(wc -l <"$tmp/net.lines")" -eq 3 ] || { cat "$tmp/net.out"; fail "net printed no 3 lines"; }
    diff "$tmp/net.lines" "$tmp/classify.out" || fail "classify and net differ"
    head -n 1 "$tmp/classify.out" | grep -q ': horizontal$' || fail "the bar is not horizontal"
}

test_example_features() {
    [ -s "$tmp/bars.weights" ] && [ -s "$tmp/h.pgm" ] || fail "needs the tests before"
    LD_LIBRARY_PATH=$prefix/lib "$tmp/ex/features" "$tmp/bars.cfg" "$tmp/bars.weights" -3 \
        "$tmp/h.pgm" "$tmp/h.pgm" >"$tmp/feat.out" || fail "features failed"
    [ "$(grep -c 'layer -3 \[connected\] 16x1x1$' "$tmp/feat.out")" -eq 2 ] ||
        { cat "$tmp/feat.out"; fail "header lines"; }
    n=$(sed -n 2p "$tmp/feat.out" | wc -w)
    [ "$n" -eq 16 ] || fail "$n values, want 16"
    sed -n 2p "$tmp/feat.out" | tr ' ' '\n' | awk '$1 < 0 {bad = 1} END {exit bad}' ||
        fail "negative value after relu"
    [ "$(sed -n 2p "$tmp/feat.out")" = "$(sed -n 4p "$tmp/feat.out")" ] || fail "same image differs"
    LD_LIBRARY_PATH=$prefix/lib "$tmp/ex/features" "$tmp/bars.cfg" "$tmp/bars.weights" -1 \
        "$tmp/h.pgm" | sed -n 2p | tr ' ' '\n' |
        awk '{s += $1} END {if (s < 0.99999 || s > 1.00001) {print "sum " s; exit 1}}' ||
        fail "softmax outputs do not sum to 1"
    LD_LIBRARY_PATH=$prefix/lib "$tmp/ex/features" "$tmp/bars.cfg" "$tmp/bars.weights" 9 \
        "$tmp/h.pgm" 2>"$tmp/err" && fail "layer 9 accepted"
    grep -q 'layer 9 is out of range: the network has 5 layers' "$tmp/err" || fail "$(cat "$tmp/err")"
}

# The installed libcfgnet.a defines, as global, only the header's functions (like the .so), so a
# program may link it statically beside its own gemm, image_load or stb_image.
test_static_symbols() {
    [ -n "$san" ] && skip "static linking under SANITIZE=$san"
    lib=$prefix/lib/libcfgnet.a
    [ -f "$lib" ] || fail "no install in $prefix"
    nm --defined-only "$lib" | awk 'NF == 3 && $2 ~ /^[A-Z]$/ {print $3}' | sort >"$tmp/sglobal"
    sed -n 's/^CFGNET_API [^(]*[ *]\(cfgnet_[a-z0-9_]*\)(.*/\1/p' "$root/include/cfgnet.h" |
        sort >"$tmp/sdeclared"
    diff "$tmp/sdeclared" "$tmp/sglobal" || fail "libcfgnet.a's global symbols differ from the header's"
    cat >"$tmp/clash.c" <<'EOF2'
#include <cfgnet.h>
#include <stdio.h>
/* names cfgnet uses inside (its GEMM, its image reader, stb_image) */
int gemm(int x) { return x + 1; }
int image_load(int x) { return 2 * x; }
const char *stbi_failure_reason(void) { return "mine"; }
int main(void)
{
    printf("%s %d %s\n", cfgnet_version(), gemm(1) + image_load(2), stbi_failure_reason());
    return 0;
}
EOF2
    # shellcheck disable=SC2046 # pkg-config's flags are a list of words
    cc -std=c11 -o "$tmp/clash" "$tmp/clash.c" $(PKG_CONFIG_PATH=$pcpath pkg-config --cflags cfgnet) \
        "$lib" $(PKG_CONFIG_PATH=$pcpath pkg-config --static --libs-only-l cfgnet | sed 's/-lcfgnet//') \
        >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "a program with its own gemm/image_load/stbi_* does not link"; }
    out=$("$tmp/clash") || fail "clash exited $?"
    [ "$out" = "$(sed -n 's/^#define CFGNET_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' \
        "$root/include/cfgnet.h" | paste -sd.) 6 mine" ] || fail "clash printed '$out'"
}

test_examples_static() {
    [ -n "$san" ] && skip "static linking under SANITIZE=$san"
    build_examples "$tmp/exs" STATIC=1
    if ldd "$tmp/exs/train" | grep -q libcfgnet; then
        fail "the static build links libcfgnet dynamically"
    fi
    "$tmp/exs/train" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "static train failed"; }
    tail -n 1 "$tmp/log"
}

# Every command and flag the usage texts print appears in the man page, which renders cleanly.
test_man_page() {
    man=$root/docs/net.1
    "$CFGNET_NET" help >"$tmp/u.top" 2>&1
    "$CFGNET_NET" classifier help >"$tmp/u.cls" 2>&1
    "$CFGNET_NET" classifier train -h >"$tmp/u.train" 2>&1
    missing=""
    for c in $(sed -n 's/^  \([a-z][a-z]*\) .*/\1/p' "$tmp/u.top" | sort -u); do
        grep -q "^\.B net $c\b" "$man" || missing="$missing '$c'"
        # each command's own usage text, as it prints it without arguments or with -h
        { "$CFGNET_NET" "$c"; "$CFGNET_NET" "$c" -h; } >"$tmp/u.cmd.$c" 2>&1
    done
    for c in $(sed -n 's/^  \([a-z][a-z]*\) .*/\1/p' "$tmp/u.cls" | sort -u); do
        grep -q "^\.B net classifier $c\b" "$man" || missing="$missing 'classifier $c'"
    done
    for w in $(cat "$tmp"/u.* | grep -o -- '[[ (]-[a-z][a-z_]*' | cut -c2- | sort -u); do
        sed 's/\\-/-/g' "$man" | grep -q -- "$w\b" || missing="$missing '$w'"
    done
    [ -z "$missing" ] || fail "docs/net.1 lacks:$missing"
    if command -v groff >/dev/null; then
        warn=$(groff -man -ww -z "$man" 2>&1)
        [ -z "$warn" ] || fail "groff: $warn"
    fi
}

test_pip_install_venv() {
    [ -n "$san" ] && skip "a sanitized library cannot be loaded into python"
    /usr/bin/python3 -c 'import venv, pip, numpy' 2>/dev/null ||
        skip "/usr/bin/python3 lacks venv, pip or numpy (apt-get install python3-venv python3-pip python3-numpy)"
    cp -r "$root/python" "$tmp/pysrc" # pip builds in the tree it is given: keep ours clean
    # Debian's pip installs into the venv (pip --python): ensurepip would take longer than the rest.
    /usr/bin/python3 -m venv --without-pip --system-site-packages "$tmp/venv" || fail "venv"
    /usr/bin/python3 -m pip --python "$tmp/venv/bin/python" install -q --no-build-isolation \
        --no-index "$tmp/pysrc" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "pip install"; }
    cd "$tmp" || fail "cd"
    out=$(LD_LIBRARY_PATH=$prefix/lib "$tmp/venv/bin/python" -c \
        'import cfgnet; print(cfgnet.__file__); print(cfgnet.version())') ||
        fail "import through the loader: $out"
    echo "$out"
    echo "$out" | head -n 1 | grep -q "^$tmp/venv/lib/" || fail "imported from the wrong place"
    echo "$out" | tail -n 1 | grep -qx '[0-9]*\.[0-9]*\.[0-9]*' || fail "version"
    err=$(CFGNET_LIBRARY=$tmp/nonexistent.so "$tmp/venv/bin/python" -c \
        'import cfgnet; cfgnet.version()' 2>&1) && fail "a missing library loaded"
    echo "$err" | grep -q "CFGNET_LIBRARY" || fail "no hint in: $err"
}

run_test test_exported_symbols
run_test test_soname
run_test test_install_uninstall_destdir
run_test test_install_prefix_pkgconfig
run_test test_examples_build
run_test test_example_train
run_test test_example_classify_matches_net
run_test test_example_features
run_test test_static_symbols
run_test test_examples_static
run_test test_man_page
run_test test_pip_install_venv
suite_end
