"""Tests of the cfgnet Python package against the shared library (test/test_python.sh runs them
with CFGNET_LIBRARY naming the build's library and CFGNET_NET its `net` command): loading, numpy
batches, pixels, layer outputs, a training step whose loss falls, the same probabilities as
`net classifier predict` on the same image, and every bad input raising CfgnetError with the
library's message. Run from the top of the source tree (cfg/lenet5.cfg is read from there)."""
import os
import re
import subprocess

import numpy as np
import pytest

import cfgnet

BARS_CFG = """[net]
batch=24
height=12
width=12
channels=1
learning_rate=0.05
momentum=0.9
decay=0.0005
seed=3
[convolutional]
filters=8
size=3
pad=1
activation=relu
[maxpool]
size=2
stride=2
[connected]
output=16
activation=relu
[connected]
output=3
activation=linear
[softmax]
"""
NAMES = ["horizontal", "vertical", "cross"]


def bars(n, rng):
    """n 12x12 images with a horizontal bar (0), a vertical bar (1) or both (2), over noise."""
    labels = rng.integers(0, 3, n)
    x = (rng.random((n, 1, 12, 12)) * 0.3).astype(np.float32)
    for i, cls in enumerate(labels):
        r, c = rng.integers(1, 11, 2)
        if cls != 1:
            x[i, 0, r, :] = 1
        if cls != 0:
            x[i, 0, :, c] = 1
    return x, labels


def trained_bars(steps=60):
    net = cfgnet.Net.from_string(BARS_CFG, name="bars.cfg", train=True)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        x, y = bars(24, rng)
        losses.append(net.train_step(x, labels=y))
    return net, losses


def test_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+", cfgnet.version())
    assert cfgnet.version().split(".")[0] == "1"


def test_load_file_shapes():
    net = cfgnet.Net("cfg/lenet5.cfg", batch=3)
    assert net.input_shape == (1, 28, 28)
    assert net.outputs == 10
    assert net.batch == 3
    assert net.layer_type(0) == "convolutional"
    assert net.layer_type(-1) == "softmax"
    assert net.layer_shape(0) == (6, 28, 28)
    assert len(net) >= 2


def test_predict_numpy_batch():
    net = cfgnet.Net("cfg/lenet5.cfg", batch=4)
    x = np.random.default_rng(1).random((10, 1, 28, 28), dtype=np.float32)
    p = net.predict(x)  # 3 passes: 4 + 4 + 2 images
    assert p.shape == (10, 10) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)
    one = cfgnet.Net("cfg/lenet5.cfg", batch=1)
    for i in range(10):
        np.testing.assert_allclose(one.forward(x[i]), p[i:i + 1], rtol=1e-5, atol=1e-7)
    idx, val = one.top_k(3)
    assert list(idx) == list(np.argsort(-p[9], kind="stable")[:3])
    np.testing.assert_allclose(val, p[9][idx], rtol=1e-5)


def test_pixels_and_layer_output():
    net = cfgnet.Net("cfg/lenet5.cfg", batch=2)
    px = np.random.default_rng(2).integers(0, 256, (2, 28, 28, 1), dtype=np.uint8)
    a = net.forward_u8(px)
    b = net.forward(px.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(net.forward_u8(px.transpose(0, 3, 1, 2), layout="chw"), a)
    last = net.layer_output(-1)
    assert last.shape == (2, 10, 1, 1)
    np.testing.assert_array_equal(last.reshape(2, 10), a)
    assert net.layer_output(0).shape == (2, 6, 28, 28)


def test_training_loss_falls():
    net, losses = trained_bars()
    assert losses[0] > 0.9  # about ln 3 at the start
    assert np.mean(losses[-5:]) < 0.2 * losses[0]
    assert net.images_seen == 60 * 24
    x, y = bars(24, np.random.default_rng(99))
    assert (net.forward(x).argmax(axis=1) == y).mean() >= 0.9


def test_train_truth_equals_labels():
    a = cfgnet.Net.from_string(BARS_CFG, train=True)
    b = cfgnet.Net.from_string(BARS_CFG, train=True)
    x, y = bars(24, np.random.default_rng(5))
    la = a.train_step(x, labels=y, lr=0.05)
    lb = b.train_step(x, truth=np.eye(3, dtype=np.float32)[y], lr=0.05)
    assert la == lb
    np.testing.assert_array_equal(a.forward(x), b.forward(x))


def test_same_as_net_command(tmp_path):
    exe = os.environ.get("CFGNET_NET")
    if not exe or not os.access(exe, os.X_OK):
        pytest.skip("CFGNET_NET does not name the net command (test/run.sh sets it)")
    net, _ = trained_bars(40)
    cfg, weights = tmp_path / "bars.cfg", tmp_path / "bars.weights"
    cfg.write_text(BARS_CFG)
    net.save_weights(weights)
    (tmp_path / "bars.labels").write_text("\n".join(NAMES) + "\n")
    data = tmp_path / "bars.data"
    data.write_text("classes=3\nlabels=%s\ntop=3\n" % (tmp_path / "bars.labels"))
    img = tmp_path / "h.pgm"  # a horizontal bar at row 5 over a faint gradient
    px = np.array([[20 + (r * 12 + c) % 40 for c in range(12)] for r in range(12)], np.uint8)
    px[5, :] = 255
    img.write_bytes(b"P5\n12 12\n255\n" + px.tobytes())
    run = subprocess.run([exe, "classifier", "predict", str(data), str(cfg), str(weights),
                          str(img)], capture_output=True, text=True, check=True)
    printed = re.findall(r"^\s*([0-9.]+)%: (\S+)$", run.stdout, re.M)
    assert len(printed) == 3, run.stdout
    probs = cfgnet.Net(str(cfg), str(weights), batch=1).predict_files([img])[0]
    order = np.argsort(-probs, kind="stable")
    assert [name for _, name in printed] == [NAMES[i] for i in order]
    for (pct, name), i in zip(printed, order):
        assert abs(float(pct) - 100 * float(probs[i])) <= 0.005 + 1e-4, (pct, probs[i])
    assert printed[0][1] == "horizontal"


def message(excinfo):
    return str(excinfo.value)


def test_wrong_shape():
    net = cfgnet.Net("cfg/lenet5.cfg", batch=2)
    with pytest.raises(cfgnet.CfgnetError) as e:
        net.forward(np.zeros((1, 3, 32, 32), np.float32))
    assert "the images are 3x32x32 (channels x height x width), but the network takes 1x28x28" \
        in message(e)
    with pytest.raises(cfgnet.CfgnetError, match="3 images, but a pass takes 1 to 2"):
        net.forward(np.zeros((3, 1, 28, 28), np.float32))
    with pytest.raises(cfgnet.CfgnetError, match="4-D array"):
        net.forward(np.zeros((28, 28), np.float32))


def test_layer_out_of_range():
    net = cfgnet.Net("cfg/lenet5.cfg", batch=1)
    n = len(net)
    net.forward(np.zeros((1, 1, 28, 28), np.float32))
    with pytest.raises(cfgnet.CfgnetError, match="layer %d is out of range: the network has %d "
                                                 "layers" % (n, n)):
        net.layer_output(n)
    with pytest.raises(cfgnet.CfgnetError, match="out of range"):
        net.layer_type(-n - 1)


def test_bad_cfg_string():
    with pytest.raises(cfgnet.CfgnetError) as e:
        cfgnet.Net.from_string("[net]\nheight=1\nwidth=2\nchannels=1\n[connected]\noutput=2\n"
                               "activation=lekay\n", name="bad.cfg")
    assert "bad.cfg:7: [connected] activation=lekay: unknown value (did you mean 'leaky'?)" \
        in message(e)
    with pytest.raises(cfgnet.CfgnetError, match="no-such.cfg"):
        cfgnet.Net("no-such.cfg")


def test_closed_handle():
    net = cfgnet.Net("cfg/lenet5.cfg", batch=1)
    net.close()
    with pytest.raises(cfgnet.CfgnetError, match="NULL"):
        net.outputs


def test_bad_training_input():
    net = cfgnet.Net.from_string(BARS_CFG, train=True, batch=8)
    x, y = bars(12, np.random.default_rng(0))
    with pytest.raises(cfgnet.CfgnetError, match="12 images is not a positive multiple of the "
                                                 "batch size 8"):
        net.train_step(x, labels=y)
    y[3] = 7
    with pytest.raises(cfgnet.CfgnetError, match="label 7 of image 3 is out of range"):
        net.train_step(x[:8], labels=y[:8])
    with pytest.raises(cfgnet.CfgnetError, match="loaded for inference"):
        cfgnet.Net.from_string(BARS_CFG).train_step(x[:8], labels=y[:8] % 3)
    assert net.images_seen == 0


def test_share_outputs():
    x = np.random.default_rng(3).random((3, 1, 28, 28), dtype=np.float32)
    kept = cfgnet.Net("cfg/lenet5.cfg", batch=3)
    shared = cfgnet.Net("cfg/lenet5.cfg", batch=3, share_outputs=True)
    np.testing.assert_array_equal(shared.forward(x), kept.forward(x))
    np.testing.assert_array_equal(shared.layer_output(-1), kept.layer_output(-1))
    assert kept.layer_output(0).shape == (3, 6, 28, 28)
    only_last = "loaded with CFGNET_SHARE_OUTPUTS, so only the last layer's output"
    with pytest.raises(cfgnet.CfgnetError, match=only_last):
        shared.layer_output(0)
    shared.batch = 2  # a rebuild keeps the flag
    np.testing.assert_array_equal(shared.forward(x[:2]), kept.forward(x[:2]))
    with pytest.raises(cfgnet.CfgnetError, match=only_last):
        shared.layer_output(0)
    small = cfgnet.Net.from_string(BARS_CFG, share_outputs=True)
    assert small.forward(bars(2, np.random.default_rng(4))[0]).shape == (2, 3)
    with pytest.raises(cfgnet.CfgnetError, match="CFGNET_SHARE_OUTPUTS is for inference"):
        cfgnet.Net.from_string(BARS_CFG, train=True, share_outputs=True)


def test_freeze():
    net = cfgnet.Net.from_string(BARS_CFG, train=True)
    rng = np.random.default_rng(6)
    x, _ = bars(24, rng)
    net.forward(x)
    conv, fc = net.layer_output(0), net.layer_output(2)
    net.freeze(1)  # the convolution: its output stays, the classifier's moves
    for _ in range(5):
        xs, ys = bars(24, rng)
        net.train_step(xs, labels=ys)
    net.forward(x)
    np.testing.assert_array_equal(net.layer_output(0), conv)
    assert not np.array_equal(net.layer_output(2), fc)
    net.batch = 8  # freezing lasts through a rebuild
    xb, yb = bars(8, rng)
    net.train_step(xb, labels=yb)
    net.forward(x[:8])
    np.testing.assert_array_equal(net.layer_output(0), conv[:8])
    with pytest.raises(cfgnet.CfgnetError, match="every layer with parameters is frozen"):
        net.freeze(len(net))
    fc = net.layer_output(2)
    net.train_step(xb, labels=yb)  # the failed call changed nothing: the classifier trains
    net.forward(x[:8])
    assert not np.array_equal(net.layer_output(2), fc)
    with pytest.raises(cfgnet.CfgnetError, match="must be 0 to %d" % len(net)):
        net.freeze(-1)
    with pytest.raises(cfgnet.CfgnetError, match="loaded for inference; freezing is for handles "
                                                 "loaded with CFGNET_TRAIN"):
        cfgnet.Net.from_string(BARS_CFG).freeze(1)
