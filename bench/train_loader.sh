#!/bin/bash
# train_loader.sh - training throughput fed by the loader vs on one batch already in memory
# (bench/train_loader.c: the same net, optimiser and step code; only the feeding differs), for
#   1. LeNet-5 (cfg/lenet5.cfg, batch 128) on the Fashion-MNIST PNGs (data/fashion.data);
#   2. ResNet-18 at 224x224 (cfg/resnet18.cfg, batch BATCH_R18) on 224x224 JPEGs cut from
#      /usr/share/darknet/data/*.jpg with the augmentation of Darknet's ImageNet cfgs
#      (as bench/loader.sh makes them);
# each with OpenMP's default wait policy and with OMP_WAIT_POLICY=passive, in one run, and
# prints a table with the ratio loader/memory (target >= 97 %) and the commands it ran.
#   bench/train_loader.sh [BUILD_DIR]      (default build/default)
# Environment: STEPS (LeNet steps, default 200), STEPS_R18 (default 10), BATCH_R18 (default 8),
# WORKERS (default: the cfg's workers=, 2). Timings on a shared machine are noise.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
B=${1:-build/default}
STEPS=${STEPS:-200}
STEPS_R18=${STEPS_R18:-10}
BATCH_R18=${BATCH_R18:-8}
WORKERS=${WORKERS:--1}
make -s BUILD="$B" "$B/libcfgnet.a" "$B/net"
cc -std=c11 -O3 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Isrc -Iinclude -I/usr/include/stb \
    bench/train_loader.c "$B/libcfgnet.a" -lstb -lm -lpthread -fopenmp -o "$B/train_loader"
fashion_ready "$B/net"
tmp=$(mktemp -d /tmp/cfgnet_train_loader.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

rows=()
measure() { # label policy data cfg steps batch
    local label=$1 policy=$2 data=$3 cfg=$4 steps=$5 batch=$6 warm=${7:-2} out l m
    for mode in loader memory; do
        local cmd=("$B/train_loader" "$data" "$cfg" "$mode" "$steps" "$WORKERS" "$batch" "$warm")
        echo "command: OMP_WAIT_POLICY=$policy ${cmd[*]}"
        if [ "$policy" = default ]; then out=$(env -u OMP_WAIT_POLICY "${cmd[@]}"); else
            out=$(OMP_WAIT_POLICY=$policy "${cmd[@]}"); fi
        echo "  $out"
        [ $mode = loader ] && l=$(echo "$out" | awk '{print $3}') || m=$(echo "$out" | awk '{print $3}')
    done
    rows+=("$(printf '%-34s %-8s %10s %10s %7.1f %%' "$label" "$policy" "$l" "$m" \
        "$(echo "$l $m" | awk '{print 100 * $1 / $2}')")")
}

for policy in default passive; do
    measure "LeNet-5, Fashion PNGs, batch 128" $policy data/fashion.data cfg/lenet5.cfg "$STEPS" -1
done
# The same after one epoch (469 steps of 128) of warm-up: the PNGs are decoded once, into the
# loader's cache, and every later epoch of a run reads them from it.
measure "LeNet-5, epoch 2+ (cached)" passive data/fashion.data cfg/lenet5.cfg "$STEPS" -1 469

if darknet_jpegs; then
    jpeg_set "$tmp" 16
    classes=$jpeg_classes
    # resnet18.cfg with the JPEG set's classes and Darknet's ImageNet augmentation
    awk -v k="$classes" '
        /^\[net\]/ { print; print "min_crop=224\nmax_crop=288\naspect=.75\nangle=7\nhue=.1\nsaturation=.75\nexposure=.75\nflip=1"; next }
        /^(min_crop|max_crop|aspect|angle|hue|saturation|exposure|flip)=/ { next }
        { print }' cfg/resnet18.cfg >"$tmp/resnet18.cfg"
    last_conn=$(grep -n '^\[connected\]\|^\[convolutional\]' "$tmp/resnet18.cfg" | tail -1 | cut -d: -f1)
    awk -v from="$last_conn" -v k="$classes" 'NR > from && /^(filters|output)=/ && !done { sub(/=.*/, "=" k); done = 1 } { print }' \
        "$tmp/resnet18.cfg" >"$tmp/r18.cfg"
    for policy in default passive; do
        measure "ResNet-18 224, JPEGs augmented, b$BATCH_R18" $policy "$tmp/jpeg.data" "$tmp/r18.cfg" "$STEPS_R18" "$BATCH_R18"
    done
else
    echo "skipped ResNet-18: /usr/share/darknet/data/*.jpg (Debian package darknet) is absent"
fi

echo
printf '%-34s %-8s %10s %10s %9s\n' "images/s" "OMP wait" "loader" "in memory" "ratio"
for r in "${rows[@]}"; do echo "$r"; done
echo "(target: ratio >= 97 %; STEPS=$STEPS STEPS_R18=$STEPS_R18 BATCH_R18=$BATCH_R18 WORKERS=$WORKERS; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
