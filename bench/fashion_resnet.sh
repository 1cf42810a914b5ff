#!/bin/bash
# fashion_resnet.sh - cfg/fashion/resnet.cfg (ResNet-8, 690,970 parameters) trained on
# Fashion-MNIST by cfgnet and by its PyTorch twin (bench/fashion_resnet_torch.py), same network,
# init family and schedule, one after the other; prints wall time, images/s and test top-1 of both
# side by side (see bench/README.md).
#
#   cfgnet:  ./net classifier train data/fashion.data cfg/fashion/resnet.cfg -clear
#            then ./net classifier valid on the 10,000 test images
#   PyTorch: bench/fashion_resnet_torch.py --cfg cfg/fashion/resnet.cfg (2 threads)
#
# The full schedule is the cfg's (max_batches steps of batch=; issue 3 sets 3000 x 128, 6.4
# epochs, lr 0.1 cosine to 0: about 30 minutes for cfgnet on 2 quiet cores, and about as much
# again for PyTorch; the twin reads the cfg at run time). --steps N runs both on N
# steps instead (a copy of the cfg with max_batches=N: the cosine then spans N steps), for a quick
# check; --cfgnet-only / --torch-only run one side. --keep FILE copies cfgnet's trained .weights
# to FILE. Checkpoints go to a temporary directory, never to backup/. THREADS (default 2) sets
# OMP_NUM_THREADS for cfgnet and torch.set_num_threads for PyTorch. NET (default ./net, built or
# brought up to date by `make net`) is the cfgnet binary.
#
# Wall time: cfgnet's is the whole `classifier train` command (start-up and the check of the
# 60,000 listed images included, a few seconds); PyTorch's the training loop alone (its data are
# in memory tensors). images/s = steps x batch / that wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

CFG=cfg/fashion/resnet.cfg DATA=data/fashion.data
STEPS=0 RUN_CFGNET=1 RUN_TORCH=1 KEEP= TP=
THREADS=${THREADS:-2}
PYTHON=/usr/bin/python3 # Debian's, which has python3-torch: not whichever python3 is first on PATH

usage() {
    echo "usage: bench/fashion_resnet.sh [--steps N] [--cfgnet-only | --torch-only] [--keep FILE]" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
    --steps) STEPS=${2:?}; shift ;;
    --cfgnet-only) RUN_TORCH=0 ;;
    --torch-only) RUN_CFGNET=0 ;;
    --keep) KEEP=${2:?}; shift ;;
    *) usage ;;
    esac
    shift
done
[ "$RUN_CFGNET" = 1 ] || [ "$RUN_TORCH" = 1 ] || usage
case "$STEPS" in '' | *[!0-9]*) usage ;; esac

die() {
    echo "fashion_resnet.sh: $*" >&2
    exit 1
}

cfg_key() { sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*\([^[:space:]#]*\).*/\1/p" "$1" | head -1; }

# ---- prerequisites ------------------------------------------------------------------------
if [ "$RUN_TORCH" = 1 ]; then
    "$PYTHON" -c 'import torch, numpy' 2>/dev/null ||
        die "$PYTHON cannot import torch and numpy: run 'make bench' (installs python3-torch python3-numpy)"
fi
NET=$(default_net) || die "'make net' failed"
if [ "$RUN_CFGNET" = 1 ]; then
    fashion_ready "$NET" "$DATA" || die "could not prepare data/fashion, or $DATA is missing"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fashion-resnet.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export OMP_NUM_THREADS=$THREADS

# $TMP/fashion.data, with backup= in $TMP; the cfg itself, or a copy with max_batches=--steps.
scratch_data "$DATA" "$TMP" || die "cannot write $TMP/fashion.data"
RUN_CFG=$CFG
if [ "$STEPS" -gt 0 ]; then
    RUN_CFG=$TMP/resnet.cfg
    sed "s/^[[:space:]]*max_batches[[:space:]]*=.*/max_batches=$STEPS/" "$CFG" >"$RUN_CFG"
fi
STEPS=$(cfg_key "$RUN_CFG" max_batches)
BATCH=$(cfg_key "$RUN_CFG" batch)
PARAMS=$("$NET" summary "$CFG" | sed -n 's/^total: \([0-9,]*\) parameters.*/\1/p' | tr -d ,)
echo "== $CFG: $PARAMS parameters (net summary), $STEPS steps x $BATCH, $THREADS threads;" \
    "cfgnet $(git rev-parse --short HEAD 2>/dev/null || echo '?'), torch" \
    "$("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo '?')"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
rate() { awk -v s="$STEPS" -v b="$BATCH" -v w="$1" 'BEGIN { printf "%.0f", s * b / w }'; }

C_WALL=- C_RATE=- C_TOP1=-
if [ "$RUN_CFGNET" = 1 ]; then
    echo "-- cfgnet: $NET classifier train DATA $RUN_CFG -clear (one progress line in ten shown)"
    t0=$(now)
    "$NET" classifier train "$TMP/fashion.data" "$RUN_CFG" -clear </dev/null >"$TMP/train.log" 2>&1 ||
        { tail -20 "$TMP/train.log" >&2; die "cfgnet training failed"; }
    t1=$(now)
    awk 'NR % 10 == 1' "$TMP/train.log" | tail -n 12
    C_WALL=$(elapsed "$t0" "$t1")
    C_RATE=$(rate "$C_WALL")
    WEIGHTS=$TMP/backup/$(basename "$RUN_CFG" .cfg).weights
    "$NET" classifier valid "$TMP/fashion.data" "$RUN_CFG" "$WEIGHTS" >"$TMP/valid.log" 2>&1 ||
        { cat "$TMP/valid.log" >&2; die "cfgnet valid failed"; }
    grep -m1 'top-1' "$TMP/valid.log"
    C_TOP1=$(sed -n 's/.*top-1 \([0-9.]*\).*/\1/p' "$TMP/valid.log" | head -1)
    if [ -n "$KEEP" ]; then
        cp "$WEIGHTS" "$KEEP" && echo "kept $WEIGHTS as $KEEP"
    fi
fi

T_WALL=- T_RATE=- T_TOP1=-
if [ "$RUN_TORCH" = 1 ]; then
    echo "-- PyTorch: bench/fashion_resnet_torch.py --cfg $CFG --steps $STEPS --threads $THREADS"
    "$PYTHON" bench/fashion_resnet_torch.py --cfg "$CFG" --steps "$STEPS" --threads "$THREADS" |
        tee "$TMP/torch.log" | grep -v '^torch_' | awk 'NR % 10 == 1' || die "PyTorch training failed"
    TP=$(sed -n 's/^torch_params //p' "$TMP/torch.log")
    [ -z "$PARAMS" ] || [ "$TP" = "$PARAMS" ] ||
        die "the PyTorch model has $TP parameters, net summary says $PARAMS: the two nets differ"
    T_WALL=$(sed -n 's/^torch_wall_s //p' "$TMP/torch.log")
    T_RATE=$(sed -n 's/^torch_img_per_s //p' "$TMP/torch.log")
    T_TOP1=$(sed -n 's/^torch_test_top1 //p' "$TMP/torch.log")
fi

echo
echo "== $CFG, $STEPS steps x $BATCH, $THREADS threads (timings on a shared machine are noisy)"
printf '%-10s %12s %10s %12s\n' "" "wall (s)" "images/s" "test top-1"
printf '%-10s %12s %10s %12s\n' cfgnet "$C_WALL" "$C_RATE" "$C_TOP1"
printf '%-10s %12s %10s %12s\n' PyTorch "$T_WALL" "$T_RATE" "$T_TOP1"
echo "parameters: net summary $PARAMS${TP:+, PyTorch $TP}"
