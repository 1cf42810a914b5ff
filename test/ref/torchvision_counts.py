#!/usr/bin/python3
"""torchvision_counts.py - parameter counts of the torchvision models that cfg/ reproduces.

Run with Debian's interpreter (/usr/bin/python3; python3-torch and python3-torchvision).
Prints one line per model, "<cfg name> <count>", where the count is the number of trainable
parameters (sum of p.numel() over model.parameters(): weights, biases, batch-norm scales and
shifts; not the running statistics, which are buffers), exactly what `net summary` counts.
Models are built untrained (weights=None); nothing is downloaded. GoogLeNet and Inception v3 are
built with aux_logits=True so that their auxiliary heads are counted, as cfg/ includes them.
These are the figures test/test_zoo.c holds as constants and cross-checks against this script.
"""
import sys

import torch
import torchvision.models as tvm

MODELS = [
    ("alexnet", lambda: tvm.alexnet()),
    ("vgg11", lambda: tvm.vgg11()),
    ("vgg13", lambda: tvm.vgg13()),
    ("vgg16", lambda: tvm.vgg16()),
    ("vgg19", lambda: tvm.vgg19()),
    ("vgg11_bn", lambda: tvm.vgg11_bn()),
    ("vgg13_bn", lambda: tvm.vgg13_bn()),
    ("vgg16_bn", lambda: tvm.vgg16_bn()),
    ("vgg19_bn", lambda: tvm.vgg19_bn()),
    ("googlenet", lambda: tvm.googlenet(aux_logits=True, init_weights=False)),
    ("inception_v3", lambda: tvm.inception_v3(aux_logits=True, init_weights=False)),
    ("resnet18", lambda: tvm.resnet18()),
    ("resnet34", lambda: tvm.resnet34()),
    ("resnet50", lambda: tvm.resnet50()),
    ("resnet101", lambda: tvm.resnet101()),
    ("resnet152", lambda: tvm.resnet152()),
    ("resnext50_32x4d", lambda: tvm.resnext50_32x4d()),
    ("squeezenet1_0", lambda: tvm.squeezenet1_0()),
    ("squeezenet1_1", lambda: tvm.squeezenet1_1()),
    ("mobilenet_v2", lambda: tvm.mobilenet_v2()),
]


def skip_init():
    """Parameter values do not matter for a count: make torch.nn.init a no-op (VGG's 100M
    random draws take most of half a minute otherwise)."""
    for name in dir(torch.nn.init):
        if name.endswith("_") and not name.startswith("_"):
            setattr(torch.nn.init, name, lambda tensor, *args, **kwargs: tensor)


def main():
    skip_init()
    names = sys.argv[1:]
    for name, make in MODELS:
        if names and name not in names:
            continue
        model = make()
        print(name, sum(p.numel() for p in model.parameters()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
