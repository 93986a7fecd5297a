"""Container keys as the web adapters use them: the one place that reads their text.

Keys come from :func:`leakscope._roots.root_containers` (``module:name``,
``module:Class.attr``).  Until ``leakscope._roots.ContainerKey`` lands, this module is the
only one in ``leakscope.web`` that splits them, so switching is a change here alone::

    parse_key("app:_CACHE")              # ('app', '_CACHE', '')
    root_path("app:Registry.items")      # "sys.modules['app'].Registry.items"
"""

from __future__ import annotations

__all__ = ["fix_hint", "holder", "parse_key", "root_path"]


def parse_key(key: str) -> tuple[str, str, str]:
    """``(module, name, attribute)`` of a container key; attribute ``""`` for a module global.

    >>> parse_key("app.models:Session.registry")
    ('app.models', 'Session', 'registry')
    """
    module, _, rest = key.partition(":")
    name, _, attr = rest.partition(".")
    return module, name, attr


def root_path(key: str) -> str:
    """The path from a root to the container, as code would reach it.

    >>> root_path("app:_CACHE")
    "sys.modules['app']._CACHE"
    """
    module, name, attr = parse_key(key)
    path = f"sys.modules[{module!r}].{name}"
    return f"{path}.{attr}" if attr else path


def fix_hint(key: str, kind: str = "") -> str:
    """What to do about a container that grows with every request (``kind``: its type name).

    The texts are those :func:`leakscope.check` gives for a growing container.

    >>> fix_hint("app:_CACHE", "dict")[:21]
    'an unbounded cache: b'
    """
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


def holder(key: str, kind: str, per_request: float) -> dict[str, object]:
    """The holder row of a route: key, type, entries added per request, root path and hint.

    >>> holder("app:_CACHE", "dict", 1.0)["path"]
    "sys.modules['app']._CACHE[...]"
    """
    return {
        "container": key,
        "kind": kind,
        "per_request": per_request,
        "path": root_path(key) + "[...]",
        "hint": fix_hint(key, kind),
    }
