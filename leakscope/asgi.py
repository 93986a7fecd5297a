"""The ASGI middleware (Starlette, FastAPI, any ASGI 3 application) that finds which route leaks.

This is the documented import path; the implementation lives in :mod:`leakscope.web.asgi`.
"""

from __future__ import annotations

from leakscope.web.asgi import LeakMiddleware, route_name

__all__ = ["LeakMiddleware", "route_name"]
