#!/bin/sh
# mpi.sh - data-parallel figures for docs/distributed.md (run as root from the top of the tree,
# after `make MPI=1`; BUILD=build/default-mpi by default):
#   1. images/s of 2 ranks x 1 thread against 1 process x 2 threads, LeNet-5 (batch 128 on 28x28
#      Fashion-MNIST) and ResNet-18 (batch 4 at 224x224): the training loop's own figure; and
#      ResNet-18's 2 ranks with sync_bn=1 (batch statistics summed across the ranks);
#   2. MPI_Allreduce of ResNet-50's gradients (25,557,032 floats, 102 MB) between 2 ranks over
#      shared memory, TCP on loopback, and TCP over a veth pair between two network namespaces;
#   3. ResNet-50 trained on 2 ranks (1 image each, TCP on loopback): the seconds per iteration
#      the ranks wait for gradient sums after backward, against the allreduce's own time: the
#      fraction hidden behind backward.
# ITERS (default 20, LeNet-5), RITERS (3, the ResNets), REPS (5) and FLOATS (25557032, the
# allreduce size) make it shorter or longer; a check that it runs end to end, in about a
# minute: ITERS=2 RITERS=1 REPS=1 FLOATS=1000000. The machine has 2 cores shared with other
# work: treat the figures as rough.
set -eu
BUILD=${BUILD:-build/default-mpi}
NET=$BUILD/net
ITERS=${ITERS:-20}
RITERS=${RITERS:-3}
REPS=${REPS:-5}
FLOATS=${FLOATS:-25557032}
[ -x "$NET" ] || { echo "bench/mpi.sh: build $NET first: make MPI=1 BUILD=$BUILD" >&2; exit 1; }
[ -f data/fashion/train.list ] || { echo "bench/mpi.sh: run make fashion first" >&2; exit 1; }
tmp=$(mktemp -d /tmp/cfgnet_mpibench_XXXXXX)
ns_a=cfgb_a$$ ns_b=cfgb_b$$
trap 'ip netns del $ns_a 2>/dev/null; ip netns del $ns_b 2>/dev/null; rm -rf "$tmp"' EXIT
MPIRUN="mpirun --allow-run-as-root --oversubscribe"
mkdir -p "$BUILD/bench" "$tmp/b"
mpicc -O2 -o "$BUILD/bench/allreduce" bench/allreduce.c
head -n 2048 data/fashion/train.list >"$tmp/train.list"
printf 'classes=10\ntrain=%s\nlabels=data/fashion.labels\nbackup=%s/b\ntop=1\n' \
    "$tmp/train.list" "$tmp" >"$tmp/f.data"

# cfg CFG BATCH ITERS: a copy of CFG at that batch and length, with 10 classes (Fashion-MNIST).
cfg() {
    sed -e "s/^batch=.*/batch=$2/" -e 's/^subdivisions=.*/subdivisions=1/' \
        -e "s/^max_batches=.*/max_batches=$3/" -e "s/^output=1000$/output=10/" "$1" \
        >"$tmp/$(basename "$1")"
    echo "$tmp/$(basename "$1")"
}

# ips LOG: images/s over the run from "saved ... after S s" and the step count.
ips() {
    tr '\r' '\n' <"$1" | awk -v n="$2" '/^saved .* after/ {for (i = 1; i <= NF; i++)
        if ($i == "after") s = $(i + 1)} END {printf "%.1f", n / s}'
}

# with_sync_bn CFG: CFG with sync_bn=1 in its [net] section, beside it.
with_sync_bn() {
    sed '/^\[net\]/a sync_bn=1' "$1" >"${1%.cfg}_sync.cfg"
    echo "${1%.cfg}_sync.cfg"
}

speed() { # NAME CFG BATCH ITERS [sync]
    c=$(cfg "$2" "$3" "$4")
    if [ "${5:-}" = sync ]; then
        c=$(with_sync_bn "$c")
        $MPIRUN -np 2 -x OMP_NUM_THREADS=1 "$NET" classifier train "$tmp/f.data" "$c" \
            -workers 1 -clear >"$tmp/two.log" 2>&1
        echo "$1 batch $3, sync_bn=1: 2 ranks x 1 thread $(ips "$tmp/two.log" $(($3 * $4))) img/s"
        return
    fi
    OMP_NUM_THREADS=2 "$NET" classifier train "$tmp/f.data" "$c" -workers 1 -clear \
        >"$tmp/one.log" 2>&1
    $MPIRUN -np 2 -x OMP_NUM_THREADS=1 "$NET" classifier train "$tmp/f.data" "$c" -workers 1 \
        -clear >"$tmp/two.log" 2>&1
    n=$(($3 * $4))
    echo "$1 batch $3: 1 process x 2 threads $(ips "$tmp/one.log" $n) img/s;" \
        "2 ranks x 1 thread $(ips "$tmp/two.log" $n) img/s" \
        "($(tr '\r' '\n' <"$tmp/two.log" | grep 'ranks;'))"
}

echo "== images/s (the whole loop, start-up excluded)"
speed LeNet-5 cfg/lenet5.cfg 128 "$ITERS"
speed ResNet-18 cfg/resnet18.cfg 4 "$RITERS"
speed ResNet-18 cfg/resnet18.cfg 4 "$RITERS" sync

echo "== MPI_Allreduce of $FLOATS floats (ResNet-50's gradients: 25557032), 2 ranks"
printf 'shared memory (vader): '
$MPIRUN -np 2 "$BUILD/bench/allreduce" "$FLOATS" "$REPS"
printf 'TCP over loopback:     '
$MPIRUN -np 2 --mca btl tcp,self --mca btl_tcp_if_include lo "$BUILD/bench/allreduce" "$FLOATS" \
    "$REPS"
if [ "$(id -u)" = 0 ] && ip netns add "$ns_a" 2>/dev/null; then
    ip netns add "$ns_b"
    ip link add "ba$$" type veth peer name "bb$$"
    ip link set "ba$$" netns "$ns_a"
    ip link set "bb$$" netns "$ns_b"
    ip -n "$ns_a" addr add 10.98.0.1/24 dev "ba$$"
    ip -n "$ns_b" addr add 10.98.0.2/24 dev "bb$$"
    for n in "$ns_a" "$ns_b"; do ip -n "$n" link set lo up; done
    ip -n "$ns_a" link set "ba$$" up
    ip -n "$ns_b" link set "bb$$" up
    printf '#!/bin/sh\nhost=$1; shift\ncase $host in 10.98.0.2) ns=%s ;; *) ns=%s ;; esac\n' \
        "$ns_b" "$ns_a" >"$tmp/agent"
    printf 'exec ip netns exec "$ns" /bin/sh -c "$*"\n' >>"$tmp/agent"
    chmod +x "$tmp/agent"
    printf 'TCP over a veth pair:  '
    ip netns exec "$ns_a" $MPIRUN -np 2 --host 10.98.0.1:1,10.98.0.2:1 \
        --mca plm_rsh_agent "$tmp/agent" --mca btl tcp,self --mca btl_tcp_if_include 10.98.0.0/24 \
        --mca oob_tcp_if_include 10.98.0.0/24 "$BUILD/bench/allreduce" "$FLOATS" "$REPS"
else
    echo "TCP over a veth pair: skipped (needs root and ip netns)"
fi

echo "== ResNet-50, 2 ranks x 1 image, TCP over loopback: waiting after backward"
c=$(cfg cfg/resnet50.cfg 2 "$RITERS")
$MPIRUN -np 2 -x OMP_NUM_THREADS=1 --mca btl tcp,self --mca btl_tcp_if_include lo \
    "$NET" classifier train "$tmp/f.data" "$c" -workers 1 -clear -print_every 1 >"$tmp/r50.log" 2>&1
tr '\r' '\n' <"$tmp/r50.log" | grep -E "^[0-9]+/$RITERS|ranks;"
