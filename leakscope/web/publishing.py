"""Publishing: a worker's state written to the shared directory every few seconds.

::

    publisher = Publisher("/tmp/leakscope", every=2.0)
    if publisher.due():                 # claims the slot: one publisher per interval
        publisher.publish(state)        # atomic write of worker-<pid>.json; never raises
    publisher.workers(own_state)        # every worker's state, this one's fresh

Without a directory nothing is ever due and :meth:`Publisher.workers` is ``[own]``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from leakscope.web.workers import publish, read_workers

__all__ = ["HURRY", "PUBLISH_EVERY", "Publisher"]

logger = logging.getLogger("leakscope")

PUBLISH_EVERY = 2.0
HURRY = 0.25  # seconds: how soon a worker publishes while a route's verdict is forming


class Publisher:
    """Writes this worker's state to ``directory`` (None: nowhere) at most every ``every`` s.

    >>> Publisher(None).due()
    False
    """

    __slots__ = ("clock", "directory", "every", "next_at")

    def __init__(
        self,
        directory: str | os.PathLike[str] | None,
        *,
        every: float = PUBLISH_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory: str | None = None if directory is None else os.fspath(directory)
        self.every = every
        self.clock = clock
        self.next_at = clock()

    def reset(self) -> None:
        """A new process: the first publishing is due at once."""
        self.next_at = self.clock()

    def due(self, now: float | None = None) -> bool:
        """Whether publishing is due now; if so, the next one is scheduled (claimed)."""
        if self.directory is None:
            return False
        now = self.clock() if now is None else now
        if now < self.next_at:
            return False
        self.next_at = now + self.every
        return True

    def hurry(self, now: float | None = None, within: float = HURRY) -> None:
        """Publish within ``within`` seconds (a verdict may have changed), not a full period."""
        now = self.clock() if now is None else now
        self.next_at = min(self.next_at, now + within)

    def publish(self, state: dict[str, Any]) -> None:
        """Write ``state`` now (no-op without a directory); failures are logged, not raised."""
        if self.directory is None:
            return
        try:
            publish(self.directory, state)
        except Exception:
            logger.exception("leakscope: could not publish the worker state to %s", self.directory)

    def workers(self, own: dict[str, Any]) -> list[dict[str, Any]]:
        """Every worker's state by pid: the published ones, with ``own`` in place of this one's."""
        if self.directory is None:
            return [own]
        try:
            others = [w for w in read_workers(self.directory) if w.get("pid") != own["pid"]]
        except Exception:
            logger.exception("leakscope: could not read the workers' states")
            others = []
        return sorted([own, *others], key=lambda w: int(w.get("pid", 0)))
