"""Settings read from the environment (the names are shared by every adapter)."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("leakscope")

DEFAULT_SAMPLE = 0.01
"""The share of calls or requests that ``@watch`` and the WSGI middleware measure."""


def sample_rate() -> float:
    """``LEAKSCOPE_SAMPLE`` when it is a number in (0, 1], else :data:`DEFAULT_SAMPLE`.

    A bad value is logged and ignored: a setting must never break the host.
    """
    raw = os.environ.get("LEAKSCOPE_SAMPLE", "")
    if raw.strip():
        try:
            value = float(raw)
        except ValueError:
            logger.warning("ignoring LEAKSCOPE_SAMPLE=%r: not a number", raw[:40])
        else:
            if 0 < value <= 1:
                return value
            logger.warning("ignoring LEAKSCOPE_SAMPLE=%r: must be in (0, 1]", raw[:40])
    return DEFAULT_SAMPLE
