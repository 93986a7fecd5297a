"""The route table: per-route request counts and recent samples, bounded in routes.

::

    table = RouteTable()
    table.record("GET /items/{id}", sample)     # sample: a Sample, or None (not measured)
    table.rows(heap)                            # the rows of status()["routes"]

Not thread-safe by itself: its owner (:class:`leakscope.web.core.Monitor`) holds a lock.
"""

from __future__ import annotations

import itertools
from typing import Any

from leakscope._heap import SampleRef
from leakscope.web.holders import holder
from leakscope.web.naming import OTHER, OWN
from leakscope.web.verdict import MIN_SAMPLES, HeapWindow, route_leaking

__all__ = [
    "FOLLOWED",
    "MAX_ROUTES",
    "TOP_TYPES",
    "WARMUP_SAMPLES",
    "RouteStats",
    "RouteTable",
    "Sample",
    "given",
]

WARMUP_SAMPLES = 3
"""First samples of a route: caches being filled, not counted."""
WINDOW = 8
"""Recent samples per route that decide whether it leaks."""
FOLLOWED = 64
"""Retained objects followed by weak reference per route."""
MAX_ROUTES = 256
TOP_TYPES = 10
SITE_TRIES = 3
"""Traced samples per route that look for allocation lines (some types have none to find)."""
FORMING = WARMUP_SAMPLES + WINDOW + 2
"""A route's first samples, during which its verdict forms (and is published promptly)."""


class Sample:
    """What one sampled request retained: objects, bytes, blocks, types, containers grown.

    >>> Sample(2, 96, {"app.Item": 2}, []).objects
    2
    """

    __slots__ = (
        "blocks",
        "bytes",
        "containers",
        "kinds",
        "objects",
        "refs",
        "sites",
        "traced",
        "types",
    )

    def __init__(
        self, objects: int, nbytes: int, types: dict[str, int], refs: list[SampleRef]
    ) -> None:
        self.objects = objects
        self.bytes = nbytes
        self.blocks: int | None = None  # measured on some samples only
        self.types = types
        self.refs = refs
        self.containers: dict[str, int] = {}  # container key -> entries the request added
        self.kinds: dict[str, str] = {}  # container key -> its type name
        self.sites: dict[str, str] = {}  # type -> "file:line" where the request allocated it
        self.traced = False  # the request ran under tracemalloc (sites were looked for)


class RouteStats:
    """One route's counts, its recent samples and the retained objects it follows."""

    __slots__ = (
        "bytes_total",
        "counter",
        "objects_total",
        "recent",
        "refs",
        "sampled",
        "site_tries",
        "sites",
    )

    def __init__(self) -> None:
        # Requests are numbered by an atomic counter: counting one takes no lock.
        self.counter = itertools.count()
        self.sampled = 0
        self.sites: dict[str, str] = {}  # retained type -> where a request allocated one
        self.site_tries = 0  # traced samples: a type whose site is not found is given up
        # Since start, over every measured request: counters a query can rate.
        self.objects_total = 0
        self.bytes_total = 0
        # Lists, not deques: the census leaves out plain containers that leakscope's
        # objects hold, and a deque would break that chain.
        self.recent: list[Sample] = []
        self.refs: list[SampleRef] = []

    @property
    def requests(self) -> int:
        """Requests served under this route."""
        return given(self.counter)

    def add(self, sample: Sample) -> None:
        """Count a measured request; after the warm-up, keep it among the recent ones."""
        self.sampled += 1
        self.site_tries += sample.traced
        self.objects_total += sample.objects
        self.bytes_total += sample.bytes
        for kind, site in sample.sites.items():
            if len(self.sites) < 4 * TOP_TYPES:
                self.sites.setdefault(kind, site)
        refs, sample.refs = sample.refs, []
        if self.sampled <= WARMUP_SAMPLES:
            return
        self.recent.append(sample)
        del self.recent[:-WINDOW]
        for ref in refs:
            ref.sample = self.sampled
        self.refs.extend(refs)
        del self.refs[:-FOLLOWED]

    def wants_sites(self) -> bool:
        """Whether the route retains objects whose allocation line is not known yet (and was
        not looked for in :data:`SITE_TRIES` traced samples already)."""
        if self.site_tries >= SITE_TRIES or not self.recent or not self.recent[-1].types:
            return False
        return any(kind not in self.sites for kind in list(self.recent[-1].types)[:3])

    def retained(self) -> tuple[float, float]:
        """Objects and bytes retained per request over the recent samples."""
        n = len(self.recent)
        if not n:
            return 0.0, 0.0
        return sum(s.objects for s in self.recent) / n, sum(s.bytes for s in self.recent) / n

    def still_alive(self) -> bool | None:
        """Whether most retained objects followed since older samples are still alive.

        None when too few could be followed (dicts, lists and tuples take no weak reference).
        """
        followed = [r for r in self.refs if r.sample < self.sampled - 1]
        if len(followed) < MIN_SAMPLES:
            return None
        return sum(r() is not None for r in followed) * 2 >= len(followed)

    def to_dict(self, name: str, heap: HeapWindow | None = None) -> dict[str, Any]:
        """The route's row of ``status()["routes"]``; ``leaking`` from :func:`route_leaking`.

        ``leaking`` is decided on objects only: the blocks a request leaves also count what
        the server still holds at ``close()`` (header strings, the body), which differs
        from route to route, so they are reported, not judged.
        """
        recent = list(self.recent)
        n = len(recent)
        objects_per_request, bytes_per_request = self.retained()
        top = _summed(s.types for s in recent)[:TOP_TYPES]
        grown = _summed(s.containers for s in recent)[:TOP_TYPES]
        kinds = {k: v for s in recent for k, v in s.kinds.items()}
        sites = self.sites
        leaking = route_leaking(
            [s.objects for s in recent],
            still_alive=self.still_alive(),
            grew_container=bool(grown),
            top=top[0] if top else None,
            route=name,
            heap=heap,
        )
        return {
            "route": name,
            "requests": self.requests,
            "sampled": self.sampled,
            "retained_objects_per_request": objects_per_request,
            "retained_bytes_per_request": bytes_per_request,
            "retained_blocks_per_request": _mean(
                [s.blocks for s in recent if s.blocks is not None]
            ),
            "top_types": [
                {"type": t, "per_request": c / n, **({"site": sites[t]} if t in sites else {})}
                for t, c in top
                if c > 0
            ],
            "containers": [holder(key, kinds.get(key, ""), c / n) for key, c in grown],
            "retained_objects_total": self.objects_total,
            "retained_bytes_total": self.bytes_total,
            "leaking": leaking,
        }


def given(counter: itertools.count[int]) -> int:
    """How many numbers ``counter`` (from 0, step 1) has given, read from its repr.

    ``count(42)``: the next number, which the counter keeps to itself otherwise; reading it
    takes no lock and consumes nothing.

    >>> c = itertools.count(); next(c), next(c), given(c)
    (0, 1, 2)
    """
    text = repr(counter)
    return int(text[text.index("(") + 1 : -1])


def _mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else 0.0


def _summed(counts: Any) -> list[tuple[str, int]]:
    total: dict[str, int] = {}
    for one in counts:
        for key, c in one.items():
            total[key] = total.get(key, 0) + c
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))


class RouteTable:
    """Every route's :class:`RouteStats`, at most ``max_routes`` (then :data:`OTHER`)."""

    __slots__ = ("max_routes", "routes", "sampled")

    def __init__(self, max_routes: int = MAX_ROUTES) -> None:
        self.max_routes = max_routes
        self.routes: dict[str, RouteStats] = {}
        self.sampled = 0

    def record(self, name: str, sample: Sample | None) -> bool:
        """Count an ended request under ``name``, with its sample when it was measured.

        Requests to leakscope's own endpoints (:data:`~leakscope.web.naming.OWN`) are not
        the application's: not counted.  True while the route's verdict is forming (its
        first samples): the owner then publishes soon.
        """
        if name == OWN:
            return False
        entry = self.routes.get(name)
        if entry is None:
            if len(self.routes) >= self.max_routes:
                name = OTHER
                entry = self.routes.get(name)
            if entry is None:
                entry = self.routes[name] = RouteStats()
        next(entry.counter)
        if sample is None:
            return False
        self.sampled += 1
        entry.add(sample)
        return entry.sampled <= FORMING

    def count(self, name: str) -> bool:
        """Count an unmeasured request of a known route without a lock; False when the route
        is new or leakscope's own (then :meth:`record` it under the owner's lock)."""
        entry = self.routes.get(name)
        if entry is None:
            return False
        next(entry.counter)
        return True

    def rows(self, heap: HeapWindow | None = None) -> list[dict[str, Any]]:
        """Every route's row, leaking routes first, then by objects retained per request."""
        rows = [entry.to_dict(name, heap) for name, entry in self.routes.items()]
        rows.sort(key=lambda r: (not r["leaking"], -r["retained_objects_per_request"], r["route"]))
        return rows

    def requests(self) -> dict[str, int]:
        """Requests served so far, by route."""
        return {name: entry.requests for name, entry in self.routes.items()}

    def wants_sites(self) -> bool:
        """Whether some route retains objects whose allocation line is not known yet."""
        return any(entry.wants_sites() for entry in self.routes.values())

    def retaining(self, limit: int) -> dict[str, dict[str, float]]:
        """What the ``limit`` routes retaining most retained per request lately (timeline)."""
        retained = [(name, *e.retained()) for name, e in self.routes.items() if e.recent]
        retained.sort(key=lambda r: (-r[1], r[0]))
        return {name: {"objects": o, "bytes": b} for name, o, b in retained[:limit]}
