"""Reference cycles: what the cyclic collector frees, grouped and named.

:func:`find_cycles` runs a collection with ``gc.DEBUG_SAVEALL`` (and a
``gc.callbacks`` hook) so that the objects the collector finds are kept for a
moment, groups them into strongly connected components and reports each kind of
cycle once, with a count:

    >>> class Node:
    ...     __module__ = "app"
    ...     def __init__(self, parent=None):
    ...         self.parent, self.children = parent, []
    ...         if parent is not None:
    ...             parent.children.append(self)
    >>> def build_tree():
    ...     for _ in range(500):
    ...         Node(Node())
    >>> print(find_cycles(build_tree))
    500 reference cycles in 2,000 garbage objects
      Node <-> Node: 500 cycles of 3 objects (app.Node x2, list)
        Node.children[0] -> Node.parent -> Node

Since PEP 442 cycles with ``__del__`` are collected and ``gc.garbage`` stays
empty, so reading ``gc.garbage`` alone finds nothing; ``DEBUG_SAVEALL`` sees them.
The collector's flags, callbacks, ``gc.garbage`` (the same list, with the same
items) and enabled state are restored exactly, even when ``func`` raises.
"""

from __future__ import annotations

import contextlib
import gc
import weakref
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from leakscope._fields import Fields
from leakscope._heap import object_type_name
from leakscope._interpreter import preserved
from leakscope._refgraph import has_finalizer, label_chain, short_name

__all__ = ["Cycle", "CycleReport", "find_cycles"]

_CONTAINERS = frozenset({"dict", "list", "tuple", "set", "frozenset", "cell"})
_RING_HOPS = 10  # hops shown before a long cycle is cut short


@dataclass(frozen=True)
class Cycle:
    """One kind of reference cycle, seen ``count`` times.

    ``ring`` is one example walked around the cycle: ``(type, label)`` pairs where
    ``label`` is the reference from that object to the next one (the last points
    back to the first); ``hops`` is the example's full length when the ring was
    cut short.
    """

    size: int
    types: tuple[tuple[str, int], ...]
    ring: tuple[tuple[str, str], ...]
    text: str
    title: str
    hops: int
    has_finalizer: bool
    count: int = 1

    def __str__(self) -> str:
        kinds = ", ".join(f"{name} x{n}" if n > 1 else name for name, n in self.types[:6])
        if len(self.types) > 6:
            kinds += ", ..."
        cycles = "1 cycle" if self.count == 1 else f"{self.count:,} cycles"
        fin = " [has __del__]" if self.has_finalizer else ""
        objects = "object" if self.size == 1 else "objects"
        return f"{self.title}: {cycles} of {self.size:,} {objects} ({kinds}){fin}\n    {self.text}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "types": [list(t) for t in self.types],
            "ring": [list(r) for r in self.ring],
            "text": self.text,
            "title": self.title,
            "hops": self.hops,
            "has_finalizer": self.has_finalizer,
            "count": self.count,
        }

    @classmethod
    def from_dict(cls, data: object, where: str = "") -> Cycle:
        """Rebuild a cycle from :meth:`to_dict`; :class:`DataError` naming the field if malformed."""
        f = Fields(data, where)
        return cls(
            size=f.integer("size", minimum=1),
            types=tuple(f.pairs("types", str, int)),
            ring=tuple(f.pairs("ring", str, str)),
            text=f.text("text"),
            title=f.text("title"),
            hops=f.integer("hops", minimum=0),
            has_finalizer=f.flag("has_finalizer"),
            count=f.integer("count", minimum=1),
        )


@dataclass(frozen=True)
class CycleReport:
    """The garbage one collection (or ``func``'s run) produced, grouped into cycles.

    ``uncollectable``: types of objects left in ``gc.garbage`` (legacy finalizers);
    ``resurrected``: types of objects a ``__del__`` brought back to life.
    """

    cycles: tuple[Cycle, ...]
    garbage: int
    collections: int
    uncollectable: tuple[str, ...] = ()
    resurrected: tuple[str, ...] = ()

    @property
    def has_finalizers(self) -> bool:
        """True when a cycle has a member with ``__del__`` (``tp_finalize``)."""
        return any(c.has_finalizer for c in self.cycles)

    @property
    def total(self) -> int:
        """The number of cycles, identical ones counted each time."""
        return sum(c.count for c in self.cycles)

    def __str__(self) -> str:
        if not self.cycles:
            head = f"no reference cycles in {self.garbage:,} garbage objects"
        else:
            n = self.total
            head = (
                f"{n:,} reference cycle{'s' if n != 1 else ''} in {self.garbage:,} garbage objects"
            )
        lines = [head]
        if self.resurrected:
            lines.append(f"  resurrected by __del__: {_summary(self.resurrected)}")
        if self.uncollectable:
            lines.append(f"  uncollectable (in gc.garbage): {_summary(self.uncollectable)}")
        lines += [f"  {c!s}" for c in self.cycles]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cycles": [c.to_dict() for c in self.cycles],
            "garbage": self.garbage,
            "collections": self.collections,
            "has_finalizers": self.has_finalizers,
            "uncollectable": list(self.uncollectable),
            "resurrected": list(self.resurrected),
        }

    @classmethod
    def from_dict(cls, data: object) -> CycleReport:
        """Rebuild a report from :meth:`to_dict`; :class:`DataError` naming the field if malformed.

        >>> CycleReport.from_dict({"cycles": [], "garbage": 0, "collections": 1}).total
        0
        >>> CycleReport.from_dict({"cycles": [], "garbage": -1, "collections": 1})
        Traceback (most recent call last):
            ...
        leakscope.errors.DataError: garbage: must be an integer >= 0, not -1
        """
        f = Fields(data)
        return cls(
            cycles=tuple(
                Cycle.from_dict(c, f"cycles[{i}]") for i, c in enumerate(f.items("cycles"))
            ),
            garbage=f.integer("garbage", minimum=0),
            collections=f.integer("collections", minimum=0),
            uncollectable=tuple(f.strings("uncollectable", optional=True)),
            resurrected=tuple(f.strings("resurrected", optional=True)),
        )

    def to_dot(self) -> str:
        """Graphviz DOT text, one ring per kind of cycle."""
        from leakscope._dot import cycle_dot

        return cycle_dot(
            str(self).splitlines()[0],
            [(f"{c.title}: x{c.count}", c.ring) for c in self.cycles],
        )


def _summary(names: tuple[str, ...]) -> str:
    return ", ".join(f"{n} x{c}" if c > 1 else n for n, c in Counter(names).most_common())


# --- the collection --------------------------------------------------------------


def find_cycles(func: Callable[[], object] | None = None, *, collect: bool = True) -> CycleReport:
    """Report the reference cycles the collector finds.

    Without ``func``: the garbage a collection finds now.  With ``func``: earlier
    garbage is collected first, then ``func()`` runs and the garbage it leaves is
    reported.  ``collect=False`` runs no final collection: only the collections
    that happen on their own (during ``func``) are examined.  The garbage is freed
    afterwards, as a normal collection would.
    """
    if func is not None and not callable(func):
        raise TypeError(f"find_cycles() needs a callable or None, not {type(func).__name__}")
    records: list[list[int]] = []  # [garbage length at start, at stop, uncollectable]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            records.append([len(gc.garbage), -1, 0])
        elif records:
            records[-1][1] = len(gc.garbage)
            records[-1][2] = int(info.get("uncollectable", 0))

    with preserved() as state:
        if func is not None:
            gc.collect()
        gc.garbage[:] = []
        gc.callbacks.append(on_gc)
        gc.set_debug(state.gc_debug | gc.DEBUG_SAVEALL)
        if func is not None:
            func()
        watched = _finalizer_refs() if collect else []
        if collect:
            gc.collect()
        gc.set_debug(state.gc_debug)
        gc.callbacks.remove(on_gc)
        garbage = list(gc.garbage)
        gc.garbage[:] = []
        try:
            report = _analyze(garbage, records, watched, list(state.gc_garbage))
        finally:
            garbage.clear()
            watched.clear()
    if collect:
        gc.collect()  # free what DEBUG_SAVEALL kept; finalizers do not run twice
    return report


def _finalizer_refs() -> list[tuple[weakref.ref[Any], int, int]]:
    """Weak references to every tracked object whose type has ``__del__``."""
    cache: dict[type, bool] = {}
    out: list[tuple[weakref.ref[Any], int, int]] = []
    for obj in gc.get_objects():
        tp = type(obj)
        has = cache.get(tp)
        if has is None:
            has = cache[tp] = has_finalizer(tp)
        if has:
            with contextlib.suppress(TypeError):
                out.append((weakref.ref(obj), id(obj), id(tp)))
    del obj
    return out


def _analyze(
    garbage: list[Any],
    records: list[list[int]],
    watched: list[tuple[weakref.ref[Any], int, int]],
    preexisting: list[Any],
) -> CycleReport:
    legacy: list[str] = [object_type_name(o) for o in preexisting]
    preexisting.clear()
    for start, stop, uncollectable in records:
        if uncollectable and stop >= 0:
            legacy += [
                object_type_name(o) for o in garbage[max(start, stop - uncollectable) : stop]
            ]
    ids = {id(o): i for i, o in enumerate(garbage)}
    resurrected: list[str] = []
    dead = {oid: tid for ref, oid, tid in watched if ref() is None and oid not in ids}
    if dead:
        for obj in gc.get_objects():
            if dead.get(id(obj)) == id(type(obj)):
                resurrected.append(object_type_name(obj))
        del obj
    adjacency = [[ids[r] for r in map(id, gc.get_referents(o)) if r in ids] for o in garbage]
    has_del: dict[type, bool] = {}
    groups: dict[tuple[Any, ...], Cycle] = {}
    for comp in _strongly_connected(adjacency):
        if len(comp) == 1 and comp[0] not in adjacency[comp[0]]:
            continue
        cycle = _describe(comp, garbage, adjacency, has_del)
        key = (cycle.size, cycle.types, cycle.text)
        seen = groups.get(key)
        groups[key] = cycle if seen is None else _replace_count(seen, seen.count + 1)
    cycles = sorted(groups.values(), key=lambda c: (-c.count * c.size, c.title))
    return CycleReport(
        cycles=tuple(cycles),
        garbage=len(garbage),
        collections=len(records),
        uncollectable=tuple(legacy),
        resurrected=tuple(resurrected),
    )


def _replace_count(cycle: Cycle, count: int) -> Cycle:
    return Cycle(
        cycle.size,
        cycle.types,
        cycle.ring,
        cycle.text,
        cycle.title,
        cycle.hops,
        cycle.has_finalizer,
        count,
    )


def _strongly_connected(adjacency: list[list[int]]) -> list[list[int]]:
    """Tarjan's algorithm without recursion (a 100k-object chain is fine)."""
    n = len(adjacency)
    index = [-1] * n
    low = [0] * n
    on_stack = [False] * n
    stack: list[int] = []
    out: list[list[int]] = []
    counter = 0
    for root in range(n):
        if index[root] != -1:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work = [(root, 0)]
        while work:
            v, i = work[-1]
            edges = adjacency[v]
            descended = False
            while i < len(edges):
                w = edges[i]
                i += 1
                if index[w] == -1:
                    work[-1] = (v, i)
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, 0))
                    descended = True
                    break
                if on_stack[w] and index[w] < low[v]:
                    low[v] = index[w]
            if descended:
                continue
            work.pop()
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    comp.append(w)
                    if w == v:
                        break
                out.append(comp)
    return out


def _describe(
    comp: list[int], garbage: list[Any], adjacency: list[list[int]], has_del: dict[type, bool]
) -> Cycle:
    members = set(comp)
    counts = Counter(object_type_name(garbage[i]) for i in comp)
    types = tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    finalizer = False
    for i in comp:
        tp = type(garbage[i])
        flag = has_del.get(tp)
        if flag is None:
            flag = has_del[tp] = has_finalizer(tp)
        finalizer = finalizer or flag
    # the shortest ring through a named member (not a bare container); for small
    # cycles every named member is tried and the first text in order wins, so that
    # identical cycles read the same whichever member the collector listed first
    named_ids = [i for i in comp if object_type_name(garbage[i]) not in _CONTAINERS] or comp
    candidates = sorted(named_ids)[: 8 if len(comp) <= 64 else 1]
    text, ring, chain_types, hops, cut = min(
        (_walk(start, members, garbage, adjacency) for start in candidates),
        key=lambda r: ("." not in r[2][0][1], r[0]),  # user types first, then by text
    )
    members_text = chain_types[:-1]
    named = [s for s, full in members_text if full not in _CONTAINERS] or [
        s for s, _ in members_text
    ]
    if cut:
        named = []
    if named and len(named) <= 4:
        title = " <-> ".join(named) if len(named) > 1 else f"{named[0]} -> itself"
    else:
        title = f"{len(comp):,}-object cycle"
    return Cycle(
        size=len(comp),
        types=types,
        ring=ring,
        text=text,
        title=title,
        hops=hops,
        has_finalizer=finalizer,
    )


def _walk(
    start: int, members: set[int], garbage: list[Any], adjacency: list[list[int]]
) -> tuple[str, tuple[tuple[str, str], ...], list[tuple[str, str]], int, bool]:
    """Walk the shortest ring from ``start`` back to itself; describe it."""
    parent = {start: -1}
    queue = deque([start])
    last = start
    while queue:
        v = queue.popleft()
        if start in adjacency[v]:
            last = v
            break
        for w in adjacency[v]:
            if w in members and w not in parent:
                parent[w] = v
                queue.append(w)
    ring_ids = [start]
    v = last
    while v != start:
        ring_ids.append(v)
        v = parent[v]
    ring_ids[1:] = reversed(ring_ids[1:])
    ring_ids.append(start)
    hops = len(ring_ids) - 1
    cut = hops > _RING_HOPS
    chain = [garbage[i] for i in (ring_ids[:_RING_HOPS] if cut else ring_ids)]
    steps = label_chain(chain)
    text = _ring_text(chain, steps, closed=not cut)
    ring = _ring(chain, steps)
    if cut:
        shown = len(steps)
        text += f" ... ({hops - shown:,} more references) ... -> {short_name(chain[0])}"
        ring += ((object_type_name(chain[-1]), f"... {hops - shown:,} more"),)
    chain_types = [(short_name(o), object_type_name(o)) for o in chain]
    chain.clear()
    return text, ring, chain_types, hops, cut


def _ring(chain: list[Any], steps: list[tuple[int, str]]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    prev = 0
    for index, label in steps:
        out.append((object_type_name(chain[prev]), label))
        prev = index
    return tuple(out)


def _ring_text(chain: list[Any], steps: list[tuple[int, str]], *, closed: bool = True) -> str:
    """``Node.parent -> Node.children[0] -> Node``: bare containers are not named."""
    parts = [short_name(chain[0])]
    for n, (index, label) in enumerate(steps):
        parts.append(label)
        obj = chain[index]
        final = closed and n == len(steps) - 1
        if final or object_type_name(obj) not in _CONTAINERS:
            parts.append(f" -> {short_name(obj)}")
    return "".join(parts)
