#!/bin/bash
# lenet5_train.sh - LeNet-5 training speed on Fashion-MNIST: cfgnet against PyTorch and against
# Debian's darknet binary, side by side in one run (see bench/README.md).
#
#   bench/lenet5_train.sh [--full] [--rounds N] [--iters N] [--darknet-iters N]
#
# Default mode (about 2.5 minutes on 2 cores), in --rounds interleaved rounds (A B C D, A B C D ...)
# so that a drift in the machine's speed hits every contender alike:
#   A  cfgnet `net classifier train` on cfg/lenet5.cfg (a copy with max_batches=--iters)
#   B  PyTorch 1.13, the same LeNet-5, batch, optimiser and schedule (bench/lenet5_torch.py)
#   C  Debian `darknet classifier train` on cfg/lenet5-darknet.cfg (3 channels, maxpool)
#   D  cfgnet on the same cfg/lenet5-darknet.cfg
# and prints the median training images/s of each and the ratios cfgnet/PyTorch (A/B) and
# cfgnet/Darknet (D/C). Start-up (building the net, checking the image list, importing torch)
# is left out of every figure: each is taken from the program's own progress lines after a
# warm-up of 100 steps (cfgnet), --warmup steps (PyTorch) or 20 steps (Darknet).
# --full also trains cfg/lenet5.cfg to its max_batches with cfgnet (wall time of the whole
# command, then `net classifier valid` top-1 on the 10,000 test images) and the PyTorch twin.
#
# It installs nothing (`make bench` installs darknet, python3-torch, python3-numpy first); it builds
# ./net and prepares data/fashion when they are missing. Checkpoints go to a temporary directory,
# never to backup/. THREADS (default 2) sets OMP_NUM_THREADS for cfgnet and PyTorch's threads;
# Debian's darknet is built without OpenMP and always computes on one thread.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=3 ITERS=1500 DK_ITERS=300 FULL=0
THREADS=${THREADS:-2}
PYTHON=/usr/bin/python3 # Debian's, which has python3-torch: not whichever python3 is first on PATH
CFG=cfg/lenet5.cfg DK_CFG=cfg/lenet5-darknet.cfg DATA=data/fashion.data

usage() {
    echo "usage: bench/lenet5_train.sh [--full] [--rounds N] [--iters N] [--darknet-iters N]" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
    --full) FULL=1 ;;
    --rounds) ROUNDS=${2:?}; shift ;;
    --iters) ITERS=${2:?}; shift ;;
    --darknet-iters) DK_ITERS=${2:?}; shift ;;
    *) usage ;;
    esac
    shift
done
[ "$ITERS" -ge 200 ] || { echo "--iters must be >= 200 (100 warm-up + measured)" >&2; exit 2; }
[ "$DK_ITERS" -ge 40 ] || { echo "--darknet-iters must be >= 40" >&2; exit 2; }

die() {
    echo "lenet5_train.sh: $*" >&2
    exit 1
}

# ---- prerequisites ------------------------------------------------------------------------
"$PYTHON" -c 'import torch, numpy' 2>/dev/null ||
    die "$PYTHON cannot import torch and numpy: run 'make bench' (installs python3-torch python3-numpy)"
command -v darknet >/dev/null || die "no darknet binary: run 'make bench' (installs Debian's darknet)"
# NET (default ./net, built by `make net`) is the cfgnet binary: bench/run.sh passes its own.
NET=$(default_net) || die "'make net' failed"
fashion_ready "$NET" "$DATA" || die "could not prepare data/fashion, or $DATA is missing"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/lenet5-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export OMP_NUM_THREADS=$THREADS

# $TMP/fashion.data, with backup= pointing into $TMP (nothing in backup/ is touched).
scratch_data "$DATA" "$TMP" || die "cannot write $TMP/fashion.data"

# cfg_key FILE KEY: the value of KEY in FILE's [net] section.
cfg_key() {
    awk -F= -v k="$2" '/^\[/ { if (n++) exit } { gsub(/[ \t\r]/, "") } $1 == k { print $2; exit }' "$1"
}
# cfg_copy SRC DST MAX_BATCHES: SRC with max_batches= replaced.
cfg_copy() {
    grep -q '^max_batches[[:space:]]*=' "$1" || die "$1 has no max_batches= to replace"
    sed -E "s/^max_batches[[:space:]]*=.*/max_batches=$3/" "$1" >"$2"
}
BATCH=$(cfg_key "$CFG" batch)
DK_BATCH=$(cfg_key "$DK_CFG" batch)
mkdir -p "$TMP/a" "$TMP/d"
cfg_copy "$CFG" "$TMP/a/lenet5.cfg" "$ITERS"
cfg_copy "$DK_CFG" "$TMP/d/lenet5-darknet.cfg" "$ITERS"
cfg_copy "$DK_CFG" "$TMP/darknet.cfg" "$DK_ITERS"

# cfgnet_rate LOG BATCH: images/s over the progress lines after the first (lines come every 100
# steps; "700/700: epoch 1.49, loss 0.61, avg 0.63, rate 0.05, 9876 img/s, 9.9 s"). Each line's
# img/s covers its own interval, so the total rate is images over the summed interval times.
cfgnet_rate() {
    awk -v b="$2" 'match($0, /^[0-9]+\/[0-9]+: epoch .* [0-9.]+ img\/s, /) {
        split($0, f, "/"); it = f[1] + 0
        if (prev != "") {
            m = $0; sub(/ img\/s.*/, "", m); sub(/.* /, "", m)
            imgs += (it - prev) * b; secs += (it - prev) * b / m
        }
        prev = it
    } END { if (secs > 0) printf "%.0f\n", imgs / secs; else print "nan" }' "$1"
}

# darknet_rate LOG BATCH [compute]: images/s over the steps after the first 20, from Darknet's
# own per-step lines ("Loaded: 0.000120 seconds" then "21, 0.045: 2.29, 2.30 avg, 0.05 rate,
# 0.056 seconds, 2688 images"). The time of a step is its wait for data plus its training time,
# as cfgnet's figure includes its loader; with "compute", the training time alone.
darknet_rate() {
    awk -v b="$2" -v only="${3:-}" '
    /^Loaded: [0-9.]+ seconds/ { load = $2 + 0; next }
    /^[0-9]+, [0-9.]+: .* seconds, [0-9]+ images/ {
        it = $1 + 0; s = $0; sub(/ seconds,.*/, "", s); sub(/.* /, "", s)
        if (it > 20) { n++; secs += s + (only == "compute" ? 0 : load) }
        load = 0
    } END { if (secs > 0) printf "%.0f\n", n * b / secs; else print "nan" }' "$1"
}

median() {
    tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        printf "%.0f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }

run_cfgnet() { # CFG LOG
    timeout 600 "$NET" classifier train "$TMP/fashion.data" "$1" -clear -print_every 100 \
        -backup_every 1000000 </dev/null >"$2" 2>&1 || { cat "$2" >&2; die "cfgnet training failed"; }
}
run_torch() { # LOG
    timeout 600 "$PYTHON" bench/lenet5_torch.py --cfg "$CFG" --threads "$THREADS" --repeats 1 \
        --iters "$((ITERS - 100))" --warmup 100 </dev/null >"$1" 2>&1 ||
        { cat "$1" >&2; die "PyTorch baseline failed"; }
}
run_darknet() { # LOG
    timeout 600 darknet classifier train "$TMP/fashion.data" "$TMP/darknet.cfg" </dev/null \
        >"$1" 2>&1 || { tail -20 "$1" >&2; die "darknet failed"; }
    ! grep -m1 'Too many or too few labels' "$1" >&2 ||
        die "darknet found no single label in an image path (labels= is matched against the path)"
}

echo "== LeNet-5 training speed, Fashion-MNIST 60,000 training images"
echo "   $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
echo "   cfgnet $(git rev-parse --short HEAD 2>/dev/null || echo '?'), OMP_NUM_THREADS=$THREADS;" \
    "$("$PYTHON" -c 'import torch; print("torch", torch.__version__)'), $THREADS threads;" \
    "darknet $(dpkg-query -W -f='${Version}' darknet 2>/dev/null || echo '?') (1 thread, no OpenMP)"
echo "   $ROUNDS rounds; cfgnet: $ITERS steps, rate over steps 101-$ITERS; PyTorch: 100 warm-up +" \
    "$((ITERS - 100)) timed steps; darknet: $DK_ITERS steps, rate over steps 21-$DK_ITERS"

A="" B="" C="" Ccomp="" D=""
for r in $(seq "$ROUNDS"); do
    run_cfgnet "$TMP/a/lenet5.cfg" "$TMP/a$r.log"
    a=$(cfgnet_rate "$TMP/a$r.log" "$BATCH")
    run_torch "$TMP/b$r.log"
    b=$(sed -n 's/^torch_train_img_per_s //p' "$TMP/b$r.log")
    run_darknet "$TMP/c$r.log"
    c=$(darknet_rate "$TMP/c$r.log" "$DK_BATCH")
    cc=$(darknet_rate "$TMP/c$r.log" "$DK_BATCH" compute)
    run_cfgnet "$TMP/d/lenet5-darknet.cfg" "$TMP/d$r.log"
    d=$(cfgnet_rate "$TMP/d$r.log" "$DK_BATCH")
    echo "   round $r: cfgnet $a, PyTorch $b, darknet $c (compute only $cc), cfgnet on darknet cfg $d img/s"
    A="$A $a" B="$B $b" C="$C $c" Ccomp="$Ccomp $cc" D="$D $d"
done
mA=$(echo "$A" | median) mB=$(echo "$B" | median) mC=$(echo "$C" | median)
mCc=$(echo "$Ccomp" | median) mD=$(echo "$D" | median)
rAB=$(ratio "$mA" "$mB") rDC=$(ratio "$mD" "$mC")
met() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t ? "met" : "NOT met") }'; }

echo
printf '%-46s %10s   %s\n' "training images/s (median of $ROUNDS)" "img/s" "rounds"
printf '%-46s %10s   %s\n' "cfgnet     $CFG" "$mA" "$A"
printf '%-46s %10s   %s\n' "PyTorch    same LeNet-5 (avgpool, 1 channel)" "$mB" "$B"
printf '%-46s %10s   %s\n' "cfgnet     $DK_CFG" "$mD" "$D"
printf '%-46s %10s   %s\n' "darknet    $DK_CFG" "$mC" "$C"
printf '%-46s %10s   %s\n' "darknet    (its compute time alone)" "$mCc" "$Ccomp"
echo
echo "cfgnet / PyTorch = $rAB   (target >= 1.5, issue 5: $(met "$rAB" 1.5))"
echo "cfgnet / darknet = $rDC   (target >= 2: $(met "$rDC" 2))"
echo
echo "commands (cfg copies with max_batches changed, backup= in a temporary directory):"
echo "  OMP_NUM_THREADS=$THREADS ./net classifier train DATA lenet5.cfg -clear -print_every 100 -backup_every 1000000"
echo "  $PYTHON bench/lenet5_torch.py --cfg $CFG --threads $THREADS --repeats 1 --iters $((ITERS - 100)) --warmup 100"
echo "  darknet classifier train DATA lenet5-darknet.cfg   (max_batches=$DK_ITERS)"
echo "  OMP_NUM_THREADS=$THREADS ./net classifier train DATA lenet5-darknet.cfg -clear -print_every 100 -backup_every 1000000"

[ "$FULL" = 1 ] || exit 0

# ---- --full: the whole training run --------------------------------------------------------
echo
echo "== --full: $CFG to max_batches=$(cfg_key "$CFG" max_batches), then top-1 on the test set"
t0=$(date +%s.%N)
timeout 3600 "$NET" classifier train "$TMP/fashion.data" "$CFG" -clear </dev/null | tee "$TMP/full.log" |
    awk 'NR % 10 == 1' || die "cfgnet full training failed" # one progress line in ten shown
t1=$(date +%s.%N)
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
base=$(basename "$CFG" .cfg)
"$NET" classifier valid "$TMP/fashion.data" "$CFG" "$TMP/backup/$base.weights" | tee "$TMP/valid.log" ||
    die "cfgnet valid failed"
top1=$(sed -n 's/.*top-1 \([0-9.]*\).*/\1/p' "$TMP/valid.log")
"$PYTHON" bench/lenet5_torch.py --cfg "$CFG" --threads "$THREADS" --full | tee "$TMP/torch_full.log" ||
    die "PyTorch full training failed"
echo
echo "cfgnet full training: ${wall} s wall (target <= 600: $(awk -v w="$wall" 'BEGIN { print (w <= 600 ? "met" : "NOT met") }'))," \
    "test top-1 $top1 (target >= 0.89: $(met "$top1" 0.89))"
echo "PyTorch same schedule: $(sed -n 's/^torch_full_wall_s //p' "$TMP/torch_full.log") s of training," \
    "test top-1 $(sed -n 's/^torch_test_top1 //p' "$TMP/torch_full.log")"
