"""Collector telemetry: how often the cyclic GC runs, how long it pauses, what it finds.

:func:`gc_monitor` hooks ``gc.callbacks`` and records, per generation, the
number of collections, a histogram of pause durations (p50/p99/max), the
objects collected and uncollectable, and the time between collections::

    with gc_monitor() as monitor:
        serve_requests()
    report = monitor.report()
    print(report)             # per-generation table
    for advice in report.advice():
        print(advice)         # justified suggestions, each quoting its figures

or, for a long-running service, ``monitor = gc_monitor().start()`` ...
``report = monitor.stop()``.

The callback costs well under 2 microseconds per collection (see
``benchmarks/gc_monitor.py``): it reads ``time.perf_counter_ns()`` and updates
preallocated counters and a fixed-bucket histogram; it never allocates storage
that grows with the number of collections.  Stopping removes exactly the
monitor's own callback from ``gc.callbacks``, whatever else was added meanwhile.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from leakscope._fields import Fields
from leakscope._format import format_duration_ns as _dur

__all__ = [
    "Advice",
    "AdviceKind",
    "GCMonitor",
    "GCReport",
    "GenerationStats",
    "gc_advice",
    "gc_monitor",
]

_GENERATIONS = 3
_SUB = 2  # 2**_SUB buckets per power of two: a bucket is at most 25% wide
_BUCKETS = 64 << _SUB
_FORMAT = 1

# Thresholds of the advice, in one place so the messages can quote them.
MIN_COLLECTIONS = 10  # fewer collections than this: nothing can be advised yet
FREQUENT_GEN0_PER_S = 100.0  # gen-0 collections per second counted as "very frequent"
CHEAP_GEN0_P50_NS = 1_000_000  # gen-0 median pause counted as "cheap" (1 ms)
COSTLY_FULL_P50_NS = 10_000_000  # gen-2 median pause worth a gc.freeze() (10 ms)
TARGET_GEN0_PER_S = 10.0  # rate a raised threshold aims for
MAX_THRESHOLD_FACTOR = 10
GARBAGE_WARNING_OBJECTS = 10_000  # garbage per collection above which a raise is risky


def _bucket_bounds(index: int) -> tuple[int, int]:
    """The ``[low, high)`` nanosecond range of histogram bucket ``index``."""
    if index < (1 << _SUB):
        return index, index + 1
    bits, sub = index >> _SUB, index & ((1 << _SUB) - 1)
    shift = bits - 1 - _SUB
    return ((1 << _SUB) | sub) << shift, ((1 << _SUB) | sub) + 1 << shift


def _percentile(histogram: Mapping[int, int], total: int, q: float, max_ns: int) -> int:
    """The ``q``-quantile (0..1) of a bucket histogram, interpolated within its bucket."""
    if total <= 0:
        return 0
    rank = q * total
    seen = 0
    for index in sorted(histogram):
        n = histogram[index]
        if seen + n >= rank:
            low, high = _bucket_bounds(index)
            value = low + (high - low) * max(0.0, rank - seen) / n
            return min(int(value), max_ns)
        seen += n
    return max_ns


@dataclass(frozen=True)
class GenerationStats:
    """What the collector did in one generation while monitored (durations in nanoseconds).

    ``histogram`` maps bucket lower bounds (ns) to counts of pauses; buckets are at
    most 25% wide, so ``pause_p50_ns``/``pause_p99_ns`` are estimates within that;
    ``pause_max_ns`` is exact.  ``interval_mean_ns``, the mean time from the start of
    one collection of this generation to the next, is ``None`` with fewer than two.
    """

    generation: int
    collections: int
    collected: int
    uncollectable: int
    pause_total_ns: int
    pause_max_ns: int
    pause_p50_ns: int
    pause_p99_ns: int
    interval_mean_ns: int | None
    histogram: tuple[tuple[int, int], ...] = ()

    @property
    def pause_mean_ns(self) -> int:
        return self.pause_total_ns // self.collections if self.collections else 0

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {name: getattr(self, name) for name in _GEN_FIELDS}
        d["histogram"] = [list(pair) for pair in self.histogram]
        return d

    @classmethod
    def from_dict(cls, data: object, where: str = "") -> GenerationStats:
        """Rebuild from :meth:`to_dict`; :class:`DataError` naming the field if malformed."""
        f = Fields(data, where)
        values: dict[str, Any] = {
            name: f.optional_integer(name, minimum=0)
            if name == "interval_mean_ns"
            else f.integer(name, minimum=0)
            for name in _GEN_FIELDS
        }
        histogram = f.pairs("histogram", int, int, optional=True)
        return cls(**values, histogram=tuple(histogram))


_GEN_FIELDS = (
    "generation",
    "collections",
    "collected",
    "uncollectable",
    "pause_total_ns",
    "pause_max_ns",
    "pause_p50_ns",
    "pause_p99_ns",
    "interval_mean_ns",
)


AdviceKind = Literal[
    "insufficient_data",
    "raise_threshold",
    "garbage_warning",
    "freeze",
    "disable_gc",
    "uncollectable",
    "collector_disabled",
    "no_change",
]
"""What :attr:`Advice.kind` can be."""


@dataclass(frozen=True)
class Advice:
    """One suggestion from :func:`gc_advice`: its ``kind``, the message, and the figures behind it.

    Kinds: ``insufficient_data``, ``raise_threshold``, ``garbage_warning``,
    ``freeze``, ``disable_gc``, ``uncollectable``, ``collector_disabled``, ``no_change``.
    """

    kind: AdviceKind
    message: str
    evidence: tuple[tuple[str, float | int | str], ...] = ()

    def __str__(self) -> str:
        return f"[{self.kind}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "evidence": dict(self.evidence)}


@dataclass(frozen=True)
class GCReport:
    """The collector's activity over ``duration_ns`` of monitoring, per generation.

    ``thresholds``, ``enabled`` and ``freeze_count`` are the collector's settings
    when the report was taken.
    """

    duration_ns: int
    generations: tuple[GenerationStats, ...]
    thresholds: tuple[int, ...]
    enabled: bool
    freeze_count: int

    @property
    def collections(self) -> int:
        return sum(g.collections for g in self.generations)

    @property
    def collected(self) -> int:
        return sum(g.collected for g in self.generations)

    @property
    def uncollectable(self) -> int:
        return sum(g.uncollectable for g in self.generations)

    @property
    def pause_total_ns(self) -> int:
        return sum(g.pause_total_ns for g in self.generations)

    @property
    def gc_fraction(self) -> float:
        """Fraction of the monitored wall time spent inside collections."""
        return self.pause_total_ns / self.duration_ns if self.duration_ns > 0 else 0.0

    def advice(self) -> list[Advice]:
        """Suggestions justified by these figures (see :func:`gc_advice`)."""
        return gc_advice(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "duration_ns": self.duration_ns,
            "generations": [g.to_dict() for g in self.generations],
            "thresholds": list(self.thresholds),
            "enabled": self.enabled,
            "freeze_count": self.freeze_count,
        }

    @classmethod
    def from_dict(cls, data: object) -> GCReport:
        """Rebuild a report from :meth:`to_dict`; :class:`DataError` naming the field if malformed.

        >>> GCReport.from_dict({"format": 1, "duration_ns": -5})
        Traceback (most recent call last):
            ...
        leakscope.errors.DataError: duration_ns: must be an integer >= 0, not -5
        """
        f = Fields(data)
        if f.value("format") != _FORMAT:
            raise f.fail(f"must be {_FORMAT} (a leakscope GC report)", "format")
        return cls(
            duration_ns=f.integer("duration_ns", minimum=0),
            generations=tuple(
                GenerationStats.from_dict(g, f"generations[{i}]")
                for i, g in enumerate(f.items("generations"))
            ),
            thresholds=tuple(f.integers("thresholds", minimum=0)),
            enabled=f.flag("enabled"),
            freeze_count=f.integer("freeze_count", minimum=0),
        )

    def __str__(self) -> str:
        lines = [
            f"GC over {_dur(self.duration_ns)}: {self.collections:,} collections,"
            f" {_dur(self.pause_total_ns)} paused ({self.gc_fraction:.2%} of the time),"
            f" {self.collected:,} objects collected, {self.uncollectable:,} uncollectable",
            f"thresholds {self.thresholds}, {'enabled' if self.enabled else 'DISABLED'},"
            f" {self.freeze_count:,} frozen objects",
            "gen  collections  every (mean)   p50 pause   p99 pause   max pause    collected",
        ]
        for g in self.generations:
            every = "-" if g.interval_mean_ns is None else _dur(g.interval_mean_ns)
            lines.append(
                f"{g.generation:>3}  {g.collections:>11,}  {every:>12}  {_dur(g.pause_p50_ns):>10}"
                f"  {_dur(g.pause_p99_ns):>10}  {_dur(g.pause_max_ns):>10}  {g.collected:>11,}"
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# The recorder


# Layout of the per-generation list the callback updates (preallocated, never resized).
_COUNT, _COLLECTED, _UNCOLLECTABLE, _PAUSE_TOTAL, _PAUSE_MAX, _FIRST, _LAST = range(7)
_HIST = 8  # the histogram's buckets follow the counters


def _new_stats() -> list[list[int]]:
    return [[0] * (_HIST + _BUCKETS) for _ in range(_GENERATIONS)]


def _make_callback(stats: list[list[int]]) -> Callable[[str, dict[str, int]], None]:
    """The ``gc.callbacks`` entry: closes over preallocated lists only (no monitor, no user data).

    ``seq`` is a sequence lock: odd while a "stop" event is being recorded, so a
    reader can tell a torn copy and retry.  Collections never overlap (the
    interpreter runs one at a time), so there is a single writer.
    """
    clock = time.perf_counter_ns
    last_gen = _GENERATIONS - 1
    begin = 0
    seq = 0

    def callback(phase: str, info: dict[str, int]) -> None:
        nonlocal begin, seq
        now = clock()
        if phase == "start":
            begin = now
            return
        if not begin:  # monitoring began inside this collection
            return
        gen = info["generation"]
        s = stats[gen] if gen < last_gen else stats[last_gen]
        seq += 1
        s[0] += 1  # _COUNT (literal indexes: this is the hot path)
        s[1] += info["collected"]
        s[2] += info["uncollectable"]
        d = now - begin
        s[3] += d
        if d > s[4]:  # noqa: PLR1730 (max() is a slower call on the hot path)
            s[4] = d
        if not s[5]:
            s[5] = begin
        s[6] = begin
        bits = d.bit_length()
        s[8 + (bits << 2 | (d >> (bits - 3) & 3) if bits > 2 else d)] += 1
        begin = 0
        seq += 1

    return callback


assert _SUB == 2 and _HIST == 8 and _COUNT == 0 and _LAST == 6, "callback uses literal indexes"


def _read_seq(callback: Callable[..., object]) -> int:
    cell = callback.__closure__[callback.__code__.co_freevars.index("seq")]  # type: ignore[index]
    value: int = cell.cell_contents
    return value


def _remove_callback(callback: object) -> None:
    """Remove ``callback`` (by identity) from ``gc.callbacks``, leaving every other entry."""
    callbacks = gc.callbacks
    for i in range(len(callbacks) - 1, -1, -1):
        if callbacks[i] is callback:
            del callbacks[i]
            return


class GCMonitor:
    """Records the collector's activity through ``gc.callbacks`` between start and stop.

    Use as a context manager or call :meth:`start`/:meth:`stop`; :meth:`report`
    can be called at any time, from any thread.  Restarting after :meth:`stop`
    keeps accumulating.  A monitor that is garbage-collected while running
    removes its callback.
    """

    def __init__(self) -> None:
        self._stats = _new_stats()
        self._callback = _make_callback(self._stats)
        # Reentrant: a finalizer run by a collection inside start() may call stop().
        self._lock = threading.RLock()
        self._running = False
        self._elapsed_ns = 0
        self._since = 0
        self._finalizer: weakref.finalize[Any, GCMonitor] | None = None

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> GCMonitor:
        """Begin recording; returns the monitor.  Raises ``RuntimeError`` if already running."""
        with self._lock:
            if self._running:
                raise RuntimeError("this gc_monitor() is already running")
            self._since = time.perf_counter_ns()
            self._running = True
            gc.callbacks.append(self._callback)
            self._finalizer = weakref.finalize(self, _remove_callback, self._callback)
            self._finalizer.atexit = False
        return self

    def stop(self) -> GCReport:
        """Stop recording, remove exactly this monitor's callback, and return the report."""
        with self._lock:
            if self._running:
                _remove_callback(self._callback)
                if self._finalizer is not None:
                    self._finalizer.detach()
                    self._finalizer = None
                self._elapsed_ns += time.perf_counter_ns() - self._since
                self._running = False
        return self.report()

    def report(self) -> GCReport:
        """The figures so far, as an immutable :class:`GCReport`."""
        with self._lock:
            elapsed = self._elapsed_ns
            if self._running:
                elapsed += time.perf_counter_ns() - self._since
        stats = self._stats
        copy = [list(g) for g in stats]
        for _ in range(1000):  # sequence lock: retry while a collection updates the figures
            before = _read_seq(self._callback)
            if not before & 1:
                copy = [list(g) for g in stats]
                if _read_seq(self._callback) == before:
                    break
            time.sleep(0)  # let the thread inside the callback finish (release the GIL)
        gens = []
        for g, s in enumerate(copy):
            hist = {i: n for i, n in enumerate(s[_HIST:]) if n}
            n = s[_COUNT]
            gens.append(
                GenerationStats(
                    generation=g,
                    collections=n,
                    collected=s[_COLLECTED],
                    uncollectable=s[_UNCOLLECTABLE],
                    pause_total_ns=s[_PAUSE_TOTAL],
                    pause_max_ns=s[_PAUSE_MAX],
                    pause_p50_ns=_percentile(hist, n, 0.5, s[_PAUSE_MAX]),
                    pause_p99_ns=_percentile(hist, n, 0.99, s[_PAUSE_MAX]),
                    interval_mean_ns=(s[_LAST] - s[_FIRST]) // (n - 1) if n > 1 else None,
                    histogram=tuple((_bucket_bounds(i)[0], c) for i, c in sorted(hist.items())),
                )
            )
        return GCReport(
            duration_ns=elapsed,
            generations=tuple(gens),
            thresholds=tuple(gc.get_threshold()),
            enabled=gc.isenabled(),
            freeze_count=gc.get_freeze_count(),
        )

    def __enter__(self) -> GCMonitor:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<GCMonitor {'running' if self._running else 'stopped'}>"


def gc_monitor() -> GCMonitor:
    """A new, not yet started :class:`GCMonitor`.

    >>> with gc_monitor() as monitor:
    ...     _ = gc.collect()
    >>> monitor.report().generations[2].collections
    1
    """
    return GCMonitor()


# --------------------------------------------------------------------------------------
# Advice


def gc_advice(report: GCReport) -> list[Advice]:
    """Concrete suggestions from the measured figures; every one quotes the numbers behind it.

    - too few collections observed: say so, and nothing else;
    - gen-0 collections very frequent (>= 100/s) and cheap (median < 1 ms): raise
      the first threshold, with the value to use, and a warning when each
      collection finds much cyclic garbage that would then wait longer;
    - costly full collections (median >= 10 ms) and nothing frozen: ``gc.freeze()``
      after start-up (and before forking, for pre-fork servers such as gunicorn
      ``--preload``);
    - disabling the collector only when it ran and found zero garbage;
    - uncollectable objects: look at ``gc.garbage``.
    """
    if not isinstance(report, GCReport):
        raise TypeError(f"gc_advice() needs a GCReport, not {type(report).__name__}")
    seconds = report.duration_ns / 1e9
    if report.collections < MIN_COLLECTIONS or seconds <= 0:
        return [_insufficient_data(report.collections, seconds)]
    out = [
        *_threshold_advice(report, seconds),
        *_freeze_advice(report),
        *_disable_advice(report, seconds),
        *_uncollectable_advice(report),
        *_collector_disabled_advice(report),
    ]
    return out or [_no_change(report, seconds)]


def _insufficient_data(total: int, seconds: float) -> Advice:
    return Advice(
        "insufficient_data",
        f"Only {total} collection(s) observed in {seconds:.2f} s: nothing can be"
        f" advised yet (at least {MIN_COLLECTIONS} are needed). Monitor a longer,"
        " representative stretch of the workload.",
        (("collections", total), ("seconds", round(seconds, 3))),
    )


def _threshold_advice(report: GCReport, seconds: float) -> list[Advice]:
    """Frequent, cheap gen-0 collections: raise the first threshold (and warn of garbage)."""
    out: list[Advice] = []
    g0 = report.generations[0]
    threshold0 = report.thresholds[0] if report.thresholds else 0
    rate0 = g0.collections / seconds
    fraction = report.gc_fraction
    if not (
        g0.collections >= MIN_COLLECTIONS
        and rate0 >= FREQUENT_GEN0_PER_S
        and g0.pause_p50_ns < CHEAP_GEN0_P50_NS
        and threshold0 > 0
    ):
        return out
    factor = max(2, min(MAX_THRESHOLD_FACTOR, round(rate0 / TARGET_GEN0_PER_S)))
    new = threshold0 * factor
    rest = ", ".join(str(t) for t in report.thresholds[1:])
    call = f"gc.set_threshold({new}{', ' + rest if rest else ''})"
    garbage_per = g0.collected / g0.collections
    out.append(
        Advice(
            "raise_threshold",
            f"Generation 0 was collected {g0.collections:,} times in {seconds:.2f} s"
            f" ({rate0:,.0f}/s, every {_dur(g0.interval_mean_ns or 0)} on average) with a"
            f" median pause of {_dur(g0.pause_p50_ns)}; the collector spent"
            f" {_dur(report.pause_total_ns)} ({fraction:.2%} of the time). Frequent, cheap"
            f" collections mostly pay a fixed cost and promote short-lived objects to"
            f" older generations: raising the first threshold from {threshold0} to {new}"
            f" ({call}) would cut gen-0 collections about {factor}-fold.",
            (
                ("gen0_collections", g0.collections),
                ("gen0_per_second", round(rate0, 1)),
                ("gen0_p50_pause_ns", g0.pause_p50_ns),
                ("gc_fraction", round(fraction, 5)),
                ("threshold0", threshold0),
                ("suggested_threshold0", new),
            ),
        )
    )
    if garbage_per >= GARBAGE_WARNING_OBJECTS:
        out.append(
            Advice(
                "garbage_warning",
                f"Each gen-0 collection found {garbage_per:,.0f} objects of cyclic garbage on"
                f" average ({g0.collected:,} in {g0.collections:,} collections). With a"
                f" threshold {factor} times higher, up to ~{garbage_per * factor:,.0f}"
                " unreachable objects would wait between collections: check peak memory"
                " after the change, or break the cycles (weakref, explicit cleanup).",
                (
                    ("gen0_collected", g0.collected),
                    ("gen0_collections", g0.collections),
                    ("garbage_per_collection", round(garbage_per, 1)),
                ),
            )
        )
    return out


def _freeze_advice(report: GCReport) -> list[Advice]:
    """Costly full collections and nothing frozen: ``gc.freeze()``."""
    full = report.generations[-1]
    if not (
        full.collections and full.pause_p50_ns >= COSTLY_FULL_P50_NS and report.freeze_count == 0
    ):
        return []
    return [
        Advice(
            "freeze",
            f"{full.collections:,} full (gen-2) collections took {_dur(full.pause_p50_ns)}"
            f" at the median and up to {_dur(full.pause_max_ns)}, and no object is frozen."
            " Full collections traverse every long-lived object; calling gc.freeze() once"
            " start-up is done moves them out of the collector's reach, shortening these"
            " pauses. In pre-fork servers (gunicorn --preload, multiprocessing 'fork')"
            " call gc.disable() early in the parent, gc.freeze() just before forking and"
            " gc.enable() in each child: collections in the workers then stop writing to"
            " the parent's pages, which stay shared copy-on-write.",
            (
                ("gen2_collections", full.collections),
                ("gen2_p50_pause_ns", full.pause_p50_ns),
                ("gen2_max_pause_ns", full.pause_max_ns),
                ("freeze_count", report.freeze_count),
            ),
        )
    ]


def _disable_advice(report: GCReport, seconds: float) -> list[Advice]:
    """The collector ran and found no garbage at all: it could be disabled."""
    total, fraction = report.collections, report.gc_fraction
    if not (report.enabled and report.collected == 0 and report.uncollectable == 0):
        return []
    return [
        Advice(
            "disable_gc",
            f"The collector ran {total:,} times in {seconds:.2f} s, spent"
            f" {_dur(report.pause_total_ns)} ({fraction:.2%} of the time) and found no"
            " cyclic garbage at all. If that holds for the whole workload, gc.disable()"
            " (or gc.freeze() after start-up) saves that time; but any reference cycle"
            " created on a code path this run did not exercise would then never be freed:"
            " keep a periodic gc.collect() as a safety net.",
            (
                ("collections", total),
                ("collected", 0),
                ("gc_pause_ns", report.pause_total_ns),
                ("gc_fraction", round(fraction, 5)),
            ),
        )
    ]


def _uncollectable_advice(report: GCReport) -> list[Advice]:
    """Objects left in ``gc.garbage``."""
    if not (report.uncollectable):
        return []
    return [
        Advice(
            "uncollectable",
            f"{report.uncollectable:,} uncollectable objects were found and left in"
            f" gc.garbage ({len(gc.garbage):,} entries now): they are never freed.",
            (("uncollectable", report.uncollectable),),
        )
    ]


def _collector_disabled_advice(report: GCReport) -> list[Advice]:
    """The collector is off: only explicit collections were seen."""
    if report.enabled:
        return []
    return [
        Advice(
            "collector_disabled",
            "The collector is disabled (gc.isenabled() is False): only explicit"
            " gc.collect() calls were measured.",
            (("enabled", "False"),),
        )
    ]


def _no_change(report: GCReport, seconds: float) -> Advice:
    total, fraction = report.collections, report.gc_fraction
    g0, full = report.generations[0], report.generations[-1]
    rate0 = g0.collections / seconds
    return Advice(
        "no_change",
        f"{total:,} collections in {seconds:.2f} s took {_dur(report.pause_total_ns)}"
        f" ({fraction:.2%} of the time; gen-0 {rate0:,.1f}/s, median pause"
        f" {_dur(g0.pause_p50_ns)}; gen-2 max pause {_dur(full.pause_max_ns)}):"
        " no change to the collector is needed.",
        (
            ("collections", total),
            ("gc_fraction", round(fraction, 5)),
            ("gen0_per_second", round(rate0, 1)),
        ),
    )
