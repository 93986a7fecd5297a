"""The agent: runs in the target, on the bootstrap's ``leakscope-attach`` thread.

It takes the series of snapshots over the window, sends each one to the tool as
it goes (so a target that exits still leaves a partial report), then builds the
report *in the target*, where the growing containers can be read and the paths
from the roots found, and sends that::

    warm-up census; full collection; first snapshot      (with the memory breakdown)
    every interval: a census without collection          (the trend)
    full collection; last snapshot                       (with the memory breakdown)
    cycles; the run data (as leakscope run's); a root path per culprit type;
    with trace_allocations: the allocation lines of the culprits' objects

Each step that holds the GIL is timed; the longest is the pause the target saw.
The agent changes no interpreter state of the target's: the collector's flags,
thresholds, callbacks and freeze state are read before and after and reported
(:func:`leakscope.find_cycles` restores what it changes for its one collection);
``tracemalloc`` is started only with ``trace_allocations`` and only if it was
off, and stopped again at the end.  It deliberately does not use
``leakscope._interpreter.preserved`` for the whole window: restoring the saved
state at the end would undo the target's own changes made meanwhile.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import math
import os
import socket
import sys
import sysconfig
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from leakscope import __version__
from leakscope._heap import type_name
from leakscope._snapshot import Snapshot, snapshot
from leakscope.attach.protocol import STOP, encode
from leakscope.cycles import CycleReport, find_cycles
from leakscope.engine.program import run_data
from leakscope.retention import why_alive

__all__ = ["gc_state", "serve"]

_T = TypeVar("_T")
_FRAMES = 4  # tracemalloc frames kept, to find the first one outside the stdlib
_COST_SHARE = 0.1  # the agent spends at most about this share of the window measuring
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SITES = 3  # allocation lines per culprit


def gc_state() -> dict[str, Any]:
    """The collector's settings that the agent must leave as they were."""
    return {
        "enabled": gc.isenabled(),
        "threshold": list(gc.get_threshold()),
        "debug": gc.get_debug(),
        "callbacks": len(gc.callbacks),
        "frozen": gc.get_freeze_count(),
        "garbage": len(gc.garbage),
    }


class _ToolGone(Exception):
    """The tool closed its end of the socket: stop at once, without a report."""


class _Agent:
    def __init__(self, sock: socket.socket, config: Mapping[str, Any]) -> None:
        self.sock = sock
        self.duration = float(config.get("duration", 30.0))
        self.interval = float(config.get("interval", 2.0))
        self.trace = bool(config.get("trace_allocations", False))
        self.count = int(config.get("snapshots", 0))  # 0: as many as the duration allows
        self.pauses: list[float] = []
        self.cpu: list[float] = []  # the same steps in this thread's CPU time
        self.stop_requested = False
        # Names and values shared by the kept snapshots: the agent's own memory stays
        # flat, so that it does not show as the target's growth.
        self.strings: dict[str, str] = {}
        self.ints: dict[int, int] = {}

    def send(self, kind: str, **fields: Any) -> None:
        self.sock.sendall(encode(kind, **fields))

    def timed(self, func: Callable[[], _T]) -> _T:
        """Call ``func``, recording its wall time (the pause) and CPU time (without the
        time a loaded machine kept the thread waiting for a core)."""
        begun, cpu = time.perf_counter(), time.thread_time()
        try:
            return func()
        finally:
            self.pauses.append(time.perf_counter() - begun)
            self.cpu.append(time.thread_time() - cpu)

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, ending early when the tool says ``stop``."""
        if self.stop_requested or seconds <= 0:
            return
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(64)
        except TimeoutError:
            return
        finally:
            self.sock.settimeout(None)
        if not data:
            raise _ToolGone
        if STOP.strip() in data:
            self.stop_requested = True

    def compact(self, snap: Snapshot) -> Snapshot:
        """``snap`` with its names and counts shared with the snapshots already kept."""
        s, n = self.strings, self.ints

        def share(mapping: Mapping[str, int]) -> dict[str, int]:
            return {s.setdefault(k, k): n.setdefault(v, v) for k, v in mapping.items()}

        kinds = {s.setdefault(k, k): s.setdefault(v, v) for k, v in snap.container_types.items()}
        return dataclasses.replace(
            snap, types=share(snap.types), containers=share(snap.containers), container_types=kinds
        )

    def take(self, index: int, *, full: bool) -> Snapshot:
        if full:
            self.timed(gc.collect)
            time.sleep(0)  # let the target's threads run between the two pauses
        before = len(self.pauses)
        snap = self.timed(lambda: snapshot(collect=False, memory=full))
        self.send("snapshot", index=index, seconds=self.pauses[before], snapshot=snap.to_dict())
        return self.compact(snap)

    def series(self) -> list[Snapshot]:
        self.timed(lambda: snapshot(collect=False, memory=True))  # warm-up, not kept
        time.sleep(0)
        started = time.monotonic()
        deadline = started + self.duration if not self.count else math.inf
        snaps = [self.take(0, full=True)]
        due = started
        while not self.count or len(snaps) < self.count - 1:
            cost = max(self.pauses[-1], 0.0)
            due = max(due + self.interval, time.monotonic() + cost / _COST_SHARE - cost)
            if due >= deadline or self.stop_requested:
                break
            self.wait(due - time.monotonic())
            if self.stop_requested:
                break
            snaps.append(self.take(len(snaps), full=False))
        self.wait((deadline if not self.count else due + self.interval) - time.monotonic())
        snaps.append(self.take(len(snaps), full=True))
        return snaps

    def run(self) -> None:
        gc_before = gc_state()
        was_tracing = tracemalloc.is_tracing()
        started_tracing = False
        if self.trace and not was_tracing:
            tracemalloc.start(_FRAMES)
            started_tracing = True
        self.send(
            "hello",
            pid=os.getpid(),
            python=sys.version.split()[0],
            leakscope=__version__,
            tracing=was_tracing,
        )
        try:
            snaps = self.series()
            analysis = time.perf_counter()
            cycles = self.cycles()
            data = run_data(
                snaps,
                argv=sys.argv,
                pid=os.getpid(),
                interval=_mean_interval(snaps),
                cycles=cycles,
            )
            memory = snaps[-1].memory
            first_memory = snaps[0].memory
            del snaps
            self.explain(data["culprits"])
            if started_tracing or was_tracing:
                self.window_sites(data["culprits"])
            analysis = time.perf_counter() - analysis
        except _ToolGone:
            return
        finally:
            if started_tracing:
                tracemalloc.stop()
        self.send(
            "report",
            data=data,
            attach={
                "pauses": self.pauses,
                "longest_pause": max(self.pauses, default=0.0),
                "longest_pause_cpu": max(self.cpu, default=0.0),
                "analysis_seconds": analysis,
                "interrupted": self.stop_requested,
                "tracemalloc": (
                    "started and stopped by leakscope"
                    if started_tracing
                    else ("already running: left running" if was_tracing else "off")
                ),
                "gc_before": gc_before,
                "gc_after": gc_state(),
                "memory": None if memory is None else memory.to_dict(),
                "memory_start": None if first_memory is None else first_memory.to_dict(),
            },
        )

    def cycles(self) -> CycleReport | None:
        try:
            return self.timed(find_cycles)
        except Exception:  # never lose the report over the cycle analysis
            return None

    def explain(self, culprits: list[dict[str, Any]]) -> None:
        """Add a path from a root to each culprit type, and with tracing its allocation lines."""
        wanted = {name for c in culprits for name in c.get("types", [])[:1]}
        if not wanted:
            return
        for name, objects in self.timed(lambda: _objects_of(wanted)).items():
            for c in culprits:
                if c.get("types", [])[:1] != [name]:
                    continue
                if not any(h.get("kind") == "path" for h in c.get("holders", [])):
                    path = self.timed(functools.partial(_root_path, objects))
                    if path:
                        c["holders"] = [*c.get("holders", []), path]
                if self.trace and not c.get("allocated_at"):
                    c["allocated_at"] = self.timed(functools.partial(_sites, objects))
            objects.clear()

    def window_sites(self, culprits: list[dict[str, Any]]) -> None:
        """Where the memory still allocated was allocated, for culprits with no line yet.

        Per-object tracebacks are missing for objects from free lists (lists, tuples)
        and, on 3.11, for instances with managed dicts; the lines whose traced memory
        is largest now stand in for them, as ``leakscope.check`` does for its runs.
        """
        if not any(self.trace and not c.get("allocated_at") for c in culprits):
            return
        sites = self.timed(_largest_sites)
        for c in culprits:
            if not c.get("allocated_at"):
                c["allocated_at"] = sites


def _largest_sites() -> list[str]:
    if not tracemalloc.is_tracing():
        return []
    ignore = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, os.path.join(_OWN_DIR, "*"), all_frames=True),  # the agent's
    ]
    by_site: Counter[str] = Counter()
    for stat in tracemalloc.take_snapshot().filter_traces(ignore).statistics("traceback"):
        frame = _user_frame(reversed(stat.traceback))
        if frame is not None:
            by_site[f"{frame.filename}:{frame.lineno}"] += stat.size
    return [f"{site} ({size:,} bytes traced now)" for site, size in by_site.most_common(_SITES)]


def _mean_interval(snaps: list[Snapshot]) -> float:
    middle = snaps[:-1]
    if len(middle) < 2:
        return max(snaps[-1].time - snaps[0].time, 1e-3)
    return max((middle[-1].time - middle[0].time) / (len(middle) - 1), 1e-3)


def _objects_of(names: set[str]) -> dict[str, list[object]]:
    """The live objects of the types named, newest last, at most a thousand per type."""
    found: dict[str, list[object]] = {name: [] for name in names}
    named: dict[type, str | None] = {}
    objects = gc.get_objects()
    try:
        for obj in reversed(objects):  # the newest objects are at the end
            tp = type(obj)
            if tp in named:
                name = named[tp]
            else:
                full = type_name(tp)
                name = named[tp] = full if full in names else None
            if name is not None and len(found[name]) < 1000:
                found[name].append(obj)
    finally:
        del objects
    return found


def _root_path(objects: list[object]) -> dict[str, str] | None:
    """How the newest of ``objects`` is reached from a root, as a run-data holder."""
    for obj in objects[:3]:
        retention = why_alive(obj, max_paths=1)
        if retention.paths:
            text = retention.paths[0].format(show_values=False)
            return {"description": text, "kind": "path", "detail": "the newest one, from a root"}
    return None


def _user_frame(frames: Iterator[tracemalloc.Frame]) -> tracemalloc.Frame | None:
    """The most recent frame in the application's code: not the stdlib's, not leakscope's."""
    stdlib = sysconfig.get_paths()["stdlib"] + os.sep
    for frame in frames:
        if not frame.filename.startswith((stdlib, _OWN_DIR + os.sep, "<")):
            return frame
    return None


def _sites(objects: list[object]) -> list[str]:
    """The allocation lines of ``objects`` (traced ones: allocated since tracing began)."""
    counts: Counter[str] = Counter()
    for obj in objects:
        traceback = tracemalloc.get_object_traceback(obj)
        if traceback is None:
            continue
        frame = _user_frame(reversed(traceback))  # most recent call first
        if frame is not None:
            counts[f"{frame.filename}:{frame.lineno}"] += 1
    return [f"{site} ({n} of the {len(objects)} newest)" for site, n in counts.most_common(_SITES)]


@contextmanager
def _closing_on_error(sock: socket.socket) -> Iterator[None]:
    try:
        yield
    except (BrokenPipeError, ConnectionResetError):  # the tool went away
        return


def serve(sock: socket.socket, config: Mapping[str, Any]) -> None:
    """Run the agent on the connected ``sock`` (called by the bootstrap, on its thread).

    ``config``: ``duration`` and ``interval`` in seconds, ``trace_allocations``, and
    ``snapshots`` (a count that replaces the duration when it is not 0).
    """
    with _closing_on_error(sock):
        _Agent(sock, config).run()
