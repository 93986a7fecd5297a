"""Per-worker figures as Prometheus metrics.

This is the documented import path; the implementation lives in :mod:`leakscope.web.prometheus`.
"""

from __future__ import annotations

from leakscope.web.prometheus import exposition, worker_states

__all__ = ["exposition", "worker_states"]
