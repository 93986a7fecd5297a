"""One attachment, seen from the tool: private directory, socket, injection, messages.

:func:`attach` makes a private directory (mode 0700, given to the target's user
when leakscope runs as root), listens on a Unix socket in it, injects the
bootstrap, and collects the agent's messages until it says ``bye`` or the target
goes away.  The directory is removed before it returns, whatever happened::

    result = attach(inspect(4242), Options(duration=10))
    result.report          # the run data the agent built, or None
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import leakscope
from leakscope.attach import bootstrap
from leakscope.attach.injector import Injection, inject
from leakscope.attach.protocol import STOP, Reader
from leakscope.attach.target import Target, is_alive
from leakscope.errors import AttachError

__all__ = ["Options", "Result", "attach"]

_CONNECT_TIMEOUT = 30.0  # from the injection to the agent's connection
_ANALYSIS_TIMEOUT = 120.0  # from the end of the window to the report
_SOCKET_NAME = "agent.sock"
_MAX_UNIX_PATH = 100


@dataclass(frozen=True, slots=True)
class Options:
    """What to do once attached: the window (seconds), the interval, tracing, progress."""

    duration: float = 30.0
    interval: float = 2.0
    trace_allocations: bool = False
    snapshots: int = 0
    """A number of snapshots to take instead of observing for ``duration`` (0: the duration)."""
    safe_point_timeout: float = 20.0
    progress: TextIO | None = None
    stop: threading.Event | None = None
    """Set from another thread to end the window early (``--children`` on Ctrl-C)."""


@dataclass
class Result:
    """What one attachment collected.

    ``snapshots`` are the snapshot dicts received, oldest first (the partial record
    when the target exited); ``report`` the run data the agent built (``None`` when
    it did not finish); ``attach`` the agent's facts about the window (pauses, gc
    and tracemalloc states); ``imported`` the modules other than leakscope's that
    importing the agent brought into the target.
    """

    target: Target
    injection: Injection | None = None
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    pauses: list[float] = field(default_factory=list)
    report: dict[str, Any] | None = None
    attach: dict[str, Any] = field(default_factory=dict)
    hello: dict[str, Any] = field(default_factory=dict)
    imported: list[str] = field(default_factory=list)
    error: str | None = None
    exited: bool = False
    interrupted: bool = False
    first_snapshot_after: float | None = None
    elapsed: float = 0.0


def _private_directory(target: Target) -> Path:
    base = tempfile.gettempdir()
    if len(base) > _MAX_UNIX_PATH - 40:  # a socket path must stay short
        base = "/tmp"
    directory = Path(tempfile.mkdtemp(prefix="leakscope-attach-", dir=base))  # mode 0700
    if os.geteuid() == 0 and target.uid != 0:  # the target must reach its socket
        os.chown(directory, target.uid, target.gid)
    package = Path(leakscope.__file__).resolve().parent
    (directory / "leakscope").symlink_to(package, target_is_directory=True)
    return directory


def _listen(directory: Path, target: Target) -> socket.socket:
    address = str(directory / _SOCKET_NAME)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(address)
        if os.geteuid() == 0 and target.uid != 0:
            os.chown(address, target.uid, target.gid)
        server.listen(1)
    except BaseException:
        server.close()
        raise
    return server


def _accept(server: socket.socket, directory: Path, target: Target) -> socket.socket:
    deadline = time.monotonic() + _CONNECT_TIMEOUT
    server.settimeout(0.2)
    while True:
        try:
            conn, _ = server.accept()
            conn.settimeout(None)
            return conn
        except TimeoutError:
            pass
        failure = directory / bootstrap.ERROR_FILE
        if failure.exists():
            text = failure.read_text(errors="replace").strip()
            raise AttachError(f"the agent could not start in {target}: {text}")
        if not is_alive(target.pid):
            raise AttachError(f"{target} exited before the agent started")
        if time.monotonic() > deadline:
            raise AttachError(
                f"the agent did not connect from {target} within {_CONNECT_TIMEOUT:g} s"
            )


def _progress(options: Options, result: Result, message: dict[str, Any]) -> None:
    if options.progress is None:
        return
    snap = message.get("snapshot") or {}
    with contextlib.suppress(Exception):
        options.progress.write(
            f"[leakscope] pid {result.target.pid}: snapshot {message.get('index')}, "
            f"{snap.get('objects', 0):,} objects, {float(message.get('seconds', 0)):.3f} s\n"
        )
        options.progress.flush()


def _exits(pid: int, wait: float = 5.0) -> bool:
    """Whether ``pid`` is gone, or going: its sockets close a moment before it is a zombie."""
    deadline = time.monotonic() + wait
    while is_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _receive(reader: Reader, conn: socket.socket, options: Options, result: Result) -> None:  # noqa: C901 - one branch per protocol message; to split (see the closing note)
    """Read messages until ``bye`` or end of file; Ctrl-C ends the window early."""
    begun = time.monotonic()
    idle = _ANALYSIS_TIMEOUT + 10 * options.interval  # the longest wait for the next message
    deadline = begun + (0 if options.snapshots else options.duration) + idle
    while True:
        if options.stop is not None and options.stop.is_set() and not result.interrupted:
            result.interrupted = True
            with contextlib.suppress(OSError):
                conn.sendall(STOP)
            deadline = time.monotonic() + _ANALYSIS_TIMEOUT
        try:
            message = reader.read(min(0.25, max(0.0, deadline - time.monotonic())))
        except KeyboardInterrupt:
            if result.interrupted:  # a second Ctrl-C: give up on the report
                raise
            result.interrupted = True
            with contextlib.suppress(OSError):
                conn.sendall(STOP)
            deadline = time.monotonic() + _ANALYSIS_TIMEOUT
            continue
        except TimeoutError:
            if time.monotonic() < deadline:
                continue
            raise AttachError(f"no report from {result.target} within the time allowed") from None
        if message is None:
            if result.report is None and result.error is None:
                result.exited = _exits(result.target.pid)
                if not result.exited:
                    result.error = "the agent's connection closed before its report"
            return
        deadline = max(deadline, time.monotonic() + idle)
        kind = message["kind"]
        if kind == "hello":
            result.hello = message
        elif kind == "snapshot":
            result.snapshots.append(message["snapshot"])
            result.pauses.append(float(message.get("seconds", 0.0)))
            if result.first_snapshot_after is None:
                result.first_snapshot_after = time.monotonic() - begun
            _progress(options, result, message)
        elif kind == "report":
            result.report = message["data"]
            result.attach = message.get("attach") or {}
        elif kind == "error":
            result.error = str(message.get("message"))
        elif kind == "bye":
            result.imported = [str(name) for name in message.get("imported", [])]


def attach(target: Target, options: Options) -> Result:
    """Attach to ``target``, run the agent for ``options.duration`` s, and detach.

    Raises :class:`AttachError` when the agent cannot be started.  Once it runs,
    every outcome is a :class:`Result`: complete, interrupted (``stop`` was sent
    on Ctrl-C and the report still collected), or ``exited`` with what came before.
    """
    begun = time.monotonic()
    result = Result(target)
    directory = _private_directory(target)
    try:
        server = _listen(directory, target)
        with contextlib.closing(server):
            config = {
                "duration": float(options.duration),
                "interval": float(options.interval),
                "trace_allocations": bool(options.trace_allocations),
                "snapshots": int(options.snapshots),
            }
            code = bootstrap.source(str(directory), str(directory / _SOCKET_NAME), config)
            result.injection = inject(target, directory, code, timeout=options.safe_point_timeout)
            conn = _accept(server, directory, target)
        with contextlib.closing(conn):
            reader = Reader(conn)
            try:
                _receive(reader, conn, options, result)
            except KeyboardInterrupt:
                result.interrupted = True
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        result.elapsed = time.monotonic() - begun
    return result
