#!/usr/bin/python3
"""torch_loader.py - PyTorch's side of bench/train_loader.sh: LeNet-5 fed by a DataLoader.

The LeNet-5, hyperparameters and optimiser of bench/lenet5_torch.py (imported from it), trained
in one of two modes, as bench/train_loader.c trains cfgnet's:
  loader  - every step takes the next batch from a torch.utils.data.DataLoader over the PNGs of
            a Darknet list file (label: the class name of the labels file in the file's name,
            e.g. train/00001_tee.png is "tee"), each opened by PIL, convert("L"), and made a
            1x28x28 float tensor / 255 by torchvision's to_tensor; shuffled, batch of the cfg,
            WORKERS persistent workers, default prefetch (2 batches per worker);
  memory  - the DataLoader's workers are shut down after the warm-up, and every timed step
            trains again on the last warm-up batch (held in memory).
Timing starts right after WARM untimed steps (the workers' start and first batches stay outside
it) and covers STEPS steps of the first epoch, so the workers decode the images of the timed
batches during the timed steps (a shuffled epoch of 60,000 images holds 468 batches of 128).

Prints a first line of the shape train_loader.c prints (bench/train_loader.sh reads its images/s,
$3, its CPU time per image, $5, and "N s, M decoded"), then a line of CPU time by process:
  img/s loader 5123.45  cpu_us/img 312.0  loader_next_ms/step 0.1 (cpu 0.1)  (...; 3.2 s,
  25600 decoded, 1152 before)
CPU time over the timed steps is that of the whole process tree: the main process (RUSAGE_SELF,
all its threads) and each DataLoader worker process (utime + stime of /proc/PID/stat, all its
threads, dead ones included), each read just before and just after the timed steps, as
train_loader.c's CLOCK_PROCESS_CPUTIME_ID covers its loader threads. RUSAGE_CHILDREN after the
workers exit is printed beside it as a check: it also holds the workers' start, the warm-up's
batches and the prefetch after the last timed step. Decoded: images the workers decoded during
the timed steps (each counts its own in a shared array); 0 in memory mode.

Run it with Debian's interpreter (/usr/bin/python3: python3-torch, -torchvision, -pil):
  bench/torch_loader.py --cfg CFG --list LIST --labels LABELS --mode loader|memory --steps N
                        [--workers W] [--warm K] [--threads T]
Leaves out: augmentation (cfg/lenet5.cfg has none) and the decoded-image cache of later epochs.
"""
import argparse
import multiprocessing as mp
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.functional import to_tensor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lenet5_torch import LeNet5, hyper, lr_at, make_optimiser  # noqa: E402

MAX_WORKERS = 64
HZ = os.sysconf("SC_CLK_TCK")


def read_net_workers(path):
    """[net] workers= of the cfg (cfgnet's key), or 2, cfgnet's default."""
    section = None
    with open(path) as f:
        for raw in f:
            line = raw.split("#", 1)[0].split(";", 1)[0].strip()
            if line.startswith("["):
                if section is not None:
                    break
                section = line.strip("[]").strip()
            elif section in ("net", "network") and "=" in line:
                k, v = line.split("=", 1)
                if k.strip() == "workers":
                    return int(v)
    return 2


def read_list(list_path, labels_path):
    """(path, label) per line of a Darknet list: the label is the class of the labels file (one
    name a line, in label order) whose name is in the file's name; the longest wins, so that a
    "shirt" inside "tshirt" does not mislabel."""
    with open(labels_path) as f:
        labels = [s.strip() for s in f if s.strip()]
    out = []
    with open(list_path) as f:
        for n, raw in enumerate(f, 1):
            path = raw.strip()
            if not path:
                continue
            name = os.path.basename(path)
            hits = [i for i, c in enumerate(labels) if c in name]
            if not hits:
                sys.exit(f"{list_path}:{n}: {path}: no class of {labels_path} in the name")
            out.append((path, max(hits, key=lambda i: len(labels[i]))))
    return out


class PngSet(torch.utils.data.Dataset):
    """The images of a list, decoded on each access; decoded[worker id] counts them."""

    def __init__(self, items, decoded):
        self.items, self.decoded = items, decoded

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        with Image.open(path) as im:
            x = to_tensor(im.convert("L"))
        w = torch.utils.data.get_worker_info()
        self.decoded[w.id if w else 0] += 1  # one writer per slot: no lock
        return x, label


def self_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def proc_cpu(pid):
    """utime + stime of process pid, all its threads, in seconds (clock-tick resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def step(model, opt, h, it, xb, yb):
    """One optimiser step as lenet5_torch.Trainer.step takes it (cfgnet's lr_at schedule)."""
    for g in opt.param_groups:
        g["lr"] = lr_at(h, it)
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(xb), yb).backward()
    opt.step()


def nproc():
    """The threads train_loader.c's OpenMP team has: OMP_NUM_THREADS, else the CPUs we may use
    (what nproc prints)."""
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0]
    return int(env) if env.isdigit() and int(env) > 0 else len(os.sched_getaffinity(0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cfg", default="cfg/lenet5.cfg", help="hyperparameters from its [net]")
    ap.add_argument("--list", default="data/fashion/train.list")
    ap.add_argument("--labels", default="data/fashion.labels")
    ap.add_argument("--mode", choices=("loader", "memory"), required=True)
    ap.add_argument("--steps", type=int, default=200, help="timed steps")
    ap.add_argument("--workers", type=int, default=-1, help="-1: the cfg's workers= (2)")
    ap.add_argument("--warm", type=int, default=5, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=nproc(), help="torch threads (nproc)")
    a = ap.parse_args()

    h = hyper(a.cfg)
    workers = a.workers if a.workers >= 0 else read_net_workers(a.cfg)
    if not 1 <= workers <= MAX_WORKERS:
        sys.exit(f"workers {workers}: must be 1 to {MAX_WORKERS}")
    if a.steps < 1 or a.warm < 1:
        sys.exit("--steps and --warm must be >= 1")
    items = read_list(a.list, a.labels)
    b = h["batch"]
    if (a.warm + a.steps) * b > len(items):
        sys.exit(f"{a.list}: {len(items)} images, fewer than {a.warm + a.steps} batches of {b}: "
                 "the timed steps must stay in the first epoch")
    torch.set_num_threads(a.threads)
    torch.manual_seed(h["seed"])
    ctx = mp.get_context("fork")
    decoded = ctx.Array("q", MAX_WORKERS, lock=False)
    dl = torch.utils.data.DataLoader(
        PngSet(items, decoded), batch_size=b, shuffle=True, num_workers=workers,
        persistent_workers=True, drop_last=True, multiprocessing_context=ctx,
        generator=torch.Generator().manual_seed(h["seed"]))
    model = LeNet5(1, "avg")  # cfg/lenet5.cfg's [avgpool], as lenet5_torch.py's default
    opt = make_optimiser(model, h)
    batches = iter(dl)
    pids = [p.pid for p in batches._workers]
    for it in range(a.warm):
        xb, yb = next(batches)
        step(model, opt, h, it, xb, yb)
    if a.mode == "memory":
        batches._shutdown_workers()  # they neither run nor hold memory while timed
        pids = []
    before = sum(decoded)
    c0, w0 = self_cpu(), sum(proc_cpu(p) for p in pids)
    waited = own = 0.0
    t0 = time.perf_counter()
    for it in range(a.warm, a.warm + a.steps):
        if a.mode == "loader":
            n0, o0 = time.perf_counter(), time.thread_time()
            xb, yb = next(batches)
            waited += time.perf_counter() - n0
            own += time.thread_time() - o0
        step(model, opt, h, it, xb, yb)
    dt = time.perf_counter() - t0
    got = sum(decoded) - before
    main_cpu = self_cpu() - c0
    worker_cpu = sum(proc_cpu(p) for p in pids) - w0
    if a.mode == "loader":
        batches._shutdown_workers()  # joined: RUSAGE_CHILDREN now holds their whole lives
    imgs = a.steps * b
    print(f"img/s {a.mode} {imgs / dt:.2f}  cpu_us/img {1e6 * (main_cpu + worker_cpu) / imgs:.1f}  "
          f"loader_next_ms/step {1e3 * waited / a.steps:.3f} (cpu {1e3 * own / a.steps:.3f})  "
          f"({a.steps} steps of {b}, {len(pids)} workers, PyTorch {torch.__version__}, "
          f"{dt:.2f} s, {got} decoded, {before} before)")
    print(f"  cpu_us/img: main {1e6 * main_cpu / imgs:.1f}  workers {1e6 * worker_cpu / imgs:.1f}  "
          f"({torch.get_num_threads()} torch threads; workers' whole lives, RUSAGE_CHILDREN: "
          f"{children_cpu():.2f} s; unused of {a.threads} cores x wall "
          f"{1e6 * (a.threads * dt - main_cpu - worker_cpu) / imgs:.1f})", flush=True)


if __name__ == "__main__":
    main()
