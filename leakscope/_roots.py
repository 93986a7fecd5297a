"""The containers held by module globals, class attributes and function defaults.

This is where caches and registries live: :func:`root_containers` reads their lengths,
which shows growth in dicts and lists of strings or numbers that the collector does not
track.  Used by snapshots, leak checks and the WSGI middleware.  Nothing here calls
user code: namespaces are read through the slot descriptors in :mod:`leakscope._heap`
and lengths through the base type's own ``__len__``.
"""

from __future__ import annotations

import collections
import sys
import types
from collections.abc import Mapping
from itertools import compress
from typing import Any

from leakscope._format import format_rate
from leakscope._heap import (
    FUNC_DEFAULTS,
    MODULE_DICT,
    TYPE_DICT,
    TYPE_MODULE,
    is_own_name,
    type_name,
)

__all__ = [
    "ATEXIT_KEY",
    "CONTAINER_BASES",
    "LOGGERS_KEY",
    "format_container",
    "resolve_container",
    "root_containers",
]

# Keys of the registries that module/class containers miss (see leakscope.engine.signals).
ATEXIT_KEY = "atexit:<registered callbacks>"
LOGGERS_KEY = "logging:Logger.manager.loggerDict"

# Containers whose length is recorded when a module, class or function default holds them.
CONTAINER_BASES: tuple[type, ...] = (
    dict,
    list,
    set,
    frozenset,
    collections.deque,
    bytearray,
)
_MAX_CONTAINERS = 100_000


# Classification of a namespace value's type: what the container scan does with it.
_SKIP, _CONTAINER, _CLASS, _FUNCTION = 0, 1, 2, 3
# Exact types seen in nearly every namespace, classified without an issubclass() walk.
_KNOWN_KINDS: dict[type, int] = {
    **dict.fromkeys(CONTAINER_BASES, _CONTAINER),
    type: _CLASS,
    types.FunctionType: _FUNCTION,
    **dict.fromkeys(
        (
            str,
            bytes,
            int,
            float,
            bool,
            complex,
            tuple,
            type(None),
            types.ModuleType,
            types.BuiltinFunctionType,
            types.MethodDescriptorType,
            types.WrapperDescriptorType,
            types.GetSetDescriptorType,
            types.MemberDescriptorType,
            types.MethodType,
            property,
            staticmethod,
            classmethod,
        ),
        _SKIP,
    ),
}


def _kind(tp: type) -> int:
    if issubclass(tp, CONTAINER_BASES):
        return _CONTAINER
    return _CLASS if issubclass(tp, type) else _SKIP


def _container(value: object) -> tuple[str, int] | None:
    """(type name, length) when ``value`` is a container we measure; never calls user code."""
    tp = type(value)
    for base in CONTAINER_BASES:
        if issubclass(tp, base):
            return type_name(tp), base.__len__(value)  # type: ignore[attr-defined]
    return None


def _wanted(
    namespace: Mapping[str, Any], kinds: dict[type, int], skip: set[type], want: set[int]
) -> list[Any]:
    """The ``(name, value)`` items of ``namespace`` whose type's kind is in ``want``.

    ``kinds`` and ``skip`` (the types known to be unwanted) live for one scan, so that
    no type is kept alive afterwards.  Types are classified once each and items are
    filtered at C speed, which matters because a process holds tens of thousands of
    namespace values of which only a few are wanted.
    """
    pending = set(map(type, namespace.values()))
    pending.difference_update(skip)
    if not pending:
        return []
    keep = set()
    for tp in pending:
        kind = kinds.get(tp)
        if kind is None:
            kind = kinds[tp] = _kind(tp)
        if kind in want:
            keep.add(tp)
        else:
            skip.add(tp)
    if not keep:
        return []
    return list(compress(namespace.items(), map(keep.__contains__, map(type, namespace.values()))))


def _dunder(name: object) -> bool:
    return not isinstance(name, str) or (name.startswith("__") and name.endswith("__"))


def _record(key: str, value: object, lengths: dict[str, int], names: dict[str, str]) -> None:
    found = _container(value)
    if found is not None:
        names[key], lengths[key] = found


_ALL_KINDS = {_CONTAINER, _CLASS, _FUNCTION}
_CONTAINERS_ONLY = {_CONTAINER}


def root_containers() -> tuple[dict[str, int], dict[str, str]]:
    """Lengths of the containers held by module globals, class attributes and defaults.

    Keys read ``module:name``, ``module:Class.attr`` and ``module:func.__defaults__[i]``.
    This is where caches and registries live, and it sees dicts and lists of
    strings or numbers that the collector does not track.
    """
    lengths: dict[str, int] = {}
    names: dict[str, str] = {}
    kinds: dict[type, int] = dict(_KNOWN_KINDS)
    module_skip = {tp for tp, kind in _KNOWN_KINDS.items() if kind == _SKIP}
    class_skip = {tp for tp, kind in _KNOWN_KINDS.items() if kind != _CONTAINER}
    for modname, module in list(sys.modules.items()):
        if len(lengths) >= _MAX_CONTAINERS:
            break
        if not isinstance(modname, str) or is_own_name(modname):
            continue
        if not issubclass(type(module), types.ModuleType):
            continue
        try:
            namespace = MODULE_DICT.__get__(module)
        except Exception:
            continue
        if not isinstance(namespace, dict):
            continue
        prefix = modname + ":"
        for name, value in _wanted(namespace, kinds, module_skip, _ALL_KINDS):
            kind = kinds[type(value)]
            if kind == _CONTAINER:
                if not _dunder(name):
                    _record(prefix + name, value, lengths, names)
            elif kind == _CLASS:
                if TYPE_MODULE.__get__(value) == modname:
                    class_prefix = f"{prefix}{name}."
                    members = _wanted(TYPE_DICT.__get__(value), kinds, class_skip, _CONTAINERS_ONLY)
                    for attr, member in members:
                        if not _dunder(attr):
                            _record(class_prefix + attr, member, lengths, names)
            else:
                defaults = FUNC_DEFAULTS.__get__(value)
                if defaults:
                    for i, default in enumerate(defaults):
                        if kinds.get(type(default)) != _SKIP:
                            _record(f"{prefix}{name}.__defaults__[{i}]", default, lengths, names)
    return lengths, names


# -- container names ----------------------------------------------------------------------


def format_container(key: str, kind: str = "", rate: float | None = None) -> str:
    """A person's name for a snapshot container key.

    >>> format_container("app.cache:_CACHE", "dict", 3.0)
    'module app.cache: _CACHE (dict, +3.0 entries/call)'
    >>> format_container("app.models:Session.registry", "list")
    'class app.models.Session: attribute registry (list)'
    """
    extra = kind
    if rate is not None:
        unit = "bytes" if kind == "bytearray" else "entries"
        extra = (
            f"{kind}, +{format_rate(rate)} {unit}/call" if kind else f"+{format_rate(rate)}/call"
        )
    suffix = f" ({extra})" if extra else ""
    if key == ATEXIT_KEY:
        return f"the atexit registry: registered callbacks{suffix}"
    if key == LOGGERS_KEY:
        return f"logging.Logger.manager.loggerDict (every logger ever created){suffix}"
    module, _, rest = key.partition(":")
    if module == "sys" and rest == "modules":
        return f"sys.modules{suffix}"
    if ".__defaults__[" in rest:
        func, _, index = rest.partition(".__defaults__")
        return f"function {module}.{func}: __defaults__{index}{suffix}"
    if "." in rest:
        cls, _, attr = rest.rpartition(".")
        return f"class {module}.{cls}: attribute {attr}{suffix}"
    return f"module {module}: {rest}{suffix}"


def resolve_container(key: str) -> object | None:
    """The container object behind a snapshot key, read without calling user code."""
    if key in (ATEXIT_KEY,):
        return None
    if key == LOGGERS_KEY:
        logging = sys.modules.get("logging")
        manager = getattr(getattr(logging, "Logger", None), "manager", None)
        return getattr(manager, "loggerDict", None)
    module_name, _, rest = key.partition(":")
    module = sys.modules.get(module_name)
    if module is None or not issubclass(type(module), types.ModuleType):
        return None
    try:
        namespace = MODULE_DICT.__get__(module)
        if ".__defaults__[" in rest:
            func_name, _, index = rest.partition(".__defaults__[")
            func = namespace.get(func_name)
            if type(func) is not types.FunctionType:
                return None
            defaults = FUNC_DEFAULTS.__get__(func) or ()
            i = int(index.rstrip("]"))
            return defaults[i] if 0 <= i < len(defaults) else None
        if "." in rest:
            cls_name, _, attr = rest.partition(".")
            cls = namespace.get(cls_name)
            if not issubclass(type(cls), type):
                return None
            value: object = TYPE_DICT.__get__(cls).get(attr)
            return value
        found: object = namespace.get(rest)
        return found
    except Exception:
        return None
