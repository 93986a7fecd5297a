"""Container keys as the web adapters use them: the one place that reads their text.

Keys come from :func:`leakscope._roots.root_containers` (``module:name``,
``module:Class.attr``).  Until ``leakscope._roots.ContainerKey`` lands, this module is the
only one in ``leakscope.web`` that splits them, so switching is a change here alone::

    parse_key("app:_CACHE")              # ('app', '_CACHE', '')
    root_path("app:Registry.items")      # "sys.modules['app'].Registry.items"
"""

from __future__ import annotations

__all__ = ["fix_hint", "parse_key", "root_path"]


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


def fix_hint(key: str) -> str:
    """What to do about a container that grows by one entry per request.

    >>> fix_hint("app:_CACHE")
    'bound app:_CACHE (an LRU such as functools.lru_cache(maxsize=...)) or delete entries when done'
    """
    module, name, attr = parse_key(key)
    where = f"{module}:{name}.{attr}" if attr else f"{module}:{name}"
    return (
        f"bound {where} (an LRU such as functools.lru_cache(maxsize=...)) "
        "or delete entries when done"
    )
