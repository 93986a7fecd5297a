"""The Flask adapter: the WSGI middleware, route names from Flask endpoints and a dashboard.

This is the documented import path; the implementation lives in :mod:`leakscope.web.flask`.
"""

from __future__ import annotations

from leakscope.web.flask import LeakScope

__all__ = ["LeakScope"]
