"""The ``leakscope`` command line (also ``python -m leakscope``): :func:`main`."""

from __future__ import annotations

from leakscope.cli.main import main

__all__ = ["main"]
