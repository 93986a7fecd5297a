"""The retained-object measurement of one request: what it created that is still alive.

::

    sampler = Sampler()
    mark = sampler.begin()                       # before the application runs
    ...                                          # the request runs
    sample = sampler.measure(mark, [environ], frame)   # after it ended; None if noisy

On :meth:`Sampler.begin` the young generations are collected, so what the request creates
is young; on :meth:`Sampler.measure` the objects still young and reachable from nothing
in flight (``roots``: the environ or ASGI scope; the locals of ``frame`` and the frames
below it; the thread's context variables) are what the request retained.  Module and
class containers (``CACHE = {}``) that the request grew count too, by the type of the
value added last, since the collector does not track a dict of strings.  Not
thread-safe: its owner measures one request at a time.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import inspect
import itertools
import sys
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from leakscope._heap import MODULE_DICT, TYPE_DICT, SampleRef, is_own_name, type_name
from leakscope._roots import CONTAINER_BASES, root_containers
from leakscope.web.holders import parse_key
from leakscope.web.table import TOP_TYPES, Sample

__all__ = ["Containers", "Mark", "Sampler", "retained"]

_MAX_WALK = 50_000
_MAX_OLD_FANOUT = 256
_MAX_CONTAINERS = 2000
_REFS_PER_SAMPLE = 4
_GROWABLE = tuple(b for b in CONTAINER_BASES if b is not frozenset)
_CO_OPTIMIZED = inspect.CO_OPTIMIZED
_WEAKREF_OFFSET = type.__dict__["__weakrefoffset__"]
_SIMPLE_BYTES = (str, bytes, bytearray, int, float)
_NOTHING = object()

_Entry = tuple["weakref.ref[Any]", str, bool, Callable[[Any], int], str]
_Group = tuple["weakref.ref[Any]", Any, list[str], Callable[[Any], int]]


def _older_collections() -> tuple[int, int]:
    stats = gc.get_stats()
    return stats[1]["collections"], stats[-1]["collections"]


class Mark:
    """The state :meth:`Sampler.begin` saw: container lengths, collections, blocks."""

    __slots__ = ("blocks", "collections", "containers")

    def __init__(self, containers: list[int], collections: tuple[int, int], blocks: int) -> None:
        self.containers = containers
        self.collections = collections
        self.blocks = blocks


class Sampler:
    """Measures what one request at a time retained (see the module docstring).

    >>> sampler = Sampler()
    >>> mark = sampler.begin()
    >>> kept = [object() for _ in range(3)]
    >>> sampler.measure(mark, [], None) is not None
    True
    """

    __slots__ = ("containers", "skipped_noisy")

    def __init__(self) -> None:
        self.containers = Containers()
        self.skipped_noisy = 0

    def begin(self) -> Mark:
        """Before the request: read the containers, then empty the young generations."""
        # Read before collecting: what leakscope makes here (the lengths, the container
        # list on the first scan) is then old, not young like what the request makes.
        containers = self.containers.lengths()
        gc.collect(1)  # gen 0 and 1 empty: what the request creates is young
        return Mark(containers, _older_collections(), sys.getallocatedblocks())

    def measure(
        self, mark: Mark, roots: Iterable[object], frame: FrameType | None
    ) -> Sample | None:
        """After the request: what it retained; None (counted noisy) when the collector moved
        some of its objects to an older generation meanwhile."""
        if _older_collections() != mark.collections:
            self.skipped_noisy += 1
            return None
        gc.collect(0)
        blocks = sys.getallocatedblocks()
        young = gc.get_objects(generation=1)
        try:
            sample = retained(young, roots, frame)
        finally:
            del young
        sample.blocks = blocks - mark.blocks
        self.containers.grown(mark.containers, sample)
        return sample

    def rescan(self, every: bool = False) -> None:
        """Refresh the container list (at each heap census): see :meth:`Containers.rescan`."""
        self.containers.rescan(every)


class Containers:
    """The module and class containers (where caches and registries live), by weak reference.

    A request that stores into ``CACHE = {}`` at module level leaves objects the
    collector may not track (a dict of strings and numbers); the container's length
    grows instead.  Their list comes from the snapshot's container scan, refreshed at
    each timeline census; a sampled request reads their lengths before and after.
    From the second heap census on, only the containers whose length has changed since
    the first scan are read: most (``__all__``, registries filled at import) never
    change, and that census comes early.  The containers of one module or class are
    read together, at C speed.
    """

    __slots__ = ("entries", "first", "groups", "scanned")

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        # (holder, its namespace descriptor, names, length function): runs of ``entries``.
        self.groups: list[_Group] = []
        self.first: dict[str, int] = {}  # every container's length at the first scan
        self.scanned = False

    def rescan(self, every: bool = False) -> None:
        """Refresh the list: every container on the first scan or when ``every``, else only
        those whose length changed since the first scan."""
        entries: list[_Entry] = []
        lengths, _ = root_containers()
        if not self.scanned:
            self.first, self.scanned, every = lengths, True, True
        for key, n in lengths.items():
            if "__defaults__" in key or len(entries) >= _MAX_CONTAINERS:
                continue
            if not every and self.first.get(key) == n:
                continue
            entry = _entry(key, entries[-1][0] if entries else None)
            if entry is not None:
                entries.append(entry)
        groups: list[_Group] = []
        for ref, name, is_class, length, _ in entries:
            if groups and groups[-1][0] is ref and groups[-1][3] is length:
                groups[-1][2].append(name)
            else:
                # The slot descriptor, not its bound __get__: a method-wrapper per group
                # would be counted by the heap census as the application's objects.
                namespace = TYPE_DICT if is_class else MODULE_DICT
                groups.append((ref, namespace, [name], length))
        self.entries, self.groups = entries, groups

    def lengths(self) -> list[int]:
        """Each entry's length, -1 where it cannot be read (gone, or no longer a container)."""
        if not self.scanned:
            self.rescan()
        out: list[int] = []
        for ref, namespace, names, length in self.groups:
            try:
                get = namespace.__get__(ref()).get
                out += list(map(length, map(get, names)))
            except Exception:
                out += map(
                    _length_or_minus_one,
                    itertools.repeat(ref),
                    itertools.repeat(namespace),
                    names,
                    itertools.repeat(length),
                )
        return out

    def grown(self, before: list[int], sample: Sample) -> None:
        """Add to ``sample`` what the containers that grew since ``before`` now end with."""
        after = self.lengths()
        if not before or len(before) != len(after):
            return  # rescanned meanwhile
        for (ref, name, is_class, _, key), old, new in zip(
            self.entries, before, after, strict=True
        ):
            if old < 0 or new <= old:
                continue
            try:
                namespace = (TYPE_DICT if is_class else MODULE_DICT).__get__(ref())
                value = _last(namespace.get(name))
            except Exception:
                continue
            if len(sample.containers) < TOP_TYPES:
                sample.containers[key] = new - old
            if value is _NOTHING or gc.is_tracked(value):
                continue  # tracked values were counted as the request's young objects
            tp = type_name(type(value))
            sample.types[tp] = sample.types.get(tp, 0) + new - old
            sample.objects += new - old
            with contextlib.suppress(Exception):
                sample.bytes += sys.getsizeof(value) * (new - old)
            del value


def _entry(key: str, last: weakref.ref[Any] | None) -> _Entry | None:
    """The entry of a container key: its holder (module or class) by weak reference."""
    modname, name, attr = parse_key(key)
    module = sys.modules.get(modname)
    try:
        holder = module if not attr else MODULE_DICT.__get__(module).get(name)
        value = (TYPE_DICT if attr else MODULE_DICT).__get__(holder).get(attr or name)
        base = next(b for b in _GROWABLE if issubclass(type(value), b))
        length: Callable[[Any], int] = base.__len__  # type: ignore[attr-defined]
        ref = last if last is not None and last() is holder else SampleRef(holder)
        return (ref, attr or name, bool(attr), length, key)
    except Exception:
        return None


def _length_or_minus_one(
    ref: weakref.ref[Any],
    namespace: Any,
    name: str,
    length: Callable[[Any], int],
) -> int:
    try:
        return length(namespace.__get__(ref()).get(name))
    except Exception:
        return -1


def _last(container: object) -> object:
    """The value added last to a dict, list or deque (``_NOTHING`` for others); no user code."""
    tp = type(container)
    if issubclass(tp, dict):
        return next(reversed(dict.values(container)), _NOTHING)  # type: ignore[arg-type]
    for base in (list, deque):
        if issubclass(tp, base) and base.__len__(container):  # type: ignore[arg-type]
            return base.__getitem__(container, -1)  # type: ignore[call-overload,index]
    return _NOTHING


def _in_flight(young_ids: set[int], roots: Iterable[object], frame: FrameType | None) -> set[int]:
    """The ids of the objects reachable from what is in flight (bounded walk)."""
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(contextvars.copy_context(), 0)]
    stack.extend((root, 0) for root in roots)
    f = frame
    while f is not None:
        # Function frames only: a module frame's locals are its globals, where leaks live.
        if f.f_code.co_flags & _CO_OPTIMIZED:
            stack.extend((value, 1) for value in f.f_locals.values())
        f = f.f_back
    del f
    steps = 0
    referents: list[Any] = []
    while stack and steps < _MAX_WALK:
        obj, depth = stack.pop()
        oid = id(obj)
        if oid in seen or type(obj) is FrameType:
            continue
        young_obj = oid in young_ids
        if not young_obj and depth > 2:
            continue  # may still be reached nearer a root
        seen.add(oid)
        steps += 1
        referents = gc.get_referents(obj)
        if not young_obj and len(referents) > _MAX_OLD_FANOUT:
            # Old objects followed are the server's own near the roots (its response,
            # its worker), never a big container: a cache holding new objects is the leak.
            continue
        stack.extend(zip(referents, itertools.repeat(depth + 1)))
    return seen


def _size(obj: object) -> int:
    size = sys.getsizeof(obj)
    for ref in gc.get_referents(obj):
        if type(ref) in _SIMPLE_BYTES and sys.getrefcount(ref) <= 4:
            size += sys.getsizeof(ref)
    return size


def retained(young: list[Any], roots: Iterable[object], frame: FrameType | None) -> Sample:
    """The young objects that nothing in flight holds: what the request retained.

    Objects reachable from ``roots``, from the locals of the frames still running (the
    server's, which hold the response and the request until after ``close()``) and from
    the thread's context variables (their mapping is rebuilt whenever one is set, as
    frameworks do per request) are in flight; leakscope's own objects are left out.
    """
    seen = _in_flight(set(map(id, young)), roots, frame)
    types: dict[type, int] = {}
    sizes: dict[type, int] = {}
    for obj in young:
        tp = type(obj)
        if id(obj) in seen or tp is FrameType:
            continue
        types[tp] = types.get(tp, 0) + 1
        with contextlib.suppress(Exception):
            sizes[tp] = sizes.get(tp, 0) + _size(obj)
    named: dict[str, int] = {}
    own: set[type] = set()
    objects = nbytes = 0
    for tp, n in types.items():
        name = type_name(tp)
        if is_own_name(name):
            own.add(tp)
            continue
        named[name] = named.get(name, 0) + n
        objects += n
        nbytes += sizes.get(tp, 0)
    refs = _followed(young, seen, own)
    top = dict(sorted(named.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_TYPES])
    return Sample(objects, nbytes, top, refs)


def _followed(young: list[Any], seen: set[int], own: set[type]) -> list[SampleRef]:
    """Weak references to a few retained objects, to see later whether they stay alive."""
    refs: list[SampleRef] = []
    for obj in young:
        if len(refs) >= _REFS_PER_SAMPLE:
            break
        tp = type(obj)
        if id(obj) in seen or tp in own or not _WEAKREF_OFFSET.__get__(tp):
            continue
        try:
            refs.append(SampleRef(obj))
        except TypeError:
            continue
    return refs
