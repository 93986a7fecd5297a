"""The WSGI middleware that finds which route of a live web service leaks.

This is the documented import path; the implementation lives in :mod:`leakscope.web.middleware`.
"""

from __future__ import annotations

from leakscope.web.middleware import LeakMiddleware, instances, route_template

__all__ = ["LeakMiddleware", "instances", "route_template"]
