"""The fix hints and explanatory notes of a leak report, each written once.

A hint is chosen from structured facts about a culprit (what grows, where the
container that holds it lives, what its retention paths go through), never by
searching the text of a formatted holder:

>>> facts = Facts("container", container=ContainerKey.default("app", "collect", 0))
>>> choose(facts)
'mutable_default'
>>> hint_text(choose(facts))
'avoid mutable default arguments: default to None and create the container inside'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from leakscope._roots import ContainerKey
from leakscope.engine.model import CulpritKind

__all__ = ["HINTS", "NOTES", "Facts", "HintId", "NoteId", "choose", "hint_text", "note_text"]

HintId = Literal[
    "refcount",
    "finalizer",
    "mutable_default",
    "lru_method",
    "lru_unbounded",
    "exceptions",
    "loggers",
    "callbacks",
    "log_handlers",
    "classes_per_call",
    "class_registry",
    "unbounded_cache",
    "growing_container",
    "buffer",
    "atexit",
    "cycles",
    "gc_garbage",
    "untracked",
    "native",
    "thread",
    "bounded_cache",
    "unknown",
]
"""The name of one fix hint in :data:`HINTS`."""

HINTS: Mapping[HintId, str] = {
    "refcount": (
        "a reference-count leak in C code: check the Py_INCREF/Py_DECREF pairs of the "
        "extension that creates {type} (or upgrade it)"
    ),
    "finalizer": "don't store self (or objects of its cycle) from __del__; use weakref.finalize",
    "mutable_default": (
        "avoid mutable default arguments: default to None and create the container inside"
    ),
    "lru_method": (
        "functools.lru_cache/cache on a method keeps every instance (self) alive: give it a "
        "maxsize, or cache per instance (functools.cached_property, a dict on self)"
    ),
    "lru_unbounded": (
        "an unbounded cache: functools.cache / lru_cache(maxsize=None) over ever-new "
        "arguments keeps every result; give it a bound (functools.lru_cache(maxsize=...))"
    ),
    "exceptions": (
        "don't keep exceptions or tracebacks: store str(exc) or "
        "traceback.format_exception(exc), or call traceback.clear_frames(tb)"
    ),
    "loggers": (
        "logging.getLogger() with ever-new names keeps every logger: use a fixed set of "
        "names and pass varying data in the message or extra="
    ),
    "callbacks": (
        "callbacks/handlers registered and never removed: unregister them when done, or hold "
        "them weakly (weakref.WeakMethod, weakref.WeakSet)"
    ),
    "log_handlers": (
        "a logging handler added on every call: add handlers once at start-up "
        "(logging.config), or removeHandler() and close() them when done"
    ),
    "classes_per_call": (
        "a class created on every call and kept by a registry: create the class once (at "
        "import, or cache it by its parameters), or unregister it when done"
    ),
    "class_registry": (
        "a registry on the class keeps every instance alive: remove entries when done, or "
        "use weakref.WeakSet / weakref.WeakValueDictionary"
    ),
    "unbounded_cache": (
        "an unbounded cache: bound it (functools.lru_cache(maxsize=...), evict old entries) "
        "or key it weakly (weakref.WeakValueDictionary / WeakKeyDictionary)"
    ),
    "growing_container": (
        "a container that only grows: remove entries when done, bound it "
        "(collections.deque(maxlen=...)), or hold entries weakly (weakref.WeakSet)"
    ),
    "buffer": "a buffer that only grows: clear or truncate it after use, or bound its size",
    "atexit": "register the atexit callback once (at import), not per call",
    "cycles": (
        "break the cycles (a weakref for back-references, clear links when done) or "
        "re-enable gc / call gc.collect() periodically"
    ),
    "gc_garbage": (
        "gc.garbage keeps everything the collector could not free (or all garbage under "
        "gc.DEBUG_SAVEALL): turn DEBUG_SAVEALL off and clear gc.garbage"
    ),
    "untracked": (
        "look at the allocation site above and at the C extensions it calls; "
        "a missing Py_DECREF leaks one reference per call"
    ),
    "native": (
        "resident memory grows: check the C libraries and extensions the function calls for "
        "allocations that are never freed (ctypes functions returning malloc'ed memory, "
        "an extension's own cache)"
    ),
    "thread": (
        "a thread started per call and never stopped: stop it when done (join it, or use "
        "one long-lived worker or a concurrent.futures pool)"
    ),
    "bounded_cache": (
        "a bounded cache filling up to its declared size: not a leak; lower its bound if "
        "that much memory is too much"
    ),
    "unknown": (
        "find what keeps them alive (gc.get_referrers, leakscope.why_alive) and drop the "
        "reference when done"
    ),
}
"""Every fix hint's text; ``{type}`` is the culprit's type name."""

NoteId = Literal["refcount_objects", "refcount_blocks", "native", "finalizer", "untracked_items"]
"""The name of one explanatory note in :data:`NOTES`."""

NOTES: Mapping[NoteId, str] = {
    "refcount_objects": (
        "nothing the collector can see refers to these {type} objects: this looks like "
        "a reference-count leak in C code (a missing Py_DECREF), or a C extension holding them"
    ),
    "refcount_blocks": (
        "no object type the collector tracks and no container grows: untracked objects "
        "(str, bytes, numbers) are kept alive by something the collector cannot see, which "
        "looks like a reference-count leak in C code (a missing Py_DECREF), or a C "
        "extension's own memory"
    ),
    "native": (
        "resident memory grows steadily while no Python object, container or allocated block "
        "does: memory allocated outside Python's allocator (a C library, malloc without free)"
    ),
    "finalizer": (
        "finalizer: {type} defines __del__; if __del__ stores self (or its cycle) somewhere, "
        "the object is resurrected and lives on"
    ),
    "untracked_items": "its items are not objects the collector tracks",
}
"""Every explanatory note's text; ``{type}`` is the type (or types) it is about."""

# Type names whose presence among a culprit's types points at one hint.
_EXCEPTION_TYPES = frozenset({"traceback", "frame"})
_CALLBACK_TYPES = frozenset({"function", "cell", "method"})
_LOGGER_TYPE = "logging.Logger"
_BUFFER_TYPES = frozenset({"bytearray", "_io.StringIO", "_io.BytesIO"})


@dataclass(frozen=True, slots=True)
class Facts:
    """What is known about one culprit, as the hint table reads it.

    ``culprit`` is its kind; ``names`` the type names that leak (the culprit's and
    those that come with it); ``container`` the key of the container that holds it
    (the first one, when several do) and ``container_type`` that container's type
    name.  The flags come from the analysis: nothing refers to the objects
    (``no_referrers``), a type defines ``__del__`` (``finalizer``), an exception
    type leaks (``exception``); its retention paths go through a function's
    ``__defaults__`` (``via_defaults``), a ``functools.lru_cache`` wrapper on a
    method or a function (``lru_cache`` is ``"method"`` or ``"function"``), or end
    in a dict (``in_dict``); ``held`` says some holder was found at all, and
    ``bounded`` that a cache with a declared bound holds them; ``held_items`` are
    the types of the holding container's items (bound methods, functions...).
    """

    culprit: CulpritKind
    names: frozenset[str] = frozenset()
    container: ContainerKey | None = None
    container_type: str = ""
    no_referrers: bool = False
    finalizer: bool = False
    exception: bool = False
    via_defaults: bool = False
    lru_cache: Literal["", "method", "function"] = ""
    in_dict: bool = False
    held: bool = False
    bounded: bool = False
    held_items: frozenset[str] = frozenset()
    main: str = ""
    log_handler: bool = False


_BY_CULPRIT: Mapping[str, HintId] = {
    "cycles": "cycles",
    "gc.garbage": "gc_garbage",
    "untracked": "untracked",
    "memory": "native",
    "thread": "thread",
}


def _container_hint(facts: Facts) -> HintId | None:
    """The hint a holding container's own kind decides, if any."""
    if facts.container_type in _BUFFER_TYPES:
        return "buffer"
    key = facts.container
    if key is None:
        return None
    if key.kind == "atexit":
        return "atexit"
    if key.kind == "loggers":
        return "loggers"
    if key.kind == "defaults":
        return "mutable_default"
    return None


def choose(facts: Facts) -> HintId:
    """The hint for a culprit with these facts: the first rule that applies.

    >>> choose(Facts("objects", frozenset({"app.Job", "traceback"}), held=True))
    'exceptions'
    >>> choose(Facts("objects", frozenset({"app.Job"})))
    'unknown'
    """
    fixed = _BY_CULPRIT.get(facts.culprit)
    if fixed is not None:
        return fixed
    if facts.bounded:
        return "bounded_cache"
    if facts.no_referrers:
        return "refcount"
    if facts.finalizer:
        return "finalizer"
    by_container = _container_hint(facts)
    if by_container is not None:
        return by_container
    if facts.culprit == "container":
        return "unbounded_cache" if "dict" in facts.container_type else "growing_container"
    return _object_hint(facts)


def _object_hint(facts: Facts) -> HintId:
    names = facts.names
    if facts.via_defaults:
        return "mutable_default"
    if facts.lru_cache:
        return "lru_method" if facts.lru_cache == "method" else "lru_unbounded"
    if facts.exception or names & _EXCEPTION_TYPES:
        return "exceptions"
    if _LOGGER_TYPE in names:
        return "loggers"
    if facts.log_handler:
        return "log_handlers"
    if facts.main == "type":
        return "classes_per_call"
    if (names | facts.held_items) & _CALLBACK_TYPES:
        return "callbacks"
    key = facts.container
    if key is not None and key.kind == "class":
        return "class_registry"
    if "dict" in facts.container_type or facts.in_dict:
        return "unbounded_cache"
    if facts.held or key is not None:
        return "growing_container"
    return "unknown"


def hint_text(hint: HintId, type_name: str = "") -> str:
    """The text of ``hint``, naming ``type_name`` where the hint names the culprit's type."""
    return HINTS[hint].replace("{type}", type_name)


def note_text(note: NoteId, type_name: str = "") -> str:
    """The text of ``note``, naming ``type_name`` where the note names a type."""
    return NOTES[note].replace("{type}", type_name)
