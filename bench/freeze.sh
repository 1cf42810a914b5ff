#!/bin/sh
# freeze.sh - what freezing saves: `net classifier train` of cfg/fashion/resnet.cfg on 1024
# Fashion-MNIST images (cached after the first pass, so the loader is not the bottleneck),
# STEPS steps of 128 with -freeze 0 (everything trains), 5 (the stem and stage 1 frozen:
# backward stops at layer 5), 10 (stages 1-2) and 16 (only the head trains: backward runs the
# last two layers), rounds interleaved so a change in the machine's speed hits all alike.
# Prints the images per second of each; run from the top of the tree after
# `net prepare fashion-mnist`. NET [./net], STEPS [30], ROUNDS [2].
set -eu
NET=${NET:-./net}
STEPS=${STEPS:-30}
ROUNDS=${ROUNDS:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -n 1024 data/fashion/train.list >"$tmp/train.list"
sed -e "s|^train=.*|train=$tmp/train.list|" -e "s|^backup=.*|backup=$tmp|" data/fashion.data \
    >"$tmp/f.data"
sed "s/^max_batches=.*/max_batches=$STEPS/" cfg/fashion/resnet.cfg >"$tmp/resnet.cfg"
for round in $(seq "$ROUNDS"); do
    for k in 0 5 10 16; do
        start=$(date +%s.%N)
        "$NET" classifier train "$tmp/f.data" "$tmp/resnet.cfg" -freeze "$k" -print_every 100000 \
            >/dev/null
        end=$(date +%s.%N)
        echo "round $round -freeze $k: $(echo "$STEPS * 128 / ($end - $start)" | bc -l |
            cut -c1-6) images/s (whole run, start-up included)"
    done
done
