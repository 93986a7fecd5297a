"""Reference-graph primitives: edge labels, root names and the shortest-path search.

Shared by ``why_alive``, ``find_cycles`` and the holder explanations of ``check()``.

* :func:`edge_label` says how one object refers to another, as a person reads it:
  ``.attr``, ``['key']``, ``[3]``, ``.__dict__``, ``.cell_contents``, ``.__self__``,
  ``.tb_frame``, ``.f_locals['x']``.
* Roots are named the way a person finds them: ``sys.modules['app']``,
  ``class app.models.Session``, ``function app.jobs.collect`` and
  ``thread 'worker' frame app.jobs:run line 12``.
* :func:`find_paths` searches backwards, breadth first and without recursion, from
  the targets to the roots.  Referrers are read with one heap scan per search level
  while the frontier is small, and through a reverse-edge index built once per query
  when it is wide, never with one ``gc.get_referrers`` call per visited object.

Nothing here calls user code: objects are classified with ``type(obj)``, attributes
are read through C-level descriptors only, dictionaries through ``dict.items``.
Frames and containers that belong to leakscope itself never appear on a path.
"""

from __future__ import annotations

import ast
import bisect
import gc
import itertools
import sys
import threading
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from leakscope._heap import MODULE_DICT, TYPE_MODULE, object_type_name, type_name
from leakscope.errors import DataError

__all__ = [
    "RetentionPath",
    "SearchResult",
    "describe_chain",
    "edge_label",
    "find_paths",
    "has_finalizer",
    "label_chain",
    "search",
    "short_name",
]

_QUALNAME: Any = type.__dict__["__qualname__"]
_MRO: Any = type.__dict__["__mro__"]
_TYPE_DICT: Any = type.__dict__["__dict__"]
_FUNC_QUALNAME: Any = types.FunctionType.__dict__["__qualname__"]
_FUNC_MODULE: Any = types.FunctionType.__dict__["__module__"]
_MEMBER = types.MemberDescriptorType
_GETSET = types.GetSetDescriptorType

# Generators, coroutines and async generators own their frames' locals: the
# collector sees those references through the generator object.
_CO_OPTIMIZED = 0x1
_CO_GEN_LIKE = 0x20 | 0x80 | 0x200

# C-level getters that only read a field (no user code, no side effect).
_SAFE_GETSETS = frozenset(
    {
        "f_back",
        "f_code",
        "f_globals",
        "f_builtins",
        "f_trace",
        "tb_next",
        "__code__",
        "__defaults__",
        "__kwdefaults__",
        "args",
        "__traceback__",
        "__context__",
        "__cause__",
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "ag_frame",
        "ag_code",
        "ag_await",
        "__bases__",
        "cell_contents",
    }
)

_ATOMS = (str, int, float, bool, bytes, type(None))


# --- data -----------------------------------------------------------------


@dataclass(frozen=True)
class RetentionPath:
    """One chain of references from a root to a target, held as text only.

    >>> p = RetentionPath("sys.modules['app']", (".cache", "['user:42']", "[3]"),
    ...                   ("module", "dict", "list", "app.User"))
    >>> str(p)
    "sys.modules['app'].cache['user:42'][3]"
    >>> p.format(show_values=False)
    "sys.modules['app'].cache[<str>][3]"
    """

    root: str
    steps: tuple[str, ...]
    types: tuple[str, ...]

    def format(self, show_values: bool = True) -> str:
        """``root`` followed by the steps; without values, odd dict keys become ``[<type>]``."""
        if show_values:
            return self.root + "".join(self.steps)
        return self.root + "".join(_hide_value(step) for step in self.steps)

    def __str__(self) -> str:
        return self.format(show_values=True)

    def __len__(self) -> int:
        return len(self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "steps": list(self.steps), "types": list(self.types)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetentionPath:
        try:
            return cls(
                root=str(data["root"]),
                steps=tuple(str(s) for s in data["steps"]),
                types=tuple(str(t) for t in data["types"]),
            )
        except (KeyError, TypeError) as exc:
            name = exc.args[0] if isinstance(exc, KeyError) and exc.args else ""
            raise DataError(f"not a RetentionPath dictionary: {exc}", field=str(name)) from None


def _hide_value(step: str) -> str:
    """``['user:42']`` -> ``[<str>]``; identifier-like string keys and ints stay."""
    if not (step.startswith("[") and step.endswith("]")) or step.startswith("[<"):
        return step
    inner = step[1:-1]
    try:
        value = ast.literal_eval(inner)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return step
    if isinstance(value, str) and len(value) <= 32 and value.isidentifier():
        return step
    if type(value) is int:
        return step
    return f"[<{type(value).__name__}>]"


@dataclass
class SearchResult:
    """What :func:`search` found; holds text and counts only."""

    paths: list[RetentionPath]
    referrers: int  # distinct objects/frames referring to a target (leakscope excluded)
    visible_refs: int  # references to the first target those referrers hold
    rooted: bool | None  # True: root reached; False: no root, search exhausted; None: cut off


# --- host-safe readers ------------------------------------------------------


def _qualname(tp: type) -> str:
    try:
        name = _QUALNAME.__get__(tp)
    except Exception:
        return "?"
    return name if isinstance(name, str) else "?"


def short_name(obj: object) -> str:
    """``Node`` for a ``Node`` instance, ``class app.Node`` for the class itself."""
    tp = type(obj)
    if issubclass(tp, type):
        return f"class {_qualname(obj)}"  # type: ignore[arg-type]
    return _qualname(tp).rpartition(".")[2]


def has_finalizer(tp: type) -> bool:
    """True when ``tp`` or a base defines ``__del__`` (``tp_finalize`` shows as ``__del__``)."""
    try:
        return any("__del__" in _TYPE_DICT.__get__(c) for c in _MRO.__get__(tp))
    except Exception:
        return False


def _module_name_of_frame(frame: types.FrameType) -> str | None:
    try:
        name = dict.get(frame.f_globals, "__name__")
    except Exception:
        return None
    return name if type(name) is str else None


def is_own_frame(frame: types.FrameType) -> bool:
    """True for frames running leakscope's own code."""
    name = _module_name_of_frame(frame)
    return name is not None and (name == "leakscope" or name.startswith("leakscope."))


def caller_frame() -> types.FrameType | None:
    """The innermost frame of the current thread that is not leakscope's."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and is_own_frame(frame):
        frame = frame.f_back
    return frame


def _key_text(key: Any) -> str:
    tp = type(key)
    if tp is str:
        text: str = key
        return repr(text if len(text) <= 60 else text[:57] + "...")
    if tp in (int, bool, type(None)):
        text = repr(key)
        return text if len(text) <= 30 else "<int>"
    if tp in (float, bytes):
        text = repr(key)
        return text if len(text) <= 40 else f"<{tp.__name__}>"
    if tp is tuple and len(key) <= 4 and all(type(k) in _ATOMS for k in key):
        text = repr(key)
        if len(text) <= 60:
            return text
    return f"<{object_type_name(key)}>"


def _safe_items(d: dict[Any, Any]) -> list[tuple[Any, Any]]:
    try:
        return list(dict.items(d))
    except Exception:  # changed size during iteration in another thread
        return []


def _instance_dict(obj: object) -> dict[str, Any] | None:
    """``obj.__dict__`` read through the C-level descriptor, or None."""
    try:
        mro = _MRO.__get__(type(obj))
    except Exception:
        return None
    for cls in mro:
        desc = _TYPE_DICT.__get__(cls).get("__dict__")
        if desc is None:
            continue
        if type(desc) is not _GETSET:
            return None
        try:
            d = desc.__get__(obj, type(obj))
        except Exception:
            return None
        return d if type(d) is dict else None
    return None


def _descriptor_label(referrer: object, referent: object) -> str | None:
    """Name of a C-level member/getset of ``referrer`` that holds ``referent``."""
    try:
        mro = _MRO.__get__(type(referrer))
    except Exception:
        return None
    for cls in mro:
        try:
            namespace = list(_TYPE_DICT.__get__(cls).items())
        except Exception:
            continue
        for name, desc in namespace:
            tp = type(desc)
            if tp is _MEMBER or (tp is _GETSET and name in _SAFE_GETSETS):
                try:
                    value = desc.__get__(referrer, type(referrer))
                except Exception:
                    continue
                if value is referent:
                    return f".{name}"
    return None


def _type_dict(cls: type) -> dict[str, Any] | None:
    try:
        proxy = _TYPE_DICT.__get__(cls)
        for inner in gc.get_referents(proxy):
            if type(inner) is dict:
                return inner
    except Exception:
        return None
    return None


def _frame_locals(frame: types.FrameType) -> list[tuple[str, Any]]:
    """The fast locals of an optimized frame (not cells, not free variables)."""
    try:
        code = frame.f_code
        names = set(code.co_varnames)
        items = frame.f_locals
        # 3.13+: a FrameLocalsProxy, a live view that holds nothing
        pairs = _safe_items(items) if type(items) is dict else list(items.items())
    except Exception:
        return []
    return [(k, v) for k, v in pairs if type(k) is str and k in names]


def _dict_label(referrer: dict[Any, Any], referent: object) -> str | None:
    items = _safe_items(referrer)
    for key, value in items:
        if value is referent:
            return f"[{_key_text(key)}]"
    for key, _ in items:
        if key is referent:
            return f".keys(){{<{object_type_name(referent)}>}}"
    return None


def _sequence_label(referrer: Any, referent: object) -> str | None:
    rtp = type(referrer)
    try:
        seq = (
            list.copy(referrer)
            if issubclass(rtp, list)
            else tuple.__getitem__(referrer, slice(None))
        )
    except Exception:
        seq = []
    for i, value in enumerate(seq):
        if value is referent:
            fields = None
            if issubclass(rtp, tuple) and rtp is not tuple:
                fields = _TYPE_DICT.__get__(rtp).get("_fields")
            if type(fields) is tuple and i < len(fields) and type(fields[i]) is str:
                return f".{fields[i]}"
            return f"[{i}]"
    return None


def _frame_label(referrer: types.FrameType, referent: object) -> str:
    label = _descriptor_label(referrer, referent)
    if label is not None:
        return label
    for name, value in _frame_locals(referrer):
        if value is referent:
            return f".f_locals[{name!r}]"
    return ".f_locals[?]"


def _namespace_label(referrer: Any, referent: object) -> str | None:
    """``.__dict__`` when ``referent`` is the namespace of the class or module ``referrer``."""
    if issubclass(type(referrer), type):
        return ".__dict__" if referent is _type_dict(referrer) else None
    try:
        return ".__dict__" if referent is MODULE_DICT.__get__(referrer) else None
    except Exception:
        return None


def _generator_label(referrer: Any, referent: object) -> str | None:
    label = _descriptor_label(referrer, referent)
    if label is not None:
        return label
    rtp = type(referrer)
    frame = None
    attr = ""
    for attr in ("gi_frame", "cr_frame", "ag_frame"):
        desc = rtp.__dict__.get(attr)
        if desc is not None:
            frame = desc.__get__(referrer, rtp)
            break
    if type(frame) is types.FrameType:
        for name, value in _frame_locals(frame):
            if value is referent:
                return f".{attr}.f_locals[{name!r}]"
    return None


def _attribute_label(referrer: Any, referent: object) -> str | None:
    """An attribute read through a slot or the instance ``__dict__``."""
    label = _descriptor_label(referrer, referent)
    if label is not None:
        return label
    rtp = type(referrer)
    if rtp is types.FunctionType and type(referent) is dict:
        return ".__dict__"
    d = _instance_dict(referrer) if rtp is not types.FunctionType else None
    if d is not None:
        if d is referent:
            return ".__dict__"
        for key, value in _safe_items(d):
            if value is referent:
                if type(key) is str and key.isidentifier():
                    return f".{key}"
                return f".__dict__[{_key_text(key)}]"
    return None


_GENERATORS = (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)


def _container_label(referrer: Any, referent: object) -> str | None:
    """The label when ``referrer`` is a dict, sequence, set, frame, class, module or generator."""
    rtp = type(referrer)
    if issubclass(rtp, dict):
        return _dict_label(referrer, referent)
    if issubclass(rtp, (list, tuple)):
        return _sequence_label(referrer, referent)
    if issubclass(rtp, (set, frozenset)):
        return f"{{<{object_type_name(referent)}>}}"
    if rtp is types.FrameType:
        return _frame_label(referrer, referent)
    if issubclass(rtp, (type, types.ModuleType)):
        return _namespace_label(referrer, referent)
    if rtp in _GENERATORS:
        return _generator_label(referrer, referent)
    return None


def edge_label(referrer: Any, referent: object) -> str:
    """How ``referrer`` refers to ``referent``: ``.attr``, ``['key']``, ``[3]``...

    Returns ``".<?>"`` when the reference cannot be named (an opaque C object).

    >>> edge_label({"user:42": 7}, 7), edge_label([0, "x"], "x")
    ("['user:42']", '[1]')
    """
    if type(referrer) is types.FrameType:
        return _frame_label(referrer, referent)
    label = _container_label(referrer, referent)
    if label is None:
        label = _attribute_label(referrer, referent)
    return ".<?>" if label is None else label


# --- roots ------------------------------------------------------------------

_PRIO_MODULE, _PRIO_CLASS, _PRIO_FUNCTION, _PRIO_FRAME, _PRIO_EXTERNAL = range(5)


class _Roots:
    """The named roots of one query: modules, their dicts and running frames."""

    def __init__(self, own: set[int]) -> None:
        self.module_dicts: dict[int, tuple[str, object]] = {}
        self.module_names: dict[int, str] = {}
        self.classes: dict[int, bool] = {}  # id of a class met -> importable
        own.add(id(self.classes))
        for name, mod in list(sys.modules.items()):
            if type(name) is not str or not issubclass(type(mod), types.ModuleType):
                continue
            try:
                md = MODULE_DICT.__get__(mod)
            except Exception:
                continue
            canonical = dict.get(md, "__name__") == name if type(md) is dict else False
            if id(mod) in self.module_names and not canonical:
                continue
            root = f"sys.modules[{name!r}]"
            self.module_names[id(mod)] = root
            self.module_dicts[id(md)] = (root, mod)
        self._add_loggers()
        # Running frames are invisible to the collector: read their locals here.
        self.frame_refs: dict[int, list[tuple[str, types.FrameType, str]]] = {}
        self.frames: list[types.FrameType] = []
        own.add(id(self.frames))
        # Up to 3.12 reading f_locals of a running function copies its locals into
        # a dict kept on the frame, which would keep them alive after the function
        # drops them; these copies are emptied again when the query ends (the next
        # locals() call refills them).
        self.snapshots: list[dict[str, Any]] = []
        own.add(id(self.snapshots))
        own.add(id(self.frame_refs))
        names = {}
        for thread in threading.enumerate():
            try:
                tname = threading.Thread.name.fget(thread)  # type: ignore[attr-defined]
            except Exception:
                tname = "?"
            names[thread.ident] = tname if type(tname) is str else "?"
        current = sys._current_frames()
        own.add(id(current))
        frame: types.FrameType | None = None
        top: types.FrameType | None = None
        try:
            for ident, top in current.items():
                frame = top
                while frame is not None:
                    own.add(id(frame))
                    if not is_own_frame(frame):
                        self._add_frame(frame, names.get(ident, str(ident)), own)
                    frame = frame.f_back
        finally:
            # this frame is among those listed: leave no frame -> frame cycle behind
            current.clear()
            del frame, top

    def _add_frame(self, frame: types.FrameType, thread: str, own: set[int]) -> None:
        code = frame.f_code
        if not code.co_flags & _CO_OPTIMIZED or code.co_flags & _CO_GEN_LIKE:
            return  # module/class bodies use a real dict; generators are seen via the gen
        func = getattr(code, "co_qualname", code.co_name)
        root = (
            f"thread {thread!r} frame {_module_name_of_frame(frame) or '?'}:{func} "
            f"line {frame.f_lineno}"
        )
        try:
            raw = frame.f_locals
            if type(raw) is dict:  # <= 3.12: a snapshot dict kept on the frame
                own.add(id(raw))
                self.snapshots.append(raw)
        except Exception:
            return
        self.frames.append(frame)
        for name, value in _frame_locals(frame):
            self.frame_refs.setdefault(id(value), []).append((root, frame, f".f_locals[{name!r}]"))

    def _add_loggers(self) -> None:
        """Loggers are roots named as people get them: ``logging.getLogger('jobs')``."""
        logging = sys.modules.get("logging")
        if logging is None:
            return
        try:
            md = MODULE_DICT.__get__(logging)
            logger_class = md.get("Logger")
            root = md.get("root")
            registry = logger_class.manager.loggerDict if logger_class is not None else None
        except Exception:
            return
        if type(registry) is not dict:
            return
        if root is not None:
            self.module_names.setdefault(id(root), "logging.getLogger()")
        for name, logger in _safe_items(registry):
            if type(name) is str and isinstance(logger, logger_class):
                self.module_names.setdefault(id(logger), f"logging.getLogger({name!r})")

    def _importable(self, cls: type) -> bool:
        """Whether ``cls`` is what its module and qualified name lead to (cached per query).

        A class made per call (``type(name, bases, ns)``, a class statement in a
        function) is not a root a person can find: the registry or frame that holds it is.
        """
        known = self.classes.get(id(cls))
        if known is not None:
            return known
        found = False
        try:
            module = sys.modules.get(TYPE_MODULE.__get__(cls))
            qual = _QUALNAME.__get__(cls)
            if module is not None and type(qual) is str and "<" not in qual:
                obj: Any = module
                for i, part in enumerate(qual.split(".")):
                    ns = MODULE_DICT.__get__(obj) if i == 0 else _type_dict(obj)
                    obj = ns.get(part) if type(ns) is dict else None
                    if obj is None:
                        break
                found = obj is cls
        except Exception:
            found = False
        self.classes[id(cls)] = found
        return found

    def root_of(self, obj: object) -> tuple[int, str, object | None] | None:
        """(priority, name, object to put before ``obj`` on the path) or None."""
        oid = id(obj)
        hit = self.module_dicts.get(oid)
        if hit is not None:
            return _PRIO_MODULE, hit[0], hit[1]
        name = self.module_names.get(oid)
        if name is not None:
            return _PRIO_MODULE, name, None
        tp = type(obj)
        if issubclass(tp, type):
            if not self._importable(obj):  # type: ignore[arg-type]
                return None  # a class made at run time: what holds it is the root
            return _PRIO_CLASS, f"class {type_name(obj)}", None  # type: ignore[arg-type]
        if tp is types.FunctionType:
            try:
                qual = _FUNC_QUALNAME.__get__(obj)
                mod = _FUNC_MODULE.__get__(obj)
            except Exception:
                return None
            if type(qual) is str and "<locals>" not in qual:
                prefix = f"{mod}." if type(mod) is str else ""
                return _PRIO_FUNCTION, f"function {prefix}{qual}", None
        return None


# --- referrer lookup ----------------------------------------------------------

_SMALL_FRONTIER = 8
_EXTRA_DEPTH = 100  # levels searched past max_depth to tell garbage from rooted
_BLOCK = 128


class _ReverseIndex:
    """Referrers of a whole frontier at once, without one heap scan per object.

    Small frontiers use one ``gc.get_referrers`` scan.  Wide ones use a flat
    index of every (tracked) referent id, built once per query in blocks of
    objects, scanned at C speed and refined block by block.
    """

    def __init__(self, own: set[int]) -> None:
        self.own = own
        self.objects: list[Any] | None = None
        self.ids: list[int] = []
        self.ends: list[int] = []
        own.add(id(self.ids))

    def _build(self) -> None:
        objects = gc.get_objects()
        self.own.add(id(objects))
        get = gc.get_referents
        tracked = gc.is_tracked
        extend = self.ids.extend
        ends = self.ends
        for start in range(0, len(objects), _BLOCK):
            extend(map(id, filter(tracked, get(*objects[start : start + _BLOCK]))))
            ends.append(len(self.ids))
        self.objects = objects

    def close(self) -> None:
        if self.objects is not None:
            self.objects.clear()
        self.ids.clear()

    def referrers(self, frontier: dict[int, Any]) -> list[tuple[Any, list[int]]]:
        """(referrer, ids of the frontier objects it refers to), leakscope's own excluded."""
        out: list[tuple[Any, list[int]]] = []
        self.own.add(id(out))
        fids = set(frontier)
        objs = list(frontier.values())
        self.own.add(id(objs))
        wide = len(objs) > _SMALL_FRONTIER and (self.objects is not None or len(objs) > 32)
        if wide:
            if self.objects is None:
                self._build()
            self._indexed(fids, out)
            # untracked targets (a str, a tuple of atoms) are not in the index
            untracked = [o for o in objs if not gc.is_tracked(o)]
            self.own.add(id(untracked))
            objs.clear()
            objs.extend(untracked)
            untracked.clear()
        self._scanned(objs, {id(o) for o in objs}, out)
        objs.clear()
        return out

    def _scanned(self, objs: list[Any], fids: set[int], out: list[tuple[Any, list[int]]]) -> None:
        own = self.own
        for start in range(0, len(objs), _SMALL_FRONTIER):
            args = tuple(objs[start : start + _SMALL_FRONTIER])
            own.add(id(args))
            found = gc.get_referrers(*args)
            own.add(id(found))
            del args
            for ref in found:
                if id(ref) in own or (type(ref) is types.FrameType and is_own_frame(ref)):
                    continue
                hits = [i for i in map(id, gc.get_referents(ref)) if i in fids]
                if hits:
                    out.append((ref, hits))
            found.clear()

    def _indexed(self, fids: set[int], out: list[tuple[Any, list[int]]]) -> None:
        assert self.objects is not None
        own = self.own
        positions = list(itertools.compress(itertools.count(), map(fids.__contains__, self.ids)))
        blocks = sorted({bisect.bisect_right(self.ends, p) for p in positions})
        objects = self.objects
        for block in blocks:
            for ref in objects[block * _BLOCK : (block + 1) * _BLOCK]:
                if id(ref) in own or (type(ref) is types.FrameType and is_own_frame(ref)):
                    continue
                hits = [i for i in map(id, gc.get_referents(ref)) if i in fids]
                if hits:
                    out.append((ref, hits))


# --- search -------------------------------------------------------------------


class _Search:
    """The state of one backward search: objects met, the frontier, the roots reached."""

    def __init__(self, targets: Sequence[object], ignore_frame: types.FrameType | None) -> None:
        self.own: set[int] = set()
        self.own.add(id(self.own))
        self.own.add(id(targets))
        self.seen: dict[int, Any] = {}  # every object met, so that ids stay valid
        self.nxt: dict[int, int] = {}  # referrer id -> id of the object it refers to
        self.frontier: dict[int, Any] = {}
        self.hits: list[_Hit] = []
        self.root_edges: set[tuple[int, int]] = set()
        for holder in (self.seen, self.nxt, self.frontier, self.hits):
            self.own.add(id(holder))
        for t in targets:
            self.seen[id(t)] = t
            self.frontier[id(t)] = t
        self.target_ids = frozenset(self.frontier)
        self.first_id = id(targets[0]) if targets else None
        self.ignore_frame = ignore_frame
        self.roots = _Roots(self.own)
        self.index = _ReverseIndex(self.own)
        self.referrers = 0
        self.visible = 0
        self.rooted: bool | None = None

    def _frame_hits(self, depth: int, recording: bool) -> None:
        """Running frames that refer to the frontier directly: roots reached."""
        for fid in self.frontier:
            for frame_root, frame, label in self.roots.frame_refs.get(fid, ()):
                if fid in self.target_ids:
                    if fid == self.first_id:
                        self.visible += 1
                    if frame is self.ignore_frame:
                        continue
                    self.referrers += 1
                self.rooted = True
                if recording:
                    self.hits.append((_PRIO_FRAME, depth, frame_root, fid, None, label, -1))

    def step(self, depth: int, recording: bool) -> None:
        """One level: the referrers of the frontier become the next frontier."""
        nxt_frontier: dict[int, Any] = {}
        self.own.add(id(nxt_frontier))
        self._frame_hits(depth, recording)
        found = self.index.referrers(self.frontier)
        for ref, children in found:
            rid = id(ref)
            if depth == 1:
                self.referrers += 1
                if self.first_id is not None and self.first_id in children:
                    self.visible += _count_refs(ref, self.seen[self.first_id])
            named = self.roots.root_of(ref)
            if named is not None:
                self._root_hit(ref, named, children, depth, recording)
                continue
            if rid in self.seen:
                continue
            self.seen[rid] = ref
            self.nxt[rid] = children[0]
            nxt_frontier[rid] = ref
        found.clear()
        self.frontier.clear()
        self.frontier = nxt_frontier

    def _root_hit(
        self,
        ref: object,
        named: tuple[int, str, object | None],
        children: list[int],
        depth: int,
        recording: bool,
    ) -> None:
        # a root may hold several frontier objects: one path through each
        rid = id(ref)
        self.rooted = True
        self.seen[rid] = ref
        for child in dict.fromkeys(children):
            if (rid, child) in self.root_edges or not recording:
                continue
            self.root_edges.add((rid, child))
            self.hits.append((named[0], depth, named[1], rid, named[2], None, child))

    def close(self) -> None:
        self.frontier.clear()
        self.index.close()
        self.roots.frame_refs.clear()
        self.roots.frames.clear()
        for snapshot in self.roots.snapshots:
            snapshot.clear()
        self.roots.snapshots.clear()
        self.seen.clear()
        self.hits.clear()


def search(
    targets: Sequence[object],
    *,
    max_depth: int = 20,
    max_paths: int = 3,
    ignore_frame: types.FrameType | None = None,
    exhaust: bool = False,
) -> SearchResult:
    """Shortest reference paths from named roots to any of ``targets``.

    ``ignore_frame``: direct references from this frame to a target are counted
    but not reported (the caller's own variable).  ``exhaust``: keep searching past
    ``max_depth`` (without recording longer paths) to tell garbage from rooted.
    """
    if type(max_depth) is not int or max_depth < 1:
        raise ValueError(f"max_depth must be a positive int, not {max_depth!r}")
    if type(max_paths) is not int or max_paths < 1:
        raise ValueError(f"max_paths must be a positive int, not {max_paths!r}")
    state = _Search(targets, ignore_frame)
    depth = 0
    try:
        while state.frontier:
            depth += 1
            state.step(depth, recording=depth <= max_depth)
            if len(state.hits) >= max_paths:
                break
            if depth >= max_depth and (
                state.rooted or not exhaust or depth >= max_depth + _EXTRA_DEPTH
            ):
                break
        if state.rooted is None and not state.frontier:
            state.rooted = False
        paths = _build_paths(state.hits, state.seen, state.nxt, state.target_ids, max_paths)
    finally:
        state.close()
    return SearchResult(
        paths=paths, referrers=state.referrers, visible_refs=state.visible, rooted=state.rooted
    )


def _count_refs(referrer: object, obj: object) -> int:
    """How many references to ``obj`` the collector sees in ``referrer``."""
    n = 0
    for r in gc.get_referents(referrer):
        if r is obj:
            n += 1
    return n


# (priority, depth, root name, first object id, object before it, frame label, next id)
_Hit = tuple[int, int, str, int, "object | None", "str | None", int]


def _build_paths(
    hits: list[_Hit],
    seen: dict[int, Any],
    nxt: dict[int, int],
    target_ids: frozenset[int],
    max_paths: int,
) -> list[RetentionPath]:
    hits.sort(key=lambda h: (h[1], h[0]))
    paths: list[RetentionPath] = []
    done: set[str] = set()
    for _prio, _depth, root, start, prefix, frame_label, child in hits:
        chain: list[Any] = [] if prefix is None else [prefix]
        oid = start
        chain.append(seen[oid])
        if child != -1:
            oid = child
            chain.append(seen[oid])
        while oid not in target_ids:
            oid = nxt[oid]
            chain.append(seen[oid])
        try:
            path = describe_chain(root, chain, first_label=frame_label)
        finally:
            chain.clear()
        text = str(path)
        if text in done:
            continue
        done.add(text)
        paths.append(path)
        if len(paths) >= max_paths:
            break
    return paths


def label_chain(chain: Sequence[Any]) -> list[tuple[int, str]]:
    """The steps along ``chain`` as (index of the object the step lands on, label).

    An object's ``__dict__`` followed by an identifier key folds into one ``.name``
    step that skips the dict.
    """
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(chain) - 1:
        label = edge_label(chain[i], chain[i + 1])
        if label == ".__dict__" and i + 2 < len(chain):
            inner = edge_label(chain[i + 1], chain[i + 2])
            if inner.startswith("['") and inner.endswith("']") and inner[2:-2].isidentifier():
                out.append((i + 2, f".{inner[2:-2]}"))
                i += 2
                continue
        out.append((i + 1, label))
        i += 1
    return out


def describe_chain(root: str, chain: list[Any], *, first_label: str | None = None) -> RetentionPath:
    """Name the edges of ``chain`` (objects, root first), folding ``.__dict__['x']`` to ``.x``.

    ``first_label``: the chain's root is not an object (a running frame) and this is
    the label of the edge from it to ``chain[0]``.
    """
    steps: list[str] = []
    tps: list[str] = []
    if first_label is not None:
        steps.append(first_label)
        tps.append("frame")
    tps.append(object_type_name(chain[0]))
    for index, label in label_chain(chain):
        steps.append(label)
        tps.append(object_type_name(chain[index]))
    return RetentionPath(root=root, steps=tuple(steps), types=tuple(tps))


def find_paths(
    targets: Sequence[object], *, max_depth: int = 20, max_paths: int = 3
) -> list[RetentionPath]:
    """Shortest paths from named roots to any of ``targets``, shortest first.

    One search for all targets: use it to find which module, class or function
    holds many leaked objects.  The returned paths hold text only.
    """
    return search(targets, max_depth=max_depth, max_paths=max_paths).paths
