"""Caches that declare their bound, and which of them are filling up.

A cache that grows toward a size it declares is not a leak: ``functools.lru_cache``
gives ``maxsize`` and ``currsize`` through ``cache_info()``, a ``collections.deque``
its ``maxlen``, and cachetools-style caches keep ``maxsize`` and ``currsize`` (their
instance dict holds both as integers).  :func:`declared_bound` reads that bound
without calling user code, and :class:`CacheFill` tells which caches filled during
some calls and which objects they hold, so that growth into a bound is reported as
"filling a bounded cache (2,048 of 5,000 entries)" instead of a leak, long before
the cache reaches its bound.

>>> import collections
>>> declared_bound(collections.deque([1, 2], maxlen=10))
Bound(kind='collections.deque', size=2, maxsize=10)
>>> declared_bound(collections.deque([1, 2])) is None
True
"""

from __future__ import annotations

import collections
import functools
import gc
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import compress

from leakscope._heap import TYPE_DICT, TYPE_MRO, type_name

__all__ = ["Bound", "CacheFill", "declared_bound"]

_LRU_TYPE: type = type(functools.lru_cache(maxsize=1)(len))
_DEQUE_MAXLEN = collections.deque.maxlen
_CLOSURE_DEPTH = 3  # cache -> its dict -> its data dict -> entries
_CLOSURE_LIMIT = 200_000  # ids collected at most per cache
_MAX_CACHES = 256


@dataclass(frozen=True, slots=True)
class Bound:
    """A cache's declared bound: its ``kind``, current ``size`` and ``maxsize``."""

    kind: str
    size: int
    maxsize: int

    def describe(self, name: str = "") -> str:
        """``filling a bounded cache (2,048 of 5,000 entries): functools.lru_cache app.parse``.

        >>> Bound("functools.lru_cache", 2048, 5000).describe("app.parse")
        'filling a bounded cache (2,048 of 5,000 entries): functools.lru_cache app.parse'
        """
        where = f": {self.kind} {name}" if name else f": {self.kind}"
        return f"filling a bounded cache ({self.size:,} of {self.maxsize:,} entries){where}"


def _declares_sizes(tp: type) -> bool:
    """True for classes that define both ``maxsize`` and ``currsize`` (cachetools' Cache)."""
    try:
        found: set[str] = set()
        for k in TYPE_MRO.__get__(tp):
            if isinstance(k, type):
                found.update(n for n in ("maxsize", "currsize") if n in TYPE_DICT.__get__(k))
        return len(found) == 2
    except Exception:
        return False


def _sized_fields(obj: object) -> Bound | None:
    """``maxsize``/``currsize`` kept as integers in the instance dict (any name mangling)."""
    try:
        d = object.__getattribute__(obj, "__dict__")
    except Exception:
        return None
    if type(d) is not dict:
        return None
    maxsize = currsize = None
    for key, value in list(dict.items(d)):
        if type(key) is not str or type(value) is not int:
            continue
        if key.endswith("maxsize"):
            maxsize = value
        elif key.endswith("currsize"):
            currsize = value
    if maxsize is None or currsize is None or maxsize <= 0:
        return None
    return Bound(type_name(type(obj)), currsize, maxsize)


def declared_bound(obj: object) -> Bound | None:
    """The bound ``obj`` declares, or ``None`` (unbounded, or not a cache).

    Reads ``cache_info()`` of a ``functools.lru_cache`` wrapper (the standard
    library's C code), a deque's ``maxlen``, or the integers a cachetools-style cache
    keeps in its instance dict; never calls user code.
    """
    tp = type(obj)
    try:
        if tp is _LRU_TYPE:
            info = _LRU_TYPE.cache_info(obj)  # type: ignore[attr-defined]
            if info.maxsize is None or info.maxsize <= 0:
                return None
            return Bound("functools.lru_cache", int(info.currsize), int(info.maxsize))
        if issubclass(tp, collections.deque):
            maxlen = _DEQUE_MAXLEN.__get__(obj)
            if maxlen is None:
                return None
            return Bound(type_name(tp), collections.deque.__len__(obj), int(maxlen))  # type: ignore[arg-type]
        if _declares_sizes(tp):
            return _sized_fields(obj)
    except Exception:
        return None
    return None


def _closure(root: object) -> set[int]:
    """Ids of the objects ``root`` refers to, up to a few levels down (bounded)."""
    ids: set[int] = set()
    level = [root]
    for _ in range(_CLOSURE_DEPTH):
        nxt = []
        for item in gc.get_referents(*level):
            if id(item) not in ids and not isinstance(item, type):
                ids.add(id(item))
                nxt.append(item)
        level = nxt
        if not level or len(ids) >= _CLOSURE_LIMIT:
            break
    level.clear()
    return ids


@dataclass
class CacheFill:
    """The bounded caches alive before some calls, and which of them filled during them.

    Created from the heap's objects before the calls; :meth:`measure` after them.
    Holds the caches (not their contents) until :meth:`close`.

    >>> import collections
    >>> recent = collections.deque(maxlen=100)
    >>> fill = CacheFill.of([recent])
    >>> recent.extend(range(40))
    >>> [b.describe() for _, b in fill.measure()]
    ['filling a bounded cache (40 of 100 entries): collections.deque']
    >>> fill.close()
    """

    caches: list[tuple[object, Bound]] = field(default_factory=list)
    filling: list[tuple[object, Bound]] = field(default_factory=list)

    @classmethod
    def of(cls, objects: Iterable[object]) -> CacheFill:
        """The bounded caches among ``objects`` (the heap, usually)."""
        objects = list(objects)
        candidates = {
            tp
            for tp in set(map(type, objects))
            if tp is _LRU_TYPE or issubclass(tp, collections.deque) or _declares_sizes(tp)
        }
        out = cls()
        if candidates:
            for obj in compress(objects, map(candidates.__contains__, map(type, objects))):
                bound = declared_bound(obj)
                if bound is not None and len(out.caches) < _MAX_CACHES:
                    out.caches.append((obj, bound))
        objects.clear()
        return out

    def measure(self) -> list[tuple[object, Bound]]:
        """The caches that grew since :meth:`of`, with their bound now."""
        self.filling = []
        for obj, before in self.caches:
            now = declared_bound(obj)
            if now is not None and now.size > before.size:
                self.filling.append((obj, now))
        return self.filling

    def holding(self, objects: Iterable[object]) -> list[int]:
        """For each filling cache, how many of ``objects`` it holds."""
        wanted = {id(o) for o in objects}
        return [len(wanted & _closure(obj)) for obj, _ in self.filling]

    def close(self) -> None:
        self.caches.clear()
        self.filling.clear()
