#!/bin/sh
# augment_ops.sh - milliseconds per 224x224x3 image of each augmentation kernel (the fast one and
# its naive reference side by side, bench/augment_ops.c). Usage: bench/augment_ops.sh [BUILD_DIR]
# (default build/default; the library is built there when missing). Noisy on a shared machine.
set -eu
cd "$(dirname "$0")/.."
B=${1:-build/default}
make -s BUILD="$B" "$B/libcfgnet.a"
cc -std=c11 -O3 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Isrc -Iinclude -I/usr/include/stb \
    bench/augment_ops.c "$B/libcfgnet.a" -lz -lm -lpthread -fopenmp -o "$B/augment_ops"
echo "command: $B/augment_ops   (bench/augment_ops.sh $B)"
"$B/augment_ops"
