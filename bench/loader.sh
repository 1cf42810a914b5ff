#!/bin/sh
# loader.sh - the data loader alone (`net data bench`), images/s per number of workers:
#   1. Fashion-MNIST's 28x28 gray PNGs (data/fashion, made by `net prepare fashion-mnist` when
#      missing), decoded every time (-nocache) without augmentation, and with Darknet-style
#      augmentation (crop, rotation, flip, exposure);
#   2. 224x224 RGB JPEGs cut from /usr/share/darknet/data/*.jpg (Debian's darknet package) at
#      random positions and scales (python3-pil), in an ImageFolder tree, with the augmentation
#      of Darknet's ImageNet cfgs (min_crop=224 max_crop=288 aspect=.75 angle=7 hue=.1
#      saturation=.75 exposure=.75, flip).
# Each line times BATCHES batches from the first request (prefetch and decoding included).
# Usage: bench/loader.sh [NET] (default ./net); BATCHES=N, WORKERS="0 1 2 3" to change the runs.
# Prints each command and its line, then a table: images/s, the CPU time per image (all threads)
# and the cores kept busy. Workers are not the only threads at work: the one that asks for the
# batches (loader_next) fills them beside the workers when the ring is behind, and alone with 0
# workers; so W workers keep up to W + 1 cores busy, and on 2 cores 1 worker already fills both.
# Timings on a shared machine are noisy: run it alone for figures worth quoting.
set -eu
NET=${1:-./net}
BATCHES=${BATCHES:-20}
WORKERS=${WORKERS:-"0 1 2 3"}
cd "$(dirname "$0")/.."
. bench/lib.sh
tmp=$(mktemp -d /tmp/cfgnet_loader_bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

fashion_ready "$NET"

table=""
run() { # label workers data cfg
    echo "command: $NET data bench $3 $4 -nocache -workers $2 -batches $BATCHES"
    line=$("$NET" data bench "$3" "$4" -nocache -workers "$2" -batches "$BATCHES")
    echo "  $line"
    ips=$(echo "$line" | sed 's/.*: \([0-9]*\) images\/s.*/\1/')
    cpu=$(echo "$line" | sed 's/.* \([0-9.]*\) us of CPU per image.*/\1/')
    busy=$(echo "$line" | sed 's/.* \([0-9.]*\) cores busy.*/\1/')
    table="$table$(printf '%-44s %7s %10s %12s %11s' "$1" "$2" "$ips" "$cpu" "$busy")
"
}

net_section() { # width height channels batch [augmentation lines...]
    w=$1 h=$2 c=$3 b=$4
    shift 4
    printf '[net]\nbatch=%s\nheight=%s\nwidth=%s\nchannels=%s\n' "$b" "$h" "$w" "$c"
    for line in "$@"; do printf '%s\n' "$line"; done
    printf '[softmax]\n'
}

net_section 28 28 1 128 >"$tmp/fashion.cfg"
net_section 28 28 1 128 min_crop=24 max_crop=36 angle=10 flip=1 exposure=1.5 >"$tmp/fashion_aug.cfg"
echo "== Fashion-MNIST PNGs, 28x28x1, batch 128, $BATCHES batches"
for w in $WORKERS; do run "Fashion PNGs 28x28, plain" "$w" data/fashion.data "$tmp/fashion.cfg"; done
for w in $WORKERS; do run "Fashion PNGs 28x28, augmented" "$w" data/fashion.data "$tmp/fashion_aug.cfg"; done

print_table() {
    echo
    printf '%-44s %7s %10s %12s %11s\n' "loader alone, $BATCHES batches, -nocache" workers images/s \
        "CPU us/img" "cores busy"
    printf '%s' "$table"
    echo "($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the end)"
}
if ! darknet_jpegs; then
    echo "skipped the JPEG set: /usr/share/darknet/data/*.jpg (Debian package darknet) is absent"
    print_table
    exit 0
fi
jpeg_set "$tmp" 48
classes=$jpeg_classes
net_section 224 224 3 32 min_crop=224 max_crop=288 aspect=.75 angle=7 hue=.1 saturation=.75 \
    exposure=.75 flip=1 >"$tmp/jpeg_aug.cfg"
echo "== $((classes * 48)) JPEGs, 224x224x3, batch 32, $BATCHES batches, augmented"
for w in $WORKERS; do run "JPEGs 224x224x3, crop/aspect/angle/flip/HSV" "$w" "$tmp/jpeg.data" "$tmp/jpeg_aug.cfg"; done
print_table
