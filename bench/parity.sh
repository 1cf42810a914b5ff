#!/bin/sh
# parity.sh - the long parity runs of issue 3, for the closing note (not in `make test`):
#   1. `net classifier predict -letterbox` against Debian's `darknet classifier predict` on all
#      17 classification cfgs of /usr/share/darknet/cfg (test/test_darknet_predict.c with
#      CFGNET_DARKNET_ALL=1): top-5, printed and full-precision probability differences;
#   2. GoogLeNet at 224x224 and Inception v3 at 299x299 with their auxiliary heads in the cfg and
#      the .weights, against torchvision (test/test_torch_parity.c with CFGNET_PARITY_FULL=1),
#      after the suite's reduced-resolution cases.
# Usage: bench/parity.sh [BUILD_DIR] (default build/default; built with `make` if missing).
# Takes several minutes: Darknet's CPU code runs VGG-16 and the ResNet-152s slowly.
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build/default}
make -s BUILD="$BUILD" "$BUILD/net" "$BUILD/test/test_darknet_predict" \
    "$BUILD/test/test_torch_parity"
CFGNET_NET=$(pwd)/$BUILD/net CFGNET_DARKNET_ALL=1 "$BUILD/test/test_darknet_predict" 2>/dev/null |
    grep -v '^ *[0-9]* \(conv\|max\|avg\|res\|route\|softmax\|connected\|cost\|dropout\|crop\)' |
    grep -v '^Loading weights\|^Done\|^layer  *filters'
CFGNET_PARITY_FULL=1 "$BUILD/test/test_torch_parity"
