"""Whether a route leaks, from its recent samples: the one decision of the web adapters.

A route is leaking when what its requests retain stays positive over several samples
after its warm-up, and the retained objects it follows by weak reference mostly stay
alive (a cache with a bound drops them), or a module or class container grows with them.
Otherwise the heap censuses decide, once enough of the route's requests ran between two
of them: when the retained type did not grow by a quarter of what those requests would
have retained, something dropped them (a bounded cache); until then, objects that cannot
be followed (dicts, lists) are not called leaking::

    route_leaking([1, 1, 1, 1], still_alive=True, grew_container=False, top=("app.Item", 4),
                  route="GET /items", heap=None)        # True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MIN_EXPECTED", "MIN_SAMPLES", "HeapWindow", "route_leaking"]

MIN_SAMPLES = 4
"""Samples after warm-up needed before a route can be called leaking."""
MIN_EXPECTED = 32
"""Retained objects the heap census must expect before it can contradict the samples."""


@dataclass(frozen=True)
class HeapWindow:
    """Two heap censuses (the first and the latest) and each route's requests at each.

    >>> w = HeapWindow({"dict": 10}, {"dict": 12}, {"r": 0}, {"r": 100})
    >>> w.grew("dict"), w.requests("r")
    (2, 100)
    """

    types_before: dict[str, int]
    types_after: dict[str, int]
    requests_before: dict[str, int]
    requests_after: dict[str, int]

    def grew(self, type_name: str) -> int:
        """How many more objects of ``type_name`` the latest census counted than the first."""
        return self.types_after.get(type_name, 0) - self.types_before.get(type_name, 0)

    def requests(self, route: str) -> int:
        """Requests ``route`` served between the two censuses."""
        return self.requests_after.get(route, 0) - self.requests_before.get(route, 0)


def route_leaking(
    objects: Sequence[int],
    *,
    still_alive: bool | None,
    grew_container: bool,
    top: tuple[str, int] | None,
    route: str,
    heap: HeapWindow | None,
) -> bool:
    """Whether a route leaks, from the objects its recent samples retained.

    ``objects``: retained objects per recent sample; ``still_alive``: whether most followed
    objects are alive (None: too few followed); ``grew_container``: a module or class
    container grew; ``top``: the most retained type and its count over the samples;
    ``heap``: the census window, None before a second census.
    """
    n = len(objects)
    ordered = sorted(objects)
    if n < MIN_SAMPLES or ordered[n // 2] < 1 or sum(o > 0 for o in ordered) * 4 < n * 3:
        return False
    if still_alive is False:
        return False  # the followed objects were dropped: a cache with a bound
    if grew_container:
        return True  # a module or class container grew with them: their holder
    # Nothing followed says whether they stay, or they stay and no container grew: the heap
    # censuses say whether the retained type grew with the route's requests between them.
    expected, grew = 0.0, 0
    if heap is not None and top is not None:
        kind, count = top
        expected = count / n * heap.requests(route)
        grew = heap.grew(kind)
    if expected < MIN_EXPECTED:
        # Too few requests between two censuses (or one census) to tell: followed objects
        # that stay alive are a leak; objects that cannot be followed are not yet known
        # (replaced entries of a bounded cache look the same).
        return still_alive is True
    return grew * 4 >= expected
