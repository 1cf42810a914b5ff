#!/bin/bash
# contended.sh - cfgnet's 2-thread runs with and without a competing tenant, side by side with
# PyTorch 1.13 and OpenBLAS under the same competitors (issue 5: a thread that another process
# preempts must not hold up the whole layer).
#
#   bench/contended.sh [--competitors 0,1] [--rounds 3] [--builds build/lead,build/sched]
#                      [--no-torch] [--no-gemm] [--quick]
#
# For each competitor count N (--competitors, default 0,1) it starts N busy loops
# (`sh -c 'while :; do :; done'`, each wanting a whole core of the 2), then runs, round after round
# (A B C, A B C, ...: a drift in the machine's speed hits all alike), at THREADS (default 2)
# threads:
#   nets   `net speed CFG -batch B` of every build in --builds on Darknet's resnet50.cfg and
#          resnext50.cfg at batch 1 (256x256) and cfg/resnet18.cfg at batch 16, and
#          bench/torch_speed.py on the torchvision model of the same shape (the better of NCHW and
#          channels_last): ms per batch
#   gemm   each build's bench_gemm (`make bench-gemm`'s program: cfgnet's gemm and OpenBLAS's
#          cblas_sgemm alternately) on a few shapes: median GFLOP/s (wall clock)
# and kills the competitors (also on exit or interrupt: trap). Each figure is the median over the
# rounds of each process's own median over its timed passes; "ideal" is the idle figure times
# (N + THREADS) / THREADS when THREADS = cores: the fair share the competitors leave us.
# Several builds A/B a change in the same run (--builds build/lead,build/mine); a build without
# bench/bench_gemm is built with `make BUILD=... .../bench/bench_gemm` (needs libopenblas-dev).
# The machine is shared: check the load average printed before and after (another tenant adds
# its own competitors). About 6 minutes with the defaults on 2 cores; --quick (1 round, fewer
# passes) about 2.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-2}
PYTHON=/usr/bin/python3 # Debian's, which has python3-torch
COMPETITORS=0,1 ROUNDS=3 BUILDS=build/lead,build/sched TORCH=1 GEMM=1
IT1=8 IT16=3 WARM=1 REPS=5

usage() {
    echo "usage: bench/contended.sh [--competitors 0,1] [--rounds N] [--builds B1,B2] [--no-torch] [--no-gemm] [--quick]" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
    --competitors) COMPETITORS=${2:?}; shift ;;
    --rounds) ROUNDS=${2:?}; shift ;;
    --builds) BUILDS=${2:?}; shift ;;
    --no-torch) TORCH=0 ;;
    --no-gemm) GEMM=0 ;;
    --quick) ROUNDS=1 IT1=4 IT16=2 REPS=3 ;;
    *) usage ;;
    esac
    shift
done
die() {
    echo "contended.sh: $*" >&2
    exit 1
}
[ "$ROUNDS" -ge 1 ] 2>/dev/null || usage

DKCFG=/usr/share/darknet/cfg
# case name, cfg, batch, torchvision model, input size
CASES="resnet50.cfg:$DKCFG/resnet50.cfg:1:resnet50:256
resnext50.cfg:$DKCFG/resnext50.cfg:1:resnext50_32x4d:256
resnet18-b16:cfg/resnet18.cfg:16:resnet18:224"
# bench_gemm shape names (its -shape): a square, a ResNet 1x1, a 3x3 and a 49-column layer
SHAPES="2048^2|l2 1x1 128>512|l3 3x3 256|l4 1x1 512>2048"

for b in ${BUILDS//,/ }; do
    [ -x "$b/net" ] || die "$b/net is missing (make BUILD=$b net)"
    if [ "$GEMM" = 1 ] && [ ! -x "$b/bench/bench_gemm" ]; then
        make --no-print-directory BUILD="$b" "$b/bench/bench_gemm" >/dev/null ||
            die "cannot build $b/bench/bench_gemm"
    fi
done
[ "$TORCH" = 1 ] && ! "$PYTHON" -c 'import torch, torchvision' 2>/dev/null &&
    { echo "contended.sh: python3-torch or torchvision missing: PyTorch not run" >&2; TORCH=0; }
for c in $(echo "$CASES" | cut -d: -f2 | sort -u); do [ -f "$c" ] || die "$c is missing"; done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cfgnet-contended.XXXXXX")
PIDS=""
stop_competitors() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    PIDS=""
}
trap 'stop_competitors; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
start_competitors() { # N
    for _ in $(seq "$1"); do
        sh -c 'while :; do :; done' &
        PIDS="$PIDS $!"
    done
}
export OMP_NUM_THREADS=$THREADS

median() {
    tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        printf "%.2f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
cfgnet_ms() { # BUILD CFG BATCH ITERS: the total line's ms per pass
    timeout 600 "$1/net" speed "$2" -batch "$3" -iters "$4" -warmup "$WARM" -threads "$THREADS" \
        </dev/null >"$TMP/net.log" 2>&1 || { tail -2 "$TMP/net.log" >&2; echo nan; return; }
    sed -n 's/^total: \([0-9.]*\) ms per pass.*/\1/p' "$TMP/net.log"
}
torch_ms() { # MODEL SIZE BATCH ITERS: the better layout's median ms
    timeout 600 "$PYTHON" bench/torch_speed.py "$1" --size "$2" --batch "$3" --iters "$4" \
        --warmup "$WARM" --layout nchw,cl --threads "$THREADS" </dev/null >"$TMP/torch.log" 2>&1 ||
        { tail -2 "$TMP/torch.log" >&2; echo nan; return; }
    sed -n 's/^torch_best .* ms \([0-9.]*\) layout .*/\1/p' "$TMP/torch.log"
}
gemm_rates() { # BUILD SHAPE: "cfgnet openblas", median GFLOP/s of each
    timeout 600 "$1/bench/bench_gemm" -threads "$THREADS" -reps "$REPS" -shape "$2" </dev/null >"$TMP/gemm.log" 2>&1 ||
        { tail -2 "$TMP/gemm.log" >&2; echo "nan nan"; return; }
    awk -F'|' '!/^#/ && !/^net / && NF > 3 { split($2, a, " "); split($3, b, " "); print a[2], b[2] }' "$TMP/gemm.log"
}
key() { echo "$*" | tr -c 'a-zA-Z0-9\n' '_'; }
add() { eval "V_$(key "$1")=\"\${V_$(key "$1"):-} $2\""; }
get() { eval "echo \"\${V_$(key "$1"):-}\"" | median; }

echo "# bench/contended.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, threads $THREADS," \
    "builds $BUILDS, competitors $COMPETITORS, $ROUNDS round(s); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in ${COMPETITORS//,/ }; do
    start_competitors "$n"
    sleep 1
    for r in $(seq "$ROUNDS"); do
        while IFS=: read -r name cfg batch model size; do
            it=$IT1
            [ "$batch" = 1 ] || it=$IT16
            line="n=$n round $r $name:"
            for b in ${BUILDS//,/ }; do
                v=$(cfgnet_ms "$b" "$cfg" "$batch" "$it")
                add "$n $name $b" "$v"
                line="$line $b $v"
            done
            if [ "$TORCH" = 1 ]; then
                v=$(torch_ms "$model" "$size" "$batch" "$it")
                add "$n $name torch" "$v"
                line="$line torch $v"
            fi
            echo "  $line ms" >&2
        done <<<"$CASES"
        [ "$GEMM" = 1 ] || continue
        while read -r shape; do
            line="n=$n round $r gemm $shape:"
            for b in ${BUILDS//,/ }; do
                read -r c o <<<"$(gemm_rates "$b" "$shape")"
                add "$n gemm $shape $b" "$c"
                add "$n gemm $shape openblas $b" "$o"
                line="$line $b $c (OpenBLAS $o)"
            done
            echo "  $line GFLOP/s" >&2
        done <<<"$(echo "$SHAPES" | tr '|' '\n')"
    done
    stop_competitors
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- tables -----------------------------------------------------------------------------------
first=${COMPETITORS%%,*}
hdr="| case | competitors"
sep="|---|---:"
for b in ${BUILDS//,/ }; do hdr="$hdr | $b ms | ideal"; sep="$sep|---:|---:"; done
[ "$TORCH" = 1 ] && hdr="$hdr | PyTorch ms" && sep="$sep|---:"
echo
echo "Inference, ms per batch (medians of $ROUNDS round(s)); ideal = the first competitor count's"
echo "figure x (N + $THREADS) / $THREADS (each of our threads gets a fair share of a core):"
echo
echo "$hdr |"
echo "$sep|"
while IFS=: read -r name cfg batch model size; do
    for n in ${COMPETITORS//,/ }; do
        row="| $name b$batch | $n"
        for b in ${BUILDS//,/ }; do
            v=$(get "$n $name $b") v0=$(get "$first $name $b")
            row="$row | $v | $(awk -v a="$v0" -v n="$n" -v f="$first" -v t="$THREADS" \
                'BEGIN { if (a == a + 0) printf "%.1f", a * (n + t) / (f + t); else print "-" }')"
        done
        [ "$TORCH" = 1 ] && row="$row | $(get "$n $name torch")"
        echo "$row |"
    done
done <<<"$CASES"
if [ "$GEMM" = 1 ]; then
    hdr="| shape | competitors"
    sep="|---|---:"
    for b in ${BUILDS//,/ }; do hdr="$hdr | $b | OpenBLAS (same run)"; sep="$sep|---:|---:"; done
    echo
    echo "SGEMM, $THREADS threads, GFLOP/s (median of $REPS repeats in each process, median of $ROUNDS round(s)):"
    echo
    echo "$hdr |"
    echo "$sep|"
    while read -r shape; do
        for n in ${COMPETITORS//,/ }; do
            row="| $shape | $n"
            for b in ${BUILDS//,/ }; do
                row="$row | $(get "$n gemm $shape $b") | $(get "$n gemm $shape openblas $b")"
            done
            echo "$row |"
        done
    done <<<"$(echo "$SHAPES" | tr '|' '\n')"
fi
