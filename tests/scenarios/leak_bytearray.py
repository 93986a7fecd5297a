"""Leak: an audit buffer that only grows."""

EXPECT = "leak"
TYPES = ("bytes",)
HOLDER = "_AUDIT"

_AUDIT = bytearray()


def run():
    _AUDIT.extend(b"GET /index.html 200\n")
