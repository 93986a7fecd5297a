"""The retained-object measurement of one request: what it created that is still alive.

::

    sampler = Sampler()
    mark = sampler.begin()                       # before the application runs
    ...                                          # the request runs
    sample = sampler.measure(mark, [environ], frame)   # after it ended; None if noisy

On :meth:`Sampler.begin` the young generations are collected and every object alive is
frozen (:func:`gc.freeze`, O(1)): the heap that existed before the request is then
invisible to the collections and to :func:`gc.get_objects`, so measuring costs what the
request allocated, not the size of the heap.  On :meth:`Sampler.measure` the request's
garbage is collected, and its objects still alive and reachable from nothing in flight
(``roots``: the environ or ASGI scope; the locals of ``frame`` and the frames below it;
the thread's context variables) are what it retained; then the heap is unfrozen.  A host
that froze its own heap (the ``gc.freeze()`` pre-fork pattern) is never unfrozen: the
sampler then reads the young generations instead.  :meth:`Sampler.cancel` ends a
measurement that will not be taken (an overlapping request, an exception), and must be
called for every mark that :meth:`Sampler.measure` does not consume.  With ``sites``, a
short ``tracemalloc`` window spans the request, so that the retained objects' allocation
lines are known; it is stopped after (never left running, never stopped if the host
started it).  Module and
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
import os
import sys
import threading
import tracemalloc
import types
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from leakscope._heap import MODULE_DICT, TYPE_DICT, SampleRef, is_own_name, type_name
from leakscope._interpreter import frozen
from leakscope._roots import CONTAINER_BASES, root_containers
from leakscope.web.holders import parse_key
from leakscope.web.table import TOP_TYPES, Sample

__all__ = ["Containers", "Mark", "Sampler", "retained", "site_of"]

BLOCKS_EVERY = 4
"""Samples per one that also measures the allocator's blocks (``retained_blocks_per_request``)."""
REFRESH_EVERY = 16
"""Samples per look at every known container (one that started growing becomes watched)."""
_MAX_WALK = 50_000
_MAX_OLD_FANOUT = 256
_MAX_CONTAINERS = 2000
_REFS_PER_SAMPLE = 4
_GROWABLE = tuple(b for b in CONTAINER_BASES if b is not frozenset)
_CO_OPTIMIZED = inspect.CO_OPTIMIZED
_WEAKREF_OFFSET = type.__dict__["__weakrefoffset__"]
_SIMPLE_BYTES = (str, bytes, bytearray, int, float)
_NOTHING = object()
_BOUND = (types.MethodType, types.BuiltinMethodType)

_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_Entry = tuple["weakref.ref[Any]", str, bool, Callable[[Any], int], str]
_Group = tuple["weakref.ref[Any]", Any, list[str], Callable[[Any], int]]


def _older_collections() -> tuple[int, int]:
    stats = gc.get_stats()
    return stats[1]["collections"], stats[-1]["collections"]


class Mark:
    """What :meth:`Sampler.begin` saw and started: container lengths, collections, blocks,
    whether the heap was frozen and whether a tracemalloc window is open."""

    __slots__ = ("blocks", "collections", "containers", "freezing", "open", "tracing")

    def __init__(
        self, containers: list[int], collections: tuple[int, int], blocks: int | None
    ) -> None:
        self.containers = containers
        self.collections = collections
        self.blocks = blocks
        self.freezing: Any = None  # the entered frozen() context, when the heap was frozen
        self.tracing = False  # True: leakscope started tracemalloc for this request
        self.open = True


class Sampler:
    """Measures what one request at a time retained (see the module docstring).

    >>> sampler = Sampler()
    >>> mark = sampler.begin()
    >>> kept = [object() for _ in range(3)]
    >>> sampler.measure(mark, [], None) is not None
    True
    """

    __slots__ = ("_begun", "_lock", "containers", "skipped_noisy")

    def __init__(self) -> None:
        self.containers = Containers()
        self.skipped_noisy = 0
        self._begun = 0
        self._lock = threading.Lock()

    def begin(self, sites: bool = False) -> Mark:
        """Before the request: read the containers, empty the young generations, freeze.

        ``sites``: also trace allocations (tracemalloc) until the measurement ends.
        """
        # Read before collecting: what leakscope makes here (the lengths, the container
        # list on the first scan) is then old, not young like what the request makes.
        containers = self.containers.lengths()
        gc.collect(1)  # gen 0 and 1 empty: nothing young is frozen
        # sys.getallocatedblocks() walks every arena (its cost grows with the heap): read on
        # one sample in BLOCKS_EVERY only.
        self._begun += 1
        blocks = sys.getallocatedblocks() if self._begun % BLOCKS_EVERY == 1 else None
        mark = Mark(containers, _older_collections(), blocks)
        freezing = frozen()
        if freezing.__enter__():
            mark.freezing = freezing
        else:  # the host froze its heap: never unfrozen by leakscope
            freezing.__exit__(None, None, None)
        if sites and not tracemalloc.is_tracing():
            tracemalloc.start(1)
            mark.tracing = True
        return mark

    def cancel(self, mark: Mark) -> None:
        """End a measurement without taking it: unfreeze, stop tracing (idempotent)."""
        with self._lock:
            self._close(mark)

    @staticmethod
    def _close(mark: Mark) -> None:
        if not mark.open:
            return
        mark.open = False
        freezing, mark.freezing = mark.freezing, None
        try:
            if mark.tracing:
                mark.tracing = False
                tracemalloc.stop()
        finally:
            if freezing is not None:
                freezing.__exit__(None, None, None)

    def measure(
        self, mark: Mark, roots: Iterable[object], frame: FrameType | None
    ) -> Sample | None:
        """After the request: what it retained.  None when the mark was cancelled meanwhile,
        or (counted noisy) when the collector moved some of the request's objects to the
        oldest generation, where their garbage cannot be told from what was kept."""
        # acquire()/release(), not ``with``: the bound __exit__ a with-statement keeps on
        # the stack would be a young object alive at the census of the request's objects.
        self._lock.acquire()
        try:
            if not mark.open:
                return None
            if _older_collections() != mark.collections:
                self.skipped_noisy += 1
                return None
            return self._retained(mark, roots, frame)
        finally:
            try:
                self._close(mark)
            finally:
                self._lock.release()

    def _retained(self, mark: Mark, roots: Iterable[object], frame: FrameType | None) -> Sample:
        if mark.freezing is not None:
            gc.collect(1)  # only the request's objects are not frozen: this costs what it made
            young = gc.get_objects()
        else:
            gc.collect(0)
            young = gc.get_objects(generation=1)
        blocks = None if mark.blocks is None else sys.getallocatedblocks() - mark.blocks
        try:
            traced = mark.tracing or tracemalloc.is_tracing()
            sample = retained(young, roots, frame, sites=traced)
            sample.traced = mark.tracing
        finally:
            del young
        sample.blocks = blocks
        self.containers.grown(mark.containers, sample)
        if not self.containers.refreshed or self._begun % REFRESH_EVERY == 0:
            # After the first sample only the containers changed since the first scan are
            # read; every REFRESH_EVERY samples all are, to watch one that starts growing.
            self.containers.refresh()
        return sample

    def refresh(self) -> None:
        """Cheap look at every known container (a timeline point): see :meth:`Containers.refresh`."""
        self.containers.refresh()

    def rescan(self, every: bool = False) -> None:
        """Refresh the container list (at each heap census): see :meth:`Containers.rescan`."""
        self.containers.rescan(every)


class Containers:
    """The module and class containers (where caches and registries live), by weak reference.

    A request that stores into ``CACHE = {}`` at module level leaves objects the
    collector may not track (a dict of strings and numbers); the container's length
    grows instead, and the container is the holder of what the request retained.  The
    list comes from the snapshot's container scan (:meth:`rescan`, at each heap census);
    a sampled request reads the lengths of the *active* ones before and after.  Until
    the first :meth:`refresh` every container is active; from then on only those whose
    length changed since the first scan: most (``__all__``, registries filled at import)
    never change.  :meth:`refresh` (a timeline point) reads every known container once,
    which catches a container that starts growing later.  The containers of one module
    or class are read together, at C speed.
    """

    __slots__ = ("all", "entries", "first", "groups", "kinds", "refreshed", "scanned")

    def __init__(self) -> None:
        self.all: list[_Entry] = []  # every container of the last scan
        self.entries: list[_Entry] = []  # the active ones
        # (holder, its namespace descriptor, names, length function): runs of ``entries``.
        self.groups: list[_Group] = []
        self.first: dict[str, int] = {}  # every container's length at the first scan
        self.kinds: dict[str, str] = {}  # container key -> its type name
        self.scanned = False
        self.refreshed = False

    def rescan(self, every: bool = False) -> None:
        """Scan the modules and classes for containers again (new modules, new classes);
        the active ones: every container until the first refresh or when ``every``, else
        those whose length changed since the first scan."""
        found: list[_Entry] = []
        lengths, _ = root_containers()
        if not self.scanned:
            self.first, self.scanned = lengths, True
        for key in lengths:
            if "__defaults__" in key or len(found) >= _MAX_CONTAINERS:
                continue
            entry = _entry(key, found[-1][0] if found else None, self.kinds)
            if entry is not None:
                found.append(entry)
        self.all = found
        every = every or not self.refreshed
        # Active: those changed since the first scan, and those new since (a module or
        # class imported later: its first length is not known).
        self._activate([e for e in found if every or self.first.get(e[4], -1) != lengths[e[4]]])

    def refresh(self) -> None:
        """Read every known container once; those that changed since the first scan become
        active (cheap: no scan of the modules)."""
        if not self.scanned:
            self.rescan()
        lengths = _read(_groups(self.all))
        first = self.first
        self.refreshed = True
        self._activate(
            [e for e, n in zip(self.all, lengths, strict=True) if first.get(e[4], -1) != n]
        )

    def _activate(self, entries: list[_Entry]) -> None:
        self.entries, self.groups = entries, _groups(entries)

    def lengths(self) -> list[int]:
        """Each active entry's length, -1 where it cannot be read (gone, or no longer a container)."""
        if not self.scanned:
            self.rescan()
        return _read(self.groups)

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
                sample.kinds[key] = self.kinds.get(key, "")
            if value is _NOTHING or gc.is_tracked(value):
                continue  # tracked values were counted as the request's young objects
            tp = type_name(type(value))
            sample.types[tp] = sample.types.get(tp, 0) + new - old
            sample.objects += new - old
            with contextlib.suppress(Exception):
                sample.bytes += sys.getsizeof(value) * (new - old)
            del value


def _groups(entries: list[_Entry]) -> list[_Group]:
    """Runs of entries with one holder and one length function, read together."""
    groups: list[_Group] = []
    for ref, name, is_class, length, _ in entries:
        if groups and groups[-1][0] is ref and groups[-1][3] is length:
            groups[-1][2].append(name)
        else:
            # The slot descriptor, not its bound __get__: a method-wrapper per group
            # would be counted by the heap census as the application's objects.
            namespace = TYPE_DICT if is_class else MODULE_DICT
            groups.append((ref, namespace, [name], length))
    return groups


def _read(groups: list[_Group]) -> list[int]:
    out: list[int] = []
    for ref, namespace, names, length in groups:
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


def _entry(key: str, last: weakref.ref[Any] | None, kinds: dict[str, str]) -> _Entry | None:
    """The entry of a container key: its holder (module or class) by weak reference."""
    modname, name, attr = parse_key(key)
    module = sys.modules.get(modname)
    try:
        holder = module if not attr else MODULE_DICT.__get__(module).get(name)
        value = (TYPE_DICT if attr else MODULE_DICT).__get__(holder).get(attr or name)
        base = next(b for b in _GROWABLE if issubclass(type(value), b))
        length: Callable[[Any], int] = base.__len__  # type: ignore[attr-defined]
        ref = last if last is not None and last() is holder else SampleRef(holder)
        kinds[key] = type_name(type(value))
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


def retained(
    young: list[Any], roots: Iterable[object], frame: FrameType | None, *, sites: bool = False
) -> Sample:
    """The young objects that nothing in flight holds: what the request retained.

    Objects reachable from ``roots``, from the locals of the frames still running (the
    server's, which hold the response and the request until after ``close()``) and from
    the thread's context variables (their mapping is rebuilt whenever one is set, as
    frameworks do per request) are in flight; leakscope's own objects are left out.
    ``sites``: tracemalloc is tracing; the allocation line of each top type is looked up.
    """
    seen = _in_flight(set(map(id, young)), roots, frame)
    kept = [
        obj
        for obj in young
        if id(obj) not in seen
        and type(obj) is not FrameType
        and not (type(obj) in _BOUND and _own_bound(obj))
    ]
    del seen
    types: dict[type, int] = {}
    sizes: dict[type, int] = {}
    for obj in kept:
        tp = type(obj)
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
    top = dict(sorted(named.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_TYPES])
    sample = Sample(objects, nbytes, top, _followed(kept, own))
    if sites and top:
        sample.sites = _sites(kept, set(top))
    return sample


def _own_bound(method: Any) -> bool:
    """A bound method of one of leakscope's objects (on the stack of its own frames)."""
    try:
        return is_own_name(type_name(type(method.__self__)))
    except Exception:
        return False


def _sites(kept: list[Any], wanted: set[str]) -> dict[str, str]:
    """``file:line`` where one retained object of each wanted type was allocated."""
    out: dict[str, str] = {}
    missed: dict[str, int] = {}  # type -> size of an object whose traceback was not found
    for obj in kept:
        name = type_name(type(obj))
        if name in wanted and name not in out:
            site = site_of(obj)
            if site is not None:
                out[name] = site
                missed.pop(name, None)
            elif name not in missed and "." in name:  # a class's instance, not a builtin
                with contextlib.suppress(Exception):
                    missed[name] = sys.getsizeof(obj)
            if len(out) == len(wanted):
                break
    if missed:
        out.update(_sites_by_size(missed))
    return out


def _sites_by_size(sizes: dict[str, int]) -> dict[str, str]:
    """Python 3.11 cannot look up instances with a managed ``__dict__`` (it misses their
    pre-header): the line that allocated most blocks of such an object's size during the
    traced request stands in."""
    lines: dict[int, dict[str, int]] = {}
    for trace in tracemalloc.take_snapshot().traces:
        wanted = trace.size in sizes.values()
        frame = trace.traceback[0] if wanted and len(trace.traceback) else None
        if frame is not None and not frame.filename.startswith(_OWN_DIR + os.sep):
            where = f"{_short(frame.filename)}:{frame.lineno}"
            count = lines.setdefault(trace.size, {})
            count[where] = count.get(where, 0) + 1
    out = {}
    for name, size in sizes.items():
        found = lines.get(size)
        if found:
            out[name] = max(found.items(), key=lambda kv: (kv[1], kv[0]))[0]
    return out


def site_of(obj: object) -> str | None:
    """``file:line`` where tracemalloc saw ``obj`` allocated (the innermost frame that is not
    leakscope's), None when it was not traced.

    >>> site_of(object()) is None  # not tracing
    True
    """
    traceback = tracemalloc.get_object_traceback(obj)
    if traceback is None:
        return None
    for frame in reversed(list(traceback)):  # innermost first
        if not os.path.abspath(frame.filename).startswith(_OWN_DIR + os.sep):
            return f"{_short(frame.filename)}:{frame.lineno}"
    return None


def _short(filename: str) -> str:
    """A path relative to the working directory when under it, else as it is."""
    try:
        relative = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if relative.startswith("..") else relative


def _followed(kept: list[Any], own: set[type]) -> list[SampleRef]:
    """Weak references to a few retained objects, to see later whether they stay alive."""
    refs: list[SampleRef] = []
    for obj in kept:
        if len(refs) >= _REFS_PER_SAMPLE:
            break
        tp = type(obj)
        if tp in own or not _WEAKREF_OFFSET.__get__(tp):
            continue
        try:
            refs.append(SampleRef(obj))
        except TypeError:
            continue
    return refs
