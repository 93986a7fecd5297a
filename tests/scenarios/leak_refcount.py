"""Leak: a C-level reference-count leak (one Py_IncRef too many) on a tracked object."""

import ctypes

EXPECT = "leak"
TYPES = ("leak_refcount.Packet",)
HOLDER = "reference-count leak in C code"

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


class Packet:
    def __init__(self):
        self.payload = [0] * 4


def run():
    _incref(Packet())
