#!/usr/bin/python3
"""conv_torch.py SPEC_FILE - convolutions' forwards and gradients in PyTorch, for test_conv.

SPEC_FILE holds whitespace-separated numbers: one or more cases, each a header
    N C H W F groups kh kw sh sw ph pw dilation
(cfgnet's [convolutional] after key resolution: kernel kh x kw = size_y x size_x, strides,
padding per side, one dilation for both axes) followed by the input (N*C*H*W values, NCHW), the
weights (F * C/groups * kh * kw, layout [F][C/groups][kh][kw]), the biases (F) and dL/doutput
(N*F*OH*OW values, NCHW). Prints three lines per case, "y ...", "dx ..." and "dw ...", computed
by torch.nn.functional.conv2d in float64 (a linear activation, no batch norm). One process for
all cases: importing torch is the slow part.
Exit status 2 when torch cannot be imported (the C side skips, saying so), 1 on a bad spec.
"""
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit(2)


def take(vals, at, count):
    if at + count > len(vals):
        sys.stderr.write("conv_torch.py: the spec ends early\n")
        sys.exit(1)
    return torch.tensor(vals[at:at + count], dtype=torch.float64), at + count


def run_case(vals, at):
    n, c, h, w, fo, groups, kh, kw, sh, sw, ph, pw, dil = (int(v) for v in vals[at:at + 13])
    at += 13
    x, at = take(vals, at, n * c * h * w)
    wt, at = take(vals, at, fo * (c // groups) * kh * kw)
    b, at = take(vals, at, fo)
    x = x.reshape(n, c, h, w).requires_grad_(True)
    wt = wt.reshape(fo, c // groups, kh, kw).requires_grad_(True)
    y = F.conv2d(x, wt, b, stride=(sh, sw), padding=(ph, pw), dilation=dil, groups=groups)
    dy, at = take(vals, at, y.numel())
    y.backward(dy.reshape(y.shape))
    for tag, t in (("y", y), ("dx", x.grad), ("dw", wt.grad)):
        print(tag, " ".join("%.9g" % v for v in t.detach().reshape(-1).tolist()))
    return at


def main():
    with open(sys.argv[1]) as f:
        vals = [float(v) for v in f.read().split()]
    at = 0
    while at < len(vals):
        at = run_case(vals, at)


if __name__ == "__main__":
    main()
