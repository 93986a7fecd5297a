"""Worker states shared through a directory: one ``worker-<pid>.json`` per process.

Each worker of a multi-process server (gunicorn) publishes its
:meth:`LeakMiddleware.status() <leakscope.web.middleware.LeakMiddleware.status>` there, so
that whichever worker answers a request can show every worker.  Writes are atomic
(a temporary file renamed over the old one) and bounded in size; files that cannot
be read or parsed are skipped.  A worker's final snapshot goes to ``exit-<pid>.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from leakscope._files import atomic_write

__all__ = ["MAX_BYTES", "exit_snapshot_path", "publish", "read_workers", "start_snapshot_path"]

MAX_BYTES = 1 << 20
"""The largest worker state written or read; a larger state is trimmed (oldest timeline first)."""

_MAX_FILES = 1024


def _encode(state: dict[str, Any]) -> bytes:
    data = json.dumps(state, separators=(",", ":"), allow_nan=False).encode()
    if len(data) <= MAX_BYTES:
        return data
    trimmed = dict(state)
    timeline = list(trimmed.get("timeline") or [])
    routes = list(trimmed.get("routes") or [])
    while len(data) > MAX_BYTES and (timeline or routes):
        if timeline:
            del timeline[: max(1, len(timeline) // 2)]
        else:
            del routes[max(0, len(routes) // 2) :]
        trimmed["timeline"], trimmed["routes"] = timeline, routes
        data = json.dumps(trimmed, separators=(",", ":"), allow_nan=False).encode()
    if len(data) > MAX_BYTES:
        raise ValueError(f"worker state too large to publish ({len(data):,} bytes)")
    return data


def publish(directory: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` (a worker's status dict) atomically to ``directory/worker-<pid>.json``.

    The directory is created if missing.  ``state["pid"]`` names the file.
    """
    pid = state.get("pid") if isinstance(state, dict) else None
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise ValueError("a worker state needs a positive integer 'pid'")
    data = _encode(state)
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    atomic_write(target / f"worker-{pid}.json", data)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def read_workers(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every worker state published in ``directory``, by pid; ``alive`` says if it still runs.

    Missing directory: ``[]``.  Files that are too large, unreadable, not JSON or
    without an integer ``pid`` matching their name are skipped.
    """
    root = Path(directory)
    try:
        names = sorted(
            p for p in os.listdir(root) if p.startswith("worker-") and p.endswith(".json")
        )
    except OSError:
        return []
    states = []
    for name in names[:_MAX_FILES]:
        try:
            with open(root / name, "rb") as f:
                raw = f.read(MAX_BYTES + 1)
            if len(raw) > MAX_BYTES:
                continue
            state = json.loads(raw)
        except (OSError, ValueError):
            continue
        if not isinstance(state, dict):
            continue
        pid = state.get("pid")
        if isinstance(pid, bool) or not isinstance(pid, int) or name != f"worker-{pid}.json":
            continue
        state["alive"] = _alive(pid)
        states.append(state)
    states.sort(key=lambda s: int(s["pid"]))
    return states


def exit_snapshot_path(directory: str | os.PathLike[str], pid: int) -> Path:
    """Where worker ``pid`` writes its final :class:`~leakscope.Snapshot`: ``directory/exit-<pid>.json``."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise ValueError(f"pid must be a positive integer, not {pid!r:.40}")
    return Path(directory) / f"exit-{pid}.json"


def start_snapshot_path(directory: str | os.PathLike[str], pid: int) -> Path:
    """Where worker ``pid`` writes its first :class:`~leakscope.Snapshot`: ``start-<pid>.json``.

    ``leakscope report`` subtracts it from ``exit-<pid>.json``: the growth since start.
    """
    return exit_snapshot_path(directory, pid).with_name(f"start-{pid}.json")
