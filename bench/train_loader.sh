#!/bin/bash
# train_loader.sh - training throughput fed by the loader vs on one batch already in memory
# (bench/train_loader.c: the same net, optimiser and step code; only the feeding differs), for
#   0. the floor: what one PNG costs the loader on one thread, alone (bench/file_floor.c: open,
#      read and close; the decode from memory; the loader's call doing both), and from it the
#      first epoch's ceiling, printed under the table: T / (T + F), T the training's CPU time
#      per image in memory (row 1's median) and F the loader's per PNG;
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
#   5. PyTorch, the peer, on the same PNGs in the first epoch (bench/torch_loader.py: the
#      LeNet5, hyperparameters and optimiser of bench/lenet5_torch.py, torch.set_num_threads
#      = nproc, as train_loader's OpenMP team) fed by torch.utils.data.DataLoader (PIL decoding,
#      to_tensor, shuffled, WORKERS persistent worker processes, default prefetch) against one
#      batch of it in memory; CPU time is that of the process tree (main process and workers);
#   6. LeNet-5 on the PNGs for the whole schedule of cfg/lenet5.cfg (max_batches steps, 12.8
#      epochs: the first decoded by the workers, the rest from the cache), as `net classifier
#      train` runs it;
#   7. ResNet-18 at 224x224 (cfg/resnet18.cfg, batch BATCH_R18) on 224x224 JPEGs cut from
#      /usr/share/darknet/data/*.jpg with the augmentation of Darknet's ImageNet cfgs (as
#      bench/loader.sh makes them).
# Every row runs loader and memory REPEAT times, interleaved in pairs whose order alternates
# (loader memory, memory loader, ...: a drift in the machine's load favours neither), and reports
# the medians, the median of the per-pair ratios loader/memory (target >= 97 %) with their range,
# and the CPU-time ratio: median CPU time per image (all threads) in memory over that with the
# loader. That is the ratio when the training keeps both cores busy and the loader's work cannot
# hide in gaps (no idle core time: each microsecond the loader spends is lost to the training);
# it is far less noisy than the wall-clock ratio on a shared machine, and a wall-clock ratio
# above it is the loader filling the training's gaps. Each run also prints its CPU time per
# image by thread (training thread, rest of its OpenMP team, loader workers) and the share of
# the machine's core time left idle during it (/proc/stat: near 0 % means other programs took
# what the run did not use, so wall-clock figures are noise).
# Rows 1, 5 and 7 run under each wait policy of POLICIES, the others under "spin": libgomp's
# threads poll 5,000 times before they sleep (GOMP_SPINCOUNT=5000, which `net` and the Python
# binding set for themselves: src/cli/main.c). "passive" is OMP_WAIT_POLICY=passive (sleep at
# once), "default" libgomp's own (300,000 polls; PyTorch's, which links libgomp too: with 2
# torch threads and 2 DataLoader workers on 2 cores, a spinning thread holds the core a
# preempted one needs, and a run under it is 2 to 10 times slower whenever anything else runs).
#   bench/train_loader.sh [BUILD_DIR]      (default build/default)
# Environment: STEPS (LeNet steps, default 200), STEPS_R18 (default 10), BATCH_R18 (default 8),
# WORKERS (default: the cfg's workers=, 2), REPEAT (default 3), R18=0 to leave ResNet-18 out,
# STEPS_WHOLE (row 6, default cfg/lenet5.cfg's max_batches),
# ROWS (default all): the groups of rows to run, of "floor first torch whole policies cached idx r18" (e.g.
# ROWS=first REPEAT=11: only row 1, in 11 pairs), POLICIES (default "spin passive"): the OpenMP
# wait policies of rows 1, 5 and 7 (under load, default-policy runs are several times slower).
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
    bench/train_loader.c "$B/libcfgnet.a" -lz -lm -lpthread -fopenmp -o "$B/train_loader"
cc -std=c11 -O3 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Isrc -Iinclude -I/usr/include/stb \
    bench/file_floor.c "$B/libcfgnet.a" -lz -lm -lpthread -fopenmp -o "$B/file_floor"
fashion_ready "$B/net"
tmp=$(mktemp -d /tmp/cfgnet_train_loader.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

ROWS=${ROWS:-floor first torch whole policies cached idx r18}
want() { case " $ROWS " in *" $1 "*) return 0 ;; esac; return 1; }
# idle_ticks: the machine's idle + iowait ticks so far (/proc/stat, all cores)
idle_ticks() { awk '/^cpu / { print $5 + $6 }' /proc/stat; }

rows=()
# measure LABEL POLICY DATA CFG STEPS BATCH [WARM [INLINE NICE [IDLE]]]: a row of train_loader
measure() {
    local data=$3 cfg=$4 steps=$5 batch=$6 warm=${7:-2} pin=${8:--1} nice=${9:--1} idle=${10:--1}
    measure_cmd "$1" "$2" "$B/train_loader" "$data" "$cfg" @MODE@ "$steps" "$WORKERS" "$batch" "$warm" \
        "$pin" "$nice" "$idle"
}
# measure_cmd LABEL POLICY CMD...: a row of CMD, whose word @MODE@ becomes loader or memory; CMD
# prints a first line as train_loader's ($3 images/s, $5 CPU us per image, "N s, M decoded")
measure_cmd() {
    local label=$1 policy=$2 out ls="" ms="" lc="" mc="" rs="" l m modes i0 i1 hz cores w
    shift 2
    hz=$(getconf CLK_TCK)
    cores=$(nproc)
    for r in $(seq "$REPEAT"); do
        if [ $((r % 2)) = 1 ]; then modes="loader memory"; else modes="memory loader"; fi
        for mode in $modes; do
            local cmd=()
            for w in "$@"; do
                if [ "$w" = @MODE@ ]; then cmd+=("$mode"); else cmd+=("$w"); fi
            done
            echo "command: (wait policy $policy) ${cmd[*]}"
            i0=$(idle_ticks)
            case $policy in
            default) out=$(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "${cmd[@]}") ;;
            spin) out=$(env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=5000 "${cmd[@]}") ;;
            *) out=$(env -u GOMP_SPINCOUNT OMP_WAIT_POLICY="$policy" "${cmd[@]}") ;;
            esac
            i1=$(idle_ticks)
            echo "$out" | sed 's/^/  /'
            echo "$out" | awk -v d=$((i1 - i0)) -v hz="$hz" -v n="$cores" 'NR == 1 &&
                match($0, /[0-9.]+ s, [0-9]+ decoded/) { s = substr($0, RSTART, RLENGTH) + 0
                printf "  machine idle during the run: %.1f %% of %d cores\n", 100 * d / hz / n / s, n }'
            if [ "$mode" = loader ]; then
                ls="$ls $(echo "$out" | awk 'NR == 1 {print $3}')"
                lc="$lc $(echo "$out" | awk 'NR == 1 {print $5}')"
            else
                ms="$ms $(echo "$out" | awk 'NR == 1 {print $3}')"
                mc="$mc $(echo "$out" | awk 'NR == 1 {print $5}')"
            fi
        done
        l=$(echo "$ls" | awk '{print $NF}')
        m=$(echo "$ms" | awk '{print $NF}')
        rs="$rs $(awk -v l="$l" -v m="$m" 'BEGIN {printf "%.1f", 100 * l / m}')"
    done
    local lo hi
    lo=$(echo "$rs" | tr ' ' '\n' | grep . | sort -g | head -1)
    hi=$(echo "$rs" | tr ' ' '\n' | grep . | sort -g | tail -1)
    last_mc=$(echo "$mc" | median)
    rows+=("$(printf '%-44s %-8s %10s %10s %7.1f %% %5s-%-5s %7.1f %%' "$label" "$policy" \
        "$(echo "$ls" | median)" "$(echo "$ms" | median)" "$(echo "$rs" | median)" "$lo" "$hi" \
        "$(awk -v m="$(echo "$mc" | median)" -v l="$(echo "$lc" | median)" 'BEGIN {print 100 * m / l}')")")
    pairs+=("$(printf '%-44s %-8s %s' "$label" "$policy" "${rs# }")")
}
pairs=()

POLICIES=${POLICIES:-spin passive}
# The loader's own cost of one PNG on one thread, read and decode apart (bench/file_floor.c), for
# the first epoch's ceiling: with both cores kept busy by the training, each microsecond the
# loader spends is one the training loses, so the ratio can be at most T / (T + F), T the
# training's CPU per image in memory and F the loader's per image (measured alone: in the
# training, with the caches shared, the workers spend more).
floor_us=""
ceilings=()
if want floor; then
    echo "command: $B/file_floor data/fashion/train.list 1 5"
    floor_out=$("$B/file_floor" data/fashion/train.list 1 5)
    echo "$floor_out" | sed 's/^/  /'
    floor_us=$(echo "$floor_out" | awk '/^loader/ { print $3 }')
fi
if want first; then
    for policy in $POLICIES; do
        measure "LeNet-5, Fashion PNGs, first epoch" $policy data/fashion.data cfg/lenet5.cfg "$STEPS" -1
        [ -z "$floor_us" ] || ceilings+=("$(awk -v t="$last_mc" -v f="$floor_us" -v p="$policy" 'BEGIN {
            printf "first epoch, %s: at most %.1f %% = %.1f / (%.1f + %.2f) us of CPU per image", p,
                100 * t / (t + f), t, t, f }')")
    done
fi
# PyTorch's DataLoader on the same PNGs, beside row 1 and under the same wait policies
if ! want torch; then
    :
elif /usr/bin/python3 -c 'import torch, torchvision, PIL' 2>/dev/null; then
    for policy in $POLICIES; do
        measure_cmd "PyTorch LeNet-5, same PNGs, DataLoader" "$policy" /usr/bin/python3 \
            bench/torch_loader.py --cfg cfg/lenet5.cfg --list data/fashion/train.list \
            --labels data/fashion.labels --mode @MODE@ --steps "$STEPS" --workers "$WORKERS"
    done
else
    echo "skipped the PyTorch rows: /usr/bin/python3 cannot import torch, torchvision and PIL" \
        "(Debian packages python3-torch, python3-torchvision, python3-pil)"
fi
# The whole of a `net classifier train` run on the PNGs: the cfg's max_batches steps, its first
# epoch decoded by the workers, the later ones from the loader's cache.
STEPS_WHOLE=${STEPS_WHOLE:-$(sed -n 's/^max_batches[[:space:]]*=[[:space:]]*//p' cfg/lenet5.cfg | head -1)}
if want whole; then
    whole_batch=$(sed -n 's/^batch[[:space:]]*=[[:space:]]*//p' cfg/lenet5.cfg | head -1)
    epochs=$(awk -v s="$STEPS_WHOLE" -v b="$whole_batch" -v n="$(grep -c . data/fashion/train.list)" \
        'BEGIN { printf "%.1f", s * b / n }')
    measure "LeNet-5, PNGs, $STEPS_WHOLE steps ($epochs epochs)" spin data/fashion.data cfg/lenet5.cfg "$STEPS_WHOLE" -1
fi
if want policies; then
    measure "  the same, workers at nice 0 (old policy)" spin data/fashion.data cfg/lenet5.cfg "$STEPS" -1 2 0 0 0
    measure "  the same, workers SCHED_IDLE" spin data/fashion.data cfg/lenet5.cfg "$STEPS" -1 2 -1 -1 1
    measure "  the same, workers nice 10 only (idle 0)" spin data/fashion.data cfg/lenet5.cfg "$STEPS" -1 2 -1 -1 0
fi
# One epoch is 469 batches of 128; the warm-up's loader_next calls decode every PNG once.
if want cached; then
    measure "LeNet-5, Fashion PNGs, epoch 2+ (cached)" spin data/fashion.data cfg/lenet5.cfg "$STEPS" -1 470
fi
if ! want idx; then
    :
elif [ -f "$IDX" ]; then
    printf 'classes=10\ntrain=%s\nnames=data/fashion.names\n' "$IDX" >"$tmp/idx.data"
    measure "LeNet-5, Fashion IDX (in memory)" spin "$tmp/idx.data" cfg/lenet5.cfg "$STEPS" -1
    measure "  the same, workers copy (old policy)" spin "$tmp/idx.data" cfg/lenet5.cfg "$STEPS" -1 2 0 0 0
else
    echo "skipped the IDX rows: $IDX (Debian package dataset-fashion-mnist) is absent"
fi
if want cached; then
    measure "  PNGs cached, workers copy (old policy)" spin data/fashion.data cfg/lenet5.cfg "$STEPS" -1 470 0 0 0
fi

if [ "${R18:-1}" = 0 ] || ! want r18; then
    echo "skipped ResNet-18 (R18=0 or ROWS)"
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
    for policy in $POLICIES; do
        measure "ResNet-18 224, JPEGs augmented, b$BATCH_R18" $policy "$tmp/jpeg.data" "$tmp/r18.cfg" "$STEPS_R18" "$BATCH_R18"
    done
else
    echo "skipped ResNet-18: /usr/share/darknet/data/*.jpg (Debian package darknet) is absent"
fi

echo
printf '%-44s %-8s %10s %10s %9s %11s %9s\n' "images/s (medians of $REPEAT)" "OMP wait" "loader" "in memory" \
    "ratio" "pair range" "cpu ratio"
for r in "${rows[@]}"; do echo "$r"; done
if [ ${#ceilings[@]} -gt 0 ]; then
    echo
    echo "ceiling (training CPU per image in memory / that + the loader's alone, file_floor):"
    for c in "${ceilings[@]}"; do echo "$c"; done
fi
echo
echo "each pair's ratio, %:"
for r in "${pairs[@]}"; do echo "$r"; done
echo "(target: ratio >= 97 %; cpu ratio: CPU time per image in memory / with the loader; STEPS=$STEPS STEPS_R18=$STEPS_R18 BATCH_R18=$BATCH_R18 WORKERS=$WORKERS REPEAT=$REPEAT; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
