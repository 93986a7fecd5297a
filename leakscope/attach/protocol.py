"""The messages between ``leakscope attach`` and its agent: JSON lines on a Unix socket.

The tool listens on a socket in its private directory; the agent connects and
sends, in order::

    {"kind": "hello", "pid": ..., "python": ..., "leakscope": ...}
    {"kind": "snapshot", "index": 0, "seconds": 0.012, "snapshot": {...}}   # one per snapshot
    {"kind": "report", "data": {...}, "attach": {...}}                      # the run data
    {"kind": "error", "message": "..."}                                     # instead, on failure
    {"kind": "bye", "imported": [...]}                                      # after cleaning up

The tool sends ``stop`` (one line) to end the window early.  End of file before
``report`` means the target exited, or the agent died, while attached.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

__all__ = ["STOP", "Reader", "encode"]

STOP = b"stop\n"
"""What the tool sends to end the window early (Ctrl-C)."""

_MAX_LINE = 256 << 20  # a snapshot of a very large application is a few megabytes


def encode(kind: str, **fields: Any) -> bytes:
    """One message as a line of JSON.

    >>> encode("hello", pid=42)
    b'{"kind":"hello","pid":42}\\n'
    """
    return json.dumps({"kind": kind, **fields}, separators=(",", ":")).encode() + b"\n"


class Reader:
    """Reads the messages of one connection, one at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._eof = False

    def read(self, timeout: float) -> dict[str, Any] | None:
        """The next message; ``None`` at end of file; :class:`TimeoutError` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                message = json.loads(line)
                if not isinstance(message, dict) or not isinstance(message.get("kind"), str):
                    raise ValueError("not a leakscope attach message")
                return message
            if self._eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(1 << 20)
            except TimeoutError:
                raise
            except OSError:  # reset by a dying peer: the same as its end of file
                chunk = b""
            if not chunk:
                self._eof = True
            self._buffer += chunk
            if len(self._buffer) > _MAX_LINE:
                raise ValueError("a leakscope attach message is too large")
