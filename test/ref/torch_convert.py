#!/usr/bin/python3
"""torch_convert.py [--cfgdir cfg] OUTROOT MODEL:SIDE:BATCH:SEED[:strip] ...

Torchvision models with random weights, written into cfgnet's Darknet-format .weights, and
PyTorch's forward output and input gradient on a fixed input, for test/test_torch_parity.c.
Several cases in one process (importing torch takes seconds).

MODEL is a torchvision builder (resnet18, googlenet, inception_v3, squeezenet1_1,
resnext50_32x4d, mobilenet_v2, ...) and cfg/MODEL.cfg the cfg that reproduces it layer for
layer; SEED draws the weights, the running statistics, the input and the loss vector. Written to
OUTROOT/MODEL_SIDE_BATCH_SEED[_strip]/ (all floats raw little-endian float32):
  net.cfg        the cfg with [net] batch=BATCH subdivisions=1 height=width=SIDE, without its
                 final [softmax] (the comparison is on logits), and with :strip without its
                 auxiliary heads (every layer from the trunk layer an aux head branches off,
                 exclusive, through the [route] back to it; later references renumbered). The
                 heads need the full resolution (Inception v3's 5x5 convolution a 17x17 grid;
                 GoogLeNet's connected layer a 4x4 pool) and do not take part in inference.
  net.weights    header 0.2.0 and seen 0, then per cfg layer in order: convolution = biases,
                 [BN scales, rolling mean, rolling variance], weights [out][in/groups][kh][kw];
                 connected = biases, weights [out][in] (src/net/weights.c).
  input.f32      BATCH x 3 x SIDE x SIDE, N(0, 1)
  vec.f32        BATCH x K, N(0, 1): the loss is L = sum(logits * vec)
  output.f32     BATCH x K logits, eval mode
  dinput.f32     BATCH x 3 x SIDE x SIDE, dL/dinput in eval mode (BN with its running statistics)
The model's modules are matched to the cfg's parameter layers in execution order (forward hooks
on a training-mode pass, so auxiliary heads run where they branch off; at the model's own
resolution when its heads are kept, else at SIDE), each convolution with the batch norm that runs right after it; a convolution's filters,
kernel, stride and groups and a linear layer's size are checked against the cfg's keys.

Weights: convolutions N(0, 2/fan_in), linear N(0, 9/fan_in) (so logits spread), biases and BN
shifts N(0, 0.01), BN scales U(0.5, 1.5). Running statistics: measured in training mode on 16
random inputs at SIDE (so activations stay near unit scale through a deep net), then perturbed (mean +=
0.2 std N(0,1), variance *= exp(0.3 N(0,1))) so that they matter. The reference runs in float64
on those float32 values. Exit status 77 when torch or torchvision cannot be imported (2 is argparse's usage error).
"""
import argparse
import os
import re
import struct
import sys

try:
    import torch
    import torch.nn as nn
    import torchvision.models as tvm
except ImportError:
    sys.exit(77)

NATIVE = {"inception_v3": 299}
AUX = ("aux1", "aux2", "AuxLogits")  # torchvision's attribute names of auxiliary heads


def without_aux(model):
    """Detaches the auxiliary heads (forward skips a head that is None); returns them."""
    heads = {k: getattr(model, k) for k in AUX if getattr(model, k, None) is not None}
    for k in heads:
        setattr(model, k, None)
    return heads


def build(name):
    if name == "googlenet":
        return tvm.googlenet(aux_logits=True, transform_input=False, init_weights=False)
    if name == "inception_v3":
        return tvm.inception_v3(aux_logits=True, transform_input=False, init_weights=False)
    return getattr(tvm, name)()


# ---- the cfg: sections as raw lines, with their keys ----

class Section:
    def __init__(self, name, line):
        self.name, self.lines, self.keys = name, [line], {}


def read_cfg(path):
    sections, head = [], []
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\r\n")
            text = re.split(r"(^|\s)[#;]", line.strip(), maxsplit=1)[0].strip()
            if text.startswith("["):
                sections.append(Section(text.strip("[]"), line))
            elif sections:
                sections[-1].lines.append(line)
                if "=" in text:
                    k, v = text.split("=", 1)
                    sections[-1].keys[k.strip()] = v.strip()
            else:
                head.append(line)
    return head, sections


def set_net_keys(net, values):
    out = [net.lines[0]]
    for line in net.lines[1:]:
        k = line.split("=", 1)[0].strip()
        if "=" in line and k in values:
            continue
        out.append(line)
    out[1:1] = ["%s=%s" % kv for kv in values.items()]
    net.lines = out


REF_KEYS = {"route": "layers", "shortcut": "from", "scale_channels": "from"}


def strip_aux(layers):
    """Removes each [softmax] that a [route] follows, with the layers since its branch point."""
    drop, alias = set(), {}
    for i, s in enumerate(layers):
        if s.name in ("softmax", "soft") and i + 1 < len(layers) and layers[i + 1].name == "route":
            v = int(layers[i + 1].keys["layers"])
            back = i + 1 + v if v < 0 else v
            drop.update(range(back + 1, i + 2))
            alias[i + 1] = back
    new = {}
    for i in range(len(layers)):
        if i not in drop:
            new[i] = len(new)
    kept = []
    for i, s in enumerate(layers):
        if i in drop:
            continue
        key = REF_KEYS.get(s.name)
        if key:
            refs = []
            for tok in s.keys[key].split(","):
                v = int(tok)
                t = alias.get(i + v if v < 0 else v, i + v if v < 0 else v)
                if t not in new:
                    raise ValueError("layer %d refers into an auxiliary head" % i)
                refs.append(str(new[t] - new[i]) if v < 0 else str(new[t]))
            s.lines = [l for l in s.lines if l.split("=", 1)[0].strip() != key]
            s.lines.insert(1, "%s=%s" % (key, ",".join(refs)))
        kept.append(s)
    return kept


def write_cfg(path, head, net, layers):
    with open(path, "w") as f:
        for s in [net] + layers:
            f.write("\n".join(s.lines) + "\n")


# ---- modules in execution order ----

def execution_order(model, side):
    seen, hooks = [], []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm1d)):
            hooks.append(m.register_forward_hook(lambda mod, i, o: seen.append(mod)))
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 3, side, side))
    for h in hooks:
        h.remove()
    units, i = [], 0
    while i < len(seen):
        m = seen[i]
        bn = None
        if i + 1 < len(seen) and isinstance(seen[i + 1], (nn.BatchNorm2d, nn.BatchNorm1d)):
            bn = seen[i + 1]
            i += 1
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            raise ValueError("a batch norm not after a convolution or linear layer: %s" % m)
        units.append((m, bn))
        i += 1
    return units


def randomise(model, g):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 3 / m.in_features ** 0.5)
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))


def calibrate(model, side, g):
    """Running statistics measured in training mode (cumulative), then perturbed."""
    bns = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d))]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(8, 3, side, side, generator=g))
        for m in bns:
            sd = m.running_var.sqrt()
            m.running_mean.add_(0.2 * sd * torch.randn(sd.shape, generator=g))
            m.running_var.mul_(torch.exp(0.3 * torch.randn(sd.shape, generator=g)))


# ---- matching and writing ----

def cfg_int(s, key, default):
    return int(s.keys.get(key, default))


def check_conv(s, m, bn, i):
    ky = cfg_int(s, "size_y", cfg_int(s, "size", 1))
    kx = cfg_int(s, "size_x", cfg_int(s, "size", 1))
    sy = cfg_int(s, "stride_y", cfg_int(s, "stride", 1))
    sx = cfg_int(s, "stride_x", cfg_int(s, "stride", 1))
    want = (m.out_channels, m.kernel_size[0], m.kernel_size[1], m.stride[0], m.stride[1],
            m.groups, bn is not None)
    got = (cfg_int(s, "filters", 1), ky, kx, sy, sx, cfg_int(s, "groups", 1),
           cfg_int(s, "batch_normalize", 0) == 1)
    if want != got:
        raise ValueError("cfg layer %d (line '%s'): filters,ky,kx,sy,sx,groups,bn %s, "
                         "torch module %s: %s" % (i, s.lines[0], got, m, want))


def conv_tensors(m, bn):
    if bn is None:
        bias = m.bias if m.bias is not None else torch.zeros(m.out_channels)
        return [bias, m.weight]
    if m.bias is not None:
        raise ValueError("a convolution with both a bias and a batch norm: %s" % m)
    return [bn.bias, bn.weight, bn.running_mean, bn.running_var, m.weight]


def match(layers, units):
    """Sets each parameter layer's .tensors, in .weights order."""
    k = 0
    for i, s in enumerate(layers):
        s.tensors = []
        if s.name not in ("convolutional", "conv", "connected", "conn", "batchnorm"):
            continue
        if k >= len(units):
            raise ValueError("cfg layer %d (%s): no torch module left" % (i, s.name))
        m, bn = units[k]
        k += 1
        if s.name in ("convolutional", "conv"):
            if not isinstance(m, nn.Conv2d):
                raise ValueError("cfg layer %d is a convolution, torch has %s" % (i, m))
            check_conv(s, m, bn, i)
            s.tensors = conv_tensors(m, bn)
        elif s.name in ("connected", "conn"):
            if not isinstance(m, nn.Linear) or bn is not None or \
                    cfg_int(s, "output", 1) != m.out_features or \
                    cfg_int(s, "batch_normalize", 0):
                raise ValueError("cfg layer %d (connected) does not match %s" % (i, m))
            s.tensors = [m.bias, m.weight]
        else:
            raise ValueError("cfg layer %d: a standalone [batchnorm]; not supported here" % i)
    if k != len(units):
        raise ValueError("%d torch modules left over after the cfg" % (len(units) - k))


def write_floats(path, tensors):
    with open(path, "wb") as f:
        for t in tensors:
            f.write(t.detach().to(torch.float32).contiguous().numpy().tobytes())


def check_eps(model, net):
    eps = float(net.keys.get("bn_eps", "1e-5"))
    has_bn = any(isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) for m in model.modules())
    if has_bn and net.keys.get("bn_style") != "torch":
        raise ValueError("the cfg's [net] has no bn_style=torch")
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and abs(m.eps - eps) > 1e-12:
            raise ValueError("torch batch norm eps %g, cfg bn_eps %g" % (m.eps, eps))


def convert(name, cfg, outdir, side, batch, seed, strip):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = build(name)
    head, sections = read_cfg(cfg)
    net, layers = sections[0], sections[1:]
    check_eps(model, net)
    if layers[-1].name in ("softmax", "soft"):
        layers = layers[:-1]
    if strip:
        layers = strip_aux(layers)
        without_aux(model)
    # Auxiliary heads run in training-mode passes only, and only at (near) the model's own size.
    has_aux = any(getattr(model, k, None) is not None for k in AUX)
    units = execution_order(model, NATIVE.get(name, 224) if has_aux else side)
    randomise(model, g)
    calibrate(model, side, g)
    match(layers, units)
    set_net_keys(net, {"batch": batch, "subdivisions": 1, "height": side, "width": side})
    os.makedirs(outdir, exist_ok=True)
    write_cfg(os.path.join(outdir, "net.cfg"), head, net, layers)
    tensors = [t for s in layers for t in s.tensors]
    with open(os.path.join(outdir, "net.weights"), "wb") as f:
        f.write(struct.pack("<iiiQ", 0, 2, 0, 0))
        for t in tensors:
            f.write(t.detach().to(torch.float32).contiguous().numpy().tobytes())
    # The float64 reference on exactly the float32 values written.
    model = model.to(torch.float32).double().eval()
    x = torch.randn(batch, 3, side, side, generator=g).to(torch.float32)
    xd = x.double().requires_grad_(True)
    y = model(xd)
    vec = torch.randn(y.shape, generator=g).to(torch.float32)
    (y * vec.double()).sum().backward()
    for what, t in (("input", x), ("vec", vec), ("output", y), ("dinput", xd.grad)):
        write_floats(os.path.join(outdir, what + ".f32"), [t])
    print("%s: %d parameter floats, logits %s, max |logit| %.4g" %
          (name, sum(t.numel() for t in tensors), tuple(y.shape), y.abs().max().item()))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cfgdir", default="cfg")
    ap.add_argument("outroot")
    ap.add_argument("cases", nargs="+", help="MODEL:SIDE:BATCH:SEED[:strip]")
    a = ap.parse_args()
    for case in a.cases:
        f = case.split(":")
        if len(f) not in (4, 5) or (len(f) == 5 and f[4] != "strip"):
            raise ValueError("case '%s': expected MODEL:SIDE:BATCH:SEED[:strip]" % case)
        side, batch, seed = (int(v) for v in f[1:4])
        convert(f[0], os.path.join(a.cfgdir, f[0] + ".cfg"),
                os.path.join(a.outroot, case.replace(":", "_")), side, batch, seed, len(f) == 5)


if __name__ == "__main__":
    try:
        main()
    except (ValueError, KeyError) as e:
        print("torch_convert.py:", e, file=sys.stderr)
        sys.exit(1)
