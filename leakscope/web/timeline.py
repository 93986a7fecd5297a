"""The timeline: heap censuses taken now and then, the first one kept as the baseline.

::

    timeline = Timeline(interval=10.0, history=360, clock=time.monotonic)
    if timeline.due():                         # a point is due (and nobody else takes it)
        timeline.take(table)                   # one heap census; the points are bounded
    timeline.window()                          # HeapWindow of the first and latest census

The first points come sooner (after 1/8, 1/4, 1/2 of the interval), so charts have points
from the first seconds on.  A point is a heap census (types, objects) when the owner's
budget allows one, else a light point (:meth:`Timeline.light`: RSS, blocks, routes;
``objects`` None); the growth and the census window compare census points only.  :meth:`Timeline.take` may also be
called directly (a test, an admin action) to force a census.  The owner serializes
calls (a lock); the census itself runs outside any lock of the request path.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from leakscope._heap import rss_bytes, tracked_census
from leakscope.web.table import TOP_TYPES, RouteTable
from leakscope.web.verdict import HeapWindow

__all__ = ["GROWING", "ROUTES", "TYPES", "Timeline"]

TYPES = 8  # most numerous types kept per point
GROWING = 5  # types that grew most since the previous point
ROUTES = 5  # routes retaining most, per point
CENSUS_SECONDS_PER_BLOCK = 1e-7  # a heap census before the first one was timed (measured: 87
# ms for 1M tracked lists, about 2.2M blocks; 15 ms for a Flask worker's 150k blocks)


class Timeline:
    """Heap census points at most ``history`` long, one every ``interval`` seconds.

    >>> now = [0.0]
    >>> t = Timeline(interval=8.0, history=3, clock=lambda: now[0])
    >>> t.due(), t.due()
    (True, False)
    >>> now[0] = 1.0
    >>> t.due()
    True
    """

    def __init__(
        self, interval: float, history: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.history = history
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        """No points; the first is due at once."""
        self.points: list[dict[str, Any]] = []  # a list: see RouteStats.recent
        self.baseline: dict[str, Any] | None = None
        self.latest: dict[str, Any] | None = None
        self.baseline_types: dict[str, int] = {}
        self.latest_types: dict[str, int] = {}
        self._baseline_requests: dict[str, int] = {}
        self._latest_requests: dict[str, int] = {}
        self.next_at = self.clock()
        self.cost = 0.0  # seconds the last census took: what the next one needs of the budget

    def due(self, now: float | None = None) -> bool:
        """Whether a point is due now; if so, the next one is scheduled (claimed)."""
        now = self.clock() if now is None else now
        if now < self.next_at:
            return False
        self.next_at = now + self.interval * min(1.0, 2.0 ** (len(self.points) - 3))
        return True

    def postpone(self, now: float | None = None) -> None:
        """A due point could not be taken (over budget): try again a quarter interval later."""
        now = self.clock() if now is None else now
        self.next_at = now + self.interval / 4

    def census(self) -> tuple[dict[str, int], int, dict[str, Any]]:
        """Count the heap (the slow part, outside any lock): types, total, and the point."""
        counts, total = tracked_census()
        previous = self.latest_types  # replaced, never changed in place
        growing = sorted(
            ((name, n - previous.get(name, 0)) for name, n in counts.items()),
            key=lambda kv: (-kv[1], kv[0]),
        )
        point: dict[str, Any] = {
            "time": time.time(),
            "rss": rss_bytes(),
            "blocks": sys.getallocatedblocks(),
            "objects": total,
            "types": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TYPES]),
            # The types that grew most since the previous point (none at the first).
            "growing": dict([(n, d) for n, d in growing if d > 0 and previous][:GROWING]),
        }
        return counts, total, point

    def add(self, counts: dict[str, int], point: dict[str, Any], table: RouteTable) -> None:
        """Append a census point, with what the routes retaining most retained lately."""
        point["routes"] = table.retaining(ROUTES)
        requests = table.requests()
        if self.baseline is None:
            self.baseline, self.baseline_types, self._baseline_requests = point, counts, requests
        self.latest, self.latest_types, self._latest_requests = point, counts, requests
        self.points.append(point)
        del self.points[: -self.history]

    def light(self, table: RouteTable) -> dict[str, Any]:
        """Append a point without a heap census (``objects`` None, no types); returns it."""
        point: dict[str, Any] = {
            "time": time.time(),
            "rss": rss_bytes(),
            "blocks": sys.getallocatedblocks(),
            "objects": None,
            "types": {},
            "growing": {},
            "routes": table.retaining(ROUTES),
        }
        self.points.append(point)
        del self.points[: -self.history]
        return point

    def estimated_cost(self) -> float:
        """Seconds the next heap census will take: the last one's, else guessed from the heap."""
        if self.cost:
            return self.cost
        return sys.getallocatedblocks() * CENSUS_SECONDS_PER_BLOCK

    def take(self, table: RouteTable) -> dict[str, Any]:
        """Take a point now (census and append); returns it."""
        counts, _, point = self.census()
        self.add(counts, point, table)
        return point

    def window(self) -> HeapWindow | None:
        """The first and latest census, None until there are two."""
        if self.baseline is None or self.latest is self.baseline:
            return None
        return HeapWindow(
            self.baseline_types, self.latest_types, self._baseline_requests, self._latest_requests
        )

    def growth(self, rss: int | None, blocks: int) -> dict[str, Any]:
        """``status()["growth"]``: RSS, blocks, objects and types since the first census."""
        baseline, latest = self.baseline, self.latest
        types: list[dict[str, Any]] = []
        if baseline is not None:
            before, after = self.baseline_types, self.latest_types
            deltas = [(n, after.get(n, 0) - before.get(n, 0)) for n in before.keys() | after.keys()]
            deltas.sort(key=lambda nd: (-abs(nd[1]), nd[0]))
            types = [{"type": n, "delta": d} for n, d in deltas[:TOP_TYPES] if d]
        return {
            "rss": None
            if baseline is None or rss is None or baseline["rss"] is None
            else rss - baseline["rss"],
            "blocks": 0 if baseline is None else blocks - baseline["blocks"],
            "objects": None
            if baseline is None or latest is None
            else latest["objects"] - baseline["objects"],
            "types": types,
        }

    def copy_points(self) -> list[dict[str, Any]]:
        """The points, copied (their ``types`` too): safe to hand out."""
        return [dict(p, types=dict(p["types"])) for p in self.points]
