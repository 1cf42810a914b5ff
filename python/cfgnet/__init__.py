"""cfgnet: Darknet-style neural networks described by .cfg files, from Python.

A thin ctypes binding of the C library libcfgnet (include/cfgnet.h): numpy arrays in and out, and
CfgnetError carrying the library's message on every failure.

    import numpy as np, cfgnet
    net = cfgnet.Net("cfg/lenet5.cfg", "backup/lenet5.weights", batch=1)
    probs = net.predict_files(["image.png"])[0]
    idx, p = net.top_k(2)

The library is found through CFGNET_LIBRARY (a path), else the dynamic loader (libcfgnet.so.1).
"""
from .net import CfgnetError, Net, lib, version

__all__ = ["CfgnetError", "Net", "lib", "version"]
__version__ = "1.1.0"
