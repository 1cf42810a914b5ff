#!/usr/bin/python3
"""torch_layer.py SPEC_FILE - layers' forward and input gradient in PyTorch, for the C tests.

SPEC_FILE holds cases of three lines each: an op line, the input (N*C*H*W values, NCHW, on one
line) and dL/doutput (one value per output, on one line). For each case it prints two lines,
"y v1 v2 ..." and "dx v1 v2 ...", computed in float64 (one process for many cases: importing
torch is the slow part). Ops (sizes as cfgnet's keys):
  maxpool N C H W size stride_y stride_x padding ceil_mode
      padding is Darknet's TOTAL padding: padding//2 before, the rest after, as -inf cells
      (F.pad then F.max_pool2d(padding=0)); with ceil_mode=1 padding must be even and is
      passed to F.max_pool2d as padding//2 per side, so PyTorch's own ceil rule applies.
  avgpool N C H W size stride_y stride_x pad ceil_mode count_include_pad
      F.avg_pool2d(size, (stride_y, stride_x), pad, ceil_mode, count_include_pad).
  lrn N C H W size alpha beta k
      F.local_response_norm(x, size, alpha, beta, k).
Exit status 2 when torch cannot be imported (the C side skips), 1 on a bad spec.
"""
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit(2)


def run(op, a, x):
    n, c, h, w = (int(v) for v in a[:4])
    x = torch.tensor(x, dtype=torch.float64).reshape(n, c, h, w).requires_grad_(True)
    if op == "maxpool":
        size, sy, sx, padding, ceil = (int(v) for v in a[4:9])
        if ceil:
            if padding % 2:
                raise ValueError("ceil_mode needs an even padding")
            y = F.max_pool2d(x, size, (sy, sx), padding // 2, ceil_mode=True)
        else:
            lo, hi = padding // 2, padding - padding // 2
            xp = F.pad(x, (lo, hi, lo, hi), value=float("-inf"))
            y = F.max_pool2d(xp, size, (sy, sx), 0)
    elif op == "avgpool":
        size, sy, sx, pad, ceil, count = (int(v) for v in a[4:10])
        y = F.avg_pool2d(x, size, (sy, sx), pad, ceil_mode=bool(ceil),
                         count_include_pad=bool(count))
    elif op == "lrn":
        size = int(a[4])
        alpha, beta, k = (float(v) for v in a[5:8])
        y = F.local_response_norm(x, size, alpha, beta, k)
    else:
        raise ValueError("unknown op " + op)
    return x, y


def case(op_line, x_line, dy_line):
    head = op_line.split()
    op, a = head[0], head[1:]
    x, y = run(op, a, [float(v) for v in x_line.split()])
    dy = torch.tensor([float(v) for v in dy_line.split()], dtype=torch.float64)
    if dy.numel() != y.numel():
        raise ValueError("%d gradient values for %d outputs %s" % (dy.numel(), y.numel(),
                                                                 tuple(y.shape)))
    y.backward(dy.reshape(y.shape))
    print("y", " ".join("%.9g" % v for v in y.detach().flatten().tolist()))
    print("dx", " ".join("%.9g" % v for v in x.grad.flatten().tolist()))


def main():
    with open(sys.argv[1]) as f:
        lines = [line for line in f.read().split("\n") if line.strip()]
    if len(lines) % 3:
        raise ValueError("%d lines: not cases of three" % len(lines))
    for i in range(0, len(lines), 3):
        case(*lines[i:i + 3])


if __name__ == "__main__":
    try:
        main()
    except (ValueError, IndexError) as e:
        print("torch_layer.py:", e, file=sys.stderr)
        sys.exit(1)
