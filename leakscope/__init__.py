"""leakscope: find Python memory leaks.

What leaks, where it was allocated and what keeps it alive::

    import leakscope

    before = leakscope.snapshot()
    work()
    print(leakscope.snapshot() - before)      # a Growth: increases and decreases

    with leakscope.track() as t:
        work()
    print(t.growth.top(5))
"""

from __future__ import annotations

from leakscope.errors import LeakError, LeakscopeError, MissingDependencyError, SnapshotError
from leakscope.snapshot import Delta, Growth, Snapshot, Tracker, snapshot, track

__version__ = "0.1.0"

__all__ = [
    "Delta",
    "Growth",
    "LeakError",
    "LeakscopeError",
    "MissingDependencyError",
    "Snapshot",
    "SnapshotError",
    "Tracker",
    "__version__",
    "snapshot",
    "track",
]
