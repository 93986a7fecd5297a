"""Leak verdicts: call a function many times and decide whether it leaks.

:func:`check` follows what CPython's ``regrtest -R`` learned (warm-up calls
first, then several measured runs, a leak only when growth is sustained) and
chooses the number of runs adaptively::

    report = leakscope.check(lambda: handle_request(fake_request))
    if report.leaked:
        print(report)            # ranked culprits, what holds them, where they were allocated
    report.raise_if_leaked()     # LeakError (an AssertionError) with the same explanation

Each measured run calls the function a number of times (doubling from run to
run), collects garbage and measures every signal: per-type object counts,
the lengths of module/class containers (which see dicts of strings that the
collector does not track), allocated memory blocks (which see strings, bytes
and numbers), resident memory, cyclic garbage left behind while ``gc`` is
disabled and ``gc.garbage``.  A signal leaks when it grew in each of the last
three runs at a per-call rate that did not fall off; a cache that fills and
then plateaus stops growing and is not reported.  Runs continue until every
signal has settled, or a steady growth has been seen over at least ~1,000
calls (or the time budget is spent).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import inspect
import math
import sys
import time
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leakscope._format import format_bytes
from leakscope._heap import object_type_name, rss_bytes, tracked_census, type_name
from leakscope._interpreter import InterpreterState, frozen, preserved
from leakscope._roots import root_containers
from leakscope.errors import LeakError, LeakscopeError

__all__ = ["Culprit", "LeakReport", "PerCall", "Run", "check"]

FORMAT = "leakscope.leak_report"

# -- tunables of the adaptive verdict ------------------------------------------------------
_MIN_RUNS = 5  # measured runs before any verdict
_MAX_RUNS = 14
_CONFIRM = 3  # trailing runs that must all grow for a leak
_RATIO = 0.6  # a leak's per-call rate may not fall below this fraction of the previous run's
_MIN_CALLS = 1024  # measured calls wanted before a leak verdict, when the budget allows
_BUDGET = 2.0  # seconds of measured calls spent at most when no timeout is given
_FIRST_RUN_SECONDS = 0.004  # the first measured run aims at this duration
_MAX_FIRST_RUN = 32
_WARMUP_MIN = 3
_WARMUP_MAX = 32
_WARMUP_SECONDS = 0.05
_BLOCKS_FLOOR = 16  # allocated blocks a run must grow by (leakscope's own records add ~8 per run)
_RSS_FLOOR = 1 << 20  # resident bytes a run must grow by to count as growth

_LEAK, _CLEAN, _UNSURE = "leak", "clean", "unsure"

ATEXIT_KEY = "atexit:<registered callbacks>"
LOGGERS_KEY = "logging:Logger.manager.loggerDict"


# -- data -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PerCall:
    """What one call retains, measured over the runs that decided the verdict.

    ``objects`` counts objects the cyclic collector tracks; ``blocks`` counts
    allocated memory blocks, which also see strings, bytes and numbers;
    ``bytes`` is traced memory per call (``None`` when it was not traced).
    """

    objects: float
    blocks: float
    bytes: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"objects": self.objects, "blocks": self.blocks, "bytes": self.bytes}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerCall:
        raw = data.get("bytes")
        return cls(
            float(data["objects"]), float(data["blocks"]), None if raw is None else float(raw)
        )

    def __str__(self) -> str:
        parts = [f"{_fmt_rate(self.objects)} objects", f"{_fmt_rate(self.blocks)} blocks"]
        if self.bytes is not None:
            parts.append(f"~{format_bytes(self.bytes)}")
        return ", ".join(parts) + " per call"


@dataclass(frozen=True, slots=True)
class Run:
    """One measured run: ``calls`` calls, then a collection and a census.

    The other fields are the growth over the run: tracked ``objects``,
    allocated ``blocks``, resident bytes (``rss``, ``None`` where unreadable)
    and ``garbage``, the unreachable objects the collection after the run freed.
    """

    calls: int
    seconds: float
    objects: int
    blocks: int
    rss: int | None
    garbage: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "seconds": self.seconds,
            "objects": self.objects,
            "blocks": self.blocks,
            "rss": self.rss,
            "garbage": self.garbage,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Run:
        return cls(
            int(data["calls"]),
            float(data["seconds"]),
            int(data["objects"]),
            int(data["blocks"]),
            None if data.get("rss") is None else int(data["rss"]),
            int(data["garbage"]),
        )


@dataclass(frozen=True, slots=True)
class Holder:
    """Something that keeps leaked objects alive, named so a person recognises it.

    ``description`` reads like ``module app.cache: _CACHE (dict, +3.0 entries/call)``
    or is a retention path from a root; ``detail`` is the same path with
    dict-key values shown (only rendered with ``show_values=True``).
    """

    description: str
    kind: str = "path"
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"description": self.description, "kind": self.kind, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Holder:
        return cls(
            str(data["description"]), str(data.get("kind", "path")), str(data.get("detail", ""))
        )


@dataclass(frozen=True, slots=True)
class Culprit:
    """One leak, ranked in :attr:`LeakReport.culprits`.

    ``kind`` says what grows: ``objects`` (instances of ``types``), ``container``
    (a module/class container of untracked items such as strings), ``untracked``
    (memory blocks that no tracked object accounts for), ``memory`` (resident
    memory only), ``cycles`` (cyclic garbage never collected because ``gc`` is
    disabled) or ``gc.garbage``.  ``per_call`` is in the unit of the kind
    (objects, entries, blocks or bytes per call); ``related`` lists the types
    that leak along with the first one (an instance's ``dict``, an exception's
    ``traceback``...).
    """

    kind: str
    types: tuple[str, ...]
    per_call: float
    unit: str = "objects"
    related: tuple[tuple[str, float], ...] = ()
    bytes_per_call: float | None = None
    holders: tuple[Holder, ...] = ()
    allocated_at: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    hint: str = ""

    @property
    def type(self) -> str:
        """The main type retained (empty for untracked growth)."""
        return self.types[0] if self.types else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "types": list(self.types),
            "per_call": self.per_call,
            "unit": self.unit,
            "related": [[name, rate] for name, rate in self.related],
            "bytes_per_call": self.bytes_per_call,
            "holders": [h.to_dict() for h in self.holders],
            "allocated_at": list(self.allocated_at),
            "notes": list(self.notes),
            "hint": self.hint,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Culprit:
        raw_bytes = data.get("bytes_per_call")
        return cls(
            kind=str(data["kind"]),
            types=tuple(str(t) for t in data.get("types", ())),
            per_call=float(data["per_call"]),
            unit=str(data.get("unit", "objects")),
            related=tuple((str(n), float(r)) for n, r in data.get("related", ())),
            bytes_per_call=None if raw_bytes is None else float(raw_bytes),
            holders=tuple(Holder.from_dict(h) for h in data.get("holders", ())),
            allocated_at=tuple(str(s) for s in data.get("allocated_at", ())),
            notes=tuple(str(n) for n in data.get("notes", ())),
            hint=str(data.get("hint", "")),
        )


@dataclass(frozen=True)
class LeakReport:
    """The outcome of :func:`check`: whether ``function`` leaks, and why.

    ``leaked`` is the verdict; ``per_call`` what a call retains; ``culprits``
    the leaks, most important first; ``runs`` the measured runs (``len(report.runs)``
    is their number, ``calls`` the measured calls in all).  When the function
    raised, ``error`` says so and there is no verdict (``leaked`` is False and
    :meth:`raise_if_leaked` raises :class:`~leakscope.LeakscopeError`).

    ``str(report)`` is the explanation for people; it shows type names,
    container names and paths only, never object values (use
    ``report.format(show_values=True)`` to see dict keys on paths).
    """

    function: str
    leaked: bool
    per_call: PerCall
    culprits: tuple[Culprit, ...] = ()
    runs: tuple[Run, ...] = ()
    warmup: int = 0
    seconds: float = 0.0
    error: str | None = None
    notes: tuple[str, ...] = ()
    settled: tuple[str, ...] = field(default=())
    """Signals that grew early and then stopped (caches filling up): reported, not leaks."""

    @property
    def calls(self) -> int:
        """Measured calls over all runs (warm-up calls not included)."""
        return sum(run.calls for run in self.runs)

    def raise_if_leaked(self) -> None:
        """Raise :class:`~leakscope.LeakError` with the explanation when the function leaked.

        Raises :class:`~leakscope.LeakscopeError` when there is no verdict
        because the function raised.
        """
        if self.error is not None:
            raise LeakscopeError(self.format())
        if self.leaked:
            raise LeakError(self.format(), self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of the report (no object values)."""
        return {
            "format": FORMAT,
            "function": self.function,
            "leaked": self.leaked,
            "per_call": self.per_call.to_dict(),
            "culprits": [c.to_dict() for c in self.culprits],
            "runs": [r.to_dict() for r in self.runs],
            "warmup": self.warmup,
            "calls": self.calls,
            "seconds": self.seconds,
            "error": self.error,
            "notes": list(self.notes),
            "settled": list(self.settled),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeakReport:
        """Rebuild a report from :meth:`to_dict` output."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise ValueError("not a leakscope leak report")
        return cls(
            function=str(data["function"]),
            leaked=bool(data["leaked"]),
            per_call=PerCall.from_dict(data["per_call"]),
            culprits=tuple(Culprit.from_dict(c) for c in data.get("culprits", ())),
            runs=tuple(Run.from_dict(r) for r in data.get("runs", ())),
            warmup=int(data.get("warmup", 0)),
            seconds=float(data.get("seconds", 0.0)),
            error=None if data.get("error") is None else str(data["error"]),
            notes=tuple(str(n) for n in data.get("notes", ())),
            settled=tuple(str(s) for s in data.get("settled", ())),
        )

    def format(self, show_values: bool = False) -> str:
        """The explanation; ``show_values=True`` also shows dict keys on retention paths."""
        from leakscope.explain import format_report

        return format_report(self, show_values=show_values)

    def __str__(self) -> str:
        return self.format()


# -- measuring ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Census:
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


def _census() -> _Census:
    counts, total = tracked_census()
    lengths, kinds = root_containers()
    _extra_registries(lengths, kinds)
    return _Census(counts, lengths, kinds, total)


def _changes(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
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
class _Measured:
    """One run with the per-signal growth the verdict needs."""

    run: Run
    types: dict[str, int]
    containers: dict[str, int]
    garbage: int  # cyclic garbage left while gc was disabled during the run (0 otherwise)
    gc_garbage: int


class _Stopped(Exception):
    """Internal: the measured function raised; carries the exception to the caller."""

    def __init__(self, exc: BaseException, phase: str) -> None:
        super().__init__(phase)
        self.exc = exc
        self.phase = phase


def _state(growth: Sequence[int], calls: Sequence[int], floor: float) -> str:
    """``leak`` when the last runs all grew at a steady per-call rate; ``clean`` when settled."""
    k = len(growth)
    if k == 0 or growth[-1] < floor:
        return _CLEAN
    m = min(_CONFIRM, k)
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
class _Assessment:
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
    m = min(_CONFIRM, len(growth))
    n = sum(calls[-m:])
    return sum(growth[-m:]) / n if n else 0.0


def _assess(measured: Sequence[_Measured]) -> _Assessment:
    calls = [m.run.calls for m in measured]
    out = _Assessment()

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
    for name in names:
        rate = judge([m.types.get(name, 0) for m in measured], 1)
        if rate > 0:
            out.leaking_types[name] = rate
    for key in keys:
        rate = judge([m.containers.get(key, 0) for m in measured], 1)
        if rate > 0:
            out.leaking_containers[key] = rate
    out.blocks = judge([m.run.blocks for m in measured], _BLOCKS_FLOOR)
    if all(m.run.rss is not None for m in measured):
        out.rss = judge([m.run.rss or 0 for m in measured], _RSS_FLOOR)
    out.garbage = judge([m.garbage for m in measured], 1)
    out.gc_garbage = judge([m.gc_garbage for m in measured], 1)
    return out


def _call_name(func: Callable[..., Any]) -> str:
    """A readable name for ``func`` without calling user code."""
    target: Any = func
    for _ in range(8):
        if type(target) is functools.partial:
            target = target.func
        elif type(target) is types.MethodType:
            target = target.__func__
        else:
            break
    if type(target) in (types.FunctionType, types.BuiltinFunctionType):
        module = target.__module__
        qualname = target.__qualname__
        if isinstance(module, str) and isinstance(qualname, str):
            return qualname if module == "builtins" else f"{module}.{qualname}"
    return f"{object_type_name(target)} instance"


def _is_async(func: Callable[..., Any]) -> bool:
    target: Any = func
    while type(target) is functools.partial:
        target = target.func
    return inspect.iscoroutinefunction(target)


def running_loop() -> bool:
    """True when an asyncio event loop is running in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _run_coroutine(coro: Any) -> Any:
    """Run ``coro`` to completion in a fresh event loop."""
    return asyncio.run(coro)


def as_sync(func: Callable[[], Any]) -> Callable[[], Any]:
    """``func`` itself, or for an async function a callable running it in a fresh loop per call."""
    if not _is_async(func):
        return func
    if running_loop():
        raise TypeError(
            f"{_call_name(func)} is an async function and an event loop is already running in "
            "this thread: leakscope runs each call in a fresh event loop, so call it from "
            "synchronous code (or check a synchronous wrapper)"
        )

    def call() -> Any:
        return _run_coroutine(func())

    return call


def _error_text(exc: BaseException, phase: str) -> str:
    """``ValueError: message (raised at file.py:12 during warm-up call 1)``, never calling user code."""
    name = object_type_name(exc)
    message = ""
    args = BaseException.__dict__["args"].__get__(exc)
    if isinstance(args, tuple) and len(args) == 1 and type(args[0]) is str:
        message = args[0][:300]
    where = ""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        code = tb.tb_frame.f_code
        where = f" at {code.co_filename}:{tb.tb_lineno}"
    return f"{name}{': ' + message if message else ''} (raised{where} during {phase})"


class _Runner:
    """Calls the function, keeping the last result only when asked."""

    def __init__(self, call: Callable[[], Any], keep_result: bool) -> None:
        self.call = call
        self.keep_result = keep_result
        self.result: Any = None
        self.count = 0

    def run(self, n: int, phase: str, deadline: float | None) -> tuple[int, float]:
        call = self.call
        done = 0
        start = time.perf_counter()
        try:
            if self.keep_result:
                for _ in range(n):
                    self.result = call()
                    done += 1
                    if deadline is not None and time.perf_counter() > deadline:
                        break
            else:
                for _ in range(n):
                    call()
                    done += 1
                    if deadline is not None and time.perf_counter() > deadline:
                        break
        except Exception as exc:
            raise _Stopped(exc, f"{phase} call {self.count + done + 1}") from None
        finally:
            self.count += done
        return done, time.perf_counter() - start


def _warm_up(runner: _Runner, warmup: int | None, deadline: float | None) -> tuple[int, float]:
    """Warm-up calls; returns (calls, estimated seconds per call)."""
    durations: list[float] = []
    start = time.perf_counter()
    while True:
        _, seconds = runner.run(1, "warm-up", None)
        durations.append(seconds)
        n = len(durations)
        if warmup is not None:
            if n >= warmup:
                break
        elif n >= _WARMUP_MAX or (
            n >= _WARMUP_MIN and time.perf_counter() - start >= _WARMUP_SECONDS
        ):
            break
        if deadline is not None and time.perf_counter() > deadline:
            break
    later = durations[1:] or durations
    per_call = sorted(later)[len(later) // 2] if later else 0.0
    return len(durations), per_call


def _positive_int(value: object, what: str, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum} or None, not {value!r:.40}")
    return value


@dataclass
class _Outcome:
    report: LeakReport
    result: Any = None
    exc: BaseException | None = None


def _measure(
    runner: _Runner,
    *,
    warmup: int | None,
    runs: int | None,
    timeout: float | None,
    trace: bool,
    state: InterpreterState,
    name: str,
    ignored: frozenset[str] = frozenset(),
) -> LeakReport:
    started = time.perf_counter()
    deadline = None if timeout is None else started + timeout
    warm_calls, per_call_s = _warm_up(runner, warmup, deadline)

    if runs is None:
        first = int(_FIRST_RUN_SECONDS / per_call_s) if per_call_s > 0 else _MAX_FIRST_RUN
        n = max(1, min(_MAX_FIRST_RUN, first))
    else:
        n = 1 if per_call_s * 2 ** (runs - 1) > _BUDGET else max(1, min(_MAX_FIRST_RUN, 8))
    measured: list[_Measured] = []
    notes: list[str] = []
    spent = 0.0
    # Everything alive after the warm-up is frozen for the measured runs: each collection
    # and census then looks only at the objects made since, not the whole process (most
    # of a check's time in a big process).  Blocks, RSS and gc.garbage are read right
    # after a full collection, which also empties the free lists, so consecutive readings
    # compare like with like.
    with frozen():
        gc.collect()
        blocks_before = sys.getallocatedblocks()
        rss_before = rss_bytes()
        garbage_before = len(gc.garbage)
        base = _census()
        assessment = _Assessment()
        cut_short = False
        while True:
            done, seconds = runner.run(n, f"measured run {len(measured) + 1},", deadline)
            spent += seconds
            gc_was_enabled = gc.isenabled()
            collected = gc.collect()
            blocks_after = sys.getallocatedblocks()
            rss_after = rss_bytes()
            garbage_after = len(gc.garbage)
            rss = None if rss_after is None or rss_before is None else rss_after - rss_before
            after = _census()
            measured.append(
                _Measured(
                    run=Run(
                        done,
                        seconds,
                        after.objects - base.objects,
                        blocks_after - blocks_before,
                        rss,
                        collected,
                    ),
                    types=_changes(base.types, after.types),
                    containers=_changes(base.containers, after.containers),
                    garbage=0 if gc_was_enabled else collected,
                    gc_garbage=garbage_after - garbage_before,
                )
            )
            blocks_before, rss_before, garbage_before = blocks_after, rss_after, garbage_after
            base = after
            del after
            k = len(measured)
            assessment = _assess(measured)
            timed_out = deadline is not None and time.perf_counter() > deadline
            if timed_out:
                cut_short = runs is None or k < runs
                break
            if runs is not None:
                if k >= runs:
                    break
            else:
                calls = sum(m.run.calls for m in measured)
                if k >= _MIN_RUNS:
                    if assessment.leaked and calls >= _MIN_CALLS:
                        break
                    if not assessment.leaked and not assessment.unsure:
                        break
                if k >= _MAX_RUNS:
                    break
                estimate = spent / max(1, calls) * n * 2
                if k >= _MIN_RUNS and spent + estimate > _BUDGET:
                    if assessment.leaked and calls < _MIN_CALLS:
                        notes.append(
                            f"steady growth seen over {calls:,} calls only (time budget spent); "
                            "a cache bigger than that would look the same: pass runs= or timeout= "
                            "to measure longer"
                        )
                    break
            n *= 2
    if cut_short:
        notes.append(f"timed out after {timeout} s; the verdict uses the runs completed so far")

    culprits: tuple[Culprit, ...] = ()
    per_call_bytes: float | None = None
    if assessment.leaked:
        from leakscope.explain import explain

        explained = explain(
            runner.run,
            assessment,
            measured,
            base.container_types,
            trace=trace,
            state=state,
            calls_hint=measured[-1].run.calls,
            seconds_per_call=spent / max(1, sum(m.run.calls for m in measured)),
        )
        culprits, per_call_bytes = explained.culprits, explained.bytes_per_call
        notes.extend(explained.notes)
    leaked = assessment.leaked
    if leaked and ignored and culprits:
        kept = tuple(c for c in culprits if not c.types or c.types[0] not in ignored)
        if len(kept) < len(culprits):
            notes.append(
                "ignored (ignore_types): "
                + ", ".join(
                    f"{c.types[0]} +{_fmt_rate(c.per_call)} {c.unit}/call"
                    for c in culprits
                    if c not in kept
                )
            )
        culprits = kept
        leaked = bool(kept)
    tail = measured[-min(_CONFIRM, len(measured)) :]
    tail_calls = sum(m.run.calls for m in tail) or 1
    per_call = PerCall(
        objects=sum(m.run.objects for m in tail) / tail_calls,
        blocks=sum(m.run.blocks for m in tail) / tail_calls,
        bytes=per_call_bytes,
    )
    return LeakReport(
        function=name,
        leaked=leaked,
        per_call=per_call,
        culprits=culprits,
        runs=tuple(m.run for m in measured),
        warmup=warm_calls,
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
        settled=_settled(measured, assessment),
    )


def _settled(measured: Sequence[_Measured], assessment: _Assessment) -> tuple[str, ...]:
    """Types and containers that grew during the runs but stopped: plateaus, not leaks."""
    totals: dict[str, int] = {}
    for m in measured:
        for name, d in m.types.items():
            totals[name] = totals.get(name, 0) + d
        for key, d in m.containers.items():
            totals[key] = totals.get(key, 0) + d
    out = [
        f"{name} +{total:,}"
        for name, total in sorted(totals.items(), key=lambda item: -item[1])
        if total > 0
        and name not in assessment.leaking_types
        and name not in assessment.leaking_containers
    ]
    return tuple(out[:5])


def run_check(
    func: Callable[[], Any],
    *,
    warmup: int | None = None,
    runs: int | None = None,
    trace: bool = True,
    timeout: float | None = None,
    keep_result: bool = False,
    ignore_types: Iterable[str | type] = (),
) -> _Outcome:
    """:func:`check`, also handing back the last result or the exception ``func`` raised."""
    if not callable(func):
        raise TypeError(
            f"check() needs a callable taking no arguments, not {object_type_name(func)}"
        )
    warmup = _positive_int(warmup, "warmup", 1)
    runs = _positive_int(runs, "runs", 2)
    if not isinstance(trace, bool):
        raise TypeError(f"trace must be True or False, not {trace!r:.40}")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ValueError(
            f"timeout must be a positive number of seconds or None, not {timeout!r:.40}"
        )
    ignored = _type_names(ignore_types)
    name = _call_name(func)
    runner = _Runner(as_sync(func), keep_result)
    started = time.perf_counter()
    try:
        with preserved() as state:
            report = _measure(
                runner,
                warmup=warmup,
                runs=runs,
                timeout=None if timeout is None else float(timeout),
                trace=trace,
                state=state,
                name=name,
                ignored=ignored,
            )
    except _Stopped as stopped:
        exc = stopped.exc
        report = LeakReport(
            function=name,
            leaked=False,
            per_call=PerCall(0.0, 0.0),
            warmup=0,
            seconds=time.perf_counter() - started,
            error=_error_text(exc, stopped.phase),
        )
        del stopped
        return _Outcome(report, exc=exc)
    result, runner.result = runner.result, None
    return _Outcome(report, result=result)


def check(
    func: Callable[[], Any],
    *,
    warmup: int | None = None,
    runs: int | None = None,
    trace: bool = True,
    timeout: float | None = None,
    ignore_types: Iterable[str | type] = (),
) -> LeakReport:
    """Call ``func`` repeatedly and decide whether it leaks; return a :class:`LeakReport`.

    ``func`` takes no arguments (pass ``functools.partial(f, x)`` or a lambda);
    an async function runs to completion in a fresh event loop per call.
    ``warmup`` is the number of warm-up calls and ``runs`` the number of
    measured runs (calls double from run to run); by default both are chosen
    adaptively.  ``trace=True`` finds allocation sites with ``tracemalloc``
    (started and stopped again if it was off).  ``timeout`` bounds the time in
    seconds: the verdict then uses the runs completed so far.  ``ignore_types``
    names types whose growth is expected (types, or qualified names such as
    ``"mypkg.Session"``): a culprit whose main type is one of them is left out
    of the verdict and of the culprits (a note says what was ignored), so the
    report says ``leaked=False`` when nothing else grows.

    When ``func`` raises, the report carries ``error`` and no verdict; the
    exception is not re-raised (``@no_leaks`` re-raises it).  Interpreter
    state (gc flags and thresholds, tracemalloc, warnings filters) is restored
    exactly either way.

    >>> cache = []
    >>> check(lambda: cache.append(object())).leaked
    True
    """
    outcome = run_check(
        func, warmup=warmup, runs=runs, trace=trace, timeout=timeout, ignore_types=ignore_types
    )
    outcome.exc = None
    return outcome.report


def _type_names(types_: object) -> frozenset[str]:
    """The qualified names of ``ignore_types`` (types or non-empty names); TypeError otherwise."""
    if isinstance(types_, (str, type)):
        types_ = (types_,)
    if not isinstance(types_, (list, tuple, set, frozenset)):
        raise TypeError(f"ignore_types must be a list of type names or types, not {types_!r:.60}")
    names = set()
    for t in types_:
        if isinstance(t, type):
            names.add(type_name(t))
        elif isinstance(t, str) and t:
            names.add(t)
        else:
            raise TypeError(f"ignore_types entries must be type names or types, not {t!r:.60}")
    return frozenset(names)


def _fmt_rate(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2g}" if abs(value) < 1 else f"{value:.1f}"
