#!/bin/bash
# eval_crops_ensemble.sh - test-time views and ensembles on Fashion-MNIST, in one run: three
# LeNet-5 models (cfg/lenet5.cfg, trained with -seed 1, 2, 3), then `net classifier valid` top-1
# and top-2 on the 10,000 test images for
#   - each model alone, single view (the 28x28 image as it is: what training sees);
#   - model 1 with test-time views: -crops 2 (image and mirror), -crops 10 (centre, corners and
#     their mirrors: 28x28 crops of the image resized to 32x32 = 28 * 256/224, the ImageNet
#     protocol's ratio), and multi-scale -scales 28,32 (centre crops of the 28x28 and 32x32
#     resizes, averaged); with FULL=1 also -crops 5 (no mirrors);
#   - the ensemble of the three (equal weights), single view; with FULL=1 also ten-crop;
# and prints them side by side with the gain over the single view / the best member.
#
#   bench/eval_crops_ensemble.sh [NET]        NET defaults to ./net (built when missing)
#
# Environment: MAX_BATCHES (default: the cfg's 6000) shortens training of each model; AUG holds
# extra [net] lines for training, e.g. AUG=$'flip=1' when the loader has augmentation (Fashion-
# MNIST shoes all face left: mirrored views only help a model that has seen mirrors in training).
# SEEDS (default "1 2 3"), FULL (default 0). Everything goes to a temporary directory; backup/ is not touched. The
# machine is shared (2 cores): timings are not reported, only accuracies, which do not depend on
# timing (same seed, same cfg, same data: same weights).
set -euo pipefail
cd "$(dirname "$0")/.."

NET=${1:-./net}
SEEDS=${SEEDS:-1 2 3}
MAX_BATCHES=${MAX_BATCHES:-}
AUG=${AUG:-}
FULL=${FULL:-0}
DATA=data/fashion.data

if [ ! -x "$NET" ]; then make net; fi
[ -f data/fashion/test.list ] || "$NET" prepare fashion-mnist

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# lenet5.cfg with max_batches and the AUG lines after [net]
make_cfg() {
    awk -v mb="$MAX_BATCHES" -v aug="$AUG" '
        /^max_batches=/ && mb != "" { print "max_batches=" mb; next }
        { print }
        /^\[net\]/ && aug != "" { print aug }' cfg/lenet5.cfg >"$1"
}

WEIGHTS=()
for s in $SEEDS; do
    mkdir -p "$TMP/s$s"
    sed "s#^backup=.*#backup=$TMP/s$s/#" "$DATA" >"$TMP/s$s/fashion.data"
    make_cfg "$TMP/s$s/lenet5.cfg"
    echo "training seed $s: $NET classifier train $TMP/s$s/fashion.data $TMP/s$s/lenet5.cfg -clear -seed $s"
    "$NET" classifier train "$TMP/s$s/fashion.data" "$TMP/s$s/lenet5.cfg" -clear -seed "$s" \
        -print_every 1000 >"$TMP/s$s/train.log" 2>&1 || { cat "$TMP/s$s/train.log"; exit 1; }
    WEIGHTS+=("$TMP/s$s/lenet5.weights")
done
CFG=$TMP/s${SEEDS%% *}/lenet5.cfg

# valid LABEL ARGS... : one row "label top-1 top-2"
declare -A TOP1
valid() {
    local label=$1
    shift
    local out
    out=$("$NET" classifier valid "$DATA" "$@") || { echo "$out"; exit 1; }
    local line
    line=$(echo "$out" | grep -m1 ' images, top-1 ')
    local t1 t2
    t1=$(echo "$line" | sed 's/.*top-1 \([0-9.]*\).*/\1/')
    t2=$(echo "$line" | sed 's/.*top-2 \([0-9.]*\).*/\1/')
    TOP1[$label]=$t1
    printf '%-34s top-1 %s  top-2 %s\n' "$label" "$t1" "$t2"
}

echo
echo "== single models, single view"
i=0
for w in "${WEIGHTS[@]}"; do
    i=$((i + 1))
    valid "model $i" "$CFG" "$w"
done
W1=${WEIGHTS[0]}
echo "== model 1, test-time views"
valid "model 1 -crops 2 (mirror)" "$CFG" "$W1" -crops 2
[ "$FULL" = 1 ] && valid "model 1 -crops 5 (32->28)" "$CFG" "$W1" -crops 5
valid "model 1 -crops 10 (32->28)" "$CFG" "$W1" -crops 10
valid "model 1 -scales 28,32" "$CFG" "$W1" -scales 28,32
ENS=()
for w in "${WEIGHTS[@]:1}"; do ENS+=(-ensemble "$CFG,$w"); done
echo "== ensemble of ${#WEIGHTS[@]}"
valid "ensemble" "$CFG" "$W1" "${ENS[@]}"
[ "$FULL" = 1 ] && valid "ensemble -crops 10" "$CFG" "$W1" "${ENS[@]}" -crops 10

best=0
for i in $(seq 1 ${#WEIGHTS[@]}); do
    best=$(echo "$best ${TOP1[model $i]}" | awk '{print ($2 > $1) ? $2 : $1}')
done
echo
awk -v s="${TOP1[model 1]}" -v c2="${TOP1[model 1 -crops 2 (mirror)]}" \
    -v c10="${TOP1[model 1 -crops 10 (32->28)]}" -v ms="${TOP1[model 1 -scales 28,32]}" \
    -v e="${TOP1[ensemble]}" -v b="$best" 'BEGIN {
    printf "model 1: single view %.4f, -crops 10 %.4f (%+.2f points), -crops 2 %.4f (%+.2f), -scales 28,32 %.4f (%+.2f)\n",
           s, c10, 100 * (c10 - s), c2, 100 * (c2 - s), ms, 100 * (ms - s)
    printf "ensemble of 3: %.4f vs best member %.4f (%+.2f points)\n", e, b, 100 * (e - b)
}'
echo "(MAX_BATCHES=${MAX_BATCHES:-6000}, AUG='${AUG}', seeds $SEEDS, FULL=$FULL)"
