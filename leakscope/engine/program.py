"""The program runner behind ``leakscope run``: run a script under observation.

The program runs in this interpreter, as ``python script.py`` or ``python -m module``
would run it (``__main__`` semantics, ``sys.argv`` and ``sys.path[0]`` set).  A
snapshot is taken at the start, one every ``interval`` seconds from a daemon thread
(by default the interval adapts: 0.1 s at first, doubling as the run goes on), and one
at exit; the result is the run data of contract D (see :func:`run_program`).

How the verdict stays honest:

- the start and exit snapshots run a full collection first, so the growth over the
  run counts only objects that are really reachable;
- the snapshots in between do not collect (a collection from another thread would
  change the program's own behaviour and run its finalizers on our thread); they
  feed the timeline and the trend;
- a culprit is a type or container that grew in each of the last intervals at a
  steady rate (the rule :func:`leakscope.check` applies to its runs) *and* is larger
  at exit, after the final collection, than at the start.  Start-up imports and
  caches that fill up and stop are one-off growth, not leaks;
- a run with fewer than ``_MIN_INTERVALS`` intervals gets no culprit at all: its
  verdict is ``growth`` when memory grew past the thresholds below, else ``clean``.
"""

from __future__ import annotations

import array
import contextlib
import dataclasses
import importlib.machinery
import importlib.util
import io
import itertools
import os
import sys
import threading
import time
import traceback
import tracemalloc
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from leakscope._format import format_bytes, format_bytes_delta
from leakscope._snapshot import Growth, Snapshot, snapshot
from leakscope.cycles import CycleReport, find_cycles
from leakscope.engine.explain import allocation_sites, culprits_from_growth
from leakscope.engine.model import Culprit, Holder, Run
from leakscope.engine.signals import Measured, assess, changes
from leakscope.errors import RunError

__all__ = ["FORMAT", "RunError", "Ticks", "format_run", "run_data", "run_program"]

FORMAT = "leakscope.run"
VERSION = 1

_MIN_INTERVALS = 5  # intervals before any culprit is named
_NFRAME = 12  # traceback frames recorded with trace=True
_TOP_TYPES = 8  # types followed in the timeline
# "growth" verdict thresholds over the whole run (start-up imports stay below them).
_GROWTH_OBJECTS = 20_000
_GROWTH_BLOCKS = 100_000
_GROWTH_RSS = 32 << 20

_OWN_DIR = os.path.dirname(os.path.abspath(__file__))


class _Names:
    """The names seen so far, in first-seen order: the index of each point's counts."""

    __slots__ = ("index", "order")

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.order: list[str] = []

    def encode(self, counts: dict[str, int]) -> bytes:
        for name in counts:
            if name not in self.index:
                self.index[name] = len(self.order)
                self.order.append(name)
        return array.array("q", [counts.get(name, 0) for name in self.order]).tobytes()

    def decode(self, raw: bytes) -> dict[str, int]:
        values = array.array("q")
        values.frombytes(raw)
        return {name: n for name, n in zip(self.order, values, strict=False) if n}


@dataclass(frozen=True, slots=True)
class _Point:
    """One timeline snapshot, reduced to what the run keeps.

    The counts are kept as bytes of machine integers (one untracked allocation each,
    outside the small-object allocator when large) rather than dicts of int objects,
    so that the timeline itself does not show up as steady growth.
    """

    time: float
    rss: int | None
    blocks: int
    objects: int
    traced: int | None
    type_counts: bytes
    container_counts: bytes
    type_names: _Names
    container_names: _Names

    @property
    def types(self) -> dict[str, int]:
        return self.type_names.decode(self.type_counts)

    @property
    def containers(self) -> dict[str, int]:
        return self.container_names.decode(self.container_counts)


def _point(snap: Snapshot, started: float, names: tuple[_Names, _Names]) -> _Point:
    return _Point(
        time=max(0.0, snap.time - started),
        rss=snap.rss,
        blocks=snap.blocks,
        objects=snap.objects,
        traced=snap.traced,
        type_counts=names[0].encode(dict(snap.types)),
        container_counts=names[1].encode(dict(snap.containers)),
        type_names=names[0],
        container_names=names[1],
    )


_ADAPTIVE_START = 0.1  # seconds between the first snapshots of an adaptive run
_ADAPTIVE_POINTS = 32  # an adaptive run halves its points and doubles its interval past this
_MAX_SHARE = 0.1  # an adaptive run spends at most about this share of its time sampling


class _Timer:
    """The default trigger: a snapshot every ``interval`` seconds of wall-clock time."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def wait(self, seconds: float) -> bool:
        """Wait for the next snapshot; True when the run has ended instead."""
        return self._stop.wait(seconds)

    def taken(self) -> None:
        """A snapshot was taken (nothing to do for a timer)."""

    def stop(self) -> None:
        self._stop.set()


class Ticks:
    """A count trigger for :func:`run_program`: a snapshot each time :meth:`tick` is called.

    With ``run_program(..., trigger=ticks)`` the sampler takes no snapshot on its own:
    the program (or a test driving it) calls ``ticks.tick()``, which returns once
    the snapshot has been taken, so every interval holds exactly the work done
    between two ticks, whatever the machine's load.

    >>> ticks = Ticks()
    >>> ticks.stop(); ticks.wait(1.0)
    True
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._requested = 0
        self._taken = 0
        self._stopped = False

    def tick(self, timeout: float = 30.0) -> bool:
        """Ask for a snapshot and wait until it is taken; False if the run ended first."""
        with self._cond:
            if self._stopped:
                return False
            self._requested += 1
            wanted = self._requested
            self._cond.notify_all()
            return (
                self._cond.wait_for(lambda: self._taken >= wanted or self._stopped, timeout=timeout)
                and self._taken >= wanted
            )

    def wait(self, seconds: float) -> bool:
        """The sampler's side: wait for a tick (``seconds`` is ignored); True when stopped."""
        del seconds
        with self._cond:
            self._cond.wait_for(lambda: self._requested > self._taken or self._stopped)
            return self._stopped

    def taken(self) -> None:
        with self._cond:
            self._taken += 1
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()


@dataclass
class _Sampler:
    """Takes a snapshot every ``interval`` seconds on a daemon thread.

    ``adaptive``: the interval starts short and doubles, every other point being
    dropped, whenever the points would exceed ``_ADAPTIVE_POINTS``; so a short run
    still gets enough points to show a trend, a long one keeps a bounded, evenly
    spaced timeline, and sampling never takes much more than ``_MAX_SHARE`` of the time.
    """

    interval: float
    started: float
    progress: TextIO | None
    adaptive: bool = False
    points: list[_Point] = field(default_factory=list)
    names: tuple[_Names, _Names] = field(default_factory=lambda: (_Names(), _Names()))
    trigger: _Timer | Ticks = field(default_factory=_Timer)
    stopped: bool = False
    stride: int = 1  # with ticks: a point every ``stride`` ticks (doubles with the interval)
    ticks: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="leakscope-run", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.trigger.wait(self.interval):
            self.ticks += 1
            try:
                if self.ticks % self.stride == 0:
                    self._sample()
            finally:
                self.trigger.taken()

    def _sample(self) -> None:
        begun = time.perf_counter()
        try:
            snap = snapshot(collect=False, memory=False)
        except Exception:  # the program mutated the heap mid-scan: skip
            return
        point = _point(snap, self.started, self.names)
        del snap
        with self.lock:
            if self.stopped:
                return
            self.points.append(point)
            if self.adaptive:
                self._adapt(time.perf_counter() - begun)
        self._show(point)

    def _adapt(self, cost: float) -> None:
        if len(self.points) > _ADAPTIVE_POINTS:
            self.points[:] = self.points[::2]
            self.interval *= 2
            self.stride *= 2
        if isinstance(self.trigger, _Timer):
            while cost > _MAX_SHARE * self.interval:
                self.interval *= 2

    def _show(self, point: _Point) -> None:
        if self.progress is None:
            return
        with contextlib.suppress(Exception):
            self.progress.write(
                f"\r\x1b[K[leakscope] {point.time:7.1f} s  RSS {format_bytes(point.rss):>10}"
                f"  {point.objects:>12,} objects"
            )
            self.progress.flush()

    def finish(self) -> list[_Point]:
        with self.lock:
            self.stopped = True
            points = list(self.points)
        self.trigger.stop()
        if self.thread is not None:
            self.thread.join(timeout=5.0)
        if self.progress is not None:
            with contextlib.suppress(Exception):
                self.progress.write("\r\x1b[K")
                self.progress.flush()
        return points


# -- running the program ------------------------------------------------------------------


def _script_code(path: str) -> tuple[types.CodeType, dict[str, Any]]:
    if not os.path.isfile(path):
        raise RunError(f"no such script: {path}")
    try:
        with io.open_code(path) as f:
            source = f.read()
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror or exc}") from None
    code = compile(source, path, "exec", dont_inherit=True)
    return code, {"__file__": path, "__spec__": None, "__package__": None}


def _module_code(name: str) -> tuple[types.CodeType, dict[str, Any]]:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        raise RunError(f"cannot find module {name!r}: {exc}") from None
    if spec is None:
        raise RunError(f"no module named {name!r}")
    if spec.submodule_search_locations is not None:  # a package: run its __main__
        return _module_code(f"{name}.__main__")
    loader = spec.loader
    get_code = getattr(loader, "get_code", None)
    code = get_code(spec.name) if get_code is not None else None
    if code is None:
        raise RunError(f"module {name!r} has no code to run")
    return code, {
        "__file__": spec.origin,
        "__spec__": spec,
        "__package__": spec.parent,
        "__loader__": loader,
    }


def _user_traceback(exc: BaseException) -> str:
    """The traceback without leakscope's own frames on top."""
    tb = exc.__traceback__
    while tb is not None and (
        os.path.dirname(os.path.abspath(tb.tb_frame.f_code.co_filename)) + os.sep
    ).startswith(_OWN_DIR + os.sep):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


@dataclass
class _Outcome:
    exit_code: int | None = 0
    error: str | None = None
    keep: list[object] = field(default_factory=list)  # alive until the exit snapshot


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    with contextlib.suppress(Exception):
        print(code, file=sys.stderr)
    return 1


def _join_threads() -> None:
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon and thread.is_alive():
            thread.join()


def _execute(code: types.CodeType, namespace: dict[str, Any], argv: list[str]) -> _Outcome:
    main = types.ModuleType("__main__")
    main.__dict__.update(namespace)
    main.__dict__["__builtins__"] = __builtins__
    saved_main = sys.modules.get("__main__")
    saved_argv = sys.argv[:]
    saved_path0 = sys.path[0] if sys.path else None
    sys.modules["__main__"] = main
    sys.argv[:] = argv
    script_dir = (
        os.path.dirname(os.path.abspath(namespace["__file__"]))
        if namespace.get("__spec__") is None
        else os.getcwd()
    )
    if sys.path:
        sys.path[0] = script_dir
    else:
        sys.path.append(script_dir)
    outcome = _Outcome(keep=[main, saved_main])
    try:
        exec(code, main.__dict__)  # running the user's program is the point
        _join_threads()  # the program ends when its non-daemon threads do, as at exit
    except SystemExit as exc:
        outcome.exit_code = _exit_code(exc)
    except KeyboardInterrupt:
        outcome.exit_code = 130
        outcome.error = "interrupted"
    except BaseException as exc:  # the program's own failure, reported
        outcome.exit_code = 1
        outcome.error = _user_traceback(exc)
        # The traceback's frames keep the program's objects alive, as at a real exit.
        outcome.keep.append(exc)
        with contextlib.suppress(Exception):
            sys.stderr.write(outcome.error)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        sys.argv[:] = saved_argv
        if saved_path0 is not None and sys.path:
            sys.path[0] = saved_path0
    return outcome


# -- judging the run ----------------------------------------------------------------------


def _culprits(
    points: Sequence[_Point], final: Snapshot, growth: Growth, interval: float
) -> list[Culprit]:
    """Steady growth over the last intervals, confirmed by the collected exit snapshot."""
    if len(points) < _MIN_INTERVALS + 1:
        return []
    measured = [
        Measured(
            run=Run(1, b.time - a.time, b.objects - a.objects, b.blocks - a.blocks, None, 0),
            types=changes(a.types, b.types),
            containers=changes(a.containers, b.containers),
            garbage=0,
            gc_garbage=0,
        )
        for a, b in itertools.pairwise(points)
    ]
    assessment = assess(measured)
    # Only what is still there after the final collection counts.
    grown_types = {d.name for d in growth.types if d.delta > 0}
    grown_containers = {d.name for d in growth.containers if d.delta > 0}
    assessment.leaking_types = {
        k: v for k, v in assessment.leaking_types.items() if k in grown_types
    }
    assessment.leaking_containers = {
        k: v for k, v in assessment.leaking_containers.items() if k in grown_containers
    }
    assessment.rss = 0.0  # resident memory alone is reported as growth, not as a culprit
    if growth.blocks < _GROWTH_BLOCKS // 10:
        assessment.blocks = 0.0
    assessment.garbage = assessment.gc_garbage = 0.0
    if not assessment.leaked:
        return []
    unit_note = f"rates are per sampling interval of {interval:g} s"
    out = []
    for c in culprits_from_growth(assessment, dict(final.container_types)):
        holders = tuple(
            Holder.container(h.key, h.container_type, h.rate, per="interval")
            if h.key is not None
            else h
            for h in c.holders
        )
        out.append(dataclasses.replace(c, holders=holders, notes=(*c.notes, unit_note)))
    return out


def _grew(growth: Growth) -> bool:
    return (
        growth.objects >= _GROWTH_OBJECTS
        or growth.blocks >= _GROWTH_BLOCKS
        or (growth.rss is not None and growth.rss >= _GROWTH_RSS)
    )


def _timeline(points: Sequence[_Point]) -> list[dict[str, Any]]:
    last = points[-1]
    first = points[0]
    followed = sorted(
        set(last.types) | set(first.types),
        key=lambda name: (-abs(last.types.get(name, 0) - first.types.get(name, 0)), name),
    )[:_TOP_TYPES]
    return [
        {
            "time": p.time,
            "rss": p.rss,
            "blocks": p.blocks,
            "objects": p.objects,
            "traced": p.traced,
            "types": {name: p.types.get(name, 0) for name in followed},
        }
        for p in points
    ]


def _load(target: str, module: bool) -> tuple[types.CodeType, dict[str, Any]]:
    try:
        return _module_code(target) if module else _script_code(target)
    except SyntaxError as exc:
        raise RunError(f"{target}: syntax error: {exc}") from None


def _find_cycles() -> CycleReport | None:
    try:
        return find_cycles()
    except Exception:  # never lose the report over the cycle analysis
        return None


def _with_sites(culprits: list[Culprit]) -> list[Culprit]:
    """Each object culprit with the allocation sites of its surviving objects."""
    wanted = {c.types[0] for c in culprits if c.kind == "objects" and c.types}
    if not wanted:
        return culprits
    sites = allocation_sites(wanted)
    return [
        dataclasses.replace(c, allocated_at=sites.get(c.types[0], ()))
        if c.kind == "objects" and c.types and not c.allocated_at
        else c
        for c in culprits
    ]


def _verdict(culprits: Sequence[Culprit], growth: Growth) -> str:
    if culprits:
        return "leak"
    return "growth" if _grew(growth) else "clean"


def run_program(
    target: str,
    args: Sequence[str] = (),
    *,
    module: bool = False,
    interval: float | None = None,
    progress: TextIO | None = None,
    trigger: Ticks | None = None,
    trace: bool = False,
) -> dict[str, Any]:
    """Run ``target`` (a script path, or a module name with ``module=True``) under observation.

    Returns the run data (contract D: ``format`` ``leakscope.run``).  Raises
    :class:`RunError` when the program cannot be found or compiled.  ``progress``,
    when given, receives a live line at each interval.  ``interval=None`` adapts the
    interval to the run (see :class:`_Sampler`).  ``trigger``: a :class:`Ticks` whose
    ``tick()`` calls take the snapshots instead of the clock.  ``trace=True`` starts
    ``tracemalloc`` for the run (the program runs slower) so that each culprit names
    where its objects were allocated.
    """
    if interval is not None and not (interval > 0):
        raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
    code, namespace = _load(target, module)
    argv = [str(namespace["__file__"] or target), *args]
    started_tracing = trace and not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start(_NFRAME)
    try:
        first = snapshot()
        started = first.time
        sampler = _Sampler(
            _ADAPTIVE_START if interval is None else interval,
            started,
            progress,
            adaptive=interval is None,
            trigger=trigger or _Timer(),
        )
        names = sampler.names
        sampler.points.append(_point(first, started, names))
        sampler.start()
        try:
            outcome = _execute(code, namespace, argv)
        except KeyboardInterrupt:  # arrived between our own statements
            outcome = _Outcome(exit_code=130, error="interrupted")
        points = sampler.finish()
        interval = sampler.interval
        del sampler  # its thread, event and lock are not the program's growth
        cycles = _find_cycles()
        last = snapshot()
        data = _assemble(
            first,
            points,
            last,
            names,
            interval=interval,
            argv=["-m", target, *args] if module else [target, *args],
            pid=os.getpid(),
            exit_code=outcome.exit_code,
            error=outcome.error,
            cycles=cycles,
            trace=trace,
        )
    finally:
        if started_tracing:
            tracemalloc.stop()
    outcome.keep.clear()
    return data


def run_data(
    snapshots: Sequence[Snapshot],
    *,
    argv: Sequence[str],
    pid: int,
    interval: float,
    exit_code: int | None = None,
    error: str | None = None,
    cycles: CycleReport | None = None,
) -> dict[str, Any]:
    """The run data (contract D, as :func:`run_program` returns) of snapshots, oldest first.

    The first and the last snapshot should follow a full collection, as
    :func:`run_program`'s do: the growth is the last minus the first, and the
    culprits come from the steady growth between the snapshots before the last,
    taken every ``interval`` seconds.  Used by ``leakscope attach``, whose snapshots
    are taken in another process.  Call it where the snapshots were taken: the
    holders are read from the live containers.
    """
    if len(snapshots) < 2:
        raise ValueError(f"run_data() needs at least two snapshots, not {len(snapshots)}")
    names = (_Names(), _Names())
    points = [_point(snap, snapshots[0].time, names) for snap in snapshots[:-1]]
    return _assemble(
        snapshots[0],
        points,
        snapshots[-1],
        names,
        interval=interval,
        argv=list(argv),
        pid=pid,
        exit_code=exit_code,
        error=error,
        cycles=cycles,
        trace=tracemalloc.is_tracing(),
    )


def _assemble(
    first: Snapshot,
    points: Sequence[_Point],
    last: Snapshot,
    names: tuple[_Names, _Names],
    *,
    interval: float,
    argv: list[str],
    pid: int,
    exit_code: int | None,
    error: str | None,
    cycles: CycleReport | None,
    trace: bool,
) -> dict[str, Any]:
    """The run data from the first snapshot, the timeline points and the last snapshot."""
    started = first.time
    growth = last - first
    culprits = _culprits(points, last, growth, interval)
    if trace:
        culprits = _with_sites(culprits)
    return {
        "format": FORMAT,
        "version": VERSION,
        "argv": argv,
        "python": first.python,
        "pid": pid,
        "started": started,
        "elapsed": last.time - started,
        "exit_code": exit_code,
        "error": error,
        "verdict": _verdict(culprits, growth),
        "timeline": _timeline([*points, _point(last, started, names)]),
        "growth": growth.to_dict(),
        "culprits": [c.to_dict() for c in culprits],
        "cycles": None if cycles is None else cycles.to_dict(),
    }


# -- text ---------------------------------------------------------------------------------


def _culprit_lines(index: int, c: dict[str, Any], interval: float | None) -> list[str]:
    names = ", ".join(c.get("types") or []) or c.get("kind", "?")
    unit = c.get("unit", "objects")
    rate = float(c.get("per_call", 0))
    per_second = f", about {rate / interval:,.0f}/s" if interval else ""
    lines = [f"  {index}. {names}: +{rate:,.1f} {unit} per interval{per_second} ({c['kind']})"]
    lines += [f"     held by {h['description']}" for h in c.get("holders", [])]
    lines += [f"     allocated at {site}" for site in c.get("allocated_at", [])]
    if c.get("hint"):
        lines.append(f"     hint: {c['hint']}")
    return lines


def format_run(data: dict[str, Any]) -> str:
    """The run data as text for people."""
    growth = data["growth"]
    points = len(data["timeline"])
    status = (
        "interrupted" if data.get("error") == "interrupted" else f"exit code {data['exit_code']}"
    )
    lines = [
        f"leakscope run: {' '.join(data['argv'])} ({status}, {data['elapsed']:.1f} s, "
        f"{points} snapshots)",
        "",
        "Growth over the run (start -> exit, each after a full collection): "
        f"{growth['objects']:+,} objects, {growth['blocks']:+,} blocks, "
        f"RSS {format_bytes_delta(growth['rss'])}",
    ]
    increased = [t for t in growth["types"] if t["delta"] > 0][:10]
    if increased:
        width = max(len(t["name"]) for t in increased)
        lines += [f"  {t['name']:<{width}}  {t['delta']:>+12,}" for t in increased]
    containers = [t for t in growth["containers"] if t["delta"] > 0][:5]
    lines += [f"  container {t['name']}: {t['delta']:+,} entries" for t in containers]
    lines.append("")
    culprits = data["culprits"]
    if culprits:
        lines.append("Culprits (grew steadily in each of the last intervals and at exit):")
        times = [p["time"] for p in data["timeline"][:-1]]  # the exit point comes off-beat
        interval = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else None
        for i, c in enumerate(culprits, 1):
            lines += _culprit_lines(i, c, interval)
        lines.append("")
    cycles = data.get("cycles")
    if cycles is not None:
        report = CycleReport.from_dict(cycles)
        lines += [f"Cycles at exit: {report}", ""]
    verdict = data["verdict"]
    if verdict == "leak":
        n = len(culprits)
        lines.append(f"Verdict: LEAK: {n} culprit{'s' if n != 1 else ''} grew steadily.")
    elif verdict == "growth":
        short = points - 1 < _MIN_INTERVALS + 1
        why = (
            f"the run was too short to see a trend ({points} snapshots; try a smaller --interval)"
            if short
            else "no type or container grew steadily (one-off or native growth)"
        )
        lines.append(f"Verdict: memory grew over the run, no culprit found: {why}.")
    else:
        lines.append("Verdict: clean: no steady growth and no significant growth over the run.")
    return "\n".join(lines)
