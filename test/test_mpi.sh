#!/bin/sh
# test_mpi.sh - data-parallel training with Open MPI (docs/distributed.md): 2 ranks x batch B/2
# against 1 process x batch B (same seed, same data order: the same weights within 1e-5
# relative), on one machine and across two network namespaces joined by a veth pair; resuming
# a 2-rank checkpoint on 1 process, and on 2 ranks with dropout (bit for bit); sync_bn=1 (2 ranks
# equal 1 process, rolling statistics included; without it they do not); batch= not divisible by
# the ranks; a killed rank and a hung rank ending the job with a message naming the rank and the
# iteration and how to resume; and the default build free of MPI. Run by test/run.sh
# (CFGNET_BUILD, CFGNET_NET; CFGNET_MAKE_ARGS from make test).
#
# The net under test: $CFGNET_NET when its build is an MPI one (make MPI=1), else this script
# builds one beside it ($CFGNET_BUILD-mpi, make MPI=1) when mpicc is installed. Skipped, saying
# so, without Open MPI (apt-get install openmpi-bin libopenmpi-dev), python3-numpy (the weight
# comparison), or under a sanitizer.
#
# Why 1e-5 and not bit for bit: rank r takes images [r B/2, (r+1) B/2) of every global batch, so
# both runs see the same images with the same augmentation, and each rank's loss is scaled by
# 1/B; but the gradient of a weight is a sum over the batch, which one process adds in one
# order (inside its gemm) and two ranks as two half sums added by MPI_Allreduce. Float addition
# is not associative: each step differs by a few ulps (~1e-7 relative), and 10 steps of SGD
# keep that near 1e-7 (measured: 4e-8 for LeNet-5). 1e-5 leaves two orders of margin while any
# real error (a missed shard, a wrong scale, one rank's gradient lost) is above 1e-3.
. "$(dirname "$0")/harness/suite.sh"
build=${CFGNET_BUILD:?run by test/run.sh, which sets CFGNET_BUILD}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/cfgnet_mpi_XXXXXX)
ns_a=cfgnet_a$$ ns_b=cfgnet_b$$
cleanup() {
    ip netns del "$ns_a" 2>/dev/null
    ip netns del "$ns_b" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
export OMP_NUM_THREADS=1 # the equality holds at one thread per rank; tiny nets anyway
MPIRUN="mpirun --allow-run-as-root --oversubscribe -x OMP_NUM_THREADS"
net=""

# Finds or builds the MPI net; sets why to the reason when there is none.
find_net() {
    why=""
    command -v mpirun >/dev/null 2>&1 && command -v mpicc >/dev/null 2>&1 ||
        { why="Open MPI not installed (apt-get install openmpi-bin libopenmpi-dev)"; return; }
    [ -z "${CFGNET_SANITIZE:-}" ] || { why="under a sanitizer"; return; }
    /usr/bin/python3 -c 'import numpy' 2>/dev/null || { why="/usr/bin/python3 lacks numpy"; return; }
    if ldd "$CFGNET_NET" 2>/dev/null | grep -q libmpi; then
        net=$CFGNET_NET
        return
    fi
    # shellcheck disable=SC2086 # CFGNET_MAKE_ARGS is a list of VAR=value words
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C "$root" \
        ${CFGNET_MAKE_ARGS:-} MPI=1 BUILD="$build-mpi" "$build-mpi/net" >"$tmp/build.log" 2>&1 ||
        { cat "$tmp/build.log"; why="make MPI=1 failed"; return; }
    net=$build-mpi/net
}

# A synthetic IDX set (256 random 28x28 images, labels 0..9, numpy seed 1), the .data file
# writing into $tmp/$1, and LeNet-5 at batch=32 for max_batches=$2 iterations.
setup() {
    /usr/bin/python3 - "$tmp" <<'EOF' || fail "making the IDX set"
import sys, numpy as np
r = np.random.RandomState(1); n = 256
x = r.randint(0, 256, size=(n, 28, 28)).astype(np.uint8); y = r.randint(0, 10, size=n).astype(np.uint8)
h = lambda magic, *dims: np.array((magic,) + dims, dtype='>u4').tobytes()
open(sys.argv[1] + '/set-images-idx3-ubyte', 'wb').write(h(0x803, n, 28, 28) + x.tobytes())
open(sys.argv[1] + '/set-labels-idx1-ubyte', 'wb').write(h(0x801, n) + y.tobytes())
EOF
    for d in one two three veth resume bn1 bn2 bn3 da db; do
        mkdir -p "$tmp/$d"
        printf 'classes=10\ntrain=%s\nvalid=%s\nlabels=%s\nbackup=%s\ntop=2\n' \
            "$tmp/set-images-idx3-ubyte" "$tmp/set-images-idx3-ubyte" "$root/data/fashion.labels" \
            "$tmp/$d" >"$tmp/$d.data"
    done
    sed -e 's/^batch=.*/batch=32/' -e "s/^max_batches=.*/max_batches=${1:-10}/" \
        "$root/cfg/lenet5.cfg" >"$tmp/lenet.cfg"
    sed -e 's/^max_batches=.*/max_batches=1000000/' "$tmp/lenet.cfg" >"$tmp/long.cfg"
    awk '/^\[connected\]/ && ++k == 2 { print "[dropout]\nprobability=0.3\n" } { print }' \
        "$tmp/lenet.cfg" >"$tmp/drop.cfg"
    bn_cfg 1 >"$tmp/bn.cfg"
    bn_cfg 0 >"$tmp/bn0.cfg"
}

# bn_cfg SYNC: batch norm in a [convolutional], a [batchnorm] and a [connected], sync_bn=SYNC.
# Parameters (floats, .weights order): conv biases 0-5, scales 6-11, rolling mean 12-17 and
# variance 18-23, weights 24-173; [batchnorm] scales 174-179, rolling 180-191, biases 192-197;
# connected biases 198-229, weights 230-9637, scales 9638-9669, rolling 9670-9733; the last
# connected 9734-10063.
bn_cfg() {
    printf '[net]\nbatch=32\nheight=28\nwidth=28\nchannels=1\nlearning_rate=0.05\n'
    printf 'momentum=0.9\ndecay=0.0005\nmax_batches=10\nseed=1\nsync_bn=%s\n' "$1"
    printf '[convolutional]\nbatch_normalize=1\nfilters=6\nsize=5\nstride=2\npad=1\n'
    printf 'activation=relu\n[batchnorm]\n[maxpool]\nsize=2\nstride=2\n'
    printf '[connected]\nbatch_normalize=1\noutput=32\nactivation=relu\n'
    printf '[connected]\noutput=10\nactivation=linear\n[softmax]\n'
}

# compare A.weights B.weights: same header, parameters within 1e-5 relative (see the top).
compare() {
    /usr/bin/python3 - "$1" "$2" <<'EOF'
import sys, numpy as np
a, b = (np.fromfile(p, dtype=np.uint8) for p in sys.argv[1:3])
if a.size != b.size or (a[:20] != b[:20]).any():
    sys.exit("sizes or headers (version, images seen) differ")
x, y = (v[20:].view(np.float32).astype(np.float64) for v in (a, b))
rel = np.abs(x - y).max() / np.abs(x).max()
print("%d parameters, max |a - b| / max |a| = %.2g (tolerance 1e-5), %d bit-identical"
      % (x.size, rel, (x == y).sum()))
sys.exit(0 if rel <= 1e-5 else 1)
EOF
}

# compare_bn same|differ A.weights B.weights (of bn_cfg): the rolling statistics apart from the
# other parameters. same: both within 1e-5 relative; differ: both above 1e-3.
compare_bn() {
    /usr/bin/python3 - "$@" <<'EOF'
import sys, numpy as np
mode, a, b = sys.argv[1], *(np.fromfile(p, dtype=np.uint8) for p in sys.argv[2:4])
if a.size != b.size or (a[:20] != b[:20]).any():
    sys.exit("sizes or headers (version, images seen) differ")
x, y = (v[20:].view(np.float32).astype(np.float64) for v in (a, b))
roll = np.zeros(x.size, bool)
for lo, hi in ((12, 24), (180, 192), (9670, 9734)):
    roll[lo:hi] = True
rel = lambda m: np.abs(x[m] - y[m]).max() / np.abs(x[m]).max()
r, w = rel(roll), rel(~roll)
print("rolling statistics (%d): max rel %.2g; other parameters (%d): max rel %.2g"
      % (roll.sum(), r, (~roll).sum(), w))
sys.exit(0 if (max(r, w) <= 1e-5 if mode == "same" else min(r, w) > 1e-3) else 1)
EOF
}

one_process() {
    "$net" classifier train "$tmp/one.data" "$tmp/lenet.cfg" -workers 0 >"$tmp/one.log" 2>&1 ||
        { cat "$tmp/one.log"; fail "1 process"; }
}

test_default_build_has_no_mpi() {
    [ -x "$CFGNET_NET" ] || fail "$CFGNET_NET missing"
    if ldd "$CFGNET_NET" | grep -q libmpi; then
        skip "this build is the MPI one (make MPI=1); the default build is checked in its own run"
    fi
    nm "$CFGNET_NET" | grep -q ' MPI_' && fail "MPI symbols in the default net"
    echo "$CFGNET_NET: no libmpi, no MPI_ symbols"
}

test_two_ranks_equal_one_process() {
    [ -n "$net" ] || skip "$why"
    one_process
    $MPIRUN -np 2 "$net" classifier train "$tmp/two.data" "$tmp/lenet.cfg" -workers 0 \
        -check_every 1 >"$tmp/two.log" 2>&1 || { cat "$tmp/two.log"; fail "2 ranks"; }
    grep -a "2 ranks;" "$tmp/two.log" || fail "no rank summary"
    [ ! -e "$tmp/two/lenet.weights.tmp" ] || fail "stray temporary file"
    compare "$tmp/one/lenet.weights" "$tmp/two/lenet.weights" || fail "weights differ"
}

test_resume_two_ranks_on_one() {
    [ -n "$net" ] || skip "$why"
    one_process
    $MPIRUN -np 2 "$net" classifier train "$tmp/resume.data" "$tmp/lenet.cfg" -workers 0 \
        -stop_after 4 >"$tmp/r1.log" 2>&1 || { cat "$tmp/r1.log"; fail "2 ranks, 4 iterations"; }
    "$net" classifier train "$tmp/resume.data" "$tmp/lenet.cfg" "$tmp/resume/lenet_last.weights" \
        -workers 0 >"$tmp/r2.log" 2>&1 || { cat "$tmp/r2.log"; fail "resume on 1 process"; }
    grep "from iteration 4 to 10" "$tmp/r2.log" || fail "did not resume at 4"
    # the hint to paste: the program as run, the files, the flags but -stop_after
    hint="resume with: mpirun -np 2 $net classifier train $tmp/resume.data $tmp/lenet.cfg"
    grep -axF "$hint $tmp/resume/lenet_last.weights -workers 0" "$tmp/r1.log" ||
        { cat "$tmp/r1.log"; fail "no mpirun prefix in the resume hint"; }
    compare "$tmp/one/lenet.weights" "$tmp/resume/lenet.weights" || fail "resumed weights differ"
}

# With dropout each rank draws its own masks; 2 ranks for 4 steps resumed on 2 ranks to 10
# must be the uninterrupted 2-rank run bit for bit (same data, masks, sums in the same order).
test_resume_two_ranks_dropout() {
    [ -n "$net" ] || skip "$why"
    $MPIRUN -np 2 "$net" classifier train "$tmp/da.data" "$tmp/drop.cfg" -workers 0 \
        >"$tmp/da.log" 2>&1 || { cat "$tmp/da.log"; fail "2 ranks, 10 iterations"; }
    $MPIRUN -np 2 "$net" classifier train "$tmp/db.data" "$tmp/drop.cfg" -workers 0 \
        -stop_after 4 >"$tmp/db1.log" 2>&1 || { cat "$tmp/db1.log"; fail "2 ranks, 4 iterations"; }
    $MPIRUN -np 2 "$net" classifier train "$tmp/db.data" "$tmp/drop.cfg" \
        "$tmp/db/drop_last.weights" -workers 0 >"$tmp/db2.log" 2>&1 ||
        { cat "$tmp/db2.log"; fail "resume on 2 ranks"; }
    grep -a "from iteration 4 to 10" "$tmp/db2.log" || fail "did not resume at 4"
    cmp "$tmp/da/drop.weights" "$tmp/db/drop.weights" ||
        { compare "$tmp/da/drop.weights" "$tmp/db/drop.weights"; fail "not bit for bit"; }
    echo "resumed = uninterrupted, bit for bit"
}

# sync_bn=1: 2 ranks x 16 normalise over the global 32 as 1 process x 32 does, so weights and
# rolling statistics agree (within 1e-5 for the same reason as the weights above); per-rank
# statistics (sync_bn=0) give different ones, so the comparison can fail.
test_sync_bn_equals_one_process() {
    [ -n "$net" ] || skip "$why"
    "$net" classifier train "$tmp/bn1.data" "$tmp/bn.cfg" -workers 0 >"$tmp/bn1.log" 2>&1 ||
        { cat "$tmp/bn1.log"; fail "1 process"; }
    $MPIRUN -np 2 "$net" classifier train "$tmp/bn2.data" "$tmp/bn.cfg" -workers 0 \
        -check_every 1 >"$tmp/bn2.log" 2>&1 || { cat "$tmp/bn2.log"; fail "2 ranks, sync_bn=1"; }
    compare_bn same "$tmp/bn1/bn.weights" "$tmp/bn2/bn.weights" || fail "sync_bn=1 differs"
    $MPIRUN -np 2 "$net" classifier train "$tmp/bn3.data" "$tmp/bn0.cfg" -workers 0 \
        >"$tmp/bn3.log" 2>&1 || { cat "$tmp/bn3.log"; fail "2 ranks, sync_bn=0"; }
    compare_bn differ "$tmp/bn1/bn.weights" "$tmp/bn3/bn0.weights" ||
        fail "per-rank batch norm gave the global batch's statistics"
}

test_batch_not_divisible() {
    [ -n "$net" ] || skip "$why"
    $MPIRUN -np 3 "$net" classifier train "$tmp/three.data" "$tmp/lenet.cfg" -workers 0 \
        >"$tmp/three.log" 2>&1 && fail "3 ranks accepted batch=32"
    grep -a "lenet.cfg: \[net\] batch=32 is not divisible by the 3 ranks" "$tmp/three.log" ||
        { cat "$tmp/three.log"; fail "message"; }
}

# rank_pid MPIRUN_PID R: the pid of rank R (a child of mpirun with OMPI_COMM_WORLD_RANK=R).
rank_pid() {
    for p in $(pgrep -P "$1"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" &&
            echo "$p"
    done
}

# stop_rank SIGNAL: starts a long 2-rank run, sends SIGNAL to rank 1 once it trains, and checks
# that the job ends within 60 s with rank 0's message naming rank 1 and an iteration.
stop_rank() {
    rm -f "$tmp"/two/long*
    $MPIRUN -np 2 "$net" classifier train "$tmp/two.data" "$tmp/long.cfg" -workers 0 \
        -backup_every 20 -mpi_timeout 10 >"$tmp/long.log" 2>&1 &
    mp=$!
    i=0
    while [ ! -e "$tmp/two/long_last.weights" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    p1=$(rank_pid $mp 1)
    [ -n "$p1" ] || { kill $mp; fail "rank 1 not found"; }
    t0=$(date +%s)
    kill "-$1" "$p1"
    i=0
    while kill -0 $mp 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    kill -0 $mp 2>/dev/null && { kill -9 $mp; fail "the job still runs 60 s after SIG$1"; }
    wait $mp && fail "the job ended with status 0"
    echo "ended $(($(date +%s) - t0)) s after SIG$1 to rank 1"
    grep -a "net: rank 0: no progress from rank(s) 1 at iteration [0-9]" "$tmp/long.log" ||
        { tr '\r' '\n' <"$tmp/long.log" | tail -n 20; fail "no message naming rank 1"; }
    grep -a "resume with: mpirun -np 2 $net classifier train .*/long_last.weights" \
        "$tmp/long.log" || fail "no resume hint"
    # the last checkpoint is whole (atomic writes): it resumes
    "$net" classifier train "$tmp/two.data" "$tmp/long.cfg" "$tmp/two/long_last.weights" \
        -workers 0 -stop_after 1 >"$tmp/after.log" 2>&1 ||
        { cat "$tmp/after.log"; fail "the last checkpoint does not resume"; }
}

test_killed_rank_ends_job() {
    [ -n "$net" ] || skip "$why"
    stop_rank KILL
}

test_hung_rank_ends_job() {
    [ -n "$net" ] || skip "$why"
    stop_rank STOP
}

# Two network namespaces joined by a veth pair, 10.99.$$.1 and .2; mpirun runs in the first,
# and starts rank 1's orted in the second through a launch agent in place of ssh.
test_two_ranks_over_veth() {
    [ -n "$net" ] || skip "$why"
    [ "$(id -u)" = 0 ] || skip "needs root for ip netns"
    command -v ip >/dev/null 2>&1 || skip "iproute2 (ip) not installed"
    ip netns add "$ns_a" 2>/dev/null || skip "ip netns add failed (no network namespaces here)"
    ip netns add "$ns_b" || fail "netns $ns_b"
    sub=10.99.$(($$ % 250))
    ip link add "va$$" type veth peer name "vb$$" || fail "veth"
    ip link set "va$$" netns "$ns_a" && ip link set "vb$$" netns "$ns_b" || fail "veth into netns"
    ip -n "$ns_a" addr add "$sub.1/24" dev "va$$" && ip -n "$ns_b" addr add "$sub.2/24" dev "vb$$" &&
        ip -n "$ns_a" link set "va$$" up && ip -n "$ns_b" link set "vb$$" up &&
        ip -n "$ns_a" link set lo up && ip -n "$ns_b" link set lo up || fail "addresses"
    printf '#!/bin/sh\n# ssh HOST CMD -> CMD in the namespace of HOST\nhost=$1; shift\n' >"$tmp/agent"
    printf 'case $host in %s.2) ns=%s ;; *) ns=%s ;; esac\n' "$sub" "$ns_b" "$ns_a" >>"$tmp/agent"
    printf 'exec ip netns exec "$ns" /bin/sh -c "$*"\n' >>"$tmp/agent"
    chmod +x "$tmp/agent"
    one_process
    timeout 120 ip netns exec "$ns_a" $MPIRUN -np 2 --host "$sub.1:1,$sub.2:1" \
        --mca plm_rsh_agent "$tmp/agent" --mca btl tcp,self \
        --mca btl_tcp_if_include "$sub.0/24" --mca oob_tcp_if_include "$sub.0/24" \
        "$net" classifier train "$tmp/veth.data" "$tmp/lenet.cfg" -workers 0 -check_every 1 \
        >"$tmp/veth.log" 2>&1 || { cat "$tmp/veth.log"; fail "2 ranks over the veth pair"; }
    grep -a "2 ranks;" "$tmp/veth.log" || fail "no rank summary"
    compare "$tmp/one/lenet.weights" "$tmp/veth/lenet.weights" || fail "weights differ"
}

find_net
[ -n "$net" ] && { setup 10 || exit 1; echo "net under test: $net"; } || echo "skipping: $why"
run_test test_default_build_has_no_mpi
run_test test_two_ranks_equal_one_process
run_test test_resume_two_ranks_on_one
run_test test_resume_two_ranks_dropout
run_test test_sync_bn_equals_one_process
run_test test_batch_not_divisible
run_test test_killed_rank_ends_job
run_test test_hung_rank_ends_job
run_test test_two_ranks_over_veth
suite_end
