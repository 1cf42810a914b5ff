#!/usr/bin/python3
"""lenet5_torch.py - the PyTorch baseline for bench/lenet5_train.sh.

The LeNet-5 of cfg/lenet5.cfg (conv 6@5x5 pad 2 relu, 2x2 pool, conv 16@5x5 relu, 2x2 pool,
connected 120 relu, 84 relu, 10, softmax cross-entropy) trained with the same batch, SGD momentum,
weight decay (on weights, not biases, as cfgnet does) and cosine learning-rate schedule, all read
from the [net] section of the cfg at run time. Fashion-MNIST is read from Debian's
dataset-fashion-mnist IDX files into memory tensors (pixels / 255, NCHW), which is the fastest
way to feed PyTorch and so its fairest baseline.

Run it with Debian's interpreter (/usr/bin/python3, python3-torch 1.13), not another python3.

Speed mode (default): a short warm-up, then --repeats timed runs of --iters optimiser steps each
(sampling a batch, forward, backward, step); prints the median training images/s as
    torch_train_img_per_s 15234
Full mode (--full): trains max_batches steps from the cfg and prints the wall time and the top-1
accuracy on the 10,000 test images (torch_full_wall_s, torch_test_top1).
Leaves out: data augmentation (cfgnet's classifier does none either) and the original LeNet's
trainable subsampling coefficients and scaled tanh.
"""
import argparse
import gzip
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FASHION = "/usr/share/datasets/fashion-mnist"


def read_net_section(path):
    """The key=value pairs of the first [net]/[network] section of a Darknet-dialect cfg."""
    kv, section = {}, None
    with open(path) as f:
        for raw in f:
            line = raw.split("#", 1)[0].split(";", 1)[0].strip()
            if not line:
                continue
            if line.startswith("["):
                if section is not None:
                    break
                section = line.strip("[]").strip()
                continue
            if section in ("net", "network") and "=" in line:
                k, v = line.split("=", 1)
                kv[k.strip()] = v.strip()
    if section not in ("net", "network"):
        sys.exit(f"{path}: no [net] section")
    return kv


def hyper(path):
    kv = read_net_section(path)
    h = {
        "batch": int(kv.get("batch", 1)),
        "lr": float(kv.get("learning_rate", 0.001)),
        "momentum": float(kv.get("momentum", 0.9)),
        "decay": float(kv.get("decay", 0.0001)),
        "policy": kv.get("policy", "constant"),
        "max_batches": int(kv.get("max_batches", 0)),
        "lr_min": float(kv.get("learning_rate_min", 0.0)),
        "burn_in": int(kv.get("burn_in", 0)),
        "power": float(kv.get("power", 4.0)),
        "channels": int(kv.get("channels", 1)),
        "seed": int(kv.get("seed", 1)),
    }
    if h["policy"] not in ("cosine", "constant"):
        sys.exit(f"{path}: policy={h['policy']}: this baseline knows cosine and constant")
    return h


def lr_at(h, it):
    """cfgnet's lr_at (src/net/lr.c) for the policies this baseline knows."""
    if it < h["burn_in"]:
        return h["lr"] * (it / h["burn_in"]) ** h["power"]
    if h["policy"] == "constant" or h["max_batches"] <= 0:
        return h["lr"]
    t = min(it, h["max_batches"]) / h["max_batches"]
    return h["lr_min"] + 0.5 * (h["lr"] - h["lr_min"]) * (1 + math.cos(math.pi * t))


def read_idx(name, src):
    with gzip.open(os.path.join(src, name), "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(prefix, src, channels):
    x = read_idx(f"{prefix}-images-idx3-ubyte.gz", src).astype(np.float32) / 255.0
    y = read_idx(f"{prefix}-labels-idx1-ubyte.gz", src).astype(np.int64)
    x = torch.from_numpy(x).unsqueeze(1)
    if channels != 1:
        x = x.expand(-1, channels, -1, -1).contiguous()
    return x, torch.from_numpy(y)


class LeNet5(nn.Module):
    def __init__(self, channels, pool):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        self.pool = F.avg_pool2d if pool == "avg" else F.max_pool2d

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)), 2, 2)
        x = self.pool(F.relu(self.conv2(x)), 2, 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def make_optimiser(model, h):
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if not n.endswith("weight")]
    return torch.optim.SGD(
        [{"params": weights, "weight_decay": h["decay"]}, {"params": biases, "weight_decay": 0.0}],
        lr=h["lr"], momentum=h["momentum"])


class Trainer:
    def __init__(self, h, x, y, pool):
        self.h, self.x, self.y = h, x, y
        self.gen = torch.Generator().manual_seed(h["seed"])
        self.model = LeNet5(x.shape[1], pool)
        self.opt = make_optimiser(self.model, h)
        self.perm, self.pos, self.it = None, len(x), 0

    def next_batch(self):
        b = self.h["batch"]
        if self.pos + b > len(self.x):
            self.perm = torch.randperm(len(self.x), generator=self.gen)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + b]
        self.pos += b
        return self.x[idx], self.y[idx]

    def step(self):
        lr = lr_at(self.h, self.it)
        for g in self.opt.param_groups:
            g["lr"] = lr
        xb, yb = self.next_batch()
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(xb), yb)
        loss.backward()
        self.opt.step()
        self.it += 1
        return loss


def timed_steps(tr, n):
    t0 = time.perf_counter()
    for _ in range(n):
        tr.step()
    return time.perf_counter() - t0


def accuracy(model, x, y):
    model.eval()
    hits = 0
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            hits += (model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item()
    model.train()
    return hits / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cfg", default="cfg/lenet5.cfg", help="hyperparameters from its [net]")
    ap.add_argument("--data", default=FASHION, help="directory of the Fashion-MNIST IDX .gz files")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pool", choices=("avg", "max"), default="avg")
    ap.add_argument("--iters", type=int, default=300, help="timed steps per repeat")
    ap.add_argument("--warmup", type=int, default=30, help="untimed steps first")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--full", action="store_true", help="train max_batches steps, report top-1")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    h = hyper(a.cfg)
    torch.manual_seed(h["seed"])
    x, y = load_split("train", a.data, h["channels"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {h['batch']}, "
          f"lr {h['lr']} {h['policy']}, momentum {h['momentum']}, decay {h['decay']}, "
          f"{a.pool}pool, {len(x)} training images in memory", flush=True)
    tr = Trainer(h, x, y, a.pool)
    if a.full:
        steps = h["max_batches"]
        if steps < 1:
            sys.exit(f"{a.cfg}: max_batches must be >= 1 for --full")
        wall = timed_steps(tr, steps)
        xt, yt = load_split("t10k", a.data, h["channels"])
        print(f"torch_full_steps {steps}")
        print(f"torch_full_wall_s {wall:.1f}")
        print(f"torch_full_img_per_s {steps * h['batch'] / wall:.0f}")
        print(f"torch_test_top1 {accuracy(tr.model, xt, yt):.4f}")
        return
    timed_steps(tr, a.warmup)
    rates = [a.iters * h["batch"] / timed_steps(tr, a.iters) for _ in range(a.repeats)]
    print("torch_runs_img_per_s " + " ".join(f"{r:.0f}" for r in rates))
    print(f"torch_train_img_per_s {statistics.median(rates):.0f}")


if __name__ == "__main__":
    main()
