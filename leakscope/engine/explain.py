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
import sysconfig
import time
import tracemalloc
import types
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import TYPE_CHECKING, Any

from leakscope._heap import TYPE_DICT, TYPE_MRO, type_name
from leakscope._refgraph import find_paths
from leakscope._roots import ATEXIT_KEY, LOGGERS_KEY, format_container, resolve_container
from leakscope.engine.calls import Stopped
from leakscope.engine.model import Culprit, Holder

if TYPE_CHECKING:
    from leakscope._interpreter import InterpreterState
    from leakscope.engine.signals import Assessment, Measured

__all__ = ["Explained", "culprits_from_growth", "explain"]

_NFRAME = 12
_SAMPLES_PER_TYPE = 40
_PATH_SAMPLES_PER_TYPE = 3
_PATH_SEARCHES = 4  # extra searches, one per type still without a path
_ANALYSIS_SECONDS = 1.0
_TRACE_SLOWDOWN = 15.0


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

_OWN_DIR = os.path.dirname(os.path.abspath(__file__))


def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {os.path.abspath(paths[k]) for k in ("stdlib", "platstdlib") if k in paths}
    return tuple(sorted(dirs))


_STDLIB = _stdlib_dirs()


# Test runners whose frames sit between leakscope and the user's code (pytest runs
# the test body through pluggy's hooks): never named as an allocation site.
_RUNNER_PACKAGES = ("_pytest", "pytest", "pluggy")


def _runner_dirs() -> tuple[str, ...]:
    """The directories of the test-runner packages already imported (none are imported here)."""
    dirs = []
    for name in _RUNNER_PACKAGES:
        file = getattr(sys.modules.get(name), "__file__", None)
        if isinstance(file, str) and os.path.basename(file) == "__init__.py":
            dirs.append(os.path.dirname(os.path.abspath(file)) + os.sep)
    return tuple(dirs)


def _is_user_file(filename: str, runners: tuple[str, ...] = ()) -> bool:
    if not filename or filename.startswith("<"):
        return False
    path = os.path.abspath(filename)
    if path.startswith(_OWN_DIR + os.sep) or (runners and path.startswith(runners)):
        return False
    for d in _STDLIB:
        if path.startswith(d + os.sep) and "site-packages" not in path[len(d) :]:
            return False
    return True


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


def _element_types(container: object) -> Counter[str]:
    if container is None:
        return Counter()
    items = gc.get_referents(container)
    try:
        return Counter(type_name(type(item)) for item in items)
    finally:
        del items


# -- the analysis pass --------------------------------------------------------------------


@dataclass
class Explained:
    """What :func:`explain` found: ranked culprits, traced bytes per call and notes."""

    culprits: tuple[Culprit, ...]
    bytes_per_call: float | None
    notes: list[str] = field(default_factory=list)


@dataclass
class _TypeFindings:
    name: str
    rate: float
    samples: int = 0
    sites: Counter[str] = field(default_factory=Counter)
    paths: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    no_referrers: int = 0
    checked_referrers: int = 0
    has_del: bool = False
    is_exception: bool = False
    owner: str | None = None  # the culprit type this one comes along with


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


def _analysis_calls(
    rates: Iterable[float], calls_hint: int, seconds_per_call: float, trace: bool
) -> int:
    positive = [r for r in rates if r > 0]
    lowest = min(positive) if positive else 1.0
    wanted = math.ceil(12 / lowest)
    m = max(4, min(wanted, max(4, calls_hint)))
    cost = seconds_per_call * (_TRACE_SLOWDOWN if trace else 1.0)
    if cost > 0:
        m = min(m, max(2, int(_ANALYSIS_SECONDS / cost)))
    return m


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
    notes: list[str] = []
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

    wanted = set(assessment.leaking_types)
    # Everything this analysis keeps is created before the census of existing ids,
    # so that none of it is taken for a new survivor.
    pool: list[object] = []
    by_type: dict[str, list[int]] = {name: [] for name in wanted}
    names: dict[type, str] = {}
    started_tracing = False
    tm_before: tracemalloc.Snapshot | None = None
    if trace:
        started_tracing = not tracemalloc.is_tracing()
        state.start_tracing(_NFRAME)
        tm_before = tracemalloc.take_snapshot()
    objects = gc.get_objects()
    for tp in set(map(type, objects)):
        name = type_name(tp)
        if name in wanted:
            names[tp] = name
    before = set(map(id, _of_types(objects, names)))
    del objects
    traced_before = tracemalloc.get_traced_memory()[0] if trace else 0

    done = 0
    try:
        done, _ = run(m, "analysis", time.perf_counter() + 10 * _ANALYSIS_SECONDS)
    except Stopped as stopped:
        notes.append("the function raised during the analysis calls; explanation is partial")
        del stopped
    garbage: list[object] = []
    if assessment.garbage and not gc.isenabled():
        flags = gc.get_debug()
        n0 = len(gc.garbage)
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
        finally:
            gc.set_debug(flags)
        garbage.extend(gc.garbage[n0:])
        del gc.garbage[n0:]
    else:
        gc.collect()
    traced_after = tracemalloc.get_traced_memory()[0] if trace else 0
    bytes_per_call = (traced_after - traced_before) / done if trace and done else None

    # New survivors of each leaking type, kept only for the rest of this function.
    if names:
        objects = gc.get_objects()
        own = {id(objects), id(garbage)}
        for o in _of_types(objects, names):
            if id(o) not in before and id(o) not in own:
                slot = by_type[names[type(o)]]
                if len(slot) < _SAMPLES_PER_TYPE:
                    slot.append(len(pool))
                    pool.append(o)
        del objects
    before.clear()

    findings = {name: _TypeFindings(name, rate) for name, rate in assessment.leaking_types.items()}
    for tp, name in names.items():
        f = findings[name]
        f.has_del = f.has_del or _defines_del(tp)
        f.is_exception = f.is_exception or issubclass(tp, BaseException)
    for name, indices in by_type.items():
        findings[name].samples = len(indices)
        if trace:
            for i in indices:
                tb = tracemalloc.get_object_traceback(pool[i])
                if tb is not None:
                    site = _site(list(tb))
                    if site:
                        findings[name].sites[site] += 1

    # Sites where traced memory grew about once per call (garbage still held).
    untracked_sites: list[tuple[str, float]] = []
    if tm_before is not None and done:
        tm_after = tracemalloc.take_snapshot()
        untracked_sites = _growth_sites(tm_before, tm_after, done)
        del tm_after
    del tm_before

    garbage_types: Counter[str] = Counter()
    garbage_sites: Counter[str] = Counter()
    garbage_del: set[str] = set()
    for g in garbage:
        garbage_types[type_name(type(g))] += 1
        if _defines_del(type(g)):
            garbage_del.add(type_name(type(g)))
        if trace and sum(garbage_sites.values()) < 200:
            tb = tracemalloc.get_object_traceback(g)
            if tb is not None:
                site = _site(list(tb))
                if site:
                    garbage_sites[site] += 1
    garbage.clear()
    if started_tracing:
        tracemalloc.stop()
    if not garbage_sites:
        garbage_sites.update({site: 1 for site, _ in untracked_sites})

    # Holders: containers that grew, and retention paths.
    container_elements: dict[str, Counter[str]] = {}
    for key in assessment.leaking_containers:
        container_elements[key] = _element_types(resolve_container(key))
    for name, indices in by_type.items():
        f = findings[name]
        if not indices:
            continue
        for i in indices[:3]:
            f.checked_referrers += 1
            if not _has_referrers(pool[i], pool):
                f.no_referrers += 1
    if pool:
        _collect_paths(find_paths, pool, by_type, findings, notes)
    pool.clear()
    del pool

    culprits = _build_culprits(
        assessment,
        findings,
        container_elements,
        container_types,
        untracked_sites,
        bytes_per_call,
        garbage_types,
        garbage_sites,
        garbage_del,
        trace,
    )
    return Explained(tuple(culprits), bytes_per_call, notes)


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
    pending = [
        name
        for name, indices in by_type.items()
        if indices and findings[name].no_referrers < findings[name].checked_referrers
    ]
    groups: list[list[str]] = [pending]
    if len(pending) > 1:
        rest = sorted(pending, key=lambda n: (n in _COMPANIONS, -findings[n].rate))
        groups.extend([name] for name in rest[:_PATH_SEARCHES])
    for candidates in groups:
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
                path_types = tuple(str(t) for t in path.types)
                text = path.format(show_values=False)
                detail = path.format(show_values=True)
            except Exception:
                continue
            target = path_types[-1] if path_types else ""
            if target in findings and len(findings[target].paths) < 2:
                findings[target].paths.append((text, detail, path_types))
        del paths


def _of_types(objects: list[object], types_: Mapping[type, str]) -> Iterator[object]:
    """The objects whose exact type is a key of ``types_``, filtered at C speed."""
    return compress(objects, map(types_.__contains__, map(type, objects)))


def culprits_from_growth(
    assessment: Assessment, container_types: Mapping[str, str]
) -> tuple[Culprit, ...]:
    """Culprits from growth alone (types, containers, blocks): no calls, paths or sites.

    Used by ``@watch``, which observes real calls and cannot repeat them.
    """
    findings = {name: _TypeFindings(name, rate) for name, rate in assessment.leaking_types.items()}
    elements = {
        key: _element_types(resolve_container(key)) for key in assessment.leaking_containers
    }
    return tuple(
        _build_culprits(
            assessment,
            findings,
            elements,
            container_types,
            [],
            None,
            Counter(),
            Counter(),
            set(),
            False,
        )
    )


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
    return [(site, size / calls) for site, size in by_site.most_common(3)]


# -- culprits -----------------------------------------------------------------------------


def _build_culprits(  # noqa: PLR0917 - one private caller per argument set
    assessment: Assessment,
    findings: dict[str, _TypeFindings],
    container_elements: dict[str, Counter[str]],
    container_types: Mapping[str, str],
    untracked_sites: list[tuple[str, float]],
    bytes_per_call: float | None,
    garbage_types: Counter[str],
    garbage_sites: Counter[str],
    garbage_del: set[str],
    trace: bool,
) -> list[Culprit]:
    culprits: list[tuple[tuple[int, float], Culprit]] = []

    # Which culprit type does each type come along with?  The first other leaking
    # type on its retention path (an exception for its traceback, an instance for its dict).
    for f in findings.values():
        for _, _, path_types in f.paths:
            on_path = [t for t in path_types[:-1] if t in findings and t != f.name]
            owner = next((t for t in on_path if t not in _COMPANIONS), None)
            owner = owner or next(iter(on_path), None)
            if owner is not None:
                f.owner = owner
                break
    primaries = [f for f in findings.values() if f.owner is None]
    if not any(f.paths for f in findings.values()) and len(primaries) > 1:
        # No paths: fold companion types (dict, tuple, cell...) into the main non-builtin type.
        candidates = [f for f in primaries if f.name not in _COMPANIONS]
        if candidates:
            top = max(candidates, key=lambda f: (not _is_builtin_name(f.name), f.rate))
            for f in primaries:
                if f is not top and f.name in _COMPANIONS and f.rate <= top.rate * 1.5:
                    f.owner = top.name
            primaries = [f for f in findings.values() if f.owner is None]
    # Break owner cycles (A with B, B with A) by promoting back.
    for f in findings.values():
        seen = {f.name}
        owner = f.owner
        while owner is not None and owner not in seen:
            seen.add(owner)
            owner = findings[owner].owner
        if owner is not None:
            f.owner = None
    primaries = [f for f in findings.values() if f.owner is None]

    used_containers: set[str] = set()
    for f in primaries:
        related_findings = _all_related(f, findings)
        group = sorted([f, *related_findings], key=lambda g: -g.rate)
        main = next((g for g in group if g.name not in _COMPANIONS), f)
        related = tuple((g.name, g.rate) for g in group if g is not main)
        all_names = {f.name, *(r.name for r in related_findings)}
        holders: list[Holder] = []
        for key, elements in container_elements.items():
            rate = assessment.leaking_containers[key]
            matched = bool(all_names & set(elements)) or any(
                _container_attr(key) in text for text, _, _ in f.paths
            )
            if matched:
                used_containers.add(key)
                holders.append(
                    Holder(format_container(key, container_types.get(key, ""), rate), "container")
                )
        paths = main.paths or f.paths
        for text, detail, _ in paths[: 1 if holders else 2]:
            holders.append(Holder(text, "path", detail))
        notes: list[str] = []
        del_types = [r.name for r in (f, *related_findings) if r.has_del]
        if del_types:
            notes.append(
                "finalizer: " + ", ".join(del_types) + " defines __del__; if __del__ stores self "
                "(or its cycle) somewhere, the object is resurrected and lives on"
            )
        no_refs = f.checked_referrers and f.no_referrers == f.checked_referrers and not holders
        if no_refs:
            notes.append(
                f"nothing the collector can see refers to these {f.name} objects: this looks like "
                "a reference-count leak in C code (a missing Py_DECREF), or a C extension "
                "holding them"
            )
        sites = [s for s, _ in main.sites.most_common(3)]
        if not sites:
            for r in group:
                sites.extend(s for s, _ in r.sites.most_common(2) if s not in sites)
        if not sites:  # free-list objects and some instances carry no traceback
            sites = [s for s, _ in untracked_sites]
        if not sites and trace and not f.samples:
            notes.append("no new objects of this type survived the analysis calls")
        culprit = Culprit(
            kind="objects",
            types=(main.name,),
            per_call=main.rate,
            related=related,
            holders=tuple(holders),
            allocated_at=tuple(sites[:3]),
            notes=tuple(notes),
            hint=_hint(f, related_findings, holders, bool(no_refs), container_types),
        )
        rank = (0 if holders else 1) + (0 if not _is_builtin_name(main.name) else 1)
        if main.name in _COMPANIONS:
            rank += 2
        culprits.append(((rank, -f.rate), culprit))

    for key, rate in assessment.leaking_containers.items():
        if key in used_containers:
            continue
        kind = container_types.get(key, "")
        elements = container_elements.get(key, Counter())
        element_names = tuple(name for name, _ in elements.most_common(3))
        notes = []
        if not element_names and kind != "bytearray" and key != ATEXIT_KEY:
            notes.append("its items are not objects the collector tracks")
        sites = [s for s, _ in untracked_sites]
        culprits.append(
            (
                (0, -rate),
                Culprit(
                    kind="container",
                    types=element_names if kind != "bytearray" else ("bytes",),
                    per_call=rate,
                    unit="bytes" if kind == "bytearray" else "entries",
                    holders=(Holder(format_container(key, kind, rate), "container"),),
                    allocated_at=tuple(sites[:3]),
                    notes=tuple(notes),
                    hint=_container_hint(key, kind),
                ),
            )
        )

    if assessment.garbage:
        del_note = (
            ("finalizer: " + ", ".join(sorted(garbage_del)) + " defines __del__",)
            if garbage_del
            else ()
        )
        culprits.append(
            (
                (0, -assessment.garbage),
                Culprit(
                    kind="cycles",
                    types=tuple(name for name, _ in garbage_types.most_common(4)),
                    per_call=assessment.garbage,
                    holders=(
                        Holder(
                            "reference cycles (unreachable): gc is disabled while the function "
                            "runs, so they are never collected",
                            "cycles",
                        ),
                    ),
                    allocated_at=tuple(s for s, _ in garbage_sites.most_common(3)),
                    notes=del_note,
                    hint="break the cycles (a weakref for back-references, clear links when "
                    "done) or re-enable gc / call gc.collect() periodically",
                ),
            )
        )
    if assessment.gc_garbage:
        culprits.append(
            (
                (0, -assessment.gc_garbage),
                Culprit(
                    kind="gc.garbage",
                    types=(),
                    per_call=assessment.gc_garbage,
                    holders=(Holder("gc.garbage (uncollectable objects)", "container"),),
                    hint="gc.garbage keeps everything the collector could not free (or all "
                    "garbage under gc.DEBUG_SAVEALL): turn DEBUG_SAVEALL off and clear gc.garbage",
                ),
            )
        )
    if not culprits and assessment.blocks:
        culprits.append(
            (
                (0, -assessment.blocks),
                Culprit(
                    kind="untracked",
                    types=(),
                    per_call=assessment.blocks,
                    unit="blocks",
                    bytes_per_call=bytes_per_call,
                    allocated_at=tuple(s for s, _ in untracked_sites),
                    notes=(
                        "no object type the collector tracks and no module/class container "
                        "grows: untracked objects (str, bytes, numbers) are kept alive by "
                        "something the collector cannot see, which looks like a reference-count "
                        "leak in C code (a missing Py_DECREF), or a C extension's own memory",
                    ),
                    hint="look at the allocation site above and at the C extensions it calls; "
                    "a missing Py_DECREF leaks one reference per call",
                ),
            )
        )
    if not culprits and assessment.rss:
        culprits.append(
            (
                (0, -assessment.rss),
                Culprit(
                    kind="memory",
                    types=(),
                    per_call=assessment.rss,
                    unit="bytes",
                    bytes_per_call=assessment.rss,
                    allocated_at=tuple(s for s, _ in untracked_sites),
                    notes=(
                        "resident memory grows steadily while no Python object, container or "
                        "allocated block does: memory allocated outside Python's allocator "
                        "(a C library, malloc without free)",
                    ),
                    hint="check the C libraries and extensions the function calls for "
                    "allocations that are never freed",
                ),
            )
        )
    culprits.sort(key=lambda item: item[0])
    return [c for _, c in culprits]


def _all_related(f: _TypeFindings, findings: dict[str, _TypeFindings]) -> list[_TypeFindings]:
    out = []
    for other in findings.values():
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


def _container_attr(key: str) -> str:
    rest = key.partition(":")[2]
    return rest.rpartition(".")[2] if "." in rest else rest


def _hint(
    f: _TypeFindings,
    related: Sequence[_TypeFindings],
    holders: Sequence[Holder],
    no_refs: bool,
    container_types: Mapping[str, str],
) -> str:
    names = {f.name, *(r.name for r in related)}
    text = (
        " ".join(h.description for h in holders)
        + " "
        + " ".join(" ".join(t) for _, _, t in f.paths)
    )
    if no_refs:
        return (
            "a reference-count leak in C code: check the Py_INCREF/Py_DECREF pairs of the "
            f"extension that creates {f.name} (or upgrade it)"
        )
    if f.has_del or any(r.has_del for r in related):
        return "don't store self (or objects of its cycle) from __del__; use weakref.finalize"
    if "__defaults__" in text:
        return "avoid mutable default arguments: default to None and create the container inside"
    if "functools._lru_cache_wrapper" in text or "lru_cache" in text:
        return (
            "functools.lru_cache/cache on a method keeps every instance (self) alive: give it a "
            "maxsize, or cache per instance (functools.cached_property, a dict on self)"
        )
    if f.is_exception or names & {"traceback", "frame"}:
        return (
            "don't keep exceptions or tracebacks: store str(exc) or "
            "traceback.format_exception(exc), or call traceback.clear_frames(tb)"
        )
    if "logging.Logger" in names or "loggerDict" in text:
        return (
            "logging.getLogger() with ever-new names keeps every logger: use a fixed set of "
            "names and pass varying data in the message or extra="
        )
    if names & {"function", "cell", "method"}:
        return (
            "callbacks/handlers registered and never removed: unregister them when done, or hold "
            "them weakly (weakref.WeakMethod, weakref.WeakSet)"
        )
    if "attribute" in text and "class " in text:
        return (
            "a registry on the class keeps every instance alive: remove entries when done, or "
            "use weakref.WeakSet / weakref.WeakValueDictionary"
        )
    kinds = {container_types.get(h.description, "") for h in holders}
    if any("dict" in h.description for h in holders) or "dict" in kinds:
        return (
            "an unbounded cache: bound it (functools.lru_cache(maxsize=...), evict old entries) "
            "or key it weakly (weakref.WeakValueDictionary / WeakKeyDictionary)"
        )
    if holders:
        return (
            "a container that only grows: remove entries when done, bound it "
            "(collections.deque(maxlen=...)), or hold entries weakly (weakref.WeakSet)"
        )
    return (
        "find what keeps them alive (gc.get_referrers, leakscope.why_alive) and drop the "
        "reference when done"
    )


def _container_hint(key: str, kind: str) -> str:
    if key == ATEXIT_KEY:
        return "register the atexit callback once (at import), not per call"
    if key == LOGGERS_KEY:
        return (
            "logging.getLogger() with ever-new names keeps every logger: use a fixed set of "
            "names and pass varying data in the message or extra="
        )
    if ".__defaults__[" in key:
        return "avoid mutable default arguments: default to None and create the container inside"
    if kind == "bytearray":
        return "a buffer that only grows: clear or truncate it after use, or bound its size"
    if "dict" in kind:
        return (
            "an unbounded cache: bound it (functools.lru_cache(maxsize=...), evict old entries) "
            "or key it weakly (weakref.WeakValueDictionary / WeakKeyDictionary)"
        )
    return (
        "a container that only grows: remove entries when done, or bound it "
        "(collections.deque(maxlen=...))"
    )
