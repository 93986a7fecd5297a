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

from leakscope.cycles import Cycle, CycleReport, find_cycles
from leakscope.decorators import no_leaks, watch
from leakscope.errors import LeakError, LeakscopeError, MissingDependencyError, SnapshotError
from leakscope.gcmonitor import Advice, GCMonitor, GCReport, gc_advice, gc_monitor
from leakscope.memory import MemoryBreakdown, MemoryGrowth, memory_breakdown
from leakscope.retention import (
    CollectionWatch,
    Retention,
    RetentionPath,
    Size,
    assert_collected,
    expect_collected,
    sizeof,
    why_alive,
)
from leakscope.snapshot import Delta, Growth, Snapshot, Tracker, snapshot, track
from leakscope.verdict import Culprit, Holder, LeakReport, PerCall, Run, check

__version__ = "0.1.0"

__all__ = [
    "Advice",
    "CollectionWatch",
    "Culprit",
    "Cycle",
    "CycleReport",
    "Delta",
    "GCMonitor",
    "GCReport",
    "Growth",
    "Holder",
    "LeakError",
    "LeakReport",
    "LeakscopeError",
    "MemoryBreakdown",
    "MemoryGrowth",
    "MissingDependencyError",
    "PerCall",
    "Retention",
    "RetentionPath",
    "Run",
    "Size",
    "Snapshot",
    "SnapshotError",
    "Tracker",
    "__version__",
    "assert_collected",
    "check",
    "expect_collected",
    "find_cycles",
    "gc_advice",
    "gc_monitor",
    "memory_breakdown",
    "no_leaks",
    "sizeof",
    "snapshot",
    "track",
    "watch",
    "why_alive",
]
