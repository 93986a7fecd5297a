"""Low-level, host-safe readers of interpreter and process state.

Nothing here calls user code: type names are read through ``type``'s own slot
descriptors (a metaclass cannot intercept them), objects are classified with
``type(obj)`` rather than ``obj.__class__``, and nothing keeps a reference to a
user object after a function returns.
"""

from __future__ import annotations

import collections
import gc
import os
import sys
import sysconfig
import types
import weakref
from collections.abc import Iterable, Sequence
from itertools import compress
from typing import Any

__all__ = [
    "FUNC_DEFAULTS",
    "MODULE_DICT",
    "PYTHON_VERSION",
    "TYPE_DICT",
    "TYPE_MODULE",
    "TYPE_MRO",
    "SampleRef",
    "census",
    "object_type_name",
    "rss_bytes",
    "safe_repr",
    "type_name",
]

_QUALNAME = type.__dict__["__qualname__"]
# The slot descriptors themselves: reading through them never runs user code (a module
# subclass or a metaclass cannot intercept them).
MODULE_DICT: Any = vars(types.ModuleType)["__dict__"]
TYPE_DICT: Any = vars(type)["__dict__"]
TYPE_MODULE: Any = vars(type)["__module__"]
TYPE_MRO: Any = vars(type)["__mro__"]
FUNC_DEFAULTS: Any = vars(types.FunctionType)["__defaults__"]


class SampleRef(weakref.ref):  # type: ignore[type-arg]
    """leakscope's own weak reference to a sampled object, with the sample's number and a name.

    Being a leakscope type, it is left out of every census (see :func:`is_own_name`).
    """

    __slots__ = ("name", "sample")
    name: str
    sample: int


def type_name(tp: type) -> str:
    """The qualified name of a type: ``module.Qualname``; builtins bare (``dict``).

    >>> from collections import Counter
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
        module = TYPE_MODULE.__get__(tp)
    except Exception:
        module = None
    if not isinstance(module, str) or module == "builtins":
        return qualname
    return f"{module}.{qualname}"


def object_type_name(obj: object) -> str:
    """The qualified name of ``type(obj)``, never calling ``obj.__class__``."""
    return type_name(type(obj))


def _count_types(objects: Iterable[object]) -> dict[type, int]:
    """``{type: count}`` at C speed, without ``Counter``'s ``isinstance(x, Mapping)`` check:
    that check fills the ABC caches (sets of weakrefs) the first time it runs, which a
    census taken afterwards would report as growth."""
    counts: dict[type, int] = {}
    _count_elements(counts, map(type, objects))
    return counts


def _count_elements_fallback(mapping: dict[Any, int], iterable: Iterable[Any]) -> None:
    for item in iterable:
        mapping[item] = mapping.get(item, 0) + 1


_count_elements = getattr(collections, "_count_elements", _count_elements_fallback)


def census(objects: Iterable[object]) -> dict[str, int]:
    """Count ``objects`` by qualified type name.

    Counting runs over type objects at C speed; names are computed once per
    distinct type.  Distinct types that share a name (two classes ``app.Node``
    defined twice) are added together.
    """
    return _by_name(_count_types(objects))[0]


def _by_name(
    by_type: dict[type, int], names: dict[type, str] | None = None, skip: set[type] | None = None
) -> tuple[dict[str, int], int]:
    """Counts per type name (types sharing a name added together) and their total."""
    counts: dict[str, int] = {}
    total = 0
    for tp, n in by_type.items():
        if n <= 0 or (skip and tp in skip):
            continue
        name = names[tp] if names else type_name(tp)
        counts[name] = counts.get(name, 0) + n
        total += n
    return counts, total


def is_own_name(name: str) -> bool:
    """True for ``leakscope`` and names inside it (its modules and their types)."""
    return name == "leakscope" or name.startswith("leakscope.")


# Containers that leakscope's own data objects build for themselves.
_PLAIN_CONTAINERS = frozenset({dict, list, tuple, set, frozenset})


def _owned_containers(
    own: list[object], own_types: set[type]
) -> tuple[dict[type, int], dict[type, int]]:
    """The plain containers reachable from leakscope's objects through plain containers only.

    leakscope's data objects (a snapshot's memory breakdown, a report's tuples) hold
    dicts, lists and tuples of their own; they are leakscope's, not the user's, and
    must not show up as growth.  The walk never enters a user object: it stops at
    anything that is neither a plain container nor one of leakscope's own types.
    """
    seen = set(map(id, own))
    stack = own
    owned: dict[type, int] = {}
    visited: dict[type, int] = {}  # leakscope objects reached, roots included
    for obj in own:
        visited[type(obj)] = visited.get(type(obj), 0) + 1
    while stack:
        for ref in gc.get_referents(stack.pop()):
            tp = type(ref)
            if id(ref) in seen:
                continue
            if tp in _PLAIN_CONTAINERS:
                if not gc.is_tracked(ref):
                    continue
                owned[tp] = owned.get(tp, 0) + 1
            elif tp in own_types:
                visited[tp] = visited.get(tp, 0) + 1
            else:
                continue
            seen.add(id(ref))
            stack.append(ref)
    return owned, visited


def tracked_census(known_own: Sequence[object] = ()) -> tuple[dict[str, int], int]:
    """Per-type counts of every object the cyclic collector tracks, and their total.

    leakscope's own objects are left out, and so are the plain containers that they
    hold: taking snapshots or keeping reports never shows up as the user's growth.
    Finding those objects costs one pass over the heap at C speed, and only when some
    leakscope object is alive that ``known_own`` (objects the caller holds) does not
    account for.
    """
    objects = gc.get_objects()
    try:
        by_type = _count_types(objects)
        names = {tp: type_name(tp) for tp in by_type}
        own_types = {tp for tp, name in names.items() if is_own_name(name)}
        if own_types:
            owned, visited = _owned_containers(list(known_own), own_types)
            if any(visited.get(tp, 0) != by_type[tp] for tp in own_types):
                own = list(compress(objects, map(own_types.__contains__, map(type, objects))))
                owned, _ = _owned_containers(own, own_types)
                del own
            for tp, n in owned.items():
                by_type[tp] -= n
    finally:
        del objects
    return _by_name(by_type, names, own_types)


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
