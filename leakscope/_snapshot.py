"""Heap snapshots and the growth between two of them.

A :class:`Snapshot` is a census of the live heap: how many objects of each type
the cyclic collector tracks, the lengths of the containers that modules and
classes hold (where caches and registries live, including dicts that the
collector does not track), allocated memory blocks, traced bytes, RSS and the
collector's state.  Subtracting two snapshots gives a :class:`Growth`::

    before = leakscope.snapshot()
    work()
    growth = leakscope.snapshot() - before
    print(growth)            # every change: increases, decreases, new and vanished types

leakscope's own objects (types defined in ``leakscope.*``) are left out of the
census, so taking snapshots never shows up as growth.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from leakscope._fields import Fields
from leakscope._files import atomic_write
from leakscope._format import format_bytes, format_bytes_delta
from leakscope._heap import PYTHON_VERSION, rss_bytes, tracked_census
from leakscope._roots import root_containers
from leakscope.errors import LeakscopeError, SnapshotError
from leakscope.memory import MemoryBreakdown, MemoryGrowth, memory_breakdown

__all__ = ["Delta", "Deltas", "Growth", "Snapshot", "Tracker", "snapshot", "track"]

FORMAT = "leakscope.snapshot"
FORMAT_VERSION = 1


def _gc_stats() -> dict[str, int]:
    stats: dict[str, int] = {}
    for generation, entry in enumerate(gc.get_stats()):
        for key, value in entry.items():
            stats[f"gen{generation}.{key}"] = int(value)
    return stats


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A census of the live heap at one moment.  Take one with :func:`snapshot`.

    ``types`` maps qualified type names (``app.models.User``; builtins bare:
    ``dict``) to the number of live objects the collector tracks.  ``containers``
    maps ``module:name`` / ``module:Class.attr`` to the length of the dict,
    list, set, deque or bytearray held there, and ``container_types`` to its
    type.  ``blocks`` is :func:`sys.getallocatedblocks`, which also counts the
    strings, numbers and untracked dicts that a type census cannot see.
    """

    types: Mapping[str, int]
    containers: Mapping[str, int]
    container_types: Mapping[str, str]
    objects: int
    blocks: int
    rss: int | None
    traced: int | None
    traced_peak: int | None
    gc_enabled: bool
    gc_counts: tuple[int, ...]
    gc_thresholds: tuple[int, ...]
    gc_stats: Mapping[str, int]
    collected: int | None
    pid: int
    time: float
    python: str
    memory: MemoryBreakdown | None = None
    """Where the process's memory is (RSS, pymalloc arenas, malloc, traced): see
    :func:`leakscope.memory_breakdown`.  ``None`` when taken with ``memory=False``."""

    def __sub__(self, other: object) -> Growth:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return self.diff(other)

    def diff(self, before: Snapshot) -> Growth:
        """The :class:`Growth` from ``before`` to this snapshot (``self - before``)."""
        if not isinstance(before, Snapshot):
            raise TypeError(f"diff() needs a Snapshot, not {type(before).__name__}")
        return Growth.between(before, self)

    def top(self, n: int = 10) -> list[tuple[str, int]]:
        """The ``n`` most numerous types, as ``(name, count)`` pairs."""
        return sorted(self.types.items(), key=lambda item: (-item[1], item[0]))[:n]

    # -- persistence -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict holding everything in the snapshot."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "types": dict(self.types),
            "containers": {
                key: [self.container_types.get(key, "?"), length]
                for key, length in self.containers.items()
            },
            "objects": self.objects,
            "blocks": self.blocks,
            "rss": self.rss,
            "traced": self.traced,
            "traced_peak": self.traced_peak,
            "gc": {
                "enabled": self.gc_enabled,
                "counts": list(self.gc_counts),
                "thresholds": list(self.gc_thresholds),
                "stats": dict(self.gc_stats),
            },
            "collected": self.collected,
            "pid": self.pid,
            "time": self.time,
            "python": self.python,
            "memory": None if self.memory is None else self.memory.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: object) -> Snapshot:
        """Rebuild a snapshot from :meth:`to_dict` output; :class:`SnapshotError` if malformed."""
        return _parse(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the snapshot as JSON to ``path`` (atomically: a reader never sees half a file)."""
        atomic_write(path, json.dumps(self.to_dict(), separators=(",", ":")))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Snapshot:
        """Read a snapshot written by :meth:`save`.

        Raises :class:`SnapshotError` naming the reason when the file is
        truncated, corrupt or not a leakscope snapshot; ``OSError`` when it
        cannot be read at all.
        """
        target = os.fspath(path)
        with open(target, "rb") as f:
            raw = f.read()
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise SnapshotError(
                f"{target}: not a leakscope snapshot (invalid JSON: {exc})"
            ) from None
        try:
            return _parse(data)
        except SnapshotError as exc:
            error = SnapshotError(f"{target}: {exc}")
            error.field = exc.field
            raise error from None

    # -- display ------------------------------------------------------------------------

    def __str__(self) -> str:
        lines = [
            f"Snapshot of pid {self.pid} (Python {self.python}) at "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.time))}",
            f"  {self.objects:,} tracked objects in {len(self.types):,} types; "
            f"{self.blocks:,} allocated blocks"
            + (f"; RSS {format_bytes(self.rss)}" if self.rss is not None else "")
            + (f"; traced {format_bytes(self.traced)}" if self.traced is not None else ""),
        ]
        top = self.top(10)
        if top:
            width = max(len(name) for name, _ in top)
            lines.extend(f"  {name:<{width}}  {count:>12,}" for name, count in top)
        return "\n".join(lines)


def _parse(data: object) -> Snapshot:
    if not isinstance(data, dict):
        raise SnapshotError("not a leakscope snapshot (expected a JSON object)")
    if data.get("format") != FORMAT:
        raise SnapshotError(
            f"not a leakscope snapshot (format is {data.get('format')!r:.40})", field="format"
        )
    version = data.get("version")
    if version != FORMAT_VERSION:
        raise SnapshotError(
            f"unsupported snapshot format version {version!r:.20} (this leakscope reads "
            f"version {FORMAT_VERSION})",
            field="version",
        )
    f = Fields(data, "", SnapshotError)
    containers = f.sub("containers")
    lengths: dict[str, int] = {}
    kinds: dict[str, str] = {}
    for key, entry in containers.data.items():
        if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], str):
            raise containers.fail("must be [type name, length]", key)
        kinds[key] = entry[0]
        lengths[key] = Fields({"length": entry[1]}, containers.path(key), SnapshotError).integer(
            "length", minimum=0
        )
    gc_info = f.sub("gc")
    raw_memory = data.get("memory")
    return Snapshot(
        types=f.counts("types"),
        containers=lengths,
        container_types=kinds,
        objects=f.integer("objects", minimum=0),
        blocks=f.integer("blocks", minimum=0),
        rss=f.optional_integer("rss", minimum=0),
        traced=f.optional_integer("traced", minimum=0),
        traced_peak=f.optional_integer("traced_peak", minimum=0),
        gc_enabled=gc_info.flag("enabled"),
        gc_counts=tuple(gc_info.integers("counts", minimum=0)),
        gc_thresholds=tuple(gc_info.integers("thresholds", minimum=0)),
        gc_stats=gc_info.counts("stats"),
        collected=f.optional_integer("collected", minimum=0),
        pid=f.integer("pid", minimum=0),
        time=f.number("time"),
        python=f.text("python"),
        memory=None if raw_memory is None else MemoryBreakdown.from_dict(raw_memory, "memory"),
    )


_warmed: set[str] = set()


def _warm_up(*, collect: bool, memory: bool) -> None:
    """Prepare the process for its first snapshot (once per reader).

    First calls create objects of their own (the allocator reader imports ctypes
    helpers; the census and the container scan build tuples of constants), and the
    collector untracks a tuple of constants only once the tuples inside it are
    untracked, one nesting level per collection.  Reading once and collecting once
    beforehand keeps such objects out of the first snapshot, so that the second one
    does not report them gone.
    """
    fresh = False
    if "census" not in _warmed:
        tracked_census()
        root_containers()
        _warmed.add("census")
        fresh = True
    if memory and "memory" not in _warmed:
        memory_breakdown()
        _warmed.add("memory")
        fresh = True
    if fresh and collect:
        gc.collect()


def _take(*, collect: bool, memory: bool = True) -> Snapshot:
    _warm_up(collect=collect, memory=memory)
    collected = gc.collect() if collect else None
    # Read the allocators before the census, whose temporary list would show in them.
    breakdown = memory_breakdown() if memory else None
    counts, total = tracked_census(known_own=() if breakdown is None else (breakdown,))
    lengths, kinds = root_containers()
    traced, traced_peak = (
        tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (None, None)
    )
    return Snapshot(
        types=counts,
        containers=lengths,
        container_types=kinds,
        objects=total,
        blocks=sys.getallocatedblocks(),
        rss=rss_bytes(),
        traced=traced,
        traced_peak=traced_peak,
        gc_enabled=gc.isenabled(),
        gc_counts=gc.get_count(),
        gc_thresholds=gc.get_threshold(),
        gc_stats=_gc_stats(),
        collected=collected,
        pid=os.getpid(),
        time=time.time(),
        python=PYTHON_VERSION,
        memory=breakdown,
    )


def snapshot(*, collect: bool = True, memory: bool = True) -> Snapshot:
    """Take a :class:`Snapshot` of the live heap.

    With ``collect=True`` (the default) a full collection runs first, so only
    objects that are really reachable are counted, and ``Snapshot.collected``
    says how many unreachable objects it freed.  ``collect=False`` counts
    without collecting, so cyclic garbage that the collector has not reached
    yet shows up (useful to see garbage pile up while ``gc`` is disabled).
    ``memory=False`` skips the allocator reading (:attr:`Snapshot.memory`,
    a few milliseconds).

    >>> before = snapshot()
    >>> keep = [[] for _ in range(3)]       # lists are tracked; a bare object() is not
    >>> (snapshot() - before).types_changed("list")   # the three, and the list holding them
    4
    """
    if not isinstance(collect, bool):
        raise TypeError(f"collect must be True or False, not {collect!r:.40}")
    if not isinstance(memory, bool):
        raise TypeError(f"memory must be True or False, not {memory!r:.40}")
    return _take(collect=collect, memory=memory)


@dataclass(frozen=True, slots=True)
class Delta:
    """How one count changed between two snapshots: a type's objects or a container's length."""

    name: str
    before: int
    after: int
    kind: str = ""
    """For containers, the container's type (``dict``, ``list``...)."""

    @property
    def delta(self) -> int:
        return self.after - self.before

    @property
    def is_new(self) -> bool:
        """None existed before."""
        return self.before == 0 and self.after > 0

    @property
    def is_gone(self) -> bool:
        """None are left."""
        return self.after == 0 and self.before > 0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "before": self.before,
            "after": self.after,
            "delta": self.delta,
        }
        if self.kind:
            data["kind"] = self.kind
        return data

    def __str__(self) -> str:
        kind = f" ({self.kind})" if self.kind else ""
        return f"{self.name}{kind}: {self.before:,} -> {self.after:,} ({self.delta:+,})"


class Deltas(tuple[Delta, ...]):
    """A tuple of :class:`Delta` that prints as an aligned table (what :meth:`Growth.top` gives)."""

    __slots__ = ()

    def __str__(self) -> str:
        if not self:
            return "no type grew"
        return "\n".join(_table("type", tuple(self), None, compact=True))


def _deltas(
    before: Mapping[str, int], after: Mapping[str, int], kinds: Mapping[str, str] | None = None
) -> tuple[Delta, ...]:
    changed = []
    for name in before.keys() | after.keys():
        old, new = before.get(name, 0), after.get(name, 0)
        if old != new:
            changed.append(Delta(name, old, new, (kinds or {}).get(name, "")))
    changed.sort(key=lambda d: (-abs(d.delta), -d.delta, d.name))
    return tuple(changed)


def _optional_delta(before: int | None, after: int | None) -> int | None:
    return None if before is None or after is None else after - before


@dataclass(frozen=True, slots=True)
class Growth:
    """What changed between two snapshots: ``after - before``.

    ``types`` holds every type whose count changed, increases and decreases,
    largest change first; ``containers`` every module/class container whose
    length changed.  ``blocks``, ``traced`` and ``rss`` are the deltas of
    allocated blocks, traced bytes and resident memory (``None`` when either
    side could not measure it); ``notes`` says when the two snapshots are not
    comparable as they stand (other process, other Python).
    """

    types: tuple[Delta, ...]
    containers: tuple[Delta, ...]
    objects: int
    blocks: int
    rss: int | None
    traced: int | None
    elapsed: float
    collected: int | None
    notes: tuple[str, ...] = field(default=())
    memory: MemoryGrowth | None = None
    """How memory grew and what kind of growth it is (Python objects, allocator
    retention, native), when both snapshots carry a memory breakdown."""

    @classmethod
    def between(cls, before: Snapshot, after: Snapshot) -> Growth:
        """The growth from ``before`` to ``after``."""
        notes = []
        if before.pid != after.pid:
            notes.append(
                f"the snapshots come from different processes (pid {before.pid} -> {after.pid})"
            )
        if before.python != after.python:
            notes.append(
                f"the snapshots come from different Pythons ({before.python} -> {after.python}); "
                "type counts are not directly comparable"
            )
        if after.time < before.time:
            notes.append("the 'before' snapshot was taken after the 'after' snapshot")
        kinds = {**before.container_types, **after.container_types}
        return cls(
            types=_deltas(before.types, after.types),
            containers=_deltas(before.containers, after.containers, kinds),
            objects=after.objects - before.objects,
            blocks=after.blocks - before.blocks,
            rss=_optional_delta(before.rss, after.rss),
            traced=_optional_delta(before.traced, after.traced),
            elapsed=after.time - before.time,
            collected=after.collected,
            notes=tuple(notes),
            memory=(
                None
                if before.memory is None or after.memory is None
                else after.memory.diff(before.memory)
            ),
        )

    @property
    def increased(self) -> tuple[Delta, ...]:
        """Types whose count went up, largest increase first."""
        return tuple(d for d in self.types if d.delta > 0)

    @property
    def decreased(self) -> tuple[Delta, ...]:
        """Types whose count went down, largest decrease first."""
        return tuple(d for d in self.types if d.delta < 0)

    @property
    def new_types(self) -> tuple[Delta, ...]:
        """Types that had no live objects before."""
        return tuple(d for d in self.types if d.is_new)

    @property
    def vanished_types(self) -> tuple[Delta, ...]:
        """Types that have no live objects left."""
        return tuple(d for d in self.types if d.is_gone)

    def top(self, n: int = 10) -> Deltas:
        """The ``n`` types whose count grew most, largest increase first.

        Decreases are left out (they are in :attr:`types` and :attr:`decreased`).  The
        result is a tuple of :class:`Delta` that prints as a table:

        >>> import dataclasses
        >>> a = snapshot(memory=False)
        >>> b = dataclasses.replace(a, types={**a.types, "app.Item": 500})
        >>> print((b - a).top(5))
        type      before  after  change
        app.Item       0    500    +500  (new)
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative integer, not {n!r:.40}")
        return Deltas(self.increased[:n])

    def types_changed(self, name: str) -> int:
        """The change in the count of type ``name`` (0 when it did not change)."""
        for d in self.types:
            if d.name == name:
                return d.delta
        return 0

    def __bool__(self) -> bool:
        """True when anything was counted to change."""
        return bool(self.types or self.containers or self.blocks)

    def to_dict(self, limit: int | None = None) -> dict[str, Any]:
        """A JSON-safe dict of the growth; ``limit`` caps the ``types`` and ``containers`` lists."""
        return {
            "types": [d.to_dict() for d in self.types[:limit]],
            "containers": [d.to_dict() for d in self.containers[:limit]],
            "objects": self.objects,
            "blocks": self.blocks,
            "rss": self.rss,
            "traced": self.traced,
            "elapsed": self.elapsed,
            "collected": self.collected,
            "notes": list(self.notes),
            "memory": None if self.memory is None else self.memory.to_dict(),
        }

    def format(self, limit: int | None = None) -> str:
        """The growth as an aligned table; ``limit`` caps the rows of each table."""
        lines = [
            f"Growth over {self.elapsed:.3f} s: {self.objects:+,} tracked objects, "
            f"{self.blocks:+,} allocated blocks"
            + (f", traced {format_bytes_delta(self.traced)}" if self.traced is not None else "")
            + (f", RSS {format_bytes_delta(self.rss)}" if self.rss is not None else "")
        ]
        lines.extend(f"Note: {note}" for note in self.notes)
        lines.extend(_table("type", self.types, limit))
        lines.extend(_table("module/class container", self.containers, limit, length=True))
        if not self.types and not self.containers:
            lines.append("No type count or container length changed.")
        if self.memory is not None and self.memory.kind != "none":
            lines.extend(["", str(self.memory)])
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _table(
    title: str,
    rows: tuple[Delta, ...],
    limit: int | None,
    length: bool = False,
    *,
    compact: bool = False,
) -> Iterator[str]:
    if not rows:
        return
    shown = rows if limit is None else rows[:limit]
    names = [f"{d.name} ({d.kind})" if d.kind else d.name for d in shown]
    header = ("len before", "len after") if length else ("before", "after")
    cells = [(f"{d.before:,}", f"{d.after:,}", f"{d.delta:+,}") for d in shown]
    width = max(len(title), *(len(n) for n in names))
    # The full tables keep fixed columns (so that two tables line up); compact sizes them.
    cols = (
        [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate((*header, "change"))]
        if compact
        else [12, 12, 10]
    )
    if not compact:
        yield ""
    yield (
        f"{title:<{width}}  {header[0]:>{cols[0]}}  {header[1]:>{cols[1]}}  {'change':>{cols[2]}}"
    )
    for name, d, (before, after, change) in zip(names, shown, cells, strict=True):
        mark = "  (new)" if d.is_new else "  (gone)" if d.is_gone else ""
        yield (
            f"{name:<{width}}  {before:>{cols[0]}}  {after:>{cols[1]}}  {change:>{cols[2]}}{mark}"
        )
    if len(shown) < len(rows):
        yield f"... and {len(rows) - len(shown):,} more"


class Tracker:
    """Measures the growth over a block of code; reusable, nestable, per-thread.

    >>> with track() as t:
    ...     keep = [set() for _ in range(5)]
    >>> t.growth.types_changed("set")
    5

    ``start()`` and ``stop()`` do the same without a ``with`` block.  Each
    thread keeps its own stack of starts, so one tracker may be used in several
    threads and nested in itself; :attr:`growth` is the last one stopped.
    """

    def __init__(self, *, collect: bool = True) -> None:
        if not isinstance(collect, bool):
            raise TypeError(f"collect must be True or False, not {collect!r:.40}")
        self._collect = collect
        self._local = threading.local()
        self._growth: Growth | None = None

    def _stack(self) -> list[Snapshot]:
        stack: list[Snapshot] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def start(self) -> Tracker:
        """Take the 'before' snapshot."""
        stack = self._stack()
        stack.append(_take(collect=self._collect))
        return self

    def stop(self) -> Growth:
        """Take the 'after' snapshot; return the growth since ``start()`` (also kept as :attr:`growth`)."""
        stack = self._stack()
        if not stack:
            raise LeakscopeError("Tracker.stop() called without a matching start() in this thread")
        after = _take(collect=self._collect)
        growth = after - stack.pop()
        self._growth = growth
        return growth

    @property
    def growth(self) -> Growth:
        """The growth measured by the last ``stop()``."""
        if self._growth is None:
            raise LeakscopeError("this tracker has not measured anything yet: call stop() first")
        return self._growth

    def __enter__(self) -> Tracker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def track(*, collect: bool = True) -> Tracker:
    """A :class:`Tracker`: ``with leakscope.track() as t: work()`` then ``t.growth``."""
    return Tracker(collect=collect)
