#!/bin/bash
# eval_crops_ensemble.sh - test-time views and ensembles on Fashion-MNIST, in one run: three
# Fashion-MNIST ResNets (cfg/fashion/resnet.cfg, trained with -seed 1, 2, 3), then
# `net classifier valid` top-1 and top-2 on the test images for
#   - each model alone, single view (the 28x28 image as it is);
#   - model 1, single centre crop at -scale 32/28 (the centre 28x28 of the 32x32 resize);
#   - model 1, -crops 10: centre and four corners of the 32x32 resize, and their mirrors
#     (the default scale of -crops 10, 256/224 = 32/28 for 28x28 input);
#   - the ensemble of the three (equal weights), single view;
# and prints a table with the gains: 10-crop over single view (and over the single centre crop
# at the same scale) and the ensemble over its best member.
#
# Why the models are trained with random crops: a 28x28 Fashion-MNIST garment fills its frame, so
# a corner crop of the bare image cuts the garment and shifts it, which a model trained only on
# centred images has never seen (last session, un-augmented LeNets lost 16.9 points at 10 crops).
# Here training draws, per image, a shorter side uniform in 28..32 pixels (min_crop=28
# max_crop=32: the image resized by 1 to 32/28) and a 28x28 window at a uniform position in it,
# plus random mirrors (flip=1 of the cfg). So training sees the whole image (scale 1: the single
# view) and every 28x28 window of the 32x32 resize, which are exactly the views -crops 10 takes.
#
#   bench/eval_crops_ensemble.sh [NET]        NET defaults to ./net (built when missing)
#
# Environment: MAX_BATCHES (default 1000 instead of the cfg's 3000: 2.1 epochs per model, about
# 4 minutes per model on an idle 2-core machine), AUG (default min_crop=28 / max_crop=32, the
# extra [net] lines), VALID_N (default all 10,000 test images; fewer for a quick check), SEEDS
# (default "1 2 3"). Everything goes to a temporary directory; backup/ is not touched. Only
# accuracies are reported (they do not depend on timing: same seed, cfg and data, same weights).
set -euo pipefail
cd "$(dirname "$0")/.."

NET=${1:-./net}
SEEDS=${SEEDS:-1 2 3}
MAX_BATCHES=${MAX_BATCHES:-1000}
AUG=${AUG:-$'min_crop=28\nmax_crop=32'}
VALID_N=${VALID_N:-}
CFG0=cfg/fashion/resnet.cfg

if [ ! -x "$NET" ]; then make net; fi
[ -f data/fashion/test.list ] || "$NET" prepare fashion-mnist

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# The test set (or its first VALID_N images) as valid= of a .data file of our own.
if [ -n "$VALID_N" ]; then head -n "$VALID_N" data/fashion/test.list >"$TMP/valid.list"; else
    cp data/fashion/test.list "$TMP/valid.list"; fi
sed "s#^valid=.*#valid=$TMP/valid.list#" data/fashion.data >"$TMP/valid.data"

# the cfg with max_batches and the AUG lines after [net]
make_cfg() {
    awk -v mb="$MAX_BATCHES" -v aug="$AUG" '
        /^max_batches=/ { print "max_batches=" mb; next }
        { print }
        /^\[net\]/ && aug != "" { print aug }' "$CFG0" >"$1"
}

WEIGHTS=()
for s in $SEEDS; do
    mkdir -p "$TMP/s$s"
    sed "s#^backup=.*#backup=$TMP/s$s/#" data/fashion.data >"$TMP/s$s/fashion.data"
    make_cfg "$TMP/s$s/resnet.cfg"
    echo "training seed $s: $NET classifier train $TMP/s$s/fashion.data $TMP/s$s/resnet.cfg -clear -seed $s"
    "$NET" classifier train "$TMP/s$s/fashion.data" "$TMP/s$s/resnet.cfg" -clear -seed "$s" \
        -print_every 100 >"$TMP/s$s/train.log" 2>&1 || { cat "$TMP/s$s/train.log"; exit 1; }
    tail -n 2 "$TMP/s$s/train.log"
    WEIGHTS+=("$TMP/s$s/resnet.weights")
done
CFG=$TMP/s${SEEDS%% *}/resnet.cfg

declare -A TOP1 TOP2
valid() { # LABEL ARGS...: runs `net classifier valid`, keeps top-1 and top-2
    local label=$1 out line
    shift
    echo "command: $NET classifier valid $TMP/valid.data $*"
    out=$("$NET" classifier valid "$TMP/valid.data" "$@") || { echo "$out"; exit 1; }
    line=$(echo "$out" | grep -m1 ' images, top-1 ')
    TOP1[$label]=$(echo "$line" | sed 's/.*top-1 \([0-9.]*\).*/\1/')
    TOP2[$label]=$(echo "$line" | sed 's/.*top-2 \([0-9.]*\).*/\1/')
}

i=0
for w in "${WEIGHTS[@]}"; do
    i=$((i + 1))
    valid "model $i, single view" "$CFG" "$w"
done
W1=${WEIGHTS[0]}
valid "model 1, centre crop -scale 1.142857" "$CFG" "$W1" -scale 1.142857
valid "model 1, -crops 10" "$CFG" "$W1" -crops 10
ENS=()
for w in "${WEIGHTS[@]:1}"; do ENS+=(-ensemble "$CFG,$w"); done
valid "ensemble of ${#WEIGHTS[@]}, single view" "$CFG" "$W1" "${ENS[@]}"

echo
printf '%-40s %8s %8s\n' "Fashion-MNIST ResNet, $(wc -l <"$TMP/valid.list") test images" top-1 top-2
labels=()
for i in $(seq 1 ${#WEIGHTS[@]}); do labels+=("model $i, single view"); done
labels+=("model 1, centre crop -scale 1.142857" "model 1, -crops 10" "ensemble of ${#WEIGHTS[@]}, single view")
for l in "${labels[@]}"; do printf '%-40s %8s %8s\n' "$l" "${TOP1[$l]}" "${TOP2[$l]}"; done
best=0
for i in $(seq 1 ${#WEIGHTS[@]}); do
    best=$(echo "$best ${TOP1[model $i, single view]}" | awk '{print ($2 > $1) ? $2 : $1}')
done
awk -v s="${TOP1[model 1, single view]}" -v c="${TOP1[model 1, centre crop -scale 1.142857]}" \
    -v t="${TOP1[model 1, -crops 10]}" -v e="${TOP1[ensemble of ${#WEIGHTS[@]}, single view]}" \
    -v b="$best" 'BEGIN {
    printf "10-crop vs single view: %+.2f points (vs the centre crop at the same scale: %+.2f)\n",
           100 * (t - s), 100 * (t - c)
    printf "ensemble vs its best member (%.4f): %+.2f points\n", b, 100 * (e - b)
}'
echo "(MAX_BATCHES=$MAX_BATCHES per model, AUG='$(echo "$AUG" | tr '\n' ' ')', flip=1 from $CFG0, seeds $SEEDS)"
