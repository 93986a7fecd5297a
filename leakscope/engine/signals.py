"""The signals a verdict reads and the rule that judges them.

A census counts live objects per type and the lengths of module/class containers; the
change between two censuses after a run is that run's growth.  :func:`assess` calls a
signal leaking when it grew in each of the last :data:`CONFIRM` runs at a per-call rate
that did not fall off, and settled when it stopped growing.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from leakscope._heap import tracked_census
from leakscope._roots import ATEXIT_KEY, LOGGERS_KEY, root_containers
from leakscope.engine.model import Run

__all__ = [
    "CONFIRM",
    "Assessment",
    "Census",
    "Measured",
    "assess",
    "changes",
    "settled",
    "take_census",
]

CONFIRM = 3  # trailing runs that must all grow for a leak
_RATIO = 0.6  # a leak's per-call rate may not fall below this fraction of the previous run's
_BLOCKS_FLOOR = 16  # allocated blocks a run must grow by (leakscope's own records add ~8 per run)
_RSS_FLOOR = 1 << 20  # resident bytes a run must grow by to count as growth

_LEAK, _CLEAN, _UNSURE = "leak", "clean", "unsure"


@dataclass(frozen=True, slots=True)
class Census:
    types: dict[str, int]
    containers: dict[str, int]
    container_types: dict[str, str]
    objects: int


def _extra_registries(lengths: dict[str, int], kinds: dict[str, str]) -> None:
    """Registries that module/class containers miss: atexit callbacks, logging's loggers."""
    atexit = sys.modules.get("atexit")
    count = getattr(atexit, "_ncallbacks", None)
    if callable(count):
        with contextlib.suppress(Exception):
            lengths[ATEXIT_KEY], kinds[ATEXIT_KEY] = int(count()), "atexit registry"
    logging = sys.modules.get("logging")
    logger_class = getattr(logging, "Logger", None) if logging is not None else None
    manager = getattr(logger_class, "manager", None) if isinstance(logger_class, type) else None
    registry = getattr(manager, "loggerDict", None) if manager is not None else None
    if type(registry) is dict:
        lengths[LOGGERS_KEY], kinds[LOGGERS_KEY] = dict.__len__(registry), "dict"


def take_census() -> Census:
    counts, total = tracked_census()
    lengths, kinds = root_containers()
    _extra_registries(lengths, kinds)
    return Census(counts, lengths, kinds, total)


def changes(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, count in after.items():
        delta = count - before.get(name, 0)
        if delta:
            out[name] = delta
    for name, count in before.items():
        if name not in after and count:
            out[name] = -count
    return out


@dataclass(frozen=True, slots=True)
class Measured:
    """One run with the per-signal growth the verdict needs."""

    run: Run
    types: dict[str, int]
    containers: dict[str, int]
    garbage: int  # cyclic garbage left while gc was disabled during the run (0 otherwise)
    gc_garbage: int


def _state(growth: Sequence[int], calls: Sequence[int], floor: float) -> str:
    """``leak`` when the last runs all grew at a steady per-call rate; ``clean`` when settled."""
    k = len(growth)
    if k == 0 or growth[-1] < floor:
        return _CLEAN
    m = min(CONFIRM, k)
    if k >= 2 and all(growth[i] >= floor for i in range(k - m, k)):
        rates = [growth[i] / calls[i] for i in range(k - m, k)]
        if all(rates[i] >= _RATIO * rates[i - 1] for i in range(1, m)):
            return _LEAK
    if k >= 3:
        r = [growth[i] / calls[i] for i in (k - 3, k - 2, k - 1)]
        if r[2] < _RATIO * r[1] and r[1] < _RATIO * r[0]:
            return _CLEAN  # falling off run after run: a one-off cost amortised, not a leak
    return _UNSURE


@dataclass
class Assessment:
    leaking_types: dict[str, float] = field(default_factory=dict)
    leaking_containers: dict[str, float] = field(default_factory=dict)
    blocks: float = 0.0
    rss: float = 0.0
    garbage: float = 0.0
    gc_garbage: float = 0.0
    unsure: int = 0

    @property
    def leaked(self) -> bool:
        return bool(
            self.leaking_types
            or self.leaking_containers
            or self.blocks
            or self.rss
            or self.garbage
            or self.gc_garbage
        )


def _rate(growth: Sequence[int], calls: Sequence[int]) -> float:
    m = min(CONFIRM, len(growth))
    n = sum(calls[-m:])
    return sum(growth[-m:]) / n if n else 0.0


def assess(measured: Sequence[Measured]) -> Assessment:
    calls = [m.run.calls for m in measured]
    out = Assessment()

    def judge(growth: list[int], floor: float) -> float:
        state = _state(growth, calls, floor)
        if state == _LEAK:
            return _rate(growth, calls)
        if state == _UNSURE:
            out.unsure += 1
        return 0.0

    names: set[str] = set()
    keys: set[str] = set()
    for m in measured:
        names.update(name for name, d in m.types.items() if d > 0)
        keys.update(key for key, d in m.containers.items() if d > 0)
    for name in sorted(names):  # sorted: no order depends on hashing
        rate = judge([m.types.get(name, 0) for m in measured], 1)
        if rate > 0:
            out.leaking_types[name] = rate
    for key in sorted(keys):
        rate = judge([m.containers.get(key, 0) for m in measured], 1)
        if rate > 0:
            out.leaking_containers[key] = rate
    out.blocks = judge([m.run.blocks for m in measured], _BLOCKS_FLOOR)
    if all(m.run.rss is not None for m in measured):
        out.rss = judge([m.run.rss or 0 for m in measured], _RSS_FLOOR)
    out.garbage = judge([m.garbage for m in measured], 1)
    out.gc_garbage = judge([m.gc_garbage for m in measured], 1)
    return out


def settled(measured: Sequence[Measured], assessment: Assessment) -> tuple[str, ...]:
    """Types and containers that grew during the runs but stopped: plateaus, not leaks."""
    totals: dict[str, int] = {}
    for m in measured:
        for name, d in m.types.items():
            totals[name] = totals.get(name, 0) + d
        for key, d in m.containers.items():
            totals[key] = totals.get(key, 0) + d
    out = [
        f"{name} +{total:,}"
        for name, total in sorted(totals.items(), key=lambda item: (-item[1], item[0]))
        if total > 0
        and name not in assessment.leaking_types
        and name not in assessment.leaking_containers
    ]
    return tuple(out[:5])
