"""Leak: growth no Python object accounts for (a C refcount leak on untracked bytes)."""

import ctypes

EXPECT = "leak"
TYPES = ()
HOLDER = "reference-count leak in C code"

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


def run():
    _incref(bytes(200))
