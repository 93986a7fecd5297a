"""The time budget: how much of wall time a web adapter may spend measuring.

Credit accrues at ``fraction`` seconds per second of wall time (capped, so a burst
after a quiet spell gets a bounded share), measuring spends it, and no measurement
starts while it is not positive.  The clock is injectable, so tests drive time::

    budget = Budget(0.01, clock=fake_clock)
    if budget.open():              # may a measurement start now?
        ...; budget.spend(0.003)   # it took 3 ms
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["INITIAL_CREDIT", "MAX_CREDIT", "Budget", "positive"]

INITIAL_CREDIT = 0.05
"""Seconds of measuring allowed before the budget has accrued any: the container scan and
the first samples of a new worker, so that a verdict comes within its first requests."""
MAX_CREDIT = 0.25
"""Seconds: the most measuring a burst after a quiet spell can get."""


def positive(name: str, value: object) -> float:
    """``value`` as a float when it is a finite positive number, else a ValueError naming it.

    >>> positive("budget", 0.5)
    0.5
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number, not {value!r:.40}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, not {value!r:.40}")
    return float(value)


class Budget:
    """A share of wall time for measuring, as credit that accrues and is spent (thread-safe).

    ``fraction`` 1 means no limit.  ``clock`` returns seconds (default ``time.monotonic``).

    >>> now = [0.0]
    >>> b = Budget(0.5, clock=lambda: now[0])
    >>> b.open(), b.spend(1.0), b.open()
    (True, None, False)
    >>> now[0] = 3.0
    >>> b.open()
    True
    """

    def __init__(self, fraction: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.fraction = positive("budget", fraction)
        if self.fraction > 1:
            raise ValueError(f"budget must be in (0, 1], not {fraction!r:.40}")
        self.clock = clock
        self._lock = threading.Lock()
        self.reset()

    @property
    def unlimited(self) -> bool:
        """Whether every measurement is allowed (``fraction`` 1)."""
        return self.fraction >= 1

    def reset(self) -> None:
        """Start afresh (a new process after fork): initial credit, no spending."""
        self._lock = threading.Lock()
        self.started = self.clock()
        self.measured = 0.0  # seconds spent measuring
        self.largest = 0.0  # the longest single measurement: the most the budget can overshoot
        self.skipped = 0  # measurements refused for lack of credit
        self._credit = INITIAL_CREDIT
        self._credit_at = self.started
        self._paused_until = 0.0  # clock() before which no measurement may start

    def _accrue(self, now: float) -> None:
        self._credit = min(MAX_CREDIT, self._credit + (now - self._credit_at) * self.fraction)
        self._credit_at = now

    def _pause(self, now: float) -> None:
        """No measurement until the credit, accruing since ``now``, is positive again."""
        if now >= self._paused_until:
            self.skipped += 1
        self._paused_until = now - self._credit / self.fraction

    def paused(self, now: float) -> bool:
        """Lock-free first look: True while the budget surely refuses (the request path)."""
        return now < self._paused_until

    def open(self, now: float | None = None) -> bool:
        """Whether a measurement may start now; counts a refusal."""
        now = self.clock() if now is None else now
        with self._lock:
            self._accrue(now)
            if self._credit <= 0 and not self.unlimited:
                self._pause(now)
                return False
            return True

    def affords(self, cost: float, now: float | None = None) -> bool:
        """Whether the credit covers ``cost`` seconds (a heap census); counts a refusal."""
        now = self.clock() if now is None else now
        with self._lock:
            self._accrue(now)
            if self._credit < cost and not self.unlimited:
                self.skipped += 1
                return False
            return True

    def spend(self, seconds: float) -> None:
        """Charge ``seconds`` of measuring."""
        with self._lock:
            self.measured += seconds
            self.largest = max(self.largest, seconds)
            self._credit -= seconds
            if self._credit <= 0 and not self.unlimited:
                self._pause(self._credit_at)

    def overhead(self) -> dict[str, Any]:
        """The figures of ``status()["overhead"]`` that the budget keeps."""
        return {
            "budget": self.fraction,
            "measured_seconds": self.measured,
            "largest_seconds": self.largest,
            "wall_seconds": self.clock() - self.started,
            "skipped_budget": self.skipped,
        }
