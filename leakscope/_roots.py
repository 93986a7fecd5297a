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
from dataclasses import dataclass
from itertools import compress
from typing import Any, Literal

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
    "ATEXIT",
    "ATEXIT_KEY",
    "CONTAINER_BASES",
    "LOGGERS",
    "LOGGERS_KEY",
    "ContainerKey",
    "ContainerKind",
    "format_container",
    "resolve_container",
    "root_containers",
]

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


class _Scan:
    """One scan's state: the lengths and type names found, and the type classifications."""

    __slots__ = ("class_skip", "kinds", "lengths", "module_skip", "names")

    def __init__(self) -> None:
        self.lengths: dict[str, int] = {}
        self.names: dict[str, str] = {}
        self.kinds: dict[type, int] = dict(_KNOWN_KINDS)
        self.module_skip = {tp for tp, kind in _KNOWN_KINDS.items() if kind == _SKIP}
        self.class_skip = {tp for tp, kind in _KNOWN_KINDS.items() if kind != _CONTAINER}

    def module(self, modname: str, namespace: dict[str, Any]) -> None:
        """The containers of one module: its globals, its classes' attributes, its defaults."""
        prefix = modname + ":"
        kinds = self.kinds
        for name, value in _wanted(namespace, kinds, self.module_skip, _ALL_KINDS):
            kind = kinds[type(value)]
            if kind == _CONTAINER:
                if not _dunder(name):
                    _record(prefix + name, value, self.lengths, self.names)
            elif kind == _CLASS:
                if TYPE_MODULE.__get__(value) == modname:
                    self.klass(f"{prefix}{name}.", value)
            else:
                self.defaults(f"{prefix}{name}{_DEFAULTS}", value)

    def klass(self, prefix: str, cls: type) -> None:
        members = _wanted(TYPE_DICT.__get__(cls), self.kinds, self.class_skip, _CONTAINERS_ONLY)
        for attr, member in members:
            if not _dunder(attr):
                _record(prefix + attr, member, self.lengths, self.names)

    def defaults(self, prefix: str, func: object) -> None:
        defaults = FUNC_DEFAULTS.__get__(func)
        if defaults:
            for i, default in enumerate(defaults):
                if self.kinds.get(type(default)) != _SKIP:
                    _record(f"{prefix}{i}]", default, self.lengths, self.names)


def root_containers() -> tuple[dict[str, int], dict[str, str]]:
    """Lengths of the containers held by module globals, class attributes and defaults.

    Keys are the text of a :class:`ContainerKey`: ``module:name``, ``module:Class.attr``
    and ``module:func.__defaults__[i]``; the second dict gives each container's type
    name.  This is where caches and registries live, and it sees dicts and lists of
    strings or numbers that the collector does not track.

    >>> lengths, names = root_containers()
    >>> names["sys:path"], lengths["sys:path"] == len(sys.path)
    ('list', True)
    """
    scan = _Scan()
    for modname, module in list(sys.modules.items()):
        if len(scan.lengths) >= _MAX_CONTAINERS:
            break
        if not isinstance(modname, str) or is_own_name(modname):
            continue
        if not issubclass(type(module), types.ModuleType):
            continue
        try:
            namespace = MODULE_DICT.__get__(module)
        except Exception:
            continue
        if isinstance(namespace, dict):
            scan.module(modname, namespace)
    return scan.lengths, scan.names


# -- container keys -----------------------------------------------------------------------

ContainerKind = Literal["module", "class", "defaults", "atexit", "loggers"]
"""Where a container lives: a module global, a class attribute, a function's
``__defaults__[i]``, the atexit registry or logging's ``loggerDict``."""

_ATEXIT_TEXT = "atexit:<registered callbacks>"
_LOGGERS_TEXT = "logging:Logger.manager.loggerDict"
_DEFAULTS = ".__defaults__["


@dataclass(frozen=True, slots=True)
class ContainerKey:
    """The name of a container that caches and registries live in, as structured fields.

    ``kind`` says where it lives; ``module`` is the module that holds it, ``owner``
    the class or function inside that module (empty for a module global), ``attribute``
    the global's or class attribute's name, ``index`` the position in a function's
    ``__defaults__`` (``-1`` otherwise).  ``str(key)`` is the stable text used as a
    key in snapshots and JSON (``module:name``, ``module:Class.attr``,
    ``module:func.__defaults__[i]``), and :meth:`parse` reads it back.

    >>> key = ContainerKey.parse("app.models:Session.registry")
    >>> key.kind, key.module, key.owner, key.attribute
    ('class', 'app.models', 'Session', 'registry')
    >>> str(key)
    'app.models:Session.registry'
    >>> key.format("list", 2.0)
    'class app.models.Session: attribute registry (list, +2.0 entries/call)'
    """

    kind: ContainerKind
    module: str = ""
    owner: str = ""
    attribute: str = ""
    index: int = -1

    @classmethod
    def global_(cls, module: str, name: str) -> ContainerKey:
        """The key of the module global ``module.name``."""
        return cls("module", module, "", name)

    @classmethod
    def class_attribute(cls, module: str, owner: str, attribute: str) -> ContainerKey:
        """The key of the class attribute ``module.owner.attribute``."""
        return cls("class", module, owner, attribute)

    @classmethod
    def default(cls, module: str, function: str, index: int) -> ContainerKey:
        """The key of ``module.function.__defaults__[index]``."""
        return cls("defaults", module, function, "", index)

    @classmethod
    def parse(cls, text: str) -> ContainerKey:
        """The key whose :func:`str` is ``text``; ``ValueError`` when it is not one.

        >>> ContainerKey.parse("app.jobs:collect.__defaults__[0]")
        ContainerKey(kind='defaults', module='app.jobs', owner='collect', attribute='', index=0)
        """
        if text == _ATEXIT_TEXT:
            return ATEXIT
        if text == _LOGGERS_TEXT:
            return LOGGERS
        module, sep, rest = text.partition(":")
        if not sep or not module or not rest:
            raise ValueError(f"not a container key: {text!r:.80}")
        if rest.endswith("]") and _DEFAULTS in rest:
            func, _, index = rest.partition(_DEFAULTS)
            digits = index[:-1]
            if not func or not digits.isdigit():
                raise ValueError(f"not a container key: {text!r:.80}")
            return cls.default(module, func, int(digits))
        owner, dot, attribute = rest.partition(".")
        if dot:
            if not owner or not attribute:
                raise ValueError(f"not a container key: {text!r:.80}")
            return cls.class_attribute(module, owner, attribute)
        return cls.global_(module, rest)

    def __str__(self) -> str:
        if self.kind == "atexit":
            return _ATEXIT_TEXT
        if self.kind == "loggers":
            return _LOGGERS_TEXT
        if self.kind == "defaults":
            return f"{self.module}:{self.owner}{_DEFAULTS}{self.index}]"
        if self.kind == "class":
            return f"{self.module}:{self.owner}.{self.attribute}"
        return f"{self.module}:{self.attribute}"

    def format(self, container_type: str = "", rate: float | None = None, per: str = "call") -> str:
        """A person's name for the container, with its type and growth rate when given.

        ``per`` is what the rate is per (``call``, or ``interval`` for a program run).

        >>> ContainerKey.global_("app.cache", "_CACHE").format("dict", 3.0)
        'module app.cache: _CACHE (dict, +3.0 entries/call)'
        """
        extra = container_type
        if rate is not None:
            unit = "bytes" if container_type == "bytearray" else "entries"
            extra = (
                f"{container_type}, +{format_rate(rate)} {unit}/{per}"
                if container_type
                else f"+{format_rate(rate)}/{per}"
            )
        suffix = f" ({extra})" if extra else ""
        if self.kind == "atexit":
            return f"the atexit registry: registered callbacks{suffix}"
        if self.kind == "loggers":
            return f"logging.Logger.manager.loggerDict (every logger ever created){suffix}"
        if self.kind == "defaults":
            return f"function {self.module}.{self.owner}: __defaults__[{self.index}]{suffix}"
        if self.kind == "class":
            return f"class {self.module}.{self.owner}: attribute {self.attribute}{suffix}"
        if self.module == "sys" and self.attribute == "modules":
            return f"sys.modules{suffix}"
        return f"module {self.module}: {self.attribute}{suffix}"

    def holder(self) -> object | None:
        """The module, class or function whose namespace holds the container, or ``None``.

        Read without calling user code; ``None`` for the registries (atexit, loggers)
        and when the module or its member is gone.
        """
        if self.kind in ("atexit", "loggers"):
            return None
        module = sys.modules.get(self.module)
        if module is None or not issubclass(type(module), types.ModuleType):
            return None
        if self.kind == "module":
            return module
        try:
            member = MODULE_DICT.__get__(module).get(self.owner)
        except Exception:
            return None
        wanted = type if self.kind == "class" else types.FunctionType
        ok = issubclass(type(member), type) if wanted is type else type(member) is wanted
        return member if ok else None

    def resolve(self) -> object | None:
        """The container itself, read without calling user code (``None`` when gone).

        >>> ContainerKey.global_("sys", "modules").resolve() is sys.modules
        True
        """
        if self.kind == "atexit":
            return None
        if self.kind == "loggers":
            logging = sys.modules.get("logging")
            manager = getattr(getattr(logging, "Logger", None), "manager", None)
            return getattr(manager, "loggerDict", None)
        holder = self.holder()
        if holder is None:
            return None
        try:
            if self.kind == "module":
                found: object = MODULE_DICT.__get__(holder).get(self.attribute)
            elif self.kind == "class":
                found = TYPE_DICT.__get__(holder).get(self.attribute)
            else:
                defaults = FUNC_DEFAULTS.__get__(holder) or ()
                found = defaults[self.index] if 0 <= self.index < len(defaults) else None
        except Exception:
            return None
        return found


ATEXIT = ContainerKey("atexit", "atexit")
"""The atexit registry's callbacks (their count is read, not the callbacks)."""
LOGGERS = ContainerKey("loggers", "logging", "Logger", "manager.loggerDict")
"""``logging.Logger.manager.loggerDict``: every logger ever created."""

# Their text forms, the keys of census dictionaries.
ATEXIT_KEY = str(ATEXIT)
LOGGERS_KEY = str(LOGGERS)


def format_container(key: str, kind: str = "", rate: float | None = None) -> str:
    """A person's name for a snapshot container key (:meth:`ContainerKey.format` of its text).

    >>> format_container("app.cache:_CACHE", "dict", 3.0)
    'module app.cache: _CACHE (dict, +3.0 entries/call)'
    >>> format_container("app.models:Session.registry", "list")
    'class app.models.Session: attribute registry (list)'
    """
    try:
        parsed = ContainerKey.parse(key)
    except ValueError:
        return key
    return parsed.format(kind, rate)


def resolve_container(key: str) -> object | None:
    """The container behind a snapshot key's text (:meth:`ContainerKey.resolve`)."""
    try:
        return ContainerKey.parse(key).resolve()
    except ValueError:
        return None
