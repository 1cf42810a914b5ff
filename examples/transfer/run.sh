#!/bin/sh
# run.sh - transfer learning on Fashion-MNIST with the `net` command (README.md here).
#
# Pretrains small.cfg on classes 0-4 (tee, trouser, pullover, dress, coat), keeps its trunk with
# `net partial`, then learns classes 5-9 (sandal, shirt, sneaker, bag, boot) from 100 training
# images per class three ways with the same budget, and prints their top-1 on the test images
# of classes 5-9:
#   (a) head only: trunk frozen (-freeze 6)
#   (b) last block + head: layers 0-3 frozen (-freeze 4)
#   (c) from scratch
#
# Environment (defaults in brackets): NET [./net], DATA [data/fashion, from
# `net prepare fashion-mnist`], OUT [/tmp/cfgnet_transfer], PRETRAIN iterations of 64 [1500],
# OLD_PER_CLASS pretraining images per class [6000: all], FINETUNE iterations of 50 [30],
# LR the fine-tuning learning rate, cosine to 0 [0.2], PER_CLASS test images per class [1000].
# Run it from the top of the tree: the lists hold data/fashion/... paths as they are.
# The last line is "transfer: (a) A (b) B (c) C" with the three accuracies.
set -eu
NET=${NET:-./net}
DATA=${DATA:-data/fashion}
OUT=${OUT:-/tmp/cfgnet_transfer}
PRETRAIN=${PRETRAIN:-1500}
OLD_PER_CLASS=${OLD_PER_CLASS:-6000}
FINETUNE=${FINETUNE:-30}
LR=${LR:-0.2}
PER_CLASS=${PER_CLASS:-1000}
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$DATA/train.list" ] || { echo "run.sh: no $DATA/train.list: run 'net prepare fashion-mnist' first" >&2; exit 1; }
mkdir -p "$OUT/backup"

# The first n paths of each class in list $1 (classes $3..., n = $2): a file name ends _<label>.png.
pick() {
    list=$1 n=$2
    shift 2
    for c in "$@"; do grep "_$c\.png\$" "$list" | head -n "$n"; done
}
old="tee trouser pullover dress coat"
new="sandal shirt sneaker bag boot"
# shellcheck disable=SC2086
pick "$DATA/train.list" "$OLD_PER_CLASS" $old >"$OUT/old_train.list"
# shellcheck disable=SC2086
pick "$DATA/train.list" 100 $new >"$OUT/new_train.list"
# shellcheck disable=SC2086
pick "$DATA/test.list" "$PER_CLASS" $new >"$OUT/new_test.list"
printf '%s\n' $old >"$OUT/old.labels"
printf '%s\n' $new >"$OUT/new.labels"
for set in old new; do
    cat >"$OUT/$set.data" <<EOF
classes=5
train=$OUT/${set}_train.list
valid=$OUT/new_test.list
labels=$OUT/$set.labels
backup=$OUT/backup
top=1
EOF
done

sed "s/^max_batches=.*/max_batches=$PRETRAIN/" "$here/small.cfg" >"$OUT/pre.cfg"
for way in a b c; do
    sed -e "s/^max_batches=.*/max_batches=$FINETUNE/" -e 's/^batch=.*/batch=50/' \
        -e "s/^learning_rate=.*/learning_rate=$LR/" \
        "$here/small.cfg" >"$OUT/ft_$way.cfg"
done

quiet() { "$@" >"$OUT/log" 2>&1 || { cat "$OUT/log" >&2; exit 1; }; }
quiet "$NET" classifier train "$OUT/old.data" "$OUT/pre.cfg" -print_every 1000
quiet "$NET" partial "$OUT/pre.cfg" "$OUT/backup/pre.weights" "$OUT/trunk.weights" 6
quiet "$NET" classifier train "$OUT/new.data" "$OUT/ft_a.cfg" "$OUT/trunk.weights" -freeze 6 -print_every 1000
quiet "$NET" classifier train "$OUT/new.data" "$OUT/ft_b.cfg" "$OUT/trunk.weights" -freeze 4 -print_every 1000
quiet "$NET" classifier train "$OUT/new.data" "$OUT/ft_c.cfg" -print_every 1000

top1() {
    "$NET" classifier valid "$OUT/new.data" "$OUT/ft_$1.cfg" "$OUT/backup/ft_$1.weights" |
        sed -n 's/.* top-1 \([0-9.]*\),.*/\1/p' | head -n 1
}
a=$(top1 a) b=$(top1 b) c=$(top1 c)
echo "(a) head only, trunk frozen:     top-1 $a"
echo "(b) last block + head:           top-1 $b"
echo "(c) from scratch, same budget:   top-1 $c"
echo "transfer: (a) $a (b) $b (c) $c"
