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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leakscope._snapshot import Delta, Growth, Snapshot, Tracker, snapshot, track
    from leakscope.cycles import Cycle, CycleReport, find_cycles
    from leakscope.engine.check import check
    from leakscope.engine.model import Culprit, Holder, LeakReport, PerCall, Run
    from leakscope.engine.watch import no_leaks, watch
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

# The package is imported lazily: ``import leakscope`` (as pytest does for the plugin)
# loads only this file; each name is imported from its module on first use.
_EXPORTS: dict[str, str] = {
    "Advice": "leakscope.gcmonitor",
    "assert_collected": "leakscope.retention",
    "check": "leakscope.engine.check",
    "CollectionWatch": "leakscope.retention",
    "Culprit": "leakscope.engine.model",
    "Cycle": "leakscope.cycles",
    "CycleReport": "leakscope.cycles",
    "Delta": "leakscope._snapshot",
    "expect_collected": "leakscope.retention",
    "find_cycles": "leakscope.cycles",
    "gc_advice": "leakscope.gcmonitor",
    "gc_monitor": "leakscope.gcmonitor",
    "GCMonitor": "leakscope.gcmonitor",
    "GCReport": "leakscope.gcmonitor",
    "Growth": "leakscope._snapshot",
    "Holder": "leakscope.engine.model",
    "LeakError": "leakscope.errors",
    "LeakReport": "leakscope.engine.model",
    "LeakscopeError": "leakscope.errors",
    "memory_breakdown": "leakscope.memory",
    "MemoryBreakdown": "leakscope.memory",
    "MemoryGrowth": "leakscope.memory",
    "MissingDependencyError": "leakscope.errors",
    "no_leaks": "leakscope.engine.watch",
    "PerCall": "leakscope.engine.model",
    "Retention": "leakscope.retention",
    "RetentionPath": "leakscope.retention",
    "Run": "leakscope.engine.model",
    "Size": "leakscope.retention",
    "sizeof": "leakscope.retention",
    "Snapshot": "leakscope._snapshot",
    "snapshot": "leakscope._snapshot",
    "SnapshotError": "leakscope.errors",
    "track": "leakscope._snapshot",
    "Tracker": "leakscope._snapshot",
    "watch": "leakscope.engine.watch",
    "why_alive": "leakscope.retention",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'leakscope' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
