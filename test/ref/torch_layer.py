#!/usr/bin/python3
"""torch_layer.py SPEC_FILE - layers' forward and gradients in PyTorch, for the C tests.

SPEC_FILE holds cases, each an op line, then the input (N*C*H*W values, NCHW, on one line), then
dL/doutput (one value per output) or, for the loss ops (softmax with truth=1, cost), the targets
(one per output), then any number of tagged lines "TAG v1 v2 ...": the net's parameters before
the pass, tagged p<layer>.<name> (p0.weights, p0.biases, p0.scales, p0.rolling_mean,
p0.rolling_variance, in cfgnet's .weights layout), and "mask" for dropout. For each case it
prints tagged lines "y ...", "dx ...", then "loss v" (loss ops: the summed loss, unscaled),
d<layer>.<name> (gradient of every trainable parameter given), p<layer>.<name> (rolling
statistics after the pass) and a closing "end", computed in float64 (one process for many cases:
importing torch is the slow part). The gradient is of sum(y * dy), or for a loss op of
loss / N (cfgnet's loss_scale: one image per step). Ops (sizes as cfgnet's keys):
  maxpool N C H W size stride_y stride_x padding ceil_mode
      padding is Darknet's TOTAL padding: padding//2 before, the rest after, as -inf cells
      (F.pad then F.max_pool2d(padding=0)); with ceil_mode=1 padding must be even and is
      passed to F.max_pool2d as padding//2 per side, so PyTorch's own ceil rule applies.
  avgpool N C H W size stride_y stride_x pad ceil_mode count_include_pad
      F.avg_pool2d(size, (stride_y, stride_x), pad, ceil_mode, count_include_pad).
  lrn N C H W size alpha beta k
      F.local_response_norm(x, size, alpha, beta, k).
The others take N C H W then key=value options; train=1 is a training-mode pass (batch
statistics), bn=1 a batch norm in style=torch (F.batch_norm, eps 1e-5, momentum 0.1) or
style=darknet (the formula: unbiased variance, eps 1e-6 added to the standard deviation,
momentum 0.01), act= an activation by cfgnet's name (ACTS below):
  conv      F= groups= kh= kw= sh= sw= ph= pw= dil= bn= act= train= style=   (F.conv2d)
  connected O= bn= act= train= style=                                       (F.linear)
  batchnorm train= style=
  gavgpool                       mean over H x W
  activation act=
  dropout   p= train=            train: y = x * mask / (1 - p), mask from the "mask" line
  softmax   groups= T= w= eps= truth=   softmax(x / T) per group; with truth=1, w times
                                 F.cross_entropy(label_smoothing=eps) on the targets' argmax
  cost      type=sse|masked|L1 scale=   y = x; sse: scale/2 * sum (x - t)^2 (masked skips
                                 t = -1234); L1: scale * sum |x - t|
  crop      ch= cw= noadjust=    the centre window, times 2 minus 1 unless noadjust=1
  route     groups= group_id=    the graph of test_layer_parity.c: a = x, b = tanh(a),
                                 c = sigmoid(cat(a, b)); y = cat of the group_id-th chunks of a, c, b
  shortcut  alpha= beta= act= shape=same|down|up   (test_layer_parity.c's graphs)
  scale_channels act=            a = x, g = sigmoid(linear_2(mean_hw(a))), y = act(a * g)
Exit status 2 when torch cannot be imported (the C side skips), 1 on a bad spec.
"""
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit(2)

OLD_OPS = ("maxpool", "avgpool", "lrn")
NEW_OPS = ("conv", "connected", "batchnorm", "gavgpool", "activation", "dropout", "softmax",
           "cost", "crop", "route", "shortcut", "scale_channels")
TRAINABLE = ("weights", "biases", "scales")


def stair(z):
    n = torch.floor(z)
    half = torch.floor(z / 2)
    return torch.where(torch.remainder(n, 2) == 0, half, (z - n) + half)


ACTS = {
    "linear": lambda z: z,
    "relu": F.relu,
    "leaky": lambda z: F.leaky_relu(z, 0.1),
    "logistic": torch.sigmoid,
    "tanh": torch.tanh,
    "elu": F.elu,
    "selu": F.selu,
    "relie": lambda z: F.leaky_relu(z, 0.01),
    "ramp": lambda z: F.relu(z) + 0.1 * z,
    "plse": lambda z: torch.where(z < -4, 0.01 * (z + 4),
                                  torch.where(z > 4, 0.01 * (z - 4) + 1, 0.125 * z + 0.5)),
    "stair": stair,
    "hardtan": F.hardtanh,
    "lhtan": lambda z: torch.where(z < 0, 0.001 * z,
                                   torch.where(z > 1, 0.001 * (z - 1) + 1, z)),
    "loggy": lambda z: 2 * torch.sigmoid(z) - 1,
    "relu6": F.relu6,
    "swish": F.silu,
    "mish": F.mish,
}


class Case:
    """One case: its op, options, tensors given, and what it hands back."""

    def __init__(self, head):
        self.op, args = head[0], head[1:]
        self.pos = [a for a in args if "=" not in a]
        self.kv = dict(a.split("=", 1) for a in args if "=" in a)
        self.rows = []
        self.tagged = {}
        self.out = []  # (tag, tensor) printed after y and dx
        self.loss = None

    def num(self, key, default=None):
        if key not in self.kv:
            if default is None:
                raise ValueError("%s: no %s=" % (self.op, key))
            return default
        return float(self.kv[key])

    def int(self, key, default=None):
        return int(self.num(key, default))

    def param(self, tag):
        if tag not in self.tagged:
            raise ValueError("%s: no %s line" % (self.op, tag))
        t = self.tagged[tag]
        if tag.split(".", 1)[1] in TRAINABLE and not t.requires_grad:
            t.requires_grad_(True)
            self.out.append(("d" + tag[1:], t))
        return t


def batchnorm(cs, z, layer):
    """cfgnet's batch norm on z (N x C or N x C x H x W) with layer's scales/biases/rolling."""
    g, b = cs.param(layer + ".scales"), cs.param(layer + ".biases")
    rm = cs.param(layer + ".rolling_mean").clone()
    rv = cs.param(layer + ".rolling_variance").clone()
    train, style = cs.int("train"), cs.kv.get("style", "darknet")
    shape = (1, -1) + (1,) * (z.dim() - 2)
    if style == "torch":
        y = F.batch_norm(z, rm, rv, g, b, training=bool(train), momentum=0.1, eps=1e-5)
    elif style == "darknet":
        dims = (0,) + tuple(range(2, z.dim()))
        if train:
            mean, m = z.mean(dims), z.numel() // z.shape[1]
            var = z.var(dims, unbiased=True) if m > 1 else torch.zeros_like(mean)
            rm.mul_(0.99).add_(0.01 * mean.detach())
            rv.mul_(0.99).add_(0.01 * var.detach())
        else:
            mean, var = rm, rv
        y = (z - mean.view(shape)) / (torch.sqrt(var).view(shape) + 1e-6)
        y = y * g.view(shape) + b.view(shape)
    else:
        raise ValueError("unknown style " + style)
    cs.out += [("p" + layer[1:] + ".rolling_mean", rm), ("p" + layer[1:] + ".rolling_variance", rv)]
    return y


def op_conv(cs, x):
    fo, groups = cs.int("F"), cs.int("groups", 1)
    kh, kw = cs.int("kh"), cs.int("kw")
    w = cs.param("p0.weights")
    bn = cs.int("bn", 0)
    wt = w.reshape(fo, x.shape[1] // groups, kh, kw)
    z = F.conv2d(x, wt, None if bn else cs.param("p0.biases"), stride=(cs.int("sh"), cs.int("sw")),
                 padding=(cs.int("ph"), cs.int("pw")), dilation=cs.int("dil", 1), groups=groups)
    if bn:
        z = batchnorm(cs, z, "p0")
    return ACTS[cs.kv.get("act", "linear")](z)


def op_connected(cs, x):
    o, bn = cs.int("O"), cs.int("bn", 0)
    w = cs.param("p0.weights").reshape(o, -1)
    z = F.linear(x.reshape(x.shape[0], -1), w, None if bn else cs.param("p0.biases"))
    if bn:
        z = batchnorm(cs, z, "p0")
    return ACTS[cs.kv.get("act", "linear")](z)


def op_dropout(cs, x):
    if not cs.int("train"):
        return x * 1
    mask = cs.tagged["mask"].reshape(x.shape)
    return x * mask / (1 - cs.num("p"))


def op_softmax(cs, x):
    n, groups, temp = x.shape[0], cs.int("groups", 1), cs.num("T", 1)
    z = x.reshape(n * groups, -1) / temp
    y = F.softmax(z, dim=1).reshape(x.shape)
    if cs.int("truth", 0):
        labels = cs.target.reshape(n * groups, -1).argmax(dim=1)
        cs.loss = cs.num("w", 1) * F.cross_entropy(z, labels, reduction="sum",
                                                   label_smoothing=cs.num("eps", 0))
    return y


def op_cost(cs, x):
    t, scale, kind = cs.target.reshape(x.shape), cs.num("scale", 1), cs.kv.get("type", "sse")
    if kind == "L1":
        cs.loss = scale * (x - t).abs().sum()
    else:
        keep = (t != -1234) if kind == "masked" else torch.ones_like(t, dtype=torch.bool)
        cs.loss = scale * 0.5 * ((x - t)[keep] ** 2).sum()
    return x * 1


def op_crop(cs, x):
    ch, cw = cs.int("ch"), cs.int("cw")
    top, left = (x.shape[2] - ch) // 2, (x.shape[3] - cw) // 2
    win = x[:, :, top:top + ch, left:left + cw]
    return win if cs.int("noadjust", 0) else win * 2 - 1


def op_route(cs, x):
    groups, gid = cs.int("groups", 1), cs.int("group_id", 0)
    a = x
    b = torch.tanh(a)
    c = torch.sigmoid(torch.cat([a, b], dim=1))
    return torch.cat([t.chunk(groups, dim=1)[gid] for t in (a, c, b)], dim=1)


def op_shortcut(cs, x):
    alpha, beta, shape = cs.num("alpha", 1), cs.num("beta", 1), cs.kv.get("shape", "same")
    c2 = x.shape[1] // 2
    if shape == "same":  # prev = tanh(x), from = x
        z = alpha * torch.tanh(x) + beta * x
    elif shape == "down":  # prev = maxpool2(x[:, :C/2]), from = x: stride 2
        prev = F.max_pool2d(x[:, :c2], 2, 2)
        h, w = prev.shape[2], prev.shape[3]
        z = alpha * prev + beta * x[:, :c2, 0:2 * h:2, 0:2 * w:2]
    elif shape == "up":  # prev = tanh(x), from = maxpool2(x[:, C/2:]): sample 2
        prev = torch.tanh(x)
        small = F.max_pool2d(x[:, c2:], 2, 2)
        h, w = small.shape[2], small.shape[3]
        z = prev.clone()
        z[:, :c2, 0:2 * h:2, 0:2 * w:2] = alpha * prev[:, :c2, 0:2 * h:2, 0:2 * w:2] + beta * small
    else:
        raise ValueError("unknown shape " + shape)
    return ACTS[cs.kv.get("act", "linear")](z)


def op_scale_channels(cs, x):
    c = x.shape[1]
    w, b = cs.param("p2.weights").reshape(c, c), cs.param("p2.biases")
    g = torch.sigmoid(F.linear(x.mean(dim=(2, 3)), w, b))
    return ACTS[cs.kv.get("act", "linear")](x * g.reshape(x.shape[0], c, 1, 1))


NEW = {
    "conv": op_conv,
    "connected": op_connected,
    "batchnorm": lambda cs, x: batchnorm(cs, x, "p0"),
    "gavgpool": lambda cs, x: x.mean(dim=(2, 3), keepdim=True),
    "activation": lambda cs, x: ACTS[cs.kv["act"]](x),
    "dropout": op_dropout,
    "softmax": op_softmax,
    "cost": op_cost,
    "crop": op_crop,
    "route": op_route,
    "shortcut": op_shortcut,
    "scale_channels": op_scale_channels,
}


def run_old(op, a, x):
    if op == "maxpool":
        size, sy, sx, padding, ceil = (int(v) for v in a[4:9])
        if ceil:
            if padding % 2:
                raise ValueError("ceil_mode needs an even padding")
            return F.max_pool2d(x, size, (sy, sx), padding // 2, ceil_mode=True)
        lo, hi = padding // 2, padding - padding // 2
        xp = F.pad(x, (lo, hi, lo, hi), value=float("-inf"))
        return F.max_pool2d(xp, size, (sy, sx), 0)
    if op == "avgpool":
        size, sy, sx, pad, ceil, count = (int(v) for v in a[4:10])
        return F.avg_pool2d(x, size, (sy, sx), pad, ceil_mode=bool(ceil),
                            count_include_pad=bool(count))
    size = int(a[4])
    alpha, beta, k = (float(v) for v in a[5:8])
    return F.local_response_norm(x, size, alpha, beta, k)


def emit(tag, t):
    print(tag, " ".join("%.9g" % v for v in t.detach().flatten().tolist()))


def run_case(cs):
    if len(cs.rows) != 2:
        raise ValueError("%s: %d untagged lines, expected 2 (input, gradient)" % (cs.op,
                                                                                 len(cs.rows)))
    n, c, h, w = (int(v) for v in cs.pos[:4])
    x = cs.rows[0].reshape(n, c, h, w).requires_grad_(True)
    cs.target = cs.rows[1]
    y = run_old(cs.op, cs.pos, x) if cs.op in OLD_OPS else NEW[cs.op](cs, x)
    if cs.loss is not None:
        (cs.loss / n).backward()
    else:
        if cs.target.numel() != y.numel():
            raise ValueError("%d gradient values for %d outputs %s" % (cs.target.numel(),
                                                                     y.numel(), tuple(y.shape)))
        y.backward(cs.target.reshape(y.shape))
    emit("y", y)
    emit("dx", x.grad)
    if cs.loss is not None:
        emit("loss", cs.loss)
    for tag, t in cs.out:
        emit(tag, t.grad if tag.startswith("d") else t)
    print("end")


def parse(lines):
    cases = []
    for line in lines:
        tok = line.split()
        if tok[0] in OLD_OPS or tok[0] in NEW_OPS:
            cases.append(Case(tok))
            continue
        if not cases:
            raise ValueError("values before the first op line")
        try:
            cases[-1].rows.append(torch.tensor([float(v) for v in tok], dtype=torch.float64))
        except ValueError:
            cases[-1].tagged[tok[0]] = torch.tensor([float(v) for v in tok[1:]],
                                                    dtype=torch.float64)
    return cases


def main():
    with open(sys.argv[1]) as f:
        lines = [line for line in f.read().split("\n") if line.strip()]
    for cs in parse(lines):
        run_case(cs)


if __name__ == "__main__":
    try:
        main()
    except (ValueError, IndexError, KeyError) as e:
        print("torch_layer.py:", e, file=sys.stderr)
        sys.exit(1)
