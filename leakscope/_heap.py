"""Low-level, host-safe readers of interpreter and process state.

Nothing here calls user code: type names are read through ``type``'s own slot
descriptors (a metaclass cannot intercept them), objects are classified with
``type(obj)`` rather than ``obj.__class__``, and nothing keeps a reference to a
user object after a function returns.
"""

from __future__ import annotations

import gc
import os
import sys
import sysconfig
from collections import Counter
from collections.abc import Iterable
from typing import Any

__all__ = ["PYTHON_VERSION", "census", "object_type_name", "rss_bytes", "safe_repr", "type_name"]

_QUALNAME = type.__dict__["__qualname__"]
_MODULE = type.__dict__["__module__"]


def type_name(tp: type) -> str:
    """The qualified name of a type: ``module.Qualname``; builtins bare (``dict``).

    >>> type_name(dict), type_name(Counter)
    ('dict', 'collections.Counter')
    """
    try:
        qualname = _QUALNAME.__get__(tp)
    except Exception:
        qualname = None
    if not isinstance(qualname, str):
        qualname = "<unnamed type>"
    try:
        module = _MODULE.__get__(tp)
    except Exception:
        module = None
    if not isinstance(module, str) or module == "builtins":
        return qualname
    return f"{module}.{qualname}"


def object_type_name(obj: object) -> str:
    """The qualified name of ``type(obj)``, never calling ``obj.__class__``."""
    return type_name(type(obj))


def census(objects: Iterable[object]) -> dict[str, int]:
    """Count ``objects`` by qualified type name.

    Counting runs over type objects at C speed; names are computed once per
    distinct type.  Distinct types that share a name (two classes ``app.Node``
    defined twice) are added together.
    """
    by_type = Counter(map(type, objects))
    counts: dict[str, int] = {}
    for tp, n in by_type.items():
        name = type_name(tp)
        counts[name] = counts.get(name, 0) + n
    del by_type
    return counts


def tracked_census() -> tuple[dict[str, int], int]:
    """Per-type counts of every object the cyclic collector tracks, and their total."""
    objects = gc.get_objects()
    try:
        return census(objects), len(objects)
    finally:
        del objects


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int | None:
    """The process's current resident set size in bytes, or ``None`` where unreadable.

    Read from ``/proc/self/statm`` on Linux.  Other platforms report ``None``
    rather than a peak value dressed up as a current one.
    """
    try:
        with open("/proc/self/statm", "rb") as f:
            fields = f.read().split()
        return int(fields[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


def safe_repr(obj: Any, limit: int = 80) -> str:
    """``repr(obj)`` cut to ``limit`` characters; never raises.

    Used only where the caller asked to see values (``show_values=True``).
    """
    try:
        text = repr(obj)
        if not isinstance(text, str):
            raise TypeError
    except Exception:
        return f"<{object_type_name(obj)} object (repr failed)>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _python_version() -> str:
    version = ".".join(map(str, sys.version_info[:3]))
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        version += "t"
    return version


PYTHON_VERSION = _python_version()
"""``3.12.1``, plus ``t`` for a free-threaded build (``3.13.0t``)."""
