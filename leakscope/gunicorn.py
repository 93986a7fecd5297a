"""gunicorn config hooks: per-worker state and a final snapshot when a worker exits.

This is the documented import path; the implementation lives in :mod:`leakscope.web.gunicorn`.
"""

from __future__ import annotations

from leakscope.web.gunicorn import child_exit, post_fork, post_worker_init, worker_exit

__all__ = ["child_exit", "post_fork", "post_worker_init", "worker_exit"]
