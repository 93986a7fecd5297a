"""The one place that changes interpreter-wide state, and restores it exactly.

Every part of leakscope that touches the collector's flags, thresholds,
callbacks or ``gc.garbage``, starts ``tracemalloc`` or changes warnings filters
does it inside :func:`preserved`, which puts everything back as it was on exit,
even when the body raises.  Freezing the heap for a measurement goes through
:func:`frozen`, which unfreezes on exit and never touches objects the host froze.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["InterpreterState", "frozen", "host_froze_objects", "preserved"]

# Python 3.12 starts with a few hundred constant tuples in the permanent generation
# (gc.get_freeze_count() > 0 before any user code): the interpreter's, not the host's.
# Read when leakscope is imported; thousands mean a host that froze its objects first.
_STARTUP_FROZEN = gc.get_freeze_count() if sys.version_info[:2] == (3, 12) else 0
if _STARTUP_FROZEN > 2000:
    _STARTUP_FROZEN = 0


@dataclass
class InterpreterState:
    """What :func:`preserved` saved; also tells the body how things were on entry."""

    gc_enabled: bool
    gc_debug: int
    gc_threshold: tuple[int, ...]
    gc_callbacks: list[Any]
    gc_garbage: list[Any]
    tracing: bool
    warnings_filters: list[Any]

    def start_tracing(self, nframe: int = 1) -> None:
        """Start ``tracemalloc`` if it is off; :func:`preserved` stops it again on exit."""
        if not tracemalloc.is_tracing():
            tracemalloc.start(nframe)


def _capture() -> InterpreterState:
    return InterpreterState(
        gc_enabled=gc.isenabled(),
        gc_debug=gc.get_debug(),
        gc_threshold=gc.get_threshold(),
        gc_callbacks=list(gc.callbacks),
        gc_garbage=list(gc.garbage),
        tracing=tracemalloc.is_tracing(),
        warnings_filters=list(warnings.filters),
    )


def _restore(state: InterpreterState) -> None:
    gc.set_debug(state.gc_debug)
    gc.set_threshold(*state.gc_threshold)
    gc.callbacks[:] = state.gc_callbacks
    # Keep the same list object (user code may hold it), with its original items.
    gc.garbage[:] = state.gc_garbage
    if state.gc_enabled:
        gc.enable()
    else:
        gc.disable()
    if tracemalloc.is_tracing() and not state.tracing:
        tracemalloc.stop()
    filters: list[Any] = warnings.filters  # type: ignore[assignment]
    filters[:] = state.warnings_filters
    mutated = getattr(warnings, "_filters_mutated", None)
    if mutated is not None:  # invalidates the per-module "already warned" caches
        mutated()


@contextmanager
def preserved() -> Iterator[InterpreterState]:
    """Save the collector, ``tracemalloc`` and warnings state; restore it exactly on exit.

    >>> with preserved() as state:
    ...     gc.disable()
    ...     state.start_tracing()
    >>> gc.isenabled(), tracemalloc.is_tracing()
    (True, False)

    The saved copy of ``gc.garbage`` is released when the block exits, so no user
    object is kept alive by leakscope afterwards.
    """
    state = _capture()
    try:
        yield state
    finally:
        try:
            _restore(state)
        finally:
            state.gc_callbacks.clear()
            state.gc_garbage.clear()
            state.warnings_filters.clear()


@contextmanager
def frozen() -> Iterator[bool]:
    """Freeze every object alive now (:func:`gc.freeze`) for the block; unfreeze on exit.

    Inside, a collection and :func:`gc.get_objects` look only at the objects made
    since, which is cheap in a big process; nothing frozen is collected until the
    block exits.  Yields False and freezes nothing when the host froze objects itself
    (a pre-fork server): unfreezing on exit would undo that.
    """
    if host_froze_objects():
        yield False
        return
    gc.freeze()
    try:
        yield True
    finally:
        gc.unfreeze()


def host_froze_objects() -> bool:
    """Whether objects were frozen by someone else than the interpreter's start-up."""
    return gc.get_freeze_count() not in (0, _STARTUP_FROZEN)
