"""gunicorn config hooks: per-worker state and a final snapshot when a worker exits.

In ``gunicorn.conf.py``::

    from leakscope.gunicorn import post_fork, post_worker_init, worker_exit, child_exit

    raw_env = ["LEAKSCOPE_DIR=/tmp/leakscope"]   # or export LEAKSCOPE_DIR

Each worker's middleware (every :class:`~leakscope.web.core.Monitor`) starts afresh after the fork
(also when the application was loaded in the master with ``--preload``), publishes
its state to ``LEAKSCOPE_DIR`` and, when the worker exits (stopped, or recycled by
``max_requests``), writes its last state and a final :class:`~leakscope.Snapshot` to
``LEAKSCOPE_DIR/exit-<pid>.json`` (beside ``start-<pid>.json``, taken once the application
is loaded).  gunicorn itself is not imported: the hooks take
gunicorn's server and worker objects as they come.  No hook ever raises into gunicorn.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from leakscope.web.core import after_fork, monitors
from leakscope.web.workers import exit_snapshot_path, start_snapshot_path

__all__ = ["child_exit", "post_fork", "post_worker_init", "worker_exit"]

logger = logging.getLogger("leakscope")


def _directory() -> str | None:
    for monitor in monitors():
        if monitor.directory is not None:
            return monitor.directory
    return os.environ.get("LEAKSCOPE_DIR") or None


def post_fork(server: Any, worker: Any) -> None:
    """In the new worker: every middleware loaded before the fork starts afresh (``--preload``)."""
    try:
        after_fork()
    except Exception:
        logger.exception("leakscope: post_fork hook failed")


def post_worker_init(worker: Any) -> None:
    """In the worker, once the application is loaded: a first snapshot and a first state.

    The snapshot (``start-<pid>.json``) is what ``leakscope report`` subtracts from the
    exit snapshot to give the growth since start.
    """
    try:
        from leakscope._snapshot import snapshot

        directory = _directory()
        if directory is not None:
            os.makedirs(directory, exist_ok=True)
            snapshot(memory=False).save(start_snapshot_path(directory, os.getpid()))
        for monitor in monitors():
            monitor.publish()
    except Exception:
        logger.exception("leakscope: post_worker_init hook failed")


def worker_exit(server: Any, worker: Any) -> None:
    """In the exiting worker: publish its last state and write its final snapshot."""
    try:
        from leakscope._snapshot import snapshot

        for monitor in monitors():
            monitor.publish()
        directory = _directory()
        if directory is None:
            return
        os.makedirs(directory, exist_ok=True)
        snapshot(memory=False).save(exit_snapshot_path(directory, os.getpid()))
    except Exception:
        logger.exception("leakscope: worker_exit hook failed")


def child_exit(server: Any, worker: Any) -> None:
    """In the master, after a worker exited: tell prometheus-client's multiprocess mode.

    With ``PROMETHEUS_MULTIPROC_DIR`` set (the application's own metrics in multiprocess
    mode), the dead worker's gauge files are marked dead
    (``prometheus_client.multiprocess.mark_process_dead``), as prometheus-client asks of
    every ``child_exit``.  leakscope's own state file of the worker stays for the report,
    marked ``alive: false`` by :func:`leakscope.web.workers.read_workers`.
    """
    try:
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return
        pid = getattr(worker, "pid", None)
        if isinstance(pid, bool) or not isinstance(pid, int):
            return
        try:
            from prometheus_client import multiprocess
        except ImportError:
            return
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
    except Exception:
        logger.exception("leakscope: child_exit hook failed")
