"""Finding and declaring the shared library libcfgnet.so.1 (ctypes; the C API is include/cfgnet.h).

The library is looked up, in order: the path in the environment variable CFGNET_LIBRARY (a file,
e.g. build/default/libcfgnet.so.1 of a source tree), then its soname libcfgnet.so.1 through the
dynamic loader (LD_LIBRARY_PATH, then ldconfig's cache: `make install` runs ldconfig), then
ctypes.util.find_library. Its major version must be the one this package was written for, and
its minor version at least MINOR (the calls declared below: cfgnet_freeze and
CFGNET_SHARE_OUTPUTS came in 1.1).
"""
import ctypes
import ctypes.util
import os

MAJOR = 1
MINOR = 1
SONAME = "libcfgnet.so.%d" % MAJOR

c_int, c_uint, c_float, c_size_t, c_char_p = (ctypes.c_int, ctypes.c_uint, ctypes.c_float,
                                              ctypes.c_size_t, ctypes.c_char_p)
P = ctypes.POINTER
c_void_p = ctypes.c_void_p

# name: (restype, argtypes). The handle is passed as c_void_p so that None becomes NULL.
SIGNATURES = {
    "cfgnet_version": (c_char_p, []),
    "cfgnet_version_number": (c_int, []),
    "cfgnet_create": (c_void_p, []),
    "cfgnet_free": (None, [c_void_p]),
    "cfgnet_error": (c_char_p, [c_void_p]),
    "cfgnet_load": (c_int, [c_void_p, c_char_p, c_char_p, c_int, c_uint]),
    "cfgnet_load_string": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_int, c_uint]),
    "cfgnet_load_weights": (c_int, [c_void_p, c_char_p]),
    "cfgnet_save_weights": (c_int, [c_void_p, c_char_p]),
    "cfgnet_batch": (c_int, [c_void_p]),
    "cfgnet_set_batch": (c_int, [c_void_p, c_int]),
    "cfgnet_input_shape": (c_int, [c_void_p, P(c_int), P(c_int), P(c_int)]),
    "cfgnet_outputs": (c_int, [c_void_p]),
    "cfgnet_layer_count": (c_int, [c_void_p]),
    "cfgnet_layer_shape": (c_int, [c_void_p, c_int, P(c_int), P(c_int), P(c_int)]),
    "cfgnet_layer_type": (c_int, [c_void_p, c_int, P(c_char_p)]),
    "cfgnet_images_seen": (c_int, [c_void_p, P(ctypes.c_ulonglong)]),
    "cfgnet_forward": (c_int, [c_void_p, P(c_float), c_int, c_int, c_int, c_int, P(c_float),
                               c_size_t]),
    "cfgnet_forward_u8": (c_int, [c_void_p, P(ctypes.c_ubyte), c_int, c_int, c_int, c_int, c_int,
                                  P(c_float), c_size_t]),
    "cfgnet_forward_files": (c_int, [c_void_p, P(c_char_p), c_int, P(c_float), c_size_t]),
    "cfgnet_layer_output": (c_int, [c_void_p, c_int, P(c_float), c_size_t]),
    "cfgnet_top_k": (c_int, [c_void_p, c_int, c_int, P(c_int), P(c_float)]),
    "cfgnet_train_labels": (c_int, [c_void_p, P(c_float), c_int, c_int, c_int, c_int, P(c_int),
                                    c_float, P(c_float)]),
    "cfgnet_train_truth": (c_int, [c_void_p, P(c_float), c_int, c_int, c_int, c_int, P(c_float),
                                   c_size_t, c_float, P(c_float)]),
    "cfgnet_freeze": (c_int, [c_void_p, c_int]),
}

# Constants of include/cfgnet.h.
TRAIN = 1
SHARE_OUTPUTS = 2
LAYOUT_HWC = 0
LAYOUT_CHW = 1
LR_FROM_CFG = -1.0


def _candidates():
    path = os.environ.get("CFGNET_LIBRARY")
    if path:
        return [path]
    found = ctypes.util.find_library("cfgnet")
    return [SONAME] + ([found] if found and found != SONAME else [])


def load():
    """Loads and declares the library; raises OSError saying where it looked."""
    # libgomp's threads spin for 300,000 polls while they wait unless told otherwise, which cost
    # cfgnet a factor of 3-4 on a shared 2-core machine, while sleeping at once costs a wake-up
    # at every barrier: a short spin does best (src/cli/main.c, prefer_short_spin). libgomp reads
    # the setting when it is first loaded, so it takes effect only if nothing loaded it before us.
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", "5000")
    errors = []
    for name in _candidates():
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError as e:
            errors.append(str(e))
    else:
        raise OSError("cannot load libcfgnet (%s); install it (make install) or set "
                      "CFGNET_LIBRARY to the path of libcfgnet.so.%d" % ("; ".join(errors), MAJOR))
    lib.cfgnet_version_number.restype = c_int
    lib.cfgnet_version.restype = c_char_p
    number = lib.cfgnet_version_number()  # checked first: an older library lacks later calls
    if number // 10000 != MAJOR or number % 10000 < MINOR * 100:
        raise OSError("%s is libcfgnet %s, but this package needs %d.%d or a later %d.x"
                      % (name, lib.cfgnet_version().decode(), MAJOR, MINOR, MAJOR))
    for fn, (res, args) in SIGNATURES.items():
        f = getattr(lib, fn)
        f.restype = res
        f.argtypes = args
    return lib
