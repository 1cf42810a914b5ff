#!/usr/bin/python3
"""fashion_resnet_torch.py - the PyTorch twin of cfg/fashion/resnet.cfg, for bench/fashion_resnet.sh.

The same ResNet-8, layer for layer (cfg/fashion/resnet.cfg): conv 3x3 48 + BN + ReLU at 28x28,
2x2/2 max pool, then one basic block per stage (48 at 14x14 with an identity shortcut; 96 at 7x7
and 192 at 4x4, each with a stride-2 1x1 conv + BN projection), ReLU after each sum, global
average pool, linear 10, softmax cross-entropy. 690,970 parameters, as `net summary`. Convolutions
carry no bias (the batch norm's shift is it, as in cfgnet); batch norms are bn_style=torch's,
i.e. nn.BatchNorm2d's defaults (eps 1e-5, momentum 0.1).

Initialisation as cfgnet's: conv weights He normal, sqrt(2 / fan_in) * N(0, 1) (Darknet's
init=he; fan_in = in_channels * kh * kw); the [connected] layer sqrt(2 / fan_in) * U(-1, 1);
biases 0, BN scales 1 and shifts 0. Training as the cfg's [net], read at run time: batch,
SGD momentum, weight decay on conv and linear weights only (not biases nor BN parameters, as
cfgnet's PARAM_DECAY), learning rate by cfgnet's lr_at (cosine to learning_rate_min=0 over
max_batches steps, burn-in if any); random left-right flip per image with probability 1/2;
translate= (a random shift of up to that fraction of the side, bilinear, edges clamped) when
the cfg has it; inputs (x / 255 - mean) / std with the cfg's mean= and std=; any other
augmentation key is refused rather than silently left out. Data: Debian's dataset-fashion-mnist
IDX files read into memory (the fastest way to feed PyTorch, so its fairest baseline); a fresh
random permutation every epoch.

Run with Debian's /usr/bin/python3 (python3-torch 1.13). Prints machine-readable lines:
    torch_params 690970
    torch_steps N / torch_wall_s S / torch_img_per_s R / torch_test_top1 A
--steps N trains N steps with the cosine schedule over N (as bench/fashion_resnet.sh --steps
gives cfgnet a copy of the cfg with max_batches=N). Leaves out what the cfg does not ask for.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lenet5_torch import FASHION, hyper, load_split, lr_at, read_net_section  # noqa: E402


def conv_bn(cin, cout, k, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout))


class Block(nn.Module):
    """relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)); shortcut a 1x1/2 conv + BN when the
    stage halves the grid ([route] back to the block input, [convolutional] size=1 stride=2)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a = conv_bn(cin, cout, 3, stride)
        self.b = conv_bn(cout, cout, 3, 1)
        self.proj = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        y = self.b(F.relu(self.a(x)))
        return F.relu(y + (self.proj(x) if self.proj is not None else x))


class ResNet8(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(1, 48, 3, 1)
        self.stages = nn.Sequential(Block(48, 48, 1), Block(48, 96, 2), Block(96, 192, 2))
        self.fc = nn.Linear(192, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem(x)), 2, 2)
        x = self.stages(x)
        return self.fc(x.mean(dim=(2, 3)))


def init_like_cfgnet(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                m.weight.normal_(0, (2.0 / fan_in) ** 0.5)
            elif isinstance(m, nn.Linear):
                m.weight.uniform_(-1, 1).mul_((2.0 / m.in_features) ** 0.5)
                m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1)
                m.bias.zero_()


def make_optimiser(model, h):
    decayed = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    ids = {id(p) for p in decayed}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return torch.optim.SGD([{"params": decayed, "weight_decay": h["decay"]},
                            {"params": rest, "weight_decay": 0.0}],
                           lr=h["lr"], momentum=h["momentum"])


def accuracy(model, x, y):
    model.eval()
    hits = 0
    with torch.no_grad():
        for i in range(0, len(x), 500):
            hits += (model(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item()
    model.train()
    return hits / len(x)


def translate(xb, frac, gen):
    """cfgnet's translate= (augment.c warp_draw): each image shifted by uniform(-frac, frac) of its
    width and height, bilinear, edges clamped (grid_sample: border padding, pixel centres)."""
    if frac <= 0:
        return xb
    n, _, hh, ww = xb.shape
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * frac
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2] = shift[:, 0] * ww * 2 / (ww - 1)
    theta[:, 1, 2] = shift[:, 1] * hh * 2 / (hh - 1)
    grid = F.affine_grid(theta, list(xb.shape), align_corners=True)
    return F.grid_sample(xb, grid, mode="bilinear", padding_mode="border", align_corners=True)


# [net] augmentation keys this twin does not reproduce, with their neutral values.
UNSUPPORTED = {"angle": 0, "min_crop": 0, "max_crop": 0, "aspect": 1, "hue": 0, "saturation": 1,
               "exposure": 1, "mixup": 0, "cutmix": 0, "label_smooth_eps": 0, "channel_shift": 0}


def check_augmentation(kv, cfg):
    for key, neutral in UNSUPPORTED.items():
        if key in kv and float(kv[key].split(",")[0]) != neutral:
            sys.exit(f"{cfg}: {key}={kv[key]}: not reproduced by this PyTorch twin")
    if kv.get("flip", "0") != "1":
        sys.exit(f"{cfg}: this twin always flips; the cfg says flip={kv.get('flip', '0')}")


def train(model, h, x, y, steps, gen):
    opt = make_optimiser(model, h)
    b, perm, pos = h["batch"], None, len(x)
    t0 = time.perf_counter()
    for it in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(h, it)
        if pos + b > len(x):
            perm, pos = torch.randperm(len(x), generator=gen), 0
        idx = perm[pos:pos + b]
        pos += b
        xb = translate(x[idx], h["translate"], gen)
        flip = torch.rand(b, generator=gen) < 0.5
        xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb)
        loss = F.cross_entropy(model(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (it + 1) % 100 == 0 or it + 1 == steps:
            print(f"torch step {it + 1}/{steps} loss {loss.item():.4f} lr {lr_at(h, it):.5f} "
                  f"{(it + 1) * b / (time.perf_counter() - t0):.0f} img/s", flush=True)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cfg", default="cfg/fashion/resnet.cfg", help="[net] hyperparameters")
    ap.add_argument("--data", default=FASHION, help="directory of the Fashion-MNIST IDX .gz files")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0, help="steps (default: the cfg's max_batches)")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    h = hyper(a.cfg)
    kv = read_net_section(a.cfg)
    mean, std = float(kv.get("mean", 0)), float(kv.get("std", 1))
    check_augmentation(kv, a.cfg)
    h["translate"] = float(kv.get("translate", 0))
    if a.steps > 0:
        h["max_batches"] = a.steps
    torch.manual_seed(h["seed"])
    gen = torch.Generator().manual_seed(h["seed"])
    model = ResNet8()
    init_like_cfgnet(model)
    print(f"torch_params {sum(p.numel() for p in model.parameters())}")
    x, y = load_split("train", a.data, 1)
    xt, yt = load_split("t10k", a.data, 1)
    x, xt = (x - mean) / std, (xt - mean) / std
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {h['batch']}, "
          f"{h['max_batches']} steps, lr {h['lr']} {h['policy']}, momentum {h['momentum']}, "
          f"decay {h['decay']}, flip, translate {h['translate']}, mean {mean} std {std}",
          flush=True)
    wall = train(model, h, x, y, h["max_batches"], gen)
    print(f"torch_steps {h['max_batches']}")
    print(f"torch_wall_s {wall:.1f}")
    print(f"torch_img_per_s {h['max_batches'] * h['batch'] / wall:.0f}")
    print(f"torch_test_top1 {accuracy(model, xt, yt):.4f}")


if __name__ == "__main__":
    main()
