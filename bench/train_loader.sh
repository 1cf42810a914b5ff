#!/bin/bash
# train_loader.sh - training throughput fed by the loader vs on one batch already in memory
# (bench/train_loader.c: the same net, optimiser and step code; only the feeding differs), for
#   1. LeNet-5 (cfg/lenet5.cfg, batch 128) on the Fashion-MNIST PNGs (data/fashion.data), in the
#      first epoch (every PNG decoded by the workers while the net trains);
#   2. the same in epoch 2+ (after a warm-up epoch of loader_next calls: the decoded images are
#      in the loader's cache, so batches are plain copies, made inline, workers asleep);
#   3. LeNet-5 on Debian's Fashion-MNIST IDX file (/usr/share/datasets/fashion-mnist, read
#      directly, in memory: plain copies from the first batch);
#   4. rows 1 to 3 again with the previous worker policy (loader_opts.plain_inline=0,
#      worker_nice=0: the workers copy the batches, at normal priority), for comparison, and
#      row 1 with the workers under SCHED_IDLE (loader_opts.worker_idle=1) and at nice 10 only
#      (worker_idle=0, the fifth session's default; the default is now the adaptive policy,
#      worker_idle=2: SCHED_IDLE while the ring keeps up);
#   5. ResNet-18 at 224x224 (cfg/resnet18.cfg, batch BATCH_R18) on 224x224 JPEGs cut from
#      /usr/share/darknet/data/*.jpg with the augmentation of Darknet's ImageNet cfgs (as
#      bench/loader.sh makes them).
# Every row runs loader and memory REPEAT times, interleaved (loader, memory, loader, ...), and
# reports the medians and the median of the per-pair ratios loader/memory (target >= 97 %).
# Rows 1 and 5 run under OpenMP's default wait policy and OMP_WAIT_POLICY=passive (which
# `net` sets for itself), the others under passive.
#   bench/train_loader.sh [BUILD_DIR]      (default build/default)
# Environment: STEPS (LeNet steps, default 200), STEPS_R18 (default 10), BATCH_R18 (default 8),
# WORKERS (default: the cfg's workers=, 2), REPEAT (default 3), R18=0 to leave ResNet-18 out.
# Timings on a shared machine are noise: the table says the load average.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
B=${1:-build/default}
STEPS=${STEPS:-200}
STEPS_R18=${STEPS_R18:-10}
BATCH_R18=${BATCH_R18:-8}
WORKERS=${WORKERS:--1}
REPEAT=${REPEAT:-3}
IDX=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
make -s BUILD="$B" "$B/libcfgnet.a" "$B/net"
cc -std=c11 -O3 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Isrc -Iinclude -I/usr/include/stb \
    bench/train_loader.c "$B/libcfgnet.a" -lm -lpthread -fopenmp -o "$B/train_loader"
fashion_ready "$B/net"
tmp=$(mktemp -d /tmp/cfgnet_train_loader.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

rows=()
# measure LABEL POLICY DATA CFG STEPS BATCH [WARM [INLINE NICE [IDLE]]]
measure() {
    local label=$1 policy=$2 data=$3 cfg=$4 steps=$5 batch=$6 warm=${7:-2} pin=${8:--1} nice=${9:--1}
    local idle=${10:--1} out ls="" ms="" rs="" l
    for r in $(seq "$REPEAT"); do
        for mode in loader memory; do
            local cmd=("$B/train_loader" "$data" "$cfg" "$mode" "$steps" "$WORKERS" "$batch" "$warm" "$pin" "$nice" "$idle")
            echo "command: OMP_WAIT_POLICY=$policy ${cmd[*]}"
            if [ "$policy" = default ]; then out=$(env -u OMP_WAIT_POLICY "${cmd[@]}"); else
                out=$(OMP_WAIT_POLICY=$policy "${cmd[@]}"); fi
            echo "  $out"
            if [ $mode = loader ]; then
                l=$(echo "$out" | awk '{print $3}')
                ls="$ls $l"
            else
                ms="$ms $(echo "$out" | awk '{print $3}')"
                rs="$rs $(echo "$l $out" | awk '{print 100 * $1 / $4}')"
            fi
        done
    done
    rows+=("$(printf '%-44s %-8s %10s %10s %7.1f %%   (%s)' "$label" "$policy" \
        "$(echo "$ls" | median)" "$(echo "$ms" | median)" "$(echo "$rs" | median)" "${rs# }")")
}

for policy in default passive; do
    measure "LeNet-5, Fashion PNGs, first epoch" $policy data/fashion.data cfg/lenet5.cfg "$STEPS" -1
done
measure "  the same, workers at nice 0 (old policy)" passive data/fashion.data cfg/lenet5.cfg "$STEPS" -1 2 0 0 0
measure "  the same, workers SCHED_IDLE" passive data/fashion.data cfg/lenet5.cfg "$STEPS" -1 2 -1 -1 1
measure "  the same, workers nice 10 only (idle 0)" passive data/fashion.data cfg/lenet5.cfg "$STEPS" -1 2 -1 -1 0
# One epoch is 469 batches of 128; the warm-up's loader_next calls decode every PNG once.
measure "LeNet-5, Fashion PNGs, epoch 2+ (cached)" passive data/fashion.data cfg/lenet5.cfg "$STEPS" -1 470
if [ -f "$IDX" ]; then
    printf 'classes=10\ntrain=%s\nnames=data/fashion.names\n' "$IDX" >"$tmp/idx.data"
    measure "LeNet-5, Fashion IDX (in memory)" passive "$tmp/idx.data" cfg/lenet5.cfg "$STEPS" -1
    measure "  the same, workers copy (old policy)" passive "$tmp/idx.data" cfg/lenet5.cfg "$STEPS" -1 2 0 0 0
else
    echo "skipped the IDX rows: $IDX (Debian package dataset-fashion-mnist) is absent"
fi
measure "  PNGs cached, workers copy (old policy)" passive data/fashion.data cfg/lenet5.cfg "$STEPS" -1 470 0 0 0

if [ "${R18:-1}" = 0 ]; then
    echo "skipped ResNet-18 (R18=0)"
elif darknet_jpegs; then
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
printf '%-44s %-8s %10s %10s %9s   %s\n' "images/s (medians of $REPEAT)" "OMP wait" "loader" "in memory" "ratio" "(each pair)"
for r in "${rows[@]}"; do echo "$r"; done
echo "(target: ratio >= 97 %; STEPS=$STEPS STEPS_R18=$STEPS_R18 BATCH_R18=$BATCH_R18 WORKERS=$WORKERS REPEAT=$REPEAT; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
