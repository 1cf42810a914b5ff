#!/usr/bin/python3
"""torch_speed.py - PyTorch 1.13's time per batch on a torchvision model, the baseline of
bench/run.sh.

    /usr/bin/python3 bench/torch_speed.py MODEL [--batch 1,16] [--size 224] [--train]
        [--layout nchw,cl] [--iters 10[,N...]] [--warmup 2] [--threads 2]

Inference: eval() and torch.no_grad(). Training: train(), cross-entropy on random labels, SGD
with momentum 0.9 (lr 0.01, weight decay 5e-4, as our cfgs), zero_grad + forward + backward +
step timed together. Random weights (torchvision's own initialisation) and random inputs, for
each batch size and each layout: NCHW, and channels_last (model and input converted with
torch.channels_last, where oneDNN often picks faster kernels). After --warmup untimed passes,
--iters passes are timed one by one with time.perf_counter (a list gives one count per batch
size, in the order of --batch); each line printed is

    torch MODEL batch B layout L train 0|1 ms MEDIAN min MIN

and, per batch, "torch_best MODEL batch B train 0|1 ms MEDIAN layout L", the better layout.
Models: torchvision.models names (resnet18, resnet50, vgg16, googlenet, inception_v3,
squeezenet1_1, resnext50_32x4d, mobilenet_v2, densenet201, ...); googlenet and inception_v3 are
built without their auxiliary heads (eval() skips them anyway; training here leaves them out).
"""
import argparse
import statistics
import sys
import time

import torch
import torchvision


def build(name):
    kwargs = {}
    if name in ("googlenet", "inception_v3"):
        kwargs = {"aux_logits": False, "init_weights": True}
    return getattr(torchvision.models, name)(weights=None, **kwargs)


def time_passes(step, warmup, iters):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times), min(times)


def measure(model, batch, size, layout, train, warmup, iters):
    fmt = torch.channels_last if layout == "cl" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.rand(batch, 3, size, size).contiguous(memory_format=fmt)
    if not train:
        model.eval()

        def step():
            with torch.no_grad():
                model(x)
        return time_passes(step, warmup, iters)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    y = torch.randint(0, 1000, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=False)
        loss_fn(model(x), y).backward()
        opt.step()
    return time_passes(step, warmup, iters)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--layout", default="nchw,cl")
    ap.add_argument("--iters", default="10")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    try:
        model = build(a.model)
    except (AttributeError, TypeError) as e:
        sys.exit("torch_speed.py: no torchvision model %r (%s)" % (a.model, e))
    layouts = a.layout.split(",")
    batches = [int(v) for v in a.batch.split(",")]
    iters = [int(v) for v in a.iters.split(",")]
    iters += iters[-1:] * (len(batches) - len(iters))
    if not set(layouts) <= {"nchw", "cl"} or min(iters) < 1 or a.warmup < 0:
        sys.exit("torch_speed.py: --layout takes nchw and/or cl; --iters >= 1, --warmup >= 0")
    for b, n in zip(batches, iters):
        best = None
        for lay in layouts:
            med, low = measure(model, b, a.size, lay, a.train, a.warmup, n)
            print("torch %s batch %d layout %s train %d ms %.3f min %.3f"
                  % (a.model, b, lay, a.train, med, low), flush=True)
            if best is None or med < best[0]:
                best = (med, lay)
        print("torch_best %s batch %d train %d ms %.3f layout %s"
              % (a.model, b, a.train, best[0], best[1]), flush=True)


if __name__ == "__main__":
    main()
