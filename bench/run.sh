#!/bin/bash
# run.sh - `make bench`: cfgnet against PyTorch 1.13, Debian's darknet and OpenBLAS, and against
# the machine's own limits, side by side in one run on one machine (see bench/README.md).
#
#   bench/run.sh [--quick] [--rounds N] [--only NET[,NET...]] [--skip PART[,PART...]] [--no-save]
#
# Parts, in this order (--skip takes their names):
#   limits     FP32 peak (bench/peak.c, FMA) and memory bandwidth (bench/membw.c), 1 and 2 threads
#   gemm       cfgnet's gemm vs OpenBLAS SGEMM (the `make bench-gemm` target of bench/gemm.c)
#   infer      ms per batch at batch 1 and 16: `net speed` (cfgnet), bench/torch_speed.py (PyTorch,
#              better of NCHW and channels_last), and on darknet's own cfgs `darknet classifier
#              predict` against `net speed` on the same cfg (batch 1: darknet predicts one image)
#   train      images/s at batch 16 for resnet18 and resnet50 (`net speed -train`, PyTorch SGD with
#              momentum, each layout), with the peak RSS of each process (/usr/bin/time -v)
#   layers     ResNet-50's conv layers as a share of the 1-thread peak (bench/conv_layers.c) and the
#              memory-bound kernels (pooling, GEMV at batch 1, element-wise) against the copy
#              bandwidth (bench/membound.c)
#   lenet      LeNet-5 training at batch 128 (bench/lenet5_train.sh)
# Every measurement runs its programs in turn, round after round (A B C, A B C, ...), so that a
# drift in the machine's speed hits them alike; each figure is the median over the rounds of each
# process's own median over its timed passes. Start-up (imports, building nets, drawing weights)
# is never timed.
#
# --quick: 1 round, few passes, resnet18 and squeezenet1_1 only, small limits and LeNet runs: to
# try the script (a few minutes on a quiet machine), not to quote. The full run takes about 20 minutes on 2 cores.
# The table is printed and written to bench/results/YYYY-MM-DD-<cpu>-<cores>c.md (a later run
# the same day: ...-2.md, -3.md; quick runs:
# ...-quick.md) with the date, CPU, cores, load average before and after, commit and command.
#
# Environment: BUILD (default build/default: its net and libcfgnet.so are used and built by
# `make BUILD=...`), THREADS (default 2: OMP_NUM_THREADS and -threads for cfgnet,
# torch.set_num_threads; Debian's darknet is single-threaded). It installs nothing: `make bench`
# installs darknet, python3-torch, python3-torchvision, python3-numpy and time first. Programs that
# are missing (torchvision, darknet, OpenBLAS) get a "not run" line instead of a figure.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build/default}
THREADS=${THREADS:-2}
PYTHON=/usr/bin/python3 # Debian's, which has python3-torch: not whichever python3 is first on PATH
NET=$BUILD/net
QUICK=0 ROUNDS="" ONLY="" SKIP="" SAVE=1
CMDLINE="bench/run.sh $*"

usage() {
    echo "usage: bench/run.sh [--quick] [--rounds N] [--only NET,...] [--skip limits,gemm,infer,train,layers,lenet] [--no-save]" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS=${2:?}; shift ;;
    --only) ONLY=${2:?}; shift ;;
    --skip) SKIP=${2:?}; shift ;;
    --no-save) SAVE=0 ;;
    *) usage ;;
    esac
    shift
done
die() {
    echo "run.sh: $*" >&2
    exit 1
}
skipped() { case ",$SKIP," in *",$1,"*) return 0 ;; esac; return 1; }

# ---- settings: passes per process (warm-up + timed) -------------------------------------------
if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1}
    NETS_DEFAULT=resnet18,squeezenet1_1
    IT1=3 IT16=1 WARM=1 TRAIN_NETS=resnet18 IT_TRAIN=1
    PEAK_S=0.5 MEMBW_MB=384 MEMBW_REPS=2 GEMM_ARGS="-threads 1,2 -reps 2 -only square"
    LENET_ARGS="--rounds 1 --iters 200 --darknet-iters 40"
    LAYER_BATCHES=1 LAYER_REPS=2
else
    ROUNDS=${ROUNDS:-3}
    NETS_DEFAULT=resnet18,resnet50,vgg16,googlenet,inception_v3,squeezenet1_1,resnext50_32x4d,mobilenet_v2,densenet201
    IT1=8 IT16=2 WARM=1 TRAIN_NETS=resnet18,resnet50 IT_TRAIN=2
    PEAK_S=2 MEMBW_MB=1024 MEMBW_REPS=5 GEMM_ARGS="-threads 1,2"
    LENET_ARGS="--rounds 3 --iters 300 --darknet-iters 50"
    LAYER_BATCHES="1 16" LAYER_REPS=3
fi
NETS=${ONLY:-$NETS_DEFAULT}
# --only narrows the training part too (to the networks of both lists).
if [ -n "$ONLY" ]; then
    TRAIN_NETS=$(echo ",$ONLY," | tr ',' '\n' | grep -x -F -f <(echo "$TRAIN_NETS" | tr ',' '\n') | paste -sd, || true)
fi
[ "$ROUNDS" -ge 1 ] 2>/dev/null || usage

# name -> cfgnet cfg, torchvision model, input size, darknet's cfg (- when it has none).
net_info() {
    case "$1" in
    resnet18) echo "cfg/resnet18.cfg resnet18 224 resnet18" ;;
    resnet50) echo "cfg/resnet50.cfg resnet50 224 resnet50" ;;
    vgg16) echo "cfg/vgg16.cfg vgg16 224 vgg-16" ;;
    googlenet) echo "cfg/googlenet.cfg googlenet 224 -" ;;
    inception_v3) echo "cfg/inception_v3.cfg inception_v3 299 -" ;;
    squeezenet1_1) echo "cfg/squeezenet1_1.cfg squeezenet1_1 224 -" ;;
    resnext50_32x4d) echo "cfg/resnext50_32x4d.cfg resnext50_32x4d 224 resnext50" ;;
    mobilenet_v2) echo "cfg/mobilenet_v2.cfg mobilenet_v2 224 -" ;;
    # cfgnet loads Darknet's densenet201 (256x256) unchanged; PyTorch runs torchvision's at 256.
    densenet201) echo "$DKCFG/densenet201.cfg densenet201 256 densenet201" ;;
    *) die "unknown network '$1' (see net_info in bench/run.sh)" ;;
    esac
}
DKCFG=/usr/share/darknet/cfg

# ---- prerequisites ---------------------------------------------------------------------------
make --no-print-directory BUILD="$BUILD" "$NET" lib >/dev/null || die "'make BUILD=$BUILD $NET lib' failed"
HAVE_TORCH=1 HAVE_DARKNET=1 HAVE_TIME=1
"$PYTHON" -c 'import torch, torchvision' 2>/dev/null || HAVE_TORCH=0
command -v darknet >/dev/null && [ -f /usr/share/darknet/data/dog.jpg ] || HAVE_DARKNET=0
[ -x /usr/bin/time ] || HAVE_TIME=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cfgnet-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export OMP_NUM_THREADS=$THREADS
RAW=$TMP/raw.txt # every figure of every round, appended to the results file
: >"$RAW"

median() {
    tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        printf "%.3f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == a + 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
fmt() { awk -v a="$1" -v d="${2:-1}" 'BEGIN { if (a == a + 0 && a != "") printf "%.*f", d, a; else print "-" }'; }
raw() { echo "$*" >>"$RAW"; }
majority() { echo "$1" | tr ' ' '\n' | grep -v '^$' | sort | uniq -c | sort -rn | awk 'NR == 1 { print $2 }'; }

# ---- one process each; every function prints one figure (or "nan") --------------------------
# With TIMEFILE set, the process runs under /usr/bin/time -v, its report written there.
wrap() {
    if [ -n "${TIMEFILE:-}" ] && [ "$HAVE_TIME" = 1 ]; then
        /usr/bin/time -v -o "$TIMEFILE" "$@"
    else
        "$@"
    fi
}
cfgnet_ms() { # CFG BATCH ITERS [-train]: the total line's ms per pass
    local log=$TMP/cfgnet.log
    wrap timeout 1800 "$NET" speed "$1" -batch "$2" -iters "$3" -warmup "$WARM" -threads "$THREADS" \
        ${4:+"$4"} >"$log" 2>&1 || { sed 's/^/  cfgnet: /' "$log" | tail -3 >&2; echo nan; return; }
    sed -n 's/^total: \([0-9.]*\) ms per pass.*/\1/p' "$log"
}
torch_ms() { # MODEL SIZE BATCHES ITERS LAYOUTS [--train]: per batch, "ms layout" of the better
    local log=$TMP/torch.log
    wrap timeout 1800 "$PYTHON" bench/torch_speed.py "$1" --size "$2" --batch "$3" --iters "$4" \
        --warmup "$WARM" --layout "$5" --threads "$THREADS" ${6:+"$6"} >"$log" 2>&1 ||
        { sed 's/^/  torch: /' "$log" | tail -3 >&2; echo "nan - nan -"; return; }
    sed -n 's/^torch_best .* ms \([0-9.]*\) layout \(.*\)/\1 \2/p' "$log" | paste -sd' '
}
darknet_ms() { # CFG WEIGHTS: darknet's "Predicted in S seconds", in ms
    local log=$TMP/darknet.log
    timeout 1800 darknet classifier predict "$TMP/dk.data" "$1" "$2" /usr/share/darknet/data/dog.jpg \
        </dev/null >"$log" 2>&1 || { tail -3 "$log" >&2; echo nan; return; }
    sed -n 's/.*Predicted in \([0-9.]*\) seconds.*/\1/p' "$log" | awk '{ printf "%.3f\n", 1e3 * $1 }'
}
rss_mib() { # FILE of /usr/bin/time -v: its peak RSS in MiB
    [ -f "$1" ] || return 0
    sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\).*/\1/p' "$1" | awk '{ printf "%.0f\n", $1 / 1024 }'
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
CPU=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //; s/  */ /g')
CORES=$(nproc)
SLUG=$(echo "$CPU" | tr '[:upper:]' '[:lower:]' | sed 's/([^)]*)//g; s/[^a-z0-9]\{1,\}/-/g; s/^-//; s/-$//')
# Machines sold under one model name differ in vector width (AMD EPYC is Zen 3 or Zen 4 here).
grep -qw avx512f /proc/cpuinfo 2>/dev/null && SLUG=$SLUG-avx512
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
git diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT (with uncommitted changes)"
LOAD0=$(load)
T0=$(date +%s)
TABLE=$TMP/table.md
{
    echo "# cfgnet benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')$([ "$QUICK" = 1 ] && echo ', --quick (not for quoting)')"
    echo
    echo "- machine: $CPU, $CORES cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
        "flags: $(grep -m1 -o -w 'avx512f\|avx2\|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
    echo "- cfgnet $COMMIT, $NET; threads $THREADS; PyTorch $( [ "$HAVE_TORCH" = 1 ] &&
        "$PYTHON" -c 'import torch, torchvision; print(torch.__version__, "/ torchvision", torchvision.__version__)' || echo 'absent');" \
        "darknet $(dpkg-query -W -f='${Version}' darknet 2>/dev/null || echo absent) (1 thread)"
    echo "- command: \`$CMDLINE\` ($ROUNDS round(s), interleaved); load average before: $LOAD0"
} >"$TABLE"
cat "$TABLE"

# ---- limits: FP32 peak and memory bandwidth -------------------------------------------------
PEAK2=""
if ! skipped limits; then
    echo "== limits: FMA peak and memory bandwidth" >&2
    for p in peak membw; do
        cc -std=c11 -O2 -fopenmp "bench/$p.c" -o "$TMP/$p" || die "cannot compile bench/$p.c"
    done
    "$TMP/peak" -threads 1,2 -seconds "$PEAK_S" | tee -a "$RAW" >"$TMP/peak.txt"
    "$TMP/membw" -threads 1,2 -mb "$MEMBW_MB" -reps "$MEMBW_REPS" | tee -a "$RAW" >"$TMP/membw.txt"
    val() { sed -n "s/^$1 .*threads $2 [a-z]* \([0-9.]*\)/\1/p" "$3"; }
    ISA=$(awk '{ print $2; exit }' "$TMP/peak.txt")
    PEAK2=$(val "peak $ISA" 2 "$TMP/peak.txt")
    {
        echo
        echo "## Machine limits"
        echo
        echo "| measurement | 1 thread | 2 threads |"
        echo "|---|---:|---:|"
        echo "| FP32 peak, $ISA FMA microbenchmark (GFLOP/s) | $(val "peak $ISA" 1 "$TMP/peak.txt") | $PEAK2 |"
        echo "| memory bandwidth, copy (GB/s, ${MEMBW_MB} MiB) | $(val "membw copy" 1 "$TMP/membw.txt") | $(val "membw copy" 2 "$TMP/membw.txt") |"
        echo "| memory bandwidth, triad (GB/s) | $(val "membw triad" 1 "$TMP/membw.txt") | $(val "membw triad" 2 "$TMP/membw.txt") |"
    } >>"$TABLE"
fi

# ---- gemm: cfgnet vs OpenBLAS (the gemm target's own output) --------------------------------
if ! skipped gemm; then
    echo "== gemm: cfgnet vs OpenBLAS" >&2
    {
        echo
        echo "## SGEMM: cfgnet vs OpenBLAS"
        echo
    } >>"$TABLE"
    if grep -q '^bench-gemm:' Makefile && [ -f bench/gemm.c ] &&
        make --no-print-directory BUILD="$BUILD" bench-gemm BENCH_GEMM_ARGS="$GEMM_ARGS" >"$TMP/gemm.txt" 2>&1; then
        grep -v '^make' "$TMP/gemm.txt" | tee -a "$RAW" >"$TMP/gemm.out"
        echo "\`make bench-gemm BENCH_GEMM_ARGS=\"$GEMM_ARGS\"\`, as printed (GFLOP/s best, median):" >>"$TABLE"
        # its output without make's build lines (compiler, archiver, the command itself)
        { echo; echo '```'; grep -v "^\(cc\|gcc\|mpicc\|ar\|make\) \|^$BUILD/" "$TMP/gemm.out"; echo '```'; } >>"$TABLE"
    else
        tail -3 "$TMP/gemm.txt" 2>/dev/null >&2 || true
        echo "not built: bench/gemm.c or its \`make bench-gemm\` target is missing or failed" >>"$TABLE"
    fi
fi

# ---- infer: batch 1 and 16 ------------------------------------------------------------------
# Darknet needs a .weights file: cfgnet writes its own initial weights for darknet's cfg through
# the Python binding (He-initialised, BN statistics 0/1: the same work as trained weights).
dk_weights() { # CFG OUT
    CFGNET_LIBRARY=$BUILD/libcfgnet.so PYTHONPATH=python "$PYTHON" -c \
        'import sys, cfgnet; cfgnet.Net(sys.argv[1], batch=1).save_weights(sys.argv[2])' "$1" "$2"
}
if [ "$HAVE_DARKNET" = 1 ]; then
    seq 0 999 | sed 's/^/c/' >"$TMP/names.list"
    printf 'classes=1000\nnames=%s\ntop=1\n' "$TMP/names.list" >"$TMP/dk.data"
fi
INFER=$TMP/infer.md DARK=$TMP/dark.md
: >"$INFER"
: >"$DARK"
if ! skipped infer; then
    for name in ${NETS//,/ }; do
        read -r cfg tv size dk <<<"$(net_info "$name")"
        echo "== infer: $name ($cfg)" >&2
        run_dk=0
        if [ "$dk" != - ] && [ "$HAVE_DARKNET" = 1 ]; then
            dk_weights "$DKCFG/$dk.cfg" "$TMP/dk.weights" && run_dk=1 ||
                echo "  cannot write weights for $DKCFG/$dk.cfg: darknet not run" >&2
        fi
        A1="" A16="" B1="" B16="" L1="" L16="" C="" D=""
        for r in $(seq "$ROUNDS"); do
            a1=$(cfgnet_ms "$cfg" 1 "$IT1")
            a16=$(cfgnet_ms "$cfg" 16 "$IT16")
            A1="$A1 $a1" A16="$A16 $a16"
            if [ "$HAVE_TORCH" = 1 ]; then
                read -r b1 l1 b16 l16 <<<"$(torch_ms "$tv" "$size" 1,16 "$IT1,$IT16" nchw,cl)"
                B1="$B1 $b1" B16="$B16 $b16" L1="$L1 $l1" L16="$L16 $l16"
            fi
            line="infer $name round $r: cfgnet b1 $a1 b16 $a16 ms; torch b1 ${b1:-} (${l1:-}) b16 ${b16:-} (${l16:-}) ms"
            if [ "$run_dk" = 1 ]; then
                c=$(darknet_ms "$DKCFG/$dk.cfg" "$TMP/dk.weights")
                d=$(cfgnet_ms "$DKCFG/$dk.cfg" 1 "$IT1")
                C="$C $c" D="$D $d"
                line="$line; darknet $dk.cfg b1 $c, cfgnet same cfg $d ms"
            fi
            raw "$line"
            echo "  $line" >&2
        done
        # MFLOP per image (forward), from `net summary`'s total line, or the FLOPs inference
        # runs when it skips dead layers (GoogLeNet's auxiliary heads).
        gf=$("$NET" summary "$cfg" 2>/dev/null | sed -n 's/^total: .*, \([0-9.]*\) MFLOPs per image.*/\1/p;
            s/^inference skips .*: \([0-9.]*\) MFLOPs per image run.*/\1/p' | tail -n 1)
        for b in 1 16; do
            if [ "$b" = 1 ]; then vals=$A1 tvals=$B1 lays=$L1; else vals=$A16 tvals=$B16 lays=$L16; fi
            a=$(echo "$vals" | median) bt=$(echo "$tvals" | median)
            # MFLOP per ms = GFLOP/s
            g=$(awk -v f="$gf" -v b="$b" -v ms="$a" 'BEGIN { if (f > 0 && ms > 0) printf "%.1f", f * b / ms; else print "-" }')
            pk=$(awk -v g="$g" -v p="$PEAK2" 'BEGIN { if (g > 0 && p > 0) printf "%.0f%%", 100 * g / p; else print "-" }')
            echo "| $name | $b | $(fmt "$a" 1) | $(fmt "$bt" 1) ($(majority "$lays")) | $(ratio "$a" "$bt") | $g | $pk |" >>"$INFER"
        done
        if [ "$run_dk" = 1 ]; then
            c=$(echo "$C" | median) d=$(echo "$D" | median)
            echo "| $dk.cfg | $(fmt "$c" 0) | $(fmt "$d" 1) | $(ratio "$c" "$d") |" >>"$DARK"
        fi
    done
    {
        echo
        echo "## Inference (ms per batch; medians of $ROUNDS round(s))"
        echo
        echo "cfgnet: \`net speed CFG -batch B -iters $IT1|$IT16 -warmup $WARM\` (batch 1|16), random weights."
        echo "PyTorch: \`bench/torch_speed.py\`, eval + no_grad, the better of NCHW and channels_last (the"
        echo "layout chosen in most rounds in brackets). Ratio cfgnet/PyTorch: <= 1.00 means cfgnet is faster."
        echo "GFLOP/s: cfgnet's, from \`net summary\` FLOPs; % of the 2-thread FMA peak. googlenet.cfg"
        echo "carries two auxiliary heads: inference skips them in cfgnet, as eval() does in PyTorch."
        echo
        echo "| network | batch | cfgnet ms | PyTorch ms | cfgnet/PyTorch | cfgnet GFLOP/s | of peak |"
        echo "|---|---:|---:|---:|---:|---:|---:|"
        cat "$INFER"
        if [ -s "$DARK" ]; then
            echo
            echo "Darknet's own cfgs (/usr/share/darknet/cfg, 256x256), batch 1: \`darknet classifier predict\`"
            echo "(its printed time for one image, 1 thread) against \`net speed\` on the same cfg."
            echo "Target: darknet/cfgnet >= 15."
            echo
            echo "| cfg | darknet ms | cfgnet ms | darknet/cfgnet |"
            echo "|---|---:|---:|---:|"
            cat "$DARK"
        fi
    } >>"$TABLE"
fi

# ---- train: batch 16, images/s and peak RSS -------------------------------------------------
if [ -z "$TRAIN_NETS" ] && ! skipped train; then
    printf '\n## Training\n\nnot run: no network of --only is one of the trained ones (resnet18, resnet50)\n' >>"$TABLE"
elif ! skipped train; then
    TRAINMD=$TMP/train.md RSSMD=$TMP/rss.md
    : >"$TRAINMD"
    : >"$RSSMD"
    for name in ${TRAIN_NETS//,/ }; do
        read -r cfg tv size dk <<<"$(net_info "$name")"
        echo "== train: $name batch 16" >&2
        A="" BN="" BC="" RA="" RB=""
        for r in $(seq "$ROUNDS"); do
            rm -f "$TMP/time.a" "$TMP/time.b"
            a=$(TIMEFILE=$TMP/time.a cfgnet_ms "$cfg" 16 "$IT_TRAIN" -train)
            ra=$(rss_mib "$TMP/time.a")
            A="$A $a" RA="$RA $ra"
            line="train $name round $r: cfgnet $a ms (RSS $ra MiB)"
            if [ "$HAVE_TORCH" = 1 ]; then
                read -r bn _ <<<"$(TIMEFILE=$TMP/time.b torch_ms "$tv" "$size" 16 "$IT_TRAIN" nchw --train)"
                rb=$(rss_mib "$TMP/time.b")
                read -r bc _ <<<"$(torch_ms "$tv" "$size" 16 "$IT_TRAIN" cl --train)"
                BN="$BN $bn" BC="$BC $bc" RB="$RB $rb"
                line="$line; torch nchw $bn ms (RSS $rb MiB), channels_last $bc ms"
            fi
            raw "$line"
            echo "  $line" >&2
        done
        a=$(echo "$A" | median) bn=$(echo "$BN" | median) bc=$(echo "$BC" | median)
        ips() { awk -v ms="$1" 'BEGIN { if (ms > 0) printf "%.2f", 16000 / ms; else print "-" }'; }
        best=$(awk -v x="$bn" -v y="$bc" 'BEGIN { if (y > 0 && (y < x || !(x > 0))) print y; else print x }')
        echo "| $name | 16 | $(ips "$a") | $(ips "$bn") | $(ips "$bc") | $(ratio "$(ips "$a")" "$(ips "$best")") |" >>"$TRAINMD"
        ra=$(echo "$RA" | median) rb=$(echo "$RB" | median)
        echo "| $name, batch 16 | $(fmt "$ra" 0) | $(fmt "$rb" 0) | $(ratio "$ra" "$rb") |" >>"$RSSMD"
    done
    {
        echo
        echo "## Training (images/s, batch 16; medians of $ROUNDS round(s))"
        echo
        echo "cfgnet: \`net speed CFG -batch 16 -train -iters $IT_TRAIN -warmup $WARM\` (forward, backward, SGD"
        echo "step). PyTorch: \`bench/torch_speed.py MODEL --train\`, zero_grad + forward + cross-entropy +"
        echo "backward + SGD step (momentum 0.9), each layout. Ratio: cfgnet / the better PyTorch (>= 1: cfgnet faster)."
        echo
        echo "| network | batch | cfgnet img/s | PyTorch NCHW | PyTorch channels_last | cfgnet/PyTorch |"
        echo "|---|---:|---:|---:|---:|---:|"
        cat "$TRAINMD"
        echo
        echo "Peak resident memory of those training processes (/usr/bin/time -v, MiB; PyTorch: its NCHW"
        echo "process). Target for ResNet-50: cfgnet/PyTorch <= 1."
        echo
        echo "| training process | cfgnet MiB | PyTorch MiB | cfgnet/PyTorch |"
        echo "|---|---:|---:|---:|"
        cat "$RSSMD"
    } >>"$TABLE"
fi

# ---- layers: ResNet-50 conv layers against the peak, memory-bound kernels against bandwidth ----
# bench/conv_layers.c (1 thread, thread CPU time: the per-layer share of the 1-thread FMA peak,
# Winograd layers counted by their direct FLOPs) and bench/membound.c (every zoo pooling shape,
# the fully connected layers' GEMV at batch 1, activation and per-channel affine + activation).
if ! skipped layers; then
    echo "== layers: bench/conv_layers.c (resnet50) and bench/membound.c" >&2
    for p in conv_layers membound; do
        cc -std=c11 -O2 -fopenmp -D_POSIX_C_SOURCE=200809L -Isrc "bench/$p.c" "$BUILD/libcfgnet.a" \
            -lz -lm -lpthread -o "$TMP/$p" || die "cannot compile bench/$p.c"
    done
    [ -x "$TMP/peak" ] || cc -std=c11 -O2 -fopenmp bench/peak.c -o "$TMP/peak" || die "cannot compile bench/peak.c"
    # The 1-thread peak is measured again right before and after each batch's layers, and the
    # higher of the two is the one they are a share of: in a VM whose host varies, a peak from
    # minutes earlier may not be the core's speed at the time. It does not catch a neighbour's
    # use of the shared caches, which slows the layers and not the FMA loop: on one Zen 4 guest
    # ResNet-50's 1x1 layers read 69-71 % of a 242.2 peak measured at the start of a run, and
    # 76-81 % ten minutes later of 241-244 measured beside them, so the host's speed was not
    # all that moved.
    peak1() { "$TMP/peak" -threads 1 -seconds "$PEAK_S" | tee -a "$RAW" | awk '{ print $NF; exit }'; }
    {
        echo
        echo "## Conv layers of ResNet-50 as a share of the 1-thread FP32 peak"
        echo
        echo "bench/conv_layers.c, 1 thread, thread CPU time, best of $LAYER_REPS; Winograd layers counted by"
        echo "their direct-convolution FLOPs (so they may pass 100 %). The peak: bench/peak.c on 1 thread,"
        echo "the higher of a run right before and one right after each batch's layers. Target: >= 70 % (issue 5)."
        echo
        echo '```'
    } >>"$TABLE"
    for b in $LAYER_BATCHES; do
        p0=$(peak1)
        OMP_NUM_THREADS=1 "$TMP/conv_layers" cfg/resnet50.cfg -batch "$b" -reps "$LAYER_REPS" \
            -peak "$p0" >"$TMP/layers$b.txt" 2>&1 || { tail -3 "$TMP/layers$b.txt" >&2; continue; }
        p1=$(peak1)
        {
            cat "$TMP/layers$b.txt"
            echo "1-thread peak after these layers: $p1 (the shares above are of $p0, the one" \
                "before; the table's are of the higher of the two)"
        } >>"$RAW"
        {
            echo "batch $b (1-thread peak $p0 before, $p1 after):"
            grep ' layers: \|^all layers' "$TMP/layers$b.txt" | awk -v p0="$p0" -v p1="$p1" '
                / layers: / { p = p0 > p1 ? p0 : p1; g = $5 + 0
                    sub(/[0-9.]+% of peak [0-9.]+$/, sprintf("%.1f%% of peak %.1f", 100 * g / p, p)) }
                { print }'
        } >>"$TABLE"
    done
    echo '```' >>"$TABLE"
    {
        echo
        echo "## Memory-bound kernels against the copy bandwidth (bench/membound.c; issue 5: >= 80 %)"
        echo
        echo '```'
    } >>"$TABLE"
    for t in 1 $THREADS; do
        "$TMP/membound" -batch 16 -reps "$LAYER_REPS" -threads "$t" 2>&1 | tee -a "$RAW" >>"$TABLE" || true
    done
    echo '```' >>"$TABLE"
fi

# ---- lenet: LeNet-5 training, batch 128 -----------------------------------------------------
if ! skipped lenet; then
    echo "== lenet: bench/lenet5_train.sh $LENET_ARGS" >&2
    {
        echo
        echo "## LeNet-5 training, batch 128 (Fashion-MNIST, data loading included)"
        echo
    } >>"$TABLE"
    # shellcheck disable=SC2086 # LENET_ARGS is a list of flags
    if NET=$NET THREADS=$THREADS bench/lenet5_train.sh $LENET_ARGS >"$TMP/lenet.txt" 2>&1; then
        cat "$TMP/lenet.txt" >>"$RAW"
        echo "\`bench/lenet5_train.sh $LENET_ARGS\`; targets: cfgnet/PyTorch >= 1.5 (issue 5)." >>"$TABLE"
        { echo; echo '```'; sed -n '/^training images/,/^cfgnet \/ darknet/p' "$TMP/lenet.txt"; echo '```'; } >>"$TABLE"
    else
        tail -5 "$TMP/lenet.txt" >&2
        echo "not run: bench/lenet5_train.sh failed (see above)" >>"$TABLE"
    fi
fi

{
    echo
    echo "Load average after: $(load); wall time of the run: $(( $(date +%s) - T0 )) s."
} >>"$TABLE"
echo
sed -n '/^## /,$p' "$TABLE"
if [ "$SAVE" = 1 ]; then
    mkdir -p bench/results
    stem=bench/results/$(date -u +%Y-%m-%d)-$SLUG-${CORES}c$([ "$QUICK" = 1 ] && echo -quick || true)
    out=$stem.md n=2
    while [ -e "$out" ]; do # a later run the same day keeps the earlier one's file
        out=$stem-$n.md n=$((n + 1))
    done
    { cat "$TABLE"; echo; echo "## Raw figures, every round"; echo; echo '```'; cat "$RAW"; echo '```'; } >"$out"
    echo
    echo "written to $out"
fi
