"""Explaining a leak: culprits, what holds them, where they were allocated, how to fix it.

:func:`explain` runs after :func:`leakscope.check` has decided that a function
leaks.  It calls the function a few more times, keeping the ids of the objects
of each leaking type that existed before, and then looks at the new survivors
(only during the analysis; nothing is kept afterwards):

- *what holds them*: the module/class containers that grew along with them
  (``module app.cache: _CACHE (dict, +3.0 entries/call)``) and retention paths
  from a root a person recognises (``leakscope._refgraph.find_paths``);
- *where they were allocated*: ``file.py:LINE`` from ``tracemalloc`` (the most
  recent frame outside leakscope and the standard library);
- finalizers (classes with ``__del__``) and objects that nothing refers to (a
  reference-count leak in C code);
- a one-line hint of the usual fix.

:func:`leakscope.engine.model.format_report` renders the report as text.
"""

from __future__ import annotations

import gc
import math
import os
import sys
import time
import tracemalloc
import types
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import TYPE_CHECKING, Any, Literal

from leakscope._format import format_rate
from leakscope._heap import MODULE_DICT, TYPE_DICT, TYPE_MRO, type_name
from leakscope._refgraph import RetentionPath, find_paths
from leakscope._roots import ContainerKey
from leakscope.engine.bounds import Bound, CacheFill, declared_bound
from leakscope.engine.calls import OWN_DIR, STDLIB_DIRS, Stopped, is_user_file, runner_dirs
from leakscope.engine.hints import Facts, choose, hint_text, note_text
from leakscope.engine.model import Culprit, Holder
from leakscope.engine.sizes import SizeWatch

if TYPE_CHECKING:
    from leakscope._interpreter import InterpreterState
    from leakscope.engine.signals import Assessment, Measured

__all__ = ["Explained", "allocation_sites", "culprits_from_growth", "explain"]

_NFRAME = 12
_SAMPLES_PER_TYPE = 40
_PATH_SAMPLES_PER_TYPE = 3
_PATH_SEARCHES = 4  # extra searches, one per type still without a path
_ANALYSIS_SECONDS = 1.0
_REACH_ITEMS = 2000
_MAX_GROWING = (
    3  # growing untracked containers named at most  # container items whose own referents are read
)
_TRACE_SLOWDOWN = 15.0
_TRACED_CALLS = 512  # analysis calls wanted for bytes per call, when time allows


# Types that usually come along with another leak rather than being the leak.
_COMPANIONS = frozenset(
    {
        "dict",
        "tuple",
        "list",
        "cell",
        "frame",
        "traceback",
        "function",
        "method",
        "set",
        "weakref.ReferenceType",
        "weakref",
        "builtin_function_or_method",
    }
)

_OWN_DIR = OWN_DIR
_STDLIB = STDLIB_DIRS
_runner_dirs = runner_dirs
_is_user_file = is_user_file


def _site(frames: Sequence[tracemalloc.Frame]) -> str | None:
    """``file.py:LINE`` of the most recent user frame (``frames`` oldest first).

    Only frames more recent than leakscope's own count: an allocation with no
    user frame above leakscope's frames was leakscope's, and gives ``None``.
    Test-runner frames (pytest, pluggy) are never the user's.
    """
    if not frames:
        return None
    runners = _runner_dirs()
    start = 0
    for i, frame in enumerate(frames):
        if os.path.abspath(frame.filename).startswith(_OWN_DIR + os.sep):
            start = i + 1
    recent = list(frames[start:])
    if not recent:
        return None
    for frame in reversed(recent):
        if _is_user_file(frame.filename, runners):
            return f"{_short_path(frame.filename)}:{frame.lineno}"
    if start:
        return None  # stdlib called by leakscope itself
    return f"{_short_path(recent[-1].filename)}:{recent[-1].lineno}"


def _short_path(filename: str) -> str:
    try:
        rel = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if rel.startswith("..") else rel


def _element_types(container: object) -> tuple[Counter[str], frozenset[str]]:
    """The types of a container's items, and the types one level further down.

    The second level names what a list of bound methods or of closures keeps: the
    methods' instances, the closures' cells.  At most a few thousand items are read.
    """
    if container is None:
        return Counter(), frozenset()
    items = gc.get_referents(container)
    try:
        first = Counter(type_name(type(item)) for item in items)
        deeper = gc.get_referents(*items[:_REACH_ITEMS])
        reach = frozenset(type_name(type(item)) for item in deeper if not isinstance(item, type))
        del deeper
        return first, reach
    finally:
        del items


# -- the analysis pass --------------------------------------------------------------------


@dataclass
class Explained:
    """What :func:`explain` found: ranked culprits, traced bytes per call and notes."""

    culprits: tuple[Culprit, ...]
    bytes_per_call: float | None
    notes: list[str] = field(default_factory=list)
    bounded: tuple[str, ...] = ()
    """Bounded caches filling up to their declared size that account for growth."""


@dataclass(frozen=True, slots=True)
class _Path:
    """One retention path, as text and as the structured facts a hint reads."""

    text: str
    detail: str
    types: tuple[str, ...]
    steps: tuple[str, ...]

    def leaked_types(self) -> tuple[str, ...]:
        """The types between the holding container and the target: those that may be new.

        The root and what it holds directly (a module global, a class attribute, a
        function's ``__defaults__`` tuple and the default in it) are long-lived.
        """
        skip = 3 if self.steps[:1] == (".__defaults__",) else 2
        return self.types[skip:-1]

    @classmethod
    def of(cls, path: RetentionPath) -> _Path:
        return cls(
            path.format(show_values=False),
            path.format(show_values=True),
            tuple(str(t) for t in path.types),
            tuple(str(s) for s in path.steps),
        )


@dataclass
class _TypeFindings:
    name: str
    rate: float
    samples: int = 0
    sites: Counter[str] = field(default_factory=Counter)
    paths: list[_Path] = field(default_factory=list)
    no_referrers: int = 0
    checked_referrers: int = 0
    has_del: bool = False
    is_exception: bool = False
    is_log_handler: bool = False
    owner: str | None = None  # the culprit type this one comes along with
    bounded: str | None = None  # the bounded cache filling with these objects


@dataclass(frozen=True, slots=True)
class _Container:
    """A container that grew: its key, type name, rate and the types of its items."""

    key: ContainerKey
    type: str
    rate: float
    elements: Counter[str]
    reach: frozenset[str] = frozenset()  # the types the items refer to
    bound: Bound | None = None

    def holder(self) -> Holder:
        return Holder.container(self.key, self.type, self.rate)


@dataclass(frozen=True, slots=True)
class _Growing:
    """An untracked container or buffer that grew in place: its path, type and rate."""

    path: str
    type: str
    unit: Literal["entries", "bytes"]
    rate: float

    def culprit(self, sites: tuple[str, ...]) -> Culprit:
        buffer = self.unit == "bytes"
        facts = Facts("container", container_type=self.type)
        return Culprit(
            kind="container",
            types=(self.type,),
            per_call=self.rate,
            unit=self.unit,
            holders=(
                Holder(
                    f"{self.path} ({self.type}, +{format_rate(self.rate)} {self.unit}/call)",
                    "path",
                ),
            ),
            allocated_at=sites,
            notes=() if buffer else (note_text("untracked_items"),),
            hint=hint_text(choose(facts)),
        )


@dataclass
class _Garbage:
    """Cyclic garbage freed after the analysis calls: its types, sites and finalizers."""

    types: Counter[str] = field(default_factory=Counter)
    sites: Counter[str] = field(default_factory=Counter)
    finalizers: set[str] = field(default_factory=set)


@dataclass
class _Evidence:
    """Everything the culprits are built from."""

    assessment: Assessment
    findings: dict[str, _TypeFindings]
    containers: list[_Container]
    untracked_sites: list[tuple[str, float]] = field(default_factory=list)
    bytes_per_call: float | None = None
    garbage: _Garbage = field(default_factory=_Garbage)
    trace: bool = False
    filling: list[str] = field(default_factory=list)  # bounded caches that grew
    mains: set[str] = field(default_factory=set)  # the main type of each object culprit
    growing: list[_Growing] = field(default_factory=list)  # untracked containers, buffers
    bounded: list[str] = field(default_factory=list)  # those that account for a culprit


def _defines_del(tp: type) -> bool:
    try:
        mro = TYPE_MRO.__get__(tp)
        return any(
            k is not object and "__del__" in TYPE_DICT.__get__(k)
            for k in mro
            if isinstance(k, type)
        )
    except Exception:
        return False


def _is_log_handler(tp: type) -> bool:
    logging = sys.modules.get("logging")
    handler = getattr(logging, "Handler", None) if logging is not None else None
    try:
        return isinstance(handler, type) and issubclass(tp, handler)
    except Exception:
        return False


def _analysis_calls(
    rates: Iterable[float], calls_hint: int, seconds_per_call: float, trace: bool
) -> int:
    positive = [r for r in rates if r > 0]
    lowest = min(positive) if positive else 1.0
    wanted = math.ceil(12 / lowest)
    m = max(4, min(wanted, max(4, calls_hint)))
    if trace:
        # Enough calls for a traced figure past the free lists (objects allocated before
        # tracing started are reused at first) and a list's amortised resizes.
        m = max(m, _TRACED_CALLS)
    cost = seconds_per_call * (_TRACE_SLOWDOWN if trace else 1.0)
    if cost > 0:
        m = min(m, max(2, int(_ANALYSIS_SECONDS / cost)))
    return m


def _shared_default(key: ContainerKey, container: object, seen: set[int]) -> bool:
    """A default that merely refers to a module's shared object (``logging.shutdown``'s).

    ``def shutdown(handlerList=_handlerList)`` is no mutable-default mistake: the list
    is the module global, which is the holder to name.
    """
    if key.kind != "defaults" or container is None:
        return False
    if id(container) in seen:
        return True
    module = sys.modules.get(key.module)
    try:
        namespace = MODULE_DICT.__get__(module) if module is not None else {}
        return any(v is container for v in list(dict.values(namespace)))
    except Exception:
        return False


def _containers(assessment: Assessment, container_types: Mapping[str, str]) -> list[_Container]:
    """The growing containers of ``assessment``, in a stable order (by key text)."""
    out = []
    seen: set[int] = set()
    keys = []
    for text in sorted(assessment.leaking_containers):
        try:
            keys.append((text, ContainerKey.parse(text)))
        except ValueError:
            continue
    # Globals and class attributes first, so that a default sharing their object is known.
    keys.sort(key=lambda item: (item[1].kind == "defaults", item[0]))
    for text, key in keys:
        container = key.resolve()
        if _shared_default(key, container, seen):
            continue
        if container is not None:
            seen.add(id(container))
        elements, reach = _element_types(container)
        out.append(
            _Container(
                key,
                container_types.get(text, ""),
                assessment.leaking_containers[text],
                elements,
                reach,
                declared_bound(container),
            )
        )
        del container
    return out


class _Analysis:
    """The analysis calls and what they leave: new survivors of each leaking type.

    Everything it keeps is created before the census of existing ids, so that none of
    it is taken for a new survivor; :meth:`close` drops every reference it holds.
    """

    def __init__(
        self, wanted: Iterable[str], trace: bool, state: InterpreterState, sizes: bool = False
    ) -> None:
        self.trace = trace
        self.pool: list[object] = []
        self.by_type: dict[str, list[int]] = {name: [] for name in wanted}
        self.names: dict[type, str] = {}
        self.garbage: list[object] = []
        self.started_tracing = False
        self.tm_before: tracemalloc.Snapshot | None = None
        self.done = 0
        self.bytes_per_call: float | None = None
        self._cache_names: list[str] = []
        if trace:
            self.started_tracing = not tracemalloc.is_tracing()
            state.start_tracing(_NFRAME)
            self.tm_before = tracemalloc.take_snapshot()
        objects = gc.get_objects()
        for tp in set(map(type, objects)):
            name = type_name(tp)
            if name in self.by_type:
                self.names[tp] = name
        self.before = set(map(id, _of_types(objects, self.names)))
        self.caches = CacheFill.of(objects)
        # Untracked containers and buffers, watched only when blocks grow unexplained.
        self.sizes = SizeWatch.of(objects) if sizes else SizeWatch()
        del objects

    def run(
        self, run: Callable[[int, str, float | None], tuple[int, float]], m: int, cycles: bool
    ) -> list[str]:
        """Make ``m`` calls, collect, and record the survivors; returns notes."""
        notes = []
        traced_before = tracemalloc.get_traced_memory()[0] if self.trace else 0
        try:
            self.done, _ = run(m, "analysis", time.perf_counter() + 10 * _ANALYSIS_SECONDS)
        except Stopped as stopped:
            notes.append("the function raised during the analysis calls; explanation is partial")
            del stopped
        self._collect(cycles)
        self.caches.measure()
        if self.trace and self.done:
            traced = tracemalloc.get_traced_memory()[0] - traced_before
            self.bytes_per_call = traced / self.done
        self._survivors()
        return notes

    def _collect(self, cycles: bool) -> None:
        if cycles and not gc.isenabled():
            flags = gc.get_debug()
            n0 = len(gc.garbage)
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                gc.collect()
            finally:
                gc.set_debug(flags)
            self.garbage.extend(gc.garbage[n0:])
            del gc.garbage[n0:]
        else:
            gc.collect()

    def _survivors(self) -> None:
        """New survivors of each leaking type, kept only until :meth:`close`."""
        if self.names:
            objects = gc.get_objects()
            own = {id(objects), id(self.garbage)}
            for o in _of_types(objects, self.names):
                if id(o) not in self.before and id(o) not in own:
                    slot = self.by_type[self.names[type(o)]]
                    if len(slot) < _SAMPLES_PER_TYPE:
                        slot.append(len(self.pool))
                        self.pool.append(o)
            del objects
        self.before.clear()

    def site(self, obj: object) -> str | None:
        tb = tracemalloc.get_object_traceback(obj) if self.trace else None
        return _site(list(tb)) if tb is not None else None

    def findings(self, rates: Mapping[str, float]) -> dict[str, _TypeFindings]:
        """Per leaking type: samples, allocation sites, finalizers, referrers."""
        findings = {name: _TypeFindings(name, rate) for name, rate in rates.items()}
        for tp, name in self.names.items():
            f = findings[name]
            f.has_del = f.has_del or _defines_del(tp)
            f.is_exception = f.is_exception or issubclass(tp, BaseException)
            f.is_log_handler = f.is_log_handler or _is_log_handler(tp)
        for name, indices in self.by_type.items():
            f = findings[name]
            f.samples = len(indices)
            for i in indices:
                site = self.site(self.pool[i])
                if site:
                    f.sites[site] += 1
            for i in indices[:3]:
                f.checked_referrers += 1
                if not _has_referrers(self.pool[i], self.pool):
                    f.no_referrers += 1
            f.bounded = self._bounded_by([self.pool[i] for i in indices])
        return findings

    def _bounded_by(self, samples: list[object]) -> str | None:
        """The filling bounded cache that holds most of ``samples``, if it holds half."""
        if not samples or not self.caches.filling:
            return None
        held = self.caches.holding(samples)
        best = max(range(len(held)), key=held.__getitem__)
        if held[best] * 2 < len(samples):
            return None
        return self.cache_names()[best]

    def cache_names(self) -> list[str]:
        """How each filling cache reads in a report (its shortest path from a root)."""
        if len(self._cache_names) != len(self.caches.filling):
            self._cache_names = [
                bound.describe(_root_name(obj)) for obj, bound in self.caches.filling
            ]
        return self._cache_names

    def growth_sites(self) -> list[tuple[str, float]]:
        """Sites where traced memory grew about once per call (garbage still held)."""
        if self.tm_before is None or not self.done:
            return []
        tm_after = tracemalloc.take_snapshot()
        try:
            return _growth_sites(self.tm_before, tm_after, self.done)
        finally:
            del tm_after

    def garbage_found(self) -> _Garbage:
        out = _Garbage()
        for g in self.garbage:
            name = type_name(type(g))
            out.types[name] += 1
            if _defines_del(type(g)):
                out.finalizers.add(name)
            if sum(out.sites.values()) < 200:
                site = self.site(g)
                if site:
                    out.sites[site] += 1
        self.garbage.clear()
        return out

    def growing(self) -> list[_Growing]:
        """Untracked containers and buffers that grew during the calls, named by a path."""
        if not self.done:
            return []
        out = []
        for grown in self.sizes.grown(self.done)[:_MAX_GROWING]:
            out.append(
                _Growing(_root_name(grown.obj), grown.type, grown.unit, grown.growth / self.done)
            )
        return out

    def close(self) -> None:
        self.sizes.close()
        self.caches.close()
        self.pool.clear()
        self.garbage.clear()
        self.before.clear()
        self.stop_tracing()

    def stop_tracing(self) -> None:
        """Stop tracemalloc if the analysis started it (the path search runs faster)."""
        self.tm_before = None
        if self.started_tracing:
            tracemalloc.stop()
            self.started_tracing = False


def explain(
    run: Callable[[int, str, float | None], tuple[int, float]],
    assessment: Assessment,
    measured: Sequence[Measured],
    container_types: Mapping[str, str],
    *,
    trace: bool,
    state: InterpreterState,
    calls_hint: int,
    seconds_per_call: float,
) -> Explained:
    """Find culprits, holders and allocation sites for the leak ``assessment`` describes.

    ``run(n, phase, deadline)`` makes ``n`` more calls of the measured function.
    Runs inside :func:`leakscope._interpreter.preserved` (``state``).
    """
    rates = [
        *assessment.leaking_types.values(),
        *(
            1.0 if container_types.get(key) == "bytearray" else rate
            for key, rate in assessment.leaking_containers.items()
        ),
        assessment.blocks,
        assessment.garbage,
        assessment.gc_garbage,
    ]
    m = _analysis_calls(rates, calls_hint, seconds_per_call, trace)
    unexplained = bool(assessment.blocks) and not (
        assessment.leaking_types or assessment.leaking_containers
    )
    analysis = _Analysis(sorted(assessment.leaking_types), trace, state, sizes=unexplained)
    try:
        notes = analysis.run(run, m, cycles=bool(assessment.garbage))
        findings = analysis.findings(assessment.leaking_types)
        untracked_sites = analysis.growth_sites()
        garbage = analysis.garbage_found()
        filling = analysis.cache_names()
        analysis.stop_tracing()
        growing = analysis.growing()
        if analysis.pool:
            _collect_paths(find_paths, analysis.pool, analysis.by_type, findings, notes)
        bytes_per_call = analysis.bytes_per_call
    finally:
        analysis.close()
    if not garbage.sites:
        garbage.sites.update({site: 1 for site, _ in untracked_sites})
    evidence = _Evidence(
        assessment,
        findings,
        _containers(assessment, container_types),
        untracked_sites,
        bytes_per_call,
        garbage,
        trace,
        filling,
        growing=growing,
    )
    culprits = tuple(_build_culprits(evidence))
    return Explained(culprits, bytes_per_call, notes, tuple(evidence.bounded))


def _path_groups(
    by_type: Mapping[str, list[int]], findings: dict[str, _TypeFindings]
) -> list[list[str]]:
    """The searches to make: one for all types, then one per type (companions last)."""
    pending = [
        name
        for name, indices in sorted(by_type.items())
        if indices and findings[name].no_referrers < findings[name].checked_referrers
    ]
    groups: list[list[str]] = [pending]
    if len(pending) > 1:
        rest = sorted(pending, key=lambda n: (n in _COMPANIONS, -findings[n].rate, n))
        groups.extend([name] for name in rest[:_PATH_SEARCHES])
    return groups


def _collect_paths(
    find_paths: Callable[..., Any],
    pool: list[object],
    by_type: Mapping[str, list[int]],
    findings: dict[str, _TypeFindings],
    notes: list[str],
) -> None:
    """Retention paths for each leaking type: one search for all, then one per type left without.

    A search stops at the nearest targets, so a type deeper in the same structure
    (the instance a closure holds) needs its own search; at most a few are made.
    """
    for candidates in _path_groups(by_type, findings):
        group = [name for name in candidates if not findings[name].paths]
        if not group:
            continue
        targets = [pool[i] for name in group for i in by_type[name][:_PATH_SAMPLES_PER_TYPE]]
        try:
            paths = find_paths(targets, max_depth=20, max_paths=2 * len(group) + 1)
        except Exception as exc:  # a diagnostic never hurts its host
            notes.append(f"retention paths unavailable ({type(exc).__name__})")
            return
        finally:
            del targets
        for path in paths:
            try:
                found = _Path.of(path)
            except Exception:
                continue
            target = found.types[-1] if found.types else ""
            if target in findings and len(findings[target].paths) < 2:
                findings[target].paths.append(found)
        del paths


def _of_types(objects: list[object], types_: Mapping[type, str]) -> Iterator[object]:
    """The objects whose exact type is a key of ``types_``, filtered at C speed."""
    return compress(objects, map(types_.__contains__, map(type, objects)))


def culprits_from_growth(
    assessment: Assessment, container_types: Mapping[str, str]
) -> tuple[Culprit, ...]:
    """Culprits from growth alone (types, containers, blocks): no calls, paths or sites.

    Used by ``@watch``, which observes real calls and cannot repeat them.

    >>> from leakscope.engine.signals import Assessment
    >>> found = culprits_from_growth(Assessment(leaking_containers={"app:_LOG": 2.0}), {})
    >>> found[0].kind, found[0].holders[0].description
    ('container', 'module app: _LOG (+2.0/call)')
    """
    findings = {name: _TypeFindings(name, rate) for name, rate in assessment.leaking_types.items()}
    evidence = _Evidence(assessment, findings, _containers(assessment, container_types))
    return tuple(_build_culprits(evidence))


def allocation_sites(type_names: Iterable[str], limit: int = 3) -> dict[str, tuple[str, ...]]:
    """Where the live objects of ``type_names`` were allocated, most frequent site first.

    Needs ``tracemalloc`` to have been tracing when they were allocated (empty
    otherwise).  Looks at up to :data:`_SAMPLES_PER_TYPE` objects per type, each
    site ``file.py:LINE`` of the most recent user frame.

    >>> allocation_sites(["no.such.Type"])
    {}
    """
    wanted = set(type_names)
    if not wanted or not tracemalloc.is_tracing():
        return {}
    names: dict[type, str] = {}
    counts: dict[str, Counter[str]] = {}
    seen: Counter[str] = Counter()
    objects = gc.get_objects()
    try:
        for tp in set(map(type, objects)):
            name = type_name(tp)
            if name in wanted:
                names[tp] = name
        for o in _of_types(objects, names):
            name = names[type(o)]
            if seen[name] >= _SAMPLES_PER_TYPE:
                continue
            seen[name] += 1
            tb = tracemalloc.get_object_traceback(o)
            site = _site(list(tb)) if tb is not None else None
            if site:
                counts.setdefault(name, Counter())[site] += 1
    finally:
        del objects
    return {name: tuple(s for s, _ in _most_common(c, limit)) for name, c in sorted(counts.items())}


def _has_referrers(obj: object, pool: list[object]) -> bool:
    referrers = gc.get_referrers(obj)
    try:
        return any(r is not pool and type(r) is not types.FrameType for r in referrers)
    finally:
        del referrers


def _growth_sites(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, calls: int
) -> list[tuple[str, float]]:
    """Allocation sites whose traced memory grew about once per call: (site, bytes/call)."""
    ignore = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, os.path.join(_OWN_DIR, "*")),
    ]
    stats = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "traceback")
    by_site: Counter[str] = Counter()
    for stat in stats:
        if stat.size_diff <= 0 or (
            stat.count_diff < max(1, calls // 2) and stat.size_diff < 8 * calls
        ):
            continue
        site = _site(list(stat.traceback))
        if site:
            by_site[site] += stat.size_diff
    ranked = sorted(by_site.items(), key=lambda item: (-item[1], item[0]))
    return [(site, size / calls) for site, size in ranked[:3]]


# -- culprits -----------------------------------------------------------------------------

_Ranked = tuple[tuple[int, float, str], Culprit]


def _build_culprits(evidence: _Evidence) -> list[Culprit]:
    """The culprits, most important first: object types, containers, then the rest."""
    findings = evidence.findings
    _assign_owners(findings, evidence.containers)
    evidence.mains = {_main_of(f, findings).name for f in findings.values() if f.owner is None}
    used: set[ContainerKey] = set()
    ranked: list[_Ranked] = []
    for f in sorted(findings.values(), key=lambda f: f.name):
        if f.owner is None:
            cache = _filling_cache(f, findings)
            if cache is not None:
                _note_bounded(evidence, cache)
                used.update(
                    c.key
                    for c in evidence.containers
                    if _matches(c, f.name, {f.name}, f.paths, set())
                )
                continue
            ranked.append(_object_culprit(f, evidence, used))
    ranked.extend(_container_culprits(evidence, used))
    ranked.extend(_collector_culprits(evidence))
    if not ranked:
        if evidence.filling and not evidence.bounded:
            for name in evidence.filling:  # untracked entries (strings) filling a cache
                _note_bounded(evidence, name)
        if not evidence.bounded:
            sites = tuple(s for s, _ in evidence.untracked_sites[:3])
            ranked.extend(((0, -g.rate, g.path), g.culprit(sites)) for g in evidence.growing)
        if not ranked and not evidence.bounded:
            ranked.extend(_memory_culprits(evidence))
    ranked.sort(key=lambda item: item[0])
    return [c for _, c in ranked]


def _filling_cache(f: _TypeFindings, findings: dict[str, _TypeFindings]) -> str | None:
    """The bounded cache filling with ``f``'s objects (or those of the types with it)."""
    if f.bounded is not None:
        return f.bounded
    related = _all_related(f, findings)
    main = next((g for g in related if g.bounded is not None), None)
    return None if main is None or f.name not in _COMPANIONS else main.bounded


def _note_bounded(evidence: _Evidence, name: str) -> None:
    if name not in evidence.bounded:
        evidence.bounded.append(name)


def _root_name(obj: object) -> str:
    """The shortest path from a root to ``obj``, or its type's name."""
    try:
        paths = find_paths([obj], max_depth=8, max_paths=1)
    except Exception:
        paths = []
    if paths:
        return paths[0].format(show_values=False)
    return f"{type_name(type(obj))} instance"


def _main_of(f: _TypeFindings, findings: dict[str, _TypeFindings]) -> _TypeFindings:
    """The type a primary's culprit is named after.

    The primary itself unless it is a companion (a list, a function...); then the
    non-companion type nearest to it (owned by it directly before those owned through
    another), the most frequent first, an application's type before a builtin one.
    """
    if f.name not in _COMPANIONS:
        return f
    related = [g for g in _all_related(f, findings) if g.name not in _COMPANIONS]
    if not related:
        return f
    return min(
        related,
        key=lambda g: (g.owner != f.name, _is_builtin_name(g.name), -g.rate, g.name),
    )


def _assign_owners(
    findings: dict[str, _TypeFindings], containers: Sequence[_Container] = ()
) -> None:
    """Which culprit type does each type come along with?

    The first other leaking type on its retention path (an exception for its
    traceback, an instance for its dict), past the root and the container the root
    holds (the module's list of failures is a list, but not a leaked one).  Without paths,
    companion types fold into the main non-builtin type.  Owner cycles are broken.
    """
    for f in sorted(findings.values(), key=lambda f: f.name):
        for path in f.paths:
            on_path = [t for t in path.leaked_types() if t in findings and t != f.name]
            owner = next((t for t in on_path if t not in _COMPANIONS), None)
            owner = owner or next(iter(on_path), None)
            if owner is not None:
                f.owner = owner
                break
    primaries = [f for f in findings.values() if f.owner is None]
    if not any(f.paths for f in findings.values()) and len(primaries) > 1:
        candidates = [f for f in primaries if f.name not in _COMPANIONS]
        _fold_by_containers(findings, candidates, containers)
        primaries = [f for f in primaries if f.owner is None]
        if candidates:
            top = max(candidates, key=lambda f: (not _is_builtin_name(f.name), f.rate, f.name))
            for f in primaries:
                if f is not top and f.name in _COMPANIONS and f.rate <= top.rate * 1.5:
                    f.owner = top.name
    _break_owner_cycles(findings)
    _fold_strays(findings)


def _fold_strays(findings: dict[str, _TypeFindings]) -> None:
    """Companion types with no path of their own go with the main culprit.

    A class's ``__mro__`` tuple or the weak reference in its base's subclass list
    has no path a search reaches, and is not a leak of its own.
    """
    primaries = [f for f in findings.values() if f.owner is None]
    with_paths = [f for f in primaries if f.paths and f.name not in _COMPANIONS]
    if not with_paths:
        with_paths = [f for f in primaries if f.paths]
    if not with_paths:
        return
    top = min(with_paths, key=lambda f: (_is_builtin_name(f.name), -f.rate, f.name))
    for f in primaries:
        if f is not top and not f.paths and f.name in _COMPANIONS and f.rate <= top.rate * 2.5:
            f.owner = top.name


def _fold_by_containers(
    findings: dict[str, _TypeFindings],
    mains: Sequence[_TypeFindings],
    containers: Sequence[_Container],
) -> None:
    """Without paths: a companion goes with the main type its container's items lead to.

    A list of bound methods whose instances are ``Handler`` objects: the methods come
    with ``Handler``, not with another type that leaks beside them.
    """
    names = {m.name for m in mains}
    for f in sorted(findings.values(), key=lambda f: f.name):
        if f.owner is not None or f.name not in _COMPANIONS:
            continue
        for c in containers:
            if f.name in c.elements:
                led = sorted(names & c.reach)
                if len(led) == 1:
                    f.owner = led[0]
                    break


def _break_owner_cycles(findings: dict[str, _TypeFindings]) -> None:
    """A with B and B with A: the cycle is cut at one member, main types first.

    Only members of a cycle lose their owner; a type that merely leads into one
    keeps it.  The order is by name, so that no result depends on hashing.
    """
    order = sorted(findings.values(), key=lambda f: (f.name in _COMPANIONS, f.name))
    for f in order:
        seen = {f.name}
        owner = f.owner
        while owner is not None and owner not in seen:
            seen.add(owner)
            owner = findings[owner].owner
        if owner == f.name:
            f.owner = None


def _matches(
    container: _Container, main: str, names: set[str], paths: Sequence[_Path], others: set[str]
) -> bool:
    """Does ``container`` hold this culprit's objects, or lie on one of its ``paths``?

    ``main`` is the culprit's main type and ``names`` all its types; a container
    whose items are only companions (dicts, methods, cells) of this culprit is
    its holder unless those items lead to one of the ``others`` main types.
    """
    if main in container.elements or (main not in _COMPANIONS and main in container.reach):
        return True
    key = container.key
    step = f".{key.attribute}" if key.attribute else ""
    for path in paths:
        if step and step in path.steps:
            return True
        if key.kind == "defaults" and ".__defaults__" in path.steps:
            return True
    held = set(container.elements) | container.reach
    return bool(names & set(container.elements)) and not (others & held)


def _holder_rank(container: _Container, main: str, rate: float) -> tuple[int, float, str]:
    """Holders a person must fix first: those holding the main type itself, growing at
    its rate, then those that lead to it, then the rest; a function default last."""
    if main in container.elements:
        closeness = 0
    elif main in container.reach:
        closeness = 1
    else:
        closeness = 2
    if container.key.kind == "defaults":
        closeness += 3
    off = abs(math.log(container.rate / rate)) if container.rate > 0 and rate > 0 else 9.0
    return closeness, round(off, 3), str(container.key)


def _object_culprit(f: _TypeFindings, evidence: _Evidence, used: set[ContainerKey]) -> _Ranked:
    related_findings = _all_related(f, evidence.findings)
    group = sorted([f, *related_findings], key=lambda g: (-g.rate, g.name))
    main = _main_of(f, evidence.findings)
    related = tuple((g.name, g.rate) for g in group if g is not main)
    all_names = {f.name, *(r.name for r in related_findings)}
    others = {g for g in evidence.mains if g != main.name}
    holding = sorted(
        (c for c in evidence.containers if _matches(c, main.name, all_names, f.paths, others)),
        key=lambda c: _holder_rank(c, main.name, f.rate),
    )
    used.update(c.key for c in holding)
    holders = [c.holder() for c in holding]
    paths = main.paths or f.paths
    holders.extend(Holder(p.text, "path", p.detail) for p in paths[: 1 if holders else 2])
    notes: list[str] = []
    del_types = [r.name for r in (f, *related_findings) if r.has_del]
    if del_types:
        notes.append(note_text("finalizer", ", ".join(del_types)))
    no_refs = bool(f.checked_referrers) and f.no_referrers == f.checked_referrers and not holders
    if no_refs:
        notes.append(note_text("refcount_objects", f.name))
    sites = _object_sites(main, group, evidence)
    if not sites and evidence.trace and not f.samples:
        notes.append("no new objects of this type survived the analysis calls")
    all_paths = [p for g in (f, *related_findings) for p in g.paths]
    facts = Facts(
        "objects",
        frozenset(all_names),
        container=holding[0].key if holding else None,
        container_type=holding[0].type if holding else "",
        no_referrers=no_refs,
        finalizer=bool(del_types),
        exception=any(g.is_exception for g in group),
        via_defaults=any(".__defaults__" in p.steps for p in all_paths),
        lru_cache=_lru_cache_on(all_paths),
        in_dict=any(len(p.types) > 1 and p.types[-2] == "dict" for p in f.paths),
        held=bool(holders),
        held_items=frozenset(holding[0].elements) if holding else frozenset(),
        main=main.name,
        log_handler=any(g.is_log_handler for g in group),
    )
    culprit = Culprit(
        kind="objects",
        types=(main.name,),
        per_call=main.rate,
        related=related,
        holders=tuple(holders),
        allocated_at=tuple(sites[:3]),
        notes=tuple(notes),
        hint=hint_text(choose(facts), f.name),
    )
    rank = (0 if holders else 1) + (1 if _is_builtin_name(main.name) else 0)
    if main.name in _COMPANIONS:
        rank += 2
    return (rank, -f.rate, main.name), culprit


_LRU_WRAPPER = "functools._lru_cache_wrapper"


def _lru_cache_on(paths: Sequence[_Path]) -> Literal["", "method", "function"]:
    """Whether the paths go through an lru_cache wrapper, held by a class (a method) or not."""
    found: Literal["", "method", "function"] = ""
    for p in paths:
        for i, name in enumerate(p.types):
            if name == _LRU_WRAPPER:
                if i and p.types[i - 1] == "type":
                    return "method"
                found = "function"
    return found


def _object_sites(
    main: _TypeFindings, group: Sequence[_TypeFindings], evidence: _Evidence
) -> list[str]:
    sites = [s for s, _ in _most_common(main.sites, 3)]
    if not sites:
        for r in group:
            sites.extend(s for s, _ in _most_common(r.sites, 2) if s not in sites)
    if not sites:  # free-list objects and some instances carry no traceback
        sites = [s for s, _ in evidence.untracked_sites]
    return sites


def _most_common(counts: Counter[str], n: int) -> list[tuple[str, int]]:
    """``counts.most_common(n)`` with ties broken by name, so no order depends on hashing."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]


def _container_culprits(evidence: _Evidence, used: set[ContainerKey]) -> list[_Ranked]:
    out: list[_Ranked] = []
    for container in evidence.containers:
        if container.key in used:
            continue
        if container.bound is not None:
            _note_bounded(evidence, container.bound.describe(container.key.format()))
            continue
        buffer = container.type == "bytearray"
        element_names = tuple(name for name, _ in _most_common(container.elements, 3))
        notes = []
        if not element_names and not buffer and container.key.kind != "atexit":
            notes.append(note_text("untracked_items"))
        facts = Facts("container", container=container.key, container_type=container.type)
        culprit = Culprit(
            kind="container",
            types=("bytes",) if buffer else element_names,
            per_call=container.rate,
            unit="bytes" if buffer else "entries",
            holders=(container.holder(),),
            allocated_at=tuple(s for s, _ in evidence.untracked_sites[:3]),
            notes=tuple(notes),
            hint=hint_text(choose(facts)),
        )
        out.append(((0, -container.rate, str(container.key)), culprit))
    return out


def _collector_culprits(evidence: _Evidence) -> list[_Ranked]:
    """Cyclic garbage left while gc was disabled, and growth of gc.garbage."""
    assessment, garbage = evidence.assessment, evidence.garbage
    out: list[_Ranked] = []
    if assessment.garbage:
        finalizers = sorted(garbage.finalizers)
        culprit = Culprit(
            kind="cycles",
            types=tuple(name for name, _ in _most_common(garbage.types, 4)),
            per_call=assessment.garbage,
            holders=(
                Holder(
                    "reference cycles (unreachable): gc is disabled while the function "
                    "runs, so they are never collected",
                    "cycles",
                ),
            ),
            allocated_at=tuple(s for s, _ in _most_common(garbage.sites, 3)),
            notes=(f"finalizer: {', '.join(finalizers)} defines __del__",) if finalizers else (),
            hint=hint_text(choose(Facts("cycles"))),
        )
        out.append(((0, -assessment.garbage, "cycles"), culprit))
    if assessment.gc_garbage:
        culprit = Culprit(
            kind="gc.garbage",
            types=(),
            per_call=assessment.gc_garbage,
            holders=(Holder("gc.garbage (uncollectable objects)", "container"),),
            hint=hint_text(choose(Facts("gc.garbage"))),
        )
        out.append(((0, -assessment.gc_garbage, "gc.garbage"), culprit))
    return out


def _memory_culprits(evidence: _Evidence) -> list[_Ranked]:
    """Growth no object or container accounts for: untracked blocks, else resident memory."""
    assessment = evidence.assessment
    sites = tuple(s for s, _ in evidence.untracked_sites)
    if assessment.blocks:
        culprit = Culprit(
            kind="untracked",
            types=(),
            per_call=assessment.blocks,
            unit="blocks",
            bytes_per_call=evidence.bytes_per_call,
            allocated_at=sites,
            notes=(note_text("refcount_blocks"),),
            hint=hint_text(choose(Facts("untracked"))),
        )
        return [((0, -assessment.blocks, "untracked"), culprit)]
    if assessment.rss:
        culprit = Culprit(
            kind="memory",
            types=(),
            per_call=assessment.rss,
            unit="bytes",
            bytes_per_call=assessment.rss,
            allocated_at=sites,
            notes=(note_text("native"),),
            hint=hint_text(choose(Facts("memory"))),
        )
        return [((0, -assessment.rss, "memory"), culprit)]
    return []


def _all_related(f: _TypeFindings, findings: dict[str, _TypeFindings]) -> list[_TypeFindings]:
    out = []
    for other in sorted(findings.values(), key=lambda g: g.name):
        owner = other.owner
        seen: set[str] = set()
        while owner is not None and owner != f.name and owner not in seen:
            seen.add(owner)
            owner = findings[owner].owner
        if owner == f.name and other is not f:
            out.append(other)
    return out


def _is_builtin_name(name: str) -> bool:
    return "." not in name or name.startswith(("builtins.", "weakref.", "_"))
