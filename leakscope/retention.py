"""Why is this object still alive, and was it collected?

* :func:`why_alive` returns a :class:`Retention`: the shortest reference paths from
  named roots (modules, classes, functions, running threads' frames) to the object,
  or the reason there is none (kept only by garbage, or by a C-level refcount).
* :func:`assert_collected` and :func:`expect_collected` check that objects go away,
  and explain with ``why_alive`` paths when they do not.
* :func:`sizeof` measures an object, deeply when ``pympler`` is installed.

>>> import sys, types, leakscope
>>> app = sys.modules["app"] = types.ModuleType("app")
>>> User = type("User", (), {"__module__": "app"})
>>> app.cache = {"user:42": [None, None, None, User()]}
>>> print(leakscope.why_alive(app.cache["user:42"][3]))
app.User object is kept alive by:
  sys.modules['app'].cache['user:42'][3]
>>> del sys.modules["app"]
"""

from __future__ import annotations

import gc
import sys
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from leakscope._fields import Fields
from leakscope._heap import object_type_name
from leakscope._refgraph import RetentionPath, caller_frame, search
from leakscope.errors import DataError, LeakError

__all__ = [
    "CollectionWatch",
    "Retention",
    "RetentionPath",
    "Size",
    "assert_collected",
    "expect_collected",
    "sizeof",
    "why_alive",
]

T = TypeVar("T")

Status = Literal["rooted", "garbage", "refcount", "unreferenced"]
"""What :attr:`Retention.status` can be."""

ROOTED: Status = "rooted"
GARBAGE: Status = "garbage"
REFCOUNT: Status = "refcount"
UNREFERENCED: Status = "unreferenced"
_STATUSES: tuple[Status, ...] = (ROOTED, GARBAGE, REFCOUNT, UNREFERENCED)

# 3.12+ immortal objects report a refcount near 2**32 (2**30 on some builds).
_IMMORTAL = 1 << 29


@dataclass(frozen=True)
class Retention:
    """What keeps one object alive; holds strings and ints only.

    ``status`` is ``"rooted"`` (``paths`` lead from roots to it), ``"garbage"``
    (referenced only by unreachable objects, e.g. a reference cycle),
    ``"refcount"`` (no referrers at all, yet alive: C code holds a reference) or
    ``"unreferenced"`` (nothing but the caller holds it).  ``refcount`` is
    ``sys.getrefcount(obj)`` minus the references leakscope itself held.
    """

    target_type: str
    status: Status
    paths: tuple[RetentionPath, ...]
    refcount: int

    @property
    def immortal(self) -> bool:
        """True for 3.12+ immortal objects (``None``, small ints...), whose refcount is fixed."""
        return self.refcount >= _IMMORTAL

    def format(self, show_values: bool = True) -> str:
        """The explanation for people; ``show_values=False`` hides odd dict keys."""
        what = f"{self.target_type} object"
        rc = "immortal" if self.immortal else f"sys.getrefcount: {self.refcount}"
        if self.status == ROOTED:
            if not self.paths:
                return (
                    f"{what} is reachable from a root, but no path was found within the "
                    f"depth limit ({rc})"
                )
            lines = [f"{what} is kept alive by:"]
            lines += [f"  {p.format(show_values=show_values)}" for p in self.paths]
            return "\n".join(lines)
        if self.status == GARBAGE:
            return (
                f"{what} is referenced only by garbage (unreachable objects, e.g. a "
                f"reference cycle): the cyclic collector has not freed it yet ({rc})"
            )
        if self.status == REFCOUNT:
            return (
                f"{what} has no referrers, yet it is alive: its reference count is held "
                f"by C code, a refcount leak ({rc})"
            )
        return f"{what} is referenced by nothing but its caller ({rc})"

    def __str__(self) -> str:
        return self.format(show_values=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_type": self.target_type,
            "status": self.status,
            "refcount": self.refcount,
            "paths": [p.to_dict() for p in self.paths],
        }

    @classmethod
    def from_dict(cls, data: object) -> Retention:
        """Rebuild from :meth:`to_dict`; :class:`DataError` naming the field if malformed.

        >>> Retention.from_dict({"target_type": "app.Item", "status": "lost",
        ...                      "refcount": 2, "paths": []})
        Traceback (most recent call last):
            ...
        leakscope.errors.DataError: status: must be one of garbage, refcount, rooted, unreferenced, not 'lost'
        """
        f = Fields(data)
        status: Status = f.choice("status", _STATUSES)  # type: ignore[assignment]
        paths = []
        for i, p in enumerate(f.items("paths")):
            # RetentionPath (in _refgraph) raises ValueError naming what is wrong.
            try:
                paths.append(RetentionPath.from_dict(p))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise DataError(f"not a retention path ({exc})", field=f"paths[{i}]") from None
        return cls(
            target_type=f.text("target_type"),
            status=status,
            paths=tuple(paths),
            refcount=f.integer("refcount", minimum=0),
        )

    def to_dot(self) -> str:
        """Graphviz DOT text: roots at the top, the object at the bottom."""
        from leakscope._dot import paths_dot

        title = f"why is this {self.target_type} alive? ({self.status})"
        return paths_dot(title, self.target_type, self.paths)

    def render(self, path: str | Path) -> Path:
        """Render :meth:`to_dot` to ``path`` (svg, png...) with Graphviz; see ``report.dot.render``."""
        from leakscope._dot import render

        return render(self.to_dot(), path)


# --- refcount accounting --------------------------------------------------------
#
# sys.getrefcount(obj) counts references nobody can see: the call's own argument,
# the frames of leakscope on the way, and (3.10) the caller's value stack.  Rather
# than hard-code per-version figures, each entry point is calibrated once on a
# probe object that only a local variable holds, in the same call shape as the
# real call, and that excess is subtracted.

_BASELINES: dict[str, int] = {}
_CALIBRATING: list[str] = []
_PROBE_EXCESS: list[int] = []

_PROBE_SRC = "def probe(run, make):\n    obj = make()\n    run(obj)\n    del obj\n"


class _Probe:
    __slots__ = ("__weakref__",)


def _baseline(entry: str, run: Callable[[Any], object], own_frame: bool) -> int:
    cached = _BASELINES.get(entry)
    if cached is not None:
        return cached
    if entry in _CALIBRATING:
        return 0
    namespace: dict[str, Any] = {"__name__": "leakscope._probe" if own_frame else "probe"}
    exec(compile(_PROBE_SRC, f"<leakscope {entry} calibration>", "exec"), namespace)
    _CALIBRATING.append(entry)
    _PROBE_EXCESS.clear()
    try:
        namespace["probe"](run, _Probe)
    finally:
        _CALIBRATING.remove(entry)
        namespace.clear()
    value = _PROBE_EXCESS.pop() if _PROBE_EXCESS else 0
    _BASELINES[entry] = value
    return value


def _analyze(
    obj: object,
    rc: int,
    entry: str,
    run: Callable[[Any], object],
    *,
    own_frame: bool,
    max_depth: int,
    max_paths: int,
) -> Retention:
    ignore = None if own_frame else caller_frame()
    try:
        result = search(
            [obj], max_depth=max_depth, max_paths=max_paths, ignore_frame=ignore, exhaust=True
        )
    finally:
        del ignore
    raw_excess = rc - result.visible_refs
    if entry in _CALIBRATING:
        _PROBE_EXCESS.append(raw_excess)
        own = raw_excess
    else:
        own = _baseline(entry, run, own_frame)
    immortal = rc >= _IMMORTAL
    if result.paths or result.rooted:
        status = ROOTED
    elif result.referrers:
        status = GARBAGE if result.rooted is False else ROOTED
    elif raw_excess - own > 0 and not immortal:
        status = REFCOUNT
    else:
        status = UNREFERENCED
    return Retention(
        target_type=object_type_name(obj),
        status=status,
        paths=tuple(result.paths),
        refcount=rc - own,
    )


def why_alive(obj: object, *, max_depth: int = 20, max_paths: int = 3) -> Retention:
    """The shortest reference paths from roots to ``obj``, or why there is none.

    The caller's own variables holding ``obj`` are not reported.  Nothing is
    collected and no user code runs; the result holds no reference to ``obj``.

    >>> import sys, types
    >>> plugins = sys.modules["plugins"] = types.ModuleType("plugins")
    >>> plugins.handlers = [bytearray(8)]
    >>> print(why_alive(plugins.handlers[0]))
    bytearray object is kept alive by:
      sys.modules['plugins'].handlers[0]
    >>> del sys.modules["plugins"]
    """
    rc = sys.getrefcount(obj)
    return _analyze(
        obj, rc, "why_alive", why_alive, own_frame=False, max_depth=max_depth, max_paths=max_paths
    )


def _inspect_target(obj: object, max_depth: int = 20, max_paths: int = 3) -> Retention:
    """why_alive for an object that only a leakscope frame's local variable holds."""
    rc = sys.getrefcount(obj)
    return _analyze(
        obj,
        rc,
        "inspect",
        _inspect_target,
        own_frame=True,
        max_depth=max_depth,
        max_paths=max_paths,
    )


def _is_weakref(obj: object) -> bool:
    return issubclass(type(obj), weakref.ref)


def assert_collected(obj: object, *, msg: str | None = None) -> None:
    """Fail with :class:`LeakError` unless ``obj`` is (or would be) collected.

    ``obj`` is either a ``weakref.ref`` (passes when its referent is gone after a
    collection) or the object itself: then it passes when nothing but the caller's
    own variables keeps it alive, i.e. it would be freed once the caller drops it.
    The error message carries the ``why_alive`` paths; ``LeakError.report`` is the
    :class:`Retention`.
    """
    gc.collect()
    if _is_weakref(obj):
        target = obj()  # type: ignore[operator]
        if target is None:
            return
        retention = _inspect_target(target)
        del target
        note = ""
    else:
        rc = sys.getrefcount(obj)
        retention = _analyze(
            obj,
            rc,
            "assert_collected",
            assert_collected,
            own_frame=False,
            max_depth=20,
            max_paths=3,
        )
        if retention.status == UNREFERENCED:
            return
        note = ""
        if not _weakrefable(obj):
            note = (
                f"\n({retention.target_type} objects cannot be weak-referenced: "
                "checked by reference analysis)"
            )
    prefix = f"{msg}: " if msg else ""
    raise LeakError(
        f"{prefix}{retention.target_type} object was not collected\n{retention}{note}", retention
    )


def _weakrefable(obj: object) -> bool:
    try:
        weakref.ref(obj)
    except TypeError:
        return False
    return True


@dataclass
class _IdEntry:
    oid: int
    type_id: int
    type_name: str


class CollectionWatch:
    """Objects expected to be collected by the end of an :func:`expect_collected` block.

    ``add`` keeps a weak reference (or, for objects that cannot be weak-referenced,
    their id and type, found again by a gc scan); it never keeps the object alive.
    """

    def __init__(self, msg: str | None = None) -> None:
        self.msg = msg
        self._refs: list[weakref.ref[Any]] = []
        self._ids: list[_IdEntry] = []
        self.notes: list[str] = []

    def add(self, obj: T) -> T:
        """Watch ``obj``; returns it, so that ``x = watch.add(make())`` works."""
        try:
            self._refs.append(weakref.ref(obj))
        except TypeError:
            tp = type(obj)
            name = object_type_name(obj)
            if not gc.is_tracked(obj):
                note = (
                    f"{name} object at {id(obj):#x} cannot be checked: it can neither be "
                    "weak-referenced nor found by a gc scan (not tracked by the collector)"
                )
                self.notes.append(note)
                warnings.warn(note, RuntimeWarning, stacklevel=2)
            else:
                self._ids.append(_IdEntry(id(obj), id(tp), name))
        return obj

    def __len__(self) -> int:
        return len(self._refs) + len(self._ids)

    def check(self) -> None:
        """Collect, then raise :class:`LeakError` listing every watched object still alive."""
        gc.collect()
        reports: list[tuple[str, Retention]] = []
        for ref in self._refs:
            target = ref()
            if target is not None:
                reports.append(("", _inspect_target(target)))
            del target
        if self._ids:
            wanted = {e.oid: e for e in self._ids}
            objects = gc.get_objects()
            found = [o for o in objects if id(o) in wanted and id(type(o)) == wanted[id(o)].type_id]
            objects.clear()
            del objects
            while found:
                target = found.pop()
                reports.append(
                    (
                        f" ({object_type_name(target)} objects cannot be weak-referenced: found "
                        "again by an id scan of gc.get_objects())",
                        _inspect_target(target),
                    )
                )
                del target
        if not reports:
            return
        prefix = f"{self.msg}: " if self.msg else ""
        lines = [f"{prefix}{len(reports)} of {len(self)} watched objects were not collected"]
        for note, retention in reports:
            lines.append(f"- {retention.target_type}{note}:")
            lines += [f"    {line}" for line in str(retention).splitlines()]
        raise LeakError("\n".join(lines), reports[0][1])


@contextmanager
def expect_collected(*, msg: str | None = None) -> Iterator[CollectionWatch]:
    """Check that every object added to the watch is collected when the block ends.

    >>> import io
    >>> with expect_collected() as watch:
    ...     conn = watch.add(io.BytesIO(b"data"))
    ...     conn.close()
    ...     del conn
    >>> len(watch)
    1
    """
    watch = CollectionWatch(msg)
    yield watch
    watch.check()


@dataclass(frozen=True)
class Size:
    """A measured size: ``nbytes``, whether it is ``deep`` and the ``method`` used."""

    nbytes: int
    deep: bool
    method: str

    def __int__(self) -> int:
        return self.nbytes

    def __index__(self) -> int:
        return self.nbytes

    def __str__(self) -> str:
        kind = "deep" if self.deep else "shallow"
        return f"{self.nbytes:,} bytes ({kind}, {self.method})"


def sizeof(obj: object, deep: bool = True) -> Size:
    """The size of ``obj``: deep through ``pympler.asizeof`` when installed, else shallow.

    The result says which: ``Size(nbytes, deep, method)``; ``int(size)`` is the figure.
    """
    if deep:
        try:
            from pympler import asizeof
        except ImportError:
            pass
        else:
            try:
                measure: Callable[[object], int] = asizeof.asizeof
                return Size(int(measure(obj)), True, "pympler.asizeof")
            except Exception:
                pass
    try:
        n = sys.getsizeof(obj)
    except Exception:
        n = int(getattr(type(obj), "__basicsize__", 0))
    method = "sys.getsizeof" if not deep else "sys.getsizeof (pympler not installed: shallow)"
    return Size(int(n), False, method)
