"""The Net class: one libcfgnet handle, numpy arrays in and out.

Arrays: images are float32 NCHW (n, c, h, w) with values as the network was trained on (pixel/255
for images); a single image may be given as (c, h, w). Pixels for forward_u8 are uint8 (n, h, w, c)
(layout "hwc", what image decoders give) or (n, c, h, w) (layout "chw"). Outputs are float32 arrays
the caller owns. Every failure the library reports raises CfgnetError with the library's message.

Thread safety: as the C library's: one Net must not be used from two threads at once.
"""
import ctypes

import numpy as np

from . import _lib

_L = None


def lib():
    """The loaded shared library (loaded on first use)."""
    global _L
    if _L is None:
        _L = _lib.load()
    return _L


class CfgnetError(RuntimeError):
    """A call into libcfgnet failed; str(e) is the library's message."""


def version():
    """The linked library's version, "MAJOR.MINOR.PATCH"."""
    return lib().cfgnet_version().decode()


def _fptr(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def _bytes(s):
    return None if s is None else str(s).encode()


def _images(x, dtype):
    """x as a C-contiguous 4-D array of dtype (a 3-D array is one image)."""
    a = np.ascontiguousarray(x, dtype=dtype)
    if a.ndim == 3:
        a = a[np.newaxis]
    if a.ndim != 4:
        raise CfgnetError("expected images as a 4-D array (n, c, h, w) or one 3-D image, got "
                          "shape %s" % (a.shape,))
    return a


class Net:
    """A network built from a cfg file (and optional .weights).

    batch: images per forward pass, 0 for the cfg's batch/subdivisions. train: also allocate what
    training needs (train_step, freeze). share_outputs (inference only; CFGNET_SHARE_OUTPUTS):
    layer outputs share memory by liveness, so a pass needs a fraction of the activation memory
    and auxiliary heads are not run, but layer_output then reads the last layer (-1) only."""

    def __init__(self, cfg, weights=None, batch=0, train=False, _text=None, _name=None,
                 share_outputs=False):
        self._h = lib().cfgnet_create()
        if not self._h:
            raise MemoryError("cfgnet_create: out of memory")
        flags = (_lib.TRAIN if train else 0) | (_lib.SHARE_OUTPUTS if share_outputs else 0)
        if _text is not None:
            rc = lib().cfgnet_load_string(self._h, _bytes(_text), _bytes(_name), _bytes(weights),
                                          batch, flags)
        else:
            rc = lib().cfgnet_load(self._h, _bytes(cfg), _bytes(weights), batch, flags)
        self._check(rc)

    @classmethod
    def from_string(cls, text, weights=None, batch=0, train=False, name=None, share_outputs=False):
        """A network from cfg text in memory; name is what error messages call it."""
        return cls(None, weights, batch, train, _text=text, _name=name,
                   share_outputs=share_outputs)

    # -- plumbing ---------------------------------------------------------------------------------
    def _check(self, rc):
        if rc < 0:
            raise CfgnetError(lib().cfgnet_error(self._h).decode(errors="replace"))
        return rc

    def close(self):
        """Frees the handle; later calls raise CfgnetError (the library's NULL-handle message)."""
        if getattr(self, "_h", None) and _L is not None:
            _L.cfgnet_free(self._h)
        self._h = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- shapes -----------------------------------------------------------------------------------
    @property
    def batch(self):
        """Images per forward pass; setting it rebuilds the network, keeping its parameters."""
        return self._check(lib().cfgnet_batch(self._h))

    @batch.setter
    def batch(self, n):
        self._check(lib().cfgnet_set_batch(self._h, int(n)))

    @property
    def input_shape(self):
        """(channels, height, width) of one input image."""
        c, h, w = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        self._check(lib().cfgnet_input_shape(self._h, c, h, w))
        return (c.value, h.value, w.value)

    @property
    def outputs(self):
        """Values per image out of the last layer."""
        return self._check(lib().cfgnet_outputs(self._h))

    def __len__(self):
        return self._check(lib().cfgnet_layer_count(self._h))

    def layer_shape(self, layer):
        """(c, h, w) of a layer's output; negative indices count from the end."""
        c, h, w = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        self._check(lib().cfgnet_layer_shape(self._h, int(layer), c, h, w))
        return (c.value, h.value, w.value)

    def layer_type(self, layer):
        """The layer's section name, e.g. "convolutional"."""
        t = ctypes.c_char_p()
        self._check(lib().cfgnet_layer_type(self._h, int(layer), ctypes.byref(t)))
        return t.value.decode()

    @property
    def images_seen(self):
        seen = ctypes.c_ulonglong()
        self._check(lib().cfgnet_images_seen(self._h, ctypes.byref(seen)))
        return seen.value

    # -- inference --------------------------------------------------------------------------------
    def _out(self, n):
        return np.empty((n, self.outputs), dtype=np.float32)

    def forward(self, x):
        """One pass over at most `batch` images; returns (n, outputs) float32."""
        a = _images(x, np.float32)
        n, c, h, w = a.shape
        out = self._out(n)
        self._check(lib().cfgnet_forward(self._h, _fptr(a), n, c, h, w, _fptr(out), out.size))
        return out

    def predict(self, x):
        """forward over any number of images, `batch` at a time; returns (n, outputs)."""
        a = _images(x, np.float32)
        b = self.batch
        return np.concatenate([self.forward(a[i:i + b]) for i in range(0, len(a), b)]) \
            if len(a) else self._out(0)

    def forward_u8(self, pixels, layout="hwc"):
        """forward on uint8 pixels, (n, h, w, c) for layout "hwc" or (n, c, h, w) for "chw";
        each byte v becomes v / 255 as for image files."""
        a = _images(pixels, np.uint8)
        if layout == "hwc":
            n, h, w, c = a.shape
            code = _lib.LAYOUT_HWC
        elif layout == "chw":
            n, c, h, w = a.shape
            code = _lib.LAYOUT_CHW
        else:
            raise CfgnetError('layout %r: must be "hwc" or "chw"' % (layout,))
        out = self._out(n)
        self._check(lib().cfgnet_forward_u8(self._h, a.ctypes.data_as(ctypes.POINTER(
            ctypes.c_ubyte)), n, c, h, w, code, _fptr(out), out.size))
        return out

    def predict_files(self, paths):
        """Image files (decoded, converted and resized as `net classifier predict` does), `batch`
        at a time; returns (n, outputs)."""
        paths = [str(p) for p in paths]
        b, parts = self.batch, []
        for i in range(0, len(paths), b):
            chunk = paths[i:i + b]
            arr = (ctypes.c_char_p * len(chunk))(*[p.encode() for p in chunk])
            out = self._out(len(chunk))
            self._check(lib().cfgnet_forward_files(self._h, arr, len(chunk), _fptr(out),
                                                   out.size))
            parts.append(out)
        return np.concatenate(parts) if parts else self._out(0)

    def layer_output(self, layer):
        """A layer's output for the images of the last pass: (n, c, h, w) float32."""
        c, h, w = self.layer_shape(layer)
        b = self.batch
        out = np.empty((b, c, h, w), dtype=np.float32)
        n = self._check(lib().cfgnet_layer_output(self._h, int(layer), _fptr(out), out.size))
        return out[:n].copy()

    def top_k(self, k=5, image=0):
        """The k largest outputs of one image of the last pass: (indices, values), best first."""
        idx = np.empty(max(int(k), 1), dtype=np.intc)
        val = np.empty(max(int(k), 1), dtype=np.float32)
        got = self._check(lib().cfgnet_top_k(self._h, int(image), int(k),
                                             idx.ctypes.data_as(ctypes.POINTER(ctypes.c_int)),
                                             _fptr(val)))
        return idx[:got].astype(np.int64), val[:got]

    # -- training and weights ---------------------------------------------------------------------
    def train_step(self, x, labels=None, truth=None, lr=None):
        """One optimiser step on x (a multiple of `batch` images) against integer labels (n,) or
        targets truth (n, outputs); lr None takes the [net] policy's rate. Returns the mean loss."""
        a = _images(x, np.float32)
        n, c, h, w = a.shape
        rate = _lib.LR_FROM_CFG if lr is None else float(lr)
        loss = ctypes.c_float()
        if (labels is None) == (truth is None):
            raise CfgnetError("train_step: give exactly one of labels= and truth=")
        if labels is not None:
            lab = np.ascontiguousarray(labels, dtype=np.intc).reshape(-1)
            if lab.size != n:
                raise CfgnetError("train_step: %d labels for %d images" % (lab.size, n))
            rc = lib().cfgnet_train_labels(self._h, _fptr(a), n, c, h, w,
                                           lab.ctypes.data_as(ctypes.POINTER(ctypes.c_int)), rate,
                                           ctypes.byref(loss))
        else:
            t = np.ascontiguousarray(truth, dtype=np.float32)
            rc = lib().cfgnet_train_truth(self._h, _fptr(a), n, c, h, w, _fptr(t), t.size, rate,
                                          ctypes.byref(loss))
        self._check(rc)
        return float(loss.value)

    def freeze(self, layers):
        """Freezes layers 0..layers-1 of a train=True network on top of the cfg's freeze=1 keys,
        as `net classifier train -freeze N`: their parameters are not updated, they run in
        inference mode within a training step (dropout off, batch norm on its rolling
        statistics), and backward stops at the lowest trainable layer. Freezing adds up (a
        smaller count later unfreezes nothing; build a new Net to start over) and lasts through
        a change of batch. Raises CfgnetError, changing nothing, when no layer with parameters
        would be left to train."""
        self._check(lib().cfgnet_freeze(self._h, int(layers)))

    def save_weights(self, path):
        self._check(lib().cfgnet_save_weights(self._h, _bytes(path)))

    def load_weights(self, path):
        self._check(lib().cfgnet_load_weights(self._h, _bytes(path)))
