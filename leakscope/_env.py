"""Settings read from the environment (the names are shared by every adapter).

A bad value is logged and ignored, never raised: a setting must never break the host.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("leakscope")

DEFAULT_SAMPLE = 0.01
"""The share of calls that ``@watch`` measures."""

DEFAULT_REQUEST_SAMPLE = 1.0
"""The share of requests the WSGI middleware may measure: all, as far as the budget allows."""

DEFAULT_BUDGET = 0.01
"""The largest fraction of wall time the WSGI middleware spends measuring."""


def sample_rate(default: float = DEFAULT_SAMPLE) -> float:
    """``LEAKSCOPE_SAMPLE`` when it is a number in (0, 1], else ``default``."""
    return _fraction("LEAKSCOPE_SAMPLE", default)


def budget(default: float = DEFAULT_BUDGET) -> float:
    """``LEAKSCOPE_BUDGET`` when it is a number in (0, 1], else ``default``."""
    return _fraction("LEAKSCOPE_BUDGET", default)


def _fraction(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if raw.strip():
        try:
            value = float(raw)
        except ValueError:
            logger.warning("ignoring %s=%r: not a number", name, raw[:40])
        else:
            if 0 < value <= 1:
                return value
            logger.warning("ignoring %s=%r: must be in (0, 1]", name, raw[:40])
    return default
