"""Fork handling: objects that must start afresh in a child process (gunicorn workers).

::

    registry = Registry()               # holds its objects weakly, oldest first
    registry.add(monitor)               # monitor.after_fork() runs in every forked child
    registry.instances()

A process-wide :func:`os.register_at_fork` hook resets every registry's objects in the
child; an object whose ``pid`` is not the current process can also be reset on demand
(:func:`stale`), for servers that fork without that hook running first.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import weakref
from typing import Generic, Protocol, TypeVar

__all__ = ["ForkAware", "Registry", "stale"]


class ForkAware(Protocol):
    """What a registry holds: an object knowing its process and how to start afresh."""

    @property
    def pid(self) -> int: ...

    def after_fork(self) -> None: ...


T = TypeVar("T", bound=ForkAware)

_registries: weakref.WeakSet[Registry[ForkAware]] = weakref.WeakSet()


class Registry(Generic[T]):
    """Live objects of this process, oldest first, reset in a forked child.

    >>> class Thing:
    ...     pid = os.getpid()
    ...     def after_fork(self): pass
    >>> r: Registry[Thing] = Registry()
    >>> t = Thing(); r.add(t); r.instances() == [t]
    True
    """

    def __init__(self) -> None:
        self._objects: weakref.WeakValueDictionary[int, T] = weakref.WeakValueDictionary()
        self._created = itertools.count()
        _registries.add(self)  # type: ignore[arg-type]

    def add(self, obj: T) -> None:
        """Hold ``obj`` (weakly) from now on."""
        self._objects[next(self._created)] = obj

    def instances(self) -> list[T]:
        """The live objects, oldest first."""
        return list(self._objects.values())

    def reset_stale(self) -> None:
        """Reset every object created in another process (never raises)."""
        for obj in self.instances():
            if stale(obj):
                with contextlib.suppress(Exception):  # never break a fork
                    obj.after_fork()


def stale(obj: ForkAware) -> bool:
    """Whether ``obj`` belongs to another process (it was created before a fork)."""
    return obj.pid != os.getpid()


def _after_fork_in_child() -> None:
    for registry in list(_registries):
        registry.reset_stale()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
