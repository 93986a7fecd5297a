"""Objects that grow in place: untracked containers and buffers that tracked objects hold.

The collector does not track a dict or list of strings, bytes and numbers, and the
container scan of :mod:`leakscope._roots` reads only module globals, class attributes
and function defaults.  A ``STORE.data`` dict on a module-level instance, or the
``io.StringIO`` a logging handler writes into, then grows while no object count
does.  :class:`SizeWatch` measures, around some calls, every such container that a
tracked object refers to (and every ``io.StringIO``/``io.BytesIO``), and tells which
grew steadily; lengths and sizes are read through the base types' own C methods, so
no user code runs.

>>> import gc
>>> class Store:
...     def __init__(self):
...         self.data = {}
>>> store = Store()
>>> watch = SizeWatch.of(gc.get_objects())
>>> for n in range(50):
...     store.data[f"k{n}"] = "v"
>>> [(g.type, g.unit, g.growth) for g in watch.grown(calls=50) if g.obj is store.data]
[('dict', 'entries', 50)]
>>> watch.close()
"""

from __future__ import annotations

import gc
import io
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from leakscope._heap import type_name

__all__ = ["Grown", "SizeWatch"]

_BATCH = 4096
_MAX_WATCHED = 200_000

# Untracked containers (their length) and in-place buffers (their size in bytes).
_LENGTHS: dict[type, Callable[[Any], int]] = {
    dict: dict.__len__,
    list: list.__len__,
    set: set.__len__,
}
_BUFFERS: dict[type, Callable[[Any], int]] = {
    bytearray: bytearray.__len__,
    io.StringIO: io.StringIO.tell,
    io.BytesIO: sys.getsizeof,
}


@dataclass
class Grown:
    """One object that grew during the calls: ``growth`` entries or bytes."""

    obj: object
    type: str
    unit: Literal["entries", "bytes"]
    growth: int


def _size(obj: object) -> int | None:
    tp = type(obj)
    read = _LENGTHS.get(tp) or _BUFFERS.get(tp)
    if read is None:
        return None
    try:
        return int(read(obj))
    except Exception:  # a closed StringIO
        return None


@dataclass
class SizeWatch:
    """Sizes of the in-place growing candidates before some calls (see the module doc)."""

    watched: list[object] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, objects: Iterable[object]) -> SizeWatch:
        """Candidates among ``objects`` (tracked objects) and what they refer to."""
        out = cls()
        seen: set[int] = set()
        batch: list[object] = []
        for obj in objects:
            if type(obj) in _BUFFERS:
                out._add(obj, seen)
            batch.append(obj)
            if len(batch) >= _BATCH:
                out._scan(batch, seen)
        out._scan(batch, seen)
        return out

    def _scan(self, batch: list[object], seen: set[int]) -> None:
        for ref in gc.get_referents(*batch):
            tp = type(ref)
            if (tp in _LENGTHS and not gc.is_tracked(ref)) or tp is bytearray:
                self._add(ref, seen)
        batch.clear()

    def _add(self, obj: object, seen: set[int]) -> None:
        if id(obj) in seen or len(self.watched) >= _MAX_WATCHED:
            return
        size = _size(obj)
        if size is not None:
            seen.add(id(obj))
            self.watched.append(obj)
            self.sizes.append(size)

    def grown(self, calls: int) -> list[Grown]:
        """What grew by about one entry per call or more (8 bytes per call for buffers)."""
        out = []
        for obj, before in zip(self.watched, self.sizes, strict=True):
            after = _size(obj)
            if after is None:
                continue
            buffer = type(obj) in _BUFFERS
            if after - before >= (8 * calls if buffer else max(1, calls // 2)):
                out.append(
                    Grown(
                        obj, type_name(type(obj)), "bytes" if buffer else "entries", after - before
                    )
                )
        out.sort(key=lambda g: -g.growth)
        return out

    def close(self) -> None:
        self.watched.clear()
        self.sizes.clear()
