"""A WSGI app for ``gunicorn -w 2``: ``/leak`` leaks a ``Session`` per request, ``/ok`` does not.

Each response body is the worker's pid, so the test knows which worker served it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any


class Session:
    def __init__(self, n: int) -> None:
        self.n = n
        self.data = {"n": n}


_SESSIONS: list[Session] = []


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/leak":
        _SESSIONS.append(Session(len(_SESSIONS)))
    else:
        scratch = [Session(n) for n in range(3)]  # made and freed in the request
        del scratch
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
